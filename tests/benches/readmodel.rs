//! Read-model lag: how long after a change answers do other roles act on
//! it, now that they learn it from the users role's events. A follow (or
//! an unfollow) shows (or hides) the followee's followers-only image in the
//! follower's feed; a block (or an unblock) hides (or shows) a public image
//! to the blocked user; going private (or public) closes (or opens) the
//! grid and the unsigned presets (the thumbnails role's catalog) to
//! anonymous visitors. On the embedded log and on Kafka (tansu) with
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
use serde_json::{Value, json};

const ROUNDS: usize = 60;

/// Polls `probe` until it answers `want`; the time taken.
async fn until<F, Fut>(want: bool, mut probe: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    while probe().await? != want {
        ensure!(started.elapsed() < Duration::from_secs(30), "never settled");
    }
    Ok(started.elapsed())
}

async fn feed_has(app: &App, token: &str, id: &str) -> anyhow::Result<bool> {
    let (_, feed) = app.get("/feed?limit=50", Some(token)).await?;
    Ok(feed["items"]
        .as_array()
        .context("items")?
        .iter()
        .any(|i| i["id"] == id))
}

/// Whether `token`'s holder may see the image's record.
async fn sees(app: &App, token: &str, id: &str) -> anyhow::Result<bool> {
    Ok(app
        .get(&format!("/images/{id}"), Some(token))
        .await?
        .0
        .is_success())
}

/// Whether an anonymous visitor may see `username`'s grid.
async fn grid_open(app: &App, username: &str) -> anyhow::Result<bool> {
    let (status, _) = app.get(&format!("/users/{username}/images"), None).await?;
    Ok(status.is_success())
}

/// Whether an anonymous, unsigned preset of the image is served (the
/// thumbnails role's catalog).
async fn preset_served(app: &App, id: &str) -> anyhow::Result<bool> {
    let url = format!("{}/t/_/pr:thumb/{id}.jpg", app.server.url());
    Ok(app.http.get(url).send().await?.status().is_success())
}

async fn call(
    app: &App,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<()> {
    let (status, answer) = app.call(method, path, Some(token), body).await?;
    ensure!(status.is_success(), "{path}: {status} {answer}");
    Ok(())
}

/// p50 and p99 of one kind of lag, for the printed line.
fn lag(name: &str, samples: &mut [Duration]) -> String {
    format!(
        "{name} p50 {} p99 {}",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99))
    )
}

async fn run(name: &str, app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    let image: Value = app
        .posted(&ada, photo("Storm.jpg")?, &[("visibility", "followers")])
        .await?;
    let id = image["id"].as_str().context("id")?.to_owned();
    let public: Value = app.posted(&ada, photo("Dune.jpg")?, &[]).await?;
    let public = public["id"].as_str().context("id")?.to_owned();
    let [mut follow, mut unfollow, mut block, mut unblock] = [(); 4].map(|()| Vec::new());
    let [mut private, mut public_again, mut hidden, mut shown] = [(); 4].map(|()| Vec::new());
    let mut request = Vec::new();
    for _ in 0..ROUNDS {
        call(&app, Method::POST, "/users/ada/follow", &bob, None).await?;
        follow.push(until(true, || feed_has(&app, &bob, &id)).await?);
        call(&app, Method::DELETE, "/users/ada/follow", &bob, None).await?;
        unfollow.push(until(false, || feed_has(&app, &bob, &id)).await?);

        call(&app, Method::POST, "/users/bob/block", &ada, None).await?;
        block.push(until(false, || sees(&app, &bob, &public)).await?);
        call(&app, Method::DELETE, "/users/bob/block", &ada, None).await?;
        unblock.push(until(true, || sees(&app, &bob, &public)).await?);

        // Going private closes the grid and the unsigned presets; going
        // public again opens both. Each is timed from the same answer.
        let privacy = |on: bool| json!({ "is_private": on });
        call(&app, Method::PATCH, "/me", &ada, Some(privacy(true))).await?;
        let started = Instant::now();
        until(false, || grid_open(&app, "ada")).await?;
        private.push(started.elapsed());
        until(false, || preset_served(&app, &public)).await?;
        hidden.push(started.elapsed());
        call(&app, Method::PATCH, "/me", &ada, Some(privacy(false))).await?;
        let started = Instant::now();
        until(true, || grid_open(&app, "ada")).await?;
        public_again.push(started.elapsed());
        until(true, || preset_served(&app, &public)).await?;
        shown.push(started.elapsed());

        let t = Instant::now();
        feed_has(&app, &bob, &id).await?;
        request.push(t.elapsed());
    }
    println!(
        "{name:9} ({ROUNDS} rounds; one feed request p50 {})",
        ms(percentile(&mut request, 0.5))
    );
    for line in [
        lag("follow→feed", &mut follow),
        lag("unfollow→gone", &mut unfollow),
        lag("block→record hidden", &mut block),
        lag("unblock→record seen", &mut unblock),
        lag("private→grid closed", &mut private),
        lag("public→grid open", &mut public_again),
        lag("private→preset 404", &mut hidden),
        lag("public→preset served", &mut shown),
    ] {
        println!("{name:9}   {line}");
    }
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
