//! The operators' status page: plain HTML, CSS and JavaScript compiled into the
//! binary, so the daemon serves it with nothing to install and nothing fetched from
//! elsewhere. The page itself only calls the public API.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// One embedded file, with a hash of its content (computed at compile time) that
/// browsers revalidate their copy with.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    hash: u64,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Asset {
        Asset {
            body,
            content_type,
            hash: fnv1a(body.as_bytes()),
        }
    }

    fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }
}

const INDEX: Asset = Asset::new(include_str!("page/index.html"), "text/html; charset=utf-8");
const SCRIPT: Asset = Asset::new(
    include_str!("page/page.js"),
    "text/javascript; charset=utf-8",
);
const STYLE: Asset = Asset::new(include_str!("page/page.css"), "text/css; charset=utf-8");

/// Where the page's script and style are served.
pub const SCRIPT_PATH: &str = "/ui/page.js";
pub const STYLE_PATH: &str = "/ui/page.css";

/// Whether the caller is a browser asking for a page: its `Accept` names `text/html`
/// (with a non-zero weight). `*/*` alone, as curl and most API clients send, does not.
pub fn wants_html(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            media.eq_ignore_ascii_case("text/html") && parts.all(|p| !is_zero_weight(p))
        })
}

fn is_zero_weight(parameter: &str) -> bool {
    let Some((name, value)) = parameter.split_once('=') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
}

pub fn index(request: &HttpRequest) -> HttpResponse {
    serve(&INDEX, request)
}

pub async fn script(request: HttpRequest) -> HttpResponse {
    serve(&SCRIPT, &request)
}

pub async fn style(request: HttpRequest) -> HttpResponse {
    serve(&STYLE, &request)
}

/// An asset with `Cache-Control: no-cache` and an ETag of its content: a browser keeps
/// its copy but asks each time, so a new binary's page is never mixed with an old
/// script, and an unchanged one costs a 304.
fn serve(asset: &Asset, request: &HttpRequest) -> HttpResponse {
    let etag = asset.etag();
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if fresh {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.body)
}

/// FNV-1a, 64 bits: enough to tell two builds' files apart.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn accepts(value: &str) -> bool {
        wants_html(
            &TestRequest::default()
                .insert_header((header::ACCEPT, value))
                .to_http_request(),
        )
    }

    #[test]
    fn browsers_get_the_page_and_api_clients_json() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                        image/webp,*/*;q=0.8";
        assert!(accepts(chromium));
        assert!(accepts("TEXT/HTML"));
        assert!(accepts("application/json, text/html;q=0.5"));
        assert!(!accepts("*/*"));
        assert!(!accepts("application/json"));
        assert!(!accepts("text/html;q=0, */*"));
        assert!(!accepts("text/html;q=0.0"));
        assert!(!accepts("text/htmlx"));
        assert!(!wants_html(&TestRequest::default().to_http_request()));
    }

    #[test]
    fn the_script_sets_the_cookie_the_gate_reads() {
        let name = format!("const COOKIE = \"{}\";", super::super::auth::COOKIE);
        assert!(SCRIPT.body.contains(&name), "page.js must use {name}");
    }

    #[test]
    fn the_etag_changes_with_the_content() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_ne!(INDEX.etag(), SCRIPT.etag());
    }
}
