//! The query mix: each query is drawn once and run on both engines.

use pinhole_geo::GeoBox;
use pinhole_search::analyzer;

use crate::data::{Rng, Vocab};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One or two frequent English words.
    TextCommon,
    /// One rare English word.
    TextRare,
    /// A word and a popular tag.
    TextTag,
    /// Two or three Chinese words, as typed (no spaces, function words
    /// between).
    Chinese,
    /// Within 1, 10 or 100 km of a point in a city, newest first.
    Radius1,
    Radius10,
    Radius100,
    /// A word within 25 km of a point in a city.
    TextRadius,
    /// A box around a city, nearest its centre first.
    BoxDistance,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::TextCommon,
        Kind::TextRare,
        Kind::TextTag,
        Kind::Chinese,
        Kind::Radius1,
        Kind::Radius10,
        Kind::Radius100,
        Kind::TextRadius,
        Kind::BoxDistance,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::TextCommon => "text common",
            Kind::TextRare => "text rare",
            Kind::TextTag => "text+tag",
            Kind::Chinese => "chinese text",
            Kind::Radius1 => "radius 1 km",
            Kind::Radius10 => "radius 10 km",
            Kind::Radius100 => "radius 100 km",
            Kind::TextRadius => "text+radius 25km",
            Kind::BoxDistance => "box by distance",
        }
    }
}

/// One query, as both engines are asked it.
#[derive(Debug, Clone)]
pub struct Query {
    pub kind: Kind,
    /// `q` as a user types it.
    pub text: Option<String>,
    /// The words PostgreSQL's tsquery is made of (Chinese: jieba's words
    /// without function words, as the index's query builder keeps them).
    pub pg_words: Vec<String>,
    pub tag: Option<String>,
    pub near: Option<(f64, f64)>,
    pub radius_km: Option<f64>,
    pub bbox: Option<GeoBox>,
}

impl Query {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            text: None,
            pg_words: Vec::new(),
            tag: None,
            near: None,
            radius_km: None,
            bbox: None,
        }
    }

    fn english(mut self, words: Vec<&str>) -> Self {
        let mut words = words;
        words.dedup();
        self.text = Some(words.join(" "));
        self.pg_words = words.into_iter().map(str::to_owned).collect();
        self
    }
}

/// A point in a city (a couple of kilometres from its centre).
fn in_city(v: &Vocab, rng: &mut Rng) -> (f64, f64) {
    let c = v.city(rng);
    let lat = c.lat + rng.gaussian() * 2.0 / 111.2;
    let lon = c.lon + rng.gaussian() * 2.0 / (111.2 * lat.to_radians().cos());
    (lat, lon)
}

pub fn draw(kind: Kind, v: &Vocab, rng: &mut Rng) -> Query {
    let q = Query::new(kind);
    match kind {
        Kind::TextCommon => {
            let n = if rng.chance(0.6) { 1 } else { 2 };
            q.english(v.english_words(rng, 0..60, n))
        }
        Kind::TextRare => q.english(v.english_words(rng, 700..usize::MAX, 1)),
        Kind::TextTag => {
            let mut q = q.english(v.english_words(rng, 0..200, 1));
            q.tag = Some(v.tags[rng.between(0, 49)].clone());
            q
        }
        Kind::Chinese => {
            let n = rng.between(2, 3);
            let words = v.chinese_words(rng, 0..120, n);
            let mut text = String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 && rng.chance(0.5) {
                    text.push_str(["的", "和", "里", "与"][rng.between(0, 3)]);
                }
                text.push_str(w);
            }
            let mut pg_words: Vec<String> = analyzer::terms(&text)
                .into_iter()
                .filter(|t| !analyzer::is_stopword(t))
                .collect();
            pg_words.dedup();
            Query {
                text: Some(text),
                pg_words,
                ..q
            }
        }
        Kind::Radius1 | Kind::Radius10 | Kind::Radius100 => Query {
            near: Some(in_city(v, rng)),
            radius_km: Some(match kind {
                Kind::Radius1 => 1.0,
                Kind::Radius10 => 10.0,
                _ => 100.0,
            }),
            ..q
        },
        Kind::TextRadius => Query {
            near: Some(in_city(v, rng)),
            radius_km: Some(25.0),
            ..q.english(v.english_words(rng, 0..100, 1))
        },
        Kind::BoxDistance => {
            let c = v.city(rng);
            let half_lat = 0.1 + rng.unit() * 0.4;
            let half_lon = half_lat / c.lat.to_radians().cos();
            Query {
                near: Some((c.lat, c.lon)),
                bbox: Some(GeoBox {
                    min_lat: c.lat - half_lat,
                    min_lon: (c.lon - half_lon).max(-180.0),
                    max_lat: c.lat + half_lat,
                    max_lon: (c.lon + half_lon).min(180.0),
                }),
                ..q
            }
        }
    }
}
