//! The daemon's one retention thread. Several times a second it trims each camera's
//! folder to its limits (`max_frames`, `max_age_seconds`), keeps `MIN_FREE_DISK` free
//! on the frame filesystem (deleting the oldest frames of endless cameras across
//! cameras, then pausing writing until there is room again), and forgets cameras whose
//! session ended more than `STOPPED_FOLDER_TTL_SECONDS` ago, with their folders.
//! Deleting happens only here: never on a camera or encoder thread. What to delete is
//! decided by `output::retention` from the stores' ledgers, without listing folders.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use super::registry::{Camera, Registry};
use crate::output::disk::{self, DiskSpace};
use crate::output::disk_guard::{human_bytes, DiskGuard, GuardChange, MinFree, WriteGate};
use crate::output::retention::{self, StoredFrame};
use crate::output::store::FrameStore;
use crate::stop::StopToken;

/// Time between passes; the disk is measured on each.
const PASS_INTERVAL: Duration = Duration::from_millis(250);
/// Frames one pass deletes for a camera's limits, so that a big backlog (a folder
/// kept from an earlier session) never holds up the disk guard or a shutdown.
const MAX_DELETIONS_PER_PASS: usize = 1000;

#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// Where every camera's folder is; its filesystem is the one guarded.
    pub output_folder: PathBuf,
    pub min_free: MinFree,
    pub stopped_folder_ttl: Option<Duration>,
}

/// Starts the retention thread; it runs until `stop`.
pub fn spawn(
    registry: Arc<Registry>,
    gate: Arc<WriteGate>,
    options: RetentionOptions,
    stop: StopToken,
) -> io::Result<JoinHandle<()>> {
    let mut retention = Retention {
        registry,
        gate,
        guard: DiskGuard::new(options.min_free),
        options,
        pause_message: None,
        space_unknown: false,
    };
    thread::Builder::new()
        .name("retention".into())
        .spawn(move || loop {
            retention.pass(SystemTime::now());
            if !stop.sleep(PASS_INTERVAL) {
                return;
            }
        })
}

struct Retention {
    registry: Arc<Registry>,
    gate: Arc<WriteGate>,
    options: RetentionOptions,
    guard: DiskGuard,
    /// Why writing is paused, for cameras that start while it is.
    pause_message: Option<String>,
    /// The free space could not be measured (logged once until it can again).
    space_unknown: bool,
}

impl Retention {
    fn pass(&mut self, now: SystemTime) {
        let cameras = self.registry.all();
        for camera in &cameras {
            apply_limits(camera, now);
        }
        self.guard_disk(&cameras, now);
        if let Some(ttl) = self.options.stopped_folder_ttl {
            for camera in &cameras {
                self.forget_if_expired(camera, ttl, now);
            }
        }
    }

    fn guard_disk(&mut self, cameras: &[Arc<Camera>], now: SystemTime) {
        let Some(mut space) = self.measure() else {
            return;
        };
        let wanted = self.guard.wanted(space);
        if wanted > 0 && relieve(cameras, wanted, now) > 0 {
            space = self.measure().unwrap_or(space);
        }
        match self.guard.update(&self.gate, space, Instant::now()) {
            Some(GuardChange::Paused(message)) => {
                log::warn!("{message} ({})", self.options.output_folder.display());
                self.pause_message = Some(message);
            }
            Some(GuardChange::Resumed) => {
                log::info!(
                    "writing resumed: {} free in {}",
                    human_bytes(space.available),
                    self.options.output_folder.display()
                );
                self.pause_message = None;
                for camera in cameras {
                    camera.writing_resumed();
                }
            }
            None => {}
        }
        if let Some(message) = &self.pause_message {
            // Also cameras started since the pause; no event for those already told.
            for camera in cameras.iter().filter(|c| c.is_running()) {
                camera.writing_paused(message.clone());
            }
        }
    }

    fn measure(&mut self) -> Option<DiskSpace> {
        match disk::space(&self.options.output_folder) {
            Ok(space) => {
                self.space_unknown = false;
                Some(space)
            }
            Err(e) => {
                if !self.space_unknown {
                    log::warn!(
                        "cannot measure the free space of {}: {e}",
                        self.options.output_folder.display()
                    );
                }
                self.space_unknown = true;
                None
            }
        }
    }

    /// Removes the folder of `camera` and forgets it when its session ended more than
    /// `ttl` ago, unless a new session of its id has begun.
    fn forget_if_expired(&self, camera: &Arc<Camera>, ttl: Duration, now: SystemTime) {
        let Some(finished) = camera.snapshot().finished_at else {
            return;
        };
        if now.duration_since(finished).map_or(true, |age| age < ttl) {
            return;
        }
        let id = camera.id();
        let folder = &camera.settings().output_folder;
        let aside = set_aside_name(folder);
        // Moved aside under the registry's lock: a session of the same id admitted
        // right after creates a new folder that this never touches.
        let removed = self.registry.remove_if(id, |current| {
            std::ptr::eq(current, Arc::as_ptr(camera)) && set_aside(folder, &aside)
        });
        if removed.is_none() {
            return;
        }
        match fs::remove_dir_all(&aside) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                log::warn!(camera:% = id; "cannot remove {}: {e}", aside.display())
            }
            _ => log::info!(
                camera:% = id;
                "session ended {} s ago (STOPPED_FOLDER_TTL_SECONDS={}): folder removed, camera forgotten",
                now.duration_since(finished).unwrap_or_default().as_secs(),
                ttl.as_secs_f64()
            ),
        }
    }
}

/// Deletes what the camera's own limits no longer keep.
fn apply_limits(camera: &Camera, now: SystemTime) {
    let limits = camera.limits();
    if limits.keeps_everything() {
        return;
    }
    let Some(store) = camera.frame_store() else {
        return;
    };
    let count = store
        .with_ledger(|frames, newest| retention::over_limits(frames, limits, newest, now))
        .unwrap_or(0)
        .min(MAX_DELETIONS_PER_PASS);
    if count > 0 {
        camera.frames_deleted(store.delete_oldest(count).frames);
    }
}

/// Deletes the oldest deletable frames of endless cameras, oldest first across
/// cameras, until `wanted` bytes are freed or nothing more may go; returns the bytes
/// freed.
fn relieve(cameras: &[Arc<Camera>], wanted: u64, now: SystemTime) -> u64 {
    let candidates: Vec<(&Arc<Camera>, Arc<FrameStore>)> = cameras
        .iter()
        .filter(|c| c.is_endless())
        .filter_map(|c| Some((c, c.frame_store()?)))
        .collect();
    let deletable: Vec<Vec<StoredFrame>> = candidates
        .iter()
        .map(|(_, store)| {
            store
                .with_ledger(|frames, newest| {
                    let count = retention::deletable(frames, newest, now);
                    frames.iter().take(count).copied().collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let counts = retention::relieve(&deletable, wanted);
    let (mut frames, mut bytes) = (0, 0);
    for ((camera, store), count) in candidates.iter().zip(counts) {
        if count > 0 {
            let deleted = store.delete_oldest(count);
            camera.frames_deleted(deleted.frames);
            frames += deleted.frames;
            bytes += deleted.bytes;
        }
    }
    if frames > 0 {
        log::info!(
            "disk guard: deleted {frames} old frames ({}) to keep MIN_FREE_DISK",
            human_bytes(bytes)
        );
    }
    bytes
}

/// `OUTPUT_FOLDER/.cam.removing` for `OUTPUT_FOLDER/cam`: hidden, and never a camera
/// folder (camera ids cannot start with a dot).
fn set_aside_name(folder: &Path) -> PathBuf {
    let name = folder.file_name().unwrap_or_default().to_string_lossy();
    folder.with_file_name(format!(".{name}.removing"))
}

/// Renames `folder` to `aside`; says whether the camera may be forgotten (also when
/// there was no folder, or it could not be moved, which is logged).
fn set_aside(folder: &Path, aside: &Path) -> bool {
    // A leftover of an interrupted removal would block the rename.
    let _ = fs::remove_dir_all(aside);
    match fs::rename(folder, aside) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            log::warn!("cannot move {} aside to remove it: {e}", folder.display());
        }
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::registry::Admission;
    use crate::camera::settings::CameraSettings;
    use crate::camera::state::Outcome;
    use crate::camera::HwStatus;
    use crate::sampling::Fps;
    use crate::source::{CameraId, Source};

    const TTL: Duration = Duration::from_secs(60);

    struct Fixture {
        registry: Arc<Registry>,
        retention: Retention,
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let registry = Arc::new(Registry::new());
            let retention = Retention {
                registry: Arc::clone(&registry),
                gate: Arc::new(WriteGate::new()),
                guard: DiskGuard::new(MinFree::Bytes(0)),
                options: RetentionOptions {
                    output_folder: dir.path().to_owned(),
                    min_free: MinFree::Bytes(0),
                    stopped_folder_ttl: Some(TTL),
                },
                pause_message: None,
                space_unknown: false,
            };
            Fixture {
                registry,
                retention,
                dir,
            }
        }

        /// A live camera `id` with `frames` frames written through its store.
        fn camera(&self, id: &str, max_frames: u64, frames: u64) -> Arc<Camera> {
            let id = CameraId::parse(id).unwrap();
            let folder = self.dir.path().join(id.as_str());
            let settings = CameraSettings {
                max_frames: crate::camera::settings::FrameLimit::fixed(max_frames),
                ..CameraSettings::new(Source::Url("rtsp://h/s".into()), Fps::DEFAULT, folder)
            };
            let Admission::Started(camera) =
                self.registry.admit(&id, settings, HwStatus::default())
            else {
                panic!("not started");
            };
            let store = FrameStore::open_with_ledger(&camera.settings().output_folder, true);
            let store = Arc::new(store.unwrap());
            for _ in 0..frames {
                store.write(b"jpeg").unwrap();
            }
            camera.attach_store(store);
            camera
        }
    }

    fn numbers(folder: &Path) -> Vec<u64> {
        let mut numbers: Vec<u64> = fs::read_dir(folder)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("frame_")?
                    .strip_suffix(".jpg")?
                    .parse()
                    .ok()
            })
            .collect();
        numbers.sort();
        numbers
    }

    #[test]
    fn a_pass_trims_each_camera_to_its_limit() {
        let mut fixture = Fixture::new();
        let kept = fixture.camera("kept", 3, 10);
        let all = fixture.camera("all", 0, 10);
        // Just written: within the grace, nothing goes.
        fixture.retention.pass(SystemTime::now());
        assert_eq!(numbers(&kept.settings().output_folder).len(), 10);
        fixture
            .retention
            .pass(SystemTime::now() + Duration::from_secs(5));
        assert_eq!(numbers(&kept.settings().output_folder), [8, 9, 10]);
        assert!(kept.settings().output_folder.join("latest.jpg").exists());
        assert_eq!(kept.snapshot().frames_deleted, 7);
        assert_eq!(numbers(&all.settings().output_folder).len(), 10);
        assert_eq!(all.snapshot().frames_deleted, 0);
    }

    #[test]
    fn a_long_finished_camera_is_forgotten_with_its_folder() {
        let mut fixture = Fixture::new();
        let done = fixture.camera("done", 0, 2);
        let running = fixture.camera("running", 0, 2);
        done.finished(Outcome::Stopped);
        let folder = done.settings().output_folder.clone();
        // Not yet past the time to live.
        fixture.retention.pass(SystemTime::now() + TTL / 2);
        assert!(fixture.registry.get(done.id()).is_some());
        assert!(folder.exists());
        fixture.retention.pass(SystemTime::now() + TTL * 2);
        assert!(fixture.registry.get(done.id()).is_none());
        assert!(!folder.exists());
        assert!(!fixture.dir.path().join(".done.removing").exists());
        // A running camera stays, however old.
        assert!(fixture.registry.get(running.id()).is_some());
        assert!(running.settings().output_folder.exists());
    }

    #[test]
    fn a_new_session_of_the_same_camera_keeps_its_folder() {
        let mut fixture = Fixture::new();
        let old = fixture.camera("cam", 0, 2);
        old.finished(Outcome::Stopped);
        // A new session admitted before the old one's time ran out.
        let new = fixture.camera("cam", 0, 1);
        fixture.retention.pass(SystemTime::now() + TTL * 2);
        let current = fixture.registry.get(new.id()).unwrap();
        assert!(Arc::ptr_eq(&current, &new));
        assert_eq!(numbers(&new.settings().output_folder), [1]);
    }
}
