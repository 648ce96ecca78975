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

/// A looped file's passes on one timeline: the source's timestamps start again at each
/// rewind, and each pass is placed one frame interval after the last frame of the one
/// before.
#[derive(Debug, Default)]
pub struct Passes {
    /// Added to the source's timestamps for pacing and output.
    offset: f64,
    /// The first and last frame of the current pass, as the source times them.
    first: Option<f64>,
    last: Option<f64>,
}

impl Passes {
    /// Where the frame the source times at `timestamp` is on the one timeline.
    fn place(&mut self, timestamp: f64) -> f64 {
        self.first.get_or_insert(timestamp);
        self.last = Some(timestamp);
        timestamp + self.offset
    }

    /// Starts the next pass; returns how much later than the last it is placed.
    pub fn next(&mut self, frame_interval: f64) -> f64 {
        let length = match (self.first.take(), self.last.take()) {
            (Some(first), Some(last)) => last - first + frame_interval,
            _ => 0.0,
        };
        self.offset += length;
        length
    }
}

/// Why a pump ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// The source ended and every frame was decoded.
    EndOfStream,
    /// The stop token was set.
    Stopped,
}

/// Decodes `video` to its end (or a stop), handing every sampled frame to `on_sample`,
/// timed on `passes`' timeline.
pub fn pump(
    video: &mut VideoSource,
    sampler: &mut Sampler,
    stop: &StopToken,
    mut pacing: Option<Pacing<'_>>,
    passes: &mut Passes,
    mut on_sample: impl FnMut(Sample<'_>) -> Result<(), PipelineError>,
) -> Result<PumpEnd, PipelineError> {
    loop {
        let frame = match video.next_frame(&*sampler) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(PumpEnd::EndOfStream),
            Err(MediaError::Stopped) => return Ok(PumpEnd::Stopped),
            Err(e) => return Err(e.into()),
        };
        let time = passes.place(frame.timestamp);
        if let Some(pacing) = pacing.as_mut() {
            let delay = pacing.pacer.delay(time, pacing.started.elapsed());
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
            pts: time,
            progress: frame.progress,
            drops,
            hwaccel,
            lag_events: pacing.as_ref().map_or(0, |p| p.pacer.lag_events()),
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pass_follows_the_last_frame_of_the_one_before() {
        let mut passes = Passes::default();
        assert_eq!(passes.place(0.5), 0.5);
        assert_eq!(passes.place(2.9), 2.9);
        assert_eq!(passes.next(0.1), 2.5);
        // The second pass decoded nothing: the third follows the first.
        assert_eq!(passes.next(0.1), 0.0);
        assert_eq!(passes.place(0.5), 3.0);
    }
}
