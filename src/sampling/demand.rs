//! What the caller of a decoder wants next: the question sample-aware decoding asks
//! before it spends work on a packet. The sampler answers it; so does `EveryFrame`.

/// The caller's side: which frames it could take next.
pub trait FrameDemand {
    /// Whether a frame shown at `time` (seconds) could be the next one taken.
    fn could_take(&self, time: f64) -> bool;

    /// The time at or after which the next frame is due; `None` when any frame is.
    fn next_due(&self) -> Option<f64> {
        None
    }

    /// Whether a frame shown at `time` could be the next one taken once the frames
    /// shown at `earlier` (in display order, all before `time`) have been offered.
    /// Answering as `could_take` is always safe: offering frames only moves the due
    /// time later.
    fn could_take_after(&self, earlier: &[f64], time: f64) -> bool {
        let _ = earlier;
        self.could_take(time)
    }
}

/// Wants every frame.
pub struct EveryFrame;

impl FrameDemand for EveryFrame {
    fn could_take(&self, _time: f64) -> bool {
        true
    }
}
