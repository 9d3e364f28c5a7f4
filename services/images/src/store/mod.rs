//! Originals are stored once per content (SHA-256) and shared by every
//! image with those bytes, with a reference count in `blobs`.
//!
//! The rules that keep a shared original alive:
//! - Every change to a content's count happens inside a write transaction
//!   after [`lock`] (per content); every change to an image's references
//!   (its deletion, a version's deletion, an edit becoming current) happens
//!   after [`lock_image`] too, and releases only what a statement really
//!   deleted, so two requests never release the same reference.
//! - No blob I/O inside a write transaction (on SQLite that transaction is
//!   the one write lock): objects are written before it ([`prepare`]) and
//!   checked after it ([`ensure_stored`]); collection ([`collect`]) marks the
//!   row, deletes the objects outside any transaction, then removes the row.
//! - While a row is marked as being collected, [`retain`] refuses with
//!   [`Busy`] and the caller tries again after the collection ended, so a new
//!   reference is never counted to objects that are going away.
//!
//! This role owns `originals/`, `public/` and `uploads/` (see
//! `pinhole_events::images::IMAGES_PREFIXES`): only it writes or deletes
//! there. An edit's result is staged by the thumbnails role under its own
//! prefix and copied in here ([`take_staged`]); what the thumbnails role
//! derived from a content is removed by that role when it hears
//! `content.released` from [`collect`].

mod collect;
mod sweep;

use bytes::Bytes;
use pinhole_http::{ApiError, AppContext};
use pinhole_media::Format;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseBackend, Statement};
use std::time::Duration;

use crate::ImagesError;
use crate::entity::blob;

pub use collect::{collect, collect_all};
pub use sweep::{PREFIXES, Report, check};

/// Where the original with this content lives.
pub fn original_key(sha256: &str, format: Format) -> String {
    pinhole_events::images::original_key(sha256, format.extension())
}

/// Where the metadata-free copy served to everyone but the owner lives.
pub fn public_key(sha256: &str, format: Format) -> String {
    format!("public/{}/{sha256}.{}", &sha256[..2], format.extension())
}

async fn advisory_lock<C: ConnectionTrait>(txn: &C, name: String) -> Result<(), DbErr> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [name.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Holds the content's lock until the transaction ends (SQLite: the write
/// transaction is the lock).
pub async fn lock<C: ConnectionTrait>(txn: &C, sha256: &str) -> Result<(), DbErr> {
    advisory_lock(txn, format!("blob:{sha256}")).await
}

/// Locks several contents in one order (sorted), so that two transactions
/// locking the same contents never wait on each other in a circle.
pub async fn lock_all<C: ConnectionTrait>(txn: &C, sha256s: &[String]) -> Result<(), DbErr> {
    let mut sorted: Vec<&String> = sha256s.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    for sha in sorted {
        lock(txn, sha).await?;
    }
    Ok(())
}

/// Holds the image's lock until the transaction ends: deleting the image,
/// deleting one of its versions and making an edit current take turns.
/// Take it before any content lock.
pub async fn lock_image<C: ConnectionTrait>(txn: &C, image_id: Uuid) -> Result<(), DbErr> {
    advisory_lock(txn, format!("image:{image_id}")).await
}

/// Holds the account's lock until the transaction ends: what counts
/// against its quotas (a new image, an unfinished upload, an edit) is
/// counted and added in turns (see `quota`). Take it before any image or
/// content lock.
pub async fn lock_account<C: ConnectionTrait>(txn: &C, account: Uuid) -> Result<(), DbErr> {
    advisory_lock(txn, format!("account:{account}")).await
}

/// The content is being collected right now: try again shortly.
#[derive(Debug)]
pub struct Busy;

impl From<Busy> for ApiError {
    fn from(_: Busy) -> Self {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            ImagesError::ContentBusy,
            "the same bytes are being removed right now; try again in a moment",
        )
        .with_header(axum::http::header::RETRY_AFTER, "1")
    }
}

/// What [`retain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retained {
    /// The content had references: its objects are there.
    Shared,
    /// The content had none: check its object after committing
    /// ([`ensure_stored`]), a collection may have ended just before.
    Fresh,
}

/// Stores the bytes ahead of the transaction when no live blob holds them
/// (content-addressed, so storing them twice is harmless), so that the
/// transaction (on SQLite, the one write lock) does not wait on blob I/O.
pub async fn prepare(
    ctx: &AppContext,
    sha256: &str,
    format: Format,
    content: Content<'_>,
) -> Result<(), ApiError> {
    let alive = blob::Entity::find_by_id(sha256.to_owned())
        .one(&ctx.backends.db)
        .await?
        .is_some_and(|b| b.ref_count > 0 && b.collecting_since.is_none());
    if !alive {
        put(ctx, &original_key(sha256, format), content).await?;
    }
    Ok(())
}

/// An original's bytes to store: in memory, or a complete file (a spooled
/// body), which the local store links into place instead of writing again.
#[derive(Clone, Copy)]
pub enum Content<'a> {
    Bytes(&'a Bytes),
    File(&'a std::path::Path),
}

async fn put(ctx: &AppContext, key: &str, content: Content<'_>) -> Result<(), ApiError> {
    let blobs = ctx.backends.blobs.as_ref();
    match content {
        Content::Bytes(bytes) => pinhole_blob::put_bytes(blobs, key, bytes.clone()).await,
        Content::File(path) => blobs.put_file(key, path).await,
    }
    .map_err(ApiError::unavailable)?;
    Ok(())
}

/// Inside a write transaction, after [`lock`]: one more reference to the
/// content (its row made at 1 when absent). No blob I/O.
pub async fn retain<C: ConnectionTrait>(
    txn: &C,
    sha256: &str,
    format: Format,
    size: u64,
) -> Result<Result<Retained, Busy>, DbErr> {
    let row = blob::Entity::find_by_id(sha256.to_owned()).one(txn).await?;
    match row {
        Some(b) if b.collecting_since.is_some() => Ok(Err(Busy)),
        Some(b) => {
            blob::Entity::update_many()
                .col_expr(
                    blob::Column::RefCount,
                    Expr::col(blob::Column::RefCount).add(1),
                )
                .filter(blob::Column::Sha256.eq(sha256))
                .exec(txn)
                .await?;
            Ok(Ok(if b.ref_count > 0 {
                Retained::Shared
            } else {
                Retained::Fresh
            }))
        }
        None => {
            new_row(sha256, format, size, 1, None).insert(txn).await?;
            Ok(Ok(Retained::Fresh))
        }
    }
}

fn new_row(
    sha256: &str,
    format: Format,
    size: u64,
    ref_count: i64,
    collecting_since: Option<chrono::DateTime<chrono::Utc>>,
) -> blob::ActiveModel {
    blob::ActiveModel {
        sha256: Set(sha256.to_owned()),
        blob_key: Set(original_key(sha256, format)),
        size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
        format: Set(format.as_str().to_owned()),
        ref_count: Set(ref_count),
        created_at: Set(chrono::Utc::now()),
        collecting_since: Set(collecting_since),
    }
}

/// After committing a [`Retained::Fresh`] reference: stores the bytes again
/// if a collection removed them between [`prepare`] and the transaction.
/// Nothing removes them any more (the content has a reference).
pub async fn ensure_stored(
    ctx: &AppContext,
    sha256: &str,
    format: Format,
    content: Content<'_>,
) -> Result<(), ApiError> {
    let key = original_key(sha256, format);
    if !present(ctx, &key).await? {
        tracing::warn!(
            sha256,
            "the original was collected while being uploaded; storing it again"
        );
        put(ctx, &key, content).await?;
    }
    Ok(())
}

/// Copies an object another role staged (an edit's result, under its
/// prefix) to `to` in this role's prefix: streamed, get then put (the blob
/// store has no server-side copy). False when nothing is staged at `from`.
pub async fn take_staged(ctx: &AppContext, from: &str, to: &str) -> Result<bool, ApiError> {
    debug_assert!(to.starts_with("originals/"), "{to}");
    let blobs = ctx.backends.blobs.as_ref();
    let body = match blobs.get(from, None).await {
        Ok(body) => body,
        Err(pinhole_blob::BlobError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(ApiError::unavailable(e)),
    };
    blobs
        .put(to, body.stream)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(true)
}

/// Before the transaction that counts an edit's result: stores its
/// original from the staged copy unless a live blob holds those bytes
/// (as [`prepare`] does for uploads). True when the original is there (or
/// held by a live blob) to be counted.
pub async fn prepare_staged(
    ctx: &AppContext,
    source: &pinhole_events::images::Source,
    staged_key: Option<&str>,
) -> Result<bool, ApiError> {
    let alive = blob::Entity::find_by_id(source.sha256.clone())
        .one(&ctx.backends.db)
        .await?
        .is_some_and(|b| b.ref_count > 0 && b.collecting_since.is_none());
    if alive {
        return Ok(true);
    }
    if let Some(staged) = staged_key
        && take_staged(ctx, staged, &source.original_key).await?
    {
        return Ok(true);
    }
    // Nothing staged (a worker that stored the original itself, or a
    // replay after the staged copy went): whatever is stored already.
    present(ctx, &source.original_key).await
}

/// After committing a [`Retained::Fresh`] reference to an edit's result:
/// if a collection of the same bytes removed the original between
/// [`prepare_staged`] and the transaction, it is copied again from the
/// staged object (still there: the edit is settled only after this). If
/// that is gone too, the loss is logged and counted (`pinhole blobs check`
/// lists it as missing).
pub async fn ensure_staged_stored(
    ctx: &AppContext,
    source: &pinhole_events::images::Source,
    staged_key: Option<&str>,
) {
    let restored = match present(ctx, &source.original_key).await {
        Ok(true) => return,
        Ok(false) => {
            tracing::warn!(sha256 = %source.sha256,
                "an edited version's original was collected while being counted; storing it again");
            match staged_key {
                Some(staged) => take_staged(ctx, staged, &source.original_key).await,
                None => Ok(false),
            }
        }
        Err(e) => Err(e),
    };
    match restored {
        Ok(true) => {}
        Ok(false) => {
            metrics::counter!("pinhole_blobs_lost_total").increment(1);
            tracing::error!(sha256 = %source.sha256, key = %source.original_key,
                "an edited version's original was collected before it was counted");
        }
        Err(e) => tracing::warn!(sha256 = %source.sha256, error = %e.message,
            "could not check an edited version's original"),
    }
}

/// Whether an object is stored.
pub async fn present(ctx: &AppContext, key: &str) -> Result<bool, ApiError> {
    pinhole_blob::exists(ctx.backends.blobs.as_ref(), key)
        .await
        .map_err(ApiError::unavailable)
}

/// Inside a write transaction, after [`lock`]: content stored by another
/// role (an edit's result) that no image will use is counted at zero, so
/// that [`collect`] removes it. True when it should be collected.
pub async fn abandon<C: ConnectionTrait>(
    txn: &C,
    sha256: &str,
    format: Format,
    size: u64,
) -> Result<bool, DbErr> {
    match blob::Entity::find_by_id(sha256.to_owned()).one(txn).await? {
        Some(b) => Ok(b.ref_count <= 0),
        None => {
            new_row(sha256, format, size, 0, None).insert(txn).await?;
            Ok(true)
        }
    }
}

/// Inside a write transaction, after [`lock`], for a reference that a
/// statement of the same transaction really deleted: one reference fewer.
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

/// Collects each content after the transaction that released it; what
/// fails now is left to the periodic sweep.
pub async fn collect_released(ctx: &AppContext, sha256s: &[String]) {
    for sha in sha256s {
        if let Err(e) = collect(
            &ctx.backends.db,
            ctx.backends.blobs.as_ref(),
            &ctx.outbox,
            sha,
        )
        .await
        {
            tracing::warn!(sha256 = %sha, error = %e, "could not collect the content yet");
        }
    }
}

/// How long [`with_retry`] keeps trying while contents are being collected.
const BUSY_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `attempt` (a whole write transaction) again while it answers
/// [`Busy`]: a collection of the same bytes is deleting their objects and
/// ends shortly.
pub async fn with_retry<T, F, Fut>(mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<T, Busy>, ApiError>>,
{
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match attempt().await? {
            Ok(done) => return Ok(done),
            Err(Busy) if started.elapsed() < BUSY_DEADLINE => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(Busy) => return Err(Busy.into()),
        }
    }
}
