//! Live RTSP cameras against a real RTSP server (GStreamer's, driven by
//! `tests/support/rtsp_server.py`): streaming over TCP and over UDP, and a frozen server
//! whose reads time out. Unreachable, silent, killed and denying servers, and
//! credentials in their errors, are in `tests/live_robustness.rs`.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::rtsp::{
    assert_jpeg_320x240, frame_count, frame_number, quick_status, restart_count, start_camera,
    start_camera_with, stop_camera, RtspServer, FRAMES_TIMEOUT,
};
use common::{frame_files, free_port, Daemon};
use serde_json::Value;

#[test]
fn a_camera_streams_frames() {
    let mut server = RtspServer::test_pattern();
    let daemon = Daemon::start();
    start_camera(&daemon, "cam", &server.url());

    let first = daemon.wait_status("cam", FRAMES_TIMEOUT, |s| frame_count(s) >= 2);
    assert_eq!(first["status"], "running", "{first}");
    assert_eq!(first["phase"], "streaming", "{first}");
    assert_eq!(first["last_error"], Value::Null, "{first}");
    assert_eq!(first["restart_count"], 0, "{first}");
    let later = daemon.wait_status("cam", FRAMES_TIMEOUT, |s| {
        frame_count(s) >= frame_count(&first) + 3
    });
    assert_eq!(later["status"], "running", "{later}");

    let files = frame_files(&daemon.camera_dir("cam"));
    assert!(files.len() >= 5, "{files:?}");
    assert_eq!(frame_number(&files[0]), 1, "{files:?}");
    assert_jpeg_320x240(&std::fs::read(&files[0]).unwrap(), "the first frame file");

    let latest = daemon.get("/latest-frame/?camera_id=cam");
    assert_eq!(latest.status, 200);
    assert_eq!(latest.header("content-type"), Some("image/jpeg"));
    assert_jpeg_320x240(&latest.body, "latest-frame/");

    let stop_took = stop_camera(&daemon, "cam");
    eprintln!("stop while streaming answered in {stop_took:?}");
    let exit = server.terminate();
    assert!(
        exit.is_some_and(|s| s.success()),
        "the RTSP test server must exit cleanly on SIGTERM: {exit:?}\n{}",
        server.log_text()
    );
}

#[test]
fn a_looped_file_streams_over_udp() {
    let clip = common::h264_small(2);
    let server = RtspServer::start(free_port(), &["--file", clip.to_str().unwrap()]);
    let daemon = Daemon::start();
    start_camera_with(&daemon, "udp", &server.url(), &[("rtsp_transport", "udp")]);

    // 2 s of video at 5 fps: more than 12 frames means the file went round again.
    let status = daemon.wait_status("udp", FRAMES_TIMEOUT, |s| frame_count(s) >= 14);
    assert_eq!(status["status"], "running", "{status}");
    assert_eq!(status["phase"], "streaming", "{status}");
    assert_eq!(status["restart_count"], 0, "{status}");
    let latest = daemon.get("/latest-frame/?camera_id=udp");
    assert_eq!(latest.status, 200);
    assert_jpeg_320x240(&latest.body, "latest-frame/ over UDP");
    stop_camera(&daemon, "udp");
}

#[test]
fn a_frozen_server_times_out_and_recovers() {
    let server = RtspServer::test_pattern();
    let daemon = Daemon::start_with(&[("READ_TIMEOUT_SECONDS", "3")]);
    start_camera(&daemon, "stuck", &server.url());
    daemon.wait_status("stuck", FRAMES_TIMEOUT, |s| frame_count(s) >= 2);

    // The process stops but its sockets stay open: no data, no end of stream.
    server.signal("STOP");
    let frozen = Instant::now();
    let mut status = quick_status(&daemon, "stuck");
    let mut frames = frame_count(&status);
    let mut last_frame_seen = frozen;
    while restart_count(&status) == 0 {
        if frame_count(&status) != frames {
            frames = frame_count(&status);
            last_frame_seen = Instant::now();
        }
        assert!(
            frozen.elapsed() < FRAMES_TIMEOUT,
            "a stalled read was never given up: {status}\n{}",
            daemon.log_text()
        );
        assert_eq!(status["status"], "running", "{status}");
        thread::sleep(Duration::from_millis(100));
        status = quick_status(&daemon, "stuck");
    }
    let noticed = frozen.elapsed();
    eprintln!(
        "frozen server: read gave up after {noticed:?}, {:?} after the last new frame",
        last_frame_seen.elapsed()
    );
    assert_eq!(status["status"], "running", "{status}");
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("timed out") || error.contains("stalled"),
        "{status}"
    );
    // Once, not twice: a read cut short must not be followed by another full wait.
    assert!(
        noticed < Duration::from_secs(5),
        "the 3 s read timeout took {noticed:?}"
    );

    server.signal("CONT");
    let count = frame_count(&quick_status(&daemon, "stuck"));
    let thawed = Instant::now();
    daemon.wait_status("stuck", FRAMES_TIMEOUT, |s| {
        s["phase"] == "streaming" && frame_count(s) >= count + 2
    });
    eprintln!(
        "frozen server: frames again {:?} after it resumed",
        thawed.elapsed()
    );
    stop_camera(&daemon, "stuck");
}
