//! Many images at once as one viewer sees them (for the search role, which
//! finds ids and shows what the images role would show).

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use pinhole_http::clients::{MAX_VIEWS, ViewsRequest, distinct};
use pinhole_http::{ApiError, ApiJson, AppContext};
use sea_orm::ConnectionTrait;
use sea_orm::entity::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{can_see, card_not_yet_known, relations};
use crate::entity::{account, image};
use crate::present;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Viewed {
    /// As `GET /api/v1/images/{id}` answers each to the viewer, in the
    /// order asked; images that do not exist or that the viewer may not see
    /// are left out.
    images: Vec<crate::views::Image>,
}

/// Many images as `GET /api/v1/images/{id}` shows them to one viewer (for
/// the search role).
#[utoipa::path(post, path = "/internal/v1/images/views", tag = "internal", request_body = ViewsRequest,
    responses(
        (status = 200, body = Viewed),
        (status = 422, description = "More than 100 ids", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(ids = body.ids.len()))]
pub(crate) async fn views(
    State(ctx): State<AppContext>,
    ApiJson(body): ApiJson<ViewsRequest>,
) -> Result<Json<Viewed>, ApiError> {
    if body.ids.len() > MAX_VIEWS {
        return Err(ApiError::field(
            "ids",
            format!("at most {MAX_VIEWS} ids per call"),
        ));
    }
    let images = visible(
        &present::Links::of(&ctx),
        &ctx.backends.db,
        &body.ids,
        body.viewer,
    )
    .await?;
    Ok(Json(Viewed { images }))
}

/// The images of `ids` that `viewer` may see (the rules of
/// [`crate::access::visible_image`]), as it sees them, in the order asked,
/// each once; a fixed number of queries for any number of ids.
pub(super) async fn visible<C: ConnectionTrait>(
    links: &present::Links,
    conn: &C,
    ids: &[Uuid],
    viewer: Option<Uuid>,
) -> Result<Vec<crate::views::Image>, ApiError> {
    let ids = distinct(ids);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: HashMap<Uuid, image::Model> = image::Entity::find()
        .filter(image::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|i| (i.id, i))
        .collect();
    let owner_ids: HashSet<Uuid> = rows.values().map(|i| i.owner_id).collect();
    let owners: HashMap<Uuid, account::Model> = account::Entity::find()
        .filter(account::Column::Id.is_in(owner_ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let rels = relations(conn, viewer, &owner_ids).await?;
    let shown: Vec<image::Model> = ids
        .iter()
        .filter_map(|id| {
            let img = rows.remove(id)?;
            let owner = match owners.get(&img.owner_id) {
                Some(owner) => owner.clone(),
                None if viewer == Some(img.owner_id) => card_not_yet_known(img.owner_id),
                None => return None,
            };
            let rel = rels.get(&img.owner_id).copied().unwrap_or_default();
            can_see(&img, &owner, rel).then_some(img)
        })
        .collect();
    present::images_linked(links, conn, viewer, shown).await
}
