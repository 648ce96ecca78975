//! What the camera worker needs of a source of decoded frames, and how it opens one.
//! The worker is generic over these, so its retry loop runs in tests against a
//! scripted fake; the real implementation is libav's `VideoSource`.

use std::time::Duration;

use super::settings::CameraSettings;
use super::HwStatus;
use crate::media::{DecodedFrame, MediaError, OpenOptions, VideoSource};
use crate::picture::Yuv420;
use crate::sampling::FrameDemand;
use crate::stop::StopToken;

/// One open connection to a source.
pub trait FrameSource {
    /// Decodes the next frame that `demand` may need; `None` at the end of the source.
    fn next_frame(&mut self, demand: &dyn FrameDemand) -> Result<Option<DecodedFrame>, MediaError>;

    /// The last decoded frame's planes.
    fn picture(&mut self) -> Result<Yuv420<'_>, MediaError>;

    /// Starts again from the beginning; timestamps start again from the source's own.
    fn rewind(&mut self) -> Result<(), MediaError>;

    /// How long the pass through the source read so far lasts: at its end, where a
    /// looped file's next pass starts.
    fn pass_length(&self) -> f64;

    /// Whether the source, as it reported itself when it opened, goes on until
    /// stopped (a camera, a live playlist) rather than ending (a file, a recording).
    fn is_live(&self) -> bool;
    /// Time the decoder spent on the frame `next_frame` returned last (not reading
    /// the input).
    fn decode_time(&self) -> Duration;

    /// Damaged frames dropped on this connection so far.
    fn damaged_frames(&self) -> u64;

    /// Where decoding happens now, and why not where it was asked to.
    fn hwaccel(&self) -> HwStatus;
}

/// Opens a camera's source, once per connection attempt.
pub trait Opener: Send {
    type Source: FrameSource;

    fn open(&self, settings: &CameraSettings, stop: &StopToken)
        -> Result<Self::Source, MediaError>;
}

/// Opens sources with libav.
#[derive(Debug, Clone)]
pub struct LibavOpener {
    pub options: OpenOptions,
    /// A source read as live that gives no video frame for this long has stalled.
    pub stall_timeout: Duration,
}

impl Opener for LibavOpener {
    type Source = VideoSource;

    fn open(&self, settings: &CameraSettings, stop: &StopToken) -> Result<VideoSource, MediaError> {
        let options = OpenOptions {
            sampling: settings.sampling,
            live: settings.live,
            stall_timeout: Some(self.stall_timeout),
            rtsp_transport: settings.rtsp_transport,
            shape: settings.shape,
            ..self.options.clone()
        };
        VideoSource::open(&settings.source, &options, stop)
    }
}

impl FrameSource for VideoSource {
    fn next_frame(&mut self, demand: &dyn FrameDemand) -> Result<Option<DecodedFrame>, MediaError> {
        VideoSource::next_frame(self, demand)
    }

    fn picture(&mut self) -> Result<Yuv420<'_>, MediaError> {
        VideoSource::picture(self)
    }

    fn rewind(&mut self) -> Result<(), MediaError> {
        VideoSource::rewind(self)
    }

    fn pass_length(&self) -> f64 {
        VideoSource::pass_length(self)
    }

    fn is_live(&self) -> bool {
        VideoSource::is_live(self)
    }

    fn decode_time(&self) -> Duration {
        VideoSource::decode_time(self)
    }

    fn damaged_frames(&self) -> u64 {
        VideoSource::damaged_frames(self)
    }

    fn hwaccel(&self) -> HwStatus {
        VideoSource::hwaccel(self)
    }
}
