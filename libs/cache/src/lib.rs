//! The cache: short-lived values by key, in process ([`MemoryCache`]) or in
//! Redis ([`RedisCache`]). A cache may forget anything at any time; callers
//! always have a way to rebuild a value.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use redis::AsyncCommands;

mod window;

pub use window::{Hits, SlidingWindow};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// `memory` or `redis`.
    fn kind(&self) -> &'static str;
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError>;
    /// The values at `keys`, in their order; in one round trip where the
    /// cache can.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, CacheError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
    /// Stores `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// Adds `delta` to the counter at `key` and returns the new value. A new
    /// counter starts at 0 and lives for `ttl`; later changes keep its
    /// expiry. Atomic across every user of the cache.
    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, CacheError>;

    /// Adds one to the counter at `key`; see [`Cache::add`].
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        Ok(u64::try_from(self.add(key, 1, ttl).await?).unwrap_or(0))
    }
    /// Whether the cache answers.
    async fn check(&self) -> Result<(), CacheError>;
    /// Bytes of keys and values an in-process cache holds (what its bound
    /// counts); `None` for a cache elsewhere.
    fn held_bytes(&self) -> Option<u64> {
        None
    }
}

/// A shared handle to whichever cache is configured.
pub type SharedCache = Arc<dyn Cache>;

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
    /// An update that keeps the expiry the entry already has (counters).
    keeps_expiry: bool,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        if entry.keeps_expiry {
            remaining
        } else {
            Some(entry.ttl)
        }
    }
}

/// The value of a counter made by [`Cache::add`], as [`Cache::get`] returns
/// it (decimal text, as Redis keeps it); 0 for anything else or below zero.
pub fn counter(bytes: &[u8]) -> u64 {
    u64::try_from(signed_counter(bytes)).unwrap_or(0)
}

fn signed_counter(bytes: &[u8]) -> i64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An in-process cache bounded by the total size of its values.
pub struct MemoryCache {
    entries: moka::future::Cache<String, Entry>,
}

impl MemoryCache {
    pub fn new(max_bytes: u64) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(key.len() + entry.value.len()).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        Self { entries }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        Ok(self.entries.get(key).await.map(|e| e.value))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        self.entries
            .insert(
                key.to_owned(),
                Entry {
                    value,
                    ttl,
                    keeps_expiry: false,
                },
            )
            .await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries.invalidate(key).await;
        Ok(())
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, CacheError> {
        // Counters are decimal text, as in Redis; the upsert is atomic per key.
        let entry = self
            .entries
            .entry(key.to_owned())
            .and_upsert_with(|existing| {
                let count = existing.map_or(0, |e| signed_counter(&e.value().value)) + delta;
                std::future::ready(Entry {
                    value: Bytes::from(count.to_string()),
                    ttl,
                    keeps_expiry: true,
                })
            })
            .await;
        Ok(signed_counter(&entry.value().value))
    }

    async fn check(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn held_bytes(&self) -> Option<u64> {
        Some(self.entries.weighted_size())
    }
}

/// Redis, with every key under a prefix so that several deployments (or
/// tests) can share one server.
pub struct RedisCache {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisCache {
    /// Connects to `url`; fails when the server does not answer.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, CacheError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2);
        let connection = client.get_connection_manager_with_config(config).await?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        let mut connection = self.connection.clone();
        let value: Option<Vec<u8>> = connection.get(self.key(key)).await?;
        Ok(value.map(Bytes::from))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection.clone();
        let mut mget = redis::cmd("MGET");
        for key in keys {
            mget.arg(self.key(key));
        }
        let values: Vec<Option<Vec<u8>>> = mget.query_async(&mut connection).await?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: () = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value.as_ref())
            .arg("PX")
            .arg(millis)
            .query_async(&mut connection)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let _: i64 = connection.del(self.key(key)).await?;
        Ok(())
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, CacheError> {
        let mut connection = self.connection.clone();
        let key = self.key(key);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let (count, _): (i64, i64) = redis::pipe()
            .atomic()
            .cmd("INCRBY")
            .arg(&key)
            .arg(delta)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis)
            .arg("NX")
            .query_async(&mut connection)
            .await?;
        Ok(count)
    }

    async fn check(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(())
    }
}
