//! Field resolvers over the simulated organisation: one small object per GitHub
//! GraphQL type a DORA collector reads, driven by `apollo-compiler`'s executor,
//! which walks the validated selection set (aliases, fragments, variables,
//! `__typename`, null propagation) and calls [`ObjectValue::resolve_field`] for
//! each field it meets.
//!
//! Served types and fields (anything else is a field error saying it is not
//! supported by the simulator, never made-up data):
//! - `Query`: `repository(owner, name)`, `rateLimit { cost limit used remaining
//!   resetAt nodeCount }`, `viewer { login id databaseId }`.
//! - `Repository`: `id databaseId name nameWithOwner url createdAt
//!   deployments defaultBranchRef ref(qualifiedName) object(oid | expression)
//!   issues pullRequests`.
//! - `Deployment`: `id databaseId createdAt updatedAt environment
//!   originalEnvironment latestEnvironment task state commitOid commit ref creator
//!   latestStatus statuses`; `DeploymentStatus`: `id state createdAt updatedAt
//!   environment deployment`.
//! - `Ref`: `id name prefix target repository`; `Commit`: `id oid abbreviatedOid
//!   url message messageHeadline messageBody authoredDate committedDate author
//!   committer parents history(since, until) associatedPullRequests`;
//!   `GitActor`: `name email date user`.
//! - `Issue`: `id databaseId fullDatabaseId number url title body state
//!   stateReason createdAt updatedAt closedAt author labels`; `PullRequest`: the
//!   same plus `merged mergedAt mergeCommit isDraft baseRefName headRefName
//!   baseRefOid headRefOid commits reviews(states)`; `PullRequestCommit`: `id commit
//!   pullRequest`; `PullRequestReview`: `id databaseId state submittedAt
//!   createdAt author` (a pull request has at most one, its first review); `Label`: `name url`; authors and creators (`User`, or `Bot`
//!   for the Actions bot): `login id databaseId name url`.
//! - Every connection: `nodes edges { cursor node } pageInfo { hasNextPage
//!   hasPreviousPage startCursor endCursor } totalCount`, with `first`, `last`,
//!   `after`, `before`.
//!
//! Orders and filters: deployments by `createdAt` (`orderBy`, default ascending
//! as in GitHub's schema) filtered by `environments`; issues and pull requests by
//! `orderBy` (default creation, ascending), `states`, `labels` (any of them),
//! `filterBy { since states labels createdBy }` and `baseRefName`/`headRefName`;
//! history newest first as `git log` (by committer date), `since`/`until` on the
//! committer date; statuses, parents, labels and pull-request commits in their
//! stored order (oldest first, first parent first). Cursors are opaque (base64)
//! and name a position by its sort key, so a page boundary survives insertions.
//!
//! Formats follow GitHub's schema: `DateTime` as `YYYY-MM-DDTHH:MM:SSZ`,
//! `GitObjectID` as 40 lowercase hex digits, enums in capitals, node ids in
//! GitHub's legacy base64 form, the same as the REST endpoints' `node_id`.
//! `Deployment.state` comes from the latest status: `success` → `ACTIVE`,
//! `inactive` → `INACTIVE`, the others by name; no status → `PENDING`
//! (`ABANDONED`, `DESTROYED` and `WAITING` are never produced).

use crate::domain::{StatusState, Timestamp};
use crate::model::{Org, Person, SimDeployment, SimIssue, SimPull, SimRepo, SimStatus};
use crate::server::api::MAX_UNPAGED_COMMITS;
use crate::server::render::{node_id, segment, WEB_URL};
use crate::server::route::parse_time;
use apollo_compiler::resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{JsonMap, JsonValue};
use base64::Engine;
use std::cell::RefCell;

/// The login of the user the simulator's token belongs to (`viewer`).
pub const VIEWER_LOGIN: &str = "dora-sim-viewer";

/// The database id of the viewer (the "user ID 1" of rate-limit messages).
pub const VIEWER_ID: u64 = 1;

/// Longest piece of client input echoed in an error message.
const MAX_ECHO: usize = 100;

/// The prefix of every cursor before base64 (GitHub's cursors start the same).
const CURSOR_PREFIX: &str = "cursor:v2:";

/// The rate-limit figures of the current call, for `rateLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateInfo {
    pub cost: u64,
    pub node_count: u64,
    pub limit: u64,
    pub used: u64,
    /// Epoch seconds.
    pub reset: i64,
}

/// What every resolver can see: the organisation, the call's rate-limit figures
/// and the errors that carry GitHub's `type` (the executor's errors have only a
/// message, so the server adds the type afterwards by matching it).
pub(crate) struct Env<'o> {
    pub org: &'o Org,
    pub rate: RateInfo,
    pub typed_errors: RefCell<Vec<(String, &'static str)>>,
}

impl Env<'_> {
    fn typed(&self, kind: &'static str, message: String) -> FieldError {
        self.typed_errors.borrow_mut().push((message.clone(), kind));
        FieldError { message }
    }
}

fn echo(text: &str) -> String {
    text.chars().take(MAX_ECHO).collect()
}

fn unsupported(type_name: &str, info: &ResolveInfo<'_>) -> FieldError {
    FieldError {
        message: format!(
            "Field '{}' on type '{type_name}' is not supported by the simulator",
            info.field_name()
        ),
    }
}

fn ts(at: Timestamp) -> JsonValue {
    JsonValue::from(at.to_rfc3339())
}

fn opt_ts<'a>(at: Option<Timestamp>) -> ResolvedValue<'a> {
    match at {
        Some(at) => ResolvedValue::Leaf(ts(at)),
        None => ResolvedValue::null(),
    }
}

fn leaf<'a>(value: impl Into<JsonValue>) -> Result<ResolvedValue<'a>, FieldError> {
    Ok(ResolvedValue::leaf(value))
}

// ---------------------------------------------------------------------------
// Arguments

/// A non-null argument value.
fn arg<'a>(info: &'a ResolveInfo<'a>, name: &str) -> Option<&'a JsonValue> {
    info.arguments().get(name).filter(|v| !v.is_null())
}

fn arg_str<'a>(info: &'a ResolveInfo<'a>, name: &str) -> Option<&'a str> {
    arg(info, name).and_then(JsonValue::as_str)
}

fn strings(value: Option<&JsonValue>) -> Option<Vec<String>> {
    value.and_then(JsonValue::as_array).map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// Refuses arguments the simulator does not implement (given and not null).
fn only_arguments(
    type_name: &str,
    info: &ResolveInfo<'_>,
    supported: &[&str],
) -> Result<(), FieldError> {
    for (name, value) in info.arguments() {
        if !value.is_null() && !supported.contains(&name.as_str()) {
            return Err(FieldError {
                message: format!(
                    "Argument '{}' on field '{type_name}.{}' is not supported by the simulator",
                    name.as_str(),
                    info.field_name()
                ),
            });
        }
    }
    Ok(())
}

/// `orderBy: {field, direction}`: the field's name and whether descending.
fn order<'a>(info: &'a ResolveInfo<'a>, default_field: &'a str) -> (&'a str, bool) {
    match arg(info, "orderBy").and_then(JsonValue::as_object) {
        Some(order) => (
            order
                .get("field")
                .and_then(JsonValue::as_str)
                .unwrap_or(default_field),
            order.get("direction").and_then(JsonValue::as_str) == Some("DESC"),
        ),
        None => (default_field, false),
    }
}

fn time_arg(env: &Env<'_>, value: Option<&JsonValue>) -> Result<Option<Timestamp>, FieldError> {
    match value {
        None => Ok(None),
        Some(value) => {
            let text = value.as_str().unwrap_or_default();
            parse_time(text).map(Some).ok_or_else(|| {
                env.typed(
                    "INVALID_ARGUMENTS",
                    format!("`{}` is not a valid timestamp.", echo(text)),
                )
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Connections

/// A position in a connection's order: items are sorted by it, ascending or
/// descending, and cursors carry it.
type Key = (i64, u64);

fn encode_cursor(key: Key) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{CURSOR_PREFIX}{}:{}", key.0, key.1))
}

fn decode_cursor(env: &Env<'_>, cursor: &str) -> Result<Key, FieldError> {
    let invalid = || {
        env.typed(
            "INVALID_CURSOR_ARGUMENTS",
            format!("`{}` does not appear to be a valid cursor.", echo(cursor)),
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (a, b) = text
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(invalid)?;
    Ok((
        a.parse().map_err(|_| invalid())?,
        b.parse().map_err(|_| invalid())?,
    ))
}

/// Something a connection lists.
#[derive(Clone, Copy)]
enum Item<'o> {
    Deployment(DeploymentObj<'o>),
    Status(StatusObj<'o>),
    Commit(CommitObj<'o>),
    Issue(IssueObj<'o>),
    Pull(PullObj<'o>),
    PullCommit(PullCommitObj<'o>),
    Review(ReviewObj<'o>),
    Label(LabelObj<'o>),
}

impl<'o> Item<'o> {
    fn resolved(self) -> ResolvedValue<'o> {
        match self {
            Item::Deployment(o) => ResolvedValue::object(o),
            Item::Status(o) => ResolvedValue::object(o),
            Item::Commit(o) => ResolvedValue::object(o),
            Item::Issue(o) => ResolvedValue::object(o),
            Item::Pull(o) => ResolvedValue::object(o),
            Item::PullCommit(o) => ResolvedValue::object(o),
            Item::Review(o) => ResolvedValue::object(o),
            Item::Label(o) => ResolvedValue::object(o),
        }
    }
}

/// One page of a connection.
struct Connection<'o> {
    type_name: &'static str,
    edge_type: &'static str,
    page: Vec<(Key, Item<'o>)>,
    total: usize,
    has_next: bool,
    has_previous: bool,
}

/// Pages `items` (already in the connection's order, ascending by key unless
/// `descending`) by the field's `first`, `last`, `after` and `before`.
fn connection<'o>(
    env: &Env<'o>,
    info: &ResolveInfo<'_>,
    (type_name, edge_type): (&'static str, &'static str),
    items: Vec<(Key, Item<'o>)>,
    descending: bool,
) -> Result<ResolvedValue<'o>, FieldError> {
    let beyond = |key: &Key, cursor: &Key| {
        if descending {
            key < cursor
        } else {
            key > cursor
        }
    };
    let total = items.len();
    let start = match arg_str(info, "after") {
        Some(cursor) => {
            let cursor = decode_cursor(env, cursor)?;
            items
                .iter()
                .position(|(k, _)| beyond(k, &cursor))
                .unwrap_or(total)
        }
        None => 0,
    };
    let end = match arg_str(info, "before") {
        Some(cursor) => {
            let cursor = decode_cursor(env, cursor)?;
            items
                .iter()
                .position(|(k, _)| *k == cursor || beyond(k, &cursor))
                .unwrap_or(total)
        }
        None => total,
    }
    .max(start);
    let size = |name| {
        arg(info, name)
            .and_then(JsonValue::as_i64)
            .map(|n| usize::try_from(n.max(0)).unwrap_or(0))
    };
    let (mut from, mut to) = (start, end);
    if let Some(first) = size("first") {
        to = to.min(from.saturating_add(first));
    }
    if let Some(last) = size("last") {
        from = from.max(to.saturating_sub(last));
    }
    let mut items = items;
    items.truncate(to);
    let page = items.split_off(from);
    Ok(ResolvedValue::object(Connection {
        type_name,
        edge_type,
        page,
        total,
        has_next: to < total,
        has_previous: from > 0,
    }))
}

impl ObjectValue for Connection<'_> {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        match info.field_name() {
            "nodes" => Ok(ResolvedValue::list(
                self.page.iter().map(|(_, item)| item.resolved()),
            )),
            "edges" => Ok(ResolvedValue::list(self.page.iter().map(|(key, item)| {
                ResolvedValue::object(Edge {
                    type_name: self.edge_type,
                    cursor: encode_cursor(*key),
                    item: *item,
                })
            }))),
            "totalCount" => leaf(self.total),
            "pageInfo" => Ok(ResolvedValue::object(PageInfo {
                start: self.page.first().map(|(k, _)| encode_cursor(*k)),
                end: self.page.last().map(|(k, _)| encode_cursor(*k)),
                has_next: self.has_next,
                has_previous: self.has_previous,
            })),
            _ => Err(unsupported(self.type_name, info)),
        }
    }
}

struct Edge<'o> {
    type_name: &'static str,
    cursor: String,
    item: Item<'o>,
}

impl ObjectValue for Edge<'_> {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        match info.field_name() {
            "cursor" => leaf(self.cursor.as_str()),
            "node" => Ok(self.item.resolved()),
            _ => Err(unsupported(self.type_name, info)),
        }
    }
}

struct PageInfo {
    start: Option<String>,
    end: Option<String>,
    has_next: bool,
    has_previous: bool,
}

impl ObjectValue for PageInfo {
    fn type_name(&self) -> &str {
        "PageInfo"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let cursor = |c: &Option<String>| match c {
            Some(c) => ResolvedValue::leaf(c.as_str()),
            None => ResolvedValue::null(),
        };
        match info.field_name() {
            "hasNextPage" => leaf(self.has_next),
            "hasPreviousPage" => leaf(self.has_previous),
            "startCursor" => Ok(cursor(&self.start)),
            "endCursor" => Ok(cursor(&self.end)),
            _ => Err(unsupported("PageInfo", info)),
        }
    }
}

// ---------------------------------------------------------------------------
// Query

/// The root `Query` object.
pub(crate) struct QueryRoot<'o> {
    pub env: &'o Env<'o>,
}

impl ObjectValue for QueryRoot<'_> {
    fn type_name(&self) -> &str {
        "Query"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let env = self.env;
        match info.field_name() {
            "repository" => {
                let owner = arg_str(info, "owner").unwrap_or_default();
                let name = arg_str(info, "name").unwrap_or_default();
                let repo = owner
                    .eq_ignore_ascii_case(&env.org.owner)
                    .then(|| env.org.repo(name))
                    .flatten();
                match repo {
                    Some(repo) => Ok(ResolvedValue::object(RepoObj { env, repo })),
                    None => Err(env.typed(
                        "NOT_FOUND",
                        format!(
                            "Could not resolve to a Repository with the name '{}/{}'.",
                            echo(owner),
                            echo(name)
                        ),
                    )),
                }
            }
            "rateLimit" => {
                if arg(info, "dryRun").and_then(JsonValue::as_bool) == Some(true) {
                    return Err(FieldError {
                        message: "Argument 'dryRun: true' on field 'Query.rateLimit' is not supported by the simulator".to_owned(),
                    });
                }
                Ok(ResolvedValue::object(RateLimitObj(env.rate)))
            }
            "viewer" => Ok(ResolvedValue::object(ViewerObj)),
            _ => Err(unsupported("Query", info)),
        }
    }
}

struct RateLimitObj(RateInfo);

impl ObjectValue for RateLimitObj {
    fn type_name(&self) -> &str {
        "RateLimit"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let r = &self.0;
        match info.field_name() {
            "cost" => leaf(r.cost),
            "limit" => leaf(r.limit),
            "used" => leaf(r.used),
            "remaining" => leaf(r.limit.saturating_sub(r.used)),
            "nodeCount" => leaf(r.node_count),
            "resetAt" => leaf(ts(Timestamp(r.reset))),
            _ => Err(unsupported("RateLimit", info)),
        }
    }
}

struct ViewerObj;

impl ObjectValue for ViewerObj {
    fn type_name(&self) -> &str {
        "User"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        match info.field_name() {
            "login" => leaf(VIEWER_LOGIN),
            "id" => leaf(node_id("User", VIEWER_ID)),
            "databaseId" => leaf(VIEWER_ID),
            _ => Err(unsupported("User", info)),
        }
    }
}

/// A person as an `Actor` (`User`, or `Bot` for the Actions bot).
#[derive(Clone, Copy)]
struct ActorObj<'o>(&'o Person);

impl ObjectValue for ActorObj<'_> {
    fn type_name(&self) -> &str {
        if self.0.bot {
            "Bot"
        } else {
            "User"
        }
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let p = self.0;
        let kind = if p.bot { "Bot" } else { "User" };
        match info.field_name() {
            "login" => leaf(p.login.as_str()),
            "id" => leaf(node_id(kind, p.id)),
            "databaseId" => leaf(p.id),
            "name" if !p.bot => leaf(p.name.as_str()),
            "url" => leaf(format!("{WEB_URL}/{}", segment(&p.login))),
            _ => Err(unsupported(kind, info)),
        }
    }
}

fn actor<'o>(org: &'o Org, index: u32) -> ResolvedValue<'o> {
    match org.people.get(index as usize) {
        Some(person) => ResolvedValue::object(ActorObj(person)),
        None => ResolvedValue::null(),
    }
}

// ---------------------------------------------------------------------------
// Repository

#[derive(Clone, Copy)]
struct RepoObj<'o> {
    env: &'o Env<'o>,
    repo: &'o SimRepo,
}

impl<'o> RepoObj<'o> {
    fn web(&self) -> String {
        format!(
            "{WEB_URL}/{}/{}",
            segment(&self.env.org.owner),
            segment(&self.repo.name)
        )
    }

    fn commit(&self, index: u32) -> CommitObj<'o> {
        CommitObj { repo: *self, index }
    }

    fn branch(&self, name: &str, head: u32) -> RefObj<'o> {
        RefObj {
            repo: *self,
            name: name.to_owned(),
            head,
        }
    }

    fn deployments(&self, info: &ResolveInfo<'_>) -> Result<ResolvedValue<'o>, FieldError> {
        only_arguments(
            "Repository",
            info,
            &[
                "after",
                "before",
                "first",
                "last",
                "environments",
                "orderBy",
            ],
        )?;
        let environments = strings(arg(info, "environments"));
        let (_, descending) = order(info, "CREATED_AT");
        let mut list: Vec<&SimDeployment> = self
            .repo
            .deployments
            .iter()
            .filter(|d| {
                environments
                    .as_ref()
                    .is_none_or(|envs| envs.iter().any(|e| **e == *d.environment))
            })
            .collect();
        list.sort_by_key(|d| (d.created_at, d.id));
        let mut items: Vec<(Key, Item<'o>)> = list
            .into_iter()
            .map(|d| {
                (
                    (d.created_at.0, d.id),
                    Item::Deployment(DeploymentObj {
                        repo: *self,
                        deployment: d,
                    }),
                )
            })
            .collect();
        if descending {
            items.reverse();
        }
        connection(
            self.env,
            info,
            ("DeploymentConnection", "DeploymentEdge"),
            items,
            descending,
        )
    }

    fn issues(&self, info: &ResolveInfo<'_>) -> Result<ResolvedValue<'o>, FieldError> {
        only_arguments(
            "Repository",
            info,
            &[
                "after", "before", "first", "last", "labels", "states", "orderBy", "filterBy",
            ],
        )?;
        let env = self.env;
        let states = strings(arg(info, "states"));
        let labels = strings(arg(info, "labels"));
        let filter = arg(info, "filterBy").and_then(JsonValue::as_object);
        let mut filter_states = None;
        let mut filter_labels = None;
        let mut since = None;
        let mut created_by = None;
        if let Some(filter) = filter {
            for (name, value) in filter {
                let name = name.as_str();
                match name {
                    _ if value.is_null() => {}
                    "viewerSubscribed" if value.as_bool() == Some(false) => {}
                    "states" => filter_states = strings(Some(value)),
                    "labels" => filter_labels = strings(Some(value)),
                    "since" => since = time_arg(env, Some(value))?,
                    "createdBy" => created_by = value.as_str(),
                    _ => {
                        return Err(FieldError {
                            message: format!(
                                "Field '{name}' of 'filterBy' on field 'Repository.issues' is not supported by the simulator"
                            ),
                        })
                    }
                }
            }
        }
        let people = &env.org.people;
        let state_of = |i: &SimIssue| if i.is_open() { "OPEN" } else { "CLOSED" };
        let mut list: Vec<&SimIssue> = self
            .repo
            .issues
            .iter()
            .filter(|i| {
                let state = state_of(i);
                states.as_ref().is_none_or(|s| s.iter().any(|x| x == state))
                    && filter_states
                        .as_ref()
                        .is_none_or(|s| s.iter().any(|x| x == state))
                    && labels
                        .as_ref()
                        .is_none_or(|ls| ls.iter().any(|l| i.has_label(l)))
                    && filter_labels
                        .as_ref()
                        .is_none_or(|ls| ls.iter().any(|l| i.has_label(l)))
                    && since.is_none_or(|s| i.updated_at >= s)
                    && created_by.is_none_or(|c| {
                        people
                            .get(i.user as usize)
                            .is_some_and(|p| p.login.eq_ignore_ascii_case(c))
                    })
            })
            .collect();
        let (field, descending) = order(info, "CREATED_AT");
        let key = |i: &SimIssue| -> Key {
            let primary = match field {
                "UPDATED_AT" => i.updated_at.0,
                "COMMENTS" => i64::from(i.comments),
                _ => i.created_at.0,
            };
            (primary, i.number)
        };
        list.sort_by_key(|i| key(i));
        let mut items: Vec<(Key, Item<'o>)> = list
            .into_iter()
            .map(|i| {
                (
                    key(i),
                    Item::Issue(IssueObj {
                        repo: *self,
                        issue: i,
                    }),
                )
            })
            .collect();
        if descending {
            items.reverse();
        }
        connection(
            env,
            info,
            ("IssueConnection", "IssueEdge"),
            items,
            descending,
        )
    }

    fn pulls(
        &self,
        info: &ResolveInfo<'_>,
        only: Option<u32>,
    ) -> Result<ResolvedValue<'o>, FieldError> {
        let supported: &[&str] = if only.is_some() {
            &["after", "before", "first", "last", "orderBy"]
        } else {
            &[
                "after",
                "before",
                "first",
                "last",
                "labels",
                "states",
                "orderBy",
                "baseRefName",
                "headRefName",
            ]
        };
        let type_name = if only.is_some() {
            "Commit"
        } else {
            "Repository"
        };
        only_arguments(type_name, info, supported)?;
        let states = strings(arg(info, "states"));
        let labels = strings(arg(info, "labels"));
        let base = arg_str(info, "baseRefName");
        let head = arg_str(info, "headRefName");
        let repo = self.repo;
        let mut list: Vec<&SimPull> = repo
            .pulls
            .iter()
            .filter(|p| {
                // `Commit.associatedPullRequests`: "the merged Pull Request that
                // introduced the commit [...], additionally [...] open Pull
                // Requests associated with the commit"; never one closed unmerged.
                only.is_none_or(|index| {
                    (p.merge_commit == Some(index) || p.commits.contains(&index))
                        && (p.merged_at.is_some() || p.is_open())
                })
            })
            .filter(|p| {
                states
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|x| x == pull_state(p)))
                    && labels
                        .as_ref()
                        .is_none_or(|ls| ls.iter().any(|l| p.has_label(l)))
                    && base.is_none_or(|b| b == repo.default_branch)
                    && head.is_none_or(|h| h == p.branch())
            })
            .collect();
        let (field, descending) = order(info, "CREATED_AT");
        let key = |p: &SimPull| -> Key {
            let primary = match field {
                "UPDATED_AT" => p.updated_at.0,
                "COMMENTS" => i64::from(p.comments),
                _ => p.created_at.0,
            };
            (primary, p.number)
        };
        list.sort_by_key(|p| key(p));
        let mut items: Vec<(Key, Item<'o>)> = list
            .into_iter()
            .map(|p| {
                (
                    key(p),
                    Item::Pull(PullObj {
                        repo: *self,
                        pull: p,
                    }),
                )
            })
            .collect();
        if descending {
            items.reverse();
        }
        connection(
            self.env,
            info,
            ("PullRequestConnection", "PullRequestEdge"),
            items,
            descending,
        )
    }
}

impl ObjectValue for RepoObj<'_> {
    fn type_name(&self) -> &str {
        "Repository"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let repo = self.repo;
        match info.field_name() {
            "id" => leaf(node_id("Repository", repo.id)),
            "databaseId" => leaf(repo.id),
            "name" => leaf(repo.name.as_str()),
            "nameWithOwner" => leaf(format!("{}/{}", self.env.org.owner, repo.name)),
            "url" => leaf(self.web()),
            "createdAt" => leaf(ts(repo.created_at)),
            "deployments" => self.deployments(info),
            "issues" => self.issues(info),
            "pullRequests" => self.pulls(info, None),
            "pullRequest" => {
                // GitHub: "Returns a single pull request from the current
                // repository by number" (null when there is none).
                let number = arg(info, "number").and_then(JsonValue::as_u64);
                Ok(ResolvedValue::nullable_object(
                    number
                        .and_then(|n| repo.pulls.iter().find(|p| p.number == n))
                        .map(|pull| PullObj { repo: *self, pull }),
                ))
            }
            "defaultBranchRef" => Ok(ResolvedValue::object(
                self.branch(&repo.default_branch, repo.main_head),
            )),
            "ref" => {
                let qualified = arg_str(info, "qualifiedName").unwrap_or_default();
                let name = qualified.strip_prefix("refs/heads/").unwrap_or(qualified);
                let head = if name == repo.default_branch {
                    Some(repo.main_head)
                } else {
                    repo.branches
                        .iter()
                        .find(|b| b.name == name)
                        .map(|b| b.head)
                };
                Ok(ResolvedValue::nullable_object(
                    head.map(|head| self.branch(name, head)),
                ))
            }
            "object" => {
                let index = match (arg_str(info, "oid"), arg_str(info, "expression")) {
                    (Some(oid), _) => crate::domain::CommitSha::parse(oid)
                        .ok()
                        .and_then(|sha| repo.commit_index(&sha)),
                    (None, Some("HEAD")) => Some(repo.main_head),
                    (None, Some(expression)) => repo.resolve(expression),
                    (None, None) => None,
                };
                Ok(ResolvedValue::nullable_object(
                    index.map(|i| self.commit(i)),
                ))
            }
            _ => Err(unsupported("Repository", info)),
        }
    }
}

struct RefObj<'o> {
    repo: RepoObj<'o>,
    name: String,
    head: u32,
}

impl ObjectValue for RefObj<'_> {
    fn type_name(&self) -> &str {
        "Ref"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        match info.field_name() {
            "id" => leaf(node_id(
                "Ref",
                format!("{}:refs/heads/{}", self.repo.repo.id, self.name),
            )),
            "name" => leaf(self.name.as_str()),
            "prefix" => leaf("refs/heads/"),
            "target" => Ok(ResolvedValue::object(self.repo.commit(self.head))),
            "repository" => Ok(ResolvedValue::object(self.repo)),
            _ => Err(unsupported("Ref", info)),
        }
    }
}

// ---------------------------------------------------------------------------
// Deployments

/// GitHub's `DeploymentState` for a deployment, from its latest status.
fn deployment_state(d: &SimDeployment) -> &'static str {
    match d.latest_status().map(|s| s.state) {
        Some(StatusState::Success) => "ACTIVE",
        Some(state) => status_state(state),
        None => "PENDING",
    }
}

/// GitHub's `DeploymentStatusState` spelling.
fn status_state(state: StatusState) -> &'static str {
    match state {
        StatusState::Success => "SUCCESS",
        StatusState::Failure => "FAILURE",
        StatusState::Error => "ERROR",
        StatusState::Inactive => "INACTIVE",
        StatusState::Pending => "PENDING",
        StatusState::Queued => "QUEUED",
        StatusState::InProgress => "IN_PROGRESS",
    }
}

#[derive(Clone, Copy)]
struct DeploymentObj<'o> {
    repo: RepoObj<'o>,
    deployment: &'o SimDeployment,
}

impl ObjectValue for DeploymentObj<'_> {
    fn type_name(&self) -> &str {
        "Deployment"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let d = self.deployment;
        let repo = self.repo.repo;
        match info.field_name() {
            "id" => leaf(node_id("Deployment", d.id)),
            "databaseId" => leaf(d.id),
            "createdAt" => leaf(ts(d.created_at)),
            "updatedAt" => leaf(ts(d.updated_at())),
            "environment" | "originalEnvironment" | "latestEnvironment" => leaf(&*d.environment),
            "task" => leaf(crate::model::DEPLOY_TASK),
            "state" => leaf(deployment_state(d)),
            "commitOid" => leaf(d.sha.to_string()),
            "commit" => Ok(ResolvedValue::nullable_object(
                repo.commit_index(&d.sha).map(|i| self.repo.commit(i)),
            )),
            "ref" => {
                let name = d.git_ref.strip_prefix("refs/heads/").unwrap_or(&d.git_ref);
                let head = if name == repo.default_branch {
                    Some(repo.main_head)
                } else {
                    repo.branches
                        .iter()
                        .find(|b| b.name == name)
                        .map(|b| b.head)
                };
                Ok(ResolvedValue::nullable_object(
                    head.map(|head| self.repo.branch(name, head)),
                ))
            }
            "creator" => Ok(actor(self.repo.env.org, d.creator)),
            "latestStatus" => Ok(ResolvedValue::nullable_object(d.latest_status().map(
                |status| StatusObj {
                    deployment: *self,
                    status,
                },
            ))),
            "statuses" => {
                only_arguments("Deployment", info, &["after", "before", "first", "last"])?;
                let mut statuses: Vec<&SimStatus> = d.statuses.iter().collect();
                statuses.sort_by_key(|s| (s.created_at, s.id));
                let items = statuses
                    .into_iter()
                    .map(|status| {
                        (
                            (status.created_at.0, status.id),
                            Item::Status(StatusObj {
                                deployment: *self,
                                status,
                            }),
                        )
                    })
                    .collect();
                connection(
                    self.repo.env,
                    info,
                    ("DeploymentStatusConnection", "DeploymentStatusEdge"),
                    items,
                    false,
                )
            }
            _ => Err(unsupported("Deployment", info)),
        }
    }
}

#[derive(Clone, Copy)]
struct StatusObj<'o> {
    deployment: DeploymentObj<'o>,
    status: &'o SimStatus,
}

impl ObjectValue for StatusObj<'_> {
    fn type_name(&self) -> &str {
        "DeploymentStatus"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let s = self.status;
        match info.field_name() {
            "id" => leaf(node_id("DeploymentStatus", s.id)),
            "state" => leaf(status_state(s.state)),
            "createdAt" | "updatedAt" => leaf(ts(s.created_at)),
            "environment" => leaf(&*self.deployment.deployment.environment),
            "deployment" => Ok(ResolvedValue::object(self.deployment)),
            _ => Err(unsupported("DeploymentStatus", info)),
        }
    }
}

// ---------------------------------------------------------------------------
// Commits

#[derive(Clone, Copy)]
struct CommitObj<'o> {
    repo: RepoObj<'o>,
    index: u32,
}

impl<'o> CommitObj<'o> {
    /// `GitActor` of the author (`author`) or committer.
    fn git_actor(&self, author: bool) -> GitActorObj<'o> {
        let c = &self.repo.repo.commits[self.index as usize];
        let person = self.repo.env.org.people.get(c.author as usize);
        if author {
            GitActorObj {
                person,
                web_flow: false,
                date: c.author_date,
            }
        } else {
            GitActorObj {
                person,
                web_flow: c.committed_by_github(),
                date: c.committer_date,
            }
        }
    }

    fn history(&self, info: &ResolveInfo<'_>) -> Result<ResolvedValue<'o>, FieldError> {
        only_arguments(
            "Commit",
            info,
            &["after", "before", "first", "last", "since", "until"],
        )?;
        let env = self.repo.env;
        let since = time_arg(env, arg(info, "since"))?;
        let until = time_arg(env, arg(info, "until"))?;
        let repo = self.repo.repo;
        let items = repo
            .log(self.index)
            .into_iter()
            .filter_map(|i| {
                let c = &repo.commits[i as usize];
                let inside = since.is_none_or(|s| c.committer_date >= s)
                    && until.is_none_or(|u| c.committer_date <= u);
                inside.then(|| {
                    (
                        (c.committer_date.0, u64::from(i)),
                        Item::Commit(self.repo.commit(i)),
                    )
                })
            })
            .collect();
        connection(
            env,
            info,
            ("CommitHistoryConnection", "CommitEdge"),
            items,
            true,
        )
    }
}

impl ObjectValue for CommitObj<'_> {
    fn type_name(&self) -> &str {
        "Commit"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let repo = self.repo.repo;
        let c = &repo.commits[self.index as usize];
        let sha = c.sha.to_string();
        match info.field_name() {
            "id" => leaf(node_id("Commit", format!("{}:{sha}", repo.id))),
            "oid" => leaf(sha),
            "abbreviatedOid" => leaf(sha[..7].to_owned()),
            "url" => leaf(format!("{}/commit/{sha}", self.repo.web())),
            "message" => leaf(repo.commit_message(self.index)),
            "messageHeadline" => leaf(
                repo.commit_message(self.index)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            "messageBody" => {
                let message = repo.commit_message(self.index);
                let body = message
                    .split_once('\n')
                    .map(|(_, rest)| rest.trim().to_owned())
                    .unwrap_or_default();
                leaf(body)
            }
            "authoredDate" => leaf(ts(c.author_date)),
            "committedDate" => leaf(ts(c.committer_date)),
            "author" => Ok(ResolvedValue::object(self.git_actor(true))),
            "committer" => Ok(ResolvedValue::object(self.git_actor(false))),
            "parents" => {
                only_arguments("Commit", info, &["after", "before", "first", "last"])?;
                let items = c
                    .parents()
                    .enumerate()
                    .map(|(n, p)| ((n as i64, 0), Item::Commit(self.repo.commit(p))))
                    .collect();
                connection(
                    self.repo.env,
                    info,
                    ("CommitConnection", "CommitEdge"),
                    items,
                    false,
                )
            }
            "history" => self.history(info),
            "associatedPullRequests" => self.repo.pulls(info, Some(self.index)),
            _ => Err(unsupported("Commit", info)),
        }
    }
}

struct GitActorObj<'o> {
    person: Option<&'o Person>,
    /// Committed by GitHub's web flow (squash and merge commits).
    web_flow: bool,
    date: Timestamp,
}

impl ObjectValue for GitActorObj<'_> {
    fn type_name(&self) -> &str {
        "GitActor"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let (name, email) = match (self.web_flow, self.person) {
            (true, _) => ("GitHub", "noreply@github.com"),
            (false, Some(p)) => (p.name.as_str(), p.email.as_str()),
            (false, None) => ("Unknown", "unknown@users.noreply.github.com"),
        };
        match info.field_name() {
            "name" => leaf(name),
            "email" => leaf(email),
            "date" => leaf(ts(self.date)),
            "user" => Ok(ResolvedValue::nullable_object(
                self.person
                    .filter(|p| !p.bot && !self.web_flow)
                    .map(ActorObj),
            )),
            _ => Err(unsupported("GitActor", info)),
        }
    }
}

// ---------------------------------------------------------------------------
// Issues, pull requests, labels

fn labels<'o>(
    repo: RepoObj<'o>,
    names: &'o [String],
    info: &ResolveInfo<'_>,
    type_name: &str,
) -> Result<ResolvedValue<'o>, FieldError> {
    only_arguments(
        type_name,
        info,
        &["after", "before", "first", "last", "orderBy"],
    )?;
    let (field, descending) = order(info, "CREATED_AT");
    let mut positions: Vec<usize> = (0..names.len()).collect();
    if field == "NAME" {
        positions.sort_by_key(|i| names[*i].to_ascii_lowercase());
    }
    if descending {
        positions.reverse();
    }
    // Keys are positions in this order, so cursors follow it either way.
    let items = positions
        .into_iter()
        .enumerate()
        .map(|(n, i)| {
            (
                (n as i64, 0),
                Item::Label(LabelObj {
                    repo,
                    name: &names[i],
                }),
            )
        })
        .collect();
    connection(
        repo.env,
        info,
        ("LabelConnection", "LabelEdge"),
        items,
        false,
    )
}

#[derive(Clone, Copy)]
struct LabelObj<'o> {
    repo: RepoObj<'o>,
    name: &'o str,
}

impl ObjectValue for LabelObj<'_> {
    fn type_name(&self) -> &str {
        "Label"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        match info.field_name() {
            "name" => leaf(self.name),
            "url" => leaf(format!("{}/labels/{}", self.repo.web(), segment(self.name))),
            _ => Err(unsupported("Label", info)),
        }
    }
}

#[derive(Clone, Copy)]
struct IssueObj<'o> {
    repo: RepoObj<'o>,
    issue: &'o SimIssue,
}

impl ObjectValue for IssueObj<'_> {
    fn type_name(&self) -> &str {
        "Issue"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let i = self.issue;
        match info.field_name() {
            "id" => leaf(node_id("Issue", i.id)),
            "databaseId" => leaf(i.id),
            "fullDatabaseId" => leaf(i.id.to_string()),
            "number" => leaf(i.number),
            "url" => leaf(format!("{}/issues/{}", self.repo.web(), i.number)),
            "title" => leaf(i.title.as_str()),
            "body" => leaf(i.body.as_deref().unwrap_or_default()),
            "state" => leaf(if i.is_open() { "OPEN" } else { "CLOSED" }),
            "stateReason" => Ok(match i.state_reason() {
                Some(reason) => ResolvedValue::leaf(reason.to_ascii_uppercase()),
                None => ResolvedValue::null(),
            }),
            "createdAt" => leaf(ts(i.created_at)),
            "updatedAt" => leaf(ts(i.updated_at)),
            "closedAt" => Ok(opt_ts(i.closed_at)),
            "author" => Ok(actor(self.repo.env.org, i.user)),
            "labels" => labels(self.repo, &i.labels, info, "Issue"),
            _ => Err(unsupported("Issue", info)),
        }
    }
}

fn pull_state(p: &SimPull) -> &'static str {
    match (p.merged_at, p.is_open()) {
        (Some(_), _) => "MERGED",
        (None, true) => "OPEN",
        (None, false) => "CLOSED",
    }
}

#[derive(Clone, Copy)]
struct PullObj<'o> {
    repo: RepoObj<'o>,
    pull: &'o SimPull,
}

impl ObjectValue for PullObj<'_> {
    fn type_name(&self) -> &str {
        "PullRequest"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let p = self.pull;
        let repo = self.repo.repo;
        match info.field_name() {
            "id" => leaf(node_id("PullRequest", p.id)),
            "databaseId" => leaf(p.id),
            "fullDatabaseId" => leaf(p.id.to_string()),
            "number" => leaf(p.number),
            "url" => leaf(format!("{}/pull/{}", self.repo.web(), p.number)),
            "title" => leaf(p.title.render()),
            "body" => leaf(format!("{}\n\nPlease review.", p.title.render())),
            "state" => leaf(pull_state(p)),
            "merged" => leaf(p.merged_at.is_some()),
            "isDraft" => leaf(p.draft),
            "createdAt" => leaf(ts(p.created_at)),
            "updatedAt" => leaf(ts(p.updated_at)),
            "closedAt" => Ok(opt_ts(p.closed_at)),
            "mergedAt" => Ok(opt_ts(p.merged_at)),
            "mergeCommit" => Ok(ResolvedValue::nullable_object(
                p.merge_commit.map(|i| self.repo.commit(i)),
            )),
            "baseRefName" => leaf(repo.default_branch.as_str()),
            "headRefName" => leaf(p.branch()),
            "baseRefOid" => leaf(repo.commits[p.base as usize].sha.to_string()),
            "headRefOid" => leaf(repo.commits[p.head() as usize].sha.to_string()),
            "author" => Ok(actor(self.repo.env.org, p.user)),
            "labels" => labels(self.repo, &p.labels, info, "PullRequest"),
            "commits" => {
                only_arguments("PullRequest", info, &["after", "before", "first", "last"])?;
                let items = p
                    .commits
                    .clone()
                    .take(MAX_UNPAGED_COMMITS)
                    .map(|index| {
                        (
                            (i64::from(index), 0),
                            Item::PullCommit(PullCommitObj { pull: *self, index }),
                        )
                    })
                    .collect();
                connection(
                    self.repo.env,
                    info,
                    ("PullRequestCommitConnection", "PullRequestCommitEdge"),
                    items,
                    false,
                )
            }
            "reviews" => {
                only_arguments(
                    "PullRequest",
                    info,
                    &["after", "before", "first", "last", "states"],
                )?;
                let states = strings(arg(info, "states"));
                let items = p
                    .first_review_at
                    .filter(|_| {
                        states
                            .as_ref()
                            .is_none_or(|s| s.iter().any(|state| state == REVIEW_STATE))
                    })
                    .map(|at| ((at.0, 0), Item::Review(ReviewObj { pull: *self, at })))
                    .into_iter()
                    .collect();
                connection(
                    self.repo.env,
                    info,
                    ("PullRequestReviewConnection", "PullRequestReviewEdge"),
                    items,
                    false,
                )
            }
            _ => Err(unsupported("PullRequest", info)),
        }
    }
}

/// The state of every simulated review.
const REVIEW_STATE: &str = "APPROVED";

/// A pull request's first review (the simulator keeps no other).
#[derive(Clone, Copy)]
struct ReviewObj<'o> {
    pull: PullObj<'o>,
    at: Timestamp,
}

impl ObjectValue for ReviewObj<'_> {
    fn type_name(&self) -> &str {
        "PullRequestReview"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let org = self.pull.repo.env.org;
        let pull = self.pull.pull;
        match info.field_name() {
            "id" => leaf(node_id("PullRequestReview", pull.id)),
            "databaseId" => leaf(pull.id),
            "state" => leaf(REVIEW_STATE),
            "submittedAt" | "createdAt" => leaf(ts(self.at)),
            "author" => Ok(actor(org, reviewer(org, pull))),
            _ => Err(unsupported("PullRequestReview", info)),
        }
    }
}

/// Who reviewed `pull`: the next person after its author.
fn reviewer(org: &Org, pull: &SimPull) -> u32 {
    let people = org.people.len().max(1) as u32;
    (pull.user + 1) % people
}

#[derive(Clone, Copy)]
struct PullCommitObj<'o> {
    pull: PullObj<'o>,
    index: u32,
}

impl ObjectValue for PullCommitObj<'_> {
    fn type_name(&self) -> &str {
        "PullRequestCommit"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let repo = self.pull.repo;
        match info.field_name() {
            "id" => {
                let sha = repo.repo.commits[self.index as usize].sha;
                leaf(node_id(
                    "PullRequestCommit",
                    format!("{}:{sha}", self.pull.pull.id),
                ))
            }
            "commit" => Ok(ResolvedValue::object(repo.commit(self.index))),
            "pullRequest" => Ok(ResolvedValue::object(self.pull)),
            _ => Err(unsupported("PullRequestCommit", info)),
        }
    }
}

/// Converts client JSON into the executor's JSON.
pub(crate) fn to_json_map(value: serde_json::Value) -> Option<JsonMap> {
    serde_json::from_value(value).ok()
}
