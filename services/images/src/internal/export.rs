//! Every ready image with its likes and comments, page by page by id, for
//! a role that rebuilds what it keeps of them (the search index).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use pinhole_http::clients::{ExportQuery, ExportedComment, ExportedImages, ImageExport};
use pinhole_http::{ApiError, ApiQuery, AppContext};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

use crate::entity::{account_purge, comment, image, like};
use crate::{outgoing, present};

/// A page of every ready image, by id, with its like count and comments
/// (images of deleted accounts, on their way out, are left out).
#[utoipa::path(get, path = "/internal/v1/export/images", tag = "internal",
    params(ExportQuery),
    responses(
        (status = 200, body = ExportedImages),
        (status = 422, description = "`after` is not an id, or `limit` not 1 to 1000", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn export_images(
    State(ctx): State<AppContext>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<ExportedImages>, ApiError> {
    let (after, limit) = (query.after_id()?, query.limit()?);
    let images = page(&ctx.backends.db, after, limit).await?;
    Ok(Json(ExportedImages { images }))
}

/// Up to `limit` ready images after `after`, by id, in four queries.
pub(super) async fn page<C: ConnectionTrait>(
    conn: &C,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ImageExport>, ApiError> {
    let mut rows = image::Entity::find()
        .filter(image::Column::Status.eq(image::READY))
        .filter(
            Expr::col((image::Entity, image::Column::OwnerId)).not_in_subquery(
                Query::select()
                    .column(account_purge::Column::UserId)
                    .from(account_purge::Entity)
                    .to_owned(),
            ),
        );
    if let Some(after) = after {
        rows = rows.filter(image::Column::Id.gt(after));
    }
    let rows = rows
        .order_by_asc(image::Column::Id)
        .limit(u64::from(limit))
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|i| i.id).collect();
    let mut tags = present::tags_of(conn, &ids).await?;
    let mut likers: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (image, user) in like::Entity::find()
        .select_only()
        .column(like::Column::ImageId)
        .column(like::Column::UserId)
        .filter(like::Column::ImageId.is_in(ids.iter().copied()))
        .order_by_asc(like::Column::UserId)
        .into_tuple::<(Uuid, Uuid)>()
        .all(conn)
        .await?
    {
        likers.entry(image).or_default().push(user);
    }
    let mut comments: HashMap<Uuid, Vec<ExportedComment>> = HashMap::new();
    for c in comment::Entity::find()
        .filter(comment::Column::ImageId.is_in(ids.iter().copied()))
        .order_by_asc(comment::Column::CreatedAt)
        .order_by_asc(comment::Column::Id)
        .all(conn)
        .await?
    {
        comments
            .entry(c.image_id)
            .or_default()
            .push(ExportedComment {
                comment_id: c.id,
                author_id: c.author_id,
                body: c.body,
                created_at: c.created_at,
            });
    }
    Ok(rows
        .iter()
        .map(|img| ImageExport {
            image: outgoing::record(img, &tags.remove(&img.id).unwrap_or_default()),
            like_count: likers.get(&img.id).map_or(0, |l| l.len() as u64),
            likers: likers.remove(&img.id).unwrap_or_default(),
            comments: comments.remove(&img.id).unwrap_or_default(),
        })
        .collect())
}
