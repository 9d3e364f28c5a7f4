//! The thumbnails role alone, fed by hand what the users and images roles
//! would send: a public upload's presets are served before its catalog
//! hears the images and users roles' events, and those events win. On the
//! embedded backends and the real ones (Postgres, Redis, Kafka, S3).

use std::collections::BTreeSet;

use anyhow::ensure;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{DEADLINE, photo};
use reqwest::StatusCode;
use serde_json::json;

/// The thumbnails role alone, fed by hand what the users and images roles
/// would send, so that the test decides which of their events this role's
/// catalog has heard when.
struct Alone {
    server: pinhole::Server,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Alone {
    async fn start(real: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let settings = if real {
            pinhole_tests::real_settings(dir.path(), "alone").await?
        } else {
            pinhole_config::Settings::embedded(dir.path())
        };
        Ok(Self {
            server: pinhole::start(settings, &[pinhole_thumbnails::ROLE]).await?,
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    /// Publishes `event` as its role would.
    async fn send<E: pinhole_events::Event>(&self, event: &E) -> anyhow::Result<()> {
        let out = pinhole_events::OutgoingEvent::of(event);
        let payload = out.envelope.to_json();
        self.server
            .ctx
            .backends
            .bus
            .publish_all(&[pinhole_bus::Message {
                topic: out.topic,
                key: out.key.as_bytes(),
                payload: &payload,
            }])
            .await?;
        Ok(())
    }

    /// The status of the unsigned `thumb` preset of `id`.
    async fn preset(&self, id: uuid::Uuid) -> anyhow::Result<StatusCode> {
        let url = format!("{}/t/_/pr:thumb/{id}.jpg", self.server.url());
        Ok(self.http.get(url).send().await?.status())
    }

    /// Waits until the catalog has a row for `id`.
    async fn cataloged(&self, id: uuid::Uuid) -> anyhow::Result<()> {
        use pinhole_thumbnails::catalog::image;
        use sea_orm::EntityTrait;

        let db = &self.server.ctx.backends.db;
        wait_for(DEADLINE, "the catalog to hear of the image", || async {
            image::Entity::find_by_id(id)
                .one(db)
                .await
                .ok()?
                .map(|_| ())
        })
        .await
    }
}

/// An image of `owner` on content `sha256`, as the images role describes
/// it (read from JSON, so that fields added to the record take their
/// defaults).
fn image_record(
    id: uuid::Uuid,
    owner: uuid::Uuid,
    sha256: &str,
    (width, height): (u32, u32),
    visibility: &str,
    status: &str,
) -> anyhow::Result<pinhole_events::images::ImageRecord> {
    let now = chrono::Utc::now();
    Ok(serde_json::from_value(json!({
        "image_id": id,
        "owner_id": owner,
        "sha256": sha256,
        "format": "jpeg",
        "width": width,
        "height": height,
        "size": 1,
        "tags": [],
        "visibility": visibility,
        "status": status,
        "created_at": now,
        "updated_at": now,
    }))?)
}

/// The job the images role sends for an upload of `id`.
fn upload_job(
    id: uuid::Uuid,
    owner: uuid::Uuid,
    sha256: &str,
    visibility: pinhole_events::images::Visibility,
) -> pinhole_events::images::ProcessJob {
    pinhole_events::images::ProcessJob {
        image_id: id,
        task_id: Some(uuid::Uuid::now_v7()),
        owner_id: owner,
        sha256: sha256.to_owned(),
        format: "jpeg".into(),
        original_key: pinhole_events::images::original_key(sha256, "jpg"),
        force: false,
        visibility: Some(visibility),
        // As if the images role had not heard of the owner yet.
        owner_private: None,
    }
}

/// Reads `sub` until it has seen `image.processed` for every one of `ids`.
async fn processed(
    sub: &mut Box<dyn pinhole_bus::Subscription>,
    ids: &[uuid::Uuid],
) -> anyhow::Result<()> {
    use pinhole_events::images::{PROCESSED, Processed};

    let mut left: BTreeSet<uuid::Uuid> = ids.iter().copied().collect();
    let started = std::time::Instant::now();
    while !left.is_empty() {
        ensure!(
            started.elapsed() < DEADLINE,
            "no image.processed for {left:?} after {DEADLINE:?}"
        );
        let Some(record) = sub.next(std::time::Duration::from_millis(250)).await? else {
            continue;
        };
        if let Ok(env) = pinhole_events::Envelope::from_json(&record.payload)
            && env.kind == PROCESSED
        {
            left.remove(&env.decode::<Processed>()?.image_id);
        }
    }
    Ok(())
}

/// Once the images role can hear that a public upload is processed, this
/// role serves its unsigned presets, though its catalog may not have heard
/// the images or users roles' events of it or its owner yet (it reads them
/// at its own pace): the upload's job says who may see the image and
/// whether its owner's account is private. The events win: a row they
/// wrote keeps what they said, a later change applies, and a replayed job
/// changes nothing.
async fn public_presets_are_served_once_processed(alone: Alone) -> anyhow::Result<()> {
    use pinhole_events::images::{ImageUpdated, ImageUploaded, ProcessJob, Visibility};
    use pinhole_events::users::{AccountCard, UserRegistered, UserUpdated};
    use sha2::{Digest, Sha256};

    let ctx = &alone.server.ctx;
    let owner = uuid::Uuid::now_v7();
    alone
        .send(&UserRegistered {
            account: AccountCard {
                user_id: owner,
                username: "ada".into(),
                display_name: None,
                avatar_image_id: None,
                is_private: false,
            },
            created_at: chrono::Utc::now(),
        })
        .await?;
    {
        use pinhole_thumbnails::catalog::account;
        use sea_orm::EntityTrait;
        wait_for(DEADLINE, "the catalog to hear of the account", || async {
            account::Entity::find_by_id(owner)
                .one(&ctx.backends.db)
                .await
                .ok()?
                .map(|_| ())
        })
        .await?;
    }
    // The original, as the images role stores it (two images show it).
    let storm = photo("Storm.jpg")?;
    let sha256 = hex::encode(Sha256::digest(&storm));
    let size = {
        let decoded = image::load_from_memory(&storm)?;
        (decoded.width(), decoded.height())
    };
    pinhole_blob::put_bytes(
        ctx.backends.blobs.as_ref(),
        &pinhole_events::images::original_key(&sha256, "jpg"),
        storm,
    )
    .await?;
    // `fresh`: the catalog has heard nothing of it when it is processed.
    // `kept`: its `image.uploaded` (private) is heard first, and its job
    // says public (as if it had been changed since).
    let fresh = uuid::Uuid::now_v7();
    let kept = uuid::Uuid::now_v7();
    alone
        .send(&ImageUploaded {
            image: image_record(kept, owner, &sha256, size, "private", "processing")?,
            task_id: uuid::Uuid::now_v7(),
        })
        .await?;
    alone.cataloged(kept).await?;
    let mut reports = ctx
        .backends
        .bus
        .subscribe(
            &pinhole_testkit::unique("reports"),
            &[pinhole_events::topics::IMAGES],
        )
        .await?;
    alone
        .send(&upload_job(fresh, owner, &sha256, Visibility::Public))
        .await?;
    alone
        .send(&upload_job(kept, owner, &sha256, Visibility::Public))
        .await?;
    // `unheard`: of an owner whose `user.registered` the catalog has not
    // heard, public as the images role knew the account when it made the
    // job. `unknown`: of an owner neither role had heard of then.
    let stranger = uuid::Uuid::now_v7();
    let unheard = uuid::Uuid::now_v7();
    let unknown = uuid::Uuid::now_v7();
    let unheard_job = ProcessJob {
        owner_private: Some(false),
        ..upload_job(unheard, stranger, &sha256, Visibility::Public)
    };
    alone.send(&unheard_job).await?;
    alone
        .send(&upload_job(
            unknown,
            uuid::Uuid::now_v7(),
            &sha256,
            Visibility::Public,
        ))
        .await?;
    processed(&mut reports, &[fresh, kept, unheard, unknown]).await?;
    // At once, as the images role publishes the image on that report.
    let status = alone.preset(fresh).await?;
    ensure!(
        status == StatusCode::OK,
        "a processed public image: {status}"
    );
    let status = alone.preset(unheard).await?;
    ensure!(
        status == StatusCode::OK,
        "a processed public image of an account the catalog has not heard of: {status}"
    );
    let status = alone.preset(kept).await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "a private image by its events: {status}"
    );
    let status = alone.preset(unknown).await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "an image of an account nobody knew of: {status}"
    );

    // The account's events win over the job: it turns private, and the
    // upload's job again (at-least-once delivery) does not make it public.
    alone
        .send(&UserUpdated {
            account: AccountCard {
                user_id: stranger,
                username: "sam".into(),
                display_name: None,
                avatar_image_id: None,
                is_private: true,
            },
            changed: vec!["is_private".into()],
        })
        .await?;
    wait_for(DEADLINE, "the account to turn private", || async {
        (alone.preset(unheard).await.ok()? == StatusCode::NOT_FOUND).then_some(())
    })
    .await?;
    alone.send(&unheard_job).await?;
    processed(&mut reports, &[unheard]).await?;
    let status = alone.preset(unheard).await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "a replayed job made a private account's image public: {status}"
    );

    // The images role's events of `fresh` arrive: uploaded public, then
    // made private.
    alone
        .send(&ImageUploaded {
            image: image_record(fresh, owner, &sha256, size, "public", "processing")?,
            task_id: uuid::Uuid::now_v7(),
        })
        .await?;
    alone
        .send(&ImageUpdated {
            image: image_record(fresh, owner, &sha256, size, "private", "ready")?,
        })
        .await?;
    wait_for(DEADLINE, "the image to turn private", || async {
        (alone.preset(fresh).await.ok()? == StatusCode::NOT_FOUND).then_some(())
    })
    .await?;
    // The upload's job again (at-least-once delivery): still private.
    alone
        .send(&upload_job(fresh, owner, &sha256, Visibility::Public))
        .await?;
    processed(&mut reports, &[fresh]).await?;
    let status = alone.preset(fresh).await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "a replayed job made a private image public: {status}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_presets_are_served_once_processed_embedded() -> anyhow::Result<()> {
    public_presets_are_served_once_processed(Alone::start(false).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_presets_are_served_once_processed_real() -> anyhow::Result<()> {
    public_presets_are_served_once_processed(Alone::start(true).await?).await
}
