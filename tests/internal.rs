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
use pinhole_http::clients::{CALL_TIMEOUT, INTERNAL_TOKEN_HEADER};
use pinhole_tests::app::{PASSWORD, photo, read};
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
