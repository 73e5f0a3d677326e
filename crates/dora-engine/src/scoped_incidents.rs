//! Scoped incidents: which repository an incident reported against a team or a
//! set of repositories (not one repository) belongs to, decided before each
//! repository is replayed. The candidates are the team's repositories, or the
//! listed repositories the engine knows, by name. Its root cause picks the first
//! candidate whose commits or production deployments hold that commit; without
//! a root cause, or when no candidate holds it, rule 2 runs over the
//! candidates: the repository whose successful production deployment was the
//! latest at or before the incident's creation (ties: the first by name). The
//! repository then treats it as one of its own incidents (attribution, time to
//! restore, open incidents).
//!
//! An incident older than every deployment of its candidates: a team's stays
//! the team's own (it counts in the team's and the organisation's time to
//! restore and open incidents, in no repository's); a set's goes to its first
//! candidate by name, so an incident of a one-repository set is simply that
//! repository's incident (its root cause is then left to the repository's own
//! rules).
//!
//! Not here: the rules within a repository (`attribution`), windows (`compute`).

use super::attribution::IncidentAtNow;
use super::compute::production_deployments;
use super::events::{Events, RepoEvents};
use super::EngineConfig;
use crate::domain::{Incident, IncidentScope, RepoName, ScopedIncident, Team, Timestamp};
use std::collections::{BTreeMap, HashMap};

/// Where the scoped incidents went.
#[derive(Debug, Default)]
pub(crate) struct Assigned<'a> {
    /// Per repository: the scoped incidents it takes, as its own incidents.
    pub(crate) given: HashMap<&'a RepoName, Vec<Incident>>,
    /// Per team: its incidents older than every deployment of the team, as of
    /// `now`.
    pub(crate) kept: BTreeMap<Team, Vec<IncidentAtNow>>,
    /// Root causes that no candidate repository holds.
    pub(crate) unmatched_root_causes: u64,
}

/// Assigns every scoped incident created at or before `now` (later ones do not
/// exist yet). `members` lists each repository with its team.
pub(crate) fn assign<'a>(
    events: &'a Events,
    members: &[(&'a RepoName, &'a RepoEvents, &Team)],
    config: &EngineConfig,
    now: Timestamp,
) -> Assigned<'a> {
    let mut assigned = Assigned::default();
    if events.scoped_incidents.is_empty() {
        return assigned;
    }
    // Every repository with its successful production deploy times (ascending),
    // and per team its repositories (by name: `members` is sorted).
    let mut known: BTreeMap<&RepoName, Candidate<'a>> = BTreeMap::new();
    let mut teams: BTreeMap<&Team, Vec<&'a RepoName>> = BTreeMap::new();
    for &(name, repo, team) in members {
        let (successful, _) = production_deployments(
            repo,
            &repo.production(config.production_environments_of(name)),
            now,
        );
        let mut deploy_times: Vec<i64> = successful.iter().flatten().map(|(_, at)| *at).collect();
        deploy_times.sort_unstable();
        known.insert(
            name,
            Candidate {
                name,
                repo,
                deploy_times,
            },
        );
        teams.entry(team).or_default().push(name);
    }
    for incident in events
        .scoped_incidents
        .iter()
        .filter(|i| i.created_at <= now)
    {
        let candidates: Vec<&Candidate<'a>> = match &incident.scope {
            IncidentScope::Team(team) => teams
                .get(team)
                .map(|names| names.iter().filter_map(|n| known.get(n)).collect())
                .unwrap_or_default(),
            IncidentScope::Repositories(names) => {
                let mut listed: Vec<&Candidate<'a>> =
                    names.iter().filter_map(|n| known.get(n)).collect();
                listed.sort_by_key(|c| c.name);
                listed.dedup_by_key(|c| c.name);
                listed
            }
        };
        if let (IncidentScope::Repositories(_), [only]) = (&incident.scope, candidates.as_slice()) {
            give(
                &mut assigned,
                only.name,
                incident,
                incident.root_cause.clone(),
            );
            continue;
        }
        let (target, root_cause) = choose(&candidates, incident, &mut assigned);
        let target = target.or(match incident.scope {
            IncidentScope::Repositories(_) => candidates.first().copied(),
            IncidentScope::Team(_) => None,
        });
        match (target, &incident.scope) {
            (Some(candidate), _) => give(&mut assigned, candidate.name, incident, root_cause),
            (None, scope) => {
                let team = match scope {
                    IncidentScope::Team(team) => team.clone(),
                    // A set none of whose repositories the engine knows.
                    IncidentScope::Repositories(_) => Team::default(),
                };
                assigned.kept.entry(team).or_default().push(IncidentAtNow {
                    created_at: incident.created_at.0,
                    closed_at: incident.closed_at.filter(|c| *c <= now).map(|c| c.0),
                });
            }
        }
    }
    assigned
}

/// The candidate holding the incident's root cause, else the one latest in
/// production at its creation; with the root cause to keep (none when no
/// candidate holds it).
fn choose<'c, 'a>(
    candidates: &[&'c Candidate<'a>],
    incident: &ScopedIncident,
    assigned: &mut Assigned<'_>,
) -> (Option<&'c Candidate<'a>>, Option<crate::domain::ShaPrefix>) {
    if let Some(prefix) = &incident.root_cause {
        let (low, high) = prefix.bounds();
        let found = candidates.iter().copied().find(|candidate| {
            !candidate.repo.graph.matching(prefix).is_empty()
                || candidate
                    .repo
                    .deployments
                    .iter()
                    .any(|d| low <= d.sha && d.sha <= high)
        });
        match found {
            Some(candidate) => return (Some(candidate), Some(prefix.clone())),
            None => assigned.unmatched_root_causes += 1,
        }
    }
    let latest = candidates
        .iter()
        .copied()
        .filter_map(|candidate| {
            let before = candidate
                .deploy_times
                .partition_point(|at| *at <= incident.created_at.0);
            before
                .checked_sub(1)
                .map(|i| (candidate.deploy_times[i], candidate))
        })
        // The latest; among equal times the first by name.
        .fold(
            None,
            |best: Option<(i64, &Candidate)>, (at, candidate)| match best {
                Some((best_at, _)) if best_at >= at => best,
                _ => Some((at, candidate)),
            },
        )
        .map(|(_, candidate)| candidate);
    (latest, None)
}

/// Gives `incident` to `repository` as its own.
fn give<'a>(
    assigned: &mut Assigned<'a>,
    repository: &'a RepoName,
    incident: &ScopedIncident,
    root_cause: Option<crate::domain::ShaPrefix>,
) {
    assigned
        .given
        .entry(repository)
        .or_default()
        .push(Incident {
            source: incident.source,
            repository: repository.clone(),
            number: incident.number,
            created_at: incident.created_at,
            closed_at: incident.closed_at,
            labels: Vec::new(),
            root_cause,
        });
}

/// One candidate repository, as the assignment needs it.
struct Candidate<'a> {
    name: &'a RepoName,
    repo: &'a RepoEvents,
    deploy_times: Vec<i64>,
}
