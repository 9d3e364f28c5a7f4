//! Lists the gateway shows a viewer: an image's first comments and
//! explore's first images.

use axum::Json;
use axum::extract::{Path, State};
use pinhole_http::clients::{CommentList, MAX_COMMENTS, MAX_VIEWS, UserImages, ViewerQuery};
use pinhole_http::{ApiError, ApiQuery, AppContext};
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::image_not_found;
use crate::errors::ImagesError;
use crate::{feeds, present, social};

/// The first `limit` comments of `id` as `viewer` sees them; `None` when
/// `viewer` may not see the image.
pub(super) async fn first_comments(
    db: &DatabaseConnection,
    id: Uuid,
    viewer: Option<Uuid>,
    limit: u32,
) -> Result<Option<Vec<serde_json::Value>>, ApiError> {
    let limit = u64::from(limit.clamp(1, MAX_COMMENTS));
    let page = match social::comment_page(db, viewer, id, None, limit).await {
        Ok(page) => page,
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => return Ok(None),
        Err(e) => return Err(e),
    };
    page.items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map(Some)
        .map_err(ApiError::internal)
}

/// Explore's first `limit` images as `viewer` sees them.
pub(super) async fn explore_first(
    links: &present::Links,
    db: &DatabaseConnection,
    viewer: Option<Uuid>,
    limit: u32,
) -> Result<Vec<crate::views::Image>, ApiError> {
    let limit = u64::from(limit.clamp(1, MAX_VIEWS as u32));
    let rows = feeds::explore_rows(db, viewer, 0, limit).await?;
    present::images_linked(links, db, viewer, rows).await
}

/// An image's first comments as one viewer sees them (for the gateway).
#[utoipa::path(get, path = "/internal/v1/images/{id}/comments", tag = "internal",
    params(("id" = String, Path, description = "image id"), ViewerQuery),
    responses(
        (status = 200, body = CommentList),
        (status = 404, description = "No such image, or not one the viewer may see (`image-not-found`)", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(image_id = %id))]
pub(crate) async fn comments(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ViewerQuery>,
) -> Result<Json<CommentList>, ApiError> {
    let id = id.parse::<Uuid>().map_err(|_| image_not_found())?;
    let limit = q.limit.unwrap_or(20);
    first_comments(&ctx.backends.db, id, q.viewer, limit)
        .await?
        .map(|items| Json(CommentList { items }))
        .ok_or_else(image_not_found)
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Explored {
    /// As `GET /api/v1/explore` shows them to the viewer, best first.
    images: Vec<crate::views::Image>,
}

/// Explore's first images as one viewer sees them (for the gateway).
#[utoipa::path(get, path = "/internal/v1/images/explore", tag = "internal",
    params(ViewerQuery),
    responses((status = 200, body = Explored)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn explore(
    State(ctx): State<AppContext>,
    ApiQuery(q): ApiQuery<ViewerQuery>,
) -> Result<Json<Explored>, ApiError> {
    let images = explore_first(
        &present::Links::of(&ctx),
        &ctx.backends.db,
        q.viewer,
        q.limit.unwrap_or(30),
    )
    .await?;
    Ok(Json(Explored { images }))
}

/// `username`'s newest `limit` images as `viewer` may see them.
pub(super) async fn user_images(
    links: &present::Links,
    db: &DatabaseConnection,
    username: &str,
    viewer: Option<Uuid>,
    limit: u32,
) -> Result<UserImages, ApiError> {
    let q = social::PageQuery {
        cursor: None,
        limit: Some(limit.clamp(1, MAX_VIEWS as u32).to_string()),
    };
    match feeds::user_grid(links, db, viewer, username, &q).await {
        Ok(page) => page
            .items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map(UserImages::Shown)
            .map_err(ApiError::internal),
        Err(e) if e.code == pinhole_http::ErrorCode::code(&ImagesError::UserNotFound) => {
            Ok(UserImages::NotFound)
        }
        Err(e) if e.code == pinhole_http::ErrorCode::code(&ImagesError::AccountPrivate) => {
            Ok(UserImages::Private)
        }
        Err(e) => Err(e),
    }
}

/// A person's newest images as one viewer sees them (for the gateway).
#[utoipa::path(get, path = "/internal/v1/images/by-user/{username}", tag = "internal",
    params(("username" = String, Path, description = "username"), ViewerQuery),
    responses(
        (status = 200, body = Explored),
        (status = 403, description = "A private account the viewer does not follow (`account-private`)", body = pinhole_http::ErrorBody),
        (status = 404, description = "No such user (`user-not-found`)", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn by_user(
    State(ctx): State<AppContext>,
    Path(username): Path<String>,
    ApiQuery(q): ApiQuery<ViewerQuery>,
) -> Result<Json<Explored>, ApiError> {
    let page = social::PageQuery {
        cursor: None,
        limit: Some(q.limit.unwrap_or(30).clamp(1, MAX_VIEWS as u32).to_string()),
    };
    let links = present::Links::of(&ctx);
    let shown = feeds::user_grid(&links, &ctx.backends.db, q.viewer, &username, &page).await?;
    Ok(Json(Explored {
        images: shown.items,
    }))
}
