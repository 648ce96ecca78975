//! Opening an input with protocol limits and an interrupt callback whose deadline is
//! re-armed before every blocking step, so no open or read can hang forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg_next::{format, Dictionary};

use crate::source::Source;
use crate::stop::StopToken;

/// A deadline that the interrupt callback reads and the decode loop moves.
#[derive(Clone)]
pub struct Deadline {
    base: Instant,
    millis: Arc<AtomicU64>,
}

impl Deadline {
    fn new() -> Deadline {
        Deadline {
            base: Instant::now(),
            millis: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// The next blocking step must finish within `limit`.
    pub fn arm(&self, limit: Duration) {
        let at = self.base.elapsed() + limit;
        self.millis.store(at.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn expired(&self) -> bool {
        self.base.elapsed().as_millis() as u64 >= self.millis.load(Ordering::Relaxed)
    }
}

/// Opens `source` and reads its stream information; the open fails with libav's
/// `Exit` error once `timeout` passes or `stop` is requested.
pub fn open(
    source: &Source,
    timeout: Duration,
    stop: &StopToken,
) -> Result<(format::context::Input, Deadline), ffmpeg_next::Error> {
    let deadline = Deadline::new();
    deadline.arm(timeout);
    let callback_deadline = deadline.clone();
    let callback_stop = stop.clone();
    let interrupt = move || callback_stop.is_stopped() || callback_deadline.expired();

    let mut options = Dictionary::new();
    options.set("protocol_whitelist", source.protocol_whitelist());
    if let Source::Url(url) = source {
        let micros = timeout.as_micros().to_string();
        if url.starts_with("rtsp") {
            options.set("rtsp_transport", "tcp");
            options.set("timeout", &micros);
        } else {
            options.set("rw_timeout", &micros);
        }
        if url.starts_with("http") {
            options.set("reconnect", "0");
        }
    }
    let input =
        format::input_with_interrupt_and_dictionary(&source.location(), interrupt, options)?;
    Ok((input, deadline))
}
