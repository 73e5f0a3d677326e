//! The Argo CD source: the deployments of the repositories named in
//! `[[argocd.applications]]`, read from each application's sync history and its
//! last operation (`models.rs` says how they become deployments).
//!
//! A repository sync reads each of its applications with one request
//! (`GET /api/v1/applications/{name}`, `appNamespace` for one outside Argo
//! CD's namespace) and keeps what it read in one batch per application, with
//! the application's cursor (`argocd:{name}`: its uid and the newest history id
//! seen). An application that cannot be read (wrong token, unknown
//! application: Argo CD answers `403` for both an application that does not
//! exist and one the token may not read) fails the repository's sync with an
//! error naming it, after the repository's other applications were read.
//!
//! Argo CD keeps only the last `revisionHistoryLimit` syncs (10 by default).
//! When a poll finds that history entries newer than the last one seen were
//! dropped before they were read, it logs a warning and counts a gap
//! (`dora_collector_argocd_history_gaps_total{application}`); those syncs are
//! lost to the metrics (Argo CD Notifications → the push API avoids that, see
//! `docs/sources.md`). Likewise only the last operation is visible: a failed
//! sync followed by another operation before the next poll is not seen.
//!
//! The change sets, incidents and pull requests of these repositories come from
//! the GitHub source, which reads the change sets of every kept deployment
//! whatever its source. Not here: anything but reading; no write to Argo CD.

mod models;

use super::governor::RetryPolicy;
use super::rest::{Auth, RestClient, RestError, ServerKind};
use super::{
    within_lookback, ApiHealth, HistoryGaps, RepoSyncStats, Source, SourceError, SyncContext,
};
use crate::config::{ArgoCdApplicationConfig, ArgoCdConfig};
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Deployment, DeploymentOutcome, DeploymentSource, RepoName, Timestamp};
use futures::future::BoxFuture;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

pub use models::{application_key, history_id, operation_id, revision_sha};

/// The `source` label and sync-status name of this source.
pub const SOURCE_NAME: &str = "argocd";

/// The endpoint template of the requests (the health metrics' label).
pub const ENDPOINT_APPLICATION: &str = "/api/v1/applications/{name}";

/// The cursor endpoint of an application: `argocd:` and its configured name.
const CURSOR_PREFIX: &str = "argocd:";

/// What the errors of this source's client say.
const KIND: ServerKind = ServerKind {
    server: SOURCE_NAME,
    token_key: "argocd.token",
    forbidden_hint: "the application does not exist, or the token may not read it (it needs \
                     the `applications, get` permission on it; Argo CD answers 403 for both)",
    not_found_hint: "no such application; check argocd.applications[].name and argocd.api_url",
};

/// Characters escaped in a URL path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The Argo CD source of one `[argocd]` configuration.
#[derive(Debug)]
pub struct ArgoCdSource {
    client: RestClient,
    lookback_seconds: i64,
    repositories: Vec<RepoName>,
    applications: BTreeMap<RepoName, Vec<ArgoCdApplicationConfig>>,
    /// Unreadable items skipped per repository since the process started.
    skipped: Mutex<BTreeMap<RepoName, u64>>,
    /// History gaps found per application since the process started.
    gaps: Mutex<BTreeMap<String, u64>>,
}

impl ArgoCdSource {
    /// A source for `config` whose first syncs keep `lookback_seconds` of
    /// history (and one older base), retrying by `policy`; fails only when the
    /// HTTP client cannot be set up. No request is made here.
    pub fn new(
        config: &ArgoCdConfig,
        lookback_seconds: i64,
        policy: RetryPolicy,
    ) -> Result<ArgoCdSource, RestError> {
        let client = RestClient::new(
            KIND,
            config.api_url.as_url(),
            &Auth::Bearer(config.token.clone()),
            policy,
        )?;
        let mut repositories = Vec::new();
        let mut applications: BTreeMap<RepoName, Vec<ArgoCdApplicationConfig>> = BTreeMap::new();
        for application in &config.applications {
            if !repositories.contains(&application.repository) {
                repositories.push(application.repository.clone());
            }
            applications
                .entry(application.repository.clone())
                .or_default()
                .push(application.clone());
        }
        let gaps = config
            .applications
            .iter()
            .map(|a| (a.name.to_string(), 0))
            .collect();
        Ok(ArgoCdSource {
            client,
            lookback_seconds,
            repositories,
            applications,
            skipped: Mutex::new(BTreeMap::new()),
            gaps: Mutex::new(gaps),
        })
    }

    /// `GET /api/v1/applications/{name}` of `application`.
    fn url(&self, application: &ArgoCdApplicationConfig) -> String {
        let name = &application.name;
        let mut url = format!(
            "{}/api/v1/applications/{}",
            self.client.base(),
            utf8_percent_encode(name.name(), SEGMENT)
        );
        if let Some(namespace) = name.namespace() {
            url.push_str("?appNamespace=");
            url.push_str(&utf8_percent_encode(namespace, SEGMENT).to_string());
        }
        url
    }

    fn count_skipped(&self, repository: &RepoName, n: u64) {
        if n > 0 {
            let mut skipped = self.skipped.lock().unwrap_or_else(PoisonError::into_inner);
            *skipped.entry(repository.clone()).or_default() += n;
        }
    }

    /// Reads one application and keeps what it read; returns whether it was its
    /// first read.
    async fn sync_application(
        &self,
        repository: &RepoName,
        application: &ArgoCdApplicationConfig,
        context: &SyncContext,
        stats: &mut RepoSyncStats,
        keys: &mut HashMap<u64, String>,
    ) -> Result<bool, SourceError> {
        let what = || format!("argocd application {:?}", application.name.as_str());
        let read = |error| SourceError::Read {
            what: what(),
            error,
        };
        let url = self.url(application);
        let body = self
            .client
            .get(ENDPOINT_APPLICATION, &url, &context.shutdown)
            .await
            .map_err(read)?;
        stats.requests += 1;
        let app = models::application(&body, repository).map_err(|reason| {
            read(RestError::InvalidBody {
                url: url.clone(),
                reason,
            })
        })?;
        let name = application.name.to_string();
        let key = application_key(&name, &app.uid);
        if let Some(other) = keys
            .insert(key, name.clone())
            .filter(|other| *other != name)
        {
            return Err(read(RestError::InvalidBody {
                url,
                reason: format!(
                    "its deployment ids would meet those of application {other:?} of the same \
                     repository (a 1 in a billion chance); rename one of them"
                ),
            }));
        }
        let cursor_key = CursorKey::new(repository.clone(), format!("{CURSOR_PREFIX}{name}"));
        let kept = context.ledger.cursor(cursor_key.clone()).await?;
        let first = kept.is_none();
        let seen = kept
            .as_ref()
            .and_then(|c| c.opaque.as_deref())
            .and_then(AppCursor::parse);
        // Server text: masked, as anything the server says.
        let uid = AppCursor::clean_uid(&self.client.clean(&app.uid));
        // What this application (not an earlier one of the same name) showed
        // before: read again, it is not kept again.
        let same = seen.as_ref().filter(|seen| seen.uid == uid);
        let mut skipped = 0;
        let mut batch = SyncBatch::new(repository.clone());
        let mut newest: Option<i64> = None;
        let mut oldest: Option<i64> = None;
        for entry in app.history {
            let sync = match entry {
                Ok(sync) => sync,
                Err(reason) => {
                    skipped += 1;
                    tracing::warn!(
                        %repository,
                        application = %name,
                        reason = %self.client.clean(&reason),
                        "skipping an Argo CD history entry that cannot be read"
                    );
                    continue;
                }
            };
            newest = Some(newest.map_or(sync.id, |n| n.max(sync.id)));
            oldest = Some(oldest.map_or(sync.id, |o| o.min(sync.id)));
            if same
                .and_then(|s| s.last_id)
                .is_some_and(|last| sync.id <= last)
            {
                continue;
            }
            let Some(id) = history_id(key, sync.id) else {
                skipped += 1;
                tracing::warn!(%repository, application = %name, id = sync.id, "skipping a history entry whose id is out of range");
                continue;
            };
            batch.deployments.push(Deployment {
                source: DeploymentSource::ArgoCd,
                repository: repository.clone(),
                id,
                environment: application.environment.clone(),
                sha: revision_sha(&sync.revision),
                created_at: sync.started_at,
                outcome: DeploymentOutcome::Succeeded {
                    at: sync.deployed_at,
                },
            });
        }
        let mut last_failure = None;
        match app.failed {
            None => {}
            Some(Err(reason)) => {
                skipped += 1;
                tracing::warn!(
                    %repository,
                    application = %name,
                    reason = %self.client.clean(&reason),
                    "skipping an Argo CD operation state that cannot be read"
                );
            }
            Some(Ok(failed)) => {
                last_failure = Some(failed.started_at.0);
                let known = same
                    .and_then(|s| s.last_failure)
                    .is_some_and(|at| failed.started_at.0 <= at);
                match operation_id(key, failed.started_at) {
                    _ if known => {}
                    Some(id) => batch.deployments.push(Deployment {
                        source: DeploymentSource::ArgoCd,
                        repository: repository.clone(),
                        id,
                        environment: application.environment.clone(),
                        sha: revision_sha(&failed.revision),
                        created_at: failed.started_at,
                        outcome: DeploymentOutcome::Failed {
                            at: failed.finished_at,
                        },
                    }),
                    None => skipped += 1,
                }
            }
        }
        if same.is_none() {
            // A first read keeps the lookback and one base, as GitHub's does.
            let start = Timestamp(context.now.0.saturating_sub(self.lookback_seconds));
            batch.deployments = within_lookback(batch.deployments, start);
        }
        self.check_gap(repository, &name, seen.as_ref(), &uid, oldest, first);
        stats.skipped_items += skipped;
        self.count_skipped(repository, skipped);
        let cursor = AppCursor {
            uid,
            // The newest id seen stays when the history is empty now.
            last_id: newest.max(same.and_then(|s| s.last_id)),
            last_failure: last_failure.max(same.and_then(|s| s.last_failure)),
        };
        batch.cursors.push((
            cursor_key,
            Cursor {
                since: None,
                opaque: Some(cursor.render()),
                updated_at: context.now,
            },
        ));
        let applied = context.sink.keep(batch).await?;
        stats.add_applied(&applied);
        stats.batches += 1;
        Ok(first)
    }

    /// Warns and counts a gap when entries newer than the last one seen were
    /// dropped before this read (the oldest entry now is further on than the
    /// one after the last seen).
    fn check_gap(
        &self,
        repository: &RepoName,
        name: &str,
        seen: Option<&AppCursor>,
        uid: &str,
        oldest: Option<i64>,
        first: bool,
    ) {
        let Some(oldest) = oldest else { return };
        match seen {
            Some(seen) if seen.uid == uid => {
                let missed = seen.last_id.map_or(0, |last| oldest - last - 1);
                if missed > 0 {
                    tracing::warn!(
                        %repository,
                        application = %name,
                        missed,
                        "Argo CD dropped syncs of this application from its history before \
                         they were read (revisionHistoryLimit): they are missing from the \
                         metrics; poll more often, raise the limit, or send deployments \
                         with Argo CD Notifications to the push API"
                    );
                    let mut gaps = self.gaps.lock().unwrap_or_else(PoisonError::into_inner);
                    *gaps.entry(name.to_owned()).or_default() += 1;
                }
            }
            Some(_) => tracing::info!(
                %repository,
                application = %name,
                "the Argo CD application was deleted and created again (a new uid): reading \
                 its new history"
            ),
            None if first && oldest > 0 => tracing::info!(
                %repository,
                application = %name,
                earlier = oldest,
                "Argo CD keeps only the latest syncs of this application; its {oldest} \
                 earlier ones are not available to a first sync"
            ),
            None => {}
        }
    }
}

/// An application's cursor: its uid, the newest history id and the start of
/// the newest failed operation read (`uid id start`, `-` for none).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AppCursor {
    uid: String,
    last_id: Option<i64>,
    last_failure: Option<i64>,
}

/// The most of a uid kept in a cursor (Kubernetes uids are 36 characters).
const MAX_UID_CHARS: usize = 64;

impl AppCursor {
    /// The uid as a cursor keeps it: no whitespace, bounded (the server's text).
    fn clean_uid(uid: &str) -> String {
        let uid: String = uid
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .take(MAX_UID_CHARS)
            .collect();
        if uid.is_empty() {
            "-".to_owned()
        } else {
            uid
        }
    }

    fn parse(opaque: &str) -> Option<AppCursor> {
        let number = |part: &str| match part {
            "-" => Some(None),
            digits => digits.parse::<i64>().ok().map(Some),
        };
        let mut parts = opaque.split(' ');
        let cursor = AppCursor {
            uid: parts.next()?.to_owned(),
            last_id: number(parts.next()?)?,
            last_failure: number(parts.next()?)?,
        };
        parts.next().is_none().then_some(cursor)
    }

    fn render(&self) -> String {
        let number = |n: Option<i64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!(
            "{} {} {}",
            self.uid,
            number(self.last_id),
            number(self.last_failure)
        )
    }
}

impl Source for ArgoCdSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    fn repositories(&self) -> Vec<RepoName> {
        self.repositories.clone()
    }

    fn sync_repository<'a>(
        &'a self,
        repository: &'a RepoName,
        context: &'a SyncContext,
    ) -> BoxFuture<'a, Result<RepoSyncStats, SourceError>> {
        Box::pin(async move {
            let mut stats = RepoSyncStats::default();
            let mut failure = None;
            let mut keys = HashMap::new();
            let applications = self
                .applications
                .get(repository)
                .map_or(&[][..], Vec::as_slice);
            for application in applications {
                if context.shutdown.is_cancelled() {
                    return Err(SourceError::Cancelled);
                }
                match self
                    .sync_application(repository, application, context, &mut stats, &mut keys)
                    .await
                {
                    Ok(first) => stats.first_sync |= first,
                    Err(error) if error.is_cancelled() => return Err(error),
                    Err(error) => {
                        tracing::error!(
                            %repository,
                            application = %application.name,
                            %error,
                            "cannot read the Argo CD application; the repository's other \
                             applications are read on"
                        );
                        failure.get_or_insert(error);
                    }
                }
            }
            match failure {
                Some(error) => Err(error),
                None => {
                    // Every one read: the repository's deployments from here
                    // are complete back to the lookback's start.
                    stats.history_since = Some(Timestamp(
                        context.now.0.saturating_sub(self.lookback_seconds),
                    ));
                    Ok(stats)
                }
            }
        })
    }

    fn api_health(&self) -> ApiHealth {
        let gaps = self
            .gaps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(application, gaps)| HistoryGaps {
                application: application.clone(),
                gaps: *gaps,
            })
            .collect();
        self.client.api_health(&self.skipped, gaps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = AppCursor {
            uid: AppCursor::clean_uid("9f1c 0000\n"),
            last_id: Some(41),
            last_failure: None,
        };
        assert_eq!(cursor.uid, "9f1c0000");
        assert_eq!(AppCursor::parse(&cursor.render()), Some(cursor));
        assert_eq!(AppCursor::clean_uid(""), "-");
        for bad in ["", "u", "u 1", "u 1 2 3", "u x -"] {
            assert_eq!(AppCursor::parse(bad), None, "{bad}");
        }
    }
}
