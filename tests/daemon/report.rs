//! `/report` served by a running daemon is evaluated at the daemon's injected
//! clock (a `ManualClock` here), as `/metrics` is, not at the wall clock.

use crate::scenario::{tiny, NOW};
use crate::support::{get, ready_metrics, repo, workflow_repo, World};
use dora_collector::domain::Timestamp;
use dora_collector::report::{self, ReportWindow};

#[tokio::test]
async fn the_report_page_is_evaluated_at_the_daemons_clock() {
    let world = World::new(tiny().org).await;
    let config = world.config(&[
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]);
    let mut daemon = world.start(config.clone()).await;
    ready_metrics(&mut daemon).await;
    let store = report::open_store(&world.store_path()).expect("the daemon's store");
    let expected = |at: Timestamp| {
        report::live_page(&store, &config, at, ReportWindow::default(), None)
            .expect("the report at a fixed time")
    };

    let (status, page) = get(&daemon, "/report").await;
    assert_eq!(status, 200, "{page}");
    // The scenario's NOW is 2025-01-15 12:00 UTC, long before the wall clock.
    assert!(page.contains("Generated 2025-01-15 12:00 UTC"), "{page}");
    assert!(page.contains("30d to 2025-01-15"), "{page}");
    assert_eq!(page, expected(NOW));

    // Moving the clock moves the page; the store is unchanged.
    world.clock.advance(3 * 86_400);
    let (status, later) = get(&daemon, "/report").await;
    assert_eq!(status, 200, "{later}");
    assert!(later.contains("Generated 2025-01-18 12:00 UTC"), "{later}");
    assert_eq!(later, expected(Timestamp(NOW.0 + 3 * 86_400)));
    daemon.shutdown().await.unwrap();
}
