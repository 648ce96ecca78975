//! The HTTP layer's one error type and its mapping to status codes. Every error
//! answer is `{"detail": "..."}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

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
    #[error("{0}")]
    NotFound(String),
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    PayloadTooLarge(String),
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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::LoopDetected(_) => StatusCode::LOOP_DETECTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ErrorBody {
            detail: self.to_string(),
        })
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::internal(e)
    }
}
