//! What this role keeps of the users role: account cards, follow edges
//! with their approval state, and blocks, fed by `pinhole.users` events.
//!
//! Every change is an upsert or a delete by key, so a replayed event
//! changes nothing. Events of one account (and the follows and blocks it
//! makes) arrive in order; across accounts they need not, and none of
//! these changes depends on another account's events having arrived.

use pinhole_bus::HandleError;
use pinhole_events::users::{
    AccountCard, BlockCreated, BlockRemoved, FollowCreated, FollowRemoved, FollowRequested,
    UserDeleted, UserRegistered, UserUpdated,
};
use pinhole_events::{Envelope, Event};
use pinhole_http::AppContext;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait};

use crate::entity::{account, block, follow};

/// Applies one `pinhole.users` event; `Ok(None)` for types this role does
/// not keep. A deleted account's id is returned for its images to go.
pub async fn apply(ctx: &AppContext, env: &Envelope) -> Result<Option<Uuid>, HandleError> {
    let db = &ctx.backends.db;
    let skip = |e: pinhole_events::DecodeError| HandleError::Skip(e.to_string());
    let mut deleted = None;
    match env.kind.as_str() {
        <UserRegistered as Event>::TYPE => {
            upsert_card(db, &env.decode::<UserRegistered>().map_err(skip)?.account).await?;
        }
        <UserUpdated as Event>::TYPE => {
            upsert_card(db, &env.decode::<UserUpdated>().map_err(skip)?.account).await?;
        }
        <UserDeleted as Event>::TYPE => {
            let e: UserDeleted = env.decode().map_err(skip)?;
            forget(db, e.user_id).await?;
            deleted = Some(e.user_id);
        }
        <FollowRequested as Event>::TYPE => {
            let e: FollowRequested = env.decode().map_err(skip)?;
            upsert_follow(db, e.follower_id, e.followee_id, follow::Status::Pending).await?;
        }
        <FollowCreated as Event>::TYPE => {
            let e: FollowCreated = env.decode().map_err(skip)?;
            upsert_follow(db, e.follower_id, e.followee_id, follow::Status::Active).await?;
        }
        <FollowRemoved as Event>::TYPE => {
            let e: FollowRemoved = env.decode().map_err(skip)?;
            follow::Entity::delete_by_id((e.follower_id, e.followee_id))
                .exec(db)
                .await?;
        }
        <BlockCreated as Event>::TYPE => {
            let e: BlockCreated = env.decode().map_err(skip)?;
            block::Entity::insert(block::ActiveModel {
                blocker_id: Set(e.blocker_id),
                blocked_id: Set(e.blocked_id),
            })
            .on_conflict(
                OnConflict::columns([block::Column::BlockerId, block::Column::BlockedId])
                    .do_nothing()
                    .to_owned(),
            )
            .do_nothing()
            .exec(db)
            .await?;
        }
        <BlockRemoved as Event>::TYPE => {
            let e: BlockRemoved = env.decode().map_err(skip)?;
            block::Entity::delete_by_id((e.blocker_id, e.blocked_id))
                .exec(db)
                .await?;
        }
        _ => return Ok(None),
    }
    metrics::counter!("pinhole_read_model_applied_total", "role" => "images", "type" => env.kind.clone())
        .increment(1);
    Ok(deleted)
}

async fn upsert_card<C: ConnectionTrait>(db: &C, card: &AccountCard) -> Result<(), DbErr> {
    account::Entity::insert(account::ActiveModel {
        id: Set(card.user_id),
        username: Set(card.username.clone()),
        display_name: Set(card.display_name.clone()),
        avatar_image_id: Set(card.avatar_image_id),
        is_private: Set(card.is_private),
    })
    .on_conflict(
        OnConflict::column(account::Column::Id)
            .update_columns([
                account::Column::Username,
                account::Column::DisplayName,
                account::Column::AvatarImageId,
                account::Column::IsPrivate,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

async fn upsert_follow<C: ConnectionTrait>(
    db: &C,
    follower: Uuid,
    followee: Uuid,
    status: follow::Status,
) -> Result<(), DbErr> {
    follow::Entity::insert(follow::ActiveModel {
        follower_id: Set(follower),
        followee_id: Set(followee),
        status: Set(status),
    })
    .on_conflict(
        OnConflict::columns([follow::Column::FollowerId, follow::Column::FolloweeId])
            .update_column(follow::Column::Status)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A deleted account: its card, its follows either way and its blocks
/// either way.
async fn forget(db: &DatabaseConnection, user: Uuid) -> Result<(), DbErr> {
    let txn = pinhole_db::begin_write(db).await?;
    account::Entity::delete_by_id(user).exec(&txn).await?;
    follow::Entity::delete_many()
        .filter(
            follow::Column::FollowerId
                .eq(user)
                .or(follow::Column::FolloweeId.eq(user)),
        )
        .exec(&txn)
        .await?;
    block::Entity::delete_many()
        .filter(
            block::Column::BlockerId
                .eq(user)
                .or(block::Column::BlockedId.eq(user)),
        )
        .exec(&txn)
        .await?;
    txn.commit().await
}
