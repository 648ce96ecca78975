//! Shared state between camera workers and the HTTP layer: for each camera id, what
//! was asked (settings), what is happening (state), the newest frame and the stop
//! token. Neither side imports the other; both only talk to this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

use super::events::{Change, Events};
use super::settings::CameraSettings;
use super::state::{CameraSnapshot, CameraState, DropReason, Outcome, Status};
use super::timings::CameraTimings;
use super::HwStatus;
use crate::media::FailureKind;
use crate::output::store::FrameStore;
use crate::shape::Size;
use crate::source::CameraId;
use crate::stop::StopToken;

/// The newest frame, shared with HTTP readers without copying.
#[derive(Debug, Clone)]
pub struct LatestFrame {
    pub jpeg: Bytes,
    pub seq: u64,
    /// Seconds on the source's timeline.
    pub pts: f64,
    pub captured_at: SystemTime,
}

/// One camera's session.
#[derive(Debug)]
pub struct Camera {
    id: CameraId,
    settings: CameraSettings,
    stop: StopToken,
    state: Mutex<CameraState>,
    /// The newest frame; its followers (MJPEG viewers) wake at each new one.
    latest: watch::Sender<Option<Arc<LatestFrame>>>,
    frames: Mutex<FrameFolder>,
    timings: CameraTimings,
    events: Events,
}

/// The session's frame store, for retention; once retired (a new session or nobody
/// owns the folder) it deletes nothing more.
#[derive(Default)]
struct FrameFolder {
    store: Option<Arc<FrameStore>>,
    retired: bool,
}

impl std::fmt::Debug for FrameFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameFolder")
            .field("open", &self.store.is_some())
            .field("retired", &self.retired)
            .finish()
    }
}

impl Camera {
    /// A running session; publishes `Started`.
    pub fn new(
        id: CameraId,
        settings: CameraSettings,
        hwaccel: HwStatus,
        events: Events,
    ) -> Camera {
        let state = CameraState::new(hwaccel, SystemTime::now(), settings.live);
        let camera = Camera {
            id,
            settings,
            stop: StopToken::new(),
            state: Mutex::new(state),
            latest: watch::Sender::new(None),
            frames: Mutex::new(FrameFolder::default()),
            timings: CameraTimings::default(),
            events,
        };
        let started = Change::Started {
            source: camera.settings.source.redacted(),
            fps: camera.settings.fps.get(),
        };
        camera.events.publish(&camera.id, started);
        camera
    }

    pub fn id(&self) -> &CameraId {
        &self.id
    }

    pub fn settings(&self) -> &CameraSettings {
        &self.settings
    }

    pub fn stop_token(&self) -> &StopToken {
        &self.stop
    }

    pub fn snapshot(&self) -> CameraSnapshot {
        self.state().snapshot()
    }

    pub fn status(&self) -> Status {
        self.state().status()
    }

    pub fn is_running(&self) -> bool {
        self.status() == Status::Running
    }

    /// Whether the session goes on until stopped: a looped file, or a source treated
    /// as live (known once it has opened, unless the caller said so).
    pub fn is_endless(&self) -> bool {
        self.settings.looped || self.state().live() == Some(true)
    }

    /// What retention keeps of this camera's folder now.
    pub fn limits(&self) -> crate::output::retention::Limits {
        self.settings.limits(self.is_endless())
    }

    /// How long this session's frames took to decode and encode.
    pub fn timings(&self) -> &CameraTimings {
        &self.timings
    }

    pub fn latest(&self) -> Option<Arc<LatestFrame>> {
        self.latest.borrow().clone()
    }

    /// The newest frame, as it changes: the receiver is woken by each new frame and
    /// once more when the session ends (then `status()` is no longer running). Waking
    /// a follower is all the encoder thread does for it.
    pub fn follow(&self) -> watch::Receiver<Option<Arc<LatestFrame>>> {
        self.latest.subscribe()
    }

    /// The session's frame store, while it still owns the folder.
    pub fn frame_store(&self) -> Option<Arc<FrameStore>> {
        let frames = self.frames();
        frames.store.clone().filter(|_| !frames.retired)
    }

    /// The worker opened the folder.
    pub(super) fn attach_store(&self, store: Arc<FrameStore>) {
        let mut frames = self.frames();
        if frames.retired {
            store.retire();
        }
        frames.store = Some(store);
    }

    /// The folder now belongs to nobody or to a newer session: stop deleting in it
    /// (waiting for a deletion under way).
    pub(super) fn retire_store(&self) {
        let store = {
            let mut frames = self.frames();
            frames.retired = true;
            frames.store.clone()
        };
        if let Some(store) = store {
            store.retire();
        }
    }

    fn frames(&self) -> MutexGuard<'_, FrameFolder> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the session as asked by a caller; the worker sees the token and exits.
    pub fn request_stop(&self) {
        self.stop.stop();
        self.transition(CameraState::stop_requested);
    }

    /// Locks the state; a worker that panicked while holding it cannot poison readers.
    fn state(&self) -> MutexGuard<'_, CameraState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one transition and publishes its event, outside the lock.
    fn transition(&self, change: impl FnOnce(&mut CameraState) -> Option<Change>) {
        let change = change(&mut self.state());
        if let Some(change) = change {
            self.events.publish(&self.id, change);
        }
    }

    pub(super) fn connecting(&self) {
        self.transition(CameraState::connecting);
    }

    pub(super) fn connected(&self, live: bool) {
        self.transition(|state| state.connected(live));
    }

    /// Counts a written frame and makes it the newest, unless a later one (encoded
    /// faster on another thread) already is. The counters and the newest frame are
    /// changed under the state lock, so two encoder threads finishing together leave
    /// them consistent.
    pub(super) fn frame_written(&self, frame: LatestFrame, progress: Option<f64>) {
        self.transition(|state| {
            let (seq, pts, at) = (frame.seq, frame.pts, frame.captured_at);
            let bytes = frame.jpeg.len() as u64;
            self.latest.send_if_modified(|latest| {
                let newer = latest.as_ref().is_none_or(|l| l.seq < seq);
                if newer {
                    *latest = Some(Arc::new(frame));
                }
                newer
            });
            state.frame_written(seq, pts, at, bytes, progress)
        });
    }

    pub(super) fn frames_dropped(&self, reason: DropReason, count: u64) {
        self.transition(|state| state.frames_dropped(reason, count));
    }

    pub(super) fn write_failed(&self, message: String) {
        self.transition(|state| state.write_failed(message));
    }

    pub(super) fn frames_deleted(&self, count: u64) {
        self.transition(|state| state.frames_deleted(count));
    }

    pub(super) fn writing_paused(&self, message: String) {
        self.transition(|state| state.writing_paused(message));
    }

    pub(super) fn writing_resumed(&self) {
        self.transition(CameraState::writing_resumed);
    }

    pub(super) fn retrying(&self, kind: FailureKind, message: String, delay: Duration) {
        self.transition(|state| state.retrying(kind, message, delay));
    }

    pub(super) fn hardware(&self, hwaccel: &HwStatus) {
        self.transition(|state| state.hardware(hwaccel));
    }

    pub(super) fn pacing_fell_behind(&self, total: u64) {
        self.transition(|state| state.pacing_fell_behind(total));
    }

    pub(super) fn frames_sized(&self, size: Size) {
        self.transition(|state| state.frames_sized(size));
    }

    /// Ends the session and wakes the newest frame's followers, so they see it ended.
    pub(super) fn finished(&self, outcome: Outcome) {
        self.transition(|state| state.finished(outcome, SystemTime::now()));
        self.latest.send_modify(|_| {});
    }
}

/// Whether a start created a new session.
pub enum Admission {
    Started(Arc<Camera>),
    AlreadyRunning(Arc<Camera>),
    /// As many cameras as allowed are running (`MAX_CAMERAS`); nothing was started.
    Full {
        running: usize,
        limit: usize,
    },
}

#[derive(Debug)]
pub struct Registry {
    cameras: Mutex<HashMap<CameraId, Arc<Camera>>>,
    events: Events,
    /// Running sessions at most: each holds a thread and a decoder.
    max_running: usize,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::with_max_running(usize::MAX)
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry that admits a new session only while fewer than `max_running` run.
    pub fn with_max_running(max_running: usize) -> Registry {
        Registry {
            cameras: Mutex::default(),
            events: Events::default(),
            max_running,
        }
    }

    fn cameras(&self) -> MutexGuard<'_, HashMap<CameraId, Arc<Camera>>> {
        self.cameras.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every camera's events.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Atomically replaces a finished session of `id` with a new one, or reports the
    /// running one; two concurrent calls never both start. A new session is refused
    /// while the limit of running ones is reached; cameras that ended (stopped,
    /// completed, failed) are still listed but hold no thread, so they do not count.
    pub fn admit(&self, id: &CameraId, settings: CameraSettings, hwaccel: HwStatus) -> Admission {
        let mut cameras = self.cameras();
        if let Some(existing) = cameras.get(id).filter(|c| c.is_running()) {
            return Admission::AlreadyRunning(Arc::clone(existing));
        }
        let running = cameras.values().filter(|c| c.is_running()).count();
        if running >= self.max_running {
            return Admission::Full {
                running,
                limit: self.max_running,
            };
        }
        let camera = Arc::new(Camera::new(
            id.clone(),
            settings,
            hwaccel,
            self.events.clone(),
        ));
        let replaced = cameras.insert(id.clone(), Arc::clone(&camera));
        drop(cameras);
        // Before the new session's thread exists: nothing of the old one deletes in
        // the folder once the new one has cleared or listed it.
        if let Some(replaced) = replaced {
            replaced.retire_store();
        }
        Admission::Started(camera)
    }

    /// Forgets `id` unless its session is running (its status and metrics go with it);
    /// returns what was removed.
    pub fn remove(&self, id: &CameraId) -> Option<Arc<Camera>> {
        self.remove_if(id, |_| true)
    }

    /// Forgets `id` if its session is not running and `forget` agrees; `forget` runs
    /// under the registry's lock, so no new session of `id` starts meanwhile.
    pub(super) fn remove_if(
        &self,
        id: &CameraId,
        forget: impl FnOnce(&Camera) -> bool,
    ) -> Option<Arc<Camera>> {
        let mut cameras = self.cameras();
        let camera = cameras.get(id).filter(|c| !c.is_running())?;
        if !forget(camera) {
            return None;
        }
        let camera = cameras.remove(id)?;
        drop(cameras);
        camera.retire_store();
        Some(camera)
    }

    pub fn get(&self, id: &CameraId) -> Option<Arc<Camera>> {
        self.cameras().get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Camera>> {
        self.cameras().values().cloned().collect()
    }

    /// Counts per status, for `health/`.
    pub fn counts(&self) -> HashMap<Status, usize> {
        let mut counts = HashMap::new();
        for camera in self.all() {
            *counts.entry(camera.status()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;
    use std::path::PathBuf;

    fn settings() -> CameraSettings {
        CameraSettings::new(
            Source::Url("rtsp://u:p@h/s".into()),
            crate::sampling::Fps::DEFAULT,
            PathBuf::from("/tmp/x"),
        )
    }

    #[test]
    fn admission_is_exclusive_while_running() {
        let registry = Registry::new();
        let id = CameraId::parse("cam").unwrap();
        let admit = || registry.admit(&id, settings(), HwStatus::default());
        assert!(matches!(admit(), Admission::Started(_)));
        assert!(matches!(admit(), Admission::AlreadyRunning(_)));
        registry.get(&id).unwrap().request_stop();
        assert!(matches!(admit(), Admission::Started(_)));
    }

    #[test]
    fn only_running_sessions_count_against_the_limit() {
        let registry = Registry::with_max_running(2);
        let [a, b, c] = ["a", "b", "c"].map(|id| CameraId::parse(id).unwrap());
        let admit = |id: &CameraId| registry.admit(id, settings(), HwStatus::default());
        assert!(matches!(admit(&a), Admission::Started(_)));
        assert!(matches!(admit(&b), Admission::Started(_)));
        assert!(matches!(
            admit(&c),
            Admission::Full {
                running: 2,
                limit: 2
            }
        ));
        // At the limit, a running camera's own start still answers already running.
        assert!(matches!(admit(&a), Admission::AlreadyRunning(_)));
        registry.get(&a).unwrap().request_stop();
        assert!(matches!(admit(&c), Admission::Started(_)));
        // The stopped camera is listed, but its new session would be a third.
        assert!(registry.get(&a).is_some());
        assert!(matches!(admit(&a), Admission::Full { .. }));
    }

    #[test]
    fn every_transition_is_published_once() {
        let registry = Registry::new();
        let mut events = registry.events().subscribe();
        let id = CameraId::parse("cam").unwrap();
        let Admission::Started(camera) = registry.admit(&id, settings(), HwStatus::default())
        else {
            panic!("not started");
        };
        camera.connecting();
        camera.connected(true);
        camera.frames_dropped(DropReason::QueueFull, 1);
        camera.request_stop();
        camera.request_stop();
        camera.finished(Outcome::Stopped);
        camera.frames_deleted(2);
        let changes: Vec<Change> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| {
                assert_eq!(event.camera, id);
                event.change
            })
            .collect();
        assert_eq!(
            changes,
            [
                Change::Started {
                    source: "rtsp://u:***@h/s".into(),
                    fps: crate::sampling::Fps::DEFAULT.get(),
                },
                Change::Connecting,
                Change::Connected { live: true },
                Change::FramesDropped {
                    reason: DropReason::QueueFull,
                    count: 1
                },
                Change::StopRequested,
                Change::Finished {
                    status: Status::Stopped,
                    error: None,
                    kind: None,
                    frame_count: 0,
                },
                Change::FramesDeleted { count: 2 },
            ]
        );
    }

    #[test]
    fn only_a_camera_that_is_not_running_is_removed() {
        let registry = Registry::new();
        let id = CameraId::parse("cam").unwrap();
        assert!(registry.remove(&id).is_none());
        let Admission::Started(camera) = registry.admit(&id, settings(), HwStatus::default())
        else {
            panic!("not started");
        };
        assert!(registry.remove(&id).is_none());
        camera.request_stop();
        let removed = registry.remove(&id).unwrap();
        assert!(Arc::ptr_eq(&removed, &camera));
        assert!(registry.get(&id).is_none());
    }

    #[test]
    fn a_new_session_retires_the_old_store() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new();
        let id = CameraId::parse("cam").unwrap();
        let Admission::Started(old) = registry.admit(&id, settings(), HwStatus::default()) else {
            panic!("not started");
        };
        let store = Arc::new(FrameStore::open_with_ledger(dir.path(), true).unwrap());
        store.write(b"x").unwrap();
        store.write(b"y").unwrap();
        old.attach_store(Arc::clone(&store));
        assert!(old.frame_store().is_some());
        old.request_stop();
        assert!(matches!(
            registry.admit(&id, settings(), HwStatus::default()),
            Admission::Started(_)
        ));
        assert!(old.frame_store().is_none());
        assert_eq!(store.delete_oldest(1).frames, 0);
        assert!(dir.path().join("frame_0001.jpg").exists());
    }
}
