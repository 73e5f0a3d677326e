//! Step 3: incidents. Issues carrying an incident label, one query per label
//! (GitHub's `labels` parameter requires *all* the labels given, and we want
//! *any*), with `state=all` and `since` (updated at or after), newest update first.
//! Pull requests appear in the issues list with a `pull_request` key and are
//! skipped. A reopened issue comes back with `closed_at: null` and is kept so,
//! which reopens the incident (`docs/computation.md` § Incidents).
//!
//! Cursor `issues?labels=<label>`: `since` is the `since` of every query (the
//! start of the lookback window at the first sync; it never moves, so the URL and
//! its `ETag` stay the same), `opaque` the newest `updated_at` kept and the
//! first page's `ETag` (a 304 means no labelled issue changed, and costs no rate
//! limit). When the list changed, pages are read newest update first only until
//! one holds an issue updated before the newest kept: that one and everything
//! after it is kept already. So a change costs about one page, and an idle poll
//! nothing, however long the list.
//!
//! The first sync reads the issues updated within the lookback window **and**
//! every open one, however old (a second query with `state=open`), so that an
//! incident opened long ago and never touched since still counts as open.

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models::{self, WireIssue};
use super::RepoSync;
use crate::config::LabelName;
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Incident, Timestamp};
use crate::sources::SourceError;
use std::collections::BTreeMap;

/// The cursor endpoint name for `label`.
pub fn cursor_name(label: &LabelName) -> String {
    super::cursor_name("issues", &[("labels", label.to_string())])
}

impl RepoSync<'_> {
    /// Step 3, for one incident label.
    pub(super) async fn sync_incidents(&self, label: &LabelName) -> Result<(), SourceError> {
        let key = CursorKey::new(self.repository.clone(), cursor_name(label));
        let cursor = self.cursor(&key).await?;
        let first = cursor.is_none();
        let since = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        let (kept_newest, etag) = split_opaque(cursor.and_then(|c| c.opaque));
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
        let mut pages = Pages::new(Endpoint::Issues, url.clone(), etag);
        let mut issues: BTreeMap<u64, WireIssue> = BTreeMap::new();
        self.read_issues(&mut pages, &url, &mut issues, kept_newest)
            .await?;
        if pages.not_modified {
            return Ok(());
        }
        let newest = issues
            .values()
            .map(|i| i.updated_at)
            .chain(kept_newest)
            .max();
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
            self.read_issues(&mut open_pages, &open_url, &mut issues, None)
                .await?;
        }
        let mut batch = SyncBatch::new(self.repository.clone());
        batch.incidents = issues
            .into_values()
            .map(|issue| Incident {
                source: crate::domain::IncidentSource::GithubIssues,
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
                since: Some(since),
                opaque: join_opaque(newest, pages.etag.as_deref()),
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }

    /// Reads pages into `issues` (by number, later pages win), skipping pull
    /// requests, until the last page or, with `kept_newest`, a page holding an
    /// issue updated before it (the list is newest update first).
    async fn read_issues(
        &self,
        pages: &mut Pages,
        url: &str,
        issues: &mut BTreeMap<u64, WireIssue>,
        kept_newest: Option<Timestamp>,
    ) -> Result<(), SourceError> {
        while let Some(body) = self.next_page(pages).await? {
            let mut reached_kept = false;
            for value in models::array(&body, url)? {
                if let Some(Some(issue)) =
                    self.item(Endpoint::Issues, value.and_then(models::issue))
                {
                    reached_kept |= kept_newest.is_some_and(|n| issue.updated_at < n);
                    issues.insert(issue.number, issue);
                }
            }
            if reached_kept {
                pages.stop();
            }
        }
        Ok(())
    }
}

/// The prefix of the newest kept `updated_at` in the cursor's `opaque`.
const NEWEST_PREFIX: &str = "newest=";

/// The cursor's `opaque`: `newest=<unix seconds>;<kept ETag>`.
fn join_opaque(newest: Option<Timestamp>, etag: Option<&str>) -> Option<String> {
    match (newest, etag) {
        (None, None) => None,
        (Some(newest), etag) => Some(format!(
            "{NEWEST_PREFIX}{};{}",
            newest.0,
            etag.unwrap_or("")
        )),
        (None, Some(etag)) => Some(etag.to_owned()),
    }
}

/// The newest kept `updated_at` and the kept `ETag` from a cursor's `opaque`
/// (a bare `ETag`, as older versions kept it, has no newest: the changed list
/// is then read in full once).
fn split_opaque(opaque: Option<String>) -> (Option<Timestamp>, Option<String>) {
    let Some(opaque) = opaque else {
        return (None, None);
    };
    let parsed = opaque.strip_prefix(NEWEST_PREFIX).and_then(|rest| {
        let (newest, etag) = rest.split_once(';')?;
        let newest = Timestamp(newest.parse().ok()?);
        Some((newest, (!etag.is_empty()).then(|| etag.to_owned())))
    });
    match parsed {
        Some((newest, etag)) => (Some(newest), etag),
        None => (None, Some(opaque)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_value_carries_the_newest_update_and_the_etag() {
        let etag = "abc|W/\"1234\"";
        let joined = join_opaque(Some(Timestamp(1_700_000_000)), Some(etag));
        assert_eq!(
            split_opaque(joined),
            (Some(Timestamp(1_700_000_000)), Some(etag.to_owned()))
        );
        assert_eq!(
            split_opaque(join_opaque(Some(Timestamp(5)), None)),
            (Some(Timestamp(5)), None)
        );
        // An older version's bare ETag, and a damaged value: read in full.
        assert_eq!(
            split_opaque(Some(etag.to_owned())),
            (None, Some(etag.to_owned()))
        );
        assert_eq!(
            split_opaque(Some("newest=soon;x".to_owned())),
            (None, Some("newest=soon;x".to_owned()))
        );
        assert_eq!(split_opaque(None), (None, None));
    }
}
