//! Store throughput: `apply` (rows per second, new and re-read) and `load_events`
//! for a repository of 1,000,000 commits in a file-backed SQLite store.
//!
//! A plain bench binary that prints its figures (one pass each: a criterion loop
//! over a million rows would take many minutes on a shared machine).
//! `cargo bench --bench store`; `DORA_STORE_BENCH_COMMITS=100000` for a quicker run.
//! With `DORA_STORE_BENCH_POSTGRES_URL=postgres://...` (an empty database) the same
//! figures follow for the PostgreSQL store, to compare on one machine.

use dora_collector::domain::{
    CommitSha, Compare, CompareStatus, Deployment, DeploymentOutcome, DeploymentSource,
    Environment, Incident, RepoName, Timestamp,
};
use dora_collector::dora::Events;
use dora_collector::dora::EventsBuilder;
use dora_collector::store::{
    CommitRecord, Cursor, CursorKey, PostgresStore, PostgresUrl, SqliteStore, Store, SyncBatch,
};
use std::time::{Duration, Instant};

/// Commits in the benchmark repository unless overridden.
const DEFAULT_COMMITS: u64 = 1_000_000;
/// Commits per `apply`: about what a first sync writes per page group.
const COMMITS_PER_BATCH: u64 = 10_000;
/// One deployment (with its compare) per this many commits.
const COMMITS_PER_DEPLOYMENT: u64 = 100;
/// Every this many commits is a merge (two parents).
const MERGE_EVERY: u64 = 10;
/// Commits re-applied to measure the unchanged path.
const REAPPLIED_COMMITS: u64 = 200_000;

/// A well-mixed 64-bit hash (splitmix64), so that shas land all over the B-tree as
/// real ones do.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn sha(n: u64) -> CommitSha {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&mix(n).to_be_bytes());
    bytes[8..16].copy_from_slice(&mix(n ^ 0x5555).to_be_bytes());
    bytes[16..].copy_from_slice(&(n as u32).to_be_bytes());
    CommitSha::from_bytes(bytes)
}

fn batch(repository: &RepoName, commits: std::ops::Range<u64>) -> SyncBatch {
    let mut batch = SyncBatch::new(repository.clone());
    let production = Environment::parse("production").expect("valid");
    for n in commits.clone() {
        let mut parents = vec![sha(n.wrapping_sub(1))];
        if n % MERGE_EVERY == 0 && n > MERGE_EVERY {
            parents.push(sha(n - MERGE_EVERY / 2));
        }
        let message = if n % 50 == 0 && n > 0 {
            format!("Revert \"change {}\"\n\nThis reverts commit.", n - 1)
        } else {
            format!("Change number {n} of the benchmark history\n\nA body.")
        };
        batch.commits.push(CommitRecord::new(
            sha(n),
            parents,
            Timestamp(1_600_000_000 + n as i64 * 60),
            &message,
        ));
        if n % COMMITS_PER_DEPLOYMENT == 0 && n > 0 {
            let id = n / COMMITS_PER_DEPLOYMENT;
            batch.deployments.push(Deployment {
                source: DeploymentSource::GithubDeployments,
                repository: repository.clone(),
                id,
                environment: production.clone(),
                sha: sha(n),
                created_at: Timestamp(1_600_000_000 + n as i64 * 60),
                outcome: DeploymentOutcome::Succeeded {
                    at: Timestamp(1_600_000_000 + n as i64 * 60 + 300),
                },
            });
            batch.compares.push(Compare {
                base: sha(n - COMMITS_PER_DEPLOYMENT),
                head: sha(n),
                status: CompareStatus::Ahead,
                commits: (n - COMMITS_PER_DEPLOYMENT + 1..=n).map(sha).collect(),
            });
            if id % 20 == 0 {
                batch.incidents.push(Incident {
                    source: dora_collector::domain::IncidentSource::GithubIssues,
                    repository: repository.clone(),
                    number: id,
                    created_at: Timestamp(1_600_000_000 + n as i64 * 60 + 900),
                    closed_at: Some(Timestamp(1_600_000_000 + n as i64 * 60 + 4_500)),
                    labels: vec!["incident".to_owned(), "sev2".to_owned()],
                    root_cause: None,
                });
            }
        }
    }
    batch.cursors.push((
        CursorKey::new(repository.clone(), "commits"),
        Cursor {
            since: Some(Timestamp(commits.end as i64)),
            opaque: None,
            updated_at: Timestamp(commits.end as i64),
        },
    ));
    batch
}

fn per_second(rows: u64, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64()
}

fn main() {
    let commits: u64 = std::env::var("DORA_STORE_BENCH_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_COMMITS);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bench.db");
    println!("SQLite:");
    run(
        commits,
        &|| Box::new(SqliteStore::open(&path).expect("open store")),
        &|| {
            // The database file plus its write-ahead log.
            [path.clone(), path.with_extension("db-wal")]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        },
    );
    if let Ok(url) = std::env::var("DORA_STORE_BENCH_POSTGRES_URL") {
        let url = PostgresUrl::parse(&url).expect("a postgres:// URL");
        println!("PostgreSQL ({url}):");
        let size = || {
            let mut client =
                postgres::Client::connect(url.expose(), postgres::NoTls).expect("connect");
            let row = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .expect("size");
            row.get::<_, i64>(0) as u64
        };
        run(
            commits,
            &|| Box::new(PostgresStore::open(&url).expect("open store")),
            &size,
        );
    }
}

/// The figures for one store: `open` opens it (again), `size` tells its bytes.
fn run(commits: u64, open: &dyn Fn() -> Box<dyn Store>, size: &dyn Fn() -> u64) {
    let repository = RepoName::parse("bench/history").expect("valid");
    let mut store = open();

    // Apply: building the batches is not timed.
    let batches: Vec<SyncBatch> = (0..commits)
        .step_by(COMMITS_PER_BATCH as usize)
        .map(|start| batch(&repository, start..(start + COMMITS_PER_BATCH).min(commits)))
        .collect();
    let rows: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let started = Instant::now();
    for batch in &batches {
        store.apply(batch).expect("apply");
    }
    let elapsed = started.elapsed();
    println!(
        "apply (new):       {rows} rows ({commits} commits) in {:.2?}: {:.0} rows/s",
        elapsed,
        per_second(rows, elapsed)
    );

    let reapplied: Vec<&SyncBatch> = batches
        .iter()
        .take((REAPPLIED_COMMITS / COMMITS_PER_BATCH) as usize)
        .collect();
    let rows: u64 = reapplied.iter().map(|b| b.len() as u64).sum();
    let started = Instant::now();
    for batch in &reapplied {
        let stats = store.apply(batch).expect("apply");
        // Only the cursor moves (back to where this batch left it).
        assert_eq!(stats.total().written(), stats.cursors.written());
    }
    let elapsed = started.elapsed();
    println!(
        "apply (unchanged): {rows} rows in {:.2?}: {:.0} rows/s",
        elapsed,
        per_second(rows, elapsed)
    );
    drop(batches);

    let counts = store.counts().expect("counts");
    let size = size();
    println!(
        "store: {} commits, {} deployments, {} compares, {} incidents; file {:.1} MiB \
         ({:.0} bytes per commit)",
        counts.commits,
        counts.deployments,
        counts.compares,
        counts.incidents,
        size as f64 / (1024.0 * 1024.0),
        size as f64 / counts.commits.max(1) as f64
    );

    // The engine's share of load_events: the same commits fed to the builder from
    // memory, in sha order as the store reads them (preparing them is not timed).
    let mut commits_in_memory: Vec<(CommitSha, Vec<CommitSha>, Timestamp)> = (0..commits)
        .step_by(COMMITS_PER_BATCH as usize)
        .flat_map(|start| {
            batch(&repository, start..(start + COMMITS_PER_BATCH).min(commits)).commits
        })
        .map(|c| (c.sha, c.parents, c.author_date))
        .collect();
    commits_in_memory.sort_by_key(|(sha, _, _)| *sha);
    let started = Instant::now();
    let mut builder = Events::builder();
    for (sha, parents, author_date) in &commits_in_memory {
        builder.commit_parts(&repository, *sha, parents, *author_date, false);
    }
    let events = builder.build();
    let elapsed = started.elapsed();
    println!(
        "EventsBuilder alone (no store): {} commits in {:.2?}: {:.0} commits/s",
        events.commit_count(),
        elapsed,
        per_second(events.commit_count() as u64, elapsed)
    );
    drop((events, commits_in_memory));

    // A fresh connection starts with an empty page cache (the OS cache stays warm);
    // the second load reuses the connection's cache.
    drop(store);
    let store = open();
    for label in ["fresh connection", "second load"] {
        let started = Instant::now();
        let events = EventsBuilder::collect(|sink| {
            store.load_events(std::slice::from_ref(&repository), sink)
        })
        .expect("load");
        let elapsed = started.elapsed();
        assert_eq!(events.commit_count() as u64, counts.commits);
        println!(
            "load_events ({label}): {} commits, {} deployments in {:.2?}: {:.0} commits/s",
            events.commit_count(),
            events.deployment_count(),
            elapsed,
            per_second(events.commit_count() as u64, elapsed)
        );
    }
}
