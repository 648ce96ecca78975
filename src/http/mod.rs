//! The control and status API. It reads snapshots from the registry and sends
//! commands to the supervisor; it never touches libav itself.

mod error;
mod forms;
mod routes;

use std::sync::Arc;
use std::time::Instant;

use actix_web::web;

pub use error::ApiError;

use crate::supervisor::Supervisor;

pub const BASE_PATH: &str = "/api/v1/video-pipeline";

/// What every handler can reach.
pub struct AppState {
    pub supervisor: Arc<Supervisor>,
    pub started: Instant,
}

/// Registers every route, each with and without its trailing slash, and JSON
/// answers for unknown routes and wrong methods.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::Unprocessable(format!("Invalid query string: {e}")).into()
            }))
            .service(resource("/", "").route(web::get().to(routes::root)))
            .service(
                web::scope(BASE_PATH)
                    .service(resource("", "/").route(web::get().to(routes::root)))
                    .service(resource("/health", "/").route(web::get().to(routes::health)))
                    .service(resource("/decode", "/").route(web::post().to(routes::decode)))
                    .service(resource("/decode/status", "/").route(web::get().to(routes::status)))
                    .service(resource("/decode/stop", "/").route(web::post().to(routes::stop)))
                    .service(
                        resource("/latest-frame", "/").route(web::get().to(routes::latest_frame)),
                    )
                    .service(resource("/video-info", "/").route(web::post().to(routes::video_info)))
                    .service(
                        resource("/video-info-url", "/")
                            .route(web::post().to(routes::video_info_url)),
                    )
                    .service(
                        resource("/hw-accel-cap", "/").route(web::get().to(routes::hw_accel_cap)),
                    ),
            )
            .default_service(web::to(routes::not_found));
    }
}

/// A resource answering at `path` and `path` + `slash`, with 405 for other methods.
fn resource(path: &str, slash: &str) -> actix_web::Resource {
    let paths = if slash.is_empty() {
        vec![path.to_owned()]
    } else {
        vec![path.to_owned(), format!("{path}{slash}")]
    };
    web::resource(paths).default_service(web::to(routes::method_not_allowed))
}
