//! Per-account quotas (`PINHOLE_QUOTA_*`, 0: no limit): images and bytes
//! stored, checked where an upload becomes an image; unfinished resumable
//! uploads, checked where one is created; edits asked per hour, checked
//! where one is asked.
//!
//! Each is counted from this role's own tables (so every instance agrees),
//! inside the write transaction that adds to it, after
//! [`store::lock_account`](crate::store::lock_account): two requests of one
//! account at the limit take turns, and only one of them passes it.

use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use pinhole_http::{ApiError, AppContext};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, Expr, Func, SimpleExpr};
use sea_orm::{ConnectionTrait, PaginatorTrait, QueryOrder, QuerySelect};

use crate::ImagesError;
use crate::entity::{image, task, upload};

/// The window `PINHOLE_QUOTA_EDITS_PER_HOUR` counts in.
const HOUR: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What an account stores.
#[derive(Debug, Clone, Copy, Default)]
struct Stored {
    images: u64,
    bytes: u64,
}

async fn stored<C: ConnectionTrait>(conn: &C, owner: Uuid) -> Result<Stored, DbErr> {
    // SUM of a bigint is a numeric on Postgres: cast back.
    let bytes: SimpleExpr =
        Func::coalesce([Expr::col(image::Column::Size).sum(), Expr::val(0i64).into()]).into();
    let row: Option<(i64, i64)> = image::Entity::find()
        .select_only()
        .column_as(image::Column::Id.count(), "images")
        .column_as(bytes.cast_as(Alias::new("BIGINT")), "bytes")
        .filter(image::Column::OwnerId.eq(owner))
        .into_tuple()
        .one(conn)
        .await?;
    let (images, bytes) = row.unwrap_or_default();
    Ok(Stored {
        images: u64::try_from(images).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    })
}

fn over_images(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ImagesError::ImageQuotaExceeded,
        format!("your account has reached its limit of {limit} images; delete some to upload more"),
    )
}

fn over_bytes(limit: u64, stored: u64, size: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ImagesError::StorageQuotaExceeded,
        format!(
            "this file of {size} bytes would take your account past its storage limit of \
             {limit} bytes ({stored} bytes stored); delete some images to upload more"
        ),
    )
}

/// Whether the owner may store a new image of `size` bytes: 429
/// `image-quota-exceeded` at `PINHOLE_QUOTA_IMAGES` images, 413
/// `storage-quota-exceeded` when its images' sizes and `size` together
/// would pass `PINHOLE_QUOTA_BYTES` (the inner error). Exact inside a write
/// transaction after [`store::lock_account`](crate::store::lock_account);
/// anywhere else, an early answer.
pub async fn check_new_image<C: ConnectionTrait>(
    conn: &C,
    ctx: &AppContext,
    owner: Uuid,
    size: u64,
) -> Result<Result<(), ApiError>, DbErr> {
    let (max_images, max_bytes) = (ctx.settings.quota_images, ctx.settings.quota_bytes);
    if max_images == 0 && max_bytes == 0 {
        return Ok(Ok(()));
    }
    let now = stored(conn, owner).await?;
    if max_images > 0 && now.images >= max_images {
        return Ok(Err(over_images(max_images)));
    }
    if max_bytes > 0 && now.bytes.saturating_add(size) > max_bytes {
        return Ok(Err(over_bytes(max_bytes, now.bytes, size)));
    }
    Ok(Ok(()))
}

/// Whether a file of `size` bytes, declared ahead (a tus `Upload-Length`),
/// could still fit in the owner's storage: 413 `storage-quota-exceeded`
/// when not. An early answer; the image is checked again when made.
pub async fn check_declared_size<C: ConnectionTrait>(
    conn: &C,
    ctx: &AppContext,
    owner: Uuid,
    size: u64,
) -> Result<(), ApiError> {
    let max = ctx.settings.quota_bytes;
    if max == 0 {
        return Ok(());
    }
    let now = stored(conn, owner).await?;
    if now.bytes.saturating_add(size) > max {
        return Err(over_bytes(max, now.bytes, size));
    }
    Ok(())
}

/// Whether the owner may open another resumable upload: 429
/// `upload-quota-exceeded` at `PINHOLE_QUOTA_TUS_UPLOADS` unfinished ones
/// (not made into an image, not expired). Inside the write transaction
/// that adds one, after [`store::lock_account`](crate::store::lock_account).
pub async fn check_new_upload<C: ConnectionTrait>(
    conn: &C,
    ctx: &AppContext,
    owner: Uuid,
) -> Result<(), ApiError> {
    let max = ctx.settings.quota_tus_uploads;
    if max == 0 {
        return Ok(());
    }
    let open = upload::Entity::find()
        .filter(upload::Column::OwnerId.eq(owner))
        .filter(upload::Column::ImageId.is_null())
        .filter(upload::Column::ExpiresAt.gt(Utc::now()))
        .count(conn)
        .await?;
    if open >= max {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ImagesError::UploadQuotaExceeded,
            format!(
                "you have {open} unfinished uploads, the most an account may have open is \
                 {max}; finish or terminate (DELETE) one first"
            ),
        ));
    }
    Ok(())
}

/// Whether the owner may ask for another edit now: 429
/// `edit-rate-exceeded` after `PINHOLE_QUOTA_EDITS_PER_HOUR` edits (its
/// edit tasks) in the last hour, with `Retry-After` saying when one of
/// them leaves the hour. Inside the write transaction that adds the task,
/// after [`store::lock_account`](crate::store::lock_account).
pub async fn check_edit_rate<C: ConnectionTrait>(
    conn: &C,
    ctx: &AppContext,
    owner: Uuid,
) -> Result<(), ApiError> {
    let max = ctx.settings.quota_edits_per_hour;
    if max == 0 {
        return Ok(());
    }
    let now = Utc::now();
    let recent = || {
        task::Entity::find()
            .filter(task::Column::OwnerId.eq(owner))
            .filter(task::Column::Kind.eq(task::Kind::Edit))
            .filter(task::Column::CreatedAt.gt(now - HOUR))
    };
    let counted = recent().count(conn).await?;
    if counted < max {
        return Ok(());
    }
    // A place frees when the edit that leaves the count at `max - 1` is an
    // hour old: the oldest, unless the limit was lowered meanwhile.
    let frees: Option<DateTime<Utc>> = recent()
        .select_only()
        .column(task::Column::CreatedAt)
        .order_by_asc(task::Column::CreatedAt)
        .offset(counted - max)
        .into_tuple()
        .one(conn)
        .await?;
    let wait = frees
        .map(|t| (t + HOUR - now).num_milliseconds())
        .unwrap_or(0);
    // Whole seconds, rounded up, so that a client waiting that long finds
    // the place free.
    let wait_secs = u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ImagesError::EditRateExceeded,
        format!(
            "your account asked for {counted} edits in the last hour, the most it may ask for \
             is {max} an hour; try again in {wait_secs} s"
        ),
    )
    .with_header(header::RETRY_AFTER, wait_secs.to_string()))
}
