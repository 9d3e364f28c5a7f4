//! Blobs larger than 64 MiB stream through every store without being held
//! in memory whole: the test counts the bytes the process has allocated and
//! checks the peak while a 72 MiB blob goes in and comes back out.
//!
//! It is its own test binary so that nothing else allocates meanwhile.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only
// forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::ensure;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use pinhole_blob::{BlobStore, ByteStream, LocalStore, S3Store, UrlSigner};
use sha2::{Digest, Sha256};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1024 * 1024;
const BLOB: usize = 72 * MIB;
const CHUNK: usize = MIB;
/// What a streaming store may hold at once: an S3 part (8 MiB) and the
/// client's copies of it, far below the blob's 72 MiB.
const BUDGET: usize = 32 * MIB;

/// Deterministic, incompressible-looking chunk `i`.
fn chunk(i: usize) -> Bytes {
    let mut state = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(CHUNK);
    while out.len() < CHUNK {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

fn body() -> ByteStream {
    Box::pin(futures::stream::iter(0..BLOB / CHUNK).map(|i| Ok(chunk(i))))
}

fn expected_digest() -> Vec<u8> {
    let mut hasher = Sha256::new();
    for i in 0..BLOB / CHUNK {
        hasher.update(chunk(i));
    }
    hasher.finalize().to_vec()
}

async fn round_trip(store: &dyn BlobStore) -> anyhow::Result<()> {
    let expected = expected_digest();
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);

    let meta = store.put("big/blob.bin", body()).await?;
    ensure!(meta.size == BLOB as u64);
    let put_peak = PEAK.load(Ordering::Relaxed) - baseline;

    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
    let got = store.get("big/blob.bin", None).await?;
    ensure!(got.meta.size == BLOB as u64);
    let mut hasher = Sha256::new();
    let mut stream = got.stream;
    let mut read = 0usize;
    while let Some(piece) = stream.try_next().await? {
        read += piece.len();
        hasher.update(&piece);
    }
    let get_peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    ensure!(read == BLOB, "read {read} bytes");
    ensure!(hasher.finalize().to_vec() == expected, "bytes differ");
    ensure!(
        put_peak < BUDGET && get_peak < BUDGET,
        "a {} MiB blob took {} MiB (put) / {} MiB (get) of memory",
        BLOB / MIB,
        put_peak / MIB,
        get_peak / MIB
    );
    store.delete("big/blob.bin").await?;
    Ok(())
}

#[tokio::test]
async fn local_streams_blobs_over_64_mib() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let signer = UrlSigner::new(
        url::Url::parse("http://127.0.0.1:1")?,
        "k".repeat(32).into(),
    );
    let store = LocalStore::open(dir.path(), signer).await?;
    round_trip(&store).await
}

#[tokio::test]
async fn s3_streams_blobs_over_64_mib() -> anyhow::Result<()> {
    let store = S3Store::new(&pinhole_testkit::s3_settings(&pinhole_testkit::unique(
        "streaming",
    )));
    store.ensure_bucket().await?;
    round_trip(&store).await
}
