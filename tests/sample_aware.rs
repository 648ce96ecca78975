//! Sample-aware decoding leaves frames undecoded, never a sample: for every kind of
//! group-of-pictures structure, the frames written are byte for byte those of full
//! decoding.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use common::{frame_files, generated_media};

const SOURCE: &str = "testsrc2=size=320x240:rate=30";

fn x264(extra: &'static [&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
    ];
    args.extend_from_slice(extra);
    args
}

/// Clips with the structures that matter: GOP lengths, B-frames, irregular and
/// open GOPs, and another codec.
fn clips() -> Vec<(&'static str, PathBuf)> {
    vec![
        (
            "gop 1 s, no B-frames",
            generated_media(
                "sa_gop1.mp4",
                SOURCE,
                12.0,
                &x264(&["-g", "30", "-bf", "0"]),
            ),
        ),
        (
            "gop 2 s with B-frames",
            generated_media(
                "sa_gop2_b.mp4",
                SOURCE,
                12.0,
                &x264(&["-g", "60", "-bf", "3"]),
            ),
        ),
        (
            "irregular keyframes",
            generated_media(
                "sa_irregular.mp4",
                SOURCE,
                12.0,
                &x264(&[
                    "-g",
                    "300",
                    "-force_key_frames",
                    "0,0.7,2.3,2.4,5.1,9.9,10.0",
                ]),
            ),
        ),
        (
            "open gop",
            generated_media(
                "sa_open_gop.mp4",
                SOURCE,
                12.0,
                &x264(&["-g", "45", "-bf", "3", "-x264-params", "open-gop=1"]),
            ),
        ),
        (
            "mpeg-ts, gop 1.5 s",
            generated_media("sa_gop15.ts", SOURCE, 12.0, &x264(&["-g", "45"])),
        ),
        (
            "all intra (mjpeg)",
            generated_media(
                "sa_mjpeg.avi",
                SOURCE,
                6.0,
                &["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"],
            ),
        ),
        (
            "hevc with B-frames",
            generated_media(
                "sa_hevc.mp4",
                SOURCE,
                8.0,
                &[
                    "-c:v",
                    "libx265",
                    "-preset",
                    "ultrafast",
                    "-x265-params",
                    "keyint=40:bframes=3:log-level=error",
                    "-pix_fmt",
                    "yuv420p",
                ],
            ),
        ),
    ]
}

/// Runs `extract` and returns the written frames' bytes and the packets it skipped.
fn extract(input: &Path, fps: f64, out: &Path, decode_all: bool) -> (Vec<Vec<u8>>, u64) {
    let sampling = if decode_all { "all" } else { "exact" };
    run_extract(input, fps, out, &["--sampling", sampling])
}

fn extract_with(input: &Path, fps: f64, out: &Path, sampling: &str) -> (Vec<Vec<u8>>, u64) {
    run_extract(input, fps, out, &["--sampling", sampling])
}

fn run_extract(input: &Path, fps: f64, out: &Path, flags: &[&str]) -> (Vec<Vec<u8>>, u64) {
    let mut command = Command::new(common::binary());
    command
        .arg("extract")
        .arg(input)
        .args(["--fps", &fps.to_string()])
        .args(flags)
        .arg("--out")
        .arg(out);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "extract failed: {stderr}");
    let skipped = stderr
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no skip count in: {stderr}"));
    let frames = frame_files(out)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    (frames, skipped)
}

/// Compares the three ways of extracting `clip` at each rate; returns the packets that
/// sample-aware decoding skipped.
fn compare_with_full_decoding(name: &str, clip: &Path, work: &Path) -> u64 {
    let mut skipped_total = 0;
    for fps in [0.3, 1.0, 2.5, 7.0, 30.0] {
        let (all, skipped_all) = extract(clip, fps, &work.join("all"), true);
        let (aware, skipped) = extract(clip, fps, &work.join("aware"), false);
        // As a live source decodes: each sample leaves the decoder at once.
        let (prompt, _) = run_extract(clip, fps, &work.join("prompt"), &["--low-latency"]);
        assert_eq!(
            skipped_all, 0,
            "{name} fps {fps}: --decode-all skipped packets"
        );
        assert!(!all.is_empty(), "{name} fps {fps}: no frames");
        assert_eq!(
            aware.len(),
            all.len(),
            "{name} fps {fps}: {} frames sample-aware, {} with full decoding",
            aware.len(),
            all.len()
        );
        for (k, (a, b)) in aware.iter().zip(&all).enumerate() {
            assert!(a == b, "{name} fps {fps}: frame {} differs", k + 1);
        }
        assert!(
            prompt == all,
            "{name} fps {fps}: --low-latency frames differ from full decoding"
        );
        skipped_total += skipped;
    }
    skipped_total
}

#[test]
fn sample_aware_output_equals_full_decoding() {
    let work = tempfile::tempdir().unwrap();
    // Each extraction is one process on about one core: the clips side by side.
    let total_skipped: u64 = thread::scope(|scope| {
        let comparisons: Vec<_> = clips()
            .into_iter()
            .enumerate()
            .map(|(index, (name, clip))| {
                let work = work.path().join(index.to_string());
                scope.spawn(move || compare_with_full_decoding(name, &clip, &work))
            })
            .collect();
        comparisons
            .into_iter()
            .map(|comparison| {
                comparison
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .sum()
    });
    // The point of it all: at low rates most packets are never decoded.
    assert!(total_skipped > 1000, "only {total_skipped} packets skipped");
}

#[test]
fn low_rates_skip_most_of_each_group() {
    let (_, clip) = &clips()[1];
    let work = tempfile::tempdir().unwrap();
    let (frames, skipped) = extract(clip, 0.5, work.path(), false);
    assert_eq!(frames.len(), 6);
    // 360 packets, 6 samples each at the start of a 2 s group: most are not needed.
    assert!(skipped > 250, "only {skipped} of 360 packets skipped");
}

#[test]
fn keyframes_mode_takes_due_keyframes_only() {
    let (_, clip) = &clips()[2];
    let work = tempfile::tempdir().unwrap();
    let (every, _) = extract_with(clip, 30.0, &work.path().join("every"), "all");
    let (keys, skipped) = extract_with(clip, 1.0, &work.path().join("keys"), "keyframes");
    // Keyframes at 0, 0.7, 2.3, 2.4, 5.1, 9.9 and 10.0 s; at most one a second, each
    // the first at or after its due time: 0, 2.3, 5.1, 9.9, 10.0.
    assert_eq!(keys.len(), 5, "keyframes taken");
    for (k, key) in keys.iter().enumerate() {
        assert!(
            every.contains(key),
            "keyframe sample {} is not a frame of the source",
            k + 1
        );
    }
    assert!(skipped > 350, "only {skipped} packets skipped");
}
