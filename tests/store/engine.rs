//! The store and the engine together: events written through `Store::apply`, read
//! back with `load_events` (also after reopening the file, and when written twice in
//! other batches) give exactly the snapshot the same events give when fed to the
//! engine directly, also when a large load reads repositories on several threads.

use crate::common;

use common::*;
use dora_collector::domain::*;
use dora_collector::dora::EventsBuilder;
use dora_collector::dora::{self, EngineConfig, Events, Window};
use dora_collector::store::{CommitRecord, SqliteStore, Store, SyncBatch};

fn batch_for(repository: &str, deployments: u32, salt: u32) -> SyncBatch {
    let name = repo(repository);
    let mut batch = SyncBatch::new(name.clone());
    let commits = deployments * 3;
    for n in 0..commits {
        let mut parents = Vec::new();
        if n > 0 {
            parents.push(sha(salt + n - 1));
        }
        if n % 7 == 6 {
            parents.push(sha(salt + n - 4));
        }
        let message = if n % 11 == 10 {
            "Revert \"x\""
        } else {
            "Add a thing\n\nbody"
        };
        batch.commits.push(CommitRecord::new(
            sha(salt + n),
            parents,
            at(n as i64 * HOUR),
            message,
        ));
    }
    for d in 0..deployments {
        let head = if d % 9 == 8 { d * 3 - 4 } else { d * 3 + 2 };
        let when = at(d as i64 * 3 * HOUR + 4 * HOUR);
        let outcome = match d % 13 {
            12 => DeploymentOutcome::Failed { at: when },
            11 => DeploymentOutcome::Pending,
            _ => DeploymentOutcome::Succeeded { at: when },
        };
        batch.deployments.push(Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: name.clone(),
            id: u64::from(d),
            environment: env(if d % 5 == 4 { "staging" } else { "production" }),
            sha: sha(salt + head),
            created_at: when,
            outcome,
        });
    }
    for i in 0..(deployments / 4) {
        let created = at(i as i64 * 12 * HOUR + 5 * HOUR);
        batch.incidents.push(Incident {
            source: dora_collector::domain::IncidentSource::GithubIssues,
            repository: name.clone(),
            number: u64::from(i) + 1,
            created_at: created,
            closed_at: (i % 3 != 0).then(|| Timestamp(created.0 + 2 * HOUR)),
            labels: vec!["incident".into()],
            root_cause: (i % 2 == 0)
                .then(|| ShaPrefix::parse(&sha(salt + i * 5).to_string()[..8]).unwrap()),
        });
    }
    batch.pull_requests.push(PullRequest {
        repository: name,
        number: 500,
        merged_at: Some(at(10 * HOUR)),
        merge_commit_sha: Some(sha(salt + 9)),
        labels: vec!["hotfix".into()],
        commits: vec![sha(salt + 8)],
        first_commit_at: Some(at(HOUR)),
        created_at: None,
        first_review_at: None,
    });
    batch
}

fn feed(batch: &SyncBatch, builder: &mut dora_collector::dora::EventsBuilder) {
    for commit in &batch.commits {
        builder.commit(&batch.repository, &commit.to_commit());
    }
    for d in &batch.deployments {
        builder.deployment(d.clone());
    }
    for i in &batch.incidents {
        builder.incident(i.clone());
    }
    for p in &batch.pull_requests {
        builder.pull_request(p.clone());
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        windows: vec![Window::days(1), Window::days(7), Window::days(30)],
        ..EngineConfig::default()
    }
}

#[test]
fn stored_events_give_the_same_snapshot_as_direct_ones_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.db");
    same_snapshot_after_reopening(&|| Box::new(SqliteStore::open(&path).unwrap()));
}

#[test]
fn stored_events_give_the_same_snapshot_as_direct_ones_on_postgres() {
    let Some(database) = crate::postgres_common::TestDatabase::new() else {
        return;
    };
    same_snapshot_after_reopening(&|| Box::new(database.open()));
}

/// Applies two repositories' batches to the store `open` gives, then loads them
/// from a second store it gives: the engine computes what it computes from the
/// events directly.
fn same_snapshot_after_reopening(open: &dyn Fn() -> Box<dyn Store>) {
    let batches = [
        batch_for("acme/api", 60, 0),
        batch_for("acme/web", 40, 10_000),
    ];
    let mut builder = Events::builder();
    {
        let mut store = open();
        for batch in &batches {
            store.apply(batch).unwrap();
            feed(batch, &mut builder);
        }
    }
    let direct = builder.build();
    let store = open();
    let repositories = [repo("acme/api"), repo("acme/web")];
    let loaded = EventsBuilder::collect(|sink| store.load_events(&repositories, sink)).unwrap();
    assert_eq!(loaded.deployment_count(), direct.deployment_count());
    assert_eq!(loaded.commit_count(), direct.commit_count());
    for now in [5 * DAY, 10 * DAY, 40 * DAY] {
        let expected = dora::compute(&direct, &config(), at(now));
        assert!(expected.organisation.totals.deployments > 0);
        assert_eq!(
            dora::compute(&loaded, &config(), at(now)),
            expected,
            "now = {now}"
        );
    }
}

#[test]
fn writing_the_same_events_again_in_other_batches_changes_nothing() {
    same_events_again(&mut SqliteStore::open_in_memory().unwrap());
}

#[test]
fn writing_the_same_events_again_in_other_batches_changes_nothing_on_postgres() {
    let Some(database) = crate::postgres_common::TestDatabase::new() else {
        return;
    };
    same_events_again(&mut database.open());
}

fn same_events_again(store: &mut dyn Store) {
    let batch = batch_for("acme/api", 50, 0);
    store.apply(&batch).unwrap();
    let repositories = [repo("acme/api")];
    let before = dora::compute(
        &EventsBuilder::collect(|sink| store.load_events(&repositories, sink)).unwrap(),
        &config(),
        at(20 * DAY),
    );
    // The same reads again, cut differently and in reverse order.
    let mut again = batch.clone();
    again.commits.reverse();
    again.deployments.reverse();
    for chunk in again.commits.chunks(17) {
        let mut part = SyncBatch::new(repo("acme/api"));
        part.commits = chunk.to_vec();
        assert!(store.apply(&part).unwrap().all_unchanged());
    }
    store.apply(&again).unwrap();
    let after = dora::compute(
        &EventsBuilder::collect(|sink| store.load_events(&repositories, sink)).unwrap(),
        &config(),
        at(20 * DAY),
    );
    assert_eq!(before, after);
}

#[test]
fn a_load_on_several_threads_gives_the_same_events_as_direct_ones() {
    // Enough repositories for `load_events` to read on several connections (on a
    // machine with more than one core; on one core this checks the serial path).
    let repositories: Vec<RepoName> = (0..3
        * dora_collector::store::MIN_REPOSITORIES_PER_LOAD_THREAD)
        .map(|r| repo(&format!("acme/service-{r:03}")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.db");
    load_on_several_threads(&repositories, &|| {
        Box::new(SqliteStore::open(&path).unwrap())
    });
}

#[test]
fn a_load_on_several_threads_gives_the_same_events_as_direct_ones_on_postgres() {
    let Some(database) = crate::postgres_common::TestDatabase::new() else {
        return;
    };
    let repositories: Vec<RepoName> = (0..3
        * dora_collector::store::MIN_REPOSITORIES_PER_LOAD_THREAD)
        .map(|r| repo(&format!("acme/service-{r:03}")))
        .collect();
    load_on_several_threads(&repositories, &|| Box::new(database.open()));
}

/// Writes `repositories` through one store `open` gives, loads them (asked twice
/// and out of order) through another: the engine sees the direct events.
fn load_on_several_threads(repositories: &[RepoName], open: &dyn Fn() -> Box<dyn Store>) {
    let mut builder = Events::builder();
    {
        let mut store = open();
        for (r, name) in repositories.iter().enumerate() {
            let batch = batch_for(name.as_str(), 5 + (r as u32 % 7), r as u32 * 1_000);
            store.apply(&batch).unwrap();
            feed(&batch, &mut builder);
        }
    }
    let direct = builder.build();
    let store = open();
    // Asked twice and out of order: each repository is loaded once.
    let mut asked = repositories.to_vec();
    asked.reverse();
    asked.extend(repositories.iter().take(5).cloned());
    let loaded = EventsBuilder::collect(|sink| store.load_events(&asked, sink)).unwrap();
    assert_eq!(
        loaded.repositories().collect::<Vec<_>>(),
        repositories.iter().collect::<Vec<_>>()
    );
    assert_eq!(loaded.deployment_count(), direct.deployment_count());
    assert_eq!(loaded.commit_count(), direct.commit_count());
    for now in [2 * DAY, 10 * DAY] {
        let expected = dora::compute(&direct, &config(), at(now));
        assert!(expected.organisation.totals.deployments > 0);
        assert_eq!(dora::compute(&loaded, &config(), at(now)), expected);
    }
}
