//! Opening an input with protocol limits and an interrupt callback whose deadline is
//! re-armed before every blocking step, so no open or read can hang forever.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg_next::{format, Dictionary};

use super::frame_limit::FrameLimit;
use super::libav_limits;
use super::{classify, MediaError};
use crate::source::{redact_in, RtspTransport, Source};
use crate::stop::StopToken;

/// A deadline that the interrupt callback reads and the decode loop moves.
///
/// Once it has been seen to pass it stays passed: an input whose read was cut short
/// cannot be trusted (an interleaved RTSP stream has lost its framing), and libav may
/// still hand back a packet it had buffered, flushed by the failed read, instead of the
/// error; re-arming would then give the dead source a second full limit.
#[derive(Clone)]
pub struct Deadline {
    base: Instant,
    /// Nanoseconds after `base`.
    nanos: Arc<AtomicU64>,
    passed: Arc<AtomicBool>,
}

impl Deadline {
    fn new() -> Deadline {
        Deadline {
            base: Instant::now(),
            nanos: Arc::new(AtomicU64::new(u64::MAX)),
            passed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The next blocking step must finish within `limit`, unless the deadline has
    /// already been seen to pass.
    pub fn arm(&self, limit: Duration) {
        // In nanoseconds: a deadline rounded to a coarser unit could pass a little early,
        // end a stall wait before the stall is due, and be taken for a read timeout.
        let at = (self.base.elapsed() + limit).as_nanos();
        self.nanos
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Whether the interrupt callback has seen the deadline pass (the input is done
    /// for). Unlike `expired`, asking does not itself end the input.
    pub fn has_passed(&self) -> bool {
        self.passed.load(Ordering::Relaxed)
    }

    pub fn expired(&self) -> bool {
        if self.passed.load(Ordering::Relaxed) {
            return true;
        }
        let expired =
            self.base.elapsed().as_nanos() >= u128::from(self.nanos.load(Ordering::Relaxed));
        if expired {
            self.passed.store(true, Ordering::Relaxed);
        }
        expired
    }
}

/// How an input is opened.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    /// Opening and reading the stream information must end within this.
    pub timeout: Duration,
    pub transport: RtspTransport,
    /// The decoders that read the stream information refuse larger frames.
    pub frame_limit: FrameLimit,
    /// What a timeout says it happened while doing.
    pub doing: &'static str,
}

/// Opens `source` and reads its stream information, as `opening` says, until `stop`
/// is requested.
pub fn open(
    source: &Source,
    opening: Opening,
    stop: &StopToken,
) -> Result<(format::context::Input, Deadline), MediaError> {
    let name = source.redacted();
    let Opening { timeout, doing, .. } = opening;
    open_input(source, opening, stop).map_err(|e| {
        classify(e, &name, stop, timeout, doing, |message, kind| {
            MediaError::Open {
                message: redact_in(&message, &source.location()),
                source_name: name.clone(),
                kind,
            }
        })
    })
}

/// The open itself; fails with libav's `Exit` error once the timeout passes or `stop`
/// is requested.
fn open_input(
    source: &Source,
    opening: Opening,
    stop: &StopToken,
) -> Result<(format::context::Input, Deadline), ffmpeg_next::Error> {
    let deadline = Deadline::new();
    deadline.arm(opening.timeout);
    let callback_deadline = deadline.clone();
    let callback_stop = stop.clone();
    let interrupt = move || callback_stop.is_stopped() || callback_deadline.expired();

    // No libav socket timeouts (`timeout`, `rw_timeout`): the deadline bounds every
    // blocking step. A socket timeout that fired before it would not stop the input for
    // good: the demuxer answers the failed read with a packet flushed from its parser,
    // and the next read waits the whole time again.
    let mut options = Dictionary::new();
    options.set("protocol_whitelist", source.protocol_whitelist());
    if let Source::Url(url) = source {
        let url = url.to_ascii_lowercase();
        if url.starts_with("rtsp") {
            // libav's default (no option) tries UDP first, then TCP.
            if opening.transport != RtspTransport::Auto {
                options.set("rtsp_transport", opening.transport.as_str());
            }
        }
        if url.starts_with("http") {
            options.set("reconnect", "0");
        }
    }
    // libav decodes frames to learn a stream's parameters: a header claiming a huge
    // size would be allocated before any check of ours could see it.
    let mut decoder_options = Dictionary::new();
    decoder_options.set("max_pixels", &opening.frame_limit.pixels().to_string());
    match libav_limits::open_input(&source.location(), interrupt, options, &decoder_options) {
        Ok(input) => Ok((input, deadline)),
        // libav's RTSP client drops the cause when a request gets no answer and reports
        // "Invalid data found when processing input"; past the deadline, it was the
        // deadline.
        Err(_) if deadline.expired() || stop.is_stopped() => Err(ffmpeg_next::Error::Exit),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rearming_moves_a_deadline_that_has_not_passed() {
        let deadline = Deadline::new();
        deadline.arm(Duration::ZERO);
        deadline.arm(Duration::from_secs(60));
        assert!(!deadline.expired());
    }

    #[test]
    fn a_passed_deadline_stays_passed() {
        let deadline = Deadline::new();
        deadline.arm(Duration::ZERO);
        assert!(!deadline.has_passed());
        assert!(deadline.expired());
        assert!(deadline.has_passed());
        deadline.arm(Duration::from_secs(60));
        assert!(deadline.expired());
    }

    #[test]
    fn a_deadline_never_passes_early() {
        for micros in [1, 500, 999, 1001, 1500, 2999] {
            let deadline = Deadline::new();
            let limit = Duration::from_micros(micros);
            let armed = Instant::now();
            deadline.arm(limit);
            while !deadline.expired() {
                std::hint::spin_loop();
            }
            assert!(armed.elapsed() >= limit, "{limit:?} passed early");
        }
    }

    #[test]
    fn has_passed_only_reports() {
        let deadline = Deadline::new();
        deadline.arm(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        assert!(!deadline.has_passed());
        deadline.arm(Duration::from_secs(60));
        assert!(!deadline.expired());
    }
}
