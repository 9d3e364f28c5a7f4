//! One API error type, mapped to HTTP in one place.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Common, ErrorCode};

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable, e.g. `image-not-found`.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// On 422: the offending fields and what is wrong with each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<BTreeMap<String, String>>,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.code(),
            message: message.into(),
            fields: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 422 for one field.
    pub fn field(name: &str, problem: impl Into<String>) -> Self {
        Self::invalid(BTreeMap::from([(name.to_owned(), problem.into())]))
    }

    pub fn not_found(code: impl ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: impl ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 with the offending fields.
    pub fn invalid(fields: BTreeMap<String, String>) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: Common::ValidationFailed.code(),
            message: format!("invalid fields: {}", names.join(", ")),
            fields: Some(fields),
            headers: Vec::new(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Common::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, Common::Forbidden, message)
    }

    /// A failure that is ours, not the client's: the cause is logged once,
    /// the body says nothing internal.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Common::Internal,
            "something went wrong on our side; it has been logged",
        )
    }

    /// A backend we need is not answering.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "backend unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Common::Unavailable,
            "a service this request needs is unavailable; try again shortly",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
            fields: self.fields,
        };
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Self::conflict(Common::Conflict, "that already exists")
            }
            // Every connection busy for the whole wait: overloaded, not broken.
            _ if matches!(e, sea_orm::DbErr::ConnectionAcquire(_)) => {
                Self::unavailable(e).with_header(axum::http::header::RETRY_AFTER, "1")
            }
            _ => Self::internal(e),
        }
    }
}
