//! The normalized events: deployments (with their outcome), commits, compare
//! results, incidents and pull requests, plus the pure rules that turn a source's
//! raw states (deployment statuses, workflow-run conclusions, issue bodies) into them.

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

/// The Deployments-API rule: successful once any status is `success` (deploy time =
/// the earliest `success`); failed when there is no `success` and the latest
/// non-`inactive` status is `failure` or `error`; otherwise pending.
/// `statuses` may come in any order.
pub fn outcome_from_statuses(statuses: &[(StatusState, Timestamp)]) -> DeploymentOutcome {
    let first_success = statuses
        .iter()
        .filter(|(state, _)| *state == StatusState::Success)
        .map(|(_, at)| *at)
        .min();
    if let Some(at) = first_success {
        return DeploymentOutcome::Succeeded { at };
    }
    // Latest by time; among equal times the later entry wins (sources list
    // statuses oldest first, GitHub newest first, so ties are rare and harmless).
    let latest = statuses
        .iter()
        .filter(|(state, _)| *state != StatusState::Inactive)
        .max_by_key(|(_, at)| *at);
    match latest {
        Some((StatusState::Failure | StatusState::Error, at)) => {
            DeploymentOutcome::Failed { at: *at }
        }
        _ => DeploymentOutcome::Pending,
    }
}

/// The workflow-run rule: `completed` + `success` is a deployment at `updated_at`;
/// `failure` is a failed attempt; anything else (still running, cancelled, skipped)
/// is not a deployment yet (`Pending`) — a cancelled run is never retried by
/// GitHub, but it also never deployed, so it simply never counts.
pub fn outcome_from_workflow_run(
    status: &str,
    conclusion: Option<&str>,
    updated_at: Timestamp,
) -> DeploymentOutcome {
    match (status, conclusion) {
        ("completed", Some("success")) => DeploymentOutcome::Succeeded { at: updated_at },
        ("completed", Some("failure")) => DeploymentOutcome::Failed { at: updated_at },
        _ => DeploymentOutcome::Pending,
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

/// The most of an issue body the root-cause scan reads; a hostile body cannot make
/// it do unbounded work.
pub const MAX_SCANNED_BODY_BYTES: usize = 64 * 1024;

/// Finds a line `root cause: <sha>` (case-insensitive; the sha may be wrapped in
/// backticks and followed by punctuation) and returns the sha prefix. The first
/// line that names a valid 7-40 hex digit sha wins.
pub fn parse_root_cause(body: &str) -> Option<ShaPrefix> {
    const KEY: &str = "root cause:";
    let mut end = body.len().min(MAX_SCANNED_BODY_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].lines().find_map(|line| {
        let line = line.trim_start();
        let head = line.get(..KEY.len())?;
        if !head.eq_ignore_ascii_case(KEY) {
            return None;
        }
        let token = line[KEY.len()..].split_whitespace().next()?;
        let token = token
            .trim_matches('`')
            .trim_end_matches(['.', ',', ';', ')', '`']);
        ShaPrefix::parse(token).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp(s)
    }

    #[test]
    fn earliest_success_is_the_deploy_time() {
        use StatusState::*;
        let cases: &[(&[(StatusState, Timestamp)], DeploymentOutcome)] = &[
            (&[], DeploymentOutcome::Pending),
            (
                &[(Pending, t(1)), (InProgress, t(2))],
                DeploymentOutcome::Pending,
            ),
            (
                &[(Success, t(5)), (Success, t(3)), (Inactive, t(9))],
                DeploymentOutcome::Succeeded { at: t(3) },
            ),
            (
                &[(Failure, t(2)), (Success, t(4))],
                DeploymentOutcome::Succeeded { at: t(4) },
            ),
            (
                &[(Pending, t(1)), (Failure, t(2))],
                DeploymentOutcome::Failed { at: t(2) },
            ),
            (
                &[(Error, t(2)), (Inactive, t(5))],
                DeploymentOutcome::Failed { at: t(2) },
            ),
            (
                &[(Failure, t(2)), (Queued, t(3))],
                DeploymentOutcome::Pending,
            ),
            (&[(Inactive, t(2))], DeploymentOutcome::Pending),
        ];
        for (statuses, expected) in cases {
            assert_eq!(outcome_from_statuses(statuses), *expected, "{statuses:?}");
        }
    }

    #[test]
    fn workflow_run_conclusions() {
        assert_eq!(
            outcome_from_workflow_run("completed", Some("success"), t(7)),
            DeploymentOutcome::Succeeded { at: t(7) }
        );
        assert_eq!(
            outcome_from_workflow_run("completed", Some("failure"), t(7)),
            DeploymentOutcome::Failed { at: t(7) }
        );
        assert_eq!(
            outcome_from_workflow_run("in_progress", None, t(7)),
            DeploymentOutcome::Pending
        );
        assert_eq!(
            outcome_from_workflow_run("completed", Some("cancelled"), t(7)),
            DeploymentOutcome::Pending
        );
    }

    #[test]
    fn root_cause_lines() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Root Cause: abc1234", Some("abc1234")),
            (
                "summary\n  root cause: `ABCDEF0123`.\nmore",
                Some("abcdef0123"),
            ),
            ("root cause: abc123", None),
            (
                "root cause: not-a-sha\nroot cause: 1234567",
                Some("1234567"),
            ),
            ("the root cause: abc1234", None),
            ("no such line", None),
        ];
        for (body, expected) in cases {
            let got = parse_root_cause(body);
            assert_eq!(got.as_ref().map(ShaPrefix::as_str), *expected, "{body:?}");
        }
    }

    #[test]
    fn revert_messages_are_rework() {
        let sha = CommitSha::from_bytes([1; 20]);
        assert!(Commit::new(sha, vec![], t(0), "Revert \"Add x\"\n\nThis reverts").is_revert);
        assert!(!Commit::new(sha, vec![], t(0), "Reverting things").is_revert);
    }
}
