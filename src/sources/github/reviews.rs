//! Pull requests' first reviews (the `pickup` and `review` lead-time stages,
//! `docs/computation.md` § Lead-time stages), under a PR-based lead-time start
//! only, and only where they can matter: for the changes deployed within the
//! longest configured window (the *review window*, `metrics.windows`; the
//! lookback when the source is built without it).
//!
//! Every review is read apart from the listings, so that those keep their page
//! sizes (the riding listing 47 pull requests a page, where each read review
//! would take a second request of the page's room):
//!
//! - GraphQL: `p0: pullRequest(number: …) { reviews(first: 1, states: [APPROVED,
//!   CHANGES_REQUESTED, COMMENTED, DISMISSED]) { nodes { submittedAt } } } p1: …`,
//!   [`REVIEWS_PER_QUERY`] pull requests a query (aliases: one request each by
//!   GitHub's formula, 149 rounded to one point);
//! - REST (`api = "rest"`, and the pull requests a later sync's REST list
//!   brings): `/pulls/{n}/reviews`, one page (reviews come oldest first).
//!
//! Which pull requests:
//!
//! - those step 4's listing brings merged at or after the review window's start
//!   (`now` − the window): at a first sync the window's, then every later
//!   sync's new ones;
//! - those step 5 finds merged within the lookback (which step 4 lists: in
//!   practice none);
//! - step 6 ([`RepoSync::sync_pull_reviews`]): the kept merged pull requests
//!   without a first review, merged before the window start, that a change
//!   deployed within the review window (and after the cursor) came through
//!   (`dora::pulls_without_review`): those merged before the window and
//!   deployed within it, at the first sync and later (merged long before,
//!   deployed only now). A pull request merged within the window was read by
//!   the listing that brought it, so one without a review there has none. Its
//!   first sync (cursor `pull_reviews?environments=…&lead_time_start=…&within=…`
//!   absent: the first sync of the repository, a new window, events kept by an
//!   earlier version) also reads every kept pull request merged within the
//!   window without a review that this sync did not read (none at a
//!   repository's first sync; after a window grew, those the listing left
//!   before the old window's start), so that the rule holds from then on. The
//!   cursor keeps (`since`) the deploy time through which every change set was
//!   decided and its pull requests read; its name carries the window.
//!
//! A pull request merged and deployed before the window start keeps an unknown
//! first review (no `pickup`, no `review`): no window at or after the first
//! sync holds its changes. So step 6's first sync also records the window's
//! start as the time from which the first reviews are complete
//! (`SyncBatch::reviews_since`, kept with its cursor): a window evaluated
//! later that starts before it (`report --until`, `backfill`) has no stages
//! rather than `pickup` and `review` from part of its changes. A review once read is kept: a later write without
//! one (a listing that did not read it) leaves it (what is kept holds the
//! first non-empty `first_review_at`).

use super::client::{Endpoint, Pages};
use super::models::{self, WirePull};
use super::pulls::lead_time_start_name;
use super::{cursor_name, RepoSync};
use crate::config::GithubApi;
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::Timestamp;
use crate::dora::LeadTimeStart;
use crate::sources::SourceError;
use serde_json::json;
use std::collections::BTreeMap;

/// The cursor endpoint name's base.
pub const CURSOR: &str = "pull_reviews";

/// Pull requests whose first review one GraphQL query asks for (aliases, one
/// request each: 149 rounds to one point).
pub const REVIEWS_PER_QUERY: usize = 149;

/// Reviews read from a pull request's REST list (one page, oldest first: the
/// first submitted one is on it).
pub const REVIEWS_PER_PAGE: u32 = 100;

/// The review states asked for: all but pending (a draft only its author sees).
const REVIEW_STATES: &str = "[APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED]";

impl RepoSync<'_> {
    /// The start of the review window: `now` − the longest window (never
    /// before the lookback start).
    pub(super) fn review_window_start(&self) -> Timestamp {
        let start = self
            .context
            .now
            .0
            .saturating_sub(self.settings.review_window_seconds);
        Timestamp(start.max(self.lookback_start().0))
    }

    /// Whether a step that brings `pull` reads its first review: under a
    /// PR-based start, when it was merged at or after `from` (step 4: the
    /// review window's start; step 5: the lookback's).
    pub(super) fn reads_review(&self, pull: &WirePull, from: Timestamp) -> bool {
        self.settings.lead_time_start != LeadTimeStart::Commit
            && pull.first_review.is_none()
            && pull.merged_at.is_some_and(|merged| merged >= from)
    }

    /// `pull` with its first review read through REST (`/pulls/{n}/reviews`)
    /// when it was merged at or after `from` ([`RepoSync::reads_review`]).
    pub(super) async fn with_first_review(
        &self,
        mut pull: WirePull,
        from: Timestamp,
    ) -> Result<WirePull, SourceError> {
        if self.reads_review(&pull, from) {
            self.check_cancelled()?;
            pull.first_review = Some(self.pull_first_review(pull.number).await?);
            self.mark_reviews_read(&[pull.number]);
        }
        Ok(pull)
    }

    /// The first review of each of `numbers` (`None`: none submitted): through
    /// GraphQL aliases with `api = "graphql"`, else REST. A pull request GraphQL
    /// does not find is left out.
    pub(super) async fn first_reviews(
        &self,
        numbers: &[u64],
    ) -> Result<BTreeMap<u64, Option<Timestamp>>, SourceError> {
        let mut out = BTreeMap::new();
        match self.settings.api {
            GithubApi::Graphql => {
                for chunk in numbers.chunks(REVIEWS_PER_QUERY) {
                    self.check_cancelled()?;
                    let data: serde_json::Value = self
                        .query_aliases(
                            "first reviews",
                            &reviews_query(chunk),
                            json!({
                                "owner": self.repository.owner(),
                                "name": self.repository.name(),
                            }),
                        )
                        .await?;
                    let repository = data.get("repository").and_then(|r| r.as_object());
                    for (n, number) in chunk.iter().enumerate() {
                        let Some(node) = repository
                            .and_then(|r| r.get(&format!("p{n}")))
                            .filter(|v| !v.is_null())
                        else {
                            continue;
                        };
                        if let Some(review) = self.item(Endpoint::Graphql, first_review(node)) {
                            out.insert(*number, review);
                        }
                    }
                }
            }
            GithubApi::Rest => {
                for number in numbers {
                    self.check_cancelled()?;
                    out.insert(*number, self.pull_first_review(*number).await?);
                }
            }
        }
        let read: Vec<u64> = out.keys().copied().collect();
        self.mark_reviews_read(&read);
        Ok(out)
    }

    /// Notes that this sync read the first review of `numbers` (step 6 does not
    /// read them again).
    fn mark_reviews_read(&self, numbers: &[u64]) {
        if let Ok(mut read) = self.reviews_read.lock() {
            read.extend(numbers.iter().copied());
        }
    }

    /// When the pull request's first review was submitted
    /// (`/pulls/{n}/reviews`, oldest first: the first page holds it; a
    /// pending review has no `submitted_at` and is skipped).
    async fn pull_first_review(&self, number: u64) -> Result<Option<Timestamp>, SourceError> {
        let url = self.url(
            &format!("/pulls/{number}/reviews"),
            &[("per_page", &REVIEWS_PER_PAGE.to_string())],
        );
        let mut pages = Pages::new(Endpoint::PullReviews, url.clone(), None);
        let mut first: Option<Timestamp> = None;
        if let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                if let Some(Some(at)) = self.item(
                    Endpoint::PullReviews,
                    value.and_then(models::review_submitted_at),
                ) {
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
            }
        }
        Ok(first)
    }

    /// Step 6 (PR-based lead-time starts only): the first review of every
    /// kept merged pull request a change deployed within the review window
    /// came through, where no listing read it (module documentation).
    pub(super) async fn sync_pull_reviews(&self) -> Result<(), SourceError> {
        let start = self.settings.lead_time_start;
        if start == LeadTimeStart::Commit {
            return Ok(());
        }
        let name = cursor_name(
            CURSOR,
            &[
                ("environments", self.production_names()),
                ("lead_time_start", lead_time_start_name(start).to_owned()),
                ("within", seconds_text(self.settings.review_window_seconds)),
            ],
        );
        let key = CursorKey::new(self.repository.clone(), name);
        let cursor = self.cursor(&key).await?;
        let since = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        let window_start = self.review_window_start();
        // Deployed within the window (`(now − window, now]`), after the cursor.
        let after = since.max(Timestamp(window_start.0.saturating_sub(1)));
        // At this step's first sync, also those merged within the window.
        let merged_from = cursor.is_none().then_some(window_start);
        let found = self
            .ledger()
            .pulls_without_review(
                self.repository.clone(),
                self.settings.production.clone(),
                after,
                window_start,
                merged_from,
            )
            .await?;
        let Some(found) = found else {
            return Ok(());
        };
        if cursor.is_some() && found.decided_through <= after && found.pulls.is_empty() {
            return Ok(());
        }
        let read_here = self
            .reviews_read
            .lock()
            .map(|read| read.clone())
            .unwrap_or_default();
        let pulls: Vec<_> = found
            .pulls
            .into_iter()
            .filter(|pull| !read_here.contains(&pull.number))
            .collect();
        let numbers: Vec<u64> = pulls.iter().map(|pull| pull.number).collect();
        let reviews = self.first_reviews(&numbers).await?;
        let mut batch = SyncBatch::new(self.repository.clone());
        // At this step's first sync (for this window), the first reviews are
        // complete from the window's start on once the batch is kept: every
        // change deployed from then on has its pull request's review read. A
        // window evaluated before it has no stages (`SyncBatch::reviews_since`).
        batch.reviews_since = cursor.is_none().then_some(window_start);
        for mut pull in pulls {
            if let Some(Some(at)) = reviews.get(&pull.number) {
                pull.first_review_at = Some(*at);
                batch.pull_requests.push(pull);
            }
        }
        // Where the next search starts: the deploy time decided through, or
        // (nothing decided since) where this one started.
        let next = if found.decided_through > after {
            found.decided_through
        } else {
            since
        };
        batch.cursors.push((
            key,
            Cursor {
                since: Some(next),
                opaque: None,
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await
    }
}

/// A duration in seconds as cursor names spell it (`90d`, else `3600s`).
fn seconds_text(seconds: i64) -> String {
    const DAY: i64 = 86_400;
    if seconds % DAY == 0 {
        format!("{}d", seconds / DAY)
    } else {
        format!("{seconds}s")
    }
}

/// The first review of each pull request `numbers` names, one alias each
/// (`p0`, `p1`, …).
fn reviews_query(numbers: &[u64]) -> String {
    let mut query = String::from(
        "query FirstReviews($owner: String!, $name: String!) {\n  \
         rateLimit { cost remaining resetAt }\n  repository(owner: $owner, name: $name) {\n",
    );
    for (n, number) in numbers.iter().enumerate() {
        query.push_str(&format!(
            "    p{n}: pullRequest(number: {number}) {{ reviews(first: 1, states: {REVIEW_STATES}) {{ nodes {{ submittedAt }} }} }}\n"
        ));
    }
    query.push_str("  }\n}\n");
    query
}

/// The first review time of one `pullRequest` answer (`None`: no submitted
/// review).
fn first_review(node: &serde_json::Value) -> Result<Option<Timestamp>, models::Skip> {
    let nodes = node
        .get("reviews")
        .and_then(|r| r.get("nodes"))
        .and_then(|n| n.as_array())
        .ok_or_else(|| "a pull request without its reviews".to_owned())?;
    let mut first: Option<Timestamp> = None;
    for review in nodes {
        let Some(text) = review.get("submittedAt").and_then(|t| t.as_str()) else {
            continue;
        };
        let at = Timestamp::parse_rfc3339(text).map_err(|e| format!("reviews.submittedAt: {e}"))?;
        first = Some(first.map_or(at, |f: Timestamp| f.min(at)));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_aliases_every_pull_request() {
        let query = reviews_query(&[7, 9]);
        assert!(query.contains("p1: pullRequest(number: 9) { reviews(first: 1, states: [APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED])"));
        assert_eq!(query.matches("reviews(first: 1").count(), 2);
    }

    #[test]
    fn a_first_review_is_the_oldest_submitted_one() {
        let node = json!({ "reviews": { "nodes": [
            { "submittedAt": "2024-03-04T10:00:00Z" },
            { "submittedAt": null },
            { "submittedAt": "2024-03-04T09:00:00Z" },
        ] } });
        assert_eq!(
            first_review(&node).unwrap(),
            Some(Timestamp::parse_rfc3339("2024-03-04T09:00:00Z").unwrap())
        );
        let none = json!({ "reviews": { "nodes": [] } });
        assert_eq!(first_review(&none).unwrap(), None);
        assert!(first_review(&json!({})).is_err());
        assert!(
            first_review(&json!({ "reviews": { "nodes": [{ "submittedAt": "x" }] } })).is_err()
        );
    }

    #[test]
    fn windows_are_spelled_in_days_when_whole() {
        assert_eq!(seconds_text(90 * 86_400), "90d");
        assert_eq!(seconds_text(3_600), "3600s");
    }
}
