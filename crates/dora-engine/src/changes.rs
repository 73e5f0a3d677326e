//! Change sets, rollbacks and rework: walks one repository's successful deployments
//! to one production environment in deploy-time order and decides, for each, which
//! commits it shipped first, its lead-time samples, whether it is a rollback of the
//! previous one, and whether it is rework.
//!
//! A commit is counted once per environment, at its first successful deployment.
//! Change sets come from an explicit compare result when one is given for
//! `(previous.sha, deployment.sha)`, otherwise from the commit graph: the commits
//! reachable from the deployed sha that no earlier deployment shipped. Each commit
//! gets a *mark* (the ordinal of the deployment that first shipped it); because a
//! walk marks everything it reaches, the marked set is closed under ancestry, so a
//! walk stops at the first marked commit and the whole pass is linear in the number
//! of commits. Attribution of incidents is `attribution`'s job, not this module's.
//!
//! Under a PR-based lead-time start it also takes each change's lead-time stages
//! (coding, pickup, review, deploy) from the pull request that introduced it
//! ([`PrTimes`], chosen by `compute`); it does not decide which pull request that is.

use super::events::{DeploymentRecord, RepoEvents};
use super::graph::{CommitGraph, NO_COMMIT};
use super::snapshot::{Histogram, Stage, STAGES};
use super::LeadTimeStart;
use crate::domain::{CommitSha, CompareStatus};
use std::collections::HashMap;

/// "Not shipped by any deployment of this environment yet".
pub(crate) const UNMARKED: u32 = u32::MAX;

/// What the engine knows about one successful production deployment.
#[derive(Debug, Clone)]
pub(crate) struct DeployFacts {
    pub(crate) at: i64,
    pub(crate) rework: bool,
    /// Deploy time of the next deployment when that one rolled this one back.
    pub(crate) rolled_back_at: Option<i64>,
}

/// One environment's deployments with their lead-time samples.
#[derive(Debug, Default)]
pub(crate) struct EnvHistory {
    /// Sorted by deploy time.
    pub(crate) deployments: Vec<DeployFacts>,
    /// Lead-time samples (seconds); those of deployment `k` are
    /// `lead_times[lead_offsets[k]..lead_offsets[k + 1]]`.
    pub(crate) lead_times: Vec<i64>,
    pub(crate) lead_offsets: Vec<u32>,
    /// Per stage (in [`Stage::ALL`] order), the stage samples (seconds) of the
    /// changes that came through a pull request, laid out like `lead_times`;
    /// empty unless [`RepoContext::pr_times`] is given.
    pub(crate) stage_times: [Vec<i64>; STAGES],
    pub(crate) stage_offsets: [Vec<u32>; STAGES],
    pub(crate) histogram: Histogram,
    /// Per commit of the graph: the ordinal of the deployment that first shipped it.
    pub(crate) marks: Vec<u32>,
    /// Shas of deployments unknown to the graph, with the first ordinal that
    /// deployed each; sorted by sha (for root-cause lookups).
    pub(crate) unknown_shas: Vec<(CommitSha, u32)>,
    /// The first deployment had no base (it contributed no lead-time samples).
    pub(crate) without_base: bool,
    /// Deployments whose change set could not be determined.
    pub(crate) unknown_changes: u64,
    /// Deployments after the first whose change set came from the commit graph
    /// but that graph cannot decide it: `(ordinal, shas that would)`: the deployed
    /// sha when it is unknown, or the unknown parents the walk reached; empty when
    /// only a compare can tell (a deployment of an already shipped sha that is not
    /// an ancestor of the previous one).
    pub(crate) uncovered: Vec<(u32, Vec<CommitSha>)>,
}

/// Lookups shared by all environments of a repository.
pub(crate) struct RepoContext<'a> {
    pub(crate) repo: &'a RepoEvents,
    pub(crate) lead_time_start: LeadTimeStart,
    /// Start times from pull requests, keyed by commit (empty for `Commit`).
    pub(crate) pr_start: HashMap<CommitSha, i64>,
    /// The times of the pull request that introduced each commit (its stages);
    /// `None` when stages are not measured (`lead_time_start = "commit"`).
    pub(crate) pr_times: Option<HashMap<CommitSha, PrTimes>>,
    /// Graph indices of merge commits of merged pull requests with a rework label,
    /// sorted.
    pub(crate) rework_merges: Vec<u32>,
    /// Fill `EnvHistory::uncovered` (for `coverage`; the metrics do not need it).
    pub(crate) track_uncovered: bool,
}

/// The boundaries of a pull request's stages (Unix seconds), each `None` when
/// unknown: first commit, opened, first review (only a review submitted at or
/// before the merge), merged. The fifth boundary is the change's deploy time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrTimes(pub(crate) [Option<i64>; STAGES]);

impl PrTimes {
    /// The duration of `stage` for a change deployed at `deployed_at`: `None`
    /// when an end is unknown or the stage ends before it starts (dropped, like a
    /// negative lead time).
    pub(crate) fn stage(&self, stage: Stage, deployed_at: i64) -> Option<i64> {
        let i = stage.index();
        let start = self.0[i]?;
        let end = if i + 1 < STAGES {
            self.0[i + 1]?
        } else {
            deployed_at
        };
        (end >= start).then_some(end - start)
    }
}

/// Scratch space reused across environments to avoid reallocating.
#[derive(Default)]
pub(crate) struct Scratch {
    stack: Vec<u32>,
    changes: Vec<u32>,
    visited: Vec<u32>,
    epoch: u32,
}

/// Replays `deployments` (one environment, successful, sorted by deploy time).
pub(crate) fn replay(
    context: &RepoContext<'_>,
    deployments: &[(&DeploymentRecord, i64)],
    scratch: &mut Scratch,
) -> EnvHistory {
    let graph = &context.repo.graph;
    let mut history = EnvHistory {
        deployments: Vec::with_capacity(deployments.len()),
        lead_offsets: Vec::with_capacity(deployments.len() + 1),
        histogram: Histogram::new(),
        marks: vec![UNMARKED; graph.len()],
        ..EnvHistory::default()
    };
    history.lead_offsets.push(0);
    if context.pr_times.is_some() {
        for offsets in &mut history.stage_offsets {
            offsets.push(0);
        }
    }
    let mut unknown_shas: HashMap<CommitSha, u32> = HashMap::new();
    graph.prefetch();
    let shas: Vec<CommitSha> = deployments.iter().map(|(record, _)| record.sha).collect();
    let heads = graph.index_of_all(&shas);
    drop(shas);

    // With `track_uncovered`: the last deployment whose marks may miss commits
    // (an unknown sha, a walk or compare reaching unknown parents). A rollback
    // search through marks at or after it is not conclusive.
    let mut last_incomplete: Option<u32> = None;
    let tracking = context.track_uncovered;
    for (ordinal, &(record, at)) in deployments.iter().enumerate() {
        let ordinal = ordinal as u32;
        let head = heads[ordinal as usize];
        if head.is_none() {
            unknown_shas.entry(record.sha).or_insert(ordinal);
        }
        scratch.changes.clear();
        let mut status = None;
        if ordinal == 0 {
            // No base: ship (mark) its history, but count no lead time.
            history.without_base = true;
            match head {
                Some(head) => {
                    mark_new_history(graph, head, ordinal, &mut history.marks, scratch);
                    if tracking && !unknown_edge(graph, &scratch.changes).is_empty() {
                        last_incomplete = Some(ordinal);
                    }
                }
                None => last_incomplete = Some(ordinal),
            }
            scratch.changes.clear();
        } else {
            let previous = deployments[ordinal as usize - 1].0;
            if previous.sha == record.sha {
                // A redeploy: identical, whatever the history knows of the sha.
                status = Some(CompareStatus::Identical);
            } else if let Some(compare) = context.repo.compares.get(&(previous.sha, record.sha)) {
                status = Some(compare.status);
                for sha in &compare.commits {
                    match graph.index_of(sha) {
                        Some(index) if history.marks[index as usize] == UNMARKED => {
                            history.marks[index as usize] = ordinal;
                            scratch.changes.push(index);
                        }
                        Some(_) => {}
                        None => last_incomplete = Some(ordinal),
                    }
                }
                if tracking && !unknown_edge(graph, &scratch.changes).is_empty() {
                    last_incomplete = Some(ordinal);
                }
            } else if let Some(head) = head {
                if history.marks[head as usize] != UNMARKED {
                    let behind = heads[ordinal as usize - 1].is_some_and(|from| {
                        is_shipped_ancestor(graph, &history.marks, head, from, scratch)
                    });
                    status = Some(if behind {
                        CompareStatus::Behind
                    } else {
                        // Every path to it runs through commits shipped since it
                        // was; when one of those deployments may have missed
                        // commits, a path through them could still make it
                        // `behind`, and only a compare decides.
                        let floor = history.marks[head as usize];
                        if last_incomplete.is_some_and(|last| last >= floor) {
                            history.uncovered.push((ordinal, Vec::new()));
                        }
                        CompareStatus::Diverged
                    });
                } else {
                    mark_new_history(graph, head, ordinal, &mut history.marks, scratch);
                    status = Some(CompareStatus::Ahead);
                    if tracking {
                        let edge = unknown_edge(graph, &scratch.changes);
                        if !edge.is_empty() {
                            last_incomplete = Some(ordinal);
                            history.uncovered.push((ordinal, edge));
                        }
                    }
                }
            } else {
                history.unknown_changes += 1;
                last_incomplete = Some(ordinal);
                history.uncovered.push((ordinal, vec![record.sha]));
            }
        }

        let mut rework = status == Some(CompareStatus::Behind);
        for &change in &scratch.changes {
            if graph.is_revert(change) || context.rework_merges.binary_search(&change).is_ok() {
                rework = true;
            }
            let start = match context.lead_time_start {
                LeadTimeStart::Commit => graph.author_date(change),
                _ => context
                    .pr_start
                    .get(&graph.sha(change))
                    .copied()
                    .unwrap_or_else(|| graph.author_date(change)),
            };
            let lead = at - start;
            if lead >= 0 {
                history.lead_times.push(lead);
                history.histogram.observe_seconds(lead);
            }
            if let Some(times) = context
                .pr_times
                .as_ref()
                .and_then(|pr| pr.get(&graph.sha(change)))
            {
                for stage in Stage::ALL {
                    if let Some(duration) = times.stage(stage, at) {
                        history.stage_times[stage.index()].push(duration);
                    }
                }
            }
        }
        history.lead_offsets.push(history.lead_times.len() as u32);
        if context.pr_times.is_some() {
            for (offsets, times) in history.stage_offsets.iter_mut().zip(&history.stage_times) {
                offsets.push(times.len() as u32);
            }
        }

        if status == Some(CompareStatus::Behind) {
            if let Some(previous) = history.deployments.last_mut() {
                previous.rolled_back_at = Some(at);
            }
        }
        history.deployments.push(DeployFacts {
            at,
            rework,
            rolled_back_at: None,
        });
    }
    let mut unknown: Vec<(CommitSha, u32)> = unknown_shas.into_iter().collect();
    unknown.sort_unstable();
    history.unknown_shas = unknown;
    history
}

/// The unknown parents of `commits`.
fn unknown_edge(graph: &CommitGraph, commits: &[u32]) -> Vec<CommitSha> {
    if !graph.has_unknown_parents() {
        return Vec::new();
    }
    commits
        .iter()
        .flat_map(|&commit| graph.unknown_parents_of(commit))
        .collect()
}

/// Marks `head` and every unmarked ancestor with `ordinal`, collecting them in
/// `scratch.changes`. Stops at marked commits (their ancestors are marked too).
fn mark_new_history(
    graph: &CommitGraph,
    head: u32,
    ordinal: u32,
    marks: &mut [u32],
    scratch: &mut Scratch,
) {
    if marks[head as usize] != UNMARKED {
        return;
    }
    marks[head as usize] = ordinal;
    scratch.stack.clear();
    scratch.stack.push(head);
    while let Some(commit) = scratch.stack.pop() {
        scratch.changes.push(commit);
        graph.for_each_parent(commit, |parent| {
            if marks[parent as usize] == UNMARKED {
                marks[parent as usize] = ordinal;
                scratch.stack.push(parent);
            }
        });
    }
}

/// Whether `ancestor` (already shipped) is reachable from `from`. A commit shipped
/// before `ancestor` cannot have it as an ancestor (marks are ancestry-closed), so
/// the search only enters commits shipped at or after it: a rollback search costs
/// the commits shipped since the rolled-back-to deployment, not the whole history.
fn is_shipped_ancestor(
    graph: &CommitGraph,
    marks: &[u32],
    ancestor: u32,
    from: u32,
    scratch: &mut Scratch,
) -> bool {
    if ancestor == from {
        return false;
    }
    let floor = marks[ancestor as usize];
    if scratch.visited.len() < marks.len() {
        scratch.visited.resize(marks.len(), 0);
    }
    scratch.epoch = scratch.epoch.wrapping_add(1);
    if scratch.epoch == 0 {
        scratch.visited.iter_mut().for_each(|v| *v = 0);
        scratch.epoch = 1;
    }
    let epoch = scratch.epoch;
    scratch.stack.clear();
    scratch.stack.push(from);
    scratch.visited[from as usize] = epoch;
    while let Some(commit) = scratch.stack.pop() {
        if commit == ancestor {
            return true;
        }
        let visited = &mut scratch.visited;
        let stack = &mut scratch.stack;
        graph.for_each_parent(commit, |parent| {
            let mark = marks[parent as usize];
            if visited[parent as usize] != epoch && mark != UNMARKED && mark >= floor {
                visited[parent as usize] = epoch;
                stack.push(parent);
            }
        });
    }
    false
}

/// `NO_COMMIT` and `UNMARKED` share a value on purpose: both mean "none".
const _: () = assert!(NO_COMMIT == UNMARKED);
