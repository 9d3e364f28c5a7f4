//! Kafka (any Kafka-protocol broker) through rdkafka.
//!
//! # Handing partitions over
//!
//! A member that stops gracefully leaves its group (LeaveGroup), and the
//! others get its partitions at their next rebalance; a member that dies
//! is dropped by the broker once its session times out. Both must work
//! on tansu, the broker of the tests and the dev stack, whose group
//! coordinator (0.6, and upstream as of mid-2026) has a flaw: when the
//! member it has chosen as *leader* of a group that is rebalancing
//! (another member just joined, left or timed out) leaves with
//! LeaveGroup, tansu removes the member but keeps it as the leader. Every
//! member that joins afterwards is told to wait for that leader's
//! assignment, its SyncGroup answers `REBALANCE_IN_PROGRESS`, and the group
//! never forms again while the broker runs (a `pinhole serve` with two
//! members of one group stopped: the replacement never got the job).
//! Leaving a group that is not rebalancing is fine, and so is a member
//! that times out (tansu then clears the leader). So a member leaves only
//! when the group is stable as far as it can tell (see [`leave`]), one
//! member of a group at a time in this process. What is left: another
//! process joining or leaving within the heartbeat before a leader leaves,
//! or two processes stopping at the same instant, can still wedge a group
//! (restarting tansu, whose storage is in memory, clears it). The fix
//! belongs in tansu (forget the leader when it leaves); on Kafka itself
//! the care costs a closing member 1.5 heartbeats.
//!
//! How long a handover takes on tansu: the coordinator holds every
//! JoinGroup for half the session timeout (its stand-in for "wait for the
//! others to rejoin"), and notices a dead member only when another member
//! talks to it after the session ran out. With session timeout S and
//! heartbeat interval H: a closed member's partitions move in about
//! 1.5 H (its quiet check) + H + S / 2; a killed one's in S + H + S / 2
//! at most (about 10 s with the default 6 s session).
//!
//! # Readers with offsets of their own
//!
//! [`EventBus::assign`] never joins a group: its consumer is given the
//! partitions with explicit offsets (`incremental_assign`, which on a
//! consumer that never subscribed just adds to its assignment, so that
//! partitions found later join without disturbing the others) and commits
//! to its `group.id` only so that broker tools show the group's lag. None
//! of the above applies to it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use crate::{BusError, EventBus, Message, Offsets, Position, Record, Subscription, TopicSpec};

#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `host:port,host:port`.
    pub brokers: String,
    /// Consumer group session timeout: how long a silent (killed, cut off)
    /// member keeps its partitions. It bounds the handover after a crash
    /// (see the module docs: S + H + S / 2 on tansu) and, on tansu, every
    /// rebalance takes S / 2. The default, 6 s, is the shortest a Kafka
    /// broker accepts by default (`group.min.session.timeout.ms`); heartbeats
    /// go out every sixth of it. On tansu a group keeps the session
    /// timeout of the member that created it, for as long as the broker
    /// runs.
    pub session_timeout: Duration,
    /// How long the producer keeps trying to deliver one message.
    pub message_timeout: Duration,
    /// How often a reader from [`EventBus::assign`] looks for partitions
    /// added to its topics since it started.
    pub partition_refresh: Duration,
}

impl KafkaOptions {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            session_timeout: Duration::from_secs(6),
            message_timeout: Duration::from_secs(30),
            partition_refresh: Duration::from_secs(30),
        }
    }

    /// How often a member tells the coordinator it is alive: a sixth of the
    /// session timeout (1 s by default). On tansu this is also how soon a
    /// member notices a rebalance, and a dead member is noticed only when
    /// another one talks to the coordinator, so it adds to every handover.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.session_timeout / 6).max(Duration::from_millis(100))
    }

    /// How long a leaving member watches for a rebalance before it leaves:
    /// long enough for one heartbeat to come back, so that a rebalance the
    /// coordinator started before the member was closed is seen.
    fn leave_quiet(&self) -> Duration {
        self.heartbeat_interval() * 3 / 2
    }

    /// How long a leaving member waits at most for the group to be stable
    /// before it leaves anyway: a rebalance takes H + S / 2 on tansu.
    fn leave_deadline(&self) -> Duration {
        self.session_timeout * 2
    }
}

/// A Kafka-protocol broker.
#[derive(Clone)]
pub struct KafkaBus {
    producer: FutureProducer,
    options: KafkaOptions,
}

fn kafka(e: KafkaError) -> BusError {
    BusError::Kafka(e.to_string())
}

/// Errors that no retry can fix become [`BusError::Rejected`].
fn classify(e: KafkaError) -> BusError {
    use RDKafkaErrorCode::{
        InvalidMessage, InvalidMessageSize, InvalidRecord, MessageBatchTooLarge,
        MessageSizeTooLarge,
    };
    match e.rdkafka_error_code() {
        Some(
            MessageSizeTooLarge | InvalidMessageSize | InvalidMessage | InvalidRecord
            | MessageBatchTooLarge,
        ) => BusError::Rejected(e.to_string()),
        _ => kafka(e),
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

fn record(message: &BorrowedMessage<'_>) -> Record {
    Record {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().unwrap_or_default().to_vec(),
    }
}

impl KafkaBus {
    /// Creates the client. No connection is made until it is used.
    pub fn new(options: KafkaOptions) -> Result<Self, BusError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &options.brokers)
            .set("message.timeout.ms", millis(options.message_timeout))
            .set("acks", "all")
            // Keeps per-partition order through retries.
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .create()
            .map_err(kafka)?;
        Ok(Self { producer, options })
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>, BusError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            .create()
            .map_err(kafka)
    }

    async fn topic_names(&self, timeout: Duration) -> Result<Vec<String>, BusError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|m| m.topics().iter().map(|t| t.name().to_owned()).collect())
                .map_err(kafka)
        })
        .await
        .map_err(|e| BusError::Kafka(e.to_string()))?
    }
}

#[async_trait]
impl EventBus for KafkaBus {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<(), BusError> {
        let existing = self.topic_names(Duration::from_secs(10)).await?;
        let missing: Vec<NewTopic<'_>> = topics
            .iter()
            .filter(|t| !existing.iter().any(|e| e == t.name))
            // Replication -1: the broker's default.
            .map(|t| {
                NewTopic::new(
                    t.name,
                    i32::try_from(t.partitions.max(1)).unwrap_or(1),
                    TopicReplication::Fixed(-1),
                )
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let admin = self.admin()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(missing.iter(), &options)
            .await
            .map_err(kafka)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(BusError::Kafka(format!("creating topic {topic}: {code}")));
                }
            }
        }
        Ok(())
    }

    async fn publish(&self, messages: &[Message<'_>]) -> Vec<Result<Position, BusError>> {
        // Enqueue every message in order first, then wait for all the
        // acknowledgements: the producer keeps per-partition order.
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            let mut record = FutureRecord::to(message.topic)
                .key(message.key)
                .payload(message.payload);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(Ok(delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((e, _)) => {
                        pending.push(Err(classify(e)));
                        break;
                    }
                }
            }
        }
        let mut results = Vec::with_capacity(pending.len());
        for delivery in pending {
            results.push(match delivery {
                Err(e) => Err(e),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(d)) => Ok(Position {
                        partition: d.partition,
                        offset: d.offset,
                    }),
                    Ok(Err((e, _))) => Err(classify(e)),
                    Err(_) => Err(BusError::Kafka("producer shut down".into())),
                },
            });
        }
        results
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, BusError> {
        let membership = Arc::new(Membership::default());
        let consumer: GroupConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("session.timeout.ms", millis(self.options.session_timeout))
            .set(
                "heartbeat.interval.ms",
                millis(self.options.heartbeat_interval()),
            )
            .set("enable.partition.eof", "false")
            .create_with_context(GroupContext {
                membership: Arc::clone(&membership),
            })
            .map_err(kafka)?;
        consumer.subscribe(topics).map_err(kafka)?;
        let leaving = Leaving {
            group: group.to_owned(),
            turn: format!("{}/{group}", self.options.brokers),
            membership,
            quiet: self.options.leave_quiet(),
            deadline: self.options.leave_deadline(),
        };
        Ok(Box::new(KafkaSubscription {
            member: Some((Arc::new(consumer), leaving)),
        }))
    }

    async fn assign(
        &self,
        group: &str,
        topics: &[&str],
        from: &Offsets,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let consumer: AssignedConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            // Where a partition restarts when its offset is out of range
            // (past retention, or a topic created again).
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("enable.partition.eof", "false")
            .create_with_context(AssignedContext {
                group: group.to_owned(),
            })
            .map_err(kafka)?;
        let consumer = Arc::new(consumer);
        let reading = Reading {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            from: from
                .iter()
                .filter(|((topic, _), _)| topics.contains(&topic.as_str()))
                .map(|(tp, offset)| (tp.clone(), *offset))
                .collect(),
        };
        if let Err(e) = assign_all(&consumer, &reading).await {
            // Closing a consumer blocks for a moment.
            drop(tokio::task::spawn_blocking(move || drop(consumer)));
            return Err(e);
        }
        let watcher = tokio::spawn(watch_partitions(
            Arc::downgrade(&consumer),
            reading,
            self.options.partition_refresh,
        ));
        Ok(Box::new(AssignedSubscription {
            consumer: Some(consumer),
            watcher,
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        self.topic_names(Duration::from_secs(3)).await.map(|_| ())
    }
}

type GroupConsumer = StreamConsumer<GroupContext>;

/// What a member knows of its place in the group, from librdkafka's
/// rebalance callbacks (run while the consumer is polled).
struct Membership {
    /// Revoked and not assigned again yet (or never assigned so far): the
    /// group is rebalancing as far as this member knows.
    rebalancing: AtomicBool,
    /// Assignments received so far; each one means that the coordinator
    /// had a stable group when it answered this member's SyncGroup.
    assignments: AtomicU64,
}

impl Default for Membership {
    fn default() -> Self {
        Self {
            rebalancing: AtomicBool::new(true),
            assignments: AtomicU64::new(0),
        }
    }
}

struct GroupContext {
    membership: Arc<Membership>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Revoke(_)) {
            self.membership.rebalancing.store(true, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.membership.rebalancing.store(false, Ordering::SeqCst);
            self.membership.assignments.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Turns to leave, one per broker list and group, for the whole process:
/// two members of one group that leave at once (a server with several
/// workers stopping) are exactly the leader-leaves-a-rebalancing-group case
/// of the module docs.
static TURNS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

fn turn(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut turns = TURNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Forget the groups nobody is leaving.
    turns.retain(|_, t| Arc::strong_count(t) > 1);
    Arc::clone(turns.entry(key.to_owned()).or_default())
}

/// How one member leaves its group.
struct Leaving {
    group: String,
    /// Key of its turn in [`TURNS`].
    turn: String,
    membership: Arc<Membership>,
    quiet: Duration,
    deadline: Duration,
}

/// How often a leaving member polls its consumer (which runs librdkafka's
/// rebalance callbacks) while it waits for its turn to be safe.
const LEAVE_POLL: Duration = Duration::from_millis(50);

/// Leaves the group once that cannot wedge it on tansu (module docs): in
/// its turn among this process's members of the group, and then either
/// right after a rebalance completed for this member (the coordinator had
/// a stable group when it answered its SyncGroup), or once a heartbeat
/// round has gone by without one starting. All along the consumer is
/// polled, so that the member takes part in rebalances (as the leader, it
/// must assign the partitions before anyone gets them); the records that
/// come are dropped uncommitted, and whoever takes over reads them again.
/// Gives up waiting after `deadline` (a group already wedged never
/// settles). A process that exits meanwhile sends no LeaveGroup at all,
/// and its members time out, which is safe.
async fn leave(consumer: Arc<GroupConsumer>, leaving: Leaving) {
    let turn = turn(&leaving.turn);
    let my_turn = turn.lock();
    tokio::pin!(my_turn);
    // While the other members leave, this one keeps taking part in the
    // group: it may be the leader that the rebalance they wait for needs.
    let _turn = loop {
        tokio::select! {
            guard = &mut my_turn => break guard,
            _ = tokio::time::timeout(LEAVE_POLL, consumer.recv()) => {}
        }
    };
    let started = Instant::now();
    let membership = &leaving.membership;
    let assigned_before = membership.assignments.load(Ordering::SeqCst);
    let mut quiet_since = started;
    let reason = loop {
        let rebalancing = membership.rebalancing.load(Ordering::SeqCst);
        if rebalancing {
            quiet_since = Instant::now();
        } else if membership.assignments.load(Ordering::SeqCst) > assigned_before {
            break "rebalance completed";
        } else if quiet_since.elapsed() >= leaving.quiet {
            break "no rebalance under way";
        }
        if started.elapsed() >= leaving.deadline {
            tracing::warn!(group = %leaving.group, waited = ?started.elapsed(),
                "the consumer group is still rebalancing; leaving anyway");
            break "deadline";
        }
        let _ = tokio::time::timeout(LEAVE_POLL, consumer.recv()).await;
    };
    // A commit cut short may still hold the consumer for a moment; the
    // leave must be over before the next member's turn.
    while Arc::strong_count(&consumer) > 1 && started.elapsed() < leaving.deadline {
        let _ = tokio::time::timeout(LEAVE_POLL, consumer.recv()).await;
    }
    // LeaveGroup goes out once librdkafka has revoked the partitions; the
    // drop of the last handle waits for that.
    consumer.unsubscribe();
    drop(consumer);
    tracing::debug!(group = %leaving.group, waited = ?started.elapsed(), reason,
        "left the consumer group");
}

/// Runs [`leave`] on a thread of its own, with a runtime of its own: it
/// outlives the task (or the runtime) that dropped the subscription, and
/// it never holds a runtime worker while librdkafka says goodbye.
fn leave_in_background(
    consumer: Arc<GroupConsumer>,
    leaving: Leaving,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, finished) = tokio::sync::oneshot::channel();
    LEAVING.fetch_add(1, Ordering::SeqCst);
    std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime.block_on(leave(consumer, leaving)),
            Err(e) => {
                tracing::warn!(group = %leaving.group, error = %e,
                    "cannot wait for a stable group; leaving at once");
                consumer.unsubscribe();
                drop(consumer);
            }
        }
        LEAVING.fetch_sub(1, Ordering::SeqCst);
        let _ = done.send(());
    });
    finished
}

/// Members of this process still leaving their groups.
static LEAVING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits (at most `deadline`) until every Kafka group member this process
/// closed or dropped has left its group. A process that stops should call
/// it last: a member that has not left keeps its partitions until its
/// session times out, and on tansu a replacement joining while the old
/// members still leave can wedge the group (see the module docs).
pub async fn wait_for_leaves(deadline: Duration) -> bool {
    let started = Instant::now();
    while LEAVING.load(Ordering::SeqCst) > 0 {
        if started.elapsed() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

struct KafkaSubscription {
    /// The consumer and how it leaves; `None` once closed.
    member: Option<(Arc<GroupConsumer>, Leaving)>,
}

impl KafkaSubscription {
    fn consumer(&self) -> Result<&Arc<GroupConsumer>, BusError> {
        self.member
            .as_ref()
            .map(|(consumer, _)| consumer)
            .ok_or_else(|| BusError::Kafka("the subscription is closed".into()))
    }
}

impl Drop for KafkaSubscription {
    /// A subscription dropped without `close` (its consumer task aborted, a
    /// server stopped) leaves the group as `close` does, in the background.
    fn drop(&mut self) {
        if let Some((consumer, leaving)) = self.member.take() {
            drop(leave_in_background(consumer, leaving));
        }
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        match tokio::time::timeout(timeout, self.consumer()?.recv()).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => Err(kafka(e)),
            Ok(Ok(message)) => Ok(Some(record(&message))),
        }
    }

    async fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            &record.topic,
            record.partition,
            Offset::Offset(record.offset + 1),
        )
        .map_err(kafka)?;
        let consumer = Arc::clone(self.consumer()?);
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await
            .map_err(|e| BusError::Kafka(e.to_string()))?
            .map_err(kafka)
    }

    /// Leaves the group once that is safe (see [`leave`]): at once when no
    /// rebalance is under way, after it otherwise. Leaving goes on if the
    /// caller stops waiting.
    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        let Some((consumer, leaving)) = self.member.take() else {
            return Ok(());
        };
        leave_in_background(consumer, leaving)
            .await
            .map_err(|_| BusError::Kafka("leaving the group failed".into()))
    }
}

/// How long a metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `assign` waits for a topic missing from the metadata.
const TOPIC_APPEARS: Duration = Duration::from_secs(3);

type AssignedConsumer = StreamConsumer<AssignedContext>;

/// Logs the commits that failed: they only feed monitoring, so the reader
/// goes on.
struct AssignedContext {
    group: String,
}

impl ClientContext for AssignedContext {}

impl ConsumerContext for AssignedContext {
    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(group = %self.group, error = %e,
                "recording the read position for monitoring failed");
        }
    }
}

/// What a reader from `assign` reads, and where each partition starts.
#[derive(Clone)]
struct Reading {
    topics: Vec<String>,
    from: Offsets,
}

/// The partitions of `topic` in `metadata`, if it has any.
fn partitions_of(metadata: &Metadata, topic: &str) -> Option<Vec<i32>> {
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
}

/// Assigns the partitions of `reading` that the consumer does not read yet,
/// each from its offset in `reading.from` or from its beginning. Returns a
/// topic missing from the broker's metadata, if any (its partitions are
/// not assigned).
async fn add_partitions(
    consumer: Arc<AssignedConsumer>,
    reading: Reading,
) -> Result<Option<String>, BusError> {
    tokio::task::spawn_blocking(move || {
        let metadata = consumer
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map_err(kafka)?;
        let assigned: BTreeSet<(String, i32)> = consumer
            .assignment()
            .map_err(kafka)?
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let mut missing = None;
        let mut list = TopicPartitionList::new();
        for topic in &reading.topics {
            let Some(partitions) = partitions_of(&metadata, topic) else {
                missing = Some(topic.clone());
                continue;
            };
            for partition in partitions {
                let tp = (topic.clone(), partition);
                if assigned.contains(&tp) {
                    continue;
                }
                let offset = match reading.from.get(&tp) {
                    Some(&next) if next >= 0 => Offset::Offset(next),
                    _ => Offset::Beginning,
                };
                list.add_partition_offset(topic, partition, offset)
                    .map_err(kafka)?;
            }
        }
        if list.count() > 0 {
            consumer.incremental_assign(&list).map_err(kafka)?;
        }
        Ok(missing)
    })
    .await
    .map_err(|e| BusError::Kafka(e.to_string()))?
}

/// Assigns every partition of `reading`, waiting a little for topics
/// missing from the metadata: one just created may take a moment to show
/// in every broker's.
async fn assign_all(consumer: &Arc<AssignedConsumer>, reading: &Reading) -> Result<(), BusError> {
    let started = Instant::now();
    loop {
        match add_partitions(Arc::clone(consumer), reading.clone()).await? {
            None => return Ok(()),
            Some(topic) if started.elapsed() >= TOPIC_APPEARS => {
                return Err(BusError::UnknownTopic(topic));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Every `every`, assigns the partitions added since, for as long as the
/// consumer lives.
async fn watch_partitions(consumer: Weak<AssignedConsumer>, reading: Reading, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(consumer) = consumer.upgrade() else {
            return;
        };
        if let Err(e) = add_partitions(consumer, reading.clone()).await {
            tracing::warn!(error = %e, "looking for new partitions failed");
        }
    }
}

struct AssignedSubscription {
    /// `None` once closed.
    consumer: Option<Arc<AssignedConsumer>>,
    watcher: JoinHandle<()>,
}

impl AssignedSubscription {
    fn consumer(&self) -> Result<&Arc<AssignedConsumer>, BusError> {
        self.consumer
            .as_ref()
            .ok_or_else(|| BusError::Kafka("the subscription is closed".into()))
    }
}

impl Drop for AssignedSubscription {
    /// Closing a consumer waits for its commits in flight: not on a runtime
    /// worker.
    fn drop(&mut self) {
        self.watcher.abort();
        if let Some(consumer) = self.consumer.take() {
            std::thread::spawn(move || drop(consumer));
        }
    }
}

#[async_trait]
impl Subscription for AssignedSubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        match tokio::time::timeout(timeout, self.consumer()?.recv()).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => Err(kafka(e)),
            Ok(Ok(message)) => Ok(Some(record(&message))),
        }
    }

    /// Sends the position to the group coordinator without waiting for the
    /// answer; a failure is logged.
    async fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            &record.topic,
            record.partition,
            Offset::Offset(record.offset + 1),
        )
        .map_err(kafka)?;
        self.consumer()?
            .commit(&list, CommitMode::Async)
            .map_err(kafka)
    }

    /// Stops reading once the commits in flight are answered.
    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        self.watcher.abort();
        let Some(consumer) = self.consumer.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .map_err(|e| BusError::Kafka(e.to_string()))
    }
}
