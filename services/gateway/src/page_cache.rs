//! Whole anonymous detail pages in the cache backend, in front of the
//! detail page's handler (a layer on `/p/{id}`).
//!
//! A page is kept with what its fragments were made of (the images and
//! accounts it shows, at their generations; see `crate::fragments`) and is
//! served while all of them are current, so an event that makes a fragment
//! stale makes every page showing it stale too. It is kept no longer than
//! its shortest-lived fragment, and at most [`PAGE_TTL`]. Only complete
//! pages (no part missing) that the handler marked `public` are kept, with
//! the handler's headers; a `Set-Cookie` keeps a page out.
//!
//! A request that carries credentials (`Authorization`, or the web
//! session's cookie) is a signed-in viewer's: it goes to the handler.
//!
//! `Server-Timing: cache;desc=hit|miss|bypass` says which way a page came.
//!
//! Each process also keeps the pages it served lately ready to send (headers
//! parsed, body shared), bounded by their bytes: a hit then asks the cache
//! backend only for the generations of what the page shows, in one round
//! trip, which is what keeps it current across processes; and not even
//! that when it asked less than [`RECHECK_MS`] ago.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pinhole_http::AppContext;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::fragments::{self, Fragments, PAGE_TTL, PREFIX, Seen};

/// The web session's cookie: a request with it is a signed-in viewer's.
pub const SESSION_COOKIE: &str = "pinhole_session";
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
/// `pinhole_gateway_pages_total{outcome}`.
const PAGES_TOTAL: &str = "pinhole_gateway_pages_total";
/// Headers of the handler's answer that are not kept with a page.
const NOT_KEPT: [HeaderName; 4] = [
    header::CONTENT_LENGTH,
    header::DATE,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
];

/// What is kept of a page besides its body.
#[derive(Serialize, Deserialize)]
struct Kept {
    /// What it was made of.
    #[serde(rename = "d")]
    deps: Vec<Seen>,
    /// The handler's headers.
    #[serde(rename = "h")]
    headers: Vec<(String, String)>,
    /// When it expires, in Unix milliseconds.
    #[serde(rename = "u")]
    until: i64,
}

/// A page ready to send.
struct Page {
    deps: Vec<Seen>,
    headers: HeaderMap,
    etag: Option<String>,
    body: Bytes,
    until: Instant,
    /// When its generations were last found current, in milliseconds
    /// since [`epoch`].
    checked: AtomicU64,
}

/// The instant [`Page::checked`] counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`].
fn ticks() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Page {
    fn of(kept: Kept, body: Bytes) -> Self {
        let mut headers = HeaderMap::with_capacity(kept.headers.len());
        for (name, value) in &kept.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let etag = headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let left = kept.until - chrono::Utc::now().timestamp_millis();
        let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
        Self {
            deps: kept.deps,
            headers,
            etag,
            body,
            until: Instant::now() + left,
            checked: AtomicU64::new(ticks()),
        }
    }
}

/// Whether the request carries no credentials of any kind.
pub fn anonymous(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::AUTHORIZATION) {
        return false;
    }
    headers.get_all(header::COOKIE).iter().all(|cookies| {
        cookies.to_str().is_ok_and(|cookies| {
            !cookies
                .split(';')
                .filter_map(|c| c.split_once('='))
                .any(|(name, _)| name.trim() == SESSION_COOKIE)
        })
    })
}

/// A ready page found current this recently (milliseconds) is sent
/// without asking again: a change shows at most this much later than its
/// event arrives.
const RECHECK_MS: u64 = 250;
/// Bytes of pages kept ready in each process at most.
const READY_BYTES: u64 = 64 * 1024 * 1024;

/// What the layer holds: made once, shared by every request.
pub struct PageCache {
    ctx: AppContext,
    fragments: Fragments,
    /// Pages this process served lately, ready to send.
    ready: moka::future::Cache<String, Arc<Page>>,
    /// This build's pages (its version and stylesheet): pages of another
    /// build are other keys.
    build: String,
}

impl PageCache {
    pub fn new(ctx: &AppContext) -> Arc<Self> {
        let mut hash = Sha256::new();
        hash.update(env!("CARGO_PKG_VERSION").as_bytes());
        hash.update(crate::assets::css_path().as_bytes());
        Arc::new(Self {
            ctx: ctx.clone(),
            fragments: Fragments::new(Arc::clone(&ctx.backends.cache)),
            ready: moka::future::Cache::builder()
                .max_capacity(READY_BYTES)
                .weigher(|key: &String, page: &Arc<Page>| {
                    u32::try_from(key.len() + page.body.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(PAGE_TTL)
                .build(),
            build: hex::encode(&hash.finalize()[..6]),
        })
    }

    /// The key of image `id`'s page at `base`.
    fn key(&self, id: Uuid, base: &str) -> String {
        format!("{PREFIX}page:{}:{id}:{base}", self.build)
    }
}

/// `response` with `Server-Timing` saying how it came.
fn marked(mut response: Response, outcome: &'static str) -> Response {
    metrics::counter!(PAGES_TOTAL, "outcome" => outcome).increment(1);
    let value = match outcome {
        "hit" => "cache;desc=hit",
        "miss" => "cache;desc=miss",
        _ => "cache;desc=bypass",
    };
    response
        .headers_mut()
        .append(SERVER_TIMING, HeaderValue::from_static(value));
    response
}

/// The page at `key`, when it is kept and current: this process's ready
/// copy, else the cache backend's.
async fn lookup(cache: &PageCache, key: &str) -> Option<Arc<Page>> {
    if let Some(page) = cache.ready.get(key).await
        && page.until > Instant::now()
    {
        let now = ticks();
        if now.saturating_sub(page.checked.load(Ordering::Relaxed)) < RECHECK_MS {
            return Some(page);
        }
        if !cache.fragments.current(&page.deps).await {
            return None;
        }
        page.checked.store(now, Ordering::Relaxed);
        return Some(page);
    }
    let stored = cache.fragments.get(key).await?;
    let len = usize::try_from(u32::from_be_bytes(stored.get(..4)?.try_into().ok()?)).ok()?;
    let kept: Kept = serde_json::from_slice(stored.get(4..4 + len)?).ok()?;
    if !cache.fragments.current(&kept.deps).await {
        return None;
    }
    let page = Arc::new(Page::of(kept, stored.slice(4 + len..)));
    cache.ready.insert(key.to_owned(), Arc::clone(&page)).await;
    Some(page)
}

/// The answer of a kept page to a request with `request` headers.
fn answer(page: &Page, request: &HeaderMap) -> Response {
    let fresh = page
        .etag
        .as_deref()
        .is_some_and(|etag| pinhole_http::etag_matches(request, etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(page.body.clone()))
    };
    let headers = response.headers_mut();
    for (name, value) in &page.headers {
        if fresh && name == header::CONTENT_TYPE {
            continue;
        }
        headers.append(name, value.clone());
    }
    response
}

/// Keeps `response`'s page under `key` when it may be kept; the response
/// to send either way.
async fn keep(
    cache: &PageCache,
    key: &str,
    response: Response,
    made: &fragments::Made,
) -> Response {
    let headers = response.headers();
    let public = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("public"));
    let ttl = made.ttl(PAGE_TTL);
    let Some(ttl) = ttl.filter(|_| {
        response.status() == StatusCode::OK && public && !headers.contains_key(header::SET_COOKIE)
    }) else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "a page's body could not be read");
            return crate::caching::html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::pages::unavailable().into_string(),
            );
        }
    };
    let mut deps = made.seen.clone();
    deps.sort_unstable();
    deps.dedup();
    let until =
        chrono::Utc::now().timestamp_millis() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let kept = Kept {
        deps,
        until,
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| !NOT_KEPT.contains(name) && **name != SERVER_TIMING)
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect(),
    };
    match serde_json::to_vec(&kept) {
        Ok(meta) => {
            let mut stored = Vec::with_capacity(4 + meta.len() + body.len());
            stored.extend_from_slice(&u32::try_from(meta.len()).unwrap_or(u32::MAX).to_be_bytes());
            stored.extend_from_slice(&meta);
            stored.extend_from_slice(&body);
            cache.fragments.set(key, stored.into(), ttl).await;
            let page = Page::of(kept, body.clone());
            cache.ready.insert(key.to_owned(), Arc::new(page)).await;
        }
        Err(e) => tracing::warn!(error = %e, "a page's headers do not serialize"),
    }
    Response::from_parts(parts, Body::from(body))
}

/// The layer on `/p/{id}` (state: [`PageCache::new`]): an anonymous
/// visitor's page from the cache while current, else from the handler
/// (`next`), kept when it may be.
pub async fn serve(
    State(cache): State<Arc<PageCache>>,
    Path(id): Path<String>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET || !anonymous(request.headers()) {
        return marked(next.run(request).await, "bypass");
    }
    let Some(id) = crate::pages::parse_id(&id) else {
        return next.run(request).await;
    };
    let key = cache.key(id, &crate::base_url(&cache.ctx, request.headers()));
    if let Some(page) = lookup(&cache, &key).await {
        return marked(answer(&page, request.headers()), "hit");
    }
    let (response, made) = fragments::making(next.run(request)).await;
    marked(keep(&cache, &key, response, &made).await, "miss")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_make_a_request_signed_in() {
        let with = |name: HeaderName, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            h
        };
        assert!(anonymous(&HeaderMap::new()));
        assert!(anonymous(&with(header::COOKIE, "theme=dark; lang=en")));
        assert!(anonymous(&with(header::COOKIE, "my_pinhole_session=1")));
        assert!(!anonymous(&with(
            header::COOKIE,
            "a=b; pinhole_session=xyz"
        )));
        assert!(!anonymous(&with(header::AUTHORIZATION, "Bearer x")));
    }

    #[test]
    fn a_kept_page_answers_304_to_its_etag() {
        let kept = Kept {
            deps: vec![],
            headers: vec![
                ("etag".into(), "\"abc\"".into()),
                ("content-type".into(), "text/html".into()),
                ("cache-control".into(), "public, max-age=60".into()),
            ],
            until: chrono::Utc::now().timestamp_millis() + 60_000,
        };
        let page = Page::of(kept, Bytes::from_static(b"<p>"));
        let r = answer(&page, &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html");
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"abc\""));
        let r = answer(&page, &h);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], "\"abc\"");
        assert!(!r.headers().contains_key(header::CONTENT_TYPE));
    }
}
