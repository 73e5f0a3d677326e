//! The store: every normalized event the sources have read, the sync cursors and the
//! sync status, behind the [`Store`] trait. [`SqliteStore`] is the embedded backend
//! (the default); [`PostgresStore`] keeps the same on a PostgreSQL server
//! (`[storage] url`). [`open`] opens the configured one.
//!
//! This module is the only place in the project that speaks SQL. It keeps events
//! idempotently (re-reading an event updates it, never duplicates it), advances a
//! cursor only in the same transaction as the data it covers, and streams the events
//! into a sink the engine defines ([`EventSink`](crate::dora::EventSink)).
//!
//! It deliberately does not decide what counts: no metric, no filtering by
//! environment or label, no knowledge of GitHub's wire format or of time (every
//! timestamp is an argument). The one domain rule it applies is that a deployment's
//! outcome never moves backwards (see [`merge_outcome`]), so that a stale re-read
//! cannot undo a deployment.
//!
//! # Threads
//! The trait is synchronous and `Send`, not `Sync`: one store is owned by one task
//! at a time. The async daemon calls it from `tokio::task::spawn_blocking` (moving
//! the store in and out, or holding it in a `std::sync::Mutex`), never directly on
//! an async worker thread: a large `apply` or `load_events` blocks for seconds.

mod error;
mod leases;
mod migrate;
mod postgres;
mod shared;
mod sqlite;
mod tables;
mod types;

pub use crate::domain::batch::{PushItem, PushKind, PushRequest, PushVerdict, PushedEvent};
pub use error::StoreError;
pub use leases::{
    fair_share, Lease, LeaseGrant, LeaseRequest, MAX_LEASE_HOLDER_BYTES, METRICS_LEASE,
    REPLICA_LEASE_PREFIX, REPOSITORY_LEASE_PREFIX,
};
pub use migrate::{
    migrate, uncopied_tables, MigrateError, MigrateEvent, MigrateOptions, MigrateReport, StoreUrl,
    TableCounts, CHUNK_ROWS as MIGRATE_CHUNK_ROWS,
};
pub use postgres::{
    PostgresStore, PostgresUrl, CONNECT_TIMEOUT as POSTGRES_CONNECT_TIMEOUT,
    POOL_SIZE as POSTGRES_POOL_SIZE, REDACTED_PASSWORD, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION,
};
pub use shared::SharedStore;
pub use sqlite::{SqliteStore, MIN_REPOSITORIES_PER_LOAD_THREAD};
pub(crate) use types::{commit_subject, MAX_CURSOR_ENDPOINT_BYTES, MAX_SYNC_SOURCE_BYTES};
pub use types::{
    merge_outcome, ApplyStats, CommitRecord, Cursor, CursorKey, KindStats, StoreCounts, SyncBatch,
    SyncOutcome, SyncStatus, MAX_COMMIT_SUBJECT_BYTES, MAX_CURSOR_OPAQUE_BYTES,
    MAX_SYNC_ERROR_BYTES,
};

use crate::domain::{
    CommitSha, Deployment, DeploymentSource, Environment, IncidentSource, RepoName, ScopedIncident,
    Team, Timestamp,
};
use crate::dora::EventSink;
use std::collections::HashSet;

/// Where events, cursors and sync status are kept.
///
/// Synchronous by design; see the module documentation for how the async daemon
/// calls it. Every method that takes `&mut self` is one transaction: it either
/// happens completely or not at all.
pub trait Store: Send {
    /// Upserts everything in `batch` and advances the cursors it carries, in ONE
    /// transaction: after a crash (even `kill -9` at any point) the store holds either
    /// the old data and old cursors or the new data and new cursors.
    ///
    /// Identities: deployments by `(source, repository, id)` (the outcome only moves
    /// forward, see [`merge_outcome`]), commits by `(repository, sha)`, compares by
    /// `(repository, base, head)`, incidents by `(source, repository, number)`, pull
    /// requests by `(repository, number)`, cursors by their key. Everything but deployments is
    /// replaced by the newer read. Every event and cursor must belong to
    /// `batch.repository`; otherwise, or when a number does not fit the store, the
    /// whole batch is refused and nothing changes.
    fn apply(&mut self, batch: &SyncBatch) -> Result<ApplyStats, StoreError>;

    /// The cursor stored under `key`, if any.
    fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, StoreError>;

    /// The deployments of `repository` whose outcome is still pending: the source
    /// reads them again; terminal ones are never re-read. Sorted by source, then id.
    fn pending_deployments(
        &self,
        repository: &RepoName,
    ) -> Result<Vec<(DeploymentSource, u64)>, StoreError>;

    /// The ids of the deployments of `repository` from `source` whose outcome is
    /// terminal (succeeded or failed): the source skips them when it meets them again.
    fn terminal_deployment_ids(
        &self,
        repository: &RepoName,
        source: DeploymentSource,
    ) -> Result<HashSet<u64>, StoreError>;

    /// The stored incidents of a team or of a set of repositories from `source`
    /// among `numbers` (those not stored are left out), sorted by number.
    fn scoped_incidents(
        &self,
        source: IncidentSource,
        numbers: &[u64],
    ) -> Result<Vec<ScopedIncident>, StoreError>;

    /// One stored deployment.
    fn deployment(
        &self,
        repository: &RepoName,
        source: DeploymentSource,
        id: u64,
    ) -> Result<Option<Deployment>, StoreError>;

    /// The change sets a source still has to read: for every environment (names
    /// grouped case-insensitively, ASCII), the consecutive pairs `(P, D)` of
    /// successful deployments of `repository` in deploy-time order (ties by source,
    /// then id) whose shas differ and whose compare `P.sha...D.sha` is not stored.
    /// Each entry is `(environment of D as stored, P.sha, D.sha)`; a pair is listed
    /// once, sorted by environment, then base and head.
    fn missing_compares(
        &self,
        repository: &RepoName,
    ) -> Result<Vec<(Environment, CommitSha, CommitSha)>, StoreError>;

    /// Records the end of one sync of `repository` by `source` (a short name such as
    /// `github_deployments` or `github_issues`). A success sets the last success time
    /// and clears the error; a failure keeps the last success and stores its text,
    /// cut to [`MAX_SYNC_ERROR_BYTES`]. The text must not contain secrets: the store
    /// keeps and shows what it is given.
    fn record_sync(
        &mut self,
        repository: &RepoName,
        source: &str,
        finished_at: Timestamp,
        outcome: &SyncOutcome,
    ) -> Result<(), StoreError>;

    /// [`Store::record_sync`] of a success after which the repository's history
    /// is complete since `history_since` (the start of the sync's lookback), in
    /// the same transaction. The first one recorded is kept: a sync resumes
    /// where the one before stopped, so history only grows back.
    fn record_success(
        &mut self,
        repository: &RepoName,
        source: &str,
        finished_at: Timestamp,
        history_since: Timestamp,
    ) -> Result<(), StoreError>;

    /// The sync status of every repository and source that has one, sorted by
    /// repository, then source (for `/readyz` and the health metrics).
    fn sync_status(&self) -> Result<Vec<SyncStatus>, StoreError>;

    /// Every repository the store has seen, sorted.
    fn repositories(&self) -> Result<Vec<RepoName>, StoreError>;

    /// Streams every stored event of `repositories` (unknown ones are skipped,
    /// duplicates read once) into `sink` (the engine's
    /// [`EventsBuilder`](crate::dora::EventsBuilder), usually), finishing each
    /// repository before the next one to keep memory low. A backend may fill
    /// [`EventSink::fork`]ed sinks on other threads and join them. Reads one
    /// consistent snapshot of the store.
    fn load_events(
        &self,
        repositories: &[RepoName],
        sink: &mut dyn EventSink,
    ) -> Result<(), StoreError>;

    /// Everything stored for `repository` as one batch (events sorted by identity,
    /// cursors by endpoint), read from one consistent snapshot. It materializes the
    /// whole repository: meant for tests, exports and copying between backends, not
    /// for the engine (use [`Store::load_events`]).
    fn read_repository(&self, repository: &RepoName) -> Result<SyncBatch, StoreError>;

    /// Row counts per table (for tests and logging).
    fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// Keeps pushed items (the push API's group commit): every request whole or
    /// not at all, all of them in ONE transaction, so that when this returns
    /// the kept ones are durable. A request whose item reuses a client's id with
    /// other content than stored (beyond the one allowed update, see
    /// [`PushItem`](crate::domain::batch::PushItem)) is kept not at all and
    /// answered [`PushVerdict::Conflict`]; the others [`PushVerdict::Stored`].
    /// Each new `(client, kind, id)` gets a number of its own, under which its
    /// event is stored (deployments from `push`, incidents from `push`).
    /// A database error keeps none of the requests.
    fn push(&mut self, requests: &[PushRequest]) -> Result<Vec<PushVerdict>, StoreError>;

    /// Every repository that has a pushed item, sorted.
    fn pushed_repositories(&self) -> Result<Vec<RepoName>, StoreError>;

    /// Keeps the team each of `teams`' repositories has now (as a source gave
    /// it: a discovered repository's team comes from GitHub), at `at`; one
    /// transaction.
    fn record_teams(&mut self, teams: &[(RepoName, Team)], at: Timestamp)
        -> Result<(), StoreError>;

    /// Every repository's last recorded team, sorted by repository (a report
    /// made from the store alone names discovered repositories with them).
    fn recorded_teams(&self) -> Result<Vec<(RepoName, Team)>, StoreError>;

    /// The successful deployment of `repository` to `environment` (the exact
    /// name) with the latest deploy time, whatever its source; among equal deploy
    /// times the greatest `(source, id)`. (The push API's
    /// `GET /api/v1/deployments/latest`: what a pipeline deployed last.)
    fn latest_successful_deployment(
        &self,
        repository: &RepoName,
        environment: &Environment,
    ) -> Result<Option<Deployment>, StoreError>;

    /// Renews the leases of replicas sharing this store, in ONE transaction
    /// serialized with every other replica's: `request.holder`'s heartbeat,
    /// its share of `request.units` (it keeps the busy ones and the first by
    /// name up to [`fair_share`] over the live replicas, releases the rest,
    /// claims unheld or expired ones up to the share) and the metrics lease
    /// when nobody else holds it. Expiry is on the database server's clock.
    ///
    /// `None`: the store is not shared (only one process opens it, as
    /// SQLite's file), so every lease is this process's. The default.
    fn acquire_leases(
        &mut self,
        request: &LeaseRequest<'_>,
    ) -> Result<Option<LeaseGrant>, StoreError> {
        let _ = request;
        Ok(None)
    }

    /// Gives up every lease of `holder` (at a clean shutdown, so another
    /// replica takes them over at its next renewal). The default does nothing.
    fn release_leases(&mut self, holder: &str) -> Result<(), StoreError> {
        let _ = holder;
        Ok(())
    }

    /// Every stored lease, sorted by name (for operators and tests). The
    /// default: none.
    fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        Ok(Vec::new())
    }
}

/// Where a store lives: the embedded SQLite file (the default) or a PostgreSQL
/// database.
#[derive(Debug, Clone, Copy)]
pub enum StoreLocation<'a> {
    Sqlite(&'a std::path::Path),
    Postgres(&'a PostgresUrl),
}

/// Opens (creating or migrating) the store at `location`. Blocks: call it where
/// blocking is allowed (`spawn_blocking` in async code).
pub fn open(location: StoreLocation<'_>) -> Result<Box<dyn Store>, StoreError> {
    Ok(match location {
        StoreLocation::Sqlite(path) => Box::new(SqliteStore::open(path)?),
        StoreLocation::Postgres(url) => Box::new(PostgresStore::open(url)?),
    })
}
