//! Decoded frames to full-range 4:2:0 planes for the JPEG encoder. 4:2:0 input is used
//! as it is (full range) or through a lookup table (limited range); what hardware
//! decoders hand back (NV12, and P010 for 10-bit streams) is split into planes and
//! brought to 8 bits by lookup tables too, without RGB; every other pixel format goes
//! through swscale, rebuilt whenever the frame's size or format changes.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::color::Range;

use crate::picture::Yuv420;

/// Tables that stretch limited-range luma (16..235) and chroma (16..240) to 0..255,
/// rounding as swscale does.
pub fn range_tables() -> ([u8; 256], [u8; 256]) {
    let (luma, chroma) = level_tables(8, false);
    let mut out = ([0u8; 256], [0u8; 256]);
    out.0.copy_from_slice(&luma);
    out.1.copy_from_slice(&chroma);
    out
}

/// Tables from `bits`-bit samples to full-range 8-bit ones, for luma and chroma:
/// limited range is stretched (16..235 and 16..240, scaled to `bits`), full range
/// only rescaled.
fn level_tables(bits: u32, full_range: bool) -> (Vec<u8>, Vec<u8>) {
    let size = 1usize << bits;
    let scale = f64::from(1u32 << (bits - 8));
    let max = (size - 1) as f64;
    let level = |v: f64, chroma: bool| -> u8 {
        let out = if full_range {
            v * 255.0 / max
        } else if chroma {
            (v / scale - 128.0) * 255.0 / 224.0 + 128.0
        } else {
            (v / scale - 16.0) * 255.0 / 219.0
        };
        out.round().clamp(0.0, 255.0) as u8
    };
    (0..size)
        .map(|v| (level(v as f64, false), level(v as f64, true)))
        .unzip()
}

/// Luma and chroma tables for one depth and range (`true`: full range).
struct SemiPlanarTables {
    key: (Depth, bool),
    luma: Vec<u8>,
    chroma: Vec<u8>,
}

/// Where a semi-planar frame's samples sit: 8-bit bytes (NV12) or 16-bit
/// little-endian words with the value in the high bits (P010).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    Eight,
    Ten,
}

#[derive(Default)]
pub struct Converter {
    tables: Option<([u8; 256], [u8; 256])>,
    /// Tables for semi-planar frames, by depth and range.
    semi_planar_tables: Option<SemiPlanarTables>,
    planes: [Vec<u8>; 3],
    scaler: Option<Scaler>,
}

struct Scaler {
    key: (Pixel, u32, u32),
    context: scaling::Context,
    output: frame::Video,
}

impl Converter {
    pub fn convert<'a>(
        &'a mut self,
        frame: &'a frame::Video,
    ) -> Result<Yuv420<'a>, ffmpeg_next::Error> {
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        if width == 0 || height == 0 {
            return Err(ffmpeg_next::Error::InvalidData);
        }
        let full_range = frame.color_range() == Range::JPEG;
        match frame.format() {
            Pixel::YUVJ420P => Ok(borrow_planes(frame)),
            Pixel::YUV420P if full_range => Ok(borrow_planes(frame)),
            Pixel::YUV420P => Ok(self.stretch_range(frame)),
            Pixel::NV12 => Ok(self.split_semi_planar(frame, Depth::Eight, full_range)),
            Pixel::P010LE => Ok(self.split_semi_planar(frame, Depth::Ten, full_range)),
            _ => self.scale(frame),
        }
    }

    fn stretch_range<'a>(&'a mut self, frame: &frame::Video) -> Yuv420<'a> {
        let (luma, chroma) = *self.tables.get_or_insert_with(range_tables);
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let dims = [(width, height, &luma), (cw, ch, &chroma), (cw, ch, &chroma)];
        for (plane, (w, h, table)) in dims.into_iter().enumerate() {
            let stride = frame.stride(plane);
            let source = frame.data(plane);
            let out = &mut self.planes[plane];
            out.resize(w * h, 0);
            for (row_out, row_in) in out.chunks_exact_mut(w).zip(source.chunks(stride)) {
                for (o, i) in row_out.iter_mut().zip(&row_in[..w]) {
                    *o = table[*i as usize];
                }
            }
        }
        Yuv420 {
            width,
            height,
            y: &self.planes[0],
            u: &self.planes[1],
            v: &self.planes[2],
            y_stride: width,
            u_stride: cw,
            v_stride: cw,
        }
    }

    /// NV12 and P010 (a luma plane and one plane of interleaved U and V) to three
    /// 8-bit full-range planes, any width or height.
    fn split_semi_planar<'a>(
        &'a mut self,
        frame: &frame::Video,
        depth: Depth,
        full_range: bool,
    ) -> Yuv420<'a> {
        let key = (depth, full_range);
        if self.semi_planar_tables.as_ref().map(|t| t.key) != Some(key) {
            let bits = match depth {
                Depth::Eight => 8,
                Depth::Ten => 10,
            };
            let (luma, chroma) = level_tables(bits, full_range);
            self.semi_planar_tables = Some(SemiPlanarTables { key, luma, chroma });
        }
        let SemiPlanarTables { luma, chroma, .. } = self
            .semi_planar_tables
            .as_ref()
            .expect("tables were just built");
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let sample = |row: &[u8], index: usize| -> usize {
            match depth {
                Depth::Eight => usize::from(row[index]),
                Depth::Ten => {
                    usize::from(u16::from_le_bytes([row[2 * index], row[2 * index + 1]]) >> 6)
                }
            }
        };
        let [y, u, v] = &mut self.planes;
        y.resize(width * height, 0);
        u.resize(cw * ch, 0);
        v.resize(cw * ch, 0);
        for (row_out, row_in) in y
            .chunks_exact_mut(width)
            .zip(frame.data(0).chunks(frame.stride(0)))
        {
            for (column, out) in row_out.iter_mut().enumerate() {
                *out = luma[sample(row_in, column)];
            }
        }
        let rows = frame.data(1).chunks(frame.stride(1));
        for ((u_out, v_out), row_in) in u.chunks_exact_mut(cw).zip(v.chunks_exact_mut(cw)).zip(rows)
        {
            for column in 0..cw {
                u_out[column] = chroma[sample(row_in, 2 * column)];
                v_out[column] = chroma[sample(row_in, 2 * column + 1)];
            }
        }
        Yuv420 {
            width,
            height,
            y: &self.planes[0],
            u: &self.planes[1],
            v: &self.planes[2],
            y_stride: width,
            u_stride: cw,
            v_stride: cw,
        }
    }

    fn scale<'a>(&'a mut self, frame: &frame::Video) -> Result<Yuv420<'a>, ffmpeg_next::Error> {
        let key = (frame.format(), frame.width(), frame.height());
        if self.scaler.as_ref().map(|s| s.key) != Some(key) {
            let context = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                Pixel::YUVJ420P,
                key.1,
                key.2,
                scaling::Flags::BICUBIC | scaling::Flags::ACCURATE_RND,
            )?;
            self.scaler = Some(Scaler {
                key,
                context,
                output: frame::Video::empty(),
            });
        }
        let scaler = self.scaler.as_mut().expect("scaler was just built");
        scaler.context.run(frame, &mut scaler.output)?;
        Ok(borrow_planes(&scaler.output))
    }
}

fn borrow_planes(frame: &frame::Video) -> Yuv420<'_> {
    Yuv420 {
        width: frame.width() as usize,
        height: frame.height() as usize,
        y: frame.data(0),
        u: frame.data(1),
        v: frame.data(2),
        y_stride: frame.stride(0),
        u_stride: frame.stride(1),
        v_stride: frame.stride(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_tables_stretch_and_clamp() {
        let (luma, chroma) = range_tables();
        assert_eq!(luma[16], 0);
        assert_eq!(luma[235], 255);
        assert_eq!(luma[0], 0);
        assert_eq!(luma[255], 255);
        assert_eq!(luma[126], 128);
        assert_eq!(chroma[128], 128);
        assert!(chroma[16] <= 1);
        assert_eq!(chroma[240], 255);
    }

    fn gray_frame(format: Pixel, width: u32, height: u32, fill: u8) -> frame::Video {
        let mut frame = frame::Video::new(format, width, height);
        for plane in 0..frame.planes() {
            frame.data_mut(plane).fill(fill);
        }
        frame
    }

    #[test]
    fn limited_range_odd_size_is_stretched() {
        let mut converter = Converter::default();
        let frame = gray_frame(Pixel::YUV420P, 641, 361, 235);
        let out = converter.convert(&frame).unwrap();
        assert_eq!((out.width, out.height), (641, 361));
        assert_eq!(out.u_stride, 321);
        assert_eq!(out.u.len(), 321 * 181);
        assert!(out.y.iter().all(|&v| v == 255));
        assert!(out.u.iter().all(|&v| v == range_tables().1[235]));
    }

    #[test]
    fn other_formats_go_through_swscale_and_rebuild_on_change() {
        let mut converter = Converter::default();
        for (format, w, h) in [
            (Pixel::YUV444P, 64, 48),
            (Pixel::YUV422P, 65, 33),
            (Pixel::GRAY8, 31, 17),
            (Pixel::NV21, 64, 48),
        ] {
            let frame = gray_frame(format, w, h, 128);
            let out = converter.convert(&frame).unwrap();
            assert_eq!(
                (out.width, out.height),
                (w as usize, h as usize),
                "{format:?}"
            );
            assert!(out.u.len() >= (w as usize).div_ceil(2) * (h as usize).div_ceil(2) - 1);
        }
    }
}

/// Hardware decoders' formats against the planar software path: made from the same
/// picture, the planes must agree, and so must the JPEGs made from them.
#[cfg(test)]
mod semi_planar_tests {
    use super::*;
    use crate::output::jpeg::JpegEncoder;
    use ffmpeg_next::util::color::Range;

    /// A limited-range 4:2:0 picture with smooth gradients and sharp edges.
    fn planar_picture(width: u32, height: u32) -> frame::Video {
        let mut frame = frame::Video::new(Pixel::YUV420P, width, height);
        frame.set_color_range(Range::MPEG);
        for plane in 0..3 {
            let stride = frame.stride(plane);
            let (low, high) = if plane == 0 { (16, 235) } else { (16, 240) };
            for (row, line) in frame.data_mut(plane).chunks_mut(stride).enumerate() {
                for (column, value) in line.iter_mut().enumerate() {
                    let wave = (row * 3 + column * (plane + 2)) % 256;
                    let edge = if (row / 8 + column / 8) % 2 == 0 {
                        40
                    } else {
                        0
                    };
                    *value = (low + (wave + edge) % (high - low + 1)) as u8;
                }
            }
        }
        frame
    }

    /// The same picture as NV12 or P010 (10-bit value `8-bit << 2`, in the high bits).
    fn semi_planar(planar: &frame::Video, format: Pixel) -> frame::Video {
        let (width, height) = (planar.width(), planar.height());
        let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
        let mut out = frame::Video::new(format, width, height);
        out.set_color_range(planar.color_range());
        let bytes = if format == Pixel::P010LE { 2 } else { 1 };
        let put = |line: &mut [u8], index: usize, value: u8| {
            if bytes == 1 {
                line[index] = value;
            } else {
                let word = (u16::from(value) << 2) << 6;
                line[2 * index..2 * index + 2].copy_from_slice(&word.to_le_bytes());
            }
        };
        let y_stride = out.stride(0);
        for row in 0..height as usize {
            let source = &planar.data(0)[row * planar.stride(0)..];
            let line = &mut out.data_mut(0)[row * y_stride..];
            for (column, value) in source[..width as usize].iter().enumerate() {
                put(line, column, *value);
            }
        }
        let uv_stride = out.stride(1);
        for row in 0..ch {
            let u = &planar.data(1)[row * planar.stride(1)..];
            let v = &planar.data(2)[row * planar.stride(2)..];
            let line = &mut out.data_mut(1)[row * uv_stride..];
            for (column, (u, v)) in u[..cw].iter().zip(&v[..cw]).enumerate() {
                put(line, 2 * column, *u);
                put(line, 2 * column + 1, *v);
            }
        }
        out
    }

    fn packed(picture: &Yuv420<'_>) -> Vec<Vec<u8>> {
        let (cw, ch) = (picture.width.div_ceil(2), picture.height.div_ceil(2));
        let rows = |plane: &[u8], stride: usize, w: usize, h: usize| -> Vec<u8> {
            plane
                .chunks(stride)
                .take(h)
                .flat_map(|r| r[..w].to_vec())
                .collect()
        };
        vec![
            rows(picture.y, picture.y_stride, picture.width, picture.height),
            rows(picture.u, picture.u_stride, cw, ch),
            rows(picture.v, picture.v_stride, cw, ch),
        ]
    }

    fn jpeg(picture: &Yuv420<'_>) -> image::RgbImage {
        let bytes = JpegEncoder::new(90).unwrap().encode(picture).unwrap();
        image::load_from_memory(&bytes).unwrap().to_rgb8()
    }

    fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let squared: f64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum();
        let mse = squared / a.as_raw().len() as f64;
        if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0f64 * 255.0 / mse).log10()
        }
    }

    #[test]
    fn ten_bit_tables_agree_with_eight_bit_ones() {
        let (luma8, chroma8) = level_tables(8, false);
        let (luma10, chroma10) = level_tables(10, false);
        for v in 0..256 {
            assert_eq!(luma10[v << 2], luma8[v], "luma {v}");
            assert_eq!(chroma10[v << 2], chroma8[v], "chroma {v}");
        }
        let (full, _) = level_tables(10, true);
        assert_eq!((full[0], full[512], full[1023]), (0, 128, 255));
        let (identity, _) = level_tables(8, true);
        assert!(identity
            .iter()
            .enumerate()
            .all(|(i, v)| usize::from(*v) == i));
    }

    #[test]
    fn nv12_and_p010_give_the_planar_pictures_planes_at_odd_sizes() {
        for (width, height) in [(64, 48), (641, 361), (1, 1), (3, 5)] {
            let planar = planar_picture(width, height);
            let expected = packed(&Converter::default().convert(&planar).unwrap());
            for format in [Pixel::NV12, Pixel::P010LE] {
                let frame = semi_planar(&planar, format);
                let mut converter = Converter::default();
                let out = converter.convert(&frame).unwrap();
                assert_eq!((out.width, out.height), (width as usize, height as usize));
                assert_eq!(packed(&out), expected, "{format:?} {width}x{height}");
            }
        }
    }

    #[test]
    fn full_range_nv12_is_only_split() {
        let mut planar = planar_picture(33, 17);
        planar.set_color_range(Range::JPEG);
        let expected = packed(&Converter::default().convert(&planar).unwrap());
        let frame = semi_planar(&planar, Pixel::NV12);
        assert_eq!(
            packed(&Converter::default().convert(&frame).unwrap()),
            expected
        );
    }

    #[test]
    fn semi_planar_agrees_with_swscale() {
        let planar = planar_picture(641, 361);
        for format in [Pixel::NV12, Pixel::P010LE] {
            let frame = semi_planar(&planar, format);
            let direct = packed(&Converter::default().convert(&frame).unwrap());
            let mut reference = Converter::default();
            let scaled = packed(&reference.scale(&frame).unwrap());
            for (plane, (a, b)) in direct.iter().zip(&scaled).enumerate() {
                let worst = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
                assert!(worst <= 2, "{format:?} plane {plane}: off by {worst}");
            }
        }
    }

    #[test]
    fn jpeg_of_converted_nv12_and_p010_matches_the_software_path() {
        let planar = planar_picture(641, 361);
        let software = jpeg(&Converter::default().convert(&planar).unwrap());
        for format in [Pixel::NV12, Pixel::P010LE] {
            let frame = semi_planar(&planar, format);
            let hardware = jpeg(&Converter::default().convert(&frame).unwrap());
            let db = psnr(&software, &hardware);
            assert!(db >= 35.0, "{format:?}: {db:.1} dB");
        }
    }
}
