//! Blobs in an S3 bucket (AWS or any S3-compatible server).
//!
//! Uploads stream: a body that fits in one part is sent with one PUT, a larger
//! one as a multipart upload of `PART_SIZE` parts, so memory stays at one part
//! whatever the blob's size.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use pinhole_config::{ChecksumMode, S3Settings};
use secrecy::ExposeSecret;

use crate::{
    BlobBody, BlobError, BlobMeta, BlobStore, ByteRange, ByteStream, Presigned, link_window,
    validate_key,
};

/// Multipart part size: S3 wants at least 5 MiB for every part but the last.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// The longest a presigned URL may be valid (SigV4's limit).
const PRESIGN_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

fn s3<E: std::error::Error>(e: E) -> BlobError {
    // The SDK's Display is terse ("service error"); the chain says why.
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    BlobError::S3(message)
}

fn system_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<std::time::SystemTime> {
    std::time::SystemTime::try_from(*t).ok()
}

impl S3Store {
    /// A client for the bucket in `settings`. No request is made yet.
    pub fn new(settings: &S3Settings) -> Self {
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(settings.region.clone()))
            .force_path_style(settings.path_style)
            .request_checksum_calculation(match settings.checksum {
                ChecksumMode::WhenSupported => RequestChecksumCalculation::WhenSupported,
                ChecksumMode::WhenRequired => RequestChecksumCalculation::WhenRequired,
            })
            .response_checksum_validation(match settings.checksum {
                ChecksumMode::WhenSupported => ResponseChecksumValidation::WhenSupported,
                ChecksumMode::WhenRequired => ResponseChecksumValidation::WhenRequired,
            });
        config = config.timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .connect_timeout(settings.connect_timeout)
                .read_timeout(settings.read_timeout)
                .operation_timeout(settings.operation_timeout)
                .build(),
        );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            config = config.credentials_provider(Credentials::new(
                id,
                secret.expose_secret(),
                None,
                None,
                "pinhole-settings",
            ));
        }
        Self {
            client: Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
        }
    }

    /// The SDK client, for operations the trait does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket if it does not exist (for dev stacks and tests).
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(s3(e)),
        }
    }

    /// A presigned GET of `key`, valid for at least `ttl` (at most 7 days,
    /// S3's limit): signed as of the start of the current
    /// [`LINK_BUCKET`](crate::LINK_BUCKET), so that it is the same URL all
    /// through the bucket.
    pub async fn presign(&self, key: &str, ttl: Duration) -> Result<Presigned, BlobError> {
        self.presign_at(key, ttl, chrono::Utc::now().timestamp())
            .await
    }

    /// [`S3Store::presign`] as asked at `now` (unix seconds).
    pub(crate) async fn presign_at(
        &self,
        key: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<Presigned, BlobError> {
        let full = self.full_key(key)?;
        let (start, expires) = link_window(now, ttl);
        let valid =
            Duration::from_secs(u64::try_from(expires - start).unwrap_or(0)).min(PRESIGN_MAX);
        let start_time =
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(start).unwrap_or(0));
        let config = PresigningConfig::builder()
            .start_time(start_time)
            .expires_in(valid)
            .build()
            .map_err(s3)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .presigned(config)
            .await
            .map_err(s3)?;
        Ok(Presigned {
            url: url::Url::parse(request.uri()).map_err(|e| BlobError::S3(e.to_string()))?,
            expires: start + valid.as_secs() as i64,
        })
    }

    fn full_key(&self, key: &str) -> Result<String, BlobError> {
        validate_key(key)?;
        Ok(if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }

    fn strip(&self, full: &str) -> String {
        if self.prefix.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(&self.prefix)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or(full)
                .to_owned()
        }
    }

    async fn multipart(
        &self,
        full: &str,
        first: Bytes,
        body: &mut ByteStream,
    ) -> Result<u64, BlobError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(s3)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BlobError::S3("no upload id in CreateMultipartUpload".into()))?
            .to_owned();
        // Aborts the upload if it fails or is abandoned half-way, so that no
        // orphan parts stay billed.
        let mut guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full.to_owned(),
            upload_id: Some(upload_id.clone()),
        };
        let uploaded = async {
            let mut parts = Vec::new();
            let mut size = 0u64;
            let mut next = Some(first);
            while let Some(part) = next.take() {
                size += part.len() as u64;
                let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
                let done = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(S3Body::from(part))
                    .send()
                    .await
                    .map_err(s3)?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(done.e_tag().map(str::to_owned))
                        .build(),
                );
                next = fill(body).await?;
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(s3)?;
            Ok::<_, BlobError>(size)
        }
        .await?;
        guard.upload_id = None;
        Ok(uploaded)
    }
}

struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    /// `None` once the upload completed.
    upload_id: Option<String>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id);
        runtime.spawn(async move {
            if let Err(e) = request.send().await {
                tracing::warn!(error = %e, "aborting a multipart upload failed");
            }
        });
    }
}

/// Reads up to one part from `body`; `None` at the end of the stream.
async fn fill(body: &mut ByteStream) -> Result<Option<Bytes>, BlobError> {
    let mut buffer = BytesMut::new();
    while buffer.len() < PART_SIZE {
        match body.try_next().await? {
            Some(chunk) => buffer.extend_from_slice(&chunk),
            None => break,
        }
    }
    Ok((!buffer.is_empty()).then(|| buffer.freeze()))
}

#[async_trait]
impl BlobStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &str, mut body: ByteStream) -> Result<BlobMeta, BlobError> {
        let full = self.full_key(key)?;
        let first = fill(&mut body).await?.unwrap_or_default();
        let size = if first.len() < PART_SIZE {
            let size = first.len() as u64;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .body(S3Body::from(first))
                .send()
                .await
                .map_err(s3)?;
            size
        } else {
            self.multipart(&full, first, &mut body).await?
        };
        Ok(BlobMeta {
            key: key.to_owned(),
            size,
            modified: Some(std::time::SystemTime::now()),
        })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobBody, BlobError> {
        let full = self.full_key(key)?;
        let meta = self
            .head(key)
            .await?
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))?;
        let span = match range {
            Some(range) => range.resolve(meta.size)?,
            None => (0, meta.size),
        };
        let mut request = self.client.get_object().bucket(&self.bucket).key(&full);
        if span != (0, meta.size) {
            request = request.range(format!("bytes={}-{}", span.0, span.0 + span.1 - 1));
        }
        let output = request.send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                BlobError::NotFound(key.to_owned())
            } else {
                s3(e)
            }
        })?;
        let stream = futures::stream::try_unfold(output.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(std::io::Error::other(e)),
            }
        });
        Ok(BlobBody {
            meta,
            span,
            stream: Box::pin(stream),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        let full = self.full_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(head) => Ok(Some(BlobMeta {
                key: key.to_owned(),
                size: u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
                modified: head.last_modified().and_then(system_time),
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(s3(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let full = self.full_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(s3)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_owned()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(full_prefix)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            for object in page.map_err(s3)?.contents() {
                if let Some(key) = object.key() {
                    found.push(BlobMeta {
                        key: self.strip(key),
                        size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                        modified: object.last_modified().and_then(system_time),
                    });
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<url::Url, BlobError> {
        Ok(self.presign(key, ttl).await?.url)
    }

    async fn check(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(s3)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> S3Store {
        let mut settings = S3Settings::new("links");
        settings.endpoint = Some("http://127.0.0.1:9000".into());
        settings.path_style = true;
        settings.access_key_id = Some("test".into());
        settings.secret_access_key = Some("test".to_owned().into());
        S3Store::new(&settings)
    }

    fn query(url: &url::Url, name: &str) -> String {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    /// Presigning is local (no request is made): no server needed.
    #[tokio::test]
    async fn presigned_urls_are_stable_within_a_bucket_and_valid_for_the_ttl() {
        let store = store();
        let ttl = Duration::from_secs(24 * 3600);
        let bucket = crate::LINK_BUCKET.as_secs() as i64;
        let start = 1_800_000_000 - 1_800_000_000 % bucket;
        for (a, b) in [(start, start + 1), (start + bucket - 2, start + bucket - 1)] {
            let first = store.presign_at("d/x.webp", ttl, a).await.expect("presign");
            let second = store.presign_at("d/x.webp", ttl, b).await.expect("presign");
            assert_eq!(first, second, "{a} {b}");
            assert!(second.expires - b >= ttl.as_secs() as i64);
            // What S3 will check: signed at the bucket's start, for long enough.
            assert_eq!(query(&second.url, "X-Amz-Date"), "20270115T080000Z");
            let valid: i64 = query(&second.url, "X-Amz-Expires")
                .parse()
                .expect("expires");
            assert_eq!(start + valid, second.expires);
        }
        let next = store
            .presign_at("d/x.webp", ttl, start + bucket)
            .await
            .expect("presign");
        assert_ne!(
            next.url,
            store
                .presign_at("d/x.webp", ttl, start)
                .await
                .expect("presign")
                .url
        );
        // Never past S3's seven days, however long the ttl asked.
        let long = store
            .presign_at("d/x.webp", Duration::from_secs(30 * 86400), start + 5)
            .await
            .expect("presign");
        assert_eq!(long.expires, start + 7 * 86400);
    }
}
