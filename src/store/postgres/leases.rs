//! The replicas' leases in PostgreSQL: the `leases` table (name, holder,
//! expiry in milliseconds of the server's clock). A renewal is one transaction
//! under an advisory lock, so two replicas never decide on the same free
//! lease at once; expired rows are cleared by the renewal that finds them.
//! What to keep, release and claim is decided by `leases::divide`; this file
//! only reads and writes the rows.

use super::{pg_error, PgConnection};
use crate::store::leases::{divide, Lease, LeaseGrant, LeaseRequest};
use crate::store::{
    StoreError, MAX_LEASE_HOLDER_BYTES, METRICS_LEASE, REPLICA_LEASE_PREFIX,
    REPOSITORY_LEASE_PREFIX,
};
use std::collections::HashSet;

/// The advisory lock that serializes renewals ("DORL" in ASCII; the
/// migrations' is "DORA").
const LEASE_LOCK: i64 = 0x444F_524C;

/// The server's clock in milliseconds.
const NOW_MS: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

pub(super) fn acquire(
    conn: &mut PgConnection,
    target: &str,
    request: &LeaseRequest<'_>,
) -> Result<LeaseGrant, StoreError> {
    if request.holder.is_empty() || request.holder.len() > MAX_LEASE_HOLDER_BYTES {
        return Err(StoreError::InvalidInput {
            path: target.to_owned(),
            what: "lease holder",
            reason: format!("must be 1 to {MAX_LEASE_HOLDER_BYTES} bytes"),
        });
    }
    let db = pg_error(target, "renewing the replicas' leases");
    let ttl_ms = i64::try_from(request.ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let mut tx = conn.client.transaction().map_err(&db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEASE_LOCK])
        .map_err(&db)?;
    let now: i64 = tx.query_one(NOW_MS, &[]).map_err(&db)?.get(0);
    let expires = now.saturating_add(ttl_ms);
    tx.execute("DELETE FROM leases WHERE expires_at <= $1", &[&now])
        .map_err(&db)?;
    let heartbeat = format!("{REPLICA_LEASE_PREFIX}{}", request.holder);
    tx.execute(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
         expires_at = excluded.expires_at",
        &[&heartbeat, &request.holder, &expires],
    )
    .map_err(&db)?;
    let replicas: i64 = tx
        .query_one(
            "SELECT count(*) FROM leases WHERE starts_with(name, $1)",
            &[&REPLICA_LEASE_PREFIX],
        )
        .map_err(&db)?
        .get(0);
    let replicas = u64::try_from(replicas).unwrap_or(1);
    let mut mine = Vec::new();
    let mut taken = HashSet::new();
    for row in tx
        .query(
            "SELECT name, holder FROM leases WHERE starts_with(name, $1)",
            &[&REPOSITORY_LEASE_PREFIX],
        )
        .map_err(&db)?
    {
        let name: String = row.get(0);
        let holder: &str = row.get(1);
        if holder == request.holder {
            mine.push(name);
        } else {
            taken.insert(name);
        }
    }
    let (keep, release, claim) = divide(request, &mine, &taken, replicas);
    tx.execute(
        "DELETE FROM leases WHERE holder = $1 AND name = ANY($2)",
        &[&request.holder, &release],
    )
    .map_err(&db)?;
    let mut held: Vec<String> = keep.iter().chain(&claim).cloned().collect();
    tx.execute(
        "INSERT INTO leases (name, holder, expires_at) \
         SELECT unnest($1::text[]), $2, $3 \
         ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE leases.holder = excluded.holder",
        &[&held, &request.holder, &expires],
    )
    .map_err(&db)?;
    let metrics = tx
        .query_opt(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder RETURNING holder",
            &[&METRICS_LEASE, &request.holder, &expires],
        )
        .map_err(&db)?
        .is_some();
    tx.commit().map_err(&db)?;
    held.sort();
    Ok(LeaseGrant {
        held,
        metrics,
        replicas,
    })
}

pub(super) fn release(
    conn: &mut PgConnection,
    target: &str,
    holder: &str,
) -> Result<(), StoreError> {
    let db = pg_error(target, "releasing the replica's leases");
    conn.client
        .execute("DELETE FROM leases WHERE holder = $1", &[&holder])
        .map_err(db)?;
    Ok(())
}

pub(super) fn list(conn: &mut PgConnection, target: &str) -> Result<Vec<Lease>, StoreError> {
    let db = pg_error(target, "reading the replicas' leases");
    let rows = conn
        .client
        .query(
            &format!(
                "SELECT name, holder, expires_at - ({NOW_MS}) FROM leases \
                 ORDER BY name"
            ),
            &[],
        )
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|row| Lease {
            name: row.get(0),
            holder: row.get(1),
            expires_in_ms: row.get(2),
        })
        .collect())
}
