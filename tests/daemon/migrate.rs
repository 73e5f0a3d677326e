//! `dora-collector store migrate`, the real binary: the store a daemon kept on
//! SQLite, moved to PostgreSQL (and back), serves the same `/metrics` at once; a
//! migration killed with SIGKILL midway resumes when run again and ends with the
//! same store; bad URLs exit 2 and unreachable or missing stores exit 1, each
//! with one clear line and never the password.

use crate::postgres_common::{TestDatabase, PASSWORD};
use crate::scenario::tiny;
use crate::support::{get, ready_metrics, repo, samples, workflow_repo, World};
use dora_collector::store::{SqliteStore, Store};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

fn migrate(from: &str, to: &str) -> Output {
    Command::new(BINARY)
        .args(["store", "migrate", "--from", from, "--to", to])
        .env_remove("RUST_LOG")
        .output()
        .expect("run dora-collector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sqlite(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// Runs `migrate`, expecting success: the counts table and the verdict on
/// stdout, the progress on stderr.
fn migrated(from: &str, to: &str) -> (String, String) {
    let output = migrate(from, to);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("verified: every table of"), "{stdout}");
    assert!(stdout.contains("commits"), "{stdout}");
    assert!(stderr.contains("commits: "), "progress per table: {stderr}");
    assert!(!format!("{stdout}{stderr}").contains(PASSWORD));
    (stdout, stderr)
}

fn tiny_repos() -> Vec<crate::support::Repo<'static>> {
    vec![
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]
}

#[tokio::test]
async fn a_daemons_store_moved_to_postgres_and_back_serves_the_same_metrics_at_once() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let world = World::new(tiny().org).await;
    let mut on_sqlite = world.start(world.config(&tiny_repos())).await;
    let expected = ready_metrics(&mut on_sqlite).await;
    on_sqlite.shutdown().await.unwrap();
    assert!(expected.contains("dora_deployments_total"), "{expected}");

    let from = sqlite(&world.store_path());
    let to = database.url().expose().to_owned();
    let (stdout, _) = tokio::task::spawn_blocking(move || migrated(&from, &to))
        .await
        .unwrap();
    assert!(stdout.contains("REDACTED"), "{stdout}");

    // The daemon on the migrated store: ready from the store, before any sync.
    let mut config = world.config(&tiny_repos());
    config.storage.url = Some(database.url().clone());
    let on_postgres = world.start(config).await;
    let (status, reason) = get(&on_postgres, "/readyz").await;
    assert_eq!(status, 200, "{reason}");
    let (_, served) = get(&on_postgres, "/metrics").await;
    assert_eq!(samples(&served, true), samples(&expected, true));
    on_postgres.shutdown().await.unwrap();

    // And back into a new SQLite file.
    let back = world.dir.path().join("back.db");
    let from = database.url().expose().to_owned();
    let to = sqlite(&back);
    tokio::task::spawn_blocking(move || migrated(&from, &to))
        .await
        .unwrap();
    let mut config = world.config(&tiny_repos());
    config.storage.path = back;
    let on_sqlite = world.start(config).await;
    let (status, reason) = get(&on_sqlite, "/readyz").await;
    assert_eq!(status, 200, "{reason}");
    let (_, served) = get(&on_sqlite, "/metrics").await;
    assert_eq!(samples(&served, true), samples(&expected, true));
    on_sqlite.shutdown().await.unwrap();
}

/// Repositories and deployments of the store the kill test copies: enough rows
/// that the commits take several runs.
const KILL_REPOSITORIES: u64 = 24;
const KILL_DEPLOYMENTS: u64 = 250;

#[test]
fn a_migration_killed_midway_resumes_and_ends_with_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.db");
    let target_path = dir.path().join("target.db");
    let mut source = SqliteStore::open(&source_path).unwrap();
    let mut rng = 11u64;
    for r in 0..KILL_REPOSITORIES {
        source
            .apply(&crate::store_history::batch(r, KILL_DEPLOYMENTS, &mut rng))
            .unwrap();
    }
    let (from, to) = (sqlite(&source_path), sqlite(&target_path));

    // Killed once it copies commits (repositories and deployments are done).
    let mut child = Command::new(BINARY)
        .args(["store", "migrate", "--from", &from, "--to", &to])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let copying_commits = line.starts_with("commits: ");
        seen.push(line);
        if copying_commits {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed: {seen:?}");
    let partial = SqliteStore::open(&target_path).unwrap().counts().unwrap();
    let total = source.counts().unwrap();
    assert!(partial.commits < total.commits, "{partial:?} {seen:?}");

    let (stdout, stderr) = migrated(&from, &to);
    assert!(
        stderr.contains("resuming the unfinished copy of"),
        "{stderr}"
    );
    assert!(stdout.contains("(resumed)"), "{stdout}");
    let target = SqliteStore::open(&target_path).unwrap();
    assert_eq!(target.counts().unwrap(), total);
    for repository in source.repositories().unwrap() {
        assert!(
            source.read_repository(&repository).unwrap()
                == target.read_repository(&repository).unwrap(),
            "{repository}"
        );
    }

    // Once finished, it is not run again.
    let again = migrate(&from, &to);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already holds data"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn bad_urls_exit_2_and_missing_or_unreachable_stores_exit_1_never_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "hunter2-Secret";
    let output = migrate(
        &format!("mysql://dora:{secret}@db/dora"),
        &sqlite(&dir.path().join("x.db")),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--from") && stderr.contains("\"mysql\""),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");

    let output = migrate(&sqlite(&dir.path().join("missing.db")), "sqlite:other.db");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.db: no such file"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");

    // Nothing listens on this port (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let existing = dir.path().join("existing.db");
    drop(SqliteStore::open(&existing).unwrap());
    let output = migrate(
        &sqlite(&existing),
        &format!("postgres://dora:{secret}@127.0.0.1:{port}/dora?connect_timeout=5"),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the PostgreSQL store"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
}
