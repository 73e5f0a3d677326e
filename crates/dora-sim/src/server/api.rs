//! The endpoints: one function per route that filters, sorts and pages the
//! organisation's data the way GitHub does, and returns a JSON body with its
//! `Link` header, or GitHub's error.
//!
//! Pure with respect to I/O: an `&Org` and a parsed request in, a [`Reply`] out.
//! Authentication, rate limiting, ETags and counting are the server's business.

use crate::domain::Timestamp;
use crate::model::{Org, SimIssue, SimPull, SimRepo};
use crate::server::render::{Ctx, RepoCtx};
use crate::server::route::{parse_created, parse_time, Endpoint, Paging, Query, RepoKey, Route};
use serde_json::{json, Value};

/// Most commits a compare returns without pagination, and the most commits a
/// pull request's commit list ever returns (GitHub's documented limits).
pub(crate) const MAX_UNPAGED_COMMITS: usize = 250;
/// Most workflow runs GitHub returns when a search filter is used.
pub(crate) const MAX_FILTERED_RUNS: usize = 1000;
/// Longest piece of client input echoed in an error message.
const MAX_ECHO: usize = 100;
/// Seconds in 30 days (`long-running` pull requests).
const MONTH: i64 = 30 * 86_400;

/// A successful response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub body: Value,
    pub link: Option<String>,
}

/// GitHub's error responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// 404 `Not Found`, or 404 with a more specific message.
    NotFound(Option<String>),
    /// 422 with a message, e.g. `No commit found for SHA: x`.
    Unprocessable(String),
    /// 422 `Validation Failed` naming the invalid field.
    Invalid {
        resource: &'static str,
        field: &'static str,
    },
    /// 400 with a message.
    BadRequest(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::Unprocessable(_) | ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
        }
    }

    /// The JSON body, shaped like GitHub's (`basic-error` / `validation-error`).
    pub(crate) fn body(&self, docs: &str) -> Value {
        let status = self.status().to_string();
        match self {
            ApiError::NotFound(message) => json!({
                "message": message.as_deref().unwrap_or("Not Found"),
                "documentation_url": docs,
                "status": status,
            }),
            ApiError::Unprocessable(message) | ApiError::BadRequest(message) => json!({
                "message": message,
                "documentation_url": docs,
                "status": status,
            }),
            ApiError::Invalid { resource, field } => json!({
                "message": "Validation Failed",
                "errors": [{"resource": resource, "field": field, "code": "invalid"}],
                "documentation_url": docs,
                "status": status,
            }),
        }
    }
}

/// The documentation URL GitHub puts in an endpoint's errors.
pub(crate) fn docs_url(endpoint: Option<&Endpoint>) -> &'static str {
    match endpoint {
        Some(Endpoint::Repo) => "https://docs.github.com/rest/repos/repos#get-a-repository",
        Some(Endpoint::Deployments) => "https://docs.github.com/rest/deployments/deployments#list-deployments",
        Some(Endpoint::DeploymentStatuses { .. }) => {
            "https://docs.github.com/rest/deployments/statuses#list-deployment-statuses"
        }
        Some(Endpoint::WorkflowRuns { .. }) => {
            "https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow"
        }
        Some(Endpoint::Runs) => {
            "https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-repository"
        }
        Some(Endpoint::Compare { .. }) => "https://docs.github.com/rest/commits/commits#compare-two-commits",
        Some(Endpoint::Commits) => "https://docs.github.com/rest/commits/commits#list-commits",
        Some(Endpoint::Commit { .. }) => "https://docs.github.com/rest/commits/commits#get-a-commit",
        Some(Endpoint::CommitPulls { .. }) => {
            "https://docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-commit"
        }
        Some(Endpoint::Issues) => "https://docs.github.com/rest/issues/issues#list-repository-issues",
        Some(Endpoint::Pulls) => "https://docs.github.com/rest/pulls/pulls#list-pull-requests",
        Some(Endpoint::PullCommits { .. }) => {
            "https://docs.github.com/rest/pulls/pulls#list-commits-on-a-pull-request"
        }
        Some(Endpoint::PullReviews { .. }) => {
            "https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request"
        }
        Some(Endpoint::OrgRepos { .. }) => "https://docs.github.com/rest/repos/repos#list-organization-repositories",
        Some(Endpoint::RateLimit) => {
            "https://docs.github.com/rest/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user"
        }
        Some(Endpoint::OrgTeams { .. }) => "https://docs.github.com/rest/teams/teams#list-teams",
        Some(Endpoint::TeamRepos { .. }) => {
            "https://docs.github.com/rest/teams/teams#list-team-repositories"
        }
        Some(Endpoint::AppInstallations) => {
            "https://docs.github.com/rest/apps/apps#list-installations-for-the-authenticated-app"
        }
        Some(Endpoint::OrgInstallation { .. }) => {
            "https://docs.github.com/rest/apps/apps#get-an-organization-installation-for-the-authenticated-app"
        }
        Some(Endpoint::RepoInstallation) => {
            "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"
        }
        None => "https://docs.github.com/rest",
    }
}

fn echo(text: &str) -> String {
    text.chars().take(MAX_ECHO).collect()
}

/// Answers a parsed request (every endpoint but `/rate_limit`, which the server
/// answers from its budget).
pub(crate) fn respond(
    org: &Org,
    api: &str,
    route: &Route,
    query: &Query,
) -> Result<Reply, ApiError> {
    let ctx = Ctx::new(api, org);
    match &route.endpoint {
        Endpoint::OrgRepos { org: login } => return org_repos(&ctx, login, query),
        Endpoint::OrgTeams { org: login } => return org_teams(&ctx, login, query),
        Endpoint::TeamRepos { org: login, slug } => return team_repos(&ctx, login, slug, query),
        _ => {}
    }
    let key = route.repo.as_ref().ok_or(ApiError::NotFound(None))?;
    let repo = find_repo(org, key).ok_or(ApiError::NotFound(None))?;
    let rc = RepoCtx::new(&ctx, repo);
    let link_base = format!("{api}/repositories/{}{}", repo.id, route.rest);
    let pages = Pager {
        link_base: &link_base,
        query,
        paging: query.paging(),
    };
    match &route.endpoint {
        Endpoint::Repo => Ok(Reply {
            body: rc.full_repository(),
            link: None,
        }),
        Endpoint::Deployments => deployments(&rc, &pages),
        Endpoint::DeploymentStatuses { deployment_id } => statuses(&rc, &pages, deployment_id),
        Endpoint::WorkflowRuns { workflow_id } => {
            let workflow = repo.workflow().filter(|w| {
                workflow_id.parse::<u64>().ok() == Some(w.id)
                    || *workflow_id == w.file
                    || *workflow_id == w.path()
            });
            if workflow.is_none() {
                return Err(ApiError::NotFound(None));
            }
            runs(&rc, &pages)
        }
        Endpoint::Runs => runs(&rc, &pages),
        Endpoint::Compare { basehead } => compare(&rc, &pages, basehead),
        Endpoint::Commits => commits(&rc, &pages),
        Endpoint::Commit { reference } => {
            let index = repo.resolve(reference).ok_or_else(|| {
                ApiError::Unprocessable(format!("No commit found for SHA: {}", echo(reference)))
            })?;
            Ok(Reply {
                body: rc.commit(index, true),
                link: None,
            })
        }
        Endpoint::CommitPulls { sha } => commit_pulls(&rc, &pages, sha),
        Endpoint::Issues => issues(&rc, &pages),
        Endpoint::Pulls => pulls(&rc, &pages),
        Endpoint::PullCommits { number } => pull_commits(&rc, &pages, number),
        Endpoint::PullReviews { number } => pull_reviews(&rc, &pages, number),
        Endpoint::RateLimit
        | Endpoint::OrgRepos { .. }
        | Endpoint::AppInstallations
        | Endpoint::OrgInstallation { .. }
        | Endpoint::RepoInstallation
        | Endpoint::OrgTeams { .. }
        | Endpoint::TeamRepos { .. } => Err(ApiError::NotFound(None)),
    }
}

pub(super) fn find_repo<'a>(org: &'a Org, key: &RepoKey) -> Option<&'a SimRepo> {
    match key {
        RepoKey::Name { owner, repo } => {
            let name = repo.strip_suffix(".git").unwrap_or(repo);
            if owner.eq_ignore_ascii_case(&org.owner) {
                org.repo(name)
            } else {
                None
            }
        }
        RepoKey::Id(id) => org.repo_by_id(*id),
    }
}

/// Pagination of one request: slices a list and writes its `Link` header.
struct Pager<'a> {
    link_base: &'a str,
    query: &'a Query,
    paging: Paging,
}

impl Pager<'_> {
    /// The page of `items` and the `Link` header for a list of `total` items.
    fn page<'i, T>(&self, items: &'i [T]) -> (&'i [T], Option<String>) {
        let range = self.paging.range(items.len());
        (&items[range], self.link(items.len()))
    }

    /// GitHub's `Link` header: `prev`, `next`, `last`, `first`, in that order;
    /// `next`/`last` only before the last page, `prev`/`first` only after the
    /// first; none at all for a single page.
    fn link(&self, total: usize) -> Option<String> {
        let Paging { page, .. } = self.paging;
        let last = self.paging.last_page(total);
        let url = |n: u64| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in self.query.without_page() {
                query.append_pair(k, v);
            }
            query.append_pair("page", &n.to_string());
            format!("<{}?{}>", self.link_base, query.finish())
        };
        let mut parts = Vec::new();
        if page > 1 {
            parts.push(format!("{}; rel=\"prev\"", url(page - 1)));
        }
        if page < last {
            parts.push(format!("{}; rel=\"next\"", url(page + 1)));
            parts.push(format!("{}; rel=\"last\"", url(last)));
        }
        if page > 1 {
            parts.push(format!("{}; rel=\"first\"", url(1)));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

fn list(values: Vec<Value>, link: Option<String>) -> Result<Reply, ApiError> {
    Ok(Reply {
        body: Value::Array(values),
        link,
    })
}

fn deployments(rc: &RepoCtx<'_>, pages: &Pager<'_>) -> Result<Reply, ApiError> {
    let q = pages.query;
    // Every simulated deployment has the default task.
    let task_matches = q.get("task").is_none_or(|t| t == crate::model::DEPLOY_TASK);
    let mut matching: Vec<_> = rc
        .repo
        .deployments
        .iter()
        .filter(|d| {
            q.get("sha")
                .is_none_or(|s| d.sha.to_string().eq_ignore_ascii_case(s))
        })
        .filter(|d| q.get("ref").is_none_or(|r| *d.git_ref == *r))
        .filter(|d| q.get("environment").is_none_or(|e| *d.environment == *e))
        .filter(|_| task_matches)
        .collect();
    matching.sort_by_key(|d| std::cmp::Reverse(d.id));
    let (page, link) = pages.page(&matching);
    list(page.iter().map(|d| rc.deployment(d)).collect(), link)
}

fn statuses(rc: &RepoCtx<'_>, pages: &Pager<'_>, id: &str) -> Result<Reply, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::NotFound(None))?;
    let deployment = rc.repo.deployment(id).ok_or(ApiError::NotFound(None))?;
    let mut statuses: Vec<_> = deployment.statuses.iter().collect();
    statuses.sort_by_key(|s| std::cmp::Reverse(s.id));
    let (page, link) = pages.page(&statuses);
    list(
        page.iter()
            .map(|s| rc.deployment_status(deployment, s))
            .collect(),
        link,
    )
}

fn runs(rc: &RepoCtx<'_>, pages: &Pager<'_>) -> Result<Reply, ApiError> {
    let q = pages.query;
    let created = match q.get("created") {
        Some(text) => Some(parse_created(text).ok_or(ApiError::Invalid {
            resource: "WorkflowRun",
            field: "created",
        })?),
        None => None,
    };
    let people = &rc.ctx.org.people;
    let mut matching: Vec<_> = rc
        .repo
        .workflow_runs
        .iter()
        .filter(|r| q.get("branch").is_none_or(|b| *r.head_branch == *b))
        .filter(|r| q.get("event").is_none_or(|e| r.event.as_str() == e))
        .filter(|r| {
            q.get("status").is_none_or(|s| {
                r.status.as_str() == s || r.conclusion.is_some_and(|c| c.as_str() == s)
            })
        })
        .filter(|r| {
            q.get("head_sha")
                .is_none_or(|s| r.head_sha.to_string().eq_ignore_ascii_case(s))
        })
        .filter(|r| {
            q.get("actor")
                .is_none_or(|a| people.get(r.actor as usize).is_some_and(|p| p.login == a))
        })
        .filter(|r| {
            q.get("check_suite_id")
                .is_none_or(|c| c.parse::<u64>().ok() == Some(r.id + 20_000_000_000))
        })
        .filter(|r| match created {
            Some((from, to)) => {
                from.is_none_or(|f| r.created_at >= f) && to.is_none_or(|t| r.created_at <= t)
            }
            None => true,
        })
        .collect();
    matching.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let searched = [
        "actor",
        "branch",
        "check_suite_id",
        "created",
        "event",
        "head_sha",
        "status",
    ]
    .iter()
    .any(|p| q.has(p));
    if searched {
        matching.truncate(MAX_FILTERED_RUNS);
    }
    let (page, link) = pages.page(&matching);
    let runs: Vec<Value> = page.iter().map(|r| rc.workflow_run(r)).collect();
    Ok(Reply {
        body: json!({"total_count": matching.len(), "workflow_runs": runs}),
        link,
    })
}

fn compare(rc: &RepoCtx<'_>, pages: &Pager<'_>, basehead: &str) -> Result<Reply, ApiError> {
    let (base, head) = basehead.split_once("...").ok_or(ApiError::NotFound(None))?;
    let owner = &rc.ctx.org.owner;
    let strip = |side: &'_ str| -> String {
        match side.split_once(':') {
            Some((user, rest)) if user.eq_ignore_ascii_case(owner) => rest.to_owned(),
            _ => side.to_owned(),
        }
    };
    let base_index = rc
        .repo
        .resolve(&strip(base))
        .ok_or(ApiError::NotFound(None))?;
    let head_index = rc
        .repo
        .resolve(&strip(head))
        .ok_or(ApiError::NotFound(None))?;
    let comparison = rc.repo.compare(base_index, head_index);
    let q = pages.query;
    let (commits, link, first_page) = if q.has("page") || q.has("per_page") {
        let (page, link) = pages.page(&comparison.ahead);
        (page, link, pages.paging.page == 1)
    } else {
        let from = comparison.ahead.len().saturating_sub(MAX_UNPAGED_COMMITS);
        (&comparison.ahead[from..], None, true)
    };
    let body = rc.compare(
        basehead,
        base_index,
        head_index,
        &comparison,
        commits,
        first_page,
    );
    Ok(Reply { body, link })
}

fn commits(rc: &RepoCtx<'_>, pages: &Pager<'_>) -> Result<Reply, ApiError> {
    let q = pages.query;
    let repo = rc.repo;
    let start = match q.get("sha").filter(|s| !s.is_empty()) {
        Some(rev) => repo.resolve(rev).ok_or_else(|| {
            ApiError::NotFound(Some(format!("No commit found for SHA: {}", echo(rev))))
        })?,
        None => repo.main_head,
    };
    let bound = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        match q.get(name) {
            Some(text) => parse_time(text).map(Some).ok_or_else(|| {
                ApiError::BadRequest(format!("Invalid value for `{name}`: {}", echo(text)))
            }),
            None => Ok(None),
        }
    };
    let (since, until) = (bound("since")?, bound("until")?);
    let people = &rc.ctx.org.people;
    let author = q.get("author");
    let log: Vec<u32> = repo
        .log(start)
        .into_iter()
        .filter(|i| {
            let c = &repo.commits[*i as usize];
            since.is_none_or(|s| c.committer_date >= s)
                && until.is_none_or(|u| c.committer_date <= u)
                && author.is_none_or(|a| {
                    people.get(c.author as usize).is_some_and(|p| {
                        p.login.eq_ignore_ascii_case(a) || p.email.eq_ignore_ascii_case(a)
                    })
                })
        })
        .collect();
    let (page, link) = pages.page(&log);
    list(page.iter().map(|i| rc.commit(*i, false)).collect(), link)
}

fn commit_pulls(rc: &RepoCtx<'_>, pages: &Pager<'_>, sha: &str) -> Result<Reply, ApiError> {
    let index = rc.repo.resolve(sha).ok_or_else(|| {
        ApiError::Unprocessable(format!("No commit found for SHA: {}", echo(sha)))
    })?;
    let mut matching: Vec<&SimPull> = rc
        .repo
        .pulls
        .iter()
        // GitHub: "the merged pull request that introduced the commit [...]
        // merged and open pull requests associated with the commit": never one
        // closed without merging.
        .filter(|p| p.merge_commit == Some(index) || p.commits.contains(&index))
        .filter(|p| p.merged_at.is_some() || p.is_open())
        .collect();
    matching.sort_by_key(|p| std::cmp::Reverse(p.number));
    let (page, link) = pages.page(&matching);
    list(page.iter().map(|p| rc.pull(p)).collect(), link)
}

/// An issue or a pull request in the issues list.
enum IssueItem<'a> {
    Issue(&'a SimIssue),
    Pull(&'a SimPull),
}

impl IssueItem<'_> {
    fn created(&self) -> Timestamp {
        match self {
            IssueItem::Issue(i) => i.created_at,
            IssueItem::Pull(p) => p.created_at,
        }
    }
    fn updated(&self) -> Timestamp {
        match self {
            IssueItem::Issue(i) => i.updated_at,
            IssueItem::Pull(p) => p.updated_at,
        }
    }
    fn number(&self) -> u64 {
        match self {
            IssueItem::Issue(i) => i.number,
            IssueItem::Pull(p) => p.number,
        }
    }
    fn comments(&self) -> u32 {
        match self {
            IssueItem::Issue(i) => i.comments,
            IssueItem::Pull(p) => p.comments,
        }
    }
    fn open(&self) -> bool {
        match self {
            IssueItem::Issue(i) => i.is_open(),
            IssueItem::Pull(p) => p.is_open(),
        }
    }
    fn has_label(&self, label: &str) -> bool {
        match self {
            IssueItem::Issue(i) => i.has_label(label),
            IssueItem::Pull(p) => p.has_label(label),
        }
    }
    fn user(&self) -> u32 {
        match self {
            IssueItem::Issue(i) => i.user,
            IssueItem::Pull(p) => p.user,
        }
    }
}

/// `state` as GitHub reads it: `Some(open?)`, `None` for all.
fn state_filter(q: &Query, resource: &'static str) -> Result<Option<bool>, ApiError> {
    match q.get("state").unwrap_or("open") {
        "open" => Ok(Some(true)),
        "closed" => Ok(Some(false)),
        "all" => Ok(None),
        _ => Err(ApiError::Invalid {
            resource,
            field: "state",
        }),
    }
}

fn direction(q: &Query, default_desc: bool, resource: &'static str) -> Result<bool, ApiError> {
    match q.get("direction") {
        None => Ok(default_desc),
        Some("desc") => Ok(true),
        Some("asc") => Ok(false),
        Some(_) => Err(ApiError::Invalid {
            resource,
            field: "direction",
        }),
    }
}

fn issues(rc: &RepoCtx<'_>, pages: &Pager<'_>) -> Result<Reply, ApiError> {
    let q = pages.query;
    let repo = rc.repo;
    let state = state_filter(q, "Issue")?;
    let labels: Vec<&str> = q
        .get("labels")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let since = match q.get("since") {
        Some(text) => Some(parse_time(text).ok_or(ApiError::Invalid {
            resource: "Issue",
            field: "since",
        })?),
        None => None,
    };
    let sort = q.get("sort").unwrap_or("created");
    if !matches!(sort, "created" | "updated" | "comments") {
        return Err(ApiError::Invalid {
            resource: "Issue",
            field: "sort",
        });
    }
    let desc = direction(q, true, "Issue")?;
    // Simulated issues have no milestone, assignee or mentions.
    let none_or_absent = |name: &str| q.get(name).is_none_or(|v| v.eq_ignore_ascii_case("none"));
    if !none_or_absent("milestone") || !none_or_absent("assignee") || q.has("mentioned") {
        return list(Vec::new(), None);
    }
    let people = &rc.ctx.org.people;
    let creator = q.get("creator");
    let items = repo
        .issues
        .iter()
        .map(IssueItem::Issue)
        .chain(repo.pulls.iter().map(IssueItem::Pull));
    let mut matching: Vec<IssueItem<'_>> = items
        .filter(|item| state.is_none_or(|open| item.open() == open))
        .filter(|item| labels.iter().all(|l| item.has_label(l)))
        .filter(|item| since.is_none_or(|s| item.updated() >= s))
        .filter(|item| {
            creator.is_none_or(|c| {
                people
                    .get(item.user() as usize)
                    .is_some_and(|p| p.login.eq_ignore_ascii_case(c))
            })
        })
        .collect();
    matching.sort_by(|a, b| {
        let order = match sort {
            "updated" => a.updated().cmp(&b.updated()),
            "comments" => a.comments().cmp(&b.comments()),
            _ => a.created().cmp(&b.created()),
        }
        .then(a.number().cmp(&b.number()));
        if desc {
            order.reverse()
        } else {
            order
        }
    });
    let (page, link) = pages.page(&matching);
    let values = page
        .iter()
        .map(|item| match item {
            IssueItem::Issue(i) => rc.issue(i),
            IssueItem::Pull(p) => rc.pull_as_issue(p),
        })
        .collect();
    list(values, link)
}

fn pulls(rc: &RepoCtx<'_>, pages: &Pager<'_>) -> Result<Reply, ApiError> {
    let q = pages.query;
    let repo = rc.repo;
    let state = state_filter(q, "PullRequest")?;
    let sort = q.get("sort").unwrap_or("created");
    if !matches!(sort, "created" | "updated" | "popularity" | "long-running") {
        return Err(ApiError::Invalid {
            resource: "PullRequest",
            field: "sort",
        });
    }
    let desc = direction(q, sort == "created", "PullRequest")?;
    let owner = &rc.ctx.org.owner;
    let head = q.get("head").map(|h| match h.split_once(':') {
        Some((user, branch)) => (Some(user), branch),
        None => (None, h),
    });
    let now = rc.ctx.org.now;
    // Every simulated pull request targets the default branch.
    let base_matches = q.get("base").is_none_or(|b| b == repo.default_branch);
    let mut matching: Vec<&SimPull> = repo
        .pulls
        .iter()
        .filter(|p| state.is_none_or(|open| p.is_open() == open))
        .filter(|_| base_matches)
        .filter(|p| {
            head.is_none_or(|(user, branch)| {
                user.is_none_or(|u| u.eq_ignore_ascii_case(owner)) && p.branch() == branch
            })
        })
        .filter(|p| {
            sort != "long-running"
                || (p.is_open()
                    && now.0 - p.created_at.0 > MONTH
                    && now.0 - p.updated_at.0 <= MONTH)
        })
        .collect();
    matching.sort_by(|a, b| {
        let order = match sort {
            "updated" => a.updated_at.cmp(&b.updated_at),
            "popularity" => a.comments.cmp(&b.comments),
            _ => a.created_at.cmp(&b.created_at),
        }
        .then(a.number.cmp(&b.number));
        if desc {
            order.reverse()
        } else {
            order
        }
    });
    let (page, link) = pages.page(&matching);
    list(page.iter().map(|p| rc.pull(p)).collect(), link)
}

fn pull_commits(rc: &RepoCtx<'_>, pages: &Pager<'_>, number: &str) -> Result<Reply, ApiError> {
    let number: u64 = number.parse().map_err(|_| ApiError::NotFound(None))?;
    let pull = rc.repo.pull(number).ok_or(ApiError::NotFound(None))?;
    let commits: Vec<u32> = pull.commits.clone().take(MAX_UNPAGED_COMMITS).collect();
    let (page, link) = pages.page(&commits);
    list(page.iter().map(|i| rc.commit(*i, false)).collect(), link)
}

/// `GET /orgs/{org}/teams`: the organisation's teams, by id.
fn org_teams(ctx: &Ctx<'_>, login: &str, query: &Query) -> Result<Reply, ApiError> {
    let org = ctx.org;
    if !login.eq_ignore_ascii_case(&org.owner) {
        return Err(ApiError::NotFound(None));
    }
    let link_base = format!(
        "{}/orgs/{}/teams",
        ctx.api,
        crate::server::render::segment(&org.owner)
    );
    let pager = Pager {
        link_base: &link_base,
        query,
        paging: query.paging(),
    };
    let indices: Vec<usize> = (0..org.teams.len()).collect();
    let (page, link) = pager.page(&indices);
    list(page.iter().map(|i| ctx.team(*i)).collect(), link)
}

/// `GET /orgs/{org}/teams/{team_slug}/repos`: the repositories the team can
/// reach, with its role on each (its own repositories: `admin`).
fn team_repos(ctx: &Ctx<'_>, login: &str, slug: &str, query: &Query) -> Result<Reply, ApiError> {
    let org = ctx.org;
    if !login.eq_ignore_ascii_case(&org.owner) {
        return Err(ApiError::NotFound(None));
    }
    let team = org
        .teams
        .iter()
        .position(|t| t.slug().eq_ignore_ascii_case(slug))
        .ok_or(ApiError::NotFound(None))?;
    let mut reached: Vec<(&SimRepo, &str)> = org
        .repos
        .iter()
        .filter_map(|r| {
            if r.team == team {
                return Some((r, "admin"));
            }
            r.other_teams
                .iter()
                .find(|(t, _)| *t == team)
                .map(|(_, role)| (r, role.as_str()))
        })
        .collect();
    reached.sort_by_key(|(r, _)| r.id);
    let link_base = format!(
        "{}/orgs/{}/teams/{}/repos",
        ctx.api,
        crate::server::render::segment(&org.owner),
        crate::server::render::segment(&org.teams[team].slug()),
    );
    let pager = Pager {
        link_base: &link_base,
        query,
        paging: query.paging(),
    };
    let (page, link) = pager.page(&reached);
    list(
        page.iter()
            .map(|(r, role)| RepoCtx::new(ctx, r).with_role(role))
            .collect(),
        link,
    )
}

/// A pull request's reviews, oldest first: the simulator keeps its first one
/// only ([`crate::model::SimPull::first_review_at`]).
fn pull_reviews(rc: &RepoCtx<'_>, pages: &Pager<'_>, number: &str) -> Result<Reply, ApiError> {
    let number: u64 = number.parse().map_err(|_| ApiError::NotFound(None))?;
    let pull = rc.repo.pull(number).ok_or(ApiError::NotFound(None))?;
    let reviews: Vec<_> = pull.first_review_at.into_iter().collect();
    let (page, link) = pages.page(&reviews);
    list(page.iter().map(|at| rc.review(pull, *at)).collect(), link)
}

fn org_repos(ctx: &Ctx<'_>, login: &str, query: &Query) -> Result<Reply, ApiError> {
    let org = ctx.org;
    if !login.eq_ignore_ascii_case(&org.owner) {
        return Err(ApiError::NotFound(None));
    }
    let sort = query.get("sort").unwrap_or("created");
    let desc = match query.get("direction") {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort != "full_name",
    };
    let mut repos: Vec<&SimRepo> = org.repos.iter().collect();
    let pushed = |r: &SimRepo| {
        r.commits
            .iter()
            .map(|c| c.committer_date)
            .max()
            .unwrap_or(r.created_at)
    };
    repos.sort_by(|a, b| {
        let order = match sort {
            "full_name" => a
                .name
                .to_ascii_lowercase()
                .cmp(&b.name.to_ascii_lowercase()),
            "updated" | "pushed" => pushed(a).cmp(&pushed(b)),
            _ => a.created_at.cmp(&b.created_at),
        }
        .then(a.id.cmp(&b.id));
        if desc {
            order.reverse()
        } else {
            order
        }
    });
    let link_base = format!(
        "{}/orgs/{}/repos",
        ctx.api,
        crate::server::render::segment(&org.owner)
    );
    let pager = Pager {
        link_base: &link_base,
        query,
        paging: query.paging(),
    };
    let (page, link) = pager.page(&repos);
    list(
        page.iter()
            .map(|r| RepoCtx::new(ctx, r).repository())
            .collect(),
        link,
    )
}
