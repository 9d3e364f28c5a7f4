//! Databases upgraded from the legacy history: the images role's tables
//! lose their foreign keys into other roles' tables (`comments.author_id`
//! and `likes.user_id` → `users`, which deleted an account's comments and
//! likes with it; the images role's account purge removes them now, so
//! each role's tables can live in a database of their own).
//!
//! The keys are found in the catalog, not assumed: on Postgres each is
//! dropped by the name Postgres gave it; SQLite cannot drop a constraint,
//! so a table that has one is rebuilt without it (create, copy, drop,
//! rename, indexes again). A fresh database has no such key and nothing
//! happens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement, TransactionTrait};

use super::m20261201_000001_baseline as baseline;
use crate::keys::{foreign_keys, quoted};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The role's tables when this migration was written.
const OWN: &[&str] = &[
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
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        for table in OWN {
            let crossing: Vec<_> = foreign_keys(db, table)
                .await?
                .into_iter()
                .filter(|key| !OWN.contains(&key.target.as_str()))
                .collect();
            if crossing.is_empty() {
                continue;
            }
            match backend {
                DbBackend::Postgres => {
                    for key in crossing {
                        db.execute_unprepared(&format!(
                            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                            quoted(table),
                            quoted(&key.name)
                        ))
                        .await?;
                    }
                }
                DbBackend::Sqlite => rebuild(manager, table).await?,
                DbBackend::MySql => {
                    return Err(DbErr::Migration("MySQL is not supported".into()));
                }
            }
        }
        Ok(())
    }

    /// The keys stay dropped: putting them back would tie the roles'
    /// tables together again.
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

/// SQLite: `table` again as the baseline defines it (without keys into
/// other roles' tables), with its rows and indexes, in one transaction.
async fn rebuild(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let temporary = format!("{table}_rebuilt");
    let (create, indexes) = match table {
        "comments" => (
            baseline::comments(Alias::new(&temporary)),
            baseline::comments_indexes(),
        ),
        "likes" => (
            baseline::likes(Alias::new(&temporary)),
            baseline::likes_indexes(),
        ),
        other => {
            return Err(DbErr::Migration(format!(
                "`{other}` has a foreign key into another role's table and no rebuild without it is known"
            )));
        }
    };
    let db = manager.get_connection();
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", quoted(&temporary)))
        .await?;
    txn.execute(backend.build(&create)).await?;
    let columns: Vec<String> = txn
        .query_all(Statement::from_sql_and_values(
            backend,
            "SELECT name FROM pragma_table_info($1) ORDER BY cid",
            [temporary.clone().into()],
        ))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "name").map(|c| quoted(&c)))
        .collect::<Result<_, _>>()?;
    let columns = columns.join(", ");
    txn.execute_unprepared(&format!(
        "INSERT INTO {} ({columns}) SELECT {columns} FROM {}",
        quoted(&temporary),
        quoted(table)
    ))
    .await?;
    txn.execute_unprepared(&format!("DROP TABLE {}", quoted(table)))
        .await?;
    txn.execute_unprepared(&format!(
        "ALTER TABLE {} RENAME TO {}",
        quoted(&temporary),
        quoted(table)
    ))
    .await?;
    for index in indexes {
        txn.execute(backend.build(&index)).await?;
    }
    txn.commit().await
}
