//! Step 3: merged merge requests, for rework (a merged merge request with a
//! rework label marks the deployment that ships its merge or squash commit) and
//! PR-based lead-time starts (every merged merge request with its commits and
//! their earliest author date, so that every commit it introduced starts from
//! it).
//!
//! With the default `lead_time_start = "commit"` only merge requests carrying a
//! rework label are kept, and with no rework labels either nothing is read.
//! GitLab's `labels` filter is case-sensitive and needs all the labels given,
//! so the list is not filtered by label: the collector compares itself, and one
//! request per sync covers every label.
//!
//! The list is `state=merged&order_by=updated_at&sort=desc&updated_after=…`.
//! Cursor `merge_requests?lead_time_start=…&rework_labels=…`: `since` is the
//! newest `updated_at` listed. A first sync starts at the lookback window.
//! Each merge request kept under a PR-based start has its commits read
//! (`/merge_requests/{iid}/commits`, at most [`MAX_MERGE_REQUEST_COMMIT_PAGES`]
//! pages).

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models::{self, WireMergeRequest};
use super::rules::has_label;
use super::{cursor_name, newest, ProjectSync};
use crate::domain::batch::{Cursor, SyncBatch};
use crate::domain::{PullRequest, Timestamp};
use crate::dora::LeadTimeStart;
use crate::sources::SourceError;
use std::collections::BTreeMap;

/// The cursor endpoint name's base.
pub const CURSOR: &str = "merge_requests";

/// Pages of one merge request's commits read at most (10,000 commits).
pub const MAX_MERGE_REQUEST_COMMIT_PAGES: usize = 100;

impl ProjectSync<'_> {
    /// Step 3.
    pub(super) async fn sync_merge_requests(&self) -> Result<(), SourceError> {
        let start = self.settings.lead_time_start;
        let pr_based = start != LeadTimeStart::Commit;
        if !pr_based && self.settings.rework_labels.is_empty() {
            return Ok(());
        }
        let start_name = match start {
            LeadTimeStart::Commit => "commit",
            LeadTimeStart::PrFirstCommit => "pr_first_commit",
            LeadTimeStart::PrMerged => "pr_merged",
        };
        let mut labels: Vec<String> = self
            .settings
            .rework_labels
            .iter()
            .map(|l| l.as_str().to_lowercase())
            .collect();
        labels.sort();
        let key = self.cursor_key(cursor_name(
            CURSOR,
            &[
                ("lead_time_start", start_name.to_owned()),
                ("rework_labels", labels.join(",")),
            ],
        ));
        let cursor = self.cursor(&key).await?;
        let since = cursor
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        let url = self.url(
            "/merge_requests",
            &[
                ("state", "merged"),
                ("updated_after", &since.to_string()),
                ("order_by", "updated_at"),
                ("sort", "desc"),
                ("per_page", &PER_PAGE.to_string()),
            ],
        );
        let mut pages = Pages::new(Endpoint::MergeRequests, url.clone());
        let mut kept: BTreeMap<u64, WireMergeRequest> = BTreeMap::new();
        let mut newest_update: Option<Timestamp> = None;
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                let Some(mr) = self.item(Endpoint::MergeRequests, models::merge_request(value))
                else {
                    continue;
                };
                newest_update = Some(newest(newest_update, mr.updated_at));
                let rework = has_label(&mr.labels, &self.settings.rework_labels);
                if mr.merged_at.is_some() && (pr_based || rework) {
                    kept.insert(mr.iid, mr);
                }
            }
        }
        let mut batch = SyncBatch::new(self.repository.clone());
        for mr in kept.into_values() {
            self.check_cancelled()?;
            let (mut commits, first_commit_at) = if pr_based {
                self.merge_request_commits(mr.iid).await?
            } else {
                (Vec::new(), None)
            };
            // With both, the squash commit and the merge commit land on the
            // target branch: the merge commit names the merge request, the
            // squash commit is one of its commits.
            let merge_commit_sha = mr.merge_commit_sha.or(mr.squash_commit_sha);
            if let (Some(_), Some(squash)) = (mr.merge_commit_sha, mr.squash_commit_sha) {
                if !commits.contains(&squash) {
                    commits.push(squash);
                }
            }
            batch.pull_requests.push(PullRequest {
                repository: self.repository.clone(),
                number: mr.iid,
                merged_at: mr.merged_at,
                merge_commit_sha,
                labels: mr.labels,
                commits,
                first_commit_at,
                // GitLab has no reviews like GitHub's (approvals are another
                // request, and not in every tier): the `pickup` and `review`
                // stages of a merge request are unknown, `coding` and `deploy`
                // are kept.
                created_at: mr.created_at,
                first_review_at: None,
            });
        }
        batch.cursors.push((
            key,
            Cursor {
                since: Some(newest(newest_update, since)),
                opaque: None,
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }

    /// A merge request's commits and their earliest author date.
    async fn merge_request_commits(
        &self,
        iid: u64,
    ) -> Result<(Vec<crate::domain::CommitSha>, Option<Timestamp>), SourceError> {
        let url = self.url(
            &format!("/merge_requests/{iid}/commits"),
            &[("per_page", &PER_PAGE.to_string())],
        );
        let mut pages = Pages::new(Endpoint::MergeRequestCommits, url.clone());
        let mut commits = Vec::new();
        let mut first: Option<Timestamp> = None;
        let mut read = 0;
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                if let Some((record, _)) =
                    self.item(Endpoint::MergeRequestCommits, models::commit(value))
                {
                    first = Some(first.map_or(record.author_date, |f| f.min(record.author_date)));
                    commits.push(record.sha);
                }
            }
            read += 1;
            if read >= MAX_MERGE_REQUEST_COMMIT_PAGES {
                pages.stop();
            }
        }
        Ok((commits, first))
    }
}
