//! The platform: tables every process needs whatever roles it serves, the
//! transactional outbox (`outbox`, `outbox_dead`, used by `pinhole-db`'s
//! relay) and the consumers' dead letters (`event_dead_letters`).

use sea_orm_migration::prelude::*;

mod m20261201_000001_baseline;

/// The tables the platform owns.
pub const TABLES: &[&str] = &["outbox", "outbox_dead", "event_dead_letters"];

/// Its history table.
pub const HISTORY_TABLE: &str = "platform_migrations";

/// The platform's migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261201_000001_baseline::Migration)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new(HISTORY_TABLE).into_iden()
    }
}
