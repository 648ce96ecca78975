//! Hand-written TCP servers for the faults a real camera server will not produce on
//! demand: one that never answers, a proxy that counts connections, an HTTP server
//! whose stream never decodes, and RTSP servers that answer garbage or never finish
//! an answer.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::mpegts::{GarbageMuxer, FRAME_INTERVAL, TS_PACKET};

/// A TCP server that accepts connections and never says a word, holding each one open
/// until dropped: the camera that hangs after the handshake.
pub struct SilentServer {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let accepted = Arc::clone(&accepted);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut held = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            held.push(stream);
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        SilentServer {
            port,
            accepted,
            done,
            thread: Some(thread),
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP proxy in front of a server that records when each connection was accepted,
/// to count a camera's connection attempts.
pub struct CountingProxy {
    pub port: u16,
    accepted: Arc<Mutex<Vec<Instant>>>,
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl CountingProxy {
    pub fn start(upstream: u16) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let accepted = Arc::clone(&accepted);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            accepted.lock().unwrap().push(Instant::now());
                            relay(client, upstream);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        CountingProxy {
            port,
            accepted,
            done,
            thread: Some(thread),
        }
    }

    pub fn connections(&self) -> Vec<Instant> {
        self.accepted.lock().unwrap().clone()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies both ways between `client` and a new connection to `upstream` until either
/// side closes, then closes both.
fn relay(client: TcpStream, upstream: u16) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let pairs = [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ];
    for pair in pairs {
        if let (Ok(mut from), Ok(mut to)) = pair {
            thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
            });
        }
    }
}

/// An HTTP server whose every answer is an endless MPEG-TS stream that declares one
/// H.264 video stream and carries only garbage in it: a live source whose packets keep
/// coming and never decode.
pub struct GarbageTsServer {
    pub port: u16,
    packets: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Frames sent at once when a client connects: more than libav's 7 s of MPEG-TS
/// analysis, so the open does not wait on the pacing.
const BURST_FRAMES: u64 = 250;

impl GarbageTsServer {
    pub fn start() -> GarbageTsServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let packets = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let packets = Arc::clone(&packets);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let packets = Arc::clone(&packets);
                            let done = Arc::clone(&done);
                            thread::spawn(move || serve_garbage(client, &packets, &done));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        GarbageTsServer {
            port,
            packets,
            done,
            thread: Some(thread),
        }
    }

    /// Transport-stream packets sent so far, on all connections.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::SeqCst)
    }
}

impl Drop for GarbageTsServer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_garbage(mut client: TcpStream, packets: &AtomicU64, done: &AtomicBool) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = client.set_write_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buffer) {
            Ok(n) if n > 0 => request.extend_from_slice(&buffer[..n]),
            _ => return,
        }
    }
    let header = b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n";
    if client.write_all(header).is_err() {
        return;
    }
    let mut muxer = GarbageMuxer::default();
    let started = Instant::now();
    for frame in 0u64.. {
        if done.load(Ordering::SeqCst) {
            return;
        }
        if frame >= BURST_FRAMES {
            let due = FRAME_INTERVAL * (frame - BURST_FRAMES) as u32;
            thread::sleep(due.saturating_sub(started.elapsed()));
        }
        let chunk = muxer.frame(frame);
        if client.write_all(&chunk).is_err() {
            return;
        }
        packets.fetch_add((chunk.len() / TS_PACKET) as u64, Ordering::SeqCst);
    }
}

/// What a [`HostileRtspServer`] does with a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspHostility {
    /// Random bytes from the first moment, as fast as the client reads them.
    Garbage,
    /// Answers OPTIONS, then answers DESCRIBE with a 2 GB `Content-Length` and an
    /// endless session description.
    EndlessDescription,
    /// Answers OPTIONS, then starts DESCRIBE's answer with a header line that never
    /// ends.
    EndlessHeader,
}

/// An RTSP server that misbehaves as told with every client, until dropped; counts
/// the bytes it sent.
pub struct HostileRtspServer {
    pub port: u16,
    sent: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HostileRtspServer {
    pub fn start(hostility: RtspHostility) -> HostileRtspServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let sent = Arc::clone(&sent);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let sent = Arc::clone(&sent);
                            let done = Arc::clone(&done);
                            thread::spawn(move || misbehave(client, hostility, &sent, &done));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        HostileRtspServer {
            port,
            sent,
            done,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/stream", self.port)
    }

    /// Bytes sent so far, to all clients.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for HostileRtspServer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn misbehave(mut client: TcpStream, hostility: RtspHostility, sent: &AtomicU64, done: &AtomicBool) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = client.set_write_timeout(Some(Duration::from_secs(5)));
    let send = |client: &mut TcpStream, bytes: &[u8]| {
        let ok = client.write_all(bytes).is_ok();
        if ok {
            sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        }
        ok && !done.load(Ordering::SeqCst)
    };
    if hostility == RtspHostility::Garbage {
        let mut seed = 0x5EED;
        loop {
            seed += 1;
            if !send(&mut client, &super::hostile::random_bytes(16 * 1024, seed)) {
                return;
            }
        }
    }
    let mut pending = Vec::new();
    loop {
        let Some((method, cseq)) = next_request(&mut client, &mut pending) else {
            return;
        };
        if method != "DESCRIBE" {
            let answer = format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
            );
            if !send(&mut client, answer.as_bytes()) {
                return;
            }
            continue;
        }
        let (head, filler): (String, &[u8]) = match hostility {
            RtspHostility::EndlessDescription => (
                format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n\
                     Content-Length: 2000000000\r\n\r\nv=0\r\n"
                ),
                b"a=x-filler:0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
            ),
            _ => (
                format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nX-Filler: "),
                b"0123456789abcdef",
            ),
        };
        let chunk = filler.repeat(64 * 1024 / filler.len());
        if !send(&mut client, head.as_bytes()) {
            return;
        }
        while send(&mut client, &chunk) {}
        return;
    }
}

/// The method and CSeq of the next request (headers only), or `None` once the client
/// is gone.
fn next_request(client: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, String)> {
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match client.read(&mut buffer) {
            Ok(n) if n > 0 => pending.extend_from_slice(&buffer[..n]),
            _ => return None,
        }
    };
    let head = String::from_utf8_lossy(&pending[..end]).into_owned();
    pending.drain(..end + 4);
    let method = head.split_whitespace().next()?.to_owned();
    let cseq = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("cseq")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    Some((method, cseq))
}
