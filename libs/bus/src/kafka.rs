//! Kafka (any Kafka-protocol broker) through rdkafka.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{BusError, EventBus, Message, Position, Record, Subscription, TopicSpec};

#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `host:port,host:port`.
    pub brokers: String,
    /// Consumer group session timeout: how long a silent member keeps its
    /// partitions. Short in tests (about 6 s), or group joins crawl.
    pub session_timeout: Duration,
    /// How long the producer keeps trying to deliver one message.
    pub message_timeout: Duration,
}

impl KafkaOptions {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            session_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(30),
        }
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
        let session = self.options.session_timeout;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("session.timeout.ms", millis(session))
            .set("heartbeat.interval.ms", millis(session / 4))
            .set("enable.partition.eof", "false")
            .create()
            .map_err(kafka)?;
        consumer.subscribe(topics).map_err(kafka)?;
        Ok(Box::new(KafkaSubscription {
            consumer: Some(Arc::new(consumer)),
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        self.topic_names(Duration::from_secs(3)).await.map(|_| ())
    }
}

struct KafkaSubscription {
    /// `None` once closed.
    consumer: Option<Arc<StreamConsumer>>,
}

impl KafkaSubscription {
    fn consumer(&self) -> Result<&Arc<StreamConsumer>, BusError> {
        self.consumer
            .as_ref()
            .ok_or_else(|| BusError::Kafka("the subscription is closed".into()))
    }
}

impl Drop for KafkaSubscription {
    /// A subscription dropped without `close` (its consumer task aborted, a
    /// server stopped): librdkafka leaves the group on a thread of its own,
    /// since that blocks until the group has taken the partitions back and
    /// must not hold a runtime worker meanwhile.
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            std::thread::spawn(move || {
                consumer.unsubscribe();
                drop(consumer);
            });
        }
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        match tokio::time::timeout(timeout, self.consumer()?.recv()).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => Err(kafka(e)),
            Ok(Ok(message)) => Ok(Some(Record {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().unwrap_or_default().to_vec(),
            })),
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

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        // Leaving the group blocks while librdkafka says goodbye.
        let Some(consumer) = self.consumer.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            consumer.unsubscribe();
            drop(consumer);
        })
        .await
        .map_err(|e| BusError::Kafka(e.to_string()))
    }
}
