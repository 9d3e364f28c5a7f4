//! The original bytes of an image (or one of its versions).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pinhole_http::{ApiError, AppContext, MaybeAuth};
use pinhole_media::Format;

use super::parse_id;
use crate::access::visible_image;
use crate::store;

/// The original: its owner gets the exact bytes uploaded; everyone else
/// allowed to see the image gets the same image with its metadata (EXIF,
/// XMP, comments) removed, losslessly.
#[utoipa::path(get, path = "/api/v1/images/{id}/original", tag = "images", security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "image id")),
    responses(
        (status = 200, description = "The image bytes", content_type = "image/*"),
        (status = 304, description = "Not modified"),
        (status = 404, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn original(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer.map(|p| p.user_id);
    let (img, _, rel) = visible_image(&ctx.backends.db, viewer, parse_id(&id)?).await?;
    let format =
        Format::parse(&img.format).ok_or_else(|| ApiError::internal("unknown stored format"))?;
    let (key, etag) = if rel.is_owner {
        (
            store::original_key(&img.sha256, format),
            format!("\"{}\"", img.sha256),
        )
    } else {
        (
            public_copy(&ctx, &img.sha256, format).await?,
            format!("\"{}-public\"", img.sha256),
        )
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let body = ctx
        .backends
        .blobs
        .get(&key, None)
        .await
        .map_err(ApiError::unavailable)?;
    Ok((
        [
            (header::CONTENT_TYPE, format.mime().to_owned()),
            (header::CONTENT_LENGTH, body.meta.size.to_string()),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}.{}\"", img.id, format.extension()),
            ),
        ],
        Body::from_stream(body.stream),
    )
        .into_response())
}

/// Metadata-free copies being made in this process, by key.
static MAKING: std::sync::LazyLock<pinhole_http::KeyedLocks> =
    std::sync::LazyLock::new(pinhole_http::KeyedLocks::default);

/// The metadata-free copy, made on first request and kept beside the
/// original (collected with it).
async fn public_copy(ctx: &AppContext, sha256: &str, format: Format) -> Result<String, ApiError> {
    let key = store::public_key(sha256, format);
    let exists = || async {
        pinhole_blob::exists(ctx.backends.blobs.as_ref(), &key)
            .await
            .map_err(ApiError::unavailable)
    };
    if exists().await? {
        return Ok(key);
    }
    // One request makes the copy; the others wait for it, then serve it.
    let _making = MAKING.lock(&key).await;
    if exists().await? {
        return Ok(key);
    }
    let original = ctx
        .backends
        .blobs
        .get(&store::original_key(sha256, format), None)
        .await
        .map_err(ApiError::unavailable)?;
    // The original and its copy, both in memory for a moment.
    let _memory = ctx
        .memory
        .reserve(
            original.meta.size.saturating_mul(2),
            pinhole_http::BUDGET_WAIT,
        )
        .await?;
    let original = original.bytes().await.map_err(ApiError::unavailable)?;
    let stripped =
        tokio::task::spawn_blocking(move || pinhole_media::strip_metadata(&original, format))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(format!("stripping metadata: {e}")))?;
    pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), &key, stripped)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(key)
}
