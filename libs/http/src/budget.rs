//! Limits shared by the requests of one process: the byte budget for whole
//! bodies held in memory, and single-flight locks per key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{StatusCode, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{ApiError, Common};

/// The budget is counted in KiB, so that one reservation fits a `u32`.
const UNIT: u64 = 1024;

/// How long a request waits for its share before it is answered 503.
pub const BUDGET_WAIT: Duration = Duration::from_secs(20);

/// Bytes of whole bodies (uploads, originals, joined tus parts) held in
/// memory at once by this process. A body larger than the whole budget
/// takes all of it, so it waits until it is alone instead of never fitting.
#[derive(Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total: u32,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Reserved {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let total = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        Self {
            units: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Reserves `bytes`, waiting at most `wait`; then answers 503
    /// `server-busy` with `Retry-After`.
    pub async fn reserve(&self, bytes: u64, wait: Duration) -> Result<Reserved, ApiError> {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        let acquire = Arc::clone(&self.units).acquire_many_owned(units);
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reserved { _permit: permit }),
            Ok(Err(closed)) => Err(ApiError::internal(closed)),
            Err(_) => {
                metrics::counter!("pinhole_memory_budget_refusals_total").increment(1);
                Err(busy(
                    "the server is holding as much data in memory as it may",
                ))
            }
        }
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }
}

/// 503 `server-busy` with `Retry-After`: full now, not broken.
pub fn busy(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Common::ServerBusy,
        format!("{why}; try again in a few seconds"),
    )
    .with_header(header::RETRY_AFTER, "5")
}

/// One async lock per key, kept only while someone holds or waits for it:
/// concurrent requests for the same work take turns, and the later ones
/// find the work done.
#[derive(Default)]
pub struct KeyedLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// Holds a key's lock; forgets the key when no one else wants it.
pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = Arc::clone(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key.to_owned())
                .or_default(),
        );
        KeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.locks.0.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        // Only the map's own reference left: no one is waiting.
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_budget_refuses_after_the_wait_and_frees_on_drop() {
        let budget = MemoryBudget::new(10 * 1024 * 1024);
        let big = budget
            .reserve(8 * 1024 * 1024, Duration::from_millis(10))
            .await
            .expect("fits");
        let refused = budget
            .reserve(4 * 1024 * 1024, Duration::from_millis(10))
            .await
            .expect_err("does not fit beside the first");
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code, "server-busy");
        drop(big);
        assert_eq!(budget.available(), 10 * 1024 * 1024);
        // Larger than the whole budget: takes all of it.
        let all = budget
            .reserve(1 << 40, Duration::from_millis(10))
            .await
            .expect("alone, it fits");
        assert_eq!(budget.available(), 0);
        drop(all);
    }

    #[tokio::test]
    async fn keyed_locks_take_turns_per_key_and_forget_free_keys() {
        let locks = KeyedLocks::default();
        let a = locks.lock("a").await;
        let _b = locks.lock("b").await;
        assert!(
            tokio::time::timeout(Duration::from_millis(20), locks.lock("a"))
                .await
                .is_err(),
            "a second holder of `a` waits"
        );
        drop(a);
        drop(locks.lock("a").await);
        assert_eq!(locks.0.lock().expect("lock").len(), 1, "only `b` is held");
    }
}
