//! On-demand transforms: `GET /t/{signature}/{options}/{image_id}.{ext}`,
//! imgproxy-style. The signature is HMAC-SHA256 over `/{options}/{file}`
//! with a configured key and salt (several pairs for rotation); `_` asks
//! for an unsigned transform, which only presets on the allowed list get,
//! and only for public images of public accounts. A signed URL is a
//! capability: whoever holds it gets the transform of whatever image it
//! names (the server signs only for those who may see the image).
//!
//! Results are stored beside the image's derivatives (content-addressed by
//! the original and the canonical options, so they go with the derivative
//! set when the images role releases the original) and their existence is
//! cached, so a repeat is a lookup.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pinhole_http::{ApiError, AppContext, KeyedLocks};
use pinhole_imaging::{Limits, OutputFormat};
use pinhole_transform::{Caps, Options, Presets, Signer};
use sea_orm::EntityTrait;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::ThumbnailsError;
use crate::pipeline::Vision;
use pinhole_events::images::derivative_prefix;

/// Transforms (and derivatives made on request) computed at once
/// (CPU-bound); more wait.
static WORKERS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    Arc::new(Semaphore::new(
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2),
    ))
});

/// How long the existence of a stored result is remembered.
const KNOWN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The largest width or height a transform may produce.
const MAX_DIMENSION: u32 = 8192;

/// What the transform route needs, made once at start-up.
#[derive(Clone)]
pub struct Transforms {
    pub signer: Arc<Signer>,
    pub presets: Arc<Presets>,
    pub caps: Caps,
}

fn status(status: StatusCode, code: ThumbnailsError, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

fn not_found() -> ApiError {
    ApiError::not_found(ThumbnailsError::ImageNotFound, "no such image")
}

/// The image row fields a transform needs.
struct Source {
    sha256: String,
    format: String,
    width: i64,
    height: i64,
    public: bool,
}

async fn load(ctx: &AppContext, id: Uuid) -> Result<Option<Source>, ApiError> {
    use crate::entity::{account, image};
    let db = &ctx.backends.db;
    let Some(img) = image::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|i| i.status == image::Status::Ready)
    else {
        return Ok(None);
    };
    // An owner this role has not heard of yet, from its account events or
    // an upload's job (see `catalog::made`), counts as private.
    let private = account::Entity::find_by_id(img.owner_id)
        .one(db)
        .await?
        .is_none_or(|a| a.is_private);
    Ok(Some(Source {
        public: img.visibility == image::Visibility::Public && !private,
        sha256: img.sha256,
        format: img.format,
        width: i64::from(img.width),
        height: i64::from(img.height),
    }))
}

/// The output format: `f:` wins, then the extension; `auto` picks AVIF, then
/// WebP, for clients that accept them, else JPEG (the answer then varies by
/// `Accept`).
fn output_format(
    opts: &Options,
    ext: &str,
    headers: &HeaderMap,
) -> Result<(OutputFormat, bool), ApiError> {
    let from_name = |name: &str| -> Result<OutputFormat, ApiError> {
        OutputFormat::parse(name).ok_or_else(|| {
            status(
                StatusCode::UNPROCESSABLE_ENTITY,
                ThumbnailsError::FormatUnsupported,
                format!("`{name}` is not an output format: use jpg, png, webp, gif, avif or auto"),
            )
        })
    };
    if let Some(f) = opts.format {
        return Ok((from_name(f.as_str())?, false));
    }
    if ext == "auto" {
        let accepts = |mime: &str| {
            headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|range| accepts_type(range, mime))
        };
        let f = [OutputFormat::Avif, OutputFormat::Webp]
            .into_iter()
            .find(|f| accepts(f.mime()))
            .unwrap_or(OutputFormat::Jpeg);
        return Ok((f, true));
    }
    Ok((from_name(ext)?, false))
}

/// Whether one `Accept` media range names `mime` and does not refuse it
/// with `q=0`. Wildcards are not taken as asking for a newer format: a
/// browser that sends `*/*` alone may not decode AVIF.
fn accepts_type(range: &str, mime: &str) -> bool {
    let mut parts = range.split(';').map(str::trim);
    if !parts.next().is_some_and(|m| m.eq_ignore_ascii_case(mime)) {
        return false;
    }
    !parts.any(|p| {
        p.strip_prefix("q=")
            .and_then(|q| q.trim().parse::<f32>().ok())
            .is_some_and(|q| q <= 0.0)
    })
}

/// The signed part of the path: `/{options}/{file}` as the client sent it.
fn signed_path<'a>(uri: &'a str, signature: &str) -> Option<&'a str> {
    uri.strip_prefix("/t/")?.strip_prefix(signature)
}

/// An image, transformed.
#[utoipa::path(get, path = "/t/{signature}/{options}/{file}", tag = "thumbnails",
    params(
        ("signature" = String, Path, description = "base64url HMAC-SHA256 of `/{options}/{file}` with a key and salt, or `_` for an allowed preset"),
        ("options" = String, Path, description = "comma-separated `name:arg` items, e.g. `rs:fill:300:200,g:face,q:80`, or `pr:NAME`; `_` for none"),
        ("file" = String, Path, description = "`{image_id}.{ext}`: ext jpg, png, webp, gif, avif, or auto (AVIF, then WebP, when accepted, else JPEG)"),
    ),
    responses(
        (status = 200, description = "The transformed image", content_type = "image/*"),
        (status = 304, description = "Not modified"),
        (status = 403, body = pinhole_http::ErrorBody),
        (status = 404, body = pinhole_http::ErrorBody),
        (status = 422, body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn transform(
    State((ctx, t)): State<(AppContext, Transforms)>,
    Path((signature, options, file)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = signed_path(uri.path(), &signature).ok_or_else(not_found)?;
    if signature == "_" || signature == "unsafe" {
        if !t.presets.allows_unsigned(&options) {
            return Err(status(
                StatusCode::FORBIDDEN,
                ThumbnailsError::SignatureRequired,
                "unsigned transforms are limited to the allowed presets (pr:NAME); sign the URL",
            ));
        }
    } else if !t.signer.verify(&signature, path) {
        return Err(status(
            StatusCode::FORBIDDEN,
            ThumbnailsError::SignatureInvalid,
            "the signature does not match this URL",
        ));
    }
    let unsigned = signature == "_" || signature == "unsafe";
    let (id, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let opts = pinhole_transform::parse(&options, t.presets.as_ref(), &t.caps).map_err(|e| {
        let code = if e.is_too_large() {
            ThumbnailsError::TransformTooLarge
        } else {
            ThumbnailsError::TransformInvalid
        };
        status(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    })?;
    let (format, negotiated) = output_format(&opts, ext, &headers)?;
    let src = load(&ctx, id).await?.ok_or_else(not_found)?;
    if unsigned && !src.public {
        return Err(not_found());
    }
    let (sw, sh) = (
        u32::try_from(src.width).unwrap_or(0),
        u32::try_from(src.height).unwrap_or(0),
    );
    if u64::from(sw) * u64::from(sh) > ctx.settings.transform_max_source_pixels {
        return Err(status(
            StatusCode::UNPROCESSABLE_ENTITY,
            ThumbnailsError::SourceTooLarge,
            format!(
                "the original has {} pixels; on-demand transforms take up to {}",
                u64::from(sw) * u64::from(sh),
                ctx.settings.transform_max_source_pixels
            ),
        ));
    }
    let (ow, oh) = opts.output_size(sw, sh);
    if u64::from(ow) * u64::from(oh) > t.caps.max_output_pixels
        || ow > MAX_DIMENSION
        || oh > MAX_DIMENSION
    {
        return Err(status(
            StatusCode::UNPROCESSABLE_ENTITY,
            ThumbnailsError::TransformTooLarge,
            format!(
                "the result would be {ow}×{oh}; transforms produce at most {} pixels and {MAX_DIMENSION} on a side",
                t.caps.max_output_pixels
            ),
        ));
    }
    let canonical = opts.canonical();
    let digest = hex::encode(Sha256::digest(
        format!("{canonical}|{}|{}", format.as_str(), src.sha256).as_bytes(),
    ));
    let etag = format!("\"{}\"", &digest[..32]);
    let mut out_headers = HeaderMap::new();
    out_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out_headers.insert(header::ETAG, v);
    }
    if negotiated {
        out_headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    out_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.mime()),
    );
    out_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim() == etag || e.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, out_headers).into_response());
    }
    let key = format!(
        "{}t/{}.{}",
        derivative_prefix(&src.sha256),
        &digest[..32],
        format.extension()
    );
    let known_key = format!("transform:{key}");
    let known = matches!(ctx.backends.cache.get(&known_key).await, Ok(Some(_)));
    let media = pinhole_media::Format::parse(&src.format)
        .ok_or_else(|| ApiError::internal("unknown stored format"))?;
    let original_key = pinhole_events::images::original_key(&src.sha256, media.extension());
    if let Some(stored) = stored(&ctx, &key, &known_key, known, &out_headers).await? {
        return Ok(stored);
    }
    // One request makes a given result; identical ones wait for it, then
    // serve it stored.
    let _making = MAKING.lock(&key).await;
    if let Some(stored) = stored(&ctx, &key, &known_key, false, &out_headers).await? {
        return Ok(stored);
    }
    // The CPU permit before the original: it also bounds how many originals
    // are held in memory at once.
    let permit = cpu_slot().await?;
    let original = match ctx.backends.blobs.get(&original_key, None).await {
        Ok(original) => original,
        // The images role collected the content: the image was deleted and
        // this role's catalog has not heard yet.
        Err(pinhole_blob::BlobError::NotFound(_)) => {
            tracing::info!(image = %id, "original gone before the catalog heard of the deletion");
            return Err(not_found());
        }
        Err(e) => return Err(ApiError::unavailable(e)),
    };
    // The original's share of the memory budget and its decoded pixels'
    // (at most 4 bytes each), held until the result is made.
    let pixels = u64::from(sw) * u64::from(sh) * 4;
    let memory = ctx
        .memory
        .reserve(original.meta.size + pixels, pinhole_http::BUDGET_WAIT)
        .await?;
    let original = original.bytes().await.map_err(ApiError::unavailable)?;
    let max_pixels = ctx.settings.transform_max_source_pixels;
    let quality = opts.quality.unwrap_or(82);
    let made = tokio::task::spawn_blocking(move || {
        let (_permit, _memory) = (permit, memory);
        let min_edge = opts.min_source_edge(sw, sh);
        let decoded = pinhole_imaging::decode(&original, &Limits { max_pixels }, min_edge)
            .map_err(|e| e.to_string())?;
        let img =
            pinhole_transform::apply(decoded.image, &opts, &Vision).map_err(|e| e.to_string())?;
        pinhole_imaging::encode(&img, format, quality).map_err(|e| e.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|reason| {
        status(
            StatusCode::UNPROCESSABLE_ENTITY,
            ThumbnailsError::TransformFailed,
            format!("the image could not be transformed: {reason}"),
        )
    })?;
    let bytes = Bytes::from(made);
    pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), &key, bytes.clone())
        .await
        .map_err(ApiError::unavailable)?;
    let _ = ctx
        .backends
        .cache
        .set(&known_key, Bytes::from_static(b"1"), KNOWN_TTL)
        .await;
    out_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    out_headers.insert("pinhole-transform", HeaderValue::from_static("made"));
    Ok((out_headers, bytes).into_response())
}

/// A transform worker's slot (one per core), waited for at most
/// [`pinhole_http::BUDGET_WAIT`]: 503 when every one stays busy.
pub(crate) async fn cpu_slot() -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    match tokio::time::timeout(
        pinhole_http::BUDGET_WAIT,
        Arc::clone(&WORKERS).acquire_owned(),
    )
    .await
    {
        Ok(permit) => permit.map_err(ApiError::internal),
        Err(_) => Err(pinhole_http::busy("every transform worker is busy")),
    }
}

/// The stored result at `key`, answered with `headers`; `None` when there
/// is none (or it was collected since the cache said it was there).
async fn stored(
    ctx: &AppContext,
    key: &str,
    known_key: &str,
    known: bool,
    headers: &HeaderMap,
) -> Result<Option<Response>, ApiError> {
    if !known
        && !pinhole_blob::exists(ctx.backends.blobs.as_ref(), key)
            .await
            .map_err(ApiError::unavailable)?
    {
        return Ok(None);
    }
    // A deleted image's stored results stop being served once the catalog
    // hears of the deletion, and go with `content.released`.
    match ctx.backends.blobs.get(key, None).await {
        Ok(body) => {
            if !known {
                let _ = ctx
                    .backends
                    .cache
                    .set(known_key, Bytes::from_static(b"1"), KNOWN_TTL)
                    .await;
            }
            let mut headers = headers.clone();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.meta.size));
            headers.insert("pinhole-transform", HeaderValue::from_static("stored"));
            Ok(Some(
                (headers, Body::from_stream(body.stream)).into_response(),
            ))
        }
        // Collected since: make it again.
        Err(pinhole_blob::BlobError::NotFound(_)) => {
            let _ = ctx.backends.cache.delete(known_key).await;
            Ok(None)
        }
        Err(e) => Err(ApiError::unavailable(e)),
    }
}

/// The results (and derivatives made on request) being made in this
/// process, by storage key.
pub(crate) static MAKING: LazyLock<KeyedLocks> = LazyLock::new(KeyedLocks::default);
