//! This role's part of the store against its references: objects nothing
//! references (orphans: a write that lost a race with a deletion, a
//! transaction that failed after its original was stored, an edit whose
//! image went meanwhile) and references whose object is gone (missing).
//!
//! This role checks only its own prefixes ([`PREFIXES`]): everything under
//! `originals/` and `public/` belongs to one content (its SHA-256 is in the
//! key) and is referenced while that content has a reference in `blobs`;
//! parts under `uploads/{id}/` are referenced by their unfinished upload.
//! (The thumbnails role checks what it derived, under its own prefixes.)
//! Objects younger than the grace period are writes in flight and left
//! alone. Orphaned contents are removed under the same lock and marking as
//! a collection (which tells the thumbnails role by `content.released`),
//! so an upload of the same bytes at that moment waits and stores them
//! again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use pinhole_blob::{BlobMeta, BlobStore, CheckReport};
use pinhole_db::Outbox;
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;

use super::collect::CollectError;
use super::{lock, new_row};
use crate::entity::{blob, upload};

/// What [`check`] found.
pub type Report = CheckReport;

/// The prefixes this role owns and checks.
pub const PREFIXES: &[&str] = pinhole_events::images::IMAGES_PREFIXES;

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

/// Compares this role's prefixes with the references; with `repair`,
/// removes the orphans older than `grace`. Sets the `pinhole_blobs_*`
/// gauges (`role="images"`); `outbox` carries the `content.released` of
/// what is removed.
pub async fn check(
    db: &DatabaseConnection,
    blobs: &dyn BlobStore,
    outbox: &Outbox,
    grace: Duration,
    repair: bool,
) -> Result<Report, CollectError> {
    // The listing first: a reference made after it is not taken for missing
    // (its object was written before the reference).
    let mut listed = Vec::new();
    for prefix in PREFIXES {
        listed.extend(blobs.list(prefix).await?);
    }
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
        report.orphan(&meta.key);
        match owner(&meta.key) {
            Owner::Content(sha) => orphan_contents
                .entry(sha.to_owned())
                .or_default()
                .push(meta.key.clone()),
            _ => orphan_parts.push(meta.key.clone()),
        }
    }

    for row in rows.values().filter(|b| b.ref_count > 0) {
        if !stored.contains(row.blob_key.as_str()) {
            report.missing(&row.blob_key);
        }
    }
    for key in &parts {
        if !stored.contains(key.as_str()) {
            report.missing(key);
        }
    }

    if repair {
        for (sha, keys) in &orphan_contents {
            report.removed += remove_content(db, blobs, outbox, sha, keys).await?;
        }
        for key in &orphan_parts {
            blobs.delete(key).await?;
            report.removed += 1;
        }
        metrics::counter!("pinhole_blobs_orphans_removed_total", "role" => "images")
            .increment(report.removed);
    }
    metrics::gauge!("pinhole_blobs_objects", "role" => "images").set(report.objects as f64);
    metrics::gauge!("pinhole_blobs_orphaned", "role" => "images")
        .set(report.orphaned.saturating_sub(report.removed) as f64);
    metrics::gauge!("pinhole_blobs_missing", "role" => "images").set(report.missing as f64);
    Ok(report)
}

fn older_than(meta: &BlobMeta, cutoff: SystemTime) -> bool {
    meta.modified.is_none_or(|m| m <= cutoff)
}

/// Removes an orphaned content's objects under its lock: a row is made (or
/// kept) marked as being collected, so that an upload of the same bytes
/// waits; nothing is removed if the content got a reference meanwhile.
async fn remove_content(
    db: &DatabaseConnection,
    blobs: &dyn BlobStore,
    outbox: &Outbox,
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
    super::collect(db, blobs, outbox, sha256).await?;
    Ok(keys.len() as u64)
}
