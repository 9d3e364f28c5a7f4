//! One image: its record, metadata changes, deletion, and the original.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pinhole_events::OutgoingEvent;
use pinhole_events::images as kinds;
use pinhole_http::{ApiError, ApiJson, AppContext, Auth, MaybeAuth};
use pinhole_media::Format;
use sea_orm::ActiveValue::Set;
use sea_orm::IntoActiveModel;
use sea_orm::entity::prelude::*;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::access::{image_not_found, owned_image, visible_image};
use crate::domain::{self, Location, Visibility};
use crate::entity::{image, image_tag, image_version, task};
use crate::{events, present, store, views};

pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| image_not_found())
}

/// An image: metadata, tags, location, EXIF (GPS for the owner only),
/// derivatives, counts. Hidden images answer 404.
#[utoipa::path(get, path = "/api/v1/images/{id}", tag = "images",
    params(("id" = Uuid, Path, description = "image id")),
    responses((status = 200, body = views::Image), (status = 404, body = pinhole_http::ErrorBody)))]
pub(crate) async fn get_image(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<views::Image>, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    let (img, _, _) = visible_image(&ctx.backends.db, viewer, parse_id(&id)?).await?;
    let mut out = present::images(&ctx, &ctx.backends.db, viewer, vec![img]).await?;
    out.pop().map(Json).ok_or_else(image_not_found)
}

/// A change to an image's metadata: absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImagePatch {
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    alt_text: Option<Option<String>>,
    tags: Option<Vec<String>>,
    visibility: Option<String>,
    /// An object `{lat, lon, place_name}`, the string `exif` (the photo's
    /// GPS position), or `null` to clear.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(value_type = Option<Object>)]
    location: Option<Option<serde_json::Value>>,
}

/// Edit an image's title, description (#hashtags become tags), tags, alt
/// text, visibility or location. Yours only.
#[utoipa::path(patch, path = "/api/v1/images/{id}", tag = "images",
    params(("id" = Uuid, Path, description = "image id")),
    request_body = ImagePatch,
    responses(
        (status = 200, body = views::Image),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
        (status = 422, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn update_image(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ImagePatch>,
) -> Result<Json<views::Image>, ApiError> {
    let id = parse_id(&id)?;
    let mut problems = std::collections::BTreeMap::new();
    let mut field = |name: &str, r: Result<(), String>| {
        if let Err(e) = r {
            problems.insert(name.to_owned(), e);
        }
    };
    let mut title = None;
    let mut description = None;
    let mut alt_text = None;
    let mut tags = None;
    let mut visibility = None;
    let mut location: Option<Option<domain::LocationInput>> = None;
    if let Some(v) = &patch.title {
        field(
            "title",
            domain::text(v.as_deref().unwrap_or(""), domain::MAX_TITLE, "title")
                .map(|t| title = Some(t)),
        );
    }
    if let Some(v) = &patch.description {
        field(
            "description",
            domain::text(
                v.as_deref().unwrap_or(""),
                domain::MAX_DESCRIPTION,
                "description",
            )
            .map(|t| description = Some(t)),
        );
    }
    if let Some(v) = &patch.alt_text {
        field(
            "alt_text",
            domain::text(v.as_deref().unwrap_or(""), domain::MAX_ALT_TEXT, "alt_text")
                .map(|t| alt_text = Some(t)),
        );
    }
    if let Some(v) = &patch.tags {
        field(
            "tags",
            domain::parse_tags(v.iter().map(String::as_str)).map(|t| tags = Some(t)),
        );
    }
    if let Some(v) = &patch.visibility {
        field(
            "visibility",
            Visibility::parse(v).map(|v| visibility = Some(v)),
        );
    }
    match &patch.location {
        None => {}
        Some(None) => location = Some(None),
        Some(Some(serde_json::Value::String(s))) if s == "exif" => {
            location = Some(Some(domain::LocationInput::FromExif));
        }
        Some(Some(v)) => field(
            "location",
            serde_json::from_value::<Location>(v.clone())
                .map_err(|e| format!("not a location: {e}"))
                .and_then(Location::check)
                .map(|l| location = Some(Some(domain::LocationInput::Explicit(l)))),
        ),
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let img = owned_image(&txn, me.user_id, id).await?;
    let exif_gps = img
        .exif
        .as_deref()
        .and_then(|e| serde_json::from_str::<pinhole_media::ExifData>(e).ok())
        .and_then(|e| e.gps);
    let old_tags = present::tags_of(&txn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    let mut active = img.clone().into_active_model();
    if let Some(t) = title {
        active.title = Set(t);
    }
    if let Some(d) = description.clone() {
        active.description = Set(d);
    }
    if let Some(a) = alt_text {
        active.alt_text = Set(a);
    }
    if let Some(v) = visibility {
        active.visibility = Set(v.as_str().to_owned());
    }
    if let Some(loc) = location {
        let loc = match loc {
            None | Some(domain::LocationInput::None) => None,
            Some(domain::LocationInput::Explicit(l)) => Some(l),
            Some(domain::LocationInput::FromExif) => Some(
                exif_gps
                    .map(|g| Location {
                        lat: g.lat,
                        lon: g.lon,
                        place_name: None,
                    })
                    .ok_or_else(|| {
                        ApiError::field("location", "the photo carries no GPS position")
                    })?,
            ),
        };
        active.lat = Set(loc.as_ref().map(|l| l.lat));
        active.lon = Set(loc.as_ref().map(|l| l.lon));
        active.place_name = Set(loc.and_then(|l| l.place_name));
    }
    // Tags: explicit ones (new or kept) plus the description's hashtags.
    let new_tags = if tags.is_some() || description.is_some() {
        let explicit = tags.unwrap_or_else(|| old_tags.clone());
        let desc = match &description {
            Some(d) => d.clone(),
            None => img.description.clone(),
        };
        Some(domain::all_tags(&explicit, desc.as_deref()))
    } else {
        None
    };
    let changed = active.is_changed() || new_tags.as_ref().is_some_and(|t| *t != old_tags);
    if !changed {
        txn.rollback().await?;
        let mut out = present::images(&ctx, &ctx.backends.db, Some(me.user_id), vec![img]).await?;
        return out.pop().map(Json).ok_or_else(image_not_found);
    }
    active.updated_at = Set(chrono::Utc::now());
    let img = active.update(&txn).await?;
    if let Some(new_tags) = &new_tags {
        image_tag::Entity::delete_many()
            .filter(image_tag::Column::ImageId.eq(id))
            .exec(&txn)
            .await?;
        if !new_tags.is_empty() {
            image_tag::Entity::insert_many(new_tags.iter().map(|t| image_tag::ActiveModel {
                image_id: Set(id),
                tag: Set(t.clone()),
            }))
            .exec(&txn)
            .await?;
        }
    }
    let tags_now = new_tags.unwrap_or(old_tags);
    ctx.outbox
        .enqueue(
            &txn,
            &[OutgoingEvent::of(&kinds::ImageUpdated {
                image: events::record(&img, &tags_now),
            })],
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    let mut out = present::images(&ctx, &ctx.backends.db, Some(me.user_id), vec![img]).await?;
    out.pop().map(Json).ok_or_else(image_not_found)
}

/// Removes an image in one transaction (with its tags, comments, likes,
/// tasks and kept versions), releases the references it and its versions
/// held, and tells every role.
///
/// Under the image's lock, so that a version deletion or an edit becoming
/// current at the same moment waits; what is released is what the
/// statements of this transaction really deleted.
pub async fn remove(ctx: &AppContext, id: Uuid) -> Result<(), ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    store::lock_image(&txn, id).await?;
    let versions = image_version::Entity::delete_many()
        .filter(image_version::Column::ImageId.eq(id))
        .exec_with_returning(&txn)
        .await?;
    let Some(img) = image::Entity::delete_many()
        .filter(image::Column::Id.eq(id))
        .exec_with_returning(&txn)
        .await?
        .pop()
    else {
        // Gone already (another request removed it first).
        return Ok(());
    };
    // The current version's row (if any) shares the image's reference;
    // every replaced version holds one of its own.
    let released: Vec<String> = std::iter::once(img.sha256.clone())
        .chain(
            versions
                .into_iter()
                .filter(|v| v.version != img.version)
                .map(|v| v.sha256),
        )
        .collect();
    store::lock_all(&txn, &released).await?;
    for sha in &released {
        store::release(&txn, sha).await?;
    }
    task::Entity::delete_many()
        .filter(task::Column::ImageId.eq(img.id))
        .exec(&txn)
        .await?;
    ctx.outbox
        .enqueue(
            &txn,
            &[OutgoingEvent::of(&kinds::ImageDeleted {
                image_id: img.id,
                owner_id: img.owner_id,
                sha256: img.sha256.clone(),
                derivatives: present::stored_derivatives(&img),
            })],
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    store::collect_released(ctx, &released).await;
    tracing::info!(image_id = %img.id, "image deleted");
    Ok(())
}

/// Delete an image of yours: it disappears everywhere; the stored original
/// goes when no other image uses the same bytes.
#[utoipa::path(delete, path = "/api/v1/images/{id}", tag = "images",
    params(("id" = Uuid, Path, description = "image id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn delete_image(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let img = owned_image(&ctx.backends.db, me.user_id, parse_id(&id)?).await?;
    remove(&ctx, img.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The original: its owner gets the exact bytes uploaded; everyone else
/// allowed to see the image gets the same image with its metadata (EXIF,
/// XMP, comments) removed, losslessly.
#[utoipa::path(get, path = "/api/v1/images/{id}/original", tag = "images",
    params(("id" = Uuid, Path, description = "image id")),
    responses(
        (status = 200, description = "The image bytes", content_type = "image/*"),
        (status = 304, description = "Not modified"),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn original(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    let (img, _, rel) = visible_image(&ctx.backends.db, viewer, parse_id(&id)?).await?;
    let format =
        Format::parse(&img.format).ok_or_else(|| ApiError::internal("unknown stored format"))?;
    let (key, etag) = if rel.is_owner {
        (
            store::original_key(&img.sha256, format),
            format!("\"{}\"", img.sha256),
        )
    } else {
        (
            public_copy(&ctx, &img.sha256, format).await?,
            format!("\"{}-public\"", img.sha256),
        )
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let body = ctx
        .backends
        .blobs
        .get(&key, None)
        .await
        .map_err(ApiError::unavailable)?;
    Ok((
        [
            (header::CONTENT_TYPE, format.mime().to_owned()),
            (header::CONTENT_LENGTH, body.meta.size.to_string()),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}.{}\"", img.id, format.extension()),
            ),
        ],
        Body::from_stream(body.stream),
    )
        .into_response())
}

/// The metadata-free copy, made on first request and kept beside the
/// original (collected with it).
async fn public_copy(ctx: &AppContext, sha256: &str, format: Format) -> Result<String, ApiError> {
    let key = store::public_key(sha256, format);
    if pinhole_blob::exists(ctx.backends.blobs.as_ref(), &key)
        .await
        .map_err(ApiError::unavailable)?
    {
        return Ok(key);
    }
    let original = ctx
        .backends
        .blobs
        .get(&store::original_key(sha256, format), None)
        .await
        .map_err(ApiError::unavailable)?
        .bytes()
        .await
        .map_err(ApiError::unavailable)?;
    let stripped =
        tokio::task::spawn_blocking(move || pinhole_media::strip_metadata(&original, format))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(format!("stripping metadata: {e}")))?;
    pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), &key, stripped)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(key)
}
