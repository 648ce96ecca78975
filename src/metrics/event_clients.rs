//! Clients of the live event streams (`events/`, `ws/`): how many are connected and
//! how many were dropped for not reading. The HTTP layer counts, the scrape reads.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct EventClients {
    connected: AtomicU64,
    dropped: AtomicU64,
}

impl EventClients {
    pub fn connected(&self) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn disconnected(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    /// A client was disconnected because its queue was full.
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connected_now(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
