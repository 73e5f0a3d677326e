//! The domain model: validated newtypes (repository names, commit shas, environments,
//! teams, timestamps) and the normalized events the engine computes from
//! (deployments, commits, incidents, pull requests, compare results).
//!
//! Values here are always valid: every constructor from untrusted text returns a
//! `Result`. Nothing here knows about GitHub's wire format, SQL or HTTP, nor how a
//! source's raw states read as events; the sources convert their API types into
//! these at the border. A crate of its own, so that the engine, the collector and
//! the simulator share one vocabulary and nothing else.

pub mod batch;
mod events;
mod names;
mod sha;
mod time;

pub use events::{
    Commit, Compare, CompareStatus, Deployment, DeploymentOutcome, DeploymentSource, Incident,
    IncidentScope, IncidentSource, PullRequest, ScopedIncident, StatusState, REVERT_MESSAGE_PREFIX,
};
pub use names::{
    is_bidi_formatting, Environment, RepoName, Team, DEFAULT_TEAM, MAX_LABEL_NAME_LEN,
    MAX_REPO_NAME_LEN, MAX_REPO_SEGMENTS,
};
pub use sha::{CommitSha, ShaPrefix};
pub use time::Timestamp;

/// Why a value from outside could not become a domain value. The message names
/// what was expected and quotes (a bounded prefix of) what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, got {got:?}")]
pub struct DomainError {
    /// What a valid value looks like, e.g. `"owner/name"`.
    pub expected: &'static str,
    /// The rejected input, cut to [`MAX_QUOTED_INPUT`] characters.
    pub got: String,
}

/// How much of a rejected input an error message quotes, so that a huge or hostile
/// value cannot flood a log line.
pub const MAX_QUOTED_INPUT: usize = 80;

impl DomainError {
    /// The error for `got` (quoted up to [`MAX_QUOTED_INPUT`] characters), which
    /// is not `expected`.
    pub fn new(expected: &'static str, got: &str) -> Self {
        let got = got.chars().take(MAX_QUOTED_INPUT).collect();
        DomainError { expected, got }
    }
}
