//! The architecture as the crate graph and the module graph enforce it
//! (ARCHITECTURE.md § Crates): the engine's normal dependencies hold no I/O
//! crate, a build without the default features holds no simulator, no file under
//! the sources names the store, and no two modules or files import each other.
//! The crate graph is read with `cargo tree`, offline, from the lock file.

use std::process::Command;

/// `cargo tree` of `package` (normal dependencies only) with `extra` arguments,
/// one crate name per line.
fn normal_dependencies(package: &str, extra: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_engine_depends_on_no_io_crate() {
    let crates = normal_dependencies("dora-engine", &[]);
    assert!(crates.iter().any(|c| c == "dora-domain"), "{crates:?}");
    for io in ["tokio", "rusqlite", "octocrab", "axum", "hyper", "reqwest"] {
        assert!(
            !crates.iter().any(|c| c == io),
            "dora-engine depends on {io}: {crates:?}"
        );
    }
}

#[test]
fn a_build_without_default_features_has_no_simulator() {
    let production = normal_dependencies("dora-collector", &["--no-default-features"]);
    for simulator in ["dora-sim", "apollo-compiler", "rand_distr"] {
        assert!(
            !production.iter().any(|c| c == simulator),
            "a production build holds {simulator}"
        );
    }
    let demo = normal_dependencies("dora-collector", &[]);
    assert!(
        demo.iter().any(|c| c == "dora-sim"),
        "the default build has the demo"
    );
}

#[test]
fn the_simulator_shares_only_the_vocabulary_with_the_collector() {
    let crates = normal_dependencies("dora-sim", &[]);
    assert!(crates.iter().any(|c| c == "dora-domain"), "{crates:?}");
    for collector in ["dora-collector", "dora-engine"] {
        assert!(
            !crates.iter().any(|c| c == collector),
            "dora-sim depends on {collector}"
        );
    }
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `text` without `//` comments (doc comments included): prose may name anything.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_file_under_the_sources_names_the_store() {
    let sources = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sources");
    for file in rust_files(&sources) {
        let text = std::fs::read_to_string(&file).expect("readable source file");
        for (number, line) in text.lines().enumerate() {
            // An atomic's `store` is not the store.
            let lower = line.to_lowercase().replace(".store(", ".set(");
            let names_it = lower
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|word| word.starts_with("store") || word.ends_with("store"));
            assert!(
                !names_it,
                "{}:{}: a source names the store: {line}",
                file.display(),
                number + 1
            );
        }
    }
}

/// The modules of one directory (files and subdirectories) that `text`, a file
/// of that directory, uses through `super::NAME` or `use super::{NAME, ...}`.
fn sibling_uses(text: &str, siblings: &[String]) -> Vec<String> {
    let code = code_of(text);
    let mut used = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("super::") {
        let before = &rest[..at];
        rest = &rest[at + "super::".len()..];
        if before.ends_with("super::") {
            continue; // an ancestor further up, not a sibling
        }
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: `a::b, c, d::{e, f}`.
            let mut depth = 0;
            let mut items = Vec::new();
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        items.push(&group[start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            items
        } else {
            vec![rest]
        };
        for name in names {
            let name = name.trim_start();
            let end = name
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(name.len());
            let name = &name[..end];
            if siblings.iter().any(|s| s == name) && !used.iter().any(|u| u == name) {
                used.push(name.to_owned());
            }
        }
    }
    used
}

/// A cycle in `edges` (module → modules it uses), if any, as a path.
fn find_cycle(edges: &std::collections::BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &std::collections::BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_two_files_import_each_other() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Between the top-level modules, through `crate::NAME`.
    let top: Vec<String> = std::fs::read_dir(&root)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            (p.is_dir() || !["lib", "main"].contains(&stem.as_str())).then_some(stem)
        })
        .collect();
    let mut edges = std::collections::BTreeMap::<String, Vec<String>>::new();
    for file in rust_files(&root) {
        let relative = file.strip_prefix(&root).expect("under src");
        let Some(module) = relative.iter().next().and_then(|m| m.to_str()) else {
            continue;
        };
        let module = module.trim_end_matches(".rs").to_owned();
        if !top.contains(&module) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).expect("readable"));
        for other in &top {
            if *other != module && code.contains(&format!("crate::{other}::")) {
                let entry = edges.entry(module.clone()).or_default();
                if !entry.contains(other) {
                    entry.push(other.clone());
                }
            }
        }
    }
    assert_eq!(find_cycle(&edges), None, "top-level modules: {edges:?}");
    // Between the files of each directory, through `super::NAME`.
    let mut directories: Vec<std::path::PathBuf> = rust_files(&root)
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "mod.rs"))
        .filter_map(|f| f.parent().map(std::path::Path::to_path_buf))
        .collect();
    directories.dedup();
    for directory in directories {
        let siblings: Vec<String> = std::fs::read_dir(&directory)
            .expect("directory")
            .map(|e| e.expect("entry").path())
            .filter_map(|p| {
                let stem = p.file_stem()?.to_str()?.to_owned();
                (stem != "mod").then_some(stem)
            })
            .collect();
        let mut edges = std::collections::BTreeMap::<String, Vec<String>>::new();
        for sibling in &siblings {
            let file = directory.join(format!("{sibling}.rs"));
            let file = if file.exists() {
                file
            } else {
                directory.join(sibling).join("mod.rs")
            };
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let used = sibling_uses(&text, &siblings);
            edges.insert(
                sibling.clone(),
                used.into_iter().filter(|u| u != sibling).collect(),
            );
        }
        assert_eq!(
            find_cycle(&edges),
            None,
            "files of {}: {edges:?}",
            directory.display()
        );
    }
}
