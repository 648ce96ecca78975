//! The TOML config file (`config/file.rs`): settings and `[[camera]]` tables, then the
//! settings through `Config::parse` and each camera through `StartRequest::validate`,
//! as the daemon does at start.
//!
//! An error names a line of the file; every value's line is one of the file's.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use video_pipeline::config::{Config, ConfigFile};

fuzz_target!(|data: &[u8]| {
    // The file is read as UTF-8 text first; anything else never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    let file = match ConfigFile::parse(Path::new("fuzz.toml"), text) {
        Ok(file) => file,
        Err(e) => {
            let line = e.line.expect("a parse error has a line");
            assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            assert!(!e.message.is_empty());
            return;
        }
    };
    for (name, line) in &file.lines {
        assert!(file.values.contains_key(name), "{name}");
        assert!(
            (1..=lines).contains(line),
            "{name} on line {line} of {lines}"
        );
    }
    let mut ids = Vec::new();
    for camera in &file.cameras {
        assert!((1..=lines).contains(&camera.line));
        for field in camera.request.fields.keys() {
            assert!((1..=lines).contains(&camera.line_of(field)), "{field}");
        }
        let id = &camera.request.fields["camera_id"];
        assert!(!ids.contains(&id), "camera {id:?} twice");
        ids.push(id);
    }
    let Ok(config) = Config::parse(&file.values) else {
        return;
    };
    for camera in &file.cameras {
        let _ = camera.request.validate(&config);
    }
});
