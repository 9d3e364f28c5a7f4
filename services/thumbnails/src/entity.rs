//! The tables of the thumbnails role's catalog ([`crate::catalog`] keeps
//! them from the images and users roles' events).

pub mod image {
    use sea_orm::entity::prelude::*;

    /// Where an image is, as the images role last said (`thumb_images.status`,
    /// mapped by the ORM), or `deleted` once its deletion was heard of.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum Status {
        #[sea_orm(string_value = "processing")]
        Processing,
        /// Its derivatives are made: it may be transformed.
        #[sea_orm(string_value = "ready")]
        Ready,
        #[sea_orm(string_value = "failed")]
        Failed,
        /// Kept as a mark, so that a report that overtakes the deletion
        /// does not bring the image back.
        #[sea_orm(string_value = "deleted")]
        Deleted,
    }

    /// The status an image event carries; only this role marks an image
    /// deleted.
    impl From<pinhole_events::images::ImageStatus> for Status {
        fn from(status: pinhole_events::images::ImageStatus) -> Self {
            use pinhole_events::images::ImageStatus;
            match status {
                ImageStatus::Processing => Self::Processing,
                ImageStatus::Ready => Self::Ready,
                ImageStatus::Failed => Self::Failed,
            }
        }
    }

    /// Who may see an image (`thumb_images.visibility`, mapped by the ORM):
    /// unsigned presets are served for public ones only.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum Visibility {
        #[sea_orm(string_value = "public")]
        Public,
        #[sea_orm(string_value = "followers")]
        Followers,
        #[sea_orm(string_value = "private")]
        Private,
    }

    /// The visibility an image event or job carries.
    impl From<pinhole_events::images::Visibility> for Visibility {
        fn from(visibility: pinhole_events::images::Visibility) -> Self {
            use pinhole_events::images::Visibility as Sent;
            match visibility {
                Sent::Public => Self::Public,
                Sent::Followers => Self::Followers,
                Sent::Private => Self::Private,
            }
        }
    }

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
        pub visibility: Visibility,
        pub status: Status,
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

#[cfg(test)]
mod tests {
    use super::image::{Status, Visibility};
    use pinhole_events::images::{ImageStatus, Visibility as Sent};
    use sea_orm::ActiveEnum;

    /// Each value an event carries is stored under the same name.
    #[test]
    fn events_name_what_the_catalog_stores() {
        for sent in [
            ImageStatus::Processing,
            ImageStatus::Ready,
            ImageStatus::Failed,
        ] {
            assert_eq!(Status::from(sent).to_value(), sent.as_str());
        }
        for sent in [Sent::Public, Sent::Followers, Sent::Private] {
            assert_eq!(Visibility::from(sent).to_value(), sent.as_str());
        }
    }
}
