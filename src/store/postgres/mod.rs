//! `PostgresStore`: the [`Store`] on a PostgreSQL database (`[storage] url`).
//!
//! The `Store` trait is synchronous, so this backend uses the synchronous
//! `postgres` client (tokio-postgres driven on a small runtime of its own per
//! connection) with a small bounded pool (`r2d2`): every call takes a connection
//! for its duration, so the daemon's store, the push writer's and the live report's
//! each hold at most [`POOL_SIZE`] connections, and a connection lost with a server
//! restart is replaced on the next call. TLS goes through rustls with the system's
//! root certificates, as `sslmode` (`disable`, `prefer`, `require`) in the URL
//! asks; under `require` the server's certificate and name are verified.
//!
//! Like the SQLite store it must never be called on an async worker thread (the
//! client blocks on its own runtime, which tokio forbids there): the daemon calls
//! it through `SharedStore`'s `spawn_blocking`. Dropping it is safe anywhere (its
//! connections are closed on a thread of their own when dropped inside a runtime).
//!
//! It keeps the SQLite store's guarantees (see the [`store`](crate::store) module):
//! one transaction per `apply` with its cursors, idempotent upserts, outcomes that
//! only move forward. Replicas sharing the database divide the repositories
//! with leases (`leases.rs`); `copy.rs` is its side of `store migrate`.

pub(super) mod copy;
mod leases;
mod read;
mod schema;
mod url;
mod write;

pub use schema::SCHEMA_VERSION;
pub use url::{PostgresUrl, REDACTED_PASSWORD};

use super::{
    Cursor, CursorKey, PushRequest, PushVerdict, Store, StoreCounts, StoreError, SyncBatch,
    SyncOutcome, SyncStatus,
};
use crate::domain::{
    CommitSha, Deployment, DeploymentSource, Environment, IncidentSource, RepoName, ScopedIncident,
    Team, Timestamp,
};
use crate::dora::EventSink;
use r2d2_postgres::PostgresConnectionManager;
use schema::MigrateError;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The most connections one store holds at once. The daemon serializes its store
/// calls, so one is busy most of the time; the rest cover the other stores of the
/// process (the push writer, `/report`) without letting them flood the server.
pub const POOL_SIZE: u32 = 4;

/// How long a call waits for a free connection (or a new one) before failing.
pub const POOL_WAIT: Duration = Duration::from_secs(30);

/// How long opening one connection may take (unless the URL sets
/// `connect_timeout`): an unreachable server fails the open within it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_name` the store's connections show in `pg_stat_activity`.
const APPLICATION_NAME: &str = "dora-collector";

/// A pooled connection with the write statements prepared on it (each parsed
/// and planned once per connection rather than once per batch).
pub(super) struct PgConnection {
    client: postgres::Client,
    statements: write::Statements,
}

impl std::ops::Deref for PgConnection {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// The pool's manager: `r2d2_postgres`'s, each connection with its statements.
struct Manager(PostgresConnectionManager<MakeRustlsConnect>);

impl r2d2::ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConnection, postgres::Error> {
        Ok(PgConnection {
            client: self.0.connect()?,
            statements: write::Statements::default(),
        })
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

type Connection = r2d2::PooledConnection<Manager>;

/// The [`Store`] on a PostgreSQL database.
pub struct PostgresStore {
    /// Always `Some` but while dropping.
    pool: Option<r2d2::Pool<Manager>>,
    url: PostgresUrl,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The server's or the client's message of `error`, with its causes.
pub(super) fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Maps a database error of `operation` on the store `target`.
pub(super) fn pg_error<'a>(
    target: &'a str,
    operation: &'static str,
) -> impl Fn(postgres::Error) -> StoreError + 'a {
    move |cause| StoreError::Postgres {
        target: target.to_owned(),
        operation,
        cause: describe(&cause),
    }
}

/// The TLS connector of every store (rustls with ring, the system's roots), made
/// once per process.
fn tls() -> Result<MakeRustlsConnect, String> {
    static TLS: OnceLock<Result<MakeRustlsConnect, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable certificates are skipped: `require` then fails with the
        // server's certificate unknown, which names the problem.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    })
    .clone()
}

/// Whether `error` is the server not answering (refused, unknown host, timeout)
/// rather than an answer.
fn is_unreachable(error: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl PostgresStore {
    /// Connects to the database at `url` and migrates it to [`SCHEMA_VERSION`].
    /// Refuses a database at a newer version or with another application's
    /// tables; an unreachable server and refused credentials have errors of
    /// their own. Blocks: call it where blocking is allowed.
    pub fn open(url: &PostgresUrl) -> Result<Self, StoreError> {
        let target = url.shown().to_owned();
        let (config, tls, mut client) = Self::connect(url)?;
        schema::migrate(&mut client).map_err(|error| match error {
            MigrateError::Future { found } => StoreError::FutureSchema {
                target: target.clone(),
                found,
                supported: SCHEMA_VERSION,
            },
            MigrateError::Foreign => StoreError::ForeignDatabase {
                target: target.clone(),
            },
            MigrateError::Read(cause) => pg_error(&target, "reading the schema version")(cause),
            MigrateError::Step { version, cause } => StoreError::PostgresMigration {
                target: target.clone(),
                version,
                cause: describe(&cause),
            },
        })?;
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .connection_timeout(POOL_WAIT)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager(PostgresConnectionManager::new(config, tls)));
        Ok(PostgresStore {
            pool: Some(pool),
            url: url.clone(),
        })
    }

    /// One connection to `url` outside any pool, with the client's configuration
    /// and TLS connector for a pool: the connect timeout and application name set
    /// unless the URL sets them. Errors tell an unreachable server and refused
    /// credentials apart.
    fn connect(
        url: &PostgresUrl,
    ) -> Result<(postgres::Config, MakeRustlsConnect, postgres::Client), StoreError> {
        let target = url.shown().to_owned();
        let mut config = url.config().map_err(|reason| StoreError::InvalidInput {
            path: target.clone(),
            what: "storage.url",
            reason,
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        let tls = tls().map_err(|reason| StoreError::InvalidInput {
            path: target.clone(),
            what: "TLS configuration",
            reason,
        })?;
        let client = config
            .connect(tls.clone())
            .map_err(|error| Self::connect_error(url, &error))?;
        Ok((config, tls, client))
    }

    /// The error of a failed first connection: unreachable, refused
    /// credentials, or the server's own message (an unknown database, ...).
    fn connect_error(url: &PostgresUrl, error: &postgres::Error) -> StoreError {
        use postgres::error::SqlState;
        let target = url.shown().to_owned();
        let cause = url.mask(&describe(error));
        let credentials = match error.code() {
            Some(code) => {
                *code == SqlState::INVALID_PASSWORD
                    || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            }
            // The client's own: the server asked for a password the URL lacks, or
            // for an authentication the client cannot do.
            None => {
                let text = describe(error);
                text.starts_with("authentication error") || text.contains("password missing")
            }
        };
        if credentials {
            StoreError::Credentials { target, cause }
        } else if error.code().is_none() && is_unreachable(error) {
            StoreError::Unreachable { target, cause }
        } else {
            StoreError::Postgres {
                target,
                operation: "connecting",
                cause,
            }
        }
    }

    /// The URL with its password redacted.
    pub fn target(&self) -> &str {
        self.url.shown()
    }

    /// A connection from the pool (a new one when none is idle).
    fn conn(&self) -> Result<Connection, StoreError> {
        let pool = self.pool.as_ref().expect("the pool lives until drop");
        pool.get().map_err(|error| StoreError::Unreachable {
            target: self.url.shown().to_owned(),
            cause: self.url.mask(&error.to_string()),
        })
    }

    /// One stored commit; its `message` is the stored first line. (Not part of
    /// [`Store`]: for tests and tools.)
    pub fn commit(
        &self,
        repository: &RepoName,
        sha: &CommitSha,
    ) -> Result<Option<super::CommitRecord>, StoreError> {
        let mut conn = self.conn()?;
        read::commit(&mut **conn, self.target(), repository, sha)
    }

    /// The successful deployment of `repository` to `environment` deployed
    /// strictly before `before` (see
    /// [`SqliteStore::previous_successful_deployment`](super::SqliteStore::previous_successful_deployment)).
    pub fn previous_successful_deployment(
        &self,
        repository: &RepoName,
        environment: &Environment,
        before: Timestamp,
    ) -> Result<Option<Deployment>, StoreError> {
        let mut conn = self.conn()?;
        read::successful_deployment_before(
            &mut **conn,
            self.target(),
            repository,
            environment,
            Some(before),
        )
    }
}

impl PostgresStore {
    /// `load_events` on several threads, each on a connection of the pool in a
    /// snapshot of its own (as the SQLite store's parallel load: each repository is
    /// read consistently; repositories are written in separate syncs anyway):
    /// repository `i` is read by thread `i % threads` into a forked sink.
    fn load_events_parallel(
        &self,
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
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads)
                .map(|k| {
                    let mine = share(k);
                    let mut forked = sink.fork();
                    scope.spawn(move || {
                        let mut conn = self.conn()?;
                        read::load_events(&mut conn, self.target(), &mine, false, forked.as_mut())?;
                        Ok::<_, StoreError>(forked)
                    })
                })
                .collect();
            let mut conn = self.conn()?;
            read::load_events(&mut conn, self.target(), &share(0), true, sink)?;
            drop(conn);
            for worker in workers {
                let forked = worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                sink.join(forked);
            }
            Ok(())
        })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Each connection owns a small runtime, which tokio refuses to drop on an
        // async worker thread: close them on a thread of their own there.
        let Some(pool) = self.pool.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let closing = std::thread::spawn(move || drop(pool));
            let _ = closing.join();
        }
    }
}

impl Store for PostgresStore {
    fn apply(&mut self, batch: &SyncBatch) -> Result<super::ApplyStats, StoreError> {
        let mut conn = self.conn()?;
        write::apply(&mut conn, self.url.shown(), batch)
    }

    fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, StoreError> {
        let mut conn = self.conn()?;
        read::cursor(&mut **conn, self.target(), key)
    }

    fn pending_deployments(
        &self,
        repository: &RepoName,
    ) -> Result<Vec<(DeploymentSource, u64)>, StoreError> {
        let mut conn = self.conn()?;
        read::pending_deployments(&mut **conn, self.target(), repository)
    }

    fn terminal_deployment_ids(
        &self,
        repository: &RepoName,
        source: DeploymentSource,
    ) -> Result<HashSet<u64>, StoreError> {
        let mut conn = self.conn()?;
        read::terminal_deployment_ids(&mut **conn, self.target(), repository, source)
    }

    fn scoped_incidents(
        &self,
        source: IncidentSource,
        numbers: &[u64],
    ) -> Result<Vec<ScopedIncident>, StoreError> {
        let mut conn = self.conn()?;
        read::scoped_incidents(&mut **conn, self.target(), source, numbers)
    }

    fn deployment(
        &self,
        repository: &RepoName,
        source: DeploymentSource,
        id: u64,
    ) -> Result<Option<Deployment>, StoreError> {
        let Ok(id) = i64::try_from(id) else {
            // Never stored: apply refuses such ids.
            return Ok(None);
        };
        let mut conn = self.conn()?;
        read::deployment(&mut **conn, self.target(), repository, source, id)
    }

    fn missing_compares(
        &self,
        repository: &RepoName,
    ) -> Result<Vec<(Environment, CommitSha, CommitSha)>, StoreError> {
        let mut conn = self.conn()?;
        read::missing_compares(&mut **conn, self.target(), repository)
    }

    fn record_sync(
        &mut self,
        repository: &RepoName,
        source: &str,
        finished_at: Timestamp,
        outcome: &SyncOutcome,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        write::record_sync(
            &mut conn,
            self.url.shown(),
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
        let mut conn = self.conn()?;
        write::record_sync(
            &mut conn,
            self.url.shown(),
            repository,
            source,
            finished_at,
            &SyncOutcome::Succeeded,
            Some(history_since),
        )
    }

    fn sync_status(&self) -> Result<Vec<SyncStatus>, StoreError> {
        let mut conn = self.conn()?;
        read::sync_status(&mut **conn, self.target())
    }

    fn repositories(&self) -> Result<Vec<RepoName>, StoreError> {
        let mut conn = self.conn()?;
        read::repositories(&mut **conn, self.target())
    }

    fn load_events(
        &self,
        repositories: &[RepoName],
        sink: &mut dyn EventSink,
    ) -> Result<(), StoreError> {
        // Each reader is two processes, this thread decoding and the server's
        // backend producing the next rows while it does: two readers a core keep
        // both busy.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get() * 2)
            .min(POOL_SIZE as usize)
            .min(repositories.len() / super::MIN_REPOSITORIES_PER_LOAD_THREAD);
        if threads > 1 {
            return self.load_events_parallel(repositories, threads, sink);
        }
        let mut conn = self.conn()?;
        read::load_events(&mut conn, self.target(), repositories, true, sink)
    }

    fn read_repository(&self, repository: &RepoName) -> Result<SyncBatch, StoreError> {
        let mut conn = self.conn()?;
        read::read_repository(&mut conn, self.target(), repository)
    }

    fn counts(&self) -> Result<StoreCounts, StoreError> {
        let mut conn = self.conn()?;
        read::counts(&mut **conn, self.target())
    }

    fn push(&mut self, requests: &[PushRequest]) -> Result<Vec<PushVerdict>, StoreError> {
        let mut conn = self.conn()?;
        write::push(&mut conn, self.url.shown(), requests)
    }

    fn pushed_repositories(&self) -> Result<Vec<RepoName>, StoreError> {
        let mut conn = self.conn()?;
        read::pushed_repositories(&mut **conn, self.target())
    }

    fn record_teams(
        &mut self,
        teams: &[(RepoName, Team)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        write::record_teams(&mut conn, self.url.shown(), teams, at)
    }

    fn recorded_teams(&self) -> Result<Vec<(RepoName, Team)>, StoreError> {
        let mut conn = self.conn()?;
        read::recorded_teams(&mut **conn, self.target())
    }

    fn latest_successful_deployment(
        &self,
        repository: &RepoName,
        environment: &Environment,
    ) -> Result<Option<Deployment>, StoreError> {
        let mut conn = self.conn()?;
        read::successful_deployment_before(
            &mut **conn,
            self.target(),
            repository,
            environment,
            None,
        )
    }

    fn acquire_leases(
        &mut self,
        request: &super::LeaseRequest<'_>,
    ) -> Result<Option<super::LeaseGrant>, StoreError> {
        let mut conn = self.conn()?;
        leases::acquire(&mut conn, self.target(), request).map(Some)
    }

    fn release_leases(&mut self, holder: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        leases::release(&mut conn, self.target(), holder)
    }

    fn leases(&self) -> Result<Vec<super::Lease>, StoreError> {
        let mut conn = self.conn()?;
        leases::list(&mut conn, self.target())
    }
}
