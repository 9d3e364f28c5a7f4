//! Starting the whole server: on embedded defaults from an empty data
//! directory, on every real backend, and with a subset of roles; what
//! `/healthz`, `/readyz`, `/metrics` and `/api/openapi.json` answer, and
//! that the last says exactly what the server does ([`openapi`]).

#[path = "startup/openapi.rs"]
mod openapi;

use std::time::Duration;

use anyhow::ensure;
use pinhole::{ROLES, Server};
use pinhole_config::{BusUrl, KafkaSettings, Settings};
use pinhole_testkit::{Broker, wait_for};
use serde_json::Value;

async fn get_json(url: &str) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::get(url).await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

fn kinds(ready: &Value) -> Vec<(String, String, String)> {
    ready["backends"]
        .as_array()
        .map(|backends| {
            backends
                .iter()
                .map(|b| {
                    (
                        b["name"].as_str().unwrap_or_default().to_owned(),
                        b["kind"].as_str().unwrap_or_default().to_owned(),
                        b["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all_ok(names_and_kinds: &[(&str, &str)]) -> Vec<(String, String, String)> {
    names_and_kinds
        .iter()
        .map(|(n, k)| ((*n).to_owned(), (*k).to_owned(), "ok".to_owned()))
        .collect()
}

/// Settings for every real backend, each fresh for this test.
async fn real_settings(dir: &tempfile::TempDir) -> anyhow::Result<Settings> {
    pinhole_tests::real_settings(dir.path(), "startup").await
}

#[tokio::test]
async fn embedded_defaults_start_from_an_empty_data_dir() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("fresh");
    let server = pinhole::start(Settings::embedded(&data), ROLES).await?;
    let base = server.url();

    let (status, ready) = get_json(&format!("{base}/readyz")).await?;
    ensure!(status == 200, "{ready}");
    ensure!(ready["status"] == "ready");
    ensure!(
        kinds(&ready)
            == all_ok(&[
                ("database", "sqlite"),
                ("cache", "memory"),
                ("bus", "embedded"),
                ("blobs", "local")
            ]),
        "{ready}"
    );
    for file in ["pinhole.db", "events.db", "blobs", "signing.key"] {
        ensure!(data.join(file).exists(), "{file} is made in the data dir");
    }

    let response = reqwest::get(format!("{base}/healthz")).await?;
    ensure!(response.status() == 200);
    ensure!(
        response.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let health: Value = response.json().await?;
    ensure!(health["status"] == "ok");
    ensure!(health["roles"] == serde_json::json!(ROLES));

    let response = reqwest::get(format!("{base}/api/v1/no-such-thing")).await?;
    ensure!(response.status() == 404);
    let body: Value = response.json().await?;
    ensure!(
        body["code"] == "route-not-found" && body["message"].is_string(),
        "{body}"
    );

    // Made-up methods and paths make no new metric series.
    let client = reqwest::Client::new();
    for n in 0..50 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes())?;
        client
            .request(method, format!("{base}/api/v1/made-up-{n}"))
            .send()
            .await?;
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains("pinhole_http_requests_total") && metrics.contains("route=\"/healthz\""),
        "{metrics}"
    );
    ensure!(
        !metrics.contains("MADEUP")
            && !metrics.contains("made-up")
            && metrics.contains("method=\"other\""),
        "made-up methods or paths became labels"
    );

    let (status, doc) = get_json(&format!("{base}/api/openapi.json")).await?;
    ensure!(status == 200);
    ensure!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/blobs/{key}",
        "/api/openapi.json",
        "/api/asyncapi.json",
    ] {
        ensure!(
            doc["paths"][path]["get"].is_object(),
            "{path} is documented"
        );
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn every_real_backend_reports_ready() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = pinhole::start(real_settings(&dir).await?, ROLES).await?;
    let (status, ready) = get_json(&format!("{}/readyz", server.url())).await?;
    ensure!(status == 200, "{ready}");
    ensure!(
        kinds(&ready)
            == all_ok(&[
                ("database", "postgres"),
                ("cache", "redis"),
                ("bus", "kafka"),
                ("blobs", "s3")
            ]),
        "{ready}"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_process_serves_only_the_roles_it_is_given() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let roles = pinhole::parse_roles("gateway,images").map_err(anyhow::Error::msg)?;
    let server = pinhole::start(Settings::embedded(dir.path()), &roles).await?;
    let (_, health) = get_json(&format!("{}/healthz", server.url())).await?;
    ensure!(
        health["roles"] == serde_json::json!(["gateway", "images"]),
        "{health}"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn readyz_names_a_backend_that_went_away() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(pinhole_testkit::free_port()?).await?;
    let mut settings = Settings::embedded(dir.path());
    settings.bus = BusUrl::Kafka(KafkaSettings {
        brokers: broker.brokers(),
    });
    let server = pinhole::start(settings, ROLES).await?;
    let url = format!("{}/readyz", server.url());
    ensure!(get_json(&url).await?.0 == 200);

    drop(broker);
    let ready = wait_for(
        Duration::from_secs(30),
        "readyz to report the bus",
        || async {
            match get_json(&url).await {
                Ok((503, body)) => Some(body),
                _ => None,
            }
        },
    )
    .await?;
    ensure!(ready["status"] == "unavailable");
    let bus = ready["backends"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["name"] == "bus"))
        .cloned()
        .unwrap_or_default();
    ensure!(
        bus["kind"] == "kafka" && bus["status"] == "error",
        "{ready}"
    );
    ensure!(
        bus["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{ready}"
    );
    ensure!(
        kinds(&ready).iter().filter(|(_, _, s)| s == "ok").count() == 3,
        "the others stay ok: {ready}"
    );
    server.stop().await?;
    Ok(())
}

async fn signed_link(server: &Server, key: &str, ttl: Duration) -> anyhow::Result<reqwest::Url> {
    let url = server.ctx.backends.blobs.presign_get(key, ttl).await?;
    Ok(reqwest::Url::parse(url.as_str())?)
}

#[tokio::test]
async fn signed_links_serve_local_blobs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Port 0: links are built on the port actually bound.
    let server = pinhole::start(Settings::embedded(dir.path()), ROLES).await?;
    pinhole_blob::put_bytes(
        server.ctx.backends.blobs.as_ref(),
        "originals/a.jpg",
        &b"jpeg bytes"[..],
    )
    .await?;

    let link = signed_link(&server, "originals/a.jpg", Duration::from_secs(60)).await?;
    let response = reqwest::get(link.clone()).await?;
    ensure!(response.status() == 200);
    ensure!(response.headers()["content-type"] == "image/jpeg");
    ensure!(response.bytes().await?.as_ref() == b"jpeg bytes");

    // Another key under the same signature is refused.
    let mut forged = link.clone();
    forged.set_path("/blobs/originals/b.jpg");
    let response = reqwest::get(forged).await?;
    ensure!(response.status() == 403);
    let body: Value = response.json().await?;
    ensure!(body["code"] == "forbidden", "{body}");

    // An expired link is refused. (Links are made per hour, valid at least
    // as long as asked: one that has expired is signed for the past.)
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let expired = server.ctx.signer.sign("originals/a.jpg", now - 1);
    ensure!(reqwest::get(expired.as_str()).await?.status() == 403);
    server.stop().await?;
    Ok(())
}
