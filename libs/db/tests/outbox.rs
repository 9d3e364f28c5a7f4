//! The database and the transactional outbox, on SQLite and on a real
//! Postgres, relaying to the embedded log and to a real Kafka broker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_bus::{EmbeddedLog, EmbeddedOptions, EventBus, KafkaBus, KafkaOptions, TopicSpec};
use pinhole_config::DatabaseUrl;
use pinhole_db::outbox::entity;
use pinhole_db::{Outbox, OutboxRelay, RelayOptions};
use pinhole_events::{Envelope, OutgoingEvent};
use pinhole_testkit::{Broker, unique, wait_for};
use sea_orm::{
    ActiveValue, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, SqlErr,
    Statement, TransactionTrait,
};

async fn sqlite(dir: &tempfile::TempDir) -> anyhow::Result<DatabaseConnection> {
    let db = pinhole_db::connect(&DatabaseUrl::Sqlite(dir.path().join("db/pinhole.db"))).await?;
    pinhole_db::migrate(&db, &[]).await?;
    Ok(db)
}

async fn postgres() -> anyhow::Result<DatabaseConnection> {
    let url = pinhole_testkit::fresh_postgres().await?;
    let db = pinhole_db::connect(&DatabaseUrl::Postgres(url)).await?;
    pinhole_db::migrate(&db, &[]).await?;
    Ok(db)
}

/// A topic name that lives as long as the test process, as topics do.
fn topic() -> &'static str {
    Box::leak(unique("outbox").into_boxed_str())
}

fn event(topic: &'static str, key: &str, n: usize) -> OutgoingEvent {
    OutgoingEvent {
        topic,
        key: key.to_owned(),
        envelope: Envelope::new(
            "/pinhole/test",
            "test.happened",
            format!("thing/{key}"),
            1,
            serde_json::json!({ "n": n }),
        ),
    }
}

/// Writes each event in a transaction of its own, as roles do.
async fn write(
    db: &DatabaseConnection,
    outbox: &Outbox,
    events: &[OutgoingEvent],
) -> anyhow::Result<()> {
    for e in events {
        let txn = db.begin().await?;
        outbox.enqueue(&txn, std::slice::from_ref(e)).await?;
        txn.commit().await?;
        outbox.wake();
    }
    Ok(())
}

/// Reads `count` events from `topic`, grouped by key, in arrival order.
async fn consume(
    bus: &dyn EventBus,
    topic: &str,
    count: usize,
) -> anyhow::Result<BTreeMap<String, Vec<Envelope>>> {
    let mut sub = bus.subscribe(&unique("group"), &[topic]).await?;
    let started = Instant::now();
    let mut by_key: BTreeMap<String, Vec<Envelope>> = BTreeMap::new();
    let mut seen = 0;
    while seen < count {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "got {seen} of {count} events"
        );
        if let Some(record) = sub.next(Duration::from_millis(500)).await? {
            let key = String::from_utf8(record.key.clone().unwrap_or_default())?;
            by_key
                .entry(key)
                .or_default()
                .push(Envelope::from_json(&record.payload)?);
            sub.commit(&record).await?;
            seen += 1;
        }
    }
    sub.close().await?;
    Ok(by_key)
}

async fn transactional(db: DatabaseConnection) -> anyhow::Result<()> {
    // Migrating again changes nothing.
    pinhole_db::migrate(&db, &[]).await?;
    let outbox = Outbox::new();
    let t = topic();

    let txn = db.begin().await?;
    outbox
        .enqueue(&txn, &[event(t, "a", 1), event(t, "a", 2)])
        .await?;
    txn.rollback().await?;
    ensure!(
        outbox.pending(&db).await? == 0,
        "a rolled-back change leaves no event"
    );

    let txn = db.begin().await?;
    let written = event(t, "a", 3);
    outbox
        .enqueue(&txn, &[written.clone(), event(t, "b", 4)])
        .await?;
    txn.commit().await?;
    ensure!(outbox.pending(&db).await? == 2);

    // The same event twice is a unique violation (what the API maps to 409).
    let duplicate = entity::ActiveModel {
        seq: ActiveValue::NotSet,
        event_id: ActiveValue::Set(written.envelope.id),
        topic: ActiveValue::Set(t.to_owned()),
        event_key: ActiveValue::Set("a".into()),
        payload: ActiveValue::Set("{}".into()),
        created_at: ActiveValue::Set(chrono::Utc::now()),
        attempts: ActiveValue::Set(0),
        last_error: ActiveValue::Set(None),
        next_attempt_at: ActiveValue::Set(None),
    };
    let err = entity::Entity::insert(duplicate)
        .exec(&db)
        .await
        .expect_err("duplicate event id");
    ensure!(
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "{err}"
    );
    Ok(())
}

async fn relays_in_order(db: DatabaseConnection, bus: Arc<dyn EventBus>) -> anyhow::Result<()> {
    let t = topic();
    bus.ensure_topics(&[TopicSpec {
        name: t,
        partitions: 3,
    }])
    .await?;
    let outbox = Outbox::new();
    let events: Vec<OutgoingEvent> = (0..30)
        .map(|n| event(t, &format!("key-{}", n % 3), n))
        .collect();
    write(&db, &outbox, &events).await?;
    let relay = tokio::spawn(
        OutboxRelay::new(
            db.clone(),
            Arc::clone(&bus),
            outbox.clone(),
            RelayOptions::default(),
        )
        .run(),
    );
    let by_key = consume(bus.as_ref(), t, 30).await?;
    for (key, envelopes) in &by_key {
        let expected: Vec<_> = events
            .iter()
            .filter(|e| &e.key == key)
            .map(|e| e.envelope.id)
            .collect();
        let got: Vec<_> = envelopes.iter().map(|e| e.id).collect();
        ensure!(got == expected, "{key}: events out of order or missing");
    }
    wait_for(Duration::from_secs(10), "the outbox to empty", || async {
        (outbox.pending(&db).await.ok() == Some(0)).then_some(())
    })
    .await?;
    relay.abort();
    Ok(())
}

/// An event the bus refuses for good goes to `outbox_dead` with the reason;
/// the events around it are delivered.
async fn refused_events_are_buried(
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    poison: impl FnOnce(&'static str) -> OutgoingEvent,
) -> anyhow::Result<()> {
    let t = topic();
    bus.ensure_topics(&[TopicSpec {
        name: t,
        partitions: 2,
    }])
    .await?;
    let poison = poison(t);
    let outbox = Outbox::new();
    let events = vec![event(t, "k", 0), poison.clone(), event(t, "k", 2)];
    write(&db, &outbox, &events).await?;
    let relay = OutboxRelay::new(
        db.clone(),
        Arc::clone(&bus),
        outbox.clone(),
        RelayOptions::default(),
    );
    wait_for(Duration::from_secs(30), "the outbox to settle", || async {
        let _ = relay.relay_once().await;
        (outbox.pending(&db).await.ok() == Some(0)).then_some(())
    })
    .await?;
    let dead = outbox.dead(&db).await?;
    ensure!(
        dead.len() == 1 && dead[0].event_id == poison.envelope.id,
        "{dead:?}"
    );
    ensure!(!dead[0].last_error.is_empty());
    let by_key = consume(bus.as_ref(), t, 2).await?;
    let got: Vec<_> = by_key["k"].iter().map(|e| e.id).collect();
    ensure!(got == vec![events[0].envelope.id, events[2].envelope.id]);
    Ok(())
}

/// The real embedded log, with a fault injected: messages keyed `flaky`
/// fail (as if timed out) the first time they are published.
struct FlakyOnce {
    inner: EmbeddedLog,
    failed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EventBus for FlakyOnce {
    fn kind(&self) -> &'static str {
        "embedded"
    }
    async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<(), pinhole_bus::BusError> {
        self.inner.ensure_topics(topics).await
    }
    async fn publish(
        &self,
        messages: &[pinhole_bus::Message<'_>],
    ) -> Vec<Result<pinhole_bus::Position, pinhole_bus::BusError>> {
        let fail_now = !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst);
        let (flaky, fine): (Vec<_>, Vec<_>) = messages
            .iter()
            .enumerate()
            .partition(|(_, m)| fail_now && m.key == b"flaky");
        let published = self
            .inner
            .publish(&fine.iter().map(|(_, m)| **m).collect::<Vec<_>>())
            .await;
        let mut results: Vec<_> = (0..messages.len()).map(|_| None).collect();
        for ((i, _), result) in fine.iter().zip(published) {
            results[*i] = Some(result);
        }
        for (i, _) in flaky {
            results[i] = Some(Err(pinhole_bus::BusError::Kafka(
                "Message timed out".into(),
            )));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| unreachable!()))
            .collect()
    }
    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn pinhole_bus::Subscription>, pinhole_bus::BusError> {
        self.inner.subscribe(group, topics).await
    }
    async fn check(&self) -> Result<(), pinhole_bus::BusError> {
        self.inner.check().await
    }
}

/// A round where some events fail for now records what was delivered, so
/// the retry sends only what is still pending.
async fn partial_failures_are_not_sent_twice(db: DatabaseConnection) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bus: Arc<dyn EventBus> = Arc::new(FlakyOnce {
        inner: EmbeddedLog::open(&dir.path().join("events.db"), EmbeddedOptions::default()).await?,
        failed: std::sync::atomic::AtomicBool::new(false),
    });
    let t = topic();
    bus.ensure_topics(&[TopicSpec {
        name: t,
        partitions: 1,
    }])
    .await?;
    let outbox = Outbox::new();
    let events = vec![event(t, "a", 0), event(t, "flaky", 1), event(t, "b", 2)];
    write(&db, &outbox, &events).await?;
    let relay = OutboxRelay::new(
        db.clone(),
        Arc::clone(&bus),
        outbox.clone(),
        RelayOptions::default(),
    );

    // The round delivered the others: not an error for the relay.
    ensure!(relay.relay_once().await? == 2, "the others went out");
    let waiting = entity::Entity::find().all(&db).await?;
    ensure!(
        waiting.len() == 1 && waiting[0].event_key == "flaky",
        "{waiting:?}"
    );
    ensure!(waiting[0].attempts == 1 && waiting[0].last_error.is_some());
    ensure!(
        waiting[0].next_attempt_at.is_some(),
        "the failed event waits for its own next attempt"
    );

    wait_for(Duration::from_secs(10), "the retry", || async {
        let _ = relay.relay_once().await;
        (outbox.pending(&db).await.ok() == Some(0)).then_some(())
    })
    .await?;
    let by_key = consume(bus.as_ref(), t, 3).await?;
    ensure!(by_key.values().map(Vec::len).sum::<usize>() == 3);
    let mut sub = bus.subscribe(&unique("group"), &[t]).await?;
    let mut total = 0;
    while sub.next(Duration::from_millis(300)).await?.is_some() {
        total += 1;
    }
    ensure!(total == 3, "each event published once, got {total}");
    Ok(())
}

/// The real bus, except that messages keyed `flaky` fail (as if timed out)
/// until the test releases them.
struct RefusingKey {
    inner: Arc<dyn EventBus>,
    released: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EventBus for RefusingKey {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<(), pinhole_bus::BusError> {
        self.inner.ensure_topics(topics).await
    }
    async fn publish(
        &self,
        messages: &[pinhole_bus::Message<'_>],
    ) -> Vec<Result<pinhole_bus::Position, pinhole_bus::BusError>> {
        let refuse = !self.released.load(std::sync::atomic::Ordering::SeqCst);
        let (refused, passed): (Vec<_>, Vec<_>) = messages
            .iter()
            .enumerate()
            .partition(|(_, m)| refuse && m.key == b"flaky");
        let published = self
            .inner
            .publish(&passed.iter().map(|(_, m)| **m).collect::<Vec<_>>())
            .await;
        let mut results: Vec<_> = (0..messages.len()).map(|_| None).collect();
        for ((i, _), result) in passed.iter().zip(published) {
            results[*i] = Some(result);
        }
        for (i, _) in refused {
            results[i] = Some(Err(pinhole_bus::BusError::Kafka(
                "Message timed out".into(),
            )));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| unreachable!()))
            .collect()
    }
    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn pinhole_bus::Subscription>, pinhole_bus::BusError> {
        self.inner.subscribe(group, topics).await
    }
    async fn check(&self) -> Result<(), pinhole_bus::BusError> {
        self.inner.check().await
    }
}

/// Reads from `sub` into `log` (key, event) until event `id` has arrived.
async fn receive_until(
    sub: &mut dyn pinhole_bus::Subscription,
    log: &mut Vec<(String, Envelope)>,
    id: uuid::Uuid,
    deadline: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !log.iter().any(|(_, e)| e.id == id) {
        ensure!(
            started.elapsed() < deadline,
            "event {id} not delivered within {deadline:?}"
        );
        if let Some(record) = sub.next(Duration::from_millis(100)).await? {
            let key = String::from_utf8(record.key.clone().unwrap_or_default())?;
            log.push((key, Envelope::from_json(&record.payload)?));
            sub.commit(&record).await?;
        }
    }
    Ok(())
}

/// One key whose events keep failing for a while does not slow the
/// others: they go out as soon as they are written (the relay does not
/// back off as a whole), while the failing key's events wait, in order.
async fn a_failing_key_does_not_hold_up_the_others(
    db: DatabaseConnection,
    inner: Arc<dyn EventBus>,
) -> anyhow::Result<()> {
    let t = topic();
    inner
        .ensure_topics(&[TopicSpec {
            name: t,
            partitions: 2,
        }])
        .await?;
    let bus = Arc::new(RefusingKey {
        inner: Arc::clone(&inner),
        released: std::sync::atomic::AtomicBool::new(false),
    });
    let outbox = Outbox::new();
    let relay = tokio::spawn(
        OutboxRelay::new(
            db.clone(),
            Arc::clone(&bus) as Arc<dyn EventBus>,
            outbox.clone(),
            RelayOptions::default(),
        )
        .run(),
    );
    // A consumer that has joined its group before anything is measured.
    let mut sub = inner.subscribe(&unique("group"), &[t]).await?;
    let mut log = Vec::new();
    let warm_up = event(t, "warm-up", 0);
    write(&db, &outbox, std::slice::from_ref(&warm_up)).await?;
    receive_until(
        sub.as_mut(),
        &mut log,
        warm_up.envelope.id,
        Duration::from_secs(60),
    )
    .await?;

    let flaky: Vec<OutgoingEvent> = (0..3).map(|n| event(t, "flaky", n)).collect();
    write(&db, &outbox, &flaky).await?;
    let first = flaky[0].envelope.id;
    wait_for(
        Duration::from_secs(30),
        "the flaky key to fail 4 times",
        || async {
            let rows = entity::Entity::find().all(&db).await.ok()?;
            rows.iter()
                .any(|r| r.event_id == first && r.attempts >= 4)
                .then_some(())
        },
    )
    .await?;

    // A relay that backed off as a whole would now sleep for seconds, more
    // with each failure of the flaky key.
    for n in 0..5 {
        let other = event(t, &format!("other-{n}"), n);
        let written = Instant::now();
        write(&db, &outbox, std::slice::from_ref(&other)).await?;
        receive_until(
            sub.as_mut(),
            &mut log,
            other.envelope.id,
            Duration::from_secs(10),
        )
        .await?;
        let took = written.elapsed();
        ensure!(
            took < Duration::from_secs(2),
            "other-{n} took {took:?} while another key failed"
        );
    }
    // The relay deletes a row after the broker acknowledged it, so the last
    // other event can be received a moment before its row is gone.
    wait_for(
        Duration::from_secs(10),
        "only the flaky key to wait",
        || async {
            let pending = entity::Entity::find().all(&db).await.ok()?;
            (pending.len() == 3 && pending.iter().all(|r| r.event_key == "flaky")).then_some(())
        },
    )
    .await?;

    bus.released
        .store(true, std::sync::atomic::Ordering::SeqCst);
    receive_until(
        sub.as_mut(),
        &mut log,
        flaky[2].envelope.id,
        Duration::from_secs(60),
    )
    .await?;
    let got: Vec<_> = log
        .iter()
        .filter(|(key, _)| key == "flaky")
        .map(|(_, e)| e.id)
        .collect();
    let expected: Vec<_> = flaky.iter().map(|e| e.envelope.id).collect();
    ensure!(
        got == expected,
        "the flaky key's events in order, once each"
    );
    wait_for(Duration::from_secs(10), "the outbox to empty", || async {
        (outbox.pending(&db).await.ok() == Some(0)).then_some(())
    })
    .await?;
    relay.abort();
    sub.close().await?;
    Ok(())
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn a_failing_key_does_not_hold_up_the_others() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let bus =
            EmbeddedLog::open(&dir.path().join("events.db"), EmbeddedOptions::default()).await?;
        super::a_failing_key_does_not_hold_up_the_others(sqlite(&dir).await?, Arc::new(bus)).await
    }

    #[tokio::test]
    async fn partial_failures_are_not_sent_twice() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        super::partial_failures_are_not_sent_twice(sqlite(&dir).await?).await
    }

    #[tokio::test]
    async fn refused_events_go_to_the_dead_letter_table() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let bus =
            EmbeddedLog::open(&dir.path().join("events.db"), EmbeddedOptions::default()).await?;
        // The embedded log refuses topics that were never created.
        let poison = |_| event(topic(), "k", 1);
        refused_events_are_buried(sqlite(&dir).await?, Arc::new(bus), poison).await
    }

    /// Transactions that read, then write, run side by side without
    /// `database is locked` failures.
    #[tokio::test]
    async fn concurrent_write_transactions_wait_their_turn() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = sqlite(&dir).await?;
        let outbox = Outbox::new();
        let t = topic();
        let mut tasks = Vec::new();
        for n in 0..16 {
            let (db, outbox) = (db.clone(), outbox.clone());
            tasks.push(tokio::spawn(async move {
                let txn = pinhole_db::begin_write(&db).await?;
                let seen = outbox.pending(&txn).await?;
                tokio::task::yield_now().await;
                outbox
                    .enqueue(&txn, &[event(t, &format!("k{n}"), seen as usize)])
                    .await?;
                txn.commit().await?;
                Ok::<_, sea_orm::DbErr>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        ensure!(outbox.pending(&db).await? == 16);
        Ok(())
    }

    #[tokio::test]
    async fn outbox_is_transactional() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        transactional(sqlite(&dir).await?).await
    }

    #[tokio::test]
    async fn relay_to_embedded_log_keeps_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let bus =
            EmbeddedLog::open(&dir.path().join("events.db"), EmbeddedOptions::default()).await?;
        relays_in_order(sqlite(&dir).await?, Arc::new(bus)).await
    }
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn a_failing_key_does_not_hold_up_the_others() -> anyhow::Result<()> {
        let mut options = KafkaOptions::new(pinhole_testkit::kafka_brokers());
        options.session_timeout = Duration::from_secs(4);
        super::a_failing_key_does_not_hold_up_the_others(
            postgres().await?,
            Arc::new(KafkaBus::new(options)?),
        )
        .await
    }

    #[tokio::test]
    async fn partial_failures_are_not_sent_twice() -> anyhow::Result<()> {
        super::partial_failures_are_not_sent_twice(postgres().await?).await
    }

    #[tokio::test]
    async fn refused_events_go_to_the_dead_letter_table() -> anyhow::Result<()> {
        let mut options = KafkaOptions::new(pinhole_testkit::kafka_brokers());
        options.session_timeout = Duration::from_secs(4);
        // Over the producer's message.max.bytes (1 MB).
        let poison = |t| {
            let mut poison = event(t, "k", 1);
            poison.envelope.data = serde_json::json!({ "blob": "x".repeat(2 * 1024 * 1024) });
            poison
        };
        refused_events_are_buried(postgres().await?, Arc::new(KafkaBus::new(options)?), poison)
            .await
    }

    /// A second transaction writing events for the same key waits until the
    /// first commits, so sequence order is commit order per key.
    #[tokio::test]
    async fn events_of_one_key_commit_in_sequence_order() -> anyhow::Result<()> {
        let db = postgres().await?;
        let outbox = Outbox::new();
        let t = topic();
        let first = db.begin().await?;
        outbox.enqueue(&first, &[event(t, "image-7", 1)]).await?;

        let (db2, outbox2) = (db.clone(), outbox.clone());
        let second = tokio::spawn(async move {
            let txn = db2.begin().await?;
            outbox2.enqueue(&txn, &[event(t, "image-7", 2)]).await?;
            txn.commit().await?;
            Ok::<_, sea_orm::DbErr>(())
        });
        // Another key is not held up.
        let other = db.begin().await?;
        outbox.enqueue(&other, &[event(t, "image-8", 3)]).await?;
        other.commit().await?;

        wait_for(Duration::from_secs(10), "the second writer to wait on its key", || async {
            let waiting = db
                .query_one(Statement::from_string(
                    DatabaseBackend::Postgres,
                    "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                ))
                .await
                .ok()??
                .try_get::<i64>("", "n")
                .ok()?;
            (waiting == 1).then_some(())
        })
        .await?;
        ensure!(
            !second.is_finished(),
            "the same key waits for the first transaction"
        );
        first.commit().await?;
        tokio::time::timeout(Duration::from_secs(10), second).await???;

        let rows = entity::Entity::find().all(&db).await?;
        let seq_of = |n: i64| {
            rows.iter()
                .find(|r| r.payload.contains(&format!("\"n\":{n}")))
                .map(|r| r.seq)
        };
        ensure!(seq_of(1) < seq_of(2), "{rows:?}");
        Ok(())
    }

    #[tokio::test]
    async fn outbox_is_transactional() -> anyhow::Result<()> {
        transactional(postgres().await?).await
    }

    #[tokio::test]
    async fn relay_to_kafka_keeps_order() -> anyhow::Result<()> {
        let mut options = KafkaOptions::new(pinhole_testkit::kafka_brokers());
        options.session_timeout = Duration::from_secs(4);
        relays_in_order(postgres().await?, Arc::new(KafkaBus::new(options)?)).await
    }

    /// Writes succeed while the broker is down; their events arrive once it
    /// is back.
    #[tokio::test]
    async fn writes_succeed_while_the_bus_is_down_and_arrive_later() -> anyhow::Result<()> {
        let db = postgres().await?;
        let port = pinhole_testkit::free_port()?;
        let mut options = KafkaOptions::new(format!("127.0.0.1:{port}"));
        options.message_timeout = Duration::from_secs(2);
        options.session_timeout = Duration::from_secs(4);
        let bus: Arc<dyn EventBus> = Arc::new(KafkaBus::new(options)?);
        let outbox = Outbox::new();
        let relay = OutboxRelay::new(
            db.clone(),
            Arc::clone(&bus),
            outbox.clone(),
            RelayOptions::default(),
        );

        let t = "pinhole.images";
        let events: Vec<OutgoingEvent> = (0..5).map(|n| event(t, "image-1", n)).collect();
        write(&db, &outbox, &events)
            .await
            .context("writes with the bus down")?;
        ensure!(relay.relay_once().await.is_err(), "the bus is down");
        ensure!(
            outbox.pending(&db).await? == 5,
            "nothing is dropped while the bus is down"
        );

        // The broker comes up; the relay delivers what waited.
        let broker = Broker::start(port).await?;
        bus.ensure_topics(&[TopicSpec {
            name: t,
            partitions: 2,
        }])
        .await?;
        let running = tokio::spawn(relay.run());
        let by_key = consume(bus.as_ref(), t, 5).await?;
        let got: Vec<_> = by_key["image-1"].iter().map(|e| e.id).collect();
        ensure!(got == events.iter().map(|e| e.envelope.id).collect::<Vec<_>>());
        wait_for(Duration::from_secs(10), "the outbox to empty", || async {
            (outbox.pending(&db).await.ok() == Some(0)).then_some(())
        })
        .await?;
        running.abort();
        drop(broker);
        Ok(())
    }
}
