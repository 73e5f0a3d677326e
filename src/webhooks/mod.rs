//! GitHub webhooks: `POST /webhooks/github` takes GitHub's deliveries
//! (`docs/webhooks.md`) and, for an event that changes what the collector reads
//! of a configured repository, asks the daemon to sync that repository at once.
//!
//! A delivery is a hint, not data: only the repository it names is used, and the
//! sync reads GitHub through the same incremental path as the poll. So a lost
//! delivery only delays a number until the next poll, and a forged one that
//! passed the signature can cause a sync but never a wrong number. Every delivery
//! is verified (HMAC-SHA256 of the raw body with the hook's secret, in constant
//! time) before its JSON is parsed, and one delivered twice is done once.
//!
//! - `signature`: `X-Hub-Signature-256` (pure).
//! - `deliveries`: the delivery ids already done, bounded in count and time (pure).
//! - `event`: the event label and the repository a body names (pure).
//! - `handler`: the route: the checks in order and the answers.
//!
//! The daemon builds [`Webhooks`] from the configuration with a [`SyncHook`]
//! into its scheduler, merges [`Webhooks::router`] into the server and
//! re-renders the [`WebhookCounters`] when they change. Not here: when the sync
//! runs and how deliveries for one repository are gathered into one sync (the
//! daemon's scheduler), the sync itself (`sources`), the metrics, the HTTP server.

mod deliveries;
mod event;
mod handler;
mod signature;

pub use deliveries::{DELIVERY_MEMORY, MAX_DELIVERY_ID_BYTES, MAX_REMEMBERED_DELIVERIES};
pub use event::{Event, EVENT_HEADER};
pub use handler::{
    BODY_READ_TIMEOUT, DELIVERY_HEADER, MAX_BODY_BYTES, MAX_BUDGET_WAIT, MAX_BUFFERED_BYTES,
};
pub use signature::SIGNATURE_HEADER;

use crate::config::Config;
use crate::domain::RepoName;
use axum::routing::post;
use axum::Router;
use deliveries::Deliveries;
use signature::Verifier;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Notify, Semaphore};

/// The path GitHub posts to.
pub const GITHUB_PATH: &str = "/webhooks/github";

/// Asks the daemon for a sync of a repository of `[[github.repositories]]`; it
/// returns at once (the sync runs on the scheduler).
pub type SyncHook = Arc<dyn Fn(&RepoName) + Send + Sync>;

/// How one delivery ended: the `outcome` label of
/// `dora_collector_webhook_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WebhookOutcome {
    /// `202`: a sync of the repository is asked for; or `200` to a `ping`.
    Accepted,
    /// `202`: this `X-GitHub-Delivery` was done before; nothing is done again.
    Duplicate,
    /// `401`: no signature, a malformed one, or one that does not match.
    Unauthorized,
    /// `400`, `408`, `415`: not the event's JSON, a missing header, a body too
    /// slow, another content type.
    Invalid,
    /// `413`: a body over [`MAX_BODY_BYTES`].
    TooLarge,
    /// `429`: more bodies than [`MAX_BUFFERED_BYTES`] arriving at once.
    RateLimited,
    /// `202`: an event the collector does not use, or a repository it does not
    /// read.
    Ignored,
}

impl WebhookOutcome {
    /// Every outcome, in label order.
    pub const ALL: [WebhookOutcome; 7] = [
        WebhookOutcome::Accepted,
        WebhookOutcome::Duplicate,
        WebhookOutcome::Unauthorized,
        WebhookOutcome::Invalid,
        WebhookOutcome::TooLarge,
        WebhookOutcome::RateLimited,
        WebhookOutcome::Ignored,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Unauthorized => "unauthorized",
            WebhookOutcome::Invalid => "invalid",
            WebhookOutcome::TooLarge => "too_large",
            WebhookOutcome::RateLimited => "rate_limited",
            WebhookOutcome::Ignored => "ignored",
        }
    }

    /// Whether a delivery of `event` can end so (a ping is never ignored, an
    /// unused event never accepted).
    const fn possible(self, event: Event) -> bool {
        match self {
            WebhookOutcome::Accepted => !matches!(event, Event::Other),
            WebhookOutcome::Ignored => !matches!(event, Event::Ping),
            _ => true,
        }
    }
}

/// Deliveries since the process started, by event and outcome. Every pair that
/// can occur starts at 0 (so that `increase()` sees the first one).
#[derive(Debug)]
pub struct WebhookCounters {
    counts: Mutex<BTreeMap<(Event, WebhookOutcome), u64>>,
    changed: Notify,
}

impl Default for WebhookCounters {
    fn default() -> Self {
        let mut counts = BTreeMap::new();
        for event in Event::ALL {
            for outcome in WebhookOutcome::ALL {
                if outcome.possible(event) {
                    counts.insert((event, outcome), 0);
                }
            }
        }
        WebhookCounters {
            counts: Mutex::new(counts),
            changed: Notify::new(),
        }
    }
}

impl WebhookCounters {
    fn add(&self, event: Event, outcome: WebhookOutcome) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((event, outcome)).or_default() += 1;
        drop(counts);
        self.changed.notify_one();
    }

    /// `(event, outcome, count)`, sorted.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .map(|((event, outcome), count)| (event.as_str(), outcome.as_str(), *count))
            .collect()
    }

    /// Waits until a delivery has been counted since the last wait ended.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// What the handler shares.
struct WebhookState {
    verifier: Verifier,
    /// The repositories of `[[github.repositories]]`.
    repositories: HashSet<RepoName>,
    /// The organisations of `[[github.organizations]]` (lowercase): a delivery
    /// about any of their repositories asks for its sync (one discovery does not
    /// select, or has not found yet, is then left alone by the scheduler).
    organizations: HashSet<String>,
    deliveries: Mutex<Deliveries>,
    /// The bodies' memory: one permit per [`handler::BUDGET_UNIT`] bytes of
    /// [`MAX_BUFFERED_BYTES`].
    budget: Semaphore,
    counters: Arc<WebhookCounters>,
    sync: SyncHook,
}

/// The webhook routes of one daemon.
pub struct Webhooks {
    state: Arc<WebhookState>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl Webhooks {
    /// GitHub's webhooks of `config` (`None` without `[webhooks.github]`), asking
    /// `sync` for the syncs deliveries call for.
    pub fn github(config: &Config, sync: SyncHook) -> Option<Webhooks> {
        let hook = config.webhooks.github.as_ref()?;
        let state = WebhookState {
            verifier: Verifier::new(&hook.secret),
            repositories: config
                .github_repositories()
                .iter()
                .map(|repo| repo.name.clone())
                .collect(),
            organizations: config
                .github
                .iter()
                .flat_map(|github| &github.organizations)
                .map(|org| org.name.as_str().to_ascii_lowercase())
                .collect(),
            deliveries: Mutex::new(Deliveries::default()),
            budget: Semaphore::new(handler::budget_units(MAX_BUFFERED_BYTES)),
            counters: Arc::new(WebhookCounters::default()),
            sync,
        };
        Some(Webhooks {
            state: Arc::new(state),
        })
    }

    /// The route `POST /webhooks/github`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(GITHUB_PATH, post(handler::github))
            .with_state(Arc::clone(&self.state))
    }

    /// The delivery counters.
    pub fn counters(&self) -> Arc<WebhookCounters> {
        Arc::clone(&self.state.counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_possible_pair_starts_at_zero_and_labels_are_bounded() {
        let counters = WebhookCounters::default();
        let pairs = counters.snapshot();
        // 8 events x 7 outcomes, less a ping ignored and another event accepted.
        assert_eq!(pairs.len(), 54);
        assert!(pairs.iter().all(|(_, _, count)| *count == 0));
        assert!(!pairs.contains(&("ping", "ignored", 0)));
        assert!(!pairs.contains(&("other", "accepted", 0)));
        counters.add(Event::Push, WebhookOutcome::Accepted);
        assert!(counters.snapshot().contains(&("push", "accepted", 1)));
    }
}
