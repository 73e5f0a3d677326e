//! The live report page: the HTML report at `/report`, made on request from the
//! store, for the daemon to serve next to `/metrics`.
//!
//! Mounting it is one line: `app.merge(report::live_router(config, now))` with the
//! daemon's `Arc<Config>` and its clock (or [`LiveReport::with_store_opener`] to
//! choose how the store is opened). Each page is evaluated at the time `now` gives
//! (the daemon passes its injected `Clock`, so a test's fixed clock reaches the
//! page). Each request opens its own connection to the store in a
//! blocking task (SQLite's WAL lets it read while the daemon writes), evaluates the
//! engine and renders the page; at most [`LIVE_REPORT_CONCURRENCY`] requests do so
//! at once, up to [`LIVE_REPORT_MAX_WAITING`] others wait up to [`LIVE_REPORT_WAIT`]
//! and then get 503, and any more get 503 at once.
//!
//! Query string: `window` (a duration from 1h to 366d, default 30d, the same rule
//! as `--window`) and `team` (a configured team). Anything else, a repeated key, a
//! bad value or a query longer than [`MAX_QUERY_BYTES`] is a 400 with a plain-text
//! reason. The page is never cached, and carries the same Content-Security-Policy
//! as a header as in its `<meta>`. A failure is answered with what failed (the
//! store could not be read, ...) but never a file path or a lower-level message:
//! the page is not authenticated, and those go to the log.
//!
//! It does not bind a socket, read the sources or write the store.

use super::generate::{generate, open_configured_store, ReportError, ReportRequest};
use super::period::ReportWindow;
use super::render::html::{self, HtmlOptions, WindowLink, CONTENT_SECURITY_POLICY};
use super::render::overview::{self, Frame};
use crate::config::Config;
use crate::domain::{Team, Timestamp};
use crate::store::Store;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where the page is served.
pub(crate) const REPORT_PATH: &str = "/report";

/// Where the landing page is served.
pub(crate) const OVERVIEW_PATH: &str = "/";

/// How long a landing page is served again as it was made (for the same window
/// and the same frame): reloading it, or many people opening it after a review
/// link was shared, costs one report a minute at most.
pub const OVERVIEW_CACHE_TTL: Duration = Duration::from_secs(60);

/// The longest query string accepted: room for the longest valid `window` and the
/// longest valid team name with every byte percent-encoded; a longer one is a
/// mistake or an attack, refused before any parsing.
pub(crate) const MAX_QUERY_BYTES: usize = 1024;

/// The longest `window` value that can be valid, percent-encoded (a window is at
/// most 366 days: `31622400s` is 9 bytes, 27 encoded).
const MAX_WINDOW_QUERY_BYTES: usize = 32;

const _: () = assert!(
    MAX_QUERY_BYTES
        >= "window=".len()
            + MAX_WINDOW_QUERY_BYTES
            + "&team=".len()
            + 3 * crate::domain::MAX_LABEL_NAME_LEN,
    "a valid query must fit"
);

/// How many reports are computed at once. A report loads the whole store and runs
/// the engine about 13 times; one at a time keeps a burst of page loads from
/// multiplying the daemon's memory and starving its syncs.
pub(crate) const LIVE_REPORT_CONCURRENCY: usize = 1;

/// How long a request waits for its turn before a 503: long enough for a report or
/// two ahead of it, short enough that a person is told rather than left waiting.
pub(crate) const LIVE_REPORT_WAIT: Duration = Duration::from_secs(30);

/// How many requests may wait for their turn; one more is answered 503 at once. A
/// waiting request holds one of the HTTP server's connections busy (not to be
/// closed for a newcomer), so a flood of `/report` requests must not be able to
/// hold them all.
pub(crate) const LIVE_REPORT_MAX_WAITING: usize = 8;

/// `Retry-After` (seconds) on a 503.
const RETRY_AFTER_SECONDS: &str = "10";

const PLAIN_TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// The query keys the page accepts.
const QUERY_KEYS: &str = "window, team";

/// Opens the store for one request.
pub type StoreOpener = Arc<dyn Fn() -> Result<Box<dyn Store>, ReportError> + Send + Sync>;

/// The time a page is evaluated at, read once per request (the daemon's clock).
pub type Now = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What the server says of itself on the landing page, read once per request.
pub type FrameSource = Arc<dyn Fn() -> Frame + Send + Sync>;

/// The report page at `now` over `window` (and `team`), with a window selector
/// linking to the configured windows. Pure apart from reading `store`.
pub fn live_page(
    store: &dyn Store,
    config: &Config,
    now: Timestamp,
    window: ReportWindow,
    team: Option<&Team>,
) -> Result<String, ReportError> {
    let request = ReportRequest {
        window,
        until: now,
        team: team.cloned(),
        generated_at: now,
    };
    let report = generate(store, config, &request)?;
    let options = HtmlOptions {
        window_links: window_links(config, window, team),
    };
    html::render(&report, &options)
}

/// The configured windows (and the one shown, if it is not one of them), each a
/// link to the page over that window, keeping the team.
fn window_links(config: &Config, current: ReportWindow, team: Option<&Team>) -> Vec<WindowLink> {
    let mut windows: Vec<ReportWindow> = config
        .metrics
        .windows
        .iter()
        .filter_map(|d| ReportWindow::from_duration(*d))
        .collect();
    if !windows.iter().any(|w| w.seconds() == current.seconds()) {
        windows.push(current);
    }
    windows.sort_by_key(|w| w.seconds());
    windows
        .into_iter()
        .map(|window| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("window", &window.to_string());
            if let Some(team) = team {
                query.append_pair("team", team.as_str());
            }
            WindowLink {
                label: window.to_string(),
                href: format!("?{}", query.finish()),
                current: window.seconds() == current.seconds(),
            }
        })
        .collect()
}

/// The validated query string of `/report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveQuery {
    pub window: ReportWindow,
    pub team: Option<Team>,
}

impl LiveQuery {
    /// Parses the raw query string; the error is the plain-text body of a 400.
    pub fn parse(raw: Option<&str>, config: &Config) -> Result<LiveQuery, String> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_BYTES {
            return Err(format!(
                "the query string is longer than {MAX_QUERY_BYTES} bytes"
            ));
        }
        let (mut window, mut team) = (None, None);
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            let slot = match key.as_ref() {
                "window" => &mut window,
                "team" => &mut team,
                other => {
                    return Err(format!(
                        "unknown query parameter {:?}; this page takes: {QUERY_KEYS}",
                        quote(other)
                    ))
                }
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(format!("query parameter {key} is given more than once"));
            }
        }
        let window = match window {
            Some(text) => ReportWindow::parse(&text).map_err(|e| format!("window: {e}"))?,
            None => ReportWindow::default(),
        };
        let team = match team {
            None => None,
            Some(text) => {
                let team = Team::parse(&text).map_err(|e| format!("team: {e}"))?;
                if !config.all_repositories().iter().any(|(_, t)| *t == team) {
                    return Err(format!(
                        "team: {:?} is not a team of the configuration",
                        quote(team.as_str())
                    ));
                }
                Some(team)
            }
        };
        Ok(LiveQuery { window, team })
    }
}

/// What failed, for an unauthenticated client: the kind of failure, never a path
/// or a message from below.
fn public_reason(error: &ReportError) -> &'static str {
    match error {
        ReportError::MissingStore { .. } => "the store does not exist yet",
        ReportError::Store(_) => "the store could not be read",
        ReportError::UnknownTeam { .. } => "the team is not in the configuration",
        ReportError::Render { .. } => "the page could not be rendered",
    }
}

/// A bounded prefix of untrusted text for an error message.
fn quote(text: &str) -> String {
    text.chars().take(crate::domain::MAX_QUOTED_INPUT).collect()
}

/// The page and what it needs, shared by every request.
#[derive(Clone)]
pub struct LiveReport {
    config: Arc<Config>,
    open: StoreOpener,
    now: Now,
    gate: Arc<Semaphore>,
    /// Admission: the requests computing or waiting to.
    queue: Arc<Semaphore>,
    frame: FrameSource,
    /// The last landing page made: when, for which window and frame.
    overview_cache: Arc<std::sync::Mutex<Option<CachedOverview>>>,
}

/// A landing page as it was made.
struct CachedOverview {
    made: std::time::Instant,
    window: ReportWindow,
    frame: Frame,
    html: String,
}

impl LiveReport {
    /// Reads the store at `config.storage.path` (opened per request; a missing file
    /// answers 503 until the daemon has created it), each page evaluated at `now()`.
    pub fn new(config: Arc<Config>, now: Now) -> Self {
        let storage = config.storage.clone();
        let open: StoreOpener = Arc::new(move || open_configured_store(&storage));
        LiveReport::with_store_opener(config, open, now)
    }

    /// Reads the store `open` returns, once per request, each page evaluated at
    /// `now()`.
    pub fn with_store_opener(config: Arc<Config>, open: StoreOpener, now: Now) -> Self {
        LiveReport {
            config,
            open,
            now,
            gate: Arc::new(Semaphore::new(LIVE_REPORT_CONCURRENCY)),
            queue: Arc::new(Semaphore::new(
                LIVE_REPORT_CONCURRENCY + LIVE_REPORT_MAX_WAITING,
            )),
            frame: Arc::new(Frame::unknown),
            overview_cache: Arc::default(),
        }
    }

    /// The landing page says of the server what `frame()` gives (the daemon's
    /// readiness, version, routes); without it, that nothing is known yet.
    pub fn with_frame(mut self, frame: FrameSource) -> Self {
        self.frame = frame;
        self
    }

    /// A router serving [`REPORT_PATH`] and the landing page at `/`; merge it
    /// into the daemon's.
    pub fn router(self) -> Router {
        Router::new()
            .route(REPORT_PATH, get(report_page))
            .route(OVERVIEW_PATH, get(landing_page))
            .with_state(self)
    }

    /// A turn to compute a page: admitted among the requests computing or
    /// waiting, then the one computing slot within [`LIVE_REPORT_WAIT`]; `None`
    /// when either is not to be had (the caller answers busy). Held until the
    /// page is made.
    async fn admit(&self) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let admitted = self.queue.clone().try_acquire_owned().ok()?;
        let computing = tokio::time::timeout(LIVE_REPORT_WAIT, self.gate.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some((computing, admitted))
    }

    /// The cached landing page for `window` and `frame`, if still fresh
    /// (`fresh`), or any cached one for them (a busy server serves it rather
    /// than a 503).
    fn cached_overview(&self, window: ReportWindow, frame: &Frame, fresh: bool) -> Option<String> {
        let cache = self.overview_cache.lock().ok()?;
        let cached = cache.as_ref()?;
        let same = cached.window == window && &cached.frame == frame;
        (same && (!fresh || cached.made.elapsed() < OVERVIEW_CACHE_TTL))
            .then(|| cached.html.clone())
    }
}

/// `GET /report` and the landing page over the store at
/// `config.storage.path`, evaluated at `now()`: the one line the daemon needs is
/// `app.merge(report::live_router(config, now))` (with
/// [`LiveReport::with_frame`] to say what the server is).
pub fn live_router(config: Arc<Config>, now: Now) -> Router {
    LiveReport::new(config, now).router()
}

/// The landing page at `now` over `window`, for a server described by `frame`:
/// the organisation's report (or why there is none yet) and the sync problems.
/// Pure apart from reading `store` (`Err` only when the page cannot be
/// rendered; a store that cannot be read is said on the page).
pub fn overview_page(
    store: Result<Box<dyn Store>, ReportError>,
    config: &Config,
    now: Timestamp,
    window: ReportWindow,
    frame: &Frame,
) -> Result<String, ReportError> {
    let links = window_links(config, window, None);
    let request = ReportRequest {
        window,
        until: now,
        team: None,
        generated_at: now,
    };
    let made = store.and_then(|store| {
        let report = generate(store.as_ref(), config, &request)?;
        let statuses = store.sync_status().map_err(ReportError::Store)?;
        Ok((report, statuses))
    });
    match made {
        Ok((report, statuses)) => overview::render(frame, Some(&report), "", &statuses, &links),
        Err(error) => {
            let why = match &error {
                ReportError::MissingStore { .. } => {
                    "The store does not exist yet: the daemon creates it at its first sync."
                        .to_owned()
                }
                other => {
                    tracing::error!(error = %other, "the landing page's report failed");
                    format!(
                        "The numbers could not be made: {}; the daemon's log has the details.",
                        public_reason(other)
                    )
                }
            };
            overview::render(frame, None, &why, &[], &links)
        }
    }
}

/// An HTML page, never cached, with the page's Content-Security-Policy.
fn html_page(page: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        page,
    )
        .into_response()
}

fn plain(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, PLAIN_TEXT)], body + "\n").into_response()
}

fn unavailable(body: String) -> Response {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, body);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

/// `GET /`: the landing page. Only `window` is taken from the query. It is
/// made like `/report` (the same admission and concurrency), and the last one
/// made is served again for [`OVERVIEW_CACHE_TTL`].
async fn landing_page(State(live): State<LiveReport>, RawQuery(raw): RawQuery) -> Response {
    let query = match LiveQuery::parse(raw.as_deref(), &live.config) {
        Ok(LiveQuery { team: Some(_), .. }) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "bad request: this page takes: window (a team's numbers are at /report?team=…)"
                    .to_owned(),
            )
        }
        Ok(query) => query,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, format!("bad request: {reason}")),
    };
    let frame = (live.frame)();
    if let Some(page) = live.cached_overview(query.window, &frame, true) {
        return html_page(page);
    }
    let busy = |live: &LiveReport| match live.cached_overview(query.window, &frame, false) {
        Some(page) => html_page(page),
        None => unavailable(
            "the collector is busy with other reports; try again in a few seconds".to_owned(),
        ),
    };
    let Some(permits) = live.admit().await else {
        return busy(&live);
    };
    let now = (live.now)();
    let (config, open) = (Arc::clone(&live.config), Arc::clone(&live.open));
    let (window, made_frame) = (query.window, frame.clone());
    let result = tokio::task::spawn_blocking(move || {
        let _permits = permits;
        overview_page(open(), &config, now, window, &made_frame)
    })
    .await;
    match result {
        Ok(Ok(page)) => {
            if let Ok(mut cache) = live.overview_cache.lock() {
                *cache = Some(CachedOverview {
                    made: std::time::Instant::now(),
                    window: query.window,
                    frame,
                    html: page.clone(),
                });
            }
            html_page(page)
        }
        Ok(Err(error)) => {
            tracing::error!(error = %error, "the landing page failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the page could not be made: {}", public_reason(&error)),
            )
        }
        Err(join) => {
            tracing::error!(error = %join, "the landing page task failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be made: internal error".to_owned(),
            )
        }
    }
}

async fn report_page(State(live): State<LiveReport>, RawQuery(raw): RawQuery) -> Response {
    let query = match LiveQuery::parse(raw.as_deref(), &live.config) {
        Ok(query) => query,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, format!("bad request: {reason}")),
    };
    let busy = || {
        unavailable("the report is busy with other requests; try again in a few seconds".to_owned())
    };
    let Some(permits) = live.admit().await else {
        return busy();
    };
    let now = (live.now)();
    let (config, open) = (Arc::clone(&live.config), Arc::clone(&live.open));
    let result = tokio::task::spawn_blocking(move || {
        let _permits = permits;
        let store = open()?;
        live_page(
            store.as_ref(),
            &config,
            now,
            query.window,
            query.team.as_ref(),
        )
    })
    .await;
    match result {
        Ok(Ok(page)) => html_page(page),
        // The answers name what failed but no file: the page is not authenticated,
        // and the log has the details.
        Ok(Err(ReportError::MissingStore { .. })) => unavailable(
            "no data yet: the store does not exist yet; the daemon creates it at its first \
             sync"
                .to_owned(),
        ),
        Ok(Err(error)) => {
            tracing::error!(error = %error, "the live report failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the report could not be made: {}; the daemon's log has the details",
                    public_reason(&error)
                ),
            )
        }
        Err(join) => {
            tracing::error!(error = %join, "the live report task failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the report could not be made: internal error".to_owned(),
            )
        }
    }
}
