//! What a caller asked for when starting a camera: fixed for the session.

use std::path::PathBuf;
use std::time::Duration;

use super::request::StartRequest;
use crate::media::hw::HwChoice;
use crate::output::retention::Limits;
use crate::sampling::{Fps, Sampling};
use crate::shape::FrameShape;
use crate::source::{RtspTransport, Source};

#[derive(Debug, Clone)]
pub struct CameraSettings {
    pub source: Source,
    pub fps: Fps,
    pub hwaccel_requested: HwChoice,
    pub output_folder: PathBuf,
    /// An uploaded file that belongs to this session.
    pub upload: Option<PathBuf>,
    pub rtsp_transport: RtspTransport,
    /// Play a file at its own speed instead of as fast as possible.
    pub realtime: bool,
    /// Start a file again at its end (with `realtime`, a simulated live camera).
    pub looped: bool,
    /// Treat the source as live (`Some(true)`: it reconnects at its end) or finite
    /// (`Some(false)`: its end completes the camera), whatever it reports; `None`: as
    /// each connection reports it.
    pub live: Option<bool>,
    pub sampling: Sampling,
    /// The request as it was made, to start the camera again after a restart.
    pub request: StartRequest,
    /// Continue the folder's numbering instead of clearing it (a session restored after
    /// a restart).
    pub resume: bool,
    /// Started from the config file, which starts it at every boot: not saved in the
    /// state file, so that a camera taken out of the file does not come back.
    pub from_config_file: bool,
    /// The most numbered frames kept in the folder; 0: all.
    pub max_frames: FrameLimit,
    /// Frames older than this are deleted; `None`: no age limit.
    pub max_age: Option<Duration>,
    /// The size and region of the frames written (default: as decoded).
    pub shape: FrameShape,
    /// The camera's own JPEG quality 1..100; `None`: `JPEG_QUALITY`.
    pub quality: Option<u8>,
}

impl CameraSettings {
    /// Settings with the defaults for everything but the source and rate.
    pub fn new(source: Source, fps: Fps, output_folder: PathBuf) -> CameraSettings {
        CameraSettings {
            source,
            fps,
            hwaccel_requested: HwChoice::Auto,
            output_folder,
            upload: None,
            rtsp_transport: RtspTransport::default(),
            realtime: false,
            looped: false,
            live: None,
            sampling: Sampling::default(),
            request: StartRequest::default(),
            resume: false,
            from_config_file: false,
            max_frames: FrameLimit::fixed(0),
            max_age: None,
            shape: FrameShape::default(),
            quality: None,
        }
    }

    /// What retention keeps of the folder, for a session that goes on until stopped
    /// (`endless`: live or looped) or not.
    pub fn limits(&self, endless: bool) -> Limits {
        Limits {
            max_frames: self.max_frames.for_session(endless),
            max_age: self.max_age,
        }
    }

    /// Whether a connection whose source `reported` being live (or not) is treated as
    /// live: the caller's word, when given, wins.
    pub fn live_given(&self, reported: bool) -> bool {
        self.live.unwrap_or(reported)
    }
}

/// How many numbered frames a camera keeps (0: all). Unless the caller or
/// `MAX_FRAMES_PER_CAMERA` said, it depends on whether the session goes on until
/// stopped, which for a URL is known only once it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimit {
    pub if_endless: u64,
    pub if_it_ends: u64,
}

impl FrameLimit {
    pub fn fixed(frames: u64) -> FrameLimit {
        FrameLimit {
            if_endless: frames,
            if_it_ends: frames,
        }
    }

    pub fn for_session(self, endless: bool) -> u64 {
        if endless {
            self.if_endless
        } else {
            self.if_it_ends
        }
    }
}
