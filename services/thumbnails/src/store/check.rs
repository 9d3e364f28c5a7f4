//! This role's part of the store against what it knows (`pinhole blobs
//! check` runs it beside the images role's check of `originals/`):
//!
//! - `derivatives/`: a content's set is referenced while an image of the
//!   catalog that is not deleted shows that content, while the images role
//!   stores its original (a kept older version of an edited image, an
//!   upload the catalog has not heard of yet), or while an edit result of
//!   that content is staged. Otherwise, once older than the grace period,
//!   it is orphaned. A ready image of the catalog whose set has no
//!   manifest is missing it.
//! - `edits/`: staged edit results wait for their `image.edit_settled`;
//!   one older than the grace period plus [`STAGED_MARGIN`] was never
//!   settled and is orphaned.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use pinhole_blob::{BlobMeta, CheckReport};
use pinhole_http::Backends;
use sea_orm::entity::prelude::*;

use super::{
    EDITS, STAGED_MARGIN, StoreError, derived_content, manifest_key, original_content, remove_set,
    staged_content,
};
use crate::entity::image;

/// What [`check`] found.
pub type Report = CheckReport;

/// The contents of the catalog's images that are not deleted (only the
/// ready ones with `ready`).
async fn live_contents(b: &Backends, ready: bool) -> Result<Vec<String>, DbErr> {
    let mut query = image::Entity::find().filter(image::Column::Status.ne(image::Status::Deleted));
    if ready {
        query = query.filter(image::Column::Status.eq(image::Status::Ready));
    }
    Ok(query
        .all(&b.db)
        .await?
        .into_iter()
        .map(|i| i.sha256)
        .collect())
}

fn older_than(meta: &BlobMeta, cutoff: SystemTime) -> bool {
    meta.modified.is_none_or(|m| m <= cutoff)
}

fn cutoff(age: Duration) -> SystemTime {
    SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Compares `derivatives/` and `edits/` with the catalog and the stored
/// originals; with `repair`, removes the orphans (derivative sets as a
/// released content's are, see [`super::remove_set`]). Sets the
/// `pinhole_blobs_*` gauges with `role="thumbnails"`.
pub async fn check(b: &Backends, grace: Duration, repair: bool) -> Result<Report, StoreError> {
    // What holds a set is read after the set is listed: a set's objects
    // are written after its original (or staged result) is stored and
    // before its image is recorded. What was ready is read before: a ready
    // image's manifest was written before it was recorded ready.
    let ready: BTreeSet<String> = live_contents(b, true).await?.into_iter().collect();
    let derived = b.blobs.list("derivatives/").await?;
    let staged = b.blobs.list(EDITS).await?;
    let originals = b.blobs.list("originals/").await?;
    let live: Vec<String> = live_contents(b, false).await?;
    let live: HashSet<&str> = live.iter().map(String::as_str).collect();
    let held: HashSet<&str> = originals
        .iter()
        .filter_map(|m| original_content(&m.key))
        .chain(staged.iter().filter_map(|m| staged_content(&m.key)))
        .collect();
    let stored: HashSet<&str> = derived.iter().map(|m| m.key.as_str()).collect();

    let mut report = Report::default();
    let derived_cutoff = cutoff(grace);
    let mut orphan_sets: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for meta in &derived {
        let Some(sha) = derived_content(&meta.key) else {
            report.other += 1;
            continue;
        };
        report.objects += 1;
        if live.contains(sha) || held.contains(sha) {
            report.referenced += 1;
        } else if !older_than(meta, derived_cutoff) {
            report.recent += 1;
        } else {
            report.orphan(&meta.key);
            orphan_sets.entry(sha).or_default().push(meta.key.clone());
        }
    }
    let staged_cutoff = cutoff(grace.saturating_add(STAGED_MARGIN));
    let mut orphan_staged = Vec::new();
    for meta in &staged {
        report.objects += 1;
        if older_than(meta, staged_cutoff) {
            report.orphan(&meta.key);
            orphan_staged.push(meta.key.clone());
        } else {
            report.recent += 1;
        }
    }
    for sha in &ready {
        let manifest = manifest_key(sha);
        if !stored.contains(manifest.as_str()) {
            report.missing(&manifest);
        }
    }

    if repair {
        let (mut sets, mut edits) = (0, 0);
        for (sha, keys) in &orphan_sets {
            sets += remove_set(b, sha, keys).await?;
        }
        for key in &orphan_staged {
            b.blobs.delete(key).await?;
            edits += 1;
        }
        report.removed = sets + edits;
        for (prefix, n) in [("derivatives", sets), ("edits", edits)] {
            metrics::counter!("pinhole_blobs_orphans_removed_total",
                "role" => "thumbnails", "prefix" => prefix)
            .increment(n);
        }
    }
    metrics::gauge!("pinhole_blobs_objects", "role" => "thumbnails").set(report.objects as f64);
    metrics::gauge!("pinhole_blobs_orphaned", "role" => "thumbnails")
        .set(report.orphaned.saturating_sub(report.removed) as f64);
    metrics::gauge!("pinhole_blobs_missing", "role" => "thumbnails").set(report.missing as f64);
    Ok(report)
}
