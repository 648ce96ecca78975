//! Route handlers. Anything that may block (libav, the disk) runs in `web::block`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::forms::{read_form, Form, UploadRules};
use super::forward::{self, Body};
use super::page;
use super::status::{
    CameraList, DecodeAnswer, FrameHeaders, Health, HwAccelCap, HwAvailable, Message,
    ReportedStatus, StartOutcome, StatusReport, StopAnswer, VideoInfoAnswer,
};
use super::{ApiError, AppState};
use crate::camera::{Admission, RequestError, StartRequest, Status, ValidStart};
use crate::media::MediaError;
use crate::source::{CameraId, Source};

type Query = web::Query<HashMap<String, String>>;

/// The multipart field of a `decode/` upload.
const DECODE_UPLOAD_FIELD: &str = "file";

pub async fn root() -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "FFMPEG Video Pipeline API is running!",
    })
}

/// The OpenAPI document, built once.
pub async fn openapi_json() -> Result<HttpResponse, ApiError> {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let text = match DOCUMENT.get() {
        Some(text) => text,
        None => {
            let text = super::document().to_json().map_err(ApiError::internal)?;
            DOCUMENT.get_or_init(|| text)
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(text.as_str()))
}

/// A page that renders `openapi.json` in the browser, with nothing fetched from elsewhere.
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(super::openapi::DOCS_PAGE)
}

/// `GET /`: the status page for a browser, the API's greeting for everyone else.
pub async fn front(request: HttpRequest) -> HttpResponse {
    let mut response = if page::wants_html(&request) {
        page::index(&request)
    } else {
        root().await
    };
    response
        .headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    response
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("Not Found".into()))
}

pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let cameras: BTreeMap<&str, usize> = state
        .supervisor
        .registry()
        .counts()
        .into_iter()
        .map(|(status, count)| (status.as_str(), count))
        .collect();
    HttpResponse::Ok().json(Health {
        status: "healthy",
        service: "video-pipeline",
        version: crate::VERSION,
        uptime_seconds: state.started.elapsed().as_secs(),
        cameras,
    })
}

/// Prometheus metrics as OpenMetrics text; built off the async threads, since reading
/// `/proc` and the output filesystem may block.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let metrics = Arc::clone(&state.metrics);
    let text = web::block(move || metrics.render())
        .await?
        .map_err(|e| ApiError::Internal(format!("metrics could not be encoded: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text))
}

pub async fn decode(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let config = state.supervisor.config();
    let rules = UploadRules {
        field: DECODE_UPLOAD_FIELD,
        folder: &config.upload_folder,
        max_bytes: config.max_upload_bytes,
    };
    let form = read_form(&request, payload, Some(rules)).await?;
    // An id that cannot be parsed is refused here, as its owner would refuse it. The
    // owner stores a copy of its own of any upload; this one is dropped with the form.
    if let Some(Ok(id)) = form.get("camera_id").map(CameraId::parse) {
        let fields = form.fields().collect();
        let body = match &form.upload {
            Some(upload) => Body::Upload {
                fields,
                field: DECODE_UPLOAD_FIELD,
                path: &upload.path,
            },
            None => Body::Fields(fields),
        };
        if let Some(answer) = forward::to_owner(shard(&state), &request, id.as_str(), body).await? {
            return Ok(answer);
        }
    }
    let resume = forward::is_handoff(&request);
    start_camera(&state, form, resume).await
}

/// Validates a start request and starts the camera; an upload that becomes the
/// camera's source is kept, any other is removed. `resume`: a camera handed over by
/// another replica, which continues its folder's numbering as after a restart.
async fn start_camera(
    state: &web::Data<AppState>,
    mut form: Form,
    resume: bool,
) -> Result<HttpResponse, ApiError> {
    let upload = form.upload.take();
    let request = StartRequest::from_fields(form.fields(), upload.as_ref().map(|u| u.path.clone()));
    let supervisor = Arc::clone(&state.supervisor);
    let valid = web::block(move || request.validate(supervisor.config())).await?;
    let ValidStart { id, mut settings } = valid.map_err(request_error)?;
    settings.resume |= resume;
    let output_folder = settings.output_folder.clone();
    let supervisor = Arc::clone(&state.supervisor);
    let start_id = id.clone();
    // The upload is kept or removed with the start, on the blocking thread, so that a
    // client going away cannot remove a started camera's source.
    let admission = web::block(move || {
        let admission = supervisor.start(&start_id, settings);
        if let (Admission::Started(_), Some(upload)) = (&admission, upload) {
            upload.keep();
        }
        admission
    })
    .await?;
    let (message, status) = match admission {
        Admission::Started(_) => ("Decoding started", StartOutcome::Started),
        Admission::AlreadyRunning(_) => ("Decoding already running", StartOutcome::AlreadyRunning),
        Admission::Full { running, limit } => {
            return Err(ApiError::TooManyRequests {
                detail: format!(
                    "Too many cameras: {running} are running and MAX_CAMERAS is {limit}; stop \
                     one (decode/stop/) or raise MAX_CAMERAS"
                ),
                retry_after: None,
            })
        }
    };
    let body = DecodeAnswer {
        message,
        camera_id: id.to_string(),
        output_folder: output_folder.display().to_string(),
        status,
    };
    Ok(HttpResponse::Ok().json(body))
}

fn request_error(error: RequestError) -> ApiError {
    match error {
        RequestError::Missing(field) => ApiError::missing(field),
        RequestError::WrongType { message, .. } => ApiError::Unprocessable(message),
        RequestError::Invalid { message, .. } => ApiError::BadRequest(message),
    }
}

pub async fn status(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let id = camera_id(query.get("camera_id").map(String::as_str))?;
    if let Some(answer) =
        forward::to_owner(shard(&state), &request, id.as_str(), Body::None).await?
    {
        return Ok(answer);
    }
    let report = match state.supervisor.registry().get(&id) {
        Some(camera) => StatusReport::of(&camera),
        None => StatusReport::not_started(&id),
    };
    Ok(HttpResponse::Ok().json(report))
}

/// Every camera with its status, by id; `?status=` keeps those with that status;
/// `?all=true` asks every replica for its cameras too.
pub async fn cameras(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let all = parse_flag(query.get("all").map(String::as_str), "all")?;
    let wanted = match query.get("status") {
        None => None,
        Some(word) => Some(Status::parse(word).ok_or_else(|| {
            let allowed: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::BadRequest(format!(
                "Unknown status {word:?}; allowed values: {}",
                allowed.join(", ")
            ))
        })?),
    };
    let mut cameras = state.supervisor.registry().all();
    cameras.sort_by(|a, b| a.id().as_str().cmp(b.id().as_str()));
    let reports: Vec<StatusReport> = cameras
        .iter()
        .map(|camera| StatusReport::of(camera))
        .filter(|report| wanted.is_none_or(|w| report.status == ReportedStatus::Camera(w)))
        .collect();
    if let (true, Some(shard)) = (all, shard(&state)) {
        let rest: Vec<(&String, &String)> = query.iter().filter(|(k, _)| *k != "all").collect();
        let rest = serde_urlencoded::to_string(rest).map_err(ApiError::internal)?;
        let mut cameras: Vec<serde_json::Value> = reports
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        cameras.extend(forward::gather_cameras(shard, &request, &rest).await?);
        let id = |camera: &serde_json::Value| camera["camera_id"].as_str().unwrap_or("").to_owned();
        cameras.sort_by_key(id);
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "count": cameras.len(),
            "cameras": cameras,
        })));
    }
    Ok(HttpResponse::Ok().json(CameraList {
        count: reports.len(),
        cameras: reports,
    }))
}

pub async fn stop(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let form = read_form(&request, payload, None).await?;
    let raw_id = form
        .get("camera_id")
        .or_else(|| query.get("camera_id").map(String::as_str));
    let id = camera_id(raw_id)?;
    let body = Body::Fields(form.fields().collect());
    if let Some(answer) = forward::to_owner(shard(&state), &request, id.as_str(), body).await? {
        return Ok(answer);
    }
    let message = if state.supervisor.stop(&id) {
        "Decoding stopped"
    } else {
        "Decoding stopped (no task was running)"
    };
    Ok(HttpResponse::Ok().json(StopAnswer {
        message,
        camera_id: id.to_string(),
    }))
}

pub async fn latest_frame(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let id = camera_id(query.get("camera_id").map(String::as_str))?;
    if let Some(answer) =
        forward::to_owner(shard(&state), &request, id.as_str(), Body::None).await?
    {
        return Ok(answer);
    }
    let camera = state
        .supervisor
        .registry()
        .get(&id)
        .ok_or_else(|| ApiError::NotFound("No decode task found for this camera.".into()))?;
    let frame = camera.latest().ok_or_else(|| {
        ApiError::NotFound("No frames available. Camera may not be streaming.".into())
    })?;
    let age = SystemTime::now()
        .duration_since(frame.captured_at)
        .unwrap_or(Duration::ZERO);
    let stale_after = state.supervisor.config().stale_frame;
    if camera.is_endless() && age > stale_after {
        return Err(ApiError::NotFound(format!(
            "Stream appears to be disconnected. The newest frame is {} s old (STALE_FRAME_SECONDS={}).",
            age.as_secs(),
            stale_after.as_secs()
        )));
    }
    if let Some(max_age) = query.get("max_age_ms") {
        let max_age: u64 = max_age
            .parse()
            .map_err(|_| ApiError::Unprocessable("max_age_ms must be a whole number".into()))?;
        if age > Duration::from_millis(max_age) {
            return Err(ApiError::NotFound(format!(
                "The newest frame is {} ms old, older than max_age_ms={max_age}.",
                age.as_millis()
            )));
        }
    }
    let headers = FrameHeaders::of(&frame);
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == headers.etag || t.trim() == "*")
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, headers.etag.as_str()))
        .insert_header((header::LAST_MODIFIED, headers.last_modified.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Frame-Seq", headers.seq.as_str()))
        .insert_header(("X-Frame-Pts", headers.pts.as_str()))
        .insert_header(("X-Captured-At", headers.captured_at.as_str()));
    if matches {
        return Ok(response.finish());
    }
    Ok(response.content_type("image/jpeg").body(frame.jpeg.clone()))
}

pub async fn video_info(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let config = state.supervisor.config();
    let rules = UploadRules {
        field: "video",
        folder: &config.upload_folder,
        max_bytes: config.max_upload_bytes,
    };
    let mut form = read_form(&request, payload, Some(rules)).await?;
    let Some(upload) = form.upload.take() else {
        return Err(ApiError::missing("video"));
    };
    let supervisor = Arc::clone(&state.supervisor);
    // The upload is removed when the probe is done, even if the client is gone.
    let result = web::block(move || supervisor.probe(&Source::File(upload.path.clone()))).await;
    info_response(result?)
}

pub async fn video_info_url(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let form = read_form(&request, payload, None).await?;
    let url = form
        .get("url")
        .ok_or_else(|| ApiError::missing("url"))?
        .to_owned();
    let supervisor = Arc::clone(&state.supervisor);
    let result = web::block(move || {
        let config = supervisor.config();
        let mut allowed = config.allowed_input_dirs.clone();
        allowed.push(config.upload_folder.clone());
        Source::parse(&url, &allowed).map(|source| supervisor.probe(&source))
    })
    .await?;
    info_response(result.map_err(|e| ApiError::BadRequest(e.to_string()))?)
}

fn info_response(
    result: Result<crate::media::VideoInfo, MediaError>,
) -> Result<HttpResponse, ApiError> {
    match result {
        Ok(info) => Ok(HttpResponse::Ok().json(VideoInfoAnswer {
            message: "Video information retrieved",
            info,
        })),
        Err(e @ MediaError::Timeout { .. }) => Err(ApiError::Timeout(format!(
            "Could not retrieve video information: {e}"
        ))),
        Err(e) => Err(ApiError::BadRequest(format!(
            "Could not retrieve video information: {e}"
        ))),
    }
}

pub async fn hw_accel_cap(
    state: web::Data<AppState>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    // `?refresh=true` probes again instead of answering from the last probe.
    let refresh = parse_flag(query.get("refresh").map(String::as_str), "refresh")?;
    let supervisor = Arc::clone(&state.supervisor);
    let report = web::block(move || {
        if refresh {
            supervisor.refresh_hardware()
        } else {
            supervisor.hardware()
        }
    })
    .await?;
    let unavailable = report
        .probes
        .iter()
        .filter(|p| !p.available)
        .map(|p| (p.backend.as_str(), p.reason.clone().unwrap_or_default()))
        .collect();
    Ok(HttpResponse::Ok().json(HwAccelCap {
        message: HwAvailable {
            available_hw_accelerations: report.available.clone(),
        },
        compiled_hw_types: report.compiled.clone(),
        unavailable,
    }))
}

/// This replica's place among several, if it shares the cameras with others.
pub(super) fn shard(state: &AppState) -> Option<&crate::shard::Shard> {
    state.supervisor.config().shard.as_ref()
}

pub(super) fn camera_id(value: Option<&str>) -> Result<CameraId, ApiError> {
    let value = value.ok_or_else(|| ApiError::missing("camera_id"))?;
    CameraId::parse(value).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A yes/no field; absent means no. Any other word is the wrong type (422).
pub(super) fn parse_flag(value: Option<&str>, name: &str) -> Result<bool, ApiError> {
    value.map_or(Ok(false), |v| {
        crate::config::parse_bool(v).ok_or_else(|| {
            ApiError::Unprocessable(format!("{name} must be true or false, not {v:?}"))
        })
    })
}
