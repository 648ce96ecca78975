//! Live RTSP cameras against a real RTSP server (GStreamer's, driven by
//! `tests/support/rtsp_server.py`): streaming, unreachable and silent servers, a server
//! that dies and comes back, and credentials that must never be shown.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::rtsp::{
    frame_count, frame_number, quick_status, restart_count, snapshot_frames, start_camera,
    start_camera_with, stop_camera, RtspServer, FRAMES_TIMEOUT, STREAM_PATH,
};
use common::servers::SilentServer;
use common::{frame_files, free_port, Daemon};
use serde_json::Value;

fn assert_jpeg_320x240(bytes: &[u8], what: &str) {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .unwrap_or_else(|e| panic!("{what} is not a JPEG: {e}"));
    assert_eq!((image.width(), image.height()), (320, 240), "{what}");
}

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
fn an_unreachable_camera_retries_with_backoff() {
    let closed = free_port();
    let daemon = Daemon::start();
    start_camera(
        &daemon,
        "gone",
        &format!("rtsp://127.0.0.1:{closed}{STREAM_PATH}"),
    );

    let started = Instant::now();
    let mut first_restart: Option<Instant> = None;
    let mut third_restart: Option<Instant> = None;
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(6) {
        let status = quick_status(&daemon, "gone");
        assert_eq!(status["status"], "running", "{status}");
        let restarts = restart_count(&status);
        if restarts >= 1 {
            let phase = status["phase"].as_str().unwrap_or_default();
            assert!(
                matches!(phase, "reconnecting" | "connecting" | "error"),
                "{status}"
            );
            let error = status["last_error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&format!("127.0.0.1:{closed}")) && error.contains("refused"),
                "last_error should say what failed and where: {status}"
            );
            first_restart.get_or_insert_with(Instant::now);
        }
        if restarts >= 3 && third_restart.is_none() {
            third_restart = Some(Instant::now());
        }
        last = status;
        thread::sleep(Duration::from_millis(50));
    }
    let first_at =
        first_restart.unwrap_or_else(|| panic!("never retried: {last}\n{}", daemon.log_text()));
    let third_at = third_restart
        .unwrap_or_else(|| panic!("fewer than 3 retries in 6 s: {last}\n{}", daemon.log_text()));
    // The first two delays are at least 0.25 s and 0.5 s; without backoff a refused
    // connection is retried within milliseconds.
    let gap = third_at - first_at;
    eprintln!(
        "refused: first retry after {:?}, 1st→3rd retry {gap:?}, {} retries in 6 s",
        first_at - started,
        restart_count(&last)
    );
    assert!(gap >= Duration::from_millis(600), "no backoff: {gap:?}");
    assert!(restart_count(&last) <= 8, "no backoff: {last}");

    let stop_took = stop_camera(&daemon, "gone");
    eprintln!("stop while reconnecting answered in {stop_took:?}");
}

#[test]
fn a_silent_server_never_hangs_the_camera() {
    let silent = SilentServer::start();
    let daemon = Daemon::start_with(&[("OPEN_TIMEOUT_SECONDS", "2")]);
    start_camera(
        &daemon,
        "mute",
        &format!("rtsp://127.0.0.1:{}{STREAM_PATH}", silent.port),
    );

    // While the first connection hangs, the status still answers at once.
    let deadline = Instant::now() + FRAMES_TIMEOUT;
    while silent.accepted() == 0 {
        assert!(Instant::now() < deadline, "the camera never connected");
        thread::sleep(Duration::from_millis(20));
    }
    let connected = Instant::now();
    let status = quick_status(&daemon, "mute");
    assert_eq!(status["status"], "running", "{status}");
    assert_eq!(status["frame_count"], 0, "{status}");

    // The open timeout gives up on it and the camera tries again.
    let retried = daemon.wait_status("mute", FRAMES_TIMEOUT, |s| restart_count(s) >= 1);
    let gave_up_after = connected.elapsed();
    assert_eq!(retried["status"], "running", "{retried}");
    let error = retried["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out"), "{retried}");
    assert!(
        gave_up_after < Duration::from_secs(5),
        "the 2 s open timeout took {gave_up_after:?}"
    );
    eprintln!("silent server: open gave up after {gave_up_after:?}");

    // Stop while the second connection hangs.
    let deadline = Instant::now() + FRAMES_TIMEOUT;
    while silent.accepted() < 2 {
        assert!(Instant::now() < deadline, "the camera never reconnected");
        thread::sleep(Duration::from_millis(20));
    }
    let stop_took = stop_camera(&daemon, "mute");
    eprintln!("stop during a hanging open answered in {stop_took:?}");
}

#[test]
fn a_camera_survives_a_server_restart() {
    let mut server = RtspServer::test_pattern();
    let port = server.port;
    let daemon = Daemon::start_with(&[("READ_TIMEOUT_SECONDS", "3")]);
    start_camera(&daemon, "flaky", &server.url());
    daemon.wait_status("flaky", FRAMES_TIMEOUT, |s| frame_count(s) >= 3);

    let dir = daemon.camera_dir("flaky");
    server.kill();
    let killed = Instant::now();
    let down = daemon.wait_status("flaky", FRAMES_TIMEOUT, |s| restart_count(s) >= 1);
    eprintln!("server killed: noticed after {:?}", killed.elapsed());
    assert_eq!(down["status"], "running", "{down}");
    assert!(down["last_error"].is_string(), "{down}");
    let before = snapshot_frames(&dir);
    let highest_before = *before.keys().last().unwrap();
    let count_before = frame_count(&daemon.status("flaky"));

    // Down for a while: the camera keeps trying and never gives up or crashes.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(2) {
        let status = quick_status(&daemon, "flaky");
        assert_eq!(status["status"], "running", "{status}");
        assert_ne!(status["phase"], "streaming", "{status}");
        thread::sleep(Duration::from_millis(100));
    }

    let _server = RtspServer::start(port, &[]);
    let restarted = Instant::now();
    let back = daemon.wait_status("flaky", FRAMES_TIMEOUT, |s| {
        s["phase"] == "streaming" && frame_count(s) >= count_before + 3
    });
    eprintln!(
        "server restarted: frames again after {:?}, restart_count {}",
        restarted.elapsed(),
        restart_count(&back)
    );
    assert_eq!(back["status"], "running", "{back}");
    assert!(restart_count(&back) >= 1, "{back}");

    let after = snapshot_frames(&dir);
    let highest_after = *after.keys().last().unwrap();
    assert!(
        highest_after >= highest_before + 3,
        "numbering must continue: {highest_before} then {highest_after}"
    );
    for (number, bytes) in &before {
        assert!(
            after.get(number) == Some(bytes),
            "frame {number} was removed or rewritten after the reconnect"
        );
    }
    let latest = daemon.get("/latest-frame/?camera_id=flaky");
    assert_eq!(latest.status, 200);
    let seq: u64 = latest.header("x-frame-seq").unwrap().parse().unwrap();
    assert!(
        seq >= highest_after,
        "latest frame {seq}, files up to {highest_after}"
    );
    assert_jpeg_320x240(&latest.body, "latest-frame/ after the reconnect");
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

#[test]
fn credentials_never_show() {
    const PASSWORD: &str = "Zq7-pass-word-9xK";
    let server = RtspServer::start(free_port(), &["--user", "viewer", "--password", PASSWORD]);
    let daemon = Daemon::start();
    start_camera(
        &daemon,
        "private",
        &server.url_with_credentials("viewer", PASSWORD),
    );
    start_camera(
        &daemon,
        "denied",
        &server.url_with_credentials("viewer", "wrong-Zq7-pass-word-9xK"),
    );

    let streaming = daemon.wait_status("private", FRAMES_TIMEOUT, |s| frame_count(s) >= 2);
    assert_eq!(
        streaming["source"],
        format!("rtsp://viewer:***@127.0.0.1:{}{STREAM_PATH}", server.port),
        "{streaming}"
    );
    let refused = daemon.wait_status("denied", FRAMES_TIMEOUT, |s| restart_count(s) >= 1);
    assert_eq!(refused["status"], "running", "{refused}");
    let error = refused["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("401") || error.contains("authoriz"),
        "{refused}"
    );
    assert!(error.contains("viewer:***@"), "{refused}");

    for camera in ["private", "denied"] {
        let status = daemon.status(camera).to_string();
        assert!(!status.contains("pass-word"), "{status}");
        stop_camera(&daemon, camera);
    }
    let log = daemon.log_text();
    assert!(
        log.contains("viewer:***@"),
        "the log names the camera: {log}"
    );
    assert!(!log.contains("pass-word"), "password in the log:\n{log}");
}
