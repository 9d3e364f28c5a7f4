//! The workers. Urgent ones (one group member per core on the urgent topic,
//! each taking up to a core's worth of jobs at once, which then wait for a
//! core in the order they came) take fresh uploads (`image.uploaded`) and
//! edits (`image.edit_requested`);
//! background ones (their own group on the background topic, with at most
//! cores − 1 images at a time, so one core is always left to fresh uploads)
//! take re-processing and backfills (`image.reprocess`).
//!
//! For an image: report `image.processing`, decode once, store the standard
//! derivatives under content-addressed keys (the original's SHA-256) with a
//! manifest, report `image.processed` (or `image.processing_failed` with the
//! reason). At-least-once: a job is committed only after its report is
//! published, so a worker killed half-way leaves it to the next one; a
//! replay finds the manifest and reports the same derivatives without
//! making them again. Each image gets at most `processing_time_limit`.
//!
//! For an edit: apply the operations to the base version, make the result's
//! derivative set, stage the result under `edits/` (this role's; the images
//! role copies it into its `originals/` and answers `image.edit_settled`,
//! on which the catalog's consumer removes it) and report `image.edited`.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use pinhole_bus::{HandleError, Message, Record};
use pinhole_events::images::original_key;
use pinhole_events::images::{
    Derivative, EditJob, Edited, ProcessJob, Processed, Processing, ProcessingFailed, ReprocessJob,
    Source,
};
use pinhole_events::{Envelope, Event, OutgoingEvent, topics};
use pinhole_http::AppContext;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::pipeline::{self, PIPELINE};
use crate::store::{derivative_key, manifest_key, staged_edit_key};

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
}

/// Fresh uploads: one image per core at a time.
static URGENT: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(cores())));
/// Edits and background work share what leaves a core to fresh uploads,
/// so that no number of edits holds up the thumbnails of new photos.
static BACKGROUND: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(cores().saturating_sub(1).max(1))));

/// Which queue a worker serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Urgent,
    Edits,
    Background,
}

impl Lane {
    fn pool(self) -> Arc<Semaphore> {
        match self {
            Lane::Urgent => Arc::clone(&URGENT),
            Lane::Edits | Lane::Background => Arc::clone(&BACKGROUND),
        }
    }
}

/// What a finished derivative set is recorded as, beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub pipeline: u32,
    pub width: u32,
    pub height: u32,
    pub derivatives: Vec<Derivative>,
    pub analysis: serde_json::Value,
}

/// Publishes a report straight to the bus (this role keeps no outbox: a
/// report lost with a crash is made again when the job is redelivered).
async fn publish<E: Event>(ctx: &AppContext, report: &E) -> Result<(), HandleError> {
    let event = OutgoingEvent::of(report);
    let payload = event.envelope.to_json();
    ctx.backends
        .bus
        .publish_all(&[Message {
            topic: event.topic,
            key: event.key.as_bytes(),
            payload: &payload,
        }])
        .await?;
    Ok(())
}

/// `image.processing`: a worker took the job.
async fn started(
    ctx: &AppContext,
    image_id: Uuid,
    task_id: Option<Uuid>,
) -> Result<(), HandleError> {
    let report = Processing { image_id, task_id };
    publish(ctx, &report).await
}

/// The bytes at `key`; `None` when they are gone.
async fn fetch(ctx: &AppContext, key: &str) -> Result<Option<Bytes>, HandleError> {
    match ctx.backends.blobs.get(key, None).await {
        Ok(body) => Ok(Some(body.bytes().await?)),
        Err(pinhole_blob::BlobError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Runs `work` on a blocking thread under the lane's pool and the time
/// limit. The permit goes with the thread, so an image that overran its
/// limit still counts against the pool until it really stops.
async fn run_limited<T: Send + 'static>(
    pool: Arc<Semaphore>,
    limit: std::time::Duration,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<Result<T, String>, HandleError> {
    let permit = pool
        .acquire_owned()
        .await
        .map_err(|e| HandleError::Retry(e.to_string()))?;
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    });
    match tokio::time::timeout(limit, job).await {
        Ok(Ok(result)) => Ok(result),
        // A panic in a decoder: the image is at fault, not the worker.
        Ok(Err(e)) => Ok(Err(format!("the image could not be processed ({e})"))),
        Err(_) => Ok(Err(format!(
            "processing took longer than the limit of {} s",
            limit.as_secs_f64()
        ))),
    }
}

/// Makes (or finds, from an earlier run) the derivative set of an original.
async fn derive(
    ctx: &AppContext,
    lane: Lane,
    sha256: &str,
    original: Option<Bytes>,
    original_key: &str,
    force: bool,
) -> Result<Result<Manifest, String>, HandleError> {
    if !force
        && let Some(raw) = fetch(ctx, &manifest_key(sha256)).await?
        && let Ok(m) = serde_json::from_slice::<Manifest>(&raw)
        && m.pipeline == PIPELINE
    {
        return Ok(Ok(m));
    }
    let original = match original {
        Some(b) => b,
        None => match fetch(ctx, original_key).await? {
            Some(b) => b,
            None => return Ok(Err("the original is gone".into())),
        },
    };
    let max_pixels = ctx.settings.max_image_pixels;
    let out = match run_limited(lane.pool(), ctx.settings.processing_time_limit, move || {
        pipeline::process(&original, max_pixels)
    })
    .await?
    {
        Ok(out) => out,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut derivatives = Vec::with_capacity(out.made.len());
    for m in out.made {
        let key = derivative_key(sha256, m.name, m.format.extension());
        pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), &key, m.bytes).await?;
        derivatives.push(Derivative {
            name: m.name.to_owned(),
            key,
            width: m.width,
            height: m.height,
            format: m.format.as_str().to_owned(),
            on_request: false,
        });
    }
    // The rest are made when first asked for (see `crate::on_request`).
    derivatives.extend(out.later.into_iter().map(|p| Derivative {
        name: p.name.to_owned(),
        key: derivative_key(sha256, p.name, p.format.extension()),
        width: p.width,
        height: p.height,
        format: p.format.as_str().to_owned(),
        on_request: true,
    }));
    let manifest = Manifest {
        pipeline: PIPELINE,
        width: out.width,
        height: out.height,
        derivatives,
        analysis: serde_json::to_value(&out.analysis)
            .map_err(|e| HandleError::Skip(e.to_string()))?,
    };
    // Last: its presence means the whole set is stored.
    let raw = serde_json::to_vec(&manifest).map_err(|e| HandleError::Skip(e.to_string()))?;
    pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), &manifest_key(sha256), raw).await?;
    Ok(Ok(manifest))
}

async fn process(ctx: &AppContext, lane: Lane, job: ProcessJob) -> Result<(), HandleError> {
    tracing::info!(image_id = %job.image_id, task_id = ?job.task_id, "making derivatives");
    started(ctx, job.image_id, job.task_id).await?;
    let started = std::time::Instant::now();
    let mut made = derive(ctx, lane, &job.sha256, None, &job.original_key, job.force).await?;
    if let Ok(m) = &made {
        // Only for content the image still shows (the job's).
        crate::catalog::made(&ctx.backends.db, &job, m.width, m.height).await?;
        // A release of the same bytes may have removed the set since it
        // was found or made (the removal looks at the catalog only after
        // deleting the manifest: see `store`); then it is made again.
        if !pinhole_blob::exists(ctx.backends.blobs.as_ref(), &manifest_key(&job.sha256)).await? {
            tracing::warn!(image_id = %job.image_id, "derivatives removed under the worker; making them again");
            made = derive(ctx, lane, &job.sha256, None, &job.original_key, true).await?;
        }
    }
    match made {
        Err(reason) => {
            tracing::info!(image_id = %job.image_id, %reason, "image cannot be processed");
            let failed = ProcessingFailed {
                image_id: job.image_id,
                task_id: job.task_id,
                reason,
            };
            publish(ctx, &failed).await
        }
        Ok(m) => {
            let done = Processed {
                image_id: job.image_id,
                task_id: job.task_id,
                sha256: job.sha256.clone(),
                derivatives: m.derivatives,
                analysis: Some(m.analysis),
                pipeline: m.pipeline,
            };
            publish(ctx, &done).await?;
            metrics::histogram!("pinhole_thumbnails_seconds").record(started.elapsed());
            tracing::info!(image_id = %job.image_id, ms = started.elapsed().as_millis() as u64, "derivatives made");
            Ok(())
        }
    }
}

async fn edit(ctx: &AppContext, job: EditJob) -> Result<(), HandleError> {
    let fail = |reason: String| ProcessingFailed {
        image_id: job.image_id,
        task_id: Some(job.task_id),
        reason,
    };
    started(ctx, job.image_id, Some(job.task_id)).await?;
    let ops: Vec<pinhole_transform::EditOp> = match serde_json::from_value(job.operations.clone()) {
        Ok(ops) => ops,
        Err(e) => {
            let failed = fail(format!("the operations cannot be read: {e}"));
            return publish(ctx, &failed).await;
        }
    };
    let Some(base) = fetch(ctx, &job.base.original_key).await? else {
        let failed = fail("the original is gone".into());
        return publish(ctx, &failed).await;
    };
    let watermark = match &job.watermark {
        None => None,
        Some(w) => match fetch(ctx, &w.original_key).await? {
            Some(b) => Some(b),
            None => {
                let failed = fail("the watermark image is gone".into());
                return publish(ctx, &failed).await;
            }
        },
    };
    let max_pixels = ctx.settings.max_image_pixels;
    let made = run_limited(
        Lane::Edits.pool(),
        ctx.settings.processing_time_limit,
        move || pipeline::edit(&base, &ops, watermark.as_deref(), max_pixels),
    )
    .await?;
    let edited = match made {
        Ok(e) => e,
        Err(reason) => {
            return publish(ctx, &fail(reason)).await;
        }
    };
    // The new original is the images role's to store (under its
    // `originals/`): the bytes are staged under this role's `edits/` for it
    // to take, and removed when it says it is done (`image.edit_settled`).
    let ext = edited.format.extension();
    let original = Source {
        sha256: edited.sha256.clone(),
        format: edited.format.as_str().to_owned(),
        original_key: original_key(&edited.sha256, ext),
    };
    let staged_key = staged_edit_key(job.task_id, &edited.sha256, ext);
    let size = edited.bytes.len() as u64;
    let bytes = Bytes::from(edited.bytes);
    let m = match derive(
        ctx,
        Lane::Edits,
        &original.sha256,
        Some(bytes.clone()),
        &staged_key,
        false,
    )
    .await?
    {
        Ok(m) => m,
        Err(reason) => {
            return publish(ctx, &fail(reason)).await;
        }
    };
    pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), &staged_key, bytes).await?;
    let done = Edited {
        image_id: job.image_id,
        task_id: job.task_id,
        base_version: job.base_version,
        original,
        staged_key: Some(staged_key),
        width: m.width,
        height: m.height,
        size,
        derivatives: m.derivatives,
        analysis: Some(m.analysis),
        pipeline: m.pipeline,
        operations: job.operations,
    };
    publish(ctx, &done).await?;
    tracing::info!(image_id = %job.image_id, task_id = %job.task_id, "edit made");
    Ok(())
}

async fn handle(ctx: &AppContext, lane: Lane, record: Record) -> Result<(), HandleError> {
    let env = Envelope::from_json(&record.payload)
        .map_err(|e| HandleError::Skip(format!("not an event: {e}")))?;
    let bad = |e: pinhole_events::DecodeError| HandleError::Skip(format!("bad job: {e}"));
    match env.kind.as_str() {
        <ProcessJob as Event>::TYPE => {
            let job: ProcessJob = env.decode().map_err(bad)?;
            process(ctx, lane, job).await
        }
        <ReprocessJob as Event>::TYPE => {
            let job: ReprocessJob = env.decode().map_err(bad)?;
            process(ctx, lane, job.job).await
        }
        <EditJob as Event>::TYPE => {
            let job: EditJob = env.decode().map_err(bad)?;
            edit(ctx, job).await
        }
        _ => Ok(()),
    }
}

/// Consumes the lane's topic until the task is aborted.
pub async fn run(ctx: AppContext, lane: Lane) {
    let (group, topic) = match lane {
        Lane::Urgent => (crate::GROUP, topics::THUMBNAILS_URGENT),
        Lane::Edits => (crate::EDITS_GROUP, topics::THUMBNAILS_EDITS),
        Lane::Background => (crate::BACKGROUND_GROUP, topics::THUMBNAILS_BACKGROUND),
    };
    let handler_ctx = ctx.clone();
    let parking =
        pinhole_db::dead_letters::parking(ctx.backends.db.clone(), ctx.settings.event_max_attempts);
    let handler = move |record| {
        let ctx = handler_ctx.clone();
        async move { handle(&ctx, lane, record).await }
    };
    let bus = ctx.backends.bus.clone();
    match lane {
        // Fresh uploads wait for a core, not for each other: one member's
        // jobs are taken as they come (up to a core's worth each), so an
        // upload never queues behind another of its partition while a core
        // is free.
        Lane::Urgent => {
            pinhole_bus::consume_concurrently(
                bus,
                group.to_owned(),
                vec![topic],
                parking,
                cores(),
                handler,
            )
            .await;
        }
        Lane::Edits | Lane::Background => {
            pinhole_bus::consume(bus, group.to_owned(), vec![topic], parking, handler).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_image_over_its_time_limit_fails_and_keeps_its_permit() {
        let pool = Arc::new(Semaphore::new(1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let outcome = run_limited(Arc::clone(&pool), Duration::from_millis(50), move || {
            let _ = wait.recv_timeout(Duration::from_secs(5));
            Ok(())
        })
        .await
        .map_err(|_| "retry")
        .expect("no retry");
        let reason = outcome.expect_err("over the limit");
        assert!(reason.contains("longer than the limit"), "{reason}");
        // The overrunning thread still holds the pool's only permit.
        assert_eq!(pool.available_permits(), 0);
        release.send(()).expect("send");
        let back = tokio::time::timeout(Duration::from_secs(5), pool.acquire())
            .await
            .expect("permit back")
            .expect("open");
        drop(back);
        let ok = run_limited(pool, Duration::from_secs(5), || Ok(7))
            .await
            .map_err(|_| "retry")
            .expect("no retry");
        assert_eq!(ok, Ok(7));
    }
}
