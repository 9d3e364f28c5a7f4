//! The catalog of stable error codes: every role's enum, and the kit's
//! `Common` one. Codes are lower-case kebab-case, unique within their enum,
//! and no two roles declare the same code unless `Common` does (a shared
//! noun such as `image-not-found`). A renamed code shows here.
//!
//! `cargo nextest run -p pinhole-tests --test errors --no-capture` prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use pinhole_http::{Common, ErrorCode};
use pinhole_images::ImagesError;
use pinhole_thumbnails::ThumbnailsError;
use pinhole_users::UsersError;

/// The enum that holds what nobody owns alone.
const COMMON: &str = "common";

fn codes<E: ErrorCode>(all: &[E]) -> Vec<&'static str> {
    all.iter().map(ErrorCode::code).collect()
}

/// (enum owner, enum name, codes), `Common` first.
fn catalog() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (COMMON, "Common", codes(Common::ALL)),
        ("users", "UsersError", codes(UsersError::ALL)),
        ("images", "ImagesError", codes(ImagesError::ALL)),
        ("thumbnails", "ThumbnailsError", codes(ThumbnailsError::ALL)),
    ]
}

fn is_kebab(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && !code.ends_with('-')
        && !code.contains("--")
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[test]
fn catalog_lists_every_role() {
    println!("error codes by role:");
    for (role, name, codes) in catalog() {
        println!("  {role} ({name}, {} codes)", codes.len());
        for code in codes {
            println!("    {code}");
        }
    }
}

#[test]
fn codes_are_kebab_case_and_unique_within_their_enum() -> anyhow::Result<()> {
    for (role, name, codes) in catalog() {
        ensure!(!codes.is_empty(), "{name} ({role}) declares no code");
        let mut seen = BTreeSet::new();
        for code in codes {
            ensure!(
                is_kebab(code),
                "{name} ({role}): `{code}` is not lower-case kebab-case"
            );
            ensure!(seen.insert(code), "{name} ({role}) declares `{code}` twice");
        }
    }
    Ok(())
}

#[test]
fn no_code_is_declared_by_two_roles_unless_common() -> anyhow::Result<()> {
    let catalog = catalog();
    let common: BTreeSet<&str> = catalog
        .iter()
        .filter(|(role, _, _)| *role == COMMON)
        .flat_map(|(_, _, codes)| codes.iter().copied())
        .collect();
    let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (role, _, codes) in catalog.iter().filter(|(role, _, _)| *role != COMMON) {
        for code in codes {
            owners.entry(code).or_default().push(role);
        }
    }
    let clashes: Vec<String> = owners
        .iter()
        .filter(|(code, roles)| roles.len() > 1 && !common.contains(*code))
        .map(|(code, roles)| format!("`{code}` in {}", roles.join(" and ")))
        .collect();
    ensure!(
        clashes.is_empty(),
        "codes declared by more than one role (move them to Common if they mean the same, \
         rename one if not): {}",
        clashes.join("; ")
    );
    Ok(())
}

// ---- the source: codes come only from the listed enums ----

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every `.rs` file under `services/*/src` and `libs/http/src`.
fn scanned_files() -> anyhow::Result<Vec<PathBuf>> {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("libs/http/src"), &mut files)?;
    for entry in std::fs::read_dir(root.join("services"))? {
        let src = entry?.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files)?;
        }
    }
    files.sort();
    ensure!(files.len() > 10, "found only {} source files", files.len());
    Ok(files)
}

/// The arguments of the call whose `(` is at `open`, split at top-level
/// commas and trimmed; string, char and comment contents are skipped.
fn call_args(source: &str, open: usize) -> Vec<&str> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut args = Vec::new();
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    args.push(source[start..i].trim());
                    break;
                }
            }
            b',' if depth == 1 => {
                args.push(source[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    args.retain(|a| !a.is_empty());
    args
}

/// `"some-code"` (a string literal that reads as a code).
fn is_code_literal(arg: &str) -> bool {
    arg.len() > 2 && arg.starts_with('"') && arg.ends_with('"') && is_kebab(&arg[1..arg.len() - 1])
}

#[test]
fn no_code_is_a_string_literal_at_a_call_site() -> anyhow::Result<()> {
    // (constructor, index of its code argument)
    let constructors = [("new(", 1), ("not_found(", 0), ("conflict(", 0)];
    let mut found = Vec::new();
    for path in scanned_files()? {
        let source = std::fs::read_to_string(&path)?;
        let shown = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        for receiver in ["ApiError::", "Self::"] {
            if receiver == "Self::" && !source.contains("impl ApiError") {
                continue;
            }
            for (name, code_at) in constructors {
                let needle = format!("{receiver}{name}");
                for (at, _) in source.match_indices(&needle) {
                    let open = at + needle.len() - 1;
                    let args = call_args(&source, open);
                    if args.get(code_at).is_some_and(|a| is_code_literal(a)) {
                        let line = source[..at].lines().count();
                        found.push(format!("{shown}:{line}: {}", args[code_at]));
                    }
                }
            }
        }
        // Building the struct by hand, or a code type of one's own.
        for needle in ["code: \"", "ErrorCode for"] {
            for (at, _) in source.match_indices(needle) {
                let line_start = source[..at].rfind('\n').map_or(0, |n| n + 1);
                let line = &source[line_start..];
                let line = line.lines().next().unwrap_or_default();
                if line.trim_start().starts_with("//") || line.contains("$crate::ErrorCode") {
                    continue;
                }
                let n = source[..at].lines().count();
                found.push(format!("{shown}:{n}: {}", line.trim()));
            }
        }
    }
    ensure!(
        found.is_empty(),
        "error codes must come from a role's error_codes! enum, not literals:\n{}",
        found.join("\n")
    );
    Ok(())
}

#[test]
fn every_error_codes_enum_is_in_the_catalog() -> anyhow::Result<()> {
    let listed: BTreeSet<&str> = catalog().iter().map(|(_, name, _)| *name).collect();
    let mut unlisted = Vec::new();
    for path in scanned_files()? {
        let source = std::fs::read_to_string(&path)?;
        for (at, _) in source.match_indices("error_codes! {") {
            let line_start = source[..at].rfind('\n').map_or(0, |n| n + 1);
            if source[line_start..at].trim_start().starts_with("//") {
                continue;
            }
            let Some(name) = source[at..]
                .lines()
                .map(str::trim_start)
                .filter(|l| !l.starts_with("//"))
                .find_map(|l| l.split_once("enum "))
                .and_then(|(_, r)| r.split(|c: char| !c.is_alphanumeric() && c != '_').next())
            else {
                continue;
            };
            if !listed.contains(name) {
                unlisted.push(format!("{} declares {name}", path.display()));
            }
        }
    }
    ensure!(
        unlisted.is_empty(),
        "error code enums missing from tests/errors.rs: {}",
        unlisted.join("; ")
    );
    Ok(())
}

#[test]
fn the_checks_catch_a_literal() {
    let source =
        r#"fn f() -> ApiError { ApiError::new(StatusCode::GONE, "image-gone", "it (was) here") }"#;
    let open = source.find("new(").map_or(0, |n| n + 3);
    let args = call_args(source, open);
    assert_eq!(args.len(), 3, "{args:?}");
    assert!(is_code_literal(args[1]));
    assert!(!is_code_literal(args[2]));
    assert!(!is_code_literal("Common::Internal"));
}
