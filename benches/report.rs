//! The report end to end at organisation scale: 1,000 repositories × 1 year of
//! history in a file-backed SQLite store, written once through `SqliteStore::apply`
//! as the daemon writes it; then open → `report::generate` (one `load_events`, the
//! evaluations, the build) → render, timed several times. Target: under 2 s.
//!
//! Then `backfill --split` over the same store: one year at a daily step (365
//! evaluations, one OpenMetrics file each), its time and size, and, when
//! promtool is installed, the time and size of the blocks `promtool tsdb
//! create-blocks-from openmetrics` makes of them (`DORA_BACKFILL_BENCH=0` skips
//! this part).
//!
//! A plain bench binary that prints its figures (`cargo bench --bench report`).
//! The history follows `support/synthetic.rs`: about 10 changes per deployment
//! (mostly linear, a merge every tenth commit), 2% rollbacks, 50 incidents per
//! repository (half naming a root cause), a few hotfix pull requests.
//! `DORA_REPORT_BENCH_DEPLOYMENTS` sets the deployments per repository and year
//! (default 100, about two a week: 100,000 deployments, 1,000,000 commits).
//!
//! With `DORA_REPORT_BENCH_POSTGRES_URL=postgres://...` (an empty database) the
//! same history is also written to a PostgreSQL store and `load_events` of every
//! repository timed from both stores (`DORA_REPORT_BENCH_POSTGRES_ONLY=1` skips
//! the report and backfill figures).

use dora_collector::config::Config;
use dora_collector::domain::*;
use dora_collector::dora::EngineConfig;
use dora_collector::dora::EventsBuilder;
use dora_collector::report::{self, Format, ReportRequest, ReportWindow};
use dora_collector::store::{
    CommitRecord, PostgresStore, PostgresUrl, SqliteStore, Store, SyncBatch, SyncOutcome,
};
use std::time::Instant;

const REPOSITORIES: u64 = 1_000;
const DEFAULT_DEPLOYMENTS_PER_REPO: u64 = 100;
const CHANGES_PER_DEPLOYMENT: u64 = 10;
const INCIDENTS_PER_REPO: u64 = 50;
const TEAMS: u64 = 20;
/// Timed runs of the whole report.
const RUNS: usize = 5;
const DAY: i64 = 86_400;
/// The end of the history and of the report: 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn sha_of(repo: u64, commit: u64) -> CommitSha {
    let mut state = repo.wrapping_mul(1_000_003) ^ commit.wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut bytes = [0u8; 20];
    for chunk in bytes.chunks_mut(8) {
        let value = splitmix(&mut state).to_le_bytes();
        chunk.copy_from_slice(&value[..chunk.len()]);
    }
    CommitSha::from_bytes(bytes)
}

fn repo_name(r: u64) -> RepoName {
    RepoName::parse(&format!("acme/service-{r:04}")).unwrap()
}

/// One repository's year of history as one batch.
fn batch(r: u64, deployments: u64, rng: &mut u64) -> SyncBatch {
    let name = repo_name(r);
    let production = Environment::parse("production").unwrap();
    let year = 365 * DAY;
    let start = NOW - year;
    let step = year / deployments as i64;
    let commits = deployments * CHANGES_PER_DEPLOYMENT;
    let mut batch = SyncBatch::new(name.clone());
    for c in 0..commits {
        let mut parents = Vec::with_capacity(2);
        if c > 0 {
            parents.push(sha_of(r, c - 1));
        }
        if c % 10 == 9 && c >= 5 {
            parents.push(sha_of(r, c - 5));
        }
        let deployment = c / CHANGES_PER_DEPLOYMENT;
        let authored = start + deployment as i64 * step - (splitmix(rng) % (2 * DAY as u64)) as i64;
        let message = if c % 997 == 0 {
            format!("Revert \"change {c}\"")
        } else {
            format!("Change {c} of service {r}")
        };
        batch.commits.push(CommitRecord::new(
            sha_of(r, c),
            parents,
            Timestamp(authored),
            &message,
        ));
    }
    for d in 0..deployments {
        let head = (d + 1) * CHANGES_PER_DEPLOYMENT - 1;
        let sha = if d >= 2 && splitmix(rng) % 50 == 0 {
            sha_of(r, (d - 1) * CHANGES_PER_DEPLOYMENT - 1)
        } else {
            sha_of(r, head)
        };
        let at = Timestamp(start + d as i64 * step + 600);
        batch.deployments.push(Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: name.clone(),
            id: d + 1,
            environment: production.clone(),
            sha,
            created_at: at,
            outcome: DeploymentOutcome::Succeeded { at },
        });
    }
    for i in 0..INCIDENTS_PER_REPO {
        let created = start + (splitmix(rng) % year as u64) as i64;
        let closed =
            (i % 5 != 0).then(|| Timestamp(created + (splitmix(rng) % (3 * DAY as u64)) as i64));
        let root_cause = (i % 2 == 0).then(|| {
            let commit = splitmix(rng) % commits;
            ShaPrefix::parse(&sha_of(r, commit).to_string()[..7]).unwrap()
        });
        batch.incidents.push(Incident {
            source: dora_collector::domain::IncidentSource::GithubIssues,
            repository: name.clone(),
            number: i + 1,
            created_at: Timestamp(created),
            closed_at: closed,
            labels: vec!["incident".to_owned()],
            root_cause,
        });
    }
    for p in 0..5 {
        let commit = splitmix(rng) % commits;
        batch.pull_requests.push(PullRequest {
            repository: name.clone(),
            number: 10_000 + p,
            merged_at: Some(Timestamp(start)),
            merge_commit_sha: Some(sha_of(r, commit)),
            labels: vec!["hotfix".to_owned()],
            commits: vec![],
            first_commit_at: None,
            created_at: None,
            first_review_at: None,
        });
    }
    batch
}

fn config(store: &std::path::Path) -> Config {
    let mut text = format!(
        "[storage]\npath = \"{}\"\n[github]\ntoken = \"unused\"\n",
        store.display()
    );
    for r in 0..REPOSITORIES {
        text.push_str(&format!(
            "[[github.repositories]]\nname = \"{}\"\nteam = \"team-{}\"\n",
            repo_name(r),
            r % TEAMS
        ));
    }
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).expect("valid")
}

/// CPU time (user + system) of the whole process so far, in seconds.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let rest = &stat[stat.rfind(')').unwrap_or(0) + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let per_repo: u64 = std::env::var("DORA_REPORT_BENCH_DEPLOYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_DEPLOYMENTS_PER_REPO);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("report-bench.db");

    let started = Instant::now();
    {
        let mut store = SqliteStore::open(&path).expect("open store");
        let mut rng = 42u64;
        for r in 0..REPOSITORIES {
            store.apply(&batch(r, per_repo, &mut rng)).expect("apply");
            store
                .record_sync(
                    &repo_name(r),
                    "github_deployments",
                    Timestamp(NOW - 60),
                    &SyncOutcome::Succeeded,
                )
                .expect("record sync");
        }
        let counts = store.counts().expect("counts");
        println!(
            "store: {} repositories, {} deployments, {} commits, {} incidents, {} pull requests \
             (built in {:.1?}, not timed below)",
            counts.repositories,
            counts.deployments,
            counts.commits,
            counts.incidents,
            counts.pull_requests,
            started.elapsed()
        );
    }
    let config = config(&path);
    if let Ok(url) = std::env::var("DORA_REPORT_BENCH_POSTGRES_URL") {
        compare_with_postgres(&path, &config, per_repo, &url);
        if std::env::var("DORA_REPORT_BENCH_POSTGRES_ONLY").as_deref() == Ok("1") {
            return;
        }
    }
    let request = ReportRequest {
        window: ReportWindow::parse("30d").unwrap(),
        until: Timestamp(NOW),
        team: None,
        generated_at: Timestamp(NOW),
    };

    // The end-to-end figure: open the file, load, evaluate, build, render HTML.
    let mut times = Vec::new();
    for run in 0..RUNS {
        let cpu = process_cpu_seconds();
        let started = Instant::now();
        let store = report::open_store(&path).expect("open");
        let built = report::generate(&store, &config, &request).expect("report");
        let html = report::render(&built, Format::Html).expect("html");
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "report run {}: {elapsed:.3} s wall, {:.2} s CPU ({} repositories, {} bytes of HTML)",
            run + 1,
            process_cpu_seconds() - cpu,
            built.repositories.len(),
            html.len()
        );
        times.push(elapsed);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "report end to end (open, load_events, evaluate, build, render HTML): \
         median {:.3} s, best {:.3} s, worst {:.3} s",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );

    // Where the time goes.
    let store = report::open_store(&path).expect("open");
    let engine: EngineConfig = config.engine_config();
    let names: Vec<RepoName> = engine.teams.keys().cloned().collect();
    let started = Instant::now();
    let events = EventsBuilder::collect(|sink| store.load_events(&names, sink)).expect("load");
    let load = started.elapsed();
    let started = Instant::now();
    let evaluation = report::evaluate(&events, &engine, &request.window.to_window(), request.until);
    let evaluate = started.elapsed();
    let started = Instant::now();
    let one = dora_collector::dora::compute(&events, &engine, request.until);
    let single = started.elapsed();
    drop((events, one));
    let built = report::generate(&store, &config, &request).expect("report");
    let started = Instant::now();
    for format in Format::ALL {
        report::render(&built, format).expect("render");
    }
    let render = started.elapsed();
    println!(
        "breakdown: load_events {load:.3?}; evaluate {evaluate:.3?} (the period with a {}-week \
         trend and the previous period, two replays on up to {} threads; one compute alone: \
         {single:.3?}); render all four formats {render:.3?}",
        evaluation.trend.len(),
        report::MAX_EVALUATION_THREADS
    );
    drop(store);
    if std::env::var("DORA_BACKFILL_BENCH").as_deref() != Ok("0") {
        backfill(&path, &config, dir.path());
    }
}

/// Total size of the files under `dir`.
fn size_of(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.file_type() {
                    Ok(kind) if kind.is_dir() => size_of(&entry.path()),
                    _ => entry.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A year of daily evaluations of the store as OpenMetrics, then its blocks.
fn backfill(path: &std::path::Path, config: &Config, dir: &std::path::Path) {
    let output = dir.join("history.om");
    let request = dora_collector::backfill::BackfillRequest {
        from: Timestamp(NOW - 364 * DAY),
        until: Timestamp(NOW),
        step_seconds: DAY,
        output: output.clone(),
        split: true,
    };
    let store = report::open_store(path).expect("open");
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let summary = dora_collector::backfill::backfill(&store, config, &request, "bench", |_| {})
        .expect("backfill");
    println!(
        "backfill: {} evaluations of {} repositories in {:.1?} wall, {:.1} s CPU: {} families, \
         {} samples, {:.1} MiB of OpenMetrics",
        summary.steps,
        REPOSITORIES,
        started.elapsed(),
        process_cpu_seconds() - cpu,
        summary.families,
        summary.samples,
        summary.bytes as f64 / 1_048_576.0
    );
    let blocks = dir.join("blocks");
    let started = Instant::now();
    for file in &summary.files {
        match std::process::Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(file)
            .arg(&blocks)
            .output()
        {
            Ok(done) if done.status.success() => {}
            Ok(done) => {
                println!(
                    "promtool failed: {}",
                    String::from_utf8_lossy(&done.stderr).trim()
                );
                return;
            }
            Err(error) => {
                println!("promtool not run ({error}): no block size");
                return;
            }
        }
    }
    println!(
        "promtool tsdb create-blocks-from openmetrics, once per file: {:.1?}, blocks {:.1} MiB",
        started.elapsed(),
        size_of(&blocks) as f64 / 1_048_576.0
    );
}

/// Writes the same history to the PostgreSQL store at `url` (timed: the first
/// sync's writes), then times `load_events` of every repository from both stores.
fn compare_with_postgres(path: &std::path::Path, config: &Config, per_repo: u64, url: &str) {
    let url = PostgresUrl::parse(url).expect("a postgres:// URL");
    let started = Instant::now();
    {
        let mut store = PostgresStore::open(&url).expect("open the PostgreSQL store");
        let mut rng = 42u64;
        for r in 0..REPOSITORIES {
            store.apply(&batch(r, per_repo, &mut rng)).expect("apply");
            store
                .record_sync(
                    &repo_name(r),
                    "github_deployments",
                    Timestamp(NOW - 60),
                    &SyncOutcome::Succeeded,
                )
                .expect("record sync");
        }
        let counts = store.counts().expect("counts");
        println!(
            "PostgreSQL store: {} repositories, {} deployments, {} commits written in {:.1?}",
            counts.repositories,
            counts.deployments,
            counts.commits,
            started.elapsed()
        );
    }
    let names: Vec<RepoName> = config.engine_config().teams.keys().cloned().collect();
    let sqlite = report::open_store(path).expect("open");
    let postgres = PostgresStore::open(&url).expect("open");
    let stores: [(&str, &dyn Store); 2] = [("SQLite", &sqlite), ("PostgreSQL", &postgres)];
    for run in 1..=3 {
        for (name, store) in stores {
            let started = Instant::now();
            let events =
                EventsBuilder::collect(|sink| store.load_events(&names, sink)).expect("load");
            println!(
                "load_events run {run} from {name}: {} repositories, {} deployments, {} commits \
                 in {:.3?}",
                events.repositories().count(),
                events.deployment_count(),
                events.commit_count(),
                started.elapsed()
            );
        }
    }
}
