//! Cross-role tests live beside this file; see Cargo.toml for the list.
//! What they share is here.

pub mod app;
pub mod bench;

use std::path::Path;

use pinhole_config::{BlobUrl, BusUrl, CacheUrl, DatabaseUrl, KafkaSettings, Settings};

/// Settings on every real backend, kept apart from other runs: a fresh
/// Postgres database, Redis, Kafka under a namespace of its own, and S3
/// under a prefix of its own in the `pinhole` bucket; the rest embedded
/// defaults in `dir`. `name` starts the namespace and prefix.
pub async fn real_settings(dir: &Path, name: &str) -> anyhow::Result<Settings> {
    let mut settings = Settings::embedded(dir);
    settings.database = DatabaseUrl::Postgres(pinhole_testkit::fresh_postgres().await?);
    settings.cache = CacheUrl::Redis(pinhole_testkit::redis_settings());
    settings.bus = BusUrl::Kafka(KafkaSettings {
        brokers: pinhole_testkit::kafka_brokers(),
    });
    settings.bus_namespace = pinhole_testkit::unique(name);
    let mut s3 = pinhole_testkit::s3_settings("pinhole");
    s3.prefix = format!("{}/", pinhole_testkit::unique(name));
    pinhole_blob::S3Store::new(&s3).ensure_bucket().await?;
    settings.blob = BlobUrl::S3(s3);
    Ok(settings)
}
