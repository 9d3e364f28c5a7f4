//! The `sns-sync` role: OAuth2 links to outside networks and cross-posting with retries.
//!
//! Its routes are mounted by `pinhole serve` when the role is selected.

use pinhole_http::AppContext;
use utoipa_axum::router::OpenApiRouter;

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "sns-sync";

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    OpenApiRouter::new().with_state(ctx.clone())
}
