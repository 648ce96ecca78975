//! Which frames of a source become output frames, and when: the requested rate, the
//! sampling mode, the sampler and the realtime pacer. Pure logic, no clock, no libav.

mod demand;
pub mod pacer;
pub mod sampler;

use std::fmt;

pub use demand::{EveryFrame, FrameDemand};

/// Timestamps this close count as equal (float error of `k / fps` and of timestamps
/// converted from a time base).
pub const EPSILON_SECONDS: f64 = 1e-6;

/// A requested output rate, known to be usable: finite, > 0 and <= [`Fps::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fps(f64);

/// Why a rate was refused; the message states the allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Invalid fps {0} (expected a number > 0 and <= {max})", max = Fps::MAX)]
pub struct FpsError(pub String);

impl Fps {
    pub const MAX: f64 = 60.0;
    pub const DEFAULT: Fps = Fps(1.0);

    pub fn new(fps: f64) -> Result<Fps, FpsError> {
        if fps.is_finite() && fps > 0.0 && fps <= Fps::MAX {
            Ok(Fps(fps))
        } else {
            Err(FpsError(fps.to_string()))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// Seconds between two samples.
    pub fn interval(self) -> f64 {
        1.0 / self.0
    }
}

impl fmt::Display for Fps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Fps {
    type Err = FpsError;

    /// Parses a caller's number; a word that is no number is an error too (callers
    /// that answer those differently check `f64` parsing first).
    fn from_str(value: &str) -> Result<Fps, FpsError> {
        let fps: f64 = value
            .trim()
            .parse()
            .map_err(|_| FpsError(value.to_owned()))?;
        Fps::new(fps).map_err(|_| FpsError(value.to_owned()))
    }
}

/// The `sampling` field of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampling {
    /// The frames full decoding would choose, decoding only what they need.
    #[default]
    Exact,
    /// Keyframes only, at most `fps` of them per second: far cheaper, at keyframe times.
    Keyframes,
    /// Every frame decoded (for comparisons; same output as `Exact`).
    All,
}

impl Sampling {
    pub fn parse(value: &str) -> Option<Sampling> {
        match value.trim().to_ascii_lowercase().as_str() {
            "exact" => Some(Sampling::Exact),
            "keyframes" | "keyframe" | "key" => Some(Sampling::Keyframes),
            "all" => Some(Sampling::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sampling::Exact => "exact",
            Sampling::Keyframes => "keyframes",
            Sampling::All => "all",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(Sampling::parse("Keyframes"), Some(Sampling::Keyframes));
        assert_eq!(Sampling::parse("exact"), Some(Sampling::Exact));
        assert_eq!(Sampling::parse("all"), Some(Sampling::All));
        assert_eq!(Sampling::parse("some"), None);
        assert_eq!(Sampling::default().as_str(), "exact");
    }

    #[test]
    fn fps_is_validated_once_with_its_range_in_the_message() {
        assert_eq!(Fps::new(0.2).unwrap().get(), 0.2);
        assert_eq!("60".parse::<Fps>().unwrap().get(), 60.0);
        for bad in ["0", "-1", "60.5", "NaN", "inf", "abc"] {
            let error = bad.parse::<Fps>().unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("Invalid fps {bad} (expected a number > 0 and <= 60)")
            );
        }
    }
}
