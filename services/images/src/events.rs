//! What the role does with the events it consumes: the thumbnails role's
//! progress reports move tasks forward, and a deleted account's images are
//! removed. (The events it sends are made in [`crate::outgoing`].)

use chrono::Utc;
use pinhole_bus::{HandleError, Record};
use pinhole_events::images::{
    self as kinds, EditSettled, Edited, Processed, Processing, ProcessingFailed,
};
use pinhole_events::{Envelope, OutgoingEvent};
use pinhole_http::AppContext;
use sea_orm::ActiveValue::Set;
use sea_orm::IntoActiveModel;
use sea_orm::entity::prelude::*;

use crate::entity::{image, task};
use crate::outgoing::record;
use crate::tasks;

fn payload<E: pinhole_events::Event>(env: &Envelope) -> Result<E, HandleError> {
    env.decode::<E>()
        .map_err(|e| HandleError::Skip(e.to_string()))
}

/// Handles one record of `pinhole.images` or `pinhole.users`.
pub async fn handle(
    ctx: &AppContext,
    purges: &crate::purge::Purges,
    record: Record,
) -> Result<(), HandleError> {
    let env = Envelope::from_json(&record.payload)
        .map_err(|e| HandleError::Skip(format!("not an event: {e}")))?;
    match env.kind.as_str() {
        kinds::PROCESSING => {
            let p: Processing = payload(&env)?;
            let Some(task_id) = p.task_id else {
                return Ok(());
            };
            task::Entity::update_many()
                .col_expr(
                    task::Column::Status,
                    sea_orm::sea_query::Expr::value(task::Status::Processing),
                )
                .col_expr(
                    task::Column::UpdatedAt,
                    sea_orm::sea_query::Expr::value(Utc::now()),
                )
                .filter(task::Column::Id.eq(task_id))
                .filter(task::Column::Status.eq(task::Status::Queued))
                .exec(&ctx.backends.db)
                .await?;
            tasks::notify(task_id);
        }
        kinds::PROCESSED => {
            let p: Processed = payload(&env)?;
            finish(ctx, p.image_id, p.task_id, Outcome::Processed(p)).await?;
        }
        kinds::EDITED => {
            let e: Edited = payload(&env)?;
            finish(ctx, e.image_id, Some(e.task_id), Outcome::Edited(e.clone())).await?;
            // Applied, failed, abandoned or a replay: the staged copy is
            // not needed any more.
            settle(ctx, &e).await?;
        }
        kinds::PROCESSING_FAILED => {
            let p: ProcessingFailed = payload(&env)?;
            finish(ctx, p.image_id, p.task_id, Outcome::Failed(p.reason)).await?;
        }
        // The users role's events feed this role's read model.
        _ => {
            if let Some(deleted) = crate::read_model::apply(ctx, &env).await? {
                purges.request(ctx, deleted).await?;
            }
        }
    }
    Ok(())
}

async fn tags_of<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Vec<String>, HandleError> {
    Ok(crate::present::tags_of(conn, &[id])
        .await
        .map_err(|e| HandleError::Retry(e.message))?
        .remove(&id)
        .unwrap_or_default())
}

/// A backfill's report arrived (it counts progress by `processed_at`).
async fn mark_attempted<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: Uuid,
    now: chrono::DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    image::Entity::update_many()
        .col_expr(
            image::Column::ProcessedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(image::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Whether a re-processing changed what others keep of an image: its
/// status, derivatives or analysis (compared as JSON, not as text).
fn reprocessed_differently(before: &image::Model, after: &image::Model) -> bool {
    let json = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    before.status != after.status
        || json(&before.derivatives) != json(&after.derivatives)
        || json(&before.analysis) != json(&after.analysis)
}

/// What the thumbnails role reported.
enum Outcome {
    Processed(Processed),
    Edited(Edited),
    Failed(String),
}

/// Records a report on an image and ends its task, if it has one
/// (idempotent: a replayed report finds the task finished and changes
/// nothing; a report without a task, from a backfill, is applied only while
/// the image still shows the content it was made from).
async fn finish(
    ctx: &AppContext,
    image_id: Uuid,
    task_id: Option<Uuid>,
    outcome: Outcome,
) -> Result<(), HandleError> {
    let retry = |e: pinhole_http::ApiError| HandleError::Retry(e.message);
    // Blob I/O before the transaction: the edit's result, staged by the
    // thumbnails role, is copied into this role's originals (unless a live
    // blob holds those bytes). Only while its task is open: a replay finds
    // it finished and copies nothing.
    let edit_stored = match &outcome {
        Outcome::Edited(e) => {
            task_open(ctx, e.task_id).await?
                && crate::store::prepare_staged(ctx, &e.original, e.staged_key.as_deref())
                    .await
                    .map_err(retry)?
        }
        _ => false,
    };
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    // An image deletion, a version deletion and this take turns.
    crate::store::lock_image(&txn, image_id).await?;
    let now = Utc::now();
    let t = match task_id {
        None => None,
        Some(task_id) => {
            let Some(t) = task::Entity::find_by_id(task_id).one(&txn).await? else {
                // The task went with its image; an edit's result is
                // nobody's and is collected.
                drop(txn);
                if let Outcome::Edited(e) = &outcome {
                    abandon_edit(ctx, e).await?;
                }
                return Ok(());
            };
            // Claim it: a replayed report, or the loser of two racing
            // (Postgres), finds it finished and changes nothing.
            let claimed = task::Entity::update_many()
                .col_expr(
                    task::Column::FinishedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(task::Column::Id.eq(task_id))
                .filter(task::Column::FinishedAt.is_null())
                .exec(&txn)
                .await?
                .rows_affected
                == 1;
            if !claimed {
                return Ok(());
            }
            Some(t)
        }
    };
    let img = image::Entity::find_by_id(image_id).one(&txn).await?;
    let mut events = Vec::new();
    let mut collect = None;
    let mut verify = None;
    let (status, reason) = match (outcome, img) {
        (Outcome::Processed(p), Some(img)) if p.sha256.is_empty() || p.sha256 == img.sha256 => {
            let first_publish = img.published_at.is_none();
            let mut active = img.clone().into_active_model();
            active.status = Set(image::READY);
            active.derivatives = Set(serde_json::to_string(&p.derivatives).ok());
            active.analysis = Set(p.analysis.as_ref().map(ToString::to_string));
            active.pipeline = Set(i32::try_from(p.pipeline).ok());
            active.processed_at = Set(Some(now));
            active.updated_at = Set(now);
            if first_publish {
                active.published_at = Set(Some(now));
            }
            let before = img;
            let img = active.update(&txn).await?;
            if first_publish {
                events.push(OutgoingEvent::of(&kinds::ImagePublished {
                    image: record(&img, &tags_of(&txn, img.id).await?),
                }));
            } else if reprocessed_differently(&before, &img) {
                // Others keep the analysis (the perceptual hash) and the
                // derivatives: a re-processing that changed them says so.
                events.push(OutgoingEvent::of(&kinds::ImageUpdated {
                    image: record(&img, &tags_of(&txn, img.id).await?),
                }));
            }
            (task::Status::Done, None)
        }
        // Made from content the image no longer shows (an edit came first).
        (Outcome::Processed(_), Some(img)) => {
            mark_attempted(&txn, img.id, now).await?;
            (task::Status::Done, None)
        }
        (Outcome::Edited(e), Some(img)) => {
            match crate::edits::apply_edited(&txn, img, &e, edit_stored)
                .await
                .map_err(retry)?
            {
                Ok((img, retained)) => {
                    if retained == crate::store::Retained::Fresh {
                        verify = Some((e.original.clone(), e.staged_key.clone()));
                    }
                    events.push(OutgoingEvent::of(&kinds::ImageUpdated {
                        image: record(&img, &tags_of(&txn, img.id).await?),
                    }));
                    (task::Status::Done, None)
                }
                Err(reason) => (task::Status::Failed, Some(reason)),
            }
        }
        (Outcome::Failed(reason), Some(img)) => {
            if task_id.is_none() {
                mark_attempted(&txn, img.id, now).await?;
            }
            if img.status == image::PROCESSING {
                let mut active = img.into_active_model();
                active.status = Set(image::FAILED);
                active.updated_at = Set(now);
                active.update(&txn).await?;
            }
            (task::Status::Failed, Some(reason))
        }
        (outcome, None) => {
            if let Outcome::Edited(e) = outcome
                && abandon(&txn, &e).await?
            {
                collect = Some(e.original.sha256.clone());
            }
            (
                task::Status::Failed,
                Some("the image was deleted".to_owned()),
            )
        }
    };
    let Some(t) = t else {
        ctx.outbox.enqueue(&txn, &events).await?;
        txn.commit().await?;
        ctx.outbox.wake();
        after_commit(ctx, collect, verify).await;
        return Ok(());
    };
    let task_id = t.id;
    let has_callback = t.callback_url.is_some();
    let mut active = t.into_active_model();
    active.status = Set(status);
    active.reason = Set(reason);
    active.updated_at = Set(now);
    active.finished_at = Set(Some(now));
    if has_callback {
        active.callback_state = Set(Some(task::CallbackState::Pending));
        active.callback_next_at = Set(Some(now));
    }
    active.update(&txn).await?;
    ctx.outbox.enqueue(&txn, &events).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    tasks::notify(task_id);
    if has_callback {
        crate::callback::wake();
    }
    after_commit(ctx, collect, verify).await;
    Ok(())
}

/// Inside the report's transaction: an edit's result whose image is gone
/// belongs to nobody; it is counted at zero so that it is collected. True
/// when it should be collected after committing.
async fn abandon<C: sea_orm::ConnectionTrait>(txn: &C, e: &Edited) -> Result<bool, HandleError> {
    let Some(format) = pinhole_media::Format::parse(&e.original.format) else {
        return Ok(false);
    };
    crate::store::lock(txn, &e.original.sha256).await?;
    Ok(crate::store::abandon(txn, &e.original.sha256, format, e.size).await?)
}

/// An edit's result whose task (and image) went meanwhile: collected.
async fn abandon_edit(ctx: &AppContext, e: &Edited) -> Result<(), HandleError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let collect = abandon(&txn, e).await?;
    txn.commit().await?;
    if collect {
        crate::store::collect_released(ctx, std::slice::from_ref(&e.original.sha256)).await;
    }
    Ok(())
}

/// Blob work once the report is recorded: collect an abandoned result,
/// check that a newly counted one is stored (copied again from its staged
/// object if a collection of the same bytes removed it meanwhile).
async fn after_commit(
    ctx: &AppContext,
    collect: Option<String>,
    verify: Option<(pinhole_events::images::Source, Option<String>)>,
) {
    if let Some(sha) = collect {
        crate::store::collect_released(ctx, &[sha]).await;
    }
    if let Some((source, staged)) = verify {
        crate::store::ensure_staged_stored(ctx, &source, staged.as_deref()).await;
    }
}

/// Whether the task exists and has not finished.
async fn task_open(ctx: &AppContext, task_id: Uuid) -> Result<bool, HandleError> {
    Ok(task::Entity::find_by_id(task_id)
        .one(&ctx.backends.db)
        .await?
        .is_some_and(|t| t.finished_at.is_none()))
}

/// `image.edit_settled`, through the outbox, once this role is done with
/// an edit's staged result: the thumbnails role removes it. Its own
/// transaction, after the blob work of [`finish`] (which may still copy
/// from the staged object); a crash in between leaves the event to the
/// report's redelivery (a replay settles again) or the staged object to
/// the thumbnails role's sweep.
async fn settle(ctx: &AppContext, e: &Edited) -> Result<(), HandleError> {
    let Some(staged_key) = e.staged_key.clone() else {
        return Ok(());
    };
    let settled = EditSettled {
        image_id: e.image_id,
        task_id: e.task_id,
        staged_key,
    };
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    ctx.outbox
        .enqueue(&txn, &[OutgoingEvent::of(&settled)])
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(())
}
