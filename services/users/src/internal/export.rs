//! Every account, follow and block, page by page in key order, for a role
//! that rebuilds what it keeps of them (the search index).

use axum::Json;
use axum::extract::State;
use pinhole_http::clients::{Edge, EdgeExportParams, EdgeKind, ExportQuery, ExportedEdges};
use pinhole_http::{ApiError, ApiQuery, AppContext};
use sea_orm::entity::prelude::*;
use sea_orm::{Condition, DatabaseConnection, QueryOrder, QuerySelect};

use super::Found;
use crate::entity::{block, follow, user};
use crate::views::UserSummary;

/// A page of every account, by id (what other roles keep of each: no
/// emails).
#[utoipa::path(get, path = "/internal/v1/export/accounts", tag = "internal",
    params(ExportQuery),
    responses(
        (status = 200, body = Found),
        (status = 422, description = "`after` is not an id, or `limit` not 1 to 1000", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn export_accounts(
    State(ctx): State<AppContext>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<Found>, ApiError> {
    let (after, limit) = (query.after_id()?, query.limit()?);
    let users = accounts(&ctx.backends.db, after, limit).await?;
    Ok(Json(Found {
        users: users.iter().map(UserSummary::from).collect(),
    }))
}

/// A page of every follow by (`from`, `to`): active ones approved, requests
/// to private accounts not yet.
#[utoipa::path(get, path = "/internal/v1/export/follows", tag = "internal",
    params(EdgeExportParams),
    responses(
        (status = 200, body = ExportedEdges),
        (status = 422, description = "`after` is not `FROM,TO`, or `limit` not 1 to 1000", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn export_follows(
    State(ctx): State<AppContext>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<ExportedEdges>, ApiError> {
    export_page(&ctx, EdgeKind::Follows, &query).await
}

/// A page of every block by (`from`, `to`): `from` blocks `to`.
#[utoipa::path(get, path = "/internal/v1/export/blocks", tag = "internal",
    params(EdgeExportParams),
    responses(
        (status = 200, body = ExportedEdges),
        (status = 422, description = "`after` is not `FROM,TO`, or `limit` not 1 to 1000", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn export_blocks(
    State(ctx): State<AppContext>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<ExportedEdges>, ApiError> {
    export_page(&ctx, EdgeKind::Blocks, &query).await
}

async fn export_page(
    ctx: &AppContext,
    kind: EdgeKind,
    query: &ExportQuery,
) -> Result<Json<ExportedEdges>, ApiError> {
    let (after, limit) = (query.after_edge()?, query.limit()?);
    let edges = edges(&ctx.backends.db, kind, after, limit).await?;
    Ok(Json(ExportedEdges { edges }))
}

/// Up to `limit` accounts after `after`, by id.
pub(super) async fn accounts(
    db: &DatabaseConnection,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<user::Model>, DbErr> {
    let mut query = user::Entity::find();
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    query
        .order_by_asc(user::Column::Id)
        .limit(u64::from(limit))
        .all(db)
        .await
}

/// Rows whose (`first`, `second`) comes after `after`.
fn past<C: ColumnTrait>(first: C, second: C, after: Option<(Uuid, Uuid)>) -> Condition {
    match after {
        None => Condition::all(),
        Some((a, b)) => Condition::any()
            .add(first.gt(a))
            .add(Condition::all().add(first.eq(a)).add(second.gt(b))),
    }
}

/// Up to `limit` edges of `kind` after `after`, by (`from`, `to`).
pub(super) async fn edges(
    db: &DatabaseConnection,
    kind: EdgeKind,
    after: Option<(Uuid, Uuid)>,
    limit: u32,
) -> Result<Vec<Edge>, DbErr> {
    let limit = u64::from(limit);
    Ok(match kind {
        EdgeKind::Follows => follow::Entity::find()
            .filter(past(
                follow::Column::FollowerId,
                follow::Column::FolloweeId,
                after,
            ))
            .order_by_asc(follow::Column::FollowerId)
            .order_by_asc(follow::Column::FolloweeId)
            .limit(limit)
            .all(db)
            .await?
            .into_iter()
            .map(|f| Edge {
                from: f.follower_id,
                to: f.followee_id,
                approved: f.status == follow::Status::Active,
            })
            .collect(),
        EdgeKind::Blocks => block::Entity::find()
            .filter(past(
                block::Column::BlockerId,
                block::Column::BlockedId,
                after,
            ))
            .order_by_asc(block::Column::BlockerId)
            .order_by_asc(block::Column::BlockedId)
            .limit(limit)
            .all(db)
            .await?
            .into_iter()
            .map(|b| Edge {
                from: b.blocker_id,
                to: b.blocked_id,
                approved: true,
            })
            .collect(),
    })
}
