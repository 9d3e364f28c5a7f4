//! Failed log-ins: refused per account from one address and per address,
//! never per account from everywhere (that only slows down), so that
//! nobody can lock an owner out by guessing their password. On SQLite with
//! the in-process cache and on Postgres with Redis; test names say which.

use std::time::{Duration, Instant};

use crate::support::{App, PASSWORD, refusal};
use anyhow::ensure;
use pinhole_config::Settings;
use reqwest::StatusCode;

/// The failures an account may have from one address in a window.
const PAIR_LIMIT: usize = 5;

async fn sign_up(app: &App, username: &str) -> anyhow::Result<()> {
    let response = app
        .sign_up(username, &format!("{username}@example.com"), "192.0.2.200")
        .await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "sign-up: {}",
        response.status()
    );
    Ok(())
}

/// Five wrong passwords from one address: that address is refused (429 with
/// `Retry-After`, even with the right password, and again on every try),
/// while the owner, elsewhere, logs in.
async fn guesses_from_one_address_do_not_lock_the_owner_out(
    settings: Settings,
) -> anyhow::Result<()> {
    let app = App::start(settings).await?;
    sign_up(&app, "gail").await?;
    for n in 0..PAIR_LIMIT {
        let status = app
            .log_in("gail", "a wrong guess", "203.0.113.7")
            .await?
            .status();
        ensure!(status == StatusCode::UNAUTHORIZED, "guess {n}: {status}");
    }
    for login in ["gail", "GAIL", "gail@example.com"] {
        let refused = app.log_in(login, PASSWORD, "203.0.113.7").await?;
        ensure!(
            refused.status() == StatusCode::TOO_MANY_REQUESTS,
            "the guesser, as {login}: {}",
            refused.status()
        );
        let (retry_after, code) = refusal(refused).await?;
        ensure!(
            (1..=1800).contains(&retry_after),
            "Retry-After {retry_after}"
        );
        ensure!(code == "too-many-attempts", "{code}");
    }
    let owner = app.log_in("gail", PASSWORD, "198.51.100.2").await?;
    ensure!(
        owner.status() == StatusCode::CREATED,
        "the owner: {}",
        owner.status()
    );
    // The guesser may still log in to other accounts.
    sign_up(&app, "hugo").await?;
    let other = app.log_in("hugo", PASSWORD, "203.0.113.7").await?;
    ensure!(
        other.status() == StatusCode::CREATED,
        "another account from the guesser's address: {}",
        other.status()
    );
    Ok(())
}

/// One address guessing at many accounts is refused after its twenty
/// failures, whichever account it then tries; other addresses are not.
async fn one_address_guessing_at_many_accounts_is_refused(
    settings: Settings,
) -> anyhow::Result<()> {
    let app = App::start(settings).await?;
    sign_up(&app, "ines").await?;
    for n in 0..20 {
        let status = app
            .log_in(&format!("ghost_{n}"), "a wrong guess", "203.0.113.8")
            .await?
            .status();
        ensure!(status == StatusCode::UNAUTHORIZED, "guess {n}: {status}");
    }
    let refused = app.log_in("ines", PASSWORD, "203.0.113.8").await?;
    ensure!(
        refused.status() == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.status()
    );
    let (retry_after, code) = refusal(refused).await?;
    ensure!((1..=1800).contains(&retry_after) && code == "too-many-attempts");
    let owner = app.log_in("ines", PASSWORD, "198.51.100.3").await?;
    ensure!(owner.status() == StatusCode::CREATED, "{}", owner.status());
    Ok(())
}

/// Guesses at one account from many addresses (each within its own limit)
/// are answered, never refused, and the owner still logs in from an
/// address that has not failed: later, not never.
async fn guesses_from_many_addresses_only_slow_the_owner_down(
    settings: Settings,
) -> anyhow::Result<()> {
    let app = std::sync::Arc::new(App::start(settings).await?);
    sign_up(&app, "jana").await?;
    // 30 guesses at once, three from each of ten addresses: 25 failures
    // past the 5 after which log-ins of the account wait (2 s at most).
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..30 {
        let app = std::sync::Arc::clone(&app);
        guesses.spawn(async move {
            let address = format!("192.0.2.{}", n % 10);
            let status = app
                .log_in("jana", "a wrong guess", &address)
                .await?
                .status();
            anyhow::Ok((address, status))
        });
    }
    while let Some(guess) = guesses.join_next().await {
        let (address, status) = guess??;
        ensure!(
            status == StatusCode::UNAUTHORIZED,
            "a guess from {address}: {status}"
        );
    }
    let started = Instant::now();
    let owner = app.log_in("jana", PASSWORD, "198.51.100.4").await?;
    let took = started.elapsed();
    ensure!(
        owner.status() == StatusCode::CREATED,
        "the owner after many guesses: {}",
        owner.status()
    );
    ensure!(took >= Duration::from_secs(1), "not slowed down: {took:?}");
    Ok(())
}

/// Every process of the role counts in the shared cache: failures seen by
/// one process refuse that address at another, and the owner logs in at
/// either.
async fn processes_share_the_counts(settings: Settings) -> anyhow::Result<()> {
    let first = App::start(settings.clone()).await?;
    let second = App::start(settings).await?;
    sign_up(&first, "kira").await?;
    for n in 0..PAIR_LIMIT {
        let app = if n % 2 == 0 { &first } else { &second };
        let status = app
            .log_in("kira", "a wrong guess", "203.0.113.9")
            .await?
            .status();
        ensure!(status == StatusCode::UNAUTHORIZED, "guess {n}: {status}");
    }
    for app in [&first, &second] {
        let status = app.log_in("kira", PASSWORD, "203.0.113.9").await?.status();
        ensure!(
            status == StatusCode::TOO_MANY_REQUESTS,
            "the guesser: {status}"
        );
        let status = app.log_in("kira", PASSWORD, "198.51.100.5").await?.status();
        ensure!(status == StatusCode::CREATED, "the owner: {status}");
    }
    Ok(())
}

/// Clients learn from the API document that a refused log-in or sign-up
/// says when to try again.
#[tokio::test]
async fn the_api_document_says_when_to_try_again() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let app = App::start(crate::support::embedded(&dir)).await?;
    for (path, method) in [("/api/v1/sessions", "post"), ("/api/v1/accounts", "post")] {
        let refused = &app.openapi["paths"][path][method]["responses"]["429"];
        ensure!(
            refused["headers"]["Retry-After"].is_object(),
            "{method} {path}: {refused}"
        );
    }
    Ok(())
}

backends!(
    guesses_from_one_address_do_not_lock_the_owner_out,
    one_address_guessing_at_many_accounts_is_refused,
    guesses_from_many_addresses_only_slow_the_owner_down,
);

/// Two processes share counts only through a shared cache: Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_the_counts_postgres() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    processes_share_the_counts(crate::support::real(&dir).await?).await
}
