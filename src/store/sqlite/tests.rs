//! Tests that need SQL (file headers, pragmas, injected failures, query plans); the
//! behaviour through the trait is tested in `tests/store/sqlite.rs`.

use super::schema::APPLICATION_ID;
use super::*;
use crate::domain::{DeploymentOutcome, Incident};
use crate::store::{CursorKey, PushItem, PushRequest, PushVerdict, SyncBatch};

fn repo() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn sha(n: u8) -> CommitSha {
    CommitSha::from_bytes([n; 20])
}

fn batch(first: u8, count: u8, cursor_since: i64) -> SyncBatch {
    let mut batch = SyncBatch::new(repo());
    for n in first..first + count {
        batch.commits.push(CommitRecord::new(
            sha(n),
            vec![sha(n.wrapping_sub(1))],
            Timestamp(i64::from(n) * 100),
            "Add a thing",
        ));
        batch.incidents.push(Incident {
            source: crate::domain::IncidentSource::GithubIssues,
            repository: repo(),
            number: u64::from(n),
            created_at: Timestamp(i64::from(n)),
            closed_at: None,
            labels: vec!["incident".to_owned()],
            root_cause: None,
        });
    }
    batch.deployments.push(Deployment {
        source: DeploymentSource::GithubDeployments,
        repository: repo(),
        id: u64::from(first),
        environment: Environment::parse("production").unwrap(),
        sha: sha(first),
        created_at: Timestamp(1),
        outcome: DeploymentOutcome::Pending,
    });
    batch.cursors.push((
        CursorKey::new(repo(), "deployments"),
        Cursor {
            since: Some(Timestamp(cursor_since)),
            opaque: Some("\"etag\"".to_owned()),
            updated_at: Timestamp(cursor_since),
        },
    ));
    batch
}

fn pragma_i64(store: &SqliteStore, name: &str) -> i64 {
    store
        .conn
        .pragma_query_value(None, name, |row| row.get(0))
        .unwrap()
}

#[test]
fn a_new_file_gets_the_schema_and_the_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/dora.db");
    let store = SqliteStore::open(&path).unwrap();
    assert!(path.exists());
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    assert_eq!(pragma_i64(&store, "application_id"), APPLICATION_ID);
    assert_eq!(pragma_i64(&store, "foreign_keys"), 1);
    assert_eq!(pragma_i64(&store, "synchronous"), 1, "NORMAL");
    assert_eq!(pragma_i64(&store, "cache_size"), -CACHE_SIZE_KIB);
    let mode: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn an_empty_file_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.db");
    std::fs::write(&path, b"").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    assert_eq!(store.counts().unwrap(), StoreCounts::default());
}

#[test]
fn a_file_from_a_newer_version_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.db");
    drop(SqliteStore::open(&path).unwrap());
    let future = SCHEMA_VERSION + 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", future)
        .unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(error, StoreError::FutureVersion { found, supported, .. }
            if found == future && supported == SCHEMA_VERSION),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("schema version {future}")),
        "{message}"
    );
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, future);
}

#[test]
fn files_of_other_applications_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("other.db");
    Connection::open(&sqlite)
        .unwrap()
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    let error = SqliteStore::open(&sqlite).unwrap_err();
    assert!(
        matches!(error, StoreError::ForeignFile { found: 0, .. }),
        "{error:?}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "x".repeat(4096)).unwrap();
    let error = SqliteStore::open(&text).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("notes.txt"), "{error}");
}

#[test]
fn a_failure_at_the_cursor_step_rolls_back_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("dora.db")).unwrap();
    store.apply(&batch(1, 3, 10)).unwrap();
    let before = store.read_repository(&repo()).unwrap();
    // The cursor is the last thing a batch writes: fail exactly there.
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_cursor BEFORE UPDATE ON cursors \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let error = store.apply(&batch(4, 3, 20)).unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert!(error.to_string().contains("advancing a cursor"), "{error}");
    assert_eq!(store.read_repository(&repo()).unwrap(), before);
    store
        .conn
        .execute_batch("DROP TRIGGER fail_cursor")
        .unwrap();
    // The store is usable after the failure, and the batch applies in full.
    let stats = store.apply(&batch(4, 3, 20)).unwrap();
    assert_eq!(stats.commits.inserted, 3);
    assert_eq!(stats.cursors.updated, 1);
}

#[test]
fn a_failure_midway_through_the_events_leaves_no_trace() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    store.apply(&batch(1, 3, 10)).unwrap();
    let before = store.read_repository(&repo()).unwrap();
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_incident BEFORE INSERT ON incidents \
             WHEN NEW.number = 6 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    // Commits 4 and 5 and incidents 4 and 5 are written before incident 6 fails.
    assert!(store.apply(&batch(4, 3, 20)).is_err());
    assert_eq!(store.read_repository(&repo()).unwrap(), before);
}

fn plan(store: &SqliteStore, sql: &str) -> String {
    let mut stmt = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let rows = stmt
        .query_map([], |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows.join("; ")
}

#[test]
fn the_source_queries_use_their_indices() {
    let store = SqliteStore::open_in_memory().unwrap();
    let pending = plan(
        &store,
        "SELECT source, id FROM deployments WHERE repo_id = 1 AND outcome = 'pending' \
         ORDER BY source, id",
    );
    assert!(pending.contains("deployments_pending"), "{pending}");
    let latest = plan(
        &store,
        "SELECT id FROM deployments WHERE repo_id = 1 AND environment = 'production' \
         AND outcome = 'succeeded' AND outcome_at < 5 \
         ORDER BY outcome_at DESC, source DESC, id DESC LIMIT 1",
    );
    assert!(latest.contains("deployments_succeeded"), "{latest}");
    let commits = plan(
        &store,
        "SELECT sha, author_date, is_revert, parents FROM commits WHERE repo_id = 1 ORDER BY sha",
    );
    assert!(commits.contains("PRIMARY KEY"), "{commits}");
    assert!(!commits.contains("TEMP B-TREE"), "no sort: {commits}");
}

#[test]
fn a_version_1_store_keeps_its_events_through_the_push_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute_batch(super::schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO repositories (id, name) VALUES (1, 'acme/api');
             INSERT INTO deployments VALUES (1, 'github_deployments', 7, 'production',
                 zeroblob(20), 10, 'succeeded', 20);
             INSERT INTO incidents VALUES (1, 3, 30, NULL, '[\"incident\"]', 'abcdef1');",
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    let batch = store.read_repository(&repo()).unwrap();
    assert_eq!(batch.deployments.len(), 1);
    assert_eq!(batch.deployments[0].id, 7);
    assert_eq!(batch.incidents.len(), 1);
    assert_eq!(
        batch.incidents[0].source,
        crate::domain::IncidentSource::GithubIssues
    );
    assert_eq!(batch.incidents[0].number, 3);
    // A pushed incident with the same number is another incident.
    let mut pushed = batch.incidents[0].clone();
    pushed.source = crate::domain::IncidentSource::Push;
    let mut more = SyncBatch::new(repo());
    more.incidents.push(pushed);
    store.apply(&more).unwrap();
    assert_eq!(store.counts().unwrap().incidents, 2);
}

#[test]
fn a_version_3_store_keeps_its_events_through_the_gitlab_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    {
        let conn = store_file_at_version(&path, 3);
        conn.execute_batch(
            "INSERT INTO repositories (id, name) VALUES (1, 'acme/api');
             INSERT INTO deployments VALUES (1, 'push', 7, 'production',
                 zeroblob(20), 10, 'succeeded', 20);
             INSERT INTO incidents VALUES (1, 'push', 3, 30, NULL, '[]', NULL);",
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    let batch = store.read_repository(&repo()).unwrap();
    assert_eq!(batch.deployments[0].source, DeploymentSource::Push);
    assert_eq!(
        batch.incidents[0].source,
        crate::domain::IncidentSource::Push
    );
    assert_eq!(batch.production_environments, None);
    // GitLab's sources are accepted now.
    let mut gitlab = SyncBatch::new(repo());
    for (id, source) in [
        (1, DeploymentSource::GitlabDeployments),
        (2, DeploymentSource::GitlabPipelines),
    ] {
        gitlab.deployments.push(Deployment {
            id,
            source,
            ..batch.deployments[0].clone()
        });
    }
    gitlab.incidents.push(Incident {
        source: crate::domain::IncidentSource::GitlabIssues,
        ..batch.incidents[0].clone()
    });
    store.apply(&gitlab).unwrap();
    let counts = store.counts().unwrap();
    assert_eq!((counts.deployments, counts.incidents), (3, 2));
}

#[test]
fn production_environments_are_replaced_whole_by_a_batch_that_carries_them() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let env = |name: &str| Environment::parse(name).unwrap();
    let mut declare = |environments: Option<Vec<Environment>>| {
        let mut batch = SyncBatch::new(repo());
        batch.production_environments = environments;
        store.apply(&batch).unwrap();
        store
            .read_repository(&repo())
            .unwrap()
            .production_environments
    };
    assert_eq!(
        declare(Some(vec![env("prod-eu"), env("live"), env("live")])),
        Some(vec![env("live"), env("prod-eu")])
    );
    assert_eq!(
        declare(None),
        Some(vec![env("live"), env("prod-eu")]),
        "a batch without a list keeps it"
    );
    assert_eq!(
        declare(Some(vec![env("prod-us")])),
        Some(vec![env("prod-us")])
    );
    assert_eq!(declare(Some(Vec::new())), None, "an empty list clears it");
}

fn pushed(client: &str, id: &str, digest: u8, base: u8, number: u64) -> PushItem {
    PushItem {
        client: client.to_owned(),
        id: id.to_owned(),
        digest: [digest; 32],
        base_digest: [base; 32],
        event: crate::domain::batch::PushedEvent::Incident(Incident {
            source: crate::domain::IncidentSource::Push,
            repository: repo(),
            number,
            created_at: Timestamp(1),
            closed_at: (digest != base).then_some(Timestamp(2)),
            labels: Vec::new(),
            root_cause: None,
        }),
    }
}

#[test]
fn pushes_are_kept_whole_numbered_per_client_id_and_idempotent() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let request = |items: Vec<PushItem>| PushRequest { items };
    let stored = |inserted, updated, unchanged| PushVerdict::Stored {
        inserted,
        updated,
        unchanged,
    };
    let verdicts = store
        .push(&[
            request(vec![
                pushed("ci", "a", 1, 1, 99),
                pushed("ci", "b", 2, 2, 99),
            ]),
            request(vec![pushed("other", "a", 3, 3, 99)]),
            // A conflict inside the request: the whole request is dropped.
            request(vec![
                pushed("ci", "c", 4, 4, 99),
                pushed("ci", "a", 5, 5, 99),
            ]),
        ])
        .unwrap();
    assert_eq!(
        verdicts,
        [
            stored(2, 0, 0),
            stored(1, 0, 0),
            PushVerdict::Conflict { index: 1 }
        ]
    );
    let numbers: Vec<u64> = store
        .read_repository(&repo())
        .unwrap()
        .incidents
        .iter()
        .map(|i| i.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3], "numbered by the store, `c` not kept");
    // A retry; the one update (resolved); a late retry of the open version;
    // another resolution.
    let verdicts = store
        .push(&[
            request(vec![pushed("ci", "a", 1, 1, 0)]),
            request(vec![pushed("ci", "a", 6, 1, 0)]),
            request(vec![pushed("ci", "a", 1, 1, 0)]),
            request(vec![pushed("ci", "a", 7, 1, 0)]),
        ])
        .unwrap();
    assert_eq!(
        verdicts,
        [
            stored(0, 0, 1),
            stored(0, 1, 0),
            stored(0, 0, 1),
            PushVerdict::Conflict { index: 0 }
        ]
    );
    let incidents = store.read_repository(&repo()).unwrap().incidents;
    assert_eq!(incidents[0].closed_at, Some(Timestamp(2)));
    assert_eq!(store.pushed_repositories().unwrap(), [repo()]);
    assert_eq!(store.counts().unwrap().incidents, 3);
}

fn pushed_for_team(client: &str, id: &str, digest: u8, base: u8) -> PushItem {
    PushItem {
        client: client.to_owned(),
        id: id.to_owned(),
        digest: [digest; 32],
        base_digest: [base; 32],
        event: crate::domain::batch::PushedEvent::TeamIncident(crate::domain::ScopedIncident {
            source: crate::domain::IncidentSource::Push,
            scope: crate::domain::IncidentScope::Team(crate::domain::Team::parse("web").unwrap()),
            number: 0,
            created_at: Timestamp(1),
            closed_at: (digest != base).then_some(Timestamp(2)),
            root_cause: None,
        }),
    }
}

#[test]
fn incidents_of_a_team_are_kept_like_those_of_a_repository_and_loaded_for_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("dora.db")).unwrap();
    let request = |items: Vec<PushItem>| PushRequest { items };
    let stored = |inserted, updated, unchanged| PushVerdict::Stored {
        inserted,
        updated,
        unchanged,
    };
    let verdicts = store
        .push(&[
            request(vec![pushed_for_team("ci", "t", 1, 1)]),
            // A retry, then the resolution, then a late retry of the open version.
            request(vec![pushed_for_team("ci", "t", 1, 1)]),
            request(vec![pushed_for_team("ci", "t", 2, 1)]),
            request(vec![pushed_for_team("ci", "t", 1, 1)]),
            // The same id for a repository's incident: other content.
            request(vec![pushed("ci", "t", 3, 3, 0)]),
        ])
        .unwrap();
    assert_eq!(
        verdicts,
        [
            stored(1, 0, 0),
            stored(0, 0, 1),
            stored(0, 1, 0),
            stored(0, 0, 1),
            PushVerdict::Conflict { index: 0 }
        ]
    );
    let counts = store.counts().unwrap();
    assert_eq!((counts.scoped_incidents, counts.incidents), (1, 0));
    assert!(store.pushed_repositories().unwrap().is_empty());

    // The engine gets it: the team's time to restore has its one sample.
    let events = crate::dora::EventsBuilder::collect(|sink| store.load_events(&[], sink)).unwrap();
    let config = crate::dora::EngineConfig::default();
    let snapshot = crate::dora::compute(&events, &config, Timestamp(10));
    let web = snapshot
        .teams
        .iter()
        .find(|t| t.team.as_ref().is_some_and(|t| t.as_str() == "web"))
        .expect("the team's rollup");
    assert_eq!(web.incident_windows[0].time_to_restore.count, 1);
    assert_eq!(web.incident_windows[0].time_to_restore.sum, 1.0);
}

#[test]
fn a_version_2_store_keeps_its_pushed_ids_through_the_team_incidents_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute_batch(super::schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(super::schema::MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
    }
    {
        // Kept by a version-2 build: one pushed incident of acme/api.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO repositories (id, name) VALUES (1, 'acme/api');
             INSERT INTO incidents VALUES (1, 'push', 1, 1, NULL, '[]', NULL);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO push_ids (id, client, kind, external_id, repo_id, digest, base_digest) \
             VALUES (1, 'ci', 'incident', 'a', 1, ?1, ?1)",
            [[1u8; 32].as_slice()],
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    let verdicts = store
        .push(&[
            PushRequest {
                items: vec![pushed("ci", "a", 1, 1, 0)],
            },
            PushRequest {
                items: vec![pushed("ci", "a", 2, 1, 0)],
            },
        ])
        .unwrap();
    assert_eq!(
        verdicts,
        [
            PushVerdict::Stored {
                inserted: 0,
                updated: 0,
                unchanged: 1
            },
            PushVerdict::Stored {
                inserted: 0,
                updated: 1,
                unchanged: 0
            }
        ]
    );
    let incidents = store.read_repository(&repo()).unwrap().incidents;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].closed_at, Some(Timestamp(2)));
}

/// The contract test (`tests/store`) pins down what `recorded_teams` reads;
/// this one what only SQL sees: an unchanged team keeps the time it was first
/// recorded.
#[test]
fn an_unchanged_team_keeps_the_time_it_was_first_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("dora.db")).unwrap();
    let payments = Team::parse("payments").unwrap();
    store
        .record_teams(&[(repo(), payments.clone())], Timestamp(10))
        .unwrap();
    store
        .record_teams(&[(repo(), payments)], Timestamp(30))
        .unwrap();
    let updated: i64 = store
        .conn
        .query_row(
            "SELECT updated_at FROM repository_teams t JOIN repositories r ON r.id = t.repo_id \
             WHERE r.name = 'acme/api'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(updated, 10);
}

#[test]
fn a_version_3_store_keeps_its_team_incidents_through_the_scoped_incidents_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    {
        let conn = store_file_at_version(&path, 3);
        // Kept by a version-3 build: one pushed incident of team web, resolved.
        conn.execute_batch(
            "INSERT INTO team_incidents VALUES ('web', 'push', 7, 100, 160, 'abcdef1');",
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    let events = crate::dora::EventsBuilder::collect(|sink| store.load_events(&[], sink)).unwrap();
    let config = crate::dora::EngineConfig::default();
    let snapshot = crate::dora::compute(&events, &config, Timestamp(1000));
    let web = snapshot
        .teams
        .iter()
        .find(|t| t.team.as_ref().is_some_and(|t| t.as_str() == "web"))
        .expect("the team's rollup");
    assert_eq!(web.incident_windows[0].time_to_restore.count, 1);
    assert_eq!(web.incident_windows[0].time_to_restore.sum, 60.0);

    // A PagerDuty incident of two repositories goes next to it; re-reading it
    // changes nothing, resolving it updates it.
    let scoped = |closed: Option<i64>| crate::domain::ScopedIncident {
        source: crate::domain::IncidentSource::PagerDuty,
        scope: crate::domain::IncidentScope::repositories(vec![
            RepoName::parse("acme/web").unwrap(),
            repo(),
        ])
        .unwrap(),
        number: 7,
        created_at: Timestamp(200),
        closed_at: closed.map(Timestamp),
        root_cause: None,
    };
    let mut batch = SyncBatch::new(RepoName::parse("-pagerduty/pabc123").unwrap());
    batch.scoped_incidents.push(scoped(None));
    assert_eq!(store.apply(&batch).unwrap().incidents.inserted, 1);
    assert_eq!(store.apply(&batch).unwrap().incidents.unchanged, 1);
    batch.scoped_incidents = vec![scoped(Some(260))];
    assert_eq!(store.apply(&batch).unwrap().incidents.updated, 1);
    assert_eq!(store.counts().unwrap().scoped_incidents, 2);
    let events = crate::dora::EventsBuilder::collect(|sink| store.load_events(&[], sink)).unwrap();
    let mut config = config;
    for name in ["acme/api", "acme/web"] {
        config.teams.insert(
            RepoName::parse(name).unwrap(),
            crate::domain::Team::default(),
        );
    }
    let snapshot = crate::dora::compute(&events, &config, Timestamp(1000));
    // Given to the first listed repository by name (no deployment anywhere).
    let api = snapshot
        .incidents
        .iter()
        .find(|i| i.repository == repo())
        .expect("acme/api's incidents");
    assert_eq!(api.windows[0].time_to_restore.count, 1);
}

/// A store file at `path` as a build of schema `version` left it: this
/// application's, the first `version` migration steps applied.
fn store_file_at_version(path: &std::path::Path, version: usize) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    for step in &super::schema::MIGRATIONS[..version] {
        conn.execute_batch(step).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn
}

#[test]
fn a_version_4_store_keeps_its_deployments_through_the_cicd_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    {
        let conn = store_file_at_version(&path, 4);
        // Kept by a version-4 build: one deployment of each source it knew,
        // one of them still pending.
        conn.execute_batch(
            "INSERT INTO repositories (id, name) VALUES (1, 'acme/api');
             INSERT INTO deployments VALUES (1, 'github_deployments', 7, 'production',
                 zeroblob(20), 10, 'succeeded', 20);
             INSERT INTO deployments VALUES (1, 'github_workflow_runs', 8, 'production',
                 zeroblob(20), 30, 'pending', NULL);
             INSERT INTO deployments VALUES (1, 'push', 9, 'production',
                 zeroblob(20), 40, 'failed', 41);",
        )
        .unwrap();
        // A version-4 store refuses the new sources.
        let refused = conn.execute_batch(
            "INSERT INTO deployments VALUES (1, 'argocd', 1, 'production',
                 zeroblob(20), 50, 'succeeded', 51);",
        );
        assert!(refused.is_err());
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    let before = store.read_repository(&repo()).unwrap().deployments;
    let sources: Vec<(DeploymentSource, u64)> = before.iter().map(|d| (d.source, d.id)).collect();
    assert_eq!(
        sources,
        [
            (DeploymentSource::GithubDeployments, 7),
            (DeploymentSource::GithubWorkflowRuns, 8),
            (DeploymentSource::Push, 9),
        ]
    );
    assert_eq!(
        store.pending_deployments(&repo()).unwrap(),
        [(DeploymentSource::GithubWorkflowRuns, 8)],
        "the pending index is rebuilt"
    );
    // The new sources are kept next to the old ones.
    let mut batch = SyncBatch::new(repo());
    for (source, id) in [
        (DeploymentSource::ArgoCd, 7),
        (DeploymentSource::Jenkins, 7),
    ] {
        let mut deployment = before[0].clone();
        deployment.source = source;
        deployment.id = id;
        batch.deployments.push(deployment);
    }
    store.apply(&batch).unwrap();
    let after = store.read_repository(&repo()).unwrap().deployments;
    assert_eq!(after.len(), 5);
    assert!(after
        .iter()
        .any(|d| d.source == DeploymentSource::ArgoCd && d.id == 7));
    assert!(after
        .iter()
        .any(|d| d.source == DeploymentSource::Jenkins && d.id == 7));
}

#[test]
fn a_version_5_store_keeps_its_pull_requests_through_the_stage_times_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    {
        let conn = store_file_at_version(&path, 5);
        // Kept by a version-5 build: one merged pull request of acme/api, the
        // pull-request listing's cursor and two others.
        conn.execute_batch(
            "INSERT INTO repositories (id, name) VALUES (1, 'acme/api');
             INSERT INTO pull_requests VALUES (1, 12, 500, NULL, '[\"hotfix\"]', x'', 100);
             INSERT INTO cursors VALUES
                 (1, 'pulls?lead_time_start=pr_first_commit&rework_labels=hotfix', 450, NULL, 600),
                 (1, 'pull_lookup?environments=production&lead_time_start=pr_first_commit', 400, NULL, 600),
                 (1, 'deployments', 300, NULL, 600);",
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    // The listing starts again (to read the new times); the others stay.
    let endpoints: Vec<String> = store
        .conn
        .prepare("SELECT endpoint FROM cursors ORDER BY endpoint")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        endpoints,
        [
            "deployments",
            "pull_lookup?environments=production&lead_time_start=pr_first_commit"
        ]
    );
    let kept = store.read_repository(&repo()).unwrap().pull_requests;
    assert_eq!(kept.len(), 1);
    let pull = &kept[0];
    assert_eq!(
        (pull.number, pull.merged_at, pull.first_commit_at),
        (12, Some(Timestamp(500)), Some(Timestamp(100)))
    );
    assert_eq!((pull.created_at, pull.first_review_at), (None, None));
    assert_eq!(pull.labels, vec!["hotfix".to_owned()]);

    // The next read of it fills the new times: an update, then unchanged.
    let mut batch = SyncBatch::new(repo());
    batch.pull_requests.push(crate::domain::PullRequest {
        created_at: Some(Timestamp(200)),
        first_review_at: Some(Timestamp(300)),
        ..pull.clone()
    });
    assert_eq!(store.apply(&batch).unwrap().pull_requests.updated, 1);
    assert_eq!(store.apply(&batch).unwrap().pull_requests.unchanged, 1);
    let read = store.read_repository(&repo()).unwrap().pull_requests;
    assert_eq!(
        (read[0].created_at, read[0].first_review_at),
        (Some(Timestamp(200)), Some(Timestamp(300)))
    );
}

#[test]
fn a_version_6_store_gains_repository_teams_and_history_since_in_versions_7_and_8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        for step in &super::schema::MIGRATIONS[..6] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        // Kept by a version-6 build: a GitHub repository synced once, a GitLab
        // project whose sync failed, and a pull request with its stage times.
        conn.execute_batch(
            "INSERT INTO repositories (id, name) VALUES (1, 'acme/api'), (2, 'acme/platform/web');
             INSERT INTO sync_status VALUES (1, 'github', 100, 100, NULL);
             INSERT INTO sync_status VALUES (2, 'gitlab', 110, NULL, 'HTTP 500');
             INSERT INTO pull_requests VALUES (1, 12, 500, NULL, '[]', x'', 100, 200, 300);",
        )
        .unwrap();
        // Neither the teams' table nor the column exists yet.
        assert!(conn
            .execute_batch("SELECT history_since FROM sync_status")
            .is_err());
        assert!(conn
            .execute_batch("SELECT team FROM repository_teams")
            .is_err());
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(SCHEMA_VERSION, 9);
    assert_eq!(pragma_i64(&store, "user_version"), SCHEMA_VERSION);
    // What version 6 kept is unchanged; neither repository has a known
    // history start (synced before the store kept it).
    let web = RepoName::parse("acme/platform/web").unwrap();
    let statuses = store.sync_status().unwrap();
    let kept: Vec<(String, &str, Option<Timestamp>, Option<Timestamp>)> = statuses
        .iter()
        .map(|s| {
            (
                s.repository.to_string(),
                s.source.as_str(),
                s.last_success_at,
                s.history_since,
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("acme/api".to_owned(), "github", Some(Timestamp(100)), None),
            ("acme/platform/web".to_owned(), "gitlab", None, None),
        ]
    );
    let pull = &store.read_repository(&repo()).unwrap().pull_requests[0];
    assert_eq!(
        (pull.created_at, pull.first_review_at),
        (Some(Timestamp(200)), Some(Timestamp(300)))
    );
    // The next successes record where each history is complete from (the
    // first one kept), and the teams' table takes rows.
    store
        .record_success(&web, "gitlab", Timestamp(200), Timestamp(50))
        .unwrap();
    store
        .record_success(&web, "gitlab", Timestamp(300), Timestamp(150))
        .unwrap();
    let gitlab = store
        .sync_status()
        .unwrap()
        .into_iter()
        .find(|s| s.repository == web)
        .unwrap();
    assert_eq!(
        (gitlab.last_success_at, gitlab.history_since),
        (Some(Timestamp(300)), Some(Timestamp(50)))
    );
    store
        .record_teams(
            &[(web.clone(), Team::parse("web").unwrap())],
            Timestamp(300),
        )
        .unwrap();
    assert_eq!(
        store.recorded_teams().unwrap(),
        [(web, Team::parse("web").unwrap())]
    );
}
