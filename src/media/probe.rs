//! Video information read in-process with libavformat (what `video-info/` answers).

use std::time::Duration;

use ffmpeg_next::{codec, media};
use serde::Serialize;

use super::frame_limit::FrameLimit;
use super::input::{self, Opening};
use super::MediaError;
use crate::source::{RtspTransport, Source};
use crate::stop::StopToken;

/// Demuxers that open almost anything (text files, for one) but never hold video.
const NOT_VIDEO_FORMATS: [&str; 3] = ["tty", "ffmetadata", "srt"];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VideoInfo {
    pub format: String,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration: f64,
    pub bit_rate: Option<i64>,
    pub pix_fmt: Option<String>,
    pub profile: Option<String>,
    pub nb_frames: Option<i64>,
    pub streams: Vec<StreamSummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamSummary {
    pub index: usize,
    #[serde(rename = "type")]
    pub kind: String,
    pub codec: String,
}

/// Opens `source` (bounded by `timeout`) and describes its best video stream. The
/// decoders libav opens to read it refuse frames larger than `frame_limit`; the size
/// a stream states is described, whatever it is.
pub fn probe(
    source: &Source,
    timeout: Duration,
    frame_limit: FrameLimit,
    stop: &StopToken,
) -> Result<VideoInfo, MediaError> {
    super::init();
    let name = source.redacted();
    let opening = Opening {
        timeout,
        transport: RtspTransport::default(),
        frame_limit,
        doing: "probing",
    };
    let (context, _deadline) = input::open(source, opening, stop)?;

    let format = context.format().name().to_owned();
    let no_video = || MediaError::NoVideoStream {
        source_name: name.clone(),
    };
    if NOT_VIDEO_FORMATS.contains(&format.as_str()) {
        return Err(no_video());
    }
    let stream = context
        .streams()
        .best(media::Type::Video)
        .ok_or_else(no_video)?;
    let parameters = stream.parameters();
    let codec_name = codec::decoder::find(parameters.id())
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| format!("{:?}", parameters.id()).to_lowercase());
    let decoder = codec::context::Context::from_parameters(parameters)
        .and_then(|c| c.decoder().video())
        .map_err(|e| MediaError::Decoder {
            source_name: name.clone(),
            message: e.to_string(),
        })?;

    let fps = super::stated_frame_rate(&stream).unwrap_or(0.0);
    let duration = if context.duration() > 0 {
        context.duration() as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    let pix_fmt = ffmpeg_next::ffi::AVPixelFormat::from(decoder.format());
    let streams = context
        .streams()
        .map(|s| StreamSummary {
            index: s.index(),
            kind: format!("{:?}", s.parameters().medium()).to_lowercase(),
            codec: codec::decoder::find(s.parameters().id())
                .map(|c| c.name().to_owned())
                .unwrap_or_else(|| "unknown".to_owned()),
        })
        .collect();

    Ok(VideoInfo {
        format,
        codec: codec_name,
        width: decoder.width(),
        height: decoder.height(),
        fps: (fps * 1000.0).round() / 1000.0,
        duration: (duration * 1000.0).round() / 1000.0,
        bit_rate: Some(context.bit_rate()).filter(|b| *b > 0),
        pix_fmt: pixel_format_name(pix_fmt),
        profile: profile_name(&decoder),
        nb_frames: Some(stream.frames()).filter(|n| *n > 0),
        streams,
    })
}

fn pixel_format_name(format: ffmpeg_next::ffi::AVPixelFormat) -> Option<String> {
    ffmpeg_next::format::Pixel::from(format)
        .descriptor()
        .map(|d| d.name().to_owned())
}

fn profile_name(decoder: &codec::decoder::Video) -> Option<String> {
    match decoder.profile() {
        codec::Profile::Unknown => None,
        // `H264(High)` → `High`
        profile => {
            let text = format!("{profile:?}");
            let inner = text
                .split_once('(')
                .map_or(text.as_str(), |(_, rest)| rest.trim_end_matches(')'));
            Some(inner.to_owned())
        }
    }
}
