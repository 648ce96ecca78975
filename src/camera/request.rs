//! A request to start a camera, in the words callers use: the fields of `decode/`,
//! a `[[camera]]` table of the config file, or a camera saved in the state file. All
//! three are checked by the one [`StartRequest::validate`] into the camera's settings,
//! and a running camera keeps its request so that it can be started again as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::settings::{CameraSettings, FrameLimit};
use crate::config::{parse_bool, Config};
use crate::media::hw::HwChoice;
use crate::media::{self, VideoInfo};
use crate::output::retention::{MAX_AGE_LIMIT_SECONDS, MAX_FRAMES_LIMIT};
use crate::sampling::{Fps, FpsError, Sampling};
use crate::shape::{self, Crop, FieldError, FrameShape, ShapeError, Size};
use crate::source::{CameraId, RtspTransport, Source, SourceError};
use crate::stop::StopToken;

/// Every field a start request may carry, in the order they are checked.
pub const FIELDS: [&str; 17] = [
    "camera_id",
    "fps",
    "force_format",
    "url",
    "source",
    "rtsp_transport",
    "sampling",
    "realtime",
    "loop",
    "live",
    "max_frames",
    "max_age_seconds",
    "width",
    "height",
    "max_side",
    "crop",
    "quality",
];

/// The JPEG quality a camera may ask for.
pub const QUALITY_RANGE: std::ops::RangeInclusive<u8> = 1..=100;

/// Why a request cannot start a camera, with the field it is about.
#[derive(Debug, Error, PartialEq)]
pub enum RequestError {
    #[error("Field required: {0}")]
    Missing(&'static str),
    /// A value of the wrong type (`fps=abc`, `loop=maybe`).
    #[error("{message}")]
    WrongType {
        field: &'static str,
        message: String,
    },
    /// A value of the right type that is not allowed.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl RequestError {
    /// The field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            RequestError::Missing(field)
            | RequestError::WrongType { field, .. }
            | RequestError::Invalid { field, .. } => field,
        }
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> RequestError {
        RequestError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// The fields as given (empty values already dropped), and an uploaded source file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    pub fields: BTreeMap<String, String>,
    /// A file stored in the upload folder for this camera; it wins over `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<PathBuf>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct ValidStart {
    pub id: CameraId,
    pub settings: CameraSettings,
}

impl StartRequest {
    /// Keeps the known fields with a non-empty value; callers may send others.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
        upload: Option<PathBuf>,
    ) -> StartRequest {
        let fields = fields
            .into_iter()
            .map(|(name, value)| (name, value.trim()))
            .filter(|(name, value)| FIELDS.contains(name) && !value.is_empty())
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        StartRequest { fields, upload }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The camera id alone (checked first, and all that `decode/` needs to answer for a
    /// camera that is already running).
    pub fn camera_id(&self) -> Result<CameraId, RequestError> {
        let value = self
            .get("camera_id")
            .ok_or(RequestError::Missing("camera_id"))?;
        CameraId::parse(value).map_err(|e| RequestError::invalid("camera_id", e.to_string()))
    }

    /// Checks every field, in the documented order, and resolves the source. Touches the
    /// disk (local sources are resolved): call it off async threads.
    pub fn validate(&self, config: &Config) -> Result<ValidStart, RequestError> {
        let id = self.camera_id()?;
        let fps = parse_fps(self.get("fps"))?;
        let hwaccel_requested = match self.get("force_format") {
            None => HwChoice::Auto,
            Some(word) => HwChoice::parse(word).ok_or_else(|| {
                RequestError::invalid(
                    "force_format",
                    format!(
                        "Unknown force_format {word:?}; allowed values: {}",
                        HwChoice::allowed_values()
                    ),
                )
            })?,
        };
        let source = self.source(config)?;
        let rtsp_transport = match self.get("rtsp_transport") {
            None => RtspTransport::default(),
            Some(word) => RtspTransport::parse(word).ok_or_else(|| {
                RequestError::invalid(
                    "rtsp_transport",
                    format!("Unknown rtsp_transport {word:?}; allowed values: tcp, udp, auto"),
                )
            })?,
        };
        let sampling = match self.get("sampling") {
            None => Sampling::default(),
            Some(word) => Sampling::parse(word).ok_or_else(|| {
                RequestError::invalid(
                    "sampling",
                    format!("Unknown sampling {word:?}; allowed values: exact, keyframes, all"),
                )
            })?,
        };
        let realtime = self.flag("realtime")?;
        let looped = self.flag("loop")?;
        let live = self.optional_flag("live")?;
        // A file or an HTTP(S) URL may still turn out to be live once open: the camera
        // then fails with a clear error.
        if (realtime || looped) && (source.is_always_live() || live == Some(true)) {
            return Err(RequestError::invalid(
                if realtime { "realtime" } else { "loop" },
                "realtime and loop apply to sources that end (files, HTTP videos); live sources already run at their own pace",
            ));
        }
        let max_frames = match self.max_frames()?.or(config.max_frames_per_camera) {
            Some(frames) => FrameLimit::fixed(frames),
            None => FrameLimit {
                if_endless: crate::config::DEFAULT_MAX_FRAMES_PER_CAMERA,
                if_it_ends: 0,
            },
        };
        let max_age = match self.max_age()? {
            Some(seconds) => (seconds > 0.0).then(|| Duration::from_secs_f64(seconds)),
            None => config.max_frame_age,
        };
        let shape = self.shape()?;
        let quality = self.quality()?;
        if !shape.is_full_size() {
            check_shape_fits_file(&shape, &source, config)?;
        }
        let output_folder = config.output_folder.join(id.as_str());
        let settings = CameraSettings {
            hwaccel_requested,
            upload: self.upload.clone(),
            rtsp_transport,
            realtime,
            looped,
            live,
            sampling,
            max_frames,
            max_age,
            shape,
            quality,
            request: self.clone(),
            ..CameraSettings::new(source, fps, output_folder)
        };
        Ok(ValidStart { id, settings })
    }

    /// The upload, else `url` (alias `source`): a URL, or a local file inside the upload
    /// folder or `ALLOWED_INPUT_DIRS`.
    fn source(&self, config: &Config) -> Result<Source, RequestError> {
        let mut allowed_dirs = config.allowed_input_dirs.clone();
        allowed_dirs.push(config.upload_folder.clone());
        let field = if self.get("url").is_some() {
            "url"
        } else {
            "source"
        };
        let parsed = match (&self.upload, self.get("url").or_else(|| self.get("source"))) {
            (Some(path), _) => Source::local(path, &allowed_dirs),
            (None, Some(url)) => Source::parse(url, &allowed_dirs),
            (None, None) => {
                return Err(RequestError::invalid(
                    "url",
                    "Either a file or a URL must be provided.",
                ))
            }
        };
        parsed.map_err(|e: SourceError| RequestError::invalid(field, e.to_string()))
    }

    /// `max_frames`: not a number is the wrong type; not a whole number
    /// 0..[`MAX_FRAMES_LIMIT`], invalid.
    fn max_frames(&self) -> Result<Option<u64>, RequestError> {
        let Some(value) = self.get("max_frames") else {
            return Ok(None);
        };
        if value.parse::<f64>().is_err() {
            return Err(RequestError::WrongType {
                field: "max_frames",
                message: format!("max_frames must be a number, not {value:?}"),
            });
        }
        value
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_FRAMES_LIMIT)
            .map(Some)
            .ok_or_else(|| {
                RequestError::invalid(
                    "max_frames",
                    format!("invalid max_frames {value} (expected a whole number 0..{MAX_FRAMES_LIMIT}; 0: keep all)"),
                )
            })
    }

    /// `max_age_seconds`: not a number is the wrong type; outside
    /// 0..[`MAX_AGE_LIMIT_SECONDS`], invalid.
    fn max_age(&self) -> Result<Option<f64>, RequestError> {
        let Some(value) = self.get("max_age_seconds") else {
            return Ok(None);
        };
        let seconds = value.parse::<f64>().map_err(|_| RequestError::WrongType {
            field: "max_age_seconds",
            message: format!("max_age_seconds must be a number, not {value:?}"),
        })?;
        if !(0.0..=MAX_AGE_LIMIT_SECONDS).contains(&seconds) {
            return Err(RequestError::invalid(
                "max_age_seconds",
                format!("invalid max_age_seconds {value} (expected seconds 0..{MAX_AGE_LIMIT_SECONDS}; 0: no age limit)"),
            ));
        }
        Ok(Some(seconds))
    }

    /// `width`, `height`, `max_side` and `crop`. Every bad value is invalid (400),
    /// a word where a number belongs too: these fields have no callers from before.
    fn shape(&self) -> Result<FrameShape, RequestError> {
        let side = |field: &'static str| {
            self.get(field)
                .map(|value| shape::parse_side(field, value))
                .transpose()
        };
        let width = side("width").map_err(field_error)?;
        let height = side("height").map_err(field_error)?;
        let max_side = side("max_side").map_err(field_error)?;
        let crop = self
            .get("crop")
            .map(Crop::parse)
            .transpose()
            .map_err(field_error)?;
        FrameShape::new(width, height, max_side, crop).map_err(field_error)
    }

    /// `quality`: a whole number 1..100.
    fn quality(&self) -> Result<Option<u8>, RequestError> {
        let Some(value) = self.get("quality") else {
            return Ok(None);
        };
        value
            .parse::<u8>()
            .ok()
            .filter(|q| QUALITY_RANGE.contains(q))
            .map(Some)
            .ok_or_else(|| {
                RequestError::invalid(
                    "quality",
                    format!(
                        "invalid quality {value:?} (expected a whole number {}..{}; default JPEG_QUALITY)",
                        QUALITY_RANGE.start(),
                        QUALITY_RANGE.end()
                    ),
                )
            })
    }

    /// A yes/no field; absent means no. Any other word is the wrong type.
    fn flag(&self, name: &'static str) -> Result<bool, RequestError> {
        self.optional_flag(name).map(Option::unwrap_or_default)
    }

    /// A yes/no field that may be left out (`None`).
    fn optional_flag(&self, name: &'static str) -> Result<Option<bool>, RequestError> {
        self.get(name)
            .map(|value| {
                parse_bool(value).ok_or_else(|| RequestError::WrongType {
                    field: name,
                    message: format!("{name} must be true or false, not {value:?}"),
                })
            })
            .transpose()
    }
}

fn field_error(error: FieldError) -> RequestError {
    RequestError::invalid(error.field, error.message)
}

/// A local file's size is known now: a shape it cannot take is refused with the
/// request, rather than ending the camera in `error` once it opens (as it does for a
/// URL, whose size is known only then). A file that cannot be probed is left to the
/// camera, which reports why it cannot be opened.
fn check_shape_fits_file(
    shape: &FrameShape,
    source: &Source,
    config: &Config,
) -> Result<(), RequestError> {
    let Source::File(_) = source else {
        return Ok(());
    };
    let Ok(VideoInfo { width, height, .. }) = media::probe(
        source,
        config.probe_timeout,
        config.max_frame_pixels,
        &StopToken::new(),
    ) else {
        return Ok(());
    };
    match shape.plan(Size { width, height }) {
        Ok(_) => Ok(()),
        Err(error @ ShapeError::CropOutside { .. }) => {
            Err(RequestError::invalid("crop", error.to_string()))
        }
        Err(error @ ShapeError::TooLarge { .. }) => {
            let field = if shape.width.is_some() {
                "width"
            } else {
                "height"
            };
            Err(RequestError::invalid(
                field,
                format!("invalid {field} for this source: {error}"),
            ))
        }
    }
}

/// Not a number: the wrong type; a number out of range: invalid.
fn parse_fps(value: Option<&str>) -> Result<Fps, RequestError> {
    let Some(value) = value else {
        return Ok(Fps::DEFAULT);
    };
    if value.parse::<f64>().is_err() {
        return Err(RequestError::WrongType {
            field: "fps",
            message: format!("fps must be a number, not {value:?}"),
        });
    }
    value
        .parse()
        .map_err(|e: FpsError| RequestError::invalid("fps", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawValues;

    fn request(fields: &[(&str, &str)]) -> StartRequest {
        StartRequest::from_fields(fields.iter().copied(), None)
    }

    #[test]
    fn fps_rules() {
        assert_eq!(parse_fps(None).unwrap().get(), 1.0);
        assert_eq!(parse_fps(Some("0.2")).unwrap().get(), 0.2);
        assert_eq!(parse_fps(Some("60")).unwrap().get(), 60.0);
        assert!(matches!(
            parse_fps(Some("abc")),
            Err(RequestError::WrongType { .. })
        ));
        for bad in ["0", "-1", "60.5", "NaN", "inf"] {
            assert!(
                matches!(parse_fps(Some(bad)), Err(RequestError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn retention_field_rules() {
        let r = |name: &str, value: &str| request(&[(name, value)]);
        assert_eq!(r("x", "1").max_frames().unwrap(), None);
        assert_eq!(r("max_frames", "0").max_frames().unwrap(), Some(0));
        assert_eq!(r("max_frames", " 500 ").max_frames().unwrap(), Some(500));
        assert!(matches!(
            r("max_frames", "many").max_frames(),
            Err(RequestError::WrongType { .. })
        ));
        for bad in ["-1", "1.5", "100000001", "NaN", "inf"] {
            assert!(
                matches!(
                    r("max_frames", bad).max_frames(),
                    Err(RequestError::Invalid { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(r("x", "1").max_age().unwrap(), None);
        assert_eq!(r("max_age_seconds", "0").max_age().unwrap(), Some(0.0));
        assert_eq!(r("max_age_seconds", "1.5").max_age().unwrap(), Some(1.5));
        assert!(matches!(
            r("max_age_seconds", "an hour").max_age(),
            Err(RequestError::WrongType { .. })
        ));
        for bad in ["-1", "NaN", "inf", "1e12"] {
            assert!(
                matches!(
                    r("max_age_seconds", bad).max_age(),
                    Err(RequestError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_and_empty_fields_are_dropped() {
        let r = request(&[("camera_id", " cam "), ("fps", ""), ("colour", "red")]);
        assert_eq!(r.fields.len(), 1);
        assert_eq!(r.camera_id().unwrap().as_str(), "cam");
    }

    #[test]
    fn errors_name_their_field() {
        let config = Config::parse(&RawValues::new()).unwrap();
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "camera_id"),
            (&[("camera_id", "a/b")], "camera_id"),
            (&[("camera_id", "c"), ("fps", "x")], "fps"),
            (&[("camera_id", "c")], "url"),
            (
                &[
                    ("camera_id", "c"),
                    ("url", "rtsp://h/s"),
                    ("sampling", "most"),
                ],
                "sampling",
            ),
            (
                &[("camera_id", "c"), ("url", "rtsp://h/s"), ("loop", "true")],
                "loop",
            ),
        ];
        for (fields, field) in cases {
            let error = request(fields).validate(&config).unwrap_err();
            assert_eq!(error.field(), field, "{fields:?}: {error}");
        }
    }

    #[test]
    fn a_valid_request_keeps_itself_in_the_settings() {
        let config = Config::parse(&RawValues::new()).unwrap();
        let r = request(&[
            ("camera_id", "c"),
            ("url", "rtsp://h/s"),
            ("fps", "2.5"),
            ("rtsp_transport", "udp"),
        ]);
        let valid = r.validate(&config).unwrap();
        assert_eq!(valid.id.as_str(), "c");
        assert_eq!(valid.settings.fps.get(), 2.5);
        assert_eq!(valid.settings.rtsp_transport, RtspTransport::Udp);
        assert_eq!(valid.settings.request, r);
    }
}
