//! `HealthSnapshot`: the collector's own health as plain data — what the sync loop
//! knows about its sources (last successful sync per repository, sync duration, API
//! requests by status, rate limits, errors), handed to the exporter with every
//! publish.
//!
//! The sync loop fills it; this module only defines the shape. It holds counts and
//! times, never URLs with query strings, tokens or response bodies. Every label value
//! it carries must be bounded: `endpoint` is a route template such as
//! `/repos/{owner}/{repo}/deployments`, never a concrete URL.

use crate::domain::{RepoName, Timestamp};
use crate::sources::{ApiRequests, ApiRetries, HistoryGaps, RateLimit};

/// The health of every source at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthSnapshot {
    /// One entry per source (`github`, …).
    pub sources: Vec<SourceHealth>,
    /// The latest sync round could not record a sync status in the store
    /// (read-only or full): `/readyz` says so while it is not ready.
    pub status_unrecorded: bool,
    /// Push API requests by client and outcome (empty without `[ingest]`).
    pub pushes: Vec<PushCount>,
    /// Webhook deliveries by event and outcome (empty without `[webhooks]`).
    pub webhooks: Vec<WebhookCount>,
}

/// Webhook deliveries of one event with one outcome since the process started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCount {
    /// `deployment`, `push`, …, `ping` or `other` (`docs/metrics.md`).
    pub event: String,
    /// `accepted`, `duplicate`, `unauthorized`, … (`docs/metrics.md`).
    pub outcome: String,
    /// Deliveries so far.
    pub count: u64,
}

/// Push API requests of one client with one outcome since the process started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCount {
    /// The configured client name; empty for requests without a valid token.
    pub client: String,
    /// `accepted`, `duplicate`, `unauthorized`, … (`docs/metrics.md`).
    pub outcome: String,
    /// Requests so far.
    pub count: u64,
}

/// The health of one source, such as GitHub.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceHealth {
    /// The `source` label value, e.g. `github`.
    pub source: String,
    /// How long the last completed sync of this source took, in seconds; `None`
    /// before the first one completes.
    pub last_sync_duration_seconds: Option<f64>,
    /// One entry per repository this source syncs.
    pub repositories: Vec<RepositoryHealth>,
    /// API requests made since the process started, by endpoint and status.
    pub api_requests: Vec<ApiRequests>,
    /// The rate limits the source last reported, by resource.
    pub rate_limits: Vec<RateLimit>,
    /// Seconds requests were held back by rate limits since the process started,
    /// summed over requests.
    pub rate_limit_wait_seconds: f64,
    /// Requests retried since the process started, by reason.
    pub api_retries: Vec<ApiRetries>,
    /// Argo CD: history gaps found per application (empty for other sources).
    pub history_gaps: Vec<HistoryGaps>,
}

/// One repository as seen by its source.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryHealth {
    pub repository: RepoName,
    /// When the last sync of this repository completed successfully; `None` until
    /// the first one has. Readiness waits for this on every configured repository.
    pub last_success: Option<Timestamp>,
    /// Failed syncs of this repository since the process started.
    pub sync_errors: u64,
    /// Items of API responses for this repository that could not be read (odd
    /// or hostile JSON) and were skipped, since the process started.
    pub skipped_items: u64,
    /// When the repository's sync is tried again after it failed; `None` while
    /// it is not waiting for a retry.
    pub next_retry: Option<Timestamp>,
    /// Since when the repository's history is complete in the store (the start
    /// of the lookback of its first successful sync); `None` until one.
    pub history_since: Option<Timestamp>,
}

impl RepositoryHealth {
    /// A repository that has not synced yet and had no errors.
    pub fn new(repository: RepoName) -> Self {
        RepositoryHealth {
            repository,
            last_success: None,
            sync_errors: 0,
            skipped_items: 0,
            next_retry: None,
            history_since: None,
        }
    }
}
