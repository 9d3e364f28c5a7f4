//! Pinhole's database schema, one migration per change, applied in order by
//! `pinhole migrate` and at every start of `pinhole serve`.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_outbox;
mod m20261121_000002_outbox_failures;
mod m20261121_000003_accounts;
mod m20261121_000004_images;
mod m20261121_000005_versions;
mod m20261130_000006_dead_letters;
mod m20261130_000007_blob_integrity;
mod m20261130_000008_read_models;
mod m20261130_000009_thumbnail_catalog;

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
}
