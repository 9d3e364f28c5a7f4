//! Using the service from a browser without script: signing up and logging
//! in with forms (a session cookie over the API's tokens), then liking,
//! commenting, following and uploading with plain HTML forms, each checked
//! against CSRF; on one process and with the gateway apart from the roles
//! it asks.

use std::time::Duration;

use anyhow::{Context, ensure};
use pinhole_config::Settings;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, PASSWORD, small_photo};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::multipart::{Form, Part};

const ROLES: &[&str] = &["users", "images", "thumbnails", "search", "gateway"];

/// A browser: its cookies, kept as a server sets them; redirects not
/// followed, so that each answer can be checked.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

/// What a page answered.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
    }

    /// The `Set-Cookie` line for `name`.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// The `value` of the hidden input `name` in `html`.
fn hidden(html: &str, name: &str) -> anyhow::Result<String> {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .with_context(|| format!("no hidden `{name}` in the page"))?;
    let rest = &html[at + name.len() + 15..];
    let end = rest.find('"').context("unterminated value")?;
    Ok(rest[..end].replace("&amp;", "&"))
}

impl Browser {
    fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.to_owned(),
            cookies: Vec::new(),
        })
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn keep_cookies(&mut self, headers: &reqwest::header::HeaderMap) {
        for line in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = line.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(k, _)| k != name);
            let removed = line.contains("Max-Age=0") || value.is_empty();
            if !removed {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let mut request = request;
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(COOKIE, header.join("; "));
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await?;
        self.keep_cookies(&headers);
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let body = serde_urlencoded::to_string(form)?;
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Signs up through the form; logged in after.
    async fn sign_up(&mut self, name: &str) -> anyhow::Result<Answer> {
        let page = self.get("/signup?next=/").await?;
        ensure!(
            page.status == StatusCode::OK,
            "sign-up page {}",
            page.status
        );
        let csrf = hidden(&page.body, "csrf")?;
        let email = format!("{name}@example.com");
        let answer = self
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("next", "/"),
                    ("username", name),
                    ("email", &email),
                    ("password", PASSWORD),
                    ("display_name", "Web Person"),
                ],
            )
            .await?;
        ensure!(
            answer.status == StatusCode::SEE_OTHER && answer.location() == "/",
            "sign-up answered {} {}: {}",
            answer.status,
            answer.location(),
            answer.body
        );
        Ok(answer)
    }
}

async fn embedded() -> anyhow::Result<App> {
    let dir = tempfile::tempdir()?;
    App::start_roles(Settings::embedded(dir.path()), dir, ROLES).await
}

fn server(app: &App) -> String {
    app.url("").trim_end_matches("/api/v1").to_owned()
}

/// The whole path a newcomer takes without script: sign up, act on
/// someone's photo, upload one, log out.
async fn forms_do_what_the_api_does(app: &App) -> anyhow::Result<()> {
    let alice = app.user("alice").await?;
    let photo = app
        .posted(
            &alice,
            small_photo("Storm.jpg", 1)?,
            &[("title", "Storm over the bay")],
        )
        .await?;
    let id = photo["id"].as_str().context("id")?.to_owned();
    let page_path = format!("/p/{id}");

    let mut bob = Browser::new(&server(app))?;
    // Anonymous: a link to log in instead of the buttons; acting sends
    // there too.
    let anonymous = bob.get(&page_path).await?;
    ensure!(anonymous.status == StatusCode::OK, "{}", anonymous.status);
    ensure!(
        anonymous.body.contains("id=\"login-link\"") && !anonymous.body.contains("like-form"),
        "an anonymous page has a log-in link and no like button"
    );
    ensure!(
        anonymous.body.contains("href=\"/login\""),
        "the header offers to log in"
    );
    let sent = bob
        .post(&format!("{page_path}/like"), &[("csrf", "x")])
        .await?;
    ensure!(
        sent.status == StatusCode::SEE_OTHER && sent.location().starts_with("/login?next=%2Fp%2F"),
        "an anonymous like goes to log in: {} {}",
        sent.status,
        sent.location()
    );

    let signed = bob.sign_up("bob").await?;
    let session = signed
        .set_cookie("pinhole_session")
        .context("a session cookie")?;
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        ensure!(session.contains(attribute), "{attribute} in {session}");
    }
    ensure!(
        !session.contains("Secure"),
        "no Secure over http: {session}"
    );
    ensure!(
        signed.set_cookie("pinhole_refresh").is_some(),
        "a refresh cookie"
    );

    // Logged in: private, with the buttons.
    let page = bob.get(&page_path).await?;
    ensure!(page.status == StatusCode::OK, "{}", page.status);
    let cache = page
        .headers
        .get(CACHE_CONTROL)
        .and_then(|c| c.to_str().ok())
        .unwrap_or_default();
    ensure!(
        cache.starts_with("private"),
        "a logged-in page is private: {cache}"
    );
    ensure!(
        page.body.contains("@bob"),
        "the header names who is logged in"
    );
    ensure!(page.body.contains("id=\"logout-form\""), "a log-out button");
    ensure!(page.body.contains(">Like</button>"), "a like button");
    ensure!(page.body.contains(">Follow</button>"), "a follow button");
    ensure!(page.body.contains("id=\"comment-form\""), "a comment form");
    let csrf = hidden(&page.body, "csrf")?;

    // Forms without the right token, or from another site, change nothing.
    let forged = bob
        .post(&format!("{page_path}/like"), &[("csrf", "forged")])
        .await?;
    ensure!(
        forged.status == StatusCode::FORBIDDEN,
        "a forged like: {}",
        forged.status
    );
    let request = bob
        .http
        .post(format!("{}{page_path}/like", bob.base))
        .header(ORIGIN, "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"));
    let cross = bob.send(request).await?;
    ensure!(
        cross.status == StatusCode::FORBIDDEN,
        "a cross-site like: {}",
        cross.status
    );
    let (_, record) = app.get(&format!("/images/{id}"), None).await?;
    ensure!(record["like_count"] == 0, "nothing liked yet: {record}");

    // Like, comment, follow.
    let liked = bob
        .post(&format!("{page_path}/like"), &[("csrf", &csrf)])
        .await?;
    ensure!(
        liked.status == StatusCode::SEE_OTHER && liked.location().starts_with(&page_path),
        "a like goes back to the page: {} {}",
        liked.status,
        liked.location()
    );
    let commented = bob
        .post(
            &format!("{page_path}/comments"),
            &[("csrf", &csrf), ("text", "What a sky <b>!</b>")],
        )
        .await?;
    ensure!(
        commented.status == StatusCode::SEE_OTHER,
        "comment: {}",
        commented.status
    );
    let followed = bob
        .post("/u/alice/follow", &[("csrf", &csrf), ("next", &page_path)])
        .await?;
    ensure!(
        followed.status == StatusCode::SEE_OTHER && followed.location() == page_path,
        "follow goes back to the page: {} {}",
        followed.status,
        followed.location()
    );
    let (_, record) = app.get(&format!("/images/{id}"), None).await?;
    ensure!(record["like_count"] == 1, "one like: {record}");
    let (_, comments) = app.get(&format!("/images/{id}/comments"), None).await?;
    ensure!(
        comments.to_string().contains("What a sky <b>!</b>"),
        "the comment is stored as written: {comments}"
    );
    let (_, followers) = app.get("/users/alice/followers", Some(&alice)).await?;
    ensure!(
        followers.to_string().contains("\"bob\""),
        "bob follows alice: {followers}"
    );
    let page = wait_for(
        Duration::from_secs(10),
        "the page to show what bob did",
        || {
            let path = page_path.clone();
            let mut again = Browser {
                http: bob.http.clone(),
                base: bob.base.clone(),
                cookies: bob.cookies.clone(),
            };
            async move {
                let page = again.get(&path).await.ok()?;
                (page.body.contains(">Unlike</button>")
                    && page.body.contains(">Unfollow</button>")
                    && page.body.contains("What a sky &lt;b&gt;!&lt;/b&gt;"))
                .then_some(page)
            }
        },
    )
    .await?;
    ensure!(
        page.body.contains("1 likes") || page.body.contains(">1<"),
        "the count shows the like"
    );

    // The JSON twin says the same to the apps.
    let token = bob.cookie("pinhole_session").context("session")?.to_owned();
    let (status, detail) = app
        .get(&format!("/images/{id}/detail"), Some(&token))
        .await?;
    ensure!(status == StatusCode::OK, "{status} {detail}");
    ensure!(
        detail["viewer"]["following"] == true && detail["image"]["liked_by_me"] == true,
        "the JSON detail knows bob follows and likes: {detail}"
    );
    let (_, anonymous) = app.get(&format!("/images/{id}/detail"), None).await?;
    ensure!(
        anonymous["viewer"].is_null(),
        "no viewer part for nobody: {anonymous}"
    );

    // Upload through the form: the new image's page, owned by bob.
    let upload_page = bob.get("/upload").await?;
    ensure!(
        upload_page.status == StatusCode::OK,
        "upload page {}",
        upload_page.status
    );
    ensure!(
        upload_page.body.contains("enctype=\"multipart/form-data\""),
        "a file form"
    );
    let form = Form::new()
        .part(
            "file",
            Part::bytes(small_photo("Storm.jpg", 7)?)
                .file_name("mine.jpg")
                .mime_str("image/jpeg")?,
        )
        .text("title", "From the web form")
        .text("description", "Clouds #weather")
        .text("alt_text", "")
        .text("visibility", "public")
        .text("location", "48.8584, 2.2945");
    let request = bob
        .http
        .post(format!("{}/upload?csrf={csrf}", bob.base))
        .multipart(form);
    let uploaded = bob.send(request).await?;
    ensure!(
        uploaded.status == StatusCode::SEE_OTHER && uploaded.location().starts_with("/p/"),
        "an upload goes to its page: {} {} {}",
        uploaded.status,
        uploaded.location(),
        uploaded.body
    );
    let new_id = uploaded.location().trim_start_matches("/p/").to_owned();
    let (status, mine) = app.get(&format!("/images/{new_id}"), Some(&token)).await?;
    ensure!(
        status == StatusCode::OK,
        "the upload exists: {status} {mine}"
    );
    ensure!(
        mine["owner"]["username"] == "bob" && mine["title"] == "From the web form",
        "bob's, as titled: {mine}"
    );
    // A bad file comes back to the form, saying why.
    let form = Form::new().part(
        "file",
        Part::bytes(b"not a picture".to_vec()).file_name("x.jpg"),
    );
    let request = bob
        .http
        .post(format!("{}/upload?csrf={csrf}", bob.base))
        .multipart(form);
    let bad = bob.send(request).await?;
    ensure!(
        bad.status == StatusCode::UNSUPPORTED_MEDIA_TYPE && bad.body.contains("role=\"alert\""),
        "a file that is not a picture: {}",
        bad.status
    );

    // Log out: the cookies go and the token stops working.
    let out = bob.post("/logout", &[("csrf", &csrf)]).await?;
    ensure!(
        out.status == StatusCode::SEE_OTHER,
        "log out: {}",
        out.status
    );
    ensure!(
        bob.cookie("pinhole_session").is_none(),
        "the session cookie is cleared"
    );
    let (status, _) = app.get("/me", Some(&token)).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "the token is revoked: {status}"
    );
    let page = bob.get(&page_path).await?;
    ensure!(page.body.contains("id=\"login-link\""), "logged out again");
    Ok(())
}

#[tokio::test]
async fn forms_do_what_the_api_does_embedded() -> anyhow::Result<()> {
    let app = embedded().await?;
    forms_do_what_the_api_does(&app).await
}

#[tokio::test]
async fn logging_in_checks_the_form_and_the_password() -> anyhow::Result<()> {
    let app = embedded().await?;
    app.user("carol").await?;
    let mut browser = Browser::new(&server(&app))?;
    let page = browser.get("/login?next=/u/carol").await?;
    ensure!(page.status == StatusCode::OK, "{}", page.status);
    ensure!(
        page.headers
            .get(CACHE_CONTROL)
            .is_some_and(|c| c == "no-store"),
        "the log-in page is not stored"
    );
    ensure!(
        browser.cookie("pinhole_csrf").is_some(),
        "a CSRF seed cookie"
    );
    let csrf = hidden(&page.body, "csrf")?;
    ensure!(hidden(&page.body, "next")? == "/u/carol", "next kept");

    let wrong = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "/u/carol"),
                ("username", "carol"),
                ("password", "not it at all"),
            ],
        )
        .await?;
    ensure!(
        wrong.status == StatusCode::UNPROCESSABLE_ENTITY
            && wrong.body.contains("role=\"alert\"")
            && wrong.set_cookie("pinhole_session").is_none(),
        "a wrong password: {}",
        wrong.status
    );
    // A log-in form from elsewhere (no seed cookie) is refused.
    let mut stranger = Browser::new(&server(&app))?;
    let forged = stranger
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "carol"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    ensure!(
        forged.status == StatusCode::FORBIDDEN,
        "no seed: {}",
        forged.status
    );
    // Only local paths are gone back to.
    let right = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "//evil.example/"),
                ("username", "carol"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    ensure!(
        right.status == StatusCode::SEE_OTHER && right.location() == "/",
        "logged in, back home: {} {}",
        right.status,
        right.location()
    );
    // An access token that no longer works is refreshed from the refresh
    // cookie on the next page.
    let refresh = browser
        .cookie("pinhole_refresh")
        .context("refresh")?
        .to_owned();
    browser.cookies.retain(|(k, _)| k != "pinhole_session");
    browser
        .cookies
        .push(("pinhole_session".to_owned(), "expired".to_owned()));
    let page = browser.get("/").await?;
    ensure!(
        page.body.contains("@carol"),
        "still logged in after a refresh"
    );
    let renewed = page
        .set_cookie("pinhole_session")
        .context("a new session cookie")?;
    ensure!(!renewed.starts_with("pinhole_session=expired"), "{renewed}");
    ensure!(
        browser.cookie("pinhole_refresh") != Some(refresh.as_str()),
        "the refresh token rotated"
    );
    // Cookies that no longer work at all are cleared.
    browser.cookies = vec![
        ("pinhole_session".to_owned(), "gone".to_owned()),
        ("pinhole_refresh".to_owned(), "gone".to_owned()),
    ];
    let page = browser.get("/").await?;
    ensure!(
        page.set_cookie("pinhole_session")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "dead cookies are cleared"
    );
    ensure!(page.body.contains("href=\"/login\""), "anonymous again");
    Ok(())
}

#[tokio::test]
async fn cookies_are_secure_behind_https() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(dir.path());
    settings.public_url = Some("https://photos.example".parse()?);
    let app = App::start_roles(settings, dir, ROLES).await?;
    let mut browser = Browser::new(&server(&app))?;
    let page = browser.get("/signup").await?;
    let seed = page.set_cookie("pinhole_csrf").context("seed")?;
    ensure!(seed.contains("; Secure"), "{seed}");
    let csrf = hidden(&page.body, "csrf")?;
    // The public origin is this site's, whatever address the request came to.
    let request = browser
        .http
        .post(format!("{}/signup", browser.base))
        .header(ORIGIN, "https://photos.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("username", "dave"),
            ("email", "dave@example.com"),
            ("password", PASSWORD),
        ])?);
    let signed = browser.send(request).await?;
    ensure!(
        signed.status == StatusCode::SEE_OTHER,
        "{} {}",
        signed.status,
        signed.body
    );
    let session = signed.set_cookie("pinhole_session").context("session")?;
    ensure!(session.contains("; Secure"), "{session}");
    Ok(())
}

/// The gateway alone, asking the users, images and search roles in another
/// process: the same forms work through their addresses.
#[tokio::test]
async fn forms_work_with_the_gateway_apart() -> anyhow::Result<()> {
    const SECRET: &str = "an-internal-secret-of-at-least-32-chars";
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(dir.path());
    settings.internal_token = Some(SECRET.to_owned().into());
    let roles =
        App::start_roles(settings, dir, &["users", "images", "thumbnails", "search"]).await?;
    let gateway_dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(gateway_dir.path());
    settings.internal_token = Some(SECRET.to_owned().into());
    let base = server(&roles);
    settings.role_urls.users = Some(base.parse()?);
    settings.role_urls.images = Some(base.parse()?);
    settings.role_urls.search = Some(base.parse()?);
    let gateway = App::start_roles(settings, gateway_dir, &["gateway"]).await?;
    let mut bob = Browser::new(&server(&gateway))?;
    bob.sign_up("bob").await?;
    let alice = roles.user("alice").await?;
    let photo = roles
        .posted(&alice, small_photo("Storm.jpg", 2)?, &[("title", "Apart")])
        .await?;
    let id = photo["id"].as_str().context("id")?;
    let page = bob.get(&format!("/p/{id}")).await?;
    ensure!(
        page.status == StatusCode::OK && page.body.contains(">Like</button>"),
        "{}",
        page.status
    );
    let csrf = hidden(&page.body, "csrf")?;
    let liked = bob
        .post(&format!("/p/{id}/like"), &[("csrf", &csrf)])
        .await?;
    ensure!(
        liked.status == StatusCode::SEE_OTHER,
        "{} {}",
        liked.status,
        liked.body
    );
    let (_, record) = roles.get(&format!("/images/{id}"), None).await?;
    ensure!(
        record["like_count"] == 1,
        "liked through the gateway: {record}"
    );
    Ok(())
}

/// Every page shown is a `page.viewed` event; the images role counts the
/// detail pages' into the image's `view_count`, each view once.
async fn views_are_events_and_counts(app: &App) -> anyhow::Result<()> {
    use pinhole_events::pageviews::PageViewed;
    let bus = std::sync::Arc::clone(&app.server.ctx.backends.bus);
    let mut sub = bus
        .subscribe(
            &pinhole_testkit::unique("views"),
            &[pinhole_events::topics::PAGE_VIEWS],
        )
        .await?;
    let alice = app.user("alice").await?;
    let photo = app
        .posted(
            &alice,
            small_photo("Storm.jpg", 3)?,
            &[("title", "Counted")],
        )
        .await?;
    let id = photo["id"].as_str().context("id")?.to_owned();
    let mut visitor = Browser::new(&server(app))?;
    for _ in 0..3 {
        let page = visitor.get(&format!("/p/{id}")).await?;
        ensure!(page.status == StatusCode::OK, "{}", page.status);
    }
    let page = visitor.get("/").await?;
    ensure!(page.status == StatusCode::OK, "{}", page.status);
    let (status, _) = app
        .get(&format!("/images/{id}/detail"), Some(&alice))
        .await?;
    ensure!(status == StatusCode::OK, "{status}");
    // A page that is not shown is not a view.
    let missing = visitor.get(&format!("/p/{}", uuid_like())).await?;
    ensure!(
        missing.status == StatusCode::NOT_FOUND,
        "{}",
        missing.status
    );

    let mut seen: Vec<PageViewed> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 5 {
        ensure!(
            std::time::Instant::now() < deadline,
            "five page views within 30 s: {seen:?}"
        );
        if let Some(record) = sub.next(Duration::from_millis(200)).await? {
            let envelope: pinhole_events::Envelope = serde_json::from_slice(&record.payload)?;
            seen.push(envelope.decode::<PageViewed>()?);
        }
    }
    // Nothing more comes (the 404 was not a view).
    while let Some(record) = sub.next(Duration::from_millis(500)).await? {
        let envelope: pinhole_events::Envelope = serde_json::from_slice(&record.payload)?;
        seen.push(envelope.decode::<PageViewed>()?);
    }
    let of_image: Vec<&PageViewed> = seen
        .iter()
        .filter(|v| v.image_id.map(|i| i.to_string()) == Some(id.clone()))
        .collect();
    ensure!(of_image.len() == 4, "four views of the image: {seen:?}");
    ensure!(
        of_image.iter().filter(|v| v.format == "html").count() == 3
            && of_image
                .iter()
                .any(|v| v.format == "json" && v.viewer_id.is_some()),
        "three pages and one JSON detail by a viewer: {of_image:?}"
    );
    ensure!(
        seen.iter().any(|v| v.page == "explore" && v.path == "/"),
        "the explore page too: {seen:?}"
    );
    ensure!(seen.len() == 5, "nothing else (not the 404): {seen:?}");

    let counted = wait_for(
        Duration::from_secs(30),
        "the views to be counted",
        || async {
            let (_, record) = app.get(&format!("/images/{id}"), None).await.ok()?;
            (record["view_count"] == 4).then_some(record)
        },
    )
    .await?;
    ensure!(counted["view_count"] == 4, "{counted}");
    // And on: the page says so, and one more view is one more.
    let page = visitor.get(&format!("/p/{id}")).await?;
    ensure!(page.body.contains("views"), "the page shows its views");
    wait_for(Duration::from_secs(30), "the fifth view", || async {
        let (_, record) = app.get(&format!("/images/{id}"), None).await.ok()?;
        (record["view_count"] == 5).then_some(())
    })
    .await?;
    Ok(())
}

fn uuid_like() -> String {
    "0192f0c4-0000-7000-8000-000000000000".to_owned()
}

#[tokio::test]
async fn views_are_events_and_counts_embedded() -> anyhow::Result<()> {
    let app = embedded().await?;
    views_are_events_and_counts(&app).await
}

#[tokio::test]
async fn views_are_events_and_counts_real() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = pinhole_tests::real_settings(dir.path(), "views").await?;
    let app = App::start_roles(settings, dir, ROLES).await?;
    views_are_events_and_counts(&app).await
}
