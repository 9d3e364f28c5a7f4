//! The event contract as another program sees it: every event the roles
//! emit during a day of use is a CloudEvents 1.0 envelope whose type the
//! served AsyncAPI document lists on its topic, and that document passes
//! the official AsyncAPI parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_events::Envelope;
use pinhole_events::topics;
use pinhole_tests::app::{App, photo};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `(topic, type)` pairs the document lists.
async fn documented(app: &App) -> anyhow::Result<(Value, BTreeSet<(String, String)>)> {
    let doc: Value = app
        .http
        .get(format!("{}/api/asyncapi.json", app.server.url()))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut listed = BTreeSet::new();
    for channel in doc["channels"].as_object().context("channels")?.values() {
        let address = channel["address"].as_str().context("address")?;
        for message in channel["messages"]
            .as_object()
            .context("messages")?
            .values()
        {
            let reference = message["$ref"].as_str().context("$ref")?;
            let id = reference.rsplit('/').next().context("id")?;
            let name = doc["components"]["messages"][id]["name"]
                .as_str()
                .context("name")?;
            listed.insert((address.to_owned(), name.to_owned()));
        }
    }
    Ok((doc, listed))
}

/// A day of use: accounts, a private account's follow request approved and
/// another denied, blocks, profile changes, uploads, an edit, comments,
/// likes, deletions.
async fn a_day_of_use(app: &App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bo = app.user("bob").await?;
    let cy = app.user("cyd").await?;
    let call = |m: Method, path: &str, token: &str, body: Option<Value>| {
        let (path, token) = (path.to_owned(), token.to_owned());
        async move { app.call(m, &path, Some(&token), body).await }
    };
    let (s, b) = call(
        Method::PATCH,
        "/me",
        &ada,
        Some(json!({"is_private": true, "display_name": "Ada"})),
    )
    .await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    ensure!(
        call(Method::POST, "/users/ada/follow", &bo, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::POST, "/users/ada/follow", &cy, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::POST, "/me/follow-requests/bob/approve", &ada, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::POST, "/me/follow-requests/cyd/deny", &ada, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::POST, "/users/cyd/block", &bo, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::DELETE, "/users/cyd/block", &bo, None)
            .await?
            .0
            .is_success()
    );
    let image = app
        .posted(
            &ada,
            photo("Storm.jpg")?,
            &[("title", "storm"), ("visibility", "followers")],
        )
        .await?;
    let id = image["id"].as_str().context("id")?.to_owned();
    let (s, b) = call(
        Method::PATCH,
        &format!("/images/{id}"),
        &ada,
        Some(json!({"title": "a storm"})),
    )
    .await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    let (s, b) = call(
        Method::POST,
        &format!("/images/{id}/edits?wait=true&timeout=60"),
        &ada,
        Some(json!({"operations": [{"op": "rotate", "degrees": 90}]})),
    )
    .await?;
    ensure!(s == StatusCode::OK && b["status"] == "done", "{s} {b}");
    let (s, comment) = call(
        Method::POST,
        &format!("/images/{id}/comments"),
        &bo,
        Some(json!({"body": "wow"})),
    )
    .await?;
    ensure!(s == StatusCode::CREATED, "{s} {comment}");
    let comment_id = comment["id"].as_str().context("comment id")?;
    ensure!(
        call(Method::POST, &format!("/images/{id}/like"), &bo, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::DELETE, &format!("/images/{id}/like"), &bo, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(
            Method::DELETE,
            &format!("/images/{id}/comments/{comment_id}"),
            &ada,
            None
        )
        .await?
        .0
        .is_success()
    );
    ensure!(
        call(Method::POST, "/users/ada/follow", &cy, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::DELETE, "/users/ada/follow", &cy, None)
            .await?
            .0
            .is_success()
    );
    ensure!(
        call(Method::DELETE, &format!("/images/{id}"), &ada, None)
            .await?
            .0
            == StatusCode::NO_CONTENT
    );
    ensure!(call(Method::DELETE, "/me", &ada, None).await?.0 == StatusCode::NO_CONTENT);
    Ok(())
}

/// Every record on every topic, read by a consumer group of the test's own
/// until `user.deleted` (the day's last event) has come and a second has
/// passed with nothing more.
async fn every_record(app: &App) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut sub = app
        .server
        .ctx
        .backends
        .bus
        .subscribe(&pinhole_testkit::unique("audit"), topics::ALL)
        .await?;
    let started = Instant::now();
    let mut records = Vec::new();
    let mut finished_at: Option<Instant> = None;
    while started.elapsed() < Duration::from_secs(120) {
        match sub.next(Duration::from_millis(250)).await? {
            Some(r) => {
                if Envelope::from_json(&r.payload).is_ok_and(|e| e.kind == "user.deleted") {
                    finished_at = Some(Instant::now());
                }
                records.push((r.topic.clone(), r.payload.clone()));
            }
            None if finished_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) => break,
            None => {}
        }
    }
    ensure!(
        finished_at.is_some(),
        "user.deleted never came ({} records)",
        records.len()
    );
    Ok(records)
}

async fn every_event_is_documented(app: App) -> anyhow::Result<()> {
    let (doc, listed) = documented(&app).await?;
    a_day_of_use(&app).await?;
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (topic, payload) in every_record(&app).await? {
        let plain: Value = serde_json::from_slice(&payload).context("not JSON")?;
        ensure!(plain["specversion"] == "1.0", "{plain}");
        for attr in ["id", "source", "type", "time", "subject", "data"] {
            ensure!(plain.get(attr).is_some(), "{attr} missing: {plain}");
        }
        let envelope = Envelope::from_json(&payload)?;
        ensure!(envelope.id.get_version_num() == 7, "{plain}");
        // The Namespaced bus hands back the topic's plain name.
        let key = (topic.clone(), envelope.kind.clone());
        ensure!(listed.contains(&key), "emitted but not documented: {key:?}");
        *seen.entry(key).or_default() += 1;
    }
    for expected in [
        "user.registered",
        "user.updated",
        "user.deleted",
        "follow.requested",
        "follow.created",
        "follow.removed",
        "block.created",
        "block.removed",
        "image.uploaded",
        "image.published",
        "image.updated",
        "image.deleted",
        "comment.created",
        "comment.deleted",
        "like.created",
        "like.removed",
        "image.edit_requested",
        "image.edited",
        "image.edit_settled",
        "image.processed",
        "content.released",
    ] {
        ensure!(
            seen.keys().any(|(_, k)| k == expected),
            "no {expected} seen: {seen:?}"
        );
    }

    // A plain Kafka client outside the project reads every one of them as
    // a CloudEvent with the CNCF SDK.
    if matches!(
        app.server.ctx.settings.bus,
        pinhole_config::BusUrl::Kafka(_)
    ) {
        let emitted: usize = seen.values().sum();
        let namespace = &app.server.ctx.settings.bus_namespace;
        let mut reader = std::process::Command::new(pinhole_testkit::infra_python());
        reader
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("cloudevents/read.py"))
            .arg(pinhole_testkit::kafka_brokers())
            .arg(pinhole_testkit::unique("plain"))
            .arg(emitted.to_string());
        for topic in topics::ALL {
            reader.arg(if namespace.is_empty() {
                (*topic).to_owned()
            } else {
                format!("{namespace}.{topic}")
            });
        }
        let out = reader
            .output()
            .context("running tests/cloudevents/read.py (infra/test.sh installs its clients)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "the plain Kafka client: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut parsed: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines().filter(|l| l.starts_with("OK ")) {
            let kind = line.split(' ').nth(2).context("type")?;
            *parsed.entry(kind.to_owned()).or_default() += 1;
        }
        let mut expected: BTreeMap<String, usize> = BTreeMap::new();
        for ((_, kind), n) in &seen {
            *expected.entry(kind.clone()).or_default() += n;
        }
        ensure!(parsed == expected, "read {parsed:?}, emitted {expected:?}");
    }

    // The official parser accepts the served document.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("asyncapi");
    let file = app.dir.path().join("asyncapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc)?)?;
    let out = std::process::Command::new("node")
        .arg(dir.join("check.mjs"))
        .arg(&file)
        .current_dir(&dir)
        .output()
        .context("running node (infra/test.sh installs it and the parser)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && text.trim_end().ends_with("valid") && !text.contains("INVALID"),
        "the AsyncAPI parser: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(!text.lines().any(|l| l.starts_with("0 ")), "errors: {text}");
    Ok(())
}

pinhole_tests::backends!(every_event_is_documented);
