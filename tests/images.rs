//! The images API as mobile clients use it: plain, batched and resumable
//! uploads, tasks, metadata, originals, comments, likes and feeds, with the
//! thumbnails worker moving tasks forward. Each scenario runs on the
//! embedded backends (SQLite, local disk, embedded log, in-process cache)
//! and on the real ones (Postgres, Redis, Kafka via tansu, S3 via moto).

/// Derivative links: stable, cacheable, and the S3 link modes.
#[path = "images/links.rs"]
mod links;
/// Slow bodies: the minimum rate, permits for complete bodies only, and
/// uploads per account.
#[path = "images/pacing.rs"]
mod pacing;
/// Per-account quotas: images, bytes stored, unfinished tus uploads, edits
/// per hour.
#[path = "images/quotas.rs"]
mod quotas;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use pinhole_testkit::{unique, wait_for};
use pinhole_tests::app::{App, DEADLINE, photo, read, variant, with_exif};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A HEIC made from a real photo by heif-enc (libheif-examples).
fn heic_photo(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let src = dir.join(format!("{}-{name}", unique("heic")));
    std::fs::write(&src, photo(name)?)?;
    let out = src.with_extension("heic");
    let run = Command::new("heif-enc")
        .args(["-q", "40", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .context("heif-enc is missing: install libheif-examples (infra/test.sh does)")?;
    ensure!(
        run.status.success(),
        "heif-enc: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    Ok(std::fs::read(&out)?)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `username`'s profile counts `posts` posts.
async fn post_count_reaches(app: &App, username: &str, posts: u64) -> anyhow::Result<()> {
    wait_for(
        DEADLINE,
        &format!("{username}'s post count {posts}"),
        || async {
            let (_, profile) = app.get(&format!("/users/{username}"), None).await.ok()?;
            (profile["post_count"] == posts).then_some(())
        },
    )
    .await
}

fn inspect(bytes: &[u8]) -> anyhow::Result<pinhole_media::Inspected> {
    pinhole_media::inspect(
        bytes,
        &pinhole_media::Limits {
            max_pixels: 200_000_000,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Upload, process, duplicates, derivatives, `?wait=true`.
async fn uploads_become_images(app: App) -> anyhow::Result<()> {
    let alice = app.user("alice").await?;
    let storm = photo("Storm.jpg")?;
    let (status, accepted) = app
        .upload(
            &alice,
            storm.clone(),
            &[
                ("title", "Storm"),
                ("description", "Clouds over the #Alps at dusk"),
                ("tags", "weather, Sky"),
                ("alt_text", "dark clouds"),
            ],
            "",
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {accepted}");
    ensure!(
        accepted["duplicate"] == false && accepted["status"] == "queued",
        "{accepted}"
    );
    let task_id = accepted["task_id"].as_str().context("task id")?;
    let image_id = accepted["image_id"].as_str().context("image id")?;
    let task = app.task_done(&alice, task_id).await?;
    ensure!(task["status"] == "done", "{task}");
    let derivatives = task["derivatives"].as_array().context("derivatives")?;
    ensure!(derivatives.len() >= 2, "{task}");
    let thumb = derivatives
        .iter()
        .find(|d| d["name"] == "thumb_256")
        .context("thumb_256")?;
    let (status, bytes) = app
        .bytes(thumb["url"].as_str().context("url")?, None)
        .await?;
    ensure!(status == StatusCode::OK, "{status}");
    let seen = inspect(&bytes)?;
    ensure!(
        seen.format == pinhole_media::Format::Jpeg && (seen.width, seen.height) == (256, 256),
        "{seen:?}"
    );

    let (status, image) = app
        .get(&format!("/images/{image_id}"), Some(&alice))
        .await?;
    ensure!(status == StatusCode::OK, "{status} {image}");
    let dims = inspect(&storm)?;
    ensure!(
        image["title"] == "Storm"
            && image["alt_text"] == "dark clouds"
            && image["status"] == "ready",
        "{image}"
    );
    ensure!(
        image["format"] == "jpeg" && image["width"] == dims.width && image["height"] == dims.height,
        "{image}"
    );
    ensure!(
        image["tags"] == json!(["alps", "sky", "weather"]),
        "{image}"
    );
    ensure!(
        image["exif"]["camera_make"]
            .as_str()
            .is_some_and(|m| m.contains("Canon")),
        "{image}"
    );
    ensure!(image["size"] == storm.len(), "{image}");

    // The same bytes again: the same image, nothing new stored.
    let (status, again) = app.upload(&alice, storm.clone(), &[], "").await?;
    ensure!(
        status == StatusCode::OK && again["duplicate"] == true && again["image_id"] == image_id,
        "{status} {again}"
    );
    ensure!(app.stored("originals/").await? == 1);

    // The synchronous mode answers once processing ended.
    let (status, waited) = app
        .upload(&alice, photo("Wood.jpg")?, &[], "?wait=true&timeout=60")
        .await?;
    ensure!(
        status == StatusCode::OK && waited["task"]["status"] == "done",
        "{status} {waited}"
    );
    ensure!(
        waited["task"]["derivatives"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{waited}"
    );

    // The owner's grid has both, newest first; the counter follows.
    let (_, grid) = app.get("/users/alice/images", None).await?;
    ensure!(
        ids(&grid)
            == vec![
                waited["image_id"].as_str().unwrap_or_default().to_owned(),
                image_id.to_owned()
            ],
        "{grid}"
    );
    // The users role counts posts from the images role's events.
    post_count_reaches(&app, "alice", 2).await?;

    // An avatar must be one of your own images.
    let (status, me) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&alice),
            Some(json!({"avatar_image_id": image_id})),
        )
        .await?;
    ensure!(
        status == StatusCode::OK && me["avatar_image_id"] == image_id,
        "{status} {me}"
    );
    let bob = app.user("bob").await?;
    let (status, body) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&bob),
            Some(json!({"avatar_image_id": image_id})),
        )
        .await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY && body["fields"]["avatar_image_id"].is_string(),
        "someone else's image: {status} {body}"
    );
    Ok(())
}

/// Wrong, broken, oversized and hostile uploads: the right error each, and
/// nothing left behind.
async fn bad_uploads_are_refused(app: App) -> anyhow::Result<()> {
    let bob = app.user("bob").await?;
    let storm = photo("Storm.jpg")?;
    let cases: Vec<Refusal> = vec![
        (
            b"just some text, not a picture".to_vec(),
            vec![],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-image-format",
        ),
        (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(),
            vec![],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-image-format",
        ),
        (
            storm[..storm.len() / 2].to_vec(),
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "image-truncated",
        ),
        (
            bomb_png(),
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "image-too-many-pixels",
        ),
        (
            vec![0xFF; 13 * 1024 * 1024],
            vec![],
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload-too-large",
        ),
        (
            storm.clone(),
            vec![("visibility", "friends")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            storm.clone(),
            vec![("colour", "red")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            storm.clone(),
            vec![("location", "95,10")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            storm.clone(),
            vec![("tags", "no-dashes")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
        (
            storm.clone(),
            vec![("callback_url", "ftp://example.com/x")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
    ];
    for (file, fields, want, code) in cases {
        let (status, body) = app.upload(&bob, file, &fields, "").await?;
        ensure!(
            status == want && body["code"] == code,
            "{fields:?}: {status} {body}"
        );
        ensure!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    // No file part, and no multipart at all.
    let response = app
        .http
        .post(app.url("/images"))
        .bearer_auth(&bob)
        .multipart(Form::new().text("title", "x"))
        .send()
        .await?;
    let (status, body) = read(response).await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY && body["fields"]["file"].is_string(),
        "{status} {body}"
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/images",
            Some(&bob),
            Some(json!({"file": "x"})),
        )
        .await?;
    ensure!(
        status == StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{status} {body}"
    );
    // Anonymous uploads are refused (before the body is read: a small one,
    // so the client is done sending when the answer comes).
    let response = app
        .http
        .post(app.url("/images"))
        .multipart(Form::new().part("file", Part::bytes(storm[..1024].to_vec())))
        .send()
        .await?;
    ensure!(response.status() == StatusCode::UNAUTHORIZED);

    ensure!(
        app.stored("originals/").await? == 0,
        "a refused upload left an original"
    );
    let (_, grid) = app.get("/users/bob/images", Some(&bob)).await?;
    ensure!(ids(&grid).is_empty(), "{grid}");
    Ok(())
}

/// A file, its fields, and the status and code it must get.
type Refusal = (
    Vec<u8>,
    Vec<(&'static str, &'static str)>,
    StatusCode,
    &'static str,
);

/// A PNG whose header claims 100000 × 100000 pixels.
fn bomb_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let mut iend = b"IEND".to_vec();
    png.extend_from_slice(&0u32.to_be_bytes());
    png.append(&mut iend);
    png.extend_from_slice(&crc32(b"IEND").to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Two owners of the same bytes share one stored original; each deletion
/// leaves the other's intact; the last one takes the blob with it.
async fn duplicates_share_one_blob(app: App) -> anyhow::Result<()> {
    let carol = app.user("carol").await?;
    let dave = app.user("dave").await?;
    let wood = photo("Wood.jpg")?;
    let a = app.posted(&carol, wood.clone(), &[]).await?;
    let b = app.posted(&dave, wood.clone(), &[]).await?;
    ensure!(a["id"] != b["id"]);
    ensure!(app.stored("originals/").await? == 1, "one blob for both");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/images/{}", a["id"].as_str().unwrap_or_default()),
            Some(&dave),
            None,
        )
        .await?;
    ensure!(
        status == StatusCode::FORBIDDEN,
        "someone else's image: {status}"
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/images/{}", a["id"].as_str().unwrap_or_default()),
            Some(&carol),
            None,
        )
        .await?;
    ensure!(status == StatusCode::NO_CONTENT);
    let (status, _) = app
        .get(
            &format!("/images/{}", a["id"].as_str().unwrap_or_default()),
            Some(&carol),
        )
        .await?;
    ensure!(status == StatusCode::NOT_FOUND);
    let (status, bytes) = app
        .bytes(
            &format!(
                "/api/v1/images/{}/original",
                b["id"].as_str().unwrap_or_default()
            ),
            Some(&dave),
        )
        .await?;
    ensure!(
        status == StatusCode::OK && bytes == wood,
        "dave's original survived carol's delete"
    );
    ensure!(app.stored("originals/").await? == 1);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/images/{}", b["id"].as_str().unwrap_or_default()),
            Some(&dave),
            None,
        )
        .await?;
    ensure!(status == StatusCode::NO_CONTENT);
    ensure!(
        app.stored("originals/").await? == 0,
        "the last owner's delete collects the blob"
    );
    // The thumbnails role removes the derivatives once it hears of the
    // release (`content.released`).
    wait_for(DEADLINE, "its derivatives to be removed", || async {
        (app.stored("derivatives/").await.ok()? == 0).then_some(())
    })
    .await?;
    post_count_reaches(&app, "dave", 0).await?;
    Ok(())
}

/// EXIF is read; GPS becomes the location only when asked; the owner gets
/// the exact original, everyone else one without metadata.
async fn exif_and_originals(app: App) -> anyhow::Result<()> {
    let erin = app.user("erin").await?;
    let frank = app.user("frank").await?;
    let gps = with_exif(
        app.dir.path(),
        "Blinds.jpg",
        &[
            "-GPSLatitude=48.8584",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=2.2945",
            "-GPSLongitudeRef=E",
            "-Orientation#=6",
            "-LensModel=EF-S 18-55mm",
        ],
    )?;
    let kept = app
        .posted(&erin, gps.clone(), &[("location", "exif")])
        .await?;
    ensure!(
        (kept["location"]["lat"].as_f64().unwrap_or(0.0) - 48.8584).abs() < 1e-3,
        "{kept}"
    );
    ensure!(
        (kept["location"]["lon"].as_f64().unwrap_or(0.0) - 2.2945).abs() < 1e-3,
        "{kept}"
    );
    ensure!(
        kept["exif"]["gps"]["lat"].is_number()
            && kept["exif"]["lens"] == "EF-S 18-55mm"
            && kept["exif"]["orientation"] == 6,
        "{kept}"
    );
    let seen = inspect(&gps)?;
    ensure!(
        kept["width"] == seen.height && kept["height"] == seen.width,
        "display size turns with the orientation: {kept}"
    );
    // Without permission the position stays private.
    let other = with_exif(
        app.dir.path(),
        "Blinds.jpg",
        &[
            "-GPSLatitude=33.8688",
            "-GPSLatitudeRef=S",
            "-GPSLongitude=151.2093",
            "-GPSLongitudeRef=E",
        ],
    )?;
    let private = app.posted(&erin, other, &[]).await?;
    ensure!(private["location"].is_null(), "{private}");

    let id = kept["id"].as_str().context("id")?;
    let (_, as_frank) = app.get(&format!("/images/{id}"), Some(&frank)).await?;
    ensure!(
        as_frank["exif"]["gps"].is_null() && as_frank["exif"]["camera_make"].is_string(),
        "{as_frank}"
    );
    let (status, mine) = app
        .bytes(&format!("/api/v1/images/{id}/original"), Some(&erin))
        .await?;
    ensure!(
        status == StatusCode::OK && mine == gps,
        "the owner gets the exact bytes"
    );
    for token in [Some(frank.as_str()), None] {
        let (status, public) = app
            .bytes(&format!("/api/v1/images/{id}/original"), token)
            .await?;
        ensure!(status == StatusCode::OK, "{status}");
        let info = inspect(&public)?;
        ensure!(
            info.exif
                .as_ref()
                .is_none_or(|e| e.gps.is_none() && e.camera_make.is_none()),
            "{:?}",
            info.exif
        );
        ensure!((info.width, info.height) == (seen.width, seen.height));
        ensure!(
            !public.windows(5).any(|w| w == b"Canon"),
            "camera make leaked"
        );
    }
    Ok(())
}

/// Visibility, private accounts, blocks and the three feeds.
async fn feeds_respect_visibility_and_blocks(app: App) -> anyhow::Result<()> {
    let ann = app.user("ann").await?;
    let ben = app.user("ben").await?;
    let cat = app.user("cat").await?;
    let dan = app.user("dan").await?;
    let eve = app.user("eve").await?;
    let (status, _) = app
        .call(Method::POST, "/users/ann/follow", Some(&ben), None)
        .await?;
    ensure!(status.is_success(), "{status}");
    let (status, _) = app
        .call(Method::POST, "/users/dan/block", Some(&ann), None)
        .await?;
    ensure!(status.is_success(), "{status}");
    let base = photo("Garden.jpg")?;
    let public = app
        .posted(&ann, variant(&base, 1), &[("visibility", "public")])
        .await?;
    let followers = app
        .posted(&ann, variant(&base, 2), &[("visibility", "followers")])
        .await?;
    let private = app
        .posted(&ann, variant(&base, 3), &[("visibility", "private")])
        .await?;
    let ben_own = app.posted(&ben, variant(&base, 4), &[]).await?;
    let id = |v: &Value| v["id"].as_str().unwrap_or_default().to_owned();

    let (_, grid) = app.get("/users/ann/images", Some(&ann)).await?;
    ensure!(
        ids(&grid) == vec![id(&private), id(&followers), id(&public)],
        "owner sees all: {grid}"
    );
    let (_, grid) = app.get("/users/ann/images", Some(&ben)).await?;
    ensure!(
        ids(&grid) == vec![id(&followers), id(&public)],
        "follower: {grid}"
    );
    for viewer in [Some(cat.as_str()), None] {
        let (_, grid) = app.get("/users/ann/images", viewer).await?;
        ensure!(ids(&grid) == vec![id(&public)], "stranger: {grid}");
        let (status, _) = app
            .get(&format!("/images/{}", id(&followers)), viewer)
            .await?;
        ensure!(status == StatusCode::NOT_FOUND);
    }
    let (status, _) = app.get("/users/ann/images", Some(&dan)).await?;
    ensure!(status == StatusCode::NOT_FOUND, "blocked: {status}");
    let (status, _) = app
        .get(&format!("/images/{}", id(&public)), Some(&dan))
        .await?;
    ensure!(status == StatusCode::NOT_FOUND);
    let (status, bytes) = app
        .bytes(
            &format!("/api/v1/images/{}/original", id(&private)),
            Some(&ben),
        )
        .await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status} {}", bytes.len());

    // Home: ben sees his own and what ann lets him see, newest first.
    let (_, home) = app.get("/feed", Some(&ben)).await?;
    ensure!(
        ids(&home) == vec![id(&ben_own), id(&followers), id(&public)],
        "{home}"
    );
    let (status, _) = app.get("/feed", None).await?;
    ensure!(status == StatusCode::UNAUTHORIZED);
    // Cursor pages, one at a time.
    let (_, first) = app.get("/feed?limit=2", Some(&ben)).await?;
    ensure!(ids(&first).len() == 2, "{first}");
    let cursor = first["next_cursor"].as_str().context("cursor")?;
    let (_, second) = app
        .get(&format!("/feed?limit=2&cursor={cursor}"), Some(&ben))
        .await?;
    ensure!(
        ids(&second) == vec![id(&public)] && second["next_cursor"].is_null(),
        "{second}"
    );
    let (status, body) = app.get("/feed?limit=0", Some(&ben)).await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY && body["fields"]["limit"].is_string(),
        "{body}"
    );

    // Explore ranks by likes; blocked and non-public ones never show.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/images/{}/like", id(&ben_own)),
            Some(&cat),
            None,
        )
        .await?;
    ensure!(status == StatusCode::OK);
    let (_, explore) = app.get("/explore", Some(&cat)).await?;
    ensure!(
        ids(&explore) == vec![id(&ben_own), id(&public)],
        "{explore}"
    );
    let (_, explore) = app.get("/explore", Some(&dan)).await?;
    ensure!(ids(&explore) == vec![id(&ben_own)], "{explore}");

    // A private account's grid is for approved followers only.
    let (status, _) = app
        .call(
            Method::PATCH,
            "/me",
            Some(&eve),
            Some(json!({"is_private": true})),
        )
        .await?;
    ensure!(status == StatusCode::OK);
    let eves = app.posted(&eve, variant(&base, 5), &[]).await?;
    let (status, body) = app.get("/users/eve/images", Some(&cat)).await?;
    ensure!(
        status == StatusCode::FORBIDDEN && body["code"] == "account-private",
        "{status} {body}"
    );
    let (_, explore) = app.get("/explore", None).await?;
    ensure!(!ids(&explore).contains(&id(&eves)), "{explore}");
    Ok(())
}

/// Metadata edits, comments and likes, and the events they send.
async fn metadata_comments_and_likes(app: App) -> anyhow::Result<()> {
    let gus = app.user("gus").await?;
    let hal = app.user("hal").await?;
    let ivy = app.user("ivy").await?;
    let img = app
        .posted(
            &gus,
            photo("LadyBird.jpg")?,
            &[("title", "Ladybird"), ("tags", "bugs")],
        )
        .await?;
    let id = img["id"].as_str().context("id")?.to_owned();
    let path = format!("/images/{id}");

    let (status, edited) = app
        .call(Method::PATCH, &path, Some(&gus), Some(json!({"description": "On a leaf #macro #Nature", "location": {"lat": 51.5, "lon": -0.12, "place_name": "London"}, "alt_text": null, "visibility": "followers"})))
        .await?;
    ensure!(status == StatusCode::OK, "{status} {edited}");
    ensure!(
        edited["tags"] == json!(["bugs", "macro", "nature"])
            && edited["location"]["place_name"] == "London",
        "{edited}"
    );
    ensure!(
        edited["title"] == "Ladybird" && edited["visibility"] == "followers",
        "{edited}"
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&gus),
            Some(json!({"visibility": "everyone", "title": "x".repeat(201)})),
        )
        .await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY
            && body["fields"]["visibility"].is_string()
            && body["fields"]["title"].is_string(),
        "{body}"
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&gus),
            Some(json!({"location": "exif"})),
        )
        .await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY,
        "no GPS in this photo: {status} {body}"
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&gus),
            Some(json!({"visibility": "public", "tags": ["bugs"], "location": null})),
        )
        .await?;
    ensure!(
        status == StatusCode::OK
            && body["tags"] == json!(["bugs", "macro", "nature"])
            && body["location"].is_null(),
        "{body}"
    );
    let (status, _) = app
        .call(
            Method::PATCH,
            &path,
            Some(&hal),
            Some(json!({"title": "mine"})),
        )
        .await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status}");

    // Comments: anyone who sees it; deleted by author or owner only.
    let (status, c1) = app
        .call(
            Method::POST,
            &format!("{path}/comments"),
            Some(&hal),
            Some(json!({"body": "Lovely colours"})),
        )
        .await?;
    ensure!(
        status == StatusCode::CREATED && c1["author"]["username"] == "hal",
        "{status} {c1}"
    );
    let (status, _) = app
        .call(
            Method::POST,
            &format!("{path}/comments"),
            Some(&ivy),
            Some(json!({"body": "Agreed"})),
        )
        .await?;
    ensure!(status == StatusCode::CREATED);
    let (status, body) = app
        .call(
            Method::POST,
            &format!("{path}/comments"),
            Some(&ivy),
            Some(json!({"body": "  "})),
        )
        .await?;
    ensure!(status == StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, page) = app.get(&format!("{path}/comments?limit=1"), None).await?;
    ensure!(
        page["items"][0]["body"] == "Lovely colours" && page["next_cursor"].is_string(),
        "{page}"
    );
    let (_, rest) = app
        .get(
            &format!(
                "{path}/comments?limit=1&cursor={}",
                page["next_cursor"].as_str().unwrap_or_default()
            ),
            None,
        )
        .await?;
    ensure!(
        rest["items"][0]["body"] == "Agreed" && rest["next_cursor"].is_null(),
        "{rest}"
    );
    let c1_path = format!("{path}/comments/{}", c1["id"].as_str().unwrap_or_default());
    let (status, _) = app.call(Method::DELETE, &c1_path, Some(&ivy), None).await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status}");
    let (status, _) = app.call(Method::DELETE, &c1_path, Some(&gus), None).await?;
    ensure!(
        status == StatusCode::NO_CONTENT,
        "the owner deletes: {status}"
    );

    // Likes count once each; the viewer's own state comes back.
    for token in [&hal, &hal, &ivy] {
        let (status, _) = app
            .call(Method::POST, &format!("{path}/like"), Some(token), None)
            .await?;
        ensure!(status == StatusCode::OK);
    }
    let (status, state) = app
        .call(Method::DELETE, &format!("{path}/like"), Some(&ivy), None)
        .await?;
    ensure!(
        status == StatusCode::OK && state == json!({"liked": false, "like_count": 1}),
        "{state}"
    );
    let (_, likers) = app.get(&format!("{path}/likes"), None).await?;
    ensure!(
        likers["items"].as_array().map(Vec::len) == Some(1)
            && likers["items"][0]["username"] == "hal",
        "{likers}"
    );
    let (_, as_hal) = app.get(&path, Some(&hal)).await?;
    ensure!(
        as_hal["like_count"] == 1 && as_hal["comment_count"] == 1 && as_hal["liked_by_me"] == true,
        "{as_hal}"
    );

    let (status, _) = app.call(Method::DELETE, &path, Some(&gus), None).await?;
    ensure!(status == StatusCode::NO_CONTENT);

    // Every change went out on pinhole.images, keyed by the image, in order.
    let kinds = image_events(&app, &id, "image.deleted").await?;
    let want = [
        "image.uploaded",
        "image.processing",
        "image.processed",
        "image.published",
        "image.updated",
        "image.updated",
        "comment.created",
        "comment.created",
        "comment.deleted",
        "like.created",
        "like.created",
        "like.removed",
        "image.deleted",
    ];
    ensure!(kinds == want, "{kinds:?}");
    Ok(())
}

/// The kinds of the events about `image_id`, read from the bus by a group of
/// the test's own, up to `last`.
async fn image_events(app: &App, image_id: &str, last: &str) -> anyhow::Result<Vec<String>> {
    let bus = Arc::clone(&app.server.ctx.backends.bus);
    let mut sub = bus
        .subscribe(&unique("test-reader"), &[pinhole_events::topics::IMAGES])
        .await?;
    let mut kinds = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        let Some(record) = sub.next(Duration::from_millis(500)).await? else {
            continue;
        };
        if record.key.as_deref() != Some(image_id.as_bytes()) {
            continue;
        }
        let env = pinhole_events::Envelope::from_json(&record.payload)?;
        kinds.push(env.kind.clone());
        if env.kind == last {
            sub.close().await?;
            return Ok(kinds);
        }
    }
    bail!("no {last} event within {DEADLINE:?}; saw {kinds:?}")
}

/// Many uploads at once from one client, grouped by a batch id.
async fn batches_are_accepted_and_processed(app: App) -> anyhow::Result<()> {
    let jo = app.user("jon").await?;
    let small = photo("FreshFlower.jpg")?;
    let batch = uuid::Uuid::new_v4().to_string();
    // 200 at once found a deadlock between one account's uploads on
    // Postgres; SQLite serializes writers, so fewer show the same there.
    let n = match app.settings.database {
        pinhole_config::DatabaseUrl::Postgres(_) => 200,
        pinhole_config::DatabaseUrl::Sqlite(_) => 50,
    };
    let uploads = (0..n).map(|i| {
        let file = variant(&small, i);
        let (app, jo, batch) = (&app, &jo, &batch);
        async move {
            app.upload(
                jo,
                file,
                &[("batch_id", batch), ("title", &format!("flower {i}"))],
                "",
            )
            .await
        }
    });
    let answers = futures::future::join_all(uploads).await;
    let mut task_ids = Vec::new();
    for answer in answers {
        let (status, body) = answer?;
        ensure!(status == StatusCode::ACCEPTED, "{status} {body}");
        task_ids.push(body["task_id"].as_str().context("task id")?.to_owned());
    }
    let list = wait_for(
        Duration::from_secs(180),
        "the whole batch to finish",
        || async {
            let (_, list) = app
                .get(&format!("/tasks?batch_id={batch}"), Some(&jo))
                .await
                .ok()?;
            (list["counts"]["done"] == n).then_some(list)
        },
    )
    .await?;
    ensure!(
        list["items"].as_array().map(Vec::len) == Some(n) && list["counts"]["failed"] == 0,
        "{}",
        list["counts"]
    );
    let some = task_ids[..3].join(",");
    let (status, picked) = app.get(&format!("/tasks?ids={some}"), Some(&jo)).await?;
    ensure!(
        status == StatusCode::OK && picked["items"].as_array().map(Vec::len) == Some(3),
        "{picked}"
    );
    let other = app.user("kim").await?;
    let (_, theirs) = app
        .get(&format!("/tasks?batch_id={batch}"), Some(&other))
        .await?;
    ensure!(
        theirs["items"].as_array().is_some_and(Vec::is_empty),
        "tasks are private: {theirs}"
    );
    let (status, _) = app
        .get(&format!("/tasks/{}", task_ids[0]), Some(&other))
        .await?;
    ensure!(status == StatusCode::NOT_FOUND);
    let (status, body) = app.get("/tasks?ids=nope", Some(&jo)).await?;
    ensure!(status == StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    Ok(())
}

/// Uploads `file` with `hook` as its callback URL: the accepted answer, and
/// the signature and body of the callback that follows.
async fn called_back(
    app: &App,
    token: &str,
    file: Vec<u8>,
    hook: &str,
    calls: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) -> anyhow::Result<(Value, String, Vec<u8>)> {
    let (status, accepted) = app
        .upload(token, file, &[("callback_url", hook)], "")
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {accepted}");
    let (sig, body) = tokio::time::timeout(DEADLINE, calls.recv())
        .await?
        .context("no callback")?;
    Ok((accepted, sig, body))
}

/// A signed POST to the callback URL when the task ends; failures are
/// reported with their reason.
async fn callbacks_are_signed(app: App) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let sig = headers
                        .get("pinhole-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send((sig, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let lee = app.user("lee").await?;
    let (accepted, sig, body) = called_back(&app, &lee, photo("Aqua.jpg")?, &hook, &mut rx).await?;
    let sent: Value = serde_json::from_slice(&body)?;
    ensure!(
        sent["type"] == "task.done" && sent["task"]["id"] == accepted["task_id"],
        "{sent} for {accepted}"
    );
    ensure!(
        sent["task"]["derivatives"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{sent}"
    );
    let (t, v1) = sig.split_once(",v1=").context("signature format")?;
    let t = t.strip_prefix("t=").context("t=")?;
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(&body);
    ensure!(
        app.server.ctx.signer.sign_message(&message) == v1,
        "signature does not verify"
    );
    let task = app
        .task_done(&lee, accepted["task_id"].as_str().unwrap_or_default())
        .await?;
    let task = wait_for(DEADLINE, "the callback to be marked delivered", || async {
        let (_, t) = app
            .get(
                &format!("/tasks/{}", task["id"].as_str().unwrap_or_default()),
                Some(&lee),
            )
            .await
            .ok()?;
        (t["callback_state"] == "delivered").then_some(t)
    })
    .await?;
    ensure!(task["callback_url"] == hook.as_str());

    // A HEIC photo (as iPhones write) is processed like a JPEG.
    let heic = heic_photo(app.dir.path(), "GreenMeadow.jpg")?;
    let (accepted, _, body) = called_back(&app, &lee, heic.clone(), &hook, &mut rx).await?;
    let sent: Value = serde_json::from_slice(&body)?;
    ensure!(
        sent["type"] == "task.done" && sent["task"]["id"] == accepted["task_id"],
        "{sent}"
    );
    let path = format!(
        "/images/{}",
        accepted["image_id"].as_str().unwrap_or_default()
    );
    let image = wait_for(DEADLINE, "the HEIC image to be ready", || async {
        let (_, image) = app.get(&path, Some(&lee)).await.ok()?;
        (image["status"] == "ready").then_some(image)
    })
    .await?;
    ensure!(
        image["format"] == "heic"
            && (&image["width"], &image["height"]) == (&json!(1280), &json!(1024)),
        "{image}"
    );
    let made: BTreeSet<(String, String)> = image["derivatives"]
        .as_array()
        .context("derivatives")?
        .iter()
        .map(|d| (d["name"].to_string(), d["format"].to_string()))
        .collect();
    ensure!(made.len() >= 8, "every size in JPEG and WebP: {image}");

    // A HEIC whose coded image is damaged (the start of its data zeroed)
    // is stored, but its task fails with the reason, and the callback says
    // so.
    let mut damaged = heic;
    let data = damaged
        .windows(4)
        .position(|w| w == b"mdat")
        .context("mdat")?
        + 4;
    damaged[data..data + 2000].fill(0);
    let (accepted, _, body) = called_back(&app, &lee, damaged, &hook, &mut rx).await?;
    let sent: Value = serde_json::from_slice(&body)?;
    ensure!(
        sent["type"] == "task.failed"
            && sent["task"]["id"] == accepted["task_id"]
            && sent["task"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("could not be decoded")),
        "{sent}"
    );
    let (_, image) = app
        .get(
            &format!(
                "/images/{}",
                accepted["image_id"].as_str().unwrap_or_default()
            ),
            Some(&lee),
        )
        .await?;
    ensure!(
        image["format"] == "heic" && image["status"] == "failed",
        "{image}"
    );
    Ok(())
}

/// Deleting an account removes its images and their stored originals.
async fn account_deletion_removes_images(app: App) -> anyhow::Result<()> {
    let max = app.user("max").await?;
    app.posted(&max, photo("YellowFlower.jpg")?, &[]).await?;
    ensure!(app.stored("originals/").await? == 1);
    let (status, _) = app.call(Method::DELETE, "/me", Some(&max), None).await?;
    ensure!(status == StatusCode::NO_CONTENT);
    wait_for(
        DEADLINE,
        "the account's originals to be collected",
        || async { (app.stored("originals/").await.ok()? == 0).then_some(()) },
    )
    .await?;
    Ok(())
}

fn tus(app: &App, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.http
        .request(method, format!("{}{path}", app.server.url()))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
}

/// The tus protocol by hand: the parts stock clients rely on, and the
/// checksum extension (which tus-js-client does not send).
async fn tus_protocol(app: App) -> anyhow::Result<()> {
    use base64::Engine;
    use sha2::Digest;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let nia = app.user("nia").await?;
    let file = photo("GreenMeadow.jpg")?;
    let options = app
        .http
        .request(Method::OPTIONS, app.url("/uploads"))
        .send()
        .await?;
    ensure!(options.status() == StatusCode::NO_CONTENT);
    let h = options.headers();
    ensure!(h["tus-version"] == "1.0.0" && h["tus-resumable"] == "1.0.0");
    ensure!(
        h["tus-extension"].to_str()?.split(',').collect::<Vec<_>>()
            == [
                "creation",
                "creation-with-upload",
                "termination",
                "checksum",
                "expiration"
            ]
    );
    ensure!(
        h["tus-checksum-algorithm"].to_str()?.contains("sha1") && h["tus-max-size"] == "12582912"
    );

    let r = app
        .http
        .post(app.url("/uploads"))
        .bearer_auth(&nia)
        .header("Upload-Length", "10")
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::PRECONDITION_FAILED && r.headers()["tus-version"] == "1.0.0",
        "{}",
        r.status()
    );
    let r = tus(&app, Method::POST, "/api/v1/uploads", &nia)
        .header("Upload-Length", (13u64 << 20).to_string())
        .send()
        .await?;
    ensure!(r.status() == StatusCode::PAYLOAD_TOO_LARGE);
    let r = tus(&app, Method::POST, "/api/v1/uploads", &nia)
        .send()
        .await?;
    ensure!(r.status() == StatusCode::BAD_REQUEST);
    let r = tus(&app, Method::POST, "/api/v1/uploads", &nia)
        .header("Upload-Length", "10")
        .header(
            "Upload-Metadata",
            format!("visibility {}", b64(b"everyone")),
        )
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::UNPROCESSABLE_ENTITY,
        "bad metadata refused at creation: {}",
        r.status()
    );

    // Creation with the first half of the file.
    let half = file.len() / 2;
    let r = tus(&app, Method::POST, "/api/v1/uploads", &nia)
        .header("Upload-Length", file.len().to_string())
        .header(
            "Upload-Metadata",
            format!(
                "filename {},title {},visibility {}",
                b64(b"meadow.jpg"),
                b64(b"Meadow"),
                b64(b"followers")
            ),
        )
        .header("Content-Type", "application/offset+octet-stream")
        .body(file[..half].to_vec())
        .send()
        .await?;
    ensure!(r.status() == StatusCode::CREATED, "{}", r.status());
    ensure!(
        r.headers()["upload-offset"] == half.to_string().as_str()
            && r.headers().contains_key("upload-expires")
    );
    let location = r.headers()["location"].to_str()?.to_owned();
    let r = tus(&app, Method::HEAD, &location, &nia).send().await?;
    ensure!(
        r.status() == StatusCode::OK && r.headers()["upload-offset"] == half.to_string().as_str()
    );
    ensure!(
        r.headers()["upload-length"] == file.len().to_string().as_str()
            && r.headers()["cache-control"] == "no-store"
    );
    let rest = file[half..].to_vec();
    let patch = |offset: usize, body: Vec<u8>| {
        tus(&app, Method::PATCH, &location, &nia)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(body)
    };
    ensure!(
        patch(0, rest.clone()).send().await?.status() == StatusCode::CONFLICT,
        "wrong offset"
    );
    let r = tus(&app, Method::PATCH, &location, &nia)
        .header("Upload-Offset", half.to_string())
        .body(rest.clone())
        .send()
        .await?;
    ensure!(r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = patch(half, rest.clone())
        .header(
            "Upload-Checksum",
            format!("sha1 {}", b64(&sha1_of(b"other bytes"))),
        )
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 460,
        "checksum mismatch: {}",
        r.status()
    );
    let r = patch(half, rest.clone())
        .header(
            "Upload-Checksum",
            format!("md5 {}", b64(b"0123456789abcdef")),
        )
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::BAD_REQUEST,
        "unsupported algorithm: {}",
        r.status()
    );
    let r = patch(half, rest.clone())
        .header(
            "Upload-Checksum",
            format!("sha256 {}", b64(&sha2::Sha256::digest(&rest))),
        )
        .send()
        .await?;
    ensure!(r.status() == StatusCode::NO_CONTENT, "{}", r.status());
    ensure!(r.headers()["upload-offset"] == file.len().to_string().as_str());
    let image_id = r.headers()["pinhole-image-id"].to_str()?.to_owned();
    let task_id = r.headers()["pinhole-task-id"].to_str()?.to_owned();
    app.task_done(&nia, &task_id).await?;
    let (_, image) = app.get(&format!("/images/{image_id}"), Some(&nia)).await?;
    ensure!(
        image["title"] == "Meadow"
            && image["visibility"] == "followers"
            && image["size"] == file.len(),
        "{image}"
    );
    let (_, original) = app
        .bytes(&format!("/api/v1/images/{image_id}/original"), Some(&nia))
        .await?;
    ensure!(original == file, "the parts were joined in order");
    ensure!(
        app.stored("uploads/").await? == 0,
        "parts are removed once joined"
    );

    // A finished upload that is not an image is refused and removed.
    let text = b"definitely not a photo".to_vec();
    let r = tus(&app, Method::POST, "/api/v1/uploads", &nia)
        .header("Upload-Length", text.len().to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(text)
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        r.status()
    );
    ensure!(app.stored("uploads/").await? == 0);

    // A last PATCH whose bytes were recorded but that was cut off before
    // the image was made (a crash): the next HEAD finishes it, so a client
    // that sees the full offset is right to report success.
    let meadow = photo("Garden.jpg")?;
    let r = tus(&app, Method::POST, "/api/v1/uploads", &nia)
        .header("Upload-Length", meadow.len().to_string())
        .send()
        .await?;
    let location = r.headers()["location"].to_str()?.to_owned();
    let id = uuid::Uuid::parse_str(location.rsplit('/').next().unwrap_or_default())?;
    let key = format!("uploads/{id}/{:020}-crashed", 0);
    pinhole_blob::put_bytes(app.server.ctx.backends.blobs.as_ref(), &key, meadow.clone()).await?;
    {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::{Alias, Expr, Query};
        let stmt = Query::update()
            .table(Alias::new("uploads"))
            .value(Alias::new("offset"), i64::try_from(meadow.len())?)
            .value(Alias::new("chunks"), serde_json::to_string(&[&key])?)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        let db = &app.server.ctx.backends.db;
        db.execute(db.get_database_backend().build(&stmt)).await?;
    }
    let r = tus(&app, Method::HEAD, &location, &nia).send().await?;
    ensure!(r.status() == StatusCode::OK, "{}", r.status());
    ensure!(r.headers()["upload-offset"] == meadow.len().to_string().as_str());
    let image_id = r.headers()["pinhole-image-id"].to_str()?.to_owned();
    let (_, original) = app
        .bytes(&format!("/api/v1/images/{image_id}/original"), Some(&nia))
        .await?;
    ensure!(original == meadow, "the recovered upload became the image");

    // Someone else's upload does not exist for you; termination ends one.
    let r = tus(&app, Method::POST, "/api/v1/uploads", &nia)
        .header("Upload-Length", "1000")
        .send()
        .await?;
    let location = r.headers()["location"].to_str()?.to_owned();
    let other = app.user("oli").await?;
    ensure!(
        tus(&app, Method::HEAD, &location, &other)
            .send()
            .await?
            .status()
            == StatusCode::NOT_FOUND
    );
    ensure!(
        tus(&app, Method::DELETE, &location, &nia)
            .send()
            .await?
            .status()
            == StatusCode::NO_CONTENT
    );
    ensure!(
        tus(&app, Method::HEAD, &location, &nia)
            .send()
            .await?
            .status()
            == StatusCode::NOT_FOUND
    );
    Ok(())
}

/// A well-formed SHA-1 length digest that matches nothing sent.
fn sha1_of(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data)[..20].to_vec()
}

fn node_client(app: &App, token: &str, file: &Path, mode: &str) -> anyhow::Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tus/client.mjs");
    let out = Command::new("node")
        .arg(&script)
        .args([
            app.url("/uploads"),
            token.to_owned(),
            file.display().to_string(),
            mode.to_owned(),
        ])
        .output()
        .context("node is missing (infra/test.sh installs it and tus-js-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let value: Value = serde_json::from_str(line).with_context(|| {
        format!(
            "tus client said: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    ensure!(out.status.success(), "tus client failed: {value}");
    Ok(value)
}

/// The real tus-js-client: a whole upload, one stopped and resumed, one
/// stopped and terminated.
async fn tus_js_client(app: App) -> anyhow::Result<()> {
    let pam = app.user("pam").await?;
    let path = app.dir.path().join("raindrops.jpg");
    let file = photo("RainDrops.jpg")?;
    std::fs::write(&path, &file)?;
    let whole = node_client(&app, &pam, &path, "whole")?;
    let image_id = whole["image_id"].as_str().context("image id")?.to_owned();
    let task = app
        .task_done(&pam, whole["task_id"].as_str().context("task id")?)
        .await?;
    ensure!(task["status"] == "done", "{task}");
    let (_, image) = app.get(&format!("/images/{image_id}"), Some(&pam)).await?;
    ensure!(
        image["title"] == "from tus-js-client" && image["tags"] == json!(["resumable", "tus"]),
        "{image}"
    );

    let path2 = app.dir.path().join("dune.jpg");
    let dune = photo("Dune.jpg")?;
    std::fs::write(&path2, &dune)?;
    let resumed = node_client(&app, &pam, &path2, "resume")?;
    ensure!(
        resumed["resumed_at_least"]
            .as_u64()
            .is_some_and(|o| o >= 3 * 64 * 1024),
        "{resumed}"
    );
    let (_, original) = app
        .bytes(
            &format!(
                "/api/v1/images/{}/original",
                resumed["image_id"].as_str().unwrap_or_default()
            ),
            Some(&pam),
        )
        .await?;
    ensure!(original == dune, "resumed upload is byte-exact");

    let path3 = app.dir.path().join("twowings.jpg");
    std::fs::write(&path3, photo("TwoWings.jpg")?)?;
    let ended = node_client(&app, &pam, &path3, "terminate")?;
    let r = tus(
        &app,
        Method::HEAD,
        ended["url"]
            .as_str()
            .context("url")?
            .trim_start_matches(&app.server.url()),
        &pam,
    )
    .send()
    .await?;
    ensure!(r.status() == StatusCode::NOT_FOUND, "{}", r.status());
    Ok(())
}

pinhole_tests::backends!(
    uploads_become_images,
    bad_uploads_are_refused,
    duplicates_share_one_blob,
    exif_and_originals,
    feeds_respect_visibility_and_blocks,
    metadata_comments_and_likes,
    batches_are_accepted_and_processed,
    callbacks_are_signed,
    account_deletion_removes_images,
    tus_protocol,
    tus_js_client,
);
