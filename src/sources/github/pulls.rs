//! Step 4: merged pull requests, for two uses:
//! - rework (`docs/computation.md` § Rollbacks and rework): the merge commit of a merged pull request with a
//!   rework label marks the deployment that ships it as rework;
//! - PR-based lead-time starts (`lead_time_start = "pr_merged"` or
//!   `"pr_first_commit"`): every merged pull request with its commits (and their
//!   earliest author date), so that every commit it introduced — its own commits
//!   and its merge or squash commit — starts from it (`merged_at` or the earliest
//!   author date). GitHub lists at most 250 commits of a pull request
//!   ([`MAX_PULL_COMMITS`]).
//!
//! With the default `lead_time_start = "commit"` only pull requests carrying a
//! rework label are kept, and with no rework labels either, nothing is read.
//! Pull requests merged before the lookback start are found by step 5
//! (`pull_lookup.rs`), from the deployed changes.
//!
//! The list is `state=closed&sort=updated&direction=desc`, read until a pull
//! request updated before the cursor; each merged pull request it brings under a
//! PR-based start has its commits read (`/pulls/{n}/commits`). Cursor
//! `pulls?lead_time_start=…&rework_labels=…`: `since` is the newest
//! `updated_at` seen, `opaque` the first page's `ETag` and the pull requests
//! listed at `since` with a digest of what is kept of them: the next list
//! starts at that second again (for what was updated in it after the read), and
//! one of those it brings unchanged is skipped (a merged pull request's commits
//! never change), not read again.
//!
//! With `github.api = "graphql"` a first sync reads only what it keeps:
//! `pullRequests(states: MERGED)`, newest update first, back to the lookback
//! window; then just the REST list's first page, for its `ETag` and for anything
//! updated meanwhile. The closed pull requests that are not kept (most of them)
//! are never listed.
//! - `lead_time_start = "commit"`: those with a rework label (the `labels`
//!   filter), 100 a page with their labels (one point).
//! - PR-based starts: every merged pull request with its first 100 commits and
//!   without its labels. The listing rides on the pages steps 1 and 2 read anyway
//!   ([`riding_pulls!`], 47 a page: the deployment and history pages stay one
//!   point each), then goes on where they ended, 100 a page (one point); the
//!   pull requests with a rework label come again from the `labels` filter, 74 a
//!   page with their labels and commits (one point), and replace the others'
//!   record of them.
//!
//! Each pull request also brings its opening (`createdAt`); its first review
//! (where `pickup` ends and `review` starts) is read apart, for those merged
//! within the longest window (`reviews.rs`): after the GraphQL listing, 149 a
//! point, or with each one the REST list brings.

use super::client::{Endpoint, Pages, MAX_PAGES, PER_PAGE};
use super::models::{self, PageInfo, Skip, WirePull};
use super::{GithubError, RepoSync};
use crate::config::GithubApi;
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{CommitSha, PullRequest, Timestamp};
use crate::dora::LeadTimeStart;
use crate::sources::SourceError;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Labels read per pull request through GraphQL (more than any pull request
/// carries in practice; a rework label past them is missed and logged).
pub const LABELS_PER_PULL: u32 = 20;

/// A query of merged pull requests, newest update first, named `$name`, with
/// the variables `$variables` and the fields `$fields` per pull request beyond
/// the ones every such query asks.
macro_rules! merged_pulls_query {
    ($name:literal, $variables:literal, $fields:literal) => {
        concat!(
            "\nquery ",
            $name,
            "($owner: String!, $name: String!, $labels: [String!], $first: Int!",
            $variables,
            ", $after: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequests(labels: $labels, states: [MERGED], first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number
        createdAt
        updatedAt
        mergedAt
        mergeCommit { oid }
",
            $fields,
            "      }
    }
  }
}
"
        )
    };
}

/// Merged pull requests with their labels, newest update first (a first sync
/// with GraphQL: the rework labels under `lead_time_start = "commit"`).
const MERGED_PULLS_QUERY: &str = merged_pulls_query!(
    "MergedPulls",
    ", $labelsPerPull: Int!",
    "        labels(first: $labelsPerPull) { totalCount nodes { name } }\n"
);

/// [`MERGED_PULLS_QUERY`] with each pull request's commits (the rework labels
/// under a PR-based lead-time start): [`PULLS_WITH_COMMITS_PER_PAGE`] pull
/// requests a page, so that the page, its labels and its commits stay one point
/// (GitHub's formula divides 1 + 74 + 74 = 149 requests by 100 and rounds to 1).
/// First reviews are not asked here: [`super::reviews`] reads those that can
/// matter, 149 a point.
const MERGED_PULLS_WITH_COMMITS_QUERY: &str = merged_pulls_query!(
    "MergedPullsWithCommits",
    ", $labelsPerPull: Int!, $commitsPerPull: Int!",
    "        labels(first: $labelsPerPull) { totalCount nodes { name } }
        commits(first: $commitsPerPull) { totalCount nodes { commit { oid authoredDate } } }\n"
);

/// Every merged pull request with its commits, without its labels (a PR-based
/// lead-time start; the labels that matter come from the rework listing): 100
/// a page, one point (1 + 100 = 101 requests). Where the listing that rode on
/// the deployment and history pages stopped, this goes on.
const MERGED_PULL_COMMITS_QUERY: &str = merged_pulls_query!(
    "MergedPullCommits",
    ", $commitsPerPull: Int!",
    "        commits(first: $commitsPerPull) { totalCount nodes { commit { oid authoredDate } } }\n"
);

/// Pull requests a page of [`MERGED_PULLS_WITH_COMMITS_QUERY`] asks for.
pub const PULLS_WITH_COMMITS_PER_PAGE: u32 = 74;

/// Commits read inline per pull request; a pull request with more has its
/// commits read through REST (`/pulls/{n}/commits`).
pub const COMMITS_PER_PULL: u32 = 100;

/// The merged pull requests with their commits as one more field of another
/// query's `repository` (`ridingPulls`; variables `$pullsFirst`, `$pullsAfter`
/// and `$commitsPerPull`): the listing of [`MERGED_PULL_COMMITS_QUERY`], in
/// pages of [`PULLS_RIDING_PER_PAGE`], on the pages a first sync reads anyway.
macro_rules! riding_pulls {
    () => {
        "    ridingPulls: pullRequests(states: [MERGED], first: $pullsFirst, after: $pullsAfter, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes { number createdAt updatedAt mergedAt mergeCommit { oid } commits(first: $commitsPerPull) { totalCount nodes { commit { oid authoredDate } } } }
    }
"
    };
}
pub(super) use riding_pulls;

/// Pull requests a riding page asks for: the deployment and history pages cost
/// 101 requests (a connection of 100, one connection under each of its nodes),
/// and GitHub rounds up to 149 to one point, which leaves 48: this listing's
/// connection and the commits connection of each of its 47 pull requests.
pub const PULLS_RIDING_PER_PAGE: u32 = 47;

#[derive(Deserialize)]
struct PullsData {
    repository: Option<PullsRepository>,
}

#[derive(Deserialize)]
struct PullsRepository {
    #[serde(rename = "pullRequests")]
    pull_requests: PullConnection,
}

#[derive(Deserialize)]
struct PullConnection {
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
    nodes: Vec<serde_json::Value>,
}

/// A pull request's commits and their earliest author date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PullCommits {
    pub(super) shas: Vec<CommitSha>,
    pub(super) first_commit_at: Option<Timestamp>,
}

impl PullCommits {
    fn add(&mut self, sha: CommitSha, author_date: Timestamp) {
        self.first_commit_at = Some(
            self.first_commit_at
                .map_or(author_date, |first| first.min(author_date)),
        );
        self.shas.push(sha);
    }
}

/// One pull request node, with its commits when the query asked for them and
/// they all came inline.
pub(super) fn graphql_pull(
    value: serde_json::Value,
) -> Result<(WirePull, Option<PullCommits>), Skip> {
    #[derive(Deserialize)]
    struct Node {
        number: u64,
        #[serde(rename = "createdAt", default)]
        created_at: Option<String>,
        #[serde(rename = "updatedAt")]
        updated_at: String,
        #[serde(rename = "mergedAt")]
        merged_at: Option<String>,
        #[serde(rename = "mergeCommit")]
        merge_commit: Option<Oid>,
        labels: Option<Labels>,
        commits: Option<Commits>,
    }
    #[derive(Deserialize)]
    struct Oid {
        oid: String,
    }
    #[derive(Deserialize)]
    struct Labels {
        #[serde(rename = "totalCount")]
        total_count: usize,
        nodes: Vec<Label>,
    }
    #[derive(Deserialize)]
    struct Label {
        name: String,
    }
    #[derive(Deserialize)]
    struct Commits {
        #[serde(rename = "totalCount")]
        total_count: usize,
        nodes: Vec<PullCommitNode>,
    }
    #[derive(Deserialize)]
    struct PullCommitNode {
        commit: CommitNode,
    }
    #[derive(Deserialize)]
    struct CommitNode {
        oid: String,
        #[serde(rename = "authoredDate")]
        authored_date: String,
    }
    let node: Node =
        serde_json::from_value(value).map_err(|e| format!("unexpected pull request: {e}"))?;
    let time = |text: &str, field: &str| {
        Timestamp::parse_rfc3339(text).map_err(|e| format!("{field}: {e}"))
    };
    let labels = node.labels.map_or_else(Vec::new, |l| {
        if l.total_count > l.nodes.len() {
            tracing::warn!(
                number = node.number,
                labels = l.total_count,
                "a pull request with more labels than are read"
            );
        }
        l.nodes.into_iter().map(|n| n.name).collect()
    });
    let commits = match node.commits {
        Some(list) if list.total_count <= list.nodes.len() => {
            let mut commits = PullCommits::default();
            for node in list.nodes {
                let sha = CommitSha::parse(&node.commit.oid)
                    .map_err(|e| format!("commits.commit.oid: {e}"))?;
                commits.add(sha, time(&node.commit.authored_date, "authoredDate")?);
            }
            Some(commits)
        }
        // More than came inline: read through REST.
        _ => None,
    };
    let pull = WirePull {
        number: node.number,
        created_at: node
            .created_at
            .as_deref()
            .map(|t| time(t, "createdAt"))
            .transpose()?,
        updated_at: time(&node.updated_at, "updatedAt")?,
        merged_at: node
            .merged_at
            .as_deref()
            .map(|t| time(t, "mergedAt"))
            .transpose()?,
        merge_commit_sha: node
            .merge_commit
            .map(|c| CommitSha::parse(&c.oid).map_err(|e| format!("mergeCommit.oid: {e}")))
            .transpose()?,
        labels,
        // Read apart, for the pull requests whose stages it can decide
        // (`reviews.rs`).
        first_review: None,
    };
    Ok((pull, commits))
}

/// The cursor endpoint name's base; the name also carries `lead_time_start` and
/// the rework labels (what decides which pull requests are kept).
pub const CURSOR: &str = "pulls";

/// The most commits GitHub lists for one pull request (its documented cap).
pub const MAX_PULL_COMMITS: usize = 250;

/// Where the listing of every merged pull request stands while it rides on the
/// deployment and history pages of a first sync ([`riding_pulls!`]): what it
/// brought, and where step 4 goes on.
#[derive(Debug)]
pub(super) struct RidingPulls {
    stop_before: Timestamp,
    after: Option<String>,
    done: bool,
    found: Vec<(WirePull, Option<PullCommits>)>,
}

/// Which merged pull requests a GraphQL listing keeps, and what it reads of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Those with a rework label, with their labels (and their commits when
    /// `with_commits`).
    Rework { with_commits: bool },
    /// Every one, with its commits and without its labels.
    All,
}

impl RepoSync<'_> {
    /// The cursor key of step 4.
    fn pulls_cursor_key(&self) -> CursorKey {
        let start = lead_time_start_name(self.settings.lead_time_start);
        let labels: Vec<&str> = self
            .settings
            .rework_labels
            .iter()
            .map(|l| l.as_str())
            .collect();
        let name = super::cursor_name(
            CURSOR,
            &[
                ("lead_time_start", start.to_owned()),
                ("rework_labels", labels.join(",")),
            ],
        );
        CursorKey::new(self.repository.clone(), name)
    }

    /// Before step 1: when step 4 has its first sync through GraphQL under a
    /// PR-based lead-time start, its listing of every merged pull request rides
    /// on the deployment and history pages of steps 1 and 2 (free: see
    /// [`PULLS_RIDING_PER_PAGE`]); step 4 goes on where it stopped.
    pub(super) async fn start_riding_pulls(&self) -> Result<(), SourceError> {
        if self.settings.api != GithubApi::Graphql
            || self.settings.lead_time_start == LeadTimeStart::Commit
        {
            return Ok(());
        }
        let key = self.pulls_cursor_key();
        let cursor = self.cursor(&key).await?;
        if cursor.is_none() {
            if let Ok(mut riding) = self.riding.lock() {
                *riding = Some(RidingPulls {
                    stop_before: self.lookback_start(),
                    after: None,
                    done: false,
                    found: Vec::new(),
                });
            }
        }
        Ok(())
    }

    /// Adds to `variables` those of the riding listing's next page; `false`
    /// when no listing rides (the page query then leaves [`riding_pulls!`] out).
    pub(super) fn ride(&self, variables: &mut serde_json::Value) -> bool {
        let Ok(riding) = self.riding.lock() else {
            return false;
        };
        match riding.as_ref() {
            Some(riding) if !riding.done => {
                variables["pullsFirst"] = json!(PULLS_RIDING_PER_PAGE);
                variables["pullsAfter"] = json!(riding.after);
                variables["commitsPerPull"] = json!(COMMITS_PER_PULL);
                true
            }
            _ => false,
        }
    }

    /// Takes the riding listing's page from the answer of a page query that
    /// carried it (`repository.ridingPulls`).
    pub(super) fn rode(&self, page: Option<serde_json::Value>) {
        let Some(page) = page.filter(|p| !p.is_null()) else {
            return;
        };
        let connection: PullConnection = match serde_json::from_value(page) {
            Ok(connection) => connection,
            Err(e) => {
                // Step 4 goes on from the last page that could be read.
                tracing::warn!(
                    repository = %self.repository,
                    "unexpected riding pull requests: {e}"
                );
                return;
            }
        };
        let pulls: Vec<_> = connection
            .nodes
            .into_iter()
            .filter_map(|node| self.item(Endpoint::Graphql, graphql_pull(node)))
            .collect();
        let Ok(mut riding) = self.riding.lock() else {
            return;
        };
        let Some(riding) = riding.as_mut() else {
            return;
        };
        for (pull, commits) in pulls {
            if pull.updated_at < riding.stop_before {
                riding.done = true;
                break;
            }
            if pull.merged_at.is_some() {
                riding.found.push((pull, commits));
            }
        }
        match connection.page_info.next() {
            Some(cursor) if !riding.done => riding.after = Some(cursor),
            _ => riding.done = true,
        }
    }

    /// Step 4.
    pub(super) async fn sync_pulls(&self) -> Result<(), SourceError> {
        let all_merged = self.settings.lead_time_start != LeadTimeStart::Commit;
        if !all_merged && self.settings.rework_labels.is_empty() {
            return Ok(());
        }
        let key = self.pulls_cursor_key();
        let cursor = self.cursor(&key).await?;
        let stop_before = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        let url = self.url(
            "/pulls",
            &[
                ("state", "closed"),
                ("sort", "updated"),
                ("direction", "desc"),
                ("per_page", &PER_PAGE.to_string()),
            ],
        );
        let first = cursor.is_none();
        let (etag, at_since) = cursor
            .and_then(|c| c.opaque)
            .map_or((None, BTreeMap::new()), |opaque| split_opaque(&opaque));
        let mut pages = Pages::new(Endpoint::Pulls, url.clone(), etag);
        let mut listed = HashSet::new();
        // Every pull request of the REST list with its digest, for the next
        // sync's cursor.
        let mut digests: Vec<(u64, Timestamp, String)> = Vec::new();
        let mut newest: Option<Timestamp> = None;
        let mut batch = SyncBatch::new(self.repository.clone());
        let through_graphql = first && self.settings.api == GithubApi::Graphql;
        if through_graphql {
            let found = if all_merged {
                self.all_merged_pulls(stop_before).await?
            } else {
                let kept = Kept::Rework {
                    with_commits: false,
                };
                self.merged_pulls(kept, None, stop_before).await?
            };
            // The first reviews that can matter, 149 a point (`reviews.rs`).
            let reviews = if all_merged {
                let wanted: Vec<u64> = found
                    .iter()
                    .map(|(pull, _)| pull)
                    .filter(|pull| self.reads_review(pull, self.review_window_start()))
                    .map(|pull| pull.number)
                    .collect();
                self.first_reviews(&wanted).await?
            } else {
                BTreeMap::new()
            };
            for (mut pull, commits) in found {
                // Read: the REST page below skips it (and does not read its
                // commits again).
                if !listed.insert(pull.number) {
                    continue;
                }
                newest = newest.max(Some(pull.updated_at));
                let commits = match commits {
                    Some(commits) => commits,
                    None if all_merged => {
                        self.check_cancelled()?;
                        self.pull_commits(pull.number).await?
                    }
                    None => PullCommits::default(),
                };
                if let Some(review) = reviews.get(&pull.number) {
                    pull.first_review = Some(*review);
                }
                batch.pull_requests.push(self.pull_request(pull, commits));
            }
        }
        'list: while let Some(body) = self.next_page(&mut pages).await? {
            if through_graphql {
                // GraphQL read the window; this page gives the ETag and what
                // was updated meanwhile.
                pages.stop();
            }
            for value in models::array(&body, &url)? {
                let Some(pull) = self.item(Endpoint::Pulls, value.and_then(models::pull)) else {
                    continue;
                };
                if pull.updated_at < stop_before {
                    break 'list;
                }
                let digest = pull_digest(&pull);
                digests.push((pull.number, pull.updated_at, digest.clone()));
                if !listed.insert(pull.number) {
                    continue;
                }
                newest = newest.max(Some(pull.updated_at));
                if pull.merged_at.is_none() {
                    continue;
                }
                if pull.updated_at == stop_before && at_since.get(&pull.number) == Some(&digest) {
                    // The previous sync listed it as it is (the list starts at
                    // its `since` again, for what was updated in that second
                    // after it read): kept, and a merged pull request's
                    // commits never change.
                    continue;
                }
                if !all_merged && !self.has_rework_label(&pull) {
                    continue;
                }
                let (pull, commits) = if all_merged {
                    self.check_cancelled()?;
                    let commits = self.pull_commits(pull.number).await?;
                    let from = self.review_window_start();
                    (self.with_first_review(pull, from).await?, commits)
                } else {
                    (pull, PullCommits::default())
                };
                batch.pull_requests.push(self.pull_request(pull, commits));
            }
        }
        if pages.not_modified {
            return Ok(());
        }
        let since = newest.map_or(stop_before, |n| n.max(stop_before));
        let mut at_new_since: BTreeMap<u64, String> = if since == stop_before {
            at_since
        } else {
            BTreeMap::new()
        };
        for (number, updated_at, digest) in digests {
            if updated_at == since {
                at_new_since.insert(number, digest);
            }
        }
        batch.cursors.push((
            key,
            Cursor {
                since: Some(since),
                opaque: join_opaque(pages.etag.as_deref(), &at_new_since),
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }

    /// Whether `pull` carries a configured rework label (case-insensitively).
    fn has_rework_label(&self, pull: &WirePull) -> bool {
        pull.labels.iter().any(|label| {
            self.settings
                .rework_labels
                .iter()
                .any(|r| r.as_str().eq_ignore_ascii_case(label))
        })
    }

    /// The kept form of a merged pull request and its commits.
    pub(super) fn pull_request(&self, pull: WirePull, commits: PullCommits) -> PullRequest {
        PullRequest {
            repository: self.repository.clone(),
            number: pull.number,
            merged_at: pull.merged_at,
            merge_commit_sha: pull.merge_commit_sha,
            labels: pull.labels,
            commits: commits.shas,
            first_commit_at: commits.first_commit_at,
            created_at: pull.created_at,
            first_review_at: pull.first_review.flatten(),
        }
    }

    /// Every merged pull request updated at or after `stop_before` with its
    /// commits (when they all came inline), newest update first, once each: what
    /// rode on the pages of steps 1 and 2, then the rest of the listing, and those
    /// with a rework label read again with their labels (which the others are
    /// read without).
    async fn all_merged_pulls(
        &self,
        stop_before: Timestamp,
    ) -> Result<Vec<(WirePull, Option<PullCommits>)>, SourceError> {
        let riding = self.riding.lock().ok().and_then(|mut r| r.take());
        let (mut all, after, done) = match riding {
            Some(riding) => (riding.found, riding.after, riding.done),
            None => (Vec::new(), None, false),
        };
        if !done {
            all.extend(self.merged_pulls(Kept::All, after, stop_before).await?);
        }
        if !self.settings.rework_labels.is_empty() {
            let kept = Kept::Rework { with_commits: true };
            let labelled = self.merged_pulls(kept, None, stop_before).await?;
            let numbers: HashMap<u64, usize> = all
                .iter()
                .enumerate()
                .rev()
                .map(|(index, (pull, _))| (pull.number, index))
                .collect();
            for (pull, commits) in labelled {
                match numbers.get(&pull.number) {
                    Some(&index) => all[index] = (pull, commits),
                    None => all.push((pull, commits)),
                }
            }
        }
        Ok(all)
    }

    /// The merged pull requests updated at or after `stop_before` that `kept`
    /// keeps, through GraphQL, newest update first, from the page after `after`;
    /// each with its commits when `kept` reads them and they all came inline.
    async fn merged_pulls(
        &self,
        kept: Kept,
        after: Option<String>,
        stop_before: Timestamp,
    ) -> Result<Vec<(WirePull, Option<PullCommits>)>, SourceError> {
        let labels: Option<Vec<&str>> = match kept {
            Kept::Rework { .. } => Some(
                self.settings
                    .rework_labels
                    .iter()
                    .map(|l| l.as_str())
                    .collect(),
            ),
            Kept::All => None,
        };
        let query = match kept {
            Kept::Rework {
                with_commits: false,
            } => MERGED_PULLS_QUERY,
            Kept::Rework { with_commits: true } => MERGED_PULLS_WITH_COMMITS_QUERY,
            Kept::All => MERGED_PULL_COMMITS_QUERY,
        };
        let url = self.client.graphql_url();
        let mut after = after;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            self.check_cancelled()?;
            let mut variables = json!({
                "owner": self.repository.owner(),
                "name": self.repository.name(),
                "labels": labels,
                "first": PER_PAGE,
                "after": after,
            });
            match kept {
                Kept::Rework {
                    with_commits: false,
                } => {
                    variables["labelsPerPull"] = json!(LABELS_PER_PULL);
                }
                Kept::Rework { with_commits: true } => {
                    variables["first"] = json!(PULLS_WITH_COMMITS_PER_PAGE);
                    variables["labelsPerPull"] = json!(LABELS_PER_PULL);
                    variables["commitsPerPull"] = json!(COMMITS_PER_PULL);
                }
                Kept::All => {
                    variables["commitsPerPull"] = json!(COMMITS_PER_PULL);
                }
            }
            let page: PullsData = self
                .query("pull requests", query, variables, &["first"])
                .await?;
            let Some(repository) = page.repository else {
                return Err(GithubError::NotFound {
                    url: format!("{url} (repository {})", self.repository),
                }
                .into());
            };
            let connection = repository.pull_requests;
            let mut older = false;
            for node in connection.nodes {
                let Some((pull, commits)) = self.item(Endpoint::Graphql, graphql_pull(node)) else {
                    continue;
                };
                if pull.updated_at < stop_before {
                    older = true;
                    break;
                }
                let wanted = match kept {
                    Kept::Rework { .. } => self.has_rework_label(&pull),
                    Kept::All => true,
                };
                if pull.merged_at.is_some() && wanted {
                    out.push((pull, commits));
                }
            }
            match connection.page_info.next() {
                Some(cursor) if !older => after = Some(cursor),
                _ => return Ok(out),
            }
        }
        Err(GithubError::TooManyPages {
            url: format!("{url} (pull requests of {})", self.repository),
            limit: MAX_PAGES,
        }
        .into())
    }

    /// The pull request's commits (`/pulls/{n}/commits`, at most
    /// [`MAX_PULL_COMMITS`]) and their earliest author date.
    pub(super) async fn pull_commits(&self, number: u64) -> Result<PullCommits, SourceError> {
        let url = self.url(
            &format!("/pulls/{number}/commits"),
            &[("per_page", &PER_PAGE.to_string())],
        );
        let mut pages = Pages::new(Endpoint::PullCommits, url.clone(), None);
        let mut commits = PullCommits::default();
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                if let Some(commit) =
                    self.item(Endpoint::PullCommits, value.and_then(models::commit))
                {
                    commits.add(commit.sha, commit.author_date);
                }
            }
            if commits.shas.len() >= MAX_PULL_COMMITS {
                pages.stop();
            }
        }
        Ok(commits)
    }
}

/// The most pull requests updated at the cursor's `since` that its `opaque`
/// remembers (more, in one second, are read again).
pub const MAX_REMEMBERED_AT_SINCE: usize = 20;

/// What the cursor remembers of a pull request listed at its `since`: a digest
/// of what the list says of it and what is kept from it (`merged_at`, merge
/// commit, labels).
fn pull_digest(pull: &WirePull) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "{:?}|{:?}|{:?}",
        pull.merged_at.map(|t| t.0),
        pull.merge_commit_sha.map(|s| s.to_string()),
        pull.labels
    ));
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cursor's `opaque`: the first page's `ETag`, then (after a line break,
/// which no header value holds) the pull requests listed at `since` with their
/// digests, `number=digest` separated by commas.
fn join_opaque(etag: Option<&str>, at_since: &BTreeMap<u64, String>) -> Option<String> {
    let etag = etag?;
    if at_since.is_empty() || at_since.len() > MAX_REMEMBERED_AT_SINCE {
        return Some(etag.to_owned());
    }
    let listed: Vec<String> = at_since
        .iter()
        .map(|(number, digest)| format!("{number}={digest}"))
        .collect();
    Some(format!("{etag}\n{}", listed.join(",")))
}

/// [`join_opaque`] read back (an `opaque` without a line break is an `ETag`
/// alone, as earlier versions kept it).
fn split_opaque(opaque: &str) -> (Option<String>, BTreeMap<u64, String>) {
    let (etag, listed) = opaque.split_once('\n').unwrap_or((opaque, ""));
    let at_since = listed
        .split(',')
        .filter_map(|entry| {
            let (number, digest) = entry.split_once('=')?;
            Some((number.parse().ok()?, digest.to_owned()))
        })
        .collect();
    (Some(etag.to_owned()).filter(|e| !e.is_empty()), at_since)
}

/// `lead_time_start` as the configuration and the cursor names spell it.
pub(super) fn lead_time_start_name(start: LeadTimeStart) -> &'static str {
    match start {
        LeadTimeStart::Commit => "commit",
        LeadTimeStart::PrFirstCommit => "pr_first_commit",
        LeadTimeStart::PrMerged => "pr_merged",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(number: u64, labels: &[&str]) -> WirePull {
        WirePull {
            number,
            created_at: None,
            first_review: None,
            updated_at: Timestamp(1_000),
            merged_at: Some(Timestamp(900)),
            merge_commit_sha: Some(CommitSha::from_bytes([7; 20])),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    #[test]
    fn the_cursor_keeps_the_etag_and_the_pull_requests_listed_at_its_since() {
        let at_since: BTreeMap<u64, String> =
            [(12, pull_digest(&pull(12, &[]))), (15, "ab".into())]
                .into_iter()
                .collect();
        let opaque = join_opaque(Some("W/\"abc\""), &at_since).unwrap();
        assert_eq!(
            split_opaque(&opaque),
            (Some("W/\"abc\"".to_owned()), at_since)
        );
        // What earlier versions kept: the ETag alone.
        assert_eq!(
            split_opaque("\"abc\""),
            (Some("\"abc\"".to_owned()), BTreeMap::new())
        );
        assert_eq!(
            join_opaque(Some("\"e\""), &BTreeMap::new()).as_deref(),
            Some("\"e\"")
        );
        assert_eq!(join_opaque(None, &BTreeMap::new()), None);
        // Too many in one second: none remembered (read again).
        let many: BTreeMap<u64, String> = (0..=MAX_REMEMBERED_AT_SINCE as u64)
            .map(|n| (n, "ab".into()))
            .collect();
        assert_eq!(join_opaque(Some("\"e\""), &many).as_deref(), Some("\"e\""));
    }

    #[test]
    fn a_digest_changes_with_what_is_stored_of_a_pull_request() {
        let digest = pull_digest(&pull(12, &["hotfix"]));
        assert_eq!(digest, pull_digest(&pull(12, &["hotfix"])));
        assert_ne!(digest, pull_digest(&pull(12, &[])));
        let mut other = pull(12, &["hotfix"]);
        other.merge_commit_sha = Some(CommitSha::from_bytes([8; 20]));
        assert_ne!(digest, pull_digest(&other));
        other = pull(12, &["hotfix"]);
        other.merged_at = None;
        assert_ne!(digest, pull_digest(&other));
    }
}
