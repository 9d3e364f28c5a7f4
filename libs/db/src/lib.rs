//! The relational database (sea-orm on SQLite or Postgres, one code path),
//! the transactional outbox and the consumers' dead letters.

pub mod dead_letters;
pub mod outbox;

use std::time::Duration;

use pinhole_config::DatabaseUrl;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, SqlxSqliteConnector, TransactionTrait,
};

pub use dead_letters::DeadLetterStore;
pub use outbox::{Outbox, OutboxRelay, RelayOptions};

/// Opens the database at `url` and checks that it answers. SQLite files (and
/// their directory) are created when missing.
pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection, DbErr> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DbErr::Custom(format!("{}: {e}", dir.display())))?;
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
        }
        DatabaseUrl::Postgres(url) => {
            // One direct connection first: a pool that cannot connect only
            // says that it timed out, this says why (refused, auth, no db).
            let refused = |e: String| DbErr::Conn(sea_orm::RuntimeErr::Internal(e));
            let direct: PgConnectOptions = url
                .parse()
                .map_err(|e: sqlx::Error| refused(e.to_string()))?;
            let probe = tokio::time::timeout(Duration::from_secs(5), direct.connect())
                .await
                .map_err(|_| refused("no answer within 5s".into()))?
                .map_err(|e| refused(e.to_string()))?;
            let _ = probe.close().await;
            let mut options = ConnectOptions::new(url.clone());
            options
                .max_connections(20)
                .connect_timeout(Duration::from_secs(5))
                .acquire_timeout(Duration::from_secs(10))
                .sqlx_logging(false);
            Database::connect(options).await
        }
    }
}

/// Begins a transaction that will write.
///
/// On SQLite, a transaction that reads first and writes later fails at once
/// (`SQLITE_BUSY`) if another connection wrote in between; taking the write
/// lock with the first statement makes it wait its turn instead. On Postgres
/// this is a plain `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DatabaseBackend::Sqlite {
        txn.execute_unprepared("DELETE FROM outbox WHERE 0").await?;
    }
    Ok(txn)
}

/// Applies the pending migrations of the platform (the outbox, dead
/// letters) and of the tables `roles` own (see
/// [`pinhole_migrations::migrate`]).
///
/// On SQLite every schema change is made on one connection of its own,
/// then closed: a pooled connection that read the schema between two
/// changes could keep that copy, and SQLite would then refuse, for one,
/// an upsert whose unique index that copy lacks.
pub async fn migrate(db: &DatabaseConnection, roles: &[&str]) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return pinhole_migrations::migrate(db, roles).await;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with((*options).clone())
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let single = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool.clone());
    let migrated = pinhole_migrations::migrate(&single, roles).await;
    pool.close().await;
    migrated
}
