//! Hand-written TCP servers for the faults a real camera server will not produce on
//! demand: one that never answers, a proxy that counts connections, and an HTTP server
//! whose stream never decodes.

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
