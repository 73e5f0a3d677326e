//! Attribution: which successful production deployments failed, and when they
//! recovered. Rule 1: an incident's root cause fails, in each environment, the first
//! deployment that shipped it. Rule 2: an incident without a usable root cause fails
//! the latest production deployment at or before its creation. Rule 3: a rollback
//! fails the deployment it rolls back (when configured). A deployment fails at most
//! once however many incidents point at it.
//!
//! Incidents are taken as of `now`: created later they do not exist yet, closed
//! later they are still open. Windowing is `compute`'s job.

use super::changes::{EnvHistory, UNMARKED};
use super::graph::CommitGraph;
use crate::domain::{Incident, Timestamp};

/// An incident as seen at `now`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IncidentAtNow {
    pub(crate) created_at: i64,
    /// `None` while open at `now`.
    pub(crate) closed_at: Option<i64>,
}

/// The failure state of one deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Failure {
    #[default]
    None,
    /// Failed, not recovered yet.
    Unrecovered,
    /// Failed and recovered at this time.
    Recovered(i64),
}

/// Counts for diagnostics.
#[derive(Debug, Default)]
pub(crate) struct AttributionStats {
    pub(crate) unattributed: u64,
    pub(crate) unmatched_root_causes: u64,
}

/// Whether any of `labels` is in `wanted`, case-insensitively.
pub(crate) fn has_label(labels: &[String], wanted: &[String]) -> bool {
    labels
        .iter()
        .any(|label| wanted.iter().any(|w| w.eq_ignore_ascii_case(label)))
}

/// The incidents of a repository as of `now` (creation ≤ now; those of a source
/// that selects incidents by label only with one of `labels`).
pub(crate) fn incidents_at<'a>(
    incidents: &'a [Incident],
    labels: &[String],
    now: Timestamp,
) -> Vec<(IncidentAtNow, &'a Incident)> {
    incidents
        .iter()
        .filter(|i| {
            i.created_at <= now && (!i.source.selected_by_label() || has_label(&i.labels, labels))
        })
        .map(|i| {
            let closed_at = i.closed_at.filter(|c| *c <= now).map(|c| c.0);
            (
                IncidentAtNow {
                    created_at: i.created_at.0,
                    closed_at,
                },
                i,
            )
        })
        .collect()
}

/// Decides the failure state of every deployment of every environment of one
/// repository. Returns one `Vec<Failure>` per environment, parallel to
/// `EnvHistory::deployments`.
pub(crate) fn attribute(
    graph: &CommitGraph,
    environments: &[EnvHistory],
    incidents: &[(IncidentAtNow, &Incident)],
    rollback_is_failure: bool,
    stats: &mut AttributionStats,
) -> Vec<Vec<Failure>> {
    // Per deployment: (incidents attributed, any still open, latest close).
    #[derive(Clone, Copy, Default)]
    struct Blame {
        count: u32,
        open: bool,
        last_closed: i64,
    }
    let mut blame: Vec<Vec<Blame>> = environments
        .iter()
        .map(|env| vec![Blame::default(); env.deployments.len()])
        .collect();

    // All production deployments of the repository in deploy-time order, for rule 2.
    let mut timeline: Vec<(i64, usize, usize)> = environments
        .iter()
        .enumerate()
        .flat_map(|(e, env)| {
            env.deployments
                .iter()
                .enumerate()
                .map(move |(k, d)| (d.at, e, k))
        })
        .collect();
    timeline.sort_unstable_by_key(|&(at, e, k)| (at, e, k));

    let mut targets: Vec<(usize, usize)> = Vec::new();
    for (incident, raw) in incidents {
        targets.clear();
        if let Some(prefix) = &raw.root_cause {
            for (e, env) in environments.iter().enumerate() {
                let from_graph = graph
                    .matching(prefix)
                    .map(|index| env.marks[index as usize])
                    .filter(|mark| *mark != UNMARKED)
                    .min();
                let (low, high) = prefix.bounds();
                let start = env.unknown_shas.partition_point(|(sha, _)| *sha < low);
                let from_deployments = env.unknown_shas[start..]
                    .iter()
                    .take_while(|(sha, _)| *sha <= high)
                    .map(|(_, ordinal)| *ordinal)
                    .min();
                let first = match (from_graph, from_deployments) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(ordinal) = first {
                    targets.push((e, ordinal as usize));
                }
            }
            if targets.is_empty() {
                stats.unmatched_root_causes += 1;
            }
        }
        if targets.is_empty() {
            let latest = timeline.partition_point(|&(at, _, _)| at <= incident.created_at);
            match latest.checked_sub(1) {
                Some(position) => {
                    let (_, e, k) = timeline[position];
                    targets.push((e, k));
                }
                None => stats.unattributed += 1,
            }
        }
        for &(e, k) in &targets {
            let entry = &mut blame[e][k];
            entry.count += 1;
            match incident.closed_at {
                Some(closed) => entry.last_closed = entry.last_closed.max(closed),
                None => entry.open = true,
            }
        }
    }

    environments
        .iter()
        .zip(blame)
        .map(|(env, blame)| {
            env.deployments
                .iter()
                .zip(blame)
                .map(|(deployment, blame)| {
                    if blame.count > 0 {
                        if blame.open {
                            Failure::Unrecovered
                        } else {
                            Failure::Recovered(blame.last_closed)
                        }
                    } else if let (true, Some(at)) =
                        (rollback_is_failure, deployment.rolled_back_at)
                    {
                        Failure::Recovered(at)
                    } else {
                        Failure::None
                    }
                })
                .collect()
        })
        .collect()
}
