//! One long-lived worker per camera, on its own thread: an infallible `run` that loops
//! over a fallible `run_once`, sleeping with backoff between attempts on live sources.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::backoff::Backoff;
use super::pacer::Pacer;
use super::sampler::Sampler;
use super::{pump, Pacing, PipelineError, PumpEnd, Sample};
use crate::media::{DropCounts, FailureKind, OpenOptions, VideoSource};
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
    pub stall_timeout: Duration,
    pub clear_on_start: bool,
    pub backoff: Backoff,
    /// Consecutive failed attempts after which a live source gives up; 0: never.
    pub max_restarts: u32,
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
        Err(failure) => {
            log::error!("[{id}] gave up: {}", failure.message);
            state.status = Status::Error;
            state.last_error = Some(failure.message);
            state.last_error_kind = Some(failure.kind.as_str());
        }
    }
}

/// A failure in words, with its kind.
struct Failure {
    message: String,
    kind: FailureKind,
}

impl From<PipelineError> for Failure {
    fn from(error: PipelineError) -> Failure {
        let kind = match &error {
            PipelineError::Media(e) => e.kind(),
            _ => FailureKind::Other,
        };
        Failure {
            message: error.to_string(),
            kind,
        }
    }
}

/// Runs until the source ends (`Ok`), fails for good (`Err`) or is stopped.
fn run_session(camera: &Camera, options: &WorkerOptions) -> Result<(), Failure> {
    let id = &camera.id;
    let folder = &camera.settings.output_folder;
    let other = |message: String| Failure {
        message,
        kind: FailureKind::Other,
    };
    let mut store = FrameStore::open(folder, options.clear_on_start)
        .map_err(|e| other(format!("cannot use frame folder {}: {e}", folder.display())))?;
    let mut encoder = JpegEncoder::new(options.jpeg_quality).map_err(|e| other(e.to_string()))?;
    let endless = camera.settings.endless();
    let mut backoff = options.backoff.clone();
    let mut consecutive_failures = 0;

    let result = loop {
        let attempt_started = Instant::now();
        let frames_before = camera.state().frame_count;
        let outcome = run_once(camera, &mut store, &mut encoder, options);
        if camera.stop.is_stopped() {
            break Ok(());
        }
        let failure = match outcome {
            Ok(PumpEnd::Stopped) => break Ok(()),
            Ok(PumpEnd::EndOfStream) if !endless => break Ok(()),
            Ok(PumpEnd::EndOfStream) => Failure {
                message: format!("{}: end of stream", camera.settings.source.redacted()),
                kind: FailureKind::EndOfStream,
            },
            Err(e) if !endless => break Err(e.into()),
            Err(e) => e.into(),
        };
        if camera.state().frame_count > frames_before {
            consecutive_failures = 0;
        }
        consecutive_failures += 1;
        if options.max_restarts > 0 && consecutive_failures > options.max_restarts {
            break Err(Failure {
                message: format!(
                    "{} (gave up after {} consecutive failures, MAX_RESTARTS={})",
                    failure.message, consecutive_failures, options.max_restarts
                ),
                kind: failure.kind,
            });
        }
        backoff.record_success(attempt_started.elapsed());
        let delay = if failure.kind.needs_slow_retry() {
            backoff.cap()
        } else {
            backoff.next_delay(rand::random())
        };
        log::warn!(
            "[{id}] {}; reconnecting in {:.1} s",
            failure.message,
            delay.as_secs_f64()
        );
        {
            let mut state = camera.state();
            state.last_error = Some(failure.message);
            state.last_error_kind = Some(failure.kind.as_str());
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

/// One connection: open, then decode until the end, a stop or an error. A looped file
/// starts again at its end on the same connection.
fn run_once(
    camera: &Camera,
    store: &mut FrameStore,
    encoder: &mut JpegEncoder,
    options: &WorkerOptions,
) -> Result<PumpEnd, PipelineError> {
    let settings = &camera.settings;
    let live = settings.source.is_live();
    let open = OpenOptions {
        sampling: settings.sampling,
        stall_timeout: live.then_some(options.stall_timeout),
        rtsp_transport: settings.rtsp_transport,
        ..options.open.clone()
    };
    let mut video = VideoSource::open(&settings.source, &open, &camera.stop)?;
    camera.state().phase = Phase::Streaming;
    let drops_before = camera.state().dropped_corrupt;
    let result = stream(camera, &mut video, store, encoder, drops_before);
    // Also when the connection failed: damage is often why.
    camera.state().dropped_corrupt = drops_before + video.drops().corrupt;
    result
}

/// Decodes an open source until it ends, fails or is stopped.
fn stream(
    camera: &Camera,
    video: &mut VideoSource,
    store: &mut FrameStore,
    encoder: &mut JpegEncoder,
    drops_before: u64,
) -> Result<PumpEnd, PipelineError> {
    let settings = &camera.settings;
    let mut sampler = Sampler::new(settings.fps);
    let mut pacer = Pacer::new();
    let started = Instant::now();
    let mut last_written: Option<Instant> = None;
    loop {
        let pacing = settings.realtime.then_some(Pacing {
            pacer: &mut pacer,
            started,
        });
        let end = pump(
            video,
            &mut sampler,
            encoder,
            &camera.stop,
            pacing,
            |sample| {
                publish(camera, store, sample, drops_before, &mut last_written);
                Ok(())
            },
        )?;
        if end == PumpEnd::EndOfStream && settings.looped {
            video.rewind()?;
            continue;
        }
        return Ok(end);
    }
}

/// Writes one frame and makes it the newest. A failed write (a full disk) is counted
/// and reported, and decoding goes on: the next frame may well succeed.
fn publish(
    camera: &Camera,
    store: &mut FrameStore,
    sample: Sample,
    drops_before: u64,
    last: &mut Option<Instant>,
) {
    let Sample {
        jpeg,
        pts,
        progress,
        drops,
        lag_events,
    } = sample;
    let DropCounts { corrupt, .. } = drops;
    camera.state().dropped_corrupt = drops_before + corrupt;
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
            state.last_error_kind = None;
            state.progress = progress;
            state.pacing_lag_events = lag_events;
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
            state.dropped_write_failed += 1;
            state.last_error = Some(format!("could not write frame: {e}"));
            state.last_error_kind = Some("write_failed");
        }
    }
}
