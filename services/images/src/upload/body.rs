//! Reading an upload's body so that no client can hold the server: the
//! bytes go to a spool file (memory holds one buffer a request, whatever
//! the body's size), at a minimum average rate and within a deadline, and
//! an account sends only a few uploads at once. Processing permits and the
//! memory budget are taken only once a body is complete.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

use axum::http::{StatusCode, header};
use bytes::{Bytes, BytesMut};
use pinhole_config::Settings;
use pinhole_http::{ApiError, AppContext};
use sha2::Digest;
use uuid::Uuid;

use crate::ImagesError;

/// The first seconds of a body are not held to the minimum rate (a
/// connection's slow start, a phone waking its radio).
pub const GRACE: Duration = Duration::from_secs(10);
/// How long a client may send nothing in the middle of a body.
pub const IDLE: Duration = Duration::from_secs(30);
/// Bytes gathered before one write to the spool file.
const BLOCK: usize = 1 << 20;

/// Why a body stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Slower than the minimum rate, or past the deadline.
    TooSlow,
    /// Nothing for [`IDLE`].
    Idle,
    /// The connection broke, or the body does not read (why).
    Broken(String),
}

impl Stop {
    pub fn why(&self) -> &str {
        match self {
            Stop::TooSlow => "the body arrived too slowly",
            Stop::Idle => "the client stopped sending",
            Stop::Broken(why) => why,
        }
    }

    /// 408 `upload-too-slow` for a slow body; `other` for the rest.
    pub fn into_error(self, settings: &Settings, other: impl FnOnce(Self) -> ApiError) -> ApiError {
        match self {
            Stop::TooSlow => too_slow(settings),
            s => other(s),
        }
    }
}

pub fn too_slow(settings: &Settings) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        ImagesError::UploadTooSlow,
        format!(
            "the body arrived more slowly than {} bytes a second, or took longer than {} s; \
             on a slow network, use resumable uploads (/api/v1/uploads), which keep what arrived",
            settings.upload_min_rate,
            settings.upload_deadline.as_secs()
        ),
    )
    .with_header(header::CONNECTION, "close")
}

/// The clock of one body: the rate it must keep and its deadline.
pub struct Pace {
    started: Instant,
    received: u64,
    min_rate: u64,
    deadline: Duration,
}

impl Pace {
    pub fn new(settings: &Settings) -> Self {
        Self {
            started: Instant::now(),
            received: 0,
            min_rate: settings.upload_min_rate.max(1),
            deadline: settings.upload_deadline,
        }
    }

    /// The longest the next piece may take: until the average rate falls
    /// below the minimum, the deadline, or [`IDLE`], whichever comes first.
    fn allowance(&self) -> Result<(Duration, Stop), Stop> {
        let keeps_rate =
            GRACE + Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        let until = keeps_rate.min(self.deadline);
        let left = until
            .checked_sub(self.started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or(Stop::TooSlow)?;
        Ok(if left < IDLE {
            (left, Stop::TooSlow)
        } else {
            (IDLE, Stop::Idle)
        })
    }

    /// Awaits the next piece of a body (a chunk, or multipart's next field)
    /// within the allowance; `Err` says why the body stopped.
    pub async fn next<T, E: std::fmt::Display>(
        &mut self,
        piece: impl Future<Output = Result<Option<T>, E>>,
        size: impl Fn(&T) -> usize,
    ) -> Result<Option<T>, Stop> {
        let (allowance, stop) = self.allowance()?;
        match tokio::time::timeout(allowance, piece).await {
            Err(_) => Err(stop),
            Ok(Err(e)) => Err(Stop::Broken(e.to_string())),
            Ok(Ok(Some(t))) => {
                self.received += size(&t) as u64;
                Ok(Some(t))
            }
            Ok(Ok(None)) => Ok(None),
        }
    }
}

/// A checksum computed as the bytes arrive (tus `Upload-Checksum`).
pub enum Checksum {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Checksum {
    pub fn of(algorithm: &str) -> Self {
        match algorithm {
            "sha1" => Checksum::Sha1(sha1::Sha1::new()),
            _ => Checksum::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Checksum::Sha1(h) => h.update(bytes),
            Checksum::Sha256(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Checksum::Sha1(h) => h.finalize().to_vec(),
            Checksum::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// A body being written to a file of the spool directory; the file is
/// removed when the [`Spooled`] it becomes (or this) is dropped.
pub struct Spool {
    file: Arc<std::fs::File>,
    path: tempfile::TempPath,
    pending: BytesMut,
    len: u64,
    checksum: Option<Checksum>,
    content: Option<sha2::Sha256>,
}

/// A complete body in the spool.
pub struct Spooled {
    path: tempfile::TempPath,
    pub len: u64,
    pub checksum: Option<Vec<u8>>,
    /// The SHA-256 of the whole body (hex), when asked for
    /// ([`Spool::hash_content`]).
    pub sha256: Option<String>,
}

/// Where bodies are spooled: `spool` in the data directory.
pub fn spool_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("spool")
}

impl Spool {
    pub async fn new(settings: &Settings, checksum: Option<Checksum>) -> Result<Self, ApiError> {
        let dir = spool_dir(settings);
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::NamedTempFile::with_prefix_in("body-", &dir)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(spool_failed)?;
        let (file, path) = file.into_parts();
        Ok(Self {
            file: Arc::new(file),
            path,
            pending: BytesMut::new(),
            len: 0,
            checksum,
            content: None,
        })
    }

    /// Also hashes the whole body (SHA-256) as it arrives, so that it is
    /// not read again for it.
    pub fn hash_content(mut self) -> Self {
        self.content = Some(sha2::Sha256::new());
        self
    }

    pub fn len(&self) -> u64 {
        self.len + self.pending.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        if let Some(c) = &mut self.checksum {
            c.update(chunk);
        }
        if let Some(h) = &mut self.content {
            h.update(chunk);
        }
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= BLOCK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is gathered, handing the block itself to the writing
    /// thread (no copy).
    async fn flush(&mut self) -> Result<(), ApiError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let block = self.pending.split().freeze();
        let len = block.len() as u64;
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || (&*file).write_all(&block))
            .await
            .map_err(ApiError::internal)?
            .map_err(spool_failed)?;
        self.len += len;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Spooled, ApiError> {
        self.flush().await?;
        Ok(Spooled {
            path: self.path,
            len: self.len,
            checksum: self.checksum.map(Checksum::finish),
            sha256: self.content.map(|h| hex::encode(h.finalize())),
        })
    }
}

impl Spooled {
    /// The spool file; it is removed when this is dropped.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole body in memory; the caller holds its share of the budget.
    pub async fn read(&self) -> Result<Bytes, ApiError> {
        tokio::fs::read(&self.path)
            .await
            .map(Bytes::from)
            .map_err(spool_failed)
    }

    /// The body as a stream, for the blob store.
    pub async fn stream(&self) -> Result<pinhole_blob::ByteStream, ApiError> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(spool_failed)?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        )))
    }
}

fn spool_failed(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("spooling an upload: {e}"))
}

/// Removes spooled bodies older than any request may live (left by a
/// crash); run at start.
pub fn clear_stale(settings: &Settings) {
    let dir = spool_dir(settings);
    let oldest = settings.upload_deadline + Duration::from_secs(600);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > oldest);
        if stale && is_spooled(&entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn is_spooled(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("body-"))
}

/// Uploads each account is sending now, in this process, and a signal
/// when one ends.
struct Sending {
    counts: Mutex<HashMap<Uuid, u32>>,
    freed: tokio::sync::Notify,
}

static SENDING: LazyLock<Sending> = LazyLock::new(|| Sending {
    counts: Mutex::default(),
    freed: tokio::sync::Notify::new(),
});

/// How long an upload waits for one of its account's slots before 429.
pub const SLOT_WAIT: Duration = Duration::from_secs(20);

/// One of an account's concurrent uploads; freed when dropped.
pub struct Slot(Uuid);

fn take_slot(settings: &Settings, account: Uuid) -> Option<Slot> {
    let mut counts = SENDING
        .counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let n = counts.entry(account).or_default();
    (*n < settings.uploads_per_account).then(|| {
        *n += 1;
        Slot(account)
    })
}

/// Takes one of `account`'s upload slots: the next one to free when all
/// are taken (a batch of hundreds goes through a few at a time), or 429
/// `too-many-uploads` when none frees within `wait`.
pub async fn slot(settings: &Settings, account: Uuid, wait: Duration) -> Result<Slot, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Listening before looking, so that a slot freed in between wakes us.
        let freed = SENDING.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if let Some(slot) = take_slot(settings, account) {
            return Ok(slot);
        }
        if tokio::time::timeout_at(deadline, freed).await.is_err() {
            break;
        }
    }
    metrics::counter!("pinhole_upload_refusals_total", "reason" => "per-account").increment(1);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ImagesError::TooManyUploads,
        format!(
            "this account is sending {} uploads at once, the most it may, and none ended \
             within {} s; send the next when one has finished",
            settings.uploads_per_account,
            wait.as_secs()
        ),
    )
    .with_header(header::RETRY_AFTER, "5"))
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = SENDING
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.0);
            }
        }
        drop(counts);
        SENDING.freed.notify_waiters();
    }
}

/// Processing permits: complete bodies checked and stored at once; more
/// wait their turn, then are answered 503.
static PERMITS: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(32));

/// A processing permit and the memory budget for a complete body of `len`
/// bytes, each waited for at most [`pinhole_http::BUDGET_WAIT`].
pub struct Turn {
    _permit: tokio::sync::SemaphorePermit<'static>,
    _memory: pinhole_http::Reserved,
}

pub async fn turn(ctx: &AppContext, len: u64) -> Result<Turn, ApiError> {
    let permit = match tokio::time::timeout(pinhole_http::BUDGET_WAIT, PERMITS.acquire()).await {
        Ok(Ok(p)) => p,
        Ok(Err(closed)) => return Err(ApiError::internal(closed)),
        Err(_) => {
            metrics::counter!("pinhole_upload_refusals_total", "reason" => "busy").increment(1);
            return Err(pinhole_http::busy(
                "every upload slot of the server is taken",
            ));
        }
    };
    let memory = ctx.memory.reserve(len, pinhole_http::BUDGET_WAIT).await?;
    Ok(Turn {
        _permit: permit,
        _memory: memory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(min_rate: u64, deadline: u64) -> Settings {
        let mut s = Settings::embedded("/nonexistent");
        s.upload_min_rate = min_rate;
        s.upload_deadline = Duration::from_secs(deadline);
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_stops_after_the_grace_and_a_steady_body_does_not() {
        let mut pace = Pace::new(&settings(1000, 600));
        // One byte, then nothing: after the grace (10 s) plus 1 ms' worth.
        assert!(
            pace.next(async { Ok::<_, String>(Some(1u8)) }, |_| 1)
                .await
                .is_ok()
        );
        let waited = Instant::now();
        let stopped = pace
            .next(std::future::pending::<Result<Option<u8>, String>>(), |_| 1)
            .await;
        assert_eq!(stopped, Err(Stop::TooSlow));
        assert!(waited.elapsed() <= GRACE + Duration::from_millis(5));

        // 2000 bytes a second for 60 s keeps going.
        let mut pace = Pace::new(&settings(1000, 600));
        for _ in 0..60 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(
                pace.next(async { Ok::<_, String>(Some(())) }, |_| 2000)
                    .await
                    .is_ok()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_even_a_fast_body() {
        let mut pace = Pace::new(&settings(1, 20));
        tokio::time::advance(Duration::from_secs(21)).await;
        assert_eq!(
            pace.next(async { Ok::<_, String>(Some(())) }, |_| 1_000_000)
                .await,
            Err(Stop::TooSlow)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_per_account_waited_for_and_freed() {
        let mut s = Settings::embedded("/nonexistent");
        s.uploads_per_account = 2;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let wait = Duration::from_secs(5);
        let first = slot(&s, a, wait).await.expect("first");
        let _second = slot(&s, a, wait).await.expect("second");
        let refused = slot(&s, a, wait).await.err().expect("third refused");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "too-many-uploads");
        assert!(
            slot(&s, b, wait).await.is_ok(),
            "another account is not held up"
        );
        // A third waits for the first to end, then goes.
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { slot(&s, a, wait).await.is_ok() }
        });
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(first);
        assert!(waiting.await.expect("joined"), "the freed slot is taken");
    }
}
