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

use super::{
    Config, Duration, IngestClientConfig, LabelName, OrgName, Problem, PushRepositoryConfig,
    Seconds, WebhooksConfig, MAX_INGEST_REQUESTS_PER_SECOND, MIN_WEBHOOK_SECRET_LEN,
};
use crate::domain::{Environment, RepoName};
use secrecy::ExposeSecret;
use std::fmt::Display;

/// The most windows allowed: every window multiplies every windowed series, so more
/// than a handful is a cardinality mistake rather than a wish.
pub const MAX_WINDOWS: usize = 10;

pub(super) const WINDOWS: &str = "metrics.windows";
pub(super) const LOOKBACK: &str = "github.lookback";
pub(super) const REPOSITORIES: &str = "github.repositories";
pub(super) const ORGANIZATIONS: &str = "github.organizations";
pub(super) const ENVIRONMENTS: &str = "github.production_environments";
pub(super) const INGEST_ENVIRONMENTS: &str = "ingest.production_environments";
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

/// `[github]` syncs something: at least one `[[github.repositories]]` or
/// `[[github.organizations]]` entry.
pub(super) fn something_to_sync(repositories: usize, organizations: usize) -> Vec<Problem> {
    if repositories == 0 && organizations == 0 {
        vec![problem(
            REPOSITORIES.to_owned(),
            "expected at least one [[github.repositories]] entry, or an organisation in \
             [[github.organizations]]"
                .to_owned(),
        )]
    } else {
        Vec::new()
    }
}

/// `[[github.organizations]]`: each organisation once (compared
/// case-insensitively, as GitHub compares logins).
pub(super) fn organizations(names: &[(usize, &OrgName)]) -> Vec<Problem> {
    duplicates(
        names,
        |name| name.as_str().to_ascii_lowercase(),
        |(i, name), (j, _)| {
            problem(
                format!("{ORGANIZATIONS}[{i}].name"),
                format!("\"{name}\" is already configured in {ORGANIZATIONS}[{j}]"),
            )
        },
    )
}

/// `[[github.repositories]]`: each name once.
pub(super) fn repositories(names: &[(usize, &RepoName)]) -> Vec<Problem> {
    let mut problems = Vec::new();
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

/// `github.production_environments` and `ingest.production_environments`
/// (named by `path`): at least one, no duplicates.
pub(super) fn production_environments(
    path: &str,
    items: &[(usize, &Environment)],
    declared: usize,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            path.to_owned(),
            "expected at least one environment (nothing would count as a deployment)".to_owned(),
        ));
    }
    problems.extend(duplicates(
        items,
        |env| env.as_str().to_lowercase(),
        |(i, name), (j, first)| repeated_name(path, *i, *j, name, first),
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

pub(super) const INGEST_CLIENTS: &str = "ingest.clients";
pub(super) const PUSH_REPOSITORIES: &str = "repositories";

/// `ingest.requests_per_second`: 1 to [`MAX_INGEST_REQUESTS_PER_SECOND`].
pub(super) fn ingest_rate(rate: u32) -> Vec<Problem> {
    if (1..=MAX_INGEST_REQUESTS_PER_SECOND).contains(&rate) {
        Vec::new()
    } else {
        vec![problem(
            "ingest.requests_per_second".to_owned(),
            format!("expected 1 to {MAX_INGEST_REQUESTS_PER_SECOND}, got {rate}"),
        )]
    }
}

/// `[[ingest.clients]]`: at least one, no name or token twice (a shared token
/// could not tell its clients apart). Never quotes a token.
pub(super) fn ingest_clients(
    clients: &[(usize, &IngestClientConfig)],
    declared: usize,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            INGEST_CLIENTS.to_owned(),
            "expected at least one [[ingest.clients]] entry (no one could push)".to_owned(),
        ));
    }
    problems.extend(duplicates(
        clients,
        |client| client.name.clone(),
        |(i, client), (j, _)| {
            problem(
                format!("{INGEST_CLIENTS}[{i}].name"),
                format!(
                    "\"{}\" is already a client name in {INGEST_CLIENTS}[{j}]",
                    client.name
                ),
            )
        },
    ));
    problems.extend(duplicates(
        clients,
        |client| client.token.expose_secret().to_owned(),
        |(i, _), (j, _)| {
            problem(
                format!("{INGEST_CLIENTS}[{i}].token"),
                format!(
                    "the same token as {INGEST_CLIENTS}[{j}] (the value is not shown); \
                     each client needs its own"
                ),
            )
        },
    ));
    problems
}

/// `[[repositories]]`: each name once.
pub(super) fn push_repositories(names: &[(usize, &RepoName)]) -> Vec<Problem> {
    duplicates(
        names,
        |name| (*name).clone(),
        |(i, name), (j, _)| {
            problem(
                format!("{PUSH_REPOSITORIES}[{i}].name"),
                format!("\"{name}\" is already configured in {PUSH_REPOSITORIES}[{j}]"),
            )
        },
    )
}

/// `[[repositories]]` names no repository of `[[github.repositories]]` (whose
/// team is set there).
pub(super) fn push_repositories_apart(
    repositories: &[PushRepositoryConfig],
    github: &[&RepoName],
) -> Vec<Problem> {
    repositories
        .iter()
        .enumerate()
        .filter(|(_, repo)| github.contains(&&repo.name))
        .map(|(i, repo)| {
            problem(
                format!("{PUSH_REPOSITORIES}[{i}].name"),
                format!(
                    "\"{}\" is in [[{REPOSITORIES}]] already; set its team there (and \
                     deployments = {{ from = \"push\" }} for pushed deployments)",
                    repo.name
                ),
            )
        })
        .collect()
}

/// `[webhooks.github]` needs `[github]`: a delivery only says which repository
/// to sync, and GitHub (its token, its repositories) is what is synced.
pub(super) fn webhooks_need_github(github: bool, github_hook: bool) -> Vec<Problem> {
    if github_hook && !github {
        vec![problem(
            "webhooks.github".to_owned(),
            "[webhooks.github] needs [github]: a delivery only tells which repository to \
             sync from GitHub, so [github] with its token and [[github.repositories]] must be \
             configured too"
                .to_owned(),
        )]
    } else {
        Vec::new()
    }
}

/// `webhooks.github.secret`: at least [`MIN_WEBHOOK_SECRET_LEN`] characters.
/// Never quotes it.
fn webhook_secret(webhooks: &WebhooksConfig) -> Vec<Problem> {
    match &webhooks.github {
        Some(github) if github.secret.expose_secret().chars().count() < MIN_WEBHOOK_SECRET_LEN => {
            vec![problem(
                "webhooks.github.secret".to_owned(),
                format!(
                    "must be at least {MIN_WEBHOOK_SECRET_LEN} characters (the value is not shown)"
                ),
            )]
        }
        _ => Vec::new(),
    }
}

fn indexed<T>(items: &[T]) -> Vec<(usize, &T)> {
    items.iter().enumerate().collect()
}

/// Every rule, on a complete configuration.
pub(super) fn check_config(config: &Config) -> Vec<Problem> {
    let metrics = &config.metrics;
    let windows_indexed: Vec<(usize, Duration)> =
        metrics.windows.iter().copied().enumerate().collect();
    let thresholds = &metrics.thresholds;
    let threshold_values = [
        thresholds.deployment_frequency_per_day,
        seconds(thresholds.lead_time_seconds),
        thresholds.change_failure_rate,
        seconds(thresholds.recovery_time_seconds),
    ];

    let mut problems = windows(&windows_indexed, metrics.windows.len());
    for (rule, values) in THRESHOLD_RULES.into_iter().zip(threshold_values) {
        problems.extend(threshold(rule, values));
    }
    if config.github.is_none() && config.ingest.is_none() {
        problems.push(problem(
            "github".to_owned(),
            "expected [github] or [ingest] (nothing to collect from)".to_owned(),
        ));
    }
    if let Some(github) = &config.github {
        let names: Vec<(usize, &RepoName)> = github
            .repositories
            .iter()
            .map(|repo| &repo.name)
            .enumerate()
            .collect();
        problems.extend(lookback(github.lookback, &windows_indexed));
        problems.extend(production_environments(
            ENVIRONMENTS,
            &indexed(&github.production_environments),
            github.production_environments.len(),
        ));
        problems.extend(labels(INCIDENT_LABELS, &indexed(&github.incident_labels)));
        problems.extend(labels(REWORK_LABELS, &indexed(&github.rework_labels)));
        problems.extend(repositories(&names));
        problems.extend(something_to_sync(
            github.repositories.len(),
            github.organizations.len(),
        ));
        let organizations: Vec<(usize, &OrgName)> = github
            .organizations
            .iter()
            .map(|organization| &organization.name)
            .enumerate()
            .collect();
        problems.extend(self::organizations(&organizations));
    }
    if let Some(ingest) = &config.ingest {
        problems.extend(ingest_rate(ingest.requests_per_second));
        problems.extend(production_environments(
            INGEST_ENVIRONMENTS,
            &indexed(&ingest.production_environments),
            ingest.production_environments.len(),
        ));
        problems.extend(ingest_clients(
            &indexed(&ingest.clients),
            ingest.clients.len(),
        ));
    }
    let push_names: Vec<(usize, &RepoName)> = config
        .repositories
        .iter()
        .map(|repo| &repo.name)
        .enumerate()
        .collect();
    problems.extend(push_repositories(&push_names));
    let github_names: Vec<&RepoName> = config
        .github_repositories()
        .iter()
        .map(|repo| &repo.name)
        .collect();
    problems.extend(push_repositories_apart(&config.repositories, &github_names));
    problems.extend(webhooks_need_github(
        config.github.is_some(),
        config.webhooks.github.is_some(),
    ));
    problems.extend(webhook_secret(&config.webhooks));
    problems
}
