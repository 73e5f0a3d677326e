//! The engine's output: every metric value for every scope at one evaluation time.
//! Plain data, serializable; renderers read it and never compute.

use super::{Level, Window};
use crate::domain::{Environment, RepoName, Team, Timestamp};
use serde::{Deserialize, Serialize};

/// Upper bounds (seconds) of the `dora_lead_time_seconds` histogram buckets. They
/// include the level thresholds 1h, 1d, 7d and 30d so that levels can be read off
/// the histogram; `+Inf` is implicit.
pub const LEAD_TIME_BUCKETS: [f64; 14] = [
    300.0,       // 5 minutes
    900.0,       // 15 minutes
    1_800.0,     // 30 minutes
    3_600.0,     // 1 hour (recovery elite bound)
    10_800.0,    // 3 hours
    21_600.0,    // 6 hours
    43_200.0,    // 12 hours
    86_400.0,    // 1 day (lead time elite bound)
    172_800.0,   // 2 days
    345_600.0,   // 4 days
    604_800.0,   // 7 days (high bound)
    1_209_600.0, // 14 days
    2_592_000.0, // 30 days (medium bound)
    7_776_000.0, // 90 days
];

/// A cumulative histogram with [`LEAD_TIME_BUCKETS`] bounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Non-cumulative count per bucket; index `LEAD_TIME_BUCKETS.len()` is `+Inf`.
    pub bucket_counts: Vec<u64>,
    /// Number of values observed.
    pub count: u64,
    /// Sum of the values observed (seconds).
    pub sum: f64,
}

impl Histogram {
    /// An empty histogram with every bucket (unlike `Histogram::default()`, whose
    /// `bucket_counts` is empty).
    pub fn new() -> Self {
        Histogram {
            bucket_counts: vec![0; LEAD_TIME_BUCKETS.len() + 1],
            count: 0,
            sum: 0.0,
        }
    }

    /// Counts `value` (seconds) in the first bucket whose upper bound is at least it.
    pub fn observe(&mut self, value: f64) {
        let bucket = LEAD_TIME_BUCKETS.partition_point(|bound| *bound < value);
        self.bucket_counts[bucket] += 1;
        self.count += 1;
        self.sum += value;
    }

    /// `observe` for whole seconds: a branchless count of the bounds below the
    /// value (the engine calls this once per change, millions of times).
    pub fn observe_seconds(&mut self, seconds: i64) {
        const BOUNDS: [i64; LEAD_TIME_BUCKETS.len()] = {
            let mut bounds = [0i64; LEAD_TIME_BUCKETS.len()];
            let mut i = 0;
            while i < bounds.len() {
                bounds[i] = LEAD_TIME_BUCKETS[i] as i64;
                i += 1;
            }
            bounds
        };
        let bucket = BOUNDS
            .iter()
            .map(|bound| usize::from(*bound < seconds))
            .sum::<usize>();
        self.bucket_counts[bucket] += 1;
        self.count += 1;
        self.sum += seconds as f64;
    }

    /// Adds `other`'s counts and sum to this one's (both with every bucket).
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.bucket_counts.iter_mut().zip(&other.bucket_counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// `(upper bound, cumulative count)` pairs as Prometheus exposes them, ending
    /// with `(+Inf, count)`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut running = 0;
        LEAD_TIME_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.bucket_counts)
            .map(|(bound, count)| {
                running += count;
                (bound, running)
            })
            .collect()
    }
}

/// A windowed summary: count and sum of the samples, median and p90 when any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryStats {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples (seconds).
    pub sum: f64,
    /// The median (interpolated, see [`crate::quantile()`]); `None` with no samples.
    pub median: Option<f64>,
    /// The 90th percentile (interpolated); `None` with no samples.
    pub p90: Option<f64>,
}

/// A stage of a change's lead time (`docs/computation.md` § Lead-time stages),
/// from the pull request that introduced the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// First commit → pull request opened.
    Coding,
    /// Opened → first review.
    Pickup,
    /// First review → merge.
    Review,
    /// Merge → the production deployment that shipped the change.
    Deploy,
}

impl Stage {
    /// Every stage, in the order a change goes through them (the index of a
    /// stage's summary in [`WindowedMetrics::lead_time_stages`]).
    pub const ALL: [Stage; STAGES] = [Stage::Coding, Stage::Pickup, Stage::Review, Stage::Deploy];

    /// The `stage` label value.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Coding => "coding",
            Stage::Pickup => "pickup",
            Stage::Review => "review",
            Stage::Deploy => "deploy",
        }
    }

    /// The position of the stage in [`Stage::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How many stages a lead time has.
pub const STAGES: usize = 4;

/// Cumulative values over everything in the store up to `now`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Successful production deployments.
    pub deployments: u64,
    /// Of those, the failed ones (change failures).
    pub failed_deployments: u64,
    /// Attempts that never succeeded.
    pub attempt_failures: u64,
    /// Per-change lead time.
    pub lead_time: Histogram,
}

/// The performance level of each classified metric; `None` where the value is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    /// Of `deployment_frequency_per_day` (always present: no deployments is low).
    pub deployment_frequency: Option<Level>,
    /// Of the median lead time.
    pub lead_time: Option<Level>,
    /// Of the change failure rate.
    pub change_failure_rate: Option<Level>,
    /// Of the median recovery time.
    pub recovery_time: Option<Level>,
}

/// The deployment metrics of one scope over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowedMetrics {
    /// The window `(now - W, now]` these values cover.
    pub window: Window,
    /// Successful production deployments with deploy time in the window.
    pub deployments: u64,
    /// `deployments ÷ window days`; 0 with no deployments.
    pub deployment_frequency_per_day: f64,
    /// Changes deployed in the window.
    pub lead_time: SummaryStats,
    /// Failed deployments among `deployments`.
    pub failed_deployments: u64,
    /// `failed_deployments ÷ deployments`; absent with no deployments.
    pub change_failure_rate: Option<f64>,
    /// Recoveries completed in the window.
    pub recovery_time: SummaryStats,
    /// Rework deployments among `deployments`.
    pub rework_deployments: u64,
    /// `rework_deployments ÷ deployments`; absent with no deployments.
    pub rework_rate: Option<f64>,
    /// The performance levels of the values above.
    pub levels: Levels,
    /// Per [`Stage`] (in [`Stage::ALL`] order): the stage durations of the
    /// changes deployed in the window that came through a pull request. `None`
    /// under `lead_time_start = "commit"`, where the collector does not read
    /// every merged pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time_stages: Option<[SummaryStats; STAGES]>,
}

/// Incident metrics of one scope over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentMetrics {
    /// The window `(now - W, now]` these values cover.
    pub window: Window,
    /// `closed_at − created_at` of the incidents closed in the window.
    pub time_to_restore: SummaryStats,
}

/// One repository in one production environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoEnvMetrics {
    /// The repository.
    pub repository: RepoName,
    /// The configured spelling of the production environment.
    pub environment: Environment,
    /// The repository's team ([`crate::domain::DEFAULT_TEAM`] when none is configured).
    pub team: Team,
    /// Cumulative values up to `now`.
    pub totals: Totals,
    /// One per configured window, in configuration order.
    pub windows: Vec<WindowedMetrics>,
}

/// The incidents of one repository (incidents have no environment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoIncidents {
    /// The repository.
    pub repository: RepoName,
    /// The repository's team ([`crate::domain::DEFAULT_TEAM`] when none is configured).
    pub team: Team,
    /// Incidents open at `now`.
    pub open: u64,
    /// The creation times of the open incidents, oldest first (for "open for N hours").
    pub open_since: Vec<Timestamp>,
    /// One per configured window, in configuration order.
    pub windows: Vec<IncidentMetrics>,
}

/// A rollup (a team, or the whole organisation) from the union of its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupMetrics {
    /// The team, or `None` for the organisation.
    pub team: Option<Team>,
    /// How many repositories it covers.
    pub repositories: u64,
    /// Cumulative values up to `now`, summed over its repositories and environments.
    pub totals: Totals,
    /// One per configured window, in configuration order.
    pub windows: Vec<WindowedMetrics>,
    /// Incidents open at `now` in its repositories.
    pub incidents_open: u64,
    /// Incident metrics, one per configured window, in configuration order.
    pub incident_windows: Vec<IncidentMetrics>,
}

/// Things a person may want to know about the data (logged by the shell, exported
/// as counts): they do not change any metric's definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// `(repository, environment)` pairs whose first known deployment has no base,
    /// so it contributed no lead-time samples.
    pub deployments_without_base: Vec<(RepoName, Environment)>,
    /// Deployments whose change set could not be determined (their sha is unknown to
    /// the commit history and no compare result was given).
    pub deployments_with_unknown_changes: u64,
    /// Incidents that precede every deployment of their repository.
    pub unattributed_incidents: u64,
    /// Incidents whose root cause matched no deployment (attributed by time instead).
    pub unmatched_root_causes: u64,
}

/// Every value at `evaluated_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The evaluation time `now`: events after it are ignored.
    pub evaluated_at: Timestamp,
    /// The configured windows, in configuration order.
    pub windows: Vec<Window>,
    /// Sorted by repository, then environment.
    pub repositories: Vec<RepoEnvMetrics>,
    /// Sorted by repository.
    pub incidents: Vec<RepoIncidents>,
    /// Sorted by team.
    pub teams: Vec<RollupMetrics>,
    /// Every repository together.
    pub organisation: RollupMetrics,
    /// Facts about the data that change no metric.
    pub diagnostics: Diagnostics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_seconds_matches_observe() {
        for seconds in [
            0i64, 1, 299, 300, 301, 3_600, 86_400, 7_776_000, 7_776_001, 50_000_000,
        ] {
            let (mut a, mut b) = (Histogram::new(), Histogram::new());
            a.observe(seconds as f64);
            b.observe_seconds(seconds);
            assert_eq!(a, b, "{seconds}");
        }
    }
}
