//! Plays a file at its own speed (the `realtime` option): each frame is released when
//! the wall clock reaches its timestamp. Pure timing logic; the caller sleeps.

use std::time::Duration;

/// Falling further behind than this (a slow machine, a long pause) starts the pacing
/// again from the current frame rather than rushing to catch up.
const MAX_LAG: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone)]
pub struct Pacer {
    /// Wall time and media time of the frame pacing started from.
    anchor: Option<(Duration, f64)>,
    lag_events: u64,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer::default()
    }

    /// How long to wait before releasing the frame at `timestamp` (seconds), given the
    /// wall clock `now` (time since any fixed start).
    pub fn delay(&mut self, timestamp: f64, now: Duration) -> Duration {
        let (wall, media) = *self.anchor.get_or_insert((now, timestamp));
        if timestamp < media {
            self.anchor = Some((now, timestamp));
            return Duration::ZERO;
        }
        // A timestamp that is not a number, or too far ahead for a `Duration` (a damaged
        // file's), starts the pacing again from this frame.
        let Some(due) = Duration::try_from_secs_f64(timestamp - media)
            .ok()
            .and_then(|ahead| wall.checked_add(ahead))
        else {
            self.anchor = Some((now, timestamp));
            return Duration::ZERO;
        };
        if now > due + MAX_LAG {
            self.lag_events += 1;
            self.anchor = Some((now, timestamp));
            return Duration::ZERO;
        }
        due.saturating_sub(now)
    }

    /// How often pacing fell so far behind that it had to start again.
    pub fn lag_events(&self) -> u64 {
        self.lag_events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn timestamps_out_of_range_restart_pacing_rather_than_panic() {
        let mut pacer = Pacer::new();
        assert_eq!(pacer.delay(1.0, ms(0)), Duration::ZERO);
        for odd in [f64::NAN, 1e300, f64::INFINITY] {
            assert_eq!(pacer.delay(odd, ms(10)), Duration::ZERO);
        }
        assert_eq!(pacer.delay(2.0, ms(20)), Duration::ZERO);
        assert_eq!(pacer.delay(2.5, ms(20)), ms(500));
    }

    #[test]
    fn releases_frames_at_their_time() {
        let mut pacer = Pacer::new();
        assert_eq!(pacer.delay(10.0, ms(5000)), Duration::ZERO);
        assert_eq!(pacer.delay(10.5, ms(5000)), ms(500));
        assert_eq!(pacer.delay(10.5, ms(5400)), ms(100));
        assert_eq!(pacer.delay(11.0, ms(6200)), Duration::ZERO);
    }

    #[test]
    fn a_long_lag_restarts_instead_of_rushing() {
        let mut pacer = Pacer::new();
        pacer.delay(0.0, ms(0));
        assert_eq!(pacer.delay(1.0, ms(3000)), Duration::ZERO);
        assert_eq!(pacer.lag_events(), 1);
        assert_eq!(pacer.delay(1.5, ms(3000)), ms(500));
    }

    #[test]
    fn a_small_lag_catches_up_on_the_same_schedule() {
        let mut pacer = Pacer::new();
        pacer.delay(0.0, ms(0));
        // 600 ms late: released at once, and the schedule is kept.
        assert_eq!(pacer.delay(0.5, ms(1100)), Duration::ZERO);
        assert_eq!(pacer.delay(1.0, ms(1100)), Duration::ZERO);
        assert_eq!(pacer.delay(1.5, ms(1100)), ms(400));
        assert_eq!(pacer.lag_events(), 0);
    }

    #[test]
    fn a_forward_jump_is_waited_for_then_paced_without_a_burst() {
        let mut pacer = Pacer::new();
        pacer.delay(0.0, ms(0));
        assert_eq!(pacer.delay(0.04, ms(40)), Duration::ZERO);
        assert_eq!(pacer.delay(10.0, ms(40)), ms(9960));
        assert_eq!(pacer.delay(10.04, ms(10_000)), ms(40));
        assert_eq!(pacer.delay(10.08, ms(10_000)), ms(80));
        assert_eq!(pacer.lag_events(), 0);
    }

    #[test]
    fn loop_passes_on_one_timeline_are_paced_evenly() {
        // A 5 s clip at 25 fps played three times: the offset keeps the timeline going.
        let mut pacer = Pacer::new();
        let mut now = Duration::ZERO;
        for frame in 0..375u64 {
            let timestamp = frame as f64 * 0.04;
            now += pacer.delay(timestamp, now);
            assert_eq!(now, ms(frame * 40), "frame {frame}");
        }
        assert_eq!(pacer.lag_events(), 0);
    }

    #[test]
    fn a_backward_timestamp_restarts() {
        let mut pacer = Pacer::new();
        pacer.delay(100.0, ms(0));
        assert_eq!(pacer.delay(1.0, ms(10)), Duration::ZERO);
        assert_eq!(pacer.delay(2.0, ms(10)), ms(1000));
    }
}
