//! What the collector can know: the deployment attempts of a simulated repository
//! as the first sync and the later ones read them, each with its outcome derived
//! here from the raw statuses or run fields by the rules of `docs/computation.md`
//! § Deployments.
//!
//! The first sync reads the deployments created within `lookback` of its start,
//! plus, per repository and environment, the newest older deployment that had
//! succeeded by then (the base, so that the first deployment in the window has a
//! previous one). Later syncs read everything newer. Whatever is older is not in the
//! store and does not exist for the metrics, cumulative counters included.
//!
//! Deliberately not modelled: how the collector pages or caches, and commits,
//! incidents and pull requests (the reference reads those from the organisation in
//! full: the definitions do not limit them by the lookback).

use super::params::{DeploymentsFrom, Params, RepoParams};
use dora_collector::domain::{CommitSha, StatusState, Timestamp};
use dora_collector::sim::{RunConclusion, RunStatus, SimRepo};

/// Which API a deployment was read from (the engine breaks deploy-time ties by
/// source, then id; the Deployments API sorts first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    DeploymentsApi,
    WorkflowRuns,
    /// The push API (`push`).
    Push,
}

/// What became of an attempt, by computation.md § Deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Deployed at this time.
    Succeeded(i64),
    /// Never succeeded; its final failing status is at this time.
    Failed(i64),
    /// Not deployed yet.
    Pending,
}

/// One stored deployment attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub source: Source,
    pub id: u64,
    /// The environment as the source names it.
    pub environment: String,
    pub sha: CommitSha,
    pub created_at: i64,
    pub outcome: Outcome,
}

/// computation.md § Deployments, Deployments API: successful once any status is `success` (deploy time: the
/// earliest one); failed when none is and the latest status that is not
/// `inactive` is `failure` or `error`; otherwise not deployed yet. Statuses are
/// given oldest first; of two latest at the same second, the later listed counts.
pub fn outcome_of_statuses(statuses: &[(StatusState, Timestamp)]) -> Outcome {
    let mut earliest_success: Option<i64> = None;
    for (state, at) in statuses {
        if *state == StatusState::Success {
            earliest_success = Some(earliest_success.map_or(at.0, |e| e.min(at.0)));
        }
    }
    if let Some(at) = earliest_success {
        return Outcome::Succeeded(at);
    }
    let mut latest: Option<(StatusState, i64)> = None;
    for (state, at) in statuses {
        if *state == StatusState::Inactive {
            continue;
        }
        if latest.is_none_or(|(_, t)| at.0 >= t) {
            latest = Some((*state, at.0));
        }
    }
    match latest {
        Some((StatusState::Failure | StatusState::Error, at)) => Outcome::Failed(at),
        _ => Outcome::Pending,
    }
}

/// Every attempt of `repo` the configuration makes a deployment source, whatever
/// its age, with its outcome.
fn all_attempts(repo: &SimRepo, config: &RepoParams) -> Vec<Attempt> {
    match &config.deployments {
        DeploymentsFrom::DeploymentsApi | DeploymentsFrom::GitlabDeployments => repo
            .deployments
            .iter()
            .map(|d| {
                let statuses: Vec<(StatusState, Timestamp)> =
                    d.statuses.iter().map(|s| (s.state, s.created_at)).collect();
                Attempt {
                    source: Source::DeploymentsApi,
                    id: d.id,
                    environment: d.environment.to_string(),
                    sha: d.sha,
                    created_at: d.created_at.0,
                    outcome: outcome_of_statuses(&statuses),
                }
            })
            .collect(),
        DeploymentsFrom::WorkflowRuns {
            workflow,
            branch,
            environment,
        } => {
            let Some(sim_workflow) = repo.workflow() else {
                return Vec::new();
            };
            let named = [
                sim_workflow.file.as_str(),
                sim_workflow.name.as_str(),
                &sim_workflow.id.to_string(),
            ]
            .contains(&workflow.as_str());
            if !named {
                return Vec::new();
            }
            repo.workflow_runs
                .iter()
                // computation.md § Deployments: runs on other branches are not
                // deployments.
                .filter(|r| &*r.head_branch == branch.as_str())
                .map(|r| Attempt {
                    source: Source::WorkflowRuns,
                    id: r.id,
                    environment: environment.clone(),
                    sha: r.head_sha,
                    created_at: r.created_at.0,
                    // computation.md § Deployments: `conclusion = success` deploys at
                    // `updated_at`; `failure`
                    // is a failed attempt; anything else has not deployed.
                    outcome: match (r.status, r.conclusion) {
                        (RunStatus::Completed, Some(RunConclusion::Success)) => {
                            Outcome::Succeeded(r.updated_at.0)
                        }
                        (RunStatus::Completed, Some(RunConclusion::Failure)) => {
                            Outcome::Failed(r.updated_at.0)
                        }
                        _ => Outcome::Pending,
                    },
                })
                .collect()
        }
        // A pipeline on the ref is a deployment of its sha: `success` at its
        // finish (the run's last change), `failed` a failed attempt, anything
        // else not deployed.
        DeploymentsFrom::GitlabPipelines {
            git_ref,
            environment,
        } => repo
            .workflow_runs
            .iter()
            .filter(|r| &*r.head_branch == git_ref.as_str())
            .map(|r| Attempt {
                source: Source::WorkflowRuns,
                id: r.id,
                environment: environment.clone(),
                sha: r.head_sha,
                created_at: r.created_at.0,
                outcome: match (r.status, r.conclusion) {
                    (RunStatus::Completed, Some(RunConclusion::Success)) => {
                        Outcome::Succeeded(r.updated_at.0)
                    }
                    (RunStatus::Completed, Some(RunConclusion::Failure)) => {
                        Outcome::Failed(r.updated_at.0)
                    }
                    _ => Outcome::Pending,
                },
            })
            .collect(),
        // Pushed deployments are not the simulator's: `push` reads them.
        DeploymentsFrom::Push => Vec::new(),
    }
}

/// The attempts of `repo` in the store after the syncs up to `now`: those created
/// at or after the first sync's cutoff, and per environment the base.
pub fn stored_attempts(
    repo: &SimRepo,
    config: &RepoParams,
    params: &Params,
    now: i64,
) -> Vec<Attempt> {
    let first_sync = params.first_sync_at.map_or(now, |t| t.0);
    let cutoff = first_sync - params.lookback_seconds;
    let all = all_attempts(repo, config);
    let mut stored: Vec<Attempt> = all
        .iter()
        .filter(|a| a.created_at >= cutoff)
        .cloned()
        .collect();
    let mut environments: Vec<&str> = all.iter().map(|a| a.environment.as_str()).collect();
    environments.sort_unstable();
    environments.dedup();
    for environment in environments {
        let base = all
            .iter()
            .filter(|a| a.environment == environment && a.created_at < cutoff)
            .filter(|a| matches!(a.outcome, Outcome::Succeeded(at) if at <= first_sync))
            .max_by_key(|a| (a.created_at, a.id));
        stored.extend(base.cloned());
    }
    stored
}
