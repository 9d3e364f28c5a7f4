//! The search role's tantivy index, built and asked as the role does: the
//! production schema and document builder, a 64 MB writer committed with
//! its payload (as `pinhole search reindex`), `query::run` and tantivy's
//! `SnippetGenerator` for highlights.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use pinhole_search::index::{self, Fields, ImageDoc};
use pinhole_search::query::{self, ImageSearchParams};
use pinhole_search::state::Relations;
use tantivy::schema::Value;
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument};

use crate::data::{Photo, Vocab};
use crate::queries::Query;

/// What `pinhole search reindex` gives its writer.
const WRITER_BUDGET: usize = 64 * 1024 * 1024;

pub struct Engine {
    pub fields: Fields,
    pub searcher: Searcher,
}

pub struct Built {
    /// Adding every document and committing.
    pub indexed: Duration,
    /// Then waiting for the merges the commit started.
    pub merged: Duration,
    pub bytes: u64,
    pub segments: usize,
    pub docs: u64,
}

pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn open(dir: &Path) -> anyhow::Result<(Index, Engine)> {
    let (index, fields) = index::open(dir)?;
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    Ok((index, Engine { fields, searcher }))
}

/// Indexes the accounts and `photos` into a new index in `dir`.
pub fn build(dir: &Path, v: &Vocab, photos: &[Photo]) -> anyhow::Result<(Engine, Built)> {
    let (index, fields) = index::open(dir)?;
    let started = Instant::now();
    // `SEARCH_BENCH_WRITER_MB`: another budget than the role's (to measure).
    let budget = std::env::var("SEARCH_BENCH_WRITER_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(WRITER_BUDGET, |mb| mb << 20);
    let mut writer = index.writer(budget)?;
    for a in &v.users {
        writer.add_document(index::user_doc(&fields, a))?;
    }
    for p in photos {
        let doc = index::image_doc(
            &fields,
            &ImageDoc {
                record: &p.record,
                author: Some(&v.users[p.author]),
                like_count: p.likes,
                comments: &[],
            },
        );
        writer.add_document(doc)?;
    }
    index::commit(&mut writer, &Default::default())?;
    let indexed = started.elapsed();
    writer.wait_merging_threads()?;
    let merged = started.elapsed();
    let (_, engine) = open(dir)?;
    let segments = engine.searcher.segment_readers().len();
    let docs = engine.searcher.num_docs();
    Ok((
        engine,
        Built {
            indexed,
            merged,
            bytes: dir_size(dir),
            segments,
            docs,
        },
    ))
}

/// What a query does besides finding the page.
#[derive(Debug, Clone, Copy)]
pub struct Extras {
    pub facets: bool,
    pub highlights: bool,
}

/// Merges every segment of the index in `dir` into one (what a
/// force-merge after a rebuild would give); the time it took.
pub fn merge_all(dir: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (index, _) = index::open(dir)?;
    let mut writer: tantivy::IndexWriter = index.writer(WRITER_BUDGET)?;
    let ids = index.searchable_segment_ids()?;
    if ids.len() > 1 {
        writer.merge(&ids).wait()?;
    }
    writer.wait_merging_threads()?;
    Ok(started.elapsed())
}

/// What one query answered.
pub struct Answer {
    pub took: Duration,
    pub total: u64,
    /// Hits of the page with their stored id.
    pub ids: usize,
}

impl Engine {
    /// Runs `q` as `GET /api/v1/search/images` does for an anonymous
    /// viewer: validation, the query with its collector, then the stored
    /// id of each hit of the page; with `extras`, facets and highlights
    /// of title and description too.
    pub fn run(&self, q: &Query, extras: Extras) -> anyhow::Result<Answer> {
        let started = Instant::now();
        let params = ImageSearchParams {
            q: q.text.clone(),
            tags: q.tag.clone(),
            near: q.near.map(|(lat, lon)| format!("{lat},{lon}")),
            radius_km: q.radius_km.map(|r| r.to_string()),
            bbox: q
                .bbox
                .map(|b| format!("{},{},{},{}", b.min_lat, b.min_lon, b.max_lat, b.max_lon)),
            sort: q.bbox.map(|_| "distance".to_owned()),
            ..Default::default()
        };
        let mut search = params
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: {}", e.0, e.1))?;
        search.facets = extras.facets;
        let (found, text) = query::run(
            &self.searcher,
            &self.fields,
            &search,
            None,
            &Relations::default(),
        )?;
        let mut highlighters = Vec::new();
        if extras.highlights
            && let Some(text) = &text
        {
            for field in [self.fields.title, self.fields.description] {
                let mut g = SnippetGenerator::create(&self.searcher, &**text, field)?;
                g.set_max_num_chars(200);
                highlighters.push(g);
            }
        }
        let mut ids = 0;
        let mut marked = 0usize;
        for hit in &found.hits {
            let doc: TantivyDocument = self.searcher.doc(hit.address)?;
            let id = doc
                .get_first(self.fields.id)
                .and_then(|v| v.as_str())
                .context("a hit without an id")?;
            ids += usize::from(!id.is_empty());
            for g in &highlighters {
                let mut snippet = g.snippet_from_doc(&doc);
                snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
                if !snippet.highlighted().is_empty() {
                    marked += snippet.to_html().len();
                }
            }
        }
        std::hint::black_box((marked, &found.tags, &found.cameras));
        Ok(Answer {
            took: started.elapsed(),
            total: found.total,
            ids,
        })
    }
}
