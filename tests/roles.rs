//! Roles keep what they need of each other as read models fed by events:
//! the images role's account cards, follow edges and blocks, the users
//! role's post counts. Replaying every event (at-least-once delivery)
//! changes none of them, and what users see follows the events.
//!
//! Each role owns its tables and migrates them itself: a role served alone
//! creates only the platform's tables and its own, no foreign key crosses
//! from one role's tables into another's, and a database made by the
//! legacy shared history is upgraded in place.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use pinhole_bus::Message;
use pinhole_config::{DatabaseUrl, Settings};
use pinhole_events::topics;
use pinhole_images::entity::{account, block, follow};
use pinhole_migrations::{MigratorTrait, legacy, platform};
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, DEADLINE, PASSWORD, photo, variant};
use reqwest::{Method, StatusCode};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryOrder, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// The read models as rows, in a stable order, with the thumbnails role's
/// catalog (without `reported_at`, which a replayed report moves on).
async fn snapshot(app: &App) -> anyhow::Result<String> {
    use pinhole_thumbnails::catalog::{account as thumb_account, image as thumb_image};

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
    let thumb_images: Vec<_> = thumb_image::Entity::find()
        .order_by_asc(thumb_image::Column::ImageId)
        .all(db)
        .await?
        .into_iter()
        .map(|i| {
            (
                i.image_id,
                i.owner_id,
                i.sha256,
                i.format,
                i.width,
                i.height,
                i.visibility,
                i.status,
                i.pipeline,
            )
        })
        .collect();
    let thumb_accounts = thumb_account::Entity::find()
        .order_by_asc(thumb_account::Column::UserId)
        .all(db)
        .await?;
    Ok(format!(
        "{accounts:?}\n{follows:?}\n{blocks:?}\n{counts:?}\n{thumb_images:?}\n{thumb_accounts:?}"
    ))
}

/// Sums of `pinhole_read_model_applied_total` in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Applied {
    /// The images and users roles' read models.
    read_models: f64,
    /// The thumbnails role's catalog.
    catalog: f64,
}

async fn applied(app: &App) -> anyhow::Result<Applied> {
    let text = app
        .http
        .get(format!("{}/metrics", app.server.url()))
        .send()
        .await?
        .text()
        .await?;
    let mut sums = Applied {
        read_models: 0.0,
        catalog: 0.0,
    };
    for line in text
        .lines()
        .filter(|l| l.starts_with("pinhole_read_model_applied_total{"))
    {
        let Some(n) = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()) else {
            continue;
        };
        if line.contains("role=\"thumbnails\"") {
            sums.catalog += n;
        } else {
            sums.read_models += n;
        }
    }
    Ok(sums)
}

/// The events the thumbnails role's catalog applies (and counts).
const CATALOG_KINDS: [&str; 10] = {
    use pinhole_events::Event;
    use pinhole_events::images as i;
    use pinhole_events::users as u;
    [
        i::UPLOADED,
        i::UPDATED,
        i::PUBLISHED,
        i::DELETED,
        i::PROCESSED,
        i::EDITED,
        i::PROCESSING_FAILED,
        <u::UserRegistered as Event>::TYPE,
        <u::UserUpdated as Event>::TYPE,
        <u::UserDeleted as Event>::TYPE,
    ]
};

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
    let kinds: Vec<String> = records
        .iter()
        .filter_map(|r| pinhole_events::Envelope::from_json(&r.payload).ok())
        .map(|e| e.kind)
        .collect();
    let kept = Applied {
        read_models: kinds
            .iter()
            .filter(|k| {
                k.starts_with("user.")
                    || k.starts_with("follow.")
                    || k.starts_with("block.")
                    || *k == "image.uploaded"
                    || *k == "image.deleted"
            })
            .count() as f64,
        catalog: kinds
            .iter()
            .filter(|k| CATALOG_KINDS.contains(&k.as_str()))
            .count() as f64,
    };
    ensure!(
        kept.read_models >= 12.0 && kept.catalog >= 12.0,
        "{} records, {kept:?} for the read models",
        records.len()
    );
    // Everything has been applied once, then snapshot.
    let all_applied = |at_least: Applied| {
        let app = &app;
        async move {
            let now = applied(app).await.ok()?;
            (now.read_models >= at_least.read_models && now.catalog >= at_least.catalog)
                .then_some(())
        }
    };
    wait_for(DEADLINE, "the events to be applied", || all_applied(kept)).await?;
    let before = snapshot(&app).await?;
    let counted = applied(&app).await?;
    ensure!(counted == kept, "applied {counted:?} of {kept:?}");
    ensure!(
        before.contains("Ada L.") && before.contains("Pending"),
        "{before}"
    );
    ensure!(
        before.contains("Ready") && before.contains("Deleted"),
        "the catalog has the images: {before}"
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
    let replayed = Applied {
        read_models: counted.read_models + kept.read_models,
        catalog: counted.catalog + kept.catalog,
    };
    wait_for(DEADLINE, "the replays to be applied", || {
        all_applied(replayed)
    })
    .await?;
    let after = snapshot(&app).await?;
    ensure!(
        before == after,
        "a replay changed a read model:\n{before}\n---\n{after}"
    );
    Ok(())
}

/// A database made by the legacy shared history before the read models
/// existed is upgraded in place: the legacy migrations run to their end
/// first, so the read models start as copies of what the owning roles'
/// tables hold, and people see what they saw before.
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
        (applied(&app).await.ok()?.read_models >= 9.0).then_some(())
    })
    .await?;
    let before = snapshot(&app).await?;

    // Back to the legacy schema before the read models (the images and
    // users roles' read models and the thumbnails role's catalog dropped),
    // then a new server: the legacy history runs to its end first and
    // fills them from the owners' tables.
    let settings = app.settings.clone();
    let db = pinhole_db::connect(&settings.database).await?;
    legacy::Migrator::down(&db, Some(2)).await?;
    ensure!(
        legacy::Migrator::get_pending_migrations(&db).await?.len() == 2,
        "two legacy migrations undone"
    );
    let app = app.restart().await?;
    ensure!(
        legacy::Migrator::get_pending_migrations(&db)
            .await?
            .is_empty(),
        "the legacy history ran to its end"
    );
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
    owners_see_their_images_before_their_card,
);

/// A server with the users, images and thumbnails roles on a database that
/// the legacy shared history made (embedded backends, or every real one).
async fn on_legacy_database(real: bool) -> anyhow::Result<App> {
    let dir = tempfile::tempdir()?;
    let settings = if real {
        pinhole_tests::real_settings(dir.path(), "app").await?
    } else {
        Settings::embedded(dir.path())
    };
    let db = pinhole_db::connect(&settings.database).await?;
    legacy::Migrator::up(&db, None).await?;
    db.close().await?;
    App::start(settings, dir).await
}

mod legacy_database {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upgrade_fills_the_read_models_embedded() -> anyhow::Result<()> {
        let app = super::on_legacy_database(false).await?;
        let probe = app.probe();
        super::upgrade_fills_the_read_models(app).await?;
        probe.assert_clean().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upgrade_fills_the_read_models_real() -> anyhow::Result<()> {
        let app = super::on_legacy_database(true).await?;
        let probe = app.probe();
        super::upgrade_fills_the_read_models(app).await?;
        probe.assert_clean().await
    }
}

/// Where a schema test keeps its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Sqlite,
    Postgres,
}

/// Embedded backends in `dir`, the database on `store` (a fresh one).
async fn settings_on(store: Store, dir: &Path) -> anyhow::Result<Settings> {
    let mut settings = Settings::embedded(dir);
    if store == Store::Postgres {
        settings.database = DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
    }
    Ok(settings)
}

/// `sql` with `values`, each row's `columns` (read as text) joined by ` | `.
async fn text_rows<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
    columns: &[&str],
) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await
        .with_context(|| sql.to_owned())?;
    rows.iter()
        .map(|row| {
            let cells = columns
                .iter()
                .map(|c| row.try_get::<Option<String>>("", c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(cells
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join(" | "))
        })
        .collect()
}

async fn execute(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> anyhow::Result<()> {
    db.execute(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
    .with_context(|| sql.to_owned())?;
    Ok(())
}

/// The database's tables (SQLite's own left out).
async fn tables(db: &DatabaseConnection) -> anyhow::Result<BTreeSet<String>> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    Ok(text_rows(db, sql, vec![], &["name"])
        .await?
        .into_iter()
        .collect())
}

/// Every foreign key, as (table, referenced table).
async fn foreign_keys(db: &DatabaseConnection) -> anyhow::Result<BTreeSet<(String, String)>> {
    let mut keys = BTreeSet::new();
    for table in tables(db).await? {
        let sql = match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                "SELECT r.relname::text AS target FROM pg_constraint c \
                 JOIN pg_class t ON t.oid = c.conrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 JOIN pg_class r ON r.oid = c.confrelid \
                 WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = $1"
            }
            _ => "SELECT \"table\" AS target FROM pragma_foreign_key_list($1)",
        };
        for target in text_rows(db, sql, vec![table.clone().into()], &["target"]).await? {
            keys.insert((table.clone(), target));
        }
    }
    Ok(keys)
}

/// Who owns `table`: the platform or a role.
fn owner(table: &str) -> Option<&'static str> {
    if platform::TABLES.contains(&table) {
        return Some("platform");
    }
    pinhole_migrations::ROLES
        .iter()
        .find(|r| r.tables.contains(&table))
        .map(|r| r.role)
}

/// The migration histories.
fn history_tables() -> BTreeSet<&'static str> {
    let mut all: BTreeSet<&str> = pinhole_migrations::ROLES
        .iter()
        .map(|r| r.history_table)
        .collect();
    all.insert(platform::HISTORY_TABLE);
    all.insert(legacy::HISTORY_TABLE);
    all
}

/// The foreign keys that cross from one owner's tables into another's.
async fn crossing_keys(db: &DatabaseConnection) -> anyhow::Result<Vec<(String, String)>> {
    Ok(foreign_keys(db)
        .await?
        .into_iter()
        .filter(|(from, to)| owner(from) != owner(to))
        .collect())
}

/// Every table, column, index and constraint but the migration histories,
/// one per line, as the database describes them.
async fn schema(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let histories = history_tables();
    let mut lines = Vec::new();
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            for (sql, columns) in [
                (
                    "SELECT table_name::text AS t, column_name::text AS c, \
                     ordinal_position::text AS p, data_type::text AS ty, \
                     character_maximum_length::text AS len, is_nullable::text AS n, \
                     column_default::text AS d \
                     FROM information_schema.columns WHERE table_schema = current_schema() \
                     ORDER BY table_name, ordinal_position",
                    &["t", "c", "p", "ty", "len", "n", "d"][..],
                ),
                (
                    "SELECT tablename::text AS t, indexname::text AS i, indexdef::text AS d \
                     FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2",
                    &["t", "i", "d"][..],
                ),
                (
                    "SELECT t.relname::text AS t, c.conname::text AS i, \
                     pg_get_constraintdef(c.oid)::text AS d \
                     FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
                     JOIN pg_namespace n ON n.oid = t.relnamespace \
                     WHERE n.nspname = current_schema() ORDER BY 1, 2",
                    &["t", "i", "d"][..],
                ),
            ] {
                lines.extend(text_rows(db, sql, vec![], columns).await?);
            }
        }
        _ => {
            for table in tables(db).await? {
                for (sql, columns) in [
                    (
                        "SELECT name, type AS ty, CAST(\"notnull\" AS TEXT) AS n, \
                         dflt_value AS d, CAST(pk AS TEXT) AS pk \
                         FROM pragma_table_info($1) ORDER BY cid",
                        &["name", "ty", "n", "d", "pk"][..],
                    ),
                    (
                        "SELECT il.name AS name, CAST(il.\"unique\" AS TEXT) AS u, \
                         il.origin AS o, CAST(il.partial AS TEXT) AS p, \
                         (SELECT group_concat(ii.name, ',') FROM pragma_index_info(il.name) ii) AS cols \
                         FROM pragma_index_list($1) il ORDER BY il.name",
                        &["name", "u", "o", "p", "cols"][..],
                    ),
                    (
                        "SELECT \"table\" AS target, \"from\" AS col, \"to\" AS ref, \
                         on_delete AS del FROM pragma_foreign_key_list($1) ORDER BY \"from\"",
                        &["target", "col", "ref", "del"][..],
                    ),
                ] {
                    for line in text_rows(db, sql, vec![table.clone().into()], columns).await? {
                        lines.push(format!("{table} | {line}"));
                    }
                }
            }
        }
    }
    Ok(lines
        .into_iter()
        .filter(|line| {
            let table = line.split(" | ").next().unwrap_or_default();
            !histories.contains(table)
        })
        .collect())
}

/// The platform's and each role's tables are disjoint, each role is one
/// `pinhole serve --roles` knows, and together they are every table the
/// legacy history made: ownership is total.
/// Tables made only by a role's own history (after the legacy one froze).
const SINCE_THE_SPLIT: &[&str] = &["image_views", "image_view_offsets"];

async fn every_table_has_one_owner(store: Store) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    let owned = platform::TABLES
        .iter()
        .chain(pinhole_migrations::ROLES.iter().flat_map(|r| r.tables));
    for table in owned {
        ensure!(seen.insert(*table), "{table} has two owners");
    }
    for role in pinhole_migrations::ROLES {
        ensure!(pinhole::ROLES.contains(&role.role), "{}", role.role);
    }
    let dir = tempfile::tempdir()?;
    let settings = settings_on(store, dir.path()).await?;
    let db = pinhole_db::connect(&settings.database).await?;
    legacy::Migrator::up(&db, None).await?;
    let mut made = tables(&db).await?;
    made.remove(legacy::HISTORY_TABLE);
    // Tables added after the roles got histories of their own are not in
    // the legacy one; every other owned table is, and nothing else.
    let seen: BTreeSet<String> = seen
        .into_iter()
        .filter(|t| !SINCE_THE_SPLIT.contains(t))
        .map(str::to_owned)
        .collect();
    ensure!(made == seen, "legacy tables {made:?}\nowned {seen:?}");
    Ok(())
}

/// A database made by the legacy history and upgraded is the schema a
/// fresh database gets from the roles' own histories (tables, columns,
/// indexes, constraints), less the legacy foreign keys into `users`; a
/// fresh database never gets the legacy history table.
async fn upgraded_legacy_schema_is_the_fresh_one(store: Store) -> anyhow::Result<()> {
    let all = pinhole::ROLES;
    let dir = tempfile::tempdir()?;
    let old =
        pinhole_db::connect(&settings_on(store, &dir.path().join("old")).await?.database).await?;
    legacy::Migrator::up(&old, None).await?;
    let crossing = crossing_keys(&old).await?;
    for key in [("comments", "users"), ("likes", "users")] {
        ensure!(
            crossing.contains(&(key.0.to_owned(), key.1.to_owned())),
            "the legacy history makes {key:?}: {crossing:?}"
        );
    }
    pinhole_migrations::migrate(&old, all).await?;
    // Twice changes nothing.
    pinhole_migrations::migrate(&old, all).await?;
    let upgraded = schema(&old).await?;
    ensure!(
        crossing_keys(&old).await?.is_empty(),
        "{:?}",
        crossing_keys(&old).await?
    );

    let fresh =
        pinhole_db::connect(&settings_on(store, &dir.path().join("new")).await?.database).await?;
    pinhole_migrations::migrate(&fresh, all).await?;
    let made = tables(&fresh).await?;
    ensure!(!made.contains(legacy::HISTORY_TABLE), "{made:?}");
    ensure!(crossing_keys(&fresh).await?.is_empty());
    let fresh = schema(&fresh).await?;
    let only_old: Vec<&String> = upgraded.iter().filter(|l| !fresh.contains(l)).collect();
    let only_new: Vec<&String> = fresh.iter().filter(|l| !upgraded.contains(l)).collect();
    ensure!(
        only_old.is_empty() && only_new.is_empty(),
        "upgraded only:\n{}\nfresh only:\n{}",
        only_old
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        only_new
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    Ok(())
}

/// A role served alone on an empty database creates the platform's tables
/// and its own, nothing of the other roles'.
async fn a_role_alone_creates_only_its_tables(store: Store) -> anyhow::Result<()> {
    for role in ["users", "images", "thumbnails", "search"] {
        let dir = tempfile::tempdir()?;
        let settings = settings_on(store, dir.path()).await?;
        let server = pinhole::start(settings, &[role]).await?;
        let found = tables(&server.ctx.backends.db).await;
        server.stop().await?;
        let found = found?;
        let mut expected: BTreeSet<String> =
            platform::TABLES.iter().map(|t| (*t).to_owned()).collect();
        expected.insert(platform::HISTORY_TABLE.to_owned());
        if let Some(own) = pinhole_migrations::ROLES.iter().find(|r| r.role == role) {
            expected.extend(own.tables.iter().map(|t| (*t).to_owned()));
            expected.insert(own.history_table.to_owned());
        }
        ensure!(
            found == expected,
            "--roles {role}: {found:?}, expected {expected:?}"
        );
    }
    Ok(())
}

/// A database of the last legacy release before the read models, its rows
/// written by SQL (two people, an image with its stored original, a
/// comment and a like by the other, a follow), served by every role after
/// an upgrade in place: the rows are all there, and since no foreign key
/// ties comments and likes to `users` any more, deleting the commenter's
/// account removes them through the images role's purge.
async fn upgrade_in_place_keeps_the_data(store: Store) -> anyhow::Result<()> {
    use sha2::Digest;
    let dir = tempfile::tempdir()?;
    let settings = settings_on(store, dir.path()).await?;
    let db = pinhole_db::connect(&settings.database).await?;
    legacy::Migrator::up(&db, Some(7)).await?;

    let (ada, bob, image, comment) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let now = chrono::Utc::now();
    let hash = tokio::task::spawn_blocking(|| pinhole_auth::password::hash(PASSWORD))
        .await?
        .map_err(anyhow::Error::msg)?;
    for (id, name) in [(ada, "ada"), (bob, "bob")] {
        execute(
            &db,
            "INSERT INTO users (id, username, email, password_hash, is_private, post_count, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                id.into(),
                name.into(),
                format!("{name}@example.com").into(),
                hash.clone().into(),
                false.into(),
                i64::from(name == "ada").into(),
                now.into(),
                now.into(),
            ],
        )
        .await?;
    }
    let bytes = photo("Storm.jpg")?;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let key = pinhole_events::images::original_key(&sha, "jpg");
    execute(
        &db,
        "INSERT INTO blobs (sha256, blob_key, size, format, ref_count, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            sha.clone().into(),
            key.clone().into(),
            i64::try_from(bytes.len())?.into(),
            "jpeg".into(),
            1i64.into(),
            now.into(),
        ],
    )
    .await?;
    execute(
        &db,
        "INSERT INTO images (id, owner_id, sha256, format, width, height, size, title, visibility, status, created_at, updated_at, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        vec![
            image.into(),
            ada.into(),
            sha.clone().into(),
            "jpeg".into(),
            1024i32.into(),
            768i32.into(),
            i64::try_from(bytes.len())?.into(),
            "Storm".into(),
            "public".into(),
            "ready".into(),
            now.into(),
            now.into(),
            now.into(),
        ],
    )
    .await?;
    execute(
        &db,
        "INSERT INTO comments (id, image_id, author_id, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        vec![
            comment.into(),
            image.into(),
            bob.into(),
            "what a sky".into(),
            now.into(),
        ],
    )
    .await?;
    execute(
        &db,
        "INSERT INTO likes (image_id, user_id, created_at) VALUES ($1, $2, $3)",
        vec![image.into(), bob.into(), now.into()],
    )
    .await?;
    execute(
        &db,
        "INSERT INTO follows (follower_id, followee_id, status, created_at) VALUES ($1, $2, $3, $4)",
        vec![bob.into(), ada.into(), "active".into(), now.into()],
    )
    .await?;

    let app = App {
        server: pinhole::start(settings.clone(), pinhole::ROLES).await?,
        roles: pinhole::ROLES,
        settings,
        http: reqwest::Client::new(),
        dir: Arc::new(dir),
    };
    pinhole_blob::put_bytes(app.server.ctx.backends.blobs.as_ref(), &key, bytes.clone()).await?;
    ensure!(
        legacy::Migrator::get_pending_migrations(&db)
            .await?
            .is_empty(),
        "the legacy history ran to its end"
    );
    ensure!(
        crossing_keys(&db).await?.is_empty(),
        "{:?}",
        crossing_keys(&db).await?
    );

    let path = format!("/images/{image}");
    let (status, record) = app.get(&path, None).await?;
    ensure!(
        status == StatusCode::OK
            && record["owner"]["username"] == "ada"
            && record["title"] == "Storm"
            && record["like_count"] == 1
            && record["comment_count"] == 1,
        "{status} {record}"
    );
    let (status, comments) = app.get(&format!("{path}/comments"), None).await?;
    ensure!(
        status == StatusCode::OK
            && comments["items"][0]["body"] == "what a sky"
            && comments["items"][0]["author"]["username"] == "bob",
        "{status} {comments}"
    );
    let (status, likers) = app.get(&format!("{path}/likes"), None).await?;
    ensure!(
        status == StatusCode::OK && likers["items"][0]["username"] == "bob",
        "{status} {likers}"
    );
    let (status, followers) = app.get("/users/ada/followers", None).await?;
    ensure!(
        status == StatusCode::OK && followers.to_string().contains("\"bob\""),
        "{status} {followers}"
    );
    // Both log in as before; the owner gets her original's very bytes.
    let mut tokens = Vec::new();
    for name in ["ada", "bob"] {
        let (status, session) = app
            .call(
                Method::POST,
                "/sessions",
                None,
                Some(json!({"login": name, "password": PASSWORD})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "{name}: {status} {session}");
        tokens.push(
            session["access_token"]
                .as_str()
                .context("token")?
                .to_owned(),
        );
    }
    let (ada_token, bob_token) = (&tokens[0], &tokens[1]);
    let (status, original) = app
        .bytes(&format!("/api/v1/images/{image}/original"), Some(ada_token))
        .await?;
    ensure!(
        status == StatusCode::OK && original == bytes,
        "{status}, {} bytes",
        original.len()
    );

    // Bob goes: his comment and like go with him, by the purge.
    let (status, _) = app
        .call(Method::DELETE, "/me", Some(bob_token), None)
        .await?;
    ensure!(status == StatusCode::NO_CONTENT, "{status}");
    wait_for(DEADLINE, "bob's comment and like to go", || async {
        let (_, record) = app.get(&path, None).await.ok()?;
        (record["like_count"] == 0 && record["comment_count"] == 0).then_some(())
    })
    .await?;
    wait_for(DEADLINE, "bob's purge to finish", || async {
        let done = text_rows(
            &db,
            "SELECT 'finished' AS u FROM account_purges \
             WHERE user_id = $1 AND finished_at IS NOT NULL",
            vec![bob.into()],
            &["u"],
        )
        .await
        .ok()?;
        (!done.is_empty()).then_some(())
    })
    .await?;
    for (table, column) in [("comments", "author_id"), ("likes", "user_id")] {
        let left = text_rows(
            &db,
            &format!("SELECT CAST(COUNT(*) AS TEXT) AS n FROM {table} WHERE {column} = $1"),
            vec![bob.into()],
            &["n"],
        )
        .await?;
        ensure!(left == ["0"], "{table}: {left:?}");
    }
    let (status, record) = app.get(&path, None).await?;
    ensure!(
        status == StatusCode::OK && record["like_count"] == 0,
        "ada's image stays: {status} {record}"
    );
    // (No blob store check: the image has no derivatives, which only a
    // processed upload would have.)
    app.server.stop().await?;
    Ok(())
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::Store::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::Store::Postgres).await
                }
            )*
        }
    };
}

on_both_databases!(
    every_table_has_one_owner,
    upgraded_legacy_schema_is_the_fresh_one,
    a_role_alone_creates_only_its_tables,
    upgrade_in_place_keeps_the_data,
);
