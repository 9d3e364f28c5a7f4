//! Comments and likes. Whoever may see an image may comment on it and like
//! it; comments are deleted by their author or the image's owner.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pinhole_events::OutgoingEvent;
use pinhole_events::images as kinds;
use pinhole_http::{ApiError, ApiJson, ApiQuery, AppContext, Auth, MaybeAuth};
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::ImagesError;
use crate::access::visible_image;
use crate::entity::{account, comment, like};
use crate::records::parse_id;
use crate::{present, views};

pub const MAX_COMMENT: usize = 2200;

/// `?cursor=…&limit=…`, documented as the lists ordered by id take it
/// (likes and explore document theirs in their own annotations).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// From the previous page's `next_cursor` (an id).
    #[param(value_type = Option<Uuid>)]
    pub cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u64, ApiError> {
        pinhole_http::page_limit(self.limit.as_deref())
    }

    /// The cursor as an id (pages ordered by UUIDv7 ids).
    pub fn id_cursor(&self) -> Result<Option<Uuid>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                Uuid::parse_str(c)
                    .map_err(|_| ApiError::field("cursor", "is not a cursor from this list"))
            })
            .transpose()
    }
}

async fn authors<C: ConnectionTrait>(
    conn: &C,
    ids: Vec<Uuid>,
) -> Result<HashMap<Uuid, account::Model>, ApiError> {
    Ok(account::Entity::find()
        .filter(account::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewComment {
    /// 1 to 2200 characters, not all blank.
    #[schema(max_length = 2200, pattern = r"\S")]
    body: String,
}

/// Comment on an image you may see.
#[utoipa::path(post, path = "/api/v1/images/{id}/comments", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id")),
    request_body = NewComment,
    responses(
        (status = 201, body = views::Comment),
        (status = 401, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
        (status = 422, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn add_comment(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<NewComment>,
) -> Result<(StatusCode, Json<views::Comment>), ApiError> {
    let id = parse_id(&id)?;
    let body = input.body.trim().to_owned();
    if body.is_empty() || body.chars().count() > MAX_COMMENT {
        return Err(ApiError::field(
            "body",
            format!("must be 1 to {MAX_COMMENT} characters"),
        ));
    }
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    visible_image(&txn, Some(me.user_id), id).await?;
    let row = comment::ActiveModel {
        id: Set(Uuid::now_v7()),
        image_id: Set(id),
        author_id: Set(me.user_id),
        body: Set(body),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(&txn)
    .await?;
    ctx.outbox
        .enqueue(
            &txn,
            &[OutgoingEvent::of(&kinds::CommentCreated {
                image_id: id,
                comment_id: row.id,
                author_id: me.user_id,
                body: row.body.clone(),
                created_at: row.created_at,
            })],
        )
        .await?;
    let author = account::Entity::find_by_id(me.user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok((
        StatusCode::CREATED,
        Json(views::Comment {
            id: row.id,
            image_id: id,
            author: present::author(author),
            body: row.body,
            created_at: row.created_at,
        }),
    ))
}

/// An image's comments, oldest first, without those of people who block
/// you or whom you block.
#[utoipa::path(get, path = "/api/v1/images/{id}/comments", tag = "images", security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id"), PageQuery),
    responses((status = 200, body = views::CommentPage), (status = 404, body = pinhole_http::ErrorBody)))]
pub(crate) async fn list_comments(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<views::CommentPage>, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    let id = parse_id(&id)?;
    let limit = page.limit()?;
    let cursor = page.id_cursor()?;
    Ok(Json(
        comment_page(&ctx.backends.db, viewer, id, cursor, limit).await?,
    ))
}

/// A page of the comments of the image `id` as `viewer` sees them, oldest
/// first, after `cursor`; 404 `image-not-found` when `viewer` may not see
/// the image.
pub(crate) async fn comment_page(
    db: &sea_orm::DatabaseConnection,
    viewer: Option<Uuid>,
    id: Uuid,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<views::CommentPage, ApiError> {
    visible_image(db, viewer, id).await?;
    let mut query = comment::Entity::find().filter(comment::Column::ImageId.eq(id));
    if let Some(after) = cursor {
        query = query.filter(comment::Column::Id.gt(after));
    }
    if let Some(v) = viewer {
        query = query.filter(crate::access::not_blocked_by(v, comment::Column::AuthorId));
    }
    let rows = query
        .order_by_asc(comment::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    let rows: Vec<comment::Model> = rows.into_iter().take(limit as usize).collect();
    let people = authors(db, rows.iter().map(|c| c.author_id).collect()).await?;
    let next_cursor = more
        .then(|| rows.last().map(|c| c.id.to_string()))
        .flatten();
    let items = rows
        .into_iter()
        .filter_map(|c| {
            let author = people.get(&c.author_id).cloned()?;
            Some(views::Comment {
                id: c.id,
                image_id: c.image_id,
                author: present::author(author),
                body: c.body,
                created_at: c.created_at,
            })
        })
        .collect();
    Ok(views::CommentPage { items, next_cursor })
}

/// Delete a comment: yours, or any on your image.
#[utoipa::path(delete, path = "/api/v1/images/{id}/comments/{comment_id}", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id"), ("comment_id" = Uuid, Path, description = "comment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn delete_comment(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path((id, comment_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let not_found =
        || ApiError::not_found(ImagesError::CommentNotFound, "there is no such comment");
    let comment_id = Uuid::parse_str(&comment_id).map_err(|_| not_found())?;
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let (img, _, _) = visible_image(&txn, Some(me.user_id), id).await?;
    let c = comment::Entity::find_by_id(comment_id)
        .one(&txn)
        .await?
        .filter(|c| c.image_id == id)
        .ok_or_else(not_found)?;
    if c.author_id != me.user_id && img.owner_id != me.user_id {
        return Err(ApiError::forbidden(
            "only the comment's author or the image's owner may delete it",
        ));
    }
    comment::Entity::delete_by_id(comment_id).exec(&txn).await?;
    ctx.outbox
        .enqueue(
            &txn,
            &[OutgoingEvent::of(&kinds::CommentDeleted {
                image_id: id,
                comment_id,
                deleted_by: me.user_id,
            })],
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

async fn like_count<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<u64, ApiError> {
    Ok(like::Entity::find()
        .filter(like::Column::ImageId.eq(id))
        .count(conn)
        .await?)
}

/// Like an image you may see (liking twice changes nothing).
#[utoipa::path(post, path = "/api/v1/images/{id}/like", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id")),
    responses((status = 200, body = views::LikeState), (status = 404, body = pinhole_http::ErrorBody)))]
pub(crate) async fn like_image(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
) -> Result<Json<views::LikeState>, ApiError> {
    set_like(&ctx, me.user_id, parse_id(&id)?, true).await
}

/// Take your like back.
#[utoipa::path(delete, path = "/api/v1/images/{id}/like", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id")),
    responses((status = 200, body = views::LikeState), (status = 404, body = pinhole_http::ErrorBody)))]
pub(crate) async fn unlike_image(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
) -> Result<Json<views::LikeState>, ApiError> {
    set_like(&ctx, me.user_id, parse_id(&id)?, false).await
}

async fn set_like(
    ctx: &AppContext,
    user: Uuid,
    id: Uuid,
    liked: bool,
) -> Result<Json<views::LikeState>, ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    visible_image(&txn, Some(user), id).await?;
    let exists = like::Entity::find_by_id((id, user))
        .one(&txn)
        .await?
        .is_some();
    if exists != liked {
        if liked {
            let inserted = like::Entity::insert(like::ActiveModel {
                image_id: Set(id),
                user_id: Set(user),
                created_at: Set(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6)),
            })
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    like::Column::ImageId,
                    like::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
            if inserted == 1 {
                ctx.outbox
                    .enqueue(
                        &txn,
                        &[OutgoingEvent::of(&kinds::LikeCreated {
                            image_id: id,
                            user_id: user,
                        })],
                    )
                    .await?;
            }
        } else {
            let removed = like::Entity::delete_by_id((id, user))
                .exec(&txn)
                .await?
                .rows_affected;
            if removed == 1 {
                ctx.outbox
                    .enqueue(
                        &txn,
                        &[OutgoingEvent::of(&kinds::LikeRemoved {
                            image_id: id,
                            user_id: user,
                        })],
                    )
                    .await?;
            }
        }
    }
    let like_count = like_count(&txn, id).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(Json(views::LikeState { liked, like_count }))
}

/// Who liked an image, newest first.
#[utoipa::path(get, path = "/api/v1/images/{id}/likes", tag = "images", security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "image id"),
        ("cursor" = Option<String>, Query, description = "From the previous page's `next_cursor` (`MICROS:USER_ID`)",
            pattern = "^-?[0-9]{1,16}:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
        ("limit" = Option<i32>, Query, description = "1 to 100; 20 when absent", minimum = 1, maximum = 100),
    ),
    responses((status = 200, body = views::LikerPage), (status = 404, body = pinhole_http::ErrorBody)))]
pub(crate) async fn list_likes(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<views::LikerPage>, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    let id = parse_id(&id)?;
    let limit = page.limit()?;
    // Cursor: `MICROS:USER_ID` of the last like shown.
    let cursor = match &page.cursor {
        None => None,
        Some(c) => {
            let bad = || ApiError::field("cursor", "is not a cursor from this list");
            let (at, uid) = c.split_once(':').ok_or_else(bad)?;
            let at = at
                .parse::<i64>()
                .ok()
                .and_then(chrono::DateTime::from_timestamp_micros)
                .ok_or_else(bad)?;
            Some((at, Uuid::parse_str(uid).map_err(|_| bad())?))
        }
    };
    let db = &ctx.backends.db;
    visible_image(db, viewer, id).await?;
    let mut query = like::Entity::find().filter(like::Column::ImageId.eq(id));
    if let Some((at, uid)) = cursor {
        query = query.filter(
            sea_orm::Condition::any()
                .add(like::Column::CreatedAt.lt(at))
                .add(
                    like::Column::CreatedAt
                        .eq(at)
                        .and(like::Column::UserId.lt(uid)),
                ),
        );
    }
    if let Some(v) = viewer {
        query = query.filter(crate::access::not_blocked_by(v, like::Column::UserId));
    }
    let rows = query
        .order_by_desc(like::Column::CreatedAt)
        .order_by_desc(like::Column::UserId)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    let rows: Vec<like::Model> = rows.into_iter().take(limit as usize).collect();
    let people = authors(db, rows.iter().map(|l| l.user_id).collect()).await?;
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|l| format!("{}:{}", l.created_at.timestamp_micros(), l.user_id))
        })
        .flatten();
    let items = rows
        .iter()
        .filter_map(|l| people.get(&l.user_id).cloned().map(present::author))
        .collect();
    Ok(Json(views::LikerPage { items, next_cursor }))
}
