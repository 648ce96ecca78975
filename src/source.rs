//! Camera ids and video sources: what callers may ask for, checked before anything
//! touches the disk or the network.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub const MAX_CAMERA_ID_LEN: usize = 64;

#[derive(Debug, Error, PartialEq)]
pub enum SourceError {
    #[error("Invalid camera_id {0:?}: use 1 to 64 characters from A-Z a-z 0-9 _ . - not starting with '.'")]
    BadCameraId(String),
    #[error("URL scheme {scheme:?} is not allowed (allowed: {allowed})")]
    SchemeNotAllowed { scheme: String, allowed: String },
    #[error("Malformed URL {0}: it needs a host")]
    MalformedUrl(String),
    #[error("Local file {0:?} does not exist or cannot be read")]
    FileNotFound(String),
    #[error(
        "Local file {0:?} is outside the upload folder and ALLOWED_INPUT_DIRS; add its directory to ALLOWED_INPUT_DIRS"
    )]
    PathNotAllowed(String),
}

/// A validated camera id: safe to use as a folder name and a thread name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CameraId(String);

impl CameraId {
    pub fn parse(value: &str) -> Result<CameraId, SourceError> {
        let ok = !value.is_empty()
            && value.len() <= MAX_CAMERA_ID_LEN
            && !value.starts_with('.')
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(CameraId(value.to_owned()))
        } else {
            Err(SourceError::BadCameraId(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How RTSP carries media: interleaved in the TCP connection (the default, it passes
/// firewalls and loses nothing), over UDP, or libav's choice (UDP, then TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
    Auto,
}

impl RtspTransport {
    pub fn parse(value: &str) -> Option<RtspTransport> {
        match value.trim().to_ascii_lowercase().as_str() {
            "tcp" => Some(RtspTransport::Tcp),
            "udp" => Some(RtspTransport::Udp),
            "auto" => Some(RtspTransport::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
            RtspTransport::Auto => "auto",
        }
    }
}

/// Network protocols a source may use, with the libav protocols each one needs.
/// Everything else (`concat:`, `subfile:`, `data:`, `pipe:`, ...) is refused, and libav's
/// `protocol_whitelist` keeps an input from pulling in another protocol behind our back.
const NETWORK_SCHEMES: [(&str, &str); 10] = [
    ("rtsp", "rtsp,rtp,srtp,udp,tcp,tls,httpproxy"),
    ("rtsps", "rtsp,rtp,srtp,udp,tcp,tls,httpproxy"),
    ("rtmp", "rtmp,tcp"),
    ("rtmps", "rtmps,rtmp,tcp,tls"),
    ("http", "http,https,tcp,tls,crypto,httpproxy"),
    ("https", "http,https,tcp,tls,crypto,httpproxy"),
    ("srt", "srt,udp"),
    ("udp", "udp,rtp"),
    ("rtp", "rtp,udp,srtp"),
    ("tcp", "tcp"),
];

/// Where a camera's video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local file (already resolved and checked to be inside an allowed directory).
    File(PathBuf),
    /// A network URL whose scheme is allowed.
    Url(String),
}

impl Source {
    /// Classifies a caller's `url` field. Local paths are resolved (`..` and symlinks)
    /// and must lie inside one of `allowed_dirs`.
    pub fn parse(value: &str, allowed_dirs: &[PathBuf]) -> Result<Source, SourceError> {
        let value = value.trim();
        match scheme_of(value) {
            Some(scheme) if scheme == "file" => {
                // `file:` in any case, then the empty host of `file:///path`.
                let rest = &value[scheme.len() + 1..];
                let path = rest.strip_prefix("//").unwrap_or(rest);
                Source::local(Path::new(path), allowed_dirs)
            }
            Some(scheme) => {
                if !NETWORK_SCHEMES.iter().any(|(s, _)| *s == scheme) {
                    return Err(SourceError::SchemeNotAllowed {
                        scheme,
                        allowed: allowed_schemes(),
                    });
                }
                let rest = &value[scheme.len() + 1..];
                let host_part = rest.trim_start_matches("//");
                if !rest.starts_with("//") || host_part.is_empty() || host_part.starts_with('/') {
                    return Err(SourceError::MalformedUrl(redact_url(value)));
                }
                Ok(Source::Url(value.to_owned()))
            }
            None => Source::local(Path::new(value), allowed_dirs),
        }
    }

    /// A local file that must lie inside one of `allowed_dirs` once resolved.
    pub fn local(path: &Path, allowed_dirs: &[PathBuf]) -> Result<Source, SourceError> {
        let shown = path.display().to_string();
        let resolved = path
            .canonicalize()
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| SourceError::FileNotFound(shown.clone()))?;
        let inside = allowed_dirs
            .iter()
            .filter_map(|d| d.canonicalize().ok())
            .any(|dir| resolved.starts_with(dir));
        if inside {
            Ok(Source::File(resolved))
        } else {
            Err(SourceError::PathNotAllowed(shown))
        }
    }

    /// True for protocols that carry only live streams (RTSP, RTMP, SRT, UDP, RTP,
    /// TCP). A file or an HTTP(S) URL may be either: that is known only once libav has
    /// opened it (`media::liveness`).
    pub fn is_always_live(&self) -> bool {
        match self {
            Source::File(_) => false,
            Source::Url(url) => !matches!(scheme_of(url).as_deref(), Some("http" | "https")),
        }
    }

    /// The string handed to libav.
    pub fn location(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Url(url) => url.clone(),
        }
    }

    /// libav's `protocol_whitelist` for this source.
    pub fn protocol_whitelist(&self) -> &'static str {
        match self {
            // A session description names the RTP/UDP streams to receive.
            Source::File(path)
                if path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("sdp")) =>
            {
                "file,rtp,srtp,udp"
            }
            Source::File(_) => "file",
            Source::Url(url) => {
                let scheme = scheme_of(url).unwrap_or_default();
                NETWORK_SCHEMES
                    .iter()
                    .find(|(s, _)| *s == scheme)
                    .map(|(_, list)| *list)
                    .unwrap_or("file")
            }
        }
    }

    /// The source as it may be shown in status, logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Url(url) => redact_url(url),
        }
    }
}

fn allowed_schemes() -> String {
    let mut all: Vec<&str> = NETWORK_SCHEMES.iter().map(|(s, _)| *s).collect();
    all.push("file (inside allowed directories)");
    all.join(", ")
}

/// `rtsp://...` → `rtsp`; `/videos/a.mp4` and `C:` style strings → `None`.
fn scheme_of(value: &str) -> Option<String> {
    let (scheme, _) = value.split_once(':')?;
    let valid = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// Replaces the password (or a lone user token) in `scheme://user:pass@host/...`, and
/// credential-looking query parameters, with `***`. A URL carried inside the URL (a
/// relay's `?src=rtsp://user:pass@cam/live`) has its password replaced too.
pub fn redact_url(url: &str) -> String {
    let out = redact_userinfo(url);
    let Some(q) = out.find('?') else {
        return out;
    };
    let (base, query) = out.split_at(q + 1);
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}{}", redacted.join("&"))
}

/// The user information after every `://` of `url`, its password (or lone token)
/// replaced. An authority ends at `/`, `?` or `#`, and in the query also at `&`: a URL
/// carried in a parameter ends with it (so a password never spans parameters, and
/// replacing a parameter's value later cannot change what was an authority).
fn redact_userinfo(url: &str) -> String {
    let query = url.find('?').unwrap_or(url.len());
    let mut out = String::with_capacity(url.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = url[from..].find("://").map(|i| from + i) {
        let start = found + 3;
        let ends: &[char] = if found > query {
            &['/', '?', '#', '&']
        } else {
            &['/', '?', '#']
        };
        let end = url[start..].find(ends).map_or(url.len(), |i| start + i);
        if let Some(at) = url[start..end].rfind('@').map(|i| start + i) {
            out.push_str(&url[copied..start]);
            match url[start..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str("***"),
            }
            copied = at;
        }
        // The authority holds no `/`, but may end with the `:` of the next `://`.
        from = start;
    }
    out.push_str(&url[copied..]);
    out
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "pwd", "token", "secret", "key", "auth", "signature"]
        .iter()
        .any(|s| key.contains(s))
}

/// Removes every credential of `url` from a message (libav repeats the URL in errors).
pub fn redact_in(message: &str, url: &str) -> String {
    let redacted = redact_url(url);
    if redacted == url {
        message.to_owned()
    } else {
        message.replace(url, &redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids() {
        for good in ["camera_1", "a", "A.b-c_9", &"x".repeat(64)] {
            assert!(CameraId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "a\0b",
            &"x".repeat(65),
            "a b",
            "é",
        ] {
            assert!(CameraId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allowed_and_refused_schemes() {
        assert!(matches!(
            Source::parse("rtsp://cam.local:554/stream", &[]),
            Ok(Source::Url(_))
        ));
        assert!(matches!(
            Source::parse("HTTPS://example.com/a.m3u8", &[]),
            Ok(Source::Url(_))
        ));
        for bad in [
            "concat:/etc/passwd|/etc/hosts",
            "subfile:,start,0,end,10,:/etc/passwd",
            "data:video/mp4;base64,AAAA",
            "pipe:0",
            "gopher://x/",
        ] {
            assert!(
                matches!(
                    Source::parse(bad, &[]),
                    Err(SourceError::SchemeNotAllowed { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Source::parse("rtsp:/nohost", &[]),
            Err(SourceError::MalformedUrl(_))
        ));
    }

    #[test]
    fn local_paths_must_be_inside_allowed_dirs() {
        let allowed = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let inside = allowed.path().join("a.mp4");
        let outside = other.path().join("b.mp4");
        std::fs::write(&inside, b"x").unwrap();
        std::fs::write(&outside, b"x").unwrap();
        let dirs = [allowed.path().to_owned()];

        assert!(matches!(
            Source::parse(inside.to_str().unwrap(), &dirs),
            Ok(Source::File(_))
        ));
        // Found by fuzzing (fuzz target source_url): `FILE://` was taken for a
        // relative path named `FILE:`, so the same file was refused.
        for scheme in ["file://", "file:", "FILE://", "File:"] {
            let file_url = format!("{scheme}{}", inside.display());
            assert_eq!(
                Source::parse(&file_url, &dirs),
                Ok(Source::File(inside.canonicalize().unwrap())),
                "{file_url}"
            );
        }
        assert!(matches!(
            Source::parse(outside.to_str().unwrap(), &dirs),
            Err(SourceError::PathNotAllowed(_))
        ));
        let escape = allowed.path().join("..").join(
            other
                .path()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
                + "/b.mp4",
        );
        assert!(matches!(
            Source::parse(escape.to_str().unwrap(), &dirs),
            Err(SourceError::PathNotAllowed(_))
        ));
        #[cfg(unix)]
        {
            let link = allowed.path().join("link.mp4");
            std::os::unix::fs::symlink(&outside, &link).unwrap();
            assert!(matches!(
                Source::parse(link.to_str().unwrap(), &dirs),
                Err(SourceError::PathNotAllowed(_))
            ));
        }
        assert!(matches!(
            Source::parse("/no/such/file.mp4", &dirs),
            Err(SourceError::FileNotFound(_))
        ));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("rtsp://admin:hunter2@10.0.0.5:554/live"),
            "rtsp://admin:***@10.0.0.5:554/live"
        );
        assert_eq!(
            redact_url("rtsp://token@cam/live?x=1"),
            "rtsp://***@cam/live?x=1"
        );
        assert_eq!(
            redact_url("https://cdn/x.m3u8?token=abc&res=hd"),
            "https://cdn/x.m3u8?token=***&res=hd"
        );
        assert_eq!(redact_url("rtsp://cam/live"), "rtsp://cam/live");
        assert_eq!(
            redact_url("http://relay/api?src=rtsp://admin:hunter2@cam/live&token=t"),
            "http://relay/api?src=rtsp://admin:***@cam/live&token=***"
        );
        assert_eq!(
            redact_url("http://relay/rtsp://tok@cam?next=rtmp://u:p@h&x=a@b"),
            "http://relay/rtsp://***@cam?next=rtmp://u:***@h&x=a@b"
        );
        let message = "rtsp://u:p@h/s: Server returned 401";
        assert_eq!(
            redact_in(message, "rtsp://u:p@h/s"),
            "rtsp://u:***@h/s: Server returned 401"
        );
    }

    #[test]
    fn redaction_is_stable() {
        // Found by fuzzing (fuzz target source_url): redacting the first URL hid a
        // second one carried in the query, whose user information was left as it was;
        // redacting the result again changed it.
        for url in [
            "MH?PASSWD=//:@ERTSP://K:@[A]:65535/MMQ6?=PP&=Cp://:@E/TSPS://vWD",
            "x?token=a://b&c=rtsp://user:pw@h",
            "http://h/p?next=rtsp://h&token=a/b&c=d@e",
        ] {
            let once = redact_url(url);
            assert_eq!(redact_url(&once), once, "{url}");
            assert!(!once.contains("pw@"), "{once}");
        }
        // Found by fuzzing too: an authority ending with the `:` of the next `://`
        // (`C://rtsp://`) hid that URL's password from the scan.
        for (url, redacted) in [
            (
                "https://t@h/m/C://rtsp://:pw@h",
                "https://***@h/m/C://rtsp://:***@h",
            ),
            ("rtsp://u:p@rtsp://v:pw@h", "rtsp://u:***@rtsp://v:***@h"),
            ("a://b:c://d:pw@e", "a://b:c://d:***@e"),
        ] {
            assert_eq!(redact_url(url), redacted);
            assert_eq!(redact_url(redacted), redacted);
        }
    }

    #[test]
    fn transports_and_whitelists() {
        assert_eq!(RtspTransport::parse("UDP"), Some(RtspTransport::Udp));
        assert_eq!(RtspTransport::parse("quic"), None);
        assert_eq!(
            Source::File("/a/b.sdp".into()).protocol_whitelist(),
            "file,rtp,srtp,udp"
        );
        assert_eq!(Source::File("/a/b.mp4".into()).protocol_whitelist(), "file");
        assert!(Source::Url("rtsps://h/s".into())
            .protocol_whitelist()
            .contains("tls"));
    }

    #[test]
    fn only_stream_protocols_are_live_before_opening() {
        for live in [
            "rtsp://h/s",
            "RTMP://h/app/s",
            "srt://h:9000",
            "udp://0.0.0.0:5000",
        ] {
            assert!(Source::Url(live.into()).is_always_live(), "{live}");
        }
        for either in [
            "http://h/live.m3u8",
            "HTTPS://h/video?id=3",
            "http://h/clip.mp4",
        ] {
            assert!(!Source::Url(either.into()).is_always_live(), "{either}");
        }
        assert!(!Source::File("/a.mp4".into()).is_always_live());
    }
}
