//! A small HTTP/1.1 file server for tests: serves a directory with Content-Length,
//! byte ranges (libav seeks in an MP4 with them) and keep-alive (libav's HLS client
//! fetches its segments over one connection). Each request reads the file again, so a
//! playlist rewritten while a camera reads it is served as it is now; `LivePlaylist`
//! does that rewriting.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How long a kept-alive connection may sit idle before the server closes it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `root` on a free port until dropped.
pub struct FileServer {
    pub port: u16,
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FileServer {
    pub fn start(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let done = Arc::clone(&done);
            let root = root.to_owned();
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let root = root.clone();
                            thread::spawn(move || serve(client, &root));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FileServer {
            port,
            done,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers the requests of one connection until the client closes it, asks to, or
/// sits idle.
fn serve(client: TcpStream, root: &Path) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(IDLE_TIMEOUT));
    let Ok(mut writer) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(client);
    while let Some(request) = read_request(&mut reader) {
        if answer(&mut writer, root, &request).is_err() || request.close {
            return;
        }
    }
}

struct Request {
    method: String,
    path: String,
    range: Option<String>,
    close: bool,
}

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let target = words.next()?;
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let (mut range, mut close) = (None, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|n| *n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "range" => range = Some(value.to_owned()),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    Some(Request {
        method,
        path,
        range,
        close,
    })
}

fn answer(out: &mut TcpStream, root: &Path, request: &Request) -> std::io::Result<()> {
    let relative = request.path.trim_start_matches('/');
    let file = (!relative.split('/').any(|part| part == ".."))
        .then(|| root.join(relative))
        .and_then(|path| std::fs::read(path).ok());
    let Some(body) = file else {
        return out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    };
    let total = body.len();
    let (status, first, last) = match request.range.as_deref().and_then(|r| parse_range(r, total)) {
        Some((first, last)) => ("206 Partial Content", first, last),
        None if request.range.is_some() => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\n\r\n"
            );
            return out.write_all(head.as_bytes());
        }
        None => ("200 OK", 0, total.saturating_sub(1)),
    };
    let part = if total == 0 {
        &[][..]
    } else {
        &body[first..=last]
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n",
        content_type(relative),
        part.len()
    );
    if status.starts_with("206") {
        head.push_str(&format!("Content-Range: bytes {first}-{last}/{total}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if request.method != "HEAD" {
        out.write_all(part)?;
    }
    out.flush()
}

/// `bytes=first-` or `bytes=first-last` within a body of `total` bytes.
fn parse_range(range: &str, total: usize) -> Option<(usize, usize)> {
    let (first, last) = range.strip_prefix("bytes=")?.split_once('-')?;
    let first: usize = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => total.checked_sub(1)?,
        last => last.parse::<usize>().ok()?.min(total.checked_sub(1)?),
    };
    (first <= last).then_some((first, last))
}

fn content_type(path: &str) -> &'static str {
    match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    }
}

/// A live HLS playlist in a served folder: segments (files `index<N>.ts` of one HLS
/// muxing, each `seconds` long) published `initial` at once, then one more at each
/// `append`, without `#EXT-X-ENDLIST` until `close`. The playlist is rewritten whole
/// each time (written aside, then renamed), as a packager does.
pub struct LivePlaylist {
    playlist: PathBuf,
    seconds: f64,
    available: usize,
    published: usize,
}

impl LivePlaylist {
    /// Copies the segments of `segments_dir` into `served/<name>/` and publishes the
    /// first `initial` of them as `served/<name>/index.m3u8`.
    pub fn start(
        segments_dir: &Path,
        served: &Path,
        name: &str,
        seconds: f64,
        initial: usize,
    ) -> LivePlaylist {
        let folder = served.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let mut available = 0;
        while segments_dir.join(segment(available)).exists() {
            let file = segment(available);
            std::fs::copy(segments_dir.join(&file), folder.join(&file)).unwrap();
            available += 1;
        }
        assert!(available > initial, "only {available} segments to publish");
        let playlist = LivePlaylist {
            playlist: folder.join("index.m3u8"),
            seconds,
            available,
            published: initial,
        };
        playlist.write(false);
        playlist
    }

    /// Segments published so far.
    pub fn published(&self) -> usize {
        self.published
    }

    /// Publishes the next segment.
    pub fn append(&mut self) {
        assert!(self.published < self.available, "no segment left to append");
        self.published += 1;
        self.write(false);
    }

    /// Ends the playlist where it is: `#EXT-X-ENDLIST`.
    pub fn close(&self) {
        self.write(true);
    }

    fn write(&self, closed: bool) {
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n",
            self.seconds.ceil()
        );
        for n in 0..self.published {
            text.push_str(&format!("#EXTINF:{:.6},\n{}\n", self.seconds, segment(n)));
        }
        if closed {
            text.push_str("#EXT-X-ENDLIST\n");
        }
        let aside = self.playlist.with_extension("m3u8.part");
        std::fs::write(&aside, text).unwrap();
        std::fs::rename(aside, &self.playlist).unwrap();
    }
}

fn segment(n: usize) -> String {
    format!("index{n}.ts")
}
