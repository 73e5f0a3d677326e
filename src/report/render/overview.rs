//! The landing page at `/`: the organisation's numbers with their levels and
//! their change from the previous period, each team's row, what is stale or
//! failing to sync, and where to go next, in the report's look (its shared
//! style sheet), with no JavaScript.
//!
//! It renders a [`Report`] (the live report's model, made by `report::live`)
//! and a [`Frame`] (what the server says of itself: version, readiness, routes),
//! through the template `templates/overview.html`; it computes nothing and
//! reads nothing.

use super::html::{WindowLink, CONTENT_SECURITY_POLICY};
use super::view::View;
use crate::report::model::Report;
use crate::report::ReportError;
use crate::store::SyncStatus;
use serde::Serialize;
use std::collections::BTreeMap;

/// The page's template.
pub(super) const TEMPLATE: &str = "overview.html";

/// The most repositories listed with where each is read from; beyond, the
/// page says how many more there are.
pub const MAX_LISTED_REPOSITORIES: usize = 1_000;

/// The most repositories listed as stale or failing to sync.
pub const MAX_LISTED_SYNC_PROBLEMS: usize = 50;

/// What the server says of itself on the landing page; the daemon fills it from
/// its exporter state at each request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The collector's version.
    pub version: String,
    /// The data comes from the built-in demo organisation.
    pub simulated: bool,
    /// `/readyz` answers 200.
    pub ready: bool,
    /// What `/readyz` says (`every repository synced once`, or why not).
    pub readiness: String,
    /// `Metrics evaluated at …`, or that none were published yet.
    pub snapshot: String,
    /// The push API is served.
    pub push_api: bool,
    /// GitHub webhooks are taken.
    pub github_webhooks: bool,
    /// `server.grafana_url`, without a trailing `/`: the dashboards are linked.
    pub grafana_url: Option<String>,
    /// Each configured repository and where it is read from.
    pub sources: Vec<(String, &'static str)>,
    /// How many repositories have their history complete in the store (their
    /// windows exported), and back to when at least: `history complete for N
    /// of M repositories, back to T at least`; empty when none is synced by a
    /// source.
    pub history: String,
}

impl Frame {
    /// A frame for a server that has said nothing of itself yet.
    pub fn unknown() -> Self {
        Frame {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            simulated: false,
            ready: false,
            readiness: "not known".to_owned(),
            snapshot: "No metrics published yet".to_owned(),
            push_api: false,
            github_webhooks: false,
            grafana_url: None,
            sources: Vec::new(),
            history: String::new(),
        }
    }
}

/// A repository whose last sync failed, or whose last success is too old.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct SyncProblem {
    repository: String,
    source: String,
    /// RFC 3339, or `never`.
    last_success_at: String,
    /// The stored error (never holds a token), or `-`.
    last_error: String,
}

#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    source: &'static str,
}

/// What `overview.html` reads.
#[derive(Serialize)]
struct Page<'a> {
    content_security_policy: &'static str,
    frame: &'a Frame,
    /// The report's view; absent when there are no numbers yet.
    overview: Option<View<'a>>,
    /// Why there are no numbers yet.
    unavailable: &'a str,
    absent: &'static str,
    window_links: &'a [WindowLink],
    /// Each team's report, by team name.
    team_links: BTreeMap<&'a str, String>,
    problems: Vec<SyncProblem>,
    problems_summary: String,
    more_problems: usize,
    stale_max_age: String,
    sources: Vec<Listed<'a>>,
    more_sources: usize,
}

/// The landing page: `report` (or, without one, `unavailable` saying why),
/// `statuses` (the store's sync status of every repository and source) and the
/// server's `frame`; `window_links` switch the window (relative URLs).
pub fn render(
    frame: &Frame,
    report: Option<&Report>,
    unavailable: &str,
    statuses: &[SyncStatus],
    window_links: &[WindowLink],
) -> Result<String, ReportError> {
    let overview = report.map(View::new);
    let team_links = report
        .map(|report| {
            report
                .teams
                .iter()
                .map(|team| {
                    let mut query = url::form_urlencoded::Serializer::new(String::new());
                    query.append_pair("window", &report.period.window);
                    query.append_pair("team", &team.name);
                    (team.name.as_str(), format!("/report?{}", query.finish()))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut problems = sync_problems(report, statuses);
    let total = problems.len();
    problems.truncate(MAX_LISTED_SYNC_PROBLEMS);
    let problems_summary = match total {
        1 => "1 repository is stale or failing to sync".to_owned(),
        n => format!("{n} repositories are stale or failing to sync"),
    };
    let stale_max_age = report.map_or_else(String::new, |r| {
        super::text::duration(r.risks.stale_data.max_age_seconds as f64)
    });
    let page = Page {
        content_security_policy: CONTENT_SECURITY_POLICY,
        frame,
        overview,
        unavailable,
        absent: super::text::ABSENT,
        window_links,
        team_links,
        more_problems: total - problems.len(),
        problems,
        problems_summary,
        stale_max_age,
        sources: frame
            .sources
            .iter()
            .take(MAX_LISTED_REPOSITORIES)
            .map(|(name, source)| Listed { name, source })
            .collect(),
        more_sources: frame.sources.len().saturating_sub(MAX_LISTED_REPOSITORIES),
    };
    super::render_template(TEMPLATE, "html", &page)
}

/// Every repository and source whose last sync failed, then those the report
/// finds stale (no success for three poll intervals), each once, by name.
fn sync_problems(report: Option<&Report>, statuses: &[SyncStatus]) -> Vec<SyncProblem> {
    let mut problems: BTreeMap<(String, String), SyncProblem> = BTreeMap::new();
    let when = |at: Option<crate::domain::Timestamp>| {
        at.map_or_else(|| "never".to_owned(), |at| at.to_rfc3339())
    };
    for status in statuses.iter().filter(|s| s.last_error.is_some()) {
        let key = (status.repository.as_str().to_owned(), status.source.clone());
        problems.insert(
            key.clone(),
            SyncProblem {
                repository: key.0,
                source: key.1,
                last_success_at: when(status.last_success_at),
                last_error: status.last_error.clone().unwrap_or_default(),
            },
        );
    }
    for stale in report
        .iter()
        .flat_map(|r| r.risks.stale_data.repositories.items.iter())
    {
        let source = stale.source.clone().unwrap_or_else(|| "-".to_owned());
        problems
            .entry((stale.repository.clone(), source.clone()))
            .or_insert_with(|| SyncProblem {
                repository: stale.repository.clone(),
                source,
                last_success_at: when(stale.last_success_at),
                last_error: stale.last_error.clone().unwrap_or_else(|| "-".to_owned()),
            });
    }
    problems.into_values().collect()
}
