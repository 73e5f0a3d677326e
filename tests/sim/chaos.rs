//! The simulated GitHub's chaos, as an HTTP client sees it: each fault at about
//! its configured rate (seeded, so every run sees the same faults), resets that
//! are real TCP resets, truncated bodies that are incomplete and not JSON,
//! secondary limits that hold until `retry-after`, the consecutive-fault cap that
//! lets a retrying client get every response unchanged, new items that shift
//! pages, the primary rate limit taking precedence, and chaos off by default.
//! On `POST /graphql` the faults GitHub's GraphQL API produces: timeouts as
//! `502`/`504` with GitHub's message after a delay, nginx's `502` page, a proxy's
//! plain-text `503`, `200` answers without data ("Something went wrong while
//! executing your query", with and without "timeout"), and `RATE_LIMITED` at
//! `200` with a spent budget that lasts until its reset.

use dora_collector::sim::{
    ChaosCounts, ChaosOptions, Fault, Org, OrgSpec, SimHandle, SimOptions, SimServer,
    DEFAULT_MAX_CONSECUTIVE_FAULTS,
};
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests per rate measurement: enough for a ±50% band around a 20% rate to
/// hold by several standard deviations.
const REQUESTS: u64 = 400;

/// The per-fault rate the rate test configures.
const RATE: f64 = 0.2;

const SECONDARY_MESSAGE: &str = "You have exceeded a secondary rate limit";

fn small() -> Org {
    Org::generate(&OrgSpec::small(5))
}

fn only(fault: Fault, rate: f64) -> ChaosOptions {
    ChaosOptions {
        seed: 11,
        retry_after: Duration::ZERO,
        timeout_delay: Duration::from_millis(1),
        ..ChaosOptions::default()
    }
    .with_rate(fault, rate)
}

async fn serve(chaos: ChaosOptions) -> SimHandle {
    SimServer::start(
        small(),
        SimOptions {
            chaos,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap()
}

/// What a client got for one request.
#[derive(Debug)]
enum Seen {
    /// A whole response.
    Complete {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    /// A response head, then a body that failed.
    BodyFailed {
        status: u16,
        content_length: Option<u64>,
    },
    /// No response at all.
    NoResponse(reqwest::Error),
}

impl Seen {
    fn json(&self) -> Option<Value> {
        match self {
            Seen::Complete { body, .. } => serde_json::from_slice(body).ok(),
            _ => None,
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            Seen::Complete { status, .. } | Seen::BodyFailed { status, .. } => Some(*status),
            Seen::NoResponse(_) => None,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        match self {
            Seen::Complete { headers, .. } => headers.get(name).and_then(|v| v.to_str().ok()),
            _ => None,
        }
    }

    /// A `200` with a JSON body.
    fn is_success(&self) -> bool {
        self.status() == Some(200) && self.json().is_some()
    }
}

/// Whether `error` was caused by a TCP reset (also used by the other
/// simulators' fault tests).
pub(crate) fn is_reset(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionReset {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// What a client got for a request that was sent.
async fn seen(response: Result<reqwest::Response, reqwest::Error>) -> Seen {
    let response = match response {
        Ok(response) => response,
        Err(error) => return Seen::NoResponse(error),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_length = response.content_length();
    match response.bytes().await {
        Ok(body) => Seen::Complete {
            status,
            headers,
            body: body.to_vec(),
        },
        Err(_) => Seen::BodyFailed {
            status,
            content_length,
        },
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(handle: &SimHandle) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: handle.base_url().to_owned(),
            token: handle.token().to_owned(),
        }
    }

    async fn get(&self, path: &str) -> Seen {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        seen(self.http.get(url).bearer_auth(&self.token).send().await).await
    }

    /// `POST /graphql` with `body`, and how long the answer took.
    async fn graphql(&self, body: &Value) -> (Seen, Duration) {
        let started = Instant::now();
        let response = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await;
        (seen(response).await, started.elapsed())
    }

    /// Retries until a `200` with JSON, at most `attempts` times.
    async fn get_retrying(&self, path: &str, attempts: u32) -> Option<(Value, u32)> {
        for attempt in 1..=attempts {
            let seen = self.get(path).await;
            if seen.is_success() {
                return seen.json().map(|body| (body, attempt));
            }
        }
        None
    }
}

/// The fault a response shows, checking that it looks as documented; `None` for
/// a success.
fn fault_of(seen: &Seen) -> Option<Fault> {
    match seen {
        Seen::NoResponse(error) => {
            assert!(
                is_reset(error),
                "a connection error that is not a reset: {error:?}"
            );
            Some(Fault::Reset)
        }
        Seen::BodyFailed {
            status,
            content_length,
        } => {
            assert_eq!(*status, 200);
            assert!(content_length.is_some_and(|n| n > 0));
            Some(Fault::Truncated)
        }
        Seen::Complete { status: 200, .. } => {
            assert!(seen.json().is_some(), "a 200 with a JSON body");
            None
        }
        Seen::Complete {
            status: status @ (502 | 504),
            ..
        } if seen.json().is_some() => {
            let body = seen.json().unwrap();
            assert!(body["message"].as_str().unwrap().starts_with(IN_TIME));
            Some(if *status == 502 {
                Fault::Timeout
            } else {
                Fault::GatewayTimeout
            })
        }
        Seen::Complete { status: 502, .. } => {
            assert!(seen
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html")));
            assert!(seen.json().is_none(), "an HTML page");
            Some(Fault::BadGateway)
        }
        Seen::Complete { status: 503, .. } => {
            assert_eq!(seen.header("content-type"), Some("text/plain"));
            assert!(seen.json().is_none(), "plain text");
            Some(Fault::Unavailable)
        }
        Seen::Complete { status: 500, .. } => {
            assert_eq!(seen.json().unwrap()["message"], "Server Error");
            Some(Fault::ServerError)
        }
        Seen::Complete {
            status: status @ (403 | 429),
            ..
        } => {
            let body = seen.json().unwrap();
            assert!(body["message"]
                .as_str()
                .unwrap()
                .starts_with(SECONDARY_MESSAGE));
            assert!(body["documentation_url"]
                .as_str()
                .unwrap()
                .ends_with("#about-secondary-rate-limits"));
            assert!(seen.header("retry-after").is_some());
            let remaining: u64 = seen
                .header("x-ratelimit-remaining")
                .unwrap()
                .parse()
                .unwrap();
            assert!(remaining > 0, "a secondary limit, not the primary one");
            Some(if *status == 403 {
                Fault::SecondaryLimit
            } else {
                Fault::TooManyRequests
            })
        }
        other => panic!("unexpected response {other:?}"),
    }
}

fn repo_path(handle: &SimHandle, index: usize) -> String {
    handle.with_org(|org| format!("/repos/{}/{}", org.owner, org.repos[index].name))
}

/// `n` distinct requests over several endpoints.
fn distinct_paths(handle: &SimHandle, n: u64) -> Vec<String> {
    let repos = handle.with_org(|org| org.repos.len());
    (0..n)
        .map(|i| {
            let repo = repo_path(handle, i as usize % repos);
            let page = i / 5 + 1;
            match i % 5 {
                0 => format!("{repo}/issues?per_page=3&page={page}"),
                1 => format!("{repo}/commits?per_page=3&page={page}"),
                2 => format!("{repo}/pulls?state=all&per_page=3&page={page}"),
                3 => format!("{repo}/actions/runs?per_page=3&page={page}"),
                _ => format!("{repo}/deployments?per_page=3&page={page}"),
            }
        })
        .collect()
}

/// Sends every path once; the fault each showed (`None`: success).
async fn observe(handle: &SimHandle, paths: &[String]) -> Vec<Option<Fault>> {
    let client = Client::new(handle);
    let mut seen = Vec::with_capacity(paths.len());
    for path in paths {
        seen.push(fault_of(&client.get(path).await));
    }
    seen
}

fn tally(faults: &[Option<Fault>]) -> BTreeMap<Option<Fault>, u64> {
    let mut counts = BTreeMap::new();
    for fault in faults {
        *counts.entry(*fault).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn chaos_is_off_by_default() {
    assert_eq!(SimOptions::default().chaos, ChaosOptions::default());
    assert!(ChaosOptions::default().is_off());
    let handle = SimServer::start(small(), SimOptions::default())
        .await
        .unwrap();
    let paths = distinct_paths(&handle, REQUESTS);
    let faults = observe(&handle, &paths).await;
    assert!(faults.iter().all(Option::is_none));
    assert_eq!(handle.chaos_counts(), ChaosCounts::default());
    assert_eq!(handle.secondary_limit_violations(), 0);
    assert_eq!(handle.request_counts().total, REQUESTS);
    assert_eq!(handle.rate_limit().used, REQUESTS);
}

#[tokio::test]
async fn each_fault_shows_at_about_its_rate_and_only_answered_requests_cost_budget() {
    let expected = RATE * REQUESTS as f64;
    for fault in [
        Fault::Reset,
        Fault::ServerError,
        Fault::BadGateway,
        Fault::SecondaryLimit,
        Fault::TooManyRequests,
        Fault::Truncated,
        Fault::Timeout,
        Fault::GatewayTimeout,
        Fault::Unavailable,
    ] {
        let handle = serve(only(fault, RATE)).await;
        let paths = distinct_paths(&handle, REQUESTS);
        let seen = tally(&observe(&handle, &paths).await);
        let injected = seen.get(&Some(fault)).copied().unwrap_or(0);
        assert_eq!(
            seen.len(),
            2,
            "{fault:?}: only that fault and successes: {seen:?}"
        );
        assert!(
            (expected * 0.5..=expected * 1.5).contains(&(injected as f64)),
            "{fault:?}: {injected} of {REQUESTS}"
        );
        let counts = handle.chaos_counts();
        assert_eq!(counts.get(fault), injected, "{fault:?}");
        assert_eq!(counts.faults(), injected, "{fault:?}");
        assert_eq!(counts.capped, 0, "distinct requests are never capped");
        // What the API answered costs budget and is counted; the rest is not.
        let answered = if fault == Fault::Truncated {
            REQUESTS
        } else {
            REQUESTS - injected
        };
        assert_eq!(handle.rate_limit().used, answered, "{fault:?}");
        assert_eq!(handle.request_counts().total, answered, "{fault:?}");
        assert_eq!(handle.rate_limit_violations(), 0);
        assert_eq!(handle.secondary_limit_violations(), 0);
    }
}

#[tokio::test]
async fn slow_responses_start_late_and_are_otherwise_whole() {
    const SLOW: Duration = Duration::from_millis(25);
    const N: u64 = 200;
    let handle = serve(ChaosOptions {
        slow_delay: SLOW,
        ..only(Fault::Slow, 0.25)
    })
    .await;
    let client = Client::new(&handle);
    let mut late = 0;
    for path in distinct_paths(&handle, N) {
        let started = Instant::now();
        let seen = client.get(&path).await;
        if started.elapsed() >= SLOW {
            late += 1;
        }
        assert!(seen.is_success(), "{seen:?}");
    }
    let slow = handle.chaos_counts().slow;
    assert!((25..=75).contains(&slow), "{slow} of {N}");
    // A lower bound only: other requests may be late too on a busy machine.
    assert!(late >= slow, "{late} late, {slow} slowed");
    assert_eq!(handle.rate_limit().used, N, "slow responses are real ones");
}

/// A GET over a raw TCP connection: everything the server sent before closing.
async fn raw_get(handle: &SimHandle, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(handle.addr()).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        handle.addr(),
        handle.token()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await?;
    Ok(received)
}

#[tokio::test]
async fn resets_are_tcp_resets_and_the_cap_lets_the_request_through() {
    let handle = serve(only(Fault::Reset, 1.0)).await;
    let path = format!("{}/issues", repo_path(&handle, 0));
    let raw = raw_get(&handle, &path).await;
    assert_eq!(
        raw.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionReset),
        "the socket sees a reset, not a response: {raw:?}"
    );
    let client = Client::new(&handle);
    for _ in 1..DEFAULT_MAX_CONSECUTIVE_FAULTS {
        let seen = client.get(&path).await;
        assert!(
            matches!(&seen, Seen::NoResponse(e) if is_reset(e)),
            "{seen:?}"
        );
    }
    assert!(client.get(&path).await.is_success(), "the cap spares it");
    let counts = handle.chaos_counts();
    assert_eq!(counts.reset, u64::from(DEFAULT_MAX_CONSECUTIVE_FAULTS));
    assert_eq!(counts.capped, 1);
    assert_eq!(handle.rate_limit().used, 1);
}

#[tokio::test]
async fn truncated_bodies_are_incomplete_and_not_json() {
    let handle = serve(only(Fault::Truncated, 1.0)).await;
    let path = format!("{}/issues?state=all", repo_path(&handle, 0));
    let raw = raw_get(&handle, &path).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let body = &raw[split + 4..];
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let declared: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        !body.is_empty() && body.len() < declared,
        "{} of {declared}",
        body.len()
    );
    assert!(serde_json::from_slice::<Value>(body).is_err());

    let client = Client::new(&handle);
    let response = client
        .http
        .get(format!("{}{path}", client.base))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.json::<Value>().await.is_err());
    let seen = client.get(&path).await;
    assert!(matches!(seen, Seen::BodyFailed { .. }), "{seen:?}");
    let whole = client.get(&path).await;
    assert!(whole.is_success(), "the cap spares the fourth");
    let Seen::Complete { body: whole, .. } = whole else {
        unreachable!()
    };
    assert_eq!(whole.len(), declared);
    assert!(whole.starts_with(body), "the cut is a prefix of the body");
    assert_eq!(handle.chaos_counts().truncated, 3);
}

#[tokio::test]
async fn bodiless_responses_are_not_truncated() {
    let handle = serve(only(Fault::Truncated, 1.0)).await;
    handle.set_chaos(ChaosOptions::default()).unwrap();
    let client = Client::new(&handle);
    let path = format!("{}/issues", repo_path(&handle, 1));
    let Seen::Complete { headers, .. } = client.get(&path).await else {
        panic!("chaos is off");
    };
    let etag = headers.get("etag").unwrap().clone();
    handle.set_chaos(only(Fault::Truncated, 1.0)).unwrap();
    for _ in 0..5 {
        let response = client
            .http
            .get(format!("{}{path}", client.base))
            .bearer_auth(&client.token)
            .header("if-none-match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 304);
        assert!(response.bytes().await.unwrap().is_empty());
    }
    assert_eq!(handle.chaos_counts(), ChaosCounts::default());
}

/// A secondary limit of `fault` with `retry-after: 1`: the token keeps getting it
/// (counted as violations) until the second has passed, even with chaos off.
async fn secondary_limit_holds(fault: Fault, status: u16) {
    let handle = serve(ChaosOptions {
        retry_after: Duration::from_secs(1),
        ..only(fault, 1.0)
    })
    .await;
    let client = Client::new(&handle);
    let first = client
        .get(&format!("{}/issues", repo_path(&handle, 0)))
        .await;
    assert_eq!(fault_of(&first), Some(fault));
    assert_eq!(first.header("retry-after"), Some("1"));
    assert_eq!(
        handle.secondary_limit_violations(),
        0,
        "the fault itself is none"
    );
    handle.set_chaos(ChaosOptions::default()).unwrap();

    // Too early, on any path: the same answer, a violation.
    let again = client
        .get(&format!("{}/pulls", repo_path(&handle, 1)))
        .await;
    assert_eq!(again.status(), Some(status));
    assert!(again.json().unwrap()["message"]
        .as_str()
        .unwrap()
        .starts_with(SECONDARY_MESSAGE));
    assert_eq!(again.header("retry-after"), Some("1"));
    assert_eq!(handle.secondary_limit_violations(), 1);
    assert_eq!(handle.chaos_counts().secondary_violations, 1);

    // Honouring retry-after: a bounded wait, not a timing assertion.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = client
        .get(&format!("{}/pulls", repo_path(&handle, 1)))
        .await;
    assert!(after.is_success(), "{after:?}");
    assert_eq!(handle.secondary_limit_violations(), 1);
    assert_eq!(handle.rate_limit().used, 1, "limited answers cost nothing");
    assert_eq!(handle.rate_limit_violations(), 0);
}

#[tokio::test]
async fn a_403_secondary_limit_holds_until_retry_after() {
    secondary_limit_holds(Fault::SecondaryLimit, 403).await;
}

#[tokio::test]
async fn a_429_secondary_limit_holds_until_retry_after() {
    secondary_limit_holds(Fault::TooManyRequests, 429).await;
}

#[tokio::test]
async fn a_retrying_client_gets_every_response_as_without_chaos() {
    let handle = serve(ChaosOptions::default()).await;
    let paths = distinct_paths(&handle, 60);
    let client = Client::new(&handle);
    let mut clean = Vec::new();
    for path in &paths {
        let seen = client.get(path).await;
        clean.push(seen.json().unwrap());
    }
    // Every request draws a fault (the rates sum to exactly 1) until the cap:
    // every fault a REST request can get.
    let all = ChaosOptions {
        seed: 7,
        retry_after: Duration::ZERO,
        slow_delay: Duration::from_millis(1),
        timeout_delay: Duration::from_millis(1),
        reset_rate: 0.2,
        server_error_rate: 0.1,
        bad_gateway_rate: 0.1,
        secondary_limit_rate: 0.1,
        too_many_requests_rate: 0.1,
        slow_rate: 0.1,
        truncated_rate: 0.1,
        timeout_rate: 0.1,
        gateway_timeout_rate: 0.05,
        unavailable_rate: 0.05,
        ..ChaosOptions::default()
    };
    handle.set_chaos(all.clone()).unwrap();
    let attempts = DEFAULT_MAX_CONSECUTIVE_FAULTS + 1;
    let mut slowed_successes = 0;
    for (path, expected) in paths.iter().zip(&clean) {
        let (body, attempt) = client
            .get_retrying(path, attempts)
            .await
            .unwrap_or_else(|| panic!("{path} failed {attempts} times"));
        assert_eq!(&body, expected, "{path}");
        if attempt < attempts {
            slowed_successes += 1;
        }
    }
    let counts = handle.chaos_counts();
    let graphql_only = [
        Fault::QueryTimeout,
        Fault::TransientError,
        Fault::RateLimited,
    ];
    for fault in Fault::ALL {
        if graphql_only.contains(&fault) {
            assert_eq!(all.rate(fault), 0.0, "{fault:?} is for GraphQL requests");
        } else {
            assert!(counts.get(fault) > 0, "{fault:?} never drawn: {counts:?}");
        }
    }
    // A slow response is a fault that still succeeds, so the client stops early.
    assert_eq!(slowed_successes, counts.slow);
    assert_eq!(counts.capped, paths.len() as u64 - counts.slow);
    assert_eq!(handle.rate_limit_violations(), 0);
    assert_eq!(handle.secondary_limit_violations(), 0);
}

/// The ids on each page of a naive walk that follows `next` links.
async fn walk_ids(client: &Client, first: &str) -> Vec<Vec<u64>> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(url) = next.take() {
        assert!(pages.len() < 100, "runaway pagination");
        let Seen::Complete { headers, body, .. } = client.get(&url).await else {
            panic!("no faults configured");
        };
        let items: Vec<Value> = serde_json::from_slice(&body).unwrap();
        pages.push(items.iter().map(|i| i["id"].as_u64().unwrap()).collect());
        next = headers
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|link| {
                link.split(", ").find_map(|part| {
                    let (url, rel) = part.split_once("; ")?;
                    (rel == "rel=\"next\"").then(|| url.trim_matches(['<', '>']).to_owned())
                })
            });
    }
    pages
}

#[tokio::test]
async fn new_items_between_pages_shift_offsets() {
    const PER_PAGE: usize = 4;
    let handle = serve(ChaosOptions {
        new_items_rate: 1.0,
        ..only(Fault::Reset, 0.0)
    })
    .await;
    let (repo, before) = handle.with_org(|org| {
        let (index, repo) = org
            .repos
            .iter()
            .enumerate()
            .filter(|(_, r)| r.workflow().is_none())
            .max_by_key(|(_, r)| r.deployments.len())
            .unwrap();
        (index, repo.deployments.len())
    });
    assert!(before > 3 * PER_PAGE, "a list of several pages");
    let client = Client::new(&handle);
    let pages = walk_ids(
        &client,
        &format!(
            "{}/deployments?per_page={PER_PAGE}",
            repo_path(&handle, repo)
        ),
    )
    .await;
    let inserted = pages.len() as u64 - 1;
    assert_eq!(handle.chaos_counts().new_items, inserted);
    let after = handle.with_org(|org| org.repos[repo].deployments.len());
    assert_eq!(after, before + inserted as usize);
    // Each page starts with the last item of the page before: a duplicate.
    for pair in pages.windows(2) {
        assert_eq!(pair[0].last(), pair[1].first());
    }
    let seen: Vec<u64> = pages.concat();
    let distinct: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen.len() - distinct.len(), inserted as usize);
    assert_eq!(
        distinct.len(),
        before,
        "the walk saw only the old items, each new one landed before its page"
    );

    // Issues shift the same way.
    let pages = walk_ids(
        &client,
        &format!(
            "{}/issues?state=all&per_page={PER_PAGE}",
            repo_path(&handle, 0)
        ),
    )
    .await;
    assert!(pages.len() > 2);
    for pair in pages.windows(2) {
        assert_eq!(pair[0].last(), pair[1].first());
    }
}

#[tokio::test]
async fn the_primary_limit_comes_first_and_unauthenticated_requests_are_spared() {
    let handle = serve(ChaosOptions {
        max_consecutive_faults: u32::MAX,
        ..only(Fault::ServerError, 1.0)
    })
    .await;
    let client = Client::new(&handle);
    let path = format!("{}/issues", repo_path(&handle, 0));
    handle.set_rate_limit_remaining(0);
    for _ in 0..5 {
        let seen = client.get(&path).await;
        assert_eq!(seen.status(), Some(403));
        assert!(seen.json().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded"));
    }
    assert_eq!(handle.rate_limit_violations(), 5);
    assert_eq!(handle.chaos_counts().faults(), 0);
    // /rate_limit costs nothing, so it can still be faulted.
    assert_eq!(client.get("/rate_limit").await.status(), Some(500));

    handle.reset_rate_limit();
    assert_eq!(client.get(&path).await.status(), Some(500));
    assert_eq!(handle.rate_limit().used, 0, "faults cost no budget");
    let anonymous = reqwest::get(format!("{}{path}", handle.base_url()))
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(handle.chaos_counts().server_error, 2);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let options = ChaosOptions {
        seed: 99,
        retry_after: Duration::ZERO,
        server_error_rate: 0.2,
        bad_gateway_rate: 0.2,
        secondary_limit_rate: 0.2,
        ..ChaosOptions::default()
    };
    let run = |options: ChaosOptions| async move {
        let handle = serve(options).await;
        let paths = distinct_paths(&handle, 100);
        observe(&handle, &paths).await
    };
    let first = run(options.clone()).await;
    assert_eq!(first, run(options.clone()).await);
    assert_ne!(
        first,
        run(ChaosOptions {
            seed: 100,
            ..options
        })
        .await
    );
}

#[tokio::test]
async fn invalid_chaos_is_refused() {
    let invalid = only(Fault::Reset, 0.7).with_rate(Fault::Slow, 0.7);
    let error = SimServer::start(
        small(),
        SimOptions {
            chaos: invalid.clone(),
            ..SimOptions::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let handle = serve(ChaosOptions::default()).await;
    assert!(handle.set_chaos(invalid).is_err());
    assert_eq!(handle.chaos(), ChaosOptions::default(), "left unchanged");
}

/// A valid query of the organisation's first repository, different per `n` (so
/// that answers can be told apart).
fn graphql_query(handle: &SimHandle, n: u64) -> Value {
    let (owner, name) = handle.with_org(|org| (org.owner.clone(), org.repos[0].name.clone()));
    serde_json::json!({
        "query": "query Q($owner: String!, $name: String!, $first: Int!) { rateLimit { cost remaining } repository(owner: $owner, name: $name) { deployments(first: $first) { nodes { databaseId } } } }",
        "variables": {"owner": owner, "name": name, "first": 1 + n % 50},
    })
}

const TIMEOUT_DELAY: Duration = Duration::from_millis(30);

/// GitHub's timeout message on `502`/`504`.
const IN_TIME: &str = "We couldn't respond to your request in time.";

/// The GraphQL fault an answer shows, checking that it looks as GitHub sends it;
/// `None` for a whole answer.
fn graphql_fault_of(seen: &Seen, took: Duration) -> Option<Fault> {
    if !matches!(seen, Seen::Complete { .. }) {
        return fault_of(seen);
    }
    let json = seen.json();
    let resource = seen.header("x-ratelimit-resource");
    let first_error = json
        .as_ref()
        .and_then(|b| b["errors"].get(0).cloned())
        .unwrap_or(Value::Null);
    let message = first_error["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match seen.status() {
        Some(200) if json.as_ref().is_some_and(|b| b["data"].is_object()) => None,
        Some(200)
            if first_error["type"] == "RATE_LIMITED" || first_error["type"] == "RATE_LIMIT" =>
        {
            assert_eq!(seen.header("x-ratelimit-remaining"), Some("0"));
            assert_eq!(resource, Some("graphql"));
            Some(Fault::RateLimited)
        }
        Some(200) => {
            assert!(json.as_ref().unwrap()["data"].is_null(), "{json:?}");
            assert!(first_error.get("type").is_none(), "untyped: {first_error}");
            assert!(
                message.starts_with("Something went wrong while executing your query."),
                "{message}"
            );
            if message.contains("This may be the result of a timeout") {
                assert!(took >= TIMEOUT_DELAY, "{took:?}");
                Some(Fault::QueryTimeout)
            } else {
                assert!(message.contains("when reporting this issue"), "{message}");
                Some(Fault::TransientError)
            }
        }
        Some(status @ (502 | 504)) if json.is_some() => {
            assert!(json.unwrap()["message"]
                .as_str()
                .unwrap()
                .starts_with(IN_TIME));
            assert_eq!(resource, Some("graphql"));
            assert!(took >= TIMEOUT_DELAY, "{took:?}");
            Some(if status == 502 {
                Fault::Timeout
            } else {
                Fault::GatewayTimeout
            })
        }
        Some(502) => {
            let Seen::Complete { body, .. } = seen else {
                panic!("{seen:?}")
            };
            let page = String::from_utf8_lossy(body);
            assert!(page.contains("<center>nginx</center>"), "{page}");
            Some(Fault::BadGateway)
        }
        Some(503) => {
            assert_eq!(seen.header("content-type"), Some("text/plain"));
            assert!(json.is_none(), "plain text");
            Some(Fault::Unavailable)
        }
        _ => fault_of(seen),
    }
}

#[tokio::test]
async fn graphql_requests_get_the_faults_github_sends() {
    let faults = [
        Fault::Timeout,
        Fault::GatewayTimeout,
        Fault::Unavailable,
        Fault::QueryTimeout,
        Fault::TransientError,
        Fault::BadGateway,
        Fault::ServerError,
        Fault::Reset,
        Fault::Truncated,
    ];
    for fault in faults {
        let handle = serve(ChaosOptions {
            timeout_delay: TIMEOUT_DELAY,
            ..only(fault, RATE)
        })
        .await;
        let client = Client::new(&handle);
        let mut seen = Vec::new();
        for n in 0..100 {
            let (answer, took) = client.graphql(&graphql_query(&handle, n)).await;
            seen.push(graphql_fault_of(&answer, took));
        }
        let tally = tally(&seen);
        let injected = tally.get(&Some(fault)).copied().unwrap_or(0);
        assert_eq!(
            tally.len(),
            2,
            "{fault:?}: only that fault and successes: {tally:?}"
        );
        assert!((5..=40).contains(&injected), "{fault:?}: {injected} of 100");
        assert_eq!(handle.chaos_counts().get(fault), injected, "{fault:?}");
        assert_eq!(handle.rate_limit_violations(), 0);
    }
}

#[tokio::test]
async fn rest_requests_are_spared_the_graphql_only_faults_and_time_out_alike() {
    for fault in [
        Fault::QueryTimeout,
        Fault::TransientError,
        Fault::RateLimited,
    ] {
        let handle = serve(only(fault, 1.0)).await;
        let paths = distinct_paths(&handle, 20);
        assert!(observe(&handle, &paths).await.iter().all(Option::is_none));
        assert_eq!(handle.chaos_counts().faults(), 0, "{fault:?}");
    }
    for (fault, status) in [(Fault::Timeout, 502), (Fault::GatewayTimeout, 504)] {
        let handle = serve(ChaosOptions {
            timeout_delay: TIMEOUT_DELAY,
            ..only(fault, 1.0)
        })
        .await;
        let client = Client::new(&handle);
        let started = Instant::now();
        let seen = client.get(&distinct_paths(&handle, 1)[0]).await;
        assert!(started.elapsed() >= TIMEOUT_DELAY);
        assert_eq!(seen.status(), Some(status));
        assert!(seen.json().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with(IN_TIME));
        assert_eq!(seen.header("x-ratelimit-resource"), Some("core"));
        assert_eq!(handle.rate_limit().used, 0, "a timeout costs no budget");
    }
}

#[tokio::test]
async fn a_rate_limited_graphql_budget_stays_spent_until_its_reset() {
    let handle = serve(ChaosOptions {
        retry_after: Duration::from_secs(1),
        ..only(Fault::RateLimited, 1.0)
    })
    .await;
    let client = Client::new(&handle);
    let (first, _) = client.graphql(&graphql_query(&handle, 0)).await;
    assert_eq!(
        graphql_fault_of(&first, Duration::ZERO),
        Some(Fault::RateLimited)
    );
    let reset: i64 = first.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        reset as f64 >= now && (reset as f64) <= now + 2.0,
        "{reset} vs {now}"
    );
    // Chaos off: the spent budget is the token's state, not a fault to draw.
    handle.set_chaos(ChaosOptions::default()).unwrap();
    let (again, _) = client.graphql(&graphql_query(&handle, 1)).await;
    assert_eq!(
        graphql_fault_of(&again, Duration::ZERO),
        Some(Fault::RateLimited)
    );
    assert_eq!(handle.chaos_counts().rate_limited_violations, 1);
    // REST is another budget.
    let rest = client.get(&distinct_paths(&handle, 1)[0]).await;
    assert!(rest.is_success());
    // From the reset on, GraphQL answers again.
    let wait = (reset as f64 - now).max(0.0) + 0.05;
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    let (after, _) = client.graphql(&graphql_query(&handle, 2)).await;
    assert_eq!(graphql_fault_of(&after, Duration::ZERO), None, "{after:?}");
    let counts = handle.chaos_counts();
    assert_eq!(
        (counts.rate_limited, counts.rate_limited_violations),
        (1, 1)
    );
}

#[tokio::test]
async fn graphql_rate_limits_are_spelled_both_ways() {
    let handle = serve(ChaosOptions {
        retry_after: Duration::from_secs(1),
        ..only(Fault::RateLimited, 1.0)
    })
    .await;
    let client = Client::new(&handle);
    let mut spellings = HashSet::new();
    for n in 0..6 {
        let (seen, _) = client.graphql(&graphql_query(&handle, n)).await;
        let body = seen.json().unwrap();
        spellings.insert(body["errors"][0]["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        spellings,
        HashSet::from(["RATE_LIMITED".to_owned(), "RATE_LIMIT".to_owned()])
    );
}
