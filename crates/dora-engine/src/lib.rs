//! The pure DORA engine: events, the engine configuration and the evaluation time
//! `now` in, one [`Snapshot`] of every metric for every scope out.
//!
//! It implements the definitions of `docs/computation.md` (every metric family of
//! `docs/metrics.md` links to its section there).
//! No I/O, no clock reads, no async, no failure: everything it needs is an argument.
//! The exporter and the report render its `Snapshot`; nothing computes elsewhere.

/// The shared vocabulary, under the name the engine's modules use.
use dora_domain as domain;

mod attribution;
mod changes;
mod compute;
mod coverage;
mod events;
mod graph;
mod quantile;
mod scoped_incidents;
mod snapshot;
mod thresholds;
mod window;

pub use compute::{compute, compute_with_trend, TrendPoint, TrendValues};
pub use coverage::{
    changes_without_pull, pulls_without_review, uncovered_change_sets, ChangesWithoutPull,
    PullsWithoutReview, UncoveredChangeSet,
};
pub use events::{EventSink, Events, EventsBuilder};
pub use quantile::{quantile, quantiles};
pub use snapshot::{
    Diagnostics, Histogram, IncidentMetrics, Levels, RepoEnvMetrics, RepoIncidents, RollupMetrics,
    Snapshot, Stage, SummaryStats, Totals, WindowedMetrics, LEAD_TIME_BUCKETS, STAGES,
};
pub use thresholds::{Level, Thresholds};
pub use window::Window;

use crate::domain::{Environment, RepoName, Team};
use std::collections::BTreeMap;

/// Where a change's lead time starts (`github.lead_time_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadTimeStart {
    /// The commit's author date (the default).
    #[default]
    Commit,
    /// The earliest author date among the commits of the PR that introduced the change.
    PrFirstCommit,
    /// The merge time of the PR that introduced the change.
    PrMerged,
}

/// Everything the engine needs besides the events and `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The evaluation windows, e.g. 7d, 30d, 90d.
    pub windows: Vec<Window>,
    /// Only these environments count (compared case-insensitively); the label of a
    /// scope is the configured spelling. For every repository not in
    /// [`EngineConfig::production_by_repository`].
    pub production_environments: Vec<Environment>,
    /// Repositories whose production environments are another list (those of the
    /// source their deployments come from).
    pub production_by_repository: BTreeMap<RepoName, Vec<Environment>>,
    /// An issue with any of these labels (case-insensitive) is an incident.
    pub incident_labels: Vec<String>,
    /// A merged PR with any of these labels (case-insensitive) is rework.
    pub rework_labels: Vec<String>,
    /// Where a change's lead time starts.
    pub lead_time_start: LeadTimeStart,
    /// A rollback marks the deployment it rolls back as failed.
    pub rollback_is_failure: bool,
    /// The level boundaries the metrics are classified by.
    pub thresholds: Thresholds,
    /// The team of each configured repository. Repositories listed here get scopes
    /// even with no events; repositories with events but absent here belong to
    /// [`crate::domain::DEFAULT_TEAM`].
    pub teams: BTreeMap<RepoName, Team>,
}

impl EngineConfig {
    /// The production environments of `repository`.
    pub fn production_environments_of(&self, repository: &RepoName) -> &[Environment] {
        self.production_by_repository
            .get(repository)
            .unwrap_or(&self.production_environments)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            windows: Window::defaults(),
            production_environments: vec![Environment::parse("production").expect("valid")],
            production_by_repository: BTreeMap::new(),
            incident_labels: vec!["incident".to_owned()],
            rework_labels: vec!["hotfix".to_owned()],
            lead_time_start: LeadTimeStart::Commit,
            rollback_is_failure: true,
            thresholds: Thresholds::default(),
            teams: BTreeMap::new(),
        }
    }
}
