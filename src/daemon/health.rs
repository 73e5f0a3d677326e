//! `HealthTracker`: what the daemon knows about its own sync health, turned into
//! the exporter's [`HealthSnapshot`] at every publish.
//!
//! Per repository it keeps the last successful sync (seeded from the store's sync
//! status at start, so a restarted daemon is ready at once when every repository
//! had synced before) and the failures since the process started; per source, the
//! duration of the last completed cycle. API requests and rate limits come from
//! the sources themselves, and so do the unreadable items skipped per repository.
//! No I/O.

use super::cycle::{CycleReport, RepoOutcome, RepoReport};
use super::retry::RetryQueue;
use crate::domain::{RepoName, Timestamp};
use crate::exporter::{HealthSnapshot, RepositoryHealth, SourceHealth};
use crate::sources::Source;
use crate::store::SyncStatus;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default)]
struct SourceState {
    last_duration: Option<f64>,
    repositories: BTreeMap<RepoName, RepositoryHealth>,
}

/// The daemon's health bookkeeping.
#[derive(Debug, Default)]
pub struct HealthTracker {
    sources: BTreeMap<&'static str, SourceState>,
    /// The latest round could not record a sync status in the store.
    status_unrecorded: bool,
}

impl HealthTracker {
    /// Every repository of every source, not synced yet, with the last successful
    /// syncs the store remembers.
    pub fn new(sources: &[Arc<dyn Source>], stored: &[SyncStatus]) -> Self {
        let mut tracker = HealthTracker::default();
        for source in sources {
            let state = tracker.sources.entry(source.name()).or_default();
            for repository in source.repositories() {
                let mut health = RepositoryHealth::new(repository.clone());
                let status = stored
                    .iter()
                    .find(|s| s.source == source.name() && s.repository == repository);
                health.last_success = status.and_then(|s| s.last_success_at);
                health.history_since = status.and_then(|s| s.history_since);
                state.repositories.insert(repository, health);
            }
        }
        tracker
    }

    /// Whether any repository has ever synced successfully (then the store holds
    /// data worth publishing before the first cycle of this process).
    pub(crate) fn any_synced(&self) -> bool {
        self.sources
            .values()
            .flat_map(|s| s.repositories.values())
            .any(|r| r.last_success.is_some())
    }

    /// Takes in a finished cycle.
    pub fn record(&mut self, cycle: &CycleReport) {
        self.status_unrecorded = cycle.status_unrecorded;
        for report in &cycle.repositories {
            match report.outcome {
                RepoOutcome::Synced(_) => self.record_success(report),
                RepoOutcome::Failed(_) => self.health_of(report).sync_errors += 1,
                RepoOutcome::Cancelled => {}
            }
        }
        if !cycle.cancelled() {
            for (source, seconds) in &cycle.durations {
                self.sources.entry(source).or_default().last_duration = Some(*seconds);
            }
        }
    }

    /// Takes in one repository's successful sync before its round ends (a
    /// first sync publishes its repository at once); the round's
    /// [`HealthTracker::record`] taking it in again changes nothing.
    pub(crate) fn record_success(&mut self, report: &RepoReport) {
        let RepoOutcome::Synced(stats) = &report.outcome else {
            return;
        };
        let health = self.health_of(report);
        health.last_success = Some(report.finished_at);
        // The first one kept, as in the store.
        health.history_since = health.history_since.or(stats.history_since);
    }

    fn health_of(&mut self, report: &RepoReport) -> &mut RepositoryHealth {
        self.sources
            .entry(report.source)
            .or_default()
            .repositories
            .entry(report.repository.clone())
            .or_insert_with(|| RepositoryHealth::new(report.repository.clone()))
    }

    /// Forgets the repositories a source no longer syncs (discovery dropped
    /// them): their health series leave `/metrics` with their DORA series.
    pub fn retain_current(&mut self, sources: &[Arc<dyn Source>]) {
        for source in sources {
            let current: std::collections::HashSet<RepoName> =
                source.repositories().into_iter().collect();
            if let Some(state) = self.sources.get_mut(source.name()) {
                state.repositories.retain(|r, _| current.contains(r));
            }
        }
    }

    /// The health to publish, with each source's API counters as of now and
    /// when each repository waiting in `retries` is tried again.
    pub fn snapshot(&self, sources: &[Arc<dyn Source>], retries: &RetryQueue) -> HealthSnapshot {
        let mut out = HealthSnapshot {
            status_unrecorded: self.status_unrecorded,
            ..HealthSnapshot::default()
        };
        for (name, state) in &self.sources {
            let api = sources
                .iter()
                .find(|s| s.name() == *name)
                .map(|s| s.api_health())
                .unwrap_or_default();
            let repositories = state
                .repositories
                .values()
                .map(|r| RepositoryHealth {
                    skipped_items: api
                        .skipped_items
                        .iter()
                        .find(|(repository, _)| repository == &r.repository)
                        .map_or(0, |(_, n)| *n),
                    next_retry: retries.next_try(name, &r.repository),
                    ..r.clone()
                })
                .collect();
            out.sources.push(SourceHealth {
                source: (*name).to_owned(),
                last_sync_duration_seconds: state.last_duration,
                repositories,
                api_requests: api.requests,
                rate_limits: api.rate_limits,
                rate_limit_wait_seconds: api.rate_limit_wait_seconds,
                api_retries: api.retries,
                history_gaps: api.history_gaps,
            });
        }
        out
    }

    /// The last successful sync of `repository` from `source`.
    pub fn last_success(&self, source: &str, repository: &RepoName) -> Option<Timestamp> {
        self.sources
            .get(source)
            .and_then(|s| s.repositories.get(repository))
            .and_then(|r| r.last_success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::RepoSyncStats;

    fn repo(name: &str) -> RepoName {
        RepoName::parse(name).unwrap()
    }

    #[test]
    fn records_successes_failures_and_durations() {
        let mut tracker = HealthTracker::default();
        let report = |name: &str, outcome: RepoOutcome, at: i64| RepoReport {
            source: "github",
            repository: repo(name),
            outcome,
            finished_at: Timestamp(at),
        };
        tracker.record(&CycleReport {
            started_at: Timestamp(1),
            repositories: vec![
                report("a/ok", RepoOutcome::Synced(RepoSyncStats::default()), 10),
                report("a/bad", RepoOutcome::Failed("HTTP 404".into()), 11),
            ],
            durations: vec![("github", 2.5)],
            status_unrecorded: false,
        });
        tracker.record(&CycleReport {
            started_at: Timestamp(20),
            repositories: vec![
                report("a/ok", RepoOutcome::Cancelled, 30),
                report("a/bad", RepoOutcome::Failed("HTTP 404".into()), 31),
            ],
            durations: vec![("github", 9.0)],
            status_unrecorded: false,
        });
        assert_eq!(
            tracker.last_success("github", &repo("a/ok")),
            Some(Timestamp(10))
        );
        assert_eq!(tracker.last_success("github", &repo("a/bad")), None);
        let health = tracker.snapshot(&[], &RetryQueue::default());
        let github = &health.sources[0];
        assert_eq!(
            github.last_sync_duration_seconds,
            Some(2.5),
            "cancelled cycles keep the last"
        );
        let bad = github
            .repositories
            .iter()
            .find(|r| r.repository == repo("a/bad"))
            .unwrap();
        assert_eq!(bad.sync_errors, 2);
        assert!(tracker.any_synced());
    }
}
