//! Request bodies in the three encodings callers use (multipart, urlencoded, JSON),
//! read into one field map. Uploaded files are streamed to disk, never held whole.
//! Every body is bounded (`body_limit`): 1 MiB, or with an upload `MAX_UPLOAD_MB` for
//! the file plus 1 MiB for the rest; past it the answer is 413 and the rest is not read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use actix_multipart::{Multipart, MultipartError};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{web, HttpRequest};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::body_limit::{Budget, Limited};
use super::ApiError;

/// Bodies that are not uploads are small; anything larger is refused. In a multipart
/// body this bounds its text fields together, and everything but the upload.
const MAX_FIELDS_BYTES: usize = 1024 * 1024;

/// A file part written to the upload folder. It is removed when dropped (the request
/// failed, the client went away mid-upload, the probe is done) unless it is kept.
#[derive(Debug)]
pub struct Upload {
    pub path: PathBuf,
}

impl Upload {
    /// Keeps the file (it became a camera's source): its path, no longer removed.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("could not remove upload {}: {e}", self.path.display()),
        }
    }
}

#[derive(Debug, Default)]
pub struct Form {
    fields: HashMap<String, String>,
    pub upload: Option<Upload>,
}

impl Form {
    /// A field's value; an empty string counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every field with its value, as sent.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Where and how large uploads may be.
pub struct UploadRules<'a> {
    /// The multipart field that carries a file (`file`, `video`); others are ignored.
    pub field: &'a str,
    pub folder: &'a Path,
    pub max_bytes: u64,
}

/// Reads the body, whatever its encoding.
pub async fn read_form(
    request: &HttpRequest,
    payload: web::Payload,
    upload: Option<UploadRules<'_>>,
) -> Result<Form, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let budget = body_budget(content_type, upload.as_ref());
    budget.check_declared(request)?;
    read_body(content_type, payload, upload, budget).await
}

/// What a body sent with `content_type` may hold.
pub(crate) fn body_budget(content_type: &str, upload: Option<&UploadRules<'_>>) -> Rc<Budget> {
    let multipart = is_multipart(content_type);
    match (upload, multipart) {
        (Some(rules), true) => Budget::new(
            rules.max_bytes + MAX_FIELDS_BYTES as u64,
            format!(
                "the upload limit of {} MiB, MAX_UPLOAD_MB, and 1 MiB for the other fields",
                rules.max_bytes / (1024 * 1024)
            ),
        ),
        _ => Budget::new(
            MAX_FIELDS_BYTES as u64,
            "1 MiB, the limit of a body that is not an upload".into(),
        ),
    }
}

fn is_multipart(content_type: &str) -> bool {
    content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
}

/// Reads a body sent with `content_type` from any stream of its chunks, within
/// `budget`: the request's payload, or one made in memory (the fuzz targets).
pub(crate) async fn read_body<S, E>(
    content_type: &str,
    payload: S,
    upload: Option<UploadRules<'_>>,
    budget: Rc<Budget>,
) -> Result<Form, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + 'static,
    E: Into<PayloadError>,
{
    let payload = payload.map(|chunk| chunk.map_err(Into::into));
    let lowercase = content_type.to_ascii_lowercase();
    let multipart = is_multipart(content_type);
    let payload = Limited::new(payload, Rc::clone(&budget), multipart);
    if multipart {
        // The reader takes the boundary from the header, case kept.
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(content_type).map_err(|_| {
            ApiError::Unprocessable("Malformed multipart body: bad Content-Type".into())
        })?;
        headers.insert(header::CONTENT_TYPE, value);
        let multipart = Multipart::new(&headers, payload);
        return read_multipart(multipart, upload, &budget).await;
    }
    let body = read_small_body(payload, &budget).await?;
    let fields = if lowercase.starts_with("application/json") {
        parse_json(&body)?
    } else if lowercase.starts_with("application/x-www-form-urlencoded") {
        parse_urlencoded(&body)?
    } else if body.iter().all(u8::is_ascii_whitespace) {
        HashMap::new()
    } else {
        // No or an unusual content type: accept what the body plainly is.
        parse_json(&body).or_else(|_| parse_urlencoded(&body))?
    };
    Ok(Form {
        fields,
        upload: None,
    })
}

async fn read_small_body(
    mut payload: impl Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    budget: &Budget,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            budget
                .exceeded()
                .unwrap_or_else(|| ApiError::BadRequest(format!("Could not read the body: {e}")))
        })?;
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_json(body: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::Unprocessable(format!("Body is not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::Unprocessable("JSON body must be an object".into()))?;
    let mut fields = HashMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(ApiError::Unprocessable(format!(
                    "Field {key} must be a string or a number, not {other}"
                )))
            }
        };
        fields.insert(key.clone(), text);
    }
    Ok(fields)
}

fn parse_urlencoded(body: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| ApiError::Unprocessable(format!("Body is not valid form data: {e}")))
}

/// A multipart parser's error, or the 413 when it stopped because the body went past
/// its budget.
fn multipart_error(budget: &Budget, error: MultipartError) -> ApiError {
    if let Some(exceeded) = budget.exceeded() {
        return exceeded;
    }
    match error {
        // The parser holds at most 64 KiB ahead of what it has handed out: a part's
        // headers or framing that never end.
        MultipartError::Payload(PayloadError::Overflow) => {
            ApiError::PayloadTooLarge("Multipart part headers or framing larger than 64 KiB".into())
        }
        error => ApiError::Unprocessable(format!("Malformed multipart body: {error}")),
    }
}

/// The next chunk of a part's data, counted as taken out of the parser.
async fn next_chunk(
    field: &mut actix_multipart::Field,
    budget: &Budget,
) -> Option<Result<bytes::Bytes, actix_multipart::MultipartError>> {
    let chunk = field.next().await;
    if let Some(Ok(bytes)) = &chunk {
        budget.taken(bytes.len());
    }
    chunk
}

async fn read_multipart(
    mut multipart: Multipart,
    rules: Option<UploadRules<'_>>,
    budget: &Budget,
) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let mut text_bytes = 0;
    let result = async {
        while let Some(field) = multipart.next().await {
            let mut field = field.map_err(|e| multipart_error(budget, e))?;
            let (name, filename) = match field.content_disposition() {
                Some(cd) => (
                    cd.get_name().unwrap_or_default().to_owned(),
                    cd.get_filename().map(str::to_owned),
                ),
                None => (String::new(), None),
            };
            match (&rules, filename) {
                (Some(rules), Some(filename)) if name == rules.field && form.upload.is_none() => {
                    form.upload = store_upload(&mut field, &filename, rules, budget).await?;
                }
                (_, Some(_)) => drain(&mut field, budget).await?,
                (_, None) => {
                    let value = read_text_field(&mut field, budget, &mut text_bytes).await?;
                    form.fields.insert(name, value);
                }
            }
        }
        Ok(())
    }
    .await;
    // On an error the form, and any upload with it, is dropped.
    result.map(|()| form)
}

/// A text part; `text_bytes` is what the form's text parts took so far, 1 MiB at most.
async fn read_text_field(
    field: &mut actix_multipart::Field,
    budget: &Budget,
    text_bytes: &mut usize,
) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = next_chunk(field, budget).await {
        let chunk = chunk.map_err(|e| multipart_error(budget, e))?;
        *text_bytes += chunk.len();
        if *text_bytes > MAX_FIELDS_BYTES {
            return Err(ApiError::PayloadTooLarge(
                "The form's text fields are larger than 1 MiB together".into(),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::Unprocessable("A form field is not UTF-8 text".into()))
}

async fn drain(field: &mut actix_multipart::Field, budget: &Budget) -> Result<(), ApiError> {
    while let Some(chunk) = next_chunk(field, budget).await {
        chunk.map_err(|e| multipart_error(budget, e))?;
    }
    Ok(())
}

/// Streams one file part to a fresh file in the upload folder. An empty part (a form
/// submitted without choosing a file) counts as no upload.
async fn store_upload(
    field: &mut actix_multipart::Field,
    filename: &str,
    rules: &UploadRules<'_>,
    budget: &Budget,
) -> Result<Option<Upload>, ApiError> {
    let path = rules.folder.join(crate::uploads::file_name(filename));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| storage_error(&path, e))?;
    // From here the file goes with this future: dropped (the client went away) or
    // failed, it is removed.
    let upload = Upload { path };
    let mut size: u64 = 0;
    while let Some(chunk) = next_chunk(field, budget).await {
        let chunk = chunk.map_err(|e| {
            budget
                .exceeded()
                .unwrap_or_else(|| ApiError::BadRequest(format!("Upload interrupted: {e}")))
        })?;
        // Counted again as it streams: the body's limit leaves room for the fields.
        size += chunk.len() as u64;
        if size > rules.max_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "Upload is larger than the limit of {} MiB (MAX_UPLOAD_MB)",
                rules.max_bytes / (1024 * 1024)
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| storage_error(&upload.path, e))?;
    }
    file.flush()
        .await
        .map_err(|e| storage_error(&upload.path, e))?;
    Ok((size > 0).then_some(upload))
}

fn storage_error(path: &Path, error: std::io::Error) -> ApiError {
    let message = format!("Could not store the upload in {}: {error}", path.display());
    if error.raw_os_error() == Some(28) {
        ApiError::InsufficientStorage(message)
    } else {
        ApiError::Internal(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `body` as multipart with the boundary `B`, on a one-thread runtime; `None`
    /// if no answer came within a few seconds.
    fn read_multipart_body(body: &'static [u8]) -> Option<Result<Form, ApiError>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let payload = futures_util::stream::iter([Ok::<_, PayloadError>(Bytes::from(body))]);
        runtime.block_on(async {
            let content_type = "multipart/form-data; boundary=B";
            let read = read_body(content_type, payload, None, body_budget(content_type, None));
            tokio::time::timeout(std::time::Duration::from_secs(5), read)
                .await
                .ok()
        })
    }

    #[test]
    fn multipart_fields() {
        let form = read_multipart_body(
            b"--B\r\nContent-Disposition: form-data; name=\"camera_id\"\r\n\r\nc1\r\n\
              --B\r\nContent-Disposition: form-data; name=\"fps\"\r\n\r\n2\r\n--B--\r\n",
        )
        .expect("an answer")
        .unwrap();
        assert_eq!(form.get("camera_id"), Some("c1"));
        assert_eq!(form.get("fps"), Some("2"));
    }

    #[test]
    fn a_multipart_body_cut_short_is_refused_not_waited_for() {
        // Found by fuzzing (fuzz target decode_form): a body that ended in a field
        // whose last bytes were a line break, without the closing boundary, left the
        // reader waiting for more forever, and the request without an answer.
        for body in [
            &b"--B\r\nContent-Disposition: form-data; name=\"fps\"\r\n\r\n2\r\n"[..],
            b"--B\r\nContent-Disposition: form-data; name=\"fps\"\r\n\r\n2\r",
            b"--B\r\nContent-Disposition: form-data; name=\"fps\"\r\n\r\n2\r\n--",
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\rurlB--\r\n",
        ] {
            let answer = read_multipart_body(body);
            assert!(
                matches!(answer, Some(Err(ApiError::Unprocessable(_)))),
                "{:?}: {answer:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn json_numbers_and_strings_become_text() {
        let fields = parse_json(br#"{"camera_id": "c", "fps": 5, "x": null, "b": true}"#).unwrap();
        assert_eq!(fields["fps"], "5");
        assert_eq!(fields["b"], "true");
        assert!(!fields.contains_key("x"));
        assert!(parse_json(b"[1]").is_err());
        assert!(parse_json(br#"{"a": [1]}"#).is_err());
    }

    #[test]
    fn urlencoded_fields() {
        let fields = parse_urlencoded(b"camera_id=cam%201&fps=0.5").unwrap();
        assert_eq!(fields["camera_id"], "cam 1");
        assert_eq!(fields["fps"], "0.5");
    }
}
