//! A stop request that works from blocking threads (libav's interrupt callback, a
//! backoff sleep) and from async code alike.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct StopToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stopped: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl StopToken {
    pub fn new() -> StopToken {
        StopToken::default()
    }

    /// Asks every holder to stop; wakes sleepers at once.
    pub fn stop(&self) {
        let _guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// Sleeps for `duration` unless a stop comes first. Returns `false` when stopped.
    pub fn sleep(&self, duration: Duration) -> bool {
        let guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let (_guard, _) = self
            .inner
            .wake
            .wait_timeout_while(guard, duration, |_| !self.is_stopped())
            .unwrap_or_else(|e| e.into_inner());
        !self.is_stopped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn stop_wakes_a_sleeper() {
        let token = StopToken::new();
        let sleeper = token.clone();
        let started = Instant::now();
        let handle = std::thread::spawn(move || sleeper.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        token.stop();
        assert!(!handle.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn sleep_without_stop_runs_out() {
        assert!(StopToken::new().sleep(Duration::from_millis(1)));
    }
}
