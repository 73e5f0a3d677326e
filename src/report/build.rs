//! [`Report::build`]: from the engine's snapshots (see `evaluate`) and the stores'
//! sync status to the [`Report`] value. It picks values out of the snapshots, pairs
//! each with the previous period's, and ranks the risks by the documented rules
//! below; it never computes a metric (every value, level and sample count is the
//! engine's).
//!
//! Risk rules (`docs/report.md` explains them to readers):
//! - **Regression**: a metric of a team or repository whose change is worse, with
//!   at least [`MIN_REGRESSION_SAMPLES`] samples in both periods (for deployment
//!   frequency: in the previous one), and that either lost a DORA level or moved by
//!   at least [`REGRESSION_RELATIVE_CHANGE`] (durations, frequency) or
//!   [`REGRESSION_RATE_POINTS`] (rates). Sorted by levels lost, then relative
//!   change, largest first; the first [`MAX_LISTED_REGRESSIONS`] are listed.
//! - **Change failure rate**: a repository whose rate is above the `high` bound of
//!   the thresholds (so its level is medium or low), highest first.
//! - **Open incidents**: open at the end of the period, oldest first.
//! - **Stale data**: a configured repository whose least recent successful sync
//!   (over its sources) is older than [`STALE_AFTER_POLL_INTERVALS`] poll intervals
//!   at the earlier of the period end and the report time, or that never synced.

use super::evaluate::Evaluation;
use super::model::*;
use crate::domain::{RepoName, Team, Timestamp};
use crate::dora::{
    Level, RepoEnvMetrics, RepoIncidents, RollupMetrics, Snapshot, Stage, SummaryStats, Thresholds,
    WindowedMetrics,
};
use crate::store::SyncStatus;
use std::collections::{BTreeMap, HashMap};

/// Data is stale after this many poll intervals without a successful sync: one
/// missed poll is routine (a slow sync, a restart), three in a row is an outage.
/// The same rule as the alert suggested in `docs/metrics.md`.
pub(crate) const STALE_AFTER_POLL_INTERVALS: i64 = 3;

/// Fewest samples in each period for a change to count as a regression: below it,
/// one odd deployment or incident swings a median or a rate.
pub(crate) const MIN_REGRESSION_SAMPLES: u64 = 3;

/// Smallest relative worsening of a duration or of deployment frequency that is a
/// regression without a lost level, `|change ÷ previous| ≥ 0.5`: a median half as
/// long again, or half the deployments. Smaller moves are ordinary week-to-week noise.
pub(crate) const REGRESSION_RELATIVE_CHANGE: f64 = 0.5;

/// Smallest rise of a rate (change failure, rework) that is a regression without a
/// lost level: 5 percentage points, the width of one DORA band.
pub(crate) const REGRESSION_RATE_POINTS: f64 = 0.05;

/// Regressions listed: a meeting reads the top of the list.
pub(crate) const MAX_LISTED_REGRESSIONS: usize = 10;

/// Entries listed in each of the other risk lists (the totals are always given).
pub(crate) const MAX_LISTED_RISKS: usize = 20;

/// The name of the organisation scope.
pub(crate) const ORGANISATION: &str = "organisation";

/// Everything besides the snapshots that a report shows.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    /// When the report is made.
    pub generated_at: Timestamp,
    /// The team the report is limited to.
    pub team: Option<&'a Team>,
    pub thresholds: &'a Thresholds,
    /// `github.poll_interval`, for the stale-data rule.
    pub poll_interval_seconds: i64,
    /// The configured repositories in the report and their teams.
    pub repositories: &'a BTreeMap<RepoName, Team>,
    /// The store's sync status (any repositories; others are ignored).
    pub sync_status: &'a [SyncStatus],
}

/// One scope's values in one snapshot.
#[derive(Clone, Copy, Default)]
struct Side<'a> {
    windowed: Option<&'a WindowedMetrics>,
    restore: Option<&'a SummaryStats>,
    incidents_open: u64,
}

impl Report {
    /// Builds the report from `evaluation` (see `evaluate`).
    pub fn build(evaluation: &Evaluation, context: &ReportContext<'_>) -> Report {
        let window = &evaluation.window;
        let current = &evaluation.current;
        let previous = &evaluation.previous;
        let at = |snapshot: &Snapshot| {
            snapshot
                .windows
                .iter()
                .position(|w| w.seconds == window.seconds)
        };
        let (now_index, before_index) = (at(current), at(previous));

        let previous_teams = team_rollups(previous);
        let teams: Vec<ScopeReport> = current
            .teams
            .iter()
            .filter_map(|rollup| {
                let name = rollup.team.as_ref()?.as_str();
                let before = previous_teams
                    .get(name)
                    .copied()
                    .map(|r| rollup_side(r, before_index))
                    .unwrap_or_default();
                Some(scope_report(
                    ScopeKind::Team,
                    name.to_owned(),
                    Some(name.to_owned()),
                    None,
                    Some(rollup.repositories),
                    rollup_side(rollup, now_index),
                    before,
                ))
            })
            .collect();

        let summary = match context.team {
            Some(team) => teams
                .iter()
                .find(|t| t.name == team.as_str())
                .cloned()
                .unwrap_or_else(|| organisation_report(current, previous, now_index, before_index)),
            None => organisation_report(current, previous, now_index, before_index),
        };

        let repositories = repository_reports(current, previous, now_index, before_index);

        let until = evaluation.until;
        let risks = Risks {
            regressions: regressions(&teams, &repositories),
            change_failure_rate: change_failure_risk(&repositories, context.thresholds),
            open_incidents: open_incidents(&current.incidents, context.repositories, until),
            stale_data: stale_data(context, until),
            slowest_stage: slowest_stage(&summary),
        };

        let week = evaluation.week_window();
        let trend = evaluation
            .trend
            .iter()
            .map(|point| {
                let values = context
                    .team
                    .and_then(|team| point.teams.get(team))
                    .unwrap_or(&point.organisation);
                TrendWeek {
                    start: week.start(point.end),
                    end: point.end,
                    deployments: values.deployments,
                    lead_time_median_seconds: values.lead_time.median,
                    lead_time_samples: values.lead_time.count,
                }
            })
            .collect();

        let diagnostics = &current.diagnostics;
        let data_quality = DataQuality {
            deployments_without_base: diagnostics
                .deployments_without_base
                .iter()
                .map(|(repository, environment)| RepositoryEnvironment {
                    repository: repository.to_string(),
                    environment: environment.to_string(),
                })
                .collect(),
            deployments_with_unknown_changes: diagnostics.deployments_with_unknown_changes,
            unattributed_incidents: diagnostics.unattributed_incidents,
            unmatched_root_causes: diagnostics.unmatched_root_causes,
        };

        Report {
            schema_version: SCHEMA_VERSION,
            generated_at: context.generated_at,
            period: period(window.label.clone(), window.seconds, until),
            previous_period: period(window.label.clone(), window.seconds, previous.evaluated_at),
            team: context.team.map(|t| t.as_str().to_owned()),
            thresholds: context.thresholds.clone(),
            summary,
            teams,
            repositories,
            risks,
            trend,
            data_quality,
            definitions: DEFINITIONS.to_owned(),
        }
    }
}

fn period(window: String, seconds: i64, end: Timestamp) -> Period {
    Period {
        window,
        window_seconds: seconds,
        start: Timestamp(end.0.saturating_sub(seconds)),
        end,
    }
}

fn rollup_side(rollup: &RollupMetrics, index: Option<usize>) -> Side<'_> {
    Side {
        windowed: index.and_then(|i| rollup.windows.get(i)),
        restore: index
            .and_then(|i| rollup.incident_windows.get(i))
            .map(|w| &w.time_to_restore),
        incidents_open: rollup.incidents_open,
    }
}

fn team_rollups(snapshot: &Snapshot) -> BTreeMap<&str, &RollupMetrics> {
    snapshot
        .teams
        .iter()
        .filter_map(|t| Some((t.team.as_ref()?.as_str(), t)))
        .collect()
}

fn repo_side<'a>(
    snapshot: &'a Snapshot,
    index: Option<usize>,
    by_name: &HashMap<RepoName, usize>,
    repo: &'a RepoEnvMetrics,
) -> Side<'a> {
    let incidents: Option<&RepoIncidents> = by_name
        .get(&repo.repository)
        .map(|i| &snapshot.incidents[*i]);
    Side {
        windowed: index.and_then(|i| repo.windows.get(i)),
        restore: index
            .and_then(|i| incidents?.windows.get(i))
            .map(|w| &w.time_to_restore),
        incidents_open: incidents.map_or(0, |r| r.open),
    }
}

fn organisation_report(
    current: &Snapshot,
    previous: &Snapshot,
    now_index: Option<usize>,
    before_index: Option<usize>,
) -> ScopeReport {
    let side = rollup_side;
    scope_report(
        ScopeKind::Organisation,
        ORGANISATION.to_owned(),
        None,
        None,
        Some(current.organisation.repositories),
        side(&current.organisation, now_index),
        side(&previous.organisation, before_index),
    )
}

fn repository_reports(
    current: &Snapshot,
    previous: &Snapshot,
    now_index: Option<usize>,
    before_index: Option<usize>,
) -> Vec<ScopeReport> {
    let incidents = |snapshot: &Snapshot| -> HashMap<RepoName, usize> {
        snapshot
            .incidents
            .iter()
            .enumerate()
            .map(|(i, r)| (r.repository.clone(), i))
            .collect()
    };
    let (now_incidents, before_incidents) = (incidents(current), incidents(previous));
    let before: HashMap<(&RepoName, &str), &RepoEnvMetrics> = previous
        .repositories
        .iter()
        .map(|r| ((&r.repository, r.environment.as_str()), r))
        .collect();
    current
        .repositories
        .iter()
        .map(|repo| {
            let previous_side = before
                .get(&(&repo.repository, repo.environment.as_str()))
                .map(|r| repo_side(previous, before_index, &before_incidents, r))
                .unwrap_or_default();
            scope_report(
                ScopeKind::Repository,
                repo.repository.to_string(),
                Some(repo.team.to_string()),
                Some(repo.environment.to_string()),
                None,
                repo_side(current, now_index, &now_incidents, repo),
                previous_side,
            )
        })
        .collect()
}

fn scope_report(
    scope: ScopeKind,
    name: String,
    team: Option<String>,
    environment: Option<String>,
    repositories: Option<u64>,
    now: Side<'_>,
    before: Side<'_>,
) -> ScopeReport {
    let w = now.windowed;
    ScopeReport {
        scope,
        name,
        team,
        environment,
        repositories,
        deployments: w.map_or(0, |w| w.deployments),
        failed_deployments: w.map_or(0, |w| w.failed_deployments),
        rework_deployments: w.map_or(0, |w| w.rework_deployments),
        incidents_open: now.incidents_open,
        metrics: Metrics {
            deployment_frequency: metric_value(Metric::DeploymentFrequency, now, before),
            lead_time: metric_value(Metric::LeadTime, now, before),
            change_failure_rate: metric_value(Metric::ChangeFailureRate, now, before),
            recovery_time: metric_value(Metric::RecoveryTime, now, before),
            time_to_restore: metric_value(Metric::TimeToRestore, now, before),
            rework_rate: metric_value(Metric::ReworkRate, now, before),
        },
        lead_time_stages: w.and_then(|w| w.lead_time_stages.as_ref()).map(|stages| {
            Stage::ALL
                .into_iter()
                .zip(stages)
                .map(|(stage, stats)| StageMedian {
                    stage,
                    median_seconds: stats.median,
                    samples: stats.count,
                })
                .collect()
        }),
    }
}

/// The stage of `summary` with the largest median (the first of equal ones).
fn slowest_stage(summary: &ScopeReport) -> Option<SlowestStage> {
    let stages = summary.lead_time_stages.as_ref()?;
    let total: f64 = stages.iter().filter_map(|s| s.median_seconds).sum();
    let slowest = stages
        .iter()
        .filter_map(|s| Some((s, s.median_seconds?)))
        .fold(
            None,
            |best: Option<(&StageMedian, f64)>, (s, median)| match best {
                Some((_, top)) if top >= median => best,
                _ => Some((s, median)),
            },
        )?;
    let (stage, median) = slowest;
    Some(SlowestStage {
        name: summary.name.clone(),
        stage: stage.stage,
        median_seconds: median,
        samples: stage.samples,
        share_of_medians: if total > 0.0 { median / total } else { 0.0 },
    })
}

/// The engine's value, level and sample count of `metric` on one side.
fn pick(metric: Metric, side: Side<'_>) -> (Option<f64>, Option<Level>, u64) {
    if metric == Metric::TimeToRestore {
        return side
            .restore
            .map_or((None, None, 0), |s| (s.median, None, s.count));
    }
    let Some(w) = side.windowed else {
        return (None, None, 0);
    };
    match metric {
        Metric::DeploymentFrequency => (
            Some(w.deployment_frequency_per_day),
            w.levels.deployment_frequency,
            w.deployments,
        ),
        Metric::LeadTime => (w.lead_time.median, w.levels.lead_time, w.lead_time.count),
        Metric::ChangeFailureRate => (
            w.change_failure_rate,
            w.levels.change_failure_rate,
            w.deployments,
        ),
        Metric::RecoveryTime => (
            w.recovery_time.median,
            w.levels.recovery_time,
            w.recovery_time.count,
        ),
        Metric::ReworkRate => (w.rework_rate, None, w.deployments),
        Metric::TimeToRestore => unreachable!("handled above"),
    }
}

fn metric_value(metric: Metric, now: Side<'_>, before: Side<'_>) -> MetricValue {
    let (value, level, samples) = pick(metric, now);
    let (previous, previous_level, previous_samples) = pick(metric, before);
    let change = value.zip(previous).map(|(v, p)| v - p);
    let direction = change.map(|c| {
        if c == 0.0 {
            Direction::Unchanged
        } else if (c > 0.0) == metric.higher_is_better() {
            Direction::Better
        } else {
            Direction::Worse
        }
    });
    MetricValue {
        value,
        level,
        samples,
        previous,
        previous_level,
        previous_samples,
        change,
        direction,
    }
}

/// Whether `value` is a regression by the module's rule; `(levels lost, relative
/// change)` when it is.
fn regression_of(metric: Metric, value: &MetricValue) -> Option<(u8, Option<f64>)> {
    if value.direction != Some(Direction::Worse) {
        return None;
    }
    let (now, before) = (value.value?, value.previous?);
    let enough = match metric {
        // Stopping deploying altogether is a regression: the current count may be 0.
        Metric::DeploymentFrequency => value.previous_samples >= MIN_REGRESSION_SAMPLES,
        _ => {
            value.samples >= MIN_REGRESSION_SAMPLES
                && value.previous_samples >= MIN_REGRESSION_SAMPLES
        }
    };
    if !enough {
        return None;
    }
    let levels_lost = match (value.previous_level, value.level) {
        (Some(p), Some(n)) if n < p => p.value() - n.value(),
        _ => 0,
    };
    let relative = (before != 0.0).then(|| (now - before) / before.abs());
    let large = match metric.unit() {
        Unit::Ratio => now - before >= REGRESSION_RATE_POINTS,
        Unit::PerDay | Unit::Seconds => {
            relative.is_some_and(|r| r.abs() >= REGRESSION_RELATIVE_CHANGE)
        }
    };
    (levels_lost > 0 || large).then_some((levels_lost, relative))
}

fn regressions(teams: &[ScopeReport], repositories: &[ScopeReport]) -> Listed<Regression> {
    let mut found: Vec<Regression> = Vec::new();
    for scope in teams.iter().chain(repositories) {
        for (metric, value) in scope.metrics.iter() {
            let Some((levels_lost, relative_change)) = regression_of(metric, value) else {
                continue;
            };
            let (Some(now), Some(before), Some(change)) =
                (value.value, value.previous, value.change)
            else {
                continue;
            };
            found.push(Regression {
                scope: scope.scope,
                name: scope.name.clone(),
                team: scope.team.clone(),
                environment: scope.environment.clone(),
                metric,
                previous: before,
                value: now,
                change,
                relative_change,
                previous_level: value.previous_level,
                level: value.level,
                levels_lost,
            });
        }
    }
    // A rise from 0 (no relative change) sorts as the largest.
    let size = |r: &Regression| r.relative_change.map_or(f64::INFINITY, f64::abs);
    found.sort_by(|a, b| {
        b.levels_lost
            .cmp(&a.levels_lost)
            .then_with(|| size(b).total_cmp(&size(a)))
            .then_with(|| a.scope.cmp(&b.scope))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.environment.cmp(&b.environment))
            .then_with(|| a.metric.cmp(&b.metric))
    });
    Listed::cut(found, MAX_LISTED_REGRESSIONS)
}

fn change_failure_risk(repositories: &[ScopeReport], thresholds: &Thresholds) -> ChangeFailureRisk {
    let threshold = thresholds.change_failure_rate[1];
    let mut above: Vec<ChangeFailureRepository> = repositories
        .iter()
        .filter_map(|repo| {
            let metric = &repo.metrics.change_failure_rate;
            let rate = metric.value.filter(|rate| *rate > threshold)?;
            Some(ChangeFailureRepository {
                repository: repo.name.clone(),
                environment: repo.environment.clone().unwrap_or_default(),
                team: repo.team.clone().unwrap_or_default(),
                change_failure_rate: rate,
                failed_deployments: repo.failed_deployments,
                deployments: repo.deployments,
                level: metric.level,
            })
        })
        .collect();
    above.sort_by(|a, b| {
        b.change_failure_rate
            .total_cmp(&a.change_failure_rate)
            .then(b.failed_deployments.cmp(&a.failed_deployments))
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.environment.cmp(&b.environment))
    });
    ChangeFailureRisk {
        threshold,
        repositories: Listed::cut(above, MAX_LISTED_RISKS),
    }
}

fn open_incidents(
    incidents: &[RepoIncidents],
    configured: &BTreeMap<RepoName, Team>,
    until: Timestamp,
) -> Listed<OpenIncident> {
    let mut open: Vec<OpenIncident> = incidents
        .iter()
        .filter(|r| configured.contains_key(&r.repository))
        .flat_map(|r| {
            r.open_since.iter().map(|opened_at| OpenIncident {
                repository: r.repository.to_string(),
                team: r.team.to_string(),
                opened_at: *opened_at,
                age_seconds: until.0 - opened_at.0,
            })
        })
        .collect();
    open.sort_by(|a, b| {
        a.opened_at
            .cmp(&b.opened_at)
            .then_with(|| a.repository.cmp(&b.repository))
    });
    Listed::cut(open, MAX_LISTED_RISKS)
}

fn stale_data(context: &ReportContext<'_>, until: Timestamp) -> StaleData {
    let reference_time = until.min(context.generated_at);
    let max_age_seconds = context
        .poll_interval_seconds
        .saturating_mul(STALE_AFTER_POLL_INTERVALS);
    let mut by_repo: BTreeMap<&RepoName, Vec<&SyncStatus>> = BTreeMap::new();
    for status in context.sync_status {
        by_repo.entry(&status.repository).or_default().push(status);
    }
    let mut stale: Vec<StaleRepository> = context
        .repositories
        .iter()
        .filter_map(|(repository, team)| {
            let statuses = by_repo.get(repository).map(Vec::as_slice).unwrap_or(&[]);
            // The source furthest behind: never succeeded first, then the oldest.
            let furthest = statuses
                .iter()
                .min_by_key(|s| (s.last_success_at.is_some(), s.last_success_at, &s.source));
            let entry = |status: Option<&SyncStatus>| StaleRepository {
                repository: repository.to_string(),
                team: team.to_string(),
                source: status.map(|s| s.source.clone()),
                last_success_at: status.and_then(|s| s.last_success_at),
                age_seconds: status
                    .and_then(|s| s.last_success_at)
                    .map(|at| reference_time.0 - at.0),
                last_error: status.and_then(|s| s.last_error.clone()),
            };
            match furthest {
                None => Some(entry(None)),
                Some(status) => match status.last_success_at {
                    Some(at) if reference_time.0 - at.0 <= max_age_seconds => None,
                    _ => Some(entry(Some(status))),
                },
            }
        })
        .collect();
    // Never synced first, then the oldest sync.
    stale.sort_by(|a, b| {
        (a.last_success_at.is_some(), a.last_success_at)
            .cmp(&(b.last_success_at.is_some(), b.last_success_at))
            .then_with(|| a.repository.cmp(&b.repository))
    });
    StaleData {
        max_age_seconds,
        reference_time,
        repositories: Listed::cut(stale, MAX_LISTED_RISKS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(value, level, samples)` of one side.
    type Pair = (f64, Option<Level>, u64);

    fn value(metric: Metric, now: Pair, before: Pair) -> MetricValue {
        let change = now.0 - before.0;
        MetricValue {
            value: Some(now.0),
            level: now.1,
            samples: now.2,
            previous: Some(before.0),
            previous_level: before.1,
            previous_samples: before.2,
            change: Some(change),
            direction: Some(if change == 0.0 {
                Direction::Unchanged
            } else if (change > 0.0) == metric.higher_is_better() {
                Direction::Better
            } else {
                Direction::Worse
            }),
        }
    }

    #[test]
    fn regression_rules() {
        use Level::*;
        let h = 3_600.0;
        let cases: &[(Metric, Pair, Pair, Option<u8>)] = &[
            // A lost level is always a regression.
            (
                Metric::LeadTime,
                (25.0 * h, Some(High), 5),
                (20.0 * h, Some(Elite), 5),
                Some(1),
            ),
            // A large relative worsening without a lost level.
            (
                Metric::LeadTime,
                (3.0 * h, Some(Elite), 5),
                (1.0 * h, Some(Elite), 5),
                Some(0),
            ),
            // A small one is not.
            (
                Metric::LeadTime,
                (1.2 * h, Some(Elite), 5),
                (1.0 * h, Some(Elite), 5),
                None,
            ),
            // Better is never a regression.
            (
                Metric::LeadTime,
                (1.0 * h, Some(Elite), 5),
                (9.0 * h, Some(Elite), 5),
                None,
            ),
            // Too few samples.
            (
                Metric::LeadTime,
                (90.0 * h, Some(High), 2),
                (1.0 * h, Some(Elite), 5),
                None,
            ),
            // Stopping deploying is a regression even with no deployments now.
            (
                Metric::DeploymentFrequency,
                (0.0, Some(Low), 0),
                (1.0, Some(Elite), 30),
                Some(3),
            ),
            (
                Metric::DeploymentFrequency,
                (0.5, Some(High), 15),
                (0.6, Some(High), 18),
                None,
            ),
            // Rates count in points.
            (
                Metric::ReworkRate,
                (0.30, None, 10),
                (0.20, None, 10),
                Some(0),
            ),
            (Metric::ReworkRate, (0.23, None, 10), (0.20, None, 10), None),
            (
                Metric::ChangeFailureRate,
                (0.2, Some(Low), 10),
                (0.0, Some(Elite), 10),
                Some(3),
            ),
        ];
        for (metric, now, before, expected) in cases {
            let got = regression_of(*metric, &value(*metric, *now, *before)).map(|(l, _)| l);
            assert_eq!(got, *expected, "{metric:?} {now:?} {before:?}");
        }
    }

    #[test]
    fn absent_values_have_no_change() {
        let value = metric_value(Metric::LeadTime, Side::default(), Side::default());
        assert_eq!(value.value, None);
        assert_eq!(value.change, None);
        assert_eq!(value.direction, None);
    }
}
