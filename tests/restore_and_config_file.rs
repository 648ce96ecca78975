//! Surviving restarts and starting from a file: the running cameras are saved to
//! `STATE_FILE` and resumed after a SIGKILL with their parameters and numbering; the
//! stopped and completed ones stay off; a corrupt state file is set aside; `CONFIG_FILE`
//! starts its cameras at boot and points at the line of a bad key.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::rtsp::{frame_count, frame_number, start_camera_with, stop_camera, RtspServer};
use common::{binary, frame_files, free_port, h264_small, place, Daemon};
use serde_json::Value;

const START: Duration = Duration::from_secs(20);

fn running_with_frames(status: &Value) -> bool {
    status["status"] == "running" && frame_count(status) >= 2
}

fn highest_frame(dir: &Path) -> u64 {
    frame_files(dir).last().map_or(0, |p| frame_number(p))
}

#[test]
fn a_killed_daemon_resumes_its_running_cameras_and_only_those() {
    let rtsp = RtspServer::test_pattern();
    let mut daemon = Daemon::start();
    let clip = place(&daemon, &h264_small(2));
    let clip = clip.to_str().unwrap();
    let looped = [("realtime", "true"), ("loop", "true"), ("fps", "4")];
    start_camera_with(
        &daemon,
        "live",
        &rtsp.url(),
        &[("fps", "3"), ("sampling", "keyframes")],
    );
    start_camera_with(&daemon, "looped", clip, &looped);
    start_camera_with(&daemon, "stopped", clip, &looped);
    start_camera_with(&daemon, "finite", clip, &[("fps", "2")]);
    daemon.wait_status("finite", START, |s| s["status"] == "completed");
    for camera in ["live", "looped", "stopped"] {
        daemon.wait_status(camera, START, running_with_frames);
    }
    stop_camera(&daemon, "stopped");
    let before = |camera: &str| highest_frame(&daemon.camera_dir(camera));
    let (live_before, looped_before) = (before("live"), before("looped"));
    let finite_frames = frame_files(&daemon.camera_dir("finite")).len();

    daemon.kill_and_restart();

    for (camera, highest_before) in [("live", live_before), ("looped", looped_before)] {
        let status = daemon.wait_status(camera, START, running_with_frames);
        let dir = daemon.camera_dir(camera);
        assert!(
            dir.join("frame_0001.jpg").exists(),
            "{camera}: the old frames were cleared"
        );
        daemon.wait_status(camera, START, |_| highest_frame(&dir) > highest_before + 1);
        let numbers: Vec<u64> = frame_files(&dir).iter().map(|p| frame_number(p)).collect();
        let mut unique = numbers.clone();
        unique.dedup();
        assert_eq!(numbers, unique, "{camera}: {numbers:?}");
        assert_eq!(status["restart_count"], 0, "{camera}: {status}");
    }
    let live = daemon.status("live");
    assert_eq!(live["fps"], 3.0, "{live}");
    assert_eq!(live["sampling"], "keyframes", "{live}");
    let looped = daemon.status("looped");
    assert_eq!(looped["fps"], 4.0, "{looped}");
    assert_eq!(
        (looped["realtime"].clone(), looped["loop"].clone()),
        (true.into(), true.into())
    );
    for camera in ["stopped", "finite"] {
        assert_eq!(daemon.status(camera)["status"], "not_started", "{camera}");
    }
    assert_eq!(
        frame_files(&daemon.camera_dir("finite")).len(),
        finite_frames,
        "the completed camera's frames are left as they were"
    );
    let log = daemon.log_text();
    assert!(log.contains("[looped] resuming after a restart"), "{log}");
}

#[test]
fn a_truncated_state_file_is_set_aside_with_a_log_line() {
    let mut daemon = Daemon::start();
    let clip = place(&daemon, &h264_small(2));
    start_camera_with(
        &daemon,
        "cam",
        clip.to_str().unwrap(),
        &[("realtime", "true"), ("loop", "true")],
    );
    let saved = std::fs::read(&daemon.state_file).unwrap();
    assert!(String::from_utf8_lossy(&saved).contains("\"cam\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&daemon.state_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    daemon.child.kill().unwrap();
    std::fs::write(&daemon.state_file, &saved[..saved.len() / 2]).unwrap();

    daemon.kill_and_restart();

    assert_eq!(daemon.status("cam")["status"], "not_started");
    let health = daemon.get("/health/");
    assert_eq!(health.status, 200);
    let aside: Vec<String> = std::fs::read_dir(daemon.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let log = daemon.log_text();
    assert!(
        log.contains("is not valid saved state") && log.contains(&aside[0]),
        "{log}"
    );
}

#[test]
fn uploads_of_resumed_cameras_survive_and_unused_ones_go() {
    let mut daemon = Daemon::start();
    let clip = std::fs::read(h264_small(2)).unwrap();
    let reply = daemon.post_multipart(
        "/decode/",
        &[("camera_id", "up"), ("realtime", "true"), ("loop", "true")],
        &[("file", "clip.mp4", &clip)],
    );
    reply.assert_ok();
    let leftover = daemon.uploads.join("1700000000000-0badcafe-old.mp4");
    std::fs::write(&leftover, b"an upload whose camera is gone").unwrap();
    let mine = daemon.uploads.join("sample.mp4");
    std::fs::write(&mine, b"placed by the operator").unwrap();
    daemon.wait_status("up", START, running_with_frames);

    daemon.kill_and_restart();

    daemon.wait_status("up", START, running_with_frames);
    assert!(!leftover.exists(), "an unused upload was kept");
    assert!(mine.exists(), "a file that is not an upload was removed");
    let uploads = std::fs::read_dir(&daemon.uploads).unwrap().count();
    assert_eq!(uploads, 2, "the camera's upload and the operator's file");
}

/// Runs the binary until it exits (it must, within 5 s); returns the code and stderr.
fn run_refused(dir: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", free_port().to_string())
        .env("OUTPUT_FOLDER", dir.join("frames"))
        .env("UPLOAD_FOLDER", dir.join("videos"))
        .env("STATE_FILE", dir.join("state.json"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_config_file_starts_its_cameras_at_boot() {
    let media = tempfile::tempdir().unwrap();
    let clip = media.path().join("clip.mp4");
    std::fs::copy(h264_small(2), &clip).unwrap();
    let config = media.path().join("video-pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "jpeg_quality = 70\nallowed_input_dirs = [{dir:?}]\n\n\
             [[camera]]\nid = \"first\"\nurl = {clip:?}\nfps = 2\nrealtime = true\nloop = true\n\n\
             [[camera]]\nid = \"second\"\nsource = {clip:?}\nfps = 3\nsampling = \"keyframes\"\n",
            dir = media.path(),
            clip = clip
        ),
    )
    .unwrap();
    let daemon = Daemon::start_with(&[
        ("CONFIG_FILE", config.to_str().unwrap()),
        // The environment wins over the file.
        ("ALLOWED_INPUT_DIRS", media.path().to_str().unwrap()),
    ]);
    let first = daemon.wait_status("first", START, running_with_frames);
    assert_eq!(first["fps"], 2.0, "{first}");
    assert_eq!(first["loop"], true, "{first}");
    let second = daemon.wait_status("second", START, |s| s["status"] == "completed");
    assert_eq!(second["sampling"], "keyframes", "{second}");
    assert!(frame_count(&second) > 0, "{second}");
    let log = daemon.log_text();
    assert!(
        log.contains("[first] starting from the config file"),
        "{log}"
    );
}

#[test]
fn a_bad_config_file_stops_the_start_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vp.toml");
    let path = config.to_str().unwrap();
    let cases = [
        ("port = 8100\njpg_quality = 80\n", ":2:", "jpg_quality"),
        ("port = 8100\n\njpeg_quality = 0\n", ":3:", "JPEG_QUALITY"),
        (
            "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/s\"\nrate = 5\n",
            ":4:",
            "rate",
        ),
        (
            "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/s\"\nfps = 500\n",
            ":4:",
            "fps",
        ),
        (
            "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/s\"\nwidth = 640\ncrop = \"1,0,64,64\"\n",
            ":5:",
            "crop",
        ),
        ("port = \n", ":1:", "TOML"),
    ];
    for (text, line, word) in cases {
        std::fs::write(&config, text).unwrap();
        let (code, stderr) = run_refused(dir.path(), &[("CONFIG_FILE", path)]);
        assert_eq!(code, 2, "{text:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("{path}{line}")) && stderr.contains(word),
            "{text:?}: {stderr}"
        );
    }
    let (code, stderr) = run_refused(dir.path(), &[("CONFIG_FILE", "/no/such/file.toml")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/no/such/file.toml"), "{stderr}");
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    let output = Command::new(binary()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for setting in &video_pipeline::config::SETTINGS {
        assert!(
            help.contains(setting.name),
            "{} missing:\n{help}",
            setting.name
        );
        assert!(help.contains(setting.meaning), "{}:\n{help}", setting.name);
        if let Some(flag) = setting.flag {
            assert!(
                help.contains(&format!("--{flag} <VALUE>")),
                "{flag}:\n{help}"
            );
        }
        if !setting.default.is_empty() {
            assert!(
                help.contains(&format!("[default: {}]", setting.default)),
                "{}:\n{help}",
                setting.name
            );
        }
    }
}
