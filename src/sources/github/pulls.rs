//! Step 4: merged pull requests, for two uses:
//! - rework (dora-definitions §2): the merge commit of a merged pull request with a
//!   rework label marks the deployment that ships it as rework;
//! - PR-based lead-time starts: with `lead_time_start = "pr_merged"` every merged
//!   pull request's `merged_at`; with `"pr_first_commit"` also its commits
//!   (`/pulls/{n}/commits`, one request per pull request, at most 250 commits as
//!   GitHub caps that list) and their earliest author date.
//!
//! With the default `lead_time_start = "commit"` only pull requests carrying a
//! rework label are kept, and with no rework labels either, nothing is read.
//! With `pr_merged` the pull request's own commits are not read, so in a
//! merge-commit workflow those commits fall back to their author date; only the
//! merge commit itself starts at `merged_at`.
//!
//! The list is `state=closed&sort=updated&direction=desc`, read until a pull
//! request updated before the cursor. Cursor
//! `pulls?lead_time_start=…&rework_labels=…`: `since` is the newest
//! `updated_at` seen, `opaque` the first page's `ETag`.

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models;
use super::RepoSync;
use crate::domain::{CommitSha, PullRequest, Timestamp};
use crate::dora::LeadTimeStart;
use crate::sources::SourceError;
use crate::store::{Cursor, CursorKey, SyncBatch};
use std::collections::HashSet;

/// The cursor endpoint name's base; the name also carries `lead_time_start` and
/// the rework labels (what decides which pull requests are kept).
pub const CURSOR: &str = "pulls";

/// The most commits GitHub lists for one pull request (its documented cap).
pub const MAX_PULL_COMMITS: usize = 250;

impl RepoSync<'_> {
    /// Step 4.
    pub(super) async fn sync_pulls(&self) -> Result<(), SourceError> {
        let all_merged = self.settings.lead_time_start != LeadTimeStart::Commit;
        if !all_merged && self.settings.rework_labels.is_empty() {
            return Ok(());
        }
        let start = match self.settings.lead_time_start {
            LeadTimeStart::Commit => "commit",
            LeadTimeStart::PrFirstCommit => "pr_first_commit",
            LeadTimeStart::PrMerged => "pr_merged",
        };
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
        let key = CursorKey::new(self.repository.clone(), name);
        let read_key = key.clone();
        let cursor = self.read(move |store| store.cursor(&read_key)).await?;
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
        let mut pages = Pages::new(Endpoint::Pulls, url.clone(), cursor.and_then(|c| c.opaque));
        let mut listed = HashSet::new();
        let mut newest: Option<Timestamp> = None;
        let mut batch = SyncBatch::new(self.repository.clone());
        'list: while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                let Some(pull) = self.item(Endpoint::Pulls, value.and_then(models::pull)) else {
                    continue;
                };
                if pull.updated_at < stop_before {
                    break 'list;
                }
                if !listed.insert(pull.number) {
                    continue;
                }
                newest = newest.max(Some(pull.updated_at));
                let Some(merged_at) = pull.merged_at else {
                    continue;
                };
                let rework = pull.labels.iter().any(|label| {
                    self.settings
                        .rework_labels
                        .iter()
                        .any(|r| r.as_str().eq_ignore_ascii_case(label))
                });
                if !all_merged && !rework {
                    continue;
                }
                let (commits, first_commit_at) =
                    if self.settings.lead_time_start == LeadTimeStart::PrFirstCommit {
                        self.check_cancelled()?;
                        self.pull_commits(pull.number).await?
                    } else {
                        (Vec::new(), None)
                    };
                batch.pull_requests.push(PullRequest {
                    repository: self.repository.clone(),
                    number: pull.number,
                    merged_at: Some(merged_at),
                    merge_commit_sha: pull.merge_commit_sha,
                    labels: pull.labels,
                    commits,
                    first_commit_at,
                });
            }
        }
        if pages.not_modified {
            return Ok(());
        }
        batch.cursors.push((
            key,
            Cursor {
                since: Some(newest.map_or(stop_before, |n| n.max(stop_before))),
                opaque: pages.etag.clone(),
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }

    /// The pull request's commits and their earliest author date.
    async fn pull_commits(
        &self,
        number: u64,
    ) -> Result<(Vec<CommitSha>, Option<Timestamp>), SourceError> {
        let url = self.url(
            &format!("/pulls/{number}/commits"),
            &[("per_page", &PER_PAGE.to_string())],
        );
        let mut pages = Pages::new(Endpoint::PullCommits, url.clone(), None);
        let mut shas = Vec::new();
        let mut first: Option<Timestamp> = None;
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                if let Some(commit) =
                    self.item(Endpoint::PullCommits, value.and_then(models::commit))
                {
                    first = Some(first.map_or(commit.author_date, |f| f.min(commit.author_date)));
                    shas.push(commit.sha);
                }
            }
            if shas.len() >= MAX_PULL_COMMITS {
                pages.stop();
            }
        }
        Ok((shas, first))
    }
}
