//! Logging in and out, and refreshing tokens: `/sessions`.
//!
//! Failed log-ins are counted in sliding windows (in the cache, so every
//! instance sees them) per account *from one client address*, per client
//! address, and per account from anywhere. Each attempt is counted before
//! its password is checked and given back if it succeeds or is refused.
//! Past either of the first two limits the answer is 429 with `Retry-After`
//! until enough failures have slid out of the window; failures of an
//! account from many addresses only slow its log-ins down (never refuse
//! them), so nobody can lock another person out by guessing their
//! password. An unknown account and a wrong password get the same answer,
//! in the same time.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pinhole_auth::{RefreshError, TokenPair, password};
use pinhole_cache::SlidingWindow;
use pinhole_http::{ApiError, ApiJson, AppContext, Auth, ClientIp};
use sea_orm::entity::prelude::*;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::UsersError;
use crate::entity::user;
use crate::views::Session;
use crate::{account, domain};

/// Failed log-ins allowed per account from one client address per window.
pub const ACCOUNT_LIMIT: u64 = 5;
/// Failed log-ins allowed per client address per window.
pub const ADDRESS_LIMIT: u64 = 20;
/// Failed log-ins of an account from anywhere after which its log-ins are
/// slowed down (by [`SLOWDOWN_STEP`] per failure more, at most
/// [`SLOWDOWN_MAX`]).
pub const ACCOUNT_SLOWDOWN_AFTER: u64 = 5;
const SLOWDOWN_STEP: Duration = Duration::from_millis(100);
const SLOWDOWN_MAX: Duration = Duration::from_secs(2);
const WINDOW: SlidingWindow = SlidingWindow::new(Duration::from_secs(15 * 60));

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LogIn {
    /// Username or email (the field may also be named `username` or
    /// `email`), at most 254 characters.
    #[serde(alias = "username", alias = "email")]
    #[schema(max_length = 254, pattern = r"\S")]
    login: String,
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct Refresh {
    refresh_token: String,
}

/// A client address as throttles count it: one IPv6 client usually holds
/// a whole /64.
pub(crate) fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(String::new, |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The counters a log-in attempt counts against, at one moment.
struct Throttle {
    /// Refused past their limit: the account from this address, the address.
    keys: [(String, u64); 2],
    /// Slowed down past [`ACCOUNT_SLOWDOWN_AFTER`]: the account from anywhere.
    account: String,
    /// Seconds since the epoch.
    now: f64,
}

impl Throttle {
    fn new(account: &str, ip: IpAddr) -> Self {
        let address = address_key(ip);
        Self {
            keys: [
                (format!("login:pair:{account}:{address}"), ACCOUNT_LIMIT),
                (format!("login:address:{address}"), ADDRESS_LIMIT),
            ],
            account: format!("login:account:{account}"),
            now: SlidingWindow::now(),
        }
    }

    /// Counts this attempt against both limits before any password is
    /// checked, so that attempts made at once cannot all slip under them.
    async fn reserve(&self, ctx: &AppContext) -> Result<(), ApiError> {
        let cache = ctx.backends.cache.as_ref();
        let mut retry_after = 0;
        for (key, limit) in &self.keys {
            let hits = WINDOW
                .hit(cache, key, self.now)
                .await
                .map_err(ApiError::unavailable)?;
            if hits.over(*limit) {
                retry_after = retry_after.max(hits.retry_after(*limit));
            }
        }
        if retry_after > 0 {
            // A refused attempt checks no password: it is no failure.
            for (key, _) in &self.keys {
                if let Err(e) = WINDOW.give_back(cache, key, self.now).await {
                    tracing::warn!(error = %e, "could not uncount a refused log-in");
                }
            }
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                UsersError::TooManyAttempts,
                "too many failed log-ins; try again later",
            )
            .with_header(header::RETRY_AFTER, retry_after.to_string()));
        }
        let everywhere = WINDOW
            .hit(cache, &self.account, self.now)
            .await
            .map_err(ApiError::unavailable)?
            .estimate() as u64;
        let delay = slowdown(everywhere);
        if !delay.is_zero() {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                failures = everywhere - 1,
                "slowing down log-ins of an account guessed at from many places"
            );
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    /// A successful log-in was no failure: gives its count back.
    async fn succeeded(&self, ctx: &AppContext) {
        let cache = ctx.backends.cache.as_ref();
        for key in self.keys.iter().map(|(k, _)| k).chain([&self.account]) {
            if let Err(e) = WINDOW.give_back(cache, key, self.now).await {
                tracing::warn!(error = %e, "could not uncount a log-in");
            }
        }
    }
}

/// How long a log-in waits when this attempt is the account's `attempts`th
/// from anywhere in the window.
fn slowdown(attempts: u64) -> Duration {
    let failures = attempts.saturating_sub(1);
    if failures <= ACCOUNT_SLOWDOWN_AFTER {
        return Duration::ZERO;
    }
    let over = u32::try_from(failures - ACCOUNT_SLOWDOWN_AFTER).unwrap_or(u32::MAX);
    SLOWDOWN_STEP.saturating_mul(over).min(SLOWDOWN_MAX)
}

async fn session(ctx: &AppContext, pair: TokenPair) -> Result<Session, ApiError> {
    let db = &ctx.backends.db;
    let user = crate::signed_in(db, pair.user_id).await?;
    let now = Utc::now();
    Ok(Session {
        token_type: "Bearer",
        expires_in: (pair.access_expires_at - now).num_seconds(),
        expires_at: pair.access_expires_at,
        refresh_expires_in: (pair.refresh_expires_at - now).num_seconds(),
        refresh_expires_at: pair.refresh_expires_at,
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        user: account(db, user).await?,
    })
}

fn bad_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        UsersError::InvalidCredentials,
        "wrong username, email or password",
    )
}

/// Log in with a username or email and a password.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = LogIn,
    responses(
        (status = 201, description = "Logged in", body = Session),
        (status = 401, description = "Wrong credentials (`invalid-credentials`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "`login` is blank or too long, or a field is missing (`validation-failed`)", body = pinhole_http::ErrorBody),
        (status = 429, description = "Too many failed log-ins of this account from this address, or from this address in all (`too-many-attempts`); failures from other addresses only slow log-ins down, never refuse them", body = pinhole_http::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until this address may try again"))),
    ))]
pub(crate) async fn log_in(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LogIn>,
) -> Result<Response, ApiError> {
    let login = body.login.trim().to_lowercase();
    if login.is_empty() || login.chars().count() > 254 {
        return Err(ApiError::field("login", "give your username or email"));
    }
    let db = &ctx.backends.db;
    let found = if login.contains('@') {
        match domain::Email::parse(&login) {
            Ok(email) => {
                user::Entity::find()
                    .filter(user::Column::Email.eq(email.as_str()))
                    .one(db)
                    .await?
            }
            Err(_) => None,
        }
    } else {
        crate::find_by_username(db, &login).await?
    };
    // Counted per account whichever name it is reached by; unknown names
    // count on their own.
    let account_key = found
        .as_ref()
        .map_or_else(|| format!("name:{login}"), |u| format!("id:{}", u.id));
    let throttle = Throttle::new(&account_key, ip);
    throttle.reserve(&ctx).await?;
    let phc = found
        .as_ref()
        .map_or_else(|| password::decoy().to_owned(), |u| u.password_hash.clone());
    let matches = password::verify_async(body.password, phc)
        .await
        .map_err(ApiError::internal)?;
    let Some(user) = found.filter(|_| matches) else {
        return Err(bad_credentials());
    };
    throttle.succeeded(&ctx).await;
    let pair = ctx.tokens.issue(db, user.id, None).await?;
    tracing::info!(user_id = %user.id, "logged in");
    Ok((StatusCode::CREATED, Json(session(&ctx, pair).await?)).into_response())
}

/// Exchange a refresh token for new tokens. Each refresh token works once:
/// a second use ends every session of that log-in.
#[utoipa::path(post, path = "/api/v1/sessions/refresh", tag = "sessions", request_body = Refresh,
    responses(
        (status = 200, body = Session),
        (status = 401, description = "Invalid, expired or reused refresh token", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn refresh(
    State(ctx): State<AppContext>,
    ApiJson(body): ApiJson<Refresh>,
) -> Result<Json<Session>, ApiError> {
    match ctx.tokens.refresh(body.refresh_token.trim()).await {
        Ok(pair) => Ok(Json(session(&ctx, pair).await?)),
        Err(RefreshError::Invalid) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            UsersError::InvalidRefreshToken,
            "the refresh token is expired, revoked or not valid",
        )),
        Err(e @ RefreshError::Reused) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            UsersError::RefreshTokenReused,
            e.to_string(),
        )),
        Err(RefreshError::Db(e)) => Err(e.into()),
    }
}

/// Log out: the access token and its refresh token stop working.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn log_out(
    State(ctx): State<AppContext>,
    Auth(principal): Auth,
) -> Result<StatusCode, ApiError> {
    ctx.tokens.revoke_family(principal.family_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    fn address_key(ip: &str) -> String {
        Throttle::new("a", ip.parse().expect("ip")).keys[1]
            .0
            .clone()
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        assert_eq!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:2:ffff::9")
        );
        assert_ne!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:3::1")
        );
        assert_eq!(address_key("::ffff:192.0.2.7"), address_key("192.0.2.7"));
    }
}
