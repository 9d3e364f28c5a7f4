//! Page-view events: every page shown (200 or 304) becomes a `page.viewed`
//! event on `pinhole.pageviews`, for view counts (the images role) and the
//! warehouse.
//!
//! Pages do not wait for the bus: a view is handed to a bounded queue and a
//! task publishes the queue in batches. When the bus falls behind and the
//! queue is full, views are dropped and counted
//! (`pinhole_gateway_page_views_dropped_total`) rather than slowing pages.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use pinhole_bus::{EventBus, Message};
use pinhole_events::pageviews::PageViewed;
use pinhole_events::{Event, OutgoingEvent};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::visitor::Visitor;

/// Views waiting to be published at most.
const QUEUE: usize = 10_000;
/// Views per publish at most.
const BATCH: usize = 500;
/// `pinhole_gateway_page_views_dropped_total`.
const DROPPED: &str = "pinhole_gateway_page_views_dropped_total";

/// Where views go.
pub struct Views {
    queue: Option<mpsc::Sender<PageViewed>>,
}

impl Views {
    /// A queue published to `bus` by a task that ends with the last
    /// holder of this (the router). Outside a runtime (no server), views
    /// go nowhere.
    pub fn new(bus: Arc<dyn EventBus>) -> Arc<Self> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Arc::new(Self { queue: None });
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        runtime.spawn(publish(bus, rx));
        Arc::new(Self { queue: Some(tx) })
    }

    /// Hands `view` over, without waiting.
    pub fn record(&self, view: PageViewed) {
        if let Some(queue) = &self.queue
            && queue.try_send(view).is_err()
        {
            metrics::counter!(DROPPED).increment(1);
        }
    }
}

/// Publishes the queue in batches until every sender is gone.
async fn publish(bus: Arc<dyn EventBus>, mut rx: mpsc::Receiver<PageViewed>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let events: Vec<(String, Vec<u8>)> = batch
            .drain(..)
            .map(|view| OutgoingEvent::encode(&view))
            .collect();
        let messages: Vec<Message<'_>> = events
            .iter()
            .map(|(key, payload)| Message {
                topic: <PageViewed as Event>::TOPIC,
                key: key.as_bytes(),
                payload,
            })
            .collect();
        let failed = bus
            .publish(&messages)
            .await
            .into_iter()
            .filter(Result::is_err)
            .count();
        if failed > 0 {
            metrics::counter!(DROPPED).increment(failed as u64);
            tracing::warn!(failed, "page views could not be published");
        }
    }
}

/// The host of `Referer`, when it has one.
fn referrer_host(headers: &HeaderMap) -> Option<String> {
    let referrer = headers.get(header::REFERER)?.to_str().ok()?;
    url::Url::parse(referrer)
        .ok()?
        .host_str()
        .map(str::to_owned)
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(agent.chars().take(256).collect())
}

/// What a view keeps of its request's headers.
pub struct Asked {
    referrer_host: Option<String>,
    user_agent: Option<String>,
}

impl Asked {
    pub fn of(headers: &HeaderMap) -> Self {
        Self {
            referrer_host: referrer_host(headers),
            user_agent: user_agent(headers),
        }
    }
}

/// A view of a page, as the request asked for it.
pub fn view(
    page: &str,
    image_id: Option<Uuid>,
    path: &str,
    format: &str,
    status: StatusCode,
    viewer_id: Option<Uuid>,
    asked: Asked,
) -> PageViewed {
    PageViewed {
        page: page.to_owned(),
        target: image_id.map_or_else(|| path.to_owned(), |id| id.to_string()),
        image_id,
        path: path.to_owned(),
        format: format.to_owned(),
        status: status.as_u16(),
        viewer_id,
        referrer_host: asked.referrer_host,
        user_agent: asked.user_agent,
        viewed_at: chrono::Utc::now(),
    }
}

/// Whether a page answered with `status` was shown.
pub fn shown(status: StatusCode) -> bool {
    status == StatusCode::OK || status == StatusCode::NOT_MODIFIED
}

/// Middleware of the pages: a view for each page shown. Inside the session
/// middleware (it reads the visitor), outside the page cache (a page from
/// the cache is a view too).
pub async fn count(State(views): State<Arc<Views>>, request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let page = match request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some("/") => "explore",
        Some("/p/{id}") => "image",
        Some("/search") => "search",
        Some("/u/{username}") => "profile",
        _ => return next.run(request).await,
    };
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let image_id = (page == "image")
        .then(|| path.trim_start_matches("/p/").split(['?', '/']).next())
        .flatten()
        .and_then(|id| id.parse().ok());
    let viewer = request.extensions().get::<Visitor>().map(|v| v.user_id);
    let asked = Asked::of(request.headers());
    let response = next.run(request).await;
    if shown(response.status()) {
        views.record(view(
            page,
            image_id,
            &path,
            "html",
            response.status(),
            viewer,
            asked,
        ));
    }
    response
}
