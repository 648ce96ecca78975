//! The wire form of the live event streams: which camera transitions a client sees,
//! as which `type`, with which fields. Pure mapping from [`CameraEvent`]; the feed
//! (`event_feed.rs`) numbers the events and hands them to clients.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::camera::{CameraEvent, Change, Status};
use crate::output::store::frame_name;
use crate::source::CameraId;

/// One event as clients receive it, serialized once for all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent {
    pub id: u64,
    pub kind: &'static str,
    pub camera: CameraId,
    /// The JSON object sent as SSE `data:` and as a WebSocket text message.
    pub json: Arc<str>,
}

impl WireEvent {
    /// Frame events go only to clients that asked for them.
    pub fn is_frame(&self) -> bool {
        self.kind == "frame"
    }
}

/// The wire event for `event` with number `id`; `None` for changes the streams do
/// not carry (drops, deletions, disk pauses, pacing, a stop request before its end).
pub fn wire_event(id: u64, event: &CameraEvent) -> Option<WireEvent> {
    let (kind, fields) = describe(&event.change)?;
    let mut object = Map::new();
    object.insert("id".into(), id.into());
    object.insert("type".into(), kind.into());
    object.insert("camera_id".into(), event.camera.as_str().into());
    object.insert("time".into(), time(event.at).into());
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    Some(WireEvent {
        id,
        kind,
        camera: event.camera.clone(),
        json: Value::Object(object).to_string().into(),
    })
}

/// RFC 3339 in UTC with milliseconds: `2024-05-01T12:00:00.250Z`.
fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn describe(change: &Change) -> Option<(&'static str, Value)> {
    Some(match change {
        Change::Started { source, fps } => ("started", json!({ "source": source, "fps": fps })),
        Change::Connecting => ("connecting", json!({})),
        Change::Connected { live } => ("streaming", json!({ "live": live })),
        Change::Retrying {
            kind,
            message,
            delay,
            restarts,
        } => (
            "reconnecting",
            json!({
                "error": message,
                "kind": kind.as_str(),
                "delay_seconds": delay.as_secs_f64(),
                "restart_count": restarts,
            }),
        ),
        Change::HardwareChanged(hwaccel) => (
            "hwaccel_fallback",
            json!({ "hwaccel": hwaccel.name(), "reason": hwaccel.reason }),
        ),
        Change::FrameWritten {
            seq,
            pts,
            captured_at,
            bytes,
        } => (
            "frame",
            json!({
                "seq": seq,
                "file": frame_name(*seq),
                "pts": pts,
                "captured_at": time(*captured_at),
                "bytes": bytes,
            }),
        ),
        Change::Finished {
            status,
            error,
            kind,
            frame_count,
        } => match status {
            Status::Stopped => ("stopped", json!({ "frame_count": frame_count })),
            Status::Completed => ("completed", json!({ "frame_count": frame_count })),
            Status::Error => (
                "error",
                json!({
                    "error": error,
                    "kind": kind.map(|k| k.as_str()),
                    "frame_count": frame_count,
                }),
            ),
            Status::Running => return None,
        },
        Change::FramesDropped { .. }
        | Change::FramesDeleted { .. }
        | Change::WritingPaused { .. }
        | Change::WritingResumed
        | Change::PacingFellBehind { .. }
        | Change::FramesSized { .. }
        | Change::StopRequested => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::HwStatus;
    use crate::media::FailureKind;
    use std::time::Duration;

    fn at(millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
    }

    fn wire(change: Change) -> Option<Value> {
        let event = CameraEvent {
            camera: CameraId::parse("cam-1").unwrap(),
            at: at(1_700_000_000_250),
            change,
        };
        wire_event(7, &event).map(|e| serde_json::from_str(&e.json).unwrap())
    }

    #[test]
    fn every_event_names_its_number_type_camera_and_time() {
        assert_eq!(
            wire(Change::Connected { live: true }).unwrap(),
            json!({
                "id": 7,
                "type": "streaming",
                "camera_id": "cam-1",
                "time": "2023-11-14T22:13:20.250Z",
                "live": true,
            })
        );
    }

    #[test]
    fn a_frame_names_its_file() {
        let frame = wire(Change::FrameWritten {
            seq: 42,
            pts: 1.5,
            captured_at: at(1_700_000_000_000),
            bytes: 1234,
        })
        .unwrap();
        assert_eq!(frame["type"], "frame");
        assert_eq!(frame["file"], "frame_0042.jpg");
        assert_eq!(frame["seq"], 42);
        assert_eq!(frame["pts"], 1.5);
        assert_eq!(frame["bytes"], 1234);
        assert_eq!(frame["captured_at"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn a_retry_carries_the_error_and_the_delay() {
        let retry = wire(Change::Retrying {
            kind: FailureKind::Network,
            message: "connection refused".into(),
            delay: Duration::from_millis(1500),
            restarts: 3,
        })
        .unwrap();
        assert_eq!(retry["type"], "reconnecting");
        assert_eq!(retry["error"], "connection refused");
        assert_eq!(retry["kind"], FailureKind::Network.as_str());
        assert_eq!(retry["delay_seconds"], 1.5);
        assert_eq!(retry["restart_count"], 3);
    }

    #[test]
    fn the_end_of_a_session_is_named_after_its_status() {
        let end = |status, error: Option<&str>, kind| {
            wire(Change::Finished {
                status,
                error: error.map(String::from),
                kind,
                frame_count: 9,
            })
            .unwrap()
        };
        let stopped = end(Status::Stopped, None, None);
        assert_eq!(
            (stopped["type"].as_str(), &stopped["frame_count"]),
            (Some("stopped"), &json!(9))
        );
        assert_eq!(end(Status::Completed, None, None)["type"], "completed");
        let failed = end(
            Status::Error,
            Some("not found"),
            Some(FailureKind::NotFound),
        );
        assert_eq!(failed["type"], "error");
        assert_eq!(failed["error"], "not found");
        assert_eq!(failed["kind"], FailureKind::NotFound.as_str());
        assert_eq!(failed["frame_count"], 9);
    }

    #[test]
    fn a_fallback_names_the_backend_now_and_why() {
        let fallback = wire(Change::HardwareChanged(HwStatus {
            backend: None,
            reason: Some("vaapi failed".into()),
        }))
        .unwrap();
        assert_eq!(fallback["type"], "hwaccel_fallback");
        assert_eq!(fallback["hwaccel"], "none");
        assert_eq!(fallback["reason"], "vaapi failed");
    }

    #[test]
    fn bookkeeping_changes_are_not_streamed() {
        assert_eq!(wire(Change::StopRequested), None);
        assert_eq!(wire(Change::FramesDeleted { count: 1 }), None);
        assert_eq!(wire(Change::WritingResumed), None);
        let started = wire(Change::Started {
            source: "rtsp://u:***@h/s".into(),
            fps: 2.0,
        })
        .unwrap();
        assert_eq!(
            (started["source"].as_str(), &started["fps"]),
            (Some("rtsp://u:***@h/s"), &json!(2.0))
        );
        assert_eq!(wire(Change::Connecting).unwrap()["type"], "connecting");
    }
}
