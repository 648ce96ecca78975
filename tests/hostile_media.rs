//! Hostile and broken media against the real daemon: truncated files, random bytes,
//! corrupt packets, headers claiming huge frames, RTSP servers that answer garbage or
//! never finish an answer. All of them run at once, next to a healthy camera, on one
//! daemon: each hostile camera ends with a fitting, readable error (or completes with
//! what could be decoded), the healthy camera keeps its rate, the API answers quickly
//! throughout, and the daemon's memory stays far below what the headers claim.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::hostile::{flip_bytes, h264_claiming, random_bytes, y4m_claiming};
use common::rtsp::{frame_count, start_camera_with};
use common::servers::{HostileRtspServer, RtspHostility};
use common::Daemon;
use serde_json::Value;

/// The healthy camera's rate, from a looped realtime file.
const HEALTHY_FPS: f64 = 5.0;
/// Every status answer must come within this, whatever the other cameras do.
const ANSWER_LIMIT: Duration = Duration::from_secs(1);
/// All hostile cameras end within this (three attempts of the slowest, a 2 s open
/// timeout each, with backoff in between).
const HOSTILE_TIMEOUT: Duration = Duration::from_secs(30);
/// What the daemon may hold at its peak: a few cameras' decoders and buffers, far
/// below the gigabytes a 16000x16000 header or a 2 GB description would cost.
const PEAK_MEMORY_LIMIT: u64 = 1 << 30;

/// How a hostile camera must end.
#[derive(Debug)]
enum Expect {
    /// `error`, with this `last_error_kind` and these words in `last_error`.
    Error {
        kind: &'static str,
        words: &'static [&'static str],
    },
    /// `completed`, with frames written; `corrupt`: some dropped as damaged.
    Completed { corrupt: bool },
}

struct Case {
    camera: &'static str,
    url: String,
    extra: Vec<(&'static str, &'static str)>,
    expect: Expect,
}

/// A 2 s 320x240 H.264 clip at 25 fps, a keyframe every second, in `container`.
fn clip(container: &str) -> PathBuf {
    common::h264_small_in(2, container)
}

/// A 1 s 320x240 Baseline H.264 elementary stream at 10 fps: what a rewritten
/// sequence parameter set is made from.
fn baseline_stream() -> Vec<u8> {
    let path = common::generated_media(
        "h264_baseline_320x240_1s.h264",
        "testsrc2=size=320x240:rate=10",
        1.0,
        &[
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-preset",
            "ultrafast",
            "-g",
            "10",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    std::fs::read(path).unwrap()
}

/// Where the sample data of an MP4 lies (its `mdat` box, moov at the end as ffmpeg
/// writes it).
fn mdat_range(mp4: &[u8]) -> std::ops::Range<usize> {
    let start = mp4.windows(4).position(|w| w == b"mdat").unwrap() + 4;
    let end = mp4.windows(4).rposition(|w| w == b"moov").unwrap() - 4;
    start..end
}

fn write(daemon: &Daemon, name: &str, data: &[u8]) -> String {
    let path = daemon.media.join(name);
    std::fs::write(&path, data).unwrap();
    path.to_str().unwrap().to_owned()
}

fn files(daemon: &Daemon) -> Vec<Case> {
    let ts = std::fs::read(clip("ts")).unwrap();
    let mp4 = std::fs::read(clip("mp4")).unwrap();
    let mdat = mdat_range(&mp4);
    let middle = mdat.start + mdat.len() * 2 / 5..mdat.start + mdat.len() * 3 / 5;
    let stream = baseline_stream();
    let huge = h264_claiming(&stream, 16000, 16000);
    let growing = [stream.as_slice(), huge.as_slice()].concat();
    let too_large = Expect::Error {
        kind: "too_large",
        words: &["16000x16000", "MAX_FRAME_PIXELS", "8192x8192"],
    };
    vec![
        Case {
            // Cut inside a transport packet: the frames before the cut are written.
            camera: "truncated-ts",
            url: write(daemon, "truncated.ts", &ts[..ts.len() / 2 + 77]),
            extra: vec![],
            expect: Expect::Completed { corrupt: false },
        },
        Case {
            // Cut before its index (moov, written last): nothing can be found.
            camera: "truncated-mp4",
            url: write(daemon, "truncated.mp4", &mp4[..mp4.len() / 2]),
            extra: vec![],
            expect: Expect::Error {
                kind: "invalid_data",
                words: &["could not open", "Invalid data"],
            },
        },
        Case {
            camera: "random-bytes",
            url: write(daemon, "random.mp4", &random_bytes(300_000, 7)),
            extra: vec![],
            expect: Expect::Error {
                kind: "invalid_data",
                words: &["could not open", "Invalid data"],
            },
        },
        Case {
            // Damage in the middle second: the frames around it are written, the
            // damaged ones counted (every frame decoded, so that all damage is seen).
            camera: "corrupt-middle",
            url: write(
                daemon,
                "corrupt_middle.mp4",
                &flip_bytes(&mp4, middle, 1000),
            ),
            extra: vec![("sampling", "all")],
            expect: Expect::Completed { corrupt: true },
        },
        Case {
            camera: "corrupt-all",
            url: write(daemon, "corrupt_all.mp4", &flip_bytes(&mp4, mdat, 499)),
            extra: vec![],
            expect: Expect::Error {
                kind: "invalid_data",
                words: &["without a usable video frame", "damaged frames dropped"],
            },
        },
        Case {
            camera: "huge-y4m",
            url: write(daemon, "huge.y4m", &y4m_claiming(16000, 16000)),
            extra: vec![],
            expect: too_large,
        },
        Case {
            camera: "huge-sps",
            url: write(daemon, "huge_sps.h264", &huge),
            extra: vec![],
            expect: Expect::Error {
                kind: "too_large",
                words: &["16000x16000", "MAX_FRAME_PIXELS"],
            },
        },
        Case {
            // 320x240 for a second, then a sequence header claiming 16000x16000: the
            // decoder meets it mid-stream.
            camera: "huge-sps-later",
            url: write(daemon, "huge_sps_later.h264", &growing),
            extra: vec![],
            expect: Expect::Error {
                kind: "too_large",
                words: &["16000x16000", "MAX_FRAME_PIXELS"],
            },
        },
    ]
}

/// Non-empty words a person can read: printable, not too long, no raw pointers.
fn assert_readable(camera: &str, message: &str) {
    assert!(!message.trim().is_empty(), "{camera}: empty error");
    assert!(message.len() < 400, "{camera}: {message}");
    assert!(
        message
            .chars()
            .all(|c| !c.is_control() && c != char::REPLACEMENT_CHARACTER),
        "{camera}: {message:?}"
    );
    let pointer = message.match_indices("0x").any(|(at, _)| {
        message[at + 2..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .count()
            >= 6
    });
    assert!(!pointer, "{camera}: {message}");
}

/// Reads the healthy camera's status every 100 ms until stopped; records how long the
/// slowest answer took and any request that failed.
fn poll_status(
    daemon: &Daemon,
    done: Arc<AtomicBool>,
) -> thread::JoinHandle<(Duration, Vec<String>)> {
    let status = daemon.url("/decode/status/?camera_id=healthy");
    let cameras = daemon.url("/cameras/");
    thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let mut slowest = Duration::ZERO;
        let mut failures = Vec::new();
        while !done.load(Ordering::SeqCst) {
            for url in [&status, &cameras] {
                let asked = Instant::now();
                match agent.get(url).call() {
                    Ok(answer) if answer.status() == 200 => {}
                    Ok(answer) => failures.push(format!("{url}: {}", answer.status())),
                    Err(e) => failures.push(format!("{url}: {e}")),
                }
                slowest = slowest.max(asked.elapsed());
            }
            thread::sleep(Duration::from_millis(100));
        }
        (slowest, failures)
    })
}

#[test]
fn hostile_media_fails_clearly_and_leaves_the_daemon_and_other_cameras_alone() {
    let started = Instant::now();
    let daemon = Daemon::start_with(&[
        ("OPEN_TIMEOUT_SECONDS", "2"),
        ("READ_TIMEOUT_SECONDS", "2"),
        ("STALL_TIMEOUT_SECONDS", "2"),
        ("RECONNECT_INITIAL_SECONDS", "0.2"),
        ("RECONNECT_MAX_SECONDS", "0.5"),
        ("MAX_RESTARTS", "2"),
    ]);
    let healthy = common::place(&daemon, &common::h264_small(4));
    start_camera_with(
        &daemon,
        "healthy",
        healthy.to_str().unwrap(),
        &[("loop", "true"), ("realtime", "true"), ("fps", "5")],
    );

    let garbage = HostileRtspServer::start(RtspHostility::Garbage);
    let endless_description = HostileRtspServer::start(RtspHostility::EndlessDescription);
    let endless_header = HostileRtspServer::start(RtspHostility::EndlessHeader);
    let mut cases = files(&daemon);
    let servers = [
        ("rtsp-garbage", &garbage, "invalid_data"),
        ("rtsp-endless-sdp", &endless_description, "invalid_data"),
        ("rtsp-endless-header", &endless_header, "timeout"),
    ];
    for (camera, server, kind) in servers {
        cases.push(Case {
            camera,
            url: server.url(),
            extra: vec![],
            expect: Expect::Error {
                kind,
                words: &["rtsp://127.0.0.1:", "MAX_RESTARTS=2"],
            },
        });
    }
    daemon.wait_status("healthy", Duration::from_secs(20), |s| frame_count(s) >= 3);

    let done = Arc::new(AtomicBool::new(false));
    let poller = poll_status(&daemon, Arc::clone(&done));
    let window_start = Instant::now();
    let frames_before = frame_count(&daemon.status("healthy"));
    for case in &cases {
        start_camera_with(&daemon, case.camera, &case.url, &case.extra);
    }
    // A URL with a NUL byte used to reach libav, which cannot take it.
    for route in ["/decode/", "/video-info-url/"] {
        let reply = daemon.post_json(
            route,
            serde_json::json!({"camera_id": "nul", "url": "rtsp://127.0.0.1:1/a\u{0}b"}),
        );
        assert_eq!(reply.status, 400, "{route}: {}", reply.detail());
        assert!(
            reply.detail().contains("control character"),
            "{}",
            reply.detail()
        );
    }

    let mut finals: Vec<(&Case, Value)> = Vec::new();
    let deadline = Instant::now() + HOSTILE_TIMEOUT;
    let mut waiting: Vec<&Case> = cases.iter().collect();
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running after {HOSTILE_TIMEOUT:?}: {:?}\n{}",
            waiting.iter().map(|c| c.camera).collect::<Vec<_>>(),
            daemon.log_text()
        );
        waiting.retain(|case| {
            let status = daemon.status(case.camera);
            if status["status"] == "running" {
                return true;
            }
            finals.push((case, status));
            false
        });
        thread::sleep(Duration::from_millis(100));
    }
    // A window long enough to measure a rate in.
    thread::sleep(Duration::from_secs(4).saturating_sub(window_start.elapsed()));
    let window = window_start.elapsed();
    let healthy_status = daemon.status("healthy");
    let frames = frame_count(&healthy_status) - frames_before;
    done.store(true, Ordering::SeqCst);
    let (slowest, failures) = poller.join().unwrap();

    for (case, status) in finals {
        let camera = case.camera;
        let error = status["last_error"].as_str().unwrap_or_default();
        eprintln!(
            "{camera}: {} {} frames, {} corrupt; {:?}: {error}",
            status["status"],
            status["frame_count"],
            status["frames_dropped_reasons"]["corrupt"],
            status["last_error_kind"]
        );
        match &case.expect {
            Expect::Error { kind, words } => {
                assert_eq!(status["status"], "error", "{camera}: {status}");
                assert_eq!(status["last_error_kind"], *kind, "{camera}: {status}");
                assert_readable(camera, error);
                for word in *words {
                    assert!(error.contains(word), "{camera}: {word:?} not in {error:?}");
                }
            }
            Expect::Completed { corrupt } => {
                assert_eq!(status["status"], "completed", "{camera}: {status}");
                assert!(frame_count(&status) > 0, "{camera}: {status}");
                let dropped = status["frames_dropped_reasons"]["corrupt"]
                    .as_u64()
                    .unwrap();
                assert_eq!(dropped > 0, *corrupt, "{camera}: {status}");
            }
        }
    }
    let later = daemon.status("huge-sps-later");
    assert!(
        frame_count(&later) > 0,
        "the frames before the change: {later}"
    );

    let expected = HEALTHY_FPS * window.as_secs_f64();
    eprintln!(
        "healthy: {frames} frames in {window:?} (expected {expected:.1}); slowest answer \
         {slowest:?}; peak memory {} MiB; endless description: {} bytes sent; {:?} in all",
        daemon.peak_memory_bytes() >> 20,
        endless_description.sent(),
        started.elapsed()
    );
    assert_eq!(healthy_status["status"], "running", "{healthy_status}");
    assert_eq!(healthy_status["restart_count"], 0, "{healthy_status}");
    assert!(
        (frames as f64 - expected).abs() <= expected * 0.2 + 1.0,
        "the healthy camera wrote {frames} frames in {window:?}, expected {expected:.1}"
    );
    assert!(failures.is_empty(), "failed status reads: {failures:?}");
    assert!(slowest < ANSWER_LIMIT, "a status answer took {slowest:?}");
    // Refused at its length: the description was not read (sockets buffer a few MB).
    assert!(
        endless_description.sent() < 64 << 20,
        "{} bytes of the endless description were read",
        endless_description.sent()
    );
    let peak = daemon.peak_memory_bytes();
    assert!(peak < PEAK_MEMORY_LIMIT, "peak memory {} MiB", peak >> 20);
    let log = daemon.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

/// `video-info-url/` describes a stream claiming huge frames as it claims them, at once:
/// reading its stream information decodes nothing of that size.
#[test]
fn a_huge_frame_is_described_without_decoding_it() {
    let daemon = Daemon::start();
    let path = daemon.media.join("huge_sps.h264");
    std::fs::write(&path, h264_claiming(&baseline_stream(), 16000, 16000)).unwrap();
    let asked = Instant::now();
    let reply = daemon.post_form("/video-info-url/", &[("url", path.to_str().unwrap())]);
    let took = asked.elapsed();
    let info = &reply.assert_ok().json()["info"];
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(16000), Some(16000)),
        "{info}"
    );
    assert!(took < Duration::from_secs(3), "probing took {took:?}");
    let peak = daemon.peak_memory_bytes();
    assert!(peak < 512 << 20, "peak memory {} MiB", peak >> 20);
}
