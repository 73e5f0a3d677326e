//! Crash safety: a writer process killed with SIGKILL at an arbitrary point leaves
//! the store with the data and cursor of some whole number of batches: never data
//! without its cursor, never a cursor without its data.
//!
//! The test re-runs its own binary as the writer (the `writer_process` test, which
//! only does something when the parent sets `WRITER_STORE_ENV`). The parent waits
//! for progress lines on the writer's stdout, not for time, then kills it. It runs
//! on a SQLite file and on a PostgreSQL database (`WRITER_POSTGRES_ENV`).

use dora_collector::domain::{
    CommitSha, Deployment, DeploymentOutcome, DeploymentSource, Environment, RepoName, Timestamp,
};
use dora_collector::store::{
    CommitRecord, Cursor, CursorKey, PostgresStore, PostgresUrl, SqliteStore, Store, SyncBatch,
};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// Tells the re-run binary to act as the writer, and where the store is.
const WRITER_STORE_ENV: &str = "DORA_STORE_CRASH_TEST_WRITER";
/// Tells the re-run binary to act as the writer on this PostgreSQL database.
const WRITER_POSTGRES_ENV: &str = "DORA_STORE_CRASH_TEST_WRITER_POSTGRES";
/// Commits per batch: large enough that a kill usually lands inside a transaction.
const COMMITS_PER_BATCH: u32 = 2_000;
/// The writer stops by itself after this many batches, should the parent die first.
const MAX_BATCHES: u32 = 1_000;

fn repository() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn key() -> CursorKey {
    CursorKey::new(repository(), "deployments")
}

fn sha(batch: u32, n: u32) -> CommitSha {
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&batch.to_be_bytes());
    bytes[4..8].copy_from_slice(&n.to_be_bytes());
    CommitSha::from_bytes(bytes)
}

/// Batch `i` (from 1): deployment `i`, its commits, and the cursor at `i`.
fn batch(i: u32) -> SyncBatch {
    let mut batch = SyncBatch::new(repository());
    batch.deployments.push(Deployment {
        source: DeploymentSource::GithubDeployments,
        repository: repository(),
        id: u64::from(i),
        environment: Environment::parse("production").unwrap(),
        sha: sha(i, 0),
        created_at: Timestamp(i64::from(i)),
        outcome: DeploymentOutcome::Succeeded {
            at: Timestamp(i64::from(i)),
        },
    });
    batch.commits = (0..COMMITS_PER_BATCH)
        .map(|n| {
            CommitRecord::new(
                sha(i, n),
                vec![sha(i, n.wrapping_sub(1))],
                Timestamp(i64::from(n)),
                "change",
            )
        })
        .collect();
    batch.cursors.push((
        key(),
        Cursor {
            since: Some(Timestamp(i64::from(i))),
            opaque: None,
            updated_at: Timestamp(i64::from(i)),
        },
    ));
    batch
}

#[test]
#[ignore = "the writer half of kill_9_leaves_whole_batches_only; run by it"]
fn writer_process() {
    let mut store: Box<dyn Store> = if let Some(path) = std::env::var_os(WRITER_STORE_ENV) {
        Box::new(SqliteStore::open(path).unwrap())
    } else if let Ok(url) = std::env::var(WRITER_POSTGRES_ENV) {
        Box::new(PostgresStore::open(&PostgresUrl::parse(&url).unwrap()).unwrap())
    } else {
        return;
    };
    let first = store
        .cursor(&key())
        .unwrap()
        .and_then(|c| c.since)
        .map_or(1, |since| since.0 as u32 + 1);
    let mut stdout = std::io::stdout();
    for i in first..first + MAX_BATCHES {
        store.apply(&batch(i)).unwrap();
        writeln!(stdout, "applied {i}").unwrap();
        stdout.flush().unwrap();
    }
}

/// Starts the writer and kills it once it has reported `after` more batches.
fn run_writer_and_kill(store_env: (&str, &std::ffi::OsStr), after: usize) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::writer_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(store_env.0, store_env.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reported = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter(|line| line.starts_with("applied "))
        .take(after)
        .count();
    assert_eq!(reported, after, "the writer stopped early");
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

/// The store holds exactly batches 1..=cursor.
fn assert_whole_batches(store: &dyn Store) -> u64 {
    let applied = store
        .cursor(&key())
        .unwrap()
        .and_then(|c| c.since)
        .map_or(0, |since| since.0 as u64);
    let counts = store.counts().unwrap();
    assert_eq!(counts.deployments, applied);
    assert_eq!(counts.commits, applied * u64::from(COMMITS_PER_BATCH));
    if applied > 0 {
        let latest = store
            .latest_successful_deployment(&repository(), &Environment::parse("production").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(latest.id, applied);
    }
    applied
}

#[test]
fn kill_9_leaves_whole_batches_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.db");
    kill_9_again_and_again((WRITER_STORE_ENV, path.as_os_str()), &|| {
        Box::new(SqliteStore::open(&path).unwrap())
    });
}

#[test]
fn kill_9_leaves_whole_batches_only_on_postgres() {
    let Some(database) = crate::postgres_common::TestDatabase::new() else {
        return;
    };
    let url = std::ffi::OsString::from(database.url().expose());
    kill_9_again_and_again((WRITER_POSTGRES_ENV, &url), &|| Box::new(database.open()));
}

/// Kills the writer after 1, 3, 2 and 5 more batches, checking the store after each.
fn kill_9_again_and_again(store_env: (&str, &std::ffi::OsStr), open: &dyn Fn() -> Box<dyn Store>) {
    let mut applied = 0;
    for after in [1, 3, 2, 5] {
        run_writer_and_kill(store_env, after);
        let now = assert_whole_batches(open().as_ref());
        // What the writer reported is committed (more may have landed between its
        // last report and the kill).
        assert!(
            now >= applied + after as u64,
            "{applied} + {after} -> {now}"
        );
        applied = now;
    }
}
