//! Replicas of the real binary sharing one PostgreSQL store, against the
//! simulated GitHub: the organisation, the configuration, the processes and
//! what the store says of them. Shared by the failover test
//! (`tests/deploy/replicas_e2e.rs`) and the failover bench (`benches/failover.rs`).
//! Everything listens on 127.0.0.1.

#![allow(dead_code)]

use dora_collector::daemon::{demo, Clock, SystemClock};
use dora_collector::domain::{RepoName, Timestamp};
use dora_collector::sim::{Org, OrgSpec};
use dora_collector::store::{PostgresStore, PostgresUrl, Store};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

/// The replicas' poll interval: short, so that a failover is seen within
/// seconds (the lease is a third of it, at least 3 s).
pub const POLL_SECONDS: u64 = 10;

/// Between two looks at the store or a replica.
pub const POLL: Duration = Duration::from_millis(20);

/// A small organisation whose history ends at the real present (the binary
/// runs on the system clock): `repositories` of `days` days.
pub fn org(repositories: usize, days: u32, seed: u64) -> Org {
    let now = SystemClock.now();
    let spec = OrgSpec {
        repositories,
        days,
        now: demo::demo_spec(repositories, days, seed, now).now,
        ..OrgSpec::small(seed)
    };
    Org::generate(&spec)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The demo's configuration of `org` at `api_url`, listening on `port`, on
/// PostgreSQL at `url` (or on the SQLite file `sqlite`), polling every
/// [`POLL_SECONDS`].
pub fn config_text(
    org: &Org,
    api_url: &str,
    port: u16,
    url: Option<&PostgresUrl>,
    sqlite: &Path,
) -> String {
    let text = demo::demo_config_text(
        org,
        api_url,
        format!("127.0.0.1:{port}").parse().unwrap(),
        sqlite,
    );
    let text = text.replace(
        "poll_interval = \"5m\"",
        &format!("poll_interval = \"{POLL_SECONDS}s\""),
    );
    match url {
        Some(url) => {
            let path_line = format!("path = {:?}", sqlite.display().to_string());
            assert!(text.contains(&path_line), "{text}");
            text.replace(&path_line, &format!("url = {:?}", url.expose()))
        }
        None => text,
    }
}

/// One `dora-collector serve` process, killed (SIGKILL) when dropped.
pub struct Replica {
    pub port: u16,
    pub child: Child,
    pub log: PathBuf,
}

impl Replica {
    /// Starts `serve` with the configuration `text`, its log in `dir`.
    pub fn start(dir: &Path, name: &str, port: u16, text: &str) -> Replica {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env_remove("HOSTNAME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("dora-collector serve starts");
        Replica { port, child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Whether `holder` (a lease's) is this process's: the id carries the pid.
    pub fn holds_as(&self, holder: &str) -> bool {
        holder.contains(&format!("-{}-", self.child.id()))
    }

    /// Panics with the log when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the replica exited ({status}):\n{}", self.log());
        }
    }

    /// SIGKILL, and reaped.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repositories whose leases `replica` holds now, by the store.
pub fn leased_by(store: &PostgresStore, replica: &Replica) -> Vec<RepoName> {
    store
        .leases()
        .unwrap()
        .into_iter()
        .filter(|lease| lease.expires_in_ms > 0 && replica.holds_as(&lease.holder))
        .filter_map(|lease| {
            let name = lease
                .name
                .strip_prefix(dora_collector::store::REPOSITORY_LEASE_PREFIX)?;
            RepoName::parse(name).ok()
        })
        .collect()
}

/// Whether `replica` holds the metrics lease, by the store.
pub fn holds_metrics(store: &PostgresStore, replica: &Replica) -> bool {
    store.leases().unwrap().into_iter().any(|lease| {
        lease.name == dora_collector::store::METRICS_LEASE
            && lease.expires_in_ms > 0
            && replica.holds_as(&lease.holder)
    })
}

/// The last successful sync of each repository (by any source), by the store.
pub fn successes(store: &PostgresStore) -> BTreeMap<RepoName, Timestamp> {
    let mut out: BTreeMap<RepoName, Timestamp> = BTreeMap::new();
    for status in store.sync_status().unwrap() {
        if let Some(at) = status.last_success_at {
            let entry = out.entry(status.repository).or_insert(at);
            *entry = (*entry).max(at);
        }
    }
    out
}

/// Waits until every one of `repositories` has a successful sync after the
/// one in `before` (none: any); when that was seen, or `None` after `bound`.
pub fn wait_for_syncs(
    store: &PostgresStore,
    repositories: &[RepoName],
    before: &BTreeMap<RepoName, Timestamp>,
    bound: Duration,
) -> Option<Instant> {
    let started = Instant::now();
    while started.elapsed() < bound {
        let now = successes(store);
        let all = repositories.iter().all(|repository| {
            now.get(repository)
                .is_some_and(|at| before.get(repository).is_none_or(|was| at > was))
        });
        if all {
            return Some(Instant::now());
        }
        std::thread::sleep(POLL);
    }
    None
}
