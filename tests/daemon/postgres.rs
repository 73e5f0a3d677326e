//! The daemon on a PostgreSQL store (`[storage] url`): against the simulated
//! GitHub it serves the same `/metrics` as on SQLite, and a restart on the same
//! database serves them from the store before any request. Through the daemon
//! this also runs every store call on tokio's blocking pool and drops the store
//! at shutdown, which the synchronous client's own runtime must survive.

use crate::postgres_common::{TestDatabase, PASSWORD};
use crate::scenario::tiny;
use crate::support::{get, ready_metrics, repo, samples, workflow_repo, World};

fn tiny_repos() -> Vec<crate::support::Repo<'static>> {
    vec![
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]
}

#[tokio::test]
async fn the_daemon_on_postgres_serves_what_it_serves_on_sqlite() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let scenario = tiny();
    let world = World::new(scenario.org).await;

    let mut on_sqlite = world.start(world.config(&tiny_repos())).await;
    let expected = ready_metrics(&mut on_sqlite).await;
    on_sqlite.shutdown().await.unwrap();
    assert!(expected.contains("dora_deployments_total"), "{expected}");

    let mut config = world.config(&tiny_repos());
    config.storage.url = Some(database.url().clone());
    let mut on_postgres = world.start(config.clone()).await;
    let served = ready_metrics(&mut on_postgres).await;
    assert_eq!(samples(&served, true), samples(&expected, true));
    assert!(!served.contains(PASSWORD));
    let (status, report) = get(&on_postgres, "/report").await;
    assert_eq!(status, 200, "{report}");
    on_postgres.shutdown().await.unwrap();

    // A restart on the same database: ready at once, from the store.
    let restarted = world.start(config).await;
    let (status, reason) = get(&restarted, "/readyz").await;
    assert_eq!(status, 200, "{reason}");
    let (_, served) = get(&restarted, "/metrics").await;
    assert_eq!(samples(&served, true), samples(&expected, true));
    restarted.shutdown().await.unwrap();
}
