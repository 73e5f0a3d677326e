//! `dora-collector backfill` end to end with the real tools (Debian's
//! `prometheus` package): the report fixture's store backfilled at a daily step,
//! under a pull-request lead-time start (so the lead-time stage families are
//! windowed families too), the file turned into blocks by `promtool tsdb
//! create-blocks-from openmetrics`, the blocks opened by a real Prometheus, and
//! at five past instants every windowed series Prometheus answers equals what
//! `/metrics` would have exported then (the exporter over the engine at that
//! instant), with none missing or extra; the organisation's 30-day numbers, the
//! stages' medians and sample counts among them, also equal `report --until` at
//! those instants.
//!
//! Skipped with a notice when prometheus or promtool is missing, failed when
//! `CI=true`. Every wait is bounded; Prometheus is stopped however the test ends.
//! It listens on 127.0.0.1 only.

use crate::deploy_common::tool;
use crate::prom::{self, SeriesKey};
use crate::prometheus_e2e::{free_port, wait_for, Http, Process};
use crate::report_fixture::{self, Fixture, TOKEN};
use dora_collector::config::Config;
use dora_collector::domain::Timestamp;
use dora_collector::dora::{self, EventsBuilder};
use dora_collector::exporter::{self, HealthSnapshot};
use dora_collector::store::{SqliteStore, Store};
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

        // The report at that instant, over its 30-day period, says the same.
        let report = run_ok(
            Command::new(BINARY)
                .args(["report", "--format", "json", "--window", "30d", "--config"])
                .arg(&config_path)
                .args(["--until", &Timestamp(at).to_rfc3339()])
                .env("GITHUB_TOKEN", TOKEN)
                .env_remove("RUST_LOG"),
            "dora-collector report",
        );
        let report: Value = serde_json::from_str(&report).unwrap();
        let summary = &report["summary"]["metrics"];
        let org = |name: &str| {
            answered
                .get(&SeriesKey::new(name, &[("window", "30d")]))
                .copied()
        };
        for (family, metric) in [
            (
                "dora_org_deployment_frequency_per_day",
                "deployment_frequency",
            ),
            ("dora_org_change_failure_rate", "change_failure_rate"),
            ("dora_org_deployment_rework_rate", "rework_rate"),
        ] {
            let reported = summary[metric]["value"].as_f64();
            match (org(family), reported) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "{family} at {at}: {a} vs {b}"),
                (a, b) => assert_eq!(a, b, "{family} at {at}"),
            }
        }
        // The organisation's lead-time stages: the report's median and sample
        // count of each, the backfilled summary's median and count.
        let stages = summary_stages(&report);
        assert_eq!(stages.len(), 4, "{report}");
        for (stage, median, samples) in stages {
            let labels = [("stage", stage.as_str()), ("window", "30d")];
            let count = answered
                .get(&SeriesKey::new(
                    "dora_org_lead_time_stage_seconds_count",
                    &labels,
                ))
                .copied();
            assert_eq!(count, Some(samples as f64), "{stage} count at {at}");
            let backfilled = answered
                .get(&SeriesKey::new(
                    "dora_org_lead_time_stage_seconds",
                    &[
                        ("quantile", "0.5"),
                        ("stage", stage.as_str()),
                        ("window", "30d"),
                    ],
                ))
                .copied();
            match (backfilled, median) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "{stage} at {at}: {a} vs {b}"),
                (a, b) => assert_eq!(a, b, "{stage} median at {at}"),
            }
        }
    }
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
