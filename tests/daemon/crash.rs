//! Crash safety of the daemon's sync: the real binary (`sync --once`) is killed
//! with SIGKILL at 20 seeded-random points of a sync of a simulated organisation,
//! restarted until a run completes, and the store it leaves must equal the store
//! of an uninterrupted run, table by table.
//!
//! A kill point is a number of simulator requests into a run (drawn uniformly
//! below the request count of a whole first sync): the test watches the
//! simulator's request count, not the clock, and kills the child when it is
//! reached. A kill counts only when it landed mid-sync: at least one request
//! made, and the child still running until SIGKILL ended it. A restarted run that
//! completes before its kill point ends that chain of kills; the next kill point
//! starts a new chain on a fresh store, until 20 kills have landed.
//!
//! The push API: a storm of pushes from several clients is cut by SIGKILL; every
//! push answered `202` is in the store once, and the clients' retries with the
//! same ids after a restart converge to exactly the set they sent.
//!
//! Stores are compared through [`dump`], every row of every table (the set of
//! tables is checked, so a new one cannot be missed), with only the values that
//! record wall time or an insertion order replaced; each exclusion says why.

use dora_collector::daemon::{demo, Clock, SystemClock};
use dora_collector::dora::EventsBuilder;
use dora_collector::sim::{Org, OrgSpec, SimHandle, SimOptions, SimServer};
use rand::{Rng, SeedableRng};
use rusqlite::types::ValueRef;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

/// Kills that must land mid-sync (the "20 random points of a sync").
const KILLS: usize = 20;
/// Seed of the kill points and of the organisation.
const SEED: u64 = 5;
/// Days of simulated history: small enough for a debug build to sync the
/// organisation in a few seconds, long enough for every kind of event.
const DAYS: u32 = 60;
/// Repositories: enough that a sync through GraphQL (100 deployments or commits
/// a request) is long enough to cut at many points.
const REPOSITORIES: usize = 6;
/// Bounds the runs of the binary (a chain whose restarts never complete fails
/// the test instead of looping).
const MAX_RUNS: usize = 60;
/// SIGKILL's signal number (9 on every Unix).
const SIGKILL: i32 = 9;
/// How often the test looks at the simulator's request count while a child runs.
const POLL: Duration = Duration::from_millis(1);
/// Every table the store has; [`dump`] fails on any other, so that a new table
/// is compared or its exclusion justified here.
const TABLES: [&str; 13] = [
    "commits",
    "compares",
    "cursors",
    "deployments",
    "incidents",
    // The environments a source declares production (GitLab's tiers): empty
    // here (a GitHub sync declares none).
    "production_environments",
    "pull_requests",
    // The push API's ids: empty here (a sync pushes nothing); its crash safety
    // is `push_storm_killed_and_retried_converges`'s.
    "push_ids",
    "repositories",
    // Discovered repositories' teams: kept by the daemon's scheduler (empty
    // after `sync --once`, like `push_ids`).
    "repository_teams",
    // Since when each repository's first reviews are read: the review window's
    // start at the first sync that read it, a wall time (empty here unless the
    // lead time starts at a pull request).
    "review_horizons",
    "sync_status",
    // Incidents of teams and of repository sets: pushed or from PagerDuty
    // (empty here, like `push_ids`).
    "scoped_incidents",
];

/// A small organisation whose history ends at the real present, so that the
/// binary (which runs on the system clock) reads all of it.
fn org() -> Org {
    let now = SystemClock.now();
    let spec = OrgSpec {
        repositories: REPOSITORIES,
        days: DAYS,
        now: demo::demo_spec(4, DAYS, SEED, now).now,
        ..OrgSpec::small(SEED)
    };
    Org::generate(&spec)
}

/// `restored` without two kinds of rows `reference` lacks, which a restart adds
/// legitimately:
/// - commits: history is read in pages of 100 commits from the newest undecided
///   deployment; a restart resumes from where the killed run stopped, so its
///   last page may end a few commits further back than the uninterrupted run's
///   did. Such extra commits are older history (never a change set's: the
///   engine's values are compared too);
/// - a pending deployment's statuses validator (`deployments/{id}/statuses`): the
///   killed run stored the deployment pending, so the restart re-checked it
///   through REST and kept the `ETag`, where the uninterrupted run had its
///   statuses inline from GraphQL (it keeps the same validator one sync later).
///
/// Any other extra or missing row still fails.
fn beyond_pages(restored: Vec<String>, reference: &[String]) -> Vec<String> {
    let known: std::collections::HashSet<&String> = reference.iter().collect();
    let legitimate = |line: &str| {
        line.starts_with("commits:")
            || (line.starts_with("cursors:") && line.contains("/statuses\" since=NULL"))
    };
    restored
        .into_iter()
        .filter(|line| known.contains(line) || !legitimate(line))
        .collect()
}

/// The engine's values over everything in `store`.
fn snapshot(
    store: &Path,
    now: dora_collector::domain::Timestamp,
) -> dora_collector::dora::Snapshot {
    use dora_collector::store::Store;
    let store = dora_collector::store::SqliteStore::open(store).unwrap();
    let events =
        EventsBuilder::collect(|sink| store.load_events(&store.repositories().unwrap(), sink))
            .unwrap();
    dora_collector::dora::compute(&events, &dora_collector::dora::EngineConfig::default(), now)
}

/// Writes the configuration of `org` at `sim` with the store at `store`.
fn write_config(dir: &Path, sim: &SimHandle, store: &Path) -> std::path::PathBuf {
    let text = sim.with_org(|org| {
        demo::demo_config_text(org, sim.base_url(), "127.0.0.1:0".parse().unwrap(), store)
    });
    let file = dir.join(format!(
        "{}.toml",
        store.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&file, text).unwrap();
    file
}

fn start(config: &Path, log: &Path) -> Child {
    Command::new(BINARY)
        .args(["sync", "--once", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("run dora-collector")
}

/// Runs the binary to completion; returns the requests it made.
async fn run_whole(sim: &SimHandle, config: &Path, log: &Path) -> u64 {
    let before = sim.request_counts().total;
    let mut child = start(config, log);
    let status = wait(&mut child).await;
    assert!(
        status.success(),
        "{status:?}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    sim.request_counts().total - before
}

/// Waits for `child` without blocking the runtime the simulator runs on.
async fn wait(child: &mut Child) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How a run with a kill point ended.
enum Run {
    /// SIGKILL landed after `requests` requests, while the child was running.
    Killed { requests: u64 },
    /// The child completed the sync before reaching the kill point.
    Completed,
}

/// Runs the binary and kills it once it has made `kill_after` requests.
async fn run_and_kill(sim: &SimHandle, config: &Path, log: &Path, kill_after: u64) -> Run {
    let before = sim.request_counts().total;
    let mut child = start(config, log);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "{status:?}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return Run::Completed;
        }
        let requests = sim.request_counts().total - before;
        if requests >= kill_after {
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            if status.signal() == Some(SIGKILL) {
                return Run::Killed { requests };
            }
            // It exited on its own between the two looks: a completed run.
            assert!(status.success(), "{status:?}");
            return Run::Completed;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every row of every table of the store at `path`, as sorted text lines, with
/// these values replaced:
/// - `repositories.id` (and every `repo_id`): a surrogate key assigned in the
///   order repositories are first written, which concurrent repository syncs make
///   vary between two uninterrupted runs; rows carry the repository's name instead;
/// - `cursors.updated_at`, `sync_status.last_attempt_at` and
///   `sync_status.last_success_at`: the wall time of the process that wrote them;
/// - `sync_status.history_since`: the lookback start of the first successful
///   sync, that wall time minus `github.lookback`, only as present or not;
/// - `cursors.since` when it lies before the simulated history (`history_start`):
///   such a cursor listed nothing, so its lower bound is the lookback start, the
///   wall time of the run that first wrote it minus `github.lookback`. Any value
///   before the history reads the same items; one inside it must be equal;
/// - `review_horizons.since`: the longest window's start at the sync that first
///   read the repository's reviews, that wall time minus the window, only as
///   present or not;
/// - with [`Validators::Presence`], `cursors.opaque` (the `ETag` of the first page
///   of the step's last listing) only as present or not: a step that completed
///   before a kill is read again by the restart from its stored cursor, a
///   different request (`since=<newest>` instead of the lookback start) whose
///   response has another `ETag`, while its data and `since` are the same. The
///   next sync sends the `since=<newest>` request in both cases, so after one
///   more sync the validators must be equal too ([`Validators::Exact`]).
fn dump(path: &Path, history_start: i64, validators: Validators) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let tables: BTreeSet<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        tables,
        TABLES.iter().map(|t| t.to_string()).collect(),
        "the store's tables changed: compare the new one in dump()"
    );
    let mut lines = Vec::new();
    for table in TABLES {
        if table == "repositories" {
            let mut names = conn.prepare("SELECT name FROM repositories").unwrap();
            for name in names.query_map([], |row| row.get::<_, String>(0)).unwrap() {
                lines.push(format!("repositories: {}", name.unwrap()));
            }
            continue;
        }
        // Every table but the scoped incidents belongs to a repository.
        let query = if table == "scoped_incidents" {
            format!("SELECT t.* FROM {table} t")
        } else {
            format!("SELECT r.name, t.* FROM {table} t JOIN repositories r ON r.id = t.repo_id")
        };
        let mut statement = conn.prepare(&query).unwrap();
        let columns: Vec<String> = statement.column_names().map(|c| c.to_string()).collect();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let mut line = format!("{table}:");
            for (index, column) in columns.iter().enumerate() {
                let value = match (table, column.as_str()) {
                    (_, "repo_id") => continue,
                    ("cursors", "updated_at")
                    | ("sync_status", "last_attempt_at")
                    | ("sync_status", "last_success_at")
                    | ("repository_teams", "updated_at") => "<wall time>".to_owned(),
                    ("sync_status", "history_since") => match row.get_ref(index).unwrap() {
                        ValueRef::Null => "NULL".to_owned(),
                        _ => "<lookback start>".to_owned(),
                    },
                    ("review_horizons", "since") => match row.get_ref(index).unwrap() {
                        ValueRef::Null => "NULL".to_owned(),
                        _ => "<window start>".to_owned(),
                    },
                    ("cursors", "opaque") if validators == Validators::Presence => {
                        match row.get_ref(index).unwrap() {
                            ValueRef::Null => "NULL".to_owned(),
                            _ => "<validator>".to_owned(),
                        }
                    }
                    ("cursors", "since") => match row.get_ref(index).unwrap() {
                        ValueRef::Integer(since) if since < history_start => {
                            "<lookback start>".to_owned()
                        }
                        other => text(other),
                    },
                    _ => text(row.get_ref(index).unwrap()),
                };
                line.push_str(&format!(" {column}={value}"));
            }
            lines.push(line);
        }
    }
    lines.sort();
    lines
}

/// How [`dump`] shows `cursors.opaque`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validators {
    Presence,
    Exact,
}

fn text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => b.iter().map(|byte| format!("{byte:02x}")).collect(),
    }
}

/// The rows of one dump and not the other (counting repeats), for a readable
/// failure.
fn first_difference(expected: &[String], actual: &[String]) -> String {
    let mut counts: std::collections::BTreeMap<&String, i64> = Default::default();
    for line in expected {
        *counts.entry(line).or_default() += 1;
    }
    for line in actual {
        *counts.entry(line).or_default() -= 1;
    }
    let missing: Vec<_> = counts.iter().filter(|(_, n)| **n > 0).take(5).collect();
    let extra: Vec<_> = counts.iter().filter(|(_, n)| **n < 0).take(5).collect();
    format!(
        "{} rows expected, {} found; missing {missing:#?}; unexpected {extra:#?}",
        expected.len(),
        actual.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_20_random_points_of_a_sync_then_restart_gives_the_uninterrupted_store() {
    let org = org();
    let history_start = org.now.0 - i64::from(DAYS) * dora_collector::sim::SECONDS_PER_DAY;
    let options = SimOptions {
        // Every run and restart reads from the same budget; none may run out.
        rate_limit: 10_000_000,
        ..SimOptions::default()
    };
    let sim = SimServer::start(org, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");

    // Two uninterrupted runs: their equality shows the dump ignores only what
    // legitimately differs between runs.
    let reference_store = dir.path().join("reference.db");
    let config = write_config(dir.path(), &sim, &reference_store);
    let whole = run_whole(&sim, &config, &log).await;
    let reference = dump(&reference_store, history_start, Validators::Presence);
    let again_store = dir.path().join("again.db");
    let config = write_config(dir.path(), &sim, &again_store);
    assert_eq!(run_whole(&sim, &config, &log).await, whole);
    let again = dump(&again_store, history_start, Validators::Exact);
    let reference_exact = dump(&reference_store, history_start, Validators::Exact);
    assert!(
        again == reference_exact,
        "{}",
        first_difference(&reference_exact, &again)
    );
    // The next sync after an uninterrupted one.
    let next_requests = run_whole(&sim, &config, &log).await;
    let reference_next = dump(&again_store, history_start, Validators::Exact);
    assert!(
        reference.iter().any(|l| l.starts_with("commits:"))
            && reference
                .iter()
                .any(|l| l.starts_with("cursors:") && l.contains("history"))
            && reference.iter().any(|l| l.starts_with("incidents:"))
            && reference.iter().any(|l| l.starts_with("pull_requests:")),
        "the organisation exercises every table"
    );
    assert!(whole > 50, "a sync of {whole} requests is too short to cut");

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let mut landed: Vec<(usize, u64)> = Vec::new();
    let mut chains = 0;
    let mut runs = 0;
    while landed.len() < KILLS {
        chains += 1;
        let store = dir.path().join(format!("chain{chains}.db"));
        let config = write_config(dir.path(), &sim, &store);
        // Kill, restart, kill... until a run completes (or the kills are done and
        // the last restart runs uninterrupted).
        loop {
            runs += 1;
            assert!(runs <= MAX_RUNS, "{runs} runs for {} kills", landed.len());
            if landed.len() == KILLS {
                run_whole(&sim, &config, &log).await;
                break;
            }
            let kill_after = rng.random_range(1..whole);
            match run_and_kill(&sim, &config, &log, kill_after).await {
                Run::Killed { requests } => {
                    assert!(requests >= 1 && requests >= kill_after);
                    landed.push((chains, requests));
                }
                Run::Completed => break,
            }
        }
        let now = SystemClock.now();
        assert!(
            snapshot(&store, now) == snapshot(&reference_store, now),
            "chain {chains} (kills {landed:?}): the engine's values differ"
        );
        let restored = beyond_pages(
            dump(&store, history_start, Validators::Presence),
            &reference,
        );
        assert!(
            restored == reference,
            "chain {chains} (kills {landed:?}): {}",
            first_difference(&reference, &restored)
        );
        // The next sync reads what it would have read after an uninterrupted
        // sync, and leaves the same store, validators included.
        assert_eq!(
            run_whole(&sim, &config, &log).await,
            next_requests,
            "chain {chains}"
        );
        let next = beyond_pages(
            dump(&store, history_start, Validators::Exact),
            &reference_next,
        );
        assert!(
            next == reference_next,
            "chain {chains}, next sync (kills {landed:?}): {}",
            first_difference(&reference_next, &next)
        );
    }
    assert_eq!(landed.len(), KILLS);
    // The kills spread over the sync, not only its start.
    let late = landed.iter().filter(|(_, r)| *r > whole / 2).count();
    assert!(late > 0, "no kill in the second half of a sync: {landed:?}");
    eprintln!("{KILLS} kills over {chains} chains, {runs} runs, a whole sync is {whole} requests: {landed:?}");
}

/// Clients pushing at once during the storm.
const STORM_CLIENTS: usize = 4;
/// Deployments each client sends (one per request, ids `c{client}-{n}`).
const STORM_ITEMS: usize = 1_000;
/// How long the storm runs before SIGKILL.
const STORM_BEFORE_KILL: Duration = Duration::from_millis(1_500);
const STORM_TOKEN: &str = "storm-token-0123456789abcdef0123456789abc";

/// The binary serving a push-only configuration on `port` with the store at `store`.
fn serve_push(dir: &Path, store: &Path, port: u16) -> Child {
    let config = dir.join("push.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[storage]\npath = {:?}\n\
             [ingest]\nrequests_per_second = 100000\n\
             [[ingest.clients]]\nname = \"storm\"\ntoken = \"{STORM_TOKEN}\"\n\
             repositories = [\"acme/*\"]\n",
            store.display().to_string()
        ),
    )
    .unwrap();
    Command::new(BINARY)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts")
}

/// The deployment with id `c{client}-{n}`: its own sha and root commit.
fn storm_item(client: usize, n: usize) -> (String, String) {
    let id = format!("c{client}-{n}");
    let sha = format!("{:040x}", client * 1_000_000 + n + 1);
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    let body = serde_json::json!({
        "id": id, "repository": format!("acme/r{client}"), "environment": "production",
        "sha": sha, "status": "success", "finished_at": at.to_rfc3339(),
        "commits": [{"sha": sha, "parents": [], "authored_at": at.to_rfc3339()}],
    })
    .to_string();
    (sha, body)
}

/// Pushes `items` (`(sha, body)`) of one client in order until `stop`, returning
/// the shas answered `202`.
async fn storm(port: u16, items: Vec<(String, String)>) -> Vec<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/deployments");
    let mut acked = Vec::new();
    for (sha, body) in items {
        let answer = client
            .post(&url)
            .bearer_auth(STORM_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status() == 202 => acked.push(sha),
            Ok(_) => {}
            // Killed: the rest is never answered.
            Err(_) => break,
        }
    }
    acked
}

/// Waits until `/healthz` answers on `port`.
async fn wait_up(port: u16) {
    for _ in 0..600 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the daemon did not come up");
}

/// The shas of every stored deployment, and how many rows there are.
fn stored_shas(store: &Path) -> (BTreeSet<String>, usize) {
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let shas: Vec<String> = conn
        .prepare("SELECT hex(sha) FROM deployments")
        .unwrap()
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|sha| sha.unwrap().to_lowercase())
        .collect();
    let rows = shas.len();
    (shas.into_iter().collect(), rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_storm_killed_and_retried_converges() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let all: Vec<Vec<(String, String)>> = (0..STORM_CLIENTS)
        .map(|c| (0..STORM_ITEMS).map(|n| storm_item(c, n)).collect())
        .collect();
    let mut child = serve_push(dir.path(), &store, port);
    wait_up(port).await;
    let clients: Vec<_> = all
        .iter()
        .map(|items| tokio::spawn(storm(port, items.clone())))
        .collect();
    tokio::time::sleep(STORM_BEFORE_KILL).await;
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.signal(), Some(SIGKILL), "killed mid-storm: {exit:?}");
    let mut acked = BTreeSet::new();
    for client in clients {
        acked.extend(client.await.unwrap());
    }
    println!(
        "{} of {} pushes acknowledged before SIGKILL",
        acked.len(),
        STORM_CLIENTS * STORM_ITEMS
    );
    assert!(
        !acked.is_empty(),
        "some pushes were acknowledged before the kill"
    );
    let total = STORM_CLIENTS * STORM_ITEMS;
    assert!(
        acked.len() < total,
        "the kill landed mid-storm ({} acked)",
        acked.len()
    );

    // Every acknowledged push survived the kill, once.
    let (stored, rows) = stored_shas(&store);
    assert_eq!(rows, stored.len(), "no deployment twice");
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // Restarted, the clients send everything again with the same ids: the
    // store converges to exactly what they sent.
    let mut child = serve_push(dir.path(), &store, port);
    wait_up(port).await;
    let retries: Vec<_> = all
        .iter()
        .map(|items| tokio::spawn(storm(port, items.clone())))
        .collect();
    for retry in retries {
        assert_eq!(
            retry.await.unwrap().len(),
            STORM_ITEMS,
            "every retry answered 202"
        );
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let (stored, rows) = stored_shas(&store);
    let sent: BTreeSet<String> = all.iter().flatten().map(|(sha, _)| sha.clone()).collect();
    assert_eq!(rows, total, "each id stored once");
    assert_eq!(stored, sent);
}
