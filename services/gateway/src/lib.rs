//! The `gateway` role: the image detail page (HTML and its JSON twin) assembled from cache, images, search and users.
//!
//! Its routes are mounted by `pinhole serve` when the role is selected.

use pinhole_http::AppContext;
use utoipa_axum::router::OpenApiRouter;

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "gateway";

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    OpenApiRouter::new().with_state(ctx.clone())
}
