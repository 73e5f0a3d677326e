//! The request budget of the Argo CD and Jenkins sources (issue 14): a simulated
//! organisation of [`DEFAULT_ITEMS`] repositories × [`DAYS`] days (GitHub gives
//! their commits), whose deployments come from [`DEFAULT_ITEMS`] Argo CD
//! applications (each one's syncs replayed, its history cut to Argo CD's default
//! 10), then, on a fresh store, from [`DEFAULT_ITEMS`] Jenkins jobs (every
//! build kept, about [`BUILDS_PER_JOB`] each). Synced by the daemon on
//! 127.0.0.1; printed per source: requests to it for (a) the first sync, (b) an
//! idle cycle, (c) a cycle after one new sync or build per application or job;
//! and the wall time of each cycle (GitHub's change sets included).
//!
//! `DORA_CICD_BENCH_ITEMS=N` scales the organisation (the per-item figures do
//! not depend on N).
//!
//! Run with `cargo bench --bench cicd_budget` (harness = false: prints a report).

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::Timestamp;
use dora_collector::sim::cicd::argocd::{events_from_github, ArgoApp, ArgoCdState};
use dora_collector::sim::cicd::jenkins::{
    builds_from_github, BuildResult, FolderKind, JenkinsJob, JenkinsState, JobKind,
};
use dora_collector::sim::cicd::{CicdApi, CicdHandle, CicdOptions, Credentials};
use dora_collector::sim::{Org, OrgSpec, SimHandle, SimOptions, SimServer, PRODUCTION, SIM_TOKEN};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Applications, jobs and repositories: the 100.
const DEFAULT_ITEMS: usize = 100;
/// Days of history, inside the lookback.
const DAYS: u32 = 30;
/// Deployments a day per repository: about 60 builds a job over the history.
const DEPLOYMENTS_PER_DAY: f64 = 2.0;
/// Builds a job holds, about (for the report's text).
const BUILDS_PER_JOB: usize = 70;
/// Simulated seconds between the idle cycle and the one with new deployments.
const STEP_SECONDS: i64 = 3_600;

const ARGOCD_TOKEN: &str = "argocd-bench-token-0000000000";
const JENKINS_TOKEN: &str = "jenkins-bench-token-000000000";

struct Cycle {
    requests: u64,
    wall: Duration,
}

async fn cycle<S: CicdApi>(handle: &mut DaemonHandle, server: &CicdHandle<S>, n: u64) -> Cycle {
    server.reset_counts();
    let started = Instant::now();
    if n > 1 {
        handle.sync_now();
    }
    let report = handle.wait_for_cycles(n).await.expect("a cycle");
    assert_eq!(
        report.failures().count(),
        0,
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    Cycle {
        requests: server.request_counts().total,
        wall: started.elapsed(),
    }
}

fn print(source: &str, items: usize, cases: &[(&str, Cycle)]) {
    println!(
        "\n{source}: {items} {}",
        if source == "argocd" {
            "applications"
        } else {
            "jobs"
        }
    );
    println!(
        "  {:<40} {:>9} {:>12} {:>10}",
        "cycle", "requests", "per item", "wall"
    );
    for (name, case) in cases {
        println!(
            "  {:<40} {:>9} {:>12.2} {:>9.2}s",
            name,
            case.requests,
            case.requests as f64 / items as f64,
            case.wall.as_secs_f64()
        );
    }
}

fn config(github: &SimHandle, store: &std::path::Path, names: &[String], extra: &str) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [github]\napi_url = {:?}\ntoken = {SIM_TOKEN:?}\n",
        store.display().to_string(),
        github.base_url()
    );
    for name in names {
        text.push_str(&format!("[[github.repositories]]\nname = {name:?}\n"));
    }
    text.push_str(extra);
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("{problems:?}"))
}

async fn daemon(config: Config, clock: Arc<ManualClock>) -> DaemonHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = RunOptions {
        clock,
        ..RunOptions::default()
    };
    daemon::start(config, listener, options).await.unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let items: usize = std::env::var("DORA_CICD_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITEMS);
    let spec = OrgSpec {
        repositories: items,
        days: DAYS,
        deployments_per_day: DEPLOYMENTS_PER_DAY,
        workflow_run_repositories: 0,
        ..OrgSpec::small(14)
    };
    let org = Org::generate(&spec);
    let now = org.now;
    let names: Vec<String> = (0..items).map(|i| org.full_name(i)).collect();
    println!(
        "Argo CD and Jenkins request budget: {items} repositories x {DAYS} days, about \
         {DEPLOYMENTS_PER_DAY} deployments a day each (Jenkins: about {BUILDS_PER_JOB} builds a job)"
    );
    let github = SimServer::start(
        org.clone(),
        SimOptions {
            rate_limit: u64::MAX / 2,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Argo CD: each application's syncs replayed (the history keeps 10).
    let mut argocd_state = ArgoCdState::default();
    for (repo, name) in names.iter().enumerate() {
        let mut app = ArgoApp::new(
            &format!("app-{repo}"),
            &format!("https://github.com/{name}.git"),
            Timestamp(now.0 - 400 * 86_400),
        );
        for event in events_from_github(&org, repo, PRODUCTION) {
            event.apply(&mut app);
        }
        argocd_state.applications.push(app);
    }
    let argocd = CicdHandle::start(
        argocd_state,
        Credentials::Bearer(ARGOCD_TOKEN.into()),
        CicdOptions::default(),
    )
    .await
    .unwrap();
    let mut extra = format!(
        "[argocd]\napi_url = {:?}\ntoken = {ARGOCD_TOKEN:?}\n",
        argocd.base_url()
    );
    for (repo, name) in names.iter().enumerate() {
        extra.push_str(&format!(
            "[[argocd.applications]]\nname = \"app-{repo}\"\nrepository = {name:?}\nenvironment = \"production\"\n"
        ));
    }
    let clock = Arc::new(ManualClock::new(now));
    let mut handle = daemon(
        config(&github, &dir.path().join("argocd.db"), &names, &extra),
        clock.clone(),
    )
    .await;
    let first = cycle(&mut handle, &argocd, 1).await;
    let idle = cycle(&mut handle, &argocd, 2).await;
    clock.set(Timestamp(now.0 + STEP_SECONDS));
    argocd.with_state_mut(|state| {
        for app in &mut state.applications {
            let revision = app
                .history
                .last()
                .map(|h| h.revision.clone())
                .unwrap_or_default();
            app.sync_succeeded(
                &revision,
                Timestamp(now.0 + 60),
                Timestamp(now.0 + 120),
                true,
            );
        }
    });
    let new = cycle(&mut handle, &argocd, 3).await;
    handle.shutdown().await.unwrap();
    print(
        "argocd",
        items,
        &[
            ("(a) first sync", first),
            ("(b) idle", idle),
            ("(c) one new sync per application", new),
        ],
    );

    // Jenkins: every build kept.
    let mut jenkins_state = JenkinsState::default();
    for (repo, _) in names.iter().enumerate() {
        let mut job = JenkinsJob::new(&format!("job-{repo}"), JobKind::Pipeline);
        job.builds = builds_from_github(&org, repo, PRODUCTION);
        job.next_build_number = job.builds.last().map_or(1, |b| b.number + 1);
        jenkins_state.insert(&["deploy"], FolderKind::Folder, job);
    }
    let builds: usize = names
        .iter()
        .enumerate()
        .map(|(repo, _)| {
            jenkins_state
                .job(&format!("deploy/job-{repo}"))
                .map_or(0, |j| j.builds.len())
        })
        .sum();
    let jenkins = CicdHandle::start(
        jenkins_state,
        Credentials::Basic {
            user: "dora".into(),
            token: JENKINS_TOKEN.into(),
        },
        CicdOptions::default(),
    )
    .await
    .unwrap();
    let mut extra = format!(
        "[jenkins]\nurl = {:?}\nuser = \"dora\"\ntoken = {JENKINS_TOKEN:?}\n",
        jenkins.base_url()
    );
    for (repo, name) in names.iter().enumerate() {
        extra.push_str(&format!(
            "[[jenkins.jobs]]\npath = \"deploy/job-{repo}\"\nrepository = {name:?}\nenvironment = \"production\"\n"
        ));
    }
    let clock = Arc::new(ManualClock::new(now));
    let mut handle = daemon(
        config(&github, &dir.path().join("jenkins.db"), &names, &extra),
        clock.clone(),
    )
    .await;
    let first = cycle(&mut handle, &jenkins, 1).await;
    let idle = cycle(&mut handle, &jenkins, 2).await;
    clock.set(Timestamp(now.0 + STEP_SECONDS));
    jenkins.with_state_mut(|state| {
        for repo in 0..items {
            let job = state.job_mut(&format!("deploy/job-{repo}")).unwrap();
            let checkouts = job
                .builds
                .last()
                .map(|b| b.checkouts.clone())
                .unwrap_or_default();
            let number = job.start_build((now.0 + 60) * 1000, checkouts);
            job.finish_build(number, BuildResult::Success, 60_000);
        }
    });
    let new = cycle(&mut handle, &jenkins, 3).await;
    handle.shutdown().await.unwrap();
    print(
        "jenkins",
        items,
        &[
            ("(a) first sync", first),
            ("(b) idle", idle),
            ("(c) one new build per job", new),
        ],
    );
    println!(
        "\n  ({builds} builds in all: a first sync reads allBuilds in pages of 100 back past \
         the lookback; later cycles ask for builds{{0,10}})"
    );
}
