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
    ApplicationName, Config, DeploymentsConfig, Duration, GitlabDeploymentsConfig,
    IngestClientConfig, JobPath, LabelName, OrgName, PagerDutyServiceConfig, Problem,
    ProjectConfig, PushRepositoryConfig, RepositoryConfig, Seconds, ServiceMapping, Urgency,
    WebhooksConfig, MAX_INGEST_REQUESTS_PER_SECOND, MIN_WEBHOOK_SECRET_LEN,
};
use crate::domain::{Environment, RepoName};
use secrecy::ExposeSecret;
use std::fmt::Display;

/// The most windows allowed: every window multiplies every windowed series, so more
/// than a handful is a cardinality mistake rather than a wish.
pub const MAX_WINDOWS: usize = 10;

pub(super) const WINDOWS: &str = "metrics.windows";
pub(super) const LOOKBACK: &str = "github.lookback";
pub(super) const GITLAB_LOOKBACK: &str = "gitlab.lookback";
pub(super) const PROJECTS: &str = "gitlab.projects";
pub(super) const GITLAB_ENVIRONMENTS: &str = "gitlab.production_environments";
pub(super) const GITLAB_INCIDENT_LABELS: &str = "gitlab.incident_labels";
pub(super) const GITLAB_REWORK_LABELS: &str = "gitlab.rework_labels";
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

/// `github.lookback` (or `gitlab.lookback`: `path`) must cover the longest window.
pub(super) fn lookback(
    path: &str,
    lookback: Duration,
    windows: &[(usize, Duration)],
) -> Vec<Problem> {
    let longest = windows.iter().max_by_key(|(_, w)| w.as_secs());
    match longest {
        Some((i, window)) if lookback.as_secs() < window.as_secs() => vec![problem(
            path.to_owned(),
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

/// `[[github.repositories]]`: each name once. None at all is fine when
/// `[[github.organizations]]` has an entry: `something_to_sync` decides.
pub(super) fn repositories(names: &[(usize, &RepoName)], _declared: usize) -> Vec<Problem> {
    named_once(REPOSITORIES, "name", names)
}

/// A code host's list of entries (`list`, each named by its `key`): at least
/// one, each name once.
fn code_host_entries(
    list: &str,
    key: &str,
    names: &[(usize, &RepoName)],
    declared: usize,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            list.to_owned(),
            format!("expected at least one [[{list}]] entry"),
        ));
    }
    problems.extend(named_once(list, key, names));
    problems
}

/// Each entry of `list` named once (by its `key`).
fn named_once(list: &str, key: &str, names: &[(usize, &RepoName)]) -> Vec<Problem> {
    duplicates(
        names,
        |name| (*name).clone(),
        |(i, name), (j, _)| {
            problem(
                format!("{list}[{i}].{key}"),
                format!("\"{name}\" is already configured in {list}[{j}]"),
            )
        },
    )
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
    problems.extend(environments_once(path, items));
    problems
}

/// `gitlab.production_environments`: no duplicates (it may be empty: every
/// environment of tier `production` counts anyway).
pub(super) fn environments_once(path: &str, items: &[(usize, &Environment)]) -> Vec<Problem> {
    duplicates(
        items,
        |env| env.as_str().to_lowercase(),
        |(i, name), (j, first)| repeated_name(path, *i, *j, name, first),
    )
}

/// `[[gitlab.projects]]`: at least one, each path once.
pub(super) fn projects(paths: &[(usize, &RepoName)], declared: usize) -> Vec<Problem> {
    code_host_entries(PROJECTS, "path", paths, declared)
}

/// A repository has one code host: no `[[gitlab.projects]]` path is also a
/// `[[github.repositories]]` name.
pub(super) fn one_code_host(github: &[&RepoName], gitlab: &[(usize, &RepoName)]) -> Vec<Problem> {
    gitlab
        .iter()
        .filter(|(_, path)| github.contains(path))
        .map(|(i, path)| {
            problem(
                format!("{PROJECTS}[{i}].path"),
                format!(
                    "\"{path}\" is in [[{REPOSITORIES}]] too; a repository's commits come from \
                     one code host: configure it under one of them"
                ),
            )
        })
        .collect()
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

/// `[[repositories]]` names no repository of `[[github.repositories]]` or
/// `[[gitlab.projects]]` (whose team is set there).
pub(super) fn push_repositories_apart(
    repositories: &[PushRepositoryConfig],
    github: &[&RepoName],
    gitlab: &[&RepoName],
) -> Vec<Problem> {
    repositories
        .iter()
        .enumerate()
        .filter_map(|(i, repo)| {
            let host = if github.contains(&&repo.name) {
                REPOSITORIES
            } else if gitlab.contains(&&repo.name) {
                PROJECTS
            } else {
                return None;
            };
            Some(problem(
                format!("{PUSH_REPOSITORIES}[{i}].name"),
                format!(
                    "\"{}\" is in [[{host}]] already; set its team there (and \
                     deployments = {{ from = \"push\" }} for pushed deployments)",
                    repo.name
                ),
            ))
        })
        .collect()
}

pub(super) const PAGERDUTY_SERVICES: &str = "pagerduty.services";
pub(super) const URGENCIES: &str = "pagerduty.urgencies";

/// `pagerduty.urgencies`: at least one, no duplicates.
pub(super) fn urgencies(items: &[(usize, &Urgency)], declared: usize) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            URGENCIES.to_owned(),
            "expected at least one urgency (\"high\", \"low\"); leave the key out for both"
                .to_owned(),
        ));
    }
    problems.extend(duplicates(
        items,
        |u| **u,
        |(i, u), (j, _)| {
            problem(
                format!("{URGENCIES}[{i}]"),
                format!("\"{}\" is {URGENCIES}[{j}] already", u.as_str()),
            )
        },
    ));
    problems
}

/// `[[pagerduty.services]]`: no id twice; the repositories a service is mapped to
/// are configured (`configured`), each once.
pub(super) fn pagerduty_services(
    services: &[(usize, &PagerDutyServiceConfig)],
    configured: &[&RepoName],
) -> Vec<Problem> {
    let mut problems = duplicates(
        services,
        |s| s.id.as_str().to_owned(),
        |(i, s), (j, _)| {
            problem(
                format!("{PAGERDUTY_SERVICES}[{i}].id"),
                format!(
                    "\"{}\" is {PAGERDUTY_SERVICES}[{j}] already; a service is read once",
                    s.id.as_str()
                ),
            )
        },
    );
    for (i, service) in services {
        let ServiceMapping::Repositories(names) = &service.maps_to else {
            continue;
        };
        for (k, name) in names.iter().enumerate() {
            let path = format!("{PAGERDUTY_SERVICES}[{i}].repositories[{k}]");
            if names[..k].contains(name) {
                problems.push(problem(path, format!("\"{name}\" is listed twice")));
            } else if !configured.contains(&name) {
                problems.push(problem(
                    path,
                    format!(
                        "\"{name}\" is not configured: list it in [[{REPOSITORIES}]], \
                         [[{PROJECTS}]] or [[{PUSH_REPOSITORIES}]] (its deployments and team \
                         come from there)"
                    ),
                ));
            }
        }
    }
    problems
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

pub(super) const ARGOCD_APPLICATIONS: &str = "argocd.applications";
pub(super) const JENKINS_JOBS: &str = "jenkins.jobs";

/// `[[argocd.applications]]`: at least one, each name once.
pub(super) fn argocd_applications(
    names: &[(usize, &ApplicationName)],
    declared: usize,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            ARGOCD_APPLICATIONS.to_owned(),
            "expected at least one [[argocd.applications]] entry".to_owned(),
        ));
    }
    problems.extend(duplicates(
        names,
        |name| (*name).clone(),
        |(i, name), (j, _)| {
            problem(
                format!("{ARGOCD_APPLICATIONS}[{i}].name"),
                format!("\"{name}\" is already configured in {ARGOCD_APPLICATIONS}[{j}]"),
            )
        },
    ));
    problems
}

/// `[[jenkins.jobs]]`: at least one, each path once.
pub(super) fn jenkins_jobs(paths: &[(usize, &JobPath)], declared: usize) -> Vec<Problem> {
    let mut problems = Vec::new();
    if declared == 0 {
        problems.push(problem(
            JENKINS_JOBS.to_owned(),
            "expected at least one [[jenkins.jobs]] entry".to_owned(),
        ));
    }
    problems.extend(duplicates(
        paths,
        |path| (*path).clone(),
        |(i, path), (j, _)| {
            problem(
                format!("{JENKINS_JOBS}[{i}].path"),
                format!("\"{path}\" is already configured in {JENKINS_JOBS}[{j}]"),
            )
        },
    ));
    problems
}

/// A repository whose deployments come from Argo CD or Jenkins and whose commits
/// no code host gives.
fn without_code_host(
    path: String,
    repository: &RepoName,
    push: &[PushRepositoryConfig],
) -> Problem {
    let listed = if push.iter().any(|p| &p.name == repository) {
        " ([[repositories]] gives a team to repositories whose pushed deployments carry \
         their commits; Argo CD and Jenkins give only a revision)"
    } else {
        ""
    };
    problem(
        path,
        format!(
            "\"{repository}\" is in neither [[{REPOSITORIES}]] nor [[{PROJECTS}]]: no code \
             host gives its commits, so its change sets and lead time could never be known; \
             add an entry for it to one of them (without a deployments key; a repository \
             of a [[github.organizations]] entry as well: a discovered repository takes \
             its organisation's deployments, never Argo CD's or Jenkins'){listed}"
        ),
    )
}

/// The code hosts' entries, as [`resolve_deployment_sources`] needs them: the
/// `[[github.repositories]]` and `[[gitlab.projects]]` that parsed, and which of
/// them set their `deployments` key (indices).
pub(super) struct CodeHosts<'a> {
    pub github: &'a mut [RepositoryConfig],
    pub github_explicit: &'a [usize],
    pub gitlab: &'a mut [ProjectConfig],
    pub gitlab_explicit: &'a [usize],
}

impl CodeHosts<'_> {
    fn holds(&self, repository: &RepoName) -> bool {
        self.github.iter().any(|r| &r.name == repository)
            || self.gitlab.iter().any(|p| &p.path == repository)
    }
}

/// The repositories named by `[[argocd.applications]]` (`applications`, their
/// repositories in file order) and `[[jenkins.jobs]]` (`jobs`): each one's
/// commits come from its `[[github.repositories]]` or `[[gitlab.projects]]`
/// entry (`hosts`), which then sets no `deployments` key, and its deployments
/// from one of the two. Sets the `deployments` of the entries so named to
/// Argo CD or Jenkins ([`DeploymentsConfig::ArgoCd`],
/// [`GitlabDeploymentsConfig::ArgoCd`], ...); returns the problems (naming both
/// keys where two disagree).
pub(super) fn resolve_deployment_sources(
    hosts: CodeHosts<'_>,
    applications: &[&RepoName],
    jobs: &[&RepoName],
    push: &[PushRepositoryConfig],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let named = |list: &[&RepoName], repository: &RepoName| {
        list.iter().position(|name| *name == repository)
    };
    for (j, repository) in applications.iter().enumerate() {
        if !hosts.holds(repository) {
            problems.push(without_code_host(
                format!("{ARGOCD_APPLICATIONS}[{j}].repository"),
                repository,
                push,
            ));
        }
    }
    for (k, repository) in jobs.iter().enumerate() {
        if !hosts.holds(repository) {
            problems.push(without_code_host(
                format!("{JENKINS_JOBS}[{k}].repository"),
                repository,
                push,
            ));
        }
        if let Some(j) = named(applications, repository) {
            problems.push(problem(
                format!("{JENKINS_JOBS}[{k}].repository"),
                format!(
                    "\"{repository}\" takes its deployments from {ARGOCD_APPLICATIONS}[{j}] \
                     already; a repository's deployments come from one source, or they would \
                     be counted twice"
                ),
            ));
        }
    }
    // Which list names `repository`: Argo CD's (true) or Jenkins' (false), with
    // the key naming it; neither, or both (reported above), gives `None`.
    let source_of =
        |repository: &RepoName| match (named(applications, repository), named(jobs, repository)) {
            (Some(j), None) => Some((true, format!("{ARGOCD_APPLICATIONS}[{j}]"))),
            (None, Some(k)) => Some((false, format!("{JENKINS_JOBS}[{k}]"))),
            _ => None,
        };
    let explicit_problem = |path: String, repository: &RepoName, key: &str| {
        problem(
            path,
            format!(
                "\"{repository}\" takes its deployments from {key}; remove this key (this \
                 entry then gives its commits, incidents and pull requests), or remove it \
                 from {key}"
            ),
        )
    };
    for (i, entry) in hosts.github.iter_mut().enumerate() {
        let Some((argocd, key)) = source_of(&entry.name) else {
            continue;
        };
        if hosts.github_explicit.contains(&i) {
            let path = format!("{REPOSITORIES}[{i}].deployments");
            problems.push(explicit_problem(path, &entry.name, &key));
        } else if argocd {
            entry.deployments = DeploymentsConfig::ArgoCd;
        } else {
            entry.deployments = DeploymentsConfig::Jenkins;
        }
    }
    for (i, entry) in hosts.gitlab.iter_mut().enumerate() {
        let Some((argocd, key)) = source_of(&entry.path) else {
            continue;
        };
        if hosts.gitlab_explicit.contains(&i) {
            let path = format!("{PROJECTS}[{i}].deployments");
            problems.push(explicit_problem(path, &entry.path, &key));
        } else if argocd {
            entry.deployments = GitlabDeploymentsConfig::ArgoCd;
        } else {
            entry.deployments = GitlabDeploymentsConfig::Jenkins;
        }
    }
    problems
}

/// On a configuration built in code: every repository named by
/// `[[argocd.applications]]` or `[[jenkins.jobs]]` is a `[[github.repositories]]`
/// or `[[gitlab.projects]]` entry whose `deployments` says so, and every entry
/// that says so is named.
fn deployment_sources(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Every code host entry: its key path, name and where its deployments come
    // from (`argocd`, `jenkins` or another name).
    let entries: Vec<(String, &RepoName, &'static str)> = config
        .github_repositories()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let path = format!("{REPOSITORIES}[{i}].deployments");
            (path, &r.name, r.deployments.source_name())
        })
        .chain(config.gitlab_projects().iter().enumerate().map(|(i, p)| {
            let path = format!("{PROJECTS}[{i}].deployments");
            (path, &p.path, p.deployments.source_name())
        }))
        .collect();
    let argocd = DeploymentsConfig::ArgoCd.source_name();
    let jenkins = DeploymentsConfig::Jenkins.source_name();
    let lists = [
        (
            ARGOCD_APPLICATIONS,
            argocd,
            config
                .argocd_applications()
                .iter()
                .map(|a| &a.repository)
                .collect::<Vec<_>>(),
        ),
        (
            JENKINS_JOBS,
            jenkins,
            config
                .jenkins_jobs()
                .iter()
                .map(|j| &j.repository)
                .collect::<Vec<_>>(),
        ),
    ];
    for (path, source, repositories) in &lists {
        for (j, repository) in repositories.iter().enumerate() {
            match entries.iter().find(|(_, name, _)| name == repository) {
                None => problems.push(without_code_host(
                    format!("{path}[{j}].repository"),
                    repository,
                    &config.repositories,
                )),
                Some((_, _, from)) if from != source => problems.push(problem(
                    format!("{path}[{j}].repository"),
                    format!(
                        "\"{repository}\" takes its deployments from {from} already; a \
                         repository's deployments come from one source"
                    ),
                )),
                Some(_) => {}
            }
        }
        for (key, name, from) in &entries {
            if from == source && !repositories.contains(name) {
                problems.push(problem(
                    key.clone(),
                    format!(
                        "\"{name}\" takes its deployments from {source}, but no [[{path}]] \
                         entry names it"
                    ),
                ));
            }
        }
    }
    problems
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
    if config.github.is_none() && config.gitlab.is_none() && config.ingest.is_none() {
        problems.push(problem(
            "github".to_owned(),
            "expected [github], [gitlab] or [ingest] (nothing to collect from)".to_owned(),
        ));
    }
    if let Some(github) = &config.github {
        let names: Vec<(usize, &RepoName)> = github
            .repositories
            .iter()
            .map(|repo| &repo.name)
            .enumerate()
            .collect();
        problems.extend(lookback(LOOKBACK, github.lookback, &windows_indexed));
        problems.extend(production_environments(
            ENVIRONMENTS,
            &indexed(&github.production_environments),
            github.production_environments.len(),
        ));
        problems.extend(labels(INCIDENT_LABELS, &indexed(&github.incident_labels)));
        problems.extend(labels(REWORK_LABELS, &indexed(&github.rework_labels)));
        problems.extend(repositories(&names, github.repositories.len()));
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
    let github_names: Vec<&RepoName> = config
        .github_repositories()
        .iter()
        .map(|repo| &repo.name)
        .collect();
    if let Some(gitlab) = &config.gitlab {
        let paths: Vec<(usize, &RepoName)> = gitlab
            .projects
            .iter()
            .map(|project| &project.path)
            .enumerate()
            .collect();
        problems.extend(lookback(GITLAB_LOOKBACK, gitlab.lookback, &windows_indexed));
        problems.extend(environments_once(
            GITLAB_ENVIRONMENTS,
            &indexed(&gitlab.production_environments),
        ));
        problems.extend(labels(
            GITLAB_INCIDENT_LABELS,
            &indexed(&gitlab.incident_labels),
        ));
        problems.extend(labels(
            GITLAB_REWORK_LABELS,
            &indexed(&gitlab.rework_labels),
        ));
        problems.extend(projects(&paths, gitlab.projects.len()));
        problems.extend(one_code_host(&github_names, &paths));
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
    let gitlab_names: Vec<&RepoName> = config
        .gitlab_projects()
        .iter()
        .map(|project| &project.path)
        .collect();
    problems.extend(push_repositories_apart(
        &config.repositories,
        &github_names,
        &gitlab_names,
    ));
    if let Some(pagerduty) = &config.pagerduty {
        problems.extend(urgencies(
            &indexed(&pagerduty.urgencies),
            pagerduty.urgencies.len(),
        ));
        let configured: Vec<&RepoName> = github_names
            .iter()
            .copied()
            .chain(gitlab_names.iter().copied())
            .chain(config.repositories.iter().map(|repo| &repo.name))
            .collect();
        problems.extend(pagerduty_services(
            &indexed(&pagerduty.services),
            &configured,
        ));
    }
    problems.extend(webhooks_need_github(
        config.github.is_some(),
        config.webhooks.github.is_some(),
    ));
    problems.extend(webhook_secret(&config.webhooks));
    if let Some(argocd) = &config.argocd {
        let names: Vec<(usize, &ApplicationName)> = argocd
            .applications
            .iter()
            .map(|a| &a.name)
            .enumerate()
            .collect();
        problems.extend(argocd_applications(&names, argocd.applications.len()));
    }
    if let Some(jenkins) = &config.jenkins {
        let paths: Vec<(usize, &JobPath)> =
            jenkins.jobs.iter().map(|j| &j.path).enumerate().collect();
        problems.extend(jenkins_jobs(&paths, jenkins.jobs.len()));
    }
    problems.extend(deployment_sources(config));
    problems
}
