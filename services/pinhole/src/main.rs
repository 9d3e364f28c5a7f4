//! `pinhole`: the one binary of the Pinhole photo-sharing backend.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use pinhole_config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

const SETTINGS_HELP: &str = "\
Settings come from defaults, then the --config TOML file, then PINHOLE_* environment variables:
  PINHOLE_LISTEN         address to serve on            (default 127.0.0.1:8080)
  PINHOLE_DATA_DIR       where embedded backends keep their files (default ./pinhole-data)
  PINHOLE_DATABASE_URL   sqlite://PATH or postgres://USER@HOST/DB (default SQLite in the data dir)
  PINHOLE_CACHE_URL      memory or redis://HOST:PORT     (default memory)
  PINHOLE_BUS_URL        embedded or kafka://HOST:PORT   (default embedded)
  PINHOLE_BLOB_URL       a directory or s3://BUCKET?endpoint=URL&region=R (default DATA_DIR/blobs)
  PINHOLE_BLOB_LINKS     direct (the store's own links), proxy or redirect (the server's /blobs/ links, answered with the bytes or a redirect to S3) (default direct)
  PINHOLE_PUBLIC_URL     the URL clients reach this server at (default http:// + the bound address)
  PINHOLE_LOG_FORMAT     text or json                    (default text)
  PINHOLE_SIGNING_KEY    secret for signed links (default: made once, kept in the data dir)
  PINHOLE_BUS_PARTITIONS partitions per topic on the embedded log (default 4)
  PINHOLE_TRUSTED_PROXIES proxies whose X-Forwarded-For is believed, e.g. 10.0.0.0/8 (default none)
  PINHOLE_INTERNAL_TOKEN secret that /internal routes require in X-Pinhole-Internal-Token (default: open)
  PINHOLE_ROLE_URLS      where roles this process calls but does not serve are, users=URL,images=URL (default none)
  PINHOLE_MAX_UPLOAD_BYTES largest upload accepted, in bytes (default 104857600)
  PINHOLE_MAX_IMAGE_PIXELS most pixels an uploaded image may have (default 150000000)
  PINHOLE_BUS_NAMESPACE  prefix of every topic and consumer group, to share a Kafka cluster (default none)
  PINHOLE_CALLBACK_ALLOW_PRIVATE true lets task callbacks reach private/loopback addresses (default false)
  PINHOLE_TRANSFORM_KEYS HEXKEY:HEXSALT[,...] signing /t/ transform URLs; first signs, any verifies (default: from the signing key)
  PINHOLE_TRANSFORM_PRESETS extra named transforms, name=options;name=options (default none)
  PINHOLE_TRANSFORM_UNSIGNED_PRESETS presets served without a signature (default thumb,small,medium,large)
  PINHOLE_TRANSFORM_MAX_OUTPUT_PIXELS most pixels a transform may output (default 16777216)
  PINHOLE_TRANSFORM_MAX_SOURCE_PIXELS most pixels an original may have to be transformed (default 50000000)
  PINHOLE_PROCESSING_TIME_LIMIT seconds the thumbnails role may spend on one image (default 60)
  PINHOLE_EVENT_MAX_ATTEMPTS failures in a row after which a consumed event is parked as a dead letter, 1-100 (default 8, about 25 s of retries)
  PINHOLE_SIGNUP_LIMIT   sign-ups per client address per hour, 0 for no limit (default 10)
  PINHOLE_QUOTA_IMAGES   images one account may have, 0 for no limit (default 10000)
  PINHOLE_QUOTA_BYTES    bytes of originals one account may store, 0 for no limit (default 53687091200, 50 GiB)
  PINHOLE_QUOTA_TUS_UPLOADS unfinished resumable uploads one account may have open, 0 for no limit (default 20)
  PINHOLE_QUOTA_EDITS_PER_HOUR edits one account may ask for per hour, 0 for no limit (default 120)
  PINHOLE_BLOB_ORPHAN_GRACE seconds an unreferenced blob is left alone before the sweep removes it (default 3600)
  PINHOLE_BLOB_SWEEP_INTERVAL seconds between comparisons of the blob store with its references (default 3600)
  PINHOLE_SEARCH_DIR     where the search role keeps its index (default DATA_DIR/search)
  PINHOLE_SEARCH_GROUP   consumer group of this search instance, one per host (default search-HOSTNAME)
In the TOML file, use the same names in lower case without the prefix: listen = \"0.0.0.0:8080\".";

/// Pinhole: a social photo-sharing backend.
///
/// One binary runs every role (users, images, thumbnails, search, sns-sync,
/// gateway, warehouse) together on embedded backends, or any subset of them
/// on Postgres, Redis, Kafka and S3.
#[derive(Debug, Parser)]
#[command(name = "pinhole", version, after_help = SETTINGS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API and run the roles' workers.
    ///
    /// With no settings at all, every role runs in this one process on
    /// embedded backends under ./pinhole-data (SQLite, local disk, an
    /// embedded event log, an in-process cache). Pending database
    /// migrations are applied first.
    Serve {
        /// `all`, or a comma-separated list of roles: users, images,
        /// thumbnails, search, sns-sync, gateway, warehouse.
        #[arg(long, default_value = "all", value_parser = parse_roles)]
        roles: Roles,
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Apply pending database migrations, then exit: the platform's and
    /// those of the tables the given roles own.
    Migrate {
        /// `all`, or a comma-separated list of roles: users, images,
        /// thumbnails, search, sns-sync, gateway, warehouse.
        #[arg(long, default_value = "all", value_parser = parse_roles)]
        roles: Roles,
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The blob store against the references to it.
    Blobs {
        #[command(subcommand)]
        command: BlobsCommand,
    },
    /// Derivatives and on-demand transforms.
    Thumbnails {
        #[command(subcommand)]
        command: ThumbnailsCommand,
    },
    /// Consumed events: the dead letters of the consumer groups.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The search index.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SearchCommand {
    /// Rebuild the search index from the images and users roles (their
    /// internal export APIs, page by page) into a new index beside the
    /// current one, which keeps answering meanwhile; when complete it
    /// replaces the current one (a running search role switches to it by
    /// itself and applies the events since the rebuild began).
    Reindex {
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum BlobsCommand {
    /// Count the stored objects that are referenced, the references whose
    /// object is missing, and the objects nothing references (orphans);
    /// exits 1 when anything is missing or orphaned. Objects younger than
    /// the grace period are writes in flight and are not orphans yet. Each
    /// role checks the prefixes it owns: images `originals/`, `public/`,
    /// `uploads/` (against its reference counts and uploads); thumbnails
    /// `derivatives/` (against the images it knows and the stored
    /// originals) and `edits/` (staged edit results never settled).
    Check {
        /// Remove the orphans (under the same locks as a deletion, so a
        /// concurrent upload of the same bytes is safe).
        #[arg(long)]
        repair: bool,
        /// Seconds an unreferenced object must have existed to count as an
        /// orphan (default: PINHOLE_BLOB_ORPHAN_GRACE).
        #[arg(long)]
        grace: Option<u64>,
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Events a consumer group could not handle (its handler gave up, or
    /// failed PINHOLE_EVENT_MAX_ATTEMPTS times in a row): parked so that the
    /// events after them flow, kept with their error until retried.
    Dead {
        #[command(subcommand)]
        command: DeadCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DeadCommand {
    /// Print the parked events: id, group, topic/partition/offset, attempts,
    /// whether a retry is requested, when they last failed and why.
    List {
        /// Only this consumer group's (e.g. images, thumbnails).
        #[arg(long)]
        group: Option<String>,
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Mark parked events for retry: the running consumer of their group
    /// hands each to its handler again within a few seconds, removes the
    /// ones handled and keeps the others with their new error.
    Retry {
        /// Ids from `pinhole events dead list`.
        #[arg(required_unless_present = "all")]
        ids: Vec<i64>,
        /// Every parked event (of --group, when given).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Only this consumer group's.
        #[arg(long)]
        group: Option<String>,
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ThumbnailsCommand {
    /// Queue re-processing of stored images on the background topic (served
    /// by running thumbnails workers, never ahead of fresh uploads) and show
    /// their progress: images whose derivatives are missing or were made by
    /// an older pipeline, or every processed image with --all.
    Backfill {
        /// Re-make every processed image's derivatives.
        #[arg(long)]
        all: bool,
        /// At most this many images.
        #[arg(long)]
        limit: Option<u64>,
        /// Queue and exit without following progress.
        #[arg(long)]
        no_wait: bool,
        /// Give up following after this many seconds (the jobs stay queued).
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print a signed transform URL path: /t/SIGNATURE/OPTIONS/IMAGE_ID.EXT
    /// (prefixed with the public URL when one is set).
    SignUrl {
        /// Comma-separated options, e.g. rs:fill:300:200,g:face,q:80
        options: String,
        /// The image id.
        image_id: uuid::Uuid,
        /// Output extension: jpg, png, webp, gif or auto.
        #[arg(default_value = "jpg")]
        ext: String,
        /// A TOML file of settings (see below).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
struct Roles(Vec<&'static str>);

fn parse_roles(s: &str) -> Result<Roles, String> {
    pinhole::parse_roles(s).map(Roles)
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,aws=warn,rdkafka=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `set_global_default`, not `init`: a dependency (kiddo, through
    // reverse_geocoder) turns on tracing-subscriber's `log` bridge, and
    // `init` would then route every `log` record in (librdkafka's
    // connection chatter, tantivy's merges) around the filter's intent.
    let installed = match format {
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish()),
        LogFormat::Json => {
            tracing::subscriber::set_global_default(builder.json().flatten_event(true).finish())
        }
    };
    if let Err(e) = installed {
        eprintln!("warning: logging was already set up: {e}");
    }
}

fn load_settings(config: Option<&std::path::Path>) -> Result<Settings, ExitCode> {
    Settings::load(config).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { roles, config } => {
            let settings = match load_settings(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_tracing(settings.log_format);
            let server = match pinhole::start(settings, &roles.0).await {
                Ok(server) => server,
                Err(e @ pinhole::StartError::Settings(_)) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match server.run_until(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: serving failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Thumbnails { command } => thumbnails(command).await,
        Command::Search {
            command: SearchCommand::Reindex { config },
        } => {
            let settings = match load_settings(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match search_reindex(&settings).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Events {
            command: EventsCommand::Dead { command },
        } => dead_letters(command).await,
        Command::Blobs {
            command:
                BlobsCommand::Check {
                    repair,
                    grace,
                    config,
                },
        } => {
            let settings = match load_settings(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let grace = grace.map_or(settings.blob_orphan_grace, std::time::Duration::from_secs);
            match blobs_check(&settings, grace, repair).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { roles, config } => {
            let settings = match load_settings(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_tracing(settings.log_format);
            let db = match pinhole_db::connect(&settings.database).await {
                Ok(db) => db,
                Err(e) => {
                    eprintln!(
                        "error: database at {} is unreachable: {}",
                        settings.database,
                        e.to_string().lines().next().unwrap_or_default()
                    );
                    return ExitCode::FAILURE;
                }
            };
            match pinhole_db::migrate(&db, &roles.0).await {
                Ok(()) => {
                    println!("migrations applied to {}", settings.database);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: database migration failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn thumbnails(command: ThumbnailsCommand) -> ExitCode {
    match command {
        ThumbnailsCommand::SignUrl {
            options,
            image_id,
            ext,
            config,
        } => {
            let settings = match load_settings(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let key = match pinhole::signing_key(&settings).await {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let base = settings.public_url.clone().unwrap_or_else(|| {
                url::Url::parse("http://localhost/").unwrap_or_else(|_| unreachable!())
            });
            let links = pinhole_blob::UrlSigner::new(base, key);
            match pinhole_thumbnails::transform_signer(&settings, &links) {
                Ok(signer) => {
                    let path = signer.url_path(&options, image_id, &ext);
                    match &settings.public_url {
                        Some(u) => println!("{}{path}", u.as_str().trim_end_matches('/')),
                        None => println!("{path}"),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: PINHOLE_TRANSFORM_KEYS: {e}");
                    ExitCode::from(2)
                }
            }
        }
        ThumbnailsCommand::Backfill {
            all,
            limit,
            no_wait,
            timeout,
            config,
        } => {
            let settings = match load_settings(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_tracing(settings.log_format);
            match backfill(&settings, all, limit, no_wait, timeout).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn blobs_check(
    settings: &Settings,
    grace: std::time::Duration,
    repair: bool,
) -> anyhow::Result<ExitCode> {
    let links = pinhole_blob::UrlSigner::new(
        url::Url::parse("http://localhost/")?,
        pinhole::signing_key(settings).await?,
    );
    let backends = pinhole::connect_backends(settings, &links).await?;
    pinhole_db::migrate(
        &backends.db,
        &[pinhole_images::ROLE, pinhole_thumbnails::ROLE],
    )
    .await?;
    let db = &backends.db;
    let blobs = backends.blobs.as_ref();
    // Each role checks the prefixes it owns. What the images role removes
    // it tells the thumbnails role of (`content.released`, through the
    // outbox: a running server relays it).
    let outbox = pinhole_db::Outbox::new();
    // Unreferenced contents first (a deletion whose collection stopped
    // half-way), then the store against the references.
    let collected = if repair {
        pinhole_images::store::collect_all(db, blobs, &outbox).await?
    } else {
        0
    };
    let images = pinhole_images::store::check(db, blobs, &outbox, grace, repair).await?;
    let thumbnails = pinhole_thumbnails::store::check(&backends, grace, repair).await?;
    let mut r = pinhole_blob::CheckReport::default();
    r.add(&images);
    r.add(&thumbnails);
    let owned: Vec<&str> = pinhole_images::store::PREFIXES
        .iter()
        .chain(pinhole_thumbnails::store::PREFIXES)
        .copied()
        .collect();
    r.other += blobs
        .list("")
        .await?
        .iter()
        .filter(|m| !owned.iter().any(|p| m.key.starts_with(p)))
        .count() as u64;
    println!("objects:    {}", r.objects);
    println!("referenced: {}", r.referenced);
    println!("missing:    {}", r.missing);
    println!("orphaned:   {}", r.orphaned);
    println!(
        "in flight:  {} (younger than {}s; staged edits {}s more)",
        r.recent,
        grace.as_secs(),
        pinhole_thumbnails::store::STAGED_MARGIN.as_secs()
    );
    if repair {
        println!(
            "removed:    {} (and {collected} unreferenced contents collected)",
            r.removed
        );
    }
    if r.other > 0 {
        println!(
            "other:      {} (under prefixes no check knows; left alone)",
            r.other
        );
    }
    for (role, part) in [
        (pinhole_images::ROLE, &images),
        (pinhole_thumbnails::ROLE, &thumbnails),
    ] {
        let prefixes = match role {
            pinhole_images::ROLE => pinhole_images::store::PREFIXES,
            _ => pinhole_thumbnails::store::PREFIXES,
        };
        println!(
            "{:<11} {} objects under {}: {} referenced, {} missing, {} orphaned, {} in flight{}",
            format!("{role}:"),
            part.objects,
            prefixes.join(" "),
            part.referenced,
            part.missing,
            part.orphaned,
            part.recent,
            if repair {
                format!(", {} removed", part.removed)
            } else {
                String::new()
            }
        );
    }
    for key in &r.missing_examples {
        println!("missing  {key}");
    }
    for key in &r.orphan_examples {
        println!("orphaned {key}");
    }
    Ok(if r.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn dead_letters(command: DeadCommand) -> ExitCode {
    let config = match &command {
        DeadCommand::List { config, .. } | DeadCommand::Retry { config, .. } => config.clone(),
    };
    let settings = match load_settings(config.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    init_tracing(settings.log_format);
    let outcome = async {
        let db = pinhole_db::connect(&settings.database).await.map_err(|e| {
            anyhow::anyhow!(
                "database at {} is unreachable: {}",
                settings.database,
                e.to_string().lines().next().unwrap_or_default()
            )
        })?;
        // Dead letters are the platform's: no role's tables needed.
        pinhole_db::migrate(&db, &[]).await?;
        let store = pinhole_db::DeadLetterStore::new(db);
        match command {
            DeadCommand::List { group, .. } => dead_list(&store, group.as_deref()).await,
            DeadCommand::Retry { ids, group, .. } => {
                let ids = (!ids.is_empty()).then_some(ids);
                dead_retry(&store, ids.as_deref(), group.as_deref()).await
            }
        }
    };
    match outcome.await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dead_list(
    store: &pinhole_db::DeadLetterStore,
    group: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let rows = store.list(group).await?;
    if rows.is_empty() {
        match group {
            Some(g) => println!("no parked events in group {g}"),
            None => println!("no parked events"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let lines: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.consumer_group.clone(),
                format!("{}/{}/{}", r.topic, r.partition, r.offset),
                r.attempts.to_string(),
                if r.retry_requested { "requested" } else { "-" }.to_owned(),
                r.last_failed_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                r.error.split_whitespace().collect::<Vec<_>>().join(" "),
            ]
        })
        .collect();
    let header = [
        "ID",
        "GROUP",
        "TOPIC/PARTITION/OFFSET",
        "ATTEMPTS",
        "RETRY",
        "LAST FAILED",
        "ERROR",
    ];
    let mut widths = header.map(str::len);
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    let print = |cells: [&str; 7]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{out}");
    };
    print(header);
    for line in &lines {
        print(line.each_ref().map(String::as_str));
    }
    Ok(ExitCode::SUCCESS)
}

async fn dead_retry(
    store: &pinhole_db::DeadLetterStore,
    ids: Option<&[i64]>,
    group: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if let Some(ids) = ids {
        let parked: std::collections::HashSet<i64> =
            store.list(group).await?.iter().map(|r| r.id).collect();
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !parked.contains(id))
            .map(i64::to_string)
            .collect();
        if !unknown.is_empty() {
            let within = group.map(|g| format!(" in group {g}")).unwrap_or_default();
            eprintln!(
                "error: no parked event with id {}{within}; nothing marked",
                unknown.join(", ")
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let marked = store.request_retry(ids, group).await?;
    if marked == 0 {
        println!("nothing to retry");
    } else {
        println!(
            "{marked} parked events marked for retry; the running consumers of their groups take them within a few seconds"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn backfill(
    settings: &Settings,
    all: bool,
    limit: Option<u64>,
    no_wait: bool,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    use pinhole_thumbnails::backfill as bf;
    let links = pinhole_blob::UrlSigner::new(
        url::Url::parse("http://localhost/")?,
        pinhole::signing_key(settings).await?,
    );
    let backends = pinhole::connect_backends(settings, &links).await?;
    pinhole_db::migrate(&backends.db, &[pinhole_thumbnails::ROLE]).await?;
    let jobs = bf::select(&backends.db, bf::Selection { all, limit }).await?;
    if jobs.is_empty() {
        println!("nothing to backfill");
        return Ok(ExitCode::SUCCESS);
    }
    let since = chrono::Utc::now();
    bf::enqueue(&backends.bus, &jobs).await?;
    println!("queued {} images on the background topic", jobs.len());
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<uuid::Uuid> = jobs.iter().map(|j| j.image_id).collect();
    let bar = indicatif::ProgressBar::new(ids.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} images ({per_sec}, eta {eta}) {msg}",
        )?
        .progress_chars("=> "),
    );
    let (done, failed) = bf::follow(
        &backends.db,
        &ids,
        since,
        std::time::Duration::from_secs(timeout),
        |reported, failed| {
            bar.set_position(reported);
            if failed > 0 {
                bar.set_message(format!("{failed} failed"));
            }
        },
    )
    .await?;
    bar.finish();
    println!("{done} of {} re-processed ({failed} failed)", ids.len());
    Ok(if done < ids.len() as u64 {
        eprintln!("timed out: the rest stay queued for the workers");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Progress of a rebuild on the terminal.
struct Bar(indicatif::ProgressBar);

impl pinhole_search::reindex::Progress for Bar {
    fn phase(&self, name: &'static str) {
        self.0.set_position(0);
        self.0.set_message(name);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

async fn search_reindex(settings: &Settings) -> anyhow::Result<ExitCode> {
    let links = pinhole_blob::UrlSigner::new(
        url::Url::parse("http://localhost/")?,
        pinhole::signing_key(settings).await?,
    );
    let backends = pinhole::connect_backends(settings, &links).await?;
    // The roles asked in this process are those no URL places elsewhere.
    let hosted: Vec<&str> = [pinhole_users::ROLE, pinhole_images::ROLE]
        .into_iter()
        .filter(|r| settings.role_urls.get(r).is_none())
        .collect();
    pinhole_db::migrate(&backends.db, &hosted).await?;
    let tokens = pinhole_auth::Tokens::new(backends.db.clone(), Arc::clone(&backends.cache));
    let clients = pinhole::role_clients(settings, &hosted, &backends, &links, &tokens, None)?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{elapsed_precise} {spinner} {msg}: {pos} ({per_sec})",
    )?);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let rebuilt =
        pinhole_search::reindex::reindex(&settings.search_dir, &clients, &Bar(bar.clone())).await?;
    bar.finish_and_clear();
    println!(
        "search index {} built in {}: {} accounts, {} images; it now replaces the previous one",
        rebuilt.generation,
        settings.search_dir.display(),
        rebuilt.accounts,
        rebuilt.images
    );
    Ok(ExitCode::SUCCESS)
}

#[global_allocator]
static ALLOCATOR: pinhole::Allocator = pinhole::Allocator;

fn main() -> ExitCode {
    pinhole::return_freed_memory_at_once();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}
