//! What every role is given: settings, backends, and clients of the other
//! roles.

use std::sync::Arc;
use std::time::Duration;

use pinhole_blob::{SharedBlobs, UrlSigner};
use pinhole_bus::SharedBus;
use pinhole_cache::SharedCache;
use pinhole_config::Settings;
use pinhole_db::Outbox;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;
use utoipa::ToSchema;

/// The four backends, whichever implementation each one is.
#[derive(Clone)]
pub struct Backends {
    pub db: DatabaseConnection,
    pub cache: SharedCache,
    pub bus: SharedBus,
    pub blobs: SharedBlobs,
}

/// One backend's health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackendStatus {
    /// `database`, `cache`, `bus` or `blobs`.
    pub name: &'static str,
    /// The implementation, e.g. `sqlite`, `postgres`, `redis`, `kafka`, `s3`.
    pub kind: &'static str,
    /// `ok` or `error`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

async fn probe<E: std::fmt::Display>(
    name: &'static str,
    kind: &'static str,
    check: impl Future<Output = Result<(), E>>,
) -> BackendStatus {
    let error = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    BackendStatus {
        name,
        kind,
        status: if error.is_none() { "ok" } else { "error" },
        error,
    }
}

impl Backends {
    /// Asks every backend whether it answers, all at once.
    pub async fn readiness(&self) -> Vec<BackendStatus> {
        let db_kind = match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "postgres",
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            sea_orm::DatabaseBackend::MySql => "mysql",
        };
        let (db, cache, bus, blobs) = tokio::join!(
            probe("database", db_kind, self.db.ping()),
            probe("cache", self.cache.kind(), self.cache.check()),
            probe("bus", self.bus.kind(), self.bus.check()),
            probe("blobs", self.blobs.kind(), self.blobs.check()),
        );
        vec![db, cache, bus, blobs]
    }
}

/// Settings, backends and the outbox, shared by every role in the process:
/// one allocation, so that a clone (axum clones the state of a route for
/// each request) is one reference count. Reads go through to [`Context`];
/// a change (tests swap a backend) makes this handle's own copy.
#[derive(Clone)]
pub struct AppContext(Arc<Context>);

impl AppContext {
    pub fn new(context: Context) -> Self {
        Self(Arc::new(context))
    }
}

impl std::ops::Deref for AppContext {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.0
    }
}

impl std::ops::DerefMut for AppContext {
    fn deref_mut(&mut self) -> &mut Context {
        Arc::make_mut(&mut self.0)
    }
}

/// What an [`AppContext`] holds.
#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub backends: Backends,
    pub outbox: Outbox,
    /// Signs links to blobs served by this server (the local blob store's,
    /// and S3's with `PINHOLE_BLOB_LINKS=proxy` or `redirect`).
    pub signer: UrlSigner,
    /// The users role's token store: issues, refreshes and revokes bearer
    /// tokens. Other roles verify tokens through `clients.users`.
    pub tokens: pinhole_auth::Tokens,
    /// What this role asks the other roles, in process or over HTTP.
    pub clients: crate::Clients,
    /// Bytes of whole bodies this process may hold in memory at once
    /// (`PINHOLE_MEMORY_BUDGET`), shared by every role in it.
    pub memory: crate::MemoryBudget,
}
