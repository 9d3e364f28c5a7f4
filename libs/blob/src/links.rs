//! An S3 store behind the server's own links (`PINHOLE_BLOB_LINKS=proxy`
//! or `redirect`): clients are handed the server's signed `/blobs/` links,
//! which the server answers with the bytes streamed from S3 (for a cache in
//! front of it to keep) or with a redirect to a presigned S3 URL.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    BlobBody, BlobError, BlobMeta, BlobStore, ByteRange, ByteStream, Presigned, S3Store, UrlSigner,
    validate_key,
};

pub struct ServerLinks {
    store: S3Store,
    signer: UrlSigner,
    redirect: bool,
}

impl ServerLinks {
    /// Links to the server, which serves the bytes.
    pub fn proxy(store: S3Store, signer: UrlSigner) -> Self {
        Self {
            store,
            signer,
            redirect: false,
        }
    }

    /// Links to the server, which redirects to presigned S3 URLs.
    pub fn redirect(store: S3Store, signer: UrlSigner) -> Self {
        Self {
            store,
            signer,
            redirect: true,
        }
    }
}

#[async_trait]
impl BlobStore for ServerLinks {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }

    async fn put(&self, key: &str, body: ByteStream) -> Result<BlobMeta, BlobError> {
        self.store.put(key, body).await
    }

    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<BlobMeta, BlobError> {
        self.store.put_file(key, path).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobBody, BlobError> {
        self.store.get(key, range).await
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        self.store.head(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.store.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        self.store.list(prefix).await
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<url::Url, BlobError> {
        validate_key(key)?;
        Ok(self.signer.link(key, ttl, chrono::Utc::now().timestamp()))
    }

    async fn redirect_get(&self, key: &str, ttl: Duration) -> Result<Option<Presigned>, BlobError> {
        if !self.redirect {
            return Ok(None);
        }
        Ok(Some(self.store.presign(key, ttl).await?))
    }

    async fn check(&self) -> Result<(), BlobError> {
        self.store.check().await
    }
}
