//! The `images` role: uploads (multipart, resumable tus, batches),
//! originals, metadata, comments, likes, feeds and processing tasks.
//!
//! Its routes are mounted by `pinhole serve` when the role is selected; its
//! workers (the event consumer that moves tasks forward, callback delivery,
//! and the sweeps of expired uploads and unreferenced originals) are started
//! by [`background`].

mod access;
pub mod callback;
mod callback_url;
pub mod domain;
mod edits;
pub mod entity;
pub mod errors;
mod events;
mod feeds;
mod internal;
mod outgoing;
mod present;
mod purge;
mod quota;
mod read_model;
mod records;
mod social;
pub mod store;
mod tasks;
mod upload;
mod view_counts;
pub mod views;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use pinhole_events::topics;
use pinhole_http::AppContext;
use tokio::task::JoinHandle;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use errors::ImagesError;
pub use internal::InProcessImages;
pub use present::Links;

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "images";

/// Routes that stream request bodies for as long as the client needs (they
/// time out between chunks instead of overall).
pub const UNTIMED_ROUTES: &[&str] = &["/api/v1/images", "/api/v1/uploads", "/api/v1/uploads/{id}"];

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(upload::multipart::upload))
        .layer(DefaultBodyLimit::disable())
        .routes(routes!(
            records::get_image,
            records::update_image,
            records::delete_image
        ))
        .routes(routes!(records::original))
        .routes(routes!(edits::create_edit))
        .routes(routes!(edits::list_versions))
        .routes(routes!(edits::version_original))
        .routes(routes!(edits::delete_version))
        .routes(routes!(social::add_comment, social::list_comments))
        .routes(routes!(social::delete_comment))
        .routes(routes!(social::like_image, social::unlike_image))
        .routes(routes!(social::list_likes))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::list_tasks))
        .routes(routes!(feeds::home))
        .routes(routes!(feeds::grid))
        .routes(routes!(feeds::explore))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(upload::tus::options, upload::tus::create))
                .routes(routes!(
                    upload::tus::head,
                    upload::tus::patch,
                    upload::tus::terminate
                ))
                .layer(axum::middleware::from_fn(upload::tus::protocol)),
        )
        .with_state(ctx.clone())
        .merge(
            OpenApiRouter::new()
                .routes(routes!(internal::image))
                .routes(routes!(internal::views))
                .routes(routes!(internal::comments))
                .routes(routes!(internal::explore))
                .routes(routes!(internal::by_user))
                .routes(routes!(internal::export_images))
                .layer(axum::middleware::from_fn_with_state(
                    ctx.clone(),
                    pinhole_http::internal_only,
                ))
                .with_state(ctx.clone()),
        )
}

/// Consumer group of the images role.
pub const GROUP: &str = "images";

/// Starts the role's workers.
pub fn background(ctx: &AppContext) -> Vec<JoinHandle<()>> {
    // Image records name the place of their position: read the places now
    // (a fraction of a second) rather than in the first request showing one.
    drop(tokio::task::spawn_blocking(pinhole_geo::preload_places));
    // Bodies a crash left in the spool.
    let settings = std::sync::Arc::clone(&ctx.settings);
    drop(tokio::task::spawn_blocking(move || {
        upload::body::clear_stale(&settings)
    }));
    let purges = purge::Purges::default();
    let consumer = {
        let ctx = ctx.clone();
        let purges = purges.clone();
        tokio::spawn(async move {
            let handler_ctx = ctx.clone();
            pinhole_bus::consume(
                ctx.backends.bus.clone(),
                GROUP.to_owned(),
                vec![topics::IMAGES, topics::USERS],
                pinhole_db::dead_letters::parking(
                    ctx.backends.db.clone(),
                    ctx.settings.event_max_attempts,
                ),
                move |record| {
                    let ctx = handler_ctx.clone();
                    let purges = purges.clone();
                    async move { events::handle(&ctx, &purges, record).await }
                },
            )
            .await;
        })
    };
    let callbacks = tokio::spawn(callback::run(ctx.clone()));
    let views = tokio::spawn(view_counts::run(ctx.clone()));
    let purger = tokio::spawn(purges.run(ctx.clone()));
    let sweeper = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let (db, blobs) = (&ctx.backends.db, ctx.backends.blobs.as_ref());
            let mut last_check = tokio::time::Instant::now();
            let period = ctx
                .settings
                .blob_sweep_interval
                .min(Duration::from_secs(60));
            loop {
                tokio::time::sleep(period).await;
                match upload::tus::expire(&ctx).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads = n, "expired uploads removed"),
                    Err(e) => tracing::warn!(error = %e.message, "removing expired uploads failed"),
                }
                if let Err(e) = store::collect_all(db, blobs, &ctx.outbox).await {
                    tracing::warn!(error = %e, "collecting originals failed");
                }
                if last_check.elapsed() >= ctx.settings.blob_sweep_interval {
                    last_check = tokio::time::Instant::now();
                    let grace = ctx.settings.blob_orphan_grace;
                    match store::check(db, blobs, &ctx.outbox, grace, true).await {
                        Ok(r) if r.removed > 0 || r.missing > 0 => tracing::warn!(
                            removed = r.removed, missing = r.missing, examples = ?r.missing_examples,
                            "blob sweep removed orphans or found missing objects"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "blob sweep failed"),
                    }
                }
            }
        })
    };
    vec![consumer, callbacks, views, purger, sweeper]
}
