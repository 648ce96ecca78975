//! Every written frame names itself: its Exif capture time and its comment (camera,
//! seq, pts), read back by Pillow, agree to the millisecond with the latest-frame
//! headers and the status, and the file, latest.jpg and latest-frame/ are one frame.

mod common;

use std::process::Command;
use std::time::Duration;

use common::rtsp::start_camera_with;
use common::Daemon;
use serde_json::Value;

/// Prints the frame's Exif capture time and its comment as JSON.
const READ: &str = r#"
import json, sys
from PIL import Image
image = Image.open(sys.argv[1])
exif = image.getexif().get_ifd(0x8769)
print(json.dumps({
    "date": exif.get(0x9003),
    "offset": exif.get(0x9011),
    "subsec": exif.get(0x9291),
    "comment": image.info.get("comment", b"").decode(),
}))
"#;

/// The Python that has Pillow: `VIDEO_PIPELINE_TEST_PYTHON` (set by scripts/test.sh),
/// else `python3` when it can import it.
fn python() -> String {
    common::test_python("PIL", "Pillow")
}

#[test]
fn exif_and_comment_give_the_status_capture_time_and_pts() {
    let python = python();
    let daemon = Daemon::start();
    let clip = common::place(&daemon, &common::h264_small(2));
    start_camera_with(&daemon, "meta", clip.to_str().unwrap(), &[("fps", "2")]);
    // A finished file: the newest frame and the status hold still while read.
    let status = daemon.wait_status("meta", Duration::from_secs(30), |s| {
        s["status"] == "completed"
    });
    let latest = daemon.get("/latest-frame/?camera_id=meta");
    latest.assert_ok();
    let seq = latest.header("x-frame-seq").unwrap().to_owned();
    let pts = latest.header("x-frame-pts").unwrap().to_owned();
    let captured_at = latest.header("x-captured-at").unwrap().to_owned();
    assert_eq!(status["last_frame_at"], captured_at.as_str(), "{status}");
    assert!(seq.parse::<u64>().unwrap() >= 3, "{seq}");

    let dir = daemon.camera_dir("meta");
    let file = dir.join(format!("frame_{:0>4}.jpg", seq));
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes == latest.body, "latest-frame/ is the file of its seq");
    assert!(bytes == std::fs::read(dir.join("latest.jpg")).unwrap());

    let output = Command::new(&python)
        .args(["-c", READ])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    // "2026-12-01T23:56:07.089Z" is "2026:12:01 23:56:07", "089", "+00:00".
    let date = read["date"].as_str().unwrap();
    let exif_time = format!(
        "{}T{}.{}Z",
        date[..10].replace(':', "-"),
        &date[11..],
        read["subsec"].as_str().unwrap()
    );
    assert_eq!(exif_time, captured_at, "{read}");
    assert_eq!(read["offset"], "+00:00");
    assert_eq!(
        read["comment"],
        format!("video-pipeline camera=meta seq={seq} pts={pts}").as_str()
    );

    // Every frame of the folder carries its own seq.
    for (n, path) in common::frame_files(&dir).iter().enumerate().take(3) {
        let frame = std::fs::read(path).unwrap();
        let comment = format!("video-pipeline camera=meta seq={} pts=", n + 1);
        assert!(
            frame
                .windows(comment.len())
                .any(|w| w == comment.as_bytes()),
            "{} has no comment {comment:?}",
            path.display()
        );
    }
}
