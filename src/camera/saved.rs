//! The cameras that should be running, saved to `STATE_FILE` whenever one starts, is
//! stopped or ends, and read back at the next start, so that a restarted daemon
//! resumes them. Each camera is saved as the request that started it and checked
//! again, like a new request, when it is restored.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::registry::{Camera, Registry};
use super::request::StartRequest;
use crate::source::Source;

/// Bumped when the layout changes in a way an older daemon cannot read.
const FORMAT_VERSION: u32 = 1;
/// Readable by the daemon's user only: source URLs may hold credentials.
const FILE_MODE: u32 = 0o600;

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u32,
    cameras: Vec<StartRequest>,
}

/// The state file, written by one thread at a time.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The cameras last written, to skip writes that change nothing.
    written: Mutex<Option<Vec<StartRequest>>>,
    /// Set at shutdown: the cameras stopped then are meant to come back.
    frozen: AtomicBool,
    /// Set once the last run's cameras were read: until then the file is theirs, and a
    /// camera started before (from the config file) must not overwrite it.
    loaded: AtomicBool,
    /// Saved cameras that another replica owns now (the number of replicas changed),
    /// kept in the file until that replica has taken them over.
    handoffs: Mutex<Vec<StartRequest>>,
}

impl StateFile {
    pub fn new(path: PathBuf) -> StateFile {
        StateFile {
            path,
            written: Mutex::new(None),
            frozen: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            handoffs: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved cameras. A missing file is no camera; a file that cannot be read as
    /// saved state is moved aside (and logged), so the daemon starts with no camera
    /// rather than failing at every start. Saving starts only after this.
    pub fn load(&self) -> Vec<StartRequest> {
        self.loaded.store(true, Ordering::SeqCst);
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                log::error!(
                    "cannot read STATE_FILE {}: {e}; starting with no saved cameras",
                    self.path.display()
                );
                return Vec::new();
            }
        };
        let problem = match serde_json::from_slice::<Saved>(&bytes) {
            Ok(saved) if saved.version == FORMAT_VERSION => return saved.cameras,
            Ok(saved) => format!("format version {} is not {FORMAT_VERSION}", saved.version),
            Err(e) => e.to_string(),
        };
        let aside = self.aside_name();
        match fs::rename(&self.path, &aside) {
            Ok(()) => log::error!(
                "STATE_FILE {} is not valid saved state ({problem}): moved to {}; starting with no saved cameras",
                self.path.display(),
                aside.display()
            ),
            Err(e) => log::error!(
                "STATE_FILE {} is not valid saved state ({problem}) and could not be moved aside ({e}); starting with no saved cameras",
                self.path.display()
            ),
        }
        Vec::new()
    }

    fn aside_name(&self) -> PathBuf {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".corrupt-{seconds}"));
        PathBuf::from(name)
    }

    /// Saves the requests of the cameras running now, once the last run's were
    /// [`load`](Self::load)ed. Never fails the caller: a state
    /// file that cannot be written is logged, and the cameras go on.
    pub fn save_running(&self, registry: &Registry) {
        if self.frozen.load(Ordering::SeqCst) || !self.loaded.load(Ordering::SeqCst) {
            return;
        }
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut running: Vec<(String, StartRequest)> = registry
            .all()
            .into_iter()
            .filter(|camera| camera.is_running() && !camera.settings().from_config_file)
            .map(|camera| (camera.id().to_string(), resolved_request(&camera)))
            .collect();
        running.extend(
            self.handoffs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|r| {
                    (
                        r.fields.get("camera_id").cloned().unwrap_or_default(),
                        r.clone(),
                    )
                }),
        );
        running.sort_by(|a, b| a.0.cmp(&b.0));
        let cameras: Vec<StartRequest> = running.into_iter().map(|(_, r)| r).collect();
        if written.as_ref() == Some(&cameras) {
            return;
        }
        match self.write(&cameras) {
            Ok(()) => *written = Some(cameras),
            Err(e) => log::error!(
                "cannot write STATE_FILE {}: {e}; the running cameras will not be resumed after a restart",
                self.path.display()
            ),
        }
    }

    /// Keeps these saved cameras in the file, beside the running ones, until each is
    /// [`handed_off`](Self::handed_off).
    pub fn keep_for_handoff(&self, requests: Vec<StartRequest>) {
        *self.handoffs.lock().unwrap_or_else(|e| e.into_inner()) = requests;
    }

    /// Drops a camera kept for its hand-over: its owner took it, or refused it.
    pub fn handed_off(&self, request: &StartRequest) {
        self.handoffs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|kept| kept != request);
    }

    /// Stops saving: what is stopped from now on (a shutdown) stays in the file.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Writes a temporary file next to the state file, syncs it and renames it over,
    /// so a crash at any moment leaves either the old file or the new one.
    fn write(&self, cameras: &[StartRequest]) -> io::Result<()> {
        let saved = Saved {
            version: FORMAT_VERSION,
            cameras: cameras.to_vec(),
        };
        let mut bytes = serde_json::to_vec_pretty(&saved).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let mut temp = self.path.as_os_str().to_owned();
        temp.push(".part");
        let temp = PathBuf::from(temp);
        let result = create_private(&temp)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.sync_all()
            })
            .and_then(|()| fs::rename(&temp, &self.path));
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

/// The camera's request with a local source named by its resolved, absolute path: a
/// relative path would depend on the directory the next run starts in.
fn resolved_request(camera: &Camera) -> StartRequest {
    let settings = camera.settings();
    let mut request = settings.request.clone();
    if let (Source::File(path), None) = (&settings.source, &request.upload) {
        for field in ["url", "source"] {
            if let Some(value) = request.fields.get_mut(field) {
                *value = path.display().to_string();
            }
        }
    }
    request
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // A file left by an older run may have had a wider mode.
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{Admission, CameraSettings, HwStatus};
    use crate::sampling::Fps;
    use crate::source::CameraId;

    fn start(registry: &Registry, id: &str) {
        let request =
            StartRequest::from_fields([("camera_id", id), ("url", "rtsp://u:p@h/s")], None);
        let settings = CameraSettings {
            request,
            ..CameraSettings::new(
                Source::Url("rtsp://u:p@h/s".into()),
                Fps::DEFAULT,
                PathBuf::from("/tmp/x"),
            )
        };
        let id = CameraId::parse(id).unwrap();
        assert!(matches!(
            registry.admit(&id, settings, HwStatus::default()),
            Admission::Started(_)
        ));
    }

    #[test]
    fn saves_the_running_cameras_privately_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("state.json"));
        assert!(file.load().is_empty());
        let registry = Registry::new();
        start(&registry, "b");
        start(&registry, "a");
        start(&registry, "c");
        registry
            .get(&CameraId::parse("c").unwrap())
            .unwrap()
            .request_stop();
        file.save_running(&registry);
        let ids: Vec<String> = file
            .load()
            .iter()
            .map(|r| r.fields["camera_id"].clone())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        file.freeze();
        registry
            .get(&CameraId::parse("a").unwrap())
            .unwrap()
            .request_stop();
        file.save_running(&registry);
        assert_eq!(file.load().len(), 2, "a frozen file keeps what it had");
    }

    #[test]
    fn cameras_kept_for_their_handoff_stay_until_handed_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("state.json"));
        file.load();
        let registry = Registry::new();
        start(&registry, "b");
        let moved = StartRequest::from_fields([("camera_id", "a"), ("url", "rtsp://h/a")], None);
        file.keep_for_handoff(vec![moved.clone()]);
        file.save_running(&registry);
        let ids: Vec<String> = file
            .load()
            .iter()
            .map(|r| r.fields["camera_id"].clone())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        file.handed_off(&moved);
        file.save_running(&registry);
        assert_eq!(file.load().len(), 1);
    }

    #[test]
    fn a_local_source_is_saved_by_its_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mp4");
        fs::write(&clip, b"x").unwrap();
        let request =
            StartRequest::from_fields([("camera_id", "f"), ("url", "./videos/clip.mp4")], None);
        let settings = CameraSettings {
            request,
            ..CameraSettings::new(Source::File(clip.clone()), Fps::DEFAULT, dir.path().into())
        };
        let registry = Registry::new();
        registry.admit(
            &CameraId::parse("f").unwrap(),
            settings,
            HwStatus::default(),
        );
        let file = StateFile::new(dir.path().join("state.json"));
        file.load();
        file.save_running(&registry);
        assert_eq!(file.load()[0].fields["url"], clip.display().to_string());
    }

    #[test]
    fn nothing_is_saved_before_the_last_run_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let before = StateFile::new(path.clone());
        before.load();
        let registry = Registry::new();
        start(&registry, "saved");
        before.save_running(&registry);
        let file = StateFile::new(path);
        file.save_running(&Registry::new());
        assert_eq!(file.load().len(), 1, "a camera started first kept the file");
    }

    #[test]
    fn a_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{\"version\": 1, \"cameras\": [{\"fie").unwrap();
        let file = StateFile::new(path.clone());
        assert!(file.load().is_empty());
        assert!(!path.exists());
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(aside[0].starts_with("state.json.corrupt-"), "{aside:?}");
        assert!(StateFile::new(dir.path().join("missing.json"))
            .load()
            .is_empty());
    }
}
