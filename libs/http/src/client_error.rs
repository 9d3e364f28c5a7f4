//! Why a call to another role failed, and how long such calls may take.

use std::error::Error as StdError;
use std::time::Duration;

use axum::http::StatusCode;

use crate::ApiError;

/// How long a call to another role may take to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call to another role may take in all.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why another role could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The role is neither hosted here nor given an address.
    #[error(
        "the {role} role is not served by this process and PINHOLE_ROLE_URLS gives no address for it; set PINHOLE_ROLE_URLS={role}=http://HOST:PORT"
    )]
    NotConfigured { role: &'static str },
    /// No answer (refused, timed out, cut off).
    #[error("the {role} role at {url} did not answer")]
    Unreachable {
        role: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not one the contract allows (a wrong internal
    /// token, a route that does not exist there, a server error).
    #[error("the {role} role at {url} answered {status} `{code}`")]
    Refused {
        role: &'static str,
        url: String,
        status: u16,
        /// The error body's `code`, or empty.
        code: String,
    },
    /// A 2xx answer whose body does not read as the contract's type.
    #[error("the {role} role at {url} answered a body that does not read")]
    Unreadable {
        role: &'static str,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// The role, hosted in this process, failed (its backends).
    #[error("the {role} role failed")]
    Failed {
        role: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl ClientError {
    /// The role that could not answer.
    pub fn role(&self) -> &'static str {
        match self {
            Self::NotConfigured { role }
            | Self::Unreachable { role, .. }
            | Self::Refused { role, .. }
            | Self::Unreadable { role, .. }
            | Self::Failed { role, .. } => role,
        }
    }

    /// A failure of `role` hosted in this process.
    pub fn failed(role: &'static str, source: impl StdError + Send + Sync + 'static) -> Self {
        Self::Failed {
            role,
            source: Box::new(source),
        }
    }
}

/// `error: cause: cause…`, the whole chain on one line.
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

impl From<ClientError> for ApiError {
    /// 503: `role-unavailable` naming the role when another process did not
    /// answer (or nothing says where it is); `unavailable` when the role is
    /// hosted here and its backends failed. The cause is logged once.
    fn from(e: ClientError) -> Self {
        let role = e.role();
        if matches!(e, ClientError::Failed { .. }) {
            return ApiError::unavailable(chain(&e));
        }
        tracing::error!(role, error = %chain(&e), "a role this request needs is unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::Common::RoleUnavailable,
            format!("the {role} role, which this request needs, is unavailable; try again shortly"),
        )
    }
}
