//! The `thumbnails` role: derivative images, on-demand signed transforms and edit operations.
//!
//! Its routes are mounted by `pinhole serve` when the role is selected.

use pinhole_http::AppContext;
use utoipa_axum::router::OpenApiRouter;

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "thumbnails";

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    OpenApiRouter::new().with_state(ctx.clone())
}
