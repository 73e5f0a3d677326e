//! The push API as the reference's input: repositories without a code host whose
//! deployments and incidents arrive through `POST /api/v1/deployments|incidents`,
//! each deployment carrying its commits as `dora-collector notify
//! --commits-from-git` takes them from a clone.
//!
//! What the store then holds, read from `docs/push.md` (not from the collector's
//! code); `definitions` applies the DORA definitions to it as to any events:
//! - A push arrives at the time it reports: a deployment at `finished_at`, an
//!   incident at `created_at`, its resolution at `resolved_at` (a pipeline reports
//!   when it is done). At `now`, the pushes reporting a later time have not arrived.
//! - Every pushed deployment is stored, whatever its age (there is no lookback): a
//!   success is deployed at `finished_at`; a failure is a failed attempt then.
//!   The store numbers pushes in order of arrival, which breaks deploy-time ties.
//! - A deployment carries the commits of the clone reachable from its sha and not
//!   from the sha of the latest successful deployment of the same repository and
//!   environment stored before it (`GET /api/v1/deployments/latest`: the latest by
//!   deploy time, then by arrival); with none stored, only its own commit (the
//!   first deployment has no base; `docs/push.md` allows "the whole history or
//!   just its own commit", and `notify` sends its own commit). Failed attempts
//!   carry theirs the same way. The history the definitions walk is every commit
//!   that arrived; a parent that never arrived is unknown, as in the store.
//! - Pushed commits carry their message's subject (`"message"`, which `notify`
//!   fills from the clone) and there are no pull requests, so of the rework
//!   rules rollbacks and `Revert "` commits apply, and lead time starts at the
//!   author date.
//! - A pushed incident is an incident (no labels); its root cause is a field.

use super::definitions::{self, Attribution, History, IncidentFacts, RepoAnalysis};
use super::params::{DeploymentsFrom, Params};
use super::series::{self, Expected};
use super::store::{Attempt, Outcome, Source};
use dora_collector::domain::{CommitSha, Timestamp};
use std::collections::{HashMap, HashSet};

/// One commit of the clone the pipeline deploys from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneCommit {
    pub sha: CommitSha,
    /// First parent first.
    pub parents: Vec<CommitSha>,
    /// The author date, seconds.
    pub authored_at: i64,
    /// The subject of its message (`notify` sends it as `message`).
    pub message: String,
}

/// One deployment pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedDeployment {
    /// Its place in the repository's pushes, in the order they are sent.
    pub arrival: u64,
    pub environment: String,
    pub sha: CommitSha,
    /// `"status": "success"`; otherwise `"failure"`.
    pub succeeded: bool,
    pub finished_at: i64,
}

/// One incident pushed (open, and again with `resolved_at` once resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedIncident {
    /// Its place in the repository's incidents.
    pub arrival: u64,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    /// 7 to 40 hex digits, any case.
    pub root_cause: Option<String>,
}

/// Everything pushed for one repository, and its clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRepo {
    /// `owner/name`, lowercase.
    pub name: String,
    /// Every commit of the clone.
    pub clone: Vec<CloneCommit>,
    pub deployments: Vec<PushedDeployment>,
    pub incidents: Vec<PushedIncident>,
}

/// The clone's commit graph, for reachability.
struct Clone<'a> {
    commits: HashMap<CommitSha, &'a CloneCommit>,
}

impl<'a> Clone<'a> {
    fn new(commits: &'a [CloneCommit]) -> Self {
        Clone {
            commits: commits.iter().map(|c| (c.sha, c)).collect(),
        }
    }

    /// `sha` and every commit reachable from it (empty when the clone lacks it).
    fn reachable(&self, sha: &CommitSha) -> HashSet<CommitSha> {
        let mut seen = HashSet::new();
        let mut stack = vec![*sha];
        while let Some(sha) = stack.pop() {
            if let Some(commit) = self.commits.get(&sha) {
                if seen.insert(sha) {
                    stack.extend(&commit.parents);
                }
            }
        }
        seen
    }
}

/// The commits in the store at `now`: those the deployments that arrived by then
/// carried, as `(sha, parents, author date)`.
fn stored_commits(repo: &PushedRepo, now: i64) -> Vec<(CommitSha, Vec<CommitSha>, i64, String)> {
    let clone = Clone::new(&repo.clone);
    let mut arrived: Vec<&PushedDeployment> = repo
        .deployments
        .iter()
        .filter(|d| d.finished_at <= now)
        .collect();
    arrived.sort_by_key(|d| d.arrival);
    // Per environment: (deploy time, arrival, sha) of the latest success stored.
    let mut latest: HashMap<&str, (i64, u64, CommitSha)> = HashMap::new();
    let mut stored = Vec::new();
    for deployment in arrived {
        let environment = deployment.environment.as_str();
        let carried: Vec<CommitSha> = match latest.get(environment) {
            Some((_, _, previous)) => {
                let before = clone.reachable(previous);
                let mut carried: Vec<CommitSha> = clone
                    .reachable(&deployment.sha)
                    .into_iter()
                    .filter(|c| !before.contains(c))
                    .collect();
                carried.sort_unstable();
                carried
            }
            None => clone
                .commits
                .contains_key(&deployment.sha)
                .then_some(deployment.sha)
                .into_iter()
                .collect(),
        };
        for sha in carried {
            let commit = clone.commits[&sha];
            stored.push((
                sha,
                commit.parents.clone(),
                commit.authored_at,
                commit.message.clone(),
            ));
        }
        if deployment.succeeded {
            let key = (deployment.finished_at, deployment.arrival, deployment.sha);
            let entry = latest.entry(environment).or_insert(key);
            if (key.0, key.1) > (entry.0, entry.1) {
                *entry = key;
            }
        }
    }
    stored
}

/// computation.md § Events to § Recovery for every configured repository (each
/// `DeploymentsFrom::Push`) over what was pushed for it by `now`, in
/// configuration order.
pub fn analyse(repos: &[PushedRepo], params: &Params, now: Timestamp) -> Vec<RepoAnalysis> {
    let now = now.0;
    params
        .repositories
        .iter()
        .map(|config| {
            assert_eq!(
                config.deployments,
                DeploymentsFrom::Push,
                "{}: only pushed repositories",
                config.name
            );
            let mut analysis = definitions::empty_analysis(config, params);
            let Some(repo) = repos.iter().find(|r| r.name == config.name) else {
                return analysis;
            };
            let history = History::of_commits(&stored_commits(repo, now));
            let attempts: Vec<Attempt> = repo
                .deployments
                .iter()
                .map(|d| Attempt {
                    source: Source::Push,
                    id: d.arrival,
                    environment: d.environment.clone(),
                    sha: d.sha,
                    created_at: d.finished_at,
                    outcome: if d.succeeded {
                        Outcome::Succeeded(d.finished_at)
                    } else {
                        Outcome::Failed(d.finished_at)
                    },
                })
                .collect();
            let incidents: Vec<IncidentFacts> = repo
                .incidents
                .iter()
                .filter(|i| i.created_at <= now)
                .map(|i| IncidentFacts {
                    number: i.arrival,
                    created_at: i.created_at,
                    closed_at: i.resolved_at.filter(|r| *r <= now),
                    root_cause: i.root_cause.as_ref().map(|r| r.to_ascii_lowercase()),
                    unmatched_root_cause: false,
                    attribution: Attribution::Nothing,
                })
                .collect();
            definitions::analyse_events(&mut analysis, &history, &attempts, incidents, params, now);
            analysis
        })
        .collect()
}

/// Every DORA series `/metrics` must export at `now` for `repos` pushed as
/// `params` configures them.
pub fn expected(repos: &[PushedRepo], params: &Params, now: Timestamp) -> Expected {
    series::expected_series(&analyse(repos, params, now), params, now.0)
}
