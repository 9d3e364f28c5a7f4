//! Deleting an image, by its owner or with its owner's account.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use pinhole_events::OutgoingEvent;
use pinhole_events::images as kinds;
use pinhole_http::{ApiError, AppContext, Auth};
use sea_orm::entity::prelude::*;

use super::parse_id;
use crate::access::owned_image;
use crate::entity::{image, image_version, task};
use crate::{present, store};

/// Removes an image in one transaction (with its tags, comments, likes,
/// tasks and kept versions), releases the references it and its versions
/// held, and tells every role.
///
/// Under the image's lock, so that a version deletion or an edit becoming
/// current at the same moment waits; what is released is what the
/// statements of this transaction really deleted.
pub async fn remove(ctx: &AppContext, id: Uuid) -> Result<(), ApiError> {
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    store::lock_image(&txn, id).await?;
    let versions = image_version::Entity::delete_many()
        .filter(image_version::Column::ImageId.eq(id))
        .exec_with_returning(&txn)
        .await?;
    let Some(img) = image::Entity::delete_many()
        .filter(image::Column::Id.eq(id))
        .exec_with_returning(&txn)
        .await?
        .pop()
    else {
        // Gone already (another request removed it first).
        return Ok(());
    };
    // The current version's row (if any) shares the image's reference;
    // every replaced version holds one of its own.
    let released: Vec<String> = std::iter::once(img.sha256.clone())
        .chain(
            versions
                .into_iter()
                .filter(|v| v.version != img.version)
                .map(|v| v.sha256),
        )
        .collect();
    store::lock_all(&txn, &released).await?;
    for sha in &released {
        store::release(&txn, sha).await?;
    }
    task::Entity::delete_many()
        .filter(task::Column::ImageId.eq(img.id))
        .exec(&txn)
        .await?;
    crate::entity::image_view::Entity::delete_by_id(img.id)
        .exec(&txn)
        .await?;
    ctx.outbox
        .enqueue(
            &txn,
            &[OutgoingEvent::of(&kinds::ImageDeleted {
                image_id: img.id,
                owner_id: img.owner_id,
                sha256: img.sha256.clone(),
                derivatives: present::stored_derivatives(&img),
            })],
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    store::collect_released(ctx, &released).await;
    tracing::info!(image_id = %img.id, "image deleted");
    Ok(())
}

/// Delete an image of yours: it disappears everywhere; the stored original
/// goes when no other image uses the same bytes.
#[utoipa::path(delete, path = "/api/v1/images/{id}", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn delete_image(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let img = owned_image(&ctx.backends.db, me.user_id, parse_id(&id)?).await?;
    remove(&ctx, img.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
