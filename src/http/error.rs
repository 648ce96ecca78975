//! The HTTP layer's one error type and its mapping to status codes. Every error
//! answer is `{"detail": "..."}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

use crate::auth::Scope;

/// Every error answer: `{"detail": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, in words (for a missing field: `Field required: <name>`).
    pub detail: String,
}

#[derive(Debug, Error)]
pub enum ApiError {
    /// A required field is missing or has the wrong type.
    #[error("{0}")]
    Unprocessable(String),
    /// A value of the right type that is not allowed.
    #[error("{0}")]
    BadRequest(String),
    /// No credential, or one that is not valid.
    #[error("{detail}")]
    Unauthorized {
        detail: String,
        /// Whether a credential was sent (the challenge then says `invalid_token`).
        credential_sent: bool,
    },
    /// A valid credential without the scope the route needs.
    #[error("Forbidden: this route needs the {} scope", .needed.as_str())]
    Forbidden { needed: Scope },
    #[error("{0}")]
    NotFound(String),
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many cameras, or too many requests; `retry_after` in seconds when known.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after: Option<u64>,
    },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    InsufficientStorage(String),
    /// The replica that owns the camera cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// A forwarded request reached a replica that does not own its camera either.
    #[error("{0}")]
    LoopDetected(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn missing(field: &str) -> ApiError {
        ApiError::Unprocessable(format!("Field required: {field}"))
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(format!("Internal error: {error}"))
    }

    /// The `WWW-Authenticate` value of a 401 or 403 (RFC 6750).
    fn challenge(&self) -> Option<String> {
        const REALM: &str = "Bearer realm=\"video-pipeline\"";
        match self {
            ApiError::Unauthorized {
                credential_sent: false,
                ..
            } => Some(REALM.to_owned()),
            ApiError::Unauthorized { .. } => Some(format!("{REALM}, error=\"invalid_token\"")),
            ApiError::Forbidden { needed } => Some(format!(
                "{REALM}, error=\"insufficient_scope\", scope=\"{}\"",
                needed.as_str()
            )),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::LoopDetected(_) => StatusCode::LOOP_DETECTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::TooManyRequests {
            retry_after: Some(seconds),
            ..
        } = self
        {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(challenge) = self.challenge() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        response.json(ErrorBody {
            detail: self.to_string(),
        })
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::internal(e)
    }
}
