//! The HTTP server: the app with its middleware, the listener and how connections are
//! held.

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use super::{configure, on_connect, AppState};
use crate::config::Config;

/// Serves the API on the configured address until a shutdown signal; blocks.
pub fn run(state: web::Data<AppState>, config: &Config) -> std::io::Result<()> {
    let address = (config.host, config.port);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .wrap(from_fn(super::auth::authorize))
                .configure(configure(state.clone()))
        })
        .on_connect(on_connect)
        .bind(address)?
        .shutdown_timeout(1)
        .run()
        .await
    })
}
