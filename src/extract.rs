//! One-shot extraction (the `extract` command and the benchmarks): the same pipeline
//! as a camera worker, run to the end of a file on the calling thread.

use std::path::Path;

use crate::media::{OpenOptions, VideoSource};
use crate::output::jpeg::JpegEncoder;
use crate::output::store::FrameStore;
use crate::pipeline::sampler::Sampler;
use crate::pipeline::{pump, PipelineError, PumpEnd};
use crate::source::Source;
use crate::stop::StopToken;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub frames: u64,
    pub end: PumpEnd,
}

/// Extracts frames of `source` at `fps` into `out` (cleared first). `on_progress` gets
/// the number of frames written and the share of the source done.
pub fn extract(
    source: &Source,
    fps: f64,
    out: &Path,
    jpeg_quality: u8,
    stop: &StopToken,
    mut on_progress: impl FnMut(u64, Option<f64>),
) -> Result<Summary, PipelineError> {
    let mut store = FrameStore::open(out, true)
        .map_err(|e| PipelineError::Sink(format!("cannot use {}: {e}", out.display())))?;
    let mut video = VideoSource::open(source, &OpenOptions::default(), stop)?;
    let mut encoder = JpegEncoder::new(jpeg_quality)?;
    let mut sampler = Sampler::new(fps);
    let mut frames = 0;
    let end = pump(&mut video, &mut sampler, &mut encoder, stop, |sample| {
        store
            .write(&sample.jpeg)
            .map_err(|e| PipelineError::Sink(format!("cannot write to {}: {e}", out.display())))?;
        frames += 1;
        on_progress(frames, sample.progress);
        Ok(())
    });
    store.remove_temporaries();
    Ok(Summary { frames, end: end? })
}
