//! Upload benchmark: multipart uploads of 5 MB camera JPEGs from 16
//! concurrent clients, on embedded backends and on Postgres, Redis, Kafka
//! and S3. Reports uploads accepted per second and the accept latency
//! (p50/p99), with a reference measured in the same run: the same requests
//! against a bare axum handler that only reads the body (the HTTP floor).
//!
//! Run: `cargo bench -p pinhole-tests --bench uploads` (with
//! `infra/stack.sh up` for the real-backend part).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pinhole_config::Settings;
use pinhole_tests::app::variant;
use pinhole_tests::bench::{ms, percentile};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const PER_CLIENT: usize = 8;
const TARGET_BYTES: usize = 5 * 1024 * 1024;

/// A real 3840×2160 photo re-encoded to about 5 MB.
fn five_mb_jpeg() -> anyhow::Result<Vec<u8>> {
    let path = "/usr/share/backgrounds/mate/abstract/Elephants_3840x2160.jpg";
    let img = image::open(path)
        .map_err(|e| anyhow::anyhow!("{path}: {e} (install mate-backgrounds)"))?
        .to_rgb8();
    let (mut low, mut high) = (50u8, 100u8);
    let mut best = Vec::new();
    while low <= high {
        let q = (low + high) / 2;
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q).encode_image(&img)?;
        if out.len() >= TARGET_BYTES {
            best = out;
            high = q - 1;
        } else {
            low = q + 1;
        }
    }
    anyhow::ensure!(!best.is_empty(), "could not reach 5 MB");
    Ok(best)
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// 16 clients, each sending its files one after another.
async fn hammer(
    url: &str,
    token: Option<&str>,
    files: &Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<Figures> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (http, url, token, files) = (
            http.clone(),
            url.to_owned(),
            token.map(str::to_owned),
            Arc::clone(files),
        );
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..PER_CLIENT {
                let file = files[c * PER_CLIENT + i].clone();
                let form = Form::new()
                    .part("file", Part::bytes(file).file_name("photo.jpg"))
                    .text("title", "bench");
                let mut request = http.post(&url).multipart(form);
                if let Some(t) = &token {
                    request = request.bearer_auth(t);
                }
                let t0 = Instant::now();
                let response = request.send().await?;
                let status = response.status();
                let _ = response.bytes().await?;
                anyhow::ensure!(status.is_success(), "upload answered {status}");
                latencies.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await??);
    }
    let elapsed = started.elapsed();
    Ok(Figures {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&mut all, 0.50),
        p99: percentile(&mut all, 0.99),
    })
}

/// The reference: an axum handler that reads the multipart body and
/// answers; with `durable`, it also writes the body to a file and waits for
/// the disk (fsync), as anything that keeps an upload must.
async fn floor(files: &Arc<Vec<Vec<u8>>>, durable: bool) -> anyhow::Result<Figures> {
    use axum::extract::{DefaultBodyLimit, Multipart};
    let dir = Arc::new(tempfile::tempdir()?);
    let app = axum::Router::new()
        .route(
            "/upload",
            axum::routing::post(move |mut m: Multipart| async move {
                let mut body = Vec::new();
                let mut n = 0;
                while let Ok(Some(mut f)) = m.next_field().await {
                    while let Ok(Some(c)) = f.chunk().await {
                        n += c.len();
                        if durable {
                            body.extend_from_slice(&c);
                        }
                    }
                }
                if durable {
                    let path = dir.path().join(uuid::Uuid::new_v4().to_string());
                    let kept = tokio::task::spawn_blocking(move || {
                        use std::io::Write;
                        let mut file = std::fs::File::create(&path)?;
                        file.write_all(&body)?;
                        file.sync_all()?;
                        std::fs::remove_file(&path)
                    })
                    .await;
                    if !matches!(kept, Ok(Ok(()))) {
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new());
                    }
                }
                (axum::http::StatusCode::ACCEPTED, n.to_string())
            }),
        )
        .layer(DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/upload", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let figures = hammer(&url, None, files).await;
    server.abort();
    figures
}

async fn run(
    label: &str,
    settings: Settings,
    roles: &[&str],
    files: &Arc<Vec<Vec<u8>>>,
    reference: &Figures,
) -> anyhow::Result<()> {
    let server = pinhole::start(settings, roles).await?;
    let base = format!("{}/api/v1", server.url());
    let http = reqwest::Client::new();
    let password = "correct horse battery";
    http.post(format!("{base}/accounts"))
        .json(&json!({ "username": "bench", "email": "bench@example.com", "password": password }))
        .send()
        .await?;
    let session: Value = http
        .post(format!("{base}/sessions"))
        .json(&json!({ "login": "bench", "password": password }))
        .send()
        .await?
        .json()
        .await?;
    let token = session["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let f = hammer(&format!("{base}/images"), Some(&token), files).await?;
    println!(
        "{label:<44} {:>6.1} uploads/s ({:.2}x the floor)  p50 {:>9} ({:.2}x)  p99 {:>9} ({:.2}x)",
        f.per_second,
        f.per_second / reference.per_second,
        ms(f.p50),
        f.p50.as_secs_f64() / reference.p50.as_secs_f64(),
        ms(f.p99),
        f.p99.as_secs_f64() / reference.p99.as_secs_f64(),
    );
    server.stop().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = five_mb_jpeg()?;
    let files: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..CLIENTS * PER_CLIENT)
            .map(|i| variant(&base, i))
            .collect(),
    );
    println!(
        "{} uploads of {:.2} MB JPEGs (3840x2160, a real photo), {CLIENTS} concurrent clients, 2 cores",
        files.len(),
        base.len() as f64 / 1e6
    );
    let reference = floor(&files, false).await?;
    println!(
        "{:<44} {:>6.1} uploads/s                    p50 {:>9}          p99 {:>9}",
        "reference: bare axum multipart read",
        reference.per_second,
        ms(reference.p50),
        ms(reference.p99)
    );
    let durable = floor(&files, true).await?;
    println!(
        "{:<44} {:>6.1} uploads/s ({:.2}x the floor)  p50 {:>9}          p99 {:>9}",
        "also: the same, written to a file + fsync",
        durable.per_second,
        durable.per_second / reference.per_second,
        ms(durable.p50),
        ms(durable.p99)
    );
    let dir = tempfile::tempdir()?;
    run(
        "embedded, images role (accept path)",
        Settings::embedded(dir.path().join("a")),
        &["users", "images"],
        &files,
        &reference,
    )
    .await?;
    let dir2 = tempfile::tempdir()?;
    run(
        "embedded, all-in-one (thumbnails busy too)",
        Settings::embedded(dir2.path()),
        &["users", "images", "thumbnails"],
        &files,
        &reference,
    )
    .await?;

    let real = async {
        let dir = tempfile::tempdir()?;
        let settings = pinhole_tests::real_settings(dir.path(), "bench").await?;
        run(
            "postgres+redis+kafka+s3, images role",
            settings,
            &["users", "images"],
            &files,
            &reference,
        )
        .await?;
        Ok::<_, anyhow::Error>(dir)
    };
    if let Err(e) = real.await {
        println!("real backends skipped: {e:#} (run infra/stack.sh up)");
    }
    Ok(())
}
