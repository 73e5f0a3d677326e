//! The [`Report`] value: everything one report shows, as plain data. Its serde form
//! *is* the JSON format (`docs/report.md` documents every field; [`SCHEMA_VERSION`]
//! changes when a field changes meaning or disappears).
//!
//! Nothing here computes: `build` fills it from the engine's snapshots, and the
//! renderers only read it. Times are serialized as RFC 3339 strings, durations as
//! seconds, rates as fractions 0–1, and an absent value (no samples) as `null`.

use crate::domain::Timestamp;
use crate::dora::{Level, Stage, Thresholds};
use serde::{Deserialize, Serialize};

/// The version of the JSON schema. Adding a field keeps it; renaming, removing or
/// changing the meaning of one increments it.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Where the definitions behind every number are explained (shown in every format).
pub(crate) const DEFINITIONS: &str = "docs/computation.md";

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the report was made (the wall clock; not part of any metric).
    #[serde(with = "rfc3339")]
    pub generated_at: Timestamp,
    /// The reported period `(start, end]`.
    pub period: Period,
    /// The period of equal length just before it, for the changes.
    pub previous_period: Period,
    /// The team the report is limited to (`--team`), if any.
    pub team: Option<String>,
    /// The level boundaries in force (`[metrics.thresholds]`).
    pub thresholds: Thresholds,
    /// The organisation, or the team when the report is limited to one.
    pub summary: ScopeReport,
    /// One per team, sorted by name.
    pub teams: Vec<ScopeReport>,
    /// One per repository and production environment, sorted.
    pub repositories: Vec<ScopeReport>,
    pub risks: Risks,
    /// Weekly deployments and median lead time, oldest week first.
    pub trend: Vec<TrendWeek>,
    pub data_quality: DataQuality,
    /// Where the definitions are: [`DEFINITIONS`].
    pub definitions: String,
}

/// A window `(start, end]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// The window as written (`30d`).
    pub window: String,
    pub window_seconds: i64,
    /// Exclusive start: `end − window`.
    #[serde(with = "rfc3339")]
    pub start: Timestamp,
    /// Inclusive end.
    #[serde(with = "rfc3339")]
    pub end: Timestamp,
}

/// What a row of the report describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Organisation,
    Team,
    Repository,
}

impl ScopeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Organisation => "organisation",
            ScopeKind::Team => "team",
            ScopeKind::Repository => "repository",
        }
    }
}

/// The metrics of one scope in the period, with the previous period's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeReport {
    pub scope: ScopeKind,
    /// `organisation`, the team, or the repository (`owner/name`).
    pub name: String,
    /// A repository's team; a team's own name; `null` for the organisation.
    pub team: Option<String>,
    /// A repository's production environment; `null` for rollups.
    pub environment: Option<String>,
    /// Repositories a rollup covers; `null` for a repository.
    pub repositories: Option<u64>,
    /// Successful production deployments in the period.
    pub deployments: u64,
    /// Of those, the failed ones (change failures).
    pub failed_deployments: u64,
    /// Of those, the rework ones.
    pub rework_deployments: u64,
    /// Incidents open at the end of the period (a repository's incidents have no
    /// environment: every environment row of a repository shows the same count).
    pub incidents_open: u64,
    pub metrics: Metrics,
    /// Where lead time goes (`docs/computation.md` § Lead-time stages): the
    /// median of each stage in the period, coding, pickup, review, deploy.
    /// Absent under `lead_time_start = "commit"`, where stages are not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time_stages: Option<Vec<StageMedian>>,
}

/// One lead-time stage of a scope in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageMedian {
    pub stage: Stage,
    /// `null` without samples.
    pub median_seconds: Option<f64>,
    /// Changes with this stage (through a pull request; pickup and review: reviewed).
    pub samples: u64,
}

/// The stage where the summary scope's changes wait longest (largest median).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowestStage {
    /// The summary scope: `organisation` or the team.
    pub name: String,
    pub stage: Stage,
    pub median_seconds: f64,
    pub samples: u64,
    /// Its share of the sum of the stage medians, 0–1.
    pub share_of_medians: f64,
}

/// The six metrics of a scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Deployments per day.
    pub deployment_frequency: MetricValue,
    /// Median lead time for changes, seconds.
    pub lead_time: MetricValue,
    /// Failed ÷ successful deployments.
    pub change_failure_rate: MetricValue,
    /// Median failed deployment recovery time, seconds.
    pub recovery_time: MetricValue,
    /// Median time to restore service, seconds.
    pub time_to_restore: MetricValue,
    /// Rework ÷ successful deployments.
    pub rework_rate: MetricValue,
}

impl Metrics {
    /// The metrics in report order.
    pub fn iter(&self) -> [(Metric, &MetricValue); 6] {
        [
            (Metric::DeploymentFrequency, &self.deployment_frequency),
            (Metric::LeadTime, &self.lead_time),
            (Metric::ChangeFailureRate, &self.change_failure_rate),
            (Metric::RecoveryTime, &self.recovery_time),
            (Metric::TimeToRestore, &self.time_to_restore),
            (Metric::ReworkRate, &self.rework_rate),
        ]
    }

    pub fn get(&self, metric: Metric) -> &MetricValue {
        match metric {
            Metric::DeploymentFrequency => &self.deployment_frequency,
            Metric::LeadTime => &self.lead_time,
            Metric::ChangeFailureRate => &self.change_failure_rate,
            Metric::RecoveryTime => &self.recovery_time,
            Metric::TimeToRestore => &self.time_to_restore,
            Metric::ReworkRate => &self.rework_rate,
        }
    }
}

/// One metric of one scope: its value in the period and in the previous period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// `null` when the period has no samples (frequency is 0 instead).
    pub value: Option<f64>,
    /// The DORA level; `null` for an absent value and for the two metrics without
    /// levels (time to restore, rework rate).
    pub level: Option<Level>,
    /// How many samples the value comes from (see [`Metric::samples_are`]).
    pub samples: u64,
    pub previous: Option<f64>,
    pub previous_level: Option<Level>,
    pub previous_samples: u64,
    /// `value − previous`, when both exist.
    pub change: Option<f64>,
    /// Whether the change is good news for this metric; `null` without a change.
    pub direction: Option<Direction>,
}

/// Whether a change is an improvement, given the metric's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Better,
    Worse,
    Unchanged,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Better => "better",
            Direction::Worse => "worse",
            Direction::Unchanged => "unchanged",
        }
    }
}

/// What a metric's value is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerDay,
    Seconds,
    Ratio,
}

/// The six metrics of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    DeploymentFrequency,
    LeadTime,
    ChangeFailureRate,
    RecoveryTime,
    TimeToRestore,
    ReworkRate,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::DeploymentFrequency,
        Metric::LeadTime,
        Metric::ChangeFailureRate,
        Metric::RecoveryTime,
        Metric::TimeToRestore,
        Metric::ReworkRate,
    ];

    /// The JSON key (and the exporter's `metric` label for the four with levels).
    pub const fn key(self) -> &'static str {
        match self {
            Metric::DeploymentFrequency => "deployment_frequency",
            Metric::LeadTime => "lead_time",
            Metric::ChangeFailureRate => "change_failure_rate",
            Metric::RecoveryTime => "recovery_time",
            Metric::TimeToRestore => "time_to_restore",
            Metric::ReworkRate => "rework_rate",
        }
    }

    /// The CSV column of the value, with its unit.
    pub const fn column(self) -> &'static str {
        match self {
            Metric::DeploymentFrequency => "deployment_frequency_per_day",
            Metric::LeadTime => "lead_time_median_seconds",
            Metric::ChangeFailureRate => "change_failure_rate",
            Metric::RecoveryTime => "recovery_time_median_seconds",
            Metric::TimeToRestore => "time_to_restore_median_seconds",
            Metric::ReworkRate => "rework_rate",
        }
    }

    /// The name a person reads.
    pub const fn title(self) -> &'static str {
        match self {
            Metric::DeploymentFrequency => "Deployment frequency",
            Metric::LeadTime => "Lead time for changes (median)",
            Metric::ChangeFailureRate => "Change failure rate",
            Metric::RecoveryTime => "Failed deployment recovery time (median)",
            Metric::TimeToRestore => "Time to restore service (median)",
            Metric::ReworkRate => "Deployment rework rate",
        }
    }

    /// A short column heading.
    pub(crate) const fn short_title(self) -> &'static str {
        match self {
            Metric::DeploymentFrequency => "Deploy frequency",
            Metric::LeadTime => "Lead time",
            Metric::ChangeFailureRate => "Change failure rate",
            Metric::RecoveryTime => "Recovery time",
            Metric::TimeToRestore => "Time to restore",
            Metric::ReworkRate => "Rework rate",
        }
    }

    pub const fn unit(self) -> Unit {
        match self {
            Metric::DeploymentFrequency => Unit::PerDay,
            Metric::LeadTime | Metric::RecoveryTime | Metric::TimeToRestore => Unit::Seconds,
            Metric::ChangeFailureRate | Metric::ReworkRate => Unit::Ratio,
        }
    }

    /// Whether a larger value is better (only deployment frequency).
    pub(crate) const fn higher_is_better(self) -> bool {
        matches!(self, Metric::DeploymentFrequency)
    }

    /// Whether the DORA scale classifies it.
    pub(crate) const fn has_level(self) -> bool {
        !matches!(self, Metric::TimeToRestore | Metric::ReworkRate)
    }

    /// What `samples` counts for this metric.
    pub(crate) const fn samples_are(self) -> &'static str {
        match self {
            Metric::DeploymentFrequency | Metric::ChangeFailureRate | Metric::ReworkRate => {
                "deployments"
            }
            Metric::LeadTime => "changes",
            Metric::RecoveryTime => "recoveries",
            Metric::TimeToRestore => "incidents closed",
        }
    }
}

/// A list cut to a fixed length for reading, with the full count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed<T> {
    /// How many there are in all.
    pub total: u64,
    /// The first of them, in the documented order.
    pub items: Vec<T>,
}

impl<T> Listed<T> {
    /// Keeps the first `max` of `all` (already sorted).
    pub fn cut(mut all: Vec<T>, max: usize) -> Self {
        let total = all.len() as u64;
        all.truncate(max);
        Listed { total, items: all }
    }

    /// How many were left out.
    pub fn omitted(&self) -> u64 {
        self.total - self.items.len() as u64
    }
}

/// Where the risks are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Risks {
    /// The largest regressions against the previous period (teams and repositories).
    pub regressions: Listed<Regression>,
    /// Repositories whose change failure rate is above the `high` bound.
    pub change_failure_rate: ChangeFailureRisk,
    /// Incidents open at the end of the period, oldest first.
    pub open_incidents: Listed<OpenIncident>,
    /// Repositories whose data is stale or was never synced.
    pub stale_data: StaleData,
    /// The slowest lead-time stage of the summary scope; absent when stages
    /// are not measured or have no samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowest_stage: Option<SlowestStage>,
}

/// One metric of one scope that got markedly worse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub scope: ScopeKind,
    pub name: String,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub metric: Metric,
    pub previous: f64,
    pub value: f64,
    /// `value − previous`.
    pub change: f64,
    /// `change ÷ previous`; `null` when the previous value is 0.
    pub relative_change: Option<f64>,
    pub previous_level: Option<Level>,
    pub level: Option<Level>,
    /// How many DORA levels were lost (0 when the level held or the metric has none).
    pub levels_lost: u8,
}

/// Repositories above the change-failure threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeFailureRisk {
    /// The `high` bound of `metrics.thresholds.change_failure_rate`: a rate above it
    /// is medium or low.
    pub threshold: f64,
    pub repositories: Listed<ChangeFailureRepository>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeFailureRepository {
    pub repository: String,
    pub environment: String,
    pub team: String,
    pub change_failure_rate: f64,
    pub failed_deployments: u64,
    pub deployments: u64,
    pub level: Option<Level>,
}

/// An incident open at the end of the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub repository: String,
    pub team: String,
    #[serde(with = "rfc3339")]
    pub opened_at: Timestamp,
    /// `period end − opened_at`.
    pub age_seconds: i64,
}

/// Repositories whose last successful sync is too old.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaleData {
    /// Data older than this at `reference_time` is stale: 3 poll intervals.
    pub max_age_seconds: i64,
    /// The earlier of the period end and `generated_at`: the data must reach that far.
    #[serde(with = "rfc3339")]
    pub reference_time: Timestamp,
    pub repositories: Listed<StaleRepository>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleRepository {
    pub repository: String,
    pub team: String,
    /// The sync source that is the furthest behind; `null` when the repository has
    /// no sync record at all.
    pub source: Option<String>,
    /// That source's last successful sync; `null` when it never succeeded.
    #[serde(with = "rfc3339_option")]
    pub last_success_at: Option<Timestamp>,
    /// `reference_time − last_success_at`; `null` when it never succeeded.
    pub age_seconds: Option<i64>,
    /// That source's last error, as the store keeps it (never contains a token).
    pub last_error: Option<String>,
}

/// One week of the trend charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendWeek {
    #[serde(with = "rfc3339")]
    pub start: Timestamp,
    #[serde(with = "rfc3339")]
    pub end: Timestamp,
    pub deployments: u64,
    pub lead_time_median_seconds: Option<f64>,
    pub lead_time_samples: u64,
}

/// Where the data is thinner than it looks (the engine's diagnostics at the end of
/// the period); these change no number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataQuality {
    /// Repository and environment pairs whose first known deployment has no base,
    /// so it contributed no lead-time samples.
    pub deployments_without_base: Vec<RepositoryEnvironment>,
    pub deployments_with_unknown_changes: u64,
    pub unattributed_incidents: u64,
    pub unmatched_root_causes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryEnvironment {
    pub repository: String,
    pub environment: String,
}

/// `Timestamp` as an RFC 3339 string.
mod rfc3339 {
    use crate::domain::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        at: &Timestamp,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// `Option<Timestamp>` as an RFC 3339 string or `null`.
mod rfc3339_option {
    use crate::domain::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        at: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_str(&at.to_rfc3339()),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
