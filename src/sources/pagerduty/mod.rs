//! The PagerDuty source: the incidents of the configured services, read through
//! PagerDuty's REST API v2 with a read-only key, handed on as incidents of a
//! team or of a set of repositories (`ScopedIncident`, source `pagerduty`).
//!
//! One sync unit per service, named `-pagerduty/<service id>` (no GitHub or
//! GitLab path starts with a hyphen): the cycle syncs, retries and reports it
//! like a repository, and its cursor and sync status are kept under that name.
//!
//! A service's sync lists `GET /incidents?service_ids[]=…&since=…&until=…`
//! (offset pagination, 100 a page, at most [`MAX_RANGE`] a request):
//! - the first sync (no cursor) checks the service (`GET /services/{id}`: an
//!   unknown id fails with an error naming it) and lists the lookback;
//! - later syncs list from the cursor's `since`: the creation time of the oldest
//!   incident still open at the previous sync, else [`INCREMENTAL_OVERLAP`] before
//!   it, so that every incident that can still change is listed again and no
//!   other (an incident resolved long ago is never read again);
//! - every sync also lists the incidents open now, whatever their age
//!   (`date_range=all`, `statuses[]=triggered`, `statuses[]=acknowledged`): one
//!   re-triggered after its resolve is open again even when it is older than
//!   `since`. An idle sync costs these two listings.
//!
//! For each listed incident the source asks the ledger what it kept and reads
//! only what changed: a new incident's body (`include[]=body`) and notes (its
//! root cause), a newly resolved one's log entries (the resolution) and notes
//! again (a root cause written at the post-mortem); a re-triggered one is open
//! again without a request. Urgencies outside `pagerduty.urgencies` are filtered
//! by the listing (`urgencies[]`). The cursor's key carries a fingerprint of the
//! service's mapping and urgencies: changing either re-reads the lookback.
//!
//! Not here: HTTP and retries (`client.rs`), reading answers (`models.rs`),
//! which repository an incident blames (the engine, over the mapping).

mod client;
mod error;
mod models;

pub use client::{Endpoint, ACCEPT, MAX_RESPONSE_BYTES, RATE_LIMIT_RESOURCE};
pub use error::PagerDutyError;

use super::github::RetryPolicy;
use super::{ApiHealth, RepoSyncStats, Source, SourceError, SyncContext};
use crate::config::{PagerDutyConfig, ServiceMapping, Urgency};
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{IncidentScope, IncidentSource, RepoName, ScopedIncident, Timestamp};
use client::Client;
use futures::future::BoxFuture;
use models::Listed;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// The `source` label and sync-status name of this source.
pub const SOURCE_NAME: &str = "pagerduty";

/// The owner part of a service's sync-unit name.
pub const UNIT_OWNER: &str = "-pagerduty";

/// The longest `since`..`until` of one listing: PagerDuty allows 6 months.
pub const MAX_RANGE: i64 = 179 * 86_400;

/// Incidents per page: PagerDuty's maximum.
pub const PAGE_LIMIT: u64 = 100;

/// PagerDuty's bound on `offset + limit` of a listing.
pub const MAX_PAGINATED: u64 = 10_000;

/// How far before the end of the previous listing the next one starts when no
/// incident is open: incidents become visible in listings a moment after their
/// creation time.
pub const INCREMENTAL_OVERLAP: i64 = 15 * 60;

/// Pages of one listing read at most (100,000 incidents of one service in one
/// range): beyond it a server that always says `more` is refused.
pub const MAX_LISTING_PAGES: u64 = 1_000;

/// Pages of one incident's log entries read at most (10,000 entries): the log of
/// a real incident is a few dozen entries.
pub const MAX_LOG_PAGES: u64 = 100;

/// One listing of a service's incidents.
#[derive(Debug, Clone, Copy)]
enum Listing {
    /// Those created in `[since, until)`.
    Created(Timestamp, Timestamp),
    /// Those open now (`statuses[]` triggered and acknowledged, `date_range=all`).
    Open,
}

/// What one sync of a service has listed so far.
#[derive(Debug, Default)]
struct Pass {
    /// The numbers handled (a listing's overlap with another is skipped).
    seen: std::collections::HashSet<u64>,
    /// The creation time of the oldest incident listed open.
    oldest_open: Option<Timestamp>,
}

/// One configured service.
#[derive(Debug)]
struct Service {
    /// Its index in `[[pagerduty.services]]`.
    index: usize,
    id: String,
    unit: RepoName,
    scope: IncidentScope,
    /// The cursor's endpoint name (with the mapping's fingerprint).
    endpoint: String,
}

/// The PagerDuty source.
#[derive(Debug)]
pub struct PagerDutySource {
    client: Client,
    services: Vec<Service>,
    units: Vec<RepoName>,
    urgencies: Vec<Urgency>,
    lookback: i64,
    skipped: Mutex<BTreeMap<RepoName, u64>>,
}

/// The sync-unit name of service `id`.
pub fn unit_name(id: &str) -> Option<RepoName> {
    RepoName::parse(&format!("{UNIT_OWNER}/{id}")).ok()
}

impl PagerDutySource {
    /// The source of `config`, reading `lookback` on a first sync.
    pub fn new(
        config: &PagerDutyConfig,
        lookback: std::time::Duration,
        policy: RetryPolicy,
    ) -> Result<Self, PagerDutyError> {
        let client = Client::new(config.api_url.as_url(), config.token.clone(), policy)?;
        let mut urgencies = config.urgencies.clone();
        urgencies.sort();
        urgencies.dedup();
        let mut services = Vec::new();
        for (index, service) in config.services.iter().enumerate() {
            let id = service.id.as_str().to_owned();
            let unit = unit_name(&id).ok_or_else(|| {
                PagerDutyError::Client(format!("pagerduty.services[{index}]: id {id}"))
            })?;
            let scope = match &service.maps_to {
                ServiceMapping::Team(team) => IncidentScope::Team(team.clone()),
                ServiceMapping::Repositories(names) => IncidentScope::repositories(names.clone())
                    .ok_or_else(|| {
                    PagerDutyError::Client(format!("pagerduty.services[{index}]: no repository"))
                })?,
            };
            let endpoint = format!("incidents@{}", fingerprint(&scope, &urgencies));
            services.push(Service {
                index,
                id,
                unit,
                scope,
                endpoint,
            });
        }
        Ok(PagerDutySource {
            client,
            units: services.iter().map(|s| s.unit.clone()).collect(),
            services,
            urgencies,
            lookback: i64::try_from(lookback.as_secs()).unwrap_or(i64::MAX / 2),
            skipped: Mutex::new(BTreeMap::new()),
        })
    }

    /// Requests sent so far (every attempt).
    pub fn request_count(&self) -> u64 {
        self.client.request_count()
    }

    fn skip(&self, unit: &RepoName, what: &str) {
        tracing::warn!(source = SOURCE_NAME, unit = %unit, what, "skipped an unreadable item");
        *self
            .skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(unit.clone())
            .or_default() += 1;
    }

    async fn sync_service(
        &self,
        service: &Service,
        context: &SyncContext,
    ) -> Result<RepoSyncStats, SourceError> {
        let shutdown = &context.shutdown;
        let before = self.client.request_count();
        let mut stats = RepoSyncStats::default();
        let key = CursorKey::new(service.unit.clone(), service.endpoint.clone());
        let cursor = context.ledger.cursor(key.clone()).await?;
        let now = context.now;
        if cursor.is_none() {
            stats.first_sync = true;
            let path = format!("/services/{}", service.id);
            match self
                .client
                .get(Endpoint::Service, &path, &[], shutdown)
                .await
            {
                Ok(_) => {}
                Err(PagerDutyError::NotFound { url }) => {
                    return Err(PagerDutyError::UnknownService {
                        index: service.index,
                        id: service.id.clone(),
                        url,
                    }
                    .into())
                }
                Err(error) => return Err(error.into()),
            }
        }
        let start = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or(Timestamp(now.0.saturating_sub(self.lookback)));
        // `until` is exclusive: one second past `now` lists what was created at it.
        let end = Timestamp(now.0.saturating_add(1));
        let mut pass = Pass::default();
        let mut from = start;
        while from < end {
            let to = Timestamp(from.0.saturating_add(MAX_RANGE).min(end.0));
            self.list(
                service,
                Listing::Created(from, to),
                &mut pass,
                &mut stats,
                context,
            )
            .await?;
            from = to;
        }
        // Every incident open now, whatever its age: one re-triggered after its
        // resolve, created before `start`, is open again.
        self.list(service, Listing::Open, &mut pass, &mut stats, context)
            .await?;
        let oldest_open = pass.oldest_open;
        // What the next sync lists from: every incident that can still change.
        let recent = Timestamp(now.0.saturating_sub(INCREMENTAL_OVERLAP));
        let next = oldest_open.map_or(recent, |open| open.min(recent));
        let mut batch = SyncBatch::new(service.unit.clone());
        batch.cursors.push((
            key,
            Cursor {
                since: Some(next),
                opaque: None,
                updated_at: now,
            },
        ));
        let applied = context.sink.keep(batch).await?;
        stats.add_applied(&applied);
        stats.batches += 1;
        stats.requests = self.client.request_count().saturating_sub(before);
        Ok(stats)
    }

    /// Pages through one listing of the service's incidents, handing on each
    /// page's new and changed incidents (those not seen earlier in this sync).
    async fn list(
        &self,
        service: &Service,
        listing: Listing,
        pass: &mut Pass,
        stats: &mut RepoSyncStats,
        context: &SyncContext,
    ) -> Result<(), SourceError> {
        let mut listing = listing;
        let mut offset = 0u64;
        for _ in 0..MAX_LISTING_PAGES {
            let page = self
                .incidents(service, listing, offset, &context.shutdown)
                .await?;
            let (items, more) =
                models::incidents_page(&page).ok_or_else(|| PagerDutyError::Unexpected {
                    url: format!("/incidents?service_ids[]={}", service.id),
                    what: "no incidents array".to_owned(),
                })?;
            let mut listed = Vec::new();
            for item in items {
                match item {
                    Ok(item) => listed.push(item),
                    Err(what) => {
                        stats.skipped_items += 1;
                        self.skip(&service.unit, &what);
                    }
                }
            }
            let last_created = listed.iter().map(|i| i.created_at).max();
            listed.retain(|item| pass.seen.insert(item.number));
            for item in listed.iter().filter(|i| !i.resolved) {
                pass.oldest_open = Some(
                    pass.oldest_open
                        .map_or(item.created_at, |t| t.min(item.created_at)),
                );
            }
            let batch = self.read_incidents(service, &listed, context).await?;
            if !batch.is_empty() {
                let applied = context.sink.keep(batch).await?;
                stats.add_applied(&applied);
                stats.batches += 1;
            }
            if !more {
                return Ok(());
            }
            offset += PAGE_LIMIT;
            if offset + PAGE_LIMIT > MAX_PAGINATED {
                // PagerDuty pages no further: go on from the latest creation time
                // read (incidents are listed oldest first; those of that second
                // are listed again, and skipped).
                match (listing, last_created) {
                    (Listing::Created(since, until), Some(at)) if at > since => {
                        listing = Listing::Created(at, until);
                        offset = 0;
                    }
                    _ => {
                        let since = match listing {
                            Listing::Created(since, _) => since.to_rfc3339(),
                            Listing::Open => "any time".to_owned(),
                        };
                        return Err(PagerDutyError::TooManyAtOnce {
                            id: service.id.clone(),
                            at: since,
                            limit: MAX_PAGINATED,
                        }
                        .into());
                    }
                }
            }
        }
        Err(PagerDutyError::Unexpected {
            url: format!("/incidents?service_ids[]={}", service.id),
            what: format!("more than {MAX_LISTING_PAGES} pages in one listing"),
        }
        .into())
    }

    async fn incidents(
        &self,
        service: &Service,
        listing: Listing,
        offset: u64,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<client::Json, PagerDutyError> {
        let mut query: Vec<(&str, String)> = vec![("service_ids[]", service.id.clone())];
        match listing {
            Listing::Created(since, until) => {
                query.push(("since", since.to_rfc3339()));
                query.push(("until", until.to_rfc3339()));
            }
            Listing::Open => {
                query.push(("date_range", "all".to_owned()));
                query.push(("statuses[]", "triggered".to_owned()));
                query.push(("statuses[]", "acknowledged".to_owned()));
            }
        }
        query.extend([
            ("time_zone", "UTC".to_owned()),
            ("sort_by", "created_at:asc".to_owned()),
            ("limit", PAGE_LIMIT.to_string()),
            ("offset", offset.to_string()),
        ]);
        if self.urgencies.len() < 2 {
            query.extend(
                self.urgencies
                    .iter()
                    .map(|u| ("urgencies[]", u.as_str().to_owned())),
            );
        }
        self.client
            .get(Endpoint::Incidents, "/incidents", &query, shutdown)
            .await
    }

    /// The listed incidents that are new or changed, as one batch.
    async fn read_incidents(
        &self,
        service: &Service,
        listed: &[Listed],
        context: &SyncContext,
    ) -> Result<SyncBatch, SourceError> {
        let shutdown = &context.shutdown;
        let numbers: Vec<u64> = listed.iter().map(|i| i.number).collect();
        let kept: HashMap<u64, ScopedIncident> = context
            .ledger
            .scoped_incidents(IncidentSource::PagerDuty, numbers)
            .await?
            .into_iter()
            .map(|i| (i.number, i))
            .collect();
        let mut batch = SyncBatch::new(service.unit.clone());
        for item in listed {
            let known = kept.get(&item.number);
            let resolution_known = known.is_some_and(|s| {
                s.closed_at.is_some()
                    && (item.resolved_hint.is_none() || s.closed_at == item.resolved_hint)
            });
            let incident = match known {
                // Unchanged: nothing to read, nothing to write.
                Some(s)
                    if s.scope == service.scope
                        && s.created_at == item.created_at
                        && (!item.resolved && s.closed_at.is_none()
                            || item.resolved && resolution_known) =>
                {
                    continue;
                }
                // Re-triggered, or kept under another mapping: no request needed.
                Some(s) if !item.resolved || resolution_known => ScopedIncident {
                    scope: service.scope.clone(),
                    created_at: item.created_at,
                    closed_at: if item.resolved { s.closed_at } else { None },
                    ..s.clone()
                },
                // New, or newly resolved: read what can have changed.
                _ => {
                    let notes = self.notes(&item.id, shutdown).await?;
                    let body = match known {
                        Some(_) => None,
                        None => self.body(&item.id, shutdown).await?,
                    };
                    let root_cause = models::root_cause(body.as_deref(), &notes)
                        .or_else(|| known.and_then(|s| s.root_cause.clone()));
                    let closed_at = if item.resolved {
                        let resolved = self.resolution(&item.id, shutdown).await?;
                        if resolved.is_none() {
                            tracing::warn!(
                                source = SOURCE_NAME,
                                service = %service.id,
                                incident = item.number,
                                "a resolved incident whose log shows no resolve; its resolved_at is used"
                            );
                        }
                        resolved.or(item.resolved_hint)
                    } else {
                        None
                    };
                    ScopedIncident {
                        source: IncidentSource::PagerDuty,
                        scope: service.scope.clone(),
                        number: item.number,
                        created_at: item.created_at,
                        closed_at,
                        root_cause,
                    }
                }
            };
            batch.scoped_incidents.push(incident);
        }
        Ok(batch)
    }

    async fn notes(
        &self,
        id: &str,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Vec<(Timestamp, String)>, PagerDutyError> {
        let path = format!("/incidents/{id}/notes");
        let answer = self
            .client
            .get(Endpoint::Notes, &path, &[], shutdown)
            .await?;
        Ok(models::notes(&answer))
    }

    async fn body(
        &self,
        id: &str,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<String>, PagerDutyError> {
        let path = format!("/incidents/{id}");
        let query = [("include[]", "body".to_owned())];
        let answer = self
            .client
            .get(Endpoint::Incident, &path, &query, shutdown)
            .await?;
        Ok(models::body_details(&answer))
    }

    async fn resolution(
        &self,
        id: &str,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<Timestamp>, PagerDutyError> {
        let path = format!("/incidents/{id}/log_entries");
        let mut changes = Vec::new();
        for page in 0..MAX_LOG_PAGES {
            let query = [
                ("is_overview", "true".to_owned()),
                ("time_zone", "UTC".to_owned()),
                ("limit", PAGE_LIMIT.to_string()),
                ("offset", (page * PAGE_LIMIT).to_string()),
            ];
            let answer = self
                .client
                .get(Endpoint::LogEntries, &path, &query, shutdown)
                .await?;
            let (page_changes, more) =
                models::log_page(&answer).ok_or_else(|| PagerDutyError::Unexpected {
                    url: path.clone(),
                    what: "no log_entries array".to_owned(),
                })?;
            changes.extend(page_changes);
            if !more {
                break;
            }
        }
        Ok(models::resolution(&changes))
    }
}

/// A one-way fingerprint of what a service's incidents are read as: its mapping
/// and the urgencies (a change re-reads the lookback).
fn fingerprint(scope: &IncidentScope, urgencies: &[Urgency]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    match scope {
        IncidentScope::Team(team) => {
            hasher.update(b"team\0");
            hasher.update(team.as_str().as_bytes());
        }
        IncidentScope::Repositories(names) => {
            hasher.update(b"repositories\0");
            for name in names {
                hasher.update(name.as_str().as_bytes());
                hasher.update(b"\0");
            }
        }
    }
    hasher.update(b"urgencies\0");
    for urgency in urgencies {
        hasher.update(urgency.as_str().as_bytes());
        hasher.update(b"\0");
    }
    hasher
        .finalize()
        .iter()
        .take(FINGERPRINT_BYTES)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes of the mapping fingerprint kept in the cursor key.
const FINGERPRINT_BYTES: usize = 8;

impl Source for PagerDutySource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    fn repositories(&self) -> Vec<RepoName> {
        self.units.clone()
    }

    fn sync_repository<'a>(
        &'a self,
        repository: &'a RepoName,
        context: &'a SyncContext,
    ) -> BoxFuture<'a, Result<RepoSyncStats, SourceError>> {
        Box::pin(async move {
            let Some(service) = self.services.iter().find(|s| &s.unit == repository) else {
                return Ok(RepoSyncStats::default());
            };
            let lookback_start = Timestamp(context.now.0.saturating_sub(self.lookback));
            self.sync_service(service, context)
                .await
                .map(|stats| RepoSyncStats {
                    // The service's incidents are complete back to the
                    // lookback's start once a sync of it succeeded.
                    history_since: Some(lookback_start),
                    ..stats
                })
        })
    }

    fn api_health(&self) -> ApiHealth {
        let (requests, retries, waited, rate_limits) = self.client.health();
        ApiHealth {
            requests,
            rate_limits,
            rate_limit_wait_seconds: waited,
            retries,
            skipped_items: self
                .skipped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(unit, n)| (unit.clone(), *n))
                .collect(),
            history_gaps: Vec::new(),
        }
    }
}
