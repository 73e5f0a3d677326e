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
use tokio::sync::Semaphore;

/// Where the page is served.
pub(crate) const REPORT_PATH: &str = "/report";

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
        }
    }

    /// A router serving [`REPORT_PATH`]; merge it into the daemon's.
    pub fn router(self) -> Router {
        Router::new()
            .route(REPORT_PATH, get(report_page))
            .with_state(self)
    }
}

/// `GET /report` over the store at `config.storage.path`, evaluated at `now()`: the
/// one line the daemon needs is `app.merge(report::live_router(config, now))`.
pub fn live_router(config: Arc<Config>, now: Now) -> Router {
    LiveReport::new(config, now).router()
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

async fn report_page(State(live): State<LiveReport>, RawQuery(raw): RawQuery) -> Response {
    let query = match LiveQuery::parse(raw.as_deref(), &live.config) {
        Ok(query) => query,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, format!("bad request: {reason}")),
    };
    let busy = || {
        unavailable("the report is busy with other requests; try again in a few seconds".to_owned())
    };
    let Ok(admitted) = live.queue.clone().try_acquire_owned() else {
        return busy();
    };
    let permit =
        match tokio::time::timeout(LIVE_REPORT_WAIT, live.gate.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => return busy(),
        };
    let now = (live.now)();
    let (config, open) = (Arc::clone(&live.config), Arc::clone(&live.open));
    let result = tokio::task::spawn_blocking(move || {
        let _permits = (permit, admitted);
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
        Ok(Ok(page)) => (
            [
                (header::CONTENT_TYPE, HTML),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            page,
        )
            .into_response(),
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
