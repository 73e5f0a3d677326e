//! The source contract's side towards what was kept: [`Ledger`], the read-only
//! view of the past a source may ask about (cursors, deployments still pending,
//! change sets the history cannot decide yet), and [`BatchSink`], where a source
//! hands each batch with the cursors it covers.
//!
//! The sync layer implements both (the daemon, over whatever keeps the events); a
//! source holds nothing else. So a source only reads its API and says what it
//! read: it cannot write anything but whole batches, and it knows neither where
//! nor how they are kept.

use crate::domain::batch::{ApplyStats, Cursor, CursorKey, SyncBatch};
use crate::domain::{
    CommitSha, Deployment, DeploymentSource, Environment, IncidentSource, RepoName, ScopedIncident,
    Timestamp,
};
use crate::dora::{ChangesWithoutPull, PullsWithoutReview, UncoveredChangeSet};
use futures::future::BoxFuture;
use std::collections::HashSet;

/// Why the ledger could not answer or a batch could not be kept. Its message is
/// the underlying error's (it names the file or server, never a token).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LedgerError(Box<dyn std::error::Error + Send + Sync>);

impl LedgerError {
    /// Wraps the error of whatever keeps the events.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        LedgerError(Box::new(error))
    }
}

/// The answer of a [`Ledger`] or [`BatchSink`] call.
pub type LedgerFuture<'a, T> = BoxFuture<'a, Result<T, LedgerError>>;

/// What a source may know of the past: read-only, one repository at a time.
/// Every answer reflects every batch kept before the call.
pub trait Ledger: Send + Sync {
    /// The cursor kept under `key`, if any.
    fn cursor(&self, key: CursorKey) -> LedgerFuture<'_, Option<Cursor>>;

    /// The deployments of `repository` from `source` whose outcome is still
    /// pending (the source reads them again), sorted by id.
    fn pending_deployments(
        &self,
        repository: RepoName,
        source: DeploymentSource,
    ) -> LedgerFuture<'_, Vec<Deployment>>;

    /// The ids of the deployments of `repository` from `source` whose outcome is
    /// terminal: the source skips them when it meets them again.
    fn terminal_deployment_ids(
        &self,
        repository: RepoName,
        source: DeploymentSource,
    ) -> LedgerFuture<'_, HashSet<u64>>;

    /// The kept incidents of a team or of a set of repositories from `source`
    /// among `numbers` (those not kept are left out), sorted by number.
    fn scoped_incidents(
        &self,
        source: IncidentSource,
        numbers: Vec<u64>,
    ) -> LedgerFuture<'_, Vec<ScopedIncident>>;

    /// One kept deployment.
    fn deployment(
        &self,
        repository: RepoName,
        source: DeploymentSource,
        id: u64,
    ) -> LedgerFuture<'_, Option<Deployment>>;

    /// The consecutive pairs of successful deployments of `repository` to one
    /// environment whose change set is not kept: `(environment, base, head)`,
    /// sorted by environment, then base and head.
    fn missing_compares(
        &self,
        repository: RepoName,
    ) -> LedgerFuture<'_, Vec<(Environment, CommitSha, CommitSha)>>;

    /// The change sets of `repository`'s successful deployments to `production`
    /// that the kept history cannot decide yet, sorted by head, then base
    /// deployment time. Every kept deployment counts, whatever the clock says.
    fn undecided_change_sets(
        &self,
        repository: RepoName,
        production: Vec<Environment>,
    ) -> LedgerFuture<'_, Vec<UncoveredChangeSet>>;

    /// The deployed changes of `repository` (to `production`, deployed after
    /// `after`) whose pull request is not known yet; `None` when the repository
    /// has no events.
    fn changes_without_pull(
        &self,
        repository: RepoName,
        production: Vec<Environment>,
        after: Timestamp,
    ) -> LedgerFuture<'_, Option<ChangesWithoutPull>>;

    /// The kept merged pull requests of `repository` without a first review
    /// that were merged before `merged_before` and that a change deployed (to
    /// `production`, after `after`) came through, or (with `merged_from`) that
    /// were merged at or after it; `None` when the repository has no events.
    fn pulls_without_review(
        &self,
        repository: RepoName,
        production: Vec<Environment>,
        after: Timestamp,
        merged_before: Timestamp,
        merged_from: Option<Timestamp>,
    ) -> LedgerFuture<'_, Option<PullsWithoutReview>>;
}

/// Where a source hands what it read.
pub trait BatchSink: Send + Sync {
    /// Keeps `batch` and advances its cursors in one transaction: afterwards
    /// either all of it is kept or none of it. Returns what changed.
    fn keep(&self, batch: SyncBatch) -> LedgerFuture<'_, ApplyStats>;
}
