//! The cache conformance suite, in process and against a real Redis.
//! Test names say which backend ran.

use std::time::Duration;

use anyhow::ensure;
use bytes::Bytes;
use pinhole_cache::{Cache, MemoryCache, RedisCache, SlidingWindow};
use pinhole_testkit::{unique, wait_for};

async fn memory() -> anyhow::Result<Box<dyn Cache>> {
    Ok(Box::new(MemoryCache::new(1024 * 1024)))
}

async fn redis() -> anyhow::Result<Box<dyn Cache>> {
    // A prefix of its own keeps tests apart on the shared server.
    let prefix = format!("{}:", unique("test"));
    Ok(Box::new(
        RedisCache::connect(&pinhole_testkit::redis_url(), prefix).await?,
    ))
}

async fn set_get_delete(cache: Box<dyn Cache>) -> anyhow::Result<()> {
    cache.check().await?;
    ensure!(cache.get("page:1").await?.is_none());
    let binary = Bytes::from_static(&[0, 159, 146, 150, 255]);
    cache
        .set("page:1", binary.clone(), Duration::from_secs(60))
        .await?;
    ensure!(cache.get("page:1").await? == Some(binary));
    cache
        .set(
            "page:1",
            Bytes::from_static(b"new"),
            Duration::from_secs(60),
        )
        .await?;
    ensure!(cache.get("page:1").await?.as_deref() == Some(&b"new"[..]));
    cache.delete("page:1").await?;
    ensure!(cache.get("page:1").await?.is_none());
    // Deleting what is not there is fine.
    cache.delete("page:1").await?;
    Ok(())
}

async fn many_at_once(cache: Box<dyn Cache>) -> anyhow::Result<()> {
    ensure!(cache.get_many(&[]).await?.is_empty());
    cache
        .set("a", Bytes::from_static(b"1"), Duration::from_secs(60))
        .await?;
    cache
        .set("c", Bytes::from_static(b"3"), Duration::from_secs(60))
        .await?;
    let keys = ["a", "b", "c", "a"].map(str::to_owned);
    let values = cache.get_many(&keys).await?;
    ensure!(
        values
            == vec![
                Some(Bytes::from_static(b"1")),
                None,
                Some(Bytes::from_static(b"3")),
                Some(Bytes::from_static(b"1")),
            ],
        "in the keys' order, missing ones as none: {values:?}"
    );
    ensure!(cache.get_many(&keys[1..2]).await? == vec![None]);
    Ok(())
}

async fn entries_expire(cache: Box<dyn Cache>) -> anyhow::Result<()> {
    cache
        .set(
            "short",
            Bytes::from_static(b"v"),
            Duration::from_millis(300),
        )
        .await?;
    cache
        .set("long", Bytes::from_static(b"v"), Duration::from_secs(60))
        .await?;
    ensure!(cache.get("short").await?.is_some());
    wait_for(
        Duration::from_secs(5),
        "the short entry to expire",
        || async { matches!(cache.get("short").await, Ok(None)).then_some(()) },
    )
    .await?;
    ensure!(
        cache.get("long").await?.is_some(),
        "others keep their own ttl"
    );
    Ok(())
}

async fn counters_count_and_expire(cache: Box<dyn Cache>) -> anyhow::Result<()> {
    let cache: std::sync::Arc<dyn Cache> = cache.into();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let cache = std::sync::Arc::clone(&cache);
        tasks.push(tokio::spawn(async move {
            cache.incr("hits", Duration::from_millis(500)).await
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await??);
    }
    seen.sort_unstable();
    ensure!(
        seen == (1..=20).collect::<Vec<u64>>(),
        "every increment counted once: {seen:?}"
    );
    ensure!(
        cache.add("hits", -5, Duration::from_secs(60)).await? == 15,
        "counters go down too"
    );
    wait_for(Duration::from_secs(5), "the counter to expire", || async {
        matches!(cache.incr("hits", Duration::from_secs(60)).await, Ok(1)).then_some(())
    })
    .await?;
    Ok(())
}

/// A limit of 3 an hour: hits late in one window still count early in the
/// next (a fixed window would forget them), less and less as it slides.
async fn sliding_windows_carry_over(cache: Box<dyn Cache>) -> anyhow::Result<()> {
    let hour = SlidingWindow::new(Duration::from_secs(3600));
    let cache = cache.as_ref();
    // Three hits in the last minute of one hour: the third is within the
    // limit, a fourth would not be.
    let end_of_window = (SlidingWindow::now() / 3600.0).floor() * 3600.0 - 60.0;
    for n in 1..=3 {
        let hits = hour
            .hit(cache, "signup", end_of_window + f64::from(n))
            .await?;
        ensure!(!hits.over(3), "hit {n}: {hits:?}");
    }
    // A minute into the next hour the three still count.
    let next = end_of_window + 120.0;
    let hits = hour.hit(cache, "signup", next).await?;
    ensure!(hits.previous == 3 && hits.current == 1, "{hits:?}");
    ensure!(hits.over(3), "the boundary forgot: {hits:?}");
    let wait = hits.retry_after(3);
    ensure!((60..=3600).contains(&wait), "Retry-After {wait}");
    // Giving the hit back, and half an hour on, there is room again.
    hour.give_back(cache, "signup", next).await?;
    let later = hour.hit(cache, "signup", next + 1800.0).await?;
    ensure!(later.current == 1 && !later.over(3), "{later:?}");
    // Other names count apart.
    let other = hour.hit(cache, "login", next).await?;
    ensure!(other.previous == 0 && other.current == 1, "{other:?}");
    Ok(())
}

macro_rules! conformance {
    ($open:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() -> anyhow::Result<()> {
                super::$name(super::$open().await?).await
            }
        )*
    };
}

mod memory {
    conformance!(
        memory,
        set_get_delete,
        many_at_once,
        entries_expire,
        counters_count_and_expire,
        sliding_windows_carry_over
    );
}

mod redis {
    conformance!(
        redis,
        set_get_delete,
        many_at_once,
        entries_expire,
        counters_count_and_expire,
        sliding_windows_carry_over
    );
}

#[tokio::test]
async fn redis_unreachable_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let result = RedisCache::connect("redis://127.0.0.1:1", "x:").await;
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(20));
}
