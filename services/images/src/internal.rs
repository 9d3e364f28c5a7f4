//! What other roles ask the images role: whose an image is, how far along
//! and for whom; many images as a viewer sees them ([`views`]); every ready
//! image with its likes and comments, page by page ([`export`]). Over HTTP
//! under `/internal/v1` (which a public proxy should not expose;
//! `PINHOLE_INTERNAL_TOKEN` guards it) for roles in other processes, and
//! through [`InProcessImages`] for roles in this one.

mod export;
mod lists;
mod views;

pub(crate) use export::{__path_export_images, export_images};
pub(crate) use lists::{
    __path_by_user, __path_comments, __path_explore, by_user, comments, explore,
};
pub(crate) use views::{__path_views, views};

use axum::Json;
use axum::extract::{Path, State};
use pinhole_http::clients::{
    ClientError, ImageExport, ImageFacts, ImageStatus, ImageVisibility, clamp_export_limit,
};
use pinhole_http::{ApiError, AppContext, ImagesClient};
use sea_orm::entity::prelude::*;
use sea_orm::{DatabaseConnection, QuerySelect};

use crate::access::image_not_found;
use crate::domain::Visibility;
use crate::entity::image;

/// An answer the role could not give (its cause was logged where it
/// happened), as an error of the in-process client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
struct Unanswered {
    code: &'static str,
    message: String,
}

fn failed(e: ApiError) -> ClientError {
    ClientError::failed(
        crate::ROLE,
        Unanswered {
            code: e.code,
            message: e.message,
        },
    )
}

/// The image `id`, as other roles may know it.
async fn facts(db: &DatabaseConnection, id: Uuid) -> Result<Option<ImageFacts>, ClientError> {
    let failed = |e| ClientError::failed(crate::ROLE, e);
    let row: Option<(Uuid, image::Status, Visibility)> = image::Entity::find_by_id(id)
        .select_only()
        .column(image::Column::OwnerId)
        .column(image::Column::Status)
        .column(image::Column::Visibility)
        .into_tuple()
        .one(db)
        .await
        .map_err(failed)?;
    let Some((owner_id, status, visibility)) = row else {
        return Ok(None);
    };
    let status = match status {
        image::Status::Processing => ImageStatus::Processing,
        image::Status::Ready => ImageStatus::Ready,
        image::Status::Failed => ImageStatus::Failed,
    };
    let visibility = match visibility {
        Visibility::Public => ImageVisibility::Public,
        Visibility::Followers => ImageVisibility::Followers,
        Visibility::Private => ImageVisibility::Private,
    };
    Ok(Some(ImageFacts {
        image_id: id,
        owner_id,
        status,
        visibility,
    }))
}

/// Whose an image is, its status and visibility (for the users role's
/// avatar check, and other roles).
#[utoipa::path(get, path = "/internal/v1/images/{id}", tag = "internal",
    params(("id" = String, Path, description = "image id")),
    responses(
        (status = 200, body = ImageFacts),
        (status = 404, description = "No such image (`image-not-found`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn image(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
) -> Result<Json<ImageFacts>, ApiError> {
    let id = id.parse::<Uuid>().map_err(|_| image_not_found())?;
    facts(&ctx.backends.db, id)
        .await?
        .map(Json)
        .ok_or_else(image_not_found)
}

/// The images role, asked by roles hosted in the same process.
#[derive(Clone)]
pub struct InProcessImages {
    db: DatabaseConnection,
    links: crate::present::Links,
}

impl InProcessImages {
    /// Over the role's database, making derivative links with `links`.
    pub fn new(db: DatabaseConnection, links: crate::present::Links) -> Self {
        Self { db, links }
    }
}

#[async_trait::async_trait]
impl ImagesClient for InProcessImages {
    async fn image(&self, id: Uuid) -> Result<Option<ImageFacts>, ClientError> {
        facts(&self.db, id).await
    }

    async fn views(
        &self,
        ids: &[Uuid],
        viewer: Option<Uuid>,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        let shown = views::visible(&self.links, &self.db, ids, viewer)
            .await
            .map_err(failed)?;
        shown
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::failed(crate::ROLE, e))
    }

    async fn export(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ImageExport>, ClientError> {
        export::page(&self.db, after, clamp_export_limit(limit))
            .await
            .map_err(failed)
    }

    async fn comments(
        &self,
        id: Uuid,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Option<Vec<serde_json::Value>>, ClientError> {
        lists::first_comments(&self.db, id, viewer, limit)
            .await
            .map_err(failed)
    }

    async fn user_images(
        &self,
        username: &str,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<pinhole_http::clients::UserImages, ClientError> {
        lists::user_images(&self.links, &self.db, username, viewer, limit)
            .await
            .map_err(failed)
    }

    async fn explore(
        &self,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        let shown = lists::explore_first(&self.links, &self.db, viewer, limit)
            .await
            .map_err(failed)?;
        shown
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::failed(crate::ROLE, e))
    }
}
