//! A hand-written fake GitHub that misbehaves: odd and hostile items (unknown enum
//! values, nulls, wrong types, JSON nested too deeply) are skipped and counted, in
//! the sync report and in `dora_collector_skipped_items_total`; null optional
//! fields are read;
//! bodies that are too large, not JSON, or that link away from `api_url` fail the
//! repository with one clear error, and a request that never answers does not
//! hold up shutdown. Nothing panics.
//!
//! And a hostile network against the real binary on 127.0.0.1 (issue 19): 2,000
//! idle and byte-by-byte connections under a 1,024-descriptor limit do not starve
//! `/metrics` or exhaust descriptors; a half-sent request, idle connections and a
//! request that never ends do not hold up shutdown past its grace period; SIGHUP
//! is logged and ignored; a store that cannot record syncs keeps `/readyz` at 503
//! saying why.

use crate::support::{
    config, config_text, fast_retries, free_port, live_simulator, repo, Running, World, BINARY,
};
use axum::extract::Path as UrlPath;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dora_collector::daemon::server::{MAX_CONNECTIONS, RESERVED_DESCRIPTORS};
use dora_collector::daemon::{self, CancellationToken, RepoOutcome};
use dora_collector::domain::RepoName;
use dora_collector::sim::SIM_TOKEN;
use dora_collector::sources::github::MAX_RESPONSE_BYTES;
use dora_collector::store::{SqliteStore, Store};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const NOW: &str = "2025-01-15T11:00:00Z";

async fn deployments(UrlPath((_, name)): UrlPath<(String, String)>) -> Response {
    match name.as_str() {
        "odd" => axum::Json(serde_json::json!([
            {"id": 1, "sha": "not-a-sha", "environment": "production", "created_at": NOW},
            {"id": 2, "sha": SHA, "environment": "production", "created_at": NOW, "extra": {"a": [1]}},
            42,
            null,
            {"id": 3, "sha": SHA, "environment": "production", "created_at": "last tuesday"}
        ]))
        .into_response(),
        "huge" => {
            let body = format!("[{}]", "0,".repeat(MAX_RESPONSE_BYTES / 2 + 1) + "0");
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        "html" => ([(header::CONTENT_TYPE, "text/html")], "<html>Unicorn!</html>").into_response(),
        "away" => (
            [(header::LINK, "<http://elsewhere.example/repos/acme/away/deployments?page=2>; rel=\"next\"")],
            axum::Json(serde_json::json!([])),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn statuses() -> Response {
    axum::Json(serde_json::json!([
        {"state": "exploded", "created_at": NOW},
        {"state": "success", "created_at": NOW},
        {"state": "in_progress"}
    ]))
    .into_response()
}

async fn empty() -> Response {
    axum::Json(serde_json::json!([])).into_response()
}

/// Serves `router` on 127.0.0.1:0; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn odd_items_are_skipped_and_odd_bodies_fail_one_repository_each() {
    let router = Router::new()
        .route("/repos/{owner}/{name}/deployments", get(deployments))
        .route(
            "/repos/{owner}/{name}/deployments/{id}/statuses",
            get(statuses),
        )
        .route("/repos/{owner}/{name}/issues", get(empty))
        .route("/repos/{owner}/{name}/pulls", get(empty));
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let names = ["acme/odd", "acme/huge", "acme/html", "acme/away"];
    let repos: Vec<_> = names.iter().map(|n| repo(n, "t")).collect();
    let config = config(&url, "token", &world.store_path(), &repos);
    let report = daemon::sync_once_with(
        &config,
        world.clock.clone(),
        &CancellationToken::new(),
        &|_: &dora_collector::daemon::RepoReport| {},
        fast_retries(),
    )
    .await
    .unwrap();

    let RepoOutcome::Synced(odd) = &report.repositories[0].outcome else {
        panic!("acme/odd syncs: {report:?}");
    };
    // Four unreadable deployments and two unreadable statuses.
    assert_eq!(odd.skipped_items, 6, "{odd:?}");
    assert_eq!(odd.applied.deployments.inserted, 1, "{odd:?}");
    let failure = |index: usize| match &report.repositories[index].outcome {
        RepoOutcome::Failed(error) => error.clone(),
        other => panic!("{}: {other:?}", names[index]),
    };
    assert_eq!(
        failure(1),
        format!(
            "the response from {url}/repos/acme/huge/deployments?per_page=100 is larger than \
             {MAX_RESPONSE_BYTES} bytes; refusing to read it"
        )
    );
    let html = failure(2);
    assert!(
        html.starts_with(&format!(
            "unexpected response from {url}/repos/acme/html/deployments?per_page=100: not JSON"
        )),
        "{html}"
    );
    assert_eq!(
        failure(3),
        "the next page of a list points outside github.api_url: \
         http://elsewhere.example/repos/acme/away/deployments?page=2"
    );

    let store = SqliteStore::open(world.store_path()).unwrap();
    let stored = store
        .read_repository(&RepoName::parse("acme/odd").unwrap())
        .unwrap();
    assert_eq!(stored.deployments.len(), 1);
    assert_eq!(stored.deployments[0].id, 2);
    // A failed repository advanced no cursor.
    let huge = store
        .read_repository(&RepoName::parse("acme/huge").unwrap())
        .unwrap();
    assert!(huge.cursors.is_empty() && huge.deployments.is_empty());
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_request_that_never_answers() {
    let arrived = Arc::new(Notify::new());
    let notify = Arc::clone(&arrived);
    let router = Router::new().route(
        "/repos/{owner}/{name}/deployments",
        get(move || {
            let notify = Arc::clone(&notify);
            async move {
                notify.notify_one();
                std::future::pending::<()>().await;
                StatusCode::OK
            }
        }),
    );
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let config = config(
        &url,
        "token",
        &world.store_path(),
        &[repo("acme/slow", "t")],
    );
    let daemon = world.start(config).await;
    arrived.notified().await;
    // The request is in flight; shutting down cancels it between store calls.
    daemon.shutdown().await.unwrap();
    let store = SqliteStore::open(world.store_path()).unwrap();
    assert!(
        store.sync_status().unwrap().is_empty(),
        "a cancelled sync is not recorded"
    );
    assert_eq!(store.counts().unwrap().cursors, 0);
}

/// A compare of 150 commits served 100 per page by `page` number, without `Link`.
async fn compare_without_link(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let commit = |n: usize| {
        serde_json::json!({
            "sha": format!("{n:040x}"),
            "commit": {"author": {"date": NOW}, "message": "change"},
            "parents": [{"sha": format!("{:040x}", n.max(1) - 1)}],
        })
    };
    let range = match page {
        1 => 1..101,
        2 => 101..151,
        _ => 0..0,
    };
    axum::Json(serde_json::json!({
        "status": "ahead",
        "total_commits": 150,
        "commits": range.map(commit).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn two_deployments() -> Response {
    axum::Json(serde_json::json!([
        {"id": 2, "sha": format!("{:040x}", 150), "environment": "production", "created_at": "2025-01-15T11:00:00Z"},
        {"id": 1, "sha": format!("{:040x}", 0), "environment": "production", "created_at": "2025-01-15T10:00:00Z"}
    ]))
    .into_response()
}

async fn success_at(UrlPath((_, _, id)): UrlPath<(String, String, u64)>) -> Response {
    let at = if id == 1 {
        "2025-01-15T10:01:00Z"
    } else {
        "2025-01-15T11:01:00Z"
    };
    axum::Json(serde_json::json!([{"state": "success", "created_at": at}])).into_response()
}

#[tokio::test]
async fn a_compare_without_link_headers_is_paged_by_number() {
    let router = Router::new()
        .route("/repos/{owner}/{name}/deployments", get(two_deployments))
        .route(
            "/repos/{owner}/{name}/deployments/{id}/statuses",
            get(success_at),
        )
        .route(
            "/repos/{owner}/{name}/compare/{basehead}",
            get(compare_without_link),
        )
        .route("/repos/{owner}/{name}/issues", get(empty))
        .route("/repos/{owner}/{name}/pulls", get(empty));
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let config = config(
        &url,
        "token",
        &world.store_path(),
        &[repo("acme/paged", "t")],
    );
    let report = daemon::sync_once(
        &config,
        world.clock.clone(),
        &CancellationToken::new(),
        &|_: &dora_collector::daemon::RepoReport| {},
    )
    .await
    .unwrap();
    assert_eq!(report.failures().count(), 0, "{report:?}");
    let store = SqliteStore::open(world.store_path()).unwrap();
    let stored = store
        .read_repository(&RepoName::parse("acme/paged").unwrap())
        .unwrap();
    assert_eq!(stored.compares.len(), 1);
    assert_eq!(stored.compares[0].commits.len(), 150);
}

/// JSON nested this deep: far beyond `serde_json`'s recursion limit (128), and
/// deep enough to overflow a stack if anything parsed it recursively.
const DEEP_NESTING: usize = 100_000;

async fn hostile_deployments(UrlPath((_, name)): UrlPath<(String, String)>) -> Response {
    if name == "huge" {
        let body = format!("[{}]", "0,".repeat(MAX_RESPONSE_BYTES / 2 + 1) + "0");
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let deep = format!("{}{}", "[".repeat(DEEP_NESTING), "]".repeat(DEEP_NESTING));
    let body = format!(
        r#"[
        {{"id": 10, "sha": "{SHA}", "environment": "production", "created_at": "{NOW}"}},
        null,
        {{"id": 11, "sha": null, "environment": "production", "created_at": "{NOW}"}},
        {{"id": 12, "sha": "{SHA}", "environment": "production", "created_at": "{NOW}", "payload": {deep}}},
        {{"id": 13, "sha": "{SHA}", "environment": "production", "created_at": "{NOW}",
          "description": null, "creator": null, "task": null, "payload": null}},
        {{"id": 14, "environment": "production", "created_at": "{NOW}"}},
        {{"id": "fifteen", "sha": "{SHA}", "environment": "production", "created_at": "{NOW}"}}
        ]"#
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Deployment 10 succeeded, 13 failed; each list has an unknown state and a null.
async fn hostile_statuses(UrlPath((_, _, id)): UrlPath<(String, String, u64)>) -> Response {
    let last = if id == 10 { "success" } else { "failure" };
    axum::Json(serde_json::json!([
        {"state": "exploded", "created_at": NOW},
        null,
        {"state": last, "created_at": NOW, "description": null, "creator": null}
    ]))
    .into_response()
}

async fn hostile_issues(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if query.get("state").map(String::as_str) == Some("open") {
        return axum::Json(serde_json::json!([])).into_response();
    }
    axum::Json(serde_json::json!([
        null,
        {"number": null, "created_at": NOW, "updated_at": NOW},
        {"number": 8, "state": "haunted", "created_at": NOW, "updated_at": NOW,
         "closed_at": null, "body": null, "labels": [{"name": "incident"}]},
        {"number": 9, "created_at": "soon", "updated_at": NOW, "labels": []}
    ]))
    .into_response()
}

async fn hostile_pulls() -> Response {
    axum::Json(serde_json::json!([null, "a pull request"])).into_response()
}

#[tokio::test]
async fn hostile_items_are_skipped_and_counted_in_the_metric_and_oversized_bodies_fail_one_repository(
) {
    let router = Router::new()
        .route(
            "/repos/{owner}/{name}/deployments",
            get(hostile_deployments),
        )
        .route(
            "/repos/{owner}/{name}/deployments/{id}/statuses",
            get(hostile_statuses),
        )
        .route("/repos/{owner}/{name}/issues", get(hostile_issues))
        .route("/repos/{owner}/{name}/pulls", get(hostile_pulls));
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let config = config(
        &url,
        "token",
        &world.store_path(),
        &[repo("acme/odd", "t"), repo("acme/huge", "t")],
    );
    let mut daemon = world.start(config).await;
    let report = daemon.wait_for_cycles(1).await.expect("a cycle completes");
    let RepoOutcome::Synced(odd) = &report.repositories[0].outcome else {
        panic!("acme/odd syncs: {report:?}");
    };
    // Deployments: a null, a null sha, too deep, no sha, a string id (5); two
    // statuses lists with an unknown state and a null each (4); issues: a null, a
    // null number, an unreadable date (3); pulls: a null and a string (2).
    assert_eq!(odd.skipped_items, 14, "{odd:?}");
    let RepoOutcome::Failed(huge) = &report.repositories[1].outcome else {
        panic!("acme/huge fails: {report:?}");
    };
    assert!(huge.contains("is larger than"), "{huge}");

    let (status, page) = crate::support::get(&daemon, "/metrics").await;
    assert_eq!(status, 200);
    let series = |repository: &str| {
        format!(
            "dora_collector_skipped_items_total{{source=\"github\",repository=\"{repository}\"}}"
        )
    };
    assert_eq!(
        crate::support::value(&page, &series("acme/odd")),
        Some(14.0),
        "{page}"
    );
    assert_eq!(
        crate::support::value(&page, &series("acme/huge")),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        crate::support::value(
            &page,
            "dora_collector_sync_errors_total{source=\"github\",repository=\"acme/huge\"}"
        ),
        Some(1.0)
    );

    // What could be read is stored: deployments 10 (succeeded) and 13 (failed,
    // its null optional fields ignored), incident 8 (null body and closed_at).
    let store = SqliteStore::open(world.store_path()).unwrap();
    let stored = store
        .read_repository(&RepoName::parse("acme/odd").unwrap())
        .unwrap();
    let ids: Vec<u64> = stored.deployments.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![10, 13]);
    let incidents: Vec<u64> = stored.incidents.iter().map(|i| i.number).collect();
    assert_eq!(incidents, vec![8]);
    daemon.shutdown().await.unwrap();
}

/// The descriptor limit the attacked daemon runs under: the usual default soft
/// limit (systemd's and many distributions').
const DAEMON_DESCRIPTOR_LIMIT: u64 = 1024;

/// The attacker's connections: half idle, half sending a request a byte at a time.
const ATTACK_CONNECTIONS: usize = 2000;

/// Descriptors the test process needs for the attack, besides its own.
const TEST_DESCRIPTORS: u64 = ATTACK_CONNECTIONS as u64 + 512;

/// How long the attacker waits for one connection to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between two bytes of each byte-by-byte connection.
const TRICKLE_INTERVAL: Duration = Duration::from_millis(200);

/// How long the daemon may take to log a signal it ignores (a loaded machine).
const SIGNAL_HANDLED_WITHIN: Duration = Duration::from_secs(10);

/// Scrapes of `/metrics` made during the attack, one new connection each, and the
/// time each may take (a bound, not a performance assertion).
const SCRAPES: usize = 10;
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The shutdown grace period of the daemons in these tests, and the margin allowed
/// for the process to exit after it (runtime teardown).
const GRACE: Duration = Duration::from_secs(4);
const EXIT_MARGIN: Duration = Duration::from_secs(3);

/// The request a byte-by-byte client sends, never finishing it in time.
const SLOW_REQUEST: &[u8] =
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

/// A `serve` configuration against `api_url` on `port` with a store in `dir`.
fn serve_config(
    dir: &Path,
    api_url: &str,
    port: u16,
    repos: &[crate::support::Repo<'_>],
) -> std::path::PathBuf {
    let text = config_text(api_url, "${GITHUB_TOKEN}", &dir.join("dora.db"), repos, "").replace(
        "listen = \"127.0.0.1:0\"",
        &format!(
            "listen = \"127.0.0.1:{port}\"\nshutdown_grace_period = \"{}s\"",
            GRACE.as_secs()
        ),
    );
    let path = dir.join("dora.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `serve --config CONFIG`, logging at info, with the simulator's token.
fn serve_command(config: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("GITHUB_TOKEN", SIM_TOKEN)
        .env("RUST_LOG", "info");
    command
}

/// The descriptors process `pid` has open.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// Raises this process's soft descriptor limit to at least `wanted` (up to the
/// hard limit); returns the limit now.
fn raise_descriptor_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls read or write exactly one valid `rlimit`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    limit.rlim_cur
}

/// Whether the tests run as root (for whom file permissions do not apply).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// 2,000 connections, half idle and half trickling a request a byte at a time,
/// against the real binary under a 1,024-descriptor limit: `/metrics` answers every
/// scrape on a new connection, the daemon's descriptors stay far below its limit
/// (no `Too many open files`), and SIGTERM still stops it within the grace period
/// while the attacker's connections are open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_byte_by_byte_connections_cannot_starve_metrics_or_exhaust_descriptors() {
    let own = raise_descriptor_limit(TEST_DESCRIPTORS);
    assert!(
        own >= TEST_DESCRIPTORS,
        "the test needs {TEST_DESCRIPTORS} file descriptors; the hard limit allows {own}"
    );
    let sim = live_simulator(SIM_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let names: Vec<String> =
        sim.with_org(|org| (0..org.repos.len()).map(|i| org.full_name(i)).collect());
    let repos: Vec<_> = names
        .iter()
        .zip(sim.with_org(|org| {
            org.repos
                .iter()
                .map(|r| r.workflow().is_some())
                .collect::<Vec<_>>()
        }))
        .map(|(name, workflow)| {
            if workflow {
                crate::support::workflow_repo(name, "t", dora_collector::sim::DEPLOY_WORKFLOW_FILE)
            } else {
                repo(name, "t")
            }
        })
        .collect();
    let config = serve_config(dir.path(), sim.base_url(), port, &repos);
    // `ulimit -n` in the shell that execs the daemon: soft and hard limit 1,024.
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            &format!("ulimit -n {DAEMON_DESCRIPTOR_LIMIT} && exec \"$0\" \"$@\""),
        ])
        .arg(BINARY)
        .args(["serve", "--config"])
        .arg(&config)
        .env("GITHUB_TOKEN", SIM_TOKEN)
        .env("RUST_LOG", "info");
    let mut daemon = Running::spawn(command, dir.path(), "serve");
    let base = format!("http://127.0.0.1:{port}");
    daemon
        .wait_for(&format!("{base}/readyz"), |status, _| status == 200)
        .await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "{limits}"
    );
    let idle_descriptors = open_descriptors(daemon.pid());

    // The attack.
    let started = Instant::now();
    let mut idle = Vec::new();
    let mut slow = Vec::new();
    for i in 0..ATTACK_CONNECTIONS {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
            .await
            .unwrap_or_else(|_| panic!("connection {i} was not accepted in {CONNECT_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        if i % 2 == 0 {
            idle.push(stream);
        } else {
            slow.push(stream);
        }
    }
    let connected_in = started.elapsed();
    let trickling = CancellationToken::new();
    let trickle = tokio::spawn({
        let trickling = trickling.clone();
        async move {
            for byte in SLOW_REQUEST.iter().cycle() {
                for stream in &mut slow {
                    // Closed by the daemon (evicted or timed out): ignored.
                    let _ = stream.try_write(std::slice::from_ref(byte));
                }
                tokio::select! {
                    () = trickling.cancelled() => break,
                    () = tokio::time::sleep(TRICKLE_INTERVAL) => {}
                }
            }
            slow
        }
    });

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(SCRAPE_TIMEOUT)
        .build()
        .unwrap();
    let mut slowest = Duration::ZERO;
    let mut most_descriptors = open_descriptors(daemon.pid());
    for scrape in 0..SCRAPES {
        let asked = Instant::now();
        let response = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "scrape {scrape} failed under attack: {e}\n{}",
                    daemon.stderr()
                )
            });
        assert_eq!(response.status(), 200, "scrape {scrape}");
        let body = response.text().await.unwrap();
        assert!(body.contains("dora_build_info"), "scrape {scrape}: {body}");
        slowest = slowest.max(asked.elapsed());
        most_descriptors = most_descriptors.max(open_descriptors(daemon.pid()));
        tokio::time::sleep(TRICKLE_INTERVAL).await;
    }
    let stderr = daemon.stderr();
    eprintln!(
        "{ATTACK_CONNECTIONS} connections opened in {connected_in:?}; {SCRAPES} scrapes, the \
         slowest {slowest:?}; daemon descriptors: {idle_descriptors} before, at most \
         {most_descriptors} during (limit {DAEMON_DESCRIPTOR_LIMIT})"
    );
    assert!(
        most_descriptors <= MAX_CONNECTIONS + RESERVED_DESCRIPTORS,
        "{most_descriptors} descriptors"
    );
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(!stderr.contains("cannot accept a connection"), "{stderr}");

    // Shutdown, with the attacker's connections still open.
    daemon.signal("TERM");
    let (status, took, daemon) = daemon.wait_exit(GRACE + EXIT_MARGIN).await;
    eprintln!("stopped {took:?} after SIGTERM with the attack on");
    assert!(status.success(), "{status:?}\n{}", daemon.stderr());
    assert!(took < GRACE, "{took:?}");
    trickling.cancel();
    drop(trickle.await.unwrap());
    drop(idle);
}

/// `serve` with a half-sent request (the head never finished), an idle connection
/// and a kept-alive one open: a 100 KB header is refused with 431, SIGHUP is logged
/// and ignored (it keeps serving), and SIGTERM stops it with status 0 within the
/// grace period, closing them all.
#[tokio::test]
async fn a_half_sent_request_does_not_hold_up_shutdown_and_sighup_is_ignored() {
    let sim = live_simulator(SIM_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let names: Vec<String> = sim.with_org(|org| {
        (0..org.repos.len())
            .filter(|i| org.repos[*i].workflow().is_none())
            .map(|i| org.full_name(i))
            .collect()
    });
    let repos: Vec<_> = names.iter().map(|name| repo(name, "t")).collect();
    let config = serve_config(dir.path(), sim.base_url(), port, &repos);
    let mut daemon = Running::spawn(serve_command(&config), dir.path(), "serve");
    let base = format!("http://127.0.0.1:{port}");
    daemon
        .wait_for(&format!("{base}/readyz"), |status, _| status == 200)
        .await;

    let mut half_sent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    half_sent
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut kept_alive = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let read = kept_alive.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200 OK"));

    // A 100 KB header: refused (431), and the daemon keeps serving.
    let mut big = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    // The daemon may close before reading it all.
    let _ = big.write_all(head.as_bytes()).await;
    let read = big.read(&mut answer).await.unwrap();
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 431 Request Header Fields Too Large"),
        "{}",
        String::from_utf8_lossy(&answer[..read])
    );

    // Each SIGHUP once the one before was handled: two signals sent before
    // the process handles the first are delivered as one (POSIX signals do not
    // queue), which a loaded machine makes likely.
    let ignored = "SIGHUP received and ignored: the configuration is read only at start";
    for sent in 1..=2 {
        daemon.signal("HUP");
        let deadline = std::time::Instant::now() + SIGNAL_HANDLED_WITHIN;
        while daemon.stderr().matches(ignored).count() < sent
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            daemon.stderr().matches(ignored).count(),
            sent,
            "{}",
            daemon.stderr()
        );
    }
    let (status, _) = daemon
        .wait_for(&format!("{base}/healthz"), |status, _| status == 200)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(TRICKLE_INTERVAL).await;
    assert!(
        daemon.is_running(),
        "SIGHUP stopped it:\n{}",
        daemon.stderr()
    );

    daemon.signal("TERM");
    let (status, took, daemon) = daemon.wait_exit(GRACE + EXIT_MARGIN).await;
    eprintln!("stopped {took:?} after SIGTERM with a half-sent request open");
    let stderr = daemon.stderr();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(took < GRACE, "{took:?}\n{stderr}");
    assert!(stderr.contains("the HTTP server has stopped"), "{stderr}");
    // Every connection was closed by the daemon.
    for stream in [&mut half_sent, &mut idle, &mut kept_alive] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(EXIT_MARGIN, stream.read(&mut buf))
            .await
            .expect("closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}

/// The HTTP server itself: a request in flight when shutdown begins is answered,
/// on a connection that then closes, while new connections are refused.
#[tokio::test]
async fn a_request_in_flight_at_shutdown_is_answered() {
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (notify, wait) = (Arc::clone(&entered), Arc::clone(&release));
    let app = Router::new().route(
        "/slow",
        get(move || {
            let (notify, wait) = (Arc::clone(&notify), Arc::clone(&wait));
            async move {
                notify.notify_one();
                wait.notified().await;
                "done"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(daemon::server::serve(
        listener,
        app,
        shutdown.clone(),
        GRACE,
    ));
    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    entered.notified().await;
    shutdown.cancel();
    // The listener is closed while the request is still in flight.
    tokio::time::sleep(TRICKLE_INTERVAL).await;
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    release.notify_one();
    let mut answer = Vec::new();
    tokio::time::timeout(GRACE, slow.read_to_end(&mut answer))
        .await
        .expect("answered, then closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
    tokio::time::timeout(GRACE, server)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
}

/// The HTTP server itself: a request whose handler never ends is cut at the grace
/// period's end, and `serve` returns (the daemon then exits 0).
#[tokio::test]
async fn a_request_still_running_at_the_deadline_is_closed_and_the_server_returns() {
    let entered = Arc::new(Notify::new());
    let notify = Arc::clone(&entered);
    let app = Router::new().route(
        "/stuck",
        get(move || {
            let notify = Arc::clone(&notify);
            async move {
                notify.notify_one();
                std::future::pending::<()>().await;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let grace = Duration::from_millis(500);
    let server = tokio::spawn(daemon::server::serve(
        listener,
        app,
        shutdown.clone(),
        grace,
    ));
    let mut stuck = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stuck
        .write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    entered.notified().await;
    let started = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(grace + EXIT_MARGIN, server)
        .await
        .expect("serve returns after the grace period")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(took >= grace, "the request had its grace period: {took:?}");
    let mut buf = [0u8; 64];
    let read = stuck.read(&mut buf).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without an answer: {read:?}"
    );
    // The listener is closed.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

/// A store file the daemon cannot write (as a user whose file is read-only; as
/// root, the daemon runs as `nobody`) that already holds everything GitHub has:
/// the repository has nothing to write, so its sync gets as far as recording its
/// status, which fails. It is not synced: `/readyz` stays 503 and says that the
/// store cannot record syncs.
#[tokio::test]
async fn a_store_that_cannot_record_syncs_keeps_readyz_at_503_saying_why() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let sim = live_simulator(SIM_TOKEN).await;
    let names: Vec<String> = sim.with_org(|org| {
        (0..org.repos.len())
            .filter(|i| org.repos[*i].workflow().is_none())
            .map(|i| org.full_name(i))
            .collect()
    });
    let quiet = names
        .first()
        .expect("a repository with deployments")
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = serve_config(dir.path(), sim.base_url(), port, &[repo(&quiet, "t")]);
    // GraphQL (the default): a cycle first asks each repository for its newest
    // deployment, and one with nothing new is not read further.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("api = \"rest\"\n", "");
    std::fs::write(&config, text).unwrap();
    let store = dir.path().join("dora.db");
    // A store that has read everything there is (a `sync --once`), but holds no
    // sync status (so nothing says the repository ever synced) ...
    let mut sync = Command::new(BINARY);
    sync.args(["sync", "--once", "--config"])
        .arg(&config)
        .env("GITHUB_TOKEN", SIM_TOKEN)
        .env_remove("RUST_LOG");
    let synced = tokio::task::spawn_blocking(move || sync.output().unwrap())
        .await
        .unwrap();
    assert!(synced.status.success(), "{synced:?}");
    rusqlite::Connection::open(&store)
        .unwrap()
        .execute("DELETE FROM sync_status", [])
        .unwrap();
    // ... then read-only; the directory stays writable (the daemon may create
    // SQLite's shared-memory file next to it).
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o444)).unwrap();
    for file in [dir.path().to_owned(), config.clone()] {
        let mode = if file.is_dir() { 0o777 } else { 0o644 };
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut command = serve_command(&config);
    if is_root() {
        // Root writes read-only files: run the daemon as nobody instead.
        command.uid(65534).gid(65534);
    }
    let mut daemon = Running::spawn(command, dir.path(), "serve");
    let base = format!("http://127.0.0.1:{port}");
    let (_, reason) = daemon
        .wait_for(&format!("{base}/readyz"), |status, body| {
            assert_ne!(
                status, 200,
                "ready on a store that cannot record syncs: {body}"
            );
            body.contains("the store cannot record syncs")
        })
        .await;
    assert_eq!(
        reason,
        format!(
            "not ready: waiting for the first successful sync of {quiet}; the store cannot \
             record syncs (read-only or full? the log names the file and the error)\n"
        )
    );
    let stderr = daemon.stderr();
    // The sync itself read everything and had nothing to write ...
    assert!(stderr.contains("repository synced"), "{stderr}");
    // ... and recording it failed, so it failed.
    assert!(
        stderr.contains("cannot record the sync status; the sync counts as failed"),
        "{stderr}"
    );
    let (_, metrics) = daemon
        .wait_for(&format!("{base}/metrics"), |s, _| s == 200)
        .await;
    assert!(
        metrics.contains(&format!(
            "dora_collector_sync_errors_total{{source=\"github\",repository=\"{quiet}\"}} 1"
        )),
        "{metrics}"
    );
    let (status, body) = daemon
        .wait_for(&format!("{base}/readyz"), |_, _| true)
        .await;
    assert_eq!((status, body), (503, reason));
    daemon.signal("TERM");
    let (status, _, daemon) = daemon.wait_exit(GRACE + EXIT_MARGIN).await;
    assert!(status.success(), "{status:?}\n{}", daemon.stderr());
}
