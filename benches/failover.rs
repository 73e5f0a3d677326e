//! A failover's time to the first sync by the surviving replica: two replicas
//! of the real binary (`serve`) on one PostgreSQL store against
//! the simulated GitHub, polling every 10 s (so a lease lasts 3.3 s and is
//! renewed every 1.1 s); once both hold repositories, `kill -9` of one, then
//! the time until every repository it held has a successful sync recorded in
//! the store by the other (the store is looked at every 20 ms). Several
//! rounds, each on a fresh database; prints each and the median.
//!
//! The figure is bounded by design by the lease (a third of the poll interval,
//! 3 s to 60 s), a renewal interval (a third of the lease), the out-of-turn
//! debounce (1 s) and the sync itself: about 5.5 s plus the sync here, about
//! 81 s plus the sync with the default 5-minute poll interval.
//!
//! PostgreSQL: a throw-away cluster as the tests start one
//! (`tests/postgres_common`), or the server `DORA_TEST_POSTGRES_URL` names.
//! Everything on 127.0.0.1. Run with `cargo bench --bench failover` (release
//! binary) or `cargo test --bench failover` (debug; the figure is bound by the
//! lease timing, not the CPU). harness = false: prints a report.
//!
//! Measured (debug, shared 2-core machine, 5 rounds): median 5.4 s, 4.2-6.6 s.

#[path = "../tests/postgres_common/mod.rs"]
mod postgres_common;
#[path = "../tests/replicas_common/mod.rs"]
mod replicas_common;

use dora_collector::sim::{SimOptions, SimServer};
use postgres_common::TestDatabase;
use replicas_common::{
    config_text, free_port, leased_by, org, successes, wait_for_syncs, Replica, POLL_SECONDS,
};
use std::time::{Duration, Instant};

/// Failovers measured.
const ROUNDS: usize = 5;
/// The organisation: repositories and days of history.
const REPOSITORIES: usize = 8;
const DAYS: u32 = 30;
/// Bounds on the waits.
const READY: Duration = Duration::from_secs(180);

fn main() {
    if TestDatabase::new().is_none() {
        eprintln!("no PostgreSQL: nothing measured");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut figures = Vec::new();
    for round in 0..ROUNDS {
        let database = TestDatabase::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sim = runtime
            .block_on(SimServer::start(
                org(REPOSITORIES, DAYS, round as u64),
                SimOptions::default(),
            ))
            .expect("simulator starts");
        let sqlite = dir.path().join("unused.db");
        let mut replicas: Vec<Replica> = (0..2)
            .map(|n| {
                let port = free_port();
                let text = sim.with_org(|o| {
                    config_text(o, sim.base_url(), port, Some(database.url()), &sqlite)
                });
                Replica::start(dir.path(), &format!("replica-{n}"), port, &text)
            })
            .collect();
        let store = database.open();
        // Both hold repositories, every one synced once.
        let deadline = Instant::now() + READY;
        loop {
            for replica in &mut replicas {
                replica.assert_running();
            }
            let (a, b) = (
                leased_by(&store, &replicas[0]),
                leased_by(&store, &replicas[1]),
            );
            if !a.is_empty()
                && !b.is_empty()
                && a.len() + b.len() == REPOSITORIES
                && successes(&store).len() == REPOSITORIES
            {
                break;
            }
            assert!(Instant::now() < deadline, "the replicas did not settle");
            std::thread::sleep(Duration::from_millis(100));
        }
        let victim = round % 2;
        let orphaned = leased_by(&store, &replicas[victim]);
        let before = successes(&store);
        let killed_at = Instant::now();
        replicas[victim].kill_9();
        let synced = wait_for_syncs(
            &store,
            &orphaned,
            &before,
            Duration::from_secs(4 * POLL_SECONDS),
        )
        .unwrap_or_else(|| panic!("no failover:\n{}", replicas[1 - victim].log()));
        let took = synced - killed_at;
        println!(
            "round {round}: kill -9 of a replica holding {} of {REPOSITORIES} repositories; \
             the survivor synced them all {took:.2?} later",
            orphaned.len()
        );
        figures.push(took);
        drop(replicas);
        drop(store);
        drop(database);
    }
    figures.sort();
    println!(
        "\nfailover, kill -9 to the surviving replica's sync of every orphaned repository \
         (poll interval {POLL_SECONDS} s): median {:.2?}, min {:.2?}, max {:.2?} over {ROUNDS} rounds",
        figures[figures.len() / 2],
        figures[0],
        figures[figures.len() - 1]
    );
}
