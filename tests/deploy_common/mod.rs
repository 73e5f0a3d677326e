//! Shared by the `deploy_*` integration tests: paths into `deploy/`, the outside
//! programs they run (found on `PATH` or in the directory `.ci/run` installs them
//! into), bounded runs of those programs, YAML reading, and the PromQL queries of
//! the Grafana dashboards with their template variables substituted.
//!
//! A missing program skips the check with a `SKIPPED:` notice on a developer's
//! machine but fails the test when `CI=true`, so that an install that silently
//! broke cannot hide behind a skipped test (the same rule as the promtool check of
//! `tests/exporter/metrics.rs`). Nothing here talks to the network.
#![allow(dead_code)]

use serde::Deserialize;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest any one outside program may run (promtool, hadolint, the
/// validators). They finish in well under a second each here; the bound only
/// turns a hang into a failure.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a bounded wait looks at a child process.
const POLL: Duration = Duration::from_millis(10);

/// The directory `.ci/run` installs the PyPI and npm validators into, unless
/// `DORA_CI_TOOLS` names another.
const DEFAULT_CI_TOOLS: &str = ".cache/dora-collector-ci";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under `deploy/`.
pub fn deploy(relative: &str) -> PathBuf {
    root().join("deploy").join(relative)
}

pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Where `.ci/run` puts the validators: `$DORA_CI_TOOLS`, or
/// `~/.cache/dora-collector-ci`.
pub fn ci_tools_dir() -> Option<PathBuf> {
    match std::env::var_os("DORA_CI_TOOLS") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(DEFAULT_CI_TOOLS)),
    }
}

/// Handles a missing program: panics when `CI=true`, otherwise prints a notice
/// naming the check that was skipped and how to get the program.
pub fn missing(what: &str, skipped: &str, install: &str) {
    if in_ci() {
        panic!("{what} is required when CI=true ({install}); .ci/run installs it");
    }
    eprintln!("SKIPPED: {what} not found; {skipped} was not run ({install}, or run .ci/run)");
}

/// Finds the program `name`: in the CI tools' `bin/` (programs a package ships
/// behind a wrapper script), then their virtualenv, then on `PATH`. `None` after
/// [`missing`] when it is nowhere.
pub fn tool(name: &str, skipped: &str, install: &str) -> Option<PathBuf> {
    let installed = ci_tools_dir()
        .map(|dir| [dir.join("bin").join(name), dir.join("venv/bin").join(name)])
        .into_iter()
        .flatten();
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let found = installed.chain(on_path).find(|p| p.is_file());
    if found.is_none() {
        missing(name, skipped, install);
    }
    found
}

/// The installed `@kubernetes-models/prometheus-operator` package's
/// `node_modules` directory, and `node` to run it with.
pub fn prometheus_operator_schemas(skipped: &str) -> Option<(PathBuf, PathBuf)> {
    let node = tool("node", skipped, "Debian: apt-get install nodejs")?;
    let modules = ci_tools_dir()
        .map(|dir| dir.join("node/node_modules"))
        .filter(|dir| dir.join("@kubernetes-models/prometheus-operator").is_dir());
    match modules {
        Some(modules) => Some((node, modules)),
        None => {
            missing(
                "@kubernetes-models/prometheus-operator",
                skipped,
                "npm ci --prefix ~/.cache/dora-collector-ci/node with .ci/node-tools/",
            );
            None
        }
    }
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout and stderr together, for assertion messages.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `command` to completion with `stdin` as its input, killing it and failing
/// the test after [`TOOL_TIMEOUT`].
pub fn run(command: &mut Command, stdin: Option<&[u8]>) -> Ran {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    let input = stdin.map(<[u8]>::to_vec);
    let mut pipe_in = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let (Some(pipe), Some(input)) = (pipe_in.as_mut(), input) {
            // A program that exits without reading all of its input is judged by
            // its status and output, not by this write.
            let _ = pipe.write_all(&input);
        }
    });
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for the child") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{description} did not finish within {TOOL_TIMEOUT:?}");
            }
            None => std::thread::sleep(POLL),
        }
    };
    writer.join().expect("stdin writer");
    Ran {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON values (empty documents left out).
pub fn yaml_documents(path: &Path) -> Vec<Value> {
    yaml_documents_of(&read(path), &path.display().to_string())
}

/// Every document of YAML text (what `origin` printed or holds), as JSON values
/// (empty documents left out).
pub fn yaml_documents_of(text: &str, origin: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{origin} is not valid YAML: {e}"))
        })
        .filter(|value| !value.is_null())
        .collect()
}

/// A one-document YAML file.
pub fn yaml(path: &Path) -> Value {
    let mut documents = yaml_documents(path);
    assert_eq!(documents.len(), 1, "{} has one document", path.display());
    documents.remove(0)
}

/// The files in `dir` whose names end with `suffix`, sorted.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no *{suffix} in {}", dir.display());
    found
}

// --- dashboards ---

/// The dashboards' JSON files.
pub fn dashboard_files() -> Vec<PathBuf> {
    files(&deploy("grafana/dashboards"), ".json")
}

pub fn dashboard(path: &Path) -> Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Every panel of a dashboard, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The dashboard's template variables.
pub fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"]
        .as_array()
        .map(|list| list.iter().collect())
        .unwrap_or_default()
}

/// One PromQL query a dashboard sends.
#[derive(Debug, Clone)]
pub struct Query {
    /// `dashboard file: panel title / refId`, or `…: variable NAME`.
    pub origin: String,
    /// As written, with template variables.
    pub expr: String,
}

/// Every query of a dashboard: each panel target's `expr`, and for each query
/// variable `label_values(SELECTOR, LABEL)` the PromQL `count by (LABEL) (SELECTOR)`
/// (Grafana's `label_values` is not PromQL; this asks the same question).
pub fn queries(path: &Path, dashboard: &Value) -> Vec<Query> {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {} has a target without expr", panel["title"]));
            out.push(Query {
                origin: format!(
                    "{file}: {} / {}",
                    panel["title"].as_str().unwrap_or("?"),
                    target["refId"].as_str().unwrap_or("?")
                ),
                expr: expr.to_owned(),
            });
        }
    }
    for variable in variables(dashboard) {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().unwrap_or("?");
        let definition = variable["definition"].as_str().unwrap_or_default();
        let (selector, label) = label_values(definition)
            .unwrap_or_else(|| panic!("{file}: variable {name}: expected label_values(SELECTOR, LABEL), got {definition:?}"));
        out.push(Query {
            origin: format!("{file}: variable {name}"),
            expr: format!("count by ({label}) ({selector})"),
        });
    }
    out
}

/// Splits `label_values(SELECTOR, LABEL)`.
pub fn label_values(definition: &str) -> Option<(&str, &str)> {
    let inner = definition
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    let label = label.trim();
    let valid = !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((selector.trim(), label))
}

/// The values a dashboard's variables take in the end-to-end test: what Grafana
/// sends with "All" selected (`allValue` `.*`), the 30-day window, and typical
/// values of Grafana's own interval variables. Longest names first, so that
/// `$__rate_interval` is not read as `$__range` or similar.
pub const SUBSTITUTIONS: &[(&str, &str)] = &[
    ("$__rate_interval", "1m"),
    ("$environment", ".*"),
    ("$repository", ".*"),
    ("$__interval", "15s"),
    ("$instance", ".*"),
    ("$__range", "1h"),
    ("$window", "30d"),
    ("$source", ".*"),
    ("$team", ".*"),
    ("$job", ".*"),
];

/// `expr` with every template variable replaced by its value in
/// [`SUBSTITUTIONS`].
pub fn substitute(expr: &str) -> String {
    let mut sorted: Vec<&(&str, &str)> = SUBSTITUTIONS.iter().collect();
    sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    sorted
        .into_iter()
        .fold(expr.to_owned(), |expr, (name, value)| {
            expr.replace(name, value)
        })
}
