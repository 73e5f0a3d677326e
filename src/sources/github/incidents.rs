//! Step 3: incidents. Issues carrying an incident label, one query per label
//! (GitHub's `labels` parameter requires *all* the labels given, and we want
//! *any*), with `state=all` and `since` (updated at or after), newest update first.
//! Pull requests appear in the issues list with a `pull_request` key and are
//! skipped. A reopened issue comes back with `closed_at: null` and is stored so,
//! which reopens the incident (dora-definitions §1).
//!
//! Cursor `issues?labels=<label>`: `since` is the `since` of the next query, `opaque`
//! the first page's `ETag` (a 304 means no labelled issue changed). The `ETag`
//! belongs to the URL, which contains `since`: so while the answer fits on one
//! page, `since` stays where it is and the next sync asks the same URL (a free
//! 304 when nothing changed); only a list longer than one page moves `since` to
//! the newest `updated_at` seen, which costs one full read of the new URL.
//!
//! The first sync reads the issues updated within the lookback window **and**
//! every open one, however old (a second query with `state=open`), so that an
//! incident opened long ago and never touched since still counts as open.

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models::{self, WireIssue};
use super::RepoSync;
use crate::config::LabelName;
use crate::domain::{Incident, Timestamp};
use crate::sources::SourceError;
use crate::store::{Cursor, CursorKey, SyncBatch};
use std::collections::BTreeMap;

/// The cursor endpoint name for `label`.
pub fn cursor_name(label: &LabelName) -> String {
    super::cursor_name("issues", &[("labels", label.to_string())])
}

impl RepoSync<'_> {
    /// Step 3, for one incident label.
    pub(super) async fn sync_incidents(&self, label: &LabelName) -> Result<(), SourceError> {
        let key = CursorKey::new(self.repository.clone(), cursor_name(label));
        let read_key = key.clone();
        let cursor = self.read(move |store| store.cursor(&read_key)).await?;
        let first = cursor.is_none();
        let since = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        let per_page = PER_PAGE.to_string();
        let url = self.url(
            "/issues",
            &[
                ("labels", label.as_str()),
                ("state", "all"),
                ("sort", "updated"),
                ("direction", "desc"),
                ("since", &since.to_string()),
                ("per_page", &per_page),
            ],
        );
        let mut pages = Pages::new(Endpoint::Issues, url.clone(), cursor.and_then(|c| c.opaque));
        let mut issues: BTreeMap<u64, WireIssue> = BTreeMap::new();
        let pages_read = self.read_issues(&mut pages, &url, &mut issues).await?;
        if pages.not_modified {
            return Ok(());
        }
        let newest = issues.values().map(|i| i.updated_at).max();
        if first {
            let open_url = self.url(
                "/issues",
                &[
                    ("labels", label.as_str()),
                    ("state", "open"),
                    ("per_page", &per_page),
                ],
            );
            let mut open_pages = Pages::new(Endpoint::Issues, open_url.clone(), None);
            self.read_issues(&mut open_pages, &open_url, &mut issues)
                .await?;
        }
        let mut batch = SyncBatch::new(self.repository.clone());
        batch.incidents = issues
            .into_values()
            .map(|issue| Incident {
                repository: self.repository.clone(),
                number: issue.number,
                created_at: issue.created_at,
                closed_at: issue.closed_at,
                labels: issue.labels,
                root_cause: issue.root_cause,
            })
            .collect();
        batch.cursors.push((
            key,
            Cursor {
                since: Some(if pages_read <= 1 {
                    since
                } else {
                    newest.map_or(since, |n: Timestamp| n.max(since))
                }),
                opaque: pages.etag.clone(),
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }

    /// Reads every page into `issues` (by number, later pages win), skipping pull
    /// requests; returns the number of pages read.
    async fn read_issues(
        &self,
        pages: &mut Pages,
        url: &str,
        issues: &mut BTreeMap<u64, WireIssue>,
    ) -> Result<usize, SourceError> {
        let mut read = 0;
        while let Some(body) = self.next_page(pages).await? {
            read += 1;
            for value in models::array(&body, url)? {
                if let Some(Some(issue)) =
                    self.item(Endpoint::Issues, value.and_then(models::issue))
                {
                    issues.insert(issue.number, issue);
                }
            }
        }
        Ok(read)
    }
}
