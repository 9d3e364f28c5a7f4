//! The backend URLs: which implementation of each backend to use, and where.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::mask_url;

/// Where the relational database lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub(crate) fn sqlite_in(data_dir: &Path) -> Self {
        Self::Sqlite(data_dir.join("pinhole.db"))
    }

    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(format!("`{s}` names no file"));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let url = url::Url::parse(s).map_err(|e| format!("`{}`: {e}", mask_url(s)))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{}` names no host", mask_url(s)));
            }
            return Ok(Self::Postgres(s.to_owned()));
        }
        Err(format!("`{}` is not a supported database", mask_url(s)))
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The connection string for sea-orm (SQLite files are created if missing).
    pub fn connection_string(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres(url) => url.clone(),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&mask_url(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where cached values live.
#[derive(Clone, PartialEq, Eq)]
pub enum CacheUrl {
    Memory,
    Redis(RedisSettings),
}

/// A Redis server, and the prefix every key gets there (so deployments or
/// test runs can share a server).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// The URL without Pinhole's own `prefix` option.
    pub url: String,
    pub prefix: String,
}

impl CacheUrl {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "memory" | "memory://" => Ok(Self::Memory),
            _ if s.starts_with("redis://") || s.starts_with("rediss://") => {
                let mut url = url::Url::parse(s).map_err(|e| format!("`{}`: {e}", mask_url(s)))?;
                let mut prefix = "pinhole:".to_owned();
                let rest: Vec<(String, String)> = url
                    .query_pairs()
                    .filter_map(|(k, v)| {
                        if k == "prefix" {
                            prefix = v.into_owned();
                            None
                        } else {
                            Some((k.into_owned(), v.into_owned()))
                        }
                    })
                    .collect();
                url.set_query(None);
                if !rest.is_empty() {
                    url.query_pairs_mut().extend_pairs(rest);
                }
                Ok(Self::Redis(RedisSettings {
                    url: url.to_string(),
                    prefix,
                }))
            }
            _ => Err(format!("`{}` is not a supported cache", mask_url(s))),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
        }
    }
}

impl fmt::Display for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Redis(redis) => f.write_str(&mask_url(&redis.url)),
        }
    }
}

impl fmt::Debug for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where events flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusUrl {
    /// The embedded durable log, in this SQLite file.
    Embedded(PathBuf),
    Kafka(KafkaSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port,host:port`, as librdkafka's `bootstrap.servers` wants it.
    pub brokers: String,
}

impl BusUrl {
    pub(crate) fn parse(s: &str, data_dir: &Path) -> Result<Self, String> {
        if s == "embedded" || s == "embedded://" {
            return Ok(Self::Embedded(data_dir.join("events.db")));
        }
        if let Some(path) = s.strip_prefix("embedded://") {
            return Ok(Self::Embedded(PathBuf::from(path)));
        }
        let shown = mask_url(s);
        let Some(rest) = s.strip_prefix("kafka://") else {
            return Err(format!("`{shown}` is not a supported event bus"));
        };
        let brokers = rest.split(['?', '/']).next().unwrap_or_default();
        if brokers.contains('@') {
            return Err(format!(
                "`{shown}` carries credentials, which Kafka URLs do not take"
            ));
        }
        if brokers.is_empty() {
            return Err(format!("`{shown}` names no broker"));
        }
        for broker in brokers.split(',') {
            let valid = broker
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(format!("broker `{broker}` in `{shown}` is not HOST:PORT"));
            }
        }
        Ok(Self::Kafka(KafkaSettings {
            brokers: brokers.to_owned(),
        }))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded",
            Self::Kafka(_) => "kafka",
        }
    }
}

impl fmt::Display for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded(path) => write!(f, "embedded://{}", path.display()),
            Self::Kafka(k) => write!(f, "kafka://{}", k.brokers),
        }
    }
}

/// Where blobs (originals, derivatives, Parquet files) live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobUrl {
    Local(PathBuf),
    S3(S3Settings),
}

/// When the S3 client computes request checksums. Some S3-compatible servers
/// reject the CRC checksums that AWS sends by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    WhenSupported,
    WhenRequired,
}

#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Custom endpoint for S3-compatible servers; `None` means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    pub checksum: ChecksumMode,
    /// Key prefix inside the bucket (no leading or trailing slash).
    pub prefix: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    /// Longest wait for a connection to the server.
    pub connect_timeout: std::time::Duration,
    /// Longest silence while reading an answer.
    pub read_timeout: std::time::Duration,
    /// Longest one call may take, retries included (a body streamed after
    /// the call answered is bounded by `read_timeout` between chunks).
    pub operation_timeout: std::time::Duration,
}

impl S3Settings {
    /// `bucket` on AWS (us-east-1), with the default timeouts.
    pub fn new(bucket: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            endpoint: None,
            region: "us-east-1".into(),
            path_style: false,
            checksum: ChecksumMode::WhenSupported,
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            connect_timeout: std::time::Duration::from_secs(3),
            read_timeout: std::time::Duration::from_secs(20),
            operation_timeout: std::time::Duration::from_secs(60),
        }
    }
}

impl PartialEq for S3Settings {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for S3Settings {}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        write!(f, "?region={}", self.region)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, "&endpoint={endpoint}")?;
        }
        Ok(())
    }
}

/// A timeout in seconds (fractions allowed), more than 0 and at most an hour.
fn parse_seconds(name: &str, v: &str) -> Result<std::time::Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= 3600.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{name} `{v}` is not a number of seconds between 0 and 3600"))
}

impl BlobUrl {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return Err(format!("`{s}` names no directory"));
            }
            return Ok(Self::Local(PathBuf::from(path)));
        }
        if !s.starts_with("s3://") {
            if s.contains("://") {
                return Err(format!("`{}` is not a supported blob store", mask_url(s)));
            }
            return Ok(Self::Local(PathBuf::from(s)));
        }
        let url = url::Url::parse(s).map_err(|e| format!("`{}`: {e}", mask_url(s)))?;
        let bucket = url.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(format!("`{}` names no bucket", mask_url(s)));
        }
        let mut settings = S3Settings {
            prefix: url.path().trim_matches('/').to_owned(),
            access_key_id: (!url.username().is_empty()).then(|| url.username().to_owned()),
            secret_access_key: url.password().map(|p| SecretString::from(p.to_owned())),
            ..S3Settings::new(&bucket)
        };
        let mut path_style = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "endpoint" => {
                    let endpoint = url::Url::parse(&v)
                        .map_err(|e| format!("endpoint `{v}` is not a URL: {e}"))?;
                    settings.endpoint = Some(endpoint.as_str().trim_end_matches('/').to_owned());
                }
                "region" => settings.region = v.into_owned(),
                "path_style" | "force_path_style" => {
                    path_style = Some(
                        parse_bool(&v)
                            .ok_or_else(|| format!("path_style `{v}` is not true or false"))?,
                    );
                }
                "checksum" => {
                    settings.checksum = match v.as_ref() {
                        "when_supported" => ChecksumMode::WhenSupported,
                        "when_required" => ChecksumMode::WhenRequired,
                        _ => {
                            return Err(format!(
                                "checksum `{v}` is not `when_supported` or `when_required`"
                            ));
                        }
                    }
                }
                "connect_timeout" => settings.connect_timeout = parse_seconds(&k, &v)?,
                "read_timeout" => settings.read_timeout = parse_seconds(&k, &v)?,
                "operation_timeout" => settings.operation_timeout = parse_seconds(&k, &v)?,
                "access_key_id" => settings.access_key_id = Some(v.into_owned()),
                "secret_access_key" => {
                    settings.secret_access_key = Some(SecretString::from(v.into_owned()));
                }
                other => return Err(format!("unknown S3 option `{other}`")),
            }
        }
        // S3-compatible servers on a custom endpoint nearly always want
        // path-style addressing; AWS itself wants virtual hosts.
        settings.path_style = path_style.unwrap_or(settings.endpoint.is_some());
        Ok(Self::S3(settings))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::S3(_) => "s3",
        }
    }
}

impl fmt::Display for BlobUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "file://{}", path.display()),
            Self::S3(s3) => fmt::Display::fmt(s3, f),
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn s3_urls_carry_endpoint_region_and_credentials() {
        let BlobUrl::S3(s3) = BlobUrl::parse(
            "s3://k:s3cret@photos/prod?endpoint=http://127.0.0.1:9000&region=eu-west-1&checksum=when_required",
        )
        .expect("valid") else {
            panic!("not s3");
        };
        assert_eq!(s3.bucket, "photos");
        assert_eq!(s3.prefix, "prod");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.region, "eu-west-1");
        assert!(s3.path_style);
        assert_eq!(s3.checksum, ChecksumMode::WhenRequired);
        assert_eq!(s3.connect_timeout, std::time::Duration::from_secs(3));
        let BlobUrl::S3(timed) =
            BlobUrl::parse("s3://photos?connect_timeout=0.5&read_timeout=2&operation_timeout=30")
                .expect("valid")
        else {
            panic!("not s3");
        };
        assert_eq!(timed.connect_timeout, std::time::Duration::from_millis(500));
        assert_eq!(timed.read_timeout, std::time::Duration::from_secs(2));
        assert_eq!(timed.operation_timeout, std::time::Duration::from_secs(30));
        let refused = BlobUrl::parse("s3://photos?read_timeout=0").expect_err("zero");
        assert!(refused.contains("read_timeout"), "{refused}");
        assert_eq!(s3.access_key_id.as_deref(), Some("k"));
        assert_eq!(
            s3.secret_access_key
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            Some("s3cret".to_owned())
        );
        assert!(!s3.to_string().contains("s3cret"));
    }

    #[test]
    fn kafka_urls_list_brokers() {
        let bus =
            BusUrl::parse("kafka://127.0.0.1:9092,10.0.0.2:9093", Path::new("/d")).expect("valid");
        assert_eq!(
            bus,
            BusUrl::Kafka(KafkaSettings {
                brokers: "127.0.0.1:9092,10.0.0.2:9093".into()
            })
        );
        assert!(BusUrl::parse("kafka://nohost", Path::new("/d")).is_err());
        assert!(BusUrl::parse("kafka://", Path::new("/d")).is_err());
        let err = BusUrl::parse("kafka://u:secret@h:9092", Path::new("/d")).expect_err("userinfo");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn redis_urls_take_a_key_prefix() {
        let CacheUrl::Redis(redis) =
            CacheUrl::parse("redis://h:6379/2?prefix=app1:").expect("valid")
        else {
            panic!("not redis");
        };
        assert_eq!(
            (redis.url.as_str(), redis.prefix.as_str()),
            ("redis://h:6379/2", "app1:")
        );
        let CacheUrl::Redis(redis) = CacheUrl::parse("redis://h").expect("valid") else {
            panic!("not redis");
        };
        assert_eq!(redis.prefix, "pinhole:");
    }

    #[test]
    fn database_urls_are_masked_when_shown() {
        let db = DatabaseUrl::parse("postgres://u:pw@h/db").expect("valid");
        assert_eq!(db.to_string(), "postgres://u:****@h/db");
        assert_eq!(format!("{db:?}"), "postgres://u:****@h/db");
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
    }
}
