//! `GET mjpeg/` of the real daemon: the stream is a sequence of complete JPEGs, each
//! the very bytes of a frame the camera wrote; a viewer's rate cap skips frames; the
//! stream ends with the session; and twenty viewers cost no decoding.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::thread;
use std::time::{Duration, Instant};

use common::rtsp::{start_camera_with, stop_camera};
use common::Daemon;

const FRAMES_TIMEOUT: Duration = Duration::from_secs(30);

/// A multipart stream read part by part.
struct Stream {
    reader: BufReader<Box<dyn Read + Send + Sync>>,
}

struct Part {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Part {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
    }

    fn seq(&self) -> u64 {
        self.header("X-Frame-Seq").parse().unwrap()
    }
}

impl Stream {
    fn open(daemon: &Daemon, query: &str) -> Stream {
        let response = ureq::get(&daemon.url(&format!("/mjpeg/?{query}")))
            .timeout(Duration::from_secs(30))
            .call()
            .expect("mjpeg/ answers 200");
        assert_eq!(
            response.header("content-type"),
            Some("multipart/x-mixed-replace; boundary=frame")
        );
        assert_eq!(response.header("x-accel-buffering"), Some("no"));
        Stream {
            reader: BufReader::new(response.into_reader()),
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "a line ends with CRLF: {line:?}");
        line.trim_end().to_owned()
    }

    /// The next part, or `None` at the closing boundary.
    fn next(&mut self) -> Option<Part> {
        match self.line().as_str() {
            "--frame" => {}
            "--frame--" => return None,
            other => panic!("expected a boundary, got {other:?}"),
        }
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(": ").unwrap();
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mut part = Part {
            headers,
            body: Vec::new(),
        };
        let len: usize = part.header("Content-Length").parse().unwrap();
        part.body.resize(len, 0);
        self.reader.read_exact(&mut part.body).unwrap();
        assert_eq!(self.line(), "", "the part ends where Content-Length says");
        Some(part)
    }
}

fn start_looped(daemon: &Daemon, camera: &str, clip: &std::path::Path, fps: &str) {
    let clip = common::place(daemon, clip);
    start_camera_with(
        daemon,
        camera,
        clip.to_str().unwrap(),
        &[("fps", fps), ("realtime", "true"), ("loop", "true")],
    );
    daemon.wait_status(camera, FRAMES_TIMEOUT, |s| {
        s["frame_count"].as_u64().unwrap_or(0) >= 1
    });
}

#[test]
fn the_stream_is_the_cameras_frames_capped_by_fps_and_ends_with_the_session() {
    let daemon = Daemon::start();
    start_looped(&daemon, "cam", &common::h264_small(2), "10");
    let dir = daemon.camera_dir("cam");

    let mut stream = Stream::open(&daemon, "camera_id=cam");
    let mut seqs = Vec::new();
    for _ in 0..8 {
        let part = stream.next().expect("a part");
        assert_eq!(part.header("Content-Type"), "image/jpeg");
        let picture = image::load_from_memory(&part.body).expect("a complete JPEG");
        assert_eq!((picture.width(), picture.height()), (320, 240));
        let file = std::fs::read(dir.join(format!("frame_{:04}.jpg", part.seq()))).unwrap();
        assert!(file == part.body, "part {} is its frame's file", part.seq());
        seqs.push(part.seq());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // At 2 parts per second from a 10 fps camera: frames are skipped, not queued.
    let asked = Instant::now();
    let mut capped = Stream::open(&daemon, "camera_id=cam&fps=2");
    let capped_seqs: Vec<u64> = (0..5).map(|_| capped.next().unwrap().seq()).collect();
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "5 parts at 2 fps in {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "5 parts at 2 fps in {took:?}"
    );
    let gaps: Vec<u64> = capped_seqs.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g >= 3), "{capped_seqs:?}");

    for (query, status) in [
        ("camera_id=nobody", 404),
        ("camera_id=cam&fps=abc", 422),
        ("camera_id=cam&fps=0", 400),
        ("camera_id=cam&fps=61", 400),
        ("fps=2", 422),
    ] {
        for path in ["/mjpeg/", "/mjpeg"] {
            let reply = daemon.get(&format!("{path}?{query}"));
            assert_eq!(reply.status, status, "{path}?{query}: {}", reply.detail());
        }
    }

    // The session's end ends every stream, after the frames it wrote.
    stop_camera(&daemon, "cam");
    let ended = Instant::now();
    while stream.next().is_some() {
        assert!(
            ended.elapsed() < Duration::from_secs(5),
            "the stream goes on"
        );
    }
    assert_eq!(daemon.get("/mjpeg?camera_id=cam").status, 404);
}

/// The daemon's user + system CPU time, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// `video_pipeline_decode_duration_seconds_count` of the camera: frames decoded.
fn decoded(daemon: &Daemon, camera: &str) -> f64 {
    let text = daemon.get("/metrics").body;
    let text = String::from_utf8(text).unwrap();
    let series = format!("video_pipeline_decode_duration_seconds_count{{camera=\"{camera}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series}"))
        .trim()
        .parse()
        .unwrap()
}

/// Per second over `window`: frames decoded, frames written, daemon CPU seconds.
fn rates(daemon: &Daemon, camera: &str, window: Duration) -> (f64, f64, f64) {
    let written = || daemon.status(camera)["frame_count"].as_f64().unwrap();
    let (d0, w0, c0, t0) = (
        decoded(daemon, camera),
        written(),
        cpu_seconds(daemon.child.id()),
        Instant::now(),
    );
    thread::sleep(window);
    let seconds = t0.elapsed().as_secs_f64();
    (
        (decoded(daemon, camera) - d0) / seconds,
        (written() - w0) / seconds,
        (cpu_seconds(daemon.child.id()) - c0) / seconds,
    )
}

#[test]
fn twenty_viewers_add_no_decoding() {
    const VIEWERS: usize = 20;
    const WINDOW: Duration = Duration::from_secs(3);
    let daemon = Daemon::start();
    start_looped(&daemon, "load", &common::h264_small(2), "10");
    let alone = rates(&daemon, "load", WINDOW);
    let viewers: Vec<_> = (0..VIEWERS)
        .map(|_| {
            let mut stream = Stream::open(&daemon, "camera_id=load");
            thread::spawn(move || {
                let started = Instant::now();
                let mut parts = 0;
                while started.elapsed() < WINDOW + Duration::from_secs(1) {
                    let part = stream.next().expect("a part");
                    assert!(part.body.starts_with(&[0xFF, 0xD8]));
                    assert!(part.body.ends_with(&[0xFF, 0xD9]));
                    parts += 1;
                }
                parts
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let watched = rates(&daemon, "load", WINDOW);
    let parts: Vec<u32> = viewers.into_iter().map(|v| v.join().unwrap()).collect();
    eprintln!(
        "alone: {:.1} decoded/s, {:.1} written/s, {:.3} CPU; {VIEWERS} viewers: \
         {:.1} decoded/s, {:.1} written/s, {:.3} CPU; parts per viewer {parts:?}",
        alone.0, alone.1, alone.2, watched.0, watched.1, watched.2
    );
    // Each viewer got about every frame of the 3.3 s it watched, at 10 fps.
    assert!(parts.iter().all(|&p| p >= 25), "{parts:?}");
    assert!(
        (watched.0 - alone.0).abs() <= alone.0 * 0.15 + 1.0,
        "decoding changed: {alone:?} → {watched:?}"
    );
    assert!(
        (watched.1 - alone.1).abs() <= 2.0,
        "{alone:?} → {watched:?}"
    );
    // Decoding per viewer would multiply the camera's CPU; sending is a copy per part.
    assert!(
        watched.2 <= alone.2 * 2.0 + 0.1,
        "CPU {:.3} → {:.3}",
        alone.2,
        watched.2
    );
}

#[test]
fn a_viewer_that_does_not_read_gets_the_newest_frame_not_a_backlog() {
    const STALL: Duration = Duration::from_secs(5);
    // 1080p frames at quality 100, about half a megabyte each: five seconds of them
    // are several times what the socket buffers hold (4 MB on loopback), so what the
    // daemon kept back shows.
    let daemon = Daemon::start_with(&[("JPEG_QUALITY", "100")]);
    start_looped(&daemon, "big", &common::h264_1080p(2), "10");
    let mut stalled = Stream::open(&daemon, "camera_id=big");
    let from = stalled.next().unwrap().seq();
    thread::sleep(STALL);
    let newest: u64 = daemon
        .get("/latest-frame/?camera_id=big")
        .header("x-frame-seq")
        .unwrap()
        .parse()
        .unwrap();
    let mut parts = 0;
    let mut last = from;
    while last < newest {
        last = stalled.next().unwrap().seq();
        parts += 1;
    }
    let size = stalled.next().unwrap().body.len();
    eprintln!("stalled viewer: {parts} parts for frames {from}..{newest} of {size} bytes");
    assert!(newest - from >= 40, "the camera wrote {from}..{newest}");
    // What the sockets held, then the newest: at least ten frames were never queued.
    assert!(
        parts + 10 <= newest - from,
        "{parts} parts for {from}..{newest}: a backlog"
    );
}
