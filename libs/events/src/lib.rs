//! Events: one envelope for every event, and the topics they travel on.
//!
//! The envelope follows CloudEvents 1.0 (structured JSON mode) so that any
//! Kafka tool can read it; `schemaversion` is an extension attribute that
//! versions `data` for each event type.

mod contract;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use contract::{DecodeError, Event, MessageSpec, asyncapi};

/// Every event type of the contract, as the AsyncAPI document lists them.
pub fn catalog() -> Vec<MessageSpec> {
    contract_catalog()
}

/// Topic names. Events are keyed by the entity they are about (an image id,
/// a user id) so that one entity's events stay in order.
pub mod topics {
    /// Account events: registered, updated, deleted, follows.
    pub const USERS: &str = "pinhole.users";
    /// Image and social events: uploaded, updated, published, deleted, comments, likes.
    pub const IMAGES: &str = "pinhole.images";
    /// Derivative jobs for fresh uploads.
    pub const THUMBNAILS_URGENT: &str = "pinhole.thumbnails.urgent";
    /// Edit jobs: a queue of their own, so that edits never wait in front
    /// of fresh uploads, worked on with at most cores − 1 at a time.
    pub const THUMBNAILS_EDITS: &str = "pinhole.thumbnails.edits";
    /// Re-processing jobs that may wait.
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
        THUMBNAILS_EDITS,
        THUMBNAILS_BACKGROUND,
        PAGE_VIEWS,
        SNS_PUBLISH,
    ];
}

/// A CloudEvents 1.0 envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// The CloudEvents version of every envelope.
pub(crate) const SPEC_VERSION: &str = "1.0";
/// Every envelope's `datacontenttype`.
pub(crate) const CONTENT_TYPE: &str = "application/json";

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
            specversion: SPEC_VERSION.into(),
            id: Uuid::now_v7(),
            source: source.into(),
            kind: kind.into(),
            time: Utc::now(),
            subject: subject.into(),
            datacontenttype: CONTENT_TYPE.into(),
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
    fn an_encoded_event_reads_as_its_envelope() {
        let view = pageviews::PageViewed {
            page: "image".into(),
            target: "t".into(),
            image_id: Some(Uuid::now_v7()),
            path: "/p/x?\"q\"".into(),
            format: "html".into(),
            status: 200,
            viewer_id: None,
            referrer_host: Some("example.com".into()),
            user_agent: None,
            viewed_at: Utc::now(),
        };
        let (key, bytes) = OutgoingEvent::encode(&view);
        let made = OutgoingEvent::of(&view);
        assert_eq!(key, made.key);
        let read = Envelope::from_json(&bytes).expect("an envelope");
        let expected = Envelope {
            id: read.id,
            time: read.time,
            ..made.envelope
        };
        assert_eq!(read, expected);
        assert_ne!(read.id, made.envelope.id, "each encoding has its own id");
        assert_eq!(read.decode::<pageviews::PageViewed>().expect("data"), view);
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
    /// The images role is done with an edit's staged result ([`EditSettled`]).
    pub const EDIT_SETTLED: &str = "image.edit_settled";
    /// No image references a content any more ([`ContentReleased`]).
    pub const CONTENT_RELEASED: &str = "content.released";
    /// A [`ProcessJob`] on the background topic (re-processing, backfills).
    pub const REPROCESS: &str = "image.reprocess";
    pub const COMMENT_CREATED: &str = "comment.created";
    pub const COMMENT_DELETED: &str = "comment.deleted";
    pub const LIKE_CREATED: &str = "like.created";
    pub const LIKE_REMOVED: &str = "like.removed";

    // Every blob prefix has one owner: only that role writes and deletes
    // under it; others may read, and ask the owner by event.
    //
    // | prefix         | owner      | what                                      |
    // |----------------|------------|-------------------------------------------|
    // | `originals/`   | images     | content-addressed originals (`blobs` rows) |
    // | `public/`      | images     | metadata-free copies of originals         |
    // | `uploads/`     | images     | parts of unfinished resumable uploads     |
    // | `derivatives/` | thumbnails | derivatives, manifests, stored transforms |
    // | `edits/`       | thumbnails | edit results staged for the images role   |

    /// The prefixes the images role owns.
    pub const IMAGES_PREFIXES: &[&str] = &["originals/", "public/", "uploads/"];
    /// The prefixes the thumbnails role owns.
    pub const THUMBNAILS_PREFIXES: &[&str] = &["derivatives/", "edits/"];

    /// Where the original with content `sha256` lives in the blob store
    /// (`ext` without the dot), shared by every image with those bytes.
    pub fn original_key(sha256: &str, ext: &str) -> String {
        format!("originals/{}/{sha256}.{ext}", shard(sha256))
    }

    /// The folder of everything derived from content `sha256` (derivatives,
    /// their manifest, stored transforms): the thumbnails role removes it
    /// when the images role releases the content ([`ContentReleased`]).
    pub fn derivative_prefix(sha256: &str) -> String {
        format!("derivatives/{}/{sha256}/", shard(sha256))
    }

    fn shard(sha256: &str) -> &str {
        sha256.get(..2).unwrap_or(sha256)
    }

    /// The role that emits image and social events.
    pub const SOURCE: &str = "/pinhole/images";
    /// The role that emits processing reports and jobs of its own.
    pub const THUMBNAILS_SOURCE: &str = "/pinhole/thumbnails";

    /// Where an image was taken, as its owner chose to show it, with the
    /// nearest populated place (offline GeoNames data; none farther than
    /// 50 km, as at sea).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct Location {
        pub lat: f64,
        pub lon: f64,
        /// The owner's name for the place, else the nearest place's
        /// `City, Region, Country`.
        #[serde(default)]
        pub place_name: Option<String>,
        /// The nearest place: its town or city, e.g. `Paris`.
        #[serde(default)]
        pub city: Option<String>,
        /// Its first-level division (state, region), e.g. `Ile-de-France`.
        #[serde(default)]
        pub region: Option<String>,
        /// Its country's English name, e.g. `France`.
        #[serde(default)]
        pub country: Option<String>,
        /// ISO 3166-1 alpha-2, e.g. `FR`.
        #[serde(default)]
        pub country_code: Option<String>,
    }

    /// Who may see an image (stored and sent as `public`, `followers` or
    /// `private`).
    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
    )]
    #[serde(rename_all = "lowercase")]
    pub enum Visibility {
        /// Everyone who may see the owner's account.
        Public,
        /// The owner's approved followers.
        Followers,
        /// The owner alone.
        Private,
    }

    impl Visibility {
        /// The name on the wire.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Public => "public",
                Self::Followers => "followers",
                Self::Private => "private",
            }
        }
    }

    /// Where an image is in its life (sent as `processing`, `ready` or
    /// `failed`).
    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
    )]
    #[serde(rename_all = "lowercase")]
    pub enum ImageStatus {
        /// Uploaded; its derivatives are being made.
        Processing,
        /// Published.
        Ready,
        /// Its processing failed; only its owner sees it.
        Failed,
    }

    impl ImageStatus {
        /// The name on the wire.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Processing => "processing",
                Self::Ready => "ready",
                Self::Failed => "failed",
            }
        }
    }

    /// What other roles need to know of an image: of its EXIF only the
    /// camera and when it was taken (its position never: only the location
    /// its owner chose).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ImageRecord {
        pub image_id: Uuid,
        pub owner_id: Uuid,
        pub sha256: String,
        /// `jpeg`, `png`, `gif`, `webp`, `heic` or `avif`.
        pub format: String,
        pub width: i32,
        pub height: i32,
        pub size: i64,
        pub title: Option<String>,
        pub description: Option<String>,
        pub alt_text: Option<String>,
        pub tags: Vec<String>,
        pub visibility: Visibility,
        pub location: Option<Location>,
        pub status: ImageStatus,
        pub created_at: chrono::DateTime<chrono::Utc>,
        pub updated_at: chrono::DateTime<chrono::Utc>,
        /// The current version (1 until an edit replaces it).
        #[serde(default = "first_version")]
        pub version: i32,
        /// The stored derivatives of the current version.
        #[serde(default)]
        pub derivatives: Vec<Derivative>,
        /// The camera as people write it (EXIF make and model, e.g.
        /// `FUJIFILM X-T3`; the model alone when it already names the make).
        #[serde(default)]
        pub camera: Option<String>,
        /// When it was taken (EXIF `DateTimeOriginal`, else `DateTime`),
        /// read as UTC when EXIF gives no offset.
        #[serde(default)]
        pub taken_at: Option<chrono::DateTime<chrono::Utc>>,
        /// The current version's analysis, once processed: `thumbhash`,
        /// `dominant_color`, `phash` (64-bit perceptual hash, hex) and
        /// `faces`. `image.updated` follows when a re-processing changes it.
        #[serde(default)]
        pub analysis: Option<serde_json::Value>,
    }

    /// An image as a search index is rebuilt from (`GET
    /// /internal/v1/export/images`): its record with its likes and
    /// comments. Not an event.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ImageExport {
        pub image: ImageRecord,
        pub like_count: u64,
        /// Who likes it (so that a later `like.removed` finds the like).
        #[serde(default)]
        pub likers: Vec<Uuid>,
        /// Oldest first.
        pub comments: Vec<ExportedComment>,
    }

    /// A comment in an [`ImageExport`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ExportedComment {
        pub comment_id: Uuid,
        pub author_id: Uuid,
        pub body: String,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    fn first_version() -> i32 {
        1
    }

    /// `image.uploaded` (`pinhole.images`): an original was stored and its
    /// processing task queued.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ImageUploaded {
        #[serde(flatten)]
        pub image: ImageRecord,
        pub task_id: Uuid,
    }

    /// `image.updated`: its metadata, visibility or current version changed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ImageUpdated {
        #[serde(flatten)]
        pub image: ImageRecord,
    }

    /// `image.published`: processed for the first time; others may see it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ImagePublished {
        #[serde(flatten)]
        pub image: ImageRecord,
    }

    /// `image.deleted`: the image and everything of it is gone.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ImageDeleted {
        pub image_id: Uuid,
        pub owner_id: Uuid,
        pub sha256: String,
        #[serde(default)]
        pub derivatives: Vec<Derivative>,
    }

    /// `comment.created`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct CommentCreated {
        pub image_id: Uuid,
        pub comment_id: Uuid,
        pub author_id: Uuid,
        pub body: String,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    /// `comment.deleted`, by its author or the image's owner.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct CommentDeleted {
        pub image_id: Uuid,
        pub comment_id: Uuid,
        pub deleted_by: Uuid,
    }

    /// `like.created`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct LikeCreated {
        pub image_id: Uuid,
        pub user_id: Uuid,
    }

    /// `like.removed`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct LikeRemoved {
        pub image_id: Uuid,
        pub user_id: Uuid,
    }

    /// `image.reprocess` (`pinhole.thumbnails.background`): make the
    /// derivatives of a stored image again.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(transparent)]
    pub struct ReprocessJob {
        pub job: ProcessJob,
    }

    /// The job the thumbnails role works on: an original to process. Fresh
    /// uploads go to the urgent topic with their task; re-processing and
    /// backfills go to the background topic without one.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
        /// The image's visibility when the job was made (`public`,
        /// `followers` or `private`), for a catalog that has not heard of
        /// the image yet; its image events win. None in jobs made from
        /// the catalog, and in jobs from before it was sent.
        #[serde(default)]
        pub visibility: Option<Visibility>,
        /// Whether the owner's account was private when the job was made,
        /// as the images role knew it, for a catalog that has not heard of
        /// the account yet; its account events win. None when the images
        /// role had not heard of the account either, in jobs made from the
        /// catalog, and in jobs from before it was sent.
        #[serde(default)]
        pub owner_private: Option<bool>,
    }

    /// A derivative the thumbnails role stored.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct Derivative {
        /// e.g. `thumb_256`, `w1080`.
        pub name: String,
        pub key: String,
        pub width: u32,
        pub height: u32,
        pub format: String,
        /// Made on its first request, not with the set: until then nothing
        /// is stored at `key`. Links to it go through the thumbnails role
        /// (`/t/{key}`, signed as blob links are), which makes and stores
        /// it when it is missing.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub on_request: bool,
    }

    /// `image.processing`: a worker started on the task.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct Processing {
        pub image_id: Uuid,
        #[serde(default)]
        pub task_id: Option<Uuid>,
    }

    /// `image.processed`: the derivatives of content `sha256` are stored.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct Source {
        pub sha256: String,
        pub format: String,
        pub original_key: String,
    }

    /// `image.edit_requested` (thumbnails urgent topic): make a new version
    /// of `image_id` from version `base_version` by `operations`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

    /// `image.edited`: the new version's derivatives are stored, and its
    /// bytes are staged at `staged_key` for the images role to take into
    /// `original.original_key` (its prefix); it answers with
    /// [`EditSettled`] once it has.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct Edited {
        pub image_id: Uuid,
        pub task_id: Uuid,
        pub base_version: i32,
        /// The new version's content, and where its original is to live.
        pub original: Source,
        /// Where the thumbnails role staged the bytes (under `edits/`).
        /// Absent from workers that stored `original.original_key`
        /// themselves.
        #[serde(default)]
        pub staged_key: Option<String>,
        pub width: u32,
        pub height: u32,
        pub size: u64,
        pub derivatives: Vec<Derivative>,
        #[serde(default)]
        pub analysis: Option<serde_json::Value>,
        pub pipeline: u32,
        pub operations: serde_json::Value,
    }

    /// `image.edit_settled`: the images role is done with an edit's staged
    /// result (took it into its originals, or the edit failed or was
    /// abandoned); the thumbnails role removes `staged_key`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct EditSettled {
        pub image_id: Uuid,
        pub task_id: Uuid,
        pub staged_key: String,
    }

    /// `content.released` (keyed by content): no image references the
    /// content `sha256` any more and its original is removed; the
    /// thumbnails role removes what it derived from it (unless the same
    /// bytes were stored again meanwhile).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ContentReleased {
        pub sha256: String,
        /// `jpeg`, `png`, `gif`, `webp`, `heic` or `avif`: with the hash,
        /// where its original was ([`original_key`]).
        pub format: String,
    }

    /// `image.processing_failed`: the original could not be processed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct ProcessingFailed {
        pub image_id: Uuid,
        #[serde(default)]
        pub task_id: Option<Uuid>,
        pub reason: String,
    }
}

/// Page views (`pinhole.pageviews`), emitted by the gateway as it shows a
/// page, for view counts and the warehouse.
pub mod pageviews {
    use chrono::{DateTime, Utc};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    pub const SOURCE: &str = "/pinhole/gateway";
    pub const PAGE_VIEWED: &str = "page.viewed";

    /// `page.viewed`: a page, or the detail page's JSON twin, was shown to
    /// someone (answered 200 or 304).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct PageViewed {
        /// `image` (the detail page), `explore`, `search` or `profile`.
        pub page: String,
        /// What the page is about, its partitioning key: the image id of a
        /// detail page, the path of the others.
        pub target: String,
        /// The image of a detail page.
        pub image_id: Option<Uuid>,
        /// The path and query asked for.
        pub path: String,
        /// `html` or `json`.
        pub format: String,
        /// 200, or 304 when the client already had it.
        pub status: u16,
        /// The logged-in viewer; none for an anonymous visitor.
        pub viewer_id: Option<Uuid>,
        /// The host of the `Referer`, when there is one.
        pub referrer_host: Option<String>,
        /// The client's `User-Agent`, cut to 256 characters.
        pub user_agent: Option<String>,
        pub viewed_at: DateTime<Utc>,
    }
}

/// Account events (`pinhole.users`), keyed by the account they are about
/// (follows and blocks by the one who follows or blocks).
pub mod users {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    /// The role that emits them.
    pub const SOURCE: &str = "/pinhole/users";

    /// What other roles keep of an account.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct AccountCard {
        pub user_id: Uuid,
        pub username: String,
        pub display_name: Option<String>,
        pub avatar_image_id: Option<Uuid>,
        /// Only approved followers see its followers-only images; nobody
        /// else sees its images at all.
        pub is_private: bool,
    }

    /// `user.registered`: someone signed up.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct UserRegistered {
        #[serde(flatten)]
        pub account: AccountCard,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    /// `user.updated`: the account's card changed (`changed` names the
    /// fields: `display_name`, `bio`, `website`, `avatar_image_id`,
    /// `is_private`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct UserUpdated {
        #[serde(flatten)]
        pub account: AccountCard,
        pub changed: Vec<String>,
    }

    /// `user.deleted`: the account is gone; every role forgets it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct UserDeleted {
        pub user_id: Uuid,
        pub username: String,
    }

    /// `follow.requested`: a request to follow a private account, waiting
    /// for its approval.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct FollowRequested {
        pub follower_id: Uuid,
        pub followee_id: Uuid,
    }

    /// `follow.created`: the follow is active (at once, or approved).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct FollowCreated {
        pub follower_id: Uuid,
        pub followee_id: Uuid,
    }

    /// `follow.removed`: unfollowed, a request withdrawn or denied, or
    /// ended by a block.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct FollowRemoved {
        pub follower_id: Uuid,
        pub followee_id: Uuid,
    }

    /// `block.created`: neither sees the other any more.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct BlockCreated {
        pub blocker_id: Uuid,
        pub blocked_id: Uuid,
    }

    /// `block.removed`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct BlockRemoved {
        pub blocker_id: Uuid,
        pub blocked_id: Uuid,
    }
}

contract::contract! {
    users::UserRegistered { topic: topics::USERS, type: "user.registered", version: 1, source: users::SOURCE,
        key: account.user_id, subject: "user", summary: "an account was created" },
    users::UserUpdated { topic: topics::USERS, type: "user.updated", version: 2, source: users::SOURCE,
        key: account.user_id, subject: "user", summary: "an account's card changed" },
    users::UserDeleted { topic: topics::USERS, type: "user.deleted", version: 1, source: users::SOURCE,
        key: user_id, subject: "user", summary: "an account was deleted" },
    users::FollowRequested { topic: topics::USERS, type: "follow.requested", version: 1, source: users::SOURCE,
        key: follower_id, subject: "user", summary: "a request to follow a private account" },
    users::FollowCreated { topic: topics::USERS, type: "follow.created", version: 1, source: users::SOURCE,
        key: follower_id, subject: "user", summary: "a follow became active" },
    users::FollowRemoved { topic: topics::USERS, type: "follow.removed", version: 1, source: users::SOURCE,
        key: follower_id, subject: "user", summary: "a follow or follow request ended" },
    users::BlockCreated { topic: topics::USERS, type: "block.created", version: 1, source: users::SOURCE,
        key: blocker_id, subject: "user", summary: "an account blocked another" },
    users::BlockRemoved { topic: topics::USERS, type: "block.removed", version: 1, source: users::SOURCE,
        key: blocker_id, subject: "user", summary: "a block was lifted" },
    images::ImageUploaded { topic: topics::IMAGES, type: images::UPLOADED, version: 1, source: images::SOURCE,
        key: image.image_id, subject: "image", summary: "an original was stored; its processing is queued" },
    images::ImageUpdated { topic: topics::IMAGES, type: images::UPDATED, version: 1, source: images::SOURCE,
        key: image.image_id, subject: "image", summary: "an image's metadata, visibility or current version changed" },
    images::ImagePublished { topic: topics::IMAGES, type: images::PUBLISHED, version: 1, source: images::SOURCE,
        key: image.image_id, subject: "image", summary: "an image was processed for the first time" },
    images::ImageDeleted { topic: topics::IMAGES, type: images::DELETED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "an image was deleted" },
    images::CommentCreated { topic: topics::IMAGES, type: images::COMMENT_CREATED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "a comment on an image" },
    images::CommentDeleted { topic: topics::IMAGES, type: images::COMMENT_DELETED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "a comment was deleted" },
    images::LikeCreated { topic: topics::IMAGES, type: images::LIKE_CREATED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "someone liked an image" },
    images::LikeRemoved { topic: topics::IMAGES, type: images::LIKE_REMOVED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "a like was taken back" },
    images::ProcessJob { topic: topics::THUMBNAILS_URGENT, type: images::UPLOADED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "make the derivatives of a fresh upload" },
    images::EditJob { topic: topics::THUMBNAILS_EDITS, type: images::EDIT_REQUESTED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "make a new version of an image by edit operations" },
    images::ReprocessJob { topic: topics::THUMBNAILS_BACKGROUND, type: images::REPROCESS, version: 1, source: images::THUMBNAILS_SOURCE,
        key: job.image_id, subject: "image", summary: "make the derivatives of a stored image again" },
    images::Processing { topic: topics::IMAGES, type: images::PROCESSING, version: 1, source: images::THUMBNAILS_SOURCE,
        key: image_id, subject: "image", summary: "a worker started on an image" },
    images::Processed { topic: topics::IMAGES, type: images::PROCESSED, version: 1, source: images::THUMBNAILS_SOURCE,
        key: image_id, subject: "image", summary: "an image's derivatives and analysis are stored" },
    images::Edited { topic: topics::IMAGES, type: images::EDITED, version: 1, source: images::THUMBNAILS_SOURCE,
        key: image_id, subject: "image", summary: "an edited version's derivatives are stored and its bytes staged for the images role" },
    images::EditSettled { topic: topics::IMAGES, type: images::EDIT_SETTLED, version: 1, source: images::SOURCE,
        key: image_id, subject: "image", summary: "the images role is done with an edit's staged result; its stager may remove it" },
    images::ContentReleased { topic: topics::IMAGES, type: images::CONTENT_RELEASED, version: 1, source: images::SOURCE,
        key: sha256, subject: "content", summary: "no image references a content any more; what was derived from it may go" },
    pageviews::PageViewed { topic: topics::PAGE_VIEWS, type: pageviews::PAGE_VIEWED, version: 1, source: pageviews::SOURCE,
        key: target, subject: "page", summary: "a page was shown to someone" },
    images::ProcessingFailed { topic: topics::IMAGES, type: images::PROCESSING_FAILED, version: 1, source: images::THUMBNAILS_SOURCE,
        key: image_id, subject: "image", summary: "an image could not be processed" },
}
