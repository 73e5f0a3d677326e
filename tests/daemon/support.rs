//! Helpers: start the simulator and the daemon on 127.0.0.1:0 with a fixed clock,
//! scrape over HTTP, parse the text format, capture logs; run the real binary as a
//! daemon (its output in files) and signal it.

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::sim::{Org, SimHandle, SimOptions, SimServer, SIM_TOKEN};
use dora_collector::sources::github::{RetryPolicy, SecondaryPace};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A repository line of a test configuration.
pub struct Repo<'a> {
    pub name: &'a str,
    pub team: &'a str,
    /// `Some(workflow)`: deployments from workflow runs of it on `main`.
    pub workflow: Option<&'a str>,
}

pub fn repo<'a>(name: &'a str, team: &'a str) -> Repo<'a> {
    Repo {
        name,
        team,
        workflow: None,
    }
}

pub fn workflow_repo<'a>(name: &'a str, team: &'a str, workflow: &'a str) -> Repo<'a> {
    Repo {
        name,
        team,
        workflow: Some(workflow),
    }
}

/// A configuration for `api_url` with `token`, the store at `store`.
pub fn config(api_url: &str, token: &str, store: &Path, repos: &[Repo<'_>]) -> Config {
    config_with(api_url, token, store, repos, "")
}

/// [`config`] with extra `[github]` lines.
pub fn config_with(
    api_url: &str,
    token: &str,
    store: &Path,
    repos: &[Repo<'_>],
    github_extra: &str,
) -> Config {
    let text = config_text(api_url, token, store, repos, github_extra);
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("test config invalid: {problems:?}\n{text}"))
}

/// The TOML text of [`config_with`]. Deployments are read through REST
/// (`api = "rest"`) unless `github_extra` sets `api`: most tests here check REST
/// request shapes or serve a hand-written REST fake; `graphql.rs` and
/// `tests/engine/e2e_reference.rs` cover the GraphQL path (the default).
pub fn config_text(
    api_url: &str,
    token: &str,
    store: &Path,
    repos: &[Repo<'_>],
    github_extra: &str,
) -> String {
    let api = if github_extra
        .lines()
        .any(|l| l.trim_start().starts_with("api "))
    {
        ""
    } else {
        "api = \"rest\"\n"
    };
    let github_extra = format!("{api}{github_extra}");
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [github]\napi_url = {api_url:?}\ntoken = {token:?}\n{github_extra}\n",
        store.display().to_string(),
    );
    for repo in repos {
        text.push_str(&format!(
            "[[github.repositories]]\nname = {:?}\nteam = {:?}\n",
            repo.name, repo.team
        ));
        if let Some(workflow) = repo.workflow {
            text.push_str(&format!(
                "deployments = {{ from = \"workflow_runs\", workflow = {workflow:?}, \
                 branch = \"main\", environment = \"production\" }}\n"
            ));
        }
    }
    text
}

/// How many times faster than GitHub's the tests' secondary pace runs: GitHub's
/// points per minute over about a second.
pub const PACE_SPEED: f64 = 60.0;

/// The production retry policy with waits short enough for tests: every bound
/// and count as in production, backoffs of milliseconds, secondary limits waited
/// for exactly their `retry-after` (the simulator's are about a second), GitHub's
/// secondary points paced over a window [`PACE_SPEED`] times shorter.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_backoff: std::time::Duration::from_millis(2),
        max_backoff: std::time::Duration::from_millis(20),
        min_secondary_wait: std::time::Duration::from_millis(50),
        max_rate_limit_wait: std::time::Duration::from_secs(30),
        github_secondary_pace: Some(SecondaryPace::GITHUB.scaled(PACE_SPEED)),
        ..RetryPolicy::default()
    }
}

/// A simulator, a temporary store, a fixed clock.
pub struct World {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
}

impl World {
    pub async fn new(org: Org) -> World {
        let now = org.now;
        let sim = SimServer::start(org, SimOptions::default())
            .await
            .expect("simulator starts");
        World {
            sim,
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(now)),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("dora.db")
    }

    pub fn config(&self, repos: &[Repo<'_>]) -> Config {
        config(self.sim.base_url(), SIM_TOKEN, &self.store_path(), repos)
    }

    /// Starts the daemon with this world's clock on 127.0.0.1:0.
    pub async fn start(&self, config: Config) -> DaemonHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = RunOptions {
            clock: self.clock.clone(),
            simulated: false,
            retry: fast_retries(),
            ..RunOptions::default()
        };
        daemon::start(config, listener, options)
            .await
            .expect("daemon starts")
    }
}

/// GET `path` from the daemon: status and body.
pub async fn get(handle: &DaemonHandle, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", handle.local_addr());
    let response = reqwest::get(&url).await.expect("daemon answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Waits for the first cycle, checks `/readyz`, returns `/metrics`.
pub async fn ready_metrics(handle: &mut DaemonHandle) -> String {
    let report = handle.wait_for_cycles(1).await.expect("a cycle completes");
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    let (status, reason) = get(handle, "/readyz").await;
    assert_eq!(status, 200, "{reason}");
    get(handle, "/metrics").await.1
}

/// The samples of a text exposition: `name{labels}` → value, health families
/// (`dora_collector_*`) left out when `without_health`.
pub fn samples(text: &str, without_health: bool) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| !(without_health && l.starts_with("dora_collector_")))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// One sample's value, if present.
pub fn value(text: &str, series: &str) -> Option<f64> {
    samples(text, false).get(series).copied()
}

/// Log output captured from a `tracing` subscriber.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subscriber logging everything, trace included, into `captured`.
pub fn capturing_subscriber(captured: &Captured) -> impl tracing::Subscriber + Send + Sync {
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
}

/// The real binary.
pub const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

/// How often a test looks at a running binary (its `/readyz`, its exit), and how
/// many times at most: a bound on the wait, not a timing assertion.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);
pub const MAX_POLLS: u32 = 1200;

/// A simulated organisation whose history ends now (the binary runs on the real
/// clock), served with `token` as the only accepted token.
pub async fn live_simulator(token: &str) -> SimHandle {
    use dora_collector::daemon::{Clock, SystemClock};
    let now = dora_collector::daemon::demo::demo_spec(2, 10, 1, SystemClock.now()).now;
    let spec = dora_collector::sim::OrgSpec {
        repositories: 2,
        days: 10,
        now,
        ..dora_collector::sim::OrgSpec::small(1)
    };
    let options = SimOptions {
        token: token.to_owned(),
        ..SimOptions::default()
    };
    SimServer::start(Org::generate(&spec), options)
        .await
        .unwrap()
}

/// A port free on 127.0.0.1 a moment ago, for a binary's `server.listen`.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The real binary running in the background, its stdout and stderr in files.
pub struct Running {
    child: std::process::Child,
    stderr: PathBuf,
}

impl Running {
    /// Starts `command`, writing its output to `NAME.out` and `NAME.err` in `dir`
    /// (files, not pipes: a daemon fills a pipe nobody reads).
    pub fn spawn(mut command: std::process::Command, dir: &Path, name: &str) -> Running {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("the binary starts");
        Running { child, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `signal` (`TERM`, `HUP`, ...).
    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Polls `url` until `done(status, body)` holds; the last status and body.
    /// Fails the test, with the binary's output, when it never does.
    pub async fn wait_for(&mut self, url: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        let mut last = (0, String::new());
        for _ in 0..MAX_POLLS {
            assert!(self.is_running(), "it exited:\n{}", self.stderr());
            if let Ok(response) = client.get(url).send().await {
                let status = response.status().as_u16();
                last = (status, response.text().await.unwrap_or_default());
                if done(last.0, &last.1) {
                    return last;
                }
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        panic!(
            "{url} never answered as expected; last {last:?}\n{}",
            self.stderr()
        );
    }

    /// Waits for the exit, at most `limit` (then kills it and fails the test);
    /// returns the status and how long it took.
    pub async fn wait_exit(
        mut self,
        limit: std::time::Duration,
    ) -> (std::process::ExitStatus, std::time::Duration, Running) {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed(), self);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running {limit:?} after being told to stop:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(POLL_INTERVAL / 5).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test leaves no daemon behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The RSA key pair of the tests' GitHub App, made once per test binary:
/// `(private key as GitHub downloads it (PKCS#1 PEM), public key (SPKI PEM))`.
pub fn app_key() -> &'static (String, String) {
    static KEY: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    KEY.get_or_init(dora_collector::sim::app_key_pair)
}

/// The tests' App id.
pub const APP_ID: u64 = 424_242;

/// A simulated App with one installation per organisation login (ids 9001, 9002,
/// … in order) whose tokens live `token_lifetime`.
pub fn sim_app(
    accounts: &[&str],
    token_lifetime: std::time::Duration,
) -> dora_collector::sim::SimApp {
    dora_collector::sim::SimApp {
        id: APP_ID,
        public_key_pem: app_key().1.clone(),
        token_lifetime,
        installations: accounts
            .iter()
            .enumerate()
            .map(|(i, account)| dora_collector::sim::SimInstallation {
                id: 9001 + i as u64,
                account: (*account).to_owned(),
            })
            .collect(),
    }
}

/// [`config_text`] authenticating as the tests' App (its key in the file `key`)
/// instead of with a token.
pub fn app_config_text(
    api_url: &str,
    key: &Path,
    store: &Path,
    repos: &[Repo<'_>],
    github_extra: &str,
) -> String {
    let with_token = config_text(api_url, "placeholder-token", store, repos, github_extra);
    with_token.replace(
        "token = \"placeholder-token\"\n",
        &format!(
            "app_id = {APP_ID}\nprivate_key_path = {:?}\n",
            key.display().to_string()
        ),
    )
}
