//! `SqliteStore`: the [`Store`] on an embedded SQLite file (rusqlite, bundled SQLite).
//!
//! One connection per store, WAL journal (readers in other processes, such as a
//! `report` run, never block the daemon's writes), `synchronous=NORMAL` (a committed
//! transaction survives a process crash; after a power loss the last few may be lost,
//! but never half of one), foreign keys on, a busy timeout for the rare moment two
//! processes write at once.
//!
//! It does not pool connections, and spawns threads in one place only: a large
//! `load_events` from a file reads repositories on a few extra read-only
//! connections at once ([`MAX_LOAD_THREADS`]); everything else runs where the
//! caller runs it (see the [`store`](crate::store) module documentation).

pub(super) mod codec;
pub(super) mod copy;
pub(super) mod read;
mod schema;
pub(super) mod write;

pub use schema::SCHEMA_VERSION;

use super::{
    ApplyStats, CommitRecord, Cursor, CursorKey, PushRequest, PushVerdict, Store, StoreCounts,
    StoreError, SyncBatch, SyncOutcome, SyncStatus,
};
use crate::domain::{
    CommitSha, Deployment, DeploymentSource, Environment, IncidentSource, RepoName, ScopedIncident,
    Team, Timestamp,
};
use crate::dora::EventSink;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use schema::MigrateError;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// How long a write waits for another process's write to finish before failing with
/// "database is locked". Transactions here last milliseconds to a few seconds (a large
/// first sync); a `report` run only reads, which WAL never blocks.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite's page cache per connection, in KiB. Commits are clustered by sha, so a
/// bulk insert touches pages all over the table; with the default 2 MiB cache,
/// `benches/store.rs` applies 300,000 commits about 1.4 times slower. 64 MiB holds
/// the upper levels of every B-tree at 10 million commits and is small next to the
/// engine's own footprint at that scale.
pub(crate) const CACHE_SIZE_KIB: i64 = 64 * 1024;

/// The most threads (each with its own read-only connection) one `load_events`
/// reads with. Reading and decoding rows is CPU-bound and repositories are
/// independent; beyond a few threads SQLite's shared page reads and the memory
/// bus stop it scaling.
pub(crate) const MAX_LOAD_THREADS: usize = 4;

/// The fewest repositories per load thread: below this, opening connections
/// costs more than it saves.
pub const MIN_REPOSITORIES_PER_LOAD_THREAD: usize = 32;

/// How a store without a file names itself in errors.
const IN_MEMORY_PATH: &str = ":memory:";

/// The [`Store`] on an embedded SQLite database.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    /// The file, for error messages.
    path: String,
    /// The file, for extra read connections (`None` in memory).
    file: Option<std::path::PathBuf>,
}

/// Maps a database error of `operation` on the store at `path`.
pub(crate) fn db_error<'a>(
    path: &'a str,
    operation: &'static str,
) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |cause| StoreError::Database {
        path: path.to_owned(),
        operation,
        cause,
    }
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file and its parent directory when
    /// missing, and migrates it to [`SCHEMA_VERSION`]. Refuses a file written by a
    /// newer version or by another application.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|cause| StoreError::CreateDirectory {
                path: shown.clone(),
                cause,
            })?;
        }
        // No SQLITE_OPEN_URI: the configured path is a file name, never a URI.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|cause| StoreError::Open {
            path: shown.clone(),
            cause,
        })?;
        let mut store = Self::configure(conn, shown, true)?;
        store.file = Some(path.to_path_buf());
        Ok(store)
    }

    /// Another connection to this store's file that can only read, configured like
    /// the main one (no migration: the main connection did that).
    fn read_connection(file: &Path, path: &str) -> Result<Connection, StoreError> {
        let open_error = |cause| StoreError::Open {
            path: path.to_owned(),
            cause,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(file, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        conn.pragma_update(None, "cache_size", -CACHE_SIZE_KIB)
            .map_err(open_error)?;
        Ok(conn)
    }

    /// `load_events` on several threads: repository `i` is read by thread
    /// `i % threads`, each on its own read-only connection in its own read
    /// transaction (every repository is still read within one transaction, so it is
    /// consistent; different repositories may be read a moment apart, as they are
    /// written in separate syncs anyway).
    fn load_events_parallel(
        &self,
        file: &Path,
        repositories: &[RepoName],
        threads: usize,
        sink: &mut dyn EventSink,
    ) -> Result<(), StoreError> {
        let mut unique: Vec<&RepoName> = Vec::with_capacity(repositories.len());
        let mut seen = HashSet::new();
        unique.extend(repositories.iter().filter(|r| seen.insert(*r)));
        let share = |k: usize| -> Vec<RepoName> {
            unique
                .iter()
                .skip(k)
                .step_by(threads)
                .map(|r| (*r).clone())
                .collect()
        };
        let path = self.path.as_str();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads)
                .map(|k| {
                    let mine = share(k);
                    let mut forked = sink.fork();
                    scope.spawn(move || {
                        let conn = Self::read_connection(file, path)?;
                        read::load_events(&conn, path, &mine, false, forked.as_mut())?;
                        Ok::<_, StoreError>(forked)
                    })
                })
                .collect();
            read::load_events(&self.conn, &self.path, &share(0), true, sink)?;
            for worker in workers {
                let forked = worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                sink.join(forked);
            }
            Ok(())
        })
    }

    /// A fresh store in memory (for tests); gone when dropped.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|cause| StoreError::Open {
            path: IN_MEMORY_PATH.to_owned(),
            cause,
        })?;
        Self::configure(conn, IN_MEMORY_PATH.to_owned(), false)
    }

    /// The file this store lives in (`:memory:` for an in-memory store).
    pub fn path(&self) -> &str {
        &self.path
    }

    fn configure(mut conn: Connection, path: String, wal: bool) -> Result<Self, StoreError> {
        let open_error = |cause| StoreError::Open {
            path: path.clone(),
            cause,
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        conn.pragma_update(None, "cache_size", -CACHE_SIZE_KIB)
            .map_err(open_error)?;
        // Check the version before changing the file's journal mode.
        schema::migrate(&mut conn).map_err(|error| match error {
            MigrateError::Future { found } => StoreError::FutureVersion {
                path: path.clone(),
                found,
                supported: SCHEMA_VERSION,
            },
            MigrateError::Foreign { found } => StoreError::ForeignFile {
                path: path.clone(),
                found,
            },
            MigrateError::Read(cause) => open_error(cause),
            MigrateError::Step { version, cause } => StoreError::Migration {
                path: path.clone(),
                version,
                cause,
            },
        })?;
        if wal {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
                .map_err(open_error)?;
            if !mode.eq_ignore_ascii_case("wal") {
                // Some file systems (network mounts) cannot do WAL. The store still
                // works, only readers in other processes then wait for writers.
                tracing::warn!(
                    store = %path,
                    journal_mode = %mode,
                    "SQLite could not switch the store to WAL; readers will block writers"
                );
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        Ok(SqliteStore {
            conn,
            path,
            file: None,
        })
    }

    /// Makes every commit of this connection durable against power loss too
    /// (`synchronous=FULL`: the WAL is synced at each commit), not only against
    /// a crash of the process. For a writer that acknowledges each commit to a
    /// client (the push API) and commits many items at once.
    pub fn sync_every_commit(&self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(db_error(&self.path, "setting synchronous=FULL"))
    }

    /// The id of `repository`, if the store has seen it.
    fn repo_id(&self, repository: &RepoName) -> Result<Option<i64>, StoreError> {
        read::repo_id(&self.conn, &self.path, repository)
    }

    /// The successful deployment of `repository` to `environment` (exact name)
    /// with the latest deploy time; among equal deploy times the greatest
    /// `(source, id)` (also [`Store::latest_successful_deployment`]).
    pub fn latest_successful_deployment(
        &self,
        repository: &RepoName,
        environment: &Environment,
    ) -> Result<Option<Deployment>, StoreError> {
        let Some(repo_id) = self.repo_id(repository)? else {
            return Ok(None);
        };
        read::successful_deployment_before(
            &self.conn,
            &self.path,
            repository,
            repo_id,
            environment,
            None,
        )
    }

    /// Like [`SqliteStore::latest_successful_deployment`], among those deployed
    /// strictly before `before`.
    pub fn previous_successful_deployment(
        &self,
        repository: &RepoName,
        environment: &Environment,
        before: Timestamp,
    ) -> Result<Option<Deployment>, StoreError> {
        let Some(repo_id) = self.repo_id(repository)? else {
            return Ok(None);
        };
        read::successful_deployment_before(
            &self.conn,
            &self.path,
            repository,
            repo_id,
            environment,
            Some(before),
        )
    }

    /// One stored commit; its `message` is the stored first line (see
    /// [`CommitRecord`]). (Not part of [`Store`]: for tests and tools.)
    pub fn commit(
        &self,
        repository: &RepoName,
        sha: &CommitSha,
    ) -> Result<Option<CommitRecord>, StoreError> {
        let Some(repo_id) = self.repo_id(repository)? else {
            return Ok(None);
        };
        read::commit(&self.conn, &self.path, repo_id, sha)
    }
}

impl Store for SqliteStore {
    fn apply(&mut self, batch: &SyncBatch) -> Result<ApplyStats, StoreError> {
        write::apply(&mut self.conn, &self.path, batch)
    }

    fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, StoreError> {
        let Some(repo_id) = self.repo_id(&key.repository)? else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(
                "SELECT since, opaque, updated_at FROM cursors WHERE repo_id = ?1 AND endpoint = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row((repo_id, &key.endpoint), |row| {
                    Ok(Cursor {
                        since: row.get::<_, Option<i64>>(0)?.map(Timestamp),
                        opaque: row.get(1)?,
                        updated_at: Timestamp(row.get(2)?),
                    })
                })
                .optional()
            })
            .map_err(db_error(&self.path, "reading a cursor"))
    }

    fn scoped_incidents(
        &self,
        source: IncidentSource,
        numbers: &[u64],
    ) -> Result<Vec<ScopedIncident>, StoreError> {
        read::scoped_incidents(&self.conn, &self.path, source, numbers)
    }

    fn pending_deployments(
        &self,
        repository: &RepoName,
    ) -> Result<Vec<(DeploymentSource, u64)>, StoreError> {
        let Some(repo_id) = self.repo_id(repository)? else {
            return Ok(Vec::new());
        };
        read::pending_deployments(&self.conn, &self.path, repo_id)
    }

    fn terminal_deployment_ids(
        &self,
        repository: &RepoName,
        source: DeploymentSource,
    ) -> Result<HashSet<u64>, StoreError> {
        let Some(repo_id) = self.repo_id(repository)? else {
            return Ok(HashSet::new());
        };
        read::terminal_deployment_ids(&self.conn, &self.path, repo_id, source)
    }

    fn deployment(
        &self,
        repository: &RepoName,
        source: DeploymentSource,
        id: u64,
    ) -> Result<Option<Deployment>, StoreError> {
        let Some(repo_id) = self.repo_id(repository)? else {
            return Ok(None);
        };
        let Ok(id) = i64::try_from(id) else {
            // Never stored: apply refuses such ids.
            return Ok(None);
        };
        read::deployment(&self.conn, &self.path, repository, repo_id, source, id)
    }

    fn missing_compares(
        &self,
        repository: &RepoName,
    ) -> Result<Vec<(Environment, CommitSha, CommitSha)>, StoreError> {
        let Some(repo_id) = self.repo_id(repository)? else {
            return Ok(Vec::new());
        };
        read::missing_compares(&self.conn, &self.path, repo_id)
    }

    fn record_sync(
        &mut self,
        repository: &RepoName,
        source: &str,
        finished_at: Timestamp,
        outcome: &SyncOutcome,
    ) -> Result<(), StoreError> {
        write::record_sync(
            &mut self.conn,
            &self.path,
            repository,
            source,
            finished_at,
            outcome,
            None,
        )
    }

    fn record_success(
        &mut self,
        repository: &RepoName,
        source: &str,
        finished_at: Timestamp,
        history_since: Timestamp,
    ) -> Result<(), StoreError> {
        write::record_sync(
            &mut self.conn,
            &self.path,
            repository,
            source,
            finished_at,
            &SyncOutcome::Succeeded,
            Some(history_since),
        )
    }

    fn sync_status(&self) -> Result<Vec<SyncStatus>, StoreError> {
        read::sync_status(&self.conn, &self.path)
    }

    fn repositories(&self) -> Result<Vec<RepoName>, StoreError> {
        read::repositories(&self.conn, &self.path)
    }

    fn load_events(
        &self,
        repositories: &[RepoName],
        sink: &mut dyn EventSink,
    ) -> Result<(), StoreError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_LOAD_THREADS)
            .min(repositories.len() / MIN_REPOSITORIES_PER_LOAD_THREAD);
        match &self.file {
            Some(file) if threads > 1 => {
                self.load_events_parallel(file, repositories, threads, sink)
            }
            _ => read::load_events(&self.conn, &self.path, repositories, true, sink),
        }
    }

    fn read_repository(&self, repository: &RepoName) -> Result<SyncBatch, StoreError> {
        read::read_repository(&self.conn, &self.path, repository)
    }

    fn counts(&self) -> Result<StoreCounts, StoreError> {
        read::counts(&self.conn, &self.path)
    }

    fn push(&mut self, requests: &[PushRequest]) -> Result<Vec<PushVerdict>, StoreError> {
        write::push(&mut self.conn, &self.path, requests)
    }

    fn pushed_repositories(&self) -> Result<Vec<RepoName>, StoreError> {
        write::pushed_repositories(&self.conn, &self.path)
    }

    fn record_teams(
        &mut self,
        teams: &[(RepoName, Team)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        write::record_teams(&mut self.conn, &self.path, teams, at)
    }

    fn recorded_teams(&self) -> Result<Vec<(RepoName, Team)>, StoreError> {
        write::recorded_teams(&self.conn, &self.path)
    }

    fn latest_successful_deployment(
        &self,
        repository: &RepoName,
        environment: &Environment,
    ) -> Result<Option<Deployment>, StoreError> {
        SqliteStore::latest_successful_deployment(self, repository, environment)
    }
}

#[cfg(test)]
mod tests;
