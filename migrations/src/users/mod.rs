//! The users role: accounts, their bearer tokens, follows and blocks, and
//! its read model of whose images exist (`user_images`, from the images
//! role's events, to count posts).

use sea_orm_migration::prelude::*;

mod m20261201_000001_baseline;

/// The role's name, as `pinhole serve --roles` spells it.
pub const ROLE: &str = "users";

/// The tables the users role owns.
pub const TABLES: &[&str] = &["users", "tokens", "follows", "blocks", "user_images"];

/// Its history table.
pub const HISTORY_TABLE: &str = "users_migrations";

/// The users role's migrations, in order.
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
