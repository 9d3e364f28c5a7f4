//! The `gateway` role: the web pages (the image detail page, explore) and
//! the detail page's JSON twin, assembled from the images, users and search
//! roles through their typed clients only (`AppContext::clients`), never
//! from their tables.
//!
//! Its routes are mounted by `pinhole serve` when the role is selected.

pub mod assemble;
mod assets;
mod caching;
mod forms;
mod fragments;
mod invalidate;
mod page_cache;
pub mod pages;
mod views;
pub mod visitor;
pub mod web;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use pinhole_http::clients::{ClientError, Searched, UserImages};
use pinhole_http::{ApiError, AppContext, ClientIp, Common};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::assemble::{Detail, Failure};
use crate::caching::{Page, html_response};
use crate::pages::GridPage;

pub use assets::css_path;
pub use invalidate::background;

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "gateway";

/// Routes that stream a body of any length (an upload passed through to
/// the images role, which times it itself): no overall deadline.
pub const UNTIMED_ROUTES: &[&str] = &["/upload"];

/// Images on the explore page.
const EXPLORE: u32 = 30;
/// Images per search results page, unless `limit` says otherwise.
const RESULTS: &str = "30";

/// The role's HTTP routes.
pub fn router(ctx: &AppContext) -> OpenApiRouter {
    use axum::routing::{get, post};
    let views = views::Views::new(Arc::clone(&ctx.backends.bus));
    let pages = OpenApiRouter::new()
        .route("/", get(explore_page))
        .route(
            "/p/{id}",
            axum::routing::get(detail_page).layer(axum::middleware::from_fn_with_state(
                page_cache::PageCache::new(ctx),
                page_cache::serve,
            )),
        )
        .route("/search", get(search_page))
        .route("/u/{username}", get(profile_page))
        .route("/login", get(web::login_page).post(web::log_in))
        .route("/signup", get(web::signup_page).post(web::sign_up))
        .route("/logout", post(web::log_out))
        .route("/upload", get(web::upload_page).post(web::upload))
        .route("/p/{id}/like", post(web::like))
        .route("/p/{id}/unlike", post(web::unlike))
        .route("/p/{id}/comments", post(web::comment))
        .route("/u/{username}/follow", post(web::follow))
        .route("/u/{username}/unfollow", post(web::unfollow))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&views),
            views::count,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(ctx.clone()),
            web::sessions,
        ));
    OpenApiRouter::new()
        .routes(routes!(detail_json))
        .layer(axum::middleware::from_fn_with_state(views, count_json))
        .route("/static/{file}", get(assets::asset))
        .merge(pages)
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
    ClientIp(ip): ClientIp,
    viewer: web::Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visitor = viewer.0.clone();
    let viewer = viewer.id();
    let Some(image_id) = pages::parse_id(&id) else {
        return html_response(StatusCode::NOT_FOUND, pages::not_found().into_string());
    };
    match assemble::detail(&ctx, image_id, viewer).await {
        Ok(detail) => {
            let base = base_url(&ctx, &headers);
            let standing = standing(&ctx, visitor.as_ref(), &detail, ip).await;
            let body = pages::detail(&detail, &base, visitor.as_ref(), standing).into_string();
            let csrf = visitor.as_ref().map(|v| v.csrf.as_str());
            Page {
                viewer,
                validator: caching::validator(&(&detail, standing, csrf), &base),
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

/// Where a logged-in `visitor` stands with the author of `detail`, within
/// the deadline of a part; `None` for anyone else, the author, or no answer
/// in time.
async fn standing(
    ctx: &AppContext,
    visitor: Option<&web::Visitor>,
    detail: &Detail,
    ip: std::net::IpAddr,
) -> Option<web::Standing> {
    let visitor = visitor?;
    let author = detail.image.pointer("/owner/username")?.as_str()?;
    if author == visitor.username {
        return None;
    }
    tokio::time::timeout(
        assemble::PART_DEADLINE,
        web::standing(ctx, visitor, author, ip),
    )
    .await
    .ok()
    .flatten()
}

/// The detail page's data, and where a logged-in viewer stands with its
/// author.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DetailAnswer {
    #[serde(flatten)]
    pub detail: Detail,
    /// For a logged-in viewer who is not the author: whether they follow
    /// the author (or asked to). Absent otherwise, or when the users role
    /// did not answer in time.
    pub viewer: Option<web::Standing>,
}

/// A view for each detail answered as JSON (the viewer is the token's,
/// which the handler leaves in the answer's extensions).
async fn count_json(
    State(views): State<Arc<views::Views>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let asked = views::Asked::of(request.headers());
    let response = next.run(request).await;
    if let Some(Shown { image_id, viewer }) = response.extensions().get::<Shown>().copied()
        && views::shown(response.status())
    {
        views.record(views::view(
            "image",
            Some(image_id),
            &path,
            "json",
            response.status(),
            viewer,
            asked,
        ));
    }
    response
}

/// Which image a detail answer showed, to whom.
#[derive(Debug, Clone, Copy)]
struct Shown {
    image_id: uuid::Uuid,
    viewer: Option<uuid::Uuid>,
}

/// Everything the image detail page shows, in one request: the image, its
/// author, comments and related images (with why), and which optional
/// parts could not be had in time.
#[utoipa::path(get, path = "/api/v1/images/{id}/detail", tag = "gateway", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "image id")),
    responses(
        (status = 200, body = DetailAnswer, description = "With `ETag`; 304 on a matching `If-None-Match`"),
        (status = 401, description = "Bad token (`invalid-token`)", body = pinhole_http::ErrorBody),
        (status = 404, description = "No such image, or not one the caller may see (`image-not-found`)", body = pinhole_http::ErrorBody),
        (status = 503, description = "The images role is unavailable (`role-unavailable`)", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(image_id = %id))]
async fn detail_json(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: web::Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(Common::ImageNotFound, "no such image");
    let visitor = viewer.0.clone();
    let viewer = viewer.id();
    let image_id = pages::parse_id(&id).ok_or_else(not_found)?;
    let detail = match assemble::detail(&ctx, image_id, viewer).await {
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
    let answer = DetailAnswer {
        viewer: standing(&ctx, visitor.as_ref(), &detail, ip).await,
        detail,
    };
    let body = serde_json::to_string(&answer).map_err(ApiError::internal)?;
    let mut response = Page {
        viewer,
        validator: caching::validator(&answer, "json"),
        content_type: "application/json",
        body,
    }
    .respond(&headers);
    response.extensions_mut().insert(Shown { image_id, viewer });
    Ok(response)
}

/// `GET /`: explore's images.
#[tracing::instrument(skip_all)]
async fn explore_page(
    State(ctx): State<AppContext>,
    viewer: web::Viewer,
    headers: HeaderMap,
) -> Response {
    let visitor = viewer.0.clone();
    let viewer = viewer.id();
    let call = ctx.clients.images.explore(viewer, EXPLORE);
    match tokio::time::timeout(assemble::IMAGE_DEADLINE, call).await {
        Ok(Ok(images)) => {
            let body = pages::grid(
                "Explore",
                Some(&images),
                &GridPage::default(),
                visitor.as_ref(),
            )
            .into_string();
            Page {
                viewer,
                validator: caching::validator(
                    &(&images, visitor.as_ref().map(|v| &v.csrf)),
                    "explore",
                ),
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
                pages::grid("Explore", None, &GridPage::default(), visitor.as_ref()).into_string(),
            )
        }
    }
}

/// `GET /search?q=…` (and every parameter of the search API): the results
/// as a grid, under a search box.
#[tracing::instrument(skip_all)]
async fn search_page(
    State(ctx): State<AppContext>,
    viewer: web::Viewer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let visitor = viewer.0.clone();
    let viewer = viewer.id();
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
            let body = pages::grid(&heading, Some(&images), &extra, visitor.as_ref()).into_string();
            Page {
                viewer,
                validator: caching::validator(
                    &(&images, &more, &heading, visitor.as_ref().map(|v| &v.csrf)),
                    "search",
                ),
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
                pages::grid(&heading, None, &extra, visitor.as_ref()).into_string(),
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
                pages::grid(&heading, None, &extra, visitor.as_ref()).into_string(),
            )
        }
    }
}

/// `GET /u/{username}`: a person's newest images.
#[tracing::instrument(skip_all)]
async fn profile_page(
    State(ctx): State<AppContext>,
    viewer: web::Viewer,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visitor = viewer.0.clone();
    let viewer = viewer.id();
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
            let body = pages::grid(
                &heading,
                Some(&images),
                &GridPage::default(),
                visitor.as_ref(),
            )
            .into_string();
            Page {
                viewer,
                validator: caching::validator(
                    &(&images, &heading, visitor.as_ref().map(|v| &v.csrf)),
                    "profile",
                ),
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
                pages::grid(&format!("@{username}"), None, &extra, visitor.as_ref()).into_string(),
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
                pages::grid(
                    &format!("@{username}"),
                    None,
                    &GridPage::default(),
                    visitor.as_ref(),
                )
                .into_string(),
            )
        }
    }
}
