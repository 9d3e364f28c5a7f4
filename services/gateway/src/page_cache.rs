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

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pinhole_http::AppContext;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
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

/// What the layer holds: made once, shared by every request.
pub struct PageCache {
    ctx: AppContext,
    fragments: Fragments,
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

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The kept page at `key`, when it is there and current.
async fn lookup(fragments: &Fragments, key: &str) -> Option<(Kept, Bytes)> {
    let stored = fragments.get(key).await?;
    let len = usize::try_from(u32::from_be_bytes(stored.get(..4)?.try_into().ok()?)).ok()?;
    let kept: Kept = serde_json::from_slice(stored.get(4..4 + len)?).ok()?;
    if !fragments.current(&kept.deps).await {
        return None;
    }
    let body = stored.slice(4 + len..);
    Some((kept, body))
}

/// The answer of a kept page to a request with `request` headers.
fn answer(kept: &Kept, body: Bytes, request: &HeaderMap) -> Response {
    let etag = kept
        .headers
        .iter()
        .find(|(name, _)| name == header::ETAG.as_str())
        .map(|(_, value)| value.as_str());
    let fresh = etag.is_some_and(|etag| matches(request, etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(body))
    };
    let headers = response.headers_mut();
    for (name, value) in &kept.headers {
        if fresh && name == header::CONTENT_TYPE.as_str() {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// Keeps `response`'s page under `key` when it may be kept; the response
/// to send either way.
async fn keep(
    fragments: &Fragments,
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
    let kept = Kept {
        deps,
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
            fragments.set(key, stored.into(), ttl).await;
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
    let fragments = &cache.fragments;
    let key = cache.key(id, &crate::base_url(&cache.ctx, request.headers()));
    if let Some((kept, body)) = lookup(fragments, &key).await {
        return marked(answer(&kept, body, request.headers()), "hit");
    }
    let (response, made) = fragments::making(next.run(request)).await;
    marked(keep(fragments, &key, response, &made).await, "miss")
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
        };
        let r = answer(&kept, Bytes::from_static(b"<p>"), &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html");
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"abc\""));
        let r = answer(&kept, Bytes::from_static(b"<p>"), &h);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], "\"abc\"");
        assert!(!r.headers().contains_key(header::CONTENT_TYPE));
    }
}
