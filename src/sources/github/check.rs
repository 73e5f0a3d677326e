//! The cycle's check with GraphQL (`github.api = "graphql"`): one query asks up
//! to [`REPOSITORIES_PER_CHECK`] repositories at once, through aliases
//! (`r0: repository(owner: $o0, name: $n0) { … }`), for their newest deployment
//! (`deployments(first: 1)`, newest first: its id and sha). By GitHub's point
//! formula that is one request per repository, so 100 repositories cost one point.
//!
//! For a repository with deployments still pending in the ledger it asks for the
//! 100 newest instead, with each one's `latestStatus` (not a connection: still one
//! request): a pending deployment whose latest status is still pending, queued or
//! in progress needs no re-check this cycle.
//!
//! A repository sync then compares the newest id with the one its cursor kept:
//! equal means no deployment was created, and nothing is listed; different means
//! the listing's first page brings the new deployments together with the history
//! of the newest sha (`graphql.rs`). Without a check (REST, a failed check, a
//! repository added since) the sync asks the REST list's first page of one
//! deployment with `If-None-Match` instead (`deployments.rs`).
//!
//! Not here: the listing, the cursor.

use super::answer::Partial;
use super::client::{Client, QueryShape};
use super::{GithubError, GithubSource};
use crate::config::{DeploymentsConfig, GithubApi};
use crate::domain::{CommitSha, DeploymentSource, RepoName};
use crate::sources::SyncContext;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// The check's answer is used field by field: a repository GitHub does not find
/// (`NOT_FOUND` on its alias) leaves the others' answers. Its pages never
/// shrink: one deployment each, or the 100 newest without a connection inside.
const CHECK_SHAPE: QueryShape<'static> = QueryShape {
    partial: Partial::Accepted,
    pages: None,
};

/// Repositories asked about in one check query (100 requests: one point).
pub const REPOSITORIES_PER_CHECK: usize = 100;

/// What the check found for one repository: its newest deployment's id and sha,
/// or `None` when it has no deployment.
pub(super) type Newest = Option<(u64, CommitSha)>;

/// Deployments asked about per repository with pending ones (GitHub's most).
pub const DEPLOYMENTS_PER_PENDING_CHECK: u32 = 100;

/// `DeploymentStatusState`s that leave a pending deployment pending.
const STILL_PENDING: [&str; 3] = ["PENDING", "QUEUED", "IN_PROGRESS"];

impl GithubSource {
    /// Asks every Deployments-API repository for its newest deployment and keeps
    /// the answers for this cycle's repository syncs; on failure keeps none (the
    /// syncs fall back to the REST probe) and logs why.
    pub(super) async fn check_cycle(&self, context: &SyncContext) {
        let mut checked: HashMap<RepoName, Newest> = HashMap::new();
        let mut still_pending: HashMap<RepoName, HashSet<u64>> = HashMap::new();
        if self.settings.api == GithubApi::Graphql {
            let scope = self
                .scope
                .read()
                .map(|scope| scope.clone())
                .unwrap_or_default();
            let repositories: Vec<&RepoName> = scope
                .repositories
                .iter()
                .filter(|r| {
                    matches!(
                        scope.deployments.get(*r),
                        None | Some(DeploymentsConfig::DeploymentsApi)
                    ) && context.syncs(r)
                })
                .collect();
            let pending = self.pending_ids(&repositories, context).await;
            let groups = self.by_principal(&repositories, &context.shutdown).await;
            for (client, repositories) in &groups {
                for chunk in repositories.chunks(REPOSITORIES_PER_CHECK) {
                    match self.check(client, chunk, &pending, context).await {
                        Ok(answers) => {
                            for (repository, newest, pending) in answers {
                                if !pending.is_empty() {
                                    still_pending.insert(repository.clone(), pending);
                                }
                                checked.insert(repository, newest);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(
                                %error,
                                repositories = chunk.len(),
                                "the GraphQL check of the newest deployments failed; these \
                                 repositories ask the REST list instead this cycle"
                            );
                        }
                    }
                }
            }
        }
        if let Ok(mut slot) = self.checked.lock() {
            *slot = checked;
        }
        if let Ok(mut slot) = self.still_pending.lock() {
            *slot = still_pending;
        }
    }

    /// The ids of the pending deployments of `repositories` (none for a
    /// repository the ledger cannot answer for: it is then re-checked through
    /// REST).
    async fn pending_ids(
        &self,
        repositories: &[&RepoName],
        context: &SyncContext,
    ) -> HashMap<RepoName, HashSet<u64>> {
        let mut out = HashMap::new();
        for repository in repositories {
            let pending = context
                .ledger
                .pending_deployments((*repository).clone(), DeploymentSource::GithubDeployments)
                .await;
            match pending {
                Ok(pending) if !pending.is_empty() => {
                    out.insert(
                        (*repository).clone(),
                        pending.iter().map(|d| d.id).collect(),
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "could not read the pending deployments for the check");
                    return HashMap::new();
                }
            }
        }
        out
    }

    /// One check query for `repositories`, sent with `client` (the principal
    /// that can read them all).
    async fn check(
        &self,
        client: &Client,
        repositories: &[&RepoName],
        pending: &HashMap<RepoName, HashSet<u64>>,
        context: &SyncContext,
    ) -> Result<Vec<(RepoName, Newest, HashSet<u64>)>, GithubError> {
        let with_states: Vec<bool> = repositories
            .iter()
            .map(|r| pending.contains_key(*r))
            .collect();
        let (query, variables) = check_query(repositories, &with_states);
        let data = client
            .graphql(&query, variables, CHECK_SHAPE, &context.shutdown)
            .await?;
        let url = client.graphql_url();
        let invalid = |reason: String| GithubError::InvalidBody {
            url: url.to_owned(),
            reason,
        };
        let mut out = Vec::with_capacity(repositories.len());
        for (index, repository) in repositories.iter().enumerate() {
            let answer = data
                .get(format!("r{index}"))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let Some(answer) = serde_json::from_value::<Option<Answer>>(answer)
                .map_err(|e| invalid(format!("unexpected check answer: {e}")))?
            else {
                // Not found or not readable: the repository's own sync says why.
                continue;
            };
            let newest = match answer.deployments.nodes.first() {
                None => None,
                Some(node) => {
                    let (Some(id), Ok(sha)) =
                        (node.database_id, CommitSha::parse(&node.commit_oid))
                    else {
                        // Unreadable: let the repository's sync list and say so.
                        continue;
                    };
                    Some((id, sha))
                }
            };
            let asked = pending.get(*repository);
            let still: HashSet<u64> = answer
                .deployments
                .nodes
                .iter()
                .filter(|node| {
                    let state = node.latest_status.as_ref().map(|s| s.state.as_str());
                    state.is_none_or(|state| STILL_PENDING.contains(&state))
                })
                .filter_map(|node| node.database_id)
                .filter(|id| asked.is_some_and(|ids| ids.contains(id)))
                .collect();
            out.push(((*repository).clone(), newest, still));
        }
        Ok(out)
    }
}

#[derive(Deserialize)]
struct Answer {
    deployments: Deployments,
}

#[derive(Deserialize)]
struct Deployments {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(rename = "databaseId")]
    database_id: Option<u64>,
    #[serde(rename = "commitOid")]
    commit_oid: String,
    #[serde(default, rename = "latestStatus")]
    latest_status: Option<LatestStatus>,
}

#[derive(Deserialize)]
struct LatestStatus {
    state: String,
}

/// The aliased query and its variables for `repositories` (with the latest
/// states of the newest 100 where `with_states` says so).
fn check_query(repositories: &[&RepoName], with_states: &[bool]) -> (String, serde_json::Value) {
    let mut declarations = Vec::with_capacity(repositories.len());
    let mut selections = String::new();
    let mut variables = serde_json::Map::new();
    for (index, repository) in repositories.iter().enumerate() {
        declarations.push(format!("$o{index}: String!, $n{index}: String!"));
        let fragment = if with_states.get(index).copied().unwrap_or(false) {
            "NewestWithStates"
        } else {
            "Newest"
        };
        selections.push_str(&format!(
            "  r{index}: repository(owner: $o{index}, name: $n{index}) {{ ...{fragment} }}\n"
        ));
        variables.insert(format!("o{index}"), repository.owner().into());
        variables.insert(format!("n{index}"), repository.name().into());
    }
    let mut query = format!(
        "query Check({}) {{\n  rateLimit {{ cost remaining resetAt }}\n{selections}}}\n",
        declarations.join(", ")
    );
    // GraphQL rejects a fragment no selection uses: each only when used.
    if with_states.len() < repositories.len() || with_states.iter().any(|w| !*w) {
        query.push_str(
            "fragment Newest on Repository {\n  deployments(first: 1, orderBy: {field: \
             CREATED_AT, direction: DESC}) { nodes { databaseId commitOid } }\n}\n",
        );
    }
    if with_states.iter().any(|w| *w) {
        query.push_str(&format!(
            "fragment NewestWithStates on Repository {{\n  deployments(first: \
             {DEPLOYMENTS_PER_PENDING_CHECK}, orderBy: {{field: CREATED_AT, direction: DESC}}) \
             {{ nodes {{ databaseId commitOid latestStatus {{ state }} }} }}\n}}\n"
        ));
    }
    (query, serde_json::Value::Object(variables))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_query_aliases_each_repository_with_its_own_variables() {
        let a = RepoName::parse("acme/api").unwrap();
        let b = RepoName::parse("acme/web").unwrap();
        let (query, variables) = check_query(&[&a, &b], &[false, true]);
        assert!(query
            .starts_with("query Check($o0: String!, $n0: String!, $o1: String!, $n1: String!)"));
        assert!(query.contains("r0: repository(owner: $o0, name: $n0) { ...Newest }"));
        assert!(query.contains("r1: repository(owner: $o1, name: $n1) { ...NewestWithStates }"));
        assert!(query.contains("latestStatus { state }"));
        let (plain, _) = check_query(&[&a], &[false]);
        assert!(
            !plain.contains("NewestWithStates"),
            "an unused fragment is invalid"
        );
        let (states, _) = check_query(&[&a], &[true]);
        assert!(
            !states.contains("fragment Newest "),
            "an unused fragment is invalid"
        );
        assert_eq!(variables["o1"], "acme");
        assert_eq!(variables["n1"], "web");
    }
}
