//! What the API answers with.

use chrono::{DateTime, Utc};
use pinhole_media::ExifData;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::Visibility;

/// A derivative as stored on the image (made by the thumbnails role).
pub use pinhole_events::images::Derivative as StoredDerivative;

/// A derivative with a link to fetch it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Derivative {
    /// e.g. `thumb_256`, `w1080`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// `jpeg`, `webp`, …
    pub format: String,
    /// A signed, expiring link.
    pub url: String,
}

/// Who posted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Author {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_image_id: Option<Uuid>,
}

/// Where an image was taken, with the nearest populated place (offline
/// GeoNames data; the place fields are null farther than 50 km from any,
/// as at sea).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Location {
    /// Degrees north, -90 to 90.
    pub lat: f64,
    /// Degrees east, -180 to 180.
    pub lon: f64,
    /// The owner's name for the place, else the nearest place's `City,
    /// Region, Country`.
    pub place_name: Option<String>,
    /// The nearest place's town or city, e.g. `Paris`.
    pub city: Option<String>,
    /// Its first-level division (state, region, province), e.g.
    /// `Ile-de-France`.
    pub region: Option<String>,
    /// Its country's English name, e.g. `France`.
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `FR`.
    pub country_code: Option<String>,
}

impl Location {
    /// A stored position and the owner's place name, with its place.
    pub fn of(lat: f64, lon: f64, place_name: Option<&str>) -> Self {
        let p = crate::domain::placed(lat, lon, place_name);
        Self {
            lat,
            lon,
            place_name: p.place_name,
            city: p.city,
            region: p.region,
            country: p.country,
            country_code: p.country_code,
        }
    }
}

/// An image.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Image {
    pub id: Uuid,
    pub owner: Author,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Explicit tags and the description's #hashtags.
    pub tags: Vec<String>,
    pub alt_text: Option<String>,
    pub visibility: Visibility,
    pub location: Option<Location>,
    /// `jpeg`, `png`, `gif`, `webp`, `heic` or `avif`, from the bytes.
    pub format: String,
    /// As displayed (EXIF orientation applied).
    pub width: u32,
    pub height: u32,
    /// Bytes of the original.
    pub size: u64,
    /// `processing`, `ready` or `failed`.
    pub status: String,
    /// Camera details; the GPS position only for the owner.
    #[schema(value_type = Option<Object>)]
    pub exif: Option<ExifData>,
    pub derivatives: Vec<Derivative>,
    /// `/api/v1/images/{id}/original`.
    pub original_url: String,
    pub like_count: u64,
    pub comment_count: u64,
    /// Times its page was shown (counted from page views a few seconds
    /// behind).
    pub view_count: u64,
    /// Whether the signed-in viewer likes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liked_by_me: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// The current version (edits make new ones).
    pub version: i32,
    /// From the thumbnails role once processed: `thumbhash` (base64
    /// placeholder), `dominant_color` (`#rrggbb`), `phash` (64-bit perceptual
    /// hash, hex) and `faces` (boxes in displayed pixels).
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<serde_json::Value>,
}

/// A page of images, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImagePage {
    pub items: Vec<Image>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// A processing task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: Uuid,
    pub image_id: Uuid,
    pub batch_id: Option<Uuid>,
    /// `upload`.
    pub kind: String,
    /// `queued`, `processing`, `done` or `failed`.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// When done: the derivatives.
    pub derivatives: Vec<Derivative>,
    pub callback_url: Option<String>,
    /// `pending`, `delivered` or `failed`, when there is a callback.
    pub callback_state: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Several tasks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    pub items: Vec<Task>,
    /// How many are in each state.
    pub counts: TaskCounts,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TaskCounts {
    pub queued: u64,
    pub processing: u64,
    pub done: u64,
    pub failed: u64,
}

/// The answer to an upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub image_id: Uuid,
    pub task_id: Uuid,
    pub batch_id: Option<Uuid>,
    /// The task's state when answering.
    pub status: String,
    /// True when this account had already uploaded the same bytes: the
    /// existing image is returned and nothing new is stored.
    pub duplicate: bool,
    /// `/api/v1/tasks/{task_id}`.
    pub task_url: String,
    /// `/api/v1/images/{image_id}`.
    pub image_url: String,
    /// With `?wait=true`, the finished task (or the task as it stood when the
    /// wait ran out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
}

/// A comment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Comment {
    pub id: Uuid,
    pub image_id: Uuid,
    pub author: Author,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommentPage {
    /// Oldest first.
    pub items: Vec<Comment>,
    pub next_cursor: Option<String>,
}

/// A like's state after a change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LikeState {
    pub liked: bool,
    pub like_count: u64,
}

/// Who liked an image, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LikerPage {
    pub items: Vec<Author>,
    pub next_cursor: Option<String>,
}
