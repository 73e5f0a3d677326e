//! What a sync step hands on to be kept: the batch of one repository's events
//! together with the cursors they cover, the commit record (a commit with its
//! message cut to the subject), cursors, and the statistics of writing a batch.
//!
//! The contract between every producer of events (the polling sources, the push
//! API) and every store: producers fill a [`SyncBatch`], a store writes it in one
//! transaction; the push API hands [`PushRequest`]s, each kept whole or not at
//! all, and learns a [`PushVerdict`] for each. Nothing here reads, writes or knows
//! SQL or HTTP.

use crate::{
    Commit, CommitSha, Compare, Deployment, Environment, Incident, PullRequest, RepoName,
    ScopedIncident, Timestamp, REVERT_MESSAGE_PREFIX,
};

/// The most of a commit message the store keeps: the first line, cut to this many
/// bytes on a character boundary. Reports show the title of a change; the engine
/// only needs [`CommitRecord::is_revert`], decided by the first 8 bytes. At the
/// design scale of 10 million commits, a full message would multiply the store.
pub const MAX_COMMIT_SUBJECT_BYTES: usize = 256;

/// Longest cursor endpoint name. Endpoint names are chosen by the sources (an
/// endpoint path, maybe with a token fingerprint); this only stops a runaway key.
pub const MAX_CURSOR_ENDPOINT_BYTES: usize = 512;

/// Longest opaque cursor value. ETags and GraphQL end cursors are well under 200
/// bytes; a value larger than this is a bug or a hostile server, not a cursor.
pub const MAX_CURSOR_OPAQUE_BYTES: usize = 4096;

/// The longest prefix of `text` of at most `max` bytes that ends on a character
/// boundary.
pub fn cut_to_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What the store keeps of a commit message: its first line (without the line
/// break, `\r\n` or `\n`), cut to [`MAX_COMMIT_SUBJECT_BYTES`] on a char boundary.
pub fn commit_subject(message: &str) -> &str {
    let first_line = message.split('\n').next().unwrap_or("");
    let first_line = first_line.strip_suffix('\r').unwrap_or(first_line);
    cut_to_bytes(first_line, MAX_COMMIT_SUBJECT_BYTES)
}

/// A commit as a source hands it to the store.
///
/// `message` may be the full message; the store keeps only [`commit_subject`] of it
/// (and [`CommitRecord::new`] cuts it at once, so a source does not hold large
/// messages either). Whether it is a revert is decided from the first line, so it
/// survives the cut. A record read back from the store has the stored subject as
/// its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// The commit's full sha.
    pub sha: CommitSha,
    /// Its parents' shas, first parent first (two or more for a merge).
    pub parents: Vec<CommitSha>,
    /// `commit.author.date`: survives rebases.
    pub author_date: Timestamp,
    /// The commit message: its subject once built by [`CommitRecord::new`] or read
    /// back from the store.
    pub message: String,
}

impl CommitRecord {
    /// Keeps only the first line of `message`, cut to [`MAX_COMMIT_SUBJECT_BYTES`].
    pub fn new(
        sha: CommitSha,
        parents: Vec<CommitSha>,
        author_date: Timestamp,
        message: &str,
    ) -> Self {
        CommitRecord {
            sha,
            parents,
            author_date,
            message: commit_subject(message).to_owned(),
        }
    }

    /// The message starts with [`REVERT_MESSAGE_PREFIX`] (a rework signal).
    pub fn is_revert(&self) -> bool {
        self.message.starts_with(REVERT_MESSAGE_PREFIX)
    }

    /// What the store keeps of the message.
    pub fn subject(&self) -> &str {
        commit_subject(&self.message)
    }

    /// The engine's view of this commit.
    pub fn to_commit(&self) -> Commit {
        Commit {
            sha: self.sha,
            parents: self.parents.clone(),
            author_date: self.author_date,
            is_revert: self.is_revert(),
        }
    }
}

/// Names one cursor: a repository and an endpoint name chosen by the source.
///
/// Generic on purpose: the endpoint is any string (at most
/// [`MAX_CURSOR_ENDPOINT_BYTES`], not empty), so a source can keep a `since` per
/// endpoint (`"deployments"`), a GraphQL end cursor (`"graphql:pull_requests"`) or an
/// ETag per endpoint and token fingerprint (`"etag:/repos/a/b/issues@3f2a"`). The
/// fingerprint must be a one-way hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CursorKey {
    /// The repository read.
    pub repository: RepoName,
    /// The source's name for what it reads (not empty, at most
    /// [`MAX_CURSOR_ENDPOINT_BYTES`]).
    pub endpoint: String,
}

impl CursorKey {
    /// The cursor of `endpoint` in `repository`.
    pub fn new(repository: RepoName, endpoint: impl Into<String>) -> Self {
        CursorKey {
            repository,
            endpoint: endpoint.into(),
        }
    }
}

/// Where a source stopped reading an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Everything updated before this time has been stored.
    pub since: Option<Timestamp>,
    /// An opaque value: an ETag, a GraphQL end cursor, ... (at most
    /// [`MAX_CURSOR_OPAQUE_BYTES`]).
    pub opaque: Option<String>,
    /// When the source advanced this cursor.
    pub updated_at: Timestamp,
}

/// Everything one sync step read for one repository, written in one transaction.
/// Every event and cursor key must name `repository`, except the scoped
/// incidents, which name a team or several repositories (an incident tool's
/// sync unit then is `repository`: it only keys the cursors and sync status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatch {
    /// The one repository every event and cursor of the batch belongs to.
    pub repository: RepoName,
    /// Deployments read (a re-read one replaces the stored one: a pending
    /// deployment may have finished since).
    pub deployments: Vec<Deployment>,
    /// Commits read.
    pub commits: Vec<CommitRecord>,
    /// Compare results read.
    pub compares: Vec<Compare>,
    /// Issues read that may be incidents.
    pub incidents: Vec<Incident>,
    /// Incidents of a team or of a set of repositories (a re-read one replaces
    /// the stored one of the same source and number).
    pub scoped_incidents: Vec<ScopedIncident>,
    /// Pull requests read.
    pub pull_requests: Vec<PullRequest>,
    /// The environments the source itself reads as production environments of
    /// the repository, whatever `production_environments` says (GitLab: those of
    /// tier `production`); `Some` replaces the kept list, `None` keeps it.
    pub production_environments: Option<Vec<Environment>>,
    /// Since when the repository's pull requests' first reviews are complete
    /// for the lead-time stages (`docs/computation.md` § Lead-time stages): the
    /// changes deployed at or after it have the first review of their pull
    /// request read, when it has one. `Some` replaces the kept time, `None`
    /// keeps it (GitHub sets it once per review window, at the first sync of
    /// its first-review step).
    pub reviews_since: Option<Timestamp>,
    /// Cursors to advance together with the data above.
    pub cursors: Vec<(CursorKey, Cursor)>,
}

impl SyncBatch {
    /// An empty batch for `repository`.
    pub fn new(repository: RepoName) -> Self {
        SyncBatch {
            repository,
            deployments: Vec::new(),
            commits: Vec::new(),
            compares: Vec::new(),
            incidents: Vec::new(),
            scoped_incidents: Vec::new(),
            pull_requests: Vec::new(),
            production_environments: None,
            reviews_since: None,
            cursors: Vec::new(),
        }
    }

    /// Number of events and cursors in the batch.
    pub fn len(&self) -> usize {
        self.deployments.len()
            + self.commits.len()
            + self.compares.len()
            + self.incidents.len()
            + self.scoped_incidents.len()
            + self.pull_requests.len()
            + self.production_environments.as_ref().map_or(0, Vec::len)
            + usize::from(self.reviews_since.is_some())
            + self.cursors.len()
    }

    /// The batch holds no event, no cursor and no list of production
    /// environments (an empty list replaces the kept one, so it counts).
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.production_environments.is_none()
    }
}

/// What a pushed item is, with its own id space per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PushKind {
    /// `POST /api/v1/deployments`.
    Deployment,
    /// `POST /api/v1/incidents`.
    Incident,
}

impl PushKind {
    /// The stable name (as stored).
    pub const fn as_str(self) -> &'static str {
        match self {
            PushKind::Deployment => "deployment",
            PushKind::Incident => "incident",
        }
    }
}

/// The event a pushed item becomes. Its id (the deployment's `id`, the
/// incident's `number`) is left to the store, which gives each client's id a
/// number of its own: whatever the producer put there is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushedEvent {
    /// A deployment (source [`DeploymentSource::Push`](crate::DeploymentSource)),
    /// with the commits it carries (empty when the repository's code host gives
    /// them).
    Deployment {
        /// The deployment.
        deployment: Deployment,
        /// The commits it carries, kept with it.
        commits: Vec<CommitRecord>,
    },
    /// An incident (source [`IncidentSource::Push`](crate::IncidentSource)).
    Incident(Incident),
    /// An incident of a team (source [`IncidentSource::Push`](crate::IncidentSource),
    /// scope [`IncidentScope::Team`](crate::IncidentScope)).
    TeamIncident(ScopedIncident),
}

impl PushedEvent {
    /// The kind of item.
    pub fn kind(&self) -> PushKind {
        match self {
            PushedEvent::Deployment { .. } => PushKind::Deployment,
            PushedEvent::Incident(_) | PushedEvent::TeamIncident(_) => PushKind::Incident,
        }
    }

    /// The repository the event belongs to; `None` for a team's incident.
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            PushedEvent::Deployment { deployment, .. } => Some(&deployment.repository),
            PushedEvent::Incident(incident) => Some(&incident.repository),
            PushedEvent::TeamIncident(_) => None,
        }
    }
}

/// The length of a pushed item's digests (SHA-256).
pub const PUSH_DIGEST_BYTES: usize = 32;

/// One pushed item: its identity `(client, kind, id)`, digests of its content
/// and the event it becomes.
///
/// The producer computes the digests; the store only compares them. `digest`
/// covers everything the client sent; `base_digest` is the digest the item
/// would have without the one update allowed later (an open incident's
/// resolution), and equals `digest` for everything else. Same `digest` as
/// stored: a retry, nothing changes. `base_digest` equal to the stored
/// `digest` (the stored item was the open version of this one): the one allowed
/// update. `digest` equal to the stored `base_digest`: a late retry of the open
/// version, nothing changes. Anything else: a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushItem {
    /// The client's configured name.
    pub client: String,
    /// The client's id for the item (unique per client and kind).
    pub id: String,
    /// The digest of the item's whole content.
    pub digest: [u8; PUSH_DIGEST_BYTES],
    /// The digest of the item before its allowed update (see above).
    pub base_digest: [u8; PUSH_DIGEST_BYTES],
    /// What it becomes.
    pub event: PushedEvent,
}

/// One push request: its items are kept all together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushRequest {
    /// The items, in the order they were sent.
    pub items: Vec<PushItem>,
}

/// What the store did with one push request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushVerdict {
    /// Every item is stored (durably, once the call returns): `inserted` new
    /// ones, `updated` (an open incident resolved), `unchanged` already stored
    /// with the same content.
    Stored {
        /// Items stored for the first time.
        inserted: u32,
        /// Items that made their one allowed update.
        updated: u32,
        /// Items already stored as sent.
        unchanged: u32,
    },
    /// Item `index` reuses an id of the client with other content; nothing of
    /// the request was kept.
    Conflict {
        /// The position of the first conflicting item in the request.
        index: usize,
    },
}

/// What `apply` did with the rows of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    /// New identities.
    pub inserted: u64,
    /// Known identities whose stored values changed.
    pub updated: u64,
    /// Known identities stored exactly as given (a re-read of the same event).
    pub unchanged: u64,
}

impl KindStats {
    /// Rows seen.
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged
    }

    /// Rows that changed the store.
    pub fn written(&self) -> u64 {
        self.inserted + self.updated
    }

    fn add(&mut self, other: &KindStats) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// What one `apply` did, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Deployment rows.
    pub deployments: KindStats,
    /// Commit rows.
    pub commits: KindStats,
    /// Compare rows.
    pub compares: KindStats,
    /// Incident rows (of a repository, or scoped).
    pub incidents: KindStats,
    /// Pull-request rows.
    pub pull_requests: KindStats,
    /// Cursor rows.
    pub cursors: KindStats,
}

impl ApplyStats {
    /// The sum over all kinds.
    pub fn total(&self) -> KindStats {
        let mut total = KindStats::default();
        for kind in [
            &self.deployments,
            &self.commits,
            &self.compares,
            &self.incidents,
            &self.pull_requests,
            &self.cursors,
        ] {
            total.add(kind);
        }
        total
    }

    /// Nothing was inserted or updated.
    pub fn all_unchanged(&self) -> bool {
        self.total().written() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_first_line_cut_on_a_char_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let cases: &[(&str, &str)] = &[
            ("Fix the thing\n\nLong body", "Fix the thing"),
            ("Windows line\r\nbody", "Windows line"),
            ("", ""),
            ("\nstarts with a break", ""),
            (&long, &long[..256]),
        ];
        for (message, expected) in cases {
            assert_eq!(commit_subject(message), *expected, "{message:?}");
        }
        let odd = format!("a{long}");
        let subject = commit_subject(&odd);
        assert_eq!(subject.len(), 255);
        assert!(subject.chars().all(|c| c == 'a' || c == 'é'));
    }

    #[test]
    fn records_keep_the_revert_flag_through_the_cut() {
        let sha = CommitSha::from_bytes([1; 20]);
        let revert = CommitRecord::new(
            sha,
            vec![],
            Timestamp(0),
            &format!("Revert \"{}\"\n\nThis reverts", "x".repeat(1000)),
        );
        assert!(revert.is_revert());
        assert!(revert.to_commit().is_revert);
        assert_eq!(revert.message.len(), MAX_COMMIT_SUBJECT_BYTES);
        assert!(!CommitRecord::new(sha, vec![], Timestamp(0), "Reverting").is_revert());
    }
}
