//! Writes: `apply` (one transaction per batch, events and cursors together),
//! `push` (the push API's group commit, a savepoint per request) and
//! `record_sync`, with the SQLite store's rules and checks (shared from
//! `sqlite/write.rs`).
//!
//! Every upsert but a deployment's is one statement: `INSERT ... ON CONFLICT DO
//! UPDATE ... WHERE <values differ> RETURNING (xmax = 0)`, whose answer tells
//! inserted (true), updated (false) and unchanged (no row). A deployment is read
//! first (`FOR UPDATE`), because its outcome is merged ([`merge_outcome`]).
//! Statements are prepared once per transaction. Anything that cannot be stored
//! fails the whole transaction, which then rolls back.

use super::pg_error;
use crate::domain::batch::{PushRequest, PushVerdict, PushedEvent};
use crate::domain::{
    Deployment, Incident, IncidentScope, RepoName, ScopedIncident, Team, Timestamp,
};
use crate::store::sqlite::codec::{
    compare_status_column, labels_column, outcome_columns, outcome_from_columns, pack_shas_into,
};
use crate::store::sqlite::write::{
    check_cursor, same_deployment, same_repository, sync_columns, to_i64, StoredDeployment,
};
use crate::store::{merge_outcome, ApplyStats, KindStats, StoreError, SyncBatch, SyncOutcome};
use postgres::types::ToSql;
use postgres::{Statement, Transaction};

/// The most commits one statement upserts: large enough that round trips stop
/// mattering, small enough to keep a statement's arrays a few MiB.
const COMMITS_PER_STATEMENT: usize = 1_000;

/// The columns of a chunk of commits, as arrays for one statement.
#[derive(Default)]
struct CommitChunk {
    shas: Vec<Vec<u8>>,
    author_dates: Vec<i64>,
    reverts: Vec<bool>,
    parents: Vec<Vec<u8>>,
    subjects: Vec<String>,
}

impl CommitChunk {
    /// Upserts the chunk (when not empty), counts its rows and empties it.
    fn write(
        &mut self,
        tx: &mut Transaction<'_>,
        upsert: &Statement,
        repo_id: i64,
        stats: &mut KindStats,
    ) -> Result<(), postgres::Error> {
        if self.shas.is_empty() {
            return Ok(());
        }
        let rows = tx.query(
            upsert,
            &[
                &repo_id,
                &self.shas,
                &self.author_dates,
                &self.reverts,
                &self.parents,
                &self.subjects,
            ],
        )?;
        let written = rows.len() as u64;
        for row in rows {
            count(stats, Some(row))?;
        }
        stats.unchanged += self.shas.len() as u64 - written;
        *self = CommitChunk::default();
        Ok(())
    }
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

/// Counts one upsert's answer (see the module documentation) into `stats`.
fn count(stats: &mut KindStats, answer: Option<postgres::Row>) -> Result<(), postgres::Error> {
    match answer {
        None => stats.unchanged += 1,
        Some(row) => {
            if row.try_get::<_, bool>(0)? {
                stats.inserted += 1;
            } else {
                stats.updated += 1;
            }
        }
    }
    Ok(())
}

/// The id of `repository`, adding it when new.
fn ensure_repo(
    tx: &mut Transaction<'_>,
    target: &str,
    repository: &RepoName,
) -> Result<i64, StoreError> {
    let db = pg_error(target, "adding a repository");
    tx.execute(
        "INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
        &[&repository.as_str()],
    )
    .map_err(&db)?;
    tx.query_one(
        "SELECT id FROM repositories WHERE name = $1",
        &[&repository.as_str()],
    )
    .and_then(|row| row.try_get(0))
    .map_err(db)
}

pub(super) fn apply(
    client: &mut postgres::Client,
    target: &str,
    batch: &SyncBatch,
) -> Result<ApplyStats, StoreError> {
    let mut tx = client
        .transaction()
        .map_err(pg_error(target, "starting a sync batch"))?;
    relaxed_commit(&mut tx, target)?;
    let repo_id = ensure_repo(&mut tx, target, &batch.repository)?;
    let mut writer = Writer {
        tx: &mut tx,
        target,
        repo_id,
        repository: &batch.repository,
    };
    let stats = ApplyStats {
        deployments: writer.deployments(&batch.deployments)?,
        commits: writer.commits(batch)?,
        compares: writer.compares(batch)?,
        incidents: writer.incidents(batch)?,
        pull_requests: writer.pull_requests(batch)?,
        cursors: writer.cursors(batch)?,
    };
    writer.production_environments(batch)?;
    tx.commit()
        .map_err(pg_error(target, "committing a sync batch"))?;
    Ok(stats)
}

struct Writer<'a, 't> {
    tx: &'a mut Transaction<'t>,
    target: &'a str,
    repo_id: i64,
    repository: &'a RepoName,
}

impl Writer<'_, '_> {
    fn prepare(&mut self, sql: &str, operation: &'static str) -> Result<Statement, StoreError> {
        self.tx
            .prepare(sql)
            .map_err(pg_error(self.target, operation))
    }

    fn deployments(&mut self, deployments: &[Deployment]) -> Result<KindStats, StoreError> {
        let mut stats = KindStats::default();
        if deployments.is_empty() {
            return Ok(stats);
        }
        const OPERATION: &str = "storing a deployment";
        let select = self.prepare(
            "SELECT environment, sha, created_at, outcome, outcome_at FROM deployments \
             WHERE repo_id = $1 AND source = $2 AND id = $3 FOR UPDATE",
            OPERATION,
        )?;
        let insert = self.prepare(
            "INSERT INTO deployments \
             (repo_id, source, id, environment, sha, created_at, outcome, outcome_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            OPERATION,
        )?;
        let update = self.prepare(
            "UPDATE deployments SET environment = $4, sha = $5, created_at = $6, \
             outcome = $7, outcome_at = $8 \
             WHERE repo_id = $1 AND source = $2 AND id = $3",
            OPERATION,
        )?;
        let db = pg_error(self.target, OPERATION);
        for deployment in deployments {
            same_repository(
                self.target,
                self.repository,
                &deployment.repository,
                "deployment",
                deployment.id,
            )?;
            let id = to_i64(self.target, "deployment id", deployment.id)?;
            let source = deployment.source.as_str();
            let stored: Option<StoredDeployment> = self
                .tx
                .query_opt(&select, &[&self.repo_id, &source, &id])
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
            let outcome = match &stored {
                None => deployment.outcome,
                Some((_, _, _, outcome, at)) => {
                    let stored_outcome =
                        outcome_from_columns(outcome, *at).ok_or_else(|| StoreError::Corrupt {
                            path: self.target.to_owned(),
                            table: "deployments",
                            what: format!("outcome of deployment {}", deployment.id),
                        })?;
                    merge_outcome(stored_outcome, deployment.outcome)
                }
            };
            let (outcome_text, outcome_at) = outcome_columns(outcome);
            let sha = deployment.sha.as_bytes().as_slice();
            let environment = deployment.environment.as_str();
            let created_at = deployment.created_at.0;
            let params: [&(dyn ToSql + Sync); 8] = [
                &self.repo_id,
                &source,
                &id,
                &environment,
                &sha,
                &created_at,
                &outcome_text,
                &outcome_at,
            ];
            match &stored {
                None => {
                    self.tx.execute(&insert, &params).map_err(&db)?;
                    stats.inserted += 1;
                }
                Some(row)
                    if same_deployment(row, environment, &deployment.sha, created_at, outcome) =>
                {
                    stats.unchanged += 1;
                }
                Some(_) => {
                    self.tx.execute(&update, &params).map_err(&db)?;
                    stats.updated += 1;
                }
            }
        }
        Ok(stats)
    }

    /// Commits go in chunks of at most [`COMMITS_PER_STATEMENT`], one statement
    /// each over arrays (`unnest`): a first sync writes thousands at once, and one
    /// round trip per commit made that many times slower than SQLite. A sha met
    /// again within the batch starts a new chunk (one statement cannot upsert a
    /// row twice), so the counts are those of writing the commits one by one.
    fn commits(&mut self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let mut stats = KindStats::default();
        if batch.commits.is_empty() {
            return Ok(stats);
        }
        const OPERATION: &str = "storing a commit";
        let upsert = self.prepare(
            "INSERT INTO commits AS c (repo_id, sha, author_date, is_revert, parents, subject) \
             SELECT $1::bigint, * FROM unnest($2::bytea[], $3::bigint[], $4::boolean[], \
             $5::bytea[], $6::text[]) \
             ON CONFLICT (repo_id, sha) DO UPDATE SET author_date = excluded.author_date, \
             is_revert = excluded.is_revert, parents = excluded.parents, \
             subject = excluded.subject \
             WHERE (c.author_date, c.is_revert, c.parents, c.subject) IS DISTINCT FROM \
             (excluded.author_date, excluded.is_revert, excluded.parents, excluded.subject) \
             RETURNING (xmax = 0)",
            OPERATION,
        )?;
        let db = pg_error(self.target, OPERATION);
        let mut chunk = CommitChunk::default();
        let mut in_chunk = std::collections::HashSet::new();
        for commit in &batch.commits {
            if chunk.shas.len() == COMMITS_PER_STATEMENT || !in_chunk.insert(commit.sha) {
                chunk
                    .write(self.tx, &upsert, self.repo_id, &mut stats)
                    .map_err(&db)?;
                in_chunk.clear();
                in_chunk.insert(commit.sha);
            }
            // The record may have been built without `CommitRecord::new`.
            let subject = crate::store::commit_subject(&commit.message);
            let mut parents = Vec::new();
            pack_shas_into(&commit.parents, &mut parents);
            chunk.shas.push(commit.sha.as_bytes().to_vec());
            chunk.author_dates.push(commit.author_date.0);
            chunk
                .reverts
                .push(subject.starts_with(crate::domain::REVERT_MESSAGE_PREFIX));
            chunk.parents.push(parents);
            chunk.subjects.push(subject.to_owned());
        }
        chunk
            .write(self.tx, &upsert, self.repo_id, &mut stats)
            .map_err(&db)?;
        Ok(stats)
    }

    fn compares(&mut self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let mut stats = KindStats::default();
        if batch.compares.is_empty() {
            return Ok(stats);
        }
        const OPERATION: &str = "storing a compare";
        let upsert = self.prepare(
            "INSERT INTO compares AS c (repo_id, base, head, status, commits) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo_id, base, head) DO UPDATE SET status = excluded.status, \
             commits = excluded.commits \
             WHERE (c.status, c.commits) IS DISTINCT FROM (excluded.status, excluded.commits) \
             RETURNING (xmax = 0)",
            OPERATION,
        )?;
        let db = pg_error(self.target, OPERATION);
        let mut commits = Vec::new();
        for compare in &batch.compares {
            pack_shas_into(&compare.commits, &mut commits);
            let base = compare.base.as_bytes().as_slice();
            let head = compare.head.as_bytes().as_slice();
            let status = compare_status_column(compare.status);
            let commits = commits.as_slice();
            let answer = self
                .tx
                .query_opt(&upsert, &[&self.repo_id, &base, &head, &status, &commits])
                .map_err(&db)?;
            count(&mut stats, answer).map_err(&db)?;
        }
        Ok(stats)
    }

    fn incidents(&mut self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let mut stats = KindStats::default();
        for incident in &batch.incidents {
            same_repository(
                self.target,
                self.repository,
                &incident.repository,
                "incident",
                incident.number,
            )?;
            let answer = self.incident(incident)?;
            count(&mut stats, answer).map_err(pg_error(self.target, "storing an incident"))?;
        }
        for incident in &batch.scoped_incidents {
            let answer = scoped_incident(self.tx, self.target, incident)?;
            count(&mut stats, answer).map_err(pg_error(self.target, "storing an incident"))?;
        }
        Ok(stats)
    }

    /// Upserts one incident of this writer's repository.
    fn incident(&mut self, incident: &Incident) -> Result<Option<postgres::Row>, StoreError> {
        let db = pg_error(self.target, "storing an incident");
        let number = to_i64(self.target, "incident number", incident.number)?;
        let source = incident.source.as_str();
        let closed_at = incident.closed_at.map(|t| t.0);
        let labels = labels_column(&incident.labels);
        let root_cause = incident.root_cause.as_ref().map(|p| p.as_str());
        self.tx
            .query_opt(
                "INSERT INTO incidents AS i \
                 (repo_id, source, number, created_at, closed_at, labels, root_cause) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (repo_id, source, number) DO UPDATE SET \
                 created_at = excluded.created_at, closed_at = excluded.closed_at, \
                 labels = excluded.labels, root_cause = excluded.root_cause \
                 WHERE (i.created_at, i.closed_at, i.labels, i.root_cause) IS DISTINCT FROM \
                 (excluded.created_at, excluded.closed_at, excluded.labels, excluded.root_cause) \
                 RETURNING (xmax = 0)",
                &[
                    &self.repo_id,
                    &source,
                    &number,
                    &incident.created_at.0,
                    &closed_at,
                    &labels,
                    &root_cause,
                ],
            )
            .map_err(db)
    }

    /// A first review once stored stays, as in SQLite (`None`: not read).
    fn pull_requests(&mut self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let mut stats = KindStats::default();
        if batch.pull_requests.is_empty() {
            return Ok(stats);
        }
        const OPERATION: &str = "storing a pull request";
        let upsert = self.prepare(
            "INSERT INTO pull_requests AS p \
             (repo_id, number, merged_at, merge_commit_sha, labels, commits, first_commit_at, \
             created_at, first_review_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (repo_id, number) DO UPDATE SET merged_at = excluded.merged_at, \
             merge_commit_sha = excluded.merge_commit_sha, labels = excluded.labels, \
             commits = excluded.commits, first_commit_at = excluded.first_commit_at, \
             created_at = excluded.created_at, \
             first_review_at = COALESCE(excluded.first_review_at, p.first_review_at) \
             WHERE (p.merged_at, p.merge_commit_sha, p.labels, p.commits, p.first_commit_at, \
             p.created_at, p.first_review_at) \
             IS DISTINCT FROM (excluded.merged_at, excluded.merge_commit_sha, excluded.labels, \
             excluded.commits, excluded.first_commit_at, excluded.created_at, \
             COALESCE(excluded.first_review_at, p.first_review_at)) \
             RETURNING (xmax = 0)",
            OPERATION,
        )?;
        let db = pg_error(self.target, OPERATION);
        let mut commits = Vec::new();
        for pull in &batch.pull_requests {
            same_repository(
                self.target,
                self.repository,
                &pull.repository,
                "pull request",
                pull.number,
            )?;
            let number = to_i64(self.target, "pull request number", pull.number)?;
            let merged_at = pull.merged_at.map(|t| t.0);
            let merge_commit_sha = pull
                .merge_commit_sha
                .as_ref()
                .map(|s| s.as_bytes().as_slice());
            let labels = labels_column(&pull.labels);
            pack_shas_into(&pull.commits, &mut commits);
            let commits = commits.as_slice();
            let first_commit_at = pull.first_commit_at.map(|t| t.0);
            let created_at = pull.created_at.map(|t| t.0);
            let first_review_at = pull.first_review_at.map(|t| t.0);
            let answer = self
                .tx
                .query_opt(
                    &upsert,
                    &[
                        &self.repo_id,
                        &number,
                        &merged_at,
                        &merge_commit_sha,
                        &labels,
                        &commits,
                        &first_commit_at,
                        &created_at,
                        &first_review_at,
                    ],
                )
                .map_err(&db)?;
            count(&mut stats, answer).map_err(&db)?;
        }
        Ok(stats)
    }

    /// Replaces the repository's source-declared production environments when the
    /// batch carries a list.
    fn production_environments(&mut self, batch: &SyncBatch) -> Result<(), StoreError> {
        let Some(environments) = &batch.production_environments else {
            return Ok(());
        };
        let db = pg_error(self.target, "storing production environments");
        self.tx
            .execute(
                "DELETE FROM production_environments WHERE repo_id = $1",
                &[&self.repo_id],
            )
            .map_err(&db)?;
        let names: Vec<&str> = environments.iter().map(|e| e.as_str()).collect();
        self.tx
            .execute(
                "INSERT INTO production_environments (repo_id, environment) \
                 SELECT $1, name FROM unnest($2::text[]) AS name \
                 ON CONFLICT (repo_id, environment) DO NOTHING",
                &[&self.repo_id, &names],
            )
            .map_err(&db)?;
        Ok(())
    }

    fn cursors(&mut self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let mut stats = KindStats::default();
        if batch.cursors.is_empty() {
            return Ok(stats);
        }
        const OPERATION: &str = "advancing a cursor";
        let upsert = self.prepare(
            "INSERT INTO cursors AS c (repo_id, endpoint, since, opaque, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo_id, endpoint) DO UPDATE SET since = excluded.since, \
             opaque = excluded.opaque, updated_at = excluded.updated_at \
             WHERE (c.since, c.opaque, c.updated_at) IS DISTINCT FROM \
             (excluded.since, excluded.opaque, excluded.updated_at) \
             RETURNING (xmax = 0)",
            OPERATION,
        )?;
        let db = pg_error(self.target, OPERATION);
        for (key, cursor) in &batch.cursors {
            same_repository(
                self.target,
                self.repository,
                &key.repository,
                "cursor",
                &key.endpoint,
            )?;
            check_cursor(self.target, &key.endpoint, cursor.opaque.as_deref())?;
            let since = cursor.since.map(|t| t.0);
            let answer = self
                .tx
                .query_opt(
                    &upsert,
                    &[
                        &self.repo_id,
                        &key.endpoint,
                        &since,
                        &cursor.opaque,
                        &cursor.updated_at.0,
                    ],
                )
                .map_err(&db)?;
            count(&mut stats, answer).map_err(&db)?;
        }
        Ok(stats)
    }
}

/// Keeps every push request of `requests` that does not conflict, each whole or
/// not at all (a savepoint per request), in ONE transaction.
pub(super) fn push(
    client: &mut postgres::Client,
    target: &str,
    requests: &[PushRequest],
) -> Result<Vec<PushVerdict>, StoreError> {
    let db = pg_error(target, "storing pushed items");
    let mut tx = client.transaction().map_err(&db)?;
    let mut verdicts = Vec::with_capacity(requests.len());
    for request in requests {
        let mut savepoint = tx.savepoint("push_request").map_err(&db)?;
        match push_request(&mut savepoint, target, request)? {
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
            (_, Some(repository)) => (Some(ensure_repo(tx, target, repository)?), None),
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
                scoped_incident(
                    tx,
                    target,
                    &ScopedIncident {
                        number: id,
                        ..incident.clone()
                    },
                )?;
            }
            continue;
        };
        let mut writer = Writer {
            tx,
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
                let mut batch = SyncBatch::new(repository.clone());
                batch.commits.clone_from(commits);
                writer.commits(&batch)?;
            }
            PushedEvent::Incident(incident) => {
                writer.incident(&Incident {
                    number: id,
                    ..incident.clone()
                })?;
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

/// Upserts one incident of a team or of a set of repositories.
fn scoped_incident(
    tx: &mut Transaction<'_>,
    target: &str,
    incident: &ScopedIncident,
) -> Result<Option<postgres::Row>, StoreError> {
    let db = pg_error(target, "storing an incident of a team or of repositories");
    let number = to_i64(target, "incident number", incident.number)?;
    let (team, repositories) = match &incident.scope {
        IncidentScope::Team(team) => (Some(team.as_str().to_owned()), None),
        IncidentScope::Repositories(names) => (
            None,
            Some(
                serde_json::to_string(names).map_err(|e| StoreError::InvalidInput {
                    path: target.to_owned(),
                    what: "incident",
                    reason: e.to_string(),
                })?,
            ),
        ),
    };
    let source = incident.source.as_str();
    let closed_at = incident.closed_at.map(|t| t.0);
    let root_cause = incident.root_cause.as_ref().map(|p| p.as_str());
    tx.query_opt(
        "INSERT INTO scoped_incidents AS s \
         (source, number, team, repositories, created_at, closed_at, root_cause) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (source, number) DO UPDATE SET team = excluded.team, \
         repositories = excluded.repositories, created_at = excluded.created_at, \
         closed_at = excluded.closed_at, root_cause = excluded.root_cause \
         WHERE (s.team, s.repositories, s.created_at, s.closed_at, s.root_cause) \
         IS DISTINCT FROM (excluded.team, excluded.repositories, excluded.created_at, \
         excluded.closed_at, excluded.root_cause) \
         RETURNING (xmax = 0)",
        &[
            &source,
            &number,
            &team,
            &repositories,
            &incident.created_at.0,
            &closed_at,
            &root_cause,
        ],
    )
    .map_err(db)
}

pub(super) fn record_sync(
    client: &mut postgres::Client,
    target: &str,
    repository: &RepoName,
    source: &str,
    finished_at: Timestamp,
    outcome: &SyncOutcome,
    history_since: Option<Timestamp>,
) -> Result<(), StoreError> {
    let (success_at, error) = sync_columns(target, source, finished_at, outcome)?;
    let db = pg_error(target, "recording a sync");
    let mut tx = client.transaction().map_err(&db)?;
    relaxed_commit(&mut tx, target)?;
    let repo_id = ensure_repo(&mut tx, target, repository)?;
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
    client: &mut postgres::Client,
    target: &str,
    teams: &[(RepoName, Team)],
    at: Timestamp,
) -> Result<(), StoreError> {
    let db = pg_error(target, "recording the repositories' teams");
    let mut tx = client.transaction().map_err(&db)?;
    for (repository, team) in teams {
        let repo_id = ensure_repo(&mut tx, target, repository)?;
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
