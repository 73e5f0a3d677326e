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
    /// Where lead time goes; absent when stages are not measured.
    stages: Option<StagesView>,
    risks: RisksView<'a>,
    method: MethodView<'a>,
}

/// Width (SVG units) of the longest stacked stage bar.
const STAGE_BAR_WIDTH: f64 = 560.0;
/// Where the bars start (room for the scope's name on the left).
const STAGE_BAR_LEFT: f64 = 150.0;
/// Height of one bar and the gap under it.
const STAGE_BAR_HEIGHT: f64 = 18.0;
const STAGE_BAR_GAP: f64 = 8.0;
/// Room for the legend above the bars.
const STAGE_LEGEND_HEIGHT: f64 = 22.0;

/// Where lead time goes: the summary scope and each team, stage medians stacked.
#[derive(Debug, Serialize)]
struct StagesView {
    /// `Coding`, `Pickup`, `Review`, `Deploy`.
    headings: Vec<&'static str>,
    rows: Vec<StageRowView>,
    view_box: String,
    legend: Vec<StageLegend>,
    /// `Median coding, pickup, review and deploy time of each team's changes…`.
    aria_label: String,
}

#[derive(Debug, Serialize)]
struct StageRowView {
    name: String,
    /// `3.2 h (40)` per stage, or [`text::ABSENT`].
    cells: Vec<String>,
    /// The baseline of the name and the top of the bar.
    label_y: f64,
    y: f64,
    height: f64,
    segments: Vec<StageSegment>,
}

#[derive(Debug, Serialize)]
struct StageSegment {
    /// The stage's CSS class (`coding`, …).
    class: &'static str,
    x: f64,
    width: f64,
    /// `review: 2.0 d`.
    title: String,
}

#[derive(Debug, Serialize)]
struct StageLegend {
    class: &'static str,
    title: &'static str,
    x: f64,
    text_x: f64,
}

/// Rounded to a tenth, as the coordinates are printed.
fn tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn stage_title(stage: crate::dora::Stage) -> &'static str {
    match stage {
        crate::dora::Stage::Coding => "Coding",
        crate::dora::Stage::Pickup => "Pickup",
        crate::dora::Stage::Review => "Review",
        crate::dora::Stage::Deploy => "Deploy",
    }
}

impl StagesView {
    fn new(report: &Report) -> Option<Self> {
        let summary_stages = report.summary.lead_time_stages.as_ref()?;
        let mut scopes: Vec<(String, &Vec<StageMedian>)> =
            vec![(scope_title(&report.summary), summary_stages)];
        if report.team.is_none() {
            scopes.extend(
                report.teams.iter().filter_map(|t| {
                    Some((format!("team {}", t.name), t.lead_time_stages.as_ref()?))
                }),
            );
        }
        let total = |stages: &[StageMedian]| -> f64 {
            stages.iter().filter_map(|s| s.median_seconds).sum()
        };
        let longest = scopes
            .iter()
            .map(|(_, stages)| total(stages))
            .fold(0.0, f64::max);
        let scale = if longest > 0.0 {
            STAGE_BAR_WIDTH / longest
        } else {
            0.0
        };
        let rows: Vec<StageRowView> = scopes
            .into_iter()
            .enumerate()
            .map(|(i, (name, stages))| {
                let y = STAGE_LEGEND_HEIGHT + i as f64 * (STAGE_BAR_HEIGHT + STAGE_BAR_GAP);
                let mut x = STAGE_BAR_LEFT;
                let segments = stages
                    .iter()
                    .filter_map(|s| {
                        let median = s.median_seconds?;
                        let width = median * scale;
                        let segment = StageSegment {
                            class: s.stage.label(),
                            x: tenth(x),
                            width: tenth(width),
                            title: format!("{}: {}", s.stage.label(), text::duration(median)),
                        };
                        x += width;
                        Some(segment)
                    })
                    .collect();
                StageRowView {
                    cells: stages
                        .iter()
                        .map(|s| match s.median_seconds {
                            Some(m) => format!("{} ({})", text::duration(m), s.samples),
                            None => text::ABSENT.to_owned(),
                        })
                        .collect(),
                    name,
                    label_y: tenth(y + STAGE_BAR_HEIGHT * 0.75),
                    y: tenth(y),
                    height: STAGE_BAR_HEIGHT,
                    segments,
                }
            })
            .collect();
        let height = STAGE_LEGEND_HEIGHT + rows.len() as f64 * (STAGE_BAR_HEIGHT + STAGE_BAR_GAP);
        let legend = crate::dora::Stage::ALL
            .into_iter()
            .enumerate()
            .map(|(i, stage)| {
                let x = STAGE_BAR_LEFT + i as f64 * 100.0;
                StageLegend {
                    class: stage.label(),
                    title: stage_title(stage),
                    x,
                    text_x: x + 16.0,
                }
            })
            .collect();
        Some(StagesView {
            headings: crate::dora::Stage::ALL.into_iter().map(stage_title).collect(),
            aria_label: "Median coding, pickup, review and deploy time of the changes that came through a pull request, stacked per scope".to_owned(),
            view_box: format!(
                "0 0 {} {}",
                STAGE_BAR_LEFT + STAGE_BAR_WIDTH + 10.0,
                tenth(height)
            ),
            legend,
            rows,
        })
    }
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
    /// `Review is where the organisation's changes wait longest: …`.
    slowest_stage: Option<String>,
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
            stages: StagesView::new(report),
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
            slowest_stage: risks.slowest_stage.as_ref().map(|slowest| {
                let scope = if slowest.name == crate::report::build::ORGANISATION {
                    "the organisation's".to_owned()
                } else {
                    format!("team {}'s", slowest.name)
                };
                format!(
                    "{} is where {scope} changes wait longest: a median of {} over {} changes, {} of the sum of the stage medians.",
                    stage_title(slowest.stage),
                    text::duration(slowest.median_seconds),
                    slowest.samples,
                    text::percent(slowest.share_of_medians),
                )
            }),
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
