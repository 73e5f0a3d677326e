//! The cost of syncing a simulated organisation of 50 repositories with 90 days of
//! history: time until `/readyz` answers 200 (the first full sync, the engine and
//! the first publish), the API requests of that first sync by endpoint and status,
//! and the same for an idle second sync and the steady state after it.
//!
//! Everything runs on 127.0.0.1 (the simulator, the daemon, a temporary SQLite
//! file), so the times measure the collector and the simulator, not GitHub's
//! latency; the request counts are what GitHub would see. The simulator's rate
//! limit is lifted so that the first sync is not cut short (see the printed total
//! against GitHub's 5000 requests an hour), and so is the collector's pace under
//! GitHub's secondary per-minute points (`RetryPolicy::github_secondary_pace`:
//! on GitHub the first sync's 900 REST / 2,000 GraphQL requests a minute bound
//! its time at the loopback's speed; `benches/organisation.rs` measures that).
//!
//! Deployments are read the default way (`github.api = "graphql"`);
//! `DORA_SYNC_BENCH_API=rest` measures the REST path instead.
//!
//! Run with `cargo bench --bench sync` (harness = false: prints a report).

use dora_collector::daemon::{self, demo, DaemonHandle, ManualClock, RunOptions};
use dora_collector::dora::EventsBuilder;
use dora_collector::sim::{Org, OrgSpec, RequestCounts, SimOptions, SimServer};
use dora_collector::sources::github::RetryPolicy;
use dora_collector::store::{SqliteStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Repositories in the benchmark organisation.
const REPOSITORIES: usize = 50;
/// Days of history (the lookback is 90 days, so the first sync reads all of it
/// plus one base deployment per repository where one exists).
const DAYS: u32 = 90;
/// GitHub's primary rate limit for a token, per hour, for comparison.
const GITHUB_HOURLY_BUDGET: u64 = 5000;

fn print_counts(title: &str, counts: &RequestCounts, elapsed: Duration) {
    println!("\n{title}: {} requests in {:.2?}", counts.total, elapsed);
    println!("  {:>6}  {:>6}  route", "count", "status");
    for ((route, status), count) in &counts.by_route_status {
        println!("  {count:>6}  {status:>6}  {route}");
    }
}

async fn cycle(handle: &mut DaemonHandle, n: u64) -> Duration {
    let start = Instant::now();
    handle.sync_now();
    let report = handle
        .wait_for_cycles(n)
        .await
        .expect("the cycle completes");
    let elapsed = start.elapsed();
    assert_eq!(report.failures().count(), 0, "{report:?}");
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let spec = OrgSpec {
            repositories: REPOSITORIES,
            days: DAYS,
            ..OrgSpec::default()
        };
        let generate = Instant::now();
        let org = Org::generate(&spec);
        let stats = org.stats();
        println!(
            "organisation: {} repositories ({} on workflow runs), {} commits, {} deployments \
             ({} statuses), {} workflow runs, {} issues, {} pull requests; generated in {:.2?}",
            stats.repositories,
            spec.workflow_run_repositories,
            stats.commits,
            stats.deployments,
            stats.deployment_statuses,
            stats.workflow_runs,
            stats.issues,
            stats.pull_requests,
            generate.elapsed()
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = dir.path().join("bench.db");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let options = SimOptions {
            rate_limit: u64::MAX / 2,
            ..SimOptions::default()
        };
        let config_org = org.clone();
        let sim = SimServer::start(org, options).await.expect("simulator");
        let mut config =
            demo::demo_config(&config_org, sim.base_url(), addr, &store).expect("configuration");
        if std::env::var("DORA_SYNC_BENCH_API").as_deref() == Ok("rest") {
            config.github.as_mut().expect("[github]").api = dora_collector::config::GithubApi::Rest;
        }
        println!(
            "deployments read through: {:?}",
            config.github.as_ref().expect("[github]").api
        );
        let config_for_engine = config.clone();
        drop(config_org);
        let run = RunOptions {
            clock: Arc::new(ManualClock::new(spec.now)),
            simulated: true,
            // GitHub's secondary pace lifted with the simulator's limits: the times
            // measure the collector and the simulator, as before the pace.
            retry: RetryPolicy {
                github_secondary_pace: None,
                ..RetryPolicy::default()
            },
            ..RunOptions::default()
        };

        let start = Instant::now();
        let mut handle = daemon::start(config, listener, run).await.expect("daemon");
        let report = handle.wait_for_cycles(1).await.expect("first cycle");
        let to_ready = start.elapsed();
        assert!(handle.exporter().readiness().is_ready());
        assert_eq!(report.failures().count(), 0, "{report:?}");
        let first = sim.request_counts();
        let total = report.total();
        println!(
            "\ntime to ready (first sync of every repository, compute, publish): {to_ready:.2?}"
        );
        println!(
            "first sync wrote {} rows ({} deployments, {} commits, {} compares, {} incidents, \
             {} pull requests); {} items skipped",
            total.applied.total().written(),
            total.applied.deployments.written(),
            total.applied.commits.written(),
            total.applied.compares.written(),
            total.applied.incidents.written(),
            total.applied.pull_requests.written(),
            total.skipped_items
        );
        print_counts("first sync", &first, to_ready);
        println!("  GraphQL points: {}", sim.graphql_points_used());
        println!(
            "  = {:.1} hours of GitHub's {GITHUB_HOURLY_BUDGET}-an-hour budget",
            first.total as f64 / GITHUB_HOURLY_BUDGET as f64
        );

        sim.reset_counts();
        let points = sim.graphql_points_used();
        let second = cycle(&mut handle, 2).await;
        print_counts("idle second sync", &sim.request_counts(), second);
        println!("  GraphQL points: {}", sim.graphql_points_used() - points);
        sim.reset_counts();
        let points = sim.graphql_points_used();
        let third = cycle(&mut handle, 3).await;
        print_counts("steady state (third sync)", &sim.request_counts(), third);
        println!("  GraphQL points: {}", sim.graphql_points_used() - points);
        // Where an idle cycle's time goes: the simulator renders a full first page
        // (and hashes it for the ETag) even when it answers 304.
        let client = reqwest::Client::new();
        let pulls = format!(
            "{}/repos/{}/pulls?state=closed&sort=updated&direction=desc&per_page=100",
            sim.base_url(),
            spec.owner
        );
        let first_repo = sim.with_org(|org| org.repos[0].name.clone());
        let pulls = pulls.replace(
            &format!("/repos/{}/pulls", spec.owner),
            &format!("/repos/{}/{first_repo}/pulls", spec.owner),
        );
        const SAMPLES: u32 = 10;
        let timer = Instant::now();
        for _ in 0..SAMPLES {
            let response = client
                .get(&pulls)
                .bearer_auth(sim.token())
                .send()
                .await
                .expect("simulator answers");
            let _ = response.bytes().await;
        }
        println!(
            "  the simulator's own time for one first page of 100 pull requests: {:.2?}",
            timer.elapsed() / SAMPLES
        );
        let rate = sim.rate_limit();
        println!(
            "  rate-limit units spent over the three syncs: {} (304 answers are free)",
            rate.used
        );

        handle.shutdown().await.expect("shutdown");
        let opened = SqliteStore::open(&store).expect("store");
        let counts = opened.counts().expect("counts");
        // What a publish costs on top of the sync (every cycle does one).
        let repositories = opened.repositories().expect("repositories");
        let engine = dora_collector::config::Config::engine_config(&config_for_engine);
        let publish = Instant::now();
        let events =
            EventsBuilder::collect(|sink| opened.load_events(&repositories, sink)).expect("events");
        let loaded = publish.elapsed();
        let snapshot = dora_collector::dora::compute(&events, &engine, spec.now);
        let computed = publish.elapsed() - loaded;
        drop(snapshot);
        println!(
            "\neach publish: load_events {loaded:.2?} + compute {computed:.2?} (part of every \
             cycle's time above)"
        );
        let size = std::fs::metadata(&store).map(|m| m.len()).unwrap_or(0);
        println!(
            "\nstore: {} deployments, {} commits, {} compares, {} incidents, {} pull requests, \
             {} cursors; {:.1} MiB",
            counts.deployments,
            counts.commits,
            counts.compares,
            counts.incidents,
            counts.pull_requests,
            counts.cursors,
            size as f64 / (1024.0 * 1024.0)
        );
        let _ = sim.shutdown().await;
    });
}
