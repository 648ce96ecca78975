//! One long-lived worker per camera, on its own thread: an infallible `run` that loops
//! over a fallible `run_once`, sleeping with backoff between attempts on live sources.
//! Generic over how sources open and over the clock, so the retry loop is tested
//! against scripted sources in fake time.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

use super::backoff::Backoff;
use super::clock::Clock;
use super::delivery::Delivery;
use super::pump::{pump, Pacing, PipelineError, PumpEnd, Timeline};
use super::registry::Camera;
use super::source::{FrameSource, Opener};
use super::state::{DropReason, Outcome};
use crate::logging::{CameraLabel, CameraScope};
use crate::media::{self, FailureKind};
use crate::memory;
use crate::output::encode_pool::EncodePool;
use crate::output::store::FrameStore;
use crate::sampling::pacer::Pacer;
use crate::sampling::sampler::Sampler;

/// How a worker runs, fixed when the camera starts.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub clear_on_start: bool,
    pub backoff: Backoff,
    /// Consecutive failed attempts after which a live source gives up; 0: never.
    pub max_restarts: u32,
}

/// The camera thread's body. `previous` is the thread of this camera's last session,
/// which must be gone before this one touches the folder.
pub fn run<O: Opener, C: Clock>(
    camera: Arc<Camera>,
    opener: O,
    clock: C,
    options: WorkerOptions,
    pool: Arc<EncodePool>,
    previous: Option<JoinHandle<()>>,
) {
    if let Some(previous) = previous {
        let _ = previous.join();
    }
    let id = camera.id().clone();
    let source = &camera.settings().source;
    let label = CameraLabel::new(id.as_str(), source.location());
    let _scope = CameraScope::enter(Arc::clone(&label));
    log::info!(camera:% = id; "starting: {}", source.redacted());
    let outcome = run_session(&camera, &opener, &clock, &options, &pool, label);
    let outcome = match outcome {
        _ if camera.stop_token().is_stopped() => Outcome::Stopped,
        Ok(()) => Outcome::Completed,
        Err(failure) => Outcome::Failed {
            kind: failure.kind,
            message: failure.message,
        },
    };
    media::camera_finished(id.as_str());
    let frames = camera.snapshot().frame_count;
    match &outcome {
        Outcome::Stopped => log::info!(camera:% = id; "stopped after {frames} frames"),
        Outcome::Completed => log::info!(camera:% = id; "completed: {frames} frames"),
        Outcome::Failed { message, .. } => log::error!(camera:% = id; "gave up: {message}"),
    }
    camera.finished(outcome);
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
fn run_session<O: Opener, C: Clock>(
    camera: &Arc<Camera>,
    opener: &O,
    clock: &C,
    options: &WorkerOptions,
    pool: &EncodePool,
    label: Arc<CameraLabel>,
) -> Result<(), Failure> {
    let folder = &camera.settings().output_folder;
    let store = FrameStore::open(folder, options.clear_on_start).map_err(|e| Failure {
        message: format!("cannot use frame folder {}: {e}", folder.display()),
        kind: FailureKind::Other,
    })?;
    let (in_flight, all_written) = crossbeam_channel::bounded::<()>(0);
    let delivery = Delivery {
        camera: Arc::clone(camera),
        store: Arc::new(store),
        pool,
        in_flight,
        label,
    };
    let result = reconnect_loop(camera, opener, clock, options, &delivery);
    let Delivery {
        store, in_flight, ..
    } = delivery;
    drop(in_flight);
    wait_until_written(&all_written);
    store.remove_temporaries();
    result
}

fn wait_until_written(all_written: &Receiver<()>) {
    // Only disconnection ends this: nothing is ever sent.
    let _ = all_written.recv();
}

/// Connects, streams and reconnects with backoff until the source ends, fails for
/// good or is stopped.
fn reconnect_loop<O: Opener, C: Clock>(
    camera: &Camera,
    opener: &O,
    clock: &C,
    options: &WorkerOptions,
    delivery: &Delivery,
) -> Result<(), Failure> {
    let id = camera.id();
    let settings = camera.settings();
    let stop = camera.stop_token();
    let endless = settings.endless();
    let mut backoff = options.backoff.clone();
    let mut consecutive_failures = 0;

    loop {
        let attempt_started = clock.now();
        let Attempt {
            end: outcome,
            queued,
        } = run_once(camera, opener, clock, delivery);
        // The connection's decoder, frame pools and buffers were just freed.
        memory::release_free_memory();
        if stop.is_stopped() {
            return Ok(());
        }
        let failure = match outcome {
            Ok(PumpEnd::Stopped) => return Ok(()),
            Ok(PumpEnd::EndOfStream) if !endless => return Ok(()),
            Ok(PumpEnd::EndOfStream) => Failure {
                message: format!("{}: end of stream", settings.source.redacted()),
                kind: FailureKind::EndOfStream,
            },
            Err(e) if !endless => return Err(e.into()),
            Err(e) => e.into(),
        };
        if queued > 0 {
            consecutive_failures = 0;
        }
        consecutive_failures += 1;
        if options.max_restarts > 0 && consecutive_failures > options.max_restarts {
            return Err(Failure {
                message: format!(
                    "{} (gave up after {} consecutive failures, MAX_RESTARTS={})",
                    failure.message, consecutive_failures, options.max_restarts
                ),
                kind: failure.kind,
            });
        }
        backoff.record_success(clock.now().saturating_duration_since(attempt_started));
        let delay = if failure.kind.needs_slow_retry() {
            backoff.cap()
        } else {
            backoff.next_delay(rand::random())
        };
        log::warn!(
            camera:% = id;
            "{}; reconnecting in {:.1} s",
            failure.message,
            delay.as_secs_f64()
        );
        camera.retrying(failure.kind, failure.message, delay);
        if !clock.sleep(delay, stop) {
            return Ok(());
        }
    }
}

/// How one connection went.
struct Attempt {
    end: Result<PumpEnd, PipelineError>,
    /// Frames handed to the encoders (counted here, not when written, so that a
    /// connection's frames count for it even while they are still being encoded).
    queued: u64,
}

/// One connection: open, then decode until the end, a stop or an error. A looped file
/// starts again at its end on the same connection, on the same timeline.
fn run_once<O: Opener, C: Clock>(
    camera: &Camera,
    opener: &O,
    clock: &C,
    delivery: &Delivery,
) -> Attempt {
    let settings = camera.settings();
    let stop = camera.stop_token();
    let mut video = match opener.open(settings, stop) {
        Ok(video) => video,
        Err(e) => {
            return Attempt {
                end: Err(e.into()),
                queued: 0,
            }
        }
    };
    camera.connected();
    let mut sampler = Sampler::new(settings.fps);
    let mut timeline = Timeline::default();
    let mut pacer = Pacer::new();
    let started = clock.now();
    // Damaged frames of this connection already counted in the camera's state.
    let mut damaged_counted = 0;
    let mut queued = 0;
    let mut count_damage = |damaged: u64| {
        camera.frames_dropped(DropReason::Corrupt, damaged.saturating_sub(damaged_counted));
        damaged_counted = damaged_counted.max(damaged);
    };
    let result = loop {
        let pacing = settings.realtime.then_some(Pacing {
            pacer: &mut pacer,
            clock,
            started,
        });
        let end = pump(
            &mut video,
            &mut sampler,
            &timeline,
            stop,
            pacing,
            |sample| {
                count_damage(sample.damaged);
                queued += u64::from(delivery.submit(sample));
                Ok(())
            },
        );
        match end {
            Ok(PumpEnd::EndOfStream) if settings.looped => {
                // The next pass's timestamps start again: both move back by its length.
                let length = video.pass_length();
                timeline.next_pass(length);
                sampler.rebase(length);
                if let Err(e) = video.rewind() {
                    break Err(e.into());
                }
            }
            end => break end,
        }
    };
    // Also when the connection failed: damage is often why.
    count_damage(video.damaged_frames());
    Attempt {
        end: result,
        queued,
    }
}
