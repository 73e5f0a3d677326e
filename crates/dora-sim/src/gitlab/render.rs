//! GitLab's JSON shapes for the simulated objects: users, projects, namespaces,
//! environments, deployments (with their job), pipelines, commits, compares,
//! merge requests and issues, following the entities of GitLab's OpenAPI
//! description (`APIEntities…`).
//!
//! Timestamps are GitLab's: milliseconds, `Z` for records and a `+00:00` offset
//! for commit dates. API links point at the simulator, web links at
//! `https://gitlab.example.com`. Values GitLab gives as `null` (an open issue's
//! `closed_at`, an unmerged merge request's `merged_at`) are `null` here too.
//! Nothing here filters or paginates.

use super::model::{
    deployment_view, issue_type, pipeline_view, GitlabGroup, GitlabProject, SimEnvironment,
};
use crate::domain::{CommitSha, Timestamp};
use crate::model::{MergeStyle, Person, SimDeployment, SimIssue, SimPull, SimRepo, SimWorkflowRun};
use serde_json::{json, Value};

/// Where web links point.
pub(crate) const WEB_URL: &str = "https://gitlab.example.com";

/// GitLab's record timestamps: milliseconds and `Z`.
pub(crate) fn ts(at: Timestamp) -> String {
    at.to_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn opt_ts(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// GitLab's commit dates: milliseconds and a numeric offset.
fn commit_ts(at: Timestamp) -> String {
    at.to_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// The rendering context of one request.
pub(crate) struct Ctx<'a> {
    pub group: &'a GitlabGroup,
    pub index: usize,
    pub project: &'a GitlabProject,
    pub repo: &'a SimRepo,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(group: &'a GitlabGroup, index: usize) -> Option<Self> {
        Some(Ctx {
            group,
            index,
            project: group.projects.get(index)?,
            repo: group.org.repos.get(index)?,
        })
    }

    fn web(&self) -> String {
        format!("{WEB_URL}/{}", self.project.path)
    }

    /// A user (`APIEntitiesUserBasic`).
    pub(crate) fn user(&self, index: u32) -> Value {
        user(self.group.org.people.get(index as usize))
    }

    /// The project (`APIEntitiesProject` and the access fields of
    /// `…WithAccessAndCatalogSetting`).
    pub(crate) fn project(&self, full: bool) -> Value {
        let p = self.project;
        let web = self.web();
        let mut value = json!({
            "id": p.id,
            "description": format!("The {} service", self.repo.name),
            "name": p.name(),
            "name_with_namespace": p.path.replace('/', " / "),
            "path": p.name(),
            "path_with_namespace": p.path,
            "created_at": ts(self.repo.created_at),
            "default_branch": self.repo.default_branch,
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": format!("git@gitlab.example.com:{}.git", p.path),
            "http_url_to_repo": format!("{web}.git"),
            "web_url": web,
            "readme_url": format!("{web}/-/blob/{}/README.md", self.repo.default_branch),
            "forks_count": 0,
            "avatar_url": Value::Null,
            "star_count": 0,
            "last_activity_at": ts(self.group.org.now),
            "visibility": "private",
            "namespace": self.namespace(),
            "empty_repo": false,
            "archived": false,
            "issues_enabled": true,
            "merge_requests_enabled": true,
            "jobs_enabled": true,
            "open_issues_count": self.repo.issues.iter().filter(|i| i.is_open()).count(),
            "updated_at": ts(self.group.org.now),
        });
        if full {
            // GitLab's `permissions` (access levels as numbers, which its
            // description types as strings) are left out: the collector
            // never reads them.
            value["cicd_catalog_enabled"] = json!(false);
        }
        value
    }

    /// The project's namespace (`APIEntitiesNamespaceBasic`).
    fn namespace(&self) -> Value {
        let full_path = self.project.namespace();
        let path = full_path.rsplit('/').next().unwrap_or(full_path);
        let depth = full_path.matches('/').count() as u64;
        json!({
            "id": self.group.group_id + depth,
            "name": path,
            "path": path,
            "kind": "group",
            "full_path": full_path,
            "parent_id": if depth == 0 { Value::Null } else { json!(self.group.group_id + depth - 1) },
            "avatar_url": Value::Null,
            "web_url": format!("{WEB_URL}/groups/{full_path}"),
        })
    }

    /// An environment (`APIEntitiesEnvironment`).
    pub(crate) fn environment(&self, e: &SimEnvironment) -> Value {
        let mut value = self.environment_basic(e);
        value["tier"] = json!(e.tier.as_str());
        value["state"] = json!("available");
        value["description"] = Value::Null;
        value
    }

    /// The environment embedded in a deployment (`APIEntitiesEnvironmentBasic`,
    /// no tier).
    fn environment_basic(&self, e: &SimEnvironment) -> Value {
        let slug: String = e
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        json!({
            "id": e.id,
            "name": &*e.name,
            "slug": slug,
            "external_url": format!("https://{slug}.{}.example.com", self.project.name().to_ascii_lowercase()),
            "created_at": ts(e.created_at),
            "updated_at": ts(e.updated_at),
        })
    }

    /// A deployment (`APIEntitiesDeployment`) with its job.
    pub(crate) fn deployment(&self, d: &SimDeployment, environments: &[SimEnvironment]) -> Value {
        let view = deployment_view(d);
        let iid = self
            .repo
            .deployments
            .iter()
            .position(|x| x.id == d.id)
            .map_or(0, |i| i + 1);
        let environment = environments
            .iter()
            .find(|e| e.name == d.environment)
            .map_or(Value::Null, |e| self.environment_basic(e));
        let job_id = d.id + 7_000_000_000;
        let pipeline_id = d.id + 3_000_000_000;
        let status = view.status.as_str();
        let duration = view.finished_at.map(|f| (f.0 - d.created_at.0) as f64);
        json!({
            "id": d.id,
            "iid": iid,
            "ref": &*d.git_ref,
            "sha": d.sha.to_string(),
            "created_at": ts(d.created_at),
            "updated_at": ts(view.updated_at),
            "status": status,
            "user": self.user(d.creator),
            "environment": environment,
            "deployable": {
                "id": job_id,
                "status": status,
                "stage": "deploy",
                "name": format!("deploy:{}", d.environment),
                "ref": &*d.git_ref,
                "tag": false,
                "coverage": Value::Null,
                "allow_failure": false,
                "created_at": ts(d.created_at),
                "started_at": ts(d.created_at),
                "finished_at": opt_ts(view.finished_at),
                "erased_at": Value::Null,
                "duration": duration,
                "queued_duration": 0.0,
                "user": self.user(d.creator),
                "commit": self.repo.commit_index(&d.sha).map_or(Value::Null, |i| self.commit(i)),
                "pipeline": {
                    "id": pipeline_id,
                    "iid": iid,
                    "project_id": self.project.id,
                    "sha": d.sha.to_string(),
                    "ref": &*d.git_ref,
                    "status": status,
                    "source": "push",
                    "created_at": ts(d.created_at),
                    "updated_at": ts(view.updated_at),
                    "web_url": format!("{}/-/pipelines/{pipeline_id}", self.web()),
                },
                "failure_reason": if status == "failed" { json!("script_failure") } else { Value::Null },
                "web_url": format!("{}/-/jobs/{job_id}", self.web()),
                "artifacts": [],
                "runner": Value::Null,
                "artifacts_expire_at": Value::Null,
                "archived": false,
                "tag_list": [],
            },
        })
    }

    /// A pipeline (`APIEntitiesCiPipelineBasic`, or `…WithMetadata` with
    /// `detail`).
    pub(crate) fn pipeline(&self, run: &SimWorkflowRun, detail: bool) -> Value {
        let (status, finished_at) = pipeline_view(run);
        let iid = self
            .repo
            .workflow_runs
            .iter()
            .position(|r| r.id == run.id)
            .map_or(0, |i| i + 1);
        let source = match run.event {
            crate::model::RunEvent::Push => "push",
            crate::model::RunEvent::PullRequest => "merge_request_event",
            crate::model::RunEvent::WorkflowDispatch => "web",
        };
        let mut value = json!({
            "id": run.id,
            "iid": iid,
            "project_id": self.project.id,
            "sha": run.head_sha.to_string(),
            "ref": &*run.head_branch,
            "status": status,
            "source": source,
            "created_at": ts(run.created_at),
            "updated_at": ts(run.updated_at),
            "web_url": format!("{}/-/pipelines/{}", self.web(), run.id),
        });
        if detail {
            let started = run.run_started_at;
            let extra = json!({
                "before_sha": "0000000000000000000000000000000000000000",
                "tag": false,
                "yaml_errors": Value::Null,
                "user": self.user(run.actor),
                "started_at": ts(started),
                "finished_at": opt_ts(finished_at),
                "committed_at": Value::Null,
                "duration": finished_at.map(|f| f.0 - started.0),
                "queued_duration": started.0 - run.created_at.0,
                "coverage": Value::Null,
                "detailed_status": {
                    "icon": format!("status_{status}"),
                    "text": status,
                    "label": status,
                    "group": status,
                    "tooltip": status,
                    "has_details": true,
                    "details_path": format!("/{}/-/pipelines/{}", self.project.path, run.id),
                    "illustration": Value::Null,
                    "favicon": format!("/assets/ci_favicons/favicon_status_{status}.png"),
                },
                "archived": false,
                "name": Value::Null,
            });
            value = extend(value, extra);
        }
        value
    }

    /// A commit of the list (`APIEntitiesCommit`).
    pub(crate) fn commit(&self, index: u32) -> Value {
        let c = &self.repo.commits[index as usize];
        let author = self.group.org.people.get(c.author as usize);
        let (name, email) = author.map_or(("Someone", "someone@example.com"), |p| {
            (p.name.as_str(), p.email.as_str())
        });
        let (committer, committer_email) = if c.committed_by_github() {
            ("GitLab", "noreply@gitlab.example.com")
        } else {
            (name, email)
        };
        let message = self.repo.commit_message(index);
        let sha = c.sha.to_string();
        json!({
            "id": sha,
            "short_id": &sha[..8],
            "created_at": commit_ts(c.committer_date),
            "parent_ids": self.repo.parent_shas(index).iter().map(CommitSha::to_string).collect::<Vec<_>>(),
            "title": message.lines().next().unwrap_or(""),
            "message": message,
            "author_name": name,
            "author_email": email,
            "authored_date": commit_ts(c.author_date),
            "committer_name": committer,
            "committer_email": committer_email,
            "committed_date": commit_ts(c.committer_date),
            "trailers": {},
            "extended_trailers": {},
            "web_url": format!("{}/-/commit/{sha}", self.web()),
        })
    }

    /// A single commit (`APIEntitiesCommitDetail`).
    pub(crate) fn commit_detail(&self, index: u32) -> Value {
        let mut value = self.commit(index);
        value["stats"] = json!({"additions": 12, "deletions": 3, "total": 15});
        value["status"] = Value::Null;
        value["project_id"] = json!(self.project.id);
        value["last_pipeline"] = Value::Null;
        value
    }

    /// A merge request (`APIEntitiesMergeRequestBasic`).
    pub(crate) fn merge_request(&self, iid: usize, p: &SimPull) -> Value {
        let state = match (p.merged_at, p.closed_at) {
            (Some(_), _) => "merged",
            (None, Some(_)) => "closed",
            (None, None) => "opened",
        };
        let merge_commit = p
            .merge_commit
            .map(|i| self.repo.commits[i as usize].sha.to_string());
        let (merge_commit_sha, squash_commit_sha) = match p.merge_style {
            MergeStyle::MergeCommit => (merge_commit.clone(), None),
            MergeStyle::Squash => (None, merge_commit.clone()),
        };
        let head = self
            .repo
            .commits
            .get(p.head() as usize)
            .map(|c| c.sha.to_string());
        let reference = format!("!{iid}");
        let value = json!({
            "id": p.id,
            "iid": iid,
            "project_id": self.project.id,
            "title": p.title.render(),
            "description": format!("Closes nothing; {} commit(s).", p.commits.len()),
            "state": state,
            "created_at": ts(p.created_at),
            "updated_at": ts(p.updated_at),
            "merged_by": p.merged_at.map_or(Value::Null, |_| self.user(p.user)),
            "merge_user": p.merged_at.map_or(Value::Null, |_| self.user(p.user)),
            "merged_at": opt_ts(p.merged_at),
            "closed_by": if state == "closed" { self.user(p.user) } else { Value::Null },
            "closed_at": if state == "closed" { opt_ts(p.closed_at) } else { Value::Null },
            "target_branch": self.repo.default_branch,
            "source_branch": p.branch(),
            "user_notes_count": p.comments,
            "upvotes": 0,
            "downvotes": 0,
            "author": author(self.group.org.people.get(p.user as usize)),
            "assignees": [],
            "assignee": Value::Null,
            "reviewers": [],
        });
        let more = json!({
            "source_project_id": self.project.id,
            "target_project_id": self.project.id,
            "labels": p.labels,
            "draft": p.draft,
            "work_in_progress": p.draft,
            "milestone": Value::Null,
            "merge_when_pipeline_succeeds": false,
            "merge_status": "can_be_merged",
            "detailed_merge_status": if state == "opened" { "mergeable" } else { "not_open" },
            "sha": head,
            "merge_commit_sha": merge_commit_sha,
            "squash_commit_sha": squash_commit_sha,
            "discussion_locked": Value::Null,
            "should_remove_source_branch": Value::Null,
            "force_remove_source_branch": true,
            "prepared_at": ts(p.created_at),
            "reference": reference,
            "references": {
                "short": reference,
                "relative": reference,
                "full": format!("{}{reference}", self.project.path),
            },
            "web_url": format!("{}/-/merge_requests/{iid}", self.web()),
            "time_stats": time_stats(),
            "squash": p.merge_style == MergeStyle::Squash,
            "squash_on_merge": p.merge_style == MergeStyle::Squash,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": false,
            "blocking_discussions_resolved": true,
        });
        extend(value, more)
    }

    /// An issue (`APIEntitiesIssue`).
    pub(crate) fn issue(&self, iid: usize, i: &SimIssue) -> Value {
        let kind = issue_type(i);
        let reference = format!("#{iid}");
        let web = format!("{}/-/issues/{iid}", self.web());
        json!({
            "id": i.id,
            "iid": iid,
            "project_id": self.project.id,
            "title": i.title,
            "description": i.body,
            "state": if i.is_open() { "opened" } else { "closed" },
            "created_at": ts(i.created_at),
            "updated_at": ts(i.updated_at),
            "closed_at": opt_ts(i.closed_at),
            "closed_by": i.closed_at.map_or(Value::Null, |_| self.user(i.user)),
            "labels": i.labels,
            "milestone": Value::Null,
            "assignees": [],
            "author": self.user(i.user),
            "type": kind.to_ascii_uppercase(),
            "assignee": Value::Null,
            "user_notes_count": i.comments,
            "merge_requests_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "due_date": Value::Null,
            "confidential": false,
            "discussion_locked": Value::Null,
            "issue_type": kind,
            "web_url": web,
            "time_stats": time_stats(),
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_tasks": false,
            "_links": {
                "self": format!("{}/projects/{}/issues/{iid}", crate::gitlab::API_PATH, self.project.id),
                "notes": format!("{}/projects/{}/issues/{iid}/notes", crate::gitlab::API_PATH, self.project.id),
                "award_emoji": format!("{}/projects/{}/issues/{iid}/award_emoji", crate::gitlab::API_PATH, self.project.id),
                "project": format!("{}/projects/{}", crate::gitlab::API_PATH, self.project.id),
                "closed_as_duplicate_of": Value::Null,
            },
            "references": {
                "short": reference,
                "relative": reference,
                "full": format!("{}{reference}", self.project.path),
            },
            "severity": "UNKNOWN",
            "moved_to_id": Value::Null,
            "imported": false,
            "imported_from": "none",
            "service_desk_reply_to": Value::Null,
        })
    }

    /// A compare (`APIEntitiesCompare`) of `commits` (oldest first) to `head`.
    pub(crate) fn compare(&self, head: Option<u32>, commits: &[u32], same_ref: bool) -> Value {
        json!({
            "commit": head.map_or(Value::Null, |h| self.commit(h)),
            "commits": commits.iter().map(|c| self.commit(*c)).collect::<Vec<_>>(),
            "diffs": [],
            "compare_timeout": false,
            "compare_same_ref": same_ref,
            "web_url": format!("{}/-/compare", self.web()),
        })
    }
}

/// `base` with the properties of `more` added.
fn extend(mut base: Value, more: Value) -> Value {
    if let (Value::Object(base), Value::Object(more)) = (&mut base, more) {
        base.extend(more);
    }
    base
}

fn time_stats() -> Value {
    json!({
        "time_estimate": 0,
        "total_time_spent": 0,
        "human_time_estimate": Value::Null,
        "human_total_time_spent": Value::Null,
    })
}

/// `APIEntitiesUserBasic` of `person` (a missing one renders a ghost user).
fn user(person: Option<&Person>) -> Value {
    let (id, username, name) = person.map_or((1, "ghost", "Ghost User"), |p| {
        (p.id, p.login.as_str(), p.name.as_str())
    });
    let username = username.replace(['[', ']'], "");
    json!({
        "id": id,
        "username": username,
        "public_email": Value::Null,
        "name": name,
        "state": "active",
        "locked": false,
        "avatar_url": format!("https://secure.gravatar.com/avatar/{id}?s=80&d=identicon"),
        "web_url": format!("{WEB_URL}/{username}"),
    })
}

/// `APIEntitiesMergeRequestAuthor`: a user with `bot`.
fn author(person: Option<&Person>) -> Value {
    let mut value = user(person);
    value["bot"] = json!(person.is_some_and(|p| p.bot));
    value
}
