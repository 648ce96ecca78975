//! A video source: one input, its best video stream and a decoder, driven by the
//! canonical send_packet / receive_frame loop (EAGAIN means "feed me", EOF is always
//! sent and the decoder drained).

use std::collections::VecDeque;
use std::time::Duration;

use ffmpeg_next::codec::{self, threading};
use ffmpeg_next::util::error::{EAGAIN, ETIMEDOUT};
use ffmpeg_next::{format, frame, media, Packet, Rational};

use super::convert::Converter;
use super::gop::{FrameDemand, GopPlanner, PacketInfo, Step};
use super::input::{self, Deadline};
use super::MediaError;
use crate::picture::Yuv420;
use crate::source::{redact_in, Source};
use crate::stop::StopToken;

/// Used when a stream states no frame rate, to give frames without timestamps one.
const FALLBACK_FRAME_RATE: f64 = 25.0;

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub open_timeout: Duration,
    pub read_timeout: Duration,
    /// Decoder threads; 0 lets libav choose.
    pub threads: usize,
    /// Leave undecoded the frames the caller's demand does not need (see `gop`).
    pub sample_aware: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            open_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            threads: 0,
            sample_aware: true,
        }
    }
}

/// A demuxed packet with what the planner needs to know of it.
struct TimedPacket {
    packet: Packet,
    time: Option<f64>,
}

impl PacketInfo for TimedPacket {
    fn time(&self) -> Option<f64> {
        self.time
    }
    fn is_key(&self) -> bool {
        self.packet.is_key()
    }
}

/// What the decode loop knows about the frame it just produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodedFrame {
    /// Seconds on the source's timeline.
    pub timestamp: f64,
    /// Share of a finite source already decoded (0..1), when its duration is known.
    pub progress: Option<f64>,
}

pub struct VideoSource {
    name: String,
    input: format::context::Input,
    deadline: Deadline,
    read_timeout: Duration,
    stop: StopToken,
    stream_index: usize,
    time_base: f64,
    frame_interval: f64,
    start_time: f64,
    duration: Option<f64>,
    decoder: codec::decoder::Video,
    frame: frame::Video,
    planner: GopPlanner<TimedPacket>,
    ready: VecDeque<Step<TimedPacket>>,
    demuxer_ended: bool,
    restarting: bool,
    eof_sent: bool,
    last_timestamp: Option<f64>,
    converter: Converter,
    skipped_corrupt: u64,
}

impl VideoSource {
    /// Opens `source`, picks its best video stream and opens a software decoder.
    pub fn open(
        source: &Source,
        options: &OpenOptions,
        stop: &StopToken,
    ) -> Result<VideoSource, MediaError> {
        super::init();
        let name = source.redacted();
        let location = source.location();
        let (input, deadline) = input::open(source, options.open_timeout, stop).map_err(|e| {
            classify(e, &name, stop, options.open_timeout, "opening", |message| {
                MediaError::Open {
                    source_name: name.clone(),
                    message: redact_in(&message, &location),
                }
            })
        })?;

        let stream =
            input
                .streams()
                .best(media::Type::Video)
                .ok_or_else(|| MediaError::NoVideoStream {
                    source_name: name.clone(),
                })?;
        let stream_index = stream.index();
        let time_base = rational_to_f64(stream.time_base()).unwrap_or(1.0 / 90_000.0);
        let frame_rate = rational_to_f64(stream.avg_frame_rate())
            .or_else(|| rational_to_f64(stream.rate()))
            .filter(|r| *r > 0.0 && *r < 1000.0)
            .unwrap_or(FALLBACK_FRAME_RATE);
        let start_time = if stream.start_time() == ffmpeg_next::ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            stream.start_time() as f64 * time_base
        };
        let duration = if stream.duration() > 0 {
            Some(stream.duration() as f64 * time_base)
        } else if input.duration() > 0 {
            Some(input.duration() as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE))
        } else {
            None
        };

        let decoder_error = |e: ffmpeg_next::Error| MediaError::Decoder {
            source_name: name.clone(),
            message: e.to_string(),
        };
        let mut context =
            codec::context::Context::from_parameters(stream.parameters()).map_err(decoder_error)?;
        context.set_threading(threading::Config {
            kind: threading::Type::Frame,
            count: options.threads,
            ..Default::default()
        });
        let decoder = context.decoder().video().map_err(|e| MediaError::Decoder {
            source_name: name.clone(),
            message: format!("{e} (codec {:?})", stream.parameters().id()),
        })?;

        Ok(VideoSource {
            name,
            input,
            deadline,
            read_timeout: options.read_timeout,
            stop: stop.clone(),
            stream_index,
            time_base,
            frame_interval: 1.0 / frame_rate,
            start_time,
            duration,
            decoder,
            frame: frame::Video::empty(),
            planner: GopPlanner::new(options.sample_aware),
            ready: VecDeque::new(),
            demuxer_ended: false,
            restarting: false,
            eof_sent: false,
            last_timestamp: None,
            converter: Converter::default(),
            skipped_corrupt: 0,
        })
    }

    /// Decodes the next frame that `demand` may need; `None` once the source has
    /// ended and the decoder is drained.
    pub fn next_frame(
        &mut self,
        demand: &dyn FrameDemand,
    ) -> Result<Option<DecodedFrame>, MediaError> {
        loop {
            if self.stop.is_stopped() {
                return Err(MediaError::Stopped);
            }
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => {
                    if self.frame.is_corrupt() {
                        self.skipped_corrupt += 1;
                        continue;
                    }
                    let frame = self.describe_frame();
                    self.planner.output(frame.timestamp);
                    return Ok(Some(frame));
                }
                Err(ffmpeg_next::Error::Other { errno }) if errno == EAGAIN => {
                    if self.eof_sent {
                        return Ok(None);
                    }
                    self.feed_decoder(demand)?;
                }
                Err(ffmpeg_next::Error::Eof) if self.restarting => {
                    self.decoder.flush();
                    self.planner.drained();
                    self.restarting = false;
                }
                Err(ffmpeg_next::Error::Eof) => return Ok(None),
                Err(ffmpeg_next::Error::InvalidData) => self.skipped_corrupt += 1,
                Err(e) => {
                    return Err(MediaError::Decoder {
                        source_name: self.name.clone(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    /// Gives the decoder its next step: a packet, a drain-and-reset, or end-of-stream.
    fn feed_decoder(&mut self, demand: &dyn FrameDemand) -> Result<(), MediaError> {
        loop {
            match self.ready.pop_front() {
                Some(Step::Send(timed)) => {
                    self.planner.sent(timed.time);
                    match self.decoder.send_packet(&timed.packet) {
                        Ok(()) => return Ok(()),
                        // A damaged packet: the decoder resynchronises on the next one.
                        Err(_) => self.skipped_corrupt += 1,
                    }
                }
                Some(Step::Restart) => {
                    // Errors here only mean the decoder was already drained.
                    let _ = self.decoder.send_eof();
                    self.restarting = true;
                    return Ok(());
                }
                None if self.demuxer_ended => {
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                    return Ok(());
                }
                None => self.demux(demand)?,
            }
        }
    }

    /// Reads packets until the planner has decided something (or the input ends).
    fn demux(&mut self, demand: &dyn FrameDemand) -> Result<(), MediaError> {
        let mut packet = Packet::empty();
        while self.ready.is_empty() {
            self.deadline.arm(self.read_timeout);
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() != self.stream_index => {}
                Ok(()) => {
                    let time = packet.pts().map(|pts| pts as f64 * self.time_base);
                    let timed = TimedPacket {
                        packet: std::mem::replace(&mut packet, Packet::empty()),
                        time,
                    };
                    self.planner.push(timed, demand, &mut self.ready);
                }
                Err(ffmpeg_next::Error::Eof) => {
                    self.demuxer_ended = true;
                    self.planner.finish(demand, &mut self.ready);
                    return Ok(());
                }
                Err(ffmpeg_next::Error::InvalidData) => self.skipped_corrupt += 1,
                Err(e) => {
                    let name = self.name.clone();
                    return Err(classify(
                        e,
                        &name,
                        &self.stop,
                        self.read_timeout,
                        "reading",
                        |message| MediaError::Read {
                            source_name: name.clone(),
                            message,
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    fn describe_frame(&mut self) -> DecodedFrame {
        let timestamp = match self.frame.timestamp() {
            Some(ts) => ts as f64 * self.time_base,
            None => self
                .last_timestamp
                .map_or(self.start_time, |t| t + self.frame_interval),
        };
        self.last_timestamp = Some(timestamp);
        let progress = self.duration.filter(|d| *d > 0.0).map(|duration| {
            ((timestamp - self.start_time + self.frame_interval) / duration).clamp(0.0, 1.0)
        });
        DecodedFrame {
            timestamp,
            progress,
        }
    }

    /// The last decoded frame as full-range 4:2:0 planes, converted only when the
    /// decoder's format is not already that.
    pub fn picture(&mut self) -> Result<Yuv420<'_>, MediaError> {
        let name = &self.name;
        self.converter
            .convert(&self.frame)
            .map_err(|e| MediaError::Convert {
                source_name: name.clone(),
                message: e.to_string(),
            })
    }

    /// Frames the decoder flagged as damaged, or packets it refused, so far.
    pub fn skipped_corrupt(&self) -> u64 {
        self.skipped_corrupt
    }

    /// Packets left undecoded because no sample needed them, so far.
    pub fn skipped_unneeded(&self) -> u64 {
        self.planner.skipped()
    }
}

/// Turns libav's `Exit` (our interrupt callback fired) into a stop or a timeout.
fn classify(
    error: ffmpeg_next::Error,
    name: &str,
    stop: &StopToken,
    limit: Duration,
    doing: &'static str,
    other: impl FnOnce(String) -> MediaError,
) -> MediaError {
    match error {
        _ if stop.is_stopped() => MediaError::Stopped,
        ffmpeg_next::Error::Exit | ffmpeg_next::Error::Other { errno: ETIMEDOUT } => {
            MediaError::Timeout {
                source_name: name.to_owned(),
                seconds: limit.as_secs_f64(),
                doing,
            }
        }
        e => other(e.to_string()),
    }
}

fn rational_to_f64(r: Rational) -> Option<f64> {
    (r.denominator() != 0 && r.numerator() != 0)
        .then(|| f64::from(r.numerator()) / f64::from(r.denominator()))
}
