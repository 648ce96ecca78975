//! Hardware decoding as seen from outside, on a machine without a GPU: every forced
//! backend decodes in software and says why, and `hw-accel-cap/` lists nothing and
//! explains each backend. A hardware decoder that breaks mid-stream is a unit test of
//! the decode loop (`media::decode`), with a failing decoder that exists only there.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{binary, frame_files, h264_small, place, Daemon};
use serde_json::Value;

const DECODE_TIMEOUT: Duration = Duration::from_secs(120);

fn start_camera(daemon: &Daemon, camera: &str, extra: &[(&str, &str)]) {
    let clip = place(daemon, &h264_small(4));
    let mut fields = vec![
        ("camera_id", camera),
        ("url", clip.to_str().unwrap()),
        ("fps", "5"),
    ];
    fields.extend_from_slice(extra);
    let reply = daemon.post_form("/decode", &fields);
    reply.assert_ok();
}

fn finished(status: &Value) -> bool {
    status["status"] != "running"
}

#[test]
fn forced_backends_decode_in_software_and_say_why() {
    let daemon = Daemon::start();
    for backend in ["cuda", "qsv", "vaapi"] {
        let camera = format!("forced-{backend}");
        start_camera(&daemon, &camera, &[("force_format", backend)]);
        let status = daemon.wait_status(&camera, DECODE_TIMEOUT, finished);
        assert_eq!(status["status"], "completed", "{status}");
        assert_eq!(status["hwaccel"], "none", "{status}");
        assert_eq!(status["hwaccel_requested"], backend, "{status}");
        let reason = status["hwaccel_reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("{backend}: ")) && reason.ends_with("decoding in software"),
            "{reason}"
        );
        assert_eq!(status["restart_count"], 0);
        assert_eq!(
            frame_files(&daemon.camera_dir(&camera)).len(),
            20,
            "{status}"
        );
    }
}

#[test]
fn auto_decodes_in_software_and_none_asks_for_nothing() {
    let daemon = Daemon::start();
    start_camera(&daemon, "auto", &[]);
    start_camera(&daemon, "software", &[("force_format", "none")]);
    for camera in ["auto", "software"] {
        let status = daemon.wait_status(camera, DECODE_TIMEOUT, finished);
        assert_eq!(status["status"], "completed", "{status}");
        assert_eq!(status["hwaccel"], "none", "{status}");
        assert_eq!(frame_files(&daemon.camera_dir(camera)).len(), 20);
    }
    let auto = daemon.status("auto");
    assert_eq!(auto["hwaccel_requested"], "auto");
    let reason = auto["hwaccel_reason"].as_str().unwrap();
    for backend in ["cuda: ", "; qsv: ", "; vaapi: "] {
        assert!(reason.contains(backend), "{reason}");
    }
    let software = daemon.status("software");
    assert_eq!(software["hwaccel_requested"], "none");
    assert!(software["hwaccel_reason"].is_null(), "{software}");
}

#[test]
fn hw_accel_cap_lists_nothing_and_explains_each_backend() {
    let daemon = Daemon::start();
    for path in ["/hw-accel-cap", "/hw-accel-cap/?refresh=true"] {
        let reply = daemon.get(path);
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(
            body["message"]["available_hw_accelerations"],
            serde_json::json!([]),
            "{body}"
        );
        let compiled = body["compiled_hw_types"].as_array().unwrap();
        assert!(compiled.iter().any(|t| t == "vaapi"), "{body}");
        for backend in ["cuda", "qsv", "vaapi", "vdpau", "rkmpp"] {
            let reason = body["unavailable"][backend].as_str().unwrap_or_default();
            assert!(!reason.is_empty(), "{backend}: {body}");
        }
        assert!(body["unavailable"]["vaapi"]
            .as_str()
            .unwrap()
            .contains("device context could not be created"));
        assert!(body["unavailable"].get("fault-injection").is_none());
    }
    assert_eq!(daemon.get("/hw-accel-cap?refresh=maybe").status, 422);
}

#[test]
fn device_settings_are_validated_at_start() {
    for (name, value) in [
        ("VAAPI_DEVICE", "renderD128"),
        ("CUDA_DEVICE", "first"),
        ("HW_RETRY_SECONDS", "-5"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(binary())
            .env_clear()
            .env("OUTPUT_FOLDER", dir.path().join("frames"))
            .env("UPLOAD_FOLDER", dir.path().join("videos"))
            .env("PORT", common::free_port().to_string())
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{stderr}");
    }
}

#[test]
fn extract_with_a_missing_device_decodes_in_software() {
    let clip = h264_small(4);
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .args(["extract", "--hwaccel", "vaapi", "--fps", "5", "--out"])
        .arg(out.path())
        .arg(&clip)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("vaapi: device context could not be created: ")
            && stderr.contains("; decoding in software"),
        "{stderr}"
    );
    assert_eq!(frame_files(out.path()).len(), 20);
}
