//! The values only the store has: row counts, sync status and how a deployment's
//! outcome merges with a re-read. The batch a sync writes, the commit record and
//! cursors are the domain's ([`crate::domain::batch`]), shared with every producer.
//! Backend-neutral: nothing here knows about SQL.

pub use crate::domain::batch::{
    commit_subject, cut_to_bytes, ApplyStats, CommitRecord, Cursor, CursorKey, KindStats,
    SyncBatch, MAX_COMMIT_SUBJECT_BYTES, MAX_CURSOR_ENDPOINT_BYTES, MAX_CURSOR_OPAQUE_BYTES,
};
use crate::domain::{DeploymentOutcome, RepoName, Timestamp};

/// Longest sync source name (`github_deployments`, ...).
pub(crate) const MAX_SYNC_SOURCE_BYTES: usize = 64;

/// The most of a sync error's text the store keeps: enough for the HTTP status,
/// the URL and the cause, bounded so that a huge response body cannot bloat it.
pub const MAX_SYNC_ERROR_BYTES: usize = 1024;

/// Rows per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub repositories: u64,
    pub deployments: u64,
    pub commits: u64,
    pub compares: u64,
    pub incidents: u64,
    /// Incidents of a team or of a set of repositories (`scoped_incidents`).
    pub scoped_incidents: u64,
    pub pull_requests: u64,
    pub cursors: u64,
    pub sync_statuses: u64,
}

/// How a sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded,
    /// The error's text (secret-free; cut to [`MAX_SYNC_ERROR_BYTES`] when stored).
    Failed(String),
}

/// The sync status of one repository and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    pub repository: RepoName,
    pub source: String,
    /// When the last sync, successful or not, finished.
    pub last_attempt_at: Timestamp,
    /// When the last successful sync finished; `None` before the first one.
    pub last_success_at: Option<Timestamp>,
    /// The error of the last sync when it failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Since when the repository's history is complete in the store: the start
    /// of the lookback of its first successful sync. `None` before one (or when
    /// it happened before the store kept this).
    pub history_since: Option<Timestamp>,
}

/// Combines a stored outcome with a newly read one so that a deployment never moves
/// backwards: `Pending` < `Failed` < `Succeeded`; two successes keep the earliest
/// deploy time (the definition's "earliest success"), two failures the latest.
///
/// This is the maximum of a total order, so it is commutative, associative and
/// idempotent: the stored outcome does not depend on the order in which reads
/// arrive, and a stale `Pending` read cannot undo a deployment.
pub fn merge_outcome(stored: DeploymentOutcome, read: DeploymentOutcome) -> DeploymentOutcome {
    use DeploymentOutcome::{Failed, Pending, Succeeded};
    match (stored, read) {
        (Succeeded { at: a }, Succeeded { at: b }) => Succeeded { at: a.min(b) },
        (Succeeded { .. }, _) => stored,
        (_, Succeeded { .. }) => read,
        (Failed { at: a }, Failed { at: b }) => Failed { at: a.max(b) },
        (Failed { .. }, Pending) => stored,
        (Pending, _) => read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_only_move_forward() {
        use DeploymentOutcome::{Failed, Pending, Succeeded};
        let s = |at| Succeeded { at: Timestamp(at) };
        let f = |at| Failed { at: Timestamp(at) };
        let cases = [
            (Pending, s(5), s(5)),
            (s(5), Pending, s(5)),
            (s(5), s(3), s(3)),
            (s(3), s(5), s(3)),
            (f(2), s(9), s(9)),
            (s(9), f(2), s(9)),
            (f(2), f(4), f(4)),
            (f(4), f(2), f(4)),
            (f(4), Pending, f(4)),
            (Pending, f(4), f(4)),
            (Pending, Pending, Pending),
        ];
        for (stored, read, expected) in cases {
            assert_eq!(
                merge_outcome(stored, read),
                expected,
                "{stored:?} + {read:?}"
            );
            assert_eq!(merge_outcome(read, stored), expected, "commutes");
        }
    }
}
