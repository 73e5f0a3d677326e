//! GitHub's JSON shapes for the simulated objects: users, repositories,
//! deployments and statuses, workflow runs, commits, compares, issues, pull
//! requests and the rate-limit document.
//!
//! Every object carries every property GitHub's OpenAPI description marks as
//! required, with realistic values (URLs point at the simulator for API links and
//! at `https://github.com` for web links; node ids use GitHub's legacy base64
//! form). Properties that cannot mean anything here (reactions, milestones,
//! assignees, files) are present but empty. Nothing here filters or paginates.

use crate::domain::{CommitSha, StatusState, Timestamp};
use crate::history::Comparison;
use crate::model::{
    Org, Person, SimCommit, SimDeployment, SimIssue, SimPull, SimRepo, SimStatus, SimWorkflowRun,
    DEPLOY_TASK,
};
use crate::spec::PRODUCTION;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Value};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

/// Where web (`html_url`) links point.
pub(crate) const WEB_URL: &str = "https://github.com";

/// Characters escaped in a URL path segment (RFC 3986 minus unreserved and
/// sub-delimiters GitHub leaves alone).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A URL path segment, percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

fn ts(at: Timestamp) -> String {
    at.to_rfc3339()
}

fn opt_ts(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// GitHub's legacy global node id: base64 of `0<len>:<Type><id>`.
pub(crate) fn node_id(kind: &str, id: impl std::fmt::Display) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
}

/// A fake but stable 40-hex id derived from a commit sha (its tree).
/// A Simple User (`type` `User`, `Bot` or `Organization`).
pub(crate) fn user_value(api: &str, login: &str, id: u64, kind: &str) -> Value {
    let l = segment(login);
    json!({
        "login": login,
        "id": id,
        "node_id": node_id(kind, id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": format!("{api}/users/{l}"),
        "html_url": format!("{WEB_URL}/{l}"),
        "followers_url": format!("{api}/users/{l}/followers"),
        "following_url": format!("{api}/users/{l}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{l}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{l}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{l}/subscriptions"),
        "organizations_url": format!("{api}/users/{l}/orgs"),
        "repos_url": format!("{api}/users/{l}/repos"),
        "events_url": format!("{api}/users/{l}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{l}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// An App's installation on an organisation (`GET /orgs/{org}/installation`,
/// `GET /app/installations`), with the read permissions the simulated App holds.
pub(crate) fn installation(
    api: &str,
    app_id: u64,
    id: u64,
    account: Value,
    target_id: u64,
) -> Value {
    let created = "2024-01-02T03:04:05Z";
    // GitHub's description of the list (`allOf` Simple User and Enterprise)
    // asks for the enterprise fields too; an organisation's name and slug are
    // its login.
    let mut account = account;
    if let Some(fields) = account.as_object_mut() {
        let login = fields.get("login").cloned().unwrap_or(Value::Null);
        fields.insert("name".to_owned(), login.clone());
        fields.insert("slug".to_owned(), login);
        fields.insert("created_at".to_owned(), json!(created));
        fields.insert("updated_at".to_owned(), json!(created));
    }
    json!({
        "id": id,
        "account": account,
        "repository_selection": "all",
        "access_tokens_url": format!("{api}/app/installations/{id}/access_tokens"),
        "repositories_url": format!("{api}/installation/repositories"),
        "html_url": format!("{WEB_URL}/organizations/installations/{id}"),
        "app_id": app_id,
        "app_slug": "dora-collector",
        "target_id": target_id,
        "target_type": "Organization",
        "permissions": super::app::permissions(),
        "events": [],
        "created_at": created,
        "updated_at": created,
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": null,
    })
}

fn tree_sha(sha: &CommitSha) -> String {
    let mut bytes = *sha.as_bytes();
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= 0x5a ^ (i as u8).wrapping_mul(31);
    }
    CommitSha::from_bytes(bytes).to_string()
}

/// The GitHub user that commits web merges.
const WEB_FLOW: (&str, u64) = ("web-flow", 19_864_447);

/// The rendering context of one request: base URLs and the organisation.
pub(crate) struct Ctx<'a> {
    pub api: &'a str,
    pub org: &'a Org,
    /// Users rendered so far in this request (a list embeds the same few people
    /// many times).
    users: RefCell<HashMap<u32, Value>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(api: &'a str, org: &'a Org) -> Self {
        Ctx {
            api,
            org,
            users: RefCell::new(HashMap::new()),
        }
    }

    fn user_json(&self, login: &str, id: u64, kind: &str) -> Value {
        user_value(self.api, login, id, kind)
    }

    /// A Simple User for person `index` (a missing index renders the bot).
    pub(crate) fn user(&self, index: u32) -> Value {
        if let Some(user) = self.users.borrow().get(&index) {
            return user.clone();
        }
        let user = self.build_user(index);
        self.users.borrow_mut().insert(index, user.clone());
        user
    }

    fn build_user(&self, index: u32) -> Value {
        let people = &self.org.people;
        let person: &Person = match people.get(index as usize).or_else(|| people.first()) {
            Some(p) => p,
            None => return Value::Null,
        };
        let kind = if person.bot { "Bot" } else { "User" };
        self.user_json(&person.login, person.id, kind)
    }

    /// Team `index` of the organisation (GitHub's `team` schema).
    pub(crate) fn team(&self, index: usize) -> Value {
        let Some(team) = self.org.teams.get(index) else {
            return Value::Null;
        };
        let api = self.api;
        let org = segment(&self.org.owner);
        let slug = team.slug();
        let s = segment(&slug);
        json!({
            "id": team.id,
            "node_id": node_id("Team", team.id),
            "url": format!("{api}/organizations/{}/team/{}", self.org.owner_id, team.id),
            "html_url": format!("{WEB_URL}/orgs/{org}/teams/{s}"),
            "name": team.name,
            "slug": slug,
            "description": format!("The {} team", team.name),
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "pull",
            "members_url": format!("{api}/organizations/{}/team/{}/members{{/member}}", self.org.owner_id, team.id),
            "repositories_url": format!("{api}/organizations/{}/team/{}/repos", self.org.owner_id, team.id),
            "parent": null,
            "type": "organization",
            "organization_id": self.org.owner_id,
        })
    }

    /// The organisation as a Simple User of type `Organization`.
    pub(crate) fn owner(&self) -> Value {
        self.user_json(&self.org.owner, self.org.owner_id, "Organization")
    }

    fn web_flow(&self) -> Value {
        self.user_json(WEB_FLOW.0, WEB_FLOW.1, "User")
    }

    /// The rate-limit document (`GET /rate_limit`); `graphql` is the GraphQL
    /// budget's `(limit, used, reset)`.
    pub(crate) fn rate_limit(
        &self,
        limit: u64,
        used: u64,
        reset: i64,
        graphql: (u64, u64, i64),
    ) -> Value {
        let remaining = limit.saturating_sub(used);
        let core = json!({"limit": limit, "used": used, "remaining": remaining, "reset": reset, "resource": "core"});
        let fixed = |limit: u64, resource: &str| json!({"limit": limit, "used": 0, "remaining": limit, "reset": reset, "resource": resource});
        json!({
            "resources": {
                "core": core,
                "search": fixed(30, "search"),
                "graphql": json!({"limit": graphql.0, "used": graphql.1, "remaining": graphql.0.saturating_sub(graphql.1), "reset": graphql.2, "resource": "graphql"}),
                "integration_manifest": fixed(5000, "integration_manifest"),
                "source_import": fixed(100, "source_import"),
                "code_scanning_upload": fixed(1000, "code_scanning_upload"),
                "actions_runner_registration": fixed(10000, "actions_runner_registration"),
                "scim": fixed(15000, "scim"),
                "dependency_snapshots": fixed(100, "dependency_snapshots"),
                "code_search": fixed(10, "code_search"),
                "code_scanning_autofix": fixed(10, "code_scanning_autofix"),
            },
            "rate": {"limit": limit, "used": used, "remaining": remaining, "reset": reset, "resource": "core"},
        })
    }
}

/// Rendering of one repository's objects; caches the repository object, which is
/// embedded in many others.
pub(crate) struct RepoCtx<'a> {
    pub ctx: &'a Ctx<'a>,
    pub repo: &'a SimRepo,
    /// `{api}/repos/{owner}/{name}`
    pub api_repo: String,
    /// `https://github.com/{owner}/{name}`
    pub web_repo: String,
    repo_json: OnceCell<Value>,
    owner_json: OnceCell<Value>,
}

impl<'a> RepoCtx<'a> {
    pub(crate) fn new(ctx: &'a Ctx<'a>, repo: &'a SimRepo) -> Self {
        let path = format!("{}/{}", segment(&ctx.org.owner), segment(&repo.name));
        RepoCtx {
            ctx,
            repo,
            api_repo: format!("{}/repos/{path}", ctx.api),
            web_repo: format!("{WEB_URL}/{path}"),
            repo_json: OnceCell::new(),
            owner_json: OnceCell::new(),
        }
    }

    fn owner(&self) -> Value {
        self.owner_json.get_or_init(|| self.ctx.owner()).clone()
    }

    fn full_name(&self) -> String {
        format!("{}/{}", self.ctx.org.owner, self.repo.name)
    }

    /// The repository as a team's list shows it: with the team's `role_name` and
    /// the permissions that role grants.
    pub(crate) fn with_role(&self, role: &str) -> Value {
        let rank = ["pull", "triage", "push", "maintain", "admin"]
            .iter()
            .position(|r| *r == role)
            .unwrap_or(0);
        let role_name = match role {
            "push" => "write",
            "pull" => "read",
            other => other,
        };
        merge(
            self.repository(),
            json!({
                "role_name": role_name,
                "permissions": {
                    "admin": rank >= 4,
                    "maintain": rank >= 3,
                    "push": rank >= 2,
                    "triage": rank >= 1,
                    "pull": true,
                },
            }),
        )
    }

    /// The repository object (GitHub's `repository` schema; also valid as a
    /// `minimal-repository`).
    pub(crate) fn repository(&self) -> Value {
        self.repo_json
            .get_or_init(|| self.build_repository())
            .clone()
    }

    fn build_repository(&self) -> Value {
        let r = self.repo;
        let a = &self.api_repo;
        let w = &self.web_repo;
        let open_issues = r.issues.iter().filter(|i| i.is_open()).count()
            + r.pulls.iter().filter(|p| p.is_open()).count();
        let pushed = r
            .commits
            .iter()
            .map(|c| c.committer_date)
            .max()
            .unwrap_or(r.created_at);
        let full_name = self.full_name();
        let value = json!({
            "id": r.id,
            "node_id": node_id("Repository", r.id),
            "name": r.name,
            "full_name": full_name,
            "private": true,
            "owner": self.owner(),
            "html_url": w,
            "description": format!("The {} service", r.name),
            "fork": r.fork,
            "url": a,
            "archive_url": format!("{a}/{{archive_format}}{{/ref}}"),
            "assignees_url": format!("{a}/assignees{{/user}}"),
            "blobs_url": format!("{a}/git/blobs{{/sha}}"),
            "branches_url": format!("{a}/branches{{/branch}}"),
            "collaborators_url": format!("{a}/collaborators{{/collaborator}}"),
            "comments_url": format!("{a}/comments{{/number}}"),
            "commits_url": format!("{a}/commits{{/sha}}"),
            "compare_url": format!("{a}/compare/{{base}}...{{head}}"),
            "contents_url": format!("{a}/contents/{{+path}}"),
            "contributors_url": format!("{a}/contributors"),
            "deployments_url": format!("{a}/deployments"),
            "downloads_url": format!("{a}/downloads"),
            "events_url": format!("{a}/events"),
            "forks_url": format!("{a}/forks"),
            "git_commits_url": format!("{a}/git/commits{{/sha}}"),
            "git_refs_url": format!("{a}/git/refs{{/sha}}"),
            "git_tags_url": format!("{a}/git/tags{{/sha}}"),
            "git_url": format!("git://github.com/{full_name}.git"),
        });
        // Split in two: one `json!` this large exceeds the macro recursion limit.
        let more = json!({
            "issue_comment_url": format!("{a}/issues/comments{{/number}}"),
            "issue_events_url": format!("{a}/issues/events{{/number}}"),
            "issues_url": format!("{a}/issues{{/number}}"),
            "keys_url": format!("{a}/keys{{/key_id}}"),
            "labels_url": format!("{a}/labels{{/name}}"),
            "languages_url": format!("{a}/languages"),
            "merges_url": format!("{a}/merges"),
            "milestones_url": format!("{a}/milestones{{/number}}"),
            "notifications_url": format!("{a}/notifications{{?since,all,participating}}"),
            "pulls_url": format!("{a}/pulls{{/number}}"),
            "releases_url": format!("{a}/releases{{/id}}"),
            "ssh_url": format!("git@github.com:{full_name}.git"),
            "stargazers_url": format!("{a}/stargazers"),
            "statuses_url": format!("{a}/statuses/{{sha}}"),
            "subscribers_url": format!("{a}/subscribers"),
            "subscription_url": format!("{a}/subscription"),
            "tags_url": format!("{a}/tags"),
            "teams_url": format!("{a}/teams"),
            "trees_url": format!("{a}/git/trees{{/sha}}"),
        });
        let rest = json!({
            "clone_url": format!("{w}.git"),
            "mirror_url": null,
            "hooks_url": format!("{a}/hooks"),
            "svn_url": w,
            "homepage": null,
            "language": "Rust",
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 3,
            "watchers_count": 3,
            "watchers": 3,
            "size": if r.empty { 0 } else { 1024 + r.commits.len() * 4 },
            "default_branch": r.default_branch,
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "is_template": false,
            "topics": r.topics,
            "has_issues": true,
            "has_projects": false,
            "has_wiki": false,
            "has_pages": false,
            "has_downloads": true,
            "has_discussions": false,
            "archived": r.archived,
            "disabled": false,
            "visibility": "private",
            "pushed_at": ts(pushed),
            "created_at": ts(r.created_at),
            "updated_at": ts(pushed),
            "permissions": {"admin": false, "maintain": false, "push": false, "triage": true, "pull": true},
            "allow_forking": false,
            "web_commit_signoff_required": false,
            "license": null,
        });
        merge(merge(value, more), rest)
    }

    /// The `GET /repos/{owner}/{repo}` object: the repository plus the fields of
    /// GitHub's `full-repository`.
    pub(crate) fn full_repository(&self) -> Value {
        let mut value = self.repository();
        if let Value::Object(map) = &mut value {
            map.insert("organization".into(), self.owner());
            map.insert("network_count".into(), json!(0));
            map.insert("subscribers_count".into(), json!(3));
            map.insert("allow_squash_merge".into(), json!(true));
            map.insert("allow_merge_commit".into(), json!(true));
            map.insert("allow_rebase_merge".into(), json!(true));
            map.insert("delete_branch_on_merge".into(), json!(true));
        }
        value
    }

    /// A Deployments-API deployment.
    pub(crate) fn deployment(&self, d: &SimDeployment) -> Value {
        let a = &self.api_repo;
        let by_bot = self
            .ctx
            .org
            .people
            .get(d.creator as usize)
            .is_some_and(|p| p.bot);
        let short = &d.sha.to_string()[..7];
        let description = if d.rollback {
            format!("Rollback of {} to {short}", d.environment)
        } else {
            format!("Deploy {short} to {}", d.environment)
        };
        json!({
            "url": format!("{a}/deployments/{}", d.id),
            "id": d.id,
            "node_id": node_id("Deployment", d.id),
            "sha": d.sha.to_string(),
            "ref": &*d.git_ref,
            "task": DEPLOY_TASK,
            "payload": {},
            "original_environment": &*d.environment,
            "environment": &*d.environment,
            "description": description,
            "creator": self.ctx.user(d.creator),
            "created_at": ts(d.created_at),
            "updated_at": ts(d.updated_at()),
            "statuses_url": format!("{a}/deployments/{}/statuses", d.id),
            "repository_url": a,
            "transient_environment": false,
            "production_environment": d.environment.eq_ignore_ascii_case(PRODUCTION),
            "performed_via_github_app": if by_bot { actions_app(self.ctx) } else { Value::Null },
        })
    }

    /// One status of deployment `d`.
    pub(crate) fn deployment_status(&self, d: &SimDeployment, s: &SimStatus) -> Value {
        let a = &self.api_repo;
        let (state, description) = status_words(s.state);
        let target = format!("{}/actions/runs/{}", self.web_repo, d.id);
        json!({
            "url": format!("{a}/deployments/{}/statuses/{}", d.id, s.id),
            "id": s.id,
            "node_id": node_id("DeploymentStatus", s.id),
            "state": state,
            "creator": self.ctx.user(d.creator),
            "description": description,
            "environment": &*d.environment,
            "target_url": target,
            "log_url": target,
            "environment_url": format!("https://{}.{}.example.com", d.environment, self.repo.name),
            "created_at": ts(s.created_at),
            "updated_at": ts(s.created_at),
            "deployment_url": format!("{a}/deployments/{}", d.id),
            "repository_url": a,
            "performed_via_github_app": Value::Null,
        })
    }

    /// A workflow run of the repository's deploy workflow.
    pub(crate) fn workflow_run(&self, run: &SimWorkflowRun) -> Value {
        let a = &self.api_repo;
        let workflow = self.repo.workflow();
        let (workflow_id, name, path) = match workflow {
            Some(w) => (w.id, w.name.clone(), w.path()),
            None => (
                0,
                "Deploy".to_owned(),
                ".github/workflows/deploy.yml".to_owned(),
            ),
        };
        let head = self.repo.commit_index(&run.head_sha);
        let head_commit = match head {
            Some(i) => self.simple_commit(i),
            None => Value::Null,
        };
        let display_title = match (run.event, head) {
            (crate::model::RunEvent::WorkflowDispatch, _) => {
                format!("{name} {}", &run.head_sha.to_string()[..7])
            }
            (_, Some(i)) => self.repo.commit_subject(i),
            (_, None) => name.clone(),
        };
        let check_suite_id = run.id + 20_000_000_000;
        let repository = self.repository();
        json!({
            "id": run.id,
            "name": name,
            "node_id": node_id("WorkflowRun", run.id),
            "check_suite_id": check_suite_id,
            "check_suite_node_id": node_id("CheckSuite", check_suite_id),
            "head_branch": &*run.head_branch,
            "head_sha": run.head_sha.to_string(),
            "path": path,
            "display_title": display_title,
            "run_number": run.run_number,
            "run_attempt": 1,
            "referenced_workflows": [],
            "event": run.event.as_str(),
            "status": run.status.as_str(),
            "conclusion": run.conclusion.map(|c| c.as_str()),
            "workflow_id": workflow_id,
            "url": format!("{a}/actions/runs/{}", run.id),
            "html_url": format!("{}/actions/runs/{}", self.web_repo, run.id),
            "pull_requests": [],
            "created_at": ts(run.created_at),
            "updated_at": ts(run.updated_at),
            "run_started_at": ts(run.run_started_at),
            "actor": self.ctx.user(run.actor),
            "triggering_actor": self.ctx.user(run.actor),
            "jobs_url": format!("{a}/actions/runs/{}/jobs", run.id),
            "logs_url": format!("{a}/actions/runs/{}/logs", run.id),
            "check_suite_url": format!("{a}/check-suites/{check_suite_id}"),
            "artifacts_url": format!("{a}/actions/runs/{}/artifacts", run.id),
            "cancel_url": format!("{a}/actions/runs/{}/cancel", run.id),
            "rerun_url": format!("{a}/actions/runs/{}/rerun", run.id),
            "previous_attempt_url": null,
            "workflow_url": format!("{a}/actions/workflows/{workflow_id}"),
            "head_commit": head_commit,
            "repository": repository.clone(),
            "head_repository": repository,
            "head_repository_id": self.repo.id,
        })
    }

    fn git_people(&self, c: &SimCommit) -> (Value, Value) {
        let person = self.ctx.org.people.get(c.author as usize);
        let (name, email) = person
            .map(|p| (p.name.as_str(), p.email.as_str()))
            .unwrap_or(("Unknown", "unknown@users.noreply.github.com"));
        let author = json!({"name": name, "email": email, "date": ts(c.author_date)});
        let committer = if c.committed_by_github() {
            json!({"name": "GitHub", "email": "noreply@github.com", "date": ts(c.committer_date)})
        } else {
            json!({"name": name, "email": email, "date": ts(c.committer_date)})
        };
        (author, committer)
    }

    /// The `simple-commit` embedded in workflow runs.
    fn simple_commit(&self, index: u32) -> Value {
        let c = &self.repo.commits[index as usize];
        let (author, committer) = self.git_people(c);
        let strip = |mut v: Value| {
            if let Value::Object(map) = &mut v {
                map.remove("date");
            }
            v
        };
        json!({
            "id": c.sha.to_string(),
            "tree_id": tree_sha(&c.sha),
            "message": self.repo.commit_message(index),
            "timestamp": ts(c.author_date),
            "author": strip(author),
            "committer": strip(committer),
        })
    }

    /// A commit as `GET /commits` lists it (`detail` adds `stats` and `files`, as
    /// `GET /commits/{ref}` does).
    pub(crate) fn commit(&self, index: u32, detail: bool) -> Value {
        let a = &self.api_repo;
        let c = &self.repo.commits[index as usize];
        let sha = c.sha.to_string();
        let (author, committer) = self.git_people(c);
        let parents: Vec<Value> = c
            .parents()
            .map(|p| {
                let psha = self.repo.commits[p as usize].sha.to_string();
                json!({
                    "sha": psha,
                    "url": format!("{a}/commits/{psha}"),
                    "html_url": format!("{}/commit/{psha}", self.web_repo),
                })
            })
            .collect();
        let top_committer = if c.committed_by_github() {
            self.ctx.web_flow()
        } else {
            self.ctx.user(c.author)
        };
        let tree = tree_sha(&c.sha);
        let mut value = json!({
            "url": format!("{a}/commits/{sha}"),
            "sha": sha,
            "node_id": node_id("Commit", format!("{}:{sha}", self.repo.id)),
            "html_url": format!("{}/commit/{sha}", self.web_repo),
            "comments_url": format!("{a}/commits/{sha}/comments"),
            "commit": {
                "url": format!("{a}/git/commits/{sha}"),
                "author": author,
                "committer": committer,
                "message": self.repo.commit_message(index),
                "tree": {"sha": tree, "url": format!("{a}/git/trees/{tree}")},
                "comment_count": 0,
                "verification": {
                    "verified": false,
                    "reason": "unsigned",
                    "signature": null,
                    "payload": null,
                    "verified_at": null,
                },
            },
            "author": self.ctx.user(c.author),
            "committer": top_committer,
            "parents": parents,
        });
        if detail {
            if let Value::Object(map) = &mut value {
                let additions = 3 + (c.sha.as_bytes()[0] as u64 % 40);
                let deletions = c.sha.as_bytes()[1] as u64 % 20;
                map.insert(
                    "stats".into(),
                    json!({"additions": additions, "deletions": deletions, "total": additions + deletions}),
                );
                map.insert("files".into(), json!([]));
            }
        }
        value
    }

    /// A compare result; `commits` is the page of ahead commits to include.
    pub(crate) fn compare(
        &self,
        basehead: &str,
        base: u32,
        head: u32,
        comparison: &Comparison,
        commits: &[u32],
        with_files: bool,
    ) -> Value {
        let a = &self.api_repo;
        let encoded = segment(basehead);
        let merge_base = comparison.merge_base.unwrap_or(base);
        let short = |i: u32| self.repo.commits[i as usize].sha.to_string()[..7].to_owned();
        let owner = &self.ctx.org.owner;
        let html = format!("{}/compare/{encoded}", self.web_repo);
        let mut value = json!({
            "url": format!("{a}/compare/{encoded}"),
            "html_url": html,
            "permalink_url": format!("{}/compare/{owner}:{}...{owner}:{}", self.web_repo, short(base), short(head)),
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "base_commit": self.commit(base, false),
            "merge_base_commit": self.commit(merge_base, false),
            "status": comparison.status.as_str(),
            "ahead_by": comparison.ahead.len(),
            "behind_by": comparison.behind_by,
            "total_commits": comparison.ahead.len(),
            "commits": commits.iter().map(|i| self.commit(*i, false)).collect::<Vec<_>>(),
        });
        if with_files {
            if let Value::Object(map) = &mut value {
                map.insert("files".into(), json!([]));
            }
        }
        value
    }

    /// A label object (ids are stable per repository and name).
    fn label(&self, name: &str) -> Value {
        let (color, description) = label_style(name);
        let id = label_id(self.repo.id, name);
        json!({
            "id": id,
            "node_id": node_id("Label", id),
            "url": format!("{}/labels/{}", self.api_repo, segment(name)),
            "name": name,
            "description": description,
            "color": color,
            "default": matches!(name, "bug" | "enhancement" | "documentation"),
        })
    }

    fn reactions(&self, issue_url: &str) -> Value {
        json!({
            "url": format!("{issue_url}/reactions"),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "confused": 0,
            "heart": 0, "hooray": 0, "eyes": 0, "rocket": 0,
        })
    }

    /// An issue (not a pull request) as `GET /issues` lists it.
    pub(crate) fn issue(&self, i: &SimIssue) -> Value {
        let a = &self.api_repo;
        let url = format!("{a}/issues/{}", i.number);
        json!({
            "id": i.id,
            "node_id": node_id("Issue", i.id),
            "url": url,
            "repository_url": a,
            "labels_url": format!("{url}/labels{{/name}}"),
            "comments_url": format!("{url}/comments"),
            "events_url": format!("{url}/events"),
            "html_url": format!("{}/issues/{}", self.web_repo, i.number),
            "number": i.number,
            "state": if i.is_open() { "open" } else { "closed" },
            "state_reason": i.state_reason(),
            "title": i.title,
            "body": i.body,
            "user": self.ctx.user(i.user),
            "labels": i.labels.iter().map(|l| self.label(l)).collect::<Vec<_>>(),
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "locked": false,
            "active_lock_reason": null,
            "comments": i.comments,
            "closed_at": opt_ts(i.closed_at),
            "created_at": ts(i.created_at),
            "updated_at": ts(i.updated_at),
            "closed_by": if i.is_open() { Value::Null } else { self.ctx.user(i.user) },
            "author_association": "MEMBER",
            "reactions": self.reactions(&url),
            "timeline_url": format!("{url}/timeline"),
            "performed_via_github_app": null,
        })
    }

    /// A pull request as `GET /issues` lists it (with its `pull_request` key).
    pub(crate) fn pull_as_issue(&self, p: &SimPull) -> Value {
        let a = &self.api_repo;
        let url = format!("{a}/issues/{}", p.number);
        let html = format!("{}/pull/{}", self.web_repo, p.number);
        json!({
            "id": p.issue_id,
            "node_id": node_id("Issue", p.issue_id),
            "url": url,
            "repository_url": a,
            "labels_url": format!("{url}/labels{{/name}}"),
            "comments_url": format!("{url}/comments"),
            "events_url": format!("{url}/events"),
            "html_url": html,
            "number": p.number,
            "state": if p.is_open() { "open" } else { "closed" },
            "state_reason": if p.is_open() { Value::Null } else { json!("completed") },
            "title": p.title.render(),
            "body": pull_body(p),
            "user": self.ctx.user(p.user),
            "labels": p.labels.iter().map(|l| self.label(l)).collect::<Vec<_>>(),
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "locked": false,
            "active_lock_reason": null,
            "comments": p.comments,
            "pull_request": {
                "url": format!("{a}/pulls/{}", p.number),
                "html_url": html,
                "diff_url": format!("{html}.diff"),
                "patch_url": format!("{html}.patch"),
                "merged_at": opt_ts(p.merged_at),
            },
            "closed_at": opt_ts(p.closed_at),
            "created_at": ts(p.created_at),
            "updated_at": ts(p.updated_at),
            "draft": p.draft,
            "author_association": "MEMBER",
            "reactions": self.reactions(&url),
            "timeline_url": format!("{url}/timeline"),
            "performed_via_github_app": null,
        })
    }

    /// A pull request as `GET /pulls` lists it (`pull-request-simple`).
    pub(crate) fn pull(&self, p: &SimPull) -> Value {
        let a = &self.api_repo;
        let url = format!("{a}/pulls/{}", p.number);
        let html = format!("{}/pull/{}", self.web_repo, p.number);
        let issue_url = format!("{a}/issues/{}", p.number);
        let head_sha = self.repo.commits[p.head() as usize].sha.to_string();
        let base_sha = self.repo.commits[p.base as usize].sha.to_string();
        let owner = &self.ctx.org.owner;
        let branch = p.branch();
        let repository = self.repository();
        let link = |href: String| json!({"href": href});
        let head = json!({
            "label": format!("{owner}:{branch}"),
            "ref": branch,
            "sha": head_sha,
            "user": self.owner(),
            "repo": repository.clone(),
        });
        let base = json!({
            "label": format!("{owner}:{}", self.repo.default_branch),
            "ref": self.repo.default_branch,
            "sha": base_sha,
            "user": self.owner(),
            "repo": repository,
        });
        let links = json!({
            "self": link(url.clone()),
            "html": link(html.clone()),
            "issue": link(issue_url.clone()),
            "comments": link(format!("{issue_url}/comments")),
            "review_comments": link(format!("{url}/comments")),
            "review_comment": link(format!("{a}/pulls/comments{{/number}}")),
            "commits": link(format!("{url}/commits")),
            "statuses": link(format!("{a}/statuses/{head_sha}")),
        });
        json!({
            "url": url,
            "id": p.id,
            "node_id": node_id("PullRequest", p.id),
            "html_url": html,
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "issue_url": issue_url,
            "commits_url": format!("{url}/commits"),
            "review_comments_url": format!("{url}/comments"),
            "review_comment_url": format!("{a}/pulls/comments{{/number}}"),
            "comments_url": format!("{issue_url}/comments"),
            "statuses_url": format!("{a}/statuses/{head_sha}"),
            "number": p.number,
            "state": if p.is_open() { "open" } else { "closed" },
            "locked": false,
            "title": p.title.render(),
            "user": self.ctx.user(p.user),
            "body": pull_body(p),
            "labels": p.labels.iter().map(|l| self.label(l)).collect::<Vec<_>>(),
            "milestone": null,
            "active_lock_reason": null,
            "created_at": ts(p.created_at),
            "updated_at": ts(p.updated_at),
            "closed_at": opt_ts(p.closed_at),
            "merged_at": opt_ts(p.merged_at),
            "merge_commit_sha": p.merge_commit.map(|i| self.repo.commits[i as usize].sha.to_string()),
            "assignee": null,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": head,
            "base": base,
            "_links": links,
            "author_association": "MEMBER",
            "auto_merge": null,
            "draft": p.draft,
        })
    }

    /// The first review of `p`, submitted at `at` (`/pulls/{n}/reviews`): an
    /// approval of its head by the person after its author.
    pub(crate) fn review(&self, p: &SimPull, at: Timestamp) -> Value {
        let a = &self.api_repo;
        let url = format!("{a}/pulls/{}", p.number);
        let html = format!(
            "{}/pull/{}#pullrequestreview-{}",
            self.web_repo, p.number, p.id
        );
        let people = self.ctx.org.people.len().max(1) as u32;
        json!({
            "id": p.id,
            "node_id": node_id("PullRequestReview", p.id),
            "user": self.ctx.user((p.user + 1) % people),
            "body": "",
            "state": "APPROVED",
            "html_url": html,
            "pull_request_url": url,
            "_links": {
                "html": {"href": html},
                "pull_request": {"href": url},
            },
            "submitted_at": ts(at),
            "commit_id": self.repo.commits[p.head() as usize].sha.to_string(),
            "author_association": "MEMBER",
        })
    }
}

/// `a` with the properties of `b` added (both objects).
fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a_map), Value::Object(b_map)) = (&mut a, b) {
        a_map.extend(b_map);
    }
    a
}

fn pull_body(p: &SimPull) -> String {
    format!("{}\n\nPlease review.", p.title.render())
}

/// GitHub's spelling of a status state and the description a deploy tool sets.
fn status_words(state: StatusState) -> (&'static str, &'static str) {
    match state {
        StatusState::Success => ("success", "Deployment finished successfully."),
        StatusState::Failure => ("failure", "Deployment failed."),
        StatusState::Error => ("error", "Deployment errored."),
        StatusState::Inactive => ("inactive", "Superseded by a newer deployment."),
        StatusState::Pending => ("pending", "Deployment is pending."),
        StatusState::Queued => ("queued", "Deployment queued."),
        StatusState::InProgress => ("in_progress", "Deployment in progress."),
    }
}

/// Colour and description of a label (a few known ones, grey otherwise).
fn label_style(name: &str) -> (&'static str, &'static str) {
    match name.to_ascii_lowercase().as_str() {
        "incident" => ("b60205", "A production incident"),
        "hotfix" => ("d93f0b", "Urgent fix for production"),
        "bug" => ("d73a4a", "Something isn't working"),
        "enhancement" => ("a2eeef", "New feature or request"),
        "documentation" => ("0075ca", "Improvements or additions to documentation"),
        "sev1" => ("e11d21", "Severity 1"),
        "sev2" => ("eb6420", "Severity 2"),
        "sev3" => ("fbca04", "Severity 3"),
        _ => ("ededed", ""),
    }
}

/// A stable label id for `(repository, name)` (FNV-1a over the lowercase name).
fn label_id(repo_id: u64, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ repo_id;
    for b in name.to_ascii_lowercase().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % 9_000_000_000 + 1_000_000_000
}

/// The GitHub Actions app, which performs deployments made by workflows.
fn actions_app(ctx: &Ctx<'_>) -> Value {
    json!({
        "id": 15368,
        "slug": "github-actions",
        "node_id": "MDM6QXBwMTUzNjg=",
        "client_id": "Iv1.05c79e9ad1f6bdfa",
        "owner": ctx.user_json("github", 9919, "Organization"),
        "name": "GitHub Actions",
        "description": "Automate your workflow from idea to production",
        "external_url": "https://help.github.com/en/actions",
        "html_url": "https://github.com/apps/github-actions",
        "created_at": "2018-07-30T09:30:17Z",
        "updated_at": "2024-04-10T20:33:16Z",
        "permissions": {"actions": "write", "contents": "write", "deployments": "write", "issues": "write", "metadata": "read"},
        "events": ["check_run", "check_suite", "deployment", "push", "workflow_dispatch"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_match_githubs_legacy_form() {
        // From GitHub's own examples.
        assert_eq!(node_id("User", 1), "MDQ6VXNlcjE=");
        assert_eq!(node_id("Deployment", 1), "MDEwOkRlcGxveW1lbnQx");
        assert_eq!(node_id("Bot", 41_898_282), "MDM6Qm90NDE4OTgyODI=");
    }

    #[test]
    fn segments_escape_reserved_characters() {
        assert_eq!(segment("github-actions[bot]"), "github-actions%5Bbot%5D");
        assert_eq!(segment("feature/x y"), "feature%2Fx%20y");
        assert_eq!(segment("main...abc"), "main...abc");
    }
}
