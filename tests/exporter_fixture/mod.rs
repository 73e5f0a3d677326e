//! A small hand-built `Snapshot` and `HealthSnapshot` shared by the exporter tests:
//! two repositories in two teams, two windows, absent values, empty summaries, an
//! open incident. Built from the public types only, so it needs no engine.

#![allow(dead_code)] // each test binary uses a different part

use dora_collector::domain::{Environment, RepoName, Team, Timestamp};
use dora_collector::dora::{
    Diagnostics, Histogram, IncidentMetrics, Level, Levels, RepoEnvMetrics, RepoIncidents,
    RollupMetrics, Snapshot, SummaryStats, Totals, Window, WindowedMetrics,
};
use dora_collector::exporter::{HealthSnapshot, RepositoryHealth, SourceHealth};
use dora_collector::sources::{ApiRequests, ApiRetries, HistoryGaps, RateLimit};

/// The `dora_build_info` version in every rendering of the fixture.
pub const VERSION: &str = "1.2.3-test";

/// 2024-03-01T12:00:00Z.
pub const NOW: Timestamp = Timestamp(1_709_294_400);

pub fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

pub fn team(name: &str) -> Team {
    Team::parse(name).unwrap()
}

pub fn production() -> Environment {
    Environment::parse("production").unwrap()
}

pub fn histogram(values: &[f64]) -> Histogram {
    let mut histogram = Histogram::new();
    for value in values {
        histogram.observe(*value);
    }
    histogram
}

pub fn summary(count: u64, sum: f64, median: f64, p90: f64) -> SummaryStats {
    SummaryStats {
        count,
        sum,
        median: Some(median),
        p90: Some(p90),
    }
}

pub fn empty_summary() -> SummaryStats {
    SummaryStats::default()
}

/// A window with no deployments: frequency 0, everything else absent.
pub fn quiet_window(window: Window) -> WindowedMetrics {
    WindowedMetrics {
        window,
        deployments: 0,
        deployment_frequency_per_day: 0.0,
        lead_time: empty_summary(),
        failed_deployments: 0,
        change_failure_rate: None,
        recovery_time: empty_summary(),
        rework_deployments: 0,
        rework_rate: None,
        lead_time_stages: None,
        levels: Levels {
            deployment_frequency: Some(Level::Low),
            ..Levels::default()
        },
    }
}

fn api_windows() -> Vec<WindowedMetrics> {
    vec![
        WindowedMetrics {
            window: Window::days(7),
            deployments: 8,
            deployment_frequency_per_day: 8.0 / 7.0,
            lead_time: summary(4, 180_000.0, 36_000.0, 90_000.0),
            failed_deployments: 1,
            change_failure_rate: Some(0.125),
            recovery_time: empty_summary(),
            rework_deployments: 1,
            rework_rate: Some(0.125),
            lead_time_stages: None,
            levels: Levels {
                deployment_frequency: Some(Level::Elite),
                lead_time: Some(Level::Elite),
                change_failure_rate: Some(Level::Medium),
                recovery_time: None,
            },
        },
        WindowedMetrics {
            window: Window::days(30),
            deployments: 15,
            deployment_frequency_per_day: 0.5,
            lead_time: summary(10, 2_000_000.0, 100_000.0, 700_000.0),
            failed_deployments: 3,
            change_failure_rate: Some(0.2),
            recovery_time: summary(2, 9_000.0, 4_500.0, 6_300.0),
            rework_deployments: 0,
            rework_rate: Some(0.0),
            lead_time_stages: None,
            levels: Levels {
                deployment_frequency: Some(Level::High),
                lead_time: Some(Level::High),
                change_failure_rate: Some(Level::Low),
                recovery_time: Some(Level::High),
            },
        },
    ]
}

fn web_windows() -> Vec<WindowedMetrics> {
    vec![
        quiet_window(Window::days(7)),
        WindowedMetrics {
            window: Window::days(30),
            deployments: 2,
            deployment_frequency_per_day: 2.0 / 30.0,
            lead_time: summary(1, 2_700.0, 2_700.0, 2_700.0),
            failed_deployments: 0,
            change_failure_rate: Some(0.0),
            recovery_time: empty_summary(),
            rework_deployments: 0,
            rework_rate: Some(0.0),
            lead_time_stages: None,
            levels: Levels {
                deployment_frequency: Some(Level::Medium),
                lead_time: Some(Level::Elite),
                change_failure_rate: Some(Level::Elite),
                recovery_time: None,
            },
        },
    ]
}

fn api_incident_windows() -> Vec<IncidentMetrics> {
    vec![
        IncidentMetrics {
            window: Window::days(7),
            time_to_restore: empty_summary(),
        },
        IncidentMetrics {
            window: Window::days(30),
            time_to_restore: summary(3, 30_600.0, 7_200.0, 19_440.0),
        },
    ]
}

fn web_incident_windows() -> Vec<IncidentMetrics> {
    vec![
        IncidentMetrics {
            window: Window::days(7),
            time_to_restore: empty_summary(),
        },
        IncidentMetrics {
            window: Window::days(30),
            time_to_restore: empty_summary(),
        },
    ]
}

/// The fixture: `acme/api` (team payments, busy, one open incident) and `acme/web`
/// (team web, a quiet week, its first deployment without a base).
pub fn snapshot() -> Snapshot {
    let api_totals = Totals {
        deployments: 40,
        failed_deployments: 5,
        attempt_failures: 2,
        lead_time: histogram(&[600.0, 3_600.0, 36_000.0, 90_000.0, 700_000.0]),
    };
    let web_totals = Totals {
        deployments: 2,
        failed_deployments: 0,
        attempt_failures: 1,
        lead_time: histogram(&[2_700.0]),
    };
    let mut org_totals = api_totals.clone();
    org_totals.deployments += web_totals.deployments;
    org_totals.attempt_failures += web_totals.attempt_failures;
    org_totals.lead_time.merge(&web_totals.lead_time);

    Snapshot {
        evaluated_at: NOW,
        windows: vec![Window::days(7), Window::days(30)],
        repositories: vec![
            RepoEnvMetrics {
                repository: repo("acme/api"),
                environment: production(),
                team: team("payments"),
                totals: api_totals.clone(),
                windows: api_windows(),
            },
            RepoEnvMetrics {
                repository: repo("acme/web"),
                environment: production(),
                team: team("web"),
                totals: web_totals.clone(),
                windows: web_windows(),
            },
        ],
        incidents: vec![
            RepoIncidents {
                repository: repo("acme/api"),
                team: team("payments"),
                open: 1,
                open_since: vec![Timestamp(NOW.0 - 7_200)],
                windows: api_incident_windows(),
            },
            RepoIncidents {
                repository: repo("acme/web"),
                team: team("web"),
                open: 0,
                open_since: vec![],
                windows: web_incident_windows(),
            },
        ],
        teams: vec![
            RollupMetrics {
                team: Some(team("payments")),
                repositories: 1,
                totals: api_totals,
                windows: api_windows(),
                incidents_open: 1,
                incident_windows: api_incident_windows(),
            },
            RollupMetrics {
                team: Some(team("web")),
                repositories: 1,
                totals: web_totals,
                windows: web_windows(),
                incidents_open: 0,
                incident_windows: web_incident_windows(),
            },
        ],
        organisation: RollupMetrics {
            team: None,
            repositories: 2,
            totals: org_totals,
            windows: vec![
                WindowedMetrics {
                    window: Window::days(7),
                    deployments: 8,
                    deployment_frequency_per_day: 8.0 / 7.0,
                    lead_time: summary(4, 180_000.0, 36_000.0, 90_000.0),
                    failed_deployments: 1,
                    change_failure_rate: Some(0.125),
                    recovery_time: empty_summary(),
                    rework_deployments: 1,
                    rework_rate: Some(0.125),
                    lead_time_stages: None,
                    levels: Levels {
                        deployment_frequency: Some(Level::Elite),
                        lead_time: Some(Level::Elite),
                        change_failure_rate: Some(Level::Medium),
                        recovery_time: None,
                    },
                },
                WindowedMetrics {
                    window: Window::days(30),
                    deployments: 17,
                    deployment_frequency_per_day: 17.0 / 30.0,
                    lead_time: summary(11, 2_002_700.0, 90_000.0, 700_000.0),
                    failed_deployments: 3,
                    change_failure_rate: Some(3.0 / 17.0),
                    recovery_time: summary(2, 9_000.0, 4_500.0, 6_300.0),
                    rework_deployments: 0,
                    rework_rate: Some(0.0),
                    lead_time_stages: None,
                    levels: Levels {
                        deployment_frequency: Some(Level::High),
                        lead_time: Some(Level::High),
                        change_failure_rate: Some(Level::Low),
                        recovery_time: Some(Level::High),
                    },
                },
            ],
            incidents_open: 1,
            incident_windows: api_incident_windows(),
        },
        diagnostics: Diagnostics {
            deployments_without_base: vec![(repo("acme/web"), production())],
            deployments_with_unknown_changes: 0,
            unattributed_incidents: 1,
            unmatched_root_causes: 0,
        },
    }
}

/// GitHub health for the fixture: both repositories synced, some requests, two
/// rate-limit resources (one without a reset time).
pub fn health() -> HealthSnapshot {
    HealthSnapshot {
        sources: vec![
            SourceHealth {
                source: "github".to_owned(),
                last_sync_duration_seconds: Some(12.5),
                repositories: vec![
                    RepositoryHealth {
                        repository: repo("acme/api"),
                        last_success: Some(Timestamp(NOW.0 - 60)),
                        sync_errors: 0,
                        skipped_items: 0,
                        next_retry: None,
                        history_since: Some(Timestamp(NOW.0 - 90 * 86_400 - 120)),
                    },
                    RepositoryHealth {
                        repository: repo("acme/web"),
                        last_success: Some(Timestamp(NOW.0 - 30)),
                        sync_errors: 2,
                        skipped_items: 3,
                        next_retry: Some(Timestamp(NOW.0 + 30)),
                        history_since: None,
                    },
                ],
                api_requests: vec![
                    ApiRequests {
                        endpoint: "/repos/{owner}/{repo}/deployments".to_owned(),
                        status: "200".to_owned(),
                        count: 40,
                    },
                    ApiRequests {
                        endpoint: "/repos/{owner}/{repo}/deployments".to_owned(),
                        status: "403".to_owned(),
                        count: 1,
                    },
                    ApiRequests {
                        endpoint: "graphql".to_owned(),
                        status: "error".to_owned(),
                        count: 3,
                    },
                ],
                rate_limits: vec![
                    RateLimit {
                        credential: "token".to_owned(),
                        resource: "core".to_owned(),
                        remaining: 4_959,
                        reset_at: Some(Timestamp(NOW.0 + 1_800)),
                    },
                    RateLimit {
                        credential: "token".to_owned(),
                        resource: "graphql".to_owned(),
                        remaining: 4_999,
                        reset_at: None,
                    },
                ],
                rate_limit_wait_seconds: 61.5,
                api_retries: vec![
                    ApiRetries {
                        reason: "server_error".to_owned(),
                        count: 3,
                    },
                    ApiRetries {
                        reason: "secondary_rate_limit".to_owned(),
                        count: 1,
                    },
                ],
                history_gaps: Vec::new(),
            },
            SourceHealth {
                source: "argocd".to_owned(),
                last_sync_duration_seconds: Some(0.5),
                repositories: vec![RepositoryHealth {
                    repository: repo("acme/api"),
                    last_success: Some(Timestamp(NOW.0 - 61)),
                    sync_errors: 0,
                    skipped_items: 0,
                    next_retry: None,
                    history_since: None,
                }],
                api_requests: vec![ApiRequests {
                    endpoint: "/api/v1/applications/{name}".to_owned(),
                    status: "200".to_owned(),
                    count: 7,
                }],
                rate_limits: Vec::new(),
                rate_limit_wait_seconds: 0.0,
                api_retries: Vec::new(),
                history_gaps: vec![HistoryGaps {
                    application: "api-prod".to_owned(),
                    gaps: 1,
                }],
            },
        ],
        status_unrecorded: false,
        pushes: Vec::new(),
        webhooks: Vec::new(),
    }
}

/// The same health with `acme/web` not synced yet.
pub fn health_only_api_synced() -> HealthSnapshot {
    let mut health = health();
    health.sources[0].repositories[1].last_success = None;
    health
}
