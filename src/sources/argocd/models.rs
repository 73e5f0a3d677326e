//! The collector's reading of an Argo CD application (`GET
//! /api/v1/applications/{name}`): the few fields it uses, as serde structs that
//! ignore every other field, turned into deployments at the border. Pure: no
//! I/O, no panics on any input.
//!
//! - Each `status.history` entry is a successful sync: a deployment of its
//!   revision, deploy time `deployedAt`, created at `deployStartedAt`.
//! - `status.operationState` in phase `Failed` or `Error` is a failed attempt
//!   of its revision (any other phase says nothing new: a success is in the
//!   history, a running sync is not final).
//! - A revision that is not a full commit sha (a Helm chart version) gets a
//!   stand-in sha derived from it ([`revision_sha`]): the deployment counts
//!   for frequency and failure rate, and no commit of the repository has that
//!   sha, so it contributes no lead-time samples.
//! - Ids ([`history_id`], [`operation_id`]): the application (its namespace,
//!   name and uid) is a 30-bit key in bits 32–61; bit 62 tells a failed
//!   operation from a history entry; the low 32 bits are the history entry's
//!   `id` or the operation's start (epoch seconds). So several applications
//!   deploying one repository never share an id, a re-created application
//!   (new uid, history restarting at 0) never overwrites the old one's
//!   deployments, and every id fits SQLite's signed integers.
//!
//! Each history entry is read on its own: one that does not fit is skipped
//! (with its reason) and the rest are kept.

use crate::domain::{CommitSha, RepoName, Timestamp};
use crate::sources::rest::url_names;
use serde::Deserialize;
use serde_json::Value;

/// Why one item was skipped.
pub type Skip = String;

/// Bit 62 of an id: a failed operation, not a history entry.
const OPERATION_BIT: u64 = 1 << 62;

/// The application key's bits (30) and where they start.
const KEY_BITS: u32 = 30;
const KEY_SHIFT: u32 = 32;

/// Domain separation of the stand-in sha of a revision that is not a commit.
const REVISION_CONTEXT: &[u8] = b"dora-collector argocd revision\0";

/// Domain separation of an application's key.
const KEY_CONTEXT: &[u8] = b"dora-collector argocd application\0";

/// The phases of an operation that are failed attempts.
pub const FAILED_PHASES: [&str; 2] = ["Failed", "Error"];

/// An application's 30-bit key: a hash of its namespace-qualified name and
/// its uid.
pub fn application_key(name: &str, uid: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(KEY_CONTEXT);
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(uid.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes) & ((1 << KEY_BITS) - 1)
}

/// The deployment id of history entry `id` of the application with `key`;
/// `None` for an id beyond 32 bits (four billion syncs).
pub fn history_id(key: u64, id: i64) -> Option<u64> {
    let id = u32::try_from(id).ok()?;
    Some((key << KEY_SHIFT) | u64::from(id))
}

/// The deployment id of a failed operation that started at `started_at`.
pub fn operation_id(key: u64, started_at: Timestamp) -> Option<u64> {
    let started = u32::try_from(started_at.0).ok()?;
    Some(OPERATION_BIT | (key << KEY_SHIFT) | u64::from(started))
}

/// The sha a revision is deployed as: itself when it is a full commit sha,
/// else a stand-in derived from it (no commit has it).
pub fn revision_sha(revision: &str) -> CommitSha {
    if let Ok(sha) = CommitSha::parse(&revision.to_ascii_lowercase()) {
        return sha;
    }
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(REVISION_CONTEXT);
    hasher.update(revision.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 20];
    bytes.copy_from_slice(&digest[..20]);
    CommitSha::from_bytes(bytes)
}

#[derive(Debug, Deserialize)]
struct WireSource {
    #[serde(rename = "repoURL", default)]
    repo_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireHistory {
    id: i64,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Option<Vec<String>>,
    #[serde(default)]
    sources: Option<Vec<WireSource>>,
    #[serde(rename = "deployedAt", default)]
    deployed_at: Option<String>,
    #[serde(rename = "deployStartedAt", default)]
    deploy_started_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireSyncRevision {
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Option<Vec<String>>,
    #[serde(default)]
    sources: Option<Vec<WireSource>>,
}

#[derive(Debug, Default, Deserialize)]
struct WireOperation {
    #[serde(default)]
    sync: Option<WireSyncRevision>,
}

#[derive(Debug, Deserialize)]
struct WireOperationState {
    #[serde(default)]
    phase: Option<String>,
    #[serde(rename = "startedAt", default)]
    started_at: Option<String>,
    #[serde(rename = "finishedAt", default)]
    finished_at: Option<String>,
    #[serde(rename = "syncResult", default)]
    sync_result: Option<WireSyncRevision>,
    #[serde(default)]
    operation: Option<WireOperation>,
}

/// A successful sync, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sync {
    /// Argo CD's history `id`.
    pub id: i64,
    /// The revision synced (of the source that names the repository, for a
    /// multi-source application).
    pub revision: String,
    /// When it started (`deployStartedAt`, else `deployedAt`).
    pub started_at: Timestamp,
    /// When it finished: the deploy time.
    pub deployed_at: Timestamp,
}

/// A failed operation, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedOperation {
    /// `Failed` or `Error`.
    pub phase: String,
    /// The revision it tried to sync.
    pub revision: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended (`finishedAt`, else `startedAt`).
    pub finished_at: Timestamp,
}

/// What the collector reads of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// `metadata.uid` (empty when the server gives none).
    pub uid: String,
    /// `status.history`, in the server's order, item by item.
    pub history: Vec<Result<Sync, Skip>>,
    /// The last operation when it is a failed attempt; `Err` when it cannot be
    /// read.
    pub failed: Option<Result<FailedOperation, Skip>>,
}

fn time(text: Option<&str>, field: &str) -> Result<Option<Timestamp>, Skip> {
    match text {
        None => Ok(None),
        Some(text) => Timestamp::parse_rfc3339(text)
            .map(Some)
            .map_err(|_| format!("{field} is not an RFC 3339 time")),
    }
}

/// The revision of `entry` that concerns `repository`: `revision`, or for a
/// multi-source application the one whose source names it, else the first
/// full commit sha, else the first.
fn pick(
    revision: Option<String>,
    revisions: Option<Vec<String>>,
    sources: Option<Vec<WireSource>>,
    repository: &RepoName,
) -> Option<String> {
    if let Some(revision) = revision.filter(|r| !r.is_empty()) {
        return Some(revision);
    }
    let revisions = revisions.unwrap_or_default();
    let sources = sources.unwrap_or_default();
    let named = sources.iter().position(|s| {
        s.repo_url
            .as_deref()
            .is_some_and(|url| url_names(url, repository))
    });
    named
        .and_then(|i| revisions.get(i).cloned())
        .or_else(|| {
            revisions
                .iter()
                .find(|r| CommitSha::parse(r).is_ok())
                .cloned()
        })
        .or_else(|| revisions.first().cloned())
        .filter(|r| !r.is_empty())
}

fn history_entry(value: Value, repository: &RepoName) -> Result<Sync, Skip> {
    let wire: WireHistory =
        serde_json::from_value(value).map_err(|e| format!("unexpected history entry: {e}"))?;
    let deployed_at = time(wire.deployed_at.as_deref(), "deployedAt")?
        .ok_or_else(|| "history entry without deployedAt".to_owned())?;
    let started_at = time(wire.deploy_started_at.as_deref(), "deployStartedAt")?
        .unwrap_or(deployed_at)
        .min(deployed_at);
    let revision = pick(wire.revision, wire.revisions, wire.sources, repository)
        .ok_or_else(|| format!("history entry {} without a revision", wire.id))?;
    Ok(Sync {
        id: wire.id,
        revision,
        started_at,
        deployed_at,
    })
}

fn failed_operation(value: Value, repository: &RepoName) -> Option<Result<FailedOperation, Skip>> {
    let wire: WireOperationState = match serde_json::from_value(value) {
        Ok(wire) => wire,
        Err(e) => return Some(Err(format!("unexpected operationState: {e}"))),
    };
    let phase = wire.phase?;
    if !FAILED_PHASES.contains(&phase.as_str()) {
        return None;
    }
    Some((|| {
        let started_at = time(wire.started_at.as_deref(), "startedAt")?
            .ok_or_else(|| "a failed operation without startedAt".to_owned())?;
        let finished_at = time(wire.finished_at.as_deref(), "finishedAt")?
            .unwrap_or(started_at)
            .max(started_at);
        // What it synced (resolved), else what it was asked to sync.
        let result = wire.sync_result.unwrap_or_default();
        let asked = wire.operation.and_then(|o| o.sync).unwrap_or_default();
        let revision = pick(
            result.revision,
            result.revisions,
            result.sources,
            repository,
        )
        .or_else(|| pick(asked.revision, asked.revisions, asked.sources, repository))
        .ok_or_else(|| "a failed operation without a revision".to_owned())?;
        Ok(FailedOperation {
            phase,
            revision,
            started_at,
            finished_at,
        })
    })())
}

/// Reads an application body; `Err` when it is not an application at all.
pub fn application(body: &[u8], repository: &RepoName) -> Result<Application, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("not an application: {e}"))?;
    let Value::Object(mut app) = value else {
        return Err("not an application: not a JSON object".to_owned());
    };
    let uid = app
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut status = match app.remove("status") {
        Some(Value::Object(status)) => status,
        Some(Value::Null) | None => serde_json::Map::new(),
        Some(_) => return Err("not an application: status is not an object".to_owned()),
    };
    let history = match status.remove("history") {
        Some(Value::Array(entries)) => entries
            .into_iter()
            .map(|entry| history_entry(entry, repository))
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => vec![Err("status.history is not an array".to_owned())],
    };
    let failed = match status.remove("operationState") {
        Some(Value::Null) | None => None,
        Some(state) => failed_operation(state, repository),
    };
    Ok(Application {
        uid,
        history,
        failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn repo() -> RepoName {
        RepoName::parse("acme/api").unwrap()
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn ids_keep_applications_and_kinds_apart_within_a_signed_integer() {
        let a = application_key("argocd/api-prod", "uid-1");
        let b = application_key("argocd/api-eu", "uid-1");
        let recreated = application_key("argocd/api-prod", "uid-2");
        assert!(a < 1 << 30 && a != b && a != recreated);
        let entry = history_id(a, 7).unwrap();
        let failed = operation_id(a, Timestamp(7)).unwrap();
        assert_ne!(entry, failed);
        assert_eq!(entry & 0xFFFF_FFFF, 7);
        for id in [entry, failed, history_id(a, u32::MAX.into()).unwrap()] {
            assert!(i64::try_from(id).is_ok(), "{id:x}");
        }
        assert_eq!(history_id(a, 1 << 33), None);
        assert_eq!(history_id(a, -1), None);
    }

    #[test]
    fn revisions_that_are_not_commits_get_a_stand_in_sha() {
        assert_eq!(revision_sha(SHA).to_string(), SHA);
        assert_eq!(revision_sha(&SHA.to_uppercase()).to_string(), SHA);
        let chart = revision_sha("1.4.2");
        assert_eq!(chart, revision_sha("1.4.2"));
        assert_ne!(chart, revision_sha("1.4.3"));
        assert_ne!(revision_sha("0123456"), revision_sha("1.4.2"));
    }

    #[test]
    fn history_entries_and_a_failed_operation_are_read_item_by_item() {
        let body = json!({
            "metadata": {"name": "api-prod", "uid": "u-1"},
            "status": {
                "history": [
                    {"id": 4, "revision": SHA, "deployedAt": "2024-01-01T00:10:00Z", "deployStartedAt": "2024-01-01T00:09:00Z"},
                    {"id": 5, "revision": "1.4.2", "deployedAt": "2024-01-01T01:00:00Z"},
                    {"id": 6, "revision": SHA, "deployedAt": null},
                    {"id": "seven"},
                    {"id": 8, "revisions": ["2.0.0", SHA], "sources": [{"repoURL": "https://charts.example.com"}, {"repoURL": "https://github.com/acme/api.git"}], "deployedAt": "2024-01-01T02:00:00Z"},
                ],
                "operationState": {
                    "phase": "Error", "startedAt": "2024-01-01T03:00:00Z", "finishedAt": "2024-01-01T03:00:05Z",
                    "operation": {"sync": {"revision": SHA}},
                },
            },
        });
        let app = application(body.to_string().as_bytes(), &repo()).unwrap();
        assert_eq!(app.uid, "u-1");
        assert_eq!(app.history.len(), 5);
        let first = app.history[0].as_ref().unwrap();
        assert_eq!(
            (first.id, first.started_at, first.deployed_at),
            (
                4,
                Timestamp::parse_rfc3339("2024-01-01T00:09:00Z").unwrap(),
                Timestamp::parse_rfc3339("2024-01-01T00:10:00Z").unwrap()
            )
        );
        let chart = app.history[1].as_ref().unwrap();
        assert_eq!(
            chart.started_at, chart.deployed_at,
            "no start: the deploy time"
        );
        assert!(app.history[2].is_err(), "no deploy time");
        assert!(app.history[3].is_err(), "an id that is not a number");
        assert_eq!(
            app.history[4].as_ref().unwrap().revision,
            SHA,
            "the source naming the repository"
        );
        let failed = app.failed.unwrap().unwrap();
        assert_eq!(
            (failed.phase.as_str(), failed.revision.as_str()),
            ("Error", SHA)
        );
        assert_eq!(failed.finished_at.0 - failed.started_at.0, 5);
        // Other phases are no failed attempt; odd bodies are errors, not panics.
        for phase in ["Succeeded", "Running", "Terminating"] {
            let body = json!({"status": {"operationState": {"phase": phase, "startedAt": "2024-01-01T03:00:00Z"}}});
            assert_eq!(
                application(body.to_string().as_bytes(), &repo())
                    .unwrap()
                    .failed,
                None
            );
        }
        for bad in ["[]", "1", "{\"status\": 3}", "nope"] {
            assert!(application(bad.as_bytes(), &repo()).is_err(), "{bad}");
        }
        let empty = application(b"{\"metadata\": {}, \"status\": {}}", &repo()).unwrap();
        assert!(empty.history.is_empty() && empty.failed.is_none());
    }
}
