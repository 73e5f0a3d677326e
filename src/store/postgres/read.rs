//! Reads: the queries the sources need, sync status, counts, and `load_events`
//! that feeds the engine, with the SQLite store's decoding (shared from
//! `sqlite/read.rs`: the same column encodings, the same corruption checks).
//!
//! `load_events` and `read_repository` each run in one `REPEATABLE READ READ
//! ONLY` transaction (one consistent snapshot while the daemon writes).
//! `load_events` reads each table but the commits once for all its repositories,
//! ordered by repository, through portals that fetch many rows a round trip; the
//! commits, by far the largest table, one query per repository that returns them
//! aggregated into one row (see [`COMMITS_OF_A_REPOSITORY_AGGREGATED`]). It feeds
//! the sink one whole repository after the other, decoding straight into it. (A
//! large load runs this on several connections at once, each with its own share
//! of the repositories: see `PostgresStore::load_events_parallel`.)

use super::pg_error;
use crate::domain::{
    CommitSha, Compare, CompareStatus, Deployment, DeploymentSource, Environment, Incident,
    IncidentScope, IncidentSource, PullRequest, RepoName, ScopedIncident, ShaPrefix, Team,
    Timestamp, REVERT_MESSAGE_PREFIX,
};
use crate::dora::EventSink as EngineSink;
use crate::store::sqlite::codec::{outcome_from_columns, unpack_shas_into, SHA_BYTES};
use crate::store::sqlite::read::{BuilderSink, Decoder, EventSink};
use crate::store::{
    CommitRecord, Cursor, CursorKey, StoreCounts, StoreError, SyncBatch, SyncStatus,
};
use postgres::{GenericClient, IsolationLevel, Portal, Row, Statement, Transaction};
use std::collections::{HashMap, HashSet};

fn repo_id(
    client: &mut impl GenericClient,
    target: &str,
    repository: &RepoName,
) -> Result<Option<i64>, StoreError> {
    client
        .query_opt(
            "SELECT id FROM repositories WHERE name = $1",
            &[&repository.as_str()],
        )
        .and_then(|row| row.map(|row| row.try_get(0)).transpose())
        .map_err(pg_error(target, "looking up a repository"))
}

/// Decodes a repository name read from the store.
fn repo_name(decoder: &Decoder<'_>, name: &str) -> Result<RepoName, StoreError> {
    RepoName::parse(name).map_err(|_| decoder.corrupt("repository name"))
}

pub(super) fn repositories(
    client: &mut impl GenericClient,
    target: &str,
) -> Result<Vec<RepoName>, StoreError> {
    let db = pg_error(target, "listing repositories");
    let decoder = Decoder {
        path: target,
        table: "repositories",
    };
    let rows = client
        .query("SELECT name FROM repositories ORDER BY name", &[])
        .map_err(&db)?;
    rows.iter()
        .map(|row| repo_name(&decoder, row.try_get(0).map_err(&db)?))
        .collect()
}

pub(super) fn pushed_repositories(
    client: &mut impl GenericClient,
    target: &str,
) -> Result<Vec<RepoName>, StoreError> {
    let db = pg_error(target, "listing pushed repositories");
    let decoder = Decoder {
        path: target,
        table: "repositories",
    };
    let rows = client
        .query(
            "SELECT name FROM repositories WHERE id IN (SELECT repo_id FROM push_ids) \
             ORDER BY name",
            &[],
        )
        .map_err(&db)?;
    rows.iter()
        .map(|row| repo_name(&decoder, row.try_get(0).map_err(&db)?))
        .collect()
}

pub(super) fn cursor(
    client: &mut impl GenericClient,
    target: &str,
    key: &CursorKey,
) -> Result<Option<Cursor>, StoreError> {
    let db = pg_error(target, "reading a cursor");
    let row = client
        .query_opt(
            "SELECT c.since, c.opaque, c.updated_at FROM cursors c \
             JOIN repositories r ON r.id = c.repo_id WHERE r.name = $1 AND c.endpoint = $2",
            &[&key.repository.as_str(), &key.endpoint],
        )
        .map_err(&db)?;
    row.map(|row| {
        Ok(Cursor {
            since: row.try_get::<_, Option<i64>>(0)?.map(Timestamp),
            opaque: row.try_get(1)?,
            updated_at: Timestamp(row.try_get(2)?),
        })
    })
    .transpose()
    .map_err(db)
}

const DEPLOYMENT_COLUMNS: &str = "source, id, environment, sha, created_at, outcome, outcome_at";

/// Decodes a row of [`DEPLOYMENT_COLUMNS`].
fn deployment_from_row(
    row: &Row,
    target: &str,
    repository: &RepoName,
) -> Result<Deployment, StoreError> {
    let db = pg_error(target, "reading a deployment");
    let decoder = Decoder {
        path: target,
        table: "deployments",
    };
    let id: i64 = row.try_get(1).map_err(&db)?;
    let what = |field: &str| format!("{field} of deployment {id}");
    let source = DeploymentSource::parse(row.try_get(0).map_err(&db)?)
        .ok_or_else(|| decoder.corrupt(what("source")))?;
    let environment = Environment::parse(row.try_get::<_, &str>(2).map_err(&db)?)
        .map_err(|_| decoder.corrupt(what("environment")))?;
    let sha = decoder.sha(row.try_get(3).map_err(&db)?, &what("sha"))?;
    let created_at = Timestamp(row.try_get(4).map_err(&db)?);
    let outcome = outcome_from_columns(row.try_get(5).map_err(&db)?, row.try_get(6).map_err(&db)?)
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
    client: &mut impl GenericClient,
    target: &str,
    repository: &RepoName,
    source: DeploymentSource,
    id: i64,
) -> Result<Option<Deployment>, StoreError> {
    let db = pg_error(target, "reading a deployment");
    let row = client
        .query_opt(
            &format!(
                "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
                 WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) \
                 AND source = $2 AND id = $3"
            ),
            &[&repository.as_str(), &source.as_str(), &id],
        )
        .map_err(&db)?;
    row.map(|row| deployment_from_row(&row, target, repository))
        .transpose()
}

pub(super) fn successful_deployment_before(
    client: &mut impl GenericClient,
    target: &str,
    repository: &RepoName,
    environment: &Environment,
    before: Option<Timestamp>,
) -> Result<Option<Deployment>, StoreError> {
    let db = pg_error(target, "finding the latest successful deployment");
    // i64::MAX: no deploy time is later (timestamps are seconds, far from it).
    let before = before.map_or(i64::MAX, |t| t.0);
    let row = client
        .query_opt(
            &format!(
                "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
                 WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) \
                 AND environment = $2 AND outcome = 'succeeded' AND outcome_at < $3 \
                 ORDER BY outcome_at DESC, source DESC, id DESC LIMIT 1"
            ),
            &[&repository.as_str(), &environment.as_str(), &before],
        )
        .map_err(&db)?;
    row.map(|row| deployment_from_row(&row, target, repository))
        .transpose()
}

pub(super) fn pending_deployments(
    client: &mut impl GenericClient,
    target: &str,
    repository: &RepoName,
) -> Result<Vec<(DeploymentSource, u64)>, StoreError> {
    let db = pg_error(target, "listing pending deployments");
    let decoder = Decoder {
        path: target,
        table: "deployments",
    };
    let rows = client
        .query(
            "SELECT source, id FROM deployments \
             WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) \
             AND outcome = 'pending' ORDER BY source, id",
            &[&repository.as_str()],
        )
        .map_err(&db)?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get(1).map_err(&db)?;
            let source = DeploymentSource::parse(row.try_get(0).map_err(&db)?)
                .ok_or_else(|| decoder.corrupt(format!("source of deployment {id}")))?;
            Ok((source, decoder.id(id, "deployment id")?))
        })
        .collect()
}

pub(super) fn terminal_deployment_ids(
    client: &mut impl GenericClient,
    target: &str,
    repository: &RepoName,
    source: DeploymentSource,
) -> Result<HashSet<u64>, StoreError> {
    let db = pg_error(target, "listing terminal deployments");
    let decoder = Decoder {
        path: target,
        table: "deployments",
    };
    let rows = client
        .query(
            "SELECT id FROM deployments \
             WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) \
             AND source = $2 AND outcome <> 'pending'",
            &[&repository.as_str(), &source.as_str()],
        )
        .map_err(&db)?;
    rows.iter()
        .map(|row| decoder.id(row.try_get(0).map_err(&db)?, "deployment id"))
        .collect()
}

pub(super) fn missing_compares(
    client: &mut impl GenericClient,
    target: &str,
    repository: &RepoName,
) -> Result<Vec<(Environment, CommitSha, CommitSha)>, StoreError> {
    let db = pg_error(target, "listing missing compares");
    let decoder = Decoder {
        path: target,
        table: "deployments",
    };
    // As in the SQLite store: LAG over the successful deployments of one
    // environment (ASCII case-insensitive: lower() under the "C" collation) in the
    // engine's replay order.
    let rows = client
        .query(
            "WITH repo AS (SELECT id FROM repositories WHERE name = $1), \
             ordered AS ( \
                 SELECT environment, sha, \
                        LAG(sha) OVER (PARTITION BY lower(environment) \
                                       ORDER BY outcome_at, source, id) AS base \
                 FROM deployments WHERE repo_id = (SELECT id FROM repo) \
                 AND outcome = 'succeeded') \
             SELECT min(environment), base, sha FROM ordered o \
             WHERE base IS NOT NULL AND base <> sha \
             AND NOT EXISTS (SELECT 1 FROM compares c \
                             WHERE c.repo_id = (SELECT id FROM repo) \
                             AND c.base = o.base AND c.head = o.sha) \
             GROUP BY lower(environment), base, sha \
             ORDER BY lower(environment), base, sha",
            &[&repository.as_str()],
        )
        .map_err(&db)?;
    rows.iter()
        .map(|row| {
            let environment = Environment::parse(row.try_get::<_, &str>(0).map_err(&db)?)
                .map_err(|_| decoder.corrupt("environment of a deployment"))?;
            let base = decoder.sha(row.try_get(1).map_err(&db)?, "deployment sha")?;
            let head = decoder.sha(row.try_get(2).map_err(&db)?, "deployment sha")?;
            Ok((environment, base, head))
        })
        .collect()
}

pub(super) fn sync_status(
    client: &mut impl GenericClient,
    target: &str,
) -> Result<Vec<SyncStatus>, StoreError> {
    let db = pg_error(target, "reading the sync status");
    let decoder = Decoder {
        path: target,
        table: "sync_status",
    };
    let rows = client
        .query(
            "SELECT r.name, s.source, s.last_attempt_at, s.last_success_at, s.last_error, \
             s.history_since FROM sync_status s JOIN repositories r ON r.id = s.repo_id \
             ORDER BY r.name, s.source",
            &[],
        )
        .map_err(&db)?;
    rows.iter()
        .map(|row| {
            Ok(SyncStatus {
                repository: repo_name(&decoder, row.try_get(0).map_err(&db)?)?,
                source: row.try_get(1).map_err(&db)?,
                last_attempt_at: Timestamp(row.try_get(2).map_err(&db)?),
                last_success_at: row
                    .try_get::<_, Option<i64>>(3)
                    .map_err(&db)?
                    .map(Timestamp),
                last_error: row.try_get(4).map_err(&db)?,
                history_since: row
                    .try_get::<_, Option<i64>>(5)
                    .map_err(&db)?
                    .map(Timestamp),
            })
        })
        .collect()
}

/// Every repository's recorded team, sorted by repository.
pub(super) fn recorded_teams(
    client: &mut impl GenericClient,
    target: &str,
) -> Result<Vec<(RepoName, Team)>, StoreError> {
    let db = pg_error(target, "reading the repositories' teams");
    let decoder = Decoder {
        path: target,
        table: "repository_teams",
    };
    let rows = client
        .query(
            "SELECT r.name, t.team FROM repository_teams t \
             JOIN repositories r ON r.id = t.repo_id ORDER BY r.name",
            &[],
        )
        .map_err(&db)?;
    rows.iter()
        .map(|row| {
            let team: String = row.try_get(1).map_err(&db)?;
            Ok((
                repo_name(&decoder, row.try_get(0).map_err(&db)?)?,
                Team::parse(&team).map_err(|_| decoder.corrupt("team"))?,
            ))
        })
        .collect()
}

pub(super) fn counts(
    client: &mut impl GenericClient,
    target: &str,
) -> Result<StoreCounts, StoreError> {
    let db = pg_error(target, "counting rows");
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM deployments), \
             (SELECT count(*) FROM commits), (SELECT count(*) FROM compares), \
             (SELECT count(*) FROM incidents), (SELECT count(*) FROM scoped_incidents), \
             (SELECT count(*) FROM pull_requests), (SELECT count(*) FROM cursors), \
             (SELECT count(*) FROM sync_status)",
            &[],
        )
        .map_err(&db)?;
    let n = |index: usize| -> Result<u64, StoreError> {
        Ok(row.try_get::<_, i64>(index).map_err(&db)?.max(0) as u64)
    };
    Ok(StoreCounts {
        repositories: n(0)?,
        deployments: n(1)?,
        commits: n(2)?,
        compares: n(3)?,
        incidents: n(4)?,
        scoped_incidents: n(5)?,
        pull_requests: n(6)?,
        cursors: n(7)?,
        sync_statuses: n(8)?,
    })
}

const SCOPED_COLUMNS: &str =
    "source, number, team, repositories, created_at, closed_at, root_cause";

/// One row of `scoped_incidents` (selected as [`SCOPED_COLUMNS`]).
fn scoped_incident(target: &str, row: &Row) -> Result<ScopedIncident, StoreError> {
    let db = pg_error(target, "reading incidents of teams and of repositories");
    let decoder = Decoder {
        path: target,
        table: "scoped_incidents",
    };
    let number: i64 = row.try_get(1).map_err(&db)?;
    let what = |field: &str| format!("{field} of scoped incident {number}");
    let source = IncidentSource::parse(row.try_get(0).map_err(&db)?)
        .ok_or_else(|| decoder.corrupt(what("source")))?;
    let team = row.try_get::<_, Option<&str>>(2).map_err(&db)?;
    let repositories = row.try_get::<_, Option<&str>>(3).map_err(&db)?;
    let scope = match (team, repositories) {
        (Some(team), None) => {
            IncidentScope::Team(Team::parse(team).map_err(|_| decoder.corrupt(what("team")))?)
        }
        (None, Some(names)) => serde_json::from_str::<Vec<RepoName>>(names)
            .ok()
            .and_then(IncidentScope::repositories)
            .ok_or_else(|| decoder.corrupt(what("repositories")))?,
        _ => return Err(decoder.corrupt(what("scope"))),
    };
    Ok(ScopedIncident {
        source,
        scope,
        number: decoder.id(number, &what("number"))?,
        created_at: Timestamp(row.try_get(4).map_err(&db)?),
        closed_at: row
            .try_get::<_, Option<i64>>(5)
            .map_err(&db)?
            .map(Timestamp),
        root_cause: root_cause(&decoder, row.try_get(6).map_err(&db)?, &what("root cause"))?,
    })
}

fn root_cause(
    decoder: &Decoder<'_>,
    text: Option<&str>,
    what: &str,
) -> Result<Option<ShaPrefix>, StoreError> {
    text.map(|text| ShaPrefix::parse(text).map_err(|_| decoder.corrupt(what)))
        .transpose()
}

pub(super) fn scoped_incidents(
    client: &mut impl GenericClient,
    target: &str,
    source: IncidentSource,
    numbers: &[u64],
) -> Result<Vec<ScopedIncident>, StoreError> {
    let db = pg_error(target, "reading incidents of teams and of repositories");
    let numbers: Vec<i64> = numbers
        .iter()
        .filter_map(|n| i64::try_from(*n).ok())
        .collect();
    let rows = client
        .query(
            &format!(
                "SELECT {SCOPED_COLUMNS} FROM scoped_incidents \
                 WHERE source = $1 AND number = ANY($2) ORDER BY number"
            ),
            &[&source.as_str(), &numbers],
        )
        .map_err(&db)?;
    rows.iter()
        .map(|row| scoped_incident(target, row))
        .collect()
}

/// The tables of a repository's events, in the order they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Deployments,
    Commits,
    Compares,
    Incidents,
    PullRequests,
    ProductionEnvironments,
    ReviewHorizons,
}

impl Table {
    const ALL: [Table; 7] = [
        Table::Deployments,
        Table::Commits,
        Table::Compares,
        Table::Incidents,
        Table::PullRequests,
        Table::ProductionEnvironments,
        Table::ReviewHorizons,
    ];

    /// `SELECT <columns> FROM <table>` (the commits' subjects with `messages`).
    fn select(self, messages: bool) -> String {
        match self {
            Table::Deployments => format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments"),
            Table::Commits if messages => {
                "SELECT sha, author_date, is_revert, parents, subject FROM commits".to_owned()
            }
            Table::Commits => "SELECT sha, author_date, is_revert, parents FROM commits".to_owned(),
            Table::Compares => "SELECT base, head, status, commits FROM compares".to_owned(),
            Table::Incidents => "SELECT number, created_at, closed_at, labels, root_cause, source \
                                 FROM incidents"
                .to_owned(),
            Table::PullRequests => "SELECT number, merged_at, merge_commit_sha, labels, commits, \
                                    first_commit_at, created_at, first_review_at \
                                    FROM pull_requests"
                .to_owned(),
            Table::ProductionEnvironments => {
                "SELECT environment FROM production_environments".to_owned()
            }
            Table::ReviewHorizons => "SELECT since FROM review_horizons".to_owned(),
        }
    }

    /// The identity order of a repository's rows.
    fn order(self) -> &'static str {
        match self {
            Table::Deployments => "source, id",
            Table::Commits => "sha",
            Table::Compares => "base, head",
            Table::Incidents => "source, number",
            Table::PullRequests => "number",
            Table::ProductionEnvironments => "environment",
            Table::ReviewHorizons => "since",
        }
    }

    /// The rows of one repository (`$1`) in identity order.
    fn of_repository(self, messages: bool) -> String {
        format!(
            "{} WHERE repo_id = $1 ORDER BY {}",
            self.select(messages),
            self.order()
        )
    }

    /// The rows of every repository of `$1` (ids), by repository id then in
    /// identity order, the id as the last column.
    fn of_repositories(self) -> String {
        let select = self.select(false);
        let (columns, from) = select.split_once(" FROM ").expect("a select");
        format!(
            "{columns}, repo_id FROM {from} WHERE repo_id = ANY($1) ORDER BY repo_id, {}",
            self.order()
        )
    }

    fn operation(self) -> &'static str {
        match self {
            Table::Deployments => "reading deployments",
            Table::Commits => "reading commits",
            Table::Compares => "reading compares",
            Table::Incidents => "reading incidents",
            Table::PullRequests => "reading pull requests",
            Table::ProductionEnvironments => "reading production environments",
            Table::ReviewHorizons => "reading the first-review horizon",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Table::Deployments => "deployments",
            Table::Commits => "commits",
            Table::Compares => "compares",
            Table::Incidents => "incidents",
            Table::PullRequests => "pull_requests",
            Table::ProductionEnvironments => "production_environments",
            Table::ReviewHorizons => "review_horizons",
        }
    }
}

/// Decodes the rows of one repository, table by table, into a sink.
struct RowDecoder<'a> {
    target: &'a str,
    repository: &'a RepoName,
    /// Reused for each commit's parents.
    parents: Vec<CommitSha>,
    /// The production environments read so far (handed over by `finish`).
    environments: Vec<Environment>,
    /// The first-review horizon, when kept (handed over by `finish`).
    reviews_since: Option<Timestamp>,
}

impl<'a> RowDecoder<'a> {
    fn new(target: &'a str, repository: &'a RepoName) -> Self {
        RowDecoder {
            target,
            repository,
            parents: Vec::new(),
            environments: Vec::new(),
            reviews_since: None,
        }
    }

    /// Decodes one row of `table` into `sink`.
    fn row(
        &mut self,
        table: Table,
        row: &Row,
        sink: &mut impl EventSink,
    ) -> Result<(), StoreError> {
        let db = pg_error(self.target, table.operation());
        let decoder = Decoder {
            path: self.target,
            table: table.name(),
        };
        let repository = self.repository;
        match table {
            Table::Deployments => {
                sink.deployment(deployment_from_row(row, self.target, repository)?);
            }
            Table::Commits => {
                let sha = decoder.sha(row.try_get(0).map_err(&db)?, "commit sha")?;
                let author_date = Timestamp(row.try_get(1).map_err(&db)?);
                let is_revert: bool = row.try_get(2).map_err(&db)?;
                if !unpack_shas_into(row.try_get(3).map_err(&db)?, &mut self.parents) {
                    return Err(decoder.corrupt(format!("parents of commit {sha}")));
                }
                let message = if sink.wants_messages() {
                    let subject: &str = row.try_get(4).map_err(&db)?;
                    if subject.starts_with(REVERT_MESSAGE_PREFIX) != is_revert {
                        return Err(decoder.corrupt(format!("revert flag of commit {sha}")));
                    }
                    Some(subject)
                } else {
                    None
                };
                sink.commit(
                    repository,
                    sha,
                    &self.parents,
                    author_date,
                    is_revert,
                    message,
                );
            }
            Table::Compares => {
                let base = decoder.sha(row.try_get(0).map_err(&db)?, "compare base")?;
                let head = decoder.sha(row.try_get(1).map_err(&db)?, "compare head")?;
                let what = |field: &str| format!("{field} of compare {base}...{head}");
                let status = CompareStatus::parse(row.try_get(2).map_err(&db)?)
                    .ok_or_else(|| decoder.corrupt(what("status")))?;
                let commits = decoder.shas(row.try_get(3).map_err(&db)?, &what("commits"))?;
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
            Table::Incidents => {
                let number: i64 = row.try_get(0).map_err(&db)?;
                let what = |field: &str| format!("{field} of incident {number}");
                let source = IncidentSource::parse(row.try_get(5).map_err(&db)?)
                    .ok_or_else(|| decoder.corrupt(what("source")))?;
                sink.incident(Incident {
                    source,
                    repository: repository.clone(),
                    number: decoder.id(number, &what("number"))?,
                    created_at: Timestamp(row.try_get(1).map_err(&db)?),
                    closed_at: row
                        .try_get::<_, Option<i64>>(2)
                        .map_err(&db)?
                        .map(Timestamp),
                    labels: decoder.labels(row.try_get(3).map_err(&db)?, &what("labels"))?,
                    root_cause: root_cause(
                        &decoder,
                        row.try_get(4).map_err(&db)?,
                        &what("root cause"),
                    )?,
                });
            }
            Table::PullRequests => {
                let number: i64 = row.try_get(0).map_err(&db)?;
                let what = |field: &str| format!("{field} of pull request {number}");
                let time = |index: usize| -> Result<Option<Timestamp>, StoreError> {
                    Ok(row
                        .try_get::<_, Option<i64>>(index)
                        .map_err(&db)?
                        .map(Timestamp))
                };
                let merge_commit_sha = row
                    .try_get::<_, Option<&[u8]>>(2)
                    .map_err(&db)?
                    .map(|blob| decoder.sha(blob, &what("merge commit sha")))
                    .transpose()?;
                sink.pull_request(PullRequest {
                    repository: repository.clone(),
                    number: decoder.id(number, &what("number"))?,
                    merged_at: time(1)?,
                    merge_commit_sha,
                    labels: decoder.labels(row.try_get(3).map_err(&db)?, &what("labels"))?,
                    commits: decoder.shas(row.try_get(4).map_err(&db)?, &what("commits"))?,
                    first_commit_at: time(5)?,
                    created_at: time(6)?,
                    first_review_at: time(7)?,
                });
            }
            Table::ProductionEnvironments => {
                self.environments.push(
                    Environment::parse(row.try_get::<_, &str>(0).map_err(&db)?)
                        .map_err(|_| decoder.corrupt("production environment"))?,
                );
            }
            Table::ReviewHorizons => {
                self.reviews_since = Some(Timestamp(row.try_get(0).map_err(&db)?));
            }
        }
        Ok(())
    }

    /// Hands the repository's production environments and first-review
    /// horizon, if any, to `sink`.
    fn finish(self, sink: &mut impl EventSink) {
        if !self.environments.is_empty() {
            sink.production_environments(self.repository, self.environments);
        }
        if let Some(since) = self.reviews_since {
            sink.reviews_since(self.repository, since);
        }
    }
}

/// Reads every event of one repository in identity order into `sink`, a query
/// per table.
fn stream_repository(
    tx: &mut Transaction<'_>,
    target: &str,
    repository: &RepoName,
    repo_id: i64,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let mut decoder = RowDecoder::new(target, repository);
    for table in Table::ALL {
        let rows = tx
            .query(&table.of_repository(sink.wants_messages()), &[&repo_id])
            .map_err(pg_error(target, table.operation()))?;
        for row in &rows {
            decoder.row(table, row, sink)?;
        }
    }
    decoder.finish(sink);
    Ok(())
}

/// Rows fetched per round trip from each table's portal by `load_events`.
const ROWS_PER_FETCH: i32 = 20_000;

/// One table's rows for many repositories (ordered by repository id), fetched
/// [`ROWS_PER_FETCH`] at a time through a portal.
struct TableCursor {
    table: Table,
    portal: Portal,
    /// Fetched rows not taken yet, in reverse (the next one last).
    rows: Vec<Row>,
    /// The portal has no more rows to give.
    drained: bool,
}

impl TableCursor {
    /// The next row if it is repository `repo_id`'s.
    fn next_of(
        &mut self,
        tx: &mut Transaction<'_>,
        target: &str,
        repo_id: i64,
    ) -> Result<Option<Row>, StoreError> {
        let db = pg_error(target, self.table.operation());
        if self.rows.is_empty() && !self.drained {
            self.rows = tx.query_portal(&self.portal, ROWS_PER_FETCH).map_err(&db)?;
            self.drained = self.rows.len() < ROWS_PER_FETCH as usize;
            self.rows.reverse();
        }
        let Some(row) = self.rows.last() else {
            return Ok(None);
        };
        let id: i64 = row.try_get(row.len() - 1).map_err(&db)?;
        if id != repo_id {
            return Ok(None);
        }
        Ok(self.rows.pop())
    }
}

/// One repository's commits (`$1`, its id) as one row of columns that each hold
/// a field of every commit, in the same order: their count, their shas (20 bytes
/// each), their author dates and shapes packed in one number each (8 bytes
/// each, big-endian: `int8send`; see [`COMMIT_SHAPE_BITS`]), and their parents
/// (20 bytes each). `load_events` reads commits this way, the largest table by
/// far: a row per commit cost the server a message of five fields and the client
/// a row to take apart, most of a large load's time; aggregated, the server
/// appends to three buffers and the client walks them. (Not an array of numbers:
/// PostgreSQL's binary send of an array allocates a buffer per element; not
/// decimal text either: formatting 3.65 million numbers took the server 0.24 s
/// more than `int8send`, and the text is twice the bytes.) Every aggregate of
/// one query sees the rows in the same order. PostgreSQL holds one value to 1 GB,
/// so a repository can have some 20 million commits (about 50 bytes of sha and
/// parents each) before this query fails.
const COMMITS_OF_A_REPOSITORY_AGGREGATED: &str = "\
    SELECT count(*), string_agg(sha, ''::bytea), \
           string_agg(int8send(author_date * 2097152 + length(parents) / 10 + is_revert::int), ''::bytea), \
           string_agg(parents, ''::bytea) \
    FROM commits WHERE repo_id = $1";

/// The low bits of a packed commit number that hold its shape, twice the number
/// of its parents plus one for a revert (the 2,097,152 of
/// [`COMMITS_OF_A_REPOSITORY_AGGREGATED`]); the author date is the rest. A commit
/// of a million parents or more would spill into the date and leave parents'
/// bytes unaccounted for: the load then fails as corrupt, never wrong. An author
/// date beyond ±139,000 years fails the query (bigint out of range).
const COMMIT_SHAPE_BITS: u32 = 21;

/// The bytes of one packed commit number (`int8send`: a big-endian `i64`).
const PACKED_COMMIT_BYTES: usize = 8;

/// Reads one repository's commits with [`COMMITS_OF_A_REPOSITORY_AGGREGATED`]
/// into `sink`, reusing `parents`.
fn load_commits(
    tx: &mut Transaction<'_>,
    statement: &Statement,
    target: &str,
    repository: &RepoName,
    repo_id: i64,
    parents: &mut Vec<CommitSha>,
    sink: &mut impl EventSink,
) -> Result<(), StoreError> {
    let db = pg_error(target, Table::Commits.operation());
    let row = tx.query_one(statement, &[&repo_id]).map_err(&db)?;
    let count: i64 = row.try_get(0).map_err(&db)?;
    if count == 0 {
        return Ok(());
    }
    let shas: &[u8] = row.try_get(1).map_err(&db)?;
    let packed: &[u8] = row.try_get(2).map_err(&db)?;
    let all_parents: &[u8] = row.try_get(3).map_err(&db)?;
    let decoder = Decoder {
        path: target,
        table: Table::Commits.name(),
    };
    let count = usize::try_from(count).map_err(|_| decoder.corrupt("count of commits"))?;
    if shas.len() != count * SHA_BYTES {
        return Err(decoder.corrupt("commit shas (not one for each commit)"));
    }
    if packed.len() != count * PACKED_COMMIT_BYTES {
        return Err(decoder.corrupt("commit dates (not one for each commit)"));
    }
    let mut offset = 0usize;
    for (sha, number) in shas
        .chunks_exact(SHA_BYTES)
        .zip(packed.chunks_exact(PACKED_COMMIT_BYTES))
    {
        let sha = decoder.sha(sha, "commit sha")?;
        let corrupt = |field: &str| decoder.corrupt(format!("{field} of commit {sha}"));
        let mut bytes = [0u8; PACKED_COMMIT_BYTES];
        bytes.copy_from_slice(number);
        let number = i64::from_be_bytes(bytes);
        let author_date = number.div_euclid(1 << COMMIT_SHAPE_BITS);
        let shape = number.rem_euclid(1 << COMMIT_SHAPE_BITS) as usize;
        let length = shape / 2 * SHA_BYTES;
        let blob = all_parents
            .get(offset..offset + length)
            .ok_or_else(|| corrupt("parents"))?;
        offset += length;
        if !unpack_shas_into(blob, parents) {
            return Err(corrupt("parents"));
        }
        sink.commit(
            repository,
            sha,
            parents,
            Timestamp(author_date),
            shape % 2 == 1,
            None,
        );
    }
    if offset != all_parents.len() {
        return Err(decoder.corrupt("commit parents (more than the commits name)"));
    }
    Ok(())
}

/// Starts a read-only transaction that sees one snapshot throughout.
fn snapshot<'a>(
    client: &'a mut postgres::Client,
    target: &str,
) -> Result<Transaction<'a>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_error(target, "starting a read"))
}

/// The events of `repositories`, and with `scoped_incidents` every incident of
/// a team or of a set of repositories (one reader of a parallel load reads those).
///
/// A few round trips for any number of repositories: their ids in one query,
/// then one query per table for all of them, ordered by repository, each read
/// through a portal [`ROWS_PER_FETCH`] rows at a time; the repositories are fed to
/// the sink one after the other (in the order of their ids, which the builder
/// does not mind), each whole before the next.
pub(super) fn load_events(
    client: &mut postgres::Client,
    target: &str,
    repositories: &[RepoName],
    scoped_incidents: bool,
    builder: &mut dyn EngineSink,
) -> Result<(), StoreError> {
    let mut tx = snapshot(client, target)?;
    if scoped_incidents {
        let rows = tx
            .query(
                &format!("SELECT {SCOPED_COLUMNS} FROM scoped_incidents ORDER BY source, number"),
                &[],
            )
            .map_err(pg_error(
                target,
                "reading incidents of teams and of repositories",
            ))?;
        for row in &rows {
            builder.scoped_incident(scoped_incident(target, row)?);
        }
    }
    let mut by_name: HashMap<&str, &RepoName> = HashMap::new();
    for repository in repositories {
        by_name.entry(repository.as_str()).or_insert(repository);
    }
    let names: Vec<&str> = by_name.keys().copied().collect();
    let db = pg_error(target, "looking up repositories");
    let rows = tx
        .query(
            "SELECT id, name FROM repositories WHERE name = ANY($1) ORDER BY id",
            &[&names],
        )
        .map_err(&db)?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut known = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: &str = row.try_get(1).map_err(&db)?;
        if let Some(repository) = by_name.get(name) {
            ids.push(row.try_get::<_, i64>(0).map_err(&db)?);
            known.push(*repository);
        }
    }
    drop(rows);
    if ids.is_empty() {
        return tx.commit().map_err(pg_error(target, "ending a read"));
    }
    let mut parents = Vec::new();
    let mut cursors = Vec::with_capacity(Table::ALL.len());
    for table in Table::ALL.into_iter().filter(|&t| t != Table::Commits) {
        let portal = tx
            .bind(&table.of_repositories(), &[&ids])
            .map_err(pg_error(target, table.operation()))?;
        cursors.push(TableCursor {
            table,
            portal,
            rows: Vec::new(),
            drained: false,
        });
    }
    // Index scans are off for the commits, from here to the end of this read-only
    // transaction: with them the server fetched each row of a repository through
    // the primary key's index, most of its work in a large load; without, it reads
    // each page of the repository's rows once (a bitmap scan). The other tables'
    // portals, bound (and so planned) before, read in identity order through their
    // indexes.
    tx.batch_execute("SET LOCAL enable_indexscan = off")
        .map_err(pg_error(target, Table::Commits.operation()))?;
    let commits = tx
        .prepare(COMMITS_OF_A_REPOSITORY_AGGREGATED)
        .map_err(pg_error(target, Table::Commits.operation()))?;
    for (&repo_id, &repository) in ids.iter().zip(&known) {
        let mut sink = BuilderSink {
            builder: &mut *builder,
        };
        let mut decoder = RowDecoder::new(target, repository);
        for cursor in &mut cursors {
            while let Some(row) = cursor.next_of(&mut tx, target, repo_id)? {
                decoder.row(cursor.table, &row, &mut sink)?;
            }
            if cursor.table == Table::Deployments {
                load_commits(
                    &mut tx,
                    &commits,
                    target,
                    repository,
                    repo_id,
                    &mut parents,
                    &mut sink,
                )?;
            }
        }
        decoder.finish(&mut sink);
        builder.finish_repository(repository);
    }
    drop(cursors);
    tx.commit().map_err(pg_error(target, "ending a read"))
}

pub(super) fn read_repository(
    client: &mut postgres::Client,
    target: &str,
    repository: &RepoName,
) -> Result<SyncBatch, StoreError> {
    let mut tx = snapshot(client, target)?;
    let mut batch = SyncBatch::new(repository.clone());
    if let Some(repo_id) = repo_id(&mut tx, target, repository)? {
        stream_repository(&mut tx, target, repository, repo_id, &mut batch)?;
        let db = pg_error(target, "reading cursors");
        let rows = tx
            .query(
                "SELECT endpoint, since, opaque, updated_at FROM cursors WHERE repo_id = $1 \
                 ORDER BY endpoint",
                &[&repo_id],
            )
            .map_err(&db)?;
        for row in &rows {
            batch.cursors.push((
                CursorKey::new(
                    repository.clone(),
                    row.try_get::<_, String>(0).map_err(&db)?,
                ),
                Cursor {
                    since: row
                        .try_get::<_, Option<i64>>(1)
                        .map_err(&db)?
                        .map(Timestamp),
                    opaque: row.try_get(2).map_err(&db)?,
                    updated_at: Timestamp(row.try_get(3).map_err(&db)?),
                },
            ));
        }
    }
    tx.commit().map_err(pg_error(target, "ending a read"))?;
    Ok(batch)
}

/// One stored commit (for tests and tools).
pub(super) fn commit(
    client: &mut impl GenericClient,
    target: &str,
    repository: &RepoName,
    sha: &CommitSha,
) -> Result<Option<CommitRecord>, StoreError> {
    let db = pg_error(target, "reading a commit");
    let decoder = Decoder {
        path: target,
        table: "commits",
    };
    let Some(repo_id) = repo_id(client, target, repository)? else {
        return Ok(None);
    };
    let row = client
        .query_opt(
            "SELECT author_date, parents, subject FROM commits WHERE repo_id = $1 AND sha = $2",
            &[&repo_id, &sha.as_bytes().as_slice()],
        )
        .map_err(&db)?;
    row.map(|row| {
        Ok(CommitRecord {
            sha: *sha,
            author_date: Timestamp(row.try_get(0).map_err(&db)?),
            parents: decoder.shas(
                row.try_get(1).map_err(&db)?,
                &format!("parents of commit {sha}"),
            )?,
            message: row.try_get(2).map_err(&db)?,
        })
    })
    .transpose()
}
