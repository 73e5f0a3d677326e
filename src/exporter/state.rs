//! `ExporterState`: the latest rendered metrics and the readiness the HTTP routes
//! serve, shared between the sync loop (which publishes) and the routes (which read).
//!
//! Publishing renders: the sync loop calls [`ExporterState::publish`] after every
//! sync, which turns the snapshot and the health into text once and swaps it in. A
//! scrape only clones an `Arc` under a lock held for that clone; it never renders,
//! let alone computes (the mistake Pelorus made, re-counting on every scrape).
//!
//! Readiness is derived from what was published, and is sticky: the exporter is
//! ready once a snapshot has been published and every configured repository has
//! had a successful sync (a `last_success` in some published health; a sync whose
//! status the store could not record is not one, and the reason says the store
//! cannot record syncs). From then on it stays ready; later sync errors show in the
//! health metrics, not in `/readyz`.
//!
//! It does no I/O and knows nothing about HTTP; `routes` serves it.

use super::health::{HealthSnapshot, PushCount, ReplicaHealth, StoredSuccess, WebhookCount};
use super::render::{render_replica, RenderError};
use crate::domain::{RepoName, Timestamp};
use crate::dora::Snapshot;
use axum::body::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// How many not-yet-synced repositories a readiness reason names before it says
/// "and N more": the reason is for a person reading a probe failure, and must stay
/// short for organisations with thousands of repositories.
pub(crate) const MAX_LISTED_PENDING: usize = 10;

/// What the exporter is told once, at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterOptions {
    /// Every configured repository; `/readyz` waits for the first successful sync
    /// of each.
    pub repositories: Vec<RepoName>,
    /// The data comes from the built-in simulated organisation (`demo`): the
    /// landing page says so.
    pub simulated: bool,
    /// The `version` label of `dora_build_info`.
    pub version: String,
    /// The push API is served (`[ingest]`): the landing page lists its routes.
    pub push_api: bool,
    /// GitHub webhooks are taken (`[webhooks.github]`): the landing page lists
    /// the route.
    pub github_webhooks: bool,
    /// Where each configured repository is read from (`GitHub (Deployments
    /// API)`, `GitLab (pipelines)`, `push API`, …), for the landing page.
    pub sources: Vec<(RepoName, &'static str)>,
}

impl ExporterOptions {
    /// Options for these repositories, real data, this build's version.
    pub fn new(repositories: Vec<RepoName>) -> Self {
        ExporterOptions {
            repositories,
            simulated: false,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            push_api: false,
            github_webhooks: false,
            sources: Vec::new(),
        }
    }
}

/// Whether `/readyz` answers 200, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// A snapshot has been published.
    pub has_snapshot: bool,
    /// Configured repositories without a successful sync yet, sorted.
    pub pending: Vec<RepoName>,
    /// Organisations whose repositories were never listed yet.
    pub unlisted: Vec<String>,
    /// The latest sync round could not record its status in the store (the
    /// reason says so).
    pub status_unrecorded: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.has_snapshot && self.pending.is_empty() && self.unlisted.is_empty()
    }

    /// A one-line, plain-text explanation: `ready`, or `not ready: ` and what
    /// is still [`missing`](Self::missing).
    pub fn reason(&self) -> String {
        match self.missing() {
            None => "ready".to_owned(),
            Some(missing) => format!("not ready: {missing}"),
        }
    }

    /// What is still missing, one line (naming at most [`MAX_LISTED_PENDING`]
    /// repositories); `None` when ready.
    pub fn missing(&self) -> Option<String> {
        if self.is_ready() {
            return None;
        }
        let mut parts = Vec::new();
        if !self.has_snapshot {
            parts.push("no metrics published yet".to_owned());
        }
        if !self.pending.is_empty() {
            let named: Vec<&str> = self
                .pending
                .iter()
                .take(MAX_LISTED_PENDING)
                .map(RepoName::as_str)
                .collect();
            let mut waiting = format!(
                "waiting for the first successful sync of {}",
                named.join(", ")
            );
            let more = self.pending.len().saturating_sub(MAX_LISTED_PENDING);
            if more > 0 {
                waiting.push_str(&format!(" and {more} more"));
            }
            parts.push(waiting);
        }
        if !self.unlisted.is_empty() {
            let named: Vec<&str> = self
                .unlisted
                .iter()
                .take(MAX_LISTED_PENDING)
                .map(String::as_str)
                .collect();
            parts.push(format!(
                "waiting for the first list of the repositories of {}",
                named.join(", ")
            ));
        }
        if self.status_unrecorded {
            parts.push(
                "the store cannot record syncs (read-only or full? the log names the file \
                 and the error)"
                    .to_owned(),
            );
        }
        Some(parts.join("; "))
    }
}

/// What a request reads: built at publish time, immutable afterwards.
#[derive(Debug)]
pub struct Page {
    /// The text exposition served at `/metrics`.
    pub metrics: Bytes,
    pub readiness: Readiness,
    /// The evaluation time of the published snapshot, if any.
    pub evaluated_at: Option<Timestamp>,
    /// How far the sources' history is complete (the landing page says).
    pub history: HistoryProgress,
}

/// How many of the sources' repositories have their history complete in the
/// store (their windows exported), and back to when at least.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryProgress {
    /// Repositories with a complete history.
    pub complete: usize,
    /// Repositories the sources sync.
    pub repositories: usize,
    /// The latest of their `history_since`: every complete one reaches back to
    /// it at least.
    pub since: Option<Timestamp>,
}

impl HistoryProgress {
    /// The progress of the scope's `repositories` (PagerDuty's units are none)
    /// by `health`: a repository read by several sources (GitHub's commits,
    /// Argo CD's deployments) is complete once every one of them says so.
    fn of(health: &HealthSnapshot, repositories: &BTreeSet<RepoName>) -> HistoryProgress {
        let mut by_repository: BTreeMap<&RepoName, Option<Timestamp>> = BTreeMap::new();
        for repository in health.sources.iter().flat_map(|s| &s.repositories) {
            if !repositories.contains(&repository.repository) {
                continue;
            }
            let since = by_repository
                .entry(&repository.repository)
                .or_insert(Some(Timestamp(i64::MIN)));
            *since = match (*since, repository.history_since) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        let mut progress = HistoryProgress {
            repositories: by_repository.len(),
            ..HistoryProgress::default()
        };
        for since in by_repository.into_values().flatten() {
            progress.complete += 1;
            progress.since = progress.since.max(Some(since));
        }
        progress
    }
}

/// `history complete for N of M repositories, back to T at least` (the
/// landing page's words); empty without a repository.
impl std::fmt::Display for HistoryProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            HistoryProgress {
                repositories: 0, ..
            } => Ok(()),
            HistoryProgress {
                complete,
                repositories,
                since: Some(since),
            } => write!(
                f,
                "history complete for {complete} of {repositories} repositories, back to \
                 {since} at least"
            ),
            HistoryProgress { repositories, .. } => write!(
                f,
                "history complete for none of {repositories} repositories yet"
            ),
        }
    }
}

/// What the publishers keep to re-render: the latest inputs and readiness progress.
#[derive(Debug, Default)]
struct Inputs {
    snapshot: Option<Arc<Snapshot>>,
    health: HealthSnapshot,
    /// The push counters, published on their own (the sources' health does
    /// not carry them).
    pushes: Vec<PushCount>,
    /// The webhook delivery counters, likewise.
    webhooks: Vec<WebhookCount>,
    /// Configured repositories that have had a successful sync.
    synced: BTreeSet<RepoName>,
    /// The repositories `/readyz` waits for: the configured ones, then the scope
    /// of the latest sync round (discovery changes it).
    configured: BTreeSet<RepoName>,
    /// What a source could not enumerate yet (organisations never listed).
    unlisted: Vec<String>,
    /// This replica's part among several sharing the store (none alone).
    replica: Option<ReplicaHealth>,
}

/// The state shared by the sync loop and the HTTP routes (wrap it in an `Arc`).
#[derive(Debug)]
pub struct ExporterState {
    options: ExporterOptions,
    /// Held by a publisher for the whole render, so publishes never interleave.
    inputs: Mutex<Inputs>,
    /// Held by readers only to clone the `Arc`.
    page: Mutex<Arc<Page>>,
    renders: AtomicU64,
}

impl ExporterState {
    /// A state with nothing published: `/metrics` serves only `dora_build_info`,
    /// `/readyz` answers 503.
    pub fn new(options: ExporterOptions) -> Result<Self, RenderError> {
        let inputs = Inputs {
            configured: options.repositories.iter().cloned().collect(),
            ..Inputs::default()
        };
        let renders = AtomicU64::new(0);
        let page = build_page(&options, &inputs, &renders)?;
        Ok(ExporterState {
            options,
            inputs: Mutex::new(inputs),
            page: Mutex::new(Arc::new(page)),
            renders,
        })
    }

    /// Publishes a freshly computed snapshot and the health at the end of the sync
    /// that produced it: renders once, then serves the result to every scrape
    /// until the next publish. On error the previous page stays served.
    pub fn publish(
        &self,
        snapshot: impl Into<Arc<Snapshot>>,
        health: HealthSnapshot,
    ) -> Result<(), RenderError> {
        let mut inputs = lock(&self.inputs);
        inputs.snapshot = Some(snapshot.into());
        self.update(&mut inputs, health)
    }

    /// Publishes a snapshot computed between syncs (after pushed events arrived):
    /// re-renders it with the latest health, which takes in the successful
    /// syncs the snapshot was computed from.
    pub fn publish_snapshot(
        &self,
        snapshot: impl Into<Arc<Snapshot>>,
        stored: &[StoredSuccess],
    ) -> Result<(), RenderError> {
        let mut inputs = lock(&self.inputs);
        inputs.snapshot = Some(snapshot.into());
        let mut health = inputs.health.clone();
        health.take_in_stored(stored);
        self.update(&mut inputs, health)
    }

    /// Publishes the push counters: re-renders with the latest snapshot and health.
    pub fn publish_pushes(&self, pushes: Vec<PushCount>) -> Result<(), RenderError> {
        let mut inputs = lock(&self.inputs);
        inputs.pushes = pushes;
        let health = inputs.health.clone();
        self.update(&mut inputs, health)
    }

    /// Publishes the webhook delivery counters: re-renders with the latest
    /// snapshot and health.
    pub fn publish_webhooks(&self, webhooks: Vec<WebhookCount>) -> Result<(), RenderError> {
        let mut inputs = lock(&self.inputs);
        inputs.webhooks = webhooks;
        let health = inputs.health.clone();
        self.update(&mut inputs, health)
    }

    /// Publishes new health alone (say, after a failed sync, when there is no new
    /// snapshot): re-renders with the latest snapshot.
    pub fn publish_health(&self, health: HealthSnapshot) -> Result<(), RenderError> {
        let mut inputs = lock(&self.inputs);
        self.update(&mut inputs, health)
    }

    /// Publishes this replica's leases (what it syncs, whether it exports the
    /// DORA families): re-renders with the latest snapshot and health, so a
    /// replica that takes the metrics lease over exports the snapshot it last
    /// computed at once.
    pub fn publish_replica(&self, replica: Option<ReplicaHealth>) -> Result<(), RenderError> {
        let mut inputs = lock(&self.inputs);
        if inputs.replica == replica {
            return Ok(());
        }
        inputs.replica = replica;
        let health = inputs.health.clone();
        self.update(&mut inputs, health)
    }

    /// Sets the repositories `/readyz` waits for (those the latest round
    /// synced: discovery adds and drops some) and what is not enumerated yet;
    /// seen at the next publish.
    pub fn set_scope(&self, repositories: Vec<RepoName>, unlisted: Vec<String>) {
        let mut inputs = lock(&self.inputs);
        inputs.configured = repositories.into_iter().collect();
        let configured = inputs.configured.clone();
        inputs.synced.retain(|r| configured.contains(r));
        inputs.unlisted = unlisted;
    }

    fn update(&self, inputs: &mut Inputs, health: HealthSnapshot) -> Result<(), RenderError> {
        // A repository read by several sources (deployments from Argo CD or
        // Jenkins, commits from GitHub) is synced once every one of them has
        // synced it.
        let mut every_source: BTreeMap<&RepoName, bool> = BTreeMap::new();
        for repo in health
            .sources
            .iter()
            .flat_map(|source| &source.repositories)
        {
            *every_source.entry(&repo.repository).or_insert(true) &= repo.last_success.is_some();
        }
        let newly_synced: Vec<RepoName> = every_source
            .into_iter()
            .filter(|(repository, synced)| *synced && inputs.configured.contains(*repository))
            .map(|(repository, _)| repository.clone())
            .collect();
        inputs.synced.extend(newly_synced);
        inputs.health = health;
        let page = build_page(&self.options, inputs, &self.renders)?;
        *lock(&self.page) = Arc::new(page);
        Ok(())
    }

    /// The page every request reads; cheap (an `Arc` clone under a short lock).
    pub fn page(&self) -> Arc<Page> {
        Arc::clone(&lock(&self.page))
    }

    /// The latest published snapshot, if any.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        lock(&self.inputs).snapshot.clone()
    }

    pub fn readiness(&self) -> Readiness {
        self.page().readiness.clone()
    }

    pub fn options(&self) -> &ExporterOptions {
        &self.options
    }

    /// How many times the metrics text has been rendered (once at creation, then
    /// once per publish): scrapes must leave it unchanged.
    pub fn render_count(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }
}

fn build_page(
    options: &ExporterOptions,
    inputs: &Inputs,
    renders: &AtomicU64,
) -> Result<Page, RenderError> {
    let with_counters;
    let health = if inputs.pushes.is_empty() && inputs.webhooks.is_empty() {
        &inputs.health
    } else {
        with_counters = HealthSnapshot {
            pushes: inputs.pushes.clone(),
            webhooks: inputs.webhooks.clone(),
            ..inputs.health.clone()
        };
        &with_counters
    };
    let metrics = render_replica(
        inputs.snapshot.as_deref(),
        health,
        inputs.replica.as_ref(),
        &options.version,
    )?;
    renders.fetch_add(1, Ordering::Relaxed);
    let readiness = Readiness {
        has_snapshot: inputs.snapshot.is_some(),
        pending: inputs
            .configured
            .difference(&inputs.synced)
            .cloned()
            .collect(),
        unlisted: inputs.unlisted.clone(),
        status_unrecorded: inputs.health.status_unrecorded,
    };
    Ok(Page {
        metrics: Bytes::from(metrics),
        readiness,
        evaluated_at: inputs.snapshot.as_ref().map(|s| s.evaluated_at),
        history: HistoryProgress::of(&inputs.health, &inputs.configured),
    })
}

/// A panic while holding either lock cannot leave its data half-written (both are
/// replaced whole), so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repos(names: &[&str]) -> Vec<RepoName> {
        names.iter().map(|n| RepoName::parse(n).unwrap()).collect()
    }

    #[test]
    fn reason_names_what_is_missing() {
        let cases: &[(bool, &[&str], &str)] = &[
            (true, &[], "ready"),
            (false, &[], "not ready: no metrics published yet"),
            (
                true,
                &["acme/api"],
                "not ready: waiting for the first successful sync of acme/api",
            ),
            (
                false,
                &["acme/api", "acme/web"],
                "not ready: no metrics published yet; waiting for the first successful sync of acme/api, acme/web",
            ),
        ];
        for (has_snapshot, pending, expected) in cases {
            let readiness = Readiness {
                has_snapshot: *has_snapshot,
                pending: repos(pending),
                unlisted: Vec::new(),
                status_unrecorded: false,
            };
            assert_eq!(readiness.reason(), *expected);
        }
    }

    #[test]
    fn reason_says_when_the_store_cannot_record_syncs() {
        let readiness = Readiness {
            has_snapshot: true,
            pending: repos(&["acme/api"]),
            unlisted: Vec::new(),
            status_unrecorded: true,
        };
        assert_eq!(
            readiness.reason(),
            "not ready: waiting for the first successful sync of acme/api; the store cannot \
             record syncs (read-only or full? the log names the file and the error)"
        );
    }

    #[test]
    fn reason_is_bounded() {
        let names: Vec<String> = (0..MAX_LISTED_PENDING + 3)
            .map(|i| format!("acme/r{i:02}"))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let readiness = Readiness {
            has_snapshot: true,
            pending: repos(&names),
            unlisted: Vec::new(),
            status_unrecorded: false,
        };
        let reason = readiness.reason();
        assert!(reason.ends_with("acme/r09 and 3 more"), "{reason}");
        assert!(!reason.contains("acme/r10"), "{reason}");
    }
}
