//! The walls between roles and between modules, read from the source:
//! no role's entities or SQL name another role's table, and no crate's
//! modules depend on each other in a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};

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

/// The string literals of `source`, lower-cased (raw strings included).
fn literals(source: &str) -> Vec<String> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal ('"' among them) or a lifetime.
                if bytes.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else if bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') {
                    i += 4;
                } else {
                    i += 1;
                }
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'#') | Some(b'"'))
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_') =>
            {
                let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                let open = i + 1 + hashes;
                if bytes.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let end = source[open + 1..]
                    .find(&close)
                    .map_or(bytes.len(), |e| open + 1 + e);
                out.push(source[open + 1..end].to_lowercase());
                i = end + close.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                out.push(source[i + 1..j.min(bytes.len())].to_lowercase());
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Where `source` names `table`: an entity mapping it, or SQL reading or
/// writing it.
fn names_table(source: &str, table: &str) -> Option<String> {
    let compact: String = source.split_whitespace().collect::<Vec<_>>().join(" ");
    for attr in [
        format!("table_name = \"{table}\""),
        format!("Alias::new(\"{table}\")"),
    ] {
        if compact.contains(&attr) {
            return Some(attr);
        }
    }
    for literal in literals(source) {
        let words: Vec<&str> = literal
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if matches!(
                pair[0],
                "from" | "join" | "into" | "update" | "table" | "exists"
            ) && pair[1] == table
            {
                return Some(format!("\"{literal}\""));
            }
        }
    }
    None
}

/// The crates (source folders) of each role; libs used by one role only
/// count as that role's.
fn role_sources() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("users", vec!["services/users/src", "libs/auth/src"]),
        ("images", vec!["services/images/src"]),
        ("thumbnails", vec!["services/thumbnails/src"]),
    ])
}

fn owned_tables() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("users", pinhole_migrations::users::TABLES),
        ("images", pinhole_migrations::images::TABLES),
        ("thumbnails", pinhole_migrations::thumbnails::TABLES),
    ])
}

#[test]
fn no_role_names_another_roles_table() -> anyhow::Result<()> {
    let tables = owned_tables();
    let mut seen = BTreeSet::new();
    for (role, owned) in &tables {
        for table in *owned {
            ensure!(seen.insert(*table), "{table} is owned twice");
        }
        ensure!(!owned.is_empty(), "{role} owns no table");
    }
    let mut found = Vec::new();
    for (role, dirs) in role_sources() {
        let mut files = Vec::new();
        for dir in dirs {
            rust_files(&root().join(dir), &mut files)?;
        }
        ensure!(!files.is_empty(), "no source for {role}");
        for file in files {
            let source = std::fs::read_to_string(&file)?;
            for (other, owned) in &tables {
                if *other == role {
                    continue;
                }
                for table in *owned {
                    if let Some(how) = names_table(&source, table) {
                        found.push(format!(
                            "{role} names {other}'s table {table} in {}: {how}",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    ensure!(found.is_empty(), "{}", found.join("\n"));
    Ok(())
}

#[test]
fn the_scan_sees_entities_and_sql() {
    assert!(names_table("#[sea_orm(table_name = \"users\")]", "users").is_some());
    assert!(names_table("let q = \"SELECT id FROM users WHERE x\";", "users").is_some());
    assert!(names_table("r#\"UPDATE  users SET a = 1\"#", "users").is_some());
    assert!(names_table("\"INSERT INTO likes (a) VALUES (1)\"", "likes").is_some());
    assert!(names_table("\"SELECT * FROM images i JOIN users u ON\"", "users").is_some());
    // Words that only look alike are not tables.
    assert!(names_table("\"the users role\"", "users").is_none());
    assert!(names_table("\"FROM image_users\"", "users").is_none());
    assert!(names_table("// SELECT * FROM users\nlet a = 1;", "users").is_none());
}

/// The top-level modules of a crate, and which of them each one uses
/// (`crate::name`, or `super::name` from a top-level file), test modules
/// left out.
fn module_graph(src: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let module_of = |file: &Path| -> Option<String> {
        let rel = file.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
        let name = first.trim_end_matches(".rs").to_owned();
        (name != "lib" && name != "main").then_some(name)
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let top_level = file.parent() == Some(src);
        let source = std::fs::read_to_string(file)?;
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        // Comments (docs included) depend on nothing.
        let source: String = source
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let uses = graph.entry(module.clone()).or_default();
        let mut prefixes = vec!["crate::"];
        if top_level {
            prefixes.push("super::");
        }
        for prefix in prefixes {
            for (at, _) in source.match_indices(prefix) {
                let rest = &source[at + prefix.len()..];
                let mut names = vec![];
                if let Some(group) = rest.strip_prefix('{') {
                    // crate::{a, b::c}
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    names.extend(group.split(',').map(|p| p.trim().split("::").next()));
                } else {
                    names.push(
                        rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .next(),
                    );
                }
                for name in names.into_iter().flatten() {
                    if name != module && modules.contains(name) {
                        uses.insert(name.to_owned());
                    }
                }
            }
        }
    }
    Ok(graph)
}

/// One cycle of `graph`, if it has any.
fn a_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_do_not_depend_on_each_other_in_cycles() -> anyhow::Result<()> {
    let mut cycles = Vec::new();
    for group in ["services", "libs"] {
        for entry in std::fs::read_dir(root().join(group))? {
            let src = entry?.path().join("src");
            if !src.is_dir() {
                continue;
            }
            if let Some(cycle) = a_cycle(&module_graph(&src)?) {
                cycles.push(format!("{}: {}", src.display(), cycle.join(" -> ")));
            }
        }
    }
    ensure!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
    Ok(())
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    };
    assert_eq!(
        a_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(a_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
}
