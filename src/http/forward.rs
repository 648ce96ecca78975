//! Any replica answers any request: a request about a camera that another replica owns
//! (`crate::shard`) is passed to that replica, and its answer (status, headers, body,
//! streamed) is returned as it came. A request carries `X-Video-Pipeline-Forwarded-By`
//! once forwarded, so that one landing on a replica that does not own the camera
//! either is refused as a loop instead of going round.

use std::path::Path;
use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::io::AsyncReadExt;

use super::ApiError;
use crate::auth::PeerCredential;
use crate::shard::Shard;

/// Set on a forwarded request: the index of the replica that forwarded it.
pub const FORWARDED_BY: &str = "x-video-pipeline-forwarded-by";
/// Set on a `decode/` that hands a camera over after a change of replicas: the new
/// owner continues the camera's numbering, as after a restart.
pub const HANDOFF: &str = "x-video-pipeline-handoff";

/// A dead replica is known within this (a pod that is gone has no address at all).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Until the owner's answer starts; a stream (`mjpeg/`) then runs as long as it does.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Until the owner has taken a forwarded upload and answered.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);
/// The largest `cameras/` answer read from a peer.
const MAX_LIST_BYTES: usize = 64 * 1024 * 1024;
/// The file part of a forwarded upload is read in pieces of this size.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// Headers of one hop, never passed on (RFC 9110, 7.6.1), and those the client sets.
const NOT_PASSED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
    FORWARDED_BY,
];

thread_local! {
    /// One client per HTTP worker (a client belongs to its thread's runtime). Every
    /// forwarded request has a connection of its own, closed after the answer: a
    /// pooled connection to a replica that restarted would fail the next request.
    static CLIENT: awc::Client = awc::Client::builder()
        .connector(awc::Connector::new().timeout(CONNECT_TIMEOUT))
        .disable_redirects()
        .no_default_headers()
        .timeout(ANSWER_TIMEOUT)
        .finish();
}

fn client() -> awc::Client {
    CLIENT.with(awc::Client::clone)
}

/// What a forwarded request sends as its body.
pub enum Body<'a> {
    None,
    /// The request's fields, sent urlencoded.
    Fields(Vec<(&'a str, &'a str)>),
    /// The fields and a stored upload, sent as `multipart/form-data` with the file
    /// read from disk as it goes.
    Upload {
        fields: Vec<(&'a str, &'a str)>,
        /// The multipart field of the file.
        field: &'a str,
        path: &'a Path,
    },
}

/// The replica that answers a request about `camera_id` when it is another one;
/// `None`: this one. A request that was forwarded here although another replica owns
/// the camera is a loop: the replicas disagree about who owns what.
pub fn owner_elsewhere(
    shard: Option<&Shard>,
    request: &HttpRequest,
    camera_id: &str,
) -> Result<Option<usize>, ApiError> {
    let Some(shard) = shard else {
        return Ok(None);
    };
    let owner = shard.owner(camera_id);
    if owner == shard.index() {
        return Ok(None);
    }
    if let Some(by) = request.headers().get(FORWARDED_BY) {
        return Err(ApiError::LoopDetected(format!(
            "Camera {camera_id} belongs to replica {owner} of {} by this replica's ({}) count, but replica {} \
             forwarded the request here as its owner: SHARD_COUNT must be the same on every replica, and \
             PEER_URL_TEMPLATE or PEER_URLS must lead each index to that replica",
            shard.count(),
            shard.index(),
            by.to_str().unwrap_or("?")
        )));
    }
    Ok(Some(owner))
}

/// The owner's answer to `request` when another replica owns `camera_id`; `None`:
/// answer it here.
pub async fn to_owner(
    shard: Option<&Shard>,
    request: &HttpRequest,
    camera_id: &str,
    body: Body<'_>,
) -> Result<Option<HttpResponse>, ApiError> {
    match (shard, owner_elsewhere(shard, request, camera_id)?) {
        (Some(shard), Some(owner)) => forward(shard, owner, camera_id, request, body)
            .await
            .map(Some),
        _ => Ok(None),
    }
}

/// Sends `request` (its method, path, query string and end-to-end headers, with
/// `body`) to replica `owner` and returns its answer unchanged, streamed.
async fn forward(
    shard: &Shard,
    owner: usize,
    camera_id: &str,
    request: &HttpRequest,
    body: Body<'_>,
) -> Result<HttpResponse, ApiError> {
    let url = format!("{}{}", shard.peer_url(owner), path_and_query(request));
    let unreachable = |error: &dyn std::fmt::Display| {
        ApiError::Unavailable(format!(
            "Camera {camera_id} belongs to replica {owner} ({}), which cannot be reached: {error}",
            shard.peer_url(owner)
        ))
    };
    let mut outgoing = client()
        .request(request.method().clone(), url)
        .force_close()
        .insert_header((FORWARDED_BY, shard.index().to_string()));
    outgoing = pass_headers(outgoing, request.headers(), !matches!(body, Body::None));
    let sent = match body {
        Body::None => outgoing.send().await,
        Body::Fields(fields) => {
            let encoded = serde_urlencoded::to_string(&fields).map_err(ApiError::internal)?;
            outgoing
                .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
                .send_body(encoded)
                .await
        }
        Body::Upload {
            fields,
            field,
            path,
        } => {
            let upload = MultipartUpload::new(&fields, field, path)
                .await
                .map_err(ApiError::internal)?;
            outgoing
                .insert_header((header::CONTENT_TYPE, upload.content_type()))
                .timeout(UPLOAD_TIMEOUT)
                .send_body(upload.into_body())
                .await
        }
    };
    let answer = sent.map_err(|e| unreachable(&e))?;
    Ok(unchanged(answer))
}

/// The path with the query string, as the client sent them.
fn path_and_query(request: &HttpRequest) -> String {
    let uri = request.uri();
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// Copies the client's end-to-end headers; the content type only when the body is
/// the client's own (a re-encoded body sets its own).
fn pass_headers(
    mut outgoing: awc::ClientRequest,
    headers: &HeaderMap,
    body_reencoded: bool,
) -> awc::ClientRequest {
    for (name, value) in headers {
        let skip = NOT_PASSED.contains(&name.as_str())
            || (body_reencoded && *name == header::CONTENT_TYPE);
        if !skip {
            outgoing = outgoing.append_header((name.clone(), value.clone()));
        }
    }
    outgoing
}

/// The owner's answer as this replica's: the same status, headers and body, the body
/// streamed with its length when the owner gave one.
fn unchanged<S>(answer: awc::ClientResponse<S>) -> HttpResponse
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    let status = answer.status();
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if !NOT_PASSED.contains(&name.as_str()) {
            response.append_header((name.clone(), value.clone()));
        }
    }
    let length = answer
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if status == StatusCode::NOT_MODIFIED || status == StatusCode::NO_CONTENT {
        return response.finish();
    }
    match length {
        Some(length) => response.body(SizedStream::new(length, answer)),
        None => response.streaming(answer),
    }
}

/// `cameras/` of every other replica (`query` as given, without `all`), each answer's
/// `cameras` list; a replica that cannot be reached or does not answer 200 makes the
/// whole gathering fail, rather than give a list that silently lacks cameras.
pub async fn gather_cameras(
    shard: &Shard,
    request: &HttpRequest,
    query: &str,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let path = request.uri().path();
    let asks = shard.others().map(|(index, base)| {
        let url = if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        };
        let outgoing = client()
            .request(Method::GET, url)
            .force_close()
            .insert_header((FORWARDED_BY, shard.index().to_string()));
        let outgoing = pass_headers(outgoing, request.headers(), false);
        async move {
            let failed = |why: String| {
                ApiError::Unavailable(format!("cameras/?all=true: replica {index} ({base}) {why}"))
            };
            let mut answer = outgoing
                .send()
                .await
                .map_err(|e| failed(format!("cannot be reached: {e}")))?;
            let status = answer.status();
            let body = answer
                .body()
                .limit(MAX_LIST_BYTES)
                .await
                .map_err(|e| failed(format!("broke off its answer: {e}")))?;
            if status != StatusCode::OK {
                return Err(failed(format!(
                    "answered {status}: {}",
                    String::from_utf8_lossy(&body)
                )));
            }
            let mut list: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| failed(format!("answered no camera list: {e}")))?;
            match list.get_mut("cameras").map(serde_json::Value::take) {
                Some(serde_json::Value::Array(cameras)) => Ok(cameras),
                _ => Err(failed("answered no camera list".into())),
            }
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut cameras = Vec::new();
    for answer in answers {
        cameras.extend(answer?);
    }
    Ok(cameras)
}

/// Sends a saved camera's request to its owner's `decode/`, as a hand-over: the
/// status of the owner's answer and its body, or why it could not be asked; with
/// `credential` (`PEER_API_KEY`), as a caller with the control scope. Runs on a
/// thread of its own with its own runtime (`handoff.rs`).
pub async fn hand_over(
    shard: &Shard,
    credential: Option<&PeerCredential>,
    owner: usize,
    fields: &[(&str, &str)],
    upload: Option<&Path>,
) -> Result<(StatusCode, Bytes), String> {
    let url = format!(
        "{}{}/decode/",
        shard.peer_url(owner),
        crate::http::BASE_PATH
    );
    let mut outgoing = client()
        .post(url)
        .force_close()
        .insert_header((FORWARDED_BY, shard.index().to_string()))
        .insert_header((HANDOFF, "resume"));
    if let Some(credential) = credential {
        outgoing = outgoing.insert_header((header::AUTHORIZATION, credential.authorization()));
    }
    let sent = match upload {
        None => {
            let encoded = serde_urlencoded::to_string(fields).map_err(|e| e.to_string())?;
            outgoing
                .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
                .send_body(encoded)
                .await
        }
        Some(path) => {
            let upload = MultipartUpload::new(fields, "file", path)
                .await
                .map_err(|e| format!("cannot read the upload {}: {e}", path.display()))?;
            outgoing
                .insert_header((header::CONTENT_TYPE, upload.content_type()))
                .timeout(UPLOAD_TIMEOUT)
                .send_body(upload.into_body())
                .await
        }
    };
    let mut answer = sent.map_err(|e| e.to_string())?;
    let body = answer
        .body()
        .limit(MAX_LIST_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    Ok((answer.status(), body))
}

/// Whether a request asks for a hand-over (set only together with [`FORWARDED_BY`]).
pub fn is_handoff(request: &HttpRequest) -> bool {
    let headers = request.headers();
    headers.contains_key(FORWARDED_BY) && headers.contains_key(HANDOFF)
}

/// A `multipart/form-data` body of text fields and one file, its length known in
/// advance, the file streamed from disk.
struct MultipartUpload {
    boundary: String,
    head: Bytes,
    file: tokio::fs::File,
    file_length: u64,
    tail: Bytes,
}

impl MultipartUpload {
    async fn new(
        fields: &[(&str, &str)],
        field: &str,
        path: &Path,
    ) -> std::io::Result<MultipartUpload> {
        let boundary = format!("video-pipeline-{:032x}", rand::random::<u128>());
        let mut head = BytesMut::new();
        for (name, value) in fields {
            head.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
                    quoted(name)
                )
                .as_bytes(),
            );
        }
        let file_name = path
            .file_name()
            .map_or_else(|| "upload".into(), |n| n.to_string_lossy().into_owned());
        head.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n",
                quoted(field),
                quoted(&file_name)
            )
            .as_bytes(),
        );
        let file = tokio::fs::File::open(path).await?;
        let file_length = file.metadata().await?.len();
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        Ok(MultipartUpload {
            boundary,
            head: head.freeze(),
            file,
            file_length,
            tail,
        })
    }

    fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    fn into_body(self) -> SizedStream<impl Stream<Item = Result<Bytes, std::io::Error>>> {
        let length = self.head.len() as u64 + self.file_length + self.tail.len() as u64;
        let file = stream::unfold(self.file, |mut file| async move {
            let mut chunk = BytesMut::zeroed(UPLOAD_CHUNK);
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok(chunk.freeze()), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        let body = stream::once(async move { Ok(self.head) })
            .chain(file)
            .chain(stream::once(async move { Ok(self.tail) }));
        SizedStream::new(length, Box::pin(body))
    }
}

/// A name inside a quoted `Content-Disposition` parameter (names and upload file names
/// here never hold quotes, but a request field could).
fn quoted(name: &str) -> String {
    name.replace(['"', '\r', '\n'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use actix_web::test::TestRequest;

    fn header(name: &str, value: &str) -> (HeaderName, HeaderValue) {
        (
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        )
    }

    fn shard(index: usize) -> Shard {
        Shard::from_list(
            index,
            3,
            "http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3",
        )
        .unwrap()
    }

    #[test]
    fn a_camera_of_this_replica_is_answered_here() {
        let request = TestRequest::default().to_http_request();
        assert_eq!(owner_elsewhere(None, &request, "cam").unwrap(), None);
        let id = "cam-7";
        let owner = shard(0).owner(id);
        assert_eq!(
            owner_elsewhere(Some(&shard(owner)), &request, id).unwrap(),
            None
        );
        let other = (owner + 1) % 3;
        assert_eq!(
            owner_elsewhere(Some(&shard(other)), &request, id).unwrap(),
            Some(owner)
        );
    }

    #[test]
    fn a_forwarded_request_for_another_replica_is_a_loop() {
        let id = "cam-7";
        let owner = shard(0).owner(id);
        let other = (owner + 1) % 3;
        let forwarded = TestRequest::default()
            .insert_header(header(FORWARDED_BY, "2"))
            .to_http_request();
        let error = owner_elsewhere(Some(&shard(other)), &forwarded, id).unwrap_err();
        assert!(matches!(error, ApiError::LoopDetected(_)), "{error}");
        assert!(error.to_string().contains("SHARD_COUNT"), "{error}");
        assert_eq!(
            owner_elsewhere(Some(&shard(owner)), &forwarded, id).unwrap(),
            None,
            "the owner answers a forwarded request"
        );
    }

    #[test]
    fn hop_by_hop_headers_stay_here() {
        for name in ["connection", "transfer-encoding", "host", FORWARDED_BY] {
            assert!(NOT_PASSED.contains(&name), "{name}");
        }
        for name in [
            "authorization",
            "x-api-key",
            "if-none-match",
            "content-type",
        ] {
            assert!(!NOT_PASSED.contains(&name), "{name}");
        }
    }
}
