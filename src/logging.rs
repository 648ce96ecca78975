//! The process's logger (`LOG_FORMAT`: env_logger's text lines or one JSON object per
//! line, both filtered by `RUST_LOG`) and the camera a log line belongs to.
//!
//! A line's camera is the record's `camera` key-value when the call names it
//! (`log::info!(camera:% = id; "...")`), else the camera whose work the logging thread
//! is doing ([`CameraScope`]: set by a camera's thread for its session and by an
//! encoder thread for the frame it delivers). Code that does not know the camera, such
//! as the media layer and libav's own messages, is attributed through the scope.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;

use log::kv::Key;
use serde::Serialize;

/// The key of the camera id in a record's key-values.
pub const CAMERA_KEY: &str = "camera";

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's lines: `[time LEVEL target] [camera] message`.
    Text,
    /// One JSON object per line: time, level, target, camera (or null), message.
    Json,
}

impl LogFormat {
    pub fn parse(value: &str) -> Option<LogFormat> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Installs the logger for the process: `RUST_LOG` filters (default `info`), lines go
/// to stderr in `format`.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Text => {
            let plain = env_logger::fmt::ConfigurableFormat::default();
            builder.format(move |buf, record| match camera_of(record) {
                None => plain.format(buf, record),
                Some(camera) => plain.format(
                    buf,
                    &record
                        .to_builder()
                        .args(format_args!("[{camera}] {}", record.args()))
                        .build(),
                ),
            })
        }
        LogFormat::Json => builder.format(|buf, record| {
            let line = json_line(
                &buf.timestamp_millis().to_string(),
                record.level(),
                record.target(),
                camera_of(record).as_deref(),
                &record.args().to_string(),
            );
            buf.write_all(line.as_bytes())
        }),
    };
    builder.init();
}

/// One log line as JSON, ending in a newline. serde_json escapes quotes, newlines and
/// control characters, so whatever the message holds, the line is one valid object.
pub fn json_line(
    time: &str,
    level: log::Level,
    target: &str,
    camera: Option<&str>,
    message: &str,
) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        time: &'a str,
        level: &'a str,
        target: &'a str,
        camera: Option<&'a str>,
        message: &'a str,
    }
    let line = Line {
        time,
        level: level.as_str(),
        target,
        camera,
        message,
    };
    let mut text = serde_json::to_string(&line).unwrap_or_default();
    text.push('\n');
    text
}

/// The camera a record belongs to: its `camera` key-value, else the logging thread's.
fn camera_of(record: &log::Record<'_>) -> Option<String> {
    match record.key_values().get(Key::from_str(CAMERA_KEY)) {
        Some(value) => Some(value.to_string()),
        None => current_camera().map(|label| label.id.clone()),
    }
}

/// Which camera some work is for, as the logs name it.
#[derive(Debug)]
pub struct CameraLabel {
    /// The camera id.
    pub id: String,
    /// The camera's source as given (URL or path): its credentials are removed from
    /// libav's messages, which repeat it.
    pub location: String,
}

impl CameraLabel {
    pub fn new(id: impl Into<String>, location: impl Into<String>) -> Arc<CameraLabel> {
        Arc::new(CameraLabel {
            id: id.into(),
            location: location.into(),
        })
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<CameraLabel>>> = const { RefCell::new(None) };
}

/// While alive, the current thread works for one camera; dropping it restores what was
/// there before.
#[must_use = "the scope ends when dropped"]
pub struct CameraScope {
    previous: Option<Arc<CameraLabel>>,
    /// Tied to the thread whose label it set.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl CameraScope {
    pub fn enter(label: Arc<CameraLabel>) -> CameraScope {
        let previous = CURRENT
            .try_with(|current| current.replace(Some(label)))
            .ok()
            .flatten();
        CameraScope {
            previous,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for CameraScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}

/// The camera the current thread works for, if any.
pub fn current_camera() -> Option<Arc<CameraLabel>> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively_and_nothing_else() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(" Text "), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("yaml"), None);
        assert_eq!(LogFormat::parse(""), None);
    }

    #[test]
    fn awkward_messages_stay_one_valid_json_line() {
        let awkward = "say \"hi\"\nsecond line\r\ttab \u{1} bell \u{7f} \\ lossy \u{fffd} end";
        let line = json_line(
            "2026-01-02T03:04:05.678Z",
            log::Level::Warn,
            "libav::h264",
            Some("cam-1"),
            awkward,
        );
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["message"], awkward);
        assert_eq!(parsed["time"], "2026-01-02T03:04:05.678Z");
        assert_eq!(parsed["level"], "WARN");
        assert_eq!(parsed["target"], "libav::h264");
        assert_eq!(parsed["camera"], "cam-1");
    }

    #[test]
    fn a_line_without_a_camera_says_null() {
        let line = json_line("t", log::Level::Info, "video_pipeline", None, "up");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(parsed["camera"].is_null());
        assert!(parsed.as_object().unwrap().contains_key("camera"));
    }

    #[test]
    fn scopes_nest_and_end() {
        assert!(current_camera().is_none());
        let outer = CameraScope::enter(CameraLabel::new("a", "rtsp://a"));
        {
            let _inner = CameraScope::enter(CameraLabel::new("b", "rtsp://b"));
            assert_eq!(current_camera().unwrap().id, "b");
        }
        assert_eq!(current_camera().unwrap().id, "a");
        drop(outer);
        assert!(current_camera().is_none());
    }

    #[test]
    fn a_named_camera_wins_over_the_threads() {
        let _scope = CameraScope::enter(CameraLabel::new("thread-cam", "x"));
        let kvs = [(CAMERA_KEY, "named-cam")];
        let record = log::Record::builder()
            .args(format_args!("m"))
            .key_values(&kvs)
            .build();
        assert_eq!(camera_of(&record).as_deref(), Some("named-cam"));
        let bare = log::Record::builder().args(format_args!("m")).build();
        assert_eq!(camera_of(&bare).as_deref(), Some("thread-cam"));
    }
}
