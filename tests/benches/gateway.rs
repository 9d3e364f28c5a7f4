//! The image detail page under load, on loopback, with wrk: served from
//! the gateway's cache (the anonymous page kept whole), at a cache miss
//! (the same gateway, routes and layers over a cache that keeps nothing:
//! every request asks the images, users and search roles, in process),
//! and, as the reference measured in the same run, nginx serving the same
//! HTML bytes as a static file. Embedded backends; the page has 12
//! related images and 6 comments.
//!
//! Each is measured with few connections (latency) and with many
//! (throughput); p50, p99 and requests per second, with the ratios to
//! nginx. Goals: cache-hit p99 under 10 ms and at least half of nginx's
//! requests per second; cache-miss p99 under 50 ms. A fourth line is the
//! ceiling of the server's HTTP stack: the same server's `/healthz`, which
//! does no work, through the same layers.
//!
//! Run: `cargo bench -p pinhole-tests --bench gateway` (wrk and nginx:
//! `infra/bench-deps.sh`). `GATEWAY_BENCH_SECONDS` sets each run's length
//! (default 10).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use async_trait::async_trait;
use bytes::Bytes;
use pinhole_cache::{Cache, CacheError};
use pinhole_config::Settings;
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, small_photo};
use reqwest::StatusCode;
use serde_json::json;

/// The server binary's allocator, so that the server here is the one
/// deployed.
#[global_allocator]
static ALLOCATOR: pinhole::Allocator = pinhole::Allocator;

const ROLES: &[&str] = &["users", "images", "thumbnails", "search", "gateway"];
/// Images besides the page's own, all alike: its related list is full.
const ALIKE: usize = 14;
const COMMENTS: usize = 6;
/// Connections for latency, then for throughput.
const CONNECTIONS: [u32; 2] = [4, 64];

/// A cache that keeps nothing: every lookup misses.
struct Forgetful;

#[async_trait]
impl Cache for Forgetful {
    fn kind(&self) -> &'static str {
        "none"
    }
    async fn get(&self, _: &str) -> Result<Option<Bytes>, CacheError> {
        Ok(None)
    }
    async fn set(&self, _: &str, _: Bytes, _: Duration) -> Result<(), CacheError> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> Result<(), CacheError> {
        Ok(())
    }
    async fn add(&self, _: &str, delta: i64, _: Duration) -> Result<i64, CacheError> {
        Ok(delta)
    }
    async fn check(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

/// One wrk run's figures.
struct Figures {
    p50: Duration,
    p99: Duration,
    rps: f64,
    errors: u64,
}

/// `1.23ms`, `456.00us`, `1.02s` as wrk prints them.
fn wrk_duration(s: &str) -> Option<Duration> {
    let (number, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

fn wrk(url: &str, connections: u32, seconds: u64) -> anyhow::Result<Figures> {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--latency", "--timeout", "10s", url])
        .output()
        .context("running wrk (infra/bench-deps.sh installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "wrk: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .with_context(|| format!("no `{prefix}` in wrk's output: {text}"))
    };
    // `Non-2xx or 3xx responses: 5`, `Socket errors: connect 0, read 1, …`
    let errors = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Non-2xx") || l.starts_with("Socket errors"))
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, counts)| counts.split(|c: char| !c.is_ascii_digit()))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    Ok(Figures {
        p50: wrk_duration(line("50%")?).context("p50")?,
        p99: wrk_duration(line("99%")?).context("p99")?,
        rps: line("Requests/sec:")?.parse()?,
        errors,
    })
}

/// nginx serving `html` at `/p/{anything}`, as a static file, on `port`.
fn nginx(dir: &Path, html: &str, port: u16) -> anyhow::Result<Child> {
    std::fs::write(dir.join("page.html"), html)?;
    // Workers run as an unprivileged user when started as root.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(
        dir.join("page.html"),
        std::fs::Permissions::from_mode(0o644),
    )?;
    let d = dir.display();
    let conf = format!(
        "worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {d};
    location /p/ {{
      default_type text/html;
      try_files /page.html =404;
    }}
  }}
}}
"
    );
    std::fs::write(dir.join("nginx.conf"), conf)?;
    let binary = if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    Command::new(binary)
        .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")])
        .stdout(Stdio::null())
        .spawn()
        .context("starting nginx (infra/bench-deps.sh installs it)")
}

/// The page: one image among [`ALIKE`] others like it (so that its related
/// list is full), with [`COMMENTS`] comments; its id.
async fn seed(app: &App) -> anyhow::Result<String> {
    let ann = app.user("ann").await?;
    let bob = app.user("bob").await?;
    let mut ids = Vec::new();
    for n in 0..=ALIKE {
        let image = app
            .posted(
                &ann,
                small_photo("LadyBird.jpg", n + 1)?,
                &[
                    ("title", &format!("Morning fog in the forest, number {n}")),
                    ("description", "Light through fog and trees #forest #fog"),
                    ("tags", "forest,fog,morning"),
                    ("location", "45.07,7.68"),
                ],
            )
            .await?;
        ids.push(image["id"].as_str().context("id")?.to_owned());
    }
    let id = ids[0].clone();
    for n in 0..COMMENTS {
        let (s, b) = app
            .call(
                reqwest::Method::POST,
                &format!("/images/{id}/comments"),
                Some(&bob),
                Some(json!({"body": format!("Lovely light, {n}")})),
            )
            .await?;
        ensure!(s == StatusCode::CREATED, "{s} {b}");
    }
    // Once search has every image, the related list is full.
    wait_for(Duration::from_secs(120), "a full related list", || async {
        let (_, d) = app.get(&format!("/images/{id}/detail"), None).await.ok()?;
        let related = d["related"].as_array()?.len();
        (related >= pinhole_gateway::assemble::RELATED as usize
            && d["comments"].as_array()?.len() == COMMENTS)
            .then_some(())
    })
    .await?;
    Ok(id)
}

/// The page at `url` and how it came (`Server-Timing`).
async fn load(http: &reqwest::Client, url: &str) -> anyhow::Result<(String, String)> {
    let response = http.get(url).send().await?;
    ensure!(
        response.status() == StatusCode::OK,
        "{url}: {}",
        response.status()
    );
    let how = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((response.text().await?, how))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    pinhole::return_freed_memory_at_once();
    let seconds: u64 = std::env::var("GATEWAY_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for tool in ["wrk", "nginx"] {
        let found = Command::new("sh")
            .args([
                "-c",
                &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
            ])
            .stdout(Stdio::null())
            .status()?
            .success();
        if !found {
            bail!("{tool} is missing: run infra/bench-deps.sh");
        }
    }
    let dir = tempfile::tempdir()?;
    let app = App::start_roles(Settings::embedded(dir.path()), dir, ROLES).await?;
    let id = seed(&app).await?;
    let path = format!("/p/{id}");

    // The same gateway over a cache that keeps nothing, on its own port.
    let mut ctx = app.server.ctx.clone();
    ctx.backends.cache = Arc::new(Forgetful);
    let (router, _) = pinhole_gateway::router(&ctx).split_for_parts();
    let router = pinhole_http::apply_layers(router, Duration::from_secs(60), &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let uncached = format!("http://{}{path}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let http = reqwest::Client::new();
    let cached = format!("{}{path}", app.server.url());
    let healthz = format!("{}/healthz", app.server.url());
    let html = wait_for(
        Duration::from_secs(30),
        "the page from the cache",
        || async {
            let (html, how) = load(&http, &cached).await.ok()?;
            how.contains("desc=hit").then_some(html)
        },
    )
    .await?;
    let (_, how) = load(&http, &uncached).await?;
    ensure!(how.contains("desc=miss"), "the uncached gateway: {how}");

    let static_dir = tempfile::tempdir()?;
    let port = pinhole_testkit::free_port()?;
    let mut server = nginx(static_dir.path(), &html, port)?;
    let from_nginx = format!("http://127.0.0.1:{port}{path}");
    let same = wait_for(Duration::from_secs(10), "nginx", || async {
        let response = http.get(&from_nginx).send().await.ok()?;
        response.text().await.ok()
    })
    .await;
    let same = same.map(|body| body == html);

    let mut report = Vec::new();
    let result = async {
        ensure!(same?, "nginx serves other bytes");
        println!(
            "detail page: {} bytes, {} related images, {COMMENTS} comments; wrk -t2, {seconds} s per run, after a 2 s warm-up",
            html.len(),
            pinhole_gateway::assemble::RELATED,
        );
        for connections in CONNECTIONS {
            for (name, url) in [
                ("nginx, static file", &from_nginx),
                ("gateway, cache hit", &cached),
                ("gateway, cache miss", &uncached),
                ("server, /healthz", &healthz),
            ] {
                wrk(url, connections, 2)?;
                let f = wrk(url, connections, seconds)?;
                ensure!(f.errors == 0, "{name}: {} errors", f.errors);
                report.push((connections, name, f));
            }
        }
        Ok(())
    }
    .await;
    // SIGTERM: the master stops its workers too (SIGKILL would leave them).
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    result?;

    println!(
        "{:>5}  {:<22} {:>9} {:>9} {:>10}  {:>13} {:>13}",
        "conns", "", "p50", "p99", "req/s", "req/s : nginx", "p99 : nginx"
    );
    for (connections, name, f) in &report {
        let nginx = report
            .iter()
            .find(|(c, n, _)| c == connections && n.starts_with("nginx"))
            .map(|(_, _, f)| f)
            .context("nginx's run")?;
        println!(
            "{connections:>5}  {name:<22} {:>9} {:>9} {:>10.0}  {:>13.2} {:>13.1}",
            pinhole_tests::bench::ms(f.p50),
            pinhole_tests::bench::ms(f.p99),
            f.rps,
            f.rps / nginx.rps,
            f.p99.as_secs_f64() / nginx.p99.as_secs_f64(),
        );
    }
    let hit = |c: u32| {
        report
            .iter()
            .find(|(n, name, _)| *n == c && name.ends_with("hit"))
            .map(|(_, _, f)| f)
    };
    let miss = |c: u32| {
        report
            .iter()
            .find(|(n, name, _)| *n == c && name.ends_with("miss"))
            .map(|(_, _, f)| f)
    };
    let nginx = |c: u32| {
        report
            .iter()
            .find(|(n, name, _)| *n == c && name.starts_with("nginx"))
            .map(|(_, _, f)| f)
    };
    let [few, many] = CONNECTIONS;
    if let (Some(h), Some(m), Some(hm), Some(nm)) = (hit(few), miss(few), hit(many), nginx(many)) {
        println!(
            "goals: cache-hit p99 {} < 10 ms ({few} conns): {}; cache-hit req/s at least half of nginx's ({many} conns): {:.2} {}; cache-miss p99 {} < 50 ms ({few} conns): {}",
            pinhole_tests::bench::ms(h.p99),
            if h.p99 < Duration::from_millis(10) {
                "met"
            } else {
                "missed"
            },
            hm.rps / nm.rps,
            if hm.rps >= nm.rps / 2.0 {
                "met"
            } else {
                "missed"
            },
            pinhole_tests::bench::ms(m.p99),
            if m.p99 < Duration::from_millis(50) {
                "met"
            } else {
                "missed"
            },
        );
    }
    app.server.stop().await?;
    Ok(())
}
