//! The `gateway` role: the web pages (the image detail page, explore) and
//! the detail page's JSON twin, assembled from the images, users and search
//! roles through their typed clients only (`AppContext::clients`), never
//! from their tables.
//!
//! Its routes are mounted by `pinhole serve` when the role is selected.

pub mod assemble;
mod assets;
mod caching;
pub mod pages;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use pinhole_http::clients::{ClientError, Searched, UserImages};
use pinhole_http::{ApiError, AppContext, Common, MaybeAuth};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::assemble::{Detail, Failure};
use crate::caching::{Page, html_response};
use crate::pages::GridPage;

pub use assets::css_path;

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "gateway";

/// Images on the explore page.
const EXPLORE: u32 = 30;
/// Images per search results page, unless `limit` says otherwise.
const RESULTS: &str = "30";

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(detail_json))
        .route("/", axum::routing::get(explore_page))
        .route("/p/{id}", axum::routing::get(detail_page))
        .route("/search", axum::routing::get(search_page))
        .route("/u/{username}", axum::routing::get(profile_page))
        .route("/static/{file}", axum::routing::get(assets::asset))
        .with_state(ctx.clone())
}

/// `https://host` of links that leave the site: the public URL when set,
/// else the address the request came to.
fn base_url(ctx: &AppContext, headers: &HeaderMap) -> String {
    if let Some(url) = &ctx.settings.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The detail page of an image.
#[tracing::instrument(skip_all, fields(image_id = %id))]
async fn detail_page(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = viewer.map(|p| p.user_id);
    let Some(image_id) = pages::parse_id(&id) else {
        return html_response(StatusCode::NOT_FOUND, pages::not_found().into_string());
    };
    match assemble::detail(&ctx.clients, image_id, viewer).await {
        Ok(detail) => {
            let base = base_url(&ctx, &headers);
            let body = pages::detail(&detail, &base).into_string();
            Page {
                viewer,
                validator: caching::validator(&detail, &base),
                content_type: "text/html; charset=utf-8",
                body,
            }
            .respond(&headers)
        }
        Err(Failure::NotFound) => {
            html_response(StatusCode::NOT_FOUND, pages::not_found().into_string())
        }
        Err(Failure::Unavailable) => html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::unavailable().into_string(),
        ),
    }
}

/// Everything the image detail page shows, in one request: the image, its
/// author, comments and related images (with why), and which optional
/// parts could not be had in time.
#[utoipa::path(get, path = "/api/v1/images/{id}/detail", tag = "gateway",
    params(("id" = String, Path, description = "image id")),
    responses(
        (status = 200, body = Detail, description = "With `ETag`; 304 on a matching `If-None-Match`"),
        (status = 401, description = "Bad token (`invalid-token`)", body = pinhole_http::ErrorBody),
        (status = 404, description = "No such image, or not one the caller may see (`image-not-found`)", body = pinhole_http::ErrorBody),
        (status = 503, description = "The images role is unavailable (`role-unavailable`)", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(image_id = %id))]
async fn detail_json(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(Common::ImageNotFound, "no such image");
    let viewer = viewer.map(|p| p.user_id);
    let image_id = pages::parse_id(&id).ok_or_else(not_found)?;
    let detail = match assemble::detail(&ctx.clients, image_id, viewer).await {
        Ok(detail) => detail,
        Err(Failure::NotFound) => return Err(not_found()),
        Err(Failure::Unavailable) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Common::RoleUnavailable,
                "the images role, which this request needs, is unavailable; try again shortly",
            ));
        }
    };
    let body = serde_json::to_string(&detail).map_err(ApiError::internal)?;
    Ok(Page {
        viewer,
        validator: caching::validator(&detail, "json"),
        content_type: "application/json",
        body,
    }
    .respond(&headers))
}

/// `GET /`: explore's images.
#[tracing::instrument(skip_all)]
async fn explore_page(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    headers: HeaderMap,
) -> Response {
    let viewer = viewer.map(|p| p.user_id);
    let call = ctx.clients.images.explore(viewer, EXPLORE);
    match tokio::time::timeout(assemble::IMAGE_DEADLINE, call).await {
        Ok(Ok(images)) => {
            let body = pages::grid("Explore", Some(&images), &GridPage::default()).into_string();
            Page {
                viewer,
                validator: caching::list_validator(&images, "explore"),
                content_type: "text/html; charset=utf-8",
                body,
            }
            .respond(&headers)
        }
        failed => {
            match failed {
                Ok(Err(e)) => {
                    tracing::error!(error = %assemble::chain(&e), "explore is unavailable")
                }
                _ => tracing::error!("explore is unavailable: no answer in time"),
            }
            html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::grid("Explore", None, &GridPage::default()).into_string(),
            )
        }
    }
}

/// `GET /search?q=…` (and every parameter of the search API): the results
/// as a grid, under a search box.
#[tracing::instrument(skip_all)]
async fn search_page(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let viewer = viewer.map(|p| p.user_id);
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    };
    let q = find("q").unwrap_or_default();
    let heading = match (find("q"), find("tags")) {
        (Some(q), _) => format!("Results for “{q}”"),
        (None, Some(tags)) => format!("Tagged #{tags}"),
        (None, None) => "Search".to_owned(),
    };
    let mut params = pairs.clone();
    if find("limit").is_none() {
        params.push(("limit".to_owned(), RESULTS.to_owned()));
    }
    let found = async {
        let searched = ctx.clients.search.search(&params, viewer).await?;
        let ids = match searched {
            Searched::Found(ids) => ids,
            Searched::Invalid { field, message } => return Ok(Err(format!("{field}: {message}"))),
        };
        let images = ctx.clients.images.views(&ids.ids, viewer).await?;
        Ok::<_, ClientError>(Ok((images, ids.next_cursor)))
    };
    match tokio::time::timeout(assemble::IMAGE_DEADLINE, found).await {
        Ok(Ok(Ok((images, next)))) => {
            let more = next.map(|cursor| {
                let mut next: Vec<(String, String)> = pairs
                    .iter()
                    .filter(|(k, _)| k != "cursor")
                    .cloned()
                    .collect();
                next.push(("cursor".to_owned(), cursor));
                format!(
                    "/search?{}",
                    serde_urlencoded::to_string(&next).unwrap_or_default()
                )
            });
            let extra = GridPage {
                query: Some(q),
                more: more.as_deref(),
                problem: None,
            };
            let body = pages::grid(&heading, Some(&images), &extra).into_string();
            Page {
                viewer,
                validator: caching::validator(&(&images, &more, &heading), "search"),
                content_type: "text/html; charset=utf-8",
                body,
            }
            .respond(&headers)
        }
        Ok(Ok(Err(problem))) => {
            let extra = GridPage {
                query: Some(q),
                more: None,
                problem: Some(&problem),
            };
            html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::grid(&heading, None, &extra).into_string(),
            )
        }
        failed => {
            match failed {
                Ok(Err(e)) => {
                    tracing::error!(error = %assemble::chain(&e), "search is unavailable")
                }
                _ => tracing::error!("search is unavailable: no answer in time"),
            }
            let extra = GridPage {
                query: Some(q),
                ..GridPage::default()
            };
            html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::grid(&heading, None, &extra).into_string(),
            )
        }
    }
}

/// `GET /u/{username}`: a person's newest images.
#[tracing::instrument(skip_all)]
async fn profile_page(
    State(ctx): State<AppContext>,
    MaybeAuth(viewer): MaybeAuth,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = viewer.map(|p| p.user_id);
    let call = ctx.clients.images.user_images(&username, viewer, EXPLORE);
    match tokio::time::timeout(assemble::IMAGE_DEADLINE, call).await {
        Ok(Ok(UserImages::Shown(images))) => {
            let name = images
                .first()
                .and_then(|i| i.pointer("/owner/display_name").and_then(|n| n.as_str()))
                .map(str::to_owned);
            let heading = match name {
                Some(name) => format!("{name} (@{username})"),
                None => format!("@{username}"),
            };
            let body = pages::grid(&heading, Some(&images), &GridPage::default()).into_string();
            Page {
                viewer,
                validator: caching::validator(&(&images, &heading), "profile"),
                content_type: "text/html; charset=utf-8",
                body,
            }
            .respond(&headers)
        }
        Ok(Ok(UserImages::Private)) => {
            let extra = GridPage {
                problem: Some(
                    "This account is private: only its approved followers see its photos.",
                ),
                ..GridPage::default()
            };
            html_response(
                StatusCode::FORBIDDEN,
                pages::grid(&format!("@{username}"), None, &extra).into_string(),
            )
        }
        Ok(Ok(UserImages::NotFound)) => {
            html_response(StatusCode::NOT_FOUND, pages::not_found().into_string())
        }
        failed => {
            match failed {
                Ok(Err(e)) => {
                    tracing::error!(error = %assemble::chain(&e), "a profile is unavailable")
                }
                _ => tracing::error!("a profile is unavailable: no answer in time"),
            }
            html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::grid(&format!("@{username}"), None, &GridPage::default()).into_string(),
            )
        }
    }
}
