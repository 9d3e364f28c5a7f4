//! Resumable uploads with the tus 1.0 protocol at `/api/v1/uploads`: core,
//! creation, creation-with-upload, termination, checksum (sha1, sha256,
//! md5 is not offered) and expiration. Each PATCH body is stored as a part
//! in the blob store (so any instance can continue an upload); the parts'
//! keys are recorded with the offset in one conditional update, so two
//! PATCHes racing at one offset cannot both count. A finished upload
//! becomes an image exactly as a multipart one does.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use pinhole_http::{ApiError, AppContext, Auth};
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use super::{ingest, stage, too_large};
use crate::ImagesError;
use crate::domain::UploadFields;
use crate::entity::upload;

pub const VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str = "creation,creation-with-upload,termination,checksum,expiration";
pub const CHECKSUMS: &str = "sha1,sha256";
/// How long an unfinished upload is kept after its last change.
pub const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Metadata keys clients send that are not image fields.
const CLIENT_KEYS: &[&str] = &[
    "filename",
    "filetype",
    "name",
    "type",
    "relativePath",
    "contentType",
];

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_DEFER: HeaderName = HeaderName::from_static("upload-defer-length");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
const IMAGE_ID: HeaderName = HeaderName::from_static("pinhole-image-id");
const TASK_ID: HeaderName = HeaderName::from_static("pinhole-task-id");
const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// Adds `Tus-Resumable` to every answer.
pub async fn protocol(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    response
}

/// `Tus-Resumable: 1.0.0`, which every request but OPTIONS carries (412
/// with `Tus-Version` otherwise). The handlers take it after [`Auth`]: a
/// request without a valid token is refused for that first.
pub(crate) struct Resumable;

impl<S: Send + Sync> FromRequestParts<S> for Resumable {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        if parts
            .headers
            .get(&TUS_RESUMABLE)
            .and_then(|v| v.to_str().ok())
            == Some(VERSION)
        {
            return Ok(Self);
        }
        let mut r = ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            ImagesError::TusVersionUnsupported,
            format!("send Tus-Resumable: {VERSION}"),
        )
        .into_response();
        r.headers_mut()
            .insert("tus-version", HeaderValue::from_static(VERSION));
        Err(r)
    }
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn header_u64(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ImagesError::InvalidHeader,
                        format!("{name} must be a non-negative integer"),
                    )
                })
        })
        .transpose()
}

fn upload_not_found() -> ApiError {
    ApiError::not_found(
        ImagesError::UploadNotFound,
        "there is no such upload (it may have expired)",
    )
}

/// `Upload-Metadata`: `key base64value,key2 base64value2`.
fn parse_metadata(raw: &str) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let bad = |why: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ImagesError::InvalidUploadMetadata,
            why,
        )
    };
    let mut out = BTreeMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = pair.splitn(2, ' ');
        let key = it.next().unwrap_or_default().to_owned();
        let value = match it.next().map(str::trim) {
            None | Some("") => String::new(),
            Some(v) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map_err(|_| bad(format!("the value of `{key}` is not base64")))?;
                String::from_utf8(bytes)
                    .map_err(|_| bad(format!("the value of `{key}` is not UTF-8")))?
            }
        };
        out.entry(key).or_insert_with(Vec::new).push(value);
    }
    Ok(out)
}

fn image_fields(meta: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    meta.iter()
        .filter(|(k, _)| !CLIENT_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn upload_headers(up: &upload::Model) -> Vec<(HeaderName, String)> {
    let mut h = vec![
        (UPLOAD_OFFSET, up.offset.to_string()),
        (UPLOAD_EXPIRES, http_date(up.expires_at)),
    ];
    if let (Some(i), Some(t)) = (up.image_id, up.task_id) {
        h.push((IMAGE_ID, i.to_string()));
        h.push((TASK_ID, t.to_string()));
    }
    h
}

fn with_headers(status: StatusCode, headers: Vec<(HeaderName, String)>) -> Response {
    let mut r = status.into_response();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// What the server supports.
#[utoipa::path(options, path = "/api/v1/uploads", tag = "uploads",
    responses((status = 204, description = "What the server supports",
        headers(
            ("Tus-Version" = String, description = "`1.0.0`"),
            ("Tus-Extension" = String, description = "`creation,creation-with-upload,termination,checksum,expiration`"),
            ("Tus-Max-Size" = i64, description = "`PINHOLE_MAX_UPLOAD_BYTES`"),
            ("Tus-Checksum-Algorithm" = String, description = "`sha1,sha256`"),
        ))))]
pub(crate) async fn options(State(ctx): State<AppContext>) -> Response {
    with_headers(
        StatusCode::NO_CONTENT,
        vec![
            (HeaderName::from_static("tus-version"), VERSION.to_owned()),
            (
                HeaderName::from_static("tus-extension"),
                EXTENSIONS.to_owned(),
            ),
            (
                HeaderName::from_static("tus-max-size"),
                ctx.settings.max_upload_bytes.to_string(),
            ),
            (
                HeaderName::from_static("tus-checksum-algorithm"),
                CHECKSUMS.to_owned(),
            ),
        ],
    )
}

/// Start a resumable upload (tus creation; the first bytes may come along).
/// `Upload-Metadata` may carry the same fields as a multipart upload
/// (title, description, tags, alt_text, visibility, location, callback_url,
/// batch_id); `filename` and `filetype` are accepted and ignored.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", security(("bearer" = [])),
    params(
        ("Tus-Resumable" = String, Header, description = "The tus version: `1.0.0` (412 `tus-version-unsupported` without it)", pattern = r"^1\.0\.0$"),
        ("Upload-Length" = Option<i64>, Header, description = "The file's size in bytes, at most `PINHOLE_MAX_UPLOAD_BYTES`; without it, `Upload-Defer-Length: 1`", minimum = 1),
        ("Upload-Defer-Length" = Option<i32>, Header, description = "`1`: the size is told by a later PATCH", minimum = 1, maximum = 1),
        ("Upload-Metadata" = Option<String>, Header, description = "`key base64value,…`: the fields of a multipart upload; `filename` and `filetype` are taken and ignored"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 BASE64` or `sha256 BASE64` of the first bytes sent along"),
    ),
    request_body(content = Option<pinhole_http::docs::Bytes>, content_type = "application/offset+octet-stream",
        description = "The first bytes, if any (creation-with-upload)"),
    responses(
        (status = 201, description = "Created; `Location` names the upload",
            headers(("Location" = String, description = "`/api/v1/uploads/{id}`"), ("Upload-Offset" = i64, description = "Bytes stored so far"), ("Upload-Expires" = String, description = "When the upload is dropped unless continued (HTTP date)"), ("Tus-Resumable" = String, description = "`1.0.0`"))),
        (status = 400, description = "Neither `Upload-Length` nor `Upload-Defer-Length: 1` (`upload-length-required`), a header that does not read (`invalid-header`, `invalid-upload-metadata`, `checksum-algorithm-unsupported`, `invalid-checksum`), or a body cut short (`upload-interrupted`)", body = pinhole_http::ErrorBody),
        (status = 408, description = "The body came more slowly than `PINHOLE_UPLOAD_MIN_RATE` on average, or past `PINHOLE_UPLOAD_DEADLINE` (`upload-too-slow`, with `Upload-Offset`: what arrived is kept; resume from there)", body = pinhole_http::ErrorBody),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`tus-version-unsupported`)", body = pinhole_http::ErrorBody,
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
        (status = 413, description = "Over `PINHOLE_MAX_UPLOAD_BYTES` (`upload-too-large`), a body past `Upload-Length` (`upload-exceeds-length`), or an `Upload-Length` (or the whole file sent along) that would take your account past `PINHOLE_QUOTA_BYTES` (`storage-quota-exceeded`)", body = pinhole_http::ErrorBody),
        (status = 415, description = "The bytes sent along, making the whole file, are not an image of a format we take (`unsupported-image-format`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "A metadata field is wrong, an empty file, or the whole file sent along is not an acceptable image (named in `fields`, or `image-truncated`, `image-corrupt`, `image-too-many-pixels`)", body = pinhole_http::ErrorBody),
        (status = 429, description = "You have `PINHOLE_QUOTA_TUS_UPLOADS` unfinished uploads (`upload-quota-exceeded`: finish or terminate one first), or the whole file sent along would be an image past `PINHOLE_QUOTA_IMAGES` (`image-quota-exceeded`), or your account is already sending `PINHOLE_UPLOADS_PER_ACCOUNT` uploads and none ended within 20 s (`too-many-uploads`, with `Retry-After`)", body = pinhole_http::ErrorBody),
        (status = 460, description = "The bytes sent along do not match `Upload-Checksum` (`checksum-mismatch`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn create(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    _: Resumable,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut stream = body.into_data_stream();
    match start(&ctx, me.user_id, &headers, &mut stream).await {
        Ok(r) => Ok(r),
        Err(e) => Err(drain(&mut stream, ctx.settings.max_upload_bytes, e).await),
    }
}

async fn start(
    ctx: &AppContext,
    owner: Uuid,
    headers: &HeaderMap,
    stream: &mut BodyDataStream,
) -> Result<Response, ApiError> {
    let max = ctx.settings.max_upload_bytes;
    let length = header_u64(headers, &UPLOAD_LENGTH)?;
    let deferred = headers.get(&UPLOAD_DEFER).is_some_and(|v| v == "1");
    if length.is_none() && !deferred {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ImagesError::UploadLengthRequired,
            "send Upload-Length, or Upload-Defer-Length: 1",
        ));
    }
    if length.is_some_and(|l| l > max) {
        return Err(too_large(max));
    }
    if length == Some(0) {
        return Err(ApiError::field(
            "Upload-Length",
            "an empty file is not an image",
        ));
    }
    let meta = match headers.get(&UPLOAD_METADATA) {
        None => BTreeMap::new(),
        Some(v) => parse_metadata(
            v.to_str()
                .map_err(|_| ApiError::field("Upload-Metadata", "is not text"))?,
        )?,
    };
    // Refuse bad fields now rather than after the whole file came.
    UploadFields::parse(&image_fields(&meta), ctx.settings.callback_allow_private)?;
    // And a file that cannot fit in the account's storage (checked again
    // when it becomes an image).
    if let Some(l) = length {
        crate::quota::check_declared_size(&ctx.backends.db, ctx, owner, l).await?;
    }
    let now = Utc::now();
    let up = upload::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(owner),
        length: Set(length.map(|l| i64::try_from(l).unwrap_or(i64::MAX))),
        offset: Set(0),
        metadata: Set(serde_json::to_string(&meta).map_err(ApiError::internal)?),
        chunks: Set("[]".to_owned()),
        expires_at: Set(now + chrono::Duration::from_std(LIFETIME).unwrap_or_default()),
        created_at: Set(now),
        image_id: Set(None),
        task_id: Set(None),
    };
    // The account's unfinished uploads are counted and added in turns.
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    crate::store::lock_account(&txn, owner).await?;
    crate::quota::check_new_upload(&txn, ctx, owner).await?;
    let up = up.insert(&txn).await?;
    txn.commit().await?;
    let location = format!("/api/v1/uploads/{}", up.id);
    let with_body = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(OFFSET_STREAM.as_bytes()));
    let (up, finished) = if with_body {
        receive(ctx, up, headers, stream).await?
    } else {
        (up, None)
    };
    let mut h = upload_headers(&up);
    h.push((header::LOCATION, location));
    let mut response = with_headers(StatusCode::CREATED, h);
    if let Some(r) = finished {
        response.headers_mut().extend(r.headers().clone());
    }
    Ok(response)
}

async fn own_upload(ctx: &AppContext, user: Uuid, id: &str) -> Result<upload::Model, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| upload_not_found())?;
    upload::Entity::find_by_id(id)
        .one(&ctx.backends.db)
        .await?
        .filter(|u| u.owner_id == user && u.expires_at > Utc::now())
        .ok_or_else(upload_not_found)
}

/// Where an upload stands: `Upload-Offset`, `Upload-Length` and, once
/// finished, `Pinhole-Image-Id` and `Pinhole-Task-Id`.
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "upload id"), ("Tus-Resumable" = String, Header, description = "The tus version: `1.0.0` (412 `tus-version-unsupported` without it)", pattern = r"^1\.0\.0$")),
    responses(
        (status = 200, description = "Where the upload stands (no body)",
            headers(("Upload-Offset" = i64, description = "Bytes stored so far"), ("Upload-Expires" = String, description = "When the upload is dropped unless continued (HTTP date)"), ("Tus-Resumable" = String, description = "`1.0.0`"),
                ("Upload-Length" = i64, description = "The file's size, when known (else `Upload-Defer-Length: 1`)"),
                ("Pinhole-Image-Id" = String, description = "Once finished: the image"),
                ("Pinhole-Task-Id" = String, description = "Once finished: its processing task"))),
        (status = 404, description = "No such upload of yours, or expired (`upload-not-found`; no body, as for any HEAD)"),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`tus-version-unsupported`)", body = pinhole_http::ErrorBody,
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
    ))]
pub(crate) async fn head(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    _: Resumable,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut up = own_upload(&ctx, me.user_id, &id).await?;
    // Complete but not yet an image (the last PATCH was cut short after
    // its bytes were recorded): finish it now, or a client that sees the
    // full offset would report success for a photo that never appears.
    if up.image_id.is_none() && up.length == Some(up.offset) {
        finish(&ctx, up.clone()).await?;
        up = own_upload(&ctx, me.user_id, &id).await?;
    }
    let mut h = upload_headers(&up);
    match up.length {
        Some(l) => h.push((UPLOAD_LENGTH, l.to_string())),
        None => h.push((UPLOAD_DEFER, "1".to_owned())),
    }
    h.push((header::CACHE_CONTROL, "no-store".to_owned()));
    Ok(with_headers(StatusCode::OK, h))
}

/// Send the next bytes (`Content-Type: application/offset+octet-stream`,
/// `Upload-Offset` equal to the server's, optional `Upload-Checksum`). The
/// last PATCH makes the image and answers its ids in `Pinhole-Image-Id` and
/// `Pinhole-Task-Id`, or the reason it is not an acceptable image.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "upload id"),
        ("Tus-Resumable" = String, Header, description = "The tus version: `1.0.0` (412 `tus-version-unsupported` without it)", pattern = r"^1\.0\.0$"),
        ("Upload-Offset" = i64, Header, description = "Where these bytes start: the upload's offset", minimum = 0),
        ("Upload-Length" = Option<i64>, Header, description = "The file's size, for an upload that deferred it", minimum = 1),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 BASE64` or `sha256 BASE64` of this body"),
    ),
    request_body(content = pinhole_http::docs::Bytes, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Stored; `Upload-Offset` is the new offset, and once the file is whole `Pinhole-Image-Id` and `Pinhole-Task-Id` name the image and its task",
            headers(("Upload-Offset" = i64, description = "Bytes stored so far"), ("Upload-Expires" = String, description = "When the upload is dropped unless continued (HTTP date)"), ("Tus-Resumable" = String, description = "`1.0.0`"),
                ("Pinhole-Image-Id" = String, description = "Once finished: the image"),
                ("Pinhole-Task-Id" = String, description = "Once finished: its processing task"))),
        (status = 400, description = "A header that does not read (`invalid-header`, `checksum-algorithm-unsupported`, `invalid-checksum`), or a body cut short (`upload-interrupted`, with `Upload-Offset`)", body = pinhole_http::ErrorBody),
        (status = 404, description = "No such upload of yours, or expired (`upload-not-found`)", body = pinhole_http::ErrorBody),
        (status = 409, description = "`Upload-Offset` is not the upload's (`upload-offset-mismatch`, with the right `Upload-Offset`), or the upload is complete (`upload-finished`)", body = pinhole_http::ErrorBody),
        (status = 408, description = "The body came more slowly than `PINHOLE_UPLOAD_MIN_RATE` on average, or past `PINHOLE_UPLOAD_DEADLINE` (`upload-too-slow`, with `Upload-Offset`: what arrived is kept; resume from there)", body = pinhole_http::ErrorBody),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`tus-version-unsupported`)", body = pinhole_http::ErrorBody,
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
        (status = 413, description = "Past `Upload-Length` (`upload-exceeds-length`) or `PINHOLE_MAX_UPLOAD_BYTES` (`upload-too-large`), or the whole file would take your account past `PINHOLE_QUOTA_BYTES` (`storage-quota-exceeded`; the upload ends)", body = pinhole_http::ErrorBody),
        (status = 415, description = "Not `application/offset+octet-stream` (`expected-offset-octet-stream`), or the whole file is not an image of a format we take (`unsupported-image-format`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "The whole file is not an acceptable image, or `Upload-Length` is below the offset (named in `fields`, or `image-truncated`, `image-corrupt`, `image-too-many-pixels`)", body = pinhole_http::ErrorBody),
        (status = 429, description = "The whole file would be an image past `PINHOLE_QUOTA_IMAGES` (`image-quota-exceeded`; the upload ends), or your account is already sending `PINHOLE_UPLOADS_PER_ACCOUNT` uploads and none ended within 20 s (`too-many-uploads`, with `Retry-After`)", body = pinhole_http::ErrorBody),
        (status = 460, description = "The body does not match `Upload-Checksum` (`checksum-mismatch`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn patch(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    _: Resumable,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut stream = body.into_data_stream();
    let outcome = async {
        let up = own_upload(&ctx, me.user_id, &id).await?;
        if !headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(OFFSET_STREAM.as_bytes()))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ImagesError::ExpectedOffsetOctetStream,
                format!("PATCH bodies must be {OFFSET_STREAM}"),
            ));
        }
        receive(&ctx, up, &headers, &mut stream).await
    }
    .await;
    let (up, finished) = match outcome {
        Ok(v) => v,
        Err(e) => return Err(drain(&mut stream, ctx.settings.max_upload_bytes, e).await),
    };
    if let Some(r) = finished {
        return Ok(r);
    }
    Ok(with_headers(StatusCode::NO_CONTENT, upload_headers(&up)))
}

/// Stores one PATCH body (or the body of a creation) and, when the upload is
/// complete, makes the image. The second value is the final answer then.
async fn receive(
    ctx: &AppContext,
    up: upload::Model,
    headers: &HeaderMap,
    stream: &mut BodyDataStream,
) -> Result<(upload::Model, Option<Response>), ApiError> {
    if up.image_id.is_some() {
        return Err(ApiError::conflict(
            ImagesError::UploadFinished,
            "this upload is complete",
        ));
    }
    let offset = header_u64(headers, &UPLOAD_OFFSET)?.unwrap_or(0);
    if offset != u64::try_from(up.offset).unwrap_or(0) {
        return Err(ApiError::conflict(
            ImagesError::UploadOffsetMismatch,
            format!(
                "Upload-Offset {offset} does not match the upload's offset {}",
                up.offset
            ),
        )
        .with_header(UPLOAD_OFFSET, up.offset.to_string()));
    }
    let max = ctx.settings.max_upload_bytes;
    let mut length = up.length.map(|l| u64::try_from(l).unwrap_or(0));
    if length.is_none()
        && let Some(l) = header_u64(headers, &UPLOAD_LENGTH)?
    {
        if l > max {
            return Err(too_large(max));
        }
        if l < offset {
            return Err(ApiError::field(
                "Upload-Length",
                "is smaller than what was already sent",
            ));
        }
        length = Some(l);
    }
    let checksum = match headers.get(&UPLOAD_CHECKSUM) {
        None => None,
        Some(v) => {
            let v = v.to_str().unwrap_or_default();
            let (algo, sum) = v.split_once(' ').unwrap_or((v, ""));
            if !CHECKSUMS.split(',').any(|a| a == algo) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ImagesError::ChecksumAlgorithmUnsupported,
                    format!("Upload-Checksum algorithms are: {CHECKSUMS}"),
                ));
            }
            let sum = base64::engine::general_purpose::STANDARD
                .decode(sum.trim())
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ImagesError::InvalidChecksum,
                        "the checksum is not base64",
                    )
                })?;
            Some((algo.to_owned(), sum))
        }
    };
    let room = length.unwrap_or(max).saturating_sub(offset);
    let _slot = super::body::slot(&ctx.settings, up.owner_id, super::body::SLOT_WAIT).await?;
    // Read the body into the spool; a broken connection keeps what arrived
    // (unless a checksum covers the whole body), and so does a body too
    // slow to keep (408, resumable).
    let mut spool = super::body::Spool::new(
        &ctx.settings,
        checksum
            .as_ref()
            .map(|(algo, _)| super::body::Checksum::of(algo)),
    )
    .await?;
    let mut pace = super::body::Pace::new(&ctx.settings);
    let broken = loop {
        match pace
            .next(stream.next().map(Option::transpose), Bytes::len)
            .await
        {
            Err(stop) => break Some(stop),
            Ok(None) => break None,
            Ok(Some(chunk)) => {
                if spool.len() + chunk.len() as u64 > room {
                    return Err(if length.is_some() {
                        ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            ImagesError::UploadExceedsLength,
                            "the body goes past Upload-Length",
                        )
                    } else {
                        too_large(max)
                    });
                }
                spool.push(&chunk).await?;
            }
        }
    };
    let part = spool.finish().await?;
    if let Some((_, expected)) = &checksum {
        if broken.is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ImagesError::UploadInterrupted,
                "the body was cut short",
            ));
        }
        if part.checksum.as_ref() != Some(expected) {
            return Err(ApiError::new(
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
                ImagesError::ChecksumMismatch,
                "the body does not match Upload-Checksum; send it again",
            ));
        }
    }
    let mut up = up;
    if part.len > 0 || length != up.length.map(|l| u64::try_from(l).unwrap_or(0)) {
        up = append(ctx, up, part, length).await?;
    }
    if let Some(stop) = broken {
        return Err(stop
            .into_error(&ctx.settings, |s| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ImagesError::UploadInterrupted,
                    format!("{}; resume from Upload-Offset", s.why()),
                )
            })
            .with_header(UPLOAD_OFFSET, up.offset.to_string()));
    }
    if up.length.is_some_and(|l| l == up.offset) {
        let response = finish(ctx, up.clone()).await?;
        return Ok((up, Some(response)));
    }
    Ok((up, None))
}

/// Records a part: stores it, then moves the offset if no one else did.
async fn append(
    ctx: &AppContext,
    up: upload::Model,
    part: super::body::Spooled,
    length: Option<u64>,
) -> Result<upload::Model, ApiError> {
    let up_offset = up.offset;
    let mut chunks: Vec<String> = serde_json::from_str(&up.chunks).unwrap_or_default();
    let key = format!(
        "uploads/{}/{:020}-{}",
        up.id,
        up.offset,
        Uuid::new_v4().simple()
    );
    let n = i64::try_from(part.len).unwrap_or(i64::MAX);
    if n > 0 {
        ctx.backends
            .blobs
            .put(&key, part.stream().await?)
            .await
            .map_err(ApiError::unavailable)?;
        chunks.push(key.clone());
    }
    let moved_to = upload::Model {
        offset: up.offset + n,
        chunks: serde_json::to_string(&chunks).map_err(ApiError::internal)?,
        length: length.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        expires_at: Utc::now() + chrono::Duration::from_std(LIFETIME).unwrap_or_default(),
        ..up
    };
    let moved = upload::Entity::update_many()
        .col_expr(upload::Column::Offset, Expr::value(moved_to.offset))
        .col_expr(upload::Column::Chunks, Expr::value(moved_to.chunks.clone()))
        .col_expr(upload::Column::Length, Expr::value(moved_to.length))
        .col_expr(upload::Column::ExpiresAt, Expr::value(moved_to.expires_at))
        .filter(upload::Column::Id.eq(moved_to.id))
        .filter(upload::Column::Offset.eq(up_offset))
        .filter(upload::Column::ImageId.is_null())
        .exec(&ctx.backends.db)
        .await?
        .rows_affected
        == 1;
    if !moved {
        let _ = ctx.backends.blobs.delete(&key).await;
        return Err(ApiError::conflict(
            ImagesError::UploadOffsetMismatch,
            "another request changed this upload first; ask HEAD for the offset",
        ));
    }
    Ok(moved_to)
}

/// Reads (and drops) what is left of a body, up to `limit` bytes, before an
/// error answer: a client still sending then reads the answer instead of
/// finding the connection reset.
async fn drain(stream: &mut BodyDataStream, limit: u64, e: ApiError) -> ApiError {
    // A body refused for its slowness is not waited for again.
    if e.status == StatusCode::REQUEST_TIMEOUT {
        return e;
    }
    let mut left = limit;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while left > 0 {
        match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Some(Ok(chunk))) => left = left.saturating_sub(chunk.len() as u64),
            _ => break,
        }
    }
    e
}

/// Joins the parts and makes the image; a refused file ends the upload.
async fn finish(ctx: &AppContext, up: upload::Model) -> Result<Response, ApiError> {
    let chunks: Vec<String> = serde_json::from_str(&up.chunks).unwrap_or_default();
    let _turn = super::body::turn(ctx, u64::try_from(up.offset).unwrap_or(0)).await?;
    let mut whole = BytesMut::with_capacity(usize::try_from(up.offset).unwrap_or(0));
    for key in &chunks {
        let part = ctx
            .backends
            .blobs
            .get(key, None)
            .await
            .map_err(ApiError::unavailable)?
            .bytes()
            .await
            .map_err(ApiError::unavailable)?;
        whole.extend_from_slice(&part);
    }
    let meta: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&up.metadata).unwrap_or_default();
    let outcome = async {
        let fields =
            UploadFields::parse(&image_fields(&meta), ctx.settings.callback_allow_private)?;
        let staged = stage(ctx, whole.freeze()).await?;
        ingest(ctx, up.owner_id, staged, fields).await
    }
    .await;
    let accepted = match outcome {
        Ok(a) => a,
        // Not an acceptable image: the upload ends. Anything else (a
        // backend down) keeps it, so the client can ask again.
        Err(e) if e.status.is_client_error() => {
            discard(ctx, up.id).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    upload::Entity::update_many()
        .col_expr(upload::Column::ImageId, Expr::value(accepted.image_id))
        .col_expr(upload::Column::TaskId, Expr::value(accepted.task_id))
        .col_expr(upload::Column::Chunks, Expr::value("[]"))
        .filter(upload::Column::Id.eq(up.id))
        .exec(&ctx.backends.db)
        .await?;
    delete_parts(ctx, up.id).await?;
    let mut h = vec![
        (UPLOAD_OFFSET, up.offset.to_string()),
        (IMAGE_ID, accepted.image_id.to_string()),
        (TASK_ID, accepted.task_id.to_string()),
    ];
    h.push((header::CONTENT_LOCATION, accepted.image_url.clone()));
    Ok(with_headers(StatusCode::NO_CONTENT, h))
}

async fn delete_parts(ctx: &AppContext, id: Uuid) -> Result<(), ApiError> {
    for part in ctx
        .backends
        .blobs
        .list(&format!("uploads/{id}/"))
        .await
        .map_err(ApiError::unavailable)?
    {
        ctx.backends
            .blobs
            .delete(&part.key)
            .await
            .map_err(ApiError::unavailable)?;
    }
    Ok(())
}

/// Removes an upload and its parts.
pub async fn discard(ctx: &AppContext, id: Uuid) -> Result<(), ApiError> {
    delete_parts(ctx, id).await?;
    upload::Entity::delete_by_id(id)
        .exec(&ctx.backends.db)
        .await?;
    Ok(())
}

/// Stop an upload and throw away what was sent (tus termination).
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "upload id"), ("Tus-Resumable" = String, Header, description = "The tus version: `1.0.0` (412 `tus-version-unsupported` without it)", pattern = r"^1\.0\.0$")),
    responses(
        (status = 204, description = "Gone"),
        (status = 404, description = "No such upload of yours, or expired (`upload-not-found`)", body = pinhole_http::ErrorBody),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`tus-version-unsupported`)", body = pinhole_http::ErrorBody,
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
    ))]
pub(crate) async fn terminate(
    State(ctx): State<AppContext>,
    Auth(me): Auth,
    _: Resumable,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let up = own_upload(&ctx, me.user_id, &id).await?;
    discard(&ctx, up.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes expired uploads; returns how many.
pub async fn expire(ctx: &AppContext) -> Result<usize, ApiError> {
    let old = upload::Entity::find()
        .filter(upload::Column::ExpiresAt.lt(Utc::now()))
        .all(&ctx.backends.db)
        .await?;
    let n = old.len();
    for up in old {
        if up.image_id.is_none() && up.length == Some(up.offset) {
            // Complete but never made into an image: make it now.
            match finish(ctx, up.clone()).await {
                Ok(_) => continue,
                Err(e) if e.status.is_server_error() => continue,
                Err(_) => {}
            }
        }
        discard(ctx, up.id).await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_decode() {
        let m =
            parse_metadata("filename d29ybGQuanBn,title SGVsbG8=,is_confidential").expect("valid");
        assert_eq!(m["filename"], vec!["world.jpg"]);
        assert_eq!(m["title"], vec!["Hello"]);
        assert_eq!(m["is_confidential"], vec![""]);
        assert!(parse_metadata("title !!!").is_err());
        assert_eq!(
            http_date(DateTime::from_timestamp(784_111_777, 0).expect("t")),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
