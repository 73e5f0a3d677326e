//! The Prometheus files of `deploy/prometheus/`: `promtool check rules` on the
//! alerting rules, `promtool test rules` on their unit tests, `promtool check
//! config` on the scrape configuration; and, without promtool, that every alert
//! has its annotations, a runbook in `docs/alerts.md`, and unit tests where it
//! fires and where it does not.

use crate::deploy_common;

use deploy_common::{deploy, files, read, root, run, tool, yaml};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

/// The sections every runbook in `docs/alerts.md` has.
const RUNBOOK_SECTIONS: [&str; 3] = ["What it means", "How to investigate", "How to fix"];

/// The severities the rules use, mildest first.
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

fn rule_files() -> Vec<PathBuf> {
    files(&deploy("prometheus/rules"), ".yml")
}

fn test_files() -> Vec<PathBuf> {
    files(&deploy("prometheus/tests"), ".yml")
}

fn promtool(check: &str) -> Option<PathBuf> {
    tool("promtool", check, "Debian: apt-get install prometheus")
}

/// An alerting rule as written.
#[derive(Debug)]
struct Alert {
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn strings(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let text = v
                .as_str()
                .unwrap_or_else(|| panic!("{k}: expected a string, got {v}"));
            (k.clone(), text.to_owned())
        })
        .collect()
}

fn alerts() -> Vec<Alert> {
    let mut out = Vec::new();
    for file in rule_files() {
        let rules = yaml(&file);
        for group in rules["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                let name = rule["alert"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: only alerting rules expected", file.display()));
                out.push(Alert {
                    name: name.to_owned(),
                    labels: strings(&rule["labels"]),
                    annotations: strings(&rule["annotations"]),
                });
            }
        }
    }
    assert!(out.len() >= 7, "the rules were read");
    out
}

#[test]
fn promtool_check_rules_accepts_every_rule_file() {
    let Some(promtool) = promtool("`promtool check rules`") else {
        return;
    };
    for file in rule_files() {
        let ran = run(
            Command::new(&promtool).args(["check", "rules"]).arg(&file),
            None,
        );
        assert!(
            ran.status.success() && ran.stdout.contains("SUCCESS"),
            "promtool check rules {}:\n{}",
            file.display(),
            ran.output()
        );
    }
}

#[test]
fn promtool_test_rules_passes_every_unit_test() {
    let Some(promtool) = promtool("`promtool test rules`") else {
        return;
    };
    let ran = run(
        Command::new(&promtool)
            .args(["test", "rules"])
            .args(test_files()),
        None,
    );
    assert!(
        ran.status.success() && !ran.output().contains("FAILED"),
        "promtool test rules:\n{}",
        ran.output()
    );
    assert_eq!(
        ran.output().matches("SUCCESS").count(),
        test_files().len(),
        "every test file ran:\n{}",
        ran.output()
    );
}

#[test]
fn promtool_test_rules_reports_a_wrong_expectation() {
    // Guards against a unit-test run that cannot fail: an alert expected to fire
    // without any input must be reported.
    let Some(promtool) = promtool("the promtool self-check") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("wrong.test.yml");
    let rules = deploy("prometheus/rules/dora-collector.rules.yml");
    std::fs::write(
        &test,
        format!(
            "rule_files: [{rules:?}]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    \
             input_series: []\n    alert_rule_test:\n      - eval_time: 10m\n        \
             alertname: DoraIncidentOpenTooLong\n        exp_alerts:\n          \
             - exp_labels: {{severity: warning}}\n"
        ),
    )
    .unwrap();
    let ran = run(
        Command::new(&promtool).args(["test", "rules"]).arg(&test),
        None,
    );
    assert!(
        !ran.status.success() && ran.output().contains("FAILED"),
        "promtool accepted a wrong expectation:\n{}",
        ran.output()
    );
}

#[test]
fn promtool_check_config_accepts_the_scrape_config() {
    let Some(promtool) = promtool("`promtool check config`") else {
        return;
    };
    let ran = run(
        Command::new(&promtool)
            .args(["check", "config"])
            .arg(deploy("prometheus/prometheus.yml")),
        None,
    );
    assert!(
        ran.status.success(),
        "promtool check config:\n{}",
        ran.output()
    );
    assert!(
        ran.output()
            .contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "the scrape config loads every rule:\n{}",
        ran.output()
    );
}

#[test]
fn the_scrape_job_is_the_one_the_rules_select() {
    let config = yaml(&deploy("prometheus/prometheus.yml"));
    let jobs: Vec<&str> = config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|job| job["job_name"].as_str())
        .collect();
    assert_eq!(jobs, ["dora-collector"]);
    let rules = read(&deploy("prometheus/rules/dora-collector.rules.yml"));
    assert!(rules.contains(r#"up{job="dora-collector"}"#));
    assert_eq!(config["rule_files"], serde_json::json!(["rules/*.yml"]));
}

#[test]
fn every_alert_has_a_severity_a_summary_a_description_and_a_runbook() {
    let mut names = BTreeSet::new();
    for alert in alerts() {
        assert!(names.insert(alert.name.clone()), "{} twice", alert.name);
        assert!(
            alert.name.starts_with("Dora") && alert.name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{}: CamelCase with the Dora prefix",
            alert.name
        );
        let severity = alert.labels.get("severity").map(String::as_str);
        assert!(
            severity.is_some_and(|s| SEVERITIES.contains(&s)),
            "{}: severity {severity:?}",
            alert.name
        );
        let keys: BTreeSet<&str> = alert.annotations.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["description", "runbook_url", "summary"]),
            "{}",
            alert.name
        );
        for key in ["summary", "description"] {
            let text = &alert.annotations[key];
            assert!(
                text.len() > 20 && !text.contains('\n'),
                "{}: {key} is one line of text: {text:?}",
                alert.name
            );
        }
        assert_eq!(
            alert.annotations["runbook_url"],
            format!("docs/alerts.md#{}", alert.name.to_lowercase()),
            "{}",
            alert.name
        );
    }
}

#[test]
fn every_alert_has_a_runbook_in_docs_alerts() {
    let docs = read(&root().join("docs/alerts.md"));
    let headings: Vec<&str> = docs.lines().filter(|l| l.starts_with("## ")).collect();
    for alert in alerts() {
        let heading = format!("## {}", alert.name);
        let start = docs.find(&format!("\n{heading}\n")).unwrap_or_else(|| {
            panic!(
                "docs/alerts.md has no {heading:?} (anchor #{})",
                alert.name.to_lowercase()
            )
        });
        let section = &docs[start + heading.len() + 1..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        for part in RUNBOOK_SECTIONS {
            assert!(
                section.contains(&format!("**{part}**")),
                "the runbook of {} has no **{part}**",
                alert.name
            );
        }
        assert!(
            section.contains(&format!("`{}`", alert.labels["severity"])),
            "the runbook of {} names its severity",
            alert.name
        );
    }
    let alert_headings = headings.iter().filter(|h| h.starts_with("## Dora")).count();
    assert_eq!(
        alert_headings,
        alerts().len(),
        "one runbook per alert, no more"
    );
}

#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let mut firing: BTreeSet<String> = BTreeSet::new();
    let mut quiet: BTreeSet<String> = BTreeSet::new();
    let shipped: BTreeSet<PathBuf> = rule_files()
        .into_iter()
        .map(|p| p.canonicalize().unwrap())
        .collect();
    let mut loaded: BTreeSet<PathBuf> = BTreeSet::new();
    for file in test_files() {
        let tests = yaml(&file);
        for rule_file in tests["rule_files"].as_array().expect("rule_files") {
            let path = file.parent().unwrap().join(rule_file.as_str().unwrap());
            loaded.insert(
                path.canonicalize()
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", file.display(), path.display())),
            );
        }
        for test in tests["tests"].as_array().expect("tests") {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap().to_owned();
                match case["exp_alerts"].as_array().map(Vec::len) {
                    Some(0) | None => quiet.insert(name),
                    Some(_) => firing.insert(name),
                };
            }
        }
    }
    assert_eq!(
        loaded, shipped,
        "the unit tests load the shipped rule files"
    );
    for alert in alerts() {
        assert!(
            firing.contains(&alert.name),
            "no test where {} fires",
            alert.name
        );
        assert!(
            quiet.contains(&alert.name),
            "no test where {} stays quiet",
            alert.name
        );
    }
}
