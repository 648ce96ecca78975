//! Daemon configuration: read once from the environment (or flags), validated into a
//! [`Config`] whose every field is known to be usable.

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

mod file;
mod serving;

pub use file::{ConfigFile, FileCamera, FileError};
pub use serving::{CorsOrigins, TlsFiles};

use crate::auth::{ApiKeys, Authenticator, JwtVerifier, PeerCredential};
use crate::logging::LogFormat;
use crate::media::hw::{
    HwChoice, DEFAULT_CUDA_DEVICE, DEFAULT_HW_ACCEL_OPTIONS, DEFAULT_HW_RETRY, DEFAULT_VAAPI_DEVICE,
};
use crate::media::FrameLimit;
use crate::output::disk_guard::MinFree;
use crate::output::retention::{MAX_AGE_LIMIT_SECONDS, MAX_FRAMES_LIMIT};
use crate::shard::{self, Shard, MAX_REPLICAS};

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
pub const DEFAULT_MAX_FRAME_PIXELS: FrameLimit = crate::media::DEFAULT_FRAME_LIMIT;
pub const DEFAULT_RECONNECT_INITIAL_SECONDS: f64 = 0.5;
pub const DEFAULT_RECONNECT_MAX_SECONDS: f64 = 30.0;
/// 0: live sources never give up.
pub const DEFAULT_MAX_RESTARTS: u32 = 0;
pub const DEFAULT_MAX_UPLOAD_MB: u64 = 4096;
pub const DEFAULT_ENCODE_QUEUE_FRAMES: usize = 64;
pub const DEFAULT_CLEAR_ON_START: bool = true;
pub const DEFAULT_STATE_FILE: &str = "./data/state.json";
/// The value of `STATE_FILE` that turns saving off.
pub const STATE_FILE_OFF: &str = "off";
/// Frames kept per camera for sources that never end (live, looped); files keep all.
pub const DEFAULT_MAX_FRAMES_PER_CAMERA: u64 = 1000;
/// 0: off.
pub const DEFAULT_MAX_FRAME_AGE_SECONDS: f64 = 0.0;
/// 0: off.
pub const DEFAULT_STOPPED_FOLDER_TTL_SECONDS: f64 = 0.0;
pub const DEFAULT_MIN_FREE_DISK: MinFree = MinFree::Bytes(1 << 30);
pub const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Text;
/// Running cameras at most; each holds a thread and decoder memory.
pub const DEFAULT_MAX_CAMERAS: usize = 256;
/// Open HTTP connections at most, all workers together; each holds a file descriptor.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// HS256 wants a key as long as its hash: 256 bits.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

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
    /// A value described without repeating it (it may be a secret), or a file it
    /// names that cannot be read or used.
    #[error("{name}: {problem}")]
    Unusable { name: &'static str, problem: String },
}

/// Everything the daemon needs to know, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub output_folder: PathBuf,
    pub upload_folder: PathBuf,
    pub allowed_input_dirs: Vec<PathBuf>,
    /// Where the running cameras are saved; `None`: nowhere.
    pub state_file: Option<PathBuf>,
    pub hw_accel_options: Vec<HwChoice>,
    pub jpeg_quality: u8,
    pub stale_frame: Duration,
    pub probe_timeout: Duration,
    pub open_timeout: Duration,
    pub read_timeout: Duration,
    pub stall_timeout: Duration,
    /// Sources whose frames are larger are refused.
    pub max_frame_pixels: FrameLimit,
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
    /// `None`: unset, [`DEFAULT_MAX_FRAMES_PER_CAMERA`] for endless sources and all
    /// frames of files; `Some(0)`: all frames of every camera.
    pub max_frames_per_camera: Option<u64>,
    pub max_frame_age: Option<Duration>,
    /// A finished session's folder is removed, and the camera forgotten, this long
    /// after it ended.
    pub stopped_folder_ttl: Option<Duration>,
    pub min_free_disk: MinFree,
    /// How log lines are written (the logger is set up from it before the rest).
    pub log_format: LogFormat,
    /// Cameras running at once; a start past it is refused.
    pub max_cameras: usize,
    /// Open HTTP connections, all workers together; past it new ones wait in the backlog.
    pub max_connections: usize,
    /// Control requests per minute and client; `None`: not limited.
    pub rate_limit_per_minute: Option<NonZeroU32>,
    /// Which browser origins get CORS headers.
    pub cors_allowed_origins: CorsOrigins,
    /// `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The API keys and JWT key callers authenticate with; off when none is set.
    pub auth: Authenticator,
    /// This replica's place among several sharing the cameras; `None`: alone.
    pub shard: Option<Shard>,
    /// What this replica authenticates with to the others; `None`: nothing.
    pub peer_credential: Option<PeerCredential>,
}

/// Raw values by variable name: from the config file, the environment and flags,
/// each overriding the one before.
pub type RawValues = HashMap<&'static str, String>;

/// One setting of the daemon: its variable, its `serve` flag, its default as written in
/// a value, and what it does. `--help` and the table in docs/operations.md are made
/// from this list, and a test checks that each default reads as the real one.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    /// `None`: read from the environment only.
    pub flag: Option<&'static str>,
    /// `""`: none.
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn setting(
    name: &'static str,
    flag: Option<&'static str>,
    default: &'static str,
    meaning: &'static str,
) -> Setting {
    Setting {
        name,
        flag,
        default,
        meaning,
    }
}

/// Every setting the daemon reads.
pub const SETTINGS: [Setting; 51] = [
    setting("CONFIG_FILE", Some("config-file"), "",
        "a TOML file with settings (lowercase names) and [[camera]] tables started at boot; flags and the environment override it"),
    setting("HOST", Some("host"), DEFAULT_HOST, "the IP address to listen on"),
    setting("PORT", Some("port"), "8002", "the port to listen on, 1..65535"),
    setting("OUTPUT_FOLDER", Some("output-folder"), DEFAULT_OUTPUT_FOLDER,
        "where each camera's frame folder is made; created if missing, must be writable"),
    setting("UPLOAD_FOLDER", Some("upload-folder"), DEFAULT_UPLOAD_FOLDER,
        "where uploads are stored; created if missing, must be writable; local sources may come from here"),
    setting("ALLOWED_INPUT_DIRS", Some("allowed-input-dirs"), "",
        "colon-separated directories that local-path sources may come from, after resolving .. and symlinks"),
    setting("STATE_FILE", Some("state-file"), DEFAULT_STATE_FILE,
        "where the running cameras are saved, to be resumed after a restart; off: not saved"),
    setting("JPEG_QUALITY", Some("jpeg-quality"), "90", "JPEG quality, 1..100"),
    setting("HW_ACCEL_OPTIONS", Some("hw-accel-options"), "cuda,qsv,vaapi,none",
        "the order force_format=auto tries, up to its first none; a JSON list or comma-separated"),
    setting("STALE_FRAME_SECONDS", Some("stale-frame-seconds"), "60",
        "latest-frame/ answers 404 for a camera treated as live (or a looped file) whose newest frame is older"),
    setting("PROBE_TIMEOUT_SECONDS", Some("probe-timeout-seconds"), "10",
        "the limit of video-info/ and video-info-url/ (504 past it)"),
    setting("OPEN_TIMEOUT_SECONDS", Some("open-timeout-seconds"), "10",
        "opening a source, including reading its stream information"),
    setting("READ_TIMEOUT_SECONDS", Some("read-timeout-seconds"), "10", "each packet read"),
    setting("STALL_TIMEOUT_SECONDS", Some("stall-timeout-seconds"), "10",
        "a live source that yields no video frame this long (even while packets arrive) is reconnected"),
    setting("MAX_FRAME_PIXELS", Some("max-frame-pixels"), "8192x8192",
        "the largest frame a source may have, WIDTHxHEIGHT or a pixel count up to 2147483647: larger ones are refused (too_large) before they are decoded, and no libav allocation may exceed 8 bytes per pixel of it plus 16 MiB"),
    setting("RECONNECT_INITIAL_SECONDS", Some("reconnect-initial-seconds"), "0.5",
        "the first reconnection delay; it doubles per failure"),
    setting("RECONNECT_MAX_SECONDS", Some("reconnect-max-seconds"), "30",
        "the cap of the reconnection delay; not below the initial delay"),
    setting("MAX_RESTARTS", Some("max-restarts"), "0",
        "consecutive failed attempts before a live camera gives up with error; 0: never"),
    setting("MAX_UPLOAD_MB", Some("max-upload-mb"), "4096",
        "the largest upload, 1..1048576 MiB; larger ones get 413 and are deleted"),
    setting("CLEAR_ON_START", Some("clear-on-start"), "true",
        "true: a new session deletes the camera's frames and numbers from 1; false: keeps them and continues the numbering"),
    setting("DECODE_THREADS", Some("decode-threads"), "auto",
        "decoder threads per camera, 1..64; auto: the cores shared among the running cameras"),
    setting("ENCODE_QUEUE_FRAMES", Some("encode-queue-frames"), "64",
        "frames waiting for the JPEG threads, all cameras together, 1..4096; past it a frame is dropped (queue_full)"),
    setting("VAAPI_DEVICE", Some("vaapi-device"), DEFAULT_VAAPI_DEVICE,
        "the DRM render node for vaapi and qsv; an absolute path"),
    setting("CUDA_DEVICE", Some("cuda-device"), DEFAULT_CUDA_DEVICE, "the GPU index for cuda, 0..63"),
    setting("HW_RETRY_SECONDS", Some("hw-retry-seconds"), "300",
        "after a fall back to software, hardware is tried again this much later"),
    setting("MAX_FRAMES_PER_CAMERA", Some("max-frames-per-camera"), "",
        "frames kept per camera, oldest deleted first; unset: 1000 for sources treated as live and looped files, all for sources that end; 0: all (max_frames on decode/)"),
    setting("MAX_FRAME_AGE_SECONDS", Some("max-frame-age-seconds"), "0",
        "frames older than this are deleted; 0: no age limit (max_age_seconds on decode/)"),
    setting("STOPPED_FOLDER_TTL_SECONDS", Some("stopped-folder-ttl-seconds"), "0",
        "a camera ended this long ago is forgotten and its folder removed; 0: never"),
    setting("MIN_FREE_DISK", Some("min-free-disk"), "1GiB",
        "free space kept on the output filesystem (bytes, 500MB, 2GiB or 5%): below it the oldest frames of live cameras go, then writing pauses"),
    setting("MAX_CAMERAS", Some("max-cameras"), "256",
        "cameras running at once, 1..100000; starting one more is 429 (stopped and finished cameras do not count)"),
    setting("MAX_CONNECTIONS", Some("max-connections"), "1024",
        "open HTTP connections, 1..1000000; past it new ones wait in the listen backlog; keep it well below the descriptor limit (ulimit -n)"),
    setting("RATE_LIMIT_PER_MINUTE", Some("rate-limit-per-minute"), "off",
        "control requests (decode/, decode/stop/) per minute and client (its API key, else its IP address), 1..1000000; past it 429 with Retry-After; off: not limited"),
    setting("CORS_ALLOWED_ORIGINS", Some("cors-allowed-origins"), "",
        "comma-separated browser origins (https://host[:port]) that get CORS headers; *: any origin, for GET only; unset: no CORS headers"),
    setting("TLS_CERT_FILE", Some("tls-cert-file"), "",
        "PEM certificate chain: with TLS_KEY_FILE, the API is served over HTTPS only"),
    setting("TLS_KEY_FILE", Some("tls-key-file"), "",
        "PEM private key of TLS_CERT_FILE (PKCS#8, PKCS#1 or SEC1)"),
    setting("API_KEYS", None, "",
        "comma-separated key:scope pairs that callers send as Authorization: Bearer KEY or X-API-Key: KEY; scope read or control (control implies read); keys of 16 or more of A-Z a-z 0-9 - . _ ~ + / =; with no key and no JWT setting every route is open"),
    setting("API_KEYS_FILE", Some("api-keys-file"), "",
        "a file of key:scope lines (# comments), read at start, in addition to API_KEYS; a warning if every user may read it"),
    setting("JWT_SECRET", None, "",
        "accept bearer JWTs signed with this secret (HS256, HS384, HS512), at least 32 bytes; not together with JWT_PUBLIC_KEY_FILE"),
    setting("JWT_PUBLIC_KEY_FILE", Some("jwt-public-key-file"), "",
        "accept bearer JWTs signed by the private half of this PEM public key, read at start: RSA (RS256..PS512), EC (ES256, ES384) or Ed25519 (EdDSA); never HMAC"),
    setting("JWT_AUDIENCE", Some("jwt-audience"), "",
        "the aud claim a JWT must carry; unset: a JWT must carry none"),
    setting("JWT_ISSUER", Some("jwt-issuer"), "", "the iss claim a JWT must carry; unset: any"),
    setting("PEER_API_KEY", None, "",
        "the API key (control scope, among every replica's API_KEYS) a replica sends with the hand-over of a camera to another after a rescale; with authentication on, a start error unless it is such a key"),
    setting("SHARD_COUNT", Some("shard-count"), "1",
        "replicas sharing the cameras, 1..1024; each camera runs on the one its id hashes to (docs/scaling.md); 1: alone"),
    setting("SHARD_INDEX", Some("shard-index"), "",
        "this replica's index, 0..SHARD_COUNT-1 (beyond: leaving, it owns no camera); unset: the ordinal of POD_NAME"),
    setting("POD_NAME", None, "",
        "a StatefulSet pod name (name-<ordinal>), whose ordinal is the replica index when SHARD_COUNT is set and SHARD_INDEX is not"),
    setting("PEER_URL_TEMPLATE", Some("peer-url-template"), "",
        "how replicas reach each other, {index} standing for a replica's index, e.g. http://video-pipeline-{index}.video-pipeline:8002"),
    setting("PEER_URLS", Some("peer-urls"), "",
        "instead of PEER_URL_TEMPLATE: comma-separated http://host:port of every replica, in index order"),
    setting("LOG_FORMAT", None, "text",
        "text: human-readable lines; json: one JSON object per line (time, level, target, camera, message)"),
    setting("RUST_LOG", None, "info", "the log filter, in env_logger's syntax"),
    setting("FFMPEG_PATH", None, "", "accepted for compatibility and ignored: decoding runs in-process"),
    setting("FFPROBE_PATH", None, "", "accepted for compatibility and ignored: decoding runs in-process"),
];

impl Setting {
    /// A setting by variable name.
    pub fn named(name: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.name == name)
    }

    /// The key of this setting in the config file.
    pub fn file_key(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}

/// The settings as a Markdown table, as docs/operations.md shows them.
pub fn settings_table() -> String {
    let mut table = String::from("| variable | flag | default | meaning |\n|---|---|---|---|\n");
    for s in &SETTINGS {
        let flag = s.flag.map_or(String::new(), |f| format!("`--{f}`"));
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!("`{}`", s.default)
        };
        table.push_str(&format!(
            "| `{}` | {flag} | {default} | {} |\n",
            s.name, s.meaning
        ));
    }
    table
}

/// Reads every known variable from the process environment. Empty values count as unset.
pub fn raw_from_env() -> RawValues {
    SETTINGS
        .iter()
        .filter_map(|setting| {
            let value = std::env::var(setting.name).ok()?;
            (!value.trim().is_empty()).then_some((setting.name, value))
        })
        .collect()
}

impl Config {
    /// Validates raw values; the disk is only read for the key files they name.
    pub fn parse(raw: &RawValues) -> Result<Config, ConfigError> {
        let get = |name: &str| raw.get(name).map(|v| v.trim());
        let auth = parse_auth(&get)?;
        let shard = parse_shard(&get)?;
        let peer_credential = parse_peer_credential(get("PEER_API_KEY"), &auth)?;
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
            state_file: match get("STATE_FILE") {
                None => Some(PathBuf::from(DEFAULT_STATE_FILE)),
                Some(v) if v.eq_ignore_ascii_case(STATE_FILE_OFF) => None,
                Some(v) => Some(PathBuf::from(v)),
            },
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
            max_frame_pixels: match get("MAX_FRAME_PIXELS") {
                None => DEFAULT_MAX_FRAME_PIXELS,
                Some(v) => FrameLimit::parse(v).ok_or_else(|| {
                    invalid(
                        "MAX_FRAME_PIXELS",
                        v,
                        "WIDTHxHEIGHT such as 8192x8192, or a pixel count 1..2147483647",
                    )
                })?,
            },
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
            max_frames_per_camera: match get("MAX_FRAMES_PER_CAMERA") {
                None => None,
                Some(v) => Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n <= MAX_FRAMES_LIMIT)
                        .ok_or_else(|| {
                            invalid(
                                "MAX_FRAMES_PER_CAMERA",
                                v,
                                "a whole number 0..100000000 (0: keep all)",
                            )
                        })?,
                ),
            },
            max_frame_age: off_or_seconds(
                get("MAX_FRAME_AGE_SECONDS"),
                "MAX_FRAME_AGE_SECONDS",
                DEFAULT_MAX_FRAME_AGE_SECONDS,
            )?,
            stopped_folder_ttl: off_or_seconds(
                get("STOPPED_FOLDER_TTL_SECONDS"),
                "STOPPED_FOLDER_TTL_SECONDS",
                DEFAULT_STOPPED_FOLDER_TTL_SECONDS,
            )?,
            min_free_disk: match get("MIN_FREE_DISK") {
                None => DEFAULT_MIN_FREE_DISK,
                Some(v) => parse_min_free(v).ok_or_else(|| {
                    invalid(
                        "MIN_FREE_DISK",
                        v,
                        "a size such as 1GiB, 500MB or 1073741824, or a share of the disk such as 5% (0: off)",
                    )
                })?,
            },
            log_format: parse_log_format(get("LOG_FORMAT"))?,
            max_cameras: match get("MAX_CAMERAS") {
                None => DEFAULT_MAX_CAMERAS,
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| invalid("MAX_CAMERAS", v, "an integer 1..100000"))?,
            },
            max_connections: match get("MAX_CONNECTIONS") {
                None => DEFAULT_MAX_CONNECTIONS,
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| invalid("MAX_CONNECTIONS", v, "an integer 1..1000000"))?,
            },
            rate_limit_per_minute: match get("RATE_LIMIT_PER_MINUTE") {
                None => None,
                Some(v) if parse_bool(v) == Some(false) => None,
                Some(v) => Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|n| *n <= 1_000_000)
                        .and_then(NonZeroU32::new)
                        .ok_or_else(|| {
                            invalid("RATE_LIMIT_PER_MINUTE", v, "off or an integer 1..1000000")
                        })?,
                ),
            },
            cors_allowed_origins: match get("CORS_ALLOWED_ORIGINS") {
                None => CorsOrigins::None,
                Some(v) => CorsOrigins::parse(v).ok_or_else(|| {
                    invalid(
                        "CORS_ALLOWED_ORIGINS",
                        v,
                        "* or comma-separated origins such as https://ui.example.com,http://localhost:3000 (scheme, host, optional port, no path)",
                    )
                })?,
            },
            tls: TlsFiles::parse(get("TLS_CERT_FILE"), get("TLS_KEY_FILE"))?,
            auth,
            shard,
            peer_credential,
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
        if let Some(folder) = config.state_file.as_deref().and_then(Path::parent) {
            let folder = if folder.as_os_str().is_empty() {
                Path::new(".")
            } else {
                folder
            };
            ensure_writable_dir("STATE_FILE", folder)?;
        }
        Ok(config)
    }
}

impl ConfigError {
    /// The variable the error is about.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Invalid { name, .. }
            | ConfigError::NotWritable { name, .. }
            | ConfigError::Unusable { name, .. } => name,
        }
    }
}

fn invalid(name: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        expected,
    }
}

fn unusable(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Unusable {
        name,
        problem: problem.into(),
    }
}

/// `PEER_API_KEY`. With authentication on it must be a credential that this replica's
/// own settings allow to control cameras (the replicas share their keys), so that a
/// mistyped key is a start error, not hand-overs refused after a rescale.
fn parse_peer_credential(
    value: Option<&str>,
    auth: &Authenticator,
) -> Result<Option<PeerCredential>, ConfigError> {
    let Some(credential) = value.map(PeerCredential::new) else {
        return Ok(None);
    };
    if auth.is_on() && !credential.may_control(auth) {
        return Err(unusable(
            "PEER_API_KEY",
            "is not a key with the control scope in this replica's API_KEYS or API_KEYS_FILE (nor a valid control JWT); every replica needs it among its keys",
        ));
    }
    Ok(Some(credential))
}

/// The credentials: `API_KEYS`, the keys of `API_KEYS_FILE`, and one JWT key. A
/// setting that names a file whose content gives no credential is an error, never a
/// silently open API.
fn parse_auth<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Authenticator, ConfigError> {
    let mut keys = match get("API_KEYS") {
        None => ApiKeys::default(),
        Some(v) => ApiKeys::parse_list(v).map_err(|e| unusable("API_KEYS", e.to_string()))?,
    };
    if let Some(path) = get("API_KEYS_FILE") {
        let name = "API_KEYS_FILE";
        let text = fs::read_to_string(path)
            .map_err(|e| unusable(name, format!("{path:?} cannot be read: {e}")))?;
        let listed =
            ApiKeys::parse_file(&text).map_err(|e| unusable(name, format!("{path:?} {e}")))?;
        if listed.is_empty() {
            return Err(unusable(name, format!("{path:?} holds no key:scope line")));
        }
        warn_if_others_may_read(name, Path::new(path));
        keys.extend(listed);
    }
    let audience = get("JWT_AUDIENCE");
    let issuer = get("JWT_ISSUER");
    let jwt = match (get("JWT_SECRET"), get("JWT_PUBLIC_KEY_FILE")) {
        (Some(_), Some(_)) => {
            return Err(unusable(
                "JWT_SECRET",
                "set JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both",
            ))
        }
        (Some(secret), None) if secret.len() < MIN_JWT_SECRET_BYTES => {
            return Err(unusable(
                "JWT_SECRET",
                format!(
                    "shorter than {MIN_JWT_SECRET_BYTES} bytes (openssl rand -base64 32 makes one)"
                ),
            ))
        }
        (Some(secret), None) => Some(JwtVerifier::hmac(secret.as_bytes(), audience, issuer)),
        (None, Some(path)) => {
            let name = "JWT_PUBLIC_KEY_FILE";
            let pem = fs::read(path)
                .map_err(|e| unusable(name, format!("{path:?} cannot be read: {e}")))?;
            let jwt = JwtVerifier::public_key(&pem, audience, issuer)
                .map_err(|e| unusable(name, format!("{path:?} {e}")))?;
            Some(jwt)
        }
        (None, None) => {
            for name in ["JWT_AUDIENCE", "JWT_ISSUER"] {
                if get(name).is_some() {
                    return Err(unusable(name, "needs JWT_SECRET or JWT_PUBLIC_KEY_FILE"));
                }
            }
            None
        }
    };
    Ok(Authenticator::new(keys, jwt))
}

/// A file of secrets that every user of the machine may read is worth a warning, not a
/// refusal: in a container that is often how a mounted secret looks.
fn warn_if_others_may_read(name: &str, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = fs::metadata(path) {
        if metadata.permissions().mode() & 0o004 != 0 {
            log::warn!("{name} {path:?} can be read by every user of this machine: chmod 600 it");
        }
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

/// A retention time: seconds up to ten years, 0 for off.
fn off_or_seconds(
    value: Option<&str>,
    name: &'static str,
    default: f64,
) -> Result<Option<Duration>, ConfigError> {
    let seconds = match value {
        None => default,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..=MAX_AGE_LIMIT_SECONDS).contains(s))
            .ok_or_else(|| invalid(name, v, "a number of seconds 0..315360000 (0: off)"))?,
    };
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// `5%` of the filesystem (below 100), or a size.
fn parse_min_free(value: &str) -> Option<MinFree> {
    match value.strip_suffix('%') {
        Some(percent) => percent
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..100.0).contains(p))
            .map(MinFree::Percent),
        None => parse_size(value).map(MinFree::Bytes),
    }
}

/// A size in bytes: plain (`1048576`), decimal (`500MB`: 500 x 1000²) or binary
/// (`2GiB`: 2 x 1024³) units, case-insensitive, fractions allowed (`1.5GB`).
pub fn parse_size(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * scale).round();
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `SHARD_COUNT`, `SHARD_INDEX` (or `POD_NAME`'s ordinal) and the peers' URLs; `None`
/// for a daemon alone. `POD_NAME` counts only once `SHARD_COUNT` is set, so that a pod
/// name alone changes nothing. An index at or beyond the count is a replica that is
/// leaving (it owns no camera), as in the first step of a scale-down.
fn parse_shard<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<Shard>, ConfigError> {
    let count = match get("SHARD_COUNT") {
        None => 1,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_REPLICAS).contains(n))
            .ok_or_else(|| invalid("SHARD_COUNT", v, "an integer 1..1024"))?,
    };
    // Alone (a count of 1), a pod name without an ordinal is some other pod's: ignored.
    let pod_ordinal = match (get("SHARD_COUNT"), get("POD_NAME")) {
        (Some(_), Some(pod)) => match shard::pod_ordinal(pod).filter(|i| *i < MAX_REPLICAS) {
            Some(ordinal) => Some(Ok(ordinal)),
            None if count == 1 => None,
            None => Some(Err(invalid(
                "POD_NAME",
                pod,
                "a StatefulSet pod name ending in -<ordinal> (or set SHARD_INDEX)",
            ))),
        },
        _ => None,
    };
    let index = match (get("SHARD_INDEX"), pod_ordinal) {
        (Some(v), _) => v
            .parse::<usize>()
            .ok()
            .filter(|i| *i < MAX_REPLICAS)
            .ok_or_else(|| invalid("SHARD_INDEX", v, "a replica index 0..1023"))?,
        (None, Some(ordinal)) => ordinal?,
        (None, None) if count > 1 => {
            return Err(invalid(
                "SHARD_INDEX",
                "",
                "this replica's index 0..SHARD_COUNT-1, or POD_NAME of a StatefulSet pod",
            ))
        }
        (None, None) => 0,
    };
    if count == 1 && index == 0 {
        return Ok(None);
    }
    let shard = match (get("PEER_URL_TEMPLATE"), get("PEER_URLS")) {
        (Some(template), None) => Shard::from_template(index, count, template).map_err(|_| {
            invalid(
                "PEER_URL_TEMPLATE",
                template,
                "http://host:port with {index} for the replica's index, e.g. http://video-pipeline-{index}.video-pipeline:8002",
            )
        })?,
        (None, Some(list)) => Shard::from_list(index, count, list).map_err(|_| {
            invalid(
                "PEER_URLS",
                list,
                "SHARD_COUNT comma-separated http://host:port URLs, in index order",
            )
        })?,
        (Some(template), Some(_)) => {
            return Err(invalid(
                "PEER_URL_TEMPLATE",
                template,
                "either PEER_URL_TEMPLATE or PEER_URLS, not both",
            ))
        }
        (None, None) => {
            return Err(invalid(
                "PEER_URL_TEMPLATE",
                "",
                "PEER_URL_TEMPLATE or PEER_URLS for a replica among several",
            ))
        }
    };
    Ok(Some(shard))
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
    fn each_default_as_written_reads_as_the_default() {
        let defaults = format!("{:?}", Config::parse(&RawValues::new()).unwrap());
        for setting in SETTINGS.iter().filter(|s| !s.default.is_empty()) {
            let written = Config::parse(&raw(&[(setting.name, setting.default)]))
                .unwrap_or_else(|e| panic!("{}: {e}", setting.name));
            assert_eq!(format!("{written:?}"), defaults, "{}", setting.name);
        }
    }

    #[test]
    fn flags_are_the_variable_names() {
        for setting in &SETTINGS {
            if let Some(flag) = setting.flag {
                assert_eq!(flag, setting.name.to_ascii_lowercase().replace('_', "-"));
            }
        }
    }

    #[test]
    fn the_operations_guide_lists_every_setting() {
        let guide = include_str!("../../docs/operations.md");
        assert!(
            guide.contains(&settings_table()),
            "docs/operations.md must contain config::settings_table() as generated:\n{}",
            settings_table()
        );
    }

    #[test]
    fn state_file_can_be_turned_off() {
        assert_eq!(
            Config::parse(&RawValues::new()).unwrap().state_file,
            Some(PathBuf::from("./data/state.json"))
        );
        let off = Config::parse(&raw(&[("STATE_FILE", "off")])).unwrap();
        assert_eq!(off.state_file, None);
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
            ("MAX_FRAMES_PER_CAMERA", "-1"),
            ("MAX_FRAMES_PER_CAMERA", "1.5"),
            ("MAX_FRAMES_PER_CAMERA", "100000001"),
            ("MAX_FRAME_AGE_SECONDS", "-5"),
            ("MAX_FRAME_AGE_SECONDS", "forever"),
            ("STOPPED_FOLDER_TTL_SECONDS", "NaN"),
            ("STOPPED_FOLDER_TTL_SECONDS", "1e12"),
            ("MIN_FREE_DISK", "lots"),
            ("MIN_FREE_DISK", "5 parsecs"),
            ("MIN_FREE_DISK", "100%"),
            ("MIN_FREE_DISK", "-1GB"),
            ("LOG_FORMAT", "xml"),
            ("MAX_CAMERAS", "0"),
            ("MAX_CAMERAS", "100001"),
            ("MAX_CONNECTIONS", "0"),
            ("RATE_LIMIT_PER_MINUTE", "-1"),
            ("RATE_LIMIT_PER_MINUTE", "lots"),
            ("RATE_LIMIT_PER_MINUTE", "1000001"),
            ("CORS_ALLOWED_ORIGINS", "example.com"),
            ("CORS_ALLOWED_ORIGINS", "*,https://a.example"),
            ("TLS_CERT_FILE", "cert.pem"),
            ("TLS_KEY_FILE", "key.pem"),
            ("MAX_FRAME_PIXELS", "0"),
            ("MAX_FRAME_PIXELS", "huge"),
            ("MAX_FRAME_PIXELS", "65536x65536"),
        ] {
            let err = Config::parse(&raw(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn limits_are_on_and_the_rest_off_until_configured() {
        let defaults = Config::parse(&RawValues::new()).unwrap();
        assert_eq!(defaults.max_cameras, 256);
        assert_eq!(defaults.max_connections, 1024);
        assert_eq!(defaults.rate_limit_per_minute, None);
        assert_eq!(defaults.cors_allowed_origins, CorsOrigins::None);
        assert_eq!(defaults.tls, None);
        let set = Config::parse(&raw(&[
            ("MAX_CAMERAS", "2"),
            ("RATE_LIMIT_PER_MINUTE", "30"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("TLS_CERT_FILE", "cert.pem"),
            ("TLS_KEY_FILE", "key.pem"),
        ]))
        .unwrap();
        assert_eq!(set.max_cameras, 2);
        assert_eq!(set.rate_limit_per_minute, NonZeroU32::new(30));
        assert_eq!(set.cors_allowed_origins, CorsOrigins::Any);
        assert_eq!(set.tls.unwrap().key, PathBuf::from("key.pem"));
        for off in ["off", "0"] {
            let config = Config::parse(&raw(&[("RATE_LIMIT_PER_MINUTE", off)])).unwrap();
            assert_eq!(config.rate_limit_per_minute, None, "{off}");
        }
    }

    #[test]
    fn authentication_is_off_by_default_and_on_with_keys_or_a_jwt_key() {
        assert!(!Config::parse(&RawValues::new()).unwrap().auth.is_on());
        let keys = "0123456789abcdef0123:read, fedcba9876543210fedc:control";
        let config = Config::parse(&raw(&[("API_KEYS", keys)])).unwrap();
        assert_eq!(config.auth.describe(), "2 API keys");
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
        let secret = "an HS256 secret of at least 32 bytes";
        let jwt = Config::parse(&raw(&[("JWT_SECRET", secret), ("JWT_AUDIENCE", "cameras")]));
        let described = jwt.unwrap().auth.describe();
        assert!(
            described.starts_with("JWT (HS256/HS384/HS512"),
            "{described}"
        );
        assert!(described.contains("aud checked"), "{described}");
    }

    #[test]
    fn key_files_are_read_and_their_problems_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        fs::write(&keys, "# operators\n0123456789abcdef0123:control\n").unwrap();
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).unwrap();
        let both = raw(&[
            ("API_KEYS", "fedcba9876543210fedc:read"),
            ("API_KEYS_FILE", keys.to_str().unwrap()),
        ]);
        assert_eq!(Config::parse(&both).unwrap().auth.describe(), "2 API keys");

        let missing = dir.path().join("missing");
        let missing = missing.to_str().unwrap();
        let empty = dir.path().join("empty");
        fs::write(&empty, "# none yet\n").unwrap();
        let bad = dir.path().join("bad");
        fs::write(&bad, "0123456789abcdef0123:admin\n").unwrap();
        let private = dir.path().join("private.pem");
        fs::write(
            &private,
            "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        for (pairs, expected) in [
            (vec![("API_KEYS_FILE", missing)], "cannot be read"),
            (
                vec![("API_KEYS_FILE", empty.to_str().unwrap())],
                "holds no key:scope line",
            ),
            (
                vec![("API_KEYS_FILE", bad.to_str().unwrap())],
                "line 1: unknown scope \"admin\"",
            ),
            (vec![("JWT_PUBLIC_KEY_FILE", missing)], "cannot be read"),
            (
                vec![("JWT_PUBLIC_KEY_FILE", private.to_str().unwrap())],
                "holds a private key",
            ),
        ] {
            let err = Config::parse(&raw(&pairs)).unwrap_err();
            assert_eq!(err.variable(), pairs[0].0, "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn bad_auth_values_name_the_variable_but_not_the_secret() {
        let secret = "an HS256 secret of at least 32 bytes";
        for (pairs, variable) in [
            (vec![("API_KEYS", "0123456789abcdef0123:write")], "API_KEYS"),
            (vec![("API_KEYS", "tooshort:read")], "API_KEYS"),
            (vec![("JWT_SECRET", "tooshort-secret")], "JWT_SECRET"),
            (
                vec![("JWT_SECRET", secret), ("JWT_PUBLIC_KEY_FILE", "/k.pem")],
                "JWT_SECRET",
            ),
            (vec![("JWT_AUDIENCE", "cameras")], "JWT_AUDIENCE"),
            (vec![("JWT_ISSUER", "https://idp.example")], "JWT_ISSUER"),
        ] {
            let err = Config::parse(&raw(&pairs)).unwrap_err();
            assert_eq!(err.variable(), variable, "{err}");
            let text = err.to_string();
            assert!(text.starts_with(variable), "{text}");
            for secret in ["0123456789abcdef0123", "tooshort", secret] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }

    #[test]
    fn the_peer_key_must_be_a_control_key_of_this_replica() {
        let keys = "0123456789abcdef0123:control,fedcba9876543210fedc:read";
        let peer = |key: &str| {
            Config::parse(&raw(&[("API_KEYS", keys), ("PEER_API_KEY", key)]))
                .map(|config| config.peer_credential)
        };
        let accepted = peer("0123456789abcdef0123").unwrap().unwrap();
        assert_eq!(accepted.authorization(), "Bearer 0123456789abcdef0123");
        assert!(!format!("{accepted:?}").contains("0123"), "{accepted:?}");
        for refused in ["fedcba9876543210fedc", "not-among-the-keys-0000"] {
            let err = peer(refused).unwrap_err();
            assert_eq!(err.variable(), "PEER_API_KEY", "{err}");
            assert!(!err.to_string().contains(refused), "{err}");
        }
        // Without authentication it is only sent (the others may have it on).
        let open = Config::parse(&raw(&[("PEER_API_KEY", "anything-at-all")])).unwrap();
        assert!(open.peer_credential.is_some());
        assert_eq!(
            Config::parse(&RawValues::new()).unwrap().peer_credential,
            None
        );
    }

    #[test]
    fn sharding_is_off_unless_there_are_several_replicas() {
        assert_eq!(Config::parse(&RawValues::new()).unwrap().shard, None);
        let alone = Config::parse(&raw(&[("SHARD_COUNT", "1"), ("POD_NAME", "web")])).unwrap();
        assert_eq!(alone.shard, None);
        let template = "http://video-pipeline-{index}.video-pipeline:8002";
        let pod = Config::parse(&raw(&[
            ("SHARD_COUNT", "3"),
            ("POD_NAME", "video-pipeline-2"),
            ("PEER_URL_TEMPLATE", template),
        ]))
        .unwrap()
        .shard
        .unwrap();
        assert_eq!((pod.index(), pod.count()), (2, 3));
        assert_eq!(
            pod.peer_url(0),
            "http://video-pipeline-0.video-pipeline:8002"
        );
        let listed = Config::parse(&raw(&[
            ("SHARD_COUNT", "2"),
            ("SHARD_INDEX", "1"),
            ("POD_NAME", "video-pipeline-0"),
            ("PEER_URLS", "http://127.0.0.1:8002,http://127.0.0.1:8003"),
        ]))
        .unwrap()
        .shard
        .unwrap();
        assert_eq!(listed.index(), 1, "SHARD_INDEX wins over POD_NAME");
        assert_eq!(listed.peer_url(1), "http://127.0.0.1:8003");
        let leaving = Config::parse(&raw(&[
            ("SHARD_COUNT", "1"),
            ("POD_NAME", "video-pipeline-1"),
            ("PEER_URL_TEMPLATE", template),
        ]))
        .unwrap()
        .shard
        .unwrap();
        assert!(leaving.is_leaving(), "{leaving:?}");
        let deployment = Config::parse(&raw(&[("POD_NAME", "video-pipeline-7d9f8-24567")]));
        assert_eq!(
            deployment.unwrap().shard,
            None,
            "POD_NAME alone changes nothing"
        );
    }

    #[test]
    fn bad_sharding_names_the_variable() {
        let template = ("PEER_URL_TEMPLATE", "http://vp-{index}.vp:8002");
        let cases: [(&[(&'static str, &str)], &str); 10] = [
            (&[("SHARD_COUNT", "0")], "SHARD_COUNT"),
            (&[("SHARD_COUNT", "1025")], "SHARD_COUNT"),
            (&[("SHARD_INDEX", "1")], "PEER_URL_TEMPLATE"),
            (&[("SHARD_COUNT", "3"), template], "SHARD_INDEX"),
            (
                &[("SHARD_COUNT", "3"), ("SHARD_INDEX", "x"), template],
                "SHARD_INDEX",
            ),
            (
                &[("SHARD_COUNT", "3"), ("SHARD_INDEX", "1024"), template],
                "SHARD_INDEX",
            ),
            (
                &[("SHARD_COUNT", "3"), ("POD_NAME", "vp"), template],
                "POD_NAME",
            ),
            (
                &[("SHARD_COUNT", "3"), ("SHARD_INDEX", "0")],
                "PEER_URL_TEMPLATE",
            ),
            (
                &[
                    ("SHARD_COUNT", "2"),
                    ("SHARD_INDEX", "0"),
                    ("PEER_URL_TEMPLATE", "http://vp:8002"),
                ],
                "PEER_URL_TEMPLATE",
            ),
            (
                &[
                    ("SHARD_COUNT", "3"),
                    ("SHARD_INDEX", "0"),
                    ("PEER_URLS", "http://a:1,http://b:1"),
                ],
                "PEER_URLS",
            ),
        ];
        for (pairs, name) in cases {
            let err = Config::parse(&raw(pairs)).unwrap_err();
            assert_eq!(err.variable(), name, "{pairs:?}: {err}");
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
    fn retention_and_disk_defaults_and_overrides() {
        let defaults = Config::parse(&RawValues::new()).unwrap();
        assert_eq!(defaults.max_frames_per_camera, None);
        assert_eq!(defaults.max_frame_age, None);
        assert_eq!(defaults.stopped_folder_ttl, None);
        assert_eq!(defaults.min_free_disk, MinFree::Bytes(1024 * 1024 * 1024));
        let set = Config::parse(&raw(&[
            ("MAX_FRAMES_PER_CAMERA", "0"),
            ("MAX_FRAME_AGE_SECONDS", "3600"),
            ("STOPPED_FOLDER_TTL_SECONDS", "0.5"),
            ("MIN_FREE_DISK", "5%"),
        ]))
        .unwrap();
        assert_eq!(set.max_frames_per_camera, Some(0));
        assert_eq!(set.max_frame_age, Some(Duration::from_secs(3600)));
        assert_eq!(set.stopped_folder_ttl, Some(Duration::from_millis(500)));
        assert_eq!(set.min_free_disk, MinFree::Percent(5.0));
        let off = Config::parse(&raw(&[
            ("MAX_FRAME_AGE_SECONDS", "0"),
            ("MIN_FREE_DISK", "0"),
        ]))
        .unwrap();
        assert_eq!(off.max_frame_age, None);
        assert_eq!(off.min_free_disk, MinFree::Bytes(0));
    }

    #[test]
    fn sizes_in_plain_decimal_and_binary_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("500 mb"), Some(500_000_000));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("7b"), Some(7));
        assert_eq!(parse_size("3TB"), Some(3_000_000_000_000));
        for bad in ["", "GiB", "1.2.3MB", "-1", "5 XB", "1e3", "99999999999TiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn frame_limits_as_a_size_or_a_pixel_count() {
        let defaults = Config::parse(&RawValues::new()).unwrap();
        assert_eq!(defaults.max_frame_pixels.pixels(), 8192 * 8192);
        let size = Config::parse(&raw(&[("MAX_FRAME_PIXELS", "3840x2160")])).unwrap();
        assert_eq!(size.max_frame_pixels.pixels(), 3840 * 2160);
        let count = Config::parse(&raw(&[("MAX_FRAME_PIXELS", "2000000")])).unwrap();
        assert!(!count.max_frame_pixels.admits(1920, 1080 + 2));
        let err = Config::parse(&raw(&[("MAX_FRAME_PIXELS", "8K")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid MAX_FRAME_PIXELS \"8K\" (expected WIDTHxHEIGHT such as 8192x8192, or a pixel count 1..2147483647)"
        );
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
