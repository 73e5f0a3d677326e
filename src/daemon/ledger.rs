//! The sync layer's side of the source contract: [`StoreLedger`] answers a
//! source's [`Ledger`] questions from the store and keeps the batches a source
//! hands to its [`BatchSink`], each in one store transaction with its cursors.
//!
//! The only place where sources and the store meet. It adds no caching; the
//! questions that need the engine (change sets the history cannot decide yet,
//! changes without a pull request) load the repository's events and ask it, on
//! the store's blocking thread.

use crate::domain::batch::{ApplyStats, Cursor, CursorKey, SyncBatch};
use crate::domain::{
    CommitSha, Deployment, DeploymentSource, Environment, IncidentSource, RepoName, ScopedIncident,
    Timestamp,
};
use crate::dora::UncoveredChangeSet;
use crate::dora::{
    changes_without_pull, pulls_without_review, uncovered_change_sets, ChangesWithoutPull, Events,
    PullsWithoutReview,
};
use crate::sources::{BatchSink, Ledger, LedgerError, LedgerFuture};
use crate::store::{SharedStore, Store, StoreError};
use std::collections::HashSet;

/// A [`Ledger`] and [`BatchSink`] over the shared store.
#[derive(Debug, Clone)]
pub(crate) struct StoreLedger {
    store: SharedStore,
}

impl StoreLedger {
    pub(crate) fn new(store: SharedStore) -> Self {
        StoreLedger { store }
    }

    /// Runs `call` with the store on its blocking thread.
    fn call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> LedgerFuture<'_, T> {
        Box::pin(async move { self.store.call(call).await.map_err(LedgerError::new) })
    }
}

/// Every kept event of `repository`.
fn repository_events(store: &dyn Store, repository: &RepoName) -> Result<Events, StoreError> {
    let mut builder = Events::builder();
    store.load_events(std::slice::from_ref(repository), &mut builder)?;
    Ok(builder.build())
}

impl Ledger for StoreLedger {
    fn cursor(&self, key: CursorKey) -> LedgerFuture<'_, Option<Cursor>> {
        self.call(move |store| store.cursor(&key))
    }

    fn pending_deployments(
        &self,
        repository: RepoName,
        source: DeploymentSource,
    ) -> LedgerFuture<'_, Vec<Deployment>> {
        self.call(move |store| {
            let mut pending = Vec::new();
            for (from, id) in store.pending_deployments(&repository)? {
                if from == source {
                    pending.extend(store.deployment(&repository, from, id)?);
                }
            }
            Ok(pending)
        })
    }

    fn terminal_deployment_ids(
        &self,
        repository: RepoName,
        source: DeploymentSource,
    ) -> LedgerFuture<'_, HashSet<u64>> {
        self.call(move |store| store.terminal_deployment_ids(&repository, source))
    }

    fn scoped_incidents(
        &self,
        source: IncidentSource,
        numbers: Vec<u64>,
    ) -> LedgerFuture<'_, Vec<ScopedIncident>> {
        self.call(move |store| store.scoped_incidents(source, &numbers))
    }

    fn deployment(
        &self,
        repository: RepoName,
        source: DeploymentSource,
        id: u64,
    ) -> LedgerFuture<'_, Option<Deployment>> {
        self.call(move |store| store.deployment(&repository, source, id))
    }

    fn missing_compares(
        &self,
        repository: RepoName,
    ) -> LedgerFuture<'_, Vec<(Environment, CommitSha, CommitSha)>> {
        self.call(move |store| store.missing_compares(&repository))
    }

    fn undecided_change_sets(
        &self,
        repository: RepoName,
        production: Vec<Environment>,
    ) -> LedgerFuture<'_, Vec<UncoveredChangeSet>> {
        self.call(move |store| {
            let events = repository_events(store, &repository)?;
            let mut uncovered = uncovered_change_sets(&events, &production, Timestamp(i64::MAX));
            uncovered.sort_by_key(|u| (u.head_at, u.base_at));
            Ok(uncovered)
        })
    }

    fn changes_without_pull(
        &self,
        repository: RepoName,
        production: Vec<Environment>,
        after: Timestamp,
    ) -> LedgerFuture<'_, Option<ChangesWithoutPull>> {
        self.call(move |store| {
            let events = repository_events(store, &repository)?;
            Ok(
                changes_without_pull(&events, &production, after, Timestamp(i64::MAX))
                    .into_iter()
                    .next(),
            )
        })
    }

    fn pulls_without_review(
        &self,
        repository: RepoName,
        production: Vec<Environment>,
        after: Timestamp,
        merged_before: Timestamp,
        merged_from: Option<Timestamp>,
    ) -> LedgerFuture<'_, Option<PullsWithoutReview>> {
        self.call(move |store| {
            let events = repository_events(store, &repository)?;
            Ok(pulls_without_review(
                &events,
                &production,
                after,
                merged_before,
                merged_from,
                Timestamp(i64::MAX),
            )
            .into_iter()
            .next())
        })
    }
}

impl BatchSink for StoreLedger {
    fn keep(&self, batch: SyncBatch) -> LedgerFuture<'_, ApplyStats> {
        self.call(move |store| store.apply(&batch))
    }
}
