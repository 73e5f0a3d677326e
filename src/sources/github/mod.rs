//! The GitHub source: reads deployments (Deployments API or Actions workflow runs),
//! change sets (compare), incidents (labelled issues) and merged pull requests
//! through the REST API (github.com or GitHub Enterprise Server), incrementally.
//!
//! One [`GithubSource`] serves every configured repository with one HTTP
//! [`client::Client`]. A repository sync runs these steps in order, each writing its
//! own batch with its own cursor (so a failure in a later step keeps the earlier
//! ones, and the next sync resumes each step where it stopped):
//!
//! 1. `deployments` or `workflow_runs`: new and still-pending deployments, and on
//!    the first sync one older successful deployment per production environment as
//!    the base of the first change set;
//! 2. `changes`: the change set of every consecutive pair of successful
//!    deployments the ledger lacks (`Ledger::missing_compares`): with GraphQL the
//!    deployed history in pages of 100 commits (`history.rs`) and a compare only
//!    for a pair that history cannot decide; with REST a compare per pair;
//! 3. `incidents`: issues with an incident label, per label;
//! 4. `pulls`: merged pull requests (rework labels, PR-based lead-time starts,
//!    which also read each one's commits);
//! 5. `pull_lookup` (PR-based lead-time starts only): the pull requests of the
//!    deployed changes no kept pull request names (merged before the lookback,
//!    or none: a direct push), asked once per change;
//! 6. `pull_reviews` (PR-based lead-time starts only): the first review of the
//!    pull requests of changes deployed within the longest window that no
//!    listing read (`reviews.rs`).
//!
//! `docs/sources.md` describes what is read, the cursors and the request cost.
//!
//! With `github.api = "graphql"` (the default) each cycle starts with one query
//! asking every repository for its newest deployment (`check.rs`, aliases), step 1
//! lists deployments with their statuses through GraphQL (`graphql.rs`) instead
//! of a statuses request per deployment, step 2 reads history instead of a compare
//! per deployment, and step 4's first sync lists only the merged pull requests it
//! keeps (under a PR-based lead-time start, on the pages of steps 1 and 2 first:
//! `pulls.rs`).
//!
//! Not here: webhooks, GitHub Apps authentication, and anything about
//! what counts as a DORA event beyond skipping what can never count (non-production
//! deployments, unmerged pull requests).

mod answer;
mod changes;
mod check;
mod client;
mod deployments;
mod error;
mod graphql;
mod history;
mod incidents;
mod models;
mod pull_lookup;
mod pulls;
mod reviews;
pub mod rules;
mod workflow_runs;

pub use crate::sources::governor::{
    Attempt, Governor, GovernorHealth, RetryPolicy, RetryReason, DEFAULT_BASE_BACKOFF,
    DEFAULT_MAX_BACKOFF, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RATE_LIMIT_WAIT, DEFAULT_MAX_RETRIES,
    DEFAULT_MIN_SECONDARY_WAIT,
};
pub use client::{
    next_link, Endpoint, CONNECT_TIMEOUT, MAX_ERROR_BODY_BYTES, MAX_PAGES, MAX_RESPONSE_BYTES,
    PER_PAGE, READ_TIMEOUT,
};
pub use error::{GithubError, MAX_SERVER_MESSAGE_CHARS};

use super::{ApiHealth, RepoSyncStats, Source, SourceError, SyncContext};
use crate::config::{DeploymentsConfig, GithubConfig, LabelName};
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Environment, RepoName, Timestamp};
use crate::dora::LeadTimeStart;
use crate::sources::Ledger;
use bytes::Bytes;
use client::{Client, Pages};
use futures::future::BoxFuture;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The `source` label and sync-status name of this source.
pub const SOURCE_NAME: &str = "github";

/// Characters escaped in a URL path segment: everything but unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What every repository sync needs from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    lookback_seconds: i64,
    /// The review window (`reviews.rs`): the longest configured window, at most
    /// the lookback.
    review_window_seconds: i64,
    production: Vec<Environment>,
    incident_labels: Vec<LabelName>,
    rework_labels: Vec<LabelName>,
    lead_time_start: LeadTimeStart,
    api: crate::config::GithubApi,
}

/// The GitHub source for the repositories of one `[github]` configuration.
#[derive(Debug)]
pub struct GithubSource {
    client: Client,
    settings: Settings,
    repositories: Vec<RepoName>,
    deployments: HashMap<RepoName, DeploymentsConfig>,
    /// Unreadable items skipped per repository since the process started (the
    /// `dora_collector_skipped_items_total` counter).
    skipped: Mutex<BTreeMap<RepoName, u64>>,
    /// This cycle's GraphQL check: each repository's newest deployment
    /// (`check.rs`); taken by the repository's sync.
    checked: Mutex<HashMap<RepoName, check::Newest>>,
    /// This cycle's GraphQL check: the pending deployments it saw still pending.
    still_pending: Mutex<HashMap<RepoName, HashSet<u64>>>,
}

impl GithubSource {
    /// A source for `config`; fails only when the HTTP client cannot be set up
    /// (an unusable token or URL). No request is made here. Must be called within
    /// a tokio runtime.
    pub fn new(config: &GithubConfig) -> Result<GithubSource, GithubError> {
        GithubSource::with_policy(config, RetryPolicy::default())
    }

    /// [`GithubSource::new`] with `policy` for retries and rate-limit waits (tests
    /// inject short waits).
    pub fn with_policy(
        config: &GithubConfig,
        policy: RetryPolicy,
    ) -> Result<GithubSource, GithubError> {
        let client = Client::with_policy(config.api_url.as_url(), &config.token, policy)?;
        let lookback_seconds = i64::try_from(config.lookback.as_secs()).unwrap_or(i64::MAX);
        Ok(GithubSource {
            client,
            settings: Settings {
                lookback_seconds,
                review_window_seconds: lookback_seconds,
                production: config.production_environments.clone(),
                incident_labels: config.incident_labels.clone(),
                rework_labels: config.rework_labels.clone(),
                lead_time_start: config.lead_time_start,
                api: config.api,
            },
            repositories: config.repositories.iter().map(|r| r.name.clone()).collect(),
            deployments: config
                .repositories
                .iter()
                .map(|r| (r.name.clone(), r.deployments.clone()))
                .collect(),
            skipped: Mutex::new(BTreeMap::new()),
            checked: Mutex::new(HashMap::new()),
            still_pending: Mutex::new(HashMap::new()),
        })
    }

    /// The source reading first reviews only where they can matter: for the
    /// changes deployed within `windows` (the configured `metrics.windows`; the
    /// longest counts, at most the lookback). Without it, within the lookback.
    pub fn with_review_window(mut self, windows: &[crate::config::Duration]) -> GithubSource {
        if let Some(longest) = windows.iter().map(|w| w.as_secs()).max() {
            let longest = i64::try_from(longest).unwrap_or(i64::MAX);
            self.settings.review_window_seconds = longest.min(self.settings.lookback_seconds);
        }
        self
    }

    /// `github.api_url` as requests use it (no trailing slash).
    pub fn api_url(&self) -> &str {
        self.client.base()
    }
}

impl Source for GithubSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    fn repositories(&self) -> &[RepoName] {
        &self.repositories
    }

    fn prepare_cycle<'a>(&'a self, context: &'a SyncContext) -> BoxFuture<'a, ()> {
        Box::pin(self.check_cycle(context))
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
            let checked = self
                .checked
                .lock()
                .ok()
                .and_then(|mut checked| checked.remove(repository));
            let still_pending = self
                .still_pending
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(repository))
                .unwrap_or_default();
            let sync = RepoSync {
                checked,
                still_pending,
                client: &self.client,
                settings: &self.settings,
                repository,
                context,
                requests: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                page_sizes: answer::PageSizes::new(),
                riding: Mutex::new(None),
                answered: Mutex::new(HashMap::new()),
                reviews_read: Mutex::new(HashSet::new()),
                stats: Mutex::new(RepoSyncStats::default()),
            };
            let result = sync.run(&deployments).await;
            let mut stats = sync.stats.lock().map(|s| *s).unwrap_or_default();
            stats.requests = sync.requests.load(Ordering::Relaxed);
            stats.skipped_items = sync.skipped.load(Ordering::Relaxed);
            // Counted whether the sync succeeded or not: the items were skipped.
            if stats.skipped_items > 0 {
                if let Ok(mut skipped) = self.skipped.lock() {
                    *skipped.entry(repository.clone()).or_default() += stats.skipped_items;
                }
            }
            result.map(|first_sync| RepoSyncStats {
                first_sync,
                ..stats
            })
        })
    }

    fn api_health(&self) -> ApiHealth {
        let (requests, governor) = self.client.health();
        ApiHealth::from_governor(requests, governor, &self.skipped, Vec::new())
    }
}

/// One repository sync: the shared pieces and the counters of this sync.
struct RepoSync<'a> {
    /// This cycle's GraphQL check of the newest deployment, when there was one.
    checked: Option<check::Newest>,
    /// Pending deployments the check saw still pending (no re-check needed).
    still_pending: HashSet<u64>,
    client: &'a Client,
    settings: &'a Settings,
    repository: &'a RepoName,
    context: &'a SyncContext,
    requests: AtomicU64,
    skipped: AtomicU64,
    /// The GraphQL page sizes of this sync (halved while GitHub times out).
    page_sizes: answer::PageSizes,
    /// Step 4's listing while it rides on the pages of steps 1 and 2 (a first
    /// sync under a PR-based lead-time start through GraphQL).
    riding: Mutex<Option<pulls::RidingPulls>>,
    /// The merged pull requests of the commits this sync's pages named them for
    /// (`associatedPullRequests`), for step 5.
    answered: Mutex<HashMap<crate::domain::CommitSha, Vec<u64>>>,
    /// The pull requests whose first review this sync read (step 6 skips them).
    reviews_read: Mutex<HashSet<u64>>,
    stats: Mutex<RepoSyncStats>,
}

impl RepoSync<'_> {
    /// Runs every step; returns whether this was the repository's first sync.
    async fn run(&self, deployments: &DeploymentsConfig) -> Result<bool, SourceError> {
        self.start_riding_pulls().await?;
        let first = match deployments {
            DeploymentsConfig::DeploymentsApi => self.sync_deployments().await?,
            DeploymentsConfig::WorkflowRuns {
                workflow,
                branch,
                environment,
            } => {
                self.sync_workflow_runs(workflow.as_str(), branch.as_str(), environment)
                    .await?
            }
            // The push API, Argo CD or Jenkins brings the deployments; the steps
            // below read their change sets, incidents and pull requests.
            DeploymentsConfig::Push | DeploymentsConfig::ArgoCd | DeploymentsConfig::Jenkins => {
                false
            }
        };
        self.sync_changes().await?;
        for label in &self.settings.incident_labels {
            self.sync_incidents(label).await?;
        }
        self.sync_pulls().await?;
        self.sync_pull_lookup().await?;
        self.sync_pull_reviews().await?;
        Ok(first)
    }

    /// `{api}/repos/{owner}/{repo}{path}?{query}`; `path` segments must already be
    /// escaped (see [`segment`]).
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!(
            "{}/repos/{}/{}{path}",
            self.client.base(),
            segment(self.repository.owner()),
            segment(self.repository.name()),
        );
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
    async fn next_page(&self, pages: &mut Pages) -> Result<Option<Bytes>, GithubError> {
        pages
            .next(self.client, &self.context.shutdown, &self.requests)
            .await
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
                    "skipping an item GitHub returned that cannot be read"
                );
                None
            }
        }
    }

    /// Hands `batch` (with its cursors) on, to be kept in one transaction.
    async fn apply(&self, batch: SyncBatch) -> Result<(), SourceError> {
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

    /// What was kept before (cursors, pending deployments, undecided change sets).
    fn ledger(&self) -> &dyn Ledger {
        self.context.ledger.as_ref()
    }

    /// The cursor kept under `key`, if any.
    async fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, SourceError> {
        Ok(self.ledger().cursor(key.clone()).await?)
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

    /// The production environments as cursor names carry them: lowercase,
    /// sorted, comma-separated.
    fn production_names(&self) -> String {
        let mut environments: Vec<String> = self
            .settings
            .production
            .iter()
            .map(|e| e.as_str().to_ascii_lowercase())
            .collect();
        environments.sort();
        environments.join(",")
    }

    /// The index of the configured production environment `environment` matches
    /// (case-insensitively), if any.
    fn production_index(&self, environment: &Environment) -> Option<usize> {
        self.settings
            .production
            .iter()
            .position(|p| p.matches(environment.as_str()))
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
/// settings instead (the ledger bounds names at 512 bytes).
const MAX_READABLE_CURSOR: usize = 200;

/// A cursor endpoint name: `base` plus the settings that decide what its step
/// reads (`deployments?environments=production`), so that changing them in the
/// configuration gives that step a first sync again rather than silently missing
/// the history it never read.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_names_carry_their_settings_within_a_bound() {
        assert_eq!(cursor_name("pulls", &[]), "pulls");
        assert_eq!(
            cursor_name("deployments", &[("environments", "prod,production".into())]),
            "deployments?environments=prod,production"
        );
        let long = cursor_name("deployments", &[("environments", "e".repeat(500))]);
        assert_eq!(long.len(), "deployments#".len() + 16);
        assert_ne!(
            long,
            cursor_name("deployments", &[("environments", "f".repeat(500))])
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("deploy.yml"), "deploy.yml");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("my-repo_1.x"), "my-repo_1.x");
    }
}
