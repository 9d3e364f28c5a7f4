//! Opening each backend the settings name, with one-line errors that say
//! which backend and where (credentials masked).

use std::net::SocketAddr;
use std::sync::Arc;

use pinhole_blob::{BlobStore, LocalStore, S3Store, ServerLinks, UrlSigner};
use pinhole_bus::{EmbeddedLog, EmbeddedOptions, EventBus, KafkaBus, KafkaOptions};
use pinhole_cache::{Cache, MemoryCache, RedisCache};
use pinhole_config::{BlobLinks, BlobUrl, BusUrl, CacheUrl, Settings};
use pinhole_http::Backends;
use secrecy::SecretString;

/// In-process cache size.
const MEMORY_CACHE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{backend} at {url} is unreachable: {reason}")]
    Backend {
        backend: &'static str,
        url: String,
        reason: String,
    },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("signing key {0}: {1}")]
    SigningKey(String, std::io::Error),
    #[error("{0}")]
    Settings(String),
}

fn unreachable(backend: &'static str, url: &impl ToString, reason: impl ToString) -> StartError {
    StartError::Backend {
        backend,
        url: url.to_string(),
        reason: first_line(&reason.to_string()),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

/// The key that signs links: from the settings, or kept in the data
/// directory, made on first start (readable by the owner only). Processes
/// starting together on one data directory end up with the same key.
pub async fn signing_key(settings: &Settings) -> Result<SecretString, StartError> {
    use tokio::io::AsyncWriteExt;

    if let Some(key) = &settings.signing_key {
        return Ok(key.clone());
    }
    let path = settings.data_dir.join("signing.key");
    let err = |e| StartError::SigningKey(path.display().to_string(), e);
    tokio::fs::create_dir_all(&settings.data_dir)
        .await
        .map_err(err)?;
    let fresh = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(&path).await {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes()).await.map_err(err)?;
            file.sync_all().await.map_err(err)?;
            return Ok(SecretString::from(fresh));
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    // Another start made it; it may still be writing.
    for _ in 0..50 {
        let key = tokio::fs::read_to_string(&path).await.map_err(err)?;
        if key.trim().len() >= 32 {
            return Ok(SecretString::from(key.trim().to_owned()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "holds no key of 32 characters or more; delete it to make a new one",
    )))
}

/// Opens the four backends and checks that each answers.
pub async fn connect_backends(
    settings: &Settings,
    signer: &UrlSigner,
) -> Result<Backends, StartError> {
    // Settings made in code (tests) skip `Settings::load`'s validation.
    pinhole_config::check_blob_links(&settings.blob, settings.blob_links)
        .map_err(|e| StartError::Settings(e.to_string()))?;
    let db = pinhole_db::connect(&settings.database)
        .await
        .map_err(|e| unreachable("database", &settings.database, e))?;

    let cache: Arc<dyn Cache> = match &settings.cache {
        CacheUrl::Memory => Arc::new(MemoryCache::new(MEMORY_CACHE_BYTES)),
        CacheUrl::Redis(redis) => Arc::new(
            RedisCache::connect(&redis.url, redis.prefix.clone())
                .await
                .map_err(|e| unreachable("cache", &settings.cache, e))?,
        ),
    };

    let bus: Arc<dyn EventBus> = match &settings.bus {
        BusUrl::Embedded(path) => Arc::new(
            EmbeddedLog::open(path, EmbeddedOptions::default())
                .await
                .map_err(|e| unreachable("bus", &settings.bus, e))?,
        ),
        BusUrl::Kafka(kafka) => Arc::new(
            KafkaBus::new(KafkaOptions::new(&kafka.brokers))
                .map_err(|e| unreachable("bus", &settings.bus, e))?,
        ),
    };
    let bus: Arc<dyn EventBus> = if settings.bus_namespace.is_empty() {
        bus
    } else {
        Arc::new(pinhole_bus::Namespaced::new(bus, &settings.bus_namespace))
    };
    bus.check()
        .await
        .map_err(|e| unreachable("bus", &settings.bus, e))?;

    // Links to blobs (PINHOLE_BLOB_LINKS), the same whatever the role: the
    // local store's are the server's own either way; S3's are presigned
    // S3 URLs, or the server's own, which it answers with the bytes or a
    // redirect.
    let blobs: Arc<dyn BlobStore> = match (&settings.blob, settings.blob_links) {
        (BlobUrl::Local(dir), _) => Arc::new(
            LocalStore::open(dir, signer.clone())
                .await
                .map_err(|e| unreachable("blobs", &settings.blob, e))?,
        ),
        (BlobUrl::S3(s3), BlobLinks::Direct) => Arc::new(S3Store::new(s3)),
        (BlobUrl::S3(s3), BlobLinks::Proxy) => {
            Arc::new(ServerLinks::proxy(S3Store::new(s3), signer.clone()))
        }
        (BlobUrl::S3(s3), BlobLinks::Redirect) => {
            Arc::new(ServerLinks::redirect(S3Store::new(s3), signer.clone()))
        }
    };
    blobs
        .check()
        .await
        .map_err(|e| unreachable("blobs", &settings.blob, e))?;

    Ok(Backends {
        db,
        cache,
        bus,
        blobs,
    })
}
