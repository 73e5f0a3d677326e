//! The simulated organisation's data: [`Org`] and everything in it (repositories,
//! commits, deployments and their statuses, workflow runs, issues, pull requests,
//! people, teams), plus the mutation methods tests use while a server is running.
//!
//! The data is plain and public so that a test can compute the truth on its own.
//! It is kept compact (commits refer to parents by index, texts are derived from
//! small numbers when possible) because a 200-repository, one-year organisation
//! holds hundreds of thousands of commits. Nothing here speaks HTTP or JSON.

use crate::domain::{
    CommitSha, DeploymentOutcome, ShaPrefix, StatusState, Timestamp, REVERT_MESSAGE_PREFIX,
};
use crate::names;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// Marks an absent parent slot in [`SimCommit`].
pub const NO_PARENT: u32 = u32::MAX;

/// The `task` of every simulated deployment (GitHub's default).
pub const DEPLOY_TASK: &str = "deploy";

/// The label that makes an issue an incident.
pub const INCIDENT_LABEL: &str = "incident";

/// The label that makes a merged pull request rework.
pub const HOTFIX_LABEL: &str = "hotfix";

/// The GitHub Actions bot (its real login and id), creator of workflow deployments.
pub const ACTIONS_BOT_LOGIN: &str = "github-actions[bot]";

/// A person (or bot) who authors commits, opens issues and creates deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// GitHub's user id.
    pub id: u64,
    /// The login, e.g. `octocat`.
    pub login: String,
    /// The display name, as in commit authors.
    pub name: String,
    /// The commit email (GitHub's `noreply` form).
    pub email: String,
    /// Rendered with `"type": "Bot"` instead of `"User"`.
    pub bot: bool,
}

/// A team owning repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTeam {
    /// GitHub's team id.
    pub id: u64,
    /// The display name; [`SimTeam::slug`] derives the slug.
    pub name: String,
}

impl SimTeam {
    /// GitHub's slug: the name lowercased with spaces as dashes.
    pub fn slug(&self) -> String {
        self.name.to_ascii_lowercase().replace(' ', "-")
    }
}

/// Where a repository's deployments come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploySource {
    /// GitHub's Deployments API (deployments with statuses).
    Deployments,
    /// Runs of a GitHub Actions workflow on the default branch.
    WorkflowRuns(SimWorkflow),
}

/// The deploy workflow of a workflow-run repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimWorkflow {
    /// GitHub's workflow id (`actions/workflows/{id}/runs` also accepts the file
    /// name or the path).
    pub id: u64,
    /// Display name, e.g. `Deploy`.
    pub name: String,
    /// File name under `.github/workflows/`, e.g. `deploy.yml`.
    pub file: String,
    /// When the workflow was added (the repository's creation).
    pub created_at: Timestamp,
}

impl SimWorkflow {
    /// `.github/workflows/<file>`, as GitHub reports a workflow's `path`.
    pub fn path(&self) -> String {
        format!(".github/workflows/{}", self.file)
    }
}

/// A commit message, stored compactly and rendered by [`SimRepo::commit_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitMessage {
    /// The repository's first commit.
    Initial,
    /// A change with generated subject number `.0` (see `names::subject`).
    Change(u32),
    /// The squash commit of pull request index `.0` in [`SimRepo::pulls`].
    Squash(u32),
    /// The merge commit of pull request index `.0`.
    Merge(u32),
    /// `Revert "<subject>"` of the commit with index `.0`.
    Revert(u32),
    /// Any text (mutations).
    Custom(Box<str>),
}

/// One commit. Parents are indices into [`SimRepo::commits`] and always smaller
/// than the commit's own index (the list is topologically ordered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCommit {
    /// The commit's sha, unique within the repository.
    pub sha: CommitSha,
    /// First and second parent; [`NO_PARENT`] when absent.
    pub parent_slots: [u32; 2],
    /// `commit.author.date`: when the change was written (may be skewed).
    pub author_date: Timestamp,
    /// `commit.committer.date`: when it reached the branch.
    pub committer_date: Timestamp,
    /// Index into [`Org::people`].
    pub author: u32,
    /// The message, rendered by [`SimRepo::commit_message`].
    pub message: CommitMessage,
}

impl SimCommit {
    /// Parent indices, first parent first.
    pub fn parents(&self) -> impl Iterator<Item = u32> + '_ {
        self.parent_slots
            .iter()
            .copied()
            .filter(|p| *p != NO_PARENT)
    }

    /// Whether it has two parents.
    pub fn is_merge(&self) -> bool {
        self.parent_slots[1] != NO_PARENT
    }

    /// Whether the web UI made it (squash and merge commits): its committer is
    /// GitHub's `web-flow` rather than the author.
    pub fn committed_by_github(&self) -> bool {
        matches!(
            self.message,
            CommitMessage::Squash(_) | CommitMessage::Merge(_)
        )
    }
}

/// A branch other than the default one (the feature branches of open PRs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBranch {
    /// The branch name, e.g. `feature/fix-the-checkout-flow-12`.
    pub name: String,
    /// Commit index of its head.
    pub head: u32,
}

/// One deployment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimStatus {
    /// GitHub's status id.
    pub id: u64,
    /// The state it reports.
    pub state: StatusState,
    /// When it was reported.
    pub created_at: Timestamp,
}

/// A Deployments-API deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDeployment {
    /// GitHub's deployment id.
    pub id: u64,
    /// The commit deployed.
    pub sha: CommitSha,
    /// The ref it was requested for: the default branch, or the sha for rollbacks.
    pub git_ref: Arc<str>,
    /// The environment name, e.g. [`crate::PRODUCTION`] or [`crate::STAGING`].
    pub environment: Arc<str>,
    /// When the deployment was created.
    pub created_at: Timestamp,
    /// Index into [`Org::people`].
    pub creator: u32,
    /// Generated as a rollback (an earlier, already deployed sha).
    pub rollback: bool,
    /// Oldest first (GitHub lists them newest first).
    pub statuses: Vec<SimStatus>,
}

impl SimDeployment {
    /// The outcome the simulator gave the deployment, read from its statuses
    /// (the simulator's own reading of GitHub's states, not the collector's): it
    /// went out at its first `success`, even if a later status says otherwise; a
    /// deployment that never succeeded failed when its newest status that is not
    /// `inactive` (GitHub's mark of a superseded deployment) is `failure` or
    /// `error`; anything else is still under way.
    pub fn outcome(&self) -> DeploymentOutcome {
        if let Some(at) = self
            .statuses
            .iter()
            .filter(|s| s.state == StatusState::Success)
            .map(|s| s.created_at)
            .min()
        {
            return DeploymentOutcome::Succeeded { at };
        }
        let newest = self
            .statuses
            .iter()
            .filter(|s| s.state != StatusState::Inactive)
            .max_by_key(|s| s.created_at);
        match newest {
            Some(s) if matches!(s.state, StatusState::Failure | StatusState::Error) => {
                DeploymentOutcome::Failed { at: s.created_at }
            }
            _ => DeploymentOutcome::Pending,
        }
    }

    /// GitHub's `updated_at`: the latest status, or creation.
    pub fn updated_at(&self) -> Timestamp {
        self.statuses
            .iter()
            .map(|s| s.created_at)
            .max()
            .unwrap_or(self.created_at)
            .max(self.created_at)
    }

    /// The latest status (by creation order).
    pub fn latest_status(&self) -> Option<&SimStatus> {
        self.statuses.last()
    }
}

/// A workflow run's triggering event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEvent {
    /// `push`: a push to the branch.
    Push,
    /// `pull_request`: activity on a pull request.
    PullRequest,
    /// `workflow_dispatch`: started by hand (the simulator's rollbacks).
    WorkflowDispatch,
}

impl RunEvent {
    /// GitHub's spelling, e.g. `workflow_dispatch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunEvent::Push => "push",
            RunEvent::PullRequest => "pull_request",
            RunEvent::WorkflowDispatch => "workflow_dispatch",
        }
    }
}

/// A workflow run's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// `queued`: waiting for a runner.
    Queued,
    /// `in_progress`: running.
    InProgress,
    /// `completed`: finished; the run has a conclusion.
    Completed,
}

impl RunStatus {
    /// GitHub's spelling, e.g. `in_progress`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::Completed => "completed",
        }
    }
}

/// A completed workflow run's `conclusion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunConclusion {
    /// `success`: the run deployed.
    Success,
    /// `failure`: a failed deployment attempt.
    Failure,
    /// `cancelled`: stopped before it finished; deployed nothing.
    Cancelled,
}

impl RunConclusion {
    /// GitHub's spelling, e.g. `cancelled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunConclusion::Success => "success",
            RunConclusion::Failure => "failure",
            RunConclusion::Cancelled => "cancelled",
        }
    }
}

/// A run of the repository's deploy workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimWorkflowRun {
    /// GitHub's run id.
    pub id: u64,
    /// The run's number within its workflow (from 1).
    pub run_number: u32,
    /// The branch it ran on.
    pub head_branch: Arc<str>,
    /// The commit it ran on.
    pub head_sha: CommitSha,
    /// What triggered it.
    pub event: RunEvent,
    /// Where it is.
    pub status: RunStatus,
    /// `None` unless completed.
    pub conclusion: Option<RunConclusion>,
    /// When it was triggered.
    pub created_at: Timestamp,
    /// When it started running (at or after `created_at`).
    pub run_started_at: Timestamp,
    /// When it last changed: for a completed run, when it finished (its deploy
    /// time when it succeeded).
    pub updated_at: Timestamp,
    /// Index into [`Org::people`].
    pub actor: u32,
    /// Generated as a rollback (an earlier, already deployed sha).
    pub rollback: bool,
}

impl SimWorkflowRun {
    /// What the run did, by the simulator's own reading (ignoring the branch):
    /// a completed run that succeeded deployed when it last changed, one that
    /// failed was a failed attempt then; a run still going, cancelled or skipped
    /// deployed nothing.
    pub fn outcome(&self) -> DeploymentOutcome {
        match (self.status.as_str(), self.conclusion) {
            ("completed", Some(RunConclusion::Success)) => DeploymentOutcome::Succeeded {
                at: self.updated_at,
            },
            ("completed", Some(RunConclusion::Failure)) => DeploymentOutcome::Failed {
                at: self.updated_at,
            },
            _ => DeploymentOutcome::Pending,
        }
    }
}

/// An issue that is not a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimIssue {
    /// GitHub's issue id.
    pub id: u64,
    /// The issue number, from the sequence it shares with pull requests.
    pub number: u64,
    /// The title.
    pub title: String,
    /// The body; `None` for an issue opened without one.
    pub body: Option<String>,
    /// The label names (e.g. [`INCIDENT_LABEL`]).
    pub labels: Vec<String>,
    /// Index into [`Org::people`].
    pub user: u32,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it last changed (GitHub's `updated_at`).
    pub updated_at: Timestamp,
    /// Set while closed; a reopened issue has none until closed again.
    pub closed_at: Option<Timestamp>,
    /// The latest reopening, if it was ever reopened.
    pub reopened_at: Option<Timestamp>,
    /// The number of comments GitHub reports (the simulator has no comment bodies).
    pub comments: u32,
}

impl SimIssue {
    /// Whether it is open (never closed, or reopened since).
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// Case-insensitive label test.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l.eq_ignore_ascii_case(label))
    }

    /// Whether it carries the `incident` label.
    pub fn is_incident(&self) -> bool {
        self.has_label(INCIDENT_LABEL)
    }

    /// The root cause the body names, by the simulator's own reading of the
    /// lines it writes (`root cause: <sha>`, ``Root Cause: `<sha>`.``,
    /// `ROOT CAUSE: <SHA>`): the first line whose start reads "root cause:" in
    /// any case, its first word without backticks and a closing period, when
    /// that is 7 to 40 hex digits.
    pub fn root_cause(&self) -> Option<ShaPrefix> {
        const LINE_START: &str = "root cause:";
        self.body.as_deref()?.lines().find_map(|line| {
            let line = line.trim_start();
            let start = line.get(..LINE_START.len())?;
            if !start.eq_ignore_ascii_case(LINE_START) {
                return None;
            }
            let word = line[LINE_START.len()..].split_whitespace().next()?;
            let word = word.trim_end_matches('.').trim_matches('`');
            ShaPrefix::parse(word).ok()
        })
    }

    /// GitHub's `state_reason`.
    pub fn state_reason(&self) -> Option<&'static str> {
        match (self.closed_at, self.reopened_at) {
            (Some(_), _) => Some("completed"),
            (None, Some(_)) => Some("reopened"),
            (None, None) => None,
        }
    }
}

/// A text stored as a generated index or as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// A generated subject (see `names::subject`).
    Subject(u32),
    /// This text (mutations).
    Custom(Box<str>),
}

impl Text {
    /// The text itself.
    pub fn render(&self) -> String {
        match self {
            Text::Subject(i) => names::subject(*i),
            Text::Custom(text) => text.to_string(),
        }
    }
}

/// How a pull request reached the default branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeStyle {
    /// One new commit on the branch; the PR's own commits stay off it.
    Squash,
    /// A two-parent merge commit; the PR's commits become part of the branch.
    MergeCommit,
}

/// A pull request (open, closed or merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPull {
    /// The pull request id (`/pulls`).
    pub id: u64,
    /// Its id as an issue (`/issues`).
    pub issue_id: u64,
    /// The pull request number, from the sequence it shares with issues.
    pub number: u64,
    /// The title.
    pub title: Text,
    /// The label names (e.g. [`HOTFIX_LABEL`]).
    pub labels: Vec<String>,
    /// Index into [`Org::people`].
    pub user: u32,
    /// The PR's own commits: a contiguous range of [`SimRepo::commits`] indices,
    /// oldest first; the last is the head.
    pub commits: Range<u32>,
    /// The commit the branch was forked from.
    pub base: u32,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was closed (merged or abandoned); `None` while open.
    pub closed_at: Option<Timestamp>,
    /// When it was merged; `None` unless merged.
    pub merged_at: Option<Timestamp>,
    /// Index of the commit the merge made on the default branch.
    pub merge_commit: Option<u32>,
    /// How it was (or would be) merged.
    pub merge_style: MergeStyle,
    /// Whether it is a draft.
    pub draft: bool,
    /// The number of comments GitHub reports (the simulator has no comment bodies).
    pub comments: u32,
    /// When its first review was submitted; `None` without a review (hotfixes,
    /// pull requests still open, and about one in five of the others: GitHub
    /// serves it as one `APPROVED` review by another person). Drawn from the
    /// pull request's id, not from the generator's random stream, so that the
    /// rest of the organisation does not depend on it.
    pub first_review_at: Option<Timestamp>,
}

/// One pull request in this many (by id) gets no review.
const UNREVIEWED_ONE_IN: u64 = 5;

/// Per mille of the time from opening to close by which the first review has
/// come at the latest (it comes before the merge).
const REVIEW_SPAN_PER_MILLE: u64 = 800;

impl SimPull {
    /// The first review time the generator gives this pull request (see
    /// [`SimPull::first_review_at`]); needs the final id.
    pub fn drawn_first_review(&self) -> Option<Timestamp> {
        // SplitMix64 of the id: a fixed, well-spread draw.
        let mut z = self.id.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if self.has_label(HOTFIX_LABEL) || z % UNREVIEWED_ONE_IN == 0 {
            return None;
        }
        let opened = self.created_at.0;
        let end = self.closed_at?.0;
        let per_mille = (z >> 16) % REVIEW_SPAN_PER_MILLE;
        Some(Timestamp(
            opened + (end - opened).max(0) * per_mille as i64 / 1000,
        ))
    }

    /// Case-insensitive label test.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l.eq_ignore_ascii_case(label))
    }

    /// Index of the head commit.
    pub fn head(&self) -> u32 {
        self.commits.end.saturating_sub(1).max(self.commits.start)
    }

    /// Whether it is open (neither merged nor abandoned).
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// The head branch name, e.g. `feature/fix-the-checkout-flow-12`.
    pub fn branch(&self) -> String {
        let slug = match &self.title {
            Text::Subject(i) => names::slug(*i),
            Text::Custom(text) => text
                .split_whitespace()
                .take(5)
                .map(|w| {
                    w.chars()
                        .filter(char::is_ascii_alphanumeric)
                        .map(|c| c.to_ascii_lowercase())
                        .collect::<String>()
                })
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("-"),
        };
        let prefix = if self.has_label(HOTFIX_LABEL) {
            "hotfix"
        } else {
            "feature"
        };
        format!("{prefix}/{slug}-{}", self.number)
    }
}

/// A repository and everything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRepo {
    /// GitHub's repository id (`/repositories/{id}/...`).
    pub id: u64,
    /// The name without the owner, e.g. `api`.
    pub name: String,
    /// Index into [`Org::teams`].
    pub team: usize,
    /// When it was created (its first commit's date).
    pub created_at: Timestamp,
    /// The default branch's name (`main`).
    pub default_branch: String,
    /// Where its deployments come from.
    pub source: DeploySource,
    /// Every commit, parents before children.
    pub commits: Vec<SimCommit>,
    /// Index of the default branch's head.
    pub main_head: u32,
    /// Other branches (open pull requests' heads).
    pub branches: Vec<SimBranch>,
    /// Oldest first.
    pub deployments: Vec<SimDeployment>,
    /// Oldest first.
    pub workflow_runs: Vec<SimWorkflowRun>,
    /// Issues that are not pull requests, oldest first.
    pub issues: Vec<SimIssue>,
    /// Oldest first.
    pub pulls: Vec<SimPull>,
    /// Archived (read-only): listed with `"archived": true`.
    pub archived: bool,
    /// A fork: listed with `"fork": true`.
    pub fork: bool,
    /// Listed as empty (`"size": 0`), as GitHub lists a repository without a
    /// commit; its endpoints still serve what it holds.
    pub empty: bool,
    /// Its topics, as listed (lowercase letters, digits and `-`).
    pub topics: Vec<String>,
    /// Teams with access besides its own team (which has `admin`): index into
    /// [`Org::teams`] and GitHub's role name (`admin`, `maintain`, `push`,
    /// `triage`, `pull`).
    pub other_teams: Vec<(usize, String)>,
    pub(crate) sha_index: HashMap<CommitSha, u32, ShaHashBuilder>,
}

/// Hashes a [`CommitSha`] by its first eight bytes. Shas are uniformly
/// distributed already, so the general-purpose (and slower) SipHash adds nothing;
/// the index only ever holds the simulator's own shas, so no one can flood it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShaHashBuilder;

impl std::hash::BuildHasher for ShaHashBuilder {
    type Hasher = ShaHasher;
    fn build_hasher(&self) -> ShaHasher {
        ShaHasher(0)
    }
}

/// See [`ShaHashBuilder`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ShaHasher(u64);

impl std::hash::Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
        self.0 = self.0.rotate_left(5);
    }
}

impl SimRepo {
    /// The index of the commit with this sha.
    pub fn commit_index(&self, sha: &CommitSha) -> Option<u32> {
        self.sha_index.get(sha).copied()
    }

    /// The commit with this sha.
    pub fn commit(&self, sha: &CommitSha) -> Option<&SimCommit> {
        self.commit_index(sha).map(|i| &self.commits[i as usize])
    }

    /// The default branch's head sha.
    pub fn main_head_sha(&self) -> CommitSha {
        self.commits[self.main_head as usize].sha
    }

    /// The parent shas of commit `index`, first parent first.
    pub fn parent_shas(&self, index: u32) -> Vec<CommitSha> {
        self.commits[index as usize]
            .parents()
            .map(|p| self.commits[p as usize].sha)
            .collect()
    }

    /// The full message of commit `index`.
    pub fn commit_message(&self, index: u32) -> String {
        let commit = &self.commits[index as usize];
        match &commit.message {
            CommitMessage::Initial => "Initial commit".to_owned(),
            CommitMessage::Change(subject) => names::subject(*subject),
            CommitMessage::Squash(pull) => match self.pulls.get(*pull as usize) {
                Some(pr) => format!("{} (#{})", pr.title.render(), pr.number),
                None => "Squashed change".to_owned(),
            },
            CommitMessage::Merge(pull) => match self.pulls.get(*pull as usize) {
                Some(pr) => format!(
                    "Merge pull request #{} from {}\n\n{}",
                    pr.number,
                    pr.branch(),
                    pr.title.render()
                ),
                None => "Merge branch".to_owned(),
            },
            CommitMessage::Revert(reverted) => {
                let subject = self.commit_subject(*reverted);
                let sha = self
                    .commits
                    .get(*reverted as usize)
                    .map(|c| c.sha.to_string())
                    .unwrap_or_default();
                format!("{REVERT_MESSAGE_PREFIX}{subject}\"\n\nThis reverts commit {sha}.")
            }
            CommitMessage::Custom(text) => text.to_string(),
        }
    }

    /// The first line of commit `index`'s message.
    pub fn commit_subject(&self, index: u32) -> String {
        let message = match self.commits.get(index as usize) {
            // A revert's subject is built from the reverted commit's; to keep this
            // cheap and bounded, nested reverts stop at one level.
            Some(SimCommit {
                message: CommitMessage::Revert(inner),
                ..
            }) => {
                return format!("{REVERT_MESSAGE_PREFIX}{}\"", self.first_line_plain(*inner));
            }
            Some(_) => self.commit_message(index),
            None => return String::new(),
        };
        message.lines().next().unwrap_or_default().to_owned()
    }

    fn first_line_plain(&self, index: u32) -> String {
        match self.commits.get(index as usize).map(|c| &c.message) {
            Some(CommitMessage::Revert(_)) => "Revert".to_owned(),
            Some(_) => self
                .commit_message(index)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        }
    }

    /// The deployment with this id.
    pub fn deployment(&self, id: u64) -> Option<&SimDeployment> {
        self.deployments
            .binary_search_by_key(&id, |d| d.id)
            .ok()
            .map(|i| &self.deployments[i])
            .or_else(|| self.deployments.iter().find(|d| d.id == id))
    }

    /// The issue (not PR) with this number.
    pub fn issue(&self, number: u64) -> Option<&SimIssue> {
        self.issues.iter().find(|i| i.number == number)
    }

    /// The pull request with this number.
    pub fn pull(&self, number: u64) -> Option<&SimPull> {
        self.pulls.iter().find(|p| p.number == number)
    }

    /// The workflow of a workflow-run repository.
    pub fn workflow(&self) -> Option<&SimWorkflow> {
        match &self.source {
            DeploySource::WorkflowRuns(w) => Some(w),
            DeploySource::Deployments => None,
        }
    }

    /// The next free issue/PR number (they share one sequence, as on GitHub).
    pub fn next_number(&self) -> u64 {
        let issues = self.issues.iter().map(|i| i.number);
        let pulls = self.pulls.iter().map(|p| p.number);
        issues.chain(pulls).max().unwrap_or(0) + 1
    }

    /// Appends a commit and indexes its sha. A sha already present (a collision of
    /// fake shas, astronomically rare) is perturbed until unique, so read the sha
    /// back from the returned index.
    pub(crate) fn push_commit(&mut self, mut commit: SimCommit) -> u32 {
        let index = u32::try_from(self.commits.len()).unwrap_or(NO_PARENT - 1);
        while self.sha_index.contains_key(&commit.sha) {
            let mut bytes = *commit.sha.as_bytes();
            bytes[19] = bytes[19].wrapping_add(1);
            bytes[0] = bytes[0].wrapping_add(bytes[19]);
            commit.sha = CommitSha::from_bytes(bytes);
        }
        self.sha_index.insert(commit.sha, index);
        self.commits.push(commit);
        index
    }
}

/// Counts of what an [`Org`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrgStats {
    /// Repositories.
    pub repositories: usize,
    /// Commits (all of them, not only the default branch's).
    pub commits: usize,
    /// Deployments-API deployments.
    pub deployments: usize,
    /// Statuses of those deployments.
    pub deployment_statuses: usize,
    /// Workflow runs.
    pub workflow_runs: usize,
    /// Issues that are not pull requests.
    pub issues: usize,
    /// Pull requests.
    pub pull_requests: usize,
}

/// Monotonic id counters, so that every object of a kind has a unique id and ids
/// grow with creation time within a repository, as on GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    pub repo: u64,
    pub deployment: u64,
    pub status: u64,
    pub run: u64,
    pub issue: u64,
    pub pull: u64,
    pub workflow: u64,
    pub person: u64,
    pub team: u64,
}

/// Starting values of [`Ids`]: realistic magnitudes for GitHub ids.
impl Default for Ids {
    fn default() -> Self {
        Ids {
            repo: 700_000_001,
            deployment: 1_500_000_001,
            status: 3_000_000_001,
            run: 9_000_000_001,
            issue: 2_400_000_001,
            pull: 1_800_000_001,
            workflow: 80_000_001,
            person: 5_000_001,
            team: 9_100_001,
        }
    }
}

/// The ids one block spans, per kind: far more objects of a kind than one
/// simulated organisation holds.
pub const ID_BLOCK_SPAN: u64 = 50_000_000;

impl Ids {
    /// The starting ids of block `block`: [`Ids::default`] moved up by `block`
    /// spans.
    fn in_block(block: u64) -> Ids {
        let offset = block.saturating_mul(ID_BLOCK_SPAN);
        let start = Ids::default();
        Ids {
            repo: start.repo + offset,
            deployment: start.deployment + offset,
            status: start.status + offset,
            run: start.run + offset,
            issue: start.issue + offset,
            pull: start.pull + offset,
            workflow: start.workflow + offset,
            person: start.person + offset,
            team: start.team + offset,
        }
    }
}

pub(crate) fn bump(counter: &mut u64) -> u64 {
    let id = *counter;
    *counter += 1;
    id
}

/// A simulated GitHub organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// The organisation login.
    pub owner: String,
    /// The organisation's GitHub id.
    pub owner_id: u64,
    /// The simulated present; nothing in the data is later.
    pub now: Timestamp,
    /// Index 0 is the GitHub Actions bot.
    pub people: Vec<Person>,
    /// The teams ([`SimRepo::team`] indexes them).
    pub teams: Vec<SimTeam>,
    /// The repositories (the mutation methods take an index into them).
    pub repos: Vec<SimRepo>,
    pub(crate) ids: Ids,
}

/// What a new deployment does ([`Org::add_deployment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewOutcome {
    /// `in_progress`, then `success` this many seconds after creation.
    Success {
        /// Seconds from creation to `success` (a negative value counts as 0).
        after: i64,
    },
    /// `in_progress`, then `failure` this many seconds after creation.
    Failure {
        /// Seconds from creation to `failure` (a negative value counts as 0).
        after: i64,
    },
    /// `in_progress`, then `error` this many seconds after creation.
    Error {
        /// Seconds from creation to `error` (a negative value counts as 0).
        after: i64,
    },
    /// Only `queued`.
    Queued,
    /// `queued`, then `in_progress`.
    InProgress,
}

/// A deployment to add with [`Org::add_deployment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    /// The environment name, e.g. [`crate::PRODUCTION`].
    pub environment: String,
    /// `None`: the default branch's head.
    pub sha: Option<CommitSha>,
    /// When it is created (its first status is at the same time).
    pub created_at: Timestamp,
    /// The statuses it gets.
    pub outcome: NewOutcome,
}

/// A workflow run to add with [`Org::add_workflow_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// `None`: the default branch.
    pub branch: Option<String>,
    /// `None`: the branch head.
    pub sha: Option<CommitSha>,
    /// What triggered it.
    pub event: RunEvent,
    /// When it is triggered (and starts).
    pub created_at: Timestamp,
    /// `None`: still in progress; otherwise completed `duration` seconds later.
    pub conclusion: Option<RunConclusion>,
    /// Seconds from creation to completion (ignored while in progress; a negative
    /// value counts as 0).
    pub duration: i64,
}

/// A pull request to merge with [`Org::merge_pull`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPull {
    /// The title (its commits' messages are derived from it).
    pub title: String,
    /// The label names, e.g. [`HOTFIX_LABEL`].
    pub labels: Vec<String>,
    /// Author dates of the PR's own commits (at least one), oldest first.
    pub commit_dates: Vec<Timestamp>,
    /// When it is opened.
    pub opened_at: Timestamp,
    /// When it is merged (and closed); the merge commit's date.
    pub merged_at: Timestamp,
    /// How it is merged.
    pub style: MergeStyle,
}

/// An issue to open with [`Org::open_issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIssue {
    /// The title.
    pub title: String,
    /// The body, if any.
    pub body: Option<String>,
    /// The label names, e.g. [`INCIDENT_LABEL`].
    pub labels: Vec<String>,
    /// When it is opened.
    pub opened_at: Timestamp,
}

/// Why a mutation could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    /// No repository at this index of [`Org::repos`].
    #[error("no repository with index {0}")]
    NoRepository(usize),
    /// The sha names no commit of the repository.
    #[error("no commit {0} in the repository")]
    NoCommit(CommitSha),
    /// The repository has no branch of this name.
    #[error("no branch {0:?} in the repository")]
    NoBranch(String),
    /// The repository's deployments come from the source named, not the one the
    /// mutation adds to (a deployment to a workflow-run repository, or a run to a
    /// Deployments-API one).
    #[error("the repository's deployments come from {0}")]
    WrongSource(&'static str),
    /// No object of this kind (e.g. `issue`) has the id or number given.
    #[error("no {0} with that id or number")]
    NotFound(&'static str),
    /// The input breaks the rule stated, e.g. a pull request without commits.
    #[error("invalid input: {0}")]
    Invalid(&'static str),
}

impl Org {
    /// An organisation with no repositories and no people but the Actions bot.
    pub fn empty(owner: &str, now: Timestamp) -> Org {
        Org::empty_in_block(owner, now, 0)
    }

    /// [`Org::empty`] whose objects take ids from block `block` (see
    /// [`crate::OrgSpec::id_block`]).
    pub fn empty_in_block(owner: &str, now: Timestamp, block: u64) -> Org {
        let mut ids = Ids::in_block(block);
        let owner_id = bump(&mut ids.person);
        Org {
            owner: owner.to_owned(),
            owner_id,
            now,
            people: vec![Person {
                id: 41_898_282,
                login: ACTIONS_BOT_LOGIN.to_owned(),
                name: "github-actions[bot]".to_owned(),
                email: "41898282+github-actions[bot]@users.noreply.github.com".to_owned(),
                bot: true,
            }],
            teams: Vec::new(),
            repos: Vec::new(),
            ids,
        }
    }

    /// Counts of everything held.
    pub fn stats(&self) -> OrgStats {
        let mut stats = OrgStats {
            repositories: self.repos.len(),
            ..OrgStats::default()
        };
        for repo in &self.repos {
            stats.commits += repo.commits.len();
            stats.deployments += repo.deployments.len();
            stats.deployment_statuses += repo
                .deployments
                .iter()
                .map(|d| d.statuses.len())
                .sum::<usize>();
            stats.workflow_runs += repo.workflow_runs.len();
            stats.issues += repo.issues.len();
            stats.pull_requests += repo.pulls.len();
        }
        stats
    }

    /// The index of repository `name` (without owner; case-insensitive).
    pub fn repo_index(&self, name: &str) -> Option<usize> {
        self.repos
            .iter()
            .position(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// The repository called `name` (without owner; case-insensitive).
    pub fn repo(&self, name: &str) -> Option<&SimRepo> {
        self.repo_index(name).map(|i| &self.repos[i])
    }

    /// The repository with this GitHub id.
    pub fn repo_by_id(&self, id: u64) -> Option<&SimRepo> {
        self.repos.iter().find(|r| r.id == id)
    }

    /// `owner/name` of repository `index`, lowercase as the collector stores it.
    pub fn full_name(&self, index: usize) -> String {
        let name = self.repos.get(index).map(|r| r.name.as_str()).unwrap_or("");
        format!("{}/{}", self.owner, name).to_ascii_lowercase()
    }

    /// The team name of repository `index`.
    pub fn team_of(&self, index: usize) -> Option<&str> {
        let team = self.repos.get(index)?.team;
        self.teams.get(team).map(|t| t.name.as_str())
    }

    /// Moves the simulated present (it never moves backwards).
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
    }

    /// Adds a team and returns its index.
    pub fn add_team(&mut self, name: &str) -> usize {
        let id = bump(&mut self.ids.team);
        self.teams.push(SimTeam {
            id,
            name: name.to_owned(),
        });
        self.teams.len() - 1
    }

    /// Adds a person and returns their index.
    pub fn add_person(&mut self, login: &str, name: &str) -> u32 {
        let id = bump(&mut self.ids.person);
        self.people.push(Person {
            id,
            login: login.to_owned(),
            name: name.to_owned(),
            email: format!("{id}+{login}@users.noreply.github.com"),
            bot: false,
        });
        u32::try_from(self.people.len() - 1).unwrap_or(0)
    }

    /// Adds a repository with one initial commit on `main` at `created_at` and
    /// returns its index. `workflow_runs`: its deployments are runs of
    /// `deploy.yml` instead of Deployments-API deployments.
    pub fn add_repo(
        &mut self,
        name: &str,
        team: usize,
        created_at: Timestamp,
        workflow_runs: bool,
    ) -> usize {
        let id = bump(&mut self.ids.repo);
        let source = if workflow_runs {
            DeploySource::WorkflowRuns(SimWorkflow {
                id: bump(&mut self.ids.workflow),
                name: "Deploy".to_owned(),
                file: crate::spec::DEPLOY_WORKFLOW_FILE.to_owned(),
                created_at,
            })
        } else {
            DeploySource::Deployments
        };
        let mut repo = SimRepo {
            id,
            name: name.to_owned(),
            team,
            created_at,
            default_branch: "main".to_owned(),
            source,
            commits: Vec::new(),
            main_head: 0,
            branches: Vec::new(),
            deployments: Vec::new(),
            workflow_runs: Vec::new(),
            issues: Vec::new(),
            pulls: Vec::new(),
            archived: false,
            fork: false,
            empty: false,
            topics: Vec::new(),
            other_teams: Vec::new(),
            sha_index: HashMap::default(),
        };
        let author = self.default_author();
        let sha = synthetic_sha(id, 0, 0);
        repo.main_head = repo.push_commit(SimCommit {
            sha,
            parent_slots: [NO_PARENT, NO_PARENT],
            author_date: created_at,
            committer_date: created_at,
            author,
            message: CommitMessage::Initial,
        });
        self.repos.push(repo);
        self.repos.len() - 1
    }

    fn default_author(&self) -> u32 {
        if self.people.len() > 1 {
            1
        } else {
            0
        }
    }

    fn repo_mut(&mut self, repo: usize) -> Result<&mut SimRepo, MutationError> {
        self.repos
            .get_mut(repo)
            .ok_or(MutationError::NoRepository(repo))
    }

    /// Pushes one commit onto the default branch and returns its sha.
    pub fn push_commit(
        &mut self,
        repo: usize,
        message: &str,
        author_date: Timestamp,
        committed_at: Timestamp,
    ) -> Result<CommitSha, MutationError> {
        let author = self.default_author();
        let r = self.repo_mut(repo)?;
        let sha = synthetic_sha(r.id, r.commits.len() as u64, 1);
        let parent = r.main_head;
        r.main_head = r.push_commit(SimCommit {
            sha,
            parent_slots: [parent, NO_PARENT],
            author_date,
            committer_date: committed_at,
            author,
            message: CommitMessage::Custom(message.into()),
        });
        Ok(r.main_head_sha())
    }

    /// Opens and merges a pull request into the default branch. Returns its number
    /// and the sha of the commit the merge made (`merge_commit_sha`).
    pub fn merge_pull(
        &mut self,
        repo: usize,
        new: NewPull,
    ) -> Result<(u64, CommitSha), MutationError> {
        if new.commit_dates.is_empty() {
            return Err(MutationError::Invalid(
                "a pull request needs at least one commit",
            ));
        }
        let author = self.default_author();
        let pull_id = bump(&mut self.ids.pull);
        let issue_id = bump(&mut self.ids.issue);
        let r = self.repo_mut(repo)?;
        let number = r.next_number();
        let base = r.main_head;
        let start = r.commits.len() as u32;
        let mut parent = base;
        for (k, date) in new.commit_dates.iter().enumerate() {
            let sha = synthetic_sha(r.id, r.commits.len() as u64, 2);
            parent = r.push_commit(SimCommit {
                sha,
                parent_slots: [parent, NO_PARENT],
                author_date: *date,
                committer_date: *date,
                author,
                message: CommitMessage::Custom(format!("{} (part {})", new.title, k + 1).into()),
            });
        }
        let end = r.commits.len() as u32;
        let pull_index = r.pulls.len() as u32;
        let (slots, message) = match new.style {
            MergeStyle::Squash => ([r.main_head, NO_PARENT], CommitMessage::Squash(pull_index)),
            MergeStyle::MergeCommit => ([r.main_head, parent], CommitMessage::Merge(pull_index)),
        };
        let sha = synthetic_sha(r.id, r.commits.len() as u64, 3);
        let merge = r.push_commit(SimCommit {
            sha,
            parent_slots: slots,
            author_date: new.merged_at,
            committer_date: new.merged_at,
            author,
            message,
        });
        r.main_head = merge;
        let sha = r.main_head_sha();
        r.pulls.push(SimPull {
            id: pull_id,
            issue_id,
            number,
            title: Text::Custom(new.title.into()),
            labels: new.labels,
            user: author,
            commits: start..end,
            base,
            created_at: new.opened_at,
            updated_at: new.merged_at,
            closed_at: Some(new.merged_at),
            merged_at: Some(new.merged_at),
            merge_commit: Some(merge),
            merge_style: new.style,
            draft: false,
            comments: 0,
            first_review_at: None,
        });
        if let Some(pull) = r.pulls.last_mut() {
            pull.first_review_at = pull.drawn_first_review();
        }
        Ok((number, sha))
    }

    /// Adds a Deployments-API deployment with statuses per `new.outcome`; returns
    /// its id.
    pub fn add_deployment(
        &mut self,
        repo: usize,
        new: NewDeployment,
    ) -> Result<u64, MutationError> {
        let creator = self.default_author();
        let r = self
            .repos
            .get(repo)
            .ok_or(MutationError::NoRepository(repo))?;
        if r.workflow().is_some() {
            return Err(MutationError::WrongSource("workflow runs"));
        }
        let sha = match new.sha {
            Some(sha) if r.commit_index(&sha).is_some() => sha,
            Some(sha) => return Err(MutationError::NoCommit(sha)),
            None => r.main_head_sha(),
        };
        let git_ref: Arc<str> = if new.sha.is_some() {
            sha.to_string().into()
        } else {
            r.default_branch.as_str().into()
        };
        let id = bump(&mut self.ids.deployment);
        let t = new.created_at;
        let mut states: Vec<(StatusState, Timestamp)> = Vec::new();
        match new.outcome {
            NewOutcome::Success { after } => {
                states.push((StatusState::InProgress, t));
                states.push((
                    StatusState::Success,
                    Timestamp(t.0.saturating_add(after.max(0))),
                ));
            }
            NewOutcome::Failure { after } => {
                states.push((StatusState::InProgress, t));
                states.push((
                    StatusState::Failure,
                    Timestamp(t.0.saturating_add(after.max(0))),
                ));
            }
            NewOutcome::Error { after } => {
                states.push((StatusState::InProgress, t));
                states.push((
                    StatusState::Error,
                    Timestamp(t.0.saturating_add(after.max(0))),
                ));
            }
            NewOutcome::Queued => states.push((StatusState::Queued, t)),
            NewOutcome::InProgress => {
                states.push((StatusState::Queued, t));
                states.push((StatusState::InProgress, t));
            }
        }
        let statuses = states
            .into_iter()
            .map(|(state, created_at)| SimStatus {
                id: bump(&mut self.ids.status),
                state,
                created_at,
            })
            .collect();
        let r = self.repo_mut(repo)?;
        r.deployments.push(SimDeployment {
            id,
            sha,
            git_ref,
            environment: new.environment.into(),
            created_at: t,
            creator,
            rollback: false,
            statuses,
        });
        Ok(id)
    }

    /// Appends a status to deployment `deployment_id`; returns the status id.
    pub fn add_deployment_status(
        &mut self,
        repo: usize,
        deployment_id: u64,
        state: StatusState,
        at: Timestamp,
    ) -> Result<u64, MutationError> {
        let id = self.ids.status;
        let r = self.repo_mut(repo)?;
        let deployment = r
            .deployments
            .iter_mut()
            .find(|d| d.id == deployment_id)
            .ok_or(MutationError::NotFound("deployment"))?;
        deployment.statuses.push(SimStatus {
            id,
            state,
            created_at: at,
        });
        self.ids.status += 1;
        Ok(id)
    }

    /// Adds a run of the repository's deploy workflow; returns its id.
    pub fn add_workflow_run(&mut self, repo: usize, new: NewRun) -> Result<u64, MutationError> {
        let actor = self.default_author();
        let r = self
            .repos
            .get(repo)
            .ok_or(MutationError::NoRepository(repo))?;
        if r.workflow().is_none() {
            return Err(MutationError::WrongSource("the Deployments API"));
        }
        let branch = new.branch.unwrap_or_else(|| r.default_branch.clone());
        let sha = match new.sha {
            Some(sha) if r.commit_index(&sha).is_some() => sha,
            Some(sha) => return Err(MutationError::NoCommit(sha)),
            None if branch == r.default_branch => r.main_head_sha(),
            None => match r.branches.iter().find(|b| b.name == branch) {
                Some(b) => r.commits[b.head as usize].sha,
                None => return Err(MutationError::NoBranch(branch)),
            },
        };
        let run_number = r
            .workflow_runs
            .iter()
            .map(|w| w.run_number)
            .max()
            .unwrap_or(0)
            + 1;
        let id = bump(&mut self.ids.run);
        let t = new.created_at;
        let (status, updated_at) = match new.conclusion {
            Some(_) => (
                RunStatus::Completed,
                Timestamp(t.0.saturating_add(new.duration.max(0))),
            ),
            None => (RunStatus::InProgress, t),
        };
        let r = self.repo_mut(repo)?;
        r.workflow_runs.push(SimWorkflowRun {
            id,
            run_number,
            head_branch: branch.into(),
            head_sha: sha,
            event: new.event,
            status,
            conclusion: new.conclusion,
            created_at: t,
            run_started_at: t,
            updated_at,
            actor,
            rollback: false,
        });
        Ok(id)
    }

    /// One new change deployed to production in every repository: a commit on
    /// `main` authored `lead` seconds before `at`, then a deployment created at `at`
    /// that succeeds `DEPLOY_SECONDS` later (a Deployments-API deployment, or a
    /// successful deploy-workflow run on `main`). Moves `now` to the deploy time
    /// if it was earlier. Returns `(repository index, deployment or run id)`.
    pub fn ship_everywhere(&mut self, at: Timestamp, lead: i64) -> Vec<(usize, u64)> {
        /// Seconds a shipped deployment takes to succeed.
        const DEPLOY_SECONDS: i64 = 60;
        let mut out = Vec::with_capacity(self.repos.len());
        for repo in 0..self.repos.len() {
            let authored = Timestamp(at.0.saturating_sub(lead.max(0)));
            let message = format!("Ship change at {at}");
            // Indices come from the loop, so these cannot fail.
            if self
                .push_commit(repo, &message, authored, authored)
                .is_err()
            {
                continue;
            }
            let id = if self.repos[repo].workflow().is_some() {
                self.add_workflow_run(
                    repo,
                    NewRun {
                        branch: None,
                        sha: None,
                        event: RunEvent::Push,
                        created_at: at,
                        conclusion: Some(RunConclusion::Success),
                        duration: DEPLOY_SECONDS,
                    },
                )
            } else {
                self.add_deployment(
                    repo,
                    NewDeployment {
                        environment: crate::spec::PRODUCTION.to_owned(),
                        sha: None,
                        created_at: at,
                        outcome: NewOutcome::Success {
                            after: DEPLOY_SECONDS,
                        },
                    },
                )
            };
            if let Ok(id) = id {
                out.push((repo, id));
            }
        }
        self.set_now(Timestamp(at.0.saturating_add(DEPLOY_SECONDS)));
        out
    }

    /// Opens an issue; returns its number.
    pub fn open_issue(&mut self, repo: usize, new: NewIssue) -> Result<u64, MutationError> {
        let user = self.default_author();
        let id = bump(&mut self.ids.issue);
        let r = self.repo_mut(repo)?;
        let number = r.next_number();
        r.issues.push(SimIssue {
            id,
            number,
            title: new.title,
            body: new.body,
            labels: new.labels,
            user,
            created_at: new.opened_at,
            updated_at: new.opened_at,
            closed_at: None,
            reopened_at: None,
            comments: 0,
        });
        Ok(number)
    }

    /// Opens an `incident` issue, with `root cause: <sha>` in its body when given.
    pub fn open_incident(
        &mut self,
        repo: usize,
        opened_at: Timestamp,
        root_cause: Option<&str>,
    ) -> Result<u64, MutationError> {
        let body = match root_cause {
            Some(sha) => format!("Customers see errors.\n\nroot cause: {sha}\n"),
            None => "Customers see errors. Investigating.".to_owned(),
        };
        self.open_issue(
            repo,
            NewIssue {
                title: "Incident: elevated error rate".to_owned(),
                body: Some(body),
                labels: vec![INCIDENT_LABEL.to_owned()],
                opened_at,
            },
        )
    }

    fn issue_mut(&mut self, repo: usize, number: u64) -> Result<&mut SimIssue, MutationError> {
        self.repo_mut(repo)?
            .issues
            .iter_mut()
            .find(|i| i.number == number)
            .ok_or(MutationError::NotFound("issue"))
    }

    /// Closes issue `number` at `at`.
    pub fn close_issue(
        &mut self,
        repo: usize,
        number: u64,
        at: Timestamp,
    ) -> Result<(), MutationError> {
        let issue = self.issue_mut(repo, number)?;
        issue.closed_at = Some(at);
        issue.updated_at = issue.updated_at.max(at);
        Ok(())
    }

    /// Reopens issue `number` at `at`.
    pub fn reopen_issue(
        &mut self,
        repo: usize,
        number: u64,
        at: Timestamp,
    ) -> Result<(), MutationError> {
        let issue = self.issue_mut(repo, number)?;
        issue.closed_at = None;
        issue.reopened_at = Some(at);
        issue.updated_at = issue.updated_at.max(at);
        Ok(())
    }
}

/// A deterministic, well-spread fake sha for the `n`-th commit of repository
/// `repo_id` (`salt` separates kinds of commit), for commits added by mutation.
/// Generated history uses random shas instead.
pub(crate) fn synthetic_sha(repo_id: u64, n: u64, salt: u64) -> CommitSha {
    let mut bytes = [0u8; 20];
    let mut x = repo_id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(n.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(salt.wrapping_mul(0x94D0_49BB_1331_11EB));
    for chunk in bytes.chunks_mut(8) {
        // SplitMix64 finaliser: a bijection, so distinct inputs give distinct shas.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
    }
    CommitSha::from_bytes(bytes)
}
