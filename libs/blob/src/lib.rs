//! The blob store: originals, derivatives and warehouse files, streamed in
//! and out, on local disk ([`LocalStore`]) or S3 ([`S3Store`]), optionally
//! behind the server's own links ([`ServerLinks`]).

mod check;
mod links;
mod local;
mod presign;
mod s3;

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use check::CheckReport;
pub use links::ServerLinks;
pub use local::LocalStore;
pub use presign::{LINK_BUCKET, PresignError, UrlSigner, link_window};
pub use s3::S3Store;

/// The size of the pieces a file is read in when streamed to a store.
const FILE_CHUNK: usize = 256 * 1024;

/// A stream of body chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A shared handle to whichever blob store is configured.
pub type SharedBlobs = Arc<dyn BlobStore>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob at `{0}`")]
    NotFound(String),
    #[error(
        "invalid blob key `{0}`: use 1-1024 characters of [A-Za-z0-9/._=-], no `..`, no leading `/`"
    )]
    InvalidKey(String),
    #[error("range {start}..{end:?} is outside the blob of {size} bytes")]
    InvalidRange {
        start: u64,
        end: Option<u64>,
        size: u64,
    },
    #[error("blob storage i/o: {0}")]
    Io(#[from] io::Error),
    #[error("s3: {0}")]
    S3(String),
}

/// What a stored blob is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    /// When the blob was last written, where the store says
    /// (`list` and `head` do; a fresh `put` answers now).
    pub modified: Option<std::time::SystemTime>,
}

/// Bytes `start..end` (`end` exclusive; `None` means to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl ByteRange {
    /// Resolves the range against a blob of `size` bytes: `(start, len)`.
    pub fn resolve(self, size: u64) -> Result<(u64, u64), BlobError> {
        let end = self.end.unwrap_or(size).min(size);
        if self.start >= size || end <= self.start {
            return Err(BlobError::InvalidRange {
                start: self.start,
                end: self.end,
                size,
            });
        }
        Ok((self.start, end - self.start))
    }
}

/// A URL a blob can be fetched from without credentials, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: url::Url,
    /// Unix seconds after which the URL is refused.
    pub expires: i64,
}

/// A blob being read: its full metadata and the requested bytes.
pub struct BlobBody {
    pub meta: BlobMeta,
    /// The bytes served, `(start, len)`; the whole blob when no range was asked.
    pub span: (u64, u64),
    pub stream: ByteStream,
}

impl BlobBody {
    /// Reads the whole body into memory. For small blobs and tests.
    pub async fn bytes(self) -> Result<Bytes, BlobError> {
        use futures::TryStreamExt;
        let chunks: Vec<Bytes> = self.stream.try_collect().await?;
        Ok(Bytes::from(chunks.concat()))
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// `local` or `s3`.
    fn kind(&self) -> &'static str;

    /// Stores `body` under `key`, replacing what was there. Readers never see
    /// a partly written blob.
    async fn put(&self, key: &str, body: ByteStream) -> Result<BlobMeta, BlobError>;

    /// Stores the file at `path` (which the caller keeps, and must not
    /// change meanwhile) under `key`. The local store links the file into
    /// place instead of copying it when both are on one file system; other
    /// stores stream it.
    async fn put_file(&self, key: &str, path: &Path) -> Result<BlobMeta, BlobError> {
        let file = tokio::fs::File::open(path).await?;
        self.put(
            key,
            Box::pin(tokio_util::io::ReaderStream::with_capacity(
                file, FILE_CHUNK,
            )),
        )
        .await
    }

    /// Reads `key`, or the `range` of it.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobBody, BlobError>;

    /// Metadata of `key`, `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError>;

    /// Removes `key`; removing an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Every blob whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError>;

    /// A URL anyone can GET `key` from until at least `ttl` has passed: the
    /// link handed to clients. Links are made per [`LINK_BUCKET`], so every
    /// link to one key asked within a bucket is the same URL.
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<url::Url, BlobError>;

    /// Where the server's `/blobs/{key}` sends clients instead of serving
    /// the bytes itself (`PINHOLE_BLOB_LINKS=redirect`): a URL of the
    /// store's own, valid for at least `ttl`, the same all through a
    /// [`LINK_BUCKET`]. `None`, the default: the server serves the bytes.
    async fn redirect_get(&self, key: &str, ttl: Duration) -> Result<Option<Presigned>, BlobError> {
        let _ = (key, ttl);
        Ok(None)
    }

    /// Whether the store answers.
    async fn check(&self) -> Result<(), BlobError>;
}

/// Whether `key` is stored.
pub async fn exists(store: &dyn BlobStore, key: &str) -> Result<bool, BlobError> {
    Ok(store.head(key).await?.is_some())
}

/// Stores `bytes` under `key`.
pub async fn put_bytes(
    store: &dyn BlobStore,
    key: &str,
    bytes: impl Into<Bytes>,
) -> Result<BlobMeta, BlobError> {
    let bytes = bytes.into();
    store
        .put(
            key,
            Box::pin(futures::stream::once(async move { Ok(bytes) })),
        )
        .await
}

/// Checks a key: 1-1024 characters of `[A-Za-z0-9/._=-]`, no empty, `.` or
/// `..` segment, no leading or trailing `/`.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let charset_ok = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'=' | b'-'));
    let segments_ok = key
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..");
    if key.is_empty() || key.len() > 1024 || !charset_ok || !segments_ok {
        return Err(BlobError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for good in [
            "a",
            "originals/ab/cd.jpg",
            "warehouse/date=2026-11-21/x.parquet",
        ] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "../x", "a/./b", "a b", "a?b"] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        let r = ByteRange {
            start: 2,
            end: Some(5),
        };
        assert_eq!(r.resolve(10).expect("in range"), (2, 3));
        let open = ByteRange {
            start: 7,
            end: None,
        };
        assert_eq!(open.resolve(10).expect("in range"), (7, 3));
        assert!(
            ByteRange {
                start: 10,
                end: None
            }
            .resolve(10)
            .is_err()
        );
    }
}
