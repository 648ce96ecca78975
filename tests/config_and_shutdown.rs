//! Start-up validation (a bad value stops the daemon with one line and exit code 2)
//! and graceful shutdown on SIGTERM and SIGINT, against the real binary.

// The shared harness hands back ureq's large error type by value.
mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{binary, free_port, h264_small, place, unsafe_kill, Daemon};

/// How long a daemon refusing its configuration may take to exit.
const CONFIG_EXIT: Duration = Duration::from_secs(5);
/// The contract's bound on a graceful shutdown.
const SHUTDOWN: Duration = Duration::from_secs(5);
/// Exit code for a configuration value that cannot be used.
const EXIT_CONFIG: i32 = 2;

/// Runs the daemon with valid folders and a free port plus `env` and `args`; returns
/// its exit code and stderr, or panics if it is still running after [`CONFIG_EXIT`].
fn run_with(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", free_port().to_string())
        .env("OUTPUT_FOLDER", dir.path().join("frames"))
        .env("UPLOAD_FOLDER", dir.path().join("videos"))
        .env("STATE_FILE", dir.path().join("state.json"))
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + CONFIG_EXIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {CONFIG_EXIT:?} with {env:?} {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code().expect("exited, not killed"), stderr)
}

/// The daemon refuses to start: exit code 2 and one line on stderr naming `variable`.
fn assert_refused(env: &[(&str, &str)], args: &[&str], variable: &str) {
    let (code, stderr) = run_with(env, args);
    assert_eq!(code, EXIT_CONFIG, "{env:?} {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{env:?} {args:?}: {stderr:?}");
    assert!(lines[0].contains(variable), "{env:?} {args:?}: {stderr:?}");
}

#[test]
fn bad_values_stop_the_daemon_with_one_line_and_exit_code_2() {
    for (variable, value) in [
        ("PORT", "abc"),
        ("PORT", "0"),
        ("PORT", "65536"),
        ("PORT", "-1"),
        ("JPEG_QUALITY", "0"),
        ("JPEG_QUALITY", "101"),
        ("JPEG_QUALITY", "high"),
        ("HOST", "nonsense"),
        ("STALE_FRAME_SECONDS", "-1"),
        ("PROBE_TIMEOUT_SECONDS", "soon"),
        ("MAX_UPLOAD_MB", "0"),
        ("HW_ACCEL_OPTIONS", "[\"warp-drive\"]"),
        ("CLEAR_ON_START", "maybe"),
        ("LOG_FORMAT", "xml"),
    ] {
        assert_refused(&[(variable, value)], &[], variable);
    }
}

#[test]
fn with_json_logs_a_bad_value_is_one_json_line() {
    let (code, stderr) = run_with(&[("LOG_FORMAT", "json"), ("PORT", "abc")], &[]);
    assert_eq!(code, EXIT_CONFIG, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr:?}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).expect(lines[0]);
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(line["message"].as_str().unwrap().contains("PORT"), "{line}");
}

#[test]
fn bad_auth_settings_stop_the_daemon_without_showing_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let comments = dir.path().join("comments");
    std::fs::write(&comments, "# no key yet\n").unwrap();
    let comments = comments.to_str().unwrap();
    let key = "0123456789abcdef0123";
    let secret = "an HS256 secret of at least 32 bytes";
    for (env, variable) in [
        (vec![("API_KEYS", format!("{key}:admin"))], "API_KEYS"),
        (vec![("API_KEYS", "k3y5ecr3t:read".to_owned())], "API_KEYS"),
        (vec![("API_KEYS_FILE", missing.to_owned())], "API_KEYS_FILE"),
        (
            vec![("API_KEYS_FILE", comments.to_owned())],
            "API_KEYS_FILE",
        ),
        (
            vec![("JWT_SECRET", "s3cr3t-too-5h0rt".to_owned())],
            "JWT_SECRET",
        ),
        (
            vec![
                ("JWT_SECRET", secret.to_owned()),
                ("JWT_PUBLIC_KEY_FILE", missing.to_owned()),
            ],
            "JWT_SECRET",
        ),
        (
            vec![("JWT_PUBLIC_KEY_FILE", missing.to_owned())],
            "JWT_PUBLIC_KEY_FILE",
        ),
        (
            vec![("JWT_PUBLIC_KEY_FILE", comments.to_owned())],
            "JWT_PUBLIC_KEY_FILE",
        ),
        (vec![("JWT_AUDIENCE", "cameras".to_owned())], "JWT_AUDIENCE"),
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, stderr) = run_with(&env, &[]);
        assert_eq!(code, EXIT_CONFIG, "{env:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{env:?}: {stderr:?}");
        assert!(stderr.contains(variable), "{env:?}: {stderr}");
        for hidden in [key, "k3y5ecr3t", "s3cr3t-too-5h0rt", secret] {
            assert!(!stderr.contains(hidden), "{env:?}: {stderr}");
        }
    }
}

#[test]
fn unwritable_folders_stop_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regular-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let under_file = file.join("frames");
    for variable in ["OUTPUT_FOLDER", "UPLOAD_FOLDER"] {
        for path in [&file, &under_file] {
            let path = path.to_str().unwrap();
            assert_refused(&[(variable, path)], &[], variable);
        }
    }
}

#[test]
fn bad_flags_stop_the_daemon_like_bad_variables() {
    assert_refused(&[], &["--port", "abc"], "PORT");
    assert_refused(&[], &["--jpeg-quality", "0"], "JPEG_QUALITY");
    assert_refused(&[("PORT", "8002")], &["--host", "nonsense"], "HOST");
}

#[test]
fn sigterm_stops_running_cameras_and_exits_cleanly() {
    let mut daemon = start_busy_daemon();
    let (code, took) = daemon.terminate();
    assert_eq!(code, Some(0), "{}", daemon.log_text());
    assert!(took < SHUTDOWN, "took {took:?}");
    assert_no_temporaries(&daemon.output);
}

#[test]
fn sigint_stops_running_cameras_and_exits_cleanly() {
    let mut daemon = start_busy_daemon();
    let started = Instant::now();
    unsafe_kill(daemon.child.id(), "INT");
    let code = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            started.elapsed() < SHUTDOWN,
            "still running: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(0), "{}", daemon.log_text());
    assert_no_temporaries(&daemon.output);
}

/// A clip long enough to still be decoding when the signal comes, made once per test
/// process (concurrent makers would share a temporary file name).
fn long_clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| h264_small(20))
}

/// A daemon with a live camera stuck reconnecting and a file camera writing frames.
fn start_busy_daemon() -> Daemon {
    let daemon = Daemon::start();
    let live = format!("rtsp://127.0.0.1:{}/x", free_port());
    let reply = daemon.post_form("/decode/", &[("camera_id", "live"), ("url", &live)]);
    reply.assert_ok();
    daemon.wait_status("live", Duration::from_secs(30), |s| {
        s["restart_count"].as_u64().unwrap_or(0) >= 1
    });
    let media = place(&daemon, long_clip());
    let fields = [
        ("camera_id", "file"),
        ("url", media.to_str().unwrap()),
        ("fps", "25"),
    ];
    let reply = daemon.post_form("/decode/", &fields);
    reply.assert_ok();
    daemon.wait_status("file", Duration::from_secs(30), |s| {
        s["frame_count"].as_u64().unwrap_or(0) > 0
    });
    daemon
}

/// Frames are written as `.<name>.part` and renamed; none may outlive the daemon.
fn assert_no_temporaries(output: &Path) {
    for camera in std::fs::read_dir(output).unwrap().flatten() {
        for entry in std::fs::read_dir(camera.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !(name.starts_with('.') && name.ends_with(".part")),
                "{} left behind",
                entry.path().display()
            );
        }
    }
}
