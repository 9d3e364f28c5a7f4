//! The detail page's fragments in the cache backend: the image record and
//! the comments as an anonymous visitor sees them, the author card, the
//! related list; and what a page was made of, for the page cache
//! (`crate::page_cache`).
//!
//! Every fragment is stored with what it shows: the images and accounts
//! ([`Dep`]) whose data it holds, each with the *generation* that entity
//! had when the fragment was made. A generation is a random number under
//! `gateway:v1:gen:{i|u}:{id}`, replaced by the invalidation worker
//! (`crate::invalidate`) on every event about that image or account (0
//! when there is none). A fragment is used only while each of its
//! generations is still current, so:
//!
//! - one event makes stale everything that shows the entity without
//!   knowing its keys: an account's change reaches the records of all its
//!   images, an image's change every related list and page showing it;
//! - a fill that raced an event (it read the old record, the event came,
//!   then it stored) is stored under the old generation and never used.
//!
//! The worker also deletes the fragments keyed by the entity itself. TTLs
//! bound what events cannot reach: which images the search role finds
//! related, and events that never came.
//!
//! A cache that fails or is slow costs a miss, never the page: every cache
//! call has [`CACHE_DEADLINE`].

use std::cell::RefCell;
use std::time::Duration;

use bytes::Bytes;
use pinhole_cache::{CacheError, SharedCache};
use pinhole_http::ClientError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::timeout;
use uuid::Uuid;

/// Every key of the gateway's; the version changes with the stored format.
pub const PREFIX: &str = "gateway:v1:";
/// How long an image record, the comments or an author card is kept:
/// events make them stale sooner; this is for the events that never come.
pub const RECORD_TTL: Duration = Duration::from_secs(600);
/// How long a full related list is kept: which images are related changes
/// with the search index, without an event naming this image.
pub const RELATED_TTL: Duration = Duration::from_secs(300);
/// How long a related list shorter than asked is kept: the next upload
/// may join it. (An empty one is not kept: most often the search role has
/// not indexed the image yet, and will in a moment.)
pub const SHORT_RELATED_TTL: Duration = Duration::from_secs(10);
/// How long a whole anonymous page is kept at most (`crate::page_cache`);
/// never longer than the fragments it was made of.
pub const PAGE_TTL: Duration = Duration::from_secs(60);
/// The longest anything above lives: an event older than this (with room
/// for clocks that differ) cannot make anything in the cache stale.
pub const LONGEST_TTL: Duration = RECORD_TTL;
/// How long a generation is remembered after its last change; longer than
/// any fragment lives, so that one stored before the change has expired
/// when the generation is forgotten (and reads as 0 again).
const GENERATION_TTL: Duration = Duration::from_secs(3600);
/// The longest a cache call may take; past it, the cache is skipped.
pub const CACHE_DEADLINE: Duration = Duration::from_millis(250);
/// `pinhole_gateway_fragments_total{fragment, outcome}`.
const FRAGMENTS_TOTAL: &str = "pinhole_gateway_fragments_total";

/// An entity whose changes make fragments stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Dep {
    #[serde(rename = "i")]
    Image(Uuid),
    #[serde(rename = "u")]
    User(Uuid),
}

impl Dep {
    fn key(self) -> String {
        match self {
            Self::Image(id) => format!("{PREFIX}gen:i:{id}"),
            Self::User(id) => format!("{PREFIX}gen:u:{id}"),
        }
    }
}

/// An entity at the generation a fragment was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seen(pub Dep, pub u64);

/// A fragment of the detail page, for anonymous visitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// An image's record (`GET /api/v1/images/{id}`).
    Record(Uuid),
    /// An image's first comments.
    Comments(Uuid),
    /// The ids of an image's related images, and why.
    Related(Uuid),
    /// An account's card, with the avatar's link.
    Author(Uuid),
}

impl Fragment {
    pub fn key(self) -> String {
        match self {
            Self::Record(id) => format!("{PREFIX}record:{id}"),
            Self::Comments(id) => format!("{PREFIX}comments:{id}"),
            Self::Related(id) => format!("{PREFIX}related:{id}"),
            Self::Author(id) => format!("{PREFIX}author:{id}"),
        }
    }

    /// For metrics.
    fn name(self) -> &'static str {
        match self {
            Self::Record(_) => "record",
            Self::Comments(_) => "comments",
            Self::Related(_) => "related",
            Self::Author(_) => "author",
        }
    }

    /// The fragments keyed by `dep` itself.
    pub fn of(dep: Dep) -> Vec<Self> {
        match dep {
            Dep::Image(id) => vec![Self::Record(id), Self::Comments(id), Self::Related(id)],
            Dep::User(id) => vec![Self::Author(id)],
        }
    }
}

/// A stored fragment: what it was made of, until when, and the value.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    #[serde(rename = "d")]
    deps: Vec<Seen>,
    /// When it expires, in Unix milliseconds.
    #[serde(rename = "u")]
    until: i64,
    #[serde(rename = "v")]
    value: T,
}

/// Unix milliseconds `ttl` from now.
fn from_now(ttl: Duration) -> i64 {
    let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    chrono::Utc::now().timestamp_millis().saturating_add(ttl)
}

/// What a page was made of, as [`making`] collects it.
#[derive(Debug, Default)]
pub struct Made {
    /// Every entity its fragments showed, at the generation they showed.
    pub seen: Vec<Seen>,
    /// When the first of its fragments expires, in Unix milliseconds.
    pub until: Option<i64>,
    /// Some part was missing, or not made through the cache: the page is
    /// not to be kept.
    pub partial: bool,
}

impl Made {
    /// How long a page made of this may be kept: `longest`, or less when
    /// one of its fragments expires sooner; `None` when not at all.
    pub fn ttl(&self, longest: Duration) -> Option<Duration> {
        if self.partial || self.seen.is_empty() {
            return None;
        }
        let left = match self.until {
            Some(until) => {
                let ms = until.saturating_sub(chrono::Utc::now().timestamp_millis());
                Duration::from_millis(u64::try_from(ms).ok()?)
            }
            None => longest,
        };
        Some(left.min(longest)).filter(|ttl| *ttl >= Duration::from_secs(1))
    }
}

tokio::task_local! {
    static MAKING: RefCell<Made>;
}

/// Runs `work` (a request's handler) and collects what the fragments it
/// used were made of. Fragments used outside it collect nothing.
pub async fn making<F: Future>(work: F) -> (F::Output, Made) {
    MAKING
        .scope(RefCell::new(Made::default()), async move {
            let out = work.await;
            let made = MAKING.with(|m| std::mem::take(&mut *m.borrow_mut()));
            (out, made)
        })
        .await
}

/// Adds `seen`, a fragment until `until` (Unix milliseconds), to the page
/// being made, if any.
fn note(seen: &[Seen], until: i64) {
    let _ = MAKING.try_with(|m| {
        let mut made = m.borrow_mut();
        made.seen.extend_from_slice(seen);
        made.until = Some(made.until.map_or(until, |u| u.min(until)));
    });
}

/// Adds to the page being made, if any, that an image was absent (not
/// there, or not one anonymous visitors may see) at generation `seen`:
/// the page is stale once it changes.
pub fn absent(seen: Seen) {
    note(&[seen], from_now(RECORD_TTL));
}

/// Marks the page being made, if any, as not to be kept.
pub fn partial() {
    let _ = MAKING.try_with(|m| m.borrow_mut().partial = true);
}

/// Counts a fragment's `outcome` (`hit`, `miss`).
fn count(fragment: &'static str, outcome: &'static str) {
    metrics::counter!(FRAGMENTS_TOTAL, "fragment" => fragment, "outcome" => outcome).increment(1);
}

/// `value` as a generation.
fn generation(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The fragments in the cache backend.
#[derive(Clone)]
pub struct Fragments {
    cache: SharedCache,
}

impl Fragments {
    pub fn new(cache: SharedCache) -> Self {
        Self { cache }
    }

    /// The cache backend's value at `key`; `None` when absent, or when the
    /// cache fails or is late (logged).
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        match timeout(CACHE_DEADLINE, self.cache.get(key)).await {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => {
                tracing::warn!(key, error = %e, "the cache failed; going without it");
                None
            }
            Err(_) => {
                tracing::warn!(key, "the cache did not answer in time; going without it");
                None
            }
        }
    }

    /// Stores `value` at `key` for `ttl`; a failure is logged and
    /// otherwise ignored (the next request makes it again).
    pub async fn set(&self, key: &str, value: Bytes, ttl: Duration) {
        match timeout(CACHE_DEADLINE, self.cache.set(key, value, ttl)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(key, error = %e, "the cache failed to store"),
            Err(_) => tracing::warn!(key, "the cache did not store in time"),
        }
    }

    /// The current generation of each of `deps`, all asked at once;
    /// `None` when the cache fails or is late.
    pub async fn generations(&self, deps: &[Dep]) -> Option<Vec<u64>> {
        if deps.is_empty() {
            return Some(Vec::new());
        }
        let keys: Vec<String> = deps.iter().map(|d| d.key()).collect();
        match timeout(CACHE_DEADLINE, self.cache.get_many(&keys)).await {
            Ok(Ok(values)) => Some(
                values
                    .iter()
                    .map(|v| v.as_deref().map_or(0, generation))
                    .collect(),
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the cache failed; going without it");
                None
            }
            Err(_) => {
                tracing::warn!("the cache did not answer in time; going without it");
                None
            }
        }
    }

    /// Whether every entity in `seen` is still at the generation seen.
    pub async fn current(&self, seen: &[Seen]) -> bool {
        let deps: Vec<Dep> = seen.iter().map(|s| s.0).collect();
        self.generations(&deps)
            .await
            .is_some_and(|now| now.iter().zip(seen).all(|(now, s)| *now == s.1))
    }

    /// `deps` at the generations `now` read.
    fn seen(deps: &[Dep], now: &[u64]) -> Vec<Seen> {
        deps.iter().zip(now).map(|(d, g)| Seen(*d, *g)).collect()
    }

    /// `fragment` when it is stored and still current (counted as a hit
    /// or a miss), noted for the page being made.
    pub async fn lookup<T: DeserializeOwned>(&self, fragment: Fragment) -> Option<T> {
        let found = match self.get(&fragment.key()).await {
            Some(bytes) => match serde_json::from_slice::<Stored<T>>(&bytes) {
                Ok(stored) if self.current(&stored.deps).await => {
                    note(&stored.deps, stored.until);
                    Some(stored.value)
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(key = %fragment.key(), error = %e, "a stored fragment does not read; making it again");
                    None
                }
            },
            None => None,
        };
        count(
            fragment.name(),
            if found.is_some() { "hit" } else { "miss" },
        );
        found
    }

    /// Stores `value` as `fragment`, made of `seen`, for `ttl`; noted for
    /// the page being made.
    pub async fn store<T: Serialize>(
        &self,
        fragment: Fragment,
        value: &T,
        seen: &[Seen],
        ttl: Duration,
    ) {
        let stored = Stored {
            deps: seen.to_vec(),
            until: from_now(ttl),
            value,
        };
        note(seen, stored.until);
        match serde_json::to_vec(&stored) {
            Ok(bytes) => self.set(&fragment.key(), bytes.into(), ttl).await,
            Err(e) => {
                partial();
                tracing::warn!(key = %fragment.key(), error = %e, "a fragment does not serialize");
            }
        }
    }

    /// `fragment` from the cache while it is current; else made by `fill`
    /// and stored for `ttl` of it (not at all, nor the page made with it,
    /// when that is `None`). `known` are the entities it shows that are
    /// known before making it, read before `fill` runs (so that a change
    /// during the fill makes what it stores stale at once); `fill` returns
    /// the value and the entities it learned it shows. What the fragment
    /// was made of is noted for the page being made.
    pub async fn through<T, F, Fut>(
        &self,
        fragment: Fragment,
        known: &[Dep],
        ttl: impl FnOnce(&T) -> Option<Duration>,
        fill: F,
    ) -> Result<T, ClientError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, Vec<Dep>), ClientError>>,
    {
        if let Some(value) = self.lookup(fragment).await {
            return Ok(value);
        }
        let before = self.generations(known).await;
        let (value, learned) = fill().await?;
        let after = self.generations(&learned).await;
        match (before, after, ttl(&value)) {
            (Some(before), Some(after), Some(ttl)) => {
                let mut seen = Self::seen(known, &before);
                seen.extend(Self::seen(&learned, &after));
                self.store(fragment, &value, &seen, ttl).await;
            }
            _ => partial(),
        }
        Ok(value)
    }

    /// Fills for several fragments at once, for the caller to store: the
    /// generations of `deps` read now, before their fill.
    pub async fn before(&self, deps: &[Dep]) -> Option<Vec<Seen>> {
        let now = self.generations(deps).await?;
        Some(Self::seen(deps, &now))
    }

    /// A new generation of `dep`: everything made of it is stale; the
    /// fragments keyed by it are deleted too.
    pub async fn bump(&self, dep: Dep) -> Result<(), CacheError> {
        // Random, so that a generation forgotten and made again does not
        // come back to a value a stale fragment was stored with.
        let generation = Uuid::new_v4().as_u64_pair().0 | 1;
        self.cache
            .set(
                &dep.key(),
                Bytes::from(generation.to_string()),
                GENERATION_TTL,
            )
            .await?;
        for fragment in Fragment::of(dep) {
            self.cache.delete(&fragment.key()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinhole_cache::MemoryCache;
    use std::sync::Arc;

    fn fragments() -> Fragments {
        Fragments::new(Arc::new(MemoryCache::new(1 << 20)))
    }

    #[tokio::test]
    async fn a_fragment_is_used_until_an_entity_it_shows_changes() {
        let f = fragments();
        let (image, owner) = (Uuid::now_v7(), Uuid::now_v7());
        let fill = |title: &'static str| {
            move || async move { Ok::<_, ClientError>((title.to_owned(), vec![Dep::User(owner)])) }
        };
        let key = Fragment::Record(image);
        let known = [Dep::Image(image)];
        let ttl = |_: &String| Some(RECORD_TTL);
        let (got, made) = making(f.through(key, &known, ttl, fill("a"))).await;
        assert_eq!(got.expect("filled"), "a");
        assert!(!made.partial);
        assert_eq!(
            made.seen,
            vec![Seen(Dep::Image(image), 0), Seen(Dep::User(owner), 0)]
        );
        let kept = made.ttl(PAGE_TTL).expect("a page to keep");
        assert!(kept <= PAGE_TTL && kept > PAGE_TTL / 2, "{kept:?}");
        // From the cache: the fill is not called.
        let (got, made) = making(f.through(key, &known, ttl, fill("b"))).await;
        assert_eq!(got.expect("hit"), "a");
        assert_eq!(made.seen.len(), 2);
        // The owner changes: made again.
        f.bump(Dep::User(owner)).await.expect("bump");
        let (got, made) = making(f.through(key, &known, ttl, fill("c"))).await;
        assert_eq!(got.expect("filled"), "c");
        assert!(!f.current(&[Seen(Dep::User(owner), 0)]).await);
        assert!(f.current(&made.seen).await);
        // The image changes while a fill runs: what it stores is stale.
        let racing = f.through(key, &known, ttl, || async {
            f.bump(Dep::Image(image)).await.expect("bump");
            Ok::<_, ClientError>(("old".to_owned(), vec![]))
        });
        f.bump(Dep::Image(image)).await.expect("bump");
        assert_eq!(racing.await.expect("filled"), "old");
        assert!(f.lookup::<String>(key).await.is_none());
        // A short-lived fragment shortens the page.
        let short = Fragment::Related(image);
        let five = |_: &String| Some(Duration::from_secs(5));
        let (_, made) = making(f.through(short, &known, five, fill("d"))).await;
        assert!(made.ttl(PAGE_TTL).expect("kept") <= Duration::from_secs(5));
        // One not to keep: nor the page.
        f.bump(Dep::Image(image)).await.expect("bump");
        let (_, made) = making(f.through(short, &known, |_| None, fill("e"))).await;
        assert!(made.partial && made.ttl(PAGE_TTL).is_none());
    }

    #[tokio::test]
    async fn a_failed_fill_stores_nothing() {
        let f = fragments();
        let key = Fragment::Comments(Uuid::now_v7());
        let failed = f
            .through(
                key,
                &[],
                |_| Some(RECORD_TTL),
                || async {
                    Err::<(String, Vec<Dep>), _>(ClientError::NotConfigured { role: "images" })
                },
            )
            .await;
        assert!(failed.is_err());
        assert!(f.lookup::<String>(key).await.is_none());
    }
}
