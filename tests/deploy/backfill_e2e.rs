//! `dora-collector backfill` end to end with the real tools (Debian's
//! `prometheus` package): the report fixture's store backfilled at a daily step,
//! under a pull-request lead-time start (so the lead-time stage families are
//! windowed families too), the file turned into blocks by `promtool tsdb
//! create-blocks-from openmetrics`, the blocks opened by a real Prometheus, and
//! at five past instants every windowed series Prometheus answers equals what
//! `/metrics` would have exported then (the exporter over the engine at that
//! instant), with none missing or extra; every number `report --until` (JSON)
//! states at those instants for each of the configured windows equals
//! Prometheus' series: deployment frequency, lead time, change failure rate,
//! recovery time, rework rate and time to restore (values and sample counts),
//! the performance levels and the lead-time stages' medians and counts, for
//! the organisation, every team and every repository, and the weekly trend's
//! points within the backfilled range; and the overview dashboard's queries
//! over windowed families (its trend panels and the others), with its
//! variables substituted, answer the backfilled values half a day after each
//! instant.
//!
//! A second test (no tool needed): with a review horizon kept in the store, a
//! backfilled window starting before it has no lead-time stages at all, and
//! one starting at or after it the stages `/metrics` exported.
//!
//! Skipped with a notice when prometheus or promtool is missing, failed when
//! `CI=true`. Every wait is bounded; Prometheus is stopped however the test ends.
//! It listens on 127.0.0.1 only.

use crate::deploy_common::{self, deploy, tool};
use crate::prom::{self, SeriesKey};
use crate::prometheus_e2e::{free_port, wait_for, Http, Process};
use crate::report_fixture::{self, Fixture, TOKEN};
use dora_collector::config::Config;
use dora_collector::domain::Timestamp;
use dora_collector::dora::{self, EventsBuilder};
use dora_collector::exporter::{self, HealthSnapshot};
use dora_collector::store::{SqliteStore, Store, SyncBatch};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");
/// How long Prometheus may take to open the blocks and answer `/-/ready`.
const PROMETHEUS_READY: Duration = Duration::from_secs(60);
const DAY: i64 = 86_400;
/// The backfilled range: 2026-01-01T00:00:00Z, daily, to the fixture's end.
const FROM: &str = "2026-01-01";
const FROM_AT: i64 = 1_767_225_600;

fn run_ok(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

/// The fixture's configuration under `lead_time_start = "pr_first_commit"`:
/// its text.
fn config_with_stages(fixture: &Fixture) -> String {
    let text = report_fixture::config_text(&fixture.store_path()).replace(
        "poll_interval = \"5m\"\n",
        "poll_interval = \"5m\"\nlead_time_start = \"pr_first_commit\"\n",
    );
    assert!(text.contains("lead_time_start"), "{text}");
    text
}

/// What `/metrics` would have exported at `at` under `config`: its windowed
/// series.
fn exported_at(fixture: &Fixture, config: &Config, at: Timestamp) -> BTreeMap<SeriesKey, f64> {
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let mut engine = config.engine_config();
    for pushed in store.pushed_repositories().unwrap() {
        engine.teams.entry(pushed).or_default();
    }
    let names: Vec<_> = engine.teams.keys().cloned().collect();
    let events = EventsBuilder::collect(|sink| store.load_events(&names, sink)).unwrap();
    let snapshot = dora::compute(&events, &engine, at);
    let text = exporter::render(Some(&snapshot), &HealthSnapshot::default(), "test").unwrap();
    prom::parse(&text)
        .unwrap()
        .samples
        .into_iter()
        .filter(|(key, _)| key.label("window").is_some())
        .collect()
}

#[test]
fn backfilled_blocks_answer_in_prometheus_what_the_metrics_said_then() {
    let missing = "the backfill test with Prometheus";
    let debian = "Debian: apt-get install prometheus";
    let (Some(prometheus_bin), Some(promtool)) = (
        tool("prometheus", missing, debian),
        tool("promtool", missing, debian),
    ) else {
        return;
    };
    let fixture = Fixture::new();
    let dir = fixture.dir.path();
    let output = dir.join("history.om");
    // The fixture's configuration with the lead-time stages measured.
    let text = config_with_stages(&fixture);
    let config_path = dir.join("dora-stages.toml");
    std::fs::write(&config_path, &text).unwrap();
    let stages_config = Config::from_toml_str(&text, report_fixture::lookup).unwrap();

    let printed = run_ok(
        Command::new(BINARY)
            .args(["backfill", "--config"])
            .arg(&config_path)
            .args(["--from", FROM, "--until", report_fixture::UNTIL_DATE, "-o"])
            .arg(&output)
            .env("GITHUB_TOKEN", TOKEN)
            .env_remove("RUST_LOG"),
        "dora-collector backfill",
    );
    assert!(printed.contains("90 evaluations"), "{printed}");
    assert!(!printed.contains(TOKEN));
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.ends_with("# EOF\n"));

    // --split: one file per evaluation, holding together exactly the samples of
    // the single file.
    let split_dir = dir.join("split");
    std::fs::create_dir(&split_dir).unwrap();
    let printed = run_ok(
        Command::new(BINARY)
            .args(["backfill", "--split", "--config"])
            .arg(&config_path)
            .args(["--from", FROM, "--until", report_fixture::UNTIL_DATE, "-o"])
            .arg(split_dir.join("history.om"))
            .env("GITHUB_TOKEN", TOKEN)
            .env_remove("RUST_LOG"),
        "dora-collector backfill --split",
    );
    assert!(printed.contains("90 files"), "{printed}");
    let samples = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let mut files: Vec<_> = std::fs::read_dir(&split_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 90);
    assert!(
        files[0].ends_with("history.2026-01-01T00-00-00Z.om"),
        "{files:?}"
    );
    let mut joined = String::new();
    for file in &files {
        let part = std::fs::read_to_string(file).unwrap();
        assert!(part.ends_with("# EOF\n"), "{}", file.display());
        joined.push_str(&part);
    }
    assert_eq!(samples(&joined), samples(&text));

    let data = dir.join("data");
    run_ok(
        Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&output)
            .arg(&data),
        "promtool tsdb create-blocks-from openmetrics",
    );

    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let mut prometheus = Process::start(
        "prometheus",
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            // Blocks this old would be deleted at once under the default 15 days.
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        dir,
    );
    let http = Http::new();
    let base = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let ready = base.join("-/ready").unwrap();
    wait_for(
        &mut prometheus,
        "Prometheus ready",
        PROMETHEUS_READY,
        || http.get(&ready).is_some_and(|(status, _)| status == 200),
    );

    let query = |expr: &str, at: i64| -> Value {
        let url = url::Url::parse_with_params(
            base.join("api/v1/query").unwrap().as_str(),
            &[("query", expr), ("time", &at.to_string())],
        )
        .unwrap();
        let (status, body) = http.get(&url).expect("Prometheus answers");
        let reply: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["status"], "success", "HTTP {status}: {body}");
        reply["data"]["result"].clone()
    };
    let instants = [0, 30, 45, 59, 89].map(|day| FROM_AT + day * DAY);
    for at in instants {
        let expected = exported_at(&fixture, &stages_config, Timestamp(at));
        assert!(expected.len() > 50, "{} series at {at}", expected.len());
        // The stage families are backfilled: every scope's, every window's.
        for family in [
            "dora_lead_time_stage_seconds",
            "dora_team_lead_time_stage_seconds",
            "dora_org_lead_time_stage_seconds",
        ] {
            assert!(
                expected.keys().any(|key| key.name == family
                    && key.label("stage") == Some("review")
                    && key.label("window") == Some("30d")),
                "{family} at {at}"
            );
        }
        let mut answered = BTreeMap::new();
        for series in query(r#"{__name__=~"dora_.+", window!=""}"#, at)
            .as_array()
            .unwrap()
        {
            let metric = series["metric"].as_object().unwrap();
            let name = metric["__name__"].as_str().unwrap();
            let labels: Vec<(&str, &str)> = metric
                .iter()
                .filter(|(label, _)| *label != "__name__")
                .map(|(label, value)| (label.as_str(), value.as_str().unwrap()))
                .collect();
            let value = prom::parse_value(series["value"][1].as_str().unwrap()).unwrap();
            answered.insert(SeriesKey::new(name, &labels), value);
        }
        let differences: Vec<String> = expected
            .iter()
            .filter(|(key, value)| answered.get(*key) != Some(*value))
            .map(|(key, value)| {
                format!(
                    "{key}: /metrics {value}, Prometheus {:?}",
                    answered.get(key)
                )
            })
            .chain(
                answered
                    .keys()
                    .filter(|key| !expected.contains_key(*key))
                    .map(|key| format!("{key}: only in Prometheus")),
            )
            .collect();
        assert!(
            differences.is_empty(),
            "at {at}: {} differences:\n{}",
            differences.len(),
            differences.join("\n")
        );

        // The report at that instant says the same, over each configured
        // window: every scope's every number that has a backfilled series.
        let mut mismatches = Vec::new();
        let mut compared = 0;
        for window in ["7d", "30d", "90d"] {
            let report = report_at(&config_path, at, window);
            assert_eq!(report["period"]["window"], window);
            let scopes: Vec<&Value> = std::iter::once(&report["summary"])
                .chain(report["teams"].as_array().unwrap())
                .chain(report["repositories"].as_array().unwrap())
                .collect();
            assert!(scopes.len() >= 1 + 2 + 3, "{report}");
            for scope in scopes {
                compared += compare_scope(scope, window, &answered, &mut mismatches);
            }
            assert_eq!(
                summary_stages(&report).len(),
                4,
                "every window of the fixture has stages: {report}"
            );
            if window == "30d" {
                // The weekly trend (7-day windows ending at `at` − k weeks):
                // the points within the backfilled range.
                for point in report["trend"].as_array().unwrap() {
                    let end = Timestamp::parse_rfc3339(point["end"].as_str().unwrap())
                        .unwrap()
                        .0;
                    if end < FROM_AT {
                        continue;
                    }
                    let org = |name: &str, quantile: Option<&str>| {
                        let selector = match quantile {
                            Some(q) => format!(r#"{name}{{window="7d", quantile="{q}"}}"#),
                            None => format!(r#"{name}{{window="7d"}}"#),
                        };
                        query(&selector, end)
                            .as_array()
                            .unwrap()
                            .first()
                            .map(|series| {
                                prom::parse_value(series["value"][1].as_str().unwrap()).unwrap()
                            })
                    };
                    let frequency = org("dora_org_deployment_frequency_per_day", None);
                    let deployments = point["deployments"].as_u64().unwrap() as f64;
                    check(
                        &mut mismatches,
                        &format!("trend deployments ending {end}"),
                        frequency.map(|f| f * 7.0),
                        Some(deployments),
                    );
                    check(
                        &mut mismatches,
                        &format!("trend lead time ending {end}"),
                        org("dora_org_lead_time_window_seconds", Some("0.5")),
                        point["lead_time_median_seconds"].as_f64(),
                    );
                    check(
                        &mut mismatches,
                        &format!("trend lead time samples ending {end}"),
                        org("dora_org_lead_time_window_seconds_count", None),
                        point["lead_time_samples"].as_f64(),
                    );
                    compared += 3;
                }
            }
        }
        assert!(compared > 300, "{compared} numbers compared at {at}");
        assert!(
            mismatches.is_empty(),
            "at {at}, Prometheus vs report --until: {} differences:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );

        // The overview dashboard's queries over windowed families, as Grafana
        // sends them, answer the backfilled values: its trend panels
        // (`last_over_time(…[1d])`) half a day after the instant, between two
        // backfilled samples; its value panels and tables (instant values) at
        // the instant.
        let dashboards = overview_queries(&expected);
        let trends = dashboards
            .iter()
            .filter(|(_, expr, _)| expr.starts_with("last_over_time("))
            .count();
        assert_eq!(trends, 12, "{dashboards:?}");
        assert!(dashboards.len() > trends, "{dashboards:?}");
        for (origin, expr, wanted) in &dashboards {
            let when = if expr.starts_with("last_over_time(") {
                at + DAY / 2
            } else {
                at
            };
            let got = labelled_values(&query(expr, when));
            assert_eq!(&got, wanted, "{origin} at {when}: {expr}");
        }
    }
}

/// `report --format json --window WINDOW --until AT` under `config`.
fn report_at(config: &std::path::Path, at: i64, window: &str) -> Value {
    let report = run_ok(
        Command::new(BINARY)
            .args(["report", "--format", "json", "--window", window, "--config"])
            .arg(config)
            .args(["--until", &Timestamp(at).to_rfc3339()])
            .env("GITHUB_TOKEN", TOKEN)
            .env_remove("RUST_LOG"),
        "dora-collector report",
    );
    serde_json::from_str(&report).unwrap()
}

/// Notes in `mismatches` where the backfilled value and the reported one differ
/// (both absent agrees).
fn check(mismatches: &mut Vec<String>, what: &str, backfilled: Option<f64>, reported: Option<f64>) {
    let same = match (backfilled, reported) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (a, b) => a == b,
    };
    if !same {
        mismatches.push(format!(
            "{what}: Prometheus {backfilled:?}, report {reported:?}"
        ));
    }
}

/// Compares every number of one scope of a JSON report over `window` with the
/// backfilled series in `answered`; returns how many numbers it compared.
fn compare_scope(
    scope: &Value,
    window: &str,
    answered: &BTreeMap<SeriesKey, f64>,
    mismatches: &mut Vec<String>,
) -> usize {
    let name = scope["name"].as_str().unwrap();
    type Labels<'a> = Vec<(&'a str, &'a str)>;
    let (prefix, labels, restore_labels): (&str, Labels, Labels) =
        match scope["scope"].as_str().unwrap() {
            "organisation" => ("dora_org_", vec![], vec![]),
            "team" => ("dora_team_", vec![("team", name)], vec![("team", name)]),
            "repository" => {
                let team = scope["team"].as_str().unwrap();
                (
                    "dora_",
                    vec![
                        ("repository", name),
                        ("environment", scope["environment"].as_str().unwrap()),
                        ("team", team),
                    ],
                    vec![("repository", name), ("team", team)],
                )
            }
            other => panic!("scope {other}"),
        };
    let series = |family: &str, labels: &[(&str, &str)], extra: &[(&str, &str)]| {
        let mut all: Vec<(&str, &str)> = labels.to_vec();
        all.push(("window", window));
        all.extend_from_slice(extra);
        answered
            .get(&SeriesKey::new(&format!("{prefix}{family}"), &all))
            .copied()
    };
    let what = |metric: &str| format!("{} {name} {window} {metric}", scope["scope"]);
    let metrics = &scope["metrics"];
    let mut compared = 0;
    let mut compare = |metric: &str, backfilled: Option<f64>, reported: Option<f64>| {
        check(mismatches, &what(metric), backfilled, reported);
        compared += 1;
    };
    // Values, with the sample counts of the summaries.
    for (metric, family, summary) in [
        (
            "deployment_frequency",
            "deployment_frequency_per_day",
            false,
        ),
        ("lead_time", "lead_time_window_seconds", true),
        ("change_failure_rate", "change_failure_rate", false),
        (
            "recovery_time",
            "failed_deployment_recovery_time_seconds",
            true,
        ),
        ("time_to_restore", "time_to_restore_seconds", true),
        ("rework_rate", "deployment_rework_rate", false),
    ] {
        let labels = if metric == "time_to_restore" {
            &restore_labels
        } else {
            &labels
        };
        let reported = &metrics[metric];
        if summary {
            compare(
                metric,
                series(family, labels, &[("quantile", "0.5")]),
                reported["value"].as_f64(),
            );
            compare(
                &format!("{metric} samples"),
                series(&format!("{family}_count"), labels, &[]),
                reported["samples"].as_f64(),
            );
        } else {
            compare(
                metric,
                series(family, labels, &[]),
                reported["value"].as_f64(),
            );
        }
        // The performance level, where the metric has one.
        if [
            "deployment_frequency",
            "lead_time",
            "change_failure_rate",
            "recovery_time",
        ]
        .contains(&metric)
        {
            let level = reported["level"].as_str().map(|level| match level {
                "low" => 1.0,
                "medium" => 2.0,
                "high" => 3.0,
                "elite" => 4.0,
                other => panic!("level {other}"),
            });
            compare(
                &format!("{metric} level"),
                series("performance_level", labels, &[("metric", metric)]),
                level,
            );
        }
    }
    // The lead-time stages: each one's median and sample count.
    for stage in scope["lead_time_stages"].as_array().into_iter().flatten() {
        let label = stage["stage"].as_str().unwrap();
        compare(
            &format!("{label} stage"),
            series(
                "lead_time_stage_seconds",
                &labels,
                &[("quantile", "0.5"), ("stage", label)],
            ),
            stage["median_seconds"].as_f64(),
        );
        compare(
            &format!("{label} stage samples"),
            series(
                "lead_time_stage_seconds_count",
                &labels,
                &[("stage", label)],
            ),
            stage["samples"].as_f64(),
        );
    }
    compared
}

/// The overview dashboard's queries over windowed families, its variables
/// substituted (`deploy_common::SUBSTITUTIONS`: the 30-day window, every team),
/// each with what it answers from the series `backfilled` at one instant:
/// `(origin, PromQL, labels without __name__ → value)`. Understands the shapes
/// the dashboard uses: `SELECTOR`, `last_over_time(SELECTOR[RANGE])` and `max
/// by (LABELS) (SELECTOR)`; any other shape over a windowed family fails.
fn overview_queries(backfilled: &BTreeMap<SeriesKey, f64>) -> Vec<(String, String, Answer)> {
    let path = deploy("grafana/dashboards/dora-overview.json");
    let dashboard = deploy_common::dashboard(&path);
    let windowed: std::collections::BTreeSet<&str> =
        backfilled.keys().map(|key| key.name.as_str()).collect();
    let mut out = Vec::new();
    for query in deploy_common::queries(&path, &dashboard) {
        if query.origin.contains(": variable ") {
            continue;
        }
        let expr = deploy_common::substitute(&query.expr);
        let Some(selector_start) = expr.find("dora_") else {
            continue;
        };
        let name_end = expr[selector_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |end| selector_start + end);
        let name = &expr[selector_start..name_end];
        if !windowed.contains(name) {
            continue;
        }
        let (selector, by): (&str, Option<Vec<&str>>) = if let Some((inner, _range)) = expr
            .strip_prefix("last_over_time(")
            .and_then(|rest| rest.strip_suffix("])"))
            .and_then(|rest| rest.rsplit_once('['))
        {
            (inner, None)
        } else if let Some(rest) = expr.strip_prefix("max by (") {
            let (labels, rest) = rest.split_once(") (").expect("max by (L) (SELECTOR)");
            let inner = rest.strip_suffix(')').expect("max by (L) (SELECTOR)");
            (inner, Some(labels.split(", ").collect()))
        } else if expr.starts_with("dora_") {
            (expr.as_str(), None)
        } else {
            panic!("{}: an unexpected shape over {name}: {expr}", query.origin);
        };
        let matchers = parse_matchers(selector, name);
        // The panel follows the dashboard's window variable.
        assert!(
            matchers.contains(&("window".to_owned(), "30d".to_owned())),
            "{}: {expr}",
            query.origin
        );
        let mut wanted = Answer::new();
        for (key, value) in backfilled {
            if key.name != name
                || !matchers
                    .iter()
                    .all(|(label, value)| key.label(label) == Some(value))
            {
                continue;
            }
            let labels: Vec<(String, String)> = match &by {
                Some(by) => key
                    .labels
                    .iter()
                    .filter(|(label, _)| by.contains(&label.as_str()))
                    .cloned()
                    .collect(),
                None => key.labels.clone(),
            };
            let entry = wanted.entry(labels).or_insert(*value);
            *entry = entry.max(*value);
        }
        assert!(
            !wanted.is_empty(),
            "{}: nothing backfilled for {expr}",
            query.origin
        );
        out.push((query.origin, expr, wanted));
    }
    out
}

/// The equality matchers of `name{a="x", b=~".*"}` (a regex may only be `.*`,
/// what the dashboards' "All" sends).
fn parse_matchers(selector: &str, name: &str) -> Vec<(String, String)> {
    let Some(inner) = selector
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('{'))
        .and_then(|rest| rest.strip_suffix('}'))
    else {
        assert_eq!(selector, name, "a selector");
        return Vec::new();
    };
    inner
        .split(", ")
        .filter_map(|matcher| {
            if let Some((label, value)) = matcher.split_once("=~") {
                assert_eq!(value, "\".*\"", "{label} in {selector}");
                return None;
            }
            let (label, value) = matcher.split_once('=').expect("label=\"value\"");
            Some((label.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// What an instant query answers: each series' labels (without `__name__`)
/// and value.
type Answer = BTreeMap<Vec<(String, String)>, f64>;

/// An instant query's answer as labels (without `__name__`) → value.
fn labelled_values(result: &Value) -> Answer {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let mut labels: Vec<(String, String)> = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(label, _)| *label != "__name__")
                .map(|(label, value)| (label.clone(), value.as_str().unwrap().to_owned()))
                .collect();
            labels.sort();
            let value = prom::parse_value(series["value"][1].as_str().unwrap()).unwrap();
            (labels, value)
        })
        .collect()
}

/// The summary's `lead_time_stages` of a JSON report: stage, median, samples.
fn summary_stages(report: &Value) -> Vec<(String, Option<f64>, u64)> {
    report["summary"]["lead_time_stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_owned(),
                s["median_seconds"].as_f64(),
                s["samples"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The review horizon (`docs/computation.md` § Lead-time stages): with the
/// store knowing that `acme/api`'s first reviews are complete only from day 40
/// of the backfilled range, a backfilled window starting before it has no
/// lead-time stage sample at all where `acme/api` counts (the repository's,
/// its team's and the organisation's), though `/metrics` computed without the
/// horizon had them; a window starting at or after it has exactly the stages
/// `/metrics` exported; the scopes without `acme/api` (no horizon) keep theirs
/// at every instant; and every backfilled instant equals `/metrics` at that
/// instant.
#[test]
fn a_backfilled_window_starting_before_the_review_horizon_has_no_stages() {
    let fixture = Fixture::new();
    let dir = fixture.dir.path();
    let text = config_with_stages(&fixture);
    let config_path = dir.join("dora-stages.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::from_toml_str(&text, report_fixture::lookup).unwrap();
    let instants = [45, 67, 89].map(|day| FROM_AT + day * DAY);
    let without_horizon: Vec<_> = instants
        .iter()
        .map(|at| exported_at(&fixture, &config, Timestamp(*at)))
        .collect();
    let horizon = FROM_AT + 40 * DAY;
    {
        let mut store = SqliteStore::open(fixture.store_path()).unwrap();
        let mut batch = SyncBatch::new(report_fixture::repo("acme/api"));
        batch.reviews_since = Some(Timestamp(horizon));
        store.apply(&batch).unwrap();
    }
    let split = dir.join("split");
    std::fs::create_dir(&split).unwrap();
    let printed = run_ok(
        Command::new(BINARY)
            .args(["backfill", "--split", "--step", "22d", "--config"])
            .arg(&config_path)
            .args(["--from", &Timestamp(instants[0]).to_rfc3339()])
            .args(["--until", &Timestamp(instants[2]).to_rfc3339(), "-o"])
            .arg(split.join("history.om"))
            .env("GITHUB_TOKEN", TOKEN)
            .env_remove("RUST_LOG"),
        "dora-collector backfill",
    );
    assert!(printed.contains("3 files"), "{printed}");
    let is_stage = |key: &SeriesKey| key.name.contains("lead_time_stage_seconds");
    // Where acme/api counts: itself, its team, the organisation.
    let with_api = |key: &SeriesKey| match key.label("team") {
        _ if key.name.starts_with("dora_org_") => true,
        Some("payments") if key.name.starts_with("dora_team_") => true,
        _ => key.label("repository") == Some("acme/api"),
    };
    let (mut absent, mut present) = (0, 0);
    for (at, before) in instants.iter().zip(&without_horizon) {
        let path = dora_collector::backfill::split_path(&split.join("history.om"), Timestamp(*at));
        let text = std::fs::read_to_string(&path).unwrap();
        let backfilled: BTreeMap<SeriesKey, f64> = prom::parse(&text).unwrap().samples;
        // Every instant is what /metrics (over the same store) said then.
        assert_eq!(
            backfilled,
            exported_at(&fixture, &config, Timestamp(*at)),
            "at {at}"
        );
        for (window, days) in [("7d", 7), ("30d", 30), ("90d", 90)] {
            let stages = |series: &BTreeMap<SeriesKey, f64>,
                          api: bool|
             -> BTreeMap<SeriesKey, f64> {
                series
                    .iter()
                    .filter(|(key, _)| {
                        is_stage(key) && key.label("window") == Some(window) && with_api(key) == api
                    })
                    .map(|(key, value)| (key.clone(), *value))
                    .collect()
            };
            let had = stages(before, true);
            // The scopes without acme/api keep their stages.
            let others = stages(before, false);
            assert!(!others.is_empty(), "{window} at {at}");
            assert_eq!(stages(&backfilled, false), others, "{window} at {at}");
            // The repository's, its team's and the organisation's pickup.
            for family in [
                "dora_lead_time_stage_seconds_count",
                "dora_team_lead_time_stage_seconds_count",
                "dora_org_lead_time_stage_seconds_count",
            ] {
                assert!(
                    had.keys()
                        .any(|key| key.name == family && key.label("stage") == Some("pickup")),
                    "{family} {window} at {at} without the horizon"
                );
            }
            if at - days * DAY < horizon {
                assert_eq!(
                    stages(&backfilled, true),
                    BTreeMap::new(),
                    "{window} at {at} starts before the horizon"
                );
                absent += 1;
            } else {
                assert_eq!(stages(&backfilled, true), had, "{window} at {at}");
                present += 1;
            }
        }
    }
    assert_eq!((absent, present), (6, 3));
}
