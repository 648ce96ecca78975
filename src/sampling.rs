//! How much of a source is decoded to find the sampled frames.

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
}
