//! The layers around every request: a request id (taken from
//! `x-request-id` or made), a tracing span with the matched route, a
//! timeout, and request metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics::SharedString;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// The method as a metrics label: one of a fixed set, so that made-up
/// methods cannot make new series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn track(request: Request, next: Next) -> Response {
    let route = route_of(&request);
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", SharedString::const_str(method)),
        ("route", SharedString::from_owned(route)),
        (
            "status",
            SharedString::from_owned(response.status().as_u16().to_string()),
        ),
    ];
    metrics::counter!("pinhole_http_requests_total", &labels).increment(1);
    metrics::histogram!("pinhole_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A handler that panicked: 500 with the usual body; the panic is logged.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    axum::response::IntoResponse::into_response(crate::ApiError::internal(format!(
        "handler panicked: {detail}"
    )))
}

/// Wraps `router` in the layers every request passes through. Requests to
/// routes in `untimed` (matched paths, e.g. uploads that stream for as long
/// as the client's network needs; they time out between body chunks
/// instead) are not cut off after `timeout`.
pub fn apply_layers(router: Router, timeout: Duration, untimed: &[&'static str]) -> Router {
    let untimed = Arc::new(untimed.to_vec());
    router
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(track))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let route = request.extensions().get::<MatchedPath>();
            let timed = !route.is_some_and(|r| untimed.contains(&r.as_str()));
            async move {
                if !timed {
                    return next.run(request).await;
                }
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => axum::response::IntoResponse::into_response(crate::ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        crate::Common::RequestTimeout,
                        format!("the request took longer than {timeout:?}"),
                    )),
                }
            }
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        route = %route_of(request),
                        uri = %request.uri().path(),
                        request_id = %request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
