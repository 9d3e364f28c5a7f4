//! Roles keep what they need of each other as read models fed by events:
//! the images role's account cards, follow edges and blocks, the users
//! role's post counts. Replaying every event (at-least-once delivery)
//! changes none of them, and what users see follows the events.

use std::time::Duration;

use anyhow::{Context, ensure};
use pinhole_bus::Message;
use pinhole_events::topics;
use pinhole_images::entity::{account, block, follow};
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, DEADLINE, photo, variant};
use reqwest::{Method, StatusCode};
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};

/// The read models as rows, in a stable order.
async fn snapshot(app: &App) -> anyhow::Result<String> {
    let db = &app.server.ctx.backends.db;
    let accounts = account::Entity::find()
        .order_by_asc(account::Column::Id)
        .all(db)
        .await?;
    let follows = follow::Entity::find()
        .order_by_asc(follow::Column::FollowerId)
        .order_by_asc(follow::Column::FolloweeId)
        .all(db)
        .await?;
    let blocks = block::Entity::find()
        .order_by_asc(block::Column::BlockerId)
        .all(db)
        .await?;
    let mut counts = Vec::new();
    for name in ["ada", "bob", "cyd"] {
        let (_, profile) = app.get(&format!("/users/{name}"), None).await?;
        counts.push((name, profile["post_count"].clone()));
    }
    Ok(format!("{accounts:?}\n{follows:?}\n{blocks:?}\n{counts:?}"))
}

/// Sum of `pinhole_read_model_applied_total` in `/metrics`.
async fn applied(app: &App) -> anyhow::Result<f64> {
    let text = app
        .http
        .get(format!("{}/metrics", app.server.url()))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("pinhole_read_model_applied_total{"))
        // The images and users roles' read models (the thumbnails role's
        // catalog counts apart).
        .filter(|l| !l.contains("role=\"thumbnails\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

async fn ok(
    app: &App,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let (status, body) = app.call(method, path, Some(token), body).await?;
    ensure!(status.is_success(), "{path}: {status} {body}");
    Ok(body)
}

async fn replays_change_no_read_model(app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    let cyd = app.user("cyd").await?;
    ok(
        &app,
        Method::PATCH,
        "/me",
        &ada,
        Some(json!({"is_private": true, "display_name": "Ada L."})),
    )
    .await?;
    ok(&app, Method::POST, "/users/ada/follow", &bob, None).await?;
    ok(&app, Method::POST, "/users/ada/follow", &cyd, None).await?;
    ok(
        &app,
        Method::POST,
        "/me/follow-requests/bob/approve",
        &ada,
        None,
    )
    .await?;
    ok(&app, Method::POST, "/users/bob/block", &cyd, None).await?;
    let storm = photo("Storm.jpg")?;
    let first = app
        .posted(&ada, variant(&storm, 1), &[("visibility", "followers")])
        .await?;
    app.posted(&ada, variant(&storm, 2), &[]).await?;
    let gone = app.posted(&bob, variant(&storm, 3), &[]).await?;
    ok(
        &app,
        Method::DELETE,
        &format!("/images/{}", gone["id"].as_str().context("id")?),
        &bob,
        None,
    )
    .await?;

    // Bob, an approved follower, sees ada's followers-only image; cyd (a
    // pending request) does not.
    let (status, _) = app
        .get(
            &format!("/images/{}", first["id"].as_str().context("id")?),
            Some(&bob),
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status}");
    let (status, _) = app
        .get(
            &format!("/images/{}", first["id"].as_str().context("id")?),
            Some(&cyd),
        )
        .await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");

    // Every record of both topics, delivered again.
    let bus = &app.server.ctx.backends.bus;
    let mut sub = bus
        .subscribe(
            &pinhole_testkit::unique("replay"),
            &[topics::USERS, topics::IMAGES],
        )
        .await?;
    let mut records = Vec::new();
    let mut quiet = 0;
    while quiet < 8 {
        match sub.next(Duration::from_millis(250)).await? {
            Some(r) => {
                quiet = 0;
                records.push(r);
            }
            None if !records.is_empty() => quiet += 1,
            None => {}
        }
    }
    let kept = records
        .iter()
        .filter(|r| {
            pinhole_events::Envelope::from_json(&r.payload).is_ok_and(|e| {
                e.kind.starts_with("user.")
                    || e.kind.starts_with("follow.")
                    || e.kind.starts_with("block.")
                    || e.kind == "image.uploaded"
                    || e.kind == "image.deleted"
            })
        })
        .count();
    ensure!(
        kept >= 12,
        "{} records, {kept} for the read models",
        records.len()
    );
    // Everything has been applied once, then snapshot.
    wait_for(DEADLINE, "the events to be applied", || async {
        (applied(&app).await.ok()? >= kept as f64).then_some(())
    })
    .await?;
    let before = snapshot(&app).await?;
    let counted = applied(&app).await?;
    ensure!(counted == kept as f64, "applied {counted} of {kept}");
    ensure!(
        before.contains("Ada L.") && before.contains("pending"),
        "{before}"
    );
    let messages: Vec<Message<'_>> = records
        .iter()
        .map(|r| Message {
            topic: &r.topic,
            key: r.key.as_deref().unwrap_or_default(),
            payload: &r.payload,
        })
        .collect();
    bus.publish_all(&messages).await?;
    wait_for(DEADLINE, "the replays to be applied", || async {
        (applied(&app).await.ok()? >= counted + kept as f64).then_some(())
    })
    .await?;
    let after = snapshot(&app).await?;
    ensure!(
        before == after,
        "a replay changed a read model:\n{before}\n---\n{after}"
    );
    Ok(())
}

/// A database made before the read models existed is upgraded in place:
/// they start as copies of what the owning roles' tables hold, and people
/// see what they saw before.
async fn upgrade_fills_the_read_models(app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    let cyd = app.user("cyd").await?;
    ok(
        &app,
        Method::PATCH,
        "/me",
        &ada,
        Some(json!({"is_private": true})),
    )
    .await?;
    ok(&app, Method::POST, "/users/ada/follow", &bob, None).await?;
    ok(
        &app,
        Method::POST,
        "/me/follow-requests/bob/approve",
        &ada,
        None,
    )
    .await?;
    ok(&app, Method::POST, "/users/ada/follow", &cyd, None).await?;
    ok(&app, Method::POST, "/users/bob/block", &cyd, None).await?;
    let image = app
        .posted(&ada, photo("Storm.jpg")?, &[("visibility", "followers")])
        .await?;
    let id = image["id"].as_str().context("id")?.to_owned();
    // Three sign-ups, a profile change, two requests, an approval and a
    // block for the images role; an upload for the users role.
    wait_for(DEADLINE, "the events to be applied", || async {
        (applied(&app).await.ok()? >= 9.0).then_some(())
    })
    .await?;
    let before = snapshot(&app).await?;

    // Back to the schema before the read models (their tables dropped),
    // then a new server: the migration fills them from the owners' tables.
    let settings = app.settings.clone();
    let db = pinhole_db::connect(&settings.database).await?;
    use pinhole_migrations::MigratorTrait;
    pinhole_migrations::Migrator::down(&db, Some(1)).await?;
    ensure!(
        pinhole_migrations::Migrator::get_pending_migrations(&db)
            .await?
            .len()
            == 1,
        "one migration undone"
    );
    let app = app.restart().await?;
    let after = snapshot(&app).await?;
    ensure!(
        before == after,
        "the upgrade lost something:\n{before}\n---\n{after}"
    );
    let (status, _) = app.get(&format!("/images/{id}"), Some(&bob)).await?;
    ensure!(status == StatusCode::OK, "an approved follower: {status}");
    let (status, _) = app.get(&format!("/images/{id}"), Some(&cyd)).await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "a pending request: {status}"
    );
    Ok(())
}

/// Within the users role's event lag a new account's card is not here yet:
/// its owner still sees their upload; nobody else does until it arrives.
async fn owners_see_their_images_before_their_card(app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    let image = app.posted(&ada, photo("Storm.jpg")?, &[]).await?;
    let id = image["id"].as_str().context("id")?.to_owned();
    let owner: uuid::Uuid = image["owner"]["id"].as_str().context("owner")?.parse()?;
    // As if ada's card had not arrived yet.
    account::Entity::delete_by_id(owner)
        .exec(&app.server.ctx.backends.db)
        .await?;
    let (status, body) = app.get(&format!("/images/{id}"), Some(&ada)).await?;
    ensure!(
        status == StatusCode::OK && body["id"] == id.as_str(),
        "{status} {body}"
    );
    let (status, _) = app.get(&format!("/images/{id}"), Some(&bob)).await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");
    Ok(())
}

pinhole_tests::backends!(
    replays_change_no_read_model,
    upgrade_fills_the_read_models,
    owners_see_their_images_before_their_card,
);
