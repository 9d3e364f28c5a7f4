//! Edit tasks and versions: `POST /images/{id}/edits` asks the thumbnails
//! role for a new version made from the current one by a list of operations
//! (crop, rotate, flip, colour and contrast, named filters, red-eye, a
//! watermark); the image keeps its id, and every replaced version stays
//! addressable by its owner until deleted.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pinhole_events::OutgoingEvent;
use pinhole_events::images::{self as kinds, EditJob, Source};
use pinhole_http::{ApiError, ApiJson, ApiQuery, AppContext, Auth};
use pinhole_media::Format;
use pinhole_transform::EditOp;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveModelTrait, QueryOrder};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::ImagesError;
use crate::access::owned_image;
use crate::entity::{image, image_version, task};
use crate::records::parse_id;
use crate::upload::multipart::{WaitQuery, respond};
use crate::{present, store, views};

/// An edit request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// Applied in order: `{"op":"crop","x","y","width","height"}`,
    /// `{"op":"rotate","degrees":90}`, `{"op":"flip","direction":"horizontal"}`,
    /// `{"op":"adjust","brightness","contrast","saturation","gamma","hue"}`,
    /// `{"op":"filter","name":"mono"}`, `{"op":"red_eye"}`,
    /// `{"op":"watermark","image_id","gravity","opacity","scale"}`.
    #[schema(value_type = Vec<Object>, min_items = 1, max_items = 20)]
    pub operations: Vec<serde_json::Value>,
    /// Told (signed POST) when the task ends, as for uploads.
    #[schema(pattern = r"^\s*([hH][tT][tT][pP][sS]?://\S+)?\s*$")]
    pub callback_url: Option<String>,
}

fn source(img: &image::Model) -> Source {
    let format = Format::parse(&img.format).unwrap_or(Format::Jpeg);
    Source {
        sha256: img.sha256.clone(),
        format: img.format.clone(),
        original_key: store::original_key(&img.sha256, format),
    }
}

/// Parses and checks the operations: 422 naming each bad one.
fn parse_operations(raw: &[serde_json::Value]) -> Result<Vec<EditOp>, ApiError> {
    let mut fields = BTreeMap::new();
    let mut ops = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        match serde_json::from_value::<EditOp>(v.clone()) {
            Ok(op) => ops.push(op),
            Err(e) => {
                fields.insert(format!("operations[{i}]"), e.to_string());
            }
        }
    }
    if fields.is_empty()
        && let Err(problems) = pinhole_transform::validate_edits(&ops)
    {
        fields.extend(problems);
    }
    if fields.is_empty() {
        Ok(ops)
    } else {
        Err(ApiError::invalid(fields))
    }
}

/// Edit an image of yours: the operations are applied in order to the
/// current version by the thumbnails role, which stores the result as a new
/// version (with all derivatives) and makes it current. Answers 202 with the
/// task; `?wait=true` waits for it as uploads do.
#[utoipa::path(post, path = "/api/v1/images/{id}/edits", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id"), WaitQuery),
    request_body = EditRequest,
    responses(
        (status = 202, description = "Accepted: a task makes the new version", body = views::Accepted),
        (status = 200, description = "Finished (with ?wait=true)", body = views::Accepted),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
        (status = 409, description = "The image is still being processed", body = pinhole_http::ErrorBody),
        (status = 422, description = "An operation is wrong, named in `fields` (`validation-failed`)", body = pinhole_http::ErrorBody),
        (status = 429, description = "Your account asked for `PINHOLE_QUOTA_EDITS_PER_HOUR` edits in the last hour (`edit-rate-exceeded`)", body = pinhole_http::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until one of those edits is an hour old"))),
    ))]
pub(crate) async fn create_edit(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
    ApiJson(req): ApiJson<EditRequest>,
) -> Result<Response, ApiError> {
    let wait = q.limit()?;
    let id = parse_id(&id)?;
    let ops = parse_operations(&req.operations)?;
    let callback_url = match req.callback_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(
            crate::callback_url::check_url(raw, ctx.settings.callback_allow_private)
                .map_err(|p| ApiError::field("callback_url", p))?,
        ),
    };
    let db = &ctx.backends.db;
    let img = owned_image(db, me.user_id, id).await?;
    if img.status != image::READY {
        return Err(ApiError::conflict(
            ImagesError::ImageNotReady,
            "the image is still being processed (or failed): it can be edited once it is ready",
        ));
    }
    let mut watermark = None;
    for (i, op) in ops.iter().enumerate() {
        if let EditOp::Watermark { image_id, .. } = op {
            let field = format!("operations[{i}].image_id");
            let mark = image::Entity::find_by_id(*image_id)
                .one(db)
                .await?
                .filter(|m| m.owner_id == me.user_id && m.status == image::READY)
                .ok_or_else(|| ApiError::field(&field, "must be a processed image of yours"))?;
            if watermark.is_some_and(|w: Uuid| w != mark.id) {
                return Err(ApiError::field(&field, "only one watermark image per edit"));
            }
            watermark = Some(mark.id);
        }
    }
    let watermark = match watermark {
        Some(w) => image::Entity::find_by_id(w)
            .one(db)
            .await?
            .map(|m| source(&m)),
        None => None,
    };
    let t = crate::upload::queued_task(me.user_id, img.id, task::Kind::Edit, callback_url.as_ref());
    let job = EditJob {
        image_id: img.id,
        task_id: *t.id.as_ref(),
        owner_id: me.user_id,
        base_version: img.version,
        base: source(&img),
        operations: serde_json::to_value(&ops).map_err(ApiError::internal)?,
        watermark,
    };
    let txn = pinhole_db::begin_write(db).await?;
    // The account's edits are counted and added in turns.
    store::lock_account(&txn, me.user_id).await?;
    crate::quota::check_edit_rate(&txn, &ctx, me.user_id).await?;
    let t = t.insert(&txn).await?;
    ctx.outbox.enqueue(&txn, &[OutgoingEvent::of(&job)]).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    tracing::info!(image_id = %img.id, task_id = %t.id, operations = ops.len(), "edit requested");
    respond(&ctx, crate::upload::accepted(&t, false), wait).await
}

/// A version of an image.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
pub struct Version {
    pub version: i32,
    /// Whether this is what the image shows now.
    pub current: bool,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// The operations that made it from the version before (none for the upload).
    #[schema(value_type = Option<Vec<Object>>)]
    pub edits: Option<serde_json::Value>,
    pub derivatives: Vec<views::Derivative>,
    /// `/api/v1/images/{id}/versions/{version}/original`.
    pub original_url: String,
    pub created_at: chrono::DateTime<Utc>,
}

/// The versions of an image.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
pub struct VersionList {
    pub items: Vec<Version>,
}

fn dims(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// Every stored version: the current one from the image, replaced ones from
/// `image_versions`.
async fn versions_of(ctx: &AppContext, img: &image::Model) -> Result<Vec<Version>, ApiError> {
    let rows = image_version::Entity::find()
        .filter(image_version::Column::ImageId.eq(img.id))
        .order_by_asc(image_version::Column::Version)
        .all(&ctx.backends.db)
        .await?;
    let current_edits = rows
        .iter()
        .find(|r| r.version == img.version)
        .and_then(|r| r.edits.clone());
    let mut out = Vec::with_capacity(rows.len() + 1);
    for r in rows.iter().filter(|r| r.version != img.version) {
        let stored: Vec<views::StoredDerivative> = r
            .derivatives
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        out.push(Version {
            version: r.version,
            current: false,
            format: r.format.clone(),
            width: dims(r.width),
            height: dims(r.height),
            size: u64::try_from(r.size).unwrap_or(0),
            edits: r
                .edits
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok()),
            derivatives: present::derivative_links(ctx, stored).await?,
            original_url: format!("/api/v1/images/{}/versions/{}/original", img.id, r.version),
            created_at: r.created_at,
        });
    }
    out.push(Version {
        version: img.version,
        current: true,
        format: img.format.clone(),
        width: dims(img.width),
        height: dims(img.height),
        size: u64::try_from(img.size).unwrap_or(0),
        edits: current_edits
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
        derivatives: present::derivative_links(ctx, present::stored_derivatives(img)).await?,
        original_url: format!(
            "/api/v1/images/{}/versions/{}/original",
            img.id, img.version
        ),
        created_at: img.updated_at,
    });
    out.sort_by_key(|v| v.version);
    Ok(out)
}

/// The versions of an image of yours, oldest first (the last is current).
#[utoipa::path(get, path = "/api/v1/images/{id}/versions", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id")),
    responses(
        (status = 200, body = VersionList),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn list_versions(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let img = owned_image(&ctx.backends.db, me.user_id, parse_id(&id)?).await?;
    Ok(Json(VersionList {
        items: versions_of(&ctx, &img).await?,
    }))
}

fn version_not_found() -> ApiError {
    ApiError::not_found(
        ImagesError::VersionNotFound,
        "this image has no such version",
    )
}

fn parse_version(raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(version_not_found)
}

/// The exact original bytes of one version of an image of yours.
#[utoipa::path(get, path = "/api/v1/images/{id}/versions/{version}/original", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id"), ("version" = i32, Path, description = "version number")),
    responses(
        (status = 200, description = "The image bytes", content_type = "image/*"),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn version_original(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let img = owned_image(&ctx.backends.db, me.user_id, parse_id(&id)?).await?;
    let version = parse_version(&version)?;
    let (sha256, format) = if version == img.version {
        (img.sha256.clone(), img.format.clone())
    } else {
        let row = image_version::Entity::find_by_id((img.id, version))
            .one(&ctx.backends.db)
            .await?
            .ok_or_else(version_not_found)?;
        (row.sha256, row.format)
    };
    let format = Format::parse(&format).ok_or_else(|| ApiError::internal("unknown format"))?;
    let body = ctx
        .backends
        .blobs
        .get(&store::original_key(&sha256, format), None)
        .await
        .map_err(ApiError::unavailable)?;
    Ok((
        [
            (header::CONTENT_TYPE, format.mime().to_owned()),
            (header::CONTENT_LENGTH, body.meta.size.to_string()),
            (header::ETAG, format!("\"{sha256}\"")),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        Body::from_stream(body.stream),
    )
        .into_response())
}

/// Delete a replaced version of an image of yours (the current one goes
/// only with the image).
#[utoipa::path(delete, path = "/api/v1/images/{id}/versions/{version}", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id"), ("version" = i32, Path, description = "version number")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = pinhole_http::ErrorBody),
        (status = 409, description = "It is the current version", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn delete_version(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path((id, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let img = owned_image(&ctx.backends.db, me.user_id, parse_id(&id)?).await?;
    let version = parse_version(&version)?;
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    // The image's deletion and an edit becoming current take turns with
    // this; the current version is read again under the lock.
    store::lock_image(&txn, img.id).await?;
    let current = image::Entity::find_by_id(img.id)
        .one(&txn)
        .await?
        .ok_or_else(version_not_found)?
        .version;
    if version == current {
        return Err(ApiError::conflict(
            ImagesError::VersionCurrent,
            "this is the current version: delete the image, or edit it to make another current",
        ));
    }
    // Release only what this statement really deleted.
    let Some(row) = image_version::Entity::delete_many()
        .filter(image_version::Column::ImageId.eq(img.id))
        .filter(image_version::Column::Version.eq(version))
        .exec_with_returning(&txn)
        .await?
        .pop()
    else {
        return Err(version_not_found());
    };
    store::lock(&txn, &row.sha256).await?;
    store::release(&txn, &row.sha256).await?;
    txn.commit().await?;
    store::collect_released(&ctx, std::slice::from_ref(&row.sha256)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `image.edited`: the new version becomes current; the one it replaces is
/// kept (with its reference to its original) in `image_versions`. Inside
/// the report's transaction, under the image's lock; `stored` says whether
/// the result's original was found in the store before it began.
pub async fn apply_edited(
    txn: &sea_orm::DatabaseTransaction,
    img: image::Model,
    edited: &kinds::Edited,
    stored: bool,
) -> Result<Result<(image::Model, store::Retained), String>, ApiError> {
    let format = Format::parse(&edited.original.format)
        .ok_or_else(|| ApiError::internal("the edited version has an unknown format"))?;
    if !stored {
        return Ok(Err(
            "the edited version's original was lost; try again".into()
        ));
    }
    store::lock(txn, &edited.original.sha256).await?;
    // An image is one per owner and content: an edit that makes exactly
    // another of the owner's images (the same edit of two copies) fails
    // instead of taking that image's content.
    if let Some(twin) = image::Entity::find()
        .filter(image::Column::OwnerId.eq(img.owner_id))
        .filter(image::Column::Sha256.eq(&edited.original.sha256))
        .filter(image::Column::Id.ne(img.id))
        .one(txn)
        .await?
    {
        return Ok(Err(format!(
            "the result is exactly your image {}; nothing was changed",
            twin.id
        )));
    }
    let retained = store::retain(txn, &edited.original.sha256, format, edited.size).await??;
    let now = Utc::now();
    // The replaced version (first edit: the upload) keeps its row.
    if image_version::Entity::find_by_id((img.id, img.version))
        .one(txn)
        .await?
        .is_none()
    {
        snapshot(&img, None, now).insert(txn).await?;
    }
    let next = img.version.max(edited.base_version) + 1;
    let mut active: image::ActiveModel = img.clone().into();
    active.sha256 = Set(edited.original.sha256.clone());
    active.format = Set(edited.original.format.clone());
    active.width = Set(i32::try_from(edited.width).unwrap_or(i32::MAX));
    active.height = Set(i32::try_from(edited.height).unwrap_or(i32::MAX));
    active.size = Set(i64::try_from(edited.size).unwrap_or(i64::MAX));
    active.derivatives = Set(serde_json::to_string(&edited.derivatives).ok());
    active.analysis = Set(edited.analysis.as_ref().map(ToString::to_string));
    active.pipeline = Set(i32::try_from(edited.pipeline).ok());
    active.processed_at = Set(Some(now));
    active.version = Set(next);
    active.updated_at = Set(now);
    let updated = active.update(txn).await?;
    snapshot(&updated, Some(edited.operations.to_string()), now)
        .insert(txn)
        .await?;
    Ok(Ok((updated, retained)))
}

fn snapshot(
    img: &image::Model,
    edits: Option<String>,
    now: chrono::DateTime<Utc>,
) -> image_version::ActiveModel {
    image_version::ActiveModel {
        image_id: Set(img.id),
        version: Set(img.version),
        sha256: Set(img.sha256.clone()),
        format: Set(img.format.clone()),
        width: Set(img.width),
        height: Set(img.height),
        size: Set(img.size),
        derivatives: Set(img.derivatives.clone()),
        analysis: Set(img.analysis.clone()),
        edits: Set(edits),
        created_at: Set(if img.version == 1 {
            img.created_at
        } else {
            now
        }),
    }
}
