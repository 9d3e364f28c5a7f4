//! Read-model lag: how long after a follow (or an unfollow, or a block)
//! answers does the follower's feed show (or stop showing) the followee's
//! followers-only image, now that the images role learns follows from the
//! users role's events. On the embedded log and on Kafka (tansu) with
//! Postgres, Redis and S3. The reference measured in the same run: the
//! latency of the feed request itself (the lag cannot be smaller).
//!
//! Run: `cargo bench -p pinhole-tests --bench readmodel` (with
//! `infra/stack.sh up` for the real backends).

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_tests::app::{App, photo};
use pinhole_tests::bench::{ms, percentile};
use reqwest::Method;
use serde_json::Value;

const ROUNDS: usize = 60;

async fn feed_has(app: &App, token: &str, id: &str) -> anyhow::Result<bool> {
    let (_, feed) = app.get("/feed?limit=50", Some(token)).await?;
    Ok(feed["items"]
        .as_array()
        .context("items")?
        .iter()
        .any(|i| i["id"] == id))
}

/// Polls until the feed shows (`want`) or hides the image; the time taken.
async fn until(app: &App, token: &str, id: &str, want: bool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while feed_has(app, token, id).await? != want {
        ensure!(started.elapsed() < Duration::from_secs(30), "never settled");
    }
    Ok(started.elapsed())
}

async fn run(name: &str, app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    let image: Value = app
        .posted(&ada, photo("Storm.jpg")?, &[("visibility", "followers")])
        .await?;
    let id = image["id"].as_str().context("id")?.to_owned();
    let mut follow = Vec::new();
    let mut unfollow = Vec::new();
    let mut request = Vec::new();
    for _ in 0..ROUNDS {
        let (status, _) = app
            .call(Method::POST, "/users/ada/follow", Some(&bob), None)
            .await?;
        ensure!(status.is_success());
        follow.push(until(&app, &bob, &id, true).await?);
        let (status, _) = app
            .call(Method::DELETE, "/users/ada/follow", Some(&bob), None)
            .await?;
        ensure!(status.is_success());
        unfollow.push(until(&app, &bob, &id, false).await?);
        let t = Instant::now();
        feed_has(&app, &bob, &id).await?;
        request.push(t.elapsed());
    }
    println!(
        "{name:9} follow→feed p50 {} p99 {} | unfollow→gone p50 {} p99 {} | one feed request p50 {} ({ROUNDS} rounds)",
        ms(percentile(&mut follow, 0.5)),
        ms(percentile(&mut follow, 0.99)),
        ms(percentile(&mut unfollow, 0.5)),
        ms(percentile(&mut unfollow, 0.99)),
        ms(percentile(&mut request, 0.5)),
    );
    app.server.stop().await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    run("embedded", App::embedded().await?).await?;
    match App::real().await {
        Ok(app) => run("kafka+pg", app).await?,
        Err(e) => println!("real backends: skipped ({e:#}); run infra/stack.sh up"),
    }
    Ok(())
}
