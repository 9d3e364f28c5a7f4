//! The detail page's data, assembled from the images, users and search
//! roles through their typed clients, concurrently, each part with its own
//! deadline. Only the image itself is required: a failing or slow optional
//! part is left out and named in [`Detail::missing`].
//!
//! What an anonymous visitor sees comes through the fragment cache
//! (`crate::fragments`): the image record, the comments, the author card
//! and the related list. A signed-in viewer's image, comments and related
//! images are asked of the roles every time: they depend on the viewer
//! (`liked_by_me`, followers-only images, blocks, the owner's own GPS
//! position), so a copy per viewer would be used rarely, and the events
//! that change it (follows, blocks, the viewer's likes) are many more than
//! those about the image. The author card is the same for everyone and is
//! shared.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use pinhole_http::clients::{AccountCard, ClientError, RelatedRef};
use pinhole_http::{AppContext, Clients};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::timeout;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::fragments::{self, Dep, Fragment, Fragments, RECORD_TTL};

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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
pub async fn detail(ctx: &AppContext, id: Uuid, viewer: Option<Uuid>) -> Result<Detail, Failure> {
    let clients = &ctx.clients;
    let cache = &Fragments::new(Arc::clone(&ctx.backends.cache));
    let main = async {
        let shown = match timeout(IMAGE_DEADLINE, record(clients, cache, id, viewer)).await {
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
        let image = shown.ok_or(Failure::NotFound)?;
        let author = match id_of(&image, "/owner/id") {
            Some(owner) => author(clients, cache, id, owner, &image, viewer).await,
            None => None,
        };
        Ok((image, author))
    };
    let comments = within(
        Part::Comments.as_str(),
        id,
        PART_DEADLINE,
        comments(clients, cache, id, viewer),
    );
    let related = within(
        Part::Related.as_str(),
        id,
        PART_DEADLINE,
        related(clients, cache, id, viewer),
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
    if !missing.is_empty() {
        // A page without a part is not one to keep.
        fragments::partial();
    }
    Ok(Detail {
        image,
        author,
        comments,
        related,
        missing,
    })
}

/// The image as `viewer` sees it: an anonymous visitor's through the cache.
async fn record(
    clients: &Clients,
    cache: &Fragments,
    id: Uuid,
    viewer: Option<Uuid>,
) -> Result<Option<Value>, ClientError> {
    if viewer.is_some() {
        return Ok(clients
            .images
            .views(&[id], viewer)
            .await?
            .into_iter()
            .next());
    }
    Ok(records(clients, cache, &[id]).await?.remove(&id))
}

/// The records of `ids` that an anonymous visitor may see, by id: those
/// cached and current from the cache, the others in one call, stored.
async fn records(
    clients: &Clients,
    cache: &Fragments,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Value>, ClientError> {
    let cached = join_all(
        ids.iter()
            .map(|id| cache.lookup::<Value>(Fragment::Record(*id))),
    )
    .await;
    let mut shown = HashMap::with_capacity(ids.len());
    let mut wanted = Vec::new();
    for (id, cached) in ids.iter().zip(cached) {
        match cached {
            Some(record) => {
                shown.insert(*id, record);
            }
            None => wanted.push(*id),
        }
    }
    if wanted.is_empty() {
        return Ok(shown);
    }
    let deps: Vec<Dep> = wanted.iter().map(|id| Dep::Image(*id)).collect();
    let before = cache.before(&deps).await;
    let fetched = clients.images.views(&wanted, None).await?;
    let owners: Vec<Dep> = fetched
        .iter()
        .filter_map(|r| id_of(r, "/owner/id"))
        .map(Dep::User)
        .collect();
    let owners = cache.before(&owners).await;
    let (Some(before), Some(owners)) = (before, owners) else {
        // Without generations, nothing is stored (nor the page kept).
        fragments::partial();
        return Ok(fetched
            .into_iter()
            .filter_map(|r| Some((id_of(&r, "/id")?, r)))
            .chain(shown)
            .collect());
    };
    let mut stores = Vec::with_capacity(fetched.len());
    for record in fetched {
        let Some(image) = id_of(&record, "/id") else {
            continue;
        };
        let mut seen: Vec<_> = before
            .iter()
            .filter(|s| s.0 == Dep::Image(image))
            .copied()
            .collect();
        let owner = id_of(&record, "/owner/id").map(Dep::User);
        seen.extend(owners.iter().filter(|s| Some(s.0) == owner).take(1));
        stores.push((image, record, seen));
    }
    join_all(stores.iter().map(|(image, record, seen)| {
        cache.store(Fragment::Record(*image), record, seen, RECORD_TTL)
    }))
    .await;
    shown.extend(stores.into_iter().map(|(image, record, _)| (image, record)));
    // Those not shown leave the page until they change (published, made
    // public).
    for seen in &before {
        if let Dep::Image(image) = seen.0
            && !shown.contains_key(&image)
        {
            fragments::absent(*seen);
        }
    }
    Ok(shown)
}

/// The first comments, as `viewer` sees them: an anonymous visitor's
/// through the cache.
async fn comments(
    clients: &Clients,
    cache: &Fragments,
    id: Uuid,
    viewer: Option<Uuid>,
) -> Result<Option<Vec<Value>>, ClientError> {
    if viewer.is_some() {
        return clients.images.comments(id, viewer, COMMENTS).await;
    }
    cache
        .through(
            Fragment::Comments(id),
            &[Dep::Image(id)],
            |_| Some(RECORD_TTL),
            || async {
                let comments = clients.images.comments(id, None, COMMENTS).await?;
                let mut authors: Vec<Dep> = comments
                    .iter()
                    .flatten()
                    .filter_map(|c| id_of(c, "/author/id"))
                    .map(Dep::User)
                    .collect();
                authors.sort_unstable();
                authors.dedup();
                Ok::<_, ClientError>((comments, authors))
            },
        )
        .await
}

/// The author's card, with the avatar an anonymous visitor sees, through
/// the cache; a signed-in viewer may see an avatar that anonymous
/// visitors do not, asked for then. Within [`PART_DEADLINE`].
async fn author(
    clients: &Clients,
    cache: &Fragments,
    image_id: Uuid,
    owner: Uuid,
    image: &Value,
    viewer: Option<Uuid>,
) -> Option<AuthorCard> {
    let avatar_id = id_of(image, "/owner/avatar_image_id");
    let mut known = vec![Dep::User(owner)];
    known.extend(avatar_id.map(Dep::Image));
    let call = async {
        let shared = cache
            .through(
                Fragment::Author(owner),
                &known,
                |_| Some(RECORD_TTL),
                || async {
                    Ok::<_, ClientError>((card(clients, owner, avatar_id, None).await?, Vec::new()))
                },
            )
            .await?;
        Ok::<_, ClientError>(match (shared, avatar_id, viewer) {
            (Some(mut card), Some(avatar), Some(_)) if card.avatar_url.is_none() => {
                card.avatar_url = avatar_url(clients, avatar, viewer).await;
                Some(card)
            }
            (card, ..) => card,
        })
    };
    within(Part::Author.as_str(), image_id, PART_DEADLINE, call)
        .await
        .flatten()
}

/// The link of avatar `id` as `viewer` sees it; none when it fails (an
/// avatar is a nicety).
async fn avatar_url(clients: &Clients, id: Uuid, viewer: Option<Uuid>) -> Option<String> {
    clients
        .images
        .views(&[id], viewer)
        .await
        .ok()
        .and_then(|a| a.into_iter().next())
        .and_then(|a| derivative_url(&a, "thumb_256", "jpeg"))
}

/// `owner`'s card from the users role, with the avatar `viewer` sees.
async fn card(
    clients: &Clients,
    owner: Uuid,
    avatar_id: Option<Uuid>,
    viewer: Option<Uuid>,
) -> Result<Option<AuthorCard>, ClientError> {
    let owners = [owner];
    let avatar = async {
        match avatar_id {
            Some(a) => avatar_url(clients, a, viewer).await,
            None => None,
        }
    };
    let (cards, avatar) = tokio::join!(clients.users.cards(&owners), avatar);
    Ok(cards?.into_iter().next().map(|c: AccountCard| AuthorCard {
        user_id: c.user_id,
        username: c.username,
        display_name: c.display_name,
        is_private: c.is_private,
        avatar_url: avatar,
    }))
}

/// The related images of `id`, shown to `viewer`: an anonymous visitor's
/// list and records through the cache.
async fn related(
    clients: &Clients,
    cache: &Fragments,
    id: Uuid,
    viewer: Option<Uuid>,
) -> Result<Vec<RelatedImage>, ClientError> {
    let refs: Vec<RelatedRef> = match viewer {
        Some(_) => clients.search.related(id, viewer, RELATED).await?,
        None => {
            // A short list only briefly: the next image indexed may join
            // it. An empty one not at all: most often this image is not
            // indexed yet (a fresh upload, whose first visitors are to see
            // its related images as soon as there are some).
            let ttl = |refs: &Vec<RelatedRef>| match refs.len() {
                0 => None,
                n if n < RELATED as usize => Some(fragments::SHORT_RELATED_TTL),
                _ => Some(fragments::RELATED_TTL),
            };
            cache
                .through(Fragment::Related(id), &[Dep::Image(id)], ttl, || async {
                    Ok::<_, ClientError>((
                        clients.search.related(id, None, RELATED).await?,
                        Vec::new(),
                    ))
                })
                .await?
        }
    };
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = refs.iter().map(|r| r.image_id).collect();
    let mut shown: HashMap<Uuid, Value> = match viewer {
        Some(_) => clients
            .images
            .views(&ids, viewer)
            .await?
            .into_iter()
            .filter_map(|v| Some((id_of(&v, "/id")?, v)))
            .collect(),
        None => records(clients, cache, &ids).await?,
    };
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
