//! Where a stream is decoded: in software, or on a hardware backend whose frames are
//! brought back to system memory one by one.

use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::codec::{self, threading};
use ffmpeg_next::util::error::EAGAIN;
use ffmpeg_next::{frame, Dictionary, Packet};

use super::device::{self, DeviceNames, HwDevice};
use super::{HwBackend, HwChoice, HwRequest};
use crate::media::frame_limit::FrameLimit;
use crate::media::libav_log::ContextTag;
use crate::media::log_bridge;

/// Hardware errors in a row after which a hardware decoder is given up.
pub const MAX_HARDWARE_ERRORS: u32 = 3;

/// Where a source decodes now, as its status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HwStatus {
    /// The backend decoding now; `None`: software.
    pub backend: Option<HwBackend>,
    /// Why it is not the backend asked for, when it is not.
    pub reason: Option<String>,
}

impl HwStatus {
    /// The backend's name; software is `none`, the word that asks for it.
    pub fn name(&self) -> &'static str {
        self.backend
            .map_or(HwChoice::None.as_str(), HwBackend::as_str)
    }
}

/// Why a backend could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct HwFailure {
    pub message: String,
    /// Whether trying again later may succeed (a device that is missing now).
    pub retryable: bool,
}

impl HwFailure {
    fn lasting(message: impl Into<String>) -> HwFailure {
        HwFailure {
            message: message.into(),
            retryable: false,
        }
    }

    fn passing(message: impl Into<String>) -> HwFailure {
        HwFailure {
            message: message.into(),
            retryable: true,
        }
    }
}

enum Kind {
    Software,
    Hardware {
        backend: HwBackend,
        device: Option<Arc<HwDevice>>,
    },
    #[cfg(test)]
    Fault {
        good_frames: u64,
        frames_left: u64,
    },
}

/// A decoder and where it decodes.
pub struct Decoder {
    inner: codec::decoder::Video,
    kind: Kind,
    /// Frames in device memory wait here for their transfer.
    staging: frame::Video,
    errors_in_row: u32,
    last_error: Option<String>,
    /// libav could not set up the device for this stream and decodes in software
    /// behind the hardware decoder's back.
    software_inside: bool,
    /// Names the camera in messages from libav's decoder threads; after `inner`, so
    /// it outlives the context.
    _log_tag: Option<ContextTag>,
}

impl Decoder {
    /// A software decoder with `threads` frame threads (0: libav's choice) that
    /// refuses frames beyond `limit`.
    pub fn software(
        parameters: &codec::Parameters,
        threads: usize,
        limit: FrameLimit,
    ) -> Result<Decoder, ffmpeg_next::Error> {
        let codec = ffmpeg_next::decoder::find(parameters.id())
            .ok_or(ffmpeg_next::Error::DecoderNotFound)?;
        let mut context = codec::context::Context::from_parameters(parameters.clone())?;
        context.set_threading(threading::Config {
            kind: threading::Type::Frame,
            count: threads,
            ..Default::default()
        });
        let log_tag = log_bridge::tag(&mut context);
        let inner = context
            .decoder()
            .open_as_with(codec, open_options(limit))?
            .video()?;
        Ok(Decoder::new(inner, Kind::Software, log_tag))
    }

    /// A decoder on `backend`: libav's own decoder with the backend's device when it
    /// has a hardware configuration for it, else libav's wrapper of the vendor's
    /// decoder (`h264_cuvid`, `h264_qsv`, ...).
    pub fn hardware(
        parameters: &codec::Parameters,
        backend: HwBackend,
        devices: &DeviceNames,
        limit: FrameLimit,
    ) -> Result<Decoder, HwFailure> {
        #[cfg(test)]
        if let HwBackend::FaultInjection { good_frames } = backend {
            return Decoder::fault(parameters, good_frames, limit);
        }
        let id = parameters.id();
        let native = ffmpeg_next::decoder::find(id)
            .ok_or_else(|| HwFailure::lasting(format!("no decoder for {id:?}")))?;
        let codec = if !device::hardware_formats(&native, backend).is_empty() {
            native
        } else {
            let name = format!("{}_{}", native.name(), device::wrapper_suffix(backend));
            ffmpeg_next::decoder::find_by_name(&name).ok_or_else(|| {
                HwFailure::lasting(format!(
                    "this libav build has no {backend} decoder for {}",
                    native.name()
                ))
            })?
        };
        let device = if device::is_device_type(backend) {
            let device = device::shared_device(backend, devices).map_err(|e| {
                HwFailure::passing(format!("device context could not be created: {e}"))
            })?;
            Some(device)
        } else {
            None
        };
        let mut context = codec::context::Context::new_with_codec(codec);
        context
            .set_parameters(parameters.clone())
            .map_err(|e| HwFailure::lasting(format!("decoder setup failed: {e}")))?;
        // The device does the work; more threads would only hold more surfaces.
        context.set_threading(threading::Config {
            kind: threading::Type::Frame,
            count: 1,
            ..Default::default()
        });
        if let Some(device) = &device {
            device::attach_device(&mut context, device).map_err(HwFailure::passing)?;
        }
        let log_tag = log_bridge::tag(&mut context);
        let inner = context
            .decoder()
            .open_as_with(codec, open_options(limit))
            .and_then(|opened| opened.video())
            .map_err(|e| {
                HwFailure::passing(format!("{} could not be opened: {e}", codec.name()))
            })?;
        Ok(Decoder::new(
            inner,
            Kind::Hardware { backend, device },
            log_tag,
        ))
    }

    #[cfg(test)]
    fn fault(
        parameters: &codec::Parameters,
        good_frames: u64,
        limit: FrameLimit,
    ) -> Result<Decoder, HwFailure> {
        let mut decoder = Decoder::software(parameters, 1, limit)
            .map_err(|e| HwFailure::lasting(format!("decoder setup failed: {e}")))?;
        decoder.kind = Kind::Fault {
            good_frames,
            frames_left: good_frames,
        };
        Ok(decoder)
    }

    fn new(inner: codec::decoder::Video, kind: Kind, log_tag: Option<ContextTag>) -> Decoder {
        Decoder {
            inner,
            kind,
            staging: frame::Video::empty(),
            errors_in_row: 0,
            last_error: None,
            software_inside: false,
            _log_tag: log_tag,
        }
    }

    /// Tries `request`'s backends in order, then software. Also says why each
    /// backend that was asked for is not used, and whether a later try may succeed.
    pub fn open(
        parameters: &codec::Parameters,
        threads: usize,
        limit: FrameLimit,
        request: &HwRequest,
    ) -> Result<(Decoder, Option<HwFailure>), ffmpeg_next::Error> {
        if request.backends.is_empty() {
            return Ok((Decoder::software(parameters, threads, limit)?, None));
        }
        match Decoder::open_hardware(parameters, limit, request) {
            Ok(decoder) => Ok((decoder, None)),
            Err(failure) => Ok((
                Decoder::software(parameters, threads, limit)?,
                Some(failure),
            )),
        }
    }

    /// The first of `request`'s backends that opens, or why none did.
    pub fn open_hardware(
        parameters: &codec::Parameters,
        limit: FrameLimit,
        request: &HwRequest,
    ) -> Result<Decoder, HwFailure> {
        let mut failures = Vec::new();
        let mut retryable = false;
        for &backend in &request.backends {
            match Decoder::hardware(parameters, backend, &request.devices, limit) {
                Ok(decoder) => return Ok(decoder),
                Err(failure) => {
                    retryable |= failure.retryable;
                    failures.push(format!("{backend}: {}", failure.message));
                }
            }
        }
        Err(HwFailure {
            message: failures.join("; "),
            retryable,
        })
    }

    /// The backend in use; `None` for software.
    pub fn backend(&self) -> Option<HwBackend> {
        match self.kind {
            Kind::Software => None,
            Kind::Hardware { backend, .. } => Some(backend),
            #[cfg(test)]
            Kind::Fault { good_frames, .. } => Some(HwBackend::FaultInjection { good_frames }),
        }
    }

    pub fn is_software(&self) -> bool {
        matches!(self.kind, Kind::Software)
    }

    /// The frame size the decoder has set itself up for, from the stream's headers
    /// (0 before it knows): also when it refused to allocate such frames.
    pub fn coded_size(&self) -> (u32, u32) {
        (self.inner.width(), self.inner.height())
    }

    pub fn send_packet(&mut self, packet: &Packet) -> Result<(), ffmpeg_next::Error> {
        let result = self.inner.send_packet(packet);
        match &result {
            Err(ffmpeg_next::Error::Other { errno }) if *errno == EAGAIN => {}
            Err(e) => self.count_error(e.to_string()),
            Ok(()) => {}
        }
        result
    }

    pub fn send_eof(&mut self) -> Result<(), ffmpeg_next::Error> {
        self.inner.send_eof()
    }

    pub fn flush(&mut self) {
        self.inner.flush();
    }

    /// The next frame, in system memory.
    pub fn receive_frame(&mut self, out: &mut frame::Video) -> Result<(), ffmpeg_next::Error> {
        let result = match &mut self.kind {
            Kind::Software => return self.inner.receive_frame(out),
            Kind::Hardware { device, .. } => {
                let on_device = device.is_some();
                self.inner.receive_frame(&mut self.staging).and_then(|()| {
                    if device::is_hardware_frame(&self.staging) {
                        device::transfer_frame(&mut self.staging, out)
                    } else {
                        self.software_inside |= on_device;
                        std::mem::swap(&mut self.staging, out);
                        Ok(())
                    }
                })
            }
            #[cfg(test)]
            Kind::Fault { frames_left, .. } => self.inner.receive_frame(out).and_then(|()| {
                if *frames_left == 0 {
                    Err(ffmpeg_next::Error::External)
                } else {
                    *frames_left -= 1;
                    Ok(())
                }
            }),
        };
        match &result {
            Ok(()) => self.errors_in_row = 0,
            Err(ffmpeg_next::Error::Eof) => {}
            Err(ffmpeg_next::Error::Other { errno }) if *errno == EAGAIN => {}
            Err(e) => {
                let message = match self.kind {
                    #[cfg(test)]
                    Kind::Fault { .. } => "injected fault".to_owned(),
                    _ => e.to_string(),
                };
                self.count_error(message);
            }
        }
        result
    }

    fn count_error(&mut self, message: String) {
        if !self.is_software() {
            self.errors_in_row += 1;
            self.last_error = Some(message);
        }
    }

    /// Why this hardware decoder must be replaced at once: errors in a row.
    pub fn broken(&self) -> Option<String> {
        let backend = self.backend()?;
        (self.errors_in_row >= MAX_HARDWARE_ERRORS).then(|| {
            format!(
                "{backend} decoding failed {} times in a row ({})",
                self.errors_in_row,
                self.last_error.as_deref().unwrap_or("unknown error")
            )
        })
    }

    /// Why this hardware decoder should give way to software at the next keyframe:
    /// libav already decodes in software behind it.
    pub fn decoding_in_software(&self) -> Option<String> {
        let backend = self.backend()?;
        self.software_inside.then(|| {
            format!("{backend}: the device cannot decode this stream (libav fell back to software)")
        })
    }

    /// Gives the device up for new decoders after a failure.
    pub fn forget_device(&self) {
        if let Kind::Hardware {
            device: Some(device),
            ..
        } = &self.kind
        {
            device::forget_device(device);
        }
    }
}

/// What a decoder is opened with: libav's own check of frame sizes (`max_pixels`), so
/// that a frame larger than `limit` is never allocated.
fn open_options(limit: FrameLimit) -> Dictionary<'static> {
    let mut options = Dictionary::new();
    options.set("max_pixels", &limit.pixels().to_string());
    options
}

/// What a source knows about its hardware: the request, why decoding is not where it
/// was asked to be, and when to try again.
#[derive(Debug)]
pub struct HwState {
    pub request: HwRequest,
    reason: Option<String>,
    retry_at: Option<Instant>,
}

impl HwState {
    pub fn new(request: HwRequest) -> HwState {
        HwState {
            request,
            reason: None,
            retry_at: None,
        }
    }

    /// Where decoding is, with `decoder`, and why that is not where it was asked to be.
    pub fn status(&self, decoder: &Decoder) -> HwStatus {
        HwStatus {
            backend: decoder.backend(),
            reason: self.reason.clone(),
        }
    }

    /// Hardware decodes again, as asked.
    pub fn recovered(&mut self) {
        self.reason = None;
    }

    /// Records a failure; hardware is tried again later when that may help.
    pub fn failed(&mut self, failure: HwFailure, now: Instant) {
        self.retry_at = failure.retryable.then(|| now + self.request.retry_after);
        self.reason = Some(format!("{}; decoding in software", failure.message));
    }

    /// Whether it is time to try hardware again; the retry is then consumed.
    pub fn retry_due(&mut self, now: Instant) -> bool {
        match self.retry_at {
            Some(at) if now >= at => {
                self.retry_at = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffmpeg_next::media;
    use std::time::Duration;

    fn h264_parameters() -> codec::Parameters {
        let mut parameters = codec::Parameters::new();
        parameters.set_medium(media::Type::Video);
        parameters.set_id(codec::Id::H264);
        parameters
    }

    #[test]
    fn open_falls_back_to_software_and_says_why() {
        crate::media::init();
        let request = HwRequest {
            backends: vec![HwBackend::Vaapi, HwBackend::Vulkan],
            devices: DeviceNames {
                vaapi: "/dev/dri/no-such-node".into(),
                ..DeviceNames::default()
            },
            ..HwRequest::default()
        };
        let (decoder, failure) =
            Decoder::open(&h264_parameters(), 1, FrameLimit::default(), &request).unwrap();
        assert!(decoder.is_software());
        assert_eq!(decoder.backend(), None);
        let failure = failure.unwrap();
        assert!(failure.retryable);
        assert!(failure.message.starts_with("vaapi: device context"));
        assert!(
            failure.message.contains("; vulkan: "),
            "{}",
            failure.message
        );
    }

    #[test]
    fn injected_faults_break_the_decoder_after_three_errors() {
        crate::media::init();
        let request = HwRequest {
            backends: vec![HwBackend::FaultInjection { good_frames: 2 }],
            ..HwRequest::default()
        };
        let (mut decoder, failure) =
            Decoder::open(&h264_parameters(), 1, FrameLimit::default(), &request).unwrap();
        assert!(failure.is_none());
        assert_eq!(
            decoder.backend(),
            Some(HwBackend::FaultInjection { good_frames: 2 })
        );
        let mut frame = frame::Video::empty();
        let (mut good, mut bad) = (0, 0);
        for packet in super::super::probe::probe_clip().unwrap() {
            decoder.send_packet(&packet).unwrap();
            loop {
                match decoder.receive_frame(&mut frame) {
                    Ok(()) => good += 1,
                    Err(ffmpeg_next::Error::Other { errno }) if errno == EAGAIN => break,
                    Err(_) => bad += 1,
                }
            }
            if decoder.broken().is_some() {
                break;
            }
        }
        assert_eq!((good, bad), (2, MAX_HARDWARE_ERRORS));
        assert!(decoder.broken().unwrap().contains("injected fault"));
    }

    #[test]
    fn retries_come_after_the_interval_and_only_for_passing_failures() {
        let mut state = HwState::new(HwRequest {
            retry_after: Duration::from_secs(10),
            ..HwRequest::default()
        });
        let now = Instant::now();
        state.failed(HwFailure::passing("cuda: gone"), now);
        assert_eq!(
            state.reason.as_deref(),
            Some("cuda: gone; decoding in software")
        );
        assert!(!state.retry_due(now + Duration::from_secs(9)));
        assert!(state.retry_due(now + Duration::from_secs(10)));
        assert!(!state.retry_due(now + Duration::from_secs(20)));
        state.failed(HwFailure::lasting("rkmpp: not here"), now);
        assert!(!state.retry_due(now + Duration::from_secs(1000)));
    }
}
