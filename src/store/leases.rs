//! The leases replicas sharing one store divide the work with: what a replica
//! asks for and what it is granted. Backend-neutral: the PostgreSQL store keeps
//! them in its `leases` table (`postgres/leases.rs`); a store only one process
//! opens (SQLite) has none to share and answers that every lease is its own.
//!
//! A lease is a name (`repository/<name>`, `metrics`, `replica/<holder>`), its
//! holder and an expiry on the database server's clock, so that replicas on
//! machines whose clocks differ agree on when a lease lapses. This module does
//! not decide when to renew or what to sync: the daemon does (`daemon/replicas.rs`).

use std::time::Duration;

/// The longest holder id the store keeps (a host name, a process id and a
/// random part fit easily).
pub const MAX_LEASE_HOLDER_BYTES: usize = 200;

/// The name of the lease whose holder exports the DORA families.
pub const METRICS_LEASE: &str = "metrics";

/// The prefix of a repository's lease name (`repository/acme/api`).
pub const REPOSITORY_LEASE_PREFIX: &str = "repository/";

/// The prefix of a replica's heartbeat lease (`replica/<holder>`): the live
/// replicas are those whose heartbeat has not expired.
pub const REPLICA_LEASE_PREFIX: &str = "replica/";

/// One replica's renewal: its heartbeat, the repositories it wants a share of,
/// those it must keep whatever the share, and the metrics lease.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// This replica's id (at most [`MAX_LEASE_HOLDER_BYTES`]).
    pub holder: &'a str,
    /// Every repository lease name of the scope (the same list on every replica
    /// with the same configuration), sorted.
    pub units: &'a [String],
    /// Leases of `units` this replica holds and keeps even beyond its share (the
    /// repositories it is syncing right now).
    pub busy: &'a [String],
    /// How long a granted or renewed lease lasts without a renewal.
    pub ttl: Duration,
}

/// What a renewal granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The repository lease names of the request this replica holds now, sorted.
    pub held: Vec<String>,
    /// This replica holds the metrics lease.
    pub metrics: bool,
    /// Live replicas (heartbeats not expired), this one included.
    pub replicas: u64,
}

/// A stored lease (for operators and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// Milliseconds until it expires by the server's clock (negative: expired,
    /// not yet cleared).
    pub expires_in_ms: i64,
}

/// A replica's fair share of `units` repositories among `replicas`: every
/// repository has a holder once each replica holds its share.
pub fn fair_share(units: usize, replicas: u64) -> usize {
    let replicas = usize::try_from(replicas.max(1)).unwrap_or(usize::MAX);
    units.div_ceil(replicas)
}

/// Decides a renewal from what is held now: which of `mine` to keep (the busy
/// ones, then the first by name up to the share) and which free units to claim
/// (the first by name up to the share). Returns `(keep, release, claim)`.
pub(crate) fn divide(
    request: &LeaseRequest<'_>,
    mine: &[String],
    taken: &std::collections::HashSet<String>,
    replicas: u64,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let share = fair_share(request.units.len(), replicas);
    let in_scope: std::collections::HashSet<&String> = request.units.iter().collect();
    let mut keep: Vec<String> = mine
        .iter()
        .filter(|name| in_scope.contains(name) && request.busy.contains(name))
        .cloned()
        .collect();
    let mut release = Vec::new();
    let mut sorted: Vec<&String> = mine.iter().collect();
    sorted.sort();
    for name in sorted {
        if keep.contains(name) {
            continue;
        }
        if in_scope.contains(name) && keep.len() < share {
            keep.push(name.clone());
        } else {
            release.push(name.clone());
        }
    }
    let mut claim = Vec::new();
    for name in request.units {
        if keep.len() + claim.len() >= share {
            break;
        }
        if !taken.contains(name) && !mine.contains(name) {
            claim.push(name.clone());
        }
    }
    keep.sort();
    (keep, release, claim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_share_covers_every_unit() {
        assert_eq!(fair_share(10, 3), 4);
        assert_eq!(fair_share(10, 0), 10);
        assert_eq!(fair_share(0, 2), 0);
    }

    #[test]
    fn a_replica_keeps_its_busy_leases_releases_its_excess_and_claims_free_ones() {
        let units = names(&["a", "b", "c", "d"]);
        let busy = names(&["d"]);
        let request = LeaseRequest {
            holder: "me",
            units: &units,
            busy: &busy,
            ttl: Duration::from_secs(3),
        };
        // Two replicas: a share of 2. Holding a, b, d (d busy): keeps d and a.
        let (keep, release, claim) =
            divide(&request, &names(&["a", "b", "d"]), &Default::default(), 2);
        assert_eq!(
            (keep, release, claim),
            (names(&["a", "d"]), names(&["b"]), vec![])
        );
        // Alone, holding nothing, c taken by a dying replica: claims the rest.
        let taken = ["c".to_owned()].into_iter().collect();
        let (keep, release, claim) = divide(&request, &[], &taken, 1);
        assert_eq!(
            (keep, release, claim),
            (vec![], vec![], names(&["a", "b", "d"]))
        );
        // A lease of a repository out of scope is released.
        let (keep, release, _) = divide(&request, &names(&["gone"]), &taken, 1);
        assert_eq!((keep, release), (vec![], names(&["gone"])));
    }
}
