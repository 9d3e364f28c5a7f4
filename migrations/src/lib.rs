//! Pinhole's database schema: each role owns its tables and keeps its own
//! migration history, so that a role can have a database of its own (or
//! share one with the others: their tables are disjoint, and no foreign
//! key crosses from one role's tables into another's).
//!
//! - [`platform`]: what every process needs (the outbox, dead letters);
//! - [`users`], [`images`], [`thumbnails`]: each role's tables;
//! - [`legacy`]: the one history every role shared before, frozen; only a
//!   database that already has it runs it, to its end, before the others.
//!
//! [`migrate`] applies what the roles served by a process need, at every
//! start of `pinhole serve` and by `pinhole migrate`.

pub use sea_orm_migration::prelude::*;

use sea_orm_migration::sea_orm::{DatabaseConnection, DbBackend, TransactionTrait};

pub mod images;
mod keys;
pub mod legacy;
pub mod platform;
pub mod thumbnails;
pub mod users;

/// A role with tables of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSchema {
    /// As `pinhole serve --roles` spells it.
    pub role: &'static str,
    /// The tables it owns.
    pub tables: &'static [&'static str],
    /// Where its migration history is kept.
    pub history_table: &'static str,
}

/// The roles with tables of their own. Other roles (search, sns-sync,
/// gateway, warehouse) need only the platform's.
pub const ROLES: &[RoleSchema] = &[
    RoleSchema {
        role: users::ROLE,
        tables: users::TABLES,
        history_table: users::HISTORY_TABLE,
    },
    RoleSchema {
        role: images::ROLE,
        tables: images::TABLES,
        history_table: images::HISTORY_TABLE,
    },
    RoleSchema {
        role: thumbnails::ROLE,
        tables: thumbnails::TABLES,
        history_table: thumbnails::HISTORY_TABLE,
    },
];

/// Serialises migrations of one Postgres database: processes of several
/// roles that start together each migrate it, one after the other.
const POSTGRES_LOCK: i64 = 0x0070_696e_686f_6c65; // "pinhole" in ASCII

/// Applies the platform's pending migrations and those of each of `roles`
/// (names as `pinhole serve --roles` spells them; roles without tables of
/// their own need nothing more).
///
/// A database made by the legacy history (it has `seaql_migrations`) is
/// first brought to the end of it; the roles' baselines then find their
/// tables there, and the images role drops the legacy foreign keys into
/// `users`. On Postgres everything happens in one transaction, under an
/// advisory lock.
pub async fn migrate(db: &DatabaseConnection, roles: &[&str]) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({POSTGRES_LOCK})"))
                .await?;
            apply(&txn, roles).await?;
            txn.commit().await
        }
        _ => apply(db, roles).await,
    }
}

async fn apply<'c, C>(conn: C, roles: &[&str]) -> Result<(), DbErr>
where
    C: IntoSchemaManagerConnection<'c> + Copy,
{
    if SchemaManager::new(conn)
        .has_table(legacy::HISTORY_TABLE)
        .await?
    {
        legacy::Migrator::up(conn, None).await?;
    }
    platform::Migrator::up(conn, None).await?;
    let mut done = Vec::new();
    for role in roles {
        if done.contains(role) {
            continue;
        }
        done.push(*role);
        match *role {
            users::ROLE => users::Migrator::up(conn, None).await?,
            images::ROLE => images::Migrator::up(conn, None).await?,
            thumbnails::ROLE => thumbnails::Migrator::up(conn, None).await?,
            _ => {}
        }
    }
    Ok(())
}
