//! The search role through the API: it learns images, accounts, comments,
//! likes, follows and blocks from events, and answers text (Chinese
//! included), filter, geo, facet, suggestion, people and related-image
//! queries with only what the caller may see.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_config::Settings;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, small_photo, with_exif};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ROLES: &[&str] = &["users", "images", "thumbnails", "search"];
/// How long an event may take to show in search here (the goal is 2 s).
const INDEXED: Duration = Duration::from_secs(20);

async fn embedded() -> anyhow::Result<App> {
    let dir = tempfile::tempdir()?;
    App::start_roles(Settings::embedded(dir.path()), dir, ROLES).await
}

async fn real() -> anyhow::Result<App> {
    let dir = tempfile::tempdir()?;
    let settings = pinhole_tests::real_settings(dir.path(), "search").await?;
    App::start_roles(settings, dir, ROLES).await
}

fn id(v: &Value) -> anyhow::Result<String> {
    Ok(v["id"].as_str().context("id")?.to_owned())
}

/// `GET /search/images?{query}`.
async fn search(app: &App, query: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let (status, body) = app.get(&format!("/search/images?{query}"), token).await?;
    ensure!(status == StatusCode::OK, "{query}: {status} {body}");
    Ok(body)
}

fn ids(results: &Value) -> Vec<String> {
    results["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["image"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `query` answers results that pass `ok`.
async fn until(
    app: &App,
    query: &str,
    token: Option<&str>,
    ok: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let found = wait_for(INDEXED, query, || async {
        let r = search(app, query, token).await.ok()?;
        let pass = ok(&r);
        if let Ok(mut l) = last.lock() {
            *l = r.clone();
        }
        pass.then_some(r)
    })
    .await;
    found.with_context(|| {
        format!(
            "last answer: {}",
            last.lock().map(|l| l.to_string()).unwrap_or_default()
        )
    })
}

fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn chinese_query_finds_the_photo_first_and_new_images_show_quickly() -> anyhow::Result<()> {
    let app = embedded().await?;
    let ann = app.user("ann").await?;
    let mut others = Vec::new();
    for (n, (title, description)) in [
        ("城市夜景", "高楼和灯光"),
        ("海边日落", "沙滩上的阳光"),
        ("Misty forest at dawn", "Fog between the pines"),
        ("雪山", "山顶的雪和云"),
    ]
    .into_iter()
    .enumerate()
    {
        let img = app
            .posted(
                &ann,
                small_photo("Storm.jpg", n)?,
                &[("title", title), ("description", description)],
            )
            .await?;
        others.push(id(&img)?);
    }
    let target = app
        .posted(
            &ann,
            small_photo("Wood.jpg", 10)?,
            &[
                ("title", "森林中的浓雾与阳光"),
                ("description", "清晨的树林"),
            ],
        )
        .await?;
    let processed = Instant::now();
    let target = id(&target)?;
    let found = until(
        &app,
        &format!("q={}", q("森林里浓雾和阳光")),
        None,
        |r| ids(r).first() == Some(&target),
    )
    .await?;
    println!(
        "searchable {:?} after processing ended",
        processed.elapsed()
    );
    ensure!(
        found["items"][0]["highlights"]["title"]
            .as_str()
            .is_some_and(|h| h.contains("<mark>森林</mark>") && h.contains("<mark>浓雾</mark>")),
        "{found}"
    );
    ensure!(
        found["items"][0]["image"]["title"] == "森林中的浓雾与阳光",
        "{found}"
    );
    // English: stemming, a typo, a phrase.
    let misty = &others[2];
    for query in ["forests", "forrest", "\"misty forest\"", "pine fog"] {
        until(&app, &format!("q={}", q(query)), None, |r| {
            ids(r).contains(misty)
        })
        .await?;
    }
    let phrase = search(&app, &format!("q={}", q("\"forest misty\"")), None).await?;
    ensure!(
        !ids(&phrase).contains(misty),
        "a phrase keeps its order: {phrase}"
    );
    Ok(())
}

#[tokio::test]
async fn results_never_show_what_the_viewer_may_not_see() -> anyhow::Result<()> {
    let app = embedded().await?;
    let open = app.user("open").await?; // a public account
    let shy = app.user("shy").await?; // a private account
    let stranger = app.user("stranger").await?;
    let fan = app.user("fan").await?; // follows both (approved)
    let asker = app.user("asker").await?; // asked to follow shy, not approved
    let blocked = app.user("blocked").await?; // blocked by open
    let blocker = app.user("blocker").await?; // blocked open
    let (s, b) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&shy),
            Some(json!({"is_private": true})),
        )
        .await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    for (who, whom) in [
        (&fan, "open"),
        (&fan, "shy"),
        (&asker, "shy"),
        (&blocked, "open"),
    ] {
        let (s, b) = app
            .call(
                Method::POST,
                &format!("/users/{whom}/follow"),
                Some(who),
                None,
            )
            .await?;
        ensure!(s.is_success(), "{s} {b}");
    }
    let (s, b) = app
        .call(
            Method::POST,
            "/me/follow-requests/fan/approve",
            Some(&shy),
            None,
        )
        .await?;
    ensure!(s.is_success(), "{s} {b}");
    for (who, whom) in [(&open, "blocked"), (&blocker, "open")] {
        let (s, b) = app
            .call(
                Method::POST,
                &format!("/users/{whom}/block"),
                Some(who),
                None,
            )
            .await?;
        ensure!(s.is_success(), "{s} {b}");
    }
    let mut images = std::collections::BTreeMap::new();
    for (n, (owner, name, visibility)) in [
        (&open, "open-public", "public"),
        (&open, "open-followers", "followers"),
        (&open, "open-private", "private"),
        (&shy, "shy-public", "public"),
        (&shy, "shy-followers", "followers"),
    ]
    .into_iter()
    .enumerate()
    {
        let img = app
            .posted(
                owner,
                small_photo("Garden.jpg", n)?,
                &[
                    ("title", &format!("matrixword {name}")),
                    ("visibility", visibility),
                ],
            )
            .await?;
        images.insert(name, id(&img)?);
    }
    let viewers: [(&str, Option<&str>, &[&str]); 8] = [
        ("anonymous", None, &["open-public"]),
        ("stranger", Some(&stranger), &["open-public"]),
        (
            "fan",
            Some(&fan),
            &[
                "open-public",
                "open-followers",
                "shy-public",
                "shy-followers",
            ],
        ),
        ("asker", Some(&asker), &["open-public"]),
        ("blocked", Some(&blocked), &[]),
        ("blocker", Some(&blocker), &[]),
        (
            "open",
            Some(&open),
            &["open-public", "open-followers", "open-private"],
        ),
        (
            "shy",
            Some(&shy),
            &["open-public", "shy-public", "shy-followers"],
        ),
    ];
    // The last image indexed with every relation known: wait for the owner's view.
    until(&app, "q=matrixword", Some(&shy), |r| ids(r).len() == 3).await?;
    for (who, token, expected) in viewers {
        let mut want: Vec<String> = expected.iter().map(|n| images[n].clone()).collect();
        want.sort();
        let r = until(&app, "q=matrixword&limit=100", token, |r| {
            let mut got = ids(r);
            got.sort();
            got == want
        })
        .await
        .with_context(|| format!("viewer {who}"))?;
        ensure!(r["total"] == json!(want.len()), "{who}: {r}");
    }
    // A follow ended, a block lifted: they take effect.
    let (s, _) = app
        .call(Method::DELETE, "/users/open/follow", Some(&fan), None)
        .await?;
    ensure!(s.is_success());
    let open_followers = images["open-followers"].clone();
    until(&app, "q=matrixword&limit=100", Some(&fan), |r| {
        !ids(r).contains(&open_followers)
    })
    .await?;
    let (s, _) = app
        .call(Method::DELETE, "/users/open/block", Some(&blocker), None)
        .await?;
    ensure!(s.is_success());
    let open_public = images["open-public"].clone();
    until(&app, "q=matrixword", Some(&blocker), |r| {
        ids(r) == [open_public.clone()]
    })
    .await?;
    // Going private hides the account's public images from strangers.
    let (s, _) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&open),
            Some(json!({"is_private": true})),
        )
        .await?;
    ensure!(s.is_success());
    until(&app, "q=matrixword", None, |r| ids(r).is_empty()).await?;
    // People search leaves out those on either side of a block.
    let (s, people) = app.get("/search/users?q=ope", Some(&blocked)).await?;
    ensure!(s == StatusCode::OK, "{people}");
    ensure!(
        people["users"]
            .as_array()
            .is_some_and(|u| u.iter().all(|u| u["username"] != "open")),
        "{people}"
    );
    let people = wait_for(INDEXED, "people search", || async {
        let (_, p) = app.get("/search/users?q=ope", Some(&stranger)).await.ok()?;
        // The card follows the account's events (privacy included).
        (p["users"][0]["username"] == "open" && p["users"][0]["is_private"] == true).then_some(p)
    })
    .await?;
    ensure!(people["users"][0]["display_name"].is_null(), "{people}");
    Ok(())
}

#[tokio::test]
async fn filters_places_facets_and_pages_work_together() -> anyhow::Result<()> {
    let app = embedded().await?;
    let ann = app.user("ann").await?;
    let bob = app.user("bob").await?;
    // Paris, near Paris, Tokyo, Fiji on both sides of the antimeridian.
    let spots: [(&str, &str, &str, &str); 6] = [
        ("eiffel", "48.8584,2.2945", "paris,tower", "ann"),
        ("louvre", "48.8606,2.3376", "paris,museum", "ann"),
        ("versailles", "48.8049,2.1204", "paris,garden", "bob"),
        ("tokyo", "35.6762,139.6503", "city", "bob"),
        ("fiji-east", "-17.0,179.9", "island", "ann"),
        ("fiji-west", "-17.0,-179.9", "island", "bob"),
    ];
    let mut by = std::collections::BTreeMap::new();
    for (n, (name, location, tags, owner)) in spots.into_iter().enumerate() {
        let token = if owner == "ann" { &ann } else { &bob };
        let img = app
            .posted(
                token,
                small_photo("Dune.jpg", n)?,
                &[
                    ("title", &format!("geoword {name}")),
                    ("location", location),
                    ("tags", tags),
                ],
            )
            .await?;
        by.insert(name, id(&img)?);
    }
    let nowhere = id(&app
        .posted(
            &ann,
            small_photo("Dune.jpg", 99)?,
            &[("title", "geoword nowhere")],
        )
        .await?)?;
    until(&app, "q=geoword", None, |r| r["total"] == 7).await?;
    let names = |r: &Value| -> Vec<String> {
        ids(r)
            .into_iter()
            .map(|i| {
                by.iter()
                    .find(|(_, v)| **v == i)
                    .map_or("nowhere".to_owned(), |(k, _)| (*k).to_owned())
            })
            .collect()
    };
    // Radius, sorted by distance from the Louvre.
    let r = search(
        &app,
        "q=geoword&near=48.8606,2.3376&radius_km=10&sort=distance",
        None,
    )
    .await?;
    ensure!(names(&r) == ["louvre", "eiffel"], "{r}");
    ensure!(
        r["items"][1]["distance_km"]
            .as_f64()
            .is_some_and(|d| (d - 3.15).abs() < 0.2),
        "{r}"
    );
    let r = search(&app, "near=48.8606,2.3376&radius_km=30&sort=distance", None).await?;
    ensure!(names(&r) == ["louvre", "eiffel", "versailles"], "{r}");
    // A box across the antimeridian holds both Fiji points, nothing else.
    let r = search(&app, "bbox=-18,179,-16,-179", None).await?;
    let mut got = names(&r);
    got.sort();
    ensure!(got == ["fiji-east", "fiji-west"], "{r}");
    // Places by name, from the coordinates.
    let r = search(&app, "q=paris", None).await?;
    ensure!(
        ids(&r).contains(&by["eiffel"]) && ids(&r).contains(&by["louvre"]),
        "{r}"
    );
    let eiffel = &r["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|i| i["image"]["id"] == by["eiffel"].as_str())
        .context("eiffel")?["image"];
    ensure!(
        eiffel["location"]["country"]
            .as_str()
            .is_some_and(|c| c.contains("France")),
        "{eiffel}"
    );
    // Tags (all must match), author, has_location, facets.
    let r = search(&app, "tags=paris,museum", None).await?;
    ensure!(names(&r) == ["louvre"], "{r}");
    let r = search(&app, "q=geoword&author=bob&tags=paris", None).await?;
    ensure!(names(&r) == ["versailles"], "{r}");
    let r = search(&app, "q=geoword&has_location=false", None).await?;
    ensure!(ids(&r) == [nowhere.clone()], "{r}");
    let r = search(&app, "q=geoword", None).await?;
    let paris = r["facets"]["tags"]
        .as_array()
        .context("facets")?
        .iter()
        .find(|t| t["value"] == "paris")
        .context("paris facet")?;
    ensure!(paris["count"] == 3, "{r}");
    // Dates: all were uploaded today, none before 2000.
    let r = search(&app, "q=geoword&uploaded_to=2000-01-01", None).await?;
    ensure!(r["total"] == 0, "{r}");
    // Pages: two by two, each once, in the same order as one page of all.
    let all = ids(&search(&app, "q=geoword&sort=recent&limit=7", None).await?);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = search(
            &app,
            &format!("q=geoword&sort=recent&limit=2{cursor}"),
            None,
        )
        .await?;
        paged.extend(ids(&r));
        match r["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    ensure!(paged == all && all.len() == 7, "{paged:?} {all:?}");
    // Bad parameters are named.
    for (query, param) in [
        ("sort=distance", "sort"),
        ("near=100,0", "near"),
        ("limit=500", "limit"),
        ("bbox=1,2,3", "bbox"),
        ("radius_km=3", "radius_km"),
        ("taken_from=soon", "taken_from"),
    ] {
        let (s, b) = app.get(&format!("/search/images?{query}"), None).await?;
        ensure!(
            s == StatusCode::UNPROCESSABLE_ENTITY
                && b["code"] == "validation-failed"
                && b["fields"][param].is_string(),
            "{query}: {s} {b}"
        );
    }
    // Suggestions: tags and title words by prefix.
    let (s, b) = app.get("/search/suggest?q=pa", None).await?;
    ensure!(
        s == StatusCode::OK
            && b["suggestions"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x["text"] == "paris" && x["kind"] == "tag")),
        "{b}"
    );
    // The camera from EXIF: a filter and a facet; taken-at dates filter.
    let tmp = tempfile::tempdir()?;
    let fuji = with_exif(
        tmp.path(),
        "Dune.jpg",
        &[
            "-Make=FUJIFILM",
            "-Model=X-T3",
            "-DateTimeOriginal=2019:06:01 10:00:00",
        ],
    )?;
    let shot = id(&app.posted(&bob, fuji, &[("title", "camword")]).await?)?;
    let r = until(&app, "camera=fujifilm%20x-t3", None, |r| {
        ids(r) == [shot.clone()]
    })
    .await?;
    ensure!(
        r["facets"]["camera"][0] == json!({"value": "FUJIFILM X-T3", "count": 1}),
        "{r}"
    );
    let r = search(
        &app,
        "q=camword&taken_from=2019-06-01&taken_to=2019-06-01",
        None,
    )
    .await?;
    ensure!(ids(&r) == [shot.clone()], "{r}");
    let r = search(&app, "q=camword&taken_from=2019-06-02", None).await?;
    ensure!(ids(&r).is_empty(), "{r}");
    Ok(())
}

#[tokio::test]
async fn related_images_say_why_and_deletes_and_edits_take_effect() -> anyhow::Result<()> {
    let app = embedded().await?;
    let ann = app.user("ann").await?;
    let base = id(&app
        .posted(
            &ann,
            small_photo("LadyBird.jpg", 1)?,
            &[
                ("title", "ladybird on a leaf"),
                ("tags", "insect,macro"),
                ("location", "45.0,7.0"),
            ],
        )
        .await?)?;
    let twin = id(&app
        .posted(
            &ann,
            small_photo("LadyBird.jpg", 2)?,
            &[("title", "another shot")],
        )
        .await?)?;
    let words = id(&app
        .posted(
            &ann,
            small_photo("Storm.jpg", 3)?,
            &[("title", "red ladybird"), ("tags", "insect")],
        )
        .await?)?;
    let near = id(&app
        .posted(
            &ann,
            small_photo("Aqua.jpg", 4)?,
            &[("title", "water"), ("location", "45.01,7.01")],
        )
        .await?)?;
    until(&app, "q=ladybird", None, |r| r["total"] == 2).await?;
    let related = wait_for(INDEXED, "related images", || async {
        let (s, r) = app
            .get(&format!("/images/{base}/related"), None)
            .await
            .ok()?;
        (s == StatusCode::OK && r["items"].as_array().is_some_and(|i| i.len() >= 3)).then_some(r)
    })
    .await?;
    let reason = |id: &str| {
        related["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["image"]["id"] == id)
                .map(|i| i["reason"].clone())
        })
    };
    ensure!(reason(&twin) == Some(json!("visual")), "{related}");
    ensure!(reason(&words) == Some(json!("text")), "{related}");
    ensure!(reason(&near) == Some(json!("place")), "{related}");
    ensure!(reason(&base).is_none(), "never itself: {related}");
    // Edits of metadata, visibility and deletion take effect.
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/images/{words}"),
            Some(&ann),
            Some(json!({"title": "crimson beetle"})),
        )
        .await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    until(&app, "q=beetle", None, |r| ids(r) == [words.clone()]).await?;
    until(&app, "q=ladybird", None, |r| !ids(r).contains(&words)).await?;
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/images/{words}"),
            Some(&ann),
            Some(json!({"visibility": "private"})),
        )
        .await?;
    ensure!(s == StatusCode::OK);
    until(&app, "q=beetle", None, |r| ids(r).is_empty()).await?;
    until(&app, "q=beetle", Some(&ann), |r| ids(r) == [words.clone()]).await?;
    let (s, _) = app
        .call(Method::DELETE, &format!("/images/{base}"), Some(&ann), None)
        .await?;
    ensure!(s.is_success());
    until(&app, "q=ladybird", Some(&ann), |r| r["total"] == 0).await?;
    let (s, b) = app.get(&format!("/images/{base}/related"), None).await?;
    ensure!(
        s == StatusCode::NOT_FOUND && b["code"] == "image-not-found",
        "{s} {b}"
    );
    // Likes count for `popular`, comments are searchable.
    let bob = app.user("bob").await?;
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/images/{near}/like"),
            Some(&bob),
            None,
        )
        .await?;
    ensure!(s.is_success());
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/images/{near}/comments"),
            Some(&bob),
            Some(json!({"body": "what a turquoise lagoon"})),
        )
        .await?;
    ensure!(s.is_success(), "{b}");
    until(&app, "q=turquoise", None, |r| ids(r) == [near.clone()]).await?;
    until(&app, "sort=popular&limit=1", None, |r| {
        ids(r) == [near.clone()]
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn search_works_on_the_real_backends_and_survives_a_rebuild() -> anyhow::Result<()> {
    let app = real().await?;
    let ann = app.user("ann").await?;
    let img = id(&app
        .posted(
            &ann,
            small_photo("Blinds.jpg", 1)?,
            &[("title", "森林中的浓雾与阳光"), ("tags", "fog")],
        )
        .await?)?;
    until(
        &app,
        &format!("q={}", q("森林里浓雾和阳光")),
        None,
        |r| ids(r).first() == Some(&img),
    )
    .await?;
    // A rebuild from the export APIs replaces the index; search answers
    // throughout and finds the same afterwards, and events after it still
    // arrive.
    let engine_dir = app.settings.search_dir.clone();
    let clients = app.server.ctx.clients.clone();
    let before = pinhole_search::engine::current_name(&engine_dir)?;
    let rebuilt =
        pinhole_search::reindex::reindex(&engine_dir, &clients, &pinhole_search::reindex::Quiet)
            .await?;
    ensure!(rebuilt.images >= 1 && rebuilt.accounts >= 1, "{rebuilt:?}");
    ensure!(pinhole_search::engine::current_name(&engine_dir)? != before);
    until(
        &app,
        &format!("q={}", q("森林里浓雾和阳光")),
        None,
        |r| ids(r).first() == Some(&img),
    )
    .await?;
    let later = id(&app
        .posted(
            &ann,
            small_photo("Blinds.jpg", 2)?,
            &[("title", "after the rebuild")],
        )
        .await?)?;
    until(&app, "q=rebuild", None, |r| ids(r) == [later.clone()]).await?;
    let r = search(&app, "tags=fog", None).await?;
    ensure!(
        ids(&r) == [img.clone()],
        "no duplicates after the rebuild: {r}"
    );
    // A second search instance (another host) keeps a full index of its own
    // from a consumer group of its own, asking the first for records.
    let other_dir = tempfile::tempdir()?;
    let mut other = app.settings.clone();
    other.listen = "127.0.0.1:0".parse()?;
    other.data_dir = other_dir.path().to_owned();
    other.search_dir = other_dir.path().join("search");
    other.search_group = pinhole_testkit::unique("search-other");
    other.role_urls.images = Some(app.server.url().parse()?);
    other.role_urls.users = Some(app.server.url().parse()?);
    let second = pinhole::start(other, &["search"]).await?;
    let url = format!("{}/api/v1/search/images?tags=fog", second.url());
    wait_for(INDEXED, "the second instance's index", || async {
        let r: Value = app.http.get(&url).send().await.ok()?.json().await.ok()?;
        (ids(&r) == [img.clone()]).then_some(())
    })
    .await?;
    second.stop().await?;
    Ok(())
}
