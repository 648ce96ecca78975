//! When each frame is shown, in seconds on the source's own timeline, and how far into
//! a finite source it is.

use ffmpeg_next::format;

use super::DecodedFrame;
use crate::media::{rational, stated_frame_rate};

/// Used when a stream states no frame rate, to give frames without timestamps one.
const FALLBACK_FRAME_RATE: f64 = 25.0;

/// Used when a stream states no time base (MPEG's 90 kHz clock).
const FALLBACK_TIME_BASE: f64 = 1.0 / 90_000.0;

pub struct Timestamps {
    time_base: f64,
    frame_interval: f64,
    start_time: f64,
    duration: Option<f64>,
    /// The last frame's timestamp: a frame without one is placed a frame after it.
    last: Option<f64>,
    /// The earliest and latest packet times of this pass through the source, decoded
    /// or not.
    span: Option<(f64, f64)>,
}

impl Timestamps {
    /// The timing `stream` of `input` states.
    pub fn of(input: &format::context::Input, stream: &ffmpeg_next::Stream<'_>) -> Timestamps {
        let time_base = rational(stream.time_base()).unwrap_or(FALLBACK_TIME_BASE);
        let frame_rate = stated_frame_rate(stream).unwrap_or(FALLBACK_FRAME_RATE);
        let start_time = if stream.start_time() == ffmpeg_next::ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            stream.start_time() as f64 * time_base
        };
        let duration = if stream.duration() > 0 {
            Some(stream.duration() as f64 * time_base)
        } else if input.duration() > 0 {
            Some(input.duration() as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE))
        } else {
            None
        };
        Timestamps {
            time_base,
            frame_interval: 1.0 / frame_rate,
            start_time,
            duration,
            last: None,
            span: None,
        }
    }

    /// Seconds at which a packet with `pts` is shown, when it says.
    pub fn packet_time(&mut self, pts: Option<i64>) -> Option<f64> {
        let time = pts.map(|pts| pts as f64 * self.time_base)?;
        let (earliest, latest) = self.span.get_or_insert((time, time));
        *earliest = earliest.min(time);
        *latest = latest.max(time);
        Some(time)
    }

    /// How long this pass through the source lasts: from its first packet to one
    /// frame after its last, whether they were decoded or not (sample-aware decoding
    /// leaves the end of a file undecoded).
    pub fn pass_length(&self) -> f64 {
        self.span.map_or(0.0, |(earliest, latest)| {
            latest - earliest + self.frame_interval
        })
    }

    /// The next decoded frame, shown at `pts` (or a frame after the last one).
    pub fn frame(&mut self, pts: Option<i64>) -> DecodedFrame {
        let timestamp = match pts {
            Some(pts) => pts as f64 * self.time_base,
            None => self
                .last
                .map_or(self.start_time, |t| t + self.frame_interval),
        };
        self.last = Some(timestamp);
        let progress = self.duration.filter(|d| *d > 0.0).map(|duration| {
            ((timestamp - self.start_time + self.frame_interval) / duration).clamp(0.0, 1.0)
        });
        DecodedFrame {
            timestamp,
            progress,
        }
    }

    /// The source starts again: a frame without a timestamp is at its start again.
    pub fn rewind(&mut self) {
        self.last = None;
        self.span = None;
    }
}
