//! The daemon against the simulated GitLab when things go wrong: a chaos run
//! (10 % 5xx, 5 % 429 with `Retry-After`, 2 % connection resets) exports and
//! stores exactly what a fault-free run does, with no request sent into a spent
//! budget or a throttle; a tiny budget is waited out, never overdrawn; a wrong
//! token fails every project with a 401 that names `gitlab.token` and never the
//! token; a project that does not exist fails alone (404) while the others
//! sync.

use crate::support::{fast_retries, samples};
use dora_collector::config::Config;
use dora_collector::daemon::{self, CancellationToken, ManualClock, RepoOutcome, RunOptions};
use dora_collector::domain::RepoName;
use dora_collector::sim::gitlab::{
    GitlabGroup, GitlabHandle, GitlabOptions, GitlabServer, GroupSpec,
};
use dora_collector::sim::{ChaosOptions, OrgSpec};
use dora_collector::sources::github::RetryPolicy;
use dora_collector::store::{SqliteStore, Store, SyncBatch};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A token shaped like GitLab's, never to be seen in any output.
const CANARY: &str = "glpat-CanaryToken0123456789abcd";

/// A group big enough for every kind of fault to occur at the chaos rates.
fn group() -> GitlabGroup {
    GitlabGroup::generate(&GroupSpec {
        org: OrgSpec {
            owner: "gl-acme".to_owned(),
            repositories: 8,
            workflow_run_repositories: 2,
            incident_rate: 0.2,
            hotfix_rate: 0.1,
            ..OrgSpec::small(21)
        },
        live_projects: 2,
    })
}

/// The configuration of `group`'s projects (plus `extra` paths) at `api_url`.
fn config_text(
    group: &GitlabGroup,
    api_url: &str,
    token: &str,
    store: &Path,
    extra: &[&str],
) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [gitlab]\napi_url = {api_url:?}\ntoken = {token:?}\n",
        store.display().to_string()
    );
    let paths = group
        .projects
        .iter()
        .map(|p| (p.repository(), &p.deploys))
        .map(|(path, deploys)| {
            let from = match deploys {
                dora_collector::sim::gitlab::GitlabDeploySource::Pipelines { git_ref } => format!(
                    "deployments = {{ from = \"pipelines\", ref = {git_ref:?}, environment = \"production\" }}\n"
                ),
                dora_collector::sim::gitlab::GitlabDeploySource::Deployments => String::new(),
            };
            (path, from)
        })
        .chain(extra.iter().map(|p| ((*p).to_owned(), String::new())));
    for (path, from) in paths {
        text.push_str(&format!(
            "[[gitlab.projects]]\npath = {path:?}\nteam = \"t\"\n{from}"
        ));
    }
    text
}

fn parse(text: &str) -> Config {
    Config::from_toml_str(text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("test config invalid: {problems:?}\n{text}"))
}

struct Run {
    metrics: String,
    stored: Vec<SyncBatch>,
}

/// The daemon over `group` served with `options` until its first cycle
/// completes (every project must sync).
async fn run(
    group: &GitlabGroup,
    options: GitlabOptions,
    retry: RetryPolicy,
) -> (Run, GitlabHandle) {
    let gitlab = GitlabServer::start(group.clone(), options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let config = parse(&config_text(
        group,
        gitlab.api_url(),
        &gitlab.token(),
        &store,
        &[],
    ));
    let repositories: Vec<RepoName> = config.synced_repositories();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = RunOptions {
        clock: Arc::new(ManualClock::new(group.org.now)),
        simulated: true,
        retry,
        ..RunOptions::default()
    };
    let mut handle = daemon::start(config, listener, options).await.unwrap();
    let report = handle.wait_for_cycles(1).await.expect("a cycle completes");
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    handle.shutdown().await.expect("clean shutdown");
    let store = SqliteStore::open(&store).unwrap();
    let stored = repositories
        .iter()
        .map(|r| store.read_repository(r).unwrap())
        .collect();
    (Run { metrics, stored }, gitlab)
}

/// Every stored row (events, cursors but their `updated_at`), as text.
fn rows(stored: &[SyncBatch]) -> std::collections::BTreeSet<String> {
    let mut rows = std::collections::BTreeSet::new();
    for b in stored {
        rows.extend(b.deployments.iter().map(|x| format!("{x:?}")));
        rows.extend(b.commits.iter().map(|x| format!("{} {x:?}", b.repository)));
        rows.extend(b.compares.iter().map(|x| format!("{} {x:?}", b.repository)));
        rows.extend(b.incidents.iter().map(|x| format!("{x:?}")));
        rows.extend(b.pull_requests.iter().map(|x| format!("{x:?}")));
        rows.extend(
            b.production_environments
                .iter()
                .map(|x| format!("{} {x:?}", b.repository)),
        );
        rows.extend(
            b.cursors
                .iter()
                .map(|(key, c)| format!("{key:?} {:?} {:?}", c.since, c.opaque)),
        );
    }
    rows
}

fn dora_values(metrics: &str) -> BTreeMap<String, f64> {
    samples(metrics, true)
}

fn gitlab_health(metrics: &str, family: &str, reason: &str) -> f64 {
    samples(metrics, false)
        .iter()
        .filter(|(k, _)| {
            k.starts_with(family) && k.contains("source=\"gitlab\"") && k.contains(reason)
        })
        .map(|(_, v)| *v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaos_run_exports_and_stores_exactly_what_a_fault_free_run_does() {
    let group = group();
    let unlimited = || GitlabOptions {
        rate_limit: u64::MAX / 2,
        ..GitlabOptions::default()
    };
    let (clean, clean_gitlab) = run(&group, unlimited(), fast_retries()).await;
    let clean_requests = clean_gitlab.request_counts().total;
    assert!(clean_requests > 100, "{clean_requests} requests");
    let chaos = ChaosOptions {
        seed: 11,
        server_error_rate: 0.05,
        bad_gateway_rate: 0.05,
        too_many_requests_rate: 0.05,
        reset_rate: 0.02,
        retry_after: Duration::from_secs(1),
        ..ChaosOptions::default()
    };
    let retry = fast_retries();
    assert_eq!(retry.max_concurrency, 1);
    let (faulty, gitlab) = run(
        &group,
        GitlabOptions {
            chaos,
            ..unlimited()
        },
        retry,
    )
    .await;
    let counts = gitlab.chaos_counts();
    assert!(
        counts.server_error > 0 && counts.bad_gateway > 0,
        "{counts:?}"
    );
    assert!(counts.too_many_requests > 0, "{counts:?}");
    assert!(counts.reset > 0, "{counts:?}");
    // Nothing sent into a throttle or a spent budget.
    assert_eq!(gitlab.throttle_violations(), 0, "{counts:?}");
    assert_eq!(gitlab.rate_limit_violations(), 0);

    let expected = dora_values(&clean.metrics);
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(dora_values(&faulty.metrics), expected);
    let (got, want) = (rows(&faulty.stored), rows(&clean.stored));
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );

    // The health metrics tell the story.
    let retried = |reason: &str| {
        gitlab_health(
            &faulty.metrics,
            "dora_collector_api_retries_total",
            &format!("reason=\"{reason}\""),
        )
    };
    assert_eq!(
        retried("server_error") as u64,
        counts.server_error + counts.bad_gateway
    );
    assert_eq!(retried("rate_limit") as u64, counts.too_many_requests);
    assert_eq!(retried("network") as u64, counts.reset);
    let waited = gitlab_health(
        &faulty.metrics,
        "dora_collector_rate_limit_wait_seconds_total",
        "",
    );
    assert!(waited >= 1.0, "each 429 is waited out: {waited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_budget_is_waited_out_never_overdrawn() {
    let group = GitlabGroup::generate(&GroupSpec {
        org: OrgSpec {
            owner: "gl-acme".to_owned(),
            repositories: 2,
            workflow_run_repositories: 1,
            days: 10,
            ..OrgSpec::small(3)
        },
        live_projects: 1,
    });
    let unlimited = GitlabOptions {
        rate_limit: u64::MAX / 2,
        ..GitlabOptions::default()
    };
    let (clean, clean_gitlab) = run(&group, unlimited, fast_retries()).await;
    let needed = clean_gitlab.request_counts().total;
    let budget = 4;
    assert!(needed > 2 * budget, "{needed} requests");
    let limited_options = GitlabOptions {
        rate_limit: budget,
        rate_limit_window: Duration::from_secs(1),
        ..GitlabOptions::default()
    };
    let (limited, gitlab) = run(&group, limited_options, fast_retries()).await;
    assert_eq!(gitlab.rate_limit_violations(), 0);
    assert_eq!(dora_values(&limited.metrics), dora_values(&clean.metrics));
    assert_eq!(rows(&limited.stored), rows(&clean.stored));
    let waited = gitlab_health(
        &limited.metrics,
        "dora_collector_rate_limit_wait_seconds_total",
        "",
    );
    assert!(waited > 0.0, "the budget was waited for: {waited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_a_401_and_a_missing_project_fails_alone() {
    let group = GitlabGroup::generate(&GroupSpec::small(2));
    let gitlab = GitlabServer::start(group.clone(), GitlabOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let sync = |config: Config| async move {
        daemon::sync_once_with(
            &config,
            Arc::new(ManualClock::new(group.org.now)),
            &CancellationToken::new(),
            &|_: &dora_collector::daemon::RepoReport| {},
            fast_retries(),
        )
        .await
        .unwrap()
    };

    let wrong = parse(&config_text(&group, gitlab.api_url(), CANARY, &store, &[]));
    let report = sync(wrong).await;
    assert_eq!(report.repositories.len(), group.projects.len());
    for repository in &report.repositories {
        let RepoOutcome::Failed(error) = &repository.outcome else {
            panic!("{repository:?}");
        };
        assert!(error.contains("HTTP 401 401 Unauthorized"), "{error}");
        assert!(error.contains("gitlab.token"), "{error}");
        assert!(!error.contains(CANARY), "{error}");
    }

    let missing = "gl-acme/platform/does-not-exist";
    let config = parse(&config_text(
        &group,
        gitlab.api_url(),
        &gitlab.token(),
        &store,
        &[missing],
    ));
    let report = sync(config).await;
    for repository in &report.repositories {
        match (
            &repository.outcome,
            repository.repository.as_str() == missing,
        ) {
            (RepoOutcome::Failed(error), true) => {
                assert!(error.contains("HTTP 404"), "{error}");
                assert!(error.contains("gitlab.projects[].path"), "{error}");
                assert!(
                    error.contains("gl-acme%2Fplatform%2Fdoes-not-exist"),
                    "{error}"
                );
            }
            (RepoOutcome::Synced(_), false) => {}
            (outcome, _) => panic!("{}: {outcome:?}", repository.repository),
        }
    }
}
