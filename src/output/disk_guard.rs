//! Keeping the frame disk from filling up: the minimum of free space, the pause that
//! every camera reads before it queues a frame (one atomic load), and the decision
//! when to pause and resume, with some headroom so that writing does not flap.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::disk::DiskSpace;

/// Writing resumes once this share of the minimum is free beyond it...
const HEADROOM_SHARE: u64 = 10;
/// ...and at least this much.
const MIN_HEADROOM: u64 = 1024 * 1024;
/// After a write refused for lack of space, writing is tried again this long after
/// the pause even if the free space seen has not grown (a quota is not seen in the
/// filesystem's free space).
const RETRY_AFTER_WRITE_FAILURE: Duration = Duration::from_secs(10);

/// `MIN_FREE_DISK`: free space to keep on the frame folder's filesystem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    Bytes(u64),
    /// A share (0..100) of the filesystem's size.
    Percent(f64),
}

impl MinFree {
    pub fn bytes(&self, total: u64) -> u64 {
        match *self {
            MinFree::Bytes(bytes) => bytes,
            MinFree::Percent(percent) => (total as f64 * percent / 100.0) as u64,
        }
    }
}

impl fmt::Display for MinFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MinFree::Bytes(bytes) => f.write_str(&human_bytes(bytes)),
            MinFree::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Whether frames may be written now; shared by every camera and encoder thread.
#[derive(Debug, Default)]
pub struct WriteGate {
    paused: AtomicBool,
    /// A write failed for lack of space since the guard last looked.
    write_refused: AtomicBool,
}

impl WriteGate {
    pub fn new() -> WriteGate {
        WriteGate::default()
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// A write failed with "no space" or "quota exceeded": pause at once; the guard
    /// decides when to resume.
    pub fn write_refused(&self) {
        self.write_refused.store(true, Ordering::Relaxed);
        self.paused.store(true, Ordering::Relaxed);
    }

    fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    fn take_write_refused(&self) -> bool {
        self.write_refused.swap(false, Ordering::Relaxed)
    }
}

/// What the guard just decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardChange {
    /// Writing stops; the message says why.
    Paused(String),
    Resumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pause {
    /// Writing resumes once this much is free...
    resume_at: u64,
    /// ...or, after a refused write, at this moment.
    retry_at: Option<Instant>,
}

/// The pause decision, made on the retention thread from one measurement to the next.
#[derive(Debug)]
pub struct DiskGuard {
    minimum: MinFree,
    pause: Option<Pause>,
}

impl DiskGuard {
    pub fn new(minimum: MinFree) -> DiskGuard {
        DiskGuard {
            minimum,
            pause: None,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.pause.is_some()
    }

    /// Bytes to free now by deleting old frames: up to the minimum and its headroom
    /// when below the minimum or paused; nothing otherwise.
    pub fn wanted(&self, space: DiskSpace) -> u64 {
        let minimum = self.minimum.bytes(space.total);
        let target = match self.pause {
            Some(pause) => pause.resume_at,
            None if space.available < minimum => minimum + headroom(minimum),
            None => return 0,
        };
        target.saturating_sub(space.available)
    }

    /// Pauses or resumes `gate` after measuring `space` at `now` (old frames already
    /// deleted where they could be).
    pub fn update(
        &mut self,
        gate: &WriteGate,
        space: DiskSpace,
        now: Instant,
    ) -> Option<GuardChange> {
        let minimum = self.minimum.bytes(space.total);
        let refused = gate.take_write_refused();
        let change = match self.pause {
            None if refused => {
                let floor = minimum.max(space.available);
                self.pause = Some(Pause {
                    resume_at: floor + headroom(floor),
                    retry_at: Some(now + RETRY_AFTER_WRITE_FAILURE),
                });
                Some(GuardChange::Paused(format!(
                    "writing paused: a frame could not be written for lack of space; {} free (MIN_FREE_DISK={})",
                    human_bytes(space.available),
                    self.minimum
                )))
            }
            None if space.available < minimum => {
                self.pause = Some(Pause {
                    resume_at: minimum + headroom(minimum),
                    retry_at: None,
                });
                Some(GuardChange::Paused(format!(
                    "writing paused: {} free, below MIN_FREE_DISK={}",
                    human_bytes(space.available),
                    self.minimum
                )))
            }
            Some(pause)
                if !refused
                    && (space.available >= pause.resume_at
                        || pause.retry_at.is_some_and(|at| now >= at)) =>
            {
                self.pause = None;
                Some(GuardChange::Resumed)
            }
            _ => None,
        };
        gate.set_paused(self.pause.is_some());
        change
    }
}

fn headroom(minimum: u64) -> u64 {
    (minimum / HEADROOM_SHARE).max(MIN_HEADROOM)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn space(available_mib: u64) -> DiskSpace {
        DiskSpace {
            available: available_mib * MIB,
            total: 100 * MIB,
        }
    }

    #[test]
    fn minimums_in_bytes_or_a_share_of_the_disk() {
        assert_eq!(MinFree::Bytes(5).bytes(1000), 5);
        assert_eq!(MinFree::Percent(5.0).bytes(1000), 50);
        assert_eq!(MinFree::Percent(2.0).to_string(), "2%");
        assert_eq!(MinFree::Bytes(4 * MIB).to_string(), "4.0 MiB");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn below_the_minimum_pauses_and_resumes_with_headroom() {
        let gate = WriteGate::new();
        let mut guard = DiskGuard::new(MinFree::Bytes(20 * MIB));
        let now = Instant::now();
        assert_eq!(guard.wanted(space(50)), 0);
        assert_eq!(guard.update(&gate, space(50), now), None);
        assert!(!gate.is_paused());
        // 15 MiB free: free up to 20 MiB and 2 MiB of headroom.
        assert_eq!(guard.wanted(space(15)), 7 * MIB);
        let Some(GuardChange::Paused(message)) = guard.update(&gate, space(15), now) else {
            panic!("not paused");
        };
        assert!(message.contains("15.0 MiB free"), "{message}");
        assert!(message.contains("MIN_FREE_DISK=20.0 MiB"), "{message}");
        assert!(gate.is_paused());
        // Back just above the minimum: still paused, no flapping.
        assert_eq!(guard.update(&gate, space(21), now), None);
        assert!(gate.is_paused());
        assert_eq!(guard.wanted(space(21)), MIB);
        assert_eq!(
            guard.update(&gate, space(22), now),
            Some(GuardChange::Resumed)
        );
        assert!(!gate.is_paused());
        assert_eq!(guard.update(&gate, space(21), now), None);
    }

    #[test]
    fn a_refused_write_pauses_until_space_grows_or_a_while_passes() {
        let gate = WriteGate::new();
        let mut guard = DiskGuard::new(MinFree::Bytes(0));
        let now = Instant::now();
        gate.write_refused();
        assert!(gate.is_paused());
        // The filesystem claims 30 MiB free (a quota it does not show): resume only
        // once 3 MiB more are free, or after the retry delay.
        assert!(matches!(
            guard.update(&gate, space(30), now),
            Some(GuardChange::Paused(_))
        ));
        assert!(gate.is_paused());
        assert_eq!(guard.update(&gate, space(31), now), None);
        assert_eq!(
            guard.update(&gate, space(30), now + RETRY_AFTER_WRITE_FAILURE),
            Some(GuardChange::Resumed)
        );
        // Refused again while paused: stays paused.
        gate.write_refused();
        guard.update(&gate, space(30), now);
        gate.write_refused();
        assert_eq!(guard.update(&gate, space(90), now), None);
        assert!(gate.is_paused());
        assert_eq!(
            guard.update(&gate, space(90), now),
            Some(GuardChange::Resumed)
        );
    }

    #[test]
    fn a_disk_with_no_minimum_never_pauses_by_itself() {
        let gate = WriteGate::new();
        let mut guard = DiskGuard::new(MinFree::Bytes(0));
        assert_eq!(guard.update(&gate, space(0), Instant::now()), None);
        assert_eq!(guard.wanted(space(0)), 0);
    }
}
