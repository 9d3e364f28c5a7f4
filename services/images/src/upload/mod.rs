//! Turning uploaded bytes into an image: the format is sniffed and checked
//! from the bytes, exact duplicates are found by SHA-256, the original is
//! stored once per content, and the image, its processing task and their
//! events are written in one transaction. Processing happens later (the
//! thumbnails role), so an upload is answered as soon as it is stored.

pub mod body;
pub mod multipart;
pub mod tus;

use bytes::Bytes;
use pinhole_http::{ApiError, AppContext};
use pinhole_media::{Format, InspectError, Inspected, Limits};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder};
use sha2::{Digest, Sha256};

use crate::ImagesError;
use crate::domain::{LocationInput, UploadFields, Visibility, all_tags};
use crate::entity::{account, image, image_tag, task};
use crate::{outgoing, quota, store, views};

/// Bytes that passed the checks, ready to become an image.
pub struct Staged {
    pub bytes: Bytes,
    pub sha256: String,
    pub inspected: Inspected,
    /// The same bytes in the spool, stored from there.
    pub spooled: Option<body::Spooled>,
}

impl Staged {
    pub fn format(&self) -> Format {
        self.inspected.format
    }

    fn content(&self) -> store::Content<'_> {
        match &self.spooled {
            Some(file) => store::Content::File(file.path()),
            None => store::Content::Bytes(&self.bytes),
        }
    }
}

/// Why bytes are not an acceptable image, as the API says it.
pub fn refusal(e: InspectError) -> ApiError {
    use axum::http::StatusCode;
    match e {
        InspectError::Unsupported => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ImagesError::UnsupportedImageFormat,
            "the file is not an image in a supported format (JPEG, PNG, GIF, WebP, HEIC, AVIF)",
        ),
        InspectError::Truncated => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ImagesError::ImageTruncated,
            "the image is truncated: it ends before its data does",
        ),
        InspectError::Corrupt(why) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ImagesError::ImageCorrupt,
            format!("the image is corrupt: {why}"),
        ),
        e @ InspectError::TooManyPixels { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ImagesError::ImageTooManyPixels,
            e.to_string(),
        ),
    }
}

pub fn too_large(max: u64) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        ImagesError::UploadTooLarge,
        format!("the file is larger than the limit of {max} bytes"),
    )
}

/// Hashes and inspects the bytes off the async runtime.
pub async fn stage(ctx: &AppContext, bytes: Bytes) -> Result<Staged, ApiError> {
    inspect(ctx, bytes, None).await
}

/// Reads a complete spooled body (the caller holds its share of the
/// memory budget) and inspects it; it is hashed already when the spool was
/// asked to ([`body::Spool::hash_content`]), and stored from the spool.
pub async fn stage_spooled(ctx: &AppContext, file: body::Spooled) -> Result<Staged, ApiError> {
    let bytes = file.read().await?;
    inspect(ctx, bytes, Some(file)).await
}

async fn inspect(
    ctx: &AppContext,
    bytes: Bytes,
    mut spooled: Option<body::Spooled>,
) -> Result<Staged, ApiError> {
    let limits = Limits {
        max_pixels: ctx.settings.max_image_pixels,
    };
    tokio::task::spawn_blocking(move || {
        let inspected = pinhole_media::inspect(&bytes, &limits).map_err(refusal)?;
        let sha256 = match spooled.as_mut().and_then(|f| f.sha256.take()) {
            Some(sha256) => sha256,
            None => hex::encode(Sha256::digest(&bytes)),
        };
        Ok(Staged {
            bytes,
            sha256,
            inspected,
            spooled,
        })
    })
    .await
    .map_err(ApiError::internal)?
}

async fn existing<C: ConnectionTrait>(
    conn: &C,
    owner: Uuid,
    sha256: &str,
) -> Result<Option<views::Accepted>, ApiError> {
    let Some(img) = image::Entity::find()
        .filter(image::Column::OwnerId.eq(owner))
        .filter(image::Column::Sha256.eq(sha256))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let t = task::Entity::find()
        .filter(task::Column::ImageId.eq(img.id))
        .order_by_desc(task::Column::CreatedAt)
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::internal(format!("image {} has no task", img.id)))?;
    Ok(Some(accepted(&t, true)))
}

/// A new queued task of `kind` on an image.
pub fn queued_task(
    owner: Uuid,
    image_id: Uuid,
    kind: task::Kind,
    callback_url: Option<&url::Url>,
) -> task::ActiveModel {
    let now = chrono::Utc::now();
    task::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(owner),
        image_id: Set(image_id),
        batch_id: Set(None),
        kind: Set(kind),
        status: Set(task::Status::Queued),
        reason: Set(None),
        callback_url: Set(callback_url.map(ToString::to_string)),
        callback_state: Set(None),
        callback_attempts: Set(0),
        callback_next_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
}

pub fn accepted(t: &task::Model, duplicate: bool) -> views::Accepted {
    views::Accepted {
        image_id: t.image_id,
        task_id: t.id,
        batch_id: t.batch_id,
        status: t.status.as_str().to_owned(),
        duplicate,
        task_url: format!("/api/v1/tasks/{}", t.id),
        image_url: format!("/api/v1/images/{}", t.image_id),
        task: None,
    }
}

/// What the write transaction of [`ingest`] ended with.
enum Committed {
    New(task::Model, store::Retained),
    /// Another request of this owner with the same bytes won.
    Duplicate(views::Accepted),
    /// Over a quota; `collect` when the original stored ahead is now
    /// counted at zero references, to be collected.
    Refused {
        error: ApiError,
        collect: bool,
    },
}

/// Makes `staged` an image of `owner`: answers the existing image when the
/// owner already uploaded these bytes, and refuses a new one over the
/// owner's quotas ([`quota::check_new_image`]).
pub async fn ingest(
    ctx: &AppContext,
    owner: Uuid,
    staged: Staged,
    fields: UploadFields,
) -> Result<views::Accepted, ApiError> {
    if let Some(dup) = existing(&ctx.backends.db, owner, &staged.sha256).await? {
        return Ok(dup);
    }
    let size = staged.bytes.len() as u64;
    // An account over its quotas already is refused before anything is
    // stored; the transaction checks again, exactly.
    quota::check_new_image(&ctx.backends.db, ctx, owner, size).await??;
    let now = chrono::Utc::now();
    let exif = staged.inspected.exif.clone();
    let location = match &fields.location {
        LocationInput::None => None,
        LocationInput::Explicit(l) => Some(l.clone()),
        LocationInput::FromExif => {
            exif.as_ref()
                .and_then(|e| e.gps)
                .map(|g| crate::domain::Location {
                    lat: g.lat,
                    lon: g.lon,
                    place_name: None,
                })
        }
    };
    let (width, height) = staged.inspected.display_size();
    let tags = all_tags(&fields.tags, fields.description.as_deref());
    let visibility = fields.visibility.unwrap_or(Visibility::Public);
    let image_id = Uuid::now_v7();
    let task_id = Uuid::now_v7();
    let row = image::ActiveModel {
        id: Set(image_id),
        owner_id: Set(owner),
        sha256: Set(staged.sha256.clone()),
        format: Set(staged.format().as_str().to_owned()),
        width: Set(i32::try_from(width).unwrap_or(i32::MAX)),
        height: Set(i32::try_from(height).unwrap_or(i32::MAX)),
        size: Set(i64::try_from(staged.bytes.len()).unwrap_or(i64::MAX)),
        title: Set(fields.title.clone()),
        description: Set(fields.description.clone()),
        alt_text: Set(fields.alt_text.clone()),
        visibility: Set(visibility),
        lat: Set(location.as_ref().map(|l| l.lat)),
        lon: Set(location.as_ref().map(|l| l.lon)),
        place_name: Set(location.as_ref().and_then(|l| l.place_name.clone())),
        exif: Set(exif.as_ref().and_then(|e| serde_json::to_string(e).ok())),
        status: Set(image::PROCESSING),
        derivatives: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        published_at: Set(None),
        version: Set(1),
        analysis: Set(None),
        pipeline: Set(None),
        processed_at: Set(None),
    };
    let mut task_row = queued_task(
        owner,
        image_id,
        task::Kind::Upload,
        fields.callback_url.as_ref(),
    );
    task_row.id = Set(task_id);
    task_row.batch_id = Set(fields.batch_id);
    store::prepare(ctx, &staged.sha256, staged.format(), staged.content()).await?;
    let (staged_ref, row, tags_ref, task_row) = (&staged, &row, &tags, &task_row);
    let committed = store::with_retry(|| async move {
        let (staged, tags) = (staged_ref, tags_ref);
        let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
        // This owner's uploads are counted and added in turns.
        store::lock_account(&txn, owner).await?;
        store::lock(&txn, &staged.sha256).await?;
        // Another request of this owner with the same bytes may have won.
        if let Some(dup) = existing(&txn, owner, &staged.sha256).await? {
            return Ok(Ok(Committed::Duplicate(dup)));
        }
        if let Err(error) = quota::check_new_image(&txn, ctx, owner, size).await? {
            // Another upload of this owner's got the last place since the
            // check above: the original stored ahead for this one is counted
            // at zero references (unless an image uses the same bytes), to
            // be collected once this commits.
            let collect = store::abandon(&txn, &staged.sha256, staged.format(), size).await?;
            txn.commit().await?;
            return Ok(Ok(Committed::Refused { error, collect }));
        }
        let retained = match store::retain(&txn, &staged.sha256, staged.format(), size).await? {
            Ok(r) => r,
            Err(busy) => return Ok(Err(busy)),
        };
        let img = row.clone().insert(&txn).await?;
        if !tags.is_empty() {
            image_tag::Entity::insert_many(tags.iter().map(|t| image_tag::ActiveModel {
                image_id: Set(image_id),
                tag: Set(t.clone()),
            }))
            .exec(&txn)
            .await?;
        }
        let t = task_row.clone().insert(&txn).await?;
        // An account deleted meanwhile (its images are being removed)
        // takes nothing more.
        if crate::access::deleted(&txn, owner).await? {
            return Err(ApiError::unauthorized("this account no longer exists"));
        }
        // Whether the owner's account is private, as far as this role knows.
        let owner_private = account::Entity::find_by_id(owner)
            .one(&txn)
            .await?
            .map(|a| a.is_private);
        ctx.outbox
            .enqueue(&txn, &outgoing::uploaded(&img, tags, &t, owner_private))
            .await?;
        txn.commit().await?;
        Ok(Ok(Committed::New(t, retained)))
    })
    .await?;
    let (t, retained) = match committed {
        Committed::New(t, retained) => (t, retained),
        Committed::Duplicate(dup) => return Ok(dup),
        Committed::Refused { error, collect } => {
            if collect {
                store::collect_released(ctx, std::slice::from_ref(&staged.sha256)).await;
            }
            return Err(error);
        }
    };
    if retained == store::Retained::Fresh {
        store::ensure_stored(ctx, &staged.sha256, staged.format(), staged.content()).await?;
    }
    ctx.outbox.wake();
    tracing::info!(image_id = %image_id, task_id = %task_id, owner = %owner, format = staged.format().as_str(), size = staged.bytes.len(), "image uploaded");
    metrics::counter!("pinhole_uploads_total", "format" => staged.format().as_str()).increment(1);
    Ok(accepted(&t, false))
}
