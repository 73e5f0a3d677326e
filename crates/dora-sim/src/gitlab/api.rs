//! The endpoints of the simulated GitLab: one function per route that filters,
//! sorts and pages the group's data the way GitLab's finders do, and returns a
//! JSON body with its pagination, or GitLab's error.
//!
//! Pure with respect to I/O: a `&GitlabGroup` and a parsed request in, a
//! [`Reply`] out. Authentication, the rate limit and counting are the server's.
//!
//! GitLab's rules kept here: `per_page` defaults to 20 and is capped at 100;
//! `updated_after` / `updated_before` match at or after / at or before (GitLab's
//! `UpdatedAtFilterable`); on deployments an `updated_*` filter orders by
//! `updated_at` (then id), a `finished_*` filter needs `order_by=finished_at` and
//! `status=success`, and the two never go together (`400`, GitLab's
//! `DeploymentsFinder`); label filters match label names exactly (case-sensitive)
//! and need all of them; issues and commits also page by keyset
//! (`pagination=keyset`): issues with an opaque `cursor`, commits with a
//! `page_token` naming the last commit read; every other list pages by offset.

use super::model::{deployment_view, issue_type, pipeline_view, GitlabDeploySource, GitlabGroup};
use super::render::Ctx;
use crate::domain::Timestamp;
use crate::server::route::{parse_time, Query};
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

/// GitLab's default page size.
pub(crate) const DEFAULT_PER_PAGE: usize = 20;
/// GitLab's largest page size.
pub(crate) const MAX_PER_PAGE: usize = 100;
/// Longest piece of client input echoed in an error.
const MAX_ECHO: usize = 100;

/// The endpoints served (their route templates are the request counters' keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Project,
    GroupProjects,
    Deployments,
    Deployment(String),
    Environments,
    MergeRequests,
    MergeRequestCommits(String),
    Issues,
    Commits,
    Commit(String),
    Compare,
    Pipelines,
    Pipeline(String),
}

impl Endpoint {
    /// The route template requests are counted under.
    pub(crate) const fn template(&self) -> &'static str {
        match self {
            Endpoint::Project => "GET /api/v4/projects/{id}",
            Endpoint::GroupProjects => "GET /api/v4/groups/{id}/projects",
            Endpoint::Deployments => "GET /api/v4/projects/{id}/deployments",
            Endpoint::Deployment(_) => "GET /api/v4/projects/{id}/deployments/{deployment_id}",
            Endpoint::Environments => "GET /api/v4/projects/{id}/environments",
            Endpoint::MergeRequests => "GET /api/v4/projects/{id}/merge_requests",
            Endpoint::MergeRequestCommits(_) => {
                "GET /api/v4/projects/{id}/merge_requests/{merge_request_iid}/commits"
            }
            Endpoint::Issues => "GET /api/v4/projects/{id}/issues",
            Endpoint::Commits => "GET /api/v4/projects/{id}/repository/commits",
            Endpoint::Commit(_) => "GET /api/v4/projects/{id}/repository/commits/{sha}",
            Endpoint::Compare => "GET /api/v4/projects/{id}/repository/compare",
            Endpoint::Pipelines => "GET /api/v4/projects/{id}/pipelines",
            Endpoint::Pipeline(_) => "GET /api/v4/projects/{id}/pipelines/{pipeline_id}",
        }
    }

    /// Lists whose newest items come first by default, so that a new item
    /// shifts every later offset page (the chaos layer's `new_items`).
    #[cfg(feature = "chaos")]
    pub(crate) fn shifted_by_new_items(&self) -> bool {
        matches!(
            self,
            Endpoint::Deployments | Endpoint::Issues | Endpoint::Commits
        )
    }
}

/// A parsed request path: `{prefix}/api/v4/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// The project (or group) id or full path, decoded.
    pub id: String,
    pub endpoint: Endpoint,
}

/// The API root under the server's prefix.
pub const API_PATH: &str = "/api/v4";

/// Parses a GET path below `prefix` (`""` or `/gitlab`); `None` for any other.
pub(crate) fn parse_path(prefix: &str, path: &str) -> Option<Route> {
    let rest = path.strip_prefix(prefix)?.strip_prefix(API_PATH)?;
    let raw: Vec<&str> = rest.split('/').skip(1).collect();
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|d| d.into_owned())
    };
    let id = decode(raw.get(1)?)?;
    if id.is_empty() {
        return None;
    }
    let route = |endpoint| {
        Some(Route {
            id: id.clone(),
            endpoint,
        })
    };
    match (raw.first().copied()?, &raw[2..]) {
        ("groups", ["projects"]) => route(Endpoint::GroupProjects),
        ("projects", []) => route(Endpoint::Project),
        ("projects", ["deployments"]) => route(Endpoint::Deployments),
        ("projects", ["deployments", d]) => route(Endpoint::Deployment(decode(d)?)),
        ("projects", ["environments"]) => route(Endpoint::Environments),
        ("projects", ["merge_requests"]) => route(Endpoint::MergeRequests),
        ("projects", ["merge_requests", iid, "commits"]) => {
            route(Endpoint::MergeRequestCommits(decode(iid)?))
        }
        ("projects", ["issues"]) => route(Endpoint::Issues),
        ("projects", ["repository", "commits"]) => route(Endpoint::Commits),
        ("projects", ["repository", "commits", sha]) => route(Endpoint::Commit(decode(sha)?)),
        ("projects", ["repository", "compare"]) => route(Endpoint::Compare),
        ("projects", ["pipelines"]) => route(Endpoint::Pipelines),
        ("projects", ["pipelines", p]) => route(Endpoint::Pipeline(decode(p)?)),
        _ => None,
    }
}

/// How a list answer pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Paging {
    /// A single object.
    None,
    /// Offset pages: this `page` of `per_page`, whether another follows, and the
    /// total when GitLab counts it (not for commits).
    Offset {
        page: usize,
        per_page: usize,
        next: bool,
        total: Option<usize>,
    },
    /// Keyset pages: the parameters to add for the next page, if any.
    Keyset { next: Option<(String, String)> },
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub body: Value,
    pub paging: Paging,
}

/// GitLab's error answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// 404 with GitLab's message (`404 Project Not Found`).
    NotFound(&'static str),
    /// 400 with a message.
    BadRequest(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::BadRequest(_) => 400,
        }
    }

    pub(crate) fn body(&self) -> Value {
        match self {
            ApiError::NotFound(what) => json!({"message": format!("404 {what} Not Found")}),
            ApiError::BadRequest(message) => {
                json!({"message": format!("400 Bad request - {message}")})
            }
        }
    }
}

fn echo(text: &str) -> String {
    text.chars().take(MAX_ECHO).collect()
}

/// Answers a parsed request.
pub(crate) fn respond(
    group: &GitlabGroup,
    route: &Route,
    query: &Query,
) -> Result<Reply, ApiError> {
    if route.endpoint == Endpoint::GroupProjects {
        return group_projects(group, &route.id, query);
    }
    let index = group
        .project_index(&route.id)
        .ok_or(ApiError::NotFound("Project"))?;
    let ctx = Ctx::new(group, index).ok_or(ApiError::NotFound("Project"))?;
    match &route.endpoint {
        Endpoint::Project => Ok(single(ctx.project(true))),
        Endpoint::GroupProjects => Err(ApiError::NotFound("Group")),
        Endpoint::Deployments => deployments(&ctx, query),
        Endpoint::Deployment(id) => deployment(&ctx, id),
        Endpoint::Environments => environments(&ctx, query),
        Endpoint::MergeRequests => merge_requests(&ctx, query),
        Endpoint::MergeRequestCommits(iid) => merge_request_commits(&ctx, iid, query),
        Endpoint::Issues => issues(&ctx, query),
        Endpoint::Commits => commits(&ctx, query),
        Endpoint::Commit(sha) => commit(&ctx, sha),
        Endpoint::Compare => compare(&ctx, query),
        Endpoint::Pipelines => pipelines(&ctx, query),
        Endpoint::Pipeline(id) => pipeline(&ctx, id),
    }
}

fn single(body: Value) -> Reply {
    Reply {
        body,
        paging: Paging::None,
    }
}

/// `page` and `per_page` as GitLab reads them.
fn offset(query: &Query) -> (usize, usize) {
    let number = |name: &str| {
        query
            .get(name)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let per_page = number("per_page").map_or(DEFAULT_PER_PAGE, |n| n.min(MAX_PER_PAGE));
    (number("page").unwrap_or(1), per_page)
}

/// One offset page of `items`.
fn offset_page(items: Vec<Value>, query: &Query, counted: bool) -> Reply {
    let (page, per_page) = offset(query);
    let total = items.len();
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    let body = Value::Array(items[start..end].to_vec());
    Reply {
        body,
        paging: Paging::Offset {
            page,
            per_page,
            next: end < total,
            total: counted.then_some(total),
        },
    }
}

/// A time parameter, or 400 naming it.
fn time(query: &Query, name: &str) -> Result<Option<Timestamp>, ApiError> {
    match query.get(name) {
        None => Ok(None),
        Some(text) => parse_time(text)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} is invalid: {}", echo(text)))),
    }
}

/// `sort`: `asc` or `desc` (`default_desc` when absent), else 400.
fn descending(query: &Query, default_desc: bool) -> Result<bool, ApiError> {
    match query.get("sort") {
        None => Ok(default_desc),
        Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "sort does not have a valid value: {}",
            echo(other)
        ))),
    }
}

/// `labels`: comma-separated names an item must all carry (exact names).
fn labels_filter(query: &Query) -> Vec<String> {
    query
        .get("labels")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn has_all(labels: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| labels.iter().any(|l| l == w))
}

/// Whether `at` lies in `[after, before]`.
fn within(at: Timestamp, after: Option<Timestamp>, before: Option<Timestamp>) -> bool {
    after.is_none_or(|a| at >= a) && before.is_none_or(|b| at <= b)
}

fn group_projects(group: &GitlabGroup, id: &str, query: &Query) -> Result<Reply, ApiError> {
    let owner = &group.org.owner;
    let path = if id == group.group_id.to_string() {
        owner.clone()
    } else {
        id.to_owned()
    };
    let known = group.projects.iter().any(|p| {
        p.namespace()
            .to_ascii_lowercase()
            .starts_with(&path.to_ascii_lowercase())
    });
    if !known && !path.eq_ignore_ascii_case(owner) {
        return Err(ApiError::NotFound("Group"));
    }
    let subgroups = query.get("include_subgroups") == Some("true");
    let items: Vec<Value> = (0..group.projects.len())
        .filter(|i| {
            let namespace = group.projects[*i].namespace().to_ascii_lowercase();
            let wanted = path.to_ascii_lowercase();
            namespace == wanted || (subgroups && namespace.starts_with(&format!("{wanted}/")))
        })
        .filter_map(|i| Ctx::new(group, i).map(|c| c.project(false)))
        .collect();
    Ok(offset_page(items, query, true))
}

fn deployments(ctx: &Ctx<'_>, query: &Query) -> Result<Reply, ApiError> {
    let updated_after = time(query, "updated_after")?;
    let updated_before = time(query, "updated_before")?;
    let finished_after = time(query, "finished_after")?;
    let finished_before = time(query, "finished_before")?;
    let by_updated = updated_after.is_some() || updated_before.is_some();
    let by_finished = finished_after.is_some() || finished_before.is_some();
    let order_by = query.get("order_by").unwrap_or("id");
    if by_updated && by_finished {
        return Err(ApiError::BadRequest(
            "Both `updated_at` filter and `finished_at` filter can not be specified".into(),
        ));
    }
    if by_finished != (order_by == "finished_at") {
        return Err(ApiError::BadRequest(
            "`finished_at` filter and `finished_at` sorting must be paired".into(),
        ));
    }
    let status = query.get("status");
    if by_finished && status != Some("success") {
        return Err(ApiError::BadRequest(
            "`finished_at` filter must be combined with `success` status filter.".into(),
        ));
    }
    if let Some(status) = status {
        let known = [
            "created", "running", "success", "failed", "canceled", "skipped", "blocked",
        ];
        if !known.contains(&status) {
            return Err(ApiError::BadRequest(format!(
                "The deployment status {} is invalid",
                echo(status)
            )));
        }
    }
    let order_by = if by_updated { "updated_at" } else { order_by };
    if ![
        "id",
        "iid",
        "created_at",
        "updated_at",
        "finished_at",
        "ref",
    ]
    .contains(&order_by)
    {
        return Err(ApiError::BadRequest(format!(
            "order_by does not have a valid value: {}",
            echo(order_by)
        )));
    }
    let desc = descending(query, false)?;
    let environment = query.get("environment");
    let mut rows: Vec<(&crate::model::SimDeployment, super::model::DeploymentView)> = ctx
        .repo
        .deployments
        .iter()
        .map(|d| (d, deployment_view(d)))
        .filter(|(d, _)| environment.is_none_or(|e| *d.environment == *e))
        .filter(|(_, v)| status.is_none_or(|s| v.status.as_str() == s))
        .filter(|(_, v)| within(v.updated_at, updated_after, updated_before))
        .filter(|(_, v)| {
            !by_finished
                || v.finished_at
                    .is_some_and(|f| within(f, finished_after, finished_before))
        })
        .collect();
    rows.sort_by(|(a, va), (b, vb)| {
        let key = |d: &crate::model::SimDeployment, v: &super::model::DeploymentView| match order_by
        {
            "updated_at" => (v.updated_at.0, d.id),
            "finished_at" => (v.finished_at.map_or(i64::MIN, |f| f.0), d.id),
            "ref" => (0, d.id),
            _ => (d.created_at.0, d.id),
        };
        let ordering = if order_by == "ref" {
            a.git_ref.cmp(&b.git_ref).then(a.id.cmp(&b.id))
        } else {
            key(a, va).cmp(&key(b, vb))
        };
        if desc {
            ordering.reverse()
        } else {
            ordering
        }
    });
    let environments = ctx.group.environments(ctx.index);
    let items = rows
        .into_iter()
        .map(|(d, _)| ctx.deployment(d, &environments))
        .collect();
    Ok(offset_page(items, query, true))
}

fn deployment(ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::NotFound("Deployment"))?;
    let d = ctx
        .repo
        .deployments
        .iter()
        .find(|d| d.id == id)
        .ok_or(ApiError::NotFound("Deployment"))?;
    let mut body = ctx.deployment(d, &ctx.group.environments(ctx.index));
    body["pending_approval_count"] = json!(0);
    body["approvals"] = json!([]);
    Ok(single(body))
}

fn environments(ctx: &Ctx<'_>, query: &Query) -> Result<Reply, ApiError> {
    let name = query.get("name");
    let search = query.get("search");
    if name.is_some() && search.is_some() {
        return Err(ApiError::BadRequest(
            "name, search are mutually exclusive".into(),
        ));
    }
    let states = query.get("states");
    let items = ctx
        .group
        .environments(ctx.index)
        .iter()
        .filter(|e| name.is_none_or(|n| *e.name == *n))
        .filter(|e| search.is_none_or(|s| e.name.contains(s)))
        .filter(|_| states.is_none_or(|s| s == "available"))
        .map(|e| ctx.environment(e))
        .collect();
    Ok(offset_page(items, query, true))
}

fn merge_requests(ctx: &Ctx<'_>, query: &Query) -> Result<Reply, ApiError> {
    let updated_after = time(query, "updated_after")?;
    let updated_before = time(query, "updated_before")?;
    let created_after = time(query, "created_after")?;
    let created_before = time(query, "created_before")?;
    let merged_after = time(query, "merged_after")?;
    let merged_before = time(query, "merged_before")?;
    let state = query.get("state").unwrap_or("all");
    if !["opened", "closed", "locked", "merged", "all"].contains(&state) {
        return Err(ApiError::BadRequest(format!(
            "state does not have a valid value: {}",
            echo(state)
        )));
    }
    let order_by = query.get("order_by").unwrap_or("created_at");
    if !["created_at", "updated_at", "merged_at", "title"].contains(&order_by) {
        return Err(ApiError::BadRequest(format!(
            "order_by does not have a valid value: {}",
            echo(order_by)
        )));
    }
    let desc = descending(query, true)?;
    let labels = labels_filter(query);
    let target = query.get("target_branch");
    let mut rows: Vec<(usize, &crate::model::SimPull)> = ctx
        .repo
        .pulls
        .iter()
        .enumerate()
        .map(|(i, p)| (i + 1, p))
        .filter(|(_, p)| match state {
            "merged" => p.merged_at.is_some(),
            "closed" => p.merged_at.is_none() && p.closed_at.is_some(),
            "opened" => p.closed_at.is_none(),
            "locked" => false,
            _ => true,
        })
        .filter(|(_, p)| within(p.updated_at, updated_after, updated_before))
        .filter(|(_, p)| within(p.created_at, created_after, created_before))
        .filter(|(_, p)| {
            (merged_after.is_none() && merged_before.is_none())
                || p.merged_at
                    .is_some_and(|m| within(m, merged_after, merged_before))
        })
        .filter(|(_, p)| has_all(&p.labels, &labels))
        .filter(|_| target.is_none_or(|t| t == ctx.repo.default_branch))
        .collect();
    rows.sort_by(|(ia, a), (ib, b)| {
        let key = |p: &crate::model::SimPull| match order_by {
            "updated_at" => p.updated_at.0,
            "merged_at" => p.merged_at.map_or(i64::MIN, |m| m.0),
            _ => p.created_at.0,
        };
        let ordering = if order_by == "title" {
            a.title.render().cmp(&b.title.render())
        } else {
            key(a).cmp(&key(b))
        }
        .then(ia.cmp(ib));
        if desc {
            ordering.reverse()
        } else {
            ordering
        }
    });
    let items = rows
        .into_iter()
        .map(|(iid, p)| ctx.merge_request(iid, p))
        .collect();
    Ok(offset_page(items, query, true))
}

fn merge_request_commits(ctx: &Ctx<'_>, iid: &str, query: &Query) -> Result<Reply, ApiError> {
    let iid: usize = iid
        .parse()
        .map_err(|_| ApiError::NotFound("Merge Request"))?;
    let pull = iid
        .checked_sub(1)
        .and_then(|i| ctx.repo.pulls.get(i))
        .ok_or(ApiError::NotFound("Merge Request"))?;
    let items = pull.commits.clone().rev().map(|c| ctx.commit(c)).collect();
    Ok(offset_page(items, query, true))
}

/// The keyset cursor of an issues page: the sort key of its last item.
fn issue_cursor(key: i64, id: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}:{id}"))
}

fn parse_issue_cursor(text: &str) -> Option<(i64, u64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (key, id) = text.split_once(':')?;
    Some((key.parse().ok()?, id.parse().ok()?))
}

fn issues(ctx: &Ctx<'_>, query: &Query) -> Result<Reply, ApiError> {
    let updated_after = time(query, "updated_after")?;
    let updated_before = time(query, "updated_before")?;
    let created_after = time(query, "created_after")?;
    let created_before = time(query, "created_before")?;
    let state = query.get("state").unwrap_or("all");
    if !["opened", "closed", "all"].contains(&state) {
        return Err(ApiError::BadRequest(format!(
            "state does not have a valid value: {}",
            echo(state)
        )));
    }
    let kind = query.get("issue_type");
    if let Some(kind) = kind {
        let known = [
            "issue",
            "incident",
            "test_case",
            "requirement",
            "task",
            "ticket",
        ];
        if !known.contains(&kind) {
            return Err(ApiError::BadRequest(format!(
                "issue_type does not have a valid value: {}",
                echo(kind)
            )));
        }
    }
    let order_by = query.get("order_by").unwrap_or("created_at");
    if !["created_at", "updated_at", "id"].contains(&order_by) {
        return Err(ApiError::BadRequest(format!(
            "order_by does not have a valid value: {}",
            echo(order_by)
        )));
    }
    let desc = descending(query, true)?;
    let labels = labels_filter(query);
    let key = |i: &crate::model::SimIssue| match order_by {
        "updated_at" => i.updated_at.0,
        "id" => i.id as i64,
        _ => i.created_at.0,
    };
    let mut rows: Vec<(usize, &crate::model::SimIssue)> = ctx
        .repo
        .issues
        .iter()
        .enumerate()
        .map(|(i, issue)| (i + 1, issue))
        .filter(|(_, i)| match state {
            "opened" => i.is_open(),
            "closed" => !i.is_open(),
            _ => true,
        })
        .filter(|(_, i)| kind.is_none_or(|k| issue_type(i) == k))
        .filter(|(_, i)| within(i.updated_at, updated_after, updated_before))
        .filter(|(_, i)| within(i.created_at, created_after, created_before))
        .filter(|(_, i)| has_all(&i.labels, &labels))
        .collect();
    rows.sort_by(|(_, a), (_, b)| {
        let ordering = (key(a), a.id).cmp(&(key(b), b.id));
        if desc {
            ordering.reverse()
        } else {
            ordering
        }
    });
    if query.get("pagination") != Some("keyset") {
        let items = rows.into_iter().map(|(iid, i)| ctx.issue(iid, i)).collect();
        return Ok(offset_page(items, query, true));
    }
    if let Some(cursor) = query.get("cursor") {
        let (after_key, after_id) = parse_issue_cursor(cursor)
            .ok_or_else(|| ApiError::BadRequest("cursor is invalid".into()))?;
        rows.retain(|(_, i)| {
            let here = (key(i), i.id);
            if desc {
                here < (after_key, after_id)
            } else {
                here > (after_key, after_id)
            }
        });
    }
    let (_, per_page) = offset(query);
    let more = rows.len() > per_page;
    rows.truncate(per_page);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|(_, i)| ("cursor".to_owned(), issue_cursor(key(i), i.id)));
    let items = rows.into_iter().map(|(iid, i)| ctx.issue(iid, i)).collect();
    Ok(Reply {
        body: Value::Array(items),
        paging: Paging::Keyset { next },
    })
}

fn commits(ctx: &Ctx<'_>, query: &Query) -> Result<Reply, ApiError> {
    let repo = ctx.repo;
    let reference = query.get("ref_name").unwrap_or(&repo.default_branch);
    let start = repo
        .resolve(reference)
        .ok_or(ApiError::NotFound("Commit"))?;
    let since = time(query, "since")?;
    let until = time(query, "until")?;
    let mut log: Vec<u32> = if query.get("first_parent") == Some("true") {
        let mut out = vec![start];
        let mut at = start;
        while let Some(parent) = repo.commits[at as usize].parents().next() {
            out.push(parent);
            at = parent;
        }
        out
    } else {
        repo.log(start)
    };
    log.retain(|i| within(repo.commits[*i as usize].committer_date, since, until));
    if query.get("pagination") != Some("keyset") {
        let items = log.into_iter().map(|i| ctx.commit(i)).collect();
        return Ok(offset_page(items, query, false));
    }
    if let Some(token) = query.get("page_token") {
        let after = repo
            .resolve(token)
            .ok_or_else(|| ApiError::BadRequest("page_token is invalid".into()))?;
        match log.iter().position(|i| *i == after) {
            Some(position) => {
                log.drain(..=position);
            }
            None => return Err(ApiError::BadRequest("page_token is invalid".into())),
        }
    }
    let (_, per_page) = offset(query);
    let more = log.len() > per_page;
    log.truncate(per_page);
    let next = log.last().filter(|_| more).map(|i| {
        (
            "page_token".to_owned(),
            repo.commits[*i as usize].sha.to_string(),
        )
    });
    Ok(Reply {
        body: Value::Array(log.into_iter().map(|i| ctx.commit(i)).collect()),
        paging: Paging::Keyset { next },
    })
}

fn commit(ctx: &Ctx<'_>, sha: &str) -> Result<Reply, ApiError> {
    let index = ctx.repo.resolve(sha).ok_or(ApiError::NotFound("Commit"))?;
    Ok(single(ctx.commit_detail(index)))
}

fn compare(ctx: &Ctx<'_>, query: &Query) -> Result<Reply, ApiError> {
    let (Some(from), Some(to)) = (query.get("from"), query.get("to")) else {
        return Err(ApiError::BadRequest(
            "from is missing, to is missing".into(),
        ));
    };
    let repo = ctx.repo;
    let base = repo.resolve(from).ok_or(ApiError::NotFound("Ref"))?;
    let head = repo.resolve(to).ok_or(ApiError::NotFound("Ref"))?;
    let comparison = repo.compare(base, head);
    let last = comparison.ahead.last().copied();
    Ok(single(ctx.compare(last, &comparison.ahead, base == head)))
}

fn pipelines(ctx: &Ctx<'_>, query: &Query) -> Result<Reply, ApiError> {
    let updated_after = time(query, "updated_after")?;
    let updated_before = time(query, "updated_before")?;
    let created_after = time(query, "created_after")?;
    let created_before = time(query, "created_before")?;
    let order_by = query.get("order_by").unwrap_or("id");
    if !["id", "status", "ref", "updated_at", "user_id"].contains(&order_by) {
        return Err(ApiError::BadRequest(format!(
            "order_by does not have a valid value: {}",
            echo(order_by)
        )));
    }
    let desc = descending(query, true)?;
    let git_ref = query.get("ref");
    let sha = query.get("sha");
    let status = query.get("status");
    let scope = query.get("scope");
    let source = query.get("source");
    let runs = match &ctx.project.deploys {
        GitlabDeploySource::Pipelines { .. } => ctx.repo.workflow_runs.as_slice(),
        GitlabDeploySource::Deployments => &[],
    };
    let mut rows: Vec<&crate::model::SimWorkflowRun> = runs
        .iter()
        .filter(|r| git_ref.is_none_or(|g| *r.head_branch == *g))
        .filter(|r| sha.is_none_or(|s| r.head_sha.to_string() == s))
        .filter(|r| status.is_none_or(|s| pipeline_view(r).0 == s))
        .filter(|r| match scope {
            Some("finished") => pipeline_view(r).1.is_some(),
            Some("running") => pipeline_view(r).0 == "running",
            Some("pending") => pipeline_view(r).0 == "pending",
            _ => true,
        })
        .filter(|r| {
            source.is_none_or(|s| match r.event {
                crate::model::RunEvent::Push => s == "push",
                crate::model::RunEvent::PullRequest => s == "merge_request_event",
                crate::model::RunEvent::WorkflowDispatch => s == "web",
            })
        })
        .filter(|r| within(r.updated_at, updated_after, updated_before))
        .filter(|r| within(r.created_at, created_after, created_before))
        .collect();
    rows.sort_by(|a, b| {
        let ordering = match order_by {
            "updated_at" => (a.updated_at, a.id).cmp(&(b.updated_at, b.id)),
            "status" => pipeline_view(a)
                .0
                .cmp(pipeline_view(b).0)
                .then(a.id.cmp(&b.id)),
            "ref" => a.head_branch.cmp(&b.head_branch).then(a.id.cmp(&b.id)),
            _ => a.id.cmp(&b.id),
        };
        if desc {
            ordering.reverse()
        } else {
            ordering
        }
    });
    let items = rows.into_iter().map(|r| ctx.pipeline(r, false)).collect();
    Ok(offset_page(items, query, true))
}

fn pipeline(ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::NotFound("Pipeline"))?;
    let run = match &ctx.project.deploys {
        GitlabDeploySource::Pipelines { .. } => ctx.repo.workflow_runs.iter().find(|r| r.id == id),
        GitlabDeploySource::Deployments => None,
    }
    .ok_or(ApiError::NotFound("Pipeline"))?;
    Ok(single(ctx.pipeline(run, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_endpoints_below_the_prefix() {
        let route = |path: &str| parse_path("/gitlab", path);
        assert_eq!(
            route("/gitlab/api/v4/projects/acme%2Fplatform%2Fapi/deployments"),
            Some(Route {
                id: "acme/platform/api".into(),
                endpoint: Endpoint::Deployments
            })
        );
        assert_eq!(
            route("/gitlab/api/v4/projects/7/repository/commits/abc").map(|r| r.endpoint),
            Some(Endpoint::Commit("abc".into()))
        );
        assert_eq!(
            route("/api/v4/projects/7/deployments"),
            None,
            "outside the prefix"
        );
        assert_eq!(route("/gitlab/api/v4/projects/7/wiki"), None);
        assert_eq!(route("/gitlab/api/v4/projects//issues"), None);
    }

    #[test]
    fn issue_cursors_round_trip() {
        assert_eq!(parse_issue_cursor(&issue_cursor(-5, 9)), Some((-5, 9)));
        assert_eq!(parse_issue_cursor("garbage!"), None);
    }
}
