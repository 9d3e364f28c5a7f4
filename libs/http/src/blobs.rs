//! `/blobs/{key}`: blobs of the local store behind signed, expiring links
//! (what S3 presigned URLs are for the S3 store).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pinhole_blob::{BlobError, PresignError};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::{ApiError, AppContext};

#[derive(Debug, Deserialize, IntoParams)]
struct SignedQuery {
    /// Unix time after which the link is refused.
    expires: i64,
    /// Hex HMAC-SHA256 of the key and `expires`.
    sig: String,
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

/// A blob, through a link made by the blob store's `presign_get`.
#[utoipa::path(get, path = "/blobs/{key}", tag = "blobs",
    params(("key" = String, Path, description = "Blob key"), SignedQuery),
    responses(
        (status = 200, description = "The blob's bytes"),
        (status = 403, description = "Expired or forged link", body = crate::ErrorBody),
        (status = 404, description = "No such blob", body = crate::ErrorBody),
    ))]
async fn get_blob(
    State(ctx): State<AppContext>,
    Path(key): Path<String>,
    Query(query): Query<SignedQuery>,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now().timestamp();
    ctx.signer
        .verify(&key, query.expires, &query.sig, now)
        .map_err(|e| match e {
            PresignError::Expired => ApiError::forbidden("this link has expired"),
            PresignError::BadSignature => ApiError::forbidden("this link is not valid"),
        })?;
    let body = ctx
        .backends
        .blobs
        .get(&key, None)
        .await
        .map_err(|e| match e {
            BlobError::NotFound(_) | BlobError::InvalidKey(_) => {
                ApiError::not_found(crate::Common::BlobNotFound, "there is no such blob")
            }
            other => ApiError::internal(other),
        })?;
    let max_age = (query.expires - now).max(0);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type(&key).to_owned()),
            (header::CONTENT_LENGTH, body.span.1.to_string()),
            (header::CACHE_CONTROL, format!("private, max-age={max_age}")),
        ],
        Body::from_stream(body.stream),
    )
        .into_response())
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
