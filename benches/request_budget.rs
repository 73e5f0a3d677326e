//! The request budget of a sync (issue 4): a simulated organisation of
//! [`DEFAULT_REPOSITORIES`] repositories × 365 days, about 5 deployments a day per
//! repository with 4 commits each and 2 % incidents, synced by the daemon on
//! 127.0.0.1 through each way of reading deployments (`github.api = "graphql"`,
//! the default, and `"rest"`), for (a) the first sync, (b) an idle cycle and (c) a
//! cycle after one new deployment per repository (and the idle cycle after (b),
//! the steady state). Printed per case: requests by
//! endpoint and status, GraphQL points, REST rate-limit points (304s are free) and
//! wall time; and the lower bound: the pages needed to read each list once
//! (⌈items/100⌉ per list per repository: deployments, the branch's commits,
//! incident issues, pull requests).
//!
//! Each path runs under each `lead_time_start` (issue 21): `commit`, then the
//! two PR-based starts, which also read every merged pull request's commits
//! (with GraphQL, on the deployment and history pages a first sync reads anyway)
//! and ask for the pull requests of the deployed changes no listed one names;
//! the report ends with what they add over `commit`.
//!
//! `DORA_BUDGET_BENCH_PATHS=graphql` (or `rest`) runs one path only;
//! `DORA_BUDGET_BENCH_STARTS=commit,pr_merged` only those starts.
//! `DORA_BUDGET_BENCH_REPOS=N` scales the organisation (the per-repository
//! figures do not depend on N; the full 200 repositories take about a quarter of
//! an hour on a 2-core machine, most of it the REST path's first sync). The
//! collector's pace under GitHub's secondary per-minute points is lifted, as the
//! simulator's limits are: the wall times measure the collector, not the pace.
//!
//! Run with `cargo bench --bench request_budget` (harness = false: prints a report).

use dora_collector::config::{Duration as ConfigDuration, GithubApi, Unit};
use dora_collector::daemon::{self, demo, Clock, DaemonHandle, ManualClock, RunOptions};
use dora_collector::dora::LeadTimeStart;
use dora_collector::sim::{Org, OrgSpec, RequestCounts, SimHandle, SimOptions, SimServer};
use dora_collector::sources::github::RetryPolicy;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Repositories in the issue's organisation.
const DEFAULT_REPOSITORIES: usize = 200;
/// Days of history, all of it inside the lookback.
const DAYS: u32 = 365;
/// The lookback: the whole history plus a day.
const LOOKBACK_DAYS: u64 = 366;
/// A GraphQL budget that does not run out within the bench and fits GraphQL's
/// 32-bit `Int`.
const GRAPHQL_BUDGET: u64 = 2_000_000_000;
/// Items per page: GitHub's maximum.
const PAGE: usize = 100;
/// Simulated seconds between the idle cycle and the cycle with new deployments.
const STEP_SECONDS: i64 = 3_600;
/// Lead time of the shipped changes.
const SHIPPED_LEAD_SECONDS: i64 = 1_800;

/// The three lead-time starts, as the configuration spells them.
const STARTS: [(&str, LeadTimeStart); 3] = [
    ("commit", LeadTimeStart::Commit),
    ("pr_merged", LeadTimeStart::PrMerged),
    ("pr_first_commit", LeadTimeStart::PrFirstCommit),
];

struct Case {
    requests: RequestCounts,
    graphql_points: u64,
    rest_points: u64,
    wall: Duration,
}

fn measure_start(sim: &SimHandle) -> (u64, u64) {
    sim.reset_counts();
    (sim.graphql_points_used(), sim.rate_limit().used)
}

fn finish(sim: &SimHandle, start: (u64, u64), wall: Duration) -> Case {
    Case {
        requests: sim.request_counts(),
        graphql_points: sim.graphql_points_used() - start.0,
        rest_points: sim.rate_limit().used - start.1,
        wall,
    }
}

fn print_case(title: &str, case: &Case, repositories: usize, lower_bound: Option<usize>) {
    let points = case.graphql_points + case.rest_points;
    println!(
        "\n{title}: {} requests, {} REST points + {} GraphQL points = {points} points \
         ({:.2} per repository), {:.2?}",
        case.requests.total,
        case.rest_points,
        case.graphql_points,
        points as f64 / repositories as f64,
        case.wall
    );
    if let Some(bound) = lower_bound {
        println!(
            "  lower bound {bound} pages: {:.2} x the lower bound",
            points as f64 / bound as f64
        );
    }
    for ((route, status), count) in &case.requests.by_route_status {
        println!("  {count:>8}  {status}  {route}");
    }
}

async fn cycle(handle: &mut DaemonHandle, n: u64) -> Duration {
    let start = Instant::now();
    handle.sync_now();
    let report = handle.wait_for_cycles(n).await.expect("cycle");
    assert_eq!(report.failures().count(), 0, "{report:?}");
    start.elapsed()
}

/// The (a), (b) and (c) cases of one path and lead-time start.
struct Cases {
    first: Case,
    idle: Case,
    new_deployment: Case,
}

async fn run(
    org: &Org,
    api: GithubApi,
    start: (&str, LeadTimeStart),
    repositories: usize,
    lower_bound: usize,
) -> Cases {
    let options = SimOptions {
        rate_limit: u64::MAX / 2,
        // GraphQL's `Int` is 32-bit: `rateLimit { remaining }` must fit.
        graphql_rate_limit: GRAPHQL_BUDGET,
        ..SimOptions::default()
    };
    let sim = SimServer::start(org.clone(), options)
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = dir.path().join("budget.db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let mut config = demo::demo_config(org, sim.base_url(), addr, &store).expect("configuration");
    let github = config.github.as_mut().expect("[github]");
    github.api = api;
    github.lead_time_start = start.1;
    github.lookback = ConfigDuration::new(LOOKBACK_DAYS, Unit::Days).expect("lookback");
    let clock = Arc::new(ManualClock::new(org.now));
    let options = RunOptions {
        clock: clock.clone(),
        simulated: true,
        // GitHub's secondary pace lifted with the simulator's limits: the times
        // measure the collector and the simulator, as before the pace.
        retry: RetryPolicy {
            github_secondary_pace: None,
            ..RetryPolicy::default()
        },
        ..RunOptions::default()
    };
    println!(
        "\n=== github.api = {api:?}, lead_time_start = {} ===",
        start.0
    );
    let start = measure_start(&sim);
    let started = Instant::now();
    let mut handle = daemon::start(config, listener, options)
        .await
        .expect("daemon");
    let report = handle.wait_for_cycles(1).await.expect("first cycle");
    assert_eq!(report.failures().count(), 0, "{report:?}");
    let first = finish(&sim, start, started.elapsed());
    print_case("(a) first sync", &first, repositories, Some(lower_bound));

    let start = measure_start(&sim);
    let wall = cycle(&mut handle, 2).await;
    let idle = finish(&sim, start, wall);
    print_case("(b) idle cycle", &idle, repositories, None);
    // The next idle cycle (steady state).
    let start = measure_start(&sim);
    let wall = cycle(&mut handle, 3).await;
    print_case(
        "(b') the next idle cycle",
        &finish(&sim, start, wall),
        repositories,
        None,
    );

    clock.advance(STEP_SECONDS);
    let at = clock.now();
    sim.with_org_mut(|org| org.ship_everywhere(at, SHIPPED_LEAD_SECONDS));
    let start = measure_start(&sim);
    let wall = cycle(&mut handle, 4).await;
    let new_deployment = finish(&sim, start, wall);
    print_case(
        "(c) one new deployment per repository",
        &new_deployment,
        repositories,
        None,
    );
    handle.shutdown().await.expect("shutdown");
    Cases {
        first,
        idle,
        new_deployment,
    }
}

fn points(case: &Case) -> f64 {
    (case.graphql_points + case.rest_points) as f64
}

/// What each PR-based start adds over `commit` on one path.
fn print_starts(api: GithubApi, results: &[(&str, Cases)], repositories: usize) {
    let Some((_, commit)) = results.iter().find(|(name, _)| *name == "commit") else {
        return;
    };
    println!(
        "
lead_time_start on {api:?} (points; (c) per repository):"
    );
    for (name, cases) in results {
        println!(
            "  {name:>15}: (a) {:.0} = {:.2}x commit (target 1.3x), (b) {:.0} ({:.0} REST), \
             (c) {:.2}",
            points(&cases.first),
            points(&cases.first) / points(&commit.first),
            points(&cases.idle),
            cases.idle.rest_points,
            points(&cases.new_deployment) / repositories as f64,
        );
    }
}

fn main() {
    let repositories: usize = std::env::var("DORA_BUDGET_BENCH_REPOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_REPOSITORIES);
    let spec = OrgSpec {
        repositories,
        days: DAYS,
        deployments_per_day: 5.0,
        commits_per_deployment: 4.0,
        incident_rate: 0.02,
        workflow_run_repositories: 0,
        ..OrgSpec::default()
    };
    let org = Org::generate(&spec);
    let pages = |items: usize| items.div_ceil(PAGE);
    let lower_bound: usize = org
        .repos
        .iter()
        .map(|r| {
            pages(r.deployments.len())
                + pages(r.commits.len())
                + pages(r.issues.len())
                + pages(r.pulls.len())
        })
        .sum();
    let stats = org.stats();
    println!(
        "organisation: {} repositories x {DAYS} days: {} deployments, {} commits, {} issues, {} \
         pull requests; lower bound of a first sync (each list read once, 100 a page): {} pages",
        stats.repositories,
        stats.deployments,
        stats.commits,
        stats.issues,
        stats.pull_requests,
        lower_bound
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // `DORA_BUDGET_BENCH_PATHS=graphql` (or `rest`) runs one path only.
    let paths = std::env::var("DORA_BUDGET_BENCH_PATHS").unwrap_or_default();
    let wanted = |name: &str| paths.is_empty() || paths.split(',').any(|p| p.trim() == name);
    let starts = std::env::var("DORA_BUDGET_BENCH_STARTS").unwrap_or_default();
    let wanted_start =
        |name: &str| starts.is_empty() || starts.split(',').any(|p| p.trim() == name);
    runtime.block_on(async {
        let mut firsts = Vec::new();
        for (path, api) in [("graphql", GithubApi::Graphql), ("rest", GithubApi::Rest)] {
            if !wanted(path) {
                continue;
            }
            let mut results = Vec::new();
            for start in STARTS.into_iter().filter(|(name, _)| wanted_start(name)) {
                let cases = run(&org, api, start, repositories, lower_bound).await;
                results.push((start.0, cases));
            }
            print_starts(api, &results, repositories);
            if let Some((_, commit)) = results.into_iter().find(|(name, _)| *name == "commit") {
                firsts.push(commit.first);
            }
        }
        let [graphql, rest] = firsts.as_slice() else {
            return;
        };
        println!(
            "\nfirst sync: GraphQL path {:.0} points, REST path {:.0} points: {:.1}x fewer \
             (target: 25x); GraphQL path {:.2}x the lower bound (target: 1.2x)",
            points(graphql),
            points(rest),
            points(rest) / points(graphql),
            points(graphql) / lower_bound as f64
        );
    });
}
