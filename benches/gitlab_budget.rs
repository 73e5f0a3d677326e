//! The request budget of the GitLab source (issue 13): a simulated GitLab group
//! of [`DEFAULT_PROJECTS`] projects × [`DAYS`] days at 5 production deployments
//! a day per project (plus GitLab's default 2 staging ones), synced by the daemon
//! on 127.0.0.1, for (a) the first sync, (b) an idle cycle and (c) a cycle after
//! one new deployment per project. Printed per case: requests by endpoint and
//! status and per project, and for (a) the lower bound: every list read once,
//! 100 a page (⌈items/100⌉ per project: deployments, the commits of the
//! deployed history (reachable from a deployed sha; the commits of merge
//! requests merged by squashing never are), merged merge requests, incident
//! issues).
//!
//! Targets: (a) at most 1.5 × the lower bound, (b) at most 3 requests per
//! project, (c) at most 4.
//!
//! `DORA_GITLAB_BENCH_PROJECTS=N` scales the group (the per-project figures do
//! not depend on N). `DORA_GITLAB_BENCH_EXPLAIN=1` also prints, for (c), every
//! project over the target or whose new change set the first commits page of
//! the new deployed sha (newest first, 100 a page) does not hold, with its
//! requests and, from the simulator's own graph, the change set's commits
//! outside that page and the merge that brought each in. With `RUST_LOG` set
//! (e.g. `dora_collector::sources::gitlab=debug`) the daemon's log goes to
//! stderr.
//!
//! Last measured (release build, the issue's group, `docs/sources.md` § GitLab
//! has the details): (a) 3,680 requests, 1.04 × the lower bound of 3,530;
//! (b) 3.00 a project; (c) 4.00 a project, each new change set one compare (4
//! projects' change sets hold branch commits committed long before, outside
//! the first commits page: the commits list would have read a second page
//! there, 4.08 a project).
//!
//! Run with `cargo bench --bench gitlab_budget` (harness = false: prints a report).

use dora_collector::config::Config;
use dora_collector::daemon::{self, Clock, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::DeploymentOutcome;
use dora_collector::sim::gitlab::{
    issue_type, GitlabGroup, GitlabHandle, GitlabOptions, GitlabServer, GroupSpec,
};
use dora_collector::sim::{OrgSpec, RequestCounts, PRODUCTION};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Projects in the issue's group.
const DEFAULT_PROJECTS: usize = 50;
/// Days of history, all of it inside the lookback.
const DAYS: u32 = 180;
/// The lookback: the whole history plus a day.
const LOOKBACK_DAYS: u32 = 181;
/// Items per page: GitLab's maximum.
const PAGE: usize = 100;
/// Simulated seconds between the idle cycle and the cycle with new deployments.
const STEP_SECONDS: i64 = 3_600;
/// Lead time of the shipped changes.
const SHIPPED_LEAD_SECONDS: i64 = 1_800;
/// The target of (c), per project.
const NEW_DEPLOYMENT_TARGET: usize = 4;

fn print_case(title: &str, requests: &RequestCounts, projects: usize, wall: Duration) {
    println!(
        "\n{title}: {} requests ({:.2} per project), {wall:.2?}",
        requests.total,
        requests.total as f64 / projects as f64
    );
    for ((route, status), count) in &requests.by_route_status {
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

/// The configuration of every project of `group` at `gitlab`.
fn config(group: &GitlabGroup, gitlab: &GitlabHandle, store: &std::path::Path) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [gitlab]\napi_url = {:?}\ntoken = {:?}\nlookback = \"{LOOKBACK_DAYS}d\"\n",
        store.display().to_string(),
        gitlab.api_url(),
        gitlab.token(),
    );
    for (index, project) in group.projects.iter().enumerate() {
        let team = group.org.team_of(index).unwrap_or("unassigned");
        text.push_str(&format!(
            "[[gitlab.projects]]\npath = {:?}\nteam = {team:?}\n",
            project.repository()
        ));
    }
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).expect("configuration")
}

/// For (c): the projects over the target, with their requests and what the
/// simulated graph says of their new change set (see the header).
fn explain(group: &GitlabGroup, gitlab: &GitlabHandle) {
    let mut by_project: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in gitlab.requests() {
        let target = record.target.to_ascii_lowercase();
        let project = target
            .split("/projects/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("")
            .replace("%2f", "/");
        by_project.entry(project).or_default().push(record.target);
    }
    println!(
        "\nprojects over {NEW_DEPLOYMENT_TARGET} requests in (c), or whose new change set the \
         first commits page of the new deployed sha does not hold:"
    );
    let mut over = 0;
    let mut predicted = 0;
    for (index, project) in group.projects.iter().enumerate() {
        let repo = &group.org.repos[index];
        // The production deployments that succeeded, in deploy order; the last
        // one is the new deployment.
        let mut deployed: Vec<(i64, u32)> = repo
            .deployments
            .iter()
            .filter(|d| &*d.environment == PRODUCTION)
            .filter_map(|d| match d.outcome() {
                DeploymentOutcome::Succeeded { at } => Some((at.0, repo.commit_index(&d.sha)?)),
                _ => None,
            })
            .collect();
        deployed.sort_unstable();
        let Some(&(_, head)) = deployed.last() else {
            continue;
        };
        let mut shipped: HashSet<u32> = HashSet::new();
        for &(_, sha) in &deployed[..deployed.len() - 1] {
            if !shipped.contains(&sha) {
                shipped.extend(repo.log(sha));
            }
        }
        let log = repo.log(head);
        let first_page: HashSet<u32> = log.iter().take(PAGE).copied().collect();
        let change_set: Vec<u32> = log
            .iter()
            .copied()
            .filter(|c| !shipped.contains(c))
            .collect();
        let outside: Vec<u32> = change_set
            .iter()
            .copied()
            .filter(|c| !first_page.contains(c))
            .collect();
        let requests = by_project
            .get(&project.repository())
            .map_or(&[][..], |r| r.as_slice());
        if !outside.is_empty() {
            predicted += 1;
        }
        if requests.len() <= NEW_DEPLOYMENT_TARGET && outside.is_empty() {
            continue;
        }
        over += usize::from(requests.len() > NEW_DEPLOYMENT_TARGET);
        let oldest_listed = log
            .get(PAGE - 1)
            .map(|c| repo.commits[*c as usize].committer_date);
        println!(
            "  {}: {} requests; new change set {} commits, {} outside the first page (its \
             oldest commit committed at {oldest_listed:?})",
            project.repository(),
            requests.len(),
            change_set.len(),
            outside.len(),
        );
        // The merges of the change set, each with the commits it brought in
        // through its second parent.
        let merged: Vec<(u32, HashSet<u32>)> = change_set
            .iter()
            .filter_map(|m| {
                let second = repo.commits[*m as usize].parents().nth(1)?;
                let branch = repo
                    .log(second)
                    .into_iter()
                    .filter(|c| !shipped.contains(c))
                    .collect();
                Some((*m, branch))
            })
            .collect();
        for commit in &outside {
            let through: Vec<String> = merged
                .iter()
                .filter(|(_, branch)| branch.contains(commit))
                .map(|(m, _)| {
                    format!(
                        "a branch commit of merge {} (committed at {:?})",
                        &repo.commits[*m as usize].sha.to_string()[..8],
                        repo.commits[*m as usize].committer_date
                    )
                })
                .collect();
            println!(
                "    {} committed at {:?}: {}",
                &repo.commits[*commit as usize].sha.to_string()[..8],
                repo.commits[*commit as usize].committer_date,
                if through.is_empty() {
                    "on the first-parent line".to_owned()
                } else {
                    through.join(", ")
                }
            );
        }
        for target in requests {
            println!("    GET {target}");
        }
    }
    println!(
        "  {over} projects over the target; {predicted} projects whose new change set the \
         first commits page does not hold"
    );
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let projects: usize = std::env::var("DORA_GITLAB_BENCH_PROJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PROJECTS);
    let spec = GroupSpec {
        org: OrgSpec {
            owner: "gl-acme".to_owned(),
            repositories: projects,
            days: DAYS,
            deployments_per_day: 5.0,
            commits_per_deployment: 4.0,
            incident_rate: 0.02,
            workflow_run_repositories: 0,
            ..OrgSpec::default()
        },
        live_projects: 0,
    };
    let group = GitlabGroup::generate(&spec);
    let pages = |items: usize| items.div_ceil(PAGE);
    let lower_bound: usize = group
        .org
        .repos
        .iter()
        .map(|r| {
            // The deployed history: every commit reachable from a deployed sha.
            let mut deployed = std::collections::HashSet::new();
            let mut heads: Vec<u32> = r
                .deployments
                .iter()
                .filter_map(|d| r.commit_index(&d.sha))
                .collect();
            heads.sort_unstable();
            heads.dedup();
            for head in heads.into_iter().rev() {
                if !deployed.contains(&head) {
                    deployed.extend(r.log(head));
                }
            }
            pages(r.deployments.len())
                + pages(deployed.len())
                + pages(r.pulls.iter().filter(|p| p.merged_at.is_some()).count())
                + pages(
                    r.issues
                        .iter()
                        .filter(|i| i.is_incident() || issue_type(i) == "incident")
                        .count(),
                )
        })
        .sum();
    let stats = group.org.stats();
    println!(
        "group: {} projects x {DAYS} days: {} deployments, {} commits, {} issues, {} merge \
         requests; lower bound of a first sync (each list read once, 100 a page): {} pages",
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
    runtime.block_on(async {
        let gitlab = GitlabServer::start(
            group.clone(),
            GitlabOptions {
                rate_limit: u64::MAX / 2,
                ..GitlabOptions::default()
            },
        )
        .await
        .expect("simulated GitLab");
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = dir.path().join("budget.db");
        let config = config(&group, &gitlab, &store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let clock = Arc::new(ManualClock::new(group.org.now));
        let options = RunOptions {
            clock: clock.clone(),
            simulated: true,
            ..RunOptions::default()
        };
        let started = Instant::now();
        let mut handle = daemon::start(config, listener, options)
            .await
            .expect("daemon");
        let report = handle.wait_for_cycles(1).await.expect("first cycle");
        assert_eq!(report.failures().count(), 0, "{report:?}");
        let first = gitlab.request_counts();
        print_case("(a) first sync", &first, projects, started.elapsed());
        println!(
            "  lower bound {lower_bound} pages: {:.2} x the lower bound (target 1.5x)",
            first.total as f64 / lower_bound as f64
        );

        gitlab.reset_counts();
        let wall = cycle(&mut handle, 2).await;
        let idle = gitlab.request_counts();
        print_case(
            "(b) idle cycle (target 3 per project)",
            &idle,
            projects,
            wall,
        );

        clock.advance(STEP_SECONDS);
        let at = clock.now();
        gitlab.with_group_mut(|group| group.org.ship_everywhere(at, SHIPPED_LEAD_SECONDS));
        gitlab.reset_counts();
        let wall = cycle(&mut handle, 3).await;
        let news = gitlab.request_counts();
        print_case(
            "(c) one new deployment per project (target 4 per project)",
            &news,
            projects,
            wall,
        );
        if std::env::var_os("DORA_GITLAB_BENCH_EXPLAIN").is_some() {
            explain(&gitlab.with_group_mut(|g| g.clone()), &gitlab);
        }
        handle.shutdown().await.expect("shutdown");
        println!(
            "\nsummary: (a) {:.2}x the lower bound, (b) {:.2} and (c) {:.2} requests per project",
            first.total as f64 / lower_bound as f64,
            idle.total as f64 / projects as f64,
            news.total as f64 / projects as f64,
        );
    });
}
