//! Post counts, kept from the images role's events: `user_images` holds
//! which images exist and whose they are, and `users.post_count` moves only
//! when a row really came or went, so a replayed event changes nothing.

use pinhole_bus::{HandleError, Record};
use pinhole_events::images::{ImageDeleted, ImageUploaded};
use pinhole_events::{Envelope, Event};
use pinhole_http::AppContext;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};

use crate::entity::{user, user_image};

/// Consumer group of the users role.
pub const GROUP: &str = "users";

/// Handles one record of `pinhole.images`.
pub async fn handle(ctx: &AppContext, record: Record) -> Result<(), HandleError> {
    let env = Envelope::from_json(&record.payload)
        .map_err(|e| HandleError::Skip(format!("not an event: {e}")))?;
    let skip = |e: pinhole_events::DecodeError| HandleError::Skip(e.to_string());
    match env.kind.as_str() {
        <ImageUploaded as Event>::TYPE => {
            let e: ImageUploaded = env.decode().map_err(skip)?;
            count(ctx, e.image.image_id, e.image.owner_id, true).await?;
        }
        <ImageDeleted as Event>::TYPE => {
            let e: ImageDeleted = env.decode().map_err(skip)?;
            count(ctx, e.image_id, e.owner_id, false).await?;
        }
        _ => return Ok(()),
    }
    metrics::counter!("pinhole_read_model_applied_total", "role" => "users", "type" => env.kind.clone())
        .increment(1);
    Ok(())
}

async fn count(ctx: &AppContext, image: Uuid, owner: Uuid, exists: bool) -> Result<(), DbErr> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    let changed = if exists {
        user_image::Entity::insert(user_image::ActiveModel {
            image_id: Set(image),
            owner_id: Set(owner),
        })
        .on_conflict(
            OnConflict::column(user_image::Column::ImageId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?
    } else {
        user_image::Entity::delete_by_id(image)
            .exec(&txn)
            .await?
            .rows_affected
    };
    if changed == 1 {
        let delta: i64 = if exists { 1 } else { -1 };
        user::Entity::update_many()
            .col_expr(
                user::Column::PostCount,
                Expr::col(user::Column::PostCount).add(delta),
            )
            .filter(user::Column::Id.eq(owner))
            .exec(&txn)
            .await?;
    }
    txn.commit().await
}
