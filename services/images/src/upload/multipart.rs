//! `POST /api/v1/images`: one image per request as `multipart/form-data`
//! (a `file` part and text fields). Many requests at once with the same
//! `batch_id` make a batch.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use pinhole_http::{ApiError, ApiQuery, AppContext, Auth};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{body, ingest, stage_spooled, too_large};
use crate::ImagesError;
use crate::domain::UploadFields;
use crate::{present, tasks, views};

const MAX_FIELD: usize = 64 * 1024;
/// How much of an oversized body is read and dropped before answering 413.
const DRAIN: usize = 64 * 1024 * 1024;
/// Text fields of one request, all together.
const MAX_FIELDS_TOTAL: usize = 256 * 1024;

/// `?wait=true&timeout=SECONDS`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WaitQuery {
    /// `true`: answer when processing has ended (or `timeout` has passed).
    #[param(value_type = Option<bool>)]
    wait: Option<String>,
    /// Seconds to wait at most, 1 to 120; 30 when absent.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 120)]
    timeout: Option<String>,
}

impl WaitQuery {
    pub fn limit(&self) -> Result<Option<Duration>, ApiError> {
        let wait = match self.wait.as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1" | "") => true,
            Some(_) => return Err(ApiError::field("wait", "must be true or false")),
        };
        let secs = match &self.timeout {
            None => 30,
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|t| (1..=120).contains(t))
                .ok_or_else(|| {
                    ApiError::field("timeout", "must be a number of seconds from 1 to 120")
                })?,
        };
        Ok(wait.then(|| Duration::from_secs(secs)))
    }
}

fn bad_multipart(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ImagesError::InvalidMultipart,
        format!("the multipart body could not be read: {e}"),
    )
}

/// Answers an accepted upload, waiting for its task when asked to.
pub async fn respond(
    ctx: &AppContext,
    mut accepted: views::Accepted,
    wait: Option<Duration>,
) -> Result<Response, ApiError> {
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let Some(limit) = wait else {
        return Ok((status, Json(accepted)).into_response());
    };
    let t = tasks::wait_finished(ctx, accepted.task_id, limit).await?;
    let finished = t.is_finished();
    accepted.status = t.status.as_str().to_owned();
    accepted.task = Some(present::task(ctx, &ctx.backends.db, t).await?);
    let status = if finished {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(accepted)).into_response())
}

/// Upload an image: a `file` part (JPEG, PNG, GIF, WebP, HEIC or AVIF, told
/// from its bytes) and optional fields `title`, `description` (#hashtags
/// become tags), `tags`, `alt_text`, `visibility` (public, followers,
/// private), `location` (`LAT,LON`, a JSON object with `lat`, `lon`,
/// `place_name`, or `exif` to use the photo's GPS position), `callback_url`
/// and `batch_id`. Answers 202 with the image and task ids at once;
/// processing follows. The same bytes again from you answer 200 with the
/// existing image.
#[utoipa::path(post, path = "/api/v1/images", tag = "images", security(("bearer" = [])),
    params(WaitQuery),
    request_body(content_type = "multipart/form-data", content = crate::domain::UploadForm),
    responses(
        (status = 202, description = "Stored; processing", body = views::Accepted),
        (status = 200, description = "Already uploaded, or finished with ?wait=true", body = views::Accepted),
        (status = 400, description = "The multipart body cannot be read (`invalid-multipart`)", body = pinhole_http::ErrorBody),
        (status = 401, body = pinhole_http::ErrorBody),
        (status = 408, description = "The body came more slowly than `PINHOLE_UPLOAD_MIN_RATE` bytes a second on average (after 10 s), or took longer than `PINHOLE_UPLOAD_DEADLINE` (`upload-too-slow`)", body = pinhole_http::ErrorBody),
        (status = 413, description = "The file is over `PINHOLE_MAX_UPLOAD_BYTES` (`upload-too-large`), or would take your account past `PINHOLE_QUOTA_BYTES` (`storage-quota-exceeded`)", body = pinhole_http::ErrorBody),
        (status = 415, description = "Not multipart/form-data (`expected-multipart`), or not an image of a format we take (`unsupported-image-format`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "A field is wrong or unknown, the `file` part is missing, or the image is truncated, corrupt or has too many pixels (named in `fields`, or `image-truncated`, `image-corrupt`, `image-too-many-pixels`)", body = pinhole_http::ErrorBody),
        (status = 429, description = "Your account has `PINHOLE_QUOTA_IMAGES` images (`image-quota-exceeded`); the same bytes as one of them still answer 200, or your account is already sending `PINHOLE_UPLOADS_PER_ACCOUNT` uploads and none ended within 20 s (`too-many-uploads`, with `Retry-After`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn upload(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    ApiQuery(q): ApiQuery<WaitQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let wait = q.limit()?;
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ImagesError::ExpectedMultipart,
            format!(
                "send multipart/form-data with a `file` part ({})",
                e.body_text()
            ),
        )
    })?;
    let _slot = body::slot(&ctx.settings, me.user_id, body::SLOT_WAIT).await?;
    let max = ctx.settings.max_upload_bytes;
    let mut pace = body::Pace::new(&ctx.settings);
    let stopped = |stop: body::Stop| stop.into_error(&ctx.settings, |s| bad_multipart(s.why()));
    let mut file: Option<body::Spool> = None;
    let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut text_bytes = 0usize;
    while let Some(mut field) = pace
        .next(multipart.next_field(), |_| 0)
        .await
        .map_err(stopped)?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(ApiError::field(
                    "file",
                    "send one file per request; give several requests the same batch_id",
                ));
            }
            let mut spool = body::Spool::new(&ctx.settings, None).await?.hash_content();
            while let Some(chunk) = pace
                .next(field.chunk(), Bytes::len)
                .await
                .map_err(stopped)?
            {
                if spool.len() + chunk.len() as u64 > max {
                    // Read (and drop) a bounded rest, so that the client,
                    // still sending, gets to read the answer instead of a
                    // reset connection.
                    drop(spool);
                    let mut drained = 0usize;
                    while drained < DRAIN
                        && let Ok(Some(c)) = pace.next(field.chunk(), Bytes::len).await
                    {
                        drained += c.len();
                    }
                    return Err(too_large(max));
                }
                spool.push(&chunk).await?;
            }
            file = Some(spool);
        } else {
            let mut buf = BytesMut::new();
            while let Some(chunk) = pace
                .next(field.chunk(), Bytes::len)
                .await
                .map_err(stopped)?
            {
                if buf.len() + chunk.len() > MAX_FIELD {
                    return Err(ApiError::field(&name, "is longer than 64 KiB"));
                }
                buf.extend_from_slice(&chunk);
            }
            text_bytes += buf.len() + name.len();
            if text_bytes > MAX_FIELDS_TOTAL {
                return Err(ApiError::field(
                    "file",
                    "the text fields are larger than 256 KiB together",
                ));
            }
            let value = String::from_utf8(buf.to_vec())
                .map_err(|_| ApiError::field(&name, "is not UTF-8 text"))?;
            pairs.entry(name).or_default().push(value);
        }
    }
    let fields = UploadFields::parse(&pairs, ctx.settings.callback_allow_private)?;
    let file = file
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::field("file", "a non-empty `file` part is required"))?
        .finish()
        .await?;
    // The body is complete: only now does it take a processing permit and
    // its share of memory.
    let turn = body::turn(&ctx, file.len).await?;
    let staged = stage_spooled(&ctx, file).await?;
    let accepted = ingest(&ctx, me.user_id, staged, fields).await?;
    drop(turn);
    respond(&ctx, accepted, wait).await
}
