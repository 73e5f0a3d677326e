//! Deployments with their statuses through GitHub's GraphQL API (`github.api =
//! "graphql"`, the default): one query reads a page of 100 deployments, newest
//! first, each with up to 100 statuses. By GitHub's point formula that page costs
//! one point (the deployments connection plus one statuses connection per
//! deployment: 101 requests, divided by 100, rounded), where the REST path spends
//! one request per deployment on its statuses.
//!
//! Only the listing changes: what counts, the cursor, the base search and the
//! pending re-checks stay in `deployments.rs`. A deployment with more than 100
//! statuses (never seen in practice) has its statuses read through REST.
//!
//! Not here: the transport (`Client::graphql`: the governor, the `graphql`
//! budget, GraphQL errors), other lists (issues, pull requests, workflow runs and
//! change sets are REST lists with free conditional requests).

use super::answer::Partial;
use super::client::{QueryShape, PER_PAGE};
use super::history::commit_fields;
use super::models::{PageInfo, Skip, WireDeployment};
use super::pulls::riding_pulls;
use super::{GithubError, RepoSync};
use crate::domain::batch::CommitRecord;
use crate::domain::{CommitSha, Environment, StatusState, Timestamp};
use crate::dora::LeadTimeStart;
use serde::Deserialize;
use serde_json::json;

/// Statuses read inline per deployment: more than any real deployment has (a
/// handful: queued, in progress, success, later inactive).
pub const STATUSES_PER_DEPLOYMENT: u32 = 100;

/// Deployments on the first page of a later sync, which also carries the newest
/// deployed sha's history: small enough that the page costs one point (GitHub
/// divides 1 + 40 + 1 + 100 = 142 requests by 100 and rounds to 1); a later sync
/// rarely finds more, and then pages on by 100.
pub const INCREMENTAL_DEPLOYMENTS: u32 = 40;

/// Commits of the newest deployed sha's history on that page (GitHub's most):
/// days of a busy repository, enough for the usual new change set to be decided
/// without a history query of its own.
pub const INCREMENTAL_HISTORY: u32 = 100;

/// The fields read of each deployment (a fragment the queries share).
macro_rules! deployment_fields {
    () => {
        r#"
fragment DeploymentFields on Deployment {
  databaseId
  commitOid
  environment
  createdAt
  statuses(first: $statuses) {
    totalCount
    nodes { state createdAt }
  }
}
"#
    };
}

/// The query of one page. `rateLimit { cost }` makes every answer say what it cost
/// (debug log), as GitHub recommends for checking a query's price.
const DEPLOYMENTS_QUERY: &str = concat!(
    r#"
query Deployments($owner: String!, $name: String!, $first: Int!, $statuses: Int!, $after: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    deployments(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...DeploymentFields }
    }
  }
}
"#,
    deployment_fields!()
);

/// [`DEPLOYMENTS_QUERY`] with a page of step 4's listing riding on it
/// ([`super::pulls::riding_pulls!`]): still one point (101 + 48 requests).
const DEPLOYMENTS_WITH_PULLS_QUERY: &str = concat!(
    r#"
query DeploymentsWithPulls($owner: String!, $name: String!, $first: Int!, $statuses: Int!, $after: String, $pullsFirst: Int!, $pullsAfter: String, $commitsPerPull: Int!) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    deployments(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...DeploymentFields }
    }
"#,
    riding_pulls!(),
    r#"  }
}
"#,
    deployment_fields!()
);

/// One deployment of a page: the deployment, or why it cannot be read, and its
/// statuses when all of them came inline.
pub(super) type ListedDeployment = (
    Result<WireDeployment, Skip>,
    Option<Vec<(StatusState, Timestamp)>>,
);

/// The first page of a later sync: the deployments and the newest deployed
/// sha's history in one query (one point where two queries would cost two).
const DEPLOYMENTS_WITH_HISTORY_QUERY: &str = concat!(
    r#"
query DeploymentsWithHistory($owner: String!, $name: String!, $first: Int!, $statuses: Int!, $after: String, $oid: GitObjectID!, $history: Int!, $parents: Int!) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    deployments(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...DeploymentFields }
    }
    object(oid: $oid) {
      ... on Commit {
        history(first: $history) {
          nodes { ...CommitFields }
        }
      }
    }
  }
}
"#,
    deployment_fields!(),
    commit_fields!()
);

/// [`DEPLOYMENTS_WITH_HISTORY_QUERY`] under a PR-based lead-time start: each
/// commit of the history also with its pull requests
/// (`Commit.associatedPullRequests`), so that step 5 need not ask for those of
/// the new changes. [`INCREMENTAL_HISTORY_WITH_PULLS`] commits keep it one point.
const DEPLOYMENTS_WITH_HISTORY_AND_PULLS_QUERY: &str = concat!(
    r#"
query DeploymentsWithHistoryAndPulls($owner: String!, $name: String!, $first: Int!, $statuses: Int!, $after: String, $oid: GitObjectID!, $history: Int!, $parents: Int!, $pullsPerCommit: Int!) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    deployments(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...DeploymentFields }
    }
    object(oid: $oid) {
      ... on Commit {
        history(first: $history) {
          nodes { ...CommitFields associatedPullRequests(first: $pullsPerCommit) { nodes { number mergedAt } } }
        }
      }
    }
  }
}
"#,
    deployment_fields!(),
    commit_fields!()
);

/// Commits of the newest deployed sha's history on the first page of a later
/// sync under a PR-based start, each with its pull requests: GitHub divides
/// 1 + 40 + 1 + 53 + 53 = 148 requests by 100 and rounds to 1.
pub const INCREMENTAL_HISTORY_WITH_PULLS: u32 = 53;

/// Where a GraphQL listing stands.
#[derive(Debug, Default)]
pub(super) struct GraphqlPages {
    after: Option<String>,
    done: bool,
    pages: usize,
    /// Read the history of this sha with the first page (a later sync: the sha
    /// of the newest deployment, from the probe).
    pub(super) history_from: Option<CommitSha>,
    /// The commits that came with the first page.
    pub(super) commits: Vec<CommitRecord>,
}

#[derive(Deserialize)]
struct Data {
    repository: Option<Repository>,
}

/// What every query asks about itself: `rateLimit { cost remaining resetAt }`.
#[derive(Deserialize)]
struct RateLimitInfo {
    cost: Option<u64>,
    remaining: Option<u64>,
}

/// The points every query of this source is built to cost (one page of 100, or a
/// later sync's page of 142 requests).
pub const EXPECTED_POINTS: u64 = 1;

#[derive(Deserialize)]
struct Repository {
    deployments: Connection,
    #[serde(default)]
    object: Option<super::history::Object>,
    /// Step 4's riding page, when one rode ([`DEPLOYMENTS_WITH_PULLS_QUERY`]).
    #[serde(default, rename = "ridingPulls")]
    riding_pulls: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Connection {
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
    nodes: Vec<serde_json::Value>,
}

impl RepoSync<'_> {
    /// One GraphQL query for this repository (`what` names it in logs): counted,
    /// sent, its `rateLimit.cost` checked (more than [`EXPECTED_POINTS`] is
    /// logged as a warning: the query is priced otherwise than this source
    /// assumes), and its `data` decoded.
    pub(super) async fn query<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        query: &str,
        variables: serde_json::Value,
        page_sizes: &[&str],
    ) -> Result<T, GithubError> {
        let shape = QueryShape {
            partial: Partial::Refused,
            pages: Some((&self.page_sizes, page_sizes)),
        };
        self.query_shaped(what, query, variables, shape).await
    }

    /// [`RepoSync::query`] for a query built of aliases (one per commit or pull
    /// request): the answers GitHub could give are used when it cannot answer
    /// some (a commit it no longer has); its pages never shrink.
    pub(super) async fn query_aliases<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<T, GithubError> {
        let shape = QueryShape {
            partial: Partial::Accepted,
            pages: None,
        };
        self.query_shaped(what, query, variables, shape).await
    }

    async fn query_shaped<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        query: &str,
        variables: serde_json::Value,
        shape: QueryShape<'_>,
    ) -> Result<T, GithubError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut data = self
            .client
            .graphql(query, variables, shape, &self.context.shutdown)
            .await?;
        let rate = data
            .get_mut("rateLimit")
            .map(serde_json::Value::take)
            .and_then(|value| serde_json::from_value::<RateLimitInfo>(value).ok());
        if let Some(rate) = rate {
            tracing::debug!(
                repository = %self.repository,
                cost = rate.cost,
                remaining = rate.remaining,
                "GraphQL {what} query"
            );
            if rate.cost.is_some_and(|cost| cost > EXPECTED_POINTS) {
                tracing::warn!(
                    repository = %self.repository,
                    cost = rate.cost,
                    expected = EXPECTED_POINTS,
                    "a GraphQL {what} query cost more points than it is built to"
                );
            }
        }
        serde_json::from_value(data).map_err(|e| GithubError::InvalidBody {
            url: self.client.graphql_url().to_owned(),
            reason: format!("unexpected {what} answer: {e}"),
        })
    }

    /// The next page of the repository's deployments with their statuses; `None`
    /// when the listing is done.
    pub(super) async fn next_graphql_page(
        &self,
        pages: &mut GraphqlPages,
    ) -> Result<Option<Vec<ListedDeployment>>, GithubError> {
        if pages.done {
            return Ok(None);
        }
        if pages.pages >= super::MAX_PAGES {
            return Err(GithubError::TooManyPages {
                url: format!(
                    "{} (deployments of {})",
                    self.client.graphql_url(),
                    self.repository
                ),
                limit: super::MAX_PAGES,
            });
        }
        let mut variables = json!({
            "owner": self.repository.owner(),
            "name": self.repository.name(),
            "first": PER_PAGE,
            "statuses": STATUSES_PER_DEPLOYMENT,
            "after": pages.after,
        });
        let mut query = DEPLOYMENTS_QUERY;
        if let (Some(sha), 0) = (pages.history_from, pages.pages) {
            query = DEPLOYMENTS_WITH_HISTORY_QUERY;
            variables["first"] = json!(INCREMENTAL_DEPLOYMENTS);
            variables["oid"] = json!(sha.to_string());
            variables["history"] = json!(INCREMENTAL_HISTORY);
            variables["parents"] = json!(super::history::PARENTS_PER_COMMIT);
            if self.settings.lead_time_start != LeadTimeStart::Commit {
                query = DEPLOYMENTS_WITH_HISTORY_AND_PULLS_QUERY;
                variables["history"] = json!(INCREMENTAL_HISTORY_WITH_PULLS);
                variables["pullsPerCommit"] = json!(super::pull_lookup::PULLS_PER_COMMIT);
            }
        } else if self.ride(&mut variables) {
            query = DEPLOYMENTS_WITH_PULLS_QUERY;
        }
        let data: Data = self
            .query(
                "deployments",
                query,
                variables,
                &["first", "history", "pullsFirst"],
            )
            .await?;
        let url = self.client.graphql_url();
        let Some(repository) = data.repository else {
            return Err(GithubError::NotFound {
                url: format!("{url} (repository {})", self.repository),
            });
        };
        if let Some(history) = repository.object.and_then(|o| o.history) {
            self.keep_associated_pulls(&history.nodes);
            pages.commits.extend(self.history_commits(history.nodes).0);
        }
        self.rode(repository.riding_pulls);
        let connection = repository.deployments;
        pages.pages += 1;
        match connection.page_info.next() {
            Some(cursor) => pages.after = Some(cursor),
            None => pages.done = true,
        }
        Ok(Some(connection.nodes.into_iter().map(deployment).collect()))
    }
}

/// One deployment node with its statuses (`None` when it has more than came
/// inline).
fn deployment(value: serde_json::Value) -> ListedDeployment {
    #[derive(Deserialize)]
    struct Node {
        #[serde(rename = "databaseId")]
        database_id: Option<u64>,
        #[serde(rename = "commitOid")]
        commit_oid: String,
        environment: Option<String>,
        #[serde(rename = "createdAt")]
        created_at: String,
        statuses: Option<Statuses>,
    }
    #[derive(Deserialize)]
    struct Statuses {
        #[serde(rename = "totalCount")]
        total_count: usize,
        nodes: Vec<Status>,
    }
    #[derive(Deserialize)]
    struct Status {
        state: String,
        #[serde(rename = "createdAt")]
        created_at: String,
    }
    let node: Node = match serde_json::from_value(value) {
        Ok(node) => node,
        Err(error) => return (Err(format!("unexpected deployment: {error}")), None),
    };
    let parsed = (|| {
        let id = node.database_id.ok_or("a deployment without databaseId")?;
        let sha = CommitSha::parse(&node.commit_oid)
            .map_err(|_| "a deployment whose commitOid is not a commit sha")?;
        let environment = node
            .environment
            .as_deref()
            .and_then(|e| Environment::parse(e).ok())
            .ok_or("a deployment without a readable environment")?;
        let created_at = Timestamp::parse_rfc3339(&node.created_at)
            .map_err(|_| "a deployment with an unreadable createdAt")?;
        Ok::<_, &str>(WireDeployment {
            id,
            sha,
            environment,
            created_at,
        })
    })()
    .map_err(Skip::from);

    let statuses = node.statuses.and_then(|s| {
        if s.total_count > s.nodes.len() {
            return None;
        }
        s.nodes
            .iter()
            .map(|status| {
                let state = StatusState::parse(&status.state.to_ascii_lowercase())?;
                let at = Timestamp::parse_rfc3339(&status.created_at).ok()?;
                Some((state, at))
            })
            .collect::<Option<Vec<_>>>()
    });
    (parsed, statuses)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn node(statuses: serde_json::Value) -> serde_json::Value {
        json!({
            "databaseId": 42,
            "commitOid": SHA,
            "environment": "Production",
            "createdAt": "2026-01-02T03:04:05Z",
            "statuses": statuses,
        })
    }

    #[test]
    fn a_node_with_all_its_statuses_gives_the_deployment_and_the_statuses() {
        let (deployment, statuses) = deployment(node(json!({
            "totalCount": 2,
            "nodes": [
                {"state": "IN_PROGRESS", "createdAt": "2026-01-02T03:04:06Z"},
                {"state": "SUCCESS", "createdAt": "2026-01-02T03:05:00Z"},
            ],
        })));
        let deployment = deployment.unwrap();
        assert_eq!(deployment.id, 42);
        assert_eq!(deployment.sha.to_string(), SHA);
        assert_eq!(deployment.environment.as_str(), "Production");
        let statuses = statuses.unwrap();
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[1].0, StatusState::Success);
    }

    #[test]
    fn more_statuses_than_came_inline_or_an_unknown_state_are_read_through_rest() {
        let (_, more) = deployment(node(json!({
            "totalCount": 101,
            "nodes": [{"state": "SUCCESS", "createdAt": "2026-01-02T03:05:00Z"}],
        })));
        assert_eq!(more, None);
        let (_, unknown) = deployment(node(json!({
            "totalCount": 1,
            "nodes": [{"state": "EXPLODED", "createdAt": "2026-01-02T03:05:00Z"}],
        })));
        assert_eq!(unknown, None);
        let (deployment, missing) = deployment(node(serde_json::Value::Null));
        assert!(deployment.is_ok());
        assert_eq!(missing, None);
    }

    #[test]
    fn hostile_nodes_are_skipped_with_a_reason() {
        for hostile in [
            json!(null),
            json!("a string"),
            json!({"databaseId": null, "commitOid": SHA, "environment": "p", "createdAt": "2026-01-02T03:04:05Z"}),
            json!({"databaseId": 1, "commitOid": "not-a-sha", "environment": "p", "createdAt": "2026-01-02T03:04:05Z"}),
            json!({"databaseId": 1, "commitOid": SHA, "environment": null, "createdAt": "2026-01-02T03:04:05Z"}),
            json!({"databaseId": 1, "commitOid": SHA, "environment": "p", "createdAt": "yesterday"}),
            json!({"databaseId": -1, "commitOid": SHA, "environment": "p", "createdAt": "2026-01-02T03:04:05Z"}),
        ] {
            let (deployment, _) = deployment(hostile.clone());
            assert!(deployment.is_err(), "{hostile}");
        }
    }
}
