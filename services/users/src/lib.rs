//! The `users` role: accounts, credentials, sessions and tokens, profiles,
//! follows (with requests for private accounts) and blocks. Every other role
//! asks it who a user is and whose a token is: through [`InProcessUsers`]
//! when hosted in the same process, through `/internal/v1/users/lookup` and
//! `/internal/v1/tokens/verify` otherwise (`pinhole_http::clients`).
//!
//! Its routes are mounted by `pinhole serve` when the role is selected.

mod accounts;
pub mod domain;
pub mod entity;
pub mod errors;
mod internal;
mod posts;
mod sessions;
mod social;
pub mod views;

pub use errors::UsersError;
pub use internal::InProcessUsers;

use pinhole_http::{ApiError, AppContext};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use entity::{block, follow, user};
use views::{Account, UserPage, UserSummary};

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "users";

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    // Make the decoy hash now, so that the first log-in to an unknown
    // account takes no longer than the others.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(|| {
            pinhole_auth::password::decoy();
        });
    }
    OpenApiRouter::new()
        .routes(routes!(accounts::sign_up))
        .routes(routes!(
            accounts::me,
            accounts::update_me,
            accounts::delete_me
        ))
        .routes(routes!(sessions::log_in))
        .routes(routes!(sessions::refresh))
        .routes(routes!(sessions::log_out))
        .routes(routes!(social::profile))
        .routes(routes!(social::follow, social::unfollow))
        .routes(routes!(social::followers))
        .routes(routes!(social::following))
        .routes(routes!(social::follow_requests))
        .routes(routes!(social::approve_request))
        .routes(routes!(social::deny_request))
        .routes(routes!(social::block, social::unblock))
        .with_state(ctx.clone())
        .merge(
            OpenApiRouter::new()
                .routes(routes!(internal::lookup))
                .routes(routes!(internal::verify_token))
                .routes(routes!(internal::export_accounts))
                .routes(routes!(internal::export_follows))
                .routes(routes!(internal::export_blocks))
                .layer(axum::middleware::from_fn_with_state(
                    ctx.clone(),
                    pinhole_http::internal_only,
                ))
                .with_state(ctx.clone()),
        )
}

/// What other roles keep of an account (in its events).
fn card(u: &user::Model) -> pinhole_events::users::AccountCard {
    pinhole_events::users::AccountCard {
        user_id: u.id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        avatar_image_id: u.avatar_image_id,
        is_private: u.is_private,
    }
}

fn user_not_found() -> ApiError {
    ApiError::not_found(UsersError::UserNotFound, "there is no such user")
}

async fn find_by_username<C: ConnectionTrait>(
    conn: &C,
    username: &str,
) -> Result<Option<user::Model>, ApiError> {
    let Ok(name) = domain::Username::parse(username) else {
        return Ok(None);
    };
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(name.as_str()))
        .one(conn)
        .await?)
}

/// The caller's account: a valid token whose account is gone is a 401.
async fn signed_in<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<user::Model, ApiError> {
    user::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))
}

async fn blocks<C: ConnectionTrait>(
    conn: &C,
    blocker: Uuid,
    blocked: Uuid,
) -> Result<bool, ApiError> {
    Ok(block::Entity::find_by_id((blocker, blocked))
        .one(conn)
        .await?
        .is_some())
}

/// `username` as `viewer` may see them: absent, and blocking the viewer,
/// look the same (404).
async fn visible<C: ConnectionTrait>(
    conn: &C,
    viewer: Option<Uuid>,
    username: &str,
) -> Result<user::Model, ApiError> {
    let target = find_by_username(conn, username)
        .await?
        .ok_or_else(user_not_found)?;
    if let Some(viewer) = viewer
        && viewer != target.id
        && blocks(conn, target.id, viewer).await?
    {
        return Err(user_not_found());
    }
    Ok(target)
}

/// Serializes changes between two users (a follow racing a block) until the
/// transaction ends. SQLite has one writer at a time already.
async fn lock_pair<C: ConnectionTrait>(txn: &C, a: Uuid, b: Uuid) -> Result<(), ApiError> {
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        txn.execute(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("pair:{low}:{high}").into()],
        ))
        .await?;
    }
    Ok(())
}

async fn follow_row<C: ConnectionTrait>(
    conn: &C,
    follower: Uuid,
    followee: Uuid,
) -> Result<Option<follow::Model>, ApiError> {
    Ok(follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower))
        .filter(follow::Column::FolloweeId.eq(followee))
        .one(conn)
        .await?)
}

/// (followers, following) of `id`, active follows only.
async fn counts<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<(u64, u64), ApiError> {
    let active =
        || follow::Entity::find().filter(follow::Column::Status.eq(follow::Status::Active));
    let followers = active()
        .filter(follow::Column::FolloweeId.eq(id))
        .count(conn)
        .await?;
    let following = active()
        .filter(follow::Column::FollowerId.eq(id))
        .count(conn)
        .await?;
    Ok((followers, following))
}

async fn account<C: ConnectionTrait>(conn: &C, u: user::Model) -> Result<Account, ApiError> {
    let (follower_count, following_count) = counts(conn, u.id).await?;
    Ok(Account {
        id: u.id,
        username: u.username,
        email: u.email,
        display_name: u.display_name,
        bio: u.bio,
        website: u.website,
        avatar_image_id: u.avatar_image_id,
        is_private: u.is_private,
        follower_count,
        following_count,
        post_count: u64::try_from(u.post_count).unwrap_or(0),
        created_at: u.created_at,
    })
}

/// `?cursor=…&limit=…`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// From the previous page's `next_cursor` (a number).
    #[param(pattern = "^[+-]?[0-9]{1,18}$")]
    cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

impl PageQuery {
    fn parse(&self) -> Result<(Option<i64>, u64), ApiError> {
        let limit = pinhole_http::page_limit(self.limit.as_deref())?;
        let cursor = match &self.cursor {
            None => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .map_err(|_| ApiError::field("cursor", "is not a cursor from this list"))?,
            ),
        };
        Ok((cursor, limit))
    }
}

/// A page of follows (newest first) turned into the users on `side`; users
/// who block `viewer` are left out.
async fn follow_page<C: ConnectionTrait>(
    conn: &C,
    viewer: Option<Uuid>,
    filter: sea_orm::Condition,
    side: follow::Column,
    page: &PageQuery,
) -> Result<UserPage, ApiError> {
    let (cursor, limit) = page.parse()?;
    let mut query = follow::Entity::find().filter(filter);
    if let Some(before) = cursor {
        query = query.filter(follow::Column::Id.lt(before));
    }
    let rows = query
        .order_by_desc(follow::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let more = rows.len() as u64 > limit;
    let rows: Vec<follow::Model> = rows.into_iter().take(limit as usize).collect();
    let ids: Vec<Uuid> = rows
        .iter()
        .map(|r| {
            if matches!(side, follow::Column::FollowerId) {
                r.follower_id
            } else {
                r.followee_id
            }
        })
        .collect();
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.clone()))
        .all(conn)
        .await?;
    let blocking_viewer: Vec<Uuid> = match viewer {
        Some(viewer) => block::Entity::find()
            .filter(block::Column::BlockedId.eq(viewer))
            .filter(block::Column::BlockerId.is_in(ids.clone()))
            .all(conn)
            .await?
            .into_iter()
            .map(|b| b.blocker_id)
            .collect(),
        None => Vec::new(),
    };
    let items = ids
        .iter()
        .filter(|id| !blocking_viewer.contains(id))
        .filter_map(|id| users.iter().find(|u| u.id == *id).map(UserSummary::from))
        .collect();
    Ok(UserPage {
        items,
        next_cursor: if more {
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        },
    })
}

/// Starts the role's workers: the consumer that keeps post counts from the
/// images role's events.
pub fn background(ctx: &AppContext) -> Vec<tokio::task::JoinHandle<()>> {
    let ctx = ctx.clone();
    vec![tokio::spawn(async move {
        let handler_ctx = ctx.clone();
        pinhole_bus::consume(
            ctx.backends.bus.clone(),
            posts::GROUP.to_owned(),
            vec![pinhole_events::topics::IMAGES],
            pinhole_db::dead_letters::parking(
                ctx.backends.db.clone(),
                ctx.settings.event_max_attempts,
            ),
            move |record| {
                let ctx = handler_ctx.clone();
                async move { posts::handle(&ctx, record).await }
            },
        )
        .await;
    })]
}
