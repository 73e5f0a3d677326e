//! The collector's reading of Jenkins builds (the `builds` or `allBuilds` of a
//! job's `api/json`, with the fields of [`BUILD_FIELDS`]). Pure: no I/O, no
//! panics on any input.
//!
//! - A build still `building` (or without a `result` yet) is not final: it is
//!   read again.
//! - `SUCCESS` is a deployment of the commit the git plugin built
//!   (`lastBuiltRevision.SHA1` of the `BuildData` action whose `remoteUrls`
//!   name the repository; the only one when just one has no such URL); deploy
//!   time `timestamp + duration` (milliseconds), created at `timestamp`.
//! - `FAILURE` is a failed attempt; `UNSTABLE` is either, by configuration
//!   (default a failed attempt); `ABORTED` and `NOT_BUILT` are nothing.
//! - Ids ([`build_id`]): the job (its path and an epoch that grows when the job
//!   is re-created) is a 31-bit key in bits 32–62; the low 32 bits are the
//!   build number.

use crate::config::UnstableBuilds;
use crate::domain::{CommitSha, DeploymentOutcome, RepoName, Timestamp};
use crate::sources::rest::url_names;
use serde::Deserialize;
use serde_json::Value;

/// Why one build was skipped.
pub type Skip = String;

/// What is read of each build (`tree=builds[...]`): a few hundred bytes each.
pub const BUILD_FIELDS: &str =
    "number,result,building,timestamp,duration,actions[_class,lastBuiltRevision[SHA1],remoteUrls]";

/// The git plugin's build action.
const BUILD_DATA: &str = "hudson.plugins.git.util.BuildData";

/// The job key's bits (31) and where they start.
const KEY_BITS: u32 = 31;
const KEY_SHIFT: u32 = 32;

/// Domain separation of a job's key.
const KEY_CONTEXT: &[u8] = b"dora-collector jenkins job\0";

/// A job's 31-bit key: a hash of its path and epoch.
pub fn job_key(path: &str, epoch: u32) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(KEY_CONTEXT);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(epoch.to_be_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes) & ((1 << KEY_BITS) - 1)
}

/// The deployment id of build `number` of the job with `key`.
pub fn build_id(key: u64, number: u32) -> u64 {
    (key << KEY_SHIFT) | u64::from(number)
}

#[derive(Debug, Deserialize)]
struct WireRevision {
    #[serde(rename = "SHA1")]
    sha1: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireAction {
    #[serde(rename = "_class", default)]
    class: Option<String>,
    #[serde(rename = "lastBuiltRevision", default)]
    last_built_revision: Option<WireRevision>,
    #[serde(rename = "remoteUrls", default)]
    remote_urls: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct WireBuild {
    number: u32,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    building: Option<bool>,
    timestamp: i64,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    actions: Vec<Value>,
}

/// What a build is, as far as the metrics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildState {
    /// Still running: read again.
    Running,
    /// Final and not a deployment (`ABORTED`, `NOT_BUILT`).
    Nothing,
    /// Final: a deployment of `sha` (succeeded or failed), created at `created_at`.
    Deployment {
        /// The commit built.
        sha: CommitSha,
        /// When the build was scheduled.
        created_at: Timestamp,
        /// Succeeded or failed, at `timestamp + duration`.
        outcome: DeploymentOutcome,
    },
}

/// One build, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The build number.
    pub number: u32,
    /// When it was scheduled (epoch milliseconds).
    pub timestamp_ms: i64,
    /// What it is.
    pub state: BuildState,
}

/// The builds of a job's answer under `field` (`builds` or `allBuilds`),
/// newest first, each read on its own; `Err` when the answer holds no such
/// list.
pub fn builds(
    body: &[u8],
    field: &str,
    repository: &RepoName,
    unstable: UnstableBuilds,
) -> Result<Vec<Result<Build, Skip>>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not a job: {e}"))?;
    match value.get(field) {
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(|item| build(item.clone(), repository, unstable))
            .collect()),
        // A job that never ran may leave the list out.
        Some(Value::Null) | None if value.is_object() => Ok(Vec::new()),
        _ => Err(format!("not a job: no `{field}` list")),
    }
}

/// The commit of the `BuildData` action that checked out `repository`.
fn built_sha(actions: &[Value], repository: &RepoName) -> Result<CommitSha, Skip> {
    let data: Vec<WireAction> = actions
        .iter()
        .filter_map(|action| serde_json::from_value::<WireAction>(action.clone()).ok())
        .filter(|action| {
            action.class.as_deref() == Some(BUILD_DATA) || action.last_built_revision.is_some()
        })
        .collect();
    let names = |action: &WireAction| {
        action
            .remote_urls
            .iter()
            .flatten()
            .any(|url| url_names(url, repository))
    };
    let chosen = match data.iter().find(|a| names(a)) {
        Some(action) => action,
        None => match data.as_slice() {
            [only] => only,
            [] => return Err("no git checkout (BuildData) in the build".to_owned()),
            _ => {
                return Err(format!(
                    "{} git checkouts and none of {repository}",
                    data.len()
                ))
            }
        },
    };
    let sha = chosen
        .last_built_revision
        .as_ref()
        .and_then(|r| r.sha1.as_deref())
        .ok_or_else(|| "a BuildData without lastBuiltRevision.SHA1".to_owned())?;
    CommitSha::parse(&sha.to_ascii_lowercase())
        .map_err(|_| "lastBuiltRevision.SHA1 is not a commit sha".to_owned())
}

/// The longest text quoted as an unknown result.
const MAX_QUOTED_RESULT: usize = 16;

/// Whether `text` is shaped like a Jenkins result (`SUCCESS`, `NOT_BUILT`).
fn looks_like_result(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_QUOTED_RESULT
        && text.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// Epoch milliseconds as whole seconds (rounded down).
fn seconds(milliseconds: i64) -> Timestamp {
    Timestamp(milliseconds.div_euclid(1000))
}

fn build(value: Value, repository: &RepoName, unstable: UnstableBuilds) -> Result<Build, Skip> {
    let wire: WireBuild =
        serde_json::from_value(value).map_err(|e| format!("unexpected build: {e}"))?;
    let final_result = match (wire.building, wire.result.as_deref()) {
        (Some(true), _) | (_, None) => None,
        (_, Some(result)) => Some(result),
    };
    let state = match final_result {
        None => BuildState::Running,
        Some("ABORTED" | "NOT_BUILT") => BuildState::Nothing,
        Some(result) => {
            let succeeded = match (result, unstable) {
                ("SUCCESS", _) | ("UNSTABLE", UnstableBuilds::Success) => true,
                ("FAILURE", _) | ("UNSTABLE", UnstableBuilds::Failure) => false,
                // Quoted only when it looks like a result (server text).
                (other, _) if looks_like_result(other) => {
                    return Err(format!("unknown result {other:?}"))
                }
                _ => return Err("a result that is not one of Jenkins' results".to_owned()),
            };
            let duration = wire.duration.unwrap_or(0).max(0);
            let at = seconds(wire.timestamp.saturating_add(duration));
            BuildState::Deployment {
                sha: built_sha(&wire.actions, repository)?,
                created_at: seconds(wire.timestamp),
                outcome: if succeeded {
                    DeploymentOutcome::Succeeded { at }
                } else {
                    DeploymentOutcome::Failed { at }
                },
            }
        }
    };
    Ok(Build {
        number: wire.number,
        timestamp_ms: wire.timestamp,
        state,
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
    const LIBRARY: &str = "9999999999999999999999999999999999999999";

    fn data(sha: &str, url: &str) -> Value {
        json!({"_class": BUILD_DATA, "lastBuiltRevision": {"SHA1": sha}, "remoteUrls": [url]})
    }

    fn read(build: Value, unstable: UnstableBuilds) -> Result<Build, Skip> {
        let body = json!({"_class": "hudson.model.FreeStyleProject", "builds": [build]});
        builds(body.to_string().as_bytes(), "builds", &repo(), unstable)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn results_are_read_as_the_definitions_say() {
        let actions = json!([
            {},
            data(LIBRARY, "https://github.com/acme-platform/lib.git"),
            {},
            data(SHA, "git@github.com:acme/api.git")
        ]);
        let with = |result: Value, building: bool| json!({"number": 12, "result": result, "building": building, "timestamp": 1_700_000_000_500i64, "duration": 61_700, "actions": actions});
        let deployed = |outcome| BuildState::Deployment {
            sha: CommitSha::parse(SHA).unwrap(),
            created_at: Timestamp(1_700_000_000),
            outcome,
        };
        let at = Timestamp(1_700_000_062);
        let cases = [
            (
                json!("SUCCESS"),
                UnstableBuilds::Failure,
                deployed(DeploymentOutcome::Succeeded { at }),
            ),
            (
                json!("FAILURE"),
                UnstableBuilds::Success,
                deployed(DeploymentOutcome::Failed { at }),
            ),
            (
                json!("UNSTABLE"),
                UnstableBuilds::Failure,
                deployed(DeploymentOutcome::Failed { at }),
            ),
            (
                json!("UNSTABLE"),
                UnstableBuilds::Success,
                deployed(DeploymentOutcome::Succeeded { at }),
            ),
            (
                json!("ABORTED"),
                UnstableBuilds::Failure,
                BuildState::Nothing,
            ),
            (
                json!("NOT_BUILT"),
                UnstableBuilds::Failure,
                BuildState::Nothing,
            ),
        ];
        for (result, unstable, expected) in cases {
            let build = read(with(result.clone(), false), unstable).unwrap();
            assert_eq!(
                (build.number, build.state),
                (12, expected),
                "{result} {unstable:?}"
            );
        }
        assert_eq!(
            read(with(Value::Null, true), UnstableBuilds::Failure)
                .unwrap()
                .state,
            BuildState::Running
        );
        assert_eq!(
            read(with(json!("SUCCESS"), true), UnstableBuilds::Failure)
                .unwrap()
                .state,
            BuildState::Running,
            "building: not final yet"
        );
        assert_eq!(
            read(with(Value::Null, false), UnstableBuilds::Failure)
                .unwrap()
                .state,
            BuildState::Running
        );
        assert!(read(with(json!("MAYBE"), false), UnstableBuilds::Failure).is_err());
    }

    #[test]
    fn the_checkout_of_the_repository_gives_the_sha() {
        let one = json!({"number": 1, "result": "SUCCESS", "building": false, "timestamp": 0, "duration": 0,
                         "actions": [data(SHA, "https://mirror.example.com/x.git")]});
        let BuildState::Deployment { sha, .. } = read(one, UnstableBuilds::Failure).unwrap().state
        else {
            panic!("a deployment");
        };
        assert_eq!(sha.to_string(), SHA, "the only checkout, whatever its URL");
        let two = json!({"number": 1, "result": "SUCCESS", "building": false, "timestamp": 0, "duration": 0,
                         "actions": [data(SHA, "https://a.example.com/x.git"), data(LIBRARY, "https://b.example.com/y.git")]});
        assert!(read(two, UnstableBuilds::Failure)
            .unwrap_err()
            .contains("none of acme/api"));
        let none = json!({"number": 1, "result": "SUCCESS", "timestamp": 0, "actions": [{}]});
        assert!(read(none, UnstableBuilds::Failure).is_err());
        let aborted = json!({"number": 1, "result": "ABORTED", "timestamp": 0, "actions": []});
        assert_eq!(
            read(aborted, UnstableBuilds::Failure).unwrap().state,
            BuildState::Nothing,
            "no checkout needed"
        );
        for bad in ["[]", "nope", "{\"builds\": 3}"] {
            assert!(
                builds(bad.as_bytes(), "builds", &repo(), UnstableBuilds::Failure).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            builds(
                b"{\"_class\": \"x\"}",
                "allBuilds",
                &repo(),
                UnstableBuilds::Failure
            )
            .unwrap(),
            []
        );
        let odd = builds(b"{\"builds\": [{\"number\": -1}, {\"number\": 2, \"timestamp\": 5, \"building\": true}]}", "builds", &repo(), UnstableBuilds::Failure).unwrap();
        assert!(odd[0].is_err() && odd[1].is_ok());
    }

    #[test]
    fn ids_keep_jobs_and_epochs_apart_within_a_signed_integer() {
        let a = job_key("deploy/api", 0);
        assert!(a < 1 << 31);
        assert_ne!(a, job_key("deploy/api", 1));
        assert_ne!(a, job_key("deploy/web", 0));
        let id = build_id(a, u32::MAX);
        assert!(i64::try_from(id).is_ok());
        assert_eq!(build_id(a, 7) & 0xFFFF_FFFF, 7);
    }
}
