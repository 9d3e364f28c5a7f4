//! Events: one envelope for every event, and the topics they travel on.
//!
//! The envelope follows CloudEvents 1.0 (structured JSON mode) so that any
//! Kafka tool can read it; `schemaversion` is an extension attribute that
//! versions `data` for each event type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Topic names. Events are keyed by the entity they are about (an image id,
/// a user id) so that one entity's events stay in order.
pub mod topics {
    /// Account events: registered, updated, deleted, follows.
    pub const USERS: &str = "pinhole.users";
    /// Image and social events: uploaded, updated, published, deleted, comments, likes.
    pub const IMAGES: &str = "pinhole.images";
    /// Derivative jobs for fresh uploads.
    pub const THUMBNAILS_URGENT: &str = "pinhole.thumbnails.urgent";
    /// Re-processing and edit jobs that may wait.
    pub const THUMBNAILS_BACKGROUND: &str = "pinhole.thumbnails.background";
    /// Page views, for the warehouse.
    pub const PAGE_VIEWS: &str = "pinhole.pageviews";
    /// Posts to cross-publish to outside networks.
    pub const SNS_PUBLISH: &str = "pinhole.sns.publish";

    /// Every topic the project uses; infra and `pinhole serve` create them.
    pub const ALL: &[&str] = &[
        USERS,
        IMAGES,
        THUMBNAILS_URGENT,
        THUMBNAILS_BACKGROUND,
        PAGE_VIEWS,
        SNS_PUBLISH,
    ];
}

/// A CloudEvents 1.0 envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    /// A UUIDv7: unique, and sortable by creation time.
    pub id: Uuid,
    /// The role that emitted it, e.g. `/pinhole/users`.
    pub source: String,
    /// Dotted event type, e.g. `user.registered`.
    #[serde(rename = "type")]
    pub kind: String,
    pub time: DateTime<Utc>,
    /// The entity the event is about, e.g. `user/0192…`.
    pub subject: String,
    pub datacontenttype: String,
    /// Version of the `data` schema for this `type`.
    pub schemaversion: u32,
    pub data: serde_json::Value,
}

impl Envelope {
    /// A new event with a fresh id, stamped now.
    pub fn new(
        source: &str,
        kind: &str,
        subject: impl Into<String>,
        schemaversion: u32,
        data: serde_json::Value,
    ) -> Self {
        Self {
            specversion: "1.0".into(),
            id: Uuid::now_v7(),
            source: source.into(),
            kind: kind.into(),
            time: Utc::now(),
            subject: subject.into(),
            datacontenttype: "application/json".into(),
            schemaversion,
            data,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings, numbers and a JSON value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// An event on its way out: where it goes and under which key.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub topic: &'static str,
    /// The partitioning key: the id of the entity the event is about.
    pub key: String,
    pub envelope: Envelope,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infra_creates_every_topic() {
        let infra: Vec<&str> = include_str!("../../../infra/topics.txt")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            infra,
            topics::ALL,
            "infra/topics.txt and topics::ALL differ"
        );
    }

    #[test]
    fn envelope_round_trips_as_cloudevents_json() {
        let e = Envelope::new(
            "/pinhole/users",
            "user.registered",
            "user/42",
            1,
            serde_json::json!({"username": "ada"}),
        );
        let json: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("json");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "user.registered");
        assert_eq!(json["id"].as_str().map(|s| s.len()), Some(36));
        assert_eq!(e.id.get_version_num(), 7);
        assert_eq!(Envelope::from_json(&e.to_json()).expect("parse"), e);
    }
}

/// Image events (`pinhole.images`, keyed by image id) and the thumbnails
/// jobs (`pinhole.thumbnails.*`), with the payloads both sides agree on.
pub mod images {
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    pub const UPLOADED: &str = "image.uploaded";
    pub const UPDATED: &str = "image.updated";
    pub const PUBLISHED: &str = "image.published";
    pub const DELETED: &str = "image.deleted";
    pub const PROCESSING: &str = "image.processing";
    pub const PROCESSED: &str = "image.processed";
    pub const PROCESSING_FAILED: &str = "image.processing_failed";
    pub const EDIT_REQUESTED: &str = "image.edit_requested";
    pub const EDITED: &str = "image.edited";
    /// A [`ProcessJob`] on the background topic (re-processing, backfills).
    pub const REPROCESS: &str = "image.reprocess";
    pub const COMMENT_CREATED: &str = "comment.created";
    pub const COMMENT_DELETED: &str = "comment.deleted";
    pub const LIKE_CREATED: &str = "like.created";
    pub const LIKE_REMOVED: &str = "like.removed";

    /// Where the original with content `sha256` lives in the blob store
    /// (`ext` without the dot), shared by every image with those bytes.
    pub fn original_key(sha256: &str, ext: &str) -> String {
        format!("originals/{}/{sha256}.{ext}", shard(sha256))
    }

    /// The folder of everything derived from content `sha256` (derivatives,
    /// their manifest, stored transforms): it goes with the original.
    pub fn derivative_prefix(sha256: &str) -> String {
        format!("derivatives/{}/{sha256}/", shard(sha256))
    }

    fn shard(sha256: &str) -> &str {
        sha256.get(..2).unwrap_or(sha256)
    }

    /// The job the thumbnails role works on: an original to process. Fresh
    /// uploads go to the urgent topic with their task; re-processing and
    /// backfills go to the background topic without one.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ProcessJob {
        pub image_id: Uuid,
        #[serde(default)]
        pub task_id: Option<Uuid>,
        pub owner_id: Uuid,
        pub sha256: String,
        /// `jpeg`, `png`, `gif`, `webp`, `heic` or `avif`.
        pub format: String,
        /// Blob key of the original.
        pub original_key: String,
        /// Make everything again even where a finished set is stored.
        #[serde(default)]
        pub force: bool,
    }

    /// A derivative the thumbnails role stored.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Derivative {
        /// e.g. `thumb_256`, `w1080`.
        pub name: String,
        pub key: String,
        pub width: u32,
        pub height: u32,
        pub format: String,
    }

    /// `image.processing`: a worker started on the task.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Processing {
        pub image_id: Uuid,
        #[serde(default)]
        pub task_id: Option<Uuid>,
    }

    /// `image.processed`: the derivatives of content `sha256` are stored.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Processed {
        pub image_id: Uuid,
        #[serde(default)]
        pub task_id: Option<Uuid>,
        #[serde(default)]
        pub sha256: String,
        pub derivatives: Vec<Derivative>,
        /// Placeholder, dominant colour, perceptual hash and faces.
        #[serde(default)]
        pub analysis: Option<serde_json::Value>,
        /// Version of the pipeline that made them.
        #[serde(default)]
        pub pipeline: u32,
    }

    /// An original: its content hash, format and blob key.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Source {
        pub sha256: String,
        pub format: String,
        pub original_key: String,
    }

    /// `image.edit_requested` (thumbnails urgent topic): make a new version
    /// of `image_id` from version `base_version` by `operations`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct EditJob {
        pub image_id: Uuid,
        pub task_id: Uuid,
        pub owner_id: Uuid,
        pub base_version: i32,
        pub base: Source,
        /// The edit operations, as the client sent them (validated).
        pub operations: serde_json::Value,
        /// The image a watermark operation places, if any.
        #[serde(default)]
        pub watermark: Option<Source>,
    }

    /// `image.edited`: the new version's original and derivatives are
    /// stored.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Edited {
        pub image_id: Uuid,
        pub task_id: Uuid,
        pub base_version: i32,
        pub original: Source,
        pub width: u32,
        pub height: u32,
        pub size: u64,
        pub derivatives: Vec<Derivative>,
        #[serde(default)]
        pub analysis: Option<serde_json::Value>,
        pub pipeline: u32,
        pub operations: serde_json::Value,
    }

    /// `image.processing_failed`: the original could not be processed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ProcessingFailed {
        pub image_id: Uuid,
        #[serde(default)]
        pub task_id: Option<Uuid>,
        pub reason: String,
    }
}
