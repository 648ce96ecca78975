//! The decoder a source uses, and what it is doing: decoding, waiting for a keyframe
//! after a hardware failure, draining to hand over to another decoder (or to start
//! afresh), or finishing at the end of the input. Hardware failover happens here: a
//! hardware decoder that keeps failing is replaced by a software one at once, one that
//! libav runs in software behind its back gives way at the next keyframe, and hardware
//! is tried again at a keyframe once its retry is due.

use std::time::Instant;

use ffmpeg_next::util::error::EAGAIN;
use ffmpeg_next::{codec, frame, Packet};

use crate::media::frame_limit::FrameLimit;
use crate::media::hw::{Decoder, HwFailure, HwRequest, HwState, HwStatus};
use crate::media::MediaError;

/// What the decoder is doing.
enum Activity {
    /// Packets go in, frames come out.
    Decoding,
    /// A fresh decoder that replaced a failing one: packets before the next keyframe
    /// are not sent.
    AwaitingKeyframe,
    /// End of stream was sent so that every frame comes out; then `next` takes over,
    /// or the same decoder starts afresh.
    Draining { next: Option<Decoder> },
    /// The input has ended and end of stream was sent: what comes out is the last.
    Finishing,
}

/// What receiving gave.
pub enum Received {
    /// A frame, in the caller's frame.
    Frame,
    /// The decoder needs a packet.
    Hungry,
    /// Every frame is out: the source has ended.
    Ended,
    /// A frame was lost to damage in the stream; the decoder resynchronises at a
    /// keyframe.
    Damaged,
    /// A frame was lost to a hardware decode or transfer error.
    Lost,
}

/// What became of a packet offered to the decoder.
pub enum Fed {
    Sent,
    /// Not sent: the decoder waits for a keyframe.
    Skipped,
    /// The decoder refused it (a damaged packet); it resynchronises at a keyframe.
    Refused,
    /// Not sent yet: another decoder takes over at this keyframe, once the current
    /// one is drained. Offer it again then.
    Deferred,
}

pub struct DecoderSlot {
    name: String,
    decoder: Decoder,
    activity: Activity,
    /// What a decoder is rebuilt from when it changes backend.
    parameters: codec::Parameters,
    threads: usize,
    /// Larger frames end the source.
    limit: FrameLimit,
    hw: HwState,
}

impl DecoderSlot {
    /// A decoder for `parameters` on the first of `request`'s backends that opens, else
    /// in software with `threads` frame threads (0: libav's choice), that refuses
    /// frames larger than `limit`.
    pub fn open(
        name: String,
        parameters: codec::Parameters,
        threads: usize,
        limit: FrameLimit,
        request: &HwRequest,
    ) -> Result<DecoderSlot, MediaError> {
        let (decoder, failure) =
            Decoder::open(&parameters, threads, limit, request).map_err(|e| {
                MediaError::Decoder {
                    source_name: name.clone(),
                    message: format!("{e} (codec {:?})", parameters.id()),
                }
            })?;
        let mut hw = HwState::new(request.clone());
        if let Some(failure) = failure {
            log::info!("{name}: {}; decoding in software", failure.message);
            hw.failed(failure, Instant::now());
        } else if let Some(backend) = decoder.backend() {
            log::info!("{name}: decoding on {backend}");
        }
        Ok(DecoderSlot {
            name,
            decoder,
            activity: Activity::Decoding,
            parameters,
            threads,
            limit,
            hw,
        })
    }

    /// The next frame into `frame`, or why there is none.
    pub fn receive(&mut self, frame: &mut frame::Video) -> Result<Received, MediaError> {
        let inside_before = self.decoder.decoding_in_software().is_some();
        let received = self.decoder.receive_frame(frame);
        if received.is_err() {
            self.check_size(self.decoder.coded_size())?;
        }
        match received {
            Ok(()) => {
                // A decoder that does not check sizes itself (a vendor's) is held to
                // the limit here.
                self.check_size((frame.width(), frame.height()))?;
                if !inside_before {
                    self.note_software_inside();
                }
                Ok(Received::Frame)
            }
            Err(ffmpeg_next::Error::Other { errno }) if errno == EAGAIN => match self.activity {
                Activity::Finishing => Ok(Received::Ended),
                _ => Ok(Received::Hungry),
            },
            Err(ffmpeg_next::Error::Eof) => {
                let Activity::Draining { next } = &mut self.activity else {
                    return Ok(Received::Ended);
                };
                match next.take() {
                    Some(next) => self.decoder = next,
                    None => self.decoder.flush(),
                }
                self.activity = Activity::Decoding;
                // Drained: the decoder that takes over (or this one, afresh) is next.
                self.receive(frame)
            }
            Err(ffmpeg_next::Error::InvalidData) => {
                self.check_hardware()?;
                Ok(Received::Damaged)
            }
            // A hardware decode or transfer error loses one frame; repeated ones move
            // decoding to software.
            Err(_) if !self.decoder.is_software() => {
                self.check_hardware()?;
                Ok(Received::Lost)
            }
            Err(e) => Err(MediaError::Decoder {
                source_name: self.name.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// Offers the stream's next packet to the decoder.
    pub fn send(&mut self, packet: &Packet) -> Result<Fed, MediaError> {
        if let Activity::AwaitingKeyframe = self.activity {
            if !packet.is_key() {
                return Ok(Fed::Skipped);
            }
            self.activity = Activity::Decoding;
        }
        if packet.is_key() {
            if let Some(next) = self.decoder_from_keyframe() {
                // Drain the current decoder first: no decoded frame is lost.
                let _ = self.decoder.send_eof();
                self.activity = Activity::Draining { next: Some(next) };
                return Ok(Fed::Deferred);
            }
        }
        match self.decoder.send_packet(packet) {
            Ok(()) => Ok(Fed::Sent),
            Err(_) => {
                self.check_size(self.decoder.coded_size())?;
                self.check_hardware()?;
                Ok(Fed::Refused)
            }
        }
    }

    /// A frame size the decoder met (a decoded frame's, or the one it set itself up
    /// for from a new sequence header, and refused to allocate) ends the source when
    /// it is beyond the limit.
    fn check_size(&self, (width, height): (u32, u32)) -> Result<(), MediaError> {
        if self.limit.admits(width, height) {
            return Ok(());
        }
        Err(MediaError::FrameTooLarge {
            source_name: self.name.clone(),
            width,
            height,
            limit: self.limit,
        })
    }

    /// Drains the decoder and starts it afresh (what it holds was never needed), and
    /// says whether it is draining: a decoder waiting for a keyframe has been given
    /// nothing to drain.
    pub fn restart(&mut self) -> bool {
        if let Activity::AwaitingKeyframe = self.activity {
            return false;
        }
        // Errors here only mean the decoder was already drained.
        let _ = self.decoder.send_eof();
        self.activity = Activity::Draining { next: None };
        true
    }

    /// The input has ended: the decoder gives out what it still holds.
    pub fn finish(&mut self) {
        let _ = self.decoder.send_eof();
        self.activity = Activity::Finishing;
    }

    /// The input starts again from its beginning: nothing sent before is decoded.
    /// A hardware decoder that libav runs in software still gives way at the next
    /// keyframe.
    pub fn rewind(&mut self) {
        self.decoder.flush();
        self.activity = Activity::Decoding;
    }

    /// Where decoding is and why that is not where it was asked to be.
    pub fn status(&self) -> HwStatus {
        self.hw.status(&self.decoder)
    }

    /// libav has just set up this hardware decoder's stream in software: the status
    /// says so, and software takes over at the next keyframe.
    fn note_software_inside(&mut self) {
        if let Some(reason) = self.decoder.decoding_in_software() {
            log::warn!("{}: {reason}", self.name);
            let failure = HwFailure {
                message: reason,
                retryable: false,
            };
            self.hw.failed(failure, Instant::now());
        }
    }

    /// At a keyframe: the decoder that should take over from here, if any: software
    /// when libav decodes in software behind the hardware decoder anyway, hardware
    /// again when its retry is due and it opens.
    fn decoder_from_keyframe(&mut self) -> Option<Decoder> {
        if self.decoder.decoding_in_software().is_some() {
            return self.software_decoder().ok();
        }
        if !self.decoder.is_software() || !self.hw.retry_due(Instant::now()) {
            return None;
        }
        match Decoder::open_hardware(&self.parameters, self.limit, &self.hw.request) {
            Ok(decoder) => {
                if let Some(backend) = decoder.backend() {
                    log::info!("{}: decoding on {backend} again", self.name);
                }
                self.hw.recovered();
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
        Decoder::software(&self.parameters, self.threads, self.limit).map_err(|e| {
            MediaError::Decoder {
                source_name: self.name.clone(),
                message: e.to_string(),
            }
        })
    }

    /// Replaces a hardware decoder that keeps failing by a software one, on the same
    /// input: the demuxer goes on and decoding resumes at the next keyframe.
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
        self.activity = Activity::AwaitingKeyframe;
        let failure = HwFailure {
            message: reason,
            retryable: true,
        };
        self.hw.failed(failure, Instant::now());
        Ok(())
    }
}
