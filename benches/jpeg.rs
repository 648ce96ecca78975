//! JPEG encoding from 4:2:0 planes at camera sizes, on deterministic synthetic frames.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use video_pipeline::output::jpeg::JpegEncoder;
use video_pipeline::picture::Yuv420;

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
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
