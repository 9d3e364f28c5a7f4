//! Memory under a burst (issue 14): one public 7000x7000 16-bit PNG, then
//! 64 anonymous preset transforms and 64 anonymous requests for its
//! original (the metadata-free copy) at once, against a `pinhole serve`
//! process of its own with the default memory budget. Every request is
//! answered 200, or refused 503 `server-busy` with `Retry-After`, and the
//! process's resident memory, read from `/proc`, stays under a stated bound.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use image::ImageDecoder;
use image::codecs::png::PngDecoder;
use pinhole_testkit::wait_for;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// The side of the square test image.
const SIDE: u32 = 7000;
/// Peak resident memory of the server during the burst, at most (the
/// issue's 1.5 GB). Measured: 1.05 to 1.15 GiB on 2 cores, where two
/// transforms at a time each hold the original (62 MB), its decoded pixels
/// (147 MB as 8-bit RGB) and the resizer's buffers. Transforms run one per
/// core, so a machine with many more cores peaks higher.
const BOUND: u64 = 1536 * 1024 * 1024;
/// Where the server is killed, so that a regression fails the test
/// without taking the memory of the tests beside it (13.5 GB was seen).
const GUARD: u64 = 2 * BOUND;
/// Requests of each kind in the burst.
const BURST: usize = 64;
const PASSWORD: &str = "correct horse battery staple";
/// The presets allowed unsigned, and the formats asked of them: 20
/// different results, so 64 requests ask for each about three times (the
/// repeats wait for the first and are served it stored).
const PRESETS: [&str; 4] = ["thumb", "small", "medium", "large"];
const FORMATS: [(&str, &str); 5] = [
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("webp", "image/webp"),
    ("gif", "image/gif"),
    ("avif", "image/avif"),
];

/// A `pinhole serve` process on a data directory of its own, killed when
/// dropped.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Server {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        let listen = format!("127.0.0.1:{}", pinhole_testkit::free_port()?);
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_pinhole"));
        command.arg("serve").current_dir(dir);
        for (name, _) in std::env::vars() {
            if name.starts_with("PINHOLE_") {
                command.env_remove(name);
            }
        }
        let child = command
            .env("PINHOLE_LISTEN", &listen)
            .env("PINHOLE_DATA_DIR", dir.join("data"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Self {
            child,
            base: format!("http://{listen}"),
            log,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the server's log, for a failure's message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/{pid}/status` given in kB (`VmRSS`, `VmHWM`), in bytes.
fn proc_status(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kib * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A 7000x7000 16-bit RGB PNG of a real photo (upscaled, nearest
/// neighbour): each sample is the photo's 8 bits, then 8 low bits that are
/// 0 but for a random lowest bit in red, which keeps the file about 64 MB
/// (62.4 MB). It is written here, rows filtered with `Sub` and compressed by
/// fdeflate (as the `png` crate's fast mode does): the `image` crate's
/// generic resizing and encoding, compiled into this unoptimised test, took
/// 21 s to make it.
fn big_png() -> anyhow::Result<Vec<u8>> {
    let path = "/usr/share/backgrounds/mate/nature/Garden.jpg";
    let photo = image::open(path).with_context(|| path)?.into_rgb8();
    let (pw, ph, side) = (
        photo.width() as usize,
        photo.height() as usize,
        SIDE as usize,
    );
    // A filter byte, then 6 bytes a pixel.
    let line = 1 + side * 6;
    // Each row of the photo upscaled and filtered: `Sub` (1) stores each
    // byte less the same byte of the pixel before; the low bytes are 0.
    let mut rows = Vec::with_capacity(ph);
    for src in photo.as_raw().chunks_exact(pw * 3) {
        let mut row = vec![0u8; line];
        row[0] = 1;
        let mut before = [0u8; 3];
        for x in 0..side {
            let p = &src[x * pw / side * 3..][..3];
            let out = &mut row[1 + x * 6..][..6];
            out[0] = p[0].wrapping_sub(before[0]);
            out[2] = p[1].wrapping_sub(before[1]);
            out[4] = p[2].wrapping_sub(before[2]);
            before = [p[0], p[1], p[2]];
        }
        rows.push(row);
    }
    // Every row of the image, with the noise in red's low bytes.
    let mut filtered = vec![0u8; side * line];
    // xorshift64, 64 bits a step.
    let (mut state, mut bits) = (0x9e37_79b9_7f4a_7c15_u64, 0);
    for (y, out) in filtered.chunks_exact_mut(line).enumerate() {
        out.copy_from_slice(&rows[y * ph / side]);
        let mut before = 0u8;
        for x in 0..side {
            if x % 64 == 0 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bits = state;
            }
            let bit = (bits & 1) as u8;
            bits >>= 1;
            out[2 + x * 6] = bit.wrapping_sub(before);
            before = bit;
        }
    }
    let idat = fdeflate::compress_to_vec(&filtered);
    drop(filtered);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&SIDE.to_be_bytes());
    header.extend_from_slice(&SIDE.to_be_bytes());
    // 16 bits a sample, RGB, deflate, filtered by row, not interlaced.
    header.extend_from_slice(&[16, 2, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &header);
    for part in idat.chunks(1 << 20) {
        png_chunk(&mut png, b"IDAT", part);
    }
    png_chunk(&mut png, b"IEND", &[]);
    Ok(png)
}

fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

async fn json_of(response: reqwest::Response) -> anyhow::Result<(StatusCode, Value)> {
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// What one request of the burst was answered.
#[derive(Debug)]
enum Answer {
    /// 200: the body's length and first bytes, its type, and for a
    /// transform whether it was `made` or `stored`.
    Ok {
        length: u64,
        head: Vec<u8>,
        content_type: String,
        transform: String,
    },
    /// 503 `server-busy` with `Retry-After`.
    Busy,
}

/// Sends `url` and reads the answer: the body of a 200 is counted as it
/// comes, not kept.
async fn answer(
    http: reqwest::Client,
    url: String,
    mime: Option<&'static str>,
) -> (anyhow::Result<Answer>, Option<&'static str>) {
    (request(http, &url).await, mime)
}

async fn request(http: reqwest::Client, url: &str) -> anyhow::Result<Answer> {
    let mut response = http.get(url).send().await?;
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        let (_, body) = json_of(response).await?;
        ensure!(
            retry_after.is_some() && body["code"] == "server-busy",
            "{url}: 503 {retry_after:?} {body}"
        );
        return Ok(Answer::Busy);
    }
    ensure!(
        status == StatusCode::OK,
        "{url}: {status} {}",
        json_of(response).await?.1
    );
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, transform) = (header(CONTENT_TYPE.as_str()), header("pinhole-transform"));
    let (mut length, mut head) = (0u64, Vec::new());
    while let Some(chunk) = response.chunk().await? {
        if head.len() < 16 {
            head.extend_from_slice(&chunk[..chunk.len().min(16 - head.len())]);
        }
        length += chunk.len() as u64;
    }
    Ok(Answer::Ok {
        length,
        head,
        content_type,
        transform,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_one_huge_image_stays_within_the_memory_bound() -> anyhow::Result<()> {
    let started = Instant::now();
    let png = tokio::task::spawn_blocking(big_png).await??;
    println!(
        "test image: {SIDE}x{SIDE} 16-bit RGB PNG, {} bytes ({}), made in {:.1} s",
        png.len(),
        mib(png.len() as u64),
        started.elapsed().as_secs_f64()
    );
    ensure!(
        (56_000_000..72_000_000).contains(&png.len()),
        "the test image is {} bytes, not about 64 MB",
        png.len()
    );
    let header = PngDecoder::new(std::io::Cursor::new(png.as_slice()))?;
    ensure!(
        header.dimensions() == (SIDE, SIDE) && header.color_type() == image::ColorType::Rgb16,
        "the test image is {:?} {:?}",
        header.dimensions(),
        header.color_type()
    );

    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let result = burst(&server, png).await;
    if result.is_err() {
        eprintln!("server log (end):\n{}", server.log_tail());
    }
    println!("whole test: {:.1} s", started.elapsed().as_secs_f64());
    result
}

async fn burst(server: &Server, png: Vec<u8>) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()?;
    wait_for(
        Duration::from_secs(30),
        "the server to be ready",
        || async {
            let response = http.get(server.url("/readyz")).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await?;

    let at_start = proc_status(server.pid(), "VmRSS")?;
    // An account, and the image, public, processed.
    let (status, body) = json_of(
        http.post(server.url("/api/v1/accounts"))
            .json(&json!({"username": "ann", "email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status == StatusCode::CREATED, "sign-up: {status} {body}");
    let (status, body) = json_of(
        http.post(server.url("/api/v1/sessions"))
            .json(&json!({"login": "ann", "password": PASSWORD}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status == StatusCode::CREATED, "log-in: {status} {body}");
    let token = body["access_token"].as_str().context("access_token")?;
    let size = png.len() as u64;
    let uploading = Instant::now();
    let form = Form::new()
        .text("visibility", "public")
        .part("file", Part::bytes(png).file_name("huge.png"));
    let (status, body) = json_of(
        http.post(server.url("/api/v1/images?wait=true&timeout=120"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?,
    )
    .await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "done",
        "upload: {status} {body}"
    );
    let id = body["image_id"].as_str().context("image_id")?.to_owned();
    // The thumbnails role hears that the image is ready and public a moment
    // later: a conditional request for a preset answers 304 then, without
    // making anything.
    let probe = server.url(&format!("/t/_/pr:thumb/{id}.jpg"));
    wait_for(
        Duration::from_secs(30),
        "the transform route to know the image",
        || async {
            let response = http
                .get(&probe)
                .header("if-none-match", "*")
                .send()
                .await
                .ok()?;
            (response.status() == StatusCode::NOT_MODIFIED).then_some(())
        },
    )
    .await?;
    println!(
        "uploaded and processed in {:.1} s",
        uploading.elapsed().as_secs_f64()
    );

    // The burst, with the server's resident memory sampled every 100 ms.
    let pid = server.pid();
    let processing_peak = proc_status(pid, "VmHWM")?;
    // Resets VmHWM to the present size, so that at the end it is the
    // burst's peak, between samples too (where the kernel lets us; else
    // the samples alone tell the peak).
    let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let before = proc_status(pid, "VmRSS")?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            let mut peak = 0;
            // A sampling period, not a wait: the samples are what is wanted.
            while !stop.load(Ordering::Relaxed) {
                if let Ok(rss) = proc_status(pid, "VmRSS") {
                    peak = peak.max(rss);
                    if rss > GUARD {
                        // Far over: stop it before it takes the machine's
                        // memory from the tests beside it.
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        }
    });
    let firing = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..BURST {
        let preset = PRESETS[n % PRESETS.len()];
        let (ext, mime) = FORMATS[(n / PRESETS.len()) % FORMATS.len()];
        let url = server.url(&format!("/t/_/pr:{preset}/{id}.{ext}"));
        requests.spawn(answer(http.clone(), url, Some(mime)));
        let url = server.url(&format!("/api/v1/images/{id}/original"));
        requests.spawn(answer(http.clone(), url, None));
    }
    let mut answers = Vec::new();
    while let Some(joined) = requests.join_next().await {
        answers.push(joined?);
    }
    let wall = firing.elapsed();
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
    // Gone when the guard killed it.
    let hwm = proc_status(pid, "VmHWM").ok().filter(|_| hwm_reset);
    let peak = hwm.unwrap_or(0).max(sampled);
    let after = proc_status(pid, "VmRSS").unwrap_or(0);

    let mut wrong = Vec::new();
    let (mut transforms_ok, mut transforms_busy, mut originals_ok, mut originals_busy) =
        (0, 0, 0, 0);
    let mut made = 0;
    for (answer, mime) in answers {
        match (answer, mime) {
            (Err(e), _) => wrong.push(format!("{e:#}")),
            (Ok(Answer::Busy), Some(_)) => transforms_busy += 1,
            (Ok(Answer::Busy), None) => originals_busy += 1,
            (
                Ok(Answer::Ok {
                    length,
                    head,
                    content_type,
                    transform,
                }),
                Some(mime),
            ) => {
                let sniffed = image::guess_format(&head).ok().map(|f| f.to_mime_type());
                if content_type != mime || sniffed != Some(mime) || length == 0 {
                    wrong.push(format!(
                        "a transform asked as {mime}: {content_type} ({sniffed:?}), {length} bytes"
                    ));
                }
                made += usize::from(transform == "made");
                transforms_ok += 1;
            }
            (
                Ok(Answer::Ok {
                    length,
                    head,
                    content_type,
                    ..
                }),
                None,
            ) => {
                // The PNG carries no metadata: its metadata-free copy is
                // the same pixels in about as many bytes.
                if content_type != "image/png"
                    || !head.starts_with(b"\x89PNG\r\n\x1a\n")
                    || length.abs_diff(size) > size / 100
                {
                    wrong.push(format!(
                        "the original: {content_type}, {length} bytes of {size}"
                    ));
                }
                originals_ok += 1;
            }
        }
    }
    println!(
        "burst of {BURST} transforms and {BURST} originals: {:.1} s; transforms {transforms_ok} \
         answered 200 ({made} made, the rest served stored), {transforms_busy} 503; originals \
         {originals_ok} answered 200, {originals_busy} 503",
        wall.as_secs_f64()
    );
    println!(
        "server RSS: {} at start, {} before, peak {} ({}; bound {}), {} after; peak while \
         processing the upload {}",
        mib(at_start),
        mib(before),
        mib(peak),
        if hwm.is_some() {
            "VmHWM and 100 ms samples"
        } else {
            "100 ms samples"
        },
        mib(BOUND),
        mib(after),
        mib(processing_peak)
    );
    ensure!(
        peak < BOUND,
        "the server's peak RSS was {} during the burst, over the bound of {}{}",
        mib(peak),
        mib(BOUND),
        if peak > GUARD { " (killed there)" } else { "" }
    );
    ensure!(
        wrong.is_empty(),
        "{} of {} requests answered wrongly, first: {}",
        wrong.len(),
        2 * BURST,
        wrong[0]
    );
    ensure!(
        transforms_ok > 0 && originals_ok > 0,
        "the server refused everything: {transforms_ok} transforms, {originals_ok} originals"
    );
    let distinct = PRESETS.len() * FORMATS.len();
    ensure!(
        made <= distinct,
        "{made} transforms made for {distinct} different results: identical ones are made once"
    );
    Ok(())
}
