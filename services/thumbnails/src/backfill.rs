//! `pinhole thumbnails backfill`: queue re-processing of stored images on the
//! background topic (so it never delays fresh uploads), then follow their
//! progress.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pinhole_bus::{Message, SharedBus};
use pinhole_events::OutgoingEvent;
use pinhole_events::images::{ProcessJob, ReprocessJob};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::image;
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
    let mut query = image::Entity::find()
        .filter(image::Column::Status.is_in([image::Status::Ready, image::Status::Failed]))
        .order_by_asc(image::Column::ImageId);
    if !sel.all {
        query = query.filter(
            Condition::any()
                .add(image::Column::Pipeline.is_null())
                .add(image::Column::Pipeline.lt(PIPELINE)),
        );
    }
    if let Some(n) = sel.limit {
        query = query.limit(n);
    }
    Ok(query
        .all(db)
        .await?
        .into_iter()
        .map(|img| {
            let ext = pinhole_media::Format::parse(&img.format)
                .map(|f| f.extension())
                .unwrap_or("bin");
            ProcessJob {
                image_id: img.image_id,
                task_id: None,
                owner_id: img.owner_id,
                original_key: pinhole_events::images::original_key(&img.sha256, ext),
                sha256: img.sha256,
                format: img.format,
                force: sel.all,
                visibility: None,
                owner_private: None,
            }
        })
        .collect())
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
    let (mut reported, mut failed) = (0u64, 0u64);
    for chunk in ids.chunks(500) {
        let rows = image::Entity::find()
            .filter(image::Column::ImageId.is_in(chunk.iter().copied()))
            .filter(image::Column::ReportedAt.gte(since))
            .all(db)
            .await?;
        reported += rows.len() as u64;
        failed += rows
            .iter()
            .filter(|r| {
                r.pipeline
                    .is_none_or(|p| i64::from(p) < i64::from(PIPELINE))
            })
            .count() as u64;
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
