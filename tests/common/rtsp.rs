//! A real RTSP server (GStreamer's, driven by `tests/support/rtsp_server.py`) and the
//! camera helpers the live-source tests share.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{frame_files, free_port, unsafe_kill, Daemon};

/// Generous: a loaded two-core machine needs a while to start GStreamer and libav.
pub const FRAMES_TIMEOUT: Duration = Duration::from_secs(30);
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The contract: stop answers within this even when the source hangs.
pub const STOP_LIMIT: Duration = Duration::from_secs(2);
/// A status read must never wait on a camera.
pub const STATUS_LIMIT: Duration = Duration::from_secs(1);
/// Once stop has answered, how long the camera thread may take to notice and end.
pub const WORKER_EXIT_TIMEOUT: Duration = Duration::from_secs(5);
pub const STREAM_PATH: &str = "/stream";

/// `tests/support/rtsp_server.py` on its own port, stopped on drop.
pub struct RtspServer {
    child: Child,
    pub port: u16,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl RtspServer {
    /// A live H.264 test pattern on a free port.
    pub fn test_pattern() -> RtspServer {
        RtspServer::start(free_port(), &[])
    }

    /// Starts the server on `port` with extra arguments and waits for its READY line.
    /// Binding may fail for a moment when the port was just in use; that is retried.
    pub fn start(port: u16, extra: &[&str]) -> RtspServer {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            match RtspServer::try_start(port, extra, deadline) {
                Ok(server) => return server,
                Err(why) if Instant::now() < deadline && why.contains("cannot listen") => {
                    thread::sleep(Duration::from_millis(200));
                }
                Err(why) => panic!("RTSP test server did not start: {why}"),
            }
        }
    }

    fn try_start(port: u16, extra: &[&str], deadline: Instant) -> Result<RtspServer, String> {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("rtsp_server.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/rtsp_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string(), "--path", STREAM_PATH])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "READY" {
                    let _ = ready_tx.send(());
                }
            }
        });
        let mut server = RtspServer {
            child,
            port,
            stderr,
            _dir: dir,
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(wait) {
            Ok(()) => Ok(server),
            Err(_) => {
                server.kill();
                Err(format!(
                    "no READY within {SERVER_START_TIMEOUT:?} (needs python3-gi and \
                     gir1.2-gst-rtsp-server-1.0): {}",
                    server.log_text()
                ))
            }
        }
    }

    pub fn url(&self) -> String {
        self.url_of(STREAM_PATH)
    }

    /// The URL of another path on this server (a mount of `--mounts`, or a wrong one).
    pub fn url_of(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!(
            "rtsp://{user}:{password}@127.0.0.1:{}{STREAM_PATH}",
            self.port
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Dies at once, as a crashed camera does: no RTSP teardown, sockets just close.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, name: &str) {
        unsafe_kill(self.child.id(), name);
    }

    /// SIGTERM; the server must exit by itself, cleanly.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // A stopped process only acts on SIGTERM once it runs again.
        self.signal("CONT");
        if self.terminate().is_none() {
            self.kill();
        }
    }
}

pub fn start_camera(daemon: &Daemon, camera: &str, url: &str) {
    start_camera_with(daemon, camera, url, &[]);
}

/// Starts a camera at 5 fps in software; `extra` adds fields or replaces those.
pub fn start_camera_with(daemon: &Daemon, camera: &str, url: &str, extra: &[(&str, &str)]) {
    let defaults = [("fps", "5"), ("force_format", "none")];
    let mut fields = vec![("camera_id", camera), ("url", url)];
    fields.extend(
        defaults
            .into_iter()
            .filter(|(name, _)| !extra.iter().any(|(given, _)| given == name)),
    );
    fields.extend_from_slice(extra);
    let reply = daemon.post_form("/decode/", &fields);
    reply.assert_ok();
    assert_eq!(reply.json()["status"], "started");
}

/// Reads the status and asserts that the answer came quickly.
pub fn quick_status(daemon: &Daemon, camera: &str) -> Value {
    let asked = Instant::now();
    let status = daemon.status(camera);
    let took = asked.elapsed();
    assert!(
        took < STATUS_LIMIT,
        "status of {camera} took {took:?}: {status}"
    );
    status
}

/// Stops the camera, asserts the answer came within the contract's limit and that the
/// camera thread really ended; returns how long stop took to answer.
pub fn stop_camera(daemon: &Daemon, camera: &str) -> Duration {
    let asked = Instant::now();
    let reply = daemon.post_form("/decode/stop/", &[("camera_id", camera)]);
    let took = asked.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["message"], "Decoding stopped");
    assert!(took < STOP_LIMIT, "stop took {took:?}");
    assert_eq!(quick_status(daemon, camera)["status"], "stopped");
    let ended = format!("[{camera}] stopped after");
    let deadline = Instant::now() + WORKER_EXIT_TIMEOUT;
    while !daemon.log_text().contains(&ended) {
        assert!(
            Instant::now() < deadline,
            "camera thread of {camera} still busy {WORKER_EXIT_TIMEOUT:?} after stop:\n{}",
            daemon.log_text()
        );
        thread::sleep(Duration::from_millis(50));
    }
    took
}

/// Asserts that `bytes` are a JPEG of the test pattern's size.
pub fn assert_jpeg_320x240(bytes: &[u8], what: &str) {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .unwrap_or_else(|e| panic!("{what} is not a JPEG: {e}"));
    assert_eq!((image.width(), image.height()), (320, 240), "{what}");
}

pub fn frame_count(status: &Value) -> u64 {
    status["frame_count"].as_u64().unwrap()
}

pub fn restart_count(status: &Value) -> u64 {
    status["restart_count"].as_u64().unwrap()
}

/// The number in `frame_N.jpg`.
pub fn frame_number(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    name["frame_".len()..name.len() - ".jpg".len()]
        .parse()
        .unwrap()
}

pub fn snapshot_frames(dir: &Path) -> BTreeMap<u64, Vec<u8>> {
    frame_files(dir)
        .into_iter()
        .map(|path| (frame_number(&path), std::fs::read(&path).unwrap()))
        .collect()
}

/// The frames of a folder without their metadata (capture time, camera, seq): what
/// two cameras decoding the same packets have in common.
pub fn snapshot_pictures(dir: &Path) -> BTreeMap<u64, Vec<u8>> {
    snapshot_frames(dir)
        .into_iter()
        .map(|(number, jpeg)| (number, super::without_metadata(&jpeg)))
        .collect()
}
