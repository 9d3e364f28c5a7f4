//! A running server and an HTTP client speaking the images API, for the
//! scenarios of several test files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use pinhole::Server;
use pinhole_config::Settings;
use pinhole_testkit::{unique, wait_for};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";
pub const PHOTOS: &str = "/usr/share/backgrounds/mate/nature";
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A real camera photo from Debian's mate-backgrounds package.
pub fn photo(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = Path::new(PHOTOS).join(name);
    std::fs::read(&path).with_context(|| {
        format!(
            "{} is missing: install the Debian package mate-backgrounds (infra/test.sh does)",
            path.display()
        )
    })
}

/// A 480×320 JPEG of camera photo `name`, made distinct by `n` (other
/// bytes, same picture): quick to process.
pub fn small_photo(name: &str, n: usize) -> anyhow::Result<Vec<u8>> {
    let full = image::load_from_memory(&photo(name)?)?;
    let small = full.resize(480, 320, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    small
        .to_rgb8()
        .write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(variant(&out.into_inner(), n))
}

/// The same JPEG with a comment segment after SOI: other bytes, same picture.
pub fn variant(jpeg: &[u8], n: usize) -> Vec<u8> {
    let text = format!("pinhole test variant {n}");
    let len = u16::try_from(text.len() + 2).unwrap_or(0);
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A copy of `name` changed by exiftool `args`.
pub fn with_exif(dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let path: PathBuf = dir.join(format!("{}-{name}", unique("exif")));
    std::fs::write(&path, photo(name)?)?;
    let out = Command::new("exiftool")
        .args(["-q", "-overwrite_original"])
        .args(args)
        .arg(&path)
        .output()
        .context("exiftool is missing: install libimage-exiftool-perl (infra/test.sh does)")?;
    ensure!(
        out.status.success(),
        "exiftool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(std::fs::read(&path)?)
}

/// A server with the users, images and thumbnails roles, and a client.
pub struct App {
    pub server: Server,
    /// The roles it serves.
    pub roles: &'static [&'static str],
    /// What the server was started with.
    pub settings: Settings,
    pub http: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
}

/// What outlives a scenario's server to check its blob store afterwards.
pub struct Probe {
    ctx: pinhole_http::AppContext,
    _dir: Arc<tempfile::TempDir>,
}

/// What each role's check found, and the staged edit results still there.
#[derive(Debug)]
pub struct Checked {
    pub images: pinhole_blob::CheckReport,
    pub thumbnails: pinhole_blob::CheckReport,
    pub staged: Vec<String>,
}

impl Checked {
    /// Nothing orphaned or missing under either role's prefixes, and every
    /// staged edit result settled.
    pub fn clean(&self) -> bool {
        [&self.images, &self.thumbnails]
            .iter()
            .all(|r| r.missing == 0 && r.orphaned == 0)
            && self.staged.is_empty()
    }
}

/// Both roles' checks of the prefixes they own (as `pinhole blobs check`
/// runs them), without repair.
pub async fn check_all(ctx: &pinhole_http::AppContext, grace: Duration) -> anyhow::Result<Checked> {
    let b = &ctx.backends;
    Ok(Checked {
        images: pinhole_images::store::check(&b.db, b.blobs.as_ref(), &ctx.outbox, grace, false)
            .await?,
        thumbnails: pinhole_thumbnails::store::check(b, grace, false).await?,
        staged: b
            .blobs
            .list(pinhole_thumbnails::store::EDITS)
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect(),
    })
}

impl Probe {
    /// Every stored object has a reference and every reference an object
    /// (as `pinhole blobs check` reports for both the images role's
    /// `originals/` and the thumbnails role's `derivatives/` and `edits/`),
    /// once work in flight has settled.
    pub async fn assert_clean(&self) -> anyhow::Result<()> {
        let last = std::sync::Mutex::new(None);
        let clean = wait_for(Duration::from_secs(30), "a clean blob store", || async {
            let r = check_all(&self.ctx, Duration::ZERO).await.ok()?;
            let clean = r.clean();
            if let Ok(mut l) = last.lock() {
                *l = Some(r);
            }
            clean.then_some(())
        })
        .await;
        clean.with_context(|| format!("after the scenario: {:?}", last.lock().ok()))
    }
}

impl App {
    pub async fn embedded() -> anyhow::Result<Self> {
        Self::embedded_with(|_| {}).await
    }

    pub async fn real() -> anyhow::Result<Self> {
        Self::real_with(|_| {}).await
    }

    /// On the embedded backends, with `tweak` applied to the settings.
    pub async fn embedded_with(tweak: impl FnOnce(&mut Settings)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut settings = Settings::embedded(dir.path());
        tweak(&mut settings);
        Self::start(settings, dir).await
    }

    /// On the real backends, with `tweak` applied to the settings.
    pub async fn real_with(tweak: impl FnOnce(&mut Settings)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut settings = crate::real_settings(dir.path(), "app").await?;
        tweak(&mut settings);
        Self::start(settings, dir).await
    }

    /// A handle that checks the blob store after the scenario.
    pub fn probe(&self) -> Probe {
        Probe {
            ctx: self.server.ctx.clone(),
            _dir: self.dir.clone(),
        }
    }

    pub async fn start(settings: Settings, dir: tempfile::TempDir) -> anyhow::Result<Self> {
        Self::start_roles(settings, dir, &["users", "images", "thumbnails"]).await
    }

    /// Serving `roles`.
    pub async fn start_roles(
        mut settings: Settings,
        dir: tempfile::TempDir,
        roles: &'static [&'static str],
    ) -> anyhow::Result<Self> {
        // PINHOLE_TEST_LOG=FILTER (e.g. `info`): the servers' logs, shown
        // with a failing test's output.
        if let Ok(filter) = std::env::var("PINHOLE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        settings.callback_allow_private = true;
        // Scenarios sign many people up from one address.
        settings.signup_limit = 0;
        settings.max_upload_bytes = 12 * 1024 * 1024;
        Ok(Self {
            server: pinhole::start(settings.clone(), roles).await?,
            roles,
            settings,
            http: reqwest::Client::new(),
            dir: Arc::new(dir),
        })
    }

    /// Stops the server at once (its workers mid-job) and starts another on
    /// the same backends.
    pub async fn restart(self) -> anyhow::Result<Self> {
        let Self {
            server,
            roles,
            settings,
            http,
            dir,
        } = self;
        server.stop().await?;
        let mut settings = settings;
        settings.listen = "127.0.0.1:0".parse()?;
        Ok(Self {
            server: pinhole::start(settings.clone(), roles).await?,
            roles,
            settings,
            http,
            dir,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.url())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await?).await
    }

    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn user(&self, name: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .call(Method::POST, "/accounts", None, Some(json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})))
            .await?;
        ensure!(status == StatusCode::CREATED, "sign-up {status} {body}");
        let (status, body) = self
            .call(
                Method::POST,
                "/sessions",
                None,
                Some(json!({"login": name, "password": PASSWORD})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "log-in {status} {body}");
        Ok(body["access_token"].as_str().context("token")?.to_owned())
    }

    /// `POST /images{query}` with `file` and text fields.
    pub async fn upload(
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
            .post(self.url(&format!("/images{query}")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?;
        read(response).await
    }

    /// Uploads and waits for processing; the image record.
    pub async fn posted(
        &self,
        token: &str,
        file: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        let (status, body) = self
            .upload(token, file, fields, "?wait=true&timeout=60")
            .await?;
        ensure!(
            status == StatusCode::OK && body["status"] == "done",
            "{status} {body}"
        );
        let id = body["image_id"].as_str().context("image id")?;
        let (status, image) = self.get(&format!("/images/{id}"), Some(token)).await?;
        ensure!(status == StatusCode::OK, "{status} {image}");
        Ok(image)
    }

    pub async fn task_done(&self, token: &str, task_id: &str) -> anyhow::Result<Value> {
        wait_for(DEADLINE, "the task to finish", || async {
            let (_, t) = self
                .get(&format!("/tasks/{task_id}"), Some(token))
                .await
                .ok()?;
            (t["status"] == "done" || t["status"] == "failed").then_some(t)
        })
        .await
    }

    pub async fn bytes(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.server.url())
        };
        let mut request = self.http.get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await?;
        Ok((response.status(), response.bytes().await?.to_vec()))
    }

    pub async fn stored(&self, prefix: &str) -> anyhow::Result<usize> {
        Ok(self.server.ctx.backends.blobs.list(prefix).await?.len())
    }
}

pub async fn read(response: reqwest::Response) -> anyhow::Result<(StatusCode, Value)> {
    let status = response.status();
    let text = response.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?
    };
    Ok((status, value))
}

/// `backends!(scenario, …)`: each `async fn scenario(app: App)` of the
/// calling test file, once on the embedded backends (`embedded::scenario`)
/// and once on the real ones (`real::scenario`).
#[macro_export]
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let app = $crate::app::App::embedded().await?;
                    let probe = app.probe();
                    super::$name(app).await?;
                    probe.assert_clean().await
                }
            )*
        }
        mod real {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let app = $crate::app::App::real().await?;
                    let probe = app.probe();
                    super::$name(app).await?;
                    probe.assert_clean().await
                }
            )*
        }
    };
}
