//! The layout rules of docs/architecture.md, checked on the source: libav only under
//! `media/`, actix only in the HTTP layer and `main.rs`, the Prometheus client only in
//! `metrics/`, the OpenAPI description (utoipa) and the HTTP client (awc) only in the
//! HTTP layer, token and key verification only in `auth/`, `unsafe` only where hardware
//! devices, the allocator, libav's log callback and libav's limits are handled, each
//! block with a `// SAFETY:` comment.

use std::fs;
use std::path::{Path, PathBuf};

/// Files where `unsafe` is allowed: hardware device contexts, the allocator's trim,
/// libav's log callback (a C callback with a va_list, reading the logging context's
/// class and a codec context's `opaque`), and the limits libav is held to that
/// ffmpeg-next has no safe call for (decoder options while reading stream information,
/// a stream's stated frame size, the largest allocation): without them a header
/// claiming a huge frame costs gigabytes before any check can refuse it.
const UNSAFE_FILES: [&str; 4] = [
    "src/media/hw/device.rs",
    "src/memory.rs",
    "src/media/log_bridge.rs",
    "src/media/libav_limits.rs",
];

/// How far above an `unsafe` its `// SAFETY:` comment may start (attributes and a
/// comment of several lines sit between).
const SAFETY_COMMENT_REACH: usize = 6;

struct SourceFile {
    /// Relative to the crate root, with `/`.
    path: String,
    text: String,
}

fn sources() -> Vec<SourceFile> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<SourceFile>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(SourceFile {
                    path: path
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                    text: fs::read_to_string(&path).unwrap(),
                });
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), root, &mut files);
    assert!(files.len() > 20, "the source tree was not found");
    files
}

/// Lines of code that mention `word`, ignoring comments.
fn code_lines_with<'a>(
    file: &'a SourceFile,
    word: &'a str,
) -> impl Iterator<Item = (usize, &'a str)> {
    file.text.lines().enumerate().filter(move |(_, line)| {
        let code = line.split("//").next().unwrap_or_default();
        code.split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|token| token == word)
    })
}

fn offenders(word: &str, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    sources()
        .iter()
        .filter(|file| !allowed(&file.path))
        .flat_map(|file| {
            code_lines_with(file, word)
                .map(|(n, line)| format!("{}:{}: {}", file.path, n + 1, line.trim()))
        })
        .collect()
}

#[test]
fn libav_is_used_only_under_media() {
    let found = offenders("ffmpeg_next", |path| path.starts_with("src/media/"));
    assert!(
        found.is_empty(),
        "ffmpeg_next outside src/media/:\n{}",
        found.join("\n")
    );
}

#[test]
fn actix_is_used_only_by_the_http_layer_and_main() {
    // The server's own crates too: CORS, TLS and the rate limiter are HTTP concerns.
    for crate_name in [
        "actix_web",
        "actix_multipart",
        "actix_cors",
        "actix_tls",
        "rustls",
        "governor",
    ] {
        let found = offenders(crate_name, |path| {
            path.starts_with("src/http/") || path == "src/main.rs"
        });
        assert!(
            found.is_empty(),
            "{crate_name} outside src/http/:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_api_description_is_only_in_the_http_layer() {
    let found = offenders("utoipa", |path| path.starts_with("src/http/"));
    assert!(
        found.is_empty(),
        "utoipa outside src/http/:\n{}",
        found.join("\n")
    );
}

#[test]
fn credentials_are_verified_only_in_auth() {
    for crate_name in ["jsonwebtoken", "subtle"] {
        let found = offenders(crate_name, |path| path.starts_with("src/auth/"));
        assert!(
            found.is_empty(),
            "{crate_name} outside src/auth/:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_http_client_is_only_in_the_http_layer() {
    let found = offenders("awc", |path| path.starts_with("src/http/"));
    assert!(
        found.is_empty(),
        "awc outside src/http/:\n{}",
        found.join("\n")
    );
}

#[test]
fn prometheus_is_used_only_by_the_metrics() {
    let found = offenders("prometheus_client", |path| path.starts_with("src/metrics/"));
    assert!(
        found.is_empty(),
        "prometheus_client outside src/metrics/:\n{}",
        found.join("\n")
    );
}

#[test]
fn unsafe_is_only_where_devices_the_allocator_and_libav_logs_are_handled_and_always_explained() {
    let found = offenders("unsafe", |path| UNSAFE_FILES.contains(&path));
    assert!(
        found.is_empty(),
        "unsafe outside {UNSAFE_FILES:?}:\n{}",
        found.join("\n")
    );
    let mut unexplained = Vec::new();
    for file in sources()
        .iter()
        .filter(|f| UNSAFE_FILES.contains(&f.path.as_str()))
    {
        let lines: Vec<&str> = file.text.lines().collect();
        for (n, line) in code_lines_with(file, "unsafe") {
            let from = n.saturating_sub(SAFETY_COMMENT_REACH);
            if !lines[from..=n].iter().any(|l| l.contains("SAFETY:")) {
                unexplained.push(format!("{}:{}: {}", file.path, n + 1, line.trim()));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "unsafe without a // SAFETY: comment:\n{}",
        unexplained.join("\n")
    );
}
