//! Data integrity as users and operators see it: a shared original survives
//! any race between its other owner's deletions and edits; nothing is left
//! in the blob store that nothing references, and no reference points at
//! nothing; a blob store that stops answering does not stall likes and
//! log-ins. Each scenario runs on the embedded backends and the real ones
//! (Postgres, Redis, Kafka via tansu, S3 via moto).

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_blob::CheckReport as Report;
use pinhole_images::entity::blob;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, DEADLINE};
use reqwest::{Method, StatusCode};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

/// A small real photo (Storm.jpg at 480×320), so that fifty rounds of
/// processing stay quick; `n` makes its bytes unique.
fn small_photo(n: usize) -> anyhow::Result<Vec<u8>> {
    pinhole_tests::app::small_photo("Storm.jpg", n)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// References counted for a content, `None` when it has no row.
async fn ref_count(app: &App, sha: &str) -> anyhow::Result<Option<i64>> {
    Ok(blob::Entity::find_by_id(sha.to_owned())
        .one(&app.server.ctx.backends.db)
        .await?
        .map(|b| b.ref_count))
}

/// The store against its references, each role's prefixes by their owner
/// (as `pinhole blobs check` does): the images role's, the thumbnails
/// role's.
async fn check(app: &App, grace: Duration, repair: bool) -> anyhow::Result<(Report, Report)> {
    let ctx = &app.server.ctx;
    let b = &ctx.backends;
    let images =
        pinhole_images::store::check(&b.db, b.blobs.as_ref(), &ctx.outbox, grace, repair).await?;
    let thumbnails = pinhole_thumbnails::store::check(b, grace, repair).await?;
    Ok((images, thumbnails))
}

/// Every stored object has a reference and every reference an object,
/// under both roles' prefixes, once the events in flight have been handled
/// (the thumbnails role removes derivatives when it hears of a release).
async fn assert_clean(app: &App) -> anyhow::Result<()> {
    app.probe().assert_clean().await?;
    let (images, _) = check(app, Duration::ZERO, false).await?;
    ensure!(images.objects > 0, "nothing stored: {images:?}");
    Ok(())
}

async fn edit(
    app: &App,
    token: &str,
    id: &str,
    ops: Value,
    query: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    app.call(
        Method::POST,
        &format!("/images/{id}/edits{query}"),
        Some(token),
        Some(json!({ "operations": ops })),
    )
    .await
}

async fn delete(app: &App, token: &str, path: &str) -> anyhow::Result<StatusCode> {
    Ok(app.call(Method::DELETE, path, Some(token), None).await?.0)
}

fn id(v: &Value) -> anyhow::Result<String> {
    Ok(v["id"].as_str().context("id")?.to_owned())
}

/// Bob's copy of the shared bytes is still there, byte for byte, and so
/// is every derivative of it (see [`derivatives_served`] for `thumbnails`).
async fn intact(
    app: &App,
    thumbnails: Option<&str>,
    token: &str,
    image: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let (status, body) = app
        .bytes(&format!("/api/v1/images/{image}/original"), Some(token))
        .await?;
    ensure!(status == StatusCode::OK, "bob's original: {status}");
    ensure!(body == bytes, "bob's original changed");
    derivatives_served(app, thumbnails, token, image).await
}

/// Every derivative the image lists is served. Links to the thumbnails
/// role's own routes (`/t/…`, derivatives made on request) go to the
/// thumbnails server at `thumbnails` when `app` does not serve that role,
/// as an ingress sends them in a deployment.
async fn derivatives_served(
    app: &App,
    thumbnails: Option<&str>,
    token: &str,
    image: &str,
) -> anyhow::Result<()> {
    let (status, record) = app.get(&format!("/images/{image}"), Some(token)).await?;
    ensure!(status == StatusCode::OK, "{status} {record}");
    let derivatives = record["derivatives"].as_array().context("derivatives")?;
    ensure!(derivatives.len() == 8, "{record}");
    for d in derivatives {
        let mut url = d["url"].as_str().context("url")?.to_owned();
        if let Some(elsewhere) = thumbnails
            && let Some(path) = url
                .strip_prefix(&app.server.url())
                .filter(|p| p.starts_with("/t/"))
        {
            url = format!("{elsewhere}{path}");
        }
        let (status, body) = app.bytes(&url, None).await?;
        ensure!(
            status == StatusCode::OK && !body.is_empty(),
            "{} of {image}: {status}",
            d["name"]
        );
    }
    Ok(())
}

/// Objects stored under content `sha`'s derivative folder.
async fn derived(app: &App, sha: &str) -> anyhow::Result<usize> {
    app.stored(&pinhole_events::images::derivative_prefix(sha))
        .await
}

/// Waits until the thumbnails role removed what it derived from `sha`.
async fn derivatives_gone(app: &App, sha: &str) -> anyhow::Result<()> {
    wait_for(
        DEADLINE,
        "the derivatives of released content to go",
        || async { (derived(app, sha).await.ok()? == 0).then_some(()) },
    )
    .await
}

/// Bob and alice upload the same bytes; alice rotates hers, then deletes
/// version 1 and the image at the same moment. Fifty times, with fresh
/// users: bob's original is intact and counted exactly once every time.
async fn shared_original_survives_racing_deletes(app: App) -> anyhow::Result<()> {
    let mut kept = Vec::new();
    for round in 0..50 {
        let bob = app.user(&format!("bob{round}")).await?;
        let alice = app.user(&format!("alice{round}")).await?;
        let bytes = small_photo(round)?;
        let sha = sha256(&bytes);
        let bobs = id(&app.posted(&bob, bytes.clone(), &[]).await?)?;
        let alices = id(&app.posted(&alice, bytes.clone(), &[]).await?)?;
        ensure!(
            ref_count(&app, &sha).await? == Some(2),
            "round {round}: two owners"
        );
        let (status, body) = edit(
            &app,
            &alice,
            &alices,
            json!([{"op": "rotate", "degrees": 90}]),
            "?wait=true&timeout=60",
        )
        .await?;
        ensure!(
            status == StatusCode::OK && body["status"] == "done",
            "round {round}: edit {status} {body}"
        );
        let (version_path, image_path) = (
            format!("/images/{alices}/versions/1"),
            format!("/images/{alices}"),
        );
        let (version, image) = tokio::join!(
            delete(&app, &alice, &version_path),
            delete(&app, &alice, &image_path),
        );
        let (version, image) = (version?, image?);
        ensure!(
            matches!(version, StatusCode::NO_CONTENT | StatusCode::NOT_FOUND),
            "round {round}: version delete {version}"
        );
        ensure!(
            image == StatusCode::NO_CONTENT,
            "round {round}: image delete {image}"
        );
        intact(&app, None, &bob, &bobs, &bytes)
            .await
            .with_context(|| format!("round {round}"))?;
        ensure!(
            ref_count(&app, &sha).await? == Some(1),
            "round {round}: bob's reference is counted {:?} times",
            ref_count(&app, &sha).await?
        );
        kept.push((bob, bobs, bytes));
    }
    assert_clean(&app).await?;
    // Once every release has been heard of, bob's originals and
    // derivatives are all still there.
    for (bob, bobs, bytes) in &kept {
        intact(&app, None, bob, bobs, bytes).await?;
    }
    Ok(())
}

/// `pinhole_blobs_collected_total` as `/metrics` shows it.
async fn collected(app: &App) -> anyhow::Result<u64> {
    let text = app
        .http
        .get(format!("{}/metrics", app.server.url()))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("pinhole_blobs_collected_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64))
}

/// An edit that finishes after its image was deleted leaves nothing behind;
/// two edits of one image at once both become versions, counted exactly.
async fn edits_racing_deletes_leave_nothing(app: App) -> anyhow::Result<()> {
    let bob = app.user("bob").await?;
    let alice = app.user("alice").await?;
    let bytes = small_photo(1)?;
    let sha = sha256(&bytes);
    let bobs = id(&app.posted(&bob, bytes.clone(), &[]).await?)?;

    // The edit is queued; the image goes before its result comes back.
    let alices = id(&app.posted(&alice, bytes.clone(), &[]).await?)?;
    let before = collected(&app).await?;
    let (status, body) = edit(
        &app,
        &alice,
        &alices,
        json!([{"op": "rotate", "degrees": 180}]),
        "",
    )
    .await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    ensure!(delete(&app, &alice, &format!("/images/{alices}")).await? == StatusCode::NO_CONTENT);
    // Whichever came first, the edit's result is collected once.
    wait_for(DEADLINE, "the edit's result to be collected", || async {
        (collected(&app).await.ok()? > before).then_some(())
    })
    .await?;
    intact(&app, None, &bob, &bobs, &bytes).await?;
    ensure!(
        ref_count(&app, &sha).await? == Some(1),
        "{:?}",
        ref_count(&app, &sha).await?
    );
    assert_clean(&app).await?;

    // Two edits at once.
    let alices = id(&app.posted(&alice, bytes.clone(), &[]).await?)?;
    let (a, b) = tokio::join!(
        edit(
            &app,
            &alice,
            &alices,
            json!([{"op": "rotate", "degrees": 90}]),
            "?wait=true&timeout=60"
        ),
        edit(
            &app,
            &alice,
            &alices,
            json!([{"op": "flip", "direction": "horizontal"}]),
            "?wait=true&timeout=60"
        ),
    );
    for (status, body) in [a?, b?] {
        ensure!(
            status == StatusCode::OK && body["status"] == "done",
            "{status} {body}"
        );
    }
    let (_, versions) = app
        .get(&format!("/images/{alices}/versions"), Some(&alice))
        .await?;
    let items = versions["items"].as_array().context("items")?;
    ensure!(items.len() == 3, "three versions: {versions}");
    let rows = pinhole_images::entity::image_version::Entity::find()
        .all(&app.server.ctx.backends.db)
        .await?;
    let edited: Vec<String> = rows
        .iter()
        .filter(|v| v.sha256 != sha)
        .map(|v| v.sha256.clone())
        .collect();
    ensure!(edited.len() == 2, "{rows:?}");
    for s in &edited {
        ensure!(
            ref_count(&app, s).await? == Some(1),
            "edit result {s}: {:?}",
            ref_count(&app, s).await?
        );
    }
    ensure!(
        ref_count(&app, &sha).await? == Some(2),
        "shared: {:?}",
        ref_count(&app, &sha).await?
    );
    assert_clean(&app).await?;
    ensure!(delete(&app, &alice, &format!("/images/{alices}")).await? == StatusCode::NO_CONTENT);
    for s in &edited {
        ensure!(
            ref_count(&app, s).await?.is_none(),
            "edit result {s} not collected"
        );
        ensure!(
            app.stored(&format!("originals/{}/{s}.", &s[..2])).await? == 0,
            "edit result {s}: original still stored"
        );
        // Nobody else has those bytes: what was derived from them goes.
        derivatives_gone(&app, s).await?;
    }
    ensure!(ref_count(&app, &sha).await? == Some(1));
    assert_clean(&app).await?;
    // The shared bytes were not released: bob's original and derivatives
    // stay.
    ensure!(derived(&app, &sha).await? > 0);
    intact(&app, None, &bob, &bobs, &bytes).await
}

/// Logs `name` in: a session for another server on the same backends.
async fn log_in(app: &App, name: &str) -> anyhow::Result<String> {
    let (status, body) = app
        .call(
            Method::POST,
            "/sessions",
            None,
            Some(json!({"login": name, "password": pinhole_tests::app::PASSWORD})),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "log-in {status} {body}");
    Ok(body["access_token"].as_str().context("token")?.to_owned())
}

/// An edit whose result comes back only after its image was deleted: no
/// thumbnails role runs while the edit is asked for and the image deleted,
/// and one starts only then. The task went with the image and stays gone;
/// the result is nobody's, counted nowhere and collected once; its staged
/// copy and what was derived from it go; the original alice shared with
/// bob stays his.
async fn edit_finishing_after_its_image_is_deleted(app: App) -> anyhow::Result<()> {
    let bob = app.user("bob").await?;
    let alice = app.user("alice").await?;
    let bytes = small_photo(2)?;
    let sha = sha256(&bytes);
    let bobs = id(&app.posted(&bob, bytes.clone(), &[]).await?)?;
    let alices = id(&app.posted(&alice, bytes.clone(), &[]).await?)?;

    // The same backends without the thumbnails role: the edit waits in its
    // queue.
    let App {
        server,
        mut settings,
        http,
        dir,
        ..
    } = app;
    server.stop().await?;
    settings.listen = "127.0.0.1:0".parse()?;
    let roles: &'static [&'static str] = &["users", "images"];
    let app = App {
        server: pinhole::start(settings.clone(), roles).await?,
        roles,
        settings,
        http,
        dir,
    };
    let (bob, alice) = (log_in(&app, "bob").await?, log_in(&app, "alice").await?);
    let (status, body) = edit(
        &app,
        &alice,
        &alices,
        json!([{"op": "rotate", "degrees": 90}]),
        "",
    )
    .await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    let task = format!("/tasks/{}", body["task_id"].as_str().context("task id")?);
    let (status, queued) = app.get(&task, Some(&alice)).await?;
    ensure!(
        status == StatusCode::OK && queued["status"] == "queued",
        "{status} {queued}"
    );
    ensure!(delete(&app, &alice, &format!("/images/{alices}")).await? == StatusCode::NO_CONTENT);
    let (status, gone) = app.get(&task, Some(&alice)).await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "the task goes with its image: {status} {gone}"
    );
    ensure!(ref_count(&app, &sha).await? == Some(1), "bob's reference");
    let before = collected(&app).await?;

    // Only now is the edit made, and its result reported.
    let thumbnails = pinhole::start(app.settings.clone(), &[pinhole_thumbnails::ROLE]).await?;
    let settled = async {
        wait_for(
            DEADLINE * 2,
            "the edit's result to be collected",
            || async { (collected(&app).await.ok()? > before).then_some(()) },
        )
        .await?;
        let (status, gone) = app.get(&task, Some(&alice)).await?;
        ensure!(
            status == StatusCode::NOT_FOUND,
            "the result brought the task back: {status} {gone}"
        );
        // Nothing but the shared bytes is counted: the result was not
        // taken for anyone's.
        let rows = blob::Entity::find()
            .all(&app.server.ctx.backends.db)
            .await?;
        ensure!(
            rows.len() == 1 && rows[0].sha256 == sha && rows[0].ref_count == 1,
            "{rows:?}"
        );
        intact(&app, Some(&thumbnails.url()), &bob, &bobs, &bytes).await?;
        assert_clean(&app).await
    }
    .await;
    thumbnails.stop().await?;
    settled
}

/// What no request cleans up (an original stored before a transaction that
/// failed, derivatives and transforms written after their content was
/// released, a tus part nobody records) is found and removed by the sweep
/// of the role that owns it, after its grace period and not before; an
/// upload of the same bytes while the sweep removes them keeps its
/// original. A staged edit result waits longer than the grace period.
async fn sweep_removes_orphans(app: App) -> anyhow::Result<()> {
    let alice = app.user("alice").await?;
    let blobs = app.server.ctx.backends.blobs.clone();
    let put = |key: String, bytes: Vec<u8>| {
        let blobs = blobs.clone();
        async move { pinhole_blob::put_bytes(blobs.as_ref(), &key, bytes).await }
    };
    // A content released with its image: the thumbnails role hears of it
    // and removes its derivatives (and the image from its catalog).
    let gone = small_photo(7)?;
    let gone_sha = sha256(&gone);
    let img = id(&app.posted(&alice, gone.clone(), &[]).await?)?;
    ensure!(derived(&app, &gone_sha).await? > 0);
    ensure!(delete(&app, &alice, &format!("/images/{img}")).await? == StatusCode::NO_CONTENT);
    derivatives_gone(&app, &gone_sha).await?;
    wait_for(DEADLINE, "the catalog to hear of the deletion", || async {
        let (_, thumbnails) = check(&app, Duration::ZERO, false).await.ok()?;
        (thumbnails.missing == 0).then_some(())
    })
    .await?;
    // A late worker writes for a content released before (another one: a
    // redelivered `content.released` of the first would rightly remove
    // them at once).
    let late_sha = sha256(&small_photo(10)?);
    let folder = pinhole_events::images::derivative_prefix(&late_sha);
    put(format!("{folder}w640.jpg"), b"late derivative".to_vec()).await?;
    put(format!("{folder}t/abc.webp"), b"late transform".to_vec()).await?;
    // An original stored ahead of a transaction that then failed.
    let failed = small_photo(8)?;
    let failed_sha = sha256(&failed);
    put(
        pinhole_events::images::original_key(&failed_sha, "jpg"),
        failed.clone(),
    )
    .await?;
    // A tus part no upload records.
    put(
        format!("uploads/{}/00000000000000000000-x", uuid::Uuid::new_v4()),
        b"part".to_vec(),
    )
    .await?;
    // An edit result staged a moment ago, not settled yet.
    let staged =
        pinhole_thumbnails::store::staged_edit_key(uuid::Uuid::now_v7(), &failed_sha, "jpg");
    put(staged.clone(), b"staged".to_vec()).await?;

    let (images, thumbnails) = check(&app, Duration::from_secs(3600), false).await?;
    ensure!(
        images.orphaned == 0 && images.recent == 2,
        "images: in flight, not orphans: {images:?}"
    );
    ensure!(
        thumbnails.orphaned == 0 && thumbnails.recent == 3,
        "thumbnails: in flight, not orphans: {thumbnails:?}"
    );
    let (images, thumbnails) = check(&app, Duration::ZERO, false).await?;
    ensure!(images.orphaned == 2 && images.missing == 0, "{images:?}");
    ensure!(
        thumbnails.orphaned == 2 && thumbnails.missing == 0,
        "{thumbnails:?}"
    );
    // Only its owner's check finds an object.
    ensure!(
        images
            .orphan_examples
            .iter()
            .all(|k| k.starts_with("originals/") || k.starts_with("uploads/"))
            && thumbnails
                .orphan_examples
                .iter()
                .all(|k| k.starts_with(&folder)),
        "{images:?} {thumbnails:?}"
    );
    // Staged longer than the grace period but not by the margin: still in
    // flight.
    ensure!(thumbnails.recent == 1, "{thumbnails:?}");

    // The sweep and an upload of the orphaned original's bytes at once.
    let (repaired, uploaded) = tokio::join!(
        check(&app, Duration::ZERO, true),
        app.posted(&alice, failed.clone(), &[]),
    );
    let (images, thumbnails) = repaired?;
    let uploaded = id(&uploaded?)?;
    ensure!(images.removed >= 1, "{images:?}");
    ensure!(thumbnails.removed == 2, "{thumbnails:?}");
    ensure!(
        pinhole_blob::exists(blobs.as_ref(), &staged).await?,
        "a staged edit result was taken for an orphan"
    );
    blobs.delete(&staged).await?;
    intact(&app, None, &alice, &uploaded, &failed).await?;
    assert_clean(&app).await?;
    ensure!(
        !pinhole_blob::exists(blobs.as_ref(), &format!("{folder}t/abc.webp")).await?,
        "the late transform is still there"
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.server.url()))
        .send()
        .await?
        .text()
        .await?;
    let removed_by = |role: &str| {
        metrics.lines().any(|l| {
            l.starts_with("pinhole_blobs_orphans_removed_total{")
                && l.contains(&format!("role=\"{role}\""))
        })
    };
    ensure!(
        removed_by("images")
            && removed_by("thumbnails")
            && metrics.contains("pinhole_blobs_missing{role=\"images\"} 0"),
        "metrics: {metrics}"
    );

    // A reference whose object went is reported missing.
    app.posted(&alice, small_photo(9)?, &[]).await?;
    let sha = sha256(&small_photo(9)?);
    let key = pinhole_events::images::original_key(&sha, "jpg");
    blobs.delete(&key).await?;
    let (images, _) = check(&app, Duration::ZERO, false).await?;
    ensure!(
        images.missing == 1 && images.missing_examples[0].contains(&sha),
        "{images:?}"
    );
    put(key, small_photo(9)?).await?;
    assert_clean(&app).await
}

/// Images of `owner` still stored.
async fn images_of(app: &App, owner: uuid::Uuid) -> anyhow::Result<u64> {
    use pinhole_images::entity::image;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    Ok(image::Entity::find()
        .filter(image::Column::OwnerId.eq(owner))
        .count(&app.server.ctx.backends.db)
        .await?)
}

/// Deleting an account with many images removes them in batches, and other
/// people's uploads finish meanwhile instead of waiting for the whole purge.
async fn account_purge_does_not_hold_up_others(app: App) -> anyhow::Result<()> {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
    const COPIES: usize = 300;
    let carl = app.user("carl").await?;
    let dana = app.user("dana").await?;
    let bytes = small_photo(11)?;
    let sha = sha256(&bytes);
    let first = app.posted(&carl, bytes.clone(), &[]).await?;
    let owner: uuid::Uuid = first["owner"]["id"].as_str().context("owner id")?.parse()?;
    // Many more images (made directly: the purge is what is under test,
    // not three hundred uploads), each counted on content of its own.
    let db = &app.server.ctx.backends.db;
    let model =
        pinhole_images::entity::image::Entity::find_by_id(id(&first)?.parse::<uuid::Uuid>()?)
            .one(db)
            .await?
            .context("the image row")?;
    for n in 0..COPIES {
        let fake = format!("{n:064x}");
        blob::ActiveModel {
            sha256: Set(fake.clone()),
            blob_key: Set(pinhole_events::images::original_key(&fake, "jpg")),
            size: Set(1),
            format: Set("jpeg".into()),
            ref_count: Set(1),
            created_at: Set(chrono::Utc::now()),
            collecting_since: Set(None),
        }
        .insert(db)
        .await?;
        let mut copy = model.clone().into_active_model().reset_all();
        copy.id = Set(uuid::Uuid::now_v7());
        copy.sha256 = Set(fake);
        copy.derivatives = Set(None);
        copy.insert(db).await?;
    }
    ensure!(images_of(&app, owner).await? == 1 + COPIES as u64);

    let (status, _) = app.call(Method::DELETE, "/me", Some(&carl), None).await?;
    ensure!(status == StatusCode::NO_CONTENT, "{status}");
    // Someone else's upload is taken while the purge is still going (its
    // processing does not wait for the purge either).
    let started = Instant::now();
    let (status, accepted) = app.upload(&dana, small_photo(12)?, &[], "").await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {accepted}");
    let left = images_of(&app, owner).await?;
    ensure!(
        left > 0,
        "dana's upload was taken only after the whole purge ({:?})",
        started.elapsed()
    );
    eprintln!(
        "dana's upload was taken in {:?} with {left} of carl's images left",
        started.elapsed()
    );
    let task = app
        .task_done(&dana, accepted["task_id"].as_str().context("task id")?)
        .await?;
    ensure!(task["status"] == "done", "{task}");
    // Her task ended while carl's images were still being removed: it did
    // not wait for the purge either.
    let left = images_of(&app, owner).await?;
    ensure!(
        left > 0,
        "dana's task ended only after the whole purge ({:?})",
        started.elapsed()
    );
    eprintln!(
        "dana's task ended in {:?} with {left} of carl's images left",
        started.elapsed()
    );
    // Each removal also collects its content (S3 calls on the real
    // backends): minutes on a loaded machine.
    wait_for(DEADLINE * 4, "the purge to end", || async {
        (images_of(&app, owner).await.ok()? == 0).then_some(())
    })
    .await?;
    wait_for(DEADLINE, "carl's original to be collected", || async {
        ref_count(&app, &sha).await.ok()?.is_none().then_some(())
    })
    .await?;
    assert_clean(&app).await
}

pinhole_tests::backends!(
    shared_original_survives_racing_deletes,
    edits_racing_deletes_leave_nothing,
    edit_finishing_after_its_image_is_deleted,
    sweep_removes_orphans,
    account_purge_does_not_hold_up_others,
);

/// With the S3 server hanging (connections accepted, nothing answered),
/// deletions and uploads that need it wait for its timeouts, and nothing
/// else does: likes and log-ins answer within a second. On SQLite (one
/// write lock) and on Postgres.
async fn stalled_blob_store(postgres: bool) -> anyhow::Result<()> {
    let moto = pinhole_testkit::s3_endpoint();
    let target = moto.trim_start_matches("http://").to_owned();
    let proxy = pinhole_testkit::StallProxy::start(&target).await?;
    let dir = tempfile::tempdir()?;
    let mut settings = pinhole_config::Settings::embedded(dir.path());
    if postgres {
        settings.database =
            pinhole_config::DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
    }
    let mut s3 = pinhole_testkit::s3_settings("pinhole");
    s3.endpoint = Some(format!("http://{}", proxy.addr));
    s3.prefix = pinhole_testkit::unique("stall");
    s3.connect_timeout = Duration::from_secs(1);
    s3.read_timeout = Duration::from_secs(2);
    s3.operation_timeout = Duration::from_secs(4);
    pinhole_blob::S3Store::new(&s3).ensure_bucket().await?;
    settings.blob = pinhole_config::BlobUrl::S3(s3);
    let app = App::start(settings, dir).await?;

    let alice = app.user("alice").await?;
    let bob = app.user("bob").await?;
    let doomed = id(&app.posted(&alice, small_photo(1)?, &[]).await?)?;
    let liked = id(&app.posted(&alice, small_photo(2)?, &[]).await?)?;

    proxy.stall(true);
    let started = Instant::now();
    let deletion = {
        let (http, url, token) = (
            app.http.clone(),
            app.url(&format!("/images/{doomed}")),
            alice.clone(),
        );
        tokio::spawn(async move {
            http.delete(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    let upload = {
        let (http, url, token) = (app.http.clone(), app.url("/images"), alice.clone());
        let file = small_photo(3)?;
        tokio::spawn(async move {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(file).file_name("p.jpg"),
            );
            http.post(url)
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    // While those wait on the store: likes and log-ins, timed.
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/images/{liked}/like"),
                Some(&bob),
                None,
            )
            .await?;
        ensure!(status.is_success(), "like: {status} {body}");
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/images/{liked}/like"),
                Some(&bob),
                None,
            )
            .await?;
        ensure!(status.is_success(), "unlike: {status}");
        let (status, body) = app
            .call(
                Method::POST,
                "/sessions",
                None,
                Some(json!({"login": "bob", "password": pinhole_tests::app::PASSWORD})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "log-in: {status} {body}");
        slowest = slowest.max(t.elapsed());
        ensure!(
            t.elapsed() < Duration::from_secs(1),
            "a like, an unlike and a log-in took {:?}",
            t.elapsed()
        );
    }
    // The store's own calls end by their timeouts, not never.
    let upload = tokio::time::timeout(Duration::from_secs(30), upload)
        .await
        .context("the upload waited on the hung store for 30 s")???;
    ensure!(
        upload == StatusCode::SERVICE_UNAVAILABLE,
        "upload while the store hangs: {upload}"
    );
    let deletion = tokio::time::timeout(Duration::from_secs(30), deletion)
        .await
        .context("the deletion waited on the hung store for 30 s")???;
    ensure!(deletion == StatusCode::NO_CONTENT, "deletion: {deletion}");
    eprintln!("slowest like+unlike+log-in while the store hung: {slowest:?}");

    // Once it answers again, the deleted content is collected and the
    // failed upload's original found as an orphan.
    proxy.stall(false);
    let ctx = &app.server.ctx;
    let b = &ctx.backends;
    pinhole_images::store::collect_all(&b.db, b.blobs.as_ref(), &ctx.outbox).await?;
    check(&app, Duration::ZERO, true).await?;
    assert_clean(&app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_blob_store_sqlite() -> anyhow::Result<()> {
    stalled_blob_store(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_blob_store_postgres() -> anyhow::Result<()> {
    stalled_blob_store(true).await
}

/// A reverse proxy in front of the S3 server that notes every request
/// passing through it: one per role's server, so that a test sees which
/// role wrote or deleted which key. Stops when dropped.
struct S3Tap {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(Method, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl S3Tap {
    async fn start(target: &str) -> anyhow::Result<Self> {
        use axum::body::Body;
        use axum::extract::{Request, State};
        use axum::response::Response;

        type Shared = (
            reqwest::Client,
            String,
            std::sync::Arc<std::sync::Mutex<Vec<(Method, String)>>>,
        );
        async fn relay(State((http, target, seen)): State<Shared>, request: Request) -> Response {
            let (parts, body) = request.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
            if let Ok(mut seen) = seen.lock() {
                seen.push((parts.method.clone(), path.clone()));
            }
            let failed = |e: String| {
                Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .body(Body::from(e))
                    .unwrap_or_default()
            };
            let body = match axum::body::to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(e) => return failed(e.to_string()),
            };
            let mut forward = http.request(parts.method, format!("{target}{path}"));
            for (name, value) in &parts.headers {
                if !matches!(
                    name.as_str(),
                    "host" | "content-length" | "transfer-encoding" | "connection" | "expect"
                ) {
                    forward = forward.header(name, value);
                }
            }
            let answer = match forward.body(body).send().await {
                Ok(a) => a,
                Err(e) => return failed(e.to_string()),
            };
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                // The length stays: a HEAD answer's is the object's size.
                if !matches!(name.as_str(), "transfer-encoding" | "connection") {
                    response = response.header(name, value);
                }
            }
            match answer.bytes().await {
                Ok(bytes) => response.body(Body::from(bytes)).unwrap_or_default(),
                Err(e) => failed(e.to_string()),
            }
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let state: Shared = (
            reqwest::Client::new(),
            target.trim_end_matches('/').to_owned(),
            seen.clone(),
        );
        let router = axum::Router::new().fallback(relay).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { addr, seen, task })
    }

    /// The keys (under `bucket/prefix`, as `S3Store` names them) written
    /// (`PUT`, `POST`) and deleted so far; any other write is returned as
    /// it was sent.
    fn changes(&self, bucket: &str, prefix: &str) -> Vec<(&'static str, String)> {
        let root = if prefix.is_empty() {
            format!("/{bucket}")
        } else {
            format!("/{bucket}/{prefix}")
        };
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        seen.into_iter()
            .filter_map(|(method, path)| {
                let op = match method {
                    Method::PUT | Method::POST => "write",
                    Method::DELETE => "delete",
                    _ => return None,
                };
                let object = path.split('?').next().unwrap_or_default();
                let key = object
                    .strip_prefix(&root)
                    .and_then(|k| k.strip_prefix('/'))
                    .map_or_else(
                        || format!("(not an object of this store) {path}"),
                        |k| k.replace("%3D", "="),
                    );
                Some((op, key))
            })
            .collect()
    }
}

impl Drop for S3Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every blob prefix has one owner: only that role writes or deletes under
/// it (others read, and ask it by event). The images role's and the
/// thumbnails role's servers run apart, each talking to S3 through a tap of
/// its own; through uploads of the same bytes by two people, an edit, a
/// stored transform and both deletions, each tap sees only its role's
/// prefixes written and deleted, and in the end nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_write_and_delete_only_under_their_own_prefixes() -> anyhow::Result<()> {
    use pinhole_events::images::{IMAGES_PREFIXES, THUMBNAILS_PREFIXES};

    let dir = tempfile::tempdir()?;
    let base = pinhole_tests::real_settings(dir.path(), "owners").await?;
    let pinhole_config::BlobUrl::S3(s3) = base.blob.clone() else {
        anyhow::bail!("the real settings store blobs on S3");
    };
    let moto = s3.endpoint.clone().context("the S3 endpoint")?;
    let (images_tap, thumbnails_tap) = (S3Tap::start(&moto).await?, S3Tap::start(&moto).await?);
    let through = |tap: &S3Tap| {
        let mut settings = base.clone();
        let mut s3 = s3.clone();
        s3.endpoint = Some(format!("http://{}", tap.addr));
        settings.blob = pinhole_config::BlobUrl::S3(s3);
        settings.callback_allow_private = true;
        settings.signup_limit = 0;
        settings.max_upload_bytes = 12 * 1024 * 1024;
        settings
    };
    let thumbnails = pinhole::start(through(&thumbnails_tap), &["thumbnails"]).await?;
    // The users role writes no blobs; it shares the images role's server.
    let settings = through(&images_tap);
    let app = App {
        server: pinhole::start(settings.clone(), &["users", "images"]).await?,
        roles: &["users", "images"],
        settings,
        http: reqwest::Client::new(),
        dir: std::sync::Arc::new(dir),
    };

    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    let bytes = small_photo(21)?;
    let sha = sha256(&bytes);
    let adas = id(&app.posted(&ada, bytes.clone(), &[]).await?)?;
    let bobs = id(&app.posted(&bob, bytes.clone(), &[]).await?)?;
    let (status, body) = edit(
        &app,
        &ada,
        &adas,
        json!([{"op": "rotate", "degrees": 90}]),
        "?wait=true&timeout=60",
    )
    .await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "done",
        "edit: {status} {body}"
    );
    let (_, edited) = app.get(&format!("/images/{adas}"), Some(&ada)).await?;
    ensure!(edited["version"] == 2, "{edited}");
    let edited_sha = pinhole_images::entity::image::Entity::find_by_id(adas.parse::<uuid::Uuid>()?)
        .one(&app.server.ctx.backends.db)
        .await?
        .context("ada's image row")?
        .sha256;
    ensure!(edited_sha != sha, "the edit made other bytes");
    // The new version is served, rotated, from the images role's originals.
    let (status, v2) = app
        .bytes(
            &format!("/api/v1/images/{adas}/versions/2/original"),
            Some(&ada),
        )
        .await?;
    ensure!(status == StatusCode::OK, "version 2: {status}");
    let v2 = image::load_from_memory(&v2)?;
    ensure!(
        (v2.width(), v2.height()) == (320, 480),
        "{}×{}",
        v2.width(),
        v2.height()
    );
    // A transform, stored by the thumbnails role beside the derivatives.
    let signer =
        pinhole_thumbnails::transform_signer(&thumbnails.ctx.settings, &thumbnails.ctx.signer)
            .map_err(anyhow::Error::msg)?;
    let path = signer.url_path("rs:fill:100:100", &adas, "webp");
    wait_for(DEADLINE, "a transform of ada's image", || async {
        let r = app
            .http
            .get(format!("{}{path}", thumbnails.url()))
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await?;
    wait_for(DEADLINE, "the staged edit result to be settled", || async {
        (app.stored("edits/").await.ok()? == 0).then_some(())
    })
    .await?;

    // Ada's image goes: its edited content is released (nobody else has
    // it); the shared bytes stay with bob, derivatives and all.
    ensure!(delete(&app, &ada, &format!("/images/{adas}")).await? == StatusCode::NO_CONTENT);
    derivatives_gone(&app, &edited_sha).await?;
    intact(&app, Some(&thumbnails.url()), &bob, &bobs, &bytes).await?;
    ensure!(derived(&app, &sha).await? > 0, "bob's derivatives went");
    // Bob's goes too: nothing is left under any prefix.
    ensure!(delete(&app, &bob, &format!("/images/{bobs}")).await? == StatusCode::NO_CONTENT);
    wait_for(DEADLINE, "every object to be removed", || async {
        for prefix in IMAGES_PREFIXES.iter().chain(THUMBNAILS_PREFIXES) {
            if app.stored(prefix).await.ok()? > 0 {
                return None;
            }
        }
        Some(())
    })
    .await?;

    let mut foreign = Vec::new();
    for (role, tap, owned) in [
        ("images", &images_tap, IMAGES_PREFIXES),
        ("thumbnails", &thumbnails_tap, THUMBNAILS_PREFIXES),
    ] {
        let changes = tap.changes(&s3.bucket, &s3.prefix);
        for op in ["write", "delete"] {
            ensure!(
                changes
                    .iter()
                    .any(|(o, k)| *o == op && owned.iter().any(|p| k.starts_with(p))),
                "the {role} role's tap saw no {op}: {changes:?}"
            );
        }
        foreign.extend(
            changes
                .into_iter()
                .filter(|(_, key)| !owned.iter().any(|p| key.starts_with(p)))
                .map(|(op, key)| format!("{role} {op} {key}")),
        );
    }
    ensure!(
        foreign.is_empty(),
        "roles wrote or deleted under prefixes they do not own:\n{}",
        foreign.join("\n")
    );
    let probe = app.probe();
    probe.assert_clean().await?;
    app.server.stop().await?;
    thumbnails.stop().await?;
    Ok(())
}
