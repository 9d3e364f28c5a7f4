//! Feeds: the home timeline (people you follow, and you), a user's grid,
//! and explore (recent popular public images). Newest first with cursors,
//! except explore, ranked by likes and comments.

use axum::Json;
use axum::extract::{Path, State};
use pinhole_http::{ApiError, ApiQuery, AppContext, Auth, MaybeAuth};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{Condition, ConnectionTrait, QueryOrder, QuerySelect, Select};

use crate::ImagesError;
use crate::access::{followees, others_visible, relation};
use crate::entity::{account, image};
use crate::social::PageQuery;
use crate::{present, views};

async fn page<C: ConnectionTrait>(
    links: &present::Links,
    conn: &C,
    viewer: Option<Uuid>,
    query: Select<image::Entity>,
    page: &PageQuery,
) -> Result<views::ImagePage, ApiError> {
    let limit = page.limit()?;
    let mut query = query;
    if let Some(before) = page.id_cursor()? {
        query = query.filter(image::Column::Id.lt(before));
    }
    let rows = query
        .order_by_desc(image::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let more = rows.len() as u64 > limit;
    let rows: Vec<image::Model> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| rows.last().map(|i| i.id.to_string()))
        .flatten();
    let items = present::images_linked(links, conn, viewer, rows).await?;
    Ok(views::ImagePage { items, next_cursor })
}

/// Your home timeline: images of the people you follow that you may see,
/// and your own, newest first.
#[utoipa::path(get, path = "/api/v1/feed", tag = "images", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = views::ImagePage), (status = 401, body = pinhole_http::ErrorBody)))]
pub(crate) async fn home(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<views::ImagePage>, ApiError> {
    let db = &ctx.backends.db;
    let followed = followees(me.user_id);
    let query = image::Entity::find().filter(
        Condition::any()
            .add(image::Column::OwnerId.eq(me.user_id))
            .add(
                Condition::all()
                    .add(followed)
                    .add(others_visible(Some(me.user_id))),
            ),
    );
    let links = present::Links::of(&ctx);
    Ok(Json(page(&links, db, Some(me.user_id), query, &q).await?))
}

/// A user's images, newest first: all of them for the owner; for others,
/// what they may see (a private account's only to its approved followers).
#[utoipa::path(get, path = "/api/v1/users/{username}/images", tag = "images", security((), ("bearer" = [])),
    params(("username" = String, Path, description = "username"), PageQuery),
    responses(
        (status = 200, body = views::ImagePage),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn grid(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(username): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<views::ImagePage>, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    let (links, db) = (present::Links::of(&ctx), &ctx.backends.db);
    Ok(Json(user_grid(&links, db, viewer, &username, &q).await?))
}

/// A page of `username`'s images as `viewer` may see them, newest first:
/// 404 `user-not-found` (also when either blocks the other), 403
/// `account-private` for a private account the viewer does not follow.
pub(crate) async fn user_grid(
    links: &present::Links,
    db: &sea_orm::DatabaseConnection,
    viewer: Option<Uuid>,
    username: &str,
    q: &PageQuery,
) -> Result<views::ImagePage, ApiError> {
    let not_found = || ApiError::not_found(ImagesError::UserNotFound, "there is no such user");
    let owner = account::Entity::find()
        .filter(account::Column::Username.eq(username.trim().to_lowercase()))
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    let rel = relation(db, viewer, owner.id).await?;
    if rel.blocked {
        return Err(not_found());
    }
    if owner.is_private && !rel.is_owner && !rel.follows {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            ImagesError::AccountPrivate,
            "this account is private: only its approved followers see its images",
        ));
    }
    let mut query = image::Entity::find().filter(image::Column::OwnerId.eq(owner.id));
    if !rel.is_owner {
        query = query.filter(others_visible(viewer));
    }
    page(links, db, viewer, query, q).await
}

/// How far back explore looks.
const EXPLORE_DAYS: i64 = 7;

/// Explore: public images of public accounts from the last week, most
/// liked and commented first.
#[utoipa::path(get, path = "/api/v1/explore", tag = "images", security((), ("bearer" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "From the previous page's `next_cursor` (`o` and an offset up to 10000)",
            pattern = "^o([0-9]{1,4}|10000)$"),
        ("limit" = Option<i32>, Query, description = "1 to 100; 20 when absent", minimum = 1, maximum = 100),
    ),
    responses((status = 200, body = views::ImagePage)))]
pub(crate) async fn explore(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<views::ImagePage>, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    let db = &ctx.backends.db;
    let limit = q.limit()?;
    let offset = match &q.cursor {
        None => 0,
        Some(c) => c
            .strip_prefix("o")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n <= 10_000)
            .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this list"))?,
    };
    let rows = explore_rows(db, viewer, offset, limit + 1).await?;
    let more = rows.len() as u64 > limit;
    let rows: Vec<image::Model> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more.then(|| format!("o{}", offset + limit));
    let items = present::images(&ctx, db, viewer, rows).await?;
    Ok(Json(views::ImagePage { items, next_cursor }))
}

/// Explore's images `offset..offset + limit` as `viewer` may see them, best
/// first.
pub(crate) async fn explore_rows(
    db: &sea_orm::DatabaseConnection,
    viewer: Option<Uuid>,
    offset: u64,
    limit: u64,
) -> Result<Vec<image::Model>, ApiError> {
    let since = chrono::Utc::now() - chrono::Duration::days(EXPLORE_DAYS);
    let score = Expr::cust(
        "((SELECT COUNT(*) FROM likes WHERE likes.image_id = images.id) \
         + 2 * (SELECT COUNT(*) FROM comments WHERE comments.image_id = images.id))",
    );
    let mut visible = Condition::all()
        .add(image::Column::Visibility.eq(crate::domain::Visibility::Public))
        .add(image::Column::CreatedAt.gte(since))
        .add(others_visible(None));
    if let Some(v) = viewer {
        visible = visible.add(crate::access::not_blocked(v));
    }
    let rows = image::Entity::find()
        .filter(visible)
        .order_by(score, Order::Desc)
        .order_by_desc(image::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows)
}
