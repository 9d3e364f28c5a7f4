//! The `thumbnails` role: derivative images, on-demand signed transforms and
//! edit operations.
//!
//! Its routes are mounted by `pinhole serve` when the role is selected; its
//! worker (started by [`background`]) consumes upload jobs from the urgent
//! topic and reports progress as image events.

mod worker;

use pinhole_http::AppContext;
use tokio::task::JoinHandle;
use utoipa_axum::router::OpenApiRouter;

pub use worker::{Made, derivative_key, make_derivatives};

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "thumbnails";

/// Consumer group of the upload workers.
pub const GROUP: &str = "thumbnails";

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    OpenApiRouter::new().with_state(ctx.clone())
}

/// Starts the role's workers.
pub fn background(ctx: &AppContext) -> Vec<JoinHandle<()>> {
    // One group member per core: each takes its share of the partitions.
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    (0..workers)
        .map(|_| tokio::spawn(worker::run(ctx.clone())))
        .collect()
}
