//! A consumer loop: joins a group, hands each record to a handler, commits
//! what was handled, and keeps going through bus outages. A record that
//! cannot be handled is parked as a dead letter (see [`Parking`]) instead of
//! stalling its partition, and parked records marked for retry are handed
//! to the handler again.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::dead_letters::Parking;
use crate::{BusError, Record, SharedBus};

/// What a handler says about a record it could not handle.
#[derive(Debug)]
pub enum HandleError {
    /// Worth retrying (a backend was down): the record is offered again, up
    /// to the parking policy's attempts, then parked.
    Retry(String),
    /// Never going to work (a malformed payload): parked at once.
    Skip(String),
}

impl<E: std::fmt::Display> From<E> for HandleError
where
    E: std::error::Error,
{
    fn from(e: E) -> Self {
        Self::Retry(e.to_string())
    }
}

const POLL: Duration = Duration::from_millis(500);
/// Longest wait between two attempts at one record (0.2 s doubling: eight
/// attempts take about 25 s, so a short outage parks nothing).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait between two attempts to join the group.
const MAX_JOIN_BACKOFF: Duration = Duration::from_secs(10);
/// Parked records retried per check, so that a long retry list does not
/// keep the consumer from polling its partitions.
const RETRY_BATCH: u64 = 32;

/// Counter of records parked, by group and topic.
pub const DEAD_LETTERS_TOTAL: &str = "pinhole_events_dead_letters_total";
/// Gauge of records parked now, by group.
pub const DEAD_LETTERS: &str = "pinhole_events_dead_letters";

/// Consumes `topics` as a member of `group` until the task is dropped or
/// aborted, calling `handle` for each record in order and committing it once
/// handled (at-least-once: a record whose handling was cut short is offered
/// again, here or to another member).
///
/// A record the handler skips, or fails `parking.max_attempts` times in a
/// row, is parked in `parking.store` with its error and committed, so the
/// records after it flow. While parking fails too, the record is retried as
/// before and never committed. Every `parking.retry_check`, the records of
/// this group marked for retry are handed to `handle` once more: removed
/// when handled, parked again with the new error otherwise.
pub async fn consume<F, Fut>(
    bus: SharedBus,
    group: String,
    topics: Vec<&'static str>,
    parking: Parking,
    handle: F,
) where
    F: Fn(Record) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    // Shown at zero from the start, so that a rate over it is defined.
    for topic in &topics {
        metrics::counter!(DEAD_LETTERS_TOTAL, "group" => group.clone(), "topic" => *topic)
            .increment(0);
    }
    let mut backoff = Duration::from_millis(200);
    let mut next_check = Instant::now();
    loop {
        let mut sub = match bus.subscribe(&group, &topics).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot join consumer group; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_JOIN_BACKOFF);
                continue;
            }
        };
        loop {
            if Instant::now() >= next_check {
                retry_parked(&parking, &group, &handle).await;
                next_check = Instant::now() + parking.retry_check;
            }
            let record = match sub.next(POLL).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%group, error = %e, "consuming failed; joining again");
                    break;
                }
            };
            backoff = Duration::from_millis(200);
            let mut attempts: u32 = 0;
            loop {
                attempts = attempts.saturating_add(1);
                let (reason, hopeless) = match handle(record.clone()).await {
                    Ok(()) => break,
                    Err(HandleError::Skip(reason)) => (reason, true),
                    Err(HandleError::Retry(reason)) => (reason, false),
                };
                if hopeless || attempts >= parking.max_attempts {
                    match park(&parking, &group, &record, &reason, attempts).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::error!(%group, topic = %record.topic,
                                partition = record.partition, offset = record.offset,
                                %reason, error = %e,
                                "cannot park a record that cannot be handled; retrying it");
                        }
                    }
                } else {
                    tracing::warn!(%group, topic = %record.topic, partition = record.partition,
                        offset = record.offset, attempts, %reason, "handling failed; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            match sub.commit(&record).await {
                Ok(()) => {}
                Err(BusError::Revoked { .. }) => {
                    // Another member owns the partition now and will see the
                    // record again; handlers are idempotent.
                    break;
                }
                Err(e) => {
                    tracing::warn!(%group, error = %e, "commit failed; joining again");
                    break;
                }
            }
        }
        let _ = sub.close().await;
    }
}

/// Parks `record` and counts it.
async fn park(
    parking: &Parking,
    group: &str,
    record: &Record,
    reason: &str,
    attempts: u32,
) -> Result<(), crate::DeadLetterError> {
    parking.store.park(group, record, reason, attempts).await?;
    tracing::error!(%group, topic = %record.topic, partition = record.partition,
        offset = record.offset, attempts, %reason,
        "record parked as a dead letter; `pinhole events dead retry` hands it back");
    metrics::counter!(DEAD_LETTERS_TOTAL, "group" => group.to_owned(), "topic" => record.topic.clone())
        .increment(1);
    refresh_gauge(parking, group).await;
    Ok(())
}

async fn refresh_gauge(parking: &Parking, group: &str) {
    match parking.store.count(group).await {
        Ok(n) => metrics::gauge!(DEAD_LETTERS, "group" => group.to_owned()).set(n as f64),
        Err(e) => tracing::warn!(%group, error = %e, "cannot count parked records"),
    }
}

/// Hands the records of `group` marked for retry to `handle` once each.
async fn retry_parked<F, Fut>(parking: &Parking, group: &str, handle: &F)
where
    F: Fn(Record) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    let parked = match parking.store.take_retries(group, RETRY_BATCH).await {
        Ok(parked) => parked,
        Err(e) => {
            tracing::warn!(%group, error = %e, "cannot look for parked records to retry");
            return;
        }
    };
    for p in parked {
        let r = &p.record;
        let stored = match handle(p.record.clone()).await {
            Ok(()) => {
                tracing::info!(%group, dead_letter = p.id, topic = %r.topic,
                    partition = r.partition, offset = r.offset, "parked record handled on retry");
                parking.store.resolve(p.id).await
            }
            Err(HandleError::Retry(reason) | HandleError::Skip(reason)) => {
                let attempts = p.attempts.saturating_add(1);
                tracing::warn!(%group, dead_letter = p.id, topic = %r.topic,
                    partition = r.partition, offset = r.offset, attempts, %reason,
                    "parked record failed again on retry; it stays parked");
                parking.store.fail_again(p.id, &reason, attempts).await
            }
        };
        if let Err(e) = stored {
            tracing::warn!(%group, dead_letter = p.id, error = %e,
                "cannot record the outcome of a retry; the record stays parked");
        }
    }
    refresh_gauge(parking, group).await;
}
