//! The tantivy index: its schema, how an image or an account becomes a
//! document, and the commit that stores the consumed offsets with the
//! documents (so that what is in the index and where consumption resumes
//! never disagree).

use std::collections::BTreeMap;
use std::path::Path;

use pinhole_bus::Offsets;
use pinhole_events::images::ImageRecord;
use pinhole_events::users::AccountCard;
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexWriter, TantivyDocument, Term};
use uuid::Uuid;

use crate::analyzer;

/// `kind` of image documents.
pub const IMAGE: &str = "image";
/// `kind` of account documents.
pub const USER: &str = "user";

/// Bits of each band of the perceptual hash indexed as a term: two hashes
/// at most [`PHASH_BANDS`] - 1 bits apart share a band.
const PHASH_BAND_BITS: [u32; 6] = [11, 11, 11, 11, 10, 10];
pub const PHASH_BANDS: usize = PHASH_BAND_BITS.len();

/// The fields of the schema.
#[derive(Clone, Copy)]
pub struct Fields {
    pub kind: Field,
    pub id: Field,
    pub owner: Field,
    pub visibility: Field,
    pub private: Field,
    pub title: Field,
    pub description: Field,
    pub all: Field,
    pub tags: Field,
    pub camera: Field,
    pub camera_key: Field,
    pub author: Field,
    pub username: Field,
    pub display_name: Field,
    pub title_words: Field,
    pub taken: Field,
    pub created: Field,
    pub likes: Field,
    pub has_location: Field,
    pub lat: Field,
    pub lon: Field,
    pub cells: Field,
    pub phash: Field,
    pub phash_bands: Field,
}

fn text(stored: bool, tokenizer: &str) -> TextOptions {
    let o = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    if stored { o.set_stored() } else { o }
}

impl Fields {
    pub fn schema() -> (Schema, Self) {
        let mut b = Schema::builder();
        let fields = Self {
            kind: b.add_text_field("kind", STRING),
            id: b.add_text_field("id", STRING | STORED),
            owner: b.add_text_field("owner", STRING | FAST),
            visibility: b.add_text_field("visibility", STRING),
            private: b.add_text_field("private", STRING),
            title: b.add_text_field("title", text(true, analyzer::WORDS)),
            description: b.add_text_field("description", text(true, analyzer::WORDS)),
            all: b.add_text_field("all", text(false, analyzer::WORDS)),
            tags: b.add_text_field("tags", STRING | FAST),
            camera: b.add_text_field("camera", STRING | FAST),
            camera_key: b.add_text_field("camera_key", STRING),
            author: b.add_text_field("author", STRING),
            username: b.add_text_field("username", text(true, analyzer::KEYWORD)),
            display_name: b.add_text_field("display_name", text(true, analyzer::WORDS)),
            title_words: b.add_text_field("title_words", STRING),
            taken: b.add_i64_field("taken", INDEXED | FAST),
            created: b.add_i64_field("created", INDEXED | FAST),
            likes: b.add_u64_field("likes", FAST),
            has_location: b.add_text_field("has_location", STRING),
            lat: b.add_f64_field("lat", FAST),
            lon: b.add_f64_field("lon", FAST),
            cells: b.add_text_field("cells", STRING),
            phash: b.add_u64_field("phash", FAST),
            phash_bands: b.add_text_field("phash_bands", STRING),
        };
        (b.build(), fields)
    }
}

/// Opens the index in `dir`, creating it when there is none.
pub fn open(dir: &Path) -> tantivy::Result<(Index, Fields)> {
    std::fs::create_dir_all(dir)?;
    let (schema, fields) = Fields::schema();
    let schema_copy = schema.clone();
    let directory = MmapDirectory::open(dir)?;
    let index = Index::open_or_create(directory, schema)?;
    index
        .tokenizers()
        .register(analyzer::WORDS, analyzer::words());
    index
        .tokenizers()
        .register(analyzer::KEYWORD, analyzer::keyword());
    if index.schema() != schema_copy {
        return Err(tantivy::TantivyError::SchemaError(format!(
            "the index in {} was made by another version; rebuild it with `pinhole search reindex`",
            dir.display()
        )));
    }
    Ok((index, fields))
}

/// What a commit records beside the documents.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// The next offset to consume, as `topic/partition` → offset.
    pub offsets: BTreeMap<String, i64>,
}

impl Payload {
    pub fn from_offsets(offsets: &Offsets) -> Self {
        Self {
            offsets: offsets
                .iter()
                .map(|((t, p), o)| (format!("{t}/{p}"), *o))
                .collect(),
        }
    }

    pub fn offsets(&self) -> Offsets {
        self.offsets
            .iter()
            .filter_map(|(k, o)| {
                let (t, p) = k.rsplit_once('/')?;
                Some(((t.to_owned(), p.parse().ok()?), *o))
            })
            .collect()
    }

    /// The payload of the last commit of `index`.
    pub fn of(index: &Index) -> tantivy::Result<Self> {
        let metas = index.load_metas()?;
        Ok(metas
            .payload
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default())
    }
}

/// Commits what `writer` holds together with `offsets`.
pub fn commit(writer: &mut IndexWriter, offsets: &Offsets) -> tantivy::Result<()> {
    let payload = serde_json::to_string(&Payload::from_offsets(offsets))
        .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?;
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&payload);
    prepared.commit()?;
    Ok(())
}

/// Everything an image document is made of.
pub struct ImageDoc<'a> {
    pub record: &'a ImageRecord,
    pub author: Option<&'a AccountCard>,
    pub like_count: u64,
    pub comments: &'a [String],
}

/// The term that identifies document `id`.
pub fn id_term(fields: &Fields, id: Uuid) -> Term {
    Term::from_field_text(fields.id, &id.to_string())
}

/// The perceptual hash's bands as terms (`band:value`).
pub fn phash_bands(hash: u64) -> Vec<String> {
    let mut shift = 0;
    PHASH_BAND_BITS
        .iter()
        .enumerate()
        .map(|(i, bits)| {
            let v = (hash >> shift) & ((1u64 << bits) - 1);
            shift += bits;
            format!("{i}:{v:x}")
        })
        .collect()
}

/// The analysis' perceptual hash, if any.
pub fn phash_of(analysis: Option<&serde_json::Value>) -> Option<u64> {
    let hex = analysis?.get("phash")?.as_str()?;
    u64::from_str_radix(hex, 16).ok()
}

/// Milliseconds since the epoch, as dates are indexed.
pub fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The document of an image.
pub fn image_doc(fields: &Fields, d: &ImageDoc<'_>) -> TantivyDocument {
    let r = d.record;
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.kind, IMAGE);
    doc.add_text(fields.id, r.image_id.to_string());
    doc.add_text(fields.owner, r.owner_id.to_string());
    doc.add_text(fields.visibility, r.visibility.as_str());
    let private = d.author.is_none_or(|a| a.is_private);
    doc.add_text(fields.private, if private { "true" } else { "false" });
    let mut all: Vec<&str> = Vec::new();
    if let Some(t) = &r.title {
        doc.add_text(fields.title, t);
        all.push(t);
        for w in t
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 2)
        {
            doc.add_text(fields.title_words, w.to_lowercase());
        }
    }
    if let Some(t) = &r.description {
        doc.add_text(fields.description, t);
        all.push(t);
    }
    if let Some(t) = &r.alt_text {
        all.push(t);
    }
    for tag in &r.tags {
        doc.add_text(fields.tags, tag.to_lowercase());
        all.push(tag);
    }
    if let Some(c) = &r.camera {
        doc.add_text(fields.camera, c);
        doc.add_text(fields.camera_key, c.to_lowercase());
        all.push(c);
    }
    if let Some(a) = d.author {
        doc.add_text(fields.author, a.username.to_lowercase());
        all.push(&a.username);
        if let Some(n) = &a.display_name {
            all.push(n);
        }
    }
    for c in d.comments {
        all.push(c);
    }
    let place;
    match &r.location {
        Some(l) => {
            doc.add_text(fields.has_location, "1");
            doc.add_f64(fields.lat, l.lat);
            doc.add_f64(fields.lon, l.lon);
            for cell in pinhole_geo::cells(l.lat, l.lon) {
                doc.add_text(fields.cells, cell);
            }
            place = [
                l.place_name.as_deref(),
                l.city.as_deref(),
                l.region.as_deref(),
                l.country.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            all.push(&place);
        }
        None => doc.add_text(fields.has_location, "0"),
    }
    doc.add_text(fields.all, all.join("\n"));
    if let Some(t) = r.taken_at {
        doc.add_i64(fields.taken, millis(t));
    }
    doc.add_i64(fields.created, millis(r.created_at));
    doc.add_u64(fields.likes, d.like_count);
    if let Some(h) = phash_of(r.analysis.as_ref()) {
        doc.add_u64(fields.phash, h);
        for b in phash_bands(h) {
            doc.add_text(fields.phash_bands, b);
        }
    }
    doc
}

/// The document of an account (people search).
pub fn user_doc(fields: &Fields, a: &AccountCard) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.kind, USER);
    doc.add_text(fields.id, a.user_id.to_string());
    doc.add_text(fields.owner, a.user_id.to_string());
    doc.add_text(fields.username, &a.username);
    if let Some(n) = &a.display_name {
        doc.add_text(fields.display_name, n);
    }
    doc.add_text(fields.private, if a.is_private { "true" } else { "false" });
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_hashes_share_a_band() {
        let a: u64 = 0xdead_beef_0123_4567;
        for flips in [[0, 20, 40, 60, 63], [1, 2, 3, 4, 5], [11, 22, 33, 44, 54]] {
            let mut b = a;
            for bit in flips {
                b ^= 1 << bit;
            }
            let (x, y) = (phash_bands(a), phash_bands(b));
            assert!(x.iter().zip(&y).any(|(p, q)| p == q), "{flips:?}");
        }
    }

    #[test]
    fn offsets_round_trip_through_the_payload() {
        let mut o = Offsets::new();
        o.insert(("pinhole.images".into(), 3), 17);
        o.insert(("ns.pinhole.users".into(), 0), 2);
        assert_eq!(Payload::from_offsets(&o).offsets(), o);
    }
}
