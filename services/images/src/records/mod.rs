//! One image: its record, metadata changes ([`metadata`]), deletion
//! ([`deletion`]), and the original ([`original`]).

mod deletion;
mod metadata;
mod original;

pub(crate) use deletion::{__path_delete_image, delete_image, remove};
pub(crate) use metadata::{__path_update_image, update_image};
pub(crate) use original::{__path_original, original};

use axum::Json;
use axum::extract::{Path, State};
use pinhole_http::{ApiError, AppContext, MaybeAuth};
use sea_orm::entity::prelude::*;

use crate::access::{image_not_found, visible_image};
use crate::{present, views};

pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| image_not_found())
}

/// An image: metadata, tags, location, EXIF (GPS for the owner only),
/// derivatives, counts. Hidden images answer 404.
#[utoipa::path(get, path = "/api/v1/images/{id}", tag = "images", security((), ("bearer" = [])),
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
