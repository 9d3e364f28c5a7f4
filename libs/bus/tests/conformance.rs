//! The event bus conformance suite: the promises the roles rely on, checked
//! against the embedded log and against a real Kafka-protocol broker (tansu,
//! started by `infra/stack.sh up`). Test names say which backend ran.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use pinhole_bus::{
    EmbeddedLog, EmbeddedOptions, EventBus, KafkaBus, KafkaOptions, Message, Record, Subscription,
    TopicSpec,
};
use pinhole_testkit::unique;

/// Long enough for a Kafka group (re)join on a slow machine.
const DEADLINE: Duration = Duration::from_secs(60);

enum Harness {
    Embedded(tempfile::TempDir),
    Kafka(String),
}

impl Harness {
    fn embedded() -> anyhow::Result<Self> {
        Ok(Self::Embedded(tempfile::tempdir()?))
    }

    fn kafka() -> Self {
        Self::Kafka(pinhole_testkit::kafka_brokers())
    }

    fn log_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("events.db")
    }

    /// A new client of the same bus, as another process would open it.
    async fn open(&self) -> anyhow::Result<Arc<dyn EventBus>> {
        Ok(match self {
            Self::Embedded(dir) => {
                Arc::new(EmbeddedLog::open(&Self::log_path(dir), EmbeddedOptions::default()).await?)
            }
            Self::Kafka(brokers) => {
                let mut options = KafkaOptions::new(brokers.clone());
                options.session_timeout = Duration::from_secs(4);
                Arc::new(KafkaBus::new(options)?)
            }
        })
    }

    /// A bus with a fresh topic of `partitions` partitions.
    async fn with_topic(&self, partitions: u32) -> anyhow::Result<(Arc<dyn EventBus>, String)> {
        let bus = self.open().await?;
        let topic = unique("conformance");
        bus.ensure_topics(&[TopicSpec {
            name: &topic,
            partitions,
        }])
        .await?;
        Ok((bus, topic))
    }
}

async fn publish(
    bus: &dyn EventBus,
    topic: &str,
    items: &[(String, String)],
) -> anyhow::Result<()> {
    let messages: Vec<Message<'_>> = items
        .iter()
        .map(|(key, payload)| Message {
            topic,
            key: key.as_bytes(),
            payload: payload.as_bytes(),
        })
        .collect();
    bus.publish_all(&messages).await?;
    Ok(())
}

fn text(record: &Record) -> String {
    String::from_utf8_lossy(&record.payload).into_owned()
}

/// Reads `count` records, committing each; fails after `DEADLINE`.
async fn read(
    sub: &mut dyn Subscription,
    count: usize,
    commit: bool,
) -> anyhow::Result<Vec<Record>> {
    let started = Instant::now();
    let mut records = Vec::new();
    while records.len() < count {
        if started.elapsed() > DEADLINE {
            bail!(
                "got {} of {count} records within {DEADLINE:?}",
                records.len()
            );
        }
        if let Some(record) = sub.next(Duration::from_millis(500)).await? {
            if commit {
                sub.commit(&record).await?;
            }
            records.push(record);
        }
    }
    Ok(records)
}

async fn per_key_order(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(4).await?;
    let keys = 5;
    let rounds = 20;
    for chunk in 0..4 {
        let items: Vec<(String, String)> = (chunk * 5..chunk * 5 + 5)
            .flat_map(|round| (0..keys).map(move |k| (format!("key-{k}"), format!("{k}:{round}"))))
            .collect();
        publish(bus.as_ref(), &topic, &items).await?;
    }
    let mut sub = bus.subscribe(&unique("group"), &[&topic]).await?;
    let records = read(sub.as_mut(), keys * rounds, true).await?;
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for record in &records {
        let payload = text(record);
        let (key, round) = payload.split_once(':').context("payload shape")?;
        let key_bytes = record.key.clone().unwrap_or_default();
        ensure!(
            key_bytes == format!("key-{key}").into_bytes(),
            "key travels with the record"
        );
        seen.entry(key.to_owned()).or_default().push(round.parse()?);
    }
    ensure!(seen.len() == keys, "every key delivered: {seen:?}");
    for (key, order) in &seen {
        let expected: Vec<usize> = (0..rounds).collect();
        ensure!(*order == expected, "key {key} out of order: {order:?}");
    }
    sub.close().await?;
    Ok(())
}

async fn group_shares_partitions(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(4).await?;
    let group = unique("group");
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    let mut members = Vec::new();
    for member in 0..2 {
        let mut sub = h.open().await?.subscribe(&group, &[&topic]).await?;
        let (stop, tx) = (Arc::clone(&stop), tx.clone());
        members.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(record) = sub.next(Duration::from_millis(200)).await? {
                    sub.commit(&record).await?;
                    let _ = tx.send((member, text(&record)));
                }
            }
            sub.close().await?;
            Ok::<_, pinhole_bus::BusError>(())
        }));
    }
    drop(tx);

    // Keep publishing until both members have been given records.
    let started = Instant::now();
    let mut published = BTreeSet::new();
    let mut received: [BTreeSet<String>; 2] = [BTreeSet::new(), BTreeSet::new()];
    let mut batch = 0;
    while received.iter().any(BTreeSet::is_empty) {
        ensure!(
            started.elapsed() < DEADLINE,
            "both members never got records: {received:?}"
        );
        let items: Vec<(String, String)> = (0..8)
            .map(|i| (format!("key-{i}"), format!("{batch}-{i}")))
            .collect();
        publish(bus.as_ref(), &topic, &items).await?;
        published.extend(items.into_iter().map(|(_, p)| p));
        batch += 1;
        let pause = tokio::time::sleep(Duration::from_millis(250));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                Some((member, payload)) = rx.recv() => { received[member].insert(payload); }
                () = &mut pause => break,
            }
        }
    }
    // Everything published reaches one member or the other.
    while !published
        .iter()
        .all(|p| received.iter().any(|r| r.contains(p)))
    {
        ensure!(started.elapsed() < DEADLINE, "records were lost");
        if let Ok(Some((member, payload))) =
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
        {
            received[member].insert(payload);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for member in members {
        member.await??;
    }
    Ok(())
}

async fn redelivery_after_stop_without_commit(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(2).await?;
    let items: Vec<(String, String)> = (0..10).map(|i| ("one-key".into(), i.to_string())).collect();
    publish(bus.as_ref(), &topic, &items).await?;
    let group = unique("group");

    let mut first = h.open().await?.subscribe(&group, &[&topic]).await?;
    let records = read(first.as_mut(), 10, false).await?;
    ensure!(
        records.iter().map(text).collect::<Vec<_>>()
            == (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    // Work finished for the first four only, then the consumer stops.
    first.commit(&records[3]).await?;
    first.close().await?;

    let mut second = h.open().await?.subscribe(&group, &[&topic]).await?;
    let again = read(second.as_mut(), 6, true).await?;
    let payloads: Vec<String> = again.iter().map(text).collect();
    ensure!(
        payloads == (4..10).map(|i| i.to_string()).collect::<Vec<_>>(),
        "uncommitted records come again, committed ones do not: {payloads:?}"
    );
    second.close().await?;
    Ok(())
}

async fn nothing_lost_across_consumer_restart(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(3).await?;
    let group = unique("group");
    let before: Vec<(String, String)> = (0..5)
        .map(|i| ("k".into(), format!("before-{i}")))
        .collect();
    publish(bus.as_ref(), &topic, &before).await?;
    let mut sub = bus.subscribe(&group, &[&topic]).await?;
    read(sub.as_mut(), 5, true).await?;
    sub.close().await?;
    drop(bus);

    // Written while no consumer runs, through a new client.
    let bus = h.open().await?;
    let after: Vec<(String, String)> = (0..5).map(|i| ("k".into(), format!("after-{i}"))).collect();
    publish(bus.as_ref(), &topic, &after).await?;
    drop(bus);

    let mut restarted = h.open().await?.subscribe(&group, &[&topic]).await?;
    let records = read(restarted.as_mut(), 5, true).await?;
    let payloads: Vec<String> = records.iter().map(text).collect();
    ensure!(
        payloads == after.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        "the restarted consumer resumes after its commits: {payloads:?}"
    );
    ensure!(
        restarted.next(Duration::from_millis(500)).await?.is_none(),
        "nothing beyond what was published"
    );
    restarted.close().await?;
    Ok(())
}

async fn creating_a_topic_again_changes_nothing(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(3).await?;
    bus.ensure_topics(&[TopicSpec {
        name: &topic,
        partitions: 8,
    }])
    .await?;
    let keys: Vec<String> = (0..64).map(|i| format!("key-{i}")).collect();
    let messages: Vec<Message<'_>> = keys
        .iter()
        .map(|k| Message {
            topic: &topic,
            key: k.as_bytes(),
            payload: b"x",
        })
        .collect();
    let positions = bus.publish_all(&messages).await?;
    let partitions: BTreeSet<i32> = positions.iter().map(|p| p.partition).collect();
    ensure!(
        partitions == BTreeSet::from([0, 1, 2]),
        "keys spread over the original 3 partitions: {partitions:?}"
    );
    Ok(())
}

/// Embedded only: whether a Kafka broker creates topics on first produce is
/// the broker's `auto.create.topics.enable` (tansu does).
async fn unknown_topics_are_refused(h: Harness) -> anyhow::Result<()> {
    let bus = h.open().await?;
    let topic = unique("missing");
    let result = bus
        .publish_all(&[Message {
            topic: &topic,
            key: b"k",
            payload: b"p",
        }])
        .await;
    ensure!(
        result.is_err(),
        "publishing to a topic that was never created fails"
    );
    Ok(())
}

macro_rules! conformance {
    ($harness:expr, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> anyhow::Result<()> {
                super::$name($harness).await
            }
        )*
    };
}

mod embedded {
    use super::Harness;
    conformance!(
        Harness::embedded()?,
        per_key_order,
        group_shares_partitions,
        redelivery_after_stop_without_commit,
        nothing_lost_across_consumer_restart,
        creating_a_topic_again_changes_nothing,
        unknown_topics_are_refused,
    );

    /// A member that stops polling without leaving hands its partitions over
    /// once its lease runs out, and can no longer commit in them.
    #[tokio::test]
    async fn a_stalled_member_loses_its_partitions() -> anyhow::Result<()> {
        use pinhole_bus::{BusError, EmbeddedLog, EmbeddedOptions, EventBus, Message, TopicSpec};
        use std::time::Duration;
        let dir = tempfile::tempdir()?;
        let options = EmbeddedOptions {
            session_timeout: Duration::from_millis(600),
            max_poll_interval: Duration::from_millis(800),
            ..EmbeddedOptions::default()
        };
        let log = EmbeddedLog::open(&dir.path().join("e.db"), options).await?;
        log.ensure_topics(&[TopicSpec {
            name: "t",
            partitions: 1,
        }])
        .await?;
        log.publish_all(&[Message {
            topic: "t",
            key: b"k",
            payload: b"x",
        }])
        .await?;
        let mut stalled = log.subscribe("g", &["t"]).await?;
        let first = stalled.next(Duration::from_secs(5)).await?;
        anyhow::ensure!(first.is_some());

        // While the first member holds the lease, a second one gets nothing.
        let mut heir = log.subscribe("g", &["t"]).await?;
        anyhow::ensure!(heir.next(Duration::from_millis(300)).await?.is_none());

        // The first member never polls, commits or leaves again.
        let record = heir.next(Duration::from_secs(10)).await?;
        anyhow::ensure!(record.as_ref().map(|r| r.payload.clone()) == Some(b"x".to_vec()));
        let late = stalled
            .commit(&first.unwrap_or_else(|| unreachable!()))
            .await;
        anyhow::ensure!(
            matches!(late, Err(BusError::Revoked { .. })),
            "a member that lost the partition cannot commit: {late:?}"
        );
        heir.commit(&record.unwrap_or_else(|| unreachable!()))
            .await?;
        Ok(())
    }
}

mod kafka {
    use super::Harness;
    conformance!(
        Harness::kafka(),
        per_key_order,
        group_shares_partitions,
        redelivery_after_stop_without_commit,
        nothing_lost_across_consumer_restart,
        creating_a_topic_again_changes_nothing,
    );
}
