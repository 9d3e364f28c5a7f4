//! Search freshness: how long after an upload's processing ends (its task
//! answers `done`) the image is found by searching for a word of its title.
//! On the embedded log and on Kafka (tansu) with Postgres, Redis and S3.
//! The reference measured in the same run: the latency of one search
//! request (the lag cannot be smaller). Goal: p95 under 2 s.
//!
//! Run: `cargo bench --profile dev -p pinhole-tests --bench searchlag`
//! (with `infra/stack.sh up` for the real backends).

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_config::Settings;
use pinhole_tests::app::{App, small_photo};
use pinhole_tests::bench::{ms, percentile};

const ROUNDS: usize = 40;
const ROLES: &[&str] = &["users", "images", "thumbnails", "search"];

async fn found(app: &App, word: &str, id: &str) -> anyhow::Result<bool> {
    let (_, r) = app.get(&format!("/search/images?q={word}"), None).await?;
    Ok(r["items"]
        .as_array()
        .context("items")?
        .iter()
        .any(|i| i["image"]["id"] == id))
}

async fn run(name: &str, app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let mut lag = Vec::new();
    let mut request = Vec::new();
    for n in 0..ROUNDS {
        let word = format!("freshword{n}x");
        let image = app
            .posted(
                &ada,
                small_photo("Storm.jpg", n)?,
                &[("title", &format!("a photo {word}"))],
            )
            .await?;
        let id = image["id"].as_str().context("id")?.to_owned();
        let started = Instant::now();
        while !found(&app, &word, &id).await? {
            ensure!(started.elapsed() < Duration::from_secs(30), "never found");
        }
        lag.push(started.elapsed());
        let t = Instant::now();
        found(&app, &word, &id).await?;
        request.push(t.elapsed());
    }
    println!(
        "{name:9} processed→searchable p50 {} p95 {} p99 {} | one search request p50 {} ({ROUNDS} images)",
        ms(percentile(&mut lag, 0.5)),
        ms(percentile(&mut lag, 0.95)),
        ms(percentile(&mut lag, 0.99)),
        ms(percentile(&mut request, 0.5)),
    );
    app.server.stop().await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    run(
        "embedded",
        App::start_roles(Settings::embedded(dir.path()), dir, ROLES).await?,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    match pinhole_tests::real_settings(dir.path(), "searchlag").await {
        Ok(settings) => run("kafka+pg", App::start_roles(settings, dir, ROLES).await?).await?,
        Err(e) => println!("kafka+pg  skipped: {e:#} (run infra/stack.sh up)"),
    }
    Ok(())
}
