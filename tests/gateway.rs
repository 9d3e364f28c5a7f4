//! The gateway role: the image detail page (HTML and its JSON twin) and
//! explore, assembled from the images, users and search roles through
//! their clients; who may see what, caching, and a page that degrades
//! without failing when an optional role is away.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_config::Settings;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, PASSWORD, read, small_photo};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

const ROLES: &[&str] = &["users", "images", "thumbnails", "search", "gateway"];
const INDEXED: Duration = Duration::from_secs(20);
const SECRET: &str = "an-internal-secret-of-at-least-32-chars";

async fn embedded() -> anyhow::Result<App> {
    let dir = tempfile::tempdir()?;
    App::start_roles(Settings::embedded(dir.path()), dir, ROLES).await
}

/// A page of the site (not under `/api/v1`).
async fn page(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    etag: Option<&str>,
) -> anyhow::Result<(StatusCode, reqwest::header::HeaderMap, String)> {
    let mut request = http.get(format!("{base}{path}"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(e) = etag {
        request = request.header(IF_NONE_MATCH, e);
    }
    let response = request.send().await?;
    let (status, headers) = (response.status(), response.headers().clone());
    Ok((status, headers, response.text().await?))
}

fn header(headers: &reqwest::header::HeaderMap, name: impl reqwest::header::AsHeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn id(v: &Value) -> anyhow::Result<String> {
    Ok(v["id"].as_str().context("id")?.to_owned())
}

#[tokio::test]
async fn the_detail_page_shows_a_public_image_to_everyone_and_a_private_one_to_its_owner()
-> anyhow::Result<()> {
    let app = embedded().await?;
    let base = app.server.url();
    let ann = app.user("ann").await?;
    let bob = app.user("bob").await?;
    let forest = app
        .posted(
            &ann,
            small_photo("LadyBird.jpg", 1)?,
            &[
                ("title", "Fog <in> the forest"),
                ("description", "Morning light #forest #fog"),
                ("location", "45.0,7.0"),
            ],
        )
        .await?;
    let forest_id = id(&forest)?;
    let twin = id(&app
        .posted(
            &ann,
            small_photo("LadyBird.jpg", 2)?,
            &[
                ("title", "forest fog again"),
                ("tags", "forest"),
                ("description", "森林里浓雾和阳光"),
            ],
        )
        .await?)?;
    let secret = id(&app
        .posted(
            &ann,
            small_photo("Storm.jpg", 3)?,
            &[("title", "hidden"), ("visibility", "private")],
        )
        .await?)?;
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            &format!("/images/{forest_id}/comments"),
            Some(&bob),
            Some(json!({"body": "lovely <b>light</b>"})),
        )
        .await?;
    ensure!(s == StatusCode::CREATED, "comment {s}");

    // Anonymous: everything, once search knows the related image.
    let (status, headers, html) = wait_for(INDEXED, "the related image on the page", || async {
        let got = page(&app.http, &base, &format!("/p/{forest_id}"), None, None)
            .await
            .ok()?;
        (got.0 == StatusCode::OK && got.2.contains(&format!("/p/{twin}"))).then_some(got)
    })
    .await?;
    ensure!(status == StatusCode::OK);
    ensure!(header(&headers, "content-type").starts_with("text/html"));
    for needle in [
        "<h1>Fog &lt;in&gt; the forest</h1>",
        "srcset=\"",
        " 480w\"",
        "type=\"image/webp\"",
        "property=\"og:image\"",
        "name=\"twitter:card\"",
        "application/ld+json",
        "\"@type\":\"ImageObject\"",
        "href=\"/u/ann\"",
        "href=\"/search?tags=forest\"",
        "openstreetmap.org",
        "class=\"related\"",
        "lovely &lt;b&gt;light&lt;/b&gt;",
        "width=\"",
    ] {
        ensure!(html.contains(needle), "{needle} missing from {html}");
    }
    ensure!(!html.contains("<in>"), "escaped");
    ensure!(!html.contains("unavailable"), "nothing missing: {html}");
    let css = html
        .split("href=\"/static/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .context("a stylesheet")?;
    let (s, h, body) = page(&app.http, &base, &format!("/static/{css}"), None, None).await?;
    ensure!(s == StatusCode::OK && body.contains(".grid"), "{s}");
    ensure!(header(&h, CACHE_CONTROL).contains("immutable"));
    ensure!(header(&h, "content-type").starts_with("text/css"));

    // Caching: public for anonymous visitors, a strong ETag, 304.
    ensure!(
        header(&headers, CACHE_CONTROL) == "public, max-age=60, stale-while-revalidate=600",
        "{headers:?}"
    );
    let etag = header(&headers, ETAG).to_owned();
    ensure!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let (s, h, body) = page(
        &app.http,
        &base,
        &format!("/p/{forest_id}"),
        None,
        Some(&etag),
    )
    .await?;
    ensure!(s == StatusCode::NOT_MODIFIED && body.is_empty(), "{s}");
    ensure!(header(&h, ETAG) == etag);
    let (s, _, _) = page(
        &app.http,
        &base,
        &format!("/p/{forest_id}"),
        None,
        Some("\"other\""),
    )
    .await?;
    ensure!(s == StatusCode::OK);

    // Signed in: private.
    let (s, h, _) = page(
        &app.http,
        &base,
        &format!("/p/{forest_id}"),
        Some(&bob),
        None,
    )
    .await?;
    ensure!(
        s == StatusCode::OK && header(&h, CACHE_CONTROL).starts_with("private"),
        "{h:?}"
    );

    // A private image: its owner only; the same 404 as no image at all.
    let (s, h, html) = page(&app.http, &base, &format!("/p/{secret}"), Some(&ann), None).await?;
    ensure!(
        s == StatusCode::OK && html.contains("<h1>hidden</h1>"),
        "{s}"
    );
    ensure!(header(&h, CACHE_CONTROL).starts_with("private"));
    let (s, _, anonymous) = page(&app.http, &base, &format!("/p/{secret}"), None, None).await?;
    ensure!(s == StatusCode::NOT_FOUND, "{s}");
    let (s, _, other) = page(&app.http, &base, &format!("/p/{secret}"), Some(&bob), None).await?;
    ensure!(s == StatusCode::NOT_FOUND, "{s}");
    let nobody = uuid::Uuid::now_v7();
    let (s, _, missing) = page(&app.http, &base, &format!("/p/{nobody}"), None, None).await?;
    ensure!(s == StatusCode::NOT_FOUND);
    ensure!(anonymous == missing && other == missing, "the same 404");
    ensure!(!missing.contains(&secret) && !missing.contains("<h1>hidden"));
    let (s, _, _) = page(&app.http, &base, "/p/not-an-id", None, None).await?;
    ensure!(s == StatusCode::NOT_FOUND);

    // The JSON twin.
    let (s, detail) = app
        .get(&format!("/images/{forest_id}/detail"), None)
        .await?;
    ensure!(s == StatusCode::OK, "{s} {detail}");
    ensure!(detail["image"]["id"] == forest_id.as_str(), "{detail}");
    ensure!(detail["author"]["username"] == "ann", "{detail}");
    ensure!(
        detail["comments"][0]["body"] == "lovely <b>light</b>",
        "{detail}"
    );
    ensure!(detail["missing"] == json!([]), "{detail}");
    let related = detail["related"].as_array().context("related")?;
    ensure!(
        related
            .iter()
            .any(|r| r["image"]["id"] == twin.as_str() && r["reason"].is_string()),
        "{detail}"
    );
    let (s, body) = app
        .get(&format!("/images/{secret}/detail"), Some(&bob))
        .await?;
    ensure!(
        s == StatusCode::NOT_FOUND && body["code"] == "image-not-found",
        "{body}"
    );
    let (s, _) = app
        .get(&format!("/images/{secret}/detail"), Some(&ann))
        .await?;
    ensure!(s == StatusCode::OK);

    // Search: the results page, a search box, only what the viewer may see.
    let q: String = url::form_urlencoded::byte_serialize("森林里浓雾和阳光".as_bytes()).collect();
    let (s, h, html) = page(&app.http, &base, &format!("/search?q={q}"), None, None).await?;
    ensure!(s == StatusCode::OK, "{s} {html}");
    ensure!(html.contains(&format!("/p/{twin}")), "{html}");
    ensure!(html.contains("value=\"森林里浓雾和阳光\""), "{html}");
    ensure!(header(&h, CACHE_CONTROL).starts_with("public"));
    let (s, _, html) = page(&app.http, &base, "/search?tags=forest", None, None).await?;
    ensure!(
        s == StatusCode::OK && html.contains(&format!("/p/{forest_id}")),
        "{html}"
    );
    // Once the private image is indexed, its owner finds it and others do not.
    wait_for(INDEXED, "the owner finding a private image", || async {
        let (s, _, html) = page(&app.http, &base, "/search?q=hidden", Some(&ann), None)
            .await
            .ok()?;
        (s == StatusCode::OK && html.contains(&format!("/p/{secret}"))).then_some(())
    })
    .await?;
    let (s, _, html) = page(&app.http, &base, "/search?q=hidden", Some(&bob), None).await?;
    ensure!(
        s == StatusCode::OK && !html.contains(&format!("/p/{secret}")),
        "{html}"
    );
    let (s, _, html) = page(&app.http, &base, "/search?sort=sideways", None, None).await?;
    ensure!(
        s == StatusCode::UNPROCESSABLE_ENTITY && html.contains("sort"),
        "{s} {html}"
    );

    // Profiles: what the viewer may see.
    let (s, _, html) = page(&app.http, &base, "/u/ann", None, None).await?;
    ensure!(
        s == StatusCode::OK && html.contains(&format!("/p/{forest_id}")),
        "{html}"
    );
    ensure!(!html.contains(&format!("/p/{secret}")), "{html}");
    let (s, h, html) = page(&app.http, &base, "/u/ann", Some(&ann), None).await?;
    ensure!(
        s == StatusCode::OK && html.contains(&format!("/p/{secret}")),
        "{html}"
    );
    ensure!(header(&h, CACHE_CONTROL).starts_with("private"));
    let (s, _, _) = page(&app.http, &base, "/u/nobody-here", None, None).await?;
    ensure!(s == StatusCode::NOT_FOUND, "{s}");

    // Explore.
    let (s, h, html) = page(&app.http, &base, "/", None, None).await?;
    ensure!(s == StatusCode::OK, "{s}");
    ensure!(html.contains(&format!("/p/{forest_id}")), "{html}");
    ensure!(!html.contains(&format!("/p/{secret}")), "{html}");
    ensure!(header(&h, CACHE_CONTROL).starts_with("public"));
    Ok(())
}

/// With the search role on a server of its own, the page uses it over
/// HTTP; once it is stopped, the page still answers at once without
/// related images.
#[tokio::test]
async fn the_detail_page_goes_on_without_a_stopped_search_role() -> anyhow::Result<()> {
    let main_dir = tempfile::tempdir()?;
    let search_dir = tempfile::tempdir()?;
    let search_port = pinhole_testkit::free_port()?;
    let main_port = pinhole_testkit::free_port()?;
    let mut main = Settings::embedded(main_dir.path());
    main.internal_token = Some(SECRET.to_owned().into());
    main.signup_limit = 0;
    main.listen = ([127, 0, 0, 1], main_port).into();
    main.role_urls.search = Some(format!("http://127.0.0.1:{search_port}").parse()?);
    let mut search = Settings::embedded(search_dir.path());
    search.internal_token = Some(SECRET.to_owned().into());
    search.listen = ([127, 0, 0, 1], search_port).into();
    search.role_urls.users = Some(format!("http://127.0.0.1:{main_port}").parse()?);
    search.role_urls.images = Some(format!("http://127.0.0.1:{main_port}").parse()?);
    let main = pinhole::start(main, &["gateway", "users", "images", "thumbnails"]).await?;
    let search = pinhole::start(search, &["search"]).await?;
    let http = reqwest::Client::new();
    let base = main.url();

    let api = |path: &str| format!("{base}/api/v1{path}");
    let body = json!({"username": "cat", "email": "cat@example.com", "password": PASSWORD});
    let (s, b) = read(http.post(api("/accounts")).json(&body).send().await?).await?;
    ensure!(s == StatusCode::CREATED, "{s} {b}");
    let login = json!({"login": "cat", "password": PASSWORD});
    let (s, b) = read(http.post(api("/sessions")).json(&login).send().await?).await?;
    ensure!(s == StatusCode::CREATED, "{s} {b}");
    let token = b["access_token"].as_str().context("token")?.to_owned();
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(small_photo("Aqua.jpg", 1)?).file_name("a.jpg"),
        )
        .text("title", "water");
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

    // The search role answers (it has not indexed this image: nothing
    // related, but not missing).
    let (s, b) = read(
        http.get(api(&format!("/images/{image}/detail")))
            .send()
            .await?,
    )
    .await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    ensure!(
        b["missing"] == json!([]) && b["related"] == json!([]),
        "{b}"
    );
    let (s, _, html) = page(&http, &base, &format!("/p/{image}"), None, None).await?;
    ensure!(
        s == StatusCode::OK && html.contains("Nothing related yet"),
        "{html}"
    );

    let (s, _, html) = page(&http, &base, "/search?q=water", None, None).await?;
    ensure!(
        s == StatusCode::OK && html.contains("Nothing here yet"),
        "{s} {html}"
    );
    let (s, _, html) = page(&http, &base, "/search?sort=sideways", None, None).await?;
    ensure!(
        s == StatusCode::UNPROCESSABLE_ENTITY && html.contains("sort"),
        "{s} {html}"
    );

    // A gateway on its own asks every role over HTTP.
    let front_dir = tempfile::tempdir()?;
    let mut front = Settings::embedded(front_dir.path());
    front.internal_token = Some(SECRET.to_owned().into());
    front.role_urls.users = Some(base.parse()?);
    front.role_urls.images = Some(base.parse()?);
    front.role_urls.search = Some(format!("http://127.0.0.1:{search_port}").parse()?);
    let front = pinhole::start(front, &["gateway"]).await?;
    let front_base = front.url();
    let (s, _, html) = page(
        &http,
        &front_base,
        &format!("/p/{image}"),
        Some(&token),
        None,
    )
    .await?;
    ensure!(
        s == StatusCode::OK && html.contains("<h1>water</h1>"),
        "{s} {html}"
    );
    ensure!(
        html.contains("No comments yet") && html.contains("Nothing related yet"),
        "{html}"
    );
    ensure!(!html.contains("unavailable"), "{html}");
    for path in ["/", "/u/cat"] {
        let (s, _, html) = page(&http, &front_base, path, None, None).await?;
        ensure!(
            s == StatusCode::OK && html.contains(&format!("/p/{image}")),
            "{path}: {s} {html}"
        );
    }
    let (s, _, _) = page(&http, &front_base, "/u/nobody-here", None, None).await?;
    ensure!(s == StatusCode::NOT_FOUND, "{s}");
    let (s, _, html) = page(&http, &front_base, "/search?sort=sideways", None, None).await?;
    ensure!(
        s == StatusCode::UNPROCESSABLE_ENTITY && html.contains("sort"),
        "{s} {html}"
    );
    let (s, b) = read(
        http.get(format!("{front_base}/api/v1/images/{image}/detail"))
            .send()
            .await?,
    )
    .await?;
    ensure!(s == StatusCode::OK && b["missing"] == json!([]), "{s} {b}");
    let nobody = uuid::Uuid::now_v7();
    let (s, _, _) = page(&http, &front_base, &format!("/p/{nobody}"), None, None).await?;
    ensure!(s == StatusCode::NOT_FOUND, "{s}");

    search.stop().await?;
    let started = Instant::now();
    let (s, _, html) = page(&http, &base, &format!("/p/{image}"), None, None).await?;
    ensure!(s == StatusCode::OK, "{s}");
    ensure!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    ensure!(html.contains("<h1>water</h1>"), "{html}");
    ensure!(html.contains("Related images are unavailable"), "{html}");
    let (s, b) = read(
        http.get(api(&format!("/images/{image}/detail")))
            .send()
            .await?,
    )
    .await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    ensure!(
        b["missing"] == json!(["related"]) && b["related"].is_null(),
        "{b}"
    );
    let started = Instant::now();
    let (s, _, _) = page(&http, &base, "/search?q=water", None, None).await?;
    ensure!(s == StatusCode::SERVICE_UNAVAILABLE, "{s}");
    ensure!(started.elapsed() < Duration::from_secs(2));
    let (s, _, html) = page(&http, &front_base, &format!("/p/{image}"), None, None).await?;
    ensure!(
        s == StatusCode::OK && html.contains("Related images are unavailable"),
        "{html}"
    );
    front.stop().await?;
    main.stop().await?;
    Ok(())
}

/// How long an event may take to reach the gateway's cache.
const INVALIDATED: Duration = Duration::from_secs(60);

/// Whether the page came whole from the gateway's page cache.
fn cached(headers: &reqwest::header::HeaderMap) -> bool {
    header(headers, "server-timing").contains("cache;desc=hit")
}

/// An anonymous visitor's detail page is served from the cache, and what
/// changes it (an edit of the title, a like, the author's new name, a
/// deletion) shows on the next loads, page and JSON twin. The image record
/// and the author card the page is made from are kept ten minutes, so
/// within the deadline only their events can have changed them.
async fn cached_pages_follow_edits(app: &App) -> anyhow::Result<()> {
    let base = app.server.url();
    let ann = app.user("ann").await?;
    let bob = app.user("bob").await?;
    let image = app
        .posted(
            &ann,
            small_photo("LadyBird.jpg", 7)?,
            &[("title", "Before the fog")],
        )
        .await?;
    let image = id(&image)?;
    // Something related: pages without related images are not kept (most
    // often their image is not indexed yet).
    app.posted(
        &ann,
        small_photo("LadyBird.jpg", 8)?,
        &[("title", "The fog again")],
    )
    .await?;
    let path = format!("/p/{image}");
    let detail = format!("/images/{image}/detail");

    // The second load of a page comes from the cache, the same bytes each
    // time, and a 304 for its ETag (once search has indexed the other
    // image, and the events of the uploads have come through: each makes
    // the page again).
    let (first, html) = wait_for(INVALIDATED, "the page from the cache", || async {
        let (s, first, html) = page(&app.http, &base, &path, None, None).await.ok()?;
        let (_, again, same) = page(&app.http, &base, &path, None, None).await.ok()?;
        let etag = header(&first, ETAG);
        let (not_modified, h, empty) =
            page(&app.http, &base, &path, None, Some(etag)).await.ok()?;
        (s == StatusCode::OK
            && cached(&first)
            && cached(&again)
            && same == html
            && header(&again, ETAG) == etag
            && not_modified == StatusCode::NOT_MODIFIED
            && cached(&h)
            && empty.is_empty())
        .then_some((first, html))
    })
    .await?;
    ensure!(html.contains("<h1>Before the fog</h1>"), "{html}");
    ensure!(header(&first, CACHE_CONTROL).starts_with("public"));
    let (s, before) = app.get(&detail, None).await?;
    ensure!(
        s == StatusCode::OK && before["image"]["title"] == "Before the fog",
        "{before}"
    );

    // The owner edits the title.
    let (s, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/images/{image}"),
            Some(&ann),
            Some(json!({"title": "After the fog"})),
        )
        .await?;
    ensure!(s == StatusCode::OK, "{s} {body}");
    wait_for(INVALIDATED, "the new title on the page", || async {
        let (s, _, html) = page(&app.http, &base, &path, None, None).await.ok()?;
        (s == StatusCode::OK && html.contains("<h1>After the fog</h1>")).then_some(())
    })
    .await?;
    wait_for(INVALIDATED, "the new title in the JSON twin", || async {
        let (_, d) = app.get(&detail, None).await.ok()?;
        (d["image"]["title"] == "After the fog").then_some(())
    })
    .await?;

    // A like changes the counts; the author's new name, the card.
    let (s, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/images/{image}/like"),
            Some(&bob),
            None,
        )
        .await?;
    ensure!(s.is_success(), "{s} {body}");
    let (s, body) = app
        .call(
            reqwest::Method::PATCH,
            "/me",
            Some(&ann),
            Some(json!({"display_name": "Ann of the Fog"})),
        )
        .await?;
    ensure!(s == StatusCode::OK, "{s} {body}");
    wait_for(
        INVALIDATED,
        "the like and the new name on the page",
        || async {
            let (s, _, html) = page(&app.http, &base, &path, None, None).await.ok()?;
            (s == StatusCode::OK && html.contains(">1 likes<") && html.contains("Ann of the Fog"))
                .then_some(())
        },
    )
    .await?;
    wait_for(
        INVALIDATED,
        "the like and the new name in the JSON twin",
        || async {
            let (_, d) = app.get(&detail, None).await.ok()?;
            (d["image"]["like_count"] == 1 && d["author"]["display_name"] == "Ann of the Fog")
                .then_some(())
        },
    )
    .await?;

    // A signed-in viewer's page is their own: never from the cache.
    let (s, h, html) = page(&app.http, &base, &path, Some(&bob), None).await?;
    ensure!(s == StatusCode::OK && html.contains("<h1>After the fog</h1>"));
    ensure!(
        header(&h, "server-timing").contains("desc=bypass")
            && header(&h, CACHE_CONTROL).starts_with("private"),
        "{h:?}"
    );
    let (s, mine) = app.get(&detail, Some(&bob)).await?;
    ensure!(
        s == StatusCode::OK && mine["image"]["liked_by_me"] == true,
        "{mine}"
    );

    // And the new page is kept in turn.
    wait_for(INVALIDATED, "the edited page from the cache", || async {
        let (s, h, html) = page(&app.http, &base, &path, None, None).await.ok()?;
        (s == StatusCode::OK && cached(&h) && html.contains("<h1>After the fog</h1>")).then_some(())
    })
    .await?;

    // Deleted: gone at once, not served from the cache.
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/images/{image}"),
            Some(&ann),
            None,
        )
        .await?;
    ensure!(s.is_success(), "{s}");
    wait_for(INVALIDATED, "the deleted image's page to go", || async {
        let (s, _, _) = page(&app.http, &base, &path, None, None).await.ok()?;
        (s == StatusCode::NOT_FOUND).then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn cached_pages_follow_edits_on_embedded_backends() -> anyhow::Result<()> {
    let app = embedded().await?;
    cached_pages_follow_edits(&app).await
}

/// Postgres, Redis (the cache), Kafka (the events) and S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_pages_follow_edits_on_real_backends() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = pinhole_tests::real_settings(dir.path(), "gateway").await?;
    let app = App::start_roles(settings, dir, ROLES).await?;
    cached_pages_follow_edits(&app).await
}
