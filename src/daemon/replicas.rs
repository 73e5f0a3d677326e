//! Replicas sharing one PostgreSQL store: each repository is synced by the one
//! live replica holding its lease, and only the replica holding the metrics
//! lease exports the DORA families (every replica serves `/report`, `/readyz`
//! and its own health from the shared store).
//!
//! [`Replica`] is this process's view of its leases: the scheduler asks it
//! which repositories to sync ([`Replica::syncs`]) and marks the ones being
//! synced (kept at a renewal even beyond the fair share, so a first sync is
//! never handed over half-way). [`keep_leases`] renews them every
//! [`renew_interval`] on a store connection of its own (a long `load_events`
//! never delays a renewal), asks for an out-of-turn sync of every repository it
//! gains, tells the exporter of every change, and releases everything at a
//! clean shutdown. A replica killed without one loses its leases when they
//! expire, [`lease_ttl`] after its last renewal.
//!
//! On a store only one process opens (SQLite) there is nothing to share:
//! [`Replica::single`] syncs every repository and exports everything, as
//! before. Not here: the lease rows and the fair share (`store`), what a sync
//! does (`cycle`).

use super::out_of_turn::SyncRequests;
use crate::domain::RepoName;
use crate::exporter::{ExporterState, ReplicaHealth};
use crate::sources::Source;
use crate::store::{LeaseGrant, LeaseRequest, SharedStore, StoreError, REPOSITORY_LEASE_PREFIX};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A lease lasts this share of the poll interval (within [`MIN_LEASE_TTL`] and
/// [`MAX_LEASE_TTL`]): a killed replica's repositories are synced again by
/// another one well within two poll intervals (the lease expires, the next
/// renewal claims it and asks for an out-of-turn sync).
pub(crate) const LEASE_TTL_POLL_DIVISOR: u32 = 3;

/// The shortest lease: a renewal is a round trip to the database, which a
/// loaded server or machine may hold up for a second or two without a replica
/// losing its leases.
pub(crate) const MIN_LEASE_TTL: Duration = Duration::from_secs(3);

/// The longest lease: with the default 5-minute poll interval a killed
/// replica's repositories are taken over about a minute later.
pub(crate) const MAX_LEASE_TTL: Duration = Duration::from_secs(60);

/// Renewals per lease lifetime: two renewals in a row may fail (or be late)
/// before a live replica loses its leases.
pub(crate) const RENEWALS_PER_TTL: u32 = 3;

/// The lease lifetime for `poll_interval`.
pub(crate) fn lease_ttl(poll_interval: Duration) -> Duration {
    (poll_interval / LEASE_TTL_POLL_DIVISOR).clamp(MIN_LEASE_TTL, MAX_LEASE_TTL)
}

/// How often leases are renewed (and free ones claimed).
pub(crate) fn renew_interval(ttl: Duration) -> Duration {
    ttl / RENEWALS_PER_TTL
}

/// A lease's name for a sync unit.
fn lease_name(unit: &RepoName) -> String {
    format!("{REPOSITORY_LEASE_PREFIX}{unit}")
}

/// This replica's id: the host name (the pod's, under Kubernetes), the process
/// id and a random part, so that a restarted process never renews a dead
/// one's leases.
pub(crate) fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(100)
        .collect();
    let host = if host.is_empty() { "replica" } else { &host };
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[derive(Debug, Default)]
struct Leases {
    /// The units whose leases are held, by lease name.
    held: HashMap<String, RepoName>,
    metrics: bool,
    replicas: u64,
    /// The leases lapse on the server by then at the latest (from the start
    /// of the last successful renewal): after it, nothing is held.
    valid_until: Option<Instant>,
    /// Units being synced now, by lease name, with how many syncs.
    busy: HashMap<String, usize>,
}

/// This process's leases.
#[derive(Debug)]
pub(crate) struct Replica {
    /// `None`: the store is not shared.
    holder: Option<String>,
    ttl: Duration,
    leases: Mutex<Leases>,
}

/// What a renewal changed.
#[derive(Debug, Default)]
pub(crate) struct Renewal {
    /// Units newly held.
    pub(crate) gained: Vec<RepoName>,
    /// Units no longer held.
    pub(crate) lost: Vec<RepoName>,
    /// The metrics lease came or went.
    pub(crate) metrics_changed: bool,
}

impl Replica {
    /// The only process on its store: syncs and exports everything.
    pub(crate) fn single() -> Replica {
        Replica {
            holder: None,
            ttl: Duration::ZERO,
            leases: Mutex::new(Leases::default()),
        }
    }

    /// A replica named `holder` whose leases last `ttl`.
    pub(crate) fn shared(holder: String, ttl: Duration) -> Replica {
        Replica {
            holder: Some(holder),
            ttl,
            leases: Mutex::new(Leases::default()),
        }
    }

    pub(crate) fn is_shared(&self) -> bool {
        self.holder.is_some()
    }

    pub(crate) fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this replica syncs `unit` now.
    pub(crate) fn syncs(&self, unit: &RepoName) -> bool {
        if !self.is_shared() {
            return true;
        }
        let leases = self.lock();
        leases.valid_until.is_some_and(|at| Instant::now() < at)
            && leases.held.contains_key(&lease_name(unit))
    }

    /// A sync of `unit` starts: its lease is kept at renewals until [`end`].
    ///
    /// [`end`]: Replica::end
    pub(crate) fn begin(&self, unit: &RepoName) {
        if self.is_shared() {
            *self.lock().busy.entry(lease_name(unit)).or_default() += 1;
        }
    }

    /// A sync of `unit` ended.
    pub(crate) fn end(&self, unit: &RepoName) {
        if self.is_shared() {
            let mut leases = self.lock();
            let name = lease_name(unit);
            if let Some(count) = leases.busy.get_mut(&name) {
                *count -= 1;
                if *count == 0 {
                    leases.busy.remove(&name);
                }
            }
        }
    }

    /// What the exporter is told (none alone on the store).
    pub(crate) fn health(&self) -> Option<ReplicaHealth> {
        self.holder.as_ref()?;
        let leases = self.lock();
        let valid = leases.valid_until.is_some_and(|at| Instant::now() < at);
        Some(ReplicaHealth {
            metrics_lease: valid && leases.metrics,
            syncs: if valid {
                leases.held.values().cloned().collect()
            } else {
                BTreeSet::new()
            },
            replicas: leases.replicas,
        })
    }

    /// Renews this replica's leases over `units` (every sync unit of the
    /// scope) and claims its share of the free ones. A failed renewal changes
    /// nothing here: the leases lapse at their expiry.
    pub(crate) async fn renew(
        &self,
        store: &SharedStore,
        units: &[RepoName],
    ) -> Result<Renewal, StoreError> {
        let Some(holder) = self.holder.clone() else {
            return Ok(Renewal::default());
        };
        let mut by_name: HashMap<String, RepoName> = units
            .iter()
            .map(|unit| (lease_name(unit), unit.clone()))
            .collect();
        let mut names: Vec<String> = by_name.keys().cloned().collect();
        names.sort();
        let busy: Vec<String> = self.lock().busy.keys().cloned().collect();
        let ttl = self.ttl;
        let started = Instant::now();
        let grant: Option<LeaseGrant> = store
            .call(move |store| {
                store.acquire_leases(&LeaseRequest {
                    holder: &holder,
                    units: &names,
                    busy: &busy,
                    ttl,
                })
            })
            .await?;
        let Some(grant) = grant else {
            return Ok(Renewal::default());
        };
        let mut leases = self.lock();
        let was_valid = leases.valid_until.is_some_and(|at| started < at);
        let before: HashMap<String, RepoName> = if was_valid {
            std::mem::take(&mut leases.held)
        } else {
            HashMap::new()
        };
        let held: HashMap<String, RepoName> = grant
            .held
            .into_iter()
            .filter_map(|name| by_name.remove_entry(&name))
            .collect();
        let renewal = Renewal {
            gained: held
                .iter()
                .filter(|(name, _)| !before.contains_key(*name))
                .map(|(_, unit)| unit.clone())
                .collect(),
            lost: before
                .iter()
                .filter(|(name, _)| !held.contains_key(*name))
                .map(|(_, unit)| unit.clone())
                .collect(),
            metrics_changed: (was_valid && leases.metrics) != grant.metrics,
        };
        leases.held = held;
        leases.metrics = grant.metrics;
        leases.replicas = grant.replicas;
        leases.valid_until = Some(started + ttl);
        Ok(renewal)
    }
}

/// Every sync unit of `sources` now (with organisations, as of the latest
/// discovery), once each, sorted.
pub(crate) fn units_of(sources: &[Arc<dyn Source>]) -> Vec<RepoName> {
    let units: BTreeSet<RepoName> = sources.iter().flat_map(|s| s.repositories()).collect();
    units.into_iter().collect()
}

/// Renews `replica`'s leases every [`renew_interval`] on `store` until
/// `shutdown`, then releases them. Every unit gained is synced out of turn
/// (through `requests`, by every source that has it); every change is
/// published to `state`.
pub(crate) async fn keep_leases(
    replica: Arc<Replica>,
    store: SharedStore,
    sources: Vec<Arc<dyn Source>>,
    requests: Arc<SyncRequests>,
    state: Arc<ExporterState>,
    shutdown: CancellationToken,
) {
    let every = renew_interval(replica.ttl());
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        match replica.renew(&store, &units_of(&sources)).await {
            Ok(renewal) => {
                failures = 0;
                take_in(&renewal, &sources, &requests, &state, &replica);
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(
                    %error,
                    failures_in_a_row = failures,
                    "cannot renew this replica's leases; it stops syncing when they expire"
                );
                // Lapsed leases: the exporter stops showing them.
                if let Err(error) = state.publish_replica(replica.health()) {
                    tracing::error!(%error, "cannot publish the health metrics");
                }
            }
        }
    }
    if let Some(holder) = replica.holder().map(str::to_owned) {
        match store.call(move |store| store.release_leases(&holder)).await {
            Ok(()) => tracing::info!("released this replica's leases"),
            Err(error) => tracing::warn!(
                %error,
                "cannot release this replica's leases; they expire on their own"
            ),
        }
    }
}

/// Takes in a renewal: logs it, asks for the syncs of the units gained,
/// publishes the replica's part.
pub(crate) fn take_in(
    renewal: &Renewal,
    sources: &[Arc<dyn Source>],
    requests: &SyncRequests,
    state: &ExporterState,
    replica: &Replica,
) {
    if !renewal.gained.is_empty() || !renewal.lost.is_empty() || renewal.metrics_changed {
        let health = replica.health().unwrap_or_default();
        tracing::info!(
            gained = renewal.gained.len(),
            lost = renewal.lost.len(),
            held = health.syncs.len(),
            metrics_lease = health.metrics_lease,
            replicas = health.replicas,
            "this replica's leases changed"
        );
    }
    let now = tokio::time::Instant::now();
    for unit in &renewal.gained {
        for source in sources {
            if source.repositories().contains(unit) {
                requests.request(source.name(), unit, now);
            }
        }
    }
    if let Err(error) = state.publish_replica(replica.health()) {
        tracing::error!(%error, "cannot publish the health metrics");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_a_share_of_the_poll_interval_within_bounds() {
        assert_eq!(lease_ttl(Duration::from_secs(300)), MAX_LEASE_TTL);
        assert_eq!(lease_ttl(Duration::from_secs(90)), Duration::from_secs(30));
        assert_eq!(lease_ttl(Duration::from_secs(1)), MIN_LEASE_TTL);
        assert_eq!(renew_interval(MAX_LEASE_TTL), Duration::from_secs(20));
        // A killed replica's repositories: the lease expires, the next renewal
        // claims them, their sync is asked for; within two poll intervals with
        // room for the sync itself.
        for poll in [10, 60, 300, 3600] {
            let poll = Duration::from_secs(poll);
            let ttl = lease_ttl(poll);
            let takeover = ttl + renew_interval(ttl) + super::super::OUT_OF_TURN_DEBOUNCE;
            assert!(takeover < poll, "{poll:?}: {takeover:?}");
        }
    }

    #[test]
    fn holder_ids_differ_and_are_bounded() {
        let (a, b) = (holder_id(), holder_id());
        assert_ne!(a, b);
        assert!(a.len() <= crate::store::MAX_LEASE_HOLDER_BYTES);
    }

    #[test]
    fn alone_on_its_store_a_replica_syncs_everything() {
        let replica = Replica::single();
        assert!(replica.syncs(&RepoName::parse("acme/api").unwrap()));
        assert_eq!(replica.health(), None);
    }
}
