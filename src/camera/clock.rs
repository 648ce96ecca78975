//! Time as the camera worker sees it, behind a trait so that the retry loop and
//! realtime pacing run in tests on a clock that only moves when told to.

use std::time::{Duration, Instant};

use crate::stop::StopToken;

pub trait Clock: Send + Sync {
    /// Monotonic time.
    fn now(&self) -> Instant;

    /// Waits `duration` unless `stop` is set first; `false` when stopped.
    fn sleep(&self, duration: Duration, stop: &StopToken) -> bool;
}

/// The real clock: sleeps wake at once on a stop.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration, stop: &StopToken) -> bool {
        stop.sleep(duration)
    }
}

#[cfg(test)]
pub use fake::FakeClock;

#[cfg(test)]
mod fake {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A clock whose time moves only by `advance` and by sleeping, which returns at
    /// once (or `false` when stopped). It records every sleep.
    #[derive(Clone)]
    pub struct FakeClock {
        inner: Arc<Mutex<Inner>>,
    }

    struct Inner {
        now: Instant,
        sleeps: Vec<Duration>,
    }

    impl Default for FakeClock {
        fn default() -> Self {
            FakeClock {
                inner: Arc::new(Mutex::new(Inner {
                    now: Instant::now(),
                    sleeps: Vec::new(),
                })),
            }
        }
    }

    impl FakeClock {
        pub fn new() -> FakeClock {
            FakeClock::default()
        }

        pub fn advance(&self, by: Duration) {
            self.inner.lock().unwrap().now += by;
        }

        /// Every sleep so far, in order.
        pub fn sleeps(&self) -> Vec<Duration> {
            self.inner.lock().unwrap().sleeps.clone()
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.inner.lock().unwrap().now
        }

        fn sleep(&self, duration: Duration, stop: &StopToken) -> bool {
            self.inner.lock().unwrap().sleeps.push(duration);
            if stop.is_stopped() {
                return false;
            }
            self.advance(duration);
            true
        }
    }
}
