//! A consumer loop: joins a group, hands each record to a handler, commits
//! what was handled, and keeps going through bus outages.

use std::future::Future;
use std::time::Duration;

use crate::{BusError, Record, SharedBus};

/// What a handler says about a record it could not handle.
#[derive(Debug)]
pub enum HandleError {
    /// Worth retrying (a backend was down): the record is offered again.
    Retry(String),
    /// Never going to work (a malformed payload): logged and skipped.
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
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Consumes `topics` as a member of `group` until the task is dropped or
/// aborted, calling `handle` for each record in order and committing it once
/// handled (at-least-once: a record whose handling was cut short is offered
/// again, here or to another member).
pub async fn consume<F, Fut>(bus: SharedBus, group: String, topics: Vec<&'static str>, handle: F)
where
    F: Fn(Record) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut sub = match bus.subscribe(&group, &topics).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot join consumer group; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        loop {
            let record = match sub.next(POLL).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%group, error = %e, "consuming failed; joining again");
                    break;
                }
            };
            backoff = Duration::from_millis(200);
            loop {
                match handle(record.clone()).await {
                    Ok(()) => break,
                    Err(HandleError::Skip(reason)) => {
                        tracing::error!(%group, topic = %record.topic, partition = record.partition,
                            offset = record.offset, %reason, "skipping a record that cannot be handled");
                        break;
                    }
                    Err(HandleError::Retry(reason)) => {
                        tracing::warn!(%group, topic = %record.topic, offset = record.offset,
                            %reason, "handling failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
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
