//! What a caller may ask for in `force_format`, independent of what this machine has.

use std::fmt;

use serde::{Serialize, Serializer};

/// A hardware backend, by the name callers and libav give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HwBackend {
    Cuda,
    Qsv,
    Vaapi,
    Vdpau,
    Drm,
    Vulkan,
    OpenCl,
    Dxva2,
    D3d11va,
    D3d12va,
    VideoToolbox,
    MediaCodec,
    Amf,
    Rkmpp,
    V4l2m2m,
    /// A test seam, absent from the shipped binary: a software decoder that fails every
    /// frame after its first `good_frames`, standing in for a hardware decoder that
    /// breaks mid-stream.
    #[cfg(test)]
    FaultInjection {
        good_frames: u64,
    },
}

impl HwBackend {
    /// The backends a caller may name, in the order they are listed. The first ones are
    /// libav's device types; the last two are decoder families that callers send to
    /// boards that have them.
    pub const ALL: [HwBackend; 15] = [
        HwBackend::Cuda,
        HwBackend::Qsv,
        HwBackend::Vaapi,
        HwBackend::Vdpau,
        HwBackend::Drm,
        HwBackend::Vulkan,
        HwBackend::OpenCl,
        HwBackend::Dxva2,
        HwBackend::D3d11va,
        HwBackend::D3d12va,
        HwBackend::VideoToolbox,
        HwBackend::MediaCodec,
        HwBackend::Amf,
        HwBackend::Rkmpp,
        HwBackend::V4l2m2m,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            HwBackend::Cuda => "cuda",
            HwBackend::Qsv => "qsv",
            HwBackend::Vaapi => "vaapi",
            HwBackend::Vdpau => "vdpau",
            HwBackend::Drm => "drm",
            HwBackend::Vulkan => "vulkan",
            HwBackend::OpenCl => "opencl",
            HwBackend::Dxva2 => "dxva2",
            HwBackend::D3d11va => "d3d11va",
            HwBackend::D3d12va => "d3d12va",
            HwBackend::VideoToolbox => "videotoolbox",
            HwBackend::MediaCodec => "mediacodec",
            HwBackend::Amf => "amf",
            HwBackend::Rkmpp => "rkmpp",
            HwBackend::V4l2m2m => "v4l2m2m",
            #[cfg(test)]
            HwBackend::FaultInjection { .. } => "fault-injection",
        }
    }

    /// The backend called exactly `name`.
    pub fn parse(name: &str) -> Option<HwBackend> {
        HwBackend::ALL
            .into_iter()
            .find(|backend| backend.as_str() == name)
    }
}

impl fmt::Display for HwBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HwBackend {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The names of [`HwBackend::ALL`], for callers that compare words.
pub const KNOWN_BACKENDS: [&str; HwBackend::ALL.len()] = {
    let mut names = [""; HwBackend::ALL.len()];
    let mut index = 0;
    while index < names.len() {
        names[index] = HwBackend::ALL[index].as_str();
        index += 1;
    }
    names
};

/// A `force_format` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwChoice {
    /// Try the configured order, then software.
    Auto,
    /// Software decoding only.
    None,
    /// One named backend.
    Backend(HwBackend),
}

impl HwChoice {
    /// Parses a caller's word; `None` when it is not a known value.
    pub fn parse(value: &str) -> Option<HwChoice> {
        let value = value.trim().to_ascii_lowercase();
        match value.as_str() {
            "auto" => Some(HwChoice::Auto),
            "none" | "software" | "cpu" => Some(HwChoice::None),
            other => HwBackend::parse(other).map(HwChoice::Backend),
        }
    }

    /// The list shown to a caller who sent an unknown word.
    pub fn allowed_values() -> String {
        let mut all = vec![HwChoice::Auto.as_str(), HwChoice::None.as_str()];
        all.extend(KNOWN_BACKENDS);
        all.join(", ")
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            HwChoice::Auto => "auto",
            HwChoice::None => "none",
            HwChoice::Backend(backend) => backend.as_str(),
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
        assert_eq!(
            HwChoice::parse(" Cuda "),
            Some(HwChoice::Backend(HwBackend::Cuda))
        );
        assert_eq!(
            HwChoice::parse("rkmpp"),
            Some(HwChoice::Backend(HwBackend::Rkmpp))
        );
        assert_eq!(HwChoice::parse("warp"), None);
    }

    #[test]
    fn allowed_values_lists_everything() {
        let list = HwChoice::allowed_values();
        assert!(list.starts_with("auto, none, cuda"));
        assert!(list.contains("v4l2m2m"));
    }

    #[test]
    fn every_backend_is_parsed_back_from_its_name() {
        for backend in HwBackend::ALL {
            assert_eq!(HwBackend::parse(backend.as_str()), Some(backend));
            assert_eq!(
                HwChoice::parse(backend.as_str()).map(|c| c.as_str()),
                Some(backend.as_str())
            );
        }
        assert_eq!(KNOWN_BACKENDS[0], "cuda");
        assert_eq!(KNOWN_BACKENDS[14], "v4l2m2m");
    }
}
