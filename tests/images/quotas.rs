//! Per-account quotas (`PINHOLE_QUOTA_*`), each scenario on a server
//! started with small ones: images (429 `image-quota-exceeded`), bytes
//! stored (413 `storage-quota-exceeded`), unfinished tus uploads (429
//! `upload-quota-exceeded`) and edits per hour (429 `edit-rate-exceeded`
//! with `Retry-After`). A refused file leaves nothing behind, the same
//! bytes again still answer 200, and uploads racing at the limit pass it
//! exactly as far as it goes.

use anyhow::{Context, ensure};
use pinhole_config::Settings;
use pinhole_images::entity::{image, task, upload};
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, DEADLINE, read, small_photo};
use reqwest::{Method, StatusCode};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{PaginatorTrait, QueryOrder};
use serde_json::{Value, json};
use sha2::Digest;

/// Where a scenario's server runs.
#[derive(Debug, Clone, Copy)]
enum On {
    Embedded,
    Real,
}

async fn start(on: On, tweak: impl FnOnce(&mut Settings)) -> anyhow::Result<App> {
    match on {
        On::Embedded => App::embedded_with(tweak).await,
        On::Real => App::real_with(tweak).await,
    }
}

/// `quotas!(scenario, …)`: each `async fn scenario(on: On)` once on the
/// embedded backends and once on the real ones.
macro_rules! quotas {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::On::Embedded).await
                }
            )*
        }
        mod real {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::On::Real).await
                }
            )*
        }
    };
}

/// Distinct small JPEGs (480×320, a few tens of KB).
fn photos(n: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..n).map(|i| small_photo("Storm.jpg", i)).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// An error answer with status `want` and code `code`.
fn refused(status: StatusCode, body: &Value, want: StatusCode, code: &str) -> anyhow::Result<()> {
    ensure!(status == want && body["code"] == code, "{status} {body}");
    Ok(())
}

/// The rows of `owner`'s images and tasks.
async fn stored(app: &App, owner: Uuid) -> anyhow::Result<(u64, u64)> {
    let db = &app.server.ctx.backends.db;
    let images = image::Entity::find()
        .filter(image::Column::OwnerId.eq(owner))
        .count(db)
        .await?;
    let tasks = task::Entity::find()
        .filter(task::Column::OwnerId.eq(owner))
        .count(db)
        .await?;
    Ok((images, tasks))
}

/// Whether the original of `bytes` is in the store.
async fn original_stored(app: &App, bytes: &[u8]) -> anyhow::Result<bool> {
    let key = pinhole_images::store::original_key(&sha256(bytes), pinhole_media::Format::Jpeg);
    Ok(pinhole_blob::exists(app.server.ctx.backends.blobs.as_ref(), &key).await?)
}

/// The id of the account `token` belongs to.
async fn me(app: &App, token: &str) -> anyhow::Result<Uuid> {
    let (status, body) = app.get("/me", Some(token)).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    Ok(Uuid::parse_str(body["id"].as_str().context("id")?)?)
}

fn tus(app: &App, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    let url = if path.starts_with("/api/") {
        format!("{}{path}", app.server.url())
    } else {
        app.url(path)
    };
    app.http
        .request(method, url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
}

/// A tus creation declaring `length` bytes: its status and, when created,
/// its location.
async fn tus_create(
    app: &App,
    token: &str,
    length: usize,
) -> anyhow::Result<(StatusCode, Option<String>, Value)> {
    let r = tus(app, Method::POST, "/uploads", token)
        .header("Upload-Length", length.to_string())
        .send()
        .await?;
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let (status, body) = read(r).await?;
    Ok((status, location, body))
}

/// The (N+1)th image is refused with nothing stored for it, the same bytes
/// as an image already there still answer 200, a tus upload that completes
/// past the limit is refused (and ends) the same way, and deleting an
/// image frees its place.
async fn images_over_the_quota_are_refused(on: On) -> anyhow::Result<()> {
    let app = start(on, |s| s.quota_images = 3).await?;
    let probe = app.probe();
    let alice = app.user("alice").await?;
    let owner = me(&app, &alice).await?;
    let files = photos(5)?;
    let mut ids = Vec::new();
    for file in &files[..3] {
        let (status, body) = app.upload(&alice, file.clone(), &[], "").await?;
        ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
        ids.push(body["image_id"].as_str().context("image id")?.to_owned());
    }
    let before = stored(&app, owner).await?;
    ensure!(before == (3, 3), "{before:?}");
    ensure!(app.stored("originals/").await? == 3);

    let (status, body) = app.upload(&alice, files[3].clone(), &[], "").await?;
    refused(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "image-quota-exceeded",
    )?;
    ensure!(
        body["message"].as_str().is_some_and(|m| m.contains('3')),
        "the message states the limit: {body}"
    );
    ensure!(stored(&app, owner).await? == before);
    ensure!(!original_stored(&app, &files[3]).await?);
    ensure!(app.stored("originals/").await? == 3);
    // As the owner sees them (once the images role has heard of alice).
    let list = wait_for(DEADLINE, "alice's images", || async {
        let (status, list) = app.get("/users/alice/images", Some(&alice)).await.ok()?;
        (status == StatusCode::OK).then_some(list)
    })
    .await?;
    ensure!(list["items"].as_array().map(Vec::len) == Some(3), "{list}");

    // The same bytes again are the same image, even at the limit.
    let (status, again) = app.upload(&alice, files[1].clone(), &[], "").await?;
    ensure!(
        status == StatusCode::OK && again["duplicate"] == true && again["image_id"] == ids[1],
        "{status} {again}"
    );

    // The whole file sent along a tus creation: refused the same way, and
    // the upload ends.
    let r = tus(&app, Method::POST, "/uploads", &alice)
        .header("Upload-Length", files[3].len().to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(files[3].clone())
        .send()
        .await?;
    let (status, body) = read(r).await?;
    refused(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "image-quota-exceeded",
    )?;
    let open = upload::Entity::find()
        .filter(upload::Column::OwnerId.eq(owner))
        .count(&app.server.ctx.backends.db)
        .await?;
    ensure!(open == 0, "{open} uploads left");
    ensure!(stored(&app, owner).await? == before);
    ensure!(!original_stored(&app, &files[3]).await?);

    // Another account has places of its own.
    let bob = app.user("bob").await?;
    let (status, body) = app.upload(&bob, files[3].clone(), &[], "").await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");

    // A deleted image frees its place.
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/images/{}", ids[0]),
            Some(&alice),
            None,
        )
        .await?;
    ensure!(status == StatusCode::NO_CONTENT, "{status} {body}");
    let (status, body) = app.upload(&alice, files[4].clone(), &[], "").await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    ensure!(stored(&app, owner).await?.0 == 3);
    probe.assert_clean().await
}

/// Eight distinct uploads at once against a quota of three: exactly three
/// become images, the others are refused, and no original of theirs stays
/// in the store (the blob check finds no orphan).
async fn uploads_racing_at_the_quota_pass_it_exactly(on: On) -> anyhow::Result<()> {
    let app = start(on, |s| {
        s.quota_images = 3;
        // All eight sent at once by one account.
        s.uploads_per_account = 16;
    })
    .await?;
    let probe = app.probe();
    let cyd = app.user("cyd").await?;
    let owner = me(&app, &cyd).await?;
    let files = photos(8)?;
    let answers = futures::future::join_all(
        files
            .iter()
            .map(|file| app.upload(&cyd, file.clone(), &[], "")),
    )
    .await;
    let mut accepted = Vec::new();
    for (file, answer) in files.iter().zip(answers) {
        let (status, body) = answer?;
        if status == StatusCode::ACCEPTED {
            accepted.push(file);
        } else {
            refused(
                status,
                &body,
                StatusCode::TOO_MANY_REQUESTS,
                "image-quota-exceeded",
            )?;
        }
    }
    ensure!(accepted.len() == 3, "{} accepted", accepted.len());
    ensure!(stored(&app, owner).await? == (3, 3));
    for file in &files {
        ensure!(original_stored(&app, file).await? == accepted.contains(&file));
    }
    ensure!(app.stored("originals/").await? == 3);
    probe.assert_clean().await
}

/// A file that would take the account past its bytes is refused (413),
/// with nothing stored; the same bytes as a stored image still answer 200;
/// a tus creation whose `Upload-Length` would pass it is refused at once.
async fn storage_over_the_quota_is_refused(on: On) -> anyhow::Result<()> {
    let files = photos(3)?;
    // Room for the first two, not for the third.
    let quota = (files[0].len() + files[1].len() + files[2].len() - 1) as u64;
    let app = start(on, |s| s.quota_bytes = quota).await?;
    let probe = app.probe();
    let di = app.user("dina").await?;
    let owner = me(&app, &di).await?;
    for file in &files[..2] {
        let (status, body) = app.upload(&di, file.clone(), &[], "").await?;
        ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    }
    let (status, body) = app.upload(&di, files[2].clone(), &[], "").await?;
    refused(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "storage-quota-exceeded",
    )?;
    ensure!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains(&quota.to_string())),
        "the message states the limit: {body}"
    );
    ensure!(stored(&app, owner).await? == (2, 2));
    ensure!(!original_stored(&app, &files[2]).await?);

    let (status, again) = app.upload(&di, files[0].clone(), &[], "").await?;
    ensure!(
        status == StatusCode::OK && again["duplicate"] == true,
        "{status} {again}"
    );

    // Declared ahead: refused at creation, no upload opened; a length that
    // fits is taken.
    let (status, _, body) = tus_create(&app, &di, files[2].len()).await?;
    refused(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "storage-quota-exceeded",
    )?;
    let open = upload::Entity::find()
        .filter(upload::Column::OwnerId.eq(owner))
        .count(&app.server.ctx.backends.db)
        .await?;
    ensure!(open == 0, "{open} uploads opened");
    let (status, location, body) = tus_create(&app, &di, files[2].len() - 1).await?;
    ensure!(status == StatusCode::CREATED, "{status} {body}");
    let r = tus(&app, Method::DELETE, &location.context("location")?, &di)
        .send()
        .await?;
    ensure!(r.status() == StatusCode::NO_CONTENT, "{}", r.status());
    probe.assert_clean().await
}

/// At `PINHOLE_QUOTA_TUS_UPLOADS` unfinished uploads the next creation is
/// refused; terminating or finishing one frees its place; creations racing
/// for the last places take exactly those.
async fn unfinished_tus_uploads_are_limited(on: On) -> anyhow::Result<()> {
    let app = start(on, |s| s.quota_tus_uploads = 2).await?;
    let probe = app.probe();
    let ed = app.user("eddy").await?;
    let file = small_photo("Storm.jpg", 0)?;
    let mut open = Vec::new();
    for _ in 0..2 {
        let (status, location, body) = tus_create(&app, &ed, file.len()).await?;
        ensure!(status == StatusCode::CREATED, "{status} {body}");
        open.push(location.context("location")?);
    }
    let (status, location, body) = tus_create(&app, &ed, file.len()).await?;
    refused(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "upload-quota-exceeded",
    )?;
    ensure!(location.is_none());
    ensure!(
        body["message"].as_str().is_some_and(|m| m.contains('2')),
        "the message states the limit: {body}"
    );

    // Terminating one frees its place.
    let r = tus(&app, Method::DELETE, &open[0], &ed).send().await?;
    ensure!(r.status() == StatusCode::NO_CONTENT, "{}", r.status());
    let (status, location, body) = tus_create(&app, &ed, file.len()).await?;
    ensure!(status == StatusCode::CREATED, "{status} {body}");
    open[0] = location.context("location")?;
    let (status, _, body) = tus_create(&app, &ed, file.len()).await?;
    refused(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "upload-quota-exceeded",
    )?;

    // So does finishing one: it is an image now.
    let r = tus(&app, Method::PATCH, &open[1], &ed)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(file.clone())
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::NO_CONTENT && r.headers().contains_key("pinhole-image-id"),
        "{}",
        r.status()
    );
    let (status, _, body) = tus_create(&app, &ed, file.len()).await?;
    ensure!(status == StatusCode::CREATED, "{status} {body}");

    // Another account: six creations at once for two places.
    let flo = app.user("flo").await?;
    let answers =
        futures::future::join_all((0..6).map(|_| tus_create(&app, &flo, file.len()))).await;
    let mut created = 0;
    for answer in answers {
        let (status, _, body) = answer?;
        if status == StatusCode::CREATED {
            created += 1;
        } else {
            refused(
                status,
                &body,
                StatusCode::TOO_MANY_REQUESTS,
                "upload-quota-exceeded",
            )?;
        }
    }
    ensure!(created == 2, "{created} created");
    probe.assert_clean().await
}

/// After `PINHOLE_QUOTA_EDITS_PER_HOUR` edits in an hour the next is
/// refused with `Retry-After` until the oldest is an hour old; counted
/// from the stored tasks, so what their times say is what counts.
async fn edits_per_hour_are_limited(on: On) -> anyhow::Result<()> {
    let app = start(on, |s| s.quota_edits_per_hour = 2).await?;
    let probe = app.probe();
    let gus = app.user("gus").await?;
    let owner = me(&app, &gus).await?;
    let image = app.posted(&gus, small_photo("Storm.jpg", 0)?, &[]).await?;
    let edits = format!("/images/{}/edits", image["id"].as_str().context("id")?);
    let rotate = json!({"operations": [{"op": "rotate", "degrees": 90}]});
    let edit = || async {
        let r = app
            .http
            .post(app.url(&edits))
            .bearer_auth(&gus)
            .json(&rotate)
            .send()
            .await?;
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (status, body) = read(r).await?;
        anyhow::Ok((status, body, retry_after))
    };
    for _ in 0..2 {
        let (status, body, _) = edit().await?;
        ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    }
    let (status, body, retry_after) = edit().await?;
    refused(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "edit-rate-exceeded",
    )?;
    ensure!(
        retry_after.is_some_and(|s| (3590..=3600).contains(&s)),
        "Retry-After {retry_after:?}"
    );
    ensure!(
        body["message"].as_str().is_some_and(|m| m.contains('2')),
        "the message states the limit: {body}"
    );

    // The oldest edit asked 59.5 minutes ago: a place in 30 s.
    let db = &app.server.ctx.backends.db;
    let oldest = task::Entity::find()
        .filter(task::Column::OwnerId.eq(owner))
        .filter(task::Column::Kind.eq(task::Kind::Edit))
        .order_by_asc(task::Column::CreatedAt)
        .one(db)
        .await?
        .context("an edit task")?;
    let age = |ago: chrono::TimeDelta| {
        task::Entity::update_many()
            .col_expr(
                task::Column::CreatedAt,
                Expr::value(chrono::Utc::now() - ago),
            )
            .filter(task::Column::Id.eq(oldest.id))
            .exec(db)
    };
    age(chrono::TimeDelta::seconds(3570)).await?;
    let (status, body, retry_after) = edit().await?;
    refused(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "edit-rate-exceeded",
    )?;
    ensure!(
        retry_after.is_some_and(|s| (25..=30).contains(&s)),
        "Retry-After {retry_after:?}"
    );
    // An hour and a minute ago: it counts no more.
    age(chrono::TimeDelta::seconds(3660)).await?;
    let (status, body, _) = edit().await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    let (status, body, _) = edit().await?;
    refused(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "edit-rate-exceeded",
    )?;

    // Another account edits its own images freely.
    let hal = app.user("hal").await?;
    let theirs = app.posted(&hal, small_photo("Storm.jpg", 1)?, &[]).await?;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/images/{}/edits", theirs["id"].as_str().context("id")?),
            Some(&hal),
            Some(rotate.clone()),
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
    probe.assert_clean().await
}

quotas!(
    images_over_the_quota_are_refused,
    uploads_racing_at_the_quota_pass_it_exactly,
    storage_over_the_quota_is_refused,
    unfinished_tus_uploads_are_limited,
    edits_per_hour_are_limited,
);
