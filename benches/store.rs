//! Store throughput and size, both backends on one run: SQLite (a file-backed
//! store) and, with `DORA_STORE_BENCH_POSTGRES_URL=postgres://...`, PostgreSQL.
//! Four parts (`DORA_STORE_BENCH_PARTS=history,organisation,year`, the default,
//! or some of them, or `sizing`, which is not run by default):
//!
//! - `history`: `apply` (rows per second, new and re-read) and `load_events` of
//!   one repository of 1,000,000 commits (`DORA_STORE_BENCH_COMMITS=100000` for a
//!   quicker run).
//! - `organisation`: issue 16's write figure, the first sync of the request-budget
//!   organisation (`benches/request_budget.rs`: 200 repositories × 365 days, 5
//!   deployments a day with 4 commits each, 2% incidents;
//!   `DORA_STORE_BENCH_ORG_REPOS` scales it) written as the daemon writes it:
//!   pages of 100 deployments, commits, incidents and merged pull requests,
//!   compares 25 a batch, one transaction each. The commits are every commit of
//!   the simulated repositories (the pull requests' own too: somewhat more than a
//!   first sync reads). Building the batches is not timed.
//! - `year`: issue 16's read figure, `load_events` of 1,000 repositories × 1 year
//!   (365 deployments, 3,650 commits each: 365,000 deployments, 3,650,000 commits;
//!   `DORA_STORE_BENCH_YEAR_REPOS` and `DORA_STORE_BENCH_YEAR_DEPLOYMENTS` scale
//!   it), the history of `support/store_history.rs` written one batch per
//!   repository; then three loads from each store in turn
//!   (`DORA_STORE_BENCH_YEAR_REUSE=1` with `DORA_STORE_BENCH_DIR` reads the stores
//!   an earlier run wrote there and in the database instead of writing them again,
//!   when they hold the same number of repositories).
//! - `sizing`: the store's size per repository-year, for `docs/operations.md`
//!   ("Sizing"): the first sync of 100 repositories × 365 days
//!   (`DORA_STORE_BENCH_SIZING_REPOS` scales it) of the simulated organisation at
//!   1 production deployment a day and 10 commits reaching `main` between two
//!   deployments (the simulator's other rates at their defaults: 8% failed
//!   attempts, 8% incidents, 30% merge commits, pull requests' own commits too),
//!   written as in `organisation`, with each repository's sync recorded; then
//!   the rows and bytes of each table (SQLite: `dbstat` after a checkpoint;
//!   PostgreSQL: `pg_total_relation_size` after `VACUUM ANALYZE`) and the whole
//!   store (the file; `pg_database_size`), less an empty store's, divided by the
//!   repository-years.
//!
//! The SQLite files go to a temporary directory, or to `DORA_STORE_BENCH_DIR`,
//! which keeps them (`PART.db`). The PostgreSQL database must be one to throw
//! away: every part drops all the tables of its schema first. On PostgreSQL the
//! `year` and `sizing` parts run `VACUUM ANALYZE` after writing (what autovacuum
//! does on a live server; timed apart).
//!
//! A plain bench binary that prints its figures (one pass each: a criterion loop
//! over millions of rows would take many minutes on a shared machine):
//! `cargo bench --bench store`.
//!
//! Figures (release profile, the 2-core development machine shared with other
//! builds, PostgreSQL 15 with its default settings on 127.0.0.1; three full-size
//! runs of `organisation,year`, times moving up to 2× between runs with the load;
//! details in `docs/operations.md`):
//! - `organisation`: SQLite 54–119 s, PostgreSQL 143–239 s: 1.96–2.00× (3.20× in
//!   the run before statements were prepared once per connection). Before the
//!   set-based writes, at 20 repositories: 72 s against 19 s, 3.72×.
//! - `year`: `load_events` median, with each repository's commits as one
//!   aggregated row: SQLite 0.81–0.88 s, PostgreSQL 1.55–1.64 s on a quiet
//!   machine (load average 2.5–3): 1.83–1.90×; seven runs of the final code
//!   on an idle one (load 1.2–3.3): 1.62–1.92×, 1.73× the middle one; 1.06–1.6× loaded; 1.39–1.55× with
//!   `shared_buffers = 1GB`. CPU per load: PostgreSQL 3.05 s (the server's
//!   1.82–1.95 s), SQLite 1.6–1.7 s. Before the aggregate (a row per commit
//!   through a portal): 2.23–2.45× quiet, 2.86–2.89× in other runs. The writes
//!   15–19 s against 97–118 s.
//! - `history`: one repository of 1,000,000 commits loads in 1.71 s from
//!   PostgreSQL against 1.2 s from SQLite (peak memory 311 MB).
//! - `sizing` (100 repository-years, 9,027 rows each): SQLite 1.02 MiB, PostgreSQL
//!   1.76 MiB per repository-year; the tables in `docs/operations.md`, "Sizing".

use dora_collector::domain::{
    CommitSha, Compare, CompareStatus, Deployment, DeploymentOutcome, DeploymentSource,
    Environment, Incident, IncidentSource, PullRequest, RepoName, Timestamp,
};
use dora_collector::dora::Events;
use dora_collector::dora::EventsBuilder;
use dora_collector::sim::{Org, OrgSpec, SimRepo, PRODUCTION};
use dora_collector::store::{
    CommitRecord, Cursor, CursorKey, PostgresStore, PostgresUrl, SqliteStore, Store, SyncBatch,
    SyncOutcome,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "support/store_history.rs"]
mod store_history;

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

/// The request-budget organisation's days of history.
const ORG_DAYS: u32 = 365;
/// Repositories of the request-budget organisation unless overridden.
const DEFAULT_ORG_REPOSITORIES: usize = 200;
/// Items per page of a first sync (GitHub's maximum).
const PAGE: usize = 100;
/// Compares per batch, as the GitHub source writes them.
const COMPARES_PER_BATCH: usize = 25;
/// Repositories and deployments per repository of the `year` part unless
/// overridden.
const DEFAULT_YEAR_REPOSITORIES: u64 = 1_000;
const DEFAULT_YEAR_DEPLOYMENTS: u64 = 365;
/// Loads from each store in the `year` part.
const YEAR_LOADS: usize = 3;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One backend under test.
struct Backend {
    name: &'static str,
    /// A new, empty store (a new file; an emptied database).
    fresh: Box<dyn Fn() -> Box<dyn Store>>,
    /// The same store opened again.
    open: Box<dyn Fn() -> Box<dyn Store>>,
    /// Its size in bytes.
    size: Box<dyn Fn() -> u64>,
    /// What a live server does by itself after a bulk write (PostgreSQL:
    /// `VACUUM ANALYZE`); returns what it did.
    settle: Box<dyn Fn() -> Option<&'static str>>,
    /// Rows and bytes of each table, and of the whole store, with no store open.
    footprint: Box<dyn Fn() -> Footprint>,
    /// The processes of its server on this machine (none for SQLite), whose CPU
    /// time a load counts besides this process's.
    server_processes: Box<dyn Fn() -> Vec<u32>>,
}

/// One table's rows and bytes (its indexes included).
struct TableFootprint {
    name: String,
    rows: u64,
    bytes: u64,
}

/// What a store holds and takes on disk.
struct Footprint {
    tables: Vec<TableFootprint>,
    /// The whole store: the SQLite file after a checkpoint (no write-ahead log
    /// left), or `pg_database_size` (the system catalogs included).
    total: u64,
}

/// The SQLite store's footprint: the write-ahead log checkpointed into the file
/// and truncated, then `dbstat`'s pages of each table and its indexes.
fn sqlite_footprint(path: &std::path::Path) -> Footprint {
    let conn = rusqlite::Connection::open(path).expect("open the store file");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    })
    .expect("checkpoint");
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .expect("list tables");
    let tables = names
        .into_iter()
        .map(|name| {
            let rows: i64 = conn
                .query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |row| {
                    row.get(0)
                })
                .expect("count rows");
            let bytes: i64 = conn
                .query_row(
                    "SELECT coalesce(sum(d.pgsize), 0) FROM dbstat AS d \
                     JOIN sqlite_schema AS s ON s.name = d.name WHERE s.tbl_name = ?1",
                    [&name],
                    |row| row.get(0),
                )
                .expect("dbstat");
            TableFootprint {
                name,
                rows: rows as u64,
                bytes: bytes as u64,
            }
        })
        .collect();
    drop(conn);
    let wal = path.with_extension("db-wal");
    let total = std::fs::metadata(path).expect("the store file").len()
        + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    Footprint { tables, total }
}

/// The PostgreSQL store's footprint: `pg_total_relation_size` of each table
/// (indexes, TOAST, free-space and visibility maps included) and
/// `pg_database_size`.
fn postgres_footprint(url: &PostgresUrl) -> Footprint {
    let mut client = postgres_client(url);
    let names: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             ORDER BY tablename",
            &[],
        )
        .expect("list tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let tables = names
        .into_iter()
        .map(|name| {
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*), pg_total_relation_size(to_regclass(quote_ident($1))) \
                         FROM \"{name}\""
                    ),
                    &[&name],
                )
                .expect("count rows and size");
            TableFootprint {
                rows: row.get::<_, i64>(0) as u64,
                bytes: row.get::<_, i64>(1) as u64,
                name,
            }
        })
        .collect();
    let total = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .expect("size")
        .get::<_, i64>(0) as u64;
    Footprint { tables, total }
}

fn sqlite(path: PathBuf) -> Backend {
    let fresh_path = path.clone();
    let open_path = path.clone();
    let footprint_path = path.clone();
    Backend {
        name: "SQLite",
        fresh: Box::new(move || {
            for file in ["db", "db-wal", "db-shm"] {
                let _ = std::fs::remove_file(fresh_path.with_extension(file));
            }
            Box::new(SqliteStore::open(&fresh_path).expect("open store"))
        }),
        open: Box::new(move || Box::new(SqliteStore::open(&open_path).expect("open store"))),
        size: Box::new(move || {
            // The database file plus its write-ahead log.
            [path.clone(), path.with_extension("db-wal")]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        }),
        settle: Box::new(|| None),
        footprint: Box::new(move || sqlite_footprint(&footprint_path)),
        server_processes: Box::new(Vec::new),
    }
}

fn postgres_client(url: &PostgresUrl) -> postgres::Client {
    postgres::Client::connect(url.expose(), postgres::NoTls).expect("connect")
}

fn postgres(url: PostgresUrl) -> Backend {
    let (fresh_url, open_url, size_url) = (url.clone(), url.clone(), url.clone());
    let processes_url = url.clone();
    let footprint_url = url.clone();
    Backend {
        name: "PostgreSQL",
        fresh: Box::new(move || {
            let mut client = postgres_client(&fresh_url);
            let tables: Vec<String> = client
                .query(
                    "SELECT quote_ident(tablename) FROM pg_tables \
                     WHERE schemaname = current_schema()",
                    &[],
                )
                .expect("list tables")
                .iter()
                .map(|row| row.get(0))
                .collect();
            if !tables.is_empty() {
                client
                    .batch_execute(&format!("DROP TABLE {} CASCADE", tables.join(", ")))
                    .expect("empty the database");
            }
            Box::new(PostgresStore::open(&fresh_url).expect("open store"))
        }),
        open: Box::new(move || Box::new(PostgresStore::open(&open_url).expect("open store"))),
        size: Box::new(move || {
            let row = postgres_client(&size_url)
                .query_one("SELECT pg_database_size(current_database())", &[])
                .expect("size");
            row.get::<_, i64>(0) as u64
        }),
        settle: Box::new(move || {
            postgres_client(&url)
                .batch_execute("VACUUM ANALYZE")
                .expect("vacuum");
            Some("VACUUM ANALYZE")
        }),
        footprint: Box::new(move || postgres_footprint(&footprint_url)),
        server_processes: Box::new(move || {
            // The backend lives while its client does.
            let mut client = postgres_client(&processes_url);
            let backend: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .expect("backend pid")
                .get(0);
            server_processes(backend as u32)
        }),
    }
}

/// The fields of `/proc/PID/stat` after the command's name (the state first).
fn proc_stat(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|field| field.parse().unwrap_or(0))
            .collect(),
    )
}

/// The PostgreSQL server of the backend `backend` (its parent, the postmaster)
/// and every process that server started, when it runs on this machine.
fn server_processes(backend: u32) -> Vec<u32> {
    const PARENT: usize = 1;
    let Some(postmaster) = proc_stat(backend).map(|fields| fields[PARENT] as u32) else {
        return Vec::new();
    };
    let mut processes = vec![postmaster];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        {
            if proc_stat(pid).is_some_and(|fields| fields[PARENT] as u32 == postmaster) {
                processes.push(pid);
            }
        }
    }
    processes
}

/// CPU ticks (user and system) of this process and of `others` so far, by
/// process.
fn cpu_ticks(others: &[u32]) -> HashMap<u32, u64> {
    const USER: usize = 11;
    const SYSTEM: usize = 12;
    std::iter::once(std::process::id())
        .chain(others.iter().copied())
        .filter_map(|pid| proc_stat(pid).map(|fields| (pid, fields[USER] + fields[SYSTEM])))
        .collect()
}

/// The CPU time spent between two [`cpu_ticks`] (a process that started in
/// between counts whole; one that ended, not at all).
fn cpu_spent(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> Duration {
    /// `sysconf(_SC_CLK_TCK)` on Linux.
    const TICKS_PER_SECOND: u64 = 100;
    let ticks: u64 = after
        .iter()
        .map(|(pid, ticks)| ticks.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

fn main() {
    let parts = std::env::var("DORA_STORE_BENCH_PARTS")
        .unwrap_or_else(|_| "history,organisation,year".to_owned());
    // The SQLite files: a temporary directory, or one that is kept to look at.
    let temporary = tempfile::tempdir().expect("temporary directory");
    let dir = std::env::var_os("DORA_STORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_owned());
    let backends = |part: &str| -> Vec<Backend> {
        let mut backends = vec![sqlite(dir.join(format!("{part}.db")))];
        if let Ok(url) = std::env::var("DORA_STORE_BENCH_POSTGRES_URL") {
            let url = PostgresUrl::parse(&url).expect("a postgres:// URL");
            backends.push(postgres(url));
        }
        backends
    };
    for part in parts.split(',').map(str::trim) {
        println!("\n== {part} ==");
        match part {
            "history" => {
                let commits = env_or("DORA_STORE_BENCH_COMMITS", DEFAULT_COMMITS);
                for backend in backends(part) {
                    history(commits, &backend);
                }
            }
            "organisation" => organisation(&backends(part)),
            "year" => year(&backends(part)),
            "sizing" => sizing(&backends(part)),
            other => panic!("unknown part {other:?} (history, organisation, year, sizing)"),
        }
    }
}

/// `faster`'s time against `slower`'s, as "N.NN x".
fn ratio(slower: Duration, faster: Duration) -> String {
    format!("{:.2} x", slower.as_secs_f64() / faster.as_secs_f64())
}

/// The batches a first sync of `org` writes, repository after repository: the
/// deployments (newest first, a page of 100 a batch with the listing's cursor),
/// the history (newest first, a page a batch), the compares of successive
/// production deployments (25 a batch), the incidents and the merged pull
/// requests (a page a batch with their cursors).
fn first_sync_batches(org: &Org) -> Vec<SyncBatch> {
    let mut batches = Vec::new();
    for (index, repo) in org.repos.iter().enumerate() {
        let name = RepoName::parse(&org.full_name(index)).expect("valid");
        repository_batches(repo, &name, org.now, &mut batches);
    }
    batches
}

fn cursor(name: &RepoName, endpoint: &str, at: Timestamp) -> (CursorKey, Cursor) {
    (
        CursorKey::new(name.clone(), endpoint),
        Cursor {
            since: Some(at),
            opaque: Some(format!("\"etag-{}\"", at.0)),
            updated_at: at,
        },
    )
}

fn repository_batches(repo: &SimRepo, name: &RepoName, now: Timestamp, out: &mut Vec<SyncBatch>) {
    let new = || SyncBatch::new(name.clone());
    for page in repo.deployments.rchunks(PAGE).rev() {
        let mut batch = new();
        for d in page.iter().rev() {
            batch.deployments.push(Deployment {
                source: DeploymentSource::GithubDeployments,
                repository: name.clone(),
                id: d.id,
                environment: Environment::parse(&d.environment).expect("valid"),
                sha: d.sha,
                created_at: d.created_at,
                outcome: d.outcome(),
            });
        }
        batch.cursors.push(cursor(name, "deployments", now));
        out.push(batch);
    }
    let indices: Vec<u32> = (0..repo.commits.len() as u32).rev().collect();
    for page in indices.chunks(PAGE) {
        let mut batch = new();
        for &i in page {
            let commit = &repo.commits[i as usize];
            batch.commits.push(CommitRecord::new(
                commit.sha,
                repo.parent_shas(i),
                commit.author_date,
                &repo.commit_message(i),
            ));
        }
        out.push(batch);
    }
    let mut production: Vec<(Timestamp, u32)> = repo
        .deployments
        .iter()
        .filter(|d| d.environment.as_ref() == PRODUCTION)
        .filter_map(|d| match d.outcome() {
            DeploymentOutcome::Succeeded { at } => Some((at, repo.commit_index(&d.sha)?)),
            _ => None,
        })
        .collect();
    production.sort();
    let mut batch = new();
    for pair in production.windows(2) {
        let (base, head) = (pair[0].1, pair[1].1);
        if base == head {
            continue;
        }
        let comparison = repo.compare(base, head);
        batch.compares.push(Compare {
            base: repo.commits[base as usize].sha,
            head: repo.commits[head as usize].sha,
            status: comparison.status,
            commits: comparison
                .ahead
                .iter()
                .map(|&i| repo.commits[i as usize].sha)
                .collect(),
        });
        if batch.compares.len() == COMPARES_PER_BATCH {
            out.push(std::mem::replace(&mut batch, new()));
        }
    }
    if !batch.compares.is_empty() {
        out.push(batch);
    }
    let incidents: Vec<_> = repo.issues.iter().filter(|i| i.is_incident()).collect();
    for page in incidents.chunks(PAGE) {
        let mut batch = new();
        for issue in page {
            batch.incidents.push(Incident {
                source: IncidentSource::GithubIssues,
                repository: name.clone(),
                number: issue.number,
                created_at: issue.created_at,
                closed_at: issue.closed_at,
                labels: issue.labels.clone(),
                root_cause: issue.root_cause(),
            });
        }
        batch.cursors.push(cursor(name, "incidents", now));
        out.push(batch);
    }
    let merged: Vec<_> = repo
        .pulls
        .iter()
        .filter(|p| p.merged_at.is_some())
        .collect();
    for page in merged.chunks(PAGE) {
        let mut batch = new();
        for pull in page {
            let commits: Vec<u32> = pull.commits.clone().collect();
            batch.pull_requests.push(PullRequest {
                repository: name.clone(),
                number: pull.number,
                merged_at: pull.merged_at,
                merge_commit_sha: pull.merge_commit.map(|i| repo.commits[i as usize].sha),
                labels: pull.labels.clone(),
                commits: commits
                    .iter()
                    .map(|&i| repo.commits[i as usize].sha)
                    .collect(),
                first_commit_at: commits
                    .iter()
                    .map(|&i| repo.commits[i as usize].author_date)
                    .min(),
                created_at: Some(pull.created_at),
                first_review_at: pull.first_review_at,
            });
        }
        batch.cursors.push(cursor(name, "pulls", now));
        out.push(batch);
    }
}

/// Issue 16's write figure: the request-budget organisation's first sync.
fn organisation(backends: &[Backend]) {
    let repositories = env_or("DORA_STORE_BENCH_ORG_REPOS", DEFAULT_ORG_REPOSITORIES);
    let spec = OrgSpec {
        repositories,
        days: ORG_DAYS,
        deployments_per_day: 5.0,
        commits_per_deployment: 4.0,
        incident_rate: 0.02,
        workflow_run_repositories: 0,
        ..OrgSpec::default()
    };
    let started = Instant::now();
    let org = Org::generate(&spec);
    let batches = first_sync_batches(&org);
    drop(org);
    let rows: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let kind = |f: fn(&SyncBatch) -> usize| -> usize { batches.iter().map(f).sum() };
    println!(
        "organisation: {repositories} repositories x {ORG_DAYS} days: {} batches, {rows} rows \
         ({} deployments, {} commits, {} compares, {} incidents, {} pull requests, {} cursors; \
         built in {:.1?}, not timed)",
        batches.len(),
        kind(|b| b.deployments.len()),
        kind(|b| b.commits.len()),
        kind(|b| b.compares.len()),
        kind(|b| b.incidents.len()),
        kind(|b| b.pull_requests.len()),
        kind(|b| b.cursors.len()),
        started.elapsed()
    );
    let mut times = Vec::new();
    for backend in backends {
        let mut store = (backend.fresh)();
        let started = Instant::now();
        for batch in &batches {
            store.apply(batch).expect("apply");
        }
        let elapsed = started.elapsed();
        println!(
            "{}: first sync written in {elapsed:.2?}: {:.0} rows/s, {:.0} batches/s; {:.1} MiB",
            backend.name,
            per_second(rows, elapsed),
            per_second(batches.len() as u64, elapsed),
            (backend.size)() as f64 / (1024.0 * 1024.0)
        );
        times.push(elapsed);
    }
    if let [sqlite, postgres] = times[..] {
        println!(
            "PostgreSQL's first sync takes {} SQLite's (target: at most 2 x)",
            ratio(postgres, sqlite)
        );
    }
}

/// Issue 16's read figure: `load_events` of 1,000 repositories × 1 year.
fn year(backends: &[Backend]) {
    let repositories = env_or("DORA_STORE_BENCH_YEAR_REPOS", DEFAULT_YEAR_REPOSITORIES);
    let deployments = env_or(
        "DORA_STORE_BENCH_YEAR_DEPLOYMENTS",
        DEFAULT_YEAR_DEPLOYMENTS,
    );
    let names: Vec<RepoName> = (0..repositories).map(store_history::repo_name).collect();
    let mut stores = Vec::new();
    let reuse = std::env::var_os("DORA_STORE_BENCH_YEAR_REUSE").is_some();
    for backend in backends {
        if reuse {
            let store = (backend.open)();
            let counts = store.counts().expect("counts");
            if counts.repositories == repositories {
                println!(
                    "{}: reusing the stored {} repositories, {} deployments, {} commits",
                    backend.name, counts.repositories, counts.deployments, counts.commits
                );
                stores.push((backend.name, store, Vec::new()));
                continue;
            }
        }
        let mut store = (backend.fresh)();
        let mut rng = 42u64;
        let (mut rows, mut building) = (0u64, Duration::ZERO);
        let started = Instant::now();
        for (r, name) in names.iter().enumerate() {
            let built = Instant::now();
            let batch = store_history::batch(r as u64, deployments, &mut rng);
            building += built.elapsed();
            rows += batch.len() as u64;
            store.apply(&batch).expect("apply");
            store
                .record_sync(
                    name,
                    "github_deployments",
                    Timestamp(store_history::NOW - 60),
                    &SyncOutcome::Succeeded,
                )
                .expect("record sync");
        }
        let elapsed = started.elapsed() - building;
        let counts = store.counts().expect("counts");
        println!(
            "{}: {} repositories, {} deployments, {} commits written in {elapsed:.1?} \
             ({:.0} rows/s, one batch a repository); {:.1} MiB",
            backend.name,
            counts.repositories,
            counts.deployments,
            counts.commits,
            per_second(rows, elapsed),
            (backend.size)() as f64 / (1024.0 * 1024.0)
        );
        drop(store);
        let started = Instant::now();
        if let Some(what) = (backend.settle)() {
            println!("{}: {what} in {:.1?}", backend.name, started.elapsed());
        }
        stores.push((backend.name, (backend.open)(), Vec::new()));
    }
    for run in 1..=YEAR_LOADS {
        for ((name, store, times), backend) in stores.iter_mut().zip(backends) {
            let server = (backend.server_processes)();
            let (started, cpu_before) = (Instant::now(), cpu_ticks(&server));
            let events =
                EventsBuilder::collect(|sink| store.load_events(&names, sink)).expect("load");
            let elapsed = started.elapsed();
            let server = (backend.server_processes)();
            let cpu_after = cpu_ticks(&server);
            let cpu = cpu_spent(&cpu_before, &cpu_after);
            let own = std::process::id();
            let cpu_own = cpu_spent(
                &cpu_before
                    .iter()
                    .filter(|(pid, _)| **pid == own)
                    .map(|(p, t)| (*p, *t))
                    .collect(),
                &cpu_after
                    .iter()
                    .filter(|(pid, _)| **pid == own)
                    .map(|(p, t)| (*p, *t))
                    .collect(),
            );
            println!(
                "load_events run {run} from {name}: {} repositories, {} deployments, {} commits \
                 in {elapsed:.3?} (CPU {cpu:.2?}{}, load average {})",
                events.repositories().count(),
                events.deployment_count(),
                events.commit_count(),
                if server.is_empty() {
                    String::new()
                } else {
                    format!(", {:.2?} of it the server's", cpu.saturating_sub(cpu_own))
                },
                std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .split(' ')
                    .next()
                    .unwrap_or("?"),
            );
            times.push(elapsed);
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let medians: Vec<(&str, Duration)> = stores
        .iter_mut()
        .map(|(name, _, times)| (*name, median(times)))
        .collect();
    for (name, time) in &medians {
        println!("load_events median from {name}: {time:.3?}");
    }
    if let [(_, sqlite), (_, postgres)] = medians[..] {
        println!(
            "PostgreSQL's load_events takes {} SQLite's (target: at most 2 x)",
            ratio(postgres, sqlite)
        );
    }
}

/// The `sizing` part's history: a year, at 1 production deployment a day.
const SIZING_DAYS: u32 = 365;
/// Repositories of the `sizing` part unless overridden.
const DEFAULT_SIZING_REPOSITORIES: usize = 100;

/// The store's size per repository-year ("Sizing" in `docs/operations.md`).
fn sizing(backends: &[Backend]) {
    let repositories = env_or("DORA_STORE_BENCH_SIZING_REPOS", DEFAULT_SIZING_REPOSITORIES);
    let spec = OrgSpec {
        repositories,
        days: SIZING_DAYS,
        deployments_per_day: 1.0,
        commits_per_deployment: 10.0,
        workflow_run_repositories: 0,
        staging_deployments_per_day: 0.0,
        ..OrgSpec::default()
    };
    let org = Org::generate(&spec);
    let batches = first_sync_batches(&org);
    let names: Vec<RepoName> = (0..repositories)
        .map(|index| RepoName::parse(&org.full_name(index)).expect("valid"))
        .collect();
    let now = org.now;
    let since = Timestamp(now.0 - i64::from(SIZING_DAYS) * 86_400);
    drop(org);
    let repository_years = repositories as f64 * f64::from(SIZING_DAYS) / 365.0;
    println!(
        "sizing: {repositories} repositories x {SIZING_DAYS} days ({repository_years} \
         repository-years) at {} production deployment attempts a day, {} commits a \
         deployment: {} batches, {} rows",
        spec.deployments_per_day,
        spec.commits_per_deployment,
        batches.len(),
        batches.iter().map(|b| b.len() as u64).sum::<u64>()
    );
    let team = dora_collector::domain::Team::parse("payments").expect("valid");
    let teams: Vec<(RepoName, dora_collector::domain::Team)> = names
        .iter()
        .map(|name| (name.clone(), team.clone()))
        .collect();
    for backend in backends {
        drop((backend.fresh)());
        (backend.settle)();
        let empty = (backend.footprint)().total;
        let mut store = (backend.open)();
        let started = Instant::now();
        for batch in &batches {
            store.apply(batch).expect("apply");
        }
        for name in &names {
            // One sync status a repository and source, as the GitHub source records.
            store
                .record_success(name, "github", now, since)
                .expect("record sync");
        }
        store.record_teams(&teams, now).expect("record teams");
        let written = started.elapsed();
        drop(store);
        (backend.settle)();
        let footprint = (backend.footprint)();
        println!(
            "{}: written in {written:.1?}; empty store {:.2} MiB, filled {:.2} MiB",
            backend.name,
            empty as f64 / (1024.0 * 1024.0),
            footprint.total as f64 / (1024.0 * 1024.0)
        );
        println!(
            "{:<24} {:>10} {:>12} {:>14} {:>14} {:>10}",
            "table", "rows", "bytes", "rows/repo-yr", "bytes/repo-yr", "bytes/row"
        );
        let per_year = |n: u64| n as f64 / repository_years;
        let (mut rows, mut bytes) = (0u64, 0u64);
        for table in &footprint.tables {
            rows += table.rows;
            bytes += table.bytes;
            println!(
                "{:<24} {:>10} {:>12} {:>14.1} {:>14.0} {:>10.1}",
                table.name,
                table.rows,
                table.bytes,
                per_year(table.rows),
                per_year(table.bytes),
                table.bytes as f64 / table.rows.max(1) as f64
            );
        }
        println!(
            "{:<24} {:>10} {:>12} {:>14.1} {:>14.0} {:>10.1}",
            "tables",
            rows,
            bytes,
            per_year(rows),
            per_year(bytes),
            bytes as f64 / rows.max(1) as f64
        );
        let grown = footprint.total.saturating_sub(empty);
        println!(
            "{}: the store grew by {grown} bytes: {:.0} bytes ({:.2} MiB) per repository-year",
            backend.name,
            per_year(grown),
            per_year(grown) / (1024.0 * 1024.0)
        );
    }
}

/// The `history` figures for one store.
fn history(commits: u64, backend: &Backend) {
    println!("{}:", backend.name);
    let repository = RepoName::parse("bench/history").expect("valid");
    let mut store = (backend.fresh)();

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
    let size = (backend.size)();
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
    let store = (backend.open)();
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
