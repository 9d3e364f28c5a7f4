//! The schema as one history for every role, before each role kept its own:
//! frozen. A database made by it (it has the `seaql_migrations` table) is
//! brought to its last migration first by [`crate::migrate`], then handed
//! to the per-role histories. A fresh database never runs it.
//!
//! Do not add to or change these migrations: a change to the schema is a
//! migration of the role that owns the table (or of the platform).

use sea_orm_migration::prelude::*;

mod m20261121_000001_outbox;
mod m20261121_000002_outbox_failures;
mod m20261121_000003_accounts;
mod m20261121_000004_images;
mod m20261121_000005_versions;
mod m20261130_000006_dead_letters;
mod m20261130_000007_blob_integrity;
mod m20261130_000008_read_models;
mod m20261130_000009_thumbnail_catalog;

/// Its history table (sea-orm-migration's default name).
pub const HISTORY_TABLE: &str = "seaql_migrations";

/// The nine migrations of the shared history, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_outbox::Migration),
            Box::new(m20261121_000002_outbox_failures::Migration),
            Box::new(m20261121_000003_accounts::Migration),
            Box::new(m20261121_000004_images::Migration),
            Box::new(m20261121_000005_versions::Migration),
            Box::new(m20261130_000006_dead_letters::Migration),
            Box::new(m20261130_000007_blob_integrity::Migration),
            Box::new(m20261130_000008_read_models::Migration),
            Box::new(m20261130_000009_thumbnail_catalog::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new(HISTORY_TABLE).into_iden()
    }
}
