//! The simulated PagerDuty REST API v2 over HTTP (axum): [`PdServer::start`]
//! serves a [`PdAccount`] on `127.0.0.1` and returns a [`PdHandle`] to read
//! counters, change the account while it is served, and stop.
//!
//! Every request goes through PagerDuty's steps: the key (`Authorization:
//! Token token=<key>`, else `401` with error code 2006), the rate limit (960
//! requests a minute by default; `ratelimit-limit`, `ratelimit-remaining` and
//! `ratelimit-reset` (seconds) on every answer, `429` with code 2020 once spent),
//! then the endpoint: `GET /incidents` (`service_ids[]`, `since`, `until`,
//! `date_range=all`, `statuses[]`, `urgencies[]`, `sort_by`, `offset`, `limit`
//! up to 100, default 25, `total`; a range over 180 days, unreadable times,
//! or `offset + limit` over 10,000 are `400`), `GET /incidents/{id}`
//! (`include[]=body` adds the body), `GET /incidents/{id}/log_entries` (newest
//! first, paginated the same way), `GET /incidents/{id}/notes` (not paginated)
//! and `GET /services/{id}`; anything else is `404` with code 2100. A request
//! without `Accept: application/vnd.pagerduty+json;version=2` is answered all
//! the same, and counted ([`PdHandle::unversioned_requests`]).
//!
//! Data: nothing created after the account's `now` is served; statuses and
//! resolutions are read from the log as of `now`.
//!
//! Faults on purpose (feature `chaos`): [`PdChaos`] answers a share of requests
//! with `429` (with `ratelimit-reset: 1`) or `500`/`503`, or resets their
//! connection before any response byte (the GitHub simulator's resets:
//! the server is served by `server::chaos::serve_resettable`), seeded, at most
//! `max_consecutive_faults` in a row for one request target; such answers are
//! counted in [`PdHandle::faults`] (resets also in [`PdHandle::resets`]), not in
//! the request counts.

use super::model::{PdAccount, PdIncident, PdLogEntry, PdStatus, PdUrgency};
use crate::domain::Timestamp;
use crate::server::RequestCounts;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The key the simulated PagerDuty accepts by default (not shaped like a real
/// one).
pub const PD_SIM_TOKEN: &str = "dora-sim-pagerduty-key-0000";

/// PagerDuty's limit per key: requests per window.
pub const PD_DEFAULT_RATE_LIMIT: u64 = 960;

/// PagerDuty's rate-limit window.
pub const PD_RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);

/// The versioning `Accept` header PagerDuty documents.
pub const PD_ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// Classic pagination's page size without `limit`.
const DEFAULT_LIMIT: u64 = 25;
/// The largest `limit`.
const MAX_LIMIT: u64 = 100;
/// `offset + limit` may not exceed this.
const MAX_PAGINATED_RECORDS: u64 = 10_000;
/// The longest `since`..`until` range (PagerDuty: 6 months; the simulator is
/// strict about it).
const MAX_RANGE_SECONDS: i64 = 180 * 86_400;
/// The range without `since` (PagerDuty: one month).
const DEFAULT_RANGE_SECONDS: i64 = 30 * 86_400;

/// The route templates counted.
const ROUTE_INCIDENTS: &str = "GET /incidents";
const ROUTE_INCIDENT: &str = "GET /incidents/{id}";
const ROUTE_LOG_ENTRIES: &str = "GET /incidents/{id}/log_entries";
const ROUTE_NOTES: &str = "GET /incidents/{id}/notes";
const ROUTE_SERVICE: &str = "GET /services/{id}";
const ROUTE_UNMATCHED: &str = "unmatched";

/// How the simulated PagerDuty behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct PdOptions {
    /// The only key accepted.
    pub token: String,
    /// Requests allowed per window.
    pub rate_limit: u64,
    /// Length of the rate-limit window.
    pub rate_limit_window: Duration,
    /// Faults to inject.
    #[cfg(feature = "chaos")]
    pub chaos: PdChaos,
}

impl Default for PdOptions {
    fn default() -> Self {
        PdOptions {
            token: PD_SIM_TOKEN.to_owned(),
            rate_limit: PD_DEFAULT_RATE_LIMIT,
            rate_limit_window: PD_RATE_LIMIT_WINDOW,
            #[cfg(feature = "chaos")]
            chaos: PdChaos::default(),
        }
    }
}

/// Faults the simulated PagerDuty injects (per request, at most one; the rates
/// sum to at most 1).
#[cfg(feature = "chaos")]
#[derive(Debug, Clone, PartialEq)]
pub struct PdChaos {
    /// Seed of the draws.
    pub seed: u64,
    /// Share of requests answered `500` (JSON) or `503` (text), half each.
    pub server_error_rate: f64,
    /// Share of requests answered `429` with `ratelimit-reset: 1`.
    pub too_many_requests_rate: f64,
    /// Share of requests whose connection is reset before any response byte
    /// (the client reads `ECONNRESET`).
    pub reset_rate: f64,
    /// Most faults in a row for one request target.
    pub max_consecutive_faults: u32,
}

/// The default cap on faults in a row for one request target (as the other
/// simulators').
#[cfg(feature = "chaos")]
const DEFAULT_MAX_CONSECUTIVE_FAULTS: u32 = 3;

#[cfg(feature = "chaos")]
impl Default for PdChaos {
    fn default() -> Self {
        PdChaos {
            seed: 0,
            server_error_rate: 0.0,
            too_many_requests_rate: 0.0,
            reset_rate: 0.0,
            max_consecutive_faults: DEFAULT_MAX_CONSECUTIVE_FAULTS,
        }
    }
}

struct Budget {
    limit: u64,
    window: Duration,
    used: u64,
    started: Instant,
}

impl Budget {
    fn refresh(&mut self) {
        if self.started.elapsed() >= self.window {
            self.used = 0;
            self.started = Instant::now();
        }
    }

    fn reset_seconds(&self) -> u64 {
        self.window
            .saturating_sub(self.started.elapsed())
            .as_secs()
            .max(1)
    }
}

struct ServerState {
    budget: Budget,
    counts: RequestCounts,
    unversioned: u64,
    targets: Vec<String>,
    #[cfg(feature = "chaos")]
    chaos: ChaosState,
}

#[cfg(feature = "chaos")]
struct ChaosState {
    options: PdChaos,
    rng: rand_chacha::ChaCha8Rng,
    streak: std::collections::HashMap<String, u32>,
    faults: u64,
    resets: u64,
}

/// Most request targets kept for [`PdHandle::targets`].
const MAX_RECORDED_TARGETS: usize = 100_000;

struct Shared {
    account: RwLock<PdAccount>,
    token: RwLock<String>,
    base_url: String,
    state: Mutex<ServerState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts simulated PagerDuty servers.
pub struct PdServer;

impl PdServer {
    /// Serves `account` on `127.0.0.1` at a free port.
    pub async fn start(account: PdAccount, options: PdOptions) -> std::io::Result<PdHandle> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            account: RwLock::new(account),
            token: RwLock::new(options.token),
            base_url: base_url.clone(),
            state: Mutex::new(ServerState {
                budget: Budget {
                    limit: options.rate_limit,
                    window: options.rate_limit_window,
                    used: 0,
                    started: Instant::now(),
                },
                counts: RequestCounts::default(),
                unversioned: 0,
                targets: Vec::new(),
                #[cfg(feature = "chaos")]
                chaos: ChaosState {
                    rng: rand::SeedableRng::seed_from_u64(options.chaos.seed),
                    options: options.chaos,
                    streak: std::collections::HashMap::new(),
                    faults: 0,
                    resets: 0,
                },
            }),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        #[cfg(feature = "chaos")]
        let task = tokio::spawn(crate::server::chaos::serve_resettable(
            listener, app, stopped,
        ));
        #[cfg(not(feature = "chaos"))]
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        });
        Ok(PdHandle {
            shared,
            addr,
            base_url,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running simulated PagerDuty.
pub struct PdHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl PdHandle {
    /// `http://127.0.0.1:<port>`: the `api_url` to configure.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the accepted key (a rotated or revoked key).
    pub fn set_token(&self, token: &str) {
        *self
            .shared
            .token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = token.to_owned();
    }

    /// Reads the account.
    pub fn with_account<R>(&self, f: impl FnOnce(&PdAccount) -> R) -> R {
        f(&self
            .shared
            .account
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Changes the account while it is served.
    pub fn with_account_mut<R>(&self, f: impl FnOnce(&mut PdAccount) -> R) -> R {
        f(&mut self
            .shared
            .account
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Requests answered (faults of the chaos layer excluded).
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.state().counts.clone()
    }

    /// Forgets the request counts and targets.
    pub fn reset_counts(&self) {
        let mut state = self.shared.state();
        state.counts = RequestCounts::default();
        state.targets.clear();
        state.unversioned = 0;
    }

    /// Requests that came without PagerDuty's versioning `Accept` header.
    pub fn unversioned_requests(&self) -> u64 {
        self.shared.state().unversioned
    }

    /// Path and query of every request answered, oldest first (bounded).
    pub fn targets(&self) -> Vec<String> {
        self.shared.state().targets.clone()
    }

    /// Faults the chaos layer injected (resets included).
    #[cfg(feature = "chaos")]
    pub fn faults(&self) -> u64 {
        self.shared.state().chaos.faults
    }

    /// Connections the chaos layer reset.
    #[cfg(feature = "chaos")]
    pub fn resets(&self) -> u64 {
        self.shared.state().chaos.resets
    }

    /// Stops accepting requests, finishes those in flight and waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for PdHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A PagerDuty error answer: `{"error": {"message", "code", "errors"}}`.
fn error(status: StatusCode, code: u32, message: &str, errors: &[String]) -> (StatusCode, Value) {
    let mut body = json!({ "error": { "message": message, "code": code } });
    if !errors.is_empty() {
        body["error"]["errors"] = json!(errors);
    }
    (status, body)
}

fn bad_input(detail: String) -> (StatusCode, Value) {
    error(
        StatusCode::BAD_REQUEST,
        2001,
        "Invalid Input Provided",
        &[detail],
    )
}

fn not_found() -> (StatusCode, Value) {
    error(StatusCode::NOT_FOUND, 2100, "Not Found", &[])
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let headers = request.headers().clone();
    let get = request.method() == axum::http::Method::GET;
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    #[cfg(feature = "chaos")]
    if let Some(response) = chaos_fault(&shared, &request, &target) {
        return response;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route = match (get, segments.as_slice()) {
        (true, ["incidents"]) => ROUTE_INCIDENTS,
        (true, ["incidents", _]) => ROUTE_INCIDENT,
        (true, ["incidents", _, "log_entries"]) => ROUTE_LOG_ENTRIES,
        (true, ["incidents", _, "notes"]) => ROUTE_NOTES,
        (true, ["services", _]) => ROUTE_SERVICE,
        _ => ROUTE_UNMATCHED,
    };
    let authorized = authorization(&headers)
        .is_some_and(|token| token == *shared.token.read().unwrap_or_else(|p| p.into_inner()));
    let (limit, remaining, reset, spent) = {
        let mut state = shared.state();
        state.budget.refresh();
        let spent = state.budget.used >= state.budget.limit;
        if !spent {
            state.budget.used += 1;
        }
        (
            state.budget.limit,
            state.budget.limit.saturating_sub(state.budget.used),
            state.budget.reset_seconds(),
            spent,
        )
    };
    let (status, body) = if !authorized {
        error(StatusCode::UNAUTHORIZED, 2006, "Authentication failed", &[])
    } else if spent {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            2020,
            "Rate Limit Exceeded",
            &[],
        )
    } else {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let account = shared
            .account
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let base = shared.base_url.as_str();
        match (route, segments.as_slice()) {
            (ROUTE_INCIDENTS, _) => list_incidents(&account, base, &pairs),
            (ROUTE_INCIDENT, [_, id]) => show_incident(&account, base, id, &pairs),
            (ROUTE_LOG_ENTRIES, [_, id, _]) => log_entries(&account, base, id, &pairs),
            (ROUTE_NOTES, [_, id, _]) => notes(&account, base, id),
            (ROUTE_SERVICE, [_, id]) => service(&account, base, id),
            _ => not_found(),
        }
    };
    {
        let mut state = shared.state();
        let counts = &mut state.counts;
        counts.total += 1;
        *counts.by_route.entry(route).or_default() += 1;
        *counts.by_status.entry(status.as_u16()).or_default() += 1;
        *counts
            .by_route_status
            .entry((route, status.as_u16()))
            .or_default() += 1;
        let versioned = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.replace(' ', "").contains(PD_ACCEPT));
        if !versioned {
            state.unversioned += 1;
        }
        if state.targets.len() < MAX_RECORDED_TARGETS {
            state.targets.push(target);
        }
    }
    let mut response = json_response(status, &body);
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", limit),
        ("ratelimit-remaining", remaining),
        ("ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// The key of `Authorization: Token token=<key>`.
fn authorization(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("token") {
        return None;
    }
    rest.trim().strip_prefix("token=").map(str::to_owned)
}

/// A fault the chaos layer injects.
#[cfg(feature = "chaos")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `429` with `ratelimit-reset: 1`.
    TooManyRequests,
    /// `500` with PagerDuty's JSON error.
    ServerError,
    /// `503` with a proxy's plain text.
    Unavailable,
    /// The connection reset before any response byte.
    Reset,
}

/// The fault answer for `request`, if it draws one: a `429`, a `5xx`, or a
/// reset connection (then the response returned is never sent).
#[cfg(feature = "chaos")]
fn chaos_fault(shared: &Shared, request: &Request, target: &str) -> Option<Response> {
    use rand::Rng;
    let fault = {
        let mut state = shared.state();
        let chaos = &mut state.chaos;
        let streak = chaos.streak.get(target).copied().unwrap_or(0);
        let draw: f64 = chaos.rng.random();
        let options = &chaos.options;
        // Bands in this order, so that a seed draws the same 429s and 5xx
        // with or without resets.
        let mut bound = 0.0;
        let mut fault = None;
        for (kind, rate) in [
            (Fault::TooManyRequests, options.too_many_requests_rate),
            (Fault::ServerError, options.server_error_rate / 2.0),
            (Fault::Unavailable, options.server_error_rate / 2.0),
            (Fault::Reset, options.reset_rate),
        ] {
            bound += rate;
            if draw < bound {
                fault = Some(kind);
                break;
            }
        }
        match fault {
            Some(fault) if streak < options.max_consecutive_faults => fault,
            _ => {
                chaos.streak.remove(target);
                return None;
            }
        }
    };
    let response = match fault {
        Fault::TooManyRequests => {
            let (status, body) = error(
                StatusCode::TOO_MANY_REQUESTS,
                2020,
                "Rate Limit Exceeded",
                &[],
            );
            let mut response = json_response(status, &body);
            let headers = response.headers_mut();
            headers.insert("ratelimit-limit", HeaderValue::from(PD_DEFAULT_RATE_LIMIT));
            headers.insert("ratelimit-remaining", HeaderValue::from(0u64));
            headers.insert("ratelimit-reset", HeaderValue::from(1u64));
            response
        }
        Fault::ServerError => {
            let (status, body) = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                2000,
                "An internal error has occurred. PagerDuty team has been notified.",
                &[],
            );
            json_response(status, &body)
        }
        Fault::Unavailable => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("upstream connect error"))
            .unwrap_or_default(),
        // Served without a resettable connection: no fault after all.
        Fault::Reset => crate::server::chaos::reset_connection(request)?,
    };
    let mut state = shared.state();
    let chaos = &mut state.chaos;
    *chaos.streak.entry(target.to_owned()).or_default() += 1;
    chaos.faults += 1;
    if fault == Fault::Reset {
        chaos.resets += 1;
    }
    Some(response)
}

fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    let array = format!("{name}[]");
    pairs
        .iter()
        .filter(|(k, _)| *k == array || k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `offset` and `limit`, checked.
fn page(pairs: &[(String, String)]) -> Result<(u64, u64), (StatusCode, Value)> {
    let number = |name: &str, default: u64| match value(pairs, name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| bad_input(format!("{name} must be a non-negative integer"))),
    };
    let offset = number("offset", 0)?;
    let limit = number("limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT);
    if offset.saturating_add(limit) > MAX_PAGINATED_RECORDS {
        return Err(bad_input(format!(
            "Offset + limit must be less than or equal to {MAX_PAGINATED_RECORDS}"
        )));
    }
    Ok((offset, limit))
}

/// One page of `items` with PagerDuty's pagination fields.
fn paginated(
    key: &str,
    items: Vec<Value>,
    offset: u64,
    limit: u64,
    total: bool,
) -> (StatusCode, Value) {
    let count = items.len() as u64;
    let page: Vec<Value> = items
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    let more = offset.saturating_add(limit) < count;
    let mut body = json!({
        "limit": limit,
        "offset": offset,
        "more": more,
        "total": if total { json!(count) } else { Value::Null },
    });
    body[key] = Value::Array(page);
    (StatusCode::OK, body)
}

fn parse_time(text: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| Timestamp(t.timestamp()))
        .or_else(|| {
            // A date alone: its midnight, UTC.
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| Timestamp(t.and_utc().timestamp()))
        })
}

fn list_incidents(
    account: &PdAccount,
    base: &str,
    pairs: &[(String, String)],
) -> (StatusCode, Value) {
    let (offset, limit) = match page(pairs) {
        Ok(page) => page,
        Err(answer) => return answer,
    };
    let now = account.now;
    let range = if value(pairs, "date_range") == Some("all") {
        None
    } else {
        let time = |name: &str| match value(pairs, name) {
            None => Ok(None),
            Some(text) => parse_time(text).map(Some).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    2004,
                    "Invalid time values in 'since' and/or 'until' parameters",
                    &[],
                )
            }),
        };
        let (since, until) = match (time("since"), time("until")) {
            (Ok(since), Ok(until)) => (since, until),
            (Err(answer), _) | (_, Err(answer)) => return answer,
        };
        let until = until.unwrap_or(now);
        let since = since.unwrap_or(Timestamp(until.0 - DEFAULT_RANGE_SECONDS));
        if until.0 < since.0 || until.0 - since.0 > MAX_RANGE_SECONDS {
            return error(
                StatusCode::BAD_REQUEST,
                2005,
                "Invalid Query Date Range",
                &["The maximum range is 6 months".to_owned()],
            );
        }
        Some((since, until))
    };
    let services = values(pairs, "service_ids");
    let statuses = values(pairs, "statuses");
    let urgencies = values(pairs, "urgencies");
    for status in &statuses {
        if !matches!(*status, "triggered" | "acknowledged" | "resolved") {
            return bad_input(
                "Status must be a list of triggered, acknowledged, or resolved.".to_owned(),
            );
        }
    }
    for urgency in &urgencies {
        if !matches!(*urgency, "high" | "low") {
            return bad_input("Urgency must be high or low.".to_owned());
        }
    }
    let mut selected: Vec<&PdIncident> = account
        .incidents
        .iter()
        .filter(|i| i.created_at <= now)
        .filter(|i| {
            range.is_none_or(|(since, until)| since <= i.created_at && i.created_at < until)
        })
        .filter(|i| services.is_empty() || services.contains(&i.service.as_str()))
        .filter(|i| statuses.is_empty() || statuses.contains(&i.status_at(now).as_str()))
        .filter(|i| urgencies.is_empty() || urgencies.contains(&i.urgency.as_str()))
        .collect();
    let descending = values(pairs, "sort_by")
        .iter()
        .any(|s| s.ends_with(":desc") || s.ends_with(" desc"));
    selected.sort_by_key(|i| (i.created_at, i.number));
    if descending {
        selected.reverse();
    }
    let items = selected
        .into_iter()
        .map(|i| incident_json(account, base, i, false))
        .collect();
    paginated(
        "incidents",
        items,
        offset,
        limit,
        value(pairs, "total") == Some("true"),
    )
}

fn find<'a>(account: &'a PdAccount, id: &str) -> Option<&'a PdIncident> {
    account
        .incident(id)
        .filter(|incident| incident.created_at <= account.now)
}

fn show_incident(
    account: &PdAccount,
    base: &str,
    id: &str,
    pairs: &[(String, String)],
) -> (StatusCode, Value) {
    let Some(incident) = find(account, id) else {
        return not_found();
    };
    let body = values(pairs, "include").contains(&"body");
    (
        StatusCode::OK,
        json!({ "incident": incident_json(account, base, incident, body) }),
    )
}

fn log_entries(
    account: &PdAccount,
    base: &str,
    id: &str,
    pairs: &[(String, String)],
) -> (StatusCode, Value) {
    let (offset, limit) = match page(pairs) {
        Ok(page) => page,
        Err(answer) => return answer,
    };
    let Some(incident) = find(account, id) else {
        return not_found();
    };
    // Newest first.
    let items = incident
        .log
        .iter()
        .rev()
        .filter(|e| e.at <= account.now)
        .map(|e| log_entry_json(account, base, incident, e))
        .collect();
    paginated(
        "log_entries",
        items,
        offset,
        limit,
        value(pairs, "total") == Some("true"),
    )
}

fn notes(account: &PdAccount, base: &str, id: &str) -> (StatusCode, Value) {
    let Some(incident) = find(account, id) else {
        return not_found();
    };
    let notes: Vec<Value> = incident
        .notes
        .iter()
        .filter(|n| n.at <= account.now)
        .map(|n| {
            json!({
                "id": n.id,
                "user": {
                    "id": "PUSER01",
                    "type": "user_reference",
                    "summary": "On-call Engineer",
                    "self": format!("{base}/users/PUSER01"),
                    "html_url": "https://sim.pagerduty.invalid/users/PUSER01",
                },
                "channel": { "summary": "The PagerDuty website or APIs" },
                "content": n.content,
                "created_at": n.at.to_rfc3339(),
                "updated_at": n.at.to_rfc3339(),
            })
        })
        .collect();
    (StatusCode::OK, json!({ "notes": notes }))
}

fn service(account: &PdAccount, base: &str, id: &str) -> (StatusCode, Value) {
    let Some(service) = account.services.iter().find(|s| s.id == id) else {
        return not_found();
    };
    (
        StatusCode::OK,
        json!({
            "service": {
                "id": service.id,
                "type": "service",
                "summary": service.name,
                "self": format!("{base}/services/{}", service.id),
                "html_url": format!("https://sim.pagerduty.invalid/service-directory/{}", service.id),
                "name": service.name,
                "description": format!("{} (simulated)", service.name),
                "auto_resolve_timeout": 14400,
                "acknowledgement_timeout": 600,
                "created_at": "2020-01-01T00:00:00Z",
                "status": "active",
                "last_incident_timestamp": account
                    .incidents
                    .iter()
                    .filter(|i| i.service == service.id && i.created_at <= account.now)
                    .map(|i| i.created_at)
                    .max()
                    .map(|t| t.to_rfc3339()),
                "alert_creation": "create_alerts_and_incidents",
                "escalation_policy": reference(base, "PESC001", "escalation_policy_reference", "Default", "escalation_policies"),
                "teams": [],
                "integrations": [],
                "incident_urgency_rule": { "type": "constant", "urgency": "high" },
            }
        }),
    )
}

fn reference(base: &str, id: &str, kind: &str, summary: &str, collection: &str) -> Value {
    json!({
        "id": id,
        "type": kind,
        "summary": summary,
        "self": format!("{base}/{collection}/{id}"),
        "html_url": format!("https://sim.pagerduty.invalid/{collection}/{id}"),
    })
}

fn incident_json(account: &PdAccount, base: &str, incident: &PdIncident, body: bool) -> Value {
    let now = account.now;
    let status = incident.status_at(now);
    let service_name = account
        .services
        .iter()
        .find(|s| s.id == incident.service)
        .map_or("", |s| s.name.as_str());
    let first = &incident.log[0];
    let last_change = incident.last_status_change_at(now);
    let resolved = status == PdStatus::Resolved;
    let mut value = json!({
        "id": incident.id,
        "type": "incident",
        "summary": format!("[#{}] {}", incident.number, incident.title),
        "self": format!("{base}/incidents/{}", incident.id),
        "html_url": format!("https://sim.pagerduty.invalid/incidents/{}", incident.id),
        "incident_number": incident.number,
        "title": incident.title,
        "created_at": incident.created_at.to_rfc3339(),
        "updated_at": incident
            .log
            .iter()
            .filter(|e| e.at <= now)
            .map(|e| e.at)
            .max()
            .unwrap_or(incident.created_at)
            .to_rfc3339(),
        "status": status.as_str(),
        "incident_key": format!("sim-{}", incident.number),
        "service": reference(base, &incident.service, "service_reference", service_name, "services"),
        "assignments": [],
        "assigned_via": "escalation_policy",
        "acknowledgements": [],
        "last_status_change_at": last_change.to_rfc3339(),
        "resolved_at": incident.resolved_at(now).map(|t| t.to_rfc3339()),
        "first_trigger_log_entry": {
            "id": first.id,
            "type": "trigger_log_entry_reference",
            "summary": "Triggered through the API",
            "self": format!("{base}/log_entries/{}?incident_id={}", first.id, incident.id),
            "html_url": format!("https://sim.pagerduty.invalid/incidents/{}/log_entries/{}", incident.id, first.id),
        },
        "alert_counts": {
            "all": 1,
            "triggered": u8::from(!resolved),
            "resolved": u8::from(resolved),
        },
        "pending_actions": [],
        "is_mergeable": true,
        "escalation_policy": reference(base, "PESC001", "escalation_policy_reference", "Default", "escalation_policies"),
        "teams": [],
        "priority": null,
        "urgency": match incident.urgency {
            PdUrgency::High => "high",
            PdUrgency::Low => "low",
        },
        "resolve_reason": null,
        "alert_grouping": null,
        "incidents_responders": [],
        "responder_requests": [],
        "incident_type": { "name": "incident_default" },
    });
    if body {
        value["body"] = json!({
            "type": "incident_body",
            "details": incident.body.clone().unwrap_or_default(),
        });
    }
    value
}

fn log_entry_json(
    account: &PdAccount,
    base: &str,
    incident: &PdIncident,
    entry: &PdLogEntry,
) -> Value {
    let service_name = account
        .services
        .iter()
        .find(|s| s.id == incident.service)
        .map_or("", |s| s.name.as_str());
    let summary = match entry.kind {
        super::model::PdLogKind::Trigger => "Triggered through the API",
        super::model::PdLogKind::Acknowledge => "Acknowledged by On-call Engineer",
        super::model::PdLogKind::Annotate => "Note added",
        super::model::PdLogKind::Resolve => "Resolved by On-call Engineer",
    };
    json!({
        "id": entry.id,
        "type": entry.kind.type_name(),
        "summary": summary,
        "self": format!("{base}/log_entries/{}?incident_id={}", entry.id, incident.id),
        "html_url": format!("https://sim.pagerduty.invalid/incidents/{}/log_entries/{}", incident.id, entry.id),
        "created_at": entry.at.to_rfc3339(),
        "agent": reference(base, &incident.service, "service_reference", service_name, "services"),
        "channel": { "type": "api" },
        "service": reference(base, &incident.service, "service_reference", service_name, "services"),
        "incident": reference(base, &incident.id, "incident_reference", &format!("[#{}] {}", incident.number, incident.title), "incidents"),
        "teams": [],
        "contexts": [],
        "event_details": { "description": incident.title },
    })
}
