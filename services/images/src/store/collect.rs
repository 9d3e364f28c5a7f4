//! Collecting a content nothing references any more: its original and its
//! metadata-free copy (this role's objects). What the thumbnails role
//! derived from it is that role's to remove: it hears of the release by
//! `content.released`.
//!
//! Three steps, none holding a transaction across blob I/O: mark the row
//! (`collecting_since`) if it still has no reference; delete the objects;
//! remove the row if it still has none, and emit `content.released` in the
//! same transaction. A collection that stops half-way leaves the row
//! marked, and the sweep runs it again.

use pinhole_blob::{BlobError, BlobStore};
use pinhole_db::Outbox;
use pinhole_events::OutgoingEvent;
use pinhole_events::images::ContentReleased;
use pinhole_media::Format;
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use super::{lock, original_key, public_key};
use crate::entity::blob;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
}

/// Removes the content if nothing references it; true when it did. The
/// row's removal and `content.released` are one transaction.
pub async fn collect(
    db: &DatabaseConnection,
    blobs: &dyn BlobStore,
    outbox: &Outbox,
    sha256: &str,
) -> Result<bool, CollectError> {
    let Some(row) = mark(db, sha256).await? else {
        return Ok(false);
    };
    delete_objects(blobs, &row).await?;
    let txn = pinhole_db::begin_write(db).await?;
    lock(&txn, sha256).await?;
    let removed = blob::Entity::delete_many()
        .filter(blob::Column::Sha256.eq(sha256))
        .filter(blob::Column::RefCount.lte(0))
        .filter(blob::Column::CollectingSince.is_not_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if removed > 0 {
        let released = ContentReleased {
            sha256: row.sha256.clone(),
            format: row.format.clone(),
        };
        outbox
            .enqueue(&txn, &[OutgoingEvent::of(&released)])
            .await?;
    }
    txn.commit().await?;
    outbox.wake();
    if removed > 0 {
        metrics::counter!("pinhole_blobs_collected_total").increment(1);
        tracing::info!(sha256, "collected an unreferenced original");
    }
    Ok(removed > 0)
}

/// Marks the row as being collected if it has no reference; the row as
/// marked, or `None` when there is nothing to collect.
async fn mark(db: &DatabaseConnection, sha256: &str) -> Result<Option<blob::Model>, DbErr> {
    let txn = pinhole_db::begin_write(db).await?;
    lock(&txn, sha256).await?;
    let Some(row) = blob::Entity::find_by_id(sha256.to_owned())
        .one(&txn)
        .await?
        .filter(|b| b.ref_count <= 0)
    else {
        return Ok(None);
    };
    let since = row.collecting_since.unwrap_or_else(chrono::Utc::now);
    blob::Entity::update_many()
        .col_expr(blob::Column::CollectingSince, Expr::value(since))
        .filter(blob::Column::Sha256.eq(sha256))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some(blob::Model {
        collecting_since: Some(since),
        ..row
    }))
}

/// This role's objects of the content: original and public copy.
async fn delete_objects(blobs: &dyn BlobStore, row: &blob::Model) -> Result<(), BlobError> {
    let format = Format::parse(&row.format).unwrap_or(Format::Jpeg);
    let mut keys = vec![
        original_key(&row.sha256, format),
        public_key(&row.sha256, format),
    ];
    // The row's own key, should it differ (it never leaves this role's
    // originals).
    if row.blob_key.starts_with("originals/") && !keys.contains(&row.blob_key) {
        keys.push(row.blob_key.clone());
    }
    for key in keys {
        blobs.delete(&key).await?;
    }
    Ok(())
}

/// Collects every unreferenced content (the sweep after crashes between a
/// release and its collection, or a collection that stopped half-way).
pub async fn collect_all(
    db: &DatabaseConnection,
    blobs: &dyn BlobStore,
    outbox: &Outbox,
) -> Result<usize, CollectError> {
    let orphans: Vec<String> = blob::Entity::find()
        .filter(blob::Column::RefCount.lte(0))
        .all(db)
        .await?
        .into_iter()
        .map(|b| b.sha256)
        .collect();
    let mut n = 0;
    for sha in orphans {
        if collect(db, blobs, outbox, &sha).await? {
            n += 1;
        }
    }
    Ok(n)
}
