//! The one gate in front of every route (docs/security.md): it finds the route's
//! [`Access`] in [`ROUTES`], the credential in the request, asks the configured
//! [`Authenticator`] for its grant, and answers 401 or 403 itself. Handlers never check.
//! With no credential configured it lets everything through.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest};

use super::{page, Access, ApiError, AppState, ROUTES};
use crate::auth::{Authenticator, Carrier, Invalid, Scope};

/// The cookie the status page sets from the key it was given: sent by the browser with
/// `<img>`, `EventSource` and WebSocket requests, which cannot carry a header.
pub const COOKIE: &str = "video_pipeline_auth";

/// What a request needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    /// Any valid credential: unknown routes and other methods, so that 404 and 405
    /// tell only callers with a credential which paths exist.
    Credential,
    Scope(Scope),
}

/// The middleware (`actix_web::middleware::from_fn(authorize)`).
pub async fn authorize<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let verdict = match request.app_data::<web::Data<AppState>>() {
        Some(state) => check(&state.supervisor.config().auth, request.request()),
        None => Err(ApiError::internal("the application state is missing")),
    };
    match verdict {
        Ok(()) => Ok(next.call(request).await?.map_into_left_body()),
        Err(error) => Ok(request.error_response(error).map_into_right_body()),
    }
}

fn check(auth: &Authenticator, request: &HttpRequest) -> Result<(), ApiError> {
    if !auth.is_on() {
        return Ok(());
    }
    // The path as the router matches it (percent-decoded where that is safe), so a
    // route cannot be reached under a spelling that this gate does not recognize.
    let need = need(request.method(), request.match_info().as_str(), request);
    if need == Need::Nothing {
        return Ok(());
    }
    let cookie_ok = request.method() == Method::GET
        && need != Need::Scope(Scope::Control)
        && from_this_origin(request);
    let Some((credential, carrier)) = credential(request, cookie_ok)? else {
        log::debug!("no credential for {} {}", request.method(), request.path());
        return Err(ApiError::Unauthorized {
            detail:
                "Not authenticated: send Authorization: Bearer <key or token>, or X-API-Key: <key>"
                    .into(),
            credential_sent: false,
        });
    };
    let grant = auth.verify(credential, carrier).map_err(|invalid| {
        log::info!(
            "refused {} {} from {}: {invalid}",
            request.method(),
            request.path(),
            peer(request)
        );
        refused(invalid)
    })?;
    match need {
        Need::Scope(scope) if !grant.allows(scope) => {
            log::info!(
                "refused {} {} from {}: the credential lacks the {} scope",
                request.method(),
                request.path(),
                peer(request),
                scope.as_str()
            );
            Err(ApiError::Forbidden { needed: scope })
        }
        _ => Ok(()),
    }
}

fn refused(invalid: Invalid) -> ApiError {
    ApiError::Unauthorized {
        detail: format!("Invalid credentials: {invalid}"),
        credential_sent: true,
    }
}

fn peer(request: &HttpRequest) -> String {
    request
        .peer_addr()
        .map_or_else(|| "?".to_owned(), |a| a.ip().to_string())
}

fn need(method: &Method, path: &str, request: &HttpRequest) -> Need {
    let access = ROUTES
        .iter()
        .find(|r| r.verb.method() == method && same_path(r.path, path))
        .map(|r| r.access);
    match access {
        Some(Access::Open) => Need::Nothing,
        Some(Access::Page) if page::wants_html(request) => Need::Nothing,
        Some(Access::Page | Access::Read) => Need::Scope(Scope::Read),
        Some(Access::Control) => Need::Scope(Scope::Control),
        None => Need::Credential,
    }
}

/// Whether `path` is the documented path in either trailing-slash spelling, as
/// `configure` registers it.
fn same_path(documented: &str, path: &str) -> bool {
    if documented == "/" {
        return path == "/";
    }
    bare(documented) == bare(path)
}

fn bare(path: &str) -> &str {
    path.strip_suffix('/').unwrap_or(path)
}

/// The request's credential: `Authorization: Bearer`, else `X-API-Key`, else (where
/// allowed) the status page's cookie. An `Authorization` of another scheme is refused
/// rather than ignored, so that a caller learns why it is not let in.
fn credential(request: &HttpRequest, cookie_ok: bool) -> Result<Option<(&str, Carrier)>, ApiError> {
    let headers = request.headers();
    let unreadable = || refused(Invalid::Malformed);
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| unreadable())?.trim();
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized {
                detail: "Unsupported Authorization scheme: use Bearer".into(),
                credential_sent: false,
            });
        }
        return Ok(Some((token.trim(), Carrier::Bearer)));
    }
    if let Some(value) = headers.get("x-api-key") {
        let key = value.to_str().map_err(|_| unreadable())?.trim();
        return Ok(Some((key, Carrier::ApiKeyHeader)));
    }
    if !cookie_ok {
        return Ok(None);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| (value, Carrier::Cookie));
    Ok(cookie)
}

/// Whether the request comes from a page of this daemon's own origin, or from no page
/// at all. Browsers name the page's origin on WebSocket handshakes and cross-origin
/// requests; `SameSite=Strict` keeps the cookie from other sites, but a sibling of the
/// same site (another port, another subdomain) is another origin and may not use it.
/// The host is compared with `Host` and, behind a proxy, `X-Forwarded-Host`: headers
/// a browser page cannot set.
fn from_this_origin(request: &HttpRequest) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let Some(origin_host) = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host)
    else {
        return false;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let info = request.connection_info();
    let same = [host, Some(info.host())]
        .into_iter()
        .flatten()
        .any(|h| h.eq_ignore_ascii_case(origin_host));
    same
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const READ: &str = "readreadreadreadread";
    const CONTROL: &str = "controlcontrolcontrol";

    fn auth() -> Authenticator {
        let keys = crate::auth::ApiKeys::parse_list(&format!("{READ}:read,{CONTROL}:control"));
        Authenticator::new(keys.unwrap(), None)
    }

    fn status(request: TestRequest) -> Option<u16> {
        let request = request.to_http_request();
        check(&auth(), &request)
            .err()
            .map(|e| actix_web::ResponseError::status_code(&e).as_u16())
    }

    fn get(path: &str) -> TestRequest {
        TestRequest::get().uri(path)
    }

    fn post(path: &str) -> TestRequest {
        TestRequest::post().uri(path)
    }

    const DECODE: &str = "/api/v1/video-pipeline/decode/";
    const CAMERAS: &str = "/api/v1/video-pipeline/cameras/";

    #[test]
    fn every_route_needs_what_its_access_says() {
        let bearer = |key: &str| (header::AUTHORIZATION, format!("Bearer {key}"));
        assert_eq!(status(get("/api/v1/video-pipeline/health/")), None);
        assert_eq!(status(get("/api/v1/video-pipeline/health")), None);
        assert_eq!(status(get(CAMERAS)), Some(401));
        assert_eq!(status(get("/api/v1/video-pipeline/cameras")), Some(401));
        assert_eq!(status(get(CAMERAS).insert_header(bearer(READ))), None);
        assert_eq!(status(post(DECODE).insert_header(bearer(READ))), Some(403));
        assert_eq!(
            status(post("/api/v1/video-pipeline/decode").insert_header(bearer(READ))),
            Some(403)
        );
        assert_eq!(status(post(DECODE).insert_header(bearer(CONTROL))), None);
        assert_eq!(status(get(CAMERAS).insert_header(bearer(CONTROL))), None);
        assert_eq!(
            status(get(CAMERAS).insert_header(("X-API-Key", READ))),
            None
        );
        assert_eq!(
            status(get(CAMERAS).insert_header(bearer("nope"))),
            Some(401)
        );
        assert_eq!(
            status(get(CAMERAS).insert_header((header::AUTHORIZATION, format!("Basic {READ}")))),
            Some(401)
        );
    }

    #[test]
    fn unknown_routes_and_methods_need_a_credential_of_any_scope() {
        assert_eq!(status(get("/nowhere")), Some(401));
        assert_eq!(status(post("/api/v1/video-pipeline/health/")), Some(401));
        assert_eq!(
            status(get("/nowhere").insert_header(("X-API-Key", READ))),
            None
        );
        assert_eq!(
            status(post(CAMERAS).insert_header(("X-API-Key", READ))),
            None
        );
    }

    #[test]
    fn the_page_shell_is_open_to_browsers_and_the_greeting_is_read() {
        let browser = (header::ACCEPT, "text/html,*/*;q=0.8");
        assert_eq!(status(get("/").insert_header(browser)), None);
        assert_eq!(status(get("/ui/page.js")), None);
        assert_eq!(status(get("/ui/page.css")), None);
        assert_eq!(status(get("/")), Some(401));
        assert_eq!(status(get("/ui/other.js")), Some(401));
    }

    #[test]
    fn the_cookie_counts_for_reading_from_this_origin_only() {
        let cookie = (header::COOKIE, format!("theme=dark; {COOKIE}={CONTROL}"));
        let from = |origin: Option<&str>, forwarded: Option<&str>| {
            let mut request = get(CAMERAS)
                .insert_header(cookie.clone())
                .insert_header((header::HOST, "cams.example:8002"));
            if let Some(origin) = origin {
                request = request.insert_header((header::ORIGIN, origin));
            }
            if let Some(host) = forwarded {
                request = request.insert_header(("X-Forwarded-Host", host));
            }
            status(request)
        };
        assert_eq!(from(None, None), None);
        assert_eq!(from(Some("http://cams.example:8002"), None), None);
        assert_eq!(
            from(Some("http://other.cams.example:8002"), None),
            Some(401)
        );
        assert_eq!(from(Some("http://cams.example:9000"), None), Some(401));
        assert_eq!(from(Some("null"), None), Some(401));
        let front = Some("front.example");
        assert_eq!(from(Some("https://front.example"), front), None);
        // Never for control, never for a POST, even with a control key.
        assert_eq!(
            status(post(DECODE).insert_header(cookie.clone())),
            Some(401)
        );
        let video_info = post("/api/v1/video-pipeline/video-info/");
        assert_eq!(status(video_info.insert_header(cookie.clone())), Some(401));
        let empty = (header::COOKIE, format!("{COOKIE}="));
        assert_eq!(status(get(CAMERAS).insert_header(empty)), Some(401));
    }

    #[test]
    fn the_gate_reads_the_path_the_router_matches() {
        // `%64` is `d`: the router matches `decode/` here, and so must the gate.
        let key = ("X-API-Key", READ);
        assert_eq!(
            status(post("/api/v1/video-pipeline/%64ecode/").insert_header(key)),
            Some(403)
        );
    }

    #[test]
    fn both_spellings_of_every_route_are_recognized() {
        for route in ROUTES {
            let spellings = std::iter::once(route.path.to_owned()).chain(route.other_form());
            for spelling in spellings {
                assert!(same_path(route.path, &spelling), "{spelling}");
            }
        }
        assert!(!same_path("/", "//"));
        assert!(!same_path("/metrics", "/metrics//"));
    }
}
