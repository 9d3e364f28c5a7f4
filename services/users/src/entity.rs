//! The role's tables (see the accounts migration).

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub username: String,
        #[sea_orm(unique)]
        pub email: String,
        #[sea_orm(column_type = "Text")]
        pub password_hash: String,
        pub display_name: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub bio: Option<String>,
        pub website: Option<String>,
        pub avatar_image_id: Option<Uuid>,
        pub is_private: bool,
        pub post_count: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod follow {
    use sea_orm::entity::prelude::*;

    /// Where a follow is (`follows.status`, mapped by the ORM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum Status {
        /// Approved (at once, or by the private account).
        #[sea_orm(string_value = "active")]
        Active,
        /// Requested of a private account that has not approved yet.
        #[sea_orm(string_value = "pending")]
        Pending,
    }

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "follows")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub follower_id: Uuid,
        pub followee_id: Uuid,
        pub status: Status,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod block {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "blocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocker_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocked_id: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Whose images exist, kept from the images role's events: post counts.
pub mod user_image {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_images")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: Uuid,
        pub owner_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
