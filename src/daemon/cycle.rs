//! One sync cycle: every repository of every source, a few at a time, each one's
//! end recorded in the store's sync status, with one report for the whole cycle.
//! Used by the daemon's scheduler and by `sync --once`.
//!
//! A repository that fails does not stop the others: its error is logged once,
//! recorded, and reported. A sync whose end cannot be recorded in the store (a
//! read-only or full store) is a failed sync, not a successful one: nothing proves
//! the store can keep what the next sync reads. Shutdown stops the cycle between two
//! requests; what was written stays consistent (each batch is one transaction with
//! its cursors).

use super::clock::Clock;
use super::ledger::StoreLedger;
use super::replicas::Replica;
use crate::domain::{RepoName, Timestamp};
use crate::sources::{RepoSyncStats, Source, SyncContext};
use crate::store::{SharedStore, StoreError, SyncOutcome};
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many repositories sync at the same time. Requests within one repository
/// are sequential; GitHub asks clients to avoid many concurrent requests
/// (secondary rate limits), and four keep a first sync of a large organisation
/// reasonably quick.
pub(crate) const MAX_CONCURRENT_REPOSITORIES: usize = 4;

/// How one repository's sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoOutcome {
    Synced(RepoSyncStats),
    /// The error's text: it names the repository's URL or the store file, never a
    /// token.
    Failed(String),
    /// Stopped by shutdown before it finished.
    Cancelled,
}

/// One repository in a cycle report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoReport {
    pub source: &'static str,
    pub repository: RepoName,
    pub outcome: RepoOutcome,
    /// When it finished (by the daemon's clock).
    pub finished_at: Timestamp,
}

/// What a cycle did.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleReport {
    /// The evaluation time the cycle started at.
    pub started_at: Timestamp,
    /// One entry per configured repository and source, in configuration order.
    pub repositories: Vec<RepoReport>,
    /// Seconds each source took, by the daemon's clock.
    pub durations: Vec<(&'static str, f64)>,
    /// The store refused to record some repository's sync status in this round
    /// (those syncs are reported failed).
    pub status_unrecorded: bool,
}

impl CycleReport {
    /// The repositories that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (&RepoName, &str)> {
        self.repositories.iter().filter_map(|r| match &r.outcome {
            RepoOutcome::Failed(error) => Some((&r.repository, error.as_str())),
            _ => None,
        })
    }

    /// Whether shutdown stopped any repository's sync.
    pub fn cancelled(&self) -> bool {
        self.repositories
            .iter()
            .any(|r| r.outcome == RepoOutcome::Cancelled)
    }

    /// The statistics of the repositories that synced, summed.
    pub fn total(&self) -> RepoSyncStats {
        let mut total = RepoSyncStats::default();
        for report in &self.repositories {
            if let RepoOutcome::Synced(stats) = &report.outcome {
                total.add_applied(&stats.applied);
                total.batches += stats.batches;
                total.requests += stats.requests;
                total.skipped_items += stats.skipped_items;
            }
        }
        total
    }
}

/// What a caller of a cycle is told as it goes (`sync --once`'s progress bar).
/// A closure taking each [`RepoReport`] is one that ignores the scope.
pub trait CycleProgress: Send + Sync {
    /// A source's repositories of this cycle are known (after its discovery),
    /// `count` of them; called once per source, before any of them finishes.
    fn scope(&self, count: usize) {
        let _ = count;
    }

    /// A repository finished (in completion order).
    fn synced(&self, report: &RepoReport);
}

impl<F: Fn(&RepoReport) + Send + Sync> CycleProgress for F {
    fn synced(&self, report: &RepoReport) {
        self(report);
    }
}

/// Syncs every repository of every source once. `progress` is told each
/// source's repositories once discovery listed them, and each repository as it
/// finishes (in completion order).
pub async fn sync_all(
    sources: &[Arc<dyn Source>],
    store: &SharedStore,
    clock: &dyn Clock,
    shutdown: &CancellationToken,
    progress: &dyn CycleProgress,
) -> CycleReport {
    let alone = Arc::new(Replica::single());
    sync_round(sources, store, clock, shutdown, progress, None, &alone).await
}

/// [`sync_all`] of the repositories whose leases `replica` holds.
pub(crate) async fn sync_assigned(
    sources: &[Arc<dyn Source>],
    store: &SharedStore,
    clock: &dyn Clock,
    shutdown: &CancellationToken,
    progress: &dyn CycleProgress,
    replica: &Arc<Replica>,
) -> CycleReport {
    sync_round(sources, store, clock, shutdown, progress, None, replica).await
}

/// A retry round: syncs only the repositories in `only` (source name and
/// repository), without the sources' per-cycle preparation (a repository sync
/// does without it, as after a failed one) and without recording source
/// durations (the round is not a whole sync of any source).
pub(crate) async fn sync_selected(
    sources: &[Arc<dyn Source>],
    store: &SharedStore,
    clock: &dyn Clock,
    shutdown: &CancellationToken,
    only: &[(&'static str, RepoName)],
    replica: &Arc<Replica>,
) -> CycleReport {
    sync_round(
        sources,
        store,
        clock,
        shutdown,
        &|_: &RepoReport| {},
        Some(only),
        replica,
    )
    .await
}

async fn sync_round(
    sources: &[Arc<dyn Source>],
    store: &SharedStore,
    clock: &dyn Clock,
    shutdown: &CancellationToken,
    progress: &dyn CycleProgress,
    only: Option<&[(&'static str, RepoName)]>,
    replica: &Arc<Replica>,
) -> CycleReport {
    let started_at = clock.now();
    let ledger = Arc::new(StoreLedger::new(store.clone()));
    let assigned: Option<crate::sources::Assigned> = replica.is_shared().then(|| {
        let replica = Arc::clone(replica);
        Arc::new(move |repository: &RepoName| replica.syncs(repository)) as _
    });
    let context = SyncContext {
        ledger: ledger.clone(),
        sink: ledger,
        now: started_at,
        shutdown: shutdown.clone(),
        assigned,
    };
    let mut report = CycleReport {
        started_at,
        repositories: Vec::new(),
        durations: Vec::new(),
        status_unrecorded: false,
    };
    for source in sources {
        let selected = |repository: &RepoName| {
            only.is_none_or(|only| {
                only.iter()
                    .any(|(name, r)| *name == source.name() && r == repository)
            })
        };
        if only.is_some() && !source.repositories().iter().any(selected) {
            continue;
        }
        let timer = Instant::now();
        if only.is_none() {
            // Discovery too: the repositories below are this cycle's.
            source.prepare_cycle(&context).await;
        }
        // The repositories whose leases are held as this source's turn starts
        // (after its discovery).
        let repositories: Vec<RepoName> = source
            .repositories()
            .into_iter()
            .filter(|r| replica.syncs(r))
            .collect();
        progress.scope(repositories.iter().filter(|r| selected(r)).count());
        let jobs: Vec<BoxFuture<'_, (usize, RepoReport, bool)>> = repositories
            .iter()
            .filter(|r| selected(r))
            .cloned()
            .enumerate()
            .map(|(index, repository)| {
                let source = Arc::clone(source);
                let context = &context;
                Box::pin(async move {
                    let repository = &repository;
                    replica.begin(repository);
                    let result = source.sync_repository(repository, context).await;
                    replica.end(repository);
                    let finished_at = clock.now();
                    let mut outcome = match result {
                        Ok(stats) => {
                            tracing::info!(
                                source = source.name(),
                                %repository,
                                first_sync = stats.first_sync,
                                requests = stats.requests,
                                written = stats.applied.total().written(),
                                skipped_items = stats.skipped_items,
                                "repository synced"
                            );
                            RepoOutcome::Synced(stats)
                        }
                        Err(error) if error.is_cancelled() => RepoOutcome::Cancelled,
                        Err(error) => {
                            tracing::error!(
                                source = source.name(),
                                %repository,
                                %error,
                                "repository sync failed; its next sync resumes from what was stored"
                            );
                            RepoOutcome::Failed(error.to_string())
                        }
                    };
                    let recorded = match &outcome {
                        RepoOutcome::Synced(stats) => Some(Recorded::Success(stats.history_since)),
                        RepoOutcome::Failed(error) => {
                            Some(Recorded::Outcome(SyncOutcome::Failed(error.clone())))
                        }
                        RepoOutcome::Cancelled => None,
                    };
                    let mut unrecorded = false;
                    if let Some(recorded) = recorded {
                        let result =
                            record(store, repository, source.name(), finished_at, recorded).await;
                        if let Err(error) = result {
                            unrecorded = true;
                            if let RepoOutcome::Synced(_) = outcome {
                                outcome = RepoOutcome::Failed(format!(
                                    "the sync status cannot be recorded in the store: {error}"
                                ));
                            }
                        }
                    }
                    let entry = RepoReport {
                        source: source.name(),
                        repository: repository.clone(),
                        outcome,
                        finished_at,
                    };
                    progress.synced(&entry);
                    (index, entry, unrecorded)
                }) as BoxFuture<'_, (usize, RepoReport, bool)>
            })
            .collect();
        let mut done: Vec<(usize, RepoReport, bool)> = stream::iter(jobs)
            .buffer_unordered(MAX_CONCURRENT_REPOSITORIES)
            .collect()
            .await;
        done.sort_by_key(|(index, _, _)| *index);
        report.status_unrecorded |= done.iter().any(|(_, _, unrecorded)| *unrecorded);
        report
            .repositories
            .extend(done.into_iter().map(|(_, r, _)| r));
        if only.is_none() {
            report
                .durations
                .push((source.name(), clock.seconds_since(timer)));
        }
    }
    report
}

/// What is recorded of a repository's sync.
enum Recorded {
    /// A success, with how far back the history is complete when the source
    /// says.
    Success(Option<Timestamp>),
    Outcome(SyncOutcome),
}

/// Records the end of a repository's sync; a store failure here is logged and
/// returned (the data itself is already written or not, consistently).
async fn record(
    store: &SharedStore,
    repository: &RepoName,
    source: &'static str,
    finished_at: Timestamp,
    outcome: Recorded,
) -> Result<(), StoreError> {
    let repository_owned = repository.clone();
    let result = store
        .call(move |store| -> Result<(), StoreError> {
            match outcome {
                Recorded::Success(Some(since)) => {
                    store.record_success(&repository_owned, source, finished_at, since)
                }
                Recorded::Success(None) => store.record_sync(
                    &repository_owned,
                    source,
                    finished_at,
                    &SyncOutcome::Succeeded,
                ),
                Recorded::Outcome(outcome) => {
                    store.record_sync(&repository_owned, source, finished_at, &outcome)
                }
            }
        })
        .await;
    if let Err(error) = &result {
        tracing::error!(
            %repository,
            %error,
            "cannot record the sync status; the sync counts as failed"
        );
    }
    result
}
