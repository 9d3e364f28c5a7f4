//! Soak (issue 14): minutes of mixed load from concurrent clients against
//! one server (uploads, feeds, likes and unlikes, unsigned preset
//! transforms, explore, deletes), on the embedded backends and on the real
//! ones (Postgres, Redis, Kafka, S3). Reports throughput and p50/p99 per
//! kind of request, errors (any transport failure or answer outside what
//! the request can rightly get; goal 0), the process's resident memory
//! over time (server and clients share the process; goal: flat after
//! warm-up), and at the end, once the work in flight has settled, the blob
//! store against the references (goal: nothing missing, nothing orphaned).
//!
//! Run: `cargo bench -p pinhole-tests --bench soak -- [MINUTES [embedded|real]]`
//! (default 30 minutes on each backend; `infra/stack.sh up` for the real
//! backends).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use pinhole_tests::app::{App, check_all, photo, variant};
use pinhole_tests::bench::{ms, percentile};
use reqwest::{Method, StatusCode};

/// The server binary's allocator, so that the memory measured is the
/// deployed server's (glibc's malloc holds on to far more under this load).
#[global_allocator]
static ALLOCATOR: pinhole::Allocator = pinhole::Allocator;

const CLIENTS: usize = 8;
/// How often resident memory is sampled.
const SAMPLE: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Upload,
    Feed,
    Like,
    Unlike,
    Transform,
    Explore,
    Delete,
}

/// Twenty steps a client repeats: mostly reads, two uploads (each waits
/// for its processing, as an app showing the new photo does) and one
/// delete, so that stored content grows and is collected too.
const MIX: [Op; 20] = [
    Op::Upload,
    Op::Feed,
    Op::Like,
    Op::Transform,
    Op::Feed,
    Op::Explore,
    Op::Unlike,
    Op::Transform,
    Op::Explore,
    Op::Feed,
    Op::Upload,
    Op::Like,
    Op::Transform,
    Op::Feed,
    Op::Delete,
    Op::Transform,
    Op::Unlike,
    Op::Transform,
    Op::Explore,
    Op::Feed,
];

#[derive(Default)]
struct Tally {
    took: BTreeMap<Op, Vec<Duration>>,
    /// Requests about an image deleted (or not yet processed) meanwhile:
    /// a 404 they rightly get.
    gone: BTreeMap<Op, usize>,
    errors: BTreeMap<Op, usize>,
    first_errors: Vec<String>,
}

struct Shared {
    app: App,
    /// Images any client may like or transform.
    public: Mutex<Vec<String>>,
    uploads: AtomicUsize,
    picture: Vec<u8>,
    tally: Mutex<Tally>,
}

impl Shared {
    fn pick(&self, n: usize) -> Option<String> {
        let public = self.public.lock().ok()?;
        (!public.is_empty()).then(|| public[n % public.len()].clone())
    }

    fn record(
        &self,
        op: Op,
        took: Duration,
        outcome: Result<StatusCode, String>,
        ok: &[StatusCode],
    ) {
        let Ok(mut t) = self.tally.lock() else {
            return;
        };
        match outcome {
            Ok(status) if ok.contains(&status) => t.took.entry(op).or_default().push(took),
            Ok(StatusCode::NOT_FOUND) if op != Op::Feed && op != Op::Explore => {
                *t.gone.entry(op).or_default() += 1;
            }
            other => {
                *t.errors.entry(op).or_default() += 1;
                if t.first_errors.len() < 10 {
                    t.first_errors.push(format!("{op:?}: {other:?}"));
                }
            }
        }
    }
}

/// One client: its own account and images, the shared list for the rest.
async fn client(shared: Arc<Shared>, index: usize, until: Instant) -> anyhow::Result<()> {
    let app = &shared.app;
    let token = app.user(&format!("soak{index}")).await?;
    let mut mine: Vec<String> = Vec::new();
    let mut step = index;
    while Instant::now() < until {
        let op = MIX[step % MIX.len()];
        step += 1;
        let started = Instant::now();
        let (outcome, ok): (Result<StatusCode, String>, &[StatusCode]) = match op {
            Op::Upload => {
                let n = shared.uploads.fetch_add(1, Ordering::Relaxed);
                let answer = app
                    .upload(
                        &token,
                        variant(&shared.picture, n),
                        &[],
                        "?wait=true&timeout=60",
                    )
                    .await;
                if let Ok((_, body)) = &answer
                    && body["status"] == "done"
                    && let Some(id) = body["image_id"].as_str()
                {
                    mine.push(id.to_owned());
                    if let Ok(mut public) = shared.public.lock() {
                        public.push(id.to_owned());
                    }
                }
                (
                    answer.map(|(s, _)| s).map_err(|e| e.to_string()),
                    &[StatusCode::OK],
                )
            }
            Op::Feed | Op::Explore => {
                let path = if op == Op::Feed {
                    "/feed?limit=20"
                } else {
                    "/explore"
                };
                let answer = app.get(path, Some(&token)).await;
                (
                    answer.map(|(s, _)| s).map_err(|e| e.to_string()),
                    &[StatusCode::OK],
                )
            }
            Op::Like | Op::Unlike => {
                let Some(id) = shared.pick(step) else {
                    continue;
                };
                let method = if op == Op::Like {
                    Method::POST
                } else {
                    Method::DELETE
                };
                let answer = app
                    .call(method, &format!("/images/{id}/like"), Some(&token), None)
                    .await;
                (
                    answer.map(|(s, _)| s).map_err(|e| e.to_string()),
                    &[StatusCode::OK, StatusCode::CREATED, StatusCode::NO_CONTENT],
                )
            }
            Op::Transform => {
                let Some(id) = shared.pick(step * 7) else {
                    continue;
                };
                let answer = app.bytes(&format!("/t/_/pr:thumb/{id}.jpg"), None).await;
                (
                    answer.map(|(s, _)| s).map_err(|e| e.to_string()),
                    &[StatusCode::OK],
                )
            }
            Op::Delete => {
                if mine.len() < 4 {
                    continue;
                }
                let id = mine.remove(0);
                if let Ok(mut public) = shared.public.lock() {
                    public.retain(|p| *p != id);
                }
                let answer = app
                    .call(Method::DELETE, &format!("/images/{id}"), Some(&token), None)
                    .await;
                (
                    answer.map(|(s, _)| s).map_err(|e| e.to_string()),
                    &[StatusCode::NO_CONTENT],
                )
            }
        };
        shared.record(op, started.elapsed(), outcome, ok);
    }
    Ok(())
}

/// Resident memory of this process in MiB: all of it, and the part that is
/// anonymous (heap), apart from file pages (mapped indexes and libraries),
/// which grow with the data and the kernel may drop.
#[derive(Clone, Copy, Default)]
struct Rss {
    total: f64,
    anon: f64,
    /// What the in-process cache holds (keys and values), when there is one.
    cache: Option<f64>,
}

fn rss() -> Option<Rss> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some(Rss {
        total: field("VmRSS:")?,
        anon: field("RssAnon:")?,
        cache: None,
    })
}

async fn run(name: &str, app: App, minutes: f64) -> anyhow::Result<()> {
    // A 1920x1280 camera photo: a phone's upload after its own resizing.
    let full = image::load_from_memory(&photo("Storm.jpg")?)?;
    let mut picture = std::io::Cursor::new(Vec::new());
    full.resize(1920, 1280, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .write_to(&mut picture, image::ImageFormat::Jpeg)?;
    let probe = app.probe();
    let shared = Arc::new(Shared {
        app,
        public: Mutex::new(Vec::new()),
        uploads: AtomicUsize::new(0),
        picture: picture.into_inner(),
        tally: Mutex::new(Tally::default()),
    });
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(minutes * 60.0);
    let cache = Arc::clone(&shared.app.server.ctx.backends.cache);
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < until {
            let mut now = rss().unwrap_or_default();
            now.cache = cache
                .held_bytes()
                .map(|held| held as f64 / (1024.0 * 1024.0));
            samples.push((started.elapsed(), now));
            tokio::time::sleep(SAMPLE).await;
        }
        samples
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(Arc::clone(&shared), i, until)))
        .collect();
    for c in clients {
        c.await??;
    }
    let elapsed = started.elapsed();
    let samples = sampler.await?;

    let tally = std::mem::take(&mut *shared.tally.lock().ok().context("tally")?);
    let total: usize = tally.took.values().map(Vec::len).sum();
    println!(
        "{name}: {minutes} min, {CLIENTS} clients, {total} requests answered as expected ({:.1}/s), {} uploads",
        total as f64 / elapsed.as_secs_f64(),
        shared.uploads.load(Ordering::Relaxed)
    );
    for (op, mut took) in tally.took {
        println!(
            "  {:<10} {:>7} ok  {:>6.1}/s  p50 {:>9}  p99 {:>9}  gone {:>4}  errors {}",
            format!("{op:?}"),
            took.len(),
            took.len() as f64 / elapsed.as_secs_f64(),
            ms(percentile(&mut took, 0.5)),
            ms(percentile(&mut took, 0.99)),
            tally.gone.get(&op).copied().unwrap_or(0),
            tally.errors.get(&op).copied().unwrap_or(0),
        );
    }
    let errors: usize = tally.errors.values().sum();
    println!("  errors: {errors} {:?}", tally.first_errors);
    // Resident memory: a line per tenth of the run.
    let every = (samples.len() / 10).max(1);
    let line: Vec<String> = samples
        .iter()
        .step_by(every)
        .map(|(at, rss)| {
            let cache = rss
                .cache
                .map_or_else(String::new, |c| format!(", cache {c:.0}"));
            format!(
                "{:.0}s {:.0} ({:.0}{cache})",
                at.as_secs_f64(),
                rss.total,
                rss.anon
            )
        })
        .collect();
    println!(
        "  RSS MiB over time (anonymous part, in-process cache's keys and values): {}",
        line.join(", ")
    );

    // Let the work in flight settle, then compare the store with the
    // references.
    let settled = probe.assert_clean().await;
    let report = check_all(&shared.app.server.ctx, Duration::ZERO).await?;
    let [originals, derivatives] = [&report.images, &report.thumbnails];
    match &settled {
        Ok(()) => println!("  blob store: clean, nothing missing, nothing orphaned"),
        Err(e) => println!("  blob store: NOT clean: {e:#}"),
    }
    println!(
        "  then: originals {} stored / {} referenced, derivatives {} / {}, {} missing, {} orphaned",
        originals.objects,
        originals.referenced,
        derivatives.objects,
        derivatives.referenced,
        originals.missing + derivatives.missing,
        originals.orphaned + derivatives.orphaned,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pinhole::return_freed_memory_at_once();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let minutes: f64 = args
        .first()
        .map_or(Ok(30.0), |a| a.parse())
        .context("the first argument is the minutes of load per backend")?;
    let only = args.get(1).map(String::as_str);
    anyhow::ensure!(
        matches!(only, None | Some("embedded" | "real")),
        "the second argument, if any, is `embedded` or `real`"
    );
    if only != Some("real") {
        run("embedded", App::embedded().await?, minutes).await?;
    }
    if only == Some("embedded") {
        return Ok(());
    }
    match App::real().await {
        Ok(app) => run("postgres+redis+kafka+s3", app, minutes).await?,
        Err(e) => println!("real backends skipped: {e:#} (run infra/stack.sh up)"),
    }
    Ok(())
}
