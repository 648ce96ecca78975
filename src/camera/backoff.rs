//! Delays between reconnection attempts: exponential with jitter, capped, and reset
//! once a connection has been healthy for a while. Pure logic; the caller sleeps.

use std::time::Duration;

/// Streaming this long without a failure means the next failure starts from scratch.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Backoff {
        Backoff {
            initial,
            cap: cap.max(initial),
            failures: 0,
        }
    }

    /// The delay before the next attempt. `jitter` in 0..1 spreads the delay over
    /// its upper half, so cameras that failed together do not retry together.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let exponent = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let full = self.initial.saturating_mul(1u32 << exponent).min(self.cap);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The longest delay, for failures that retrying soon cannot fix.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// Called after a connection streamed for `healthy_for`.
    pub fn record_success(&mut self, healthy_for: Duration) {
        if healthy_for >= HEALTHY_AFTER {
            self.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Default for Backoff {
        /// The daemon's defaults.
        fn default() -> Self {
            Backoff::new(
                Duration::from_secs_f64(crate::config::DEFAULT_RECONNECT_INITIAL_SECONDS),
                Duration::from_secs_f64(crate::config::DEFAULT_RECONNECT_MAX_SECONDS),
            )
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay(1.0)).collect();
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert_eq!(delays[2], Duration::from_secs(2));
        assert_eq!(delays[6], Duration::from_secs(30));
        assert_eq!(delays[9], Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let mut low = Backoff::default();
        let mut high = Backoff::default();
        assert_eq!(low.next_delay(0.0), Duration::from_millis(250));
        assert_eq!(high.next_delay(1.0), Duration::from_millis(500));
    }

    #[test]
    fn resets_only_after_a_healthy_minute() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay(1.0);
        }
        backoff.record_success(Duration::from_secs(5));
        assert_eq!(backoff.next_delay(1.0), Duration::from_secs(16));
        backoff.record_success(Duration::from_secs(61));
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(500));
    }

    #[test]
    fn a_short_initial_delay_grows_to_a_short_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(3));
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.next_delay(1.0).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3000, 3000, 3000]);
        assert_eq!(backoff.cap(), Duration::from_secs(3));
    }

    /// Attempts that fit in `window` when every attempt fails at once (fake time).
    fn attempts_within(backoff: &mut Backoff, jitter: f64, window: Duration) -> u32 {
        let mut now = Duration::ZERO;
        let mut attempts = 0;
        while now < window {
            attempts += 1;
            now += backoff.next_delay(jitter);
        }
        attempts
    }

    #[test]
    fn exponential_retries_start_fast_and_spread_out() {
        let window = Duration::from_secs(10);
        let new = || Backoff::new(Duration::from_millis(100), Duration::from_secs(3));
        // Delays of at most 0.1, 0.2, 0.4, 0.8, 1.6, 3, 3 s: 8 attempts, 5 of them in the
        // first 1.6 s; with the least jitter, more.
        assert_eq!(attempts_within(&mut new(), 1.0, window), 8);
        assert_eq!(attempts_within(&mut new(), 0.0, window), 11);
        assert_eq!(
            attempts_within(&mut new(), 1.0, Duration::from_millis(1600)),
            5
        );
    }

    #[test]
    fn a_cap_below_the_initial_delay_is_raised_to_it() {
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(backoff.cap(), Duration::from_secs(5));
        assert_eq!(backoff.next_delay(1.0), Duration::from_secs(5));
        assert_eq!(backoff.next_delay(1.0), Duration::from_secs(5));
    }

    #[test]
    fn jitter_outside_zero_to_one_is_clamped() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.next_delay(7.0), Duration::from_millis(500));
        assert_eq!(backoff.next_delay(-3.0), Duration::from_millis(500));
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let mut backoff = Backoff::default();
        for _ in 0..10_000 {
            assert!(backoff.next_delay(0.5) <= Duration::from_secs(30));
        }
    }
}
