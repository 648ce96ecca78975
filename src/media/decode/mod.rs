//! A video source: one input, its best video stream and a decoder, driven by the
//! canonical send_packet / receive_frame loop (EAGAIN means "feed me", EOF is always
//! sent and the decoder drained).

use std::time::{Duration, Instant};

use ffmpeg_next::codec;
use ffmpeg_next::util::error::EAGAIN;
use ffmpeg_next::{frame, media};

mod damage;
mod queue;
mod reader;
mod timestamps;

use super::convert::Converter;
use super::hw::{Decoder, HwFailure, HwRequest, HwState, HwStatus};
use super::input;
use super::planner::{FrameDemand, Step};
use super::MediaError;
use crate::picture::Yuv420;
use crate::sampling::Sampling;
use crate::source::{RtspTransport, Source};
use crate::stop::StopToken;
use damage::DamageFilter;
use queue::PacketQueue;
use reader::{Read, Reader};
use timestamps::Timestamps;

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub open_timeout: Duration,
    pub read_timeout: Duration,
    /// Decoder threads; 0 lets libav choose.
    pub threads: usize,
    /// How much to decode (see `planner`).
    pub sampling: Sampling,
    /// Sampled frames leave the decoder as soon as they can, at the cost of a few
    /// more frames decoded; always so for live sources.
    pub low_latency: bool,
    /// A live source that gives no video frame for this long has stalled.
    pub stall_timeout: Option<Duration>,
    pub rtsp_transport: RtspTransport,
    /// Hardware to decode with, tried before software.
    pub hwaccel: HwRequest,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            open_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            threads: 0,
            sampling: Sampling::default(),
            low_latency: false,
            stall_timeout: None,
            rtsp_transport: RtspTransport::default(),
            hwaccel: HwRequest::default(),
        }
    }
}

/// Frames the decoder produced that were not used, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Flagged as damaged by the decoder, or following damage until the next keyframe.
    pub corrupt: u64,
    /// Packets the decoder refused.
    pub rejected_packets: u64,
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
    stop: StopToken,
    reader: Reader,
    timestamps: Timestamps,
    decoder: Decoder,
    /// What the decoder is rebuilt from when it changes backend.
    parameters: codec::Parameters,
    threads: usize,
    hw: HwState,
    /// The decoder that takes over once the current one is drained.
    next_decoder: Option<Decoder>,
    /// A new decoder waits for a keyframe: packets before it are not sent.
    skip_to_keyframe: bool,
    /// Hardware decoding should give way to software at the next keyframe.
    leave_hardware: bool,
    frame: frame::Video,
    queue: PacketQueue,
    restarting: bool,
    eof_sent: bool,
    damage: DamageFilter,
    converter: Converter,
    drops: DropCounts,
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
        let (input, deadline) = input::open(
            source,
            options.open_timeout,
            options.rtsp_transport,
            stop,
            "opening",
        )?;

        let stream =
            input
                .streams()
                .best(media::Type::Video)
                .ok_or_else(|| MediaError::NoVideoStream {
                    source_name: name.clone(),
                })?;
        let stream_index = stream.index();
        let is_h264 = stream.parameters().id() == codec::Id::H264;
        let timestamps = Timestamps::of(&input, &stream);

        let parameters = stream.parameters().clone();
        let (decoder, failure) = Decoder::open(&parameters, options.threads, &options.hwaccel)
            .map_err(|e| MediaError::Decoder {
                source_name: name.clone(),
                message: format!("{e} (codec {:?})", parameters.id()),
            })?;
        let mut hw = HwState::new(options.hwaccel.clone());
        if let Some(failure) = failure {
            log::info!("{name}: {}; decoding in software", failure.message);
            hw.failed(failure, Instant::now());
        } else if let Some(backend) = decoder.backend() {
            log::info!("{name}: decoding on {backend}");
        }

        Ok(VideoSource {
            stop: stop.clone(),
            reader: Reader::new(name.clone(), input, deadline, stream_index, stop, options),
            timestamps,
            decoder,
            parameters,
            threads: options.threads,
            hw,
            next_decoder: None,
            skip_to_keyframe: false,
            leave_hardware: false,
            frame: frame::Video::empty(),
            queue: PacketQueue::new(
                options.sampling,
                source.is_live() || options.low_latency,
                is_h264,
            ),
            restarting: false,
            eof_sent: false,
            damage: DamageFilter::new(name.clone()),
            name,
            converter: Converter::default(),
            drops: DropCounts::default(),
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
                    if let Some(reason) = self.decoder.decoding_in_software() {
                        if !self.leave_hardware && self.next_decoder.is_none() {
                            log::warn!("{}: {reason}", self.name);
                            self.leave_hardware = true;
                            self.hw.failed(
                                HwFailure {
                                    message: reason,
                                    retryable: false,
                                },
                                Instant::now(),
                            );
                        }
                    }
                    if !self.damage.admit(&self.frame) {
                        self.drops.corrupt += 1;
                        continue;
                    }
                    self.reader.mark_alive();
                    return Ok(Some(self.timestamps.frame(self.frame.timestamp())));
                }
                Err(ffmpeg_next::Error::Other { errno }) if errno == EAGAIN => {
                    if self.eof_sent {
                        return Ok(None);
                    }
                    self.feed_decoder(demand)?;
                }
                Err(ffmpeg_next::Error::Eof) if self.restarting => {
                    match self.next_decoder.take() {
                        Some(next) => self.decoder = next,
                        None => self.decoder.flush(),
                    }
                    self.restarting = false;
                }
                Err(ffmpeg_next::Error::Eof) => return Ok(None),
                Err(ffmpeg_next::Error::InvalidData) => {
                    self.drops.corrupt += 1;
                    self.damage.seen();
                    self.check_hardware()?;
                }
                // A hardware decode or transfer error loses one frame; repeated ones
                // move decoding to software.
                Err(_) if !self.decoder.is_software() => {
                    self.drops.corrupt += 1;
                    self.check_hardware()?;
                }
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
            match self.queue.next() {
                Some(Step::Send(timed)) => {
                    if self.skip_to_keyframe {
                        if !timed.packet.is_key() {
                            continue;
                        }
                        self.skip_to_keyframe = false;
                    }
                    if timed.packet.is_key() {
                        if let Some(next) = self.decoder_from_keyframe() {
                            // Drain the current decoder first: no decoded frame is lost.
                            self.queue.put_back(Step::Send(timed));
                            let _ = self.decoder.send_eof();
                            self.next_decoder = Some(next);
                            self.restarting = true;
                            return Ok(());
                        }
                    }
                    match self.decoder.send_packet(&timed.packet) {
                        Ok(()) => return Ok(()),
                        // A damaged packet: the decoder resynchronises at a keyframe.
                        Err(_) => {
                            self.drops.rejected_packets += 1;
                            self.damage.seen();
                            self.check_hardware()?;
                        }
                    }
                }
                Some(Step::Restart) => {
                    // Errors here only mean the decoder was already drained.
                    let _ = self.decoder.send_eof();
                    self.restarting = true;
                    return Ok(());
                }
                None if self.queue.input_ended() => {
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                    return Ok(());
                }
                None => self.demux(demand)?,
            }
        }
    }

    /// At a keyframe: the decoder that should take over from here, if any: software
    /// when libav decodes in software behind the hardware decoder anyway, hardware
    /// again when its retry is due and it opens.
    fn decoder_from_keyframe(&mut self) -> Option<Decoder> {
        if self.leave_hardware {
            self.leave_hardware = false;
            return self.software_decoder().ok();
        }
        if !self.decoder.is_software() || !self.hw.retry_due(Instant::now()) {
            return None;
        }
        match Decoder::open_hardware(&self.parameters, &self.hw.request) {
            Ok(decoder) => {
                if let Some(backend) = decoder.backend() {
                    log::info!("{}: decoding on {backend} again", self.name);
                }
                self.hw.reason = None;
                Some(decoder)
            }
            Err(failure) => {
                log::info!(
                    "{}: hardware still unusable: {}",
                    self.name,
                    failure.message
                );
                self.hw.failed(failure, Instant::now());
                None
            }
        }
    }

    fn software_decoder(&self) -> Result<Decoder, MediaError> {
        Decoder::software(&self.parameters, self.threads).map_err(|e| MediaError::Decoder {
            source_name: self.name.clone(),
            message: e.to_string(),
        })
    }

    /// Replaces a hardware decoder that keeps failing by a software one, on the same
    /// connection: the demuxer goes on and decoding resumes at the next keyframe.
    fn check_hardware(&mut self) -> Result<(), MediaError> {
        let Some(reason) = self.decoder.broken() else {
            return Ok(());
        };
        log::warn!(
            "{}: {reason}; decoding in software from the next keyframe",
            self.name
        );
        self.decoder.forget_device();
        self.decoder = self.software_decoder()?;
        self.next_decoder = None;
        self.restarting = false;
        self.leave_hardware = false;
        self.skip_to_keyframe = true;
        let failure = HwFailure {
            message: reason,
            retryable: true,
        };
        self.hw.failed(failure, Instant::now());
        Ok(())
    }

    /// Reads packets until the planner has decided something (or the input ends).
    fn demux(&mut self, demand: &dyn FrameDemand) -> Result<(), MediaError> {
        while self.queue.is_empty() {
            match self.reader.read(self.drops.corrupt)? {
                Read::Packet(packet) => {
                    let time = self.timestamps.packet_time(packet.pts());
                    self.queue.push(packet, time, demand);
                    if self.queue.holding() {
                        // Nothing is due: the source is alive, no frame is expected yet.
                        self.reader.mark_alive();
                    }
                }
                Read::Ended => {
                    self.queue.finish(demand);
                    return Ok(());
                }
                Read::Damaged => {
                    self.drops.corrupt += 1;
                    self.damage.seen();
                }
            }
        }
        Ok(())
    }

    /// Starts the source again from its beginning (a looped file). Its timestamps start
    /// again too: they are always the source's own.
    pub fn rewind(&mut self) -> Result<(), MediaError> {
        self.reader.rewind()?;
        self.decoder.flush();
        self.next_decoder = None;
        self.skip_to_keyframe = false;
        self.queue.rewind();
        self.restarting = false;
        self.eof_sent = false;
        self.damage.rewind();
        self.timestamps.rewind();
        Ok(())
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

    /// Seconds between frames, from the frame rate the stream states (or a default):
    /// what a frame without a timestamp is placed after the one before it.
    pub fn frame_interval(&self) -> f64 {
        self.timestamps.frame_interval()
    }

    /// Frames and packets not used because of damage, so far.
    pub fn drops(&self) -> DropCounts {
        self.drops
    }

    /// The hardware backend decoding now and why it is not the one asked for, when it
    /// is not.
    pub fn hwaccel(&self) -> HwStatus {
        self.hw.status(&self.decoder)
    }

    /// Packets left undecoded because no sample needed them, so far.
    pub fn skipped_unneeded(&self) -> u64 {
        self.queue.skipped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::hw::{write_h264_clip, HwBackend};
    use crate::media::EveryFrame;

    /// Decodes `video` to its end: the timestamps of its frames.
    fn timestamps(video: &mut VideoSource) -> Vec<f64> {
        std::iter::from_fn(|| video.next_frame(&EveryFrame).unwrap())
            .map(|frame| frame.timestamp)
            .collect()
    }

    #[test]
    fn a_rewound_file_starts_its_timestamps_again() {
        crate::media::init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gop10.ts");
        write_h264_clip(&path, 30, 10).unwrap();
        let source = Source::parse(path.to_str().unwrap(), &[dir.path().to_owned()]).unwrap();
        let options = OpenOptions {
            sampling: Sampling::All,
            ..OpenOptions::default()
        };
        let mut video = VideoSource::open(&source, &options, &StopToken::new()).unwrap();
        assert!((video.frame_interval() - 0.04).abs() < 1e-9);
        let first = timestamps(&mut video);
        assert_eq!(first.len(), 30);
        video.rewind().unwrap();
        assert_eq!(timestamps(&mut video), first);
    }

    /// A looped file on a "hardware" decoder that fails every frame after its 15th:
    /// after three failures in a row the source decodes in software, on the same input,
    /// keeps producing frames and says why; once the retry is due it goes back to the
    /// "hardware" at a keyframe, which fails again, and frames still come.
    #[test]
    fn hardware_failing_mid_stream_gives_way_to_software_and_is_retried() {
        crate::media::init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gop10.ts");
        // Three seconds at 25 fps, a keyframe every 0.4 s.
        write_h264_clip(&path, 75, 10).unwrap();
        let source = Source::parse(path.to_str().unwrap(), &[dir.path().to_owned()]).unwrap();
        let fault = HwBackend::FaultInjection { good_frames: 15 };
        let options = OpenOptions {
            sampling: Sampling::All,
            hwaccel: HwRequest {
                backends: vec![fault],
                retry_after: Duration::from_millis(300),
                ..HwRequest::default()
            },
            ..OpenOptions::default()
        };
        let mut video = VideoSource::open(&source, &options, &StopToken::new()).unwrap();
        assert_eq!(
            video.hwaccel(),
            HwStatus {
                backend: Some(fault),
                reason: None
            }
        );

        // Each change of backend, with the frames decoded before it and the reason
        // given with the first frame after it.
        let mut changes: Vec<(Option<HwBackend>, u64, Option<String>)> = Vec::new();
        let mut frames = 0;
        let give_up = Instant::now() + Duration::from_secs(60);
        while changes.len() < 4 || frames < changes[3].1 + 5 {
            assert!(
                Instant::now() < give_up,
                "{changes:?} after {frames} frames"
            );
            let Some(_) = video.next_frame(&EveryFrame).unwrap() else {
                video.rewind().unwrap();
                continue;
            };
            let HwStatus { backend, reason } = video.hwaccel();
            if changes.last().is_none_or(|(last, ..)| *last != backend) {
                changes.push((backend, frames, reason));
            }
            frames += 1;
        }

        let backends: Vec<_> = changes.iter().map(|(backend, ..)| *backend).collect();
        assert_eq!(backends, [Some(fault), None, Some(fault), None]);
        let (_, on_hardware, reason) = &changes[0];
        assert_eq!((*on_hardware, reason), (0, &None));
        let (_, fell_back, reason) = &changes[1];
        let reason = reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("fault-injection decoding failed 3 times in a row (injected fault)"),
            "{reason}"
        );
        // Fifteen good frames, three failures, then software from the next keyframe.
        assert_eq!(*fell_back, 15);
        let (_, back, reason) = &changes[2];
        assert!(*back > fell_back + 5, "{changes:?}");
        assert_eq!(reason, &None);
        assert_eq!(changes[3].1, back + 15, "{changes:?}");
        assert_eq!(video.drops().corrupt, 6);
    }
}
