//! Derivative links as clients get them, in each `PINHOLE_BLOB_LINKS` mode:
//! the same URL on every read of a record (within a link bucket), served
//! cacheably by `/blobs/` (bytes with the local store and S3 `proxy`, a
//! redirect to a presigned S3 URL with `redirect`), or presigned S3 URLs
//! (`direct`). The processes behind nginx: services/pinhole/tests/deployment.rs.

use std::time::Duration;

use anyhow::{Context, ensure};
use pinhole_blob::LINK_BUCKET;
use pinhole_config::{BlobLinks, BlobUrl, Settings};
use pinhole_testkit::{unique, wait_for};
use pinhole_tests::app::{App, small_photo};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// On the embedded backends, with blobs in S3 (a prefix of their own) and
/// links as `links` says.
async fn on_s3(links: BlobLinks) -> anyhow::Result<App> {
    let mut s3 = pinhole_testkit::s3_settings("pinhole");
    s3.prefix = unique("links");
    pinhole_blob::S3Store::new(&s3).ensure_bucket().await?;
    App::embedded_with(|settings| {
        settings.blob = BlobUrl::S3(s3);
        settings.blob_links = links;
    })
    .await
}

/// An image of `name`'s, processed: its id.
async fn posted(app: &App, name: &str) -> anyhow::Result<String> {
    let token = app.user(name).await?;
    let image = app
        .posted(&token, small_photo("Storm.jpg", 1)?, &[])
        .await?;
    Ok(image["id"].as_str().context("id")?.to_owned())
}

/// The image's thumb_256 JPEG from two reads of its record, a clock second
/// apart (links used to change every second) within one link bucket: both
/// must be the same link.
async fn stable_thumb(app: &App, id: &str) -> anyhow::Result<Value> {
    let bucket = LINK_BUCKET.as_secs() as i64;
    let read = || async {
        let (status, image) = app.get(&format!("/images/{id}"), None).await?;
        ensure!(status == StatusCode::OK, "{status} {image}");
        image["derivatives"]
            .as_array()
            .and_then(|d| {
                d.iter()
                    .find(|d| d["name"] == "thumb_256" && d["format"] == "jpeg")
            })
            .cloned()
            .with_context(|| format!("no thumb_256 in {image}"))
    };
    loop {
        let before = unix_now();
        let first = read().await?;
        wait_for(Duration::from_secs(5), "the next second", || async {
            (unix_now() > before).then_some(())
        })
        .await?;
        let second = read().await?;
        if before / bucket != unix_now() / bucket {
            continue;
        }
        ensure!(first == second, "{first} then {second}");
        return Ok(second);
    }
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// `max-age` of a Cache-Control value.
fn max_age(cache_control: &str) -> i64 {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// What a link says about itself: its blob key and when it expires.
fn signed(url: &reqwest::Url) -> anyhow::Result<(String, i64)> {
    let key = url
        .path()
        .strip_prefix("/blobs/")
        .with_context(|| format!("not a /blobs/ link: {url}"))?
        .to_owned();
    let expires = url
        .query_pairs()
        .find(|(k, _)| k == "expires")
        .and_then(|(_, v)| v.parse().ok())
        .with_context(|| format!("no expiry in {url}"))?;
    Ok((key, expires))
}

/// The bytes are a JPEG of the derivative's size.
fn is_thumb(bytes: &[u8], thumb: &Value) -> anyhow::Result<()> {
    let decoded = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)?;
    ensure!(
        i64::from(decoded.width()) == thumb["width"].as_i64().unwrap_or_default()
            && i64::from(decoded.height()) == thumb["height"].as_i64().unwrap_or_default(),
        "{}×{} for {thumb}",
        decoded.width(),
        decoded.height()
    );
    Ok(())
}

/// Until when a presigned S3 URL is valid (unix seconds).
fn s3_expiry(url: &reqwest::Url) -> anyhow::Result<i64> {
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .with_context(|| format!("no {name} in {url}"))
    };
    let signed = chrono::NaiveDateTime::parse_from_str(&query("X-Amz-Date")?, "%Y%m%dT%H%M%SZ")?;
    Ok(signed.and_utc().timestamp() + query("X-Amz-Expires")?.parse::<i64>()?)
}

async fn error_code(response: reqwest::Response) -> anyhow::Result<String> {
    let body: Value = response.json().await?;
    Ok(body["code"].as_str().unwrap_or_default().to_owned())
}

/// Expired, forged and dangling links: 403, 403, 404.
async fn refusals(app: &App, link: &reqwest::Url) -> anyhow::Result<()> {
    let (key, _) = signed(link)?;
    let signer = &app.server.ctx.signer;
    let expired = reqwest::Url::parse(signer.sign(&key, unix_now() - 10).as_str())?;
    let mut forged = link.clone();
    forged.set_path("/blobs/derivatives/00/other.jpg");
    let missing = reqwest::Url::parse(
        signer
            .link(
                "derivatives/00/none.jpg",
                Duration::from_secs(60),
                unix_now(),
            )
            .as_str(),
    )?;
    for (url, status, code) in [
        (expired, StatusCode::FORBIDDEN, "forbidden"),
        (forged, StatusCode::FORBIDDEN, "forbidden"),
        (missing, StatusCode::NOT_FOUND, "blob-not-found"),
    ] {
        let response = app.http.get(url.clone()).send().await?;
        ensure!(response.status() == status, "{url}: {}", response.status());
        ensure!(error_code(response).await? == code, "{url}");
    }
    Ok(())
}

/// The bytes behind a `/blobs/` link, answered as a cache may keep them.
async fn served_cacheably(app: &App, thumb: &Value) -> anyhow::Result<()> {
    let link = reqwest::Url::parse(thumb["url"].as_str().context("url")?)?;
    ensure!(
        link.as_str()
            .starts_with(&format!("{}/blobs/derivatives/", app.server.url())),
        "{link}"
    );
    let (key, expires) = signed(&link)?;
    let response = app.http.get(link.clone()).send().await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let headers = response.headers().clone();
    let cache_control = header(&headers, header::CACHE_CONTROL);
    ensure!(
        cache_control.starts_with("public,") && cache_control.ends_with(", immutable"),
        "{cache_control}"
    );
    let left = expires - unix_now();
    ensure!(
        (1..=left + 1).contains(&max_age(cache_control)),
        "{cache_control}, the link has {left} s left"
    );
    ensure!(header(&headers, header::CONTENT_TYPE) == "image/jpeg");
    let bytes = response.bytes().await?;
    let stored = app
        .server
        .ctx
        .backends
        .blobs
        .get(&key, None)
        .await?
        .bytes()
        .await?;
    ensure!(bytes == stored, "not the stored bytes of {key}");
    is_thumb(&bytes, thumb)?;

    // Asked again with its ETag: not modified.
    let etag = header(&headers, header::ETAG);
    ensure!(etag.starts_with('"') && etag.len() > 2, "{etag:?}");
    let response = app
        .http
        .get(link.clone())
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::NOT_MODIFIED,
        "{}",
        response.status()
    );
    ensure!(header(response.headers(), header::ETAG) == etag);
    ensure!(response.bytes().await?.is_empty());
    refusals(app, &link).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_links_are_stable_and_cacheable() -> anyhow::Result<()> {
    let app = App::embedded().await?;
    let probe = app.probe();
    let id = posted(&app, "lena").await?;
    let thumb = stable_thumb(&app, &id).await?;
    served_cacheably(&app, &thumb).await?;
    probe.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_proxy_links_are_served_by_the_server() -> anyhow::Result<()> {
    let app = on_s3(BlobLinks::Proxy).await?;
    let probe = app.probe();
    let id = posted(&app, "pia").await?;
    let thumb = stable_thumb(&app, &id).await?;
    served_cacheably(&app, &thumb).await?;
    probe.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_redirect_links_redirect_to_presigned_urls() -> anyhow::Result<()> {
    let app = on_s3(BlobLinks::Redirect).await?;
    let probe = app.probe();
    let id = posted(&app, "rita").await?;
    let thumb = stable_thumb(&app, &id).await?;
    let link = reqwest::Url::parse(thumb["url"].as_str().context("url")?)?;
    ensure!(
        link.as_str()
            .starts_with(&format!("{}/blobs/derivatives/", app.server.url())),
        "{link}"
    );
    let (_, expires) = signed(&link)?;
    let manual = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = manual.get(link.clone()).send().await?;
    ensure!(
        response.status() == StatusCode::FOUND,
        "{}",
        response.status()
    );
    let headers = response.headers();
    let location = header(headers, header::LOCATION).to_owned();
    ensure!(
        location.starts_with(&pinhole_testkit::s3_endpoint()),
        "{location}"
    );
    let cache_control = header(headers, header::CACHE_CONTROL);
    ensure!(cache_control.starts_with("public,"), "{cache_control}");
    // Kept less long than the S3 URL stays valid, and than the link.
    let age = max_age(cache_control);
    let s3_left = s3_expiry(&reqwest::Url::parse(&location)?)? - unix_now();
    ensure!(
        age > 0 && age < s3_left && age <= expires - unix_now() + 1,
        "{cache_control}; the S3 URL has {s3_left} s left"
    );
    // Redirects within a link bucket are to the same S3 URL (kept by
    // browsers as one).
    let bucket = LINK_BUCKET.as_secs() as i64;
    let before = unix_now();
    let (first, second) = (
        manual.get(link.clone()).send().await?,
        manual.get(link.clone()).send().await?,
    );
    if before / bucket == unix_now() / bucket {
        ensure!(
            header(first.headers(), header::LOCATION) == header(second.headers(), header::LOCATION)
        );
    }

    let response = manual.get(&location).send().await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    is_thumb(&response.bytes().await?, &thumb)?;
    // A client that follows redirects gets the bytes at the link.
    let (status, bytes) = app.bytes(link.as_str(), None).await?;
    ensure!(status == StatusCode::OK, "{status}");
    is_thumb(&bytes, &thumb)?;
    refusals(&app, &link).await?;
    probe.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_direct_links_are_presigned_s3_urls() -> anyhow::Result<()> {
    let app = on_s3(BlobLinks::Direct).await?;
    let probe = app.probe();
    let id = posted(&app, "dina").await?;
    let thumb = stable_thumb(&app, &id).await?;
    let url = thumb["url"].as_str().context("url")?;
    ensure!(
        url.starts_with(&pinhole_testkit::s3_endpoint()) && url.contains("X-Amz-Signature="),
        "{url}"
    );
    let (status, bytes) = app.bytes(url, None).await?;
    ensure!(status == StatusCode::OK, "{status}");
    is_thumb(&bytes, &thumb)?;
    probe.assert_clean().await
}

/// A local store has no S3 to redirect to: refused at start, naming the
/// setting.
#[tokio::test]
async fn redirect_needs_s3() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::embedded(dir.path());
    settings.blob_links = BlobLinks::Redirect;
    match pinhole::start(settings, pinhole::ROLES).await {
        Err(e @ pinhole::StartError::Settings(_)) => {
            let message = e.to_string();
            ensure!(
                message.contains("PINHOLE_BLOB_LINKS") && message.contains("S3"),
                "{message}"
            );
            Ok(())
        }
        Err(e) => anyhow::bail!("refused for another reason: {e}"),
        Ok(server) => {
            server.stop().await?;
            anyhow::bail!("started with redirect links on a local store")
        }
    }
}
