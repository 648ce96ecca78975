//! Where a stream is decoded: in software, or on a hardware backend whose frames are
//! brought back to system memory one by one. Also the real capability probe: a tiny
//! H.264 clip, encoded at run time, decoded on each backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg_next::codec::{self, threading};
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::error::EAGAIN;
use ffmpeg_next::{frame, media, Packet};

use super::hwaccel::{self, DeviceNames, DeviceProbe, HwDevice};

use crate::hw_choice::FAULT_INJECTION;

/// Hardware errors in a row after which a hardware decoder is given up.
pub const MAX_HARDWARE_ERRORS: u32 = 3;

pub const DEFAULT_HW_RETRY: Duration = Duration::from_secs(300);

/// What hardware a source should decode with.
#[derive(Debug, Clone, PartialEq)]
pub struct HwRequest {
    /// Backends to try, in order; empty: software only.
    pub backends: Vec<&'static str>,
    pub devices: DeviceNames,
    /// After a fall back to software, hardware is tried again this much later.
    pub retry_after: Duration,
    /// Diagnostics only: makes the backend `fault-injection` exist, a software decoder
    /// that fails every frame after this many good ones, standing in for a hardware
    /// decoder that breaks mid-stream.
    pub fault_after: Option<u64>,
}

impl Default for HwRequest {
    fn default() -> Self {
        HwRequest {
            backends: Vec::new(),
            devices: DeviceNames::default(),
            retry_after: DEFAULT_HW_RETRY,
            fault_after: None,
        }
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
        backend: &'static str,
        device: Option<Arc<HwDevice>>,
    },
    Fault {
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
}

impl Decoder {
    /// A software decoder with `threads` frame threads (0: libav's choice).
    pub fn software(
        parameters: &codec::Parameters,
        threads: usize,
    ) -> Result<Decoder, ffmpeg_next::Error> {
        let mut context = codec::context::Context::from_parameters(parameters.clone())?;
        context.set_threading(threading::Config {
            kind: threading::Type::Frame,
            count: threads,
            ..Default::default()
        });
        Ok(Decoder::new(context.decoder().video()?, Kind::Software))
    }

    /// A decoder on `backend`: libav's own decoder with the backend's device when it
    /// has a hardware configuration for it, else libav's wrapper of the vendor's
    /// decoder (`h264_cuvid`, `h264_qsv`, ...).
    pub fn hardware(
        parameters: &codec::Parameters,
        backend: &'static str,
        request: &HwRequest,
    ) -> Result<Decoder, HwFailure> {
        if backend == FAULT_INJECTION {
            return Decoder::fault(parameters, request);
        }
        let id = parameters.id();
        let native = ffmpeg_next::decoder::find(id)
            .ok_or_else(|| HwFailure::lasting(format!("no decoder for {id:?}")))?;
        let codec = if !hwaccel::hardware_formats(&native, backend).is_empty() {
            native
        } else {
            let name = format!("{}_{}", native.name(), hwaccel::wrapper_suffix(backend));
            ffmpeg_next::decoder::find_by_name(&name).ok_or_else(|| {
                HwFailure::lasting(format!(
                    "this libav build has no {backend} decoder for {}",
                    native.name()
                ))
            })?
        };
        let device = if hwaccel::is_device_type(backend) {
            let device = hwaccel::shared_device(backend, &request.devices).map_err(|e| {
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
            hwaccel::attach_device(&mut context, device).map_err(HwFailure::passing)?;
        }
        let inner = context
            .decoder()
            .open_as(codec)
            .and_then(|opened| opened.video())
            .map_err(|e| {
                HwFailure::passing(format!("{} could not be opened: {e}", codec.name()))
            })?;
        Ok(Decoder::new(inner, Kind::Hardware { backend, device }))
    }

    fn fault(parameters: &codec::Parameters, request: &HwRequest) -> Result<Decoder, HwFailure> {
        let frames_left = request.fault_after.ok_or_else(|| {
            HwFailure::lasting(
                "a diagnostic backend, present only when VIDEO_PIPELINE_FAULT_HWACCEL is set",
            )
        })?;
        let mut decoder = Decoder::software(parameters, 1)
            .map_err(|e| HwFailure::lasting(format!("decoder setup failed: {e}")))?;
        decoder.kind = Kind::Fault { frames_left };
        Ok(decoder)
    }

    fn new(inner: codec::decoder::Video, kind: Kind) -> Decoder {
        Decoder {
            inner,
            kind,
            staging: frame::Video::empty(),
            errors_in_row: 0,
            last_error: None,
            software_inside: false,
        }
    }

    /// Tries `request`'s backends in order, then software. Also says why each
    /// backend that was asked for is not used, and whether a later try may succeed.
    pub fn open(
        parameters: &codec::Parameters,
        threads: usize,
        request: &HwRequest,
    ) -> Result<(Decoder, Option<HwFailure>), ffmpeg_next::Error> {
        if request.backends.is_empty() {
            return Ok((Decoder::software(parameters, threads)?, None));
        }
        match Decoder::open_hardware(parameters, request) {
            Ok(decoder) => Ok((decoder, None)),
            Err(failure) => Ok((Decoder::software(parameters, threads)?, Some(failure))),
        }
    }

    /// The first of `request`'s backends that opens, or why none did.
    pub fn open_hardware(
        parameters: &codec::Parameters,
        request: &HwRequest,
    ) -> Result<Decoder, HwFailure> {
        let mut failures = Vec::new();
        let mut retryable = false;
        for &backend in &request.backends {
            match Decoder::hardware(parameters, backend, request) {
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

    /// The backend in use, `none` for software.
    pub fn backend(&self) -> &'static str {
        match self.kind {
            Kind::Software => "none",
            Kind::Hardware { backend, .. } => backend,
            Kind::Fault { .. } => FAULT_INJECTION,
        }
    }

    pub fn is_software(&self) -> bool {
        matches!(self.kind, Kind::Software)
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
                    if hwaccel::is_hardware_frame(&self.staging) {
                        hwaccel::transfer_frame(&mut self.staging, out)
                    } else {
                        self.software_inside |= on_device;
                        std::mem::swap(&mut self.staging, out);
                        Ok(())
                    }
                })
            }
            Kind::Fault { frames_left } => self.inner.receive_frame(out).and_then(|()| {
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
        (self.errors_in_row >= MAX_HARDWARE_ERRORS).then(|| {
            format!(
                "{} decoding failed {} times in a row ({})",
                self.backend(),
                self.errors_in_row,
                self.last_error.as_deref().unwrap_or("unknown error")
            )
        })
    }

    /// Why this hardware decoder should give way to software at the next keyframe:
    /// libav already decodes in software behind it.
    pub fn decoding_in_software(&self) -> Option<String> {
        self.software_inside.then(|| {
            format!(
                "{}: the device cannot decode this stream (libav fell back to software)",
                self.backend()
            )
        })
    }

    /// Gives the device up for new decoders after a failure.
    pub fn forget_device(&self) {
        if let Kind::Hardware {
            device: Some(device),
            ..
        } = &self.kind
        {
            hwaccel::forget_device(device);
        }
    }
}

/// What a source knows about its hardware: the request, why decoding is not where it
/// was asked to be, and when to try again.
#[derive(Debug)]
pub struct HwState {
    pub request: HwRequest,
    pub reason: Option<String>,
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

/// Frames of the probe clip.
const PROBE_FRAMES: usize = 8;

/// A few frames of H.264 (Annex B, parameter sets in band), encoded now with this
/// libav build's H.264 encoder.
fn probe_clip() -> Result<Vec<Packet>, String> {
    let codec = ffmpeg_next::encoder::find_by_name("libx264")
        .or_else(|| ffmpeg_next::encoder::find(codec::Id::H264))
        .ok_or("this libav build has no H.264 encoder to make the probe clip")?;
    let (width, height) = (256u32, 144u32);
    let mut context = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| e.to_string())?;
    context.set_width(width);
    context.set_height(height);
    context.set_format(Pixel::YUV420P);
    context.set_time_base((1, 25));
    context.set_frame_rate(Some((25, 1)));
    context.set_gop(PROBE_FRAMES as u32);
    context.set_max_b_frames(0);
    let options = [("preset", "ultrafast"), ("tune", "zerolatency")]
        .into_iter()
        .collect();
    let mut encoder = context
        .open_as_with(codec, options)
        .map_err(|e| format!("the probe clip could not be encoded: {e}"))?;
    let mut packets = Vec::new();
    let mut drain = |encoder: &mut ffmpeg_next::encoder::Video| {
        let mut packet = Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packets.push(std::mem::replace(&mut packet, Packet::empty()));
        }
    };
    for index in 0..PROBE_FRAMES {
        let mut picture = frame::Video::new(Pixel::YUV420P, width, height);
        for plane in 0..3 {
            let stride = picture.stride(plane);
            for (row, line) in picture.data_mut(plane).chunks_mut(stride).enumerate() {
                for (column, value) in line.iter_mut().enumerate() {
                    *value = ((row + column * (plane + 1) + index * 8) % 256) as u8;
                }
            }
        }
        picture.set_pts(Some(index as i64));
        encoder.send_frame(&picture).map_err(|e| e.to_string())?;
        drain(&mut encoder);
    }
    encoder.send_eof().map_err(|e| e.to_string())?;
    drain(&mut encoder);
    if packets.is_empty() {
        return Err("the probe clip encoder gave no packets".into());
    }
    Ok(packets)
}

/// Decodes `packets` on `backend`: Ok when frames came back from the device.
fn probe_backend(
    packets: &[Packet],
    backend: &'static str,
    request: &HwRequest,
) -> Result<(), String> {
    let mut parameters = codec::Parameters::new();
    parameters.set_medium(media::Type::Video);
    parameters.set_id(codec::Id::H264);
    let mut decoder =
        Decoder::hardware(&parameters, backend, request).map_err(|failure| failure.message)?;
    let mut frame = frame::Video::empty();
    let mut frames = 0;
    let mut receive = |decoder: &mut Decoder| -> Result<(), String> {
        loop {
            match decoder.receive_frame(&mut frame) {
                Ok(()) => frames += 1,
                Err(ffmpeg_next::Error::Eof) => return Ok(()),
                Err(ffmpeg_next::Error::Other { errno }) if errno == EAGAIN => return Ok(()),
                Err(e) => return Err(format!("decoding the probe clip failed: {e}")),
            }
        }
    };
    for packet in packets {
        decoder
            .send_packet(packet)
            .map_err(|e| format!("decoding the probe clip failed: {e}"))?;
        receive(&mut decoder)?;
    }
    let _ = decoder.send_eof();
    receive(&mut decoder)?;
    if let Some(reason) = decoder.decoding_in_software() {
        return Err(reason);
    }
    if frames == 0 {
        return Err("the probe clip decoded to no frames".into());
    }
    Ok(())
}

/// Tries each of `backends` for real: device, decoder, and a decoded clip. Says which
/// work and why the others do not.
pub fn probe_backends(backends: &[&'static str], request: &HwRequest) -> Vec<DeviceProbe> {
    super::init();
    let compiled = hwaccel::compiled_device_types();
    let clip = std::cell::OnceCell::new();
    backends
        .iter()
        .map(|&backend| {
            let result = if backend == FAULT_INJECTION {
                request.fault_after.map(drop).ok_or_else(|| {
                    "a diagnostic backend, present only when VIDEO_PIPELINE_FAULT_HWACCEL is set"
                        .to_owned()
                })
            } else if hwaccel::is_device_type(backend) && !compiled.iter().any(|c| c == backend) {
                Err("not compiled into this libav build".to_owned())
            } else if !hwaccel::decodes_with(backend) {
                Err(if hwaccel::is_device_type(backend) {
                    "no H.264 or HEVC decoder of this libav build uses it".to_owned()
                } else {
                    "not compiled into this libav build".to_owned()
                })
            } else {
                match clip.get_or_init(probe_clip) {
                    Ok(packets) => probe_backend(packets, backend, request),
                    Err(e) => Err(e.clone()),
                }
            };
            if let Err(reason) = &result {
                log::debug!("hardware probe: {backend}: {reason}");
            }
            DeviceProbe {
                backend: backend.to_owned(),
                available: result.is_ok(),
                reason: result.err(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264_parameters() -> codec::Parameters {
        let mut parameters = codec::Parameters::new();
        parameters.set_medium(media::Type::Video);
        parameters.set_id(codec::Id::H264);
        parameters
    }

    #[test]
    fn probe_clip_is_made_at_run_time() {
        super::super::init();
        let packets = probe_clip().unwrap();
        assert!(packets.len() >= PROBE_FRAMES);
        assert!(packets[0].is_key());
    }

    #[test]
    fn software_decodes_the_probe_clip() {
        super::super::init();
        let request = HwRequest {
            fault_after: Some(100),
            ..HwRequest::default()
        };
        let packets = probe_clip().unwrap();
        assert_eq!(probe_backend(&packets, FAULT_INJECTION, &request), Ok(()));
    }

    #[test]
    fn unknown_and_missing_backends_are_explained() {
        let request = HwRequest {
            devices: DeviceNames {
                vaapi: "/dev/dri/no-such-node".into(),
                ..DeviceNames::default()
            },
            ..HwRequest::default()
        };
        let probes = probe_backends(&["rkmpp", "opencl", "vaapi", FAULT_INJECTION], &request);
        assert!(probes.iter().all(|p| !p.available), "{probes:?}");
        let reason = |i: usize| probes[i].reason.clone().unwrap();
        assert!(reason(0).contains("not compiled"), "{}", reason(0));
        assert!(reason(1).contains("no H.264"), "{}", reason(1));
        assert!(reason(2).contains("device context"), "{}", reason(2));
        assert!(reason(3).contains("VIDEO_PIPELINE_FAULT_HWACCEL"));
    }

    #[test]
    fn open_falls_back_to_software_and_says_why() {
        super::super::init();
        let request = HwRequest {
            backends: vec!["vaapi", "vulkan"],
            devices: DeviceNames {
                vaapi: "/dev/dri/no-such-node".into(),
                ..DeviceNames::default()
            },
            ..HwRequest::default()
        };
        let (decoder, failure) = Decoder::open(&h264_parameters(), 1, &request).unwrap();
        assert!(decoder.is_software());
        assert_eq!(decoder.backend(), "none");
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
        super::super::init();
        let request = HwRequest {
            backends: vec![FAULT_INJECTION],
            fault_after: Some(2),
            ..HwRequest::default()
        };
        let (mut decoder, failure) = Decoder::open(&h264_parameters(), 1, &request).unwrap();
        assert!(failure.is_none());
        assert_eq!(decoder.backend(), FAULT_INJECTION);
        let mut frame = frame::Video::empty();
        let (mut good, mut bad) = (0, 0);
        for packet in probe_clip().unwrap() {
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
