//! The view model the Markdown and HTML templates read: the [`Report`] with every
//! value written as a person reads it (`text`), in the order the sections show it.
//! Plain data, no markup: the templates add the markup and the engine escapes every
//! value (`crate::templates`).
//!
//! Formatting only; every number is the report's.

use super::chart::{self, Chart};
use super::text;
use crate::dora::Level;
use crate::report::model::*;
use serde::Serialize;

/// Everything the templates show.
#[derive(Debug, Serialize)]
pub(super) struct View<'a> {
    /// `DORA report: organisation, 30d to 2026-03-31`.
    title: String,
    period: PeriodView<'a>,
    previous_period: PeriodView<'a>,
    /// `4 repositories`.
    repositories: String,
    /// `2 teams`.
    teams_count: String,
    generated_at: String,
    /// Shown where a value is absent: [`text::ABSENT`].
    absent: &'static str,
    summary: Vec<SummaryMetric>,
    incidents_open: u64,
    /// The short titles of the metrics, in order (scope table headings).
    metric_headings: Vec<&'static str>,
    teams: Vec<ScopeRow<'a>>,
    repository_rows: Vec<ScopeRow<'a>>,
    trend: TrendView,
    risks: RisksView<'a>,
    method: MethodView<'a>,
}

#[derive(Debug, Serialize)]
struct PeriodView<'a> {
    window: &'a str,
    start: String,
    end: String,
}

/// One metric of the summary (a card in HTML, a row in Markdown).
#[derive(Debug, Serialize)]
struct SummaryMetric {
    title: &'static str,
    value: String,
    /// `40 deployments`.
    samples: String,
    has_level: bool,
    /// The level's name; absent without one.
    level: Option<&'static str>,
    /// The previous period's value, or [`text::ABSENT`].
    previous: String,
    /// `+0.40/day (better)`, or [`text::ABSENT`].
    comparison: String,
    /// The change and whether it is good news, when both periods have a value.
    change: Option<Change>,
}

#[derive(Debug, Serialize)]
struct Change {
    /// `+0.40/day`.
    change: String,
    /// `better`, `worse`, `unchanged`.
    direction: &'static str,
}

/// A row of the Teams or Repositories table.
#[derive(Debug, Serialize)]
struct ScopeRow<'a> {
    name: &'a str,
    /// A rollup's repositories (0 for a repository).
    repositories: u64,
    /// Empty for a rollup.
    environment: &'a str,
    /// Empty for the organisation.
    team: &'a str,
    cells: Vec<MetricCell>,
    incidents_open: u64,
}

/// One metric in a scope table: `3.2 h (elite) ↗`.
#[derive(Debug, Serialize)]
struct MetricCell {
    /// The value, or [`text::ABSENT`].
    value: String,
    absent: bool,
    level: Option<&'static str>,
    /// `better`, `worse`, `unchanged`; absent without a change.
    direction: Option<&'static str>,
    /// `↗`, `↘`, `=`, or empty.
    mark: &'static str,
    /// The previous period's value, or [`text::ABSENT`].
    previous: String,
}

#[derive(Debug, Serialize)]
struct TrendView {
    /// How many weeks.
    count: usize,
    /// `2026-03-31`.
    end: String,
    weeks: Vec<WeekRow>,
    charts: Vec<Chart>,
}

#[derive(Debug, Serialize)]
struct WeekRow {
    end: String,
    deployments: u64,
    lead_time: String,
    lead_time_samples: u64,
}

#[derive(Debug, Serialize)]
struct RisksView<'a> {
    regressions: Vec<RegressionRow<'a>>,
    /// `1 regression`, when some are left out.
    regressions_omitted: Option<String>,
    /// `10.0%`.
    change_failure_threshold: String,
    change_failure: Vec<ChangeFailureRow<'a>>,
    change_failure_omitted: Option<String>,
    open_incidents: Vec<IncidentRow<'a>>,
    open_incidents_omitted: Option<String>,
    /// How old data may be (`3 d 0 h`) at the reference time.
    stale_max_age: String,
    stale_reference_time: String,
    stale: Vec<StaleRow<'a>>,
    stale_omitted: Option<String>,
}

#[derive(Debug, Serialize)]
struct RegressionRow<'a> {
    /// A team's regression reads `team NAME`.
    is_team: bool,
    name: &'a str,
    /// A repository's environment: `NAME (ENVIRONMENT)`.
    environment: Option<&'a str>,
    metric: &'static str,
    previous: String,
    value: String,
    change: String,
    has_level: bool,
    /// The level before, when it changed.
    level_before: Option<&'static str>,
    level: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct ChangeFailureRow<'a> {
    repository: &'a str,
    environment: &'a str,
    team: &'a str,
    rate: String,
    failed_deployments: u64,
    deployments: u64,
    level: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct IncidentRow<'a> {
    repository: &'a str,
    team: &'a str,
    opened_at: String,
    age: String,
}

#[derive(Debug, Serialize)]
struct StaleRow<'a> {
    repository: &'a str,
    team: &'a str,
    source: &'a str,
    last_success_at: String,
    age: String,
    last_error: &'a str,
}

#[derive(Debug, Serialize)]
struct MethodView<'a> {
    definitions: &'a str,
    /// The level bounds, elite, high, medium, as read.
    deployment_frequency: [String; 3],
    lead_time: [String; 3],
    change_failure_rate: [String; 3],
    recovery_time: [String; 3],
    /// `2 repository environments` and so on.
    without_base: String,
    unknown_changes: String,
    unattributed: String,
    unmatched: String,
}

impl<'a> View<'a> {
    pub(super) fn new(report: &'a Report) -> Self {
        let summary = &report.summary;
        View {
            title: format!(
                "DORA report: {}, {} to {}",
                scope_title(summary),
                report.period.window,
                text::date(report.period.end)
            ),
            period: PeriodView::new(&report.period),
            previous_period: PeriodView::new(&report.previous_period),
            repositories: text::count(
                summary.repositories.unwrap_or(0),
                "repository",
                "repositories",
            ),
            teams_count: text::count(report.teams.len() as u64, "team", "teams"),
            generated_at: text::time(report.generated_at),
            absent: text::ABSENT,
            summary: summary
                .metrics
                .iter()
                .into_iter()
                .map(|(metric, value)| SummaryMetric::new(metric, value))
                .collect(),
            incidents_open: summary.incidents_open,
            metric_headings: Metric::ALL.iter().map(|m| m.short_title()).collect(),
            teams: report.teams.iter().map(ScopeRow::new).collect(),
            repository_rows: report.repositories.iter().map(ScopeRow::new).collect(),
            trend: TrendView {
                count: report.trend.len(),
                end: text::date(report.period.end),
                weeks: report.trend.iter().map(WeekRow::new).collect(),
                charts: chart::trend_charts(report),
            },
            risks: RisksView::new(&report.risks),
            method: MethodView::new(report),
        }
    }
}

/// `organisation`, `team NAME` or the repository.
fn scope_title(scope: &ScopeReport) -> String {
    match scope.scope {
        ScopeKind::Organisation => "organisation".to_owned(),
        ScopeKind::Team => format!("team {}", scope.name),
        ScopeKind::Repository => scope.name.clone(),
    }
}

/// `3 incidents` when some were left out of a list.
fn omitted<T>(listed: &Listed<T>, one: &str, many: &str) -> Option<String> {
    let omitted = listed.omitted();
    (omitted > 0).then(|| text::count(omitted, one, many))
}

fn level_name(level: Option<Level>) -> Option<&'static str> {
    level.map(Level::name)
}

impl<'a> PeriodView<'a> {
    fn new(period: &'a Period) -> Self {
        PeriodView {
            window: &period.window,
            start: text::time(period.start),
            end: text::time(period.end),
        }
    }
}

impl SummaryMetric {
    fn new(metric: Metric, value: &MetricValue) -> Self {
        SummaryMetric {
            title: metric.title(),
            value: text::value(metric, value.value),
            samples: text::samples(metric, value.samples),
            has_level: metric.has_level(),
            level: level_name(value.level),
            previous: text::value(metric, value.previous),
            comparison: text::comparison(metric, value),
            change: match (value.previous, value.direction) {
                (Some(_), Some(direction)) => Some(Change {
                    change: text::change(metric, value.change),
                    direction: direction.as_str(),
                }),
                _ => None,
            },
        }
    }
}

impl<'a> ScopeRow<'a> {
    fn new(scope: &'a ScopeReport) -> Self {
        ScopeRow {
            name: &scope.name,
            repositories: scope.repositories.unwrap_or(0),
            environment: scope.environment.as_deref().unwrap_or(""),
            team: scope.team.as_deref().unwrap_or(""),
            cells: scope
                .metrics
                .iter()
                .into_iter()
                .map(|(metric, value)| MetricCell {
                    value: text::value(metric, value.value),
                    absent: value.value.is_none(),
                    level: level_name(value.level),
                    direction: value.direction.map(Direction::as_str),
                    mark: text::direction_mark(value.direction),
                    previous: text::value(metric, value.previous),
                })
                .collect(),
            incidents_open: scope.incidents_open,
        }
    }
}

impl WeekRow {
    fn new(week: &TrendWeek) -> Self {
        WeekRow {
            end: text::date(week.end),
            deployments: week.deployments,
            lead_time: text::value(Metric::LeadTime, week.lead_time_median_seconds),
            lead_time_samples: week.lead_time_samples,
        }
    }
}

impl<'a> RisksView<'a> {
    fn new(risks: &'a Risks) -> Self {
        let cfr = &risks.change_failure_rate;
        let stale = &risks.stale_data;
        RisksView {
            regressions: risks
                .regressions
                .items
                .iter()
                .map(RegressionRow::new)
                .collect(),
            regressions_omitted: omitted(&risks.regressions, "regression", "regressions"),
            change_failure_threshold: text::percent(cfr.threshold),
            change_failure: cfr
                .repositories
                .items
                .iter()
                .map(|r| ChangeFailureRow {
                    repository: &r.repository,
                    environment: &r.environment,
                    team: &r.team,
                    rate: text::percent(r.change_failure_rate),
                    failed_deployments: r.failed_deployments,
                    deployments: r.deployments,
                    level: level_name(r.level),
                })
                .collect(),
            change_failure_omitted: omitted(&cfr.repositories, "repository", "repositories"),
            open_incidents: risks
                .open_incidents
                .items
                .iter()
                .map(|incident| IncidentRow {
                    repository: &incident.repository,
                    team: &incident.team,
                    opened_at: text::time(incident.opened_at),
                    age: text::age(incident.age_seconds),
                })
                .collect(),
            open_incidents_omitted: omitted(&risks.open_incidents, "incident", "incidents"),
            stale_max_age: text::age(stale.max_age_seconds),
            stale_reference_time: text::time(stale.reference_time),
            stale: stale
                .repositories
                .items
                .iter()
                .map(|r| StaleRow {
                    repository: &r.repository,
                    team: &r.team,
                    source: r.source.as_deref().unwrap_or("no sync recorded"),
                    last_success_at: r.last_success_at.map_or("never".to_owned(), text::time),
                    age: r.age_seconds.map_or(text::ABSENT.to_owned(), text::age),
                    last_error: r.last_error.as_deref().unwrap_or(""),
                })
                .collect(),
            stale_omitted: omitted(&stale.repositories, "repository", "repositories"),
        }
    }
}

impl<'a> RegressionRow<'a> {
    fn new(r: &'a Regression) -> Self {
        let level_before = match (r.previous_level, r.level) {
            (Some(before), Some(now)) if before != now => Some(before.name()),
            _ => None,
        };
        RegressionRow {
            is_team: r.scope == ScopeKind::Team,
            name: &r.name,
            environment: match r.scope {
                ScopeKind::Repository => r.environment.as_deref(),
                _ => None,
            },
            metric: r.metric.short_title(),
            previous: text::value(r.metric, Some(r.previous)),
            value: text::value(r.metric, Some(r.value)),
            change: text::change(r.metric, Some(r.change)),
            has_level: r.metric.has_level(),
            level_before,
            level: level_name(r.level),
        }
    }
}

impl<'a> MethodView<'a> {
    fn new(report: &'a Report) -> Self {
        let t = &report.thresholds;
        let q = &report.data_quality;
        MethodView {
            definitions: &report.definitions,
            deployment_frequency: t.deployment_frequency_per_day.map(text::frequency),
            lead_time: t.lead_time_seconds.map(text::duration),
            change_failure_rate: t.change_failure_rate.map(text::percent),
            recovery_time: t.recovery_time_seconds.map(text::duration),
            without_base: text::count(
                q.deployments_without_base.len() as u64,
                "repository environment",
                "repository environments",
            ),
            unknown_changes: text::count(
                q.deployments_with_unknown_changes,
                "deployment",
                "deployments",
            ),
            unattributed: text::count(q.unattributed_incidents, "incident", "incidents"),
            unmatched: text::count(q.unmatched_root_causes, "incident", "incidents"),
        }
    }
}
