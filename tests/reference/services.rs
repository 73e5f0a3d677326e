//! Incidents that are not GitHub issues as the reference's input: the incidents
//! of incident-tool services (PagerDuty) mapped to a list of repositories or to
//! a team, next to a simulated organisation's own events.
//!
//! Read from `docs/computation.md` § Team incidents and `docs/sources.md` (not
//! from the collector's code):
//! - an incident is opened at its creation and resolved at its resolution (the
//!   caller gives both as the incident tool shows them at `now`);
//! - its candidates are the configured repositories listed (sorted by name), or
//!   those configured with the team;
//! - a list of one repository: the incident is simply that repository's;
//! - otherwise a root cause goes to the first candidate whose history holds a
//!   commit starting with it; none: it counts as unmatched and rule 2 runs over
//!   the candidates (the latest successful production deployment at or before
//!   the creation, the first repository by name among equal times); no such
//!   deployment: a list's incident goes to its first repository, a team's stays
//!   the team's (not modelled here: the tests avoid it).
//!
//! Within the repository it then takes, the definitions apply to it as to an
//! issue (rule 1 for its root cause, else rule 2, recovery, time to restore).

use super::definitions::{self, Attribution, IncidentFacts, RepoAnalysis};
use super::params::Params;
use super::series::{self, Expected};
use dora_collector::domain::Timestamp;
use dora_collector::sim::Org;

/// What a service is mapped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// `repositories = [...]` (`owner/name`, lowercase).
    Repositories(Vec<String>),
    /// `team = "..."`.
    Team(String),
}

/// One incident of a service, as the incident tool shows it at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIncident {
    pub number: u64,
    pub created_at: i64,
    /// `None` while open at `now`.
    pub resolved_at: Option<i64>,
    /// The root-cause prefix named in its body or a note, lowercase.
    pub root_cause: Option<String>,
}

/// One service with its incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub mapping: Mapping,
    pub incidents: Vec<ServiceIncident>,
}

/// computation.md § Events to § Recovery for every configured repository of
/// `org`, with the incidents of `services` given to their repositories.
pub fn analyse(
    org: &Org,
    params: &Params,
    now: Timestamp,
    services: &[Service],
) -> Vec<RepoAnalysis> {
    let mut analyses = super::analyse(org, params, now);
    let repo_of = |name: &str| {
        org.repos
            .iter()
            .enumerate()
            .find(|(index, _)| org.full_name(*index) == name)
            .map(|(_, repo)| repo)
    };
    let mut touched = vec![false; analyses.len()];
    for service in services {
        let mut candidates: Vec<usize> = match &service.mapping {
            Mapping::Repositories(names) => (0..analyses.len())
                .filter(|i| names.contains(&analyses[*i].name))
                .collect(),
            Mapping::Team(team) => (0..analyses.len())
                .filter(|i| &analyses[*i].team == team)
                .collect(),
        };
        candidates.sort_by(|a, b| analyses[*a].name.cmp(&analyses[*b].name));
        for incident in service.incidents.iter().filter(|i| i.created_at <= now.0) {
            let mut facts = IncidentFacts {
                number: incident.number,
                created_at: incident.created_at,
                closed_at: incident.resolved_at.filter(|r| *r <= now.0),
                root_cause: incident.root_cause.clone(),
                unmatched_root_cause: false,
                attribution: Attribution::Nothing,
            };
            let single =
                matches!(service.mapping, Mapping::Repositories(_)) && candidates.len() == 1;
            let target = if single {
                candidates[0]
            } else {
                let by_root_cause = incident.root_cause.as_ref().and_then(|prefix| {
                    let found = candidates.iter().copied().find(|c| {
                        repo_of(&analyses[*c].name).is_some_and(|r| definitions::holds(r, prefix))
                    });
                    if found.is_none() {
                        facts.root_cause = None;
                        facts.unmatched_root_cause = true;
                    }
                    found
                });
                let by_time = || {
                    let mut best: Option<(i64, usize)> = None;
                    for c in &candidates {
                        let latest = analyses[*c]
                            .environments
                            .iter()
                            .flat_map(|e| &e.deployments)
                            .map(|d| d.deployed_at)
                            .filter(|at| *at <= incident.created_at)
                            .max();
                        if let Some(at) = latest {
                            if best.is_none_or(|(best_at, _)| at > best_at) {
                                best = Some((at, *c));
                            }
                        }
                    }
                    best.map(|(_, c)| c)
                };
                match (by_root_cause, &service.mapping) {
                    (Some(c), _) => c,
                    (None, mapping) => match (by_time(), mapping) {
                        (Some(c), _) => c,
                        (None, Mapping::Repositories(_)) => match candidates.first() {
                            Some(c) => *c,
                            None => continue,
                        },
                        (None, Mapping::Team(team)) => panic!(
                            "incident {} of team {team} precedes every deployment of the \
                             team: its team-level place is not modelled by the reference",
                            incident.number
                        ),
                    },
                }
            };
            analyses[target].incidents.push(facts);
            touched[target] = true;
        }
    }
    for (i, analysis) in analyses.iter_mut().enumerate() {
        if touched[i] {
            let repo = repo_of(&analysis.name).expect("a repository with events exists");
            definitions::reattribute(repo, analysis, params);
        }
    }
    analyses
}

/// Every DORA series `/metrics` must export at `now` for `org` and `services`.
pub fn expected(org: &Org, params: &Params, now: Timestamp, services: &[Service]) -> Expected {
    series::expected_series(&analyse(org, params, now, services), params, now.0)
}
