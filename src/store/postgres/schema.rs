//! The PostgreSQL schema and its migrations: the same tables, identities and
//! checks as the SQLite schema at its version 6 (see `sqlite/schema.rs` for what
//! each table means), in PostgreSQL's types. Its versions are its own: version 1
//! here is SQLite's version 6.
//!
//! `dora_schema` holds the application's name and the version. Opening a store
//! applies the missing steps in order in one transaction, under an advisory lock
//! so that two processes opening one new database do not both migrate it; a
//! database at a newer version is refused, and so is one that already has tables
//! of another application. Steps are never edited once released.
//!
//! Layout: shas are 20-byte `bytea`, timestamps `bigint` seconds, lists of shas
//! packed `bytea`, labels JSON text (the SQLite store's encodings, so both share
//! one codec). Every text column is `COLLATE "C"`: sorted by bytes, as SQLite
//! sorts, whatever the database's default collation.

use postgres::Client;

/// The application name in `dora_schema`.
const APPLICATION: &str = "dora-collector";

/// The advisory lock key that serializes migrations ("DORA" in ASCII).
const MIGRATION_LOCK: i64 = 0x444F_5241;

/// The migration steps, in order; step `i` takes the schema from version `i` to
/// `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1: the SQLite schema's version 6.
    r#"
    CREATE TABLE repositories (
        id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE
    );

    CREATE TABLE deployments (
        repo_id     bigint NOT NULL REFERENCES repositories (id),
        source      text COLLATE "C" NOT NULL
                    CHECK (source IN ('github_deployments', 'github_workflow_runs', 'push',
                                      'argocd', 'jenkins',
                                      'gitlab_deployments', 'gitlab_pipelines')),
        id          bigint NOT NULL,
        environment text COLLATE "C" NOT NULL,
        sha         bytea NOT NULL CHECK (length(sha) = 20),
        created_at  bigint NOT NULL,
        outcome     text COLLATE "C" NOT NULL
                    CHECK (outcome IN ('pending', 'succeeded', 'failed')),
        outcome_at  bigint CHECK ((outcome = 'pending') = (outcome_at IS NULL)),
        PRIMARY KEY (repo_id, source, id)
    );
    CREATE INDEX deployments_pending ON deployments (repo_id) WHERE outcome = 'pending';
    CREATE INDEX deployments_succeeded ON deployments (repo_id, environment, outcome_at)
        WHERE outcome = 'succeeded';

    CREATE TABLE commits (
        repo_id     bigint NOT NULL REFERENCES repositories (id),
        sha         bytea NOT NULL CHECK (length(sha) = 20),
        author_date bigint NOT NULL,
        is_revert   boolean NOT NULL,
        parents     bytea NOT NULL CHECK (length(parents) % 20 = 0),
        subject     text COLLATE "C" NOT NULL,
        PRIMARY KEY (repo_id, sha)
    );

    CREATE TABLE compares (
        repo_id bigint NOT NULL REFERENCES repositories (id),
        base    bytea NOT NULL CHECK (length(base) = 20),
        head    bytea NOT NULL CHECK (length(head) = 20),
        status  text COLLATE "C" NOT NULL
                CHECK (status IN ('ahead', 'behind', 'diverged', 'identical')),
        commits bytea NOT NULL CHECK (length(commits) % 20 = 0),
        PRIMARY KEY (repo_id, base, head)
    );

    CREATE TABLE incidents (
        repo_id    bigint NOT NULL REFERENCES repositories (id),
        source     text COLLATE "C" NOT NULL
                   CHECK (source IN ('github_issues', 'push', 'gitlab_issues')),
        number     bigint NOT NULL,
        created_at bigint NOT NULL,
        closed_at  bigint,
        labels     text COLLATE "C" NOT NULL,
        root_cause text COLLATE "C",
        PRIMARY KEY (repo_id, source, number)
    );

    CREATE TABLE pull_requests (
        repo_id          bigint NOT NULL REFERENCES repositories (id),
        number           bigint NOT NULL,
        merged_at        bigint,
        merge_commit_sha bytea CHECK (merge_commit_sha IS NULL OR length(merge_commit_sha) = 20),
        labels           text COLLATE "C" NOT NULL,
        commits          bytea NOT NULL CHECK (length(commits) % 20 = 0),
        first_commit_at  bigint,
        created_at       bigint,
        first_review_at  bigint,
        PRIMARY KEY (repo_id, number)
    );

    CREATE TABLE cursors (
        repo_id    bigint NOT NULL REFERENCES repositories (id),
        endpoint   text COLLATE "C" NOT NULL,
        since      bigint,
        opaque     text COLLATE "C",
        updated_at bigint NOT NULL,
        PRIMARY KEY (repo_id, endpoint)
    );

    CREATE TABLE sync_status (
        repo_id         bigint NOT NULL REFERENCES repositories (id),
        source          text COLLATE "C" NOT NULL,
        last_attempt_at bigint NOT NULL,
        last_success_at bigint,
        last_error      text COLLATE "C",
        PRIMARY KEY (repo_id, source)
    );

    CREATE TABLE push_ids (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        client      text COLLATE "C" NOT NULL,
        kind        text COLLATE "C" NOT NULL CHECK (kind IN ('deployment', 'incident')),
        external_id text COLLATE "C" NOT NULL,
        repo_id     bigint REFERENCES repositories (id),
        team        text COLLATE "C",
        digest      bytea NOT NULL CHECK (length(digest) = 32),
        base_digest bytea NOT NULL CHECK (length(base_digest) = 32),
        CHECK ((repo_id IS NULL) <> (team IS NULL)),
        UNIQUE (client, kind, external_id)
    );
    CREATE INDEX push_ids_repository ON push_ids (repo_id);

    CREATE TABLE scoped_incidents (
        source       text COLLATE "C" NOT NULL CHECK (source IN ('push', 'pagerduty')),
        number       bigint NOT NULL,
        team         text COLLATE "C",
        repositories text COLLATE "C"
                     CHECK (repositories IS NULL OR json_typeof(repositories::json) = 'array'),
        created_at   bigint NOT NULL,
        closed_at    bigint,
        root_cause   text COLLATE "C",
        CHECK ((team IS NULL) <> (repositories IS NULL)),
        PRIMARY KEY (source, number)
    );

    CREATE TABLE production_environments (
        repo_id     bigint NOT NULL REFERENCES repositories (id),
        environment text COLLATE "C" NOT NULL,
        PRIMARY KEY (repo_id, environment)
    );
    "#,
    // Version 2: the SQLite schema's versions 7 and 8: the team a source gave
    // each repository it synced (a discovered repository's team comes from
    // GitHub), and how far back each repository's history is complete (NULL for
    // repositories first synced before this version, or never synced).
    r#"
    CREATE TABLE repository_teams (
        repo_id    bigint PRIMARY KEY REFERENCES repositories (id),
        team       text COLLATE "C" NOT NULL CHECK (length(team) BETWEEN 1 AND 255),
        updated_at bigint NOT NULL
    );

    ALTER TABLE sync_status ADD COLUMN history_since bigint;
    "#,
    // Version 3: the leases of replicas sharing the database (no SQLite
    // counterpart: one process opens a SQLite file). `expires_at` is in
    // milliseconds of the server's clock.
    r#"
    CREATE TABLE leases (
        name       text COLLATE "C" PRIMARY KEY,
        holder     text COLLATE "C" NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE INDEX leases_holder ON leases (holder);
    "#,
    // Version 4: the SQLite schema's version 9: since when each repository's
    // first reviews are complete for the lead-time stages, filled for a
    // database kept by an earlier version from its first-review cursors (the
    // latest `updated_at − within`; a hashed name counts as `within = 0`).
    r#"
    CREATE TABLE review_horizons (
        repo_id bigint PRIMARY KEY REFERENCES repositories (id),
        since   bigint NOT NULL
    );
    INSERT INTO review_horizons (repo_id, since)
        SELECT repo_id, max(updated_at - coalesce(
            substring(endpoint FROM '&within=([0-9]+)[ds]$')::bigint
                * CASE WHEN endpoint LIKE '%d' THEN 86400 ELSE 1 END,
            0))
        FROM cursors
        WHERE endpoint LIKE 'pull\_reviews?%' OR endpoint LIKE 'pull\_reviews#%'
        GROUP BY repo_id;
    "#,
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What [`migrate`] found.
#[derive(Debug)]
pub(super) enum MigrateError {
    /// The database's version is newer than [`SCHEMA_VERSION`].
    Future { found: i64 },
    /// The database has tables, none of them ours.
    Foreign,
    /// Reading the version failed.
    Read(postgres::Error),
    /// Applying step `version` failed.
    Step {
        version: i64,
        cause: postgres::Error,
    },
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction.
pub(super) fn migrate(client: &mut Client) -> Result<(), MigrateError> {
    let mut tx = client.transaction().map_err(MigrateError::Read)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(MigrateError::Read)?;
    let ours: bool = tx
        .query_one("SELECT to_regclass('dora_schema') IS NOT NULL", &[])
        .and_then(|row| row.try_get(0))
        .map_err(MigrateError::Read)?;
    let version: i64 = if ours {
        let row = tx
            .query_opt(
                "SELECT version FROM dora_schema WHERE application = $1",
                &[&APPLICATION],
            )
            .map_err(MigrateError::Read)?;
        match row {
            Some(row) => row.try_get(0).map_err(MigrateError::Read)?,
            None => return Err(MigrateError::Foreign),
        }
    } else {
        let tables: i64 = tx
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .and_then(|row| row.try_get(0))
            .map_err(MigrateError::Read)?;
        if tables != 0 {
            return Err(MigrateError::Foreign);
        }
        tx.batch_execute(
            "CREATE TABLE dora_schema (application text NOT NULL PRIMARY KEY, \
             version bigint NOT NULL)",
        )
        .map_err(|cause| MigrateError::Step { version: 1, cause })?;
        tx.execute(
            "INSERT INTO dora_schema (application, version) VALUES ($1, 0)",
            &[&APPLICATION],
        )
        .map_err(|cause| MigrateError::Step { version: 1, cause })?;
        0
    };
    if version > SCHEMA_VERSION {
        return Err(MigrateError::Future { found: version });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let target = index as i64 + 1;
        tx.batch_execute(sql).map_err(|cause| MigrateError::Step {
            version: target,
            cause,
        })?;
    }
    tx.execute(
        "UPDATE dora_schema SET version = $2 WHERE application = $1",
        &[&APPLICATION, &SCHEMA_VERSION],
    )
    .map_err(|cause| MigrateError::Step {
        version: SCHEMA_VERSION,
        cause,
    })?;
    tx.commit().map_err(|cause| MigrateError::Step {
        version: SCHEMA_VERSION,
        cause,
    })
}
