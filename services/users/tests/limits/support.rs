//! The users role alone, served on port 0 the way `pinhole serve --roles
//! users` serves it (its routes, the ops routes and the common layers), on
//! SQLite with the in-process cache or on Postgres with Redis.
//!
//! The test client stands in for a trusted proxy: `X-Forwarded-For` names
//! the client's address.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pinhole_config::{BlobUrl, BusUrl, CacheUrl, DatabaseUrl, Settings};
use pinhole_http::clients::NotConfigured;
use pinhole_http::{AppContext, Backends, Clients};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;

pub const PASSWORD: &str = "correct horse battery";

pub struct App {
    url: String,
    http: reqwest::Client,
    /// The OpenAPI document of the routes served.
    pub openapi: Value,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// Embedded backends in `dir`.
pub fn embedded(dir: &tempfile::TempDir) -> Settings {
    Settings::embedded(dir.path())
}

/// A fresh Postgres database and a Redis key prefix of this test's own;
/// the rest in `dir`.
pub async fn real(dir: &tempfile::TempDir) -> anyhow::Result<Settings> {
    let mut settings = Settings::embedded(dir.path());
    settings.database = DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
    settings.cache = CacheUrl::Redis(pinhole_testkit::redis_settings());
    Ok(settings)
}

impl App {
    /// Serves the users role with `settings` (loopback a trusted proxy).
    /// Several apps on one database and cache are several processes of
    /// the role.
    pub async fn start(mut settings: Settings) -> anyhow::Result<Self> {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse()?];
        let db = pinhole_db::connect(&settings.database).await?;
        pinhole_db::migrate(&db, &[pinhole_users::ROLE]).await?;
        let cache: pinhole_cache::SharedCache = match &settings.cache {
            CacheUrl::Memory => Arc::new(pinhole_cache::MemoryCache::new(64 << 20)),
            CacheUrl::Redis(redis) => Arc::new(
                pinhole_cache::RedisCache::connect(&redis.url, redis.prefix.clone()).await?,
            ),
        };
        let BusUrl::Embedded(bus_path) = &settings.bus else {
            bail!("these tests use the embedded bus");
        };
        let bus = Arc::new(
            pinhole_bus::EmbeddedLog::open(bus_path, pinhole_bus::EmbeddedOptions::default())
                .await?,
        );
        let BlobUrl::Local(blob_dir) = &settings.blob else {
            bail!("these tests use the local blob store");
        };
        let signer = pinhole_blob::UrlSigner::new(
            "http://127.0.0.1/".parse()?,
            "a-test-signing-key-of-at-least-32-characters"
                .to_owned()
                .into(),
        );
        let blobs = Arc::new(pinhole_blob::LocalStore::open(blob_dir, signer.clone()).await?);
        let tokens = pinhole_auth::Tokens::new(db.clone(), Arc::clone(&cache));
        let clients = Clients {
            users: Arc::new(pinhole_users::InProcessUsers::new(
                tokens.clone(),
                db.clone(),
            )),
            images: Arc::new(NotConfigured { role: "images" }),
            search: Arc::new(NotConfigured { role: "search" }),
            api: pinhole_http::forward::PublicApi::new(&[pinhole_users::ROLE], BTreeMap::new())?,
        };
        let ctx = AppContext::new(pinhole_http::Context {
            memory: pinhole_http::MemoryBudget::new(settings.memory_budget),
            settings: Arc::new(settings),
            backends: Backends {
                db,
                cache,
                bus,
                blobs,
            },
            outbox: pinhole_db::Outbox::new(),
            signer,
            tokens,
            clients,
        });
        // The recorder `/metrics` renders, installed before anything counts.
        pinhole_http::metrics_handle();
        let (router, openapi) = OpenApiRouter::new()
            .merge(pinhole_http::health_router(&ctx, &[pinhole_users::ROLE]))
            .merge(pinhole_users::router(&ctx))
            .split_for_parts();
        let app = pinhole_http::apply_layers(router, Duration::from_secs(60), &[]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let serving = tokio::spawn(async move {
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
            if let Err(e) = served {
                eprintln!("the test server stopped: {e}");
            }
        });
        Ok(Self {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            openapi: serde_json::to_value(&openapi)?,
            serving,
        })
    }

    /// `POST /api/v1{path}` with `body`, from the client at `address`.
    pub async fn post(
        &self,
        path: &str,
        address: &str,
        body: &Value,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .post(format!("{}/api/v1{path}", self.url))
            .header("x-forwarded-for", address)
            .json(body)
            .send()
            .await?)
    }

    /// Signs `username` up from `address`: the response.
    pub async fn sign_up(
        &self,
        username: &str,
        email: &str,
        address: &str,
    ) -> anyhow::Result<reqwest::Response> {
        self.post(
            "/accounts",
            address,
            &json!({ "username": username, "email": email, "password": PASSWORD }),
        )
        .await
    }

    /// Logs in as `login` with `password` from `address`: the response.
    pub async fn log_in(
        &self,
        login: &str,
        password: &str,
        address: &str,
    ) -> anyhow::Result<reqwest::Response> {
        self.post(
            "/sessions",
            address,
            &json!({ "login": login, "password": password }),
        )
        .await
    }

    /// The value of the counter `name` with `labels` in `/metrics` (0 when
    /// it has not counted yet).
    pub async fn counter(&self, name: &str, labels: &str) -> anyhow::Result<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let series = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(Ok(0), |value| {
                value
                    .trim()
                    .parse()
                    .with_context(|| format!("{series}{value}"))
            })
    }
}

/// A refusal's `Retry-After`, in seconds, and its error code.
pub async fn refusal(response: reqwest::Response) -> anyhow::Result<(u64, String)> {
    let retry_after = response
        .headers()
        .get("retry-after")
        .context("a 429 without Retry-After")?
        .to_str()?
        .parse()?;
    let body: Value = response.json().await?;
    let code = body["code"].as_str().context("no code")?.to_owned();
    Ok((retry_after, code))
}
