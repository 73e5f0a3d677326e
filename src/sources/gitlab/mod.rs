//! The GitLab source: reads deployments (the Deployments API or pipelines),
//! change sets (the repository's commit graph; a compare where the graph
//! cannot decide, or when a single change set is undecided), merged merge requests and incidents of GitLab.com or a
//! self-managed GitLab through its REST API v4, incrementally.
//!
//! One [`GitlabSource`] serves every configured project with one
//! [`client::Client`] (one governor per token and host). A project sync runs
//! these steps in order, each writing its own batch with its own cursor (so a
//! failure in a later step keeps the earlier ones, and the next sync resumes
//! each step where it stopped):
//!
//! 1. `deployments` (with `environments`: which of them are of tier
//!    `production`) or `pipelines`: what changed since the cursor
//!    (`updated_after`, `order_by=updated_at`), and on the first sync one older
//!    successful deployment per production environment as the base of the first
//!    change set;
//! 2. `changes`: the deployed history through the commits list (`parent_ids`)
//!    until the ledger's `undecided_change_sets` is empty, and a compare for a
//!    pair the history cannot decide; a single undecided pair (a sync after one
//!    deployment) is one compare instead;
//! 3. `merge_requests`: merged merge requests (rework labels, PR-based
//!    lead-time starts, which also read each one's commits);
//! 4. `incidents`: issues of type `incident` or with an incident label.
//!
//! `docs/sources.md` § GitLab describes what is read, the cursors and the request
//! cost.
//!
//! Not here: webhooks, GitLab's GraphQL API, the pull requests of changes
//! merged before the lookback under a PR-based start (the GitHub source looks
//! them up; here they start from their commits), and anything about what counts
//! as a DORA event beyond skipping what can never count (canceled deployments,
//! unmerged merge requests, issues that are no incidents).

mod changes;
mod client;
mod deployments;
mod error;
mod incidents;
mod merge_requests;
mod models;
mod pipelines;
pub mod rules;

pub use client::{
    Endpoint, API_RESOURCE, CONNECT_TIMEOUT, MAX_ERROR_BODY_BYTES, MAX_PAGES, MAX_RESPONSE_BYTES,
    PER_PAGE, READ_TIMEOUT,
};
pub use error::GitlabError;

use super::{ApiHealth, RepoSyncStats, Source, SourceError, SyncContext};
use crate::config::{GitlabConfig, GitlabDeploymentsConfig, LabelName};
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Environment, RepoName, Timestamp};
use crate::dora::LeadTimeStart;
use crate::sources::governor::RetryPolicy;
use crate::sources::Ledger;
use bytes::Bytes;
use client::{Client, Pages};
use futures::future::BoxFuture;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The `source` label and sync-status name of this source.
pub const SOURCE_NAME: &str = "gitlab";

/// Characters escaped in a path segment (the project's full path is one, its
/// `/` as `%2F`, as GitLab's "URL-encoded path" wants).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What every project sync needs from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    lookback_seconds: i64,
    production: Vec<Environment>,
    incident_labels: Vec<LabelName>,
    rework_labels: Vec<LabelName>,
    lead_time_start: LeadTimeStart,
}

/// The GitLab source for the projects of one `[gitlab]` configuration.
#[derive(Debug)]
pub struct GitlabSource {
    client: Client,
    settings: Settings,
    repositories: Vec<RepoName>,
    deployments: HashMap<RepoName, GitlabDeploymentsConfig>,
    /// Unreadable items skipped per project since the process started.
    skipped: Mutex<BTreeMap<RepoName, u64>>,
}

impl GitlabSource {
    /// A source for `config` under `lead_time_start` (the engine's: merged merge
    /// requests are read with their commits under a PR-based start). Fails only
    /// when the HTTP client cannot be set up. No request is made here.
    pub fn new(
        config: &GitlabConfig,
        lead_time_start: LeadTimeStart,
    ) -> Result<GitlabSource, GitlabError> {
        GitlabSource::with_policy(config, lead_time_start, RetryPolicy::default())
    }

    /// [`GitlabSource::new`] with `policy` for retries and rate-limit waits.
    pub fn with_policy(
        config: &GitlabConfig,
        lead_time_start: LeadTimeStart,
        policy: RetryPolicy,
    ) -> Result<GitlabSource, GitlabError> {
        let client = Client::with_policy(config.api_url.as_url(), &config.token, policy)?;
        Ok(GitlabSource {
            client,
            settings: Settings {
                lookback_seconds: i64::try_from(config.lookback.as_secs()).unwrap_or(i64::MAX),
                production: config.production_environments.clone(),
                incident_labels: config.incident_labels.clone(),
                rework_labels: config.rework_labels.clone(),
                lead_time_start,
            },
            repositories: config.projects.iter().map(|p| p.path.clone()).collect(),
            deployments: config
                .projects
                .iter()
                .map(|p| (p.path.clone(), p.deployments.clone()))
                .collect(),
            skipped: Mutex::new(BTreeMap::new()),
        })
    }

    /// `gitlab.api_url` as requests use it (no trailing slash).
    pub fn api_url(&self) -> &str {
        self.client.base()
    }
}

impl Source for GitlabSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    fn repositories(&self) -> Vec<RepoName> {
        self.repositories.clone()
    }

    fn sync_repository<'a>(
        &'a self,
        repository: &'a RepoName,
        context: &'a SyncContext,
    ) -> BoxFuture<'a, Result<RepoSyncStats, SourceError>> {
        Box::pin(async move {
            let deployments = self
                .deployments
                .get(repository)
                .cloned()
                .unwrap_or_default();
            let sync = ProjectSync {
                client: &self.client,
                settings: &self.settings,
                repository,
                project: segment(repository.as_str()),
                context,
                requests: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                tier_production: Mutex::new(Vec::new()),
                stats: Mutex::new(RepoSyncStats::default()),
            };
            let result = sync.run(&deployments).await;
            let mut stats = sync.stats.lock().map(|s| *s).unwrap_or_default();
            stats.requests = sync.requests.load(Ordering::Relaxed);
            stats.skipped_items = sync.skipped.load(Ordering::Relaxed);
            if stats.skipped_items > 0 {
                if let Ok(mut skipped) = self.skipped.lock() {
                    *skipped.entry(repository.clone()).or_default() += stats.skipped_items;
                }
            }
            // A successful sync leaves the project's history complete back to
            // the lookback's start (a later one resumes where this stopped).
            let history_since = Some(sync.lookback_start());
            result.map(|first_sync| RepoSyncStats {
                first_sync,
                history_since,
                ..stats
            })
        })
    }

    fn api_health(&self) -> ApiHealth {
        let (requests, governor) = self.client.health();
        ApiHealth::from_governor(requests, governor, &self.skipped, Vec::new())
    }
}

/// One project sync: the shared pieces and the counters of this sync.
struct ProjectSync<'a> {
    client: &'a Client,
    settings: &'a Settings,
    repository: &'a RepoName,
    /// The project's id in URLs: its full path, URL-encoded.
    project: String,
    context: &'a SyncContext,
    requests: AtomicU64,
    skipped: AtomicU64,
    /// The environments of tier `production` (step 1 learns them).
    tier_production: Mutex<Vec<Environment>>,
    stats: Mutex<RepoSyncStats>,
}

impl ProjectSync<'_> {
    /// Runs every step; returns whether this was the project's first sync.
    async fn run(&self, deployments: &GitlabDeploymentsConfig) -> Result<bool, SourceError> {
        let first = match deployments {
            GitlabDeploymentsConfig::DeploymentsApi => self.sync_deployments().await?,
            GitlabDeploymentsConfig::Pipelines {
                git_ref,
                environment,
            } => self.sync_pipelines(git_ref.as_str(), environment).await?,
            // The push API, Argo CD or Jenkins brings the deployments; the
            // steps below read their change sets, incidents and merge requests.
            GitlabDeploymentsConfig::Push
            | GitlabDeploymentsConfig::ArgoCd
            | GitlabDeploymentsConfig::Jenkins => false,
        };
        self.sync_changes().await?;
        self.sync_merge_requests().await?;
        self.sync_incidents().await?;
        Ok(first)
    }

    /// `{api}/projects/{project}{path}?{query}`.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/projects/{}{path}", self.client.base(), self.project);
        if !query.is_empty() {
            let mut serializer = form_urlencoded::Serializer::new(String::new());
            for (name, value) in query {
                serializer.append_pair(name, value);
            }
            url.push('?');
            url.push_str(&serializer.finish());
        }
        url
    }

    /// The next page of `pages` (counted as this sync's request).
    async fn next_page(&self, pages: &mut Pages) -> Result<Option<Bytes>, GitlabError> {
        pages
            .next(self.client, &self.context.shutdown, &self.requests)
            .await
    }

    /// One single-object GET (counted).
    async fn get(&self, endpoint: Endpoint, url: &str) -> Result<Bytes, GitlabError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let page = self
            .client
            .get(endpoint, url, &self.context.shutdown)
            .await?;
        Ok(page.body)
    }

    /// The item, or `None` after counting and logging why it was skipped.
    fn item<T>(&self, endpoint: Endpoint, item: Result<T, models::Skip>) -> Option<T> {
        match item {
            Ok(item) => Some(item),
            Err(reason) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    repository = %self.repository,
                    endpoint = endpoint.template(),
                    reason = %self.client.redactor().clean(&reason),
                    "skipping an item GitLab returned that cannot be read"
                );
                None
            }
        }
    }

    /// Keeps the token out of what is handed on to be kept: GitLab's answers
    /// are untrusted, and a server could echo the `PRIVATE-TOKEN` into any
    /// value. A deployment to an environment whose name holds the token is
    /// dropped (counted and logged as an item that cannot be read), as is such
    /// a tier-production name; in free text (commit messages, labels, a
    /// cursor's opaque part) the token is masked.
    fn keep_token_out(&self, batch: &mut SyncBatch) {
        let redactor = self.client.redactor();
        let holds = |text: &str| redactor.redact(text) != text;
        let listed = batch.deployments.len();
        batch
            .deployments
            .retain(|deployment| !holds(deployment.environment.as_str()));
        for _ in batch.deployments.len()..listed {
            self.item::<()>(
                Endpoint::Deployments,
                Err("environment: a name holding the token".to_owned()),
            );
        }
        if let Some(names) = batch.production_environments.as_mut() {
            names.retain(|name| !holds(name.as_str()));
        }
        let labels = batch
            .incidents
            .iter_mut()
            .flat_map(|incident| incident.labels.iter_mut())
            .chain(
                batch
                    .pull_requests
                    .iter_mut()
                    .flat_map(|pull| pull.labels.iter_mut()),
            );
        let messages = batch.commits.iter_mut().map(|commit| &mut commit.message);
        let opaque = batch
            .cursors
            .iter_mut()
            .filter_map(|(_, cursor)| cursor.opaque.as_mut());
        for text in labels.chain(messages).chain(opaque) {
            if holds(text) {
                *text = redactor.redact(text);
            }
        }
    }

    /// Hands `batch` (with its cursors) on, to be kept in one transaction,
    /// the token kept out of it ([`Self::keep_token_out`]).
    async fn apply(&self, mut batch: SyncBatch) -> Result<(), SourceError> {
        self.keep_token_out(&mut batch);
        if batch.is_empty() {
            return Ok(());
        }
        let stats = self.context.sink.keep(batch).await?;
        if let Ok(mut total) = self.stats.lock() {
            total.add_applied(&stats);
            total.batches += 1;
        }
        Ok(())
    }

    fn ledger(&self) -> &dyn Ledger {
        self.context.ledger.as_ref()
    }

    async fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, SourceError> {
        Ok(self.ledger().cursor(key.clone()).await?)
    }

    fn cursor_key(&self, name: String) -> CursorKey {
        CursorKey::new(self.repository.clone(), name)
    }

    /// The start of the lookback window: where a first sync begins.
    fn lookback_start(&self) -> Timestamp {
        Timestamp(
            self.context
                .now
                .0
                .saturating_sub(self.settings.lookback_seconds),
        )
    }

    /// The production environments: the configured ones, then those of tier
    /// `production` step 1 found (each once, case-insensitively).
    fn production(&self) -> Vec<Environment> {
        let mut production = self.settings.production.clone();
        if let Ok(tiers) = self.tier_production.lock() {
            for environment in tiers.iter() {
                if !production.iter().any(|p| p.matches(environment.as_str())) {
                    production.push(environment.clone());
                }
            }
        }
        production
    }

    fn check_cancelled(&self) -> Result<(), SourceError> {
        if self.context.shutdown.is_cancelled() {
            Err(SourceError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The longest cursor name kept readable; a longer one ends in a hash of its
/// settings instead.
const MAX_READABLE_CURSOR: usize = 200;

/// A cursor endpoint name: `base` plus the settings that decide what its step
/// reads, so that changing them gives that step a first sync again.
fn cursor_name(base: &str, settings: &[(&str, String)]) -> String {
    use sha2::{Digest, Sha256};
    let query: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let name = if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", query.join("&"))
    };
    if name.len() <= MAX_READABLE_CURSOR {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{base}#{hex}")
}

/// Escapes one URL path segment.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// The newest of `seen` and `kept` (a cursor never moves back).
fn newest(seen: Option<Timestamp>, kept: Timestamp) -> Timestamp {
    seen.map_or(kept, |s| s.max(kept))
}

/// The prefix of the first sync's cutoff in a cursor's `opaque`.
const CUTOFF_PREFIX: &str = "cutoff=";

/// The cutoff kept in a cursor's `opaque` (`cutoff=<epoch seconds>`).
fn kept_cutoff(opaque: Option<&str>) -> Option<Timestamp> {
    opaque?
        .strip_prefix(CUTOFF_PREFIX)?
        .parse()
        .ok()
        .map(Timestamp)
}

fn cutoff_opaque(cutoff: Timestamp) -> String {
    format!("{CUTOFF_PREFIX}{}", cutoff.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_paths_are_one_encoded_segment() {
        assert_eq!(segment("acme/platform/api"), "acme%2Fplatform%2Fapi");
        assert_eq!(segment("a-b_c.d/e"), "a-b_c.d%2Fe");
    }

    #[test]
    fn cutoffs_round_trip_and_cursor_names_are_bounded() {
        assert_eq!(
            kept_cutoff(Some(&cutoff_opaque(Timestamp(42)))),
            Some(Timestamp(42))
        );
        assert_eq!(kept_cutoff(Some("cutoff=soon")), None);
        assert_eq!(kept_cutoff(None), None);
        let long = cursor_name("issues", &[("labels", "l".repeat(500))]);
        assert_eq!(long.len(), "issues#".len() + 16);
        assert_eq!(cursor_name("deployments", &[]), "deployments");
    }
}
