//! The wire models: the few fields the collector reads from each GitHub response,
//! as serde structs that ignore every other field, and their conversion into
//! domain values at the border.
//!
//! Parsing is two-step and per item: a page is first read as a JSON array (or
//! object) of `serde_json::Value`s, then each item is converted on its own. An item
//! that does not fit (a missing field, a malformed sha or date, an unknown state)
//! is an `Err` with a short reason; the caller skips it, counts it and logs it, and
//! the rest of the page goes on. Nothing here panics on any input.

use super::error::{GithubError, Redactor};
use super::rules::parse_root_cause;
use crate::domain::batch::CommitRecord;
use crate::domain::{CommitSha, CompareStatus, Environment, ShaPrefix, StatusState, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why one item was skipped.
pub type Skip = String;

/// A page body as a JSON array, item by item: an item that is valid JSON but
/// cannot be read as a value (nested deeper than `serde_json`'s recursion limit
/// of 128) is an `Err` to skip, not a failure of the whole page. The array itself
/// is scanned without recursion, so no nesting can overflow the stack.
pub fn array(body: &[u8], url: &str) -> Result<Vec<Result<Value, Skip>>, GithubError> {
    let invalid = |reason: String| GithubError::InvalidBody {
        url: url.to_owned(),
        reason,
    };
    match serde_json::from_slice::<Vec<Box<serde_json::value::RawValue>>>(body) {
        Ok(items) => Ok(items
            .iter()
            .map(|raw| {
                serde_json::from_str::<Value>(raw.get())
                    .map_err(|e| format!("unreadable JSON: {e}"))
            })
            .collect()),
        // Not an array: say what it is, or why it is not JSON.
        Err(_) => match serde_json::from_slice::<Value>(body) {
            Ok(other) => Err(invalid(format!(
                "expected a JSON array, got {}",
                kind(&other)
            ))),
            Err(error) => Err(invalid(format!("not JSON: {error}"))),
        },
    }
}

/// A body as a JSON object.
pub fn object(body: &[u8], url: &str) -> Result<Map<String, Value>, GithubError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(GithubError::InvalidBody {
            url: url.to_owned(),
            reason: format!("expected a JSON object, got {}", kind(&other)),
        }),
        Err(error) => Err(GithubError::InvalidBody {
            url: url.to_owned(),
            reason: format!("not JSON: {error}"),
        }),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn typed<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, Skip> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn time(text: &str, field: &str) -> Result<Timestamp, Skip> {
    Timestamp::parse_rfc3339(text).map_err(|e| format!("{field}: {e}"))
}

fn sha(text: &str, field: &str) -> Result<CommitSha, Skip> {
    CommitSha::parse(text).map_err(|e| format!("{field}: {e}"))
}

/// A label: GitHub sends objects with a `name`, its schema also allows strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LabelJson {
    Name(String),
    Object { name: Option<String> },
}

fn label_names(labels: Vec<LabelJson>) -> Vec<String> {
    labels
        .into_iter()
        .filter_map(|label| match label {
            LabelJson::Name(name) => Some(name),
            LabelJson::Object { name } => name,
        })
        .collect()
}

/// A deployment from `GET /repos/{owner}/{repo}/deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireDeployment {
    pub id: u64,
    pub sha: CommitSha,
    /// The environment as GitHub spells it.
    pub environment: Environment,
    pub created_at: Timestamp,
}

pub fn deployment(value: Value) -> Result<WireDeployment, Skip> {
    #[derive(Deserialize)]
    struct Json {
        id: u64,
        sha: String,
        environment: String,
        created_at: String,
    }
    let json: Json = typed(value)?;
    Ok(WireDeployment {
        id: json.id,
        sha: sha(&json.sha, "sha")?,
        environment: Environment::parse(&json.environment)
            .map_err(|e| format!("environment: {e}"))?,
        created_at: time(&json.created_at, "created_at")?,
    })
}

/// A deployment status: its state and time (`redactor` cleans an unknown state).
pub fn deployment_status(
    value: Value,
    redactor: &Redactor,
) -> Result<(StatusState, Timestamp), Skip> {
    #[derive(Deserialize)]
    struct Json {
        state: String,
        created_at: String,
    }
    let json: Json = typed(value)?;
    let state = StatusState::parse(&json.state)
        .ok_or_else(|| format!("unknown state {:?}", redactor.clean(&json.state)))?;
    Ok((state, time(&json.created_at, "created_at")?))
}

/// A workflow run from `GET .../actions/workflows/{workflow_id}/runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRun {
    pub id: u64,
    pub head_branch: Option<String>,
    pub head_sha: CommitSha,
    pub status: String,
    pub conclusion: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn workflow_run(value: Value) -> Result<WireRun, Skip> {
    #[derive(Deserialize)]
    struct Json {
        id: u64,
        head_branch: Option<String>,
        head_sha: String,
        status: Option<String>,
        conclusion: Option<String>,
        created_at: String,
        updated_at: String,
    }
    let json: Json = typed(value)?;
    Ok(WireRun {
        id: json.id,
        head_branch: json.head_branch,
        head_sha: sha(&json.head_sha, "head_sha")?,
        status: json.status.unwrap_or_default(),
        conclusion: json.conclusion,
        created_at: time(&json.created_at, "created_at")?,
        updated_at: time(&json.updated_at, "updated_at")?,
    })
}

/// The `workflow_runs` array and `total_count` of a runs page.
pub fn runs_page(body: &[u8], url: &str) -> Result<(Vec<Value>, Option<u64>), GithubError> {
    let mut map = object(body, url)?;
    let total = map.get("total_count").and_then(Value::as_u64);
    match map.remove("workflow_runs") {
        Some(Value::Array(runs)) => Ok((runs, total)),
        _ => Err(GithubError::InvalidBody {
            url: url.to_owned(),
            reason: "no workflow_runs array".to_owned(),
        }),
    }
}

/// A commit as compare and pull-request commit lists return it.
pub fn commit(value: Value) -> Result<CommitRecord, Skip> {
    #[derive(Deserialize)]
    struct Actor {
        date: Option<String>,
    }
    #[derive(Deserialize)]
    struct Git {
        author: Option<Actor>,
        committer: Option<Actor>,
        message: Option<String>,
    }
    #[derive(Deserialize)]
    struct Parent {
        sha: String,
    }
    #[derive(Deserialize)]
    struct Json {
        sha: String,
        commit: Git,
        #[serde(default)]
        parents: Vec<Parent>,
    }
    let json: Json = typed(value)?;
    let date = json
        .commit
        .author
        .and_then(|a| a.date)
        .or_else(|| json.commit.committer.and_then(|c| c.date))
        .ok_or("no commit.author.date")?;
    let parents = json
        .parents
        .iter()
        .map(|p| sha(&p.sha, "parents[].sha"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CommitRecord::new(
        sha(&json.sha, "sha")?,
        parents,
        time(&date, "commit.author.date")?,
        json.commit.message.as_deref().unwrap_or(""),
    ))
}

/// The head of a compare response: its status, total commits, and this page's
/// commits (still as JSON items). `redactor` cleans an unknown status.
pub fn compare_page(
    body: &[u8],
    url: &str,
    redactor: &Redactor,
) -> Result<(CompareStatus, Option<u64>, Vec<Value>), GithubError> {
    let mut map = object(body, url)?;
    let invalid = |reason: String| GithubError::InvalidBody {
        url: url.to_owned(),
        reason,
    };
    let status = map
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no status".to_owned()))?;
    let status = CompareStatus::parse(status).ok_or_else(|| {
        invalid(format!(
            "unknown compare status {:?}",
            redactor.clean(status)
        ))
    })?;
    let total = map.get("total_commits").and_then(Value::as_u64);
    let commits = match map.remove("commits") {
        Some(Value::Array(commits)) => commits,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(invalid("commits is not an array".to_owned())),
    };
    Ok((status, total, commits))
}

/// An issue from `GET /repos/{owner}/{repo}/issues`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireIssue {
    pub number: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub labels: Vec<String>,
    pub root_cause: Option<ShaPrefix>,
}

/// `Ok(None)` for a pull request (the issues list includes them, with a
/// `pull_request` key).
pub fn issue(value: Value) -> Result<Option<WireIssue>, Skip> {
    #[derive(Deserialize)]
    struct Json {
        number: u64,
        created_at: String,
        updated_at: String,
        closed_at: Option<String>,
        #[serde(default)]
        labels: Vec<LabelJson>,
        body: Option<String>,
    }
    if value
        .as_object()
        .is_some_and(|o| o.contains_key("pull_request"))
    {
        return Ok(None);
    }
    let json: Json = typed(value)?;
    Ok(Some(WireIssue {
        number: json.number,
        created_at: time(&json.created_at, "created_at")?,
        updated_at: time(&json.updated_at, "updated_at")?,
        closed_at: json
            .closed_at
            .as_deref()
            .map(|t| time(t, "closed_at"))
            .transpose()?,
        labels: label_names(json.labels),
        root_cause: json.body.as_deref().and_then(parse_root_cause),
    }))
}

/// A pull request from `GET /repos/{owner}/{repo}/pulls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePull {
    pub number: u64,
    /// When it was opened (the start of its pickup stage).
    pub created_at: Option<Timestamp>,
    /// When its first review was submitted, when the answer said (`Some(None)`:
    /// no review); `None` when it was not asked (REST lists carry no reviews).
    pub first_review: Option<Option<Timestamp>>,
    pub updated_at: Timestamp,
    pub merged_at: Option<Timestamp>,
    pub merge_commit_sha: Option<CommitSha>,
    pub labels: Vec<String>,
}

pub fn pull(value: Value) -> Result<WirePull, Skip> {
    #[derive(Deserialize)]
    struct Json {
        number: u64,
        #[serde(default)]
        created_at: Option<String>,
        updated_at: String,
        merged_at: Option<String>,
        merge_commit_sha: Option<String>,
        #[serde(default)]
        labels: Vec<LabelJson>,
    }
    let json: Json = typed(value)?;
    Ok(WirePull {
        number: json.number,
        created_at: json
            .created_at
            .as_deref()
            .map(|t| time(t, "created_at"))
            .transpose()?,
        updated_at: time(&json.updated_at, "updated_at")?,
        merged_at: json
            .merged_at
            .as_deref()
            .map(|t| time(t, "merged_at"))
            .transpose()?,
        merge_commit_sha: json
            .merge_commit_sha
            .as_deref()
            .map(|s| sha(s, "merge_commit_sha"))
            .transpose()?,
        labels: label_names(json.labels),
        first_review: None,
    })
}

/// A pull request review of `/pulls/{n}/reviews`: when it was submitted;
/// `None` for a pending one (no `submitted_at`).
pub fn review_submitted_at(value: Value) -> Result<Option<Timestamp>, Skip> {
    #[derive(Deserialize)]
    struct Json {
        state: String,
        #[serde(default)]
        submitted_at: Option<String>,
    }
    let json: Json = typed(value)?;
    if json.state.eq_ignore_ascii_case("PENDING") {
        return Ok(None);
    }
    json.submitted_at
        .as_deref()
        .map(|t| time(t, "submitted_at"))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn deployments_ignore_unknown_fields_and_reject_bad_values() {
        let good = json!({"id": 7, "sha": SHA, "environment": "Production",
            "created_at": "2025-01-15T12:00:00Z", "payload": {"x": [1, 2]}, "new_field": null});
        let d = deployment(good).unwrap();
        assert_eq!(d.id, 7);
        assert_eq!(d.environment.as_str(), "Production");
        assert_eq!(d.created_at, Timestamp(1_736_942_400));
        let cases = [
            json!({"id": 7, "sha": "nope", "environment": "p", "created_at": "2025-01-15T12:00:00Z"}),
            json!({"id": -1, "sha": SHA, "environment": "p", "created_at": "2025-01-15T12:00:00Z"}),
            json!({"id": 7, "sha": SHA, "environment": "p", "created_at": "yesterday"}),
            json!({"id": 7, "sha": SHA, "environment": "", "created_at": "2025-01-15T12:00:00Z"}),
            json!({"sha": SHA}),
            json!([1, 2]),
            json!(null),
        ];
        for case in cases {
            assert!(deployment(case.clone()).is_err(), "{case}");
        }
    }

    #[test]
    fn statuses_with_unknown_states_are_skipped() {
        let none = Redactor::default();
        let ok = deployment_status(
            json!({"state": "success", "created_at": "2025-01-15T12:00:00Z"}),
            &none,
        );
        assert_eq!(ok, Ok((StatusState::Success, Timestamp(1_736_942_400))));
        let odd = deployment_status(
            json!({"state": "exploded\n", "created_at": "2025-01-15T12:00:00Z"}),
            &none,
        );
        assert_eq!(odd, Err("unknown state \"exploded\"".to_owned()));
    }

    #[test]
    fn issues_skip_pull_requests_and_read_root_causes() {
        let pr = json!({"number": 1, "pull_request": {"url": "x"}});
        assert_eq!(issue(pr), Ok(None));
        let reopened = json!({"number": 2, "created_at": "2025-01-15T12:00:00Z",
            "updated_at": "2025-01-15T13:00:00Z", "closed_at": null,
            "labels": [{"name": "incident", "color": "d73a4a"}, "sev1", {"id": 3}],
            "body": "Outage.\nRoot cause: `abcdef1`.\n"});
        let wire = issue(reopened).unwrap().unwrap();
        assert_eq!(wire.closed_at, None);
        assert_eq!(wire.labels, vec!["incident".to_owned(), "sev1".to_owned()]);
        assert_eq!(wire.root_cause.unwrap().as_str(), "abcdef1");
    }

    #[test]
    fn commits_keep_parents_and_author_dates() {
        let value = json!({"sha": SHA, "commit": {"author": {"date": "2025-01-15T12:00:00Z"},
            "committer": {"date": "2025-01-16T12:00:00Z"}, "message": "Revert \"x\"\n\nbody"},
            "parents": [{"sha": SHA}]});
        let record = commit(value).unwrap();
        assert_eq!(record.author_date, Timestamp(1_736_942_400));
        assert_eq!(record.parents.len(), 1);
        assert!(record.is_revert());
        let no_date = json!({"sha": SHA, "commit": {"message": "x"}});
        assert!(commit(no_date).is_err());
    }

    #[test]
    fn an_item_nested_too_deeply_is_skipped_alone() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let body = format!(r#"[{{"id": 1}}, {{"payload": {deep}}}, null]"#);
        let items = array(body.as_bytes(), "u").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Ok(json!({"id": 1})));
        assert!(items[1].as_ref().unwrap_err().contains("recursion limit"));
        assert_eq!(items[2], Ok(Value::Null));
    }

    #[test]
    fn bodies_that_are_not_the_expected_shape_name_the_url() {
        let error = array(b"{\"message\":\"x\"}", "http://h/x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unexpected response from http://h/x: expected a JSON array, got an object"
        );
        assert!(array(b"[1,", "u").is_err());
        assert!(runs_page(b"{\"total_count\": 1}", "u").is_err());
        let none = Redactor::default();
        assert!(compare_page(b"{\"status\": \"sideways\"}", "u", &none).is_err());
        let (status, total, commits) = compare_page(
            br#"{"status":"behind","total_commits":0,"commits":[]}"#,
            "u",
            &none,
        )
        .unwrap();
        assert_eq!(
            (status, total, commits.len()),
            (CompareStatus::Behind, Some(0), 0)
        );
    }
}

/// A connection's `pageInfo { hasNextPage endCursor }`.
#[derive(Deserialize)]
pub(super) struct PageInfo {
    #[serde(rename = "hasNextPage")]
    has_next_page: bool,
    #[serde(rename = "endCursor")]
    end_cursor: Option<String>,
}

impl PageInfo {
    /// The cursor of the next page; `None` on the last one.
    pub(super) fn next(self) -> Option<String> {
        self.end_cursor.filter(|_| self.has_next_page)
    }
}
