//! Upload-to-derivatives-ready latency: 12 MP camera JPEGs uploaded by 4
//! concurrent clients with `?wait=true` (the answer comes when every
//! derivative, placeholder, hash and face box is stored), all-in-one on the
//! embedded backends. The reference, measured in the same run, is making one
//! image's derivative set in-process with nothing else running (the floor:
//! the pixel work alone).
//!
//! Run: `cargo bench -p pinhole-tests --bench processing`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pinhole_config::Settings;
use pinhole_tests::app::{App, variant};
use pinhole_tests::bench::{ms, percentile};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

const CLIENTS: usize = 4;
const PER_CLIENT: usize = 8;

/// A real photo (Elephants, 5640×3172, Sony) scaled to 4618×2598 (12.0 MP)
/// and saved at quality 90, as a 12 MP camera would.
fn twelve_mp_jpeg() -> anyhow::Result<Vec<u8>> {
    let path = "/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg";
    let img = image::open(path)
        .map_err(|e| anyhow::anyhow!("{path}: {e} (install mate-backgrounds)"))?
        .resize_exact(4618, 2598, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img)?;
    Ok(out)
}

fn reference(file: &[u8]) -> anyhow::Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        pinhole_thumbnails::process(file, 150_000_000).map_err(anyhow::Error::msg)?;
        samples.push(t.elapsed());
    }
    Ok(percentile(&mut samples, 0.5))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = twelve_mp_jpeg()?;
    let files: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..CLIENTS * PER_CLIENT)
            .map(|i| variant(&base, i))
            .collect(),
    );
    println!(
        "{} uploads of {:.2} MB 12 MP JPEGs (4618x2598 from a real photo), {CLIENTS} concurrent clients, {} cores",
        files.len(),
        base.len() as f64 / 1e6,
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(0),
    );
    let floor = reference(&base)?;
    println!(
        "reference: one derivative set in-process, nothing else running: {}",
        ms(floor)
    );
    let app = App::embedded_with(|s: &mut Settings| {
        s.max_upload_bytes = 64 * 1024 * 1024;
    })
    .await?;
    let token = app.user("bench").await?;
    // Warm up (first connection, first worker start).
    app.posted(&token, variant(&base, 10_000), &[]).await?;
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let files = Arc::clone(&files);
        let http = app.http.clone();
        let url = app.url("/images?wait=true&timeout=120");
        let token = token.clone();
        clients.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for i in 0..PER_CLIENT {
                let file = files[c * PER_CLIENT + i].clone();
                let t = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .multipart(Form::new().part("file", Part::bytes(file).file_name("p.jpg")))
                    .send()
                    .await?;
                let status = response.status();
                let body: serde_json::Value = response.json().await?;
                anyhow::ensure!(
                    status == StatusCode::OK && body["status"] == "done",
                    "{status} {body}"
                );
                samples.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut samples = Vec::new();
    for c in clients {
        samples.extend(c.await??);
    }
    let wall = started.elapsed();
    let mut sorted: Vec<u128> = samples.iter().map(|d| d.as_millis()).collect();
    sorted.sort_unstable();
    println!("each upload, ms, sorted: {sorted:?}");
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    println!(
        "upload to derivatives ready, embedded all-in-one: p50 {} ({:.1}x the reference), p99 {} ({:.1}x), {:.2} images/s",
        ms(p50),
        p50.as_secs_f64() / floor.as_secs_f64(),
        ms(p99),
        p99.as_secs_f64() / floor.as_secs_f64(),
        samples.len() as f64 / wall.as_secs_f64(),
    );
    println!(
        "goal p99 < 1 s: {}",
        if p99 < Duration::from_secs(1) {
            "met"
        } else {
            "not met"
        }
    );
    app.server.stop().await?;
    Ok(())
}
