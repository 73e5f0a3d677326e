//! The DORA definitions (`docs/computation.md` § Events to § Time to restore
//! service) applied to one simulated repository (or to the events pushed for one,
//! `push`), the plain way: ancestor sets as
//! `HashSet`s rebuilt for every deployment, change sets as set differences,
//! attribution by scanning every deployment for every incident. Slow (quadratic) on purpose, so that each step
//! can be checked against the text by reading it.
//!
//! Where DORA itself leaves a choice open, this follows what `docs/computation.md`
//! decides (§ Choices made where DORA leaves room; each such place says so);
//! where the page does not say, the comment says what is assumed.
//!
//! Windows, rollups and levels (computation.md § Windows and formulas to
//! § Performance levels) are `series`' job; nothing here knows about Prometheus.

use super::params::{Params, RepoParams};
use super::store::{stored_attempts, Attempt, Outcome, Source};
use dora_collector::domain::CommitSha;
use dora_collector::dora::LeadTimeStart;
use dora_collector::sim::{SimPull, SimRepo};
use std::collections::{HashMap, HashSet};

/// A commit message starting with this is a revert (computation.md § Rollbacks and
/// rework).
const REVERT_PREFIX: &str = "Revert \"";
/// The line that names an incident's root cause (computation.md § Incidents),
/// compared case-insensitively.
const ROOT_CAUSE_KEY: &str = "root cause:";
/// A root cause names 7 to 40 hex digits (computation.md § Incidents).
const ROOT_CAUSE_LENGTHS: std::ops::RangeInclusive<usize> = 7..=40;

/// Why a deployment is rework (computation.md § Rollbacks and rework); any one
/// suffices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rework {
    /// (a) its compare against the previous deployment is `behind`.
    pub rollback: bool,
    /// (b) a change's message starts with `Revert "`.
    pub revert: bool,
    /// (c) a change is the merge commit of a merged pull request with a rework label.
    pub labelled_pull: bool,
}

impl Rework {
    pub fn any(&self) -> bool {
        self.rollback || self.revert || self.labelled_pull
    }
}

/// One successful production deployment (deployed at or before `now`).
#[derive(Debug, Clone)]
pub struct DeploymentFacts {
    pub source: Source,
    pub id: u64,
    /// Index into `Params::production_environments`.
    pub environment: usize,
    pub sha: CommitSha,
    pub deployed_at: i64,
    /// The first deployment of its repository and environment in the store: no base.
    pub without_base: bool,
    /// Its sha is not in the repository's history: the change set is unknown.
    pub unknown_changes: bool,
    /// Commits (indices into the repository's commits) it shipped first in its
    /// environment. The first deployment ships its whole history but has no changes.
    pub first_shipped: Vec<u32>,
    /// Its changes (empty without a base).
    pub changes: Vec<u32>,
    /// `deploy time − start` of each change, negative values dropped.
    pub lead_times: Vec<i64>,
    /// How many negative lead times were dropped.
    pub negative_lead_times: usize,
    /// computation.md § Lead-time stages, under a PR-based `lead_time_start`
    /// only: per stage (coding, pickup, review, deploy), the durations of its
    /// changes that came through a pull request, stages ending before they
    /// start dropped.
    pub stages: [Vec<i64>; 4],
    pub rework: Rework,
    /// Indices into `RepoAnalysis::incidents` of the incidents attributed to it.
    pub incidents: Vec<usize>,
    /// The deploy time of the next deployment when that one is a rollback of this.
    pub rolled_back_at: Option<i64>,
    /// A change failure (computation.md § Change failures).
    pub failed: bool,
    /// When it recovered (computation.md § Recovery): `None` while unrecovered or
    /// when not failed.
    pub recovered_at: Option<i64>,
}

/// How an incident was attributed (computation.md § Change failures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// Rule 1: per environment, the deployment that first shipped the root cause
    /// (`(environment, position in that environment's deployments)`).
    RootCause(Vec<(usize, usize)>),
    /// Rule 2: the latest production deployment at or before its creation.
    Time(usize, usize),
    /// It precedes every deployment of its repository.
    Nothing,
}

/// One incident as of `now` (created at or before it).
#[derive(Debug, Clone)]
pub struct IncidentFacts {
    pub number: u64,
    pub created_at: i64,
    /// `None` while open at `now` (closed later counts as open).
    pub closed_at: Option<i64>,
    /// The root-cause prefix named in the body, lowercase.
    pub root_cause: Option<String>,
    /// A root cause was named but matched no deployment (attributed by time).
    pub unmatched_root_cause: bool,
    pub attribution: Attribution,
}

/// One production environment of one repository.
#[derive(Debug, Clone, Default)]
pub struct EnvAnalysis {
    /// The environment's label: the configured spelling, or (a GitLab
    /// environment of tier production) its own name.
    pub name: String,
    /// Successful deployments at or before `now`, in deploy-time order.
    pub deployments: Vec<DeploymentFacts>,
    /// Failed attempts (failing at or before `now`).
    pub attempt_failures: u64,
}

/// One configured repository.
#[derive(Debug, Clone)]
pub struct RepoAnalysis {
    /// `owner/name`, lowercase.
    pub name: String,
    pub team: String,
    /// One per configured production environment, in configuration order, then
    /// (GitLab) one per environment of tier production no configured name
    /// matches, in name order.
    pub environments: Vec<EnvAnalysis>,
    /// Incidents of the repository created at or before `now`.
    pub incidents: Vec<IncidentFacts>,
}

/// The commit history of a repository, indexed for plain walks: the simulator's
/// whole history, or the commits pushed deployments carried (`push`).
pub(super) struct History<'a> {
    shas: Vec<CommitSha>,
    /// Parent indices; a parent outside the history is left out (a walk stops
    /// there, as a walk of the store does).
    parents: Vec<Vec<u32>>,
    author_dates: Vec<i64>,
    /// Where messages and pull requests come from; `None`: no pull requests, and
    /// the messages are `messages` (what pushes carried).
    sim: Option<&'a SimRepo>,
    /// Without `sim`: each commit's message subject as pushed (empty: none).
    messages: Vec<String>,
    index: HashMap<CommitSha, u32>,
    /// Whether the source reads a pull request's first review: GitHub does,
    /// GitLab has no reviews like GitHub's (its merge requests' `pickup` and
    /// `review` stages are unknown).
    reviews_read: bool,
}

impl<'a> History<'a> {
    fn new(repo: &'a SimRepo) -> Self {
        let index = repo
            .commits
            .iter()
            .enumerate()
            .map(|(i, c)| (c.sha, i as u32))
            .collect();
        History {
            shas: repo.commits.iter().map(|c| c.sha).collect(),
            parents: repo.commits.iter().map(|c| c.parents().collect()).collect(),
            author_dates: repo.commits.iter().map(|c| c.author_date.0).collect(),
            sim: Some(repo),
            messages: Vec::new(),
            index,
            reviews_read: true,
        }
    }

    /// `(sha, parents, author date, message subject)` of each commit, without
    /// pull requests. A sha listed twice is one commit (the first listing counts).
    pub(super) fn of_commits(
        commits: &[(CommitSha, Vec<CommitSha>, i64, String)],
    ) -> History<'static> {
        let mut history = History {
            shas: Vec::new(),
            parents: Vec::new(),
            author_dates: Vec::new(),
            sim: None,
            messages: Vec::new(),
            index: HashMap::new(),
            reviews_read: true,
        };
        for (sha, _, author_date, message) in commits {
            if !history.index.contains_key(sha) {
                history.index.insert(*sha, history.shas.len() as u32);
                history.shas.push(*sha);
                history.author_dates.push(*author_date);
                history.messages.push(message.clone());
            }
        }
        history.parents = vec![Vec::new(); history.shas.len()];
        for (sha, parents, _, _) in commits {
            let commit = history.index[sha] as usize;
            if history.parents[commit].is_empty() {
                history.parents[commit] = parents
                    .iter()
                    .filter_map(|p| history.index.get(p).copied())
                    .collect();
            }
        }
        history
    }

    fn knows(&self, sha: &CommitSha) -> bool {
        self.index.contains_key(sha)
    }

    /// The commit and all its ancestors (empty for an unknown sha).
    fn ancestors(&self, sha: &CommitSha) -> HashSet<u32> {
        let mut seen = HashSet::new();
        let mut stack: Vec<u32> = self.index.get(sha).copied().into_iter().collect();
        while let Some(commit) = stack.pop() {
            if seen.insert(commit) {
                stack.extend(&self.parents[commit as usize]);
            }
        }
        seen
    }

    fn author_date(&self, commit: u32) -> i64 {
        self.author_dates[commit as usize]
    }

    fn message(&self, commit: u32) -> String {
        match self.sim {
            Some(repo) => repo.commit_message(commit),
            None => self.messages[commit as usize].clone(),
        }
    }

    fn pulls(&self) -> &'a [SimPull] {
        self.sim.map_or(&[], |repo| &repo.pulls)
    }

    fn sha_hex(&self, commit: u32) -> String {
        self.shas[commit as usize].to_string()
    }
}

/// GitHub's compare status of `base...head`, from ancestor sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareStatus {
    Ahead,
    Behind,
    Diverged,
    Identical,
}

fn compare(ancestors_of_base: &HashSet<u32>, ancestors_of_head: &HashSet<u32>) -> CompareStatus {
    let ahead = ancestors_of_head.difference(ancestors_of_base).count();
    let behind = ancestors_of_base.difference(ancestors_of_head).count();
    match (ahead > 0, behind > 0) {
        (true, false) => CompareStatus::Ahead,
        (false, true) => CompareStatus::Behind,
        (true, true) => CompareStatus::Diverged,
        (false, false) => CompareStatus::Identical,
    }
}

fn has_any_label(labels: &[String], wanted: &[String]) -> bool {
    labels
        .iter()
        .any(|l| wanted.iter().any(|w| w.eq_ignore_ascii_case(l)))
}

/// computation.md § Incidents: the first line `root cause: <sha>` naming 7-40 hex digits, lowercase. The
/// sha may be wrapped in punctuation such as backticks or a final full stop.
pub fn root_cause(body: &str) -> Option<String> {
    for line in body.lines() {
        let line = line.trim_start();
        let Some(key) = line.get(..ROOT_CAUSE_KEY.len()) else {
            continue;
        };
        if !key.eq_ignore_ascii_case(ROOT_CAUSE_KEY) {
            continue;
        }
        let Some(word) = line[ROOT_CAUSE_KEY.len()..].split_whitespace().next() else {
            continue;
        };
        let sha = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if ROOT_CAUSE_LENGTHS.contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(sha.to_ascii_lowercase());
        }
    }
    None
}

/// Applies computation.md § Events to § Recovery to one configured repository at `now`. `repo` is `None` when
/// the organisation has no such repository (the scopes exist, empty).
pub fn analyse(
    repo: Option<&SimRepo>,
    config: &RepoParams,
    params: &Params,
    now: i64,
) -> RepoAnalysis {
    let mut analysis = empty_analysis(config, params);
    let Some(repo) = repo else {
        return analysis;
    };
    let mut history = History::new(repo);
    history.reviews_read = !config.deployments.is_gitlab();
    let attempts = stored_attempts(repo, config, params, now);
    let incidents = incidents_of(repo, config, params, now);
    analyse_events(&mut analysis, &history, &attempts, incidents, params, now);
    analysis
}

/// The scopes of one configured repository, without events yet: one per
/// production environment: the configured ones, and (GitLab) every environment
/// of tier production no configured name matches, in name order
/// (computation.md § Deployments).
pub(super) fn empty_analysis(config: &RepoParams, params: &Params) -> RepoAnalysis {
    let mut production = params.production_environments.clone();
    let mut tiers = config.tier_production.clone();
    tiers.sort();
    for tier in tiers {
        if !production.iter().any(|p| p.eq_ignore_ascii_case(&tier)) {
            production.push(tier);
        }
    }
    RepoAnalysis {
        name: config.name.clone(),
        team: params.team_of(config),
        environments: production
            .into_iter()
            .map(|name| EnvAnalysis {
                name,
                ..EnvAnalysis::default()
            })
            .collect(),
        incidents: Vec::new(),
    }
}

/// computation.md § Events to § Recovery over events in the store: `history`
/// (the commits), `attempts` (deployment attempts of every environment) and
/// `incidents` (created at or before `now`).
pub(super) fn analyse_events(
    analysis: &mut RepoAnalysis,
    history: &History<'_>,
    attempts: &[Attempt],
    incidents: Vec<IncidentFacts>,
    params: &Params,
    now: i64,
) {
    let production: Vec<String> = analysis
        .environments
        .iter()
        .map(|e| e.name.clone())
        .collect();
    for (e, environment) in production.iter().enumerate() {
        // computation.md § Deployments: only production environments count,
        // compared case-insensitively.
        let mine: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| a.environment.eq_ignore_ascii_case(environment))
            .collect();
        let env = &mut analysis.environments[e];
        env.attempt_failures = mine
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Failed(at) if at <= now))
            .count() as u64;
        let mut successes: Vec<(i64, &Attempt)> = mine
            .iter()
            .filter_map(|a| match a.outcome {
                // computation.md: a deployment later than `now` has not happened.
                Outcome::Succeeded(at) if at <= now => Some((at, *a)),
                _ => None,
            })
            .collect();
        // computation.md: deploy-time order, ties broken by source and id.
        successes.sort_by_key(|(at, a)| (*at, a.source, a.id));
        env.deployments = changes_of(history, &successes, e, params, now);
    }

    analysis.incidents = incidents;
    attribute(history, analysis, params);
}

/// computation.md § Change sets and § Lead time, for one environment's successful
/// deployments in order.
fn changes_of(
    history: &History<'_>,
    successes: &[(i64, &Attempt)],
    environment: usize,
    params: &Params,
    now: i64,
) -> Vec<DeploymentFacts> {
    // Commits already shipped to this environment ("counted once per environment,
    // at its first successful deployment there").
    let mut shipped: HashSet<u32> = HashSet::new();
    let mut out: Vec<DeploymentFacts> = Vec::new();
    for (k, (at, attempt)) in successes.iter().enumerate() {
        let mut facts = DeploymentFacts {
            source: attempt.source,
            id: attempt.id,
            environment,
            sha: attempt.sha,
            deployed_at: *at,
            without_base: k == 0,
            unknown_changes: false,
            first_shipped: Vec::new(),
            changes: Vec::new(),
            lead_times: Vec::new(),
            negative_lead_times: 0,
            stages: Default::default(),
            rework: Rework::default(),
            incidents: Vec::new(),
            rolled_back_at: None,
            failed: false,
            recovered_at: None,
        };
        let mine = history.ancestors(&attempt.sha);
        if k == 0 {
            // No base: it ships its whole known history (those commits are counted
            // here, so never again), but none of it is a change with a lead time
            // (DevLake #7193; computation.md). Without changes or a previous
            // deployment it is not rework either (assumed: neither text says).
            let mut first: Vec<u32> = mine.iter().copied().collect();
            first.sort_unstable();
            shipped.extend(&first);
            facts.first_shipped = first;
            out.push(facts);
            continue;
        }
        if !history.knows(&attempt.sha) {
            // computation.md: an unknown sha without a compare result has an unknown
            // change set (a diagnostic); it is not a rollback either.
            facts.unknown_changes = true;
            out.push(facts);
            continue;
        }
        let previous = history.ancestors(&successes[k - 1].1.sha);
        let status = compare(&previous, &mine);
        if matches!(status, CompareStatus::Ahead | CompareStatus::Diverged) {
            let mut changes: Vec<u32> = mine
                .difference(&previous)
                .filter(|c| !shipped.contains(c))
                .copied()
                .collect();
            changes.sort_unstable();
            shipped.extend(&changes);
            facts.first_shipped = changes.clone();
            facts.changes = changes;
        }
        facts.rework.rollback = status == CompareStatus::Behind;
        for &change in &facts.changes {
            let lead = at - lead_time_start(history, change, params, now);
            // computation.md § Lead time: negative values are dropped, zero is kept.
            if lead >= 0 {
                facts.lead_times.push(lead);
            } else {
                facts.negative_lead_times += 1;
            }
            if params.lead_time_start != LeadTimeStart::Commit {
                for (stage, duration) in
                    stages_of(history, change, *at, now).into_iter().enumerate()
                {
                    facts.stages[stage].extend(duration);
                }
            }
            if history.message(change).starts_with(REVERT_PREFIX) {
                facts.rework.revert = true;
            }
            if is_labelled_merge(history.pulls(), change, params, now) {
                facts.rework.labelled_pull = true;
            }
        }
        if facts.rework.rollback {
            if let Some(previous) = out.last_mut() {
                previous.rolled_back_at = Some(*at);
            }
        }
        out.push(facts);
    }
    out
}

/// The merged pull requests (as of `now`) whose merge commit or own commits include
/// `commit`: the reference's own pull-request mapping, read from the simulator's
/// model (never from what the collector stored), whenever the pull request was
/// merged — before the lookback too — and however many include the commit
/// (stacked pull requests).
fn pulls_introducing(pulls: &[SimPull], commit: u32, now: i64) -> Vec<usize> {
    pulls
        .iter()
        .enumerate()
        .filter(|(_, p)| p.merged_at.is_some_and(|m| m.0 <= now))
        .filter(|(_, p)| p.merge_commit == Some(commit) || p.commits.contains(&commit))
        .map(|(i, _)| i)
        .collect()
}

/// computation.md § Lead time, `lead_time_start`. With the pull-request starts, a commit in no pull request
/// falls back to its author date and one in several takes the earliest start
/// (computation.md).
fn lead_time_start(history: &History<'_>, commit: u32, params: &Params, now: i64) -> i64 {
    let author_date = history.author_date(commit);
    if params.lead_time_start == LeadTimeStart::Commit {
        return author_date;
    }
    let starts: Vec<i64> = pulls_introducing(history.pulls(), commit, now)
        .into_iter()
        .filter_map(|p| {
            let pull = &history.pulls()[p];
            match params.lead_time_start {
                LeadTimeStart::PrMerged => pull.merged_at.map(|m| m.0),
                _ => pull.commits.clone().map(|c| history.author_date(c)).min(),
            }
        })
        .collect();
    starts.into_iter().min().unwrap_or(author_date)
}

/// computation.md § Lead-time stages: the stages of `commit`, deployed at
/// `deployed_at`, from the pull request that introduced it (of several, the one
/// whose first commit is earliest, then the lowest number): coding = opened −
/// first commit, pickup = first review − opened, review = merge − first review,
/// deploy = deployed − merge. A first review after the merge (or after `now`)
/// is no review: pickup and review are then absent. A stage that ends before
/// it starts is dropped. A commit in no pull request has no stages.
fn stages_of(history: &History<'_>, commit: u32, deployed_at: i64, now: i64) -> [Option<i64>; 4] {
    let pulls = history.pulls();
    let chosen = pulls_introducing(pulls, commit, now)
        .into_iter()
        .map(|p| &pulls[p])
        .min_by_key(|pull| {
            let first = pull.commits.clone().map(|c| history.author_date(c)).min();
            (first.unwrap_or(i64::MAX), pull.number)
        });
    let Some(pull) = chosen else {
        return [None; 4];
    };
    let merged = pull.merged_at.expect("introducing pulls are merged").0;
    let first_commit = pull.commits.clone().map(|c| history.author_date(c)).min();
    let opened = Some(pull.created_at.0).filter(|t| *t <= now);
    let reviewed = pull
        .first_review_at
        .filter(|_| history.reviews_read)
        .map(|t| t.0)
        .filter(|t| *t <= merged && *t <= now);
    let span = |from: Option<i64>, to: Option<i64>| match (from, to) {
        (Some(from), Some(to)) if to >= from => Some(to - from),
        _ => None,
    };
    [
        span(first_commit.filter(|t| *t <= now), opened),
        span(opened, reviewed),
        span(reviewed, Some(merged)),
        span(Some(merged), Some(deployed_at)),
    ]
}

/// computation.md § Rollbacks and rework (c): `commit` is the merge commit of a merged pull request carrying a
/// rework label.
fn is_labelled_merge(pulls: &[SimPull], commit: u32, params: &Params, now: i64) -> bool {
    pulls.iter().any(|p| {
        p.merged_at.is_some_and(|m| m.0 <= now)
            && p.merge_commit == Some(commit)
            && has_any_label(&p.labels, &params.rework_labels)
    })
}

/// computation.md § Incidents: issues (the simulator keeps pull requests apart) with an incident
/// label, created at or before `now`; closed later means still open.
fn incidents_of(
    repo: &SimRepo,
    config: &RepoParams,
    params: &Params,
    now: i64,
) -> Vec<IncidentFacts> {
    // GitLab: an issue of type incident is one whatever its labels.
    let gitlab = config.deployments.is_gitlab();
    repo.issues
        .iter()
        .filter(|i| {
            has_any_label(&i.labels, &params.incident_labels)
                || (gitlab && dora_collector::sim::gitlab::issue_type(i) == "incident")
        })
        .filter(|i| i.created_at.0 <= now)
        .map(|i| IncidentFacts {
            number: i.number,
            created_at: i.created_at.0,
            closed_at: i.closed_at.map(|c| c.0).filter(|c| *c <= now),
            root_cause: i.body.as_deref().and_then(root_cause),
            unmatched_root_cause: false,
            attribution: Attribution::Nothing,
        })
        .collect()
}

/// computation.md § Change failures and § Recovery again, after incidents were
/// added to `analysis.incidents` (incidents from outside the repository, such as
/// a PagerDuty service's): every deployment's failure is decided anew.
pub(super) fn reattribute(repo: &SimRepo, analysis: &mut RepoAnalysis, params: &Params) {
    for env in &mut analysis.environments {
        for d in &mut env.deployments {
            d.incidents.clear();
            d.failed = false;
            d.recovered_at = None;
        }
    }
    let history = History::new(repo);
    attribute(&history, analysis, params);
}

/// Whether a commit of `repo`'s history starts with `prefix` (lowercase).
pub(super) fn holds(repo: &SimRepo, prefix: &str) -> bool {
    repo.commits
        .iter()
        .any(|c| c.sha.to_string().starts_with(prefix))
}

/// computation.md § Change failures and § Recovery: which deployments failed, and
/// when they recovered.
fn attribute(history: &History<'_>, analysis: &mut RepoAnalysis, params: &Params) {
    for (n, incident) in analysis.incidents.iter_mut().enumerate() {
        let mut targets: Vec<(usize, usize)> = Vec::new();
        if let Some(prefix) = &incident.root_cause {
            // Rule 1: in each environment, the first deployment that shipped a
            // commit starting with the root cause.
            for (e, env) in analysis.environments.iter().enumerate() {
                // "D's sha or one of D's changes": a known sha is among the commits
                // D shipped first unless an earlier deployment shipped it; an
                // unknown one can only be matched by itself.
                let first = env.deployments.iter().position(|d| {
                    let named = |sha: String| sha.starts_with(prefix.as_str());
                    d.first_shipped.iter().any(|c| named(history.sha_hex(*c)))
                        || (!history.knows(&d.sha) && named(d.sha.to_string()))
                });
                if let Some(k) = first {
                    targets.push((e, k));
                }
            }
            incident.unmatched_root_cause = targets.is_empty();
        }
        if targets.is_empty() {
            // Rule 2: the latest production deployment at or before its creation,
            // across environments. Ties (same deploy time) are not settled by the
            // definitions; assumed: the later environment in configuration order,
            // then source and id, as the engine orders them.
            let latest = analysis
                .environments
                .iter()
                .enumerate()
                .flat_map(|(e, env)| {
                    env.deployments
                        .iter()
                        .enumerate()
                        .map(move |(k, d)| (e, k, d))
                })
                .filter(|(_, _, d)| d.deployed_at <= incident.created_at)
                .max_by_key(|(e, _, d)| (d.deployed_at, *e, d.source, d.id));
            incident.attribution = match latest {
                Some((e, k, _)) => {
                    targets.push((e, k));
                    Attribution::Time(e, k)
                }
                None => Attribution::Nothing,
            };
        } else {
            incident.attribution = Attribution::RootCause(targets.clone());
        }
        for (e, k) in targets {
            analysis.environments[e].deployments[k].incidents.push(n);
        }
    }

    for env in &mut analysis.environments {
        for d in &mut env.deployments {
            if !d.incidents.is_empty() {
                d.failed = true;
                // Recovered when the last attributed incident is resolved;
                // unrecovered while any is open.
                let closes: Option<Vec<i64>> = d
                    .incidents
                    .iter()
                    .map(|n| analysis.incidents[*n].closed_at)
                    .collect();
                d.recovered_at = closes.and_then(|c| c.into_iter().max());
            } else if let (true, Some(at)) = (params.rollback_is_failure, d.rolled_back_at) {
                // Rule 3; recovered by the rollback's deployment.
                d.failed = true;
                d.recovered_at = Some(at);
            }
        }
    }
}
