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

/// This replica's part when several share one store (absent on a store only
/// one process opens): which repositories it syncs and whether it exports the
/// DORA families, which the replica holding the metrics lease alone does, so
/// that Prometheus scraping every replica sees each series once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaHealth {
    /// This replica holds the metrics lease: it exports the DORA families.
    pub metrics_lease: bool,
    /// The repositories (sync units) whose leases this replica holds: its
    /// per-repository sync health is exported for these only.
    pub syncs: std::collections::BTreeSet<RepoName>,
    /// Live replicas sharing the store, this one included, as last seen.
    pub replicas: u64,
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

/// A successful sync the store holds, as read with the events of a snapshot:
/// the snapshot exports the repository's series because of it, so the health
/// published with that snapshot must know it too (a sync that finished while
/// the snapshot was computed is in the store before the sync loop takes it in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSuccess {
    /// The `source` label value, e.g. `github`.
    pub source: String,
    pub repository: RepoName,
    /// When the last successful sync finished.
    pub last_success_at: Timestamp,
    /// Since when the repository's history is complete, when the store says.
    pub history_since: Option<Timestamp>,
}

impl HealthSnapshot {
    /// Takes in the successful syncs a snapshot was computed from (those of
    /// the repositories it exports): a repository's last success becomes the
    /// later of the two, and its history is complete since the first one known
    /// (as in the store). A repository the health does not list yet (found by
    /// this cycle's discovery, its sync not taken in yet) is added.
    pub fn take_in_stored(&mut self, stored: &[StoredSuccess]) {
        for success in stored {
            let Some(source) = self.sources.iter_mut().find(|s| s.source == success.source) else {
                continue;
            };
            let index = match source
                .repositories
                .iter()
                .position(|r| r.repository == success.repository)
            {
                Some(index) => index,
                None => {
                    source
                        .repositories
                        .push(RepositoryHealth::new(success.repository.clone()));
                    source.repositories.len() - 1
                }
            };
            let repository = &mut source.repositories[index];
            repository.last_success = Some(
                repository
                    .last_success
                    .map_or(success.last_success_at, |at| {
                        at.max(success.last_success_at)
                    }),
            );
            repository.history_since = repository.history_since.or(success.history_since);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn health(repositories: &[(&str, Option<i64>, Option<i64>)]) -> HealthSnapshot {
        HealthSnapshot {
            sources: vec![SourceHealth {
                source: "github".to_owned(),
                repositories: repositories
                    .iter()
                    .map(|(name, last_success, since)| RepositoryHealth {
                        last_success: last_success.map(Timestamp),
                        history_since: since.map(Timestamp),
                        ..RepositoryHealth::new(RepoName::parse(name).unwrap())
                    })
                    .collect(),
                ..SourceHealth::default()
            }],
            ..HealthSnapshot::default()
        }
    }

    fn stored(source: &str, name: &str, at: i64, since: Option<i64>) -> StoredSuccess {
        StoredSuccess {
            source: source.to_owned(),
            repository: RepoName::parse(name).unwrap(),
            last_success_at: Timestamp(at),
            history_since: since.map(Timestamp),
        }
    }

    #[test]
    fn stored_successes_fill_in_what_the_sync_loop_has_not_taken_in_yet() {
        let mut taken = health(&[
            ("acme/api", None, None),
            ("acme/web", Some(500), Some(100)),
            ("acme/old", Some(900), Some(50)),
        ]);
        taken.take_in_stored(&[
            // Finished while the snapshot was computed.
            stored("github", "acme/api", 700, Some(100)),
            // Older than what the loop knows: the later success stays, and the
            // history since the first one.
            stored("github", "acme/web", 400, Some(200)),
            stored("github", "acme/old", 1_000, Some(80)),
            // A source the health does not know: ignored.
            stored("gitlab", "acme/other", 700, Some(1)),
            // Found by discovery, not taken in by the sync loop yet: added.
            stored("github", "acme/new", 700, Some(1)),
        ]);
        assert_eq!(
            taken,
            health(&[
                ("acme/api", Some(700), Some(100)),
                ("acme/web", Some(500), Some(100)),
                ("acme/old", Some(1_000), Some(50)),
                ("acme/new", Some(700), Some(1)),
            ])
        );
    }
}
