//! Later syncs read only what is new: a restart on the same store serves the same
//! numbers and re-reads nothing stored; pending deployments are looked at again,
//! terminal ones never; a deployment added and an incident closed in the simulated
//! organisation move the metrics on the next sync.

use crate::scenario::{at, tiny, API, DAY, HOUR};
use crate::support::{get, ready_metrics, repo, samples, value, workflow_repo, World};
use dora_collector::domain::StatusState;
use dora_collector::sim::{NewDeployment, NewOutcome, RequestRecord};

const DEPLOYMENTS: &str = "GET /repos/{owner}/{repo}/deployments";
const STATUSES: &str = "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses";
const COMPARE: &str = "GET /repos/{owner}/{repo}/compare/{basehead}";
const RUNS: &str = "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs";
const PULLS: &str = "GET /repos/{owner}/{repo}/pulls";
const ISSUES: &str = "GET /repos/{owner}/{repo}/issues";

fn tiny_repos() -> Vec<crate::support::Repo<'static>> {
    vec![
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]
}

/// The deployment ids whose statuses were requested.
fn status_reads(requests: &[RequestRecord]) -> Vec<u64> {
    let mut ids: Vec<u64> = requests
        .iter()
        .filter(|r| r.route == STATUSES)
        .filter_map(|r| {
            let path = r.target.split('?').next()?;
            path.trim_end_matches("/statuses")
                .rsplit('/')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn a_restart_serves_the_same_numbers_and_reads_only_what_may_have_changed() {
    let scenario = tiny();
    let world = World::new(scenario.org).await;
    let mut first = world.start(world.config(&tiny_repos())).await;
    let before = ready_metrics(&mut first).await;
    first.shutdown().await.unwrap();
    world.sim.reset_counts();

    let mut second = world.start(world.config(&tiny_repos())).await;
    // Ready at once, from the store, before any request.
    let (status, reason) = get(&second, "/readyz").await;
    assert_eq!(status, 200, "{reason}");
    let (_, served) = get(&second, "/metrics").await;
    assert_eq!(samples(&served, true), samples(&before, true));

    let report = second.wait_for_cycles(1).await.unwrap();
    let (_, after) = get(&second, "/metrics").await;
    assert_eq!(samples(&after, true), samples(&before, true));

    // Nothing stored was read or written again: the run still in progress
    // (acme/web) is on a list that did not change (304), and the incidents' list
    // fits on one page, so its `since` did not move and it answers 304.
    let total = report.total();
    assert!(!total.first_sync);
    let applied = total.applied;
    for kind in [
        applied.deployments,
        applied.commits,
        applied.compares,
        applied.incidents,
        applied.pull_requests,
    ] {
        assert_eq!(kind.written(), 0, "{total:?}");
    }
    assert_eq!(applied.deployments.total(), 0, "{total:?}");
    assert_eq!(applied.incidents.total(), 0, "{total:?}");
    assert_eq!(
        applied.commits.total() + applied.compares.total(),
        0,
        "{total:?}"
    );
    assert_eq!(applied.cursors.inserted, 0, "{total:?}");
    // Only conditional lists and the pending deployment's statuses were read.
    let counts = world.sim.request_counts();
    assert_eq!(counts.route_status(DEPLOYMENTS, 304), 1, "{counts:?}");
    assert_eq!(counts.route(DEPLOYMENTS), 1, "{counts:?}");
    assert_eq!(counts.route_status(PULLS, 304), 2, "{counts:?}");
    assert_eq!(counts.route_status(RUNS, 304), 1, "{counts:?}");
    assert_eq!(counts.route(RUNS), 1, "{counts:?}");
    assert!(counts.route(ISSUES) > 0, "{counts:?}");
    assert_eq!(
        counts.route_status(ISSUES, 304),
        counts.route(ISSUES),
        "{counts:?}"
    );
    assert_eq!(counts.route(COMPARE), 0, "{counts:?}");
    assert_eq!(
        status_reads(&world.sim.requests()),
        vec![scenario.pending_deployment]
    );

    // From then on an idle sync reads no event at all: every list answers 304,
    // the pending deployment's statuses too (asked with their stored ETag).
    world.sim.reset_counts();
    second.sync_now();
    let idle = second.wait_for_cycles(2).await.unwrap().total();
    second.shutdown().await.unwrap();
    assert_eq!(idle.applied.total().total(), 0, "{idle:?}");
    let counts = world.sim.request_counts();
    assert_eq!(counts.route_status(STATUSES, 304), 1, "{counts:?}");
    assert_eq!(counts.status(304), counts.total, "{counts:?}");
}

#[tokio::test]
async fn the_first_idle_cycle_after_a_first_sync_spends_no_rest_point_on_workflow_runs() {
    let scenario = tiny();
    let world = World::new(scenario.org).await;
    let mut daemon = world.start(world.config(&tiny_repos())).await;
    ready_metrics(&mut daemon).await;
    world.sim.reset_counts();
    daemon.sync_now();
    let idle = daemon.wait_for_cycles(2).await.unwrap().total();
    daemon.shutdown().await.unwrap();
    assert_eq!(idle.applied.total().written(), 0, "{idle:?}");
    // The run list is read through the URL whose `ETag` the first sync kept:
    // a free 304, although a run is still in progress.
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(RUNS), 1, "{counts:?}");
    assert_eq!(counts.route_status(RUNS, 304), 1, "{counts:?}");
    // Beyond 304s, only the pending deployment's statuses (REST reads them).
    let paid: Vec<_> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.status != 304)
        .map(|r| r.route)
        .collect();
    assert!(paid.iter().all(|route| *route == STATUSES), "{paid:?}");
}

#[tokio::test]
async fn pending_deployments_are_read_again_and_terminal_ones_never() {
    let scenario = tiny();
    let world = World::new(scenario.org).await;
    let mut daemon = world.start(world.config(&tiny_repos())).await;
    ready_metrics(&mut daemon).await;
    let mut first_reads = status_reads(&world.sim.requests());
    let mut expected = scenario.terminal_deployments.clone();
    expected.push(scenario.pending_deployment);
    expected.push(scenario.old_failure);
    expected.sort_unstable();
    first_reads.dedup();
    assert_eq!(first_reads, expected, "each production deployment once");

    // Still pending: read again, and only it.
    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(2).await.unwrap();
    assert_eq!(
        status_reads(&world.sim.requests()),
        vec![scenario.pending_deployment]
    );

    // It succeeds: read once more, counted, and never again.
    world.sim.with_org_mut(|org| {
        org.add_deployment_status(
            API,
            scenario.pending_deployment,
            StatusState::Success,
            at(-HOUR),
        )
        .unwrap();
    });
    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(3).await.unwrap();
    assert_eq!(
        status_reads(&world.sim.requests()),
        vec![scenario.pending_deployment]
    );
    let (_, metrics) = get(&daemon, "/metrics").await;
    let series =
        r#"dora_deployments_total{repository="acme/api",environment="production",team="payments"}"#;
    assert_eq!(value(&metrics, series), Some(6.0));

    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(4).await.unwrap();
    assert_eq!(status_reads(&world.sim.requests()), Vec::<u64>::new());
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_new_deployment_and_a_closed_incident_move_the_metrics() {
    let scenario = tiny();
    let world = World::new(scenario.org).await;
    let mut daemon = world.start(world.config(&tiny_repos())).await;
    let before = ready_metrics(&mut daemon).await;
    let deployments =
        r#"dora_deployments_total{repository="acme/api",environment="production",team="payments"}"#;
    let open = r#"dora_incidents_open{repository="acme/api",team="payments"}"#;
    let restore_count =
        r#"dora_time_to_restore_seconds_count{repository="acme/api",team="payments",window="7d"}"#;
    assert_eq!(value(&before, deployments), Some(5.0));
    assert_eq!(value(&before, open), Some(1.0));
    assert_eq!(value(&before, restore_count), Some(1.0));

    world.sim.with_org_mut(|org| {
        org.push_commit(API, "Add refunds", at(-DAY / 2), at(-DAY / 2))
            .unwrap();
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
        org.close_issue(API, scenario.open_incident, at(-10 * 60))
            .unwrap();
    });
    world.sim.reset_counts();
    daemon.sync_now();
    let report = daemon.wait_for_cycles(2).await.unwrap();
    let (_, after) = get(&daemon, "/metrics").await;
    daemon.shutdown().await.unwrap();

    assert_eq!(value(&after, deployments), Some(6.0));
    assert_eq!(value(&after, open), Some(0.0));
    assert_eq!(value(&after, restore_count), Some(2.0));
    // The new change set is one compare (previous success → new deployment).
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(COMPARE), 1, "{counts:?}");
    let total = report.total();
    assert_eq!(total.applied.deployments.inserted, 1, "{total:?}");
    assert_eq!(total.applied.compares.inserted, 1, "{total:?}");
    assert_eq!(total.applied.incidents.updated, 1, "{total:?}");
    assert_eq!(total.applied.incidents.inserted, 0, "{total:?}");
    // The rest of the page follows from those events only.
    let lead_count = r#"dora_lead_time_seconds_count{repository="acme/api",environment="production",team="payments"}"#;
    assert_eq!(
        value(&after, lead_count),
        value(&before, lead_count).map(|c| c + 1.0)
    );
    assert_eq!(counts.route(RUNS), 1, "{counts:?}");
    assert!(counts.route(ISSUES) >= 2, "{counts:?}");
}

#[tokio::test]
async fn configuring_another_production_environment_reads_its_history_once() {
    let scenario = tiny();
    let staging: u64 = scenario.org.repos[API]
        .deployments
        .iter()
        .find(|d| &*d.environment == "staging")
        .map(|d| d.id)
        .unwrap();
    let world = World::new(scenario.org).await;
    let mut first = world.start(world.config(&tiny_repos())).await;
    ready_metrics(&mut first).await;
    first.shutdown().await.unwrap();
    world.sim.reset_counts();

    let config = crate::support::config_with(
        world.sim.base_url(),
        dora_collector::sim::SIM_TOKEN,
        &world.store_path(),
        &tiny_repos(),
        "production_environments = [\"production\", \"Staging\"]",
    );
    let mut second = world.start(config).await;
    let metrics = ready_metrics(&mut second).await;
    second.shutdown().await.unwrap();
    // The environments changed, so the deployments step starts afresh, but only
    // the staging deployment (new), the pending one (still pending) and the failed
    // base candidate (never stored) have their statuses read; the stored
    // deployments, the stored base included, are not read again.
    let mut expected = vec![staging, scenario.pending_deployment, scenario.old_failure];
    expected.sort_unstable();
    assert_eq!(status_reads(&world.sim.requests()), expected);
    let staging_total =
        r#"dora_deployments_total{repository="acme/api",environment="Staging",team="payments"}"#;
    assert_eq!(value(&metrics, staging_total), Some(1.0));
}

#[tokio::test]
async fn a_new_token_reads_each_list_once_in_full_then_conditional_requests_resume() {
    // GitHub's ETags are specific to the token (the simulator's too): after a
    // token change (a rotated token, a new App installation token) the stored
    // ETags can never match again. The collector does not send the old token's
    // ETags, reads each list's first page in full once, stores the new token's
    // ETags, and nothing stored changes.
    const NEW_TOKEN: &str = "dora-sim-token-rotated-1111";
    let scenario = tiny();
    let world = World::new(scenario.org).await;
    let mut first = world.start(world.config(&tiny_repos())).await;
    let before = ready_metrics(&mut first).await;
    first.shutdown().await.unwrap();

    world.sim.set_token(NEW_TOKEN);
    world.sim.reset_counts();
    let config = crate::support::config(
        world.sim.base_url(),
        NEW_TOKEN,
        &world.store_path(),
        &tiny_repos(),
    );
    let mut second = world.start(config).await;
    let rotated = second.wait_for_cycles(1).await.unwrap();
    assert_eq!(rotated.failures().count(), 0, "{rotated:?}");
    let (_, after) = get(&second, "/metrics").await;
    assert_eq!(samples(&after, true), samples(&before, true));
    let written = rotated.total().applied;
    assert_eq!(written.deployments.written(), 0, "{written:?}");
    assert_eq!(written.incidents.written(), 0, "{written:?}");
    assert_eq!(written.pull_requests.written(), 0, "{written:?}");
    let requests = world.sim.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| !r.conditional),
        "an ETag of the old token was sent: {requests:?}"
    );
    let counts = world.sim.request_counts();
    assert_eq!(counts.status(304), 0, "{counts:?}");
    assert_eq!(counts.status(401), 0, "{counts:?}");

    // The next idle sync is conditional again, with the new token's ETags.
    world.sim.reset_counts();
    second.sync_now();
    let idle = second.wait_for_cycles(2).await.unwrap().total();
    second.shutdown().await.unwrap();
    assert_eq!(idle.applied.total().total(), 0, "{idle:?}");
    let counts = world.sim.request_counts();
    assert_eq!(counts.status(304), counts.total, "{counts:?}");
}

#[tokio::test]
async fn a_long_incident_list_is_free_when_idle_and_one_page_when_it_changes() {
    let scenario = tiny();
    let world = World::new(scenario.org).await;
    // 150 incidents: the list is two pages long.
    world.sim.with_org_mut(|org| {
        for n in 0..150 {
            org.open_issue(
                API,
                dora_collector::sim::NewIssue {
                    title: format!("Outage {n}"),
                    body: None,
                    labels: vec!["incident".to_owned()],
                    opened_at: at(-30 * DAY + n * HOUR),
                },
            )
            .unwrap();
        }
    });
    let mut daemon = world.start(world.config(&tiny_repos())).await;
    ready_metrics(&mut daemon).await;

    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(2).await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(
        counts.route(ISSUES),
        counts.route_status(ISSUES, 304),
        "{counts:?}"
    );

    world.sim.with_org_mut(|org| {
        org.open_issue(
            API,
            dora_collector::sim::NewIssue {
                title: "A new outage".to_owned(),
                body: None,
                labels: vec!["incident".to_owned()],
                opened_at: at(-HOUR),
            },
        )
        .unwrap();
    });
    world.sim.reset_counts();
    daemon.sync_now();
    let changed = daemon.wait_for_cycles(3).await.unwrap().total();
    let counts = world.sim.request_counts();
    assert_eq!(
        counts.route_status(ISSUES, 200),
        1,
        "the first page holds the change and an issue stored before: {counts:?}"
    );
    assert_eq!(changed.applied.incidents.inserted, 1, "{changed:?}");

    // And the next idle poll is free again.
    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(4).await.unwrap();
    daemon.shutdown().await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(
        counts.route(ISSUES),
        counts.route_status(ISSUES, 304),
        "{counts:?}"
    );
}
