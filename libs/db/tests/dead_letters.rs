//! Consumers' dead letters: a record that cannot be handled is parked in the
//! database and its partition moves on; a retry hands it back. And the
//! concurrent consumer: records of one partition handled together, one key
//! at a time, commits held back by the first unfinished record. On SQLite
//! with the embedded log, and on a real Postgres with a real Kafka broker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::ensure;
use pinhole_bus::{
    DeadLetterError, DeadLetters, EmbeddedLog, EmbeddedOptions, EventBus, HandleError, KafkaBus,
    KafkaOptions, Message, ParkedRecord, Parking, Record, TopicSpec,
};
use pinhole_config::DatabaseUrl;
use pinhole_db::DeadLetterStore;
use pinhole_db::dead_letters::entity;
use pinhole_testkit::{unique, wait_for};
use sea_orm::DatabaseConnection;

const DEADLINE: Duration = Duration::from_secs(60);

async fn sqlite(dir: &tempfile::TempDir) -> anyhow::Result<DatabaseConnection> {
    let db = pinhole_db::connect(&DatabaseUrl::Sqlite(dir.path().join("pinhole.db"))).await?;
    pinhole_db::migrate(&db, &[]).await?;
    Ok(db)
}

async fn postgres() -> anyhow::Result<DatabaseConnection> {
    let url = pinhole_testkit::fresh_postgres().await?;
    let db = pinhole_db::connect(&DatabaseUrl::Postgres(url)).await?;
    pinhole_db::migrate(&db, &[]).await?;
    Ok(db)
}

fn kafka() -> anyhow::Result<Arc<dyn EventBus>> {
    let mut options = KafkaOptions::new(pinhole_testkit::kafka_brokers());
    options.session_timeout = Duration::from_secs(4);
    Ok(Arc::new(KafkaBus::new(options)?))
}

async fn embedded(dir: &tempfile::TempDir) -> anyhow::Result<Arc<dyn EventBus>> {
    let path = dir.path().join("events.db");
    Ok(Arc::new(
        EmbeddedLog::open(&path, EmbeddedOptions::default()).await?,
    ))
}

/// What `/metrics` would show: one Prometheus recorder for this test binary.
fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// A handler over payloads: `bad` fails (worth retrying) while `broken`,
/// `junk` is given up on at once; everything handled is recorded in order.
#[derive(Default)]
struct Handler {
    broken: AtomicBool,
    handled: Mutex<Vec<String>>,
    attempts: Mutex<BTreeMap<String, usize>>,
}

impl Handler {
    fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let payload = String::from_utf8_lossy(&record.payload).into_owned();
        *self
            .attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(payload.clone())
            .or_default() += 1;
        if payload == "bad" && self.broken.load(Ordering::SeqCst) {
            return Err(HandleError::Retry("the thumbnailer is broken".into()));
        }
        if payload == "junk" {
            return Err(HandleError::Skip("not an event".into()));
        }
        self.handled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(payload);
        Ok(())
    }

    fn handled(&self) -> Vec<String> {
        self.handled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn attempts(&self, payload: &str) -> usize {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(payload)
            .copied()
            .unwrap_or(0)
    }
}

/// A fresh one-partition topic holding `payloads` under one key, in order.
async fn topic_with(bus: &dyn EventBus, payloads: &[&str]) -> anyhow::Result<&'static str> {
    let topic: &'static str = Box::leak(unique("dead").into_boxed_str());
    bus.ensure_topics(&[TopicSpec {
        name: topic,
        partitions: 1,
    }])
    .await?;
    let messages: Vec<Message<'_>> = payloads
        .iter()
        .map(|p| Message {
            topic,
            key: b"image-1",
            payload: p.as_bytes(),
        })
        .collect();
    bus.publish_all(&messages).await?;
    Ok(topic)
}

fn spawn_consumer(
    bus: Arc<dyn EventBus>,
    group: &str,
    topic: &'static str,
    parking: Parking,
    handler: Arc<Handler>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(pinhole_bus::consume(
        bus,
        group.to_owned(),
        vec![topic],
        parking,
        move |record| {
            let handler = Arc::clone(&handler);
            async move { handler.handle(&record) }
        },
    ))
}

fn parking(store: Arc<dyn DeadLetters>) -> Parking {
    Parking {
        store,
        max_attempts: 3,
        retry_check: Duration::from_millis(200),
    }
}

/// The row of `payload` among `group`'s parked records.
async fn parked(
    store: &DeadLetterStore,
    group: &str,
    payload: &str,
) -> anyhow::Result<Option<entity::Model>> {
    Ok(store
        .list(Some(group))
        .await?
        .into_iter()
        .find(|r| r.payload == payload.as_bytes()))
}

/// A record that keeps failing is parked after its attempts with its error,
/// one the handler gives up on is parked at once, and the records after
/// them are handled; a retry while still broken keeps it parked with one
/// more attempt, a retry once fixed handles it and removes the row.
async fn failing_records_are_parked_and_retried(
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
) -> anyhow::Result<()> {
    metrics();
    let topic = topic_with(bus.as_ref(), &["r0", "bad", "r2", "junk", "r4"]).await?;
    let group = unique("group");
    let store = DeadLetterStore::new(db.clone());
    let handler = Arc::new(Handler::default());
    handler.broken.store(true, Ordering::SeqCst);
    let consumer = spawn_consumer(
        Arc::clone(&bus),
        &group,
        topic,
        parking(Arc::new(store.clone())),
        Arc::clone(&handler),
    );

    wait_for(DEADLINE, "the records after the failing ones", || async {
        (handler.handled() == ["r0", "r2", "r4"]).then_some(())
    })
    .await?;
    let bad = parked(&store, &group, "bad").await?;
    let bad = bad.ok_or_else(|| anyhow::anyhow!("`bad` was not parked"))?;
    ensure!(bad.attempts == 3 && handler.attempts("bad") == 3, "{bad:?}");
    ensure!(bad.error.contains("the thumbnailer is broken"), "{bad:?}");
    ensure!(bad.topic == topic && bad.partition == 0 && bad.offset == 1);
    ensure!(bad.key.as_deref() == Some(&b"image-1"[..]) && !bad.retry_requested);
    let junk = parked(&store, &group, "junk").await?;
    let junk = junk.ok_or_else(|| anyhow::anyhow!("`junk` was not parked"))?;
    ensure!(
        junk.attempts == 1 && junk.error.contains("not an event"),
        "{junk:?}"
    );
    ensure!(junk.offset == 3);

    // Counted in /metrics, by group and topic; the gauge counts the rows.
    let counter =
        format!("pinhole_events_dead_letters_total{{group=\"{group}\",topic=\"{topic}\"}} 2");
    let gauge = format!("pinhole_events_dead_letters{{group=\"{group}\"}} 2");
    wait_for(Duration::from_secs(10), "the metrics", || async {
        let text = metrics().render();
        (text.contains(&counter) && text.contains(&gauge)).then_some(())
    })
    .await?;

    // Retried while still broken: one more attempt, parked again.
    ensure!(store.request_retry(Some(&[bad.id]), Some(&group)).await? == 1);
    wait_for(DEADLINE, "the retry to fail again", || async {
        let row = parked(&store, &group, "bad").await.ok()??;
        (row.attempts == 4 && !row.retry_requested).then_some(())
    })
    .await?;
    ensure!(handler.attempts("bad") == 4);

    // Fixed: a retry of every parked record handles `bad` (row gone);
    // `junk` fails again and stays.
    handler.broken.store(false, Ordering::SeqCst);
    ensure!(store.request_retry(None, Some(&group)).await? == 2);
    wait_for(DEADLINE, "the retried record to be handled", || async {
        let gone = parked(&store, &group, "bad").await.ok()?.is_none();
        let junk = parked(&store, &group, "junk").await.ok()??;
        (gone && junk.attempts == 2 && !junk.retry_requested).then_some(())
    })
    .await?;
    ensure!(handler.handled() == ["r0", "r2", "r4", "bad"]);
    let gauge = format!("pinhole_events_dead_letters{{group=\"{group}\"}} 1");
    wait_for(Duration::from_secs(10), "the gauge", || async {
        metrics().render().contains(&gauge).then_some(())
    })
    .await?;
    consumer.abort();
    Ok(())
}

/// Another group's retries are not this group's.
async fn retries_belong_to_their_group(db: DatabaseConnection) -> anyhow::Result<()> {
    let store = DeadLetterStore::new(db);
    let record = |offset| Record {
        topic: "pinhole.images".into(),
        partition: 0,
        offset,
        key: None,
        payload: b"{}".to_vec(),
    };
    store.park("images", &record(1), "boom", 5).await?;
    store.park("thumbnails", &record(1), "boom", 5).await?;
    // Parking the same record again updates its row.
    store.park("images", &record(1), "boom again", 6).await?;
    let images = store.list(Some("images")).await?;
    ensure!(images.len() == 1 && images[0].attempts == 6 && images[0].error == "boom again");
    ensure!(images[0].key.is_none());

    ensure!(store.request_retry(None, None).await? == 2);
    let taken = store.take_retries("images", 10).await?;
    ensure!(
        taken.len() == 1 && taken[0].record == record(1),
        "{taken:?}"
    );
    ensure!(
        store.take_retries("images", 10).await?.is_empty(),
        "a row is taken once"
    );
    ensure!(store.take_retries("thumbnails", 10).await?.len() == 1);
    ensure!(store.count("images").await? == 1);
    Ok(())
}

/// The database, failing to park while `down`.
struct Flaky {
    inner: DeadLetterStore,
    down: AtomicBool,
    refused: AtomicUsize,
}

#[async_trait::async_trait]
impl DeadLetters for Flaky {
    async fn park(
        &self,
        group: &str,
        record: &Record,
        error: &str,
        attempts: u32,
    ) -> Result<(), DeadLetterError> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(DeadLetterError("connection refused".into()));
        }
        self.inner.park(group, record, error, attempts).await
    }
    async fn take_retries(
        &self,
        group: &str,
        limit: u64,
    ) -> Result<Vec<ParkedRecord>, DeadLetterError> {
        self.inner.take_retries(group, limit).await
    }
    async fn resolve(&self, id: i64) -> Result<(), DeadLetterError> {
        self.inner.resolve(id).await
    }
    async fn fail_again(&self, id: i64, error: &str, attempts: u32) -> Result<(), DeadLetterError> {
        self.inner.fail_again(id, error, attempts).await
    }
    async fn count(&self, group: &str) -> Result<u64, DeadLetterError> {
        self.inner.count(group).await
    }
}

/// While parking fails, the failing record is retried and never committed:
/// nothing after it is handled until it is parked.
async fn unparked_records_are_not_passed(
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
) -> anyhow::Result<()> {
    let topic = topic_with(bus.as_ref(), &["r0", "bad", "r2"]).await?;
    let group = unique("group");
    let store = Arc::new(Flaky {
        inner: DeadLetterStore::new(db),
        down: AtomicBool::new(true),
        refused: AtomicUsize::new(0),
    });
    let handler = Arc::new(Handler::default());
    handler.broken.store(true, Ordering::SeqCst);
    let consumer = spawn_consumer(
        Arc::clone(&bus),
        &group,
        topic,
        parking(Arc::clone(&store) as Arc<dyn DeadLetters>),
        Arc::clone(&handler),
    );
    wait_for(DEADLINE, "parking to fail twice", || async {
        (store.refused.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await?;
    ensure!(handler.handled() == ["r0"], "{:?}", handler.handled());
    ensure!(handler.attempts("bad") >= 4, "retried meanwhile");

    store.down.store(false, Ordering::SeqCst);
    wait_for(DEADLINE, "the record after it", || async {
        (handler.handled() == ["r0", "r2"]).then_some(())
    })
    .await?;
    ensure!(parked(&store.inner, &group, "bad").await?.is_some());
    consumer.abort();
    Ok(())
}

/// The concurrent consumer (limit 3) takes the records of one partition
/// together: three that each wait until all three have started all
/// finish. Two of one key go one after the other, in order. A record still
/// being handled when the consumer stops holds its partition's commit
/// back: it and the finished record after it come again to the next
/// member of the group, and nothing before it does.
async fn records_of_a_partition_are_handled_together(
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
) -> anyhow::Result<()> {
    let topic: &'static str = Box::leak(unique("together").into_boxed_str());
    bus.ensure_topics(&[TopicSpec {
        name: topic,
        partitions: 1,
    }])
    .await?;
    let records = [
        ("a", "wait-a"),
        ("b", "wait-b"),
        ("c", "wait-c"),
        ("k", "k-first"),
        ("k", "k-second"),
        ("h", "hang"),
        ("z", "after"),
    ];
    let messages: Vec<Message<'_>> = records
        .iter()
        .map(|(key, payload)| Message {
            topic,
            key: key.as_bytes(),
            payload: payload.as_bytes(),
        })
        .collect();
    bus.publish_all(&messages).await?;
    let group = unique("group");
    let dead = DeadLetterStore::new(db);
    let store: Arc<dyn DeadLetters> = Arc::new(dead.clone());
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let waiting = Arc::new(AtomicUsize::new(0));
    let note = |log: &Mutex<Vec<String>>, line: String| {
        log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    };
    let consumer = {
        let (log, waiting) = (Arc::clone(&log), Arc::clone(&waiting));
        tokio::spawn(pinhole_bus::consume_concurrently(
            Arc::clone(&bus),
            group.clone(),
            vec![topic],
            parking(Arc::clone(&store)),
            3,
            move |record| {
                let (log, waiting) = (Arc::clone(&log), Arc::clone(&waiting));
                async move {
                    let payload = String::from_utf8_lossy(&record.payload).into_owned();
                    note(&log, format!("start {payload}"));
                    if payload.starts_with("wait-") {
                        waiting.fetch_add(1, Ordering::SeqCst);
                        wait_for(DEADLINE, "three records handled at once", || async {
                            (waiting.load(Ordering::SeqCst) >= 3).then_some(())
                        })
                        .await
                        .map_err(|e| HandleError::Skip(e.to_string()))?;
                    } else if payload == "k-first" {
                        // Work that takes a while: k-second must not start
                        // meanwhile.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    } else if payload == "hang" {
                        std::future::pending::<()>().await;
                    }
                    note(&log, format!("end {payload}"));
                    Ok(())
                }
            },
        ))
    };
    let lines = || log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    wait_for(DEADLINE, "every record but the hanging one", || async {
        let lines = lines();
        ["wait-a", "wait-b", "wait-c", "k-first", "k-second", "after"]
            .iter()
            .all(|p| lines.contains(&format!("end {p}")))
            .then_some(())
    })
    .await?;
    let lines = lines();
    let at = |line: &str| lines.iter().position(|l| l == line);
    ensure!(
        at("end k-first") < at("start k-second"),
        "one key at a time: {lines:?}"
    );
    ensure!(at("start hang").is_some() && at("end hang").is_none());
    ensure!(dead.list(Some(&group)).await?.is_empty(), "nothing parked");
    consumer.abort();
    let _ = consumer.await;

    // The next member of the group gets what was not committed.
    let handler = Arc::new(Handler::default());
    let next = spawn_consumer(
        Arc::clone(&bus),
        &group,
        topic,
        parking(store),
        Arc::clone(&handler),
    );
    wait_for(DEADLINE, "the uncommitted records again", || async {
        (handler.handled().len() >= 2).then_some(())
    })
    .await?;
    ensure!(
        handler.handled() == ["hang", "after"],
        "{:?}",
        handler.handled()
    );
    next.abort();
    Ok(())
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn failing_records_are_parked_and_retried() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        super::failing_records_are_parked_and_retried(sqlite(&dir).await?, embedded(&dir).await?)
            .await
    }

    #[tokio::test]
    async fn retries_belong_to_their_group() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        super::retries_belong_to_their_group(sqlite(&dir).await?).await
    }

    #[tokio::test]
    async fn unparked_records_are_not_passed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        super::unparked_records_are_not_passed(sqlite(&dir).await?, embedded(&dir).await?).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_of_a_partition_are_handled_together() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        super::records_of_a_partition_are_handled_together(
            sqlite(&dir).await?,
            embedded(&dir).await?,
        )
        .await
    }
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn failing_records_are_parked_and_retried() -> anyhow::Result<()> {
        super::failing_records_are_parked_and_retried(postgres().await?, kafka()?).await
    }

    #[tokio::test]
    async fn retries_belong_to_their_group() -> anyhow::Result<()> {
        super::retries_belong_to_their_group(postgres().await?).await
    }

    #[tokio::test]
    async fn unparked_records_are_not_passed() -> anyhow::Result<()> {
        super::unparked_records_are_not_passed(postgres().await?, kafka()?).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_of_a_partition_are_handled_together() -> anyhow::Result<()> {
        super::records_of_a_partition_are_handled_together(postgres().await?, kafka()?).await
    }
}
