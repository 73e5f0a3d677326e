//! The simulated GitHub REST API over HTTP (axum): [`SimServer::start`] serves an
//! [`Org`] on `127.0.0.1` and returns a [`SimHandle`] to read counters, mutate the
//! organisation while it is served, and shut it down.
//!
//! Every request goes through the same steps, as on GitHub: the token
//! (`Authorization: Bearer <token>` or `token <token>`, else 401 `Bad
//! credentials`), the primary rate limit (403 `API rate limit exceeded` once the
//! budget is spent; such requests are counted as violations), the endpoint, then
//! the `ETag`: a request whose `If-None-Match` matches gets 304 with no body and
//! its budget unit back, as GitHub documents for conditional requests.
//! `GET /rate_limit` never costs budget. Each request is counted per route
//! template and status, and recorded (bounded) with whether it carried the token.
//!
//! With a GitHub App ([`SimOptions::app`], see [`app`]) a request may also carry
//! one of the App's installation tokens (it reads its installation's account, with
//! a rate-limit budget of its own), and the App's routes take its JWT.
//!
//! Several organisations may be served at once ([`SimServer::start_orgs`]): a
//! request about a repository or an organisation is answered from the one that
//! owns it; a GraphQL query from its installation token's organisation (with the
//! personal token, the first one).
//!
//! The rate-limit window runs on the wall clock (clients sleep until
//! `x-ratelimit-reset`), while the data's time is the organisation's `now`.
//! Only GET is served, plus `POST /graphql` (see [`graphql`]); the simulator has
//! no write endpoints.
//!
//! With [`SimOptions::enterprise`] it is laid out as GitHub Enterprise Server
//! (`https://HOST/api/v3` for REST, `https://HOST/api/graphql` for GraphQL;
//! anything else is 404) with rate limiting off, GHES's default: no
//! `x-ratelimit-*` header on any answer (the budgets are still counted, so a
//! test can see what was spent). See [`enterprise_layout`].
//!
//! Faults on purpose (resets, `5xx`, secondary rate limits, slow or truncated
//! responses, new items between pages) come from the `chaos` layer around every
//! route; off by default (see [`chaos`]). Requests that layer answers itself never
//! reach the steps above: they cost no budget and are counted in its own counters,
//! not in the request counters.

mod api;
pub mod app;
#[cfg(feature = "chaos")]
pub mod chaos;
pub mod graphql;
mod render;
pub(crate) mod route;
pub mod secondary;

use crate::model::Org;
use app::{AppState, Caller, SimApp, SimAppError};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use route::{Endpoint, Query, RepoKey, Route, UNMATCHED};
use secondary::{SecondaryCounts, SecondaryLimits, SecondaryState};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The fixed token the simulator accepts by default. Deliberately not shaped like
/// a real GitHub token, so that no secret scanner mistakes it for one.
pub const SIM_TOKEN: &str = "dora-sim-token-0000";

/// GitHub's default primary rate limit for a token, requests per window.
pub const DEFAULT_RATE_LIMIT: u64 = 5000;

/// GitHub's primary rate-limit window.
pub const DEFAULT_RATE_LIMIT_WINDOW: Duration = Duration::from_secs(3600);

/// Most request records kept (oldest dropped first), so a long `demo` run does not
/// grow without bound; the counters are never dropped.
pub const MAX_RECORDED_REQUESTS: usize = 100_000;

/// Longest request target kept in a record.
pub(crate) const MAX_RECORDED_TARGET: usize = 512;

/// A recorded request's method is cut to this many characters.
const MAX_RECORDED_METHOD: usize = 16;

/// How the simulated server behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// The only token accepted.
    pub token: String,
    /// Requests allowed per window.
    pub rate_limit: u64,
    /// Length of the rate-limit window.
    pub rate_limit_window: Duration,
    /// Faults to inject (none by default; with the `chaos` feature).
    #[cfg(feature = "chaos")]
    pub chaos: chaos::ChaosOptions,
    /// GraphQL points allowed per window (a separate budget, as on GitHub).
    pub graphql_rate_limit: u64,
    /// A GitHub App and its installations (none by default: only the token).
    pub app: Option<SimApp>,
    /// How each App installation's budgets are set (by default `rate_limit`
    /// requests each, sharing the one `graphql_rate_limit`).
    pub installation_budgets: InstallationBudgets,
    /// GitHub's secondary limits from load (off by default; see
    /// [`secondary`]).
    pub secondary_limits: Option<SecondaryLimits>,
    /// Served as GitHub Enterprise Server is (off by default: github.com).
    pub enterprise: bool,
    /// A team's repositories (`GET /orgs/{org}/teams/{team_slug}/repos`) name
    /// the team's `role_name` (on by default, as github.com does); off, they
    /// give only the `permissions` flags, as older GitHub Enterprise Server
    /// releases do.
    pub team_role_names: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            token: SIM_TOKEN.to_owned(),
            rate_limit: DEFAULT_RATE_LIMIT,
            rate_limit_window: DEFAULT_RATE_LIMIT_WINDOW,
            #[cfg(feature = "chaos")]
            chaos: chaos::ChaosOptions::default(),
            graphql_rate_limit: graphql::DEFAULT_GRAPHQL_RATE_LIMIT,
            app: None,
            installation_budgets: InstallationBudgets::Flat,
            secondary_limits: None,
            enterprise: false,
            team_role_names: true,
        }
    }
}

/// How an App installation's primary budgets are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstallationBudgets {
    /// [`SimOptions::rate_limit`] REST requests per window for each
    /// installation, and one [`SimOptions::graphql_rate_limit`] for every
    /// GraphQL caller together.
    #[default]
    Flat,
    /// GitHub's rule for an installation not owned by a GitHub Enterprise Cloud
    /// organisation, for REST requests and GraphQL points alike, each a budget of
    /// the installation's own per window: "a minimum rate limit of 5,000
    /// requests per hour", plus "50 requests per hour for each repository"
    /// beyond 20 and, on an organisation, 50 "for each user" beyond 20, "the
    /// maximum rate limit for an installation is 12,500 requests per hour"
    /// (docs.github.com: "Rate limits for GitHub Apps", *Installation access
    /// tokens*; "Rate limits and node limits for the GraphQL API", *Primary rate
    /// limit*, "For GitHub App installations not on a GitHub Enterprise Cloud
    /// organization": the same figures in points). The repositories are all the
    /// account's (an installation on all repositories, archived and forks
    /// included), the users its people but the Actions bot.
    Github,
}

/// GitHub's primary budget per hour of an App installation on an account with
/// `repositories` repositories and `users` members, REST requests or GraphQL
/// points alike (see [`InstallationBudgets::Github`]).
pub fn github_installation_limit(repositories: usize, users: usize) -> u64 {
    const MINIMUM: u64 = 5_000;
    const PER_REPOSITORY_OR_USER: u64 = 50;
    const FREE: usize = 20;
    const MAXIMUM: u64 = 12_500;
    let beyond = |n: usize| u64::try_from(n.saturating_sub(FREE)).unwrap_or(u64::MAX);
    let extra =
        (beyond(repositories).saturating_add(beyond(users))).saturating_mul(PER_REPOSITORY_OR_USER);
    MINIMUM.saturating_add(extra).min(MAXIMUM)
}

/// What a request carried in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// The simulator's token, as `Bearer` or `token` (or, with an App, a valid
    /// JWT or installation token).
    Valid,
    /// Some other credential.
    Invalid,
    /// No `Authorization` header.
    Missing,
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The HTTP method (cut to 16 characters).
    pub method: String,
    /// Path and query (cut to a bounded length).
    pub target: String,
    /// The route template, e.g. `GET /repos/{owner}/{repo}/deployments`.
    pub route: &'static str,
    /// The HTTP status answered.
    pub status: u16,
    /// What the request carried in `Authorization`.
    pub token: TokenUse,
    /// It carried `If-None-Match`.
    pub conditional: bool,
}

impl RequestRecord {
    /// The record of a request to `uri` (its path and query, cut to a bounded
    /// length) answered `status` through route template `route`.
    pub(crate) fn new(
        method: &str,
        uri: &axum::http::Uri,
        route: &'static str,
        status: u16,
        token: TokenUse,
        conditional: bool,
    ) -> Self {
        let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        RequestRecord {
            method: method.chars().take(MAX_RECORDED_METHOD).collect(),
            target: target.chars().take(MAX_RECORDED_TARGET).collect(),
            route,
            status,
            token,
            conditional,
        }
    }
}

/// Counts one answered request and keeps its record, the oldest dropped past
/// [`MAX_RECORDED_REQUESTS`]: every simulated service records so.
pub(crate) fn log_request(
    counts: &mut RequestCounts,
    records: &mut VecDeque<RequestRecord>,
    record: RequestRecord,
) {
    counts.total += 1;
    *counts.by_route.entry(record.route).or_default() += 1;
    *counts.by_status.entry(record.status).or_default() += 1;
    *counts
        .by_route_status
        .entry((record.route, record.status))
        .or_default() += 1;
    if records.len() >= MAX_RECORDED_REQUESTS {
        records.pop_front();
    }
    records.push_back(record);
}

/// Request counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every request counted (REST and GraphQL).
    pub total: u64,
    /// Requests per route template.
    pub by_route: BTreeMap<&'static str, u64>,
    /// Responses per HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Responses per route template and HTTP status.
    pub by_route_status: BTreeMap<(&'static str, u16), u64>,
}

impl RequestCounts {
    /// Requests to route template `route` (e.g. `GET /repos/{owner}/{repo}/issues`).
    pub fn route(&self, route: &str) -> u64 {
        self.by_route
            .iter()
            .filter(|(r, _)| **r == route)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Responses with status `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Responses with status `status` to route template `route`.
    pub fn route_status(&self, route: &str, status: u16) -> u64 {
        self.by_route_status
            .iter()
            .filter(|((r, s), _)| *r == route && *s == status)
            .map(|(_, n)| *n)
            .sum()
    }
}

/// The rate-limit budget as the simulator currently sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    /// Requests (or GraphQL points) allowed per window.
    pub limit: u64,
    /// Spent in the current window.
    pub used: u64,
    /// Left in the current window: `limit - used`, at least 0.
    pub remaining: u64,
    /// Epoch seconds when the window resets.
    pub reset: i64,
    /// Requests received while the budget was exhausted.
    pub violations: u64,
}

/// A rate-limit budget: `limit` requests per `window` seconds, the window
/// starting at the first request after the last one ended.
pub(crate) struct Budget {
    pub(crate) limit: u64,
    pub(crate) window: i64,
    pub(crate) used: u64,
    pub(crate) reset: Option<i64>,
    pub(crate) violations: u64,
}

impl Budget {
    /// A full budget of `limit` per `window` seconds.
    pub(crate) fn new(limit: u64, window: i64) -> Budget {
        Budget {
            limit,
            window: window.max(1),
            used: 0,
            reset: None,
            violations: 0,
        }
    }

    /// The budget as of `now` (starting a new window when the old one passed).
    pub(crate) fn state(&mut self, now: i64) -> RateLimitState {
        self.refresh(now);
        let reset = self.reset_at(now);
        RateLimitState {
            limit: self.limit,
            used: self.used,
            remaining: self.remaining(),
            reset,
            violations: self.violations,
        }
    }

    /// Starts a new window when the old one has passed.
    pub(crate) fn refresh(&mut self, now: i64) {
        if self.reset.is_some_and(|r| now >= r) {
            self.used = 0;
            self.reset = None;
        }
    }

    pub(crate) fn reset_at(&mut self, now: i64) -> i64 {
        *self.reset.get_or_insert(now + self.window)
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

struct ServerState {
    budget: Budget,
    /// Each App installation's REST budget (its tokens share it).
    installation_budgets: BTreeMap<u64, Budget>,
    counts: RequestCounts,
    records: VecDeque<RequestRecord>,
    requests_seen: u64,
    graphql: graphql::GraphqlState,
}

struct Shared {
    /// The organisations served; the first is the one [`SimHandle::with_org`]
    /// reads.
    orgs: Vec<RwLock<Org>>,
    /// The GitHub App, when there is one.
    app: Option<Mutex<AppState>>,
    /// Each installation's budget: `(limit, window)` (flat budgets).
    installation_limit: (u64, i64),
    /// How installations' budgets are set.
    installation_budgets: InstallationBudgets,
    /// The secondary limits from load, when on.
    secondary: Option<Mutex<SecondaryState>>,
    /// The one token accepted (replaceable, as a rotated token is).
    token: RwLock<String>,
    base_url: String,
    /// [`SimOptions::team_role_names`].
    team_role_names: bool,
    state: Mutex<ServerState>,
    #[cfg(feature = "chaos")]
    chaos: Mutex<chaos::ChaosState>,
}

impl Shared {
    /// The token accepted now.
    fn token(&self) -> String {
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

    /// The App's state, when there is an App.
    fn app(&self) -> Option<MutexGuard<'_, AppState>> {
        self.app
            .as_ref()
            .map(|app| app.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The first organisation.
    fn primary(&self) -> &RwLock<Org> {
        &self.orgs[0]
    }

    /// The organisation called `login`, if served.
    fn org_named(&self, login: &str) -> Option<&RwLock<Org>> {
        self.orgs.iter().find(|org| {
            org.read()
                .unwrap_or_else(|p| p.into_inner())
                .owner
                .eq_ignore_ascii_case(login)
        })
    }

    /// The organisation a route is about: the repository's owner (by name or
    /// id) or the organisation named; the first one otherwise.
    fn org_for(&self, route: Option<&Route>) -> &RwLock<Org> {
        let found = route.and_then(|route| match (&route.repo, &route.endpoint) {
            (Some(RepoKey::Name { owner, .. }), _) => self.org_named(owner),
            (Some(RepoKey::Id(id)), _) => self.orgs.iter().find(|org| {
                org.read()
                    .unwrap_or_else(|p| p.into_inner())
                    .repo_by_id(*id)
                    .is_some()
            }),
            (
                None,
                Endpoint::OrgRepos { org }
                | Endpoint::OrgInstallation { org }
                | Endpoint::OrgTeams { org }
                | Endpoint::TeamRepos { org, .. },
            ) => self.org_named(org),
            _ => None,
        });
        found.unwrap_or_else(|| self.primary())
    }

    /// Who sent a request with these headers.
    fn caller(&self, headers: &HeaderMap) -> Caller {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Caller::Missing;
        };
        let Some(credential) = value.to_str().ok().and_then(bearer) else {
            return Caller::Refused("Bad credentials");
        };
        if credential == self.token() {
            return Caller::Token;
        }
        match self.app() {
            Some(mut app) => app.caller(credential, SystemTime::now()),
            None => Caller::Refused("Bad credentials"),
        }
    }
}

/// The credential of an `Authorization` value: `Bearer <x>` or `token <x>`
/// (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    value.split_once(' ').and_then(|(scheme, rest)| {
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
            .then(|| rest.trim())
    })
}

impl Caller {
    /// What the request records say of it.
    fn token_use(&self) -> TokenUse {
        match self {
            Caller::Token | Caller::Installation { .. } | Caller::App => TokenUse::Valid,
            Caller::Refused(_) => TokenUse::Invalid,
            Caller::Missing => TokenUse::Missing,
        }
    }
}

/// Starts simulated GitHub servers.
pub struct SimServer;

impl SimServer {
    /// Serves `org` on `127.0.0.1` at a free port.
    pub async fn start(org: Org, options: SimOptions) -> std::io::Result<SimHandle> {
        Self::start_orgs(vec![org], options).await
    }

    /// Serves several organisations (at least one; their repository ids must not
    /// collide: generate them with distinct [`crate::OrgSpec::id_block`]s) on
    /// `127.0.0.1` at a free port.
    pub async fn start_orgs(orgs: Vec<Org>, options: SimOptions) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        Self::start_orgs_on(listener, orgs, options)
    }

    /// Serves `org` on a listener the caller bound.
    pub fn start_on(
        listener: TcpListener,
        org: Org,
        options: SimOptions,
    ) -> std::io::Result<SimHandle> {
        Self::start_orgs_on(listener, vec![org], options)
    }

    /// Serves `orgs` on a listener the caller bound.
    pub fn start_orgs_on(
        listener: TcpListener,
        orgs: Vec<Org>,
        options: SimOptions,
    ) -> std::io::Result<SimHandle> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        if orgs.is_empty() {
            return Err(invalid("no organisation to serve".to_owned()));
        }
        let app = match options.app.clone() {
            Some(app) => Some(Mutex::new(
                AppState::new(app).map_err(|e: SimAppError| invalid(e.to_string()))?,
            )),
            None => None,
        };
        #[cfg(feature = "chaos")]
        options
            .chaos
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let addr = listener.local_addr()?;
        let enterprise = options.enterprise;
        let base_url = if enterprise {
            format!("http://{addr}{ENTERPRISE_REST_PREFIX}")
        } else {
            format!("http://{addr}")
        };
        let window = i64::try_from(options.rate_limit_window.as_secs())
            .unwrap_or(i64::MAX / 2)
            .max(1);
        let shared = Arc::new(Shared {
            orgs: orgs.into_iter().map(RwLock::new).collect(),
            app,
            installation_limit: (options.rate_limit, window),
            installation_budgets: options.installation_budgets,
            secondary: options
                .secondary_limits
                .map(|l| Mutex::new(SecondaryState::new(l))),
            token: RwLock::new(options.token),
            base_url: base_url.clone(),
            team_role_names: options.team_role_names,
            state: Mutex::new(ServerState {
                budget: Budget {
                    limit: options.rate_limit,
                    window,
                    used: 0,
                    reset: None,
                    violations: 0,
                },
                installation_budgets: BTreeMap::new(),
                counts: RequestCounts::default(),
                records: VecDeque::new(),
                requests_seen: 0,
                graphql: graphql::GraphqlState::new(options.graphql_rate_limit, window),
            }),
            #[cfg(feature = "chaos")]
            chaos: Mutex::new(chaos::ChaosState::new(options.chaos)),
        });
        let router = Router::new()
            .route(
                "/graphql",
                axum::routing::post(graphql::handle).fallback(handle),
            )
            .route(
                "/app/installations/{installation_id}/access_tokens",
                axum::routing::post(mint).fallback(handle),
            )
            .fallback(handle)
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                secondary::layer,
            ));
        #[cfg(feature = "chaos")]
        let router = router.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            chaos::layer,
        ));
        let app = router.with_state(Arc::clone(&shared));
        // Outermost, before any routing (a router's own layers run after it
        // picked a route): the chaos layer and the routes see github.com's paths.
        let app = if enterprise {
            Router::new()
                .fallback_service(app)
                .layer(axum::middleware::from_fn(enterprise_layout))
        } else {
            app
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        #[cfg(feature = "chaos")]
        let task = tokio::spawn(chaos::serve_resettable(listener, app, stopped));
        #[cfg(not(feature = "chaos"))]
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        });
        Ok(SimHandle {
            shared,
            addr,
            base_url,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running simulated GitHub. Dropping it stops the server (without waiting);
/// [`SimHandle::shutdown`] stops it and waits.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`: the API root (what `github.api_url` points at).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token requests must carry.
    pub fn token(&self) -> String {
        self.shared.token()
    }

    /// Accepts `token` instead from now on (the old one gets 401), as when a token
    /// is rotated. ETags are specific to the token, as on GitHub, so an ETag
    /// obtained with the old token never matches again.
    pub fn set_token(&self, token: &str) {
        *self
            .shared
            .token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = token.to_owned();
    }

    /// Reads the served organisation (the first one).
    pub fn with_org<R>(&self, f: impl FnOnce(&Org) -> R) -> R {
        let org = self
            .shared
            .primary()
            .read()
            .unwrap_or_else(|p| p.into_inner());
        f(&org)
    }

    /// Changes the served organisation (the first one); later requests see the
    /// change.
    pub fn with_org_mut<R>(&self, f: impl FnOnce(&mut Org) -> R) -> R {
        let mut org = self
            .shared
            .primary()
            .write()
            .unwrap_or_else(|p| p.into_inner());
        f(&mut org)
    }

    /// Changes the served organisation called `login`; `None` when none is.
    pub fn with_org_named_mut<R>(&self, login: &str, f: impl FnOnce(&mut Org) -> R) -> Option<R> {
        let org = self.shared.org_named(login)?;
        let mut org = org.write().unwrap_or_else(|p| p.into_inner());
        Some(f(&mut org))
    }

    /// Removes the App's installation `id`: its tokens are refused (401) and it
    /// can mint no other (404), as when an organisation uninstalls the App.
    pub fn revoke_installation(&self, id: u64) {
        if let Some(mut app) = self.shared.app() {
            app.revoke(id);
        }
    }

    /// Ends every installation token now, before its `expires_at` (the next
    /// request with one is refused with 401, as when GitHub revokes tokens early).
    pub fn expire_tokens(&self) {
        if let Some(mut app) = self.shared.app() {
            app.expire_all(SystemTime::now());
        }
    }

    /// Ends every installation token once `uses` more requests have been made
    /// with valid ones: the next request is refused with 401, mid-sync, at a
    /// point that does not depend on timing.
    pub fn expire_tokens_after(&self, uses: u64) {
        if let Some(mut app) = self.shared.app() {
            app.end_tokens_after(uses);
        }
    }

    /// Brings back the App's installation `id` (reinstalled).
    pub fn restore_installation(&self, id: u64) {
        if let Some(mut app) = self.shared.app() {
            app.restore(id);
        }
    }

    /// Installation tokens minted so far, per installation id.
    pub fn tokens_minted(&self) -> BTreeMap<u64, u64> {
        self.shared
            .app()
            .map(|app| app.minted())
            .unwrap_or_default()
    }

    /// The latest installation tokens minted (at most a thousand), oldest first:
    /// for tests that check none ever appears in a client's output.
    pub fn minted_tokens(&self) -> Vec<String> {
        self.shared
            .app()
            .map(|app| app.minted_tokens())
            .unwrap_or_default()
    }

    /// Requests refused because their installation token had expired or its
    /// installation was removed.
    pub fn expired_token_uses(&self) -> u64 {
        self.shared.app().map_or(0, |app| app.expired_uses())
    }

    /// What the secondary limits refused and the peak load they saw (all zero
    /// when they are off).
    pub fn secondary_counts(&self) -> SecondaryCounts {
        self.shared
            .secondary()
            .map(|state| state.counts())
            .unwrap_or_default()
    }

    /// The REST budget of installation `id` now (`None` before its first
    /// request).
    pub fn installation_rate_limit(&self, id: u64) -> Option<RateLimitState> {
        let now = epoch_now();
        self.shared
            .state()
            .installation_budgets
            .get_mut(&id)
            .map(|budget| budget.state(now))
    }

    /// A copy of the request counters.
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.state().counts.clone()
    }

    /// The recorded requests, oldest first (at most [`MAX_RECORDED_REQUESTS`]).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().records.iter().cloned().collect()
    }

    /// Clears counters, records, the GraphQL points tally and the secondary
    /// limits' counts (not the budgets).
    pub fn reset_counts(&self) {
        let mut state = self.shared.state();
        state.counts = RequestCounts::default();
        state.records.clear();
        state.graphql.points = 0;
        drop(state);
        if let Some(mut secondary) = self.shared.secondary() {
            secondary.reset_counts();
        }
    }

    /// The rate-limit budget now.
    pub fn rate_limit(&self) -> RateLimitState {
        self.shared.state().budget.state(epoch_now())
    }

    /// Requests received while the budget was exhausted.
    pub fn rate_limit_violations(&self) -> u64 {
        self.shared.state().budget.violations
    }

    /// Sets the remaining budget of the current window (e.g. 0 to exhaust it).
    pub fn set_rate_limit_remaining(&self, remaining: u64) {
        let now = epoch_now();
        let mut state = self.shared.state();
        let budget = &mut state.budget;
        budget.refresh(now);
        budget.reset_at(now);
        budget.used = budget.limit.saturating_sub(remaining);
    }

    /// Starts a fresh window with the full budget (as if the reset time passed).
    pub fn reset_rate_limit(&self) {
        let mut state = self.shared.state();
        state.budget.used = 0;
        state.budget.reset = None;
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

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) fn epoch_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reads `Authorization`: `Bearer <token>` or `token <token>` (scheme
/// case-insensitive). (The chaos layer faults only requests with the token.)
#[cfg(any(test, feature = "chaos"))]
fn token_use(headers: &HeaderMap, token: &str) -> TokenUse {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return TokenUse::Missing;
    };
    let Ok(value) = value.to_str() else {
        return TokenUse::Invalid;
    };
    let given = value.split_once(' ').and_then(|(scheme, rest)| {
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
            .then(|| rest.trim())
    });
    match given {
        Some(given) if given == token => TokenUse::Valid,
        _ => TokenUse::Invalid,
    }
}

/// The `ETag` of `body` served to `token`: a hash of both, so that, as on GitHub,
/// another token's ETag for the same content never matches.
fn etag_of(token: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    format!("\"{:x}\"", hasher.finalize())
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, lists, `*`).
fn etag_matches(header: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == bare)
}

/// What the request turned into, before HTTP encoding.
struct Outcome {
    status: StatusCode,
    body: Option<Vec<u8>>,
    etag: Option<String>,
    link: Option<String>,
    /// Include `x-ratelimit-*`.
    budget: Option<(u64, u64, i64)>,
}

/// Where GitHub Enterprise Server serves its REST API (`https://HOST/api/v3`).
pub const ENTERPRISE_REST_PREFIX: &str = "/api/v3";

/// Where GitHub Enterprise Server serves GraphQL (`https://HOST/api/graphql`).
pub const ENTERPRISE_GRAPHQL_PATH: &str = "/api/graphql";

/// GitHub Enterprise Server's layout over github.com's routes: `/api/v3/...` is
/// `/...`, `/api/graphql` is `/graphql`, any other path is GHES's `404`; and
/// rate limiting is off (GHES's default), so no answer carries `x-ratelimit-*`.
/// A team's repositories as older GitHub Enterprise Server releases list them:
/// without `role_name` (the `permissions` flags only).
fn without_role_names(mut reply: api::Reply) -> api::Reply {
    if let Some(items) = reply.body.as_array_mut() {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            item.remove("role_name");
        }
    }
    reply
}

async fn enterprise_layout(mut request: Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    let inner = if path == ENTERPRISE_GRAPHQL_PATH {
        Some("/graphql".to_owned())
    } else {
        path.strip_prefix(ENTERPRISE_REST_PREFIX)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_owned)
    };
    let Some(inner) = inner else {
        let mut response = Response::new(Body::from(
            r#"{"message":"Not Found","documentation_url":"https://docs.github.com/enterprise-server/rest"}"#,
        ));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        return response;
    };
    let target = match request.uri().query() {
        Some(query) => format!("{inner}?{query}"),
        None => inner,
    };
    if let Ok(uri) = target.parse() {
        *request.uri_mut() = uri;
    }
    let mut response = next.run(request).await;
    let limits: Vec<header::HeaderName> = response
        .headers()
        .keys()
        .filter(|name| name.as_str().starts_with("x-ratelimit-"))
        .cloned()
        .collect();
    for name in limits {
        response.headers_mut().remove(name);
    }
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.respond(request.method(), request.uri(), request.headers())
}

impl Shared {
    fn respond(&self, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
        let route = if method == Method::GET {
            route::parse_path(uri.path())
        } else {
            None
        };
        let template = route.as_ref().map_or(UNMATCHED, |r| r.endpoint.template());
        let caller = self.caller(headers);
        let token = caller.token_use();
        let if_none_match = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        let outcome = self.outcome(route.as_ref(), uri.query(), &caller, headers, if_none_match);

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
            if_none_match.is_some(),
        );
        log_request(&mut state.counts, &mut state.records, record);
        drop(guard);
        build_response(outcome, request_id)
    }

    fn outcome(
        &self,
        route: Option<&Route>,
        raw_query: Option<&str>,
        caller: &Caller,
        headers: &HeaderMap,
        if_none_match: Option<&str>,
    ) -> Outcome {
        let endpoint = route.map(|r| &r.endpoint);
        let docs = api::docs_url(endpoint);
        let app_route = matches!(
            endpoint,
            Some(
                Endpoint::AppInstallations
                    | Endpoint::OrgInstallation { .. }
                    | Endpoint::RepoInstallation
            )
        );
        match (caller, app_route) {
            (Caller::App, true) => return self.app_outcome(route, docs),
            (_, true) => return unauthorized(app::JWT_UNDECODABLE),
            (Caller::Token | Caller::Installation { .. }, false) => {}
            (Caller::Refused(message), false) => return unauthorized(message),
            (Caller::App | Caller::Missing, false) => return unauthorized("Bad credentials"),
        }
        let installation = match caller {
            Caller::Installation { id, account } => Some((*id, account.as_str())),
            _ => None,
        };
        let org_lock = self.org_for(route);
        // An installation reads its own account only (GitHub: 404 elsewhere).
        if let Some((_, account)) = installation {
            let owner = org_lock
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .owner
                .clone();
            let other_repo = route.is_some_and(|r| match &r.repo {
                Some(RepoKey::Name { owner: asked, .. }) => !asked.eq_ignore_ascii_case(account),
                Some(RepoKey::Id(_)) => !owner.eq_ignore_ascii_case(account),
                None => false,
            });
            let other_org = matches!(
                endpoint,
                Some(
                    Endpoint::OrgRepos { org }
                        | Endpoint::OrgTeams { org }
                        | Endpoint::TeamRepos { org, .. }
                ) if !org.eq_ignore_ascii_case(account)
            );
            if other_repo || other_org {
                let body = serde_json::json!({"message": "Not Found", "documentation_url": docs, "status": "404"});
                return Outcome {
                    status: StatusCode::NOT_FOUND,
                    body: Some(to_bytes(&body)),
                    etag: None,
                    link: None,
                    budget: None,
                };
            }
        }
        let _ = headers;
        let now = epoch_now();
        let free = matches!(endpoint, Some(Endpoint::RateLimit));
        let installation_id = installation.map(|(id, _)| id);
        // Reserve the budget unit up front, so that concurrent requests can never
        // spend more than the limit; a 304 gives it back.
        let (limit, window) = match installation {
            Some((_, account)) => self.installation_limit_of(account),
            None => self.installation_limit,
        };
        let budget = {
            let mut state = self.state();
            let budget = match installation_id {
                Some(id) => state.installation_budgets.entry(id).or_insert(Budget {
                    limit,
                    window,
                    used: 0,
                    reset: None,
                    violations: 0,
                }),
                None => &mut state.budget,
            };
            budget.refresh(now);
            let reset = budget.reset_at(now);
            if !free && budget.remaining() == 0 {
                budget.violations += 1;
                let body = serde_json::json!({
                    "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    "status": "403",
                });
                return Outcome {
                    status: StatusCode::FORBIDDEN,
                    body: Some(to_bytes(&body)),
                    etag: None,
                    link: None,
                    budget: Some((budget.limit, budget.used, reset)),
                };
            }
            if !free {
                budget.used += 1;
            }
            (budget.limit, budget.used, reset)
        };

        let query = Query::parse(raw_query);
        let result: Result<api::Reply, api::ApiError> = match route {
            None => Err(api::ApiError::NotFound(None)),
            Some(Route {
                endpoint: Endpoint::RateLimit,
                ..
            }) => {
                let org = org_lock.read().unwrap_or_else(|p| p.into_inner());
                let ctx = render::Ctx::new(&self.base_url, &org);
                Ok(api::Reply {
                    body: ctx.rate_limit(
                        budget.0,
                        budget.1,
                        budget.2,
                        self.graphql_budget(now, installation_id),
                    ),
                    link: None,
                })
            }
            Some(route) => {
                let org = org_lock.read().unwrap_or_else(|p| p.into_inner());
                let reply = api::respond(&org, &self.base_url, route, &query);
                if self.team_role_names || !matches!(route.endpoint, Endpoint::TeamRepos { .. }) {
                    reply
                } else {
                    reply.map(without_role_names)
                }
            }
        };
        match result {
            Ok(reply) => {
                let body = to_bytes(&reply.body);
                // GitHub's ETags are specific to the token (`Vary: Authorization`).
                let credential = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(bearer)
                    .unwrap_or_default();
                let etag = etag_of(credential, &body);
                if if_none_match.is_some_and(|h| etag_matches(h, &etag)) {
                    let budget = if free {
                        budget
                    } else {
                        self.refund(now, installation_id)
                    };
                    return Outcome {
                        status: StatusCode::NOT_MODIFIED,
                        body: None,
                        etag: Some(etag),
                        link: reply.link,
                        budget: Some(budget),
                    };
                }
                Outcome {
                    status: StatusCode::OK,
                    body: Some(body),
                    etag: Some(etag),
                    link: reply.link,
                    budget: Some(budget),
                }
            }
            Err(error) => Outcome {
                status: StatusCode::from_u16(error.status()).unwrap_or(StatusCode::NOT_FOUND),
                body: Some(to_bytes(&error.body(docs))),
                etag: None,
                link: None,
                budget: Some(budget),
            },
        }
    }

    /// The budget `(limit, window)` of the installation on `account`: flat, or
    /// GitHub's rule over the account's repositories and people.
    fn installation_limit_of(&self, account: &str) -> (u64, i64) {
        let (flat, window) = self.installation_limit;
        match self.installation_budgets {
            InstallationBudgets::Flat => (flat, window),
            InstallationBudgets::Github => {
                let (repositories, users) = self.org_named(account).map_or((0, 0), |org| {
                    let org = org.read().unwrap_or_else(|p| p.into_inner());
                    // People: index 0 is the Actions bot, no member.
                    (org.repos.len(), org.people.len().saturating_sub(1))
                });
                (github_installation_limit(repositories, users), window)
            }
        }
    }

    /// Gives back one reserved budget unit (a 304) of the token's or the
    /// installation's budget and returns the budget after.
    fn refund(&self, now: i64, installation: Option<u64>) -> (u64, u64, i64) {
        let mut guard = self.state();
        let state = &mut *guard;
        let budget = match installation.and_then(|id| state.installation_budgets.get_mut(&id)) {
            Some(budget) => budget,
            None => &mut state.budget,
        };
        budget.used = budget.used.saturating_sub(1);
        let reset = budget.reset_at(now);
        (budget.limit, budget.used, reset)
    }
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// 401 with GitHub's `message`.
fn unauthorized(message: &str) -> Outcome {
    let body = serde_json::json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": "401"});
    Outcome {
        status: StatusCode::UNAUTHORIZED,
        body: Some(to_bytes(&body)),
        etag: None,
        link: None,
        budget: None,
    }
}

/// 404 with GitHub's body.
fn not_found(docs: &str) -> Outcome {
    let body =
        serde_json::json!({"message": "Not Found", "documentation_url": docs, "status": "404"});
    Outcome {
        status: StatusCode::NOT_FOUND,
        body: Some(to_bytes(&body)),
        etag: None,
        link: None,
        budget: None,
    }
}

/// The axum handler of `POST /app/installations/{installation_id}/access_tokens`.
async fn mint(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    request: Request,
) -> Response {
    const ROUTE: &str = "POST /app/installations/{installation_id}/access_tokens";
    const DOCS: &str =
        "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
    let caller = shared.caller(request.headers());
    let outcome = match caller {
        Caller::App => {
            let minted = id.parse::<u64>().ok().and_then(|id| {
                shared
                    .app()
                    .and_then(|mut app| app.mint(id, SystemTime::now()))
            });
            match minted {
                Some((token, expires)) => Outcome {
                    status: StatusCode::CREATED,
                    body: Some(to_bytes(&app::token_body(&token, expires))),
                    etag: None,
                    link: None,
                    budget: None,
                },
                None => not_found(DOCS),
            }
        }
        Caller::Refused(message) if message != "Bad credentials" => unauthorized(message),
        _ => unauthorized(app::JWT_UNDECODABLE),
    };
    shared.record(request.method(), request.uri(), ROUTE, &caller, &outcome);
    let mut state = shared.state();
    state.requests_seen += 1;
    let request_id = state.requests_seen;
    drop(state);
    build_response(outcome, request_id)
}

impl Shared {
    /// The answer to one of the App's `GET` routes, for a valid JWT.
    fn app_outcome(&self, route: Option<&Route>, docs: &str) -> Outcome {
        let Some(app) = self.app() else {
            return not_found(docs);
        };
        let app_id = app.id();
        let render = |installation: &app::SimInstallation| {
            let (login, owner_id) = {
                let org = self
                    .org_named(&installation.account)
                    .unwrap_or_else(|| self.primary())
                    .read()
                    .unwrap_or_else(|p| p.into_inner());
                (org.owner.clone(), org.owner_id)
            };
            let account = render::user_value(&self.base_url, &login, owner_id, "Organization");
            render::installation(&self.base_url, app_id, installation.id, account, owner_id)
        };
        let body = match route.map(|r| (&r.endpoint, &r.repo)) {
            Some((Endpoint::AppInstallations, _)) => {
                Value::Array(app.installations().into_iter().map(render).collect())
            }
            Some((Endpoint::OrgInstallation { org }, _)) => match app.installation_on(org) {
                Some(installation) => render(installation),
                None => return not_found(docs),
            },
            Some((Endpoint::RepoInstallation, Some(key))) => {
                let org = self
                    .org_for(route)
                    .read()
                    .unwrap_or_else(|p| p.into_inner());
                let found = api::find_repo(&org, key).is_some();
                let owner = org.owner.clone();
                drop(org);
                match app.installation_on(&owner).filter(|_| found) {
                    Some(installation) => render(installation),
                    None => return not_found(docs),
                }
            }
            _ => return not_found(docs),
        };
        Outcome {
            status: StatusCode::OK,
            body: Some(to_bytes(&body)),
            etag: None,
            link: None,
            budget: None,
        }
    }

    /// Counts and records one request answered outside [`Shared::respond`].
    fn record(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        template: &'static str,
        caller: &Caller,
        outcome: &Outcome,
    ) {
        let mut guard = self.state();
        let state = &mut *guard;
        let record = RequestRecord::new(
            method.as_str(),
            uri,
            template,
            outcome.status.as_u16(),
            caller.token_use(),
            false,
        );
        log_request(&mut state.counts, &mut state.records, record);
    }
}

/// Headers GitHub sends on API responses (from the recorded session).
const EXPOSED_HEADERS: &str = "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset";

fn build_response(outcome: Outcome, request_id: u64) -> Response {
    let mut builder = Response::builder()
        .status(outcome.status)
        .header(header::SERVER, "GitHub.com")
        .header(header::CACHE_CONTROL, "private, max-age=60, s-maxage=60")
        .header(header::VARY, "Accept, Authorization, Cookie, X-GitHub-OTP")
        .header("x-github-media-type", "github.v3; format=json")
        .header("x-github-api-version-selected", "2022-11-28")
        .header("access-control-expose-headers", EXPOSED_HEADERS)
        .header("access-control-allow-origin", "*")
        .header("x-content-type-options", "nosniff")
        .header(
            "x-github-request-id",
            format!(
                "{:04X}:{:04X}:{:X}:{:X}:{:X}",
                request_id & 0xFFFF,
                (request_id >> 16) & 0xFFFF,
                0x10B_0000 + request_id,
                0x25F_0000 + request_id * 3,
                0x62D6_0000 + request_id
            ),
        );
    if outcome.body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json; charset=utf-8");
    }
    if let Some(etag) = &outcome.etag {
        builder = builder.header(header::ETAG, etag.as_str());
    }
    if let Some(link) = &outcome.link {
        if let Ok(value) = HeaderValue::from_str(link) {
            builder = builder.header(header::LINK, value);
        }
    }
    if let Some((limit, used, reset)) = outcome.budget {
        builder = builder
            .header("x-ratelimit-limit", limit)
            .header("x-ratelimit-remaining", limit.saturating_sub(used))
            .header("x-ratelimit-reset", reset)
            .header("x-ratelimit-used", used)
            .header("x-ratelimit-resource", "core");
    }
    let body = outcome.body.map_or_else(Body::empty, Body::from);
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::from("internal error"));
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_like_github() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            token_use(&headers, "t0k")
        };
        assert_eq!(with("Bearer t0k"), TokenUse::Valid);
        assert_eq!(with("token t0k"), TokenUse::Valid);
        assert_eq!(with("BEARER t0k"), TokenUse::Valid);
        assert_eq!(with("Bearer other"), TokenUse::Invalid);
        assert_eq!(with("Basic t0k"), TokenUse::Invalid);
        assert_eq!(with("t0k"), TokenUse::Invalid);
        assert_eq!(token_use(&HeaderMap::new(), "t0k"), TokenUse::Missing);
    }

    #[test]
    fn etags_match_weakly_and_in_lists() {
        let tag = "\"abc\"";
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("W/\"abc\"", tag));
        assert!(etag_matches("\"x\", \"abc\"", tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("\"abd\"", tag));
        assert!(!etag_matches("", tag));
    }

    #[test]
    fn installation_budgets_grow_with_repositories_and_users_up_to_12500() {
        assert_eq!(github_installation_limit(0, 0), 5_000);
        assert_eq!(github_installation_limit(20, 20), 5_000);
        assert_eq!(github_installation_limit(21, 0), 5_050);
        assert_eq!(github_installation_limit(100, 30), 5_000 + (80 + 10) * 50);
        assert_eq!(github_installation_limit(170, 0), 12_500);
        assert_eq!(github_installation_limit(1_000, 0), 12_500);
        assert_eq!(github_installation_limit(usize::MAX, usize::MAX), 12_500);
    }

    #[test]
    fn budget_windows_reset() {
        let mut budget = Budget {
            limit: 2,
            window: 10,
            used: 2,
            reset: Some(100),
            violations: 0,
        };
        budget.refresh(99);
        assert_eq!(budget.remaining(), 0);
        budget.refresh(100);
        assert_eq!(budget.remaining(), 2);
        assert_eq!(budget.reset_at(100), 110);
    }
}
