//! The sampler's per-frame decision, over an hour of 30 fps timestamps.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use video_pipeline::sampling::sampler::Sampler;
use video_pipeline::sampling::Fps;

fn offer(c: &mut Criterion) {
    let timestamps: Vec<f64> = (0..108_000).map(|i| i as f64 / 30.0).collect();
    let mut group = c.benchmark_group("sampler");
    group.throughput(Throughput::Elements(timestamps.len() as u64));
    for fps in [1.0, 5.0, 30.0] {
        group.bench_function(format!("one_hour_30fps_at_{fps}"), |b| {
            b.iter(|| {
                let mut sampler = Sampler::new(Fps::new(fps).unwrap());
                timestamps.iter().filter(|&&t| sampler.offer(t)).count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, offer);
criterion_main!(benches);
