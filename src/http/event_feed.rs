//! The daemon's one sequence of live events: a thread numbers the cameras' events as
//! they are published, keeps the most recent ones for replay, and offers each to every
//! client's bounded queue. A client whose queue is full is disconnected, so a client
//! that stops reading never holds up a camera, this thread or another client.
//!
//! Nothing here takes a lock a camera needs: cameras only publish on the registry's
//! broadcast channel, which never blocks; the feed's own lock is shared with the
//! clients' handlers, never with a camera.

use std::collections::{HashSet, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use super::live_events::{wire_event, WireEvent};
use crate::camera::CameraEvent;
use crate::metrics::EventClients;
use crate::source::CameraId;

/// Recent events kept for clients that reconnect with the last id they saw. Events
/// are a few hundred bytes: this is a few hundred KiB, and holds several seconds of
/// frame events from a dozen cameras, or hours of state changes.
const RECENT_EVENTS: usize = 1024;

/// Events queued for one client beyond what its connection already buffers. A client
/// that reads keeps it near empty; one that does not fills it within seconds once its
/// socket is full, and is then disconnected.
const CLIENT_QUEUE: usize = 256;

/// What one client asked to see.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `None`: every camera.
    pub cameras: Option<HashSet<CameraId>>,
    /// Whether `frame` events are sent.
    pub frames: bool,
}

impl Filter {
    fn wants(&self, event: &WireEvent) -> bool {
        (self.frames || !event.is_frame())
            && self
                .cameras
                .as_ref()
                .is_none_or(|c| c.contains(&event.camera))
    }
}

struct Client {
    key: u64,
    filter: Filter,
    queue: mpsc::Sender<Arc<WireEvent>>,
    /// The client's connection, to close it even while its response is not being
    /// written (a client that does not read).
    socket: Option<Arc<OwnedFd>>,
}

#[derive(Default)]
struct Shared {
    next_id: u64,
    next_key: u64,
    recent: VecDeque<Arc<WireEvent>>,
    clients: Vec<Client>,
}

pub struct EventFeed {
    shared: Mutex<Shared>,
    counts: Arc<EventClients>,
}

/// One client's events: first `replay` (what it missed, from the recent events), then
/// `live`, without a gap or a duplicate between them. Dropping it unsubscribes.
pub struct Subscription {
    pub replay: Vec<Arc<WireEvent>>,
    pub live: mpsc::Receiver<Arc<WireEvent>>,
    key: u64,
    feed: Arc<EventFeed>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.shared().clients.retain(|c| c.key != self.key);
        self.feed.counts.disconnected();
    }
}

impl EventFeed {
    /// Starts the `events` thread, which reads `events` for as long as it is open.
    pub fn start(
        events: broadcast::Receiver<CameraEvent>,
        counts: Arc<EventClients>,
    ) -> std::io::Result<Arc<EventFeed>> {
        let feed = Arc::new(EventFeed {
            shared: Mutex::new(Shared {
                next_id: 1,
                ..Shared::default()
            }),
            counts,
        });
        let running = Arc::clone(&feed);
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || running.run(events))?;
        Ok(feed)
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, mut events: broadcast::Receiver<CameraEvent>) {
        loop {
            match events.blocking_recv() {
                Ok(event) => self.publish(&event),
                // The feed fell behind the cameras and lost `missed` events: the ids
                // skip them, and every client is disconnected so that it reconnects
                // and reads the cameras' status again rather than trusting a stream
                // with a hole in it.
                Err(RecvError::Lagged(missed)) => {
                    log::warn!(
                        "live events: {missed} camera events lost; disconnecting event clients"
                    );
                    let mut shared = self.shared();
                    shared.next_id += missed;
                    for client in shared.clients.drain(..) {
                        disconnect(&client);
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Numbers `event`, keeps it and offers it to every client that wants it.
    fn publish(&self, event: &CameraEvent) {
        let mut shared = self.shared();
        let Some(wire) = wire_event(shared.next_id, event) else {
            return;
        };
        shared.next_id += 1;
        let wire = Arc::new(wire);
        if shared.recent.len() == RECENT_EVENTS {
            shared.recent.pop_front();
        }
        shared.recent.push_back(Arc::clone(&wire));
        shared.clients.retain(|client| {
            if !client.filter.wants(&wire) {
                return true;
            }
            match client.queue.try_send(Arc::clone(&wire)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    log::info!(
                        "live events: a client that did not read {CLIENT_QUEUE} events is disconnected"
                    );
                    self.counts.dropped();
                    disconnect(client);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// A new client: what it missed after `after` (an id it saw), then every event
    /// from now on, both as `filter` says.
    pub fn subscribe(
        self: &Arc<Self>,
        filter: Filter,
        after: Option<u64>,
        socket: Option<Arc<OwnedFd>>,
    ) -> Subscription {
        let (queue, live) = mpsc::channel(CLIENT_QUEUE);
        let mut shared = self.shared();
        let replay = match after {
            Some(after) => shared
                .recent
                .iter()
                .filter(|e| e.id > after && filter.wants(e))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let key = shared.next_key;
        shared.next_key += 1;
        shared.clients.push(Client {
            key,
            filter,
            queue,
            socket,
        });
        drop(shared);
        self.counts.connected();
        Subscription {
            replay,
            live,
            key,
            feed: Arc::clone(self),
        }
    }
}

/// Closes the client's connection: its handler's writes fail and it ends. Without a
/// socket, dropping its queue ends its stream once it is next written.
fn disconnect(client: &Client) {
    if let Some(socket) = &client.socket {
        // An error means the connection is already gone.
        let _ = rustix::net::shutdown(socket.as_ref(), rustix::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::Change;
    use std::time::SystemTime;

    fn event(camera: &str, change: Change) -> CameraEvent {
        CameraEvent {
            camera: CameraId::parse(camera).unwrap(),
            at: SystemTime::now(),
            change,
        }
    }

    fn feed() -> Arc<EventFeed> {
        Arc::new(EventFeed {
            shared: Mutex::new(Shared {
                next_id: 1,
                ..Shared::default()
            }),
            counts: Arc::new(EventClients::default()),
        })
    }

    fn ids(events: &[Arc<WireEvent>]) -> Vec<u64> {
        events.iter().map(|e| e.id).collect()
    }

    fn drain(live: &mut mpsc::Receiver<Arc<WireEvent>>) -> Vec<Arc<WireEvent>> {
        std::iter::from_fn(|| live.try_recv().ok()).collect()
    }

    #[test]
    fn a_reconnecting_client_gets_what_it_missed_then_live_events() {
        let feed = feed();
        for _ in 0..3 {
            feed.publish(&event("a", Change::Connecting));
        }
        // Not streamed: takes no id.
        feed.publish(&event("a", Change::StopRequested));
        let mut late = feed.subscribe(Filter::default(), Some(1), None);
        feed.publish(&event("a", Change::Connected { live: true }));
        assert_eq!(ids(&late.replay), [2, 3]);
        assert_eq!(ids(&drain(&mut late.live)), [4]);
        let fresh = feed.subscribe(Filter::default(), None, None);
        assert!(fresh.replay.is_empty());
    }

    #[test]
    fn clients_see_only_their_cameras_and_frames_when_asked() {
        let feed = feed();
        let only_b = Filter {
            cameras: Some([CameraId::parse("b").unwrap()].into()),
            frames: false,
        };
        let mut b = feed.subscribe(only_b, None, None);
        let with_frames = Filter {
            frames: true,
            ..Filter::default()
        };
        let mut all = feed.subscribe(with_frames, None, None);
        let frame = Change::FrameWritten {
            seq: 1,
            pts: 0.0,
            captured_at: SystemTime::now(),
            bytes: 1,
        };
        feed.publish(&event("a", Change::Connecting));
        feed.publish(&event("b", frame));
        feed.publish(&event("b", Change::Connecting));
        assert_eq!(ids(&drain(&mut b.live)), [3]);
        assert_eq!(ids(&drain(&mut all.live)), [1, 2, 3]);
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_and_others_go_on() {
        let feed = feed();
        let stalled = feed.subscribe(Filter::default(), None, None);
        let mut reader = feed.subscribe(Filter::default(), None, None);
        assert_eq!(feed.counts.connected_now(), 2);
        for _ in 0..=CLIENT_QUEUE {
            feed.publish(&event("a", Change::Connecting));
            assert_eq!(drain(&mut reader.live).len(), 1);
        }
        assert_eq!(feed.counts.dropped_total(), 1);
        assert_eq!(feed.shared().clients.len(), 1);
        drop(stalled);
        assert_eq!(feed.counts.connected_now(), 1);
    }

    #[test]
    fn only_the_most_recent_events_are_kept() {
        let feed = feed();
        for _ in 0..RECENT_EVENTS + 5 {
            feed.publish(&event("a", Change::Connecting));
        }
        let late = feed.subscribe(Filter::default(), Some(0), None);
        assert_eq!(late.replay.len(), RECENT_EVENTS);
        assert_eq!(late.replay[0].id, 6);
    }
}
