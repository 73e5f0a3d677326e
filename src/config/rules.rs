//! The rules between configuration values, beyond what each value's type checks:
//! list sizes, duplicates, the lookback against the windows, and the order of the
//! level thresholds.
//!
//! Each rule takes the values that did parse, with their index in the file, so the
//! loader can run it on a partly broken file and report its problems together with
//! the value errors. Problems carry key paths but no lines; the loader adds those.
//! [`check_config`] runs every rule on a complete [`Config`].
//!
//! Decisions:
//! - A lookback shorter than the longest window is an error, not a warning: the first
//!   sync would compute that window from partial history and export wrong numbers.
//! - Two windows of the same length (`7d`, `168h`) are an error: they would export the
//!   same numbers under two labels.
//! - Duplicate environments or labels (compared case-insensitively, as the engine
//!   compares them) are errors: they are always typos.
//! - Empty `incident_labels` and `rework_labels` are allowed (they switch the feature
//!   off); empty `production_environments`, `windows` or repositories are not.

use super::{Config, Duration, LabelName, Problem, Seconds};
use crate::domain::{Environment, RepoName};
use std::fmt::Display;

/// The most windows allowed: every window multiplies every windowed series, so more
/// than a handful is a cardinality mistake rather than a wish.
pub const MAX_WINDOWS: usize = 10;

pub(super) const WINDOWS: &str = "metrics.windows";
pub(super) const LOOKBACK: &str = "github.lookback";
pub(super) const REPOSITORIES: &str = "github.repositories";
pub(super) const ENVIRONMENTS: &str = "github.production_environments";
pub(super) const INCIDENT_LABELS: &str = "github.incident_labels";
pub(super) const REWORK_LABELS: &str = "github.rework_labels";
pub(super) const THRESHOLDS: &str = "metrics.thresholds";

fn problem(path: String, message: String) -> Problem {
    Problem::at_path(path, None, message)
}

/// Reports each item whose key equals an earlier item's key.
fn duplicates<T, K: PartialEq>(
    items: &[(usize, T)],
    key: impl Fn(&T) -> K,
    report: impl Fn(&(usize, T), &(usize, T)) -> Problem,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (position, item) in items.iter().enumerate() {
        if let Some(first) = items[..position]
            .iter()
            .find(|earlier| key(&earlier.1) == key(&item.1))
        {
            problems.push(report(item, first));
        }
    }
    problems
}

/// `metrics.windows`: 1 to [`MAX_WINDOWS`] windows of distinct lengths. `declared` is
/// the number of elements in the file, `items` those that parsed.
pub(super) fn windows(items: &[(usize, Duration)], declared: usize) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            WINDOWS.to_owned(),
            "expected at least one window".to_owned(),
        ));
    }
    if declared > MAX_WINDOWS {
        problems.push(problem(
            WINDOWS.to_owned(),
            format!("expected at most {MAX_WINDOWS} windows, got {declared}"),
        ));
    }
    problems.extend(duplicates(
        items,
        |w| w.as_secs(),
        |(i, w), (j, first)| {
            problem(
                format!("{WINDOWS}[{i}]"),
                format!(
                    "\"{w}\" is as long as {WINDOWS}[{j}] (\"{first}\"); \
                     each window needs its own length"
                ),
            )
        },
    ));
    problems
}

/// `github.lookback` must cover the longest window.
pub(super) fn lookback(lookback: Duration, windows: &[(usize, Duration)]) -> Vec<Problem> {
    let longest = windows.iter().max_by_key(|(_, w)| w.as_secs());
    match longest {
        Some((i, window)) if lookback.as_secs() < window.as_secs() => vec![problem(
            LOOKBACK.to_owned(),
            format!(
                "\"{lookback}\" is shorter than the longest window {WINDOWS}[{i}] (\"{window}\"); \
                 the first sync would compute that window from partial history"
            ),
        )],
        _ => Vec::new(),
    }
}

/// `[[github.repositories]]`: at least one, each name once.
pub(super) fn repositories(names: &[(usize, &RepoName)], declared: usize) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            REPOSITORIES.to_owned(),
            "expected at least one [[github.repositories]] entry".to_owned(),
        ));
    }
    problems.extend(duplicates(
        names,
        |name| (*name).clone(),
        |(i, name), (j, _)| {
            problem(
                format!("{REPOSITORIES}[{i}].name"),
                format!("\"{name}\" is already configured in {REPOSITORIES}[{j}]"),
            )
        },
    ));
    problems
}

fn repeated_name(
    path: &str,
    i: usize,
    j: usize,
    name: &dyn Display,
    first: &dyn Display,
) -> Problem {
    problem(
        format!("{path}[{i}]"),
        format!(
            "\"{name}\" repeats {path}[{j}] (\"{first}\"); names are compared case-insensitively"
        ),
    )
}

/// `github.production_environments`: at least one, no duplicates.
pub(super) fn production_environments(
    items: &[(usize, &Environment)],
    declared: usize,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            ENVIRONMENTS.to_owned(),
            "expected at least one environment (nothing would count as a deployment)".to_owned(),
        ));
    }
    problems.extend(duplicates(
        items,
        |env| env.as_str().to_lowercase(),
        |(i, name), (j, first)| repeated_name(ENVIRONMENTS, *i, *j, name, first),
    ));
    problems
}

/// `github.incident_labels` and `github.rework_labels`: no duplicates.
pub(super) fn labels(path: &str, items: &[(usize, &LabelName)]) -> Vec<Problem> {
    duplicates(
        items,
        |label| label.as_str().to_lowercase(),
        |(i, name), (j, first)| repeated_name(path, *i, *j, name, first),
    )
}

/// The direction in which `[elite, high, medium]` must move.
#[derive(Clone, Copy)]
pub(super) enum Order {
    /// Higher is better (deployment frequency).
    Decreasing,
    /// Lower is better (times, rates).
    Increasing,
}

/// The values one threshold key accepts.
#[derive(Clone, Copy)]
pub(super) enum Range {
    /// Finite and above zero (frequencies, lengths of time).
    Positive,
    /// From 0 to 1 inclusive (change failure rate).
    Rate,
}

impl Range {
    fn contains(self, value: f64) -> bool {
        match self {
            Range::Positive => value.is_finite() && value > 0.0,
            Range::Rate => (0.0..=1.0).contains(&value),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Range::Positive => "a positive number",
            Range::Rate => "a rate from 0 to 1",
        }
    }
}

/// One `metrics.thresholds` key.
#[derive(Clone, Copy)]
pub(super) struct ThresholdRule {
    pub(super) key: &'static str,
    order: Order,
    range: Range,
}

/// The four threshold keys, in the order of [`super::ThresholdsConfig`]'s fields.
pub(super) const THRESHOLD_RULES: [ThresholdRule; 4] = [
    ThresholdRule {
        key: "deployment_frequency_per_day",
        order: Order::Decreasing,
        range: Range::Positive,
    },
    ThresholdRule {
        key: "lead_time_seconds",
        order: Order::Increasing,
        range: Range::Positive,
    },
    ThresholdRule {
        key: "change_failure_rate",
        order: Order::Increasing,
        range: Range::Rate,
    },
    ThresholdRule {
        key: "recovery_time_seconds",
        order: Order::Increasing,
        range: Range::Positive,
    },
];

/// One `metrics.thresholds` key: each value in range, then strictly ordered.
pub(super) fn threshold(rule: ThresholdRule, values: [f64; 3]) -> Vec<Problem> {
    let path = format!("{THRESHOLDS}.{}", rule.key);
    let mut problems: Vec<Problem> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !rule.range.contains(**v))
        .map(|(i, v)| {
            problem(
                format!("{path}[{i}]"),
                format!("expected {}, got {v}", rule.range.expected()),
            )
        })
        .collect();
    let (ordered, direction) = match rule.order {
        Order::Decreasing => (values[0] > values[1] && values[1] > values[2], "decreasing"),
        Order::Increasing => (values[0] < values[1] && values[1] < values[2], "increasing"),
    };
    if problems.is_empty() && !ordered {
        problems.push(problem(
            path,
            format!(
                "expected [elite, high, medium] in strictly {direction} order, got [{}, {}, {}]",
                values[0], values[1], values[2]
            ),
        ));
    }
    problems
}

pub(super) fn seconds(values: [Seconds; 3]) -> [f64; 3] {
    values.map(Seconds::get)
}

fn indexed<T>(items: &[T]) -> Vec<(usize, &T)> {
    items.iter().enumerate().collect()
}

/// Every rule, on a complete configuration.
pub(super) fn check_config(config: &Config) -> Vec<Problem> {
    let metrics = &config.metrics;
    let github = &config.github;
    let windows_indexed: Vec<(usize, Duration)> =
        metrics.windows.iter().copied().enumerate().collect();
    let thresholds = &metrics.thresholds;
    let threshold_values = [
        thresholds.deployment_frequency_per_day,
        seconds(thresholds.lead_time_seconds),
        thresholds.change_failure_rate,
        seconds(thresholds.recovery_time_seconds),
    ];
    let names: Vec<(usize, &RepoName)> = github
        .repositories
        .iter()
        .map(|repo| &repo.name)
        .enumerate()
        .collect();

    let mut problems = windows(&windows_indexed, metrics.windows.len());
    for (rule, values) in THRESHOLD_RULES.into_iter().zip(threshold_values) {
        problems.extend(threshold(rule, values));
    }
    problems.extend(lookback(github.lookback, &windows_indexed));
    problems.extend(production_environments(
        &indexed(&github.production_environments),
        github.production_environments.len(),
    ));
    problems.extend(labels(INCIDENT_LABELS, &indexed(&github.incident_labels)));
    problems.extend(labels(REWORK_LABELS, &indexed(&github.rework_labels)));
    problems.extend(repositories(&names, github.repositories.len()));
    problems
}
