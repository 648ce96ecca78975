//! What a caller may ask for in `force_format`, independent of what this machine has.

use std::fmt;

/// Hardware backends a caller may name. The first ones are libav's device types; the
/// last two are decoder families that callers send to boards that have them.
pub const KNOWN_BACKENDS: [&str; 15] = [
    "cuda",
    "qsv",
    "vaapi",
    "vdpau",
    "drm",
    "vulkan",
    "opencl",
    "dxva2",
    "d3d11va",
    "d3d12va",
    "videotoolbox",
    "mediacodec",
    "amf",
    "rkmpp",
    "v4l2m2m",
];

/// A diagnostic backend: a software decoder made to fail, standing in for a hardware
/// decoder that breaks mid-stream. It works only while the daemon runs with
/// `VIDEO_PIPELINE_FAULT_HWACCEL=fail-after:N`; otherwise it is a backend this machine
/// does not have, like any other. Not listed among the allowed values.
pub const FAULT_INJECTION: &str = "fault-injection";

/// A `force_format` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwChoice {
    /// Try the configured order, then software.
    Auto,
    /// Software decoding only.
    None,
    /// One named backend (one of [`KNOWN_BACKENDS`]).
    Backend(&'static str),
}

impl HwChoice {
    /// Parses a caller's word; `None` when it is not a known value.
    pub fn parse(value: &str) -> Option<HwChoice> {
        let value = value.trim().to_ascii_lowercase();
        match value.as_str() {
            "auto" => Some(HwChoice::Auto),
            "none" | "software" | "cpu" => Some(HwChoice::None),
            FAULT_INJECTION => Some(HwChoice::Backend(FAULT_INJECTION)),
            other => KNOWN_BACKENDS
                .iter()
                .find(|&&b| b == other)
                .map(|&b| HwChoice::Backend(b)),
        }
    }

    /// The list shown to a caller who sent an unknown word.
    pub fn allowed_values() -> String {
        let mut all = vec!["auto", "none"];
        all.extend(KNOWN_BACKENDS);
        all.join(", ")
    }

    /// The backends to try, in order, on their own (`auto`: the default order).
    pub fn backends(&self) -> Vec<&'static str> {
        match self {
            HwChoice::Auto => vec!["cuda", "qsv", "vaapi"],
            HwChoice::None => Vec::new(),
            HwChoice::Backend(name) => vec![name],
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            HwChoice::Auto => "auto",
            HwChoice::None => "none",
            HwChoice::Backend(name) => name,
        }
    }
}

impl fmt::Display for HwChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_words_case_insensitively() {
        assert_eq!(HwChoice::parse("AUTO"), Some(HwChoice::Auto));
        assert_eq!(HwChoice::parse("none"), Some(HwChoice::None));
        assert_eq!(HwChoice::parse(" Cuda "), Some(HwChoice::Backend("cuda")));
        assert_eq!(HwChoice::parse("rkmpp"), Some(HwChoice::Backend("rkmpp")));
        assert_eq!(HwChoice::parse("warp"), None);
        assert_eq!(
            HwChoice::parse("fault-injection"),
            Some(HwChoice::Backend(FAULT_INJECTION))
        );
    }

    #[test]
    fn allowed_values_lists_everything() {
        let list = HwChoice::allowed_values();
        assert!(list.starts_with("auto, none, cuda"));
        assert!(list.contains("v4l2m2m"));
        assert!(!list.contains(FAULT_INJECTION));
    }
}
