//! `/blobs/{key}`: blobs behind the server's signed, expiring links (those
//! of the local store, and of the S3 store with `PINHOLE_BLOB_LINKS=proxy`
//! or `redirect`). A link is the same URL for a whole link bucket and names
//! a blob whose bytes never change (keys are content-addressed), so the
//! answer is public and immutable until the link expires: a shared cache
//! keeps it for whoever presents the same signed URL.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pinhole_blob::{BlobError, PresignError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::{ApiError, ApiQuery, AppContext};

/// The query of a signed link.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignedQuery {
    /// Unix time after which the link is refused.
    pub expires: i64,
    /// Hex HMAC-SHA256 of the key and `expires`.
    pub sig: String,
}

fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("avif") => "image/avif",
        Some("heic") => "image/heic",
        Some("json") => "application/json",
        Some("parquet") => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

/// How long the target of a redirect is asked to stay valid (a presigned
/// S3 URL made per link bucket: valid this long, and up to a bucket more).
const REDIRECT_TTL: Duration = Duration::from_secs(3600);

/// Seconds by which a redirect is kept less long than its target stays
/// valid, so that a client following it from a cache at the last moment
/// still gets in (and a clock a little off does not matter).
const REDIRECT_MARGIN: i64 = 300;

/// A strong validator of the blob at `key`: its bytes never change, so the
/// key says which they are.
fn etag(key: &str) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
}

fn lookup_error(e: BlobError) -> ApiError {
    match e {
        BlobError::NotFound(_) | BlobError::InvalidKey(_) => {
            ApiError::not_found(crate::Common::BlobNotFound, "there is no such blob")
        }
        other => ApiError::internal(other),
    }
}

/// A blob, through a link made by the blob store's `presign_get`: its
/// bytes, or (`PINHOLE_BLOB_LINKS=redirect`) a redirect to a presigned S3
/// URL.
#[utoipa::path(get, path = "/blobs/{key}", tag = "blobs",
    params(("key" = String, Path, description = "Blob key"), SignedQuery),
    responses(
        (status = 200, description = "The blob's bytes; `Cache-Control: public, max-age=<until the link expires>, immutable` and a strong `ETag`"),
        (status = 302, description = "Redirect to a presigned S3 URL (`PINHOLE_BLOB_LINKS=redirect`), kept a little less long than that URL stays valid"),
        (status = 304, description = "The `If-None-Match` ETag is the blob's"),
        (status = 403, description = "Expired or forged link", body = crate::ErrorBody),
        (status = 404, description = "No such blob", body = crate::ErrorBody),
        (status = 422, description = "`expires` or `sig` is missing, or `expires` is not a number (`validation-failed`)", body = crate::ErrorBody),
    ))]
async fn get_blob(
    State(ctx): State<AppContext>,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<SignedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = verify_link(&ctx, &key, &query)?;
    let blobs = &ctx.backends.blobs;
    let link_left = (query.expires - now).max(0);
    if let Some(target) = blobs
        .redirect_get(&key, REDIRECT_TTL)
        .await
        .map_err(lookup_error)?
    {
        // Not to S3's own 404: the same answer as when serving the bytes.
        if blobs.head(&key).await.map_err(lookup_error)?.is_none() {
            return Err(lookup_error(BlobError::NotFound(key)));
        }
        let max_age = (target.expires - now - REDIRECT_MARGIN).clamp(0, link_left);
        return Ok((
            StatusCode::FOUND,
            [
                (header::LOCATION, target.url.to_string()),
                (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
            ],
        )
            .into_response());
    }
    let etag = etag(&key);
    let cache_control = format!("public, max-age={link_left}, immutable");
    if crate::etag_matches(&headers, &etag) {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response());
    }
    let body = blobs.get(&key, None).await.map_err(lookup_error)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type(&key).to_owned()),
            (header::CONTENT_LENGTH, body.span.1.to_string()),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control),
        ],
        Body::from_stream(body.stream),
    )
        .into_response())
}

/// Checks a link to `key` signed by the context's signer (this route's, or
/// another made with `UrlSigner::sign_at`); the time it was checked at.
pub fn verify_link(ctx: &AppContext, key: &str, query: &SignedQuery) -> Result<i64, ApiError> {
    let now = chrono::Utc::now().timestamp();
    ctx.signer
        .verify(key, query.expires, &query.sig, now)
        .map_err(|e| match e {
            PresignError::Expired => ApiError::forbidden("this link has expired"),
            PresignError::BadSignature => ApiError::forbidden("this link is not valid"),
        })?;
    Ok(now)
}

/// Keys hold slashes, so the route is a wildcard, which utoipa-axum cannot
/// derive; the operation is documented as `/blobs/{key}`.
#[derive(OpenApi)]
#[openapi(paths(get_blob))]
struct BlobDoc;

/// Serves signed blob links.
pub fn blob_router(ctx: &AppContext) -> OpenApiRouter {
    OpenApiRouter::with_openapi(BlobDoc::openapi())
        .route("/blobs/{*key}", axum::routing::get(get_blob))
        .with_state(ctx.clone())
}
