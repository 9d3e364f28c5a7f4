//! Changes to an image's metadata.

use axum::Json;
use axum::extract::{Path, State};
use pinhole_events::OutgoingEvent;
use pinhole_events::images as kinds;
use pinhole_http::{ApiError, ApiJson, AppContext, Auth};
use sea_orm::ActiveValue::Set;
use sea_orm::IntoActiveModel;
use sea_orm::entity::prelude::*;
use serde::Deserialize;
use utoipa::ToSchema;

use super::parse_id;
use crate::access::{image_not_found, owned_image};
use crate::domain::{self, Location, Visibility};
use crate::entity::image_tag;
use crate::{outgoing, present, views};

/// A change to an image's metadata: absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImagePatch {
    /// At most 200 characters; blank is none.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(max_length = 200)]
    title: Option<Option<String>>,
    /// At most 5000 characters; its `#hashtags` become tags.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(max_length = 5000)]
    description: Option<Option<String>>,
    /// At most 1500 characters; blank is none.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(max_length = 1500)]
    alt_text: Option<Option<String>>,
    /// At most 30 tags, each of at most 64 letters, digits and `_` (a
    /// leading `#` is dropped; an item may hold several, separated by
    /// commas or spaces).
    tags: Option<Vec<String>>,
    #[schema(value_type = Option<Visibility>)]
    visibility: Option<String>,
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(schema_with = domain::location_edit_schema)]
    location: Option<Option<serde_json::Value>>,
}

/// Edit an image's title, description (#hashtags become tags), tags, alt
/// text, visibility or location. Yours only.
#[utoipa::path(patch, path = "/api/v1/images/{id}", tag = "images", security(("bearer" = [])),
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
        active.visibility = Set(v);
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
                image: outgoing::record(&img, &tags_now),
            })],
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    let mut out = present::images(&ctx, &ctx.backends.db, Some(me.user_id), vec![img]).await?;
    out.pop().map(Json).ok_or_else(image_not_found)
}
