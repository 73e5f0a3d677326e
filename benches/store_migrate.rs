//! `store migrate`'s throughput: the history of `support/store_history.rs`
//! (200 repositories × 1 year by default: 365 deployments and 3,650 commits
//! each, 50 incidents, 5 pull requests; `DORA_MIGRATE_BENCH_REPOS` and
//! `DORA_MIGRATE_BENCH_DEPLOYMENTS` scale it) written into a SQLite file, then
//! copied SQLite → SQLite and, with `DORA_MIGRATE_BENCH_POSTGRES_URL=postgres://...`
//! (a database to throw away: its tables are dropped first), SQLite → PostgreSQL
//! and PostgreSQL → SQLite. Each copy is timed once, verification included, and
//! printed with its rows a second.
//!
//! A plain bench binary that prints its figures (one pass each, as
//! `benches/store.rs`): `cargo bench --bench store_migrate`.
//!
//! Figures (release profile, the 2-core development machine while quiet,
//! PostgreSQL 15 with its default settings on 127.0.0.1, 200 × 1 year: 814,200
//! rows, two runs): SQLite → PostgreSQL 10.5–17.2 s (47,000–78,000 rows/s),
//! PostgreSQL → SQLite 4.3–4.5 s, SQLite → SQLite 3.2–3.3 s. Also in
//! `docs/operations.md`, "Moving a store between SQLite and PostgreSQL".

use dora_collector::store::{migrate, MigrateOptions, PostgresUrl, SqliteStore, Store, StoreUrl};
use std::time::Instant;

#[path = "support/store_history.rs"]
#[allow(dead_code)]
mod store_history;

/// Repositories unless `DORA_MIGRATE_BENCH_REPOS` says otherwise.
const DEFAULT_REPOSITORIES: u64 = 200;
/// Deployments per repository and year unless `DORA_MIGRATE_BENCH_DEPLOYMENTS`
/// says otherwise.
const DEFAULT_DEPLOYMENTS: u64 = 365;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
        .unwrap_or(default)
}

/// Drops every table of the database's default schema.
fn empty_postgres(url: &PostgresUrl) {
    let mut client = postgres::Client::connect(url.expose(), postgres::NoTls).expect("connect");
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .expect("list tables")
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    for table in tables {
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\" CASCADE"))
            .expect("drop");
    }
}

/// Copies `from` into `to`, printing the time and rate.
fn timed(label: &str, from: &StoreUrl, to: &StoreUrl) -> f64 {
    let started = Instant::now();
    let report = migrate(from, to, &MigrateOptions::default(), &mut |_| {}).expect("migrates");
    let seconds = started.elapsed().as_secs_f64();
    assert!(report.mismatches().is_empty());
    println!(
        "{label:<24} {:>10} rows in {seconds:>7.1} s: {:>9.0} rows/s",
        report.written,
        report.written as f64 / seconds
    );
    seconds
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no
    // argument: skip the long run there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let repositories = setting("DORA_MIGRATE_BENCH_REPOS", DEFAULT_REPOSITORIES);
    let deployments = setting("DORA_MIGRATE_BENCH_DEPLOYMENTS", DEFAULT_DEPLOYMENTS);
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = dir.path().join("source.db");
    let started = Instant::now();
    {
        let mut store = SqliteStore::open(&source).expect("open");
        let mut rng = 1u64;
        for r in 0..repositories {
            store
                .apply(&store_history::batch(r, deployments, &mut rng))
                .expect("apply");
        }
        let counts = store.counts().expect("counts");
        println!(
            "store: {repositories} repositories x {deployments} deployments: {} commits, {} \
             deployments, {} incidents, {} pull requests (written in {:.1} s, not timed below)",
            counts.commits,
            counts.deployments,
            counts.incidents,
            counts.pull_requests,
            started.elapsed().as_secs_f64()
        );
    }
    let from = StoreUrl::Sqlite(source);
    timed(
        "SQLite -> SQLite",
        &from,
        &StoreUrl::Sqlite(dir.path().join("copy.db")),
    );
    match std::env::var("DORA_MIGRATE_BENCH_POSTGRES_URL") {
        Ok(url) => {
            let url = PostgresUrl::parse(&url).expect("a postgres:// URL");
            empty_postgres(&url);
            let pg = StoreUrl::Postgres(url);
            timed("SQLite -> PostgreSQL", &from, &pg);
            timed(
                "PostgreSQL -> SQLite",
                &pg,
                &StoreUrl::Sqlite(dir.path().join("back.db")),
            );
        }
        Err(_) => println!(
            "PostgreSQL skipped: set DORA_MIGRATE_BENCH_POSTGRES_URL to a database to throw away"
        ),
    }
}
