//! One-shot extraction (the `extract` command and the benchmarks): the same pipeline
//! as a camera worker, run to the end of a file on the calling thread.

use std::path::Path;

use super::clock::SystemClock;
use super::pump::{pump, Pacing, PipelineError, PumpEnd, Timeline};
use crate::media::hw::{HwChoice, HwPolicy, HwStatus};
use crate::media::{OpenOptions, VideoSource};
use crate::output::jpeg::JpegEncoder;
use crate::output::store::FrameStore;
use crate::sampling::sampler::Sampler;
use crate::sampling::{Fps, Sampling};
use crate::shape::FrameShape;
use crate::source::Source;
use crate::stop::StopToken;

/// What to extract and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    pub fps: Fps,
    pub jpeg_quality: u8,
    pub sampling: Sampling,
    /// Decode as for a live source (see `OpenOptions::low_latency`).
    pub low_latency: bool,
    /// Decoder threads; 0 lets libav choose.
    pub threads: usize,
    /// Hardware to decode with (`auto`: the default order, on the default devices).
    pub hwaccel: HwChoice,
    /// The size and region of the frames written (default: as decoded).
    pub shape: FrameShape,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub frames: u64,
    pub end: PumpEnd,
    /// Packets left undecoded because no sample needed them.
    pub packets_skipped: u64,
    /// The backend that decoded last and why not the one asked for.
    pub hwaccel: HwStatus,
}

/// Extracts frames of `source` into `out` (cleared first). `on_progress` gets the
/// number of frames written and the share of the source done.
pub fn extract(
    source: &Source,
    job: Job,
    out: &Path,
    stop: &StopToken,
    mut on_progress: impl FnMut(u64, Option<f64>),
) -> Result<Summary, PipelineError> {
    let store = FrameStore::open(out, true)
        .map_err(|e| PipelineError::Sink(format!("cannot use {}: {e}", out.display())))?;
    let options = OpenOptions {
        sampling: job.sampling,
        low_latency: job.low_latency,
        threads: job.threads,
        hwaccel: HwPolicy::default().request(job.hwaccel),
        shape: job.shape,
        ..OpenOptions::default()
    };
    let mut video = VideoSource::open(source, &options, stop)?;
    let mut encoder = JpegEncoder::new(job.jpeg_quality)?;
    let mut sampler = Sampler::new(job.fps);
    let mut frames = 0;
    let no_pacing: Option<Pacing<'_, SystemClock>> = None;
    let end = pump(
        &mut video,
        &mut sampler,
        &Timeline::default(),
        stop,
        no_pacing,
        None,
        |sample| {
            let jpeg = encoder.encode(&sample.picture)?;
            store.write(&jpeg).map_err(|e| {
                PipelineError::Sink(format!("cannot write to {}: {e}", out.display()))
            })?;
            frames += 1;
            on_progress(frames, sample.progress);
            Ok(())
        },
    );
    store.remove_temporaries();
    Ok(Summary {
        frames,
        end: end?,
        packets_skipped: video.skipped_unneeded(),
        hwaccel: video.hwaccel(),
    })
}
