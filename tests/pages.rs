//! Who sees which detail page: public, followers-only and private images,
//! for anonymous visitors, followers, strangers, blocked people and the
//! owner; and pages that go on when the users and search roles stop.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_config::Settings;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, PASSWORD, read, small_photo};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ROLES: &[&str] = &["users", "images", "thumbnails", "search", "gateway"];
const APPLIED: Duration = Duration::from_secs(60);

/// The detail page of `id` for `token`'s holder (anonymous without one).
async fn detail_page(
    app: &App,
    id: &str,
    token: Option<&str>,
) -> anyhow::Result<(StatusCode, String)> {
    let mut request = app.http.get(format!("{}/p/{id}", app.server.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::test]
async fn each_viewer_sees_the_pages_they_may() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let app = App::start_roles(Settings::embedded(dir.path()), dir, ROLES).await?;
    let olga = app.user("olga").await?;
    let fred = app.user("fred").await?;
    let sam = app.user("sam").await?;
    let bart = app.user("bart").await?;
    let mut ids = Vec::new();
    for (n, visibility) in ["public", "followers", "private"].iter().enumerate() {
        let title = format!("A {visibility} photo");
        let image = app
            .posted(
                &olga,
                small_photo("Storm.jpg", 10 + n)?,
                &[("title", title.as_str()), ("visibility", visibility)],
            )
            .await?;
        ids.push((*visibility, image["id"].as_str().context("id")?.to_owned()));
    }
    let (s, b) = app
        .call(Method::POST, "/users/olga/follow", Some(&fred), None)
        .await?;
    ensure!(s.is_success(), "follow: {s} {b}");
    let (s, b) = app
        .call(Method::POST, "/users/bart/block", Some(&olga), None)
        .await?;
    ensure!(s.is_success(), "block: {s} {b}");
    let followers_only = &ids[1].1;
    let public = &ids[0].1;
    // The images role learns follows and blocks from the users role's
    // events.
    wait_for(APPLIED, "the follow and the block to apply", || async {
        let (f, _) = detail_page(&app, followers_only, Some(&fred)).await.ok()?;
        let (b, _) = detail_page(&app, public, Some(&bart)).await.ok()?;
        (f == StatusCode::OK && b == StatusCode::NOT_FOUND).then_some(())
    })
    .await?;

    let (_, nothing) = detail_page(&app, &uuid::Uuid::now_v7().to_string(), None).await?;
    let viewers = [
        ("anonymous", None),
        ("the owner", Some(olga.as_str())),
        ("a follower", Some(fred.as_str())),
        ("a stranger", Some(sam.as_str())),
        ("someone blocked", Some(bart.as_str())),
    ];
    for (visibility, id) in &ids {
        for (who, token) in &viewers {
            let may = match (*visibility, *who) {
                (_, "the owner") => true,
                (_, "someone blocked") => false,
                ("public", _) => true,
                ("followers", "a follower") => true,
                _ => false,
            };
            let (status, html) = detail_page(&app, id, *token).await?;
            let title = format!("A {visibility} photo");
            if may {
                ensure!(
                    status == StatusCode::OK && html.contains(&title),
                    "{who} sees the {visibility} photo: {status}"
                );
            } else {
                // The same answer as for an image that does not exist.
                ensure!(
                    status == StatusCode::NOT_FOUND && html == nothing && !html.contains(&title),
                    "{who} does not see the {visibility} photo, nor that it exists: {status}"
                );
            }
            let mut request = app.http.get(app.url(&format!("/images/{id}/detail")));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let (status, body) = read(request.send().await?).await?;
            let expected = if may {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            ensure!(
                status == expected,
                "{who}, JSON of the {visibility} photo: {status} {body}"
            );
        }
    }
    // The search page, explore and profile leave out what a viewer may
    // not see, too.
    for (who, token) in &viewers {
        let mut request = app.http.get(format!("{}/u/olga", app.server.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let html = response.text().await?;
        if *who == "someone blocked" {
            ensure!(
                status == StatusCode::NOT_FOUND,
                "{who}: olga's profile {status}"
            );
            continue;
        }
        for (visibility, id) in &ids {
            let may = matches!(
                (*visibility, *who),
                (_, "the owner") | ("public", _) | ("followers", "a follower")
            );
            ensure!(
                html.contains(&format!("/p/{id}")) == may,
                "{who}: the {visibility} photo on olga's profile: {may}"
            );
        }
    }
    Ok(())
}

/// Roles in three processes on the real backends (each its own database,
/// one broker): users; search; images, thumbnails and the gateway.
/// Stopping search, then users, leaves the detail page answering quickly
/// with what it has.
#[tokio::test]
async fn pages_go_on_without_search_then_users() -> anyhow::Result<()> {
    const SECRET: &str = "an-internal-secret-of-at-least-32-chars";
    let users_port = pinhole_testkit::free_port()?;
    let search_port = pinhole_testkit::free_port()?;
    let main_port = pinhole_testkit::free_port()?;
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    // Roles in separate processes meet on a shared broker; each keeps its
    // own database.
    let namespace = pinhole_testkit::unique("apart");
    let settings = async |dir: &tempfile::TempDir, port: u16| -> anyhow::Result<Settings> {
        let mut s = pinhole_tests::real_settings(dir.path(), "apart").await?;
        s.bus_namespace = namespace.clone();
        s.internal_token = Some(SECRET.to_owned().into());
        s.signup_limit = 0;
        s.listen = ([127, 0, 0, 1], port).into();
        s.role_urls.users = Some(url(users_port).parse()?);
        s.role_urls.images = Some(url(main_port).parse()?);
        s.role_urls.search = Some(url(search_port).parse()?);
        Ok(s)
    };
    let users = pinhole::start(settings(&dirs[0], users_port).await?, &["users"]).await?;
    let search = pinhole::start(settings(&dirs[1], search_port).await?, &["search"]).await?;
    let main = pinhole::start(
        settings(&dirs[2], main_port).await?,
        &["images", "thumbnails", "gateway"],
    )
    .await?;
    let http = reqwest::Client::new();
    let users_api = |path: &str| format!("{}/api/v1{path}", url(users_port));
    let api = |path: &str| format!("{}/api/v1{path}", url(main_port));

    let body = json!({"username": "una", "email": "una@example.com", "password": PASSWORD});
    let (s, b) = read(http.post(users_api("/accounts")).json(&body).send().await?).await?;
    ensure!(s == StatusCode::CREATED, "{s} {b}");
    let login = json!({"login": "una", "password": PASSWORD});
    let (s, b) = read(
        http.post(users_api("/sessions"))
            .json(&login)
            .send()
            .await?,
    )
    .await?;
    ensure!(s == StatusCode::CREATED, "{s} {b}");
    let token = b["access_token"].as_str().context("token")?.to_owned();
    // The images role knows the account from its event before it shows
    // its images to others.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(small_photo("Aqua.jpg", 3)?).file_name("a.jpg"),
        )
        .text("title", "Still water");
    let (s, b) = read(
        http.post(api("/images?wait=true&timeout=60"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await?,
    )
    .await?;
    ensure!(s == StatusCode::OK && b["status"] == "done", "{s} {b}");
    let image = b["image_id"].as_str().context("image id")?.to_owned();
    let page = format!("{}/p/{image}", url(main_port));
    let detail = api(&format!("/images/{image}/detail"));
    wait_for(APPLIED, "the detail to have its author", || async {
        let (s, b) = read(http.get(&detail).send().await.ok()?).await.ok()?;
        (s == StatusCode::OK && b["author"]["username"] == "una").then_some(())
    })
    .await?;

    search.stop().await?;
    let started = Instant::now();
    let (s, b) = read(
        http.get(api(&format!("/images/{image}/detail")))
            .send()
            .await?,
    )
    .await?;
    ensure!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    ensure!(
        s == StatusCode::OK && b["missing"] == json!(["related"]),
        "without search: {s} {b}"
    );

    users.stop().await?;
    for attempt in 0..2 {
        let started = Instant::now();
        let response = http.get(&page).send().await?;
        let status = response.status();
        let html = response.text().await?;
        ensure!(
            started.elapsed() < Duration::from_secs(3),
            "page {attempt} without users: {:?}",
            started.elapsed()
        );
        ensure!(
            status == StatusCode::OK && html.contains("Still water"),
            "the page without users and search: {status}"
        );
        let started = Instant::now();
        let (s, b) = read(
            http.get(api(&format!("/images/{image}/detail")))
                .send()
                .await?,
        )
        .await?;
        ensure!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        ensure!(
            s == StatusCode::OK,
            "JSON without users and search: {s} {b}"
        );
        ensure!(
            b["missing"]
                .as_array()
                .is_some_and(|m| m.contains(&json!("related"))),
            "{b}"
        );
    }
    // Logging in needs the users role: the form says so, quickly.
    let login_page = http.get(format!("{}/login", url(main_port))).send().await?;
    ensure!(
        login_page.status() == StatusCode::OK,
        "{}",
        login_page.status()
    );
    main.stop().await?;
    Ok(())
}
