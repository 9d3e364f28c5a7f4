//! The HTTP kit every role shares: the API error type, the application
//! context (settings, backends and the clients of other roles), health, readiness and metrics routes,
//! signed blob links, and the layers around every request.

mod blobs;
mod budget;
mod client_error;
pub mod clients;
mod codes;
mod context;
pub mod docs;
mod error;
mod extract;
pub mod forward;
mod health;
mod input;
mod layers;

pub use blobs::{SignedQuery, blob_router, verify_link};
pub use budget::{BUDGET_WAIT, KeyGuard, KeyedLocks, MemoryBudget, Reserved, busy};
pub use clients::{ClientError, Clients, ImagesClient, SearchClient, UsersClient};
pub use codes::{Common, ErrorCode};
pub use context::{AppContext, BackendStatus, Backends, Context};
pub use error::{ApiError, ErrorBody};
pub use extract::{
    ApiJson, ApiQuery, Auth, ClientIp, MaybeAuth, etag_matches, internal_only, invalid_token,
};
pub use health::{HealthBody, ReadyBody, health_router, metrics_handle};
pub use input::{nullable, page_limit};
pub use layers::apply_layers;

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/openapi.json";
