//! Writes: `apply` (one transaction per batch, events and cursors together) and
//! `record_sync`.
//!
//! Every upsert is two prepared statements sharing their parameters: an `INSERT ...
//! ON CONFLICT DO NOTHING` (one change: a new identity) and, when the identity
//! exists, an `UPDATE ... WHERE <values differ>` (one change: updated; none:
//! unchanged). New rows, the common case, cost one statement. Deployments are read
//! first instead, because their outcome is merged ([`merge_outcome`]).
//!
//! Values are converted while writing; anything that cannot be stored (a number
//! beyond `i64`, an event of another repository, an oversized cursor) fails the
//! whole transaction, which then rolls back.

use super::codec::{
    compare_status_column, labels_column, outcome_columns, outcome_from_columns, pack_shas_into,
    sha_from_blob,
};
use super::db_error;
use crate::domain::batch::{PushRequest, PushVerdict, PushedEvent};
use crate::domain::{
    Deployment, DeploymentOutcome, Incident, IncidentScope, RepoName, ScopedIncident, Team,
    Timestamp, MAX_QUOTED_INPUT,
};
use crate::store::types::cut_to_bytes;
use crate::store::{
    merge_outcome, ApplyStats, KindStats, StoreError, SyncBatch, SyncOutcome,
    MAX_COMMIT_SUBJECT_BYTES, MAX_CURSOR_ENDPOINT_BYTES, MAX_CURSOR_OPAQUE_BYTES,
    MAX_SYNC_ERROR_BYTES, MAX_SYNC_SOURCE_BYTES,
};
use rusqlite::{Connection, OptionalExtension, Statement, ToSql, TransactionBehavior};

/// A stored deployment's `(environment, sha, created_at, outcome, outcome_at)`.
pub(in crate::store) type StoredDeployment = (String, Vec<u8>, i64, String, Option<i64>);

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Inserted,
    Updated,
    Unchanged,
}

/// Counts one row's `written` into `stats`.
fn count(stats: &mut KindStats, written: Written) {
    match written {
        Written::Inserted => stats.inserted += 1,
        Written::Updated => stats.updated += 1,
        Written::Unchanged => stats.unchanged += 1,
    }
}

/// Runs the insert, then (on conflict) the update, with the same parameters.
fn upsert(
    insert: &mut Statement<'_>,
    update: &mut Statement<'_>,
    params: &[&dyn ToSql],
) -> rusqlite::Result<Written> {
    if insert.execute(params)? == 1 {
        return Ok(Written::Inserted);
    }
    Ok(if update.execute(params)? == 1 {
        Written::Updated
    } else {
        Written::Unchanged
    })
}

pub(in crate::store) fn to_i64(
    path: &str,
    what: &'static str,
    value: u64,
) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        path: path.to_owned(),
        what,
        value,
    })
}

/// The id of `repository`, adding it when new.
pub(super) fn ensure_repo(
    tx: &Connection,
    path: &str,
    repository: &RepoName,
) -> Result<i64, StoreError> {
    let db = db_error(path, "adding a repository");
    tx.prepare_cached("INSERT INTO repositories (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")
        .and_then(|mut stmt| stmt.execute([repository.as_str()]))
        .map_err(&db)?;
    tx.prepare_cached("SELECT id FROM repositories WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([repository.as_str()], |row| row.get(0)))
        .map_err(db)
}

/// Checks that an event of `what` names the batch's repository.
pub(in crate::store) fn same_repository(
    path: &str,
    batch: &RepoName,
    event: &RepoName,
    what: &'static str,
    id: impl std::fmt::Display,
) -> Result<(), StoreError> {
    if batch == event {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            path: path.to_owned(),
            what: "sync batch",
            reason: format!("{what} {id} belongs to {event}, the batch to {batch}"),
        })
    }
}

pub(crate) fn apply(
    conn: &mut Connection,
    path: &str,
    batch: &SyncBatch,
) -> Result<ApplyStats, StoreError> {
    // IMMEDIATE: take the write lock now, so a concurrent writer makes this wait
    // (busy timeout) at the start rather than fail at the first write.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error(path, "starting a sync batch"))?;
    let repo_id = ensure_repo(&tx, path, &batch.repository)?;
    let writer = Writer {
        tx: &tx,
        path,
        repo_id,
        repository: &batch.repository,
    };
    let stats = ApplyStats {
        deployments: writer.deployments(batch)?,
        commits: writer.commits(batch)?,
        compares: writer.compares(batch)?,
        incidents: writer.incidents(batch)?,
        pull_requests: writer.pull_requests(batch)?,
        cursors: writer.cursors(batch)?,
    };
    writer.production_environments(batch)?;
    writer.reviews_since(batch)?;
    tx.commit()
        .map_err(db_error(path, "committing a sync batch"))?;
    Ok(stats)
}

struct Writer<'a> {
    /// The open transaction (or savepoint) written in.
    tx: &'a Connection,
    path: &'a str,
    repo_id: i64,
    repository: &'a RepoName,
}

impl Writer<'_> {
    fn deployments(&self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let db = db_error(self.path, "storing a deployment");
        let mut select = self
            .tx
            .prepare_cached(
                "SELECT environment, sha, created_at, outcome, outcome_at FROM deployments \
                 WHERE repo_id = ?1 AND source = ?2 AND id = ?3",
            )
            .map_err(&db)?;
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO deployments \
                 (repo_id, source, id, environment, sha, created_at, outcome, outcome_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(&db)?;
        let mut update = self
            .tx
            .prepare_cached(
                "UPDATE deployments SET environment = ?4, sha = ?5, created_at = ?6, \
                 outcome = ?7, outcome_at = ?8 \
                 WHERE repo_id = ?1 AND source = ?2 AND id = ?3",
            )
            .map_err(&db)?;
        let mut stats = KindStats::default();
        for deployment in &batch.deployments {
            same_repository(
                self.path,
                self.repository,
                &deployment.repository,
                "deployment",
                deployment.id,
            )?;
            let id = to_i64(self.path, "deployment id", deployment.id)?;
            let source = deployment.source.as_str();
            let stored: Option<StoredDeployment> = select
                .query_row((self.repo_id, source, id), |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                })
                .optional()
                .map_err(&db)?;
            let outcome = match &stored {
                None => deployment.outcome,
                Some((_, _, _, outcome, at)) => {
                    let stored_outcome =
                        outcome_from_columns(outcome, *at).ok_or_else(|| StoreError::Corrupt {
                            path: self.path.to_owned(),
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
            let params: [&dyn ToSql; 8] = [
                &self.repo_id,
                &source,
                &id,
                &environment,
                &sha,
                &created_at,
                &outcome_text,
                &outcome_at,
            ];
            let written = match &stored {
                None => {
                    insert.execute(params.as_slice()).map_err(&db)?;
                    Written::Inserted
                }
                Some(row)
                    if same_deployment(row, environment, &deployment.sha, created_at, outcome) =>
                {
                    Written::Unchanged
                }
                Some(_) => {
                    update.execute(params.as_slice()).map_err(&db)?;
                    Written::Updated
                }
            };
            count(&mut stats, written);
        }
        Ok(stats)
    }

    fn commits(&self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let db = db_error(self.path, "storing a commit");
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO commits (repo_id, sha, author_date, is_revert, parents, subject) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (repo_id, sha) DO NOTHING",
            )
            .map_err(&db)?;
        let mut update = self
            .tx
            .prepare_cached(
                "UPDATE commits SET author_date = ?3, is_revert = ?4, parents = ?5, subject = ?6 \
                 WHERE repo_id = ?1 AND sha = ?2 \
                 AND (author_date, is_revert, parents, subject) IS NOT (?3, ?4, ?5, ?6)",
            )
            .map_err(&db)?;
        let mut parents = Vec::new();
        let mut stats = KindStats::default();
        for commit in &batch.commits {
            // The record may have been built without `CommitRecord::new`.
            let subject = crate::store::commit_subject(&commit.message);
            debug_assert!(subject.len() <= MAX_COMMIT_SUBJECT_BYTES);
            let is_revert = subject.starts_with(crate::domain::REVERT_MESSAGE_PREFIX);
            pack_shas_into(&commit.parents, &mut parents);
            let sha = commit.sha.as_bytes().as_slice();
            let parents = parents.as_slice();
            let params: [&dyn ToSql; 6] = [
                &self.repo_id,
                &sha,
                &commit.author_date.0,
                &is_revert,
                &parents,
                &subject,
            ];
            count(
                &mut stats,
                upsert(&mut insert, &mut update, &params).map_err(&db)?,
            );
        }
        Ok(stats)
    }

    fn compares(&self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let db = db_error(self.path, "storing a compare");
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO compares (repo_id, base, head, status, commits) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (repo_id, base, head) DO NOTHING",
            )
            .map_err(&db)?;
        let mut update = self
            .tx
            .prepare_cached(
                "UPDATE compares SET status = ?4, commits = ?5 \
                 WHERE repo_id = ?1 AND base = ?2 AND head = ?3 \
                 AND (status, commits) IS NOT (?4, ?5)",
            )
            .map_err(&db)?;
        let mut commits = Vec::new();
        let mut stats = KindStats::default();
        for compare in &batch.compares {
            pack_shas_into(&compare.commits, &mut commits);
            let base = compare.base.as_bytes().as_slice();
            let head = compare.head.as_bytes().as_slice();
            let status = compare_status_column(compare.status);
            let commits = commits.as_slice();
            let params: [&dyn ToSql; 5] = [&self.repo_id, &base, &head, &status, &commits];
            count(
                &mut stats,
                upsert(&mut insert, &mut update, &params).map_err(&db)?,
            );
        }
        Ok(stats)
    }

    fn incidents(&self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let mut stats = KindStats::default();
        for incident in &batch.incidents {
            same_repository(
                self.path,
                self.repository,
                &incident.repository,
                "incident",
                incident.number,
            )?;
            count(&mut stats, self.incident(incident)?);
        }
        for incident in &batch.scoped_incidents {
            count(&mut stats, scoped_incident(self.tx, self.path, incident)?);
        }
        Ok(stats)
    }

    /// Upserts one incident of this writer's repository.
    fn incident(&self, incident: &Incident) -> Result<Written, StoreError> {
        let db = db_error(self.path, "storing an incident");
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO incidents \
                 (repo_id, source, number, created_at, closed_at, labels, root_cause) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (repo_id, source, number) DO NOTHING",
            )
            .map_err(&db)?;
        let mut update = self
            .tx
            .prepare_cached(
                "UPDATE incidents SET created_at = ?4, closed_at = ?5, labels = ?6, \
                 root_cause = ?7 \
                 WHERE repo_id = ?1 AND source = ?2 AND number = ?3 \
                 AND (created_at, closed_at, labels, root_cause) IS NOT (?4, ?5, ?6, ?7)",
            )
            .map_err(&db)?;
        let number = to_i64(self.path, "incident number", incident.number)?;
        let source = incident.source.as_str();
        let closed_at = incident.closed_at.map(|t| t.0);
        let labels = labels_column(&incident.labels);
        let root_cause = incident.root_cause.as_ref().map(|p| p.as_str());
        let params: [&dyn ToSql; 7] = [
            &self.repo_id,
            &source,
            &number,
            &incident.created_at.0,
            &closed_at,
            &labels,
            &root_cause,
        ];
        upsert(&mut insert, &mut update, &params).map_err(&db)
    }

    /// A first review once stored stays: a pull request written again without
    /// one (`None`: not read) keeps it (`docs/sources.md` § 6).
    fn pull_requests(&self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let db = db_error(self.path, "storing a pull request");
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO pull_requests \
                 (repo_id, number, merged_at, merge_commit_sha, labels, commits, first_commit_at, \
                 created_at, first_review_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (repo_id, number) DO NOTHING",
            )
            .map_err(&db)?;
        let mut update = self
            .tx
            .prepare_cached(
                "UPDATE pull_requests SET merged_at = ?3, merge_commit_sha = ?4, labels = ?5, \
                 commits = ?6, first_commit_at = ?7, created_at = ?8, \
                 first_review_at = COALESCE(?9, first_review_at) \
                 WHERE repo_id = ?1 AND number = ?2 \
                 AND (merged_at, merge_commit_sha, labels, commits, first_commit_at, created_at, \
                 first_review_at) IS NOT (?3, ?4, ?5, ?6, ?7, ?8, COALESCE(?9, first_review_at))",
            )
            .map_err(&db)?;
        let mut commits = Vec::new();
        let mut stats = KindStats::default();
        for pull in &batch.pull_requests {
            same_repository(
                self.path,
                self.repository,
                &pull.repository,
                "pull request",
                pull.number,
            )?;
            let number = to_i64(self.path, "pull request number", pull.number)?;
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
            let params: [&dyn ToSql; 9] = [
                &self.repo_id,
                &number,
                &merged_at,
                &merge_commit_sha,
                &labels,
                &commits,
                &first_commit_at,
                &created_at,
                &first_review_at,
            ];
            count(
                &mut stats,
                upsert(&mut insert, &mut update, &params).map_err(&db)?,
            );
        }
        Ok(stats)
    }

    /// Replaces the repository's source-declared production environments when the
    /// batch carries a list (not counted in [`ApplyStats`]: it is no event).
    fn production_environments(&self, batch: &SyncBatch) -> Result<(), StoreError> {
        let Some(environments) = &batch.production_environments else {
            return Ok(());
        };
        let db = db_error(self.path, "storing production environments");
        self.tx
            .prepare_cached("DELETE FROM production_environments WHERE repo_id = ?1")
            .map_err(&db)?
            .execute([self.repo_id])
            .map_err(&db)?;
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO production_environments (repo_id, environment) VALUES (?1, ?2) \
                 ON CONFLICT (repo_id, environment) DO NOTHING",
            )
            .map_err(&db)?;
        for environment in environments {
            insert
                .execute(rusqlite::params![self.repo_id, environment.as_str()])
                .map_err(&db)?;
        }
        Ok(())
    }

    /// Replaces the repository's first-review horizon when the batch carries
    /// one (not counted in [`ApplyStats`] either).
    fn reviews_since(&self, batch: &SyncBatch) -> Result<(), StoreError> {
        let Some(since) = batch.reviews_since else {
            return Ok(());
        };
        self.tx
            .prepare_cached(
                "INSERT INTO review_horizons (repo_id, since) VALUES (?1, ?2) \
                 ON CONFLICT (repo_id) DO UPDATE SET since = excluded.since",
            )
            .and_then(|mut insert| insert.execute(rusqlite::params![self.repo_id, since.0]))
            .map_err(db_error(self.path, "storing the first-review horizon"))?;
        Ok(())
    }

    fn cursors(&self, batch: &SyncBatch) -> Result<KindStats, StoreError> {
        let db = db_error(self.path, "advancing a cursor");
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO cursors (repo_id, endpoint, since, opaque, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (repo_id, endpoint) DO NOTHING",
            )
            .map_err(&db)?;
        let mut update = self
            .tx
            .prepare_cached(
                "UPDATE cursors SET since = ?3, opaque = ?4, updated_at = ?5 \
                 WHERE repo_id = ?1 AND endpoint = ?2 \
                 AND (since, opaque, updated_at) IS NOT (?3, ?4, ?5)",
            )
            .map_err(&db)?;
        let mut stats = KindStats::default();
        for (key, cursor) in &batch.cursors {
            same_repository(
                self.path,
                self.repository,
                &key.repository,
                "cursor",
                &key.endpoint,
            )?;
            check_cursor(self.path, &key.endpoint, cursor.opaque.as_deref())?;
            let since = cursor.since.map(|t| t.0);
            let params: [&dyn ToSql; 5] = [
                &self.repo_id,
                &key.endpoint,
                &since,
                &cursor.opaque,
                &cursor.updated_at.0,
            ];
            count(
                &mut stats,
                upsert(&mut insert, &mut update, &params).map_err(&db)?,
            );
        }
        Ok(stats)
    }
}

/// Keeps every push request of `requests` that does not conflict, each whole or
/// not at all (a savepoint per request), in ONE transaction: the group commit of
/// the push API. Returns one verdict per request, in order; a database error
/// fails the whole group (nothing is kept).
pub(crate) fn push(
    conn: &mut Connection,
    path: &str,
    requests: &[PushRequest],
) -> Result<Vec<PushVerdict>, StoreError> {
    let db = db_error(path, "storing pushed items");
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&db)?;
    let mut verdicts = Vec::with_capacity(requests.len());
    for request in requests {
        let savepoint = tx.savepoint().map_err(&db)?;
        match push_request(&savepoint, path, request)? {
            Ok(verdict) => {
                savepoint.commit().map_err(&db)?;
                verdicts.push(verdict);
            }
            Err(index) => {
                // Dropping a savepoint rolls it back: nothing of the request stays.
                drop(savepoint);
                verdicts.push(PushVerdict::Conflict { index });
            }
        }
    }
    tx.commit()
        .map_err(db_error(path, "committing pushed items"))?;
    Ok(verdicts)
}

/// A pushed item's row in `push_ids`: `(id, repo_id, team, digest, base_digest)`.
type StoredPush = (i64, Option<i64>, Option<String>, Vec<u8>, Vec<u8>);

/// Writes the items of one request; `Err(index)` at the first item that
/// conflicts with what is stored (the caller rolls the request back).
fn push_request(
    conn: &Connection,
    path: &str,
    request: &PushRequest,
) -> Result<Result<PushVerdict, usize>, StoreError> {
    let db = db_error(path, "storing a pushed item");
    let (mut inserted, mut updated, mut unchanged) = (0u32, 0u32, 0u32);
    for (index, item) in request.items.iter().enumerate() {
        // The owner: a repository (its row id) or a team.
        let (repo_id, team) = match (&item.event, item.event.repository()) {
            (PushedEvent::TeamIncident(incident), _) => match &incident.scope {
                IncidentScope::Team(team) => (None, Some(team.as_str())),
                // The push API only makes incidents of a team.
                IncidentScope::Repositories(_) => (None, None),
            },
            (_, Some(repository)) => (Some(ensure_repo(conn, path, repository)?), None),
            // Every other event has a repository (the table's CHECK would refuse it).
            (_, None) => (None, None),
        };
        let kind = item.event.kind().as_str();
        let stored: Option<StoredPush> = conn
            .prepare_cached(
                "SELECT id, repo_id, team, digest, base_digest FROM push_ids \
                 WHERE client = ?1 AND kind = ?2 AND external_id = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row((&item.client, kind, &item.id), |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                })
                .optional()
            })
            .map_err(&db)?;
        let id = match stored {
            None => {
                conn.prepare_cached(
                    "INSERT INTO push_ids \
                     (client, kind, external_id, repo_id, team, digest, base_digest) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut stmt| {
                    stmt.execute((
                        &item.client,
                        kind,
                        &item.id,
                        repo_id,
                        team,
                        item.digest.as_slice(),
                        item.base_digest.as_slice(),
                    ))
                })
                .map_err(&db)?;
                inserted += 1;
                conn.last_insert_rowid()
            }
            Some((_, _, _, digest, base)) if digest == item.digest || base == item.digest => {
                // A retry (or a late retry of the open version of a since
                // resolved incident): stored as it is.
                unchanged += 1;
                continue;
            }
            Some((id, stored_repo, stored_team, digest, _))
                if stored_repo == repo_id
                    && stored_team.as_deref() == team
                    && item.base_digest != item.digest
                    && digest == item.base_digest =>
            {
                // The one allowed update: the stored item was this one's open version.
                conn.prepare_cached("UPDATE push_ids SET digest = ?2 WHERE id = ?1")
                    .and_then(|mut stmt| stmt.execute((id, item.digest.as_slice())))
                    .map_err(&db)?;
                updated += 1;
                id
            }
            Some(_) => return Ok(Err(index)),
        };
        let id = u64::try_from(id).map_err(|_| StoreError::Corrupt {
            path: path.to_owned(),
            table: "push_ids",
            what: format!("id {id}"),
        })?;
        let (Some(repository), Some(repo_id)) = (item.event.repository(), repo_id) else {
            if let PushedEvent::TeamIncident(incident) = &item.event {
                scoped_incident(
                    conn,
                    path,
                    &ScopedIncident {
                        number: id,
                        ..incident.clone()
                    },
                )?;
            }
            continue;
        };
        let writer = Writer {
            tx: conn,
            path,
            repo_id,
            repository,
        };
        let mut batch = SyncBatch::new(repository.clone());
        match &item.event {
            PushedEvent::Deployment {
                deployment,
                commits,
            } => {
                batch.deployments.push(Deployment {
                    id,
                    ..deployment.clone()
                });
                batch.commits.clone_from(commits);
                writer.deployments(&batch)?;
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
    conn: &Connection,
    path: &str,
    incident: &ScopedIncident,
) -> Result<Written, StoreError> {
    let db = db_error(path, "storing an incident of a team or of repositories");
    let number = to_i64(path, "incident number", incident.number)?;
    let (team, repositories) = match &incident.scope {
        IncidentScope::Team(team) => (Some(team.as_str().to_owned()), None),
        IncidentScope::Repositories(names) => (
            None,
            Some(
                serde_json::to_string(names).map_err(|e| StoreError::InvalidInput {
                    path: path.to_owned(),
                    what: "incident",
                    reason: e.to_string(),
                })?,
            ),
        ),
    };
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO scoped_incidents \
             (source, number, team, repositories, created_at, closed_at, root_cause) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (source, number) DO NOTHING",
        )
        .map_err(&db)?;
    let mut update = conn
        .prepare_cached(
            "UPDATE scoped_incidents SET team = ?3, repositories = ?4, created_at = ?5, \
             closed_at = ?6, root_cause = ?7 \
             WHERE source = ?1 AND number = ?2 \
             AND (team, repositories, created_at, closed_at, root_cause) \
             IS NOT (?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(&db)?;
    let source = incident.source.as_str();
    let closed_at = incident.closed_at.map(|t| t.0);
    let root_cause = incident.root_cause.as_ref().map(|p| p.as_str());
    let params: [&dyn ToSql; 7] = [
        &source,
        &number,
        &team,
        &repositories,
        &incident.created_at.0,
        &closed_at,
        &root_cause,
    ];
    upsert(&mut insert, &mut update, &params).map_err(&db)
}

/// Keeps each repository's team (a row per repository, replaced when the team
/// changed), in one transaction.
pub(crate) fn record_teams(
    conn: &mut Connection,
    path: &str,
    teams: &[(RepoName, Team)],
    at: Timestamp,
) -> Result<(), StoreError> {
    let db = db_error(path, "recording the repositories' teams");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&db)?;
    for (repository, team) in teams {
        let repo_id = ensure_repo(&tx, path, repository)?;
        tx.prepare_cached(
            "INSERT INTO repository_teams (repo_id, team, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (repo_id) DO UPDATE SET team = excluded.team, \
             updated_at = excluded.updated_at WHERE team <> excluded.team",
        )
        .and_then(|mut stmt| stmt.execute(rusqlite::params![repo_id, team.as_str(), at.0]))
        .map_err(&db)?;
    }
    tx.commit().map_err(db)
}

/// Every repository's recorded team, sorted by repository.
pub(crate) fn recorded_teams(
    conn: &Connection,
    path: &str,
) -> Result<Vec<(RepoName, Team)>, StoreError> {
    let db = db_error(path, "reading the repositories' teams");
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.name, t.team FROM repository_teams t JOIN repositories r ON r.id = t.repo_id \
             ORDER BY r.name",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([]).map_err(&db)?;
    let mut out = Vec::new();
    let corrupt = |what: &str| StoreError::Corrupt {
        path: path.to_owned(),
        table: "repository_teams",
        what: what.to_owned(),
    };
    while let Some(row) = rows.next().map_err(&db)? {
        let name: String = row.get(0).map_err(&db)?;
        let team: String = row.get(1).map_err(&db)?;
        out.push((
            RepoName::parse(&name).map_err(|_| corrupt("repository name"))?,
            Team::parse(&team).map_err(|_| corrupt("team"))?,
        ));
    }
    Ok(out)
}

/// Every repository with a pushed item, sorted.
pub(crate) fn pushed_repositories(
    conn: &Connection,
    path: &str,
) -> Result<Vec<RepoName>, StoreError> {
    let db = db_error(path, "listing pushed repositories");
    let mut stmt = conn
        .prepare_cached(
            "SELECT name FROM repositories WHERE id IN (SELECT DISTINCT repo_id FROM push_ids) \
             ORDER BY name",
        )
        .map_err(&db)?;
    let mut rows = stmt.query([]).map_err(&db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&db)? {
        let name: String = row.get(0).map_err(&db)?;
        out.push(RepoName::parse(&name).map_err(|_| StoreError::Corrupt {
            path: path.to_owned(),
            table: "repositories",
            what: "repository name".to_owned(),
        })?);
    }
    Ok(out)
}

/// Whether a stored deployment row equals the values about to be written.
pub(in crate::store) fn same_deployment(
    stored: &StoredDeployment,
    environment: &str,
    sha: &crate::domain::CommitSha,
    created_at: i64,
    outcome: DeploymentOutcome,
) -> bool {
    let (stored_environment, stored_sha, stored_created_at, stored_outcome, stored_at) = stored;
    stored_environment == environment
        && sha_from_blob(stored_sha).as_ref() == Some(sha)
        && *stored_created_at == created_at
        && outcome_from_columns(stored_outcome, *stored_at) == Some(outcome)
}

pub(in crate::store) fn check_cursor(
    path: &str,
    endpoint: &str,
    opaque: Option<&str>,
) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidInput {
        path: path.to_owned(),
        what: "cursor",
        reason,
    };
    if endpoint.is_empty() || endpoint.len() > MAX_CURSOR_ENDPOINT_BYTES {
        return Err(invalid(format!(
            "endpoint name of {} bytes (1 to {MAX_CURSOR_ENDPOINT_BYTES} allowed)",
            endpoint.len()
        )));
    }
    if let Some(opaque) = opaque.filter(|o| o.len() > MAX_CURSOR_OPAQUE_BYTES) {
        return Err(invalid(format!(
            "value of {} bytes for endpoint {:?} (at most {MAX_CURSOR_OPAQUE_BYTES} allowed)",
            opaque.len(),
            cut_to_bytes(endpoint, MAX_QUOTED_INPUT)
        )));
    }
    Ok(())
}

pub(crate) fn record_sync(
    conn: &mut Connection,
    path: &str,
    repository: &RepoName,
    source: &str,
    finished_at: Timestamp,
    outcome: &SyncOutcome,
    history_since: Option<Timestamp>,
) -> Result<(), StoreError> {
    let (success_at, error) = sync_columns(path, source, finished_at, outcome)?;
    let db = db_error(path, "recording a sync");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&db)?;
    let repo_id = ensure_repo(&tx, path, repository)?;
    tx.prepare_cached(
        "INSERT INTO sync_status \
         (repo_id, source, last_attempt_at, last_success_at, last_error, history_since) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (repo_id, source) DO UPDATE SET \
         last_attempt_at = excluded.last_attempt_at, \
         last_success_at = coalesce(excluded.last_success_at, last_success_at), \
         last_error = excluded.last_error, \
         history_since = coalesce(history_since, excluded.history_since)",
    )
    .and_then(|mut stmt| {
        stmt.execute((
            repo_id,
            source,
            finished_at.0,
            success_at,
            error,
            history_since.map(|t| t.0),
        ))
    })
    .map_err(&db)?;
    tx.commit().map_err(db)
}

/// Checks a sync's source name and gives its `(last_success_at, last_error)`
/// columns (the error cut to [`MAX_SYNC_ERROR_BYTES`]).
pub(in crate::store) fn sync_columns<'a>(
    path: &str,
    source: &str,
    finished_at: Timestamp,
    outcome: &'a SyncOutcome,
) -> Result<(Option<i64>, Option<&'a str>), StoreError> {
    if source.is_empty()
        || source.len() > MAX_SYNC_SOURCE_BYTES
        || source.chars().any(char::is_control)
    {
        return Err(StoreError::InvalidInput {
            path: path.to_owned(),
            what: "sync source name",
            reason: format!(
                "expected 1 to {MAX_SYNC_SOURCE_BYTES} bytes without control characters, got {:?}",
                cut_to_bytes(source, MAX_SYNC_SOURCE_BYTES)
            ),
        });
    }
    Ok(match outcome {
        SyncOutcome::Succeeded => (Some(finished_at.0), None),
        SyncOutcome::Failed(text) => (None, Some(cut_to_bytes(text, MAX_SYNC_ERROR_BYTES))),
    })
}
