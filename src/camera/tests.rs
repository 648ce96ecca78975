//! The camera worker driven through its retry loop by scripted sources on a fake
//! clock: no sockets, no libav, no sleeping. Frames go through the real encoder pool
//! into a real folder.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

use super::backoff::Backoff;
use super::clock::{Clock, FakeClock, SystemClock};
use super::delivery::Written;
use super::events::{CameraEvent, Change, Events};
use super::registry::Camera;
use super::settings::CameraSettings;
use super::source::{FrameSource, Opener};
use super::state::{Phase, Status};
use super::worker::{self, WorkerOptions};
use super::HwStatus;
use crate::media::{DecodedFrame, FailureKind, MediaError};
use crate::output::disk_guard::WriteGate;
use crate::output::encode_pool::EncodePool;
use crate::output::store::FrameStore;
use crate::picture::{OwnedYuv420, Yuv420};
use crate::sampling::Fps;
use crate::sampling::FrameDemand;
use crate::source::{CameraId, Source};
use crate::stop::StopToken;

const INITIAL: Duration = Duration::from_millis(500);
const CAP: Duration = Duration::from_secs(8);

/// What one connection attempt does.
#[derive(Debug, Clone)]
enum Connection {
    /// The open fails.
    Refused(FailureKind),
    /// Reports itself live or not, gives `frames` frames `interval` seconds apart,
    /// each taking that long on the clock, then ends as `then` says.
    Streams {
        live: bool,
        frames: usize,
        interval: f64,
        then: End,
    },
}

#[derive(Debug, Clone, Copy)]
enum End {
    /// The end of the stream.
    Eos,
    /// A read error of this kind.
    Fails(FailureKind),
    /// A file looped: `rewind` works this many times, then the camera is stopped.
    Rewinds(usize),
}

fn media_error(kind: FailureKind) -> MediaError {
    MediaError::Read {
        source_name: "fake".into(),
        message: format!("scripted {kind}"),
        kind,
    }
}

/// Opens the scripted connections in order; once they run out, it stops the camera.
struct ScriptedOpener {
    script: Mutex<VecDeque<Connection>>,
    clock: FakeClock,
    opens: Arc<Mutex<usize>>,
}

impl ScriptedOpener {
    fn new(script: impl IntoIterator<Item = Connection>, clock: &FakeClock) -> ScriptedOpener {
        ScriptedOpener {
            script: Mutex::new(script.into_iter().collect()),
            clock: clock.clone(),
            opens: Arc::new(Mutex::new(0)),
        }
    }
}

impl Opener for ScriptedOpener {
    type Source = FakeSource;

    fn open(&self, _settings: &CameraSettings, stop: &StopToken) -> Result<FakeSource, MediaError> {
        *self.opens.lock().unwrap() += 1;
        let next = self.script.lock().unwrap().pop_front();
        match next {
            None => {
                stop.stop();
                Err(MediaError::Stopped)
            }
            Some(Connection::Refused(kind)) => Err(MediaError::Open {
                source_name: "fake".into(),
                message: format!("scripted {kind}"),
                kind,
            }),
            Some(Connection::Streams {
                live,
                frames,
                interval,
                then,
            }) => Ok(FakeSource {
                live,
                frames,
                interval,
                then,
                next: 0,
                rewinds: 0,
                clock: self.clock.clone(),
                stop: stop.clone(),
                picture: OwnedYuv420::gray(16, 16),
            }),
        }
    }
}

/// What each fake frame took to decode.
const FAKE_DECODE_TIME: Duration = Duration::from_millis(3);

struct FakeSource {
    live: bool,
    frames: usize,
    interval: f64,
    then: End,
    next: usize,
    rewinds: usize,
    clock: FakeClock,
    stop: StopToken,
    picture: OwnedYuv420,
}

impl FrameSource for FakeSource {
    fn next_frame(&mut self, _: &dyn FrameDemand) -> Result<Option<DecodedFrame>, MediaError> {
        if self.next == self.frames {
            return match self.then {
                End::Fails(kind) => Err(media_error(kind)),
                End::Eos | End::Rewinds(_) => Ok(None),
            };
        }
        self.clock.advance(Duration::from_secs_f64(self.interval));
        let timestamp = self.next as f64 * self.interval;
        self.next += 1;
        Ok(Some(DecodedFrame {
            timestamp,
            progress: None,
        }))
    }

    fn picture(&mut self) -> Result<Yuv420<'_>, MediaError> {
        Ok(self.picture.view())
    }

    fn rewind(&mut self) -> Result<(), MediaError> {
        match self.then {
            End::Rewinds(allowed) if self.rewinds < allowed => {
                self.rewinds += 1;
                self.next = 0;
                Ok(())
            }
            _ => {
                self.stop.stop();
                Err(MediaError::Stopped)
            }
        }
    }

    fn pass_length(&self) -> f64 {
        self.frames as f64 * self.interval
    }

    fn is_live(&self) -> bool {
        self.live
    }

    fn decode_time(&self) -> Duration {
        FAKE_DECODE_TIME
    }

    fn damaged_frames(&self) -> u64 {
        0
    }

    fn hwaccel(&self) -> HwStatus {
        HwStatus::default()
    }
}

/// A camera, its folder and its events, run to its end by `run` on this thread.
struct Harness {
    camera: Arc<Camera>,
    events: broadcast::Receiver<CameraEvent>,
    folder: tempfile::TempDir,
}

impl Harness {
    fn new(source: Source, configure: impl FnOnce(&mut CameraSettings)) -> Harness {
        let folder = tempfile::tempdir().unwrap();
        let mut settings = CameraSettings::new(source, Fps::DEFAULT, folder.path().join("cam"));
        configure(&mut settings);
        let events = Events::new();
        let receiver = events.subscribe();
        let camera = Camera::new(
            CameraId::parse("cam").unwrap(),
            settings,
            HwStatus::default(),
            events,
        );
        Harness {
            camera: Arc::new(camera),
            events: receiver,
            folder,
        }
    }

    fn live() -> Harness {
        Harness::new(Source::Url("rtsp://camera.test/stream".into()), |_| {})
    }

    fn run<O: Opener, C: Clock>(&self, opener: O, clock: C, max_restarts: u32) {
        let pool = Arc::new(EncodePool::new(1, 16, 80).unwrap());
        let options = WorkerOptions {
            clear_on_start: true,
            backoff: Backoff::new(INITIAL, CAP),
            max_restarts,
            gate: Arc::new(WriteGate::new()),
        };
        worker::run(Arc::clone(&self.camera), opener, clock, options, pool, None);
    }

    fn changes(&mut self) -> Vec<Change> {
        std::iter::from_fn(|| self.events.try_recv().ok())
            .map(|event| event.change)
            .collect()
    }

    fn frames_on_disk(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.folder.path().join("cam"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn refused(count: usize) -> Vec<Connection> {
    vec![Connection::Refused(FailureKind::Refused); count]
}

/// A connection that reports a live source.
fn streams(frames: usize, then: End) -> Connection {
    Connection::Streams {
        live: true,
        frames,
        interval: 1.0,
        then,
    }
}

/// A connection that reports a source that ends.
fn finite(frames: usize, then: End) -> Connection {
    Connection::Streams {
        live: false,
        frames,
        interval: 1.0,
        then,
    }
}

/// The full delay of the `n`th consecutive retry (from 0), before jitter.
fn full_delay(n: u32) -> Duration {
    INITIAL.saturating_mul(1 << n).min(CAP)
}

fn assert_jittered(delay: Duration, full: Duration) {
    assert!(
        delay >= full / 2 && delay <= full,
        "{delay:?} outside {:?}..={full:?}",
        full / 2
    );
}

#[test]
fn retries_back_off_exponentially_within_the_jitter_bounds() {
    let clock = FakeClock::new();
    let harness = Harness::live();
    harness.run(ScriptedOpener::new(refused(7), &clock), clock.clone(), 0);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 7);
    for (n, delay) in sleeps.iter().enumerate() {
        assert_jittered(*delay, full_delay(n as u32));
    }
    let state = harness.camera.snapshot();
    assert_eq!(state.status, Status::Stopped);
    assert_eq!(state.restart_count, 7);
    assert_eq!(state.last_error.unwrap().kind.as_str(), "refused");
}

#[test]
fn a_healthy_minute_starts_the_backoff_again() {
    let clock = FakeClock::new();
    let harness = Harness::live();
    let mut script = refused(4);
    // 61 frames a second apart: a minute of streaming, then a failure.
    script.push(streams(61, End::Fails(FailureKind::Network)));
    script.extend(refused(1));
    // Five seconds of streaming is not healthy: the backoff goes on growing.
    script.push(streams(5, End::Fails(FailureKind::Network)));
    harness.run(ScriptedOpener::new(script, &clock), clock.clone(), 0);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 7, "{sleeps:?}");
    for (n, delay) in sleeps[..4].iter().enumerate() {
        assert_jittered(*delay, full_delay(n as u32));
    }
    assert_jittered(sleeps[4], full_delay(0));
    assert_jittered(sleeps[5], full_delay(1));
    assert_jittered(sleeps[6], full_delay(2));
}

#[test]
fn authentication_and_not_found_wait_the_longest_delay_at_once() {
    let clock = FakeClock::new();
    let harness = Harness::live();
    let script = [
        Connection::Refused(FailureKind::Authentication),
        Connection::Refused(FailureKind::NotFound),
        Connection::Refused(FailureKind::Refused),
    ];
    harness.run(ScriptedOpener::new(script, &clock), clock.clone(), 0);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps[..2], [CAP, CAP]);
    assert_jittered(sleeps[2], full_delay(0));
}

#[test]
fn max_restarts_consecutive_failures_end_the_camera_in_error() {
    let clock = FakeClock::new();
    let harness = Harness::live();
    // Two failures, a connection that gives frames (which resets the count), then
    // failures until the limit.
    let mut script = refused(2);
    script.push(streams(2, End::Fails(FailureKind::Network)));
    script.extend(refused(10));
    let opener = ScriptedOpener::new(script, &clock);
    let opens = Arc::clone(&opener.opens);
    harness.run(opener, clock.clone(), 3);
    // Failures 1, 2, then 1 (the streaming one), 2, 3, and the 4th gives up.
    assert_eq!(*opens.lock().unwrap(), 6);
    assert_eq!(clock.sleeps().len(), 5);
    let state = harness.camera.snapshot();
    assert_eq!(state.status, Status::Error);
    assert_eq!(state.phase, Phase::Finished);
    let error = state.last_error.unwrap();
    assert_eq!(error.kind.as_str(), "refused");
    assert!(
        error
            .message
            .ends_with("(gave up after 4 consecutive failures, MAX_RESTARTS=3)"),
        "{}",
        error.message
    );
}

#[test]
fn a_stop_during_the_backoff_returns_at_once() {
    // The real clock and a 30 s backoff: the stop token must wake the sleep.
    let harness = Harness::live();
    let camera = Arc::clone(&harness.camera);
    let options = WorkerOptions {
        clear_on_start: true,
        backoff: Backoff::new(Duration::from_secs(30), Duration::from_secs(30)),
        max_restarts: 0,
        gate: Arc::new(WriteGate::new()),
    };
    let clock = FakeClock::new();
    let opener = ScriptedOpener::new(refused(1), &clock);
    let pool = Arc::new(EncodePool::new(1, 4, 80).unwrap());
    let worker =
        thread::spawn(move || worker::run(camera, opener, SystemClock, options, pool, None));
    let deadline = Instant::now() + Duration::from_secs(5);
    while harness.camera.snapshot().phase != Phase::Reconnecting {
        assert!(Instant::now() < deadline, "never reached the backoff");
        thread::sleep(Duration::from_millis(1));
    }
    let stopped_at = Instant::now();
    harness.camera.request_stop();
    worker.join().unwrap();
    assert!(stopped_at.elapsed() < Duration::from_millis(500));
    assert_eq!(harness.camera.snapshot().status, Status::Stopped);
}

#[test]
fn frame_numbers_continue_across_reconnects() {
    let clock = FakeClock::new();
    let mut harness = Harness::live();
    let script = [
        streams(3, End::Fails(FailureKind::Network)),
        streams(2, End::Eos),
    ];
    harness.run(ScriptedOpener::new(script, &clock), clock.clone(), 0);
    let mut expected: Vec<String> = (1..=5).map(|n| format!("frame_{n:04}.jpg")).collect();
    expected.push("latest.jpg".into());
    assert_eq!(harness.frames_on_disk(), expected);
    let state = harness.camera.snapshot();
    assert_eq!(state.frame_count, 5);
    // A live source that ends is reconnected, like one that fails.
    assert_eq!(state.restart_count, 2);
    let changes = harness.changes();
    let retry_kinds: Vec<FailureKind> = changes
        .iter()
        .filter_map(|change| match change {
            Change::Retrying { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        retry_kinds,
        [FailureKind::Network, FailureKind::EndOfStream]
    );
    let connects = changes
        .iter()
        .filter(|c| **c == Change::Connected { live: true })
        .count();
    assert_eq!(connects, 2);
    // Every attempt to open is announced before it connects.
    for (i, change) in changes.iter().enumerate() {
        if matches!(change, Change::Connected { .. }) {
            assert_eq!(changes[i - 1], Change::Connecting, "{changes:?}");
        }
    }
    assert!(
        matches!(
            changes.last(),
            Some(&Change::Finished {
                status: Status::Stopped,
                error: None,
                ..
            })
        ),
        "{changes:?}"
    );
}

/// An HTTP source: live or finite only once a connection says.
fn http(configure: impl FnOnce(&mut CameraSettings)) -> Harness {
    Harness::new(
        Source::Url("http://media.test/video?id=3".into()),
        configure,
    )
}

fn connects(changes: &[Change]) -> Vec<bool> {
    changes
        .iter()
        .filter_map(|change| match change {
            Change::Connected { live } => Some(*live),
            _ => None,
        })
        .collect()
}

/// Runs `harness` on `script`: the opens it made, its state at the end, its events.
fn run_script(
    harness: &mut Harness,
    script: Vec<Connection>,
) -> (usize, super::CameraSnapshot, Vec<Change>) {
    let clock = FakeClock::new();
    let opener = ScriptedOpener::new(script, &clock);
    let opens = Arc::clone(&opener.opens);
    harness.run(opener, clock, 0);
    let opens = *opens.lock().unwrap();
    (opens, harness.camera.snapshot(), harness.changes())
}

#[test]
fn a_source_reported_live_reconnects_at_its_end() {
    let mut harness = http(|_| {});
    let script = vec![streams(2, End::Eos), streams(2, End::Eos)];
    let (opens, state, changes) = run_script(&mut harness, script);
    // Both connections ended and were reconnected; the third open finds no script.
    assert_eq!(opens, 3);
    assert_eq!(state.restart_count, 2);
    assert_eq!(state.frame_count, 4);
    assert_eq!(state.live, Some(true));
    let retried = changes
        .iter()
        .filter(|change| {
            matches!(
                change,
                Change::Retrying {
                    kind: FailureKind::EndOfStream,
                    ..
                }
            )
        })
        .count();
    assert_eq!(retried, 2);
    assert_eq!(connects(&changes), [true, true]);
}

#[test]
fn a_source_reported_finite_completes_at_its_end() {
    let mut harness = http(|_| {});
    let script = vec![finite(3, End::Eos), finite(3, End::Eos)];
    let (opens, state, changes) = run_script(&mut harness, script);
    assert_eq!(opens, 1);
    assert_eq!(
        (state.status, state.progress),
        (Status::Completed, Some(1.0))
    );
    assert_eq!((state.frame_count, state.restart_count), (3, 0));
    assert_eq!(state.live, Some(false));
    assert_eq!(connects(&changes), [false]);
}

#[test]
fn a_source_reported_finite_that_fails_ends_in_error() {
    let mut harness = http(|_| {});
    let script = vec![
        finite(2, End::Fails(FailureKind::Network)),
        finite(3, End::Eos),
    ];
    let (opens, state, _) = run_script(&mut harness, script);
    assert_eq!(opens, 1);
    assert_eq!(state.status, Status::Error);
    assert_eq!(state.last_error.unwrap().kind.as_str(), "network");
}

#[test]
fn the_callers_word_on_liveness_wins_both_ways() {
    // Said finite, reported live: its end completes the camera.
    let mut said_finite = http(|settings| settings.live = Some(false));
    assert_eq!(said_finite.camera.snapshot().live, Some(false));
    let script = vec![streams(2, End::Eos), streams(2, End::Eos)];
    let (opens, state, changes) = run_script(&mut said_finite, script);
    assert_eq!((opens, state.status), (1, Status::Completed));
    assert_eq!(state.live, Some(false));
    assert_eq!(connects(&changes), [false]);

    // Said live, reported finite: its end is reconnected, its frames numbered on.
    let mut said_live = http(|settings| settings.live = Some(true));
    assert_eq!(said_live.camera.snapshot().live, Some(true));
    let script = vec![finite(2, End::Eos), finite(2, End::Eos)];
    let (opens, state, changes) = run_script(&mut said_live, script);
    assert_eq!((opens, state.status), (3, Status::Stopped));
    assert_eq!((state.restart_count, state.frame_count), (2, 4));
    assert_eq!(state.live, Some(true));
    assert_eq!(connects(&changes), [true, true]);
}

#[test]
fn before_any_connection_a_url_is_retried_and_a_file_is_not() {
    let mut url = http(|_| {});
    let (opens, state, _) = run_script(&mut url, refused(2));
    assert_eq!((opens, state.restart_count), (3, 2));
    assert_eq!(state.live, None);

    let mut file = Harness::new(Source::File("/clips/a.mp4".into()), |_| {});
    let (opens, state, _) = run_script(&mut file, refused(2));
    assert_eq!((opens, state.status), (1, Status::Error));
}

#[test]
fn a_paced_or_looped_source_that_turns_out_live_fails_the_camera() {
    for (realtime, looped) in [(true, false), (false, true)] {
        let mut harness = http(|settings| {
            settings.realtime = realtime;
            settings.looped = looped;
        });
        let (opens, state, _) = run_script(&mut harness, vec![streams(2, End::Eos)]);
        assert_eq!(opens, 1);
        assert_eq!((state.status, state.frame_count), (Status::Error, 0));
        assert_eq!(state.live, Some(true));
        let message = state.last_error.unwrap().message;
        assert!(
            message.contains("is live (it reports no end): realtime and loop apply only"),
            "{message}"
        );
    }
}

#[test]
fn a_looped_file_runs_on_one_timeline() {
    let clock = FakeClock::new();
    let folder_source = Source::File(PathBuf::from("/clips/ten-frames.mp4"));
    let mut harness = Harness::new(folder_source, |settings| {
        settings.looped = true;
        settings.fps = Fps::new(2.0).unwrap();
    });
    // Ten frames 0.1 s apart, played three times.
    let script = [Connection::Streams {
        live: false,
        frames: 10,
        interval: 0.1,
        then: End::Rewinds(2),
    }];
    harness.run(ScriptedOpener::new(script, &clock), clock.clone(), 0);
    let mut written: Vec<(u64, f64)> = harness
        .changes()
        .into_iter()
        .filter_map(|change| match change {
            Change::FrameWritten { seq, pts, .. } => Some((seq, pts)),
            _ => None,
        })
        .collect();
    written.sort_by_key(|(seq, _)| *seq);
    let seqs: Vec<u64> = written.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    for (k, (_, pts)) in written.iter().enumerate() {
        assert!((pts - 0.5 * k as f64).abs() < 1e-9, "{written:?}");
    }
    // One connection for all passes, and no retry.
    assert_eq!(harness.camera.snapshot().restart_count, 0);
    // Every decoded frame is timed, and every written one.
    let decode = harness.camera.timings().decode.snapshot();
    assert_eq!(decode.count, 30);
    assert!((decode.sum - 30.0 * FAKE_DECODE_TIME.as_secs_f64()).abs() < 1e-9);
    assert_eq!(harness.camera.timings().encode.snapshot().count, 6);
}

#[test]
fn encoder_threads_finishing_together_or_out_of_order_leave_a_consistent_camera() {
    const FRAMES: u64 = 400;
    const THREADS: u64 = 4;
    let harness = Harness::live();
    let store = Arc::new(FrameStore::open(&harness.camera.settings().output_folder, true).unwrap());
    for _ in 0..FRAMES {
        store.reserve();
    }
    let latest_number = |dir: &Path| -> Option<u64> {
        let bytes = std::fs::read(dir.join("latest.jpg")).ok()?;
        String::from_utf8(bytes)
            .ok()?
            .strip_prefix("frame-")?
            .parse()
            .ok()
    };
    let (in_flight, _all_written) = crossbeam_channel::bounded::<()>(0);
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (camera, store, in_flight) = (
                Arc::clone(&harness.camera),
                Arc::clone(&store),
                in_flight.clone(),
            );
            thread::spawn(move || {
                // Each thread writes its share newest first: frames finish out of order.
                for number in (1..=FRAMES).rev().filter(|n| n % THREADS == thread) {
                    let written = Written {
                        camera: Arc::clone(&camera),
                        store: Arc::clone(&store),
                        gate: Arc::new(WriteGate::new()),
                        number,
                        pts: number as f64,
                        captured_at: std::time::SystemTime::now(),
                        progress: Some(number as f64 / FRAMES as f64),
                        _in_flight: in_flight.clone(),
                        label: crate::logging::CameraLabel::new("cam", "x"),
                    };
                    let jpeg = format!("frame-{number}").into_bytes();
                    written.deliver(Ok(jpeg), Duration::from_millis(1));
                }
            })
        })
        .collect();
    // Meanwhile neither the newest frame in memory nor latest.jpg may step back.
    let dir = store.dir().to_owned();
    let (mut seen_memory, mut seen_file) = (0, 0);
    while writers.iter().any(|w| !w.is_finished()) {
        if let Some(latest) = harness.camera.latest() {
            assert!(
                latest.seq >= seen_memory,
                "{} after {seen_memory}",
                latest.seq
            );
            seen_memory = latest.seq;
        }
        if let Some(number) = latest_number(&dir) {
            assert!(number >= seen_file, "{number} after {seen_file}");
            seen_file = number;
        }
    }
    for writer in writers {
        writer.join().unwrap();
    }
    let state = harness.camera.snapshot();
    assert_eq!(state.frame_count, FRAMES);
    assert_eq!(state.progress, Some(1.0));
    assert_eq!(harness.camera.latest().unwrap().seq, FRAMES);
    assert_eq!(latest_number(&dir), Some(FRAMES));
    let rate = state.measured_fps.expect("a rate after many frames");
    assert!(rate.is_finite() && rate > 0.0, "{rate}");
    assert!(state.last_frame_at.unwrap() <= SystemTime::now());
}
