//! Source classification and credential redaction (`source.rs`).
//!
//! - A URL is built from parts, twice: with one password (or lone user token), one
//!   value for each credential-looking query parameter and one password of a URL it
//!   carries in its path or query, then with others. Everything
//!   that may be shown (the redacted URL, `Source::parse`'s answer or error, a message
//!   redacted with `redact_in`) must be the same for both: nothing shown depends on a
//!   secret, so no secret can be read from it.
//! - Any string: classification and redaction never panic, redaction is idempotent,
//!   an accepted URL has an allowed scheme and a network whitelist, an accepted file
//!   lies inside the allowed folder.
//! - Paths made of `..`, `.`, empty segments, links out of the allowed folder and a
//!   sibling folder whose name starts like it: an accepted one always resolves inside
//!   the allowed folder, and the answer is the same with `file:`, `file://` and
//!   `FILE://` in front.

#![no_main]

use std::path::PathBuf;

use arbitrary::Arbitrary;
use base64::prelude::{Engine, BASE64_STANDARD};
use libfuzzer_sys::fuzz_target;
use video_pipeline::source::{redact_in, redact_url, Source};
use video_pipeline_fuzz::{allowed_file, scratch};

const SCHEMES: [&str; 10] = [
    "rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "rtp", "tcp",
];
/// RFC 3986 unreserved and sub-delims characters, and `%` of percent-encoding: what a
/// user name or a host may hold.
const USER: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%";
/// A password may also hold `:`.
const PASSWORD: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%:";
const IPV6: &[u8] = b"0123456789abcdefABCDEF:.";
/// A path's characters (`pchar` and `/`).
const PATH: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$'()*+,;=%:@/&";
/// A query parameter's name or value: a query's characters but the separators `&` and
/// `=` (values may hold `=`) and `#`.
const PARAM: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$'()*+,;%:@/?";
/// Parameter names that hold credentials, as services spell them.
const SECRET_NAMES: [&str; 14] = [
    "token",
    "access_token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "key",
    "api_key",
    "apiKey",
    "auth",
    "auth_token",
    "signature",
    "X-Amz-Signature",
];
const SEGMENTS: [&str; 13] = [
    "allowed",
    "outside",
    "allowed2",
    "..",
    ".",
    "",
    "a.mp4",
    "sub",
    "b.mp4",
    "c.mp4",
    "d.mp4",
    "link_out.mp4",
    "link_dir",
];

#[derive(Arbitrary, Debug)]
struct Input {
    url: UrlParts,
    /// Text around the URL in a message.
    prefix: String,
    suffix: String,
    raw: String,
    path: PathParts,
}

#[derive(Arbitrary, Debug)]
struct UrlParts {
    scheme: u8,
    upper_scheme: bool,
    user: Vec<u8>,
    /// The password, and the other one.
    password: Option<(Vec<u8>, Vec<u8>)>,
    /// Another lone user token, when there is no password.
    other_user: Vec<u8>,
    host: Vec<u8>,
    ipv6: bool,
    port: Option<u16>,
    path: Vec<u8>,
    params: Vec<Param>,
    /// A URL carried in the path or in a query parameter (a relay's source).
    carried: Option<Carried>,
    fragment: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
struct Carried {
    in_query: bool,
    scheme: u8,
    user: Vec<u8>,
    /// Its password, and the other one.
    password: (Vec<u8>, Vec<u8>),
    host: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Param {
    /// A credential's name (from `SECRET_NAMES`, its case changed or not), else `name`.
    secret: Option<(u8, bool)>,
    name: Vec<u8>,
    value: Vec<u8>,
    /// A credential's other value.
    other_value: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct PathParts {
    segments: Vec<u8>,
    /// A segment of its own, when `segments` names one past the list.
    odd: String,
    trailing_slash: bool,
}

fn text(bytes: &[u8], alphabet: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

/// The URL with the first (`false`) or the second (`true`) set of secrets.
fn url(parts: &UrlParts, other: bool) -> String {
    let scheme = SCHEMES[usize::from(parts.scheme) % SCHEMES.len()];
    let scheme = if parts.upper_scheme {
        scheme.to_ascii_uppercase()
    } else {
        scheme.to_owned()
    };
    let userinfo = match &parts.password {
        Some((one, two)) => {
            let password = text(if other { two } else { one }, PASSWORD);
            format!("{}:{password}@", text(&parts.user, USER))
        }
        None if parts.user.is_empty() => String::new(),
        None => {
            let user = if other {
                &parts.other_user
            } else {
                &parts.user
            };
            let user = text(user, USER);
            format!("{}@", if user.is_empty() { "t" } else { &user })
        }
    };
    let host = if parts.ipv6 {
        format!("[{}]", text(&parts.host, IPV6))
    } else {
        let host = text(&parts.host, USER);
        if host.is_empty() {
            "h".to_owned()
        } else {
            host
        }
    };
    let port = parts.port.map(|p| format!(":{p}")).unwrap_or_default();
    let path = if parts.path.is_empty() {
        String::new()
    } else {
        format!("/{}", text(&parts.path, PATH))
    };
    let carried = parts.carried.as_ref().map(|c| {
        // In a query, `&` ends the parameter, so it cannot be part of the URL there.
        let strip = |alphabet: &[u8]| -> Vec<u8> {
            alphabet
                .iter()
                .copied()
                .filter(|&b| !(c.in_query && b == b'&'))
                .collect()
        };
        let password = if other { &c.password.1 } else { &c.password.0 };
        let host = text(&c.host, USER);
        format!(
            "{}://{}:{}@{}",
            SCHEMES[usize::from(c.scheme) % SCHEMES.len()],
            text(&c.user, &strip(USER)),
            text(password, &strip(PASSWORD)),
            if host.is_empty() { "h" } else { &host }
        )
    });
    let path = match (&carried, parts.carried.as_ref().map(|c| c.in_query)) {
        (Some(url), Some(false)) => format!("{path}/{url}"),
        _ => path,
    };
    let carried_param = match (carried, parts.carried.as_ref().map(|c| c.in_query)) {
        (Some(url), Some(true)) => Some(format!("src={url}")),
        _ => None,
    };
    let query: Vec<String> = parts
        .params
        .iter()
        .map(|param| match param.secret {
            Some((n, upper)) => {
                let name = SECRET_NAMES[usize::from(n) % SECRET_NAMES.len()];
                let name = if upper {
                    name.to_ascii_uppercase()
                } else {
                    name.to_owned()
                };
                let value = if other {
                    &param.other_value
                } else {
                    &param.value
                };
                format!("{name}={}", text(value, PARAM))
            }
            None => {
                let name = text(&param.name, PARAM);
                format!("{name}={}", text(&param.value, PARAM))
            }
        })
        .chain(carried_param)
        .collect();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let fragment = parts
        .fragment
        .as_ref()
        .map(|f| format!("#{}", text(f, PARAM)))
        .unwrap_or_default();
    format!("{scheme}://{userinfo}{host}{port}{path}{query}{fragment}")
}

/// The secrets of the URL that redact_in looks for everywhere in a message: its
/// password (or lone user token) and its secret parameters' values, as written and
/// percent-decoded, and the Basic authorization of its user and password.
fn secrets(parts: &UrlParts, other: bool) -> Vec<String> {
    let mut secrets = Vec::new();
    match &parts.password {
        Some((one, two)) => {
            let password = text(if other { two } else { one }, PASSWORD);
            let user = text(&parts.user, USER);
            let basic = format!("{}:{}", percent_decoded(&user), percent_decoded(&password));
            secrets.push(BASE64_STANDARD.encode(basic));
            secrets.push(password);
        }
        None if other => secrets.push(text(&parts.other_user, USER)),
        None => secrets.push(text(&parts.user, USER)),
    }
    for param in parts.params.iter().filter(|p| p.secret.is_some()) {
        let value = if other {
            &param.other_value
        } else {
            &param.value
        };
        secrets.push(text(value, PARAM));
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decoded(s)).collect();
    secrets.extend(decoded);
    secrets
}

/// `%XX` decoded, invalid UTF-8 replaced, as the daemon decodes secrets.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|&b| hex(b)),
            bytes.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the daemon may show of a source string.
fn shown(value: &str) -> String {
    match Source::parse(value, &[]) {
        Ok(source) => source.redacted(),
        Err(e) => e.to_string(),
    }
}

fn check_secrets(input: &Input) {
    let one = url(&input.url, false);
    let two = url(&input.url, true);
    assert_eq!(redact_url(&one), redact_url(&two), "{one} / {two}");
    assert_eq!(shown(&one), shown(&two), "{one} / {two}");
    // A message that shows the URL once, and no secret elsewhere (text around it that
    // happens to hold one of the two URLs holds a secret redact_in cannot know of).
    let message = |url: &str| format!("{}{url}{}", input.prefix, input.suffix);
    let once = |url: &str| {
        let indices: Vec<usize> = message(url).match_indices(url).map(|(i, _)| i).collect();
        indices == [input.prefix.len()]
    };
    let around = format!("{}\n{}", input.prefix, input.suffix);
    // redact_in replaces a URL's secrets wherever they appear: where one also appears
    // in what is not secret (a parameter's name, the text around, across the URL's
    // edge), the two messages differ there, and rightly.
    let shown = message(&redact_url(&one));
    let collides = [false, true]
        .iter()
        .flat_map(|&other| secrets(&input.url, other))
        .filter(|secret| secret.len() >= 4)
        .any(|secret| shown.contains(&secret));
    if once(&one) && once(&two) && !around.contains(&one) && !around.contains(&two) && !collides {
        assert_eq!(
            redact_in(&message(&one), &one),
            redact_in(&message(&two), &two),
            "{one} / {two}"
        );
    }
    let redacted = redact_url(&one);
    assert_eq!(redact_url(&redacted), redacted);
}

fn check_any(raw: &str) {
    let redacted = redact_url(raw);
    assert_eq!(redact_url(&redacted), redacted, "{raw:?}");
    let _ = redact_in(&format!("{raw}: failed"), raw);
    let scratch = scratch();
    match Source::parse(raw, std::slice::from_ref(&scratch.allowed)) {
        Ok(Source::Url(url)) => {
            assert_eq!(url, raw.trim());
            let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            assert!(
                scheme.is_some_and(|s| SCHEMES.contains(&s.as_str())),
                "{url:?}"
            );
            let source = Source::Url(url.clone());
            assert_ne!(source.protocol_whitelist(), "file", "{url:?}");
            assert!(!source.protocol_whitelist().contains("file"), "{url:?}");
            assert_eq!(source.redacted(), redact_url(&url));
        }
        Ok(Source::File(path)) => assert!(allowed_file(scratch, &path), "{raw:?} → {path:?}"),
        Err(_) => {}
    }
}

fn check_path(parts: &PathParts) {
    let scratch = scratch();
    let mut path = scratch.root.display().to_string();
    for &n in &parts.segments {
        path.push('/');
        path.push_str(SEGMENTS.get(usize::from(n)).copied().unwrap_or(&parts.odd));
    }
    if parts.trailing_slash {
        path.push('/');
    }
    // The same path in each spelling (a scheme's case does not matter): one answer.
    let answers: Vec<Option<PathBuf>> = [
        path.clone(),
        format!("file://{path}"),
        format!("file:{path}"),
        format!("FILE://{path}"),
    ]
    .iter()
    .map(
        |value| match Source::parse(value, std::slice::from_ref(&scratch.allowed)) {
            Ok(Source::File(resolved)) => {
                assert!(allowed_file(scratch, &resolved), "{value:?} → {resolved:?}");
                assert_eq!(resolved.canonicalize().ok().as_ref(), Some(&resolved));
                Some(resolved)
            }
            Ok(Source::Url(url)) => panic!("{value:?} is a local path, not the URL {url:?}"),
            Err(_) => None,
        },
    )
    .collect();
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "{path:?}: {answers:?}"
    );
}

fuzz_target!(|input: Input| {
    check_secrets(&input);
    check_any(&input.raw);
    check_path(&input.path);
});
