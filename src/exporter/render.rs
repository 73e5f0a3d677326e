//! Rendering: a [`Snapshot`] plus the collector's [`HealthSnapshot`] become
//! Prometheus text exposition (format 0.0.4).
//!
//! Every family is built afresh from the data on each render, as
//! `prometheus::proto::MetricFamily` values, and encoded with the `prometheus`
//! crate's `TextEncoder`. The crate's plain (non-protobuf) model expresses counters,
//! gauges, summaries with quantiles, and histograms, and its encoder escapes label
//! values (backslash, double quote, newline) and HELP text as the format requires,
//! so no hand-written encoder is needed. We use no `Registry`: there is nothing
//! long-lived to register, only families made from one snapshot.
//!
//! What this module guarantees on top of the encoder:
//! - families are sorted by name, series within a family by their label values, so
//!   the same input always gives byte-identical output (golden tests rely on it);
//! - every family has HELP text, and a family with no series is left out (the
//!   encoder rejects empty families, and Prometheus has nothing to ingest anyway);
//! - absent values (`None` in the snapshot) are not exported, and a summary with no
//!   samples has `_sum 0`, `_count 0` and no `quantile` series;
//! - non-finite values are never written: the encoder would spell infinity `inf`,
//!   which the text format does not accept, so such a series is dropped.
//!
//! It deliberately computes nothing: every number comes from the snapshot or the
//! health data as given. It does no I/O and keeps no state.

use super::health::{HealthSnapshot, ReplicaHealth};
use crate::dora::{
    Histogram, IncidentMetrics, Levels, RollupMetrics, Snapshot, Stage, SummaryStats, Totals,
    WindowedMetrics, LEAD_TIME_BUCKETS,
};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::TextEncoder;
use std::collections::BTreeMap;

/// Why rendering failed. The families are built so that the encoder's checks (a
/// name, at least one series) always pass; this exists so that a broken invariant
/// surfaces as an error the caller logs, never as a panic in the sync loop.
#[derive(Debug, thiserror::Error)]
#[error("rendering the metrics failed: {0}")]
pub struct RenderError(#[from] prometheus::Error);

/// The Prometheus metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl Kind {
    /// The word used in `# TYPE` lines and in `docs/metrics.md`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }

    const fn metric_type(self) -> MetricType {
        match self {
            Kind::Counter => MetricType::COUNTER,
            Kind::Gauge => MetricType::GAUGE,
            Kind::Summary => MetricType::SUMMARY,
            Kind::Histogram => MetricType::HISTOGRAM,
        }
    }
}

/// One metric family as exported: name, type, label names (in the order they are
/// written) and HELP text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn family(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        kind,
        labels,
        help,
    }
}

/// The quantiles every summary exports (median and p90, as the definitions ask).
pub(crate) const SUMMARY_QUANTILES: [f64; 2] = [0.5, 0.9];

/// The `metric` label values of the performance-level families.
const LEVEL_METRICS: [&str; 4] = [
    "deployment_frequency",
    "lead_time",
    "change_failure_rate",
    "recovery_time",
];

const REPO_ENV_TEAM: &[&str] = &["repository", "environment", "team"];
const REPO_ENV_TEAM_WINDOW: &[&str] = &["repository", "environment", "team", "window"];
const REPO_ENV_TEAM_WINDOW_STAGE: &[&str] =
    &["repository", "environment", "team", "window", "stage"];
const REPO_ENV_TEAM_WINDOW_METRIC: &[&str] =
    &["repository", "environment", "team", "window", "metric"];
const REPO_TEAM: &[&str] = &["repository", "team"];
const REPO_TEAM_WINDOW: &[&str] = &["repository", "team", "window"];
const REPO_ENV: &[&str] = &["repository", "environment"];
const TEAM: &[&str] = &["team"];
const TEAM_WINDOW: &[&str] = &["team", "window"];
const TEAM_WINDOW_METRIC: &[&str] = &["team", "window", "metric"];
const TEAM_WINDOW_STAGE: &[&str] = &["team", "window", "stage"];
const WINDOW: &[&str] = &["window"];
const WINDOW_METRIC: &[&str] = &["window", "metric"];
const WINDOW_STAGE: &[&str] = &["window", "stage"];
const NONE: &[&str] = &[];

/// The families of one scope (repository, team or organisation). The repository
/// scope has no `repositories` family; the rollups have no oldest-open-incident one.
#[derive(Debug, Clone, Copy)]
pub struct ScopeFamilies {
    pub deployments: Family,
    pub failed_deployments: Family,
    pub attempt_failures: Family,
    pub lead_time: Family,
    pub deployment_frequency: Family,
    pub lead_time_window: Family,
    pub lead_time_stage: Family,
    pub change_failure_rate: Family,
    pub recovery_time: Family,
    pub rework_rate: Family,
    pub performance_level: Family,
    pub time_to_restore: Family,
    pub incidents_open: Family,
}

impl ScopeFamilies {
    /// Every family of the scope.
    pub fn all(&self) -> [Family; 13] {
        [
            self.deployments,
            self.failed_deployments,
            self.attempt_failures,
            self.lead_time,
            self.deployment_frequency,
            self.lead_time_window,
            self.lead_time_stage,
            self.change_failure_rate,
            self.recovery_time,
            self.rework_rate,
            self.performance_level,
            self.time_to_restore,
            self.incidents_open,
        ]
    }
}

/// Per repository and production environment (names fixed by `interfaces.md`).
pub const REPOSITORY: ScopeFamilies = ScopeFamilies {
    deployments: family(
        "dora_deployments_total",
        Kind::Counter,
        REPO_ENV_TEAM,
        "Successful production deployments, over everything in the store.",
    ),
    failed_deployments: family(
        "dora_failed_deployments_total",
        Kind::Counter,
        REPO_ENV_TEAM,
        "Successful production deployments that caused a failure in production (change failures), over everything in the store.",
    ),
    attempt_failures: family(
        "dora_deployment_attempt_failures_total",
        Kind::Counter,
        REPO_ENV_TEAM,
        "Deployment attempts that never succeeded (not deployments), over everything in the store.",
    ),
    lead_time: family(
        "dora_lead_time_seconds",
        Kind::Histogram,
        REPO_ENV_TEAM,
        "Lead time for changes: deploy time minus commit time of every change, over everything in the store.",
    ),
    deployment_frequency: family(
        "dora_deployment_frequency_per_day",
        Kind::Gauge,
        REPO_ENV_TEAM_WINDOW,
        "Successful production deployments in the window divided by its length in days.",
    ),
    lead_time_window: family(
        "dora_lead_time_window_seconds",
        Kind::Summary,
        REPO_ENV_TEAM_WINDOW,
        "Lead time for changes deployed in the window: median, p90, sum and count.",
    ),
    lead_time_stage: family(
        "dora_lead_time_stage_seconds",
        Kind::Summary,
        REPO_ENV_TEAM_WINDOW_STAGE,
        "Lead-time stage (coding, pickup, review, deploy) of the changes deployed in the window that came through a pull request: median, p90, sum and count; only under a PR-based lead_time_start.",
    ),
    change_failure_rate: family(
        "dora_change_failure_rate",
        Kind::Gauge,
        REPO_ENV_TEAM_WINDOW,
        "Failed deployments divided by successful deployments in the window (0-1); absent without deployments.",
    ),
    recovery_time: family(
        "dora_failed_deployment_recovery_time_seconds",
        Kind::Summary,
        REPO_ENV_TEAM_WINDOW,
        "Failed deployment recovery time of the recoveries completed in the window: median, p90, sum and count.",
    ),
    rework_rate: family(
        "dora_deployment_rework_rate",
        Kind::Gauge,
        REPO_ENV_TEAM_WINDOW,
        "Rework deployments divided by successful deployments in the window (0-1); absent without deployments.",
    ),
    performance_level: family(
        "dora_performance_level",
        Kind::Gauge,
        REPO_ENV_TEAM_WINDOW_METRIC,
        "DORA performance level of a metric in the window: 4 elite, 3 high, 2 medium, 1 low; absent where the metric is.",
    ),
    time_to_restore: family(
        "dora_time_to_restore_seconds",
        Kind::Summary,
        REPO_TEAM_WINDOW,
        "Time to restore service (closed minus created) of the incidents closed in the window: median, p90, sum and count.",
    ),
    incidents_open: family(
        "dora_incidents_open",
        Kind::Gauge,
        REPO_TEAM,
        "Incidents open at evaluation time.",
    ),
};

/// Team rollups, from the union of the samples of the team's repositories.
pub(crate) const TEAM_ROLLUP: ScopeFamilies = ScopeFamilies {
    deployments: family(
        "dora_team_deployments_total",
        Kind::Counter,
        TEAM,
        "Successful production deployments of the team's repositories, over everything in the store.",
    ),
    failed_deployments: family(
        "dora_team_failed_deployments_total",
        Kind::Counter,
        TEAM,
        "Change failures of the team's repositories, over everything in the store.",
    ),
    attempt_failures: family(
        "dora_team_deployment_attempt_failures_total",
        Kind::Counter,
        TEAM,
        "Deployment attempts that never succeeded, of the team's repositories, over everything in the store.",
    ),
    lead_time: family(
        "dora_team_lead_time_seconds",
        Kind::Histogram,
        TEAM,
        "Lead time for changes of the team's repositories, over everything in the store.",
    ),
    deployment_frequency: family(
        "dora_team_deployment_frequency_per_day",
        Kind::Gauge,
        TEAM_WINDOW,
        "Successful production deployments of the team in the window divided by its length in days.",
    ),
    lead_time_window: family(
        "dora_team_lead_time_window_seconds",
        Kind::Summary,
        TEAM_WINDOW,
        "Lead time for the team's changes deployed in the window: median, p90, sum and count of all its changes.",
    ),
    lead_time_stage: family(
        "dora_team_lead_time_stage_seconds",
        Kind::Summary,
        TEAM_WINDOW_STAGE,
        "Lead-time stage of the team's changes deployed in the window that came through a pull request: median, p90, sum and count of all of them.",
    ),
    change_failure_rate: family(
        "dora_team_change_failure_rate",
        Kind::Gauge,
        TEAM_WINDOW,
        "The team's failed deployments divided by its successful deployments in the window (0-1).",
    ),
    recovery_time: family(
        "dora_team_failed_deployment_recovery_time_seconds",
        Kind::Summary,
        TEAM_WINDOW,
        "Failed deployment recovery time of the team's recoveries completed in the window: median, p90, sum and count.",
    ),
    rework_rate: family(
        "dora_team_deployment_rework_rate",
        Kind::Gauge,
        TEAM_WINDOW,
        "The team's rework deployments divided by its successful deployments in the window (0-1).",
    ),
    performance_level: family(
        "dora_team_performance_level",
        Kind::Gauge,
        TEAM_WINDOW_METRIC,
        "DORA performance level of the team's metric in the window: 4 elite, 3 high, 2 medium, 1 low.",
    ),
    time_to_restore: family(
        "dora_team_time_to_restore_seconds",
        Kind::Summary,
        TEAM_WINDOW,
        "Time to restore service of the team's incidents closed in the window: median, p90, sum and count.",
    ),
    incidents_open: family(
        "dora_team_incidents_open",
        Kind::Gauge,
        TEAM,
        "Incidents of the team's repositories open at evaluation time.",
    ),
};

/// Organisation rollups, from the union of the samples of every repository.
pub(crate) const ORGANISATION: ScopeFamilies = ScopeFamilies {
    deployments: family(
        "dora_org_deployments_total",
        Kind::Counter,
        NONE,
        "Successful production deployments of every repository, over everything in the store.",
    ),
    failed_deployments: family(
        "dora_org_failed_deployments_total",
        Kind::Counter,
        NONE,
        "Change failures of every repository, over everything in the store.",
    ),
    attempt_failures: family(
        "dora_org_deployment_attempt_failures_total",
        Kind::Counter,
        NONE,
        "Deployment attempts that never succeeded, of every repository, over everything in the store.",
    ),
    lead_time: family(
        "dora_org_lead_time_seconds",
        Kind::Histogram,
        NONE,
        "Lead time for changes of every repository, over everything in the store.",
    ),
    deployment_frequency: family(
        "dora_org_deployment_frequency_per_day",
        Kind::Gauge,
        WINDOW,
        "Successful production deployments of the organisation in the window divided by its length in days.",
    ),
    lead_time_window: family(
        "dora_org_lead_time_window_seconds",
        Kind::Summary,
        WINDOW,
        "Lead time for all changes deployed in the window: median, p90, sum and count.",
    ),
    lead_time_stage: family(
        "dora_org_lead_time_stage_seconds",
        Kind::Summary,
        WINDOW_STAGE,
        "Lead-time stage of all changes deployed in the window that came through a pull request: median, p90, sum and count.",
    ),
    change_failure_rate: family(
        "dora_org_change_failure_rate",
        Kind::Gauge,
        WINDOW,
        "All failed deployments divided by all successful deployments in the window (0-1).",
    ),
    recovery_time: family(
        "dora_org_failed_deployment_recovery_time_seconds",
        Kind::Summary,
        WINDOW,
        "Failed deployment recovery time of all recoveries completed in the window: median, p90, sum and count.",
    ),
    rework_rate: family(
        "dora_org_deployment_rework_rate",
        Kind::Gauge,
        WINDOW,
        "All rework deployments divided by all successful deployments in the window (0-1).",
    ),
    performance_level: family(
        "dora_org_performance_level",
        Kind::Gauge,
        WINDOW_METRIC,
        "DORA performance level of the organisation's metric in the window: 4 elite, 3 high, 2 medium, 1 low.",
    ),
    time_to_restore: family(
        "dora_org_time_to_restore_seconds",
        Kind::Summary,
        WINDOW,
        "Time to restore service of all incidents closed in the window: median, p90, sum and count.",
    ),
    incidents_open: family(
        "dora_org_incidents_open",
        Kind::Gauge,
        NONE,
        "Incidents of every repository open at evaluation time.",
    ),
};

/// Repositories covered by each team.
pub(crate) const TEAM_REPOSITORIES: Family = family(
    "dora_team_repositories",
    Kind::Gauge,
    TEAM,
    "Repositories the team rollup covers.",
);

/// Repositories covered by the organisation rollup.
pub(crate) const ORG_REPOSITORIES: Family = family(
    "dora_org_repositories",
    Kind::Gauge,
    NONE,
    "Repositories the organisation rollup covers.",
);

/// The creation time of a repository's oldest open incident (alert on "open too long").
pub(crate) const INCIDENT_OLDEST_OPEN: Family = family(
    "dora_incident_oldest_open_timestamp_seconds",
    Kind::Gauge,
    REPO_TEAM,
    "Creation time (Unix seconds) of the repository's oldest open incident; absent when none is open.",
);

/// Data-quality diagnostics: they change no metric's definition.
pub(crate) const DIAGNOSTICS_WITHOUT_BASE: Family = family(
    "dora_diagnostics_first_deployment_without_base",
    Kind::Gauge,
    REPO_ENV,
    "1 for each repository and environment whose first known deployment has no base deployment, so it contributed no lead-time samples.",
);
pub(crate) const DIAGNOSTICS_UNKNOWN_CHANGES: Family = family(
    "dora_diagnostics_deployments_with_unknown_changes",
    Kind::Gauge,
    NONE,
    "Deployments whose change set could not be determined (sha unknown to the commit history, no compare result).",
);
pub(crate) const DIAGNOSTICS_UNATTRIBUTED_INCIDENTS: Family = family(
    "dora_diagnostics_unattributed_incidents",
    Kind::Gauge,
    NONE,
    "Incidents that precede every deployment of their repository, so are attributed to none.",
);
pub(crate) const DIAGNOSTICS_UNMATCHED_ROOT_CAUSES: Family = family(
    "dora_diagnostics_unmatched_root_causes",
    Kind::Gauge,
    NONE,
    "Incidents whose root cause matched no deployment (attributed by time instead).",
);

/// The collector's own health.
pub(crate) const LAST_SUCCESSFUL_SYNC: Family = family(
    "dora_collector_last_successful_sync_timestamp_seconds",
    Kind::Gauge,
    &["source", "repository"],
    "When the last sync of the repository from the source completed successfully (Unix seconds); absent before the first.",
);
pub(crate) const HISTORY_COMPLETE_SINCE: Family = family(
    "dora_collector_history_complete_since_timestamp_seconds",
    Kind::Gauge,
    &["source", "repository"],
    "Since when the repository's history from the source is complete in the store (Unix seconds): the lookback start of its first successful sync; its DORA series are exported once this exists, absent before.",
);
pub(crate) const SYNC_DURATION: Family = family(
    "dora_collector_sync_duration_seconds",
    Kind::Gauge,
    &["source"],
    "How long the last completed sync of the source took.",
);
pub(crate) const API_REQUESTS: Family = family(
    "dora_collector_api_requests_total",
    Kind::Counter,
    &["source", "endpoint", "status"],
    "API requests made to the source since the process started, by endpoint template and HTTP status (error: no response).",
);
pub(crate) const RATE_LIMIT_REMAINING: Family = family(
    "dora_collector_rate_limit_remaining",
    Kind::Gauge,
    &["source", "credential", "resource"],
    "Requests left in the source's current rate-limit window, as last reported, per credential (token, app, installation:<account>).",
);
pub(crate) const RATE_LIMIT_RESET: Family = family(
    "dora_collector_rate_limit_reset_timestamp_seconds",
    Kind::Gauge,
    &["source", "credential", "resource"],
    "When the source's current rate-limit window resets (Unix seconds), as last reported, per credential.",
);
pub(crate) const RATE_LIMIT_WAIT: Family = family(
    "dora_collector_rate_limit_wait_seconds_total",
    Kind::Counter,
    &["source"],
    "Seconds requests to the source were held back by its rate limits since the process started, summed over requests.",
);
pub(crate) const API_RETRIES: Family = family(
    "dora_collector_api_retries_total",
    Kind::Counter,
    &["source", "reason"],
    "API requests to the source retried since the process started, by reason.",
);
pub(crate) const SYNC_ERRORS: Family = family(
    "dora_collector_sync_errors_total",
    Kind::Counter,
    &["source", "repository"],
    "Failed syncs of the repository from the source since the process started.",
);
pub(crate) const NEXT_SYNC_RETRY: Family = family(
    "dora_collector_next_sync_retry_timestamp_seconds",
    Kind::Gauge,
    &["source", "repository"],
    "When the failed sync of the repository from the source is tried again (Unix seconds); absent while it is not waiting for a retry.",
);
pub(crate) const SKIPPED_ITEMS: Family = family(
    "dora_collector_skipped_items_total",
    Kind::Counter,
    &["source", "repository"],
    "Items of the source's API responses for the repository that could not be read (unexpected or hostile JSON) and were skipped, since the process started.",
);
pub(crate) const ARGOCD_HISTORY_GAPS: Family = family(
    "dora_collector_argocd_history_gaps_total",
    Kind::Counter,
    &["application"],
    "Polls that found syncs of the Argo CD application dropped from its history (revisionHistoryLimit) before they were read, since the process started; those deployments are missing.",
);
pub(crate) const PUSHES: Family = family(
    "dora_collector_pushes_total",
    Kind::Counter,
    &["client", "outcome"],
    "Push API requests since the process started, by client (empty without a valid token) and outcome (accepted, duplicate, unauthorized, forbidden, invalid, conflict, too_large, rate_limited, error).",
);
pub(crate) const WEBHOOK_DELIVERIES: Family = family(
    "dora_collector_webhook_deliveries_total",
    Kind::Counter,
    &["event", "outcome"],
    "Webhook deliveries since the process started, by event (deployment, deployment_status, workflow_run, issues, pull_request, push, ping, other) and outcome (accepted, duplicate, unauthorized, invalid, too_large, ignored).",
);
pub(crate) const LEASES_HELD: Family = family(
    "dora_collector_leases_held",
    Kind::Gauge,
    NONE,
    "Repositories whose lease this replica holds, so it alone syncs them (replicas sharing a PostgreSQL store only).",
);
pub(crate) const METRICS_LEASE: Family = family(
    "dora_collector_metrics_lease",
    Kind::Gauge,
    NONE,
    "1 when this replica holds the metrics lease and so exports the DORA families, 0 when another replica does (replicas sharing a PostgreSQL store only).",
);
pub(crate) const REPLICAS: Family = family(
    "dora_collector_replicas",
    Kind::Gauge,
    NONE,
    "Live replicas sharing the store, this one included, as this replica last saw them (replicas sharing a PostgreSQL store only).",
);
pub(crate) const SNAPSHOT_TIMESTAMP: Family = family(
    "dora_collector_snapshot_timestamp_seconds",
    Kind::Gauge,
    NONE,
    "The evaluation time (Unix seconds) of the snapshot the metrics come from.",
);
pub(crate) const BUILD_INFO: Family = family(
    "dora_build_info",
    Kind::Gauge,
    &["version"],
    "Always 1; the version label names the running dora-collector build.",
);

/// Every family this module can export, in no particular order (rendering sorts).
pub fn all_families() -> Vec<Family> {
    let mut all = Vec::new();
    for scope in [REPOSITORY, TEAM_ROLLUP, ORGANISATION] {
        all.extend(scope.all());
    }
    all.extend([
        TEAM_REPOSITORIES,
        ORG_REPOSITORIES,
        INCIDENT_OLDEST_OPEN,
        DIAGNOSTICS_WITHOUT_BASE,
        DIAGNOSTICS_UNKNOWN_CHANGES,
        DIAGNOSTICS_UNATTRIBUTED_INCIDENTS,
        DIAGNOSTICS_UNMATCHED_ROOT_CAUSES,
        LAST_SUCCESSFUL_SYNC,
        HISTORY_COMPLETE_SINCE,
        SYNC_DURATION,
        API_REQUESTS,
        RATE_LIMIT_REMAINING,
        RATE_LIMIT_RESET,
        RATE_LIMIT_WAIT,
        API_RETRIES,
        SYNC_ERRORS,
        NEXT_SYNC_RETRY,
        SKIPPED_ITEMS,
        ARGOCD_HISTORY_GAPS,
        PUSHES,
        WEBHOOK_DELIVERIES,
        LEASES_HELD,
        METRICS_LEASE,
        REPLICAS,
        SNAPSHOT_TIMESTAMP,
        BUILD_INFO,
    ]);
    all
}

/// Renders the text exposition of `snapshot` (none before the first sync: then
/// only health and build info are exported) and `health`, with `version` as the
/// `dora_build_info` label.
pub fn render(
    snapshot: Option<&Snapshot>,
    health: &HealthSnapshot,
    version: &str,
) -> Result<String, RenderError> {
    render_replica(snapshot, health, None, version)
}

/// [`render`] for one of several replicas sharing a store (`replica`): the
/// DORA families only when it holds the metrics lease, the per-repository
/// sync health only of the repositories it syncs, and the lease gauges.
/// Without `replica`, exactly [`render`].
pub(crate) fn render_replica(
    snapshot: Option<&Snapshot>,
    health: &HealthSnapshot,
    replica: Option<&ReplicaHealth>,
    version: &str,
) -> Result<String, RenderError> {
    let mut out = Families::default();
    if let Some(snapshot) = snapshot {
        out.gauge(&SNAPSHOT_TIMESTAMP, &[], snapshot.evaluated_at.0 as f64);
        if replica.is_none_or(|replica| replica.metrics_lease) {
            add_snapshot(&mut out, snapshot);
        }
    }
    add_health(&mut out, health, replica.map(|replica| &replica.syncs));
    if let Some(replica) = replica {
        out.gauge(&LEASES_HELD, &[], replica.syncs.len() as f64);
        out.gauge(
            &METRICS_LEASE,
            &[],
            if replica.metrics_lease { 1.0 } else { 0.0 },
        );
        out.gauge(&REPLICAS, &[], replica.replicas as f64);
    }
    out.gauge(&BUILD_INFO, &[version], 1.0);
    let families = out.finish();
    let mut text = String::new();
    TextEncoder::new().encode_utf8(&families, &mut text)?;
    Ok(text)
}

/// The metric families of [`render`], sorted by name, each with its series sorted
/// by label values; families without series are left out.
pub(crate) fn metric_families(
    snapshot: Option<&Snapshot>,
    health: &HealthSnapshot,
    version: &str,
) -> Vec<MetricFamily> {
    let mut out = Families::default();
    if let Some(snapshot) = snapshot {
        out.gauge(&SNAPSHOT_TIMESTAMP, &[], snapshot.evaluated_at.0 as f64);
        add_snapshot(&mut out, snapshot);
    }
    add_health(&mut out, health, None);
    out.gauge(&BUILD_INFO, &[version], 1.0);
    out.finish()
}

/// The families computed from the store's events (the DORA families and the
/// data-quality diagnostics).
fn add_snapshot(out: &mut Families, snapshot: &Snapshot) {
    for scope in &snapshot.repositories {
        let base = [
            scope.repository.as_str(),
            scope.environment.as_str(),
            scope.team.as_str(),
        ];
        add_totals(out, &REPOSITORY, &base, &scope.totals);
        add_windows(out, &REPOSITORY, &base, &scope.windows);
    }
    for scope in &snapshot.incidents {
        let base = [scope.repository.as_str(), scope.team.as_str()];
        out.gauge(&REPOSITORY.incidents_open, &base, scope.open as f64);
        if let Some(oldest) = scope.open_since.iter().min() {
            out.gauge(&INCIDENT_OLDEST_OPEN, &base, oldest.0 as f64);
        }
        add_incident_windows(out, &REPOSITORY, &base, &scope.windows);
    }
    for team in &snapshot.teams {
        // A team rollup always names its team; one without is not a team rollup.
        if let Some(name) = &team.team {
            add_rollup(
                out,
                &TEAM_ROLLUP,
                &TEAM_REPOSITORIES,
                &[name.as_str()],
                team,
            );
        }
    }
    add_rollup(
        out,
        &ORGANISATION,
        &ORG_REPOSITORIES,
        &[],
        &snapshot.organisation,
    );

    let diagnostics = &snapshot.diagnostics;
    for (repository, environment) in &diagnostics.deployments_without_base {
        out.gauge(
            &DIAGNOSTICS_WITHOUT_BASE,
            &[repository.as_str(), environment.as_str()],
            1.0,
        );
    }
    out.gauge(
        &DIAGNOSTICS_UNKNOWN_CHANGES,
        &[],
        diagnostics.deployments_with_unknown_changes as f64,
    );
    out.gauge(
        &DIAGNOSTICS_UNATTRIBUTED_INCIDENTS,
        &[],
        diagnostics.unattributed_incidents as f64,
    );
    out.gauge(
        &DIAGNOSTICS_UNMATCHED_ROOT_CAUSES,
        &[],
        diagnostics.unmatched_root_causes as f64,
    );
}

fn add_rollup(
    out: &mut Families,
    families: &ScopeFamilies,
    repositories: &Family,
    base: &[&str],
    rollup: &RollupMetrics,
) {
    out.gauge(repositories, base, rollup.repositories as f64);
    add_totals(out, families, base, &rollup.totals);
    add_windows(out, families, base, &rollup.windows);
    out.gauge(&families.incidents_open, base, rollup.incidents_open as f64);
    add_incident_windows(out, families, base, &rollup.incident_windows);
}

fn add_totals(out: &mut Families, families: &ScopeFamilies, base: &[&str], totals: &Totals) {
    out.counter(&families.deployments, base, totals.deployments);
    out.counter(
        &families.failed_deployments,
        base,
        totals.failed_deployments,
    );
    out.counter(&families.attempt_failures, base, totals.attempt_failures);
    out.histogram(&families.lead_time, base, &totals.lead_time);
}

fn add_windows(
    out: &mut Families,
    families: &ScopeFamilies,
    base: &[&str],
    windows: &[WindowedMetrics],
) {
    for metrics in windows {
        let labels = with(base, &[metrics.window.label.as_str()]);
        out.gauge(
            &families.deployment_frequency,
            &labels,
            metrics.deployment_frequency_per_day,
        );
        out.summary(&families.lead_time_window, &labels, &metrics.lead_time);
        if let Some(stages) = &metrics.lead_time_stages {
            for (stage, stats) in Stage::ALL.into_iter().zip(stages) {
                let labels = with(&labels, &[stage.label()]);
                out.summary(&families.lead_time_stage, &labels, stats);
            }
        }
        if let Some(rate) = metrics.change_failure_rate {
            out.gauge(&families.change_failure_rate, &labels, rate);
        }
        out.summary(&families.recovery_time, &labels, &metrics.recovery_time);
        if let Some(rate) = metrics.rework_rate {
            out.gauge(&families.rework_rate, &labels, rate);
        }
        add_levels(out, &families.performance_level, &labels, &metrics.levels);
    }
}

fn add_levels(out: &mut Families, family: &Family, base: &[&str], levels: &Levels) {
    let values = [
        levels.deployment_frequency,
        levels.lead_time,
        levels.change_failure_rate,
        levels.recovery_time,
    ];
    for (metric, level) in LEVEL_METRICS.into_iter().zip(values) {
        if let Some(level) = level {
            out.gauge(family, &with(base, &[metric]), f64::from(level.value()));
        }
    }
}

fn add_incident_windows(
    out: &mut Families,
    families: &ScopeFamilies,
    base: &[&str],
    windows: &[IncidentMetrics],
) {
    for metrics in windows {
        let labels = with(base, &[metrics.window.label.as_str()]);
        out.summary(&families.time_to_restore, &labels, &metrics.time_to_restore);
    }
}

/// The collector's health; per-repository sync health only of the
/// repositories in `syncs` when given (a replica's own).
fn add_health(
    out: &mut Families,
    health: &HealthSnapshot,
    syncs: Option<&std::collections::BTreeSet<crate::domain::RepoName>>,
) {
    for push in &health.pushes {
        out.counter(
            &PUSHES,
            &[push.client.as_str(), push.outcome.as_str()],
            push.count,
        );
    }
    for delivery in &health.webhooks {
        out.counter(
            &WEBHOOK_DELIVERIES,
            &[delivery.event.as_str(), delivery.outcome.as_str()],
            delivery.count,
        );
    }
    for source in &health.sources {
        let name = source.source.as_str();
        if let Some(seconds) = source.last_sync_duration_seconds {
            out.gauge(&SYNC_DURATION, &[name], seconds);
        }
        for repository in &source.repositories {
            if syncs.is_some_and(|syncs| !syncs.contains(&repository.repository)) {
                continue;
            }
            let labels = [name, repository.repository.as_str()];
            if let Some(at) = repository.last_success {
                out.gauge(&LAST_SUCCESSFUL_SYNC, &labels, at.0 as f64);
            }
            if let Some(at) = repository.history_since {
                out.gauge(&HISTORY_COMPLETE_SINCE, &labels, at.0 as f64);
            }
            out.counter(&SYNC_ERRORS, &labels, repository.sync_errors);
            if let Some(at) = repository.next_retry {
                out.gauge(&NEXT_SYNC_RETRY, &labels, at.0 as f64);
            }
            out.counter(&SKIPPED_ITEMS, &labels, repository.skipped_items);
        }
        for requests in &source.api_requests {
            out.counter(
                &API_REQUESTS,
                &[name, requests.endpoint.as_str(), requests.status.as_str()],
                requests.count,
            );
        }
        for limit in &source.rate_limits {
            let labels = [name, limit.credential.as_str(), limit.resource.as_str()];
            out.gauge(&RATE_LIMIT_REMAINING, &labels, limit.remaining as f64);
            if let Some(reset) = limit.reset_at {
                out.gauge(&RATE_LIMIT_RESET, &labels, reset.0 as f64);
            }
        }
        out.counter_f64(&RATE_LIMIT_WAIT, &[name], source.rate_limit_wait_seconds);
        for retries in &source.api_retries {
            out.counter(
                &API_RETRIES,
                &[name, retries.reason.as_str()],
                retries.count,
            );
        }
        for gaps in &source.history_gaps {
            out.counter(
                &ARGOCD_HISTORY_GAPS,
                &[gaps.application.as_str()],
                gaps.gaps,
            );
        }
    }
}

fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

/// Families under construction, keyed (and so sorted) by name.
#[derive(Default)]
struct Families {
    by_name: BTreeMap<&'static str, (Family, Vec<proto::Metric>)>,
}

impl Families {
    fn push(&mut self, family: &Family, values: &[&str], mut metric: proto::Metric) {
        debug_assert_eq!(
            family.labels.len(),
            values.len(),
            "label values of {}",
            family.name
        );
        let labels = family
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect();
        metric.set_label(labels);
        self.by_name
            .entry(family.name)
            .or_insert_with(|| (*family, Vec::new()))
            .1
            .push(metric);
    }

    fn gauge(&mut self, family: &Family, values: &[&str], value: f64) {
        debug_assert_eq!(family.kind, Kind::Gauge, "{}", family.name);
        if !value.is_finite() {
            return;
        }
        let mut gauge = proto::Gauge::default();
        gauge.set_value(value);
        let mut metric = proto::Metric::default();
        metric.set_gauge(gauge);
        self.push(family, values, metric);
    }

    fn counter(&mut self, family: &Family, values: &[&str], value: u64) {
        self.counter_f64(family, values, value as f64);
    }

    /// A counter of a non-integer quantity (seconds); skipped if not finite.
    fn counter_f64(&mut self, family: &Family, values: &[&str], value: f64) {
        debug_assert_eq!(family.kind, Kind::Counter, "{}", family.name);
        if !value.is_finite() {
            return;
        }
        let mut counter = proto::Counter::default();
        counter.set_value(value);
        let mut metric = proto::Metric::default();
        metric.set_counter(counter);
        self.push(family, values, metric);
    }

    /// Quantile series only with samples, and only finite ones.
    fn summary(&mut self, family: &Family, values: &[&str], stats: &SummaryStats) {
        debug_assert_eq!(family.kind, Kind::Summary, "{}", family.name);
        let (count, sum) = if stats.count == 0 {
            (0, 0.0)
        } else {
            (stats.count, stats.sum)
        };
        if !sum.is_finite() {
            return;
        }
        let quantiles = if count == 0 {
            Vec::new()
        } else {
            SUMMARY_QUANTILES
                .into_iter()
                .zip([stats.median, stats.p90])
                .filter_map(|(q, value)| value.filter(|v| v.is_finite()).map(|v| (q, v)))
                .map(|(q, value)| {
                    let mut quantile = proto::Quantile::default();
                    quantile.set_quantile(q);
                    quantile.set_value(value);
                    quantile
                })
                .collect()
        };
        let mut summary = proto::Summary::default();
        summary.set_sample_count(count);
        summary.set_sample_sum(sum);
        summary.set_quantile(quantiles);
        let mut metric = proto::Metric::default();
        metric.set_summary(summary);
        self.push(family, values, metric);
    }

    /// One cumulative bucket per [`LEAD_TIME_BUCKETS`] bound (counts the snapshot
    /// lacks are 0, so a `Histogram::default()` still has every bucket); the
    /// encoder adds `+Inf` with the sample count.
    fn histogram(&mut self, family: &Family, values: &[&str], histogram: &Histogram) {
        debug_assert_eq!(family.kind, Kind::Histogram, "{}", family.name);
        if !histogram.sum.is_finite() {
            return;
        }
        let mut running = 0;
        let buckets = LEAD_TIME_BUCKETS
            .iter()
            .enumerate()
            .map(|(i, bound)| {
                running += histogram.bucket_counts.get(i).copied().unwrap_or(0);
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(running);
                bucket
            })
            .collect();
        let mut proto_histogram = proto::Histogram::default();
        proto_histogram.set_sample_count(histogram.count);
        proto_histogram.set_sample_sum(histogram.sum);
        proto_histogram.set_bucket(buckets);
        let mut metric = proto::Metric::default();
        metric.set_histogram(proto_histogram);
        self.push(family, values, metric);
    }

    fn finish(self) -> Vec<MetricFamily> {
        self.by_name
            .into_values()
            .map(|(family, mut metrics)| {
                metrics.sort_by(|a, b| {
                    let a = a.get_label().iter().map(LabelPair::value);
                    let b = b.get_label().iter().map(LabelPair::value);
                    a.cmp(b)
                });
                let mut out = MetricFamily::default();
                out.set_name(family.name.to_owned());
                out.set_help(family.help.to_owned());
                out.set_field_type(family.kind.metric_type());
                out.set_metric(metrics);
                out
            })
            .collect()
    }
}
