//! Foreign keys as the database reports them, to find (rather than guess)
//! the ones that cross from one role's tables into another's.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

/// A foreign key of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForeignKey {
    /// Its constraint name on Postgres; on SQLite (where keys have no
    /// names) its position in the table, `#N`.
    pub name: String,
    /// The table it references.
    pub target: String,
}

/// The foreign keys of `table` (none when the table does not exist).
pub(crate) async fn foreign_keys<C: ConnectionTrait>(
    conn: &C,
    table: &str,
) -> Result<Vec<ForeignKey>, DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT c.conname::text AS name, r.relname::text AS target \
             FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             JOIN pg_class r ON r.oid = c.confrelid \
             WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = $1 \
             ORDER BY c.conname"
        }
        DbBackend::Sqlite => {
            "SELECT DISTINCT '#' || id AS name, \"table\" AS target \
             FROM pragma_foreign_key_list($1) ORDER BY id"
        }
        DbBackend::MySql => {
            return Err(DbErr::Migration("MySQL is not supported".into()));
        }
    };
    let rows = conn
        .query_all(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ForeignKey {
                name: row.try_get("", "name")?,
                target: row.try_get("", "target")?,
            })
        })
        .collect()
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
