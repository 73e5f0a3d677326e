//! A wrong token, an unknown repository and an unreachable `api_url` each give one
//! clear error per repository, naming the repository or the URL and never the
//! token; the other repositories go on. Logs are captured at trace level and
//! checked for the token too.

use crate::scenario::tiny;
use crate::support::{
    capturing_subscriber, config, fast_retries, get, repo, workflow_repo, Captured, World,
};
use dora_collector::cli::sync_result;
use dora_collector::daemon::{self, CancellationToken, CycleReport, RepoOutcome};
use dora_collector::sim::{TokenUse, SIM_TOKEN};
use std::future::Future;

/// A token the simulator does not accept; it must appear nowhere.
const WRONG_TOKEN: &str = "ghp_WrongSecretToken0123456789abcdefXYZ";

/// Runs `test` on a current-thread runtime with every log line captured.
fn with_logs<F: Future<Output = ()>>(test: impl FnOnce(Captured) -> F) -> String {
    let captured = Captured::default();
    let subscriber = capturing_subscriber(&captured);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(test(captured.clone())));
    captured.text()
}

async fn sync_once(config: &dora_collector::config::Config, world: &World) -> CycleReport {
    daemon::sync_once_with(
        config,
        world.clock.clone(),
        &CancellationToken::new(),
        &|_: &dora_collector::daemon::RepoReport| {},
        fast_retries(),
    )
    .await
    .expect("the sync runs")
}

fn error_of<'a>(report: &'a CycleReport, repository: &str) -> Option<&'a str> {
    report
        .failures()
        .find(|(r, _)| r.as_str() == repository)
        .map(|(_, e)| e)
}

fn cli_message(report: &CycleReport) -> String {
    let error = sync_result(report, &mut Vec::new()).unwrap_err();
    let mut text = Vec::new();
    error.report(&mut text).unwrap();
    assert_eq!(error.exit_code(), dora_collector::cli::EXIT_FAILURE);
    String::from_utf8(text).unwrap()
}

#[test]
fn a_wrong_token_fails_each_repository_once_and_is_never_shown() {
    let logs = with_logs(|_| async {
        let world = World::new(tiny().org).await;
        let config = config(
            world.sim.base_url(),
            WRONG_TOKEN,
            &world.store_path(),
            &[
                repo("acme/api", "payments"),
                workflow_repo("acme/web", "web", "deploy.yml"),
            ],
        );
        let report = sync_once(&config, &world).await;
        for name in ["acme/api", "acme/web"] {
            let error = error_of(&report, name).expect("failed");
            assert!(error.contains("HTTP 401 Bad credentials"), "{error}");
            assert!(
                error.contains(&format!("{}/repos/{name}/", world.sim.base_url())),
                "{error}"
            );
            assert!(error.contains("github.token"), "{error}");
            assert!(!error.contains(WRONG_TOKEN), "{error}");
        }
        // One request per repository, then it stops: no cascade of errors.
        let requests = world.sim.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert!(requests.iter().all(|r| r.token == TokenUse::Invalid));
        let message = cli_message(&report);
        assert!(
            message.starts_with("error: 2 of 2 repositories failed to sync:\n"),
            "{message}"
        );
        assert!(
            message.contains("\n  acme/api: GitHub rejected the token"),
            "{message}"
        );
        assert!(!message.contains(WRONG_TOKEN), "{message}");
    });
    assert!(logs.contains("repository sync failed"), "{logs}");
    assert!(!logs.contains(WRONG_TOKEN), "the token was logged:\n{logs}");
    assert!(
        !logs.contains("WrongSecret"),
        "part of the token was logged:\n{logs}"
    );
}

#[test]
fn an_unknown_repository_fails_alone_naming_it() {
    let logs = with_logs(|_| async {
        let world = World::new(tiny().org).await;
        let config = world.config(&[
            repo("acme/api", "payments"),
            repo("acme/missing", "payments"),
            workflow_repo("acme/web", "web", "deploy.yml"),
        ]);
        let report = sync_once(&config, &world).await;
        let error = error_of(&report, "acme/missing").expect("failed");
        assert_eq!(
            error,
            format!(
                "not found (HTTP 404) at {}/repos/acme/missing/deployments?per_page=100: check \
                 the repository name and that the token can read it",
                world.sim.base_url()
            )
        );
        assert_eq!(report.failures().count(), 1);
        for (name, expected) in [("acme/api", true), ("acme/web", true)] {
            let synced = report.repositories.iter().any(|r| {
                r.repository.as_str() == name && matches!(r.outcome, RepoOutcome::Synced(_))
            });
            assert_eq!(synced, expected, "{name}");
        }
        let message = cli_message(&report);
        assert!(
            message.starts_with(
                "error: 1 of 3 repositories failed to sync:\n  acme/missing: not found (HTTP 404)"
            ),
            "{message}"
        );
        assert_eq!(message.lines().count(), 2, "{message}");
    });
    assert!(!logs.contains(SIM_TOKEN), "the token was logged:\n{logs}");
}

#[test]
fn an_unreachable_api_url_is_named_and_every_repository_reports_it() {
    let logs = with_logs(|_| async {
        let world = World::new(tiny().org).await;
        // A port nothing listens on any more.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let config = config(
            &url,
            WRONG_TOKEN,
            &world.store_path(),
            &[repo("acme/api", "payments"), repo("acme/web", "web")],
        );
        let report = sync_once(&config, &world).await;
        assert_eq!(report.failures().count(), 2);
        for name in ["acme/api", "acme/web"] {
            let error = error_of(&report, name).unwrap();
            assert!(
                error.starts_with(&format!(
                    "cannot reach the GitHub API at {url}/repos/{name}/deployments"
                )),
                "{error}"
            );
            assert!(error.contains("onnect"), "names the cause: {error}");
            assert!(!error.contains(WRONG_TOKEN), "{error}");
        }
        let message = cli_message(&report);
        eprintln!("{message}");
        assert!(!message.contains(WRONG_TOKEN));
    });
    assert!(!logs.contains(WRONG_TOKEN), "the token was logged:\n{logs}");
}

#[tokio::test]
async fn the_daemon_stays_unready_naming_the_failing_repository_and_counts_its_errors() {
    let world = World::new(tiny().org).await;
    let config = world.config(&[repo("acme/api", "payments"), repo("acme/missing", "web")]);
    let mut daemon = world.start(config).await;
    let report = daemon.wait_for_cycles(1).await.unwrap();
    assert_eq!(report.failures().count(), 1);
    let (status, reason) = get(&daemon, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        reason,
        "not ready: waiting for the first successful sync of acme/missing\n"
    );
    let (_, metrics) = get(&daemon, "/metrics").await;
    assert!(metrics.contains(
        "dora_collector_sync_errors_total{source=\"github\",repository=\"acme/missing\"} 1"
    ));
    assert!(metrics.contains(
        "dora_collector_api_requests_total{source=\"github\",endpoint=\"/repos/{owner}/{repo}/deployments\",status=\"404\"} 1"
    ));
    // The healthy repository's numbers are there.
    assert!(metrics.contains("dora_deployments_total{repository=\"acme/api\""));
    assert!(!metrics.contains(SIM_TOKEN));
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_spent_rate_limit_fails_fast_until_it_resets() {
    let world = World::new(tiny().org).await;
    world.sim.set_rate_limit_remaining(0);
    let config = world.config(&[
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]);
    let source = daemon::sources(&config).unwrap();
    let store = daemon::open_store(&config.storage.path).await.unwrap();
    let shutdown = CancellationToken::new();
    let report = daemon::sync_all(
        &source,
        &store,
        world.clock.as_ref(),
        &shutdown,
        &|_: &dora_collector::daemon::RepoReport| {},
    )
    .await;
    for (_, error) in report.failures() {
        assert!(
            error.starts_with("GitHub API rate limit exhausted (resource core) until "),
            "{error}"
        );
    }
    assert_eq!(report.failures().count(), 2);
    let spent = world.sim.rate_limit_violations();
    assert!(
        spent <= 2,
        "at most one refused request per repository: {spent}"
    );
    // Until the reset time, no request reaches the server.
    let again = daemon::sync_all(
        &source,
        &store,
        world.clock.as_ref(),
        &shutdown,
        &|_: &dora_collector::daemon::RepoReport| {},
    )
    .await;
    assert_eq!(again.failures().count(), 2);
    assert_eq!(world.sim.rate_limit_violations(), spent);
    let health = source[0].api_health();
    let core = health
        .rate_limits
        .iter()
        .find(|l| l.resource == "core")
        .unwrap();
    assert_eq!(core.remaining, 0);
}
