//! `docs/computation.md` § Windows and formulas to § Performance levels (windows,
//! formulas, quantiles, rollups, levels) over the per-repository analysis,
//! written out as the series `docs/metrics.md` says `/metrics` exports: names,
//! labels, and which values are absent.
//!
//! Every windowed value is recomputed from the samples of its scope (a repository
//! and environment, a team, the organisation) by filtering them again; rollups take
//! the union of their members' samples. Quantiles sort and interpolate.
//!
//! It does not cover the collector's health families (`dora_collector_*`,
//! `dora_build_info`): they describe the process, not the definitions.

use super::definitions::{DeploymentFacts, IncidentFacts, RepoAnalysis};
use super::params::{Params, WindowParam, DAY};
use super::prom::SeriesKey;
use dora_collector::dora::LeadTimeStart;
use std::collections::BTreeMap;

/// The bucket bounds of the lead-time histograms (`docs/metrics.md`), `+Inf` aside.
pub const LEAD_TIME_BUCKETS: [f64; 14] = [
    300.0, 900.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 345600.0, 604800.0,
    1209600.0, 2592000.0, 7776000.0,
];

/// How a value is compared with what the collector exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// Counts, levels and sums of whole seconds: equal.
    Exact,
    /// Ratios, frequencies and quantiles: equal within a relative 1e-9.
    Relative,
}

/// One expected sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub value: f64,
    pub tolerance: Tolerance,
}

/// Every DORA series `/metrics` should export, and the type of each family.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub series: BTreeMap<SeriesKey, Value>,
    /// Family name → `counter`, `gauge`, `summary` or `histogram`.
    pub families: BTreeMap<String, &'static str>,
}

impl Expected {
    fn put(
        &mut self,
        family: &str,
        kind: &'static str,
        sample: &str,
        labels: &[(&str, &str)],
        value: f64,
        tolerance: Tolerance,
    ) {
        self.families.insert(family.to_owned(), kind);
        let key = canonical_key(SeriesKey::new(sample, labels));
        let previous = self.series.insert(key.clone(), Value { value, tolerance });
        assert!(previous.is_none(), "the reference produced {key} twice");
    }

    fn gauge(&mut self, name: &str, labels: &[(&str, &str)], value: f64, tolerance: Tolerance) {
        self.put(name, "gauge", name, labels, value, tolerance);
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.put(
            name,
            "counter",
            name,
            labels,
            value as f64,
            Tolerance::Exact,
        );
    }

    /// `_count`, `_sum` and, with samples, `quantile="0.5"` and `"0.9"`.
    fn summary(&mut self, name: &str, labels: &[(&str, &str)], samples: &[i64]) {
        let stats = Summary::of(samples);
        let count = format!("{name}_count");
        let sum = format!("{name}_sum");
        self.put(
            name,
            "summary",
            &count,
            labels,
            stats.count as f64,
            Tolerance::Exact,
        );
        self.put(name, "summary", &sum, labels, stats.sum, Tolerance::Exact);
        for (q, value) in [("0.5", stats.median), ("0.9", stats.p90)] {
            if let Some(value) = value {
                let labels = with(labels, &[("quantile", q)]);
                self.put(name, "summary", name, &labels, value, Tolerance::Relative);
            }
        }
    }

    /// Cumulative `_bucket`s (`value ≤ le`), `+Inf`, `_count` and `_sum`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], samples: &[i64]) {
        let bucket = format!("{name}_bucket");
        for bound in LEAD_TIME_BUCKETS {
            let le = bound.to_string();
            let below = samples.iter().filter(|s| **s as f64 <= bound).count();
            let labels = with(labels, &[("le", &le)]);
            self.put(
                name,
                "histogram",
                &bucket,
                &labels,
                below as f64,
                Tolerance::Exact,
            );
        }
        let labels_inf = with(labels, &[("le", "+Inf")]);
        let count = samples.len() as f64;
        self.put(
            name,
            "histogram",
            &bucket,
            &labels_inf,
            count,
            Tolerance::Exact,
        );
        let sum: f64 = samples.iter().map(|s| *s as f64).sum();
        self.put(
            name,
            "histogram",
            &format!("{name}_count"),
            labels,
            count,
            Tolerance::Exact,
        );
        self.put(
            name,
            "histogram",
            &format!("{name}_sum"),
            labels,
            sum,
            Tolerance::Exact,
        );
    }
}

/// `le` and `quantile` values are numbers: written canonically (`300`, `0.5`,
/// `+Inf`) so that `300.0` and `300` name the same bucket.
pub fn canonical_key(mut key: SeriesKey) -> SeriesKey {
    for (name, value) in &mut key.labels {
        if name == "le" || name == "quantile" {
            if let Ok(number) = super::prom::parse_value(value) {
                *value = if number == f64::INFINITY {
                    "+Inf".to_owned()
                } else {
                    number.to_string()
                };
            }
        }
    }
    key
}

fn with<'a>(labels: &[(&'a str, &'a str)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    labels.iter().chain(more).copied().collect()
}

/// Count, sum, median and p90 of some samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub sum: f64,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

impl Summary {
    pub fn of(samples: &[i64]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Summary {
            count: sorted.len(),
            sum: sorted.iter().map(|s| *s as f64).sum(),
            median: quantile(&sorted, 0.5),
            p90: quantile(&sorted, 0.9),
        }
    }
}

/// computation.md § Quantiles: linear interpolation between closest ranks (`percentile_cont`) of sorted
/// values: at position `q × (n − 1)`, between the values on either side.
pub fn quantile(sorted: &[i64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    let (low, high) = (sorted[below] as f64, sorted[above] as f64);
    Some(low + (high - low) * fraction)
}

/// Whether `at` is in the window `(now − W, now]`.
fn in_window(at: i64, window: &WindowParam, now: i64) -> bool {
    at > now - window.seconds && at <= now
}

/// The samples of one scope: deployments of some repository-environments and
/// incidents of some repositories.
struct Pool<'a> {
    deployments: Vec<&'a DeploymentFacts>,
    attempt_failures: u64,
    incidents: Vec<&'a IncidentFacts>,
}

impl<'a> Pool<'a> {
    fn of(repos: &[&'a RepoAnalysis], environment: Option<usize>) -> Pool<'a> {
        let mut pool = Pool {
            deployments: Vec::new(),
            attempt_failures: 0,
            incidents: Vec::new(),
        };
        for repo in repos {
            for (e, env) in repo.environments.iter().enumerate() {
                if environment.is_none_or(|wanted| wanted == e) {
                    pool.deployments.extend(&env.deployments);
                    pool.attempt_failures += env.attempt_failures;
                }
            }
            pool.incidents.extend(&repo.incidents);
        }
        pool
    }

    fn lead_times(&self, window: Option<&WindowParam>, now: i64) -> Vec<i64> {
        self.deployments
            .iter()
            .filter(|d| window.is_none_or(|w| in_window(d.deployed_at, w, now)))
            .flat_map(|d| d.lead_times.iter().copied())
            .collect()
    }

    /// The samples of lead-time stage `stage` (0 coding … 3 deploy) of the
    /// changes deployed in `window`.
    fn stage_times(&self, stage: usize, window: &WindowParam, now: i64) -> Vec<i64> {
        self.deployments
            .iter()
            .filter(|d| in_window(d.deployed_at, window, now))
            .flat_map(|d| d.stages[stage].iter().copied())
            .collect()
    }
}

/// The `stage` label values, in the order of `DeploymentFacts::stages`
/// (computation.md § Lead-time stages).
pub const STAGE_LABELS: [&str; 4] = ["coding", "pickup", "review", "deploy"];

/// The level (4 elite … 1 low) of a value where higher is better, bounds inclusive.
fn level_at_least(value: f64, bounds: [f64; 3]) -> f64 {
    bounds
        .iter()
        .position(|b| value >= *b)
        .map_or(1.0, |i| 4.0 - i as f64)
}

/// The level of a value where lower is better; `inclusive`: the bound itself passes.
fn level_at_most(value: f64, bounds: [f64; 3], inclusive: bool) -> f64 {
    bounds
        .iter()
        .position(|b| if inclusive { value <= *b } else { value < *b })
        .map_or(1.0, |i| 4.0 - i as f64)
}

/// Family names of one scope: `dora_`, `dora_team_` or `dora_org_` prefixed.
struct Names {
    prefix: &'static str,
}

impl Names {
    fn of(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// The cumulative and windowed deployment values of one scope (computation.md
/// § Windows and formulas, § Cumulative values, § Performance levels).
fn deployment_series(
    out: &mut Expected,
    names: &Names,
    labels: &[(&str, &str)],
    pool: &Pool<'_>,
    params: &Params,
    now: i64,
) {
    let deployments = pool.deployments.len() as u64;
    let failed = pool.deployments.iter().filter(|d| d.failed).count() as u64;
    out.counter(&names.of("deployments_total"), labels, deployments);
    out.counter(&names.of("failed_deployments_total"), labels, failed);
    out.counter(
        &names.of("deployment_attempt_failures_total"),
        labels,
        pool.attempt_failures,
    );
    out.histogram(
        &names.of("lead_time_seconds"),
        labels,
        &pool.lead_times(None, now),
    );

    let thresholds = &params.thresholds;
    for window in &params.windows {
        let labels = with(labels, &[("window", window.label.as_str())]);
        let in_it: Vec<&DeploymentFacts> = pool
            .deployments
            .iter()
            .copied()
            .filter(|d| in_window(d.deployed_at, window, now))
            .collect();
        let count = in_it.len();
        let days = window.seconds as f64 / DAY as f64;
        let frequency = count as f64 / days;
        out.gauge(
            &names.of("deployment_frequency_per_day"),
            &labels,
            frequency,
            Tolerance::Relative,
        );

        let lead_times = pool.lead_times(Some(window), now);
        out.summary(&names.of("lead_time_window_seconds"), &labels, &lead_times);
        // computation.md § Lead-time stages: measured under the PR-based starts only.
        if params.lead_time_start != LeadTimeStart::Commit {
            for (stage, label) in STAGE_LABELS.into_iter().enumerate() {
                out.summary(
                    &names.of("lead_time_stage_seconds"),
                    &with(&labels, &[("stage", label)]),
                    &pool.stage_times(stage, window, now),
                );
            }
        }

        let failed = in_it.iter().filter(|d| d.failed).count();
        let change_failure_rate = (count > 0).then(|| failed as f64 / count as f64);
        if let Some(rate) = change_failure_rate {
            out.gauge(
                &names.of("change_failure_rate"),
                &labels,
                rate,
                Tolerance::Relative,
            );
        }

        // Recovery: the failed deployments whose recovery completed in the window;
        // one before its deployment gives no sample (computation.md § Recovery).
        let recoveries: Vec<i64> = pool
            .deployments
            .iter()
            .filter(|d| d.failed)
            .filter_map(|d| d.recovered_at.map(|r| (r, d.deployed_at)))
            .filter(|(r, at)| in_window(*r, window, now) && r >= at)
            .map(|(r, at)| r - at)
            .collect();
        out.summary(
            &names.of("failed_deployment_recovery_time_seconds"),
            &labels,
            &recoveries,
        );

        let rework = in_it.iter().filter(|d| d.rework.any()).count();
        if count > 0 {
            out.gauge(
                &names.of("deployment_rework_rate"),
                &labels,
                rework as f64 / count as f64,
                Tolerance::Relative,
            );
        }

        // computation.md § Performance levels: no level where the value is absent.
        let lead_median = Summary::of(&lead_times).median;
        let recovery_median = Summary::of(&recoveries).median;
        let levels = [
            (
                "deployment_frequency",
                Some(level_at_least(
                    frequency,
                    thresholds.deployment_frequency_per_day,
                )),
            ),
            (
                "lead_time",
                lead_median.map(|m| level_at_most(m, thresholds.lead_time_seconds, false)),
            ),
            (
                "change_failure_rate",
                change_failure_rate.map(|r| level_at_most(r, thresholds.change_failure_rate, true)),
            ),
            (
                "recovery_time",
                recovery_median.map(|m| level_at_most(m, thresholds.recovery_time_seconds, false)),
            ),
        ];
        for (metric, level) in levels {
            if let Some(level) = level {
                let labels = with(&labels, &[("metric", metric)]);
                out.gauge(
                    &names.of("performance_level"),
                    &labels,
                    level,
                    Tolerance::Exact,
                );
            }
        }
    }
}

/// Time to restore and open incidents of one scope.
fn incident_series(
    out: &mut Expected,
    names: &Names,
    labels: &[(&str, &str)],
    pool: &Pool<'_>,
    params: &Params,
    now: i64,
) {
    let open = pool
        .incidents
        .iter()
        .filter(|i| i.closed_at.is_none())
        .count();
    out.gauge(
        &names.of("incidents_open"),
        labels,
        open as f64,
        Tolerance::Exact,
    );
    for window in &params.windows {
        let labels = with(labels, &[("window", window.label.as_str())]);
        // Closed in the window, attributed or not; closed before created: dropped
        // (computation.md § Time to restore service).
        let restores: Vec<i64> = pool
            .incidents
            .iter()
            .filter_map(|i| i.closed_at.map(|c| (c, i.created_at)))
            .filter(|(closed, created)| in_window(*closed, window, now) && closed >= created)
            .map(|(closed, created)| closed - created)
            .collect();
        out.summary(&names.of("time_to_restore_seconds"), &labels, &restores);
    }
}

/// Every expected DORA series for the analysed repositories at `now`.
pub fn expected_series(repos: &[RepoAnalysis], params: &Params, now: i64) -> Expected {
    let mut out = Expected::default();
    let repository = Names { prefix: "dora_" };
    for repo in repos {
        for (e, environment) in repo.environments.iter().map(|env| &env.name).enumerate() {
            let labels = [
                ("repository", repo.name.as_str()),
                ("environment", environment.as_str()),
                ("team", repo.team.as_str()),
            ];
            let pool = Pool::of(&[repo], Some(e));
            deployment_series(&mut out, &repository, &labels, &pool, params, now);
        }
        let labels = [
            ("repository", repo.name.as_str()),
            ("team", repo.team.as_str()),
        ];
        let pool = Pool::of(&[repo], None);
        incident_series(&mut out, &repository, &labels, &pool, params, now);
        let oldest_open = pool
            .incidents
            .iter()
            .filter(|i| i.closed_at.is_none())
            .map(|i| i.created_at)
            .min();
        if let Some(oldest) = oldest_open {
            out.gauge(
                "dora_incident_oldest_open_timestamp_seconds",
                &labels,
                oldest as f64,
                Tolerance::Exact,
            );
        }
    }

    let mut teams: BTreeMap<&str, Vec<&RepoAnalysis>> = BTreeMap::new();
    for repo in repos {
        teams.entry(repo.team.as_str()).or_default().push(repo);
    }
    let team_names = Names {
        prefix: "dora_team_",
    };
    for (team, members) in &teams {
        let labels = [("team", *team)];
        let pool = Pool::of(members, None);
        out.gauge(
            "dora_team_repositories",
            &labels,
            members.len() as f64,
            Tolerance::Exact,
        );
        deployment_series(&mut out, &team_names, &labels, &pool, params, now);
        incident_series(&mut out, &team_names, &labels, &pool, params, now);
    }

    let everyone: Vec<&RepoAnalysis> = repos.iter().collect();
    let pool = Pool::of(&everyone, None);
    let org = Names {
        prefix: "dora_org_",
    };
    out.gauge(
        "dora_org_repositories",
        &[],
        repos.len() as f64,
        Tolerance::Exact,
    );
    deployment_series(&mut out, &org, &[], &pool, params, now);
    incident_series(&mut out, &org, &[], &pool, params, now);

    diagnostics(&mut out, repos);
    out
}

/// The data-quality gauges of `docs/metrics.md`.
fn diagnostics(out: &mut Expected, repos: &[RepoAnalysis]) {
    let mut unknown_changes = 0usize;
    let mut unattributed = 0usize;
    let mut unmatched = 0usize;
    for repo in repos {
        for env in &repo.environments {
            let environment = &env.name;
            if env.deployments.first().is_some_and(|d| d.without_base) {
                out.gauge(
                    "dora_diagnostics_first_deployment_without_base",
                    &[
                        ("repository", repo.name.as_str()),
                        ("environment", environment.as_str()),
                    ],
                    1.0,
                    Tolerance::Exact,
                );
            }
            unknown_changes += env.deployments.iter().filter(|d| d.unknown_changes).count();
        }
        unattributed += repo
            .incidents
            .iter()
            .filter(|i| i.attribution == super::definitions::Attribution::Nothing)
            .count();
        unmatched += repo
            .incidents
            .iter()
            .filter(|i| i.unmatched_root_cause)
            .count();
    }
    out.gauge(
        "dora_diagnostics_deployments_with_unknown_changes",
        &[],
        unknown_changes as f64,
        Tolerance::Exact,
    );
    out.gauge(
        "dora_diagnostics_unattributed_incidents",
        &[],
        unattributed as f64,
        Tolerance::Exact,
    );
    out.gauge(
        "dora_diagnostics_unmatched_root_causes",
        &[],
        unmatched as f64,
        Tolerance::Exact,
    );
}
