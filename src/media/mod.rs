//! Everything that speaks libav: opening inputs, decoding, pixel conversion, probing
//! and hardware devices. Nothing outside this module sees an ffmpeg type.

mod convert;
mod decode;
mod gop;
pub mod hwaccel;
mod input;
mod probe;

use thiserror::Error;

pub use convert::range_tables;
pub use decode::{DecodedFrame, OpenOptions, VideoSource};
pub use gop::{EveryFrame, FrameDemand};
pub use probe::{probe, StreamSummary, VideoInfo};

/// Prepares libav once per process; quiet, because every libav failure reaches the
/// caller as an error with its camera's context.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = ffmpeg_next::init() {
            log::error!("libav initialisation failed: {e}");
        }
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
        ffmpeg_next::format::network::init();
    });
}

/// What went wrong in libav, with the (redacted) source it concerns.
#[derive(Debug, Error)]
pub enum MediaError {
    #[error("{source_name}: could not open: {message}")]
    Open {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: timed out after {seconds:.0} s while {doing}")]
    Timeout {
        source_name: String,
        seconds: f64,
        doing: &'static str,
    },
    #[error("{source_name}: no video stream")]
    NoVideoStream { source_name: String },
    #[error("{source_name}: unsupported codec: {message}")]
    Decoder {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: read failed: {message}")]
    Read {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: pixel conversion failed: {message}")]
    Convert {
        source_name: String,
        message: String,
    },
    #[error("stopped")]
    Stopped,
}
