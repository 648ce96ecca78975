//! What is happening to one camera now. The fields are private: the state changes
//! only through the named transitions below, each of which returns the one event that
//! describes it (`None` when nothing changed). Readers get a [`CameraSnapshot`].

use std::time::{Duration, SystemTime};

use super::events::Change;
use super::HwStatus;
use crate::media::FailureKind;
use crate::shape::Size;

/// Weight of the newest interval in the measured frame rate.
const MEASURED_FPS_SMOOTHING: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Running,
    Completed,
    Stopped,
    Error,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Running,
        Status::Completed,
        Status::Stopped,
        Status::Error,
    ];

    pub fn parse(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Stopped => "stopped",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Streaming,
    Reconnecting,
    Finished,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Connecting,
        Phase::Streaming,
        Phase::Reconnecting,
        Phase::Finished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Streaming => "streaming",
            Phase::Reconnecting => "reconnecting",
            Phase::Finished => "finished",
        }
    }
}

/// Why a decoded frame was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Flagged as damaged by the decoder, or following damage until the next keyframe.
    Corrupt,
    /// The file could not be written (a full disk, a folder gone).
    WriteFailed,
    /// The encoder queue was full: a slow disk or a burst.
    QueueFull,
    /// Writing was paused: the disk is below `MIN_FREE_DISK` or refused a write for
    /// lack of space.
    DiskFull,
}

impl DropReason {
    /// Every reason, so that readers that list them (metrics) pick up a new one.
    pub const ALL: [DropReason; 4] = [
        DropReason::Corrupt,
        DropReason::WriteFailed,
        DropReason::QueueFull,
        DropReason::DiskFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Corrupt => "corrupt",
            DropReason::WriteFailed => "write_failed",
            DropReason::QueueFull => "queue_full",
            DropReason::DiskFull => "disk_full",
        }
    }
}

/// Frames decoded but not written, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub corrupt: u64,
    pub write_failed: u64,
    pub queue_full: u64,
    pub disk_full: u64,
}

impl DropCounts {
    pub fn total(&self) -> u64 {
        self.corrupt + self.write_failed + self.queue_full + self.disk_full
    }

    /// Frames dropped for `reason`.
    pub fn of(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Corrupt => self.corrupt,
            DropReason::WriteFailed => self.write_failed,
            DropReason::QueueFull => self.queue_full,
            DropReason::DiskFull => self.disk_full,
        }
    }

    fn add(&mut self, reason: DropReason, count: u64) {
        let counter = match reason {
            DropReason::Corrupt => &mut self.corrupt,
            DropReason::WriteFailed => &mut self.write_failed,
            DropReason::QueueFull => &mut self.queue_full,
            DropReason::DiskFull => &mut self.disk_full,
        };
        *counter += count;
    }
}

/// What kind of error a camera last had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The source failed (see [`FailureKind`]).
    Source(FailureKind),
    /// A frame could not be written.
    WriteFailed,
    /// Writing is paused for lack of disk space.
    DiskFull,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Source(kind) => kind.as_str(),
            ErrorKind::WriteFailed => DropReason::WriteFailed.as_str(),
            ErrorKind::DiskFull => DropReason::DiskFull.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastError {
    pub kind: ErrorKind,
    pub message: String,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Stopped,
    /// A finite source was read to its end.
    Completed,
    Failed {
        kind: FailureKind,
        message: String,
    },
}

/// A copy of a camera's state at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSnapshot {
    pub status: Status,
    pub phase: Phase,
    pub frame_count: u64,
    pub drops: DropCounts,
    pub last_error: Option<LastError>,
    pub restart_count: u64,
    pub hwaccel: HwStatus,
    pub started_at: SystemTime,
    pub last_frame_at: Option<SystemTime>,
    pub progress: Option<f64>,
    pub measured_fps: Option<f64>,
    /// Times a realtime file fell more than a second behind its own clock.
    pub pacing_lag_events: u64,
    /// Old frames deleted by retention or the disk guard, in this session.
    pub frames_deleted: u64,
    /// Frames are not being written for lack of disk space.
    pub writing_paused: bool,
    /// When the session ended (its thread done with the folder).
    pub finished_at: Option<SystemTime>,
    /// Whether the source is treated as live: from its last connection, or before the
    /// first one the caller's word; `None` until known.
    pub live: Option<bool>,
    /// The size of the frames being written; `None` until the first one.
    pub output_size: Option<Size>,
}

#[derive(Debug)]
pub struct CameraState {
    status: Status,
    phase: Phase,
    frame_count: u64,
    drops: DropCounts,
    last_error: Option<LastError>,
    restart_count: u64,
    hwaccel: HwStatus,
    started_at: SystemTime,
    last_frame_at: Option<SystemTime>,
    progress: Option<f64>,
    measured_fps: Option<f64>,
    pacing_lag_events: u64,
    frames_deleted: u64,
    writing_paused: bool,
    finished_at: Option<SystemTime>,
    live: Option<bool>,
    output_size: Option<Size>,
}

impl CameraState {
    /// A session just admitted: running, connecting, with what the hardware probe
    /// foresees about decoding, and whether the caller said the source is live.
    pub fn new(hwaccel: HwStatus, started_at: SystemTime, live: Option<bool>) -> CameraState {
        CameraState {
            status: Status::Running,
            phase: Phase::Connecting,
            frame_count: 0,
            drops: DropCounts::default(),
            last_error: None,
            restart_count: 0,
            hwaccel,
            started_at,
            last_frame_at: None,
            progress: None,
            measured_fps: None,
            pacing_lag_events: 0,
            frames_deleted: 0,
            writing_paused: false,
            finished_at: None,
            live,
            output_size: None,
        }
    }

    pub fn snapshot(&self) -> CameraSnapshot {
        CameraSnapshot {
            status: self.status,
            phase: self.phase,
            frame_count: self.frame_count,
            drops: self.drops,
            last_error: self.last_error.clone(),
            restart_count: self.restart_count,
            hwaccel: self.hwaccel.clone(),
            started_at: self.started_at,
            last_frame_at: self.last_frame_at,
            progress: self.progress,
            measured_fps: self.measured_fps,
            pacing_lag_events: self.pacing_lag_events,
            frames_deleted: self.frames_deleted,
            writing_paused: self.writing_paused,
            finished_at: self.finished_at,
            live: self.live,
            output_size: self.output_size,
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn live(&self) -> Option<bool> {
        self.live
    }

    /// An attempt to open the source begins. The phase is left as it is: a camera
    /// that failed stays `reconnecting` until a connection streams.
    pub fn connecting(&mut self) -> Option<Change> {
        Some(Change::Connecting)
    }

    /// The source opened; `live`: how this connection is treated.
    pub fn connected(&mut self, live: bool) -> Option<Change> {
        self.phase = Phase::Streaming;
        self.live = Some(live);
        Some(Change::Connected { live })
    }

    /// Frame `seq`, captured at `at`, was written. Encoder threads may finish frames out of
    /// order: counters, the rate and the progress are updated in one step, and the
    /// progress never goes back.
    pub fn frame_written(
        &mut self,
        seq: u64,
        pts: f64,
        at: SystemTime,
        bytes: u64,
        progress: Option<f64>,
    ) -> Option<Change> {
        let interval = self
            .last_frame_at
            .and_then(|previous| at.duration_since(previous).ok());
        if let Some(interval) = interval.filter(|d| !d.is_zero()) {
            self.measured_fps = Some(smoothed_rate(self.measured_fps, interval.as_secs_f64()));
        }
        self.frame_count += 1;
        self.last_frame_at = Some(self.last_frame_at.map_or(at, |previous| previous.max(at)));
        // A frame that was under way when writing paused does not hide the pause.
        if !self.writing_paused {
            self.last_error = None;
        }
        if let Some(progress) = progress {
            self.progress = Some(self.progress.map_or(progress, |p| p.max(progress)));
        }
        Some(Change::FrameWritten {
            seq,
            pts,
            captured_at: at,
            bytes,
        })
    }

    pub fn frames_dropped(&mut self, reason: DropReason, count: u64) -> Option<Change> {
        if count == 0 {
            return None;
        }
        self.drops.add(reason, count);
        Some(Change::FramesDropped { reason, count })
    }

    pub fn write_failed(&mut self, message: String) -> Option<Change> {
        self.last_error = Some(LastError {
            kind: ErrorKind::WriteFailed,
            message,
        });
        self.frames_dropped(DropReason::WriteFailed, 1)
    }

    /// Retention or the disk guard deleted `count` old frames.
    pub fn frames_deleted(&mut self, count: u64) -> Option<Change> {
        if count == 0 {
            return None;
        }
        self.frames_deleted += count;
        Some(Change::FramesDeleted { count })
    }

    /// Writing stops for lack of disk space; `message` names the free space and the
    /// minimum.
    pub fn writing_paused(&mut self, message: String) -> Option<Change> {
        if self.writing_paused {
            return None;
        }
        self.writing_paused = true;
        self.last_error = Some(LastError {
            kind: ErrorKind::DiskFull,
            message: message.clone(),
        });
        Some(Change::WritingPaused { message })
    }

    pub fn writing_resumed(&mut self) -> Option<Change> {
        if !self.writing_paused {
            return None;
        }
        self.writing_paused = false;
        if self
            .last_error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::DiskFull)
        {
            self.last_error = None;
        }
        Some(Change::WritingResumed)
    }

    pub fn retrying(
        &mut self,
        kind: FailureKind,
        message: String,
        delay: Duration,
    ) -> Option<Change> {
        self.last_error = Some(LastError {
            kind: ErrorKind::Source(kind),
            message: message.clone(),
        });
        self.restart_count += 1;
        self.phase = Phase::Reconnecting;
        Some(Change::Retrying {
            kind,
            message,
            delay,
            restarts: self.restart_count,
        })
    }

    pub fn hardware(&mut self, hwaccel: &HwStatus) -> Option<Change> {
        if self.hwaccel == *hwaccel {
            return None;
        }
        self.hwaccel = hwaccel.clone();
        Some(Change::HardwareChanged(hwaccel.clone()))
    }

    pub fn pacing_fell_behind(&mut self, total: u64) -> Option<Change> {
        if total <= self.pacing_lag_events {
            return None;
        }
        self.pacing_lag_events = total;
        Some(Change::PacingFellBehind { total })
    }

    /// A frame of `size` is on its way to the encoders.
    pub fn frames_sized(&mut self, size: Size) -> Option<Change> {
        if self.output_size == Some(size) {
            return None;
        }
        self.output_size = Some(size);
        Some(Change::FramesSized {
            width: size.width,
            height: size.height,
        })
    }

    pub fn stop_requested(&mut self) -> Option<Change> {
        if self.status != Status::Running {
            return None;
        }
        self.status = Status::Stopped;
        self.phase = Phase::Finished;
        Some(Change::StopRequested)
    }

    /// The session ended at `at`; its thread no longer touches the folder.
    pub fn finished(&mut self, outcome: Outcome, at: SystemTime) -> Option<Change> {
        self.phase = Phase::Finished;
        self.finished_at = Some(at);
        let (error, kind) = match outcome {
            Outcome::Stopped => {
                self.status = Status::Stopped;
                (None, None)
            }
            Outcome::Completed => {
                self.status = Status::Completed;
                self.progress = Some(1.0);
                (None, None)
            }
            Outcome::Failed { kind, message } => {
                self.status = Status::Error;
                self.last_error = Some(LastError {
                    kind: ErrorKind::Source(kind),
                    message: message.clone(),
                });
                (Some(message), Some(kind))
            }
        };
        Some(Change::Finished {
            status: self.status,
            error,
            kind,
            frame_count: self.frame_count,
        })
    }
}

/// The measured frame rate after a frame `interval` seconds after the last one. The
/// intervals are averaged, not their inverses: frames buffered at a connect arrive
/// microseconds apart, and one such rate would swamp the average for many frames.
fn smoothed_rate(old_rate: Option<f64>, interval: f64) -> f64 {
    let average = match old_rate {
        Some(rate) => {
            let old = 1.0 / rate;
            old + MEASURED_FPS_SMOOTHING * (interval - old)
        }
        None => interval,
    };
    1.0 / average
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> CameraState {
        CameraState::new(HwStatus::default(), SystemTime::now(), None)
    }

    #[test]
    fn measured_rate_follows_a_steady_interval() {
        let mut rate = None;
        for _ in 0..50 {
            rate = Some(smoothed_rate(rate, 0.5));
        }
        assert!((rate.unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_burst_after_a_connect_does_not_inflate_the_rate() {
        // One frame a second, then five frames buffered at a reconnect, a
        // microsecond apart, then one a second again.
        let mut rate = Some(1.0);
        for _ in 0..5 {
            rate = Some(smoothed_rate(rate, 1e-6));
        }
        assert!(rate.unwrap() < 3.1, "{rate:?}");
        for _ in 0..20 {
            rate = Some(smoothed_rate(rate, 1.0));
        }
        assert!((rate.unwrap() - 1.0).abs() < 0.02, "{rate:?}");
    }

    #[test]
    fn a_stop_ends_only_a_running_session() {
        let mut state = state();
        assert_eq!(state.stop_requested(), Some(Change::StopRequested));
        assert_eq!(state.stop_requested(), None);
        assert_eq!(state.snapshot().phase, Phase::Finished);
    }

    #[test]
    fn a_written_frame_clears_the_last_error_and_progress_never_goes_back() {
        let mut state = state();
        let now = SystemTime::now();
        state.write_failed("disk full".into());
        assert_eq!(
            state.snapshot().last_error.unwrap().kind.as_str(),
            "write_failed"
        );
        state.frame_written(2, 0.2, now, 10, Some(0.5));
        state.frame_written(1, 0.1, now, 10, Some(0.4));
        let snapshot = state.snapshot();
        assert_eq!(snapshot.last_error, None);
        assert_eq!(snapshot.progress, Some(0.5));
        assert_eq!(snapshot.frame_count, 2);
        assert_eq!(snapshot.drops.total(), 1);
    }

    #[test]
    fn liveness_is_the_callers_word_until_a_connection_tells() {
        assert_eq!(state().snapshot().live, None);
        let mut said_live = CameraState::new(HwStatus::default(), SystemTime::now(), Some(true));
        assert_eq!(said_live.snapshot().live, Some(true));
        assert_eq!(
            said_live.connected(false),
            Some(Change::Connected { live: false })
        );
        let snapshot = said_live.snapshot();
        assert_eq!(
            (snapshot.live, snapshot.phase),
            (Some(false), Phase::Streaming)
        );
    }

    #[test]
    fn unchanged_hardware_and_no_new_lag_are_no_transition() {
        let mut state = state();
        assert_eq!(state.hardware(&HwStatus::default()), None);
        assert_eq!(state.pacing_fell_behind(0), None);
        assert_eq!(
            state.pacing_fell_behind(2),
            Some(Change::PacingFellBehind { total: 2 })
        );
        assert_eq!(state.frames_dropped(DropReason::Corrupt, 0), None);
        assert_eq!(state.frames_deleted(0), None);
    }

    #[test]
    fn a_new_frame_size_is_one_change() {
        let mut state = state();
        let size = |width, height| Size { width, height };
        assert_eq!(state.snapshot().output_size, None);
        assert_eq!(
            state.frames_sized(size(640, 360)),
            Some(Change::FramesSized {
                width: 640,
                height: 360
            })
        );
        assert_eq!(state.frames_sized(size(640, 360)), None);
        assert!(state.frames_sized(size(640, 480)).is_some());
        assert_eq!(state.snapshot().output_size, Some(size(640, 480)));
    }

    #[test]
    fn deletions_add_up() {
        let mut state = state();
        assert_eq!(
            state.frames_deleted(3),
            Some(Change::FramesDeleted { count: 3 })
        );
        state.frames_deleted(2);
        assert_eq!(state.snapshot().frames_deleted, 5);
    }

    #[test]
    fn a_pause_is_the_last_error_until_writing_resumes() {
        let mut state = state();
        let now = SystemTime::now();
        assert_eq!(state.writing_resumed(), None);
        assert!(matches!(
            state.writing_paused("1 MiB free".into()),
            Some(Change::WritingPaused { .. })
        ));
        assert_eq!(state.writing_paused("again".into()), None);
        // A frame that was being written when the pause came.
        state.frame_written(1, 0.0, now, 10, None);
        state.frames_dropped(DropReason::DiskFull, 2);
        let paused = state.snapshot();
        assert!(paused.writing_paused);
        assert_eq!(paused.last_error.unwrap().kind.as_str(), "disk_full");
        assert_eq!(paused.drops.disk_full, 2);
        assert_eq!(state.writing_resumed(), Some(Change::WritingResumed));
        let resumed = state.snapshot();
        assert!(!resumed.writing_paused);
        assert_eq!(resumed.last_error, None);
    }

    #[test]
    fn the_end_of_a_session_is_dated() {
        let mut state = state();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        state.finished(Outcome::Completed, at);
        assert_eq!(state.snapshot().finished_at, Some(at));
    }
}
