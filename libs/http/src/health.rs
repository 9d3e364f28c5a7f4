//! `/healthz` (alive), `/readyz` (backends reachable) and `/metrics`
//! (Prometheus), mounted by every role.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppContext, BackendStatus};

#[derive(Clone)]
struct HealthState {
    ctx: AppContext,
    roles: Arc<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// Always `ok`: the process answers.
    pub status: &'static str,
    pub version: &'static str,
    /// The roles this process runs.
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyBody {
    /// `ready` when every backend answers, `unavailable` otherwise.
    pub status: &'static str,
    pub backends: Vec<BackendStatus>,
}

/// How often histogram samples are folded into their summaries.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus recorder.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder was installed first; the handle
        // then renders what this recorder saw, which is nothing.
        let _ = metrics::set_global_recorder(recorder);
        // Histogram samples wait in buckets until upkeep folds them in:
        // without it, a process nobody scrapes keeps every sample.
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "metrics upkeep could not start; samples are folded in when scraped");
        }
        handle
    })
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process is alive", body = HealthBody)))]
async fn healthz(State(state): State<HealthState>) -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        roles: state.roles.as_ref().clone(),
    })
}

/// Readiness: every backend answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Every backend answers", body = ReadyBody),
        (status = 503, description = "A backend does not answer", body = ReadyBody),
    ))]
async fn readyz(State(state): State<HealthState>) -> (StatusCode, Json<ReadyBody>) {
    let backends = state.ctx.backends.readiness().await;
    let ready = backends.iter().all(|b| b.error.is_none());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(ReadyBody {
            status: if ready { "ready" } else { "unavailable" },
            backends,
        }),
    )
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics_route() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics_handle().render(),
    )
}

/// The ops routes for a process running `roles`.
pub fn health_router(ctx: &AppContext, roles: &[&str]) -> OpenApiRouter {
    let state = HealthState {
        ctx: ctx.clone(),
        roles: Arc::new(roles.iter().map(|r| (*r).to_owned()).collect()),
    };
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_route))
        .with_state(state)
}
