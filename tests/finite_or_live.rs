//! Finite or live, as libav reports each source once open, not as its URL looks: an HLS
//! VOD playlist and an extension-less HTTP URL serving an MP4 complete with the clip's
//! frames, a live HLS playlist keeps running while segments are appended, and the
//! `live` field overrides the detection both ways. All over a real HTTP server
//! (`tests/common/http_files.rs`) that each test starts.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::http_files::{FileServer, LivePlaylist};
use common::rtsp::{
    frame_count, restart_count, snapshot_pictures, start_camera_with, stop_camera, FRAMES_TIMEOUT,
};
use common::{generated_hls, h264_small, place, Daemon};
use serde_json::Value;

/// The clip: 3 s at 25 fps, a keyframe every second; sampled at 2 fps.
const CLIP_SECONDS: u32 = 3;
const FPS: &str = "2";
/// Samples at 0, 0.5, ... 2.5 s: the clip's last frame is shown at 2.96 s.
const CLIP_SAMPLES: u64 = 6;

fn finished(status: &Value) -> bool {
    status["status"] != "running"
}

fn start(daemon: &Daemon, camera: &str, url: &str, extra: &[(&str, &str)]) {
    let mut fields = vec![("fps", FPS)];
    fields.extend_from_slice(extra);
    start_camera_with(daemon, camera, url, &fields);
}

/// Asserts a camera completed with every frame of the clip, read as finite.
fn assert_completed(status: &Value, what: &str) {
    assert_eq!(status["status"], "completed", "{what}: {status}");
    assert_eq!(status["live"], false, "{what}: {status}");
    assert_eq!(status["progress"], 1.0, "{what}: {status}");
    assert_eq!(restart_count(status), 0, "{what}: {status}");
    assert_eq!(frame_count(status), CLIP_SAMPLES, "{what}: {status}");
}

#[test]
fn an_hls_vod_and_an_extensionless_mp4_url_complete_with_the_clips_frames() {
    let clip = h264_small(CLIP_SECONDS);
    let vod = generated_hls(
        "h264_320x240_3s_vod_1s",
        &clip,
        1,
        &["-hls_playlist_type", "vod"],
    );
    let served = tempfile::tempdir().unwrap();
    std::fs::create_dir(served.path().join("vod")).unwrap();
    for entry in std::fs::read_dir(&vod).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            served.path().join("vod").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    // No extension: nothing in the URL says it is a video file.
    std::fs::copy(&clip, served.path().join("video")).unwrap();
    let server = FileServer::start(served.path());
    let daemon = Daemon::start_with(&[("STALE_FRAME_SECONDS", "1")]);
    let local = place(&daemon, &clip);

    start(&daemon, "local", local.to_str().unwrap(), &[]);
    start(&daemon, "mp4", &server.url("video?id=3"), &[]);
    start(&daemon, "vod", &server.url("vod/index.m3u8"), &[]);
    // Said live: a VOD that is reconnected at its end.
    start(
        &daemon,
        "vod_live",
        &server.url("vod/index.m3u8"),
        &[("live", "true")],
    );
    assert_eq!(
        daemon.status("vod_live")["live"],
        true,
        "known before opening"
    );

    let local_status = daemon.wait_status("local", FRAMES_TIMEOUT, finished);
    assert_completed(&local_status, "local file");
    let reference = snapshot_pictures(&daemon.camera_dir("local"));
    for camera in ["mp4", "vod"] {
        let status = daemon.wait_status(camera, FRAMES_TIMEOUT, finished);
        assert_completed(&status, camera);
        // The same packets decoded: the same pictures, byte for byte.
        assert!(
            snapshot_pictures(&daemon.camera_dir(camera)) == reference,
            "{camera}: its frames differ from the local file's"
        );
    }

    let reconnected = daemon.wait_status("vod_live", FRAMES_TIMEOUT, |s| {
        restart_count(s) >= 1 && frame_count(s) > CLIP_SAMPLES
    });
    assert_eq!(reconnected["status"], "running", "{reconnected}");
    assert_eq!(reconnected["live"], true, "{reconnected}");
    stop_camera(&daemon, "vod_live");

    // Staleness follows the decision: once the newest frames are older than
    // STALE_FRAME_SECONDS, a finite source still answers, a live one does not.
    thread::sleep(Duration::from_millis(1100));
    daemon.get("/latest-frame/?camera_id=mp4").assert_ok();
    let stale = daemon.get("/latest-frame/?camera_id=vod_live");
    assert_eq!(stale.status, 404);
    assert!(
        stale.detail().contains("STALE_FRAME_SECONDS=1"),
        "{}",
        stale.detail()
    );
}

/// Segments of an 8 s clip, one second each, the first three published.
fn live_playlist(served: &Path) -> LivePlaylist {
    let long = h264_small(8);
    let segments = generated_hls("h264_320x240_8s_segments_1s", &long, 1, &[]);
    LivePlaylist::start(&segments, served, "live", 1.0, 3)
}

fn streaming(status: &Value) -> bool {
    status["phase"] == "streaming"
}

#[test]
fn a_live_hls_playlist_keeps_running_and_live_false_completes_it_at_its_end() {
    let served = tempfile::tempdir().unwrap();
    let mut playlist = live_playlist(served.path());
    let server = FileServer::start(served.path());
    let daemon = Daemon::start();
    let url = server.url("live/index.m3u8");

    start(&daemon, "live", &url, &[]);
    // Unknown until the first connection says (which may already have happened).
    let early = daemon.status("live");
    assert!(
        early["live"] == Value::Null || early["phase"] == "streaming",
        "{early}"
    );
    start(&daemon, "said_finite", &url, &[("live", "false")]);
    // May be finite before it opens; turns out live.
    start(&daemon, "paced", &url, &[("realtime", "true")]);

    // Both open on the first three segments (libav starts three from the live end).
    let live = daemon.wait_status("live", FRAMES_TIMEOUT, streaming);
    assert_eq!(live["live"], true, "{live}");
    let said_finite = daemon.wait_status("said_finite", FRAMES_TIMEOUT, streaming);
    assert_eq!(said_finite["live"], false, "{said_finite}");
    let paced = daemon.wait_status("paced", FRAMES_TIMEOUT, finished);
    assert_eq!(paced["status"], "error", "{paced}");
    assert_eq!(paced["live"], true, "{paced}");
    let error = paced["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "is live (it reports no end): realtime and loop apply only to sources that end"
        ),
        "{error}"
    );

    // Three segments give six samples; more come only from the appended ones.
    for _ in 0..4 {
        thread::sleep(Duration::from_millis(500));
        playlist.append();
    }
    let running = daemon.wait_status("live", FRAMES_TIMEOUT, |s| frame_count(s) >= 10);
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["phase"], "streaming", "{running}");
    assert_eq!(restart_count(&running), 0, "{running}");
    daemon.get("/latest-frame/?camera_id=live").assert_ok();
    stop_camera(&daemon, "live");

    // The playlist ends: the source said finite completes where it ends, with two
    // samples of each published second, once.
    playlist.close();
    let completed = daemon.wait_status("said_finite", FRAMES_TIMEOUT, finished);
    assert_eq!(completed["status"], "completed", "{completed}");
    assert_eq!(completed["live"], false, "{completed}");
    assert_eq!(restart_count(&completed), 0, "{completed}");
    assert_eq!(playlist.published(), 7);
    assert_eq!(frame_count(&completed), 2 * 7, "{completed}");
}
