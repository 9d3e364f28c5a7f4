//! The thumbnails role: its own catalog of images and of account privacy
//! (`thumb_images`, `thumb_accounts`), kept from the images and users
//! roles' events.

use sea_orm_migration::prelude::*;

mod m20261201_000001_baseline;

/// The role's name, as `pinhole serve --roles` spells it.
pub const ROLE: &str = "thumbnails";

/// The tables the thumbnails role owns.
pub const TABLES: &[&str] = &["thumb_images", "thumb_accounts"];

/// Its history table.
pub const HISTORY_TABLE: &str = "thumbnails_migrations";

/// The thumbnails role's migrations, in order.
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
