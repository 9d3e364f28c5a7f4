//! Sign-ups: limited per client address, and a taken name or email is
//! refused before any password is hashed (hashing is what costs). On SQLite
//! with the in-process cache and on Postgres with Redis; test names say
//! which.

use crate::support::{App, refusal};
use anyhow::ensure;
use pinhole_config::Settings;
use reqwest::StatusCode;

/// The tests here read a process-wide counter: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Password hashes made by the users role, as `/metrics` shows them.
async fn hashes(app: &App) -> anyhow::Result<u64> {
    app.counter("pinhole_password_hashes_total", "role=\"users\"")
        .await
}

/// `PINHOLE_SIGNUP_LIMIT` sign-ups per address: the next is a 429 with
/// `Retry-After`; other addresses may still sign up, and a taken name is
/// still told apart (409) rather than counted.
async fn sign_ups_are_limited_per_address(mut settings: Settings) -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    settings.signup_limit = 3;
    let app = App::start(settings).await?;
    for n in 0..3 {
        let status = app
            .sign_up(
                &format!("lena{n}"),
                &format!("lena{n}@example.com"),
                "203.0.113.20",
            )
            .await?
            .status();
        ensure!(status == StatusCode::CREATED, "sign-up {n}: {status}");
    }
    let refused = app
        .sign_up("lena3", "lena3@example.com", "203.0.113.20")
        .await?;
    ensure!(
        refused.status() == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.status()
    );
    // The limit slides over the hour: the wait may reach into the next one.
    let (retry_after, code) = refusal(refused).await?;
    ensure!(
        (1..=7200).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    ensure!(code == "too-many-sign-ups", "{code}");
    let taken = app
        .sign_up("lena0", "someone@example.com", "203.0.113.20")
        .await?;
    ensure!(taken.status() == StatusCode::CONFLICT, "{}", taken.status());
    let elsewhere = app
        .sign_up("lena3", "lena3@example.com", "198.51.100.20")
        .await?;
    ensure!(
        elsewhere.status() == StatusCode::CREATED,
        "{}",
        elsewhere.status()
    );
    Ok(())
}

/// A taken username or email answers 409 without a password hash being
/// made; a free one makes exactly one.
async fn taken_names_are_refused_before_hashing(settings: Settings) -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let app = App::start(settings).await?;
    let status = app
        .sign_up("mona", "mona@example.com", "203.0.113.21")
        .await?
        .status();
    ensure!(status == StatusCode::CREATED, "{status}");
    let before = hashes(&app).await?;
    for (username, email, code) in [
        ("MONA", "other@example.com", "username-taken"),
        ("other", " Mona@Example.com ", "email-taken"),
    ] {
        let taken = app.sign_up(username, email, "203.0.113.21").await?;
        ensure!(
            taken.status() == StatusCode::CONFLICT,
            "{username} {email}: {}",
            taken.status()
        );
        let body: serde_json::Value = taken.json().await?;
        ensure!(body["code"] == code, "{username} {email}: {body}");
    }
    ensure!(
        hashes(&app).await? == before,
        "a taken name made a password hash"
    );
    let status = app
        .sign_up("nora", "nora@example.com", "203.0.113.21")
        .await?
        .status();
    ensure!(status == StatusCode::CREATED, "{status}");
    ensure!(
        hashes(&app).await? == before + 1,
        "a sign-up did not count its hash"
    );
    Ok(())
}

backends!(
    sign_ups_are_limited_per_address,
    taken_names_are_refused_before_hashing,
);
