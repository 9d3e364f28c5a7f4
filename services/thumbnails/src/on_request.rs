//! `GET /t/derivatives/{shard}/{sha256}/{name}.{ext}?expires=…&sig=…`:
//! the derivatives of the set that are made on their first request, not
//! with the set (`w2048`, see [`pinhole_imaging::ON_REQUEST`]). The images
//! role links to them here, signed as its blob links are (the same key, the
//! same expiry, the same signature), because a link to the store itself
//! would find nothing before the first request.
//!
//! The answer is a redirect to the stored derivative (the blob store's own
//! link, as for any other derivative), made and stored first when missing.
//! Identical requests that arrive together make it once; making it holds
//! a transform CPU slot and its share of the memory budget, so a burst of
//! first requests queues like transforms do.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pinhole_http::{ApiError, ApiQuery, AppContext, SignedQuery};
use pinhole_imaging::{Limits, OutputFormat};

use crate::ThumbnailsError;
use crate::store::{derivative_key, derived_content, stored_original};

/// How long the link a redirect points to is asked to stay valid.
const TARGET_TTL: Duration = Duration::from_secs(3600);

/// Seconds by which a redirect is kept less long than its target stays
/// valid, so that a client following it from a cache at the last moment
/// still gets in.
const TARGET_MARGIN: i64 = 300;

fn no_such_blob() -> ApiError {
    ApiError::not_found(pinhole_http::Common::BlobNotFound, "there is no such blob")
}

/// The content, name and format of a key of an on-request derivative.
fn planned(key: &str) -> Option<(&str, &'static str, OutputFormat)> {
    let sha = derived_content(key)?;
    let (name, ext) = key.rsplit_once('/')?.1.rsplit_once('.')?;
    let format = OutputFormat::parse(ext)?;
    let &(name, _) = pinhole_imaging::ON_REQUEST
        .iter()
        .find(|(n, _)| *n == name)?;
    (derivative_key(sha, name, format.extension()) == key
        && matches!(format, OutputFormat::Jpeg | OutputFormat::Webp))
    .then_some((sha, name, format))
}

/// A derivative made on its first request.
#[utoipa::path(get, path = "/t/derivatives/{key}", tag = "thumbnails",
    params(
        ("key" = String, Path, description = "The rest of the derivative's key: `{shard}/{sha256}/{name}.{ext}`"),
        SignedQuery,
    ),
    responses(
        (status = 302, description = "To the stored derivative (made first when missing)"),
        (status = 403, description = "Expired or forged link", body = pinhole_http::ErrorBody),
        (status = 404, description = "Not a derivative made on request, or its original is gone (`blob-not-found`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "The original cannot be decoded (`transform-failed`)", body = pinhole_http::ErrorBody),
        (status = 503, description = "Every worker is busy; try again", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn derivative(
    State(ctx): State<AppContext>,
    Path(rest): Path<String>,
    ApiQuery(query): ApiQuery<SignedQuery>,
) -> Result<Response, ApiError> {
    let key = format!("derivatives/{rest}");
    let now = pinhole_http::verify_link(&ctx, &key, &query)?;
    let (sha256, name, format) = planned(&key).ok_or_else(no_such_blob)?;
    let blobs = ctx.backends.blobs.as_ref();
    if !pinhole_blob::exists(blobs, &key)
        .await
        .map_err(ApiError::unavailable)?
    {
        // One request makes it; identical ones wait, then find it stored.
        let _making = crate::transform::MAKING.lock(&key).await;
        if !pinhole_blob::exists(blobs, &key)
            .await
            .map_err(ApiError::unavailable)?
        {
            make(&ctx, sha256, name, format, &key).await?;
        }
    }
    let target = blobs
        .presign_get(&key, TARGET_TTL)
        .await
        .map_err(ApiError::unavailable)?;
    let max_age =
        (TARGET_TTL.as_secs() as i64 - TARGET_MARGIN).clamp(0, (query.expires - now).max(0));
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, target.to_string()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
    )
        .into_response())
}

/// Makes the derivative `name` in `format` of content `sha256` from its
/// stored original and stores it at `key`.
async fn make(
    ctx: &AppContext,
    sha256: &str,
    name: &'static str,
    format: OutputFormat,
    key: &str,
) -> Result<(), ApiError> {
    let blobs = ctx.backends.blobs.as_ref();
    let original = stored_original(blobs, sha256)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(|| {
            tracing::info!(sha256, "original gone before its derivative was asked for");
            no_such_blob()
        })?;
    // The CPU slot before the original: it also bounds how many originals
    // are held in memory at once.
    let permit = crate::transform::cpu_slot().await?;
    let bytes_held = ctx
        .memory
        .reserve(original.size, pinhole_http::BUDGET_WAIT)
        .await?;
    let bytes = match blobs.get(&original.key, None).await {
        Ok(body) => body.bytes().await.map_err(ApiError::unavailable)?,
        Err(pinhole_blob::BlobError::NotFound(_)) => return Err(no_such_blob()),
        Err(e) => return Err(ApiError::unavailable(e)),
    };
    let max_pixels = ctx.settings.max_image_pixels;
    let inspected = pinhole_media::inspect(&bytes, &pinhole_media::Limits { max_pixels })
        .map_err(|e| failed(e.to_string()))?;
    // Its decoded pixels (at most 4 bytes each, at most full size).
    let pixels_held = ctx
        .memory
        .reserve(
            u64::from(inspected.width) * u64::from(inspected.height) * 4,
            pinhole_http::BUDGET_WAIT,
        )
        .await?;
    let made = tokio::task::spawn_blocking(move || {
        let _held = (permit, bytes_held, pixels_held);
        pinhole_imaging::make_on_request(&bytes, &Limits { max_pixels }, name, format)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(failed)?
    .ok_or_else(no_such_blob)?;
    pinhole_blob::put_bytes(blobs, key, made.bytes)
        .await
        .map_err(ApiError::unavailable)?;
    metrics::counter!("pinhole_derivatives_made_on_request_total").increment(1);
    tracing::info!(
        sha256,
        name,
        format = format.as_str(),
        "derivative made on request"
    );
    Ok(())
}

fn failed(reason: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ThumbnailsError::TransformFailed,
        format!("the derivative could not be made: {reason}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_keys_of_on_request_derivatives_are_made() {
        let sha = "ab".repeat(32);
        let key = derivative_key(&sha, "w2048", "webp");
        assert_eq!(
            planned(&key),
            Some((sha.as_str(), "w2048", OutputFormat::Webp))
        );
        let jpeg = derivative_key(&sha, "w2048", "jpg");
        assert_eq!(
            planned(&jpeg),
            Some((sha.as_str(), "w2048", OutputFormat::Jpeg))
        );
        for other in [
            derivative_key(&sha, "w1080", "jpg"),
            derivative_key(&sha, "w2048", "png"),
            derivative_key(&sha, "w2048", "avif"),
            format!("derivatives/cd/{sha}/w2048.jpg"),
            format!("derivatives/ab/{sha}/t/w2048.jpg"),
            format!("derivatives/ab/{sha}/manifest.json"),
            "derivatives/ab/short/w2048.jpg".to_owned(),
        ] {
            assert_eq!(planned(&other), None, "{other}");
        }
    }
}
