//! JPEG encoding off the decoding threads: a fixed set of encoder threads fed by one
//! bounded crossbeam channel. A camera never waits for a slow disk or a burst of
//! frames: when the queue is full the frame is refused, and the camera counts a drop.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::output::jpeg::{JpegEncoder, JpegError};
use crate::picture::OwnedYuv420;

/// Called on an encoder thread with the encoded frame (or why there is none) and the
/// time spent encoding it.
pub type Delivery = Box<dyn FnOnce(Result<Vec<u8>, JpegError>, Duration) + Send>;

pub struct EncodeJob {
    pub picture: OwnedYuv420,
    /// The camera's own JPEG quality; `None`: the pool's.
    pub quality: Option<u8>,
    pub deliver: Delivery,
}

#[derive(Debug)]
pub struct EncodePool {
    /// `None` once shut down; dropping the sender lets the threads finish the queue.
    sender: Option<Sender<EncodeJob>>,
    threads: Vec<JoinHandle<()>>,
}

impl EncodePool {
    /// `threads` encoder threads sharing a queue of `capacity` frames.
    pub fn new(threads: usize, capacity: usize, quality: u8) -> std::io::Result<EncodePool> {
        let (sender, receiver) = crossbeam_channel::bounded(capacity.max(1));
        let threads = (0..threads.max(1))
            .map(|n| {
                let receiver = receiver.clone();
                thread::Builder::new()
                    .name(format!("jpeg-{n}"))
                    .spawn(move || encode_until_closed(&receiver, quality))
            })
            .collect::<Result<_, _>>()?;
        Ok(EncodePool {
            sender: Some(sender),
            threads,
        })
    }

    /// Queues a frame; gives the job back when the queue is full (or shut down).
    pub fn try_submit(&self, job: EncodeJob) -> Result<(), EncodeJob> {
        let Some(sender) = &self.sender else {
            return Err(job);
        };
        sender.try_send(job).map_err(|e| match e {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
        })
    }

    /// Frames waiting for an encoder thread.
    pub fn queued(&self) -> usize {
        self.sender.as_ref().map_or(0, Sender::len)
    }

    /// How many frames may wait before new ones are refused.
    pub fn capacity(&self) -> usize {
        self.sender.as_ref().and_then(Sender::capacity).unwrap_or(0)
    }

    /// Encodes what is queued, then ends the threads.
    pub fn shutdown(&mut self) {
        self.sender = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for EncodePool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn encode_until_closed(jobs: &Receiver<EncodeJob>, quality: u8) {
    let mut encoder = match JpegEncoder::new(quality) {
        Ok(encoder) => encoder,
        Err(e) => {
            log::error!("JPEG encoder thread cannot start: {e}");
            for job in jobs {
                (job.deliver)(Err(JpegError::Unavailable(e.to_string())), Duration::ZERO);
            }
            return;
        }
    };
    for job in jobs {
        let started = Instant::now();
        let result = encoder
            .set_quality(job.quality.unwrap_or(quality))
            .and_then(|()| encoder.encode(&job.picture.view()));
        (job.deliver)(result, started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn picture() -> OwnedYuv420 {
        OwnedYuv420::gray(16, 16)
    }

    #[test]
    fn encodes_and_delivers() {
        let pool = EncodePool::new(2, 4, 90).unwrap();
        let (done, results) = mpsc::channel();
        for n in 0..3 {
            let done = done.clone();
            let job = EncodeJob {
                picture: picture(),
                quality: None,
                deliver: Box::new(move |jpeg, took| done.send((n, jpeg.unwrap(), took)).unwrap()),
            };
            assert!(pool.try_submit(job).is_ok());
        }
        let mut got: Vec<_> = (0..3).map(|_| results.recv().unwrap()).collect();
        got.sort_by_key(|(n, ..)| *n);
        assert!(got
            .iter()
            .all(|(_, jpeg, _)| jpeg.starts_with(&[0xFF, 0xD8])));
        assert!(got.iter().all(|(.., took)| !took.is_zero()));
    }

    #[test]
    fn a_full_queue_gives_the_job_back() {
        let pool = EncodePool::new(1, 1, 90).unwrap();
        // Block the only thread so the queue fills up.
        let (release, wait) = mpsc::channel::<()>();
        let blocker = EncodeJob {
            picture: picture(),
            quality: None,
            deliver: Box::new(move |_, _| {
                let _ = wait.recv();
            }),
        };
        assert!(pool.try_submit(blocker).is_ok());
        let mut refused = 0;
        for _ in 0..5 {
            let job = EncodeJob {
                picture: picture(),
                quality: None,
                deliver: Box::new(|_, _| {}),
            };
            if pool.try_submit(job).is_err() {
                refused += 1;
            }
        }
        assert!(refused >= 3, "only {refused} refused");
        // The blocker is taken or waiting; one more may wait behind it.
        assert!(pool.queued() <= pool.capacity());
        assert_eq!(pool.capacity(), 1);
        release.send(()).unwrap();
    }
}
