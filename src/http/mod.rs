//! The control and status API. It reads snapshots from the registry and sends
//! commands to the supervisor; it never touches libav itself.

mod connection;
mod error;
mod event_feed;
mod forms;
mod live_events;
mod routes;
mod status;
mod streams;

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, Route};

pub use connection::on_connect;
pub use error::ApiError;
pub use event_feed::EventFeed;

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

/// Registers every route, each with and without its trailing slash, and JSON
/// answers for unknown routes and wrong methods.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::Unprocessable(format!("Invalid query string: {e}")).into()
            }))
            .service(resource("/").route(web::get().to(routes::root)))
            .configure(both("/metrics", || web::get().to(routes::metrics)))
            .service(
                web::scope(BASE_PATH)
                    .configure(both("", || web::get().to(routes::root)))
                    .configure(both("/health", || web::get().to(routes::health)))
                    .configure(both("/decode", || web::post().to(routes::decode)))
                    .configure(both("/decode/status", || web::get().to(routes::status)))
                    .configure(both("/decode/stop", || web::post().to(routes::stop)))
                    .configure(both("/cameras", || web::get().to(routes::cameras)))
                    .configure(both("/metrics", || web::get().to(routes::metrics)))
                    .configure(both("/latest-frame", || {
                        web::get().to(routes::latest_frame)
                    }))
                    .configure(both("/video-info", || web::post().to(routes::video_info)))
                    .configure(both("/video-info-url", || {
                        web::post().to(routes::video_info_url)
                    }))
                    .configure(both("/hw-accel-cap", || {
                        web::get().to(routes::hw_accel_cap)
                    }))
                    .configure(both("/events", || web::get().to(streams::events)))
                    .configure(both("/ws", || web::get().to(streams::ws))),
            )
            .default_service(web::to(routes::not_found));
    }
}

/// `route` at `path` and at `path/`. Two single-pattern resources rather than
/// one with two patterns: actix matches a multi-pattern resource with a regex
/// set on every request, which showed in profiles of the latest-frame route.
fn both(path: &'static str, route: fn() -> Route) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(resource(path).route(route()))
            .service(resource(&format!("{path}/")).route(route()));
    }
}

/// A resource at `path`, with 405 for other methods.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(routes::method_not_allowed))
}
