//! The store's behaviour through the `Store` trait: idempotent upserts, outcome
//! updates, atomic batches, cursors, sync status, read-back after reopening, and
//! (proptest) that the final state does not depend on the order of the reads.
//! The trait's tests run on both backends (`on_sqlite::`, `on_postgres::`); those
//! about files, and the proptest, on SQLite.

use dora_collector::domain::{
    CommitSha, Compare, CompareStatus, Deployment, DeploymentOutcome, DeploymentSource,
    Environment, Incident, PullRequest, RepoName, ShaPrefix, Team, Timestamp,
};
use dora_collector::dora::{EngineConfig, EventsBuilder, LeadTimeStart, Window};
use dora_collector::store::{
    merge_outcome, CommitRecord, Cursor, CursorKey, KindStats, SqliteStore, Store, StoreCounts,
    StoreError, SyncBatch, SyncOutcome, MAX_COMMIT_SUBJECT_BYTES, MAX_CURSOR_OPAQUE_BYTES,
    MAX_SYNC_ERROR_BYTES,
};

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn api() -> RepoName {
    repo("acme/api")
}

/// A distinct sha per number.
fn sha(n: u32) -> CommitSha {
    let mut bytes = [0xab; 20];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    CommitSha::from_bytes(bytes)
}

fn env(name: &str) -> Environment {
    Environment::parse(name).unwrap()
}

fn succeeded(at: i64) -> DeploymentOutcome {
    DeploymentOutcome::Succeeded { at: Timestamp(at) }
}

fn failed(at: i64) -> DeploymentOutcome {
    DeploymentOutcome::Failed { at: Timestamp(at) }
}

fn deployment(
    repository: &RepoName,
    id: u64,
    environment: &str,
    outcome: DeploymentOutcome,
) -> Deployment {
    Deployment {
        source: DeploymentSource::GithubDeployments,
        repository: repository.clone(),
        id,
        environment: env(environment),
        sha: sha(id as u32),
        created_at: Timestamp(id as i64 * 10),
        outcome,
    }
}

fn commit(n: u32, parents: &[u32], message: &str) -> CommitRecord {
    CommitRecord::new(
        sha(n),
        parents.iter().map(|p| sha(*p)).collect(),
        Timestamp(1_700_000_000 + i64::from(n)),
        message,
    )
}

fn incident(repository: &RepoName, number: u64, closed_at: Option<i64>) -> Incident {
    Incident {
        source: dora_collector::domain::IncidentSource::GithubIssues,
        repository: repository.clone(),
        number,
        created_at: Timestamp(1_700_000_000 + number as i64),
        closed_at: closed_at.map(Timestamp),
        labels: vec!["incident".to_owned()],
        root_cause: None,
    }
}

fn cursor_key(repository: &RepoName, endpoint: &str) -> CursorKey {
    CursorKey::new(repository.clone(), endpoint)
}

fn cursor(since: i64) -> Cursor {
    Cursor {
        since: Some(Timestamp(since)),
        opaque: None,
        updated_at: Timestamp(since + 1),
    }
}

/// One batch with every kind and every field shape.
fn sample_batch(repository: &RepoName) -> SyncBatch {
    let mut batch = SyncBatch::new(repository.clone());
    batch.deployments = vec![
        deployment(repository, 1, "production", succeeded(100)),
        deployment(repository, 2, "production", DeploymentOutcome::Pending),
        deployment(repository, 3, "staging", failed(300)),
        Deployment {
            source: DeploymentSource::GithubWorkflowRuns,
            ..deployment(repository, 1, "production", succeeded(150))
        },
    ];
    batch.commits = vec![
        commit(1, &[], "Initial commit"),
        commit(2, &[1], "Ajoute l'été ☀ — ünïcödé 🚀\n\nWith a body"),
        commit(3, &[2], "Revert \"Ajoute l'été\"\n\nThis reverts commit 2."),
        commit(4, &[3, 2], "Merge pull request #7 from acme/feature"),
        commit(5, &[4], &"long subject ".repeat(100)),
    ];
    batch.compares = vec![
        Compare {
            base: sha(1),
            head: sha(4),
            status: CompareStatus::Ahead,
            commits: vec![sha(2), sha(3), sha(4)],
        },
        Compare {
            base: sha(4),
            head: sha(1),
            status: CompareStatus::Behind,
            commits: vec![],
        },
    ];
    batch.incidents = vec![
        Incident {
            source: dora_collector::domain::IncidentSource::GithubIssues,
            labels: (0..40).map(|i| format!("label-{i} ✓ \"q\"")).collect(),
            root_cause: Some(ShaPrefix::parse("abcdef0").unwrap()),
            ..incident(repository, 11, Some(1_700_100_000))
        },
        incident(repository, 12, None),
        Incident {
            source: dora_collector::domain::IncidentSource::GithubIssues,
            labels: vec![],
            ..incident(repository, 13, Some(1_700_000_013))
        },
    ];
    batch.pull_requests = vec![
        PullRequest {
            repository: repository.clone(),
            number: 7,
            merged_at: Some(Timestamp(1_700_000_004)),
            merge_commit_sha: Some(sha(4)),
            labels: vec!["hotfix".to_owned()],
            commits: vec![sha(2), sha(3)],
            first_commit_at: Some(Timestamp(1_700_000_002)),
            created_at: Some(Timestamp(1_700_000_010)),
            first_review_at: Some(Timestamp(1_700_000_020)),
        },
        PullRequest {
            repository: repository.clone(),
            number: 8,
            merged_at: None,
            merge_commit_sha: None,
            labels: vec![],
            commits: vec![],
            first_commit_at: None,
            created_at: None,
            first_review_at: None,
        },
    ];
    batch.cursors = vec![
        (cursor_key(repository, "deployments"), cursor(1_700_000_000)),
        (
            cursor_key(repository, "etag:/repos/acme/api/issues@3f2a9c"),
            Cursor {
                since: None,
                opaque: Some("W/\"a1b2c3\"".to_owned()),
                updated_at: Timestamp(1_700_000_100),
            },
        ),
    ];
    batch
}

/// `batch` as the store returns it: sorted by identity.
fn sorted(mut batch: SyncBatch) -> SyncBatch {
    batch.deployments.sort_by_key(|d| (d.source, d.id));
    batch.commits.sort_by_key(|c| c.sha);
    batch.compares.sort_by_key(|c| (c.base, c.head));
    batch.incidents.sort_by_key(|i| i.number);
    batch.pull_requests.sort_by_key(|p| p.number);
    batch.cursors.sort_by(|a, b| a.0.cmp(&b.0));
    batch
}

fn inserted(n: u64) -> KindStats {
    KindStats {
        inserted: n,
        ..KindStats::default()
    }
}

fn unchanged(n: u64) -> KindStats {
    KindStats {
        unchanged: n,
        ..KindStats::default()
    }
}

// The contract of every backend: each test runs on SQLite (in memory) and on
// PostgreSQL (a database of its own), as `on_sqlite::NAME` and `on_postgres::NAME`.
crate::on_both_stores! {
#[test]
fn applying_the_same_batch_twice_changes_nothing_the_second_time() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let batch = sample_batch(&api());
    let first = store.apply(&batch).unwrap();
    assert_eq!(first.deployments, inserted(4));
    assert_eq!(first.commits, inserted(5));
    assert_eq!(first.compares, inserted(2));
    assert_eq!(first.incidents, inserted(3));
    assert_eq!(first.pull_requests, inserted(2));
    assert_eq!(first.cursors, inserted(2));
    let counts = store.counts().unwrap();
    assert_eq!(
        counts,
        StoreCounts {
            repositories: 1,
            deployments: 4,
            commits: 5,
            compares: 2,
            incidents: 3,
            scoped_incidents: 0,
            pull_requests: 2,
            cursors: 2,
            sync_statuses: 0,
        }
    );

    let second = store.apply(&batch).unwrap();
    assert!(second.all_unchanged(), "{second:?}");
    assert_eq!(second.total(), unchanged(batch.len() as u64));
    assert_eq!(store.counts().unwrap(), counts);
}

#[test]
fn duplicates_within_one_batch_are_stored_once() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let mut batch = SyncBatch::new(api());
    batch.commits = vec![commit(1, &[], "a"), commit(1, &[], "a")];
    batch.incidents = vec![incident(&api(), 1, None), incident(&api(), 1, Some(5))];
    let stats = store.apply(&batch).unwrap();
    assert_eq!(
        stats.commits,
        KindStats {
            inserted: 1,
            updated: 0,
            unchanged: 1
        }
    );
    assert_eq!(
        stats.incidents,
        KindStats {
            inserted: 1,
            updated: 1,
            unchanged: 0
        }
    );
    let stored = store.read_repository(&api()).unwrap();
    assert_eq!(stored.incidents, vec![incident(&api(), 1, Some(5))]);
}

#[test]
fn duplicates_of_every_kind_count_as_if_written_one_by_one() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let mut batch = SyncBatch::new(api());
    // More rows than one statement writes (PostgreSQL: 1,000), a duplicate on
    // each side of that bound.
    batch.commits = (1..=1_200).map(|n| commit(n, &[], "a")).collect();
    batch.commits.push(commit(1_100, &[], "b"));
    batch.commits.push(commit(5, &[], "a"));
    // Outcomes merge within the batch as across batches.
    batch.deployments = vec![
        deployment(&api(), 1, "production", DeploymentOutcome::Pending),
        deployment(&api(), 2, "production", failed(20)),
        deployment(&api(), 1, "production", succeeded(15)),
        deployment(&api(), 2, "production", failed(20)),
        deployment(&api(), 1, "production", DeploymentOutcome::Pending),
    ];
    let compare = |status| Compare {
        base: sha(1),
        head: sha(2),
        status,
        commits: vec![],
    };
    batch.compares = vec![
        compare(CompareStatus::Ahead),
        compare(CompareStatus::Behind),
    ];
    let pull = |labels: &[&str]| PullRequest {
        repository: api(),
        number: 7,
        merged_at: Some(Timestamp(1_700_000_004)),
        merge_commit_sha: Some(sha(4)),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        commits: vec![sha(2)],
        first_commit_at: None,
        created_at: None,
        first_review_at: None,
    };
    batch.pull_requests = vec![pull(&["a"]), pull(&["a"]), pull(&["b"])];
    batch.cursors = vec![
        (cursor_key(&api(), "commits"), cursor(10)),
        (cursor_key(&api(), "commits"), cursor(20)),
    ];
    let stats = store.apply(&batch).unwrap();
    let kind = |inserted, updated, unchanged| KindStats {
        inserted,
        updated,
        unchanged,
    };
    assert_eq!(stats.commits, kind(1_200, 1, 1));
    assert_eq!(stats.deployments, kind(2, 1, 2));
    assert_eq!(stats.compares, kind(1, 1, 0));
    assert_eq!(stats.pull_requests, kind(1, 1, 1));
    assert_eq!(stats.cursors, kind(1, 1, 0));

    let stored = store.read_repository(&api()).unwrap();
    assert_eq!(stored.commits.len(), 1_200);
    assert_eq!(store.commit(&api(), &sha(1_100)).unwrap().unwrap().message, "b");
    assert_eq!(
        stored.deployments,
        vec![
            deployment(&api(), 1, "production", succeeded(15)),
            deployment(&api(), 2, "production", failed(20)),
        ]
    );
    assert_eq!(stored.compares, vec![compare(CompareStatus::Behind)]);
    assert_eq!(stored.pull_requests, vec![pull(&["b"])]);
    assert_eq!(stored.cursors, vec![(cursor_key(&api(), "commits"), cursor(20))]);
    // Written again: each later duplicate changes back what the earlier one
    // wrote; merged outcomes stay.
    let again = store.apply(&batch).unwrap();
    assert_eq!(again.commits, kind(0, 2, 1_200));
    assert_eq!(again.deployments, kind(0, 0, 5));
    assert_eq!(again.compares, kind(0, 2, 0));
    assert_eq!(again.pull_requests, kind(0, 2, 1));
}

#[test]
fn every_field_kind_round_trips() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let batch = sample_batch(&api());
    store.apply(&batch).unwrap();
    let stored = store.read_repository(&api()).unwrap();
    assert_eq!(stored, sorted(batch.clone()));

    let unicode = store.commit(&api(), &sha(2)).unwrap().unwrap();
    assert_eq!(unicode.message, "Ajoute l'été ☀ — ünïcödé 🚀");
    assert!(store.commit(&api(), &sha(3)).unwrap().unwrap().is_revert());
    let long = store.commit(&api(), &sha(5)).unwrap().unwrap();
    assert_eq!(long.message.len(), MAX_COMMIT_SUBJECT_BYTES);
    assert_eq!(long.parents, vec![sha(4)]);
    let merge = store.commit(&api(), &sha(4)).unwrap().unwrap();
    assert_eq!(merge.parents, vec![sha(3), sha(2)], "parent order is kept");
    assert_eq!(store.commit(&api(), &sha(99)).unwrap(), None);
    assert_eq!(store.commit(&repo("acme/other"), &sha(1)).unwrap(), None);
}

#[test]
fn a_commit_built_without_new_is_cut_when_stored() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let mut batch = SyncBatch::new(api());
    batch.commits.push(CommitRecord {
        sha: sha(1),
        parents: vec![],
        author_date: Timestamp(5),
        message: format!("Revert \"{}\"\nbody", "é".repeat(300)),
    });
    store.apply(&batch).unwrap();
    let stored = store.commit(&api(), &sha(1)).unwrap().unwrap();
    assert!(stored.message.len() <= MAX_COMMIT_SUBJECT_BYTES);
    assert!(stored.message.len() > MAX_COMMIT_SUBJECT_BYTES - 2);
    assert!(stored.is_revert());
    // A re-read of the same full message is recognised as unchanged.
    assert!(store.apply(&batch).unwrap().all_unchanged());
}

#[test]
fn a_reopened_issue_loses_its_resolution_until_closed_again() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let mut batch = SyncBatch::new(api());
    for (closed_at, expected_updates) in [(Some(50), 0), (None, 1), (Some(90), 1)] {
        batch.incidents = vec![incident(&api(), 3, closed_at)];
        let stats = store.apply(&batch).unwrap();
        assert_eq!(stats.incidents.updated, expected_updates);
        let stored = store.read_repository(&api()).unwrap().incidents;
        assert_eq!(stored[0].closed_at, closed_at.map(Timestamp));
    }
}

#[test]
fn a_first_review_once_stored_stays_when_the_pull_request_comes_again_without_one() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let reviewed = sample_batch(&api()).pull_requests[0].clone();
    assert!(reviewed.first_review_at.is_some());
    let mut batch = SyncBatch::new(api());
    batch.pull_requests = vec![reviewed.clone()];
    store.apply(&batch).unwrap();
    // A listing that did not read the review (`None`: not read) changes
    // nothing; one that changed something else updates it and keeps the review.
    batch.pull_requests = vec![PullRequest {
        first_review_at: None,
        ..reviewed.clone()
    }];
    assert!(store.apply(&batch).unwrap().all_unchanged());
    batch.pull_requests = vec![PullRequest {
        first_review_at: None,
        labels: vec![],
        ..reviewed.clone()
    }];
    assert_eq!(store.apply(&batch).unwrap().pull_requests.updated, 1);
    let stored = store.read_repository(&api()).unwrap().pull_requests;
    assert_eq!(stored[0].first_review_at, reviewed.first_review_at);
    assert_eq!(stored[0].labels, Vec::<String>::new());
    // An unread review of a pull request stored without one stays unknown,
    // and a review read later is stored.
    let mut unread = PullRequest {
        number: 9,
        first_review_at: None,
        ..reviewed.clone()
    };
    batch.pull_requests = vec![unread.clone()];
    store.apply(&batch).unwrap();
    unread.first_review_at = Some(Timestamp(1_700_000_030));
    batch.pull_requests = vec![unread.clone()];
    assert_eq!(store.apply(&batch).unwrap().pull_requests.updated, 1);
    let stored = store.read_repository(&api()).unwrap().pull_requests;
    assert_eq!(stored[1], unread);
}

#[test]
fn a_pending_deployment_is_updated_to_success_and_never_back() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let source = DeploymentSource::GithubDeployments;
    let mut batch = SyncBatch::new(api());
    batch.deployments = vec![
        deployment(&api(), 7, "production", DeploymentOutcome::Pending),
        deployment(&api(), 8, "production", failed(80)),
    ];
    store.apply(&batch).unwrap();
    assert_eq!(
        store.pending_deployments(&api()).unwrap(),
        vec![(source, 7)]
    );
    assert_eq!(
        store.terminal_deployment_ids(&api(), source).unwrap(),
        [8].into_iter().collect()
    );

    batch.deployments = vec![deployment(&api(), 7, "production", succeeded(75))];
    let stats = store.apply(&batch).unwrap();
    assert_eq!(
        stats.deployments,
        KindStats {
            inserted: 0,
            updated: 1,
            unchanged: 0
        }
    );
    assert_eq!(store.pending_deployments(&api()).unwrap(), vec![]);
    assert_eq!(
        store.terminal_deployment_ids(&api(), source).unwrap(),
        [7, 8].into_iter().collect()
    );
    assert_eq!(
        store
            .deployment(&api(), source, 7)
            .unwrap()
            .unwrap()
            .outcome,
        succeeded(75)
    );
    assert_eq!(
        store.counts().unwrap().deployments,
        2,
        "updated, not duplicated"
    );

    // A stale read (pending again) changes nothing.
    batch.deployments = vec![deployment(
        &api(),
        7,
        "production",
        DeploymentOutcome::Pending,
    )];
    assert!(store.apply(&batch).unwrap().all_unchanged());
    assert_eq!(
        store
            .deployment(&api(), source, 7)
            .unwrap()
            .unwrap()
            .outcome,
        succeeded(75)
    );
    // Other sources and repositories are separate identities.
    assert_eq!(
        store
            .terminal_deployment_ids(&api(), DeploymentSource::GithubWorkflowRuns)
            .unwrap(),
        Default::default()
    );
    assert_eq!(
        store.pending_deployments(&repo("acme/web")).unwrap(),
        vec![]
    );
    assert_eq!(store.deployment(&api(), source, u64::MAX).unwrap(), None);
}

#[test]
fn the_latest_successful_deployment_is_per_environment_by_deploy_time() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let mut batch = SyncBatch::new(api());
    batch.deployments = vec![
        deployment(&api(), 1, "production", succeeded(100)),
        // Created later but deployed earlier.
        deployment(&api(), 5, "production", succeeded(90)),
        deployment(&api(), 2, "production", succeeded(200)),
        deployment(&api(), 3, "production", failed(300)),
        deployment(&api(), 4, "production", DeploymentOutcome::Pending),
        deployment(&api(), 6, "staging", succeeded(400)),
        deployment(&api(), 7, "Production", succeeded(500)),
    ];
    store.apply(&batch).unwrap();
    let production = env("production");
    let id = |d: Option<Deployment>| d.map(|d| d.id);
    assert_eq!(
        id(store
            .latest_successful_deployment(&api(), &production)
            .unwrap()),
        Some(2)
    );
    let before = |at| {
        id(store
            .previous_successful_deployment(&api(), &production, Timestamp(at))
            .unwrap())
    };
    assert_eq!(before(200), Some(1));
    assert_eq!(before(100), Some(5));
    assert_eq!(before(90), None);
    assert_eq!(
        id(store
            .latest_successful_deployment(&api(), &env("staging"))
            .unwrap()),
        Some(6)
    );
    assert_eq!(
        id(store
            .latest_successful_deployment(&api(), &env("Production"))
            .unwrap()),
        Some(7),
        "environment names are matched exactly"
    );
    assert_eq!(
        store
            .latest_successful_deployment(&repo("acme/web"), &production)
            .unwrap(),
        None
    );
    let latest = store
        .latest_successful_deployment(&api(), &production)
        .unwrap()
        .unwrap();
    assert_eq!(latest, batch.deployments[2]);
}

#[test]
fn missing_compares_are_the_unstored_consecutive_pairs_per_environment() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let mut batch = SyncBatch::new(api());
    let with_sha = |mut d: Deployment, n: u32| {
        d.sha = sha(n);
        d
    };
    batch.deployments = vec![
        // production, in deploy-time order: 1 (sha 1), 5 (sha 1, a redeploy),
        // 2 (sha 2), 7 ("Production", sha 3), 3 (sha 4); 4 failed, 6 pending.
        with_sha(deployment(&api(), 1, "production", succeeded(100)), 1),
        with_sha(deployment(&api(), 5, "production", succeeded(150)), 1),
        with_sha(deployment(&api(), 2, "production", succeeded(200)), 2),
        with_sha(deployment(&api(), 7, "Production", succeeded(250)), 3),
        with_sha(deployment(&api(), 3, "production", succeeded(300)), 4),
        with_sha(deployment(&api(), 4, "production", failed(260)), 9),
        with_sha(
            deployment(&api(), 6, "production", DeploymentOutcome::Pending),
            8,
        ),
        // staging: its own sequence.
        with_sha(deployment(&api(), 8, "staging", succeeded(120)), 4),
        with_sha(deployment(&api(), 9, "staging", succeeded(130)), 2),
    ];
    store.apply(&batch).unwrap();
    let missing = store.missing_compares(&api()).unwrap();
    // Sorted by environment (case-insensitively), then base and head; each entry
    // names the environment as its later deployment stored it.
    assert_eq!(
        missing,
        vec![
            (env("production"), sha(1), sha(2)),
            (env("Production"), sha(2), sha(3)),
            (env("production"), sha(3), sha(4)),
            (env("staging"), sha(4), sha(2)),
        ]
    );

    // A stored compare closes its gap; the others stay.
    let mut compares = SyncBatch::new(api());
    compares.compares.push(Compare {
        base: sha(2),
        head: sha(3),
        status: CompareStatus::Ahead,
        commits: vec![sha(3)],
    });
    store.apply(&compares).unwrap();
    let after = store.missing_compares(&api()).unwrap();
    assert_eq!(after.len(), 3);
    assert!(!after.iter().any(|(_, b, h)| (*b, *h) == (sha(2), sha(3))));
    assert_eq!(store.missing_compares(&repo("acme/none")).unwrap(), vec![]);
}

#[test]
fn cursors_are_stored_per_repository_and_endpoint() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let key = cursor_key(&api(), "deployments");
    assert_eq!(store.cursor(&key).unwrap(), None);
    let mut batch = SyncBatch::new(api());
    batch.cursors = vec![(key.clone(), cursor(10))];
    store.apply(&batch).unwrap();
    assert_eq!(store.cursor(&key).unwrap(), Some(cursor(10)));
    assert_eq!(store.cursor(&cursor_key(&api(), "issues")).unwrap(), None);
    assert_eq!(
        store
            .cursor(&cursor_key(&repo("acme/web"), "deployments"))
            .unwrap(),
        None
    );

    let advanced = Cursor {
        since: None,
        opaque: Some("Y3Vyc29yOnYyOpHOAAE=".to_owned()),
        updated_at: Timestamp(20),
    };
    batch.cursors = vec![(key.clone(), advanced.clone())];
    assert_eq!(store.apply(&batch).unwrap().cursors.updated, 1);
    assert_eq!(store.cursor(&key).unwrap(), Some(advanced));
}

#[test]
fn invalid_cursors_are_refused_with_the_whole_batch() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    for (endpoint, opaque) in [
        ("", None),
        ("deployments", Some("x".repeat(MAX_CURSOR_OPAQUE_BYTES + 1))),
        (&*"e".repeat(513), None),
    ] {
        let mut batch = SyncBatch::new(api());
        batch.commits = vec![commit(1, &[], "a")];
        batch.cursors = vec![(
            cursor_key(&api(), endpoint),
            Cursor {
                since: None,
                opaque,
                updated_at: Timestamp(1),
            },
        )];
        let error = store.apply(&batch).unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidInput { .. }),
            "{error:?}"
        );
        assert!(
            !error.to_string().contains("xxxx"),
            "no cursor value in {error}"
        );
        assert_eq!(store.counts().unwrap().commits, 0);
    }
}

#[test]
fn a_batch_that_fails_midway_leaves_neither_data_nor_cursor() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let key = cursor_key(&api(), "deployments");
    let mut good = SyncBatch::new(api());
    good.deployments = vec![deployment(
        &api(),
        1,
        "production",
        DeploymentOutcome::Pending,
    )];
    good.cursors = vec![(key.clone(), cursor(10))];
    store.apply(&good).unwrap();
    let before = store.read_repository(&api()).unwrap();
    let counts = store.counts().unwrap();

    // Everything valid except the very last event: its number cannot be stored, so
    // the failure happens after the deployments, commits, compares and incidents
    // were written inside the transaction.
    let mut bad = sample_batch(&api());
    bad.deployments
        .push(deployment(&api(), 1, "production", succeeded(5)));
    bad.cursors = vec![(key.clone(), cursor(20))];
    bad.pull_requests.last_mut().unwrap().number = u64::MAX;
    let error = store.apply(&bad).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::OutOfRange {
                value: u64::MAX,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("pull request number"), "{error}");
    assert_eq!(store.read_repository(&api()).unwrap(), before);
    assert_eq!(store.counts().unwrap(), counts);
    assert_eq!(store.cursor(&key).unwrap(), Some(cursor(10)));
    assert_eq!(
        store.pending_deployments(&api()).unwrap(),
        vec![(DeploymentSource::GithubDeployments, 1)]
    );
}

#[test]
fn a_batch_with_events_of_another_repository_is_refused() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let web = repo("acme/web");
    let mut batch = SyncBatch::new(api());
    batch.commits = vec![commit(1, &[], "a")];
    batch.incidents = vec![incident(&web, 1, None)];
    let error = store.apply(&batch).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("incident 1 belongs to acme/web"),
        "{message}"
    );
    batch.incidents.clear();
    batch.cursors = vec![(cursor_key(&web, "issues"), cursor(1))];
    assert!(store.apply(&batch).is_err());
    assert_eq!(store.counts().unwrap().commits, 0);
}

#[test]
fn sync_status_keeps_the_last_success_and_the_last_error() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let web = repo("acme/web");
    assert_eq!(store.sync_status().unwrap(), vec![]);
    store
        .record_sync(
            &api(),
            "github_deployments",
            Timestamp(100),
            &SyncOutcome::Succeeded,
        )
        .unwrap();
    let long_error = format!("GET https://api.github.com/x: 502 {}", "é".repeat(1000));
    store
        .record_sync(
            &api(),
            "github_deployments",
            Timestamp(200),
            &SyncOutcome::Failed(long_error.clone()),
        )
        .unwrap();
    store
        .record_sync(
            &web,
            "github_issues",
            Timestamp(150),
            &SyncOutcome::Failed("boom".into()),
        )
        .unwrap();
    let status = store.sync_status().unwrap();
    assert_eq!(status.len(), 2);
    let api_status = &status[0];
    assert_eq!(api_status.repository, api());
    assert_eq!(api_status.source, "github_deployments");
    assert_eq!(api_status.last_attempt_at, Timestamp(200));
    assert_eq!(api_status.last_success_at, Some(Timestamp(100)));
    let error = api_status.last_error.as_deref().unwrap();
    assert!(error.len() <= MAX_SYNC_ERROR_BYTES && error.len() > MAX_SYNC_ERROR_BYTES - 2);
    assert!(long_error.starts_with(error));
    assert_eq!(status[1].repository, web);
    assert_eq!(status[1].last_success_at, None);

    store
        .record_sync(
            &api(),
            "github_deployments",
            Timestamp(300),
            &SyncOutcome::Succeeded,
        )
        .unwrap();
    let status = store.sync_status().unwrap();
    assert_eq!(status[0].last_success_at, Some(Timestamp(300)));
    assert_eq!(status[0].last_error, None);
    assert_eq!(store.counts().unwrap().sync_statuses, 2);

    for bad in ["", "bad\nname", &"s".repeat(65)] {
        assert!(store
            .record_sync(&api(), bad, Timestamp(1), &SyncOutcome::Succeeded)
            .is_err());
    }
}

#[test]
fn history_since_is_the_first_successful_syncs_and_only_grows_back() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let web = repo("acme/web");
    // A failed sync records no history; a plain success (no lookback known)
    // none either.
    store
        .record_sync(&web, "gitlab", Timestamp(100), &SyncOutcome::Failed("boom".into()))
        .unwrap();
    store
        .record_sync(&api(), "github", Timestamp(100), &SyncOutcome::Succeeded)
        .unwrap();
    let status = store.sync_status().unwrap();
    assert_eq!(status[0].history_since, None);
    assert_eq!(status[1].history_since, None);
    // The first success with a lookback keeps its start; a later one (which
    // resumed from the cursors) does not move it.
    store
        .record_success(&web, "gitlab", Timestamp(200), Timestamp(50))
        .unwrap();
    store
        .record_success(&web, "gitlab", Timestamp(300), Timestamp(150))
        .unwrap();
    store
        .record_sync(&web, "gitlab", Timestamp(400), &SyncOutcome::Failed("later".into()))
        .unwrap();
    let web_status = &store.sync_status().unwrap()[1];
    assert_eq!(web_status.repository, web);
    assert_eq!(web_status.history_since, Some(Timestamp(50)));
    assert_eq!(web_status.last_success_at, Some(Timestamp(300)));
    assert_eq!(web_status.last_error.as_deref(), Some("later"));
}

#[test]
fn the_first_review_horizon_is_replaced_by_a_batch_that_carries_it_and_reaches_the_engine() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    const T0: i64 = 1_700_000_000;
    const DAY: i64 = 86_400;
    // A pull request opened on day 10, first reviewed on day 15, merged on
    // day 19, its change deployed on day 20.
    let mut batch = SyncBatch::new(api());
    batch.commits = vec![commit(1, &[], "First"), commit(2, &[1], "Second")];
    batch.deployments = vec![
        deployment(&api(), 1, "production", succeeded(T0 + DAY)),
        deployment(&api(), 2, "production", succeeded(T0 + 20 * DAY)),
    ];
    batch.pull_requests = vec![PullRequest {
        repository: api(),
        number: 7,
        merged_at: Some(Timestamp(T0 + 19 * DAY)),
        merge_commit_sha: Some(sha(2)),
        labels: vec![],
        commits: vec![sha(2)],
        first_commit_at: Some(Timestamp(T0 + 2)),
        created_at: Some(Timestamp(T0 + 10 * DAY)),
        first_review_at: Some(Timestamp(T0 + 15 * DAY)),
    }];
    store.apply(&batch).unwrap();
    assert_eq!(store.read_repository(&api()).unwrap().reviews_since, None);
    let mut horizon = |since: Option<i64>| {
        let mut batch = SyncBatch::new(api());
        batch.reviews_since = since.map(Timestamp);
        store.apply(&batch).unwrap();
        let kept = store.read_repository(&api()).unwrap().reviews_since;
        // The engine at day 21: the 7-day window starts on day 14.
        let events = EventsBuilder::collect(|sink| store.load_events(&[api()], sink)).unwrap();
        let config = EngineConfig {
            windows: vec![Window::days(7)],
            lead_time_start: LeadTimeStart::PrFirstCommit,
            ..EngineConfig::default()
        };
        let snapshot = dora_collector::dora::compute(&events, &config, Timestamp(T0 + 21 * DAY));
        let stages = [
            &snapshot.repositories[0].windows[0],
            &snapshot.organisation.windows[0],
        ]
        .map(|window| window.lead_time_stages.as_ref().map(|s| s[1].count));
        (kept.map(|t| t.0), stages)
    };
    let start = T0 + 14 * DAY;
    assert_eq!(horizon(Some(start)), (Some(start), [Some(1), Some(1)]));
    assert_eq!(
        horizon(None),
        (Some(start), [Some(1), Some(1)]),
        "a batch without a horizon keeps it"
    );
    assert_eq!(
        horizon(Some(start + 1)),
        (Some(start + 1), [None, None]),
        "a window starting before the horizon has no stages"
    );
    assert_eq!(horizon(Some(start - DAY)), (Some(start - DAY), [Some(1), Some(1)]));
}

#[test]
fn recorded_teams_keep_each_repositorys_latest_team() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let web = repo("acme/web");
    let team = |name: &str| Team::parse(name).unwrap();
    assert!(store.recorded_teams().unwrap().is_empty());
    store
        .record_teams(
            &[(web.clone(), team("checkout")), (api(), team("payments"))],
            Timestamp(10),
        )
        .unwrap();
    store
        .record_teams(&[(web.clone(), team("checkout-crew"))], Timestamp(20))
        .unwrap();
    store
        .record_teams(&[(api(), team("payments"))], Timestamp(30))
        .unwrap();
    assert_eq!(
        store.recorded_teams().unwrap(),
        vec![(api(), team("payments")), (web.clone(), team("checkout-crew"))]
    );
    // A team of a repository the store had not seen adds the repository.
    assert!(store.repositories().unwrap().contains(&web));
}

#[test]
fn load_events_reads_the_requested_repositories() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let web = repo("acme/web");
    store.apply(&sample_batch(&api())).unwrap();
    store.apply(&sample_batch(&web)).unwrap();
    assert_eq!(store.repositories().unwrap(), vec![api(), web.clone()]);

    let events =
        EventsBuilder::collect(|sink| store.load_events(&[api(), web.clone()], sink)).unwrap();
    assert_eq!(events.deployment_count(), 8);
    assert_eq!(events.commit_count(), 10);
    assert_eq!(
        events.repositories().collect::<Vec<_>>(),
        vec![&api(), &web]
    );

    let only_web = EventsBuilder::collect(|sink| {
        store.load_events(&[web.clone(), web.clone(), repo("acme/unknown")], sink)
    })
    .unwrap();
    assert_eq!(only_web.deployment_count(), 4);
    assert_eq!(only_web.commit_count(), 5);
    assert_eq!(only_web.repositories().collect::<Vec<_>>(), vec![&web]);
    assert_eq!(
        EventsBuilder::collect(|sink| store.load_events(&[], sink))
            .unwrap()
            .deployment_count(),
        0
    );
}
}

/// Cursors a store kept by a version before the first-review horizons had,
/// and the horizon each repository gets from them: the latest `updated_at −
/// within` of its first-review cursors (a hashed name counts as `within = 0`).
pub(crate) fn cursors_before_review_horizons() -> (Vec<SyncBatch>, Vec<(RepoName, Option<i64>)>) {
    let kept = |repository: &RepoName, cursors: &[(&str, i64)]| {
        let mut batch = SyncBatch::new(repository.clone());
        for (endpoint, updated_at) in cursors {
            batch.cursors.push((
                cursor_key(repository, endpoint),
                Cursor {
                    since: Some(Timestamp(updated_at - 10)),
                    opaque: None,
                    updated_at: Timestamp(*updated_at),
                },
            ));
        }
        batch
    };
    let (web, old) = (repo("acme/web"), repo("acme/old"));
    let batches = vec![
        kept(
            &api(),
            &[
                (
                    "pull_reviews?environments=production&lead_time_start=pr_first_commit&within=90d",
                    10_000_000,
                ),
                (
                    "pull_reviews?environments=prod&lead_time_start=pr_merged&within=3600s",
                    3_000_000,
                ),
                ("pulls?state=closed", 20_000_000),
            ],
        ),
        kept(&web, &[("pull_reviews#0123456789abcdef", 5_000_000)]),
        kept(&old, &[("deployments", 6_000_000)]),
    ];
    let horizons = vec![
        (api(), Some(3_000_000 - 3_600)),
        (web, Some(5_000_000)),
        (old, None),
    ];
    (batches, horizons)
}

#[test]
fn a_version_8_store_gets_each_repositorys_review_horizon_from_its_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v8.db");
    let (batches, expected) = cursors_before_review_horizons();
    {
        let mut store = SqliteStore::open(&path).unwrap();
        for batch in &batches {
            store.apply(batch).unwrap();
        }
    }
    // Back to version 8: the table did not exist.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE review_horizons; PRAGMA user_version = 8;")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(review_horizons(&store, &expected), expected);
}

/// The first-review horizon `store` keeps for each repository of `expected`.
pub(crate) fn review_horizons(
    store: &impl Store,
    expected: &[(RepoName, Option<i64>)],
) -> Vec<(RepoName, Option<i64>)> {
    expected
        .iter()
        .map(|(repository, _)| {
            let kept = store.read_repository(repository).unwrap().reviews_since;
            (repository.clone(), kept.map(|t| t.0))
        })
        .collect()
}

#[test]
fn a_reopened_file_store_reads_back_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/dora.db");
    let repositories = [api(), repo("acme/web")];
    let (stored, counts, deployments, commits) = {
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.path(), path.display().to_string());
        for repository in &repositories {
            store.apply(&sample_batch(repository)).unwrap();
        }
        store
            .record_sync(
                &api(),
                "github_deployments",
                Timestamp(9),
                &SyncOutcome::Succeeded,
            )
            .unwrap();
        let events = EventsBuilder::collect(|sink| store.load_events(&repositories, sink)).unwrap();
        let stored: Vec<SyncBatch> = repositories
            .iter()
            .map(|r| store.read_repository(r).unwrap())
            .collect();
        (
            stored,
            store.counts().unwrap(),
            events.deployment_count(),
            events.commit_count(),
        )
    };
    let store = SqliteStore::open(&path).unwrap();
    let events = EventsBuilder::collect(|sink| store.load_events(&repositories, sink)).unwrap();
    assert_eq!(events.deployment_count(), deployments);
    assert_eq!(events.commit_count(), commits);
    assert_eq!(store.counts().unwrap(), counts);
    for (repository, before) in repositories.iter().zip(&stored) {
        assert_eq!(&store.read_repository(repository).unwrap(), before);
        assert_eq!(before, &sorted(sample_batch(repository)));
    }
    assert_eq!(store.sync_status().unwrap().len(), 1);
}

#[test]
fn two_stores_on_one_file_see_each_others_committed_batches() {
    // The daemon and a `report` run open the same file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.db");
    let mut daemon = SqliteStore::open(&path).unwrap();
    let mut report = SqliteStore::open(&path).unwrap();
    assert_eq!(report.counts().unwrap(), StoreCounts::default());
    daemon.apply(&sample_batch(&api())).unwrap();
    assert_eq!(
        EventsBuilder::collect(|sink| report.load_events(&[api()], sink))
            .unwrap()
            .commit_count(),
        5
    );
    report.apply(&sample_batch(&repo("acme/web"))).unwrap();
    assert_eq!(daemon.repositories().unwrap().len(), 2);
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let path = dir.path().join("dora.db");
    std::fs::create_dir(&path).unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    // A file where the parent directory should be.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let error = SqliteStore::open(blocker.join("dora.db")).unwrap_err();
    assert!(
        matches!(error, StoreError::CreateDirectory { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("dora.db"), "{error}");
}

#[test]
fn the_store_works_behind_a_trait_object_on_another_thread() {
    let mut store: Box<dyn Store> = Box::new(SqliteStore::open_in_memory().unwrap());
    store.apply(&sample_batch(&api())).unwrap();
    let handle = std::thread::spawn(move || store.counts().unwrap().commits);
    assert_eq!(handle.join().unwrap(), 5);
}

mod order {
    //! The final state does not depend on the order in which reads arrive, nor on
    //! how they are cut into batches; and no event is stored twice.

    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// One read of one event. Immutable content (commits, compares, pull requests,
    /// incidents) is a function of the key; a deployment's outcome varies per read,
    /// as it does between syncs.
    #[derive(Debug, Clone)]
    enum Read {
        Deployment {
            repo: usize,
            id: u64,
            outcome: DeploymentOutcome,
        },
        Commit {
            repo: usize,
            n: u32,
        },
        Compare {
            repo: usize,
            n: u32,
        },
        Incident {
            repo: usize,
            number: u64,
        },
        PullRequest {
            repo: usize,
            number: u64,
        },
    }

    fn repos() -> [RepoName; 2] {
        [repo("acme/api"), repo("acme/web")]
    }

    fn outcome() -> impl Strategy<Value = DeploymentOutcome> {
        prop_oneof![
            Just(DeploymentOutcome::Pending),
            (0i64..5).prop_map(succeeded),
            (0i64..5).prop_map(failed),
        ]
    }

    fn read() -> impl Strategy<Value = Read> {
        prop_oneof![
            (0..2usize, 0..4u64, outcome()).prop_map(|(repo, id, outcome)| Read::Deployment {
                repo,
                id,
                outcome
            }),
            (0..2usize, 0..8u32).prop_map(|(repo, n)| Read::Commit { repo, n }),
            (0..2usize, 0..3u32).prop_map(|(repo, n)| Read::Compare { repo, n }),
            (0..2usize, 0..3u64).prop_map(|(repo, number)| Read::Incident { repo, number }),
            (0..2usize, 0..3u64).prop_map(|(repo, number)| Read::PullRequest { repo, number }),
        ]
    }

    fn add(batch: &mut SyncBatch, read: &Read) {
        let repository = batch.repository.clone();
        match *read {
            Read::Deployment { id, outcome, .. } => {
                batch
                    .deployments
                    .push(deployment(&repository, id, "production", outcome));
            }
            Read::Commit { n, .. } => batch.commits.push(commit(
                n,
                &[n.wrapping_sub(1), n + 100],
                &format!("commit {n} ✓"),
            )),
            Read::Compare { n, .. } => batch.compares.push(Compare {
                base: sha(n),
                head: sha(n + 1),
                status: CompareStatus::Diverged,
                commits: (0..n).map(sha).collect(),
            }),
            Read::Incident { number, .. } => batch.incidents.push(Incident {
                source: dora_collector::domain::IncidentSource::GithubIssues,
                labels: (0..number).map(|l| format!("l{l}")).collect(),
                ..incident(&repository, number, (number % 2 == 0).then_some(99))
            }),
            Read::PullRequest { number, .. } => batch.pull_requests.push(PullRequest {
                repository: repository.clone(),
                number,
                merged_at: (number > 0).then_some(Timestamp(7)),
                merge_commit_sha: (number > 1).then_some(sha(number as u32)),
                labels: vec![format!("p{number}")],
                commits: vec![sha(1), sha(2)],
                first_commit_at: None,
                created_at: None,
                first_review_at: None,
            }),
        }
    }

    fn repo_of(read: &Read) -> usize {
        match *read {
            Read::Deployment { repo, .. }
            | Read::Commit { repo, .. }
            | Read::Compare { repo, .. }
            | Read::Incident { repo, .. }
            | Read::PullRequest { repo, .. } => repo,
        }
    }

    /// The identity a read stores under (repository, kind, key).
    fn identity(read: &Read) -> (usize, u8, u64) {
        match *read {
            Read::Deployment { repo, id, .. } => (repo, 0, id),
            Read::Commit { repo, n } => (repo, 1, u64::from(n)),
            Read::Compare { repo, n } => (repo, 2, u64::from(n)),
            Read::Incident { repo, number } => (repo, 3, number),
            Read::PullRequest { repo, number } => (repo, 4, number),
        }
    }

    /// Applies `reads` cut into batches of the given sizes (cycled; a batch holds
    /// consecutive reads of one repository), returning the store and the number of
    /// rows the batches inserted.
    fn apply_all(reads: &[Read], sizes: &[usize]) -> (SqliteStore, u64) {
        let mut store = SqliteStore::open_in_memory().unwrap();
        let mut inserted = 0;
        let mut sizes = sizes.iter().cycle();
        let mut rest = reads;
        while let Some(first) = rest.first() {
            let repo = repo_of(first);
            let size = (*sizes.next().unwrap()).max(1);
            let run = rest
                .iter()
                .take(size)
                .take_while(|r| repo_of(r) == repo)
                .count();
            let mut batch = SyncBatch::new(repos()[repo].clone());
            for read in &rest[..run] {
                add(&mut batch, read);
            }
            inserted += store.apply(&batch).unwrap().total().inserted;
            rest = &rest[run..];
        }
        (store, inserted)
    }

    fn arbitrary_reads() -> impl Strategy<Value = (Vec<Read>, Vec<Read>, Vec<usize>, Vec<usize>)> {
        prop::collection::vec(read(), 0..40).prop_flat_map(|reads| {
            (
                Just(reads.clone()),
                Just(reads).prop_shuffle(),
                prop::collection::vec(1..6usize, 1..5),
                prop::collection::vec(1..6usize, 1..5),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn apply_order_does_not_matter((reads, shuffled, sizes_a, sizes_b) in arbitrary_reads()) {
            let (a, inserted_a) = apply_all(&reads, &sizes_a);
            let (b, inserted_b) = apply_all(&shuffled, &sizes_b);
            for repository in repos() {
                prop_assert_eq!(
                    a.read_repository(&repository).unwrap(),
                    b.read_repository(&repository).unwrap()
                );
            }
            prop_assert_eq!(a.counts().unwrap(), b.counts().unwrap());

            // Every identity is inserted exactly once, however often it is read.
            let identities: BTreeSet<_> = reads.iter().map(identity).collect();
            prop_assert_eq!(inserted_a, identities.len() as u64);
            prop_assert_eq!(inserted_b, identities.len() as u64);

            // Each deployment holds the merge of every outcome read for it.
            let mut expected: BTreeMap<(usize, u64), DeploymentOutcome> = BTreeMap::new();
            for read in &reads {
                if let Read::Deployment { repo, id, outcome } = *read {
                    let merged = expected
                        .get(&(repo, id))
                        .map_or(outcome, |stored| merge_outcome(*stored, outcome));
                    expected.insert((repo, id), merged);
                }
            }
            for ((repo, id), outcome) in expected {
                let stored = a
                    .deployment(&repos()[repo], DeploymentSource::GithubDeployments, id)
                    .unwrap()
                    .unwrap();
                prop_assert_eq!(stored.outcome, outcome);
            }
        }
    }
}
