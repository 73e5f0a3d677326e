//! Writes: `apply` (one transaction per batch, events and cursors together),
//! `push` (the push API's group commit, a savepoint per request) and
//! `record_sync`, with the SQLite store's rules and checks (shared from
//! `sqlite/write.rs`).
//!
//! Set-based: each kind of event is written by one statement per run of at most
//! [`ROWS_PER_STATEMENT`] rows, its columns sent as arrays (`unnest`), in one
//! round trip; each statement is prepared once per connection ([`Statements`]).
//! A round trip per row made a first sync many times slower than SQLite's.
//!
//! Every upsert but a deployment's is `INSERT ... SELECT ... FROM unnest(...) ON
//! CONFLICT DO UPDATE ... WHERE <values differ> RETURNING (xmax = 0)`: a returned
//! `true` is a row inserted, `false` one updated, and each row not returned was
//! unchanged. Deployments are read first (one `SELECT ... FOR UPDATE` for the
//! run), because their outcome is merged ([`merge_outcome`]); then the new ones
//! are inserted and the changed ones updated, one statement each.
//!
//! One statement cannot write a row twice, so an identity met again within a
//! batch starts a new run ([`runs`]): the runs are written in order, and the
//! counts and the stored rows are those of writing the rows one by one, as the
//! SQLite store does (a later duplicate updates, or leaves unchanged, what the
//! earlier one wrote; a deployment's outcomes merge). Anything that cannot be
//! stored fails the whole transaction, which then rolls back.

use super::{pg_error, PgConnection};
use crate::domain::batch::{PushRequest, PushVerdict, PushedEvent};
use crate::domain::{
    Compare, Deployment, Incident, IncidentScope, PullRequest, RepoName, ScopedIncident, Team,
    Timestamp,
};
use crate::store::sqlite::codec::{
    compare_status_column, labels_column, outcome_columns, outcome_from_columns, pack_shas_into,
};
use crate::store::sqlite::write::{
    check_cursor, same_deployment, same_repository, sync_columns, to_i64, StoredDeployment,
};
use crate::store::{
    merge_outcome, ApplyStats, CommitRecord, Cursor, CursorKey, KindStats, StoreError, SyncBatch,
    SyncOutcome,
};
use postgres::types::{ToSql, Type};
use postgres::{Row, Statement, Transaction};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::ops::Range;

/// The most rows one statement writes: large enough that round trips stop
/// mattering, small enough to keep a statement's arrays a few MiB.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Splits items, given their identities in order, into consecutive runs of at
/// most [`ROWS_PER_STATEMENT`] in which no identity repeats.
fn runs<K: Hash + Eq>(keys: impl IntoIterator<Item = K>) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut end = 0;
    let mut seen = HashSet::new();
    for key in keys {
        if end - start == ROWS_PER_STATEMENT || seen.contains(&key) {
            runs.push(start..end);
            start = end;
            seen.clear();
        }
        seen.insert(key);
        end += 1;
    }
    if start < end {
        runs.push(start..end);
    }
    runs
}

/// Packs each item's shas into one buffer; returns it with each item's range.
fn pack_all<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    shas: impl Fn(&T) -> &[crate::domain::CommitSha],
) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut packed = Vec::new();
    let mut one = Vec::new();
    let ranges = items
        .into_iter()
        .map(|item| {
            pack_shas_into(shas(item), &mut one);
            let start = packed.len();
            packed.extend_from_slice(&one);
            start..packed.len()
        })
        .collect();
    (packed, ranges)
}

/// Slices of `packed` by `ranges` (for a `bytea[]` parameter).
fn slices<'a>(packed: &'a [u8], ranges: &[Range<usize>]) -> Vec<&'a [u8]> {
    ranges.iter().map(|range| &packed[range.clone()]).collect()
}

/// The write statements prepared on one connection, by their text: parsing and
/// planning them again for every batch cost the server about a sixth of its time.
/// (A prepared statement outlives a rolled-back transaction; the connection's
/// end drops them.)
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// Runs `sql` with `params` in `tx`, preparing it on its first use on this
    /// connection.
    fn query(
        &mut self,
        tx: &mut Transaction<'_>,
        sql: &'static str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = match self.0.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
                let statement = tx.prepare_typed(sql, &types)?;
                self.0.insert(sql, statement.clone());
                statement
            }
        };
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(value, _)| *value).collect();
        tx.query(&statement, &values)
    }
}

/// Counts an upsert's answer (see the module documentation) for `sent` rows.
fn count(stats: &mut KindStats, answer: &[Row], sent: usize) -> Result<(), postgres::Error> {
    for row in answer {
        if row.try_get::<_, bool>(0)? {
            stats.inserted += 1;
        } else {
            stats.updated += 1;
        }
    }
    stats.unchanged += (sent - answer.len()) as u64;
    Ok(())
}

/// Lets this transaction's commit return before its WAL reaches the disk
/// (`synchronous_commit = off`), as the SQLite store's `synchronous=NORMAL` does:
/// a crash of the server may lose the last few sync batches, each whole (data
/// and cursor together), which the next sync reads again; never half of one. The
/// push API's group commit keeps the server's setting: it answers clients only
/// after a durable commit.
fn relaxed_commit(tx: &mut Transaction<'_>, target: &str) -> Result<(), StoreError> {
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .map_err(pg_error(target, "starting a sync batch"))
}

/// The id of `repository`, adding it when new: one round trip, unless another
/// transaction added it since this statement's snapshot (then a second one reads
/// it).
fn ensure_repo(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    target: &str,
    repository: &RepoName,
) -> Result<i64, StoreError> {
    let db = pg_error(target, "adding a repository");
    let name = repository.as_str();
    let added = statements
        .query(
            tx,
            "WITH added AS (INSERT INTO repositories (name) VALUES ($1) \
             ON CONFLICT (name) DO NOTHING RETURNING id) \
             SELECT id FROM added UNION ALL SELECT id FROM repositories WHERE name = $1",
            &[(&name, Type::TEXT)],
        )
        .map_err(&db)?;
    let row = match added.into_iter().next() {
        Some(row) => row,
        None => tx
            .query_typed_one(
                "SELECT id FROM repositories WHERE name = $1",
                &[(&name, Type::TEXT)],
            )
            .map_err(&db)?,
    };
    row.try_get(0).map_err(db)
}

pub(super) fn apply(
    conn: &mut PgConnection,
    target: &str,
    batch: &SyncBatch,
) -> Result<ApplyStats, StoreError> {
    let PgConnection { client, statements } = conn;
    let mut tx = client
        .transaction()
        .map_err(pg_error(target, "starting a sync batch"))?;
    relaxed_commit(&mut tx, target)?;
    let repo_id = ensure_repo(&mut tx, statements, target, &batch.repository)?;
    let mut writer = Writer {
        tx: &mut tx,
        statements,
        target,
        repo_id,
        repository: &batch.repository,
    };
    let stats = ApplyStats {
        deployments: writer.deployments(&batch.deployments)?,
        commits: writer.commits(&batch.commits)?,
        compares: writer.compares(&batch.compares)?,
        incidents: writer.incidents(batch)?,
        pull_requests: writer.pull_requests(&batch.pull_requests)?,
        cursors: writer.cursors(&batch.cursors)?,
    };
    writer.production_environments(batch)?;
    writer.reviews_since(batch)?;
    tx.commit()
        .map_err(pg_error(target, "committing a sync batch"))?;
    Ok(stats)
}

struct Writer<'a, 't> {
    tx: &'a mut Transaction<'t>,
    statements: &'a mut Statements,
    target: &'a str,
    repo_id: i64,
    repository: &'a RepoName,
}

/// Deployment columns of one run, in the order of the statements' arrays.
#[derive(Default)]
struct DeploymentColumns<'a> {
    sources: Vec<&'static str>,
    ids: Vec<i64>,
    environments: Vec<&'a str>,
    shas: Vec<&'a [u8]>,
    created_at: Vec<i64>,
    outcomes: Vec<&'static str>,
    outcome_at: Vec<Option<i64>>,
}

impl<'a> DeploymentColumns<'a> {
    fn push(
        &mut self,
        deployment: &'a Deployment,
        id: i64,
        outcome: crate::domain::DeploymentOutcome,
    ) {
        let (outcome_text, outcome_at) = outcome_columns(outcome);
        self.sources.push(deployment.source.as_str());
        self.ids.push(id);
        self.environments.push(deployment.environment.as_str());
        self.shas.push(deployment.sha.as_bytes().as_slice());
        self.created_at.push(deployment.created_at.0);
        self.outcomes.push(outcome_text);
        self.outcome_at.push(outcome_at);
    }

    /// `$1` the repository, `$2...$8` these columns.
    fn params<'p>(&'p self, repo_id: &'p i64) -> [(&'p (dyn ToSql + Sync), Type); 8] {
        [
            (repo_id, Type::INT8),
            (&self.sources, Type::TEXT_ARRAY),
            (&self.ids, Type::INT8_ARRAY),
            (&self.environments, Type::TEXT_ARRAY),
            (&self.shas, Type::BYTEA_ARRAY),
            (&self.created_at, Type::INT8_ARRAY),
            (&self.outcomes, Type::TEXT_ARRAY),
            (&self.outcome_at, Type::INT8_ARRAY),
        ]
    }
}

impl Writer<'_, '_> {
    /// Runs one of the writer's statements (see [`Statements`]).
    fn query(
        &mut self,
        sql: &'static str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.statements.query(self.tx, sql, params)
    }

    fn deployments(&mut self, deployments: &[Deployment]) -> Result<KindStats, StoreError> {
        let repo_id = self.repo_id;
        let mut stats = KindStats::default();
        let mut ids = Vec::with_capacity(deployments.len());
        for deployment in deployments {
            same_repository(
                self.target,
                self.repository,
                &deployment.repository,
                "deployment",
                deployment.id,
            )?;
            ids.push(to_i64(self.target, "deployment id", deployment.id)?);
        }
        let db = pg_error(self.target, "storing a deployment");
        for run in runs(deployments.iter().map(|d| (d.source, d.id))) {
            let (deployments, ids) = (&deployments[run.clone()], &ids[run]);
            let sources: Vec<&str> = deployments.iter().map(|d| d.source.as_str()).collect();
            let rows = self
                .query(
                    "SELECT k.n, d.environment, d.sha, d.created_at, d.outcome, d.outcome_at \
                     FROM deployments d \
                     JOIN unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS k (source, id, n) \
                     ON d.source = k.source AND d.id = k.id \
                     WHERE d.repo_id = $1 FOR UPDATE OF d",
                    &[
                        (&repo_id, Type::INT8),
                        (&sources, Type::TEXT_ARRAY),
                        (&ids, Type::INT8_ARRAY),
                    ],
                )
                .map_err(&db)?;
            // Each stored row at its deployment's place in the run.
            let mut stored: Vec<Option<StoredDeployment>> = vec![None; deployments.len()];
            for row in rows {
                let n: i64 = row.try_get(0).map_err(&db)?;
                let slot = usize::try_from(n - 1)
                    .ok()
                    .and_then(|i| stored.get_mut(i))
                    .ok_or_else(|| StoreError::Corrupt {
                        path: self.target.to_owned(),
                        table: "deployments",
                        what: format!("ordinal {n} of a deployment read back"),
                    })?;
                *slot = Some((
                    row.try_get(1).map_err(&db)?,
                    row.try_get(2).map_err(&db)?,
                    row.try_get(3).map_err(&db)?,
                    row.try_get(4).map_err(&db)?,
                    row.try_get(5).map_err(&db)?,
                ));
            }
            let mut inserts = DeploymentColumns::default();
            let mut updates = DeploymentColumns::default();
            for ((deployment, &id), stored) in deployments.iter().zip(ids).zip(&stored) {
                let outcome = match stored {
                    None => deployment.outcome,
                    Some((_, _, _, outcome, at)) => {
                        let stored_outcome =
                            outcome_from_columns(outcome, *at).ok_or_else(|| {
                                StoreError::Corrupt {
                                    path: self.target.to_owned(),
                                    table: "deployments",
                                    what: format!("outcome of deployment {}", deployment.id),
                                }
                            })?;
                        merge_outcome(stored_outcome, deployment.outcome)
                    }
                };
                match stored {
                    None => {
                        inserts.push(deployment, id, outcome);
                        stats.inserted += 1;
                    }
                    Some(row)
                        if same_deployment(
                            row,
                            deployment.environment.as_str(),
                            &deployment.sha,
                            deployment.created_at.0,
                            outcome,
                        ) =>
                    {
                        stats.unchanged += 1;
                    }
                    Some(_) => {
                        updates.push(deployment, id, outcome);
                        stats.updated += 1;
                    }
                }
            }
            if !inserts.ids.is_empty() {
                self.query(
                    "INSERT INTO deployments \
                         (repo_id, source, id, environment, sha, created_at, outcome, outcome_at) \
                         SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[], \
                         $5::bytea[], $6::bigint[], $7::text[], $8::bigint[])",
                    &inserts.params(&repo_id),
                )
                .map_err(&db)?;
            }
            if !updates.ids.is_empty() {
                self.query(
                    "UPDATE deployments d SET environment = u.environment, sha = u.sha, \
                         created_at = u.created_at, outcome = u.outcome, \
                         outcome_at = u.outcome_at \
                         FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bytea[], \
                         $6::bigint[], $7::text[], $8::bigint[]) \
                         AS u (source, id, environment, sha, created_at, outcome, outcome_at) \
                         WHERE d.repo_id = $1 AND d.source = u.source AND d.id = u.id",
                    &updates.params(&repo_id),
                )
                .map_err(&db)?;
            }
        }
        Ok(stats)
    }

    fn commits(&mut self, commits: &[CommitRecord]) -> Result<KindStats, StoreError> {
        let repo_id = self.repo_id;
        let mut stats = KindStats::default();
        let db = pg_error(self.target, "storing a commit");
        for run in runs(commits.iter().map(|c| c.sha)) {
            let commits = &commits[run];
            let (packed, ranges) = pack_all(commits, |c| &c.parents);
            let parents = slices(&packed, &ranges);
            let mut shas = Vec::with_capacity(commits.len());
            let mut author_dates = Vec::with_capacity(commits.len());
            let mut reverts = Vec::with_capacity(commits.len());
            let mut subjects = Vec::with_capacity(commits.len());
            for commit in commits {
                // The record may have been built without `CommitRecord::new`.
                let subject = crate::store::commit_subject(&commit.message);
                shas.push(commit.sha.as_bytes().as_slice());
                author_dates.push(commit.author_date.0);
                reverts.push(subject.starts_with(crate::domain::REVERT_MESSAGE_PREFIX));
                subjects.push(subject);
            }
            let answer = self
                .query(
                    "INSERT INTO commits AS c \
                     (repo_id, sha, author_date, is_revert, parents, subject) \
                     SELECT $1, * FROM unnest($2::bytea[], $3::bigint[], $4::boolean[], \
                     $5::bytea[], $6::text[]) \
                     ON CONFLICT (repo_id, sha) DO UPDATE SET \
                     author_date = excluded.author_date, is_revert = excluded.is_revert, \
                     parents = excluded.parents, subject = excluded.subject \
                     WHERE (c.author_date, c.is_revert, c.parents, c.subject) IS DISTINCT FROM \
                     (excluded.author_date, excluded.is_revert, excluded.parents, \
                     excluded.subject) \
                     RETURNING (xmax = 0)",
                    &[
                        (&repo_id, Type::INT8),
                        (&shas, Type::BYTEA_ARRAY),
                        (&author_dates, Type::INT8_ARRAY),
                        (&reverts, Type::BOOL_ARRAY),
                        (&parents, Type::BYTEA_ARRAY),
                        (&subjects, Type::TEXT_ARRAY),
                    ],
                )
                .map_err(&db)?;
            count(&mut stats, &answer, commits.len()).map_err(&db)?;
        }
        Ok(stats)
    }

    fn compares(&mut self, compares: &[Compare]) -> Result<KindStats, StoreError> {
        let repo_id = self.repo_id;
        let mut stats = KindStats::default();
        let db = pg_error(self.target, "storing a compare");
        for run in runs(compares.iter().map(|c| (c.base, c.head))) {
            let compares = &compares[run];
            let (packed, ranges) = pack_all(compares, |c| &c.commits);
            let commits = slices(&packed, &ranges);
            let bases: Vec<&[u8]> = compares
                .iter()
                .map(|c| c.base.as_bytes().as_slice())
                .collect();
            let heads: Vec<&[u8]> = compares
                .iter()
                .map(|c| c.head.as_bytes().as_slice())
                .collect();
            let statuses: Vec<&str> = compares
                .iter()
                .map(|c| compare_status_column(c.status))
                .collect();
            let answer = self
                .query(
                    "INSERT INTO compares AS c (repo_id, base, head, status, commits) \
                     SELECT $1, * FROM unnest($2::bytea[], $3::bytea[], $4::text[], $5::bytea[]) \
                     ON CONFLICT (repo_id, base, head) DO UPDATE SET status = excluded.status, \
                     commits = excluded.commits \
                     WHERE (c.status, c.commits) IS DISTINCT FROM \
                     (excluded.status, excluded.commits) \
                     RETURNING (xmax = 0)",
                    &[
                        (&repo_id, Type::INT8),
                        (&bases, Type::BYTEA_ARRAY),
                        (&heads, Type::BYTEA_ARRAY),
                        (&statuses, Type::TEXT_ARRAY),
                        (&commits, Type::BYTEA_ARRAY),
                    ],
                )
                .map_err(&db)?;
            count(&mut stats, &answer, compares.len()).map_err(&db)?;
        }
        Ok(stats)
    }

    /// The batch's incidents of its repository, then those of teams and of sets
    /// of repositories.
    fn incidents(&mut self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let mut stats = self.repository_incidents(&batch.incidents)?;
        scoped_incidents(
            self.tx,
            self.statements,
            self.target,
            &batch.scoped_incidents,
            &mut stats,
        )?;
        Ok(stats)
    }

    /// Upserts incidents of this writer's repository.
    fn repository_incidents(&mut self, incidents: &[Incident]) -> Result<KindStats, StoreError> {
        let repo_id = self.repo_id;
        let mut stats = KindStats::default();
        let mut numbers = Vec::with_capacity(incidents.len());
        for incident in incidents {
            same_repository(
                self.target,
                self.repository,
                &incident.repository,
                "incident",
                incident.number,
            )?;
            numbers.push(to_i64(self.target, "incident number", incident.number)?);
        }
        let db = pg_error(self.target, "storing an incident");
        for run in runs(incidents.iter().map(|i| (i.source, i.number))) {
            let (incidents, numbers) = (&incidents[run.clone()], &numbers[run]);
            let sources: Vec<&str> = incidents.iter().map(|i| i.source.as_str()).collect();
            let created_at: Vec<i64> = incidents.iter().map(|i| i.created_at.0).collect();
            let closed_at: Vec<Option<i64>> =
                incidents.iter().map(|i| i.closed_at.map(|t| t.0)).collect();
            let labels: Vec<String> = incidents.iter().map(|i| labels_column(&i.labels)).collect();
            let root_causes: Vec<Option<&str>> = incidents
                .iter()
                .map(|i| i.root_cause.as_ref().map(|p| p.as_str()))
                .collect();
            let answer = self
                .query(
                    "INSERT INTO incidents AS i \
                     (repo_id, source, number, created_at, closed_at, labels, root_cause) \
                     SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], \
                     $5::bigint[], $6::text[], $7::text[]) \
                     ON CONFLICT (repo_id, source, number) DO UPDATE SET \
                     created_at = excluded.created_at, closed_at = excluded.closed_at, \
                     labels = excluded.labels, root_cause = excluded.root_cause \
                     WHERE (i.created_at, i.closed_at, i.labels, i.root_cause) \
                     IS DISTINCT FROM (excluded.created_at, excluded.closed_at, \
                     excluded.labels, excluded.root_cause) \
                     RETURNING (xmax = 0)",
                    &[
                        (&repo_id, Type::INT8),
                        (&sources, Type::TEXT_ARRAY),
                        (&numbers, Type::INT8_ARRAY),
                        (&created_at, Type::INT8_ARRAY),
                        (&closed_at, Type::INT8_ARRAY),
                        (&labels, Type::TEXT_ARRAY),
                        (&root_causes, Type::TEXT_ARRAY),
                    ],
                )
                .map_err(&db)?;
            count(&mut stats, &answer, incidents.len()).map_err(&db)?;
        }
        Ok(stats)
    }

    /// A first review once stored stays, as in SQLite (`None`: not read).
    fn pull_requests(&mut self, pulls: &[PullRequest]) -> Result<KindStats, StoreError> {
        let repo_id = self.repo_id;
        let mut stats = KindStats::default();
        let mut numbers = Vec::with_capacity(pulls.len());
        for pull in pulls {
            same_repository(
                self.target,
                self.repository,
                &pull.repository,
                "pull request",
                pull.number,
            )?;
            numbers.push(to_i64(self.target, "pull request number", pull.number)?);
        }
        let db = pg_error(self.target, "storing a pull request");
        let time = |t: Option<Timestamp>| t.map(|t| t.0);
        for run in runs(pulls.iter().map(|p| p.number)) {
            let (pulls, numbers) = (&pulls[run.clone()], &numbers[run]);
            let (packed, ranges) = pack_all(pulls, |p| &p.commits);
            let commits = slices(&packed, &ranges);
            let merged_at: Vec<Option<i64>> = pulls.iter().map(|p| time(p.merged_at)).collect();
            let merge_commit_shas: Vec<Option<&[u8]>> = pulls
                .iter()
                .map(|p| p.merge_commit_sha.as_ref().map(|s| s.as_bytes().as_slice()))
                .collect();
            let labels: Vec<String> = pulls.iter().map(|p| labels_column(&p.labels)).collect();
            let first_commit_at: Vec<Option<i64>> =
                pulls.iter().map(|p| time(p.first_commit_at)).collect();
            let created_at: Vec<Option<i64>> = pulls.iter().map(|p| time(p.created_at)).collect();
            let first_review_at: Vec<Option<i64>> =
                pulls.iter().map(|p| time(p.first_review_at)).collect();
            let answer = self
                .query(
                    "INSERT INTO pull_requests AS p \
                     (repo_id, number, merged_at, merge_commit_sha, labels, commits, \
                     first_commit_at, created_at, first_review_at) \
                     SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bytea[], \
                     $5::text[], $6::bytea[], $7::bigint[], $8::bigint[], $9::bigint[]) \
                     ON CONFLICT (repo_id, number) DO UPDATE SET merged_at = excluded.merged_at, \
                     merge_commit_sha = excluded.merge_commit_sha, labels = excluded.labels, \
                     commits = excluded.commits, first_commit_at = excluded.first_commit_at, \
                     created_at = excluded.created_at, \
                     first_review_at = COALESCE(excluded.first_review_at, p.first_review_at) \
                     WHERE (p.merged_at, p.merge_commit_sha, p.labels, p.commits, \
                     p.first_commit_at, p.created_at, p.first_review_at) \
                     IS DISTINCT FROM (excluded.merged_at, excluded.merge_commit_sha, \
                     excluded.labels, excluded.commits, excluded.first_commit_at, \
                     excluded.created_at, COALESCE(excluded.first_review_at, p.first_review_at)) \
                     RETURNING (xmax = 0)",
                    &[
                        (&repo_id, Type::INT8),
                        (&numbers, Type::INT8_ARRAY),
                        (&merged_at, Type::INT8_ARRAY),
                        (&merge_commit_shas, Type::BYTEA_ARRAY),
                        (&labels, Type::TEXT_ARRAY),
                        (&commits, Type::BYTEA_ARRAY),
                        (&first_commit_at, Type::INT8_ARRAY),
                        (&created_at, Type::INT8_ARRAY),
                        (&first_review_at, Type::INT8_ARRAY),
                    ],
                )
                .map_err(&db)?;
            count(&mut stats, &answer, pulls.len()).map_err(&db)?;
        }
        Ok(stats)
    }

    /// Replaces the repository's source-declared production environments when the
    /// batch carries a list.
    fn production_environments(&mut self, batch: &SyncBatch) -> Result<(), StoreError> {
        let repo_id = self.repo_id;
        let Some(environments) = &batch.production_environments else {
            return Ok(());
        };
        let db = pg_error(self.target, "storing production environments");
        self.query(
            "DELETE FROM production_environments WHERE repo_id = $1",
            &[(&repo_id, Type::INT8)],
        )
        .map_err(&db)?;
        let names: Vec<&str> = environments.iter().map(|e| e.as_str()).collect();
        self.query(
            "INSERT INTO production_environments (repo_id, environment) \
                 SELECT $1, name FROM unnest($2::text[]) AS name \
                 ON CONFLICT (repo_id, environment) DO NOTHING",
            &[(&repo_id, Type::INT8), (&names, Type::TEXT_ARRAY)],
        )
        .map_err(&db)?;
        Ok(())
    }

    /// Replaces the repository's first-review horizon when the batch carries
    /// one.
    fn reviews_since(&mut self, batch: &SyncBatch) -> Result<(), StoreError> {
        let repo_id = self.repo_id;
        let Some(since) = batch.reviews_since else {
            return Ok(());
        };
        self.query(
            "INSERT INTO review_horizons (repo_id, since) VALUES ($1, $2) \
                 ON CONFLICT (repo_id) DO UPDATE SET since = excluded.since",
            &[(&repo_id, Type::INT8), (&since.0, Type::INT8)],
        )
        .map_err(pg_error(self.target, "storing the first-review horizon"))?;
        Ok(())
    }

    fn cursors(&mut self, cursors: &[(CursorKey, Cursor)]) -> Result<KindStats, StoreError> {
        let repo_id = self.repo_id;
        let mut stats = KindStats::default();
        for (key, cursor) in cursors {
            same_repository(
                self.target,
                self.repository,
                &key.repository,
                "cursor",
                &key.endpoint,
            )?;
            check_cursor(self.target, &key.endpoint, cursor.opaque.as_deref())?;
        }
        let db = pg_error(self.target, "advancing a cursor");
        for run in runs(cursors.iter().map(|(key, _)| key.endpoint.as_str())) {
            let cursors = &cursors[run];
            let endpoints: Vec<&str> = cursors.iter().map(|(k, _)| k.endpoint.as_str()).collect();
            let since: Vec<Option<i64>> =
                cursors.iter().map(|(_, c)| c.since.map(|t| t.0)).collect();
            let opaque: Vec<Option<&str>> =
                cursors.iter().map(|(_, c)| c.opaque.as_deref()).collect();
            let updated_at: Vec<i64> = cursors.iter().map(|(_, c)| c.updated_at.0).collect();
            let answer = self
                .query(
                    "INSERT INTO cursors AS c (repo_id, endpoint, since, opaque, updated_at) \
                     SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[], \
                     $5::bigint[]) \
                     ON CONFLICT (repo_id, endpoint) DO UPDATE SET since = excluded.since, \
                     opaque = excluded.opaque, updated_at = excluded.updated_at \
                     WHERE (c.since, c.opaque, c.updated_at) IS DISTINCT FROM \
                     (excluded.since, excluded.opaque, excluded.updated_at) \
                     RETURNING (xmax = 0)",
                    &[
                        (&repo_id, Type::INT8),
                        (&endpoints, Type::TEXT_ARRAY),
                        (&since, Type::INT8_ARRAY),
                        (&opaque, Type::TEXT_ARRAY),
                        (&updated_at, Type::INT8_ARRAY),
                    ],
                )
                .map_err(&db)?;
            count(&mut stats, &answer, cursors.len()).map_err(&db)?;
        }
        Ok(stats)
    }
}

/// Keeps every push request of `requests` that does not conflict, each whole or
/// not at all (a savepoint per request), in ONE transaction.
pub(super) fn push(
    conn: &mut PgConnection,
    target: &str,
    requests: &[PushRequest],
) -> Result<Vec<PushVerdict>, StoreError> {
    let db = pg_error(target, "storing pushed items");
    let PgConnection { client, statements } = conn;
    let mut tx = client.transaction().map_err(&db)?;
    let mut verdicts = Vec::with_capacity(requests.len());
    for request in requests {
        let mut savepoint = tx.savepoint("push_request").map_err(&db)?;
        match push_request(&mut savepoint, statements, target, request)? {
            Ok(verdict) => {
                savepoint.commit().map_err(&db)?;
                verdicts.push(verdict);
            }
            Err(index) => {
                savepoint.rollback().map_err(&db)?;
                verdicts.push(PushVerdict::Conflict { index });
            }
        }
    }
    tx.commit()
        .map_err(pg_error(target, "committing pushed items"))?;
    Ok(verdicts)
}

/// A pushed item's row in `push_ids`: `(id, repo_id, team, digest, base_digest)`.
type StoredPush = (i64, Option<i64>, Option<String>, Vec<u8>, Vec<u8>);

/// Writes the items of one request; `Err(index)` at the first item that
/// conflicts with what is stored (the caller rolls the request back).
fn push_request(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    target: &str,
    request: &PushRequest,
) -> Result<Result<PushVerdict, usize>, StoreError> {
    let db = pg_error(target, "storing a pushed item");
    let (mut inserted, mut updated, mut unchanged) = (0u32, 0u32, 0u32);
    for (index, item) in request.items.iter().enumerate() {
        let (repo_id, team) = match (&item.event, item.event.repository()) {
            (PushedEvent::TeamIncident(incident), _) => match &incident.scope {
                IncidentScope::Team(team) => (None, Some(team.as_str())),
                IncidentScope::Repositories(_) => (None, None),
            },
            (_, Some(repository)) => (Some(ensure_repo(tx, statements, target, repository)?), None),
            (_, None) => (None, None),
        };
        let kind = item.event.kind().as_str();
        let stored: Option<StoredPush> = tx
            .query_opt(
                "SELECT id, repo_id, team, digest, base_digest FROM push_ids \
                 WHERE client = $1 AND kind = $2 AND external_id = $3",
                &[&item.client, &kind, &item.id],
            )
            .and_then(|row| {
                row.map(|row| {
                    Ok((
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                        row.try_get(4)?,
                    ))
                })
                .transpose()
            })
            .map_err(&db)?;
        let id: i64 = match stored {
            None => {
                let id = tx
                    .query_one(
                        "INSERT INTO push_ids \
                         (client, kind, external_id, repo_id, team, digest, base_digest) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                        &[
                            &item.client,
                            &kind,
                            &item.id,
                            &repo_id,
                            &team,
                            &item.digest.as_slice(),
                            &item.base_digest.as_slice(),
                        ],
                    )
                    .and_then(|row| row.try_get(0))
                    .map_err(&db)?;
                inserted += 1;
                id
            }
            Some((_, _, _, digest, base)) if digest == item.digest || base == item.digest => {
                unchanged += 1;
                continue;
            }
            Some((id, stored_repo, stored_team, digest, _))
                if stored_repo == repo_id
                    && stored_team.as_deref() == team
                    && item.base_digest != item.digest
                    && digest == item.base_digest =>
            {
                tx.execute(
                    "UPDATE push_ids SET digest = $2 WHERE id = $1",
                    &[&id, &item.digest.as_slice()],
                )
                .map_err(&db)?;
                updated += 1;
                id
            }
            Some(_) => return Ok(Err(index)),
        };
        let id = u64::try_from(id).map_err(|_| StoreError::Corrupt {
            path: target.to_owned(),
            table: "push_ids",
            what: format!("id {id}"),
        })?;
        let (Some(repository), Some(repo_id)) = (item.event.repository(), repo_id) else {
            if let PushedEvent::TeamIncident(incident) = &item.event {
                let incident = ScopedIncident {
                    number: id,
                    ..incident.clone()
                };
                let mut ignored = KindStats::default();
                scoped_incidents(
                    tx,
                    statements,
                    target,
                    std::slice::from_ref(&incident),
                    &mut ignored,
                )?;
            }
            continue;
        };
        let mut writer = Writer {
            tx,
            statements: &mut *statements,
            target,
            repo_id,
            repository,
        };
        match &item.event {
            PushedEvent::Deployment {
                deployment,
                commits,
            } => {
                writer.deployments(&[Deployment {
                    id,
                    ..deployment.clone()
                }])?;
                writer.commits(commits)?;
            }
            PushedEvent::Incident(incident) => {
                writer.repository_incidents(&[Incident {
                    number: id,
                    ..incident.clone()
                }])?;
            }
            PushedEvent::TeamIncident(_) => {}
        }
    }
    Ok(Ok(PushVerdict::Stored {
        inserted,
        updated,
        unchanged,
    }))
}

/// Upserts incidents of teams or of sets of repositories, counted into `stats`.
fn scoped_incidents(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    target: &str,
    incidents: &[ScopedIncident],
    stats: &mut KindStats,
) -> Result<(), StoreError> {
    let mut numbers = Vec::with_capacity(incidents.len());
    let mut teams = Vec::with_capacity(incidents.len());
    let mut repositories = Vec::with_capacity(incidents.len());
    for incident in incidents {
        numbers.push(to_i64(target, "incident number", incident.number)?);
        match &incident.scope {
            IncidentScope::Team(team) => {
                teams.push(Some(team.as_str()));
                repositories.push(None);
            }
            IncidentScope::Repositories(names) => {
                teams.push(None);
                repositories.push(Some(serde_json::to_string(names).map_err(|e| {
                    StoreError::InvalidInput {
                        path: target.to_owned(),
                        what: "incident",
                        reason: e.to_string(),
                    }
                })?));
            }
        }
    }
    let db = pg_error(target, "storing an incident of a team or of repositories");
    for run in runs(incidents.iter().map(|i| (i.source, i.number))) {
        let sent = run.len();
        let (numbers, teams, repositories) = (
            &numbers[run.clone()],
            &teams[run.clone()],
            &repositories[run.clone()],
        );
        let incidents = &incidents[run];
        let sources: Vec<&str> = incidents.iter().map(|i| i.source.as_str()).collect();
        let created_at: Vec<i64> = incidents.iter().map(|i| i.created_at.0).collect();
        let closed_at: Vec<Option<i64>> =
            incidents.iter().map(|i| i.closed_at.map(|t| t.0)).collect();
        let root_causes: Vec<Option<&str>> = incidents
            .iter()
            .map(|i| i.root_cause.as_ref().map(|p| p.as_str()))
            .collect();
        let answer = statements
            .query(
                tx,
                "INSERT INTO scoped_incidents AS s \
                 (source, number, team, repositories, created_at, closed_at, root_cause) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], \
                 $5::bigint[], $6::bigint[], $7::text[]) \
                 ON CONFLICT (source, number) DO UPDATE SET team = excluded.team, \
                 repositories = excluded.repositories, created_at = excluded.created_at, \
                 closed_at = excluded.closed_at, root_cause = excluded.root_cause \
                 WHERE (s.team, s.repositories, s.created_at, s.closed_at, s.root_cause) \
                 IS DISTINCT FROM (excluded.team, excluded.repositories, excluded.created_at, \
                 excluded.closed_at, excluded.root_cause) \
                 RETURNING (xmax = 0)",
                &[
                    (&sources, Type::TEXT_ARRAY),
                    (&numbers, Type::INT8_ARRAY),
                    (&teams, Type::TEXT_ARRAY),
                    (&repositories, Type::TEXT_ARRAY),
                    (&created_at, Type::INT8_ARRAY),
                    (&closed_at, Type::INT8_ARRAY),
                    (&root_causes, Type::TEXT_ARRAY),
                ],
            )
            .map_err(&db)?;
        count(stats, &answer, sent).map_err(&db)?;
    }
    Ok(())
}

pub(super) fn record_sync(
    conn: &mut PgConnection,
    target: &str,
    repository: &RepoName,
    source: &str,
    finished_at: Timestamp,
    outcome: &SyncOutcome,
    history_since: Option<Timestamp>,
) -> Result<(), StoreError> {
    let (success_at, error) = sync_columns(target, source, finished_at, outcome)?;
    let db = pg_error(target, "recording a sync");
    let PgConnection { client, statements } = conn;
    let mut tx = client.transaction().map_err(&db)?;
    relaxed_commit(&mut tx, target)?;
    let repo_id = ensure_repo(&mut tx, statements, target, repository)?;
    tx.execute(
        "INSERT INTO sync_status AS s \
         (repo_id, source, last_attempt_at, last_success_at, last_error, history_since) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (repo_id, source) DO UPDATE SET \
         last_attempt_at = excluded.last_attempt_at, \
         last_success_at = coalesce(excluded.last_success_at, s.last_success_at), \
         last_error = excluded.last_error, \
         history_since = coalesce(s.history_since, excluded.history_since)",
        &[
            &repo_id,
            &source,
            &finished_at.0,
            &success_at,
            &error,
            &history_since.map(|t| t.0),
        ],
    )
    .map_err(&db)?;
    tx.commit().map_err(db)
}

/// Keeps each repository's team (a row per repository, replaced when the team
/// changed), in one transaction.
pub(super) fn record_teams(
    conn: &mut PgConnection,
    target: &str,
    teams: &[(RepoName, Team)],
    at: Timestamp,
) -> Result<(), StoreError> {
    let db = pg_error(target, "recording the repositories' teams");
    let PgConnection { client, statements } = conn;
    let mut tx = client.transaction().map_err(&db)?;
    for (repository, team) in teams {
        let repo_id = ensure_repo(&mut tx, statements, target, repository)?;
        tx.execute(
            "INSERT INTO repository_teams AS t (repo_id, team, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repo_id) DO UPDATE SET team = excluded.team, \
             updated_at = excluded.updated_at WHERE t.team <> excluded.team",
            &[&repo_id, &team.as_str(), &at.0],
        )
        .map_err(&db)?;
    }
    tx.commit().map_err(db)
}
