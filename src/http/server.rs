//! The HTTP server: the app with its middleware, the listener and how connections are
//! held.
//!
//! Middleware, from the outside in: CORS (so that every answer, a 401, 413 or 429 too,
//! carries its headers for an allowed origin), then authentication, then the routes,
//! where each control route counts against the rate limit (`ROUTES` and `configure`).
//!
//! Connections cost no worker while they wait: each worker serves thousands of them
//! asynchronously. What bounds them is time (a request head must be complete within
//! [`REQUEST_HEAD_TIMEOUT`] of the connection opening, an idle keep-alive connection is
//! closed after [`KEEP_ALIVE`]) and their number (`MAX_CONNECTIONS`).

use std::num::NonZeroUsize;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::http::{header, Method};
use actix_web::middleware::from_fn;
use actix_web::middleware::Condition;
use actix_web::{web, App, HttpServer};

use super::rate_limit::ControlRateLimit;
use super::{configure, on_connect, tls, AppState};
use crate::config::{Config, CorsOrigins};

/// A request's line and headers must have arrived this soon after the connection
/// opened, else 408 and the connection is closed: headers sent a byte at a time hold
/// a connection no longer than this. (actix bounds the head to 96 headers and 128 KiB
/// itself, 431 past it.)
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed this long after its last answer.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// A closing connection's rest, such as the unread body after an early 413 or 429, is
/// read and dropped this long, so that the client sees the answer.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A TLS handshake must be done within this.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// TLS handshakes in progress at once per worker: they take CPU.
const MAX_TLS_HANDSHAKES: usize = 256;
/// Connections the kernel queues while none is accepted (`MAX_CONNECTIONS` reached).
const BACKLOG: u32 = 1024;
/// How long a browser may keep a preflight's answer.
const CORS_MAX_AGE_SECONDS: usize = 3600;

/// What must be ready before the daemon starts anything: the listener's TLS setup.
pub struct Prepared {
    tls: Option<rustls::ServerConfig>,
}

/// Reads the TLS files, if any; the error is one line naming the variable.
pub fn prepare(config: &Config) -> Result<Prepared, String> {
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    Ok(Prepared { tls })
}

/// Serves the API on the configured address until a shutdown signal; blocks.
pub fn run(state: web::Data<AppState>, config: &Config, prepared: Prepared) -> std::io::Result<()> {
    let address = (config.host, config.port);
    // One limiter for all workers: a client's requests count together whichever
    // worker serves them.
    let rate_limit = config
        .rate_limit_per_minute
        .map(|per_minute| web::Data::new(ControlRateLimit::new(per_minute)));
    let origins = config.cors_allowed_origins.clone();
    let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let per_worker = config.max_connections.div_ceil(workers);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let mut app = App::new();
            if let Some(limit) = &rate_limit {
                app = app.app_data(limit.clone());
            }
            // The last wrap is the outermost: CORS answers preflights and marks every
            // answer, the 401s and 403s of authentication included.
            app.configure(configure(state.clone()))
                .wrap(from_fn(super::auth::authorize))
                .wrap(cors(&origins))
        })
        .workers(workers)
        .on_connect(on_connect)
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .tls_handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
        .max_connection_rate(MAX_TLS_HANDSHAKES)
        .max_connections(per_worker)
        .backlog(BACKLOG);
        let server = match prepared.tls {
            Some(tls) => server.bind_rustls_0_23(address, tls)?,
            None => server.bind(address)?,
        };
        server.shutdown_timeout(1).run().await
    })
}

/// CORS for the configured origins; none configured: no CORS headers, as a browser
/// expects from a server that allows no other origin.
fn cors(origins: &CorsOrigins) -> Condition<Cors> {
    let cors = match origins {
        CorsOrigins::None => return Condition::new(false, Cors::default()),
        // Reading only: a preflight for a POST, which a JSON body or an API key
        // header needs, is refused.
        CorsOrigins::Any => Cors::default()
            .allow_any_origin()
            .send_wildcard()
            .allowed_methods([Method::GET]),
        CorsOrigins::Exact(origins) => origins
            .iter()
            .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
            .allowed_methods([Method::GET, Method::POST]),
    };
    let cors = cors
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::ETAG,
            header::HeaderName::from_static("x-frame-seq"),
            header::HeaderName::from_static("x-frame-pts"),
            header::HeaderName::from_static("x-captured-at"),
        ])
        .max_age(CORS_MAX_AGE_SECONDS);
    Condition::new(true, cors)
}
