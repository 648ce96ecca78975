//! video-pipeline: turns camera streams and video files into JPEG frames for AI
//! inference, behind an HTTP control API and a shared frame folder.
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod auth;
pub mod camera;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod logging;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod output;
pub mod picture;
pub mod sampling;
pub mod shape;
pub mod shard;
pub mod source;
pub mod stop;
pub mod uploads;

/// The build's version: `VIDEO_PIPELINE_VERSION` at build time, else `git describe`,
/// else the package version.
pub const VERSION: &str = env!("VIDEO_PIPELINE_VERSION");
