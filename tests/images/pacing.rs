//! Slow bodies cannot hold the server: a body that trickles is answered 408
//! once it falls below the minimum rate (after a grace), it holds no
//! processing permit meanwhile, and one account sends only a few uploads at
//! once.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pinhole_tests::app::{App, small_photo};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const BOUNDARY: &str = "pinhole-trickle";

/// What a trickling client got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Value,
    after: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `head` and `first`, reports on `started`, then one byte every two
/// seconds until the server answers (at most 60 s): the answer.
async fn trickle(
    addr: String,
    head: String,
    first: Vec<u8>,
    started: mpsc::Sender<()>,
) -> anyhow::Result<Answer> {
    let stream = TcpStream::connect(addr).await?;
    let (mut rx, mut tx) = stream.into_split();
    let t0 = Instant::now();
    tx.write_all(head.as_bytes()).await?;
    tx.write_all(&first).await?;
    started.send(()).await.ok();
    // Aborted when this ends or is aborted: the connection then closes.
    let _writer = AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if tx.write_all(b"x").await.is_err() {
                break;
            }
        }
    }));
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = rx.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            // The whole answer: headers and a Content-Length of body.
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|l| got.len() >= end + 4 + l) {
                    break;
                }
            }
        }
        anyhow::Ok(())
    })
    .await;
    read.context("no answer within 60 s")??;
    let after = t0.elapsed();
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let body = serde_json::from_slice(&got[end + 4..]).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        head,
        body,
        after,
    })
}

/// The server's `HOST:PORT`.
fn address(app: &App) -> String {
    app.server.url().trim_start_matches("http://").to_owned()
}

/// A multipart upload of a 1 MB file whose body has barely begun.
fn multipart_head(token: &str) -> (String, Vec<u8>) {
    let preamble = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    );
    let head = format!(
        "POST /api/v1/images HTTP/1.1\r\nHost: pinhole\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        preamble.len() + 1_000_000
    );
    let mut first = preamble.into_bytes();
    first.push(0xFF);
    (head, first)
}

/// Starts `n` trickling multipart uploads of `token`'s; returns once each
/// has sent its first bytes.
async fn trickles(
    app: &App,
    token: &str,
    n: usize,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<Answer>>>> {
    let (started, mut ready) = mpsc::channel(n);
    let mut handles = Vec::new();
    for _ in 0..n {
        let ((head, first), started) = (multipart_head(token), started.clone());
        handles.push(tokio::spawn(trickle(address(app), head, first, started)));
    }
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(30), ready.recv())
            .await
            .context("a trickle did not start")?;
    }
    Ok(handles)
}

fn too_slow(answer: &Answer) -> anyhow::Result<()> {
    ensure!(
        answer.status == 408 && answer.body["code"] == "upload-too-slow",
        "a trickle is answered 408 upload-too-slow: {answer:?}"
    );
    // The grace is 10 s and one byte in 2 s is far below the rate.
    ensure!(
        answer.after < Duration::from_secs(20),
        "answered soon after the grace: {answer:?}"
    );
    Ok(())
}

/// 33 trickling uploads (more than the server's processing permits) and a
/// trickling tus PATCH: another user's upload is accepted meanwhile, each
/// trickle is answered 408 soon after the grace, the PATCH keeps what
/// arrived, and nothing of the trickles is stored or left in the spool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_bodies_do_not_hold_uploads() -> anyhow::Result<()> {
    let app = App::embedded_with(|s| s.uploads_per_account = 64).await?;
    let probe = app.probe();
    let mallory = app.user("mallory").await?;
    let bob = app.user("bob").await?;
    let held = trickles(&app, &mallory, 33).await?;

    // A resumable upload whose PATCH trickles after its first 100 bytes.
    let created = app
        .http
        .post(app.url("/uploads"))
        .bearer_auth(&mallory)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "1000")
        .send()
        .await?;
    ensure!(
        created.status() == StatusCode::CREATED,
        "tus create: {created:?}"
    );
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("Location")?
        .to_owned();
    let path = url::Url::parse(&app.server.url())?
        .join(&location)?
        .path()
        .to_owned();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: pinhole\r\nAuthorization: Bearer {mallory}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n"
    );
    let (started, mut ready) = mpsc::channel(1);
    let patch = tokio::spawn(trickle(address(&app), head, vec![7u8; 100], started));
    ready.recv().await.context("the PATCH did not start")?;

    // Bob's upload goes through while every trickle is being read.
    let t0 = Instant::now();
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(10),
        app.upload(&bob, small_photo("Storm.jpg", 1)?, &[], ""),
    )
    .await
    .context("bob's upload waited behind the trickles")??;
    ensure!(status == StatusCode::ACCEPTED, "bob: {status} {body}");
    ensure!(
        t0.elapsed() < Duration::from_secs(5),
        "bob's upload took {:?}",
        t0.elapsed()
    );

    for h in held {
        too_slow(&h.await??)?;
    }
    let patched = patch.await??;
    too_slow(&patched)?;
    let offset: u64 = patched
        .header("upload-offset")
        .context("a slow PATCH says its offset")?
        .parse()?;
    ensure!(offset >= 100, "what arrived is kept: offset {offset}");
    let head = app
        .http
        .head(format!("{}{path}", app.server.url()))
        .bearer_auth(&mallory)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await?;
    ensure!(
        head.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            == Some(offset.to_string().as_str()),
        "HEAD agrees: {head:?}"
    );

    // Only bob's original is stored; the spool is empty again.
    ensure!(app.stored("originals/").await? == 1, "only bob's original");
    let spool = app.settings.data_dir.join("spool");
    let files = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    ensure!(files == 0, "{files} bodies left in {}", spool.display());
    probe.assert_clean().await
}

/// An account sending its most uploads at once: the next waits for one of
/// them to end (a batch goes through a few at a time) while other accounts
/// are not held up. (Waiting past 20 s answers 429 `too-many-uploads`:
/// unit-tested in the images role.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_sends_only_so_many_uploads_at_once() -> anyhow::Result<()> {
    let app = App::embedded_with(|s| s.uploads_per_account = 2).await?;
    let probe = app.probe();
    let alice = app.user("alice").await?;
    let bob = app.user("bob").await?;
    let held = trickles(&app, &alice, 2).await?;

    let third = {
        let (http, url, alice) = (app.http.clone(), app.url("/images"), alice.clone());
        let file = small_photo("Storm.jpg", 1)?;
        tokio::spawn(async move {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(file).file_name("a.jpg"),
            );
            let response = http
                .post(url)
                .bearer_auth(alice)
                .multipart(form)
                .send()
                .await?;
            anyhow::Ok((Instant::now(), response.status()))
        })
    };
    let (status, body) = app
        .upload(&bob, small_photo("Storm.jpg", 2)?, &[], "")
        .await?;
    ensure!(
        status == StatusCode::ACCEPTED,
        "bob is not held up: {status} {body}"
    );
    ensure!(
        !third.is_finished(),
        "alice's third upload waits while her two are being sent"
    );

    // Her two end (the connections close): the third goes.
    let ended = Instant::now();
    for h in held {
        h.abort();
    }
    let (done, status) = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .context("the third upload still waits")???;
    ensure!(status == StatusCode::ACCEPTED, "the third: {status}");
    ensure!(done >= ended, "it was answered only after a slot freed");
    probe.assert_clean().await
}
