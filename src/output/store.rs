//! A camera's frame folder: `frame_%04d.jpg` files written under a temporary name and
//! renamed into place, and `latest.jpg` replaced atomically, so no reader ever opens a
//! partial `.jpg`. A store that keeps a ledger records every frame it wrote, oldest
//! first, so that retention deletes old frames without listing the folder again.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use super::retention::StoredFrame;

const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;
const LATEST: &str = "latest.jpg";
const TEMP_SUFFIX: &str = ".part";
/// Files deleted per hold of the ledger, so that encoder threads recording new frames
/// never wait long.
const DELETE_BATCH: usize = 128;

/// Shared between a camera's thread, which numbers the frames in sampling order, and
/// the encoder threads, which write them.
pub struct FrameStore {
    dir: PathBuf,
    next_number: AtomicU64,
    /// The highest frame number `latest.jpg` has pointed at.
    latest: Mutex<u64>,
    /// The frames in the folder, oldest first; `None` when nobody deletes them.
    ledger: Option<Mutex<VecDeque<StoredFrame>>>,
    /// Held while frames are deleted; `true` once retired: a new session owns the
    /// folder, and this store deletes nothing more.
    retired: Mutex<bool>,
}

/// Frames a deletion removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub frames: u64,
    pub bytes: u64,
}

impl FrameStore {
    /// Opens (creating) `dir`. With `clear`, old frames go and numbering starts at 1;
    /// without, numbering continues after the highest frame present.
    pub fn open(dir: &Path, clear: bool) -> io::Result<FrameStore> {
        FrameStore::open_with(dir, clear, false)
    }

    /// As [`FrameStore::open`], keeping a ledger of the frames, those already in the
    /// folder first (listed this once).
    pub fn open_with_ledger(dir: &Path, clear: bool) -> io::Result<FrameStore> {
        FrameStore::open_with(dir, clear, true)
    }

    fn open_with(dir: &Path, clear: bool, ledger: bool) -> io::Result<FrameStore> {
        fs::create_dir_all(dir)?;
        set_mode(dir, DIR_MODE)?;
        let mut highest = 0;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_frame = name.ends_with(".jpg");
            let is_leftover = name.starts_with('.') && name.ends_with(TEMP_SUFFIX);
            if is_leftover || (clear && is_frame) {
                remove_if_present(&entry.path())?;
            } else if let Some(number) = frame_number(&name) {
                highest = highest.max(number);
                if ledger {
                    let metadata = entry.metadata()?;
                    found.push(StoredFrame {
                        number,
                        written: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        bytes: metadata.len(),
                    });
                }
            }
        }
        found.sort_by_key(|frame| frame.number);
        Ok(FrameStore {
            dir: dir.to_owned(),
            next_number: AtomicU64::new(highest + 1),
            latest: Mutex::new(highest),
            ledger: ledger.then(|| Mutex::new(found.into())),
            retired: Mutex::new(false),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The number the next written frame will get.
    pub fn next_number(&self) -> u64 {
        self.next_number.load(Ordering::SeqCst)
    }

    /// Takes the next frame number, for a frame to be written later.
    pub fn reserve(&self) -> u64 {
        self.next_number.fetch_add(1, Ordering::SeqCst)
    }

    /// Gives back the number just reserved, when its frame will never be written.
    pub fn release(&self, number: u64) {
        let _ = self.next_number.compare_exchange(
            number + 1,
            number,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Writes one frame and points `latest.jpg` at it. On error nothing partial is
    /// left behind and the number is reused by the next frame.
    pub fn write(&self, jpeg: &[u8]) -> io::Result<u64> {
        let number = self.reserve();
        match self.write_numbered(number, jpeg) {
            Ok(()) => Ok(number),
            Err(e) => {
                self.release(number);
                Err(e)
            }
        }
    }

    /// Writes frame `number` (reserved earlier) and makes it `latest.jpg` unless a
    /// later frame got there first. Nothing partial is left behind on error.
    pub fn write_numbered(&self, number: u64, jpeg: &[u8]) -> io::Result<()> {
        let name = frame_name(number);
        let temp = self.dir.join(format!(".{name}{TEMP_SUFFIX}"));
        let target = self.dir.join(&name);
        if let Err(e) = write_new_file(&temp, jpeg).and_then(|()| fs::rename(&temp, &target)) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        let mut latest = lock(&self.latest);
        if number > *latest {
            if let Err(e) = self.point_latest_at(&target) {
                // No frame newer than `latest.jpg`, which stays as it was.
                let _ = fs::remove_file(&target);
                return Err(e);
            }
            *latest = number;
        }
        drop(latest);
        if let Some(ledger) = &self.ledger {
            lock(ledger).push_back(StoredFrame {
                number,
                written: SystemTime::now(),
                bytes: jpeg.len() as u64,
            });
        }
        Ok(())
    }

    /// The highest frame number written (or found when the folder was opened).
    pub fn newest(&self) -> u64 {
        *lock(&self.latest)
    }

    /// Reads the ledger, oldest first, with the newest frame number; `None` without one.
    pub fn with_ledger<R>(&self, read: impl FnOnce(&VecDeque<StoredFrame>, u64) -> R) -> Option<R> {
        let newest = self.newest();
        Some(read(&lock(self.ledger.as_ref()?), newest))
    }

    /// Deletes the `count` oldest frames of the ledger (unless retired). A frame
    /// already gone (a reader cleaned up) counts as deleted.
    pub fn delete_oldest(&self, count: usize) -> Deleted {
        let mut deleted = Deleted::default();
        let Some(ledger) = &self.ledger else {
            return deleted;
        };
        let mut left = count;
        while left > 0 {
            let retired = lock(&self.retired);
            if *retired {
                break;
            }
            let batch: Vec<StoredFrame> = {
                let mut ledger = lock(ledger);
                let take = left.min(DELETE_BATCH).min(ledger.len());
                ledger.drain(..take).collect()
            };
            if batch.is_empty() {
                break;
            }
            left -= batch.len();
            for frame in batch {
                let path = self.dir.join(frame_name(frame.number));
                match remove_if_present(&path) {
                    Ok(()) => {
                        deleted.frames += 1;
                        deleted.bytes += frame.bytes;
                    }
                    Err(e) => log::warn!("cannot delete {}: {e}", path.display()),
                }
            }
            drop(retired);
        }
        deleted
    }

    /// Stops all deleting, waiting for a deletion under way: the folder now belongs
    /// to another session.
    pub fn retire(&self) {
        *lock(&self.retired) = true;
    }

    fn point_latest_at(&self, frame: &Path) -> io::Result<()> {
        let temp = self.dir.join(format!(".{LATEST}{TEMP_SUFFIX}"));
        remove_if_present(&temp)?;
        let linked = fs::hard_link(frame, &temp).or_else(|_| fs::copy(frame, &temp).map(drop));
        match linked.and_then(|()| fs::rename(&temp, self.dir.join(LATEST))) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    /// Removes temporary files an interrupted write could have left.
    pub fn remove_temporaries(&self) {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// `frame_0001.jpg` ... `frame_9999.jpg`, `frame_10000.jpg` (as ffmpeg's `%04d`).
pub fn frame_name(number: u64) -> String {
    format!("frame_{number:04}.jpg")
}

fn frame_number(name: &str) -> Option<u64> {
    name.strip_prefix("frame_")?
        .strip_suffix(".jpg")?
        .parse()
        .ok()
}

fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_with_mode(path)?;
    file.write_all(bytes)?;
    // The umask may have narrowed the mode; readers in other containers need 0644.
    set_mode(path, FILE_MODE)
}

#[cfg(unix)]
fn create_with_mode(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

#[cfg(not(unix))]
fn create_with_mode(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ffmpeg() {
        assert_eq!(frame_name(1), "frame_0001.jpg");
        assert_eq!(frame_name(9999), "frame_9999.jpg");
        assert_eq!(frame_name(10000), "frame_10000.jpg");
        assert_eq!(frame_number("frame_10000.jpg"), Some(10000));
        assert_eq!(frame_number("latest.jpg"), None);
    }

    #[test]
    fn writes_frames_and_latest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FrameStore::open(&dir.path().join("cam"), true).unwrap();
        assert_eq!(store.write(b"one").unwrap(), 1);
        assert_eq!(store.write(b"two").unwrap(), 2);
        let cam = dir.path().join("cam");
        assert_eq!(fs::read(cam.join("frame_0002.jpg")).unwrap(), b"two");
        assert_eq!(fs::read(cam.join("latest.jpg")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&cam)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(cam.join("frame_0001.jpg"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644);
            let mode = fs::metadata(&cam).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
    }

    #[test]
    fn clear_or_continue_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let cam = dir.path().join("cam");
        let store = FrameStore::open(&cam, true).unwrap();
        for _ in 0..3 {
            store.write(b"x").unwrap();
        }
        fs::write(cam.join(".frame_0004.jpg.part"), b"partial").unwrap();
        fs::write(cam.join("notes.txt"), b"keep").unwrap();

        let kept = FrameStore::open(&cam, false).unwrap();
        assert_eq!(kept.next_number(), 4);
        assert!(!cam.join(".frame_0004.jpg.part").exists());

        let cleared = FrameStore::open(&cam, true).unwrap();
        assert_eq!(cleared.next_number(), 1);
        assert!(!cam.join("frame_0001.jpg").exists());
        assert!(!cam.join("latest.jpg").exists());
        assert!(cam.join("notes.txt").exists());
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_keeps_the_number() {
        let dir = tempfile::tempdir().unwrap();
        let cam = dir.path().join("cam");
        let store = FrameStore::open(&cam, true).unwrap();
        // A folder where the temporary file should go makes the write fail, even as root.
        let blocker = cam.join(".frame_0001.jpg.part");
        fs::create_dir(&blocker).unwrap();
        assert!(store.write(b"x").is_err());
        assert!(!cam.join("frame_0001.jpg").exists());
        fs::remove_dir(&blocker).unwrap();
        assert_eq!(store.write(b"y").unwrap(), 1);
        assert_eq!(fs::read(cam.join("frame_0001.jpg")).unwrap(), b"y");
    }

    #[test]
    fn out_of_order_writes_keep_latest_on_the_highest() {
        let dir = tempfile::tempdir().unwrap();
        let cam = dir.path().join("cam");
        let store = FrameStore::open(&cam, true).unwrap();
        let (first, second) = (store.reserve(), store.reserve());
        store.write_numbered(second, b"two").unwrap();
        store.write_numbered(first, b"one").unwrap();
        assert_eq!(fs::read(cam.join("latest.jpg")).unwrap(), b"two");
        assert_eq!(fs::read(cam.join("frame_0001.jpg")).unwrap(), b"one");
    }

    #[test]
    fn a_ledger_records_what_was_written_and_deletes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let cam = dir.path().join("cam");
        let store = FrameStore::open_with_ledger(&cam, true).unwrap();
        for _ in 0..4 {
            store.write(b"four").unwrap();
        }
        let numbers = |store: &FrameStore| {
            store
                .with_ledger(|frames, _| frames.iter().map(|f| f.number).collect::<Vec<_>>())
                .unwrap()
        };
        assert_eq!(numbers(&store), [1, 2, 3, 4]);
        assert_eq!(store.with_ledger(|_, newest| newest), Some(4));
        // A reader deleted frame 2 itself: it counts as gone all the same.
        fs::remove_file(cam.join("frame_0002.jpg")).unwrap();
        let deleted = store.delete_oldest(2);
        assert_eq!(
            deleted,
            Deleted {
                frames: 2,
                bytes: 8
            }
        );
        assert_eq!(numbers(&store), [3, 4]);
        assert!(!cam.join("frame_0001.jpg").exists());
        assert!(cam.join("frame_0003.jpg").exists());
        assert!(cam.join("latest.jpg").exists());

        // A new session continuing the numbering finds the frames left, once.
        let next = FrameStore::open_with_ledger(&cam, false).unwrap();
        assert_eq!(numbers(&next), [3, 4]);
        assert_eq!(next.newest(), 4);
        // The old store, retired, deletes nothing more.
        store.retire();
        assert_eq!(store.delete_oldest(2), Deleted::default());
        assert!(cam.join("frame_0003.jpg").exists());
        // A store without a ledger has nothing to delete.
        let plain = FrameStore::open(&cam, false).unwrap();
        assert_eq!(plain.with_ledger(|frames, _| frames.len()), None);
        assert_eq!(plain.delete_oldest(5), Deleted::default());
    }

    #[test]
    fn release_gives_back_only_the_last_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = FrameStore::open(dir.path(), true).unwrap();
        let n = store.reserve();
        store.release(n);
        assert_eq!(store.reserve(), n);
        let m = store.reserve();
        store.release(n);
        assert_eq!(store.next_number(), m + 1);
    }
}
