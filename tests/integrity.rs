//! Data integrity as users and operators see it: a shared original survives
//! any race between its other owner's deletions and edits; nothing is left
//! in the blob store that nothing references, and no reference points at
//! nothing; a blob store that stops answering does not stall likes and
//! log-ins. Each scenario runs on the embedded backends and the real ones
//! (Postgres, Redis, Kafka via tansu, S3 via moto).

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_images::entity::blob;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, DEADLINE, photo, variant};
use reqwest::{Method, StatusCode};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

/// A small real photo (Storm.jpg at 480×320), so that fifty rounds of
/// processing stay quick; `n` makes its bytes unique.
fn small_photo(n: usize) -> anyhow::Result<Vec<u8>> {
    let full = image::load_from_memory(&photo("Storm.jpg")?)?;
    let small = full.resize(480, 320, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    small
        .to_rgb8()
        .write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(variant(&out.into_inner(), n))
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

/// The store against its references (as `pinhole blobs check` does).
async fn check(
    app: &App,
    grace: Duration,
    repair: bool,
) -> anyhow::Result<pinhole_images::store::Report> {
    let b = &app.server.ctx.backends;
    Ok(pinhole_images::store::check(&b.db, b.blobs.as_ref(), grace, repair).await?)
}

/// Every stored object has a reference and every reference an object.
async fn assert_clean(app: &App) -> anyhow::Result<()> {
    let r = check(app, Duration::ZERO, false).await?;
    ensure!(
        r.missing == 0 && r.orphaned == 0 && r.objects > 0,
        "store not clean: {r:?}"
    );
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

/// Bob's copy of the shared bytes is still there, byte for byte.
async fn intact(app: &App, token: &str, image: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let (status, body) = app
        .bytes(&format!("/api/v1/images/{image}/original"), Some(token))
        .await?;
    ensure!(status == StatusCode::OK, "bob's original: {status}");
    ensure!(body == bytes, "bob's original changed");
    Ok(())
}

/// Bob and alice upload the same bytes; alice rotates hers, then deletes
/// version 1 and the image at the same moment. Fifty times, with fresh
/// users: bob's original is intact and counted exactly once every time.
async fn shared_original_survives_racing_deletes(app: App) -> anyhow::Result<()> {
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
        intact(&app, &bob, &bobs, &bytes)
            .await
            .with_context(|| format!("round {round}"))?;
        ensure!(
            ref_count(&app, &sha).await? == Some(1),
            "round {round}: bob's reference is counted {:?} times",
            ref_count(&app, &sha).await?
        );
    }
    assert_clean(&app).await
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
    intact(&app, &bob, &bobs, &bytes).await?;
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
    }
    ensure!(ref_count(&app, &sha).await? == Some(1));
    intact(&app, &bob, &bobs, &bytes).await?;
    assert_clean(&app).await
}

/// What no request cleans up (an original stored before a transaction that
/// failed, derivatives and transforms written after their content was
/// collected, a tus part nobody records) is found and removed by the sweep,
/// after its grace period and not before; an upload of the same bytes while
/// the sweep removes them keeps its original.
async fn sweep_removes_orphans(app: App) -> anyhow::Result<()> {
    let alice = app.user("alice").await?;
    let blobs = app.server.ctx.backends.blobs.clone();
    let put = |key: String, bytes: Vec<u8>| {
        let blobs = blobs.clone();
        async move { pinhole_blob::put_bytes(blobs.as_ref(), &key, bytes).await }
    };
    // A content collected with its image; then a late worker writes.
    let gone = small_photo(7)?;
    let gone_sha = sha256(&gone);
    let img = id(&app.posted(&alice, gone.clone(), &[]).await?)?;
    ensure!(delete(&app, &alice, &format!("/images/{img}")).await? == StatusCode::NO_CONTENT);
    let folder = pinhole_events::images::derivative_prefix(&gone_sha);
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

    let young = check(&app, Duration::from_secs(3600), false).await?;
    ensure!(
        young.orphaned == 0 && young.recent == 4,
        "in flight, not orphans: {young:?}"
    );
    let found = check(&app, Duration::ZERO, false).await?;
    ensure!(found.orphaned == 4 && found.missing == 0, "{found:?}");

    // The sweep and an upload of the orphaned original's bytes at once.
    let (repaired, uploaded) = tokio::join!(
        check(&app, Duration::ZERO, true),
        app.posted(&alice, failed.clone(), &[]),
    );
    let repaired = repaired?;
    let uploaded = id(&uploaded?)?;
    ensure!(repaired.removed >= 3, "{repaired:?}");
    intact(&app, &alice, &uploaded, &failed).await?;
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
    ensure!(
        metrics.contains("pinhole_blobs_orphans_removed_total")
            && metrics.contains("pinhole_blobs_missing 0"),
        "metrics: {metrics}"
    );

    // A reference whose object went is reported missing.
    app.posted(&alice, small_photo(9)?, &[]).await?;
    let sha = sha256(&small_photo(9)?);
    let key = pinhole_events::images::original_key(&sha, "jpg");
    blobs.delete(&key).await?;
    let r = check(&app, Duration::ZERO, false).await?;
    ensure!(
        r.missing == 1 && r.missing_examples[0].contains(&sha),
        "{r:?}"
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
    // Someone else's upload finishes while the purge is still going.
    let started = Instant::now();
    app.posted(&dana, small_photo(12)?, &[]).await?;
    let left = images_of(&app, owner).await?;
    ensure!(
        left > 0,
        "dana's upload finished only after the whole purge ({:?})",
        started.elapsed()
    );
    eprintln!(
        "dana's upload finished in {:?} with {left} of carl's images left",
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
    let b = &app.server.ctx.backends;
    pinhole_images::store::collect_all(&b.db, b.blobs.as_ref()).await?;
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
