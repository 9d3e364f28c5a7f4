//! What the API answers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::entity::user;

/// Your own account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub website: Option<String>,
    pub avatar_image_id: Option<Uuid>,
    pub is_private: bool,
    pub follower_count: u64,
    pub following_count: u64,
    pub post_count: u64,
    pub created_at: DateTime<Utc>,
}

/// Where the viewer stands with a user.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Relationship {
    /// The viewer follows them.
    pub following: bool,
    /// The viewer asked to follow them and waits for approval.
    pub requested: bool,
    /// They follow the viewer.
    pub followed_by: bool,
    /// The viewer blocks them.
    pub blocking: bool,
}

/// A public profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub website: Option<String>,
    pub avatar_image_id: Option<Uuid>,
    pub is_private: bool,
    pub follower_count: u64,
    pub following_count: u64,
    pub post_count: u64,
    pub created_at: DateTime<Utc>,
    /// Present when the request carries a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationship: Option<Relationship>,
}

/// A user in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSummary {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_image_id: Option<Uuid>,
    pub is_private: bool,
}

impl From<&user::Model> for UserSummary {
    fn from(u: &user::Model) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            avatar_image_id: u.avatar_image_id,
            is_private: u.is_private,
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Tokens after log-in or refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub access_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: Account,
}

/// The state of a follow.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowState {
    /// `following`, or `requested` while a private account decides.
    pub status: &'static str,
}
