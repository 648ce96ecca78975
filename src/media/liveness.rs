//! Whether an open input goes on until stopped (live) or ends by itself (finite),
//! decided from what libav reports of it rather than from its URL.
//!
//! What FFmpeg 5.1's demuxers report once an input is open (its `duration`):
//! - MP4, MKV and the like, local or over HTTP, whatever the URL looks like: the
//!   duration the container states;
//! - MPEG-TS, from a file or over HTTP with byte ranges: one from its first and last
//!   timestamps;
//! - HLS with `#EXT-X-ENDLIST` (VOD): the sum of its segments' durations; without it (a
//!   live playlist, or an event still being written): none, whatever the segments hold;
//! - an endless HTTP stream (no Content-Length), RTSP, an `.sdp` session: none;
//! - a raw elementary stream (`.h264`, MJPEG), even from a file of known size: none;
//! - FLV from a live server (HTTP-FLV, RTMP): 0, from the metadata it sends first.
//!
//! Hence the rule: a stream protocol is live whatever it announces (an RTSP or RTMP
//! server may announce the length of a recording it loops); otherwise a positive
//! duration means finite; without one, a local file is finite (it ends where it ends)
//! unless it only describes streams read from elsewhere (a playlist, a session
//! description), and anything else is live.

use ffmpeg_next::format;

use crate::source::Source;

/// Demuxers whose input describes streams read from elsewhere: without a duration,
/// those streams have no known end even when the description is a local file.
const DESCRIBING_FORMATS: [&str; 3] = ["hls", "dash", "sdp"];

/// Whether `input`, opened from `source`, goes on until stopped.
pub fn reports_live(source: &Source, input: &format::context::Input) -> bool {
    let duration = input.duration();
    decide(
        source,
        input.format().name(),
        (duration > 0).then_some(duration),
    )
}

/// The rule above, on what libav reported: the demuxer's name and a positive
/// duration, if any.
fn decide(source: &Source, format: &str, duration: Option<i64>) -> bool {
    if source.is_always_live() {
        return true;
    }
    if duration.is_some() {
        return false;
    }
    match source {
        Source::File(_) => DESCRIBING_FORMATS.contains(&format),
        Source::Url(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECONDS_3: Option<i64> = Some(3_000_000);
    const MP4: &str = "mov,mp4,m4a,3gp,3g2,mj2";

    fn url(url: &str) -> Source {
        Source::Url(url.into())
    }

    fn file(path: &str) -> Source {
        Source::File(path.into())
    }

    #[test]
    fn a_known_duration_is_finite_whatever_the_url_says() {
        assert!(!decide(&url("http://h/video?id=3"), MP4, SECONDS_3));
        assert!(!decide(&url("https://h/vod/index.m3u8"), "hls", SECONDS_3));
        assert!(!decide(&url("http://h/clip.ts"), "mpegts", SECONDS_3));
        assert!(!decide(&file("/v/vod.m3u8"), "hls", SECONDS_3));
    }

    #[test]
    fn no_duration_over_the_network_is_live() {
        assert!(decide(&url("http://h/live/index.m3u8"), "hls", None));
        assert!(decide(&url("http://h/clip.mp4"), "mpegts", None));
        assert!(decide(&url("http://h/live.flv"), "flv", None));
    }

    #[test]
    fn a_local_file_without_duration_ends_unless_it_describes_other_streams() {
        assert!(!decide(&file("/v/raw.h264"), "h264", None));
        assert!(!decide(&file("/v/cam.mjpeg"), "jpeg_pipe", None));
        assert!(decide(&file("/v/live.m3u8"), "hls", None));
        assert!(decide(&file("/v/cam.sdp"), "sdp", None));
    }

    #[test]
    fn stream_protocols_are_live_even_when_they_announce_a_length() {
        assert!(decide(&url("rtsp://h/recording"), "rtsp", SECONDS_3));
        assert!(decide(&url("rtmp://h/app/s"), "flv", SECONDS_3));
        assert!(decide(&url("udp://0.0.0.0:5000"), "mpegts", None));
    }
}
