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
//! The history is `support/store_history.rs`'s (shaped as `support/synthetic.rs`'s):
//! about 10 changes per deployment (mostly linear, a merge every tenth commit), 2%
//! rollbacks, 50 incidents per repository (half naming a root cause), a few hotfix
//! pull requests.
//! `DORA_REPORT_BENCH_DEPLOYMENTS` sets the deployments per repository and year
//! (default 100, about two a week: 100,000 deployments, 1,000,000 commits).
//!
//! With `DORA_REPORT_BENCH_POSTGRES_URL=postgres://...` (an empty database) the
//! same history is also written to a PostgreSQL store and `load_events` of every
//! repository timed from both stores (`DORA_REPORT_BENCH_POSTGRES_ONLY=1` skips
//! the report and backfill figures).
//!
//! `DORA_REPORT_BENCH_LEAD_TIME_START=pr_first_commit` (or `pr_merged`) sets
//! that `lead_time_start` and gives every deployment's changes a merged pull
//! request (opened a quarter of the way from its first commit to its merge,
//! first reviewed half-way, every third one unreviewed), so that the report and
//! the backfill include the lead-time stages (`dora_*lead_time_stage_seconds`).

use dora_collector::config::Config;
use dora_collector::domain::*;
use dora_collector::dora::EngineConfig;
use dora_collector::dora::EventsBuilder;
use dora_collector::report::{self, Format, ReportRequest, ReportWindow};
use dora_collector::store::{
    PostgresStore, PostgresUrl, SqliteStore, Store, SyncBatch, SyncOutcome,
};
use std::time::Instant;
use store_history::{batch, repo_name, DAY, NOW};

#[path = "support/store_history.rs"]
mod store_history;

const REPOSITORIES: u64 = 1_000;
const DEFAULT_DEPLOYMENTS_PER_REPO: u64 = 100;
const TEAMS: u64 = 20;
/// Timed runs of the whole report.
const RUNS: usize = 5;

/// The `lead_time_start` to measure under (`DORA_REPORT_BENCH_LEAD_TIME_START`),
/// when not the default `commit`.
fn pull_request_start() -> Option<String> {
    std::env::var("DORA_REPORT_BENCH_LEAD_TIME_START")
        .ok()
        .filter(|start| start != "commit")
}

fn config(store: &std::path::Path) -> Config {
    let mut text = format!(
        "[storage]\npath = \"{}\"\n[github]\ntoken = \"unused\"\n",
        store.display()
    );
    if let Some(start) = pull_request_start() {
        text.push_str(&format!("lead_time_start = \"{start}\"\n"));
    }
    for r in 0..REPOSITORIES {
        text.push_str(&format!(
            "[[github.repositories]]\nname = \"{}\"\nteam = \"team-{}\"\n",
            repo_name(r),
            r % TEAMS
        ));
    }
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).expect("valid")
}

/// One merged pull request per deployment of `batch`, bringing the changes
/// that deployment ships (the history's commits in order, ten a deployment):
/// its first commit the earliest author date, merged just before the
/// deployment, opened a quarter of the way and first reviewed half-way from
/// the first commit to the merge (every third one unreviewed).
fn with_pull_requests(batch: &mut SyncBatch) {
    let per = store_history::CHANGES_PER_DEPLOYMENT as usize;
    for (d, deployment) in batch.deployments.iter().enumerate() {
        let Some(changes) = batch.commits.get(d * per..(d + 1) * per) else {
            break;
        };
        let first = changes.iter().map(|c| c.author_date.0).min().unwrap();
        let merged = deployment.created_at.0 - 600;
        let span = (merged - first).max(0);
        batch.pull_requests.push(PullRequest {
            repository: batch.repository.clone(),
            number: d as u64 + 1,
            merged_at: Some(Timestamp(merged)),
            merge_commit_sha: Some(changes[per - 1].sha),
            labels: vec![],
            commits: changes.iter().map(|c| c.sha).collect(),
            first_commit_at: Some(Timestamp(first)),
            created_at: Some(Timestamp(first + span / 4)),
            first_review_at: (d % 3 != 0).then_some(Timestamp(first + span / 2)),
        });
    }
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
            let mut batch = batch(r, per_repo, &mut rng);
            if pull_request_start().is_some() {
                with_pull_requests(&mut batch);
            }
            store.apply(&batch).expect("apply");
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
