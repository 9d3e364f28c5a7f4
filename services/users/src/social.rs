//! Profiles, follows, follow requests and blocks.
//!
//! A user who blocks you looks absent to you (404). Following a private
//! account makes a request that its owner approves or denies; its follower
//! and following lists are for its approved followers only. Blocking ends
//! follows both ways.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use pinhole_events::OutgoingEvent;
use pinhole_events::users::{
    BlockCreated, BlockRemoved, FollowCreated, FollowRemoved, FollowRequested,
};
use pinhole_http::{ApiError, ApiQuery, AppContext, Auth, MaybeAuth};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue, Condition, ConnectionTrait};

use crate::UsersError;
use crate::entity::{block, follow, user};
use crate::views::{FollowState, Profile, Relationship, UserPage};
use crate::{
    PageQuery, blocks, counts, find_by_username, follow_page, follow_row, lock_pair,
    user_not_found, visible,
};

/// `follow.created` (active) or `follow.requested` (pending), keyed by the
/// follower.
pub(crate) fn follow_event(f: &follow::Model) -> OutgoingEvent {
    if f.status == follow::Status::Active {
        OutgoingEvent::of(&FollowCreated {
            follower_id: f.follower_id,
            followee_id: f.followee_id,
        })
    } else {
        OutgoingEvent::of(&FollowRequested {
            follower_id: f.follower_id,
            followee_id: f.followee_id,
        })
    }
}

/// `follow.removed`, keyed by the follower.
fn follow_removed(f: &follow::Model) -> OutgoingEvent {
    OutgoingEvent::of(&FollowRemoved {
        follower_id: f.follower_id,
        followee_id: f.followee_id,
    })
}

/// A user's public profile; with a token, where you stand with them.
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", security((), ("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = Profile),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn profile(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(username): Path<String>,
) -> Result<Json<Profile>, ApiError> {
    let db = &ctx.backends.db;
    let viewer = viewer.map(|p| p.user_id);
    let target = visible(db, viewer, &username).await?;
    let (follower_count, following_count) = counts(db, target.id).await?;
    let relationship = match viewer {
        Some(me) if me != target.id => {
            let mine = follow_row(db, me, target.id).await?;
            let theirs = follow_row(db, target.id, me).await?;
            Some(Relationship {
                following: mine
                    .as_ref()
                    .is_some_and(|f| f.status == follow::Status::Active),
                requested: mine
                    .as_ref()
                    .is_some_and(|f| f.status == follow::Status::Pending),
                followed_by: theirs.is_some_and(|f| f.status == follow::Status::Active),
                blocking: blocks(db, me, target.id).await?,
            })
        }
        Some(_) => Some(Relationship::default()),
        None => None,
    };
    Ok(Json(Profile {
        id: target.id,
        username: target.username,
        display_name: target.display_name,
        bio: target.bio,
        website: target.website,
        avatar_image_id: target.avatar_image_id,
        is_private: target.is_private,
        follower_count,
        following_count,
        post_count: u64::try_from(target.post_count).unwrap_or(0),
        created_at: target.created_at,
        relationship,
    }))
}

/// Follow a user; a private account gets a request to approve.
#[utoipa::path(post, path = "/api/v1/users/{username}/follow", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 201, description = "Now following, or requested", body = FollowState),
        (status = 200, description = "Already following or requested", body = FollowState),
        (status = 404, body = pinhole_http::ErrorBody),
        (status = 409, description = "You block them", body = pinhole_http::ErrorBody),
        (status = 422, description = "Yourself", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn follow(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    Path(username): Path<String>,
) -> Result<(StatusCode, Json<FollowState>), ApiError> {
    let me = principal.user_id;
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let target = visible(&txn, Some(me), &username).await?;
    if target.id == me {
        return Err(ApiError::field("username", "you cannot follow yourself"));
    }
    lock_pair(&txn, me, target.id).await?;
    if blocks(&txn, target.id, me).await? {
        return Err(user_not_found());
    }
    if blocks(&txn, me, target.id).await? {
        return Err(ApiError::conflict(
            UsersError::UserBlocked,
            "you block this user; unblock them first",
        ));
    }
    let state = |status: follow::Status| FollowState {
        status: if status == follow::Status::Active {
            "following"
        } else {
            "requested"
        },
    };
    if let Some(existing) = follow_row(&txn, me, target.id).await? {
        return Ok((StatusCode::OK, Json(state(existing.status))));
    }
    let status = if target.is_private {
        follow::Status::Pending
    } else {
        follow::Status::Active
    };
    let created = follow::ActiveModel {
        id: ActiveValue::NotSet,
        follower_id: ActiveValue::Set(me),
        followee_id: ActiveValue::Set(target.id),
        status: ActiveValue::Set(status),
        created_at: ActiveValue::Set(Utc::now()),
    }
    .insert(&txn)
    .await;
    let created = match created {
        Ok(created) => created,
        // The same follow, made at the same moment by another request.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            return Ok((StatusCode::OK, Json(state(status))));
        }
        Err(e) => return Err(e.into()),
    };
    ctx.outbox.enqueue(&txn, &[follow_event(&created)]).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok((StatusCode::CREATED, Json(state(status))))
}

/// Ends a follow or withdraws a request, inside `txn`.
async fn end_follow<C: ConnectionTrait>(
    ctx: &AppContext,
    txn: &C,
    follower: Uuid,
    followee: Uuid,
) -> Result<(), ApiError> {
    if let Some(row) = follow_row(txn, follower, followee).await? {
        let deleted = follow::Entity::delete_many()
            .filter(follow::Column::Id.eq(row.id))
            .filter(follow::Column::Status.eq(row.status))
            .exec(txn)
            .await?
            .rows_affected;
        // Another request may have ended it first: one event per change.
        if deleted == 1 {
            ctx.outbox.enqueue(txn, &[follow_removed(&row)]).await?;
        }
    }
    Ok(())
}

/// Unfollow a user, or withdraw a follow request.
#[utoipa::path(delete, path = "/api/v1/users/{username}/follow", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "Not following"),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn unfollow(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let target = find_by_username(&txn, &username)
        .await?
        .ok_or_else(user_not_found)?;
    end_follow(&ctx, &txn, principal.user_id, target.id).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// Whether `viewer` may list `target`'s followers and following.
async fn may_list<C: ConnectionTrait>(
    conn: &C,
    viewer: Option<Uuid>,
    target: &user::Model,
) -> Result<(), ApiError> {
    if !target.is_private || viewer == Some(target.id) {
        return Ok(());
    }
    if let Some(viewer) = viewer
        && follow_row(conn, viewer, target.id)
            .await?
            .is_some_and(|f| f.status == follow::Status::Active)
    {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "this account is private; follow it to see who it follows and who follows it",
    ))
}

/// The active follows where `username` stands on `side` (followee: their
/// followers; follower: whom they follow), as `viewer` may see them.
async fn list(
    ctx: &AppContext,
    viewer: Option<Uuid>,
    username: &str,
    page: &PageQuery,
    side: follow::Column,
) -> Result<Json<UserPage>, ApiError> {
    let db = &ctx.backends.db;
    let target = visible(db, viewer, username).await?;
    may_list(db, viewer, &target).await?;
    let filter = Condition::all()
        .add(side.eq(target.id))
        .add(follow::Column::Status.eq(follow::Status::Active));
    let other = if matches!(side, follow::Column::FolloweeId) {
        follow::Column::FollowerId
    } else {
        follow::Column::FolloweeId
    };
    Ok(Json(follow_page(db, viewer, filter, other, page).await?))
}

/// Who follows a user, newest first.
#[utoipa::path(get, path = "/api/v1/users/{username}/followers", tag = "users", security((), ("bearer" = [])),
    params(("username" = String, Path), PageQuery),
    responses(
        (status = 200, body = UserPage),
        (status = 403, description = "Private account", body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn followers(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(username): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    list(&ctx, viewer, &username, &page, follow::Column::FolloweeId).await
}

/// Whom a user follows, newest first.
#[utoipa::path(get, path = "/api/v1/users/{username}/following", tag = "users", security((), ("bearer" = [])),
    params(("username" = String, Path), PageQuery),
    responses(
        (status = 200, body = UserPage),
        (status = 403, description = "Private account", body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn following(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(username): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    list(&ctx, viewer, &username, &page, follow::Column::FollowerId).await
}

/// Who asked to follow you, newest first.
#[utoipa::path(get, path = "/api/v1/me/follow-requests", tag = "users", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = UserPage),
        (status = 401, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn follow_requests(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let filter = Condition::all()
        .add(follow::Column::FolloweeId.eq(principal.user_id))
        .add(follow::Column::Status.eq(follow::Status::Pending));
    Ok(Json(
        follow_page(
            &ctx.backends.db,
            Some(principal.user_id),
            filter,
            follow::Column::FollowerId,
            &page,
        )
        .await?,
    ))
}

/// The pending request from `username` to `me`.
async fn pending_request<C: ConnectionTrait>(
    conn: &C,
    me: Uuid,
    username: &str,
) -> Result<follow::Model, ApiError> {
    let not_found = || {
        ApiError::not_found(
            UsersError::FollowRequestNotFound,
            "that user has not asked to follow you",
        )
    };
    let requester = find_by_username(conn, username)
        .await?
        .ok_or_else(not_found)?;
    follow_row(conn, requester.id, me)
        .await?
        .filter(|f| f.status == follow::Status::Pending)
        .ok_or_else(not_found)
}

/// Turns a pending request into a follow; `false` if it is no longer
/// pending (withdrawn or answered meanwhile).
pub(crate) async fn approve<C: ConnectionTrait>(
    txn: &C,
    request: &follow::Model,
) -> Result<bool, ApiError> {
    let changed = follow::Entity::update_many()
        .col_expr(follow::Column::Status, Expr::value(follow::Status::Active))
        .filter(follow::Column::Id.eq(request.id))
        .filter(follow::Column::Status.eq(follow::Status::Pending))
        .exec(txn)
        .await?
        .rows_affected;
    Ok(changed == 1)
}

/// Let a user who asked follow you.
#[utoipa::path(post, path = "/api/v1/me/follow-requests/{username}/approve", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "They follow you now"),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn approve_request(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let request = pending_request(&txn, principal.user_id, &username).await?;
    if approve(&txn, &request).await? {
        ctx.outbox
            .enqueue(
                &txn,
                &[follow_event(&follow::Model {
                    status: follow::Status::Active,
                    ..request
                })],
            )
            .await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// Turn down a follow request.
#[utoipa::path(post, path = "/api/v1/me/follow-requests/{username}/deny", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "Request removed"),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn deny_request(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let request = pending_request(&txn, principal.user_id, &username).await?;
    let deleted = follow::Entity::delete_many()
        .filter(follow::Column::Id.eq(request.id))
        .filter(follow::Column::Status.eq(follow::Status::Pending))
        .exec(&txn)
        .await?
        .rows_affected;
    if deleted == 1 {
        ctx.outbox
            .enqueue(&txn, &[follow_removed(&request)])
            .await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// Block a user: they cannot see you or follow you, and follows between
/// you end.
#[utoipa::path(post, path = "/api/v1/users/{username}/block", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "Blocked"),
        (status = 404, body = pinhole_http::ErrorBody),
        (status = 422, description = "Yourself", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn block(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let me = principal.user_id;
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let target = find_by_username(&txn, &username)
        .await?
        .ok_or_else(user_not_found)?;
    if target.id == me {
        return Err(ApiError::field("username", "you cannot block yourself"));
    }
    lock_pair(&txn, me, target.id).await?;
    if !blocks(&txn, me, target.id).await? {
        block::ActiveModel {
            blocker_id: ActiveValue::Set(me),
            blocked_id: ActiveValue::Set(target.id),
            created_at: ActiveValue::Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        ctx.outbox
            .enqueue(
                &txn,
                &[OutgoingEvent::of(&BlockCreated {
                    blocker_id: me,
                    blocked_id: target.id,
                })],
            )
            .await?;
    }
    end_follow(&ctx, &txn, me, target.id).await?;
    end_follow(&ctx, &txn, target.id, me).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// Unblock a user.
#[utoipa::path(delete, path = "/api/v1/users/{username}/block", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "Not blocked"),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn unblock(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let target = find_by_username(&txn, &username)
        .await?
        .ok_or_else(user_not_found)?;
    let lifted = block::Entity::delete_by_id((principal.user_id, target.id))
        .exec(&txn)
        .await?
        .rows_affected;
    if lifted == 1 {
        ctx.outbox
            .enqueue(
                &txn,
                &[OutgoingEvent::of(&BlockRemoved {
                    blocker_id: principal.user_id,
                    blocked_id: target.id,
                })],
            )
            .await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}
