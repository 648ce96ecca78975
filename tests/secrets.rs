//! Credentials in source URLs never leave the daemon: cameras with a password (a dead
//! port, a real RTSP server that refuses it) and a token in a query string run until
//! they have failed and retried, and then every surface is read (status, cameras/,
//! /metrics, the events/ and ws/ streams, the error details of decode/ and
//! video-info-url/, the status page, stdout and the logs in both formats, at debug and
//! trace level, where libav writes its requests): the secrets appear nowhere, their
//! redacted forms where the source is shown. Only the state file keeps them, private.

mod common;

use std::io::Read;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::http_files::FileServer;
use common::rtsp::{start_camera, RtspServer, FRAMES_TIMEOUT, WORKER_EXIT_TIMEOUT};
use common::{free_port, Daemon, BASE};

const PASSWORD: &str = "S3cretPass";
const TOKEN: &str = "S3cretTok";
/// `user:S3cretPass` as an RTSP or HTTP client sends it (`Authorization: Basic`).
const BASIC: &str = "dXNlcjpTM2NyZXRQYXNz";
const SECRETS: [&str; 3] = [PASSWORD, TOKEN, BASIC];

/// How long a stream is read: its replay comes at once, the failing cameras' events
/// keep coming.
const STREAM_READ: Duration = Duration::from_secs(1);

/// The cameras: a dead port, a server that refuses the password, a playlist behind a
/// token that is not there.
fn cameras(rtsp: &RtspServer, http: &FileServer) -> [(&'static str, String); 3] {
    [
        (
            "dead",
            format!("rtsp://user:{PASSWORD}@127.0.0.1:{}/x", free_port()),
        ),
        ("denied", rtsp.url_with_credentials("user", PASSWORD)),
        ("token", http.url(&format!("x.m3u8?token={TOKEN}"))),
    ]
}

/// What arrives on `chunks` within [`STREAM_READ`].
fn read_for_a_while(chunks: mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + STREAM_READ;
    let mut text = String::new();
    while let Ok(chunk) = chunks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        text.push_str(&chunk);
        text.push('\n');
    }
    text
}

/// The `events/` stream from its start (what it replays, then what comes).
fn sse_replay(daemon: &Daemon) -> String {
    let answer = ureq::get(&daemon.url("/events/"))
        .set("Last-Event-ID", "0")
        .call()
        .expect("events/ answers");
    let (sender, chunks) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = answer.into_reader();
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buffer) {
            if sender
                .send(String::from_utf8_lossy(&buffer[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    read_for_a_while(chunks)
}

/// The `ws/` stream's messages from its start.
fn ws_replay(daemon: &Daemon) -> String {
    let url = format!("ws://127.0.0.1:{}{BASE}/ws/?last_event_id=0", daemon.port);
    let (mut socket, _) = tungstenite::connect(url).expect("ws/ accepts the handshake");
    let (sender, messages) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(message) = socket.read() {
            if let tungstenite::Message::Text(text) = message {
                if sender.send(text.to_string()).is_err() {
                    return;
                }
            }
        }
    });
    read_for_a_while(messages)
}

/// The detail of every refusal that repeats a URL given with a secret.
fn error_details(daemon: &Daemon, rtsp: &RtspServer) -> Vec<String> {
    let mut details = Vec::new();
    for url in [
        format!("rtsp:/user:{PASSWORD}@127.0.0.1/x"),
        format!("rtsp:user:{PASSWORD}@127.0.0.1/x?token={TOKEN}"),
        format!("rtsp://user:{PASSWORD}@127.0.0.1/a\u{7}b"),
        format!("gopher://user:{PASSWORD}@127.0.0.1/x"),
    ] {
        let reply = daemon.post_form("/decode/", &[("camera_id", "bad"), ("url", &url)]);
        assert_eq!(reply.status, 400, "{url}: {}", reply.detail());
        details.push(reply.detail());
        let reply = daemon.post_form("/video-info-url/", &[("url", &url)]);
        assert_eq!(reply.status, 400, "{url}: {}", reply.detail());
        details.push(reply.detail());
    }
    // Sources that parse, then fail to open: refused, denied, not found.
    for url in [
        format!("rtsp://user:{PASSWORD}@127.0.0.1:{}/x", free_port()),
        rtsp.url_with_credentials("user", PASSWORD),
    ] {
        let reply = daemon.post_form("/video-info-url/", &[("url", &url)]);
        assert!(
            reply.status == 400 || reply.status == 504,
            "{url}: {}",
            reply.detail()
        );
        assert!(reply.detail().contains("user:***@"), "{}", reply.detail());
        details.push(reply.detail());
    }
    details
}

/// Runs the cameras on a daemon logging in `format` at `level`, reads every surface,
/// and returns them by name.
fn surfaces(
    format: &str,
    level: &str,
    rtsp: &RtspServer,
    http: &FileServer,
) -> Vec<(String, String)> {
    let daemon = Daemon::start_with(&[
        ("LOG_FORMAT", format),
        ("RUST_LOG", level),
        ("OPEN_TIMEOUT_SECONDS", "2"),
        ("RECONNECT_INITIAL_SECONDS", "0.2"),
        ("RECONNECT_MAX_SECONDS", "0.5"),
    ]);
    let cameras = cameras(rtsp, http);
    for (camera, url) in &cameras {
        start_camera(&daemon, camera, url);
    }
    let mut found = Vec::new();
    for (camera, _) in &cameras {
        let status = daemon.wait_status(camera, FRAMES_TIMEOUT, |s| {
            s["restart_count"].as_u64() >= Some(1) && s["last_error"].is_string()
        });
        found.push((format!("{format}: status of {camera}"), status.to_string()));
    }
    let saved = std::fs::read_to_string(&daemon.state_file).unwrap();
    assert!(
        saved.contains(PASSWORD) && saved.contains(TOKEN),
        "the state file keeps the sources as given, to resume them: {saved}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&daemon.state_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the state file is private");
    }
    let get = |path: &str| String::from_utf8_lossy(&daemon.get(path).body).into_owned();
    found.push((format!("{format}: cameras/"), get("/cameras/")));
    found.push((format!("{format}: /metrics"), get("/metrics")));
    let page = daemon.get_with("/", &[("Accept", "text/html")]);
    found.push((
        format!("{format}: status page"),
        String::from_utf8_lossy(&page.body).into_owned(),
    ));
    found.push((format!("{format}: events/"), sse_replay(&daemon)));
    found.push((format!("{format}: ws/"), ws_replay(&daemon)));
    for detail in error_details(&daemon, rtsp) {
        found.push((format!("{format}: an error detail"), detail));
    }
    for (camera, _) in &cameras {
        let reply = daemon.post_form("/decode/stop/", &[("camera_id", camera)]);
        assert_eq!(reply.json()["message"], "Decoding stopped", "{camera}");
    }
    // Each camera thread's last line, in either format.
    let deadline = Instant::now() + WORKER_EXIT_TIMEOUT;
    while daemon.log_text().matches("stopped after").count() < cameras.len() {
        assert!(Instant::now() < deadline, "{}", daemon.log_text());
        thread::sleep(Duration::from_millis(50));
    }
    found.push((format!("{format}: stderr"), daemon.log_text()));
    found.push((format!("{format}: stdout"), daemon.stdout_text()));
    found
}

#[test]
fn secrets_never_leave_the_daemon_in_answers_events_or_logs() {
    // It knows another password: every attempt with ours is refused (401).
    let rtsp = RtspServer::start(free_port(), &["--user", "user", "--password", "Other1"]);
    let empty = tempfile::tempdir().unwrap();
    let http = FileServer::start(empty.path());
    let (text, json) = thread::scope(|scope| {
        let text = scope.spawn(|| surfaces("text", "debug", &rtsp, &http));
        let json = scope.spawn(|| surfaces("json", "info,libav=trace", &rtsp, &http));
        (text.join().unwrap(), json.join().unwrap())
    });
    for (surface, content) in text.iter().chain(&json) {
        for secret in SECRETS {
            assert!(
                !content.contains(secret),
                "{secret} in {surface}:\n{content}"
            );
        }
    }
    // Where the sources are shown, they are shown redacted.
    for (surface, content) in text.iter().chain(&json) {
        let wanted: &[&str] = if surface.ends_with("status of token") {
            &["token=***"]
        } else if surface.contains("status of") {
            &["user:***@"]
        } else if ["cameras/", "events/", "ws/", "stderr"]
            .iter()
            .any(|s| surface.ends_with(s))
        {
            &["user:***@", "token=***"]
        } else {
            &[]
        };
        for redacted in wanted {
            assert!(
                content.contains(redacted),
                "{redacted} not in {surface}:\n{content}"
            );
        }
    }
    let logs = |found: &[(String, String)]| {
        found
            .iter()
            .find(|(surface, _)| surface.ends_with("stderr"))
            .map(|(_, log)| log.clone())
            .unwrap()
    };
    // The levels where libav writes what it sends were really on: its HTTP request
    // line, token redacted.
    assert!(
        logs(&text).contains("request: GET /x.m3u8?token=*** HTTP/1.1"),
        "{}",
        logs(&text)
    );
    assert!(
        logs(&json).contains("\"level\":\"TRACE\""),
        "{}",
        logs(&json)
    );
}
