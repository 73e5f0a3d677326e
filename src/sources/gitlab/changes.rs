//! Step 2: change sets from the repository's commit graph, as the GitHub source
//! reads them through GraphQL history: the commits the deployments shipped are
//! read as pages of the commits list (`GET /repository/commits?ref_name=<sha>`,
//! 100 commits a page with their `parent_ids`), kept, and the engine walks them
//! (`docs/computation.md` § Change sets). A compare is read for a pair the
//! history cannot decide ([`crate::dora::uncovered_change_sets`]): a deployed
//! sha GitLab no longer has, a walk the page bounds stopped; and instead of the
//! history when a single pair is undecided (a sync after one deployment).
//!
//! How much is read: a listing starts at the newest undecided deployed sha and
//! pages back, newest commit first, without asking which change sets are
//! decided until it has passed the oldest undecided pair's base deployment, or a
//! page brought nothing new; from then on it asks after every page and stops as
//! soon as everything is decided. So a first sync reads the window's history
//! about once.
//!
//! One undecided pair is one compare: the list is ordered by commit date, and a
//! merge's second parent brings in branch commits committed long before the
//! previous deployment, which the newest 100 commits of the new sha need not
//! hold (the group: 4 of 50 projects needed a second page); a compare
//! lists every commit `head` has and `base` has not, however old, in one
//! answer. `since=` cannot help (it would leave out exactly those old commits)
//! and `per_page` stops at 100. With two or more undecided pairs the history is
//! read (one page usually decides many of them, where each compare decides one).
//! A compare GitLab cannot give (`404`: a sha is gone; a body over the client's
//! bound) falls back to the history.
//!
//! A compare (`GET /repository/compare?from=base&to=head`) lists the commits
//! `head` has and `base` has not; GitLab gives no status, so an empty one is
//! compared the other way round: commits there make the pair `behind` (a
//! rollback), none `identical`. The engine counts only those of its commits no
//! earlier deployment shipped: with the base's history known, the walk's change
//! set.
//!
//! Cursor `history?environments=…`: `opaque` is a digest of the pairs of
//! production deployments that still lack a compare once this step succeeded;
//! while the ledger lists the same pairs (no deployment succeeded since), the
//! step reads nothing.

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models;
use super::{cursor_name, GitlabError, ProjectSync};
use crate::domain::batch::{CommitRecord, Cursor, CursorKey, SyncBatch};
use crate::domain::{CommitSha, Compare, CompareStatus, Environment, Timestamp};
use crate::dora::UncoveredChangeSet;
use crate::sources::SourceError;
use std::collections::HashSet;

/// The cursor endpoint name's base (the name also carries the production
/// environments).
pub const CURSOR: &str = "history";

/// The most history pages one project sync reads (100,000 commits); the next
/// sync goes on from the edge of what was read.
pub const MAX_HISTORY_PAGES_PER_SYNC: usize = 1_000;

/// Pages read after a listing passed the oldest undecided base deployment before
/// the remaining pairs are left to compares.
pub const MAX_PAGES_PAST_BASES: usize = 10;

/// The most compares read in one sync of one project.
pub const MAX_COMPARES_PER_SYNC: usize = 2_000;

/// Compares written per transaction.
pub const COMPARES_PER_BATCH: usize = 25;

/// One listing: the history of `start`, page by page.
struct Listing {
    start: CommitSha,
    pages: Pages,
    done: bool,
    /// Parents of the commits listed so far not listed yet.
    reaches: HashSet<CommitSha>,
}

/// One page of history.
struct HistoryPage {
    commits: Vec<CommitRecord>,
    oldest_committed: Option<Timestamp>,
}

impl ProjectSync<'_> {
    /// Step 2.
    pub(super) async fn sync_changes(&self) -> Result<(), SourceError> {
        let production = self.production();
        let pairs = self.production_pairs(&production).await?;
        if pairs.is_empty() {
            return Ok(());
        }
        let key = self.cursor_key(cursor_name(
            CURSOR,
            &[("environments", production_names(&production))],
        ));
        let cursor = self.cursor(&key).await?;
        if cursor.and_then(|c| c.opaque) == Some(digest(&pairs)) {
            return Ok(());
        }
        let uncovered = self.uncovered(&production).await?;
        // One undecided change set (a sync after one deployment): its compare,
        // one request whatever the graph between the two deployments.
        let mut gone = None;
        if let Some((base, head)) = single_pair(&uncovered) {
            match self.compare(base, head).await {
                Ok((compare, commits)) => {
                    let mut batch = SyncBatch::new(self.repository.clone());
                    batch.compares.push(compare);
                    batch.commits = commits;
                    self.apply(batch).await?;
                    return self.keep_digest(key, &production).await;
                }
                Err(GitlabError::NotFound { url, .. }) => {
                    self.compare_gone(&url);
                    gone = Some((base, head));
                }
                Err(error @ GitlabError::TooLarge { .. }) => tracing::info!(
                    repository = %self.repository,
                    %error,
                    "the compare of the one undecided change set is too large; reading the \
                     history instead"
                ),
                Err(error) => return Err(error.into()),
            }
        }
        let Some(undecided) = self.sync_history(&production, uncovered).await? else {
            return Ok(());
        };
        let mut pairs: Vec<(CommitSha, CommitSha)> = undecided;
        let complete = pairs.len() <= MAX_COMPARES_PER_SYNC;
        pairs.truncate(MAX_COMPARES_PER_SYNC);
        let mut batch = SyncBatch::new(self.repository.clone());
        for (base, head) in pairs {
            self.check_cancelled()?;
            if gone == Some((base, head)) {
                // Its compare was answered `404` above (and counted).
                continue;
            }
            match self.compare(base, head).await {
                Ok((compare, commits)) => {
                    batch.compares.push(compare);
                    batch.commits.extend(commits);
                }
                Err(GitlabError::NotFound { url, .. }) => self.compare_gone(&url),
                Err(error) => return Err(error.into()),
            }
            if batch.compares.len() >= COMPARES_PER_BATCH {
                let full = std::mem::replace(&mut batch, SyncBatch::new(self.repository.clone()));
                self.apply(full).await?;
            }
        }
        self.apply(batch).await?;
        if complete {
            self.keep_digest(key, &production).await?;
        }
        Ok(())
    }

    /// A compare GitLab answered `404` (a deployed sha is gone): counted and
    /// logged; the engine uses the kept history for that change set.
    fn compare_gone(&self, url: &str) {
        self.skipped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            repository = %self.repository,
            %url,
            "GitLab cannot compare these deployments (a sha is gone); the engine uses the \
             kept history for this change set"
        );
    }

    /// Keeps the digest of the production pairs still without a compare as the
    /// cursor `key` (the step is complete).
    async fn keep_digest(
        &self,
        key: CursorKey,
        production: &[Environment],
    ) -> Result<(), SourceError> {
        let left = self.production_pairs(production).await?;
        let mut batch = SyncBatch::new(self.repository.clone());
        batch.cursors.push((
            key,
            Cursor {
                since: None,
                opaque: Some(digest(&left)),
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }

    /// The distinct `(base, head)` pairs of production environments without a
    /// kept compare.
    async fn production_pairs(
        &self,
        production: &[Environment],
    ) -> Result<Vec<(CommitSha, CommitSha)>, SourceError> {
        let missing = self
            .ledger()
            .missing_compares(self.repository.clone())
            .await?;
        let mut seen = HashSet::new();
        Ok(missing
            .into_iter()
            .filter(|(environment, _, _)| {
                production.iter().any(|p| p.matches(environment.as_str()))
            })
            .map(|(_, base, head)| (base, head))
            .filter(|pair| seen.insert(*pair))
            .collect())
    }

    /// Reads the history the undecided change sets need and keeps it; returns the
    /// pairs only a compare can decide, or `None` when the page bound stopped it.
    async fn sync_history(
        &self,
        production: &[Environment],
        mut uncovered: Vec<UncoveredChangeSet>,
    ) -> Result<Option<Vec<(CommitSha, CommitSha)>>, SourceError> {
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
            if keep {
                if let Some(current) = listing.as_ref() {
                    let reached: Vec<String> = wanted
                        .iter()
                        .filter(|sha| current.reaches.contains(*sha))
                        .map(ToString::to_string)
                        .collect();
                    tracing::debug!(
                        repository = %self.repository,
                        start = %current.start,
                        pages,
                        undecided = uncovered.len(),
                        ?reached,
                        "a walk reached parents the listing has not listed yet; reading its \
                         next page"
                    );
                }
            }
            if !keep {
                let start = uncovered
                    .iter()
                    .rev()
                    .flat_map(|u| u.missing.iter())
                    .find(|sha| !started.contains(*sha))
                    .copied();
                let Some(start) = start else { break };
                started.insert(start);
                let url = self.url(
                    "/repository/commits",
                    &[
                        ("ref_name", &start.to_string()),
                        ("per_page", &PER_PAGE.to_string()),
                    ],
                );
                listing = Some(Listing {
                    start,
                    pages: Pages::new(Endpoint::Commits, url),
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
            uncovered = self.uncovered(production).await?;
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
        Ok(Some(uncovered.iter().map(|u| (u.base, u.head)).collect()))
    }

    async fn uncovered(
        &self,
        production: &[Environment],
    ) -> Result<Vec<UncoveredChangeSet>, SourceError> {
        Ok(self
            .ledger()
            .undecided_change_sets(self.repository.clone(), production.to_vec())
            .await?)
    }

    /// The next page of `listing`; `None` when it is done or GitLab does not
    /// know its start (force-pushed away).
    async fn history_page(
        &self,
        listing: &mut Listing,
    ) -> Result<Option<HistoryPage>, SourceError> {
        let first = listing.reaches.is_empty() && !listing.done;
        let body = match self.next_page(&mut listing.pages).await {
            Ok(Some(body)) => body,
            Ok(None) => return Ok(None),
            Err(GitlabError::NotFound { .. }) => {
                tracing::warn!(
                    repository = %self.repository,
                    sha = %listing.start,
                    "GitLab does not know a deployed commit (force-pushed away?); its change \
                     set is left to a compare"
                );
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        let url = "commits";
        let mut commits = Vec::new();
        let mut oldest_committed: Option<Timestamp> = None;
        for value in models::array(&body, url)? {
            let Some((record, committed)) = self.item(Endpoint::Commits, models::commit(value))
            else {
                continue;
            };
            oldest_committed = Some(oldest_committed.map_or(committed, |o| o.min(committed)));
            commits.push(record);
        }
        if commits.is_empty() {
            if first {
                tracing::warn!(
                    repository = %self.repository,
                    sha = %listing.start,
                    "GitLab lists no history for a deployed commit; its change set is left \
                     to a compare"
                );
            }
            listing.pages.stop();
            return Ok(None);
        }
        Ok(Some(HistoryPage {
            commits,
            oldest_committed,
        }))
    }

    /// The change set of `base...head`: one compare, and the reverse one when
    /// it is empty (to tell a rollback from a redeploy).
    async fn compare(
        &self,
        base: CommitSha,
        head: CommitSha,
    ) -> Result<(Compare, Vec<CommitRecord>), GitlabError> {
        let forward = self.compare_commits(base, head).await?;
        let status = if !forward.is_empty() {
            CompareStatus::Ahead
        } else if self.compare_commits(head, base).await?.is_empty() {
            CompareStatus::Identical
        } else {
            CompareStatus::Behind
        };
        let compare = Compare {
            base,
            head,
            status,
            commits: forward.iter().map(|c| c.sha).collect(),
        };
        Ok((compare, forward))
    }

    /// The commits `to` has and `from` has not.
    async fn compare_commits(
        &self,
        from: CommitSha,
        to: CommitSha,
    ) -> Result<Vec<CommitRecord>, GitlabError> {
        let url = self.url(
            "/repository/compare",
            &[("from", &from.to_string()), ("to", &to.to_string())],
        );
        let body = self.get(Endpoint::Compare, &url).await?;
        let values = models::compare_commits(&body, &url)?;
        Ok(values
            .into_iter()
            .filter_map(|value| self.item(Endpoint::Compare, models::commit(value)))
            .map(|(record, _)| record)
            .collect())
    }
}

/// The pair of `uncovered` when it holds one `(base, head)` pair (in one
/// production environment or several).
fn single_pair(uncovered: &[UncoveredChangeSet]) -> Option<(CommitSha, CommitSha)> {
    let (first, rest) = uncovered.split_first()?;
    let pair = (first.base, first.head);
    rest.iter()
        .all(|u| (u.base, u.head) == pair)
        .then_some(pair)
}

/// The production environments as cursor names carry them: lowercase, sorted.
fn production_names(production: &[Environment]) -> String {
    let mut names: Vec<String> = production
        .iter()
        .map(|e| e.as_str().to_ascii_lowercase())
        .collect();
    names.sort();
    names.join(",")
}

/// A short digest of `pairs` (the history cursor's value).
fn digest(pairs: &[(CommitSha, CommitSha)]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (base, head) in pairs {
        hasher.update(base.as_bytes());
        hasher.update(head.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", pairs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RepoName;

    fn pair(environment: &str, base: char, head: char) -> UncoveredChangeSet {
        let sha = |c: char| CommitSha::parse(&c.to_string().repeat(40)).unwrap();
        UncoveredChangeSet {
            repository: RepoName::parse("acme/api").unwrap(),
            environment: Environment::parse(environment).unwrap(),
            base: sha(base),
            base_at: Timestamp(1),
            head: sha(head),
            head_at: Timestamp(2),
            missing: vec![sha(head)],
        }
    }

    #[test]
    fn one_pair_is_one_pair_in_every_environment() {
        assert_eq!(single_pair(&[]), None);
        let one = pair("production", 'a', 'b');
        let expected = Some((one.base, one.head));
        assert_eq!(single_pair(std::slice::from_ref(&one)), expected);
        assert_eq!(
            single_pair(&[one.clone(), pair("live", 'a', 'b')]),
            expected
        );
        assert_eq!(
            single_pair(&[one.clone(), pair("production", 'b', 'c')]),
            None
        );
        assert_eq!(single_pair(&[one, pair("live", 'a', 'c')]), None);
    }
}
