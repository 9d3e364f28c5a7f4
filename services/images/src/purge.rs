//! Removing a deleted account's images, its comments and likes on other
//! people's images, and its unfinished uploads.
//!
//! `user.deleted` only records the account in `account_purges`; a worker of
//! its own removes the images a few at a time, each in its own transaction,
//! so an account with thousands of images never holds up the consumer that
//! finishes other people's tasks, nor the database for long. Comments and
//! likes go the same way, a batch per transaction with their events: no
//! foreign key ties them to the users role's accounts (which may live in
//! another database), so nothing else removes them.

use std::sync::Arc;
use std::time::Duration;

use pinhole_events::OutgoingEvent;
use pinhole_events::images as kinds;
use pinhole_http::{ApiError, AppContext};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};
use tokio::sync::Notify;

use crate::entity::{account_purge, comment, image, like, upload};

/// Images (and comments, and likes) removed per round before looking at
/// the other accounts again.
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

/// One batch of every pending account; true while work is left.
async fn round(ctx: &AppContext) -> Result<bool, ApiError> {
    let pending = account_purge::Entity::find()
        .filter(account_purge::Column::FinishedAt.is_null())
        .order_by_asc(account_purge::Column::RequestedAt)
        .all(&ctx.backends.db)
        .await?;
    let mut more = false;
    for purge in pending {
        let reactions = forget_reactions(ctx, purge.user_id).await?;
        let ids: Vec<Uuid> = image::Entity::find()
            .select_only()
            .column(image::Column::Id)
            .filter(image::Column::OwnerId.eq(purge.user_id))
            .limit(BATCH)
            .into_tuple()
            .all(&ctx.backends.db)
            .await?;
        if ids.is_empty() && reactions == 0 {
            finish(ctx, purge.user_id).await?;
            continue;
        }
        for id in &ids {
            crate::records::remove(ctx, *id).await?;
        }
        if !ids.is_empty() {
            tracing::info!(user_id = %purge.user_id, images = ids.len(), "purged a batch of a deleted account's images");
        }
        more = true;
    }
    Ok(more)
}

/// A batch of a deleted account's comments and likes (on anyone's images),
/// removed in one transaction with their `comment.deleted` and
/// `like.removed` events, as if it had taken them back itself. Like counts
/// are counted from `likes`, so they follow. How many went.
async fn forget_reactions(ctx: &AppContext, user_id: Uuid) -> Result<usize, ApiError> {
    let db = &ctx.backends.db;
    // Most rounds find nothing: no write transaction for that.
    let any = comment::Entity::find()
        .filter(comment::Column::AuthorId.eq(user_id))
        .one(db)
        .await?
        .is_some()
        || like::Entity::find()
            .filter(like::Column::UserId.eq(user_id))
            .one(db)
            .await?
            .is_some();
    if !any {
        return Ok(0);
    }
    let txn = pinhole_db::begin_write(db).await?;
    let comments: Vec<(Uuid, Uuid)> = comment::Entity::find()
        .select_only()
        .column(comment::Column::Id)
        .column(comment::Column::ImageId)
        .filter(comment::Column::AuthorId.eq(user_id))
        .limit(BATCH)
        .into_tuple()
        .all(&txn)
        .await?;
    let likes: Vec<Uuid> = like::Entity::find()
        .select_only()
        .column(like::Column::ImageId)
        .filter(like::Column::UserId.eq(user_id))
        .limit(BATCH)
        .into_tuple()
        .all(&txn)
        .await?;
    let mut events = Vec::with_capacity(comments.len() + likes.len());
    for (comment_id, image_id) in comments {
        comment::Entity::delete_by_id(comment_id).exec(&txn).await?;
        events.push(OutgoingEvent::of(&kinds::CommentDeleted {
            image_id,
            comment_id,
            deleted_by: user_id,
        }));
    }
    let comments = events.len();
    for image_id in likes {
        like::Entity::delete_by_id((image_id, user_id))
            .exec(&txn)
            .await?;
        events.push(OutgoingEvent::of(&kinds::LikeRemoved { image_id, user_id }));
    }
    ctx.outbox.enqueue(&txn, &events).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    tracing::info!(%user_id, comments, likes = events.len() - comments, "removed a batch of a deleted account's comments and likes");
    Ok(events.len())
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
