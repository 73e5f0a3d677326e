//! The simulated GitLab group: an [`Org`] as GitLab shows it. Each repository is a
//! project at a path of the group (`acme/payments/api`, some in a deeper
//! subgroup, one at the top), with environments (and their tiers) derived from
//! its deployments, and the simulator's own reading of GitLab's states:
//! a deployment's `status` and `finished_at` from its statuses, a pipeline's from
//! its run, an issue's type.
//!
//! The organisation stays the one source of truth (the mutation methods of
//! [`Org`] change what the GitLab server shows), so a test computes the truth
//! from the same data whichever host serves it. Nothing here speaks HTTP or JSON.

use crate::domain::{StatusState, Timestamp};
use crate::model::{Org, RunConclusion, RunStatus, SimDeployment, SimIssue, SimWorkflowRun};
use crate::spec::{OrgSpec, PRODUCTION};
use std::sync::Arc;

/// The environment name the first [`GroupSpec::live_projects`] projects deploy
/// production to: GitLab guesses its tier (`production`) from the name, so it
/// counts only through the tier.
pub const LIVE_ENVIRONMENT: &str = "live";

/// The first GitLab project id (ids then follow the repository index).
const FIRST_PROJECT_ID: u64 = 278_964;

/// The id of the top-level group.
const GROUP_ID: u64 = 9_970;

/// Environment ids of a project: `project id × this + position`.
const ENVIRONMENTS_PER_PROJECT: u64 = 1_000;

/// The subgroup that holds every third project one level deeper (`services`).
pub const DEEP_SUBGROUP: &str = "services";

/// A GitLab environment tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// `production`
    Production,
    /// `staging`
    Staging,
    /// `testing`
    Testing,
    /// `development`
    Development,
    /// `other`
    Other,
}

impl Tier {
    /// GitLab's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Production => "production",
            Tier::Staging => "staging",
            Tier::Testing => "testing",
            Tier::Development => "development",
            Tier::Other => "other",
        }
    }

    /// The tier GitLab gives an environment created without one, from its name
    /// (GitLab's `Environment#guess_tier`: `dev`, `review`, `trunk` →
    /// development; `test`, `tst`, `int`, `acpt`/`accept`, `qa`, `qc`, `control`,
    /// `quality` → testing; `stg`/`stag`, `model`/`mode`, `pre`, `demo`, `non` →
    /// staging; `prd`/`prod`, `live` → production; else other; case-insensitive,
    /// anywhere in the name, in that order).
    pub fn guess(name: &str) -> Tier {
        let name = name.to_ascii_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| name.contains(w));
        if any(&["dev", "review", "trunk"]) {
            Tier::Development
        } else if any(&[
            "test", "tst", "int", "acpt", "accept", "qa", "qc", "control", "quality",
        ]) {
            Tier::Testing
        } else if any(&["stg", "stag", "model", "mode", "pre", "demo", "non"]) {
            Tier::Staging
        } else if any(&["prd", "prod", "live"]) {
            Tier::Production
        } else {
            Tier::Other
        }
    }
}

/// Where a project's deployments come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitlabDeploySource {
    /// GitLab's Deployments API (the repository's deployments).
    Deployments,
    /// Pipelines on `git_ref` (the repository's workflow runs).
    Pipelines {
        /// The branch whose successful pipelines deploy.
        git_ref: String,
    },
}

/// One environment of a project, derived from its deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEnvironment {
    /// GitLab's environment id.
    pub id: u64,
    /// The name, as deployments name it.
    pub name: Arc<str>,
    /// The tier: set on the project ([`GitlabProject::tiers`]), else guessed.
    pub tier: Tier,
    /// The first deployment's creation.
    pub created_at: Timestamp,
    /// The latest deployment's creation.
    pub updated_at: Timestamp,
}

/// A repository as a GitLab project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabProject {
    /// GitLab's project id.
    pub id: u64,
    /// The full path as GitLab spells it (case kept), e.g. `acme/payments/api`.
    pub path: String,
    /// Tiers set explicitly, by environment name (the others are guessed).
    pub tiers: Vec<(String, Tier)>,
    /// Where its deployments come from.
    pub deploys: GitlabDeploySource,
}

impl GitlabProject {
    /// The full path lowercased: the collector's repository name.
    pub fn repository(&self) -> String {
        self.path.to_ascii_lowercase()
    }

    /// The path of the namespace (everything before the last `/`).
    pub fn namespace(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(ns, _)| ns)
    }

    /// The project's own path (after the last `/`).
    pub fn name(&self) -> &str {
        self.path
            .rsplit_once('/')
            .map_or(&self.path, |(_, name)| name)
    }
}

/// The knobs of [`GitlabGroup::generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// The organisation behind the group (its owner is the top-level group's
    /// path; its workflow-run repositories deploy through pipelines).
    pub org: OrgSpec,
    /// How many of the first Deployments-API projects deploy production to
    /// [`LIVE_ENVIRONMENT`] instead of `production`.
    pub live_projects: usize,
}

impl GroupSpec {
    /// A small group for fast tests: [`OrgSpec::small`] with the top-level group
    /// `gl-acme` (so that it never meets a GitHub organisation of the same test)
    /// and one project on `live`.
    pub fn small(seed: u64) -> Self {
        GroupSpec {
            org: OrgSpec {
                owner: "gl-acme".to_owned(),
                ..OrgSpec::small(seed)
            },
            live_projects: 1,
        }
    }
}

/// A simulated GitLab group with its subgroups and projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabGroup {
    /// The data: repository `i` is project `i`.
    pub org: Org,
    /// The top-level group's id.
    pub group_id: u64,
    /// The projects, by repository index.
    pub projects: Vec<GitlabProject>,
}

impl GitlabGroup {
    /// Generates the organisation of `spec` and shows it as a group: project `i`
    /// lives at `owner/name` (the first), `owner/team/services/name` (every third
    /// from the third) or `owner/team/name` (the rest), with `team` the slug of
    /// the repository's team; the second project's name is capitalized
    /// (`Api`), as GitLab keeps case; workflow-run repositories deploy through
    /// pipelines on their default branch.
    pub fn generate(spec: &GroupSpec) -> GitlabGroup {
        let mut org = Org::generate(&spec.org);
        let mut live = spec.live_projects;
        for repo in &mut org.repos {
            if live == 0 {
                break;
            }
            if repo.workflow().is_some() {
                continue;
            }
            let renamed: Arc<str> = Arc::from(LIVE_ENVIRONMENT);
            for deployment in &mut repo.deployments {
                if deployment.environment.eq_ignore_ascii_case(PRODUCTION) {
                    deployment.environment = Arc::clone(&renamed);
                }
            }
            live -= 1;
        }
        GitlabGroup::of(org)
    }

    /// `org` shown as a group, with the paths and sources of
    /// [`GitlabGroup::generate`].
    pub fn of(org: Org) -> GitlabGroup {
        let projects = (0..org.repos.len())
            .map(|index| {
                let repo = &org.repos[index];
                let team = org
                    .teams
                    .get(repo.team)
                    .map_or_else(|| "team".to_owned(), |t| t.slug());
                let name = if index == 1 {
                    capitalized(&repo.name)
                } else {
                    repo.name.clone()
                };
                let path = match index {
                    0 => format!("{}/{name}", org.owner),
                    i if i % 3 == 2 => format!("{}/{team}/{DEEP_SUBGROUP}/{name}", org.owner),
                    _ => format!("{}/{team}/{name}", org.owner),
                };
                let deploys = match repo.workflow() {
                    Some(_) => GitlabDeploySource::Pipelines {
                        git_ref: repo.default_branch.clone(),
                    },
                    None => GitlabDeploySource::Deployments,
                };
                GitlabProject {
                    id: FIRST_PROJECT_ID + index as u64,
                    path,
                    tiers: Vec::new(),
                    deploys,
                }
            })
            .collect();
        GitlabGroup {
            org,
            group_id: GROUP_ID,
            projects,
        }
    }

    /// The index of the project at `path` or with numeric id `id_or_path`
    /// (paths compare case-insensitively, as GitLab's do).
    pub fn project_index(&self, id_or_path: &str) -> Option<usize> {
        if let Ok(id) = id_or_path.parse::<u64>() {
            return self.projects.iter().position(|p| p.id == id);
        }
        self.projects
            .iter()
            .position(|p| p.path.eq_ignore_ascii_case(id_or_path))
    }

    /// Sets the tier of environment `name` of project `index` (as a project's
    /// maintainer does in GitLab's settings).
    pub fn set_tier(&mut self, index: usize, name: &str, tier: Tier) {
        if let Some(project) = self.projects.get_mut(index) {
            project.tiers.retain(|(n, _)| n != name);
            project.tiers.push((name.to_owned(), tier));
        }
    }

    /// The environments of project `index`: one per environment its deployments
    /// name, in the order of their first deployment.
    pub fn environments(&self, index: usize) -> Vec<SimEnvironment> {
        let (Some(repo), Some(project)) = (self.org.repos.get(index), self.projects.get(index))
        else {
            return Vec::new();
        };
        let mut out: Vec<SimEnvironment> = Vec::new();
        for deployment in &repo.deployments {
            match out.iter_mut().find(|e| e.name == deployment.environment) {
                Some(environment) => {
                    environment.updated_at = environment.updated_at.max(deployment.created_at);
                }
                None => {
                    let tier = project
                        .tiers
                        .iter()
                        .find(|(n, _)| **n == *deployment.environment)
                        .map_or_else(|| Tier::guess(&deployment.environment), |(_, t)| *t);
                    out.push(SimEnvironment {
                        id: project.id * ENVIRONMENTS_PER_PROJECT + out.len() as u64 + 1,
                        name: Arc::clone(&deployment.environment),
                        tier,
                        created_at: deployment.created_at,
                        updated_at: deployment.created_at,
                    });
                }
            }
        }
        out
    }
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A deployment's `status` on GitLab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    /// `created`: not started.
    Created,
    /// `running`.
    Running,
    /// `success`: it reached the environment.
    Success,
    /// `failed`.
    Failed,
}

impl DeploymentStatus {
    /// GitLab's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Created => "created",
            DeploymentStatus::Running => "running",
            DeploymentStatus::Success => "success",
            DeploymentStatus::Failed => "failed",
        }
    }
}

/// How GitLab shows one deployment, by the simulator's own reading of its
/// statuses: `success` once any status is a success (GitLab keeps a deployment
/// that succeeded so; `finished_at` is that first success), else `failed` when
/// the newest status that is not `inactive` is `failure` or `error` (finished
/// then), else `running` (in progress) or `created`. `updated_at` is when the
/// status last changed; GitLab has no `inactive`, so those change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentView {
    /// The status.
    pub status: DeploymentStatus,
    /// When it finished (its job's `finished_at`), for `success` and `failed`.
    pub finished_at: Option<Timestamp>,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// See [`DeploymentView`].
pub fn deployment_view(d: &SimDeployment) -> DeploymentView {
    let first_success = d
        .statuses
        .iter()
        .filter(|s| s.state == StatusState::Success)
        .map(|s| s.created_at)
        .min();
    if let Some(at) = first_success {
        return DeploymentView {
            status: DeploymentStatus::Success,
            finished_at: Some(at),
            updated_at: at.max(d.created_at),
        };
    }
    let newest = d
        .statuses
        .iter()
        .filter(|s| s.state != StatusState::Inactive)
        .max_by_key(|s| s.created_at);
    match newest {
        Some(s) if matches!(s.state, StatusState::Failure | StatusState::Error) => DeploymentView {
            status: DeploymentStatus::Failed,
            finished_at: Some(s.created_at),
            updated_at: s.created_at.max(d.created_at),
        },
        Some(s) => DeploymentView {
            status: if s.state == StatusState::InProgress {
                DeploymentStatus::Running
            } else {
                DeploymentStatus::Created
            },
            finished_at: None,
            updated_at: s.created_at.max(d.created_at),
        },
        None => DeploymentView {
            status: DeploymentStatus::Created,
            finished_at: None,
            updated_at: d.created_at,
        },
    }
}

/// How GitLab shows a run as a pipeline: its `status` (`success`, `failed`,
/// `canceled`, `running`, `pending`) and, once finished, `finished_at` (the
/// run's last change).
pub fn pipeline_view(run: &SimWorkflowRun) -> (&'static str, Option<Timestamp>) {
    match (run.status, run.conclusion) {
        (RunStatus::Completed, Some(RunConclusion::Success)) => ("success", Some(run.updated_at)),
        (RunStatus::Completed, Some(RunConclusion::Failure)) => ("failed", Some(run.updated_at)),
        (RunStatus::Completed, _) => ("canceled", Some(run.updated_at)),
        (RunStatus::InProgress, _) => ("running", None),
        (RunStatus::Queued, _) => ("pending", None),
    }
}

/// An issue's `issue_type` on GitLab: an issue labelled `incident` whose
/// number is even was opened as an incident (`incident`); every other one is a
/// plain `issue` (the odd labelled ones are incidents by their label only).
pub fn issue_type(issue: &SimIssue) -> &'static str {
    if issue.is_incident() && issue.number % 2 == 0 {
        "incident"
    } else {
        "issue"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_guessed_like_gitlab() {
        for (name, tier) in [
            ("production", Tier::Production),
            ("live", Tier::Production),
            ("prd-eu", Tier::Production),
            ("staging", Tier::Staging),
            ("pre-prod", Tier::Staging),
            ("review/feature-1", Tier::Development),
            ("qa", Tier::Testing),
            ("eu-main", Tier::Other),
        ] {
            assert_eq!(Tier::guess(name), tier, "{name}");
        }
    }

    #[test]
    fn a_group_has_subgroups_and_projects_of_every_source() {
        let group = GitlabGroup::generate(&GroupSpec::small(3));
        let paths: Vec<&str> = group.projects.iter().map(|p| p.path.as_str()).collect();
        assert!(paths[0].matches('/').count() == 1, "{paths:?}");
        assert!(paths[1].contains("/Api") || paths[1].chars().any(|c| c.is_ascii_uppercase()));
        assert!(
            paths[2].contains(&format!("/{DEEP_SUBGROUP}/")),
            "{paths:?}"
        );
        assert!(group
            .projects
            .iter()
            .any(|p| matches!(p.deploys, GitlabDeploySource::Pipelines { .. })));
        let live = group.environments(0);
        assert!(
            live.iter()
                .any(|e| &*e.name == LIVE_ENVIRONMENT && e.tier == Tier::Production),
            "{live:?}"
        );
        assert_eq!(group.project_index(&paths[1].to_ascii_lowercase()), Some(1));
        assert_eq!(
            group.project_index(&group.projects[2].id.to_string()),
            Some(2)
        );
    }
}
