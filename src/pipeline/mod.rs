//! From a source to sampled JPEG frames: the decode → sample → encode loop shared by
//! the daemon's camera workers and the one-shot `extract` command.

pub mod backoff;
pub mod encode_pool;
pub mod pacer;
pub mod sampler;
pub mod worker;

use thiserror::Error;

use std::time::Instant;

use crate::media::hw::HwStatus;
use crate::media::{DropCounts, MediaError, VideoSource};
use crate::output::jpeg::JpegError;
use crate::picture::Yuv420;
use crate::stop::StopToken;
use pacer::Pacer;
use sampler::Sampler;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Jpeg(#[from] JpegError),
    #[error("{0}")]
    Sink(String),
}

/// One sampled frame, as the decoder holds it until the next is decoded.
#[derive(Debug)]
pub struct Sample<'a> {
    pub picture: Yuv420<'a>,
    /// Seconds on the source's timeline.
    pub pts: f64,
    /// Share of a finite source done (0..1).
    pub progress: Option<f64>,
    /// The source's damage counters so far.
    pub drops: DropCounts,
    /// The hardware backend decoding now and why it is not the one asked for.
    pub hwaccel: HwStatus,
    /// Times realtime pacing fell so far behind that it started again.
    pub lag_events: u64,
}

/// Plays the source at its own speed, when asked to.
pub struct Pacing<'a> {
    pub pacer: &'a mut Pacer,
    pub started: Instant,
}

/// Why a pump ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// The source ended and every frame was decoded.
    EndOfStream,
    /// The stop token was set.
    Stopped,
}

/// Decodes `video` to its end (or a stop), handing every sampled frame to `on_sample`.
pub fn pump(
    video: &mut VideoSource,
    sampler: &mut Sampler,
    stop: &StopToken,
    mut pacing: Option<Pacing<'_>>,
    mut on_sample: impl FnMut(Sample<'_>) -> Result<(), PipelineError>,
) -> Result<PumpEnd, PipelineError> {
    loop {
        let frame = match video.next_frame(&*sampler) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(PumpEnd::EndOfStream),
            Err(MediaError::Stopped) => return Ok(PumpEnd::Stopped),
            Err(e) => return Err(e.into()),
        };
        if let Some(pacing) = pacing.as_mut() {
            let delay = pacing
                .pacer
                .delay(frame.timestamp, pacing.started.elapsed());
            if !delay.is_zero() && !stop.sleep(delay) {
                return Ok(PumpEnd::Stopped);
            }
        }
        if stop.is_stopped() {
            return Ok(PumpEnd::Stopped);
        }
        if !sampler.offer(frame.timestamp) {
            continue;
        }
        let drops = video.drops();
        let hwaccel = video.hwaccel();
        on_sample(Sample {
            picture: video.picture()?,
            pts: frame.timestamp,
            progress: frame.progress,
            drops,
            hwaccel,
            lag_events: pacing.as_ref().map_or(0, |p| p.pacer.lag_events()),
        })?;
    }
}
