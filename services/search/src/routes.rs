//! The search API: images, suggestions, people and related images.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{FromRef, Path, RawQuery, State};
use pinhole_http::clients::{
    ClientError, MAX_RELATED, RelatedRef, RelatedRefs, SearchIds, Searched, ViewerQuery,
};
use pinhole_http::docs::EmptyMeansAbsent;
use pinhole_http::{ApiError, ApiQuery, AppContext, Common, MaybeAuth, SearchClient};
use serde::{Deserialize, Serialize};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, MoreLikeThisQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, OwnedValue};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::engine::{Engine, Generation};
use crate::index;
use crate::query::{self, Area, GeoTest, ImageSearchParams, SearchCollector, Sort};
use crate::state::{Relations, State as ReadModel};

/// What the handlers share.
#[derive(Clone)]
pub struct SearchState {
    pub ctx: AppContext,
    pub engine: Arc<Engine>,
}

impl FromRef<SearchState> for AppContext {
    fn from_ref(s: &SearchState) -> AppContext {
        s.ctx.clone()
    }
}

pub fn router(ctx: &AppContext, engine: Arc<Engine>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(search_images))
        .routes(routes!(suggest))
        .routes(routes!(search_users))
        .routes(routes!(related))
        .with_state(SearchState {
            ctx: ctx.clone(),
            engine: Arc::clone(&engine),
        })
        .merge(
            OpenApiRouter::new()
                .routes(routes!(internal_related))
                .routes(routes!(internal_search))
                .layer(axum::middleware::from_fn_with_state(
                    ctx.clone(),
                    pinhole_http::internal_only,
                ))
                .with_state(SearchState {
                    ctx: ctx.clone(),
                    engine,
                }),
        )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

async fn relations(g: &Generation, viewer: Option<Uuid>) -> Result<Relations, ApiError> {
    match viewer {
        None => Ok(Relations::default()),
        Some(v) => g.state.relations(v).await.map_err(internal),
    }
}

/// The records of `ids` as the images role shows them to `viewer`, by id.
async fn records(
    ctx: &AppContext,
    ids: &[Uuid],
    viewer: Option<Uuid>,
) -> Result<HashMap<Uuid, serde_json::Value>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let views = ctx.clients.images.views(ids, viewer).await?;
    Ok(views
        .into_iter()
        .filter_map(|v| {
            let id = v.get("id")?.as_str()?.parse().ok()?;
            Some((id, v))
        })
        .collect())
}

/// One result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageHit {
    /// The same record as `GET /api/v1/images/{id}`.
    #[schema(value_type = Object)]
    pub image: serde_json::Value,
    pub score: f32,
    /// From `near`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
    /// Title and description with the matched words in `<mark>` (HTML,
    /// escaped), when `q` matched them.
    pub highlights: HashMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Facets {
    pub tags: Vec<FacetValue>,
    pub camera: Vec<FacetValue>,
}

/// A page of image results.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageResults {
    pub items: Vec<ImageHit>,
    pub facets: Facets,
    /// Matches in all (each page answers the same).
    pub total: u64,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn facet_values(v: Vec<(String, u64)>) -> Vec<FacetValue> {
    v.into_iter()
        .map(|(value, count)| FacetValue { value, count })
        .collect()
}

/// Searches images: words and phrases (Chinese and Japanese segmented,
/// English stemmed, one typo allowed in words of five letters or more),
/// tags, author, camera, dates, places (radius, box, distance), with
/// facets and highlights. Only what the caller may see.
#[utoipa::path(get, path = "/api/v1/search/images", tag = "search", security((), ("bearer" = [])),
    params(EmptyMeansAbsent<ImageSearchParams>),
    responses(
        (status = 200, body = ImageResults),
        (status = 401, description = "Bad token (`invalid-token`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "A bad parameter, named (`validation-failed`)", body = pinhole_http::ErrorBody),
        (status = 503, description = "The images role is unavailable (`role-unavailable`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn search_images(
    State(s): State<SearchState>,
    MaybeAuth(viewer): MaybeAuth,
    ApiQuery(params): ApiQuery<ImageSearchParams>,
) -> Result<Json<ImageResults>, ApiError> {
    let search = params.validate().map_err(|e| ApiError::field(e.0, e.1))?;
    let viewer = viewer.map(|p| p.user_id);
    let started = Instant::now();
    let (g, searcher, found, text) = execute(&s.engine, &search, viewer).await?;
    let mut highlighters = Vec::new();
    if let Some(text) = &text {
        for (name, field) in [
            ("title", g.fields.title),
            ("description", g.fields.description),
        ] {
            let mut snippets =
                SnippetGenerator::create(&searcher, &**text, field).map_err(internal)?;
            snippets.set_max_num_chars(200);
            highlighters.push((name, snippets));
        }
    }
    let mut ids = Vec::with_capacity(found.hits.len());
    let mut highlights = Vec::with_capacity(found.hits.len());
    for hit in &found.hits {
        let doc: TantivyDocument = searcher.doc(hit.address).map_err(internal)?;
        let id = first_text(&doc, g.fields.id).and_then(|s| s.parse::<Uuid>().ok());
        let Some(id) = id else { continue };
        let mut h = HashMap::new();
        for (name, snippets) in &highlighters {
            let mut snippet = snippets.snippet_from_doc(&doc);
            snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
            if !snippet.highlighted().is_empty() {
                h.insert((*name).to_owned(), snippet.to_html());
            }
        }
        ids.push((id, hit.clone()));
        highlights.push(h);
    }
    metrics::histogram!("pinhole_search_query_seconds", "kind" => "images")
        .record(started.elapsed().as_secs_f64());
    let just_ids: Vec<Uuid> = ids.iter().map(|(id, _)| *id).collect();
    let mut recs = records(&s.ctx, &just_ids, viewer).await?;
    let mut items = Vec::with_capacity(ids.len());
    for ((id, hit), h) in ids.into_iter().zip(highlights) {
        if let Some(image) = recs.remove(&id) {
            items.push(ImageHit {
                image,
                score: hit.score,
                distance_km: hit.distance_km.map(|d| (d * 1000.0).round() / 1000.0),
                highlights: h,
            });
        }
    }
    let next_cursor = next_cursor(&search, found.total);
    Ok(Json(ImageResults {
        items,
        facets: Facets {
            tags: facet_values(found.tags),
            camera: facet_values(found.cameras),
        },
        total: found.total,
        next_cursor,
    }))
}

/// Runs `search` for `viewer` on the index's current generation.
async fn execute(
    engine: &Engine,
    search: &query::ImageSearch,
    viewer: Option<Uuid>,
) -> Result<
    (
        Arc<Generation>,
        Searcher,
        query::Found,
        Option<Box<dyn Query>>,
    ),
    ApiError,
> {
    let g = engine.current();
    let rel = relations(&g, viewer).await?;
    let searcher = g.reader.searcher();
    let (found, text) = {
        let searcher = searcher.clone();
        let fields = g.fields;
        let search = search.clone();
        tokio::task::spawn_blocking(move || query::run(&searcher, &fields, &search, viewer, &rel))
            .await
            .map_err(internal)?
            .map_err(internal)?
    };
    Ok((g, searcher, found, text))
}

/// The cursor of the page after `search`'s, unless it is the last.
fn next_cursor(search: &query::ImageSearch, total: u64) -> Option<String> {
    let next = search.offset + search.limit;
    (u64::try_from(next).unwrap_or(u64::MAX) < total && next <= query::MAX_OFFSET)
        .then(|| query::cursor_at(next))
}

/// The ids `params` finds for `viewer`, in order (the search API's
/// results without the records); `Invalid` naming a bad parameter.
pub async fn search_ids(
    engine: &Engine,
    params: &ImageSearchParams,
    viewer: Option<Uuid>,
) -> Result<Searched, ApiError> {
    let search = match params.validate() {
        Ok(search) => search,
        Err(query::BadParam(field, message)) => {
            return Ok(Searched::Invalid {
                field: field.to_owned(),
                message,
            });
        }
    };
    let (g, searcher, found, _) = execute(engine, &search, viewer).await?;
    let ids = found
        .hits
        .iter()
        .filter_map(|hit| query::stored_id(&searcher, &g.fields, hit.address))
        .collect();
    Ok(Searched::Found(SearchIds {
        ids,
        total: found.total,
        next_cursor: next_cursor(&search, found.total),
    }))
}

/// [`ImageSearchParams`] and `viewer` from `pairs` (the search API's
/// parameters plus `viewer`); 422 naming a parameter that does not read.
fn params_of(pairs: Vec<(String, String)>) -> Result<(ImageSearchParams, Option<Uuid>), ApiError> {
    let mut viewer = None;
    let mut rest = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if k == "viewer" {
            viewer = Some(
                v.parse::<Uuid>()
                    .map_err(|_| ApiError::field("viewer", "must be an id"))?,
            );
        } else {
            rest.push((k, v));
        }
    }
    let encoded = serde_urlencoded::to_string(&rest).map_err(internal)?;
    let params = serde_urlencoded::from_str(&encoded)
        .map_err(|e| ApiError::field("query", e.to_string()))?;
    Ok((params, viewer))
}

/// Searches images as `GET /api/v1/search/images` does, for a `viewer`
/// given in the query; the ids in order, not the records (for the gateway).
#[utoipa::path(get, path = "/internal/v1/search/images", tag = "internal",
    params(EmptyMeansAbsent<ImageSearchParams>, ("viewer" = Option<Uuid>, Query, description = "whom the results are for")),
    responses(
        (status = 200, body = SearchIds),
        (status = 422, description = "A bad parameter, named (`validation-failed`)", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn internal_search(
    State(s): State<SearchState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchIds>, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
            .map_err(|e| ApiError::field("query", e.to_string()))?;
    let (params, viewer) = params_of(pairs)?;
    match search_ids(&s.engine, &params, viewer).await? {
        Searched::Found(ids) => Ok(Json(ids)),
        Searched::Invalid { field, message } => Err(ApiError::field(&field, message)),
    }
}

fn first_text(doc: &TantivyDocument, field: tantivy::schema::Field) -> Option<String> {
    use tantivy::schema::Value;
    doc.get_first(field)?.as_str().map(str::to_owned)
}

/// The parameters of suggestions and of people search (which documents
/// its own: `query::PeopleParams`); an empty `limit` is the default.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PrefixParams {
    /// What the person typed so far, at most 100 characters.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// 1 to 100, default 10.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestions {
    pub suggestions: Vec<query::Suggestion>,
}

/// Completions of what was typed: tags, usernames and frequent title words.
#[utoipa::path(get, path = "/api/v1/search/suggest", tag = "search",
    params(EmptyMeansAbsent<PrefixParams>),
    responses(
        (status = 200, body = Suggestions),
        (status = 422, description = "A bad parameter (`validation-failed`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn suggest(
    State(s): State<SearchState>,
    ApiQuery(p): ApiQuery<PrefixParams>,
) -> Result<Json<Suggestions>, ApiError> {
    let limit = query::parse_limit(&p.limit, 10).map_err(|e| ApiError::field(e.0, e.1))?;
    let q = p.q.unwrap_or_default();
    if q.chars().count() > 100 {
        return Err(ApiError::field("q", "at most 100 characters"));
    }
    let g = s.engine.current();
    let searcher = g.reader.searcher();
    let suggestions = query::suggest(&searcher, &g.fields, &q, limit).map_err(internal)?;
    Ok(Json(Suggestions { suggestions }))
}

/// A person found.
#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_image_id: Option<Uuid>,
    pub is_private: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct People {
    pub users: Vec<Person>,
}

/// People by username or display name, by prefix and with a typo allowed;
/// accounts on either side of a block with the caller are left out.
#[utoipa::path(get, path = "/api/v1/search/users", tag = "search", security((), ("bearer" = [])),
    params(EmptyMeansAbsent<query::PeopleParams>),
    responses(
        (status = 200, body = People),
        (status = 401, description = "Bad token (`invalid-token`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "`q` is missing, or a bad parameter (`validation-failed`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn search_users(
    State(s): State<SearchState>,
    MaybeAuth(viewer): MaybeAuth,
    ApiQuery(p): ApiQuery<PrefixParams>,
) -> Result<Json<People>, ApiError> {
    let limit = query::parse_limit(&p.limit, 10).map_err(|e| ApiError::field(e.0, e.1))?;
    let q = p.q.as_deref().map(str::trim).unwrap_or_default();
    if q.is_empty() || q.chars().count() > 100 {
        return Err(ApiError::field("q", "from 1 to 100 characters"));
    }
    let g = s.engine.current();
    let rel = relations(&g, viewer.map(|p| p.user_id)).await?;
    let searcher = g.reader.searcher();
    let query = query::people_query(&g.fields, q, &rel);
    let top = searcher
        .search(&*query, &TopDocs::with_limit(limit).order_by_score())
        .map_err(internal)?;
    let mut users = Vec::with_capacity(top.len());
    for (_, address) in top {
        let doc: TantivyDocument = searcher.doc(address).map_err(internal)?;
        let Some(id) = first_text(&doc, g.fields.id).and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(card) = ReadModel::account(g.state.db(), id)
            .await
            .map_err(internal)?
        {
            users.push(Person {
                id,
                username: card.username,
                display_name: card.display_name,
                avatar_image_id: card.avatar_image_id,
                is_private: card.is_private,
            });
        }
    }
    Ok(Json(People { users }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelatedParams {
    /// 1 to 100, default 12.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// A related image and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedImage {
    #[schema(value_type = Object)]
    pub image: serde_json::Value,
    /// `visual` (near-identical picture), `text` (similar words and tags)
    /// or `place` (taken nearby).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Related {
    pub items: Vec<RelatedImage>,
}

/// Pictures within this many bits of perceptual hash are near-identical.
const VISUAL_BITS: u32 = 5;
/// Places within this distance are nearby.
const PLACE_KM: f64 = 5.0;

/// Images like this one: near-identical pictures, similar words and tags,
/// taken nearby. Never the image itself, and only what the caller may see.
#[utoipa::path(get, path = "/api/v1/images/{id}/related", tag = "search", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "image id"), EmptyMeansAbsent<RelatedParams>),
    responses(
        (status = 200, body = Related),
        (status = 404, description = "No such image, or not one the caller may see (`image-not-found`)", body = pinhole_http::ErrorBody),
        (status = 422, description = "A bad parameter (`validation-failed`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn related(
    State(s): State<SearchState>,
    MaybeAuth(viewer): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<RelatedParams>,
) -> Result<Json<Related>, ApiError> {
    let not_found = || ApiError::not_found(Common::ImageNotFound, "no such image");
    let limit = query::parse_limit(&p.limit, 12).map_err(|e| ApiError::field(e.0, e.1))?;
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let viewer = viewer.map(|p| p.user_id);
    let ids = related_ids(&s.engine, id, viewer, limit)
        .await?
        .ok_or_else(not_found)?;
    let just: Vec<Uuid> = ids.iter().map(|(id, _)| *id).collect();
    let mut recs = records(&s.ctx, &just, viewer).await?;
    Ok(Json(Related {
        items: ids
            .into_iter()
            .filter_map(|(id, reason)| {
                Some(RelatedImage {
                    image: recs.remove(&id)?,
                    reason: reason.to_owned(),
                })
            })
            .collect(),
    }))
}

/// The ids of images like `id` that `viewer` may see, and why, best first,
/// at most `limit`; `None` when there is no such image or `viewer` may not
/// see it.
pub async fn related_ids(
    engine: &Engine,
    id: Uuid,
    viewer: Option<Uuid>,
    limit: usize,
) -> Result<Option<Vec<(Uuid, &'static str)>>, ApiError> {
    let g = engine.current();
    let rel = relations(&g, viewer).await?;
    let f = g.fields;
    let searcher = g.reader.searcher();
    // The image itself must be one the viewer may see.
    let visible = query::visible_to(&f, viewer, &rel);
    let this = BooleanQuery::new(vec![
        (
            Occur::Must,
            Box::new(TermQuery::new(
                index::id_term(&f, id),
                IndexRecordOption::Basic,
            )) as Box<dyn Query>,
        ),
        (Occur::Must, visible.box_clone()),
    ]);
    let found = searcher
        .search(&this, &TopDocs::with_limit(1).order_by_score())
        .map_err(internal)?;
    let Some((_, address)) = found.first().copied() else {
        return Ok(None);
    };
    let Some(record) = ReadModel::image(g.state.db(), id).await.map_err(internal)? else {
        return Ok(None);
    };
    let others = |q: Box<dyn Query>| -> Box<dyn Query> {
        Box::new(BooleanQuery::new(vec![
            (Occur::Must, q),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, index::IMAGE),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (Occur::Must, visible.box_clone()),
            (
                Occur::MustNot,
                Box::new(TermQuery::new(
                    index::id_term(&f, id),
                    IndexRecordOption::Basic,
                )),
            ),
        ]))
    };
    let mut picked: Vec<(DocAddress, &'static str)> = Vec::new();
    let mut seen: HashSet<DocAddress> = HashSet::from([address]);
    // Near-identical pictures.
    if let Some(hash) = index::phash_of(record.analysis.as_ref()) {
        let bands = index::phash_bands(hash)
            .into_iter()
            .map(|b| Term::from_field_text(f.phash_bands, &b));
        let q = others(Box::new(tantivy::query::TermSetQuery::new(bands)));
        let candidates = searcher.search(&*q, &DocSetCollector).map_err(internal)?;
        let mut near: Vec<(u32, DocAddress)> = Vec::new();
        for a in candidates {
            let reader = searcher.segment_reader(a.segment_ord);
            let col = reader.fast_fields().u64("phash").map_err(internal)?;
            if let Some(h) = col.first(a.doc_id) {
                let d = (h ^ hash).count_ones();
                if d <= VISUAL_BITS {
                    near.push((d, a));
                }
            }
        }
        near.sort();
        for (_, a) in near {
            if seen.insert(a) {
                picked.push((a, "visual"));
            }
        }
    }
    // Similar words and tags.
    let mut values: Vec<OwnedValue> = Vec::new();
    for t in [&record.title, &record.description, &record.alt_text]
        .into_iter()
        .flatten()
    {
        values.push(OwnedValue::Str(t.clone()));
    }
    for t in &record.tags {
        values.push(OwnedValue::Str(t.clone()));
    }
    if !values.is_empty() {
        let mlt = MoreLikeThisQuery::builder()
            .with_min_doc_frequency(1)
            .with_min_term_frequency(1)
            .with_min_word_length(1)
            .with_max_query_terms(25)
            .with_document_fields(vec![(f.all, values)]);
        let q = others(Box::new(mlt));
        let top = searcher
            .search(&*q, &TopDocs::with_limit(limit * 2).order_by_score())
            .map_err(internal)?;
        for (_, a) in top {
            if seen.insert(a) {
                picked.push((a, "text"));
            }
        }
    }
    // Taken nearby.
    if let Some(l) = &record.location {
        let q = others(query::cells_query(
            &f,
            pinhole_geo::cover_circle(l.lat, l.lon, PLACE_KM),
        ));
        let collector = SearchCollector {
            sort: Sort::Distance,
            keep: limit * 2,
            geo: Some(GeoTest {
                from: Some((l.lat, l.lon)),
                area: Some(Area::Near {
                    lat: l.lat,
                    lon: l.lon,
                    radius_km: Some(PLACE_KM),
                }),
            }),
            facets: false,
        };
        let found = searcher.search(&*q, &collector).map_err(internal)?;
        for hit in found.hits {
            if seen.insert(hit.address) {
                picked.push((hit.address, "place"));
            }
        }
    }
    let picked = interleave(picked, limit);
    let mut ids = Vec::with_capacity(picked.len());
    for (a, reason) in picked {
        if let Some(id) = query::stored_id(&searcher, &f, a) {
            ids.push((id, reason));
        }
    }
    Ok(Some(ids))
}

/// Images like this one as refs (for the gateway): the same as
/// `GET /api/v1/images/{id}/related`, without the records.
#[utoipa::path(get, path = "/internal/v1/search/related/{id}", tag = "internal",
    params(("id" = String, Path, description = "image id"), ViewerQuery),
    responses(
        (status = 200, body = RelatedRefs),
        (status = 404, description = "No such image, or not one the viewer may see (`image-not-found`)", body = pinhole_http::ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(image_id = %id))]
pub(crate) async fn internal_related(
    State(s): State<SearchState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ViewerQuery>,
) -> Result<Json<RelatedRefs>, ApiError> {
    let not_found = || ApiError::not_found(Common::ImageNotFound, "no such image");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let limit = q.limit.unwrap_or(12).clamp(1, MAX_RELATED) as usize;
    let ids = related_ids(&s.engine, id, q.viewer, limit)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(RelatedRefs {
        items: ids
            .into_iter()
            .map(|(image_id, reason)| RelatedRef {
                image_id,
                reason: reason.to_owned(),
            })
            .collect(),
    }))
}

/// An answer the role could not give (its cause was logged where it
/// happened), as an error of the in-process client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
struct Unanswered {
    code: &'static str,
    message: String,
}

/// The search role, asked by roles hosted in the same process.
#[derive(Clone)]
pub struct InProcessSearch {
    engine: Arc<Engine>,
}

impl InProcessSearch {
    /// Over the role's index.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

fn unanswered(e: ApiError) -> ClientError {
    ClientError::failed(
        crate::ROLE,
        Unanswered {
            code: e.code,
            message: e.message,
        },
    )
}

#[async_trait::async_trait]
impl SearchClient for InProcessSearch {
    async fn search(
        &self,
        params: &[(String, String)],
        viewer: Option<Uuid>,
    ) -> Result<Searched, ClientError> {
        let pairs = params
            .iter()
            .filter(|(k, _)| k != "viewer")
            .cloned()
            .collect();
        let (params, _) = match params_of(pairs) {
            Ok(p) => p,
            Err(e) => {
                let (field, message) = e
                    .fields
                    .and_then(|f| f.into_iter().next())
                    .unwrap_or_else(|| ("query".to_owned(), e.message));
                return Ok(Searched::Invalid { field, message });
            }
        };
        search_ids(&self.engine, &params, viewer)
            .await
            .map_err(unanswered)
    }

    async fn related(
        &self,
        id: Uuid,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<RelatedRef>, ClientError> {
        let limit = limit.clamp(1, MAX_RELATED) as usize;
        let ids = related_ids(&self.engine, id, viewer, limit)
            .await
            .map_err(unanswered)?
            .unwrap_or_default();
        Ok(ids
            .into_iter()
            .map(|(image_id, reason)| RelatedRef {
                image_id,
                reason: reason.to_owned(),
            })
            .collect())
    }
}

/// Near-identical pictures first, then text and place matches in turn, so
/// one kind does not crowd out the other.
fn interleave(
    picked: Vec<(DocAddress, &'static str)>,
    limit: usize,
) -> Vec<(DocAddress, &'static str)> {
    let (visual, rest): (Vec<_>, Vec<_>) = picked.into_iter().partition(|(_, r)| *r == "visual");
    let (mut text, mut place): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(_, r)| *r == "text");
    text.reverse();
    place.reverse();
    let mut out = visual;
    while out.len() < limit && (!text.is_empty() || !place.is_empty()) {
        if let Some(t) = text.pop() {
            out.push(t);
        }
        if out.len() < limit
            && let Some(p) = place.pop()
        {
            out.push(p);
        }
    }
    out.truncate(limit);
    out
}
