//! The sources: where events come from. One module per source behind the small
//! [`Source`] trait: [`github`] and [`gitlab`] (deployments, change sets,
//! incidents and pull requests of repositories), [`argocd`] and [`jenkins`]
//! (deployments only; the repository's code host gives its change sets) and
//! [`pagerduty`] (incidents of services; its sync units are services, named like
//! repositories). [`governor`] is the rate-limit and retry policy every client
//! sends through (with [`pace`]'s counting of GitHub's secondary per-minute
//! points); [`http`] what the HTTP clients share (token masking, `Link`
//! headers); `rest` the plain JSON client of Argo CD and Jenkins.
//!
//! A source syncs one repository at a time: it reads what is new since the cursors
//! it was given, turns the API's wire types into domain events at its border, and
//! hands them on as [`SyncBatch`](crate::domain::batch::SyncBatch)es together with
//! the cursors they cover. What it needs from the past (cursors, deployments still
//! pending, change sets not decided yet) it asks a read-only [`Ledger`]; batches go
//! to a [`BatchSink`]. The sync layer provides both: a source never sees where or
//! how events are kept. It also keeps its own API health (requests by endpoint
//! and status, rate limits) for the collector's health metrics.
//!
//! Deliberately not here: scheduling, retries across cycles, the engine, the
//! exporter, and anything that decides what counts as a DORA event (the engine
//! filters by environment and label; a source only avoids reading what can never
//! count).

pub mod argocd;
pub mod github;
pub mod gitlab;
pub mod governor;
mod health;
pub mod http;
pub mod jenkins;
mod ledger;
pub mod pace;
pub mod pagerduty;
pub mod rest;

pub use health::{ApiRequests, ApiRetries, HistoryGaps, RateLimit};
pub use ledger::{BatchSink, Ledger, LedgerError, LedgerFuture};

use crate::domain::batch::{ApplyStats, KindStats};
use crate::domain::{RepoName, Team, Timestamp};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// What a source is given for one repository sync.
#[derive(Clone)]
pub struct SyncContext {
    /// What was kept before: cursors, pending deployments, undecided change sets.
    pub ledger: Arc<dyn Ledger>,
    /// Where the source hands each batch with its cursors.
    pub sink: Arc<dyn BatchSink>,
    /// The evaluation clock's `now`: the end of the lookback window on a first
    /// sync and the `updated_at` of the cursors it advances.
    pub now: Timestamp,
    /// Cancelled on shutdown: the source stops between two requests, never in the
    /// middle of handing on a batch.
    pub shutdown: CancellationToken,
    /// Which repositories this process syncs in this round (replicas sharing
    /// one database divide them); `None`: every one. A source's per-cycle work
    /// (`prepare_cycle`'s queries about many repositories) asks only about
    /// these.
    pub assigned: Option<Assigned>,
}

/// Whether this process syncs a repository in a round ([`SyncContext::assigned`]).
pub type Assigned = Arc<dyn Fn(&RepoName) -> bool + Send + Sync>;

impl SyncContext {
    /// Whether this process syncs `repository` in this round.
    pub fn syncs(&self, repository: &RepoName) -> bool {
        self.assigned
            .as_ref()
            .is_none_or(|assigned| assigned(repository))
    }
}

impl std::fmt::Debug for SyncContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncContext")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What one repository sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepoSyncStats {
    /// The sum of the `ApplyStats` of every batch written.
    pub applied: ApplyStats,
    /// Batches written.
    pub batches: u64,
    /// API requests made.
    pub requests: u64,
    /// Items of API responses that could not be read (odd or unexpected JSON) and
    /// were skipped; each one is also logged.
    pub skipped_items: u64,
    /// This was the repository's first sync (no cursors yet): it read `lookback`.
    pub first_sync: bool,
    /// After this sync the repository's history is complete from this time on
    /// (at least): the start of the lookback at this sync, as a sync resumes
    /// where the ones before stopped. `None` for a source that cannot say.
    pub history_since: Option<Timestamp>,
}

impl RepoSyncStats {
    /// Adds the statistics of one applied batch (or of another sync's total).
    pub fn add_applied(&mut self, stats: &ApplyStats) {
        let sum = |a: &mut KindStats, b: &KindStats| {
            a.inserted += b.inserted;
            a.updated += b.updated;
            a.unchanged += b.unchanged;
        };
        sum(&mut self.applied.deployments, &stats.deployments);
        sum(&mut self.applied.commits, &stats.commits);
        sum(&mut self.applied.compares, &stats.compares);
        sum(&mut self.applied.incidents, &stats.incidents);
        sum(&mut self.applied.pull_requests, &stats.pull_requests);
        sum(&mut self.applied.cursors, &stats.cursors);
    }
}

/// Why a repository sync failed. The message names the repository, the URL or
/// what keeps the events (a file, a server) as relevant, and never contains a
/// token.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Github(#[from] github::GithubError),
    /// Argo CD or Jenkins: reading one application or job (`what`) failed.
    #[error("{what}: {error}")]
    Read {
        /// `argocd application "api-prod"`, `jenkins job "deploy/api"`.
        what: String,
        error: rest::RestError,
    },
    #[error(transparent)]
    Gitlab(#[from] gitlab::GitlabError),
    #[error(transparent)]
    PagerDuty(#[from] pagerduty::PagerDutyError),
    /// The ledger could not answer, or a batch could not be kept.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The sync was stopped by shutdown before it finished; nothing half-done was
    /// written (cursors advance only with their data).
    #[error("stopped by shutdown")]
    Cancelled,
}

impl SourceError {
    /// Whether this is the shutdown stopping the sync rather than a failure.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            SourceError::Cancelled
                | SourceError::Github(github::GithubError::Cancelled)
                | SourceError::Read {
                    error: rest::RestError::Cancelled,
                    ..
                }
                | SourceError::Gitlab(gitlab::GitlabError::Cancelled)
                | SourceError::PagerDuty(pagerduty::PagerDutyError::Cancelled)
        )
    }
}

/// What a first sync of a deployment source keeps of the `deployments` it
/// read (a few sources, Argo CD and Jenkins, cannot ask for a time range): those
/// created at or after `start` (the lookback's start), plus per environment the
/// newest older one that succeeded, the base of the first change set; as the
/// GitHub source's first sync reads them (`docs/sources.md`).
pub fn within_lookback(
    deployments: Vec<crate::domain::Deployment>,
    start: Timestamp,
) -> Vec<crate::domain::Deployment> {
    use crate::domain::DeploymentOutcome;
    let mut bases: Vec<crate::domain::Deployment> = Vec::new();
    let mut kept = Vec::new();
    for deployment in deployments {
        if deployment.created_at >= start {
            kept.push(deployment);
            continue;
        }
        if !matches!(deployment.outcome, DeploymentOutcome::Succeeded { .. }) {
            continue;
        }
        let key = |d: &crate::domain::Deployment| (d.created_at, d.id);
        match bases
            .iter_mut()
            .find(|b| b.environment == deployment.environment)
        {
            Some(base) if key(base) < key(&deployment) => *base = deployment,
            Some(_) => {}
            None => bases.push(deployment),
        }
    }
    kept.extend(bases);
    kept
}

/// A source's API health since the process started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiHealth {
    /// Requests by endpoint template and status, sorted.
    pub requests: Vec<ApiRequests>,
    /// The latest rate limit reported per resource, sorted.
    pub rate_limits: Vec<RateLimit>,
    /// Seconds requests were held back by rate limits, summed over requests.
    pub rate_limit_wait_seconds: f64,
    /// Retries by reason (every reason the source knows, zero included).
    pub retries: Vec<ApiRetries>,
    /// Unreadable items skipped per repository (whether or not its sync then
    /// succeeded), sorted by repository; repositories with none may be absent.
    pub skipped_items: Vec<(RepoName, u64)>,
    /// Argo CD: history gaps found per application, sorted (empty for other
    /// sources).
    pub history_gaps: Vec<HistoryGaps>,
}

impl ApiHealth {
    /// The health of a source whose client sends through a [`governor`]: its
    /// `requests`, the governor's rate limits, waits and retries, the items
    /// skipped per repository (`skipped`) and the `history_gaps`.
    pub fn from_governor(
        requests: Vec<ApiRequests>,
        governor: governor::GovernorHealth,
        skipped: &Mutex<BTreeMap<RepoName, u64>>,
        history_gaps: Vec<HistoryGaps>,
    ) -> ApiHealth {
        ApiHealth {
            requests,
            rate_limits: governor.rate_limits,
            rate_limit_wait_seconds: governor.rate_limit_wait_seconds,
            retries: governor
                .retries
                .into_iter()
                .map(|(reason, count)| ApiRetries {
                    reason: reason.label().to_owned(),
                    count,
                })
                .collect(),
            skipped_items: skipped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(repository, count)| (repository.clone(), *count))
                .collect(),
            history_gaps,
        }
    }
}

/// A place events come from.
///
/// Implementations are shared between tasks (`Arc<dyn Source>`); one
/// `sync_repository` call per repository runs at a time, but calls for different
/// repositories may run concurrently.
pub trait Source: Send + Sync {
    /// The `source` label of the health metrics and of the recorded sync status
    /// (`github`).
    fn name(&self) -> &'static str;

    /// The repositories this source syncs now, in configuration order (with
    /// organisations, those discovered at the start of the latest cycle).
    fn repositories(&self) -> Vec<RepoName>;

    /// The team of each of its repositories the source decides (discovered
    /// repositories' teams; explicit ones' as configured). The default: none.
    fn teams(&self) -> Vec<(RepoName, Team)> {
        Vec::new()
    }

    /// What the source has not been able to enumerate yet (organisations whose
    /// repositories were never listed): `/readyz` waits for them. The default:
    /// nothing.
    fn pending_discovery(&self) -> Vec<String> {
        Vec::new()
    }

    /// Work shared by every repository of one cycle, before any
    /// `sync_repository` of it (one query that asks about many repositories at
    /// once). It cannot fail the cycle: a source logs its failure and its
    /// repository syncs do without. The default does nothing.
    fn prepare_cycle<'a>(&'a self, context: &'a SyncContext) -> BoxFuture<'a, ()> {
        let _ = context;
        Box::pin(async {})
    }

    /// Reads what is new for `repository` and hands it to `context.sink`, each
    /// batch with the cursors it covers. On error, what was written before stays
    /// (it is consistent), and the next sync resumes from the kept cursors.
    fn sync_repository<'a>(
        &'a self,
        repository: &'a RepoName,
        context: &'a SyncContext,
    ) -> BoxFuture<'a, Result<RepoSyncStats, SourceError>>;

    /// Requests, rate limits and skipped items since the process started.
    fn api_health(&self) -> ApiHealth;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CommitSha, Deployment, DeploymentOutcome, DeploymentSource, Environment};

    fn deployment(id: u64, environment: &str, created: i64, succeeded: bool) -> Deployment {
        Deployment {
            source: DeploymentSource::Jenkins,
            repository: RepoName::parse("acme/api").unwrap(),
            id,
            environment: Environment::parse(environment).unwrap(),
            sha: CommitSha::from_bytes([id as u8; 20]),
            created_at: Timestamp(created),
            outcome: if succeeded {
                DeploymentOutcome::Succeeded {
                    at: Timestamp(created + 5),
                }
            } else {
                DeploymentOutcome::Failed {
                    at: Timestamp(created + 5),
                }
            },
        }
    }

    #[test]
    fn a_first_sync_keeps_the_lookback_and_one_base_per_environment() {
        let read = vec![
            deployment(1, "production", 10, true),
            deployment(2, "production", 20, true),
            deployment(3, "production", 30, false),
            deployment(4, "staging", 15, true),
            deployment(5, "production", 100, false),
            deployment(6, "production", 110, true),
        ];
        let mut ids: Vec<u64> = within_lookback(read, Timestamp(100))
            .iter()
            .map(|d| d.id)
            .collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            [2, 4, 5, 6],
            "the newest older success per environment"
        );
    }
}
