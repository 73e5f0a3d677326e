//! Reads: the queries the sources need (pending and terminal deployments, the
//! previous successful deployment, cursors), sync status, counts, and the streaming
//! `load_events` that feeds the engine.
//!
//! `load_events` and `read_repository` run inside one read transaction, so they see
//! one consistent snapshot even while another process writes (WAL). Rows are decoded
//! straight from SQLite's buffers into the builder: no intermediate list of all rows.

use super::codec::{
    labels_from_column, outcome_from_columns, sha_from_blob, unpack_shas, unpack_shas_into,
};
use super::db_error;
use crate::domain::{
    CommitSha, Compare, CompareStatus, Deployment, DeploymentOutcome, DeploymentSource,
    Environment, Incident, IncidentScope, IncidentSource, PullRequest, RepoName, ScopedIncident,
    ShaPrefix, Team, Timestamp, REVERT_MESSAGE_PREFIX,
};
use crate::dora::EventSink as EngineSink;
use crate::store::{
    CommitRecord, Cursor, CursorKey, StoreCounts, StoreError, SyncBatch, SyncStatus,
};
use rusqlite::{Connection, OptionalExtension, Row};
use std::collections::HashSet;

/// Turns a malformed stored value into [`StoreError::Corrupt`].
pub(in crate::store) struct Decoder<'a> {
    pub(in crate::store) path: &'a str,
    pub(in crate::store) table: &'static str,
}

impl Decoder<'_> {
    pub(in crate::store) fn corrupt(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_owned(),
            table: self.table,
            what: what.into(),
        }
    }

    pub(in crate::store) fn sha(&self, blob: &[u8], what: &str) -> Result<CommitSha, StoreError> {
        sha_from_blob(blob).ok_or_else(|| self.corrupt(what))
    }

    pub(in crate::store) fn shas(
        &self,
        blob: &[u8],
        what: &str,
    ) -> Result<Vec<CommitSha>, StoreError> {
        unpack_shas(blob).ok_or_else(|| self.corrupt(what))
    }

    pub(in crate::store) fn id(&self, value: i64, what: &str) -> Result<u64, StoreError> {
        u64::try_from(value).map_err(|_| self.corrupt(what))
    }

    pub(in crate::store) fn labels(
        &self,
        text: &str,
        what: &str,
    ) -> Result<Vec<String>, StoreError> {
        labels_from_column(text).ok_or_else(|| self.corrupt(what))
    }
}

/// Reads column `index` of `row` as a borrowed BLOB (or TEXT as `&str`) without
/// copying; a database error on a type mismatch.
macro_rules! column {
    ($row:expr, $index:expr, blob) => {
        $row.get_ref($index).and_then(|v| Ok(v.as_blob()?))
    };
    ($row:expr, $index:expr, str) => {
        $row.get_ref($index).and_then(|v| Ok(v.as_str()?))
    };
}

pub(super) fn repo_id(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT id FROM repositories WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([repository.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(db_error(path, "looking up a repository"))
}

pub(super) fn repositories(conn: &Connection, path: &str) -> Result<Vec<RepoName>, StoreError> {
    let db = db_error(path, "listing repositories");
    let decoder = Decoder {
        path,
        table: "repositories",
    };
    let mut stmt = conn
        .prepare_cached("SELECT name FROM repositories ORDER BY name")
        .map_err(&db)?;
    let mut rows = stmt.query([]).map_err(&db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&db)? {
        let name = column!(row, 0, str).map_err(&db)?;
        out.push(RepoName::parse(name).map_err(|_| decoder.corrupt("repository name"))?);
    }
    Ok(out)
}

const DEPLOYMENT_COLUMNS: &str = "source, id, environment, sha, created_at, outcome, outcome_at";

/// Decodes a row of [`DEPLOYMENT_COLUMNS`].
fn deployment_from_row(
    row: &Row<'_>,
    path: &str,
    repository: &RepoName,
) -> Result<Deployment, StoreError> {
    let db = db_error(path, "reading a deployment");
    let decoder = Decoder {
        path,
        table: "deployments",
    };
    let id: i64 = row.get(1).map_err(&db)?;
    let what = |field: &str| format!("{field} of deployment {id}");
    let source = DeploymentSource::parse(column!(row, 0, str).map_err(&db)?)
        .ok_or_else(|| decoder.corrupt(what("source")))?;
    let environment = Environment::parse(column!(row, 2, str).map_err(&db)?)
        .map_err(|_| decoder.corrupt(what("environment")))?;
    let sha = decoder.sha(column!(row, 3, blob).map_err(&db)?, &what("sha"))?;
    let created_at = Timestamp(row.get(4).map_err(&db)?);
    let outcome: DeploymentOutcome =
        outcome_from_columns(column!(row, 5, str).map_err(&db)?, row.get(6).map_err(&db)?)
            .ok_or_else(|| decoder.corrupt(what("outcome")))?;
    Ok(Deployment {
        source,
        repository: repository.clone(),
        id: decoder.id(id, &what("id"))?,
        environment,
        sha,
        created_at,
        outcome,
    })
}

pub(super) fn deployment(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    source: DeploymentSource,
    id: i64,
) -> Result<Option<Deployment>, StoreError> {
    let db = db_error(path, "reading a deployment");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
             WHERE repo_id = ?1 AND source = ?2 AND id = ?3"
        ))
        .map_err(&db)?;
    let mut rows = stmt.query((repo_id, source.as_str(), id)).map_err(&db)?;
    match rows.next().map_err(&db)? {
        Some(row) => deployment_from_row(row, path, repository).map(Some),
        None => Ok(None),
    }
}

pub(super) fn successful_deployment_before(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    environment: &Environment,
    before: Option<Timestamp>,
) -> Result<Option<Deployment>, StoreError> {
    let db = db_error(path, "finding the latest successful deployment");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
             WHERE repo_id = ?1 AND environment = ?2 AND outcome = 'succeeded' \
             AND outcome_at < ?3 \
             ORDER BY outcome_at DESC, source DESC, id DESC LIMIT 1"
        ))
        .map_err(&db)?;
    // i64::MAX: no deploy time is later (timestamps are seconds, far from it).
    let before = before.map_or(i64::MAX, |t| t.0);
    let mut rows = stmt
        .query((repo_id, environment.as_str(), before))
        .map_err(&db)?;
    match rows.next().map_err(&db)? {
        Some(row) => deployment_from_row(row, path, repository).map(Some),
        None => Ok(None),
    }
}

pub(super) fn pending_deployments(
    conn: &Connection,
    path: &str,
    repo_id: i64,
) -> Result<Vec<(DeploymentSource, u64)>, StoreError> {
    let db = db_error(path, "listing pending deployments");
    let decoder = Decoder {
        path,
        table: "deployments",
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT source, id FROM deployments WHERE repo_id = ?1 AND outcome = 'pending' \
             ORDER BY source, id",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&db)? {
        let id: i64 = row.get(1).map_err(&db)?;
        let source = DeploymentSource::parse(column!(row, 0, str).map_err(&db)?)
            .ok_or_else(|| decoder.corrupt(format!("source of deployment {id}")))?;
        out.push((source, decoder.id(id, "deployment id")?));
    }
    Ok(out)
}

pub(super) fn terminal_deployment_ids(
    conn: &Connection,
    path: &str,
    repo_id: i64,
    source: DeploymentSource,
) -> Result<HashSet<u64>, StoreError> {
    let db = db_error(path, "listing terminal deployments");
    let decoder = Decoder {
        path,
        table: "deployments",
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM deployments \
             WHERE repo_id = ?1 AND source = ?2 AND outcome <> 'pending'",
        )
        .map_err(&db)?;
    let mut rows = stmt.query((repo_id, source.as_str())).map_err(&db)?;
    let mut out = HashSet::new();
    while let Some(row) = rows.next().map_err(&db)? {
        out.insert(decoder.id(row.get(0).map_err(&db)?, "deployment id")?);
    }
    Ok(out)
}

pub(super) fn missing_compares(
    conn: &Connection,
    path: &str,
    repo_id: i64,
) -> Result<Vec<(Environment, CommitSha, CommitSha)>, StoreError> {
    let db = db_error(path, "listing missing compares");
    let decoder = Decoder {
        path,
        table: "deployments",
    };
    // LAG over the successful deployments of one environment (case-insensitive,
    // as the definitions compare names) in the engine's replay order.
    let mut stmt = conn
        .prepare_cached(
            "WITH ordered AS ( \
                 SELECT environment, sha, \
                        LAG(sha) OVER (PARTITION BY lower(environment) \
                                       ORDER BY outcome_at, source, id) AS base \
                 FROM deployments WHERE repo_id = ?1 AND outcome = 'succeeded') \
             SELECT min(environment), base, sha FROM ordered o \
             WHERE base IS NOT NULL AND base <> sha \
             AND NOT EXISTS (SELECT 1 FROM compares c \
                             WHERE c.repo_id = ?1 AND c.base = o.base AND c.head = o.sha) \
             GROUP BY lower(environment), base, sha \
             ORDER BY lower(environment), base, sha",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&db)? {
        let environment = Environment::parse(column!(row, 0, str).map_err(&db)?)
            .map_err(|_| decoder.corrupt("environment of a deployment"))?;
        let base = decoder.sha(column!(row, 1, blob).map_err(&db)?, "deployment sha")?;
        let head = decoder.sha(column!(row, 2, blob).map_err(&db)?, "deployment sha")?;
        out.push((environment, base, head));
    }
    Ok(out)
}

pub(super) fn commit(
    conn: &Connection,
    path: &str,
    repo_id: i64,
    sha: &CommitSha,
) -> Result<Option<CommitRecord>, StoreError> {
    let db = db_error(path, "reading a commit");
    let mut stmt = conn
        .prepare_cached(
            "SELECT author_date, parents, subject FROM commits WHERE repo_id = ?1 AND sha = ?2",
        )
        .map_err(&db)?;
    let mut rows = stmt
        .query((repo_id, sha.as_bytes().as_slice()))
        .map_err(&db)?;
    let Some(row) = rows.next().map_err(&db)? else {
        return Ok(None);
    };
    let decoder = Decoder {
        path,
        table: "commits",
    };
    Ok(Some(CommitRecord {
        sha: *sha,
        author_date: Timestamp(row.get(0).map_err(&db)?),
        parents: decoder.shas(
            column!(row, 1, blob).map_err(&db)?,
            &format!("parents of commit {sha}"),
        )?,
        message: row.get(2).map_err(&db)?,
    }))
}

pub(super) fn sync_status(conn: &Connection, path: &str) -> Result<Vec<SyncStatus>, StoreError> {
    let db = db_error(path, "reading the sync status");
    let decoder = Decoder {
        path,
        table: "sync_status",
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.name, s.source, s.last_attempt_at, s.last_success_at, s.last_error, \
             s.history_since FROM sync_status s JOIN repositories r ON r.id = s.repo_id \
             ORDER BY r.name, s.source",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([]).map_err(&db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&db)? {
        let repository = RepoName::parse(column!(row, 0, str).map_err(&db)?)
            .map_err(|_| decoder.corrupt("repository name"))?;
        out.push(SyncStatus {
            repository,
            source: row.get(1).map_err(&db)?,
            last_attempt_at: Timestamp(row.get(2).map_err(&db)?),
            last_success_at: row.get::<_, Option<i64>>(3).map_err(&db)?.map(Timestamp),
            last_error: row.get(4).map_err(&db)?,
            history_since: row.get::<_, Option<i64>>(5).map_err(&db)?.map(Timestamp),
        });
    }
    Ok(out)
}

pub(super) fn counts(conn: &Connection, path: &str) -> Result<StoreCounts, StoreError> {
    let db = db_error(path, "counting rows");
    let count = |table: &str| -> Result<u64, StoreError> {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .map_err(&db)?;
        Ok(n.max(0) as u64)
    };
    Ok(StoreCounts {
        repositories: count("repositories")?,
        deployments: count("deployments")?,
        commits: count("commits")?,
        compares: count("compares")?,
        incidents: count("incidents")?,
        scoped_incidents: count("scoped_incidents")?,
        pull_requests: count("pull_requests")?,
        cursors: count("cursors")?,
        sync_statuses: count("sync_status")?,
    })
}

/// Runs `read` inside a read transaction (one consistent snapshot), ending it
/// whatever happens.
fn in_read_transaction<T>(
    conn: &Connection,
    path: &str,
    read: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // Deferred: no lock until the first read; a read-only transaction never blocks
    // writers in WAL mode. Dropping it rolls back, which for reads only ends it.
    let tx = conn
        .unchecked_transaction()
        .map_err(db_error(path, "starting a read"))?;
    let result = read();
    drop(tx);
    result
}

/// The events of `repositories`, and with `scoped_incidents` every incident of
/// a team or of a set of repositories (one reader of a parallel load reads
/// those).
pub(super) fn load_events(
    conn: &Connection,
    path: &str,
    repositories: &[RepoName],
    scoped_incidents: bool,
    builder: &mut dyn EngineSink,
) -> Result<(), StoreError> {
    in_read_transaction(conn, path, || {
        if scoped_incidents {
            stream_scoped_incidents(conn, path, builder)?;
        }
        let mut seen = HashSet::new();
        for repository in repositories {
            if !seen.insert(repository) {
                continue;
            }
            let Some(repo_id) = repo_id(conn, path, repository)? else {
                continue;
            };
            let mut sink = BuilderSink { builder };
            stream_repository(conn, path, repository, repo_id, &mut sink)?;
            builder.finish_repository(repository);
        }
        Ok(())
    })
}

pub(super) fn read_repository(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
) -> Result<SyncBatch, StoreError> {
    in_read_transaction(conn, path, || {
        let mut batch = SyncBatch::new(repository.clone());
        let Some(repo_id) = repo_id(conn, path, repository)? else {
            return Ok(batch);
        };
        stream_repository(conn, path, repository, repo_id, &mut batch)?;
        read_cursors(conn, path, repository, repo_id, &mut batch)?;
        Ok(batch)
    })
}

/// Where [`stream_repository`] puts what it reads.
pub(in crate::store) trait EventSink {
    fn deployment(&mut self, deployment: Deployment);
    /// `message` is read only by sinks that want it (`wants_messages`).
    fn commit(
        &mut self,
        repository: &RepoName,
        sha: CommitSha,
        parents: &[CommitSha],
        author_date: Timestamp,
        is_revert: bool,
        message: Option<&str>,
    );
    fn wants_messages(&self) -> bool;
    fn compare(&mut self, repository: &RepoName, compare: Compare);
    fn incident(&mut self, incident: Incident);
    fn pull_request(&mut self, pull_request: PullRequest);
    fn production_environments(&mut self, repository: &RepoName, environments: Vec<Environment>);
    fn reviews_since(&mut self, repository: &RepoName, since: Timestamp);
}

/// The engine's sink, fed what it reads (commit messages are not read).
pub(in crate::store) struct BuilderSink<'a> {
    pub(in crate::store) builder: &'a mut dyn EngineSink,
}

impl EventSink for BuilderSink<'_> {
    fn deployment(&mut self, deployment: Deployment) {
        self.builder.deployment(deployment);
    }
    fn commit(
        &mut self,
        repository: &RepoName,
        sha: CommitSha,
        parents: &[CommitSha],
        author_date: Timestamp,
        is_revert: bool,
        _message: Option<&str>,
    ) {
        self.builder
            .commit(repository, sha, parents, author_date, is_revert);
    }
    fn wants_messages(&self) -> bool {
        false
    }
    fn compare(&mut self, repository: &RepoName, compare: Compare) {
        self.builder.compare(repository, compare);
    }
    fn incident(&mut self, incident: Incident) {
        self.builder.incident(incident);
    }
    fn pull_request(&mut self, pull_request: PullRequest) {
        self.builder.pull_request(pull_request);
    }
    fn production_environments(&mut self, repository: &RepoName, environments: Vec<Environment>) {
        self.builder
            .production_environments(repository, environments);
    }
    fn reviews_since(&mut self, repository: &RepoName, since: Timestamp) {
        self.builder.reviews_since(repository, since);
    }
}

impl EventSink for SyncBatch {
    fn deployment(&mut self, deployment: Deployment) {
        self.deployments.push(deployment);
    }
    fn commit(
        &mut self,
        _repository: &RepoName,
        sha: CommitSha,
        parents: &[CommitSha],
        author_date: Timestamp,
        _is_revert: bool,
        message: Option<&str>,
    ) {
        self.commits.push(CommitRecord {
            sha,
            parents: parents.to_vec(),
            author_date,
            message: message.unwrap_or_default().to_owned(),
        });
    }
    fn wants_messages(&self) -> bool {
        true
    }
    fn compare(&mut self, _repository: &RepoName, compare: Compare) {
        self.compares.push(compare);
    }
    fn incident(&mut self, incident: Incident) {
        self.incidents.push(incident);
    }
    fn pull_request(&mut self, pull_request: PullRequest) {
        self.pull_requests.push(pull_request);
    }
    fn production_environments(&mut self, _repository: &RepoName, environments: Vec<Environment>) {
        self.production_environments = Some(environments);
    }
    fn reviews_since(&mut self, _repository: &RepoName, since: Timestamp) {
        self.reviews_since = Some(since);
    }
}

/// Reads every event of one repository in identity order into `sink`.
fn stream_repository(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    stream_deployments(conn, path, repository, repo_id, sink)?;
    stream_commits(conn, path, repository, repo_id, sink)?;
    stream_compares(conn, path, repository, repo_id, sink)?;
    stream_incidents(conn, path, repository, repo_id, sink)?;
    stream_pull_requests(conn, path, repository, repo_id, sink)?;
    stream_production_environments(conn, path, repository, repo_id, sink)?;
    stream_reviews_since(conn, path, repository, repo_id, sink)
}

/// Since when the repository's first reviews are complete, when that is kept.
fn stream_reviews_since(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let since: Option<i64> = conn
        .prepare_cached("SELECT since FROM review_horizons WHERE repo_id = ?1")
        .and_then(|mut stmt| stmt.query_row([repo_id], |row| row.get(0)).optional())
        .map_err(db_error(path, "reading the first-review horizon"))?;
    if let Some(since) = since {
        sink.reviews_since(repository, Timestamp(since));
    }
    Ok(())
}

/// The repository's source-declared production environments, when it has any.
fn stream_production_environments(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading production environments");
    let decoder = Decoder {
        path,
        table: "production_environments",
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT environment FROM production_environments WHERE repo_id = ?1 \
             ORDER BY environment",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    let mut environments = Vec::new();
    while let Some(row) = rows.next().map_err(&db)? {
        let name = column!(row, 0, str).map_err(&db)?;
        environments
            .push(Environment::parse(name).map_err(|_| decoder.corrupt("production environment"))?);
    }
    if !environments.is_empty() {
        sink.production_environments(repository, environments);
    }
    Ok(())
}

fn stream_deployments(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading deployments");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE repo_id = ?1 ORDER BY source, id"
        ))
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    while let Some(row) = rows.next().map_err(&db)? {
        sink.deployment(deployment_from_row(row, path, repository)?);
    }
    Ok(())
}

fn stream_commits(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading commits");
    let decoder = Decoder {
        path,
        table: "commits",
    };
    // The primary key orders by sha; the subject is read only when wanted (it is the
    // widest column and the engine never needs it).
    let sql = if sink.wants_messages() {
        "SELECT sha, author_date, is_revert, parents, subject FROM commits \
         WHERE repo_id = ?1 ORDER BY sha"
    } else {
        "SELECT sha, author_date, is_revert, parents FROM commits \
         WHERE repo_id = ?1 ORDER BY sha"
    };
    let mut stmt = conn.prepare_cached(sql).map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    let mut parents = Vec::new();
    while let Some(row) = rows.next().map_err(&db)? {
        let sha_blob = column!(row, 0, blob).map_err(&db)?;
        let sha = decoder.sha(sha_blob, "commit sha")?;
        let author_date = Timestamp(row.get(1).map_err(&db)?);
        let is_revert: bool = row.get(2).map_err(&db)?;
        if !unpack_shas_into(column!(row, 3, blob).map_err(&db)?, &mut parents) {
            return Err(decoder.corrupt(format!("parents of commit {sha}")));
        }
        let message = if sink.wants_messages() {
            let subject = column!(row, 4, str).map_err(&db)?;
            if subject.starts_with(REVERT_MESSAGE_PREFIX) != is_revert {
                return Err(decoder.corrupt(format!("revert flag of commit {sha}")));
            }
            Some(subject)
        } else {
            None
        };
        sink.commit(repository, sha, &parents, author_date, is_revert, message);
    }
    Ok(())
}

fn stream_compares(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading compares");
    let decoder = Decoder {
        path,
        table: "compares",
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT base, head, status, commits FROM compares WHERE repo_id = ?1 \
             ORDER BY base, head",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    while let Some(row) = rows.next().map_err(&db)? {
        let base = decoder.sha(column!(row, 0, blob).map_err(&db)?, "compare base")?;
        let head = decoder.sha(column!(row, 1, blob).map_err(&db)?, "compare head")?;
        let what = |field: &str| format!("{field} of compare {base}...{head}");
        let status = CompareStatus::parse(column!(row, 2, str).map_err(&db)?)
            .ok_or_else(|| decoder.corrupt(what("status")))?;
        let commits = decoder.shas(column!(row, 3, blob).map_err(&db)?, &what("commits"))?;
        sink.compare(
            repository,
            Compare {
                base,
                head,
                status,
                commits,
            },
        );
    }
    Ok(())
}

fn stream_incidents(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading incidents");
    let decoder = Decoder {
        path,
        table: "incidents",
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT number, created_at, closed_at, labels, root_cause, source FROM incidents \
             WHERE repo_id = ?1 ORDER BY source, number",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    while let Some(row) = rows.next().map_err(&db)? {
        let number: i64 = row.get(0).map_err(&db)?;
        let what = |field: &str| format!("{field} of incident {number}");
        let root_cause = match row.get_ref(4).map_err(&db)?.as_str_or_null() {
            Ok(None) => None,
            Ok(Some(text)) => {
                Some(ShaPrefix::parse(text).map_err(|_| decoder.corrupt(what("root cause")))?)
            }
            Err(_) => return Err(decoder.corrupt(what("root cause"))),
        };
        let source = IncidentSource::parse(column!(row, 5, str).map_err(&db)?)
            .ok_or_else(|| decoder.corrupt(what("source")))?;
        sink.incident(Incident {
            source,
            repository: repository.clone(),
            number: decoder.id(number, &what("number"))?,
            created_at: Timestamp(row.get(1).map_err(&db)?),
            closed_at: row.get::<_, Option<i64>>(2).map_err(&db)?.map(Timestamp),
            labels: decoder.labels(column!(row, 3, str).map_err(&db)?, &what("labels"))?,
            root_cause,
        });
    }
    Ok(())
}

/// Every incident of a team or of a set of repositories.
fn stream_scoped_incidents(
    conn: &Connection,
    path: &str,
    sink: &mut dyn EngineSink,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading incidents of teams and of repositories");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SCOPED_COLUMNS} FROM scoped_incidents ORDER BY source, number"
        ))
        .map_err(&db)?;
    let mut rows = stmt.query([]).map_err(&db)?;
    while let Some(row) = rows.next().map_err(&db)? {
        sink.scoped_incident(scoped_incident(path, row)?);
    }
    Ok(())
}

/// The stored incidents of `source` among `numbers` (those not stored are left
/// out), sorted by number.
pub(super) fn scoped_incidents(
    conn: &Connection,
    path: &str,
    source: IncidentSource,
    numbers: &[u64],
) -> Result<Vec<ScopedIncident>, StoreError> {
    let db = db_error(path, "reading incidents of teams and of repositories");
    in_read_transaction(conn, path, || {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {SCOPED_COLUMNS} FROM scoped_incidents WHERE source = ?1 AND number = ?2"
            ))
            .map_err(&db)?;
        let mut found = Vec::new();
        let mut numbers = numbers.to_vec();
        numbers.sort_unstable();
        numbers.dedup();
        for number in numbers {
            let Ok(number) = i64::try_from(number) else {
                continue;
            };
            let mut rows = stmt.query((source.as_str(), number)).map_err(&db)?;
            if let Some(row) = rows.next().map_err(&db)? {
                found.push(scoped_incident(path, row)?);
            }
        }
        Ok(found)
    })
}

const SCOPED_COLUMNS: &str =
    "source, number, team, repositories, created_at, closed_at, root_cause";

/// One row of `scoped_incidents` (selected as [`SCOPED_COLUMNS`]).
fn scoped_incident(path: &str, row: &rusqlite::Row<'_>) -> Result<ScopedIncident, StoreError> {
    let db = db_error(path, "reading incidents of teams and of repositories");
    let decoder = Decoder {
        path,
        table: "scoped_incidents",
    };
    let number: i64 = row.get(1).map_err(&db)?;
    let what = |field: &str| format!("{field} of scoped incident {number}");
    let source = IncidentSource::parse(column!(row, 0, str).map_err(&db)?)
        .ok_or_else(|| decoder.corrupt(what("source")))?;
    let team = row.get::<_, Option<String>>(2).map_err(&db)?;
    let repositories = row.get::<_, Option<String>>(3).map_err(&db)?;
    let scope = match (team, repositories) {
        (Some(team), None) => {
            IncidentScope::Team(Team::parse(&team).map_err(|_| decoder.corrupt(what("team")))?)
        }
        (None, Some(names)) => serde_json::from_str::<Vec<RepoName>>(&names)
            .ok()
            .and_then(IncidentScope::repositories)
            .ok_or_else(|| decoder.corrupt(what("repositories")))?,
        _ => return Err(decoder.corrupt(what("scope"))),
    };
    let root_cause = match row.get_ref(6).map_err(&db)?.as_str_or_null() {
        Ok(None) => None,
        Ok(Some(text)) => {
            Some(ShaPrefix::parse(text).map_err(|_| decoder.corrupt(what("root cause")))?)
        }
        Err(_) => return Err(decoder.corrupt(what("root cause"))),
    };
    Ok(ScopedIncident {
        source,
        scope,
        number: decoder.id(number, &what("number"))?,
        created_at: Timestamp(row.get(4).map_err(&db)?),
        closed_at: row.get::<_, Option<i64>>(5).map_err(&db)?.map(Timestamp),
        root_cause,
    })
}

fn stream_pull_requests(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading pull requests");
    let decoder = Decoder {
        path,
        table: "pull_requests",
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT number, merged_at, merge_commit_sha, labels, commits, first_commit_at, \
             created_at, first_review_at FROM pull_requests WHERE repo_id = ?1 ORDER BY number",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    while let Some(row) = rows.next().map_err(&db)? {
        let number: i64 = row.get(0).map_err(&db)?;
        let what = |field: &str| format!("{field} of pull request {number}");
        let merge_commit_sha = match row.get_ref(2).map_err(&db)?.as_blob_or_null() {
            Ok(None) => None,
            Ok(Some(blob)) => Some(decoder.sha(blob, &what("merge commit sha"))?),
            Err(_) => return Err(decoder.corrupt(what("merge commit sha"))),
        };
        sink.pull_request(PullRequest {
            repository: repository.clone(),
            number: decoder.id(number, &what("number"))?,
            merged_at: row.get::<_, Option<i64>>(1).map_err(&db)?.map(Timestamp),
            merge_commit_sha,
            labels: decoder.labels(column!(row, 3, str).map_err(&db)?, &what("labels"))?,
            commits: decoder.shas(column!(row, 4, blob).map_err(&db)?, &what("commits"))?,
            first_commit_at: row.get::<_, Option<i64>>(5).map_err(&db)?.map(Timestamp),
            created_at: row.get::<_, Option<i64>>(6).map_err(&db)?.map(Timestamp),
            first_review_at: row.get::<_, Option<i64>>(7).map_err(&db)?.map(Timestamp),
        });
    }
    Ok(())
}

fn read_cursors(
    conn: &Connection,
    path: &str,
    repository: &RepoName,
    repo_id: i64,
    batch: &mut SyncBatch,
) -> Result<(), StoreError> {
    let db = db_error(path, "reading cursors");
    let mut stmt = conn
        .prepare_cached(
            "SELECT endpoint, since, opaque, updated_at FROM cursors WHERE repo_id = ?1 \
             ORDER BY endpoint",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([repo_id]).map_err(&db)?;
    while let Some(row) = rows.next().map_err(&db)? {
        batch.cursors.push((
            CursorKey::new(repository.clone(), row.get::<_, String>(0).map_err(&db)?),
            Cursor {
                since: row.get::<_, Option<i64>>(1).map_err(&db)?.map(Timestamp),
                opaque: row.get(2).map_err(&db)?,
                updated_at: Timestamp(row.get(3).map_err(&db)?),
            },
        ));
    }
    Ok(())
}
