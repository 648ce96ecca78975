//! Baseline 4:2:0 JPEG straight from YUV planes with libjpeg-turbo (no RGB round trip).

use thiserror::Error;
use turbojpeg::{Compressor, Subsamp, YuvPlanesImage};

use crate::picture::Yuv420;

#[derive(Debug, Error)]
pub enum JpegError {
    #[error("JPEG encoder: {0}")]
    Encoder(#[from] turbojpeg::Error),
    #[error("JPEG encoder: {plane} plane holds {len} bytes, {needed} needed for {width}x{height}")]
    ShortPlane {
        plane: &'static str,
        len: usize,
        needed: usize,
        width: usize,
        height: usize,
    },
    #[error("JPEG encoder unavailable: {0}")]
    Unavailable(String),
}

/// One encoder per camera thread; it keeps libjpeg-turbo's state between frames.
pub struct JpegEncoder {
    compressor: Compressor,
    quality: u8,
    padded_luma: Vec<u8>,
}

impl JpegEncoder {
    /// `quality` is 1..=100 (validated in the configuration).
    pub fn new(quality: u8) -> Result<JpegEncoder, JpegError> {
        let mut compressor = Compressor::new()?;
        compressor.set_quality(i32::from(quality))?;
        compressor.set_subsamp(Subsamp::Sub2x2)?;
        Ok(JpegEncoder {
            compressor,
            quality,
            padded_luma: Vec::new(),
        })
    }

    /// Encodes at `quality` (1..=100) from now on; the same quality as before changes
    /// nothing.
    pub fn set_quality(&mut self, quality: u8) -> Result<(), JpegError> {
        if quality != self.quality {
            self.compressor.set_quality(i32::from(quality))?;
            self.quality = quality;
        }
        Ok(())
    }

    pub fn encode(&mut self, picture: &Yuv420<'_>) -> Result<Vec<u8>, JpegError> {
        check_planes(picture)?;
        let (y_plane, y_stride) = if luma_fits_padded(picture) {
            (picture.y, picture.y_stride)
        } else {
            pad_luma(picture, &mut self.padded_luma);
            (&self.padded_luma[..], picture.width.next_multiple_of(2))
        };
        let image = YuvPlanesImage {
            y_plane,
            u_plane: picture.u,
            v_plane: picture.v,
            width: picture.width,
            height: picture.height,
            y_stride,
            u_stride: picture.u_stride,
            v_stride: picture.v_stride,
            subsamp: Subsamp::Sub2x2,
        };
        Ok(self.compressor.compress_yuv_planes_to_vec(&image)?)
    }
}

/// libjpeg-turbo reads the luma plane of 4:2:0 rounded up to even width and height.
fn luma_fits_padded(p: &Yuv420<'_>) -> bool {
    let (width, height) = (p.width.next_multiple_of(2), p.height.next_multiple_of(2));
    p.y_stride >= width && p.y.len() >= p.y_stride * (height - 1) + width
}

/// Copies luma into `out` with an even width and height, repeating the last column and
/// row (they only fill the part of the last block that is cropped away).
fn pad_luma(p: &Yuv420<'_>, out: &mut Vec<u8>) {
    let (width, height) = (p.width.next_multiple_of(2), p.height.next_multiple_of(2));
    out.clear();
    out.reserve(width * height);
    for row in 0..height {
        let source = &p.y[row.min(p.height - 1) * p.y_stride..][..p.width];
        out.extend_from_slice(source);
        if width > p.width {
            out.push(source[p.width - 1]);
        }
    }
}

/// libjpeg-turbo reads `stride * (rows - 1) + width` bytes of each plane; a shorter
/// plane must be an error, never a read past the end.
fn check_planes(p: &Yuv420<'_>) -> Result<(), JpegError> {
    let (cw, ch) = (p.width.div_ceil(2), p.height.div_ceil(2));
    let planes = [
        ("Y", p.y, p.y_stride, p.width, p.height),
        ("U", p.u, p.u_stride, cw, ch),
        ("V", p.v, p.v_stride, cw, ch),
    ];
    for (plane, data, stride, w, h) in planes {
        let needed = if h == 0 { 0 } else { stride * (h - 1) + w };
        if data.len() < needed || stride < w {
            return Err(JpegError::ShortPlane {
                plane,
                len: data.len(),
                needed,
                width: p.width,
                height: p.height,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(width: usize, height: usize) -> (Vec<u8>, Vec<u8>) {
        let y = vec![200u8; width * height];
        let c = vec![128u8; width.div_ceil(2) * height.div_ceil(2)];
        (y, c)
    }

    #[test]
    fn encodes_odd_sizes_as_baseline_420() {
        let (y, c) = flat(641, 361);
        let picture = Yuv420 {
            width: 641,
            height: 361,
            y: &y,
            u: &c,
            v: &c,
            y_stride: 641,
            u_stride: 321,
            v_stride: 321,
        };
        let jpeg = JpegEncoder::new(90).unwrap().encode(&picture).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let header = turbojpeg::read_header(&jpeg).unwrap();
        assert_eq!((header.width, header.height), (641, 361));
        assert_eq!(header.subsamp, Subsamp::Sub2x2);
        // SOF0 marks a baseline JPEG.
        assert!(jpeg.windows(2).any(|w| w == [0xFF, 0xC0]));
    }

    #[test]
    fn quality_can_change_between_frames_and_back() {
        let (y, c) = flat(64, 64);
        let y: Vec<u8> = y
            .iter()
            .enumerate()
            .map(|(i, _)| (i * 7 % 251) as u8)
            .collect();
        let picture = Yuv420 {
            width: 64,
            height: 64,
            y: &y,
            u: &c,
            v: &c,
            y_stride: 64,
            u_stride: 32,
            v_stride: 32,
        };
        let mut encoder = JpegEncoder::new(90).unwrap();
        let at_90 = encoder.encode(&picture).unwrap();
        encoder.set_quality(30).unwrap();
        let at_30 = encoder.encode(&picture).unwrap();
        assert!(at_30.len() < at_90.len());
        assert_eq!(
            at_30,
            JpegEncoder::new(30).unwrap().encode(&picture).unwrap()
        );
        encoder.set_quality(90).unwrap();
        assert_eq!(encoder.encode(&picture).unwrap(), at_90);
    }

    #[test]
    fn short_planes_are_an_error_not_a_crash() {
        let (y, c) = flat(64, 64);
        let picture = Yuv420 {
            width: 64,
            height: 64,
            y: &y[..100],
            u: &c,
            v: &c,
            y_stride: 64,
            u_stride: 32,
            v_stride: 32,
        };
        assert!(matches!(
            JpegEncoder::new(90).unwrap().encode(&picture),
            Err(JpegError::ShortPlane { plane: "Y", .. })
        ));
    }
}
