//! The `thumbnails` role: derivative images, on-demand signed transforms and
//! edit operations.
//!
//! Its routes (`/t/…` transforms) are mounted by `pinhole serve` when the
//! role is selected; its workers (started by [`background`]) consume upload
//! and edit jobs from the urgent topic and re-processing jobs from the
//! background topic, and report progress as image events. It owns the
//! `derivatives/` and `edits/` prefixes of the blob store ([`store`]).

pub mod backfill;
pub mod catalog;
mod entity;
pub mod errors;
mod on_request;
mod pipeline;
pub mod store;
mod transform;
mod worker;

use std::sync::Arc;

use pinhole_blob::UrlSigner;
use pinhole_config::Settings;
use pinhole_http::AppContext;
use pinhole_transform::{Caps, Presets, Signer};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use errors::ThumbnailsError;
pub use pinhole_events::images::derivative_prefix;
pub use pipeline::{PIPELINE, process};
pub use store::derivative_key;
pub use transform::Transforms;
pub use worker::{Lane, Manifest};

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "thumbnails";

/// Consumer group of the urgent workers (fresh uploads).
pub const GROUP: &str = "thumbnails";

/// Consumer group of the edit workers.
pub const EDITS_GROUP: &str = "thumbnails-edits";

/// Consumer group of the background workers (re-processing, backfills).
pub const BACKGROUND_GROUP: &str = "thumbnails-background";

/// The transform URL signer: the configured key/salt pairs, or one pair
/// derived from the signing key (so `pinhole serve` with no settings signs
/// and verifies consistently across restarts).
pub fn transform_signer(settings: &Settings, links: &UrlSigner) -> Result<Signer, String> {
    match &settings.transform_keys {
        Some(pairs) => pinhole_transform::parse_key_pairs(pairs.expose_secret())
            .and_then(Signer::new)
            .map_err(|e| e.to_string()),
        None => Signer::new(vec![(
            links.sign_message(b"pinhole transform key").into_bytes(),
            links.sign_message(b"pinhole transform salt").into_bytes(),
        )])
        .map_err(|e| e.to_string()),
    }
}

/// Signer, presets and caps from the settings; an error names the setting.
pub fn transforms(settings: &Settings, links: &UrlSigner) -> Result<Transforms, String> {
    let signer =
        transform_signer(settings, links).map_err(|e| format!("PINHOLE_TRANSFORM_KEYS: {e}"))?;
    let presets = Presets::standard()
        .with(&settings.transform_presets)
        .map_err(|e| format!("PINHOLE_TRANSFORM_PRESETS: {e}"))?
        .allow_unsigned(&settings.transform_unsigned_presets)
        .map_err(|e| format!("PINHOLE_TRANSFORM_UNSIGNED_PRESETS: {e}"))?;
    Ok(Transforms {
        signer: Arc::new(signer),
        presets: Arc::new(presets),
        caps: Caps {
            max_output_pixels: settings.transform_max_output_pixels,
            max_dimension: 8192,
        },
    })
}

/// Keys hold slashes, so the route of derivatives made on request is a
/// wildcard, which utoipa-axum cannot derive; it is documented as
/// `/t/derivatives/{key}`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(on_request::derivative))]
struct OnRequestDoc;

/// The role's HTTP routes.
pub fn router(ctx: &AppContext, transforms: Transforms) -> OpenApiRouter {
    let made_on_request = OpenApiRouter::with_openapi(<OnRequestDoc as utoipa::OpenApi>::openapi())
        .route(
            "/t/derivatives/{*rest}",
            axum::routing::get(on_request::derivative),
        )
        .with_state(ctx.clone());
    OpenApiRouter::new()
        .routes(routes!(transform::transform))
        .with_state((ctx.clone(), transforms))
        .merge(made_on_request)
}

/// Starts the role's workers: one urgent group member per core, and
/// cores − 1 (at least one) edit members and as many background members.
pub fn background(ctx: &AppContext) -> Vec<JoinHandle<()>> {
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    let mut workers: Vec<JoinHandle<()>> = (0..cores)
        .map(|_| tokio::spawn(worker::run(ctx.clone(), Lane::Urgent)))
        .collect();
    for lane in [Lane::Edits, Lane::Background] {
        workers.extend(
            (0..cores.saturating_sub(1).max(1))
                .map(|_| tokio::spawn(worker::run(ctx.clone(), lane))),
        );
    }
    workers.push(tokio::spawn(catalog::run(ctx.clone())));
    workers.push(tokio::spawn(store::sweep(ctx.clone())));
    workers
}
