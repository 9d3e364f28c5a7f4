//! Roles run apart, each on a database of its own: the images role asks the
//! users role over HTTP whose a bearer token is, the users role asks the
//! images role whose an image is (`pinhole_http::clients`, routed by
//! `PINHOLE_ROLE_URLS`, guarded by `PINHOLE_INTERNAL_TOKEN`). A role that
//! does not answer makes the requests that need it 503 `role-unavailable`,
//! within the call timeout.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole::Server;
use pinhole_config::{CacheUrl, DatabaseUrl, Settings};
use pinhole_events::images::{ImageStatus, Visibility};
use pinhole_http::clients::{CALL_TIMEOUT, INTERNAL_TOKEN_HEADER};
use pinhole_tests::app::{DEADLINE, PASSWORD, photo, read};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "an-internal-secret-of-at-least-32-chars";

/// A users server and an images (and thumbnails) server, each on its own
/// database, sharing Redis, Kafka and the internal token.
struct Apart {
    users: Option<Server>,
    images: Option<Server>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Apart {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut base = pinhole_tests::real_settings(dir.path(), "internal").await?;
        base.internal_token = Some(SECRET.to_owned().into());
        base.signup_limit = 0;
        base.callback_allow_private = true;
        // The users server has to know the images server's address before
        // either listens.
        let images_port = pinhole_testkit::free_port()?;
        let mut users = base.clone();
        users.role_urls.images = Some(format!("http://127.0.0.1:{images_port}").parse()?);
        let users = pinhole::start(users, &["users"]).await?;
        let mut images: Settings = base;
        images.database = DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
        images.listen = ([127, 0, 0, 1], images_port).into();
        images.role_urls.users = Some(users.url().parse()?);
        ensure!(matches!(images.cache, CacheUrl::Redis(_)), "a shared Redis");
        let images = pinhole::start(images, &["images", "thumbnails"]).await?;
        Ok(Self {
            users: Some(users),
            images: Some(images),
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    fn users(&self) -> anyhow::Result<&Server> {
        self.users.as_ref().context("the users server was stopped")
    }

    fn images(&self) -> anyhow::Result<&Server> {
        self.images
            .as_ref()
            .context("the images server was stopped")
    }

    async fn call(
        &self,
        server: &Server,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", server.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await?).await
    }

    /// Logs `name` in on the users server: a fresh access token.
    async fn log_in(&self, name: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .call(
                self.users()?,
                Method::POST,
                "/sessions",
                None,
                Some(json!({"login": name, "password": PASSWORD})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "log-in {status} {body}");
        Ok(body["access_token"].as_str().context("token")?.to_owned())
    }

    /// Signs `name` up on the users server and logs them in.
    async fn user(&self, name: &str) -> anyhow::Result<String> {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
        let (status, body) = self
            .call(self.users()?, Method::POST, "/accounts", None, Some(body))
            .await?;
        ensure!(status == StatusCode::CREATED, "sign-up {status} {body}");
        self.log_in(name).await
    }

    /// `PATCH /me` with `avatar_image_id` on the users server.
    async fn avatar(&self, token: &str, image: Value) -> anyhow::Result<(StatusCode, Value)> {
        let body = json!({ "avatar_image_id": image });
        self.call(self.users()?, Method::PATCH, "/me", Some(token), Some(body))
            .await
    }

    /// `GET /feed` on the images server (any route that needs a caller).
    async fn feed(&self, token: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(self.images()?, Method::GET, "/feed", Some(token), None)
            .await
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        for server in [self.users.take(), self.images.take()]
            .into_iter()
            .flatten()
        {
            server.stop().await?;
        }
        Ok(())
    }
}

/// `status` with `code`, or a message saying what came instead.
fn refused(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> anyhow::Result<()> {
    ensure!(
        answer.0 == status && answer.1["code"] == code,
        "expected {status} `{code}`, got {} {}",
        answer.0,
        answer.1
    );
    Ok(())
}

/// Sends `request` and expects 503 `role-unavailable` naming `role`, well
/// within the call timeout.
async fn unavailable_quickly(
    role: &str,
    request: impl Future<Output = anyhow::Result<(StatusCode, Value)>>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let answer = tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(5), request)
        .await
        .context("no answer at all")??;
    refused(&answer, StatusCode::SERVICE_UNAVAILABLE, "role-unavailable")?;
    ensure!(
        answer.1["message"]
            .as_str()
            .is_some_and(|m| m.contains(role)),
        "the message names the {role} role: {}",
        answer.1
    );
    let took = started.elapsed();
    ensure!(
        took < CALL_TIMEOUT,
        "a stopped {role} role took {took:?} to report"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_by_the_users_role_over_http() -> anyhow::Result<()> {
    let mut apart = Apart::start().await?;
    let result = tokens_scenario(&mut apart).await;
    apart.stop().await?;
    result
}

async fn tokens_scenario(apart: &mut Apart) -> anyhow::Result<()> {
    let ada = apart.user("ada").await?;
    let (status, body) = apart.feed(&ada).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    // The answer is kept under the users role's own key in the shared cache.
    let cache = &apart.images()?.ctx.backends.cache;
    ensure!(
        cache
            .get(&pinhole_auth::token_cache_key(&ada))
            .await?
            .is_some(),
        "the verification is cached"
    );

    // Tokens that are not (or no longer) live.
    let wrong = format!("pha_{}", "x".repeat(43));
    refused(
        &apart.feed(&wrong).await?,
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )?;
    refused(
        &apart.feed("not-even-a-token").await?,
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )?;
    let (status, body) = apart
        .call(
            apart.users()?,
            Method::DELETE,
            "/sessions/current",
            Some(&ada),
            None,
        )
        .await?;
    ensure!(status == StatusCode::NO_CONTENT, "log-out {status} {body}");
    // At once: the log-out cleared the shared cache.
    refused(
        &apart.feed(&ada).await?,
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )?;

    // `/internal/v1` answers only those who carry the internal token.
    let verify = format!("{}/internal/v1/tokens/verify", apart.users()?.url());
    let image = format!(
        "{}/internal/v1/images/{}",
        apart.images()?.url(),
        uuid::Uuid::now_v7()
    );
    let body = json!({ "token": wrong });
    for (request, what) in [
        (apart.http.post(&verify).json(&body), "users, none"),
        (
            apart
                .http
                .post(&verify)
                .header(INTERNAL_TOKEN_HEADER, "not-the-secret")
                .json(&body),
            "users, wrong",
        ),
        (apart.http.get(&image), "images, none"),
        (
            apart
                .http
                .get(&image)
                .header(INTERNAL_TOKEN_HEADER, "not-the-secret"),
            "images, wrong",
        ),
    ] {
        let answer = read(request.send().await?).await?;
        refused(&answer, StatusCode::UNAUTHORIZED, "internal-token-required")
            .with_context(|| what.to_owned())?;
    }
    let answer = read(
        apart
            .http
            .get(&image)
            .header(INTERNAL_TOKEN_HEADER, SECRET)
            .send()
            .await?,
    )
    .await?;
    refused(&answer, StatusCode::NOT_FOUND, "image-not-found")?;

    // With the users role gone: a token verified before is still trusted
    // from the cache (a minute at most); a new one cannot be verified, and
    // says so at once.
    let seen = apart.log_in("ada").await?;
    ensure!(apart.feed(&seen).await?.0 == StatusCode::OK);
    let unseen = apart.log_in("ada").await?;
    apart
        .users
        .take()
        .context("the users server")?
        .stop()
        .await?;
    unavailable_quickly("users", apart.feed(&unseen)).await?;
    let (status, body) = apart.feed(&seen).await?;
    ensure!(status == StatusCode::OK, "a cached token: {status} {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avatars_are_checked_with_the_images_role_over_http() -> anyhow::Result<()> {
    let mut apart = Apart::start().await?;
    let result = avatars_scenario(&mut apart).await;
    apart.stop().await?;
    result
}

async fn avatars_scenario(apart: &mut Apart) -> anyhow::Result<()> {
    let ada = apart.user("ada").await?;
    let bob = apart.user("bob").await?;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(photo("Storm.jpg")?).file_name("storm.jpg"),
    );
    let uploaded = read(
        apart
            .http
            .post(format!(
                "{}/api/v1/images?wait=true&timeout=60",
                apart.images()?.url()
            ))
            .bearer_auth(&ada)
            .multipart(form)
            .send()
            .await?,
    )
    .await?;
    ensure!(
        uploaded.0 == StatusCode::OK && uploaded.1["status"] == "done",
        "upload {} {}",
        uploaded.0,
        uploaded.1
    );
    let image = uploaded.1["image_id"].as_str().context("image_id")?;

    // Someone else's image, or none at all: refused as before.
    for (token, image, what) in [
        (&bob, json!(image), "someone else's"),
        (&ada, json!(uuid::Uuid::now_v7()), "no such image"),
    ] {
        let answer = apart.avatar(token, image).await?;
        refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .with_context(|| what.to_owned())?;
        ensure!(
            answer.1["fields"]["avatar_image_id"].is_string(),
            "{what}: {}",
            answer.1
        );
    }
    // One's own: taken.
    let (status, me) = apart.avatar(&ada, json!(image)).await?;
    ensure!(
        status == StatusCode::OK && me["avatar_image_id"] == image,
        "{status} {me}"
    );

    // With the images role gone, the check cannot be made: 503 at once.
    apart
        .images
        .take()
        .context("the images server")?
        .stop()
        .await?;
    unavailable_quickly("images", apart.avatar(&ada, json!(image))).await?;
    // Clearing the avatar asks nobody.
    let (status, me) = apart.avatar(&ada, Value::Null).await?;
    ensure!(
        status == StatusCode::OK && me["avatar_image_id"].is_null(),
        "{status} {me}"
    );
    Ok(())
}

/// A users role that accepts connections and never answers: the images
/// role gives up after the call timeout, not the client's patience.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_users_role_is_given_up_on_after_the_call_timeout() -> anyhow::Result<()> {
    let (users_dir, images_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut users = Settings::embedded(users_dir.path());
    users.internal_token = Some(SECRET.to_owned().into());
    let users = pinhole::start(users, &["users"]).await?;
    let proxy = pinhole_testkit::StallProxy::start(&users.addr.to_string()).await?;
    let mut images = Settings::embedded(images_dir.path());
    images.internal_token = Some(SECRET.to_owned().into());
    images.role_urls.users = Some(format!("http://{}", proxy.addr).parse()?);
    let images = pinhole::start(images, &["images"]).await?;
    let apart = Apart {
        users: Some(users),
        images: Some(images),
        http: reqwest::Client::new(),
        _dir: users_dir,
    };
    let result = async {
        let ada = apart.user("ada").await?;
        let fresh = apart.log_in("ada").await?;
        ensure!(
            apart.feed(&ada).await?.0 == StatusCode::OK,
            "through the proxy"
        );
        proxy.stall(true);
        let started = Instant::now();
        let answer = tokio::time::timeout(CALL_TIMEOUT * 2, apart.feed(&fresh))
            .await
            .context("the images role waited for the hung users role")??;
        refused(&answer, StatusCode::SERVICE_UNAVAILABLE, "role-unavailable")?;
        let took = started.elapsed();
        ensure!(
            took < CALL_TIMEOUT + Duration::from_secs(2),
            "gave up after {took:?}"
        );
        Ok(())
    }
    .await;
    proxy.stall(false);
    let mut apart = apart;
    apart.stop().await?;
    drop(images_dir);
    result
}

/// What the search role asks the other roles, over HTTP (through the
/// clients the roles hold of each other) and in process, answered alike:
/// images as a viewer sees them, and every image, account, follow and
/// block page by page; the image record carries the camera, the time taken
/// and the analysis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_role_s_calls_answer_alike_over_http_and_in_process() -> anyhow::Result<()> {
    let mut apart = Apart::start().await?;
    let result = search_scenario(&apart).await;
    apart.stop().await?;
    result
}

/// `body` without its signed links (they change with each signing).
fn unsigned(mut body: Value) -> Value {
    if let Some(derivatives) = body["derivatives"].as_array_mut() {
        for d in derivatives {
            d["url"] = Value::Null;
        }
    }
    body
}

impl Apart {
    /// The account id behind `token`.
    async fn id(&self, token: &str) -> anyhow::Result<uuid::Uuid> {
        let (status, me) = self
            .call(self.users()?, Method::GET, "/me", Some(token), None)
            .await?;
        ensure!(status == StatusCode::OK, "{status} {me}");
        Ok(me["id"].as_str().context("id")?.parse()?)
    }

    /// Uploads `bytes` as `token` and waits for its processing: the image id.
    async fn upload(&self, token: &str, bytes: Vec<u8>) -> anyhow::Result<uuid::Uuid> {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("photo.jpg"),
        );
        let (status, body) = read(
            self.http
                .post(format!(
                    "{}/api/v1/images?wait=true&timeout=60",
                    self.images()?.url()
                ))
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await?,
        )
        .await?;
        ensure!(
            status == StatusCode::OK && body["status"] == "done",
            "upload {status} {body}"
        );
        Ok(body["image_id"].as_str().context("image_id")?.parse()?)
    }

    /// `GET /internal/v1{path}` on `server` with the internal token.
    async fn internal(&self, server: &Server, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        read(
            self.http
                .get(format!("{}/internal/v1{path}", server.url()))
                .header(INTERNAL_TOKEN_HEADER, SECRET)
                .send()
                .await?,
        )
        .await
    }
}

async fn search_scenario(apart: &Apart) -> anyhow::Result<()> {
    use pinhole_http::clients::{Edge, EdgeKind};
    use pinhole_http::{ImagesClient, UsersClient};
    use uuid::Uuid;

    let ada = apart.user("ada").await?;
    let bob = apart.user("bob").await?;
    let cyd = apart.user("cyd").await?;
    let dan = apart.user("dan").await?;
    let (ada_id, bob_id, cyd_id, dan_id) = (
        apart.id(&ada).await?,
        apart.id(&bob).await?,
        apart.id(&cyd).await?,
        apart.id(&dan).await?,
    );
    let users = apart.users()?;
    let (status, body) = apart
        .call(
            users,
            Method::PATCH,
            "/me",
            Some(&cyd),
            Some(json!({"is_private": true})),
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    for (token, path) in [
        (&bob, "/users/ada/follow"),
        (&bob, "/users/cyd/follow"),
        (&ada, "/users/dan/block"),
    ] {
        let (status, body) = apart
            .call(users, Method::POST, path, Some(token), None)
            .await?;
        ensure!(status.is_success(), "{path}: {status} {body}");
    }

    // Two photos of ada's: a Canon one as it is, and a copy that says
    // FUJIFILM with an offset; the copy private.
    let dir = tempfile::tempdir()?;
    let storm = apart.upload(&ada, photo("Storm.jpg")?).await?;
    let fuji = pinhole_tests::app::with_exif(
        dir.path(),
        "Storm.jpg",
        &[
            "-Make=FUJIFILM",
            "-Model=X-T3",
            "-OffsetTimeOriginal=+02:00",
        ],
    )?;
    let fuji = apart.upload(&ada, fuji).await?;
    let images = apart.images()?;
    let (status, body) = apart
        .call(
            images,
            Method::PATCH,
            &format!("/images/{fuji}"),
            Some(&ada),
            Some(json!({"visibility": "private"})),
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    // The images role learns of ada's account, and of dan's block, by event.
    pinhole_testkit::wait_for(DEADLINE, "ada's card in the images role", || async {
        let answer = apart
            .call(images, Method::GET, &format!("/images/{storm}"), None, None)
            .await
            .ok()?;
        (answer.0 == StatusCode::OK).then_some(())
    })
    .await?;
    let (status, body) = apart
        .call(
            images,
            Method::POST,
            &format!("/images/{storm}/comments"),
            Some(&bob),
            Some(json!({"body": "what a sky"})),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "{status} {body}");
    let (status, body) = apart
        .call(
            images,
            Method::POST,
            &format!("/images/{storm}/like"),
            Some(&bob),
            None,
        )
        .await?;
    ensure!(status.is_success(), "{status} {body}");

    // Views: over HTTP (the users server's client of the images role) and
    // in process, the same as `GET /images/{id}` shows each viewer.
    let over_http = &users.ctx.clients.images;
    let in_process = pinhole_images::InProcessImages::new(
        images.ctx.backends.db.clone(),
        pinhole_images::Links::of(&images.ctx),
    );
    let blocked = pinhole_testkit::wait_for(DEADLINE, "dan's block in the images role", || async {
        over_http
            .views(&[storm], Some(dan_id))
            .await
            .ok()
            .filter(Vec::is_empty)
    })
    .await?;
    ensure!(blocked.is_empty());
    let (status, as_bob) = apart
        .call(
            images,
            Method::GET,
            &format!("/images/{storm}"),
            Some(&bob),
            None,
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {as_bob}");
    ensure!(as_bob["liked_by_me"] == true, "{as_bob}");
    let unknown = Uuid::now_v7();
    let asked = [fuji, storm, unknown, storm];
    for (client, what) in [
        (over_http.as_ref(), "over HTTP"),
        (&in_process as &dyn ImagesClient, "in process"),
    ] {
        let seen = client.views(&asked, Some(bob_id)).await?;
        ensure!(
            seen.len() == 1,
            "{what}: bob sees storm only, once: {seen:?}"
        );
        ensure!(
            unsigned(seen[0].clone()) == unsigned(as_bob.clone()),
            "{what}: as GET shows it: {} vs {as_bob}",
            seen[0]
        );
        let own: Vec<Value> = client
            .views(&asked, Some(ada_id))
            .await?
            .into_iter()
            .map(|v| v["id"].clone())
            .collect();
        ensure!(
            own == [json!(fuji), json!(storm)],
            "{what}: ada sees both, in the order asked: {own:?}"
        );
        let anonymous = client.views(&asked, None).await?;
        ensure!(
            anonymous.len() == 1
                && anonymous[0]["id"] == json!(storm)
                && anonymous[0].get("liked_by_me").is_none(),
            "{what}: {anonymous:?}"
        );
        ensure!(
            client.views(&asked, Some(dan_id)).await?.is_empty(),
            "{what}: dan is blocked"
        );
        ensure!(client.views(&[], Some(bob_id)).await?.is_empty());
    }
    // More than a call takes: the HTTP client asks in chunks.
    let many: Vec<Uuid> = (0..150).map(|_| Uuid::now_v7()).chain([storm]).collect();
    ensure!(over_http.views(&many, None).await?.len() == 1);
    let answer = read(
        apart
            .http
            .post(format!("{}/internal/v1/images/views", images.url()))
            .header(INTERNAL_TOKEN_HEADER, SECRET)
            .json(&json!({ "ids": &many, "viewer": Value::Null }))
            .send()
            .await?,
    )
    .await?;
    refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )?;
    ensure!(answer.1["fields"]["ids"].is_string(), "{}", answer.1);

    // Export of images: every ready image by id, page by page, with the
    // record's camera, time taken and analysis, and likes and comments.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = over_http.export(after, 1).await?;
        ensure!(page.len() <= 1, "a page of one: {page:?}");
        let Some(last) = page.last() else { break };
        after = Some(last.image.image_id);
        pages.extend(page);
    }
    let mut expected = vec![storm, fuji];
    expected.sort();
    let exported: Vec<Uuid> = pages.iter().map(|e| e.image.image_id).collect();
    ensure!(exported == expected, "{exported:?} vs {expected:?}");
    ensure!(
        in_process.export(None, 1000).await? == pages,
        "in process, the same"
    );
    ensure!(in_process.export(Some(expected[1]), 1000).await?.is_empty());
    let of = |id: Uuid| {
        pages
            .iter()
            .find(|e| e.image.image_id == id)
            .context("exported")
    };
    let canon = of(storm)?;
    ensure!(
        canon.image.camera.as_deref() == Some("Canon EOS 400D DIGITAL")
            && canon.image.taken_at == Some("2008-04-20T19:12:06Z".parse()?)
            && canon.image.status == ImageStatus::Ready
            && canon.image.location.is_none(),
        "{:?}",
        canon.image
    );
    ensure!(
        canon
            .image
            .analysis
            .as_ref()
            .is_some_and(|a| a["phash"].is_string() && *a == as_bob["analysis"]),
        "the analysis, with its perceptual hash: {:?}",
        canon.image.analysis
    );
    ensure!(canon.like_count == 1, "{canon:?}");
    ensure!(
        canon.comments.len() == 1
            && canon.comments[0].author_id == bob_id
            && canon.comments[0].body == "what a sky",
        "{:?}",
        canon.comments
    );
    let copy = of(fuji)?;
    ensure!(
        copy.image.camera.as_deref() == Some("FUJIFILM X-T3")
            && copy.image.taken_at == Some("2008-04-20T17:12:06Z".parse()?)
            && copy.image.visibility == Visibility::Private
            && copy.like_count == 0
            && copy.comments.is_empty(),
        "{copy:?}"
    );
    for (path, field) in [
        ("/export/images?limit=0", "limit"),
        ("/export/images?limit=1001", "limit"),
        ("/export/images?after=nope", "after"),
        ("/export/follows?after=nope", "after"),
        ("/export/blocks?limit=x", "limit"),
        ("/export/accounts?after=1,2", "after"),
    ] {
        let server = if path.starts_with("/export/images") {
            images
        } else {
            users
        };
        let answer = apart.internal(server, path).await?;
        refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .with_context(|| path.to_owned())?;
        ensure!(
            answer.1["fields"][field].is_string(),
            "{path}: {}",
            answer.1
        );
    }

    // Export of accounts and edges: over HTTP (the images server's client
    // of the users role) and in process, page by page.
    let over_http = &images.ctx.clients.users;
    let in_process =
        pinhole_users::InProcessUsers::new(users.ctx.tokens.clone(), users.ctx.backends.db.clone());
    let mut everyone = vec![ada_id, bob_id, cyd_id, dan_id];
    everyone.sort();
    let mut follows = vec![
        Edge {
            from: bob_id,
            to: ada_id,
            approved: true,
        },
        Edge {
            from: bob_id,
            to: cyd_id,
            approved: false,
        },
    ];
    follows.sort_by_key(|e| (e.from, e.to));
    let blocks = vec![Edge {
        from: ada_id,
        to: dan_id,
        approved: true,
    }];
    for (client, what) in [
        (over_http.as_ref(), "over HTTP"),
        (&in_process as &dyn UsersClient, "in process"),
    ] {
        let mut cards = Vec::new();
        let mut after = None;
        loop {
            let page = client.export_accounts(after, 3).await?;
            ensure!(page.len() <= 3, "{what}: {page:?}");
            let Some(last) = page.last() else { break };
            after = Some(last.user_id);
            cards.extend(page);
        }
        let ids: Vec<Uuid> = cards.iter().map(|c| c.user_id).collect();
        ensure!(ids == everyone, "{what}: {ids:?}");
        ensure!(
            cards.iter().all(|c| c.is_private == (c.user_id == cyd_id)),
            "{what}: {cards:?}"
        );
        for (kind, expected) in [(EdgeKind::Follows, &follows), (EdgeKind::Blocks, &blocks)] {
            let mut edges = Vec::new();
            let mut after = None;
            loop {
                let page = client.export_edges(kind, after, 1).await?;
                ensure!(page.len() <= 1, "{what}: {page:?}");
                let Some(last) = page.last() else { break };
                after = Some((last.from, last.to));
                edges.extend(page);
            }
            ensure!(edges == *expected, "{what} {kind:?}: {edges:?}");
            ensure!(client.export_edges(kind, None, 1000).await? == *expected);
        }
    }

    // Every new route answers only those who carry the internal token.
    for (server, method, path) in [
        (images, Method::POST, "/internal/v1/images/views"),
        (images, Method::GET, "/internal/v1/export/images"),
        (users, Method::GET, "/internal/v1/export/accounts"),
        (users, Method::GET, "/internal/v1/export/follows"),
        (users, Method::GET, "/internal/v1/export/blocks"),
    ] {
        for token in [None, Some("not-the-secret")] {
            let mut request = apart
                .http
                .request(method.clone(), format!("{}{path}", server.url()))
                .json(&json!({"ids": []}));
            if let Some(token) = token {
                request = request.header(INTERNAL_TOKEN_HEADER, token);
            }
            let answer = read(request.send().await?).await?;
            refused(&answer, StatusCode::UNAUTHORIZED, "internal-token-required")
                .with_context(|| format!("{method} {path} with {token:?}"))?;
        }
    }

    // A re-processing that changes the analysis says so in `image.updated`
    // (a consumer keeps the perceptual hash from the record).
    let phash = canon.image.analysis.as_ref().map(|a| a["phash"].clone());
    let db = &images.ctx.backends.db;
    let job = pinhole_testkit::wait_for(DEADLINE, "the catalog to list storm", || async {
        let all = pinhole_thumbnails::backfill::Selection {
            all: true,
            limit: None,
        };
        pinhole_thumbnails::backfill::select(db, all)
            .await
            .ok()?
            .into_iter()
            .find(|j| j.image_id == storm)
    })
    .await?;
    {
        use sea_orm::ConnectionTrait;
        db.execute_unprepared(&format!(
            "UPDATE images SET analysis = NULL WHERE id = '{storm}'"
        ))
        .await?;
    }
    let bus = &images.ctx.backends.bus;
    let mut reader = bus
        .subscribe(
            &pinhole_testkit::unique("search-reader"),
            &[pinhole_events::topics::IMAGES],
        )
        .await?;
    pinhole_thumbnails::backfill::enqueue(bus, &[job]).await?;
    let started = Instant::now();
    let updated = loop {
        ensure!(started.elapsed() < DEADLINE, "no image.updated for storm");
        let Some(record) = reader.next(Duration::from_millis(500)).await? else {
            continue;
        };
        if record.key.as_deref() != Some(storm.to_string().as_bytes()) {
            continue;
        }
        let envelope = pinhole_events::Envelope::from_json(&record.payload)?;
        if envelope.kind == pinhole_events::images::UPDATED {
            break envelope.decode::<pinhole_events::images::ImageUpdated>()?;
        }
    };
    reader.close().await?;
    ensure!(
        updated.image.analysis.as_ref().map(|a| a["phash"].clone()) == phash
            && updated.image.camera.as_deref() == Some("Canon EOS 400D DIGITAL"),
        "{:?}",
        updated.image
    );
    Ok(())
}
