//! Team incidents: which of a team's repositories an incident reported against
//! the team (not one repository) belongs to, decided before each repository is
//! replayed. Its root cause picks the first repository (by name) whose commits
//! or production deployments hold that commit; without a root cause, or when no
//! repository holds it, rule 2 runs over the team's repositories: the repository
//! whose successful production deployment was the latest at or before the
//! incident's creation (ties: the first by name). The repository then treats it
//! as one of its own incidents (attribution, time to restore, open incidents).
//! An incident older than every deployment of its team stays the team's own: it
//! counts in the team's and the organisation's time to restore and open
//! incidents, in no repository's.
//!
//! Not here: the rules within a repository (`attribution`), windows (`compute`).

use super::attribution::IncidentAtNow;
use super::compute::production_deployments;
use super::events::{Events, RepoEvents};
use super::EngineConfig;
use crate::domain::{Incident, RepoName, Team, Timestamp};
use std::collections::{BTreeMap, HashMap};

/// Where the team incidents went.
#[derive(Debug, Default)]
pub(crate) struct Assigned<'a> {
    /// Per repository: the team incidents it takes, as its own incidents.
    pub(crate) given: HashMap<&'a RepoName, Vec<Incident>>,
    /// Per team: the incidents older than every deployment of the team, as of
    /// `now`.
    pub(crate) kept: BTreeMap<Team, Vec<IncidentAtNow>>,
    /// Root causes that no repository of the team holds.
    pub(crate) unmatched_root_causes: u64,
}

/// Assigns every team incident created at or before `now` (later ones do not
/// exist yet). `members` lists each repository with its team.
pub(crate) fn assign<'a>(
    events: &'a Events,
    members: &[(&'a RepoName, &'a RepoEvents, &Team)],
    config: &EngineConfig,
    now: Timestamp,
) -> Assigned<'a> {
    let mut assigned = Assigned::default();
    if events.team_incidents.is_empty() {
        return assigned;
    }
    // Per team, its repositories (by name) with their successful production
    // deploy times (ascending) and deployed shas.
    let mut teams: BTreeMap<&Team, Vec<TeamMember<'a>>> = BTreeMap::new();
    for &(name, repo, team) in members {
        let (successful, _) = production_deployments(
            repo,
            &repo.production(config.production_environments_of(name)),
            now,
        );
        let mut deploy_times: Vec<i64> = successful.iter().flatten().map(|(_, at)| *at).collect();
        deploy_times.sort_unstable();
        teams.entry(team).or_default().push(TeamMember {
            name,
            repo,
            deploy_times,
        });
    }
    for incident in events.team_incidents.iter().filter(|i| i.created_at <= now) {
        let candidates = teams.get(&incident.team).map(Vec::as_slice).unwrap_or(&[]);
        let mut root_cause = incident.root_cause.clone();
        let by_root_cause = root_cause.as_ref().and_then(|prefix| {
            let (low, high) = prefix.bounds();
            let found = candidates.iter().find(|member| {
                !member.repo.graph.matching(prefix).is_empty()
                    || member
                        .repo
                        .deployments
                        .iter()
                        .any(|d| low <= d.sha && d.sha <= high)
            });
            if found.is_none() {
                assigned.unmatched_root_causes += 1;
            }
            found
        });
        if by_root_cause.is_none() {
            root_cause = None;
        }
        let target = by_root_cause.or_else(|| {
            candidates
                .iter()
                .filter_map(|member| {
                    let before = member
                        .deploy_times
                        .partition_point(|at| *at <= incident.created_at.0);
                    before
                        .checked_sub(1)
                        .map(|i| (member.deploy_times[i], member))
                })
                // The latest; among equal times the first by name.
                .fold(
                    None,
                    |best: Option<(i64, &TeamMember)>, (at, member)| match best {
                        Some((best_at, _)) if best_at >= at => best,
                        _ => Some((at, member)),
                    },
                )
                .map(|(_, member)| member)
        });
        match target {
            Some(member) => assigned
                .given
                .entry(member.name)
                .or_default()
                .push(Incident {
                    source: incident.source,
                    repository: member.name.clone(),
                    number: incident.number,
                    created_at: incident.created_at,
                    closed_at: incident.closed_at,
                    labels: Vec::new(),
                    root_cause,
                }),
            None => assigned
                .kept
                .entry(incident.team.clone())
                .or_default()
                .push(IncidentAtNow {
                    created_at: incident.created_at.0,
                    closed_at: incident.closed_at.filter(|c| *c <= now).map(|c| c.0),
                }),
        }
    }
    assigned
}

/// One repository of a team, as the assignment needs it.
struct TeamMember<'a> {
    name: &'a RepoName,
    repo: &'a RepoEvents,
    deploy_times: Vec<i64>,
}
