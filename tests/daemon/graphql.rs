//! The GraphQL path (`github.api = "graphql"`, the default) against the simulator:
//! a first sync reads deployments with their statuses in GraphQL pages (no
//! statuses request per deployment) and change sets from history pages (no
//! compare); an idle sync costs the cycle's one check query (every repository's
//! newest deployment through aliases, and whether the pending one is still
//! pending) and nothing else; a new deployment costs one GraphQL page, which brings the new
//! history too; a check that fails falls back to the REST probe, and a missing
//! repository fails only itself (the check's other answers are used); and the numbers
//! equal the REST path's (statuses and a compare per deployment).

use crate::reference::{self, Params};
use crate::scenario::{at, tiny, API, DAY, HOUR};
use crate::support::{
    config_text, config_with, get, ready_metrics, repo, samples, value, workflow_repo, World,
};
use dora_collector::config::Config;
use dora_collector::domain::{CommitSha, RepoName, StatusState, Timestamp};
use dora_collector::sim::{MergeStyle, NewDeployment, NewOutcome, NewPull, Org, OrgSpec};
use dora_collector::store::{SqliteStore, Store};
use std::collections::BTreeMap;

const GRAPHQL: &str = "POST /graphql";
const DEPLOYMENTS: &str = "GET /repos/{owner}/{repo}/deployments";
const COMPARE: &str = "GET /repos/{owner}/{repo}/compare/{basehead}";
const PULLS: &str = "GET /repos/{owner}/{repo}/pulls";
const STATUSES: &str = "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses";
const PULL_COMMITS: &str = "GET /repos/{owner}/{repo}/pulls/{pull_number}/commits";
const PULL_REVIEWS: &str = "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews";
const COMMIT_PULLS: &str = "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls";

fn repos() -> Vec<crate::support::Repo<'static>> {
    vec![
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]
}

#[tokio::test]
async fn deployments_come_with_their_statuses_and_an_idle_sync_costs_one_check_point() {
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
        6,
        "the cycle's check, one page of deployments, per repository one page of \
         history and one of merged pull requests: {counts:?}"
    );
    assert_eq!(
        counts.route(PULLS),
        2,
        "only the first page of the REST list, for its ETag: {counts:?}"
    );
    assert_eq!(counts.route(STATUSES), 0, "{counts:?}");
    assert_eq!(
        counts.route(COMPARE),
        0,
        "history decides every change set: {counts:?}"
    );
    assert_eq!(
        counts.route(DEPLOYMENTS),
        0,
        "the check replaces the REST probe: {counts:?}"
    );
    assert!(world.sim.graphql_points_used() >= 1);

    // The same numbers as the REST path on the same organisation.
    let rest_world = World::new(scenario.org).await;
    let mut rest = rest_world.start(rest_world.config(&repos())).await;
    let rest_metrics = ready_metrics(&mut rest).await;
    rest.shutdown().await.unwrap();
    assert_eq!(samples(&first, true), samples(&rest_metrics, true));

    // Idle: the cycle's check (one query, one point, for every repository) says
    // nothing was created, and that the pending deployment is still pending (its
    // latest status): no REST request for it.
    world.sim.reset_counts();
    let points = world.sim.graphql_points_used();
    daemon.sync_now();
    daemon.wait_for_cycles(2).await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(GRAPHQL), 1, "{counts:?}");
    assert_eq!(counts.route(DEPLOYMENTS), 0, "{counts:?}");
    assert_eq!(counts.route(STATUSES), 0, "{counts:?}");
    assert_eq!(world.sim.graphql_points_used(), points + 1);

    // A new deployment: the check sees it, one GraphQL page reads it with its
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
    assert_eq!(
        counts.route(GRAPHQL),
        2,
        "the check and one page: {counts:?}"
    );
    assert_eq!(counts.route(DEPLOYMENTS), 0, "{counts:?}");
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

#[tokio::test]
async fn change_sets_come_from_history_pages_not_compares_and_equal_the_rest_paths() {
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
    ready_metrics(&mut daemon).await;

    // A long-lived branch merged with a merge commit (its commits are older than
    // anything read so far), a direct push, and a deployment of the new head.
    world.sim.with_org_mut(|org| {
        org.merge_pull(
            API,
            NewPull {
                title: "A long-lived branch".to_owned(),
                labels: vec![],
                commit_dates: vec![at(-120 * DAY), at(-100 * DAY), at(-3 * DAY)],
                opened_at: at(-120 * DAY),
                merged_at: at(-2 * HOUR),
                style: MergeStyle::MergeCommit,
            },
        )
        .unwrap();
        org.push_commit(API, "A direct push", at(-HOUR), at(-HOUR))
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
    });
    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(2).await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(COMPARE), 0, "{counts:?}");
    assert_eq!(
        counts.route(GRAPHQL),
        2,
        "the check, and the deployments page, which brings the newest deployment's \
         history: {counts:?}"
    );

    // 150 pushes then a deployment: more than the deployments page brings, so
    // one history page of its own.
    world.sim.with_org_mut(|org| {
        for n in 0..150 {
            let when = at(-50 * 60 + n * 10);
            org.push_commit(API, &format!("Push {n}"), when, when)
                .unwrap();
        }
        org.add_deployment(
            API,
            NewDeployment {
                environment: "production".to_owned(),
                sha: None,
                created_at: at(-20 * 60),
                outcome: NewOutcome::Success { after: 60 },
            },
        )
        .unwrap();
    });
    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(3).await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(COMPARE), 0, "{counts:?}");
    assert_eq!(
        counts.route(GRAPHQL),
        3,
        "the check, the deployments page and one history page: {counts:?}"
    );

    // An idle sync reads no history again.
    world.sim.reset_counts();
    daemon.sync_now();
    daemon.wait_for_cycles(4).await.unwrap();
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(GRAPHQL), 1, "only the check: {counts:?}");
    let (_, graphql_metrics) = get(&daemon, "/metrics").await;
    daemon.shutdown().await.unwrap();

    // The REST path (a compare per change set) on the same organisation, from
    // scratch, exports the same values.
    let org = world.sim.with_org_mut(|org| org.clone());
    let rest_world = World::new(org).await;
    let mut rest = rest_world.start(rest_world.config(&repos())).await;
    let rest_metrics = ready_metrics(&mut rest).await;
    rest.shutdown().await.unwrap();
    assert!(rest_world.sim.request_counts().route(COMPARE) > 0);
    assert_eq!(
        samples(&graphql_metrics, true),
        samples(&rest_metrics, true)
    );
}

#[tokio::test]
async fn a_missing_repository_leaves_the_checks_other_answers_and_fails_alone() {
    let scenario = tiny();
    let world = World::new(scenario.org.clone()).await;
    let mut with_typo = repos();
    with_typo.push(repo("acme/typo", "payments"));
    let config = config_with(
        world.sim.base_url(),
        &world.sim.token(),
        &world.store_path(),
        &with_typo,
        "api = \"graphql\"\n",
    );
    let mut daemon = world.start(config).await;
    let report = daemon.wait_for_cycles(1).await.unwrap();
    let failures: Vec<String> = report.failures().map(|(r, _)| r.to_string()).collect();
    assert_eq!(failures, vec!["acme/typo".to_owned()]);
    // GitHub answers the check with data for every repository it found and a
    // NOT_FOUND error for the missing one: only that one asks the REST list
    // (and is told 404).
    let counts = world.sim.request_counts();
    assert_eq!(counts.route(DEPLOYMENTS), 1, "{counts:?}");
    assert_eq!(counts.route_status(DEPLOYMENTS, 404), 1, "{counts:?}");
    let (_, metrics) = get(&daemon, "/metrics").await;
    daemon.shutdown().await.unwrap();
    let deployments =
        r#"dora_deployments_total{repository="acme/api",environment="production",team="payments"}"#;
    assert!(
        value(&metrics, deployments).is_some_and(|d| d > 0.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failed_check_falls_back_to_the_rest_probe() {
    let scenario = tiny();
    let world = World::new(scenario.org.clone()).await;
    let config = config_with(
        world.sim.base_url(),
        &world.sim.token(),
        &world.store_path(),
        &repos(),
        "api = \"graphql\"\n",
    );
    let mut daemon = world.start(config).await;
    ready_metrics(&mut daemon).await;
    // The GraphQL budget spent until its reset, an hour away: the check is
    // refused (RATE_LIMITED) and fails at once.
    world.sim.set_graphql_rate_limit_remaining(0);
    world.sim.reset_counts();
    daemon.sync_now();
    let report = daemon.wait_for_cycles(2).await.unwrap();
    let counts = world.sim.request_counts();
    // One refused check; the Deployments-API repository asked the REST list's
    // first page instead. It has no validator for that page yet (the check
    // stood in for it), so it lists its deployments: through GraphQL, whose
    // budget is spent, so that repository fails saying so, and only it.
    assert_eq!(counts.route(GRAPHQL), 1, "{counts:?}");
    assert_eq!(counts.route_status(DEPLOYMENTS, 200), 1, "{counts:?}");
    let failures: Vec<(String, String)> = report
        .failures()
        .map(|(r, e)| (r.to_string(), e.to_owned()))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "acme/api");
    assert!(
        failures[0]
            .1
            .starts_with("GitHub API rate limit exhausted (resource graphql) until "),
        "{failures:?}"
    );
    daemon.shutdown().await.unwrap();
}

/// Under a PR-based lead-time start a first sync lists every merged pull request
/// of the window with its commits on the deployment and history pages it reads
/// anyway (one point each still), then in pages of its own; those with a rework
/// label come again with their labels. What it stores is the simulator's truth,
/// as the REST path's (a commits request per pull request), and so are the
/// numbers.
#[tokio::test]
async fn under_a_pr_based_start_merged_pull_requests_ride_on_the_pages_a_first_sync_reads() {
    // Squash merges mostly: more pull requests than history pages carry, so the
    // listing goes on in pages of its own.
    let org = Org::generate(&OrgSpec {
        repositories: 1,
        workflow_run_repositories: 0,
        teams: 1,
        days: 30,
        deployments_per_day: 2.0,
        commits_per_deployment: 10.0,
        merge_commit_share: 0.2,
        stacked_pull_share: 0.1,
        hotfix_rate: 0.1,
        staging_deployments_per_day: 0.0,
        pending_deployments: 0,
        ..OrgSpec::small(11)
    });
    let name = org.full_name(0);
    let repository = RepoName::parse(&name).unwrap();
    // Every merged pull request (the whole history is inside the 90-day lookback)
    // as stored: number, merged_at, merge commit, commits (sorted), first commit.
    let truth: BTreeMap<u64, StoredPull> = org.repos[0]
        .pulls
        .iter()
        .filter(|p| p.merged_at.is_some())
        .map(|p| {
            let commits = &org.repos[0].commits;
            let mut shas: Vec<CommitSha> =
                p.commits.clone().map(|c| commits[c as usize].sha).collect();
            shas.sort_unstable();
            let first = p
                .commits
                .clone()
                .map(|c| commits[c as usize].author_date)
                .min();
            let merge = p.merge_commit.map(|c| commits[c as usize].sha);
            (
                p.number,
                (
                    p.merged_at,
                    merge,
                    shas,
                    first,
                    p.has_label("hotfix"),
                    Some(p.created_at),
                    p.first_review_at,
                ),
            )
        })
        .collect();
    assert!(
        truth.values().any(|p| p.4),
        "a pull request with a rework label"
    );

    let mut points = BTreeMap::new();
    for start in ["commit", "pr_merged", "pr_first_commit"] {
        let mut stored_by_api = Vec::new();
        let mut metrics_by_api = Vec::new();
        for api in ["graphql", "rest"] {
            let world = World::new(org.clone()).await;
            let config = config_with(
                world.sim.base_url(),
                &world.sim.token(),
                &world.store_path(),
                &[repo(&name, "team")],
                &format!("api = \"{api}\"\nlead_time_start = \"{start}\"\n"),
            );
            let mut daemon = world.start(config).await;
            let metrics = ready_metrics(&mut daemon).await;
            daemon.shutdown().await.unwrap();
            let counts = world.sim.request_counts();
            if api == "graphql" {
                points.insert(start, world.sim.graphql_points_used());
                assert_eq!(counts.route(PULL_COMMITS), 0, "{start}: {counts:?}");
                // The first reviews came through GraphQL too (149 a query).
                assert_eq!(counts.route(PULL_REVIEWS), 0, "{start}: {counts:?}");
            }
            let store = SqliteStore::open(world.store_path()).unwrap();
            let stored: BTreeMap<u64, StoredPull> = store
                .read_repository(&repository)
                .unwrap()
                .pull_requests
                .into_iter()
                .map(|p| {
                    let mut shas = p.commits.clone();
                    shas.sort_unstable();
                    let rework = p.labels.iter().any(|l| l == "hotfix");
                    (
                        p.number,
                        (
                            p.merged_at,
                            p.merge_commit_sha,
                            shas,
                            p.first_commit_at,
                            rework,
                            p.created_at,
                            p.first_review_at,
                        ),
                    )
                })
                .collect();
            if start == "commit" {
                // Only the pull requests with a rework label are kept.
                assert!(stored.values().all(|p| p.4), "{api}");
            } else {
                assert_eq!(stored, truth, "{start} through {api}");
            }
            stored_by_api.push(stored);
            metrics_by_api.push(samples(&metrics, true));
        }
        assert_eq!(stored_by_api[0], stored_by_api[1], "{start}");
        assert_eq!(metrics_by_api[0], metrics_by_api[1], "{start}");
    }
    // The commit start's queries, but the check and the rework listing, are the
    // pages the listing rides on (47 pull requests each, with their commits);
    // the rest of it takes pages of 100, the first reviews (every pull request
    // here is merged within the longest window) 149 a query, the rework listing
    // with commits one, and the question for the deployed changes no pull
    // request names (direct pushes) one.
    let riding = (points["commit"] - 2) * u64::from(47u32);
    let merged = truth.len() as u64;
    assert!(
        merged > riding,
        "the listing outgrows the pages it rides on"
    );
    let own_pages = (merged - riding).div_ceil(100);
    let review_queries = merged.div_ceil(149);
    for start in ["pr_merged", "pr_first_commit"] {
        assert!(
            points[start] <= points["commit"] + own_pages + review_queries + 2,
            "{start}: {points:?}, {own_pages} pages of its own, {review_queries} of reviews"
        );
    }
}

/// A stored pull request as compared: merged_at, merge commit, commits (sorted),
/// first commit, whether it carries the rework label, opened, first review.
type StoredPull = (
    Option<Timestamp>,
    Option<CommitSha>,
    Vec<CommitSha>,
    Option<Timestamp>,
    bool,
    Option<Timestamp>,
    Option<Timestamp>,
);

/// Under a PR-based lead-time start a later sync learns the pull requests of the
/// changes a new deployment ships from the page it reads anyway (the newest
/// history comes with each commit's pull requests), so it asks GitHub nothing
/// more for them; and it reads no commits of a pull request it stored before
/// (the REST list starts again at its cursor's second, and a push changes the
/// list's `ETag`). The numbers equal a REST sync's from scratch.
#[tokio::test]
async fn under_a_pr_based_start_a_new_deployment_asks_nothing_more_for_its_pull_requests() {
    for start in ["pr_merged", "pr_first_commit"] {
        let scenario = tiny();
        let world = World::new(scenario.org.clone()).await;
        let extra = format!("api = \"graphql\"\nlead_time_start = \"{start}\"\n");
        let config = config_with(
            world.sim.base_url(),
            &world.sim.token(),
            &world.store_path(),
            &repos(),
            &extra,
        );
        let mut daemon = world.start(config).await;
        ready_metrics(&mut daemon).await;
        let deploy = |org: &mut Org, created_at| {
            org.add_deployment(
                API,
                NewDeployment {
                    environment: "production".to_owned(),
                    sha: None,
                    created_at,
                    outcome: NewOutcome::Success { after: 60 },
                },
            )
            .unwrap();
        };

        // A direct push, deployed.
        world.sim.with_org_mut(|org| {
            org.push_commit(API, "A direct push", at(-3 * HOUR), at(-3 * HOUR))
                .unwrap();
            deploy(org, at(-2 * HOUR));
        });
        world.sim.reset_counts();
        daemon.sync_now();
        daemon.wait_for_cycles(2).await.unwrap();
        let counts = world.sim.request_counts();
        assert_eq!(
            counts.route(GRAPHQL),
            2,
            "{start}: the check and the deployments page, which brings the new \
             history with its pull requests: {counts:?}"
        );
        assert_eq!(counts.route(PULLS), 2, "{start}: {counts:?}");
        assert_eq!(counts.route(PULL_COMMITS), 0, "{start}: {counts:?}");
        assert_eq!(counts.route(COMMIT_PULLS), 0, "{start}: {counts:?}");

        // A squash-merged pull request with commits from days ago and a merge
        // commit's, deployed together.
        world.sim.with_org_mut(|org| {
            for (title, style) in [
                ("A squashed branch", MergeStyle::Squash),
                ("A merged branch", MergeStyle::MergeCommit),
            ] {
                org.merge_pull(
                    API,
                    NewPull {
                        title: title.to_owned(),
                        labels: vec![],
                        commit_dates: vec![at(-4 * DAY), at(-2 * DAY)],
                        opened_at: at(-4 * DAY),
                        merged_at: at(-HOUR),
                        style,
                    },
                )
                .unwrap();
            }
            deploy(org, at(-30 * 60));
        });
        world.sim.reset_counts();
        daemon.sync_now();
        daemon.wait_for_cycles(3).await.unwrap();
        let counts = world.sim.request_counts();
        assert_eq!(counts.route(GRAPHQL), 2, "{start}: {counts:?}");
        assert_eq!(
            counts.route(PULL_COMMITS),
            2,
            "{start}: the new pull requests' commits only: {counts:?}"
        );
        assert_eq!(counts.route(COMMIT_PULLS), 0, "{start}: {counts:?}");
        let (_, graphql_metrics) = get(&daemon, "/metrics").await;
        daemon.shutdown().await.unwrap();

        let org = world.sim.with_org_mut(|org| org.clone());
        let rest_world = World::new(org).await;
        let rest_config = config_with(
            rest_world.sim.base_url(),
            &rest_world.sim.token(),
            &rest_world.store_path(),
            &repos(),
            &format!("lead_time_start = \"{start}\"\n"),
        );
        let mut rest = rest_world.start(rest_config).await;
        let rest_metrics = ready_metrics(&mut rest).await;
        rest.shutdown().await.unwrap();
        assert_eq!(
            samples(&graphql_metrics, true),
            samples(&rest_metrics, true),
            "{start}"
        );
    }
}

/// The tiny organisation's configuration for the review-window tests: `api`,
/// `pr_first_commit`, a 30-day lookback and `windows`.
fn review_window_config(world: &World, api: &str, windows: &str) -> Config {
    let mut text = config_text(
        world.sim.base_url(),
        &world.sim.token(),
        &world.store_path(),
        &repos(),
        &format!("api = \"{api}\"\nlead_time_start = \"pr_first_commit\"\nlookback = \"30d\"\n"),
    );
    text.push_str(&format!("[metrics]\nwindows = {windows}\n"));
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"))
}

/// Merges into acme/api a squash-merged pull request opened and merged at
/// `opened` and `merged` (with `labels`); returns its number and first review.
fn merge_old_pull(
    org: &mut Org,
    opened: i64,
    merged: i64,
    labels: &[&str],
) -> (u64, Option<Timestamp>) {
    let (number, _) = org
        .merge_pull(
            API,
            NewPull {
                title: format!("A branch merged {}d ago", -merged / DAY),
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                commit_dates: vec![at(opened - 2 * DAY), at(opened - DAY)],
                opened_at: at(opened),
                merged_at: at(merged),
                style: MergeStyle::Squash,
            },
        )
        .unwrap();
    let pull = org.repos[API]
        .pulls
        .iter()
        .find(|p| p.number == number)
        .unwrap();
    (number, pull.first_review_at)
}

/// Deploys acme/api's main to production an hour ago.
fn deploy_main(org: &mut Org) {
    org.add_deployment(
        API,
        NewDeployment {
            environment: "production".to_owned(),
            sha: None,
            created_at: at(-HOUR),
            outcome: NewOutcome::Success { after: 60 },
        },
    )
    .unwrap();
}

/// The lead-time series of `metrics` that differ from the reference's for
/// `org` under `params` at the tiny organisation's `now`.
fn lead_time_differences(metrics: &str, org: &Org, params: &Params) -> Vec<String> {
    let expected = reference::expected(org, params, at(0));
    reference::differences(metrics, &expected)
        .unwrap()
        .into_iter()
        .filter(|d| d.contains("dora_lead_time"))
        .collect()
}

/// Whether acme/api's 7-day `review` stage has samples.
fn has_review_samples(metrics: &str) -> bool {
    metrics.lines().any(|l| {
        l.starts_with("dora_lead_time_stage_seconds_count{")
            && l.contains("acme/api")
            && l.contains("stage=\"review\"")
            && l.contains("window=\"7d\"")
            && !l.ends_with(" 0")
    })
}

/// First reviews are read only for the changes deployed within the longest
/// window (issue 17, `docs/sources.md` § 6). A pull request merged before that
/// window and before the lookback (40 days ago, windows of 7 and 14 days, a
/// 30-day lookback) that a deployment ships only after the first sync has its
/// first review read by step 6 of the sync that sees the deployment (step 5
/// finds the pull request, without its review), once, and the lead-time stages
/// equal the brute-force reference's. An unreviewed pull request merged within
/// the window before the first sync (a `hotfix`: the simulator gives those no
/// review), whose review the first sync read, is not asked again when it is
/// deployed.
#[tokio::test]
async fn a_pull_request_merged_before_the_window_and_deployed_later_has_its_review_read() {
    for api in ["graphql", "rest"] {
        let scenario = tiny();
        let mut org = scenario.org.clone();
        let (_, unreviewed) = merge_old_pull(&mut org, -3 * DAY, -2 * DAY, &["hotfix"]);
        assert_eq!(unreviewed, None);
        let world = World::new(org).await;
        let config = review_window_config(&world, api, "[\"7d\", \"14d\"]");
        let params = Params::from_config(&config, Some(at(0)));
        let mut daemon = world.start(config).await;
        ready_metrics(&mut daemon).await;

        let (_, reviewed) = world.sim.with_org_mut(|org| {
            let old = merge_old_pull(org, -42 * DAY, -40 * DAY, &[]);
            deploy_main(org);
            old
        });
        assert!(reviewed.is_some(), "the pull request has a review");
        world.sim.reset_counts();
        daemon.sync_now();
        daemon.wait_for_cycles(2).await.unwrap();
        let counts = world.sim.request_counts();
        match api {
            // The check, the deployments page (with the new history and its
            // pull requests), the old pull request's details (step 5), its
            // review (step 6).
            "graphql" => assert_eq!(counts.route(GRAPHQL), 4, "{counts:?}"),
            // The old pull request's review only.
            _ => assert_eq!(counts.route(PULL_REVIEWS), 1, "{counts:?}"),
        }
        let (_, metrics) = get(&daemon, "/metrics").await;
        let org = world.sim.with_org_mut(|org| org.clone());
        let differences = lead_time_differences(&metrics, &org, &params);
        assert!(differences.is_empty(), "{api}:\n{}", differences.join("\n"));
        assert!(has_review_samples(&metrics), "{api}");

        // An idle sync reads it no more.
        world.sim.reset_counts();
        daemon.sync_now();
        daemon.wait_for_cycles(3).await.unwrap();
        let counts = world.sim.request_counts();
        assert_eq!(counts.route(PULL_REVIEWS), 0, "{counts:?}");
        assert!(counts.route(GRAPHQL) <= 1, "{counts:?}");
        daemon.shutdown().await.unwrap();
    }
}

/// A longer window reads what its start needs: a pull request merged 18 days
/// ago, before the 14-day window of the first sync (which did not read its
/// review) and within the 21-day window configured after it, deployed only
/// then, has its review read, and the stages equal the reference's under the
/// new windows.
#[tokio::test]
async fn a_longer_window_reads_the_reviews_its_start_needs() {
    for api in ["graphql", "rest"] {
        let scenario = tiny();
        let mut org = scenario.org.clone();
        let (_, reviewed) = merge_old_pull(&mut org, -19 * DAY, -18 * DAY, &[]);
        assert!(reviewed.is_some(), "the pull request has a review");
        let world = World::new(org).await;
        let mut daemon = world
            .start(review_window_config(&world, api, "[\"7d\", \"14d\"]"))
            .await;
        ready_metrics(&mut daemon).await;
        daemon.shutdown().await.unwrap();

        let config = review_window_config(&world, api, "[\"7d\", \"21d\"]");
        let params = Params::from_config(&config, Some(at(0)));
        let mut daemon = world.start(config).await;
        ready_metrics(&mut daemon).await;
        world.sim.with_org_mut(deploy_main);
        daemon.sync_now();
        daemon.wait_for_cycles(2).await.unwrap();
        let (_, metrics) = get(&daemon, "/metrics").await;
        let org = world.sim.with_org_mut(|org| org.clone());
        let differences = lead_time_differences(&metrics, &org, &params);
        assert!(differences.is_empty(), "{api}:\n{}", differences.join("\n"));
        assert!(has_review_samples(&metrics), "{api}");
        daemon.shutdown().await.unwrap();
    }
}
