//! Which stored frames to delete: pure decisions on what a frame store recorded, with
//! the time passed in. Frames are kept in the order they were written; only a run of
//! the oldest ever goes, and it never reaches a frame written in the last
//! [`IN_USE_GRACE`] (a reader may have just opened it) or the newest-numbered frame
//! (a new session continues the numbering after it).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Frames younger than this are never deleted.
pub const IN_USE_GRACE: Duration = Duration::from_secs(2);
/// The largest frame count limit accepted.
pub const MAX_FRAMES_LIMIT: u64 = 100_000_000;
/// The largest age limit accepted, in seconds (ten years).
pub const MAX_AGE_LIMIT_SECONDS: f64 = 315_360_000.0;

/// One frame file a store wrote (or found when it opened its folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFrame {
    pub number: u64,
    pub written: SystemTime,
    pub bytes: u64,
}

impl StoredFrame {
    fn age(&self, now: SystemTime) -> Duration {
        // A clock stepped back makes a frame look new: kept, which is the safe side.
        now.duration_since(self.written).unwrap_or(Duration::ZERO)
    }
}

/// How much of a camera's folder to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// The most numbered frames to keep; 0: no limit.
    pub max_frames: u64,
    /// Frames older than this go; `None`: no limit.
    pub max_age: Option<Duration>,
}

impl Limits {
    pub fn keeps_everything(&self) -> bool {
        self.max_frames == 0 && self.max_age.is_none()
    }
}

/// How many of the oldest `frames` may be deleted at `now` at all: those before the
/// first one that is younger than the grace or is the newest-numbered frame.
pub fn deletable(frames: &VecDeque<StoredFrame>, newest: u64, now: SystemTime) -> usize {
    frames
        .iter()
        .take_while(|f| f.number != newest && f.age(now) >= IN_USE_GRACE)
        .count()
}

/// How many of the oldest `frames` `limits` delete at `now`.
pub fn over_limits(
    frames: &VecDeque<StoredFrame>,
    limits: Limits,
    newest: u64,
    now: SystemTime,
) -> usize {
    let by_count = match limits.max_frames {
        0 => 0,
        max => frames
            .len()
            .saturating_sub(usize::try_from(max).unwrap_or(usize::MAX)),
    };
    let by_age = limits.max_age.map_or(0, |max_age| {
        frames.iter().take_while(|f| f.age(now) > max_age).count()
    });
    by_count.max(by_age).min(deletable(frames, newest, now))
}

/// For the disk guard: how many of each camera's deletable frames (oldest first) to
/// delete so that at least `needed` bytes are freed, taking the oldest frame across
/// all cameras each time. Frees less when there is not enough to delete.
pub fn relieve(cameras: &[Vec<StoredFrame>], needed: u64) -> Vec<usize> {
    let mut taken = vec![0; cameras.len()];
    let mut freed = 0u64;
    while freed < needed {
        let oldest = cameras
            .iter()
            .enumerate()
            .filter_map(|(camera, frames)| Some((camera, frames.get(taken[camera])?)))
            .min_by_key(|(_, frame)| frame.written);
        let Some((camera, frame)) = oldest else {
            break;
        };
        freed = freed.saturating_add(frame.bytes);
        taken[camera] += 1;
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    /// Frames numbered from `first`, one a second from `from`, of `bytes` each.
    fn frames(first: u64, count: u64, from: u64, bytes: u64) -> VecDeque<StoredFrame> {
        (0..count)
            .map(|i| StoredFrame {
                number: first + i,
                written: at(from + i),
                bytes,
            })
            .collect()
    }

    fn limits(max_frames: u64, max_age: Option<u64>) -> Limits {
        Limits {
            max_frames,
            max_age: max_age.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_count_limit_deletes_the_oldest_surplus() {
        // Frames 1..=10 written at 0..=9 s; now 20 s.
        let ten = frames(1, 10, 0, 100);
        assert_eq!(over_limits(&ten, limits(4, None), 10, at(20)), 6);
        assert_eq!(over_limits(&ten, limits(10, None), 10, at(20)), 0);
        assert_eq!(over_limits(&ten, limits(0, None), 10, at(20)), 0);
        assert!(limits(0, None).keeps_everything());
    }

    #[test]
    fn the_age_limit_deletes_what_is_older() {
        let ten = frames(1, 10, 0, 100);
        // At 12 s, frames written at 0..=6 s are more than 5 s old.
        assert_eq!(over_limits(&ten, limits(0, Some(5)), 10, at(12)), 7);
        // Both limits: the stricter wins.
        assert_eq!(over_limits(&ten, limits(8, Some(5)), 10, at(12)), 7);
        assert_eq!(over_limits(&ten, limits(2, Some(5)), 10, at(12)), 8);
    }

    #[test]
    fn frames_of_the_last_two_seconds_are_never_deleted() {
        // Written at 0..=9 s, now 10 s: the frame of 9 s is 1 s old and stays; the
        // one of 8 s is just 2 s old and may go.
        let ten = frames(1, 10, 0, 100);
        assert_eq!(deletable(&ten, 99, at(10)), 9);
        assert_eq!(over_limits(&ten, limits(1, None), 99, at(10)), 9);
        // Everything written within the last two seconds stays, whatever the limit.
        let recent = frames(1, 10, 0, 100);
        assert_eq!(over_limits(&recent, limits(1, Some(0)), 99, at(1)), 0);
        // A clock stepped back: nothing looks old.
        assert_eq!(over_limits(&ten, limits(1, Some(0)), 99, at(0)), 0);
    }

    #[test]
    fn the_newest_numbered_frame_is_kept() {
        // A stopped camera: everything is old, the age limit would take all.
        let ten = frames(1, 10, 0, 100);
        assert_eq!(over_limits(&ten, limits(0, Some(1)), 10, at(100)), 9);
        // Encoders finishing out of order: the newest number sits before the end.
        let mut shuffled = ten.clone();
        shuffled.swap(7, 9);
        assert_eq!(over_limits(&shuffled, limits(0, Some(1)), 10, at(100)), 7);
    }

    #[test]
    fn relief_takes_the_oldest_frames_across_cameras() {
        // Camera a wrote at 0, 2, 4, ...; camera b at 1, 3, 5, ...; 10 bytes each.
        let a: Vec<_> = (0..5)
            .map(|i| StoredFrame {
                number: i + 1,
                written: at(2 * i),
                bytes: 10,
            })
            .collect();
        let b: Vec<_> = (0..5)
            .map(|i| StoredFrame {
                number: i + 1,
                written: at(2 * i + 1),
                bytes: 10,
            })
            .collect();
        let cameras = [a, b];
        assert_eq!(relieve(&cameras, 0), [0, 0]);
        assert_eq!(relieve(&cameras, 10), [1, 0]);
        assert_eq!(relieve(&cameras, 25), [2, 1]);
        assert_eq!(relieve(&cameras, 40), [2, 2]);
        // Not enough to free: everything deletable goes, no more.
        assert_eq!(relieve(&cameras, 1_000), [5, 5]);
        assert_eq!(relieve(&[], 1_000), Vec::<usize>::new());
    }

    #[test]
    fn relief_prefers_an_old_folder_over_a_busy_one() {
        let old: Vec<_> = frames(1, 3, 0, 50).into_iter().collect();
        let busy: Vec<_> = frames(1, 100, 100, 5).into_iter().collect();
        assert_eq!(relieve(&[busy, old], 120), [0, 3]);
    }
}
