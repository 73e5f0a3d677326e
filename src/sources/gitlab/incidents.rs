//! Step 4: incidents: issues of type `incident`, and issues carrying one of
//! `incident_labels` (compared case-insensitively: GitLab's `labels` filter is
//! case-sensitive and needs all the labels given, so the list is not filtered:
//! one request covers every label and the type). `created_at` opens an incident,
//! `closed_at` resolves it; a reopened issue comes back open and is kept so. The
//! root cause is a `root cause: <sha>` line in the description, as on GitHub.
//!
//! The list is `state=all&order_by=updated_at&sort=desc&updated_after=…` with
//! keyset pagination (`pagination=keyset`, GitLab 18.3 and later; an older
//! GitLab ignores it and pages by offset, which the client follows the same
//! way). Cursor `issues?incident_labels=…`: `since` is the newest `updated_at`
//! listed.
//!
//! The first sync reads the issues updated within the lookback window **and**
//! every open one older than it (`state=opened&updated_before=…`), so that an
//! incident opened long ago and never touched since still counts as open.
//!
//! Not here: an issue that stops being an incident (its label or type removed)
//! stays kept as one, as on GitHub.

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models::{self, WireIssue};
use super::rules::is_incident;
use super::{cursor_name, newest, ProjectSync};
use crate::domain::batch::{Cursor, SyncBatch};
use crate::domain::{Incident, IncidentSource, Timestamp};
use crate::sources::github::rules::parse_root_cause;
use crate::sources::SourceError;
use std::collections::BTreeMap;

/// The cursor endpoint name's base.
pub const CURSOR: &str = "issues";

impl ProjectSync<'_> {
    /// Step 4.
    pub(super) async fn sync_incidents(&self) -> Result<(), SourceError> {
        let mut labels: Vec<String> = self
            .settings
            .incident_labels
            .iter()
            .map(|l| l.as_str().to_lowercase())
            .collect();
        labels.sort();
        let key = self.cursor_key(cursor_name(
            CURSOR,
            &[("incident_labels", labels.join(","))],
        ));
        let cursor = self.cursor(&key).await?;
        let first = cursor.is_none();
        let since = cursor
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        let mut issues: BTreeMap<u64, WireIssue> = BTreeMap::new();
        let newest_update = self
            .read_issues(
                &[("state", "all"), ("updated_after", &since.to_string())],
                &mut issues,
            )
            .await?;
        if first {
            self.read_issues(
                &[("state", "opened"), ("updated_before", &since.to_string())],
                &mut issues,
            )
            .await?;
        }
        let mut batch = SyncBatch::new(self.repository.clone());
        batch.incidents = issues
            .into_values()
            .filter(|issue| {
                is_incident(
                    &issue.issue_type,
                    &issue.labels,
                    &self.settings.incident_labels,
                )
            })
            .map(|issue| Incident {
                source: IncidentSource::GitlabIssues,
                repository: self.repository.clone(),
                number: issue.iid,
                created_at: issue.created_at,
                closed_at: issue.closed_at.filter(|_| issue.state == "closed"),
                root_cause: issue.description.as_deref().and_then(parse_root_cause),
                labels: issue.labels,
            })
            .collect();
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

    /// Reads every page of the issues list with `filters` into `issues` (by
    /// iid, the later read wins); returns the newest `updated_at` seen.
    async fn read_issues(
        &self,
        filters: &[(&str, &str)],
        issues: &mut BTreeMap<u64, WireIssue>,
    ) -> Result<Option<Timestamp>, SourceError> {
        let per_page = PER_PAGE.to_string();
        let mut query: Vec<(&str, &str)> = filters.to_vec();
        query.extend([
            ("order_by", "updated_at"),
            ("sort", "desc"),
            ("pagination", "keyset"),
            ("per_page", per_page.as_str()),
        ]);
        let url = self.url("/issues", &query);
        let mut pages = Pages::new(Endpoint::Issues, url.clone());
        let mut newest_update: Option<Timestamp> = None;
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                if let Some(issue) = self.item(Endpoint::Issues, models::issue(value)) {
                    newest_update = Some(newest(newest_update, issue.updated_at));
                    issues.insert(issue.iid, issue);
                }
            }
        }
        Ok(newest_update)
    }
}
