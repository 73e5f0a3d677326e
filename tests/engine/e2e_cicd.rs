//! End to end against the truth for a mixed organisation: one repository's
//! deployments come from a simulated Argo CD, another's from a simulated
//! Jenkins, the rest from GitHub, and GitHub gives every repository's commits,
//! incidents and pull requests. The Argo CD and Jenkins simulators replay the
//! very deployments the simulated GitHub holds (`events_from_github`,
//! `builds_from_github`), so every DORA series the daemon exports must equal
//! what the brute-force reference (`tests/reference/`) computes from the
//! organisation as if GitHub gave them all: the same numbers whichever source
//! reported a deployment.
//!
//! Argo CD keeps only the last 10 syncs and the last operation, so its history
//! is replayed into the simulator step by step and the daemon polls between
//! steps (before a failed operation is overwritten, and within 10 syncs), as a
//! collector polling every few minutes would: incremental syncs, and a restart
//! of the daemon half way. The first sync starts inside the history, so the
//! lookback (and one base before it) is applied to both sources. With faults
//! (resets, `5xx`, `429`s) on all three servers the values are identical.

#[allow(unused_imports)]
use crate::reference;

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::Timestamp;
use dora_collector::sim::cicd::argocd::{events_from_github, ArgoApp, ArgoCdState, ArgoEvent};
use dora_collector::sim::cicd::faults::FaultOptions;
use dora_collector::sim::cicd::jenkins::{
    builds_from_github, FolderKind, JenkinsJob, JenkinsState, JobKind,
};
use dora_collector::sim::cicd::{CicdHandle, CicdOptions, Credentials};
use dora_collector::sim::{
    ChaosOptions, DeploySource, Org, OrgSpec, SimHandle, SimOptions, SimServer, PRODUCTION,
    SIM_TOKEN,
};
use dora_collector::sources::github::{RetryPolicy, SecondaryPace};
use reference::{Params, WindowParam};
use std::sync::Arc;
use std::time::Duration;

/// Argo CD's default history limit: the replay polls before it would drop a
/// sync not read yet.
const HISTORY_LIMIT: usize = 10;

const ARGOCD_TOKEN: &str = "argocd-e2e-token-0123456789";
const JENKINS_USER: &str = "dora";
const JENKINS_TOKEN: &str = "11e2e0000jenkins0token00000000aa";

/// Days of history of the organisations.
const DAYS: u32 = 40;

/// The lookback of the test whose first sync starts inside the history.
const SHORT_LOOKBACK_DAYS: i64 = 25;

/// The one series allowed to differ, upwards only (see `e2e_reference.rs`).
const HISTORY_DEPENDENT_DIAGNOSTIC: &str = "dora_diagnostics_unmatched_root_causes";

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
        min_secondary_wait: Duration::from_millis(50),
        max_rate_limit_wait: Duration::from_secs(30),
        // GitHub's secondary points over about a second, not a minute.
        github_secondary_pace: Some(SecondaryPace::GITHUB.scaled(60.0)),
        ..RetryPolicy::default()
    }
}

struct Mixed {
    org: Org,
    github: SimHandle,
    argocd: CicdHandle<ArgoCdState>,
    jenkins: CicdHandle<JenkinsState>,
    /// The Argo CD application's syncs still to replay.
    events: Vec<ArgoEvent>,
    config: Config,
    params: Params,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// A busy organisation. With a lookback shorter than its history it has no
/// incidents and no rework labels: the collector reads those back to the
/// lookback only and the reference all of them (as in `e2e_reference.rs`),
/// which is not these tests' subject.
fn busy(lookback_days: i64) -> OrgSpec {
    let full = lookback_days >= i64::from(DAYS);
    OrgSpec {
        days: DAYS,
        repositories: 5,
        failure_rate: 0.15,
        rollback_rate: 0.08,
        incident_rate: if full { 0.2 } else { 0.0 },
        hotfix_rate: if full { 0.15 } else { 0.0 },
        revert_rate: 0.05,
        ..OrgSpec::small(41)
    }
}

impl Mixed {
    /// The organisation with `faults` or not, first synced `lookback_days`
    /// back (windows 7d and the lookback).
    async fn start(faults: bool, lookback_days: i64) -> Mixed {
        let org = Org::generate(&busy(lookback_days));
        let now = org.now;
        let cutoff = now.0 - lookback_days * 86_400;
        let api_repos: Vec<usize> = (0..org.repos.len())
            .filter(|&i| matches!(org.repos[i].source, DeploySource::Deployments))
            .collect();
        assert!(api_repos.len() >= 3, "{api_repos:?}");
        let (argo_repo, jenkins_repo) = (api_repos[0], api_repos[1]);
        let argo_name = org.full_name(argo_repo);
        let jenkins_name = org.full_name(jenkins_repo);

        // Argo CD: the syncs started before the lookback's start happened
        // before the collector's first poll.
        let events = events_from_github(&org, argo_repo, PRODUCTION);
        assert!(events.iter().any(|e| matches!(e, ArgoEvent::Failed { .. })));
        let mut app = ArgoApp::new(
            "api-prod",
            &format!("https://github.com/{argo_name}-deploy.git"),
            Timestamp(cutoff - 100 * 86_400),
        );
        let (before, events): (Vec<ArgoEvent>, Vec<ArgoEvent>) =
            events.into_iter().partition(|e| e.started_at().0 < cutoff);
        for event in &before {
            event.apply(&mut app);
        }
        // Jenkins keeps every build: they are all there from the start.
        let mut job = JenkinsJob::new("deploy", JobKind::Freestyle);
        job.builds = builds_from_github(&org, jenkins_repo, PRODUCTION);
        job.next_build_number = job.builds.last().map_or(1, |b| b.number + 1);
        let mut jenkins_state = JenkinsState::default();
        jenkins_state.insert(&["teams", "payments"], FolderKind::Folder, job);

        let github_options = SimOptions {
            rate_limit: u64::MAX / 2,
            chaos: if faults {
                ChaosOptions {
                    seed: 5,
                    server_error_rate: 0.04,
                    bad_gateway_rate: 0.03,
                    too_many_requests_rate: 0.01,
                    reset_rate: 0.03,
                    truncated_rate: 0.02,
                    retry_after: Duration::from_secs(1),
                    ..ChaosOptions::default()
                }
            } else {
                ChaosOptions::default()
            },
            ..SimOptions::default()
        };
        let cicd = |seed: u64| CicdOptions {
            faults: if faults {
                FaultOptions {
                    seed,
                    reset_rate: 0.05,
                    server_error_rate: 0.05,
                    bad_gateway_rate: 0.04,
                    unavailable_rate: 0.04,
                    too_many_requests_rate: 0.02,
                    ..FaultOptions::default()
                }
            } else {
                FaultOptions::default()
            },
            ..CicdOptions::default()
        };
        let github = SimServer::start(org.clone(), github_options).await.unwrap();
        let argocd = CicdHandle::start(
            ArgoCdState {
                applications: vec![app],
            },
            Credentials::Bearer(ARGOCD_TOKEN.into()),
            cicd(6),
        )
        .await
        .unwrap();
        let jenkins = CicdHandle::start(
            jenkins_state,
            Credentials::Basic {
                user: JENKINS_USER.into(),
                token: JENKINS_TOKEN.into(),
            },
            CicdOptions {
                context_path: "/jenkins".into(),
                ..cicd(7)
            },
        )
        .await
        .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let params = Params {
            lookback_seconds: lookback_days * 86_400,
            windows: vec![WindowParam::days(7), WindowParam::days(lookback_days)],
            ..Params::for_org(&org)
        };
        let text = params.to_config_toml(
            github.base_url(),
            SIM_TOKEN,
            &dir.path().join("dora.db").display().to_string(),
            "127.0.0.1:0",
        ) + &format!(
            "\n[argocd]\napi_url = {:?}\ntoken = {ARGOCD_TOKEN:?}\n\
             [[argocd.applications]]\nname = \"api-prod\"\nrepository = {argo_name:?}\n\
             environment = \"production\"\n\
             [jenkins]\nurl = {:?}\nuser = {JENKINS_USER:?}\ntoken = {JENKINS_TOKEN:?}\n\
             [[jenkins.jobs]]\npath = \"teams/payments/deploy\"\nrepository = {jenkins_name:?}\n\
             environment = \"production\"\n",
            argocd.base_url(),
            jenkins.base_url(),
        );
        let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
            .unwrap_or_else(|problems| panic!("config invalid: {problems:?}\n{text}"));
        let params = Params::from_config(&config, Some(now));
        Mixed {
            clock: Arc::new(ManualClock::new(now)),
            org,
            github,
            argocd,
            jenkins,
            events,
            config,
            params,
            _dir: dir,
        }
    }

    async fn daemon(&self) -> DaemonHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = RunOptions {
            clock: self.clock.clone(),
            simulated: true,
            retry: fast_retries(),
            ..RunOptions::default()
        };
        daemon::start(self.config.clone(), listener, options)
            .await
            .expect("daemon starts")
    }
}

/// Waits for cycle `n` and checks that no repository failed.
async fn cycle(handle: &mut DaemonHandle, n: u64) {
    let report = handle.wait_for_cycles(n).await.expect("a cycle completes");
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "cycle {n}: {failures:?}");
}

/// Replays the Argo CD application's syncs, polling before a failed
/// operation is overwritten and before the history would drop an unread
/// sync; restarts the daemon half way; returns the last scrape.
async fn replay(mixed: &mut Mixed) -> String {
    let mut handle = mixed.daemon().await;
    let mut cycles = 1;
    cycle(&mut handle, cycles).await;
    let events = std::mem::take(&mut mixed.events);
    let half = events.len() / 2;
    let mut unread_syncs = 0;
    let mut pending_failure = false;
    let mut polls = 0;
    for (index, event) in events.iter().enumerate() {
        if pending_failure || unread_syncs + 1 > HISTORY_LIMIT - 1 {
            handle.sync_now();
            cycles += 1;
            cycle(&mut handle, cycles).await;
            polls += 1;
            unread_syncs = 0;
            pending_failure = false;
        }
        if index == half {
            handle.shutdown().await.expect("clean shutdown");
            handle = mixed.daemon().await;
            cycles = 1;
            cycle(&mut handle, cycles).await;
            unread_syncs = 0;
            pending_failure = false;
        }
        mixed.argocd.with_state_mut(|state| {
            let app = state.app_mut("api-prod", None).unwrap();
            event.apply(app);
        });
        match event {
            ArgoEvent::Succeeded { .. } => unread_syncs += 1,
            ArgoEvent::Failed { .. } => pending_failure = true,
            ArgoEvent::Started { .. } => {}
        }
    }
    handle.sync_now();
    cycles += 1;
    cycle(&mut handle, cycles).await;
    assert!(polls > 3, "an incremental replay: {polls} polls");
    let base = format!("http://{}", handle.local_addr());
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let scrape = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    handle.shutdown().await.expect("clean shutdown");
    scrape
}

fn assert_matches_reference(mixed: &Mixed, scrape: &str) {
    let now = mixed.org.now;
    assert_eq!(reference::snapshot_time(scrape), Some(now));
    let expected = reference::expected(&mixed.org, &mixed.params, now);
    let differences = reference::differences(scrape, &expected).expect("the scrape parses");
    let (allowed, others): (Vec<_>, Vec<_>) = differences
        .into_iter()
        .partition(|d| d.contains(HISTORY_DEPENDENT_DIAGNOSTIC));
    assert!(
        others.is_empty(),
        "/metrics differs from the reference:\n{}",
        others.join("\n")
    );
    for difference in allowed {
        let numbers: Vec<f64> = difference
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|t| t.parse().ok())
            .collect();
        assert!(
            matches!(numbers.as_slice(), [.., expected, got] if got >= expected),
            "{difference}"
        );
    }
    // Every source did its share.
    for (source, at_least) in [("argocd", 1.0), ("jenkins", 1.0), ("github", 1.0)] {
        let requests: f64 = scrape
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "dora_collector_api_requests_total{{source=\"{source}\""
                ))
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        assert!(requests >= at_least, "{source}: {requests}");
    }
    assert!(
        scrape.contains("dora_collector_argocd_history_gaps_total{application=\"api-prod\"} 0"),
        "no gap when polling within the limit"
    );
}

/// A lookback covering the whole history: every incident and label is read.
const FULL_LOOKBACK_DAYS: i64 = 90;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_organisation_matches_the_reference() {
    let mut mixed = Mixed::start(false, FULL_LOOKBACK_DAYS).await;
    let scrape = replay(&mut mixed).await;
    assert_matches_reference(&mixed, &scrape);
    // Jenkins: allBuilds on the first sync only, then the newest few builds.
    let records = mixed.jenkins.requests();
    assert!(records.iter().all(|r| r.status == 200), "{records:?}");
    let all_builds = records
        .iter()
        .filter(|r| r.target.contains("allBuilds"))
        .count();
    assert!(all_builds >= 1, "{records:?}");
    assert!(
        records
            .iter()
            .skip(all_builds)
            .all(|r| r.target.contains("tree=builds%5B") && r.target.ends_with("%7B0%2C10%7D")),
        "{records:?}"
    );
    assert!(records.iter().all(|r| r
        .target
        .starts_with("/jenkins/job/teams/job/payments/job/deploy/api/json")));
}

/// A first sync inside the history keeps the lookback and one base per
/// environment, whichever source it reads; later polls add only what is new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_inside_the_history_keeps_the_lookback_for_every_source() {
    let mut mixed = Mixed::start(false, SHORT_LOOKBACK_DAYS).await;
    assert!(
        mixed.argocd.with_state(|s| s.applications[0].history.len()) > 0,
        "Argo CD has syncs before the lookback"
    );
    let scrape = replay(&mut mixed).await;
    assert_matches_reference(&mixed, &scrape);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_every_server_give_identical_values() {
    let mut mixed = Mixed::start(true, FULL_LOOKBACK_DAYS).await;
    let scrape = replay(&mut mixed).await;
    assert_matches_reference(&mixed, &scrape);
    let argocd = mixed.argocd.fault_counts();
    let jenkins = mixed.jenkins.fault_counts();
    assert!(
        argocd.faults() > 0 && jenkins.faults() > 0,
        "{argocd:?} {jenkins:?}"
    );
    assert_eq!(argocd.throttled + jenkins.throttled, 0, "429s waited out");
    assert!(mixed.github.chaos_counts().faults() > 0);
}
