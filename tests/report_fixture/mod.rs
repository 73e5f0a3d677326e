//! A fixed store for the report tests, written through `SqliteStore` with
//! `SyncBatch`es and `record_sync` as the daemon writes it, plus its configuration.
//!
//! Four months of history ending at [`UNTIL`] (2026-03-31T23:59:59Z):
//! - `acme/api` (payments): a deployment a day, each change through a pull request
//!   (every third one unreviewed: lead-time stages under a pull-request start);
//!   lead times of hours before the last
//!   30 days and over a day in them (a level lost), incidents on every 10th
//!   deployment before and every 4th in the period (change failure rate above the
//!   threshold), one incident still open, one labelled `bug` (not an incident), and
//!   one deployment after `UNTIL` (must not count).
//! - `acme/web` (web): every 3 days; a rollback, a revert commit and a hotfix PR
//!   (rework), and a sync that failed for two days (stale data).
//! - `acme/billing` (payments): deployed until 35 days before `UNTIL`, then stopped
//!   (a frequency regression); its issues source never synced.
//! - `acme/docs` (web): configured, never synced, no events.
//! - `acme/legacy`: in the store but not configured (must not appear).
#![allow(dead_code)]

use dora_collector::config::Config;
use dora_collector::domain::*;
use dora_collector::store::{CommitRecord, SqliteStore, Store, SyncBatch, SyncOutcome};
use std::env::VarError;
use std::path::Path;

pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;
/// 2026-03-31T23:59:59Z, what `--until 2026-03-31` means.
pub const UNTIL: Timestamp = Timestamp(1_775_001_599);
pub const UNTIL_DATE: &str = "2026-03-31";
/// 2026-04-01T08:00:00Z.
pub const GENERATED_AT: Timestamp = Timestamp(1_775_030_400);
/// The first day of history.
const BASE: i64 = UNTIL.0 - 120 * DAY;
/// Set as `GITHUB_TOKEN` where a token is needed; never printed.
pub const TOKEN: &str = "ghp_ReportFixtureSecret0123456789";

pub fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn production() -> Environment {
    Environment::parse("production").unwrap()
}

/// A deterministic sha for (repository number, commit number).
fn sha(repo: u8, n: u32) -> CommitSha {
    let mut bytes = [0u8; 20];
    bytes[0] = repo;
    bytes[1..5].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    bytes[5..9].copy_from_slice(&n.to_be_bytes());
    CommitSha::from_bytes(bytes)
}

/// Builds a linear history and its deployments for one repository.
struct History {
    repo_id: u8,
    batch: SyncBatch,
    next_commit: u32,
    head: Option<CommitSha>,
    next_deployment: u64,
}

impl History {
    fn new(repo_id: u8, name: &str) -> Self {
        History {
            repo_id,
            batch: SyncBatch::new(repo(name)),
            next_commit: 0,
            head: None,
            next_deployment: 1,
        }
    }

    /// Adds a commit authored at `at` on top of the current head.
    fn commit(&mut self, at: i64, message: &str) -> CommitSha {
        let sha = sha(self.repo_id, self.next_commit);
        self.next_commit += 1;
        let parents = self.head.into_iter().collect();
        self.batch
            .commits
            .push(CommitRecord::new(sha, parents, Timestamp(at), message));
        self.head = Some(sha);
        sha
    }

    /// A successful production deployment of `sha` at `at`.
    fn deploy(&mut self, sha: CommitSha, at: i64) -> u64 {
        let id = self.next_deployment;
        self.next_deployment += 1;
        self.batch.deployments.push(Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: self.batch.repository.clone(),
            id,
            environment: production(),
            sha,
            created_at: Timestamp(at - 300),
            outcome: DeploymentOutcome::Succeeded { at: Timestamp(at) },
        });
        id
    }

    fn incident(&mut self, number: u64, created: i64, closed: Option<i64>, label: &str) {
        self.incident_with_cause(number, created, closed, label, None);
    }

    fn incident_with_cause(
        &mut self,
        number: u64,
        created: i64,
        closed: Option<i64>,
        label: &str,
        root_cause: Option<CommitSha>,
    ) {
        self.batch.incidents.push(Incident {
            source: dora_collector::domain::IncidentSource::GithubIssues,
            repository: self.batch.repository.clone(),
            number,
            created_at: Timestamp(created),
            closed_at: closed.map(Timestamp),
            labels: vec![label.to_owned()],
            root_cause: root_cause.map(|s| ShaPrefix::parse(&s.to_string()[..7]).unwrap()),
        });
    }
}

fn api() -> SyncBatch {
    let mut h = History::new(1, "acme/api");
    let recent = UNTIL.0 - 30 * DAY;
    let mut incident = 1;
    for i in 0..=120i64 {
        let at = BASE + i * DAY + 10 * HOUR;
        let lead = if at > recent {
            26 * HOUR + (i % 4) * HOUR
        } else {
            3 * HOUR + (i % 5) * HOUR
        };
        let first = h.commit(at - lead - HOUR, &format!("Change {i}a"));
        let head = h.commit(at - lead, &format!("Change {i}b"));
        h.deploy(head, at);
        // Its pull request (they matter only under a pull-request lead-time
        // start): opened 30 minutes after the first commit, reviewed 15 to 60
        // minutes later (every third one never), merged an hour after the last
        // commit.
        let opened = at - lead - 30 * 60;
        h.batch.pull_requests.push(PullRequest {
            repository: repo("acme/api"),
            number: 1000 + i as u64,
            merged_at: Some(Timestamp(at - lead + HOUR)),
            merge_commit_sha: None,
            labels: vec![],
            commits: vec![first, head],
            first_commit_at: Some(Timestamp(at - lead - HOUR)),
            created_at: Some(Timestamp(opened)),
            first_review_at: (i % 3 != 0).then_some(Timestamp(opened + (i % 4 + 1) * 15 * 60)),
        });
        if at > recent && i % 4 == 0 {
            h.incident(incident, at + HOUR, Some(at + 6 * HOUR), "incident");
            incident += 1;
        } else if at <= recent && i % 10 == 0 {
            h.incident_with_cause(
                incident,
                at + 30 * 60,
                Some(at + 2 * HOUR + 30 * 60),
                "incident",
                Some(head),
            );
            incident += 1;
        }
    }
    h.incident(100, UNTIL.0 - 2 * DAY - 3 * HOUR, None, "incident");
    h.incident(101, UNTIL.0 - 5 * DAY, None, "bug");
    h.batch
}

fn web() -> SyncBatch {
    let mut h = History::new(2, "acme/web");
    let mut heads = Vec::new();
    for k in 0..=40i64 {
        let at = BASE + 3 * k * DAY + 15 * HOUR;
        if k == 35 {
            // A rollback to the deployment before the previous one.
            h.deploy(heads[33], at);
            heads.push(heads[33]);
            continue;
        }
        let lead = 2 * DAY + (k % 3) * HOUR;
        h.commit(at - lead - 2 * HOUR, &format!("Web change {k}a"));
        let message = if k == 37 {
            "Revert \"Web change 36b\"".to_owned()
        } else {
            format!("Web change {k}b")
        };
        h.commit(at - lead - HOUR, &message);
        let head = h.commit(at - lead, &format!("Web change {k}c"));
        h.deploy(head, at);
        heads.push(head);
    }
    h.batch.pull_requests.push(PullRequest {
        repository: repo("acme/web"),
        number: 500,
        merged_at: Some(Timestamp(BASE + 3 * 38 * DAY)),
        merge_commit_sha: Some(heads[38]),
        labels: vec!["hotfix".to_owned()],
        commits: vec![],
        first_commit_at: None,
        created_at: None,
        first_review_at: None,
    });
    h.incident(
        7,
        BASE + 3 * 20 * DAY + 16 * HOUR,
        Some(BASE + 3 * 20 * DAY + 40 * HOUR),
        "incident",
    );
    h.batch
}

fn billing() -> SyncBatch {
    let mut h = History::new(3, "acme/billing");
    let mut at = BASE + 30 * DAY + 9 * HOUR;
    while at <= UNTIL.0 - 35 * DAY {
        let head = h.commit(at - 5 * HOUR, "Billing change");
        h.deploy(head, at);
        at += 2 * DAY;
    }
    h.batch
}

fn legacy() -> SyncBatch {
    let mut h = History::new(4, "acme/legacy");
    for i in 0..10 {
        let at = UNTIL.0 - i * DAY;
        let head = h.commit(at - HOUR, "Legacy change");
        h.deploy(head, at);
    }
    h.batch
}

/// Writes the fixture store at `path` (a new file).
pub fn build_store(path: &Path) {
    let mut store = SqliteStore::open(path).expect("open the fixture store");
    for batch in [api(), web(), billing(), legacy()] {
        store.apply(&batch).expect("apply a fixture batch");
    }
    let ok = SyncOutcome::Succeeded;
    let sync =
        |store: &mut SqliteStore, name: &str, source: &str, at: i64, outcome: &SyncOutcome| {
            store
                .record_sync(&repo(name), source, Timestamp(at), outcome)
                .expect("record a sync");
        };
    sync(
        &mut store,
        "acme/api",
        "github_deployments",
        UNTIL.0 - 120,
        &ok,
    );
    sync(&mut store, "acme/api", "github_issues", UNTIL.0 - 60, &ok);
    sync(
        &mut store,
        "acme/web",
        "github_deployments",
        UNTIL.0 - 2 * DAY,
        &ok,
    );
    sync(
        &mut store,
        "acme/web",
        "github_deployments",
        UNTIL.0 - 600,
        &SyncOutcome::Failed(
            "GET https://api.github.com/repos/acme/web/deployments: HTTP 502 Bad Gateway | retry"
                .to_owned(),
        ),
    );
    sync(
        &mut store,
        "acme/billing",
        "github_deployments",
        UNTIL.0 - 300,
        &ok,
    );
    sync(
        &mut store,
        "acme/billing",
        "github_issues",
        UNTIL.0 - 300,
        &SyncOutcome::Failed(
            "GET https://api.github.com/repos/acme/billing/issues: HTTP 403".to_owned(),
        ),
    );
}

/// The configuration of the fixture, its store at `store`.
pub fn config_text(store: &Path) -> String {
    format!(
        r#"[storage]
path = "{}"

[github]
token = "${{GITHUB_TOKEN}}"
poll_interval = "5m"

[[github.repositories]]
name = "acme/api"
team = "payments"

[[github.repositories]]
name = "acme/web"
team = "web"

[[github.repositories]]
name = "acme/billing"
team = "payments"

[[github.repositories]]
name = "acme/docs"
team = "web"
"#,
        store.display()
    )
}

pub fn lookup(name: &str) -> Result<String, VarError> {
    match name {
        "GITHUB_TOKEN" => Ok(TOKEN.to_owned()),
        _ => Err(VarError::NotPresent),
    }
}

pub fn config(store: &Path) -> Config {
    Config::from_toml_str(&config_text(store), lookup).expect("the fixture configuration is valid")
}

/// A configuration with one repository.
pub fn single_repository_config(store: &Path, name: &str) -> Config {
    let text = format!(
        "[storage]\npath = \"{}\"\n[github]\ntoken = \"${{GITHUB_TOKEN}}\"\n\
         [[github.repositories]]\nname = \"{name}\"\n",
        store.display()
    );
    Config::from_toml_str(&text, lookup).expect("valid configuration")
}

/// A directory with the fixture store and configuration.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        build_store(&dir.path().join("dora.db"));
        std::fs::write(
            dir.path().join("dora.toml"),
            config_text(&dir.path().join("dora.db")),
        )
        .expect("write the configuration");
        Fixture { dir }
    }

    pub fn store_path(&self) -> std::path::PathBuf {
        self.dir.path().join("dora.db")
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("dora.toml")
    }

    pub fn config(&self) -> Config {
        config(&self.store_path())
    }
}
