//! Signing up, and one's own account: `/accounts`, `/me`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pinhole_auth::password;
use pinhole_cache::SlidingWindow;
use pinhole_http::{ApiError, ApiJson, AppContext, Auth, ClientIp};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue, IntoActiveModel};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{self, Email, Password, Problems, Username};
use crate::entity::{follow, user};
use crate::views::Account;
use crate::{UsersError, account};
use pinhole_events::OutgoingEvent;
use pinhole_events::users::{UserDeleted, UserRegistered, UserUpdated};

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SignUp {
    /// 3-30 of `[a-z0-9_]`, case-insensitive.
    #[schema(pattern = "^[A-Za-z0-9_]{3,30}$")]
    username: String,
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    /// At most 64 characters, no control characters but line breaks; blank
    /// is none.
    #[schema(
        max_length = 64,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    display_name: Option<String>,
}

/// Hashes off the runtime, one hash per core at a time. Counted in
/// `pinhole_password_hashes_total`: each is tens of milliseconds of a core.
pub(crate) async fn hash_password(password: Password) -> Result<String, ApiError> {
    metrics::counter!("pinhole_password_hashes_total", "role" => "users").increment(1);
    password::hash_async(password.expose().to_owned())
        .await
        .map_err(ApiError::internal)
}

/// 409 when the username or the email is taken.
async fn unique<C: sea_orm::ConnectionTrait>(
    conn: &C,
    username: &Username,
    email: &Email,
) -> Result<(), ApiError> {
    let taken = |column: user::Column, value: &str| {
        user::Entity::find()
            .filter(column.eq(value.to_owned()))
            .count(conn)
    };
    if taken(user::Column::Username, username.as_str()).await? > 0 {
        return Err(ApiError::conflict(
            UsersError::UsernameTaken,
            "that username is taken",
        ));
    }
    if taken(user::Column::Email, email.as_str()).await? > 0 {
        return Err(ApiError::conflict(
            UsersError::EmailTaken,
            "an account with that email exists",
        ));
    }
    Ok(())
}

/// At most `PINHOLE_SIGNUP_LIMIT` sign-ups per client address in any hour
/// (a sliding window counted in the cache, so every instance sees them).
async fn throttle_sign_up(ctx: &AppContext, ip: std::net::IpAddr) -> Result<(), ApiError> {
    const HOUR: SlidingWindow = SlidingWindow::new(std::time::Duration::from_secs(3600));
    let limit = ctx.settings.signup_limit;
    if limit == 0 {
        return Ok(());
    }
    let key = format!("signup:address:{}", crate::sessions::address_key(ip));
    let now = SlidingWindow::now();
    let hits = HOUR
        .hit(ctx.backends.cache.as_ref(), &key, now)
        .await
        .map_err(ApiError::unavailable)?;
    if hits.over(limit) {
        // A refused sign-up made no account: it does not count.
        if let Err(e) = HOUR.give_back(ctx.backends.cache.as_ref(), &key, now).await {
            tracing::warn!(error = %e, "could not uncount a refused sign-up");
        }
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            UsersError::TooManySignUps,
            "too many accounts made from this address; try again later",
        )
        .with_header(header::RETRY_AFTER, hits.retry_after(limit).to_string()));
    }
    Ok(())
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = SignUp,
    responses(
        (status = 201, description = "Created", body = Account),
        (status = 409, description = "Username or email taken", body = pinhole_http::ErrorBody),
        (status = 422, description = "Invalid fields, named in `fields` (`validation-failed`)", body = pinhole_http::ErrorBody),
        (status = 429, description = "Too many sign-ups from this address (`too-many-sign-ups`)", body = pinhole_http::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until this address may sign up again"))),
    ))]
pub(crate) async fn sign_up(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<Response, ApiError> {
    let mut problems = Problems::new();
    let username = Username::parse(&body.username)
        .map_err(|p| problems.insert("username".into(), p))
        .ok();
    let email = Email::parse(&body.email)
        .map_err(|p| problems.insert("email".into(), p))
        .ok();
    let password = Password::parse(body.password)
        .map_err(|p| problems.insert("password".into(), p))
        .ok();
    let display_name = domain::text(body.display_name.as_deref().unwrap_or(""), 64)
        .map_err(|p| problems.insert("display_name".into(), p))
        .ok()
        .flatten();
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(ApiError::invalid(problems));
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let db = &ctx.backends.db;
    // Taken names are refused before any hashing (argon2 is the expensive
    // part), and again inside the transaction for races.
    unique(db, &username, &email).await?;
    throttle_sign_up(&ctx, ip).await?;
    let password_hash = hash_password(password).await?;

    let txn = pinhole_db::begin_write(db).await?;
    unique(&txn, &username, &email).await?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    let created = user::ActiveModel {
        id: ActiveValue::Set(id),
        username: ActiveValue::Set(username.as_str().to_owned()),
        email: ActiveValue::Set(email.as_str().to_owned()),
        password_hash: ActiveValue::Set(password_hash),
        display_name: ActiveValue::Set(display_name),
        bio: ActiveValue::Set(None),
        website: ActiveValue::Set(None),
        avatar_image_id: ActiveValue::Set(None),
        is_private: ActiveValue::Set(false),
        post_count: ActiveValue::Set(0),
        created_at: ActiveValue::Set(now),
        updated_at: ActiveValue::Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        // Another sign-up won the race between the check and the insert.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => ApiError::conflict(
            UsersError::UsernameTaken,
            "that username or email was just taken",
        ),
        _ => ApiError::from(e),
    })?;
    ctx.outbox
        .enqueue(
            &txn,
            &[OutgoingEvent::of(&UserRegistered {
                account: crate::card(&created),
                created_at: created.created_at,
            })],
        )
        .await?;
    let body = account(&txn, created).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    tracing::info!(user_id = %id, "account created");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/users/{}", body.username))],
        Json(body),
    )
        .into_response())
}

/// Your account.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, body = Account),
        (status = 401, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn me(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
) -> Result<Json<Account>, ApiError> {
    let db = &ctx.backends.db;
    let me = crate::signed_in(db, principal.user_id).await?;
    Ok(Json(account(db, me).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateMe {
    /// At most 64 characters, no control characters but line breaks; blank
    /// is none.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(
        max_length = 64,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    display_name: Option<Option<String>>,
    /// At most 500 characters, no control characters but line breaks;
    /// blank is none.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    bio: Option<Option<String>>,
    /// An http or https URL of at most 200 characters; blank is none.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    #[schema(pattern = r"^\s*([hH][tT][tT][pP][sS]?://\S+)?\s*$", max_length = 200)]
    website: Option<Option<String>>,
    /// An image of yours to show as avatar.
    #[serde(default, deserialize_with = "pinhole_http::nullable")]
    avatar_image_id: Option<Option<Uuid>>,
    /// Followers must be approved; posts are for them only.
    is_private: Option<bool>,
}

/// Change your profile. Fields left out stay as they are; `null` clears.
/// Making a private account public approves its pending follow requests.
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])), request_body = UpdateMe,
    responses(
        (status = 200, body = Account),
        (status = 401, body = pinhole_http::ErrorBody),
        (status = 422, description = "Invalid fields, named in `fields`, or an avatar that is not an image of yours (`validation-failed`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn update_me(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<UpdateMe>,
) -> Result<Json<Account>, ApiError> {
    let mut problems = Problems::new();
    let mut check = |field: &str,
                     value: Option<Option<String>>,
                     parse: &dyn Fn(&str) -> Result<Option<String>, String>| {
        value.map(|v| match v {
            None => None,
            Some(s) => parse(&s)
                .map_err(|p| problems.insert(field.to_owned(), p))
                .ok()
                .flatten(),
        })
    };
    let display_name = check("display_name", body.display_name, &|s| domain::text(s, 64));
    let bio = check("bio", body.bio, &|s| domain::text(s, 500));
    let website = check("website", body.website, &domain::website);
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    // Asked before the transaction, so no row lock waits on another role.
    if let Some(Some(image)) = body.avatar_image_id
        && !owns_image(&ctx, principal.user_id, image).await?
    {
        return Err(ApiError::field(
            "avatar_image_id",
            "must be one of your images",
        ));
    }

    let db = &ctx.backends.db;
    let txn = pinhole_db::begin_write(db).await?;
    let current = crate::signed_in(&txn, principal.user_id).await?;
    let was_private = current.is_private;
    let mut changed = Vec::new();
    let mut row = current.clone().into_active_model();
    if let Some(v) = display_name {
        row.display_name = ActiveValue::Set(v);
        changed.push("display_name");
    }
    if let Some(v) = bio {
        row.bio = ActiveValue::Set(v);
        changed.push("bio");
    }
    if let Some(v) = website {
        row.website = ActiveValue::Set(v);
        changed.push("website");
    }
    if let Some(v) = body.avatar_image_id {
        row.avatar_image_id = ActiveValue::Set(v);
        changed.push("avatar_image_id");
    }
    if let Some(v) = body.is_private {
        row.is_private = ActiveValue::Set(v);
        changed.push("is_private");
    }
    let mut events = Vec::new();
    let updated = if changed.is_empty() {
        current
    } else {
        row.updated_at = ActiveValue::Set(Utc::now());
        let updated = row.update(&txn).await?;
        events.push(OutgoingEvent::of(&UserUpdated {
            account: crate::card(&updated),
            changed: changed.iter().map(|c| (*c).to_owned()).collect(),
        }));
        updated
    };
    if was_private && !updated.is_private {
        let pending = follow::Entity::find()
            .filter(follow::Column::FolloweeId.eq(updated.id))
            .filter(follow::Column::Status.eq(follow::Status::Pending))
            .all(&txn)
            .await?;
        let mut approved = Vec::with_capacity(pending.len());
        for request in pending {
            // A request withdrawn meanwhile is not approved, nor announced.
            if crate::social::approve(&txn, &request).await? {
                approved.push(request);
            }
        }
        let pending = approved;
        events.extend(pending.iter().map(|f| {
            crate::social::follow_event(&follow::Model {
                status: follow::Status::Active,
                ..f.clone()
            })
        }));
    }
    ctx.outbox.enqueue(&txn, &events).await?;
    let body = account(&txn, updated).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(Json(body))
}

/// Delete your account. Your sessions end at once; follows and blocks go
/// with it, and `user.deleted` tells the other roles to remove your content.
#[utoipa::path(delete, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn delete_me(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
) -> Result<StatusCode, ApiError> {
    let db = &ctx.backends.db;
    let txn = pinhole_db::begin_write(db).await?;
    let me = crate::signed_in(&txn, principal.user_id).await?;
    let cached = ctx.tokens.delete_user(&txn, me.id).await?;
    user::Entity::delete_by_id(me.id).exec(&txn).await?;
    ctx.outbox
        .enqueue(
            &txn,
            &[OutgoingEvent::of(&UserDeleted {
                user_id: me.id,
                username: me.username.clone(),
            })],
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    ctx.tokens.forget(&cached).await;
    tracing::info!(user_id = %me.id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Whether `image` is one of `user`'s, as the images role says (in process
/// or over HTTP); 503 `role-unavailable` when it cannot say.
async fn owns_image(ctx: &AppContext, user: Uuid, image: Uuid) -> Result<bool, ApiError> {
    Ok(ctx
        .clients
        .images
        .image(image)
        .await?
        .is_some_and(|i| i.owner_id == user))
}
