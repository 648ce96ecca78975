//! Everything that speaks libav: opening inputs, decoding, pixel conversion, probing
//! and hardware devices. Nothing outside this module sees an ffmpeg type.

mod convert;
mod decode;
mod frame_limit;
pub mod hw;
mod input;
mod libav_limits;
mod libav_log;
mod liveness;
mod log_bridge;
pub(crate) mod nal;
mod planner;
mod probe;
mod scale;

use std::time::Duration;

use ffmpeg_next::Rational;
use thiserror::Error;

use crate::stop::StopToken;

pub use convert::{range_tables, Converter};
pub use decode::{
    DecodedFrame, OpenOptions, VideoSource, DEFAULT_OPEN_TIMEOUT, DEFAULT_READ_TIMEOUT,
};
pub use frame_limit::{FrameLimit, DEFAULT_FRAME_LIMIT};

pub use probe::{probe, StreamSummary, VideoInfo};
pub use scale::{ShapeFailure, Shaper};

/// Prepares libav once per process, with the default frame limit's cap on any one
/// allocation unless [`init_with`] ran first.
pub fn init() {
    init_with(DEFAULT_FRAME_LIMIT);
}

/// Prepares libav once per process: no single libav allocation may exceed what frames
/// of `limit` need (see `FrameLimit::allocation_cap`), whatever a source claims.
/// libav's own messages go to our logger (after the logger is set up, at its level),
/// rate-limited per camera; every libav failure also reaches the caller as an error
/// with its camera's context. Only the first call of the process counts.
pub fn init_with(limit: FrameLimit) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        libav_limits::cap_allocations(limit.allocation_cap());
        if let Err(e) = ffmpeg_next::init() {
            log::error!("libav initialisation failed: {e}");
        }
        log_bridge::install();
        ffmpeg_next::format::network::init();
    });
}

/// A camera's session is over (its decoders are gone): libav messages of it that the
/// rate limit held back are counted in the log now.
pub fn camera_finished(camera: &str) {
    libav_log::camera_finished(camera);
}

/// What kind of failure a source had, for status, logs and the retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Authentication,
    NotFound,
    Refused,
    Timeout,
    Stalled,
    UnsupportedCodec,
    /// The source sent what libav cannot make sense of: a broken or hostile file,
    /// stream or answer.
    InvalidData,
    /// The source's frames exceed `MAX_FRAME_PIXELS`, or it needs more memory at once
    /// than libav may allocate.
    TooLarge,
    EndOfStream,
    Network,
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Authentication => "authentication",
            FailureKind::NotFound => "not_found",
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Stalled => "stalled",
            FailureKind::UnsupportedCodec => "unsupported_codec",
            FailureKind::InvalidData => "invalid_data",
            FailureKind::TooLarge => "too_large",
            FailureKind::EndOfStream => "end_of_stream",
            FailureKind::Network => "network",
            FailureKind::Other => "other",
        }
    }

    /// Failures that retrying soon cannot fix: retried at the longest delay.
    pub fn needs_slow_retry(self) -> bool {
        matches!(
            self,
            FailureKind::Authentication | FailureKind::NotFound | FailureKind::TooLarge
        )
    }

    fn of(error: &ffmpeg_next::Error) -> FailureKind {
        use ffmpeg_next::util::error::{
            ECONNREFUSED, ECONNRESET, EHOSTUNREACH, EIO, ENETUNREACH, ENOENT, ENOMEM, EPIPE,
            ETIMEDOUT,
        };
        use ffmpeg_next::Error as E;
        match *error {
            E::HttpUnauthorized | E::HttpForbidden => FailureKind::Authentication,
            E::HttpNotFound | E::StreamNotFound => FailureKind::NotFound,
            E::Exit => FailureKind::Timeout,
            E::Eof => FailureKind::EndOfStream,
            E::InvalidData => FailureKind::InvalidData,
            E::Other { errno: ENOMEM } => FailureKind::TooLarge,
            E::DecoderNotFound | E::DemuxerNotFound | E::ProtocolNotFound | E::PatchWelcome => {
                FailureKind::UnsupportedCodec
            }
            E::Other { errno } if errno == ECONNREFUSED => FailureKind::Refused,
            E::Other { errno } if errno == ETIMEDOUT => FailureKind::Timeout,
            E::Other { errno }
                if [EHOSTUNREACH, ENETUNREACH, ECONNRESET, EPIPE, EIO].contains(&errno) =>
            {
                FailureKind::Network
            }
            E::Other { errno: ENOENT } => FailureKind::NotFound,
            _ => FailureKind::Other,
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong in libav, with the (redacted) source it concerns.
#[derive(Debug, Error)]
pub enum MediaError {
    #[error("{source_name}: could not open ({kind}): {message}")]
    Open {
        source_name: String,
        message: String,
        kind: FailureKind,
    },
    #[error("{source_name}: timed out after {seconds:.0} s while {doing}")]
    Timeout {
        source_name: String,
        seconds: f64,
        doing: &'static str,
    },
    #[error("{source_name}: stalled: no usable video frame for {seconds:.0} s ({damaged} damaged frames dropped)")]
    Stalled {
        source_name: String,
        seconds: f64,
        damaged: u64,
    },
    #[error("{source_name}: no video stream")]
    NoVideoStream { source_name: String },
    #[error("{source_name}: unsupported codec: {message}")]
    Decoder {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: read failed ({kind}): {message}")]
    Read {
        source_name: String,
        message: String,
        kind: FailureKind,
    },
    #[error("{source_name}: frames of {width}x{height} are larger than MAX_FRAME_PIXELS allows ({limit})")]
    FrameTooLarge {
        source_name: String,
        width: u32,
        height: u32,
        limit: FrameLimit,
    },
    #[error(
        "{source_name}: ended without a usable video frame ({damaged} damaged frames dropped)"
    )]
    NoUsableFrame { source_name: String, damaged: u64 },
    #[error("{source_name}: pixel conversion failed: {message}")]
    Convert {
        source_name: String,
        message: String,
    },
    /// The source cannot be given the frames asked for (a crop outside it); trying
    /// again cannot help.
    #[error("{source_name}: {message}")]
    Shape {
        source_name: String,
        message: String,
    },
    #[error("stopped")]
    Stopped,
}

impl MediaError {
    pub fn kind(&self) -> FailureKind {
        match self {
            MediaError::Open { kind, .. } | MediaError::Read { kind, .. } => *kind,
            MediaError::Timeout { .. } => FailureKind::Timeout,
            MediaError::Stalled { .. } => FailureKind::Stalled,
            MediaError::NoVideoStream { .. } | MediaError::Decoder { .. } => {
                FailureKind::UnsupportedCodec
            }
            MediaError::FrameTooLarge { .. } => FailureKind::TooLarge,
            MediaError::NoUsableFrame { .. } => FailureKind::InvalidData,
            MediaError::Convert { .. } | MediaError::Shape { .. } | MediaError::Stopped => {
                FailureKind::Other
            }
        }
    }

    /// A failure that ends the camera even for a live source, which is otherwise
    /// reconnected: it would only happen again.
    pub fn ends_camera(&self) -> bool {
        matches!(self, MediaError::Shape { .. })
    }
}

/// A libav failure as the caller sees it: a stop when the stop token is set, a timeout
/// when the interrupt callback fired at the deadline (`Exit`) or a socket timed out,
/// else what `other` makes of the message and its kind.
fn classify(
    error: ffmpeg_next::Error,
    name: &str,
    stop: &StopToken,
    limit: Duration,
    doing: &'static str,
    other: impl FnOnce(String, FailureKind) -> MediaError,
) -> MediaError {
    use ffmpeg_next::util::error::ETIMEDOUT;
    match error {
        _ if stop.is_stopped() => MediaError::Stopped,
        ffmpeg_next::Error::Exit | ffmpeg_next::Error::Other { errno: ETIMEDOUT } => {
            MediaError::Timeout {
                source_name: name.to_owned(),
                seconds: limit.as_secs_f64(),
                doing,
            }
        }
        e => other(describe(&e), FailureKind::of(&e)),
    }
}

/// libav's words for `error`; for a refused allocation, also why it may have been.
fn describe(error: &ffmpeg_next::Error) -> String {
    match (FailureKind::of(error), libav_limits::allocation_cap()) {
        (FailureKind::TooLarge, Some(cap)) => format!(
            "{error} (the source needed more than libav may allocate at once, {} MiB for \
             frames up to MAX_FRAME_PIXELS, or the system is out of memory)",
            cap >> 20
        ),
        _ => error.to_string(),
    }
}

/// A libav rational as a number, when it can be a rate or a time base: finite and
/// positive (libav writes 0/0 or 0/1 for "unknown").
fn rational(r: Rational) -> Option<f64> {
    let value = f64::from(r.numerator()) / f64::from(r.denominator());
    (value.is_finite() && value > 0.0).then_some(value)
}

/// The frame rate a stream states: its average, else its base rate, when plausible.
fn stated_frame_rate(stream: &ffmpeg_next::Stream<'_>) -> Option<f64> {
    rational(stream.avg_frame_rate())
        .or_else(|| rational(stream.rate()))
        .filter(|r| *r < 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libav_errors_are_classified() {
        use ffmpeg_next::Error as E;
        assert_eq!(
            FailureKind::of(&E::HttpUnauthorized),
            FailureKind::Authentication
        );
        assert_eq!(FailureKind::of(&E::HttpNotFound), FailureKind::NotFound);
        assert_eq!(
            FailureKind::of(&E::Other {
                errno: ffmpeg_next::util::error::ECONNREFUSED
            }),
            FailureKind::Refused
        );
        assert_eq!(FailureKind::of(&E::Exit), FailureKind::Timeout);
        assert_eq!(
            FailureKind::of(&E::DecoderNotFound),
            FailureKind::UnsupportedCodec
        );
        assert_eq!(FailureKind::of(&E::InvalidData), FailureKind::InvalidData);
        let refused_allocation = E::Other {
            errno: ffmpeg_next::util::error::ENOMEM,
        };
        assert_eq!(FailureKind::of(&refused_allocation), FailureKind::TooLarge);
        assert!(FailureKind::TooLarge.needs_slow_retry());
        assert!(FailureKind::Authentication.needs_slow_retry());
        assert!(!FailureKind::Refused.needs_slow_retry());
    }

    #[test]
    fn interrupts_and_socket_timeouts_are_timeouts_unless_stopped() {
        use ffmpeg_next::Error as E;
        let limit = Duration::from_secs(7);
        let other = |message: String, kind| MediaError::Read {
            source_name: "cam".into(),
            message,
            kind,
        };
        let running = StopToken::new();
        for error in [
            E::Exit,
            E::Other {
                errno: ffmpeg_next::util::error::ETIMEDOUT,
            },
        ] {
            let classified = classify(error, "cam", &running, limit, "reading", other);
            assert_eq!(
                classified.to_string(),
                "cam: timed out after 7 s while reading"
            );
        }
        let refused = E::Other {
            errno: ffmpeg_next::util::error::ECONNREFUSED,
        };
        let classified = classify(refused, "cam", &running, limit, "reading", other);
        assert_eq!(classified.kind(), FailureKind::Refused);
        let stopped = StopToken::new();
        stopped.stop();
        let classified = classify(E::Exit, "cam", &stopped, limit, "reading", other);
        assert!(matches!(classified, MediaError::Stopped));
    }

    #[test]
    fn only_positive_rationals_are_rates() {
        assert_eq!(
            rational(Rational::new(30_000, 1001)),
            Some(30_000.0 / 1001.0)
        );
        assert_eq!(rational(Rational::new(0, 1)), None);
        assert_eq!(rational(Rational::new(0, 0)), None);
        assert_eq!(rational(Rational::new(25, 0)), None);
        assert_eq!(rational(Rational::new(-25, 1)), None);
    }
}
