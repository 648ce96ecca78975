//! Frames shaped for the model that reads them: `width`, `height`, `max_side`, `crop`
//! and `quality` of `decode/` (and `extract`'s flags), against the real binary on
//! clips made with the ffmpeg CLI: the asked sizes with the aspect kept and even sides
//! for 1080p, 4K and odd-sized sources; a crop that is exactly its region (PSNR
//! against ffmpeg's `crop,scale` of the same frame); a size change mid-stream; bad
//! values refused with their field; and callers that ask for none of it getting the
//! same frames as ever.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::http_files::FileServer;
use common::rtsp::{frame_count, restart_count, snapshot_pictures, start_camera_with};
use common::{binary, frame_files, generated_media, h264_1080p, h264_small, place, Daemon};
use serde_json::{json, Value};

const DONE: Duration = Duration::from_secs(60);

fn finished(status: &Value) -> bool {
    status["status"] != "running"
}

/// Runs a camera on `clip` with `fields` to its end; its status.
fn run_camera(daemon: &Daemon, camera: &str, clip: &Path, fields: &[(&str, &str)]) -> Value {
    start_camera_with(daemon, camera, clip.to_str().unwrap(), fields);
    let status = daemon.wait_status(camera, DONE, finished);
    assert_eq!(status["status"], "completed", "{camera}: {status}");
    status
}

fn dimensions(path: &Path) -> (u32, u32) {
    image::ImageReader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map(|reader| reader.into_dimensions().unwrap())
        .unwrap()
}

/// The size of every frame a camera wrote (at least one).
fn frame_sizes(daemon: &Daemon, camera: &str) -> Vec<(u32, u32)> {
    let frames = frame_files(&daemon.camera_dir(camera));
    assert!(!frames.is_empty(), "{camera} wrote no frame");
    frames.iter().map(|path| dimensions(path)).collect()
}

/// Two frames of 4K (decoding more would only cost time).
fn h264_4k() -> PathBuf {
    generated_media(
        "h264_3840x2160_2frames.mp4",
        "testsrc2=size=3840x2160:rate=25",
        0.08,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

/// An odd-sized full-range 4:2:0 source (`testsrc2` rounds sizes to even, `testsrc`
/// does not; H.264 cannot carry odd 4:2:0 sizes, MJPEG can).
fn mjpeg_odd() -> PathBuf {
    generated_media(
        "mjpeg_641x361_1s.avi",
        "testsrc=size=641x361:rate=10",
        1.0,
        &["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"],
    )
}

/// 1 s at 320x240, then 1 s at 640x360, in one MPEG-TS stream whose timestamps go on.
fn size_change() -> PathBuf {
    let segment = |name: &str, size: &str, offset: &str| {
        generated_media(
            name,
            &format!("testsrc2=size={size}:rate=10"),
            1.0,
            &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "10",
                "-pix_fmt",
                "yuv420p",
                "-output_ts_offset",
                offset,
            ],
        )
    };
    let first = segment("h264_320x240_1s_10fps.ts", "320x240", "0");
    let second = segment("h264_640x360_1s_10fps_from_1s.ts", "640x360", "1");
    let joined = common::media_cache().join("h264_320x240_then_640x360.ts");
    if !joined.exists() {
        let bytes = [
            std::fs::read(first).unwrap(),
            std::fs::read(second).unwrap(),
        ]
        .concat();
        let temp = joined.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&temp, bytes).unwrap();
        std::fs::rename(&temp, &joined).unwrap();
    }
    joined
}

/// A camera, its clip, its fields and the frame size they must give.
type Case<'a> = (&'a str, &'a Path, &'a [(&'a str, &'a str)], (u32, u32));

#[test]
fn frames_have_the_asked_size_with_the_aspect_kept_for_1080p_4k_and_odd_sources() {
    let daemon = Daemon::start();
    let hd = place(&daemon, &h264_1080p(1));
    let uhd = place(&daemon, &h264_4k());
    let odd = place(&daemon, &mjpeg_odd());
    let cases: [Case; 7] = [
        ("hd_width", &hd, &[("width", "640")], (640, 360)),
        ("hd_height", &hd, &[("height", "480")], (854, 480)),
        (
            "hd_both",
            &hd,
            &[("width", "320"), ("height", "320")],
            (320, 320),
        ),
        ("hd_max_side", &hd, &[("max_side", "480")], (480, 270)),
        ("uhd_height", &uhd, &[("height", "360")], (640, 360)),
        ("odd_width", &odd, &[("width", "320")], (320, 180)),
        // Never enlarged: a frame within max_side stays as it is, odd sides and all.
        ("odd_max_side", &odd, &[("max_side", "1000")], (641, 361)),
    ];
    for (camera, clip, fields, _) in &cases {
        let mut fields = fields.to_vec();
        fields.push(("fps", "2"));
        start_camera_with(&daemon, camera, clip.to_str().unwrap(), &fields);
    }
    for (camera, _, fields, (width, height)) in cases {
        let status = daemon.wait_status(camera, DONE, finished);
        assert_eq!(status["status"], "completed", "{camera}: {status}");
        let sizes = frame_sizes(&daemon, camera);
        assert!(
            sizes.iter().all(|size| *size == (width, height)),
            "{camera}: {sizes:?}"
        );
        assert_eq!(sizes.len() as u64, frame_count(&status), "{camera}");
        assert_eq!(
            (&status["output_width"], &status["output_height"]),
            (&json!(width), &json!(height)),
            "{camera}: {status}"
        );
        for (field, value) in fields {
            assert_eq!(
                status[field],
                json!(value.parse::<u32>().unwrap()),
                "{status}"
            );
        }
    }
}

/// PSNR in dB of two JPEG files of one size, over their RGB samples.
fn psnr(a: &Path, b: &Path) -> f64 {
    let (a, b) = (
        image::open(a).unwrap().to_rgb8(),
        image::open(b).unwrap().to_rgb8(),
    );
    assert_eq!(a.dimensions(), b.dimensions());
    common::psnr(a.as_raw(), b.as_raw())
}

/// ffmpeg's picture of the clip's first frame through `filter`, as a JPEG.
fn ffmpeg_first_frame(clip: &Path, filter: &str, out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(clip)
        .args(["-vf", filter, "-frames:v", "1", "-q:v", "1"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg {filter}");
}

#[test]
fn a_crop_yields_exactly_that_region() {
    let daemon = Daemon::start();
    let hd = place(&daemon, &h264_1080p(1));
    let references = tempfile::tempdir().unwrap();
    // Scaled after the crop, and at its own size.
    let cases = [
        (
            "crop_scaled",
            "600,300,640,480",
            Some("320"),
            "crop=640:480:600:300,scale=320:-2",
        ),
        (
            "crop_only",
            "1000,500,320,240",
            None,
            "crop=320:240:1000:500",
        ),
    ];
    for (camera, crop, width, filter) in cases {
        let mut fields = vec![("crop", crop), ("quality", "95"), ("fps", "1")];
        fields.extend(width.map(|w| ("width", w)));
        let status = run_camera(&daemon, camera, &hd, &fields);
        assert_eq!(status["crop"], crop, "{status}");
        let ours = &frame_files(&daemon.camera_dir(camera))[0];
        let theirs = references.path().join(format!("{camera}.jpg"));
        ffmpeg_first_frame(&hd, filter, &theirs);
        let db = psnr(ours, &theirs);
        assert!(db >= 35.0, "{camera}: {db:.1} dB against ffmpeg's {filter}");
        // The check tells regions apart: the same crop 8 pixels to the right is far off.
        let shifted = references.path().join(format!("{camera}_shifted.jpg"));
        let moved = filter
            .replace(":600:300", ":608:300")
            .replace(":1000:500", ":1008:500");
        ffmpeg_first_frame(&hd, &moved, &shifted);
        let off = psnr(ours, &shifted);
        assert!(off < 30.0, "{camera}: {off:.1} dB against {moved}");
    }
}

#[test]
fn a_size_change_mid_stream_keeps_the_asked_size() {
    let daemon = Daemon::start();
    let clip = place(&daemon, &size_change());
    run_camera(&daemon, "follows", &clip, &[("width", "160")]);
    run_camera(
        &daemon,
        "fixed",
        &clip,
        &[("width", "160"), ("height", "160")],
    );
    let follows = frame_sizes(&daemon, "follows");
    // The height follows each part's aspect ratio: 4:3, then 16:9.
    let before = follows.iter().take_while(|s| **s == (160, 120)).count();
    assert!(before >= 3, "{follows:?}");
    assert!(follows[before..].len() >= 3, "{follows:?}");
    assert!(
        follows[before..].iter().all(|s| *s == (160, 90)),
        "{follows:?}"
    );
    let status = daemon.status("follows");
    assert_eq!(
        (&status["output_width"], &status["output_height"]),
        (&json!(160), &json!(90))
    );
    let fixed = frame_sizes(&daemon, "fixed");
    assert_eq!(fixed.len(), follows.len());
    assert!(fixed.iter().all(|s| *s == (160, 160)), "{fixed:?}");
}

#[test]
fn bad_values_of_every_field_are_400_naming_the_field() {
    let daemon = Daemon::start();
    let clip = place(&daemon, &h264_small(1));
    let url = clip.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("width", &["641", "0", "14", "8194", "-2", "640.5", "wide"]),
        ("height", &["361", "8", "9000", "tall"]),
        ("max_side", &["15", "1001", "100000", "big"]),
        ("quality", &["0", "101", "-5", "50.5", "high"]),
        (
            "crop",
            &[
                "1,0,64,64",
                "0,0,65,64",
                "0,0,8,8",
                "0,0,64",
                "0,0,64,64,2",
                "a,b,c,d",
            ],
        ),
    ];
    for (field, values) in cases {
        for value in *values {
            let fields = [("camera_id", "bad"), ("url", url), (field, value)];
            for reply in daemon.post_all_encodings("/decode/", &fields) {
                assert_eq!(reply.status, 400, "{field}={value}: {}", reply.detail());
                assert!(
                    reply.detail().contains(field),
                    "{field}={value}: {}",
                    reply.detail()
                );
            }
        }
    }
    let both = daemon.post_form(
        "/decode/",
        &[
            ("camera_id", "bad"),
            ("url", url),
            ("width", "640"),
            ("max_side", "640"),
        ],
    );
    assert_eq!(both.status, 400);
    assert!(
        both.detail().contains("max_side cannot be combined"),
        "{}",
        both.detail()
    );
    // A local file is probed: a region outside it is refused with the request.
    let outside = daemon.post_form(
        "/decode/",
        &[
            ("camera_id", "bad"),
            ("url", url),
            ("crop", "200,0,160,120"),
        ],
    );
    assert_eq!(outside.status, 400);
    assert_eq!(
        outside.detail(),
        "crop 200,0,160,120 does not fit the 320x240 source (x + w must be <= 320, y + h <= 240)"
    );
    assert_eq!(daemon.status("bad")["status"], "not_started");
    // JSON numbers are numbers.
    daemon
        .post_json(
            "/decode/",
            json!({"camera_id": "json", "url": url, "width": 160, "quality": 50}),
        )
        .assert_ok();
    let status = daemon.wait_status("json", DONE, finished);
    assert_eq!(
        (&status["width"], &status["quality"]),
        (&json!(160), &json!(50))
    );
}

#[test]
fn a_crop_outside_a_url_source_ends_the_camera_in_error() {
    let served = tempfile::tempdir().unwrap();
    std::fs::copy(h264_small(1), served.path().join("clip.mp4")).unwrap();
    let server = FileServer::start(served.path());
    let daemon = Daemon::start();
    // Read as live, it would be reconnected after any other failure.
    for (camera, live) in [("finite", "false"), ("live", "true")] {
        start_camera_with(
            &daemon,
            camera,
            &server.url("clip.mp4"),
            &[("crop", "200,0,160,120"), ("live", live)],
        );
    }
    for camera in ["finite", "live"] {
        let status = daemon.wait_status(camera, DONE, finished);
        assert_eq!(status["status"], "error", "{camera}: {status}");
        assert_eq!(restart_count(&status), 0, "{camera}: {status}");
        assert_eq!(frame_count(&status), 0, "{camera}: {status}");
        let error = status["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("crop 200,0,160,120 does not fit the 320x240 source"),
            "{camera}: {error}"
        );
    }
}

#[test]
fn callers_that_ask_for_nothing_new_get_the_same_frames() {
    let daemon = Daemon::start();
    let hd = place(&daemon, &h264_1080p(1));
    let plain = run_camera(&daemon, "plain", &hd, &[("fps", "2")]);
    for key in ["width", "height", "max_side", "crop", "quality"] {
        assert!(plain.get(key).is_none(), "{key} in {plain}");
    }
    assert_eq!(
        (&plain["output_width"], &plain["output_height"]),
        (&json!(1920), &json!(1080))
    );
    // Values that change nothing: the default quality, a longest side the frame fits.
    run_camera(
        &daemon,
        "no_change",
        &hd,
        &[("fps", "2"), ("quality", "90"), ("max_side", "1920")],
    );
    let reference = snapshot_pictures(&daemon.camera_dir("plain"));
    assert_eq!(reference.len(), 2);
    assert!(snapshot_pictures(&daemon.camera_dir("no_change")) == reference);
    // Another quality is another picture, and a smaller file at a lower one.
    run_camera(&daemon, "low", &hd, &[("fps", "2"), ("quality", "30")]);
    let low = snapshot_pictures(&daemon.camera_dir("low"));
    for (number, picture) in &low {
        assert!(
            picture.len() * 2 < reference[number].len(),
            "frame {number}"
        );
    }
}

#[test]
fn extract_takes_the_same_values_as_flags() {
    let out = tempfile::tempdir().unwrap();
    let clip = h264_small(1);
    let run = |args: &[&str]| {
        Command::new(binary())
            .arg("extract")
            .arg(&clip)
            .args(["--fps", "2", "--out"])
            .arg(out.path())
            .args(args)
            .output()
            .unwrap()
    };
    let done = run(&[
        "--crop",
        "0,0,160,120",
        "--max-side",
        "64",
        "--quality",
        "80",
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let frames = frame_files(out.path());
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| dimensions(f) == (64, 48)));
    for (args, word) in [
        (&["--width", "641"][..], "invalid width \"641\""),
        (&["--crop", "0,0,64"][..], "invalid crop"),
        (
            &["--height", "64", "--max-side", "64"][..],
            "max_side cannot be combined",
        ),
    ] {
        let refused = run(args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(word), "{args:?}: {stderr}");
    }
}
