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
    EmbeddedLog, EmbeddedOptions, EventBus, KafkaBus, KafkaOptions, Message, Namespaced, Offsets,
    Position, Record, Subscription, TopicSpec,
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
                // Readers from `assign` look for new partitions all along
                // the tests: finding none must not disturb them.
                options.partition_refresh = Duration::from_millis(100);
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

/// Publishes `items` and returns where each one landed, with its payload.
async fn publish_at(
    bus: &dyn EventBus,
    topic: &str,
    items: &[(String, String)],
) -> anyhow::Result<Vec<(Position, String)>> {
    let messages: Vec<Message<'_>> = items
        .iter()
        .map(|(key, payload)| Message {
            topic,
            key: key.as_bytes(),
            payload: payload.as_bytes(),
        })
        .collect();
    let positions = bus.publish_all(&messages).await?;
    Ok(positions
        .into_iter()
        .zip(items.iter().map(|(_, p)| p.clone()))
        .collect())
}

/// `count` items with keys spread over the partitions.
fn items(prefix: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("key-{i}"), format!("{prefix}-{i}")))
        .collect()
}

/// What a reader saw, as (partition, offset, payload), checking on the way
/// that each record names `topic`, and that each partition came in order
/// and without repeats.
fn positions(topic: &str, records: &[Record]) -> anyhow::Result<BTreeSet<(i32, i64, String)>> {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for record in records {
        ensure!(record.topic == topic, "record of `{}`", record.topic);
        if let Some(before) = last.insert(record.partition, record.offset) {
            ensure!(
                record.offset > before,
                "partition {} went from {before} to {}",
                record.partition,
                record.offset
            );
        }
        seen.insert((record.partition, record.offset, text(record)));
    }
    Ok(seen)
}

fn expected(
    landed: &[(Position, String)],
    from: impl Fn(i32) -> Option<i64>,
) -> BTreeSet<(i32, i64, String)> {
    landed
        .iter()
        .filter(|(at, _)| at.offset >= from(at.partition).unwrap_or(i64::MIN))
        .map(|(at, payload)| (at.partition, at.offset, payload.clone()))
        .collect()
}

/// Offsets per partition, in order.
fn by_partition(landed: &[(Position, String)]) -> BTreeMap<i32, Vec<i64>> {
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (at, _) in landed {
        offsets.entry(at.partition).or_default().push(at.offset);
    }
    offsets
}

/// Reads `count` records, then checks that no more come.
async fn read_exactly(sub: &mut dyn Subscription, count: usize) -> anyhow::Result<Vec<Record>> {
    let records = read(sub, count, false).await?;
    if let Some(extra) = sub.next(Duration::from_millis(500)).await? {
        bail!("one record too many: {extra:?}");
    }
    Ok(records)
}

async fn assign_reads_from_given_offsets(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(3).await?;
    let landed = publish_at(bus.as_ref(), &topic, &items("old", 30)).await?;
    let offsets = by_partition(&landed);
    ensure!(
        offsets.len() == 3 && offsets.values().all(|o| o.len() >= 3),
        "keys spread over the 3 partitions: {offsets:?}"
    );
    // Partition 0 from its third record, partition 2 from its end, and
    // partition 1 (absent) from its beginning. Another topic's offset does
    // not matter.
    let mut from = Offsets::new();
    from.insert((topic.clone(), 0), offsets[&0][2]);
    from.insert(
        (topic.clone(), 2),
        offsets[&2].last().copied().unwrap_or(0) + 1,
    );
    from.insert((unique("other"), 1), 1000);
    let start = |partition: i32| from.get(&(topic.clone(), partition)).copied();

    let mut sub = bus.assign(&unique("group"), &[&topic], &from).await?;
    let want = expected(&landed, start);
    let got = positions(&topic, &read_exactly(sub.as_mut(), want.len()).await?)?;
    ensure!(got == want, "read {got:?}, expected {want:?}");

    // Published after the call: every partition's new records arrive.
    let later = publish_at(bus.as_ref(), &topic, &items("new", 30)).await?;
    ensure!(by_partition(&later).len() == 3);
    let got = positions(&topic, &read_exactly(sub.as_mut(), later.len()).await?)?;
    let want = expected(&later, |_| None);
    ensure!(got == want, "read {got:?}, expected {want:?}");
    sub.close().await?;
    Ok(())
}

async fn assign_readers_of_one_group_each_read_everything(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(2).await?;
    let group = unique("group");
    let before = publish_at(bus.as_ref(), &topic, &items("before", 10)).await?;
    let mut readers = Vec::new();
    for _ in 0..2 {
        readers.push(
            h.open()
                .await?
                .assign(&group, &[&topic], &Offsets::new())
                .await?,
        );
    }
    let after = publish_at(bus.as_ref(), &topic, &items("after", 10)).await?;
    let want = expected(&[before, after].concat(), |_| None);
    for reader in &mut readers {
        // Each commits as it goes; the other still gets everything.
        let records = read(reader.as_mut(), want.len(), true).await?;
        ensure!(reader.next(Duration::from_millis(500)).await?.is_none());
        let got = positions(&topic, &records)?;
        ensure!(got == want, "read {got:?}, expected {want:?}");
    }
    for reader in readers {
        reader.close().await?;
    }
    Ok(())
}

async fn assign_ignores_commits(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(2).await?;
    let group = unique("group");
    let landed = publish_at(bus.as_ref(), &topic, &items("x", 8)).await?;
    let want = expected(&landed, |_| None);

    let mut first = bus.assign(&group, &[&topic], &Offsets::new()).await?;
    let records = read(first.as_mut(), want.len(), true).await?;
    ensure!(positions(&topic, &records)? == want);
    first.close().await?;

    // A fresh reader with no offsets starts at the beginning all the same.
    let mut again = h
        .open()
        .await?
        .assign(&group, &[&topic], &Offsets::new())
        .await?;
    let got = positions(&topic, &read_exactly(again.as_mut(), want.len()).await?)?;
    ensure!(got == want, "read {got:?}, expected {want:?}");
    again.close().await?;

    // The commits were recorded under the group (what its lag is measured
    // from): a member of the group starts after them.
    let newer = publish_at(bus.as_ref(), &topic, &items("y", 3)).await?;
    let mut member = h.open().await?.subscribe(&group, &[&topic]).await?;
    let got = positions(&topic, &read_exactly(member.as_mut(), newer.len()).await?)?;
    ensure!(
        got == expected(&newer, |_| None),
        "the group resumed at {got:?}"
    );
    member.close().await?;
    Ok(())
}

async fn assign_through_a_namespace(h: Harness) -> anyhow::Result<()> {
    let bus: Arc<dyn EventBus> = Arc::new(Namespaced::new(h.open().await?, &unique("ns")));
    let topic = "photos";
    bus.ensure_topics(&[TopicSpec {
        name: topic,
        partitions: 2,
    }])
    .await?;
    let landed = publish_at(bus.as_ref(), topic, &items("p", 12)).await?;
    let offsets = by_partition(&landed);
    ensure!(offsets.len() == 2 && offsets.values().all(|o| o.len() >= 2));
    let mut from = Offsets::new();
    from.insert((topic.to_owned(), 1), offsets[&1][1]);

    let mut sub = bus.assign("search", &[topic], &from).await?;
    let want = expected(&landed, |p| from.get(&(topic.to_owned(), p)).copied());
    let records = read_exactly(sub.as_mut(), want.len()).await?;
    let got = positions(topic, &records)?;
    ensure!(got == want, "read {got:?}, expected {want:?}");
    for record in &records {
        sub.commit(record).await?;
    }
    sub.close().await?;
    Ok(())
}

async fn assign_refuses_unknown_topics(h: Harness) -> anyhow::Result<()> {
    let (bus, topic) = h.with_topic(1).await?;
    let missing = unique("missing");
    let result = bus
        .assign(&unique("group"), &[&topic, &missing], &Offsets::new())
        .await;
    ensure!(
        matches!(&result, Err(pinhole_bus::BusError::UnknownTopic(t)) if *t == missing),
        "assigning a topic that was never created fails: {:?}",
        result.err()
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
        assign_reads_from_given_offsets,
        assign_readers_of_one_group_each_read_everything,
        assign_ignores_commits,
        assign_through_a_namespace,
        assign_refuses_unknown_topics,
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
        assign_reads_from_given_offsets,
        assign_readers_of_one_group_each_read_everything,
        assign_ignores_commits,
        assign_through_a_namespace,
        assign_refuses_unknown_topics,
    );

    /// A partition added to a topic is read from its beginning, without a
    /// new call. (The embedded log never adds partitions to a topic.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "tansu 0.6 cannot add partitions (CreatePartitions: UnsupportedFeature); \
                run against Kafka with PINHOLE_TEST_KAFKA and --run-ignored"]
    async fn assign_picks_up_new_partitions() -> anyhow::Result<()> {
        use super::{DEADLINE, by_partition, expected, items, positions, publish_at, read_exactly};
        use anyhow::{anyhow, ensure};
        use pinhole_bus::{EventBus, KafkaBus, KafkaOptions, Offsets, TopicSpec};
        use pinhole_testkit::unique;
        use rdkafka::ClientConfig;
        use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
        use rdkafka::client::DefaultClientContext;
        use std::time::{Duration, Instant};

        let brokers = pinhole_testkit::kafka_brokers();
        let mut options = KafkaOptions::new(brokers.clone());
        options.partition_refresh = Duration::from_millis(500);
        let bus = KafkaBus::new(options.clone())?;
        let topic = unique("conformance");
        bus.ensure_topics(&[TopicSpec {
            name: &topic,
            partitions: 1,
        }])
        .await?;
        let mut sub = bus
            .assign(&unique("group"), &[&topic], &Offsets::new())
            .await?;

        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()?;
        let added = admin
            .create_partitions([&NewPartitions::new(&topic, 3)], &AdminOptions::new())
            .await?;
        for result in added {
            result.map_err(|(topic, code)| anyhow!("adding partitions to {topic}: {code}"))?;
        }
        // Through new producers until one knows of the new partitions.
        let started = Instant::now();
        let mut landed = Vec::new();
        while by_partition(&landed).len() < 3 {
            ensure!(
                started.elapsed() < DEADLINE,
                "never published to the new partitions"
            );
            let publisher = KafkaBus::new(options.clone())?;
            landed.extend(publish_at(&publisher, &topic, &items("x", 30)).await?);
        }
        let got = positions(&topic, &read_exactly(sub.as_mut(), landed.len()).await?)?;
        let want = expected(&landed, |_| None);
        ensure!(got == want, "read {got:?}, expected {want:?}");
        sub.close().await?;
        Ok(())
    }
}
