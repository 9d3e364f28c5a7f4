//! Who is looking at a page, and where they stand with its author.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Someone logged in, looking at a page.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub user_id: Uuid,
    /// Empty when the users role could not say.
    pub username: String,
    /// Their access token, for the requests made on their behalf.
    pub token: String,
    /// What their forms carry.
    pub csrf: String,
}

/// Where the viewer stands with an author, for the follow button.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Standing {
    /// They follow the author.
    pub following: bool,
    /// They asked to follow a private author, who has not yet decided.
    pub requested: bool,
}
