//! Originals are stored once per content (SHA-256) and shared by every
//! image with those bytes, with a reference count. Changes to a blob's count
//! and the removal of an unreferenced blob happen under a per-content lock,
//! and the object itself is removed while that lock is held, so an upload of
//! the same bytes at the same moment either keeps the blob alive or stores it
//! again: it never ends up pointing at nothing.

use bytes::Bytes;
use pinhole_http::{ApiError, AppContext};
use pinhole_media::Format;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseBackend, Statement};

use crate::entity::blob;

/// Where the original with this content lives.
pub fn original_key(sha256: &str, format: Format) -> String {
    pinhole_events::images::original_key(sha256, format.extension())
}

/// Where the metadata-free copy served to everyone but the owner lives.
pub fn public_key(sha256: &str, format: Format) -> String {
    format!("public/{}/{sha256}.{}", &sha256[..2], format.extension())
}

/// Holds the content's lock until the transaction ends (SQLite: the write
/// transaction is the lock).
pub async fn lock<C: ConnectionTrait>(txn: &C, sha256: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("blob:{sha256}").into()],
        ))
        .await?;
    }
    Ok(())
}

async fn put(ctx: &AppContext, key: &str, bytes: &Bytes) -> Result<(), ApiError> {
    pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), key, bytes.clone())
        .await
        .map_err(ApiError::unavailable)?;
    Ok(())
}

/// Stores the bytes ahead of the transaction when no live blob holds them
/// (content-addressed, so storing them twice is harmless), so that the
/// transaction (on SQLite, the one write lock) does not wait on blob I/O.
pub async fn prepare(
    ctx: &AppContext,
    sha256: &str,
    format: Format,
    bytes: &Bytes,
) -> Result<(), ApiError> {
    let alive = blob::Entity::find_by_id(sha256.to_owned())
        .one(&ctx.backends.db)
        .await?
        .is_some_and(|b| b.ref_count > 0);
    if !alive {
        put(ctx, &original_key(sha256, format), bytes).await?;
    }
    Ok(())
}

/// Inside the transaction (after [`lock`]): one more reference to the
/// content, storing it again if it was collected in the meantime.
pub async fn retain<C: ConnectionTrait>(
    ctx: &AppContext,
    txn: &C,
    sha256: &str,
    format: Format,
    bytes: &Bytes,
) -> Result<(), ApiError> {
    let key = original_key(sha256, format);
    let row = blob::Entity::find_by_id(sha256.to_owned()).one(txn).await?;
    if !alive(&row) && !present(ctx, &key).await? {
        put(ctx, &key, bytes).await?;
    }
    count(txn, row, sha256, key, format, bytes.len() as u64).await
}

/// Inside the transaction (after [`lock`]): one more reference to content
/// that another role stored (an edit's result). False when the object is not
/// there (collected between its storing and now).
pub async fn retain_stored<C: ConnectionTrait>(
    ctx: &AppContext,
    txn: &C,
    sha256: &str,
    format: Format,
    size: u64,
) -> Result<bool, ApiError> {
    let key = original_key(sha256, format);
    let row = blob::Entity::find_by_id(sha256.to_owned()).one(txn).await?;
    if !alive(&row) && !present(ctx, &key).await? {
        return Ok(false);
    }
    count(txn, row, sha256, key, format, size).await?;
    Ok(true)
}

fn alive(row: &Option<blob::Model>) -> bool {
    row.as_ref().is_some_and(|b| b.ref_count > 0)
}

async fn present(ctx: &AppContext, key: &str) -> Result<bool, ApiError> {
    pinhole_blob::exists(ctx.backends.blobs.as_ref(), key)
        .await
        .map_err(ApiError::unavailable)
}

/// One more reference in the content's row (made at 1 when absent).
async fn count<C: ConnectionTrait>(
    txn: &C,
    row: Option<blob::Model>,
    sha256: &str,
    key: String,
    format: Format,
    size: u64,
) -> Result<(), ApiError> {
    match row {
        Some(_) => {
            blob::Entity::update_many()
                .col_expr(
                    blob::Column::RefCount,
                    Expr::col(blob::Column::RefCount).add(1),
                )
                .filter(blob::Column::Sha256.eq(sha256))
                .exec(txn)
                .await?;
        }
        None => {
            blob::ActiveModel {
                sha256: Set(sha256.to_owned()),
                blob_key: Set(key),
                size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
                format: Set(format.as_str().to_owned()),
                ref_count: Set(1),
                created_at: Set(chrono::Utc::now()),
            }
            .insert(txn)
            .await?;
        }
    }
    Ok(())
}

/// Inside the transaction that removes an image: one reference fewer.
/// Call [`collect`] after committing.
pub async fn release<C: ConnectionTrait>(txn: &C, sha256: &str) -> Result<(), DbErr> {
    blob::Entity::update_many()
        .col_expr(
            blob::Column::RefCount,
            Expr::col(blob::Column::RefCount).sub(1),
        )
        .filter(blob::Column::Sha256.eq(sha256))
        .exec(txn)
        .await?;
    Ok(())
}

/// Removes the content if nothing references it any more.
pub async fn collect(ctx: &AppContext, sha256: &str) -> Result<bool, ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    lock(&txn, sha256).await?;
    let Some(row) = blob::Entity::find_by_id(sha256.to_owned())
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    if row.ref_count > 0 {
        return Ok(false);
    }
    let format = Format::parse(&row.format).unwrap_or(Format::Jpeg);
    // Derivatives are keyed by content too (the thumbnails role's layout).
    let derived = ctx
        .backends
        .blobs
        .list(&pinhole_events::images::derivative_prefix(sha256))
        .await
        .map_err(ApiError::unavailable)?;
    let keys = [row.blob_key.clone(), public_key(sha256, format)]
        .into_iter()
        .chain(derived.into_iter().map(|m| m.key));
    for key in keys {
        ctx.backends
            .blobs
            .delete(&key)
            .await
            .map_err(ApiError::unavailable)?;
    }
    blob::Entity::delete_by_id(sha256.to_owned())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(sha256, "collected an unreferenced original");
    Ok(true)
}

/// Collects every unreferenced blob (a sweep after crashes between a
/// release and its collection).
pub async fn collect_all(ctx: &AppContext) -> Result<usize, ApiError> {
    let orphans: Vec<String> = blob::Entity::find()
        .filter(blob::Column::RefCount.lte(0))
        .all(&ctx.backends.db)
        .await?
        .into_iter()
        .map(|b| b.sha256)
        .collect();
    let mut n = 0;
    for sha in orphans {
        if collect(ctx, &sha).await? {
            n += 1;
        }
    }
    Ok(n)
}
