//! The `search` role: a tantivy index of images and accounts, fed by the
//! images and users roles' events (exactly once: offsets live in the
//! index's commits), queried by text (Chinese and Japanese segmented),
//! tags, author, camera, dates and places, with facets, highlights,
//! suggestions, people search and related images.
//!
//! It learns everything from events and from the other roles' internal
//! APIs (`pinhole search reindex`), never from their tables.

pub mod analyzer;
pub mod engine;
pub mod index;
pub mod indexer;
pub mod query;
pub mod reindex;
mod routes;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;

use pinhole_http::AppContext;
use tokio::task::JoinHandle;
use utoipa_axum::router::OpenApiRouter;

pub use engine::Engine;
pub use routes::{InProcessSearch, related_ids, search_ids};

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "search";

/// What can go wrong in the search role.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search read model: {0}")]
    State(#[from] sea_orm::DbErr),
    #[error("event bus: {0}")]
    Bus(#[from] pinhole_bus::BusError),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Client(#[from] pinhole_http::clients::ClientError),
    #[error("the index writer is closed")]
    Closed,
    #[error("{0}")]
    Internal(String),
}

/// The role's HTTP routes over `engine`.
pub fn router(ctx: &AppContext, engine: Arc<Engine>) -> OpenApiRouter {
    routes::router(ctx, engine)
}

/// The indexer.
pub fn background(ctx: &AppContext, engine: &Arc<Engine>) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(indexer::run(ctx.clone(), Arc::clone(engine)))]
}
