//! The images role: stored originals (`blobs`), images with their tags,
//! versions, processing tasks, comments, likes and resumable uploads, the
//! purges of deleted accounts, and its read models of the users role's
//! accounts, follows and blocks (`image_accounts`, `image_follows`,
//! `image_blocks`, from the users role's events), and view counts from the
//! gateway's page views (`image_views`, `image_view_offsets`).

use sea_orm_migration::prelude::*;

mod m20261201_000001_baseline;
mod m20261201_000002_detach_from_users;
mod m20261201_000003_comments_by_author;
mod m20261202_000004_view_counts;
mod m20261203_000005_quota_indexes;

/// The role's name, as `pinhole serve --roles` spells it.
pub const ROLE: &str = "images";

/// The tables the images role owns.
pub const TABLES: &[&str] = &[
    "blobs",
    "images",
    "image_tags",
    "image_versions",
    "tasks",
    "comments",
    "likes",
    "uploads",
    "account_purges",
    "image_accounts",
    "image_follows",
    "image_blocks",
    "image_views",
    "image_view_offsets",
];

/// Its history table.
pub const HISTORY_TABLE: &str = "images_migrations";

/// The images role's migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261201_000001_baseline::Migration),
            Box::new(m20261201_000002_detach_from_users::Migration),
            Box::new(m20261201_000003_comments_by_author::Migration),
            Box::new(m20261202_000004_view_counts::Migration),
            Box::new(m20261203_000005_quota_indexes::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new(HISTORY_TABLE).into_iden()
    }
}
