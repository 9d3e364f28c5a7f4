//! Image search: parameters, the tantivy query they make, and a collector
//! that filters geo candidates exactly, counts facets and keeps the top of
//! the requested order, all in one pass over the matches.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Bound;

use base64::Engine as _;
use pinhole_events::images::Visibility;
use pinhole_geo::GeoBox;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, FuzzyTermQuery, Occur, PhraseQuery, Query,
    TermQuery, TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, Term};
use uuid::Uuid;

use crate::analyzer;
use crate::index::{Fields, IMAGE, USER};
use crate::state::Relations;

/// The most results one page holds.
pub const MAX_LIMIT: usize = 100;
/// How deep cursors may page.
pub const MAX_OFFSET: usize = 10_000;
/// Facet values answered per facet.
const FACET_VALUES: usize = 20;

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Recent,
    Popular,
    Distance,
}

/// The geo part of a search.
#[derive(Debug, Clone)]
pub enum Area {
    /// Within `radius_km` of a point (or anywhere, with distances to it).
    Near {
        lat: f64,
        lon: f64,
        radius_km: Option<f64>,
    },
    Box(GeoBox),
}

/// A validated image search.
#[derive(Debug, Clone)]
pub struct ImageSearch {
    pub q: Option<String>,
    pub tags: Vec<String>,
    pub author: Option<String>,
    pub camera: Option<String>,
    pub taken: (Option<i64>, Option<i64>),
    pub uploaded: (Option<i64>, Option<i64>),
    pub has_location: Option<bool>,
    pub near: Option<(f64, f64)>,
    pub area: Option<Area>,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
    pub facets: bool,
}

/// The raw query string of `GET /api/v1/search/images`. Every parameter
/// may be given empty, as an HTML form sends it: that is the same as
/// leaving it out (`EmptyMeansAbsent` in the document).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageSearchParams {
    /// Words, `"phrases"`; Chinese and Japanese are segmented. At most 500
    /// characters.
    #[param(max_length = 500)]
    pub q: Option<String>,
    /// Comma-separated tags, at most 20; all must match.
    pub tags: Option<String>,
    /// Username of the author.
    pub author: Option<String>,
    /// Camera, as the facet names it (case-insensitive).
    pub camera: Option<String>,
    /// Taken at or after: an RFC 3339 date-time or date (its first
    /// moment).
    #[param(schema_with = date_or_time)]
    pub taken_from: Option<String>,
    /// Taken at or before: an RFC 3339 date-time or date (its last
    /// moment); not before `taken_from`.
    #[param(schema_with = date_or_time)]
    pub taken_to: Option<String>,
    /// Uploaded at or after, as `taken_from`.
    #[param(schema_with = date_or_time)]
    pub uploaded_from: Option<String>,
    /// Uploaded at or before, as `taken_to`.
    #[param(schema_with = date_or_time)]
    pub uploaded_to: Option<String>,
    /// Only images with (`true`) or without (`false`) a location.
    #[param(value_type = Option<bool>)]
    pub has_location: Option<String>,
    /// `LAT,LON`: distances are from there (and `radius_km` around it).
    #[param(
        pattern = r"^ *-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?) *, *-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?) *$"
    )]
    pub near: Option<String>,
    /// With `near`: only images within this distance, above 0 and at most
    /// 20040.
    #[param(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 20040.0)]
    pub radius_km: Option<String>,
    /// `MIN_LAT,MIN_LON,MAX_LAT,MAX_LON` (MIN_LAT not above MAX_LAT);
    /// MIN_LON > MAX_LON crosses the antimeridian. Not with both `near`
    /// and `radius_km`.
    #[param(
        pattern = r"^ *-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?) *, *-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?) *, *-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?) *, *-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?) *$"
    )]
    pub bbox: Option<String>,
    /// `relevance` (default), `recent`, `popular`, `distance` (needs `near`).
    #[param(pattern = "^ *(relevance|recent|popular|distance) *$")]
    pub sort: Option<String>,
    /// 1 to 100, default 20.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// An RFC 3339 date-time or date, as the date parameters take them.
fn date_or_time() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    OneOfBuilder::new()
        .item(string(KnownFormat::DateTime))
        .item(string(KnownFormat::Date))
        .into()
}

/// How `GET /api/v1/search/users` takes its parameters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleParams {
    /// The start of a username or display name (one typo allowed): 1 to
    /// 100 characters, not all blank.
    #[param(max_length = 100, pattern = r"\S")]
    pub q: String,
    /// 1 to 100, default 10.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// A parameter that is not right: its name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam(pub &'static str, pub String);

fn bad(name: &'static str, problem: impl Into<String>) -> BadParam {
    BadParam(name, problem.into())
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Milliseconds of an RFC 3339 date-time, or of a date's first (or, with
/// `end`, last) millisecond.
fn parse_time(name: &'static str, s: &str, end: bool) -> Result<i64, BadParam> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end {
            d.and_hms_milli_opt(23, 59, 59, 999)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(bad(
        name,
        "use an RFC 3339 date-time (2024-05-01T12:00:00Z) or date (2024-05-01)",
    ))
}

fn parse_coord(name: &'static str, s: &str, lat: bool) -> Result<f64, BadParam> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| bad(name, format!("`{s}` is not a number")))?;
    let max = if lat { 90.0 } else { 180.0 };
    if !v.is_finite() || v.abs() > max {
        return Err(bad(
            name,
            format!(
                "{} must be within -{max} and {max}",
                if lat { "latitude" } else { "longitude" }
            ),
        ));
    }
    Ok(v)
}

fn parse_range(
    from_name: &'static str,
    from: &Option<String>,
    to_name: &'static str,
    to: &Option<String>,
) -> Result<(Option<i64>, Option<i64>), BadParam> {
    let f = non_empty(from)
        .map(|s| parse_time(from_name, s, false))
        .transpose()?;
    let t = non_empty(to)
        .map(|s| parse_time(to_name, s, true))
        .transpose()?;
    if let (Some(a), Some(b)) = (f, t)
        && a > b
    {
        return Err(bad(to_name, format!("is before {from_name}")));
    }
    Ok((f, t))
}

/// The cursor of the page after `offset`.
pub fn cursor_at(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn parse_cursor(s: &str) -> Result<usize, BadParam> {
    let wrong = || {
        bad(
            "cursor",
            "not a cursor this API gave; start again without it",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| wrong())?;
    let raw = String::from_utf8(raw).map_err(|_| wrong())?;
    let n: usize = raw
        .strip_prefix("o:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(wrong)?;
    if n > MAX_OFFSET {
        return Err(bad(
            "cursor",
            format!("results go {MAX_OFFSET} deep; narrow the search"),
        ));
    }
    Ok(n)
}

/// `limit`: 1 to 100, default 20.
pub fn parse_limit(raw: &Option<String>, default: usize) -> Result<usize, BadParam> {
    match non_empty(raw) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad(
                "limit",
                format!("`{s}`: use a number from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

impl ImageSearchParams {
    /// Checks every parameter; the first wrong one is named.
    pub fn validate(&self) -> Result<ImageSearch, BadParam> {
        let q = non_empty(&self.q).map(str::to_owned);
        if q.as_ref().is_some_and(|q| q.chars().count() > 500) {
            return Err(bad("q", "at most 500 characters"));
        }
        let tags: Vec<String> = non_empty(&self.tags)
            .map(|t| {
                t.split(',')
                    .map(|t| t.trim().trim_start_matches('#').to_lowercase())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if tags.len() > 20 {
            return Err(bad("tags", "at most 20 tags"));
        }
        let author = non_empty(&self.author).map(|a| a.trim_start_matches('@').to_lowercase());
        let camera = non_empty(&self.camera).map(str::to_lowercase);
        let taken = parse_range("taken_from", &self.taken_from, "taken_to", &self.taken_to)?;
        let uploaded = parse_range(
            "uploaded_from",
            &self.uploaded_from,
            "uploaded_to",
            &self.uploaded_to,
        )?;
        let has_location = match non_empty(&self.has_location) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(other) => {
                return Err(bad("has_location", format!("`{other}`: use true or false")));
            }
        };
        let near = match non_empty(&self.near) {
            None => None,
            Some(s) => {
                let (lat, lon) = s
                    .split_once(',')
                    .ok_or_else(|| bad("near", "use LAT,LON, e.g. 48.8566,2.3522"))?;
                Some((
                    parse_coord("near", lat, true)?,
                    parse_coord("near", lon, false)?,
                ))
            }
        };
        let radius_km = match non_empty(&self.radius_km) {
            None => None,
            Some(s) => {
                let r: f64 = s
                    .parse()
                    .map_err(|_| bad("radius_km", format!("`{s}` is not a number")))?;
                if !(r.is_finite() && r > 0.0 && r <= 20_040.0) {
                    return Err(bad("radius_km", "a distance above 0 and at most 20040 km"));
                }
                if near.is_none() {
                    return Err(bad("radius_km", "needs `near`"));
                }
                Some(r)
            }
        };
        let bbox = match non_empty(&self.bbox) {
            None => None,
            Some(s) => {
                let parts: Vec<&str> = s.split(',').collect();
                let [a, b, c, d] = parts.as_slice() else {
                    return Err(bad("bbox", "use MIN_LAT,MIN_LON,MAX_LAT,MAX_LON"));
                };
                let b = GeoBox {
                    min_lat: parse_coord("bbox", a, true)?,
                    min_lon: parse_coord("bbox", b, false)?,
                    max_lat: parse_coord("bbox", c, true)?,
                    max_lon: parse_coord("bbox", d, false)?,
                };
                if b.min_lat > b.max_lat {
                    return Err(bad("bbox", "MIN_LAT is above MAX_LAT"));
                }
                Some(b)
            }
        };
        if bbox.is_some() && near.is_some() && radius_km.is_some() {
            return Err(bad(
                "bbox",
                "give either bbox or near with radius_km, not both",
            ));
        }
        let area = match (bbox, near) {
            (Some(b), _) => Some(Area::Box(b)),
            (None, Some((lat, lon))) => Some(Area::Near {
                lat,
                lon,
                radius_km,
            }),
            (None, None) => None,
        };
        let sort = match non_empty(&self.sort) {
            None | Some("relevance") => Sort::Relevance,
            Some("recent") => Sort::Recent,
            Some("popular") => Sort::Popular,
            Some("distance") => {
                if near.is_none() {
                    return Err(bad("sort", "`distance` needs `near`"));
                }
                Sort::Distance
            }
            Some(other) => {
                return Err(bad(
                    "sort",
                    format!("`{other}`: use relevance, recent, popular or distance"),
                ));
            }
        };
        let limit = parse_limit(&self.limit, 20)?;
        let offset = non_empty(&self.cursor)
            .map(parse_cursor)
            .transpose()?
            .unwrap_or(0);
        Ok(ImageSearch {
            q,
            tags,
            author,
            camera,
            taken,
            uploaded,
            has_location,
            near,
            area,
            sort,
            limit,
            offset,
            facets: true,
        })
    }
}

/// Splits a query into `"phrases"` and the free text around them.
fn phrases(q: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut rest = String::new();
    let mut parts = q.split('"');
    let mut inside = false;
    for part in parts.by_ref() {
        if inside {
            if !part.trim().is_empty() {
                out.push(part.to_owned());
            }
        } else {
            rest.push_str(part);
            rest.push(' ');
        }
        inside = !inside;
    }
    (out, rest)
}

/// The query of free text `q` over the text fields: every word (all but
/// function words; with four or more, three in four) must match, title
/// matches weigh more, words of five letters or more also match one typo
/// away, and phrases match as phrases.
pub fn text_query(f: &Fields, q: &str) -> Box<dyn Query> {
    let (phrase_list, rest) = phrases(q);
    let mut required: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for p in &phrase_list {
        let terms = analyzer::terms(p);
        match terms.len() {
            0 => {}
            1 => required.push((Occur::Must, word_clause(f, &terms[0]))),
            _ => {
                let all: Vec<Term> = terms
                    .iter()
                    .map(|t| Term::from_field_text(f.all, t))
                    .collect();
                let title: Vec<Term> = terms
                    .iter()
                    .map(|t| Term::from_field_text(f.title, t))
                    .collect();
                required.push((
                    Occur::Must,
                    Box::new(BooleanQuery::new(vec![
                        (
                            Occur::Must,
                            Box::new(PhraseQuery::new(all)) as Box<dyn Query>,
                        ),
                        (
                            Occur::Should,
                            Box::new(BoostQuery::new(Box::new(PhraseQuery::new(title)), 2.0)),
                        ),
                    ])),
                ));
            }
        }
    }
    let mut words: Vec<String> = analyzer::terms(&rest)
        .into_iter()
        .filter(|t| !analyzer::is_stopword(t))
        .collect();
    words.dedup();
    let clauses: Vec<(Occur, Box<dyn Query>)> = words
        .iter()
        .map(|w| (Occur::Should, word_clause(f, w)))
        .collect();
    let n = clauses.len();
    if n > 0 {
        let needed = if n <= 3 { n } else { (n * 3).div_ceil(4) };
        required.push((
            Occur::Must,
            Box::new(BooleanQuery::with_minimum_required_clauses(clauses, needed)),
        ));
    }
    if required.is_empty() {
        return Box::new(EmptyQuery);
    }
    Box::new(BooleanQuery::new(required))
}

/// One word: in any text field, in the title (weighing more), or one typo
/// away for words of five letters or more.
fn word_clause(f: &Fields, w: &str) -> Box<dyn Query> {
    let exact = Term::from_field_text(f.all, w);
    let mut any: Vec<(Occur, Box<dyn Query>)> = vec![
        (
            Occur::Should,
            Box::new(TermQuery::new(exact.clone(), IndexRecordOption::WithFreqs)),
        ),
        (
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(f.title, w),
                    IndexRecordOption::WithFreqs,
                )),
                2.0,
            )),
        ),
    ];
    if analyzer::is_alphabetic_word(w) && w.chars().count() >= 5 {
        any.push((
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(FuzzyTermQuery::new(exact, 1, true)),
                0.5,
            )),
        ));
    }
    Box::new(BooleanQuery::new(any))
}

fn term(field: tantivy::schema::Field, v: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, v),
        IndexRecordOption::Basic,
    ))
}

fn range(
    field: tantivy::schema::Field,
    (from, to): (Option<i64>, Option<i64>),
) -> Option<Box<dyn Query>> {
    if from.is_none() && to.is_none() {
        return None;
    }
    let lo = from.map_or(Bound::Unbounded, |v| {
        Bound::Included(Term::from_field_i64(field, v))
    });
    let hi = to.map_or(Bound::Unbounded, |v| {
        Bound::Included(Term::from_field_i64(field, v))
    });
    Some(Box::new(tantivy::query::RangeQuery::new(lo, hi)))
}

/// What `viewer` may see: public images of public accounts; with a viewer,
/// also images of accounts it follows (approved) that are public or for
/// followers, and its own; never anything of accounts on either side of a
/// block with it.
pub fn visible_to(f: &Fields, viewer: Option<Uuid>, rel: &Relations) -> Box<dyn Query> {
    let public: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
        (Occur::Must, term(f.visibility, Visibility::Public.as_str())),
        (Occur::Must, term(f.private, "false")),
    ]));
    let Some(viewer) = viewer else {
        return public;
    };
    let mut may: Vec<(Occur, Box<dyn Query>)> = vec![
        (Occur::Should, public),
        (Occur::Should, term(f.owner, &viewer.to_string())),
    ];
    if !rel.follows.is_empty() {
        let owners = rel
            .follows
            .iter()
            .map(|id| Term::from_field_text(f.owner, &id.to_string()));
        may.push((
            Occur::Should,
            Box::new(BooleanQuery::new(vec![
                (
                    Occur::Must,
                    Box::new(TermSetQuery::new(owners)) as Box<dyn Query>,
                ),
                (
                    Occur::Must,
                    Box::new(TermSetQuery::new([
                        Term::from_field_text(f.visibility, Visibility::Public.as_str()),
                        Term::from_field_text(f.visibility, Visibility::Followers.as_str()),
                    ])),
                ),
            ])),
        ));
    }
    let mut out: Vec<(Occur, Box<dyn Query>)> =
        vec![(Occur::Must, Box::new(BooleanQuery::new(may)))];
    if !rel.blocked.is_empty() {
        out.push((
            Occur::MustNot,
            Box::new(TermSetQuery::new(
                rel.blocked
                    .iter()
                    .map(|id| Term::from_field_text(f.owner, &id.to_string())),
            )),
        ));
    }
    Box::new(BooleanQuery::new(out))
}

/// The filters of `s` (everything but the text), as clauses.
fn filters(f: &Fields, s: &ImageSearch) -> Vec<(Occur, Box<dyn Query>)> {
    let mut out: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, term(f.kind, IMAGE))];
    for t in &s.tags {
        out.push((Occur::Must, term(f.tags, t)));
    }
    if let Some(a) = &s.author {
        out.push((Occur::Must, term(f.author, a)));
    }
    if let Some(c) = &s.camera {
        out.push((Occur::Must, term(f.camera_key, c)));
    }
    if let Some(q) = range(f.taken, s.taken) {
        out.push((Occur::Must, q));
    }
    if let Some(q) = range(f.created, s.uploaded) {
        out.push((Occur::Must, q));
    }
    match s.has_location {
        Some(true) => out.push((Occur::Must, term(f.has_location, "1"))),
        Some(false) => out.push((Occur::Must, term(f.has_location, "0"))),
        None => {}
    }
    match &s.area {
        None => {}
        Some(Area::Near {
            lat,
            lon,
            radius_km: Some(r),
        }) => out.push((
            Occur::Must,
            cells_query(f, pinhole_geo::cover_circle(*lat, *lon, *r)),
        )),
        Some(Area::Near {
            radius_km: None, ..
        }) => {
            out.push((Occur::Must, term(f.has_location, "1")));
        }
        Some(Area::Box(b)) => out.push((Occur::Must, cells_query(f, pinhole_geo::cover_box(b)))),
    }
    out
}

pub fn cells_query(f: &Fields, cells: Vec<String>) -> Box<dyn Query> {
    Box::new(TermSetQuery::new(
        cells
            .into_iter()
            .map(|c| Term::from_field_text(f.cells, &c)),
    ))
}

/// The whole query of `s` for `viewer`, and its text part alone (for
/// highlights).
pub fn build(
    f: &Fields,
    s: &ImageSearch,
    viewer: Option<Uuid>,
    rel: &Relations,
) -> (Box<dyn Query>, Option<Box<dyn Query>>) {
    let text = s.q.as_deref().map(|q| text_query(f, q));
    let mut clauses = filters(f, s);
    clauses.push((Occur::Must, visible_to(f, viewer, rel)));
    let scored: Box<dyn Query> = match &text {
        Some(t) => t.box_clone(),
        None => Box::new(AllQuery),
    };
    // Filters do not add to the score.
    let filter: Box<dyn Query> = Box::new(tantivy::query::ConstScoreQuery::new(
        Box::new(BooleanQuery::new(clauses)),
        0.0,
    ));
    let query = Box::new(BooleanQuery::new(vec![
        (Occur::Must, scored),
        (Occur::Must, filter),
    ]));
    (query, text)
}

/// One hit.
#[derive(Debug, Clone)]
pub struct Hit {
    pub address: DocAddress,
    pub score: f32,
    pub distance_km: Option<f64>,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Found {
    pub hits: Vec<Hit>,
    pub total: u64,
    pub tags: Vec<(String, u64)>,
    pub cameras: Vec<(String, u64)>,
}

/// The exact geo test and the distance a hit is measured from.
#[derive(Debug, Clone)]
pub struct GeoTest {
    pub from: Option<(f64, f64)>,
    pub area: Option<Area>,
}

impl GeoTest {
    pub fn of(s: &ImageSearch) -> Option<Self> {
        (s.near.is_some() || s.area.is_some()).then(|| Self {
            from: s.near,
            area: s.area.clone(),
        })
    }

    /// Whether the point passes, and its distance from `from`.
    fn test(&self, lat: f64, lon: f64) -> Option<Option<f64>> {
        let d = self.from.map(|p| pinhole_geo::haversine_km(p, (lat, lon)));
        let inside = match &self.area {
            None => true,
            Some(Area::Near {
                radius_km: None, ..
            }) => true,
            Some(Area::Near {
                radius_km: Some(r), ..
            }) => d.is_some_and(|d| d <= *r),
            Some(Area::Box(b)) => b.contains(lat, lon),
        };
        inside.then_some(d)
    }
}

/// Collects the top `offset + limit` hits in `sort` order, the total and
/// the facets, testing geo candidates exactly.
pub struct SearchCollector {
    pub sort: Sort,
    pub keep: usize,
    pub geo: Option<GeoTest>,
    pub facets: bool,
}

/// A sort key: larger first; ties by address.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key(f64, f64);

#[derive(Debug, Clone)]
struct Ranked {
    key: Key,
    hit: Hit,
}

impl Ranked {
    fn cmp_key(&self, other: &Self) -> Ordering {
        self.key
            .0
            .total_cmp(&other.key.0)
            .then(self.key.1.total_cmp(&other.key.1))
            // Earlier documents first among equals.
            .then(other.hit.address.cmp(&self.hit.address))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_key(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    // Reversed: the heap's top is the worst kept hit.
    fn cmp(&self, other: &Self) -> Ordering {
        other.cmp_key(self)
    }
}

pub struct SegmentSearch {
    segment: SegmentOrdinal,
    sort: Sort,
    keep: usize,
    geo: Option<GeoTest>,
    lat: Column<f64>,
    lon: Column<f64>,
    created: Column<i64>,
    likes: Column<u64>,
    tags: Option<StrColumn>,
    camera: Option<StrColumn>,
    heap: BinaryHeap<Ranked>,
    total: u64,
    /// Matches per term ordinal of `tags` and `camera` (dense: a
    /// segment's dictionaries hold a few thousand values at most).
    tag_counts: Vec<u32>,
    camera_counts: Vec<u32>,
}

pub struct SegmentFruit {
    ranked: Vec<Ranked>,
    total: u64,
    tags: HashMap<String, u64>,
    cameras: HashMap<String, u64>,
}

impl SegmentCollector for SegmentSearch {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let mut distance = None;
        if let Some(geo) = &self.geo {
            let (Some(lat), Some(lon)) = (self.lat.first(doc), self.lon.first(doc)) else {
                return;
            };
            match geo.test(lat, lon) {
                Some(d) => distance = d,
                None => return,
            }
        }
        self.total += 1;
        if let Some(col) = &self.tags {
            for ord in col.ords().values_for_doc(doc) {
                self.tag_counts[ord as usize] += 1;
            }
        }
        if let Some(col) = &self.camera {
            for ord in col.ords().values_for_doc(doc) {
                self.camera_counts[ord as usize] += 1;
            }
        }
        let created = self.created.first(doc).unwrap_or(0) as f64;
        let key = match self.sort {
            Sort::Relevance => Key(f64::from(score), created),
            Sort::Recent => Key(created, 0.0),
            Sort::Popular => Key(self.likes.first(doc).unwrap_or(0) as f64, created),
            Sort::Distance => Key(-distance.unwrap_or(f64::MAX), created),
        };
        let ranked = Ranked {
            key,
            hit: Hit {
                address: DocAddress::new(self.segment, doc),
                score,
                distance_km: distance,
            },
        };
        if self.heap.len() < self.keep {
            self.heap.push(ranked);
        } else if let Some(worst) = self.heap.peek()
            && ranked.cmp_key(worst) == Ordering::Greater
        {
            self.heap.pop();
            self.heap.push(ranked);
        }
    }

    fn harvest(self) -> SegmentFruit {
        // The values counted, named in one pass over the dictionary (a
        // lookup per ordinal decodes a block each time).
        let name = |col: &Option<StrColumn>, counts: Vec<u32>| {
            let mut out = HashMap::new();
            if let Some(col) = col {
                let ords: Vec<u64> = (0..counts.len() as u64)
                    .filter(|o| counts[*o as usize] > 0)
                    .collect();
                let mut i = 0;
                let _ = col.dictionary().sorted_ords_to_term_cb(&ords, |term| {
                    let n = u64::from(counts[ords[i] as usize]);
                    out.insert(String::from_utf8_lossy(term).into_owned(), n);
                    i += 1;
                });
            }
            out
        };
        SegmentFruit {
            tags: name(&self.tags, self.tag_counts),
            cameras: name(&self.camera, self.camera_counts),
            ranked: self.heap.into_vec(),
            total: self.total,
        }
    }
}

fn dictionary_len(col: &Option<StrColumn>) -> usize {
    col.as_ref().map_or(0, |c| c.dictionary().num_terms())
}

impl Collector for SearchCollector {
    type Fruit = Found;
    type Child = SegmentSearch;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentSearch> {
        let ff = reader.fast_fields();
        let tags = if self.facets { ff.str("tags")? } else { None };
        let camera = if self.facets { ff.str("camera")? } else { None };
        Ok(SegmentSearch {
            segment,
            sort: self.sort,
            keep: self.keep,
            geo: self.geo.clone(),
            lat: ff.f64("lat")?,
            lon: ff.f64("lon")?,
            created: ff.i64("created")?,
            likes: ff.u64("likes")?,
            heap: BinaryHeap::new(),
            total: 0,
            tag_counts: vec![
                0;
                if self.facets {
                    dictionary_len(&tags)
                } else {
                    0
                }
            ],
            camera_counts: vec![
                0;
                if self.facets {
                    dictionary_len(&camera)
                } else {
                    0
                }
            ],
            tags,
            camera,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.sort == Sort::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Found> {
        let mut all: Vec<Ranked> = Vec::new();
        let mut total = 0;
        let mut tags: HashMap<String, u64> = HashMap::new();
        let mut cameras: HashMap<String, u64> = HashMap::new();
        for f in fruits {
            all.extend(f.ranked);
            total += f.total;
            for (k, v) in f.tags {
                *tags.entry(k).or_default() += v;
            }
            for (k, v) in f.cameras {
                *cameras.entry(k).or_default() += v;
            }
        }
        all.sort_by(|a, b| b.cmp_key(a));
        all.truncate(self.keep);
        let top = |m: HashMap<String, u64>| {
            let mut v: Vec<(String, u64)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(FACET_VALUES);
            v
        };
        Ok(Found {
            hits: all.into_iter().map(|r| r.hit).collect(),
            total,
            tags: top(tags),
            cameras: top(cameras),
        })
    }
}

/// Runs `s` for `viewer` on `searcher`.
pub fn run(
    searcher: &tantivy::Searcher,
    f: &Fields,
    s: &ImageSearch,
    viewer: Option<Uuid>,
    rel: &Relations,
) -> tantivy::Result<(Found, Option<Box<dyn Query>>)> {
    let (query, text) = build(f, s, viewer, rel);
    let collector = SearchCollector {
        sort: s.sort,
        keep: s.offset + s.limit,
        geo: GeoTest::of(s),
        facets: s.facets,
    };
    let mut found = searcher.search(&*query, &collector)?;
    found.hits = found.hits.into_iter().skip(s.offset).collect();
    Ok((found, text))
}

/// The image id stored in document `address`.
pub fn stored_id(searcher: &tantivy::Searcher, f: &Fields, address: DocAddress) -> Option<Uuid> {
    use tantivy::schema::Value;
    let doc: tantivy::TantivyDocument = searcher.doc(address).ok()?;
    doc.get_first(f.id)?.as_str()?.parse().ok()
}

/// People: username and display name, by prefix and one typo away.
pub fn people_query(f: &Fields, q: &str, rel: &Relations) -> Box<dyn Query> {
    let q = q.trim().trim_start_matches('@').to_lowercase();
    let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let name = Term::from_field_text(f.username, &q);
    any.push((
        Occur::Should,
        Box::new(BoostQuery::new(
            Box::new(TermQuery::new(name.clone(), IndexRecordOption::Basic)),
            4.0,
        )),
    ));
    let distance = if q.chars().count() >= 5 { 1 } else { 0 };
    any.push((
        Occur::Should,
        Box::new(BoostQuery::new(
            Box::new(FuzzyTermQuery::new_prefix(name, distance, true)),
            2.0,
        )),
    ));
    for w in analyzer::terms(&q) {
        let t = Term::from_field_text(f.display_name, &w);
        any.push((
            Occur::Should,
            Box::new(TermQuery::new(t.clone(), IndexRecordOption::WithFreqs)),
        ));
        any.push((
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(FuzzyTermQuery::new_prefix(
                    t,
                    if w.chars().count() >= 5 { 1 } else { 0 },
                    true,
                )),
                0.5,
            )),
        ));
    }
    let mut all: Vec<(Occur, Box<dyn Query>)> = vec![
        (Occur::Must, term(f.kind, USER)),
        (Occur::Must, Box::new(BooleanQuery::new(any))),
    ];
    if !rel.blocked.is_empty() {
        all.push((
            Occur::MustNot,
            Box::new(TermSetQuery::new(
                rel.blocked
                    .iter()
                    .map(|id| Term::from_field_text(f.owner, &id.to_string())),
            )),
        ));
    }
    Box::new(BooleanQuery::new(all))
}

/// A suggestion.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Suggestion {
    pub text: String,
    /// `tag`, `user` or `word`.
    pub kind: String,
}

/// Up to `limit` completions of `prefix` from the tags, usernames and
/// title words in the index, most frequent first.
pub fn suggest(
    searcher: &tantivy::Searcher,
    f: &Fields,
    prefix: &str,
    limit: usize,
) -> tantivy::Result<Vec<Suggestion>> {
    let prefix = prefix.trim().trim_start_matches(['#', '@']).to_lowercase();
    if prefix.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(u64, Suggestion)> = Vec::new();
    for (field, kind) in [
        (f.tags, "tag"),
        (f.username, "user"),
        (f.title_words, "word"),
    ] {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(field)?;
            let dict = inverted.terms();
            let mut stream = dict.range().ge(prefix.as_bytes()).into_stream()?;
            let mut seen = 0;
            while stream.advance() {
                let key = stream.key();
                if !key.starts_with(prefix.as_bytes()) || seen > 200 {
                    break;
                }
                seen += 1;
                let text = String::from_utf8_lossy(key).into_owned();
                *counts.entry(text).or_default() += u64::from(stream.value().doc_freq);
            }
        }
        for (text, n) in counts {
            out.push((
                n,
                Suggestion {
                    text,
                    kind: kind.to_owned(),
                },
            ));
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.text.cmp(&b.1.text)));
    let mut seen = std::collections::HashSet::new();
    Ok(out
        .into_iter()
        .filter(|(_, s)| seen.insert((s.kind.clone(), s.text.clone())))
        .map(|(_, s)| s)
        .take(limit)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> ImageSearchParams {
        let q: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_urlencoded::from_str(&q).expect("params")
    }

    #[test]
    fn bad_parameters_are_named() {
        for (pairs, name) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "101")], "limit"),
            (vec![("sort", "distance")], "sort"),
            (vec![("sort", "best")], "sort"),
            (vec![("near", "91,0")], "near"),
            (vec![("near", "x")], "near"),
            (vec![("radius_km", "5")], "radius_km"),
            (vec![("near", "1,1"), ("radius_km", "-1")], "radius_km"),
            (vec![("bbox", "1,2,3")], "bbox"),
            (vec![("bbox", "10,0,5,1")], "bbox"),
            (vec![("taken_from", "yesterday")], "taken_from"),
            (
                vec![("taken_from", "2024-02-01"), ("taken_to", "2024-01-01")],
                "taken_to",
            ),
            (vec![("has_location", "maybe")], "has_location"),
            (vec![("cursor", "nope")], "cursor"),
        ] {
            let err = params(&pairs).validate().expect_err("invalid");
            assert_eq!(err.0, name, "{pairs:?}: {err:?}");
        }
    }

    #[test]
    fn good_parameters_are_read() {
        let s = params(&[
            ("q", "fog"),
            ("tags", "Forest, #mist"),
            ("near", "48.85,2.35"),
            ("radius_km", "10"),
            ("sort", "distance"),
            ("limit", "5"),
            ("cursor", &cursor_at(10)),
            ("uploaded_from", "2024-01-01"),
        ])
        .validate()
        .expect("valid");
        assert_eq!(s.tags, ["forest", "mist"]);
        assert_eq!(s.sort, Sort::Distance);
        assert_eq!((s.limit, s.offset), (5, 10));
        assert!(matches!(s.area, Some(Area::Near { radius_km: Some(r), .. }) if r == 10.0));
        assert_eq!(s.uploaded.0, Some(1_704_067_200_000));
    }

    #[test]
    fn phrases_are_split_from_words() {
        let (p, rest) = phrases(r#"misty "old bridge" dawn"#);
        assert_eq!(p, ["old bridge"]);
        assert_eq!(
            rest.split_whitespace().collect::<Vec<_>>(),
            ["misty", "dawn"]
        );
    }
}
