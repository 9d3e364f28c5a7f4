//! The `pinhole` binary as a person runs it: help, bad settings, unreachable
//! backends, and `serve` on an empty directory.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::ensure;
use pinhole_testkit::wait_for;

/// `pinhole ARGS` in `dir` with only the `PINHOLE_*` variables in `env`.
fn pinhole(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinhole"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("PINHOLE_") {
            command.env_remove(name);
        }
    }
    command.env_remove("AWS_ACCESS_KEY_ID");
    command.env_remove("AWS_SECRET_ACCESS_KEY");
    command.envs(env.iter().copied());
    command
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
    Ok(pinhole(dir, args, env).output()?)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_explains_every_command_and_setting() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let top = run(dir.path(), &["--help"], &[])?;
    ensure!(top.status.success());
    let text = String::from_utf8(top.stdout)?;
    for word in [
        "serve",
        "migrate",
        "PINHOLE_DATABASE_URL",
        "PINHOLE_BLOB_URL",
        "PINHOLE_BLOB_LINKS",
        "PINHOLE_EVENT_MAX_ATTEMPTS",
        "events",
    ] {
        ensure!(text.contains(word), "--help mentions {word}:\n{text}");
    }
    let serve = String::from_utf8(run(dir.path(), &["serve", "--help"], &[])?.stdout)?;
    for word in ["--roles", "--config", "sns-sync", "embedded"] {
        ensure!(
            serve.contains(word),
            "serve --help mentions {word}:\n{serve}"
        );
    }
    Ok(())
}

#[test]
fn bad_settings_exit_2_naming_the_setting_and_its_form() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "PINHOLE_COLOUR",
            "blue",
            &["PINHOLE_COLOUR", "known settings"],
        ),
        (
            "PINHOLE_BUS_URL",
            "amqp://x",
            &["PINHOLE_BUS_URL", "kafka://"],
        ),
        (
            "PINHOLE_LISTEN",
            "everywhere",
            &["PINHOLE_LISTEN", "IP:PORT"],
        ),
        (
            "PINHOLE_CACHE_URL",
            "memcached://x",
            &["PINHOLE_CACHE_URL", "redis://"],
        ),
        (
            "PINHOLE_DATABASE_URL",
            "mysql://u:pw@h/db",
            &["PINHOLE_DATABASE_URL", "postgres://"],
        ),
        (
            "PINHOLE_BLOB_URL",
            "s3://b?colour=red",
            &["PINHOLE_BLOB_URL", "s3://"],
        ),
        (
            "PINHOLE_BLOB_LINKS",
            "cdn",
            &["PINHOLE_BLOB_LINKS", "`redirect`"],
        ),
        // The default blob store is a directory: no S3 to redirect to.
        (
            "PINHOLE_BLOB_LINKS",
            "redirect",
            &["PINHOLE_BLOB_LINKS", "S3"],
        ),
        (
            "PINHOLE_BUS_PARTITIONS",
            "lots",
            &["PINHOLE_BUS_PARTITIONS"],
        ),
        (
            "PINHOLE_EVENT_MAX_ATTEMPTS",
            "0",
            &["PINHOLE_EVENT_MAX_ATTEMPTS", "1 to 100"],
        ),
    ];
    for (name, value, expected) in cases {
        let output = run(dir.path(), &["serve"], &[(name, value)])?;
        let message = stderr(&output);
        ensure!(
            output.status.code() == Some(2),
            "{name}: {:?} {message}",
            output.status
        );
        for word in *expected {
            ensure!(message.contains(word), "{name}: `{message}` lacks {word}");
        }
        ensure!(
            !message.contains("pw@"),
            "credentials never printed: {message}"
        );
    }
    Ok(())
}

#[test]
fn test_and_infra_variables_are_not_settings() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = [
        ("PINHOLE_TEST_POSTGRES", "postgres://x"),
        ("PINHOLE_INFRA_STATE", "/tmp/x"),
        ("PINHOLE_DATA_DIR", "data"),
    ];
    let output = run(dir.path(), &["migrate"], &env)?;
    ensure!(output.status.success(), "{}", stderr(&output));
    Ok(())
}

#[test]
fn bad_config_files_and_roles_exit_2() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("typo.toml"), "lisen = \"127.0.0.1:1\"\n")?;
    let output = run(dir.path(), &["serve", "--config", "typo.toml"], &[])?;
    ensure!(
        output.status.code() == Some(2) && stderr(&output).contains("lisen"),
        "{}",
        stderr(&output)
    );

    let output = run(dir.path(), &["serve", "--config", "missing.toml"], &[])?;
    ensure!(output.status.code() == Some(2) && stderr(&output).contains("missing.toml"));

    let output = run(dir.path(), &["serve", "--roles", "gateway,photos"], &[])?;
    ensure!(output.status.code() == Some(2), "{:?}", output.status);
    ensure!(stderr(&output).contains("photos") && stderr(&output).contains("thumbnails"));
    Ok(())
}

#[test]
fn unreachable_backends_are_one_line_naming_backend_and_url() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        (
            "PINHOLE_DATABASE_URL",
            "postgres://app:hunter2@127.0.0.1:1/pinhole",
            "database",
        ),
        ("PINHOLE_CACHE_URL", "redis://:hunter2@127.0.0.1:1", "cache"),
        ("PINHOLE_BUS_URL", "kafka://127.0.0.1:1", "bus"),
        (
            "PINHOLE_BLOB_URL",
            "s3://photos?endpoint=http://127.0.0.1:1&access_key_id=k&secret_access_key=hunter2",
            "blobs",
        ),
    ];
    for (name, url, backend) in cases {
        let output = run(
            dir.path(),
            &["serve"],
            &[(name, url), ("PINHOLE_LISTEN", "127.0.0.1:0")],
        )?;
        let message = stderr(&output);
        ensure!(
            output.status.code() == Some(1),
            "{name}: {:?} {message}",
            output.status
        );
        ensure!(
            message.trim().lines().count() == 1,
            "{name}: one line, got: {message}"
        );
        ensure!(
            message.contains(backend) && message.contains("127.0.0.1:1"),
            "{message}"
        );
        ensure!(
            !message.contains("hunter2"),
            "{name}: credentials masked: {message}"
        );
        ensure!(!message.contains("panicked"), "{message}");
    }
    Ok(())
}

#[test]
fn migrate_applies_the_schema() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let output = run(dir.path(), &["migrate"], &[("PINHOLE_DATA_DIR", "data")])?;
    ensure!(output.status.success(), "{}", stderr(&output));
    ensure!(String::from_utf8(output.stdout)?.contains("migrations applied"));
    ensure!(dir.path().join("data/pinhole.db").exists());
    Ok(())
}

#[test]
fn search_reindex_builds_a_new_index_and_names_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = [("PINHOLE_DATA_DIR", "data")];
    let first = run(dir.path(), &["search", "reindex"], &env)?;
    ensure!(first.status.success(), "{}", stderr(&first));
    let out = String::from_utf8(first.stdout)?;
    ensure!(out.contains("0 accounts, 0 images"), "{out}");
    let current = std::fs::read_to_string(dir.path().join("data/search/CURRENT"))?;
    ensure!(current.trim() == "g1", "{current}");
    // Again: a newer generation replaces it.
    let second = run(dir.path(), &["search", "reindex"], &env)?;
    ensure!(second.status.success(), "{}", stderr(&second));
    let current = std::fs::read_to_string(dir.path().join("data/search/CURRENT"))?;
    ensure!(current.trim() == "g2", "{current}");
    Ok(())
}

#[tokio::test]
async fn serve_with_no_settings_answers_from_an_empty_directory() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The only thing set is the port, so that tests can run side by side.
    let port = pinhole_testkit::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut child = pinhole(dir.path(), &["serve"], &[("PINHOLE_LISTEN", &listen)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let url = format!("http://{listen}/healthz");
    let answered = wait_for(
        Duration::from_secs(30),
        "pinhole serve to answer",
        || async {
            let response = reqwest::get(&url).await.ok()?;
            (response.status() == 200).then_some(())
        },
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    answered?;
    ensure!(
        dir.path().join("pinhole-data/pinhole.db").exists(),
        "data lands in ./pinhole-data"
    );
    Ok(())
}

#[test]
fn sign_url_prints_a_path_the_configured_keys_verify() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys = "00112233445566778899aabbccddeeff:0a0b,ffeeddccbbaa99887766554433221100:0c";
    let id = "01a1fe57-cd7f-75e0-8a7b-43b45970b15b";
    let out = run(
        dir.path(),
        &[
            "thumbnails",
            "sign-url",
            "rs:fill:300:200,g:face",
            id,
            "webp",
        ],
        &[("PINHOLE_TRANSFORM_KEYS", keys)],
    )?;
    ensure!(out.status.success(), "{}", stderr(&out));
    let path = String::from_utf8(out.stdout)?.trim().to_owned();
    let rest = path.strip_prefix("/t/").unwrap_or_default();
    let (signature, signed) = rest.split_once('/').unwrap_or_default();
    ensure!(
        signed == format!("rs:fill:300:200,g:face/{id}.webp"),
        "{path}"
    );
    let signer = pinhole_transform::Signer::new(pinhole_transform::parse_key_pairs(keys)?)?;
    ensure!(signer.verify(signature, &format!("/{signed}")), "{path}");
    let other = pinhole_transform::Signer::new(pinhole_transform::parse_key_pairs(
        "ffeeddccbbaa99887766554433221100:0c",
    )?)?;
    ensure!(
        !other.verify(signature, &format!("/{signed}")),
        "signed by the first pair"
    );

    let bad = run(
        dir.path(),
        &["thumbnails", "sign-url", "w:10", id],
        &[("PINHOLE_TRANSFORM_KEYS", "not-hex:00")],
    )?;
    ensure!(bad.status.code() == Some(2), "{}", stderr(&bad));
    ensure!(
        stderr(&bad).contains("PINHOLE_TRANSFORM_KEYS"),
        "{}",
        stderr(&bad)
    );
    Ok(())
}

#[test]
fn backfill_on_an_empty_store_has_nothing_to_do() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = run(dir.path(), &["thumbnails", "backfill"], &[])?;
    ensure!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout)?;
    ensure!(text.contains("nothing to backfill"), "{text}");
    Ok(())
}

#[test]
fn blobs_check_counts_and_repairs_orphans() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clean = run(dir.path(), &["blobs", "check"], &[])?;
    let out = String::from_utf8_lossy(&clean.stdout).into_owned();
    ensure!(clean.status.success(), "{out}{}", stderr(&clean));
    ensure!(
        out.contains("missing:    0") && out.contains("orphaned:   0"),
        "{out}"
    );

    // An original nothing references, as a failed upload leaves it.
    let sha = "ab".repeat(32);
    let orphan = dir
        .path()
        .join(format!("pinhole-data/blobs/originals/ab/{sha}.jpg"));
    std::fs::create_dir_all(orphan.parent().unwrap_or(dir.path()))?;
    std::fs::write(&orphan, b"not referenced")?;
    // Young: a write in flight, not an orphan yet.
    let young = run(dir.path(), &["blobs", "check"], &[])?;
    let out = String::from_utf8_lossy(&young.stdout).into_owned();
    ensure!(young.status.success(), "{out}");
    ensure!(out.contains("in flight:  1"), "{out}");
    let found = run(dir.path(), &["blobs", "check", "--grace", "0"], &[])?;
    let out = String::from_utf8_lossy(&found.stdout).into_owned();
    ensure!(found.status.code() == Some(1), "{out}");
    ensure!(
        out.contains("orphaned:   1") && out.contains(&format!("orphaned originals/ab/{sha}.jpg")),
        "{out}"
    );
    ensure!(orphan.exists(), "a check without --repair removed it");
    let repaired = run(
        dir.path(),
        &["blobs", "check", "--grace", "0", "--repair"],
        &[],
    )?;
    let out = String::from_utf8_lossy(&repaired.stdout).into_owned();
    ensure!(repaired.status.success(), "{out}{}", stderr(&repaired));
    ensure!(out.contains("removed:    1"), "{out}");
    ensure!(!orphan.exists(), "the orphan is still there");
    Ok(())
}

/// A record parked by `group` on `pinhole.images`, as a consumer parks it.
async fn park(
    store: &pinhole_db::DeadLetterStore,
    group: &str,
    offset: i64,
    error: &str,
) -> anyhow::Result<()> {
    use pinhole_bus::DeadLetters as _;
    let record = pinhole_bus::Record {
        topic: "pinhole.images".into(),
        partition: 2,
        offset,
        key: Some(b"image-1".to_vec()),
        payload: b"not an event".to_vec(),
    };
    store.park(group, &record, error, 5).await?;
    Ok(())
}

#[tokio::test]
async fn events_dead_list_shows_parked_events_and_retry_marks_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = [("PINHOLE_DATA_DIR", "data")];
    let empty = run(dir.path(), &["events", "dead", "list"], &env)?;
    ensure!(empty.status.success(), "{}", stderr(&empty));
    ensure!(String::from_utf8(empty.stdout)?.contains("no parked events"));

    let db = pinhole_db::connect(&pinhole_config::DatabaseUrl::Sqlite(
        dir.path().join("data/pinhole.db"),
    ))
    .await?;
    let store = pinhole_db::DeadLetterStore::new(db);
    park(&store, "images", 41, "database is locked\nretry later").await?;
    park(&store, "thumbnails", 7, "not an event").await?;

    let out = run(dir.path(), &["events", "dead", "list"], &env)?;
    ensure!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() == 3, "a header and one line per event:\n{text}");
    for word in ["ID", "GROUP", "TOPIC/PARTITION/OFFSET", "ATTEMPTS", "ERROR"] {
        ensure!(lines[0].contains(word), "{text}");
    }
    ensure!(
        lines[1].contains("images")
            && lines[1].contains("pinhole.images/2/41")
            && lines[1].contains(" 5 ")
            && lines[1].contains("database is locked retry later"),
        "{text}"
    );
    ensure!(lines[2].contains("thumbnails") && lines[2].contains("pinhole.images/2/7"));

    let out = run(
        dir.path(),
        &["events", "dead", "list", "--group", "thumbnails"],
        &env,
    )?;
    let text = String::from_utf8(out.stdout)?;
    ensure!(text.lines().count() == 2 && !text.contains("/41"), "{text}");

    // Retry: ids that are not parked mark nothing; no ids is a usage error.
    let unknown = run(dir.path(), &["events", "dead", "retry", "999"], &env)?;
    ensure!(unknown.status.code() == Some(1), "{}", stderr(&unknown));
    ensure!(stderr(&unknown).contains("999"), "{}", stderr(&unknown));
    let bare = run(dir.path(), &["events", "dead", "retry"], &env)?;
    ensure!(bare.status.code() == Some(2), "{}", stderr(&bare));

    let out = run(
        dir.path(),
        &["events", "dead", "retry", "--all", "--group", "images"],
        &env,
    )?;
    ensure!(out.status.success(), "{}", stderr(&out));
    ensure!(String::from_utf8(out.stdout)?.contains("1 parked events marked"));
    let rows = store.list(None).await?;
    ensure!(
        rows.iter()
            .map(|r| (r.consumer_group.as_str(), r.retry_requested))
            .collect::<Vec<_>>()
            == [("images", true), ("thumbnails", false)],
        "{rows:?}"
    );
    let text = String::from_utf8(run(dir.path(), &["events", "dead", "list"], &env)?.stdout)?;
    ensure!(
        text.lines()
            .nth(1)
            .unwrap_or_default()
            .contains("requested"),
        "{text}"
    );

    // The running images consumer takes the marked event: its handler gives
    // up on it again, so it stays parked with one more attempt and is not
    // marked any more; /metrics shows the parked events.
    let port = pinhole_testkit::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut child = pinhole(
        dir.path(),
        &["serve"],
        &[("PINHOLE_DATA_DIR", "data"), ("PINHOLE_LISTEN", &listen)],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()?;
    let retried = wait_for(
        Duration::from_secs(60),
        "the retry and its metrics",
        || async {
            let rows = store.list(Some("images")).await.ok()?;
            let row = rows.first()?;
            let metrics = reqwest::get(format!("http://{listen}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (row.attempts == 6
                && !row.retry_requested
                && row.error.contains("not an event")
                && metrics.contains("pinhole_events_dead_letters{group=\"images\"} 1"))
            .then_some(())
        },
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    retried
}
