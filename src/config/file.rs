//! The optional config file (`CONFIG_FILE`, TOML): daemon settings under their
//! lowercase names (`jpeg_quality = 85`), and `[[camera]]` tables with the fields of
//! `decode/` (`id`, `url`, `fps`, ...), started at boot. Every value keeps the line it
//! was written on, so that an error can point at it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{RawValues, Setting};
use crate::camera::request::FIELDS;
use crate::camera::StartRequest;

/// The table name of the cameras started at boot.
const CAMERA_TABLE: &str = "camera";

/// A setting or a camera field that cannot be read, with where it was written.
#[derive(Debug, PartialEq)]
pub struct FileError {
    pub path: PathBuf,
    /// `None` when the file as a whole is the problem (missing, unreadable).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for FileError {}

/// A camera the file starts at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCamera {
    pub request: StartRequest,
    /// The line of its `[[camera]]` header.
    pub line: usize,
    /// The line of each field, to point at the one a check refuses.
    pub field_lines: HashMap<String, usize>,
}

impl FileCamera {
    /// The line to show for an error about `field` (its own line, else the header's).
    pub fn line_of(&self, field: &str) -> usize {
        self.field_lines.get(field).copied().unwrap_or(self.line)
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub values: RawValues,
    /// The line each value in `values` was written on.
    pub lines: HashMap<&'static str, usize>,
    pub cameras: Vec<FileCamera>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError {
            path: path.to_owned(),
            line: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        ConfigFile::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, FileError> {
        let at = |offset: usize, message: String| FileError {
            path: path.to_owned(),
            line: Some(line_of(text, offset)),
            message,
        };
        let table = DeTable::parse(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset, format!("not valid TOML: {}", e.message().trim()))
        })?;
        let mut file = ConfigFile {
            path: path.to_owned(),
            ..ConfigFile::default()
        };
        for (key, value) in table.get_ref() {
            let offset = key.span().start;
            if key.get_ref() == CAMERA_TABLE {
                file.cameras = cameras(value, text).map_err(|(o, m)| at(o, m))?;
                continue;
            }
            let setting = SETTINGS_IN_FILE
                .iter()
                .copied()
                .find(|s| s.file_key() == key.get_ref().as_ref())
                .ok_or_else(|| {
                    at(
                        offset,
                        format!(
                            "unknown key {:?} (expected a setting such as jpeg_quality, or [[camera]]; video-pipeline --help lists them)",
                            key.get_ref()
                        ),
                    )
                })?;
            let text_value = setting_value(setting, value.get_ref())
                .map_err(|m| at(value.span().start, format!("{}: {m}", key.get_ref())))?;
            file.values.insert(setting.name, text_value);
            file.lines.insert(setting.name, line_of(text, offset));
        }
        Ok(file)
    }
}

/// The settings a file may hold: not the file itself, and not the ones read only
/// from the environment.
static SETTINGS_IN_FILE: std::sync::LazyLock<Vec<&'static Setting>> =
    std::sync::LazyLock::new(|| {
        super::SETTINGS
            .iter()
            .filter(|s| s.flag.is_some() && s.name != "CONFIG_FILE")
            .collect()
    });

/// A setting's value as the text its parser reads: lists of directories and of
/// hardware types may be TOML arrays.
fn setting_value(setting: &Setting, value: &DeValue) -> Result<String, String> {
    let separator = match setting.name {
        "ALLOWED_INPUT_DIRS" => Some(":"),
        "HW_ACCEL_OPTIONS" => Some(","),
        _ => None,
    };
    match (value, separator) {
        (DeValue::Array(items), Some(separator)) => {
            let items: Result<Vec<String>, String> =
                items.iter().map(|item| scalar(item.get_ref())).collect();
            Ok(items?.join(separator))
        }
        _ => scalar(value),
    }
}

/// A string, number or boolean as text.
fn scalar(value: &DeValue) -> Result<String, String> {
    match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(|n| n.to_string())
            .map_err(|_| format!("integer {} is out of range", i.as_str())),
        DeValue::Float(f) => Ok(f.as_str().to_owned()),
        DeValue::Boolean(b) => Ok(b.to_string()),
        DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => {
            Err("expected a string, a number or a boolean".to_owned())
        }
    }
}

/// The `[[camera]]` tables; errors carry the byte offset they are about.
fn cameras(value: &Spanned<DeValue>, text: &str) -> Result<Vec<FileCamera>, (usize, String)> {
    let DeValue::Array(tables) = value.get_ref() else {
        return Err((
            value.span().start,
            "camera must be an array of tables: write [[camera]] above each one".to_owned(),
        ));
    };
    let mut cameras: Vec<FileCamera> = Vec::new();
    for table in tables.iter() {
        let DeValue::Table(fields) = table.get_ref() else {
            return Err((table.span().start, "a camera must be a table".to_owned()));
        };
        let mut camera = FileCamera {
            request: StartRequest::default(),
            line: line_of(text, table.span().start),
            field_lines: HashMap::new(),
        };
        for (key, value) in fields {
            let name = match key.get_ref().as_ref() {
                "id" => "camera_id",
                other => other,
            };
            if !FIELDS.contains(&name) {
                return Err((
                    key.span().start,
                    format!(
                        "unknown camera key {:?} (expected id, {})",
                        key.get_ref(),
                        FIELDS[1..].join(", ")
                    ),
                ));
            }
            let text_value = scalar(value.get_ref())
                .map_err(|m| (value.span().start, format!("{}: {m}", key.get_ref())))?;
            camera
                .field_lines
                .insert(name.to_owned(), line_of(text, key.span().start));
            camera.request.fields.insert(name.to_owned(), text_value);
        }
        let id = camera.request.fields.get("camera_id").cloned();
        match id {
            None => return Err((table.span().start, "a [[camera]] needs an id".to_owned())),
            Some(id)
                if cameras
                    .iter()
                    .any(|c| c.request.fields.get("camera_id") == Some(&id)) =>
            {
                return Err((table.span().start, format!("camera {id:?} is listed twice")))
            }
            Some(_) => cameras.push(camera),
        }
    }
    Ok(cameras)
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, FileError> {
        ConfigFile::parse(Path::new("vp.toml"), text)
    }

    #[test]
    fn settings_and_cameras_with_their_lines() {
        let file = parse(
            "port = 8100\njpeg_quality = 85\nhw_accel_options = [\"vaapi\", \"none\"]\n\n\
             [[camera]]\nid = \"lobby\"\nurl = \"rtsp://h/s\"\nfps = 2.5\n\n\
             [[camera]]\nid = \"door\"\nurl = \"rtsp://h/t\"\nloop = false\n",
        )
        .unwrap();
        assert_eq!(file.values["PORT"], "8100");
        assert_eq!(file.values["HW_ACCEL_OPTIONS"], "vaapi,none");
        assert_eq!(file.lines["JPEG_QUALITY"], 2);
        assert_eq!(file.cameras.len(), 2);
        let lobby = &file.cameras[0];
        assert_eq!(lobby.request.fields["camera_id"], "lobby");
        assert_eq!(lobby.request.fields["fps"], "2.5");
        assert_eq!(lobby.line_of("fps"), 8);
        assert_eq!(file.cameras[1].request.fields["loop"], "false");
    }

    #[test]
    fn errors_point_at_the_line() {
        let cases = [
            ("port = 1\njpg_quality = 3\n", 2, "jpg_quality"),
            ("port = [1]\n", 1, "port"),
            (
                "port = 1\n[[camera]]\nid = \"a\"\ncolour = \"red\"\n",
                4,
                "colour",
            ),
            ("[[camera]]\nurl = \"rtsp://h/s\"\n", 1, "needs an id"),
            (
                "[[camera]]\nid = \"a\"\n[[camera]]\nid = \"a\"\n",
                3,
                "twice",
            ),
            ("port = \n", 1, "TOML"),
            ("config_file = \"x\"\n", 1, "config_file"),
            ("rust_log = \"debug\"\n", 1, "rust_log"),
        ];
        for (text, line, word) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, Some(line), "{text:?}: {error}");
            assert!(error.to_string().contains(word), "{error}");
            assert!(error.to_string().starts_with("vp.toml:"), "{error}");
        }
    }
}
