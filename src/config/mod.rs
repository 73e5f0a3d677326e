//! The typed configuration of dora-collector (`dora-collector.toml`), how a file
//! becomes one, and how it feeds the engine.
//!
//! [`Config`] is a plain struct tree with a documented default for every optional
//! key (`docs/configuration.md` is the user's reference). A loaded `Config` is valid:
//! values are domain newtypes ([`RepoName`], [`Environment`], [`Duration`], ...),
//! never raw strings.
//!
//! # One definition of the schema
//!
//! The schema (which keys each table has, the type of each value, its default,
//! whether it is required) is written once: in the loader's walk (module `reader`),
//! which names every key, deserializes its value with the value type's own serde
//! `Deserialize` (or a `deserialize_*` function of module `values`) and takes its
//! default from [`defaults`]. The structs below carry no `Deserialize` of their own,
//! so there is no second schema to keep in step. (A serde derive cannot be the one
//! definition without losing behaviour: it stops at the first error and yields no
//! partial values, while the loader reports every problem and runs the rules between
//! values on whatever parsed, with the key paths and indices of the file.)
//!
//! # Loading: every problem at once
//!
//! [`Config::load`] reads the file (at most [`MAX_CONFIG_BYTES`]) and parses it
//! (module `reader`):
//!
//! 1. `toml::de::DeTable::parse_recoverable` parses the text into a table that keeps
//!    the byte span of every key and value; every syntax error is reported. Then
//!    `${NAME}` environment variables are expanded inside string values (module
//!    `env`), so that a variable is only ever the string it stands in, never TOML.
//! 2. A walker visits the schema table by table. Each leaf is deserialized on its own,
//!    so a bad value is one problem at its own key path and line, and the walk goes
//!    on. List elements are deserialized one by one (`windows[2]`). Keys left over in
//!    a table are reported as unknown, all of them, with their full path and a "did
//!    you mean" suggestion.
//! 3. The rules between values (module `rules`: duplicates, the lookback against the
//!    windows, threshold order, ...) run on whatever parsed, so they are reported
//!    together with the value errors.
//!
//! The token is a [`SecretString`]; `Debug` prints `[REDACTED]` and the loader
//! removes the token's text from every problem message.
//!
//! # Not here
//! No network, no defaults taken from the environment other than `${NAME}`
//! references, and no reloading: the daemon reads its file once at start.

mod app_key;
mod duration;
mod env;
mod problem;
mod reader;
mod rules;
mod values;

pub use app_key::{AppKeyError, AppPrivateKey, MAX_PRIVATE_KEY_BYTES};
pub use duration::{Duration, Unit, MAX_DURATION_SECONDS};
pub use env::expand_env;
pub use problem::{ConfigError, Problem};
pub use rules::MAX_WINDOWS;
pub use values::{
    ApiUrl, ApiUrlError, ApplicationName, BranchName, ClientName, JenkinsUser, JobPath, LabelName,
    LogFormat, LogLevel, NamePattern, OrgName, RepoPattern, Seconds, ServiceId, Urgency,
    WorkflowName, MAX_INGEST_REQUESTS_PER_SECOND, MAX_JOB_DEPTH, MAX_NAME_LEN, MAX_SERVICE_ID_LEN,
    MAX_TOKEN_LEN, MIN_INGEST_TOKEN_LEN, MIN_WEBHOOK_SECRET_LEN,
};

use crate::domain::{Environment, RepoName, Team};
use crate::dora::{EngineConfig, LeadTimeStart, Thresholds};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::env::VarError;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The largest configuration file read. A real one is a few kilobytes; anything this
/// large is the wrong file, and the bound keeps a mistake from filling memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The defaults of every optional key, in one place for the loader and the
/// documentation.
pub mod defaults {
    use super::{ApiUrl, Duration, LabelName, Unit};
    use crate::domain::Environment;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::path::PathBuf;

    /// The port of `server.listen`: 9184, next to Prometheus' exporter range.
    pub const LISTEN_PORT: u16 = 9184;
    /// `storage.path`: a file in the working directory.
    pub const STORAGE_PATH: &str = "./dora.db";
    /// `github.api_url`: github.com.
    pub const API_URL: &str = "https://api.github.com";
    /// `gitlab.api_url`: GitLab.com.
    pub const GITLAB_API_URL: &str = "https://gitlab.com/api/v4";
    /// `pagerduty.api_url`: PagerDuty's REST API (US service region).
    pub const PAGERDUTY_API_URL: &str = "https://api.pagerduty.com";
    /// `github.production_environments`.
    pub const PRODUCTION_ENVIRONMENT: &str = "production";
    /// `github.incident_labels`.
    pub const INCIDENT_LABEL: &str = "incident";
    /// `github.rework_labels`.
    pub const REWORK_LABEL: &str = "hotfix";
    /// `github.rollback_is_failure`.
    pub const ROLLBACK_IS_FAILURE: bool = true;
    /// `server.shutdown_grace_period`: 10s, how long a stopping daemon lets
    /// requests and store writes in progress finish; well inside systemd's default
    /// stop timeout (90 s) and the shipped unit's (30 s), and Kubernetes' default
    /// termination grace period (30 s).
    pub const SHUTDOWN_GRACE_PERIOD: Duration = duration(10, Unit::Seconds);
    /// `github.poll_interval`: 5m, a sync every five minutes stays far inside
    /// GitHub's hourly rate limit for dozens of repositories.
    pub const POLL_INTERVAL: Duration = duration(5, Unit::Minutes);
    /// `github.lookback`: 90d, the longest default window.
    pub const LOOKBACK: Duration = duration(90, Unit::Days);
    /// `ingest.requests_per_second`: 100 requests a second per client, far above
    /// what a CI system reports and low enough that one runaway script cannot
    /// flood the store.
    pub const INGEST_REQUESTS_PER_SECOND: u32 = 100;
    /// `metrics.windows`: 7d, 30d, 90d.
    pub const WINDOWS: [Duration; 3] = [
        duration(7, Unit::Days),
        duration(30, Unit::Days),
        duration(90, Unit::Days),
    ];

    const fn duration(count: u64, unit: Unit) -> Duration {
        match Duration::new(count, unit) {
            Some(duration) => duration,
            None => panic!("default durations are positive and bounded"),
        }
    }

    /// `0.0.0.0:9184`: every interface, so that Prometheus can reach it.
    pub fn listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, LISTEN_PORT))
    }
    pub fn shutdown_grace_period() -> Duration {
        SHUTDOWN_GRACE_PERIOD
    }
    pub fn storage_path() -> PathBuf {
        PathBuf::from(STORAGE_PATH)
    }
    pub fn windows() -> Vec<Duration> {
        WINDOWS.to_vec()
    }
    pub fn api_url() -> ApiUrl {
        ApiUrl::parse(API_URL).expect("the default API URL is valid")
    }
    pub fn gitlab_api_url() -> ApiUrl {
        ApiUrl::parse(GITLAB_API_URL).expect("the default GitLab API URL is valid")
    }
    pub fn pagerduty_api_url() -> ApiUrl {
        ApiUrl::parse(PAGERDUTY_API_URL).expect("the default PagerDuty URL is valid")
    }
    /// `pagerduty.urgencies`: every urgency counts.
    pub fn urgencies() -> Vec<super::Urgency> {
        vec![super::Urgency::High, super::Urgency::Low]
    }
    pub fn poll_interval() -> Duration {
        POLL_INTERVAL
    }
    pub fn lookback() -> Duration {
        LOOKBACK
    }
    pub fn production_environments() -> Vec<Environment> {
        vec![Environment::parse(PRODUCTION_ENVIRONMENT).expect("valid environment")]
    }
    pub fn incident_labels() -> Vec<LabelName> {
        vec![LabelName::parse(INCIDENT_LABEL).expect("valid label")]
    }
    pub fn rework_labels() -> Vec<LabelName> {
        vec![LabelName::parse(REWORK_LABEL).expect("valid label")]
    }
    pub fn rollback_is_failure() -> bool {
        ROLLBACK_IS_FAILURE
    }
}

/// The whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: the HTTP endpoint. Optional.
    pub server: ServerConfig,
    /// `[storage]`: the embedded store. Optional.
    pub storage: StorageConfig,
    /// `[metrics]`: windows and level thresholds. Optional.
    pub metrics: MetricsConfig,
    /// `[github]`: the GitHub source. Optional; at least one of `[github]`,
    /// `[gitlab]` and `[ingest]` (a collector fed only by the push API).
    pub github: Option<GithubConfig>,
    /// `[gitlab]`: the GitLab source (GitLab.com or self-managed). Optional.
    pub gitlab: Option<GitlabConfig>,
    /// `[ingest]`: the push API. Absent: disabled.
    pub ingest: Option<IngestConfig>,
    /// `[[repositories]]`: repositories known only through the push API (their
    /// teams). Optional.
    pub repositories: Vec<PushRepositoryConfig>,
    /// `[pagerduty]`: incidents of PagerDuty services. Absent: not read.
    pub pagerduty: Option<PagerDutyConfig>,
    /// `[webhooks]`: deliveries from code hosts. Optional; each part absent:
    /// its route is disabled.
    pub webhooks: WebhooksConfig,
    /// `[argocd]`: deployments from Argo CD applications. Optional.
    pub argocd: Option<ArgoCdConfig>,
    /// `[jenkins]`: deployments from Jenkins jobs. Optional.
    pub jenkins: Option<JenkinsConfig>,
    /// `[log]`: the daemon's own log output. Optional.
    pub log: LogConfig,
}

/// `[argocd]`: deployments read from Argo CD: each configured application's sync
/// history and its last operation.
#[derive(Debug, Clone)]
pub struct ArgoCdConfig {
    /// The Argo CD server (`https://argocd.example.com`; the API is under
    /// `/api/v1`). Required.
    pub api_url: ApiUrl,
    /// A bearer token of an account with `applications, get` (an API key of a
    /// local account, or a project token). Required; normally `"${ARGOCD_TOKEN}"`.
    /// Never printed.
    pub token: SecretString,
    /// `[[argocd.applications]]`: at least one, no name twice.
    pub applications: Vec<ArgoCdApplicationConfig>,
}

/// `[[argocd.applications]]`: one application and the repository it deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoCdApplicationConfig {
    /// The application's name (`api-prod`, or `namespace/name` for an
    /// application outside Argo CD's own namespace). Required.
    pub name: ApplicationName,
    /// The repository whose deployments its syncs are; its commits come from its
    /// `[[github.repositories]]` entry. Required.
    pub repository: RepoName,
    /// The environment its syncs deploy to. Required.
    pub environment: Environment,
}

/// `[jenkins]`: deployments read from the builds of Jenkins jobs.
#[derive(Debug, Clone)]
pub struct JenkinsConfig {
    /// The Jenkins root URL (`https://jenkins.example.com`, or with its context
    /// path: `https://ci.example.com/jenkins`). Required.
    pub url: ApiUrl,
    /// The user the API token belongs to. Required.
    pub user: JenkinsUser,
    /// The user's API token (sent with the user as HTTP basic authentication).
    /// Required; normally `"${JENKINS_TOKEN}"`. Never printed.
    pub token: SecretString,
    /// What an `UNSTABLE` build is. Default: a failed attempt.
    pub unstable: UnstableBuilds,
    /// `[[jenkins.jobs]]`: at least one, no path twice.
    pub jobs: Vec<JenkinsJobConfig>,
}

/// `jenkins.unstable`: what a build whose result is `UNSTABLE` (it ran, but a
/// test or quality gate failed) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnstableBuilds {
    /// A failed attempt (the default): it did not reach production.
    #[default]
    Failure,
    /// A successful deployment (for jobs that deploy before a flaky check).
    Success,
}

/// `[[jenkins.jobs]]`: one job whose builds are deployments of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JenkinsJobConfig {
    /// The job's full name: folders separated by `/` (`deploy/api`; the branch
    /// job of a multibranch project: `api/main`, `api/release%2F1.x`).
    /// Required.
    pub path: JobPath,
    /// The repository its builds deploy; its commits come from its
    /// `[[github.repositories]]` entry. Required.
    pub repository: RepoName,
    /// The environment its builds deploy to. Required.
    pub environment: Environment,
}

/// `[webhooks]`: the code hosts whose webhook deliveries the daemon takes.
#[derive(Debug, Clone, Default)]
pub struct WebhooksConfig {
    /// `[webhooks.github]`: `POST /webhooks/github`. Absent: the route does not
    /// exist. Requires `[github]`.
    pub github: Option<GithubWebhookConfig>,
}

/// `[webhooks.github]`: GitHub's webhook deliveries (`docs/webhooks.md`).
#[derive(Debug, Clone)]
pub struct GithubWebhookConfig {
    /// The hook's secret, the key of the HMAC-SHA256 in `X-Hub-Signature-256`:
    /// at least [`MIN_WEBHOOK_SECRET_LEN`] characters, normally
    /// `"${GITHUB_WEBHOOK_SECRET}"`. Required; never printed.
    pub secret: SecretString,
}

/// `[ingest]`: the push API (`POST /api/v1/deployments`, `POST /api/v1/incidents`).
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Requests a second each client may send (and as many at once); more are
    /// answered `429` with `Retry-After`. Default 100; 1 to
    /// [`MAX_INGEST_REQUESTS_PER_SECOND`].
    pub requests_per_second: u32,
    /// The environments that count as production for the repositories no code
    /// host reads (`[[repositories]]` and repositories pushed without being
    /// listed). Default `["production"]`; at least one, no duplicates.
    pub production_environments: Vec<Environment>,
    /// `[[ingest.clients]]`: at least one, no name or token twice.
    pub clients: Vec<IngestClientConfig>,
}

/// `[[ingest.clients]]`: one system that pushes (a Jenkins, a GitLab, a script).
#[derive(Debug, Clone)]
pub struct IngestClientConfig {
    /// The client's name: the `client` label of the push counters and part of
    /// every pushed item's identity. Required.
    pub name: ClientName,
    /// Its bearer token: at least [`MIN_INGEST_TOKEN_LEN`] characters, normally
    /// `"${DORA_INGEST_…}"`. Required; never printed.
    pub token: SecretString,
    /// Glob patterns of the repositories it may write (`acme/*`). Required, at
    /// least one.
    pub repositories: Vec<RepoPattern>,
}

/// `[pagerduty]`: incidents of PagerDuty services.
#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    /// REST API base URL. Default `https://api.pagerduty.com` (EU accounts:
    /// `https://api.eu.pagerduty.com`); `http://` is allowed (tests, simulators).
    pub api_url: ApiUrl,
    /// A read-only REST API key. Required; normally `"${PAGERDUTY_TOKEN}"`. Never
    /// printed.
    pub token: SecretString,
    /// The urgencies that count. Default `["high", "low"]` (every incident); at
    /// least one, no duplicates.
    pub urgencies: Vec<Urgency>,
    /// `[[pagerduty.services]]`: at least one, no id twice.
    pub services: Vec<PagerDutyServiceConfig>,
}

/// `[[pagerduty.services]]`: one service whose incidents are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyServiceConfig {
    /// The service id (`PABC123`). Required.
    pub id: ServiceId,
    /// What its incidents are attributed over: `repositories = [...]` or
    /// `team = "..."`, exactly one.
    pub maps_to: ServiceMapping,
}

/// What a PagerDuty service is mapped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceMapping {
    /// `repositories = [...]`: at least one, each configured, no repeats.
    Repositories(Vec<RepoName>),
    /// `team = "..."`: the repositories configured with that team.
    Team(Team),
}

/// `[[repositories]]`: a repository known only through the push API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRepositoryConfig {
    /// `owner/name`. Required; not also in `[[github.repositories]]`.
    pub name: RepoName,
    /// Its team. Default `unassigned`.
    pub team: Team,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// IP address and port of the HTTP server (`/metrics`, `/healthz`, `/readyz`, `/`).
    /// Default `0.0.0.0:9184`.
    pub listen: SocketAddr,
    /// On SIGTERM or Ctrl-C: how long requests and store writes in progress may
    /// take to finish before the rest is closed and the process exits. Default
    /// `10s`.
    pub shutdown_grace_period: Duration,
    /// Where people open Grafana (`https://grafana.example.com`): the landing
    /// page links the shipped dashboards there. Default: none.
    pub grafana_url: Option<ApiUrl>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: defaults::listen(),
            shutdown_grace_period: defaults::shutdown_grace_period(),
            grafana_url: None,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The SQLite database file, created when missing; relative paths are relative to
    /// the working directory. Default `./dora.db`. Unused when `url` is set.
    pub path: PathBuf,
    /// A PostgreSQL database instead of the SQLite file (`postgres://...`; its
    /// password is a secret, shown redacted). Set either this or `path`.
    pub url: Option<crate::store::PostgresUrl>,
}

impl StorageConfig {
    /// The store this configuration names.
    pub fn location(&self) -> crate::store::StoreLocation<'_> {
        match &self.url {
            Some(url) => crate::store::StoreLocation::Postgres(url),
            None => crate::store::StoreLocation::Sqlite(&self.path),
        }
    }

    /// The store for messages: the file, or the URL with its password redacted.
    pub fn shown(&self) -> String {
        match &self.url {
            Some(url) => url.shown().to_owned(),
            None => self.path.display().to_string(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: defaults::storage_path(),
            url: None,
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// The evaluation windows; each becomes a `window` label value, spelled as
    /// written. Default `["7d", "30d", "90d"]`. At least one, at most [`MAX_WINDOWS`],
    /// no two of the same length, none longer than `github.lookback`.
    pub windows: Vec<Duration>,
    /// `[metrics.thresholds]`: the performance-level boundaries. Default: the 2023
    /// State of DevOps report (see [`Thresholds::default`]).
    pub thresholds: ThresholdsConfig,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            windows: defaults::windows(),
            thresholds: ThresholdsConfig::default(),
        }
    }
}

impl MetricsConfig {
    /// The windows as the engine takes them.
    pub fn engine_windows(&self) -> Vec<crate::dora::Window> {
        self.windows.iter().map(|w| w.to_window()).collect()
    }
}

/// `[metrics.thresholds]`: `[elite, high, medium]` boundaries per metric, with the
/// field names of [`Thresholds`]. Each key is optional and defaults on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdsConfig {
    /// Deployments per day at or above which each level starts; strictly decreasing,
    /// positive. Default `[1, 1/7, 1/30]`.
    pub deployment_frequency_per_day: [f64; 3],
    /// Median lead time strictly below which each level starts; seconds or durations,
    /// strictly increasing. Default `["1d", "7d", "30d"]`.
    pub lead_time_seconds: [Seconds; 3],
    /// Change failure rate at or below which each level starts; 0 to 1, strictly
    /// increasing. Default `[0.05, 0.10, 0.15]`.
    pub change_failure_rate: [f64; 3],
    /// Median recovery time strictly below which each level starts; seconds or
    /// durations, strictly increasing. Default `["1h", "1d", "7d"]`.
    pub recovery_time_seconds: [Seconds; 3],
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        let engine = Thresholds::default();
        let seconds = |values: [f64; 3]| {
            values.map(|v| Seconds::new(v).expect("default thresholds are positive"))
        };
        ThresholdsConfig {
            deployment_frequency_per_day: engine.deployment_frequency_per_day,
            lead_time_seconds: seconds(engine.lead_time_seconds),
            change_failure_rate: engine.change_failure_rate,
            recovery_time_seconds: seconds(engine.recovery_time_seconds),
        }
    }
}

impl ThresholdsConfig {
    /// The engine's thresholds.
    pub fn to_thresholds(&self) -> Thresholds {
        Thresholds {
            deployment_frequency_per_day: self.deployment_frequency_per_day,
            lead_time_seconds: self.lead_time_seconds.map(Seconds::get),
            change_failure_rate: self.change_failure_rate,
            recovery_time_seconds: self.recovery_time_seconds.map(Seconds::get),
        }
    }
}

/// `[github]`
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// REST API base URL. Default `https://api.github.com`; GitHub Enterprise Server:
    /// `https://HOST/api/v3`; `http://` is allowed (tests, simulators).
    pub api_url: ApiUrl,
    /// How requests authenticate: `github.token`, or a GitHub App
    /// (`github.app_id` with its private key). Exactly one of the two.
    pub auth: GithubAuth,
    /// Time between two syncs. Default `5m`.
    pub poll_interval: Duration,
    /// How far back the first sync reads. Default `90d`; at least the longest window.
    pub lookback: Duration,
    /// The environments that count, compared case-insensitively. Default
    /// `["production"]`; at least one, no duplicates.
    pub production_environments: Vec<Environment>,
    /// Issues with any of these labels are incidents. Default `["incident"]`; empty
    /// means no incidents are read.
    pub incident_labels: Vec<LabelName>,
    /// Merged pull requests with any of these labels are rework. Default `["hotfix"]`;
    /// empty disables this rework criterion.
    pub rework_labels: Vec<LabelName>,
    /// Where lead time starts: `commit` (default), `pr_first_commit`, `pr_merged`.
    pub lead_time_start: LeadTimeStart,
    /// A rollback marks the deployment it rolls back as failed. Default `true`.
    pub rollback_is_failure: bool,
    /// How deployments and their statuses are read: `graphql` (default: a page of
    /// 100 deployments with their statuses per query) or `rest` (a statuses
    /// request per deployment; for GitHub Enterprise Servers without GraphQL).
    pub api: GithubApi,
    /// `[[github.repositories]]`: no name twice. With `[[github.organizations]]`
    /// an entry naming one of their repositories sets that repository's team and
    /// deployments (it is synced once).
    pub repositories: Vec<RepositoryConfig>,
    /// `[[github.organizations]]`: every repository of each, found each cycle.
    /// At least one repository or organisation in all; no organisation twice.
    pub organizations: Vec<OrganizationConfig>,
}

impl GithubConfig {
    /// The personal access token, when `github.token` is how requests
    /// authenticate.
    pub fn token(&self) -> Option<&SecretString> {
        match &self.auth {
            GithubAuth::Token(token) => Some(token),
            GithubAuth::App(_) => None,
        }
    }
}

/// How the collector authenticates to GitHub.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// `github.token`: a personal access token (classic or fine-grained), normally
    /// `"${GITHUB_TOKEN}"`. Never printed.
    Token(SecretString),
    /// `github.app_id` with `github.private_key_path` or `github.private_key`.
    App(GithubAppConfig),
}

/// A GitHub App: its id and private key (`docs/github-app.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubAppConfig {
    /// `github.app_id`: the App's numeric id (its settings page, "App ID").
    pub app_id: u64,
    /// The App's RSA private key, read and checked at load. Never printed.
    pub private_key: AppPrivateKey,
}

/// `github.organizations[].team_from`: where a discovered repository's team
/// comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamFrom {
    /// The `team` of a `[[github.repositories]]` entry naming the repository,
    /// else `unassigned` (the default).
    #[default]
    Config,
    /// The GitHub team with access to the repository (the strongest permission;
    /// `docs/configuration.md` states the rule).
    GithubTeams,
    /// A `team-<name>` topic of the repository.
    Topics,
}

/// `[[github.organizations]]`: an organisation whose repositories are found by
/// listing it each cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationConfig {
    /// The organisation's login. Required.
    pub name: OrgName,
    /// Repository-name patterns a repository must match one of. Default `["*"]`.
    pub include: Vec<NamePattern>,
    /// Repository-name patterns that leave a repository out (they win over
    /// `include`). Default none.
    pub exclude: Vec<NamePattern>,
    /// Archived repositories are synced too. Default `false`.
    pub include_archived: bool,
    /// Forks are synced too. Default `false`.
    pub include_forks: bool,
    /// Empty repositories (no commit yet) are synced too. Default `false`.
    pub include_empty: bool,
    /// Where each repository's team comes from. Default `config`.
    pub team_from: TeamFrom,
    /// Where the deployments of its repositories come from (a
    /// `[[github.repositories]]` entry overrides it for its repository).
    /// Default: the Deployments API.
    pub deployments: DeploymentsConfig,
}

impl OrganizationConfig {
    /// Whether the repository called `name` passes `include` and `exclude`.
    pub fn selects(&self, name: &str) -> bool {
        self.include.iter().any(|p| p.matches(name))
            && !self.exclude.iter().any(|p| p.matches(name))
    }
}

/// `[gitlab]`
#[derive(Debug, Clone)]
pub struct GitlabConfig {
    /// REST API v4 base URL. Default `https://gitlab.com/api/v4`; self-managed:
    /// `https://HOST/api/v4`, or `https://HOST/PREFIX/api/v4` under a relative URL
    /// root; `http://` is allowed (tests, simulators).
    pub api_url: ApiUrl,
    /// A personal, group or project access token with the `read_api` scope, sent
    /// as `PRIVATE-TOKEN`. Required; normally `"${GITLAB_TOKEN}"`. Never printed.
    pub token: SecretString,
    /// Time between two syncs. Default `5m`.
    pub poll_interval: Duration,
    /// How far back the first sync reads. Default `90d`; at least the longest window.
    pub lookback: Duration,
    /// The environments that count, compared case-insensitively; every
    /// environment of tier `production` counts too. Default `["production"]`; no
    /// duplicates (may be empty: then only the tier decides).
    pub production_environments: Vec<Environment>,
    /// Issues with any of these labels are incidents, as is every issue of type
    /// `incident`. Default `["incident"]`.
    pub incident_labels: Vec<LabelName>,
    /// Merged merge requests with any of these labels are rework. Default
    /// `["hotfix"]`; empty disables this rework criterion.
    pub rework_labels: Vec<LabelName>,
    /// `[[gitlab.projects]]`: at least one, no path twice.
    pub projects: Vec<ProjectConfig>,
}

/// `[[gitlab.projects]]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConfig {
    /// The project's full path (`group/subgroup/project`); the repository label
    /// is this path, lowercase. Required.
    pub path: RepoName,
    /// The team that owns it (the `team` label). Default `unassigned`.
    pub team: Team,
    /// Where its deployments come from. Default: the Deployments API.
    pub deployments: GitlabDeploymentsConfig,
}

/// `deployments = { from = ... }` of a GitLab project.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GitlabDeploymentsConfig {
    /// `from = "deployments"` (the default): GitLab's Deployments API.
    #[default]
    DeploymentsApi,
    /// `from = "pipelines"`: successful pipelines on `git_ref` (key `ref`) are
    /// deployments to `environment`. Both keys are required.
    Pipelines {
        git_ref: BranchName,
        environment: Environment,
    },
    /// `from = "push"`: deployments come from the push API; GitLab gives the
    /// commits (change sets), incidents and merge requests. No other key.
    Push,
    /// Never written in the file: the project is named in
    /// `[[argocd.applications]]`, which gives its deployments; GitLab gives the
    /// rest, as with `Push`.
    ArgoCd,
    /// Never written in the file: the project is named in `[[jenkins.jobs]]`,
    /// which gives its deployments; GitLab gives the rest.
    Jenkins,
}

impl GitlabDeploymentsConfig {
    /// The name a `409` gives for where a project's deployments come from.
    pub fn source_name(&self) -> &'static str {
        match self {
            GitlabDeploymentsConfig::DeploymentsApi => "gitlab (the Deployments API)",
            GitlabDeploymentsConfig::Pipelines { .. } => "gitlab (pipelines)",
            GitlabDeploymentsConfig::Push => "push",
            GitlabDeploymentsConfig::ArgoCd => "argocd",
            GitlabDeploymentsConfig::Jenkins => "jenkins",
        }
    }
}

/// The value of `deployments.from` of a GitLab project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitlabDeploymentsFrom {
    #[default]
    Deployments,
    Pipelines,
    Push,
}

/// `github.api`: which GitHub API reads deployments and their statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GithubApi {
    /// GraphQL for deployments with their statuses (the fewest requests).
    #[default]
    Graphql,
    /// REST only: a statuses request per deployment.
    Rest,
}

/// `[[github.repositories]]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryConfig {
    /// `owner/name`, compared and reported lowercase. Required.
    pub name: RepoName,
    /// The team that owns it (the `team` label). Default `unassigned`.
    pub team: Team,
    /// Where its deployments come from. Default: the Deployments API.
    pub deployments: DeploymentsConfig,
}

/// `deployments = { from = ... }` of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeploymentsConfig {
    /// `from = "deployments"` (the default): the GitHub Deployments API and its
    /// statuses; no other key is allowed.
    #[default]
    DeploymentsApi,
    /// `from = "workflow_runs"`: successful runs of `workflow` on `branch` are
    /// deployments to `environment`. All three keys are required.
    WorkflowRuns {
        workflow: WorkflowName,
        branch: BranchName,
        environment: Environment,
    },
    /// `from = "push"`: deployments come from the push API; GitHub gives the
    /// commits (change sets), incidents and pull requests. No other key.
    Push,
    /// Never written in the file: the repository is named in
    /// `[[argocd.applications]]`, which gives its deployments; GitHub gives the
    /// rest, as with `Push`.
    ArgoCd,
    /// Never written in the file: the repository is named in `[[jenkins.jobs]]`,
    /// which gives its deployments; GitHub gives the rest.
    Jenkins,
}

impl DeploymentsConfig {
    /// The name a `409` gives for where a repository's deployments come from.
    pub fn source_name(&self) -> &'static str {
        match self {
            DeploymentsConfig::DeploymentsApi => "github (the Deployments API)",
            DeploymentsConfig::WorkflowRuns { .. } => "github (workflow runs)",
            DeploymentsConfig::Push => "push",
            DeploymentsConfig::ArgoCd => "argocd",
            DeploymentsConfig::Jenkins => "jenkins",
        }
    }

    /// Whether GitHub reads this repository's deployments itself (else another
    /// source brings them and GitHub gives only their change sets).
    pub fn read_from_github(&self) -> bool {
        matches!(
            self,
            DeploymentsConfig::DeploymentsApi | DeploymentsConfig::WorkflowRuns { .. }
        )
    }
}

/// The value of `deployments.from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentsFrom {
    #[default]
    Deployments,
    WorkflowRuns,
    Push,
}

/// A key of a table as the loader saw it: absent, present with a bad value (already
/// reported), or present and valid.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field<T> {
    Absent,
    Invalid,
    Valid(T),
}

impl<T> Field<T> {
    /// The value, the default when absent, `None` when invalid.
    fn or_else(self, default: impl FnOnce() -> T) -> Option<T> {
        match self {
            Field::Absent => Some(default()),
            Field::Invalid => None,
            Field::Valid(value) => Some(value),
        }
    }

    fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }

    /// The valid value mapped by `f`; absence and invalidity kept.
    fn map_valid<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Absent => Field::Absent,
            Field::Invalid => Field::Invalid,
            Field::Valid(value) => Field::Valid(f(value)),
        }
    }

    fn valid(self) -> Option<T> {
        match self {
            Field::Valid(value) => Some(value),
            _ => None,
        }
    }
}

const ONLY_WITH_WORKFLOW_RUNS: &str = r#"only allowed with from = "workflow_runs""#;
const REQUIRED_WITH_WORKFLOW_RUNS: &str = r#"required with from = "workflow_runs""#;

impl DeploymentsConfig {
    /// Combines the keys of a `deployments` table; on failure, the problem of each key
    /// (`workflow`, `branch`, `environment`). Keys that were present but invalid have
    /// been reported already and are not reported again.
    fn resolve(
        from: DeploymentsFrom,
        workflow: Field<WorkflowName>,
        branch: Field<BranchName>,
        environment: Field<Environment>,
    ) -> Result<DeploymentsConfig, Vec<(&'static str, &'static str)>> {
        let presence = [
            ("workflow", workflow.is_present()),
            ("branch", branch.is_present()),
            ("environment", environment.is_present()),
        ];
        match from {
            DeploymentsFrom::Deployments | DeploymentsFrom::Push => {
                let extra: Vec<_> = presence
                    .iter()
                    .filter(|(_, present)| *present)
                    .map(|(key, _)| (*key, ONLY_WITH_WORKFLOW_RUNS))
                    .collect();
                if !extra.is_empty() {
                    Err(extra)
                } else if from == DeploymentsFrom::Push {
                    Ok(DeploymentsConfig::Push)
                } else {
                    Ok(DeploymentsConfig::DeploymentsApi)
                }
            }
            DeploymentsFrom::WorkflowRuns => {
                let missing: Vec<_> = presence
                    .iter()
                    .filter(|(_, present)| !*present)
                    .map(|(key, _)| (*key, REQUIRED_WITH_WORKFLOW_RUNS))
                    .collect();
                match (workflow.valid(), branch.valid(), environment.valid()) {
                    (Some(workflow), Some(branch), Some(environment)) => {
                        Ok(DeploymentsConfig::WorkflowRuns {
                            workflow,
                            branch,
                            environment,
                        })
                    }
                    _ => Err(missing),
                }
            }
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// `error`, `warn`, `info` (default), `debug` or `trace`; `RUST_LOG` overrides.
    pub level: LogLevel,
}

impl Config {
    /// Reads, expands (from the process environment) and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, |name| std::env::var(name))
    }

    /// [`Config::load`] with environment variables from `lookup`.
    pub fn load_with<F>(path: &Path, lookup: F) -> Result<Config, ConfigError>
    where
        F: Fn(&str) -> Result<String, VarError>,
    {
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let text = read_bounded(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = match String::from_utf8(text) {
            Ok(text) => text,
            Err(error) => {
                let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
                let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
                return Err(invalid(vec![Problem::at_line(
                    line,
                    "the file is not valid UTF-8".to_owned(),
                )]));
            }
        };
        Config::from_toml_str(&text, lookup).map_err(invalid)
    }

    /// Parses `text`, expands `${NAME}` in its string values with `lookup` and
    /// checks it; on failure returns every problem, ordered by line.
    pub fn from_toml_str<F>(text: &str, lookup: F) -> Result<Config, Vec<Problem>>
    where
        F: Fn(&str) -> Result<String, VarError>,
    {
        reader::read(text, lookup)
    }

    /// Checks the rules between values of a `Config` built in code: what the loader
    /// checks beyond each value's type. A `Config` from [`Config::load`] always passes.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let problems = rules::check_config(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// What the engine needs: windows, thresholds, production environments (the
    /// push API's for repositories no code host reads, GitHub's for GitHub's,
    /// GitLab's for GitLab's), labels (`[github]`'s and `[gitlab]`'s together:
    /// the engine has one list of each), lead-time start, rollback policy and the
    /// team of every repository. Without `[github]`, the GitHub keys' defaults.
    pub fn engine_config(&self) -> EngineConfig {
        let labels = |labels: &[LabelName]| {
            labels
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect::<Vec<String>>()
        };
        let mut teams: BTreeMap<RepoName, Team> = self
            .repositories
            .iter()
            .map(|repo| (repo.name.clone(), repo.team.clone()))
            .collect();
        teams.extend(
            self.github_repositories()
                .iter()
                .map(|repo| (repo.name.clone(), repo.team.clone())),
        );
        teams.extend(
            self.gitlab_projects()
                .iter()
                .map(|project| (project.path.clone(), project.team.clone())),
        );
        let (production, mut incident, mut rework, start, rollback) = match &self.github {
            Some(github) => (
                github.production_environments.clone(),
                labels(&github.incident_labels),
                labels(&github.rework_labels),
                github.lead_time_start,
                github.rollback_is_failure,
            ),
            None => (
                defaults::production_environments(),
                labels(&defaults::incident_labels()),
                labels(&defaults::rework_labels()),
                LeadTimeStart::default(),
                defaults::rollback_is_failure(),
            ),
        };
        // Repositories no code host reads (listed in [[repositories]] or pushed
        // unlisted) take the push API's production environments; GitHub's
        // repositories keep GitHub's, GitLab's projects take GitLab's (and the
        // environments of tier production their source declares).
        let (production, mut production_by_repository) = match &self.ingest {
            Some(ingest) if ingest.production_environments != production => (
                ingest.production_environments.clone(),
                self.github_repositories()
                    .iter()
                    .map(|repo| (repo.name.clone(), production.clone()))
                    .collect(),
            ),
            _ => (production, BTreeMap::new()),
        };
        if let Some(gitlab) = &self.gitlab {
            for project in &gitlab.projects {
                production_by_repository
                    .insert(project.path.clone(), gitlab.production_environments.clone());
            }
            // GitLab's incidents are selected by the source (type or label); its
            // rework labels join GitHub's.
            for (list, extra) in [
                (&mut incident, &gitlab.incident_labels),
                (&mut rework, &gitlab.rework_labels),
            ] {
                for label in extra {
                    if !list
                        .iter()
                        .any(|l: &String| l.eq_ignore_ascii_case(label.as_str()))
                    {
                        list.push(label.as_str().to_owned());
                    }
                }
            }
        }
        EngineConfig {
            windows: self.metrics.engine_windows(),
            production_environments: production,
            production_by_repository,
            incident_labels: incident,
            rework_labels: rework,
            lead_time_start: start,
            rollback_is_failure: rollback,
            thresholds: self.metrics.thresholds.to_thresholds(),
            teams,
        }
    }

    /// `[[github.repositories]]`; none without `[github]`.
    pub fn github_repositories(&self) -> &[RepositoryConfig] {
        self.github
            .as_ref()
            .map_or(&[], |github| github.repositories.as_slice())
    }

    /// `[[argocd.applications]]`; none without `[argocd]`.
    pub fn argocd_applications(&self) -> &[ArgoCdApplicationConfig] {
        self.argocd
            .as_ref()
            .map_or(&[], |argocd| argocd.applications.as_slice())
    }

    /// `[[jenkins.jobs]]`; none without `[jenkins]`.
    pub fn jenkins_jobs(&self) -> &[JenkinsJobConfig] {
        self.jenkins
            .as_ref()
            .map_or(&[], |jenkins| jenkins.jobs.as_slice())
    }

    /// Where each configured repository is read from, in configuration order
    /// (for people: the landing page): `GitHub`, `GitLab` and how deployments
    /// are read (their own API, Argo CD or Jenkins), or the push API.
    pub fn repository_sources(&self) -> Vec<(RepoName, &'static str)> {
        let github = self.github_repositories().iter().map(|repo| {
            let source = match repo.deployments {
                DeploymentsConfig::DeploymentsApi => "GitHub (Deployments API)",
                DeploymentsConfig::WorkflowRuns { .. } => "GitHub (workflow runs)",
                DeploymentsConfig::Push => "GitHub (deployments pushed)",
                DeploymentsConfig::ArgoCd => "GitHub (deployments from Argo CD)",
                DeploymentsConfig::Jenkins => "GitHub (deployments from Jenkins)",
            };
            (repo.name.clone(), source)
        });
        let gitlab = self.gitlab_projects().iter().map(|project| {
            let source = match project.deployments {
                GitlabDeploymentsConfig::DeploymentsApi => "GitLab (Deployments API)",
                GitlabDeploymentsConfig::Pipelines { .. } => "GitLab (pipelines)",
                GitlabDeploymentsConfig::Push => "GitLab (deployments pushed)",
                GitlabDeploymentsConfig::ArgoCd => "GitLab (deployments from Argo CD)",
                GitlabDeploymentsConfig::Jenkins => "GitLab (deployments from Jenkins)",
            };
            (project.path.clone(), source)
        });
        let pushed = self
            .repositories
            .iter()
            .map(|repo| (repo.name.clone(), "push API"));
        github.chain(gitlab).chain(pushed).collect()
    }

    /// `[[gitlab.projects]]`; none without `[gitlab]`.
    pub fn gitlab_projects(&self) -> &[ProjectConfig] {
        self.gitlab
            .as_ref()
            .map_or(&[], |gitlab| gitlab.projects.as_slice())
    }

    /// The repositories a code host syncs: `[[github.repositories]]`, then
    /// `[[gitlab.projects]]` (their paths).
    pub fn synced_repositories(&self) -> Vec<RepoName> {
        self.github_repositories()
            .iter()
            .map(|repo| repo.name.clone())
            .chain(self.gitlab_projects().iter().map(|p| p.path.clone()))
            .collect()
    }

    /// Every repository configured by name: `[[github.repositories]]`,
    /// `[[gitlab.projects]]`, then `[[repositories]]`.
    pub fn all_repositories(&self) -> Vec<(RepoName, Team)> {
        self.github_repositories()
            .iter()
            .map(|repo| (repo.name.clone(), repo.team.clone()))
            .chain(
                self.gitlab_projects()
                    .iter()
                    .map(|project| (project.path.clone(), project.team.clone())),
            )
            .chain(
                self.repositories
                    .iter()
                    .map(|repo| (repo.name.clone(), repo.team.clone())),
            )
            .collect()
    }

    /// The time between two syncs: the shorter of `github.poll_interval` and
    /// `gitlab.poll_interval` (one cycle syncs every source), or the default
    /// without either (the daemon then only recomputes on that rhythm).
    pub fn poll_interval(&self) -> Duration {
        let github = self.github.as_ref().map(|github| github.poll_interval);
        let gitlab = self.gitlab.as_ref().map(|gitlab| gitlab.poll_interval);
        match (github, gitlab) {
            (Some(a), Some(b)) => {
                if a.as_secs() <= b.as_secs() {
                    a
                } else {
                    b
                }
            }
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => defaults::poll_interval(),
        }
    }
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes; is this the configuration file?"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
