//! GitHub webhooks inside the daemon: the route of
//! [`Webhooks`](crate::webhooks::Webhooks), whose deliveries ask the scheduler
//! for an out-of-turn sync of their repository ([`SyncRequests`]), and the task
//! that re-renders the delivery counters at most every
//! [`WEBHOOK_COUNTERS_DEBOUNCE`] while deliveries arrive.
//!
//! Not here: the checks and answers (`webhooks`), when the sync runs
//! (`out_of_turn`, the scheduler), the sync itself (`sources`).

use super::out_of_turn::SyncRequests;
use crate::config::Config;
use crate::domain::RepoName;
use crate::exporter::{ExporterState, WebhookCount};
use crate::sources::github::SOURCE_NAME;
use crate::webhooks::{WebhookCounters, Webhooks};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long the counters' publisher gathers deliveries before it re-renders
/// the page: a burst of deliveries costs one render.
pub(crate) const WEBHOOK_COUNTERS_DEBOUNCE: Duration = Duration::from_millis(500);

/// The webhook route and the counters' publisher for `config`; `None` without
/// `[webhooks.github]`.
pub(crate) fn start(
    config: &Config,
    requests: Arc<SyncRequests>,
    state: Arc<ExporterState>,
    shutdown: CancellationToken,
) -> Option<(Router, JoinHandle<()>)> {
    let hook = Arc::new(move |repository: &RepoName| {
        requests.request(SOURCE_NAME, repository, tokio::time::Instant::now());
    });
    let webhooks = Webhooks::github(config, hook)?;
    let counters = webhooks.counters();
    publish_counters(&state, &counters);
    let publisher = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = counters.changed() => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(WEBHOOK_COUNTERS_DEBOUNCE) => {}
            }
            publish_counters(&state, &counters);
        }
    });
    Some((webhooks.router(), publisher))
}

fn publish_counters(state: &ExporterState, counters: &WebhookCounters) {
    let deliveries = counters
        .snapshot()
        .into_iter()
        .map(|(event, outcome, count)| WebhookCount {
            event: event.to_owned(),
            outcome: outcome.to_owned(),
            count,
        })
        .collect();
    if let Err(error) = state.publish_webhooks(deliveries) {
        tracing::error!(%error, "cannot publish the webhook counters");
    }
}
