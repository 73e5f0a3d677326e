//! The daemon: the scheduler that runs sync cycles (sources → store), recomputes
//! the metrics after each (store → engine → `Snapshot`) and publishes them to the
//! exporter, plus the HTTP server that serves them.
//!
//! [`run`] is the whole daemon (mini-redis style): the caller binds the listener
//! and owns the shutdown future, so tests bind `127.0.0.1:0`. [`start`] is the same
//! with a [`DaemonHandle`] to trigger a sync, wait for cycles and shut down, and
//! [`RunOptions`] injects the [`Clock`] (tests fix time) and marks simulated data.
//! [`sync_once`] is `sync --once`: one cycle, no HTTP, no engine.
//!
//! Shutdown is one [`CancellationToken`] given to every task: the HTTP server stops
//! accepting and finishes in-flight requests; the scheduler stops its sync between
//! two requests, never inside a store call (those always run to completion on the
//! blocking pool), and does not publish a cut-short cycle. [`DaemonHandle::shutdown`]
//! waits for both tasks, at most `server.shutdown_grace_period`: then the HTTP
//! server closes the connections still open and the sync task is dropped (a store
//! write still running is either committed or, should the process exit first,
//! rolled back by SQLite: never half-applied).
//!
//! - `clock`: `Clock`, `SystemClock`, `ManualClock`.
//! - `cycle`: one sync cycle over every repository, and its report.
//! - `health`: the collector's health as published.
//! - `retry`: when a repository that failed is tried again (soon, not a poll
//!   interval later).
//! - `out_of_turn`: the syncs of single repositories asked for between cycles
//!   (by webhook deliveries), gathered per repository.
//! - `replicas`: replicas sharing a PostgreSQL store: which repositories this
//!   one syncs (their leases), whether it exports the DORA families (the
//!   metrics lease), the renewals.
//! - `scope`: the repositories the metrics cover and the engine's configuration
//!   for them, renewed after every round (discovery changes them).
//! - `push`, `webhooks`: the push API's and the webhooks' routes wired into the
//!   server and the scheduler.
//! - `server`: the HTTP server's limits and timeouts, and its graceful shutdown
//!   with a deadline.
//! - `demo`: the configuration `demo` runs with.
//!
//! Not here: what a source reads (`sources`), the computation (`dora`), the text
//! format (`exporter`), command-line parsing (`cli`).

mod clock;
mod cycle;
#[cfg(feature = "demo")]
pub mod demo;
mod health;
mod ledger;
mod out_of_turn;
mod push;
mod replicas;
mod retry;
mod scope;
pub mod server;
mod webhooks;

pub use clock::{Clock, ManualClock, SystemClock};
use cycle::sync_assigned;
pub(crate) use cycle::sync_selected;
pub use cycle::{sync_all, CycleProgress, CycleReport, RepoOutcome, RepoReport};
pub use health::HealthTracker;
use out_of_turn::SyncRequests;
pub use out_of_turn::OUT_OF_TURN_DEBOUNCE;
pub use retry::RetryQueue;
pub(crate) use retry::FIRST_RETRY_DELAY;

use crate::config::{Config, StorageConfig};
use crate::domain::{RepoName, Team};
use crate::dora::EventsBuilder;
use crate::dora::{self, EngineConfig};
use crate::exporter::{router, ExporterOptions, ExporterState, StoredSuccess};
use crate::sources::argocd::ArgoCdSource;
use crate::sources::github::{GithubSource, RetryPolicy};
use crate::sources::gitlab::GitlabSource;
use crate::sources::jenkins::JenkinsSource;
use crate::sources::pagerduty::PagerDutySource;
use crate::sources::Source;
use crate::store::SharedStore;
use crate::store::{SqliteStore, StoreError};
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;

/// The share of the poll interval added at random to each wait (up to
/// [`MAX_JITTER`]), so that many collectors started together do not poll GitHub in
/// lockstep.
pub(crate) const JITTER_FRACTION: f64 = 0.1;

/// The most jitter added to one wait: a minute keeps a long interval predictable.
pub(crate) const MAX_JITTER: Duration = Duration::from_secs(60);

/// How often, at most, the repositories whose first sync succeeded are
/// published while their cycle still runs: often enough that a window appears
/// within seconds of its history being complete, rarely enough that
/// recomputing a large organisation's snapshot does not slow its first sync.
pub(crate) const FIRST_SYNC_PUBLISH_INTERVAL: Duration = Duration::from_secs(5);

/// The wait before the next cycle: `interval` plus `random` (0 to 1) times the
/// jitter bound.
pub(crate) fn next_delay(interval: Duration, random: f64) -> Duration {
    let bound = interval.mul_f64(JITTER_FRACTION).min(MAX_JITTER);
    interval + bound.mul_f64(random.clamp(0.0, 1.0))
}

/// What differs between a production daemon, the demo and a test.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where `now` comes from (default: the system clock).
    pub clock: Arc<dyn Clock>,
    /// The data is simulated: the landing page says so (`demo`).
    pub simulated: bool,
    /// Retries and rate-limit waits of the sources (default: production; tests
    /// inject short waits).
    pub retry: RetryPolicy,
    /// The wait before a failed repository is first tried again (default
    /// [`FIRST_RETRY_DELAY`]; doubles per failure in a row, up to the poll
    /// interval).
    pub first_retry_delay: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            clock: Arc::new(SystemClock),
            simulated: false,
            retry: RetryPolicy::default(),
            first_retry_delay: FIRST_RETRY_DELAY,
        }
    }
}

/// Cycles completed so far and the latest report.
#[derive(Debug, Clone, Default)]
pub struct Cycles {
    pub completed: u64,
    pub last: Option<Arc<CycleReport>>,
}

/// Runs the daemon on `listener` until `shutdown` completes, then shuts down
/// gracefully. Errors: the store cannot be opened, the HTTP client cannot be set
/// up, the server fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with(config, listener, shutdown, RunOptions::default()).await
}

/// [`run`] with options (a clock, the demo's `simulated` flag).
pub(crate) async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    options: RunOptions,
) -> anyhow::Result<()> {
    let mut handle = start(config, listener, options).await?;
    tokio::select! {
        () = shutdown => tracing::info!("shutting down"),
        result = &mut handle.server => {
            // The server stopped by itself: report why after stopping the rest.
            handle.shutdown.cancel();
            let _ = (&mut handle.scheduler).await;
            return match result {
                Ok(Ok(())) => Err(anyhow::anyhow!("the HTTP server stopped unexpectedly")),
                Ok(Err(error)) => Err(anyhow::anyhow!("the HTTP server failed: {error}")),
                Err(error) => Err(anyhow::anyhow!("the HTTP server task failed: {error}")),
            };
        }
    }
    handle.shutdown().await
}

/// A running daemon.
pub struct DaemonHandle {
    addr: SocketAddr,
    state: Arc<ExporterState>,
    trigger: mpsc::Sender<()>,
    /// Out-of-turn syncs for the scheduler.
    requests: Arc<SyncRequests>,
    /// The sources (their repositories change with discovery).
    sources: Vec<Arc<dyn Source>>,
    cycles: watch::Receiver<Cycles>,
    shutdown: CancellationToken,
    /// `server.shutdown_grace_period`.
    grace: Duration,
    server: JoinHandle<std::io::Result<()>>,
    scheduler: JoinHandle<()>,
    /// The push API's writer and publisher (none without `[ingest]`), the
    /// webhook counters' publisher (none without `[webhooks]`).
    tasks: Vec<JoinHandle<()>>,
}

impl DaemonHandle {
    /// The address the HTTP server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The published metrics and readiness.
    pub fn exporter(&self) -> &Arc<ExporterState> {
        &self.state
    }

    /// Starts a sync cycle now instead of at the end of the poll interval (if one
    /// is running, the next starts as soon as it ends).
    pub fn sync_now(&self) {
        let _ = self.trigger.try_send(());
    }

    /// Syncs these repositories (of every source that has them) out of turn,
    /// as a webhook delivery does: within [`OUT_OF_TURN_DEBOUNCE`], or right
    /// after the sync that is running. The poll's rhythm, the cycle count and
    /// the retries are unchanged. Returns how many syncs were asked for
    /// (repositories no source has are left out).
    pub fn sync_repositories(&self, repositories: &[RepoName]) -> usize {
        let now = tokio::time::Instant::now();
        let mut asked = 0;
        for source in &self.sources {
            for repository in source.repositories() {
                if repositories.contains(&repository) {
                    self.requests.request(source.name(), &repository, now);
                    asked += 1;
                }
            }
        }
        asked
    }

    /// Waits until `n` cycles have completed since start (and been published);
    /// returns the latest report, or `None` if the scheduler has stopped first.
    pub async fn wait_for_cycles(&mut self, n: u64) -> Option<Arc<CycleReport>> {
        self.cycles
            .wait_for(|c| c.completed >= n)
            .await
            .ok()
            .and_then(|c| c.last.clone())
    }

    /// Cycles completed so far.
    pub fn cycles(&self) -> Cycles {
        self.cycles.borrow().clone()
    }

    /// Stops every task and waits for them, at most the shutdown grace period:
    /// in-flight HTTP requests complete, the sync stops between two requests, a
    /// store write finishes. What is still running at the deadline is stopped (the
    /// HTTP server closes its connections; the sync task is dropped) and this
    /// returns `Ok`, as after a clean stop.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.grace;
        let mut scheduler = self.scheduler;
        match tokio::time::timeout_at(deadline, &mut scheduler).await {
            Ok(result) => result.map_err(|e| anyhow::anyhow!("the sync task failed: {e}"))?,
            Err(_) => {
                scheduler.abort();
                tracing::warn!(
                    grace_seconds = self.grace.as_secs_f64(),
                    "the sync did not stop within the shutdown grace period; stopped it \
                     (the store keeps every batch committed before)"
                );
            }
        }
        // The server keeps its own deadline, started by the same cancellation.
        let server = self.server.await;
        for mut task in self.tasks {
            // The writer ends once the server's routes are gone and its queue
            // is empty: every push answered 202 is already kept; one still
            // queued at the deadline was never acknowledged (its client retries).
            // The publishers end with the cancellation.
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
        match server {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow::anyhow!("the HTTP server failed: {error}")),
            Err(error) => Err(anyhow::anyhow!("the HTTP server task failed: {error}")),
        }
    }
}

/// What the scheduler task owns.
struct Scheduler {
    sources: Vec<Arc<dyn Source>>,
    store: SharedStore,
    state: Arc<ExporterState>,
    clock: Arc<dyn Clock>,
    /// What the configuration fixes of the scope.
    base: scope::ScopeBase,
    /// The repositories and the engine's configuration of the latest round.
    scope: scope::SharedScope,
    poll_interval: Duration,
    tracker: HealthTracker,
    retries: RetryQueue,
    shutdown: CancellationToken,
    trigger: mpsc::Receiver<()>,
    /// Syncs of single repositories asked for between cycles.
    requests: Arc<SyncRequests>,
    cycles: watch::Sender<Cycles>,
    /// Held while computing and publishing a snapshot, so that a recompute after
    /// pushes and one after a sync never publish out of order.
    publishing: Arc<tokio::sync::Mutex<()>>,
    /// The scope's teams as last kept in the store (written again only when
    /// they change).
    recorded_teams: Vec<(RepoName, Team)>,
    /// Which repositories this process syncs (all of them alone on its store).
    replica: Arc<replicas::Replica>,
}

/// Opens the store, sets up the sources, publishes what the store already holds
/// (a restarted daemon serves its numbers at once), and spawns the HTTP server and
/// the scheduler. The first sync cycle starts immediately.
pub async fn start(
    config: Config,
    listener: TcpListener,
    options: RunOptions,
) -> anyhow::Result<DaemonHandle> {
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let store = open_configured_store(&config.storage).await?;
    let sources = sources_with(&config, options.retry.clone())?;
    let base = scope::ScopeBase::new(&config);
    let (repositories, engine) = base.current(&sources);
    let state = Arc::new(
        ExporterState::new(ExporterOptions {
            simulated: options.simulated,
            push_api: config.ingest.is_some(),
            github_webhooks: config.webhooks.github.is_some(),
            sources: config.repository_sources(),
            ..ExporterOptions::new(repositories.clone())
        })
        .context("cannot render the initial metrics page")?,
    );
    let statuses = store
        .call(|store| store.sync_status())
        .await
        .context("cannot read the sync status")?;
    let shutdown = CancellationToken::new();
    let publishing = Arc::new(tokio::sync::Mutex::new(()));
    let (trigger_tx, trigger_rx) = mpsc::channel(1);
    let (cycles_tx, cycles_rx) = watch::channel(Cycles::default());
    let requests = Arc::new(SyncRequests::new(OUT_OF_TURN_DEBOUNCE));
    let (replica, lease_store) = start_replica(&config, &sources).await?;
    if let Err(error) = state.publish_replica(replica.health()) {
        tracing::error!(%error, "cannot publish the health metrics");
    }
    let handle_sources = sources.clone();
    let sources_for_leases = sources.clone();
    let scheduler = Scheduler {
        tracker: HealthTracker::new(&sources, &statuses),
        sources,
        store,
        state: Arc::clone(&state),
        clock: options.clock,
        base,
        scope: scope::SharedScope::new(repositories, engine),
        poll_interval: config.poll_interval().to_std(),
        retries: RetryQueue::new(options.first_retry_delay, config.poll_interval().to_std()),
        publishing: Arc::clone(&publishing),
        shutdown: shutdown.clone(),
        trigger: trigger_rx,
        requests: Arc::clone(&requests),
        cycles: cycles_tx,
        recorded_teams: Vec::new(),
        replica: Arc::clone(&replica),
    };
    if scheduler.tracker.any_synced() {
        // Numbers right from the first scrape after a restart.
        scheduler.publish().await;
    } else if let Err(error) = state.publish_health(
        scheduler
            .tracker
            .snapshot(&scheduler.sources, &scheduler.retries),
    ) {
        tracing::error!(%error, "cannot publish the health metrics");
    }
    let server_token = shutdown.clone();
    // `/report` is evaluated at the daemon's clock, like the metrics.
    let report_clock = Arc::clone(&scheduler.clock);
    let live = crate::report::LiveReport::new(
        Arc::new(config.clone()),
        Arc::new(move || report_clock.now()),
    )
    .with_frame(landing_frame(Arc::clone(&state), &config));
    let mut app = router(Arc::clone(&state)).merge(live.router());
    let mut tasks = Vec::new();
    if let Some(lease_store) = lease_store {
        tasks.push(tokio::spawn(replicas::keep_leases(
            replica,
            lease_store,
            sources_for_leases,
            Arc::clone(&requests),
            Arc::clone(&state),
            shutdown.clone(),
        )));
    }
    if config.ingest.is_some() {
        let (routes, push_tasks) = push::start(
            &config,
            push::Publisher {
                store: scheduler.store.clone(),
                state: Arc::clone(&state),
                clock: Arc::clone(&scheduler.clock),
                scope: scheduler.scope.clone(),
                publishing,
                shutdown: shutdown.clone(),
            },
        )
        .await?;
        app = app.merge(routes);
        tasks.extend(push_tasks);
    }
    if let Some((routes, publisher)) = webhooks::start(
        &config,
        Arc::clone(&requests),
        Arc::clone(&state),
        shutdown.clone(),
    ) {
        app = app.merge(routes);
        tasks.push(publisher);
    }
    let grace = config.server.shutdown_grace_period.to_std();
    let server = tokio::spawn(server::serve(listener, app, server_token, grace));
    tracing::info!(
        address = %addr,
        repositories = state.options().repositories.len(),
        poll_interval = %config.poll_interval(),
        "serving /metrics, /healthz, /readyz and /report"
    );
    let scheduler = tokio::spawn(scheduler.run());
    Ok(DaemonHandle {
        addr,
        state,
        trigger: trigger_tx,
        requests,
        sources: handle_sources,
        cycles: cycles_rx,
        shutdown,
        grace,
        server,
        scheduler,
        tasks,
    })
}

impl Scheduler {
    /// Cycles every poll interval (or when triggered); in between, retry rounds
    /// for the repositories that failed, as they come due, and out-of-turn
    /// rounds for the repositories asked for (webhooks). Those rounds are
    /// published like cycles but not counted in [`Cycles`].
    async fn run(mut self) {
        'cycles: loop {
            // This cycle syncs every repository after every request so far.
            self.requests.served_by_cycle();
            let report = self.cycle_publishing_first_syncs().await;
            if !self.take_in(&report).await {
                break;
            }
            log_cycle(&report);
            self.publish().await;
            self.cycles.send_modify(|cycles| {
                cycles.completed += 1;
                cycles.last = Some(Arc::new(report));
            });
            let next_cycle =
                tokio::time::Instant::now() + next_delay(self.poll_interval, rand::random::<f64>());
            loop {
                let retry_at = self.retries.next_due().filter(|due| *due < next_cycle);
                let requested_at = self.requests.next_due();
                let (round, due) = tokio::select! {
                    () = self.shutdown.cancelled() => break 'cycles,
                    () = tokio::time::sleep_until(next_cycle) => break,
                    Some(()) = self.trigger.recv() => break,
                    // A new request: look again at when the next one is due.
                    () = self.requests.requested() => continue,
                    () = sleep_until_some(retry_at) => {
                        ("retry of failed repositories", self.retries.due(tokio::time::Instant::now()))
                    }
                    () = sleep_until_some(requested_at) => {
                        ("out-of-turn sync", self.requests.take_due(tokio::time::Instant::now()))
                    }
                };
                if due.is_empty() {
                    continue;
                }
                let report = sync_selected(
                    &self.sources,
                    &self.store,
                    self.clock.as_ref(),
                    &self.shutdown,
                    &due,
                    &self.replica,
                )
                .await;
                if !self.take_in(&report).await {
                    break 'cycles;
                }
                tracing::info!(
                    repositories = report.repositories.len(),
                    failed = report.failures().count(),
                    "{round} finished"
                );
                self.publish().await;
            }
        }
        tracing::info!("sync stopped");
    }

    /// One cycle; while it runs, the repositories whose first sync succeeded
    /// are published every [`FIRST_SYNC_PUBLISH_INTERVAL`] (so a large
    /// organisation's numbers appear repository by repository, not after the
    /// whole first cycle). A cycle with no first sync publishes only at its end.
    async fn cycle_publishing_first_syncs(&mut self) -> CycleReport {
        let finished: Arc<std::sync::Mutex<Vec<RepoReport>>> = Arc::default();
        let first_synced = Arc::new(tokio::sync::Notify::new());
        let progress = {
            let finished = Arc::clone(&finished);
            let first_synced = Arc::clone(&first_synced);
            move |report: &RepoReport| {
                if matches!(&report.outcome, RepoOutcome::Synced(stats) if stats.first_sync) {
                    finished
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(report.clone());
                    first_synced.notify_one();
                }
            }
        };
        let sync = sync_assigned(
            &self.sources,
            &self.store,
            self.clock.as_ref(),
            &self.shutdown,
            &progress,
            &self.replica,
        );
        tokio::pin!(sync);
        loop {
            tokio::select! {
                report = &mut sync => return report,
                () = async {
                    first_synced.notified().await;
                    tokio::time::sleep(FIRST_SYNC_PUBLISH_INTERVAL).await;
                } => {}
            }
            let done = std::mem::take(
                &mut *finished
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for report in &done {
                self.tracker.record_success(report);
            }
            // Discovery ran at the cycle's start: the scope is this cycle's.
            renew_scope(
                &self.base,
                &self.sources,
                &mut self.tracker,
                &mut self.retries,
                &self.state,
                &self.scope,
            );
            let publish = self.publish();
            tokio::pin!(publish);
            tokio::select! {
                report = &mut sync => {
                    publish.await;
                    return report;
                }
                () = &mut publish => {}
            }
        }
    }

    /// Takes in a finished round: health, and the retries it calls for (logged
    /// with when they come). False when shutdown cut the round short (then
    /// nothing is published).
    async fn take_in(&mut self, report: &CycleReport) -> bool {
        self.tracker.record(report);
        if self.shutdown.is_cancelled() {
            return false;
        }
        let scheduled = self.retries.record(
            report,
            tokio::time::Instant::now(),
            self.clock.now(),
            &mut || rand::random::<f64>(),
        );
        for retry in &scheduled {
            tracing::warn!(
                source = retry.source,
                repository = %retry.repository,
                failures_in_a_row = retry.failures,
                retry_in_seconds = retry.delay.as_secs(),
                next_try_at = %retry.due_at,
                "the repository's sync failed; trying it again soon"
            );
        }
        self.renew_scope();
        self.record_teams().await;
        true
    }

    /// Keeps the discovered repositories' teams in the store when they changed,
    /// so that reports and backfills made from the store alone name them with
    /// their teams (also once they left the scope; configured repositories are
    /// named by the configuration). A failure is logged: the metrics do not
    /// depend on it, and the next round tries again.
    async fn record_teams(&mut self) {
        let (repositories, engine) = self.scope.get();
        let teams: Vec<(RepoName, Team)> = repositories
            .into_iter()
            .filter(|repository| !self.base.configured(repository))
            .map(|repository| {
                let team = engine.teams.get(&repository).cloned().unwrap_or_default();
                (repository, team)
            })
            .collect();
        if teams == self.recorded_teams {
            return;
        }
        let at = self.clock.now();
        let written = teams.clone();
        match self
            .store
            .call(move |store| store.record_teams(&written, at))
            .await
        {
            Ok(()) => self.recorded_teams = teams,
            Err(error) => tracing::error!(%error, "cannot keep the repositories' teams"),
        }
    }

    /// Computes the snapshot from the store at the clock's `now` and publishes it
    /// with the current health; on failure the health alone.
    async fn publish(&self) {
        let _publishing = self.publishing.lock().await;
        let mut health = self.tracker.snapshot(&self.sources, &self.retries);
        match self.compute().await {
            Ok((snapshot, stored)) => {
                // A sync that finished after the health was taken may be in
                // the snapshot: its health is the store's.
                health.take_in_stored(&stored);
                if let Err(error) = self.state.publish(snapshot, health) {
                    tracing::error!(%error, "cannot publish the metrics");
                }
            }
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "cannot compute the metrics; serving the previous ones");
                if let Err(error) = self.state.publish_health(health) {
                    tracing::error!(%error, "cannot publish the health metrics");
                }
            }
        }
    }

    async fn compute(&self) -> anyhow::Result<(dora::Snapshot, Vec<StoredSuccess>)> {
        let (repositories, engine) = self.scope.get();
        compute_snapshot(&self.store, &repositories, &engine, self.clock.as_ref()).await
    }

    /// Renews the scope after a round: the repositories the sources sync now
    /// (discovery may have added or dropped some; the dropped ones' series and
    /// health leave `/metrics`, their history stays in the store) and their
    /// teams; tells the exporter which repositories `/readyz` waits for.
    fn renew_scope(&mut self) {
        renew_scope(
            &self.base,
            &self.sources,
            &mut self.tracker,
            &mut self.retries,
            &self.state,
            &self.scope,
        );
    }
}

/// [`Scheduler::renew_scope`] from the scheduler's parts (also while a cycle
/// borrows the others).
fn renew_scope(
    base: &scope::ScopeBase,
    sources: &[Arc<dyn Source>],
    tracker: &mut HealthTracker,
    retries: &mut RetryQueue,
    state: &ExporterState,
    scope: &scope::SharedScope,
) {
    let (repositories, engine) = base.current(sources);
    tracker.retain_current(sources);
    let current: std::collections::HashSet<(&'static str, RepoName)> = sources
        .iter()
        .flat_map(|s| s.repositories().into_iter().map(move |r| (s.name(), r)))
        .collect();
    retries.retain(&|source, repository| current.contains(&(source, repository.clone())));
    let pending: Vec<String> = sources.iter().flat_map(|s| s.pending_discovery()).collect();
    state.set_scope(repositories.clone(), pending);
    scope.set(repositories, engine);
}

/// The snapshot of the configured repositories and of every repository with
/// pushed events, from `store` at the clock's `now`.
///
/// A repository of a source whose first sync has not succeeded yet is left
/// out (its series are absent, and the rollups count it nowhere): its stored
/// history may be a partial one, and a window over it would be wrong. Once a
/// sync succeeded, the history is complete back to the lookback, which covers
/// every window (`check-config` makes it).
///
/// Returns, with the snapshot, the successful syncs it was computed from, for
/// the health published with it.
pub(crate) async fn compute_snapshot(
    store: &SharedStore,
    configured: &[RepoName],
    engine: &EngineConfig,
    clock: &dyn Clock,
) -> anyhow::Result<(dora::Snapshot, Vec<StoredSuccess>)> {
    let configured = configured.to_vec();
    let (events, incomplete, stored) = store
        .call(move |store| {
            let stored: Vec<StoredSuccess> = store
                .sync_status()?
                .into_iter()
                .filter_map(|status| {
                    Some(StoredSuccess {
                        last_success_at: status.last_success_at?,
                        source: status.source,
                        repository: status.repository,
                        history_since: status.history_since,
                    })
                })
                .collect();
            let synced: std::collections::HashSet<RepoName> =
                stored.iter().map(|s| s.repository.clone()).collect();
            let (mut repositories, incomplete): (Vec<RepoName>, Vec<RepoName>) = configured
                .into_iter()
                .partition(|repository| synced.contains(repository));
            for pushed in store.pushed_repositories()? {
                if !repositories.contains(&pushed) && !incomplete.contains(&pushed) {
                    repositories.push(pushed);
                }
            }
            let events = EventsBuilder::collect(|sink| store.load_events(&repositories, sink))?;
            // The health published with the snapshot takes in the syncs of the
            // repositories it exports, not of those out of scope.
            let exported: std::collections::HashSet<&RepoName> = repositories.iter().collect();
            let stored: Vec<StoredSuccess> = stored
                .into_iter()
                .filter(|success| exported.contains(&success.repository))
                .collect();
            Ok((events, incomplete, stored))
        })
        .await
        .context("cannot read the events")?;
    let mut engine = engine.clone();
    for repository in &incomplete {
        engine.teams.remove(repository);
    }
    let now = clock.now();
    let snapshot = tokio::task::spawn_blocking(move || dora::compute(&events, &engine, now))
        .await
        .context("the computation failed")?;
    Ok((snapshot, stored))
}

/// This process's part on its store: alone on a SQLite file; on PostgreSQL a
/// replica with its leases first renewed (so the first cycle syncs its
/// share) and the store connection its renewals use.
async fn start_replica(
    config: &Config,
    sources: &[Arc<dyn Source>],
) -> anyhow::Result<(Arc<replicas::Replica>, Option<SharedStore>)> {
    if config.storage.url.is_none() {
        return Ok((Arc::new(replicas::Replica::single()), None));
    }
    // A store of its own: a renewal never waits behind a long load.
    let lease_store = open_configured_store(&config.storage).await?;
    let ttl = replicas::lease_ttl(config.poll_interval().to_std());
    let replica = Arc::new(replicas::Replica::shared(replicas::holder_id(), ttl));
    match replica
        .renew(&lease_store, &replicas::units_of(sources))
        .await
    {
        Ok(_) => {
            let health = replica.health().unwrap_or_default();
            tracing::info!(
                holder = replica.holder().unwrap_or_default(),
                lease_seconds = ttl.as_secs_f64(),
                held = health.syncs.len(),
                metrics_lease = health.metrics_lease,
                replicas = health.replicas,
                "a replica on a shared store: it syncs the repositories whose leases it holds"
            );
        }
        Err(error) => tracing::warn!(
            %error,
            "cannot take this replica's leases yet; it syncs nothing until a renewal succeeds"
        ),
    }
    Ok((replica, Some(lease_store)))
}

/// Sleeps until `at`; forever without one.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn log_cycle(report: &CycleReport) {
    let total = report.total();
    let failed = report.failures().count();
    tracing::info!(
        repositories = report.repositories.len(),
        failed,
        requests = total.requests,
        written = total.applied.total().written(),
        skipped_items = total.skipped_items,
        "sync cycle finished"
    );
}

/// Opens (creating or migrating) the store `storage` names: the SQLite file, or
/// the PostgreSQL database of `storage.url`.
pub async fn open_configured_store(storage: &StorageConfig) -> anyhow::Result<SharedStore> {
    let storage = storage.clone();
    let store = tokio::task::spawn_blocking(move || crate::store::open(storage.location()))
        .await
        .context("the store task failed")?
        .map_err(|error: StoreError| anyhow::anyhow!(error))?;
    Ok(SharedStore::from_box(store))
}

/// Opens (creating or migrating) the SQLite store at `path`.
pub async fn open_store(path: &Path) -> anyhow::Result<SharedStore> {
    let path = path.to_owned();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
        .await
        .context("the store task failed")?
        .map_err(|error: StoreError| anyhow::anyhow!(error))?;
    Ok(SharedStore::new(store))
}

/// What the landing page says of this server, read from the exporter state at
/// each request: version, readiness, the last evaluation, the routes served and
/// where each repository is read from.
fn landing_frame(state: Arc<ExporterState>, config: &Config) -> crate::report::FrameSource {
    let grafana_url = config
        .server
        .grafana_url
        .as_ref()
        .map(|url| url.as_str().trim_end_matches('/').to_owned());
    Arc::new(move || {
        let page = state.page();
        let options = state.options();
        crate::report::Frame {
            version: options.version.clone(),
            simulated: options.simulated,
            ready: page.readiness.is_ready(),
            readiness: page
                .readiness
                .missing()
                .unwrap_or_else(|| "every repository synced once over the lookback".to_owned()),
            snapshot: match page.evaluated_at {
                Some(at) => format!("Metrics evaluated at {at}"),
                None => "No metrics published yet".to_owned(),
            },
            push_api: options.push_api,
            github_webhooks: options.github_webhooks,
            grafana_url: grafana_url.clone(),
            sources: options
                .sources
                .iter()
                .map(|(name, source)| (name.as_str().to_owned(), *source))
                .collect(),
            history: page.history.to_string(),
        }
    })
}

/// The sources of `config` (Argo CD, Jenkins, GitHub, GitLab and PagerDuty, each when
/// configured), with the production retry policy.
pub fn sources(config: &Config) -> anyhow::Result<Vec<Arc<dyn Source>>> {
    sources_with(config, RetryPolicy::default())
}

/// [`sources`] with `retry` for retries and rate-limit waits.
pub(crate) fn sources_with(
    config: &Config,
    retry: RetryPolicy,
) -> anyhow::Result<Vec<Arc<dyn Source>>> {
    // The deployment sources first: within one cycle GitHub then reads the
    // change sets of the deployments they kept.
    let mut sources: Vec<Arc<dyn Source>> = Vec::new();
    // The code hosts' lookback (GitHub's, else GitLab's).
    let lookback = match (&config.github, &config.gitlab) {
        (Some(github), _) => github.lookback,
        (None, Some(gitlab)) => gitlab.lookback,
        (None, None) => crate::config::defaults::lookback(),
    };
    let lookback_seconds = i64::try_from(lookback.as_secs()).unwrap_or(i64::MAX);
    if let Some(argocd) = &config.argocd {
        let source = ArgoCdSource::new(argocd, lookback_seconds, retry.clone())
            .map_err(|error| anyhow::anyhow!("argocd: {error}"))?;
        sources.push(Arc::new(source));
    }
    if let Some(jenkins) = &config.jenkins {
        let source = JenkinsSource::new(jenkins, lookback_seconds, retry.clone())
            .map_err(|error| anyhow::anyhow!("jenkins: {error}"))?;
        sources.push(Arc::new(source));
    }
    if let Some(github) = &config.github {
        let github = GithubSource::with_policy(github, retry.clone())
            .map_err(|error| anyhow::anyhow!("github: {error}"))?
            .with_review_window(&config.metrics.windows);
        sources.push(Arc::new(github));
    }
    if let Some(gitlab) = &config.gitlab {
        let start = config.engine_config().lead_time_start;
        let gitlab = GitlabSource::with_policy(gitlab, start, retry.clone())
            .map_err(|error| anyhow::anyhow!("gitlab: {error}"))?;
        sources.push(Arc::new(gitlab));
    }
    if let Some(pagerduty) = &config.pagerduty {
        let pagerduty = PagerDutySource::new(pagerduty, lookback.to_std(), retry)
            .map_err(|error| anyhow::anyhow!("pagerduty: {error}"))?;
        sources.push(Arc::new(pagerduty));
    }
    Ok(sources)
}

/// `sync --once`: one cycle over every repository (writing the store), without the
/// engine or the HTTP server. `progress` is called as each repository finishes.
pub async fn sync_once(
    config: &Config,
    clock: Arc<dyn Clock>,
    shutdown: &CancellationToken,
    progress: &dyn CycleProgress,
) -> anyhow::Result<CycleReport> {
    sync_once_with(config, clock, shutdown, progress, RetryPolicy::default()).await
}

/// [`sync_once`] with `retry` for retries and rate-limit waits.
pub async fn sync_once_with(
    config: &Config,
    clock: Arc<dyn Clock>,
    shutdown: &CancellationToken,
    progress: &dyn CycleProgress,
    retry: RetryPolicy,
) -> anyhow::Result<CycleReport> {
    let store = open_configured_store(&config.storage).await?;
    let sources = sources_with(config, retry)?;
    let report = sync_all(&sources, &store, clock.as_ref(), shutdown, progress).await;
    log_cycle(&report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_is_the_interval_plus_bounded_jitter() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_delay(minute, 0.0), minute);
        assert_eq!(next_delay(minute, 1.0), Duration::from_secs(66));
        assert_eq!(next_delay(minute, 7.0), Duration::from_secs(66), "clamped");
        let hour = Duration::from_secs(3600);
        assert_eq!(next_delay(hour, 1.0), hour + MAX_JITTER);
        assert_eq!(next_delay(hour, 0.5), hour + MAX_JITTER / 2);
    }
}
