//! Step 2 with GraphQL: change sets from the deployed history instead of a
//! compare per deployment. The commits the deployments shipped are read as
//! history pages (`Commit.history`, 100 commits a page with their parents, one
//! point each), kept, and the engine walks them (`docs/computation.md` § Change sets: the
//! commits reachable from the deployed sha that no earlier deployment shipped).
//! A compare is read only for a pair the history cannot decide
//! ([`crate::dora::uncovered_change_sets`]): a deployed sha GitHub no longer has,
//! a walk that leaves what was read within the page bounds, a redeploy of an older
//! sha that is not known to be an ancestor of the previous one.
//!
//! How much is read: a listing starts at the newest undecided deployed sha (or
//! the unknown parent a walk stopped at) and pages back, newest commit first,
//! without asking which change sets are decided until it has passed the oldest
//! undecided pair's base deployment, or a page brought nothing new; from then on it
//! asks after every page and stops as soon as everything is decided. So a first
//! sync reads the window's history about once, and a sync after one deployment
//! reads one page.
//!
//! Cursor `history?environments=…`: `opaque` is a digest of the pairs that still
//! lack a compare once this step succeeded; while the ledger lists the same pairs
//! (no deployment succeeded since), the step reads nothing, not even the ledger's
//! commits.
//!
//! Not here: the compares themselves (`changes.rs`), the deployments listing.

use super::client::PER_PAGE;
use super::models::PageInfo;
use super::pulls::riding_pulls;
use super::{GithubError, RepoSync};
use crate::domain::batch::{CommitRecord, CursorKey, SyncBatch};
use crate::domain::{CommitSha, Timestamp};
use crate::dora::UncoveredChangeSet;
use crate::sources::SourceError;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;

/// The cursor endpoint name's base (the name also carries the production
/// environments, as the deployments cursor's does).
pub const CURSOR: &str = "history";

/// Parents read per commit: merges have two; octopus merges rarely more. A commit
/// with more keeps the first ten (logged), and a walk through it may stop short.
pub const PARENTS_PER_COMMIT: u32 = 10;

/// The most history pages one repository sync reads (100,000 commits); the next
/// sync goes on from the edge of what was read (no compare is read meanwhile).
pub const MAX_HISTORY_PAGES_PER_SYNC: usize = 1_000;

/// Pages read after a listing passed the oldest undecided base deployment, before
/// the remaining pairs are left to compares: bounds the cost of a change set that
/// ships very old commits (a long-lived branch merged without a rebase).
pub const MAX_PAGES_PAST_BASES: usize = 10;

/// The fields read of each commit of a history (shared with the deployments query of `graphql.rs`).
macro_rules! commit_fields {
    () => {
        r#"
fragment CommitFields on Commit {
  oid
  authoredDate
  committedDate
  message
  parents(first: $parents) { totalCount nodes { oid } }
}
"#
    };
}
pub(super) use commit_fields;

/// The query of one history page. `rateLimit { cost }` makes the answer say what it
/// cost (debug log).
const HISTORY_QUERY: &str = concat!(
    r#"
query History($owner: String!, $name: String!, $oid: GitObjectID!, $first: Int!, $parents: Int!, $after: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    object(oid: $oid) {
      ... on Commit {
        history(first: $first, after: $after) {
          pageInfo { hasNextPage endCursor }
          nodes { ...CommitFields }
        }
      }
    }
  }
}
"#,
    commit_fields!()
);

/// [`HISTORY_QUERY`] with a page of step 4's listing riding on it
/// ([`super::pulls::riding_pulls!`]): still one point (101 + 48 requests).
const HISTORY_WITH_PULLS_QUERY: &str = concat!(
    r#"
query HistoryWithPulls($owner: String!, $name: String!, $oid: GitObjectID!, $first: Int!, $parents: Int!, $after: String, $pullsFirst: Int!, $pullsAfter: String, $commitsPerPull: Int!) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    object(oid: $oid) {
      ... on Commit {
        history(first: $first, after: $after) {
          pageInfo { hasNextPage endCursor }
          nodes { ...CommitFields }
        }
      }
    }
"#,
    riding_pulls!(),
    r#"  }
}
"#,
    commit_fields!()
);

/// One page of history: the commits, the oldest committer date on it, and the
/// cursor of the next page.
struct HistoryPage {
    commits: Vec<CommitRecord>,
    oldest_committed: Option<Timestamp>,
    next: Option<String>,
}

/// One listing: the history of `start`, page by page.
struct Listing {
    start: CommitSha,
    after: Option<String>,
    done: bool,
    /// Parents of the commits listed so far that were not listed yet: the
    /// unknown shas this listing will still reach.
    reaches: HashSet<CommitSha>,
}

impl RepoSync<'_> {
    /// The cursor key of this step.
    pub(super) fn history_cursor_key(&self) -> CursorKey {
        CursorKey::new(
            self.repository.clone(),
            super::cursor_name(CURSOR, &[("environments", self.production_names())]),
        )
    }

    /// Reads the history the undecided change sets need and keeps it; returns the
    /// pairs `(base, head)` only a compare can decide, or `None` when the page
    /// bound stopped it before it was done (the next sync goes on).
    pub(super) async fn sync_history(
        &self,
    ) -> Result<Option<Vec<(CommitSha, CommitSha)>>, SourceError> {
        let mut uncovered = self.uncovered().await?;
        let mut listing: Option<Listing> = None;
        let mut started: HashSet<CommitSha> = HashSet::new();
        let mut known: HashSet<CommitSha> = HashSet::new();
        let mut pages = 0usize;
        let mut pages_past_bases = 0usize;
        loop {
            let wanted: HashSet<CommitSha> = uncovered
                .iter()
                .flat_map(|u| u.missing.iter().copied())
                .collect();
            if wanted.is_empty() {
                break;
            }
            let keep = listing
                .as_ref()
                .is_some_and(|l| !l.done && wanted.iter().any(|sha| l.reaches.contains(sha)));
            if !keep {
                // The newest undecided deployment first: its history holds most of
                // the older ones'.
                let start = uncovered
                    .iter()
                    .rev()
                    .flat_map(|u| u.missing.iter())
                    .find(|sha| !started.contains(*sha))
                    .copied();
                let Some(start) = start else { break };
                started.insert(start);
                listing = Some(Listing {
                    start,
                    after: None,
                    done: false,
                    reaches: HashSet::new(),
                });
            }
            let Some(current) = listing.as_mut() else {
                break;
            };
            let oldest_base = uncovered
                .iter()
                .filter(|u| !u.missing.is_empty())
                .map(|u| u.base_at)
                .min()
                .unwrap_or(Timestamp(i64::MIN));
            // Page on without asking the ledger until the listing is past the
            // oldest undecided base, or brings nothing new, or ends.
            loop {
                self.check_cancelled()?;
                if pages >= MAX_HISTORY_PAGES_PER_SYNC {
                    tracing::info!(
                        repository = %self.repository,
                        pages,
                        "read the most history pages one sync reads; the next sync goes on"
                    );
                    return Ok(None);
                }
                let Some(page) = self.history_page(current).await? else {
                    // GitHub does not know the sha (force-pushed away): compares
                    // decide its pairs (and say so).
                    current.done = true;
                    break;
                };
                pages += 1;
                let mut fresh = 0;
                for commit in &page.commits {
                    current.reaches.remove(&commit.sha);
                    if known.insert(commit.sha) {
                        fresh += 1;
                    }
                }
                for commit in &page.commits {
                    for parent in &commit.parents {
                        if !known.contains(parent) {
                            current.reaches.insert(*parent);
                        }
                    }
                }
                current.after = page.next.clone();
                current.done = page.next.is_none();
                let past_bases = page.oldest_committed.is_some_and(|at| at < oldest_base);
                let mut batch = SyncBatch::new(self.repository.clone());
                batch.commits = page.commits;
                self.apply(batch).await?;
                if past_bases {
                    pages_past_bases += 1;
                }
                if current.done || past_bases || fresh == 0 {
                    break;
                }
            }
            uncovered = self.uncovered().await?;
            if pages_past_bases >= MAX_PAGES_PAST_BASES {
                tracing::info!(
                    repository = %self.repository,
                    undecided = uncovered.len(),
                    "change sets ship commits much older than their deployments; reading \
                     compares for them"
                );
                break;
            }
        }
        Ok(Some(pairs(&uncovered)))
    }

    /// The undecided change sets of this repository, from the kept events.
    async fn uncovered(&self) -> Result<Vec<UncoveredChangeSet>, SourceError> {
        // Every kept deployment, whatever the clock says: a success stamped after
        // `now` (clock skew) still needs its change set.
        Ok(self
            .ledger()
            .undecided_change_sets(self.repository.clone(), self.settings.production.clone())
            .await?)
    }

    /// The next page of `listing`; `None` when GitHub does not know its start.
    async fn history_page(&self, listing: &Listing) -> Result<Option<HistoryPage>, GithubError> {
        let mut variables = json!({
            "owner": self.repository.owner(),
            "name": self.repository.name(),
            "oid": listing.start.to_string(),
            "first": PER_PAGE,
            "parents": PARENTS_PER_COMMIT,
            "after": listing.after,
        });
        let query = if self.ride(&mut variables) {
            HISTORY_WITH_PULLS_QUERY
        } else {
            HISTORY_QUERY
        };
        let data: Data = self
            .query("history", query, variables, &["first", "pullsFirst"])
            .await?;
        let url = self.client.graphql_url();
        let Some(repository) = data.repository else {
            return Err(GithubError::NotFound {
                url: format!("{url} (repository {})", self.repository),
            });
        };
        self.rode(repository.riding_pulls);
        let Some(history) = repository.object.and_then(|o| o.history) else {
            tracing::warn!(
                repository = %self.repository,
                sha = %listing.start,
                "GitHub does not know a deployed commit (force-pushed away?); its change set \
                 is left to a compare"
            );
            return Ok(None);
        };
        let next = history.page_info.and_then(PageInfo::next);
        let (commits, oldest_committed) = self.history_commits(history.nodes);
        Ok(Some(HistoryPage {
            commits,
            oldest_committed,
            next,
        }))
    }

    /// The readable commits of history `nodes` (the others skipped, counted and
    /// logged) and the oldest committer date among them.
    pub(super) fn history_commits(
        &self,
        nodes: Vec<serde_json::Value>,
    ) -> (Vec<CommitRecord>, Option<Timestamp>) {
        let mut oldest_committed: Option<Timestamp> = None;
        let mut commits = Vec::with_capacity(nodes.len());
        for node in nodes {
            let Some((record, committed)) = self.item(super::Endpoint::Graphql, commit(node))
            else {
                continue;
            };
            oldest_committed = Some(oldest_committed.map_or(committed, |o| o.min(committed)));
            commits.push(record);
        }
        (commits, oldest_committed)
    }
}

/// The `(base, head)` pairs of `uncovered`.
fn pairs(uncovered: &[UncoveredChangeSet]) -> Vec<(CommitSha, CommitSha)> {
    uncovered.iter().map(|u| (u.base, u.head)).collect()
}

#[derive(Deserialize)]
struct Data {
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Repository {
    object: Option<Object>,
    /// Step 4's riding page, when one rode ([`HISTORY_WITH_PULLS_QUERY`]).
    #[serde(default, rename = "ridingPulls")]
    riding_pulls: Option<serde_json::Value>,
}

/// A `GitObject`; `history` is absent when it is not a commit.
#[derive(Deserialize)]
pub(super) struct Object {
    pub(super) history: Option<History>,
}

/// A page of `Commit.history` (`pageInfo` only where the query asks for it).
#[derive(Deserialize)]
pub(super) struct History {
    #[serde(default, rename = "pageInfo")]
    page_info: Option<PageInfo>,
    pub(super) nodes: Vec<serde_json::Value>,
}

/// One commit node: the record and its committer date.
fn commit(value: serde_json::Value) -> Result<(CommitRecord, Timestamp), super::models::Skip> {
    #[derive(Deserialize)]
    struct Node {
        oid: String,
        #[serde(rename = "authoredDate")]
        authored_date: String,
        #[serde(rename = "committedDate")]
        committed_date: String,
        message: Option<String>,
        parents: Parents,
    }
    #[derive(Deserialize)]
    struct Parents {
        #[serde(rename = "totalCount")]
        total_count: usize,
        nodes: Vec<Parent>,
    }
    #[derive(Deserialize)]
    struct Parent {
        oid: String,
    }
    let node: Node =
        serde_json::from_value(value).map_err(|e| format!("unexpected commit: {e}"))?;
    let sha = CommitSha::parse(&node.oid).map_err(|e| format!("oid: {e}"))?;
    let authored =
        Timestamp::parse_rfc3339(&node.authored_date).map_err(|e| format!("authoredDate: {e}"))?;
    let committed = Timestamp::parse_rfc3339(&node.committed_date)
        .map_err(|e| format!("committedDate: {e}"))?;
    let parents = node
        .parents
        .nodes
        .iter()
        .map(|p| CommitSha::parse(&p.oid).map_err(|e| format!("parents.oid: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if node.parents.total_count > parents.len() {
        tracing::warn!(
            %sha,
            parents = node.parents.total_count,
            "a commit with more parents than are read; walks through it may stop short"
        );
    }
    let record = CommitRecord::new(
        sha,
        parents,
        authored,
        node.message.as_deref().unwrap_or(""),
    );
    Ok((record, committed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const PARENT: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_commit_node_gives_its_record_and_committer_date() {
        let (record, committed) = commit(json!({
            "oid": SHA,
            "authoredDate": "2026-01-02T03:04:05Z",
            "committedDate": "2026-01-03T00:00:00Z",
            "message": "Revert \"x\"\n\nThis reverts commit 0123.",
            "parents": {"totalCount": 1, "nodes": [{"oid": PARENT}]},
        }))
        .unwrap();
        assert_eq!(record.sha.to_string(), SHA);
        assert_eq!(record.parents[0].to_string(), PARENT);
        assert_eq!(record.author_date.to_rfc3339(), "2026-01-02T03:04:05Z");
        assert_eq!(committed.to_rfc3339(), "2026-01-03T00:00:00Z");
        assert_eq!(record.message, "Revert \"x\"");
        assert!(record.is_revert());
    }

    #[test]
    fn hostile_commit_nodes_are_skipped_with_a_reason() {
        let parents = json!({"totalCount": 0, "nodes": []});
        for hostile in [
            json!(null),
            json!([]),
            json!({"oid": "nope", "authoredDate": "2026-01-02T03:04:05Z", "committedDate": "2026-01-02T03:04:05Z", "parents": parents}),
            json!({"oid": SHA, "authoredDate": "then", "committedDate": "2026-01-02T03:04:05Z", "parents": parents}),
            json!({"oid": SHA, "authoredDate": "2026-01-02T03:04:05Z", "committedDate": "2026-01-02T03:04:05Z"}),
            json!({"oid": SHA, "authoredDate": "2026-01-02T03:04:05Z", "committedDate": "2026-01-02T03:04:05Z", "parents": {"totalCount": 1, "nodes": [{"oid": 7}]}}),
        ] {
            assert!(commit(hostile.clone()).is_err(), "{hostile}");
        }
    }
}
