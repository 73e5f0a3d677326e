//! The push API against the real daemon on 127.0.0.1: every refusal with its
//! status and field (nothing of a refused request stored), idempotent retries,
//! conflicts (a reused id, a repository whose deployments come from GitHub),
//! the one allowed update of an open incident, rate limits, slow and oversized
//! bodies, random bodies, the push counters, and a daemon without GitHub whose
//! DORA series equal the engine's over the same events.

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::batch::CommitRecord;
use dora_collector::domain::{
    CommitSha, Deployment, DeploymentOutcome, DeploymentSource, Environment, Incident,
    IncidentSource, RepoName, ShaPrefix, Timestamp,
};
use dora_collector::dora::{self, EventsBuilder};
use dora_collector::exporter::{self, HealthSnapshot};
use dora_collector::store::{SqliteStore, Store, StoreCounts};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The daemon's clock in these tests: 2023-11-14T22:13:20Z.
const NOW: Timestamp = Timestamp(1_700_000_000);
const CI_TOKEN: &str = "ci-token-0123456789abcdef0123456789abcdef";
const OTHER_TOKEN: &str = "other-token-0123456789abcdef0123456789abc";
/// Bounds each request, so that a stuck daemon fails the test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test waits for a push to show in `/metrics` (the promise: 5 s).
const METRICS_DEADLINE: Duration = Duration::from_secs(5);

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

fn at(seconds: i64) -> String {
    Timestamp(seconds).to_rfc3339()
}

/// A push-only configuration (`[ingest]`, `[[repositories]]`, no `[github]`)
/// with the store at `store`, plus `extra` lines.
fn push_config(store: &Path, rate: u32, extra: &str) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [ingest]\nrequests_per_second = {rate}\n\
         [[ingest.clients]]\nname = \"ci\"\ntoken = \"{CI_TOKEN}\"\nrepositories = [\"acme/*\"]\n\
         [[ingest.clients]]\nname = \"other\"\ntoken = \"{OTHER_TOKEN}\"\nrepositories = [\"other/*\"]\n\
         [[repositories]]\nname = \"acme/billing\"\nteam = \"payments\"\n{extra}",
        store.display().to_string()
    );
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("test config invalid: {problems:?}\n{text}"))
}

async fn start(config: Config) -> DaemonHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = RunOptions {
        clock: Arc::new(ManualClock::new(NOW)),
        ..RunOptions::default()
    };
    daemon::start(config, listener, options)
        .await
        .expect("daemon starts")
}

/// One HTTP client for every request (building one is slow). Tests run on
/// runtimes of their own, but each talks to its own daemon's port, so no pooled
/// connection is shared between two of them.
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

/// An answer: status, JSON body (`Null` when not JSON) and `Retry-After`.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

async fn post_raw(
    handle: &DaemonHandle,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut request = client()
        .post(format!("http://{}{path}", handle.local_addr()))
        .body(body);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("the daemon answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        retry_after,
    }
}

async fn post(handle: &DaemonHandle, path: &str, body: &Value) -> Answer {
    post_raw(
        handle,
        path,
        Some(CI_TOKEN),
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// The status of a `POST /api/v1/deployments` written by hand: `length` is the
/// header that frames the body (`Content-Length: N` or chunked), `body` what is
/// sent of it before waiting for the answer.
async fn raw_status(handle: &DaemonHandle, length: &str, body: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(handle.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/deployments HTTP/1.1\r\nHost: test\r\n\
         Authorization: Bearer {CI_TOKEN}\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The daemon may answer (and stop reading) before all of it is written.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn counts(store: &Path) -> StoreCounts {
    SqliteStore::open(store).unwrap().counts().unwrap()
}

/// A refused request: what, path, token, content type, body, status, field.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    String,
    u16,
    Option<&'a str>,
);

/// A successful deployment of `acme/billing` carrying one root commit.
fn deployment(id: &str, n: u64) -> Value {
    json!({
        "id": id, "repository": "acme/billing", "environment": "production",
        "sha": sha(n), "status": "success", "finished_at": at(NOW.0 - 3600),
        "commits": [{"sha": sha(n), "parents": [], "authored_at": at(NOW.0 - 7200)}],
    })
}

fn incident(id: &str, resolved: Option<i64>) -> Value {
    let mut item = json!({
        "id": id, "repository": "acme/billing", "created_at": at(NOW.0 - 1800),
        "title": "checkout down",
    });
    if let Some(resolved) = resolved {
        item["resolved_at"] = json!(at(resolved));
    }
    item
}

/// `/metrics` until `series` has `value`, for at most [`METRICS_DEADLINE`].
async fn wait_for(handle: &DaemonHandle, series: &str, value: f64) -> Duration {
    let started = Instant::now();
    loop {
        let (_, text) = crate::support::get(handle, "/metrics").await;
        if crate::support::value(&text, series) == Some(value) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < METRICS_DEADLINE,
            "{series} did not become {value} within {METRICS_DEADLINE:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_are_refused_with_their_status_and_field_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let handle = start(push_config(&store, 100_000, "")).await;
    let good = deployment("run-1", 1);
    let with = |field: &str, value: Value| {
        let mut item = good.clone();
        item[field] = value;
        item.to_string()
    };
    let without = |field: &str| {
        let mut item = good.clone();
        item.as_object_mut().unwrap().remove(field);
        item.to_string()
    };
    let json_type = Some("application/json");
    let deployments = "/api/v1/deployments";
    let incidents = "/api/v1/incidents";
    let too_many = format!("[{}]", vec![good.to_string(); 1_001].join(","));
    let huge = format!("[{}]", vec![good.to_string(); 5_000].join(","));
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("no token", deployments, None, json_type, good.to_string(), 401, None),
        ("a wrong token", deployments, Some("ci-token-0123456789abcdef0123456789abcdeX"), json_type, good.to_string(), 401, None),
        ("another client's token", deployments, Some(OTHER_TOKEN), json_type, good.to_string(), 403, Some("repository")),
        ("a repository outside the patterns", deployments, Some(CI_TOKEN), json_type, with("repository", json!("other/api")), 403, Some("repository")),
        ("no content type", deployments, Some(CI_TOKEN), None, good.to_string(), 415, None),
        ("a form", deployments, Some(CI_TOKEN), Some("application/x-www-form-urlencoded"), good.to_string(), 415, None),
        ("malformed JSON", deployments, Some(CI_TOKEN), json_type, "{\"id\": ".to_owned(), 400, Some("id")),
        ("not an object", deployments, Some(CI_TOKEN), json_type, "42".to_owned(), 400, None),
        ("an unknown field", deployments, Some(CI_TOKEN), json_type, with("deployer", json!("me")), 400, Some("deployer")),
        ("a wrong type", deployments, Some(CI_TOKEN), json_type, with("id", json!(7)), 400, Some("id")),
        ("a short sha", deployments, Some(CI_TOKEN), json_type, with("sha", json!("abc1234")), 400, Some("sha")),
        ("a bad status", deployments, Some(CI_TOKEN), json_type, with("status", json!("done")), 400, Some("status")),
        ("a time that is not RFC 3339", deployments, Some(CI_TOKEN), json_type, with("finished_at", json!("2023-11-14 22:00")), 400, Some("finished_at")),
        ("a time in the future", deployments, Some(CI_TOKEN), json_type, with("finished_at", json!(at(NOW.0 + 301))), 400, Some("finished_at")),
        ("a missing field", deployments, Some(CI_TOKEN), json_type, without("environment"), 400, Some("environment")),
        ("no commits without a code host", deployments, Some(CI_TOKEN), json_type, without("commits"), 400, Some("commits")),
        ("a bad commit in an array", deployments, Some(CI_TOKEN), json_type, format!("[{good}, {}]", with("commits", json!([{"sha": sha(2), "parents": ["x"], "authored_at": at(NOW.0)}]))), 400, Some("[1].commits[0].parents[0]")),
        ("more than 1,000 items", deployments, Some(CI_TOKEN), json_type, too_many, 400, None),
        ("an incident of an unknown team", incidents, Some(CI_TOKEN), json_type, json!({"id": "i", "team": "nobody", "created_at": at(NOW.0)}).to_string(), 400, Some("team")),
        ("a short root cause", incidents, Some(CI_TOKEN), json_type, json!({"id": "i", "repository": "acme/billing", "created_at": at(NOW.0), "root_cause": "abc"}).to_string(), 400, Some("root_cause")),
        ("a deployment sent as an incident", incidents, Some(CI_TOKEN), json_type, good.to_string(), 400, Some("commits")),
    ];
    for (what, path, token, content_type, body, status, field) in cases {
        let answer = post_raw(&handle, path, token, content_type, body).await;
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        assert!(answer.body["error"].is_string(), "{what}: {answer:?}");
        if status == 400 || status == 403 {
            assert_eq!(answer.body["field"].as_str(), field, "{what}: {answer:?}");
        }
    }
    // Over 1 MiB by its length: refused from the head alone, before any of the
    // body is sent (a client still writing a body the daemon will not read may
    // see the connection closed instead of the answer, so none is written).
    assert!(huge.len() > dora_collector::ingest::MAX_BODY_BYTES);
    let status = raw_status(&handle, &format!("Content-Length: {}", huge.len()), "").await;
    assert_eq!(status, 413, "over 1 MiB");
    // Chunked, without a length: refused once it passes 1 MiB.
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let status = raw_status(&handle, "Transfer-Encoding: chunked", &chunk.repeat(17)).await;
    assert_eq!(status, 413);
    let stored = counts(&store);
    assert_eq!(
        (stored.deployments, stored.incidents, stored.commits),
        (0, 0, 0)
    );
    // The counters are re-rendered after a short debounce.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, metrics) = crate::support::get(&handle, "/metrics").await;
    let count = |client: &str, outcome: &str| {
        crate::support::value(
            &metrics,
            &format!("dora_collector_pushes_total{{client=\"{client}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(count("", "unauthorized"), Some(2.0));
    assert_eq!(count("ci", "forbidden"), Some(1.0));
    assert_eq!(count("other", "forbidden"), Some(1.0));
    assert_eq!(count("ci", "invalid"), Some(17.0));
    assert_eq!(count("ci", "too_large"), Some(2.0));
    assert_eq!(count("ci", "accepted"), Some(0.0));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_change_nothing_reused_ids_conflict_and_an_open_incident_resolves_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let handle = start(push_config(&store, 100_000, "")).await;
    let deployments = "/api/v1/deployments";
    let incidents = "/api/v1/incidents";

    let first = post(&handle, deployments, &deployment("run-1", 1)).await;
    assert_eq!(
        (first.status, &first.body),
        (202, &json!({"accepted": 1, "duplicates": 0}))
    );
    // The same content, spelled differently: a retry.
    let mut respelled = deployment("run-1", 1);
    respelled["sha"] = json!(sha(1).to_uppercase());
    let again = post(&handle, deployments, &json!([respelled])).await;
    assert_eq!(
        (again.status, &again.body),
        (202, &json!({"accepted": 0, "duplicates": 1}))
    );
    // The same id with another sha: refused, and the whole request with it.
    let conflict = post(
        &handle,
        deployments,
        &json!([deployment("run-2", 2), deployment("run-1", 3)]),
    )
    .await;
    assert_eq!(conflict.status, 409, "{conflict:?}");
    assert_eq!(conflict.body["field"], "[1].id");
    assert_eq!(
        counts(&store).deployments,
        1,
        "nothing of the refused request"
    );
    // Another client's id space is its own (and the other client may not write here).
    let own = post(&handle, deployments, &json!([deployment("run-2", 2)])).await;
    assert_eq!(own.status, 202);

    // An open incident, then resolved once; a late retry of the open version
    // changes nothing; another resolution time conflicts.
    let open = post(&handle, incidents, &incident("inc-1", None)).await;
    assert_eq!(
        (open.status, &open.body),
        (202, &json!({"accepted": 1, "duplicates": 0}))
    );
    let resolved = post(&handle, incidents, &incident("inc-1", Some(NOW.0 - 600))).await;
    assert_eq!(
        (resolved.status, &resolved.body),
        (202, &json!({"accepted": 1, "duplicates": 0}))
    );
    let late = post(&handle, incidents, &incident("inc-1", None)).await;
    assert_eq!(
        (late.status, &late.body),
        (202, &json!({"accepted": 0, "duplicates": 1}))
    );
    let twice = post(&handle, incidents, &incident("inc-1", Some(NOW.0 - 300))).await;
    assert_eq!(twice.status, 409, "{twice:?}");
    assert_eq!(twice.body["field"], "id");
    let stored = counts(&store);
    assert_eq!((stored.deployments, stored.incidents), (2, 1));
    let store = SqliteStore::open(&store).unwrap();
    let batch = store
        .read_repository(&RepoName::parse("acme/billing").unwrap())
        .unwrap();
    assert_eq!(batch.incidents[0].source, IncidentSource::Push);
    assert_eq!(batch.incidents[0].closed_at, Some(Timestamp(NOW.0 - 600)));
    assert!(batch
        .deployments
        .iter()
        .all(|d| d.source == DeploymentSource::Push));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_push_shows_in_the_metrics_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let mut handle = start(push_config(&store, 100_000, "")).await;
    handle.wait_for_cycles(1).await.expect("a cycle");
    let (status, reason) = crate::support::get(&handle, "/readyz").await;
    assert_eq!(status, 200, "ready without GitHub: {reason}");
    let series = "dora_deployments_total{repository=\"acme/billing\",environment=\"production\",team=\"payments\"}";
    let (_, before) = crate::support::get(&handle, "/metrics").await;
    assert_eq!(
        crate::support::value(&before, series),
        Some(0.0),
        "{before}"
    );
    // An unlisted repository matching the patterns: accepted, team unassigned.
    let mut unlisted = deployment("run-9", 9);
    unlisted["repository"] = json!("acme/new-service");
    let answer = post(
        &handle,
        "/api/v1/deployments",
        &json!([deployment("run-1", 1), unlisted]),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let took = wait_for(&handle, series, 1.0).await;
    println!("the push showed in /metrics after {took:?}");
    wait_for(
        &handle,
        "dora_deployments_total{repository=\"acme/new-service\",environment=\"production\",team=\"unassigned\"}",
        1.0,
    )
    .await;
    wait_for(
        &handle,
        "dora_collector_pushes_total{client=\"ci\",outcome=\"accepted\"}",
        1.0,
    )
    .await;
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let handle = start(push_config(&store, 2, "")).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..3 {
        let answer = post(
            &handle,
            "/api/v1/deployments",
            &deployment(&format!("r{n}"), n),
        )
        .await;
        statuses.push(answer.status);
        retry_after = answer.retry_after.or(retry_after);
    }
    assert_eq!(statuses, [202, 202, 429]);
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Another client has its own budget.
    let other = post_raw(
        &handle,
        "/api/v1/deployments",
        Some(OTHER_TOKEN),
        Some("application/json"),
        deployment("x", 1).to_string(),
    )
    .await;
    assert_eq!(
        other.status, 403,
        "rated apart, then refused for the repository"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_of_a_repository_read_from_github_are_refused_naming_github() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    // GitHub is unreachable: its syncs fail, the push API does not care.
    let github = "[github]\napi_url = \"http://127.0.0.1:1\"\ntoken = \"t\"\n\
                  [[github.repositories]]\nname = \"acme/api\"\n\
                  [[github.repositories]]\nname = \"acme/web\"\n\
                  deployments = { from = \"push\" }\n";
    let handle = start(push_config(&store, 100_000, github)).await;
    let mut item = deployment("run-1", 1);
    item["repository"] = json!("acme/api");
    let answer = post(&handle, "/api/v1/deployments", &item).await;
    assert_eq!(answer.status, 409, "{answer:?}");
    assert_eq!(answer.body["field"], "repository");
    let error = answer.body["error"].as_str().unwrap();
    assert!(error.contains("github (the Deployments API)"), "{error}");
    // Incidents may come from several sources.
    let mut pushed = incident("inc-1", None);
    pushed["repository"] = json!("acme/api");
    assert_eq!(
        post(&handle, "/api/v1/incidents", &pushed).await.status,
        202
    );
    // A repository taking pushed deployments gets its commits from GitHub:
    // none needed, and pushed ones are not kept.
    item["repository"] = json!("acme/web");
    let answer = post(&handle, "/api/v1/deployments", &item).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    item["id"] = json!("run-2");
    item.as_object_mut().unwrap().remove("commits");
    assert_eq!(
        post(&handle, "/api/v1/deployments", &item).await.status,
        202
    );
    let stored = counts(&store);
    assert_eq!(
        (stored.deployments, stored.commits, stored.incidents),
        (2, 0, 1)
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_of_a_discovered_repository_are_refused_like_a_listed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    // The organisation is never listed (GitHub unreachable): what its patterns
    // select is still its own.
    let github = "[github]\napi_url = \"http://127.0.0.1:1\"\ntoken = \"t\"\n\
                  [[github.organizations]]\nname = \"ACME\"\nexclude = [\"legacy-*\"]\n";
    let handle = start(push_config(&store, 100_000, github)).await;
    let mut item = deployment("run-1", 1);
    item["repository"] = json!("acme/api");
    let answer = post(&handle, "/api/v1/deployments", &item).await;
    assert_eq!(answer.status, 409, "{answer:?}");
    assert_eq!(answer.body["field"], "repository");
    let error = answer.body["error"].as_str().unwrap();
    assert!(error.contains("github (the Deployments API)"), "{error}");
    // One the organisation's patterns leave out is unlisted: pushes welcome.
    item["repository"] = json!("acme/legacy-app");
    let answer = post(&handle, "/api/v1/deployments", &item).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(counts(&store).deployments, 1);
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let handle = start(push_config(&store, 100_000, "")).await;
    let started = Instant::now();
    let status = raw_status(&handle, "Content-Length: 100", "{\"id\": ").await;
    assert_eq!(status, 408);
    assert!(started.elapsed() >= dora_collector::ingest::BODY_READ_TIMEOUT);
    assert_eq!(counts(&store).deployments, 0);
    handle.shutdown().await.unwrap();
}

/// Bodies from three generators: random bytes, random JSON values, and valid
/// deployments with one field replaced by a random JSON value.
fn random_body(rng: &mut impl Rng) -> String {
    fn value(rng: &mut impl Rng, depth: u32) -> Value {
        match rng.random_range(0..if depth > 2 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(rng.random::<bool>()),
            2 => json!(rng.random::<i64>()),
            3 => {
                let len = rng.random_range(0..50);
                let text: String = (0..len).map(|_| rng.random::<char>()).collect();
                json!(text)
            }
            4 => Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.random_range(0..4))
                    .map(|i| (format!("k{i}"), value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }
    match rng.random_range(0..3) {
        0 => {
            let len = rng.random_range(0..200);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        1 => value(rng, 0).to_string(),
        _ => {
            let mut item = deployment(&format!("r{}", rng.random::<u32>()), rng.random());
            let fields = [
                "id",
                "repository",
                "environment",
                "sha",
                "status",
                "finished_at",
                "commits",
                "extra",
            ];
            let field = fields[rng.random_range(0..fields.len())];
            item[field] = value(rng, 0);
            item.to_string()
        }
    }
}

/// How many random bodies are sent over HTTP (bounded: a few seconds).
const RANDOM_BODIES: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bodies_are_answered_and_only_accepted_ones_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let handle = start(push_config(&store, 100_000, "")).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut accepted = 0;
    for _ in 0..RANDOM_BODIES {
        let body = random_body(&mut rng);
        let answer = post_raw(
            &handle,
            "/api/v1/deployments",
            Some(CI_TOKEN),
            Some("application/json"),
            body.clone(),
        )
        .await;
        match answer.status {
            202 => accepted += answer.body["accepted"].as_u64().unwrap(),
            400 | 403 | 409 => assert!(answer.body["error"].is_string(), "{body}: {answer:?}"),
            other => panic!("{body}: status {other}: {answer:?}"),
        }
    }
    let stored = counts(&store);
    assert_eq!(
        stored.deployments, accepted,
        "only accepted items are stored"
    );
    assert!(
        accepted < RANDOM_BODIES as u64 / 3,
        "most bodies are refused"
    );
    handle.shutdown().await.unwrap();
}

/// A random history of one repository: linear commits with a merge now and
/// then, deployments of some of them (some failed), incidents (some with a
/// root cause, some open).
struct History {
    deployments: Vec<(Value, Deployment, Vec<CommitRecord>)>,
    incidents: Vec<(Value, Incident)>,
}

fn history(repository: &str, seed: u64) -> History {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let name = RepoName::parse(repository).unwrap();
    let start = NOW.0 - 90 * 86_400;
    let mut time = start;
    let mut commits: Vec<(u64, Vec<u64>, i64)> = Vec::new();
    let mut pending: Vec<CommitRecord> = Vec::new();
    let mut deployments = Vec::new();
    let mut shipped: Vec<u64> = Vec::new();
    let base = seed * 1_000_000;
    for n in 1..400u64 {
        time += rng.random_range(600..20_000);
        if time > NOW.0 - 3_600 {
            break;
        }
        let id = base + n;
        let mut parents: Vec<u64> = commits.last().map(|c| vec![c.0]).unwrap_or_default();
        if commits.len() > 3 && rng.random_range(0..10) == 0 {
            parents.push(commits[commits.len() - 3].0);
        }
        commits.push((id, parents.clone(), time - rng.random_range(0..50_000)));
        let parents_sha: Vec<CommitSha> = parents
            .iter()
            .map(|p| CommitSha::parse(&sha(*p)).unwrap())
            .collect();
        pending.push(CommitRecord::new(
            CommitSha::parse(&sha(id)).unwrap(),
            parents_sha,
            Timestamp(commits.last().unwrap().2),
            "",
        ));
        if rng.random_range(0..4) == 0 {
            let failed = rng.random_range(0..6) == 0;
            let finished = time + rng.random_range(60..3_000);
            let carried = if failed {
                Vec::new()
            } else {
                std::mem::take(&mut pending)
            };
            let wire = json!({
                "id": format!("{repository}#{n}"),
                "repository": repository,
                "environment": "production",
                "sha": sha(id),
                "status": if failed { "failure" } else { "success" },
                "started_at": at(time),
                "finished_at": at(finished),
                "commits": carried.iter().map(|c| json!({
                    "sha": c.sha.to_string(),
                    "parents": c.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "authored_at": c.author_date.to_rfc3339(),
                })).collect::<Vec<_>>(),
            });
            let deployment = Deployment {
                source: DeploymentSource::Push,
                repository: name.clone(),
                id: 0,
                environment: Environment::parse("production").unwrap(),
                sha: CommitSha::parse(&sha(id)).unwrap(),
                created_at: Timestamp(time),
                outcome: if failed {
                    DeploymentOutcome::Failed {
                        at: Timestamp(finished),
                    }
                } else {
                    DeploymentOutcome::Succeeded {
                        at: Timestamp(finished),
                    }
                },
            };
            if !failed {
                shipped.push(id);
            }
            deployments.push((wire, deployment, carried));
        }
    }
    let mut incidents = Vec::new();
    for k in 0..rng.random_range(3..12) {
        let created = start + rng.random_range(0..(NOW.0 - start));
        let resolved = (rng.random_range(0..4) != 0)
            .then(|| (created + rng.random_range(60..200_000)).min(NOW.0));
        let root_cause = (!shipped.is_empty() && rng.random_range(0..2) == 0)
            .then(|| sha(shipped[rng.random_range(0..shipped.len())])[..12].to_owned());
        let mut wire = json!({
            "id": format!("{repository}!{k}"),
            "repository": repository,
            "created_at": at(created),
        });
        if let Some(resolved) = resolved {
            wire["resolved_at"] = json!(at(resolved));
        }
        if let Some(root) = &root_cause {
            wire["root_cause"] = json!(root);
        }
        incidents.push((
            wire,
            Incident {
                source: IncidentSource::Push,
                repository: name.clone(),
                number: k,
                created_at: Timestamp(created),
                closed_at: resolved.map(Timestamp),
                labels: Vec::new(),
                root_cause: root_cause.map(|r| ShaPrefix::parse(&r).unwrap()),
            },
        ));
    }
    History {
        deployments,
        incidents,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_fed_only_by_pushes_exports_what_the_engine_computes_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let extra = "[[repositories]]\nname = \"acme/api\"\nteam = \"platform\"\n";
    let config = push_config(&store, 100_000, extra);
    let engine_config = config.engine_config();
    let report_config = config.clone();
    let mut handle = start(config).await;
    handle.wait_for_cycles(1).await.expect("a cycle");
    let repositories = ["acme/billing", "acme/api", "acme/unlisted"];
    let mut builder = EventsBuilder::default();
    let mut sent = 0;
    for (k, repository) in repositories.iter().enumerate() {
        let history = history(repository, k as u64 + 1);
        // In batches of up to 50, in order, as a pipeline would (one by one
        // works the same, only slower).
        for chunk in history.deployments.chunks(50) {
            let body = Value::Array(chunk.iter().map(|(wire, _, _)| wire.clone()).collect());
            let answer = post(&handle, "/api/v1/deployments", &body).await;
            assert_eq!(answer.status, 202, "{answer:?}");
        }
        for (n, (_, deployment, commits)) in history.deployments.into_iter().enumerate() {
            for commit in &commits {
                builder.commit(&deployment.repository, &commit.to_commit());
            }
            builder.deployment(Deployment {
                id: n as u64,
                ..deployment
            });
            sent += 1;
        }
        let body = Value::Array(
            history
                .incidents
                .iter()
                .map(|(wire, _)| wire.clone())
                .collect(),
        );
        assert_eq!(post(&handle, "/api/v1/incidents", &body).await.status, 202);
        for (_, incident) in history.incidents {
            builder.incident(incident);
        }
    }
    assert!(sent > 50, "a real history: {sent} deployments");
    let snapshot = dora::compute(&builder.build(), &engine_config, NOW);
    let expected = crate::support::samples(
        &exporter::render(Some(&snapshot), &HealthSnapshot::default(), "test").unwrap(),
        true,
    );
    // Both pages without health, evaluated at the same `now`.
    let deadline = Instant::now() + METRICS_DEADLINE;
    loop {
        let (_, text) = crate::support::get(&handle, "/metrics").await;
        let mut got = crate::support::samples(&text, true);
        got.retain(|series, _| !series.starts_with("dora_build_info"));
        let mut want = expected.clone();
        want.retain(|series, _| !series.starts_with("dora_build_info"));
        if got == want {
            break;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = want
                .iter()
                .filter(|(s, v)| got.get(*s) != Some(v))
                .take(10)
                .collect();
            let extra: Vec<_> = got
                .iter()
                .filter(|(s, v)| want.get(*s) != Some(v))
                .take(10)
                .collect();
            panic!("the daemon's series differ from the engine's: want {missing:?}, got {extra:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The report covers the repository known only through pushes too.
    let request = dora_collector::report::ReportRequest {
        // The generated history spans the first weeks of the 90 days.
        window: dora_collector::report::ReportWindow::parse("90d").unwrap(),
        until: NOW,
        team: None,
        generated_at: NOW,
    };
    let opened = dora_collector::report::open_store(&store).unwrap();
    let report = dora_collector::report::generate(&opened, &report_config, &request).unwrap();
    let names: Vec<&str> = report
        .repositories
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert!(names.contains(&"acme/unlisted"), "{names:?}");
    let deployed: Vec<(&str, u64)> = report
        .repositories
        .iter()
        .map(|r| (r.name.as_str(), r.deployments))
        .collect();
    assert!(
        report.summary.deployments > 0,
        "{deployed:?} {:?}",
        report.period
    );
    handle.shutdown().await.unwrap();
}

/// A repository whose deployments are pushed and whose commits, incidents and
/// pull requests GitHub gives (`deployments = { from = "push" }`) has the numbers
/// it has when GitHub gives the deployments too: the simulator's deployments of
/// one repository, pushed without commits, against a daemon reading them from
/// the Deployments API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_deployments_take_their_changes_from_github_and_count_as_github_s() {
    use dora_collector::sim::{DeploySource, Org, OrgSpec, SIM_TOKEN};
    let org = Org::generate(&OrgSpec::small(21));
    let index = org
        .repos
        .iter()
        .position(|r| matches!(r.source, DeploySource::Deployments))
        .expect("a Deployments API repository");
    let name = org.full_name(index);
    let team = org.team_of(index).unwrap_or("unassigned").to_owned();
    let deployments: Vec<Value> = org.repos[index]
        .deployments
        .iter()
        .filter_map(|d| {
            let (status, finished) = match d.outcome() {
                DeploymentOutcome::Succeeded { at } => ("success", at),
                DeploymentOutcome::Failed { at } => ("failure", at),
                DeploymentOutcome::Pending => return None,
            };
            Some(json!({
                "id": format!("gh-{}", d.id), "repository": name, "environment": &*d.environment,
                "sha": d.sha.to_string(), "status": status,
                "started_at": d.created_at.min(finished).to_rfc3339(),
                "finished_at": finished.to_rfc3339(),
            }))
        })
        .collect();
    assert!(deployments.len() > 10, "a real history");
    let world = crate::support::World::new(org).await;

    // GitHub gives everything.
    let mut reference = world
        .start(world.config(&[crate::support::repo(&name, &team)]))
        .await;
    let expected = crate::support::ready_metrics(&mut reference).await;
    reference.shutdown().await.unwrap();

    // The same repository, its deployments pushed.
    let store = world.dir.path().join("pushed.db");
    let text = crate::support::config_text(world.sim.base_url(), SIM_TOKEN, &store, &[], "")
        + &format!(
            "[[github.repositories]]\nname = {name:?}\nteam = {team:?}\n\
             deployments = {{ from = \"push\" }}\n\
             [ingest]\n[[ingest.clients]]\nname = \"ci\"\ntoken = \"{CI_TOKEN}\"\n\
             repositories = [\"*/*\"]\n"
        );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"));
    let mut pushed = world.start(config).await;
    pushed.wait_for_cycles(1).await.expect("a first cycle");
    let answer = post(&pushed, "/api/v1/deployments", &Value::Array(deployments)).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    // The next sync reads the change sets of the pushed deployments.
    pushed.sync_now();
    let report = pushed.wait_for_cycles(2).await.expect("a second cycle");
    assert_eq!(report.failures().count(), 0);
    let (_, got) = crate::support::get(&pushed, "/metrics").await;
    let dora = |text: &str| {
        let mut samples = crate::support::samples(text, true);
        samples.retain(|series, _| !series.starts_with("dora_build_info"));
        samples
    };
    let (want, got) = (dora(&expected), dora(&got));
    let differ: Vec<_> = want
        .iter()
        .filter(|(series, value)| got.get(*series) != Some(value))
        .take(10)
        .map(|(series, value)| (series, value, got.get(series)))
        .collect();
    assert!(
        differ.is_empty(),
        "pushed differs from GitHub's: {differ:?}"
    );
    assert_eq!(want.len(), got.len());
    assert!(
        want.keys()
            .any(|s| s.starts_with("dora_lead_time_seconds_count") && want[s] > 0.0),
        "lead time samples from GitHub's commits"
    );
    pushed.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_of_a_team_fails_the_teams_latest_deployment_and_counts_for_the_team() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let teams = "[[repositories]]\nname = \"acme/a\"\nteam = \"web\"\n\
                 [[repositories]]\nname = \"acme/b\"\nteam = \"web\"\n\
                 [[ingest.clients]]\nname = \"narrow\"\n\
                 token = \"narrow-token-0123456789abcdef0123456789ab\"\n\
                 repositories = [\"acme/a\"]\n";
    let handle = start(push_config(&store, 100_000, teams)).await;
    let deploy = |id: &str, repository: &str, n: u64, finished: i64| {
        json!({
            "id": id, "repository": repository, "environment": "production",
            "sha": sha(n), "status": "success", "finished_at": at(finished),
            "commits": [{"sha": sha(n), "parents": [], "authored_at": at(finished - 600)}],
        })
    };
    let pushed = post(
        &handle,
        "/api/v1/deployments",
        &json!([
            deploy("a-1", "acme/a", 1, NOW.0 - 4 * 3600),
            deploy("b-1", "acme/b", 2, NOW.0 - 3 * 3600),
        ]),
    )
    .await;
    assert_eq!(pushed.status, 202, "{pushed:?}");
    let team_incident = json!({
        "id": "page-1", "team": "web", "created_at": at(NOW.0 - 2 * 3600),
        "resolved_at": at(NOW.0 - 3600),
    });

    // Refused: an unknown team, both a repository and a team, a client that may
    // not write every repository of the team. Nothing is kept.
    let mut unknown = team_incident.clone();
    unknown["team"] = json!("nobody");
    let answer = post(&handle, "/api/v1/incidents", &unknown).await;
    assert_eq!(
        (answer.status, &answer.body["field"]),
        (400, &json!("team"))
    );
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("payments, web"),
        "{answer:?}"
    );
    let mut both = team_incident.clone();
    both["repository"] = json!("acme/a");
    let answer = post(&handle, "/api/v1/incidents", &both).await;
    assert_eq!(
        (answer.status, &answer.body["field"]),
        (400, &json!("team"))
    );
    let narrow = post_raw(
        &handle,
        "/api/v1/incidents",
        Some("narrow-token-0123456789abcdef0123456789ab"),
        Some("application/json"),
        team_incident.to_string(),
    )
    .await;
    assert_eq!(
        (narrow.status, &narrow.body["field"]),
        (403, &json!("team"))
    );
    assert!(
        narrow.body["error"].as_str().unwrap().contains("acme/b"),
        "{narrow:?}"
    );
    assert_eq!(counts(&store).scoped_incidents, 0);

    // Accepted, idempotent; acme/b's deployment was the team's latest at its start.
    for _ in 0..2 {
        let answer = post(&handle, "/api/v1/incidents", &team_incident).await;
        assert_eq!(answer.status, 202, "{answer:?}");
    }
    assert_eq!(counts(&store).scoped_incidents, 1);
    let window = "window=\"7d\"";
    wait_for(
        &handle,
        &format!(
            "dora_change_failure_rate{{repository=\"acme/b\",environment=\"production\",team=\"web\",{window}}}"
        ),
        1.0,
    )
    .await;
    let (_, text) = crate::support::get(&handle, "/metrics").await;
    let value = |series: &str| crate::support::value(&text, series);
    assert_eq!(
        value(&format!(
            "dora_change_failure_rate{{repository=\"acme/a\",environment=\"production\",team=\"web\",{window}}}"
        )),
        Some(0.0)
    );
    assert_eq!(
        value(&format!(
            "dora_time_to_restore_seconds_sum{{repository=\"acme/b\",team=\"web\",{window}}}"
        )),
        Some(3600.0)
    );
    assert_eq!(
        value(&format!(
            "dora_team_time_to_restore_seconds_count{{team=\"web\",{window}}}"
        )),
        Some(1.0)
    );
    handle.shutdown().await.unwrap();
}
