//! A bus whose topics and consumer groups all carry a prefix, so that
//! several deployments (or test runs) can share one Kafka cluster without
//! seeing each other's events.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    BusError, EventBus, Message, Offsets, Position, Record, SharedBus, Subscription, TopicSpec,
};

/// Prefixes every topic and group of `inner` with `NAMESPACE.`.
pub struct Namespaced {
    inner: SharedBus,
    prefix: String,
}

impl Namespaced {
    pub fn new(inner: SharedBus, namespace: &str) -> Self {
        Self {
            inner,
            prefix: format!("{namespace}."),
        }
    }

    fn name(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }
}

struct Stripping {
    inner: Box<dyn Subscription>,
    prefix: String,
}

impl Stripping {
    fn outer(&self, mut record: Record) -> Record {
        if let Some(t) = record.topic.strip_prefix(&self.prefix) {
            record.topic = t.to_owned();
        }
        record
    }

    fn inner_record(&self, record: &Record) -> Record {
        let mut r = record.clone();
        r.topic = format!("{}{}", self.prefix, record.topic);
        r
    }
}

#[async_trait]
impl Subscription for Stripping {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        Ok(self.inner.next(timeout).await?.map(|r| self.outer(r)))
    }

    async fn commit(&mut self, record: &Record) -> Result<(), BusError> {
        let r = self.inner_record(record);
        self.inner.commit(&r).await
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        self.inner.close().await
    }
}

#[async_trait]
impl EventBus for Namespaced {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<(), BusError> {
        let names: Vec<String> = topics.iter().map(|t| self.name(t.name)).collect();
        let specs: Vec<TopicSpec<'_>> = topics
            .iter()
            .zip(&names)
            .map(|(t, name)| TopicSpec {
                name,
                partitions: t.partitions,
            })
            .collect();
        self.inner.ensure_topics(&specs).await
    }

    async fn publish(&self, messages: &[Message<'_>]) -> Vec<Result<Position, BusError>> {
        let names: Vec<String> = messages.iter().map(|m| self.name(m.topic)).collect();
        let renamed: Vec<Message<'_>> = messages
            .iter()
            .zip(&names)
            .map(|(m, topic)| Message {
                topic,
                key: m.key,
                payload: m.payload,
            })
            .collect();
        self.inner.publish(&renamed).await
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, BusError> {
        let names: Vec<String> = topics.iter().map(|t| self.name(t)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let inner = self.inner.subscribe(&self.name(group), &refs).await?;
        Ok(Box::new(Stripping {
            inner,
            prefix: self.prefix.clone(),
        }))
    }

    async fn assign(
        &self,
        group: &str,
        topics: &[&str],
        from: &Offsets,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let names: Vec<String> = topics.iter().map(|t| self.name(t)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let from: Offsets = from
            .iter()
            .map(|((topic, partition), offset)| ((self.name(topic), *partition), *offset))
            .collect();
        let inner = self.inner.assign(&self.name(group), &refs, &from).await?;
        Ok(Box::new(Stripping {
            inner,
            prefix: self.prefix.clone(),
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        self.inner.check().await
    }
}
