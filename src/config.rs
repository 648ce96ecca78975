//! Daemon configuration: read once from the environment (or flags), validated into a
//! [`Config`] whose every field is known to be usable.

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::logging::LogFormat;
use crate::media::hw::{
    HwChoice, DEFAULT_CUDA_DEVICE, DEFAULT_HW_ACCEL_OPTIONS, DEFAULT_HW_RETRY, DEFAULT_VAAPI_DEVICE,
};

pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const DEFAULT_PORT: u16 = 8002;
pub const DEFAULT_OUTPUT_FOLDER: &str = "./data/frames";
pub const DEFAULT_UPLOAD_FOLDER: &str = "./data/videos";
pub const DEFAULT_JPEG_QUALITY: u8 = 90;
pub const DEFAULT_STALE_FRAME_SECONDS: u64 = 60;
pub const DEFAULT_PROBE_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_OPEN_TIMEOUT_SECONDS: u64 = crate::media::DEFAULT_OPEN_TIMEOUT.as_secs();
pub const DEFAULT_READ_TIMEOUT_SECONDS: u64 = crate::media::DEFAULT_READ_TIMEOUT.as_secs();
pub const DEFAULT_STALL_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_RECONNECT_INITIAL_SECONDS: f64 = 0.5;
pub const DEFAULT_RECONNECT_MAX_SECONDS: f64 = 30.0;
/// 0: live sources never give up.
pub const DEFAULT_MAX_RESTARTS: u32 = 0;
pub const DEFAULT_MAX_UPLOAD_MB: u64 = 4096;
pub const DEFAULT_ENCODE_QUEUE_FRAMES: usize = 64;
pub const DEFAULT_CLEAR_ON_START: bool = true;
pub const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Text;

/// A configuration value that cannot be used. The message names the variable and what
/// it accepts, so one line is enough to fix it.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid {name} {value:?} (expected {expected})")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{name} {path:?} is not a writable directory: {reason}")]
    NotWritable {
        name: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// Everything the daemon needs to know, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub output_folder: PathBuf,
    pub upload_folder: PathBuf,
    pub allowed_input_dirs: Vec<PathBuf>,
    pub hw_accel_options: Vec<HwChoice>,
    pub jpeg_quality: u8,
    pub stale_frame: Duration,
    pub probe_timeout: Duration,
    pub open_timeout: Duration,
    pub read_timeout: Duration,
    pub stall_timeout: Duration,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    pub max_restarts: u32,
    pub max_upload_bytes: u64,
    pub clear_on_start: bool,
    /// Decoder threads per camera; `None`: chosen from the number of cameras.
    pub decode_threads: Option<usize>,
    /// Sampled frames waiting for a JPEG encoder, all cameras together; beyond this
    /// a frame is dropped rather than a camera held up.
    pub encode_queue_frames: usize,
    /// The DRM render node for VAAPI (and QSV, which sits on it).
    pub vaapi_device: String,
    /// The CUDA device index.
    pub cuda_device: String,
    /// After a fall back to software, hardware is tried again this much later.
    pub hw_retry: Duration,
    /// How log lines are written (the logger is set up from it before the rest).
    pub log_format: LogFormat,
}

/// Where raw values come from: the process environment, overridden by flags.
pub type RawValues = HashMap<&'static str, String>;

/// Every variable the daemon reads.
pub const VARIABLES: [&str; 26] = [
    "HOST",
    "PORT",
    "OUTPUT_FOLDER",
    "UPLOAD_FOLDER",
    "ALLOWED_INPUT_DIRS",
    "HW_ACCEL_OPTIONS",
    "JPEG_QUALITY",
    "STALE_FRAME_SECONDS",
    "PROBE_TIMEOUT_SECONDS",
    "OPEN_TIMEOUT_SECONDS",
    "READ_TIMEOUT_SECONDS",
    "STALL_TIMEOUT_SECONDS",
    "RECONNECT_INITIAL_SECONDS",
    "RECONNECT_MAX_SECONDS",
    "MAX_RESTARTS",
    "MAX_UPLOAD_MB",
    "CLEAR_ON_START",
    "DECODE_THREADS",
    "ENCODE_QUEUE_FRAMES",
    "VAAPI_DEVICE",
    "CUDA_DEVICE",
    "HW_RETRY_SECONDS",
    "FFMPEG_PATH",
    "FFPROBE_PATH",
    "RUST_LOG",
    "LOG_FORMAT",
];

/// Reads every known variable from the process environment. Empty values count as unset.
pub fn raw_from_env() -> RawValues {
    VARIABLES
        .iter()
        .filter_map(|&name| {
            let value = std::env::var(name).ok()?;
            (!value.trim().is_empty()).then_some((name, value))
        })
        .collect()
}

impl Config {
    /// Validates raw values without touching the disk.
    pub fn parse(raw: &RawValues) -> Result<Config, ConfigError> {
        let get = |name: &str| raw.get(name).map(|v| v.trim());
        Ok(Config {
            host: parse_or(get("HOST"), "HOST", "an IP address such as 0.0.0.0", || {
                DEFAULT_HOST.parse().expect("default host is an IP address")
            })?,
            port: match get("PORT") {
                None => DEFAULT_PORT,
                Some(v) => v
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| invalid("PORT", v, "an integer 1..65535"))?,
            },
            output_folder: PathBuf::from(get("OUTPUT_FOLDER").unwrap_or(DEFAULT_OUTPUT_FOLDER)),
            upload_folder: PathBuf::from(get("UPLOAD_FOLDER").unwrap_or(DEFAULT_UPLOAD_FOLDER)),
            allowed_input_dirs: get("ALLOWED_INPUT_DIRS")
                .map(|v| {
                    v.split(':')
                        .filter(|d| !d.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
            hw_accel_options: match get("HW_ACCEL_OPTIONS") {
                None => DEFAULT_HW_ACCEL_OPTIONS.to_vec(),
                Some(v) => parse_hw_list(v).ok_or_else(|| {
                    invalid(
                        "HW_ACCEL_OPTIONS",
                        v,
                        "a JSON list or comma separated list of cuda, qsv, vaapi, none, ...",
                    )
                })?,
            },
            jpeg_quality: match get("JPEG_QUALITY") {
                None => DEFAULT_JPEG_QUALITY,
                Some(v) => v
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| invalid("JPEG_QUALITY", v, "an integer 1..100"))?,
            },
            stale_frame: seconds(
                get("STALE_FRAME_SECONDS"),
                "STALE_FRAME_SECONDS",
                DEFAULT_STALE_FRAME_SECONDS,
            )?,
            probe_timeout: seconds(
                get("PROBE_TIMEOUT_SECONDS"),
                "PROBE_TIMEOUT_SECONDS",
                DEFAULT_PROBE_TIMEOUT_SECONDS,
            )?,
            open_timeout: seconds(
                get("OPEN_TIMEOUT_SECONDS"),
                "OPEN_TIMEOUT_SECONDS",
                DEFAULT_OPEN_TIMEOUT_SECONDS,
            )?,
            read_timeout: seconds(
                get("READ_TIMEOUT_SECONDS"),
                "READ_TIMEOUT_SECONDS",
                DEFAULT_READ_TIMEOUT_SECONDS,
            )?,
            stall_timeout: seconds(
                get("STALL_TIMEOUT_SECONDS"),
                "STALL_TIMEOUT_SECONDS",
                DEFAULT_STALL_TIMEOUT_SECONDS,
            )?,
            reconnect_initial: fractional_seconds(
                get("RECONNECT_INITIAL_SECONDS"),
                "RECONNECT_INITIAL_SECONDS",
                DEFAULT_RECONNECT_INITIAL_SECONDS,
            )?,
            reconnect_max: fractional_seconds(
                get("RECONNECT_MAX_SECONDS"),
                "RECONNECT_MAX_SECONDS",
                DEFAULT_RECONNECT_MAX_SECONDS,
            )?,
            max_restarts: match get("MAX_RESTARTS") {
                None => DEFAULT_MAX_RESTARTS,
                Some(v) => v.parse::<u32>().map_err(|_| {
                    invalid("MAX_RESTARTS", v, "a whole number >= 0 (0: never give up)")
                })?,
            },
            max_upload_bytes: match get("MAX_UPLOAD_MB") {
                None => DEFAULT_MAX_UPLOAD_MB * 1024 * 1024,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|&mb| (1..=1024 * 1024).contains(&mb))
                    .map(|mb| mb * 1024 * 1024)
                    .ok_or_else(|| invalid("MAX_UPLOAD_MB", v, "an integer 1..1048576"))?,
            },
            decode_threads: match get("DECODE_THREADS") {
                None | Some("auto") => None,
                Some(v) => Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| invalid("DECODE_THREADS", v, "auto or an integer 1..64"))?,
                ),
            },
            encode_queue_frames: match get("ENCODE_QUEUE_FRAMES") {
                None => DEFAULT_ENCODE_QUEUE_FRAMES,
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=4096).contains(n))
                    .ok_or_else(|| invalid("ENCODE_QUEUE_FRAMES", v, "an integer 1..4096"))?,
            },
            vaapi_device: match get("VAAPI_DEVICE") {
                None => DEFAULT_VAAPI_DEVICE.to_owned(),
                Some(v) if v.starts_with('/') && !v.contains('\0') => v.to_owned(),
                Some(v) => {
                    return Err(invalid(
                        "VAAPI_DEVICE",
                        v,
                        "an absolute path to a DRM render node such as /dev/dri/renderD128",
                    ))
                }
            },
            cuda_device: match get("CUDA_DEVICE") {
                None => DEFAULT_CUDA_DEVICE.to_owned(),
                Some(v) => v
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n < 64)
                    .map(|n| n.to_string())
                    .ok_or_else(|| invalid("CUDA_DEVICE", v, "a GPU index 0..63"))?,
            },
            hw_retry: seconds(
                get("HW_RETRY_SECONDS"),
                "HW_RETRY_SECONDS",
                DEFAULT_HW_RETRY.as_secs(),
            )?,
            log_format: parse_log_format(get("LOG_FORMAT"))?,
            clear_on_start: match get("CLEAR_ON_START") {
                None => DEFAULT_CLEAR_ON_START,
                Some(v) => {
                    parse_bool(v).ok_or_else(|| invalid("CLEAR_ON_START", v, "true or false"))?
                }
            },
        })
    }

    /// Validates raw values and makes sure the folders exist and can be written.
    pub fn load(raw: &RawValues) -> Result<Config, ConfigError> {
        let config = Config::parse(raw)?;
        if config.reconnect_max < config.reconnect_initial {
            return Err(ConfigError::Invalid {
                name: "RECONNECT_MAX_SECONDS",
                value: format!("{}", config.reconnect_max.as_secs_f64()),
                expected: "a number of seconds >= RECONNECT_INITIAL_SECONDS",
            });
        }
        ensure_writable_dir("OUTPUT_FOLDER", &config.output_folder)?;
        ensure_writable_dir("UPLOAD_FOLDER", &config.upload_folder)?;
        Ok(config)
    }
}

fn invalid(name: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        expected,
    }
}

fn parse_or<T: std::str::FromStr>(
    value: Option<&str>,
    name: &'static str,
    expected: &'static str,
    default: impl FnOnce() -> T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default()),
        Some(v) => v.parse().map_err(|_| invalid(name, v, expected)),
    }
}

fn seconds(value: Option<&str>, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| invalid(name, v, "a number of seconds > 0, <= 86400")),
    }
}

fn fractional_seconds(
    value: Option<&str>,
    name: &'static str,
    default: f64,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_secs_f64(default)),
        Some(v) => seconds(Some(v), name, 0),
    }
}

/// `LOG_FORMAT`, read on its own too: the logger starts before the rest is validated.
pub fn parse_log_format(value: Option<&str>) -> Result<LogFormat, ConfigError> {
    match value.map(str::trim) {
        None => Ok(DEFAULT_LOG_FORMAT),
        Some(v) => LogFormat::parse(v).ok_or_else(|| invalid("LOG_FORMAT", v, "text or json")),
    }
}

/// Accepts the common spellings of a boolean.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `["cuda", "vaapi"]` (as the original service wrote it) or `cuda,vaapi`.
fn parse_hw_list(value: &str) -> Option<Vec<HwChoice>> {
    let names: Vec<String> = if value.trim_start().starts_with('[') {
        serde_json::from_str(value).ok()?
    } else {
        value.split(',').map(|s| s.trim().to_owned()).collect()
    };
    let choices: Option<Vec<HwChoice>> = names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| HwChoice::parse(n).filter(|c| *c != HwChoice::Auto))
        .collect();
    choices.filter(|c| !c.is_empty())
}

fn ensure_writable_dir(name: &'static str, path: &Path) -> Result<(), ConfigError> {
    let fail = |reason: String| ConfigError::NotWritable {
        name,
        path: path.to_owned(),
        reason,
    };
    fs::create_dir_all(path).map_err(|e| fail(e.to_string()))?;
    let probe = path.join(format!(".write-check-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| fail(e.to_string()))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&'static str, &str)]) -> RawValues {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::parse(&RawValues::new()).unwrap();
        assert_eq!(config.port, 8002);
        assert_eq!(config.jpeg_quality, 90);
        assert_eq!(config.hw_accel_options.len(), 4);
        assert!(config.clear_on_start);
        assert_eq!(config.log_format, LogFormat::Text);
        let json = Config::parse(&raw(&[("LOG_FORMAT", "JSON")])).unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("PORT", "abc"),
            ("PORT", "0"),
            ("JPEG_QUALITY", "0"),
            ("JPEG_QUALITY", "101"),
            ("HOST", "not-an-ip"),
            ("STALE_FRAME_SECONDS", "-1"),
            ("HW_ACCEL_OPTIONS", "[\"warp-drive\"]"),
            ("CLEAR_ON_START", "maybe"),
            ("MAX_UPLOAD_MB", "0"),
            ("STALL_TIMEOUT_SECONDS", "0"),
            ("RECONNECT_INITIAL_SECONDS", "x"),
            ("MAX_RESTARTS", "-1"),
            ("DECODE_THREADS", "0"),
            ("ENCODE_QUEUE_FRAMES", "0"),
            ("VAAPI_DEVICE", "renderD128"),
            ("CUDA_DEVICE", "gpu0"),
            ("CUDA_DEVICE", "64"),
            ("HW_RETRY_SECONDS", "0"),
            ("LOG_FORMAT", "xml"),
        ] {
            let err = Config::parse(&raw(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn hardware_devices_have_defaults_and_overrides() {
        let defaults = Config::parse(&RawValues::new()).unwrap();
        assert_eq!(defaults.vaapi_device, "/dev/dri/renderD128");
        assert_eq!(defaults.cuda_device, "0");
        assert_eq!(defaults.hw_retry, Duration::from_secs(300));
        let set = Config::parse(&raw(&[
            ("VAAPI_DEVICE", "/dev/dri/renderD129"),
            ("CUDA_DEVICE", "1"),
            ("HW_RETRY_SECONDS", "2.5"),
        ]))
        .unwrap();
        assert_eq!(set.vaapi_device, "/dev/dri/renderD129");
        assert_eq!(set.cuda_device, "1");
        assert_eq!(set.hw_retry, Duration::from_millis(2500));
    }

    #[test]
    fn hw_options_accept_json_and_commas() {
        let json = Config::parse(&raw(&[("HW_ACCEL_OPTIONS", "[\"vaapi\", \"none\"]")])).unwrap();
        let commas = Config::parse(&raw(&[("HW_ACCEL_OPTIONS", "vaapi, none")])).unwrap();
        assert_eq!(json.hw_accel_options, commas.hw_accel_options);
        assert_eq!(json.hw_accel_options.len(), 2);
    }

    #[test]
    fn allowed_dirs_split_on_colons() {
        let config = Config::parse(&raw(&[("ALLOWED_INPUT_DIRS", "/a:/b::")])).unwrap();
        assert_eq!(
            config.allowed_input_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }

    #[test]
    fn reconnect_cap_must_not_be_below_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().to_str().unwrap();
        let err = Config::load(&raw(&[
            ("OUTPUT_FOLDER", folder),
            ("UPLOAD_FOLDER", folder),
            ("RECONNECT_INITIAL_SECONDS", "5"),
            ("RECONNECT_MAX_SECONDS", "1"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("RECONNECT_MAX_SECONDS"), "{err}");
    }

    #[test]
    fn unwritable_output_folder_is_refused() {
        let err = Config::load(&raw(&[("OUTPUT_FOLDER", "/proc/no-such-dir")])).unwrap_err();
        assert!(err.to_string().starts_with("OUTPUT_FOLDER"), "{err}");
    }
}
