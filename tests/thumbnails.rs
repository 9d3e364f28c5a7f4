//! The thumbnails role as clients see it: every derivative and hash of an
//! upload, signed on-demand transforms served and cached, edits making
//! versions, a worker killed mid-image, backfills on the background topic.
//! Each scenario runs on the embedded backends and the real ones (Postgres,
//! Redis, Kafka via tansu, S3 via moto). The role alone, fed events by
//! hand, is tested in services/thumbnails/tests/alone.rs.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, ensure};
use pinhole_testkit::wait_for;
use pinhole_tests::app::{App, DEADLINE, photo, small_photo, variant, with_exif};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

fn decode(bytes: &[u8]) -> anyhow::Result<image::DynamicImage> {
    Ok(image::load_from_memory(bytes)?)
}

/// Decodes an AVIF with Debian's heif-convert: a decoder other than ours.
fn decode_avif(bytes: &[u8]) -> anyhow::Result<image::DynamicImage> {
    ensure!(bytes.get(4..12) == Some(&b"ftypavif"[..]), "not an AVIF");
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.avif"), dir.path().join("out.png"));
    std::fs::write(&input, bytes)?;
    let status = std::process::Command::new("heif-convert")
        .arg(&input)
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .status()
        .context("heif-convert (Debian's libheif-examples)")?;
    ensure!(status.success(), "heif-convert: {status}");
    Ok(image::open(&output)?)
}

/// The astronaut (NASA, public domain): a real photo with a face.
fn astronaut() -> anyhow::Result<Vec<u8>> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../libs/vision/tests/fixtures/astronaut.jpg");
    std::fs::read(&path).with_context(|| format!("{}", path.display()))
}

fn derivative<'a>(image: &'a Value, name: &str, format: &str) -> anyhow::Result<&'a Value> {
    image["derivatives"]
        .as_array()
        .context("derivatives")?
        .iter()
        .find(|d| d["name"] == name && d["format"] == format)
        .with_context(|| format!("no {name} {format} in {image}"))
}

/// A signed transform URL path, signed as the server signs.
fn signed(app: &App, options: &str, id: &str, ext: &str) -> anyhow::Result<String> {
    let signer = pinhole_thumbnails::transform_signer(&app.settings, &app.server.ctx.signer)
        .map_err(anyhow::Error::msg)?;
    Ok(signer.url_path(options, id, ext))
}

async fn fetch(
    app: &App,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(StatusCode, header::HeaderMap, Vec<u8>)> {
    let mut request = app.http.get(format!("{}{path}", app.server.url()));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?.to_vec()))
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// An upload ends with the whole derivative set, placeholder, colour, hash
/// and faces; derivatives are upright and carry no metadata.
async fn uploads_get_every_derivative(app: App) -> anyhow::Result<()> {
    let token = app.user("dora").await?;
    let gps = with_exif(
        app.dir.path(),
        "Storm.jpg",
        &[
            "-GPSLatitude=48.85",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=2.35",
            "-GPSLongitudeRef=E",
            "-Orientation#=6",
        ],
    )?;
    let image = app.posted(&token, gps, &[]).await?;
    // Storm.jpg is 1920×1280; orientation 6 shows it as 1280×1920.
    ensure!(image["width"] == 1280 && image["height"] == 1920, "{image}");
    let names: BTreeSet<(String, String)> = image["derivatives"]
        .as_array()
        .context("derivatives")?
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or_default().to_owned(),
                d["format"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for name in ["thumb_256", "w640", "w1080", "w2048"] {
        for format in ["jpeg", "webp"] {
            ensure!(
                names.contains(&(name.to_owned(), format.to_owned())),
                "{name} {format} missing: {names:?}"
            );
        }
    }
    for (name, format, w, h) in [
        ("thumb_256", "jpeg", 256, 256),
        ("w640", "jpeg", 427, 640),
        ("w1080", "webp", 720, 1080),
        // Never enlarged.
        ("w2048", "jpeg", 1280, 1920),
    ] {
        let d = derivative(&image, name, format)?;
        let (status, bytes) = app.bytes(d["url"].as_str().context("url")?, None).await?;
        ensure!(status == StatusCode::OK, "{name}: {status}");
        let pixels = decode(&bytes)?;
        ensure!(
            (pixels.width(), pixels.height()) == (w, h),
            "{name} {format} is {}×{}, expected {w}×{h}",
            pixels.width(),
            pixels.height()
        );
        ensure!(d["width"] == w && d["height"] == h, "{d}");
        // Re-encoded: no EXIF, no GPS, no camera.
        ensure!(
            !bytes.windows(4).any(|w| w == b"Exif") && !bytes.windows(5).any(|w| w == b"Canon"),
            "{name} {format} carries metadata"
        );
        if format == "webp" {
            ensure!(&bytes[12..16] == b"VP8 ", "{name} webp is not lossy");
        }
    }
    let analysis = &image["analysis"];
    let thumbhash = analysis["thumbhash"].as_str().context("thumbhash")?;
    ensure!(thumbhash.len() >= 20, "{analysis}");
    let color = analysis["dominant_color"]
        .as_str()
        .context("dominant_color")?;
    ensure!(
        color.len() == 7 && color.starts_with('#') && u32::from_str_radix(&color[1..], 16).is_ok(),
        "{color}"
    );
    let phash = analysis["phash"].as_str().context("phash")?;
    ensure!(
        phash.len() == 16 && u64::from_str_radix(phash, 16).is_ok(),
        "{phash}"
    );
    ensure!(
        analysis["faces"].as_array().is_some_and(Vec::is_empty),
        "a storm has no faces: {analysis}"
    );

    // A portrait: its face is found, in displayed pixels.
    let face = app.posted(&token, astronaut()?, &[]).await?;
    let faces = face["analysis"]["faces"].as_array().context("faces")?;
    ensure!(!faces.is_empty(), "no face found: {face}");
    let (w, h) = (
        face["width"].as_u64().context("w")?,
        face["height"].as_u64().context("h")?,
    );
    for f in faces {
        let (x, y, fw, fh) = (
            f["x"].as_u64().context("x")?,
            f["y"].as_u64().context("y")?,
            f["width"].as_u64().context("fw")?,
            f["height"].as_u64().context("fh")?,
        );
        ensure!(
            x + fw <= w && y + fh <= h && fw >= w / 20,
            "face box {f} in {w}×{h}"
        );
    }

    // Same picture, other bytes: the same perceptual hash; another picture:
    // far from it.
    let other = app.user("ezra").await?;
    let storm = app.posted(&other, photo("Storm.jpg")?, &[]).await?;
    let copy = app
        .posted(&other, variant(&photo("Storm.jpg")?, 1), &[])
        .await?;
    let hash = |v: &Value| -> anyhow::Result<u64> {
        Ok(u64::from_str_radix(
            v["analysis"]["phash"].as_str().context("phash")?,
            16,
        )?)
    };
    ensure!(
        (hash(&storm)? ^ hash(&copy)?).count_ones() <= 2,
        "same picture, far hashes"
    );
    ensure!(
        (hash(&storm)? ^ hash(&face)?).count_ones() > 10,
        "different photos, close hashes"
    );
    Ok(())
}

/// `w2048` is made on its first request, not with the set: its links go
/// through the thumbnails role, which makes and stores it when missing and
/// sends every request to the stored copy (identical first requests that
/// arrive together all get it); forged links and keys that are not made
/// on request are refused.
async fn large_derivatives_are_made_on_first_request(app: App) -> anyhow::Result<()> {
    let token = app.user("nell").await?;
    let image = app.posted(&token, photo("Storm.jpg")?, &[]).await?;
    let blobs = app.server.ctx.backends.blobs.as_ref();
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let prefix = format!("{}/t/", app.server.url());
    for (format, magic) in [("jpeg", &b"\xff\xd8"[..]), ("webp", &b"RIFF"[..])] {
        let d = derivative(&image, "w2048", format)?;
        // Never enlarged: Storm.jpg is 1920×1280.
        ensure!(d["width"] == 1920 && d["height"] == 1280, "{d}");
        let url = d["url"].as_str().context("url")?;
        let key = url::Url::parse(url)?
            .path()
            .strip_prefix("/t/")
            .with_context(|| format!("{url} is not a /t/ link"))?
            .to_owned();
        ensure!(
            url.starts_with(&prefix) && key.starts_with("derivatives/"),
            "{url}"
        );
        ensure!(
            !pinhole_blob::exists(blobs, &key).await?,
            "{key} stored before it was asked for"
        );
        let first = futures::future::try_join_all((0..4).map(|_| plain.get(url).send())).await?;
        let mut locations = BTreeSet::new();
        for answer in first {
            ensure!(
                answer.status() == StatusCode::FOUND,
                "{url}: {} {}",
                answer.status(),
                answer.text().await?
            );
            let location = answer.headers().get(header::LOCATION).context("Location")?;
            locations.insert(location.to_str()?.to_owned());
        }
        ensure!(locations.len() == 1, "{locations:?}");
        let location = locations.pop_first().context("a location")?;
        ensure!(pinhole_blob::exists(blobs, &key).await?, "{key} not stored");
        let (status, bytes) = app.bytes(&location, None).await?;
        ensure!(status == StatusCode::OK, "{location}: {status}");
        ensure!(bytes.starts_with(magic), "w2048 {format}: not a {format}");
        let pixels = decode(&bytes)?;
        ensure!(
            (pixels.width(), pixels.height()) == (1920, 1280),
            "w2048 {format} is {}×{}",
            pixels.width(),
            pixels.height()
        );
        // Asked again: the stored one, unchanged.
        let again = plain.get(url).send().await?;
        ensure!(again.status() == StatusCode::FOUND, "{}", again.status());
        let (_, stored) = app
            .bytes(
                again
                    .headers()
                    .get(header::LOCATION)
                    .context("Location")?
                    .to_str()?,
                None,
            )
            .await?;
        ensure!(stored == bytes, "w2048 {format} changed when asked again");
    }

    // A link whose signature is not the server's.
    let url = derivative(&image, "w2048", "webp")?["url"]
        .as_str()
        .context("url")?
        .to_owned();
    let (head, sig) = url.rsplit_once("sig=").context("sig")?;
    let forged = format!("{head}sig={}", "0".repeat(sig.len()));
    let answer = plain.get(&forged).send().await?;
    ensure!(
        answer.status() == StatusCode::FORBIDDEN,
        "{}",
        answer.status()
    );
    ensure!(error_code(&answer.bytes().await?) == "forbidden");
    // A rightly signed link to a derivative made at upload: not made here.
    let w1080 = derivative(&image, "w1080", "jpeg")?;
    let key = url.split_once("/t/").context("/t/")?.1;
    let key = key.split_once("w2048").context("w2048")?.0.to_owned() + "w1080.jpg";
    let link = app.server.ctx.signer.link_at(
        "/t",
        &key,
        std::time::Duration::from_secs(60),
        chrono::Utc::now().timestamp(),
    );
    let answer = plain.get(link.as_str()).send().await?;
    ensure!(
        answer.status() == StatusCode::NOT_FOUND,
        "{}: {w1080}",
        answer.status()
    );
    ensure!(error_code(&answer.bytes().await?) == "blob-not-found");
    Ok(())
}

/// Signed transforms: served, stored, cached by clients; bad signatures,
/// unsigned non-presets, bad options and oversized requests refused.
async fn transforms_are_signed_and_cached(app: App) -> anyhow::Result<()> {
    let token = app.user("fay").await?;
    let image = app.posted(&token, photo("Storm.jpg")?, &[]).await?;
    let id = image["id"].as_str().context("id")?;

    let path = signed(&app, "rs:fill:300:200,sa:-100", id, "webp")?;
    let (status, headers, bytes) = fetch(&app, &path, &[]).await?;
    ensure!(
        status == StatusCode::OK,
        "{status} {}",
        String::from_utf8_lossy(&bytes)
    );
    ensure!(headers[header::CONTENT_TYPE] == "image/webp", "{headers:?}");
    ensure!(
        headers[header::CACHE_CONTROL] == "public, max-age=31536000, immutable",
        "{headers:?}"
    );
    ensure!(
        headers.get(header::VARY).is_none(),
        "explicit format does not vary"
    );
    let etag = headers[header::ETAG].to_str()?.to_owned();
    ensure!(headers["pinhole-transform"] == "made", "{headers:?}");
    let pixels = decode(&bytes)?;
    ensure!(
        (pixels.width(), pixels.height()) == (300, 200),
        "{}×{}",
        pixels.width(),
        pixels.height()
    );
    let rgb = pixels.to_rgb8();
    ensure!(
        rgb.pixels()
            .all(|p| p[0].abs_diff(p[1]) <= 3 && p[1].abs_diff(p[2]) <= 3),
        "sa:-100 is grey"
    );

    // The second request is a lookup of the stored result.
    let (status, headers, again) = fetch(&app, &path, &[]).await?;
    ensure!(
        status == StatusCode::OK && headers["pinhole-transform"] == "stored",
        "{status} {headers:?}"
    );
    ensure!(again == bytes, "same bytes");
    ensure!(headers[header::ETAG] == etag.as_str(), "same ETag");
    let (status, _, _) = fetch(&app, &path, &[("if-none-match", &etag)]).await?;
    ensure!(status == StatusCode::NOT_MODIFIED, "{status}");

    // Tampered: another size under the same signature.
    let sig = path.split('/').nth(2).context("sig")?;
    let (status, _, body) =
        fetch(&app, &format!("/t/{sig}/rs:fill:3000:2000/{id}.webp"), &[]).await?;
    ensure!(
        status == StatusCode::FORBIDDEN && error_code(&body) == "signature-invalid",
        "{status}"
    );
    let (status, _, body) = fetch(&app, &format!("/t/_/rs:fill:300:200/{id}.jpg"), &[]).await?;
    ensure!(
        status == StatusCode::FORBIDDEN && error_code(&body) == "signature-required",
        "{status}"
    );

    // An allowed preset needs no signature, on a public image.
    let (status, headers, thumb) = fetch(&app, &format!("/t/_/pr:thumb/{id}.jpg"), &[]).await?;
    ensure!(
        status == StatusCode::OK && headers[header::CONTENT_TYPE] == "image/jpeg",
        "{status}"
    );
    let thumb = decode(&thumb)?;
    ensure!(
        (thumb.width(), thumb.height()) == (256, 256),
        "thumb {}×{}",
        thumb.width(),
        thumb.height()
    );

    // Negotiated format varies by Accept.
    let auto = signed(&app, "rs:fit:200:200", id, "auto")?;
    let (status, headers, _) = fetch(&app, &auto, &[("accept", "image/webp,image/*")]).await?;
    ensure!(
        status == StatusCode::OK && headers[header::CONTENT_TYPE] == "image/webp",
        "{status} {headers:?}"
    );
    ensure!(headers[header::VARY] == "Accept", "{headers:?}");
    let (_, headers, _) = fetch(&app, &auto, &[("accept", "image/jpeg")]).await?;
    ensure!(headers[header::CONTENT_TYPE] == "image/jpeg", "{headers:?}");
    // A browser that decodes AVIF gets AVIF first; one that refuses it
    // with q=0 does not.
    let browser = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let (_, headers, avif) = fetch(&app, &auto, &[("accept", browser)]).await?;
    ensure!(headers[header::CONTENT_TYPE] == "image/avif", "{headers:?}");
    ensure!(headers[header::VARY] == "Accept", "{headers:?}");
    let avif = decode_avif(&avif)?;
    ensure!(
        avif.width().max(avif.height()) == 200,
        "avif {}×{}",
        avif.width(),
        avif.height()
    );
    let refused = "image/avif;q=0,image/webp";
    let (_, headers, _) = fetch(&app, &auto, &[("accept", refused)]).await?;
    ensure!(headers[header::CONTENT_TYPE] == "image/webp", "{headers:?}");
    // Asked for by name, AVIF needs no Accept.
    for (options, ext) in [("rs:fit:120:120", "avif"), ("rs:fit:120:120,f:avif", "jpg")] {
        let (status, headers, body) = fetch(&app, &signed(&app, options, id, ext)?, &[]).await?;
        ensure!(
            status == StatusCode::OK && headers[header::CONTENT_TYPE] == "image/avif",
            "{options}.{ext}: {status} {headers:?}"
        );
        ensure!(decode_avif(&body)?.width() == 120, "{options}.{ext}");
    }

    // Identical requests at once: one makes the result, the others wait
    // for it and serve it stored.
    let same = signed(&app, "rs:fill:333:222,bl:2,q:71", id, "webp")?;
    let answers = futures::future::join_all((0..8).map(|_| fetch(&app, &same, &[]))).await;
    let mut made = 0;
    let mut bodies = BTreeSet::new();
    for answer in answers {
        let (status, headers, body) = answer?;
        ensure!(status == StatusCode::OK, "{status}");
        made += usize::from(headers["pinhole-transform"] == "made");
        bodies.insert(body);
    }
    ensure!(made == 1, "{made} of 8 identical requests made the result");
    ensure!(bodies.len() == 1, "identical requests, different bytes");

    // Options and formats that cannot be served.
    for (options, ext, code) in [
        ("bl:abc", "jpg", "transform-invalid"),
        ("wat:1", "jpg", "transform-invalid"),
        ("rs:fit:20000:20000,el:1", "jpg", "transform-too-large"),
        ("rs:fit:100:100", "bmp", "format-unsupported"),
    ] {
        let path = signed(&app, options, id, ext)?;
        let (status, _, body) = fetch(&app, &path, &[]).await?;
        ensure!(
            status == StatusCode::UNPROCESSABLE_ENTITY && error_code(&body) == code,
            "{options}.{ext}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }

    // A private image: signed URLs still work, presets do not.
    let private = app
        .posted(&token, photo("Aqua.jpg")?, &[("visibility", "private")])
        .await?;
    let pid = private["id"].as_str().context("id")?;
    let (status, _, _) = fetch(&app, &format!("/t/_/pr:thumb/{pid}.jpg"), &[]).await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");
    let (status, _, _) = fetch(&app, &signed(&app, "pr:small,gs", pid, "png")?, &[]).await?;
    ensure!(status == StatusCode::OK, "{status}");

    // Stored transforms go with the image.
    ensure!(app.stored("derivatives/").await? > 0, "stored");
    let (status, _) = app
        .call(Method::DELETE, &format!("/images/{id}"), Some(&token), None)
        .await?;
    ensure!(status == StatusCode::NO_CONTENT, "{status}");
    // The thumbnails role hears of the deletion by event, and the images
    // role collects the original right after answering (later when the
    // content is busy): the transform goes within moments.
    wait_for(DEADLINE, "the deleted image's transform to go", || async {
        let (status, _, _) = fetch(&app, &path, &[]).await.ok()?;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await?;
    Ok(())
}

/// Caps and key rotation from the settings.
async fn transform_settings_apply(app: App) -> anyhow::Result<()> {
    let token = app.user("gil").await?;
    let image = app.posted(&token, photo("Storm.jpg")?, &[]).await?;
    let id = image["id"].as_str().context("id")?;
    // Storm.jpg has 2.46 MP; this app allows 2 MP sources.
    let (status, _, body) = fetch(&app, &signed(&app, "rs:fit:100:100", id, "jpg")?, &[]).await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY && error_code(&body) == "source-too-large",
        "{status}"
    );
    let small = app.posted(&token, photo("GreenMeadow.jpg")?, &[]).await?;
    let sid = small["id"].as_str().context("id")?;
    // Signed with the second (older) pair: still accepted.
    let old = pinhole_transform::Signer::new(pinhole_transform::parse_key_pairs(
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:02",
    )?)?;
    let (status, _, body) = fetch(&app, &old.url_path("rs:fit:100:100", sid, "png"), &[]).await?;
    ensure!(
        status == StatusCode::OK,
        "{status} {}",
        String::from_utf8_lossy(&body)
    );
    let unknown = pinhole_transform::Signer::new(pinhole_transform::parse_key_pairs(
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc:03",
    )?)?;
    let (status, _, _) = fetch(&app, &unknown.url_path("rs:fit:100:100", sid, "png"), &[]).await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status}");
    Ok(())
}

async fn edit(app: &App, token: &str, id: &str, ops: Value) -> anyhow::Result<(StatusCode, Value)> {
    app.call(
        Method::POST,
        &format!("/images/{id}/edits?wait=true&timeout=60"),
        Some(token),
        Some(json!({ "operations": ops })),
    )
    .await
}

/// Edits make new versions asynchronously; old ones stay until deleted.
async fn edits_make_versions(app: App) -> anyhow::Result<()> {
    let token = app.user("hal").await?;
    let storm = photo("Storm.jpg")?;
    let image = app.posted(&token, storm.clone(), &[]).await?;
    let id = image["id"].as_str().context("id")?;

    let (status, body) = edit(
        &app,
        &token,
        id,
        json!([
            {"op": "crop", "x": 100, "y": 50, "width": 800, "height": 600},
            {"op": "rotate", "degrees": 90},
            {"op": "filter", "name": "mono"}
        ]),
    )
    .await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "done",
        "{status} {body}"
    );
    // The result was staged by the thumbnails role, taken into the images
    // role's originals, and the staged copy removed once that was settled.
    wait_for(DEADLINE, "the staged edit result to be removed", || async {
        (app.stored("edits/").await.ok()? == 0).then_some(())
    })
    .await?;
    let (_, edited) = app.get(&format!("/images/{id}"), Some(&token)).await?;
    ensure!(
        edited["version"] == 2 && edited["width"] == 600 && edited["height"] == 800,
        "{edited}"
    );
    let d = derivative(&edited, "w640", "jpeg")?;
    let (_, bytes) = app.bytes(d["url"].as_str().context("url")?, None).await?;
    let px = decode(&bytes)?.to_rgb8();
    ensure!(
        (px.width(), px.height()) == (480, 640),
        "{}×{}",
        px.width(),
        px.height()
    );
    ensure!(
        px.pixels()
            .all(|p| p[0].abs_diff(p[1]) <= 6 && p[1].abs_diff(p[2]) <= 6),
        "mono is grey"
    );

    let (status, versions) = app
        .get(&format!("/images/{id}/versions"), Some(&token))
        .await?;
    ensure!(status == StatusCode::OK, "{status}");
    let items = versions["items"].as_array().context("items")?;
    ensure!(
        items.len() == 2 && items[0]["version"] == 1 && items[1]["current"] == true,
        "{versions}"
    );
    ensure!(
        items[1]["edits"].as_array().is_some_and(|e| e.len() == 3),
        "{versions}"
    );
    let (status, v1) = app
        .bytes(
            &format!("/api/v1/images/{id}/versions/1/original"),
            Some(&token),
        )
        .await?;
    ensure!(
        status == StatusCode::OK && v1 == storm,
        "version 1 is the upload"
    );
    let (_, v2) = app
        .bytes(
            &format!("/api/v1/images/{id}/versions/2/original"),
            Some(&token),
        )
        .await?;
    let v2 = decode(&v2)?;
    ensure!(
        (v2.width(), v2.height()) == (600, 800),
        "v2 {}×{}",
        v2.width(),
        v2.height()
    );

    // Someone else: not theirs.
    let other = app.user("ivy").await?;
    let (status, _) = edit(&app, &other, id, json!([{"op": "rotate", "degrees": 90}])).await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status}");
    let (status, _) = app
        .get(&format!("/images/{id}/versions"), Some(&other))
        .await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status}");

    // Bad operations: 422 naming them; nothing changes.
    for (ops, field) in [
        (
            json!([{"op": "rotate", "degrees": 45}]),
            "operations[0].degrees",
        ),
        (
            json!([{"op": "rotate", "degrees": 90}, {"op": "sparkle"}]),
            "operations[1]",
        ),
        (json!([]), "operations"),
    ] {
        let (status, body) = edit(&app, &token, id, ops.clone()).await?;
        ensure!(
            status == StatusCode::UNPROCESSABLE_ENTITY && body["fields"].get(field).is_some(),
            "{ops}: {status} {body}"
        );
    }

    // A watermark from another of the owner's images, and red-eye.
    let mark = app.posted(&token, photo("LadyBird.jpg")?, &[]).await?;
    let (status, body) = edit(
        &app,
        &token,
        id,
        json!([{"op": "watermark", "image_id": mark["id"], "opacity": 0.8, "scale": 0.3}, {"op": "red_eye"}]),
    )
    .await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "done",
        "{status} {body}"
    );
    let (_, now) = app.get(&format!("/images/{id}"), Some(&token)).await?;
    ensure!(now["version"] == 3, "{now}");

    // The current version goes only with the image; an old one can go.
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/images/{id}/versions/3"),
            Some(&token),
            None,
        )
        .await?;
    ensure!(
        status == StatusCode::CONFLICT && body["code"] == "version-current",
        "{status} {body}"
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/images/{id}/versions/1"),
            Some(&token),
            None,
        )
        .await?;
    ensure!(status == StatusCode::NO_CONTENT, "{status}");
    let (status, _) = app
        .bytes(
            &format!("/api/v1/images/{id}/versions/1/original"),
            Some(&token),
        )
        .await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");
    let (_, versions) = app
        .get(&format!("/images/{id}/versions"), Some(&token))
        .await?;
    let kept: Vec<i64> = versions["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    ensure!(kept == [2, 3], "{versions}");

    // Deleting the image removes every version's original and, once the
    // thumbnails role has heard, everything derived from them.
    for img in [id, mark["id"].as_str().context("id")?] {
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/images/{img}"),
                Some(&token),
                None,
            )
            .await?;
        ensure!(status == StatusCode::NO_CONTENT, "{status}");
    }
    let collected = wait_for(DEADLINE, "every original to be collected", || async {
        (app.stored("originals/").await.ok()? == 0).then_some(())
    })
    .await;
    if let Err(e) = collected {
        let left: Vec<String> = app
            .server
            .ctx
            .backends
            .blobs
            .list("originals/")
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        use sea_orm::ConnectionTrait;
        let rows = app
            .server
            .ctx
            .backends
            .db
            .query_all(sea_orm::Statement::from_string(
                app.server.ctx.backends.db.get_database_backend(),
                "SELECT sha256, ref_count FROM blobs",
            ))
            .await?;
        let rows: Vec<(String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get("", "sha256")?, r.try_get("", "ref_count")?)))
            .collect::<Result<_, sea_orm::DbErr>>()?;
        anyhow::bail!("{e}: {left:?}, blob rows {rows:?}");
    }
    wait_for(DEADLINE, "every derivative to be removed", || async {
        let derived = app.stored("derivatives/").await.ok()?;
        let staged = app.stored("edits/").await.ok()?;
        (derived == 0 && staged == 0).then_some(())
    })
    .await
    .with_context(|| "derivatives or staged edit results left behind")?;
    Ok(())
}

/// A server stopped while its worker is decoding: the next one finishes the
/// task, and the image is published once.
async fn killed_worker_loses_nothing(app: App) -> anyhow::Result<()> {
    let token = app.user("joan").await?;
    let big = std::fs::read("/usr/share/backgrounds/mate/abstract/Elephants_3840x2160.jpg")?;
    let (status, accepted) = app.upload(&token, big, &[], "").await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {accepted}");
    let task_id = accepted["task_id"].as_str().context("task")?.to_owned();
    let image_id = accepted["image_id"].as_str().context("image")?.to_owned();
    wait_for(DEADLINE, "the worker to start", || async {
        let (_, t) = app
            .get(&format!("/tasks/{task_id}"), Some(&token))
            .await
            .ok()?;
        (t["status"] != "queued").then_some(())
    })
    .await?;
    let app = app.restart().await?;
    let token = {
        let (status, body) = app
            .call(
                Method::POST,
                "/sessions",
                None,
                Some(json!({"login": "joan", "password": pinhole_tests::app::PASSWORD})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "{status}");
        body["access_token"].as_str().context("token")?.to_owned()
    };
    // On Kafka the stopped server's members leave their groups one at a
    // time, each once a rebalance is over (pinhole_bus's kafka module says
    // why), and tansu takes half the session timeout per rebalance: about
    // 15 s with two workers a group. Give it more than usual.
    let t = wait_for(
        DEADLINE * 2,
        "the next server to finish the task",
        || async {
            let (_, t) = app
                .get(&format!("/tasks/{task_id}"), Some(&token))
                .await
                .ok()?;
            (t["status"] == "done" || t["status"] == "failed").then_some(t)
        },
    )
    .await?;
    ensure!(t["status"] == "done", "{t}");
    let (_, image) = app
        .get(&format!("/images/{image_id}"), Some(&token))
        .await?;
    ensure!(
        image["status"] == "ready"
            && image["derivatives"]
                .as_array()
                .is_some_and(|d| d.len() == 8),
        "{image}"
    );
    Ok(())
}

/// Images made by an older pipeline are re-processed on the background
/// topic and followed to the end.
async fn backfill_reprocesses(app: App) -> anyhow::Result<()> {
    use pinhole_thumbnails::backfill;
    use sea_orm::ConnectionTrait;

    let token = app.user("kit").await?;
    let a = app.posted(&token, photo("Garden.jpg")?, &[]).await?;
    let b = app.posted(&token, photo("Dune.jpg")?, &[]).await?;
    let db = &app.server.ctx.backends.db;
    // Nothing is older than this pipeline yet, once this role's catalog has
    // heard of both images and of their processing.
    let all = backfill::Selection {
        all: true,
        limit: None,
    };
    wait_for(DEADLINE, "the catalog to list both images", || async {
        let listed = backfill::select(db, all).await.ok()?.len();
        let older = backfill::select(db, backfill::Selection::default())
            .await
            .ok()?;
        (listed == 2 && older.is_empty()).then_some(())
    })
    .await?;
    // As if an older pipeline had made them (the thumbnails role's record)
    // and their analysis were missing (the images role's). A report of
    // their processing still on its way sets the pipeline again, so this
    // is done until both stay older.
    let jobs = wait_for(
        DEADLINE,
        "both images to look made by an older pipeline",
        || async {
            db.execute_unprepared("UPDATE thumb_images SET pipeline = 1")
                .await
                .ok()?;
            db.execute_unprepared("UPDATE images SET pipeline = 1, analysis = NULL")
                .await
                .ok()?;
            let jobs = backfill::select(db, backfill::Selection::default())
                .await
                .ok()?;
            (jobs.len() == 2).then_some(jobs)
        },
    )
    .await?;
    let since = chrono::Utc::now();
    backfill::enqueue(&app.server.ctx.backends.bus, &jobs).await?;
    let ids: Vec<uuid::Uuid> = jobs.iter().map(|j| j.image_id).collect();
    let mut ticks = Vec::new();
    let (done, failed) = backfill::follow(db, &ids, since, DEADLINE, |r, _| ticks.push(r)).await?;
    ensure!(done == 2 && failed == 0, "{done} done, {failed} failed");
    ensure!(ticks.last() == Some(&2), "{ticks:?}");
    // The images role applies the reports it is sent (shortly after).
    for img in [&a, &b] {
        let path = format!("/images/{}", img["id"].as_str().context("id")?);
        wait_for(DEADLINE, "the analysis to be restored", || async {
            let (_, now) = app.get(&path, Some(&token)).await.ok()?;
            (now["analysis"]["phash"] == img["analysis"]["phash"]).then_some(())
        })
        .await?;
    }
    ensure!(
        backfill::select(db, backfill::Selection::default())
            .await?
            .is_empty(),
        "all current"
    );
    let all = backfill::select(
        db,
        backfill::Selection {
            all: true,
            limit: Some(1),
        },
    )
    .await?;
    ensure!(all.len() == 1 && all[0].force, "--all --limit 1");
    Ok(())
}

fn capped(settings: &mut pinhole_config::Settings) {
    settings.transform_max_source_pixels = 2_000_000;
    settings.transform_keys = Some(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:01,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:02"
            .to_owned()
            .into(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_settings_apply_embedded() -> anyhow::Result<()> {
    transform_settings_apply(App::embedded_with(capped).await?).await
}

pinhole_tests::backends!(
    uploads_get_every_derivative,
    large_derivatives_are_made_on_first_request,
    transforms_are_signed_and_cached,
    edits_make_versions,
    backfill_reprocesses,
);

/// Two copies of one photo (other bytes, same pixels), edited the same way:
/// the second result would be exactly the first image, which one owner
/// cannot have twice, so that edit fails with the reason, and events keep
/// flowing (before, the result was retried until parked as a dead letter,
/// holding up the images after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_edit_of_two_copies_fails_cleanly() -> anyhow::Result<()> {
    let app = App::embedded().await?;
    let probe = app.probe();
    let hal = app.user("hal").await?;
    let storm = small_photo("Storm.jpg", 1)?;
    let first = app.posted(&hal, variant(&storm, 1), &[]).await?;
    let second = app.posted(&hal, variant(&storm, 2), &[]).await?;
    let ops = json!([{"op": "filter", "name": "mono"}]);
    let (status, body) = edit(&app, &hal, first["id"].as_str().context("id")?, ops.clone()).await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "done",
        "{status} {body}"
    );
    let id = second["id"].as_str().context("id")?;
    let (status, body) = edit(&app, &hal, id, ops).await?;
    ensure!(
        status == StatusCode::OK
            && body["task"]["status"] == "failed"
            && body["task"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("exactly your image")),
        "{status} {body}"
    );
    let (_, after) = app.get(&format!("/images/{id}"), Some(&hal)).await?;
    ensure!(after["version"] == 1, "the copy is unchanged: {after}");
    // Later uploads are processed as usual.
    app.posted(&hal, small_photo("Wood.jpg", 1)?, &[]).await?;
    // The failed edit's staged result is settled too.
    probe.assert_clean().await
}

/// Edits wait in a queue of their own and share what leaves a core to fresh
/// uploads: an account's backlog of heavy edits over several images (so
/// over every partition) does not hold up another user's new photo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_do_not_hold_up_fresh_uploads() -> anyhow::Result<()> {
    let app = App::embedded().await?;
    let probe = app.probe();
    let hal = app.user("hal").await?;
    // Four different photos: an edit's result is its image's content, and
    // two images of one owner never have the same.
    let mut images = Vec::new();
    for name in ["Storm.jpg", "Blinds.jpg", "Dune.jpg", "Garden.jpg"] {
        let image = app.posted(&hal, photo(name)?, &[]).await?;
        images.push(image["id"].as_str().context("id")?.to_owned());
    }
    const EDITS: usize = 16;
    // Each image is edited four times from the same version, each time
    // with another look, so every edit is work of its own.
    let looks = ["mono", "sepia", "vivid", "warm"];
    let mut tasks = Vec::new();
    for i in 0..EDITS {
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/images/{}/edits", images[i % images.len()]),
                Some(&hal),
                Some(json!({"operations": [
                    {"op": "rotate", "degrees": 90},
                    {"op": "filter", "name": looks[i / images.len()]}
                ]})),
            )
            .await?;
        ensure!(status == StatusCode::ACCEPTED, "edit {i}: {status} {body}");
        tasks.push(body["task_id"].as_str().context("task id")?.to_owned());
    }

    let ivy = app.user("ivy").await?;
    app.posted(&ivy, small_photo("Wood.jpg", 1)?, &[]).await?;
    let (status, list) = app
        .get(&format!("/tasks?ids={}", tasks.join(",")), Some(&hal))
        .await?;
    ensure!(status == StatusCode::OK, "{status} {list}");
    let finished = list["counts"]["done"].as_u64().context("done")?
        + list["counts"]["failed"].as_u64().context("failed")?;
    // Edits take at most one of the two cores: while ivy's photo was
    // processed, a few edits at most could end.
    ensure!(
        finished <= 4,
        "ivy's photo waited for {finished} of {EDITS} edits: {}",
        list["counts"]
    );
    // The backlog is still being worked off: the store is checked once
    // every edit has ended.
    let path = format!("/tasks?ids={}", tasks.join(","));
    wait_for(DEADLINE * 2, "every edit to end", || async {
        let (_, list) = app.get(&path, Some(&hal)).await.ok()?;
        let ended = list["counts"]["done"].as_u64()? + list["counts"]["failed"].as_u64()?;
        (ended == EDITS as u64).then_some(())
    })
    .await?;
    probe.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_loses_nothing_embedded() -> anyhow::Result<()> {
    let app = App::embedded().await?;
    let probe = app.probe();
    killed_worker_loses_nothing(app).await?;
    probe.assert_clean().await
}

/// On Kafka the replacement server used to wait forever, about half of the
/// time: the stopped server's two urgent workers left their group one
/// right after the other, the group leader last, which wedges tansu's
/// group (see pinhole_bus's kafka module).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_loses_nothing_real() -> anyhow::Result<()> {
    let app = App::real().await?;
    let probe = app.probe();
    killed_worker_loses_nothing(app).await?;
    probe.assert_clean().await
}
