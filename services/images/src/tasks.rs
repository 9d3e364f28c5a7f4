//! Processing tasks: their API, and waiting for one to finish
//! (`?wait=true`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use pinhole_http::{ApiError, ApiQuery, AppContext, Auth};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};
use serde::Deserialize;
use tokio::sync::Notify;
use utoipa::IntoParams;

use crate::ImagesError;
use crate::entity::task;
use crate::{present, views};

/// Tasks someone in this process waits on.
static WAITERS: LazyLock<Mutex<HashMap<Uuid, Arc<Notify>>>> = LazyLock::new(Default::default);

/// Wakes whoever waits on `task_id` here.
pub fn notify(task_id: Uuid) {
    let waiter = WAITERS.lock().ok().and_then(|w| w.get(&task_id).cloned());
    if let Some(n) = waiter {
        n.notify_waiters();
    }
}

/// One waiter; the last one to leave removes the entry.
struct Registration(Uuid, Arc<Notify>);

impl Drop for Registration {
    fn drop(&mut self) {
        // The map's handle and this one: nobody else waits.
        if let Ok(mut w) = WAITERS.lock()
            && Arc::strong_count(&self.1) <= 2
        {
            w.remove(&self.0);
        }
    }
}

/// The task once it has finished, or as it stands after `limit`. Another
/// instance may finish it, so the row is read again every second too.
pub async fn wait_finished(
    ctx: &AppContext,
    task_id: Uuid,
    limit: Duration,
) -> Result<task::Model, ApiError> {
    let notify = {
        let mut w = WAITERS
            .lock()
            .map_err(|_| ApiError::internal("waiters lock poisoned"))?;
        Arc::clone(w.entry(task_id).or_default())
    };
    let registration = Registration(task_id, notify);
    let notify = &registration.1;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let woken = notify.notified();
        let t = task::Entity::find_by_id(task_id)
            .one(&ctx.backends.db)
            .await?
            .ok_or_else(task_not_found)?;
        if t.is_finished() || tokio::time::Instant::now() >= deadline {
            return Ok(t);
        }
        let next = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
        let _ = tokio::time::timeout_at(next, woken).await;
    }
}

fn task_not_found() -> ApiError {
    ApiError::not_found(ImagesError::TaskNotFound, "there is no such task")
}

async fn own_task<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    id: Uuid,
) -> Result<task::Model, ApiError> {
    task::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|t| t.owner_id == user)
        .ok_or_else(task_not_found)
}

/// A processing task of yours: queued, processing, done (with the
/// derivatives' links) or failed (with the reason).
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id")),
    responses(
        (status = 200, body = views::Task),
        (status = 401, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn get_task(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
) -> Result<Json<views::Task>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| task_not_found())?;
    let t = own_task(&ctx.backends.db, me.user_id, id).await?;
    Ok(Json(present::task(&ctx, &ctx.backends.db, t).await?))
}

/// `?ids=…` or `?batch_id=…`: one of them.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TaskQuery {
    /// Comma-separated task ids (1 to 500); not with `batch_id`.
    #[param(
        pattern = "^ *[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12} *(, *[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12} *)*,? *$"
    )]
    ids: Option<String>,
    /// A batch id given with the uploads; not with `ids`.
    #[param(value_type = Option<Uuid>)]
    batch_id: Option<String>,
}

const MAX_IDS: usize = 500;

/// Several of your tasks at once: by id, or every task of a batch, with how
/// many are in each state.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "images", security(("bearer" = [])),
    params(TaskQuery),
    responses(
        (status = 200, body = views::TaskList),
        (status = 401, body = pinhole_http::ErrorBody),
        (status = 422, description = "Neither or both of `ids` and `batch_id`, more than 500 ids, or one that is not an id (`validation-failed`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn list_tasks(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> Result<Json<views::TaskList>, ApiError> {
    let mut query = task::Entity::find().filter(task::Column::OwnerId.eq(me.user_id));
    match (&q.ids, &q.batch_id) {
        (Some(ids), None) => {
            let ids: Result<Vec<Uuid>, _> = ids
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Uuid::parse_str)
                .collect();
            let ids =
                ids.map_err(|_| ApiError::field("ids", "must be comma-separated task ids"))?;
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(ApiError::field(
                    "ids",
                    format!("give 1 to {MAX_IDS} task ids"),
                ));
            }
            query = query.filter(task::Column::Id.is_in(ids));
        }
        (None, Some(batch)) => {
            let batch = Uuid::parse_str(batch.trim())
                .map_err(|_| ApiError::field("batch_id", "must be a UUID"))?;
            query = query.filter(task::Column::BatchId.eq(batch));
        }
        _ => {
            return Err(ApiError::field("ids", "give either ids or batch_id"));
        }
    }
    let rows = query
        .order_by_asc(task::Column::CreatedAt)
        .limit(10_000)
        .all(&ctx.backends.db)
        .await?;
    let mut counts = views::TaskCounts::default();
    for t in &rows {
        match t.status {
            task::Status::Queued => counts.queued += 1,
            task::Status::Processing => counts.processing += 1,
            task::Status::Done => counts.done += 1,
            task::Status::Failed => counts.failed += 1,
        }
    }
    let items = present::tasks(&ctx, &ctx.backends.db, rows).await?;
    Ok(Json(views::TaskList { items, counts }))
}
