//! This role's part of the blob store. It owns `derivatives/` (the
//! derivative set of each content, its manifest, stored transforms) and
//! `edits/` (edit results staged for the images role): only it writes or
//! deletes there. It reads `originals/` (the images role's) and asks that
//! role by event; that role tells it by event when to remove.
//!
//! - `content.released`: no image references a content any more; what was
//!   derived from it goes ([`released`]), unless the same bytes were stored
//!   again meanwhile (an upload of them, or an edit that made them).
//! - `image.edit_settled`: the images role took (or gave up) an edit's
//!   staged result; the staged object goes ([`settled`]).
//! - The sweep ([`check`], run every `PINHOLE_BLOB_SWEEP_INTERVAL` by
//!   [`sweep`]) removes what those missed: derivatives of contents nobody
//!   holds, staged results never settled.
//!
//! Removing a derivative set races with an upload of the same bytes that
//! finds the set's manifest and reuses it. Both sides look again after
//! their own step, so one of them always sees the other: removal deletes
//! the manifest last and then asks for the set to be made again for any
//! image the catalog shows on those bytes whose original is stored
//! ([`remove_set`]); a worker reusing a set checks its manifest after
//! recording the image in the catalog (see the worker).

mod check;

use std::time::Duration;

use pinhole_blob::{BlobError, BlobStore};
use pinhole_events::images::{ContentReleased, EditSettled, derivative_prefix, original_key};
use pinhole_http::{AppContext, Backends};
use sea_orm::entity::prelude::*;
use uuid::Uuid;

use crate::entity::image;

pub use check::{Report, check};

/// The prefixes this role owns.
pub const PREFIXES: &[&str] = pinhole_events::images::THUMBNAILS_PREFIXES;

/// Where edit results wait for the images role.
pub const EDITS: &str = "edits/";

/// How much longer than the grace period a staged edit result may wait for
/// its `image.edit_settled` before the sweep takes it for lost: its report
/// may wait in a dead-letter list for a retry.
pub const STAGED_MARGIN: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    #[error("asking for derivatives again: {0}")]
    Requeue(#[from] crate::backfill::BackfillError),
}

/// Where the edit result of `task_id` (content `sha256`, `ext` without the
/// dot) is staged: one object per task, so that two edits making the same
/// bytes never share one.
pub fn staged_edit_key(task_id: Uuid, sha256: &str, ext: &str) -> String {
    format!("{EDITS}{task_id}/{sha256}.{ext}")
}

/// Where a derivative of the content `sha256` lives.
pub fn derivative_key(sha256: &str, name: &str, ext: &str) -> String {
    format!("{}{name}.{ext}", derivative_prefix(sha256))
}

/// The manifest of a content's derivative set: written last, so its
/// presence means the whole set is stored.
pub(crate) fn manifest_key(sha256: &str) -> String {
    format!("{}manifest.json", derivative_prefix(sha256))
}

/// The content in a key under `derivatives/{shard}/{sha256}/`.
pub(crate) fn derived_content(key: &str) -> Option<&str> {
    let mut parts = key.splitn(4, '/');
    (parts.next()? == "derivatives").then_some(())?;
    let _shard = parts.next()?;
    let sha = parts.next()?;
    let rest = parts.next()?;
    (is_sha(sha) && !rest.is_empty()).then_some(sha)
}

/// The content in a key under `originals/{shard}/{sha256}.{ext}`.
fn original_content(key: &str) -> Option<&str> {
    let mut parts = key.splitn(3, '/');
    (parts.next()? == "originals").then_some(())?;
    let _shard = parts.next()?;
    let (sha, _ext) = parts.next()?.split_once('.')?;
    is_sha(sha).then_some(sha)
}

/// The content in a key under `edits/{task_id}/{sha256}.{ext}`.
fn staged_content(key: &str) -> Option<&str> {
    let mut parts = key.splitn(3, '/');
    (parts.next()? == "edits").then_some(())?;
    let _task = parts.next()?;
    let (sha, _ext) = parts.next()?.split_once('.')?;
    is_sha(sha).then_some(sha)
}

fn is_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the images role stores an original of `sha256` (in `format`
/// when known, else in any).
async fn original_stored(
    blobs: &dyn BlobStore,
    sha256: &str,
    format: Option<&str>,
) -> Result<bool, BlobError> {
    match format.and_then(pinhole_media::Format::parse) {
        Some(f) => pinhole_blob::exists(blobs, &original_key(sha256, f.extension())).await,
        None => Ok(stored_original(blobs, sha256).await?.is_some()),
    }
}

/// An original of `sha256` the images role stores, in whichever format.
pub(crate) async fn stored_original(
    blobs: &dyn BlobStore,
    sha256: &str,
) -> Result<Option<pinhole_blob::BlobMeta>, BlobError> {
    let shard = sha256.get(..2).unwrap_or(sha256);
    Ok(blobs
        .list(&format!("originals/{shard}/{sha256}."))
        .await?
        .into_iter()
        .next())
}

/// Images of the catalog on content `sha256` that are not deleted.
async fn live_images(db: &DatabaseConnection, sha256: &str) -> Result<Vec<image::Model>, DbErr> {
    image::Entity::find()
        .filter(image::Column::Sha256.eq(sha256))
        .filter(image::Column::Status.ne(image::Status::Deleted))
        .all(db)
        .await
}

/// `content.released`: removes the content's derivative set, stored
/// transforms and manifest, unless its original is stored again (the same
/// bytes uploaded, or made by an edit, since the release). The catalog's
/// own images on those bytes do not keep it: the deletion that released
/// them may not have reached the catalog yet (it travels under another
/// key). Objects removed.
pub async fn released(ctx: &AppContext, e: &ContentReleased) -> Result<u64, StoreError> {
    let b = &ctx.backends;
    let keys: Vec<String> = b
        .blobs
        .list(&derivative_prefix(&e.sha256))
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    if keys.is_empty() {
        return Ok(0);
    }
    if original_stored(b.blobs.as_ref(), &e.sha256, Some(&e.format)).await? {
        tracing::info!(sha256 = %e.sha256, "released content stored again; its derivatives stay");
        return Ok(0);
    }
    let removed = remove_set(b, &e.sha256, &keys).await?;
    metrics::counter!("pinhole_derivatives_released_total").increment(removed);
    tracing::info!(sha256 = %e.sha256, objects = removed, "derivatives of released content removed");
    Ok(removed)
}

/// `image.edit_settled`: the staged edit result goes (only ever under this
/// role's `edits/`).
pub async fn settled(ctx: &AppContext, e: &EditSettled) -> Result<(), StoreError> {
    if !e.staged_key.starts_with(EDITS) {
        tracing::warn!(image_id = %e.image_id, key = %e.staged_key,
            "a settled edit names a key outside edits/; left alone");
        return Ok(());
    }
    ctx.backends.blobs.delete(&e.staged_key).await?;
    metrics::counter!("pinhole_edits_settled_total").increment(1);
    tracing::debug!(image_id = %e.image_id, task_id = %e.task_id, "staged edit result removed");
    Ok(())
}

/// Deletes `keys` of the content's set, its manifest last; then, should
/// the same bytes have been stored again meanwhile, asks for the set to be
/// made again for each image the catalog shows on them. Objects removed.
async fn remove_set(b: &Backends, sha256: &str, keys: &[String]) -> Result<u64, StoreError> {
    let manifest = manifest_key(sha256);
    for key in keys.iter().filter(|k| **k != manifest) {
        b.blobs.delete(key).await?;
    }
    b.blobs.delete(&manifest).await?;
    let mut again = Vec::new();
    for img in live_images(&b.db, sha256).await? {
        if original_stored(b.blobs.as_ref(), sha256, Some(&img.format)).await? {
            let ext = pinhole_media::Format::parse(&img.format).map_or("bin", |f| f.extension());
            again.push(pinhole_events::images::ProcessJob {
                image_id: img.image_id,
                task_id: None,
                owner_id: img.owner_id,
                original_key: original_key(sha256, ext),
                sha256: sha256.to_owned(),
                format: img.format,
                force: true,
                visibility: None,
                owner_private: None,
            });
        }
    }
    if !again.is_empty() {
        tracing::warn!(
            sha256,
            images = again.len(),
            "derivatives removed while the same bytes were stored again; making them again"
        );
        crate::backfill::enqueue(&b.bus, &again).await?;
    }
    Ok(keys.len() as u64)
}

/// Runs [`check`] with repair every `PINHOLE_BLOB_SWEEP_INTERVAL`.
pub async fn sweep(ctx: AppContext) {
    loop {
        tokio::time::sleep(ctx.settings.blob_sweep_interval).await;
        match check(&ctx.backends, ctx.settings.blob_orphan_grace, true).await {
            Ok(r) if r.removed > 0 || r.missing > 0 => tracing::warn!(
                removed = r.removed, missing = r.missing, examples = ?r.missing_examples,
                "derivative sweep removed orphans or found missing objects"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "derivative sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_content() {
        let sha = "ab".repeat(32);
        let key = derivative_key(&sha, "w640", "jpg");
        assert_eq!(derived_content(&key), Some(sha.as_str()));
        assert_eq!(derived_content(&manifest_key(&sha)), Some(sha.as_str()));
        assert_eq!(
            derived_content(&format!("{}t/abc.webp", derivative_prefix(&sha))),
            Some(sha.as_str())
        );
        assert_eq!(derived_content("derivatives/ab/short/w640.jpg"), None);
        assert_eq!(derived_content(&derivative_prefix(&sha)), None);
        assert_eq!(
            original_content(&original_key(&sha, "png")),
            Some(sha.as_str())
        );
        assert_eq!(original_content("originals/ab/nohash.png"), None);
        let staged = staged_edit_key(Uuid::nil(), &sha, "jpg");
        assert!(staged.starts_with(EDITS) && staged.ends_with(".jpg"));
        assert_eq!(staged_content(&staged), Some(sha.as_str()));
        assert!(PREFIXES.iter().any(|p| staged.starts_with(p)));
        assert!(PREFIXES.iter().any(|p| key.starts_with(p)));
    }
}
