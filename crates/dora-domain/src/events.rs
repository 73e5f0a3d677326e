//! The normalized events: deployments (with their outcome), commits, compare
//! results, incidents and pull requests. How a source's raw states (deployment
//! statuses, workflow-run conclusions, issue bodies) become them is the source's
//! reading, not the vocabulary's.

use super::{CommitSha, Environment, RepoName, ShaPrefix, Team, Timestamp};
use serde::{Deserialize, Serialize};

/// A commit whose message starts with this is a revert (a rework signal).
pub const REVERT_MESSAGE_PREFIX: &str = "Revert \"";

/// Where a deployment was read from; part of its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentSource {
    /// GitHub's Deployments API (deployments and their statuses).
    GithubDeployments,
    /// Runs of a configured GitHub Actions workflow.
    GithubWorkflowRuns,
    /// The push API: a CI/CD system reported it (`POST /api/v1/deployments`).
    Push,
    /// An Argo CD application's sync history (`status.history`) and its last
    /// operation (`status.operationState`).
    #[serde(rename = "argocd")]
    ArgoCd,
    /// Builds of a Jenkins job.
    Jenkins,
    /// GitLab's Deployments API (a deployment with its status).
    GitlabDeployments,
    /// Pipelines of a GitLab project on a configured ref.
    GitlabPipelines,
}

impl DeploymentSource {
    /// Every source, in declaration order.
    pub const ALL: [DeploymentSource; 5] = [
        DeploymentSource::GithubDeployments,
        DeploymentSource::GithubWorkflowRuns,
        DeploymentSource::Push,
        DeploymentSource::ArgoCd,
        DeploymentSource::Jenkins,
    ];

    /// The stable snake_case name (as serialized and stored).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeploymentSource::GithubDeployments => "github_deployments",
            DeploymentSource::GithubWorkflowRuns => "github_workflow_runs",
            DeploymentSource::Push => "push",
            DeploymentSource::ArgoCd => "argocd",
            DeploymentSource::Jenkins => "jenkins",
            DeploymentSource::GitlabDeployments => "gitlab_deployments",
            DeploymentSource::GitlabPipelines => "gitlab_pipelines",
        }
    }

    /// The source named by [`DeploymentSource::as_str`]; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "github_deployments" => Some(DeploymentSource::GithubDeployments),
            "github_workflow_runs" => Some(DeploymentSource::GithubWorkflowRuns),
            "push" => Some(DeploymentSource::Push),
            "argocd" => Some(DeploymentSource::ArgoCd),
            "jenkins" => Some(DeploymentSource::Jenkins),
            "gitlab_deployments" => Some(DeploymentSource::GitlabDeployments),
            "gitlab_pipelines" => Some(DeploymentSource::GitlabPipelines),
            _ => None,
        }
    }
}

/// What became of one deployment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeploymentOutcome {
    /// Reached the environment; `at` is the deploy time.
    Succeeded {
        /// The deploy time.
        at: Timestamp,
    },
    /// Never succeeded; `at` is when its final failing status was reported.
    Failed {
        /// When the final failing status was reported.
        at: Timestamp,
    },
    /// Not deployed yet: look again on the next sync.
    Pending,
}

impl DeploymentOutcome {
    /// Whether a later read can still change it.
    pub fn is_terminal(self) -> bool {
        !matches!(self, DeploymentOutcome::Pending)
    }
}

/// One attempt to ship a repository to an environment.
/// Identity: `(source, repository, id)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Where it was read from.
    pub source: DeploymentSource,
    /// The repository shipped.
    pub repository: RepoName,
    /// The source's id (GitHub deployment id or workflow run id).
    pub id: u64,
    /// The environment shipped to.
    pub environment: Environment,
    /// The commit shipped.
    pub sha: CommitSha,
    /// When the deployment (or workflow run) was created, not when it finished.
    pub created_at: Timestamp,
    /// What became of it, as of the latest read.
    pub outcome: DeploymentOutcome,
}

/// A GitHub deployment status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    /// `success`: the deployment reached the environment.
    Success,
    /// `failure`: the deployment failed.
    Failure,
    /// `error`: the deployment could not run.
    Error,
    /// `inactive`: superseded by a later deployment to the environment.
    Inactive,
    /// `pending`: not started.
    Pending,
    /// `queued`: waiting to run.
    Queued,
    /// `in_progress`: running.
    InProgress,
}

impl StatusState {
    /// GitHub's spelling; `None` for a state this version does not know (the caller
    /// skips such a status rather than guessing).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "success" => StatusState::Success,
            "failure" => StatusState::Failure,
            "error" => StatusState::Error,
            "inactive" => StatusState::Inactive,
            "pending" => StatusState::Pending,
            "queued" => StatusState::Queued,
            "in_progress" => StatusState::InProgress,
            _ => return None,
        })
    }
}

/// A commit with what the engine needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The commit's full sha.
    pub sha: CommitSha,
    /// Its parents' shas, first parent first (two or more for a merge).
    pub parents: Vec<CommitSha>,
    /// `commit.author.date`: survives rebases.
    pub author_date: Timestamp,
    /// The message starts with [`REVERT_MESSAGE_PREFIX`].
    pub is_revert: bool,
}

impl Commit {
    /// A commit whose `is_revert` is read from `message` (which is not kept).
    pub fn new(
        sha: CommitSha,
        parents: Vec<CommitSha>,
        author_date: Timestamp,
        message: &str,
    ) -> Self {
        Commit {
            sha,
            parents,
            author_date,
            is_revert: message.starts_with(REVERT_MESSAGE_PREFIX),
        }
    }
}

/// GitHub's compare status of `base...head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareStatus {
    /// `head` has commits that `base` has not, and `base` none that `head` has not.
    Ahead,
    /// `base` has commits that `head` has not, and `head` none (a rollback when
    /// `base` was deployed before `head`).
    Behind,
    /// Each has commits the other has not.
    Diverged,
    /// The same commit.
    Identical,
}

impl CompareStatus {
    /// GitHub's spelling; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ahead" => CompareStatus::Ahead,
            "behind" => CompareStatus::Behind,
            "diverged" => CompareStatus::Diverged,
            "identical" => CompareStatus::Identical,
            _ => return None,
        })
    }

    /// GitHub's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            CompareStatus::Ahead => "ahead",
            CompareStatus::Behind => "behind",
            CompareStatus::Diverged => "diverged",
            CompareStatus::Identical => "identical",
        }
    }
}

/// An explicit change set: what `compare(base...head)` returned. The commits'
/// details (author date, parents) are given separately as [`Commit`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The commit compared from (e.g. the previous deployment's).
    pub base: CommitSha,
    /// The commit compared to (e.g. the new deployment's).
    pub head: CommitSha,
    /// How `head` relates to `base`.
    pub status: CompareStatus,
    /// The commits in `head` and not in `base` (all pages).
    pub commits: Vec<CommitSha>,
}

/// Where an incident was read from; part of its identity.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSource {
    /// GitHub issues: an issue is an incident only when it carries one of the
    /// configured incident labels (the engine filters).
    #[default]
    GithubIssues,
    /// The push API (`POST /api/v1/incidents`): every pushed incident is one,
    /// whatever its labels.
    Push,
    /// GitLab issues the source read as incidents (of type `incident`, or with
    /// one of `gitlab.incident_labels`): the source selects them, so every one is
    /// an incident whatever the engine's labels say.
    GitlabIssues,
    /// PagerDuty: the incidents of a configured service (identity: PagerDuty's
    /// `incident_number`, unique in its account).
    PagerDuty,
}

impl IncidentSource {
    /// The stable snake_case name (as serialized and stored).
    pub const fn as_str(self) -> &'static str {
        match self {
            IncidentSource::GithubIssues => "github_issues",
            IncidentSource::Push => "push",
            IncidentSource::GitlabIssues => "gitlab_issues",
            IncidentSource::PagerDuty => "pagerduty",
        }
    }

    /// The source named by [`IncidentSource::as_str`]; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "github_issues" => Some(IncidentSource::GithubIssues),
            "push" => Some(IncidentSource::Push),
            "gitlab_issues" => Some(IncidentSource::GitlabIssues),
            "pagerduty" => Some(IncidentSource::PagerDuty),
            _ => None,
        }
    }

    /// Whether an incident of this source counts only with an incident label
    /// (`incident_labels`); the others are incidents by being reported.
    pub const fn selected_by_label(self) -> bool {
        matches!(self, IncidentSource::GithubIssues)
    }
}

/// An issue that may be an incident (the engine filters GitHub issues by the
/// configured labels), or an incident reported as such (the push API).
/// Identity: `(source, repository, number)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Where it was read from.
    pub source: IncidentSource,
    /// The repository the issue is in.
    pub repository: RepoName,
    /// The issue number (for pushed incidents: the number the store gave the
    /// client's id).
    pub number: u64,
    /// When the issue was opened: the incident's start.
    pub created_at: Timestamp,
    /// `None` while open (a reopened issue has none until closed again).
    pub closed_at: Option<Timestamp>,
    /// The issue's label names, as given (the engine compares them case-insensitively).
    pub labels: Vec<String>,
    /// The commit the issue names as its cause, if any (the source reads it from
    /// the body). Without one, or when it matches no deployed commit, the engine
    /// blames the latest deployment before the incident.
    pub root_cause: Option<ShaPrefix>,
}

/// What an incident that names no single repository was reported against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentScope {
    /// A team (the push API's `team`; an incident tool's service mapped to a
    /// team): the candidates are the repositories configured with that team.
    Team(Team),
    /// A set of repositories (an incident tool's service mapped to a list of
    /// repositories), sorted by name and without repeats.
    Repositories(Vec<RepoName>),
}

impl IncidentScope {
    /// The scope of `repositories`, sorted and without repeats; `None` when the
    /// list is empty.
    pub fn repositories(mut repositories: Vec<RepoName>) -> Option<Self> {
        repositories.sort();
        repositories.dedup();
        (!repositories.is_empty()).then_some(IncidentScope::Repositories(repositories))
    }
}

/// An incident reported against a team or a set of repositories rather than
/// one repository. The engine gives it to one of its candidate repositories
/// (the team's repositories, or the listed ones): the one holding its root
/// cause, else the one whose production deployment was the latest at its
/// creation (rule 2 over the candidates). Identity: `(source, number)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedIncident {
    /// Where it was read from.
    pub source: IncidentSource,
    /// What it was reported against.
    pub scope: IncidentScope,
    /// Its number, unique within its source (pushed incidents: the number the
    /// store gave the client's id; PagerDuty: the `incident_number`).
    pub number: u64,
    /// When it was opened.
    pub created_at: Timestamp,
    /// `None` while open.
    pub closed_at: Option<Timestamp>,
    /// The commit named as its cause, if any.
    pub root_cause: Option<ShaPrefix>,
}

/// A merged pull request, for rework detection and PR-based lead-time starts.
/// Identity: `(repository, number)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// The repository the pull request is in.
    pub repository: RepoName,
    /// The pull request number.
    pub number: u64,
    /// When it was merged; `None` if it was not (the engine then ignores it).
    pub merged_at: Option<Timestamp>,
    /// The commit its merge put on the base branch (merge, squash or rebase
    /// result); `None` when the source did not give one.
    pub merge_commit_sha: Option<CommitSha>,
    /// The pull request's label names, as given (rework labels are matched
    /// case-insensitively).
    pub labels: Vec<String>,
    /// The PR's own commits (they reach the branch in merge-commit workflows).
    pub commits: Vec<CommitSha>,
    /// The earliest author date among the PR's commits.
    pub first_commit_at: Option<Timestamp>,
    /// When it was opened (`createdAt`); `None` when the source did not give it.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// When its first review was submitted (any state but pending); `None` when
    /// it has none or the source did not read it. A store keeps a first review
    /// once written: writing the pull request again with `None` leaves it.
    #[serde(default)]
    pub first_review_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp(s)
    }

    #[test]
    fn revert_messages_are_rework() {
        let sha = CommitSha::from_bytes([1; 20]);
        assert!(Commit::new(sha, vec![], t(0), "Revert \"Add x\"\n\nThis reverts").is_revert);
        assert!(!Commit::new(sha, vec![], t(0), "Reverting things").is_revert);
    }

    #[test]
    fn deployment_sources_are_named_alike_everywhere() {
        for source in DeploymentSource::ALL {
            assert_eq!(DeploymentSource::parse(source.as_str()), Some(source));
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(json, format!("\"{}\"", source.as_str()));
        }
        assert_eq!(DeploymentSource::parse("argo_cd"), None);
    }
}
