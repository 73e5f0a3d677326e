//! The cycle's check with GraphQL (`github.api = "graphql"`): one query asks up
//! to [`REPOSITORIES_PER_CHECK`] repositories at once, through aliases
//! (`r0: repository(owner: $o0, name: $n0) { … }`), for their newest deployment
//! (`deployments(first: 1)`, newest first: its id and sha). By GitHub's point
//! formula that is one request per repository, so 100 repositories cost one point.
//!
//! A repository sync then compares the newest id with the one its cursor stored:
//! equal means no deployment was created, and nothing is listed; different means
//! the listing's first page brings the new deployments together with the history
//! of the newest sha (`graphql.rs`). Without a check (REST, a failed check, a
//! repository added since) the sync asks the REST list's first page of one
//! deployment with `If-None-Match` instead (`deployments.rs`).
//!
//! Not here: the listing, the cursor.

use super::{GithubError, GithubSource};
use crate::config::{DeploymentsConfig, GithubApi};
use crate::domain::{CommitSha, RepoName};
use crate::sources::SyncContext;
use serde::Deserialize;
use std::collections::HashMap;

/// Repositories asked about in one check query (100 requests: one point).
pub const REPOSITORIES_PER_CHECK: usize = 100;

/// What the check found for one repository: its newest deployment's id and sha,
/// or `None` when it has no deployment.
pub(super) type Newest = Option<(u64, CommitSha)>;

impl GithubSource {
    /// Asks every Deployments-API repository for its newest deployment and keeps
    /// the answers for this cycle's repository syncs; on failure keeps none (the
    /// syncs fall back to the REST probe) and logs why.
    pub(super) async fn check_cycle(&self, context: &SyncContext) {
        let mut checked: HashMap<RepoName, Newest> = HashMap::new();
        if self.settings.api == GithubApi::Graphql {
            let repositories: Vec<&RepoName> = self
                .repositories
                .iter()
                .filter(|r| {
                    matches!(
                        self.deployments.get(*r),
                        None | Some(DeploymentsConfig::DeploymentsApi)
                    )
                })
                .collect();
            for chunk in repositories.chunks(REPOSITORIES_PER_CHECK) {
                match self.check(chunk, context).await {
                    Ok(answers) => checked.extend(answers),
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
        if let Ok(mut slot) = self.checked.lock() {
            *slot = checked;
        }
    }

    /// One check query for `repositories`.
    async fn check(
        &self,
        repositories: &[&RepoName],
        context: &SyncContext,
    ) -> Result<Vec<(RepoName, Newest)>, GithubError> {
        let (query, variables) = check_query(repositories);
        let data = self
            .client
            .graphql(&query, variables, &context.shutdown)
            .await?;
        let url = self.client.graphql_url();
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
            out.push(((*repository).clone(), newest));
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
}

/// The aliased query and its variables for `repositories`.
fn check_query(repositories: &[&RepoName]) -> (String, serde_json::Value) {
    let mut declarations = Vec::with_capacity(repositories.len());
    let mut selections = String::new();
    let mut variables = serde_json::Map::new();
    for (index, repository) in repositories.iter().enumerate() {
        declarations.push(format!("$o{index}: String!, $n{index}: String!"));
        selections.push_str(&format!(
            "  r{index}: repository(owner: $o{index}, name: $n{index}) {{ ...Newest }}\n"
        ));
        variables.insert(format!("o{index}"), repository.owner().into());
        variables.insert(format!("n{index}"), repository.name().into());
    }
    let query = format!(
        "query Check({}) {{\n  rateLimit {{ cost remaining resetAt }}\n{selections}}}\n\
         fragment Newest on Repository {{\n  deployments(first: 1, orderBy: {{field: CREATED_AT, \
         direction: DESC}}) {{ nodes {{ databaseId commitOid }} }}\n}}\n",
        declarations.join(", ")
    );
    (query, serde_json::Value::Object(variables))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_query_aliases_each_repository_with_its_own_variables() {
        let a = RepoName::parse("acme/api").unwrap();
        let b = RepoName::parse("acme/web").unwrap();
        let (query, variables) = check_query(&[&a, &b]);
        assert!(query
            .starts_with("query Check($o0: String!, $n0: String!, $o1: String!, $n1: String!)"));
        assert!(query.contains("r1: repository(owner: $o1, name: $n1) { ...Newest }"));
        assert_eq!(variables["o1"], "acme");
        assert_eq!(variables["n1"], "web");
    }
}
