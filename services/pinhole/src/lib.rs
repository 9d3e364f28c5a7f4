//! The `pinhole` server: connects the backends named by the settings, runs
//! the migrations of the platform and of the chosen roles, and serves those
//! roles on one listener.

mod backends;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pinhole_bus::TopicSpec;
use pinhole_config::Settings;
use pinhole_db::{Outbox, OutboxRelay, RelayOptions};
use pinhole_http::clients::{HttpImages, HttpSearch, HttpUsers, InternalHttp, NotConfigured};
use pinhole_http::forward::PublicApi;
use pinhole_http::{
    ApiError, AppContext, Backends, Clients, Common, ImagesClient, SearchClient, UsersClient,
    apply_layers, blob_router, health_router,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use backends::{StartError, connect_backends, signing_key};

/// The server's memory allocator: a request's many small allocations cost
/// a fraction of glibc's (measured with the gateway bench). The binary and
/// the benchmarks that run the server in process use it:
/// `#[global_allocator] static ALLOCATOR: pinhole::Allocator = pinhole::Allocator;`
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_purge_delay` in mimalloc 3 (the crate names no constant for
/// it there).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Blocks of glibc's malloc at least this large are mapped on their own and
/// unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Makes [`Allocator`] give freed memory back to the system at once, not a
/// second later: a delayed purge runs only when the thread that freed the
/// memory allocates again, so the pixel buffers of blocking threads that
/// then idle stayed resident. In the soak benchmark's first three minutes
/// this took resident memory from about 560 MiB to about 390 MiB, at the
/// same throughput.
///
/// The C codecs (libjpeg, libwebp, libheif) and SQLite allocate with
/// glibc's malloc, which by default grows its mapping threshold up to
/// 32 MiB as large blocks are freed, after which an encoder's buffers come
/// from per-thread arenas (up to eight per core) that keep them. Here the
/// threshold is fixed at 1 MiB, so large blocks go back when freed, and the
/// arenas are one per core.
///
/// Called first thing by `main` (and the benchmarks that run the server in
/// process).
#[allow(unsafe_code)]
pub fn return_freed_memory_at_once() {
    // SAFETY: mi_option_set stores an option's value; it may be called
    // from any thread at any time, and 0 is a valid purge delay.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .try_into()
            .unwrap_or(i32::MAX);
        // SAFETY: mallopt changes malloc's tunables under its own lock and
        // takes any value for these two; a refusal (0) leaves the default.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_ARENA_MAX, cores);
        }
    }
}

/// Every role, in the order they are mounted.
pub const ROLES: &[&str] = &[
    pinhole_users::ROLE,
    pinhole_images::ROLE,
    pinhole_thumbnails::ROLE,
    pinhole_search::ROLE,
    pinhole_sns_sync::ROLE,
    pinhole_gateway::ROLE,
    pinhole_warehouse::ROLE,
];

/// The roles each role asks (see `pinhole_http::clients`).
pub const CALLS: &[(&str, &[&str])] = &[
    (pinhole_users::ROLE, &[pinhole_images::ROLE]),
    (pinhole_images::ROLE, &[pinhole_users::ROLE]),
    (
        pinhole_search::ROLE,
        &[pinhole_users::ROLE, pinhole_images::ROLE],
    ),
    (
        pinhole_gateway::ROLE,
        &[
            pinhole_users::ROLE,
            pinhole_images::ROLE,
            pinhole_search::ROLE,
        ],
    ),
];

/// Parses `all` or a comma-separated list of roles.
pub fn parse_roles(s: &str) -> Result<Vec<&'static str>, String> {
    if s.trim() == "all" {
        return Ok(ROLES.to_vec());
    }
    let mut roles = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(role) = ROLES.iter().find(|r| **r == name) else {
            return Err(format!(
                "unknown role `{name}`; roles are: all, {}",
                ROLES.join(", ")
            ));
        };
        if !roles.contains(role) {
            roles.push(*role);
        }
    }
    if roles.is_empty() {
        return Err(format!(
            "no role given; roles are: all, {}",
            ROLES.join(", ")
        ));
    }
    Ok(roles)
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Pinhole",
    description = "A social photo-sharing backend: uploads, thumbnails, search, feeds, cross-posting and view analytics."
))]
struct ApiDoc;

/// The OpenAPI document of every mounted route.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3 document", body = Object)))]
async fn openapi_json(
    State(doc): State<Arc<OnceLock<serde_json::Value>>>,
) -> Json<serde_json::Value> {
    Json(doc.get().cloned().unwrap_or_default())
}

/// The AsyncAPI 3.0 document of every event the roles send each other
/// (CloudEvents envelopes, a JSON Schema for each `data`), generated from
/// the same Rust types the roles produce and consume.
#[utoipa::path(get, path = "/api/asyncapi.json", tag = "ops",
    responses((status = 200, description = "AsyncAPI 3.0 document", body = Object)))]
async fn asyncapi_json() -> Json<serde_json::Value> {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    Json(DOC.get_or_init(pinhole_events::asyncapi).clone())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Common::RouteNotFound,
        "there is no such route",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Common::MethodNotAllowed,
        "this route does not take that method",
    )
}

/// The whole HTTP application for `roles`.
pub fn app(
    ctx: &AppContext,
    roles: &[&str],
    search: Option<&Arc<pinhole_search::Engine>>,
) -> axum::Router {
    // Install the recorder before the first request is counted.
    pinhole_http::metrics_handle();
    let doc = Arc::new(OnceLock::new());
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health_router(ctx, roles))
        .merge(blob_router(ctx))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(openapi_json))
                .with_state(Arc::clone(&doc)),
        )
        .routes(routes!(asyncapi_json));
    for role in roles {
        let router = match *role {
            pinhole_users::ROLE => pinhole_users::router(ctx),
            pinhole_images::ROLE => pinhole_images::router(ctx),
            pinhole_thumbnails::ROLE => {
                match pinhole_thumbnails::transforms(&ctx.settings, &ctx.signer) {
                    Ok(t) => pinhole_thumbnails::router(ctx, t),
                    // `start` checked them first.
                    Err(e) => {
                        tracing::error!(error = %e, "transform settings are invalid");
                        continue;
                    }
                }
            }
            pinhole_search::ROLE => match search {
                Some(engine) => pinhole_search::router(ctx, Arc::clone(engine)),
                // `start` opened it first.
                None => continue,
            },
            pinhole_sns_sync::ROLE => pinhole_sns_sync::router(ctx),
            pinhole_gateway::ROLE => pinhole_gateway::router(ctx),
            _ => continue,
        };
        api = api.merge(router);
    }
    let (router, openapi) = api.split_for_parts();
    let _ = doc.set(pinhole_http::docs::complete(openapi));
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let app = apply_layers(
        router,
        Duration::from_secs(60),
        &[
            pinhole_images::UNTIMED_ROUTES,
            pinhole_gateway::UNTIMED_ROUTES,
        ]
        .concat(),
    );
    ctx.clients.api.serve_locally(app.clone());
    app
}

/// A running server.
pub struct Server {
    /// Where it listens (the real port when the settings asked for port 0).
    pub addr: SocketAddr,
    pub ctx: AppContext,
    shutdown: Option<oneshot::Sender<()>>,
    serving: JoinHandle<std::io::Result<()>>,
    relay: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes in-flight requests, stops the relay.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.relay.abort();
        for worker in &self.workers {
            worker.abort();
        }
        let served = match self.serving.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        };
        // The workers' subscriptions are dropped once their tasks end; then
        // their Kafka members leave their groups (on threads of their own),
        // so that whoever takes over gets the partitions at once.
        for worker in self.workers {
            let _ = worker.await;
        }
        let _ = self.relay.await;
        self.ctx.clients.api.stop_serving();
        if !pinhole_bus::wait_for_leaves(std::time::Duration::from_secs(60)).await {
            tracing::warn!("consumer group members were still leaving after 60 s");
        }
        served
    }

    /// Serves until `signal` completes, then stops gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        tracing::info!("shutting down");
        self.stop().await
    }
}

/// `http://ADDR` for a bound address; a wildcard address becomes loopback,
/// which only this machine can reach, so that case is worth a warning.
fn bound_url(addr: SocketAddr) -> url::Url {
    let mut shown = addr;
    if addr.ip().is_unspecified() {
        tracing::warn!(%addr, "listening on all interfaces without PINHOLE_PUBLIC_URL: signed links will point at loopback");
        shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    // A socket address always makes a valid URL authority.
    url::Url::parse(&format!("http://{shown}")).unwrap_or_else(|_| unreachable!("{shown}"))
}

/// Connects the backends, migrates (the platform's tables and those
/// `roles` own), creates the topics and starts serving `roles` on
/// `settings.listen`.
pub async fn start(settings: Settings, roles: &[&str]) -> Result<Server, StartError> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| StartError::Listen(settings.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(settings.listen, e))?;
    let public_url = match &settings.public_url {
        Some(url) => url.clone(),
        None => bound_url(addr),
    };
    let signer = pinhole_blob::UrlSigner::new(public_url, signing_key(&settings).await?);
    if roles.contains(&pinhole_thumbnails::ROLE) {
        pinhole_thumbnails::transforms(&settings, &signer).map_err(StartError::Settings)?;
    }
    let search =
        if roles.contains(&pinhole_search::ROLE) {
            Some(pinhole_search::Engine::open(&settings).await.map_err(|e| {
                StartError::Backend {
                    backend: "search index",
                    url: settings.search_dir.display().to_string(),
                    reason: e.to_string(),
                }
            })?)
        } else {
            None
        };
    let backends = connect_backends(&settings, &signer).await?;
    pinhole_db::migrate(&backends.db, roles)
        .await
        .map_err(|e| StartError::Migrate(e.to_string()))?;
    let topics: Vec<TopicSpec<'_>> = pinhole_events::topics::ALL
        .iter()
        .map(|name| TopicSpec {
            name,
            partitions: settings.bus_partitions,
        })
        .collect();
    backends
        .bus
        .ensure_topics(&topics)
        .await
        .map_err(|e| StartError::Backend {
            backend: "bus",
            url: settings.bus.to_string(),
            reason: e.to_string(),
        })?;
    let outbox = Outbox::new();
    let tokens = pinhole_auth::Tokens::new(backends.db.clone(), Arc::clone(&backends.cache));
    let clients = role_clients(
        &settings,
        roles,
        &backends,
        &signer,
        &tokens,
        search.as_ref(),
    )?;
    let ctx = AppContext::new(pinhole_http::Context {
        memory: pinhole_http::MemoryBudget::new(settings.memory_budget),
        settings: Arc::new(settings),
        backends,
        outbox: outbox.clone(),
        signer,
        tokens,
        clients,
    });
    let router = app(&ctx, roles, search.as_ref());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });
    let relay = tokio::spawn(
        OutboxRelay::new(
            ctx.backends.db.clone(),
            Arc::clone(&ctx.backends.bus),
            outbox,
            RelayOptions::default(),
        )
        .run(),
    );
    let mut workers = Vec::new();
    for role in roles {
        match *role {
            pinhole_users::ROLE => workers.extend(pinhole_users::background(&ctx)),
            pinhole_images::ROLE => workers.extend(pinhole_images::background(&ctx)),
            pinhole_thumbnails::ROLE => workers.extend(pinhole_thumbnails::background(&ctx)),
            pinhole_gateway::ROLE => workers.extend(pinhole_gateway::background(&ctx)),
            pinhole_search::ROLE => {
                if let Some(engine) = &search {
                    workers.extend(pinhole_search::background(&ctx, engine));
                }
            }
            _ => {}
        }
    }
    tracing::info!(
        %addr,
        roles = %roles.join(","),
        database = %ctx.settings.database,
        cache = %ctx.settings.cache,
        bus = %ctx.settings.bus,
        blobs = %ctx.settings.blob,
        role_urls = %ctx.settings.role_urls,
        "pinhole is serving"
    );
    Ok(Server {
        addr,
        ctx,
        shutdown: Some(shutdown),
        serving,
        relay,
        workers,
    })
}

/// One client per called role: in process when `roles` hosts it, over HTTP
/// when `PINHOLE_ROLE_URLS` says where it is, otherwise one that fails every
/// call saying so (with a warning now, when a hosted role needs it). The
/// search role is asked in process only over its open `search` index.
pub fn role_clients(
    settings: &Settings,
    roles: &[&str],
    backends: &Backends,
    signer: &pinhole_blob::UrlSigner,
    tokens: &pinhole_auth::Tokens,
    search: Option<&Arc<pinhole_search::Engine>>,
) -> Result<Clients, StartError> {
    let hosted = |role: &str| roles.contains(&role);
    let remote = |role: &str| {
        if hosted(role) {
            None
        } else {
            settings.role_urls.get(role)
        }
    };
    for role in pinhole_config::CALLED_ROLES {
        if hosted(role) && settings.role_urls.get(role).is_some() {
            tracing::info!(
                role,
                "PINHOLE_ROLE_URLS names a role this process serves; it is asked in process"
            );
        }
    }
    let http = if pinhole_config::CALLED_ROLES
        .iter()
        .any(|role| remote(role).is_some())
    {
        if settings.internal_token.is_none() {
            tracing::warn!(
                "PINHOLE_ROLE_URLS is set without PINHOLE_INTERNAL_TOKEN: calls to other roles go unauthenticated, and their /internal routes are open"
            );
        }
        Some(
            InternalHttp::new(settings.internal_token.clone()).map_err(|e| {
                StartError::Settings(format!("cannot make the HTTP client for other roles: {e}"))
            })?,
        )
    } else {
        None
    };
    let users: Arc<dyn UsersClient> = if hosted(pinhole_users::ROLE) {
        Arc::new(pinhole_users::InProcessUsers::new(
            tokens.clone(),
            backends.db.clone(),
        ))
    } else if let (Some(url), Some(http)) = (remote(pinhole_users::ROLE), &http) {
        Arc::new(HttpUsers::new(url, http, Arc::clone(&backends.cache)))
    } else {
        Arc::new(NotConfigured {
            role: pinhole_users::ROLE,
        })
    };
    let images: Arc<dyn ImagesClient> = if hosted(pinhole_images::ROLE) {
        Arc::new(pinhole_images::InProcessImages::new(
            backends.db.clone(),
            pinhole_images::Links {
                blobs: Arc::clone(&backends.blobs),
                signer: signer.clone(),
            },
        ))
    } else if let (Some(url), Some(http)) = (remote(pinhole_images::ROLE), &http) {
        Arc::new(HttpImages::new(url, http))
    } else {
        Arc::new(NotConfigured {
            role: pinhole_images::ROLE,
        })
    };
    let search: Arc<dyn SearchClient> = match search {
        Some(engine) if hosted(pinhole_search::ROLE) => {
            Arc::new(pinhole_search::InProcessSearch::new(Arc::clone(engine)))
        }
        _ => match (remote(pinhole_search::ROLE), &http) {
            (Some(url), Some(http)) => Arc::new(HttpSearch::new(url, http)),
            _ => Arc::new(NotConfigured {
                role: pinhole_search::ROLE,
            }),
        },
    };
    for (caller, callees) in CALLS {
        if !hosted(caller) {
            continue;
        }
        for callee in *callees {
            if !hosted(callee) && settings.role_urls.get(callee).is_none() {
                tracing::warn!(
                    role = caller,
                    needs = callee,
                    "the {caller} role needs the {callee} role, which this process neither serves nor can reach: its requests that need it will fail with 503 role-unavailable; set PINHOLE_ROLE_URLS={callee}=http://HOST:PORT"
                );
            }
        }
    }
    let remote_apis = pinhole_config::CALLED_ROLES
        .iter()
        .filter_map(|role| remote(role).map(|url| ((*role).to_owned(), url.to_string())))
        .collect();
    let api = PublicApi::new(roles, remote_apis).map_err(|e| {
        StartError::Settings(format!("cannot make the HTTP client for other roles: {e}"))
    })?;
    Ok(Clients {
        users,
        images,
        search,
        api,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_all_or_a_list() {
        assert_eq!(parse_roles("all").expect("all"), ROLES);
        assert_eq!(
            parse_roles("gateway, images").expect("two"),
            vec!["gateway", "images"]
        );
        let err = parse_roles("gateway,photos").expect_err("unknown");
        assert!(err.contains("photos") && err.contains("sns-sync"), "{err}");
        assert!(parse_roles(",").is_err());
    }
}
