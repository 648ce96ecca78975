//! The HTTP contract (`spec/api.md`) checked route by route against the real binary:
//! every route with and without its trailing slash, the three body encodings, and
//! every error answer with its status code and JSON `detail`.

// The shared harness hands back ureq's large error type by value.
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use common::{frame_files, free_port, h264_small, place, Daemon, Reply, BASE};
use serde_json::{json, Value};

const NO_SOURCE: &str = "Either a file or a URL must be provided.";
const NO_TASK: &str = "No decode task found for this camera.";
const NO_FRAMES: &str = "No frames available. Camera may not be streaming.";
const MP4_DEMUXER: &str = "mov,mp4,m4a,3gp,3g2,mj2";

/// How long a small local file may take to decode completely.
const FILE_DONE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Multipart,
    Urlencoded,
    Json,
}

const ENCODINGS: [Encoding; 3] = [Encoding::Multipart, Encoding::Urlencoded, Encoding::Json];

impl Encoding {
    /// Posts text fields in this encoding (JSON values are strings, as some callers send).
    fn post(self, daemon: &Daemon, path: &str, fields: &[(&str, &str)]) -> Reply {
        match self {
            Encoding::Multipart => daemon.post_multipart(path, fields, &[]),
            Encoding::Urlencoded => daemon.post_form(path, fields),
            Encoding::Json => {
                let object: serde_json::Map<String, Value> = fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect();
                daemon.post_json(path, Value::Object(object))
            }
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Encoding::Multipart => "mp",
            Encoding::Urlencoded => "ue",
            Encoding::Json => "js",
        }
    }
}

/// The small test clip, made once per test process (concurrent makers would share a
/// temporary file name).
fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| h264_small(3))
}

/// An RTSP URL whose server refuses connections: the camera keeps retrying and
/// stays `running` until stopped.
fn dead_rtsp() -> String {
    format!("rtsp://127.0.0.1:{}/x", free_port())
}

/// Checks an error answer: the status, a JSON body, and a non-empty `detail` string,
/// which it returns.
fn assert_error(reply: &Reply, status: u16, what: &str) -> String {
    let body = String::from_utf8_lossy(&reply.body);
    assert_eq!(reply.status, status, "{what}: {body}");
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content type {content_type:?}"
    );
    let detail = reply.json()["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no detail string in {body}"))
        .to_owned();
    assert!(!detail.is_empty(), "{what}: empty detail");
    detail
}

fn assert_ok(reply: &Reply, what: &str) -> Value {
    assert_eq!(
        reply.status,
        200,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// Names in a folder, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|list| {
            list.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// How many of the daemon's threads are named `cam-<camera>`, counted once the camera
/// has failed and retried at least once: a new thread names itself only when it runs,
/// and by then every worker started for the camera has done so.
fn camera_threads(daemon: &Daemon, camera: &str) -> usize {
    daemon.wait_status(camera, Duration::from_secs(30), |s| {
        s["restart_count"].as_u64().unwrap_or(0) >= 1
    });
    let wanted = format!("cam-{camera}");
    assert!(
        wanted.len() <= 15,
        "Linux truncates thread names to 15 bytes"
    );
    let tasks = PathBuf::from(format!("/proc/{}/task", daemon.child.id()));
    std::fs::read_dir(tasks)
        .unwrap()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.trim_end() == wanted)
        .count()
}

fn start_live(daemon: &Daemon, camera: &str) -> Value {
    let reply = daemon.post_form("/decode/", &[("camera_id", camera), ("url", &dead_rtsp())]);
    let body = assert_ok(&reply, "start a live camera");
    assert_eq!(body["status"], "started", "{body}");
    body
}

fn wait_completed(daemon: &Daemon, camera: &str) -> Value {
    daemon.wait_status(camera, FILE_DONE, |s| s["status"] != "running")
}

#[test]
fn root_answers_at_slash_and_at_the_base_path() {
    let daemon = Daemon::start();
    for path in ["/", BASE, &format!("{BASE}/")] {
        let body = assert_ok(&daemon.get(path), path);
        assert_eq!(
            body,
            json!({"message": "FFMPEG Video Pipeline API is running!"})
        );
    }
}

#[test]
fn every_route_answers_with_and_without_its_trailing_slash() {
    let daemon = Daemon::start();
    let media = place(&daemon, clip());
    let media = media.to_str().unwrap();
    for slash in ["", "/"] {
        let health = assert_ok(&daemon.get(&format!("/health{slash}")), "health");
        assert_eq!(health["status"], "healthy");

        let camera = format!("slash{}", slash.len());
        let path = format!("/decode{slash}");
        let started = assert_ok(
            &daemon.post_form(&path, &[("camera_id", &camera), ("url", &dead_rtsp())]),
            &path,
        );
        assert_eq!(started["status"], "started");

        let path = format!("/decode/status{slash}?camera_id={camera}");
        assert_eq!(assert_ok(&daemon.get(&path), &path)["status"], "running");

        let path = format!("/latest-frame{slash}?camera_id=never{}", slash.len());
        assert_eq!(assert_error(&daemon.get(&path), 404, &path), NO_TASK);

        let path = format!("/decode/stop{slash}");
        let stopped = assert_ok(&daemon.post_form(&path, &[("camera_id", &camera)]), &path);
        assert_eq!(stopped["message"], "Decoding stopped");

        let path = format!("/video-info{slash}");
        let video = std::fs::read(clip()).unwrap();
        let reply = daemon.post_multipart(&path, &[], &[("video", "clip.mp4", &video)]);
        assert_eq!(assert_ok(&reply, &path)["info"]["codec"], "h264");

        let path = format!("/video-info-url{slash}");
        let reply = daemon.post_form(&path, &[("url", media)]);
        assert_eq!(assert_ok(&reply, &path)["info"]["codec"], "h264");

        let path = format!("/hw-accel-cap{slash}");
        let caps = assert_ok(&daemon.get(&path), &path);
        assert!(caps["message"]["available_hw_accelerations"].is_array());
    }
}

#[test]
fn health_reports_the_service_and_new_keys() {
    let daemon = Daemon::start();
    let body = assert_ok(&daemon.get("/health/"), "health");
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "video-pipeline");
    assert!(body["version"].is_string(), "{body}");
    assert!(body["uptime_seconds"].is_u64(), "{body}");
    assert!(body["cameras"].is_object(), "{body}");
}

#[test]
fn decode_accepts_every_encoding_with_string_numbers_and_unknown_fields() {
    let daemon = Daemon::start();
    for encoding in ENCODINGS {
        let camera = format!("enc_{}", encoding.tag());
        let url = dead_rtsp();
        let fields = [
            ("camera_id", camera.as_str()),
            ("url", url.as_str()),
            ("fps", "5"),
            ("force_format", "none"),
            ("not_a_field", "ignored"),
        ];
        let body = assert_ok(
            &encoding.post(&daemon, "/decode/", &fields),
            camera.as_str(),
        );
        let folder = daemon.camera_dir(&camera).display().to_string();
        assert_eq!(
            body,
            json!({"message": "Decoding started", "camera_id": camera,
                   "output_folder": folder, "status": "started"}),
            "{encoding:?}"
        );
        let status = daemon.status(&camera);
        assert_eq!(status["status"], "running", "{status}");
        assert_eq!(status["fps"], 5.0, "{status}");
        assert_eq!(status["hwaccel"], "none", "{status}");
    }
}

#[test]
fn decode_accepts_json_with_source_alias_and_numeric_fps() {
    let daemon = Daemon::start();
    let reply = daemon.post_json(
        "/decode/",
        json!({"camera_id": "template", "source": dead_rtsp(), "fps": 0.5}),
    );
    assert_eq!(assert_ok(&reply, "json decode")["status"], "started");
    let status = daemon.status("template");
    assert_eq!(status["status"], "running", "{status}");
    assert_eq!(status["fps"], 0.5, "{status}");
}

#[test]
fn decode_from_an_allowed_local_path_or_file_url_completes() {
    let daemon = Daemon::start();
    let media = place(&daemon, clip());
    let file_url = format!("file://{}", media.display());
    for (camera, url) in [("path", media.to_str().unwrap()), ("fileurl", &file_url)] {
        let reply = daemon.post_form("/decode", &[("camera_id", camera), ("url", url)]);
        assert_eq!(assert_ok(&reply, camera)["status"], "started");
        let status = wait_completed(&daemon, camera);
        assert_eq!(status["status"], "completed", "{status}");
        assert!(status["frame_count"].as_u64().unwrap() > 0, "{status}");
    }
}

#[test]
fn decode_without_camera_id_is_422() {
    let daemon = Daemon::start();
    let url = dead_rtsp();
    for encoding in ENCODINGS {
        let missing = encoding.post(&daemon, "/decode/", &[("url", &url)]);
        assert_error(&missing, 422, &format!("missing camera_id, {encoding:?}"));
        let empty = encoding.post(&daemon, "/decode/", &[("camera_id", ""), ("url", &url)]);
        assert_error(&empty, 422, &format!("empty camera_id, {encoding:?}"));
    }
    assert!(entries(&daemon.output).is_empty());
}

#[test]
fn bad_camera_ids_are_400_and_touch_no_file() {
    let daemon = Daemon::start();
    let url = dead_rtsp();
    let long = "x".repeat(65);
    let bad = ["../x", "a/b", ".hidden", "a b", "..", long.as_str()];
    for encoding in ENCODINGS {
        for camera in bad {
            let reply = encoding.post(&daemon, "/decode/", &[("camera_id", camera), ("url", &url)]);
            assert_error(&reply, 400, &format!("camera_id {camera:?}, {encoding:?}"));
        }
    }
    let nul = daemon.post_json("/decode/", json!({"camera_id": "a\u{0}b", "url": url}));
    assert_error(&nul, 400, "camera_id with NUL");
    assert!(
        entries(&daemon.output).is_empty(),
        "{:?}",
        entries(&daemon.output)
    );
    assert!(!daemon.dir.path().join("x").exists());
    let ok_64 = "y".repeat(64);
    let reply = daemon.post_form("/decode/", &[("camera_id", &ok_64), ("url", &url)]);
    assert_eq!(assert_ok(&reply, "64 characters")["status"], "started");
}

#[test]
fn fps_of_the_wrong_type_is_422_and_out_of_range_is_400() {
    let daemon = Daemon::start();
    let url = dead_rtsp();
    for encoding in ENCODINGS {
        let fields = [("camera_id", "fps"), ("url", url.as_str()), ("fps", "abc")];
        assert_error(&encoding.post(&daemon, "/decode/", &fields), 422, "fps abc");
        for fps in ["0", "61", "-1", "60.5"] {
            let fields = [("camera_id", "fps"), ("url", url.as_str()), ("fps", fps)];
            let reply = encoding.post(&daemon, "/decode/", &fields);
            assert_error(&reply, 400, &format!("fps {fps}, {encoding:?}"));
        }
    }
    assert_eq!(daemon.status("fps")["status"], "not_started");
}

#[test]
fn live_is_a_flag_and_realtime_or_loop_are_refused_only_for_sources_certainly_live() {
    let daemon = Daemon::start();
    let rtsp = dead_rtsp();
    let file = place(&daemon, clip());
    let file = file.to_str().unwrap();
    for encoding in ENCODINGS {
        let fields = [
            ("camera_id", "flag"),
            ("url", rtsp.as_str()),
            ("live", "maybe"),
        ];
        let detail = assert_error(&encoding.post(&daemon, "/decode/", &fields), 422, "live");
        assert_eq!(detail, "live must be true or false, not \"maybe\"");
        for fields in [
            [("url", rtsp.as_str()), ("realtime", "true")],
            [("url", file), ("live", "true")],
        ] {
            let mut fields = fields.to_vec();
            fields.extend([("camera_id", "flag"), ("loop", "yes")]);
            let reply = encoding.post(&daemon, "/decode/", &fields);
            let detail = assert_error(&reply, 400, &format!("{fields:?}, {encoding:?}"));
            assert!(
                detail.starts_with("realtime and loop apply to sources that end"),
                "{detail}"
            );
        }
    }
    assert_eq!(daemon.status("flag")["status"], "not_started");

    // An HTTP URL may serve a file: allowed, decided once it opens (this one never does).
    let http = format!("http://127.0.0.1:{}/video", free_port());
    let reply = daemon.post_json(
        "/decode/",
        json!({"camera_id": "http", "url": http, "realtime": true, "live": null}),
    );
    assert_ok(&reply, "realtime on an HTTP URL");
    assert_eq!(daemon.status("http")["live"], Value::Null);
    let reply = daemon.post_json(
        "/decode/",
        json!({"camera_id": "said", "url": rtsp, "live": false}),
    );
    assert_ok(&reply, "live=false on RTSP");
    assert_eq!(daemon.status("said")["live"], false);
}

#[test]
fn decode_without_a_source_is_400_with_the_original_message() {
    let daemon = Daemon::start();
    for encoding in ENCODINGS {
        for fields in [
            &[("camera_id", "nosrc")][..],
            &[("camera_id", "nosrc"), ("url", "")][..],
            &[("camera_id", "nosrc"), ("source", "")][..],
        ] {
            let reply = encoding.post(&daemon, "/decode/", fields);
            let detail = assert_error(&reply, 400, &format!("{fields:?}, {encoding:?}"));
            assert_eq!(detail, NO_SOURCE);
        }
    }
    assert!(entries(&daemon.output).is_empty());
}

#[test]
fn forbidden_schemes_and_paths_are_400() {
    let daemon = Daemon::start();
    let outside = daemon.dir.path().join("outside.mp4");
    std::fs::copy(clip(), &outside).unwrap();
    let link = daemon.media.join("link.mp4");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let escape = daemon.media.join("..").join("outside.mp4");
    let forbidden = [
        "concat:/etc/passwd|/etc/hosts".to_owned(),
        "subfile:,start,0,end,10,:/etc/passwd".to_owned(),
        "data:video/mp4;base64,AAAA".to_owned(),
        "pipe:0".to_owned(),
        "file:///etc/passwd".to_owned(),
        format!("file://{}", outside.display()),
        outside.display().to_string(),
        escape.display().to_string(),
        link.display().to_string(),
    ];
    for encoding in ENCODINGS {
        for url in &forbidden {
            let reply = encoding.post(&daemon, "/decode/", &[("camera_id", "evil"), ("url", url)]);
            assert_error(&reply, 400, &format!("{url}, {encoding:?}"));
        }
    }
    assert_eq!(daemon.status("evil")["status"], "not_started");
    assert!(entries(&daemon.output).is_empty());
}

#[test]
fn unknown_force_format_is_400_listing_allowed_values() {
    let daemon = Daemon::start();
    let url = dead_rtsp();
    for encoding in ENCODINGS {
        let fields = [
            ("camera_id", "hw"),
            ("url", url.as_str()),
            ("force_format", "warp-drive"),
        ];
        let detail = assert_error(&encoding.post(&daemon, "/decode/", &fields), 400, "warp");
        for allowed in ["auto", "none", "cuda", "qsv", "vaapi"] {
            assert!(detail.contains(allowed), "{allowed} missing in {detail}");
        }
    }
    assert_eq!(daemon.status("hw")["status"], "not_started");
}

#[test]
fn known_but_unusable_hardware_falls_back_to_software() {
    let daemon = Daemon::start();
    for backend in ["rkmpp", "cuda"] {
        let camera = format!("hw_{backend}");
        let fields = [
            ("camera_id", camera.as_str()),
            ("url", &dead_rtsp()),
            ("force_format", backend),
        ];
        assert_eq!(
            assert_ok(&daemon.post_form("/decode/", &fields), backend)["status"],
            "started"
        );
        let status = daemon.status(&camera);
        assert_eq!(status["hwaccel"], "none", "{status}");
        assert_eq!(status["hwaccel_requested"], backend, "{status}");
        let reason = status["hwaccel_reason"].as_str().unwrap_or_default();
        assert!(reason.contains(backend), "{status}");
    }
}

#[test]
fn status_needs_a_valid_camera_id_and_reports_unknown_ones_as_not_started() {
    let daemon = Daemon::start();
    for path in ["/decode/status/", "/decode/status"] {
        assert_error(&daemon.get(path), 422, "status without camera_id");
    }
    for bad in ["..%2Fx", "a%2Fb", ".hidden", &"x".repeat(65)] {
        let path = format!("/decode/status/?camera_id={bad}");
        assert_error(&daemon.get(&path), 400, &path);
    }
    let body = assert_ok(&daemon.get("/decode/status/?camera_id=ghost"), "ghost");
    assert_eq!(body["camera_id"], "ghost");
    assert_eq!(body["status"], "not_started");
    assert_eq!(body["frame_count"], 0);
    assert_eq!(body["last_error"], Value::Null);
    assert_eq!(body["restart_count"], 0);
    assert!(entries(&daemon.output).is_empty());
}

#[test]
fn stop_works_in_every_encoding() {
    let daemon = Daemon::start();
    for encoding in ENCODINGS {
        let camera = format!("stop_{}", encoding.tag());
        let idle = encoding.post(&daemon, "/decode/stop/", &[("camera_id", &camera)]);
        assert_eq!(
            assert_ok(&idle, "stop idle"),
            json!({"message": "Decoding stopped (no task was running)", "camera_id": camera})
        );

        start_live(&daemon, &camera);
        let fields = [("camera_id", camera.as_str()), ("not_a_field", "x")];
        let stopped = encoding.post(&daemon, "/decode/stop/", &fields);
        assert_eq!(
            assert_ok(&stopped, "stop running"),
            json!({"message": "Decoding stopped", "camera_id": camera})
        );
        assert_eq!(daemon.status(&camera)["status"], "stopped");

        let again = encoding.post(&daemon, "/decode/stop/", &[("camera_id", &camera)]);
        assert_eq!(
            assert_ok(&again, "stop again")["message"],
            "Decoding stopped (no task was running)"
        );

        let missing = encoding.post(&daemon, "/decode/stop/", &[("x", "y")]);
        assert_error(&missing, 422, "stop without camera_id");
        let bad = encoding.post(&daemon, "/decode/stop/", &[("camera_id", "../x")]);
        assert_error(&bad, 400, "stop with a bad camera_id");
    }
}

#[test]
fn latest_frame_is_404_for_unknown_cameras_and_before_the_first_frame() {
    let daemon = Daemon::start();
    let unknown = daemon.get("/latest-frame/?camera_id=ghost");
    assert_eq!(assert_error(&unknown, 404, "unknown camera"), NO_TASK);
    start_live(&daemon, "waiting");
    let waiting = daemon.get("/latest-frame/?camera_id=waiting");
    assert_eq!(assert_error(&waiting, 404, "no frame yet"), NO_FRAMES);
    assert_error(
        &daemon.get("/latest-frame/"),
        422,
        "latest-frame without camera_id",
    );
    assert_error(
        &daemon.get("/latest-frame/?camera_id=a%2Fb"),
        400,
        "latest-frame with a bad camera_id",
    );
}

#[test]
fn unknown_routes_are_json_404() {
    let daemon = Daemon::start();
    for path in [
        "/nope",
        "/decode/nope",
        "/health/extra",
        "/api/v1/other/health",
    ] {
        assert_error(&daemon.get(path), 404, path);
    }
    let root_level = format!("http://127.0.0.1:{}/nope", daemon.port);
    let reply = match ureq::get(&root_level).call() {
        Err(ureq::Error::Status(_, response)) => Reply::from(response),
        other => panic!("expected an error status, got {other:?}"),
    };
    assert_error(&reply, 404, "/nope at the root");
}

#[test]
fn wrong_methods_are_json_405() {
    let daemon = Daemon::start();
    for (method, path) in [
        ("DELETE", "/health"),
        ("POST", "/health/"),
        ("GET", "/decode"),
        ("GET", "/decode/"),
        ("PUT", "/decode/stop/"),
        ("POST", "/decode/status/"),
        ("DELETE", "/latest-frame/"),
        ("POST", "/mjpeg/"),
        ("GET", "/video-info/"),
        ("GET", "/video-info-url"),
        ("POST", "/hw-accel-cap/"),
        ("DELETE", "/"),
    ] {
        assert_error(
            &daemon.request(method, path),
            405,
            &format!("{method} {path}"),
        );
    }
}

#[test]
fn oversized_uploads_are_413_and_leave_nothing_behind() {
    let daemon = Daemon::start_with(&[("MAX_UPLOAD_MB", "1")]);
    let big = vec![0x42u8; 2 * 1024 * 1024];
    let decode = daemon.post_multipart(
        "/decode/",
        &[("camera_id", "big")],
        &[("file", "big.mp4", &big)],
    );
    assert_error(&decode, 413, "decode upload");
    let info = daemon.post_multipart("/video-info/", &[], &[("video", "big.mp4", &big)]);
    assert_error(&info, 413, "video-info upload");
    assert!(
        entries(&daemon.uploads).is_empty(),
        "{:?}",
        entries(&daemon.uploads)
    );
    assert_eq!(daemon.status("big")["status"], "not_started");
}

#[test]
fn a_second_start_of_a_running_camera_is_already_running() {
    let daemon = Daemon::start();
    start_live(&daemon, "twice");
    let again = daemon.post_json(
        "/decode/",
        json!({"camera_id": "twice", "url": dead_rtsp()}),
    );
    let folder = daemon.camera_dir("twice").display().to_string();
    assert_eq!(
        assert_ok(&again, "second start"),
        json!({"message": "Decoding already running", "camera_id": "twice",
               "output_folder": folder, "status": "already_running"})
    );
    assert_eq!(camera_threads(&daemon, "twice"), 1);
}

#[test]
fn concurrent_starts_of_one_camera_give_one_worker() {
    let daemon = Arc::new(Daemon::start());
    for round in 0..4 {
        let camera = format!("race{round}");
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [Encoding::Urlencoded, Encoding::Json]
            .into_iter()
            .map(|encoding| {
                let (daemon, barrier, camera) =
                    (Arc::clone(&daemon), Arc::clone(&barrier), camera.clone());
                std::thread::spawn(move || {
                    let url = dead_rtsp();
                    barrier.wait();
                    let reply = encoding.post(
                        &daemon,
                        "/decode/",
                        &[("camera_id", &camera), ("url", &url)],
                    );
                    assert_ok(&reply, "racing start")["status"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
            })
            .collect();
        let mut outcomes: Vec<String> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        outcomes.sort();
        assert_eq!(outcomes, ["already_running", "started"], "round {round}");
        assert_eq!(camera_threads(&daemon, &camera), 1, "round {round}");
    }
}

#[test]
fn a_completed_file_serves_its_latest_frame_with_cache_headers() {
    let daemon = Daemon::start();
    let media = place(&daemon, clip());
    let fields = [
        ("camera_id", "clip"),
        ("url", media.to_str().unwrap()),
        ("fps", "5"),
    ];
    assert_eq!(
        assert_ok(&daemon.post_form("/decode/", &fields), "start")["status"],
        "started"
    );
    let status = wait_completed(&daemon, "clip");
    assert_eq!(status["status"], "completed", "{status}");
    let frames = frame_files(&daemon.camera_dir("clip"));
    let frame_count = status["frame_count"].as_u64().unwrap();
    assert!(frame_count > 0, "{status}");
    assert_eq!(frame_count, frames.len() as u64, "{frames:?}");

    let reply = daemon.get("/latest-frame/?camera_id=clip");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("image/jpeg"));
    assert!(reply.body.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert!(reply.header("last-modified").is_some());
    assert!(reply.header("x-captured-at").is_some());
    let seq: u64 = reply.header("x-frame-seq").unwrap().parse().unwrap();
    assert_eq!(seq, frame_count, "the newest frame is the last one written");
    let pts: f64 = reply.header("x-frame-pts").unwrap().parse().unwrap();
    assert!((0.0..=3.5).contains(&pts), "pts {pts}");
    let etag = reply.header("etag").expect("an ETag").to_owned();

    let cached = daemon.get_with("/latest-frame?camera_id=clip", &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    std::thread::sleep(Duration::from_millis(20));
    let old = daemon.get("/latest-frame/?camera_id=clip&max_age_ms=0");
    assert_error(&old, 404, "max_age_ms=0");
}

#[test]
fn decode_accepts_an_uploaded_file() {
    let daemon = Daemon::start();
    let video = std::fs::read(clip()).unwrap();
    let reply = daemon.post_multipart(
        "/decode/",
        &[("camera_id", "upload"), ("fps", "2"), ("not_a_field", "x")],
        &[("file", "clip.mp4", &video)],
    );
    assert_eq!(assert_ok(&reply, "upload start")["status"], "started");
    let status = wait_completed(&daemon, "upload");
    assert_eq!(status["status"], "completed", "{status}");
    let frames = frame_files(&daemon.camera_dir("upload")).len() as u64;
    assert!(frames > 0);
    assert_eq!(status["frame_count"], frames);
}

#[test]
fn video_info_reads_an_upload_and_deletes_it() {
    let daemon = Daemon::start();
    let video = std::fs::read(clip()).unwrap();
    let reply = daemon.post_multipart(
        "/video-info/",
        &[("not_a_field", "x")],
        &[("video", "clip.mp4", &video)],
    );
    let body = assert_ok(&reply, "video-info");
    assert_eq!(body["message"], "Video information retrieved");
    assert_clip_info(&body["info"]);
    assert!(
        entries(&daemon.uploads).is_empty(),
        "{:?}",
        entries(&daemon.uploads)
    );

    let missing = daemon.post_multipart("/video-info/", &[("x", "y")], &[]);
    assert_error(&missing, 422, "video-info without a file");
}

#[test]
fn video_info_on_a_text_file_is_400_and_deletes_it() {
    let daemon = Daemon::start();
    let text = b"this is not a video, just some words\n".repeat(100);
    let reply = daemon.post_multipart("/video-info/", &[], &[("video", "notes.txt", &text)]);
    let detail = assert_error(&reply, 400, "text file");
    assert!(
        detail.starts_with("Could not retrieve video information: "),
        "{detail}"
    );
    assert!(
        entries(&daemon.uploads).is_empty(),
        "{:?}",
        entries(&daemon.uploads)
    );
}

#[test]
fn video_info_url_reads_an_allowed_file_in_every_encoding() {
    let daemon = Daemon::start();
    let media = place(&daemon, clip());
    let path = media.to_str().unwrap();
    for encoding in ENCODINGS {
        let fields = [("url", path), ("not_a_field", "x")];
        let body = assert_ok(&encoding.post(&daemon, "/video-info-url/", &fields), path);
        assert_eq!(body["message"], "Video information retrieved");
        assert_clip_info(&body["info"]);
        let missing = encoding.post(&daemon, "/video-info-url/", &[("x", "y")]);
        assert_error(&missing, 422, "video-info-url without url");
    }
}

#[test]
fn video_info_url_refuses_forbidden_sources() {
    let daemon = Daemon::start();
    let outside = daemon.dir.path().join("outside.mp4");
    std::fs::copy(clip(), &outside).unwrap();
    let outside = outside.display().to_string();
    let forbidden = [
        "concat:/etc/passwd|/etc/hosts",
        "subfile:,start,0,end,10,:/etc/passwd",
        "data:video/mp4;base64,AAAA",
        "pipe:0",
        "file:///etc/passwd",
        outside.as_str(),
    ];
    for encoding in ENCODINGS {
        for url in forbidden {
            let reply = encoding.post(&daemon, "/video-info-url/", &[("url", url)]);
            assert_error(&reply, 400, &format!("{url}, {encoding:?}"));
        }
    }
}

/// The values of the clip made by `h264_small(3)`: 320x240, 25 fps, 3 s.
fn assert_clip_info(info: &Value) {
    assert_eq!(info["format"], MP4_DEMUXER, "{info}");
    assert_eq!(info["codec"], "h264", "{info}");
    assert_eq!(info["width"], 320, "{info}");
    assert_eq!(info["height"], 240, "{info}");
    let fps = info["fps"].as_f64().unwrap();
    assert!((fps - 25.0).abs() < 0.01, "{info}");
    let duration = info["duration"].as_f64().unwrap();
    assert!((duration - 3.0).abs() < 0.2, "{info}");
}

#[test]
fn hw_accel_cap_lists_only_known_backends_and_explains_the_others() {
    let daemon = Daemon::start();
    let body = assert_ok(&daemon.get("/hw-accel-cap/"), "hw-accel-cap");
    let available = body["message"]["available_hw_accelerations"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"));
    let unavailable = body["unavailable"]
        .as_object()
        .unwrap_or_else(|| panic!("no unavailable map: {body}"));
    for backend in available {
        let name = backend.as_str().unwrap();
        assert!(
            video_pipeline::media::hw::KNOWN_BACKENDS.contains(&name),
            "{name}"
        );
        assert!(!unavailable.contains_key(name), "{name} is both");
    }
    for (name, reason) in unavailable {
        assert!(
            video_pipeline::media::hw::KNOWN_BACKENDS.contains(&name.as_str()),
            "{name}"
        );
        assert!(!reason.as_str().unwrap_or_default().is_empty(), "{name}");
    }
    if !has_gpu_devices() {
        assert!(available.is_empty(), "{body}");
        for name in ["cuda", "vaapi", "qsv"] {
            assert!(unavailable.contains_key(name), "{name} unexplained: {body}");
        }
    }
}

/// Whether this machine exposes any device a hardware decoder could use.
fn has_gpu_devices() -> bool {
    let nvidia = Path::new("/dev/nvidia0").exists();
    let dri = std::fs::read_dir("/dev/dri")
        .map(|mut list| list.next().is_some())
        .unwrap_or(false);
    nvidia || dri
}

#[test]
fn malformed_or_mistyped_bodies_are_422() {
    let daemon = Daemon::start();
    let broken = daemon.post_raw("/decode/", "application/json", b"{\"camera_id\": ");
    assert_error(&broken, 422, "broken JSON");
    let list = daemon.post_raw("/decode/", "application/json", b"[\"camera_id\"]");
    assert_error(&list, 422, "JSON list");
    let nested = daemon.post_json("/decode/", json!({"camera_id": ["a"], "url": dead_rtsp()}));
    assert_error(&nested, 422, "camera_id as a list");
    let stop = daemon.post_json("/decode/stop/", json!({"camera_id": {"a": 1}}));
    assert_error(&stop, 422, "stop with an object");
    // A multipart body cut short (no closing boundary) is answered, not waited for;
    // a file part cut short leaves no upload behind.
    let part = |name: &str| format!("--B\r\nContent-Disposition: form-data; name={name}\r\n\r\n");
    let cut = format!("{}cam\r\n", part("\"camera_id\""));
    let reply = daemon.post_raw(
        "/decode/",
        "multipart/form-data; boundary=B",
        cut.as_bytes(),
    );
    assert_error(&reply, 422, "a field cut short");
    let cut = format!("{}\0\0\0\x18ftyp\r\n", part("\"file\"; filename=\"a.mp4\""));
    let reply = daemon.post_raw(
        "/decode/",
        "multipart/form-data; boundary=B",
        cut.as_bytes(),
    );
    assert_error(&reply, 400, "a file part cut short");
    assert!(entries(&daemon.uploads).is_empty());
    assert!(entries(&daemon.output).is_empty());
}

#[test]
fn refused_starts_with_an_upload_leave_nothing_behind() {
    let daemon = Daemon::start();
    let video = std::fs::read(clip()).unwrap();
    let file = [("file", "clip.mp4", video.as_slice())];
    for (fields, status) in [
        (&[("camera_id", "../x")][..], 400),
        (&[("camera_id", "ok"), ("fps", "0")][..], 400),
        (&[("camera_id", "ok"), ("fps", "abc")][..], 422),
        (&[("camera_id", "ok"), ("force_format", "warp")][..], 400),
        (&[("fps", "1")][..], 422),
    ] {
        let reply = daemon.post_multipart("/decode/", fields, &file);
        assert_error(&reply, status, &format!("{fields:?}"));
        assert!(
            entries(&daemon.uploads).is_empty(),
            "{fields:?}: {:?}",
            entries(&daemon.uploads)
        );
    }
    let empty = daemon.post_multipart("/decode/", &[("camera_id", "ok")], &[("file", "", b"")]);
    assert_eq!(assert_error(&empty, 400, "empty file part"), NO_SOURCE);
    let wrong_field = daemon.post_multipart("/video-info/", &[], &[("file", "clip.mp4", &video)]);
    assert_error(
        &wrong_field,
        422,
        "video-info with the file under another name",
    );
    assert!(
        entries(&daemon.uploads).is_empty(),
        "{:?}",
        entries(&daemon.uploads)
    );
    assert!(
        entries(&daemon.output).is_empty(),
        "{:?}",
        entries(&daemon.output)
    );
}

#[test]
fn a_failing_live_source_keeps_running_and_redacts_credentials() {
    let daemon = Daemon::start();
    let url = format!("rtsp://admin:hunter2@127.0.0.1:{}/x", free_port());
    let reply = daemon.post_form("/decode/", &[("camera_id", "secret"), ("url", &url)]);
    assert_eq!(assert_ok(&reply, "start")["status"], "started");
    let status = daemon.wait_status("secret", Duration::from_secs(30), |s| {
        s["restart_count"].as_u64().unwrap_or(0) >= 1 && s["last_error"].is_string()
    });
    assert_eq!(status["status"], "running", "{status}");
    assert_eq!(status["frame_count"], 0, "{status}");
    assert_eq!(status["source"], url.replace("hunter2", "***"), "{status}");
    for key in ["phase", "fps", "hwaccel", "started_at", "output_folder"] {
        assert!(!status[key].is_null(), "{key} missing: {status}");
    }
    assert!(!status.to_string().contains("hunter2"), "{status}");
    assert!(
        !daemon.log_text().contains("hunter2"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn a_new_session_clears_old_frames_and_numbers_from_one() {
    let daemon = Daemon::start();
    let media = place(&daemon, clip());
    let fields = [
        ("camera_id", "again"),
        ("url", media.to_str().unwrap()),
        ("fps", "5"),
    ];
    assert_ok(&daemon.post_form("/decode/", &fields), "first session");
    assert_eq!(wait_completed(&daemon, "again")["status"], "completed");
    let stray = daemon.camera_dir("again").join("frame_0999.jpg");
    std::fs::write(&stray, b"old").unwrap();

    let second = assert_ok(&daemon.post_form("/decode/", &fields), "second session");
    assert_eq!(second["status"], "started", "a finished camera starts anew");
    let status = wait_completed(&daemon, "again");
    assert_eq!(status["status"], "completed", "{status}");
    let count = status["frame_count"].as_u64().unwrap();
    let frames = frame_files(&daemon.camera_dir("again"));
    assert!(!stray.exists(), "old frames are cleared");
    assert_eq!(frames.len() as u64, count);
    let last = frames
        .last()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(last, format!("frame_{count:04}.jpg"));
}

#[test]
fn without_clear_on_start_numbering_continues() {
    let daemon = Daemon::start_with(&[("CLEAR_ON_START", "false")]);
    let media = place(&daemon, clip());
    let fields = [
        ("camera_id", "keep"),
        ("url", media.to_str().unwrap()),
        ("fps", "5"),
    ];
    assert_ok(&daemon.post_form("/decode/", &fields), "first session");
    let first = wait_completed(&daemon, "keep")["frame_count"]
        .as_u64()
        .unwrap();
    assert_ok(&daemon.post_form("/decode/", &fields), "second session");
    let status = wait_completed(&daemon, "keep");
    assert_eq!(status["status"], "completed", "{status}");
    let second = status["frame_count"].as_u64().unwrap();
    let frames = frame_files(&daemon.camera_dir("keep"));
    assert_eq!(frames.len() as u64, first + second);
    let last = frames
        .last()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(last, format!("frame_{:04}.jpg", first + second));
}

#[test]
fn cameras_lists_every_camera_with_its_status_and_filters_by_it() {
    let daemon = Daemon::start();
    let media = place(&daemon, clip());
    let done = [
        ("camera_id", "b-done"),
        ("url", media.to_str().unwrap()),
        ("fps", "5"),
    ];
    assert_ok(&daemon.post_form("/decode/", &done), "start b-done");
    daemon.wait_status("b-done", Duration::from_secs(60), |s| {
        s["status"] == "completed"
    });
    let live = [("camera_id", "a-live"), ("url", &dead_rtsp())];
    assert_ok(&daemon.post_form("/decode/", &live), "start a-live");

    for path in ["/cameras", "/cameras/"] {
        let all = assert_ok(&daemon.get(path), path);
        assert_eq!(all["count"], 2, "{all}");
        let ids: Vec<&str> = all["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["camera_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a-live", "b-done"], "{all}");
    }
    // The same objects as decode/status/ (a finished camera's status no longer moves).
    let completed = assert_ok(&daemon.get("/cameras/?status=completed"), "completed");
    assert_eq!(completed["count"], 1, "{completed}");
    assert_eq!(completed["cameras"][0], daemon.status("b-done"));
    assert_eq!(completed["cameras"][0]["progress"], 1.0, "{completed}");
    let running = assert_ok(&daemon.get("/cameras/?status=running"), "running");
    assert_eq!(running["cameras"][0]["camera_id"], "a-live", "{running}");
    assert_eq!(running["count"], 1, "{running}");
    let stopped = assert_ok(&daemon.get("/cameras/?status=stopped"), "stopped");
    assert_eq!(stopped["count"], 0, "{stopped}");
    let detail = assert_error(&daemon.get("/cameras/?status=paused"), 400, "paused");
    assert!(
        detail.contains("allowed values: running, completed, stopped, error"),
        "{detail}"
    );
}
