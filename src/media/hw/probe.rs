//! The real capability probe: a tiny H.264 clip, encoded at run time, decoded on each
//! backend.

use ffmpeg_next::codec;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::error::EAGAIN;
use ffmpeg_next::{frame, media, Packet};
use serde::Serialize;

use super::decoder::Decoder;
use super::device;
use super::{DeviceNames, HwBackend};
use crate::media::frame_limit::FrameLimit;
use crate::media::libav_log::DebugOnly;

/// What `hw-accel-cap/` reports: the backends that decoded the probe clip, the device
/// types this libav build knows, and why each backend that did not decode failed.
#[derive(Debug, Clone, Serialize)]
pub struct HwReport {
    pub available: Vec<HwBackend>,
    pub compiled: Vec<String>,
    pub probes: Vec<DeviceProbe>,
}

/// The outcome of trying one kind of hardware decoding on this machine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceProbe {
    pub backend: HwBackend,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Frames of the probe clip.
const PROBE_FRAMES: usize = 8;

/// Frames per second of the clips made here, which is also their encoders' time base.
const CLIP_RATE: i32 = 25;

/// A few frames of H.264 (Annex B, parameter sets in band), encoded now with this
/// libav build's H.264 encoder.
pub(super) fn probe_clip() -> Result<Vec<Packet>, String> {
    let mut encoder = h264_encoder(PROBE_FRAMES as u32)?;
    let packets = encode(&mut encoder, PROBE_FRAMES)?;
    if packets.is_empty() {
        return Err("the probe clip encoder gave no packets".into());
    }
    Ok(packets)
}

/// This libav build's H.264 encoder for a small clip at [`CLIP_RATE`], a keyframe
/// every `gop` frames, no B-frames.
fn h264_encoder(gop: u32) -> Result<ffmpeg_next::encoder::Video, String> {
    let codec = ffmpeg_next::encoder::find_by_name("libx264")
        .or_else(|| ffmpeg_next::encoder::find(codec::Id::H264))
        .ok_or("this libav build has no H.264 encoder to make the probe clip")?;
    let mut context = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| e.to_string())?;
    context.set_width(256);
    context.set_height(144);
    context.set_format(Pixel::YUV420P);
    context.set_time_base((1, CLIP_RATE));
    context.set_frame_rate(Some((CLIP_RATE, 1)));
    context.set_gop(gop);
    context.set_max_b_frames(0);
    let options = [("preset", "ultrafast"), ("tune", "zerolatency")]
        .into_iter()
        .collect();
    context
        .open_as_with(codec, options)
        .map_err(|e| format!("the probe clip could not be encoded: {e}"))
}

/// `frames` frames of a moving pattern, encoded by `encoder` and drained.
fn encode(encoder: &mut ffmpeg_next::encoder::Video, frames: usize) -> Result<Vec<Packet>, String> {
    let (width, height) = (encoder.width(), encoder.height());
    let mut packets = Vec::new();
    let mut drain = |encoder: &mut ffmpeg_next::encoder::Video| {
        let mut packet = Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packets.push(std::mem::replace(&mut packet, Packet::empty()));
        }
    };
    for index in 0..frames {
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
        drain(encoder);
    }
    encoder.send_eof().map_err(|e| e.to_string())?;
    drain(encoder);
    Ok(packets)
}

/// Writes an MPEG-TS file of `frames` frames of H.264 at [`CLIP_RATE`], a keyframe
/// every `gop` frames: a real source for tests of the decode loop.
#[cfg(test)]
pub(in crate::media) fn write_h264_clip(
    path: &std::path::Path,
    frames: usize,
    gop: u32,
) -> Result<(), String> {
    let mut encoder = h264_encoder(gop)?;
    let packets = encode(&mut encoder, frames)?;
    let mut output = ffmpeg_next::format::output_as(path, "mpegts").map_err(|e| e.to_string())?;
    output
        .add_stream_with(&encoder)
        .map_err(|e| e.to_string())?;
    output.write_header().map_err(|e| e.to_string())?;
    let time_base = output.stream(0).ok_or("no stream")?.time_base();
    for mut packet in packets {
        packet.set_stream(0);
        packet.rescale_ts((1, CLIP_RATE), time_base);
        packet
            .write_interleaved(&mut output)
            .map_err(|e| e.to_string())?;
    }
    output.write_trailer().map_err(|e| e.to_string())
}

/// Decodes `packets` on `backend`: Ok when frames came back from the device.
fn probe_backend(
    packets: &[Packet],
    backend: HwBackend,
    devices: &DeviceNames,
) -> Result<(), String> {
    let mut parameters = codec::Parameters::new();
    parameters.set_medium(media::Type::Video);
    parameters.set_id(codec::Id::H264);
    let mut decoder = Decoder::hardware(&parameters, backend, devices, FrameLimit::default())
        .map_err(|failure| failure.message)?;
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
pub(super) fn probe_backends(backends: &[HwBackend], devices: &DeviceNames) -> Vec<DeviceProbe> {
    super::super::init();
    let _expected = DebugOnly::enter();
    let compiled = device::compiled_device_types();
    let clip = std::cell::OnceCell::new();
    backends
        .iter()
        .map(|&backend| {
            let result = if device::is_device_type(backend)
                && !compiled.iter().any(|c| c == backend.as_str())
            {
                Err("not compiled into this libav build".to_owned())
            } else if !device::decodes_with(backend) {
                Err(if device::is_device_type(backend) {
                    "no H.264 or HEVC decoder of this libav build uses it".to_owned()
                } else {
                    "not compiled into this libav build".to_owned()
                })
            } else {
                match clip.get_or_init(probe_clip) {
                    Ok(packets) => probe_backend(packets, backend, devices),
                    Err(e) => Err(e.clone()),
                }
            };
            if let Err(reason) = &result {
                log::debug!("hardware probe: {backend}: {reason}");
            }
            DeviceProbe {
                backend,
                available: result.is_ok(),
                reason: result.err(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_clip_is_made_at_run_time() {
        crate::media::init();
        let packets = probe_clip().unwrap();
        assert!(packets.len() >= PROBE_FRAMES);
        assert!(packets[0].is_key());
    }

    #[test]
    fn software_decodes_the_probe_clip() {
        crate::media::init();
        let packets = probe_clip().unwrap();
        let stand_in = HwBackend::FaultInjection { good_frames: 100 };
        assert_eq!(
            probe_backend(&packets, stand_in, &DeviceNames::default()),
            Ok(())
        );
    }

    #[test]
    fn unknown_and_missing_backends_are_explained() {
        let devices = DeviceNames {
            vaapi: "/dev/dri/no-such-node".into(),
            ..DeviceNames::default()
        };
        let probes = probe_backends(
            &[HwBackend::Rkmpp, HwBackend::OpenCl, HwBackend::Vaapi],
            &devices,
        );
        assert!(probes.iter().all(|p| !p.available), "{probes:?}");
        let reason = |i: usize| probes[i].reason.clone().unwrap();
        assert!(reason(0).contains("not compiled"), "{}", reason(0));
        assert!(reason(1).contains("no H.264"), "{}", reason(1));
        assert!(reason(2).contains("device context"), "{}", reason(2));
    }
}
