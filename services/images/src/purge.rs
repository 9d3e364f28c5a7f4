//! Removing a deleted account's images and unfinished uploads.
//!
//! `user.deleted` only records the account in `account_purges`; a worker of
//! its own removes the images a few at a time, each in its own transaction,
//! so an account with thousands of images never holds up the consumer that
//! finishes other people's tasks, nor the database for long.

use std::sync::Arc;
use std::time::Duration;

use pinhole_http::{ApiError, AppContext};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder, QuerySelect};
use tokio::sync::Notify;

use crate::entity::{account_purge, image, upload};

/// Images removed per round before looking at the other accounts again.
const BATCH: u64 = 20;
/// How often to look for purges recorded by other processes.
const POLL: Duration = Duration::from_secs(5);

/// Wakes the purge worker of this process.
#[derive(Clone, Default)]
pub struct Purges {
    wake: Arc<Notify>,
}

impl Purges {
    /// Records that `user_id`'s images must go (idempotent).
    pub async fn request(&self, ctx: &AppContext, user_id: Uuid) -> Result<(), DbErr> {
        account_purge::Entity::insert(account_purge::ActiveModel {
            user_id: Set(user_id),
            requested_at: Set(chrono::Utc::now()),
            finished_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(account_purge::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .do_nothing()
        .exec(&ctx.backends.db)
        .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Purges until the task is dropped.
    pub async fn run(self, ctx: AppContext) {
        loop {
            match round(&ctx).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e.message, "purging deleted accounts failed"),
            }
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
        }
    }
}

/// Whether `user_id` is a deleted account (its images go, nothing more is
/// taken for it).
pub async fn deleted<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> Result<bool, DbErr> {
    Ok(account_purge::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .is_some())
}

/// One batch of every pending account; true while work is left.
async fn round(ctx: &AppContext) -> Result<bool, ApiError> {
    let pending = account_purge::Entity::find()
        .filter(account_purge::Column::FinishedAt.is_null())
        .order_by_asc(account_purge::Column::RequestedAt)
        .all(&ctx.backends.db)
        .await?;
    let mut more = false;
    for purge in pending {
        let ids: Vec<Uuid> = image::Entity::find()
            .select_only()
            .column(image::Column::Id)
            .filter(image::Column::OwnerId.eq(purge.user_id))
            .limit(BATCH)
            .into_tuple()
            .all(&ctx.backends.db)
            .await?;
        if ids.is_empty() {
            finish(ctx, purge.user_id).await?;
            continue;
        }
        for id in &ids {
            crate::records::remove(ctx, *id).await?;
        }
        tracing::info!(user_id = %purge.user_id, images = ids.len(), "purged a batch of a deleted account's images");
        more = true;
    }
    Ok(more)
}

/// No image left: the unfinished uploads go, then the record.
async fn finish(ctx: &AppContext, user_id: Uuid) -> Result<(), ApiError> {
    for up in upload::Entity::find()
        .filter(upload::Column::OwnerId.eq(user_id))
        .all(&ctx.backends.db)
        .await?
    {
        crate::upload::tus::discard(ctx, up.id).await?;
    }
    account_purge::Entity::update_many()
        .col_expr(
            account_purge::Column::FinishedAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now()),
        )
        .filter(account_purge::Column::UserId.eq(user_id))
        .exec(&ctx.backends.db)
        .await?;
    tracing::info!(%user_id, "deleted account purged");
    Ok(())
}
