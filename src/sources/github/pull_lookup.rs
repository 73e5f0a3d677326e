//! Step 5 (PR-based lead-time starts only): the pull request of every deployed
//! change that no kept pull request names.
//!
//! Step 4 lists the pull requests merged since the lookback start with their
//! commits. A change deployed in the lookback can still come from a pull request
//! merged before it (merged on Friday, deployed on Monday, the lookback starting
//! on Saturday), or from none (a direct push). Rather than listing every pull
//! request since the repository began, this step asks GitHub for the pull
//! requests of just those changes (dora-definitions §1 `lead_time_start`):
//!
//! - GraphQL: `Commit.associatedPullRequests` for up to 149 commits a query
//!   (aliases, one point) — none for a change the first page of a later sync
//!   already answered (it brings the newest history with each commit's pull
//!   requests: `graphql.rs`) — then the merged pull requests not kept yet with
//!   their labels and commits (`Repository.pullRequest(number:)`, 74 a query,
//!   one point);
//! - REST: `GET /repos/{owner}/{repo}/commits/{sha}/pulls` per commit, then
//!   `/pulls/{n}/commits` per merged pull request not kept yet.
//!
//! The first review of a pull request found here is read with it when it was
//! merged within the lookback (rarely: step 4 lists those), else by step 6 when
//! a change of it is deployed within the review window (`reviews.rs`).
//!
//! Each change is asked about once: cursor
//! `pull_lookup?environments=…&lead_time_start=…` keeps (`since`) the deploy time
//! through which every change set was decided and its changes asked about; the
//! next sync asks only about deployments after it (`dora::changes_without_pull`).
//! A change a pull request lists that GitHub also associates with it is added to
//! that pull request's commits (GitHub lists at most 250 of them).

use super::client::{Endpoint, Pages, PER_PAGE};
use super::pulls::{
    graphql_pull, lead_time_start_name, PullCommits, COMMITS_PER_PULL, LABELS_PER_PULL,
};
use super::{models, GithubError, RepoSync};
use crate::config::GithubApi;
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{CommitSha, PullRequest};
use crate::dora::{ChangesWithoutPull, LeadTimeStart};
use crate::sources::SourceError;
use serde_json::json;
use std::collections::BTreeMap;

/// The cursor endpoint name's base.
pub const CURSOR: &str = "pull_lookup";

/// Commits asked about per GraphQL query (aliases; one request each by
/// GitHub's formula, which divides 149 by 100 and rounds to one point).
pub const COMMITS_PER_LOOKUP_QUERY: usize = 149;

/// Pull requests read per commit (a change is rarely in more than a couple).
pub const PULLS_PER_COMMIT: u32 = 10;

/// Pull requests read per GraphQL details query (two connections each: labels
/// and commits, so 148 requests, rounded to one point).
pub const PULLS_PER_DETAILS_QUERY: usize = 74;

impl RepoSync<'_> {
    /// Step 5.
    pub(super) async fn sync_pull_lookup(&self) -> Result<(), SourceError> {
        let start = self.settings.lead_time_start;
        if start == LeadTimeStart::Commit {
            return Ok(());
        }
        let name = super::cursor_name(
            CURSOR,
            &[
                ("environments", self.production_names()),
                ("lead_time_start", lead_time_start_name(start).to_owned()),
            ],
        );
        let key = CursorKey::new(self.repository.clone(), name);
        let cursor = self.cursor(&key).await?;
        let after = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        // Every kept deployment, whatever the clock says (as history).
        let changes = self
            .ledger()
            .changes_without_pull(
                self.repository.clone(),
                self.settings.production.clone(),
                after,
            )
            .await?;
        let Some(changes) = changes else {
            return Ok(());
        };
        if changes.decided_through <= after && changes.shas.is_empty() {
            return Ok(());
        }
        let found = match self.settings.api {
            GithubApi::Graphql => self.pulls_through_graphql(&changes).await?,
            GithubApi::Rest => self.pulls_through_rest(&changes).await?,
        };
        let mut batch = SyncBatch::new(self.repository.clone());
        batch.pull_requests = found.into_values().collect();
        batch.cursors.push((
            key,
            Cursor {
                since: Some(changes.decided_through),
                opaque: None,
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }

    /// The merged pull requests (not kept yet) of `changes`, through REST.
    async fn pulls_through_rest(
        &self,
        changes: &ChangesWithoutPull,
    ) -> Result<BTreeMap<u64, PullRequest>, SourceError> {
        let mut found: BTreeMap<u64, PullRequest> = BTreeMap::new();
        for sha in &changes.shas {
            self.check_cancelled()?;
            // GitHub lists the merged pull request that introduced the commit
            // (and open ones of a commit not on the default branch).
            let url = self.url(
                &format!("/commits/{sha}/pulls"),
                &[("per_page", &PER_PAGE.to_string())],
            );
            let mut pages = Pages::new(Endpoint::CommitPulls, url.clone(), None);
            while let Some(body) = self.next_page(&mut pages).await? {
                for value in models::array(&body, &url)? {
                    let Some(pull) = self.item(Endpoint::CommitPulls, value.and_then(models::pull))
                    else {
                        continue;
                    };
                    if pull.merged_at.is_none() {
                        continue;
                    }
                    if let Some(known) = found.get_mut(&pull.number) {
                        add_change(known, *sha);
                        continue;
                    }
                    if changes.known_pulls.binary_search(&pull.number).is_ok() {
                        continue;
                    }
                    let commits = self.pull_commits(pull.number).await?;
                    let pull = self.with_first_review(pull, self.lookback_start()).await?;
                    let mut pull_request = self.pull_request(pull, commits);
                    add_change(&mut pull_request, *sha);
                    found.insert(pull_request.number, pull_request);
                }
            }
        }
        Ok(found)
    }

    /// The merged pull requests (not kept yet) of `changes`, through GraphQL.
    async fn pulls_through_graphql(
        &self,
        changes: &ChangesWithoutPull,
    ) -> Result<BTreeMap<u64, PullRequest>, SourceError> {
        // Pull request number -> the changes GitHub associates with it.
        let mut associated: BTreeMap<u64, Vec<CommitSha>> = BTreeMap::new();
        // What this sync's pages already said (the first page of a later sync
        // brings the new history with each commit's pull requests).
        let mut unanswered = Vec::with_capacity(changes.shas.len());
        {
            let answered = self.answered.lock().ok();
            for sha in &changes.shas {
                match answered.as_ref().and_then(|a| a.get(sha)) {
                    Some(numbers) => {
                        for number in numbers {
                            if changes.known_pulls.binary_search(number).is_err() {
                                associated.entry(*number).or_default().push(*sha);
                            }
                        }
                    }
                    None => unanswered.push(*sha),
                }
            }
        }
        for chunk in unanswered.chunks(COMMITS_PER_LOOKUP_QUERY) {
            self.check_cancelled()?;
            let data: serde_json::Value = self
                .query_aliases(
                    "pull requests of commits",
                    &lookup_query(chunk),
                    json!({
                        "owner": self.repository.owner(),
                        "name": self.repository.name(),
                        "pullsPerCommit": PULLS_PER_COMMIT,
                    }),
                )
                .await?;
            let repository = self.repository_of(&data)?;
            for (n, sha) in chunk.iter().enumerate() {
                let nodes = repository
                    .get(&format!("c{n}"))
                    .and_then(|commit| commit.get("associatedPullRequests"))
                    .and_then(|connection| connection.get("nodes"))
                    .and_then(|nodes| nodes.as_array());
                for node in nodes.into_iter().flatten() {
                    let merged = node.get("mergedAt").is_some_and(|m| !m.is_null());
                    let Some(number) = node.get("number").and_then(|n| n.as_u64()) else {
                        self.item::<()>(
                            Endpoint::Graphql,
                            Err("an associated pull request without a number".into()),
                        );
                        continue;
                    };
                    if merged && changes.known_pulls.binary_search(&number).is_err() {
                        associated.entry(number).or_default().push(*sha);
                    }
                }
            }
        }
        let numbers: Vec<u64> = associated.keys().copied().collect();
        let mut found = BTreeMap::new();
        // Those merged within the lookback, whose first review is read here
        // (`reviews.rs`).
        let mut wanted = Vec::new();
        for chunk in numbers.chunks(PULLS_PER_DETAILS_QUERY) {
            self.check_cancelled()?;
            let data: serde_json::Value = self
                .query_aliases(
                    "pull requests",
                    &details_query(chunk),
                    json!({
                        "owner": self.repository.owner(),
                        "name": self.repository.name(),
                        "labelsPerPull": LABELS_PER_PULL,
                        "commitsPerPull": COMMITS_PER_PULL,
                    }),
                )
                .await?;
            let repository = self.repository_of(&data)?;
            for (n, number) in chunk.iter().enumerate() {
                let Some(node) = repository.get(&format!("p{n}")).filter(|v| !v.is_null()) else {
                    continue;
                };
                let Some((pull, commits)) =
                    self.item(Endpoint::Graphql, graphql_pull(node.clone()))
                else {
                    continue;
                };
                if pull.merged_at.is_none() {
                    continue;
                }
                let commits: PullCommits = match commits {
                    Some(commits) => commits,
                    None => self.pull_commits(pull.number).await?,
                };
                if self.reads_review(&pull, self.lookback_start()) {
                    wanted.push(pull.number);
                }
                let mut pull_request = self.pull_request(pull, commits);
                for sha in &associated[number] {
                    add_change(&mut pull_request, *sha);
                }
                found.insert(*number, pull_request);
            }
        }
        for (number, review) in self.first_reviews(&wanted).await? {
            if let Some(pull) = found.get_mut(&number) {
                pull.first_review_at = review;
            }
        }
        Ok(found)
    }

    /// Keeps the merged pull requests each commit of history `nodes` names when
    /// the query asked for them (`associatedPullRequests { nodes { number
    /// mergedAt } }`), for [`RepoSync::sync_pull_lookup`] later in this sync.
    pub(super) fn keep_associated_pulls(&self, nodes: &[serde_json::Value]) {
        let Ok(mut answered) = self.answered.lock() else {
            return;
        };
        for node in nodes {
            let Some(sha) = node
                .get("oid")
                .and_then(|oid| oid.as_str())
                .and_then(|oid| CommitSha::parse(oid).ok())
            else {
                continue;
            };
            let Some(pulls) = node
                .get("associatedPullRequests")
                .and_then(|connection| connection.get("nodes"))
                .and_then(|nodes| nodes.as_array())
            else {
                continue;
            };
            // A pull request without a number leaves the commit unanswered:
            // step 5 asks again.
            let numbers: Option<Vec<Option<u64>>> = pulls
                .iter()
                .map(|pull| {
                    let number = pull.get("number").and_then(|n| n.as_u64())?;
                    let merged = pull.get("mergedAt").is_some_and(|m| !m.is_null());
                    Some(merged.then_some(number))
                })
                .collect();
            if let Some(numbers) = numbers {
                answered.insert(sha, numbers.into_iter().flatten().collect());
            }
        }
    }

    /// The `repository` object of a GraphQL answer.
    fn repository_of<'d>(
        &self,
        data: &'d serde_json::Value,
    ) -> Result<&'d serde_json::Map<String, serde_json::Value>, GithubError> {
        data.get("repository")
            .and_then(|r| r.as_object())
            .ok_or_else(|| GithubError::NotFound {
                url: format!(
                    "{} (repository {})",
                    self.client.graphql_url(),
                    self.repository
                ),
            })
    }
}

/// Adds `sha`, which GitHub associates with the pull request, to its commits
/// unless it is its merge commit or already listed.
fn add_change(pull: &mut PullRequest, sha: CommitSha) {
    if pull.merge_commit_sha != Some(sha) && !pull.commits.contains(&sha) {
        pull.commits.push(sha);
    }
}

/// The associated pull requests of `shas`, one alias each (`c0`, `c1`, …). The
/// shas are hexadecimal, so they go into the text as they are.
fn lookup_query(shas: &[CommitSha]) -> String {
    let mut query = String::from(
        "query PullsOfCommits($owner: String!, $name: String!, $pullsPerCommit: Int!) {\n  \
         rateLimit { cost remaining resetAt }\n  repository(owner: $owner, name: $name) {\n",
    );
    for (n, sha) in shas.iter().enumerate() {
        query.push_str(&format!(
            "    c{n}: object(oid: \"{sha}\") {{ ... on Commit {{ associatedPullRequests(first: $pullsPerCommit) {{ nodes {{ number mergedAt }} }} }} }}\n"
        ));
    }
    query.push_str("  }\n}\n");
    query
}

/// The pull requests `numbers` with their labels and commits, one alias each
/// (`p0`, `p1`, …), as [`graphql_pull`] reads them.
fn details_query(numbers: &[u64]) -> String {
    let mut query = String::from(
        "query PullsByNumber($owner: String!, $name: String!, $labelsPerPull: Int!, $commitsPerPull: Int!) {\n  \
         rateLimit { cost remaining resetAt }\n  repository(owner: $owner, name: $name) {\n",
    );
    for (n, number) in numbers.iter().enumerate() {
        query.push_str(&format!(
            "    p{n}: pullRequest(number: {number}) {{ number createdAt updatedAt mergedAt mergeCommit {{ oid }} \
             labels(first: $labelsPerPull) {{ totalCount nodes {{ name }} }} \
             commits(first: $commitsPerPull) {{ totalCount nodes {{ commit {{ oid authoredDate }} }} }} }}\n"
        ));
    }
    query.push_str("  }\n}\n");
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_alias_every_commit_and_pull_request() {
        let shas = [
            CommitSha::from_bytes([1; 20]),
            CommitSha::from_bytes([2; 20]),
        ];
        let query = lookup_query(&shas);
        assert!(query.contains(&format!("c1: object(oid: \"{}\")", shas[1])));
        assert_eq!(query.matches("associatedPullRequests").count(), 2);
        let query = details_query(&[7, 9]);
        assert!(query.contains("p1: pullRequest(number: 9)"));
    }
}
