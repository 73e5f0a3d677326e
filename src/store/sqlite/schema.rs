//! The SQLite schema as a list of migration steps, and the code that applies them.
//!
//! `PRAGMA user_version` is the number of steps applied. Opening a store applies the
//! missing steps in order, all in one transaction with the version bump, so a crash
//! mid-migration leaves the old version. A file with a higher version than
//! [`SCHEMA_VERSION`] is refused rather than misread. Steps are never edited once
//! released: a schema change is a new step at the end.
//!
//! Layout choices (for the design scale of 10 million commits):
//! - repositories are interned: every other table refers to `repositories.id`;
//! - shas are 20-byte BLOBs, timestamps INTEGER seconds since the epoch;
//! - lists of shas (commit parents, compare and pull-request commits) are packed
//!   BLOBs of 20 bytes per sha: one row read per commit, no join;
//! - labels are JSON arrays in TEXT: a handful per issue, only read whole;
//! - event tables are `WITHOUT ROWID`, clustered on their identity, so a
//!   repository's commits are read in one range scan in sha order;
//! - `STRICT` tables and `CHECK`s keep a bug from storing a malformed value.

use rusqlite::Connection;

/// Tells a dora-collector store from any other SQLite file ("DORA" in ASCII).
pub(crate) const APPLICATION_ID: i64 = 0x444F_5241;

/// The migration steps, in order; step `i` takes the schema from version `i` to
/// `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // Version 1: the initial schema.
    r#"
    CREATE TABLE repositories (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    ) STRICT;

    CREATE TABLE deployments (
        repo_id     INTEGER NOT NULL REFERENCES repositories (id),
        source      TEXT NOT NULL
                    CHECK (source IN ('github_deployments', 'github_workflow_runs')),
        id          INTEGER NOT NULL,
        environment TEXT NOT NULL,
        sha         BLOB NOT NULL CHECK (length(sha) = 20),
        created_at  INTEGER NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed')),
        outcome_at  INTEGER CHECK ((outcome = 'pending') = (outcome_at IS NULL)),
        PRIMARY KEY (repo_id, source, id)
    ) STRICT, WITHOUT ROWID;

    -- pending_deployments
    CREATE INDEX deployments_pending ON deployments (repo_id)
        WHERE outcome = 'pending';
    -- latest_successful_deployment, previous_successful_deployment
    CREATE INDEX deployments_succeeded ON deployments (repo_id, environment, outcome_at)
        WHERE outcome = 'succeeded';

    CREATE TABLE commits (
        repo_id     INTEGER NOT NULL REFERENCES repositories (id),
        sha         BLOB NOT NULL CHECK (length(sha) = 20),
        author_date INTEGER NOT NULL,
        is_revert   INTEGER NOT NULL CHECK (is_revert IN (0, 1)),
        parents     BLOB NOT NULL CHECK (length(parents) % 20 = 0),
        subject     TEXT NOT NULL,
        PRIMARY KEY (repo_id, sha)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE compares (
        repo_id INTEGER NOT NULL REFERENCES repositories (id),
        base    BLOB NOT NULL CHECK (length(base) = 20),
        head    BLOB NOT NULL CHECK (length(head) = 20),
        status  TEXT NOT NULL CHECK (status IN ('ahead', 'behind', 'diverged', 'identical')),
        commits BLOB NOT NULL CHECK (length(commits) % 20 = 0),
        PRIMARY KEY (repo_id, base, head)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE incidents (
        repo_id    INTEGER NOT NULL REFERENCES repositories (id),
        number     INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        closed_at  INTEGER,
        labels     TEXT NOT NULL,
        root_cause TEXT,
        PRIMARY KEY (repo_id, number)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE pull_requests (
        repo_id          INTEGER NOT NULL REFERENCES repositories (id),
        number           INTEGER NOT NULL,
        merged_at        INTEGER,
        merge_commit_sha BLOB CHECK (merge_commit_sha IS NULL OR length(merge_commit_sha) = 20),
        labels           TEXT NOT NULL,
        commits          BLOB NOT NULL CHECK (length(commits) % 20 = 0),
        first_commit_at  INTEGER,
        PRIMARY KEY (repo_id, number)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE cursors (
        repo_id    INTEGER NOT NULL REFERENCES repositories (id),
        endpoint   TEXT NOT NULL,
        since      INTEGER,
        opaque     TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (repo_id, endpoint)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE sync_status (
        repo_id         INTEGER NOT NULL REFERENCES repositories (id),
        source          TEXT NOT NULL,
        last_attempt_at INTEGER NOT NULL,
        last_success_at INTEGER,
        last_error      TEXT,
        PRIMARY KEY (repo_id, source)
    ) STRICT, WITHOUT ROWID;
    "#,
    // Version 2: the push API. Deployments may come from `push`; incidents carry
    // their source in their identity (pushed incidents are numbered by the store
    // and must not meet GitHub's issue numbers); `push_ids` gives each client's
    // own id of a pushed item the number its event is stored under, with digests
    // of what was pushed (idempotent retries, conflicting reuse). SQLite cannot
    // change a CHECK or a primary key in place, so both tables are rebuilt.
    r#"
    CREATE TABLE deployments_v2 (
        repo_id     INTEGER NOT NULL REFERENCES repositories (id),
        source      TEXT NOT NULL
                    CHECK (source IN ('github_deployments', 'github_workflow_runs', 'push')),
        id          INTEGER NOT NULL,
        environment TEXT NOT NULL,
        sha         BLOB NOT NULL CHECK (length(sha) = 20),
        created_at  INTEGER NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed')),
        outcome_at  INTEGER CHECK ((outcome = 'pending') = (outcome_at IS NULL)),
        PRIMARY KEY (repo_id, source, id)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO deployments_v2
        SELECT repo_id, source, id, environment, sha, created_at, outcome, outcome_at
        FROM deployments;
    DROP TABLE deployments;
    ALTER TABLE deployments_v2 RENAME TO deployments;
    CREATE INDEX deployments_pending ON deployments (repo_id)
        WHERE outcome = 'pending';
    CREATE INDEX deployments_succeeded ON deployments (repo_id, environment, outcome_at)
        WHERE outcome = 'succeeded';

    CREATE TABLE incidents_v2 (
        repo_id    INTEGER NOT NULL REFERENCES repositories (id),
        source     TEXT NOT NULL CHECK (source IN ('github_issues', 'push')),
        number     INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        closed_at  INTEGER,
        labels     TEXT NOT NULL,
        root_cause TEXT,
        PRIMARY KEY (repo_id, source, number)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO incidents_v2
        SELECT repo_id, 'github_issues', number, created_at, closed_at, labels, root_cause
        FROM incidents;
    DROP TABLE incidents;
    ALTER TABLE incidents_v2 RENAME TO incidents;

    CREATE TABLE push_ids (
        id          INTEGER PRIMARY KEY,
        client      TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('deployment', 'incident')),
        external_id TEXT NOT NULL,
        repo_id     INTEGER NOT NULL REFERENCES repositories (id),
        digest      BLOB NOT NULL CHECK (length(digest) = 32),
        base_digest BLOB NOT NULL CHECK (length(base_digest) = 32),
        UNIQUE (client, kind, external_id)
    ) STRICT;
    CREATE INDEX push_ids_repository ON push_ids (repo_id);
    "#,
    // Version 3: incidents of a team (pushed with `team` instead of
    // `repository`). A pushed item's row in `push_ids` names its repository or
    // its team, never both; the table is rebuilt because SQLite cannot drop a
    // NOT NULL in place.
    r#"
    CREATE TABLE team_incidents (
        team       TEXT NOT NULL,
        source     TEXT NOT NULL CHECK (source IN ('push')),
        number     INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        closed_at  INTEGER,
        root_cause TEXT,
        PRIMARY KEY (team, source, number)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE push_ids_v3 (
        id          INTEGER PRIMARY KEY,
        client      TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('deployment', 'incident')),
        external_id TEXT NOT NULL,
        repo_id     INTEGER REFERENCES repositories (id),
        team        TEXT,
        digest      BLOB NOT NULL CHECK (length(digest) = 32),
        base_digest BLOB NOT NULL CHECK (length(base_digest) = 32),
        CHECK ((repo_id IS NULL) <> (team IS NULL)),
        UNIQUE (client, kind, external_id)
    ) STRICT;
    INSERT INTO push_ids_v3
        (id, client, kind, external_id, repo_id, team, digest, base_digest)
        SELECT id, client, kind, external_id, repo_id, NULL, digest, base_digest
        FROM push_ids;
    DROP TABLE push_ids;
    ALTER TABLE push_ids_v3 RENAME TO push_ids;
    CREATE INDEX push_ids_repository ON push_ids (repo_id);
    "#,
    // Version 4: incidents of a team or of a set of repositories (a PagerDuty
    // service mapped to a team or to repositories) in one table, identified by
    // source and number (pushed incidents' numbers are `push_ids` ids, PagerDuty's
    // its account-wide `incident_number`); `repositories` is a JSON array of
    // names. The team incidents of version 3 move over unchanged.
    r#"
    CREATE TABLE scoped_incidents (
        source       TEXT NOT NULL CHECK (source IN ('push', 'pagerduty')),
        number       INTEGER NOT NULL,
        team         TEXT,
        repositories TEXT CHECK (repositories IS NULL OR json_valid(repositories)),
        created_at   INTEGER NOT NULL,
        closed_at    INTEGER,
        root_cause   TEXT,
        CHECK ((team IS NULL) <> (repositories IS NULL)),
        PRIMARY KEY (source, number)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO scoped_incidents
        (source, number, team, repositories, created_at, closed_at, root_cause)
        SELECT source, number, team, NULL, created_at, closed_at, root_cause
        FROM team_incidents;
    DROP TABLE team_incidents;
    "#,
    // Version 5: deployments read from Argo CD (an application's sync history
    // and last operation), from Jenkins (a job's builds), and GitLab: deployments
    // from GitLab's Deployments API or its pipelines, incidents from GitLab
    // issues; `production_environments` keeps, per repository, the environments
    // its source reads as production (GitLab's tier `production`), replaced
    // whole by each batch that carries them. The CHECKs are rebuilt as in
    // version 2.
    r#"
    CREATE TABLE deployments_v5 (
        repo_id     INTEGER NOT NULL REFERENCES repositories (id),
        source      TEXT NOT NULL
                    CHECK (source IN ('github_deployments', 'github_workflow_runs', 'push',
                                      'argocd', 'jenkins',
                                      'gitlab_deployments', 'gitlab_pipelines')),
        id          INTEGER NOT NULL,
        environment TEXT NOT NULL,
        sha         BLOB NOT NULL CHECK (length(sha) = 20),
        created_at  INTEGER NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed')),
        outcome_at  INTEGER CHECK ((outcome = 'pending') = (outcome_at IS NULL)),
        PRIMARY KEY (repo_id, source, id)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO deployments_v5
        SELECT repo_id, source, id, environment, sha, created_at, outcome, outcome_at
        FROM deployments;
    DROP TABLE deployments;
    ALTER TABLE deployments_v5 RENAME TO deployments;
    CREATE INDEX deployments_pending ON deployments (repo_id)
        WHERE outcome = 'pending';
    CREATE INDEX deployments_succeeded ON deployments (repo_id, environment, outcome_at)
        WHERE outcome = 'succeeded';

    CREATE TABLE incidents_v5 (
        repo_id    INTEGER NOT NULL REFERENCES repositories (id),
        source     TEXT NOT NULL CHECK (source IN ('github_issues', 'push', 'gitlab_issues')),
        number     INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        closed_at  INTEGER,
        labels     TEXT NOT NULL,
        root_cause TEXT,
        PRIMARY KEY (repo_id, source, number)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO incidents_v5
        SELECT repo_id, source, number, created_at, closed_at, labels, root_cause
        FROM incidents;
    DROP TABLE incidents;
    ALTER TABLE incidents_v5 RENAME TO incidents;

    CREATE TABLE production_environments (
        repo_id     INTEGER NOT NULL REFERENCES repositories (id),
        environment TEXT NOT NULL,
        PRIMARY KEY (repo_id, environment)
    ) STRICT, WITHOUT ROWID;
    "#,
    // Version 6: the times of a pull request's lead-time stages (issue 17):
    // when it was opened and when its first review was submitted (NULL when
    // unknown or none). Rows kept before have neither, and a merged pull request
    // already listed is not read again: the pull-request listing's cursors
    // (`pulls`, `pulls?…`, `pulls#…`) go, so the next sync lists the lookback's
    // merged pull requests again as a first sync does, with those times.
    r#"
    ALTER TABLE pull_requests ADD COLUMN created_at INTEGER;
    ALTER TABLE pull_requests ADD COLUMN first_review_at INTEGER;
    DELETE FROM cursors
        WHERE endpoint = 'pulls' OR endpoint LIKE 'pulls?%' OR endpoint LIKE 'pulls#%';
    "#,
    // Version 7: the team a source gave each repository it synced (a discovered
    // repository's team comes from GitHub: its topics or its teams), so that a
    // report made from the store alone, after the repository left the scope too,
    // names it.
    r#"
    CREATE TABLE repository_teams (
        repo_id    INTEGER PRIMARY KEY REFERENCES repositories (id),
        team       TEXT NOT NULL CHECK (length(team) BETWEEN 1 AND 255),
        updated_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // Version 8: how far back each repository's history is complete: the start
    // of the lookback of its first successful sync (NULL for repositories first
    // synced before this version, or never synced).
    r#"
    ALTER TABLE sync_status ADD COLUMN history_since INTEGER;
    "#,
    // Version 9: since when each repository's pull requests' first reviews are
    // complete for the lead-time stages (`docs/computation.md` § Lead-time
    // stages): GitHub reads them for the changes deployed within the longest
    // window from its first sync on, so a window starting before that has
    // `pickup` and `review` from part of its changes. Written by the source
    // (`SyncBatch::reviews_since`). A store kept by an earlier version gets, per
    // repository with a first-review cursor (`pull_reviews?…&within=90d`), the
    // latest `updated_at − within` of those cursors: the reviews were complete
    // from at most that (a hashed name, whose window is unknown, counts as
    // `within = 0`: later still, never too early).
    r#"
    CREATE TABLE review_horizons (
        repo_id INTEGER PRIMARY KEY REFERENCES repositories (id),
        since   INTEGER NOT NULL
    ) STRICT;
    INSERT INTO review_horizons (repo_id, since)
        SELECT repo_id, max(updated_at - CASE
            WHEN endpoint LIKE 'pull\_reviews?%&within=%' ESCAPE '\' THEN
                CAST(rtrim(substr(endpoint, instr(endpoint, '&within=') + 8), 'ds') AS INTEGER)
                * CASE WHEN endpoint LIKE '%d' THEN 86400 ELSE 1 END
            ELSE 0 END)
        FROM cursors
        WHERE endpoint LIKE 'pull\_reviews?%' ESCAPE '\'
           OR endpoint LIKE 'pull\_reviews#%' ESCAPE '\'
        GROUP BY repo_id;
    "#,
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What [`migrate`] found and did.
#[derive(Debug)]
pub(crate) enum MigrateError {
    /// The file's version is newer than [`SCHEMA_VERSION`].
    Future { found: i64 },
    /// The file belongs to another application.
    Foreign { found: i64 },
    /// Reading the version failed (not a database, unreadable, ...).
    Read(rusqlite::Error),
    /// Applying step `version` failed.
    Step {
        version: i64,
        cause: rusqlite::Error,
    },
}

/// Brings the schema to [`SCHEMA_VERSION`] in one immediate transaction (so two
/// processes opening a new file at once do not both migrate it).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(MigrateError::Read)?;
    let found: i64 = tx
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(MigrateError::Read)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(MigrateError::Read)?;
    if found != APPLICATION_ID {
        // A file without our id is only acceptable when it is empty (new).
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(MigrateError::Read)?;
        if found != 0 || version != 0 || objects != 0 {
            return Err(MigrateError::Foreign { found });
        }
    }
    if version > SCHEMA_VERSION {
        return Err(MigrateError::Future { found: version });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let step = |version: i64, cause| MigrateError::Step { version, cause };
    if found == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| step(1, e))?;
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let target = index as i64 + 1;
        tx.execute_batch(sql).map_err(|e| step(target, e))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(|e| step(SCHEMA_VERSION, e))?;
    tx.commit().map_err(|e| step(SCHEMA_VERSION, e))
}
