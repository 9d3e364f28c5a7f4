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
use sea_orm::{ActiveValue, DatabaseConnection, EntityTrait, SqlErr, TransactionTrait};

async fn sqlite(dir: &tempfile::TempDir) -> anyhow::Result<DatabaseConnection> {
    let db = pinhole_db::connect(&DatabaseUrl::Sqlite(dir.path().join("db/pinhole.db"))).await?;
    pinhole_db::migrate(&db).await?;
    Ok(db)
}

async fn postgres() -> anyhow::Result<DatabaseConnection> {
    let url = pinhole_testkit::fresh_postgres().await?;
    let db = pinhole_db::connect(&DatabaseUrl::Postgres(url)).await?;
    pinhole_db::migrate(&db).await?;
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
    pinhole_db::migrate(&db).await?;
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

mod sqlite {
    use super::*;

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
