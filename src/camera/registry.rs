//! Shared state between camera workers and the HTTP layer: for each camera id, what
//! was asked (settings), what is happening (state), the newest frame and the stop
//! token. Neither side imports the other; both only talk to this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::events::{Change, Events};
use super::settings::CameraSettings;
use super::state::{CameraSnapshot, CameraState, DropReason, Outcome, Status};
use super::timings::CameraTimings;
use super::HwStatus;
use crate::media::FailureKind;
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
    latest: Mutex<Option<Arc<LatestFrame>>>,
    timings: CameraTimings,
    events: Events,
}

impl Camera {
    /// A running session; publishes `Started`.
    pub fn new(
        id: CameraId,
        settings: CameraSettings,
        hwaccel: HwStatus,
        events: Events,
    ) -> Camera {
        let camera = Camera {
            id,
            settings,
            stop: StopToken::new(),
            state: Mutex::new(CameraState::new(hwaccel, SystemTime::now())),
            latest: Mutex::new(None),
            timings: CameraTimings::default(),
            events,
        };
        camera.events.publish(&camera.id, Change::Started);
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

    /// How long this session's frames took to decode and encode.
    pub fn timings(&self) -> &CameraTimings {
        &self.timings
    }

    pub fn latest(&self) -> Option<Arc<LatestFrame>> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    pub(super) fn connected(&self) {
        self.transition(CameraState::connected);
    }

    /// Counts a written frame and makes it the newest, unless a later one (encoded
    /// faster on another thread) already is. The counters and the newest frame are
    /// changed under the state lock, so two encoder threads finishing together leave
    /// them consistent.
    pub(super) fn frame_written(&self, frame: LatestFrame, progress: Option<f64>) {
        self.transition(|state| {
            let (seq, pts, at) = (frame.seq, frame.pts, frame.captured_at);
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            if latest.as_ref().is_none_or(|l| l.seq < seq) {
                *latest = Some(Arc::new(frame));
            }
            drop(latest);
            state.frame_written(seq, pts, at, progress)
        });
    }

    pub(super) fn frames_dropped(&self, reason: DropReason, count: u64) {
        self.transition(|state| state.frames_dropped(reason, count));
    }

    pub(super) fn write_failed(&self, message: String) {
        self.transition(|state| state.write_failed(message));
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

    pub(super) fn finished(&self, outcome: Outcome) {
        self.transition(|state| state.finished(outcome));
    }
}

/// Whether a start created a new session.
pub enum Admission {
    Started(Arc<Camera>),
    AlreadyRunning(Arc<Camera>),
}

#[derive(Debug, Default)]
pub struct Registry {
    cameras: Mutex<HashMap<CameraId, Arc<Camera>>>,
    events: Events,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn cameras(&self) -> MutexGuard<'_, HashMap<CameraId, Arc<Camera>>> {
        self.cameras.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every camera's events.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Atomically replaces a finished session of `id` with a new one, or reports the
    /// running one; two concurrent calls never both start.
    pub fn admit(&self, id: &CameraId, settings: CameraSettings, hwaccel: HwStatus) -> Admission {
        let mut cameras = self.cameras();
        if let Some(existing) = cameras.get(id).filter(|c| c.is_running()) {
            return Admission::AlreadyRunning(Arc::clone(existing));
        }
        let camera = Arc::new(Camera::new(
            id.clone(),
            settings,
            hwaccel,
            self.events.clone(),
        ));
        cameras.insert(id.clone(), Arc::clone(&camera));
        Admission::Started(camera)
    }

    pub fn get(&self, id: &CameraId) -> Option<Arc<Camera>> {
        self.cameras().get(id).cloned()
    }

    /// Forgets `id` unless its session is running: its metrics and status go with it.
    pub fn remove(&self, id: &CameraId) -> Option<Arc<Camera>> {
        let mut cameras = self.cameras();
        if cameras.get(id)?.is_running() {
            return None;
        }
        cameras.remove(id)
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
    fn only_a_camera_that_is_not_running_is_removed() {
        let registry = Registry::new();
        let id = CameraId::parse("cam").unwrap();
        assert!(registry.remove(&id).is_none());
        registry.admit(&id, settings(), HwStatus::default());
        assert!(registry.remove(&id).is_none());
        assert!(registry.get(&id).is_some());
        registry.get(&id).unwrap().request_stop();
        assert_eq!(registry.remove(&id).unwrap().id(), &id);
        assert!(registry.get(&id).is_none());
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
        camera.connected();
        camera.frames_dropped(DropReason::QueueFull, 1);
        camera.request_stop();
        camera.request_stop();
        camera.finished(Outcome::Stopped);
        let changes: Vec<Change> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| {
                assert_eq!(event.camera, id);
                event.change
            })
            .collect();
        assert_eq!(
            changes,
            [
                Change::Started,
                Change::Connected,
                Change::FramesDropped {
                    reason: DropReason::QueueFull,
                    count: 1
                },
                Change::StopRequested,
                Change::Finished {
                    status: Status::Stopped,
                    error: None
                },
            ]
        );
    }
}
