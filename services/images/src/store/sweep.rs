//! The store against its references: objects nothing references (orphans:
//! a write that lost a race with a deletion, a transaction that failed after
//! its original was stored, an edit whose image went meanwhile) and
//! references whose object is gone (missing).
//!
//! Everything under `originals/`, `public/` and `derivatives/` belongs to
//! one content (its SHA-256 is in the key) and is referenced while that
//! content has a reference in `blobs`; parts under `uploads/{id}/` are
//! referenced by their unfinished upload. Objects younger than the grace
//! period are writes in flight and left alone. Orphaned contents are
//! removed under the same lock and marking as a collection, so an upload of
//! the same bytes at that moment waits and stores them again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use pinhole_blob::{BlobMeta, BlobStore};
use sea_orm::entity::prelude::*;
use sea_orm::{DatabaseConnection, QuerySelect};
use serde::Serialize;

use super::collect::CollectError;
use super::{lock, new_row};
use crate::entity::{blob, image, image_version, upload};

/// What [`check`] found.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Objects under the prefixes this role keeps.
    pub objects: u64,
    /// Objects with a reference.
    pub referenced: u64,
    /// Objects without one, older than the grace period.
    pub orphaned: u64,
    /// Objects without one, younger than the grace period (in flight).
    pub recent: u64,
    /// Orphans removed (with `repair`).
    pub removed: u64,
    /// References whose object is not stored.
    pub missing: u64,
    /// Objects under other prefixes (left alone).
    pub other: u64,
    /// Up to 20 orphaned keys, for the operator.
    pub orphan_examples: Vec<String>,
    /// Up to 20 missing keys.
    pub missing_examples: Vec<String>,
}

const EXAMPLES: usize = 20;

/// Who an object belongs to, from its key.
enum Owner<'a> {
    Content(&'a str),
    Upload,
    Other,
}

fn owner(key: &str) -> Owner<'_> {
    let mut parts = key.splitn(4, '/');
    let top = parts.next().unwrap_or_default();
    match top {
        "originals" | "public" => {
            let _shard = parts.next();
            let file = parts.next().unwrap_or_default();
            match file.split_once('.') {
                Some((sha, _)) if is_sha(sha) => Owner::Content(sha),
                _ => Owner::Other,
            }
        }
        "derivatives" => {
            let _shard = parts.next();
            match parts.next() {
                Some(sha) if is_sha(sha) => Owner::Content(sha),
                _ => Owner::Other,
            }
        }
        "uploads" => match parts.next() {
            Some(id) if !id.is_empty() => Owner::Upload,
            _ => Owner::Other,
        },
        _ => Owner::Other,
    }
}

fn is_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares the store with the references; with `repair`, removes the
/// orphans older than `grace`. Sets the `pinhole_blobs_*` gauges.
pub async fn check(
    db: &DatabaseConnection,
    blobs: &dyn BlobStore,
    grace: Duration,
    repair: bool,
) -> Result<Report, CollectError> {
    // The listing first: a reference made after it is not taken for missing
    // (its object was written before the reference).
    let listed = blobs.list("").await?;
    let stored: HashSet<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    let rows: HashMap<String, blob::Model> = blob::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.sha256.clone(), b))
        .collect();
    let uploads: Vec<upload::Model> = upload::Entity::find().all(db).await?;
    let parts: HashSet<String> = uploads
        .iter()
        .flat_map(|u| serde_json::from_str::<Vec<String>>(&u.chunks).unwrap_or_default())
        .collect();

    let mut report = Report::default();
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut orphan_contents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut orphan_parts: Vec<String> = Vec::new();
    for meta in &listed {
        let live = match owner(&meta.key) {
            Owner::Content(sha) => rows.get(sha).is_some_and(|b| b.ref_count > 0),
            Owner::Upload => parts.contains(&meta.key),
            Owner::Other => {
                report.other += 1;
                continue;
            }
        };
        report.objects += 1;
        if live {
            report.referenced += 1;
            continue;
        }
        if !older_than(meta, cutoff) {
            report.recent += 1;
            continue;
        }
        report.orphaned += 1;
        if report.orphan_examples.len() < EXAMPLES {
            report.orphan_examples.push(meta.key.clone());
        }
        match owner(&meta.key) {
            Owner::Content(sha) => orphan_contents
                .entry(sha.to_owned())
                .or_default()
                .push(meta.key.clone()),
            _ => orphan_parts.push(meta.key.clone()),
        }
    }

    let mut missing = |key: &str| {
        if !stored.contains(key) {
            report.missing += 1;
            if report.missing_examples.len() < EXAMPLES {
                report.missing_examples.push(key.to_owned());
            }
        }
    };
    for row in rows.values().filter(|b| b.ref_count > 0) {
        missing(&row.blob_key);
    }
    for key in &parts {
        missing(key);
    }
    for key in derivative_references(db).await? {
        missing(&key);
    }

    if repair {
        for (sha, keys) in &orphan_contents {
            report.removed += remove_content(db, blobs, sha, keys).await?;
        }
        for key in &orphan_parts {
            blobs.delete(key).await?;
            report.removed += 1;
        }
        metrics::counter!("pinhole_blobs_orphans_removed_total").increment(report.removed);
    }
    metrics::gauge!("pinhole_blobs_objects").set(report.objects as f64);
    metrics::gauge!("pinhole_blobs_orphaned").set((report.orphaned - report.removed) as f64);
    metrics::gauge!("pinhole_blobs_missing").set(report.missing as f64);
    Ok(report)
}

fn older_than(meta: &BlobMeta, cutoff: SystemTime) -> bool {
    meta.modified.is_none_or(|m| m <= cutoff)
}

/// The derivative keys that images (and their kept versions) list, for
/// contents that are referenced.
async fn derivative_references(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let mut keys = Vec::new();
    let lists: Vec<Option<String>> = image::Entity::find()
        .select_only()
        .column(image::Column::Derivatives)
        .into_tuple()
        .all(db)
        .await?;
    let versions: Vec<Option<String>> = image_version::Entity::find()
        .select_only()
        .column(image_version::Column::Derivatives)
        .into_tuple()
        .all(db)
        .await?;
    for list in lists.into_iter().chain(versions).flatten() {
        let stored: Vec<pinhole_events::images::Derivative> =
            serde_json::from_str(&list).unwrap_or_default();
        keys.extend(stored.into_iter().map(|d| d.key));
    }
    Ok(keys)
}

/// Removes an orphaned content's objects under its lock: a row is made (or
/// kept) marked as being collected, so that an upload of the same bytes
/// waits; nothing is removed if the content got a reference meanwhile.
async fn remove_content(
    db: &DatabaseConnection,
    blobs: &dyn BlobStore,
    sha256: &str,
    keys: &[String],
) -> Result<u64, CollectError> {
    let txn = pinhole_db::begin_write(db).await?;
    lock(&txn, sha256).await?;
    let now = chrono::Utc::now();
    match blob::Entity::find_by_id(sha256.to_owned())
        .one(&txn)
        .await?
    {
        Some(b) if b.ref_count > 0 => return Ok(0),
        Some(_) => {
            blob::Entity::update_many()
                .col_expr(
                    blob::Column::CollectingSince,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(blob::Column::Sha256.eq(sha256))
                .exec(&txn)
                .await?;
        }
        None => {
            let format = keys
                .iter()
                .find_map(|k| k.strip_prefix("originals/"))
                .and_then(|k| k.rsplit_once('.'))
                .and_then(|(_, ext)| pinhole_media::Format::from_extension(ext))
                .unwrap_or(pinhole_media::Format::Jpeg);
            new_row(sha256, format, 0, 0, Some(now))
                .insert(&txn)
                .await?;
        }
    }
    txn.commit().await?;
    for key in keys {
        blobs.delete(key).await?;
    }
    super::collect(db, blobs, sha256).await?;
    Ok(keys.len() as u64)
}
