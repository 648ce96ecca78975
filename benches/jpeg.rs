//! JPEG encoding from 4:2:0 planes at camera sizes (alone, and with the metadata
//! every written frame gets), the conversion of decoded frames to those planes per
//! pixel format, and shaping them to a model's size (scaling, cropping) against the
//! copy every queued frame costs, on deterministic synthetic frames.

use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use ffmpeg_next::util::color::Range;
use video_pipeline::media::{Converter, Shaper};
use video_pipeline::output::exif::{self, FrameMetadata};
use video_pipeline::output::jpeg::JpegEncoder;
use video_pipeline::picture::Yuv420;
use video_pipeline::shape::{Crop, FrameShape};

/// A smooth gradient with some texture, so the encoder has real work to do.
fn planes(width: usize, height: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let y = (0..width * height)
        .map(|i| ((i % width) * 255 / width + (i / width) % 7 * 3) as u8)
        .collect();
    let u = (0..cw * ch).map(|i| (i / cw * 255 / ch) as u8).collect();
    let v = (0..cw * ch)
        .map(|i| (255 - (i % cw) * 255 / cw) as u8)
        .collect();
    (y, u, v)
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("jpeg_encode_yuv420");
    for (width, height) in [(640, 360), (1280, 720), (1920, 1080), (641, 361)] {
        let (y, u, v) = planes(width, height);
        let picture = Yuv420 {
            width,
            height,
            y: &y,
            u: &u,
            v: &v,
            y_stride: width,
            u_stride: width.div_ceil(2),
            v_stride: width.div_ceil(2),
        };
        let mut encoder = JpegEncoder::new(90).expect("encoder");
        group.throughput(Throughput::Elements((width * height) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{width}x{height}")),
            &picture,
            |b, picture| b.iter(|| encoder.encode(picture).expect("encode")),
        );
        // As the encoder threads do it: encoded, then annotated (Exif and comment).
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{width}x{height}+metadata")),
            &picture,
            |b, picture| {
                b.iter(|| {
                    let meta = FrameMetadata {
                        camera: "bench",
                        seq: 1234,
                        pts: 56.789,
                        captured_at: SystemTime::now(),
                    };
                    exif::with_metadata(encoder.encode(picture).expect("encode"), &meta)
                })
            },
        );
    }
    group.finish();
}

/// A decoded 1080p frame of `format`, deterministic, in `range`.
fn decoded_1080p(format: Pixel, range: Range) -> frame::Video {
    let mut decoded = frame::Video::new(format, 1920, 1080);
    decoded.set_color_range(range);
    for plane in 0..decoded.planes() {
        let stride = decoded.stride(plane);
        for (i, byte) in decoded.data_mut(plane).iter_mut().enumerate() {
            *byte = (16 + (i % stride + i / stride) % 220) as u8;
        }
    }
    decoded
}

/// What each decoder hands over, at 1080p: limited-range 4:2:0 (software H.264, the
/// common case: stretched to full range), full-range 4:2:0 (used as it is), NV12 (GPU
/// decoders: split into planes) and RGB24 (through swscale).
fn convert(c: &mut Criterion) {
    video_pipeline::media::init();
    let mut group = c.benchmark_group("convert_to_yuv420_1920x1080");
    let cases = [
        ("yuv420p_limited", Pixel::YUV420P, Range::MPEG),
        ("yuv420p_full", Pixel::YUV420P, Range::JPEG),
        ("nv12_limited", Pixel::NV12, Range::MPEG),
        ("rgb24", Pixel::RGB24, Range::JPEG),
    ];
    for (name, format, range) in cases {
        let decoded = decoded_1080p(format, range);
        let mut converter = Converter::default();
        group.throughput(Throughput::Elements(1920 * 1080));
        group.bench_function(name, |b| {
            b.iter(|| converter.convert(&decoded).expect("convert").width)
        });
    }
    group.finish();
}

/// What a camera thread does with a sampled 1080p frame before queueing it: convert
/// it (full size, as today's default) or shape it to 640 wide (from what software and
/// GPU decoders hand over; a crop of a quarter of the frame), then copy it for the
/// encoder queue. Both halves are here so that where shaping runs can be weighed: the
/// copy of a full frame is what shaping on the encoder threads would still cost the
/// camera thread.
fn shape(c: &mut Criterion) {
    video_pipeline::media::init();
    let mut group = c.benchmark_group("shape_1920x1080");
    let to_640 = FrameShape {
        width: Some(640),
        ..FrameShape::default()
    };
    let quarter = FrameShape {
        crop: Some(Crop {
            x: 480,
            y: 270,
            width: 960,
            height: 540,
        }),
        ..to_640
    };
    let cases = [
        (
            "full_size_yuv420p_limited",
            FrameShape::default(),
            Pixel::YUV420P,
            Range::MPEG,
        ),
        (
            "to_640x360_yuv420p_limited",
            to_640,
            Pixel::YUV420P,
            Range::MPEG,
        ),
        (
            "to_640x360_yuv420p_full",
            to_640,
            Pixel::YUVJ420P,
            Range::JPEG,
        ),
        ("to_640x360_nv12_limited", to_640, Pixel::NV12, Range::MPEG),
        (
            "crop_960x540_to_640x360_yuv420p_limited",
            quarter,
            Pixel::YUV420P,
            Range::MPEG,
        ),
    ];
    for (name, shape, format, range) in cases {
        let decoded = decoded_1080p(format, range);
        let mut shaper = Shaper::new(shape);
        group.bench_function(name, |b| {
            b.iter(|| shaper.shape(&decoded).expect("shape").width)
        });
        group.bench_function(format!("{name}+queue_copy"), |b| {
            b.iter(|| shaper.shape(&decoded).expect("shape").to_owned_picture())
        });
    }
    group.finish();
}

/// The annotation alone, on an encoded 1080p frame: the copy it starts from (what the
/// encoder hands over is moved, not copied, in the daemon) against copy + annotation.
fn metadata(c: &mut Criterion) {
    let (y, u, v) = planes(1920, 1080);
    let picture = Yuv420 {
        width: 1920,
        height: 1080,
        y: &y,
        u: &u,
        v: &v,
        y_stride: 1920,
        u_stride: 960,
        v_stride: 960,
    };
    let jpeg = JpegEncoder::new(90)
        .expect("encoder")
        .encode(&picture)
        .expect("encode");
    let meta = FrameMetadata {
        camera: "bench",
        seq: 1234,
        pts: 56.789,
        captured_at: SystemTime::now(),
    };
    let mut group = c.benchmark_group("frame_metadata_1920x1080");
    group.bench_function("copy", |b| b.iter(|| jpeg.clone()));
    group.bench_function("copy+metadata", |b| {
        b.iter(|| exif::with_metadata(jpeg.clone(), &meta))
    });
    group.finish();
}

criterion_group!(benches, encode, convert, shape, metadata);
criterion_main!(benches);
