//! The accounts API as a mobile client uses it, on SQLite with the
//! in-process cache and on Postgres with Redis. Test names say which ran.

use std::time::Duration;

use anyhow::{Context, ensure};
use pinhole::Server;
use pinhole_config::{CacheUrl, DatabaseUrl, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct App {
    server: Server,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

const PASSWORD: &str = "correct horse battery";

impl App {
    async fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start(Settings::embedded(dir.path()), dir).await
    }

    async fn postgres() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut settings = Settings::embedded(dir.path());
        settings.database = DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
        settings.cache = CacheUrl::Redis(pinhole_testkit::redis_settings());
        Self::start(settings, dir).await
    }

    async fn start(mut settings: Settings, dir: tempfile::TempDir) -> anyhow::Result<Self> {
        // The test client stands in for a proxy: `X-Forwarded-For` names
        // the client address in the tests that need several.
        settings.trusted_proxies = vec!["127.0.0.1/32".parse()?];
        if settings.signup_limit == pinhole_config::Settings::embedded(dir.path()).signup_limit {
            // Scenarios sign many people up from one address.
            settings.signup_limit = 0;
        }
        Ok(Self {
            server: pinhole::start(settings, &["users"]).await?,
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    /// `METHOD /api/v1{path}` with an optional token and JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = if path.starts_with("/internal") {
            format!("{}{path}", self.server.url())
        } else {
            format!("{}/api/v1{path}", self.server.url())
        };
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?
        };
        Ok((status, value))
    }

    async fn sign_up(&self, username: &str) -> anyhow::Result<Value> {
        let (status, body) = self
            .call(
                Method::POST,
                "/accounts",
                None,
                Some(json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": PASSWORD,
                })),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "{status} {body}");
        Ok(body)
    }

    async fn log_in(&self, login: &str) -> anyhow::Result<Value> {
        let (status, body) = self
            .call(
                Method::POST,
                "/sessions",
                None,
                Some(json!({ "login": login, "password": PASSWORD })),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "{status} {body}");
        Ok(body)
    }

    /// Signs up and logs in; the access token.
    async fn user(&self, username: &str) -> anyhow::Result<String> {
        self.sign_up(username).await?;
        token(&self.log_in(username).await?)
    }
}

fn token(session: &Value) -> anyhow::Result<String> {
    session["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

fn usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|u| u["username"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The event types on the users topic, in order for each user (events are
/// keyed, and ordered, per user; not across users).
async fn user_events(app: &App) -> anyhow::Result<Vec<String>> {
    Ok(keyed_events(app)
        .await?
        .into_iter()
        .map(|(_, kind)| kind)
        .collect())
}

/// (key, type) of every event on the users topic.
async fn keyed_events(app: &App) -> anyhow::Result<Vec<(String, String)>> {
    let ctx = &app.server.ctx;
    pinhole_testkit::wait_for(Duration::from_secs(20), "the outbox to drain", || async {
        (ctx.outbox.pending(&ctx.backends.db).await.ok() == Some(0)).then_some(())
    })
    .await?;
    let bus = &ctx.backends.bus;
    let mut sub = bus
        .subscribe(
            &pinhole_testkit::unique("events"),
            &[pinhole_events::topics::USERS],
        )
        .await?;
    let mut kinds = Vec::new();
    while let Some(record) = sub.next(Duration::from_millis(700)).await? {
        let envelope = pinhole_events::Envelope::from_json(&record.payload)?;
        let key = String::from_utf8(record.key.unwrap_or_default())?;
        kinds.push((key, envelope.kind));
    }
    sub.close().await?;
    Ok(kinds)
}

async fn lifecycle(app: App) -> anyhow::Result<()> {
    let created = app.sign_up("Ada_Lovelace").await?;
    ensure!(
        created["username"] == "ada_lovelace" && created["email"] == "ada_lovelace@example.com"
    );
    ensure!(created.get("password").is_none() && created.get("password_hash").is_none());

    // Log in by username in any case, or by email.
    let session = app.log_in("ADA_LOVELACE").await?;
    ensure!(session["token_type"] == "Bearer" && session["expires_in"].as_i64() > Some(0));
    let by_email = app.log_in("Ada_Lovelace@Example.com").await?;
    let access = token(&session)?;

    let (status, me) = app.call(Method::GET, "/me", Some(&access), None).await?;
    ensure!(status == 200 && me["id"] == created["id"], "{me}");

    let (status, me) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&access),
            Some(json!({ "display_name": "Ada", "bio": "Analyst", "website": "https://ada.dev" })),
        )
        .await?;
    ensure!(
        status == 200 && me["display_name"] == "Ada" && me["website"] == "https://ada.dev/",
        "{me}"
    );
    let (_, me) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&access),
            Some(json!({ "bio": null })),
        )
        .await?;
    ensure!(
        me["bio"].is_null() && me["display_name"] == "Ada",
        "null clears, absent keeps: {me}"
    );

    // Refresh gives working tokens.
    let (status, refreshed) = app
        .call(
            Method::POST,
            "/sessions/refresh",
            None,
            Some(json!({ "refresh_token": session["refresh_token"] })),
        )
        .await?;
    ensure!(status == 200, "{refreshed}");
    let fresh = token(&refreshed)?;
    ensure!(fresh != access);
    ensure!(app.call(Method::GET, "/me", Some(&fresh), None).await?.0 == 200);

    // Log out ends that log-in's tokens, not the other one's.
    ensure!(
        app.call(Method::DELETE, "/sessions/current", Some(&fresh), None)
            .await?
            .0
            == 204
    );
    ensure!(app.call(Method::GET, "/me", Some(&fresh), None).await?.0 == 401);
    ensure!(app.call(Method::GET, "/me", Some(&access), None).await?.0 == 401);
    let (status, _) = app
        .call(
            Method::POST,
            "/sessions/refresh",
            None,
            Some(json!({ "refresh_token": refreshed["refresh_token"] })),
        )
        .await?;
    ensure!(status == 401);
    let other = token(&by_email)?;
    ensure!(app.call(Method::GET, "/me", Some(&other), None).await?.0 == 200);

    // Deleting the account ends every session and frees the name.
    ensure!(app.call(Method::DELETE, "/me", Some(&other), None).await?.0 == 204);
    ensure!(app.call(Method::GET, "/me", Some(&other), None).await?.0 == 401);
    let (status, _) = app
        .call(
            Method::POST,
            "/sessions",
            None,
            Some(json!({ "login": "ada_lovelace", "password": PASSWORD })),
        )
        .await?;
    ensure!(status == 401);
    ensure!(
        app.call(Method::GET, "/users/ada_lovelace", None, None)
            .await?
            .0
            == 404
    );
    let again = app.sign_up("ada_lovelace").await?;
    ensure!(
        again["id"] != created["id"],
        "a new account, not the old one"
    );

    let events = keyed_events(&app).await?;
    let of = |id: &Value| -> Vec<String> {
        events
            .iter()
            .filter(|(key, _)| Some(key.as_str()) == id.as_str())
            .map(|(_, kind)| kind.clone())
            .collect()
    };
    let first = of(&created["id"]);
    ensure!(
        first
            == [
                "user.registered",
                "user.updated",
                "user.updated",
                "user.deleted"
            ],
        "{events:?}"
    );
    ensure!(of(&again["id"]) == ["user.registered"], "{events:?}");
    Ok(())
}

async fn bad_input(app: App) -> anyhow::Result<()> {
    let (status, body) = app
        .call(
            Method::POST,
            "/accounts",
            None,
            Some(json!({ "username": "no spaces", "email": "nope", "password": "short" })),
        )
        .await?;
    ensure!(
        status == 422 && body["code"] == "validation-failed",
        "{body}"
    );
    for field in ["username", "email", "password"] {
        ensure!(body["fields"][field].is_string(), "{field}: {body}");
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/accounts",
            None,
            Some(json!({ "username": "bob" })),
        )
        .await?;
    ensure!(
        status == 422 && body["fields"]["email"] == "is required",
        "{body}"
    );

    app.sign_up("bob").await?;
    let (status, body) = app
        .call(
            Method::POST,
            "/accounts",
            None,
            Some(json!({ "username": "BOB", "email": "other@example.com", "password": PASSWORD })),
        )
        .await?;
    ensure!(status == 409 && body["code"] == "username-taken", "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/accounts",
            None,
            Some(json!({ "username": "bobby", "email": " Bob@EXAMPLE.com", "password": PASSWORD })),
        )
        .await?;
    ensure!(status == 409 && body["code"] == "email-taken", "{body}");

    let url = format!("{}/api/v1/accounts", app.server.url());
    let response = app.http.post(&url).body("{}").send().await?;
    ensure!(response.status() == 415);
    let response = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    ensure!(response.status() == 400);
    let body: Value = response.json().await?;
    ensure!(body["code"] == "invalid-json");

    let token = token(&app.log_in("bob").await?)?;
    let (status, body) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({ "colour": "red" })),
        )
        .await?;
    ensure!(status == 422, "unknown fields are refused: {body}");
    let (status, body) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({ "display_name": "x".repeat(65), "website": "javascript:alert(1)" })),
        )
        .await?;
    ensure!(
        status == 422
            && body["fields"]["display_name"].is_string()
            && body["fields"]["website"].is_string()
    );
    let (_, me) = app.call(Method::GET, "/me", Some(&token), None).await?;
    ensure!(
        me["display_name"].is_null(),
        "a refused change writes nothing"
    );

    // Only the sign-ups that succeeded were announced.
    ensure!(user_events(&app).await? == ["user.registered"]);
    Ok(())
}

async fn refresh_reuse_revokes_the_family(app: App) -> anyhow::Result<()> {
    app.sign_up("carol").await?;
    let first = app.log_in("carol").await?;
    let elsewhere = app.log_in("carol").await?;
    let refresh = |token: Value| json!({ "refresh_token": token });

    let (status, second) = app
        .call(
            Method::POST,
            "/sessions/refresh",
            None,
            Some(refresh(first["refresh_token"].clone())),
        )
        .await?;
    ensure!(status == 200);
    // The first refresh token, used again: a thief or a replay.
    let (status, body) = app
        .call(
            Method::POST,
            "/sessions/refresh",
            None,
            Some(refresh(first["refresh_token"].clone())),
        )
        .await?;
    ensure!(
        status == 401 && body["code"] == "refresh-token-reused",
        "{body}"
    );
    // Everything from that log-in is dead, at once.
    ensure!(
        app.call(Method::GET, "/me", Some(&token(&second)?), None)
            .await?
            .0
            == 401
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/sessions/refresh",
            None,
            Some(refresh(second["refresh_token"].clone())),
        )
        .await?;
    ensure!(status == 401);
    // Another log-in is untouched.
    ensure!(
        app.call(Method::GET, "/me", Some(&token(&elsewhere)?), None)
            .await?
            .0
            == 200
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/sessions/refresh",
            None,
            Some(refresh(json!("phr_made_up"))),
        )
        .await?;
    ensure!(status == 401 && body["code"] == "invalid-refresh-token");
    Ok(())
}

async fn log_in_attempt(
    app: &App,
    login: &str,
    password: &str,
) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .http
        .post(format!("{}/api/v1/sessions", app.server.url()))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await?)
}

async fn log_in_from(
    app: &App,
    address: &str,
    login: &str,
    password: &str,
) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .http
        .post(format!("{}/api/v1/sessions", app.server.url()))
        .header("x-forwarded-for", address)
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await?)
}

/// Guessing someone's password from elsewhere does not lock them out:
/// the guesser's address is refused, the owner's right password still
/// works (slowed down once the guesses come from many places).
async fn guesses_do_not_lock_the_owner_out(app: App) -> anyhow::Result<()> {
    app.sign_up("gail").await?;
    for _ in 0..5 {
        let status = log_in_from(&app, "203.0.113.7", "gail", "a guess")
            .await?
            .status();
        ensure!(status == 401, "{status}");
    }
    let refused = log_in_from(&app, "203.0.113.7", "gail", PASSWORD).await?;
    ensure!(refused.status() == 429, "the guesser: {}", refused.status());
    let owner = log_in_from(&app, "198.51.100.2", "gail", PASSWORD).await?;
    ensure!(owner.status() == 201, "the owner: {}", owner.status());

    // Guesses from ten other places: each address may still try, the owner
    // still logs in, only more slowly.
    for n in 0..10 {
        let status = log_in_from(&app, &format!("192.0.2.{n}"), "gail", "a guess")
            .await?
            .status();
        ensure!(status == 401, "guess {n}: {status}");
    }
    let started = std::time::Instant::now();
    let owner = log_in_from(&app, "198.51.100.2", "gail", PASSWORD).await?;
    let took = started.elapsed();
    ensure!(
        owner.status() == 201,
        "the owner after many guesses: {}",
        owner.status()
    );
    ensure!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "slowed, not refused: {took:?}"
    );
    Ok(())
}

async fn throttling(app: App) -> anyhow::Result<()> {
    app.sign_up("dave").await?;
    // Unknown account and wrong password look the same.
    let unknown = log_in_attempt(&app, "nobody_here", PASSWORD).await?;
    let wrong = log_in_attempt(&app, "dave", "not the password").await?;
    ensure!(unknown.status() == 401 && wrong.status() == 401);
    ensure!(unknown.json::<Value>().await? == wrong.json::<Value>().await?);

    // Failures count against the account whichever name reaches it.
    for login in ["DAVE", "dave@example.com", " Dave@Example.com ", "dave"] {
        ensure!(log_in_attempt(&app, login, "still wrong").await?.status() == 401);
    }
    // Five failures: even the right password waits now.
    let blocked = log_in_attempt(&app, "dave", PASSWORD).await?;
    ensure!(blocked.status() == 429);
    let retry_after: u64 = blocked.headers()["retry-after"].to_str()?.parse()?;
    ensure!((1..=1800).contains(&retry_after), "{retry_after}");
    ensure!(blocked.json::<Value>().await?["code"] == "too-many-attempts");

    // Per address: attempts over many accounts add up. So far 6 failures
    // from here (the refused attempt checked no password and does not
    // count); 14 more make 20.
    app.sign_up("erin").await?;
    for n in 0..14 {
        let status = log_in_attempt(&app, &format!("ghost_{n}"), PASSWORD)
            .await?
            .status();
        ensure!(status == 401, "attempt {n}: {status}");
    }
    let status = log_in_attempt(&app, "erin", PASSWORD).await?.status();
    ensure!(
        status == 429,
        "the address is throttled after 20 failures: {status}"
    );
    Ok(())
}

/// Guesses sent at once are counted before any is checked: only the first
/// five get an answer about the password.
async fn parallel_guesses_are_counted(app: App) -> anyhow::Result<()> {
    app.sign_up("frank").await?;
    let attempts = (0..20).map(|_| log_in_attempt(&app, "frank", "a wrong guess"));
    let statuses: Vec<StatusCode> = futures::future::try_join_all(attempts)
        .await?
        .iter()
        .map(reqwest::Response::status)
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    ensure!((checked, refused) == (5, 15), "{statuses:?}");
    Ok(())
}

async fn private_accounts_approve_followers(app: App) -> anyhow::Result<()> {
    let bob = app.user("bob").await?;
    let ada = app.user("ada").await?;
    let carol = app.user("carol").await?;
    let dave = app.user("dave").await?;
    app.call(
        Method::PATCH,
        "/me",
        Some(&bob),
        Some(json!({ "is_private": true })),
    )
    .await?;

    let (status, state) = app
        .call(Method::POST, "/users/bob/follow", Some(&ada), None)
        .await?;
    ensure!(status == 201 && state["status"] == "requested", "{state}");
    let (_, state) = app
        .call(Method::POST, "/users/bob/follow", Some(&ada), None)
        .await?;
    ensure!(
        state["status"] == "requested",
        "asking twice changes nothing"
    );
    app.call(Method::POST, "/users/bob/follow", Some(&carol), None)
        .await?;
    app.call(Method::POST, "/users/bob/follow", Some(&dave), None)
        .await?;

    let (_, profile) = app
        .call(Method::GET, "/users/bob", Some(&ada), None)
        .await?;
    ensure!(profile["relationship"]["requested"] == true && profile["follower_count"] == 0);
    let (status, body) = app
        .call(Method::GET, "/users/bob/followers", Some(&ada), None)
        .await?;
    ensure!(status == 403 && body["code"] == "forbidden", "{body}");

    let (_, requests) = app
        .call(Method::GET, "/me/follow-requests", Some(&bob), None)
        .await?;
    ensure!(
        usernames(&requests) == ["dave", "carol", "ada"],
        "{requests}"
    );
    ensure!(
        app.call(
            Method::POST,
            "/me/follow-requests/ada/approve",
            Some(&bob),
            None
        )
        .await?
        .0 == 204
    );
    ensure!(
        app.call(
            Method::POST,
            "/me/follow-requests/carol/deny",
            Some(&bob),
            None
        )
        .await?
        .0 == 204
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/me/follow-requests/carol/approve",
            Some(&bob),
            None,
        )
        .await?;
    ensure!(status == 404 && body["code"] == "follow-request-not-found");

    let (_, profile) = app
        .call(Method::GET, "/users/bob", Some(&ada), None)
        .await?;
    ensure!(
        profile["relationship"]["following"] == true && profile["follower_count"] == 1,
        "{profile}"
    );
    let (status, followers) = app
        .call(Method::GET, "/users/bob/followers", Some(&ada), None)
        .await?;
    ensure!(status == 200 && usernames(&followers) == ["ada"]);
    let (_, profile) = app
        .call(Method::GET, "/users/bob", Some(&carol), None)
        .await?;
    ensure!(
        profile["relationship"]["requested"] == false
            && profile["relationship"]["following"] == false
    );

    // Going public lets the waiting requests in.
    app.call(
        Method::PATCH,
        "/me",
        Some(&bob),
        Some(json!({ "is_private": false })),
    )
    .await?;
    let (_, followers) = app
        .call(Method::GET, "/users/bob/followers", None, None)
        .await?;
    ensure!(usernames(&followers) == ["dave", "ada"], "{followers}");
    let (status, state) = app
        .call(Method::POST, "/users/ada/follow", Some(&bob), None)
        .await?;
    ensure!(status == 201 && state["status"] == "following");
    let (_, profile) = app
        .call(Method::GET, "/users/ada", Some(&bob), None)
        .await?;
    ensure!(
        profile["relationship"]["followed_by"] == true
            && profile["relationship"]["following"] == true
    );

    ensure!(
        app.call(Method::DELETE, "/users/bob/follow", Some(&ada), None)
            .await?
            .0
            == 204
    );
    let (_, profile) = app.call(Method::GET, "/users/bob", None, None).await?;
    ensure!(profile["follower_count"] == 1 && profile.get("relationship").is_none());

    let (status, body) = app
        .call(Method::POST, "/users/ada/follow", Some(&ada), None)
        .await?;
    ensure!(status == 422 && body["fields"]["username"].is_string());
    // Events are ordered per user (their key), not across users.
    let kinds = user_events(&app).await?;
    let mut follows: Vec<&String> = kinds.iter().filter(|k| k.starts_with("follow.")).collect();
    follows.sort();
    // Three requests (one denied, two approved), one follow of a public
    // account, one unfollow: every change of an edge, pending ones too.
    ensure!(
        follows
            == [
                "follow.created",
                "follow.created",
                "follow.created",
                "follow.removed",
                "follow.removed",
                "follow.requested",
                "follow.requested",
                "follow.requested"
            ],
        "{kinds:?}"
    );
    Ok(())
}

async fn blocks_hide_profiles(app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    app.call(Method::POST, "/users/bob/follow", Some(&ada), None)
        .await?;
    app.call(Method::POST, "/users/ada/follow", Some(&bob), None)
        .await?;

    ensure!(
        app.call(Method::POST, "/users/ada/block", Some(&bob), None)
            .await?
            .0
            == 204
    );
    // To ada, bob is gone.
    let (status, body) = app
        .call(Method::GET, "/users/bob", Some(&ada), None)
        .await?;
    ensure!(status == 404 && body["code"] == "user-not-found");
    ensure!(
        app.call(Method::POST, "/users/bob/follow", Some(&ada), None)
            .await?
            .0
            == 404
    );
    ensure!(
        app.call(Method::GET, "/users/bob/followers", Some(&ada), None)
            .await?
            .0
            == 404
    );
    // Bob still sees ada, and that he blocks her; the follows are over.
    let (status, profile) = app
        .call(Method::GET, "/users/ada", Some(&bob), None)
        .await?;
    ensure!(status == 200 && profile["relationship"]["blocking"] == true);
    ensure!(
        profile["follower_count"] == 0 && profile["following_count"] == 0,
        "{profile}"
    );
    let (status, body) = app
        .call(Method::POST, "/users/ada/follow", Some(&bob), None)
        .await?;
    ensure!(status == 409 && body["code"] == "user-blocked");
    // Others still see bob, but not to ada, even in a third user's list.
    ensure!(app.call(Method::GET, "/users/bob", None, None).await?.0 == 200);
    app.user("carol").await?;
    app.call(Method::POST, "/users/carol/follow", Some(&bob), None)
        .await?;
    let (_, followers) = app
        .call(Method::GET, "/users/carol/followers", None, None)
        .await?;
    ensure!(usernames(&followers) == ["bob"]);
    let (_, followers) = app
        .call(Method::GET, "/users/carol/followers", Some(&ada), None)
        .await?;
    ensure!(usernames(&followers).is_empty(), "{followers}");

    ensure!(
        app.call(Method::DELETE, "/users/ada/block", Some(&bob), None)
            .await?
            .0
            == 204
    );
    ensure!(
        app.call(Method::GET, "/users/bob", Some(&ada), None)
            .await?
            .0
            == 200
    );
    let (status, body) = app
        .call(Method::POST, "/users/bob/block", Some(&bob), None)
        .await?;
    ensure!(status == 422, "{body}");
    Ok(())
}

async fn deletion_cascades(app: App) -> anyhow::Result<()> {
    let ada = app.user("ada").await?;
    let bob = app.user("bob").await?;
    let carol = app.user("carol").await?;
    let dave = app.user("dave").await?;
    app.call(Method::POST, "/users/bob/follow", Some(&ada), None)
        .await?;
    app.call(Method::POST, "/users/ada/follow", Some(&bob), None)
        .await?;
    app.call(Method::POST, "/users/ada/follow", Some(&carol), None)
        .await?;
    app.call(Method::POST, "/users/dave/block", Some(&ada), None)
        .await?;
    app.call(Method::POST, "/users/ada/block", Some(&dave), None)
        .await?;
    let (_, found) = app.call(Method::GET, "/users/ada", None, None).await?;
    let ada_id = found["id"].clone();

    ensure!(app.call(Method::DELETE, "/me", Some(&ada), None).await?.0 == 204);
    let (_, profile) = app.call(Method::GET, "/users/bob", None, None).await?;
    ensure!(
        profile["follower_count"] == 0 && profile["following_count"] == 0,
        "{profile}"
    );
    let (_, following) = app
        .call(Method::GET, "/users/carol/following", None, None)
        .await?;
    ensure!(usernames(&following).is_empty(), "{following}");
    let (status, found) = app
        .call(
            Method::POST,
            "/internal/v1/users/lookup",
            None,
            Some(json!({ "ids": [ada_id] })),
        )
        .await?;
    ensure!(status == 200 && found["users"] == json!([]));

    // Nothing of hers is left in the role's tables.
    let db = &app.server.ctx.backends.db;
    let id = uuid::Uuid::parse_str(ada_id.as_str().unwrap_or_default())?;
    for (table, column) in [
        ("blocks", "blocker_id"),
        ("blocks", "blocked_id"),
        ("follows", "follower_id"),
        ("follows", "followee_id"),
        ("tokens", "user_id"),
    ] {
        use sea_orm::ConnectionTrait;
        let backend = db.get_database_backend();
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1");
        let row = db
            .query_one(sea_orm::Statement::from_sql_and_values(
                backend,
                &sql,
                [id.into()],
            ))
            .await?
            .context("count")?;
        let n: i64 = row.try_get("", "n")?;
        ensure!(n == 0, "{n} rows of {table}.{column} left");
    }
    let events = keyed_events(&app).await?;
    let theirs: Vec<&str> = events
        .iter()
        .filter(|(key, _)| Some(key.as_str()) == ada_id.as_str())
        .map(|(_, kind)| kind.as_str())
        .collect();
    ensure!(theirs.last() == Some(&"user.deleted"), "{events:?}");
    Ok(())
}

async fn pagination(app: App) -> anyhow::Result<()> {
    app.user("star").await?;
    for n in 0..5 {
        let fan = app.user(&format!("fan_{n}")).await?;
        app.call(Method::POST, "/users/star/follow", Some(&fan), None)
            .await?;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users/star/followers?limit=2&cursor={c}"),
            None => "/users/star/followers?limit=2".to_owned(),
        };
        let (status, page) = app.call(Method::GET, &path, None, None).await?;
        ensure!(status == 200, "{page}");
        let names = usernames(&page);
        ensure!(names.len() <= 2);
        seen.extend(names);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    ensure!(
        seen == ["fan_4", "fan_3", "fan_2", "fan_1", "fan_0"],
        "{seen:?}"
    );
    let (status, body) = app
        .call(Method::GET, "/users/star/followers?limit=0", None, None)
        .await?;
    ensure!(status == 422 && body["fields"]["limit"].is_string());
    let (status, body) = app
        .call(Method::GET, "/users/star/followers?cursor=zz", None, None)
        .await?;
    ensure!(status == 422 && body["fields"]["cursor"].is_string());
    Ok(())
}

/// Who may do what: anonymous, a forged token, the owner, another user.
async fn authorization_matrix(app: App) -> anyhow::Result<()> {
    let owner = app.user("owner").await?;
    let other = app.user("other").await?;
    app.call(
        Method::PATCH,
        "/me",
        Some(&owner),
        Some(json!({ "is_private": true })),
    )
    .await?;
    let forged = "pha_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    // Needs a token: none and forged are 401, a real one is not.
    let authed: [(Method, &str); 7] = [
        (Method::GET, "/me"),
        (Method::PATCH, "/me"),
        (Method::DELETE, "/sessions/current"),
        (Method::POST, "/users/owner/follow"),
        (Method::POST, "/users/owner/block"),
        (Method::GET, "/me/follow-requests"),
        (Method::POST, "/me/follow-requests/other/approve"),
    ];
    for (method, path) in &authed {
        for token in [None, Some(forged)] {
            let body = (*method == Method::PATCH).then(|| json!({}));
            let (status, error) = app.call(method.clone(), path, token, body).await?;
            ensure!(
                status == 401,
                "{method} {path} with {token:?}: {status} {error}"
            );
            ensure!(error["code"] == "unauthorized" || error["code"] == "invalid-token");
        }
    }
    let (status, _) = app.call(Method::GET, "/me", Some("garbage"), None).await?;
    ensure!(status == 401);

    // Someone else's private lists: 403; the owner's own: 200; public profile: 200.
    for path in ["/users/owner/followers", "/users/owner/following"] {
        ensure!(
            app.call(Method::GET, path, Some(&other), None).await?.0 == 403,
            "{path}"
        );
        ensure!(
            app.call(Method::GET, path, None, None).await?.0 == 403,
            "{path}"
        );
        ensure!(
            app.call(Method::GET, path, Some(&owner), None).await?.0 == 200,
            "{path}"
        );
    }
    ensure!(app.call(Method::GET, "/users/owner", None, None).await?.0 == 200);
    // Requests addressed to someone else cannot be answered.
    app.call(Method::POST, "/users/owner/follow", Some(&other), None)
        .await?;
    let (status, _) = app
        .call(
            Method::POST,
            "/me/follow-requests/other/approve",
            Some(&other),
            None,
        )
        .await?;
    ensure!(status == 404, "only the owner sees its requests");
    // Unknown users: 404.
    ensure!(app.call(Method::GET, "/users/nobody", None, None).await?.0 == 404);
    ensure!(
        app.call(Method::POST, "/users/nobody/follow", Some(&other), None)
            .await?
            .0
            == 404
    );

    // Other roles verify tokens through the internal endpoint too.
    let (status, verified) = app
        .call(
            Method::POST,
            "/internal/v1/tokens/verify",
            None,
            Some(json!({ "token": other })),
        )
        .await?;
    ensure!(status == 200 && verified["user_id"].is_string());
    let (status, _) = app
        .call(
            Method::POST,
            "/internal/v1/tokens/verify",
            None,
            Some(json!({ "token": forged })),
        )
        .await?;
    ensure!(status == 401);
    Ok(())
}

async fn batch_lookup(app: App) -> anyhow::Result<()> {
    let a = app.sign_up("alpha").await?;
    let b = app.sign_up("beta").await?;
    let ids = json!([b["id"], "00000000-0000-0000-0000-000000000000", a["id"]]);
    let (status, found) = app
        .call(
            Method::POST,
            "/internal/v1/users/lookup",
            None,
            Some(json!({ "ids": ids })),
        )
        .await?;
    ensure!(status == 200);
    let names: Vec<&str> = found["users"]
        .as_array()
        .map(|u| u.iter().filter_map(|u| u["username"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names == ["beta", "alpha"],
        "in the order asked, unknown left out: {found}"
    );
    ensure!(found["users"][0].get("email").is_none(), "nothing private");
    let too_many: Vec<String> = (0..501).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (status, _) = app
        .call(
            Method::POST,
            "/internal/v1/users/lookup",
            None,
            Some(json!({ "ids": too_many })),
        )
        .await?;
    ensure!(status == 422);
    Ok(())
}

/// Behind a trusted proxy, each client's address is its own: one client's
/// failures do not lock out the others.
#[tokio::test]
async fn addresses_forwarded_by_a_trusted_proxy_are_throttled_apart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(dir.path());
    settings.trusted_proxies = vec!["127.0.0.1/32".parse()?];
    let app = App::start(settings, dir).await?;
    app.sign_up("gina").await?;
    let attempt = |login: &'static str, password: &'static str, client: &'static str| {
        app.http
            .post(format!("{}/api/v1/sessions", app.server.url()))
            .header("x-forwarded-for", client)
            .json(&json!({ "login": login, "password": password }))
            .send()
    };
    for n in 0..20 {
        let login: &'static str = Box::leak(format!("ghost_{n}").into_boxed_str());
        ensure!(
            attempt(login, "wrong password", "198.51.100.1")
                .await?
                .status()
                == 401
        );
    }
    ensure!(attempt("gina", PASSWORD, "198.51.100.1").await?.status() == 429);
    ensure!(attempt("gina", PASSWORD, "198.51.100.2").await?.status() == 201);
    Ok(())
}

/// With an internal token set, `/internal` answers only those who carry it.
#[tokio::test]
async fn internal_routes_require_the_internal_token_when_set() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(dir.path());
    let secret = "an-internal-secret-of-at-least-32-chars";
    settings.internal_token = Some(secret.to_owned().into());
    let app = App::start(settings, dir).await?;
    let url = format!("{}/internal/v1/users/lookup", app.server.url());
    let body = json!({ "ids": [] });
    let without = app.http.post(&url).json(&body).send().await?;
    ensure!(without.status() == 401);
    ensure!(without.json::<Value>().await?["code"] == "internal-token-required");
    let wrong = app
        .http
        .post(&url)
        .header("x-pinhole-internal-token", "not-the-secret")
        .json(&body)
        .send()
        .await?;
    ensure!(wrong.status() == 401);
    let right = app
        .http
        .post(&url)
        .header("x-pinhole-internal-token", secret)
        .json(&body)
        .send()
        .await?;
    ensure!(right.status() == 200);
    // The public API does not need it.
    ensure!(app.call(Method::GET, "/users/nobody", None, None).await?.0 == 404);
    Ok(())
}

macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::App::sqlite().await?).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::App::postgres().await?).await
                }
            )*
        }
    };
}

backends!(
    lifecycle,
    bad_input,
    refresh_reuse_revokes_the_family,
    throttling,
    guesses_do_not_lock_the_owner_out,
    parallel_guesses_are_counted,
    private_accounts_approve_followers,
    blocks_hide_profiles,
    deletion_cascades,
    pagination,
    authorization_matrix,
    batch_lookup,
);

/// Sign-ups are limited per address; a taken name is refused at once (no
/// password hashing for it).
async fn sign_ups_are_limited_per_address(
    settings: Settings,
    dir: tempfile::TempDir,
) -> anyhow::Result<()> {
    let mut settings = settings;
    settings.signup_limit = 3;
    let app = App::start(settings, dir).await?;
    let sign_up = |name: &str, address: &str| {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
        app.http
            .post(format!("{}/api/v1/accounts", app.server.url()))
            .header("x-forwarded-for", address.to_owned())
            .json(&body)
            .send()
    };
    for n in 0..3 {
        let status = sign_up(&format!("hana{n}"), "203.0.113.9").await?.status();
        ensure!(status == StatusCode::CREATED, "sign-up {n}: {status}");
    }
    let refused = sign_up("hana3", "203.0.113.9").await?;
    ensure!(
        refused.status() == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.status()
    );
    ensure!(refused.headers().contains_key("retry-after"));
    ensure!(refused.json::<Value>().await?["code"] == "too-many-sign-ups");
    // Another address is not held up; a taken name is a 409, not counted.
    let status = sign_up("hana3", "198.51.100.9").await?.status();
    ensure!(status == StatusCode::CREATED, "{status}");
    let taken = sign_up("hana3", "198.51.100.9").await?;
    ensure!(taken.status() == StatusCode::CONFLICT, "{}", taken.status());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_are_limited_per_address_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    sign_ups_are_limited_per_address(Settings::embedded(dir.path()), dir).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_are_limited_per_address_postgres() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(dir.path());
    settings.database = DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
    settings.cache = CacheUrl::Redis(pinhole_testkit::redis_settings());
    sign_ups_are_limited_per_address(settings, dir).await
}
