//! From an open source to sampled frames: the decode → pace → sample loop shared by
//! the daemon's camera workers and the one-shot `extract` command, and the timeline
//! that keeps a looped file's passes on one growing clock.

use std::time::Instant;

use thiserror::Error;

use super::clock::Clock;
use super::source::FrameSource;
use super::timings::DurationHistogram;
use super::HwStatus;
use crate::media::MediaError;
use crate::output::jpeg::JpegError;
use crate::picture::Yuv420;
use crate::sampling::pacer::Pacer;
use crate::sampling::sampler::Sampler;
use crate::stop::StopToken;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Jpeg(#[from] JpegError),
    #[error("{0}")]
    Sink(String),
}

impl PipelineError {
    /// A failure that ends the camera even for a live source (see
    /// `MediaError::ends_camera`).
    pub fn ends_camera(&self) -> bool {
        matches!(self, PipelineError::Media(e) if e.ends_camera())
    }
}

/// One sampled frame, as the decoder holds it until the next is decoded.
#[derive(Debug)]
pub struct Sample<'a> {
    pub picture: Yuv420<'a>,
    /// Seconds on the camera's timeline (a looped file's passes follow each other).
    pub pts: f64,
    /// Share of a finite source done (0..1).
    pub progress: Option<f64>,
    /// Damaged frames dropped on this connection so far.
    pub damaged: u64,
    pub hwaccel: HwStatus,
    /// Times realtime pacing fell so far behind that it started again.
    pub lag_events: u64,
}

/// Plays the source at its own speed, when asked to.
pub struct Pacing<'a, C: Clock + ?Sized> {
    pub pacer: &'a mut Pacer,
    pub clock: &'a C,
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

/// A looped file's passes on one clock: each pass starts where the last one ended.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Added to the source's timestamps of the current pass.
    offset: f64,
}

impl Timeline {
    /// Seconds on the camera's timeline of a frame at `timestamp` in this pass.
    pub fn place(&self, timestamp: f64) -> f64 {
        timestamp + self.offset
    }

    /// Starts the next pass after one that lasted `length` seconds.
    pub fn next_pass(&mut self, length: f64) {
        self.offset += length;
    }
}

/// Decodes `video` to its end (or a stop), handing every sampled frame to `on_sample`
/// and the decoder's time for every decoded frame to `decode_times`.
/// The sampler works on the source's own timestamps; `timeline` places them.
pub fn pump<S: FrameSource + ?Sized, C: Clock + ?Sized>(
    video: &mut S,
    sampler: &mut Sampler,
    timeline: &Timeline,
    stop: &StopToken,
    mut pacing: Option<Pacing<'_, C>>,
    decode_times: Option<&DurationHistogram>,
    mut on_sample: impl FnMut(Sample<'_>) -> Result<(), PipelineError>,
) -> Result<PumpEnd, PipelineError> {
    loop {
        let frame = match video.next_frame(&*sampler) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(PumpEnd::EndOfStream),
            Err(MediaError::Stopped) => return Ok(PumpEnd::Stopped),
            Err(e) => return Err(e.into()),
        };
        if let Some(histogram) = decode_times {
            histogram.observe(video.decode_time());
        }
        let pts = timeline.place(frame.timestamp);
        if let Some(pacing) = pacing.as_mut() {
            let elapsed = pacing.clock.now().saturating_duration_since(pacing.started);
            let delay = pacing.pacer.delay(pts, elapsed);
            if !delay.is_zero() && !pacing.clock.sleep(delay, stop) {
                return Ok(PumpEnd::Stopped);
            }
        }
        if stop.is_stopped() {
            return Ok(PumpEnd::Stopped);
        }
        if !sampler.offer(frame.timestamp) {
            continue;
        }
        let damaged = video.damaged_frames();
        let hwaccel = video.hwaccel();
        on_sample(Sample {
            picture: video.picture()?,
            pts,
            progress: frame.progress,
            damaged,
            hwaccel,
            lag_events: pacing.as_ref().map_or(0, |p| p.pacer.lag_events()),
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_follow_each_other() {
        let mut timeline = Timeline::default();
        assert_eq!(timeline.place(1.0), 1.0);
        timeline.next_pass(3.0);
        assert_eq!(timeline.place(1.0), 4.0);
        timeline.next_pass(3.0);
        assert_eq!(timeline.place(1.0), 7.0);
    }
}
