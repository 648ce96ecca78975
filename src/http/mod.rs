//! The control and status API. It reads snapshots from the registry and sends
//! commands to the supervisor; it never touches libav itself.

mod auth;
mod body_limit;
mod connection;
mod error;
mod event_feed;
pub(crate) mod forms;
mod forward;
pub mod handoff;
mod live_events;
mod mjpeg;
mod openapi;
mod page;
mod rate_limit;
mod routes;
pub mod server;
mod status;
mod streams;
mod tls;

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{web, Route};
use utoipa::openapi::path::Operation;

pub use connection::on_connect;
pub use error::ApiError;
pub use event_feed::EventFeed;
pub use openapi::document;

use crate::camera::Supervisor;
use crate::metrics::Metrics;

pub const BASE_PATH: &str = "/api/v1/video-pipeline";

/// What every handler can reach.
pub struct AppState {
    pub supervisor: Arc<Supervisor>,
    pub started: Instant,
    pub metrics: Arc<Metrics>,
    pub events: Arc<EventFeed>,
}

/// The methods routes answer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }

    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
        }
    }
}

/// Who may call a route once authentication is configured (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Always open: the health check of load balancers and orchestrators, and the
    /// status page's script and style (compiled-in files that hold no data).
    Open,
    /// `GET /`: open when it answers a browser the status page (a shell with no data,
    /// which asks for a key), `Read` when it answers the JSON greeting.
    Page,
    /// Reads state or frames: status, cameras, frames, events, metrics, docs.
    Read,
    /// Changes what the daemon does: starts, stops, uploads.
    Control,
}

/// One route of the API: registered by [`configure`] and described in `openapi.json`
/// from the same entry, so that neither can be forgotten.
pub struct ApiRoute {
    /// The documented form of the path (that of docs/api.md); the same path with or
    /// without its trailing slash answers the same.
    pub path: &'static str,
    pub verb: Verb,
    pub access: Access,
    /// Attaches the handler to a route of `verb`.
    handler: fn(Route) -> Route,
    /// The route's OpenAPI operation.
    doc: fn() -> Operation,
}

impl ApiRoute {
    /// The other spelling of the path, with or without the trailing slash (`None` for `/`).
    pub fn other_form(&self) -> Option<String> {
        match self.path.strip_suffix('/') {
            Some("") => None,
            Some(bare) => Some(bare.to_owned()),
            None => Some(format!("{}/", self.path)),
        }
    }
}

/// Every route. A new one is one entry here, with its handler in `routes` and its
/// description in `openapi`.
pub const ROUTES: &[ApiRoute] = &[
    ApiRoute {
        path: "/",
        verb: Verb::Get,
        access: Access::Page,
        handler: |r| r.to(routes::front),
        doc: openapi::front,
    },
    ApiRoute {
        path: page::SCRIPT_PATH,
        verb: Verb::Get,
        access: Access::Open,
        handler: |r| r.to(page::script),
        doc: openapi::page_script,
    },
    ApiRoute {
        path: page::STYLE_PATH,
        verb: Verb::Get,
        access: Access::Open,
        handler: |r| r.to(page::style),
        doc: openapi::page_style,
    },
    ApiRoute {
        path: "/metrics",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::metrics),
        doc: openapi::metrics,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::root),
        doc: openapi::root,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/health/",
        verb: Verb::Get,
        access: Access::Open,
        handler: |r| r.to(routes::health),
        doc: openapi::health,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/decode/",
        verb: Verb::Post,
        access: Access::Control,
        handler: |r| r.to(routes::decode),
        doc: openapi::decode,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/decode/status/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::status),
        doc: openapi::status,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/decode/stop/",
        verb: Verb::Post,
        access: Access::Control,
        handler: |r| r.to(routes::stop),
        doc: openapi::stop,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/cameras/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::cameras),
        doc: openapi::cameras,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/metrics",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::metrics),
        doc: openapi::metrics,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/latest-frame/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::latest_frame),
        doc: openapi::latest_frame,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/mjpeg/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(mjpeg::mjpeg),
        doc: openapi::mjpeg,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/events/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(streams::events),
        doc: openapi::events,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/ws/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(streams::ws),
        doc: openapi::ws,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/video-info/",
        verb: Verb::Post,
        access: Access::Read,
        handler: |r| r.to(routes::video_info),
        doc: openapi::video_info,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/video-info-url/",
        verb: Verb::Post,
        access: Access::Read,
        handler: |r| r.to(routes::video_info_url),
        doc: openapi::video_info_url,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/hw-accel-cap/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::hw_accel_cap),
        doc: openapi::hw_accel_cap,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/openapi.json",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::openapi_json),
        doc: openapi::openapi_json,
    },
    ApiRoute {
        path: "/api/v1/video-pipeline/docs/",
        verb: Verb::Get,
        access: Access::Read,
        handler: |r| r.to(routes::docs_page),
        doc: openapi::docs_page,
    },
];

/// Registers every route of [`ROUTES`], each with and without its trailing slash, and
/// JSON answers for unknown routes and wrong methods. Control routes count against the
/// rate limit when the app has one (`RATE_LIMIT_PER_MINUTE`).
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::Unprocessable(format!("Invalid query string: {e}")).into()
            }));
        let mut paths: Vec<&ApiRoute> = Vec::new();
        for route in ROUTES {
            if !paths.iter().any(|seen| seen.path == route.path) {
                paths.push(route);
            }
        }
        // One single-pattern resource per spelling, holding every method of the path:
        // actix matches a multi-pattern resource with a regex set on every request,
        // which showed in profiles of the latest-frame route.
        for first in paths {
            let spellings = std::iter::once(first.path.to_owned()).chain(first.other_form());
            for spelling in spellings {
                let mut resource = web::resource(spelling.as_str())
                    .default_service(web::to(routes::method_not_allowed));
                for route in ROUTES.iter().filter(|r| r.path == first.path) {
                    let mut handler = (route.handler)(web::route().method(route.verb.method()));
                    // Only control requests are rate limited; reads never are.
                    if route.access == Access::Control {
                        handler = handler.wrap(from_fn(rate_limit::control));
                    }
                    resource = resource.route(handler);
                }
                cfg.service(resource);
            }
        }
        cfg.default_service(web::to(routes::not_found));
    }
}
