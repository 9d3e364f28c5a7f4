//! Pinhole settings.
//!
//! Settings come from defaults in code, then an optional TOML file, then
//! `PINHOLE_*` environment variables (`__` separates nested keys). They are
//! validated once at start-up into [`Settings`], whose fields are typed: the
//! rest of the program never sees an unchecked string.

mod mask;
mod roles;
mod urls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use mask::mask_url;
pub use roles::{CALLED_ROLES, RoleUrls};
pub use urls::{
    BlobUrl, BusUrl, CacheUrl, ChecksumMode, DatabaseUrl, KafkaSettings, RedisSettings, S3Settings,
};

/// The prefix of every environment variable Pinhole reads.
pub const ENV_PREFIX: &str = "PINHOLE_";

/// A setting that could not be accepted. `Display` names the setting, its
/// environment variable and the accepted form, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting `{key}` ({env}): {problem}; expected {expected}")]
    Invalid {
        key: &'static str,
        env: String,
        problem: String,
        expected: &'static str,
    },
    #[error(
        "unknown setting `{key}` (from {source_name}); known settings: {known}",
        known = KNOWN_KEYS.join(", ")
    )]
    Unknown { key: String, source_name: String },
    #[error("config file {path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("{0}")]
    Other(String),
}

impl ConfigError {
    fn invalid(key: &'static str, problem: impl Into<String>, expected: &'static str) -> Self {
        Self::Invalid {
            key,
            env: env_name(key),
            problem: problem.into(),
            expected,
        }
    }
}

/// The environment variable that sets `key`.
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.to_ascii_uppercase().replace('.', "__")
    )
}

const KNOWN_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "cache_url",
    "bus_url",
    "blob_url",
    "blob_links",
    "public_url",
    "log_format",
    "signing_key",
    "bus_partitions",
    "trusted_proxies",
    "internal_token",
    "role_urls",
    "max_upload_bytes",
    "max_image_pixels",
    "callback_allow_private",
    "bus_namespace",
    "transform_keys",
    "transform_presets",
    "transform_unsigned_presets",
    "transform_max_output_pixels",
    "transform_max_source_pixels",
    "processing_time_limit",
    "event_max_attempts",
    "signup_limit",
    "quota_images",
    "quota_bytes",
    "quota_tus_uploads",
    "quota_edits_per_hour",
    "blob_orphan_grace",
    "blob_sweep_interval",
    "search_dir",
    "search_group",
    "upload_min_rate",
    "upload_deadline",
    "uploads_per_account",
    "memory_budget",
];

/// Settings as written by a person: every field optional or defaulted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    listen: String,
    data_dir: PathBuf,
    database_url: Option<String>,
    cache_url: String,
    bus_url: String,
    blob_url: Option<String>,
    blob_links: String,
    public_url: Option<String>,
    log_format: String,
    signing_key: Option<String>,
    bus_partitions: u32,
    trusted_proxies: String,
    internal_token: Option<String>,
    role_urls: String,
    max_upload_bytes: u64,
    max_image_pixels: u64,
    callback_allow_private: bool,
    bus_namespace: String,
    transform_keys: Option<String>,
    transform_presets: String,
    transform_unsigned_presets: String,
    transform_max_output_pixels: u64,
    transform_max_source_pixels: u64,
    processing_time_limit: u64,
    event_max_attempts: u32,
    blob_orphan_grace: u64,
    blob_sweep_interval: u64,
    signup_limit: u64,
    quota_images: u64,
    quota_bytes: u64,
    quota_tus_uploads: u64,
    quota_edits_per_hour: u64,
    search_dir: Option<PathBuf>,
    search_group: Option<String>,
    upload_min_rate: u64,
    upload_deadline: u64,
    uploads_per_account: u32,
    memory_budget: u64,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./pinhole-data"),
            database_url: None,
            cache_url: "memory".into(),
            bus_url: "embedded".into(),
            blob_url: None,
            blob_links: "direct".into(),
            public_url: None,
            log_format: "text".into(),
            signing_key: None,
            bus_partitions: 4,
            trusted_proxies: String::new(),
            internal_token: None,
            role_urls: String::new(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            callback_allow_private: false,
            bus_namespace: String::new(),
            transform_keys: None,
            transform_presets: String::new(),
            transform_unsigned_presets: "thumb,small,medium,large".into(),
            transform_max_output_pixels: 16 * 1024 * 1024,
            transform_max_source_pixels: 50_000_000,
            processing_time_limit: 60,
            event_max_attempts: 8,
            blob_orphan_grace: 3600,
            blob_sweep_interval: 3600,
            signup_limit: 10,
            quota_images: DEFAULT_QUOTA_IMAGES,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            quota_tus_uploads: DEFAULT_QUOTA_TUS_UPLOADS,
            quota_edits_per_hour: DEFAULT_QUOTA_EDITS_PER_HOUR,
            search_dir: None,
            search_group: None,
            upload_min_rate: 4096,
            upload_deadline: 900,
            uploads_per_account: 16,
            memory_budget: 512 * 1024 * 1024,
        }
    }
}

/// 100 MiB: a RAW-sized JPEG with room to spare.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
/// 150 megapixels: the largest medium-format cameras, not a decompression bomb.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 150_000_000;
/// Images one account may have.
pub const DEFAULT_QUOTA_IMAGES: u64 = 10_000;
/// 50 GiB of originals per account.
pub const DEFAULT_QUOTA_BYTES: u64 = 50 * 1024 * 1024 * 1024;
/// Unfinished resumable uploads one account may have open.
pub const DEFAULT_QUOTA_TUS_UPLOADS: u64 = 20;
/// Edits one account may ask for in an hour.
pub const DEFAULT_QUOTA_EDITS_PER_HOUR: u64 = 120;

/// `search-` and this host's name: one consumer group, so one full index,
/// per host.
fn default_search_group() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if host.is_empty() {
        "search-local".into()
    } else {
        format!("search-{host}")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What links to blobs (derivatives) the roles hand out
/// (`PINHOLE_BLOB_LINKS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlobLinks {
    /// The store's own links: presigned S3 URLs from the S3 store, the
    /// server's signed `/blobs/` links from the local store.
    #[default]
    Direct,
    /// The server's signed `/blobs/` links; the server serves the bytes
    /// (from S3 too), for a cache in front of it to keep.
    Proxy,
    /// The server's signed `/blobs/` links, answered with a redirect to a
    /// presigned S3 URL (S3 only).
    Redirect,
}

impl BlobLinks {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "proxy" => Some(Self::Proxy),
            "redirect" => Some(Self::Redirect),
            _ => None,
        }
    }
}

/// Refuses links that the blob store cannot make: `redirect` needs S3 to
/// redirect to.
pub fn check_blob_links(blob: &BlobUrl, links: BlobLinks) -> Result<(), ConfigError> {
    match (blob, links) {
        (BlobUrl::Local(_), BlobLinks::Redirect) => Err(ConfigError::invalid(
            "blob_links",
            "`redirect` needs an S3 blob store, and PINHOLE_BLOB_URL is a directory (there is no S3 to redirect to)",
            "`direct` or `proxy` with a local blob store (the same there), or an s3:// PINHOLE_BLOB_URL",
        )),
        _ => Ok(()),
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub cache: CacheUrl,
    pub bus: BusUrl,
    pub blob: BlobUrl,
    /// What links to blobs the roles hand out.
    pub blob_links: BlobLinks,
    /// The address clients use to reach this server; signed local blob links
    /// are built on it. `None`: the address the server is bound to.
    pub public_url: Option<url::Url>,
    pub log_format: LogFormat,
    /// Key for signing URLs. `None` means: derive one and keep it in the data
    /// directory (done by the server at start-up).
    pub signing_key: Option<SecretString>,
    /// Partitions per topic on the embedded event log.
    pub bus_partitions: u32,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or networks).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// When set, `/internal` routes answer only requests that carry it in
    /// `X-Pinhole-Internal-Token`.
    pub internal_token: Option<SecretString>,
    /// Where the roles this process calls but does not host are served
    /// (`PINHOLE_ROLE_URLS`).
    pub role_urls: RoleUrls,
    /// The largest upload accepted, in bytes (413 above it).
    pub max_upload_bytes: u64,
    /// The most pixels (width × height) an uploaded image may have.
    pub max_image_pixels: u64,
    /// Whether task callbacks may go to private, loopback and link-local
    /// addresses (off: only public addresses).
    pub callback_allow_private: bool,
    /// Prefix (`NAMESPACE.`) of every topic and consumer group, so several
    /// deployments can share a Kafka cluster; empty: none.
    pub bus_namespace: String,
    /// `HEXKEY:HEXSALT` pairs (comma-separated) signing on-demand transform
    /// URLs; the first signs, any verifies. `None`: one pair derived from the
    /// signing key.
    pub transform_keys: Option<SecretString>,
    /// Extra named transform presets, `name=options;name=options`.
    pub transform_presets: String,
    /// Presets served without a signature (comma-separated names).
    pub transform_unsigned_presets: Vec<String>,
    /// The most pixels a transform may output.
    pub transform_max_output_pixels: u64,
    /// The most pixels an original may have to be transformed on demand.
    pub transform_max_source_pixels: u64,
    /// How long the thumbnails role may work on one image.
    pub processing_time_limit: std::time::Duration,
    /// Failed attempts in a row after which a consumed event is parked as a
    /// dead letter (`pinhole events dead`).
    pub event_max_attempts: u32,
    /// How old an unreferenced object must be before the sweep removes it
    /// (younger ones may be writes in flight).
    pub blob_orphan_grace: std::time::Duration,
    /// How often the store is compared with its references.
    pub blob_sweep_interval: std::time::Duration,
    /// Sign-ups allowed per client address per hour (0: no limit).
    pub signup_limit: u64,
    /// Images one account may have (0: no limit); more: 429.
    pub quota_images: u64,
    /// Bytes of originals one account may store, the sum of its images'
    /// sizes (0: no limit); a file that would pass it: 413.
    pub quota_bytes: u64,
    /// Unfinished resumable (tus) uploads one account may have open (0: no
    /// limit); more: 429.
    pub quota_tus_uploads: u64,
    /// Edits one account may ask for in an hour (0: no limit); more: 429
    /// with `Retry-After`.
    pub quota_edits_per_hour: u64,
    /// Where the search role keeps its index (`PINHOLE_SEARCH_DIR`;
    /// default: `search` in the data directory). Local to each instance.
    pub search_dir: PathBuf,
    /// The consumer group of this search instance; each instance keeps a
    /// full index from a group of its own (default: `search-` and the host
    /// name).
    pub search_group: String,
    /// The slowest an upload body may arrive, in bytes a second on average
    /// (after a few seconds' grace); slower ones are answered 408.
    pub upload_min_rate: u64,
    /// The longest one upload request may take to send its body.
    pub upload_deadline: std::time::Duration,
    /// Uploads one account may send at once; more wait for one to end
    /// (429 after a while).
    pub uploads_per_account: u32,
    /// Bytes of whole bodies (uploads, originals read for transforms and
    /// copies, tus assembly) held in memory at once, across requests.
    pub memory_budget: u64,
}

impl Settings {
    /// Loads defaults, then `file` (when given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    problem: "no such file".into(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // PINHOLE_TEST_* and PINHOLE_INFRA_* belong to the test suite and
        // infra scripts, not to the server.
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !key.starts_with("test_") && !key.starts_with("infra_")
                })
                .split("__"),
        );
        let raw: RawSettings = figment.extract().map_err(from_figment)?;
        let mut settings = raw.validate()?;
        if let BlobUrl::S3(s3) = &mut settings.blob {
            s3_credentials_from_env(s3)?;
        }
        Ok(settings)
    }

    /// All-embedded settings under `data_dir`, listening on an ephemeral port:
    /// what tests and `pinhole serve` with no configuration start from.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let raw = RawSettings {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.into(),
            ..RawSettings::default()
        };
        match raw.validate() {
            Ok(settings) => settings,
            // The defaults are constants checked by this crate's tests.
            Err(e) => unreachable!("default settings are invalid: {e}"),
        }
    }
}

impl RawSettings {
    fn validate(self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            ConfigError::invalid(
                "listen",
                format!("`{}` is not a socket address", self.listen),
                "IP:PORT, e.g. 127.0.0.1:8080",
            )
        })?;
        let data_dir = self.data_dir;
        let database = match &self.database_url {
            None => DatabaseUrl::sqlite_in(&data_dir),
            Some(s) => DatabaseUrl::parse(s).map_err(|p| {
                ConfigError::invalid(
                    "database_url",
                    p,
                    "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
                )
            })?,
        };
        let cache = CacheUrl::parse(&self.cache_url).map_err(|p| {
            ConfigError::invalid("cache_url", p, "`memory` or redis://HOST[:PORT][/DB]")
        })?;
        let bus = BusUrl::parse(&self.bus_url, &data_dir).map_err(|p| {
            ConfigError::invalid(
                "bus_url",
                p,
                "`embedded` or kafka://HOST:PORT[,HOST:PORT...]",
            )
        })?;
        let blob = match &self.blob_url {
            None => BlobUrl::Local(data_dir.join("blobs")),
            Some(s) => BlobUrl::parse(s).map_err(|p| {
                ConfigError::invalid(
                    "blob_url",
                    p,
                    "a directory (file:///PATH or PATH) or s3://BUCKET?endpoint=URL&region=REGION",
                )
            })?,
        };
        let blob_links = BlobLinks::parse(&self.blob_links).ok_or_else(|| {
            ConfigError::invalid(
                "blob_links",
                format!("`{}` is not a kind of blob link", self.blob_links),
                "`direct`, `proxy` or `redirect`",
            )
        })?;
        check_blob_links(&blob, blob_links)?;
        let public_url = match &self.public_url {
            None => None,
            Some(s) => {
                let url = s.parse::<url::Url>().map_err(|e| {
                    ConfigError::invalid(
                        "public_url",
                        format!("`{s}`: {e}"),
                        "an absolute http(s) URL, e.g. https://photos.example.com",
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::invalid(
                        "public_url",
                        format!("scheme `{}` is not served", url.scheme()),
                        "an absolute http(s) URL",
                    ));
                }
                Some(url)
            }
        };
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "log_format",
                    format!("`{other}` is not a log format"),
                    "`text` or `json`",
                ));
            }
        };
        let signing_key = match self.signing_key {
            Some(k) if k.len() < 32 => {
                return Err(ConfigError::invalid(
                    "signing_key",
                    format!("it is {} characters long", k.len()),
                    "a random string of at least 32 characters",
                ));
            }
            other => other.map(SecretString::from),
        };
        if !(1..=256).contains(&self.bus_partitions) {
            return Err(ConfigError::invalid(
                "bus_partitions",
                format!("{} is out of range", self.bus_partitions),
                "a number from 1 to 256",
            ));
        }
        let mut trusted_proxies = Vec::new();
        for item in self
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let net = item
                .parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::invalid(
                        "trusted_proxies",
                        format!("`{item}` is not an address or network"),
                        "comma-separated addresses or CIDR networks, e.g. 10.0.0.0/8,127.0.0.1",
                    )
                })?;
            trusted_proxies.push(net);
        }
        let internal_token = match self.internal_token {
            Some(t) if t.len() < 32 => {
                return Err(ConfigError::invalid(
                    "internal_token",
                    format!("it is {} characters long", t.len()),
                    "a random string of at least 32 characters",
                ));
            }
            other => other.map(SecretString::from),
        };
        let role_urls = RoleUrls::parse(&self.role_urls).map_err(|p| {
            ConfigError::invalid(
                "role_urls",
                p,
                "ROLE=URL[,ROLE=URL...] for the roles users and images, e.g. users=http://10.0.0.5:8080,images=http://10.0.0.6:8080",
            )
        })?;
        if !(1024..=(1u64 << 40)).contains(&self.max_upload_bytes) {
            return Err(ConfigError::invalid(
                "max_upload_bytes",
                format!("{} is out of range", self.max_upload_bytes),
                "a number of bytes from 1024 to 1099511627776",
            ));
        }
        if !(1..=(1u64 << 40)).contains(&self.max_image_pixels) {
            return Err(ConfigError::invalid(
                "max_image_pixels",
                format!("{} is out of range", self.max_image_pixels),
                "a number of pixels from 1 to 1099511627776",
            ));
        }
        if !self
            .bus_namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || self.bus_namespace.len() > 100
        {
            return Err(ConfigError::invalid(
                "bus_namespace",
                format!("`{}` is not a valid name", self.bus_namespace),
                "up to 100 characters of [A-Za-z0-9_-], or empty",
            ));
        }
        let transform_keys = match self.transform_keys {
            Some(k) if !valid_key_pairs(&k) => {
                return Err(ConfigError::invalid(
                    "transform_keys",
                    "it is not a list of hex key:salt pairs",
                    "HEXKEY:HEXSALT[,HEXKEY:HEXSALT...], keys of at least 16 bytes",
                ));
            }
            other => other.map(SecretString::from),
        };
        for (name, value, max, expected) in [
            (
                "transform_max_output_pixels",
                self.transform_max_output_pixels,
                1u64 << 30,
                "a number of pixels from 1 to 1073741824",
            ),
            (
                "transform_max_source_pixels",
                self.transform_max_source_pixels,
                1u64 << 40,
                "a number of pixels from 1 to 1099511627776",
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError::invalid(
                    name,
                    format!("{value} is out of range"),
                    expected,
                ));
            }
        }
        if !(1..=3600).contains(&self.processing_time_limit) {
            return Err(ConfigError::invalid(
                "processing_time_limit",
                format!("{} is out of range", self.processing_time_limit),
                "a number of seconds from 1 to 3600",
            ));
        }
        if self.blob_orphan_grace > 7 * 86400 {
            return Err(ConfigError::invalid(
                "blob_orphan_grace",
                format!("{} is out of range", self.blob_orphan_grace),
                "a number of seconds from 0 to 604800",
            ));
        }
        if !(10..=7 * 86400).contains(&self.blob_sweep_interval) {
            return Err(ConfigError::invalid(
                "blob_sweep_interval",
                format!("{} is out of range", self.blob_sweep_interval),
                "a number of seconds from 10 to 604800",
            ));
        }
        if !(1..=100).contains(&self.event_max_attempts) {
            return Err(ConfigError::invalid(
                "event_max_attempts",
                format!("{} is out of range", self.event_max_attempts),
                "a number of attempts from 1 to 100",
            ));
        }
        if self.signup_limit > 1_000_000 {
            return Err(ConfigError::invalid(
                "signup_limit",
                format!("{} is out of range", self.signup_limit),
                "a number of sign-ups per address per hour from 0 (no limit) to 1000000",
            ));
        }
        for (name, value, max, expected) in [
            (
                "quota_images",
                self.quota_images,
                1_000_000_000,
                "a number of images per account from 0 (no limit) to 1000000000",
            ),
            (
                "quota_bytes",
                self.quota_bytes,
                1u64 << 50,
                "a number of bytes per account from 0 (no limit) to 1125899906842624",
            ),
            (
                "quota_tus_uploads",
                self.quota_tus_uploads,
                100_000,
                "a number of unfinished uploads per account from 0 (no limit) to 100000",
            ),
            (
                "quota_edits_per_hour",
                self.quota_edits_per_hour,
                1_000_000,
                "a number of edits per account per hour from 0 (no limit) to 1000000",
            ),
        ] {
            if value > max {
                return Err(ConfigError::invalid(
                    name,
                    format!("{value} is out of range"),
                    expected,
                ));
            }
        }
        if !(1..=1 << 30).contains(&self.upload_min_rate) {
            return Err(ConfigError::invalid(
                "upload_min_rate",
                format!("{} is out of range", self.upload_min_rate),
                "a number of bytes a second from 1 to 1073741824",
            ));
        }
        if !(10..=86400).contains(&self.upload_deadline) {
            return Err(ConfigError::invalid(
                "upload_deadline",
                format!("{} is out of range", self.upload_deadline),
                "a number of seconds from 10 to 86400",
            ));
        }
        if !(1..=10_000).contains(&self.uploads_per_account) {
            return Err(ConfigError::invalid(
                "uploads_per_account",
                format!("{} is out of range", self.uploads_per_account),
                "a number of uploads from 1 to 10000",
            ));
        }
        if !((16 << 20)..=(1u64 << 40)).contains(&self.memory_budget) {
            return Err(ConfigError::invalid(
                "memory_budget",
                format!("{} is out of range", self.memory_budget),
                "a number of bytes from 16777216 (16 MiB) to 1099511627776",
            ));
        }
        let search_group = match self.search_group {
            Some(g) => {
                if g.is_empty()
                    || g.len() > 200
                    || !g
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(ConfigError::invalid(
                        "search_group",
                        format!("`{g}` is not a consumer group name"),
                        "letters, digits, `-`, `_` and `.`, at most 200",
                    ));
                }
                g
            }
            None => default_search_group(),
        };
        Ok(Settings {
            upload_min_rate: self.upload_min_rate,
            upload_deadline: std::time::Duration::from_secs(self.upload_deadline),
            uploads_per_account: self.uploads_per_account,
            memory_budget: self.memory_budget,
            search_dir: self.search_dir.unwrap_or_else(|| data_dir.join("search")),
            search_group,
            signup_limit: self.signup_limit,
            quota_images: self.quota_images,
            quota_bytes: self.quota_bytes,
            quota_tus_uploads: self.quota_tus_uploads,
            quota_edits_per_hour: self.quota_edits_per_hour,
            event_max_attempts: self.event_max_attempts,
            blob_orphan_grace: std::time::Duration::from_secs(self.blob_orphan_grace),
            blob_sweep_interval: std::time::Duration::from_secs(self.blob_sweep_interval),
            transform_keys,
            transform_presets: self.transform_presets,
            transform_unsigned_presets: self
                .transform_unsigned_presets
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            transform_max_output_pixels: self.transform_max_output_pixels,
            transform_max_source_pixels: self.transform_max_source_pixels,
            processing_time_limit: std::time::Duration::from_secs(self.processing_time_limit),
            bus_namespace: self.bus_namespace,
            max_upload_bytes: self.max_upload_bytes,
            max_image_pixels: self.max_image_pixels,
            callback_allow_private: self.callback_allow_private,
            internal_token,
            role_urls,
            trusted_proxies,
            listen,
            data_dir,
            database,
            cache,
            bus,
            blob,
            blob_links,
            public_url,
            log_format,
            signing_key,
            bus_partitions: self.bus_partitions,
        })
    }
}

/// `HEXKEY:HEXSALT[,…]` with keys of at least 16 bytes.
fn valid_key_pairs(s: &str) -> bool {
    let hex = |h: &str| h.len().is_multiple_of(2) && h.bytes().all(|b| b.is_ascii_hexdigit());
    s.split(',').all(|pair| {
        pair.trim()
            .split_once(':')
            .is_some_and(|(k, salt)| hex(k) && k.len() >= 32 && hex(salt))
    })
}

/// S3 credentials not given in the URL come from the standard AWS variables.
fn s3_credentials_from_env(s3: &mut S3Settings) -> Result<(), ConfigError> {
    if s3.access_key_id.is_none() {
        s3.access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok();
    }
    if s3.secret_access_key.is_none() {
        s3.secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY")
            .ok()
            .map(SecretString::from);
    }
    if s3.access_key_id.is_none() || s3.secret_access_key.is_none() {
        return Err(ConfigError::invalid(
            "blob_url",
            "no S3 credentials",
            "access_key_id and secret_access_key in the URL, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
        ));
    }
    Ok(())
}

fn from_figment(err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let source_name = err
        .metadata
        .as_ref()
        .map(|m| m.name.to_string())
        .unwrap_or_else(|| "settings".into());
    match &err.kind {
        Kind::UnknownField(field, _) => ConfigError::Unknown {
            key: field.clone(),
            source_name: if source_name.contains("environment") {
                env_name(field)
            } else {
                source_name
            },
        },
        _ => {
            let key = err.path.join(".");
            if key.is_empty() {
                ConfigError::Other(format!("{source_name}: {err}"))
            } else {
                ConfigError::Other(format!(
                    "invalid setting `{key}` ({}): {}",
                    env_name(&key),
                    err.kind
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_live_under_the_data_dir() {
        let s = Settings::embedded("/tmp/x");
        assert_eq!(
            s.database,
            DatabaseUrl::Sqlite(PathBuf::from("/tmp/x/pinhole.db"))
        );
        assert_eq!(s.bus, BusUrl::Embedded(PathBuf::from("/tmp/x/events.db")));
        assert_eq!(s.blob, BlobUrl::Local(PathBuf::from("/tmp/x/blobs")));
        assert_eq!(s.cache, CacheUrl::Memory);
    }

    #[test]
    fn default_raw_settings_validate() {
        let s = RawSettings::default()
            .validate()
            .expect("defaults are valid");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, None);
    }

    #[test]
    fn bad_values_name_the_setting_and_the_form() {
        let raw = RawSettings {
            bus_url: "amqp://x".into(),
            ..RawSettings::default()
        };
        let msg = raw.validate().expect_err("amqp is not a bus").to_string();
        assert!(msg.contains("bus_url"), "{msg}");
        assert!(msg.contains("PINHOLE_BUS_URL"), "{msg}");
        assert!(msg.contains("kafka://"), "{msg}");

        let raw = RawSettings {
            listen: "nowhere".into(),
            ..RawSettings::default()
        };
        let msg = raw.validate().expect_err("not an address").to_string();
        assert!(msg.contains("PINHOLE_LISTEN"), "{msg}");

        let raw = RawSettings {
            role_urls: "users=http://10.0.0.5:8080,photos=http://10.0.0.6".into(),
            ..RawSettings::default()
        };
        let msg = raw.validate().expect_err("no such role").to_string();
        assert!(
            msg.contains("PINHOLE_ROLE_URLS") && msg.contains("photos"),
            "{msg}"
        );
    }

    #[test]
    fn blob_links_are_checked_against_the_store() {
        let s3 = Some("s3://b?endpoint=http://127.0.0.1:9000&region=r".to_owned());
        for (links, blob_url, expected) in [
            ("direct", None, BlobLinks::Direct),
            ("proxy", None, BlobLinks::Proxy),
            ("proxy", s3.clone(), BlobLinks::Proxy),
            ("redirect", s3.clone(), BlobLinks::Redirect),
        ] {
            let raw = RawSettings {
                blob_links: links.into(),
                blob_url,
                ..RawSettings::default()
            };
            let s = raw.validate().expect("valid");
            assert_eq!(s.blob_links, expected, "{links}");
        }
        assert_eq!(Settings::embedded("/tmp/x").blob_links, BlobLinks::Direct);

        let raw = RawSettings {
            blob_links: "cdn".into(),
            ..RawSettings::default()
        };
        let msg = raw.validate().expect_err("no such mode").to_string();
        assert!(
            msg.contains("PINHOLE_BLOB_LINKS") && msg.contains("`redirect`"),
            "{msg}"
        );

        let raw = RawSettings {
            blob_links: "redirect".into(),
            ..RawSettings::default()
        };
        let msg = raw.validate().expect_err("no S3").to_string();
        assert!(
            msg.contains("PINHOLE_BLOB_LINKS") && msg.contains("S3"),
            "{msg}"
        );
    }

    #[test]
    fn quotas_have_defaults_and_zero_means_no_limit() {
        let s = Settings::embedded("/tmp/x");
        assert_eq!(
            (
                s.quota_images,
                s.quota_bytes,
                s.quota_tus_uploads,
                s.quota_edits_per_hour
            ),
            (10_000, 53_687_091_200, 20, 120)
        );
        let raw = RawSettings {
            quota_images: 0,
            quota_bytes: 0,
            quota_tus_uploads: 0,
            quota_edits_per_hour: 0,
            ..RawSettings::default()
        };
        let s = raw.validate().expect("0 is no limit");
        assert_eq!((s.quota_images, s.quota_bytes), (0, 0));

        let raw = RawSettings {
            quota_bytes: 1 << 51,
            ..RawSettings::default()
        };
        let msg = raw.validate().expect_err("out of range").to_string();
        assert!(
            msg.contains("PINHOLE_QUOTA_BYTES") && msg.contains("no limit"),
            "{msg}"
        );
    }
}
