//! The detail page's data, assembled from the images, users and search
//! roles through their typed clients, concurrently, each part with its own
//! deadline. Only the image itself is required: a failing or slow optional
//! part is left out and named in [`Detail::missing`].

use std::error::Error as StdError;
use std::time::Duration;

use pinhole_http::Clients;
use pinhole_http::clients::{AccountCard, ClientError};
use serde::Serialize;
use serde_json::Value;
use tokio::time::timeout;
use utoipa::ToSchema;
use uuid::Uuid;

/// How long the images role may take to show the image itself.
pub const IMAGE_DEADLINE: Duration = Duration::from_secs(3);
/// How long each optional part (author, comments, related) may take.
pub const PART_DEADLINE: Duration = Duration::from_millis(1500);
/// Comments shown on the page.
pub const COMMENTS: u32 = 20;
/// Related images shown on the page.
pub const RELATED: u32 = 12;

/// An optional part of the detail page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The author's account card (from the users role).
    Author,
    /// The comments (from the images role).
    Comments,
    /// The related images (from the search role).
    Related,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Self::Author => "author",
            Self::Comments => "comments",
            Self::Related => "related",
        }
    }
}

/// The author as the users role knows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorCard {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub is_private: bool,
    /// A small square of the author's avatar, when they have one the viewer
    /// may see.
    pub avatar_url: Option<String>,
}

/// A related image and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelatedImage {
    /// As `GET /api/v1/images/{id}` shows it to the viewer.
    #[schema(value_type = Object)]
    pub image: Value,
    /// `visual`, `text` or `place`.
    pub reason: String,
}

/// Everything the detail page shows, in one answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Detail {
    /// As `GET /api/v1/images/{id}` shows it to the viewer.
    #[schema(value_type = Object)]
    pub image: Value,
    /// Absent when the users role did not answer in time.
    pub author: Option<AuthorCard>,
    /// Oldest first; absent when the images role did not answer in time.
    #[schema(value_type = Option<Vec<Object>>)]
    pub comments: Option<Vec<Value>>,
    /// Best first; absent when the search role did not answer in time.
    pub related: Option<Vec<RelatedImage>>,
    /// The optional parts left out.
    pub missing: Vec<Part>,
}

/// Why there is no page.
#[derive(Debug)]
pub enum Failure {
    /// No such image, or not one the viewer may see.
    NotFound,
    /// The images role did not answer (in time).
    Unavailable,
}

/// `error: cause: cause…`, the whole chain on one line.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// `call` within `deadline`; `None` (logged with its cause) when it fails
/// or is late.
async fn within<T>(
    part: &'static str,
    image_id: Uuid,
    deadline: Duration,
    call: impl Future<Output = Result<T, ClientError>>,
) -> Option<T> {
    match timeout(deadline, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(%image_id, part, error = %chain(&e), "a part of the page is left out");
            None
        }
        Err(_) => {
            tracing::warn!(%image_id, part, ?deadline, "a part of the page is left out: no answer in time");
            None
        }
    }
}

/// The id in a record's `field` (`"id"`, or `"owner"."id"`).
pub fn id_of(record: &Value, pointer: &str) -> Option<Uuid> {
    record.pointer(pointer)?.as_str()?.parse().ok()
}

/// The link of a record's derivative `name` in `format`.
pub fn derivative_url(record: &Value, name: &str, format: &str) -> Option<String> {
    record["derivatives"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == name && d["format"] == format)
        .and_then(|d| d["url"].as_str().map(str::to_owned))
}

/// The detail page of `id` as `viewer` sees it.
pub async fn detail(clients: &Clients, id: Uuid, viewer: Option<Uuid>) -> Result<Detail, Failure> {
    let main = async {
        let shown = match timeout(IMAGE_DEADLINE, clients.images.views(&[id], viewer)).await {
            Ok(Ok(shown)) => shown,
            Ok(Err(e)) => {
                tracing::error!(image_id = %id, error = %chain(&e), "the image could not be shown");
                return Err(Failure::Unavailable);
            }
            Err(_) => {
                tracing::error!(image_id = %id, "the image could not be shown: no answer in time");
                return Err(Failure::Unavailable);
            }
        };
        let image = shown.into_iter().next().ok_or(Failure::NotFound)?;
        let author = match id_of(&image, "/owner/id") {
            Some(owner) => author(clients, id, owner, &image, viewer).await,
            None => None,
        };
        Ok((image, author))
    };
    let comments = within(
        Part::Comments.as_str(),
        id,
        PART_DEADLINE,
        clients.images.comments(id, viewer, COMMENTS),
    );
    let related = within(
        Part::Related.as_str(),
        id,
        PART_DEADLINE,
        related(clients, id, viewer),
    );
    let (main, comments, related) = tokio::join!(main, comments, related);
    let (image, author) = main?;
    let comments = comments.map(Option::unwrap_or_default);
    let mut missing = Vec::new();
    if author.is_none() {
        missing.push(Part::Author);
    }
    if comments.is_none() {
        missing.push(Part::Comments);
    }
    if related.is_none() {
        missing.push(Part::Related);
    }
    Ok(Detail {
        image,
        author,
        comments,
        related,
        missing,
    })
}

/// The author's card and avatar, within [`PART_DEADLINE`].
async fn author(
    clients: &Clients,
    image_id: Uuid,
    owner: Uuid,
    image: &Value,
    viewer: Option<Uuid>,
) -> Option<AuthorCard> {
    let avatar_id = id_of(image, "/owner/avatar_image_id");
    let owners = [owner];
    let call = async {
        let cards = clients.users.cards(&owners);
        let avatar = async {
            match avatar_id {
                Some(a) => clients.images.views(&[a], viewer).await,
                None => Ok(Vec::new()),
            }
        };
        let (cards, avatar) = tokio::join!(cards, avatar);
        // An avatar is a nicety: its failure does not lose the card.
        let avatar_url = avatar
            .ok()
            .and_then(|a| a.into_iter().next())
            .and_then(|a| derivative_url(&a, "thumb_256", "jpeg"));
        Ok::<_, ClientError>(cards?.into_iter().next().map(|c: AccountCard| AuthorCard {
            user_id: c.user_id,
            username: c.username,
            display_name: c.display_name,
            is_private: c.is_private,
            avatar_url,
        }))
    };
    within(Part::Author.as_str(), image_id, PART_DEADLINE, call)
        .await
        .flatten()
}

/// The related images of `id`, shown to `viewer`.
async fn related(
    clients: &Clients,
    id: Uuid,
    viewer: Option<Uuid>,
) -> Result<Vec<RelatedImage>, ClientError> {
    let refs = clients.search.related(id, viewer, RELATED).await?;
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = refs.iter().map(|r| r.image_id).collect();
    let mut shown: std::collections::HashMap<Uuid, Value> = clients
        .images
        .views(&ids, viewer)
        .await?
        .into_iter()
        .filter_map(|v| Some((id_of(&v, "/id")?, v)))
        .collect();
    Ok(refs
        .into_iter()
        .filter_map(|r| {
            Some(RelatedImage {
                image: shown.remove(&r.image_id)?,
                reason: r.reason,
            })
        })
        .collect())
}
