//! Shared test harness: the real `video-pipeline` binary on a free port, an HTTP
//! client, and test media generated at run time with the `ffmpeg` CLI; the RTSP server
//! and camera helpers in `rtsp`, hand-written faulty servers in `servers`, the MPEG-TS
//! they send in `mpegts`, a file server with live HLS playlists in `http_files`, and
//! broken or lying media made from generated clips in `hostile`.
#![allow(dead_code)]

pub mod hostile;
pub mod http_files;
pub mod mpegts;
pub mod rtsp;
pub mod servers;

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "/api/v1/video-pipeline";

/// The binary built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_video-pipeline"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running daemon with its own folders, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub output: PathBuf,
    pub uploads: PathBuf,
    /// A directory listed in ALLOWED_INPUT_DIRS.
    pub media: PathBuf,
    /// The daemon's stderr, where it logs.
    pub log: PathBuf,
    /// The daemon's stdout (the library never prints: it stays empty).
    pub stdout: PathBuf,
    pub state_file: PathBuf,
    /// The extra environment, for restarts.
    env: Vec<(String, String)>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// Starts the daemon with extra environment variables and waits until it answers.
    pub fn start_with(env: &[(&str, &str)]) -> Daemon {
        Daemon::start_on(free_port(), env)
    }

    /// Starts the daemon on `port` (one whose address others were told) with extra
    /// environment variables, and waits until it answers.
    pub fn start_on(port: u16, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("frames");
        let uploads = dir.path().join("videos");
        let media = dir.path().join("media");
        std::fs::create_dir_all(&media).unwrap();
        let log = dir.path().join("daemon.log");
        let stdout = dir.path().join("daemon.stdout");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut daemon = Daemon {
            child: Command::new("true").spawn().unwrap(),
            port,
            state_file: dir.path().join("state.json"),
            dir,
            output,
            uploads,
            media,
            log,
            stdout,
            env,
        };
        daemon.spawn();
        daemon
    }

    /// Kills the daemon with SIGKILL (no clean-up of any kind) and starts it again on
    /// the same folders and state file, logging to a new file.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log = self.dir.path().join(format!(
            "daemon-{}.log",
            std::fs::read_dir(self.dir.path()).unwrap().count()
        ));
        self.port = free_port();
        self.spawn();
    }

    /// Kills the daemon with SIGKILL, leaving its folders and state file.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the daemon again on the same port, folders and state file, with `env`
    /// as its extra environment, logging to a new file.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        self.kill();
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.log = self.dir.path().join(format!(
            "daemon-{}.log",
            std::fs::read_dir(self.dir.path()).unwrap().count()
        ));
        self.spawn();
    }

    fn spawn(&mut self) {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", self.port.to_string())
            .env("OUTPUT_FOLDER", &self.output)
            .env("UPLOAD_FOLDER", &self.uploads)
            .env("ALLOWED_INPUT_DIRS", &self.media)
            .env("STATE_FILE", &self.state_file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&self.stdout).unwrap())
            .stderr(std::fs::File::create(&self.log).unwrap());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let _ = self.child.wait();
        self.child = command.spawn().expect("start video-pipeline");
        // Over HTTPS the plain client cannot ask: the port accepting is enough.
        let https = self.env.iter().any(|(k, _)| k == "TLS_CERT_FILE");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ready = if https {
                std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            } else {
                self.try_get("/health").is_ok()
            };
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("daemon exited with {status}: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not answer: {}", self.log_text());
    }

    pub fn url(&self, path: &str) -> String {
        let path = if path.starts_with('/') && !path.starts_with(BASE) && path != "/" {
            format!("{BASE}{path}")
        } else {
            path.to_owned()
        };
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The most memory the daemon has held so far (its peak resident set, VmHWM).
    pub fn peak_memory_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the daemon's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib * 1024
    }

    fn try_get(&self, path: &str) -> Result<Reply, String> {
        match agent().get(&self.url(path)).call() {
            Ok(r) => Ok(Reply::from(r)),
            Err(ureq::Error::Status(_, r)) => Ok(Reply::from(r)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// GET `path` (under the API base unless it starts with it or is `/`).
    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path).unwrap()
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = agent().get(&self.url(path));
        for (k, v) in headers {
            request = request.set(k, v);
        }
        reply(request.call())
    }

    pub fn request(&self, method: &str, path: &str) -> Reply {
        reply(agent().request(method, &self.url(path)).call())
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        reply(agent().post(&self.url(path)).send_form(fields))
    }

    pub fn post_form_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = agent().post(&self.url(path));
        for (k, v) in headers {
            request = request.set(k, v);
        }
        reply(request.send_form(fields))
    }

    pub fn post_json(&self, path: &str, body: serde_json::Value) -> Reply {
        reply(agent().post(&self.url(path)).send_json(body))
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        reply(
            agent()
                .post(&self.url(path))
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
    }

    /// multipart/form-data with text fields and (field, file name, contents) files.
    pub fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Reply {
        let (content_type, body) = multipart(fields, files);
        self.post_raw(path, &content_type, &body)
    }

    /// Posts with each of the three encodings; returns the replies in order
    /// multipart, urlencoded, JSON.
    pub fn post_all_encodings(&self, path: &str, fields: &[(&str, &str)]) -> [Reply; 3] {
        let json: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        [
            self.post_multipart(path, fields, &[]),
            self.post_form(path, fields),
            self.post_json(path, serde_json::Value::Object(json)),
        ]
    }

    pub fn status(&self, camera: &str) -> serde_json::Value {
        self.get(&format!("/decode/status/?camera_id={camera}"))
            .json()
    }

    /// Polls the camera's status until `done` holds, or panics after `timeout`.
    pub fn wait_status(
        &self,
        camera: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status(camera);
            if done(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "camera {camera} never reached the state; last: {status}\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and how long it took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        unsafe_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if Instant::now() > deadline {
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn camera_dir(&self, camera: &str) -> PathBuf {
        self.output.join(camera)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with the `kill` command (no unsafe code in tests).
pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .redirects(0)
        .build()
}

fn reply(result: Result<ureq::Response, ureq::Error>) -> Reply {
    match result {
        Ok(r) => Reply::from(r),
        Err(ureq::Error::Status(_, r)) => Reply::from(r),
        Err(e) => panic!("request failed: {e}"),
    }
}

/// A whole HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl From<ureq::Response> for Reply {
    fn from(response: ureq::Response) -> Self {
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_owned();
                Some((name.to_ascii_lowercase(), value))
            })
            .collect();
        let mut body = Vec::new();
        response.into_reader().read_to_end(&mut body).unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn detail(&self) -> String {
        self.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Asserts a 200 answer, showing the body otherwise.
    pub fn assert_ok(&self) -> &Reply {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        self
    }
}

pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----video-pipeline-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (name, filename, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Where generated media is kept between tests of one build (it is slow to make).
pub fn media_cache() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-media");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Makes (once) a clip with the `ffmpeg` CLI from a lavfi test source.
/// `args` go between the input and the output file, e.g. `["-c:v", "libx264"]`.
pub fn generated_media(name: &str, lavfi: &str, seconds: f64, args: &[&str]) -> PathBuf {
    let path = media_cache().join(name);
    if path.exists() {
        return path;
    }
    // Unique per process and thread: tests of one binary run in parallel threads.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = media_cache().join(format!(
        ".{}.{}-{unique}.tmp{}",
        name,
        std::process::id(),
        extension(name)
    ));
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            lavfi,
        ])
        .args(["-t", &seconds.to_string()])
        .args(args)
        .arg(&temp)
        .status()
        .expect("ffmpeg must be installed for the tests");
    assert!(status.success(), "ffmpeg failed to make {name}");
    std::fs::rename(&temp, &path).unwrap();
    path
}

fn extension(name: &str) -> String {
    Path::new(name)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default()
}

/// A 1080p30 H.264 clip with a 2 s GOP, as in the acceptance criteria.
pub fn h264_1080p(seconds: u32) -> PathBuf {
    generated_media(
        &format!("h264_1080p30_{seconds}s_gop2.mp4"),
        "testsrc2=size=1920x1080:rate=30",
        f64::from(seconds),
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

/// A small H.264 clip for quick tests.
pub fn h264_small(seconds: u32) -> PathBuf {
    h264_small_in(seconds, "mp4")
}

/// [`h264_small`] in another container (`ts`, `mkv`, ...): 320x240 at 25 fps, a
/// keyframe every second.
pub fn h264_small_in(seconds: u32, container: &str) -> PathBuf {
    generated_media(
        &format!("h264_320x240_{seconds}s.{container}"),
        "testsrc2=size=320x240:rate=25",
        f64::from(seconds),
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

/// Makes (once) an HLS rendition of `source` with the `ffmpeg` CLI, its packets
/// copied as they are: a folder with `index.m3u8` and segments `index<N>.ts` of
/// `segment_seconds` each (cut at keyframes). `args` go before the playlist, e.g.
/// `["-hls_playlist_type", "vod"]`.
pub fn generated_hls(name: &str, source: &Path, segment_seconds: u32, args: &[&str]) -> PathBuf {
    let dir = media_cache().join(name);
    if dir.join("index.m3u8").exists() {
        return dir;
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = media_cache().join(format!(".{name}.{}-{unique}.tmp", std::process::id()));
    std::fs::create_dir_all(&temp).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(source)
        .args(["-c", "copy", "-f", "hls", "-hls_list_size", "0"])
        .args(["-hls_time", &segment_seconds.to_string()])
        .args(args)
        .arg(temp.join("index.m3u8"))
        .status()
        .expect("ffmpeg must be installed for the tests");
    assert!(status.success(), "ffmpeg failed to make {name}");
    // Another test may have made it meanwhile: theirs is as good.
    if std::fs::rename(&temp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    dir
}

/// Copies a file into the daemon's allowed media folder, once: copying it again would
/// truncate it under a camera that is reading it.
pub fn place(daemon: &Daemon, source: &Path) -> PathBuf {
    let target = daemon.media.join(source.file_name().unwrap());
    let same = |a: &Path, b: &Path| {
        let (a, b) = (std::fs::metadata(a), std::fs::metadata(b));
        matches!((a, b), (Ok(a), Ok(b)) if a.len() == b.len())
    };
    if !same(source, &target) {
        std::fs::copy(source, &target).unwrap();
    }
    target
}

/// Sorted `frame_N.jpg` files of a folder (numeric order).
pub fn frame_files(dir: &Path) -> Vec<PathBuf> {
    let mut frames: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let n = name
                        .strip_prefix("frame_")?
                        .strip_suffix(".jpg")?
                        .parse()
                        .ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    frames.sort();
    frames.into_iter().map(|(_, p)| p).collect()
}

/// A frame without the Exif (APP1) and comment (COM) segments the daemon puts right
/// after SOI: the JPEG as the encoder made it.
pub fn without_metadata(jpeg: &[u8]) -> Vec<u8> {
    let mut at = 2;
    while let [0xFF, 0xE1 | 0xFE, high, low, ..] = jpeg[at..] {
        at += 2 + usize::from(u16::from_be_bytes([high, low]));
    }
    [&jpeg[..2], &jpeg[at..]].concat()
}

/// The Python that can import `modules` (the test clients of
/// tests/clients/requirements.txt): `VIDEO_PIPELINE_TEST_PYTHON` (set by scripts/test.sh),
/// else `python3` when it can import them; otherwise the test fails, saying how to get one.
pub fn test_python(modules: &str, what: &str) -> String {
    if let Ok(python) = std::env::var("VIDEO_PIPELINE_TEST_PYTHON") {
        return python;
    }
    let importable = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        importable,
        "no Python with {what}: run scripts/test.sh, or create the venv with \
         `python3 -m venv VENV && VENV/bin/pip install -r tests/clients/requirements.txt` \
         and set VIDEO_PIPELINE_TEST_PYTHON=VENV/bin/python"
    );
    "python3".into()
}

/// Peak signal-to-noise ratio in dB over all samples of two pictures of one size (RGB
/// bytes); infinite when identical.
pub fn psnr(ours: &[u8], reference: &[u8]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "pictures of different sizes");
    let squared_error: u64 = ours
        .iter()
        .zip(reference)
        .map(|(&a, &b)| u64::from(a.abs_diff(b)).pow(2))
        .sum();
    if squared_error == 0 {
        return f64::INFINITY;
    }
    let mse = squared_error as f64 / ours.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}
