//! Search speed (issue 12): a million synthetic photos in the search
//! role's tantivy index and in PostgreSQL (tsvector + GIN, PostGIS), the
//! same query mix on both in one run, alternating.
//!
//! Run:
//!
//! ```sh
//! infra/bench-deps.sh          # PostGIS, once
//! cargo bench -p pinhole-tests --bench search
//! SEARCH_BENCH_DOCS=100000 cargo bench -p pinhole-tests --bench search   # quick
//! ```
//!
//! `cargo bench` builds with the `bench` profile (release settings), so
//! our own crates are optimised too: the analyzer, the document builder,
//! the geo cells and the collector are ours, and the `dev` profile
//! optimises dependencies only (`--profile dev` runs, but says its figures
//! are not representative). The first optimised build of the workspace
//! takes about half an hour on 2 cores; afterwards the executable can be
//! run directly (`target/release/deps/search-*`).
//!
//! Settings (environment): `SEARCH_BENCH_DOCS` (photos, default
//! 1,000,000; or pass the number as an argument), `SEARCH_BENCH_QUERIES`
//! (per query type, default 200, after 20 of warm-up),
//! `SEARCH_BENCH_KEEP=1` (keep the index directory and the database and
//! print where they are), `SEARCH_BENCH_INDEX_DIR` and `SEARCH_BENCH_PG_DB`
//! (reuse those kept; nothing is generated then; `SEARCH_BENCH_PG_DB=none`
//! leaves PostgreSQL out), `SEARCH_BENCH_TYPES` (only these query types,
//! by name, comma-separated), `SEARCH_BENCH_EXTRAS` (`facets` or
//! `highlights`: only that in the +fh column), `SEARCH_BENCH_MERGE=1`
//! (merge the index into one segment before the queries),
//! `SEARCH_BENCH_WRITER_MB` (the index writer's memory, default the role's
//! 64),
//! `PINHOLE_TEST_POSTGRES`
//! (the server, default `postgres://postgres@127.0.0.1:5432`).

mod data;
mod engine;
mod postgres;
mod queries;
mod words;

use std::time::{Duration, Instant};

use anyhow::Context;
use pinhole_tests::bench::percentile;

use crate::data::{Rng, Vocab};
use crate::engine::Extras;
use crate::postgres::Postgres;
use crate::queries::Kind;

const WARM_UP: usize = 20;
/// Goals of issue 12.
const GOAL_P99: Duration = Duration::from_millis(10);
const GOAL_P99_EXTRAS: Duration = Duration::from_millis(20);
const GOAL_RATIO: f64 = 10.0;
const GOAL_DOCS_PER_SEC: f64 = 20_000.0;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// CPU seconds this process has used (user + system; Linux clock ticks
/// of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// The 1-minute load average: other work on the machine skews every
/// figure (2 cores).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Latencies and totals of one engine on one query type.
#[derive(Default)]
struct Samples {
    took: Vec<Duration>,
    totals: u64,
    /// Answers whose page was not `min(total, 20)` long.
    short_pages: usize,
}

impl Samples {
    fn push(&mut self, took: Duration, total: u64, page: usize) {
        self.took.push(took);
        self.totals += total;
        self.short_pages += usize::from(page as u64 != total.min(20));
    }

    fn p(&mut self, q: f64) -> Duration {
        percentile(&mut self.took, q)
    }
}

/// The results: p50 and p99 per query type and engine, the ratios and
/// the goals.
fn print_table(kinds: &[Kind], mut samples: [Vec<Samples>; 3], per_type: usize, with_pg: bool) {
    println!(
        "{:<17} | {:>8} {:>8} | {:>8} {:>8} | {:>8} {:>9} | {:>7} {:>7} | {:>9} {:>9} | goals",
        "p50/p99 in ms",
        "index50",
        "index99",
        "+fh 50",
        "+fh 99",
        "pg 50",
        "pg 99",
        "pg/idx",
        "pg/+fh",
        "hits idx",
        "hits pg",
    );
    println!("{}", "-".repeat(130));
    let (mut met_plain, mut met_extras, mut met_ratio) = (0, 0, 0);
    let mut mix_ratio = (0.0, 0.0);
    let n = per_type.max(1) as u64;
    // The whole mix: every query of every type together.
    let pooled = |s: &[Samples]| Samples {
        took: s.iter().flat_map(|s| s.took.iter().copied()).collect(),
        totals: s.iter().map(|s| s.totals).sum::<u64>() / s.len().max(1) as u64,
        short_pages: 0,
    };
    for s in &mut samples {
        s.push(pooled(s));
    }
    let [index_plain, index_extras, postgres] = &mut samples;
    let names: Vec<&str> = kinds
        .iter()
        .map(|k| k.name())
        .chain(["whole mix"])
        .collect();
    for (k, name) in names.iter().enumerate() {
        if k == kinds.len() {
            println!("{}", "-".repeat(130));
        }
        let (i50, i99) = (index_plain[k].p(0.5), index_plain[k].p(0.99));
        let (e50, e99) = (index_extras[k].p(0.5), index_extras[k].p(0.99));
        let has_pg = !postgres[k].took.is_empty();
        let (p50, p99) = (postgres[k].p(0.5), postgres[k].p(0.99));
        let ratio = p99.as_secs_f64() / i99.as_secs_f64();
        let ratio_extras = p99.as_secs_f64() / e99.as_secs_f64();
        let ok_plain = i99 < GOAL_P99;
        let ok_extras = e99 < GOAL_P99_EXTRAS;
        let ok_ratio = has_pg && ratio >= GOAL_RATIO;
        if k < kinds.len() {
            met_plain += usize::from(ok_plain);
            met_extras += usize::from(ok_extras);
            met_ratio += usize::from(ok_ratio);
        } else {
            mix_ratio = (ratio, ratio_extras);
        }
        let mut missed = Vec::new();
        if !ok_plain {
            missed.push("p99>=10ms");
        }
        if !ok_extras {
            missed.push("+fh p99>=20ms");
        }
        if !ok_ratio {
            missed.push("pg/idx<10x");
        }
        println!(
            "{:<17} | {:>8} {:>8} | {:>8} {:>8} | {:>8} {:>9} | {:>7} {:>7} | {:>9} {:>9} | {}",
            name,
            ms(i50),
            ms(i99),
            ms(e50),
            ms(e99),
            if has_pg { ms(p50) } else { "-".into() },
            if has_pg { ms(p99) } else { "-".into() },
            if has_pg {
                format!("{ratio:.1}x")
            } else {
                "-".into()
            },
            if has_pg {
                format!("{ratio_extras:.1}x")
            } else {
                "-".into()
            },
            index_plain[k].totals / n,
            if has_pg {
                (postgres[k].totals / n).to_string()
            } else {
                "-".into()
            },
            if missed.is_empty() {
                "ok".to_owned()
            } else {
                missed.join(", ")
            },
        );
    }
    let types = kinds.len();
    println!(
        "\nindex = the search role, facets and highlights off; +fh = facets (tags, camera) and highlights \
         (title, description) on; pg = PostgreSQL {}; pg/idx = pg p99 / index p99; hits = mean matches \
         per query (`total`).\n\
         goals: index p99 < {} ms: {met_plain} of {types} types; +fh p99 < {} ms: {met_extras} of {types} types; \
         pg p99 >= {GOAL_RATIO}x index p99: whole mix {:.1}x ({:.1}x with +fh), {met_ratio} of {types} types",
        if with_pg { "(jit off)" } else { "(skipped)" },
        GOAL_P99.as_millis(),
        GOAL_P99_EXTRAS.as_millis(),
        mix_ratio.0,
        mix_ratio.1,
    );

    let short: usize = samples
        .iter()
        .flat_map(|s| s.iter().map(|s| s.short_pages))
        .sum();
    if short > 0 {
        println!("WARNING: {short} answers had a page shorter than min(total, 20)");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let docs = std::env::args()
        .skip(1)
        .find_map(|a| a.replace(['_', ','], "").parse().ok())
        .or_else(|| env_usize("SEARCH_BENCH_DOCS"))
        .unwrap_or(1_000_000);
    let per_type = env_usize("SEARCH_BENCH_QUERIES").unwrap_or(200);
    let keep = std::env::var("SEARCH_BENCH_KEEP").is_ok_and(|v| v == "1");
    let reuse_dir = std::env::var("SEARCH_BENCH_INDEX_DIR").ok();
    let reuse_db = std::env::var("SEARCH_BENCH_PG_DB").ok();
    let users = (docs / 20).max(1000);
    println!(
        "search bench: {docs} photos by {users} authors, {per_type} queries per type after {WARM_UP} of warm-up{}",
        if cfg!(debug_assertions) {
            " (DEBUG BUILD: numbers of our own crates are not representative)"
        } else {
            ""
        }
    );

    let started = Instant::now();
    pinhole_geo::preload_places();
    pinhole_search::analyzer::warm_up();
    let vocab = Vocab::new(users);
    let photos = if reuse_dir.is_some() && reuse_db.is_some() {
        Vec::new()
    } else {
        let mut rng = Rng::new(0x05E7_0002);
        (0..docs).map(|_| data::photo(&vocab, &mut rng)).collect()
    };
    println!(
        "generated in {:.1} s ({} English words, {} Chinese words, {} tags, {} cities)",
        started.elapsed().as_secs_f64(),
        vocab.english.len(),
        vocab.chinese.len(),
        vocab.tags.len(),
        vocab.cities.len(),
    );

    // The index.
    let tmp = tempfile::Builder::new().prefix("search-bench").tempdir()?;
    let (engine, index_dir) = match &reuse_dir {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            let (_, engine) = engine::open(&dir)?;
            println!(
                "index: reusing {} ({} documents, {} segments, {})",
                dir.display(),
                engine.searcher.num_docs(),
                engine.searcher.segment_readers().len(),
                mb(engine::dir_size(&dir)),
            );
            (engine, dir)
        }
        None => {
            let dir = tmp.path().join("index");
            let (cpu, load_before) = (cpu_seconds(), load());
            let (engine, built) = engine::build(&dir, &vocab, &photos)?;
            let cpu = cpu_seconds() - cpu;
            let rate = photos.len() as f64 / built.indexed.as_secs_f64();
            println!(
                "index: {} documents ({} photos + {} accounts) in {:.1} s with the commit = {:.0} photos/s (goal >= {:.0}: {}); \
                 {cpu:.0} CPU-s; load average {load_before} before, {} after; merges done at {:.1} s; {} on disk, {} segments",
                built.docs,
                photos.len(),
                vocab.users.len(),
                built.indexed.as_secs_f64(),
                rate,
                GOAL_DOCS_PER_SEC,
                mark(rate >= GOAL_DOCS_PER_SEC),
                load(),
                built.merged.as_secs_f64(),
                mb(built.bytes),
                built.segments,
            );
            (engine, dir)
        }
    };

    // `SEARCH_BENCH_MERGE=1`: one segment (what a force-merge after the
    // rebuild would give).
    let engine = if std::env::var("SEARCH_BENCH_MERGE").is_ok_and(|v| v == "1") {
        drop(engine);
        let took = engine::merge_all(&index_dir)?;
        let (_, engine) = engine::open(&index_dir)?;
        println!(
            "index: merged into {} segment(s) in {:.1} s, {} on disk",
            engine.searcher.segment_readers().len(),
            took.as_secs_f64(),
            mb(engine::dir_size(&index_dir)),
        );
        engine
    } else {
        engine
    };

    // PostgreSQL.
    let server = pinhole_testkit::postgres_server();
    let mut pg = match &reuse_db {
        Some(db) if db == "none" => {
            println!("postgres: skipped (SEARCH_BENCH_PG_DB=none)");
            None
        }
        Some(db) => {
            let mut pg = Postgres::connect(&server, db, false).await?;
            let (table, indexes) = pg.sizes().await?;
            println!(
                "postgres: reusing database {db} ({} rows, table {}, indexes {})",
                pg.count().await?,
                mb(table as u64),
                mb(indexes as u64)
            );
            Some(pg)
        }
        None if !Postgres::has_postgis(&server).await? => {
            println!("postgres: SKIPPED, PostGIS is missing. Install it with: infra/bench-deps.sh");
            None
        }
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let db = format!("pinhole_bench_search_{now}");
            let mut pg = Postgres::connect(&server, &db, true).await?;
            let loaded = pg.load(&vocab, &photos).await?;
            println!(
                "postgres: COPY of {} rows in {:.1} s ({:.0} rows/s, tsvector computed on the way), indexes in {:.1} s, VACUUM ANALYZE in {:.1} s; table {}, indexes {}",
                photos.len(),
                loaded.copy.as_secs_f64(),
                photos.len() as f64 / loaded.copy.as_secs_f64(),
                loaded.indexes.as_secs_f64(),
                loaded.analyze.as_secs_f64(),
                mb(loaded.table_bytes as u64),
                mb(loaded.index_bytes as u64),
            );
            Some(pg)
        }
    };
    drop(photos);

    // The query mix: each query once on each side, in an order that turns.
    let mut rng = Rng::new(0x05E7_0003);
    let only = std::env::var("SEARCH_BENCH_TYPES").unwrap_or_default();
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| only.is_empty() || only.split(',').any(|o| o.trim() == k.name()))
        .collect();
    let mut index_plain: Vec<Samples> = kinds.iter().map(|_| Samples::default()).collect();
    let mut index_extras: Vec<Samples> = kinds.iter().map(|_| Samples::default()).collect();
    let mut postgres: Vec<Samples> = kinds.iter().map(|_| Samples::default()).collect();
    // `SEARCH_BENCH_EXTRAS=facets` or `highlights` turns on only that in
    // the +fh runs (to tell their costs apart).
    let which = std::env::var("SEARCH_BENCH_EXTRAS").unwrap_or_default();
    let plain = Extras {
        facets: false,
        highlights: false,
    };
    let extras = Extras {
        facets: which != "highlights",
        highlights: which != "facets",
    };
    if !which.is_empty() {
        println!("+fh below means: {extras:?}");
    }
    let started = Instant::now();
    let load_before = load();
    for round in 0..WARM_UP + per_type {
        let measured = round >= WARM_UP;
        for (k, kind) in kinds.iter().enumerate() {
            let q = queries::draw(*kind, &vocab, &mut rng);
            for turn in 0..3 {
                match (round + k + turn) % 3 {
                    0 => {
                        let a = engine.run(&q, plain)?;
                        if measured {
                            index_plain[k].push(a.took, a.total, a.ids);
                        }
                    }
                    1 => {
                        let a = engine.run(&q, extras)?;
                        if measured {
                            index_extras[k].push(a.took, a.total, a.ids);
                        }
                    }
                    _ => {
                        if let Some(pg) = pg.as_mut() {
                            let (took, total, page) = pg
                                .run(&q)
                                .await
                                .with_context(|| format!("postgres: {q:?}"))?;
                            if measured {
                                postgres[k].push(took, total, page);
                            }
                        }
                    }
                }
            }
        }
    }
    println!(
        "queries: {} in {:.0} s, load average {load_before} before, {} after\n",
        (WARM_UP + per_type) * kinds.len() * if pg.is_some() { 3 } else { 2 },
        started.elapsed().as_secs_f64(),
        load(),
    );

    print_table(
        &kinds,
        [index_plain, index_extras, postgres],
        per_type,
        pg.is_some(),
    );

    if let Some(pg) = pg {
        if keep || reuse_db.is_some() {
            println!("postgres: kept database {}", pg.database);
        } else {
            pg.drop_database().await?;
        }
    }
    if keep && reuse_dir.is_none() {
        let kept = tmp.keep();
        println!("index: kept {}", kept.join("index").display());
    }
    Ok(())
}
