//! The JSON and header values the API answers with, built from camera snapshots.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::camera::{Camera, CameraSnapshot, LatestFrame, Status};
use crate::media::hw::HwBackend;
use crate::media::VideoInfo;
use crate::source::CameraId;

/// `status` as callers read it: a camera's status, or that it never started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedStatus {
    NotStarted,
    Camera(Status),
}

impl ReportedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportedStatus::NotStarted => "not_started",
            ReportedStatus::Camera(status) => status.as_str(),
        }
    }
}

/// A string of the known statuses.
impl PartialSchema for ReportedStatus {
    fn schema() -> RefOr<Schema> {
        let mut values = vec![ReportedStatus::NotStarted.as_str()];
        values.extend(Status::ALL.map(|s| s.as_str()));
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values))
            .description(Some(
                "`running` (also while reconnecting), `completed` (a finite source reached its end), \
                 `stopped`, `error`, or `not_started` (unknown camera)",
            ))
            .into()
    }
}

impl ToSchema for ReportedStatus {}

impl Serialize for ReportedStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The `decode/status/` answer. Old callers read the first five keys; the others are
/// left out while they have no value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusReport {
    /// The camera asked about.
    pub camera_id: String,
    #[schema(inline)]
    pub status: ReportedStatus,
    /// Frames written in this session; never goes down.
    pub frame_count: u64,
    /// The last failure in words (credentials in URLs replaced by `***`); `null` again
    /// with the next frame written.
    #[schema(required)]
    pub last_error: Option<String>,
    /// How often the source was reopened after a failure in this session.
    pub restart_count: u64,
    /// `connecting` (first open), `streaming`, `reconnecting` (after a failure), `finished`.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// The source, credentials redacted (an upload shows its stored path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The rate asked for, frames per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// The rate frames are actually written at (smoothed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_fps: Option<f64>,
    /// The backend decoding now (`none`: software).
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaccel: Option<&'static str>,
    /// The backend asked for (`force_format`).
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaccel_requested: Option<&'static str>,
    /// Why `hwaccel` differs from `hwaccel_requested` (`null` when it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaccel_reason: Option<String>,
    /// Frames decoded but not written, in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_dropped_reasons: Option<DropReasons>,
    /// `authentication`, `not_found`, `refused`, `timeout`, `stalled`,
    /// `unsupported_codec`, `invalid_data`, `too_large`, `end_of_stream`, `network`,
    /// `write_failed`, `disk_full` or `other`.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_kind: Option<&'static str>,
    /// `tcp`, `udp` or `auto`; for RTSP sources only.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtsp_transport: Option<&'static str>,
    /// The sampling mode asked for: `exact`, `keyframes` or `all`.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<&'static str>,
    /// Whether a source that ends is played at its own speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime: Option<bool>,
    /// For `realtime` files: how often playback fell more than a second behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing_lag_events: Option<u64>,
    /// Whether a source that ends starts again.
    #[serde(skip_serializing_if = "Option::is_none", rename = "loop")]
    pub looped: Option<bool>,
    /// Whether the source is treated as live (reconnected at its end) or finite
    /// (completed at its end); `null` until known. Shown for every camera that was started.
    #[schema(value_type = Option<bool>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<Option<bool>>,
    /// When the newest frame was written (RFC 3339, UTC, milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_frame_at: Option<String>,
    /// When the session started (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Share 0..1 of a source with a known duration done; 1.0 once `completed`.
    #[schema(minimum = 0, maximum = 1)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// The camera's frame folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_folder: Option<String>,
    /// The most numbered frames kept (0: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frames: Option<u64>,
    /// Frames older than this many seconds are deleted; absent: no age limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<f64>,
    /// Old frames deleted from the folder in this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_deleted: Option<u64>,
    /// `true` while frames are not written for lack of disk space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writing_paused: Option<bool>,
    /// When the session ended (RFC 3339); absent while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The frame width asked for; absent when not asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// The frame height asked for; absent when not asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The longest side asked for; absent when not asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_side: Option<u32>,
    /// The region of interest asked for, `x,y,w,h` in source pixels; absent when not asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop: Option<String>,
    /// The camera's own JPEG quality; absent: `JPEG_QUALITY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// Width of the frames being written (what `width`, `height`, `max_side` and `crop`
    /// made of the source, else its own); absent until the first frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_width: Option<u32>,
    /// Height of the frames being written; absent until the first frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_height: Option<u32>,
}

/// `{"message": ...}`, the answer of the roots.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// `FFMPEG Video Pipeline API is running!`
    pub message: &'static str,
}

/// The `health/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy` while the daemon answers.
    pub status: &'static str,
    /// `video-pipeline`.
    pub service: &'static str,
    /// The build's version.
    pub version: &'static str,
    /// Seconds since the daemon started.
    pub uptime_seconds: u64,
    /// Cameras started since the daemon started, counted by the status of each one's
    /// latest session (`running`, `completed`, `stopped`, `error`).
    #[schema(value_type = BTreeMap<String, u64>)]
    pub cameras: BTreeMap<&'static str, usize>,
}

/// What `decode/` did.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartOutcome {
    Started,
    AlreadyRunning,
}

/// The `decode/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecodeAnswer {
    /// `Decoding started` or `Decoding already running`.
    pub message: &'static str,
    pub camera_id: String,
    /// The camera's frame folder, `OUTPUT_FOLDER/<camera_id>`.
    pub output_folder: String,
    pub status: StartOutcome,
}

/// The `decode/stop/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopAnswer {
    /// `Decoding stopped`, or `Decoding stopped (no task was running)` for an unknown
    /// camera or one whose session already ended.
    pub message: &'static str,
    pub camera_id: String,
}

/// The `cameras/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CameraList {
    /// How many cameras are listed.
    pub count: usize,
    /// Sorted by `camera_id`, each as `decode/status/` gives it.
    pub cameras: Vec<StatusReport>,
}

/// The `video-info/` and `video-info-url/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoInfoAnswer {
    /// `Video information retrieved`.
    pub message: &'static str,
    #[schema(schema_with = super::openapi::video_info_schema)]
    pub info: VideoInfo,
}

/// The `hw-accel-cap/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HwAccelCap {
    pub message: HwAvailable,
    /// The device types this libav build knows.
    #[schema(value_type = Vec<String>)]
    pub compiled_hw_types: Vec<String>,
    /// Why each known backend that is not available is not, by backend name.
    #[schema(value_type = BTreeMap<String, String>)]
    pub unavailable: BTreeMap<&'static str, String>,
}

/// The backends that really decoded here.
#[derive(Debug, Serialize, ToSchema)]
pub struct HwAvailable {
    /// Backends whose device was created, a decoder opened with it, and a short H.264
    /// clip came back from the device; empty without a usable GPU.
    #[schema(value_type = Vec<String>)]
    pub available_hw_accelerations: Vec<HwBackend>,
}

/// Frames decoded but not written, by reason.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct DropReasons {
    /// Damaged, or after damage until the next keyframe.
    pub corrupt: u64,
    /// The disk refused the file.
    pub write_failed: u64,
    /// The JPEG encoders were `ENCODE_QUEUE_FRAMES` frames behind.
    pub queue_full: u64,
    /// Writing was paused for lack of space.
    pub disk_full: u64,
}

impl StatusReport {
    pub fn of(camera: &Camera) -> StatusReport {
        StatusReport::from_snapshot(camera, camera.snapshot())
    }

    fn from_snapshot(camera: &Camera, state: CameraSnapshot) -> StatusReport {
        let settings = camera.settings();
        let (last_error, last_error_kind) = match state.last_error {
            Some(error) => (Some(error.message), Some(error.kind.as_str())),
            None => (None, None),
        };
        StatusReport {
            camera_id: camera.id().to_string(),
            status: ReportedStatus::Camera(state.status),
            frame_count: state.frame_count,
            last_error,
            restart_count: state.restart_count,
            phase: Some(state.phase.as_str()),
            source: Some(settings.source.redacted()),
            fps: Some(settings.fps.get()),
            measured_fps: state.measured_fps,
            hwaccel: Some(state.hwaccel.name()),
            hwaccel_requested: Some(settings.hwaccel_requested.as_str()),
            hwaccel_reason: state.hwaccel.reason,
            frames_dropped: Some(state.drops.total()),
            frames_dropped_reasons: Some(DropReasons {
                corrupt: state.drops.corrupt,
                write_failed: state.drops.write_failed,
                queue_full: state.drops.queue_full,
                disk_full: state.drops.disk_full,
            }),
            last_error_kind,
            rtsp_transport: settings
                .source
                .location()
                .starts_with("rtsp")
                .then_some(settings.rtsp_transport.as_str()),
            sampling: Some(settings.sampling.as_str()),
            realtime: Some(settings.realtime),
            pacing_lag_events: settings.realtime.then_some(state.pacing_lag_events),
            looped: Some(settings.looped),
            live: Some(state.live),
            last_frame_at: state.last_frame_at.map(rfc3339),
            started_at: Some(rfc3339(state.started_at)),
            progress: state.progress,
            output_folder: Some(settings.output_folder.display().to_string()),
            max_frames: Some(camera.limits().max_frames),
            max_age_seconds: settings.max_age.map(|age| age.as_secs_f64()),
            frames_deleted: Some(state.frames_deleted),
            writing_paused: Some(state.writing_paused),
            finished_at: state.finished_at.map(rfc3339),
            width: settings.shape.width,
            height: settings.shape.height,
            max_side: settings.shape.max_side,
            crop: settings.shape.crop.map(|crop| crop.to_string()),
            quality: settings.quality,
            output_width: state.output_size.map(|size| size.width),
            output_height: state.output_size.map(|size| size.height),
        }
    }

    pub fn not_started(camera_id: &CameraId) -> StatusReport {
        StatusReport {
            camera_id: camera_id.to_string(),
            status: ReportedStatus::NotStarted,
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
            live: None,
            last_frame_at: None,
            started_at: None,
            progress: None,
            output_folder: None,
            max_frames: None,
            max_age_seconds: None,
            frames_deleted: None,
            writing_paused: None,
            finished_at: None,
            width: None,
            height: None,
            max_side: None,
            crop: None,
            quality: None,
            output_width: None,
            output_height: None,
        }
    }
}

/// The `latest-frame/` response headers of a frame.
pub struct FrameHeaders {
    pub etag: String,
    pub last_modified: String,
    pub captured_at: String,
    pub seq: String,
    pub pts: String,
}

impl FrameHeaders {
    pub fn of(frame: &LatestFrame) -> FrameHeaders {
        let nanos = frame
            .captured_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        FrameHeaders {
            etag: format!("\"{}-{nanos:x}\"", frame.seq),
            last_modified: httpdate::fmt_http_date(frame.captured_at),
            captured_at: rfc3339(frame.captured_at),
            seq: frame.seq.to_string(),
            pts: format!("{:.6}", frame.pts),
        }
    }
}

pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{
        CameraSettings, DropCounts, ErrorKind, Events, HwStatus, LastError, Phase,
    };
    use crate::media::FailureKind;
    use crate::sampling::Fps;
    use crate::source::Source;
    use std::path::PathBuf;

    #[test]
    fn a_report_redacts_the_source() {
        let settings = CameraSettings::new(
            Source::Url("rtsp://u:p@h/s".into()),
            Fps::DEFAULT,
            PathBuf::from("/tmp/x"),
        );
        let camera = Camera::new(
            CameraId::parse("cam").unwrap(),
            settings,
            HwStatus::default(),
            Events::new(),
        );
        let json = serde_json::to_value(StatusReport::of(&camera)).unwrap();
        assert_eq!(json["source"], "rtsp://u:***@h/s");
        assert_eq!(json["status"], "running");
        assert_eq!(json["phase"], "connecting");
        assert_eq!(json["hwaccel"], "none");
        assert_eq!(json["last_error"], serde_json::Value::Null);
        // Not known before the source has opened.
        assert_eq!(json["live"], serde_json::Value::Null);
        let never = serde_json::to_value(StatusReport::not_started(camera.id())).unwrap();
        assert_eq!(never["status"], "not_started");
    }

    fn camera(id: &str, settings: CameraSettings) -> Camera {
        Camera::new(
            CameraId::parse(id).unwrap(),
            settings,
            HwStatus::default(),
            Events::new(),
        )
    }

    fn at(millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(millis)
    }

    /// The answers, byte for byte, that the service gave for these states before
    /// camera state became snapshots (old callers parse them as they are), extended
    /// only by keys added since: `disk_full`, the retention keys and the frame shape
    /// keys at the end.
    #[test]
    fn reports_are_byte_for_byte_what_callers_always_got() {
        let mut rtsp = CameraSettings::new(
            Source::Url("rtsp://u:p@h:8554/s".into()),
            Fps::new(2.5).unwrap(),
            PathBuf::from("/data/frames/door"),
        );
        rtsp.hwaccel_requested = crate::media::hw::HwChoice::parse("cuda").unwrap();
        rtsp.sampling = crate::sampling::Sampling::Keyframes;
        rtsp.max_frames = crate::camera::settings::FrameLimit::fixed(1000);
        rtsp.shape.width = Some(640);
        rtsp.shape.crop = Some(crate::shape::Crop::parse("0,120,1920,960").unwrap());
        rtsp.quality = Some(80);
        let door = camera("door", rtsp);
        let reconnecting = CameraSnapshot {
            status: Status::Running,
            phase: Phase::Reconnecting,
            frame_count: 42,
            drops: DropCounts {
                corrupt: 3,
                write_failed: 2,
                queue_full: 1,
                disk_full: 4,
            },
            last_error: Some(LastError {
                kind: ErrorKind::Source(FailureKind::Refused),
                message: "rtsp://u:***@h:8554/s: could not open (refused): Connection refused"
                    .into(),
            }),
            restart_count: 7,
            hwaccel: HwStatus {
                reason: Some(
                    "cuda: device context could not be created: x; decoding in software".into(),
                ),
                ..HwStatus::default()
            },
            started_at: at(1_700_000_000_123),
            last_frame_at: Some(at(1_700_000_100_456)),
            progress: None,
            measured_fps: Some(2.4),
            pacing_lag_events: 0,
            frames_deleted: 9,
            writing_paused: true,
            finished_at: None,
            live: Some(true),
            output_size: Some(crate::shape::Size {
                width: 640,
                height: 320,
            }),
        };
        let json = serde_json::to_string(&StatusReport::from_snapshot(&door, reconnecting));
        assert_eq!(
            json.unwrap(),
            r#"{"camera_id":"door","status":"running","frame_count":42,"last_error":"rtsp://u:***@h:8554/s: could not open (refused): Connection refused","restart_count":7,"phase":"reconnecting","source":"rtsp://u:***@h:8554/s","fps":2.5,"measured_fps":2.4,"hwaccel":"none","hwaccel_requested":"cuda","hwaccel_reason":"cuda: device context could not be created: x; decoding in software","frames_dropped":10,"frames_dropped_reasons":{"corrupt":3,"write_failed":2,"queue_full":1,"disk_full":4},"last_error_kind":"refused","rtsp_transport":"tcp","sampling":"keyframes","realtime":false,"loop":false,"live":true,"last_frame_at":"2023-11-14T22:15:00.456Z","started_at":"2023-11-14T22:13:20.123Z","output_folder":"/data/frames/door","max_frames":1000,"frames_deleted":9,"writing_paused":true,"width":640,"crop":"0,120,1920,960","quality":80,"output_width":640,"output_height":320}"#
        );

        let mut file = CameraSettings::new(
            Source::File(PathBuf::from("/videos/clip.mp4")),
            Fps::new(0.2).unwrap(),
            PathBuf::from("/data/frames/clip"),
        );
        file.realtime = true;
        file.looped = true;
        file.max_age = Some(std::time::Duration::from_secs(3600));
        let clip = camera("clip", file);
        let completed = CameraSnapshot {
            status: Status::Completed,
            phase: Phase::Finished,
            frame_count: 12,
            drops: DropCounts::default(),
            last_error: None,
            restart_count: 0,
            hwaccel: HwStatus::default(),
            started_at: at(1_700_000_000_000),
            last_frame_at: Some(at(1_700_000_060_999)),
            progress: Some(1.0),
            measured_fps: Some(0.2),
            pacing_lag_events: 5,
            frames_deleted: 0,
            writing_paused: false,
            finished_at: Some(at(1_700_000_061_500)),
            live: Some(false),
            output_size: Some(crate::shape::Size {
                width: 1920,
                height: 1080,
            }),
        };
        let json = serde_json::to_string(&StatusReport::from_snapshot(&clip, completed));
        assert_eq!(
            json.unwrap(),
            r#"{"camera_id":"clip","status":"completed","frame_count":12,"last_error":null,"restart_count":0,"phase":"finished","source":"/videos/clip.mp4","fps":0.2,"measured_fps":0.2,"hwaccel":"none","hwaccel_requested":"auto","frames_dropped":0,"frames_dropped_reasons":{"corrupt":0,"write_failed":0,"queue_full":0,"disk_full":0},"sampling":"exact","realtime":true,"pacing_lag_events":5,"loop":true,"live":false,"last_frame_at":"2023-11-14T22:14:20.999Z","started_at":"2023-11-14T22:13:20.000Z","progress":1.0,"output_folder":"/data/frames/clip","max_frames":0,"max_age_seconds":3600.0,"frames_deleted":0,"writing_paused":false,"finished_at":"2023-11-14T22:14:21.500Z","output_width":1920,"output_height":1080}"#
        );

        let never = StatusReport::not_started(&CameraId::parse("nobody").unwrap());
        assert_eq!(
            serde_json::to_string(&never).unwrap(),
            r#"{"camera_id":"nobody","status":"not_started","frame_count":0,"last_error":null,"restart_count":0}"#
        );
    }
}
