//! Limits on what callers can make the daemon hold, against the real binary: running
//! cameras (`MAX_CAMERAS`), request bodies in every encoding, idle and slow
//! connections, the rate limit of control routes, CORS for browsers, and HTTPS.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{binary, free_port, multipart, Daemon, Reply, BASE};
use serde_json::json;

/// A live source that never answers: its camera stays `running`, reconnecting.
fn dead_rtsp() -> String {
    format!("rtsp://127.0.0.1:{}/x", free_port())
}

fn assert_error(reply: &Reply, status: u16, what: &str) -> String {
    let body = String::from_utf8_lossy(&reply.body);
    assert_eq!(reply.status, status, "{what}: {body}");
    let detail = reply.detail();
    assert!(!detail.is_empty(), "{what}: no detail in {body}");
    detail
}

fn start(daemon: &Daemon, camera: &str) -> Reply {
    daemon.post_form("/decode/", &[("camera_id", camera), ("url", &dead_rtsp())])
}

#[test]
fn max_cameras_counts_running_cameras_from_the_api_the_config_file_and_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cameras.toml");
    let cameras: String = ["f1", "f2", "f3"]
        .iter()
        .map(|id| format!("[[camera]]\nid = \"{id}\"\nurl = \"{}\"\n\n", dead_rtsp()))
        .collect();
    std::fs::write(&config, cameras).unwrap();
    let mut daemon = Daemon::start_with(&[
        ("MAX_CAMERAS", "2"),
        ("CONFIG_FILE", config.to_str().unwrap()),
    ]);

    // The config file's third camera is past the limit: skipped, with an ERROR line.
    assert_eq!(daemon.status("f1")["status"], "running");
    assert_eq!(daemon.status("f2")["status"], "running");
    assert_eq!(daemon.status("f3")["status"], "not_started");
    let log = daemon.log_text();
    let skipped = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("f3"))
        .unwrap_or_else(|| panic!("no ERROR line for f3:\n{log}"));
    assert!(skipped.contains("MAX_CAMERAS is 2"), "{skipped}");

    let detail = assert_error(&start(&daemon, "api1"), 429, "a third camera");
    assert!(
        detail.contains("2 are running") && detail.contains("MAX_CAMERAS is 2"),
        "{detail}"
    );
    assert!(start(&daemon, "api1").header("retry-after").is_none());
    assert_eq!(daemon.status("api1")["status"], "not_started");
    // A running camera's own start adds nothing: still answered, at the limit.
    let again = start(&daemon, "f1");
    again.assert_ok();
    assert_eq!(again.json()["status"], "already_running");

    // A stopped camera is still listed but holds no thread: it does not count.
    daemon
        .post_form("/decode/stop/", &[("camera_id", "f2")])
        .assert_ok();
    start(&daemon, "api1").assert_ok();
    assert_eq!(daemon.get("/cameras/").json()["count"], 3);
    // Its new session would be a third running camera.
    assert_error(&start(&daemon, "f2"), 429, "a stopped camera's new session");

    // At the next boot the config file's cameras come first; the saved api1 is past
    // the limit and skipped.
    daemon.kill_and_restart();
    assert_eq!(daemon.status("f1")["status"], "running");
    assert_eq!(daemon.status("f2")["status"], "running");
    assert_eq!(daemon.status("api1")["status"], "not_started");
    let log = daemon.log_text();
    let skipped = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("api1"))
        .unwrap_or_else(|| panic!("no ERROR line for api1:\n{log}"));
    assert!(skipped.contains("MAX_CAMERAS is 2"), "{skipped}");
}

/// Posts `body` with its `Content-Length`, or chunked without one (what a streaming
/// client sends, which declares nothing).
fn post(daemon: &Daemon, path: &str, content_type: &str, body: &[u8], chunked: bool) -> Reply {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let request = agent
        .post(&daemon.url(path))
        .set("Content-Type", content_type);
    let result = if chunked {
        request.send(std::io::Cursor::new(body.to_vec()))
    } else {
        request.send_bytes(body)
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::from(r),
        Err(e) => panic!("POST {path}: {e}"),
    }
}

/// A multipart body whose first part's headers never end.
fn endless_part_header(size: usize) -> (String, Vec<u8>) {
    let boundary = "limits-boundary";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\nX-Filler: ")
            .into_bytes();
    body.resize(size, b'a');
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn every_body_reading_route_is_bounded_in_every_encoding() {
    let daemon = Daemon::start_with(&[("MAX_UPLOAD_MB", "1")]);
    let big = "a".repeat(2 * 1024 * 1024);
    let mib_and_half = vec![b'v'; 1536 * 1024];
    let routes = [
        "/decode/",
        "/decode/stop/",
        "/video-info/",
        "/video-info-url/",
    ];
    for path in routes {
        let urlencoded = format!("camera_id=c&url=x&filler={big}");
        let json = json!({"camera_id": "c", "url": "x", "filler": big}).to_string();
        let (form_type, form) = multipart(&[("camera_id", "c"), ("filler", &big)], &[]);
        for chunked in [false, true] {
            let how = if chunked { "chunked" } else { "declared" };
            for (kind, content_type, body) in [
                (
                    "urlencoded",
                    "application/x-www-form-urlencoded",
                    urlencoded.as_bytes(),
                ),
                ("json", "application/json", json.as_bytes()),
                ("multipart", form_type.as_str(), form.as_slice()),
            ] {
                let what = format!("{path} {kind} {how}");
                let detail = assert_error(
                    &post(&daemon, path, content_type, body, chunked),
                    413,
                    &what,
                );
                assert!(detail.contains("1 MiB"), "{what}: {detail}");
            }
        }
        // A file part where none is stored, or in a route without uploads, counts too.
        let (files_type, files) = multipart(&[], &[("other", "a.mp4", big.as_bytes())]);
        let detail = assert_error(
            &post(&daemon, path, &files_type, &files, true),
            413,
            &format!("{path} unused file part"),
        );
        assert!(
            detail.contains("Request body is larger"),
            "{path}: {detail}"
        );
    }

    for (path, field) in [("/decode/", "file"), ("/video-info/", "video")] {
        // Within the body's limit (the upload's plus 1 MiB), past the upload's: counted
        // again as it streams.
        for chunked in [false, true] {
            let (content_type, body) =
                multipart(&[("camera_id", "up")], &[(field, "v.mp4", &mib_and_half)]);
            let detail = assert_error(
                &post(&daemon, path, &content_type, &body, chunked),
                413,
                &format!("{path} upload over MAX_UPLOAD_MB"),
            );
            assert!(detail.contains("MAX_UPLOAD_MB"), "{path}: {detail}");
        }
        // A part header that never ends is not buffered up to the body's limit.
        let (content_type, body) = endless_part_header(1536 * 1024);
        let detail = assert_error(
            &post(&daemon, path, &content_type, &body, true),
            413,
            &format!("{path} endless part header"),
        );
        assert!(detail.contains("part headers"), "{path}: {detail}");
        // Text fields are bounded together, however many.
        let fields: Vec<(String, String)> = (0..3)
            .map(|n| (format!("f{n}"), "t".repeat(400 * 1024)))
            .collect();
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (content_type, body) = multipart(&fields, &[]);
        let detail = assert_error(
            &post(&daemon, path, &content_type, &body, false),
            413,
            &format!("{path} text fields"),
        );
        assert!(detail.contains("text fields"), "{path}: {detail}");
    }

    // Just under the limits everything is read as before.
    let filler = "a".repeat(900 * 1024);
    for reply in daemon.post_all_encodings(
        "/decode/stop/",
        &[("camera_id", "under"), ("filler", &filler)],
    ) {
        reply.assert_ok();
    }
    assert!(
        std::fs::read_dir(&daemon.uploads).unwrap().next().is_none(),
        "an upload was left behind"
    );
}

/// One request with its own connection, as a new client makes it.
fn raw_get(port: u16, path: &str) -> (Duration, String) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    (started.elapsed(), answer)
}

/// Whether the server has closed `stream`, after answering 408 or not.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(0) => true,
        Ok(n) => {
            let text = String::from_utf8_lossy(&buffer[..n]);
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn idle_and_slow_header_connections_neither_delay_a_status_request_nor_stay() {
    let daemon = Daemon::start();
    let port = daemon.port;
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let header = format!("GET {BASE}/health/ HTTP/1.1\r\nX-Slow: {}", "a".repeat(64));
    let status_path = format!("{BASE}/decode/status/?camera_id=probe");
    let mut latencies = Vec::new();
    // Every half second each slow client sends one more byte of its head; in between
    // a normal client asks for a status.
    for (tick, byte) in header.bytes().enumerate().take(6) {
        for stream in &mut slow {
            stream.write_all(&[byte]).unwrap();
        }
        let deadline = opened + Duration::from_millis(500 * (tick as u64 + 1));
        while Instant::now() + Duration::from_millis(120) < deadline {
            let (took, answer) = raw_get(port, &status_path);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            latencies.push(took);
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    eprintln!(
        "status with 200 idle and 50 slow-header connections: {} requests, median {median:?}, max {max:?}",
        latencies.len()
    );
    assert!(latencies.len() >= 10, "{latencies:?}");
    assert!(max < Duration::from_millis(100), "{latencies:?}");

    // The request head's deadline closes both kinds, with 408.
    let head_timeout = Duration::from_secs(5);
    std::thread::sleep(
        (opened + head_timeout + Duration::from_millis(800))
            .saturating_duration_since(Instant::now()),
    );
    let slow_closed = slow.iter_mut().map(closed_by_server).filter(|c| *c).count();
    let idle_closed = idle.iter_mut().map(closed_by_server).filter(|c| *c).count();
    assert_eq!((slow_closed, idle_closed), (50, 200));
    let (took, answer) = raw_get(port, &status_path);
    assert!(answer.starts_with("HTTP/1.1 200") && took < Duration::from_millis(100));
}

fn send(
    daemon: &Daemon,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Reply {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut request = agent.request(method, &daemon.url(path));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = if form.is_empty() {
        request.call()
    } else {
        request.send_form(form)
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::from(r),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

#[test]
fn control_routes_are_rate_limited_per_client_and_reads_never_are() {
    let daemon = Daemon::start_with(&[("RATE_LIMIT_PER_MINUTE", "3")]);
    let stop = |headers: &[(&str, &str)]| {
        send(
            &daemon,
            "POST",
            "/decode/stop/",
            headers,
            &[("camera_id", "x")],
        )
    };
    let key_a = [("X-API-Key", "key-a")];
    for _ in 0..3 {
        stop(&key_a).assert_ok();
    }
    let refused = stop(&key_a);
    let detail = assert_error(&refused, 429, "fourth stop");
    assert!(detail.contains("RATE_LIMIT_PER_MINUTE"), "{detail}");
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // decode/ is control too, and counted for the same client, before it is read.
    let decode = send(&daemon, "POST", "/decode/", &key_a, &[("camera_id", "x")]);
    assert_error(&decode, 429, "decode/ of the same client");
    // The same key as a bearer token is the same client; another key is another.
    assert_error(
        &stop(&[("Authorization", "Bearer key-a")]),
        429,
        "bearer key-a",
    );
    stop(&[("Authorization", "Bearer key-b")]).assert_ok();
    // Without a key the address counts, apart from the keys.
    for _ in 0..3 {
        stop(&[]).assert_ok();
    }
    assert_error(&stop(&[]), 429, "fourth stop of the address");

    // Reads are never limited, POST video-info-url/ included.
    for _ in 0..50 {
        send(&daemon, "GET", "/decode/status/?camera_id=x", &key_a, &[]).assert_ok();
        daemon.status("x");
    }
    for _ in 0..5 {
        let info = send(
            &daemon,
            "POST",
            "/video-info-url/",
            &key_a,
            &[("nothing", "1")],
        );
        assert_error(&info, 422, "video-info-url/ without url");
    }

    // Without CORS_ALLOWED_ORIGINS there are no CORS headers, and no preflight.
    let origin = [("Origin", "https://ui.example.com")];
    let read = send(&daemon, "GET", "/health/", &origin, &[]);
    assert!(
        read.header("access-control-allow-origin").is_none(),
        "{:?}",
        read.headers
    );
    let preflight = send(
        &daemon,
        "OPTIONS",
        "/decode/",
        &[
            ("Origin", "https://ui.example.com"),
            ("Access-Control-Request-Method", "POST"),
        ],
        &[],
    );
    assert_error(&preflight, 405, "preflight without CORS");
}

fn preflight(daemon: &Daemon, path: &str, origin: &str, method: &str, headers: &str) -> Reply {
    send(
        daemon,
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", headers),
        ],
        &[],
    )
}

#[test]
fn cors_headers_go_to_the_allowed_origins_only_also_on_refusals() {
    let daemon = Daemon::start_with(&[
        (
            "CORS_ALLOWED_ORIGINS",
            "https://ui.example.com, http://localhost:3000",
        ),
        ("RATE_LIMIT_PER_MINUTE", "1"),
    ]);
    let allowed = "https://ui.example.com";
    let status = send(
        &daemon,
        "GET",
        "/decode/status/?camera_id=c",
        &[("Origin", allowed)],
        &[],
    );
    status.assert_ok();
    assert_eq!(status.header("access-control-allow-origin"), Some(allowed));
    assert!(status.header("vary").unwrap_or_default().contains("Origin"));
    let exposed = status
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("retry-after") && exposed.contains("x-frame-seq"),
        "{exposed}"
    );
    let other = send(
        &daemon,
        "GET",
        "/decode/status/?camera_id=c",
        &[("Origin", "http://localhost:3000")],
        &[],
    );
    assert_eq!(
        other.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );

    // A refused origin is answered as before, without CORS headers: its page cannot
    // read the answer.
    let refused = send(
        &daemon,
        "GET",
        "/decode/status/?camera_id=c",
        &[("Origin", "https://evil.example")],
        &[],
    );
    refused.assert_ok();
    assert!(refused.header("access-control-allow-origin").is_none());

    let ok = preflight(
        &daemon,
        "/decode/",
        allowed,
        "POST",
        "authorization, x-api-key, content-type",
    );
    ok.assert_ok();
    assert_eq!(ok.header("access-control-allow-origin"), Some(allowed));
    let methods = ok
        .header("access-control-allow-methods")
        .unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = ok
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for header in ["authorization", "x-api-key", "content-type"] {
        assert!(headers.contains(header), "{headers}");
    }
    assert_eq!(ok.header("access-control-max-age"), Some("3600"));
    preflight(&daemon, "/decode/status/", allowed, "GET", "x-api-key").assert_ok();
    for (origin, method, headers) in [
        ("https://evil.example", "POST", "content-type"),
        (allowed, "DELETE", "content-type"),
        (allowed, "POST", "x-unknown"),
    ] {
        let reply = preflight(&daemon, "/decode/", origin, method, headers);
        assert_eq!(reply.status, 400, "{origin} {method} {headers}");
        assert!(reply.header("access-control-allow-origin").is_none());
    }

    // Refusals carry the headers too: a browser page can read why.
    let from_ui = [("Origin", allowed)];
    send(
        &daemon,
        "POST",
        "/decode/stop/",
        &from_ui,
        &[("camera_id", "c")],
    )
    .assert_ok();
    let limited = send(
        &daemon,
        "POST",
        "/decode/stop/",
        &from_ui,
        &[("camera_id", "c")],
    );
    assert_error(&limited, 429, "second stop");
    assert_eq!(limited.header("access-control-allow-origin"), Some(allowed));
    let big = "a".repeat(2 * 1024 * 1024);
    let agent = ureq::AgentBuilder::new().build();
    let too_large = agent
        .post(&daemon.url("/video-info-url/"))
        .set("Origin", allowed)
        .send_form(&[("url", &big)]);
    let too_large = match too_large {
        Err(ureq::Error::Status(_, r)) => Reply::from(r),
        other => panic!("{other:?}"),
    };
    assert_error(&too_large, 413, "large body");
    assert_eq!(
        too_large.header("access-control-allow-origin"),
        Some(allowed)
    );
}

#[test]
fn a_wildcard_origin_may_read_but_not_control() {
    let daemon = Daemon::start_with(&[("CORS_ALLOWED_ORIGINS", "*")]);
    let origin = "https://anyone.example";
    let read = send(&daemon, "GET", "/cameras/", &[("Origin", origin)], &[]);
    read.assert_ok();
    assert_eq!(read.header("access-control-allow-origin"), Some("*"));
    preflight(&daemon, "/cameras/", origin, "GET", "authorization").assert_ok();
    let control = preflight(&daemon, "/decode/", origin, "POST", "content-type");
    assert_eq!(control.status, 400);
}

/// A self-signed certificate for 127.0.0.1 and its key, made with the `openssl` CLI.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // A server's own certificate, not a CA's, as a client's verifier requires.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed for the tests (scripts/deps.sh test)");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

fn https_agent(trusted: &Path) -> ureq::Agent {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(trusted).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout(Duration::from_secs(10))
        .build()
}

#[test]
fn https_serves_with_the_configured_certificate_and_plain_http_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    let daemon = Daemon::start_with(&[
        ("TLS_CERT_FILE", cert.to_str().unwrap()),
        ("TLS_KEY_FILE", key.to_str().unwrap()),
    ]);
    let agent = https_agent(&cert);
    let url = |path: &str| format!("https://127.0.0.1:{}{BASE}{path}", daemon.port);
    let health: serde_json::Value = agent
        .get(&url("/health/"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["status"], "healthy");
    let started = agent
        .post(&url("/decode/"))
        .send_form(&[("camera_id", "tls"), ("url", &dead_rtsp())])
        .unwrap();
    assert_eq!(started.status(), 200);
    // The event stream keeps its connection's socket under TLS too.
    let events = agent.get(&url("/events/")).call().unwrap();
    assert_eq!(events.content_type(), "text/event-stream");
    drop(events);

    // Plain HTTP to the TLS port gets no HTTP answer: the connection is closed (as soon
    // as the first bytes are seen not to be TLS, so a later write may find it gone).
    let mut plain = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!("GET {BASE}/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let closed = |e: &std::io::Error| {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
        matches!(e.kind(), BrokenPipe | ConnectionReset)
    };
    if let Err(e) = plain.write_all(request.as_bytes()) {
        assert!(closed(&e), "{e}");
    }
    let mut answer = Vec::new();
    if let Err(e) = plain.read_to_end(&mut answer) {
        assert!(closed(&e), "{e}");
    }
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // A client that does not trust the certificate refuses it.
    let (other_cert, _) = self_signed(dir.path(), "other");
    assert!(https_agent(&other_cert)
        .get(&url("/health/"))
        .call()
        .is_err());
    // And the daemon goes on serving HTTPS.
    assert_eq!(agent.get(&url("/health/")).call().unwrap().status(), 200);
}

/// Starts the binary with `env`; it must exit at once with code 2 and one line of
/// stderr naming `variable`.
fn assert_start_refused(env: &[(&str, &Path)], variable: &str) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", free_port().to_string())
        .env("OUTPUT_FOLDER", dir.path().join("frames"))
        .env("UPLOAD_FOLDER", dir.path().join("videos"))
        .env("STATE_FILE", dir.path().join("state.json"))
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{env:?}: {stderr}");
    assert!(lines[0].contains(variable), "{env:?}: {stderr}");
}

#[test]
fn unusable_tls_files_are_a_one_line_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "a");
    let (_, other_key) = self_signed(dir.path(), "b");
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let cert_env = "TLS_CERT_FILE";
    let key_env = "TLS_KEY_FILE";
    assert_start_refused(&[(cert_env, &cert)], key_env);
    assert_start_refused(&[(key_env, &key)], cert_env);
    assert_start_refused(&[(cert_env, &missing), (key_env, &key)], cert_env);
    assert_start_refused(&[(cert_env, &garbage), (key_env, &key)], cert_env);
    assert_start_refused(&[(cert_env, &cert), (key_env, &garbage)], key_env);
    assert_start_refused(&[(cert_env, &cert), (key_env, &other_key)], key_env);
}

#[test]
fn an_upload_the_client_abandons_leaves_no_file() {
    let daemon = Daemon::start();
    for (path, field) in [("/decode/", "file"), ("/video-info/", "video")] {
        let head = format!(
            "--B\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.mp4\"\r\n\r\n"
        );
        let mut stream = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
        write!(
            stream,
            "POST {BASE}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 10000000\r\n\r\n{head}"
        )
        .unwrap();
        stream.write_all(&[7u8; 256 * 1024]).unwrap();
        let stored = Instant::now();
        while std::fs::read_dir(&daemon.uploads).unwrap().next().is_none() {
            assert!(
                stored.elapsed() < Duration::from_secs(5),
                "{path}: nothing stored"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stream);
        let gone = Instant::now();
        while let Some(entry) = std::fs::read_dir(&daemon.uploads).unwrap().next() {
            assert!(
                gone.elapsed() < Duration::from_secs(5),
                "{path}: {:?} was left behind",
                entry.unwrap().path()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    daemon.get("/health/").assert_ok();
}
