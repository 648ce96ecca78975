//! `decode/` bodies in the three encodings (JSON, urlencoded, multipart, and whatever
//! else a Content-Type says), read by the daemon's form reader over chunks of any size,
//! down to the start request and its validation.
//!
//! Input: one selector byte (low 2 bits: the encoding; the next 4: the chunk size,
//! 2^n bytes), then the body. Encoding 3 takes the Content-Type from the body's first
//! line. The multipart boundary is `BOUNDARY`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use video_pipeline::camera::{StartRequest, FIELDS};
use video_pipeline::fuzzing::decode_request;
use video_pipeline::source::Source;
use video_pipeline_fuzz::{allowed_file, scratch};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (content_type, body) = match selector & 3 {
        0 => ("application/json".to_owned(), rest),
        1 => ("application/x-www-form-urlencoded".to_owned(), rest),
        2 => ("multipart/form-data; boundary=BOUNDARY".to_owned(), rest),
        _ => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let content_type = String::from_utf8_lossy(&rest[..end]).into_owned();
            (content_type, rest.get(end + 1..).unwrap_or_default())
        }
    };
    let chunk_size = 1usize << ((selector >> 2) & 0xF);
    let chunks = body.chunks(chunk_size).map(<[u8]>::to_vec).collect();
    let scratch = scratch();
    let Ok(request) = decode_request(&content_type, chunks, &scratch.config) else {
        return;
    };
    check(&request);
    if let Some(upload) = &request.upload {
        std::fs::remove_file(upload).expect("the upload was stored");
    }
});

fn check(request: &StartRequest) {
    let scratch = scratch();
    for (name, value) in &request.fields {
        assert!(
            FIELDS.contains(&name.as_str()),
            "unknown field {name:?} kept"
        );
        assert!(
            !value.is_empty() && value.trim() == value,
            "{name}={value:?}"
        );
    }
    if let Some(upload) = &request.upload {
        assert_eq!(
            upload.parent(),
            Some(scratch.config.upload_folder.as_path())
        );
        assert!(upload.is_file(), "{upload:?} was not stored");
    }
    let Ok(valid) = request.validate(&scratch.config) else {
        return;
    };
    // The camera id becomes one folder inside OUTPUT_FOLDER, nothing else.
    let folder = &valid.settings.output_folder;
    assert_eq!(
        folder.parent(),
        Some(scratch.config.output_folder.as_path())
    );
    assert_eq!(
        folder.file_name().and_then(|n| n.to_str()),
        Some(valid.id.as_str())
    );
    if let Source::File(path) = &valid.settings.source {
        assert!(allowed_file(scratch, path), "{path:?} is not allowed");
    }
    // The state file saves the request as JSON and checks it again at the next start:
    // the same camera must come back.
    let saved = serde_json::to_string(&valid.settings.request).expect("a request is JSON");
    let restored: StartRequest = serde_json::from_str(&saved).expect("saved JSON reads back");
    assert_eq!(&restored, request);
    let again = restored
        .validate(&scratch.config)
        .expect("a saved request is valid again");
    assert_eq!(again.id, valid.id);
    assert_eq!(again.settings.source, valid.settings.source);
}
