//! Blobs as files under a directory. Writes go to a temporary file that is
//! renamed into place, so readers never see half a blob.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::{
    BlobBody, BlobError, BlobMeta, BlobStore, ByteRange, ByteStream, UrlSigner, validate_key,
};

const TMP_DIR: &str = ".tmp";

pub struct LocalStore {
    root: PathBuf,
    signer: UrlSigner,
}

impl LocalStore {
    /// A store under `root` (created if missing). Presigned URLs point at the
    /// server's `/blobs/` route through `signer`.
    pub async fn open(root: impl Into<PathBuf>, signer: UrlSigner) -> Result<Self, BlobError> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join(TMP_DIR)).await?;
        Ok(Self { root, signer })
    }

    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        if key == TMP_DIR || key.starts_with(".tmp/") {
            return Err(BlobError::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    /// A fresh name in the temporary directory, removed unless renamed.
    fn temp_file(&self) -> TempFile {
        TempFile(
            self.root
                .join(TMP_DIR)
                .join(uuid::Uuid::new_v4().to_string()),
        )
    }
}

/// What a blob just written into place is.
fn written_now(key: &str, size: u64) -> BlobMeta {
    BlobMeta {
        key: key.to_owned(),
        size,
        modified: Some(std::time::SystemTime::now()),
    }
}

/// A file being written: removed if the write fails or is abandoned (the
/// request was cancelled). After the rename there is nothing left to remove.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.0.display(), error = %e, "temporary blob left behind")
            }
        }
    }
}

fn not_found(key: &str, e: io::Error) -> BlobError {
    if e.kind() == io::ErrorKind::NotFound {
        BlobError::NotFound(key.to_owned())
    } else {
        BlobError::Io(e)
    }
}

#[async_trait]
impl BlobStore for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn put(&self, key: &str, mut body: ByteStream) -> Result<BlobMeta, BlobError> {
        let path = self.path(key)?;
        let tmp = self.temp_file();
        let written = async {
            let mut file = tokio::fs::File::create(&tmp.0).await?;
            let mut size = 0u64;
            while let Some(chunk) = body.try_next().await? {
                size += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::rename(&tmp.0, &path).await?;
            Ok::<_, io::Error>(size)
        }
        .await?;
        Ok(written_now(key, written))
    }

    async fn put_file(&self, key: &str, source: &Path) -> Result<BlobMeta, BlobError> {
        let path = self.path(key)?;
        let tmp = self.temp_file();
        let source = source.to_owned();
        let size = tokio::task::spawn_blocking(move || {
            // A second name for the same file: nothing is copied. Another
            // file system (or one without links) gets a copy.
            if std::fs::hard_link(&source, &tmp.0).is_err() {
                std::fs::copy(&source, &tmp.0)?;
            }
            let file = std::fs::File::open(&tmp.0)?;
            file.sync_all()?;
            let size = file.metadata()?.len();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(&tmp.0, &path)?;
            Ok::<_, io::Error>(size)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(written_now(key, size))
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobBody, BlobError> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| not_found(key, e))?;
        let stat = file.metadata().await?;
        let size = stat.len();
        let span = match range {
            Some(range) => range.resolve(size)?,
            None => (0, size),
        };
        if span.0 > 0 {
            file.seek(SeekFrom::Start(span.0)).await?;
        }
        Ok(BlobBody {
            meta: BlobMeta {
                key: key.to_owned(),
                size,
                modified: stat.modified().ok(),
            },
            span,
            stream: Box::pin(ReaderStream::with_capacity(file.take(span.1), 64 * 1024)),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(BlobMeta {
                key: key.to_owned(),
                size: m.len(),
                modified: m.modified().ok(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            walk(&root, &root, &prefix, &mut found)?;
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
        .map_err(|e| BlobError::Io(io::Error::other(e)))?
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<url::Url, BlobError> {
        validate_key(key)?;
        Ok(self.signer.link(key, ttl, chrono::Utc::now().timestamp()))
    }

    async fn check(&self) -> Result<(), BlobError> {
        let probe = self.root.join(TMP_DIR).join(".probe");
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await?;
        Ok(())
    }
}

fn walk(root: &Path, dir: &Path, prefix: &str, found: &mut Vec<BlobMeta>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        let key = relative.to_string_lossy().replace('\\', "/");
        if key == TMP_DIR {
            continue;
        }
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            // Only descend where keys below could still match the prefix.
            let dir_key = format!("{key}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(root, &path, prefix, found)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            let stat = entry.metadata()?;
            found.push(BlobMeta {
                key,
                size: stat.len(),
                modified: stat.modified().ok(),
            });
        }
    }
    Ok(())
}
