//! Dead letters: where a consumer parks the records it cannot handle, so
//! that one bad record never stalls its partition, and from where an
//! operator sends them back to the consumer's handler.
//!
//! The store is a trait so that this crate does not depend on the database;
//! `pinhole_db::dead_letters` implements it over sea-orm.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::Record;

/// The dead-letter store failed (the database is down, say).
#[derive(Debug, thiserror::Error)]
#[error("dead letters: {0}")]
pub struct DeadLetterError(pub String);

/// A record that was parked, as handed back for a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRecord {
    pub id: i64,
    pub record: Record,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub error: String,
}

/// Records a consumer group could not handle.
#[async_trait]
pub trait DeadLetters: Send + Sync + 'static {
    /// Parks `record`, which `group` failed to handle `attempts` times, the
    /// last time because of `error`. Parking the same record again (a
    /// redelivery after a rebalance) updates it instead of adding a copy.
    async fn park(
        &self,
        group: &str,
        record: &Record,
        error: &str,
        attempts: u32,
    ) -> Result<(), DeadLetterError>;

    /// Claims up to `limit` records of `group` that were marked for retry:
    /// each is handed to one caller only, and is no longer marked.
    async fn take_retries(
        &self,
        group: &str,
        limit: u64,
    ) -> Result<Vec<ParkedRecord>, DeadLetterError>;

    /// A retried record was handled: it is removed.
    async fn resolve(&self, id: i64) -> Result<(), DeadLetterError>;

    /// A retried record failed again: it stays parked with the new `error`
    /// and `attempts`.
    async fn fail_again(&self, id: i64, error: &str, attempts: u32) -> Result<(), DeadLetterError>;

    /// How many records of `group` are parked.
    async fn count(&self, group: &str) -> Result<u64, DeadLetterError>;
}

/// When a consumer parks a record and where.
#[derive(Clone)]
pub struct Parking {
    pub store: Arc<dyn DeadLetters>,
    /// Failed attempts in a row after which a record is parked (at least 1).
    pub max_attempts: u32,
    /// How often the consumer looks for parked records marked for retry
    /// (and refreshes the parked-records gauge).
    pub retry_check: Duration,
}

impl Parking {
    /// Parks in `store` after `max_attempts` failures, looking for retries
    /// every few seconds.
    pub fn new(store: Arc<dyn DeadLetters>, max_attempts: u32) -> Self {
        Self {
            store,
            max_attempts: max_attempts.max(1),
            retry_check: Duration::from_secs(3),
        }
    }
}

impl std::fmt::Debug for Parking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parking")
            .field("max_attempts", &self.max_attempts)
            .field("retry_check", &self.retry_check)
            .finish_non_exhaustive()
    }
}
