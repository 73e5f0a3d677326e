//! Step 2: change sets. For every consecutive pair `(P, D)` of successful
//! deployments to a production environment whose compare the ledger lacks
//! (`Ledger::missing_compares`, in deploy-time order), the commits `D` shipped.
//!
//! With `github.api = "graphql"` the deployed history is read first
//! (`history.rs`) and the engine walks it; only the pairs it cannot decide get a
//! compare, and a digest of the pairs left (the `history` cursor) makes a sync
//! with no new deployment read nothing. With `"rest"` every pair is one
//! `compare/P.sha...D.sha` with all its pages, kept as a `Compare` plus one
//! `CommitRecord` per commit (parents and author date), which the engine turns
//! into changes (`docs/computation.md` § Change sets).
//!
//! A kept compare is never read again, and the ledger says which pairs are
//! missing. Compares are written in batches of [`COMPARES_PER_BATCH`], so an
//! interrupted first sync keeps most of its work. A pair GitHub cannot compare
//! (a sha that no longer exists: 404 or 422) is skipped and logged; the engine
//! then walks the kept commit graph instead.

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models;
use super::{GithubError, RepoSync};
use crate::config::GithubApi;
use crate::domain::batch::{CommitRecord, Cursor, SyncBatch};
use crate::domain::{CommitSha, Compare, CompareStatus, Environment};
use crate::sources::SourceError;
use std::collections::HashSet;

/// Compares written per transaction.
pub const COMPARES_PER_BATCH: usize = 25;

/// The most compares read in one sync of one repository; the rest wait for the
/// next sync (a first sync of a busy repository over 90 days needs a few hundred).
pub const MAX_COMPARES_PER_SYNC: usize = 2_000;

/// The most pages of one compare (100 commits each). A deployment shipping more
/// than 10,000 commits is kept with the first 10,000 and logged.
pub const MAX_COMPARE_PAGES: usize = 100;

impl RepoSync<'_> {
    /// Step 2.
    pub(super) async fn sync_changes(&self) -> Result<(), SourceError> {
        let repository = self.repository.clone();
        let missing = self.ledger().missing_compares(repository).await?;
        let mut pairs = self.production_pairs(missing);
        // With GraphQL, history decides most change sets; a digest of the pairs
        // still without a compare says whether anything changed since it last did.
        let history = (self.settings.api == GithubApi::Graphql).then(|| self.history_cursor_key());
        if let Some(key) = &history {
            if pairs.is_empty() {
                return Ok(());
            }
            let cursor = self.cursor(key).await?;
            if cursor.and_then(|c| c.opaque) == Some(digest(&pairs)) {
                return Ok(());
            }
            let Some(undecided) = self.sync_history().await? else {
                // Bounded: no compare for what history may still decide.
                return Ok(());
            };
            let undecided: HashSet<(CommitSha, CommitSha)> = undecided.into_iter().collect();
            pairs.retain(|pair| undecided.contains(pair));
        }
        let complete = pairs.len() <= MAX_COMPARES_PER_SYNC;
        if !complete {
            tracing::info!(
                repository = %self.repository,
                missing = pairs.len(),
                "reading the first {MAX_COMPARES_PER_SYNC} missing change sets now, the rest \
                 on the next syncs"
            );
            pairs.truncate(MAX_COMPARES_PER_SYNC);
        }
        let mut batch = SyncBatch::new(self.repository.clone());
        for (base, head) in pairs {
            self.check_cancelled()?;
            match self.compare(base, head).await {
                Ok((compare, commits)) => {
                    batch.compares.push(compare);
                    batch.commits.extend(commits);
                }
                Err(GithubError::NotFound { url })
                | Err(GithubError::Status {
                    url, status: 422, ..
                }) => {
                    self.skipped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        repository = %self.repository,
                        %url,
                        "GitHub cannot compare these deployments (a sha is gone); the engine \
                         uses the kept history for this change set"
                    );
                }
                Err(error) => return Err(error.into()),
            }
            if batch.compares.len() >= COMPARES_PER_BATCH {
                let full = std::mem::replace(&mut batch, SyncBatch::new(self.repository.clone()));
                self.apply(full).await?;
            }
        }
        self.apply(batch).await?;
        if let (Some(key), true) = (history, complete) {
            // What is left has been decided as far as GitHub can: until a
            // deployment changes the list, nothing is read again.
            let repository = self.repository.clone();
            let left = self.ledger().missing_compares(repository).await?;
            let mut batch = SyncBatch::new(self.repository.clone());
            batch.cursors.push((
                key,
                Cursor {
                    since: None,
                    opaque: Some(digest(&self.production_pairs(left))),
                    updated_at: self.context.now,
                },
            ));
            self.apply(batch).await?;
        }
        Ok(())
    }

    /// The distinct `(base, head)` pairs of production environments.
    fn production_pairs(
        &self,
        missing: Vec<(Environment, CommitSha, CommitSha)>,
    ) -> Vec<(CommitSha, CommitSha)> {
        let mut seen = HashSet::new();
        missing
            .into_iter()
            .filter(|(environment, _, _)| self.production_index(environment).is_some())
            .map(|(_, base, head)| (base, head))
            .filter(|pair| seen.insert(*pair))
            .collect()
    }

    /// All pages of `compare/{base}...{head}`.
    async fn compare(
        &self,
        base: CommitSha,
        head: CommitSha,
    ) -> Result<(Compare, Vec<CommitRecord>), GithubError> {
        let url = self.url(
            &format!("/compare/{base}...{head}"),
            &[("per_page", &PER_PAGE.to_string())],
        );
        let mut pages = Pages::new(Endpoint::Compare, url.clone(), None);
        let mut status = None;
        let mut total = None;
        let mut commits: Vec<CommitRecord> = Vec::new();
        let mut read = 0;
        while let Some(body) = self.next_page(&mut pages).await? {
            let (page_status, page_total, items) =
                models::compare_page(&body, &url, self.client.redactor())?;
            status = status.or(Some(page_status));
            total = total.or(page_total);
            let page_was_empty = items.is_empty();
            commits.extend(
                items
                    .into_iter()
                    .filter_map(|value| self.item(Endpoint::Compare, models::commit(value))),
            );
            read += 1;
            let complete = total.is_some_and(|t| commits.len() as u64 >= t);
            if complete || page_was_empty {
                pages.stop();
            } else if read >= MAX_COMPARE_PAGES {
                tracing::warn!(
                    repository = %self.repository,
                    %url,
                    total_commits = total,
                    "a deployment ships more commits than are read for one change set; \
                     keeping the first {}",
                    commits.len()
                );
                pages.stop();
            } else if !pages.has_next() && total.is_some() {
                // More commits than read and no `Link`: ask for the next page by
                // number, as GitHub documents for compare.
                pages.set_next(format!("{url}&page={}", read + 1));
            }
        }
        let status = status.unwrap_or(CompareStatus::Identical);
        // `behind` and `identical` ship nothing, whatever a server lists.
        if matches!(status, CompareStatus::Behind | CompareStatus::Identical) {
            commits.clear();
        }
        let compare = Compare {
            base,
            head,
            status,
            commits: commits.iter().map(|c| c.sha).collect(),
        };
        Ok((compare, commits))
    }
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
