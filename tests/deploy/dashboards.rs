//! The Grafana dashboards of `deploy/grafana/` and their provisioning, checked
//! without Grafana or Prometheus: the JSON is provisionable (unique uids and panel
//! ids, a datasource variable, a layout that fits), every query names exported
//! metric families with their own labels and only defined variables, the level
//! colours switch exactly where the collector's default thresholds do, and
//! `docs/dashboards.md` describes every panel. That every query returns data from a
//! real collector is `tests/deploy/prometheus_e2e.rs`.

use crate::deploy_common;

use deploy_common::{
    dashboard, dashboard_files, deploy, label_values, panels, queries, read, root, variables, yaml,
    SUBSTITUTIONS,
};
use dora_collector::dora::{Level, Thresholds};
use dora_collector::exporter::{all_families, Kind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Grafana's grid is 24 columns wide.
const GRID_COLUMNS: u64 = 24;

/// The colour of each DORA level, everywhere in the dashboards.
const LEVEL_COLOURS: [(Level, &str); 4] = [
    (Level::Low, "red"),
    (Level::Medium, "yellow"),
    (Level::High, "green"),
    (Level::Elite, "dark-green"),
];

/// The text the level value mappings show.
const LEVEL_NAMES: [(Level, &str); 4] = [
    (Level::Low, "Low"),
    (Level::Medium, "Medium"),
    (Level::High, "High"),
    (Level::Elite, "Elite"),
];

/// Grafana's own variables the queries may use.
const GRAFANA_VARIABLES: [&str; 3] = ["__rate_interval", "__range", "__interval"];

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

fn all_dashboards() -> Vec<(String, Value)> {
    dashboard_files()
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, dashboard(&path))
        })
        .collect()
}

fn all_queries() -> Vec<deploy_common::Query> {
    dashboard_files()
        .iter()
        .flat_map(|path| queries(path, &dashboard(path)))
        .collect()
}

// --- structure ---

#[test]
fn the_two_dashboards_are_there_with_unique_uids() {
    let dashboards = all_dashboards();
    let uids: BTreeSet<&str> = dashboards
        .iter()
        .map(|(_, d)| d["uid"].as_str().expect("uid"))
        .collect();
    assert_eq!(
        uids,
        BTreeSet::from(["dora-collector-health", "dora-overview"])
    );
    for (name, d) in &dashboards {
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}");
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
            "{name}"
        );
        assert!(
            d["id"].is_null(),
            "{name}: no instance id, so it provisions anywhere"
        );
        let tags: Vec<&str> = d["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            tags.contains(&"dora"),
            "{name}: tagged dora (the dashboards link by tag)"
        );
    }
}

#[test]
fn every_panel_and_query_uses_the_datasource_variable() {
    for (name, d) in all_dashboards() {
        let datasource = variables(&d)
            .into_iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!(datasource["type"], "datasource", "{name}");
        assert_eq!(datasource["query"], "prometheus", "{name}");
        let expected = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
        for panel in panels(&d).into_iter().filter(|p| p["type"] != "row") {
            let title = &panel["title"];
            assert_eq!(panel["datasource"], expected, "{name}: {title}");
            let targets = panel["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {title} has no targets"));
            assert!(!targets.is_empty(), "{name}: {title}");
            let mut refs = BTreeSet::new();
            for target in targets {
                assert_eq!(target["datasource"], expected, "{name}: {title}");
                assert!(
                    refs.insert(target["refId"].as_str().unwrap()),
                    "{name}: {title}: refIds unique"
                );
            }
        }
        for variable in variables(&d).into_iter().filter(|v| v["type"] == "query") {
            assert_eq!(
                variable["datasource"], expected,
                "{name}: {}",
                variable["name"]
            );
        }
    }
}

#[test]
fn panels_have_unique_ids_titles_descriptions_and_do_not_overlap() {
    for (name, d) in all_dashboards() {
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
        for panel in panels(&d) {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            assert!(!title.is_empty(), "{name}: a panel without title");
            assert!(
                ids.insert(panel["id"].as_u64().expect("id")),
                "{name}: {title}: id unique"
            );
            if panel["type"] != "row" {
                let description = panel["description"].as_str().unwrap_or_default();
                assert!(description.len() > 20, "{name}: {title} says what it shows");
            }
            let grid = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64().expect("gridPos"));
            assert!(
                w > 0 && h > 0 && x + w <= GRID_COLUMNS,
                "{name}: {title} fits the grid"
            );
            for (other, [ox, oy, ow, oh]) in &boxes {
                let apart = x + w <= *ox || *ox + ow <= x || y + h <= *oy || *oy + oh <= y;
                assert!(apart, "{name}: {title} overlaps {other}");
            }
            boxes.push((title, [x, y, w, h]));
        }
    }
}

#[test]
fn the_overview_has_the_variables_the_issue_asks_for() {
    let d = dashboard(&deploy("grafana/dashboards/dora-overview.json"));
    let names: Vec<&str> = variables(&d)
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["datasource", "window", "team", "repository", "environment"]
    );
    for variable in variables(&d).into_iter().filter(|v| v["type"] == "query") {
        let definition = variable["definition"].as_str().unwrap();
        assert_eq!(
            variable["query"]["query"], definition,
            "{}",
            variable["name"]
        );
        assert!(label_values(definition).is_some(), "{definition}");
        if variable["includeAll"] == true {
            // What "All" sends, and what the end-to-end test substitutes.
            assert_eq!(variable["allValue"], ".*", "{}", variable["name"]);
        }
    }
    let window = variables(&d)
        .into_iter()
        .find(|v| v["name"] == "window")
        .unwrap();
    assert_eq!(window["multi"], false, "one window at a time");
    assert_eq!(window["current"]["value"], "30d");
}

/// The overview opens on the history a backfill brings (`docs/backfill.md`),
/// not on the last week: 90 days (the longest default window) with quick ranges
/// back to two years, refreshed at the collector's default poll interval.
/// Every trend over a windowed family (the backfilled ones: one sample a day)
/// holds each sample for a day (`last_over_time(…[1d])`), so that its line is
/// continuous at any range; the counter's bars are a day wide (`interval`), so
/// that `$__rate_interval` never falls between two syncs on a long range.
#[test]
fn the_overview_opens_on_the_backfilled_history() {
    let d = dashboard(&deploy("grafana/dashboards/dora-overview.json"));
    assert_eq!(d["time"]["from"], "now-90d");
    assert_eq!(d["time"]["to"], "now");
    assert_eq!(d["refresh"], "5m", "the collector's default poll interval");
    let ranges: Vec<(&str, &str)> = d["timepicker"]["quick_ranges"]
        .as_array()
        .expect("quick ranges")
        .iter()
        .map(|r| {
            assert!(
                r["display"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Last ") || t.starts_with("This ")),
                "{r}"
            );
            (r["from"].as_str().unwrap(), r["to"].as_str().unwrap())
        })
        .collect();
    for from in ["now-7d", "now-30d", "now-90d", "now-1y", "now-2y"] {
        assert!(ranges.contains(&(from, "now")), "{from} in {ranges:?}");
    }
    let windowed: BTreeSet<&str> = all_families()
        .iter()
        .filter(|f| f.labels.contains(&"window"))
        .map(|f| f.name)
        .collect();
    let mut trends = 0;
    for panel in panels(&d).into_iter().filter(|p| p["type"] == "timeseries") {
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let over_windowed = selectors(expr)
                .iter()
                .any(|(name, _)| windowed.contains(name.as_str()));
            if over_windowed {
                trends += 1;
                assert!(
                    expr.starts_with("last_over_time(") && expr.ends_with("[1d])"),
                    "{title}: {expr}"
                );
            } else if expr.contains("$__rate_interval") {
                assert_eq!(panel["interval"], "1d", "{title}: {expr}");
            }
        }
    }
    assert_eq!(trends, 12, "two lines (organisation, teams) on six trends");
}

// --- queries ---

/// `(metric name, label names in its selector)` for every selector in `expr`.
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // Skip a string literal.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        let mut labels = Vec::new();
        if chars.get(i) == Some(&'{') {
            let end = i + chars[i..]
                .iter()
                .position(|c| *c == '}')
                .expect("closing brace");
            let inside: String = chars[i + 1..end].iter().collect();
            for matcher in inside.split(',').filter(|m| !m.trim().is_empty()) {
                let label: String = matcher
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                labels.push(label);
            }
            i = end + 1;
        }
        out.push((name, labels));
    }
    out
}

#[test]
fn every_query_names_exported_families_with_their_own_labels() {
    let families = all_families();
    let mut used = BTreeSet::new();
    for query in all_queries() {
        let metrics: Vec<(String, Vec<String>)> = selectors(&query.expr)
            .into_iter()
            .filter(|(name, _)| name.starts_with("dora_") || name == "up")
            .collect();
        assert!(
            !metrics.is_empty(),
            "{}: no metric in {}",
            query.origin,
            query.expr
        );
        for (name, labels) in metrics {
            let mut allowed: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
            if name != "up" {
                let (family, suffix) = families
                    .iter()
                    .find_map(|f| {
                        let suffix = name.strip_prefix(f.name)?;
                        ["", "_sum", "_count", "_bucket"]
                            .contains(&suffix)
                            .then_some((f, suffix))
                    })
                    .unwrap_or_else(|| {
                        panic!("{}: {name} is not an exported family", query.origin)
                    });
                allowed.extend(family.labels.iter().copied());
                match (family.kind, suffix) {
                    (Kind::Summary, "") => {
                        allowed.insert("quantile");
                    }
                    (Kind::Histogram, "_bucket") => {
                        allowed.insert("le");
                    }
                    (Kind::Histogram, "") | (Kind::Summary, "_bucket") => {
                        panic!("{}: {name} does not exist", query.origin)
                    }
                    _ => {}
                }
                used.insert(family.name);
            }
            for label in labels {
                assert!(
                    allowed.contains(label.as_str()),
                    "{}: {name} has no label {label:?} (it has {allowed:?})",
                    query.origin
                );
            }
        }
    }
    // The dashboards show every DORA value and every health family.
    for family in [
        "dora_org_deployment_frequency_per_day",
        "dora_org_lead_time_window_seconds",
        "dora_team_lead_time_stage_seconds",
        "dora_org_change_failure_rate",
        "dora_org_failed_deployment_recovery_time_seconds",
        "dora_org_deployment_rework_rate",
        "dora_org_time_to_restore_seconds",
        "dora_org_performance_level",
        "dora_team_performance_level",
        "dora_collector_last_successful_sync_timestamp_seconds",
        "dora_collector_history_complete_since_timestamp_seconds",
        "dora_collector_sync_errors_total",
        "dora_collector_rate_limit_remaining",
        "dora_collector_api_requests_total",
        "dora_collector_sync_duration_seconds",
        "dora_collector_pushes_total",
        "dora_collector_webhook_deliveries_total",
    ] {
        assert!(used.contains(family), "no panel shows {family}");
    }
}

#[test]
fn every_variable_a_query_uses_is_defined_and_substituted_end_to_end() {
    let substituted: BTreeSet<&str> = SUBSTITUTIONS.iter().map(|(name, _)| &name[1..]).collect();
    for (name, d) in all_dashboards() {
        let defined: BTreeSet<String> = variables(&d)
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .chain(GRAFANA_VARIABLES.iter().map(|v| v.to_string()))
            .collect();
        let path = deploy("grafana/dashboards").join(&name);
        for query in queries(&path, &d) {
            for (at, _) in query.expr.match_indices('$') {
                let rest = &query.expr[at + 1..];
                let rest = rest.strip_prefix('{').unwrap_or(rest);
                let variable: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    defined.contains(&variable),
                    "{}: ${variable} is not defined",
                    query.origin
                );
                assert!(
                    substituted.contains(variable.as_str()),
                    "{}: the end-to-end test has no value for ${variable}",
                    query.origin
                );
            }
        }
    }
}

// --- levels ---

/// The DORA metric whose levels a query's values have, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Levelled {
    DeploymentFrequency,
    LeadTime,
    ChangeFailureRate,
    RecoveryTime,
}

impl Levelled {
    /// Medians of lead time, recovery time and time to restore (time to restore
    /// service is the former name of recovery time and uses its levels);
    /// deployment frequency; change failure rate.
    fn of(expr: &str) -> Option<Levelled> {
        let median = expr.contains(r#"quantile="0.5""#);
        if expr.contains("performance_level") {
            None
        } else if expr.contains("deployment_frequency_per_day") {
            Some(Levelled::DeploymentFrequency)
        } else if expr.contains("change_failure_rate") {
            Some(Levelled::ChangeFailureRate)
        } else if median && expr.contains("lead_time_window_seconds") {
            Some(Levelled::LeadTime)
        } else if median
            && (expr.contains("failed_deployment_recovery_time_seconds")
                || expr.contains("time_to_restore_seconds"))
        {
            Some(Levelled::RecoveryTime)
        } else {
            None
        }
    }

    fn level(self, thresholds: &Thresholds, value: f64) -> Level {
        match self {
            Levelled::DeploymentFrequency => thresholds.deployment_frequency(value),
            Levelled::LeadTime => thresholds.lead_time(value),
            Levelled::ChangeFailureRate => thresholds.change_failure_rate(value),
            Levelled::RecoveryTime => thresholds.recovery_time(value),
        }
    }

    fn bounds(self, thresholds: &Thresholds) -> [f64; 3] {
        match self {
            Levelled::DeploymentFrequency => thresholds.deployment_frequency_per_day,
            Levelled::LeadTime => thresholds.lead_time_seconds,
            Levelled::ChangeFailureRate => thresholds.change_failure_rate,
            Levelled::RecoveryTime => thresholds.recovery_time_seconds,
        }
    }
}

/// The next representable number above a positive `x` (`f64::next_up`, newer
/// than this crate's minimum Rust).
fn next_up(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

fn next_down(x: f64) -> f64 {
    f64::from_bits(x.to_bits() - 1)
}

/// The colour Grafana gives `value` with these threshold steps: the colour of the
/// last step at or below it (the first step, value null, is the base).
fn grafana_colour(steps: &Value, value: f64) -> String {
    let steps = steps["steps"].as_array().expect("threshold steps");
    assert!(steps[0]["value"].is_null(), "the first step is the base");
    let mut colour = steps[0]["color"].as_str().unwrap();
    let mut previous = f64::NEG_INFINITY;
    for step in &steps[1..] {
        let at = step["value"].as_f64().expect("step value");
        assert!(at > previous, "steps ascend");
        previous = at;
        if value >= at {
            colour = step["color"].as_str().unwrap();
        }
    }
    colour.to_owned()
}

fn level_of_colour(colour: &str) -> Level {
    LEVEL_COLOURS
        .iter()
        .find(|(_, c)| *c == colour)
        .map(|(level, _)| *level)
        .unwrap_or_else(|| panic!("{colour} is not a level colour"))
}

/// Asserts that `steps` colour every interesting value of `metric` in the colour of
/// the level the collector gives it with the default thresholds.
fn assert_level_colours(what: &str, metric: Levelled, steps: &Value) {
    let thresholds = Thresholds::default();
    let mut values = vec![0.0, 1e-9, 1e9];
    for bound in metric.bounds(&thresholds) {
        values.extend([
            bound,
            next_up(bound),
            next_down(bound),
            bound / 2.0,
            bound * 2.0,
        ]);
    }
    for value in values {
        let expected = metric.level(&thresholds, value);
        let colour = grafana_colour(steps, value);
        assert_eq!(
            level_of_colour(&colour),
            expected,
            "{what}: {value} is {} ({colour}), the collector says {}",
            level_of_colour(&colour).name(),
            expected.name()
        );
    }
}

/// The expression behind each column of a table: organize's renames map the
/// column name back to `Value #<refId>`.
fn table_columns(panel: &Value) -> BTreeMap<String, String> {
    let exprs: BTreeMap<&str, &str> = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["refId"].as_str().unwrap(), t["expr"].as_str().unwrap()))
        .collect();
    let mut columns = BTreeMap::new();
    for transformation in panel["transformations"].as_array().into_iter().flatten() {
        for (from, to) in transformation["options"]["renameByName"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let expr = match from.strip_prefix("Value #") {
                Some(reference) => exprs.get(reference).copied(),
                None if from == "Value" && exprs.len() == 1 => exprs.values().next().copied(),
                None => None,
            };
            if let Some(expr) = expr {
                columns.insert(to.as_str().unwrap().to_owned(), expr.to_owned());
            }
        }
    }
    columns
}

#[test]
fn level_colours_switch_exactly_at_the_default_thresholds() {
    let mut checked = 0;
    for (name, d) in all_dashboards() {
        for panel in panels(&d) {
            let title = format!("{name}: {}", panel["title"].as_str().unwrap());
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            match panel["type"].as_str().unwrap() {
                "stat" | "timeseries" => {
                    let metrics: BTreeSet<String> = targets
                        .iter()
                        .map(|t| format!("{:?}", Levelled::of(t["expr"].as_str().unwrap())))
                        .collect();
                    assert_eq!(metrics.len(), 1, "{title}: one kind of value per panel");
                    let Some(metric) = Levelled::of(targets[0]["expr"].as_str().unwrap()) else {
                        continue;
                    };
                    let defaults = &panel["fieldConfig"]["defaults"];
                    assert_level_colours(&title, metric, &defaults["thresholds"]);
                    checked += 1;
                }
                "table" => {
                    let overrides = panel["fieldConfig"]["overrides"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    for (column, expr) in table_columns(panel) {
                        let Some(metric) = Levelled::of(&expr) else {
                            continue;
                        };
                        let steps = overrides
                            .iter()
                            .filter(|o| {
                                o["matcher"]["id"] == "byName"
                                    && o["matcher"]["options"] == column.as_str()
                            })
                            .flat_map(|o| o["properties"].as_array().cloned().unwrap_or_default())
                            .find(|p| p["id"] == "thresholds")
                            .unwrap_or_else(|| {
                                panic!("{title}: column {column} has no level colours")
                            });
                        assert_level_colours(
                            &format!("{title}: {column}"),
                            metric,
                            &steps["value"],
                        );
                        checked += 1;
                    }
                }
                _ => {}
            }
        }
    }
    // Organisation stats and trends, team columns: frequency, lead time, change
    // failure rate, recovery time and time to restore (5 each); repository columns:
    // the first four; the incidents table: time to restore.
    assert_eq!(checked, 5 + 5 + 5 + 4 + 1, "level colourings checked");
}

#[test]
fn the_colour_check_can_fail() {
    // Grafana colours a value by the last step at or below it: a change failure
    // rate step at exactly 5 % would colour 5 % "high" where the collector says
    // "elite" (its bound is inclusive).
    let wrong = serde_json::json!({"mode": "absolute", "steps": [
        {"color": "dark-green", "value": null},
        {"color": "green", "value": 0.05},
        {"color": "yellow", "value": 0.10},
        {"color": "red", "value": 0.15},
    ]});
    let result = std::panic::catch_unwind(|| {
        assert_level_colours("wrong", Levelled::ChangeFailureRate, &wrong);
    });
    assert!(result.is_err());
}

#[test]
fn level_mappings_name_the_four_levels_in_their_colours() {
    let mut checked = 0;
    for (name, d) in all_dashboards() {
        for panel in panels(&d) {
            let uses_levels = panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["expr"].as_str().unwrap().contains("performance_level"));
            if !uses_levels {
                continue;
            }
            let mappings = &panel["fieldConfig"]["defaults"]["mappings"][0]["options"];
            for ((level, text), (_, colour)) in LEVEL_NAMES.iter().zip(LEVEL_COLOURS) {
                let mapping = &mappings[level.value().to_string()];
                assert_eq!(mapping["text"], *text, "{name}: {}", panel["title"]);
                assert_eq!(mapping["color"], colour, "{name}: {}", panel["title"]);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "organisation and team levels");
}

// --- provisioning and docs ---

#[test]
fn the_datasource_is_provisioned_with_the_uid_and_address_compose_gives_it() {
    let file = yaml(&deploy("grafana/provisioning/datasources/prometheus.yml"));
    let datasources = file["datasources"].as_array().unwrap();
    assert_eq!(datasources.len(), 1);
    let prometheus = &datasources[0];
    assert_eq!(prometheus["type"], "prometheus");
    assert_eq!(prometheus["isDefault"], true);
    assert_eq!(prometheus["url"], "http://prometheus:9090");
    let scrape = yaml(&deploy("prometheus/prometheus.yml"));
    assert_eq!(
        prometheus["jsonData"]["timeInterval"], scrape["global"]["scrape_interval"],
        "$__rate_interval follows the scrape interval"
    );
}

#[test]
fn docs_dashboards_describes_every_panel() {
    let docs = read(&root().join("docs/dashboards.md"));
    for (name, d) in all_dashboards() {
        assert!(docs.contains(d["title"].as_str().unwrap()), "{name}: title");
        for panel in panels(&d).into_iter().filter(|p| p["type"] != "row") {
            let title = panel["title"].as_str().unwrap();
            assert!(
                docs.contains(&format!("**{title}**")),
                "docs/dashboards.md does not describe {name}: **{title}**"
            );
        }
    }
}
