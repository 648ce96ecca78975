//! The frames a camera asks for: an output size (`width` and/or `height`, or
//! `max_side`) and a region of interest (`crop`, in source pixels, taken before
//! scaling). The values are checked once, when the request is; what they make of a
//! source is decided against its size, known only once it has opened, and again
//! whenever that size changes. Pure arithmetic: the scaling itself is in
//! `media::scale`.

use std::fmt;

use thiserror::Error;

/// The smallest side a caller may ask for (one JPEG block of 4:2:0 chroma).
pub const MIN_SIDE: u32 = 16;
/// The largest side of an output frame, asked for or following from the aspect ratio.
pub const MAX_SIDE: u32 = 8192;

/// A picture's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// A rectangle of the source, in its pixels; every value is even, so that it covers
/// whole 2x2 blocks of 4:2:0 chroma and is exactly the region asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Crop {
    /// The whole of a picture.
    pub fn whole(size: Size) -> Crop {
        Crop {
            x: 0,
            y: 0,
            width: size.width,
            height: size.height,
        }
    }

    pub fn size(&self) -> Size {
        Size {
            width: self.width,
            height: self.height,
        }
    }

    /// `x,y,w,h`: even whole numbers, `w` and `h` [`MIN_SIDE`]..[`MAX_SIDE`].
    pub fn parse(value: &str) -> Result<Crop, FieldError> {
        let invalid = || {
            FieldError::new(
                "crop",
                format!(
                    "invalid crop {value:?} (expected x,y,w,h in source pixels: even whole numbers, \
                     w and h {MIN_SIDE}..{MAX_SIDE})"
                ),
            )
        };
        let numbers: Vec<u32> = value
            .split(',')
            .map(|part| part.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| invalid())?;
        let [x, y, width, height] = numbers[..] else {
            return Err(invalid());
        };
        let sides = MIN_SIDE..=MAX_SIDE;
        if [x, y, width, height].iter().any(|n| n % 2 != 0)
            || !sides.contains(&width)
            || !sides.contains(&height)
        {
            return Err(invalid());
        }
        Ok(Crop {
            x,
            y,
            width,
            height,
        })
    }

    fn fits(&self, size: Size) -> bool {
        u64::from(self.x) + u64::from(self.width) <= u64::from(size.width)
            && u64::from(self.y) + u64::from(self.height) <= u64::from(size.height)
    }
}

impl fmt::Display for Crop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.x, self.y, self.width, self.height)
    }
}

/// A request value that cannot be used, with the field it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: String) -> FieldError {
        FieldError { field, message }
    }
}

/// Why a source cannot be given the frames asked for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShapeError {
    #[error(
        "crop {crop} does not fit the {source_size} source (x + w must be <= {}, y + h <= {})",
        source_size.width,
        source_size.height
    )]
    CropOutside { crop: Crop, source_size: Size },
    #[error(
        "the {region} picture would become {width}x{height}, larger than {MAX_SIDE} on a side"
    )]
    TooLarge {
        region: Size,
        width: u64,
        height: u64,
    },
}

/// What a camera asked its frames to be; all `None`: full size, as decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameShape {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub max_side: Option<u32>,
    pub crop: Option<Crop>,
}

/// What one source size becomes: the region read and the size it is scaled to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub region: Crop,
    pub output: Size,
}

impl Plan {
    /// Whether the frame is used as it is (the whole of it, at its own size).
    pub fn is_identity(&self, source: Size) -> bool {
        self.region == Crop::whole(source) && self.output == source
    }
}

impl FrameShape {
    /// A shape from values already parsed one by one; `max_side` with `width` or
    /// `height` is refused, since either alone decides the size.
    pub fn new(
        width: Option<u32>,
        height: Option<u32>,
        max_side: Option<u32>,
        crop: Option<Crop>,
    ) -> Result<FrameShape, FieldError> {
        if max_side.is_some() && (width.is_some() || height.is_some()) {
            return Err(FieldError::new(
                "max_side",
                "max_side cannot be combined with width or height (give either the size, or the longest side)"
                    .to_owned(),
            ));
        }
        Ok(FrameShape {
            width,
            height,
            max_side,
            crop,
        })
    }

    /// Nothing asked: frames stay as decoded.
    pub fn is_full_size(&self) -> bool {
        *self == FrameShape::default()
    }

    /// The region and output size for a source of `source` pixels: `width` and
    /// `height` are taken as they are; one of them alone keeps the region's aspect
    /// ratio, the other side rounded to the nearest even number (as ffmpeg's
    /// `scale=W:-2`); `max_side` shrinks the longest side to it, never enlarging.
    pub fn plan(&self, source: Size) -> Result<Plan, ShapeError> {
        let region = match self.crop {
            Some(crop) if !crop.fits(source) => {
                return Err(ShapeError::CropOutside {
                    crop,
                    source_size: source,
                })
            }
            Some(crop) => crop,
            None => Crop::whole(source),
        };
        let (w, h) = (region.width, region.height);
        let (width, height) = match (self.width, self.height, self.max_side) {
            (Some(width), Some(height), _) => (u64::from(width), u64::from(height)),
            (Some(width), None, _) => (u64::from(width), follow(h, width, w)),
            (None, Some(height), _) => (follow(w, height, h), u64::from(height)),
            (None, None, Some(side)) if w.max(h) > side => {
                if w >= h {
                    (u64::from(side), follow(h, side, w))
                } else {
                    (follow(w, side, h), u64::from(side))
                }
            }
            _ => (u64::from(w), u64::from(h)),
        };
        let limit = u64::from(MAX_SIDE);
        if width > limit || height > limit {
            return Err(ShapeError::TooLarge {
                region: region.size(),
                width,
                height,
            });
        }
        Ok(Plan {
            region,
            output: Size {
                width: width as u32,
                height: height as u32,
            },
        })
    }
}

/// A side asked for (`width`, `height`, `max_side`): an even whole number
/// [`MIN_SIDE`]..[`MAX_SIDE`].
pub fn parse_side(field: &'static str, value: &str) -> Result<u32, FieldError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| n % 2 == 0 && (MIN_SIDE..=MAX_SIDE).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!(
                    "invalid {field} {value:?} (expected an even whole number {MIN_SIDE}..{MAX_SIDE})"
                ),
            )
        })
}

/// `side * to / from` rounded to the nearest even number, at least 2: the side that
/// follows the aspect ratio when the other is set to `to` (ffmpeg rounds `-2` so).
fn follow(side: u32, to: u32, from: u32) -> u64 {
    let (side, to, from) = (u64::from(side), u64::from(to), u64::from(from));
    ((side * to + from) / (2 * from) * 2).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(width: u32, height: u32) -> Size {
        Size { width, height }
    }

    fn output(shape: FrameShape, source: Size) -> Size {
        shape.plan(source).unwrap().output
    }

    fn width(w: u32) -> FrameShape {
        FrameShape {
            width: Some(w),
            ..FrameShape::default()
        }
    }

    #[test]
    fn one_side_keeps_the_aspect_ratio_rounded_to_even() {
        assert_eq!(output(width(640), size(1920, 1080)), size(640, 360));
        assert_eq!(output(width(640), size(3840, 2160)), size(640, 360));
        // 361 * 320 / 641 = 180.2, 361 * 640 / 641 = 360.4
        assert_eq!(output(width(320), size(641, 361)), size(320, 180));
        assert_eq!(output(width(640), size(641, 361)), size(640, 360));
        // 4:3 at 250 wide: 187.5 rounds to 188 (ffmpeg's scale=250:-2 does too).
        assert_eq!(output(width(250), size(320, 240)), size(250, 188));
        let height = FrameShape {
            height: Some(360),
            ..FrameShape::default()
        };
        assert_eq!(output(height, size(1920, 1080)), size(640, 360));
        assert_eq!(output(height, size(1080, 1920)), size(202, 360));
        // Extremely wide: the other side never reaches 0.
        assert_eq!(output(width(16), size(8000, 16)), size(16, 2));
    }

    #[test]
    fn both_sides_are_taken_as_they_are() {
        let square = FrameShape {
            width: Some(640),
            height: Some(640),
            ..FrameShape::default()
        };
        assert_eq!(output(square, size(1920, 1080)), size(640, 640));
    }

    #[test]
    fn max_side_shrinks_the_longest_side_and_never_enlarges() {
        let side = |n| FrameShape {
            max_side: Some(n),
            ..FrameShape::default()
        };
        assert_eq!(output(side(640), size(1920, 1080)), size(640, 360));
        assert_eq!(output(side(640), size(1080, 1920)), size(360, 640));
        let small = size(320, 240);
        let plan = side(640).plan(small).unwrap();
        assert_eq!(plan.output, small);
        assert!(plan.is_identity(small));
        assert!(side(642)
            .plan(size(641, 361))
            .unwrap()
            .is_identity(size(641, 361)));
    }

    #[test]
    fn a_crop_is_the_region_and_decides_the_aspect() {
        let crop = Crop {
            x: 100,
            y: 50,
            width: 800,
            height: 800,
        };
        let shape = FrameShape {
            crop: Some(crop),
            ..FrameShape::default()
        };
        let plan = shape.plan(size(1920, 1080)).unwrap();
        assert_eq!((plan.region, plan.output), (crop, size(800, 800)));
        assert!(!plan.is_identity(size(1920, 1080)));
        let scaled = FrameShape {
            width: Some(400),
            ..shape
        };
        assert_eq!(output(scaled, size(1920, 1080)), size(400, 400));
        let small = FrameShape {
            max_side: Some(1000),
            ..shape
        };
        assert_eq!(output(small, size(1920, 1080)), size(800, 800));
    }

    #[test]
    fn a_crop_outside_the_source_says_where() {
        let shape = FrameShape {
            crop: Some(Crop::parse("1200,0,800,600").unwrap()),
            ..FrameShape::default()
        };
        let error = shape.plan(size(1920, 1080)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "crop 1200,0,800,600 does not fit the 1920x1080 source (x + w must be <= 1920, y + h <= 1080)"
        );
        assert!(shape.plan(size(2000, 1080)).is_ok());
    }

    #[test]
    fn a_following_side_past_the_limit_is_an_error() {
        let error = width(8192).plan(size(100, 1000)).unwrap_err();
        assert!(matches!(error, ShapeError::TooLarge { height: 81920, .. }));
    }

    #[test]
    fn values_are_checked_with_their_field_and_range() {
        assert_eq!(parse_side("width", "640"), Ok(640));
        for bad in ["641", "0", "14", "8194", "-2", "640.0", "wide", ""] {
            let error = parse_side("width", bad).unwrap_err();
            assert_eq!(error.field, "width");
            assert!(error.message.contains("16..8192"), "{}", error.message);
        }
        assert_eq!(
            Crop::parse(" 2, 4 ,640,360").unwrap(),
            Crop {
                x: 2,
                y: 4,
                width: 640,
                height: 360
            }
        );
        for bad in [
            "1,0,640,360",
            "0,0,641,360",
            "0,0,8,8",
            "0,0,640",
            "0,0,640,360,2",
            "a,b,c,d",
            "-2,0,640,360",
        ] {
            let error = Crop::parse(bad).unwrap_err();
            assert_eq!(error.field, "crop");
            assert!(error.message.contains("x,y,w,h"), "{}", error.message);
        }
        let error = FrameShape::new(Some(640), None, Some(640), None).unwrap_err();
        assert_eq!(error.field, "max_side");
        assert!(FrameShape::new(None, None, None, None)
            .unwrap()
            .is_full_size());
    }
}
