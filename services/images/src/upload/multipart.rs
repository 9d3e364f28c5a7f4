//! `POST /api/v1/images`: one image per request as `multipart/form-data`
//! (a `file` part and text fields). Many requests at once with the same
//! `batch_id` make a batch.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use pinhole_http::{ApiError, ApiQuery, AppContext, Auth};
use serde::Deserialize;
use tokio::sync::Semaphore;
use utoipa::IntoParams;

use super::{ingest, stage, too_large};
use crate::ImagesError;
use crate::domain::UploadFields;
use crate::{present, tasks, views};

/// Uploads read and stored at once; more wait their turn.
pub(crate) static PERMITS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(32));

/// How long a client may send nothing in the middle of a body.
pub const IDLE: Duration = Duration::from_secs(30);
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
        (status = 413, description = "The file is over `PINHOLE_MAX_UPLOAD_BYTES` (`upload-too-large`)", body = pinhole_http::ErrorBody),
        (status = 415, description = "Not multipart/form-data (`expected-multipart`), or not an image of a format we take (`unsupported-image-format`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "A field is wrong or unknown, the `file` part is missing, or the image is truncated, corrupt or has too many pixels (named in `fields`, or `image-truncated`, `image-corrupt`, `image-too-many-pixels`)", body = pinhole_http::ErrorBody),
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
    let permit = PERMITS.acquire().await.map_err(ApiError::internal)?;
    let max = ctx.settings.max_upload_bytes;
    let mut file: Option<BytesMut> = None;
    let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut text_bytes = 0usize;
    loop {
        let next = tokio::time::timeout(IDLE, multipart.next_field())
            .await
            .map_err(|_| bad_multipart("the client stopped sending"))?;
        let Some(mut field) = next.map_err(bad_multipart)? else {
            break;
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(ApiError::field(
                    "file",
                    "send one file per request; give several requests the same batch_id",
                ));
            }
            let mut buf = BytesMut::new();
            loop {
                let chunk = tokio::time::timeout(IDLE, field.chunk())
                    .await
                    .map_err(|_| bad_multipart("the client stopped sending"))?
                    .map_err(bad_multipart)?;
                let Some(chunk) = chunk else { break };
                if (buf.len() + chunk.len()) as u64 > max {
                    // Read (and drop) a bounded rest, so that the client,
                    // still sending, gets to read the answer instead of a
                    // reset connection.
                    drop(buf);
                    let mut drained = 0usize;
                    while drained < DRAIN
                        && let Ok(Ok(Some(c))) = tokio::time::timeout(IDLE, field.chunk()).await
                    {
                        drained += c.len();
                    }
                    return Err(too_large(max));
                }
                buf.extend_from_slice(&chunk);
            }
            file = Some(buf);
        } else {
            let mut buf = BytesMut::new();
            while let Some(chunk) = tokio::time::timeout(IDLE, field.chunk())
                .await
                .map_err(|_| bad_multipart("the client stopped sending"))?
                .map_err(bad_multipart)?
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
        .ok_or_else(|| ApiError::field("file", "a non-empty `file` part is required"))?;
    let staged = stage(&ctx, file.freeze()).await?;
    let accepted = ingest(&ctx, me.user_id, staged, fields).await?;
    drop(permit);
    respond(&ctx, accepted, wait).await
}
