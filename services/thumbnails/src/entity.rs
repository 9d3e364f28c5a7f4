//! The tables of the thumbnails role's catalog ([`crate::catalog`] keeps
//! them from the images and users roles' events).

/// `thumb_images.status` of an image whose deletion was heard of.
pub(crate) const DELETED: &str = "deleted";

pub mod image {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "thumb_images")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: Uuid,
        pub owner_id: Uuid,
        pub sha256: String,
        pub format: String,
        pub width: i32,
        pub height: i32,
        pub visibility: String,
        pub status: String,
        /// The pipeline that made the current derivatives.
        pub pipeline: Option<i32>,
        /// When this role last reported on the image (processed or failed).
        pub reported_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "thumb_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub is_private: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
