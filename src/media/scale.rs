//! A camera's frames at the size and region it asked for ([`FrameShape`]), made from
//! the decoded planes before JPEG: one swscale pass from 4:2:0 as decoded, or from
//! NV12/P010 as hardware decoders hand them back after their transfer, then the
//! [`Converter`]'s range tables on the (small) result. A crop is copied out of the
//! decoded planes first, only its rows, so a small region costs little. One scaler
//! per camera, kept across frames and rebuilt when the source's size or pixel format
//! changes mid-stream. Frames asked for at full size go through the [`Converter`]
//! alone, exactly as without a shape.
//!
//! swscale only ever sees `yuv420p`-named planes on its output (and on its input
//! unless the decoder's format is another): it then copies the range through, and
//! the range is ours to keep track of. Its full-range `yuvj` names would do the same
//! work but make it warn about deprecated formats on every scaler it builds.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::color::Range;

use super::convert::Converter;
use crate::picture::Yuv420;
use crate::shape::{Crop, FrameShape, Plan, ShapeError, Size};

/// Why a frame could not be shaped.
#[derive(Debug)]
pub enum ShapeFailure {
    /// The source does not allow what was asked (a crop outside it).
    Shape(ShapeError),
    Libav(ffmpeg_next::Error),
}

impl From<ffmpeg_next::Error> for ShapeFailure {
    fn from(error: ffmpeg_next::Error) -> ShapeFailure {
        ShapeFailure::Libav(error)
    }
}

/// Decoded frames to full-range 4:2:0 planes of the shape asked for.
#[derive(Default)]
pub struct Shaper {
    shape: FrameShape,
    converter: Converter,
    /// The plan for the last source size seen.
    plan: Option<(Size, Plan)>,
    /// The crop region (or a frame swscale cannot read as it is), copied out.
    staging: Option<frame::Video>,
    scaler: Option<Scaler>,
}

struct Scaler {
    /// Input format and size, output size.
    key: (Pixel, u32, u32, Size),
    context: scaling::Context,
    output: frame::Video,
}

/// What swscale reads, and whether its samples are full range.
struct Input<'a> {
    frame: &'a frame::Video,
    full_range: bool,
}

impl Shaper {
    pub fn new(shape: FrameShape) -> Shaper {
        Shaper {
            shape,
            ..Shaper::default()
        }
    }

    /// The frame as full-range 4:2:0 planes of the asked shape.
    pub fn shape<'a>(&'a mut self, frame: &'a frame::Video) -> Result<Yuv420<'a>, ShapeFailure> {
        if self.shape.is_full_size() {
            return Ok(self.converter.convert(frame)?);
        }
        let source = Size {
            width: frame.width(),
            height: frame.height(),
        };
        let plan = self.plan(source)?;
        if plan.is_identity(source) {
            return Ok(self.converter.convert(frame)?);
        }
        let Shaper {
            converter,
            staging,
            scaler,
            ..
        } = self;
        let Input {
            frame: input,
            full_range,
        } = scaler_input(frame, plan.region, converter, staging)?;
        let range = if full_range { Range::JPEG } else { Range::MPEG };
        if plan.region.size() == plan.output && input.format() == Pixel::YUV420P {
            // A crop at its own size: the copied region is the frame.
            let cropped = staging.as_mut().expect("a crop is copied");
            cropped.set_color_range(range);
            return Ok(converter.convert(cropped)?);
        }
        let key = (input.format(), input.width(), input.height(), plan.output);
        if scaler.as_ref().map(|s| s.key) != Some(key) {
            *scaler = Some(Scaler {
                key,
                context: scaling::Context::get(
                    key.0,
                    key.1,
                    key.2,
                    Pixel::YUV420P,
                    plan.output.width,
                    plan.output.height,
                    flags(input.width(), input.height(), plan.output),
                )?,
                output: frame::Video::empty(),
            });
        }
        let scaler = scaler.as_mut().expect("scaler was just built");
        scaler.context.run(input, &mut scaler.output)?;
        scaler.output.set_color_range(range);
        Ok(converter.convert(&scaler.output)?)
    }

    /// The plan for a source of this size, decided again when the size changes.
    fn plan(&mut self, source: Size) -> Result<Plan, ShapeFailure> {
        if let Some((size, plan)) = self.plan {
            if size == source {
                return Ok(plan);
            }
        }
        let plan = self.shape.plan(source).map_err(ShapeFailure::Shape)?;
        log::info!(
            "frames of the {source} source: {} of region {}",
            plan.output,
            plan.region
        );
        self.plan = Some((source, plan));
        Ok(plan)
    }
}

/// Area averaging to shrink (each output pixel the mean of the pixels it covers: no
/// aliasing, and the cheapest at large ratios), bicubic to enlarge.
fn flags(width: u32, height: u32, output: Size) -> scaling::Flags {
    if output.width < width || output.height < height {
        scaling::Flags::AREA | scaling::Flags::ACCURATE_RND
    } else {
        scaling::Flags::BICUBIC | scaling::Flags::ACCURATE_RND
    }
}

/// What swscale reads: the decoded frame itself when it is the whole region in
/// limited range; else the region copied out of the decoded planes (4:2:0, NV12,
/// P010), or out of the converted full-range planes for every other format and for
/// full-range semi-planar frames.
fn scaler_input<'a>(
    frame: &'a frame::Video,
    region: Crop,
    converter: &mut Converter,
    staging: &'a mut Option<frame::Video>,
) -> Result<Input<'a>, ffmpeg_next::Error> {
    let format = frame.format();
    let full_range = frame.color_range() == Range::JPEG || is_full_range_format(format);
    let whole = region
        == Crop::whole(Size {
            width: frame.width(),
            height: frame.height(),
        });
    if whole && !full_range {
        return Ok(Input { frame, full_range });
    }
    let copy_as = match format {
        Pixel::YUV420P | Pixel::YUVJ420P => Some(Pixel::YUV420P),
        Pixel::NV12 | Pixel::P010LE if !full_range => Some(format),
        _ => None,
    };
    if let Some(copy_as) = copy_as {
        let planes: Vec<(&[u8], usize)> = (0..layout(copy_as).len())
            .map(|plane| (frame.data(plane), frame.stride(plane)))
            .collect();
        let frame = copy_region(&planes, copy_as, region, staging)?;
        return Ok(Input { frame, full_range });
    }
    let converted = converter.convert(frame)?;
    let planes = [
        (converted.y, converted.y_stride),
        (converted.u, converted.u_stride),
        (converted.v, converted.v_stride),
    ];
    let frame = copy_region(&planes, Pixel::YUV420P, region, staging)?;
    Ok(Input {
        frame,
        full_range: true,
    })
}

/// Formats whose name says they are full range.
fn is_full_range_format(format: Pixel) -> bool {
    matches!(
        format,
        Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P | Pixel::YUVJ411P
    )
}

/// One plane of a layout: bytes per sample, samples per pixel (2 for interleaved
/// U and V), and its horizontal and vertical subsampling as shifts.
#[derive(Debug, Clone, Copy)]
struct PlaneLayout {
    bytes: usize,
    components: usize,
    x_shift: u32,
    y_shift: u32,
}

const fn plane(bytes: usize, components: usize, shift: u32) -> PlaneLayout {
    PlaneLayout {
        bytes,
        components,
        x_shift: shift,
        y_shift: shift,
    }
}

/// The planes of the formats a region is copied from.
fn layout(format: Pixel) -> &'static [PlaneLayout] {
    const PLANAR: [PlaneLayout; 3] = [plane(1, 1, 0), plane(1, 1, 1), plane(1, 1, 1)];
    const NV12: [PlaneLayout; 2] = [plane(1, 1, 0), plane(1, 2, 1)];
    const P010: [PlaneLayout; 2] = [plane(2, 1, 0), plane(2, 2, 1)];
    match format {
        Pixel::NV12 => &NV12,
        Pixel::P010LE => &P010,
        _ => &PLANAR,
    }
}

/// Copies `region` of `planes` (data and stride, laid out as `format`) into the
/// staging frame, made anew when its format or size changes. The region was checked
/// to lie inside the frame; planes shorter than their size say are an error.
fn copy_region<'a>(
    planes: &[(&[u8], usize)],
    format: Pixel,
    region: Crop,
    staging: &'a mut Option<frame::Video>,
) -> Result<&'a frame::Video, ffmpeg_next::Error> {
    let fits = |f: &frame::Video| {
        (f.format(), f.width(), f.height()) == (format, region.width, region.height)
    };
    if !staging.as_ref().is_some_and(fits) {
        *staging = Some(frame::Video::new(format, region.width, region.height));
    }
    let out = staging.as_mut().expect("staging frame was just made");
    for (index, (layout, (data, stride))) in layout(format).iter().zip(planes).enumerate() {
        let sample = layout.bytes * layout.components;
        let x = (region.x >> layout.x_shift) as usize * sample;
        let y = (region.y >> layout.y_shift) as usize;
        let row_bytes = region.width.div_ceil(1 << layout.x_shift) as usize * sample;
        let rows = region.height.div_ceil(1 << layout.y_shift) as usize;
        let out_stride = out.stride(index);
        let target = out.data_mut(index);
        for row in 0..rows {
            let start = (y + row) * stride + x;
            let from = data
                .get(start..start + row_bytes)
                .ok_or(ffmpeg_next::Error::InvalidData)?;
            target[row * out_stride..][..row_bytes].copy_from_slice(from);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limited-range 4:2:0 frame whose every pixel tells where it is: luma grows
    /// with x, chroma U with y and V with x, in steps of 8 across the frame.
    fn coordinates(format: Pixel, width: u32, height: u32) -> frame::Video {
        let mut frame = frame::Video::new(Pixel::YUV420P, width, height);
        frame.set_color_range(Range::MPEG);
        for plane in 0..3 {
            let stride = frame.stride(plane);
            let (w, h) = (frame.plane_width(plane), frame.plane_height(plane));
            let data = frame.data_mut(plane);
            for row in 0..h as usize {
                for column in 0..w as usize {
                    let value = match plane {
                        0 => 16 + column * 200 / w as usize,
                        1 => 16 + row * 200 / h as usize,
                        _ => 16 + column * 200 / w as usize,
                    };
                    data[row * stride + column] = value as u8;
                }
            }
        }
        if format == Pixel::YUV420P {
            return frame;
        }
        let mut scaler = scaling::Context::get(
            Pixel::YUV420P,
            width,
            height,
            format,
            width,
            height,
            scaling::Flags::POINT,
        )
        .unwrap();
        let mut out = frame::Video::empty();
        scaler.run(&frame, &mut out).unwrap();
        out.set_color_range(Range::MPEG);
        out
    }

    fn shaper(shape: FrameShape) -> Shaper {
        crate::media::init();
        Shaper::new(shape)
    }

    fn width(w: u32) -> FrameShape {
        FrameShape {
            width: Some(w),
            ..FrameShape::default()
        }
    }

    fn luma_at(picture: &Yuv420<'_>, x: usize, y: usize) -> u8 {
        picture.y[y * picture.y_stride + x]
    }

    #[test]
    fn scales_to_the_asked_size_from_every_decoder_format() {
        for format in [Pixel::YUV420P, Pixel::NV12, Pixel::P010LE, Pixel::YUV444P] {
            let frame = coordinates(format, 1920, 1080);
            let mut shaper = shaper(width(640));
            let picture = shaper.shape(&frame).unwrap();
            assert_eq!((picture.width, picture.height), (640, 360), "{format:?}");
            // Full range: the left edge's limited-range 16 became 0, luma still grows.
            assert!(luma_at(&picture, 0, 100) < 4, "{format:?}");
            assert!(luma_at(&picture, 600, 100) > 200, "{format:?}");
        }
    }

    #[test]
    fn a_crop_is_that_region_of_every_format() {
        let crop = Crop {
            x: 960,
            y: 540,
            width: 480,
            height: 270,
        };
        let shape = FrameShape {
            crop: Some(crop),
            width: Some(240),
            ..FrameShape::default()
        };
        let full = FrameShape {
            width: Some(1920),
            height: Some(1080),
            ..FrameShape::default()
        };
        for format in [Pixel::YUV420P, Pixel::NV12, Pixel::P010LE, Pixel::YUV444P] {
            let frame = coordinates(format, 1920, 1080);
            let mut whole = shaper(full);
            let reference = whole.shape(&frame).unwrap();
            let mut cropped = shaper(shape);
            let picture = cropped.shape(&frame).unwrap();
            assert_eq!((picture.width, picture.height), (240, 136), "{format:?}");
            // Output pixel (i, j) covers source pixels from (960 + 2i, 540 + 2j).
            for (i, j) in [(0, 0), (100, 60), (239, 135)] {
                let expected = luma_at(&reference, 960 + 2 * i, 540 + 2 * j);
                let got = luma_at(&picture, i, j);
                assert!(
                    expected.abs_diff(got) <= 2,
                    "{format:?} ({i}, {j}): {got} vs {expected}"
                );
            }
            let chroma_row = |p: &Yuv420<'_>, row: usize| p.u[row * p.u_stride];
            assert!(
                chroma_row(&reference, 270 + 2 * 34).abs_diff(chroma_row(&picture, 34)) <= 2,
                "{format:?} chroma"
            );
        }
    }

    #[test]
    fn a_crop_at_its_own_size_is_an_exact_copy() {
        let frame = coordinates(Pixel::YUV420P, 64, 48);
        let mut full = Converter::default();
        let reference = full.convert(&frame).unwrap().to_owned_picture();
        let mut cropped = shaper(FrameShape {
            crop: Some(Crop {
                x: 16,
                y: 8,
                width: 32,
                height: 16,
            }),
            ..FrameShape::default()
        });
        let picture = cropped.shape(&frame).unwrap();
        assert_eq!((picture.width, picture.height), (32, 16));
        for y in 0..16 {
            assert_eq!(
                &picture.y[y * picture.y_stride..][..32],
                &reference.y[(y + 8) * 64 + 16..][..32]
            );
        }
        for y in 0..8 {
            assert_eq!(
                &picture.v[y * picture.v_stride..][..16],
                &reference.v[(y + 4) * 32 + 8..][..16]
            );
        }
    }

    #[test]
    fn a_size_change_rebuilds_the_scaler_and_keeps_the_asked_width() {
        let mut shaper = shaper(width(320));
        for (w, h, expected) in [
            (1920, 1080, 180),
            (640, 480, 240),
            (641, 361, 180),
            (1920, 1080, 180),
        ] {
            let frame = coordinates(Pixel::YUV420P, w, h);
            let picture = shaper.shape(&frame).unwrap();
            assert_eq!((picture.width, picture.height), (320, expected), "{w}x{h}");
        }
    }

    #[test]
    fn a_crop_that_no_longer_fits_is_a_shape_error() {
        let mut shaper = shaper(FrameShape {
            crop: Some(Crop::parse("600,0,640,480").unwrap()),
            ..FrameShape::default()
        });
        assert!(shaper
            .shape(&coordinates(Pixel::YUV420P, 1920, 1080))
            .is_ok());
        let error = shaper
            .shape(&coordinates(Pixel::YUV420P, 640, 480))
            .unwrap_err();
        assert!(matches!(
            error,
            ShapeFailure::Shape(ShapeError::CropOutside { .. })
        ));
    }

    #[test]
    fn full_size_and_sizes_that_change_nothing_are_the_converters_planes() {
        let frame = coordinates(Pixel::YUV420P, 641, 361);
        let expected = Converter::default()
            .convert(&frame)
            .unwrap()
            .to_owned_picture();
        for shape in [
            FrameShape::default(),
            FrameShape {
                max_side: Some(1000),
                ..FrameShape::default()
            },
        ] {
            let mut shaper = shaper(shape);
            assert_eq!(shaper.shape(&frame).unwrap().to_owned_picture(), expected);
        }
    }
}
