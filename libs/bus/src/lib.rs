//! The event bus: topics split into partitions, records ordered per key,
//! consumer groups with committed offsets, redelivery of what was not
//! committed.
//!
//! Two implementations keep those promises: [`EmbeddedLog`], a durable log in
//! a SQLite file for the all-in-one server, and [`KafkaBus`] for any
//! Kafka-protocol broker.

mod consume;
mod dead_letters;
mod embedded;
mod kafka;
mod namespace;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use consume::{DEAD_LETTERS, DEAD_LETTERS_TOTAL, HandleError, consume, consume_concurrently};
pub use dead_letters::{DeadLetterError, DeadLetters, ParkedRecord, Parking};
pub use embedded::{EmbeddedLog, EmbeddedOptions};
pub use kafka::{KafkaBus, KafkaOptions, wait_for_leaves};
pub use namespace::Namespaced;

/// A failure of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event log storage: {0}")]
    Storage(String),
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    /// The bus refused this message and always will (too large, invalid).
    #[error("message refused: {0}")]
    Rejected(String),
    /// The partition went to another member of the group; its records will
    /// be delivered there.
    #[error("partition {partition} of `{topic}` is no longer assigned to this consumer")]
    Revoked { topic: String, partition: i32 },
    /// This bus does not offer the operation (a test double, say).
    #[error("not supported by this bus: {0}")]
    Unsupported(&'static str),
}

impl BusError {
    /// Whether retrying the same message can never succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::UnknownTopic(_) | Self::Rejected(_) | Self::Unsupported(_)
        )
    }
}

/// A record read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// A record to publish.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub payload: &'a [u8],
}

/// Where a published record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// The next offset to read, per (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// A topic and its partition count.
#[derive(Debug, Clone, Copy)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: u32,
}

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// `embedded` or `kafka`.
    fn kind(&self) -> &'static str;

    /// Creates the topics that do not exist yet; existing ones are left as
    /// they are.
    async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<(), BusError>;

    /// Publishes the messages and returns, for each one in order, where it
    /// landed once the bus acknowledged it, or why it did not. Messages with
    /// the same topic and key keep their order. The embedded log refuses
    /// topics that were never created; a Kafka broker may create them, as
    /// its `auto.create.topics.enable` says.
    async fn publish(&self, messages: &[Message<'_>]) -> Vec<Result<Position, BusError>>;

    /// Publishes the messages; the first failure, if any, is the error.
    async fn publish_all(&self, messages: &[Message<'_>]) -> Result<Vec<Position>, BusError> {
        self.publish(messages).await.into_iter().collect()
    }

    /// Joins consumer group `group` on `topics`. Group members share the
    /// partitions; a new member starts after the group's committed offsets
    /// (or at the beginning of the topic).
    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// Reads every partition of `topics` without joining a group's balancing:
    /// each partition from `from[(topic, partition)]` (the next offset to read),
    /// or from its beginning when absent. Several readers with the same group
    /// each read everything. `Subscription::commit` only records the position
    /// under `group` for monitoring (lag); nothing is ever skipped because of it.
    /// Partitions created later are picked up (at least on the next call).
    ///
    /// For a consumer that keeps its offsets with its own state (in the same
    /// transaction or index commit), so that each record takes effect once.
    /// Both real buses implement it; the default, for test doubles that wrap
    /// one, refuses.
    async fn assign(
        &self,
        group: &str,
        topics: &[&str],
        from: &Offsets,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let _ = (group, topics, from);
        Err(BusError::Unsupported("assign"))
    }

    /// Whether the bus answers.
    async fn check(&self) -> Result<(), BusError>;
}

#[async_trait]
pub trait Subscription: Send {
    /// The next record for this member, waiting at most `timeout`.
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError>;

    /// Commits `record` and everything before it in its partition: the group
    /// will not see them again. On a subscription from
    /// [`EventBus::assign`], only records the position for monitoring.
    async fn commit(&mut self, record: &Record) -> Result<(), BusError>;

    /// Leaves the group at once so that others take over its partitions.
    /// Uncommitted records are delivered again to whoever takes over. (A
    /// subscription from [`EventBus::assign`] is in no group's balancing:
    /// it just stops.)
    async fn close(self: Box<Self>) -> Result<(), BusError>;
}

/// A shared handle to whichever bus is configured.
pub type SharedBus = Arc<dyn EventBus>;

/// The partition for `key` among `partitions`: FNV-1a, stable across
/// processes and versions.
pub(crate) fn partition_for(key: &[u8], partitions: u32) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The modulus is at most 256, so the result fits.
    i32::try_from(hash % u64::from(partitions.max(1))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::partition_for;

    #[test]
    fn keys_spread_over_partitions_and_stay_put() {
        let mut seen = [0usize; 4];
        for i in 0..400 {
            let key = format!("image-{i}");
            let p = partition_for(key.as_bytes(), 4);
            assert_eq!(p, partition_for(key.as_bytes(), 4));
            seen[usize::try_from(p).expect("non-negative")] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }
}
