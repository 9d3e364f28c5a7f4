//! The embedded durable log: Kafka's promises on a SQLite file.
//!
//! - `partitions` holds each topic's partitions and the next offset of each;
//! - `records` holds the records by topic, partition and offset;
//! - `group_members` holds live consumers with their last heartbeat; the
//!   partitions of a topic are dealt round-robin over the live members that
//!   subscribe to it, in member-id order, so every member computes the same
//!   assignment without a coordinator;
//! - `group_offsets` holds each group's committed position per partition.
//!
//! A consumer that stops without committing leaves its records uncommitted;
//! whoever takes over its partitions starts from the committed offsets and so
//! sees them again. Several processes may share one file.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, Row, SqlitePool};
use tokio::sync::Notify;

use crate::{
    BusError, EventBus, Message, Position, Record, Subscription, TopicSpec, partition_for,
};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS partitions (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (topic, partition)
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS records (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        \"offset\" INTEGER NOT NULL,
        key BLOB,
        payload BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (topic, partition, \"offset\")
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS records_by_age ON records (created_ms)",
    "CREATE TABLE IF NOT EXISTS group_members (
        grp TEXT NOT NULL,
        member TEXT NOT NULL,
        topics TEXT NOT NULL,
        heartbeat_ms INTEGER NOT NULL,
        PRIMARY KEY (grp, member)
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS group_offsets (
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (grp, topic, partition)
    ) WITHOUT ROWID",
];

/// Records fetched per partition per round trip.
const FETCH_BATCH: i64 = 256;
/// Publishes between two retention sweeps.
const SWEEP_EVERY: u64 = 1024;

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// A member that has not been heard from for this long is dropped from
    /// its group and its partitions go to the others.
    pub session_timeout: Duration,
    /// How often an idle consumer looks for records written by another
    /// process (writes from this process wake it at once).
    pub poll_interval: Duration,
    /// Records older than this are deleted.
    pub retention: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A durable, partitioned event log in one SQLite file.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    written: Notify,
    options: EmbeddedOptions,
    publishes: AtomicU64,
}

fn storage(e: sqlx::Error) -> BusError {
    BusError::Storage(e.to_string())
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log at `path`.
    pub async fn open(path: &Path, options: EmbeddedOptions) -> Result<Self, BusError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| BusError::Storage(format!("{}: {e}", dir.display())))?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durable across process crashes and restarts; an OS crash may
            // lose the last moments, as with a Kafka broker's page cache.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await
            .map_err(|e| BusError::Storage(format!("{}: {e}", path.display())))?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(storage)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                written: Notify::new(),
                options,
                publishes: AtomicU64::new(0),
            }),
        })
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, BusError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM partitions WHERE topic = ?")
            .bind(topic)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(storage)?;
        match u32::try_from(count) {
            Ok(0) | Err(_) => Err(BusError::UnknownTopic(topic.to_owned())),
            Ok(n) => Ok(n),
        }
    }

    async fn sweep(&self) -> Result<(), BusError> {
        let cutoff = now_ms().saturating_sub(millis(self.inner.options.retention));
        sqlx::query("DELETE FROM records WHERE created_ms < ?")
            .bind(cutoff)
            .execute(&self.inner.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }
}

#[async_trait]
impl EventBus for EmbeddedLog {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<(), BusError> {
        let mut tx = self.inner.pool.begin().await.map_err(storage)?;
        for topic in topics {
            let existing: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM partitions WHERE topic = ?")
                    .bind(topic.name)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(storage)?;
            if existing > 0 {
                continue;
            }
            for partition in 0..topic.partitions.max(1) {
                sqlx::query("INSERT INTO partitions (topic, partition) VALUES (?, ?)")
                    .bind(topic.name)
                    .bind(i64::from(partition))
                    .execute(&mut *tx)
                    .await
                    .map_err(storage)?;
            }
        }
        tx.commit().await.map_err(storage)
    }

    async fn publish(&self, messages: &[Message<'_>]) -> Result<Vec<Position>, BusError> {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for message in messages {
            if !counts.contains_key(message.topic) {
                counts.insert(message.topic, self.partition_count(message.topic).await?);
            }
        }
        let created = now_ms();
        let mut positions = Vec::with_capacity(messages.len());
        let mut tx = self.inner.pool.begin().await.map_err(storage)?;
        for message in messages {
            let partition = partition_for(message.key, counts[message.topic]);
            let offset: i64 = sqlx::query_scalar(
                "UPDATE partitions SET next_offset = next_offset + 1
                 WHERE topic = ? AND partition = ? RETURNING next_offset - 1",
            )
            .bind(message.topic)
            .bind(partition)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
            sqlx::query(
                "INSERT INTO records (topic, partition, \"offset\", key, payload, created_ms)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(message.topic)
            .bind(partition)
            .bind(offset)
            .bind(message.key)
            .bind(message.payload)
            .bind(created)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            positions.push(Position { partition, offset });
        }
        tx.commit().await.map_err(storage)?;
        self.inner.written.notify_waiters();
        if self.inner.publishes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep().await?;
        }
        Ok(positions)
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, BusError> {
        for topic in topics {
            self.partition_count(topic).await?;
        }
        let mut subscription = EmbeddedSubscription {
            log: self.clone(),
            group: group.to_owned(),
            member: uuid::Uuid::now_v7().to_string(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            assigned: BTreeSet::new(),
            positions: HashMap::new(),
            buffer: VecDeque::new(),
            last_heartbeat: None,
        };
        subscription.heartbeat().await?;
        Ok(Box::new(subscription))
    }

    async fn check(&self) -> Result<(), BusError> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }
}

type TopicPartition = (String, i32);

struct EmbeddedSubscription {
    log: EmbeddedLog,
    group: String,
    member: String,
    topics: Vec<String>,
    assigned: BTreeSet<TopicPartition>,
    /// Next offset to read, per assigned partition.
    positions: HashMap<TopicPartition, i64>,
    buffer: VecDeque<Record>,
    last_heartbeat: Option<Instant>,
}

impl EmbeddedSubscription {
    fn pool(&self) -> &SqlitePool {
        &self.log.inner.pool
    }

    fn heartbeat_interval(&self) -> Duration {
        (self.log.inner.options.session_timeout / 4).min(Duration::from_secs(1))
    }

    /// Renews this member, expires silent ones, and takes up the partitions
    /// the current membership deals to it.
    async fn heartbeat(&mut self) -> Result<(), BusError> {
        let now = now_ms();
        let session = millis(self.log.inner.options.session_timeout);
        let topics = self.topics.join("\n");
        sqlx::query(
            "INSERT INTO group_members (grp, member, topics, heartbeat_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (grp, member) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
        )
        .bind(&self.group)
        .bind(&self.member)
        .bind(&topics)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(storage)?;
        sqlx::query("DELETE FROM group_members WHERE grp = ? AND heartbeat_ms < ?")
            .bind(&self.group)
            .bind(now.saturating_sub(session))
            .execute(self.pool())
            .await
            .map_err(storage)?;
        let members =
            sqlx::query("SELECT member, topics FROM group_members WHERE grp = ? ORDER BY member")
                .bind(&self.group)
                .fetch_all(self.pool())
                .await
                .map_err(storage)?;

        let mut assigned = BTreeSet::new();
        for topic in &self.topics {
            let sharing: Vec<String> = members
                .iter()
                .filter(|row| {
                    row.get::<String, _>("topics")
                        .split('\n')
                        .any(|t| t == topic)
                })
                .map(|row| row.get::<String, _>("member"))
                .collect();
            let Some(me) = sharing.iter().position(|m| *m == self.member) else {
                continue;
            };
            let partitions = self.log.partition_count(topic).await?;
            for partition in 0..partitions {
                if usize::try_from(partition).unwrap_or(0) % sharing.len() == me {
                    assigned.insert((topic.clone(), i32::try_from(partition).unwrap_or(0)));
                }
            }
        }
        if assigned != self.assigned {
            self.reassign(assigned).await?;
        }
        self.last_heartbeat = Some(Instant::now());
        Ok(())
    }

    async fn reassign(&mut self, assigned: BTreeSet<TopicPartition>) -> Result<(), BusError> {
        self.buffer
            .retain(|r| assigned.contains(&(r.topic.clone(), r.partition)));
        self.positions.retain(|tp, _| assigned.contains(tp));
        for tp in &assigned {
            if self.positions.contains_key(tp) {
                continue;
            }
            let committed: Option<i64> = sqlx::query_scalar(
                "SELECT next_offset FROM group_offsets WHERE grp = ? AND topic = ? AND partition = ?",
            )
            .bind(&self.group)
            .bind(&tp.0)
            .bind(tp.1)
            .fetch_optional(self.pool())
            .await
            .map_err(storage)?;
            self.positions.insert(tp.clone(), committed.unwrap_or(0));
        }
        tracing::debug!(group = %self.group, member = %self.member, partitions = assigned.len(), "embedded log assignment");
        self.assigned = assigned;
        Ok(())
    }

    async fn fetch(&mut self) -> Result<(), BusError> {
        for tp in &self.assigned {
            let position = self.positions.get(tp).copied().unwrap_or(0);
            let rows = sqlx::query(
                "SELECT \"offset\", key, payload FROM records
                 WHERE topic = ? AND partition = ? AND \"offset\" >= ?
                 ORDER BY \"offset\" LIMIT ?",
            )
            .bind(&tp.0)
            .bind(tp.1)
            .bind(position)
            .bind(FETCH_BATCH)
            .fetch_all(self.pool())
            .await
            .map_err(storage)?;
            for row in rows {
                let offset: i64 = row.get("offset");
                self.positions.insert(tp.clone(), offset + 1);
                self.buffer.push_back(Record {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    offset,
                    key: row.get("key"),
                    payload: row.get("payload"),
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .last_heartbeat
                .is_none_or(|t| t.elapsed() >= self.heartbeat_interval())
            {
                self.heartbeat().await?;
            }
            if let Some(record) = self.buffer.pop_front() {
                return Ok(Some(record));
            }
            let log = self.log.clone();
            let written = log.inner.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            self.fetch().await?;
            if !self.buffer.is_empty() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = (deadline - now)
                .min(self.log.inner.options.poll_interval)
                .min(self.heartbeat_interval());
            let _ = tokio::time::timeout(nap, written).await;
        }
    }

    async fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        sqlx::query(
            "INSERT INTO group_offsets (grp, topic, partition, next_offset) VALUES (?, ?, ?, ?)
             ON CONFLICT (grp, topic, partition)
             DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
        )
        .bind(&self.group)
        .bind(&record.topic)
        .bind(record.partition)
        .bind(record.offset + 1)
        .execute(self.pool())
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        sqlx::query("DELETE FROM group_members WHERE grp = ? AND member = ?")
            .bind(&self.group)
            .bind(&self.member)
            .execute(self.pool())
            .await
            .map_err(storage)?;
        Ok(())
    }
}
