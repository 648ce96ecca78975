//! A video source: one input, its best video stream and a decoder, driven by the
//! canonical send_packet / receive_frame loop (EAGAIN means "feed me", EOF is always
//! sent and the decoder drained). Its parts each keep their own state: `reader` (the
//! input, read deadlines, stall detection), `queue` (the planner and what it decided),
//! `slot` (the decoder, what it is doing, hardware failover), `damage` (which frames
//! are clean enough to use) and `timestamps` (when each frame is shown).

use std::time::{Duration, Instant};

use ffmpeg_next::{codec, frame, media, Packet};

mod damage;
mod queue;
mod reader;
mod slot;
mod timestamps;

use super::frame_limit::FrameLimit;
use super::hw::{HwRequest, HwStatus};
use super::input::{self, Opening};
use super::libav_limits;
use super::liveness;
use super::planner::Step;
use super::scale::{ShapeFailure, Shaper};
use super::MediaError;
use crate::picture::Yuv420;
use crate::sampling::FrameDemand;
use crate::sampling::Sampling;
use crate::shape::FrameShape;
use crate::source::{RtspTransport, Source};
use crate::stop::StopToken;
use damage::DamageFilter;
use queue::PacketQueue;
use reader::{Read, Reader};
use slot::{DecoderSlot, Fed, Received};
use timestamps::Timestamps;

/// How long opening a source (with reading its stream information) may take.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one packet read may take.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub open_timeout: Duration,
    pub read_timeout: Duration,
    /// Larger frames are refused (`MAX_FRAME_PIXELS`).
    pub frame_limit: FrameLimit,
    /// Decoder threads; 0 lets libav choose.
    pub threads: usize,
    /// How much to decode (see `planner`).
    pub sampling: Sampling,
    /// Sampled frames leave the decoder as soon as they can, at the cost of a few
    /// more frames decoded; always so for live sources.
    pub low_latency: bool,
    /// Read the source as live (`Some(true)`) or finite (`Some(false)`), whatever it
    /// reports; `None`: as it reports (`VideoSource::is_live`).
    pub live: Option<bool>,
    /// A source read as live that gives no video frame for this long has stalled.
    pub stall_timeout: Option<Duration>,
    pub rtsp_transport: RtspTransport,
    /// Hardware to decode with, tried before software.
    pub hwaccel: HwRequest,
    /// The size and region of the frames handed on (default: as decoded).
    pub shape: FrameShape,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            frame_limit: FrameLimit::default(),
            threads: 0,
            sampling: Sampling::default(),
            low_latency: false,
            live: None,
            stall_timeout: None,
            rtsp_transport: RtspTransport::default(),
            hwaccel: HwRequest::default(),
            shape: FrameShape::default(),
        }
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
    stop: StopToken,
    reader: Reader,
    queue: PacketQueue,
    slot: DecoderSlot,
    damage: DamageFilter,
    timestamps: Timestamps,
    frame: frame::Video,
    shaper: Shaper,
    /// Frames not used because of damage: flagged by the decoder, lost to a decode
    /// error, or following damage until the next keyframe.
    damaged: u64,
    /// Frames returned on this connection.
    delivered: u64,
    /// What libav reported when the input opened: it goes on until stopped.
    live: bool,
    /// Time spent in the decoder since the last frame was returned.
    decoding: Duration,
    /// What `decoding` was when the last frame was returned.
    last_decode_time: Duration,
}

impl VideoSource {
    /// Opens `source`, picks its best video stream and opens its decoder: on the
    /// hardware `options` ask for when it opens, else in software. A stream whose
    /// parameters state frames larger than `options.frame_limit` is refused here,
    /// before a decoder exists.
    pub fn open(
        source: &Source,
        options: &OpenOptions,
        stop: &StopToken,
    ) -> Result<VideoSource, MediaError> {
        super::init();
        let name = source.redacted();
        let opening = Opening {
            timeout: options.open_timeout,
            transport: options.rtsp_transport,
            frame_limit: options.frame_limit,
            doing: "opening",
        };
        let (input, deadline) = input::open(source, opening, stop)?;

        let stream =
            input
                .streams()
                .best(media::Type::Video)
                .ok_or_else(|| MediaError::NoVideoStream {
                    source_name: name.clone(),
                })?;
        let stream_index = stream.index();
        let parameters = stream.parameters().clone();
        let (width, height) = libav_limits::stated_size(&parameters);
        if !options.frame_limit.admits(width, height) {
            return Err(MediaError::FrameTooLarge {
                source_name: name,
                width,
                height,
                limit: options.frame_limit,
            });
        }
        let live = liveness::reports_live(source, &input);
        let read_live = options.live.unwrap_or(live);
        let queue = PacketQueue::new(
            options.sampling,
            read_live || options.low_latency,
            parameters.id() == codec::Id::H264,
        );
        let stall_timeout = options.stall_timeout.filter(|_| read_live);
        let timestamps = Timestamps::of(&input, &stream);
        let slot = DecoderSlot::open(
            name.clone(),
            parameters,
            options.threads,
            options.frame_limit,
            &options.hwaccel,
        )?;

        Ok(VideoSource {
            stop: stop.clone(),
            reader: Reader::new(
                name.clone(),
                input,
                deadline,
                stream_index,
                stop,
                options.read_timeout,
                stall_timeout,
            ),
            queue,
            slot,
            damage: DamageFilter::new(name.clone()),
            timestamps,
            name,
            frame: frame::Video::empty(),
            shaper: Shaper::new(options.shape),
            damaged: 0,
            delivered: 0,
            live,
            decoding: Duration::ZERO,
            last_decode_time: Duration::ZERO,
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
            let started = Instant::now();
            let received = self.slot.receive(&mut self.frame);
            self.decoding += started.elapsed();
            match received? {
                Received::Frame => {
                    if !self.damage.admit(&self.frame) {
                        self.damaged += 1;
                        continue;
                    }
                    self.reader.mark_alive();
                    self.delivered += 1;
                    self.last_decode_time = std::mem::take(&mut self.decoding);
                    return Ok(Some(self.timestamps.frame(self.frame.timestamp())));
                }
                Received::Hungry => self.feed_decoder(demand)?,
                // Damage from the first packet to the last is a broken or hostile
                // source, not one that ended well.
                Received::Ended if self.delivered == 0 && self.damaged > 0 => {
                    return Err(MediaError::NoUsableFrame {
                        source_name: self.name.clone(),
                        damaged: self.damaged,
                    })
                }
                Received::Ended => return Ok(None),
                Received::Damaged => {
                    self.damaged += 1;
                    self.damage.seen();
                }
                Received::Lost => self.damaged += 1,
            }
        }
    }

    /// Gives the decoder its next step: a packet, a drain-and-reset, or end-of-stream.
    fn feed_decoder(&mut self, demand: &dyn FrameDemand) -> Result<(), MediaError> {
        loop {
            match self.queue.next() {
                Some(Step::Send(timed)) => match self.send(&timed.packet)? {
                    Fed::Sent => return Ok(()),
                    Fed::Skipped => {}
                    Fed::Refused => self.damage.seen(),
                    Fed::Deferred => {
                        self.queue.put_back(Step::Send(timed));
                        return Ok(());
                    }
                },
                Some(Step::Restart) => {
                    if self.slot.restart() {
                        return Ok(());
                    }
                }
                None if self.queue.input_ended() => {
                    self.slot.finish();
                    return Ok(());
                }
                None => self.demux(demand)?,
            }
        }
    }

    /// Sends a packet to the decoder, counting the time it takes: with frame threads
    /// and hardware decoders, much of the decoding happens here.
    fn send(&mut self, packet: &Packet) -> Result<Fed, MediaError> {
        let started = Instant::now();
        let fed = self.slot.send(packet);
        self.decoding += started.elapsed();
        fed
    }

    /// Reads packets until the planner has decided something (or the input ends).
    fn demux(&mut self, demand: &dyn FrameDemand) -> Result<(), MediaError> {
        while self.queue.is_empty() {
            match self.reader.read(self.damaged)? {
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
                    self.damaged += 1;
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
        self.queue.rewind();
        self.slot.rewind();
        self.damage.rewind();
        self.timestamps.rewind();
        Ok(())
    }

    /// The last decoded frame as full-range 4:2:0 planes of the shape asked for,
    /// converted only when the decoder's format is not already that.
    pub fn picture(&mut self) -> Result<Yuv420<'_>, MediaError> {
        let name = &self.name;
        self.shaper.shape(&self.frame).map_err(|e| match e {
            ShapeFailure::Shape(e) => MediaError::Shape {
                source_name: name.clone(),
                message: e.to_string(),
            },
            ShapeFailure::Libav(e) => MediaError::Convert {
                source_name: name.clone(),
                message: e.to_string(),
            },
        })
    }

    /// How long the pass through the source read so far lasts: from its first packet
    /// to a frame after its last, whether they were decoded or not. After the end of a
    /// looped file, where its next pass starts on the camera's timeline.
    pub fn pass_length(&self) -> f64 {
        self.timestamps.pass_length()
    }

    /// Whether libav reports an input that goes on until stopped (see `liveness`); the
    /// caller's `OpenOptions::live` does not change this answer, only how it is read.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Time spent in libav's decoder (sending packets, receiving frames) for the frame
    /// `next_frame` returned last, counted from the frame before it; the time spent
    /// reading the input (waiting for the network) is not in it.
    pub fn decode_time(&self) -> Duration {
        self.last_decode_time
    }

    /// Frames not used because of damage, so far.
    pub fn damaged_frames(&self) -> u64 {
        self.damaged
    }

    /// The hardware backend decoding now and why it is not the one asked for, when it
    /// is not.
    pub fn hwaccel(&self) -> HwStatus {
        self.slot.status()
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
    use crate::sampling::sampler::Sampler;
    use crate::sampling::EveryFrame;
    use crate::sampling::Fps;
    use std::time::Instant;

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
        assert!(!video.is_live());
        let first = timestamps(&mut video);
        assert_eq!(first.len(), 30);
        assert!((video.pass_length() - 1.2).abs() < 1e-9);
        video.rewind().unwrap();
        assert_eq!(timestamps(&mut video), first);
    }

    #[test]
    fn frames_beyond_the_limit_are_refused_when_the_source_opens() {
        crate::media::init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gop10.ts");
        write_h264_clip(&path, 10, 10).unwrap();
        let source = Source::parse(path.to_str().unwrap(), &[dir.path().to_owned()]).unwrap();
        let open = |limit: &str| {
            let options = OpenOptions {
                frame_limit: FrameLimit::parse(limit).unwrap(),
                ..OpenOptions::default()
            };
            VideoSource::open(&source, &options, &StopToken::new())
        };
        // The probe clip's size.
        let (width, height) = (256, 144);
        assert!(open(&format!("{width}x{height}")).is_ok());
        let Err(refused) = open(&(width * height - 1).to_string()) else {
            panic!("a frame one pixel too large was accepted");
        };
        assert_eq!(refused.kind(), super::super::FailureKind::TooLarge);
        let message = refused.to_string();
        assert!(
            message.contains(&format!("{width}x{height}"))
                && message.contains(&format!("{} pixels", width * height - 1)),
            "{message}"
        );
    }

    #[test]
    fn a_pass_lasts_to_its_last_packet_even_when_the_end_is_not_decoded() {
        crate::media::init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gop10.ts");
        write_h264_clip(&path, 30, 10).unwrap();
        let source = Source::parse(path.to_str().unwrap(), &[dir.path().to_owned()]).unwrap();
        let mut video =
            VideoSource::open(&source, &OpenOptions::default(), &StopToken::new()).unwrap();
        // One sample every 2 s of a 1.2 s clip: only its first frame is needed.
        let mut sampler = Sampler::new(Fps::new(0.5).unwrap());
        let mut decoded = 0;
        while let Some(frame) = video.next_frame(&sampler).unwrap() {
            sampler.offer(frame.timestamp);
            decoded += 1;
        }
        assert!(decoded < 30, "{decoded} frames decoded");
        assert!(
            (video.pass_length() - 1.2).abs() < 1e-9,
            "{}",
            video.pass_length()
        );
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
        assert_eq!(video.damaged_frames(), 6);
    }
}
