//! The OpenAPI document of the API (`openapi.json`). It is built from [`ROUTES`]: each
//! entry names its operation here, so the document lists exactly the routes served.
//! Answer shapes are the types the handlers send (`ToSchema`); the fields of a start
//! request come from [`FIELDS`].

use serde_json::json;
#[cfg(test)]
use serde_json::Value;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Paths, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa::{OpenApi as _, ToSchema};

use super::error::ErrorBody;
use super::status::{
    CameraList, DecodeAnswer, Health, HwAccelCap, Message, StatusReport, StopAnswer,
    VideoInfoAnswer,
};
use super::{auth, Access, ApiRoute, Verb, ROUTES};
use crate::camera::request::QUALITY_RANGE;
use crate::camera::{Status, FIELDS};
use crate::config::DEFAULT_MAX_FRAMES_PER_CAMERA;
use crate::media::hw::HwChoice;
use crate::output::retention::{MAX_AGE_LIMIT_SECONDS, MAX_FRAMES_LIMIT};
use crate::shape::{MAX_SIDE, MIN_SIDE};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "video-pipeline",
        description = "Turns camera streams and video files into JPEG frames in \
            `OUTPUT_FOLDER/<camera_id>/`. Every path also answers with the other trailing-slash \
            form (`health/` and `health`), directly and with the same answers; the paths here \
            are the forms the API guide uses. A known path with another method is 405 and an \
            unknown path 404, both `{\"detail\": ...}`. POST fields are read from \
            `multipart/form-data`, `application/x-www-form-urlencoded` or `application/json` \
            alike: in JSON, strings, numbers and booleans all count as the field's text, `null` \
            and an empty string as absent, and unknown fields are ignored. Authentication is off \
            unless the daemon is given API keys or a JWT key: then an operation with a `security` \
            requirement answers 401 (with `WWW-Authenticate: Bearer`) without a valid credential, \
            403 for one without the scope it names (`control` implies `read`), and an unknown path \
            or method is 401 rather than 404 or 405 for a caller without a credential.",
        license(name = "MIT", identifier = "MIT"),
    ),
    components(schemas(
        ErrorBody,
        Message,
        Health,
        DecodeAnswer,
        StopAnswer,
        StatusReport,
        CameraList,
        VideoInfoAnswer,
        HwAccelCap
    ))
)]
struct Components;

/// The whole document: components, and one operation per route of [`ROUTES`].
pub fn document() -> OpenApi {
    let mut document = Components::openapi();
    document.info.version = crate::VERSION.to_owned();
    let schemas = &mut document
        .components
        .get_or_insert_with(Default::default)
        .schemas;
    schemas.insert("DecodeFields".into(), decode_fields().into());
    add_security_schemes(document.components.get_or_insert_with(Default::default));
    let mut paths = Paths::new();
    for route in ROUTES {
        paths.add_path_operation(route.path, vec![http_method(route.verb)], operation(route));
    }
    document.paths = paths;
    document
}

fn http_method(verb: Verb) -> HttpMethod {
    match verb {
        Verb::Get => HttpMethod::Get,
        Verb::Post => HttpMethod::Post,
    }
}

/// The route's operation, with an id made from its path and a word on the other form.
fn operation(route: &ApiRoute) -> Operation {
    let mut operation = (route.doc)();
    let words: Vec<&str> = route
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let name = if words.is_empty() {
        "root".to_owned()
    } else {
        words.join("_")
    };
    operation.operation_id = Some(format!("{}_{name}", route.verb.as_str().to_lowercase()));
    secure(&mut operation, route);
    if let Some(other) = route.other_form() {
        let note = format!("Also answers, the same way, at `{other}`.");
        operation.description = Some(match operation.description.take() {
            Some(text) => format!("{text}\n\n{note}"),
            None => note,
        });
    }
    operation
}

/// The names of the security schemes in `components`.
const BEARER: &str = "bearer";
const API_KEY: &str = "apiKey";
const PAGE_COOKIE: &str = "pageCookie";

fn add_security_schemes(components: &mut utoipa::openapi::Components) {
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key (`API_KEYS`, `API_KEYS_FILE`) or a JWT (`JWT_SECRET`, \
                     `JWT_PUBLIC_KEY_FILE`) as `Authorization: Bearer <key or token>`. A JWT's scopes are \
                     its `scope` (space-separated) or `scopes` (a list) claim.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key (`API_KEYS`, `API_KEYS_FILE`); not a JWT.",
        ))),
    );
    components.add_security_scheme(
        PAGE_COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            auth::COOKIE,
            "The status page's copy of its key or token, for what a browser cannot send a header with: \
             taken on GET operations that read, from the daemon's own origin only, never to control.",
        ))),
    );
}

/// The route's `security` and its 401 and 403 answers, from its [`Access`].
fn secure(operation: &mut Operation, route: &ApiRoute) {
    let scope = match route.access {
        Access::Open => {
            operation.security = Some(Vec::new());
            return;
        }
        Access::Page | Access::Read => "read",
        Access::Control => "control",
    };
    let mut requirements = vec![
        SecurityRequirement::new(BEARER, [scope]),
        SecurityRequirement::new(API_KEY, [scope]),
    ];
    if route.verb == Verb::Get && route.access != Access::Control {
        requirements.push(SecurityRequirement::new(PAGE_COOKIE, [scope]));
    }
    if route.access == Access::Page {
        // A browser asking for HTML gets the page shell with no credential.
        requirements.push(SecurityRequirement::default());
    }
    operation.security = Some(requirements);
    let challenge = |description: &str, when: &str| {
        error_answer(when)
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(string()))
                    .description(Some(description))
                    .build(),
            )
            .build()
    };
    let answers = &mut operation.responses.responses;
    answers.insert(
        "401".into(),
        challenge(
            "`Bearer realm=\"video-pipeline\"`, with `error=\"invalid_token\"` when a credential was sent.",
            "Authentication is configured and no valid credential was sent (the message says why).",
        )
        .into(),
    );
    answers.insert(
        "403".into(),
        challenge(
            "`Bearer realm=\"video-pipeline\", error=\"insufficient_scope\", scope=\"<scope>\"`.",
            "The credential is valid but lacks the scope this operation needs.",
        )
        .into(),
    );
}

fn schema_ref<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn described(summary: &str, description: &str) -> OperationBuilder {
    OperationBuilder::new()
        .summary(Some(summary))
        .description(Some(description))
}

/// A 200 answer with a JSON body of type `T`.
fn json_answer<T: ToSchema>(operation: OperationBuilder, description: &str) -> OperationBuilder {
    operation.response(
        "200",
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(schema_ref::<T>()))
                    .build(),
            )
            .build(),
    )
}

/// A `{"detail": ...}` answer, to which headers may be added.
fn error_answer(description: impl Into<String>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(schema_ref::<ErrorBody>()))
            .build(),
    )
}

/// `{"detail": ...}` answers with these statuses.
fn errors(mut operation: OperationBuilder, statuses: &[u16]) -> OperationBuilder {
    for status in statuses {
        let when = match status {
            400 => "A value of the right type that is not allowed (the message says which and why).",
            404 => "Not found (the message says what).",
            413 => "A body past its limit, refused as soon as it is seen (from `Content-Length`, else while it streams): an upload larger than `MAX_UPLOAD_MB`, text fields over 1 MiB together, or any other body over 1 MiB.",
            422 => "A required field missing (`Field required: <name>`), a value of the wrong type, or a body or query string that cannot be parsed.",
            500 => "An internal failure (for example the upload folder could not be written).",
            504 => "The source did not answer within `PROBE_TIMEOUT_SECONDS`.",
            503 => "Several replicas share the cameras (docs/scaling.md) and the one that owns this camera cannot be reached (the message names it).",
            507 => "The disk is full while storing an upload.",
            508 => "Several replicas share the cameras and this request, forwarded by one, reached a replica that does not own the camera either: their SHARD_COUNT or peer URLs disagree.",
            _ => "An error.",
        };
        operation = operation.response(status.to_string(), error_answer(when).build());
    }
    operation
}

/// The 429 of the rate limit of control routes (`RATE_LIMIT_PER_MINUTE`), with its
/// `Retry-After`.
fn rate_limited(operation: OperationBuilder) -> OperationBuilder {
    operation.response(
        "429",
        error_answer(RATE_LIMITED)
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    ))
                    .description(Some(
                        "Seconds until this client's next control request is allowed.",
                    ))
                    .build(),
            )
            .build(),
    )
}

const RATE_LIMITED: &str =
    "More control requests than `RATE_LIMIT_PER_MINUTE` allows this client (its API key, \
    else its IP address) in a minute; only when that setting is on.";

fn query(
    name: &str,
    required: bool,
    schema: impl Into<RefOr<Schema>>,
    description: &str,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .schema(Some(schema))
        .description(Some(description))
        .build()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn boolean(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .default(Some(json!(false)))
        .description(Some(format!(
            "{description} In a form: `true/false`, `1/0`, `yes/no` or `on/off` (another word: 422)."
        )))
}

fn camera_id() -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(64))
        .pattern(Some("^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$"))
        .description(Some(
            "1 to 64 characters from `A-Z a-z 0-9 _ . -`, not starting with `.`; anything else is 400. \
             The camera's frame folder is `OUTPUT_FOLDER/<camera_id>/`.",
        ))
}

fn url(description: &str) -> ObjectBuilder {
    string().description(Some(format!(
        "{description} A URL with scheme `rtsp`, `rtsps`, `rtmp`, `rtmps`, `http`, `https`, `srt`, `udp`, `rtp` \
         or `tcp`, or a local path (also `file://...`) inside `UPLOAD_FOLDER` or `ALLOWED_INPUT_DIRS`. \
         Another scheme, a malformed URL, or a path outside those folders or not a readable file: 400."
    )))
}

/// One field of a start request.
fn start_field(name: &str) -> Option<Schema> {
    let schema = match name {
        "camera_id" => camera_id(),
        "url" => url("The source (one of `url` and `file` is required; `file` wins)."),
        "source" => url("Alias of `url`."),
        "fps" => ObjectBuilder::new()
            .schema_type(Type::Number)
            .exclusive_minimum(Some(0))
            .maximum(Some(60))
            .default(Some(json!(1)))
            .description(Some(
                "Frames per second to write, > 0 and <= 60, fractions allowed (`0.2`: one frame every 5 s). \
                 Not a number: 422; out of range: 400.",
            )),
        "force_format" => {
            let values = HwChoice::allowed_values();
            let mut values: Vec<&str> = values.split(", ").collect();
            values.extend(["software", "cpu"]);
            string()
                .enum_values(Some(values))
                .default(Some(json!("auto")))
                .description(Some(
                    "Where to decode: `auto` (the `HW_ACCEL_OPTIONS` order, then software), `none` \
                     (also `software`, `cpu`), or a hardware type. Case-insensitive; another word is 400. \
                     A backend this machine cannot use decodes in software, with the reason in the status.",
                ))
        }
        "rtsp_transport" => string()
            .enum_values(Some(["tcp", "udp", "auto"]))
            .default(Some(json!("tcp")))
            .description(Some(
                "RTSP transport: `tcp` (interleaved), `udp`, or `auto` (UDP, then TCP). Another word: 400.",
            )),
        "sampling" => string()
            .enum_values(Some(["exact", "keyframes", "all"]))
            .default(Some(json!("exact")))
            .description(Some(
                "`exact`: exactly the frames full decoding would choose, decoding only the packets they need; \
                 `keyframes`: only keyframes, at most `fps` per second; `all`: decode every frame. Another word: 400.",
            )),
        "realtime" => boolean(
            "For sources that end: play at the source's own speed. 400 for a source certainly live (a stream protocol, or `live=true`).",
        ),
        "loop" => boolean(
            "For sources that end: start again at the end. 400 for a source certainly live.",
        ),
        "live" => ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .description(Some(
                "`true`: treat the source as live (reconnected at its end); `false`: as finite (its end completes \
                 the camera). Absent: each connection decides from what libav reports. In a form: `true/false`, \
                 `1/0`, `yes/no` or `on/off` (another word: 422).",
            )),
        "max_frames" => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_FRAMES_LIMIT as f64))
            .description(Some(format!(
                "The most numbered frames kept in the camera's folder, oldest deleted first; 0: keep all. Default \
                 `MAX_FRAMES_PER_CAMERA`, else {DEFAULT_MAX_FRAMES_PER_CAMERA} for live sources and looped files \
                 and all frames of a source that ends. Not a number: 422; not a whole number 0..{MAX_FRAMES_LIMIT}: 400."
            ))),
        "max_age_seconds" => ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0))
            .maximum(Some(MAX_AGE_LIMIT_SECONDS))
            .description(Some(format!(
                "Frames older than this are deleted; 0: no age limit. Default `MAX_FRAME_AGE_SECONDS` (off). \
                 Not a number: 422; outside 0..{MAX_AGE_LIMIT_SECONDS}: 400."
            ))),
        "width" => side(
            "Frame width in pixels, up or down; alone, the height follows the source's (or the crop's) \
             aspect ratio, rounded to the nearest even number. With `height`: exactly that size.",
        ),
        "height" => side(
            "Frame height in pixels, up or down; alone, the width follows the aspect ratio, rounded to \
             the nearest even number.",
        ),
        "max_side" => side(
            "Shrink the longest side to this, the other following the aspect ratio; a frame already \
             within it is left as it is (never enlarged). Not with `width` or `height`: 400.",
        ),
        "quality" => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(*QUALITY_RANGE.start()))
            .maximum(Some(*QUALITY_RANGE.end()))
            .description(Some(format!(
                "This camera's JPEG quality; default `JPEG_QUALITY`. Anything but a whole number {}..{}: 400.",
                QUALITY_RANGE.start(),
                QUALITY_RANGE.end()
            ))),
        "crop" => string()
            .pattern(Some("^ *[0-9]+ *, *[0-9]+ *, *[0-9]+ *, *[0-9]+ *$"))
            .description(Some(format!(
                "Region of interest `x,y,w,h` in source pixels, taken before scaling: even whole numbers \
                 (4:2:0 chroma covers 2x2 pixels), `w` and `h` {MIN_SIDE}..{MAX_SIDE}; anything else is 400. \
                 A region outside a local file is 400; outside a URL's frames (known once it opens), the \
                 camera ends in `error`."
            ))),
        _ => return None,
    };
    Some(schema.into())
}

/// `width`, `height`, `max_side`: an even number of pixels.
fn side(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(MIN_SIDE))
        .maximum(Some(MAX_SIDE))
        .multiple_of(Some(2.0))
        .description(Some(format!(
            "{description} Anything but an even whole number {MIN_SIDE}..{MAX_SIDE}: 400."
        )))
}

/// The fields of `decode/`, in the order they are checked.
fn decode_fields() -> Schema {
    FIELDS
        .iter()
        .fold(ObjectBuilder::new().required("camera_id"), |object, name| {
            let schema = start_field(name).unwrap_or_else(|| string().into());
            object.property(*name, schema)
        })
        .description(Some(
            "Checked in this order; the first field that fails decides the answer. Either `url` (or `source`) or, \
             in multipart, `file` is required: neither is 400 `Either a file or a URL must be provided.`",
        ))
        .into()
}

fn upload(field: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new().property(
        field,
        string()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some(description)),
    )
}

/// A body read from any of the three encodings.
fn fields_body(
    schema: RefOr<Schema>,
    multipart: RefOr<Schema>,
    required: bool,
) -> RequestBodyBuilder {
    RequestBodyBuilder::new()
        .required(Some(if required {
            Required::True
        } else {
            Required::False
        }))
        .content(
            "multipart/form-data",
            ContentBuilder::new().schema(Some(multipart)).build(),
        )
        .content(
            "application/x-www-form-urlencoded",
            ContentBuilder::new().schema(Some(schema.clone())).build(),
        )
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
}

pub fn root() -> Operation {
    json_answer::<Message>(
        described(
            "Service banner",
            "Answers `{\"message\": \"FFMPEG Video Pipeline API is running!\"}`.",
        ),
        "The banner.",
    )
    .build()
}

/// `GET /`: the banner for API clients, the status page for browsers.
pub fn front() -> Operation {
    described(
        "Service banner, or the status page",
        "Answers `{\"message\": \"FFMPEG Video Pipeline API is running!\"}`; a request whose `Accept` \
         names `text/html` (a browser) gets the operators' status page instead. Both carry `Vary: Accept`.",
    )
    .response(
        "200",
        ResponseBuilder::new()
            .description("The banner (JSON), or the status page (HTML) for a browser.")
            .content("application/json", ContentBuilder::new().schema(Some(schema_ref::<Message>())).build())
            .content("text/html", ContentBuilder::new().schema(Some(string())).build())
            .build(),
    )
    .build()
}

/// One of the status page's files.
fn page_asset(summary: &str, content_type: &str) -> Operation {
    described(
        summary,
        "A file of the status page, compiled into the binary; `If-None-Match` with its ETag gets 304.",
    )
    .response(
        "200",
        ResponseBuilder::new()
            .description("The file.")
            .content(content_type, ContentBuilder::new().schema(Some(string())).build())
            .build(),
    )
    .response(
        "304",
        ResponseBuilder::new()
            .description("`If-None-Match` named the current ETag: no body.")
            .build(),
    )
    .build()
}

pub fn page_script() -> Operation {
    page_asset("The status page's script", "text/javascript")
}

pub fn page_style() -> Operation {
    page_asset("The status page's style sheet", "text/css")
}

/// `mjpeg/`: the camera's newest frames as they come.
pub fn mjpeg() -> Operation {
    let operation = described(
        "A camera's frames as MJPEG",
        "`multipart/x-mixed-replace` with one `image/jpeg` part per new frame (each with `Content-Length`, \
         `X-Frame-Seq`, `X-Frame-Pts` and `X-Captured-At`), sent from memory as written, starting with the \
         newest frame; a viewer that reads slowly skips frames rather than queueing them. The stream ends \
         with the camera's session. 404 for an unknown camera or one whose session has ended.",
    )
    .parameter(query("camera_id", true, camera_id(), "The camera."))
    .parameter(query(
        "fps",
        false,
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .exclusive_minimum(Some(0.0))
            .maximum(Some(crate::sampling::Fps::MAX)),
        "At most this many parts a second (frames in between are skipped). Not a number: 422; out of range: 400.",
    ))
    .response(
        "200",
        ResponseBuilder::new()
            .description("The stream.")
            .content(
                "multipart/x-mixed-replace",
                ContentBuilder::new()
                    .schema(Some(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))))
                    .build(),
            )
            .build(),
    );
    errors(operation, &[400, 404, 422, 503, 508]).build()
}

/// The query of both event streams.
fn event_stream_query(operation: OperationBuilder) -> OperationBuilder {
    operation
        .parameter(query(
            "camera_id",
            false,
            ArrayBuilder::new().items(camera_id()),
            "Only this camera's events; repeat it for several (`?camera_id=a&camera_id=b`). None: every camera.",
        ))
        .parameter(query(
            "frames",
            false,
            boolean("Also a `frame` event for every frame written (seq, file, pts, captured_at, bytes)."),
            "Frame events too.",
        ))
        .parameter(query(
            "last_event_id",
            false,
            ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
            "Replay the events after this id that the daemon still holds (the last 1024), then go on live.",
        ))
}

/// `events/`: Server-Sent Events.
pub fn events() -> Operation {
    let operation = event_stream_query(described(
        "Camera events as Server-Sent Events",
        "`text/event-stream`: one event per camera transition (`started`, `connecting`, `streaming`, \
         `reconnecting`, `hwaccel_fallback`, `stopped`, `completed`, `error`, and `frame` when asked), each \
         with `id:`, `event:` (the type) and `data:` (a JSON object with `id`, `type`, `camera_id`, `time` and \
         the type's fields); a `: keep-alive` comment every 15 s. A client that does not read is \
         disconnected.",
    ))
    .parameter(
        ParameterBuilder::new()
            .name("Last-Event-ID")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
            .description(Some("As `last_event_id`, sent by EventSource when it reconnects.")),
    )
    .response(
        "200",
        ResponseBuilder::new()
            .description("The event stream, endless.")
            .content("text/event-stream", ContentBuilder::new().schema(Some(string())).build())
            .build(),
    );
    errors(operation, &[400, 422]).build()
}

/// `ws/`: the same events over a WebSocket.
pub fn ws() -> Operation {
    let operation = event_stream_query(described(
        "Camera events over a WebSocket",
        "The events of `events/`, one JSON text message each; pings every 15 s of quiet, closed after 45 s \
         without an answer. A plain GET (no WebSocket handshake) is 400.",
    ))
    .response(
        "101",
        ResponseBuilder::new()
            .description("Switching to the WebSocket protocol.")
            .build(),
    );
    errors(operation, &[400, 422]).build()
}

pub fn health() -> Operation {
    json_answer::<Health>(
        described(
            "Health",
            "The daemon's version, uptime and cameras by status.",
        ),
        "Healthy.",
    )
    .build()
}

pub fn metrics() -> Operation {
    let operation = described(
        "Prometheus metrics",
        "Metrics in the OpenMetrics text format, every name starting with `video_pipeline_`; each camera \
         in the registry has its series, labelled `camera=\"<camera_id>\"`. Served at the root (`/metrics`) and \
         under the base path.",
    )
    .response(
        "200",
        ResponseBuilder::new()
            .description("OpenMetrics text, ending with `# EOF`.")
            .content(crate::metrics::CONTENT_TYPE, ContentBuilder::new().schema(Some(string())).build())
            .build(),
    );
    errors(operation, &[500]).build()
}

pub fn decode() -> Operation {
    let multipart = AllOfBuilder::new()
        .item(RefOr::Ref(Ref::from_schema_name("DecodeFields")))
        .item(upload(
            "file",
            "A video file, streamed to `UPLOAD_FOLDER` (at most `MAX_UPLOAD_MB`); wins over `url`.",
        ));
    let operation = described(
        "Start a camera",
        "Starts decoding a source into `OUTPUT_FOLDER/<camera_id>/`. Starting is atomic per camera: a \
         camera already running answers `already_running`. Only the source's syntax and location are checked \
         before 200; whether it opens shows in `decode/status/`.",
    )
    .request_body(Some(
        fields_body(RefOr::Ref(Ref::from_schema_name("DecodeFields")), multipart.into(), true).build(),
    ));
    errors(
        json_answer::<DecodeAnswer>(operation, "Started, or already running."),
        &[400, 413, 422, 500, 503, 507, 508],
    )
    .response(
        "429",
        error_answer(format!(
                "`MAX_CAMERAS` cameras are running and this one is not among them (its own start \
                 still answers `already_running`; cameras that ended do not count), or: {RATE_LIMITED} \
                 The rate limit's answer carries `Retry-After` (seconds); the camera limit's does not."
        ))
        .build(),
    )
    .build()
}

pub fn status() -> Operation {
    let operation = described(
        "A camera's status",
        "200 for any valid id; an unknown camera is `not_started`.",
    )
    .parameter(query("camera_id", true, camera_id(), "The camera."));
    errors(
        json_answer::<StatusReport>(operation, "The camera's status."),
        &[400, 422, 503, 508],
    )
    .build()
}

pub fn stop() -> Operation {
    let schema: RefOr<Schema> = ObjectBuilder::new()
        .property("camera_id", camera_id())
        .into();
    let operation = described(
        "Stop a camera",
        "Returns at once, also when the source hangs; the status reads `stopped` from this moment. \
         `camera_id` is read from the body (any encoding) or, failing that, the query string.",
    )
    .parameter(query("camera_id", false, camera_id(), "The camera, when the body does not name it."))
    .request_body(Some(fields_body(schema.clone(), schema, false).build()));
    rate_limited(errors(
        json_answer::<StopAnswer>(operation, "Stopped, or nothing was running."),
        &[400, 413, 422, 503, 508],
    ))
    .build()
}

pub fn cameras() -> Operation {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let operation = described(
        "Every camera",
        "Every camera started since the daemon began, sorted by `camera_id`, each as `decode/status/` gives it.",
    )
    .parameter(query(
        "status",
        false,
        string().enum_values(Some(statuses)),
        "Keep only the cameras with this status; another word is 400.",
    ))
    .parameter(query(
        "all",
        false,
        boolean("With several replicas (docs/scaling.md), every replica's cameras, not only this one's."),
        "The cameras of every replica; 503 when one cannot be reached.",
    ));
    errors(
        json_answer::<CameraList>(operation, "The cameras."),
        &[400, 422, 503],
    )
    .build()
}

fn frame_headers(response: ResponseBuilder) -> ResponseBuilder {
    let headers = [
        (
            "ETag",
            "`\"<seq>-<capture time in ns, hex>\"`, new with each frame.",
        ),
        ("Last-Modified", "The capture time, HTTP date."),
        ("Cache-Control", "`no-cache`."),
        ("X-Frame-Seq", "The frame's number (`frame_<seq>.jpg`)."),
        (
            "X-Frame-Pts",
            "Seconds on the source's timeline, 6 decimals.",
        ),
        ("X-Captured-At", "Wall-clock capture time, RFC 3339."),
    ];
    headers
        .into_iter()
        .fold(response, |response, (name, description)| {
            response.header(
                name,
                HeaderBuilder::new()
                    .schema(Some(string()))
                    .description(Some(description))
                    .build(),
            )
        })
}

pub fn latest_frame() -> Operation {
    let jpeg =
        frame_headers(ResponseBuilder::new().description("The newest frame, served from memory."))
            .content(
                "image/jpeg",
                ContentBuilder::new()
                    .schema(Some(
                        string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
                    ))
                    .build(),
            );
    let not_modified = frame_headers(
        ResponseBuilder::new()
            .description("`If-None-Match` named the current ETag (or `*`): no body."),
    );
    let operation = described(
        "The newest frame",
        "The camera's newest frame as JPEG. 404 when the camera has no session since the daemon started, has \
         no frame yet, is a live source whose newest frame is older than `STALE_FRAME_SECONDS`, or the frame is \
         older than `max_age_ms`. Reading changes nothing.",
    )
    .parameter(query("camera_id", true, camera_id(), "The camera."))
    .parameter(query(
        "max_age_ms",
        false,
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
        "404 when the newest frame is older than this many milliseconds (not a whole number: 422).",
    ))
    .parameter(
        ParameterBuilder::new()
            .name("If-None-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .schema(Some(string()))
            .description(Some("An ETag of an earlier answer, or `*`: 304 when it is still the newest frame.")),
    )
    .response("200", jpeg.build())
    .response("304", not_modified.build());
    errors(operation, &[400, 404, 422, 503, 508]).build()
}

pub fn video_info() -> Operation {
    let body: RefOr<Schema> = upload(
        "video",
        "The video file, stored in `UPLOAD_FOLDER`, probed and deleted.",
    )
    .required("video")
    .into();
    let operation = described(
        "Describe an uploaded video",
        "Reads the upload with libavformat, bounded by `PROBE_TIMEOUT_SECONDS`. Missing `video`: 422; not a \
         video: 400.",
    )
    .request_body(Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content("multipart/form-data", ContentBuilder::new().schema(Some(body)).build())
            .build(),
    ));
    errors(
        json_answer::<VideoInfoAnswer>(operation, "What the video holds."),
        &[400, 413, 422, 500, 504, 507],
    )
    .build()
}

pub fn video_info_url() -> Operation {
    let schema: RefOr<Schema> = ObjectBuilder::new()
        .property(
            "url",
            url("The source, with the same rules as `decode/`'s `url`."),
        )
        .required("url")
        .into();
    let operation = described(
        "Describe a video by URL",
        "Reads the source with libavformat, bounded by `PROBE_TIMEOUT_SECONDS`. Missing `url`: 422; a refused \
         scheme or path, or not a video: 400.",
    )
    .request_body(Some(fields_body(schema.clone(), schema, true).build()));
    errors(
        json_answer::<VideoInfoAnswer>(operation, "What the video holds."),
        &[400, 413, 422, 500, 504],
    )
    .build()
}

pub fn hw_accel_cap() -> Operation {
    let operation = described(
        "Hardware decoding on this machine",
        "From the probe made at boot, so instant; `?refresh=true` probes again.",
    )
    .parameter(query(
        "refresh",
        false,
        boolean("Probe again (after a driver or device was added)."),
        "Probe again instead of answering from the last probe.",
    ));
    errors(
        json_answer::<HwAccelCap>(operation, "What decodes here, and why the rest does not."),
        &[422, 500],
    )
    .build()
}

pub fn openapi_json() -> Operation {
    described("This document", "The OpenAPI document of this API.")
        .response(
            "200",
            ResponseBuilder::new()
                .description("The OpenAPI document.")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new()))
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The page of `docs/`: plain HTML and script that fetch `openapi.json` and lay it out.
pub const DOCS_PAGE: &str = include_str!("docs.html");

pub fn docs_page() -> Operation {
    described(
        "This document as a page",
        "An HTML page that renders `openapi.json` (operations, fields, answers, schemas) in the browser; \
         it loads nothing from elsewhere.",
    )
    .response(
        "200",
        ResponseBuilder::new()
            .description("The page.")
            .content("text/html", ContentBuilder::new().schema(Some(string())).build())
            .build(),
    )
    .build()
}

/// `info` of the video-info answers: a `media::VideoInfo` as it serializes.
pub fn video_info_schema() -> Schema {
    let nullable = |kind: Type, description: &str| {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                kind,
                Type::Null,
            ]))
            .description(Some(description))
    };
    let stream = ObjectBuilder::new()
        .property(
            "index",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .property(
            "type",
            string().description(Some("`video`, `audio`, `subtitle`, `data`, ...")),
        )
        .property("codec", string())
        .required("index")
        .required("type")
        .required("codec");
    let required = [
        "format",
        "codec",
        "width",
        "height",
        "fps",
        "duration",
        "bit_rate",
        "pix_fmt",
        "profile",
        "nb_frames",
        "streams",
    ];
    let object = ObjectBuilder::new()
        .property("format", string().description(Some("The demuxer's name.")))
        .property(
            "codec",
            string().description(Some("The video decoder's name.")),
        )
        .property(
            "width",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .property(
            "height",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .property(
            "fps",
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some("Average frame rate; 0.0 when unknown.")),
        )
        .property(
            "duration",
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some("Seconds; 0.0 for live streams.")),
        )
        .property(
            "bit_rate",
            nullable(Type::Integer, "Bits per second; `null` when unknown."),
        )
        .property(
            "pix_fmt",
            nullable(Type::String, "Pixel format; `null` when unknown."),
        )
        .property(
            "profile",
            nullable(Type::String, "Codec profile; `null` when unknown."),
        )
        .property(
            "nb_frames",
            nullable(Type::Integer, "Frames in the stream; `null` when unknown."),
        )
        .property(
            "streams",
            ArrayBuilder::new()
                .items(stream)
                .description(Some("One entry per stream.")),
        );
    required
        .into_iter()
        .fold(object, |object, name| object.required(name))
        .into()
}

/// The document as a JSON value, for tests.
#[cfg(test)]
fn document_json() -> Value {
    serde_json::to_value(document()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_route_is_documented_and_every_documented_path_is_a_route() {
        let document = document_json();
        let paths = document["paths"].as_object().unwrap();
        for route in ROUTES {
            let method = route.verb.as_str().to_lowercase();
            assert!(
                paths.get(route.path).and_then(|p| p.get(&method)).is_some(),
                "{} {} is not in the document",
                route.verb.as_str(),
                route.path
            );
        }
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    ROUTES
                        .iter()
                        .any(|r| r.path == path && r.verb.as_str().eq_ignore_ascii_case(method)),
                    "{method} {path} is documented but not served"
                );
            }
        }
    }

    #[test]
    fn bodies_may_be_413_and_only_control_routes_429() {
        let document = document_json();
        for route in ROUTES {
            let method = route.verb.as_str().to_lowercase();
            let responses = &document["paths"][route.path][&method]["responses"];
            let path = route.path;
            // Every POST reads a body, which is bounded.
            assert_eq!(
                responses.get("413").is_some(),
                route.verb == Verb::Post,
                "413 of {method} {path}"
            );
            assert_eq!(
                responses.get("429").is_some(),
                route.access == crate::http::Access::Control,
                "429 of {method} {path}"
            );
        }
    }

    #[test]
    fn routes_are_unique_and_their_operation_ids_too() {
        let document = document_json();
        let mut ids = Vec::new();
        for (_, item) in document["paths"].as_object().unwrap() {
            for (_, operation) in item.as_object().unwrap() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operation ids: {ids:?}");
        assert_eq!(
            count,
            ROUTES.len(),
            "a path and method is listed twice in ROUTES"
        );
    }

    #[test]
    fn every_reference_resolves() {
        let document = document_json();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{target} is not a component"
            );
        }
    }

    #[test]
    fn the_decode_fields_are_the_fields_of_a_start_request() {
        let document = document_json();
        let properties = document["components"]["schemas"]["DecodeFields"]["properties"]
            .as_object()
            .unwrap();
        let mut documented: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut fields = FIELDS.to_vec();
        documented.sort();
        fields.sort();
        assert_eq!(documented, fields, "DecodeFields must list FIELDS");
        for name in FIELDS {
            assert!(
                start_field(name).is_some(),
                "{name} has no schema in start_field"
            );
        }
    }

    #[test]
    fn every_route_says_what_credential_it_needs() {
        let document = document_json();
        let schemes = &document["components"]["securitySchemes"];
        assert_eq!(schemes[BEARER]["scheme"], "bearer");
        assert_eq!(schemes[API_KEY]["name"], "X-API-Key");
        assert_eq!(schemes[PAGE_COOKIE]["in"], "cookie");
        for route in ROUTES {
            let method = route.verb.as_str().to_lowercase();
            let operation = &document["paths"][route.path][&method];
            let security = operation["security"].as_array().unwrap();
            let answers = operation["responses"].as_object().unwrap();
            let expected = match route.access {
                Access::Open => None,
                Access::Page | Access::Read => Some("read"),
                Access::Control => Some("control"),
            };
            match expected {
                None => {
                    assert!(security.is_empty(), "{}", route.path);
                    assert!(!answers.contains_key("401"), "{}", route.path);
                }
                Some(scope) => {
                    assert_eq!(security[0][BEARER][0], scope, "{}", route.path);
                    assert_eq!(security[1][API_KEY][0], scope, "{}", route.path);
                    let cookie = security.iter().any(|r| r.get(PAGE_COOKIE).is_some());
                    assert_eq!(cookie, route.verb == Verb::Get, "{}", route.path);
                    assert!(answers.contains_key("401") && answers.contains_key("403"));
                }
            }
        }
    }

    #[test]
    fn the_docs_page_loads_nothing_from_elsewhere() {
        assert!(!DOCS_PAGE.contains("://"), "the page names another origin");
        assert!(DOCS_PAGE.contains("openapi.json"));
    }

    #[test]
    fn the_video_info_schema_has_every_key_video_info_serializes() {
        let info = crate::media::VideoInfo {
            format: "mov".into(),
            codec: "h264".into(),
            width: 2,
            height: 2,
            fps: 1.0,
            duration: 1.0,
            bit_rate: None,
            pix_fmt: None,
            profile: None,
            nb_frames: None,
            streams: vec![crate::media::StreamSummary {
                index: 0,
                kind: "video".into(),
                codec: "h264".into(),
            }],
        };
        let value = serde_json::to_value(&info).unwrap();
        let schema = serde_json::to_value(video_info_schema()).unwrap();
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let mut serialized = keys(&value);
        let mut documented = keys(&schema["properties"]);
        serialized.sort();
        documented.sort();
        assert_eq!(serialized, documented);
        let stream_keys = keys(&value["streams"][0]);
        let documented_stream = keys(&schema["properties"]["streams"]["items"]["properties"]);
        assert_eq!(stream_keys.len(), documented_stream.len());
        assert!(stream_keys.iter().all(|k| documented_stream.contains(k)));
    }
}
