//! Cameras: what each was asked to do, what is happening to it, and the threads that
//! do it. Every change of a camera's state passes through one named transition
//! (`state.rs`) that publishes one event (`events.rs`); the HTTP layer reads snapshots
//! and sends commands to the supervisor.

pub mod backoff;
pub mod clock;
mod delivery;
pub mod events;
pub mod extract;
pub mod pump;
pub mod registry;
pub mod request;
pub mod retention;
pub mod saved;
pub mod settings;
pub mod source;
pub mod state;
pub mod supervisor;
pub mod timings;
pub mod worker;

#[cfg(test)]
mod tests;

pub use events::{CameraEvent, Change, Events};
pub use registry::{Admission, Camera, LatestFrame, Registry};
pub use request::{RequestError, StartRequest, ValidStart, FIELDS};
pub use settings::CameraSettings;
pub use state::{CameraSnapshot, DropCounts, DropReason, ErrorKind, LastError, Phase, Status};
pub use supervisor::Supervisor;

pub use crate::media::hw::HwStatus;
