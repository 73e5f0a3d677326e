//! GitLab's wire JSON → what the steps need, item by item: a page is a JSON
//! array whose items are read one at a time, so that one odd item is skipped
//! (and counted and logged by the caller) rather than failing the page. Only
//! the fields the collector reads are declared; GitLab's others are ignored.
//!
//! Not here: what the states mean (`rules.rs`), requests (`client.rs`).

use super::error::GitlabError;
use crate::domain::batch::CommitRecord;
use crate::domain::{CommitSha, Timestamp};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Why an item was skipped (untrusted text; the caller masks the token in it).
pub type Skip = String;

/// The items of a page that must be a JSON array.
pub fn array(body: &[u8], url: &str) -> Result<Vec<serde_json::Value>, GitlabError> {
    serde_json::from_slice::<Vec<serde_json::Value>>(body).map_err(|e| GitlabError::InvalidBody {
        url: url.to_owned(),
        reason: format!("expected a JSON array: {e}"),
    })
}

/// One item as `T`.
pub fn item<T: DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<T, Skip> {
    serde_json::from_value(value).map_err(|e| format!("unexpected {what}: {e}"))
}

/// An RFC 3339 time (GitLab's milliseconds and offsets), whole seconds.
pub fn time(text: &str, field: &str) -> Result<Timestamp, Skip> {
    Timestamp::parse_rfc3339(text).map_err(|e| format!("{field}: {e}"))
}

fn optional_time(text: Option<&str>, field: &str) -> Result<Option<Timestamp>, Skip> {
    text.map(|t| time(t, field)).transpose()
}

fn sha(text: &str, field: &str) -> Result<CommitSha, Skip> {
    CommitSha::parse(text).map_err(|e| format!("{field}: {e}"))
}

/// The environment a deployment names (`APIEntitiesEnvironmentBasic`).
#[derive(Debug, Clone, Deserialize)]
pub struct WireEnvironmentRef {
    pub id: Option<u64>,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct WireJob {
    finished_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawDeployment {
    id: u64,
    status: String,
    sha: String,
    created_at: String,
    updated_at: String,
    /// Not in GitLab's entity today; read first if it ever is.
    #[serde(default)]
    finished_at: Option<String>,
    environment: Option<WireEnvironmentRef>,
    deployable: Option<WireJob>,
}

/// A deployment as the steps read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireDeployment {
    pub id: u64,
    pub status: String,
    pub sha: CommitSha,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The deployment's `finished_at`, else its job's.
    pub finished_at: Option<Timestamp>,
    pub environment: String,
    pub environment_id: Option<u64>,
}

/// A deployment of a list.
pub fn deployment(value: serde_json::Value) -> Result<WireDeployment, Skip> {
    let raw: RawDeployment = item(value, "deployment")?;
    let environment = raw
        .environment
        .ok_or_else(|| "a deployment without an environment".to_owned())?;
    let job_finished = raw.deployable.and_then(|job| job.finished_at);
    let finished = raw.finished_at.or(job_finished);
    Ok(WireDeployment {
        id: raw.id,
        status: raw.status,
        sha: sha(&raw.sha, "sha")?,
        created_at: time(&raw.created_at, "created_at")?,
        updated_at: time(&raw.updated_at, "updated_at")?,
        finished_at: optional_time(finished.as_deref(), "finished_at")?,
        environment: environment.name,
        environment_id: environment.id,
    })
}

/// An environment of the project (`APIEntitiesEnvironment`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WireEnvironment {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub tier: Option<String>,
}

/// A pipeline (`APIEntitiesCiPipelineBasic`, `…WithMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePipeline {
    pub id: u64,
    pub status: String,
    pub sha: CommitSha,
    pub git_ref: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Only in the single pipeline.
    pub finished_at: Option<Timestamp>,
}

/// A pipeline of a list or a single one.
pub fn pipeline(value: serde_json::Value) -> Result<WirePipeline, Skip> {
    #[derive(Deserialize)]
    struct Raw {
        id: u64,
        status: String,
        sha: String,
        #[serde(rename = "ref")]
        git_ref: String,
        created_at: String,
        updated_at: String,
        #[serde(default)]
        finished_at: Option<String>,
    }
    let raw: Raw = item(value, "pipeline")?;
    Ok(WirePipeline {
        id: raw.id,
        status: raw.status,
        sha: sha(&raw.sha, "sha")?,
        git_ref: raw.git_ref,
        created_at: time(&raw.created_at, "created_at")?,
        updated_at: time(&raw.updated_at, "updated_at")?,
        finished_at: optional_time(raw.finished_at.as_deref(), "finished_at")?,
    })
}

/// A commit (`APIEntitiesCommit`): the record and its committer date.
pub fn commit(value: serde_json::Value) -> Result<(CommitRecord, Timestamp), Skip> {
    #[derive(Deserialize)]
    struct Raw {
        id: String,
        #[serde(default)]
        parent_ids: Vec<String>,
        authored_date: String,
        committed_date: String,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        title: Option<String>,
    }
    let raw: Raw = item(value, "commit")?;
    let sha = sha(&raw.id, "id")?;
    let parents = raw
        .parent_ids
        .iter()
        .map(|p| self::sha(p, "parent_ids"))
        .collect::<Result<Vec<_>, _>>()?;
    let message = raw.message.or(raw.title).unwrap_or_default();
    let record = CommitRecord::new(
        sha,
        parents,
        time(&raw.authored_date, "authored_date")?,
        &message,
    );
    Ok((record, time(&raw.committed_date, "committed_date")?))
}

/// The commits of a compare (`APIEntitiesCompare`).
pub fn compare_commits(body: &[u8], url: &str) -> Result<Vec<serde_json::Value>, GitlabError> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        commits: Vec<serde_json::Value>,
    }
    serde_json::from_slice::<Raw>(body)
        .map(|raw| raw.commits)
        .map_err(|e| GitlabError::InvalidBody {
            url: url.to_owned(),
            reason: format!("expected a compare: {e}"),
        })
}

/// A merge request (`APIEntitiesMergeRequestBasic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMergeRequest {
    pub iid: u64,
    /// When it was opened (the `coding` stage's end).
    pub created_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub merged_at: Option<Timestamp>,
    pub merge_commit_sha: Option<CommitSha>,
    pub squash_commit_sha: Option<CommitSha>,
    pub labels: Vec<String>,
}

/// A merge request of a list.
pub fn merge_request(value: serde_json::Value) -> Result<WireMergeRequest, Skip> {
    #[derive(Deserialize)]
    struct Raw {
        iid: u64,
        created_at: Option<String>,
        updated_at: String,
        merged_at: Option<String>,
        merge_commit_sha: Option<String>,
        squash_commit_sha: Option<String>,
        #[serde(default)]
        labels: Vec<String>,
    }
    let raw: Raw = item(value, "merge request")?;
    let optional_sha = |text: Option<String>, field: &str| {
        text.filter(|t| !t.is_empty())
            .map(|t| sha(&t, field))
            .transpose()
    };
    Ok(WireMergeRequest {
        iid: raw.iid,
        created_at: optional_time(raw.created_at.as_deref(), "created_at")?,
        updated_at: time(&raw.updated_at, "updated_at")?,
        merged_at: optional_time(raw.merged_at.as_deref(), "merged_at")?,
        merge_commit_sha: optional_sha(raw.merge_commit_sha, "merge_commit_sha")?,
        squash_commit_sha: optional_sha(raw.squash_commit_sha, "squash_commit_sha")?,
        labels: raw.labels,
    })
}

/// An issue (`APIEntitiesIssue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireIssue {
    pub iid: u64,
    /// `issue_type` (`incident`, `issue`, …), else `type` lowercased.
    pub issue_type: String,
    pub state: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub labels: Vec<String>,
    pub description: Option<String>,
}

/// An issue of a list.
pub fn issue(value: serde_json::Value) -> Result<WireIssue, Skip> {
    #[derive(Deserialize)]
    struct Raw {
        iid: u64,
        #[serde(default)]
        issue_type: Option<String>,
        #[serde(default, rename = "type")]
        kind: Option<String>,
        state: String,
        created_at: String,
        updated_at: String,
        closed_at: Option<String>,
        #[serde(default)]
        labels: Vec<String>,
        #[serde(default)]
        description: Option<String>,
    }
    let raw: Raw = item(value, "issue")?;
    let issue_type = raw
        .issue_type
        .or(raw.kind)
        .unwrap_or_else(|| "issue".to_owned())
        .to_ascii_lowercase();
    Ok(WireIssue {
        iid: raw.iid,
        issue_type,
        state: raw.state,
        created_at: time(&raw.created_at, "created_at")?,
        updated_at: time(&raw.updated_at, "updated_at")?,
        closed_at: optional_time(raw.closed_at.as_deref(), "closed_at")?,
        labels: raw.labels,
        description: raw.description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "99d03678b90d914dbb1b109132516d71a4a03ea8";

    #[test]
    fn a_deployment_takes_its_jobs_finish_and_its_environment() {
        let d = deployment(json!({
            "id": 41, "iid": 1, "ref": "main", "sha": SHA, "status": "success",
            "created_at": "2016-08-11T07:36:40.222Z", "updated_at": "2016-08-11T07:38:12.414Z",
            "environment": {"id": 9, "name": "production"},
            "deployable": {"finished_at": "2016-08-11T07:36:39.851+02:00", "status": "success"},
        }))
        .unwrap();
        assert_eq!(d.finished_at.unwrap().to_rfc3339(), "2016-08-11T05:36:39Z");
        assert_eq!(
            (d.environment.as_str(), d.environment_id),
            ("production", Some(9))
        );
        for hostile in [
            json!(null),
            json!({"id": 1, "status": "success", "sha": "nope", "created_at": "2016-08-11T07:36:40Z", "updated_at": "2016-08-11T07:36:40Z", "environment": {"name": "p"}}),
            json!({"id": 1, "status": "success", "sha": SHA, "created_at": "then", "updated_at": "2016-08-11T07:36:40Z", "environment": {"name": "p"}}),
            json!({"id": 1, "status": "success", "sha": SHA, "created_at": "2016-08-11T07:36:40Z", "updated_at": "2016-08-11T07:36:40Z"}),
            json!({"id": -1, "status": "success", "sha": SHA, "created_at": "2016-08-11T07:36:40Z", "updated_at": "2016-08-11T07:36:40Z", "environment": {"name": "p"}}),
        ] {
            assert!(deployment(hostile.clone()).is_err(), "{hostile}");
        }
    }

    #[test]
    fn commits_issues_and_merge_requests_read_what_the_steps_need() {
        let (record, committed) = commit(json!({
            "id": SHA, "parent_ids": [SHA], "authored_date": "2012-05-28T04:42:42-07:00",
            "committed_date": "2012-05-28T04:43:00-07:00", "message": "Revert \"x\"\n\nbody",
        }))
        .unwrap();
        assert!(record.is_revert());
        assert_eq!(record.parents.len(), 1);
        assert_eq!(committed.0 - record.author_date.0, 18);
        let issue = issue(json!({
            "iid": 3, "type": "INCIDENT", "state": "closed", "labels": ["Sev1"],
            "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-02T00:00:00Z",
            "closed_at": "2025-01-02T00:00:00Z", "description": null,
        }))
        .unwrap();
        assert_eq!(issue.issue_type, "incident");
        let mr = merge_request(json!({
            "iid": 7, "updated_at": "2025-01-02T00:00:00Z", "merged_at": "2025-01-02T00:00:00Z",
            "merge_commit_sha": null, "squash_commit_sha": SHA, "labels": ["hotfix"],
        }))
        .unwrap();
        assert_eq!(mr.squash_commit_sha.unwrap().to_string(), SHA);
        assert_eq!(mr.merge_commit_sha, None);
    }
}
