//! How pages may be cached: anonymous pages by shared caches for a minute
//! (and served stale while revalidating), pages for a signed-in viewer only
//! by their browser; a strong `ETag` and 304 on `If-None-Match`.
//!
//! The validator hashes what the page is made of (and the stylesheet's
//! name) with the signatures of derivative links left out: those carry an
//! expiry that moves every second, while the picture behind them does not.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// `Cache-Control` of anonymous pages.
pub const PUBLIC: &str = "public, max-age=60, stale-while-revalidate=600";
/// `Cache-Control` of pages for a signed-in viewer.
pub const PRIVATE: &str = "private, max-age=0, must-revalidate";
/// What a page's content depends on besides the URL.
const VARY: &str = "Authorization, Cookie";

/// `value` with the query of every link (`url`, `avatar_url`) dropped.
fn unsigned(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.ends_with("url")
                    && let Value::String(s) = v
                    && let Some(at) = s.find('?')
                {
                    s.truncate(at);
                } else {
                    unsigned(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned),
        _ => {}
    }
}

/// A strong validator of a page made of `data`, told apart by `variant`.
pub fn validator(data: &impl Serialize, variant: &str) -> String {
    let mut value = serde_json::to_value(data).unwrap_or_default();
    unsigned(&mut value);
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    hash.update(crate::assets::css_path().as_bytes());
    hash.update(variant.as_bytes());
    hash.update(value.to_string().as_bytes());
    format!("\"{}\"", &hex::encode(hash.finalize())[..32])
}

/// A page to answer with.
pub struct Page {
    /// Whom it is for; `None` for an anonymous visitor.
    pub viewer: Option<Uuid>,
    pub validator: String,
    pub content_type: &'static str,
    pub body: String,
}

impl Page {
    /// 200 with the body, or 304 when the request already has it.
    pub fn respond(self, headers: &HeaderMap) -> Response {
        let cache = if self.viewer.is_some() {
            PRIVATE
        } else {
            PUBLIC
        };
        let etag = HeaderValue::from_str(&self.validator)
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        let common = [
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::VARY, HeaderValue::from_static(VARY)),
            (header::ETAG, etag),
        ];
        if pinhole_http::etag_matches(headers, &self.validator) {
            return (StatusCode::NOT_MODIFIED, common).into_response();
        }
        (
            StatusCode::OK,
            common,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response()
    }
}

/// An HTML page that is not to be stored (errors).
pub fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_validator_ignores_link_signatures_only() {
        let a =
            json!({"image": {"derivatives": [{"url": "http://x/b/k?exp=1&sig=a"}], "title": "t"}});
        let b =
            json!({"image": {"derivatives": [{"url": "http://x/b/k?exp=2&sig=b"}], "title": "t"}});
        let c =
            json!({"image": {"derivatives": [{"url": "http://x/b/k?exp=2&sig=b"}], "title": "u"}});
        assert_eq!(validator(&a, "p"), validator(&b, "p"));
        assert_ne!(validator(&b, "p"), validator(&c, "p"));
        assert_ne!(validator(&a, "p"), validator(&a, "q"));
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"y\""),
        );
        assert!(
            pinhole_http::etag_matches(&h, "\"y\"") && !pinhole_http::etag_matches(&h, "\"z\"")
        );
    }
}
