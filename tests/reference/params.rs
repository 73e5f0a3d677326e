//! The configuration the reference needs, as plain values: what the engine is told
//! (production environments, labels, lead-time start, rollbacks, windows,
//! thresholds, teams) plus how the collector reads GitHub (which repositories, from
//! the Deployments API or from workflow runs, and the first sync's lookback).
//!
//! Built by hand, from a simulated organisation with the defaults of
//! `docs/configuration.md` ([`Params::for_org`]), or from the collector's own
//! configuration file ([`Params::from_config`]) so that an end-to-end test compares
//! the daemon with the reference under one configuration.

use dora_collector::config::{Config, DeploymentsConfig};
use dora_collector::domain::Timestamp;
use dora_collector::dora::{LeadTimeStart, Thresholds};
use dora_collector::sim::Org;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The default `github.lookback` (90 days), as `docs/configuration.md` states.
pub const DEFAULT_LOOKBACK_SECONDS: i64 = 90 * DAY;

/// One evaluation window: its label (`7d`) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowParam {
    pub label: String,
    pub seconds: i64,
}

impl WindowParam {
    pub fn days(days: i64) -> WindowParam {
        WindowParam {
            label: format!("{days}d"),
            seconds: days * DAY,
        }
    }
}

/// Where a repository's deployments come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentsFrom {
    /// The GitHub Deployments API (deployments and their statuses).
    DeploymentsApi,
    /// Runs of `workflow` (its file name, name or id) on `branch` are deployments
    /// to `environment`.
    WorkflowRuns {
        workflow: String,
        branch: String,
        environment: String,
    },
}

/// One configured repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoParams {
    /// `owner/name`, lowercase.
    pub name: String,
    /// `None`: the `unassigned` team.
    pub team: Option<String>,
    pub deployments: DeploymentsFrom,
}

/// Everything the reference computes from besides the organisation and `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub windows: Vec<WindowParam>,
    /// Compared case-insensitively; scopes are labelled with this spelling.
    pub production_environments: Vec<String>,
    pub incident_labels: Vec<String>,
    pub rework_labels: Vec<String>,
    pub lead_time_start: LeadTimeStart,
    pub rollback_is_failure: bool,
    /// Only read as data: the reference classifies by itself.
    pub thresholds: Thresholds,
    pub repositories: Vec<RepoParams>,
    /// How far back the first sync reads deployments (`github.lookback`).
    pub lookback_seconds: i64,
    /// When the first sync ran; `None`: at the evaluation time `now`.
    pub first_sync_at: Option<Timestamp>,
}

impl Params {
    /// Every repository of `org` with its simulated team, workflow-run repositories
    /// on `deploy.yml`/`main` to `production`, and every other value at its default.
    pub fn for_org(org: &Org) -> Params {
        let repositories = org
            .repos
            .iter()
            .enumerate()
            .map(|(index, repo)| RepoParams {
                name: org.full_name(index),
                team: org.team_of(index).map(str::to_owned),
                deployments: match repo.workflow() {
                    Some(workflow) => DeploymentsFrom::WorkflowRuns {
                        workflow: workflow.file.clone(),
                        branch: repo.default_branch.clone(),
                        environment: "production".to_owned(),
                    },
                    None => DeploymentsFrom::DeploymentsApi,
                },
            })
            .collect();
        Params {
            windows: vec![
                WindowParam::days(7),
                WindowParam::days(30),
                WindowParam::days(90),
            ],
            production_environments: vec!["production".to_owned()],
            incident_labels: vec!["incident".to_owned()],
            rework_labels: vec!["hotfix".to_owned()],
            lead_time_start: LeadTimeStart::Commit,
            rollback_is_failure: true,
            thresholds: Thresholds::default(),
            repositories,
            lookback_seconds: DEFAULT_LOOKBACK_SECONDS,
            first_sync_at: None,
        }
    }

    /// The values of a loaded configuration file (the daemon's view), with the
    /// first sync at `first_sync_at` (`None`: at evaluation time).
    pub fn from_config(config: &Config, first_sync_at: Option<Timestamp>) -> Params {
        let github = &config.github;
        Params {
            windows: config
                .metrics
                .windows
                .iter()
                .map(|w| WindowParam {
                    label: w.to_string(),
                    seconds: w.as_secs() as i64,
                })
                .collect(),
            production_environments: github
                .production_environments
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            incident_labels: github
                .incident_labels
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            rework_labels: github
                .rework_labels
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            lead_time_start: github.lead_time_start,
            rollback_is_failure: github.rollback_is_failure,
            thresholds: config.metrics.thresholds.to_thresholds(),
            repositories: github
                .repositories
                .iter()
                .map(|r| RepoParams {
                    name: r.name.as_str().to_owned(),
                    team: Some(r.team.as_str().to_owned()),
                    deployments: match &r.deployments {
                        DeploymentsConfig::DeploymentsApi => DeploymentsFrom::DeploymentsApi,
                        DeploymentsConfig::WorkflowRuns {
                            workflow,
                            branch,
                            environment,
                        } => DeploymentsFrom::WorkflowRuns {
                            workflow: workflow.as_str().to_owned(),
                            branch: branch.as_str().to_owned(),
                            environment: environment.as_str().to_owned(),
                        },
                    },
                })
                .collect(),
            lookback_seconds: github.lookback.as_secs() as i64,
            first_sync_at,
        }
    }

    /// The team label of a repository.
    pub fn team_of(&self, repository: &RepoParams) -> String {
        repository
            .team
            .clone()
            .unwrap_or_else(|| "unassigned".to_owned())
    }
}
