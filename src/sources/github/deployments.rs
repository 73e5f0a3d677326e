//! Step 1 for Deployments-API repositories: new deployments to production
//! environments, their outcome from their statuses, and the pending ones again.
//!
//! The list is read **without** the `environment` filter: GitHub matches that filter
//! case-sensitively, while the definitions compare environment names
//! case-insensitively (`Production` counts as `production`). So every deployment is
//! listed, newest first, and only those whose environment matches a configured
//! production environment are kept. The price is the pages of non-production
//! deployments in the list; statuses (one request per deployment, the bulk of the
//! cost) are read for production deployments only.
//!
//! Cursor `deployments?environments=…`: `since` is the newest `created_at`
//! listed; `opaque` the `ETag` of the list's first page (a later sync asks with
//! `If-None-Match`: a 304 costs no rate limit and means nothing new), or with
//! GraphQL and the cycle's check (`check.rs`) the newest deployment's id (the same
//! id in the next check means nothing was created, and nothing is listed).
//! Otherwise pages are read until a deployment created before `since`. A terminal deployment is never read
//! again; a pending one has its statuses read again on every sync until it ends
//! (or is older than [`PENDING_RECHECK_SECONDS`]), asked with the `ETag` of its
//! last read (cursor `deployments/{id}/statuses`), so that while no status is
//! added the read is a free 304.
//!
//! The first sync reads back to the lookback window, then keeps paging for one
//! successful deployment per production environment older than the window, the base
//! of the first change set (`docs/computation.md` § Change sets, DevLake #7193), bounded by
//! [`MAX_BASE_CANDIDATES`] and [`MAX_BASE_SEARCH_PAGES`].

use super::client::{Endpoint, Pages, PER_PAGE};
use super::graphql::{GraphqlPages, ListedDeployment};
use super::models::{self, WireDeployment};
use super::rules::outcome_from_statuses;
use super::{GithubError, RepoSync};
use crate::config::GithubApi;
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Deployment, DeploymentOutcome, DeploymentSource, StatusState, Timestamp};
use crate::sources::SourceError;
use std::collections::{HashMap, HashSet};

/// Items on the REST page that tells the GraphQL path whether anything changed:
/// one is enough (a new deployment is the newest), and a small body hashes fast.
pub const PROBE_PER_PAGE: u32 = 1;

/// A GraphQL listing: whether the REST probe was asked yet, whether this is a
/// later sync (the first page then brings history too), and the pages.
#[derive(Debug, Default)]
struct Listing {
    probed: bool,
    incremental: bool,
    pages: GraphqlPages,
}

/// The cursor endpoint name's base; the name also carries the production
/// environments (lowercase, sorted), so that configuring another one reads its
/// history on the next sync.
pub const CURSOR: &str = "deployments";

/// How many production deployments older than the lookback window a first sync
/// checks (reading their statuses), per environment, to find a successful one as
/// the base. Failed attempts are a few percent of deployments, so 20 finds one
/// unless the environment was abandoned.
pub const MAX_BASE_CANDIDATES: usize = 20;

/// How many pages past the lookback window a first sync reads looking for bases:
/// bounds the cost for a configured environment that has no old deployments (the
/// list is not filtered by environment).
pub const MAX_BASE_SEARCH_PAGES: usize = 5;

/// A pending deployment is read again on every sync for this long after its
/// creation (30 days). Tools that create deployments without ever reporting a
/// status would otherwise cost a request per sync forever.
pub const PENDING_RECHECK_SECONDS: i64 = 30 * 86_400;

/// The most status pages read for one deployment (GitHub keeps every status; a
/// deployment has a handful).
pub const MAX_STATUS_PAGES: usize = 10;

/// The prefix of the cursor's `opaque` when it holds the newest deployment's id
/// (GraphQL with the cycle's check) rather than the probe's `ETag`.
const NEWEST_ID_PREFIX: &str = "newest-id=";

/// The newest deployment id a cursor's `opaque` holds, if it holds one.
fn kept_newest_id(opaque: &str) -> Option<u64> {
    opaque.strip_prefix(NEWEST_ID_PREFIX)?.parse().ok()
}

/// The cursor keeping the `ETag` of a pending deployment's statuses.
fn statuses_cursor(repository: &crate::domain::RepoName, id: u64) -> CursorKey {
    CursorKey::new(repository.clone(), format!("deployments/{id}/statuses"))
}

/// What reading a deployment's statuses gave.
struct StatusesRead {
    /// `None`: the deployment is gone, or nothing changed since `etag` was kept.
    outcome: Option<DeploymentOutcome>,
    /// The first page's `ETag` (as kept).
    etag: Option<String>,
}

/// Per production environment: whether a base was found, and how many candidates
/// were checked.
struct BaseSearch {
    found: Vec<bool>,
    checked: Vec<usize>,
}

impl BaseSearch {
    fn new(environments: usize) -> Self {
        BaseSearch {
            found: vec![false; environments],
            checked: vec![0; environments],
        }
    }

    fn wants(&self, index: usize) -> bool {
        !self.found[index] && self.checked[index] < MAX_BASE_CANDIDATES
    }

    fn done(&self) -> bool {
        (0..self.found.len()).all(|i| !self.wants(i))
    }
}

impl RepoSync<'_> {
    /// Step 1 (Deployments API). Returns whether this was the first sync.
    pub(super) async fn sync_deployments(&self) -> Result<bool, SourceError> {
        let repository = self.repository.clone();
        let name = super::cursor_name(CURSOR, &[("environments", self.production_names())]);
        let key = CursorKey::new(repository.clone(), name);
        let source = DeploymentSource::GithubDeployments;
        let cursor = self.cursor(&key).await?;
        let terminal = self
            .ledger()
            .terminal_deployment_ids(repository.clone(), source)
            .await?;
        let mut pending = Vec::new();
        for deployment in self
            .ledger()
            .pending_deployments(repository.clone(), source)
            .await?
        {
            let etag = self
                .cursor(&statuses_cursor(&repository, deployment.id))
                .await?
                .and_then(|c| c.opaque);
            pending.push((deployment, etag));
        }
        let first = cursor.is_none();
        let stop_before = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        // With GraphQL, GraphQL lists the deployments with their statuses, and the
        // REST list's first page of one, asked with `If-None-Match`, says for free
        // whether anything was created since the last sync (its ETag is the
        // cursor's). With REST, the REST list is read and its ETag kept.
        let graphql = self.settings.api == GithubApi::Graphql;
        let per_page = if graphql { PROBE_PER_PAGE } else { PER_PAGE };
        let url = self.url("/deployments", &[("per_page", &per_page.to_string())]);
        let opaque = cursor.and_then(|c| c.opaque);
        // This cycle's GraphQL check (`check.rs`) replaces the probe: the same
        // newest deployment as kept means nothing was created.
        let checked = self.checked.filter(|_| graphql);
        let unchanged = !first
            && checked.is_some_and(|newest| {
                newest.map(|(id, _)| id) == opaque.as_deref().and_then(kept_newest_id)
            });
        let etag = if checked.is_some() { None } else { opaque };
        let mut pages = Pages::new(Endpoint::Deployments, url.clone(), etag);
        let mut listing = graphql.then(|| {
            let mut pages = GraphqlPages::default();
            pages.history_from = checked.flatten().map(|(_, sha)| sha).filter(|_| !first);
            Listing {
                probed: checked.is_some(),
                incremental: !first,
                pages,
            }
        });
        if unchanged {
            listing = None;
            pages.stop();
        }
        let mut newest_id: Option<u64> = None;
        let mut inline: HashMap<u64, Vec<(StatusState, Timestamp)>> = HashMap::new();

        let mut newest: Option<Timestamp> = None;
        let mut listed = HashSet::new();
        let mut fresh: Vec<WireDeployment> = Vec::new();
        let mut bases = BaseSearch::new(self.settings.production.len());
        let mut batch = SyncBatch::new(self.repository.clone());
        let mut pages_past_window = 0;
        'list: while let Some(items) = self
            .next_deployments(&mut pages, &mut listing, &url)
            .await?
        {
            let mut past_window = false;
            for (item, statuses) in items {
                let Some(deployment) = self.item(Endpoint::Deployments, item) else {
                    continue;
                };
                // A deployment created while we page shifts the list by one.
                if !listed.insert(deployment.id) {
                    continue;
                }
                newest_id.get_or_insert(deployment.id);
                newest = newest.max(Some(deployment.created_at));
                let production = self.production_index(&deployment.environment);
                if deployment.created_at < stop_before {
                    if !first {
                        break 'list;
                    }
                    past_window = true;
                    if let Some(index) = production.filter(|i| bases.wants(*i)) {
                        bases.checked[index] += 1;
                        let outcome = if terminal.contains(&deployment.id) {
                            // Kept before (the settings changed since): no request.
                            self.kept_outcome(deployment.id).await?
                        } else if let Some(statuses) = &statuses {
                            Some(outcome_from_statuses(statuses))
                        } else {
                            self.deployment_outcome(deployment.id, None).await?.outcome
                        };
                        if let Some(outcome @ DeploymentOutcome::Succeeded { .. }) = outcome {
                            bases.found[index] = true;
                            batch
                                .deployments
                                .push(self.to_deployment(&deployment, outcome));
                        }
                    }
                    if bases.done() {
                        break 'list;
                    }
                    continue;
                }
                if production.is_some() && !terminal.contains(&deployment.id) {
                    if let Some(statuses) = statuses {
                        inline.insert(deployment.id, statuses);
                    }
                    fresh.push(deployment);
                }
            }
            if past_window {
                pages_past_window += 1;
                if pages_past_window >= MAX_BASE_SEARCH_PAGES {
                    break;
                }
            }
        }
        if first {
            self.log_missing_bases(&bases);
        }

        for deployment in &fresh {
            self.check_cancelled()?;
            let outcome = match inline.remove(&deployment.id) {
                Some(statuses) => Some(outcome_from_statuses(&statuses)),
                None => {
                    let read = self.deployment_outcome(deployment.id, None).await?;
                    self.keep_statuses_etag(&mut batch, deployment.id, &read);
                    read.outcome
                }
            };
            if let Some(outcome) = outcome {
                batch
                    .deployments
                    .push(self.to_deployment(deployment, outcome));
            }
        }
        let fresh_ids: HashSet<u64> = fresh.iter().map(|d| d.id).collect();
        let recheck_after = self.context.now.0.saturating_sub(PENDING_RECHECK_SECONDS);
        for (kept, etag) in pending {
            if fresh_ids.contains(&kept.id)
                || kept.created_at.0 < recheck_after
                || self.still_pending.contains(&kept.id)
            {
                continue;
            }
            self.check_cancelled()?;
            // Asked with the kept ETag: a 304 (no new status) is free.
            let read = self.deployment_outcome(kept.id, etag).await?;
            self.keep_statuses_etag(&mut batch, kept.id, &read);
            match read.outcome {
                Some(outcome) if outcome.is_terminal() => {
                    batch.deployments.push(Deployment { outcome, ..kept });
                }
                _ => {}
            }
        }

        if !pages.not_modified && !unchanged {
            let since = newest.map_or(stop_before, |n| n.max(stop_before));
            let opaque = match checked {
                // What the next cycle's check is compared with.
                Some(_) => newest_id.map(|id| format!("{NEWEST_ID_PREFIX}{id}")),
                None => pages.etag.clone(),
            };
            batch.cursors.push((
                key,
                Cursor {
                    since: Some(since),
                    opaque,
                    updated_at: self.context.now,
                },
            ));
        }
        if let Some(listing) = listing {
            batch.commits = listing.pages.commits;
        }
        self.apply(batch).await?;
        Ok(first)
    }

    /// The next page of deployments (each with its statuses when they came
    /// inline); `None` when the listing is done or the list did not change.
    async fn next_deployments(
        &self,
        pages: &mut Pages,
        listing: &mut Option<Listing>,
        url: &str,
    ) -> Result<Option<Vec<ListedDeployment>>, GithubError> {
        let Some(listing) = listing else {
            let Some(body) = self.next_page(pages).await? else {
                return Ok(None);
            };
            return Ok(Some(
                models::array(&body, url)?
                    .into_iter()
                    .map(|value| (value.and_then(models::deployment), None))
                    .collect(),
            ));
        };
        if !listing.probed {
            listing.probed = true;
            // 304: nothing was created since the ETag was kept.
            let Some(body) = self.next_page(pages).await? else {
                return Ok(None);
            };
            pages.stop();
            if listing.incremental {
                // The newest deployment's history comes with the first page: the
                // usual new change set is then decided without a query of its own.
                listing.pages.history_from = models::array(&body, url)?
                    .into_iter()
                    .next()
                    .and_then(|value| value.and_then(models::deployment).ok())
                    .map(|deployment| deployment.sha);
            }
        }
        self.next_graphql_page(&mut listing.pages).await
    }

    fn to_deployment(&self, wire: &WireDeployment, outcome: DeploymentOutcome) -> Deployment {
        Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: self.repository.clone(),
            id: wire.id,
            environment: wire.environment.clone(),
            sha: wire.sha,
            created_at: wire.created_at,
            outcome,
        }
    }

    /// The kept outcome of deployment `id`.
    async fn kept_outcome(&self, id: u64) -> Result<Option<DeploymentOutcome>, SourceError> {
        let kept = self
            .ledger()
            .deployment(
                self.repository.clone(),
                DeploymentSource::GithubDeployments,
                id,
            )
            .await?;
        Ok(kept.map(|d| d.outcome))
    }

    /// Keeps the `ETag` of a still pending deployment's statuses in `batch`, so
    /// that the next sync asks with `If-None-Match`.
    fn keep_statuses_etag(&self, batch: &mut SyncBatch, id: u64, read: &StatusesRead) {
        let pending = matches!(read.outcome, Some(o) if !o.is_terminal());
        if let (true, Some(etag)) = (pending, &read.etag) {
            batch.cursors.push((
                statuses_cursor(self.repository, id),
                Cursor {
                    since: None,
                    opaque: Some(etag.clone()),
                    updated_at: self.context.now,
                },
            ));
        }
    }

    /// The outcome of deployment `id` from all its statuses (`outcome` is `None`
    /// when GitHub no longer knows the deployment, which is logged and skipped, or
    /// when `etag` still matches: no status was added).
    async fn deployment_outcome(
        &self,
        id: u64,
        etag: Option<String>,
    ) -> Result<StatusesRead, SourceError> {
        let url = self.url(
            &format!("/deployments/{id}/statuses"),
            &[("per_page", &PER_PAGE.to_string())],
        );
        let mut pages = Pages::new(Endpoint::DeploymentStatuses, url.clone(), etag);
        let mut statuses = Vec::new();
        let mut read = 0;
        loop {
            let body = match self.next_page(&mut pages).await {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(GithubError::NotFound { .. }) => {
                    self.skipped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        repository = %self.repository,
                        deployment = id,
                        "the statuses of a deployment are gone (HTTP 404); skipping it"
                    );
                    return Ok(StatusesRead {
                        outcome: None,
                        etag: None,
                    });
                }
                Err(error) => return Err(error.into()),
            };
            for value in models::array(&body, &url)? {
                statuses.extend(self.item(
                    Endpoint::DeploymentStatuses,
                    value.and_then(|v| models::deployment_status(v, self.client.redactor())),
                ));
            }
            read += 1;
            if read >= MAX_STATUS_PAGES {
                pages.stop();
            }
        }
        if pages.not_modified {
            return Ok(StatusesRead {
                outcome: None,
                etag: None,
            });
        }
        Ok(StatusesRead {
            outcome: Some(outcome_from_statuses(&statuses)),
            etag: pages.etag.clone(),
        })
    }

    fn log_missing_bases(&self, bases: &BaseSearch) {
        for (index, found) in bases.found.iter().enumerate() {
            if !found {
                tracing::info!(
                    repository = %self.repository,
                    environment = %self.settings.production[index],
                    checked = bases.checked[index],
                    "no successful deployment older than the lookback window was found; the \
                     first deployment in the window has no base and contributes no lead times"
                );
            }
        }
    }
}
