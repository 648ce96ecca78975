//! What a caller asked for when starting a camera: fixed for the session.

use std::path::PathBuf;

use crate::media::hw::HwChoice;
use crate::sampling::{Fps, Sampling};
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
        }
    }

    /// Whether a connection whose source `reported` being live (or not) is treated as
    /// live: the caller's word, when given, wins.
    pub fn live_given(&self, reported: bool) -> bool {
        self.live.unwrap_or(reported)
    }
}
