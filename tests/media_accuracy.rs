//! Frame accuracy against real libav decoding, with media made at run time by the
//! `ffmpeg` CLI: frame counts against ffmpeg's `fps` filter, JPEG structure (baseline,
//! 4:2:0, size, EOI), and pixels against ffmpeg's own RGB decode of the source frame at
//! the same time (PSNR over RGB). The daemon over HTTP (local file and upload) and the
//! `extract` command, across codecs and source pixel formats; atomic frame files while
//! decoding; `video-info` and `probe` against ffprobe; a size change mid-stream.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{binary, frame_files, generated_media, h264_1080p, place, psnr, Daemon};

/// The lowest PSNR (dB over RGB) accepted between a frame of ours and ffmpeg's picture
/// of the same source frame.
const MIN_PSNR_DB: f64 = 35.0;

/// How much worse than ffmpeg's own 4:2:0 JPEG of the same frame ours may be.
const FFMPEG_JPEG_MARGIN_DB: f64 = 1.0;

/// Decoding a whole file in the daemon may take this long on a slow machine.
const DECODE_TIMEOUT: Duration = Duration::from_secs(300);

/// How ffmpeg converts to RGB for the comparison. A JPEG decoder (the `image` crate, as
/// libjpeg) interpolates chroma; swscale's default 4:2:0 to RGB path repeats each chroma
/// sample instead: on testsrc2's sharp colour edges ffmpeg and the `image` crate then
/// agree about the very same JPEG only to ~28 dB. With `full_chroma_int` ffmpeg
/// interpolates too.
const REFERENCE_SWS_FLAGS: &str = "bicubic+accurate_rnd+full_chroma_int";

const SMALL_SOURCE: &str = "testsrc2=size=320x240:rate=30";
/// testsrc2 only makes even sizes; an RGB scale gives the odd one.
const ODD_SOURCE: &str = "testsrc2=size=640x360:rate=30,format=rgb24,scale=641:361";

/// A test clip: how to make it and what it is.
struct Clip {
    name: &'static str,
    lavfi: &'static str,
    seconds: f64,
    args: &'static [&'static str],
    /// The codec name `video-info` must report.
    codec: &'static str,
    size: (u32, u32),
    reference: Reference,
}

/// What our frames are compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reference {
    /// ffmpeg's RGB decode of the source frame.
    Source,
    /// The same after ffmpeg reduces the chroma to 4:2:0 (`format=yuv420p`): a 4:2:2 or
    /// 4:4:4 source holds chroma detail that the contract's 4:2:0 JPEG cannot (ffmpeg's
    /// own 4:2:0 JPEG of such a testsrc2 frame scores 31-34 dB against the full source).
    Source420,
}

impl Clip {
    fn path(&self) -> PathBuf {
        exclusive(self.name, || {
            generated_media(self.name, self.lavfi, self.seconds, self.args)
        })
    }
}

const H264_SMALL: Clip = Clip {
    name: "accuracy_h264_320x240_6s.mp4",
    lavfi: SMALL_SOURCE,
    seconds: 6.0,
    args: &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
    ],
    codec: "h264",
    size: (320, 240),
    reference: Reference::Source,
};

/// Every frame a keyframe, as in MJPEG: no frame depends on another.
const H264_INTRA: Clip = Clip {
    name: "accuracy_h264_intra_3s.mp4",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "1",
        "-pix_fmt",
        "yuv420p",
    ],
    codec: "h264",
    size: (320, 240),
    reference: Reference::Source,
};

const HEVC: Clip = Clip {
    name: "accuracy_hevc_320x240_3s.mp4",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=error",
        "-pix_fmt",
        "yuv420p",
    ],
    codec: "hevc",
    size: (320, 240),
    reference: Reference::Source,
};

const MPEG4: Clip = Clip {
    name: "accuracy_mpeg4_320x240_3s.avi",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"],
    codec: "mpeg4",
    size: (320, 240),
    reference: Reference::Source,
};

const VP9: Clip = Clip {
    name: "accuracy_vp9_320x240_2s.webm",
    lavfi: SMALL_SOURCE,
    seconds: 2.0,
    args: &[
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "800k",
        "-pix_fmt",
        "yuv420p",
    ],
    codec: "vp9",
    size: (320, 240),
    reference: Reference::Source,
};

const MJPEG: Clip = Clip {
    name: "accuracy_mjpeg_320x240_3s.avi",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &["-c:v", "mjpeg", "-q:v", "3"],
    codec: "mjpeg",
    size: (320, 240),
    reference: Reference::Source,
};

const YUV422: Clip = Clip {
    name: "accuracy_h264_yuv422p_3s.mp4",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv422p",
    ],
    codec: "h264",
    size: (320, 240),
    reference: Reference::Source420,
};

const YUV444: Clip = Clip {
    name: "accuracy_h264_yuv444p_3s.mp4",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv444p",
    ],
    codec: "h264",
    size: (320, 240),
    reference: Reference::Source420,
};

/// H.264 has no 4:0:0 output: libavcodec decodes it as full-range 4:2:0.
const GRAY_H264: Clip = Clip {
    name: "accuracy_h264_gray_3s.mp4",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "gray",
    ],
    codec: "h264",
    size: (320, 240),
    reference: Reference::Source,
};

/// HEVC 4:0:0 decodes to `gray`, which goes through swscale.
const GRAY_HEVC: Clip = Clip {
    name: "accuracy_hevc_gray_3s.mkv",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=error",
        "-pix_fmt",
        "gray",
    ],
    codec: "hevc",
    size: (320, 240),
    reference: Reference::Source,
};

const TEN_BIT: Clip = Clip {
    name: "accuracy_h264_yuv420p10le_3s.mp4",
    lavfi: SMALL_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p10le",
    ],
    codec: "h264",
    size: (320, 240),
    reference: Reference::Source,
};

/// Odd 4:2:0 (libx264 refuses odd 4:2:0 sizes, MPEG-4 part 2 does not).
const ODD_420: Clip = Clip {
    name: "accuracy_mpeg4_641x361_3s.avi",
    lavfi: ODD_SOURCE,
    seconds: 3.0,
    args: &["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"],
    codec: "mpeg4",
    size: (641, 361),
    reference: Reference::Source,
};

const ODD_444: Clip = Clip {
    name: "accuracy_h264_yuv444p_641x361_3s.mp4",
    lavfi: ODD_SOURCE,
    seconds: 3.0,
    args: &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv444p",
    ],
    codec: "h264",
    size: (641, 361),
    reference: Reference::Source420,
};

/// Every clip but the 1080p one, for `video-info`.
const CLIPS: [&Clip; 13] = [
    &H264_SMALL,
    &H264_INTRA,
    &HEVC,
    &MPEG4,
    &VP9,
    &MJPEG,
    &YUV422,
    &YUV444,
    &GRAY_H264,
    &GRAY_HEVC,
    &TEN_BIT,
    &ODD_420,
    &ODD_444,
];

/// The acceptance clip: 60 s of 1080p30 H.264 with a 2 s GOP.
fn h264_1080p_60s() -> PathBuf {
    exclusive("h264_1080p_60s", || h264_1080p(60))
}

/// Tests of this file run in parallel threads; one clip is made by one thread at a time
/// (the cache's temporary name is per process, not per thread).
fn exclusive(key: &str, make: impl FnOnce() -> PathBuf) -> PathBuf {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let lock = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.to_owned())
        .or_default()
        .clone();
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    make()
}

// ---------------------------------------------------------------------------------
// What ffmpeg says
// ---------------------------------------------------------------------------------

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed for the tests");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// How many frames `ffmpeg -i IN -vf fps=N OUT/%d.jpg` writes.
fn ffmpeg_fps_filter_count(input: &Path, fps: f64) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("%d.jpg");
    ffmpeg(&[
        "-i",
        path_str(input),
        "-vf",
        &format!("fps={fps}"),
        path_str(&pattern),
    ]);
    std::fs::read_dir(dir.path()).unwrap().count()
}

/// The arguments that pick the first frame at or after `seconds` of `input`.
fn seek_args(input: &Path, seconds: f64) -> Vec<String> {
    // Rounded down to whole microseconds so that a frame exactly at `seconds` is kept.
    let at = format!("{:.6}", (seconds * 1e6).floor() / 1e6);
    let input = path_str(input).to_owned();
    if input.ends_with(".ts") {
        // ffmpeg's input seeking in MPEG-TS lands past the target; seeking on the output
        // side decodes from the start and drops what comes before.
        vec!["-i".into(), input, "-ss".into(), at]
    } else {
        vec![
            "-accurate_seek".into(),
            "-ss".into(),
            at,
            "-i".into(),
            input,
        ]
    }
}

fn ffmpeg_rgb(args: &[String], (width, height): (u32, u32), what: &str) -> Vec<u8> {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend([
        "-frames:v",
        "1",
        "-sws_flags",
        REFERENCE_SWS_FLAGS,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let rgb = ffmpeg(&all);
    assert_eq!(
        rgb.len(),
        width as usize * height as usize * 3,
        "ffmpeg's RGB picture of {what} has the wrong size"
    );
    rgb
}

/// ffmpeg's RGB picture of the first source frame at or after `seconds`.
fn ffmpeg_rgb_at(input: &Path, seconds: f64, size: (u32, u32), reference: Reference) -> Vec<u8> {
    let mut args = seek_args(input, seconds);
    if reference == Reference::Source420 {
        args.extend(["-vf".into(), "format=yuv420p".into()]);
    }
    ffmpeg_rgb(
        &args,
        size,
        &format!("{} at {seconds:.3} s", input.display()),
    )
}

/// ffmpeg's RGB decode of a JPEG file, converted as the reference is.
fn ffmpeg_rgb_of_jpeg(jpeg: &Path, size: (u32, u32)) -> Vec<u8> {
    let args = ["-i".to_owned(), path_str(jpeg).to_owned()];
    ffmpeg_rgb(&args, size, &jpeg.display().to_string())
}

/// ffmpeg's own baseline 4:2:0 JPEG of the source frame at `seconds` (what
/// `ffmpeg -i IN -q:v 2 -pix_fmt yuvj420p frame.jpg` writes).
fn ffmpeg_jpeg_at(input: &Path, seconds: f64) -> Vec<u8> {
    let mut args = seek_args(input, seconds);
    args.extend(
        [
            "-frames:v",
            "1",
            "-sws_flags",
            REFERENCE_SWS_FLAGS,
            "-pix_fmt",
            "yuvj420p",
            "-c:v",
            "mjpeg",
            "-q:v",
            "2",
            "-f",
            "image2pipe",
            "-",
        ]
        .map(String::from),
    );
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Every frame of `input`, as ffmpeg decodes it to RGB, in presentation order.
fn ffmpeg_all_frames_rgb(input: &Path, (width, height): (u32, u32)) -> Vec<Vec<u8>> {
    let rgb = ffmpeg(&[
        "-i",
        path_str(input),
        "-fps_mode",
        "passthrough",
        "-sws_flags",
        REFERENCE_SWS_FLAGS,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let frame = width as usize * height as usize * 3;
    assert_eq!(
        rgb.len() % frame,
        0,
        "ffmpeg's raw output is not whole frames"
    );
    rgb.chunks_exact(frame).map(<[u8]>::to_vec).collect()
}

/// ffprobe's view of the first video stream and the container.
fn ffprobe(input: &Path) -> serde_json::Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "json"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,avg_frame_rate,r_frame_rate:format=format_name,duration",
        ])
        .arg(input)
        .output()
        .expect("ffprobe is installed with ffmpeg");
    assert!(
        output.status.success(),
        "ffprobe failed on {}",
        input.display()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn parse_rate(rate: &str) -> Option<f64> {
    let (n, d) = rate.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (n > 0.0 && d > 0.0).then(|| n / d)
}

// ---------------------------------------------------------------------------------
// What we made
// ---------------------------------------------------------------------------------

/// Runs `video-pipeline extract`; returns the folder (kept alive) and its frames.
fn extract(input: &Path, fps: f64) -> (tempfile::TempDir, Vec<PathBuf>) {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .arg("extract")
        .arg(input)
        .args(["--fps", &fps.to_string()])
        .arg("--out")
        .arg(out.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "extract {} at fps {fps} failed: {}",
        input.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let frames = frame_files(out.path());
    (out, frames)
}

/// Checks the answer to a start and waits until the camera's file source is done.
fn decode_to_end(daemon: &Daemon, camera: &str, reply: common::Reply) -> serde_json::Value {
    assert_eq!(
        reply.status,
        200,
        "{camera}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    daemon.wait_status(camera, DECODE_TIMEOUT, |status| {
        assert_ne!(status["status"], "error", "{camera}: {status}");
        status["status"] == "completed"
    })
}

/// What the frame header of a baseline JPEG says.
struct JpegLayout {
    size: (u32, u32),
    /// (horizontal, vertical) sampling factors of each component.
    sampling: Vec<(u8, u8)>,
}

/// Checks that `jpeg` is one whole baseline JPEG: SOI, segments up to the scan with a
/// single SOF0 header, entropy-coded data, EOI at the very end.
fn jpeg_layout(jpeg: &[u8]) -> Result<JpegLayout, String> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err("does not start with SOI (FFD8)".into());
    }
    if !jpeg.ends_with(&[0xFF, 0xD9]) {
        return Err("does not end with EOI (FFD9)".into());
    }
    let mut at = 2;
    let mut frame_headers = Vec::new();
    loop {
        if jpeg.get(at) != Some(&0xFF) {
            return Err(format!("no marker at byte {at}"));
        }
        while jpeg.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *jpeg.get(at).ok_or("truncated before the scan")?;
        at += 1;
        match marker {
            0xD8 | 0xD9 => return Err(format!("marker FF{marker:02X} before the scan")),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let length = jpeg
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or("truncated segment length")?;
        let segment = jpeg
            .get(at + 2..at + length)
            .ok_or_else(|| format!("segment FF{marker:02X} runs past the end"))?;
        let is_frame_header =
            (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker);
        if is_frame_header {
            frame_headers.push((marker, segment));
        }
        at += length;
        if marker == 0xDA {
            break;
        }
    }
    if at + 2 >= jpeg.len() {
        return Err("no entropy-coded data after the scan header".into());
    }
    let sof = match frame_headers.as_slice() {
        [(0xC0, sof)] => *sof,
        other => {
            let markers: Vec<String> = other.iter().map(|(m, _)| format!("FF{m:02X}")).collect();
            return Err(format!(
                "expected one baseline SOF0 (FFC0), found {markers:?}"
            ));
        }
    };
    if sof.len() < 6 || sof[0] != 8 {
        return Err(format!("SOF0 is not 8-bit: {sof:02X?}"));
    }
    let height = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
    let width = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
    let components = usize::from(sof[5]);
    let table = sof
        .get(6..6 + 3 * components)
        .ok_or("SOF0 shorter than its component list")?;
    let sampling = table
        .chunks_exact(3)
        .map(|c| (c[1] >> 4, c[1] & 0x0F))
        .collect();
    Ok(JpegLayout {
        size: (width, height),
        sampling,
    })
}

/// A whole baseline 4:2:0 JPEG (Y 2x2, Cb and Cr 1x1) of the given size.
fn check_baseline_420(jpeg: &[u8], size: (u32, u32)) -> Result<(), String> {
    let JpegLayout {
        size: actual,
        sampling,
    } = jpeg_layout(jpeg)?;
    if actual != size {
        return Err(format!("size {actual:?}, expected {size:?}"));
    }
    if sampling != [(2, 2), (1, 1), (1, 1)] {
        return Err(format!(
            "sampling factors {sampling:?}, expected Y 2x2, Cb 1x1, Cr 1x1"
        ));
    }
    Ok(())
}

fn decode_rgb(jpeg: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("the image crate decodes our JPEG")
        .to_rgb8()
}

/// First, second, middle and last (1-based), without repeats.
fn spread(count: usize) -> Vec<usize> {
    let mut picks = vec![1, 2.min(count), count.div_ceil(2), count];
    picks.sort_unstable();
    picks.dedup();
    picks
}

/// How one of our frames compares with ffmpeg's picture of the same source frame.
struct Score {
    k: usize,
    seconds: f64,
    /// Our JPEG decoded by the `image` crate.
    ours: f64,
    /// Our JPEG decoded by ffmpeg, converted to RGB as the reference is: both sides of
    /// the comparison then share ffmpeg's chroma reconstruction.
    ours_by_ffmpeg: f64,
    /// ffmpeg's own 4:2:0 JPEG of the frame, decoded by the `image` crate.
    ffmpeg_jpeg: f64,
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{}@{:.3}s {:.2} dB (decoded by ffmpeg {:.2}, ffmpeg's own JPEG {:.2})",
            self.k, self.seconds, self.ours, self.ours_by_ffmpeg, self.ffmpeg_jpeg
        )
    }
}

/// Scores frame `k` (1-based) of an extraction at `fps`, which shows the source frame
/// at or after `(k-1)/fps`, and asserts:
/// - decoded by ffmpeg, it is within `MIN_PSNR_DB` of ffmpeg's picture;
/// - decoded by the `image` crate, it is within `MIN_PSNR_DB`; at odd widths, within
///   that or as close as ffmpeg's own JPEG (less `FFMPEG_JPEG_MARGIN_DB`). At odd widths
///   swscale stretches the `ceil(w/2)` chroma columns over `w` pixels (not `2*ceil(w/2)`),
///   so its chroma drifts up to a pixel towards the right edge while a JPEG decoder
///   upsamples by exactly 2: on testsrc2's sharp edges the `image` crate and ffmpeg then
///   agree about any 641-wide JPEG only to ~30 dB, ffmpeg's own included.
fn score_frame(
    label: &str,
    input: &Path,
    (k, seconds): (usize, f64),
    frame: &Path,
    size: (u32, u32),
    reference: Reference,
) -> Score {
    let expected = ffmpeg_rgb_at(input, seconds, size, reference);
    let ours = decode_rgb(&std::fs::read(frame).unwrap());
    assert_eq!(
        ours.dimensions(),
        size,
        "{label}: decoded size of frame {k}"
    );
    let ffmpeg_jpeg = decode_rgb(&ffmpeg_jpeg_at(input, seconds));
    let score = Score {
        k,
        seconds,
        ours: psnr(ours.as_raw(), &expected),
        ours_by_ffmpeg: psnr(&ffmpeg_rgb_of_jpeg(frame, size), &expected),
        ffmpeg_jpeg: psnr(ffmpeg_jpeg.as_raw(), &expected),
    };
    assert!(
        score.ours_by_ffmpeg >= MIN_PSNR_DB,
        "{label}: {score}: ffmpeg's decode of our frame is below {MIN_PSNR_DB} dB"
    );
    // At odd widths the bar is what ffmpeg's own JPEG reaches, when that is lower.
    let bar = if size.0 % 2 == 1 {
        MIN_PSNR_DB.min(score.ffmpeg_jpeg - FFMPEG_JPEG_MARGIN_DB)
    } else {
        MIN_PSNR_DB
    };
    assert!(score.ours >= bar, "{label}: {score}: below {bar:.2} dB");
    score
}

/// The checks every extraction gets: frame count within one of ffmpeg's fps filter,
/// contiguous numbering, each file a whole baseline 4:2:0 JPEG of `size`, and frames
/// spread over the clip scored against ffmpeg's picture at `(k-1)/fps`.
fn check_extraction(
    label: &str,
    input: &Path,
    fps: f64,
    frames: &[PathBuf],
    size: (u32, u32),
    reference: Reference,
) {
    let expected = ffmpeg_fps_filter_count(input, fps);
    assert!(!frames.is_empty(), "{label}: no frames");
    assert!(
        frames.len().abs_diff(expected) <= 1,
        "{label}: {} frames, ffmpeg's fps filter gives {expected}",
        frames.len()
    );
    for (k, frame) in frames.iter().enumerate() {
        let name = frame.file_name().unwrap().to_string_lossy();
        assert_eq!(
            name,
            format!("frame_{:04}.jpg", k + 1),
            "{label}: numbering"
        );
        let bytes = std::fs::read(frame).unwrap();
        check_baseline_420(&bytes, size).unwrap_or_else(|e| panic!("{label}: {name}: {e}"));
    }
    let scores: Vec<String> = spread(frames.len())
        .into_iter()
        .map(|k| {
            let at = (k, (k - 1) as f64 / fps);
            score_frame(label, input, at, &frames[k - 1], size, reference).to_string()
        })
        .collect();
    println!(
        "{label}: {} frames (ffmpeg fps filter {expected}); PSNR {}",
        frames.len(),
        scores.join(", ")
    );
}

fn extract_and_check(clip: &Clip, fps: f64) {
    let source = clip.path();
    let (_out, frames) = extract(&source, fps);
    let label = format!("{} fps={fps}", clip.name);
    check_extraction(&label, &source, fps, &frames, clip.size, clip.reference);
}

/// The structure check itself: it accepts ffmpeg's own baseline 4:2:0 JPEG and refuses
/// other samplings, a wrong size and a cut-off file.
#[test]
fn jpeg_check_tells_layouts_apart() {
    let source = H264_SMALL.path();
    let jpeg = |pix_fmt: &str| {
        let mut args = seek_args(&source, 1.0);
        args.extend(
            [
                "-frames:v",
                "1",
                "-pix_fmt",
                pix_fmt,
                "-c:v",
                "mjpeg",
                "-f",
                "image2pipe",
                "-",
            ]
            .map(String::from),
        );
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let size = H264_SMALL.size;
    let good = jpeg("yuvj420p");
    assert_eq!(check_baseline_420(&good, size), Ok(()));
    let refused = |bytes: &[u8], size| check_baseline_420(bytes, size).unwrap_err();
    assert!(refused(&good, (240, 320)).contains("size"));
    assert!(refused(&good[..good.len() / 2], size).contains("EOI"));
    // ffmpeg writes 4:2:2 as Y 2x2, chroma 1x2 and 4:4:4 as 1x2 for every component.
    for pix_fmt in ["yuvj422p", "yuvj444p"] {
        assert!(
            refused(&jpeg(pix_fmt), size).starts_with("sampling factors"),
            "{pix_fmt}"
        );
    }
}

// ---------------------------------------------------------------------------------
// A: the acceptance clip through the daemon
// ---------------------------------------------------------------------------------

#[test]
fn daemon_1080p_file_at_1_fps_matches_ffmpeg() {
    let source = h264_1080p_60s();
    let daemon = Daemon::start();
    let placed = place(&daemon, &source);
    let reply = daemon.post_form(
        "/decode/",
        &[
            ("camera_id", "accuracy_1080p"),
            ("url", path_str(&placed)),
            ("fps", "1"),
        ],
    );
    let status = decode_to_end(&daemon, "accuracy_1080p", reply);
    let frames = frame_files(&daemon.camera_dir("accuracy_1080p"));
    assert_eq!(status["frame_count"], frames.len(), "{status}");
    check_extraction(
        "1080p30 60 s via daemon, fps=1",
        &source,
        1.0,
        &frames,
        (1920, 1080),
        Reference::Source,
    );
}

// ---------------------------------------------------------------------------------
// B: upload, rates, codecs, pixel formats, odd sizes
// ---------------------------------------------------------------------------------

#[test]
fn daemon_upload_matches_ffmpeg() {
    let source = H264_SMALL.path();
    let daemon = Daemon::start();
    let bytes = std::fs::read(&source).unwrap();
    let reply = daemon.post_multipart(
        "/decode/",
        &[("camera_id", "accuracy_upload"), ("fps", "2")],
        &[("file", "clip.mp4", &bytes)],
    );
    let status = decode_to_end(&daemon, "accuracy_upload", reply);
    let frames = frame_files(&daemon.camera_dir("accuracy_upload"));
    assert_eq!(status["frame_count"], frames.len(), "{status}");
    check_extraction(
        "upload fps=2 via daemon",
        &source,
        2.0,
        &frames,
        H264_SMALL.size,
        Reference::Source,
    );
}

#[test]
fn extract_at_half_fps() {
    extract_and_check(&H264_SMALL, 0.5);
}

#[test]
fn extract_at_source_rate_gives_every_frame_once() {
    let source = H264_SMALL.path();
    let (_out, frames) = extract(&source, 30.0);
    check_extraction(
        "h264 fps=30 (= source)",
        &source,
        30.0,
        &frames,
        H264_SMALL.size,
        Reference::Source,
    );

    let reference = ffmpeg_all_frames_rgb(&source, H264_SMALL.size);
    assert_eq!(
        frames.len(),
        reference.len(),
        "every source frame must come out exactly once"
    );
    let mut worst = f64::INFINITY;
    for (i, frame) in frames.iter().enumerate() {
        let ours = decode_rgb(&std::fs::read(frame).unwrap());
        let db = psnr(ours.as_raw(), &reference[i]);
        worst = worst.min(db);
        assert!(db >= MIN_PSNR_DB, "frame {} has PSNR {db:.2} dB", i + 1);
        // The match is with this source frame and not a neighbour (no repeat, no skip).
        for j in [i.wrapping_sub(1), i + 1] {
            if let Some(neighbour) = reference.get(j) {
                let other = psnr(ours.as_raw(), neighbour);
                assert!(
                    other < db,
                    "frame {} is closer to source frame {} ({other:.2} dB) than to its own \
                     ({db:.2} dB)",
                    i + 1,
                    j + 1
                );
            }
        }
    }
    println!(
        "h264 fps=30: {} frames, {} source frames, worst PSNR {worst:.2} dB",
        frames.len(),
        reference.len()
    );
}

#[test]
fn extract_all_intra_h264() {
    extract_and_check(&H264_INTRA, 2.0);
}

#[test]
fn extract_hevc() {
    extract_and_check(&HEVC, 2.0);
}

#[test]
fn extract_mpeg4() {
    extract_and_check(&MPEG4, 2.0);
}

#[test]
fn extract_vp9() {
    extract_and_check(&VP9, 2.0);
}

#[test]
fn extract_mjpeg() {
    extract_and_check(&MJPEG, 2.0);
}

#[test]
fn extract_yuv422p() {
    extract_and_check(&YUV422, 2.0);
}

#[test]
fn extract_yuv444p() {
    extract_and_check(&YUV444, 2.0);
}

#[test]
fn extract_gray_h264() {
    extract_and_check(&GRAY_H264, 2.0);
}

#[test]
fn extract_gray_hevc() {
    extract_and_check(&GRAY_HEVC, 2.0);
}

#[test]
fn extract_10_bit() {
    extract_and_check(&TEN_BIT, 2.0);
}

#[test]
fn extract_odd_size_420() {
    extract_and_check(&ODD_420, 2.0);
}

#[test]
fn extract_odd_size_444() {
    extract_and_check(&ODD_444, 2.0);
}

// ---------------------------------------------------------------------------------
// C: readers never see a partial frame; latest.jpg, latest-frame/ and modes
// ---------------------------------------------------------------------------------

#[derive(Default)]
struct ReaderReport {
    /// Passes over the folders.
    passes: usize,
    /// `.jpg` files opened and read whole.
    reads: usize,
    /// Different `latest.jpg` contents seen while the cameras ran.
    latest_versions: usize,
    /// Listed, then gone before they could be opened.
    vanished: usize,
    problems: Vec<String>,
}

/// Reads every `.jpg` that appears in `dirs` (each frame file once, `latest.jpg` on every
/// pass) until `done`, checking at once that each read is a whole baseline JPEG of the
/// folder's size; a second thread decodes every distinct read, so passes stay quick.
fn read_while_decoding(dirs: Vec<(PathBuf, (u32, u32))>, done: Arc<AtomicBool>) -> ReaderReport {
    let (to_decoder, decode_queue) = std::sync::mpsc::channel::<(PathBuf, Vec<u8>)>();
    // libjpeg-turbo: the `image` crate, unoptimised in test builds, takes half a second
    // for each 1080p frame.
    let decoder = std::thread::spawn(move || {
        let mut problems = Vec::new();
        for (path, bytes) in decode_queue {
            if let Err(e) = turbojpeg::decompress(&bytes, turbojpeg::PixelFormat::RGB) {
                problems.push(format!("{} does not decode: {e}", path.display()));
            }
        }
        problems
    });
    let mut report = ReaderReport::default();
    let mut seen = HashSet::new();
    let mut last_latest: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    loop {
        let last_pass = done.load(Ordering::SeqCst);
        report.passes += 1;
        for (dir, size) in &dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let latest = name == "latest.jpg";
                if !name.ends_with(".jpg") || (!latest && seen.contains(&path)) {
                    continue;
                }
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        report.vanished += 1;
                        continue;
                    }
                    Err(e) => {
                        report.problems.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                report.reads += 1;
                if let Err(e) = check_baseline_420(&bytes, *size) {
                    let length = bytes.len();
                    report
                        .problems
                        .push(format!("{} ({length} bytes): {e}", path.display()));
                    continue;
                }
                if latest {
                    if last_latest.get(dir) == Some(&bytes) {
                        continue;
                    }
                    last_latest.insert(dir.clone(), bytes.clone());
                    if !last_pass {
                        report.latest_versions += 1;
                    }
                } else {
                    seen.insert(path.clone());
                }
                to_decoder.send((path, bytes)).unwrap();
            }
        }
        if last_pass {
            drop(to_decoder);
            report
                .problems
                .extend(decoder.join().expect("decoder thread"));
            return report;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn readers_never_see_partial_frames() {
    let big = exclusive("h264_1080p_6s", || h264_1080p(6));
    let small = H264_SMALL.path();
    let daemon = Daemon::start();
    let cameras = [
        ("atomic_1080p", place(&daemon, &big), (1920, 1080)),
        ("atomic_small", place(&daemon, &small), H264_SMALL.size),
    ];
    let done = Arc::new(AtomicBool::new(false));
    let dirs = cameras
        .iter()
        .map(|(camera, _, size)| (daemon.camera_dir(camera), *size))
        .collect();
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || read_while_decoding(dirs, done))
    };
    let started = Instant::now();
    for (camera, path, _) in &cameras {
        let reply = daemon.post_form(
            "/decode/",
            &[
                ("camera_id", camera),
                ("url", path_str(path)),
                ("fps", "30"),
            ],
        );
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    for (camera, _, _) in &cameras {
        daemon.wait_status(camera, DECODE_TIMEOUT, |status| {
            assert_ne!(status["status"], "error", "{camera}: {status}");
            status["status"] == "completed"
        });
    }
    let decoding = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let report = reader.join().expect("reader thread");
    assert!(
        report.problems.is_empty(),
        "a reader saw incomplete frames:\n{}",
        report.problems.join("\n")
    );
    let written: usize = cameras
        .iter()
        .map(|(camera, _, _)| frame_files(&daemon.camera_dir(camera)).len())
        .sum();
    assert!(
        report.reads >= written,
        "the reader read {} files for {written} frames",
        report.reads
    );
    assert!(
        report.latest_versions >= 10,
        "the reader saw only {} versions of latest.jpg while decoding",
        report.latest_versions
    );
    println!(
        "atomicity: {written} frames in {:.1} s; {} passes, {} whole reads, {} latest.jpg \
         versions, {} listed files gone before opening",
        decoding.as_secs_f64(),
        report.passes,
        report.reads,
        report.latest_versions,
        report.vanished
    );

    for (camera, _, _) in &cameras {
        let dir = daemon.camera_dir(camera);
        let frames = frame_files(&dir);
        let highest = frames.last().expect("frames were written");
        let latest = std::fs::read(dir.join("latest.jpg")).unwrap();
        assert_eq!(
            latest,
            std::fs::read(highest).unwrap(),
            "{camera}: latest.jpg"
        );
        let reply = daemon.get(&format!("/latest-frame/?camera_id={camera}"));
        assert_eq!(reply.status, 200, "{camera}");
        assert_eq!(reply.body, latest, "{camera}: latest-frame/ body");
        assert_eq!(
            reply.header("x-frame-seq"),
            Some(frames.len().to_string().as_str()),
            "{camera}"
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o755, "{camera}: folder mode");
            for file in frames.iter().chain([&dir.join("latest.jpg")]) {
                assert_eq!(mode(file), 0o644, "{}", file.display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// D: video-info and probe against ffprobe
// ---------------------------------------------------------------------------------

fn assert_info_matches_ffprobe(label: &str, info: &serde_json::Value, source: &Path, codec: &str) {
    let probe = ffprobe(source);
    let stream = &probe["streams"][0];
    let number = |key: &str| {
        info[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{label}: {key} missing in {info}"))
    };
    assert_eq!(info["codec"], codec, "{label}: {info}");
    assert_eq!(info["codec"], stream["codec_name"], "{label}: {info}");
    assert_eq!(
        info["format"], probe["format"]["format_name"],
        "{label}: {info}"
    );
    assert_eq!(info["width"], stream["width"], "{label}: {info}");
    assert_eq!(info["height"], stream["height"], "{label}: {info}");
    let fps = stream["avg_frame_rate"]
        .as_str()
        .and_then(parse_rate)
        .or_else(|| stream["r_frame_rate"].as_str().and_then(parse_rate))
        .expect("ffprobe gives a frame rate");
    assert!(
        (number("fps") - fps).abs() < 0.01,
        "{label}: fps {info}, ffprobe {fps}"
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("ffprobe gives a duration");
    assert!(
        (number("duration") - duration).abs() < 0.01,
        "{label}: duration {info}, ffprobe {duration}"
    );
}

/// The keys of a JSON object, and of each object below it.
fn shape(value: &serde_json::Value) -> Vec<String> {
    let mut keys = Vec::new();
    let mut stack = vec![(String::new(), value)];
    while let Some((prefix, value)) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    let path = format!("{prefix}/{key}");
                    keys.push(path.clone());
                    stack.push((path, inner));
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    stack.push((format!("{prefix}[]"), item));
                }
            }
            _ => {}
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn video_info_and_probe_match_ffprobe() {
    let daemon = Daemon::start();
    let mut clips: Vec<(String, PathBuf, &str)> = CLIPS
        .into_iter()
        .map(|clip| (clip.name.to_owned(), clip.path(), clip.codec))
        .collect();
    clips.push(("h264_1080p_60s".to_owned(), h264_1080p_60s(), "h264"));
    for (label, source, codec) in &clips {
        let bytes = std::fs::read(source).unwrap();
        let file_name = source.file_name().unwrap().to_string_lossy().into_owned();
        let reply = daemon.post_multipart("/video-info/", &[], &[("video", &file_name, &bytes)]);
        assert_eq!(
            reply.status,
            200,
            "{label}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let body = reply.json();
        assert_eq!(body["message"], "Video information retrieved");
        let info = &body["info"];
        assert_info_matches_ffprobe(label, info, source, codec);

        let output = Command::new(binary())
            .arg("probe")
            .arg(source)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "probe {label}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("probe {label} printed no JSON ({e})"));
        assert_eq!(
            shape(&printed),
            shape(info),
            "{label}: probe and video-info shapes"
        );
        for key in ["format", "codec", "width", "height", "fps", "duration"] {
            assert_eq!(printed[key], info[key], "{label}: probe's {key}");
        }
        println!(
            "video-info {label}: {} {}x{} {} fps {} s",
            info["codec"], info["width"], info["height"], info["fps"], info["duration"]
        );
    }
    // A timeout no `Duration` holds is refused, not a panic.
    for timeout in ["1e300", "0", "NaN"] {
        let output = Command::new(binary())
            .args(["probe", "--timeout", timeout])
            .arg(&clips[0].1)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "--timeout {timeout}: {stderr}"
        );
        assert!(stderr.contains("invalid --timeout"), "{stderr}");
    }

    let reply = daemon.post_multipart(
        "/video-info/",
        &[],
        &[(
            "video",
            "notes.txt",
            b"this is a text file, not a video\n".as_slice(),
        )],
    );
    assert_eq!(
        reply.status,
        400,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        reply
            .detail()
            .starts_with("Could not retrieve video information"),
        "{}",
        reply.detail()
    );

    let left: Vec<_> = std::fs::read_dir(&daemon.uploads)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "uploads left behind: {left:?}");
}

// ---------------------------------------------------------------------------------
// E: a size change mid-stream
// ---------------------------------------------------------------------------------

/// A clip and its picture size.
type Segment = (PathBuf, (u32, u32));

/// Two MPEG-TS H.264 segments of different sizes, one after the other in one file (as
/// `cat a.ts b.ts` makes it); the second one's timestamps start again.
fn size_change_ts() -> (PathBuf, [Segment; 2]) {
    let ts_args: &[&str] = &[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "15",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "mpegts",
    ];
    let first = exclusive("accuracy_ts_320x240", || {
        generated_media("accuracy_ts_320x240_2s.ts", SMALL_SOURCE, 2.0, ts_args)
    });
    let second = exclusive("accuracy_ts_640x360", || {
        generated_media(
            "accuracy_ts_640x360_2s.ts",
            "testsrc2=size=640x360:rate=30",
            2.0,
            ts_args,
        )
    });
    let joined = common::media_cache().join("accuracy_ts_320x240_then_640x360.ts");
    exclusive("accuracy_ts_joined", || {
        if !joined.exists() {
            let mut bytes = std::fs::read(&first).unwrap();
            bytes.extend(std::fs::read(&second).unwrap());
            let temp = joined.with_extension(format!("{}.tmp", std::process::id()));
            std::fs::write(&temp, bytes).unwrap();
            std::fs::rename(&temp, &joined).unwrap();
        }
        joined.clone()
    });
    (joined, [(first, (320, 240)), (second, (640, 360))])
}

#[test]
fn size_change_mid_stream_gives_both_sizes() {
    let fps = 5.0;
    let (joined, segments) = size_change_ts();
    let (_out, frames) = extract(&joined, fps);
    let mut sizes = Vec::new();
    for frame in &frames {
        let bytes = std::fs::read(frame).unwrap();
        let fail = |e: String| -> ! { panic!("{}: {e}", frame.display()) };
        let size = jpeg_layout(&bytes).unwrap_or_else(|e| fail(e)).size;
        check_baseline_420(&bytes, size).unwrap_or_else(|e| fail(e));
        sizes.push(size);
    }
    let split = sizes.iter().take_while(|s| **s == segments[0].1).count();
    assert!(
        sizes[split..].iter().all(|s| *s == segments[1].1),
        "frames must be all of the first size, then all of the second: {sizes:?}"
    );
    // Each part is checked against its own segment decoded alone.
    for (part, (segment, size)) in [&frames[..split], &frames[split..]]
        .into_iter()
        .zip(&segments)
    {
        assert!(!part.is_empty(), "no frames of {size:?}: {sizes:?}");
        let expected = ffmpeg_fps_filter_count(segment, fps);
        assert!(
            part.len().abs_diff(expected) <= 1,
            "{size:?}: {} frames, ffmpeg gives {expected} for the segment alone",
            part.len()
        );
        let label = format!("size change, {size:?} part");
        for k in [1, part.len()] {
            let at = (k, (k - 1) as f64 / fps);
            let score = score_frame(&label, segment, at, &part[k - 1], *size, Reference::Source);
            println!(
                "{label}: {} frames (ffmpeg {expected}); {score}",
                part.len()
            );
        }
    }
    println!("size change: {} + {} frames", split, frames.len() - split);
}
