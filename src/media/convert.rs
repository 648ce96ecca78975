//! Decoded frames to full-range 4:2:0 planes for the JPEG encoder. 4:2:0 input is used
//! as it is (full range) or through a lookup table (limited range); every other pixel
//! format goes through swscale, rebuilt whenever the frame's size or format changes.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::color::Range;

use crate::picture::Yuv420;

/// Tables that stretch limited-range luma (16..235) and chroma (16..240) to 0..255,
/// rounding as swscale does.
pub fn range_tables() -> ([u8; 256], [u8; 256]) {
    let mut luma = [0u8; 256];
    let mut chroma = [0u8; 256];
    for v in 0..256 {
        let y = ((v as f64 - 16.0) * 255.0 / 219.0).round();
        let c = ((v as f64 - 128.0) * 255.0 / 224.0 + 128.0).round();
        luma[v] = y.clamp(0.0, 255.0) as u8;
        chroma[v] = c.clamp(0.0, 255.0) as u8;
    }
    (luma, chroma)
}

#[derive(Default)]
pub struct Converter {
    tables: Option<([u8; 256], [u8; 256])>,
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
            (Pixel::NV12, 64, 48),
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
