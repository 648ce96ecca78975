//! Reading the video stream's packets, each read bounded by a deadline, and telling a
//! live source that has stopped giving frames (stalled) from one that is slow.

use std::time::{Duration, Instant};

use ffmpeg_next::{format, Packet};

use crate::media::input::Deadline;
use crate::media::{classify, FailureKind, MediaError};
use crate::stop::StopToken;

/// What a read gave.
pub enum Read {
    /// The next packet of the video stream.
    Packet(Packet),
    /// A packet the demuxer could not make sense of.
    Damaged,
    /// The input has ended.
    Ended,
}

pub struct Reader {
    name: String,
    input: format::context::Input,
    deadline: Deadline,
    stream_index: usize,
    stop: StopToken,
    read_timeout: Duration,
    /// A live source that gives no video frame for this long has stalled.
    stall_timeout: Option<Duration>,
    last_frame_at: Instant,
}

impl Reader {
    /// Reads `stream_index` of `input`, whose interrupt callback watches `deadline`;
    /// each read may take `read_timeout`, and a source read as live that gives no frame
    /// for `stall_timeout` has stalled.
    pub fn new(
        name: String,
        input: format::context::Input,
        deadline: Deadline,
        stream_index: usize,
        stop: &StopToken,
        read_timeout: Duration,
        stall_timeout: Option<Duration>,
    ) -> Reader {
        Reader {
            name,
            input,
            deadline,
            stream_index,
            stop: stop.clone(),
            read_timeout,
            stall_timeout,
            last_frame_at: Instant::now(),
        }
    }

    /// The next packet of the video stream. `damaged` (frames dropped so far) is for
    /// the error of a source that stalled.
    pub fn read(&mut self, damaged: u64) -> Result<Read, MediaError> {
        let mut packet = Packet::empty();
        loop {
            self.arm_deadline(damaged)?;
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() != self.stream_index => {}
                Ok(()) => return Ok(Read::Packet(packet)),
                Err(ffmpeg_next::Error::Eof) => return Ok(Read::Ended),
                Err(ffmpeg_next::Error::InvalidData) => return Ok(Read::Damaged),
                Err(_) if self.stalled() => return Err(self.stall_error(damaged)),
                Err(e) => {
                    return Err(classify(
                        e,
                        &self.name,
                        &self.stop,
                        self.read_timeout,
                        "reading",
                        |message, kind| MediaError::Read {
                            source_name: self.name.clone(),
                            message,
                            kind,
                        },
                    ))
                }
            }
        }
    }

    /// Bounds the next read by the read timeout and, for live sources, by what is left
    /// of the stall timeout.
    fn arm_deadline(&mut self, damaged: u64) -> Result<(), MediaError> {
        let limit = match self.stall_timeout {
            Some(stall) => {
                let left = stall
                    .checked_sub(self.last_frame_at.elapsed())
                    .ok_or_else(|| self.stall_error(damaged))?;
                left.min(self.read_timeout)
            }
            None => self.read_timeout,
        };
        self.deadline.arm(limit);
        Ok(())
    }

    /// The source is alive (a frame came, or nothing is due yet): restarts the stall
    /// clock, unless the input was cut short: what it still hands back then was
    /// flushed by the failed read, and the failure that follows must be judged by the
    /// time the source was really last alive.
    pub fn mark_alive(&mut self) {
        if !self.deadline.has_passed() {
            self.last_frame_at = Instant::now();
        }
    }

    fn stalled(&self) -> bool {
        self.stall_timeout
            .is_some_and(|stall| self.last_frame_at.elapsed() >= stall)
    }

    fn stall_error(&self, damaged: u64) -> MediaError {
        MediaError::Stalled {
            source_name: self.name.clone(),
            seconds: self.last_frame_at.elapsed().as_secs_f64(),
            damaged,
        }
    }

    /// Seeks back to the start of the input.
    pub fn rewind(&mut self) -> Result<(), MediaError> {
        self.input
            .seek(i64::MIN + 1, ..)
            .or_else(|_| self.input.seek(0, ..))
            .map_err(|e| MediaError::Read {
                source_name: self.name.clone(),
                message: format!("cannot rewind: {e}"),
                kind: FailureKind::Other,
            })
    }
}
