//! The GraphQL path (`github.api = "graphql"`, the default) against the simulator:
//! a first sync reads deployments with their statuses in GraphQL pages (no
//! statuses request per deployment); an idle sync spends no GraphQL point (the
//! REST list's one-item first page answers 304) and re-reads only the pending
//! deployment (through REST); a new deployment costs one GraphQL page; and the
//! numbers equal the REST path's.

use crate::scenario::{at, tiny, API};
use crate::support::{config_with, get, ready_metrics, repo, samples, value, workflow_repo, World};
use dora_collector::domain::StatusState;
use dora_collector::sim::{NewDeployment, NewOutcome};

const GRAPHQL: &str = "POST /graphql";
const DEPLOYMENTS: &str = "GET /repos/{owner}/{repo}/deployments";
const STATUSES: &str = "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses";

fn repos() -> Vec<crate::support::Repo<'static>> {
    vec![
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]
}

#[tokio::test]
async fn deployments_come_with_their_statuses_and_idle_syncs_spend_no_graphql_point() {
    let scenario = tiny();
    let world = World::new(scenario.org.clone()).await;
    let graphql_config = || {
        config_with(
            world.sim.base_url(),
            &world.sim.token(),
            &world.store_path(),
            &repos(),
            "api = \"graphql\"\n",
        )
    };
    let mut daemon = world.start(graphql_config()).await;
    let first = ready_metrics(&mut daemon).await;
    let counts = world.sim.request_counts();
    assert_eq!(
        counts.route(GRAPHQL),
        1,
        "one page of deployments: {counts:?}"
    );
    assert_eq!(counts.route(STATUSES), 0, "{counts:?}");
    assert_eq!(counts.route(DEPLOYMENTS), 1, "the probe: {counts:?}");
    assert!(world.sim.graphql_points_used() >= 1);

    // The same numbers as the REST path on the same organisation.
    let rest_world = World::new(scenario.org).await;
    let mut rest = rest_world.start(rest_world.config(&repos())).await;
    let rest_metrics = ready_metrics(&mut rest).await;
    rest.shutdown().await.unwrap();
    assert_eq!(samples(&first, true), samples(&rest_metrics, true));

    // Idle: no GraphQL, the probe is a free 304, only the pending deployment's
    // statuses are read again.
    world.sim.reset_counts();
    let points = world.sim.graphql_points_used();
    daemon.sync_now();
    daemon.wait_for_cycles(2).await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(GRAPHQL), 0, "{counts:?}");
    assert_eq!(counts.route_status(DEPLOYMENTS, 304), 1, "{counts:?}");
    assert_eq!(counts.route(STATUSES), 1, "{counts:?}");
    assert_eq!(world.sim.graphql_points_used(), points);

    // A new deployment: the probe changes, one GraphQL page reads it with its
    // statuses, and the pending one, which succeeds meanwhile.
    world.sim.with_org_mut(|org| {
        org.add_deployment(
            API,
            NewDeployment {
                environment: "production".to_owned(),
                sha: None,
                created_at: at(-30 * 60),
                outcome: NewOutcome::Success { after: 120 },
            },
        )
        .unwrap();
        org.add_deployment_status(API, scenario_pending(&world), StatusState::Success, at(-60))
            .unwrap();
    });
    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(3).await.unwrap();
    let (_, after) = get(&daemon, "/metrics").await;
    daemon.shutdown().await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(GRAPHQL), 1, "{counts:?}");
    assert_eq!(counts.route_status(DEPLOYMENTS, 200), 1, "{counts:?}");
    // The pending deployment is on that page too: its statuses came inline.
    assert_eq!(counts.route(STATUSES), 0, "{counts:?}");
    let deployments =
        r#"dora_deployments_total{repository="acme/api",environment="production",team="payments"}"#;
    assert_eq!(
        value(&after, deployments),
        value(&first, deployments).map(|d| d + 2.0)
    );
}

/// The scenario's pending deployment (the tiny scenario has exactly one).
fn scenario_pending(_world: &World) -> u64 {
    tiny().pending_deployment
}
