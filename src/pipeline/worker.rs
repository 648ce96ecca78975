//! One long-lived worker per camera, on its own thread: an infallible `run` that loops
//! over a fallible `run_once`, sleeping with backoff between attempts on live sources.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::backoff::Backoff;
use super::sampler::Sampler;
use super::{pump, PipelineError, PumpEnd, Sample};
use crate::media::{OpenOptions, VideoSource};
use crate::output::jpeg::JpegEncoder;
use crate::output::store::FrameStore;
use crate::registry::{Camera, LatestFrame, Phase, Status};

/// Weight of the newest interval in the measured frame rate.
const MEASURED_FPS_SMOOTHING: f64 = 0.2;

/// How a worker runs, fixed when the camera starts.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub jpeg_quality: u8,
    pub open: OpenOptions,
    pub clear_on_start: bool,
    pub backoff: Backoff,
}

/// The camera thread's body. `previous` is the thread of this camera's last session,
/// which must be gone before this one touches the folder.
pub fn run(camera: Arc<Camera>, options: WorkerOptions, previous: Option<JoinHandle<()>>) {
    if let Some(previous) = previous {
        let _ = previous.join();
    }
    let id = camera.id.clone();
    log::info!("[{id}] starting: {}", camera.settings.source.redacted());
    let outcome = run_session(&camera, &options);
    let mut state = camera.state();
    state.phase = Phase::Finished;
    if camera.stop.is_stopped() {
        state.status = Status::Stopped;
        log::info!("[{id}] stopped after {} frames", state.frame_count);
        return;
    }
    match outcome {
        Ok(()) => {
            state.status = Status::Completed;
            state.progress = Some(1.0);
            log::info!("[{id}] completed: {} frames", state.frame_count);
        }
        Err(message) => {
            log::error!("[{id}] gave up: {message}");
            state.status = Status::Error;
            state.last_error = Some(message);
        }
    }
}

/// Runs until the source ends (`Ok`), fails for good (`Err`) or is stopped.
fn run_session(camera: &Camera, options: &WorkerOptions) -> Result<(), String> {
    let id = &camera.id;
    let folder = &camera.settings.output_folder;
    let mut store = FrameStore::open(folder, options.clear_on_start)
        .map_err(|e| format!("cannot use frame folder {}: {e}", folder.display()))?;
    let mut encoder = JpegEncoder::new(options.jpeg_quality).map_err(|e| e.to_string())?;
    let live = camera.settings.source.is_live();
    let mut backoff = options.backoff.clone();

    let result = loop {
        let attempt_started = Instant::now();
        let outcome = run_once(camera, &mut store, &mut encoder, options);
        if camera.stop.is_stopped() {
            break Ok(());
        }
        let error = match outcome {
            Ok(PumpEnd::Stopped) => break Ok(()),
            Ok(PumpEnd::EndOfStream) if !live => break Ok(()),
            Ok(PumpEnd::EndOfStream) => "end of stream".to_owned(),
            Err(e) if !live => break Err(e.to_string()),
            Err(e) => e.to_string(),
        };
        backoff.record_success(attempt_started.elapsed());
        let delay = backoff.next_delay(rand::random());
        log::warn!(
            "[{id}] {error}; reconnecting in {:.1} s",
            delay.as_secs_f64()
        );
        {
            let mut state = camera.state();
            state.last_error = Some(error);
            state.restart_count += 1;
            state.phase = Phase::Reconnecting;
        }
        if !camera.stop.sleep(delay) {
            break Ok(());
        }
    };
    store.remove_temporaries();
    result
}

/// One connection: open, then decode until the end, a stop or an error.
fn run_once(
    camera: &Camera,
    store: &mut FrameStore,
    encoder: &mut JpegEncoder,
    options: &WorkerOptions,
) -> Result<PumpEnd, PipelineError> {
    let source = &camera.settings.source;
    let open = OpenOptions {
        // Holding packets back for a group of pictures would delay live frames.
        sample_aware: !source.is_live(),
        ..options.open.clone()
    };
    let mut video = VideoSource::open(source, &open, &camera.stop)?;
    camera.state().phase = Phase::Streaming;
    let mut sampler = Sampler::new(camera.settings.fps);
    let mut last_written: Option<Instant> = None;
    pump(&mut video, &mut sampler, encoder, &camera.stop, |sample| {
        publish(camera, store, sample, &mut last_written);
        Ok(())
    })
}

/// Writes one frame and makes it the newest. A failed write (a full disk) is counted
/// and reported, and decoding goes on: the next frame may well succeed.
fn publish(camera: &Camera, store: &mut FrameStore, sample: Sample, last: &mut Option<Instant>) {
    let Sample {
        jpeg,
        pts,
        progress,
    } = sample;
    match store.write(&jpeg) {
        Ok(seq) => {
            camera.publish(LatestFrame {
                jpeg: Bytes::from(jpeg),
                seq,
                pts,
                captured_at: SystemTime::now(),
            });
            let now = Instant::now();
            let mut state = camera.state();
            state.last_error = None;
            state.progress = progress;
            if let Some(interval) = last.map(|l| now.duration_since(l)).filter(|d| !d.is_zero()) {
                let rate = 1.0 / interval.as_secs_f64();
                state.measured_fps = Some(match state.measured_fps {
                    Some(old) => old + MEASURED_FPS_SMOOTHING * (rate - old),
                    None => rate,
                });
            }
            *last = Some(now);
        }
        Err(e) => {
            log::warn!(
                "[{}] could not write frame {} to {}: {e}",
                camera.id,
                store.next_number(),
                store.dir().display()
            );
            let mut state = camera.state();
            state.frames_dropped += 1;
            state.last_error = Some(format!("could not write frame: {e}"));
        }
    }
}

impl WorkerOptions {
    pub fn new(
        jpeg_quality: u8,
        open_timeout: Duration,
        read_timeout: Duration,
        clear_on_start: bool,
    ) -> Self {
        WorkerOptions {
            jpeg_quality,
            open: OpenOptions {
                open_timeout,
                read_timeout,
                ..OpenOptions::default()
            },
            clear_on_start,
            backoff: Backoff::default(),
        }
    }
}
