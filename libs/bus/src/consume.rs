//! A consumer loop: joins a group, hands each record to a handler, commits
//! what was handled, and keeps going through bus outages. A record that
//! cannot be handled is parked as a dead letter (see [`Parking`]) instead of
//! stalling its partition, and parked records marked for retry are handed
//! to the handler again.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::dead_letters::Parking;
use crate::{BusError, Record, SharedBus, Subscription};

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
    count_from_zero(&group, &topics);
    let mut backoff = Duration::from_millis(200);
    let mut next_check = Instant::now();
    loop {
        let mut sub = join(&bus, &group, &topics, &mut backoff).await;
        loop {
            if Instant::now() >= next_check {
                retry_parked(&parking, &group, &handle).await;
                next_check = Instant::now() + parking.retry_check;
            }
            let record = match poll(sub.as_mut(), &group).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(()) => break,
            };
            backoff = Duration::from_millis(200);
            settle(&handle, &parking, &group, &record).await;
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

/// [`consume`], handling up to `limit` records at once (for handlers that
/// mostly wait, such as for a CPU slot shared by all of them): a record is
/// not held up behind a slow one of its partition. Records with the same
/// key are still handled one after the other, in order. A partition is
/// committed up to the first record still being handled, so a member that
/// stops (or loses the partition) leaves every record not yet handled to
/// be offered again.
pub async fn consume_concurrently<F, Fut>(
    bus: SharedBus,
    group: String,
    topics: Vec<&'static str>,
    parking: Parking,
    limit: usize,
    handle: F,
) where
    F: Fn(Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
{
    count_from_zero(&group, &topics);
    let handle = Arc::new(handle);
    let limit = limit.max(1);
    let mut backoff = Duration::from_millis(200);
    let mut next_check = Instant::now();
    loop {
        let mut sub = join(&bus, &group, &topics, &mut backoff).await;
        let mut running = JoinSet::new();
        let mut pending = Pending::default();
        'member: loop {
            if Instant::now() >= next_check {
                retry_parked(&parking, &group, handle.as_ref()).await;
                next_check = Instant::now() + parking.retry_check;
            }
            while let Some(done) = running.try_join_next() {
                pending.finish(settled(done));
            }
            for record in pending.committable() {
                if let Err(e) = sub.commit(&record).await {
                    if !matches!(e, BusError::Revoked { .. }) {
                        tracing::warn!(%group, error = %e, "commit failed; joining again");
                    }
                    break 'member;
                }
            }
            if running.len() >= limit {
                if let Some(done) = running.join_next().await {
                    pending.finish(settled(done));
                }
                continue;
            }
            let record = match poll(sub.as_mut(), &group).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(()) => break,
            };
            backoff = Duration::from_millis(200);
            // One record of a key at a time, in order.
            while pending.key_running(&record) {
                match running.join_next().await {
                    Some(done) => pending.finish(settled(done)),
                    None => break,
                }
            }
            pending.start(&record);
            let (handle, parking, group) = (Arc::clone(&handle), parking.clone(), group.clone());
            running.spawn(async move {
                settle(handle.as_ref(), &parking, &group, &record).await;
                record
            });
        }
        // Whatever is still being handled is offered again to whoever
        // takes the partitions over (handlers are idempotent).
        running.shutdown().await;
        let _ = sub.close().await;
    }
}

/// The record a handling task settled; a panic in the handler goes on
/// (as it would out of [`consume`]).
fn settled(done: Result<Record, tokio::task::JoinError>) -> Record {
    match done {
        Ok(record) => record,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only `shutdown` cancels, and nothing is awaited after it.
        Err(e) => unreachable!("a handling task was cancelled: {e}"),
    }
}

/// The records a member has taken and not committed yet.
#[derive(Default)]
struct Pending {
    /// By topic and partition, by offset: `None` while being handled, the
    /// record once settled.
    partitions: HashMap<(String, i32), BTreeMap<i64, Option<Record>>>,
    /// The keys of the records being handled, with how many.
    keys: HashMap<Vec<u8>, usize>,
}

impl Pending {
    fn start(&mut self, record: &Record) {
        self.partitions
            .entry((record.topic.clone(), record.partition))
            .or_default()
            .insert(record.offset, None);
        if let Some(key) = &record.key {
            *self.keys.entry(key.clone()).or_default() += 1;
        }
    }

    fn key_running(&self, record: &Record) -> bool {
        record
            .key
            .as_ref()
            .is_some_and(|key| self.keys.contains_key(key))
    }

    fn finish(&mut self, record: Record) {
        if let Some(key) = &record.key
            && let Some(n) = self.keys.get_mut(key)
        {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(key);
            }
        }
        if let Some(offsets) = self
            .partitions
            .get_mut(&(record.topic.clone(), record.partition))
            && let Some(slot) = offsets.get_mut(&record.offset)
        {
            *slot = Some(record);
        }
    }

    /// For each partition, the last record of its settled run from the
    /// first taken (committing it commits the run), removed from here.
    fn committable(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        for offsets in self.partitions.values_mut() {
            let mut last = None;
            while let Some(entry) = offsets.first_entry() {
                if entry.get().is_none() {
                    break;
                }
                last = entry.remove();
            }
            out.extend(last);
        }
        self.partitions.retain(|_, offsets| !offsets.is_empty());
        out
    }
}

/// Shows the parked-records counters at zero from the start, so that a
/// rate over them is defined.
fn count_from_zero(group: &str, topics: &[&'static str]) {
    for topic in topics {
        metrics::counter!(DEAD_LETTERS_TOTAL, "group" => group.to_owned(), "topic" => *topic)
            .increment(0);
    }
}

/// Joins `group`, retrying with a growing pause (`backoff`, which the
/// caller resets once records flow) until the bus takes the member.
async fn join(
    bus: &SharedBus,
    group: &str,
    topics: &[&'static str],
    backoff: &mut Duration,
) -> Box<dyn Subscription> {
    loop {
        match bus.subscribe(group, topics).await {
            Ok(sub) => return sub,
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot join consumer group; retrying");
                tokio::time::sleep(*backoff).await;
                *backoff = (*backoff * 2).min(MAX_JOIN_BACKOFF);
            }
        }
    }
}

/// The member's next record, if one comes within [`POLL`]; `Err` when
/// the member has to join again.
async fn poll(sub: &mut dyn Subscription, group: &str) -> Result<Option<Record>, ()> {
    sub.next(POLL).await.map_err(|e| {
        tracing::warn!(%group, error = %e, "consuming failed; joining again");
    })
}

/// Hands `record` to `handle` until it is handled or parked (retrying with
/// a growing pause in between; while parking fails, for ever).
async fn settle<F, Fut>(handle: &F, parking: &Parking, group: &str, record: &Record)
where
    F: Fn(Record) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    let mut backoff = Duration::from_millis(200);
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        let (reason, hopeless) = match handle(record.clone()).await {
            Ok(()) => return,
            Err(HandleError::Skip(reason)) => (reason, true),
            Err(HandleError::Retry(reason)) => (reason, false),
        };
        if hopeless || attempts >= parking.max_attempts {
            match park(parking, group, record, &reason, attempts).await {
                Ok(()) => return,
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
