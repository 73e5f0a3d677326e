//! The simulated GitLab REST API over HTTP (axum): [`GitlabServer::start`] serves
//! a [`GitlabGroup`] on `127.0.0.1` under `{prefix}/api/v4` and returns a
//! [`GitlabHandle`] to read counters, change the group while it is served, and
//! shut it down.
//!
//! Every request goes through GitLab's steps: the token (`PRIVATE-TOKEN`, or
//! `Authorization: Bearer`; else `401 Unauthorized`), the rate limit (GitLab's
//! per-minute throttle: `RateLimit-Limit`, `-Observed`, `-Remaining`, `-Reset`,
//! `-ResetTime` on every answer; once the budget is spent `429` with
//! `Retry-After` and Rack::Attack's `Retry later`, and such requests are counted
//! as violations), then the endpoint (`api.rs`) with GitLab's pagination headers:
//! offset lists carry `x-page`, `x-per-page`, `x-next-page`, `x-prev-page`,
//! `x-total`, `x-total-pages` (commits omit the totals, as counting them is
//! what GitLab skips) and a `Link` with `prev`, `next`, `first` and `last`;
//! keyset lists carry only `Link: rel="next"` until the last page.
//!
//! With the `chaos` feature, the faults of [`crate::server::chaos`] are injected
//! the GitLab way: `500` with `{"message":"500 Internal Server Error"}`, `502`
//! and `503` pages from the proxy in front, `429` with `Retry-After` (and the
//! token held until it passes), resets, slow and truncated answers, new items at
//! the head of a list between its offset pages.
//!
//! The rate-limit window runs on the wall clock, the data's time is the
//! organisation's `now`. Only GET is served.

use super::api::{self, Paging, Route, API_PATH};
use super::model::GitlabGroup;
use crate::server::route::Query;
use crate::server::{
    epoch_now, log_request, Budget, RateLimitState, RequestCounts, RequestRecord, TokenUse,
};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The token the simulated GitLab accepts by default (not shaped like a real
/// `glpat-` token, so that no secret scanner mistakes it for one).
pub const GITLAB_SIM_TOKEN: &str = "dora-sim-gitlab-token-0000";

/// GitLab.com's authenticated API limit: requests per minute per user.
pub const DEFAULT_GITLAB_RATE_LIMIT: u64 = 2_000;

/// GitLab's throttle window.
pub const GITLAB_RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);

/// Rack::Attack's throttled answer.
const RETRY_LATER: &str = "Retry later\n";

/// How the simulated GitLab behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct GitlabOptions {
    /// The only token accepted.
    pub token: String,
    /// Requests allowed per window.
    pub rate_limit: u64,
    /// Length of the throttle window.
    pub rate_limit_window: Duration,
    /// Where the API lives below the host: `""` for `http://HOST/api/v4`,
    /// `"/gitlab"` for a self-managed instance under a relative URL root
    /// (`http://HOST/gitlab/api/v4`). Starts with `/` unless empty.
    pub path_prefix: String,
    /// Faults to inject (none by default).
    #[cfg(feature = "chaos")]
    pub chaos: crate::server::chaos::ChaosOptions,
}

impl Default for GitlabOptions {
    fn default() -> Self {
        GitlabOptions {
            token: GITLAB_SIM_TOKEN.to_owned(),
            rate_limit: DEFAULT_GITLAB_RATE_LIMIT,
            rate_limit_window: GITLAB_RATE_LIMIT_WINDOW,
            path_prefix: String::new(),
            #[cfg(feature = "chaos")]
            chaos: crate::server::chaos::ChaosOptions::default(),
        }
    }
}

struct ServerState {
    budget: Budget,
    counts: RequestCounts,
    records: VecDeque<RequestRecord>,
    requests_seen: u64,
}

pub(super) struct Shared {
    pub(super) group: RwLock<GitlabGroup>,
    token: RwLock<String>,
    /// `http://127.0.0.1:PORT` (no prefix): `Link` URLs start with it.
    origin: String,
    prefix: String,
    state: Mutex<ServerState>,
    #[cfg(feature = "chaos")]
    pub(super) chaos: Mutex<crate::server::chaos::ChaosState>,
}

impl Shared {
    pub(super) fn token(&self) -> String {
        self.token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn route(&self, method: &Method, uri: &Uri) -> Option<Route> {
        (method == Method::GET)
            .then(|| api::parse_path(&self.prefix, uri.path()))
            .flatten()
    }

    /// Whether the budget of the current window is spent.
    #[cfg(feature = "chaos")]
    pub(super) fn budget_spent(&self) -> bool {
        let mut state = self.state();
        state.budget.refresh(epoch_now());
        state.budget.remaining() == 0
    }

    /// The budget for headers, without charging.
    #[cfg(feature = "chaos")]
    pub(super) fn budget_now(&self) -> (u64, u64, i64) {
        let now = epoch_now();
        let mut state = self.state();
        state.budget.refresh(now);
        let reset = state.budget.reset.unwrap_or(now + state.budget.window);
        (state.budget.limit, state.budget.used, reset)
    }
}

/// Reads the token GitLab's way: `PRIVATE-TOKEN`, else `Authorization: Bearer`.
pub(super) fn token_use(headers: &HeaderMap, token: &str) -> TokenUse {
    let given = headers
        .get("private-token")
        .map(|v| v.to_str().map(str::trim).ok())
        .or_else(|| {
            headers.get(header::AUTHORIZATION).map(|v| {
                v.to_str().ok().and_then(|v| {
                    v.split_once(' ')
                        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                        .map(|(_, rest)| rest.trim())
                })
            })
        });
    match given {
        None => TokenUse::Missing,
        Some(Some(given)) if given == token => TokenUse::Valid,
        Some(_) => TokenUse::Invalid,
    }
}

/// Starts simulated GitLab servers.
pub struct GitlabServer;

impl GitlabServer {
    /// Serves `group` on `127.0.0.1` at a free port.
    pub async fn start(
        group: GitlabGroup,
        options: GitlabOptions,
    ) -> std::io::Result<GitlabHandle> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        Self::start_on(listener, group, options)
    }

    /// Serves `group` on a listener the caller bound.
    pub fn start_on(
        listener: TcpListener,
        group: GitlabGroup,
        options: GitlabOptions,
    ) -> std::io::Result<GitlabHandle> {
        #[cfg(feature = "chaos")]
        options
            .chaos
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let prefix = options.path_prefix.trim_end_matches('/').to_owned();
        if !(prefix.is_empty() || prefix.starts_with('/')) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path prefix must start with /",
            ));
        }
        let addr = listener.local_addr()?;
        let origin = format!("http://{addr}");
        let window = i64::try_from(options.rate_limit_window.as_secs()).unwrap_or(60);
        let shared = Arc::new(Shared {
            group: RwLock::new(group),
            token: RwLock::new(options.token),
            origin: origin.clone(),
            prefix: prefix.clone(),
            state: Mutex::new(ServerState {
                budget: Budget::new(options.rate_limit, window),
                counts: RequestCounts::default(),
                records: VecDeque::new(),
                requests_seen: 0,
            }),
            #[cfg(feature = "chaos")]
            chaos: Mutex::new(crate::server::chaos::ChaosState::new(options.chaos)),
        });
        let router = Router::new().fallback(handle);
        #[cfg(feature = "chaos")]
        let router = router.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            super::chaos::layer,
        ));
        let app = router.with_state(Arc::clone(&shared));
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
        Ok(GitlabHandle {
            shared,
            addr,
            api_url: format!("{origin}{prefix}{API_PATH}"),
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running simulated GitLab. Dropping it stops the server (without waiting).
pub struct GitlabHandle {
    pub(super) shared: Arc<Shared>,
    addr: SocketAddr,
    api_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl GitlabHandle {
    /// `http://127.0.0.1:PORT{prefix}/api/v4`: what `gitlab.api_url` points at.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token requests must carry.
    pub fn token(&self) -> String {
        self.shared.token()
    }

    /// Accepts `token` instead from now on (the old one gets 401).
    pub fn set_token(&self, token: &str) {
        *self
            .shared
            .token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = token.to_owned();
    }

    /// Reads the served group.
    pub fn with_group<R>(&self, f: impl FnOnce(&GitlabGroup) -> R) -> R {
        let group = self.shared.group.read().unwrap_or_else(|p| p.into_inner());
        f(&group)
    }

    /// Changes the served group (its organisation included); later requests
    /// see the change.
    pub fn with_group_mut<R>(&self, f: impl FnOnce(&mut GitlabGroup) -> R) -> R {
        let mut group = self.shared.group.write().unwrap_or_else(|p| p.into_inner());
        f(&mut group)
    }

    /// A copy of the request counters.
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.state().counts.clone()
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().records.iter().cloned().collect()
    }

    /// Clears counters and records (not the budget).
    pub fn reset_counts(&self) {
        let mut state = self.shared.state();
        state.counts = RequestCounts::default();
        state.records.clear();
    }

    /// The rate-limit budget now.
    pub fn rate_limit(&self) -> RateLimitState {
        self.shared.state().budget.state(epoch_now())
    }

    /// Requests received while the budget was spent.
    pub fn rate_limit_violations(&self) -> u64 {
        self.shared.state().budget.violations
    }

    /// Sets the remaining budget of the current window (0 spends it).
    pub fn set_rate_limit_remaining(&self, remaining: u64) {
        let now = epoch_now();
        let mut state = self.shared.state();
        let budget = &mut state.budget;
        budget.refresh(now);
        budget.reset_at(now);
        budget.used = budget.limit.saturating_sub(remaining);
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

impl Drop for GitlabHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What a request turned into, before HTTP encoding.
struct Outcome {
    status: StatusCode,
    body: Vec<u8>,
    json: bool,
    paging: Paging,
    budget: Option<(u64, u64, i64)>,
    retry_after: Option<i64>,
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.respond(request.method(), request.uri(), request.headers())
}

impl Shared {
    fn respond(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        let route = self.route(method, uri);
        let template = route
            .as_ref()
            .map_or(crate::server::route::UNMATCHED, |r| r.endpoint.template());
        let token = token_use(headers, &self.token());
        let outcome = self.outcome(route.as_ref(), uri.query(), token);
        let mut guard = self.state();
        let state = &mut *guard;
        state.requests_seen += 1;
        let request_id = state.requests_seen;
        let record = RequestRecord::new(
            method.as_str(),
            uri,
            template,
            outcome.status.as_u16(),
            token,
            false,
        );
        log_request(&mut state.counts, &mut state.records, record);
        drop(guard);
        self.build_response(outcome, uri, request_id)
    }

    fn outcome(&self, route: Option<&Route>, raw_query: Option<&str>, token: TokenUse) -> Outcome {
        let json_outcome = |status: StatusCode, body: Value, budget| Outcome {
            status,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            json: true,
            paging: Paging::None,
            budget,
            retry_after: None,
        };
        if token != TokenUse::Valid {
            return json_outcome(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"message": "401 Unauthorized"}),
                None,
            );
        }
        let now = epoch_now();
        let budget = {
            let mut state = self.state();
            let budget = &mut state.budget;
            budget.refresh(now);
            let reset = budget.reset_at(now);
            if budget.remaining() == 0 {
                budget.violations += 1;
                return Outcome {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    body: RETRY_LATER.as_bytes().to_vec(),
                    json: false,
                    paging: Paging::None,
                    budget: Some((budget.limit, budget.used, reset)),
                    retry_after: Some((reset - now).max(1)),
                };
            }
            budget.used += 1;
            (budget.limit, budget.used, reset)
        };
        let Some(route) = route else {
            return json_outcome(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "404 Not Found"}),
                Some(budget),
            );
        };
        let query = Query::parse(raw_query);
        let result = {
            let group = self.group.read().unwrap_or_else(|p| p.into_inner());
            api::respond(&group, route, &query)
        };
        match result {
            Ok(reply) => Outcome {
                status: StatusCode::OK,
                body: serde_json::to_vec(&reply.body).unwrap_or_default(),
                json: true,
                paging: reply.paging,
                budget: Some(budget),
                retry_after: None,
            },
            Err(error) => json_outcome(
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::NOT_FOUND),
                error.body(),
                Some(budget),
            ),
        }
    }

    /// `uri` with `query` pairs replaced or added, as an absolute URL.
    fn link(&self, uri: &Uri, set: &[(&str, String)]) -> String {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .filter(|(k, _)| !set.iter().any(|(name, _)| k == name))
                .collect();
        pairs.extend(set.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            serializer.append_pair(k, v);
        }
        format!("{}{}?{}", self.origin, uri.path(), serializer.finish())
    }

    fn build_response(&self, outcome: Outcome, uri: &Uri, request_id: u64) -> Response {
        let mut builder = Response::builder()
            .status(outcome.status)
            .header(header::CACHE_CONTROL, "max-age=0, private, must-revalidate")
            .header(header::VARY, "Origin, Accept-Encoding")
            .header("x-content-type-options", "nosniff")
            .header("x-frame-options", "SAMEORIGIN")
            .header("x-request-id", format!("01J{request_id:023X}"))
            .header("x-runtime", "0.042137")
            .header(
                header::CONTENT_TYPE,
                if outcome.json {
                    "application/json"
                } else {
                    "text/plain"
                },
            );
        if let Some((limit, used, reset)) = outcome.budget {
            builder = with_budget(builder, limit, used, reset);
        }
        if let Some(seconds) = outcome.retry_after {
            builder = builder.header(header::RETRY_AFTER, seconds);
        }
        match &outcome.paging {
            Paging::None => {}
            Paging::Offset {
                page,
                per_page,
                next,
                total,
            } => {
                let per = per_page.to_string();
                let at = |n: usize| {
                    self.link(uri, &[("page", n.to_string()), ("per_page", per.clone())])
                };
                let mut links = Vec::new();
                if *page > 1 {
                    links.push(format!("<{}>; rel=\"prev\"", at(page - 1)));
                }
                if *next {
                    links.push(format!("<{}>; rel=\"next\"", at(page + 1)));
                }
                links.push(format!("<{}>; rel=\"first\"", at(1)));
                let pages = total.map(|t| t.div_ceil(*per_page).max(1));
                if let Some(pages) = pages {
                    links.push(format!("<{}>; rel=\"last\"", at(pages)));
                }
                builder = builder
                    .header(header::LINK, links.join(", "))
                    .header("x-page", page.to_string())
                    .header("x-per-page", per.clone())
                    .header(
                        "x-next-page",
                        if *next {
                            (page + 1).to_string()
                        } else {
                            String::new()
                        },
                    )
                    .header(
                        "x-prev-page",
                        if *page > 1 {
                            (page - 1).to_string()
                        } else {
                            String::new()
                        },
                    );
                if let (Some(total), Some(pages)) = (total, pages) {
                    builder = builder
                        .header("x-total", total.to_string())
                        .header("x-total-pages", pages.to_string());
                }
            }
            Paging::Keyset { next } => {
                if let Some((name, value)) = next {
                    let url = self.link(uri, &[(name.as_str(), value.clone())]);
                    if let Ok(value) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
                        builder = builder.header(header::LINK, value);
                    }
                }
            }
        }
        builder.body(Body::from(outcome.body)).unwrap_or_else(|_| {
            let mut fallback = Response::new(Body::from("internal error"));
            *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
    }
}

/// Adds GitLab's `RateLimit-*` headers for a budget of `limit` with `used`
/// spent, resetting at epoch second `reset`.
pub(super) fn with_budget(
    builder: axum::http::response::Builder,
    limit: u64,
    used: u64,
    reset: i64,
) -> axum::http::response::Builder {
    let reset_time = crate::domain::Timestamp(reset)
        .to_datetime()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    builder
        .header("ratelimit-limit", limit)
        .header("ratelimit-observed", used.min(limit))
        .header("ratelimit-remaining", limit.saturating_sub(used))
        .header("ratelimit-reset", reset)
        .header("ratelimit-resettime", reset_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_like_gitlab() {
        let with = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
            token_use(&headers, "t0k")
        };
        assert_eq!(with("private-token", "t0k"), TokenUse::Valid);
        assert_eq!(with("PRIVATE-TOKEN", " t0k "), TokenUse::Valid);
        assert_eq!(with("authorization", "Bearer t0k"), TokenUse::Valid);
        assert_eq!(with("authorization", "token t0k"), TokenUse::Invalid);
        assert_eq!(with("private-token", "other"), TokenUse::Invalid);
        assert_eq!(token_use(&HeaderMap::new(), "t0k"), TokenUse::Missing);
    }
}
