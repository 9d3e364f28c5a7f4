//! What this role keeps of the images and users roles, from their events:
//! each image's content, size, visibility and status, and whether its
//! owner's account is private (transforms decide and find their source
//! from it), and which pipeline made its derivatives and when it last
//! reported (backfills select and follow from it).
//!
//! Every change is an upsert or a delete by key: a replayed event changes
//! nothing.
//!
//! The same consumer carries out what the images role asks of this role's
//! blobs (`content.released`, `image.edit_settled`: see [`crate::store`]);
//! replayed, they find nothing left to remove.

use chrono::Utc;
use pinhole_bus::{HandleError, Record};
use pinhole_events::images::{
    ContentReleased, EditSettled, Edited, ImageDeleted, ImagePublished, ImageRecord, ImageUpdated,
    ImageUploaded, Processed, ProcessingFailed,
};
use pinhole_events::users::{AccountCard, UserDeleted, UserRegistered, UserUpdated};
use pinhole_events::{Envelope, Event};
use pinhole_http::AppContext;
use sea_orm::ActiveValue::Set;
use sea_orm::ConnectionTrait;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, Expr, OnConflict, SimpleExpr};

pub use crate::entity::{account, image};
use image::{Status, Visibility};

/// Consumer group of the catalog.
pub const GROUP: &str = "thumbnails-catalog";

/// Handles one record of `pinhole.images` or `pinhole.users`.
pub async fn handle(ctx: &AppContext, record: Record) -> Result<(), HandleError> {
    let env = Envelope::from_json(&record.payload)
        .map_err(|e| HandleError::Skip(format!("not an event: {e}")))?;
    let db = &ctx.backends.db;
    let skip = |e: pinhole_events::DecodeError| HandleError::Skip(e.to_string());
    match env.kind.as_str() {
        // Not the catalog's: this role's blobs.
        <ContentReleased as Event>::TYPE => {
            let e: ContentReleased = env.decode().map_err(skip)?;
            crate::store::released(ctx, &e).await?;
            return Ok(());
        }
        <EditSettled as Event>::TYPE => {
            let e: EditSettled = env.decode().map_err(skip)?;
            crate::store::settled(ctx, &e).await?;
            return Ok(());
        }
        <ImageUploaded as Event>::TYPE => {
            upsert_image(db, &env.decode::<ImageUploaded>().map_err(skip)?.image).await?;
        }
        <ImageUpdated as Event>::TYPE => {
            upsert_image(db, &env.decode::<ImageUpdated>().map_err(skip)?.image).await?;
        }
        <ImagePublished as Event>::TYPE => {
            upsert_image(db, &env.decode::<ImagePublished>().map_err(skip)?.image).await?;
        }
        <ImageDeleted as Event>::TYPE => {
            let e: ImageDeleted = env.decode().map_err(skip)?;
            deleted(db, &e).await?;
        }
        <Processed as Event>::TYPE => {
            let e: Processed = env.decode().map_err(skip)?;
            reported(db, e.image_id, Some(e.pipeline)).await?;
        }
        <Edited as Event>::TYPE => {
            let e: Edited = env.decode().map_err(skip)?;
            reported(db, e.image_id, Some(e.pipeline)).await?;
        }
        <ProcessingFailed as Event>::TYPE => {
            let e: ProcessingFailed = env.decode().map_err(skip)?;
            reported(db, e.image_id, None).await?;
        }
        <UserRegistered as Event>::TYPE => {
            upsert_account(db, &env.decode::<UserRegistered>().map_err(skip)?.account).await?;
        }
        <UserUpdated as Event>::TYPE => {
            upsert_account(db, &env.decode::<UserUpdated>().map_err(skip)?.account).await?;
        }
        <UserDeleted as Event>::TYPE => {
            let e: UserDeleted = env.decode().map_err(skip)?;
            account::Entity::delete_by_id(e.user_id).exec(db).await?;
        }
        _ => return Ok(()),
    }
    metrics::counter!("pinhole_read_model_applied_total", "role" => "thumbnails", "type" => env.kind.clone())
        .increment(1);
    Ok(())
}

/// `thumb_images.status` as stored.
fn stored_status() -> Expr {
    Expr::col((image::Entity, image::Column::Status))
}

/// `thumb_images.status` as an upsert would write it.
fn proposed_status() -> Expr {
    Expr::col((Alias::new("excluded"), image::Column::Status))
}

/// `thumb_images.status` on conflict: a deleted image stays deleted (its
/// events may be overtaken by this role's own reports), and a processed one
/// does not go back to `processing` when an older event arrives late.
fn keep_status() -> SimpleExpr {
    Expr::case(stored_status().eq(Status::Deleted), Status::Deleted)
        .case(
            proposed_status()
                .eq(Status::Processing)
                .and(stored_status().is_in([Status::Ready, Status::Failed])),
            stored_status(),
        )
        .finally(proposed_status())
        .into()
}

/// The image as its owner's role last described it; what this role learned
/// itself (pipeline, last report) is kept.
async fn upsert_image<C: ConnectionTrait>(db: &C, r: &ImageRecord) -> Result<(), HandleError> {
    let status = Status::from(r.status);
    image::Entity::insert(image::ActiveModel {
        image_id: Set(r.image_id),
        owner_id: Set(r.owner_id),
        sha256: Set(r.sha256.clone()),
        format: Set(r.format.clone()),
        width: Set(r.width),
        height: Set(r.height),
        visibility: Set(r.visibility.into()),
        status: Set(status),
        pipeline: Set(None),
        reported_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(image::Column::ImageId)
            .update_columns([
                image::Column::Sha256,
                image::Column::Format,
                image::Column::Width,
                image::Column::Height,
                image::Column::Visibility,
            ])
            .value(image::Column::Status, keep_status())
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A deleted image stays as a mark, so that a report of this role's that
/// overtakes the deletion does not bring it back.
async fn deleted<C: ConnectionTrait>(db: &C, e: &ImageDeleted) -> Result<(), DbErr> {
    image::Entity::insert(image::ActiveModel {
        image_id: Set(e.image_id),
        owner_id: Set(e.owner_id),
        sha256: Set(e.sha256.clone()),
        format: Set(String::new()),
        width: Set(0),
        height: Set(0),
        visibility: Set(Visibility::Private),
        status: Set(Status::Deleted),
        pipeline: Set(None),
        reported_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(image::Column::ImageId)
            .value(image::Column::Status, Expr::value(Status::Deleted))
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// This role made the image's derivatives: it is ready to transform at
/// once, before the images role's events say so (the images role reports
/// it processed only after this). A catalog that has not heard of the
/// image yet takes its visibility from the job (private when the job does
/// not say), so that an unsigned preset of a public image is served as
/// soon as the images role can call it ready; a row its events wrote keeps
/// their visibility (a later `image.updated` may have changed it), and a
/// deleted one stays deleted. The owner's account is taken from the job
/// the same way: a catalog that has not heard of it yet (its
/// `user.registered` lags) learns whether it is private from the job, and
/// a row its account events wrote is left as they said.
pub async fn made(
    db: &DatabaseConnection,
    job: &pinhole_events::images::ProcessJob,
    width: u32,
    height: u32,
) -> Result<(), DbErr> {
    if let Some(is_private) = job.owner_private {
        account::Entity::insert(account::ActiveModel {
            user_id: Set(job.owner_id),
            is_private: Set(is_private),
        })
        .on_conflict(
            OnConflict::column(account::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    image::Entity::insert(image::ActiveModel {
        image_id: Set(job.image_id),
        owner_id: Set(job.owner_id),
        sha256: Set(job.sha256.clone()),
        format: Set(job.format.clone()),
        width: Set(i32::try_from(width).unwrap_or(i32::MAX)),
        height: Set(i32::try_from(height).unwrap_or(i32::MAX)),
        visibility: Set(job.visibility.map_or(Visibility::Private, Visibility::from)),
        status: Set(Status::Ready),
        pipeline: Set(i32::try_from(crate::PIPELINE).ok()),
        reported_at: Set(Some(Utc::now())),
    })
    .on_conflict(
        OnConflict::column(image::Column::ImageId)
            .update_columns([image::Column::Pipeline, image::Column::ReportedAt])
            .value(
                image::Column::Status,
                Expr::case(stored_status().eq(Status::Deleted), Status::Deleted)
                    .finally(Status::Ready),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A report on the image: the pipeline that made its derivatives (none for
/// a failure) and when.
async fn reported<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    pipeline: Option<u32>,
) -> Result<(), DbErr> {
    let mut update = image::Entity::update_many()
        .col_expr(image::Column::ReportedAt, Expr::value(Utc::now()))
        .filter(image::Column::ImageId.eq(id));
    if let Some(p) = pipeline {
        update = update.col_expr(
            image::Column::Pipeline,
            Expr::value(i32::try_from(p).unwrap_or(i32::MAX)),
        );
    }
    update.exec(db).await?;
    Ok(())
}

async fn upsert_account<C: ConnectionTrait>(db: &C, card: &AccountCard) -> Result<(), DbErr> {
    account::Entity::insert(account::ActiveModel {
        user_id: Set(card.user_id),
        is_private: Set(card.is_private),
    })
    .on_conflict(
        OnConflict::column(account::Column::UserId)
            .update_column(account::Column::IsPrivate)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Starts the catalog's consumer.
pub async fn run(ctx: AppContext) {
    let handler_ctx = ctx.clone();
    pinhole_bus::consume(
        ctx.backends.bus.clone(),
        GROUP.to_owned(),
        vec![
            pinhole_events::topics::IMAGES,
            pinhole_events::topics::USERS,
        ],
        pinhole_db::dead_letters::parking(ctx.backends.db.clone(), ctx.settings.event_max_attempts),
        move |record| {
            let ctx = handler_ctx.clone();
            async move { handle(&ctx, record).await }
        },
    )
    .await;
}
