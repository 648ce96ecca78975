//! Entry points for the fuzz targets in `fuzz/`: the daemon's own parsers, reached
//! without a server, a camera or libav. Not an API; nothing in the daemon calls it.
//! (The source, config file and config value parsers are public already.)

use bytes::Bytes;

use crate::camera::StartRequest;
use crate::config::Config;
use crate::http::forms::{body_budget, read_body, Upload, UploadRules};
use crate::http::ApiError;

pub use crate::media::nal::h264_disposable;

/// A `decode/` body read as the handler reads it, arriving in `chunks`: the start
/// request it makes. An uploaded file is stored in `config`'s upload folder (up to its
/// upload limit) and named in the request's `upload`; the caller removes it.
pub fn decode_request(
    content_type: &str,
    chunks: Vec<Vec<u8>>,
    config: &Config,
) -> Result<StartRequest, ApiError> {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime needs no resources");
    }
    let rules = UploadRules {
        field: "file",
        folder: &config.upload_folder,
        max_bytes: config.max_upload_bytes,
    };
    let payload = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|chunk| Ok::<_, std::io::Error>(Bytes::from(chunk))),
    );
    RUNTIME.with(|runtime| {
        runtime.block_on(async {
            let budget = body_budget(content_type, Some(&rules));
            let mut form = read_body(content_type, payload, Some(rules), budget).await?;
            let upload = form.upload.take().map(Upload::keep);
            Ok(StartRequest::from_fields(form.fields(), upload))
        })
    })
}
