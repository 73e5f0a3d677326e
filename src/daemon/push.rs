//! The push API inside the daemon: opens the writer's own store connection,
//! starts the [`Ingest`](crate::ingest::Ingest) and its publisher, which
//! recomputes the metrics at most every [`PUSH_RECOMPUTE_DEBOUNCE`] after pushed
//! events arrive (not once per request) and re-renders the push counters.
//!
//! Not here: the routes and checks (`ingest`), the computation (`dora`).

use super::clock::Clock;
use super::compute_snapshot;
use super::scope::SharedScope;
use crate::config::Config;
use crate::exporter::{ExporterState, PushCount};
use crate::ingest::{Changes, Ingest, PushCounters};
use crate::store::{PostgresStore, SharedStore, SqliteStore, Store, StoreError};
use anyhow::Context as _;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long the publisher gathers pushes before it recomputes: the metrics
/// reflect a push within this plus one computation (well inside the 5 s
/// promised), and a storm of pushes costs one computation per period.
pub(crate) const PUSH_RECOMPUTE_DEBOUNCE: Duration = Duration::from_millis(500);

/// What the publisher needs of the daemon.
pub(crate) struct Publisher {
    pub(crate) store: SharedStore,
    pub(crate) state: Arc<ExporterState>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The repositories and the engine's configuration of the latest cycle.
    pub(crate) scope: SharedScope,
    pub(crate) publishing: Arc<tokio::sync::Mutex<()>>,
    pub(crate) shutdown: CancellationToken,
}

/// The push API's routes and tasks (the writer, the publisher) for `config`.
pub(crate) async fn start(
    config: &Config,
    publisher: Publisher,
) -> anyhow::Result<(Router, Vec<JoinHandle<()>>)> {
    let storage = config.storage.clone();
    let store = tokio::task::spawn_blocking(move || match &storage.url {
        // PostgreSQL makes every commit durable already (synchronous_commit).
        Some(url) => Ok(Box::new(PostgresStore::open(url)?) as Box<dyn Store>),
        None => {
            let store = SqliteStore::open(&storage.path)?;
            store.sync_every_commit()?;
            Ok::<_, StoreError>(Box::new(store) as Box<dyn Store>)
        }
    })
    .await
    .context("the store task failed")?
    .map_err(|error| anyhow::anyhow!(error))?;
    let clock = Arc::clone(&publisher.clock);
    let Some((ingest, writer)) = Ingest::start(
        config,
        SharedStore::from_box(store),
        Arc::new(move || clock.now()),
    ) else {
        return Ok((Router::new(), Vec::new()));
    };
    let router = ingest.router();
    let counters = ingest.counters();
    let changes = ingest.changes();
    drop(ingest);
    publish_counters(&publisher.state, &counters);
    let publisher = tokio::spawn(run(publisher, changes, counters));
    Ok((router, vec![writer, publisher]))
}

async fn run(publisher: Publisher, changes: Arc<Changes>, counters: Arc<PushCounters>) {
    let shutdown = &publisher.shutdown;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = changes.changed() => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(PUSH_RECOMPUTE_DEBOUNCE) => {}
        }
        let (data, _) = changes.take();
        if data {
            let _publishing = publisher.publishing.lock().await;
            let (repositories, engine) = publisher.scope.get();
            match compute_snapshot(
                &publisher.store,
                &repositories,
                &engine,
                publisher.clock.as_ref(),
            )
            .await
            {
                Ok((snapshot, stored)) => {
                    if let Err(error) = publisher.state.publish_snapshot(snapshot, &stored) {
                        tracing::error!(%error, "cannot publish the metrics");
                    }
                }
                Err(error) => tracing::error!(
                    error = %format!("{error:#}"),
                    "cannot compute the metrics after pushes; serving the previous ones"
                ),
            }
        }
        publish_counters(&publisher.state, &counters);
    }
}

fn publish_counters(state: &ExporterState, counters: &PushCounters) {
    let pushes = counters
        .snapshot()
        .into_iter()
        .map(|(client, outcome, count)| PushCount {
            client,
            outcome: outcome.to_owned(),
            count,
        })
        .collect();
    if let Err(error) = state.publish_pushes(pushes) {
        tracing::error!(%error, "cannot publish the push counters");
    }
}
