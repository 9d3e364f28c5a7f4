//! The roles as separate processes: `infra/deploy.sh` starts users x1,
//! images x2, thumbnails x2, search x1 and gateway x1, each role on its own
//! Postgres database, on one Kafka, one S3 bucket and one Redis, behind
//! nginx; a user's day goes through nginx (which caches anonymous pages,
//! transforms and derivatives as a CDN would), and a thumbnails worker is
//! killed mid-image.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use pinhole_testkit::wait_for;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const DEADLINE: Duration = Duration::from_secs(60);
const PASSWORD: &str = "correct horse battery staple";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running deployment; taken down (databases and bucket dropped) when
/// dropped.
struct Deployment {
    name: String,
    port: u16,
    http: reqwest::Client,
}

impl Deployment {
    fn up() -> anyhow::Result<Self> {
        let name = pinhole_testkit::unique("deploy").replace('_', "-");
        let port = free_block()?;
        let out = Command::new(root().join("infra/deploy.sh"))
            .args(["up", "--name", &name, "--port", &port.to_string()])
            .args(["--bin", env!("CARGO_BIN_EXE_pinhole")])
            // Every test user signs up from loopback.
            .env("PINHOLE_SIGNUP_LIMIT", "0")
            // deploy.sh's default: derivative links are the server's,
            // through nginx, which keeps the bytes (`redirect` is tested in
            // tests/images/links.rs).
            .env_remove("PINHOLE_BLOB_LINKS")
            .output()?;
        let deployment = Self {
            name,
            port,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()?,
        };
        ensure!(
            out.status.success(),
            "deploy.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(deployment)
    }

    fn state(&self) -> PathBuf {
        root().join(format!("infra/.run/deploy-{}", self.name))
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, self.url(&format!("/api/v1{path}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await?).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn user(&self, name: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/accounts",
                None,
                Some(json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "sign-up {status} {body}");
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/sessions",
                None,
                Some(json!({"login": name, "password": PASSWORD})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "log-in {status} {body}");
        Ok(body["access_token"].as_str().context("token")?.to_owned())
    }

    async fn upload(
        &self,
        token: &str,
        file: Vec<u8>,
        fields: &[(&str, &str)],
        query: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut form = Form::new().part("file", Part::bytes(file).file_name("photo.jpg"));
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let response = self
            .http
            .post(self.url(&format!("/api/v1/images{query}")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?;
        read(response).await
    }

    /// How many objects the deployment's bucket holds under `prefix`.
    async fn stored(&self, prefix: &str) -> anyhow::Result<usize> {
        let listing = self
            .http
            .get(format!(
                "{}/{}?list-type=2&prefix={prefix}",
                pinhole_testkit::s3_endpoint(),
                self.name
            ))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(listing.matches("<Key>").count())
    }

    fn pid(&self, process: &str) -> anyhow::Result<i32> {
        let pid = std::fs::read_to_string(self.state().join(format!("{process}.pid")))?;
        Ok(pid.trim().parse()?)
    }

    fn log(&self, process: &str) -> String {
        std::fs::read_to_string(self.state().join(format!("{process}.log"))).unwrap_or_default()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = Command::new(root().join("infra/deploy.sh"))
            .args(["down", "--name", &self.name, "--drop"])
            .output();
    }
}

/// A port P with P, P+1 and P+10..=P+16 free, below the ephemeral range
/// other tests' servers bind in.
fn free_block() -> anyhow::Result<u16> {
    let seed = std::process::id() as u16;
    for attempt in 0..200u16 {
        let base = 20_000 + (seed.wrapping_add(attempt.wrapping_mul(7919)) % 600) * 20;
        let ports = [
            base,
            base + 1,
            base + 10,
            base + 11,
            base + 12,
            base + 13,
            base + 14,
            base + 15,
            base + 16,
        ];
        if ports
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        {
            return Ok(base);
        }
    }
    bail!("no free block of ports")
}

async fn read(response: reqwest::Response) -> anyhow::Result<(StatusCode, Value)> {
    let status = response.status();
    let text = response.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

fn photo(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = format!("/usr/share/backgrounds/mate/nature/{name}");
    std::fs::read(&path).with_context(|| path)
}

/// nginx's `X-Cache-Status`.
fn cache_status(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_run_apart_behind_nginx() -> anyhow::Result<()> {
    use reqwest::Method;

    let d = Deployment::up()?;
    let ann = d.user("ann").await?;
    let bob = d.user("bob").await?;
    let (status, me) = d
        .call(
            Method::PATCH,
            "/me",
            Some(&bob),
            Some(json!({"is_private": true})),
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {me}");
    // The images processes have ann's card (a public account), so her
    // upload's job tells the thumbnails processes so too.
    wait_for(DEADLINE, "the images role to know ann", || async {
        let (status, _) = d.get("/users/ann/images", None).await.ok()?;
        (status == StatusCode::OK).then_some(())
    })
    .await?;

    // An upload processed by a thumbnails process, its derivatives served.
    let (status, done) = d
        .upload(&ann, photo("Storm.jpg")?, &[], "?wait=true&timeout=60")
        .await?;
    ensure!(
        status == StatusCode::OK && done["task"]["status"] == "done",
        "{status} {done}"
    );
    let ann_image = done["image_id"].as_str().context("image id")?.to_owned();
    let thumb = done["task"]["derivatives"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "thumb_256"))
        .and_then(|d| d["url"].as_str())
        .context("thumb_256")?;
    ensure!(thumb.starts_with(&d.url("/blobs/")), "{thumb}");
    let response = d.http.get(thumb).send().await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let bytes = response.bytes().await?;
    ensure!(bytes.starts_with(&[0xff, 0xd8]), "not a JPEG");
    // nginx keeps it: the link is the same URL for an hour and its bytes
    // never change.
    let response = wait_for(DEADLINE, "the derivative from nginx's cache", || async {
        let response = d.http.get(thumb).send().await.ok()?;
        (response.status() == StatusCode::OK && cache_status(&response) == "HIT")
            .then_some(response)
    })
    .await?;
    ensure!(response.bytes().await? == bytes, "another derivative");
    let (status, _) = d.get(&format!("/images/{ann_image}"), Some(&ann)).await?;
    ensure!(status == StatusCode::OK, "{status}");
    // Served at once: the thumbnails process that made the derivatives
    // recorded the image as public and ann's account as public (from the
    // upload's job) before it reported the image processed, so before the
    // upload answered, whether or not the thumbnails role has heard the
    // images and users roles' events yet.
    let preset = d.url(&format!("/t/_/pr:thumb/{ann_image}.jpg"));
    let response = d.http.get(&preset).send().await?;
    ensure!(
        response.status() == StatusCode::OK,
        "an unsigned preset of a public image: {}",
        response.status()
    );
    ensure!(
        response.bytes().await?.starts_with(&[0xff, 0xd8]),
        "not a JPEG"
    );
    // nginx keeps it (its URL is immutable).
    let response = d.http.get(&preset).send().await?;
    ensure!(
        response.status() == StatusCode::OK && cache_status(&response) == "HIT",
        "{:?}",
        response.headers()
    );

    // The image's page, through the gateway process: nginx keeps it for
    // anonymous visitors, never for a signed-in one.
    let page = d.url(&format!("/p/{ann_image}"));
    let response = wait_for(DEADLINE, "the page from nginx's cache", || async {
        let response = d.http.get(&page).send().await.ok()?;
        (response.status() == StatusCode::OK && cache_status(&response) == "HIT")
            .then_some(response)
    })
    .await?;
    let cache_control = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(cache_control.starts_with("public"), "{cache_control}");
    ensure!(response.text().await?.contains("srcset="), "not the page");
    let response = d.http.get(&page).bearer_auth(&ann).send().await?;
    ensure!(
        response.status() == StatusCode::OK && cache_status(&response) == "BYPASS",
        "{:?}",
        response.headers()
    );
    ensure!(
        response
            .headers()
            .get("cache-control")
            .is_some_and(|v| v.as_bytes().starts_with(b"private")),
        "{:?}",
        response.headers()
    );
    let response = d
        .http
        .get(&page)
        .header("cookie", "pinhole_session=anything")
        .send()
        .await?;
    ensure!(
        cache_status(&response) == "BYPASS",
        "{:?}",
        response.headers()
    );

    // A private account's followers-only image reaches an approved
    // follower's feed, and leaves it with a block.
    let wood = photo("Wood.jpg")?;
    let wood_sha = hex::encode(Sha256::digest(&wood));
    let (status, posted) = d
        .upload(
            &bob,
            wood,
            &[("visibility", "followers")],
            "?wait=true&timeout=60",
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {posted}");
    let bob_image = posted["image_id"].as_str().context("image id")?.to_owned();
    let (status, body) = d
        .call(Method::POST, "/users/bob/follow", Some(&ann), None)
        .await?;
    ensure!(status.is_success(), "{status} {body}");
    let (status, body) = d
        .call(
            Method::POST,
            "/me/follow-requests/ann/approve",
            Some(&bob),
            None,
        )
        .await?;
    ensure!(status.is_success(), "{status} {body}");
    wait_for(DEADLINE, "bob's image in ann's feed", || async {
        let (_, feed) = d.get("/feed", Some(&ann)).await.ok()?;
        ids(&feed).contains(&bob_image).then_some(())
    })
    .await?;
    let (status, _) = d.get(&format!("/images/{bob_image}"), Some(&ann)).await?;
    ensure!(status == StatusCode::OK, "{status}");
    // Unsigned presets are for public images only.
    let response = d
        .http
        .get(d.url(&format!("/t/_/pr:thumb/{bob_image}.jpg")))
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::NOT_FOUND,
        "{}",
        response.status()
    );
    let (status, body) = d
        .call(Method::POST, "/users/ann/block", Some(&bob), None)
        .await?;
    ensure!(status.is_success(), "{status} {body}");
    wait_for(DEADLINE, "the block to hide bob's image", || async {
        let (_, feed) = d.get("/feed", Some(&ann)).await.ok()?;
        let (status, _) = d
            .get(&format!("/images/{bob_image}"), Some(&ann))
            .await
            .ok()?;
        (!ids(&feed).contains(&bob_image) && status == StatusCode::NOT_FOUND).then_some(())
    })
    .await?;

    // kill -9 the thumbnails process working on an image: the other one
    // finishes it, once.
    let big = std::fs::read("/usr/share/backgrounds/mate/abstract/Elephants_3840x2160.jpg")?;
    let (status, accepted) = d.upload(&ann, big, &[], "").await?;
    ensure!(status == StatusCode::ACCEPTED, "{status} {accepted}");
    let task = accepted["task_id"].as_str().context("task")?.to_owned();
    let image = accepted["image_id"].as_str().context("image")?.to_owned();
    let started = image.clone();
    let working = wait_for(DEADLINE, "a thumbnails process to start the image", || {
        let found = ["thumbnails-1", "thumbnails-2"].into_iter().find(|p| {
            d.log(p)
                .lines()
                .any(|l| l.contains(&started) && l.contains("making derivatives"))
        });
        async move { found }
    })
    .await?;
    let survivor = if working == "thumbnails-1" {
        "thumbnails-2"
    } else {
        "thumbnails-1"
    };
    let status = Command::new("kill")
        .args(["-9", &d.pid(working)?.to_string()])
        .status()?;
    ensure!(status.success(), "kill -9 {working}");
    ensure!(
        !d.log(working)
            .lines()
            .any(|l| l.contains(&started) && l.contains("derivatives made")),
        "{working} finished before it was killed; the test proves nothing"
    );
    let t = wait_for(
        DEADLINE * 3,
        "the other worker to finish the image",
        || async {
            let (_, t) = d.get(&format!("/tasks/{task}"), Some(&ann)).await.ok()?;
            (t["status"] == "done" || t["status"] == "failed").then_some(t)
        },
    )
    .await?;
    ensure!(t["status"] == "done", "{t}");
    let made = d
        .log(survivor)
        .lines()
        .filter(|l| l.contains(&started) && l.contains("derivatives made"))
        .count();
    ensure!(made == 1, "{survivor} made the derivatives {made} times");
    let (_, record) = d.get(&format!("/images/{image}"), Some(&ann)).await?;
    ensure!(
        record["status"] == "ready"
            && record["derivatives"]
                .as_array()
                .is_some_and(|d| d.len() == 8),
        "{record}"
    );

    // Deleting an account removes its originals and derivatives.
    let original = pinhole_events::images::original_key(&wood_sha, "jpg");
    let derivatives = pinhole_events::images::derivative_prefix(&wood_sha);
    ensure!(d.stored(&original).await? == 1, "no original at {original}");
    ensure!(d.stored(&derivatives).await? > 0, "no derivatives");
    let (status, _) = d.call(Method::DELETE, "/me", Some(&bob), None).await?;
    ensure!(status == StatusCode::NO_CONTENT, "{status}");
    wait_for(DEADLINE, "bob's original and derivatives to go", || async {
        let left = d.stored(&original).await.ok()? + d.stored(&derivatives).await.ok()?;
        (left == 0).then_some(())
    })
    .await?;
    let (status, _) = d.get(&format!("/images/{ann_image}"), Some(&ann)).await?;
    ensure!(status == StatusCode::OK, "ann's image went too: {status}");
    Ok(())
}
