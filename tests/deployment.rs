//! The deployment files against the real daemon: the example frame consumer
//! (deploy/consumer/consumer.py, docker-compose.yml's) on the daemon's real frame folder
//! while frames are written and, past `max_frames`, deleted; and the camera files that
//! docker-compose.yml and deploy/k8s ship.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::rtsp::{frame_count, start_camera_with};
use common::{h264_small, place, Daemon};
use serde_json::Value;

#[test]
fn the_compose_consumer_reads_complete_frames_only() {
    let daemon = Daemon::start();
    let clip = place(&daemon, &h264_small(2));
    let extra = [
        ("fps", "10"),
        ("loop", "true"),
        ("realtime", "true"),
        ("max_frames", "5"),
    ];
    start_camera_with(&daemon, "consumed", clip.to_str().unwrap(), &extra);
    daemon.wait_status("consumed", Duration::from_secs(20), |s| frame_count(s) >= 5);
    let consumer = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/consumer/consumer.py");
    for style in ["latest", "mtime", "sorted"] {
        let run = Command::new("python3")
            .arg(&consumer)
            .arg("--frames")
            .arg(&daemon.output)
            .args([
                "--style",
                style,
                "--iterations",
                "40",
                "--interval",
                "0.025",
            ])
            .output()
            .expect("python3 runs the consumer");
        assert!(
            run.status.success(),
            "{style}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let reads: Vec<Value> = String::from_utf8(run.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert!(reads.len() >= 30, "{style}: only {} reads", reads.len());
        for read in &reads {
            assert_eq!(read["camera"], "consumed", "{style}: {read}");
            assert_eq!(read["complete"], true, "{style}: {read}");
        }
        let distinct: BTreeSet<&str> = reads.iter().filter_map(|r| r["sha256"].as_str()).collect();
        assert!(
            distinct.len() >= 3,
            "{style}: {} distinct frames",
            distinct.len()
        );
    }
    // Frames were deleted while the consumer read.
    assert!(!daemon
        .camera_dir("consumed")
        .join("frame_0001.jpg")
        .exists());
}

#[test]
fn the_shipped_camera_files_are_valid_config_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, cameras) in [
        ("deploy/compose/cameras.toml", &["sample"][..]),
        (
            "deploy/k8s/base/cameras.toml",
            &["entrance", "loading-dock"][..],
        ),
    ] {
        let path = root.join(file);
        let daemon = Daemon::start_with(&[("CONFIG_FILE", path.to_str().unwrap())]);
        for camera in cameras {
            let status = daemon.status(camera);
            assert_ne!(status["status"], "not_started", "{file}: {status}");
        }
    }
}
