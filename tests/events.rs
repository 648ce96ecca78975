//! The live event streams, `events/` (Server-Sent Events) and `ws/` (WebSocket), on
//! the real binary: a camera through a real RTSP server's outage as its clients see
//! it, replay after a reconnect, and clients that never read.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::rtsp::{frame_count, start_camera, start_camera_with, stop_camera, RtspServer};
use common::{free_port, generated_media, place, Daemon, BASE};
use serde_json::Value;

/// How long an expected event may take to arrive.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Events a client received, in order, read on its own thread.
struct Client {
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Client {
    fn new(events: mpsc::Receiver<Value>) -> Client {
        Client {
            events,
            seen: Vec::new(),
        }
    }

    /// Reads until an event of `kind` arrives; returns it.
    fn wait_for(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if event["type"] == kind {
                        return event;
                    }
                }
                Err(e) => panic!("no {kind} event ({e}); seen: {:?}", self.types()),
            }
        }
    }

    /// Takes whatever arrives within `quiet` of the previous event.
    fn settle(&mut self, quiet: Duration) {
        while let Ok(event) = self.events.recv_timeout(quiet) {
            self.seen.push(event);
        }
    }

    /// Takes what arrives for `window`, each with how late it came after
    /// `captured_at`.
    fn frames_for(&mut self, window: Duration) -> Vec<Duration> {
        let deadline = Instant::now() + window;
        let mut lags = Vec::new();
        while let Ok(event) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if let Some(captured) = event["captured_at"].as_str() {
                let captured: SystemTime = humantime::parse_rfc3339(captured).unwrap();
                lags.push(
                    SystemTime::now()
                        .duration_since(captured)
                        .unwrap_or_default(),
                );
            }
        }
        lags
    }

    fn types(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    fn last_id(&self) -> u64 {
        self.seen.last().map_or(0, |e| e["id"].as_u64().unwrap())
    }
}

/// An SSE client on its own thread; `headers` are added to the request. The thread
/// checks that each event's `id:` and `event:` lines agree with its JSON.
fn sse(daemon: &Daemon, path: &str, headers: &[(&str, &str)]) -> Client {
    let mut request = ureq::get(&daemon.url(path));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = request.call().expect("events/ answers");
    assert_eq!(response.content_type(), "text/event-stream");
    assert_eq!(response.header("X-Accel-Buffering"), Some("no"));
    let (sender, events) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(response.into_reader()).lines();
        let (mut id, mut kind, mut data) = (None, None, None);
        while let Some(Ok(line)) = lines.next() {
            if let Some(value) = line.strip_prefix("id: ") {
                id = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("event: ") {
                kind = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = Some(value.to_owned());
            } else if line.is_empty() {
                let Some(data) = data.take() else { continue };
                let event: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(id.take(), Some(event["id"].to_string()), "{event}");
                assert_eq!(kind.take().as_deref(), event["type"].as_str(), "{event}");
                if sender.send(event).is_err() {
                    return;
                }
            }
        }
    });
    Client::new(events)
}

/// A WebSocket client on its own thread.
fn websocket(daemon: &Daemon, path: &str) -> Client {
    let url = format!("ws://127.0.0.1:{}{BASE}{path}", daemon.port);
    let (mut socket, _) = tungstenite::connect(url).expect("ws/ accepts the handshake");
    let (sender, events) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(message) = socket.read() {
            if let tungstenite::Message::Text(text) = message {
                let event: Value = serde_json::from_str(&text).unwrap();
                if sender.send(event).is_err() {
                    return;
                }
            }
        }
    });
    Client::new(events)
}

/// The milestones of `types` (every event but `connecting` and `reconnecting` repeats).
fn milestones(types: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for kind in types {
        if kind == "connecting" || out.last() == Some(&kind.as_str()) {
            continue;
        }
        out.push(kind);
    }
    out
}

fn assert_increasing_ids(client: &Client, what: &str) {
    let ids: Vec<u64> = client
        .seen
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{what}: ids {ids:?}");
}

#[test]
fn clients_follow_a_camera_through_an_outage_and_replay_what_they_missed() {
    let port = free_port();
    let mut server = RtspServer::start(port, &[]);
    let url = server.url();
    let daemon = Daemon::start_with(&[
        ("RECONNECT_INITIAL_SECONDS", "0.1"),
        ("RECONNECT_MAX_SECONDS", "0.5"),
    ]);
    let mut plain = sse(&daemon, "/events/?camera_id=cam", &[]);
    let mut frames = sse(&daemon, "/events?camera_id=cam&frames=true", &[]);
    let mut socket = websocket(&daemon, "/ws/?camera_id=other&camera_id=cam");
    let mut leaving = sse(&daemon, "/events/?camera_id=cam", &[]);
    let mut unfiltered = sse(&daemon, "/events", &[]);

    start_camera(&daemon, "cam", &url);
    // Not in the filters of the first three.
    start_camera(&daemon, "bystander", &url);
    let streaming = leaving.wait_for("streaming");
    assert_eq!(streaming["live"], true, "{streaming}");
    // A client that leaves here and comes back later with the last id it saw.
    let left_at = leaving.last_id();
    drop(leaving);
    daemon.wait_status("cam", EVENT_TIMEOUT, |s| frame_count(s) >= 3);

    server.kill();
    let reconnecting = plain.wait_for("reconnecting");
    for field in ["error", "kind"] {
        assert!(reconnecting[field].is_string(), "{reconnecting}");
    }
    assert!(
        reconnecting["delay_seconds"].as_f64().unwrap() <= 0.5,
        "{reconnecting}"
    );
    assert!(
        reconnecting["restart_count"].as_u64().unwrap() >= 1,
        "{reconnecting}"
    );
    let server = RtspServer::start(port, &[]);
    plain.wait_for("streaming");
    let count_before = frame_count(&daemon.status("cam"));
    daemon.wait_status("cam", EVENT_TIMEOUT, |s| frame_count(s) >= count_before + 2);
    stop_camera(&daemon, "cam");
    let stopped = plain.wait_for("stopped");
    let written = frame_count(&daemon.status("cam"));
    assert_eq!(stopped["frame_count"].as_u64(), Some(written), "{stopped}");
    stop_camera(&daemon, "bystander");
    drop(server);

    let expected = [
        "started",
        "streaming",
        "reconnecting",
        "streaming",
        "stopped",
    ];
    socket.wait_for("stopped");
    frames.wait_for("stopped");
    unfiltered.wait_for("stopped");
    unfiltered.settle(Duration::from_millis(300));
    for (client, what) in [(&plain, "sse"), (&socket, "websocket")] {
        assert_eq!(milestones(&client.types()), expected, "{what}");
        assert!(
            client.seen.iter().all(|e| e["camera_id"] == "cam"),
            "{what}"
        );
        assert_increasing_ids(client, what);
        let types = client.types();
        for (i, _) in types.iter().enumerate().filter(|(_, k)| *k == "streaming") {
            assert_eq!(types[i - 1], "connecting", "{what}: {types:?}");
        }
    }
    // The same events, the same JSON, over both transports.
    assert_eq!(plain.seen, socket.seen);
    let started = &plain.seen[0];
    assert_eq!(started["source"], url, "{started}");
    assert_eq!(started["fps"], 5.0, "{started}");
    let time = started["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && humantime::parse_rfc3339(time).is_ok(),
        "{time}"
    );
    assert!(unfiltered
        .seen
        .iter()
        .any(|e| e["camera_id"] == "bystander"));
    assert!(!unfiltered.types().contains(&"frame".to_owned()));

    // Frames: one event per written file, each naming a file of that size.
    let dir = daemon.camera_dir("cam");
    let frame_events: Vec<&Value> = frames
        .seen
        .iter()
        .filter(|e| e["type"] == "frame")
        .collect();
    assert_eq!(frame_events.len() as u64, written, "{:?}", frames.types());
    let mut files = HashSet::new();
    for frame in &frame_events {
        let file = frame["file"].as_str().unwrap();
        assert_eq!(
            file,
            format!("frame_{:04}.jpg", frame["seq"].as_u64().unwrap()),
            "{frame}"
        );
        let size = std::fs::metadata(dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .len();
        assert_eq!(frame["bytes"].as_u64(), Some(size), "{frame}");
        assert!(
            frame["pts"].is_number() && frame["captured_at"].is_string(),
            "{frame}"
        );
        files.insert(file);
    }
    assert_eq!(files.len() as u64, written);
    let without_frames: Vec<&Value> = frames
        .seen
        .iter()
        .filter(|e| e["type"] != "frame")
        .collect();
    assert_eq!(without_frames, plain.seen.iter().collect::<Vec<_>>());

    // Back with Last-Event-ID: exactly what it missed, then live events again.
    let left_at = left_at.to_string();
    let mut back = sse(
        &daemon,
        "/events/?camera_id=cam",
        &[("Last-Event-ID", &left_at)],
    );
    back.wait_for("stopped");
    let missed: Vec<&Value> = plain
        .seen
        .iter()
        .filter(|e| e["id"].as_u64().unwrap() > left_at.parse().unwrap())
        .collect();
    assert_eq!(back.seen.iter().collect::<Vec<_>>(), missed);
    let mut socket_back = websocket(
        &daemon,
        &format!("/ws?camera_id=cam&last_event_id={left_at}"),
    );
    socket_back.wait_for("stopped");
    assert_eq!(socket_back.seen, back.seen);
    // A new session (its server is gone) comes live after the replay.
    start_camera(&daemon, "cam", &url);
    back.wait_for("reconnecting");
    assert_eq!(milestones(&back.types()).last(), Some(&"reconnecting"));
    assert_eq!(back.seen[missed.len()]["type"], "started");
}

#[test]
fn a_bad_filter_is_refused() {
    let daemon = Daemon::start();
    for path in [
        "/events/?camera_id=../x",
        "/ws/?camera_id=a&camera_id=no%20spaces",
    ] {
        let reply = daemon.get(path);
        assert_eq!(reply.status, 400, "{path}: {}", reply.detail());
    }
    assert_eq!(daemon.get("/events/?frames=maybe").status, 422);
    let reply = daemon.get_with("/events/", &[("Last-Event-ID", "yesterday")]);
    assert_eq!(reply.status, 400, "{}", reply.detail());
    // A plain GET is no WebSocket handshake.
    assert_eq!(daemon.get("/ws").status, 400);
}

/// A client that sends its request and never reads: a small receive buffer, so that
/// what the kernel holds for it is not megabytes.
fn non_reader(daemon: &Daemon, request: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address: SocketAddr = ([127, 0, 0, 1], daemon.port).into();
    socket.connect(&address.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    write!(stream, "{request}Host: 127.0.0.1\r\n\r\n").unwrap();
    stream
}

fn metric(daemon: &Daemon, name: &str) -> f64 {
    let text = String::from_utf8(daemon.get("/metrics").body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn a_client_that_never_reads_is_dropped_without_slowing_anyone() {
    const CAMERAS: usize = 4;
    const FPS: f64 = 60.0;
    let clip = generated_media(
        "mpeg4_64x48_60fps_2s.mp4",
        "testsrc2=size=64x48:rate=60",
        2.0,
        &["-c:v", "mpeg4", "-g", "30"],
    );
    let daemon = Daemon::start();
    let source = place(&daemon, &clip);
    let source = source.to_str().unwrap();
    let ids: Vec<String> = (0..CAMERAS).map(|i| format!("fast{i}")).collect();
    let looped = [("fps", "60"), ("realtime", "true"), ("loop", "true")];
    for id in &ids {
        start_camera_with(&daemon, id, source, &looped);
    }
    let mut reader = sse(&daemon, "/events/?camera_id=fast0&frames=true", &[]);
    reader.wait_for("frame");

    let rate = |window: Duration| {
        let before = frame_count(&daemon.status("fast0"));
        thread::sleep(window);
        (frame_count(&daemon.status("fast0")) - before) as f64 / window.as_secs_f64()
    };
    let baseline = rate(Duration::from_secs(1));
    // What arrived while nobody looked.
    reader.frames_for(Duration::ZERO);

    let path = format!("{BASE}/events/?frames=true");
    let mut stalled_sse = non_reader(&daemon, &format!("GET {path} HTTP/1.1\r\n"));
    let mut stalled_ws = non_reader(
        &daemon,
        &format!(
            "GET {BASE}/ws/?frames=true HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        ),
    );
    // While they fill up: the camera keeps its rate, the reader gets its frames on time.
    let stalled_since = Instant::now();
    let before = frame_count(&daemon.status("fast0"));
    let mut latest_lag = Duration::ZERO;
    let mut received = 0;
    while metric(&daemon, "video_pipeline_event_clients_dropped_total") < 2.0 {
        assert!(
            stalled_since.elapsed() < Duration::from_secs(15),
            "non-readers not dropped; {}",
            String::from_utf8_lossy(&daemon.get("/metrics").body)
        );
        let lags = reader.frames_for(Duration::from_millis(100));
        received += lags.len();
        latest_lag = lags.into_iter().fold(latest_lag, Duration::max);
    }
    let stalled_for = stalled_since.elapsed();
    let during = (frame_count(&daemon.status("fast0")) - before) as f64 / stalled_for.as_secs_f64();
    eprintln!(
        "non-readers dropped after {stalled_for:?}; fast0 at {baseline:.1} fps before, \
         {during:.1} fps meanwhile; reader got {received} frame events, at most {latest_lag:?} late"
    );
    assert!(baseline > FPS * 0.8, "baseline {baseline}");
    assert!(
        during > baseline * 0.85,
        "{during} fps while stalled, {baseline} before"
    );
    assert!(latest_lag < Duration::from_millis(500), "{latest_lag:?}");
    assert!(
        received as f64 >= during * stalled_for.as_secs_f64() * 0.8,
        "{received}"
    );

    // Both are disconnected: what was buffered for them, then the end.
    for stalled in [&mut stalled_sse, &mut stalled_ws] {
        stalled
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut sink = Vec::new();
        if let Err(e) = stalled.read_to_end(&mut sink) {
            assert_eq!(
                e.kind(),
                ErrorKind::ConnectionReset,
                "the connection ends: {e}"
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while metric(&daemon, "video_pipeline_event_clients") != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the non-readers still count as connected"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // The reader goes on.
    reader.frames_for(Duration::ZERO);
    let lags = reader.frames_for(Duration::from_millis(500));
    assert!(
        !lags.is_empty() && lags.iter().all(|l| *l < Duration::from_millis(500)),
        "{lags:?}"
    );
    let after = rate(Duration::from_secs(1));
    assert!(
        after > baseline * 0.85,
        "{after} fps after, {baseline} before"
    );
}
