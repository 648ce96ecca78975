//! Shared state between camera workers and the HTTP layer: for each camera id, what
//! was asked (settings), what is happening (state), the newest frame and the stop
//! token. Neither side imports the other; both only talk to this.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;

use crate::media::hw::{HwChoice, HwStatus};
use crate::sampling::Sampling;
use crate::source::{CameraId, RtspTransport, Source};
use crate::stop::StopToken;

/// What a caller asked for when starting a camera.
#[derive(Debug, Clone)]
pub struct CameraSettings {
    pub source: Source,
    pub fps: f64,
    pub hwaccel_requested: HwChoice,
    pub output_folder: PathBuf,
    /// An uploaded file that belongs to this session.
    pub upload: Option<PathBuf>,
    pub rtsp_transport: RtspTransport,
    /// Play a file at its own speed instead of as fast as possible.
    pub realtime: bool,
    /// Start a file again at its end (with `realtime`, a simulated live camera).
    pub looped: bool,
    pub sampling: Sampling,
}

impl CameraSettings {
    /// Settings with the defaults for everything but the source and rate.
    pub fn new(source: Source, fps: f64, output_folder: PathBuf) -> CameraSettings {
        CameraSettings {
            source,
            fps,
            hwaccel_requested: HwChoice::Auto,
            output_folder,
            upload: None,
            rtsp_transport: RtspTransport::default(),
            realtime: false,
            looped: false,
            sampling: Sampling::default(),
        }
    }

    /// Sources that never end by themselves: live ones and looped files.
    pub fn endless(&self) -> bool {
        self.looped || self.source.is_live()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Completed,
    Stopped,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Connecting,
    Streaming,
    Reconnecting,
    Finished,
}

/// What is happening now.
#[derive(Debug, Clone)]
pub struct CameraState {
    pub status: Status,
    pub phase: Phase,
    pub frame_count: u64,
    pub dropped_corrupt: u64,
    pub dropped_write_failed: u64,
    pub dropped_queue_full: u64,
    pub last_error: Option<String>,
    pub last_error_kind: Option<&'static str>,
    pub restart_count: u64,
    pub hwaccel: HwStatus,
    pub started_at: SystemTime,
    pub last_frame_at: Option<SystemTime>,
    pub progress: Option<f64>,
    pub measured_fps: Option<f64>,
    /// Times a realtime file fell more than a second behind its own clock.
    pub pacing_lag_events: u64,
}

/// The newest frame, shared with HTTP readers without copying.
#[derive(Debug, Clone)]
pub struct LatestFrame {
    pub jpeg: Bytes,
    pub seq: u64,
    pub pts: f64,
    pub captured_at: SystemTime,
    /// Header values, made once per frame rather than once per request.
    pub headers: FrameHeaders,
}

#[derive(Debug, Clone)]
pub struct FrameHeaders {
    pub etag: String,
    pub last_modified: String,
    pub captured_at: String,
    pub seq: String,
    pub pts: String,
}

impl LatestFrame {
    pub fn new(jpeg: Bytes, seq: u64, pts: f64, captured_at: SystemTime) -> LatestFrame {
        let nanos = captured_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let headers = FrameHeaders {
            etag: format!("\"{seq}-{nanos:x}\""),
            last_modified: httpdate::fmt_http_date(captured_at),
            captured_at: rfc3339(captured_at),
            seq: seq.to_string(),
            pts: format!("{pts:.6}"),
        };
        LatestFrame {
            jpeg,
            seq,
            pts,
            captured_at,
            headers,
        }
    }
}

/// One camera's session.
#[derive(Debug)]
pub struct Camera {
    pub id: CameraId,
    pub settings: CameraSettings,
    pub stop: StopToken,
    state: Mutex<CameraState>,
    latest: Mutex<Option<Arc<LatestFrame>>>,
}

impl Camera {
    pub fn new(id: CameraId, settings: CameraSettings) -> Camera {
        Camera {
            id,
            settings,
            stop: StopToken::new(),
            state: Mutex::new(CameraState {
                status: Status::Running,
                phase: Phase::Connecting,
                frame_count: 0,
                dropped_corrupt: 0,
                dropped_write_failed: 0,
                dropped_queue_full: 0,
                last_error: None,
                last_error_kind: None,
                restart_count: 0,
                hwaccel: HwStatus::default(),
                started_at: SystemTime::now(),
                last_frame_at: None,
                progress: None,
                measured_fps: None,
                pacing_lag_events: 0,
            }),
            latest: Mutex::new(None),
        }
    }

    /// Locks the state; a worker that panicked while holding it cannot poison readers.
    pub fn state(&self) -> MutexGuard<'_, CameraState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_running(&self) -> bool {
        self.state().status == Status::Running
    }

    pub fn latest(&self) -> Option<Arc<LatestFrame>> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a written frame and makes it the newest, unless a later one (encoded
    /// faster on another thread) already is.
    pub fn publish(&self, frame: LatestFrame) {
        let at = frame.captured_at;
        {
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            if latest.as_ref().is_none_or(|l| l.seq < frame.seq) {
                *latest = Some(Arc::new(frame));
            }
        }
        let mut state = self.state();
        state.frame_count += 1;
        state.last_frame_at = Some(at);
    }

    /// Ends the session as asked by a caller; the worker sees the token and exits.
    pub fn request_stop(&self) {
        self.stop.stop();
        let mut state = self.state();
        if state.status == Status::Running {
            state.status = Status::Stopped;
            state.phase = Phase::Finished;
        }
    }

    pub fn snapshot(&self) -> StatusReport {
        let state = self.state().clone();
        StatusReport {
            camera_id: self.id.to_string(),
            status: state.status.as_str(),
            frame_count: state.frame_count,
            last_error: state.last_error,
            restart_count: state.restart_count,
            phase: Some(state.phase),
            source: Some(self.settings.source.redacted()),
            fps: Some(self.settings.fps),
            measured_fps: state.measured_fps,
            hwaccel: Some(state.hwaccel.name()),
            hwaccel_requested: Some(self.settings.hwaccel_requested.as_str()),
            hwaccel_reason: state.hwaccel.reason,
            frames_dropped: Some(
                state.dropped_corrupt + state.dropped_write_failed + state.dropped_queue_full,
            ),
            frames_dropped_reasons: Some(DropReasons {
                corrupt: state.dropped_corrupt,
                write_failed: state.dropped_write_failed,
                queue_full: state.dropped_queue_full,
            }),
            last_error_kind: state.last_error_kind,
            rtsp_transport: self
                .settings
                .source
                .location()
                .starts_with("rtsp")
                .then_some(self.settings.rtsp_transport.as_str()),
            sampling: Some(self.settings.sampling.as_str()),
            realtime: Some(self.settings.realtime),
            pacing_lag_events: self.settings.realtime.then_some(state.pacing_lag_events),
            looped: Some(self.settings.looped),
            last_frame_at: state.last_frame_at.map(rfc3339),
            started_at: Some(rfc3339(state.started_at)),
            progress: state.progress,
            output_folder: Some(self.settings.output_folder.display().to_string()),
        }
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Stopped => "stopped",
            Status::Error => "error",
        }
    }
}

/// The `decode/status/` answer. Old callers read the first five keys.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub camera_id: String,
    pub status: &'static str,
    pub frame_count: u64,
    pub last_error: Option<String>,
    pub restart_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_fps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaccel: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaccel_requested: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaccel_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_dropped_reasons: Option<DropReasons>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtsp_transport: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing_lag_events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "loop")]
    pub looped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_frame_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_folder: Option<String>,
}

impl StatusReport {
    pub fn not_started(camera_id: &CameraId) -> StatusReport {
        StatusReport {
            camera_id: camera_id.to_string(),
            status: "not_started",
            frame_count: 0,
            last_error: None,
            restart_count: 0,
            phase: None,
            source: None,
            fps: None,
            measured_fps: None,
            hwaccel: None,
            hwaccel_requested: None,
            hwaccel_reason: None,
            frames_dropped: None,
            frames_dropped_reasons: None,
            last_error_kind: None,
            rtsp_transport: None,
            sampling: None,
            realtime: None,
            pacing_lag_events: None,
            looped: None,
            last_frame_at: None,
            started_at: None,
            progress: None,
            output_folder: None,
        }
    }
}

/// Frames decoded but not written, by reason.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DropReasons {
    pub corrupt: u64,
    pub write_failed: u64,
    pub queue_full: u64,
}

pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Whether a start created a new session.
pub enum Admission {
    Started(Arc<Camera>),
    AlreadyRunning(Arc<Camera>),
}

#[derive(Debug, Default)]
pub struct Registry {
    cameras: Mutex<HashMap<CameraId, Arc<Camera>>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn cameras(&self) -> MutexGuard<'_, HashMap<CameraId, Arc<Camera>>> {
        self.cameras.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Atomically replaces a finished session of `id` with a new one, or reports the
    /// running one; two concurrent calls never both start.
    pub fn admit(&self, id: &CameraId, settings: CameraSettings) -> Admission {
        let mut cameras = self.cameras();
        if let Some(existing) = cameras.get(id).filter(|c| c.is_running()) {
            return Admission::AlreadyRunning(Arc::clone(existing));
        }
        let camera = Arc::new(Camera::new(id.clone(), settings));
        cameras.insert(id.clone(), Arc::clone(&camera));
        Admission::Started(camera)
    }

    pub fn get(&self, id: &CameraId) -> Option<Arc<Camera>> {
        self.cameras().get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Camera>> {
        self.cameras().values().cloned().collect()
    }

    /// Counts per status, for `health/`.
    pub fn counts(&self) -> HashMap<&'static str, usize> {
        let mut counts = HashMap::new();
        for camera in self.all() {
            *counts.entry(camera.state().status.as_str()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CameraSettings {
        CameraSettings::new(
            Source::Url("rtsp://u:p@h/s".into()),
            1.0,
            PathBuf::from("/tmp/x"),
        )
    }

    #[test]
    fn admission_is_exclusive_while_running() {
        let registry = Registry::new();
        let id = CameraId::parse("cam").unwrap();
        assert!(matches!(
            registry.admit(&id, settings()),
            Admission::Started(_)
        ));
        assert!(matches!(
            registry.admit(&id, settings()),
            Admission::AlreadyRunning(_)
        ));
        registry.get(&id).unwrap().request_stop();
        assert!(matches!(
            registry.admit(&id, settings()),
            Admission::Started(_)
        ));
    }

    #[test]
    fn snapshot_redacts_the_source() {
        let camera = Camera::new(CameraId::parse("cam").unwrap(), settings());
        let json = serde_json::to_value(camera.snapshot()).unwrap();
        assert_eq!(json["source"], "rtsp://u:***@h/s");
        assert_eq!(json["status"], "running");
        assert_eq!(json["last_error"], serde_json::Value::Null);
    }
}
