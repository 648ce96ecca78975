//! Request bodies in the three encodings callers use (multipart, urlencoded, JSON),
//! read into one field map. Uploaded files are streamed to disk, never held whole.
//! Every body is bounded (`body_limit`): 1 MiB, or with an upload `MAX_UPLOAD_MB` for
//! the file plus 1 MiB for the rest; past it the answer is 413 and the rest is not read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::body_limit::{Budget, Limited};
use super::ApiError;

/// Bodies that are not uploads are small; anything larger is refused. In a multipart
/// body this bounds its text fields together, and everything but the upload.
const MAX_FIELDS_BYTES: usize = 1024 * 1024;

/// A file part written to the upload folder.
#[derive(Debug)]
pub struct Upload {
    pub path: PathBuf,
}

impl Upload {
    /// Removes the stored file (the request failed, or the probe is done).
    pub async fn discard(self) {
        if let Err(e) = tokio::fs::remove_file(&self.path).await {
            log::warn!("could not remove upload {}: {e}", self.path.display());
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

    pub async fn discard_upload(&mut self) {
        if let Some(upload) = self.upload.take() {
            upload.discard().await;
        }
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
        .unwrap_or("")
        .to_ascii_lowercase();
    let multipart = content_type.starts_with("multipart/form-data");
    let budget = match (&upload, multipart) {
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
    };
    budget.check_declared(request)?;
    let payload = Limited::new(payload, Rc::clone(&budget), multipart);
    if multipart {
        let multipart = Multipart::new(request.headers(), payload);
        return read_multipart(multipart, upload, &budget).await;
    }
    let body = read_small_body(payload, &budget).await?;
    let fields = if content_type.starts_with("application/json") {
        parse_json(&body)?
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
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
    mut payload: Limited<web::Payload>,
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
fn multipart_error(budget: &Budget, error: impl std::fmt::Display) -> ApiError {
    budget
        .exceeded()
        .unwrap_or_else(|| ApiError::Unprocessable(format!("Malformed multipart body: {error}")))
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
    if let Err(e) = result {
        form.discard_upload().await;
        return Err(e);
    }
    Ok(form)
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
    let mut size: u64 = 0;
    let written: Result<(), ApiError> = async {
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
                .map_err(|e| storage_error(&path, e))?;
        }
        file.flush().await.map_err(|e| storage_error(&path, e))
    }
    .await;
    drop(file);
    let upload = Upload { path };
    match written {
        Ok(()) if size == 0 => {
            upload.discard().await;
            Ok(None)
        }
        Ok(()) => Ok(Some(upload)),
        Err(e) => {
            upload.discard().await;
            Err(e)
        }
    }
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
