//! `MAX_FRAME_PIXELS`: the largest frame a source may have. A stream whose parameters
//! state a larger frame is refused when it opens, before a decoder exists, and one whose
//! decoder meets a larger frame later (a new sequence header mid-stream) is refused
//! then. libav is held to it as well: the decoders it opens to read stream information
//! and ours get it as their `max_pixels`, and no single libav allocation may exceed
//! [`FrameLimit::allocation_cap`], so a header or an answer claiming a huge size costs
//! an error instead of the memory it claims.

use std::fmt;

/// A frame size limit in pixels, with the width and height it was written as, if so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimit {
    pixels: u64,
    shape: Option<(u32, u32)>,
}

/// 8192x8192: above 8K UHD (7680x4320) and any camera's sensor.
pub const DEFAULT_FRAME_LIMIT: FrameLimit = FrameLimit {
    pixels: 8192 * 8192,
    shape: Some((8192, 8192)),
};

/// The widest pixel format takes 8 bytes per pixel (16-bit RGBA, 16-bit 4:4:4 with
/// alpha): a frame's planes and a raw frame's packet fit in this many bytes per pixel.
const BYTES_PER_PIXEL: u64 = 8;
/// What libav allocates at once besides frames (packets of compressed frames, demuxer
/// buffers, tables) stays far below this.
const ALLOCATION_HEADROOM: u64 = 16 << 20;

impl FrameLimit {
    /// The largest limit: libav's `max_pixels` is an `int`.
    pub const MAX_PIXELS: u64 = i32::MAX as u64;

    /// `WIDTHxHEIGHT` (`8192x8192`) or a number of pixels (`67108864`), 1 up to
    /// [`FrameLimit::MAX_PIXELS`].
    pub fn parse(value: &str) -> Option<FrameLimit> {
        let value = value.trim();
        let limit = match value.split_once(['x', 'X']) {
            Some((width, height)) => {
                let width: u32 = width.trim().parse().ok()?;
                let height: u32 = height.trim().parse().ok()?;
                FrameLimit {
                    pixels: u64::from(width) * u64::from(height),
                    shape: Some((width, height)),
                }
            }
            None => FrameLimit {
                pixels: value.parse().ok()?,
                shape: None,
            },
        };
        (1..=FrameLimit::MAX_PIXELS)
            .contains(&limit.pixels)
            .then_some(limit)
    }

    pub fn pixels(self) -> u64 {
        self.pixels
    }

    /// Whether a `width` x `height` frame is within the limit.
    pub fn admits(self, width: u32, height: u32) -> bool {
        u64::from(width) * u64::from(height) <= self.pixels
    }

    /// The largest single allocation libav may make: room for the planes of the
    /// largest frame allowed in the widest pixel format, and some more.
    pub fn allocation_cap(self) -> usize {
        let bytes = self.pixels * BYTES_PER_PIXEL + ALLOCATION_HEADROOM;
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }
}

impl Default for FrameLimit {
    fn default() -> Self {
        DEFAULT_FRAME_LIMIT
    }
}

impl fmt::Display for FrameLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape {
            Some((width, height)) => write!(f, "{width}x{height} ({} pixels)", self.pixels),
            None => write!(f, "{} pixels", self.pixels),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_pixel_counts() {
        assert_eq!(FrameLimit::parse("8192x8192"), Some(DEFAULT_FRAME_LIMIT));
        assert_eq!(
            FrameLimit::parse(" 1920 X 1080 ").unwrap().pixels(),
            2_073_600
        );
        let count = FrameLimit::parse("1000000").unwrap();
        assert_eq!(count.pixels(), 1_000_000);
        assert_eq!(count.to_string(), "1000000 pixels");
        assert_eq!(
            DEFAULT_FRAME_LIMIT.to_string(),
            "8192x8192 (67108864 pixels)"
        );
        for bad in [
            "",
            "0",
            "0x100",
            "8192x",
            "x8192",
            "-1",
            "1.5",
            "65536x65536",
            "big",
        ] {
            assert_eq!(FrameLimit::parse(bad), None, "{bad}");
        }
        assert!(FrameLimit::parse("2147483647").is_some());
        assert!(FrameLimit::parse("2147483648").is_none());
    }

    #[test]
    fn frames_within_and_beyond() {
        let limit = FrameLimit::parse("1920x1080").unwrap();
        assert!(limit.admits(1920, 1080));
        assert!(limit.admits(1080, 1920));
        assert!(!limit.admits(1921, 1080));
        assert!(!limit.admits(u32::MAX, u32::MAX));
    }

    #[test]
    fn the_allocation_cap_holds_the_widest_frame() {
        assert_eq!(DEFAULT_FRAME_LIMIT.allocation_cap(), (512 + 16) << 20);
    }
}
