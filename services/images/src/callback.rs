//! Task callbacks: when a task ends, its `callback_url` gets a POST with the
//! task as JSON, signed with the server's signing key:
//! `Pinhole-Signature: t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(key, "{t}.{body}"))`.
//!
//! Deliveries are kept in the task row (pending, delivered, failed) and
//! retried with backoff by a loop in every images instance, so a restart
//! loses none. Targets on private, loopback, link-local and other
//! non-public addresses are refused unless `callback_allow_private` is set;
//! the address checked is the one connected to (no DNS rebinding).

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::Utc;
use pinhole_http::{ApiError, AppContext};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{QueryOrder, QuerySelect};
use tokio::sync::Notify;

use crate::callback_url::{check_url, is_internal};
use crate::entity::task;
use crate::present;

/// Attempts before a callback is given up.
pub const MAX_ATTEMPTS: i32 = 6;
const TIMEOUT: Duration = Duration::from_secs(10);

static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Tells the delivery loop that a callback is due.
pub fn wake() {
    WAKE.notify_waiters();
}

/// Where to connect for `url`: every address the name resolves to must be
/// allowed; the first is used.
async fn target(url: &url::Url, allow_private: bool) -> Result<SocketAddr, String> {
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().ok_or("no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if !allow_private && addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(format!("{host} resolves to a non-public address"));
    }
    Ok(addrs[0])
}

/// The signature header value for `body` sent at `t`.
pub fn signature(ctx: &AppContext, t: i64, body: &[u8]) -> String {
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    format!("t={t},v1={}", ctx.signer.sign_message(&message))
}

async fn deliver(ctx: &AppContext, t: &task::Model) -> Result<(), String> {
    let raw = t.callback_url.as_deref().ok_or("no callback url")?;
    let allow = ctx.settings.callback_allow_private;
    let url = check_url(raw, allow)?;
    let addr = target(&url, allow).await?;
    let view = present::task(ctx, &ctx.backends.db, t.clone())
        .await
        .map_err(|e| e.message)?;
    let body = serde_json::to_vec(&serde_json::json!({
        "type": if t.status == task::Status::Done { "task.done" } else { "task.failed" },
        "task": view,
    }))
    .map_err(|e| e.to_string())?;
    let now = Utc::now().timestamp();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name again, undoing the address check.
        .no_proxy()
        .timeout(TIMEOUT);
    if let Some(host) = url.host_str() {
        builder = builder.resolve(host, addr);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "pinhole-callbacks/1")
        .header("pinhole-signature", signature(ctx, now, &body))
        .header("pinhole-task-id", t.id.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}

/// Delivers due callbacks until the task is aborted.
pub async fn run(ctx: AppContext) {
    loop {
        let woken = WAKE.notified();
        match deliver_due(&ctx).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "callback delivery failed"),
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), woken).await;
    }
}

async fn deliver_due(ctx: &AppContext) -> Result<usize, ApiError> {
    let now = Utc::now();
    let due = task::Entity::find()
        .filter(task::Column::CallbackState.eq(task::CallbackState::Pending))
        .filter(task::Column::CallbackNextAt.lte(now))
        .order_by_asc(task::Column::CallbackNextAt)
        .limit(16)
        .all(&ctx.backends.db)
        .await?;
    let mut handled = 0;
    for t in due {
        // Claim it: another instance that read the same row loses here.
        let lease = Utc::now() + chrono::Duration::seconds(60);
        let claimed = task::Entity::update_many()
            .col_expr(task::Column::CallbackNextAt, Expr::value(lease))
            .filter(task::Column::Id.eq(t.id))
            .filter(task::Column::CallbackState.eq(task::CallbackState::Pending))
            .filter(task::Column::CallbackNextAt.eq(t.callback_next_at))
            .exec(&ctx.backends.db)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            continue;
        }
        handled += 1;
        let attempts = t.callback_attempts + 1;
        let outcome = tokio::time::timeout(TIMEOUT * 2, deliver(ctx, &t))
            .await
            .unwrap_or_else(|_| Err("no answer in time".into()));
        let (state, next) = match outcome {
            Ok(()) => {
                tracing::info!(task_id = %t.id, "callback delivered");
                (task::CallbackState::Delivered, None)
            }
            Err(why) if attempts >= MAX_ATTEMPTS => {
                tracing::warn!(task_id = %t.id, %why, attempts, "callback given up");
                (task::CallbackState::Failed, None)
            }
            Err(why) => {
                let backoff =
                    chrono::Duration::seconds(2i64.pow(u32::try_from(attempts).unwrap_or(1)));
                tracing::info!(task_id = %t.id, %why, attempts, "callback failed; will retry");
                (task::CallbackState::Pending, Some(Utc::now() + backoff))
            }
        };
        task::Entity::update_many()
            .col_expr(task::Column::CallbackState, Expr::value(state))
            .col_expr(task::Column::CallbackAttempts, Expr::value(attempts))
            .col_expr(task::Column::CallbackNextAt, Expr::value(next))
            .filter(task::Column::Id.eq(t.id))
            .filter(task::Column::CallbackNextAt.eq(lease))
            .exec(&ctx.backends.db)
            .await?;
    }
    Ok(handled)
}
