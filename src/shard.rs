//! Several replicas sharing the cameras: which replica owns a camera id, and where each
//! replica is reached. Pure logic, no I/O.
//!
//! Ownership is rendezvous (highest-random-weight) hashing: every replica `i` of `n`
//! gets the weight `weight(id, i)` and the highest one owns the camera (a tie goes to
//! the lower index). Going from `n` to `n + 1` replicas, a camera moves only when the
//! new replica's weight beats all others, about `1 / (n + 1)` of them, and it moves to
//! the new replica; nothing else changes place.
//!
//! The weight must be the same on every replica, whatever build or version: it is
//! defined here and never changes (a unit test pins its values):
//!
//! ```text
//! weight(id, i) = fmix64(fnv1a64(utf8(id) ++ [0x00] ++ u32_le(i)))
//! ```
//!
//! with FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) and the 64-bit
//! finalizer of MurmurHash3 (`fmix64`), which gives FNV's weak low bits an avalanche.

use std::fmt;

/// The most replicas a cluster may have.
pub const MAX_REPLICAS: usize = 1024;
/// The placeholder of `PEER_URL_TEMPLATE`.
pub const INDEX_PLACEHOLDER: &str = "{index}";

/// This replica's place in a cluster of several: its index and how each replica is
/// reached. A daemon alone has none.
///
/// An index at or beyond the number of replicas is a replica that is leaving (a
/// StatefulSet scaled down in two steps, docs/scaling.md): it owns no camera, hands
/// its saved ones over and forwards every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    /// Base URLs (`http://host:port`, no trailing slash), one per replica that owns
    /// cameras, by index.
    peers: Vec<String>,
}

/// Why a cluster description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// A peer URL that is not `http://host[:port]`.
    BadPeerUrl(String),
    /// `PEER_URLS` names a different number of replicas than `SHARD_COUNT`.
    PeerCount { urls: usize, count: usize },
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardError::BadPeerUrl(url) => write!(
                f,
                "peer URL {url:?} is not http://host[:port] (without a path)"
            ),
            ShardError::PeerCount { urls, count } => {
                write!(f, "{urls} peer URLs for {count} replicas")
            }
        }
    }
}

impl Shard {
    /// Replica `index` of `peers.len()`, each peer a base URL.
    pub fn new(index: usize, peers: Vec<String>) -> Result<Shard, ShardError> {
        let peers = peers
            .iter()
            .map(|url| base_url(url).ok_or_else(|| ShardError::BadPeerUrl(url.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Shard { index, peers })
    }

    /// The peers from a template such as `http://video-pipeline-{index}.video-pipeline:8002`.
    pub fn from_template(index: usize, count: usize, template: &str) -> Result<Shard, ShardError> {
        if !template.contains(INDEX_PLACEHOLDER) {
            return Err(ShardError::BadPeerUrl(template.to_owned()));
        }
        let peers = (0..count)
            .map(|i| template.replace(INDEX_PLACEHOLDER, &i.to_string()))
            .collect();
        Shard::new(index, peers)
    }

    /// The peers from a comma-separated list in index order.
    pub fn from_list(index: usize, count: usize, list: &str) -> Result<Shard, ShardError> {
        let peers: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        if peers.len() != count {
            return Err(ShardError::PeerCount {
                urls: peers.len(),
                count,
            });
        }
        Shard::new(index, peers)
    }

    /// This replica's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many replicas share the cameras.
    pub fn count(&self) -> usize {
        self.peers.len()
    }

    /// Whether this replica is beyond the count: it owns nothing and is to go away.
    pub fn is_leaving(&self) -> bool {
        self.index >= self.count()
    }

    /// The replica that owns `camera_id`.
    pub fn owner(&self, camera_id: &str) -> usize {
        owner(camera_id, self.count())
    }

    pub fn owns(&self, camera_id: &str) -> bool {
        self.owner(camera_id) == self.index
    }

    /// The base URL of replica `index` (`http://host:port`).
    pub fn peer_url(&self, index: usize) -> &str {
        &self.peers[index]
    }

    /// Every other replica, with its base URL.
    pub fn others(&self) -> impl Iterator<Item = (usize, &str)> {
        self.peers
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != self.index)
            .map(|(i, url)| (i, url.as_str()))
    }
}

/// `url` without a trailing slash, when it is `http://` with a host and no path.
fn base_url(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    let authority = url.strip_prefix("http://")?;
    let fine = !authority.is_empty()
        && !authority.starts_with(':')
        && authority.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        });
    fine.then(|| url.to_owned())
}

/// The replica of `replicas` that owns `camera_id` (0 when there is one or none).
pub fn owner(camera_id: &str, replicas: usize) -> usize {
    let mut best = (0, 0);
    for replica in 0..replicas {
        let weight = weight(camera_id, replica);
        if replica == 0 || weight > best.1 {
            best = (replica, weight);
        }
    }
    best.0
}

/// The camera's weight on a replica; see the module's documentation.
pub fn weight(camera_id: &str, replica: usize) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let index = u32::try_from(replica).unwrap_or(u32::MAX).to_le_bytes();
    let bytes = camera_id.bytes().chain([0]).chain(index);
    let hash = bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    fmix64(hash)
}

/// MurmurHash3's 64-bit finalizer.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The ordinal of a StatefulSet pod name (`video-pipeline-2` → 2).
pub fn pod_ordinal(pod_name: &str) -> Option<usize> {
    let (name, ordinal) = pod_name.trim().rsplit_once('-')?;
    let digits_only = !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit());
    if name.is_empty() || !digits_only {
        return None;
    }
    ordinal.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> impl Iterator<Item = String> {
        (0..10_000).map(|n| format!("cam-{n}"))
    }

    #[test]
    fn the_weight_is_the_documented_function_forever() {
        // Every replica of a cluster must agree, whatever its build: these values were
        // computed apart from this code, from the formula in the module documentation.
        assert_eq!(weight("cam-1", 0), 0xea59_11d0_3d61_1c59);
        assert_eq!(weight("cam-1", 1), 0xe26a_62cd_81bd_0405);
        assert_eq!(weight("front-door", 2), 0x06fa_9bea_b037_6880);
    }

    #[test]
    fn ownership_is_stable_and_in_range() {
        for n in [1, 2, 3, 7, 16] {
            for id in ids().take(500) {
                let first = owner(&id, n);
                assert!(first < n);
                assert_eq!(owner(&id, n), first);
            }
        }
        assert_eq!(owner("anything", 1), 0);
        assert_eq!(owner("anything", 0), 0);
    }

    #[test]
    fn ownership_is_balanced_within_ten_percent() {
        for n in [3, 7, 16] {
            let mut counts = vec![0usize; n];
            for id in ids() {
                counts[owner(&id, n)] += 1;
            }
            let mean = 10_000.0 / n as f64;
            for (replica, &count) in counts.iter().enumerate() {
                let off = (count as f64 - mean).abs() / mean;
                assert!(
                    off <= 0.10,
                    "{n} replicas: replica {replica} owns {count} of 10000 ({counts:?})"
                );
            }
        }
    }

    #[test]
    fn one_more_replica_moves_about_its_share_and_only_to_itself() {
        for n in [2, 3, 7, 16] {
            let mut moved = 0usize;
            for id in ids() {
                let (before, after) = (owner(&id, n), owner(&id, n + 1));
                if before != after {
                    assert_eq!(after, n, "{id} moved between old replicas");
                    moved += 1;
                }
            }
            let expected = 10_000.0 / (n + 1) as f64;
            let off = (moved as f64 - expected).abs() / expected;
            assert!(
                off <= 0.10,
                "{n} -> {}: {moved} moved, about {expected:.0} expected",
                n + 1
            );
        }
    }

    #[test]
    fn pod_names_give_their_ordinal() {
        assert_eq!(pod_ordinal("video-pipeline-0"), Some(0));
        assert_eq!(pod_ordinal("video-pipeline-12"), Some(12));
        assert_eq!(pod_ordinal("web-3"), Some(3));
        for bad in [
            "video-pipeline",
            "video-pipeline-",
            "-3",
            "pipeline-x1",
            "pipeline-1a",
            "",
        ] {
            assert_eq!(pod_ordinal(bad), None, "{bad}");
        }
    }

    #[test]
    fn peers_from_a_template_or_a_list() {
        let shard =
            Shard::from_template(1, 3, "http://video-pipeline-{index}.video-pipeline:8002/")
                .unwrap();
        assert_eq!(shard.count(), 3);
        assert_eq!(shard.index(), 1);
        assert_eq!(
            shard.peer_url(2),
            "http://video-pipeline-2.video-pipeline:8002"
        );
        let others: Vec<usize> = shard.others().map(|(i, _)| i).collect();
        assert_eq!(others, [0, 2]);
        let list = Shard::from_list(0, 2, "http://127.0.0.1:8002, http://127.0.0.1:8003").unwrap();
        assert_eq!(list.peer_url(1), "http://127.0.0.1:8003");
        assert_eq!(
            Shard::from_list(0, 3, "http://a:1,http://b:2"),
            Err(ShardError::PeerCount { urls: 2, count: 3 })
        );
        assert!(matches!(
            Shard::from_template(0, 2, "http://video-pipeline:8002"),
            Err(ShardError::BadPeerUrl(_))
        ));
        for bad in ["https://a:1", "a:1", "http://", "http://a/x", "http://a b"] {
            assert!(
                matches!(
                    Shard::new(0, vec![bad.into()]),
                    Err(ShardError::BadPeerUrl(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_replica_beyond_the_count_owns_nothing_and_reaches_every_other() {
        let leaving = Shard::from_list(2, 2, "http://a:1,http://b:1").unwrap();
        assert!(leaving.is_leaving());
        assert!(ids().take(1000).all(|id| !leaving.owns(&id)));
        let others: Vec<usize> = leaving.others().map(|(i, _)| i).collect();
        assert_eq!(others, [0, 1]);
        assert!(!Shard::from_list(1, 2, "http://a:1,http://b:1")
            .unwrap()
            .is_leaving());
    }
}
