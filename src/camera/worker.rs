//! One long-lived worker per camera, on its own thread: an infallible `run` that loops
//! over a fallible `run_once`, sleeping with backoff between attempts on sources that
//! each connection reports live.
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
use crate::output::disk_guard::WriteGate;
use crate::output::encode_pool::EncodePool;
use crate::output::store::FrameStore;
use crate::sampling::pacer::Pacer;
use crate::sampling::sampler::Sampler;
use crate::source::Source;

/// How a worker runs, fixed when the camera starts.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub clear_on_start: bool,
    pub backoff: Backoff,
    /// Consecutive failed attempts after which a live source gives up; 0: never.
    pub max_restarts: u32,
    /// Closed by the disk guard while the disk is too full.
    pub gate: Arc<WriteGate>,
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
    let settings = camera.settings();
    let folder = &settings.output_folder;
    // Frames someone may delete later (retention, the disk guard) are recorded: all
    // but those of a local file that keeps everything if it ends, as files do.
    let surely_ends = matches!(settings.source, Source::File(_))
        && !settings.looped
        && settings.live != Some(true);
    let opened = if !surely_ends || !settings.limits(false).keeps_everything() {
        FrameStore::open_with_ledger(folder, options.clear_on_start)
    } else {
        FrameStore::open(folder, options.clear_on_start)
    };
    let store = Arc::new(opened.map_err(|e| Failure {
        message: format!("cannot use frame folder {}: {e}", folder.display()),
        kind: FailureKind::Other,
    })?);
    camera.attach_store(Arc::clone(&store));
    let (in_flight, all_written) = crossbeam_channel::bounded::<()>(0);
    let delivery = Delivery {
        camera: Arc::clone(camera),
        store,
        pool,
        in_flight,
        gate: Arc::clone(&options.gate),
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
/// good or is stopped. Each connection tells whether the source is live (reconnected
/// at its end) or finite (its end completes the camera).
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
    // Until a connection tells, a URL that cannot be opened is retried (it may be a
    // camera that is down), a file is not.
    let mut live = settings.live_given(matches!(settings.source, Source::Url(_)));
    let mut backoff = options.backoff.clone();
    let mut consecutive_failures = 0;

    loop {
        let attempt_started = clock.now();
        let attempt = run_once(camera, opener, clock, delivery)?;
        // The connection's decoder, frame pools and buffers were just freed.
        memory::release_free_memory();
        if stop.is_stopped() {
            return Ok(());
        }
        live = attempt.live.unwrap_or(live);
        let endless = live || settings.looped;
        let failure = match attempt.end {
            Ok(PumpEnd::Stopped) => return Ok(()),
            Ok(PumpEnd::EndOfStream) if !endless => return Ok(()),
            Ok(PumpEnd::EndOfStream) => Failure {
                message: format!("{}: end of stream", settings.source.redacted()),
                kind: FailureKind::EndOfStream,
            },
            Err(e) if !endless || e.ends_camera() => return Err(e.into()),
            Err(e) => e.into(),
        };
        if attempt.queued > 0 {
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
    /// Frames handed to the encoders, or held back only by a disk pause (counted
    /// here, not when written, so that a connection's frames count for it even while
    /// they are still being encoded, and a full disk is not a failing source).
    queued: u64,
    /// Whether the connection was treated as live; `None`: the source did not open.
    live: Option<bool>,
}

/// One connection: open, then decode until the end, a stop or an error. A looped file
/// starts again at its end on the same connection, on the same timeline. `Err`: the
/// camera cannot go on (a source asked to be paced or looped turned out to be live).
fn run_once<O: Opener, C: Clock>(
    camera: &Camera,
    opener: &O,
    clock: &C,
    delivery: &Delivery,
) -> Result<Attempt, Failure> {
    let settings = camera.settings();
    let stop = camera.stop_token();
    camera.connecting();
    let mut video = match opener.open(settings, stop) {
        Ok(video) => video,
        Err(e) => {
            return Ok(Attempt {
                end: Err(e.into()),
                queued: 0,
                live: None,
            })
        }
    };
    let live = settings.live_given(video.is_live());
    camera.connected(live);
    log::info!(
        "connected: {}",
        if live {
            "live, reconnected at its end"
        } else {
            "finite, completed at its end"
        }
    );
    if live && (settings.realtime || settings.looped) {
        return Err(Failure {
            message: format!(
                "{} is live (it reports no end): realtime and loop apply only to sources that end; start it without them",
                settings.source.redacted()
            ),
            kind: FailureKind::Other,
        });
    }
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
            Some(&camera.timings().decode),
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
    Ok(Attempt {
        end: result,
        queued,
        live: Some(live),
    })
}
