//! End to end with a real Prometheus (Debian's `prometheus`): `dora-collector demo`
//! on a free loopback port, Prometheus scraping it every second with the shipped
//! alerting rules loaded, then
//!
//! - `promtool check metrics` on a scrape of the collector reports nothing;
//! - every PromQL query of every dashboard panel and template variable, with the
//!   variables substituted as Grafana would ("All", the 30-day window, …), returns
//!   `success` and a non-empty result through `/api/v1/query`;
//! - one nested GitLab path (`group/subgroup/project`) of the mixed demo selected
//!   as the overview's `$repository` (written as Grafana writes it) gives every
//!   panel query that repository's series and no other's;
//! - every shipped alerting rule is loaded and evaluates without error
//!   (`/api/v1/rules`: health `ok`).
//!
//! Skipped with a notice when prometheus or promtool is missing, failed when
//! `CI=true`. Every wait is bounded; both child processes are killed when the
//! test ends, however it ends. Everything listens on 127.0.0.1 only.

use crate::deploy_common;

use deploy_common::{
    dashboard, dashboard_files, deploy, files, queries, run, substitute, tool, yaml,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

/// How long the demo may take to generate its organisation and complete its first
/// sync (`/readyz` 200); it takes a few seconds.
const COLLECTOR_READY: Duration = Duration::from_secs(120);
/// How long Prometheus may take to start (`/-/ready` 200).
const PROMETHEUS_READY: Duration = Duration::from_secs(60);
/// How long two scrapes and the first rule evaluations may take, at one a second.
const SCRAPES: Duration = Duration::from_secs(60);
/// The bound on one HTTP request to either process.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two looks at something being waited for.
const POLL: Duration = Duration::from_millis(200);
/// Scrape and rule evaluation interval of the generated Prometheus configuration.
const SCRAPE_INTERVAL: &str = "1s";
/// The scrapes to wait for before querying: rates and increases need two samples.
const MIN_SCRAPES: f64 = 2.0;

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A child process stopped when dropped (SIGTERM, then SIGKILL after
/// [`STOP_GRACE`]) and reaped; its output goes to a file that failures print.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub(crate) fn start(name: &'static str, command: &mut Command, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { name, child, log }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log if the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM first, so that the demo removes its temporary store and
        // Prometheus closes its database; std only sends SIGKILL.
        let asked = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + STOP_GRACE;
        while asked && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Blocking HTTP GETs with a bound, over the crate's own reqwest.
pub(crate) struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub(crate) fn new() -> Http {
        Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    /// `(status, body)`, or `None` when no response arrived.
    pub(crate) fn get(&self, url: &url::Url) -> Option<(u16, String)> {
        self.runtime.block_on(async {
            let response = self.client.get(url.clone()).send().await.ok()?;
            let status = response.status().as_u16();
            Some((status, response.text().await.ok()?))
        })
    }
}

/// Waits until `ready` holds, checking that `process` is still running; panics
/// after `bound` with its log.
pub(crate) fn wait_for(
    process: &mut Process,
    what: &str,
    bound: Duration,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + bound;
    loop {
        process.assert_running();
        if ready() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: not within {bound:?}; {} log:\n{}",
                process.name,
                process.log()
            );
        }
        std::thread::sleep(POLL);
    }
}

pub(crate) struct Prometheus {
    pub(crate) base: url::Url,
    pub(crate) http: Http,
}

impl Prometheus {
    /// Starts the real Prometheus `binary` in `dir` with the configuration
    /// `config_text` (written to `dir/prometheus.yml`), its data in `dir/data`,
    /// listening on a free loopback port.
    pub(crate) fn start(
        binary: &Path,
        config_text: String,
        dir: &Path,
        http: Http,
    ) -> (Process, Self) {
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_text).unwrap();
        let port = free_port();
        let process = Process::start(
            "prometheus",
            Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn"),
            dir,
        );
        let api = Prometheus {
            base: url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            http,
        };
        (process, api)
    }

    /// The `data` of a successful instant query, or the error.
    pub(crate) fn query(&self, expr: &str) -> Result<Value, String> {
        let url = url::Url::parse_with_params(
            self.base.join("api/v1/query").unwrap().as_str(),
            &[("query", expr)],
        )
        .unwrap();
        let (status, body) = self
            .http
            .get(&url)
            .ok_or_else(|| "no response".to_owned())?;
        let reply: Value =
            serde_json::from_str(&body).map_err(|e| format!("HTTP {status}, not JSON: {e}"))?;
        if reply["status"] != "success" {
            return Err(format!("HTTP {status}: {}", reply["error"]));
        }
        Ok(reply["data"].clone())
    }

    /// The first sample's value of a query, if any.
    pub(crate) fn value(&self, expr: &str) -> Option<f64> {
        let data = self.query(expr).ok()?;
        data["result"][0]["value"][1].as_str()?.parse().ok()
    }

    fn rules(&self) -> Value {
        let url = self.base.join("api/v1/rules").unwrap();
        let (_, body) = self.http.get(&url).expect("rules answer");
        serde_json::from_str(&body).expect("rules JSON")
    }
}

/// Whether the result of a query has at least one series or sample.
fn non_empty(data: &Value) -> bool {
    match data["resultType"].as_str() {
        Some("vector" | "matrix") => data["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar" | "string") => !data["result"].is_null(),
        _ => false,
    }
}

fn shipped_alerts() -> BTreeSet<String> {
    files(&deploy("prometheus/rules"), ".yml")
        .iter()
        .flat_map(|file| {
            let rules = yaml(file);
            rules["groups"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_array().unwrap().clone())
                .map(|r| r["alert"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `value` as Grafana's Prometheus data source writes a value of `variable`
/// into a query: escaped for a regular expression inside a PromQL string
/// (`\\.`) when the variable is multi-value or has "All", only its
/// backslashes and quotes otherwise.
fn grafana_value(variable: &Value, value: &str) -> String {
    let regex = variable["multi"] == true || variable["includeAll"] == true;
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' if regex => out.push_str("\\\\\\\\"),
            '\\' => out.push_str("\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '\'' | '+' | '?' | '.' | '(' | ')' | '|'
                if regex =>
            {
                out.push_str("\\\\");
                out.push(c);
            }
            '\'' => out.push_str("\\\\'"),
            c => out.push(c),
        }
    }
    out
}

/// The label sets of the series of an instant query's result, sorted.
fn series(data: &Value) -> Vec<String> {
    let mut out: Vec<String> = data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["metric"].to_string())
        .collect();
    out.sort();
    out
}

/// Selecting one nested GitLab path (`group/subgroup/project`) of the mixed
/// demo as the overview dashboard's `$repository` (one value, written as
/// Grafana writes it for the variable's settings) gives each panel query with
/// a `repository` label that repository's series and no other (the same series
/// as with an exact `repository="…"` match), and at least one panel shows it.
fn check_one_nested_repository(api: &Prometheus) {
    let path = dashboard_files()
        .into_iter()
        .find(|p| p.ends_with("dora-overview.json"))
        .expect("the overview dashboard");
    let board = dashboard(&path);
    let variable = deploy_common::variables(&board)
        .into_iter()
        .find(|v| v["name"] == "repository")
        .expect("a repository variable")
        .clone();
    let listed = api
        .query("count by (repository) (dora_incidents_open)")
        .expect("the repositories");
    let mut nested: Vec<String> = listed["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metric"]["repository"].as_str().map(str::to_owned))
        .filter(|name| name.matches('/').count() >= 2)
        .collect();
    nested.sort();
    let chosen = nested
        .first()
        .unwrap_or_else(|| panic!("the mixed demo has a nested GitLab path: {listed}"))
        .clone();
    let selected = grafana_value(&variable, &chosen);
    let mut shown = 0;
    let mut failures = Vec::new();
    // Every panel's query (the variables' own queries list every value): one
    // that shows repositories must show the selected one only, whether or not
    // it names `$repository`.
    for query in queries(&path, &board) {
        if query.origin.contains(": variable ") {
            continue;
        }
        let expr = substitute(&query.expr.replace("$repository", &selected));
        let exact = substitute(&query.expr.replace(
            "repository=~\"$repository\"",
            &format!("repository={chosen:?}"),
        ));
        let (got, want) = match (api.query(&expr), api.query(&exact)) {
            (Ok(got), Ok(want)) => (got, want),
            (got, want) => {
                failures.push(format!("{}: {got:?} / {want:?}", query.origin));
                continue;
            }
        };
        let others: Vec<&Value> = got["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["metric"]
                    .get("repository")
                    .is_some_and(|n| n != chosen.as_str())
            })
            .collect();
        if !others.is_empty() {
            failures.push(format!(
                "{}: other repositories: {others:?}: {expr}",
                query.origin
            ));
        }
        if series(&got) != series(&want) {
            failures.push(format!(
                "{}: {:?} instead of {:?}: {expr}",
                query.origin,
                series(&got),
                series(&want)
            ));
        }
        if got["result"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["metric"]["repository"] == chosen.as_str())
        {
            shown += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "with $repository = {chosen} ({selected}):\n{}",
        failures.join("\n")
    );
    assert!(shown > 0, "no panel shows {chosen}");
}

#[test]
fn dashboards_and_rules_work_against_prometheus_scraping_the_demo() {
    let missing = "the end-to-end test with Prometheus";
    let debian = "Debian: apt-get install prometheus";
    let (Some(prometheus_bin), Some(promtool)) = (
        tool("prometheus", missing, debian),
        tool("promtool", missing, debian),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();

    // The collector: `demo` on a free port, until it has completed its first sync.
    let collector_port = free_port();
    let collector_url = url::Url::parse(&format!("http://127.0.0.1:{collector_port}/")).unwrap();
    let mut collector = Process::start(
        "dora-collector demo",
        Command::new(BINARY)
            .args(["demo", "--listen"])
            .arg(format!("127.0.0.1:{collector_port}"))
            .env_remove("RUST_LOG")
            .env_remove("GITHUB_TOKEN")
            // Its temporary store goes into the test's directory, removed at the
            // end even if the demo could not remove it.
            .env("TMPDIR", dir.path()),
        dir.path(),
    );
    let readyz = collector_url.join("readyz").unwrap();
    wait_for(
        &mut collector,
        "the demo's /readyz answering 200",
        COLLECTOR_READY,
        || http.get(&readyz).is_some_and(|(status, _)| status == 200),
    );
    let printed = collector.log();
    assert!(
        printed.to_lowercase().contains("simulated"),
        "demo says plainly that the data is simulated:\n{printed}"
    );
    assert!(
        printed.contains(&format!("http://127.0.0.1:{collector_port}")),
        "demo prints the URL to open:\n{printed}"
    );

    // promtool check metrics on a scrape.
    let (status, metrics) = http
        .get(&collector_url.join("metrics").unwrap())
        .expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(metrics.contains("dora_org_deployments_total"), "{metrics}");
    let checked = run(
        Command::new(&promtool).args(["check", "metrics"]),
        Some(metrics.as_bytes()),
    );
    assert!(
        checked.status.success() && checked.output().trim().is_empty(),
        "promtool check metrics complained:\n{}",
        checked.output()
    );

    // Prometheus, scraping it every second with the shipped rules.
    let rule_files: Vec<String> = files(&deploy("prometheus/rules"), ".yml")
        .iter()
        .map(|p| format!("{:?}", p.to_str().unwrap()))
        .collect();
    let (mut prometheus, api) = Prometheus::start(
        &prometheus_bin,
        format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n\
             rule_files: [{}]\n\
             scrape_configs:\n  - job_name: dora-collector\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{collector_port}\"]\n",
            rule_files.join(", ")
        ),
        dir.path(),
        http,
    );
    let ready = api.base.join("-/ready").unwrap();
    wait_for(
        &mut prometheus,
        "Prometheus /-/ready",
        PROMETHEUS_READY,
        || {
            api.http
                .get(&ready)
                .is_some_and(|(status, _)| status == 200)
        },
    );
    let scraped = r#"count_over_time(up{job="dora-collector"}[1m])"#;
    wait_for(&mut prometheus, "two successful scrapes", SCRAPES, || {
        api.value(scraped).is_some_and(|n| n >= MIN_SCRAPES)
            && api.value(r#"min_over_time(up{job="dora-collector"}[1m])"#) == Some(1.0)
    });
    collector.assert_running();

    // The check below can fail: a query without data is reported.
    let nothing = api.query("dora_no_such_metric").expect("a valid query");
    assert!(!non_empty(&nothing), "{nothing}");

    // Every dashboard query, variables substituted.
    let mut failures = Vec::new();
    let mut count = 0;
    for path in dashboard_files() {
        for query in queries(&path, &dashboard(&path)) {
            let expr = substitute(&query.expr);
            count += 1;
            match api.query(&expr) {
                Ok(data) if non_empty(&data) => {}
                Ok(_) => failures.push(format!("{}: no data: {expr}", query.origin)),
                Err(error) => failures.push(format!("{}: {error}: {expr}", query.origin)),
            }
        }
    }
    assert!(count > 50, "only {count} queries found");
    assert!(
        failures.is_empty(),
        "{} of {count} dashboard queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // One nested GitLab path selected as `$repository`.
    check_one_nested_repository(&api);

    // Every rule loaded and evaluated without error.
    let expected = shipped_alerts();
    let mut report = String::new();
    wait_for(&mut prometheus, "every rule evaluated", SCRAPES, || {
        let rules = api.rules();
        let loaded: Vec<&Value> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        report = format!("{:#}", rules["data"]);
        let names: BTreeSet<String> = loaded
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect();
        names == expected && loaded.iter().all(|r| r["health"] != "unknown")
    });
    let rules = api.rules();
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            assert_eq!(rule["type"], "alerting", "{rule}");
            assert_eq!(
                rule["health"], "ok",
                "{} is not healthy: {}\n{report}",
                rule["name"], rule["lastError"]
            );
        }
    }
    collector.assert_running();
    prometheus.assert_running();
}
