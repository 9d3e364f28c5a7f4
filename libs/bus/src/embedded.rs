//! The embedded durable log: Kafka's promises on a SQLite file.
//!
//! - `partitions` holds each topic's partitions and the next offset of each;
//! - `records` holds the records by topic, partition and offset;
//! - `group_members` holds live consumers with their last heartbeat; the
//!   partitions of a topic are dealt round-robin over the live members that
//!   subscribe to it, in member-id order, so every member computes the same
//!   assignment without a coordinator;
//! - `partition_owners` holds, per group, which member reads each partition
//!   and until when its lease runs. A member takes a partition only once the
//!   previous owner has released it or its lease has run out, so no two
//!   members ever read one partition at the same time, and a member that
//!   lost a partition can no longer commit in it;
//! - `group_offsets` holds each group's committed position per partition.
//!
//! Each consumer renews its membership and leases from a background task, as
//! Kafka clients heartbeat from a thread, for as long as it keeps polling
//! (`max_poll_interval`). A consumer that stops without committing leaves its
//! records uncommitted; whoever takes over its partitions starts from the
//! committed offsets and so sees them again. Several processes may share one
//! file.
//!
//! A reader from [`EventBus::assign`] is no member: it reads every partition
//! from offsets of its own, and its commits only set `group_offsets` (for
//! monitoring) without asking who owns the partition.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, Row, SqlitePool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{
    BusError, EventBus, Message, Offsets, Position, Record, Subscription, TopicSpec, partition_for,
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
    "CREATE TABLE IF NOT EXISTS partition_owners (
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        member TEXT NOT NULL,
        lease_ms INTEGER NOT NULL,
        PRIMARY KEY (grp, topic, partition)
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
/// Records per insert statement at most (six parameters each, well under
/// SQLite's limit on parameters).
const INSERT_ROWS: usize = 64;

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// A member not heard from for this long is dropped from its group, and
    /// its partition leases run out.
    pub session_timeout: Duration,
    /// A consumer that has not asked for a record for this long stops
    /// renewing its membership, so that its partitions go to the others.
    pub max_poll_interval: Duration,
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
            max_poll_interval: Duration::from_secs(300),
            poll_interval: Duration::from_millis(200),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl EmbeddedOptions {
    fn heartbeat_interval(&self) -> Duration {
        (self.session_timeout / 4).min(Duration::from_secs(1))
    }
}

/// A durable, partitioned event log in one SQLite file.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    /// Per topic, the wake-ups of this process's consumers reading it: a
    /// write wakes only the consumers of its topics.
    listeners: std::sync::Mutex<HashMap<String, Vec<Weak<Notify>>>>,
    options: EmbeddedOptions,
    publishes: AtomicU64,
    /// Partitions per topic, once known (a topic's partitions are made
    /// once, with the topic, and never change).
    partitions: std::sync::Mutex<HashMap<String, u32>>,
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
                listeners: std::sync::Mutex::default(),
                options,
                publishes: AtomicU64::new(0),
                partitions: std::sync::Mutex::default(),
            }),
        })
    }

    /// A wake-up for a consumer of `topics`, notified by every write to
    /// one of them from this process (a write while the consumer is busy
    /// is kept as a permit, so none is missed).
    fn listen(&self, topics: &[String]) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for topic in topics {
            let list = listeners.entry(topic.clone()).or_default();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&wake));
        }
        wake
    }

    /// Wakes the consumers of the topics of `messages`.
    fn wake(&self, messages: &[Message<'_>]) {
        let listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut topics: Vec<&str> = messages.iter().map(|m| m.topic).collect();
        topics.sort_unstable();
        topics.dedup();
        for topic in topics {
            for wake in listeners.get(topic).into_iter().flatten() {
                if let Some(wake) = wake.upgrade() {
                    wake.notify_one();
                }
            }
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, BusError> {
        if let Some(&n) = self
            .inner
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)
        {
            return Ok(n);
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM partitions WHERE topic = ?")
            .bind(topic)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(storage)?;
        match u32::try_from(count) {
            Ok(0) | Err(_) => Err(BusError::UnknownTopic(topic.to_owned())),
            Ok(n) => {
                self.inner
                    .partitions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(topic.to_owned(), n);
                Ok(n)
            }
        }
    }

    /// Deletes records past retention. Failing to is not the publisher's
    /// problem: it is logged and tried again later.
    async fn sweep(&self) {
        let cutoff = now_ms().saturating_sub(millis(self.inner.options.retention));
        if let Err(e) = sqlx::query("DELETE FROM records WHERE created_ms < ?")
            .bind(cutoff)
            .execute(&self.inner.pool)
            .await
        {
            tracing::warn!(error = %e, "embedded log retention sweep failed");
        }
    }

    /// Appends the messages whose topic exists, in one transaction: one
    /// offset reservation per partition written to and one insert per
    /// [`INSERT_ROWS`] records, so a batch costs few statements.
    async fn append(
        &self,
        messages: &[Message<'_>],
        counts: &HashMap<&str, Result<u32, BusError>>,
    ) -> Result<Vec<Option<Position>>, BusError> {
        let created = now_ms();
        // Each message's partition, and the messages of each partition in
        // the order given.
        let mut positions: Vec<Option<Position>> = vec![None; messages.len()];
        let mut by_partition: BTreeMap<(&str, i32), Vec<usize>> = BTreeMap::new();
        for (n, message) in messages.iter().enumerate() {
            if let Some(Ok(partitions)) = counts.get(message.topic) {
                let partition = partition_for(message.key, *partitions);
                by_partition
                    .entry((message.topic, partition))
                    .or_default()
                    .push(n);
            }
        }
        let mut tx = self.inner.pool.begin().await.map_err(storage)?;
        for ((topic, partition), indices) in &by_partition {
            let n = i64::try_from(indices.len()).unwrap_or(i64::MAX);
            let first: i64 = sqlx::query_scalar(
                "UPDATE partitions SET next_offset = next_offset + ?1
                 WHERE topic = ?2 AND partition = ?3 RETURNING next_offset - ?1",
            )
            .bind(n)
            .bind(*topic)
            .bind(*partition)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
            for (offset, &index) in (first..).zip(indices) {
                positions[index] = Some(Position {
                    partition: *partition,
                    offset,
                });
            }
            for chunk in indices.chunks(INSERT_ROWS) {
                let sql = format!(
                    "INSERT INTO records (topic, partition, \"offset\", key, payload, created_ms) VALUES {}",
                    vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
                );
                let mut insert = sqlx::query(&sql);
                for &index in chunk {
                    let message = &messages[index];
                    let offset = positions[index].map_or(0, |p| p.offset);
                    insert = insert
                        .bind(*topic)
                        .bind(*partition)
                        .bind(offset)
                        .bind(message.key)
                        .bind(message.payload)
                        .bind(created);
                }
                insert.execute(&mut *tx).await.map_err(storage)?;
            }
        }
        tx.commit().await.map_err(storage)?;
        Ok(positions)
    }
}

#[async_trait]
impl EventBus for EmbeddedLog {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<(), BusError> {
        // One statement per topic: creating a topic is a single write, so
        // processes starting together never upgrade a read to a write.
        for topic in topics {
            sqlx::query(
                "WITH RECURSIVE n(p) AS (SELECT 0 UNION ALL SELECT p + 1 FROM n WHERE p + 1 < ?2)
                 INSERT INTO partitions (topic, partition)
                 SELECT ?1, p FROM n
                 WHERE NOT EXISTS (SELECT 1 FROM partitions WHERE topic = ?1)",
            )
            .bind(topic.name)
            .bind(i64::from(topic.partitions.max(1)))
            .execute(&self.inner.pool)
            .await
            .map_err(storage)?;
        }
        Ok(())
    }

    async fn publish(&self, messages: &[Message<'_>]) -> Vec<Result<Position, BusError>> {
        let mut counts: HashMap<&str, Result<u32, BusError>> = HashMap::new();
        for message in messages {
            if !counts.contains_key(message.topic) {
                counts.insert(message.topic, self.partition_count(message.topic).await);
            }
        }
        let appended = self.append(messages, &counts).await;
        self.wake(messages);
        if self.inner.publishes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep().await;
        }
        match appended {
            Ok(positions) => messages
                .iter()
                .zip(positions)
                .map(|(message, position)| match position {
                    Some(position) => Ok(position),
                    None => Err(match counts.get(message.topic) {
                        Some(Err(BusError::Storage(e))) => BusError::Storage(e.clone()),
                        _ => BusError::UnknownTopic(message.topic.to_owned()),
                    }),
                })
                .collect(),
            Err(e) => messages
                .iter()
                .map(|_| Err(BusError::Storage(e.to_string())))
                .collect(),
        }
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, BusError> {
        for topic in topics {
            self.partition_count(topic).await?;
        }
        let member = Member {
            pool: self.inner.pool.clone(),
            group: group.to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            options: self.inner.options.clone(),
        };
        member.renew().await?;
        let last_poll = Arc::new(AtomicI64::new(now_ms()));
        let renewer = tokio::spawn(member.clone().keep_alive(Arc::clone(&last_poll)));
        let wake = self.listen(&member.topics);
        let mut subscription = EmbeddedSubscription {
            log: self.clone(),
            wake,
            member,
            owned: BTreeSet::new(),
            positions: HashMap::new(),
            buffer: VecDeque::new(),
            last_rebalance: None,
            last_poll,
            renewer,
        };
        subscription.rebalance().await?;
        Ok(Box::new(subscription))
    }

    async fn assign(
        &self,
        group: &str,
        topics: &[&str],
        from: &Offsets,
    ) -> Result<Box<dyn Subscription>, BusError> {
        for topic in topics {
            self.partition_count(topic).await?;
        }
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let mut reader = AssignedSubscription {
            wake: self.listen(&topics),
            log: self.clone(),
            group: group.to_owned(),
            from: from
                .iter()
                .filter(|((topic, _), _)| topics.contains(topic))
                .map(|(tp, offset)| (tp.clone(), *offset))
                .collect(),
            topics,
            positions: BTreeMap::new(),
            buffer: VecDeque::new(),
            last_refresh: None,
        };
        reader.refresh().await?;
        Ok(Box::new(reader))
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

/// A consumer's identity in its group, shared with its renewer task.
#[derive(Clone)]
struct Member {
    pool: SqlitePool,
    group: String,
    id: String,
    topics: Vec<String>,
    options: EmbeddedOptions,
}

impl Member {
    /// Renews this member's heartbeat and the leases of its partitions.
    async fn renew(&self) -> Result<(), BusError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO group_members (grp, member, topics, heartbeat_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (grp, member) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
        )
        .bind(&self.group)
        .bind(&self.id)
        .bind(self.topics.join("\n"))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        sqlx::query("UPDATE partition_owners SET lease_ms = ? WHERE grp = ? AND member = ?")
            .bind(now.saturating_add(millis(self.options.session_timeout)))
            .bind(&self.group)
            .bind(&self.id)
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Renews while the consumer keeps polling.
    async fn keep_alive(self, last_poll: Arc<AtomicI64>) {
        let max_idle = millis(self.options.max_poll_interval);
        loop {
            tokio::time::sleep(self.options.heartbeat_interval()).await;
            if now_ms().saturating_sub(last_poll.load(Ordering::Relaxed)) > max_idle {
                tracing::warn!(group = %self.group, member = %self.id,
                    "consumer stopped polling; letting its partitions go");
                return;
            }
            if let Err(e) = self.renew().await {
                tracing::warn!(group = %self.group, error = %e, "embedded log heartbeat failed");
            }
        }
    }

    /// Leaves the group and releases every partition at once.
    async fn leave(&self) -> Result<(), BusError> {
        for table in ["group_members", "partition_owners"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE grp = ? AND member = ?"))
                .bind(&self.group)
                .bind(&self.id)
                .execute(&self.pool)
                .await
                .map_err(storage)?;
        }
        Ok(())
    }
}

struct EmbeddedSubscription {
    log: EmbeddedLog,
    /// Notified when one of its topics is written to in this process.
    wake: Arc<Notify>,
    member: Member,
    /// Partitions this member holds the lease of.
    owned: BTreeSet<TopicPartition>,
    /// Next offset to read, per owned partition.
    positions: HashMap<TopicPartition, i64>,
    buffer: VecDeque<Record>,
    last_rebalance: Option<Instant>,
    last_poll: Arc<AtomicI64>,
    renewer: JoinHandle<()>,
}

impl Drop for EmbeddedSubscription {
    fn drop(&mut self) {
        // Without `close`, the leases run out after the session timeout.
        self.renewer.abort();
    }
}

impl EmbeddedSubscription {
    fn pool(&self) -> &SqlitePool {
        &self.member.pool
    }

    /// The partitions the current membership deals to this member.
    async fn desired(&self) -> Result<BTreeSet<TopicPartition>, BusError> {
        let session = millis(self.member.options.session_timeout);
        sqlx::query("DELETE FROM group_members WHERE grp = ? AND heartbeat_ms < ?")
            .bind(&self.member.group)
            .bind(now_ms().saturating_sub(session))
            .execute(self.pool())
            .await
            .map_err(storage)?;
        let members =
            sqlx::query("SELECT member, topics FROM group_members WHERE grp = ? ORDER BY member")
                .bind(&self.member.group)
                .fetch_all(self.pool())
                .await
                .map_err(storage)?;
        let mut desired = BTreeSet::new();
        for topic in &self.member.topics {
            let sharing: Vec<String> = members
                .iter()
                .filter(|row| {
                    row.get::<String, _>("topics")
                        .split('\n')
                        .any(|t| t == topic)
                })
                .map(|row| row.get::<String, _>("member"))
                .collect();
            let Some(me) = sharing.iter().position(|m| *m == self.member.id) else {
                continue;
            };
            let partitions = self.log.partition_count(topic).await?;
            for partition in 0..partitions {
                if usize::try_from(partition).unwrap_or(0) % sharing.len() == me {
                    desired.insert((topic.clone(), i32::try_from(partition).unwrap_or(0)));
                }
            }
        }
        Ok(desired)
    }

    /// Releases the partitions that belong to others now, checks that the
    /// kept ones are still ours, and claims the new ones that are free.
    async fn rebalance(&mut self) -> Result<(), BusError> {
        let desired = self.desired().await?;
        let group = self.member.group.clone();
        let me = self.member.id.clone();

        for tp in self.owned.difference(&desired) {
            sqlx::query(
                "DELETE FROM partition_owners
                 WHERE grp = ? AND topic = ? AND partition = ? AND member = ?",
            )
            .bind(&group)
            .bind(&tp.0)
            .bind(tp.1)
            .bind(&me)
            .execute(self.pool())
            .await
            .map_err(storage)?;
        }

        // What the table says is ours (a lease that ran out while we were
        // stalled may have been taken).
        let held: BTreeSet<TopicPartition> = sqlx::query(
            "SELECT topic, partition FROM partition_owners WHERE grp = ? AND member = ?",
        )
        .bind(&group)
        .bind(&me)
        .fetch_all(self.pool())
        .await
        .map_err(storage)?
        .into_iter()
        .map(|row| (row.get("topic"), row.get("partition")))
        .collect();
        let mut owned: BTreeSet<TopicPartition> = held.intersection(&desired).cloned().collect();

        let now = now_ms();
        let lease = now.saturating_add(millis(self.member.options.session_timeout));
        for tp in desired.difference(&owned.clone()) {
            let claimed = sqlx::query(
                "INSERT INTO partition_owners (grp, topic, partition, member, lease_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (grp, topic, partition) DO UPDATE
                 SET member = excluded.member, lease_ms = excluded.lease_ms
                 WHERE partition_owners.member = excluded.member OR partition_owners.lease_ms < ?6",
            )
            .bind(&group)
            .bind(&tp.0)
            .bind(tp.1)
            .bind(&me)
            .bind(lease)
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(storage)?
            .rows_affected()
                == 1;
            if claimed {
                owned.insert(tp.clone());
            }
        }

        if owned != self.owned {
            self.buffer
                .retain(|r| owned.contains(&(r.topic.clone(), r.partition)));
            self.positions.retain(|tp, _| owned.contains(tp));
            for tp in &owned {
                if self.positions.contains_key(tp) {
                    continue;
                }
                let committed: Option<i64> = sqlx::query_scalar(
                    "SELECT next_offset FROM group_offsets
                     WHERE grp = ? AND topic = ? AND partition = ?",
                )
                .bind(&group)
                .bind(&tp.0)
                .bind(tp.1)
                .fetch_optional(self.pool())
                .await
                .map_err(storage)?;
                self.positions.insert(tp.clone(), committed.unwrap_or(0));
            }
            tracing::debug!(group = %group, member = %me, partitions = owned.len(),
                "embedded log assignment");
            self.owned = owned;
        }
        self.last_rebalance = Some(Instant::now());
        Ok(())
    }

    async fn fetch(&mut self) -> Result<(), BusError> {
        for tp in &self.owned {
            let position = self.positions.get(tp).copied().unwrap_or(0);
            let records = read_partition(self.pool(), tp, position).await?;
            if let Some(last) = records.last() {
                self.positions.insert(tp.clone(), last.offset + 1);
            }
            self.buffer.extend(records);
        }
        Ok(())
    }
}

/// Up to [`FETCH_BATCH`] records of `tp`, from offset `from` on.
async fn read_partition(
    pool: &SqlitePool,
    tp: &TopicPartition,
    from: i64,
) -> Result<Vec<Record>, BusError> {
    let rows = sqlx::query(
        "SELECT \"offset\", key, payload FROM records
         WHERE topic = ? AND partition = ? AND \"offset\" >= ?
         ORDER BY \"offset\" LIMIT ?",
    )
    .bind(&tp.0)
    .bind(tp.1)
    .bind(from)
    .bind(FETCH_BATCH)
    .fetch_all(pool)
    .await
    .map_err(storage)?;
    Ok(rows
        .into_iter()
        .map(|row| Record {
            topic: tp.0.clone(),
            partition: tp.1,
            offset: row.get("offset"),
            key: row.get("key"),
            payload: row.get("payload"),
        })
        .collect())
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        let deadline = Instant::now() + timeout;
        let interval = self.member.options.heartbeat_interval();
        loop {
            self.last_poll.store(now_ms(), Ordering::Relaxed);
            if self.last_rebalance.is_none_or(|t| t.elapsed() >= interval) {
                self.rebalance().await?;
            }
            if let Some(record) = self.buffer.pop_front() {
                return Ok(Some(record));
            }
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
                .min(interval);
            let _ = tokio::time::timeout(nap, self.wake.notified()).await;
        }
    }

    async fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        // Only the partition's owner may move the group's position.
        let committed = sqlx::query(
            "INSERT INTO group_offsets (grp, topic, partition, next_offset)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (
                 SELECT 1 FROM partition_owners
                 WHERE grp = ?1 AND topic = ?2 AND partition = ?3 AND member = ?5)
             ON CONFLICT (grp, topic, partition)
             DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
        )
        .bind(&self.member.group)
        .bind(&record.topic)
        .bind(record.partition)
        .bind(record.offset + 1)
        .bind(&self.member.id)
        .execute(self.pool())
        .await
        .map_err(storage)?
        .rows_affected();
        if committed == 0 {
            return Err(BusError::Revoked {
                topic: record.topic.clone(),
                partition: record.partition,
            });
        }
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        self.renewer.abort();
        self.member.leave().await
    }
}

/// A reader of every partition of its topics, from offsets of its own.
struct AssignedSubscription {
    log: EmbeddedLog,
    /// Notified when one of its topics is written to in this process.
    wake: Arc<Notify>,
    /// Where [`Subscription::commit`] records the position.
    group: String,
    topics: Vec<String>,
    /// Where each partition starts when first seen (absent ones: at 0).
    from: Offsets,
    /// Next offset to read, per partition.
    positions: BTreeMap<TopicPartition, i64>,
    buffer: VecDeque<Record>,
    last_refresh: Option<Instant>,
}

impl AssignedSubscription {
    /// Adds the partitions not read so far.
    async fn refresh(&mut self) -> Result<(), BusError> {
        for topic in &self.topics {
            let partitions: Vec<i32> =
                sqlx::query_scalar("SELECT partition FROM partitions WHERE topic = ?")
                    .bind(topic)
                    .fetch_all(&self.log.inner.pool)
                    .await
                    .map_err(storage)?;
            for partition in partitions {
                let tp = (topic.clone(), partition);
                let start = self.from.get(&tp).copied().unwrap_or(0).max(0);
                self.positions.entry(tp).or_insert(start);
            }
        }
        self.last_refresh = Some(Instant::now());
        Ok(())
    }

    async fn fetch(&mut self) -> Result<(), BusError> {
        for (tp, position) in &mut self.positions {
            let records = read_partition(&self.log.inner.pool, tp, *position).await?;
            if let Some(last) = records.last() {
                *position = last.offset + 1;
            }
            self.buffer.extend(records);
        }
        Ok(())
    }
}

#[async_trait]
impl Subscription for AssignedSubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        let deadline = Instant::now() + timeout;
        let interval = self.log.inner.options.heartbeat_interval();
        loop {
            if self.last_refresh.is_none_or(|t| t.elapsed() >= interval) {
                self.refresh().await?;
            }
            if let Some(record) = self.buffer.pop_front() {
                return Ok(Some(record));
            }
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
                .min(interval);
            let _ = tokio::time::timeout(nap, self.wake.notified()).await;
        }
    }

    async fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        sqlx::query(
            "INSERT INTO group_offsets (grp, topic, partition, next_offset) VALUES (?, ?, ?, ?)
             ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
        )
        .bind(&self.group)
        .bind(&record.topic)
        .bind(record.partition)
        .bind(record.offset + 1)
        .execute(&self.log.inner.pool)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        Ok(())
    }
}
