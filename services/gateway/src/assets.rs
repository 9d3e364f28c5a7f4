//! The stylesheet, served under a name that carries its content's hash, so
//! that it can be cached for a year: a change is a new name.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The stylesheet.
const CSS: &str = include_str!("assets/app.css");

/// `/static/app.{hash}.css`: the first 16 hex digits of the SHA-256 of the
/// stylesheet.
pub fn css_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let hash = hex::encode(Sha256::digest(CSS.as_bytes()));
        format!("/static/app.{}.css", &hash[..16])
    })
}

/// `GET /static/{file}`: the stylesheet under its current name, immutable;
/// any other name is a 404.
pub async fn asset(Path(file): Path<String>) -> Response {
    if css_path().strip_prefix("/static/") == Some(file.as_str()) {
        (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            CSS,
        )
            .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file",
        )
            .into_response()
    }
}
