//! How long a camera's frames take to decode and to encode, as histograms that the
//! camera and encoder threads fill with a couple of relaxed atomic additions per frame
//! (no lock), and that the metrics read at scrape time. They belong to the camera's
//! session, so they go when the camera goes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, from a small frame's JPEG (under a millisecond) to a
/// 4K frame decoded in software on a busy machine.
pub const BUCKETS: [Duration; 11] = [
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// A histogram of durations with the fixed [`BUCKETS`].
#[derive(Debug, Default)]
pub struct DurationHistogram {
    /// Observations per bucket (not cumulative); the last one is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram's values at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Seconds observed in all.
    pub sum: f64,
    pub count: u64,
    /// (upper bound in seconds, observations in this bucket only); the last bound is
    /// infinite.
    pub buckets: Vec<(f64, u64)>,
}

impl DurationHistogram {
    pub fn observe(&self, took: Duration) {
        let bucket = BUCKETS
            .iter()
            .position(|bound| took <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The count is the sum of the buckets, so the two always agree; the sum may lag
    /// an observation made while this runs.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = BUCKETS
            .iter()
            .map(Duration::as_secs_f64)
            .chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.counts)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
            count: buckets.iter().map(|(_, count)| count).sum(),
            buckets,
        }
    }
}

/// A camera's timings.
#[derive(Debug, Default)]
pub struct CameraTimings {
    /// Time in libav's decoder per decoded frame (not waiting for the input).
    pub decode: DurationHistogram,
    /// Time in the JPEG encoder per written frame.
    pub encode: DurationHistogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_add_up() {
        let histogram = DurationHistogram::default();
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(7));
        histogram.observe(Duration::from_secs(3));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum - 3.0083).abs() < 1e-9, "{}", snapshot.sum);
        let counts: Vec<u64> = snapshot.buckets.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(snapshot.buckets[1].0, 0.001);
        assert_eq!(snapshot.buckets[11].0, f64::INFINITY);
    }
}
