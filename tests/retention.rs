//! Frame retention and the disk guard, on the real binary: folders of looped realtime
//! files (stand-ins for live cameras) trimmed by count and by age while they are
//! written, and writing paused and resumed on a small tmpfs that the test fills.

mod common;

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::rtsp::start_camera_with;
use common::Daemon;
use serde_json::Value;
use video_pipeline::output::disk;

const FRAMES_TIMEOUT: Duration = Duration::from_secs(20);
/// Frames this young are never deleted; the slack covers the retention thread's pass
/// interval and scheduling on a busy machine.
const PROTECTED: Duration = Duration::from_millis(2_000 + 750);

fn frame_count(status: &Value) -> u64 {
    status["frame_count"].as_u64().unwrap_or_default()
}

/// `(number, modified)` of each `frame_N.jpg`, by number.
fn frames_in(dir: &Path) -> Vec<(u64, SystemTime)> {
    let mut frames: Vec<(u64, SystemTime)> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number = name
                .strip_prefix("frame_")?
                .strip_suffix(".jpg")?
                .parse()
                .ok()?;
            // Deleted between the listing and this look: not there.
            let modified = entry.metadata().ok()?.modified().ok()?;
            Some((number, modified))
        })
        .collect();
    frames.sort();
    frames
}

/// A camera's folder over time: what the checks need from each look.
struct Watch {
    limit: usize,
    lowest: u64,
    highest: u64,
    frame_count: u64,
    most_files: usize,
}

impl Watch {
    fn new(limit: usize) -> Watch {
        Watch {
            limit,
            lowest: 0,
            highest: 0,
            frame_count: 0,
            most_files: 0,
        }
    }

    /// One look at `camera`'s folder and status.
    fn look(&mut self, daemon: &Daemon, camera: &str) {
        let dir = daemon.camera_dir(camera);
        let now = SystemTime::now();
        let frames = frames_in(&dir);
        assert!(
            dir.join("latest.jpg").exists(),
            "{camera}: latest.jpg missing"
        );
        let old = frames
            .iter()
            .filter(|(_, modified)| now.duration_since(*modified).unwrap_or_default() > PROTECTED)
            .count();
        assert!(
            old <= self.limit,
            "{camera}: {old} frames older than {PROTECTED:?} kept, limit {}: {frames:?}",
            self.limit
        );
        let (lowest, highest) = (frames.first().unwrap().0, frames.last().unwrap().0);
        assert!(lowest >= self.lowest, "{camera}: frame {lowest} came back");
        assert!(highest >= self.highest, "{camera}: numbering went back");
        (self.lowest, self.highest) = (lowest, highest);
        self.most_files = self.most_files.max(frames.len());
        let count = frame_count(&daemon.status(camera));
        assert!(count >= self.frame_count, "{camera}: frame_count went down");
        self.frame_count = count;
    }
}

#[test]
fn retention_by_count_and_by_age_on_live_cameras() {
    const LOOK_FOR: Duration = Duration::from_secs(4);
    let daemon = Daemon::start_with(&[("MAX_FRAMES_PER_CAMERA", "5")]);
    let clip = common::place(&daemon, &common::h264_small(2));
    let clip = clip.to_str().unwrap();
    let live = [("fps", "10"), ("realtime", "true"), ("loop", "true")];
    // `count` keeps the daemon's 5 frames; `age` keeps all but those older than 1 s.
    start_camera_with(&daemon, "count", clip, &live);
    let mut by_age = live.to_vec();
    by_age.extend([("max_frames", "0"), ("max_age_seconds", "1")]);
    start_camera_with(&daemon, "age", clip, &by_age);
    for camera in ["count", "age"] {
        daemon.wait_status(camera, FRAMES_TIMEOUT, |s| frame_count(s) >= 1);
    }
    let count_status = daemon.status("count");
    assert_eq!(count_status["max_frames"], 5, "{count_status}");
    let age_status = daemon.status("age");
    assert_eq!(age_status["max_frames"], 0, "{age_status}");
    assert_eq!(age_status["max_age_seconds"], 1.0, "{age_status}");

    // The age camera keeps only its newest frame once the others are past the grace.
    let mut watches = [("count", Watch::new(5)), ("age", Watch::new(1))];
    let started = Instant::now();
    while started.elapsed() < LOOK_FOR {
        for (camera, watch) in &mut watches {
            watch.look(&daemon, camera);
        }
        thread::sleep(Duration::from_millis(100));
    }
    for (camera, watch) in &watches {
        let status = daemon.status(camera);
        let deleted = status["frames_deleted"].as_u64().unwrap();
        eprintln!(
            "{camera}: {} frames written, {deleted} deleted, at most {} files, numbers {}..={}",
            watch.frame_count, watch.most_files, watch.lowest, watch.highest
        );
        assert!(watch.frame_count >= 25, "{camera}: {status}");
        assert!(deleted >= 5, "{camera}: {status}");
        // Numbering goes on past the limit; nothing is renumbered.
        assert!(
            watch.lowest > 5 && watch.highest >= 25,
            "{camera}: {status}"
        );
        assert_eq!(status["restart_count"], 0, "{status}");
        assert_eq!(status["writing_paused"], false, "{status}");
    }
}

/// A size-limited tmpfs, unmounted on drop (also when the test fails).
struct Tmpfs {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` where this machine forbids mounting (not root, no CAP_SYS_ADMIN).
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("disk");
        fs::create_dir(&path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("the mount command");
        if !output.status.success() {
            let error = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            let forbidden = [
                "permission denied",
                "not permitted",
                "superuser",
                "only root",
                "eperm",
            ]
            .iter()
            .any(|word| error.to_ascii_lowercase().contains(word));
            assert!(forbidden, "mount -t tmpfs failed: {error}");
            eprintln!("skipped: cannot mount tmpfs here ({error})");
            return None;
        }
        Some(Tmpfs {
            path,
            _parent: parent,
        })
    }

    fn available(&self) -> u64 {
        disk::space(&self.path).unwrap().available
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `bytes` zeros to `path`, or until the disk is full when `None`.
fn fill(path: &Path, bytes: Option<u64>) {
    let mut file = fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut left = bytes.unwrap_or(u64::MAX);
    while left > 0 {
        let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match file.write(&chunk[..n]) {
            Ok(0) => break,
            Ok(written) => left -= written as u64,
            Err(e) if bytes.is_none() && e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Tail of a full disk: what a smaller write still fits.
    if bytes.is_none() {
        while file.write(&[0u8; 512]).is_ok_and(|n| n > 0) {}
    }
}

/// Every file of the folder is a whole JPEG named as readers expect.
fn assert_only_whole_jpegs(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        assert!(
            name == "latest.jpg" || (name.starts_with("frame_") && name.ends_with(".jpg")),
            "unexpected file {name} in {}",
            dir.display()
        );
        let bytes = fs::read(entry.path()).unwrap();
        assert!(
            bytes.starts_with(&[0xFF, 0xD8]) && bytes.ends_with(&[0xFF, 0xD9]),
            "{name} is not a whole JPEG ({} bytes)",
            bytes.len()
        );
    }
}

/// Starts a daemon with its frames on `disk` and one live camera writing there.
fn daemon_on(disk: &Tmpfs, min_free: &str) -> (Daemon, PathBuf) {
    let frames = disk.path.join("frames");
    let daemon = Daemon::start_with(&[
        ("OUTPUT_FOLDER", frames.to_str().unwrap()),
        ("MIN_FREE_DISK", min_free),
    ]);
    let clip = common::place(&daemon, &common::h264_small(2));
    let live = [
        ("fps", "10"),
        ("realtime", "true"),
        ("loop", "true"),
        ("max_frames", "30"),
    ];
    start_camera_with(&daemon, "cam", clip.to_str().unwrap(), &live);
    daemon.wait_status("cam", FRAMES_TIMEOUT, |s| frame_count(s) >= 3);
    (daemon, frames.join("cam"))
}

/// Paused: status says so, and no frame is written for a while.
fn assert_paused(daemon: &Daemon) -> Value {
    let paused = daemon.wait_status("cam", Duration::from_secs(5), |s| {
        s["writing_paused"] == true && s["last_error_kind"] == "disk_full"
    });
    thread::sleep(Duration::from_millis(800));
    let later = daemon.status("cam");
    assert_eq!(frame_count(&later), frame_count(&paused), "{later}");
    assert!(
        later["frames_dropped_reasons"]["disk_full"]
            .as_u64()
            .unwrap()
            > 0,
        "{later}"
    );
    assert_eq!(later["status"], "running", "{later}");
    assert_eq!(later["phase"], "streaming", "{later}");
    later
}

/// Resumed by itself: frames are written again, in the same session.
fn assert_resumed(daemon: &Daemon, paused: &Value, folder: &Path) {
    let resumed = daemon.wait_status("cam", Duration::from_secs(5), |s| {
        s["writing_paused"] == false && frame_count(s) >= frame_count(paused) + 3
    });
    assert_eq!(resumed["restart_count"], 0, "{resumed}");
    assert_eq!(resumed["last_error"], Value::Null, "{resumed}");
    daemon.post_form("/decode/stop/", &[("camera_id", "cam")]);
    // The session's end is dated once its thread is done with the folder.
    daemon.wait_status("cam", Duration::from_secs(5), |s| {
        s["finished_at"].is_string()
    });
    assert_only_whole_jpegs(folder);
}

#[test]
fn below_min_free_disk_writing_pauses_and_resumes() {
    let Some(disk) = Tmpfs::mount("16m") else {
        return;
    };
    let (daemon, folder) = daemon_on(&disk, "4MiB");
    // Some frames past the grace, for the guard to delete first.
    daemon.wait_status("cam", FRAMES_TIMEOUT, |s| frame_count(s) >= 25);
    // Leave 2 MiB free: under the minimum even once every old frame is deleted.
    let filler = disk.path.join("filler");
    fill(&filler, Some(disk.available() - 2 * 1024 * 1024));
    let paused = assert_paused(&daemon);
    let message = paused["last_error"].as_str().unwrap();
    assert!(
        message.contains("free") && message.contains("MIN_FREE_DISK=4.0 MiB"),
        "{paused}"
    );
    assert!(paused["frames_deleted"].as_u64().unwrap() > 0, "{paused}");
    eprintln!("paused: {message}");
    fs::remove_file(&filler).unwrap();
    assert_resumed(&daemon, &paused, &folder);
}

#[test]
fn a_write_refused_for_lack_of_space_pauses_without_leaving_partial_files() {
    let Some(disk) = Tmpfs::mount("16m") else {
        return;
    };
    // No minimum: only the refused write itself can pause.
    let (daemon, folder) = daemon_on(&disk, "0");
    let filler = disk.path.join("filler");
    fill(&filler, None);
    let paused = assert_paused(&daemon);
    eprintln!("paused: {}", paused["last_error"]);
    assert!(
        paused["last_error"]
            .as_str()
            .unwrap()
            .contains("lack of space"),
        "{paused}"
    );
    // Nothing half-written while the disk is full; latest.jpg is whole.
    assert_only_whole_jpegs(&folder);
    match fs::remove_file(&filler) {
        Err(e) if e.kind() == ErrorKind::NotFound => panic!("filler gone"),
        other => other.unwrap(),
    }
    assert_resumed(&daemon, &paused, &folder);
}

#[test]
fn a_finished_camera_is_forgotten_with_its_folder_after_the_ttl() {
    const TTL: Duration = Duration::from_secs(1);
    let daemon = Daemon::start_with(&[("STOPPED_FOLDER_TTL_SECONDS", "1")]);
    let clip = common::place(&daemon, &common::h264_small(2));
    let clip = clip.to_str().unwrap();
    let completed = |s: &Value| s["status"] == "completed" && s["finished_at"].is_string();
    for camera in ["done", "again"] {
        start_camera_with(&daemon, camera, clip, &[]);
        daemon.wait_status(camera, FRAMES_TIMEOUT, completed);
    }
    let ended = Instant::now();
    // `again` starts a new, endless session before its first one's time runs out.
    let live = [("fps", "5"), ("realtime", "true"), ("loop", "true")];
    start_camera_with(&daemon, "again", clip, &live);

    let gone = daemon.wait_status("done", TTL * 5, |s| s["status"] == "not_started");
    assert!(ended.elapsed() >= TTL, "forgotten too early: {gone}");
    assert!(!daemon.camera_dir("done").exists());
    assert!(!daemon.get("/cameras/").json()["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["camera_id"] == "done"));
    let again = daemon.wait_status("again", FRAMES_TIMEOUT, |s| frame_count(s) >= 3);
    assert_eq!(again["status"], "running", "{again}");
    assert!(daemon.camera_dir("again").join("latest.jpg").exists());

    daemon.post_form("/decode/stop/", &[("camera_id", "again")]);
    daemon.wait_status("again", TTL * 5, |s| s["status"] == "not_started");
    assert!(!daemon.camera_dir("again").exists());
}

#[test]
fn retention_fields_are_validated() {
    let daemon = Daemon::start();
    let clip = common::place(&daemon, &common::h264_small(2));
    let clip = clip.to_str().unwrap();
    for (field, value, code) in [
        ("max_frames", "many", 422),
        ("max_frames", "-1", 400),
        ("max_frames", "2.5", 400),
        ("max_age_seconds", "an hour", 422),
        ("max_age_seconds", "-5", 400),
    ] {
        let fields = [("camera_id", "bad"), ("url", clip), (field, value)];
        for reply in daemon.post_all_encodings("/decode/", &fields) {
            assert_eq!(reply.status, code, "{field}={value}: {}", reply.detail());
            assert!(reply.detail().contains(field), "{}", reply.detail());
        }
    }
    assert_eq!(daemon.status("bad")["status"], "not_started");
    // A file keeps all its frames unless told otherwise.
    start_camera_with(&daemon, "file", clip, &[]);
    let status = daemon.wait_status("file", FRAMES_TIMEOUT, |s| s["status"] == "completed");
    assert_eq!(status["max_frames"], 0, "{status}");
    assert!(status.get("max_age_seconds").is_none(), "{status}");
}
