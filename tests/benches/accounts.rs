//! Accounts benchmark: log-in latency (argon2id included) and what verifying
//! a bearer token adds to a request, on embedded backends and on
//! Postgres + Redis. Each figure comes with a reference measured in the same
//! run, since these machines are noisy:
//!
//! - log-in p50 against one argon2id verification on its own;
//! - an authenticated `GET /api/v1/users/{name}` against the same request
//!   without a token.
//!
//! Run: `cargo bench -p pinhole-tests --bench accounts` (with `infra/stack.sh up`
//! for the Postgres + Redis part).

use std::time::{Duration, Instant};

use pinhole_config::{CacheUrl, DatabaseUrl, Settings};
use serde_json::{Value, json};

const LOGINS: usize = 200;
const REQUESTS: usize = 3000;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

async fn timed<F: Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<Duration> {
    let started = Instant::now();
    f.await?;
    Ok(started.elapsed())
}

async fn run(label: &str, settings: Settings) -> anyhow::Result<()> {
    let server = pinhole::start(settings, &["users"]).await?;
    let base = format!("{}/api/v1", server.url());
    let http = reqwest::Client::new();
    let password = "correct horse battery";
    let created = http
        .post(format!("{base}/accounts"))
        .json(&json!({ "username": "bench", "email": "bench@example.com", "password": password }))
        .send()
        .await?;
    anyhow::ensure!(
        created.status() == 201,
        "sign-up failed: {}",
        created.status()
    );

    let log_in = || async {
        let response = http
            .post(format!("{base}/sessions"))
            .json(&json!({ "login": "bench", "password": password }))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 201);
        let session: Value = response.json().await?;
        Ok(session["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    };
    let token = log_in().await?;

    // Reference: one argon2id verification, on its own.
    let phc = pinhole_auth::password::hash(password).map_err(anyhow::Error::msg)?;
    let mut argon = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        let started = Instant::now();
        anyhow::ensure!(pinhole_auth::password::verify(password, &phc));
        argon.push(started.elapsed());
    }
    let mut logins = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        logins.push(timed(async { log_in().await.map(|_| ()) }).await?);
    }
    let argon_p50 = percentile(&mut argon, 0.5);
    let (login_p50, login_p99) = (percentile(&mut logins, 0.5), percentile(&mut logins, 0.99));

    // Four clients logging in at once (2 cores: argon2 queues).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(async move {
            let mut samples = Vec::new();
            for _ in 0..LOGINS / 4 {
                samples.push(timed(async { log_in().await.map(|_| ()) }).await?);
            }
            Ok::<_, anyhow::Error>(samples)
        });
    }
    let mut concurrent: Vec<Duration> = futures::future::try_join_all(tasks)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let concurrent_rate = concurrent.len() as f64 / started.elapsed().as_secs_f64();
    let (c50, c99) = (
        percentile(&mut concurrent, 0.5),
        percentile(&mut concurrent, 0.99),
    );

    // Token verification: the same request with and without a token,
    // interleaved so that both see the same machine.
    let profile = format!("{base}/users/bench");
    let mut anonymous = Vec::with_capacity(REQUESTS);
    let mut authenticated = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        anonymous.push(
            timed(async {
                let r = http.get(&profile).send().await?;
                anyhow::ensure!(r.status() == 200);
                r.bytes().await?;
                Ok(())
            })
            .await?,
        );
        authenticated.push(
            timed(async {
                let r = http.get(&profile).bearer_auth(&token).send().await?;
                anyhow::ensure!(r.status() == 200);
                r.bytes().await?;
                Ok(())
            })
            .await?,
        );
    }
    let (anon_p50, anon_p99) = (
        percentile(&mut anonymous, 0.5),
        percentile(&mut anonymous, 0.99),
    );
    let (auth_p50, auth_p99) = (
        percentile(&mut authenticated, 0.5),
        percentile(&mut authenticated, 0.99),
    );
    // Straight calls to the verifier (cache hits after the first).
    let mut direct = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        anyhow::ensure!(server.ctx.tokens.verify(&token).await?.is_some());
        direct.push(started.elapsed());
    }
    let direct_p50 = percentile(&mut direct, 0.5);

    println!("== {label}");
    println!(
        "log-in, 1 client:  p50 {} p99 {}  (argon2id verify alone p50 {}; log-in/argon2 = {:.2}x)",
        ms(login_p50),
        ms(login_p99),
        ms(argon_p50),
        login_p50.as_secs_f64() / argon_p50.as_secs_f64()
    );
    println!(
        "log-in, 4 clients: p50 {} p99 {}  ({concurrent_rate:.1} log-ins/s)",
        ms(c50),
        ms(c99)
    );
    println!(
        "GET profile, no token: p50 {} p99 {} | with token: p50 {} p99 {} | token adds {} at p50 ({:.2}x); verify() alone p50 {}",
        us(anon_p50),
        us(anon_p99),
        us(auth_p50),
        us(auth_p99),
        us(auth_p50.saturating_sub(anon_p50)),
        auth_p50.as_secs_f64() / anon_p50.as_secs_f64(),
        us(direct_p50)
    );
    server.stop().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    run(
        "embedded (SQLite, in-process cache)",
        Settings::embedded(dir.path()),
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(dir.path());
    settings.database = DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
    settings.cache = CacheUrl::Redis(pinhole_testkit::redis_settings());
    run("Postgres + Redis", settings).await
}
