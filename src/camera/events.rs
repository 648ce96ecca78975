//! What happened to a camera, as typed values. Every change of a camera's state is
//! made by one named transition (`state.rs`), and each transition publishes exactly
//! one event here; status, metrics, event streams and persistence subscribe to this
//! rather than keeping a second copy of the truth.

use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use super::state::{DropReason, Status};
use super::HwStatus;
use crate::media::FailureKind;
use crate::source::CameraId;

/// Events kept for a subscriber that falls behind; past this it misses the oldest
/// (and is told so by `RecvError::Lagged`), and no camera ever waits for it.
const EVENT_BUFFER: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct CameraEvent {
    pub camera: CameraId,
    pub at: SystemTime,
    pub change: Change,
}

/// One transition of a camera's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new session was admitted; its thread is about to start. `source` is
    /// redacted (no credentials), `fps` the output rate asked for.
    Started { source: String, fps: f64 },
    /// An attempt to open the source begins (the first one, or one after a failure).
    Connecting,
    /// The source is open and frames are being decoded; `live`: whether this
    /// connection is treated as live (it reconnects at its end) or finite.
    Connected { live: bool },
    /// A frame was written to the folder and is the newest.
    FrameWritten {
        seq: u64,
        /// Seconds on the source's timeline.
        pts: f64,
        /// When the frame was written.
        captured_at: SystemTime,
        /// Size of the JPEG file.
        bytes: u64,
    },
    /// Frames that were decoded but will not be written.
    FramesDropped { reason: DropReason, count: u64 },
    /// The connection failed or ended; the next attempt comes after `delay`.
    Retrying {
        kind: FailureKind,
        message: String,
        delay: Duration,
        restarts: u64,
    },
    /// Decoding moved to another backend, or the reason for not using the one asked
    /// for changed.
    HardwareChanged(HwStatus),
    /// Old frames were deleted from the folder (retention, the disk guard).
    FramesDeleted { count: u64 },
    /// Frames are no longer written for lack of disk space.
    WritingPaused { message: String },
    /// There is room again: frames are written again.
    WritingResumed,
    /// The frames handed to the encoders have a new size: the first frame, or the
    /// source's size changed.
    FramesSized { width: u32, height: u32 },
    /// Realtime pacing fell more than a second behind its clock (the total so far).
    PacingFellBehind { total: u64 },
    /// A caller asked the camera to stop; its thread ends soon after.
    StopRequested,
    /// The session is over, for good.
    Finished {
        status: Status,
        error: Option<String>,
        /// What failed, for a session that ended in `error`.
        kind: Option<FailureKind>,
        /// Frames written in the session.
        frame_count: u64,
    },
}

/// The channel every camera publishes on; cheap to clone, never blocks a publisher.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<CameraEvent>,
}

impl Events {
    pub fn new() -> Events {
        Events {
            sender: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    /// Every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CameraEvent> {
        self.sender.subscribe()
    }

    pub(super) fn publish(&self, camera: &CameraId, change: Change) {
        // An error only means nobody is listening.
        let _ = self.sender.send(CameraEvent {
            camera: camera.clone(),
            at: SystemTime::now(),
            change,
        });
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}
