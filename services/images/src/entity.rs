//! The role's tables (see the images migration), and the read models it
//! keeps of the users role's accounts, follows and blocks (from events).

pub mod blob {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sha256: String,
        pub blob_key: String,
        pub size: i64,
        pub format: String,
        /// Images that use this content; at zero the blob is collected.
        pub ref_count: i64,
        pub created_at: DateTimeUtc,
        /// Set while a collection deletes the content's objects.
        pub collecting_since: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod image {
    use sea_orm::entity::prelude::*;

    /// Where an image is in its life (`images.status`, mapped by the ORM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum Status {
        /// Uploaded; its derivatives are being made.
        #[sea_orm(string_value = "processing")]
        Processing,
        /// Published.
        #[sea_orm(string_value = "ready")]
        Ready,
        /// Its processing failed; only its owner sees it.
        #[sea_orm(string_value = "failed")]
        Failed,
    }

    impl Status {
        /// The stored and served name.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Processing => "processing",
                Self::Ready => "ready",
                Self::Failed => "failed",
            }
        }
    }

    impl From<Status> for pinhole_events::images::ImageStatus {
        fn from(s: Status) -> Self {
            match s {
                Status::Processing => Self::Processing,
                Status::Ready => Self::Ready,
                Status::Failed => Self::Failed,
            }
        }
    }

    pub const PROCESSING: Status = Status::Processing;
    pub const READY: Status = Status::Ready;
    pub const FAILED: Status = Status::Failed;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "images")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub owner_id: Uuid,
        pub sha256: String,
        pub format: String,
        pub width: i32,
        pub height: i32,
        pub size: i64,
        pub title: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub description: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub alt_text: Option<String>,
        pub visibility: crate::domain::Visibility,
        pub lat: Option<f64>,
        pub lon: Option<f64>,
        pub place_name: Option<String>,
        /// [`pinhole_media::ExifData`] as JSON.
        #[sea_orm(column_type = "Text", nullable)]
        pub exif: Option<String>,
        /// `processing`, `ready` or `failed`.
        pub status: Status,
        /// The derivatives made by the thumbnails role, as JSON.
        #[sea_orm(column_type = "Text", nullable)]
        pub derivatives: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
        /// The current version (1 until an edit replaces it).
        pub version: i32,
        /// Placeholder, dominant colour, perceptual hash, faces (JSON).
        #[sea_orm(column_type = "Text", nullable)]
        pub analysis: Option<String>,
        /// The thumbnails pipeline version that made the derivatives.
        pub pipeline: Option<i32>,
        pub processed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod image_tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tag: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod task {
    use sea_orm::entity::prelude::*;

    /// What a task does (`tasks.kind`, mapped by the ORM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum Kind {
        /// The derivatives of an upload.
        #[sea_orm(string_value = "upload")]
        Upload,
        /// A new version of an image by edit operations.
        #[sea_orm(string_value = "edit")]
        Edit,
    }

    impl Kind {
        /// The stored and served name.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Upload => "upload",
                Self::Edit => "edit",
            }
        }
    }

    /// Where a task is (`tasks.status`, mapped by the ORM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum Status {
        /// Waiting for a worker.
        #[sea_orm(string_value = "queued")]
        Queued,
        /// A worker took it.
        #[sea_orm(string_value = "processing")]
        Processing,
        #[sea_orm(string_value = "done")]
        Done,
        /// With the reason in `reason`.
        #[sea_orm(string_value = "failed")]
        Failed,
    }

    impl Status {
        /// The stored and served name.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Queued => "queued",
                Self::Processing => "processing",
                Self::Done => "done",
                Self::Failed => "failed",
            }
        }

        /// Done or failed: it changes no more.
        pub fn is_finished(self) -> bool {
            match self {
                Self::Done | Self::Failed => true,
                Self::Queued | Self::Processing => false,
            }
        }
    }

    /// Where the delivery of a task's callback is (`tasks.callback_state`,
    /// mapped by the ORM; none without a callback).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum CallbackState {
        /// Due at `callback_next_at` (again, after a failed attempt).
        #[sea_orm(string_value = "pending")]
        Pending,
        #[sea_orm(string_value = "delivered")]
        Delivered,
        /// Given up after the last attempt.
        #[sea_orm(string_value = "failed")]
        Failed,
    }

    impl CallbackState {
        /// The stored and served name.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Pending => "pending",
                Self::Delivered => "delivered",
                Self::Failed => "failed",
            }
        }
    }

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub owner_id: Uuid,
        pub image_id: Uuid,
        pub batch_id: Option<Uuid>,
        pub kind: Kind,
        pub status: Status,
        #[sea_orm(column_type = "Text", nullable)]
        pub reason: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub callback_url: Option<String>,
        pub callback_state: Option<CallbackState>,
        pub callback_attempts: i32,
        pub callback_next_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
    }

    impl Model {
        pub fn is_finished(&self) -> bool {
            self.status.is_finished()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod comment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "comments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub image_id: Uuid,
        pub author_id: Uuid,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod like {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "likes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod upload {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "uploads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub owner_id: Uuid,
        /// `None` while the client defers the length.
        pub length: Option<i64>,
        pub offset: i64,
        /// The tus `Upload-Metadata` pairs, decoded, as a JSON object.
        #[sea_orm(column_type = "Text")]
        pub metadata: String,
        /// Blob keys of the parts received so far, in order, as a JSON array.
        #[sea_orm(column_type = "Text")]
        pub chunks: String,
        pub expires_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
        /// Set once the upload is complete and became an image.
        pub image_id: Option<Uuid>,
        pub task_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Account cards, kept from the users role's events (`read_model`).
pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub username: String,
        pub display_name: Option<String>,
        pub avatar_image_id: Option<Uuid>,
        pub is_private: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Follow edges with their approval state, kept from the users role's
/// events, to decide who sees what.
pub mod follow {
    use sea_orm::entity::prelude::*;

    /// Where a follow is (`image_follows.status`, mapped by the ORM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum Status {
        /// The follower sees the followee's followers-only images.
        #[sea_orm(string_value = "active")]
        Active,
        /// Requested of a private account, waiting for its approval.
        #[sea_orm(string_value = "pending")]
        Pending,
    }

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_follows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub follower_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub followee_id: Uuid,
        pub status: Status,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Blocks, kept from the users role's events.
pub mod block {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_blocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocker_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocked_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Accounts deleted whose images are still being removed.
pub mod account_purge {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_purges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub requested_at: DateTimeUtc,
        /// Set once every image is gone; the row stays as the mark of a
        /// deleted account (nothing more is taken for it).
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod image_version {
    use sea_orm::entity::prelude::*;

    /// A version of an image replaced by an edit, kept until deleted.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub sha256: String,
        pub format: String,
        pub width: i32,
        pub height: i32,
        pub size: i64,
        #[sea_orm(column_type = "Text", nullable)]
        pub derivatives: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub analysis: Option<String>,
        /// The edit operations that made this version (none for the upload).
        #[sea_orm(column_type = "Text", nullable)]
        pub edits: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::{image, task};
    use crate::domain::Visibility;

    /// The names served in JSON are the stored ones, for every value.
    #[test]
    fn served_names_are_the_stored_values() {
        for v in Visibility::iter() {
            assert_eq!(v.as_str(), v.to_value());
        }
        for v in image::Status::iter() {
            assert_eq!(v.as_str(), v.to_value());
        }
        for v in task::Kind::iter() {
            assert_eq!(v.as_str(), v.to_value());
        }
        for v in task::Status::iter() {
            assert_eq!(v.as_str(), v.to_value());
        }
        for v in task::CallbackState::iter() {
            assert_eq!(v.as_str(), v.to_value());
        }
    }
}

/// Views of an image, counted from the gateway's `page.viewed` events.
pub mod image_view {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_views")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: Uuid,
        pub views: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The next page-view record to count, per partition.
pub mod image_view_offset {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_view_offsets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub topic: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub partition: i32,
        pub next_offset: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
