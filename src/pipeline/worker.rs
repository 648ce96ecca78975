//! One long-lived worker per camera, on its own thread: an infallible `run` that loops
//! over a fallible `run_once`, sleeping with backoff between attempts on live sources.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

use super::backoff::Backoff;
use super::encode_pool::{EncodeJob, EncodePool};
use super::pacer::Pacer;
use super::sampler::Sampler;
use super::{pump, Pacing, Passes, PipelineError, PumpEnd, Sample};
use crate::media::{FailureKind, OpenOptions, VideoSource};
use crate::memory;
use crate::output::jpeg::JpegError;
use crate::output::store::FrameStore;
use crate::registry::{Camera, LatestFrame, Phase, Status};

/// Weight of the newest interval in the measured frame rate.
const MEASURED_FPS_SMOOTHING: f64 = 0.2;

/// The measured frame rate after a frame `interval` seconds after the last one. The
/// intervals are averaged, not their inverses: frames buffered at a connect arrive
/// microseconds apart, and one such rate would swamp the average for many frames.
fn smoothed_rate(old_rate: Option<f64>, interval: f64) -> f64 {
    let average = match old_rate {
        Some(rate) => {
            let old = 1.0 / rate;
            old + MEASURED_FPS_SMOOTHING * (interval - old)
        }
        None => interval,
    };
    1.0 / average
}

/// How a worker runs, fixed when the camera starts.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub open: OpenOptions,
    pub stall_timeout: Duration,
    pub clear_on_start: bool,
    pub backoff: Backoff,
    /// Consecutive failed attempts after which a live source gives up; 0: never.
    pub max_restarts: u32,
}

/// The camera thread's body. `previous` is the thread of this camera's last session,
/// which must be gone before this one touches the folder.
pub fn run(
    camera: Arc<Camera>,
    options: WorkerOptions,
    pool: Arc<EncodePool>,
    previous: Option<JoinHandle<()>>,
) {
    if let Some(previous) = previous {
        let _ = previous.join();
    }
    let id = camera.id.clone();
    log::info!("[{id}] starting: {}", camera.settings.source.redacted());
    let outcome = run_session(&camera, &options, &pool);
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

/// Runs until the source ends (`Ok`), fails for good (`Err`) or is stopped; returns
/// once every frame it handed to the encoder pool is written.
fn run_session(
    camera: &Arc<Camera>,
    options: &WorkerOptions,
    pool: &EncodePool,
) -> Result<(), Failure> {
    let folder = &camera.settings.output_folder;
    let store = FrameStore::open(folder, options.clear_on_start).map_err(|e| Failure {
        message: format!("cannot use frame folder {}: {e}", folder.display()),
        kind: FailureKind::Other,
    })?;
    // Each queued frame holds a sender; when all are gone, every frame is written.
    let (in_flight, all_written) = crossbeam_channel::bounded::<()>(0);
    let output = Output {
        camera: Arc::clone(camera),
        store: Arc::new(store),
        pool,
        in_flight,
    };
    let result = reconnect_loop(camera, options, &output);
    let Output {
        store, in_flight, ..
    } = output;
    drop(in_flight);
    wait_until_written(&all_written);
    store.remove_temporaries();
    result
}

fn wait_until_written(all_written: &Receiver<()>) {
    // Only disconnection ends this: nothing is ever sent.
    let _ = all_written.recv();
}

/// Where a camera's sampled frames go: the encoder pool, then its frame folder.
struct Output<'a> {
    camera: Arc<Camera>,
    store: Arc<FrameStore>,
    pool: &'a EncodePool,
    in_flight: Sender<()>,
}

/// Connects, streams and reconnects with backoff until the source ends, fails for
/// good or is stopped.
fn reconnect_loop(
    camera: &Camera,
    options: &WorkerOptions,
    output: &Output,
) -> Result<(), Failure> {
    let id = &camera.id;
    let endless = camera.settings.endless();
    let mut backoff = options.backoff.clone();
    let mut consecutive_failures = 0;

    let result = loop {
        let attempt_started = Instant::now();
        let frames_before = camera.state().frame_count;
        let outcome = run_once(camera, options, output);
        // The connection's decoder, frame pools and buffers were just freed.
        memory::release_free_memory();
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
    result
}

/// One connection: open, then decode until the end, a stop or an error. A looped file
/// starts again at its end on the same connection.
fn run_once(
    camera: &Camera,
    options: &WorkerOptions,
    output: &Output,
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
    let result = stream(camera, &mut video, output, drops_before);
    // Also when the connection failed: damage is often why.
    camera.state().dropped_corrupt = drops_before + video.drops().corrupt;
    result
}

/// Decodes an open source until it ends, fails or is stopped.
fn stream(
    camera: &Camera,
    video: &mut VideoSource,
    output: &Output,
    drops_before: u64,
) -> Result<PumpEnd, PipelineError> {
    let settings = &camera.settings;
    let mut sampler = Sampler::new(settings.fps);
    let mut pacer = Pacer::new();
    let mut passes = Passes::default();
    let started = Instant::now();
    loop {
        let pacing = settings.realtime.then_some(Pacing {
            pacer: &mut pacer,
            started,
        });
        let end = pump(
            video,
            &mut sampler,
            &camera.stop,
            pacing,
            &mut passes,
            |sample| {
                submit(output, sample, drops_before);
                Ok(())
            },
        )?;
        if end == PumpEnd::EndOfStream && settings.looped {
            video.rewind()?;
            sampler.rebase(passes.next(video.frame_interval()));
            continue;
        }
        return Ok(end);
    }
}

/// Numbers a sampled frame and queues it for encoding; a full queue is a counted drop,
/// never a wait.
fn submit(output: &Output, sample: Sample<'_>, drops_before: u64) {
    let camera = &output.camera;
    {
        let mut state = camera.state();
        state.dropped_corrupt = drops_before + sample.drops.corrupt;
        state.pacing_lag_events = sample.lag_events;
        state.hwaccel = sample.hwaccel;
    }
    let number = output.store.reserve();
    let written = Written {
        camera: Arc::clone(camera),
        store: Arc::clone(&output.store),
        number,
        pts: sample.pts,
        progress: sample.progress,
        _in_flight: output.in_flight.clone(),
    };
    let job = EncodeJob {
        picture: sample.picture.to_owned_picture(),
        deliver: Box::new(move |jpeg| written.deliver(jpeg)),
    };
    if output.pool.try_submit(job).is_err() {
        output.store.release(number);
        camera.state().dropped_queue_full += 1;
        log::warn!("[{}] encoder queue full: frame dropped", camera.id);
    }
}

/// What an encoder thread needs to write a frame and make it the newest.
struct Written {
    camera: Arc<Camera>,
    store: Arc<FrameStore>,
    number: u64,
    pts: f64,
    progress: Option<f64>,
    /// Dropped when the frame is done: the session waits for all of these.
    _in_flight: Sender<()>,
}

impl Written {
    /// Writes the frame and publishes it. A failed write (a full disk) is counted and
    /// reported, and the camera goes on: the next frame may well succeed.
    fn deliver(self, jpeg: Result<Vec<u8>, JpegError>) {
        let camera = &self.camera;
        let written = jpeg.map_err(|e| e.to_string()).and_then(|jpeg| {
            self.store
                .write_numbered(self.number, &jpeg)
                .map(|()| jpeg)
                .map_err(|e| format!("could not write frame: {e}"))
        });
        match written {
            Ok(jpeg) => {
                let now = SystemTime::now();
                let previous = camera.state().last_frame_at;
                camera.publish(LatestFrame::new(
                    Bytes::from(jpeg),
                    self.number,
                    self.pts,
                    now,
                ));
                let mut state = camera.state();
                state.last_error = None;
                state.last_error_kind = None;
                state.progress = self.progress;
                let interval = previous.and_then(|p| now.duration_since(p).ok());
                if let Some(interval) = interval.filter(|d| !d.is_zero()) {
                    state.measured_fps =
                        Some(smoothed_rate(state.measured_fps, interval.as_secs_f64()));
                }
            }
            Err(message) => {
                log::warn!(
                    "[{}] frame {} in {}: {message}",
                    camera.id,
                    self.number,
                    self.store.dir().display()
                );
                let mut state = camera.state();
                state.dropped_write_failed += 1;
                state.last_error = Some(message);
                state.last_error_kind = Some("write_failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_rate_follows_a_steady_interval() {
        let mut rate = None;
        for _ in 0..50 {
            rate = Some(smoothed_rate(rate, 0.5));
        }
        assert!((rate.unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_burst_after_a_connect_does_not_inflate_the_rate() {
        // One frame a second, then five frames buffered at a reconnect, a
        // microsecond apart, then one a second again.
        let mut rate = Some(1.0);
        for _ in 0..5 {
            rate = Some(smoothed_rate(rate, 1e-6));
        }
        assert!(rate.unwrap() < 3.1, "{rate:?}");
        for _ in 0..20 {
            rate = Some(smoothed_rate(rate, 1.0));
        }
        assert!((rate.unwrap() - 1.0).abs() < 0.02, "{rate:?}");
    }
}
