//! The API document is exact: schemathesis, a program from outside the
//! project (pinned in `tests/schemathesis/requirements.txt`, installed into
//! the infra virtualenv by `infra/test.sh`), makes requests from the served
//! `/api/openapi.json` for every operation of every role, ones the document
//! allows and ones it refuses, and checks each answer against it
//! (`--checks all`: status codes, headers, content types, bodies, refused
//! and accepted inputs, authentication). A fixed seed and a few examples per
//! operation keep the run short and the same every time. The rules a schema
//! cannot state are listed, with the statuses they answer, in
//! `tests/schemathesis/schemathesis.toml`.

use std::path::Path;

use anyhow::{Context, ensure};
use pinhole_config::Settings;
use pinhole_tests::app::App;

/// Examples per operation and phase.
const EXAMPLES: &str = "8";
const SEED: &str = "20261201";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_document_is_exact() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = Settings::embedded(dir.path());
    let app = App::start_roles(settings, dir, pinhole::ROLES).await?;
    // Every operation is sent the first account's token, but deleting an
    // account and ending a session, which end the token they are sent
    // with: each is sent another account's.
    let token = app.user("fuzzer").await?;
    let deleted = app.user("deleted").await?;
    let logged_out = app.user("logged_out").await?;
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis");
    let mut run = std::process::Command::new(pinhole_testkit::infra_python());
    run.args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(here.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/openapi.json", app.server.url()))
        .args([
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
        ])
        .args(["--workers", "1", "--generation-database", "none"])
        .env("FUZZ_TOKEN", &token)
        .env("FUZZ_DELETED_TOKEN", &deleted)
        .env("FUZZ_LOGGED_OUT_TOKEN", &logged_out)
        .env("SCHEMATHESIS_HOOKS", here.join("hooks.py"))
        // It keeps state of its own in the working directory.
        .current_dir(app.dir.path());
    let out = tokio::task::spawn_blocking(move || run.output())
        .await?
        .context("running schemathesis (infra/test.sh installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // From the line that opens the list of failures, when there is one.
    let failures = text
        .find(" FAILURES ")
        .map_or(0, |at| text[..at].rfind('\n').map_or(0, |line| line + 1));
    ensure!(
        out.status.success(),
        "schemathesis found the document and the server at odds:\n{}{}",
        &text[failures..],
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
