//! The normalized events: deployments (with their outcome), commits, compare
//! results, incidents and pull requests. How a source's raw states (deployment
//! statuses, workflow-run conclusions, issue bodies) become them is the source's
//! reading, not the vocabulary's.

use super::{CommitSha, Environment, RepoName, ShaPrefix, Timestamp};
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
}

impl DeploymentSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeploymentSource::GithubDeployments => "github_deployments",
            DeploymentSource::GithubWorkflowRuns => "github_workflow_runs",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "github_deployments" => Some(DeploymentSource::GithubDeployments),
            "github_workflow_runs" => Some(DeploymentSource::GithubWorkflowRuns),
            _ => None,
        }
    }
}

/// What became of one deployment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeploymentOutcome {
    /// Reached the environment; `at` is the deploy time.
    Succeeded { at: Timestamp },
    /// Never succeeded; `at` is when its final failing status was reported.
    Failed { at: Timestamp },
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
    pub source: DeploymentSource,
    pub repository: RepoName,
    /// The source's id (GitHub deployment id or workflow run id).
    pub id: u64,
    pub environment: Environment,
    pub sha: CommitSha,
    pub created_at: Timestamp,
    pub outcome: DeploymentOutcome,
}

/// A GitHub deployment status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    Success,
    Failure,
    Error,
    Inactive,
    Pending,
    Queued,
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
    pub sha: CommitSha,
    pub parents: Vec<CommitSha>,
    /// `commit.author.date`: survives rebases.
    pub author_date: Timestamp,
    /// The message starts with [`REVERT_MESSAGE_PREFIX`].
    pub is_revert: bool,
}

impl Commit {
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
    Ahead,
    Behind,
    Diverged,
    Identical,
}

impl CompareStatus {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ahead" => CompareStatus::Ahead,
            "behind" => CompareStatus::Behind,
            "diverged" => CompareStatus::Diverged,
            "identical" => CompareStatus::Identical,
            _ => return None,
        })
    }

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
    pub base: CommitSha,
    pub head: CommitSha,
    pub status: CompareStatus,
    /// The commits in `head` and not in `base` (all pages).
    pub commits: Vec<CommitSha>,
}

/// An issue that may be an incident (the engine filters by the configured labels).
/// Identity: `(repository, number)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub repository: RepoName,
    pub number: u64,
    pub created_at: Timestamp,
    /// `None` while open (a reopened issue has none until closed again).
    pub closed_at: Option<Timestamp>,
    pub labels: Vec<String>,
    pub root_cause: Option<ShaPrefix>,
}

/// A merged pull request, for rework detection and PR-based lead-time starts.
/// Identity: `(repository, number)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub repository: RepoName,
    pub number: u64,
    pub merged_at: Option<Timestamp>,
    pub merge_commit_sha: Option<CommitSha>,
    pub labels: Vec<String>,
    /// The PR's own commits (they reach the branch in merge-commit workflows).
    pub commits: Vec<CommitSha>,
    /// The earliest author date among the PR's commits.
    pub first_commit_at: Option<Timestamp>,
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
}
