//! GitHub webhooks against the real daemon on 127.0.0.1 and the simulated GitHub,
//! polling once an hour so that only a delivery can cause a sync: forged,
//! missing, truncated and other bad signatures (401, nothing synced); bodies that
//! are not the event's JSON, other content types, missing headers (400, 415); a
//! body over 25 MiB (413) and more large bodies at once than the collector holds
//! (429); unused events and unconfigured repositories (202, nothing synced);
//! ping (200); a replayed delivery done once; GitHub's recorded deliveries,
//! re-signed with the test secret and renamed to a repository of the simulator,
//! each making the daemon sync that repository within 5 s, and a deployment
//! created in the simulator in `/metrics` within 5 s of its delivery; the
//! delivery counters; out-of-turn syncs through `DaemonHandle` that leave the
//! cycles and readiness alone. The simulator keeps its own reading of the API:
//! nothing here makes it depend on the collector.

use crate::scenario::{at, tiny, API, NOW};
use crate::support::{config_text, get, ready_metrics, repo, value, workflow_repo, World};
use dora_collector::config::Config;
use dora_collector::daemon::{DaemonHandle, OUT_OF_TURN_DEBOUNCE};
use dora_collector::domain::{RepoName, Timestamp};
use dora_collector::sim::{NewDeployment, NewOutcome, SIM_TOKEN};
use dora_collector::webhooks::{BODY_READ_TIMEOUT, MAX_BODY_BYTES, MAX_BUDGET_WAIT};
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The hook's secret in these tests.
const SECRET: &str = "webhook-test-secret-0123456789abcdef0123";
/// Bounds each request, so that a stuck daemon fails the test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The promise: a delivery's repository is synced, and its change in
/// `/metrics`, within 5 s.
const SYNC_DEADLINE: Duration = Duration::from_secs(5);
/// How long a test waits to be sure that nothing was synced: the debounce and
/// a generous sync.
const QUIET: Duration = Duration::from_millis(2_500);

const API_NAME: &str = "acme/api";
const WEB_NAME: &str = "acme/web";

fn tiny_repos() -> Vec<crate::support::Repo<'static>> {
    vec![
        repo(API_NAME, "payments"),
        workflow_repo(WEB_NAME, "web", "deploy.yml"),
    ]
}

/// The tiny world's configuration, polled once an hour, with `extra` lines.
fn config(world: &World, extra: &str) -> Config {
    let mut text = config_text(
        world.sim.base_url(),
        SIM_TOKEN,
        &world.store_path(),
        &tiny_repos(),
        "poll_interval = \"1h\"\n",
    );
    text.push_str(extra);
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("test config invalid: {problems:?}\n{text}"))
}

fn webhook_config(world: &World) -> Config {
    config(
        world,
        &format!("[webhooks.github]\nsecret = \"{SECRET}\"\n"),
    )
}

/// The tiny world's daemon with webhooks, after its first cycle.
async fn started() -> (World, DaemonHandle) {
    let world = World::new(tiny().org).await;
    let mut handle = world.start(webhook_config(&world)).await;
    ready_metrics(&mut handle).await;
    (world, handle)
}

/// `X-Hub-Signature-256` of `body` under `secret`, computed here with the
/// crates GitHub's documentation names (HMAC-SHA256, hex).
fn sign_with(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn sign(body: &[u8]) -> String {
    sign_with(SECRET, body)
}

/// A delivery id shaped like GitHub's.
fn delivery_id(n: u64) -> String {
    format!("{n:08x}-cc78-11e3-81ab-{n:012x}")
}

/// A delivery as GitHub sends it.
struct Delivery {
    event: Option<String>,
    id: Option<String>,
    signature: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Delivery {
    /// A signed delivery of `event` with id `n`.
    fn new(event: &str, n: u64, body: Vec<u8>) -> Delivery {
        Delivery {
            event: Some(event.to_owned()),
            id: Some(delivery_id(n)),
            signature: Some(sign(&body)),
            content_type: Some("application/json"),
            body,
        }
    }
}

/// An answer: status and JSON body (`Null` when not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap()
        })
        .clone()
}

async fn deliver(handle: &DaemonHandle, delivery: &Delivery) -> Answer {
    let mut request = client()
        .post(format!("http://{}/webhooks/github", handle.local_addr()))
        .header("user-agent", "GitHub-Hookshot/044aadd")
        .body(delivery.body.clone());
    let headers = [
        ("x-github-event", &delivery.event),
        ("x-github-delivery", &delivery.id),
        ("x-hub-signature-256", &delivery.signature),
    ];
    for (name, value) in headers {
        if let Some(value) = value {
            request = request.header(name, value);
        }
    }
    if let Some(content_type) = delivery.content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("the daemon answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// GitHub's recorded delivery `name`, its repository renamed to `full_name`
/// (when it has one).
fn recorded(name: &str, full_name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github/webhooks")
        .join(name);
    let mut value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    if let Some(repository) = value.get_mut("repository").and_then(Value::as_object_mut) {
        repository.insert("full_name".to_owned(), Value::from(full_name));
    }
    serde_json::to_vec(&value).unwrap()
}

/// Every recorded delivery: file name and event.
fn recorded_files() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/webhooks");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let event = name.strip_suffix(".json")?.split('.').next()?.to_owned();
            Some((name, event))
        })
        .collect();
    files.sort();
    files
}

/// The requests the simulator answered about `repository`.
fn requests_for(world: &World, repository: &str) -> usize {
    let prefix = format!("/repos/{repository}/");
    world
        .sim
        .requests()
        .iter()
        .filter(|r| r.target.starts_with(&prefix))
        .count()
}

fn last_success_series(repository: &str) -> String {
    format!(
        "dora_collector_last_successful_sync_timestamp_seconds{{source=\"github\",repository=\"{repository}\"}}"
    )
}

/// `/metrics` until `series` has `expected`, at most `deadline`; how long it
/// took.
async fn wait_for_value(
    handle: &DaemonHandle,
    series: &str,
    expected: f64,
    deadline: Duration,
    since: Instant,
) -> Duration {
    loop {
        let (_, text) = get(handle, "/metrics").await;
        if value(&text, series) == Some(expected) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < deadline,
            "{series} did not become {expected} within {deadline:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Moves the daemon's clock to a new second, so that the next sync of a
/// repository shows as a new `last_successful_sync` value; returns it.
fn next_second(world: &World, tick: &mut i64) -> f64 {
    *tick += 1;
    world.clock.set(Timestamp(NOW.0 + *tick));
    (NOW.0 + *tick) as f64
}

fn delivery_count(metrics: &str, event: &str, outcome: &str) -> Option<f64> {
    value(
        metrics,
        &format!(
            "dora_collector_webhook_deliveries_total{{event=\"{event}\",outcome=\"{outcome}\"}}"
        ),
    )
}

/// The status of a delivery written by hand: the head with `extra` headers,
/// then `body` (the daemon may answer, and stop reading, before all of it).
async fn raw_status(handle: &DaemonHandle, extra: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(handle.local_addr())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: test\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: {}\r\nX-Hub-Signature-256: {}\r\n\
         Content-Type: application/json\r\n{extra}\r\n",
        delivery_id(999_999),
        sign(b"{}"),
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    // Written while the answer is read: the daemon may answer, and close,
    // before all of it is written.
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&message).await;
        writer
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .expect("an answer in time");
    write.abort();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deliveries_are_refused_and_unused_ones_ignored_and_nothing_is_synced() {
    let (world, handle) = started().await;
    world.sim.reset_counts();
    let (_, before) = get(&handle, "/metrics").await;
    let synced_before = value(&before, &last_success_series(API_NAME));
    world.clock.set(Timestamp(NOW.0 + 60));

    let push = recorded("push.event.1.json", "Acme/API");
    let good = || Delivery::new("push", 1, push.clone());
    let signature = sign(&push);
    let mut changed = push.clone();
    let last = changed.len() - 2;
    changed[last] ^= 0x20;
    #[rustfmt::skip]
    let cases: Vec<(&str, Delivery, u16, &str)> = vec![
        ("no signature", Delivery { signature: None, ..good() }, 401, "unauthorized"),
        ("a SHA-1 signature", Delivery { signature: Some(format!("sha1={}", "a".repeat(40))), ..good() }, 401, "unauthorized"),
        ("another secret's signature", Delivery { signature: Some(sign_with("webhook-test-secret-0123456789abcdef0124", &push)), ..good() }, 401, "unauthorized"),
        ("a truncated signature", Delivery { signature: Some(signature[..signature.len() - 1].to_owned()), ..good() }, 401, "unauthorized"),
        ("a signature cut to its prefix", Delivery { signature: Some("sha256=".to_owned()), ..good() }, 401, "unauthorized"),
        ("a signature without its prefix", Delivery { signature: Some(signature["sha256=".len()..].to_owned()), ..good() }, 401, "unauthorized"),
        ("a forged signature", Delivery { signature: Some(format!("sha256={}", "0".repeat(64))), ..good() }, 401, "unauthorized"),
        ("a body changed after signing", Delivery { body: changed, signature: Some(signature.clone()), ..good() }, 401, "unauthorized"),
        ("not JSON", Delivery::new("push", 2, b"payload=%7B%7D".to_vec()), 400, "invalid"),
        ("JSON but not an object", Delivery::new("push", 3, b"[1, 2]".to_vec()), 400, "invalid"),
        ("a push without its repository", Delivery::new("push", 4, br#"{"ref": "refs/heads/main"}"#.to_vec()), 400, "invalid"),
        ("a form", Delivery { content_type: Some("application/x-www-form-urlencoded"), ..Delivery::new("push", 5, push.clone()) }, 415, "invalid"),
        ("no delivery id", Delivery { id: None, ..Delivery::new("push", 6, push.clone()) }, 400, "invalid"),
        ("a delivery id with a space", Delivery { id: Some("a b".to_owned()), ..Delivery::new("push", 7, push.clone()) }, 400, "invalid"),
        ("no event", Delivery { event: None, ..Delivery::new("push", 8, push.clone()) }, 400, "invalid"),
        ("an event it does not use", Delivery::new("release", 9, recorded("release.published.1.json", API_NAME)), 202, "ignored"),
        ("an unconfigured repository", Delivery::new("push", 10, recorded("push.event.2.json", "acme/other")), 202, "ignored"),
        ("another owner's repository", Delivery::new("deployment", 11, recorded("deployment.created.1.json", "Codertocat/Hello-World")), 202, "ignored"),
    ];
    for (what, delivery, status, outcome) in &cases {
        let answer = deliver(&handle, delivery).await;
        assert_eq!(answer.status, *status, "{what}: {answer:?}");
        assert_eq!(answer.body["outcome"], *outcome, "{what}: {answer:?}");
        assert!(answer.body["message"].is_string(), "{what}: {answer:?}");
    }
    // Over 25 MiB: refused on its Content-Length, before anything is read, and
    // without one once more than 25 MiB arrived.
    let declared = raw_status(
        &handle,
        &format!("Content-Length: {}\r\n", MAX_BODY_BYTES + 1),
        b"",
    )
    .await;
    assert_eq!(declared, 413);
    let chunk = format!("{:x}\r\n{}\r\n", 1024 * 1024, " ".repeat(1024 * 1024));
    let chunked = raw_status(
        &handle,
        "Transfer-Encoding: chunked\r\n",
        chunk.repeat(26).as_bytes(),
    )
    .await;
    assert_eq!(chunked, 413);
    // A ping is answered.
    let ping = deliver(
        &handle,
        &Delivery::new("ping", 12, recorded("ping.event.1.json", API_NAME)),
    )
    .await;
    assert_eq!(ping.status, 200, "{ping:?}");
    assert_eq!(ping.body["outcome"], "accepted");

    // Nothing was synced: no request reached the simulated GitHub, the last
    // sync is the first cycle's.
    tokio::time::sleep(QUIET).await;
    assert_eq!(world.sim.request_counts().total, 0);
    let (_, metrics) = get(&handle, "/metrics").await;
    assert_eq!(
        value(&metrics, &last_success_series(API_NAME)),
        synced_before
    );
    assert_eq!(handle.cycles().completed, 1);
    assert_eq!(delivery_count(&metrics, "push", "unauthorized"), Some(8.0));
    assert_eq!(delivery_count(&metrics, "push", "invalid"), Some(6.0));
    assert_eq!(delivery_count(&metrics, "other", "invalid"), Some(1.0));
    assert_eq!(delivery_count(&metrics, "push", "too_large"), Some(2.0));
    assert_eq!(delivery_count(&metrics, "push", "ignored"), Some(1.0));
    assert_eq!(delivery_count(&metrics, "other", "ignored"), Some(1.0));
    assert_eq!(delivery_count(&metrics, "deployment", "ignored"), Some(1.0));
    assert_eq!(delivery_count(&metrics, "ping", "accepted"), Some(1.0));
    assert_eq!(delivery_count(&metrics, "push", "accepted"), Some(0.0));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_delivery_is_done_once() {
    let (world, handle) = started().await;
    let mut tick = 0;
    let body = recorded("deployment_status.created.1.json", API_NAME);
    let delivery = Delivery::new("deployment_status", 1, body.clone());

    let synced = next_second(&world, &mut tick);
    let started_at = Instant::now();
    let first = deliver(&handle, &delivery).await;
    assert_eq!(
        (first.status, &first.body["outcome"]),
        (202, &"accepted".into())
    );
    let series = last_success_series(API_NAME);
    wait_for_value(&handle, &series, synced, SYNC_DEADLINE, started_at).await;

    // The same delivery again (GitHub's "Redeliver", or a replay): done once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    world.sim.reset_counts();
    next_second(&world, &mut tick);
    for _ in 0..3 {
        let again = deliver(&handle, &delivery).await;
        assert_eq!(again.status, 202, "{again:?}");
        assert_eq!(again.body["outcome"], "duplicate", "{again:?}");
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        requests_for(&world, API_NAME),
        0,
        "the replay synced nothing"
    );
    let (_, metrics) = get(&handle, "/metrics").await;
    assert_eq!(value(&metrics, &series), Some(synced));
    assert_eq!(
        delivery_count(&metrics, "deployment_status", "duplicate"),
        Some(3.0)
    );

    // The delivery id is the identity: another delivery of the same body syncs.
    let synced = next_second(&world, &mut tick);
    let started_at = Instant::now();
    let other = deliver(&handle, &Delivery::new("deployment_status", 2, body)).await;
    assert_eq!(other.body["outcome"], "accepted", "{other:?}");
    wait_for_value(&handle, &series, synced, SYNC_DEADLINE, started_at).await;
    handle.shutdown().await.unwrap();
}

/// GitHub's recorded deliveries, re-signed and renamed to a repository of the
/// simulator: one of each event that syncs makes the daemon sync that
/// repository within 5 s; a deployment created in the simulator shows in
/// `/metrics` within 5 s of its delivery; all 42 delivered at once are answered
/// each as its event calls for and make about one sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn githubs_recorded_deliveries_make_the_daemon_sync_that_repository_within_5_s() {
    let (world, handle) = started().await;
    let mut tick = 0;
    let mut n = 0;
    let files = recorded_files();
    assert_eq!(files.len(), 42);
    let syncing = [
        "deployment",
        "deployment_status",
        "workflow_run",
        "issues",
        "pull_request",
        "push",
    ];
    for event in syncing {
        // Workflow runs are acme/web's deployments; the rest go to acme/api,
        // named as GitHub spells it (compared in lowercase).
        let (repository, spelled) = if event == "workflow_run" {
            (WEB_NAME, "acme/Web")
        } else {
            (API_NAME, "Acme/API")
        };
        let (file, _) = files.iter().find(|(_, e)| e == event).unwrap();
        n += 1;
        let synced = next_second(&world, &mut tick);
        let started_at = Instant::now();
        let answer = deliver(&handle, &Delivery::new(event, n, recorded(file, spelled))).await;
        assert_eq!(answer.status, 202, "{file}: {answer:?}");
        assert_eq!(answer.body["outcome"], "accepted", "{file}: {answer:?}");
        let took = wait_for_value(
            &handle,
            &last_success_series(repository),
            synced,
            SYNC_DEADLINE,
            started_at,
        )
        .await;
        println!("{file}: {repository} synced and published {took:?} after the delivery");
    }

    // A deployment finishes in the simulated GitHub; its deployment_status
    // delivery brings it into /metrics.
    let deployments =
        r#"dora_deployments_total{repository="acme/api",environment="production",team="payments"}"#;
    let (_, before) = get(&handle, "/metrics").await;
    let count = value(&before, deployments).expect("acme/api's deployments");
    world.sim.with_org_mut(|org| {
        org.push_commit(API, "Add refunds", at(-3600), at(-3600))
            .unwrap();
        org.add_deployment(
            API,
            NewDeployment {
                environment: "production".to_owned(),
                sha: None,
                created_at: at(-600),
                outcome: NewOutcome::Success { after: 120 },
            },
        )
        .unwrap();
    });
    n += 1;
    let started_at = Instant::now();
    let answer = deliver(
        &handle,
        &Delivery::new(
            "deployment_status",
            n,
            recorded("deployment_status.created.1.json", API_NAME),
        ),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let took = wait_for_value(&handle, deployments, count + 1.0, SYNC_DEADLINE, started_at).await;
    println!("a deployment created in the simulator was in /metrics {took:?} after its delivery");

    // All 42 at once: answered as their events call for; the deliveries for
    // one repository within the debounce make one sync (two if the burst
    // straddles the end of the window).
    tokio::time::sleep(OUT_OF_TURN_DEBOUNCE + Duration::from_millis(500)).await;
    world.sim.reset_counts();
    let synced = next_second(&world, &mut tick);
    let started_at = Instant::now();
    for (file, event) in &files {
        n += 1;
        let answer = deliver(&handle, &Delivery::new(event, n, recorded(file, API_NAME))).await;
        let expected = match event.as_str() {
            "ping" => (200, "accepted"),
            "release" => (202, "ignored"),
            _ => (202, "accepted"),
        };
        assert_eq!(
            (answer.status, answer.body["outcome"].as_str().unwrap_or("")),
            expected,
            "{file}: {answer:?}"
        );
    }
    let burst = started_at.elapsed();
    wait_for_value(
        &handle,
        &last_success_series(API_NAME),
        synced,
        SYNC_DEADLINE,
        started_at,
    )
    .await;
    tokio::time::sleep(QUIET).await;
    let counts = world.sim.request_counts();
    let listings = counts.route("GET /repos/{owner}/{repo}/deployments");
    println!("42 deliveries in {burst:?}: {listings} sync(s) of acme/api");
    assert!(
        (1..=2).contains(&listings),
        "{listings} syncs for one burst: {counts:?}"
    );
    assert_eq!(
        requests_for(&world, WEB_NAME),
        0,
        "only the named repository"
    );
    let (_, metrics) = get(&handle, "/metrics").await;
    assert_eq!(handle.cycles().completed, 1, "no cycle: out of turn");
    for (event, expected) in [
        ("deployment", 5.0),
        ("deployment_status", 6.0),
        ("workflow_run", 6.0),
        ("issues", 8.0),
        ("pull_request", 9.0),
        ("push", 8.0),
        ("ping", 4.0),
    ] {
        assert_eq!(
            delivery_count(&metrics, event, "accepted"),
            Some(expected),
            "{event}"
        );
    }
    assert_eq!(delivery_count(&metrics, "other", "ignored"), Some(3.0));
    handle.shutdown().await.unwrap();
}

/// While two bodies of 25 MiB are arriving, the collector holds no third one
/// (`429` after waiting `MAX_BUDGET_WAIT` for room) but still takes ordinary
/// deliveries at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_large_bodies_at_once_than_the_collector_holds_are_refused() {
    let (_world, handle) = started().await;
    let length = format!("Content-Length: {MAX_BODY_BYTES}\r\n");
    // Two deliveries that declare 25 MiB and send nothing: they hold their
    // share until the body deadline.
    let slow = || {
        let handle_addr = handle.local_addr();
        let length = length.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(handle_addr).await.unwrap();
            let head = format!(
                "POST /webhooks/github HTTP/1.1\r\nHost: test\r\nX-GitHub-Event: push\r\n\
                 X-Hub-Signature-256: {}\r\nContent-Type: application/json\r\n{length}\r\n",
                sign(b"{}")
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = vec![0u8; 64];
            let n = tokio::time::timeout(REQUEST_TIMEOUT, stream.read(&mut answer))
                .await
                .expect("an answer")
                .unwrap_or(0);
            String::from_utf8_lossy(&answer[..n]).into_owned()
        }
    };
    let first = tokio::spawn(slow());
    let second = tokio::spawn(slow());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ping = deliver(
        &handle,
        &Delivery::new("ping", 1, recorded("ping.event.2.json", API_NAME)),
    )
    .await;
    assert_eq!(ping.status, 200, "an ordinary delivery is taken: {ping:?}");
    let started_at = Instant::now();
    let third = raw_status(&handle, &length, b"").await;
    let waited = started_at.elapsed();
    assert_eq!(third, 429);
    assert!(
        waited >= MAX_BUDGET_WAIT && waited < BODY_READ_TIMEOUT,
        "{waited:?}"
    );
    first.abort();
    second.abort();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, metrics) = get(&handle, "/metrics").await;
    assert_eq!(delivery_count(&metrics, "push", "rate_limited"), Some(1.0));
    handle.shutdown().await.unwrap();
}

/// `DaemonHandle::sync_repositories`: only the named repository is synced, out
/// of turn: no cycle is counted, readiness stays, the poll's rhythm is kept.
/// Without `[webhooks.github]` the route does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_turn_sync_reads_only_the_named_repository() {
    let world = World::new(tiny().org).await;
    let mut handle = world.start(config(&world, "")).await;
    ready_metrics(&mut handle).await;
    world.sim.reset_counts();
    let mut tick = 0;
    let synced = next_second(&world, &mut tick);
    let api = RepoName::parse(API_NAME).unwrap();
    let unknown = RepoName::parse("acme/unknown").unwrap();
    let started_at = Instant::now();
    assert_eq!(handle.sync_repositories(&[api, unknown]), 1);
    let took = wait_for_value(
        &handle,
        &last_success_series(API_NAME),
        synced,
        SYNC_DEADLINE,
        started_at,
    )
    .await;
    assert!(took >= OUT_OF_TURN_DEBOUNCE, "debounced: {took:?}");
    assert!(requests_for(&world, API_NAME) > 0);
    assert_eq!(requests_for(&world, WEB_NAME), 0);
    assert_eq!(handle.cycles().completed, 1);
    let (status, reason) = get(&handle, "/readyz").await;
    assert_eq!(status, 200, "{reason}");
    let answer = deliver(
        &handle,
        &Delivery::new("ping", 1, recorded("ping.event.1.json", API_NAME)),
    )
    .await;
    assert_eq!(answer.status, 404, "no [webhooks.github]: {answer:?}");
    handle.shutdown().await.unwrap();
}
