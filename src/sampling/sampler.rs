//! Which decoded frames become output frames: pure timing logic, no clock, no libav.
//!
//! Sample `k` is the first decoded frame whose timestamp is at or after
//! `origin + k / fps`, where `origin` is the first frame's timestamp. A frame is never
//! used twice, so asking for more frames than the source has yields every source frame.

use super::{Fps, FrameDemand, EPSILON_SECONDS};

/// A backwards jump larger than this (and larger than one sample interval) is a clock
/// reset, not reordering: sampling starts again from the new timestamp.
const BACKWARD_JUMP_SECONDS: f64 = 1.0;

#[derive(Debug, Clone)]
pub struct Sampler {
    fps: f64,
    origin: Option<f64>,
    next_index: u64,
    last_timestamp: Option<f64>,
}

impl Sampler {
    pub fn new(fps: Fps) -> Sampler {
        Sampler {
            fps: fps.get(),
            origin: None,
            next_index: 0,
            last_timestamp: None,
        }
    }

    /// Decides whether the frame at `timestamp` (seconds) is the next sample.
    pub fn offer(&mut self, timestamp: f64) -> bool {
        let jumped_back = self
            .last_timestamp
            .is_some_and(|last| last - timestamp > BACKWARD_JUMP_SECONDS.max(1.0 / self.fps));
        self.last_timestamp = Some(timestamp);
        if jumped_back || self.origin.is_none() {
            self.origin = Some(timestamp);
            self.next_index = 1;
            return true;
        }
        let origin = self.origin.unwrap_or(timestamp);
        if timestamp + EPSILON_SECONDS < self.due_at(origin, self.next_index) {
            return false;
        }
        let elapsed_samples = ((timestamp - origin) * self.fps + EPSILON_SECONDS).floor();
        self.next_index = elapsed_samples.max(0.0) as u64 + 1;
        true
    }

    /// Moves the sampler onto a timeline that runs `by` seconds behind the old one
    /// (the next pass of a looped file starts again at its own start): what was due
    /// at `t` is now due at `t - by`.
    pub fn rebase(&mut self, by: f64) {
        if let Some(origin) = self.origin.as_mut() {
            *origin -= by;
        }
        if let Some(last) = self.last_timestamp.as_mut() {
            *last -= by;
        }
    }

    /// The timestamp at or after which the next sample is due; `None` before the first
    /// frame, when any frame is due.
    pub fn next_due(&self) -> Option<f64> {
        self.origin
            .map(|origin| self.due_at(origin, self.next_index))
    }

    fn is_clock_reset(&self, last: f64, timestamp: f64) -> bool {
        last - timestamp > BACKWARD_JUMP_SECONDS.max(1.0 / self.fps)
    }

    fn due_at(&self, origin: f64, index: u64) -> f64 {
        origin + index as f64 / self.fps
    }
}

/// The sampler knows which frames it could take, so the decoder can leave the rest.
impl FrameDemand for Sampler {
    fn could_take(&self, timestamp: f64) -> bool {
        match (self.origin, self.last_timestamp) {
            (Some(origin), Some(last)) if !self.is_clock_reset(last, timestamp) => {
                timestamp + EPSILON_SECONDS >= self.due_at(origin, self.next_index)
            }
            _ => true,
        }
    }

    fn next_due(&self) -> Option<f64> {
        Sampler::next_due(self)
    }

    fn could_take_after(&self, earlier: &[f64], timestamp: f64) -> bool {
        let mut after = self.clone();
        for &shown in earlier {
            after.offer(shown);
        }
        after.could_take(timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(fps: f64, timestamps: impl IntoIterator<Item = f64>) -> Vec<f64> {
        let mut sampler = Sampler::new(Fps::new(fps).unwrap());
        timestamps
            .into_iter()
            .filter(|&t| sampler.offer(t))
            .collect()
    }

    fn frames(rate: f64, seconds: f64) -> Vec<f64> {
        (0..(rate * seconds) as usize)
            .map(|i| i as f64 / rate)
            .collect()
    }

    #[test]
    fn one_per_second_from_thirty() {
        let out = sampled(1.0, frames(30.0, 60.0));
        assert_eq!(out.len(), 60);
        for (k, t) in out.iter().enumerate() {
            assert!((t - k as f64).abs() < 1e-9, "sample {k} at {t}");
        }
    }

    #[test]
    fn fractional_rates() {
        assert_eq!(sampled(0.5, frames(30.0, 60.0)).len(), 30);
        assert_eq!(sampled(0.2, frames(25.0, 60.0)).len(), 12);
    }

    #[test]
    fn faster_than_source_gives_every_frame_once() {
        let source = frames(25.0, 4.0);
        assert_eq!(sampled(60.0, source.clone()), source);
        assert_eq!(sampled(25.0, source.clone()), source);
    }

    #[test]
    fn origin_is_the_first_timestamp() {
        let out = sampled(1.0, frames(10.0, 5.0).into_iter().map(|t| t + 100.05));
        assert_eq!(out.len(), 5);
        assert!((out[0] - 100.05).abs() < 1e-9);
        assert!((out[1] - 101.05).abs() < 1e-9);
    }

    #[test]
    fn uneven_frames_pick_the_first_at_or_after_due() {
        let out = sampled(1.0, [0.0, 0.7, 1.3, 1.9, 2.0, 2.1, 4.5, 4.6]);
        // due 0 → 0.0, due 1 → 1.3, due 2 → 2.0, due 3 → 4.5 (then due 5: none).
        assert_eq!(out, vec![0.0, 1.3, 2.0, 4.5]);
    }

    #[test]
    fn a_gap_does_not_cause_a_burst() {
        let mut timestamps = frames(30.0, 2.0);
        timestamps.extend(frames(30.0, 2.0).into_iter().map(|t| t + 10.0));
        let out = sampled(1.0, timestamps);
        assert_eq!(out, vec![0.0, 1.0, 10.0, 11.0]);
    }

    #[test]
    fn clock_reset_reanchors() {
        let mut timestamps: Vec<f64> = frames(30.0, 3.0).into_iter().map(|t| t + 500.0).collect();
        timestamps.extend(frames(30.0, 3.0));
        let out = sampled(1.0, timestamps);
        assert_eq!(out, vec![500.0, 501.0, 502.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn a_33_bit_timestamp_wrap_reanchors_without_a_gap_or_a_burst() {
        // MPEG-TS timestamps wrap after 2^33 ticks of 90 kHz, about 26.5 hours.
        let wrap = (1u64 << 33) as f64 / 90_000.0;
        let mut timestamps: Vec<f64> = frames(25.0, 5.0)
            .into_iter()
            .map(|t| t + wrap - 5.0)
            .collect();
        timestamps.extend(frames(25.0, 5.0));
        let out = sampled(1.0, timestamps);
        assert_eq!(out.len(), 10, "{out:?}");
        // Unwrapped, the samples are one second apart throughout.
        let unwrapped: Vec<f64> = out
            .iter()
            .map(|&t| if t < 1000.0 { t + wrap } else { t })
            .collect();
        for pair in unwrapped.windows(2) {
            assert!(((pair[1] - pair[0]) - 1.0).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn a_forward_jump_of_an_hour_gives_no_burst() {
        let mut timestamps = frames(25.0, 3.0);
        timestamps.extend(frames(25.0, 3.0).into_iter().map(|t| t + 3600.0));
        let out = sampled(2.0, timestamps);
        assert_eq!(out.len(), 12, "{out:?}");
        assert_eq!(out[6], 3600.0);
        // On the 0.04 s frame grid a 0.5 s step is 0.48 or 0.52 s, never less.
        for pair in out.windows(2) {
            assert!(pair[1] - pair[0] >= 0.48 - 1e-9, "{out:?}");
        }
    }

    #[test]
    fn next_due_follows_the_new_origin_after_a_reset() {
        let mut sampler = Sampler::new(Fps::new(2.0).unwrap());
        assert!(sampler.offer(100.0));
        assert!(sampler.offer(100.5));
        assert_eq!(sampler.next_due(), Some(101.0));
        assert!(sampler.offer(3.0));
        assert_eq!(sampler.next_due(), Some(3.5));
        assert!(!sampler.offer(3.2));
        assert!(sampler.offer(3.5));
    }

    #[test]
    fn small_reordering_is_not_a_reset() {
        let out = sampled(1.0, [0.0, 0.1, 0.05, 1.0, 0.98, 2.0]);
        assert_eq!(out, vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn next_due_follows_samples() {
        let mut sampler = Sampler::new(Fps::new(2.0).unwrap());
        assert_eq!(sampler.next_due(), None);
        assert!(sampler.offer(10.0));
        assert_eq!(sampler.next_due(), Some(10.5));
        assert!(!sampler.offer(10.4));
        assert!(sampler.offer(10.6));
        assert_eq!(sampler.next_due(), Some(11.0));
    }

    #[test]
    fn could_take_follows_the_due_time() {
        let mut sampler = Sampler::new(Fps::new(1.0).unwrap());
        assert!(sampler.could_take(123.0));
        assert!(sampler.offer(10.0));
        assert!(!sampler.could_take(10.5));
        assert!(sampler.could_take(11.0));
        // A clock reset: the sampler will start again from it, so it is wanted.
        assert!(sampler.could_take(2.0));
        // Small reordering is not a reset.
        assert!(!sampler.could_take(9.8));
    }

    #[test]
    fn could_take_after_offers_the_earlier_frames_first() {
        let mut sampler = Sampler::new(Fps::new(2.0).unwrap());
        assert!(sampler.offer(10.0));
        // 10.5 is due; once it is taken, 10.9 is not, 11.0 is.
        assert!(!sampler.could_take_after(&[10.5], 10.9));
        assert!(sampler.could_take_after(&[10.5], 11.0));
        // Before any frame, the first one offered sets the origin.
        let fresh = Sampler::new(Fps::new(14.0).unwrap());
        assert!(!fresh.could_take_after(&[0.0, 0.033, 0.1], 0.14));
        assert!(fresh.could_take_after(&[0.0, 0.033, 0.1], 0.15));
        // Offering is hypothetical: the sampler itself is unchanged.
        assert_eq!(sampler.next_due(), Some(10.5));
    }

    #[test]
    fn a_rebased_sampler_continues_on_the_new_timeline() {
        // A 3 s file at 10 fps, sampled at 1 fps and looped: the second pass starts at
        // 0 again, and the sampler, moved back by the pass length, takes 0, 1, 2 again
        // as if they were 3, 4, 5, with no extra sample at the seam.
        let mut sampler = Sampler::new(Fps::new(1.0).unwrap());
        let pass = frames(10.0, 3.0);
        let first: Vec<f64> = pass.iter().copied().filter(|&t| sampler.offer(t)).collect();
        sampler.rebase(3.0);
        let second: Vec<f64> = pass.iter().copied().filter(|&t| sampler.offer(t)).collect();
        assert_eq!(first.len(), 3);
        assert_eq!(second.len(), 3);
        for (k, t) in second.iter().enumerate() {
            assert!((t - k as f64).abs() < 1e-9, "{second:?}");
        }
    }
}
