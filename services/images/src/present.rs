//! Turns rows into API views, loading owners, tags and counts for a whole
//! page at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use pinhole_blob::{SharedBlobs, UrlSigner};
use pinhole_http::{ApiError, AppContext};
use pinhole_media::ExifData;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QuerySelect};

use crate::entity::{account, comment, image, image_tag, like, task};
use crate::views::{self, Author, Derivative, StoredDerivative};

/// How long derivative links stay valid, at least: the store makes them
/// per link bucket (an hour), so every read within one gives the same URL.
const LINK_TTL: Duration = Duration::from_secs(24 * 3600);

pub fn author(a: account::Model) -> Author {
    Author {
        id: a.id,
        username: a.username,
        display_name: a.display_name,
        avatar_image_id: a.avatar_image_id,
    }
}

pub fn stored_derivatives(img: &image::Model) -> Vec<StoredDerivative> {
    img.derivatives
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default()
}

pub async fn derivative_links(
    ctx: &AppContext,
    stored: Vec<StoredDerivative>,
) -> Result<Vec<Derivative>, ApiError> {
    Links::of(ctx).derivatives(stored).await
}

/// What derivative links are made with: the blob store's own links for
/// stored derivatives, and the server's signed `/t/…` links for those the
/// thumbnails role makes on their first request.
#[derive(Clone)]
pub struct Links {
    pub blobs: SharedBlobs,
    pub signer: UrlSigner,
}

impl Links {
    /// The context's blob store and link signer.
    pub fn of(ctx: &AppContext) -> Self {
        Self {
            blobs: Arc::clone(&ctx.backends.blobs),
            signer: ctx.signer.clone(),
        }
    }

    /// Derivatives with their links.
    pub async fn derivatives(
        &self,
        stored: Vec<StoredDerivative>,
    ) -> Result<Vec<Derivative>, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let mut out = Vec::with_capacity(stored.len());
        for d in stored {
            let url = if d.on_request {
                self.signer.link_at("/t", &d.key, LINK_TTL, now)
            } else {
                self.blobs
                    .presign_get(&d.key, LINK_TTL)
                    .await
                    .map_err(ApiError::internal)?
            };
            out.push(Derivative {
                name: d.name,
                width: d.width,
                height: d.height,
                format: d.format,
                url: url.to_string(),
            });
        }
        Ok(out)
    }
}

async fn counts<C: ConnectionTrait, E: EntityTrait>(
    conn: &C,
    image_col: E::Column,
    count_col: E::Column,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, u64>, ApiError> {
    let rows: Vec<(Uuid, i64)> = E::find()
        .select_only()
        .column(image_col)
        .column_as(count_col.count(), "n")
        .filter(image_col.is_in(ids.iter().copied()))
        .group_by(image_col)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, n)| (id, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// Tags of each image, sorted.
pub async fn tags_of<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<String>>, ApiError> {
    let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
    for t in image_tag::Entity::find()
        .filter(image_tag::Column::ImageId.is_in(ids.iter().copied()))
        .all(conn)
        .await?
    {
        out.entry(t.image_id).or_default().push(t.tag);
    }
    for tags in out.values_mut() {
        tags.sort();
    }
    Ok(out)
}

/// Views of `images` as `viewer` sees them, in the same order.
pub async fn images<C: ConnectionTrait>(
    ctx: &AppContext,
    conn: &C,
    viewer: Option<Uuid>,
    images: Vec<image::Model>,
) -> Result<Vec<views::Image>, ApiError> {
    images_linked(&Links::of(ctx), conn, viewer, images).await
}

/// [`images`], with derivative links made by `links` (for callers that
/// hold those, not the whole context).
pub async fn images_linked<C: ConnectionTrait>(
    links: &Links,
    conn: &C,
    viewer: Option<Uuid>,
    images: Vec<image::Model>,
) -> Result<Vec<views::Image>, ApiError> {
    let ids: Vec<Uuid> = images.iter().map(|i| i.id).collect();
    let owner_ids: HashSet<Uuid> = images.iter().map(|i| i.owner_id).collect();
    let owners: HashMap<Uuid, account::Model> = account::Entity::find()
        .filter(account::Column::Id.is_in(owner_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut tags = tags_of(conn, &ids).await?;
    let likes =
        counts::<_, like::Entity>(conn, like::Column::ImageId, like::Column::UserId, &ids).await?;
    let comments =
        counts::<_, comment::Entity>(conn, comment::Column::ImageId, comment::Column::Id, &ids)
            .await?;
    let viewed = crate::view_counts::of(conn, &ids).await?;
    let liked: Option<HashSet<Uuid>> = match viewer {
        None => None,
        Some(v) => Some(
            like::Entity::find()
                .filter(like::Column::UserId.eq(v))
                .filter(like::Column::ImageId.is_in(ids.iter().copied()))
                .all(conn)
                .await?
                .into_iter()
                .map(|l| l.image_id)
                .collect(),
        ),
    };
    let mut out = Vec::with_capacity(images.len());
    for img in images {
        let Some(owner) = owners.get(&img.owner_id).cloned().or_else(|| {
            (viewer == Some(img.owner_id)).then(|| crate::access::card_not_yet_known(img.owner_id))
        }) else {
            continue;
        };
        let is_owner = viewer == Some(img.owner_id);
        let mut exif: Option<ExifData> = img
            .exif
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok());
        if !is_owner && let Some(e) = exif.as_mut() {
            e.gps = None;
        }
        let derivatives = links.derivatives(stored_derivatives(&img)).await?;
        let location = match (img.lat, img.lon) {
            (Some(lat), Some(lon)) => {
                Some(views::Location::of(lat, lon, img.place_name.as_deref()))
            }
            _ => None,
        };
        out.push(views::Image {
            id: img.id,
            owner: author(owner),
            title: img.title,
            description: img.description,
            tags: tags.remove(&img.id).unwrap_or_default(),
            alt_text: img.alt_text,
            visibility: img.visibility,
            location,
            format: img.format,
            width: u32::try_from(img.width).unwrap_or(0),
            height: u32::try_from(img.height).unwrap_or(0),
            size: u64::try_from(img.size).unwrap_or(0),
            status: img.status.as_str().to_owned(),
            exif,
            derivatives,
            original_url: format!("/api/v1/images/{}/original", img.id),
            like_count: likes.get(&img.id).copied().unwrap_or(0),
            comment_count: comments.get(&img.id).copied().unwrap_or(0),
            view_count: viewed.get(&img.id).copied().unwrap_or(0),
            liked_by_me: liked.as_ref().map(|l| l.contains(&img.id)),
            created_at: img.created_at,
            updated_at: img.updated_at,
            published_at: img.published_at,
            version: img.version,
            analysis: img
                .analysis
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok()),
        });
    }
    Ok(out)
}

/// Views of tasks; done ones carry their image's derivatives (the images
/// are read in one query).
pub async fn tasks<C: ConnectionTrait>(
    ctx: &AppContext,
    conn: &C,
    tasks: Vec<task::Model>,
) -> Result<Vec<views::Task>, ApiError> {
    let done: HashSet<Uuid> = tasks
        .iter()
        .filter(|t| t.status == task::Status::Done)
        .map(|t| t.image_id)
        .collect();
    let images: HashMap<Uuid, image::Model> = if done.is_empty() {
        HashMap::new()
    } else {
        image::Entity::find()
            .filter(image::Column::Id.is_in(done))
            .all(conn)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect()
    };
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let stored = match images.get(&t.image_id) {
            Some(img) if t.status == task::Status::Done => stored_derivatives(img),
            _ => Vec::new(),
        };
        out.push(views::Task {
            id: t.id,
            image_id: t.image_id,
            batch_id: t.batch_id,
            kind: t.kind.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            reason: t.reason,
            derivatives: derivative_links(ctx, stored).await?,
            callback_url: t.callback_url,
            callback_state: t.callback_state.map(|s| s.as_str().to_owned()),
            created_at: t.created_at,
            updated_at: t.updated_at,
            finished_at: t.finished_at,
        });
    }
    Ok(out)
}

/// One task's view.
pub async fn task<C: ConnectionTrait>(
    ctx: &AppContext,
    conn: &C,
    t: task::Model,
) -> Result<views::Task, ApiError> {
    tasks(ctx, conn, vec![t])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("a task view went missing"))
}
