//! `pinhole thumbnails backfill`: queue re-processing of stored images on the
//! background topic (so it never delays fresh uploads), then follow their
//! progress.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pinhole_bus::{Message, SharedBus};
use pinhole_events::OutgoingEvent;
use pinhole_events::images::{ProcessJob, ReprocessJob};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};
use uuid::Uuid;

use crate::pipeline::PIPELINE;

/// What to re-process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    /// Every processed (or failed) image, not only those made by an older
    /// pipeline; their derivatives are made again.
    pub all: bool,
    /// At most this many.
    pub limit: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("bus: {0}")]
    Bus(#[from] pinhole_bus::BusError),
}

/// Images whose derivatives are missing or older than this pipeline (all
/// processed ones with `all`); images still being processed are left to
/// their upload.
pub async fn select(db: &DatabaseConnection, sel: Selection) -> Result<Vec<ProcessJob>, DbErr> {
    let mut sql = String::from(
        "SELECT id, owner_id, sha256, format FROM images WHERE status IN ('ready', 'failed')",
    );
    if !sel.all {
        sql.push_str(&format!(" AND (pipeline IS NULL OR pipeline < {PIPELINE})"));
    }
    sql.push_str(" ORDER BY id");
    if let Some(n) = sel.limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    let backend = db.get_database_backend();
    let rows = db.query_all(Statement::from_string(backend, sql)).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let sha256: String = row.try_get("", "sha256")?;
        let format: String = row.try_get("", "format")?;
        let ext = pinhole_media::Format::parse(&format)
            .map(|f| f.extension())
            .unwrap_or("bin");
        jobs.push(ProcessJob {
            image_id: row.try_get("", "id")?,
            task_id: None,
            owner_id: row.try_get("", "owner_id")?,
            original_key: pinhole_events::images::original_key(&sha256, ext),
            sha256,
            format,
            force: sel.all,
        });
    }
    Ok(jobs)
}

/// Puts the jobs on the background topic (keyed by image, in batches).
pub async fn enqueue(bus: &SharedBus, jobs: &[ProcessJob]) -> Result<(), BackfillError> {
    for chunk in jobs.chunks(256) {
        let encoded: Vec<(OutgoingEvent, Vec<u8>)> = chunk
            .iter()
            .map(|j| {
                let event = OutgoingEvent::of(&ReprocessJob { job: j.clone() });
                let payload = event.envelope.to_json();
                (event, payload)
            })
            .collect();
        let messages: Vec<Message<'_>> = encoded
            .iter()
            .map(|(event, payload)| Message {
                topic: event.topic,
                key: event.key.as_bytes(),
                payload,
            })
            .collect();
        bus.publish_all(&messages).await?;
    }
    Ok(())
}

/// How far a backfill started at `since` has come: images reported on
/// (processed or failed) and, of those, failed.
pub async fn progress(
    db: &DatabaseConnection,
    ids: &[Uuid],
    since: DateTime<Utc>,
) -> Result<(u64, u64), DbErr> {
    let backend = db.get_database_backend();
    let (mut reported, mut failed) = (0u64, 0u64);
    for chunk in ids.chunks(500) {
        let marks = match backend {
            DatabaseBackend::Postgres => (1..=chunk.len())
                .map(|i| format!("${}", i + 1))
                .collect::<Vec<_>>()
                .join(","),
            _ => vec!["?"; chunk.len()].join(","),
        };
        let first = if backend == DatabaseBackend::Postgres {
            "$1"
        } else {
            "?"
        };
        let sql = format!(
            "SELECT COUNT(*) AS reported, \
             SUM(CASE WHEN pipeline IS NULL OR pipeline < {PIPELINE} THEN 1 ELSE 0 END) AS failed \
             FROM images WHERE processed_at >= {first} AND id IN ({marks})"
        );
        let mut values: Vec<sea_orm::Value> = vec![since.into()];
        values.extend(chunk.iter().map(|id| sea_orm::Value::from(*id)));
        if let Some(row) = db
            .query_one(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            reported += u64::try_from(row.try_get::<i64>("", "reported")?).unwrap_or(0);
            failed +=
                u64::try_from(row.try_get::<Option<i64>>("", "failed")?.unwrap_or(0)).unwrap_or(0);
        }
    }
    Ok((reported, failed))
}

/// Polls [`progress`] until every image has been reported on or `deadline`
/// passes, calling `tick(reported, failed)` on each change.
pub async fn follow(
    db: &DatabaseConnection,
    ids: &[Uuid],
    since: DateTime<Utc>,
    deadline: Duration,
    mut tick: impl FnMut(u64, u64),
) -> Result<(u64, u64), DbErr> {
    let end = tokio::time::Instant::now() + deadline;
    let mut last = (u64::MAX, 0);
    loop {
        let now = progress(db, ids, since).await?;
        if now != last {
            tick(now.0, now.1);
            last = now;
        }
        if now.0 >= ids.len() as u64 || tokio::time::Instant::now() >= end {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
