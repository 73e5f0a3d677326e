//! `/metrics` under load while syncs run: the daemon serves a simulated
//! organisation and is asked to sync every [`SHIP_EVERY`]; [`CONNECTIONS`]
//! keep-alive connections on 127.0.0.1 request `/metrics` back to back for
//! [`LOAD_DURATION`], twice after a warm-up. During the warm-up every repository
//! also ships a deployment at each sync (new data, new snapshots); during the two
//! measured runs the syncs keep running (every repository read, conditional
//! requests, pending statuses, a new snapshot published) but the history stops
//! growing, so that memory growth between the runs can only come from serving or
//! syncing, not from a larger store and snapshot.
//!
//! It prints, per phase, the requests, the p50/p99/max latency, the errors, the
//! sync cycles completed meanwhile, and the process's memory (`VmRSS`, and the peak
//! `VmHWM`, from `/proc/self/status`) before the load, after the warm-up and after
//! each run. The second run must not grow the memory beyond
//! [`MEMORY_GROWTH_TOLERANCE`] of the first's: the benchmark fails (exit status 1)
//! if it does.
//!
//! The memory is the whole process: the daemon, the simulator and the load
//! generator (whose latency histogram is allocated once, before the first
//! measurement). Everything shares the machine's cores, so latencies include
//! the simulator and the load generator competing with the daemon.
//!
//! Bounded: a fixed number of connections, a fixed duration per phase, and at
//! most [`MAX_REQUESTS`] requests per phase.
//!
//! Run with `cargo bench --bench metrics_load` (harness = false: prints a report).

use dora_collector::daemon::{self, demo, DaemonHandle, ManualClock, RunOptions};
use dora_collector::sim::{Org, OrgSpec, SimHandle, SimOptions, SimServer};
use dora_collector::sources::github::RetryPolicy;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Concurrent keep-alive connections to `/metrics` (the load).
const CONNECTIONS: usize = 200;
/// How long each measured run lasts.
const LOAD_DURATION: Duration = Duration::from_secs(30);
/// How long the warm-up lasts (connections opened, allocator and caches settled).
const WARM_UP: Duration = Duration::from_secs(5);
/// The most requests one phase sends, whatever the speed.
const MAX_REQUESTS: u64 = 10_000_000;
/// How often every repository ships a new deployment and a sync is requested.
const SHIP_EVERY: Duration = Duration::from_secs(2);
/// Simulated seconds the clock moves on at every ship.
const SIMULATED_STEP_SECONDS: i64 = 600;
/// Lead time of the shipped changes (seconds from commit to deploy).
const SHIPPED_LEAD_SECONDS: i64 = 3_600;
/// Repositories and days of the organisation: the demo's defaults.
const REPOSITORIES: usize = demo::DEFAULT_REPOSITORIES;
const DAYS: u32 = demo::DEFAULT_DAYS;
/// The latency histogram's resolution and range: 10 µs buckets up to 10 s
/// (slower requests land in the last bucket; the maximum is kept exactly).
const BUCKET_MICROS: u64 = 10;
const BUCKETS: usize = 1_000_000;
/// The most the second run may grow the resident memory over the first's.
const MEMORY_GROWTH_TOLERANCE: f64 = 0.05;
/// Bounds one request, so that a stuck daemon shows as errors, not a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn print_memory(when: &str) -> u64 {
    let (rss, hwm) = memory();
    println!(
        "memory {when}: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    rss
}

/// Latencies of one phase: a fixed histogram, requests, errors, the maximum.
struct Stats {
    buckets: Vec<AtomicU64>,
    requests: AtomicU64,
    errors: AtomicU64,
    max_micros: AtomicU64,
}

impl Stats {
    fn new() -> Self {
        Stats {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
        }
    }

    fn reset(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
        self.requests.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.max_micros.store(0, Ordering::Relaxed);
    }

    fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = usize::try_from(micros / BUCKET_MICROS)
            .unwrap_or(BUCKETS - 1)
            .min(BUCKETS - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// The upper bound of the bucket holding quantile `q`, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
        if total == 0 {
            return f64::NAN;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return ((index as u64 + 1) * BUCKET_MICROS) as f64 / 1000.0;
            }
        }
        f64::NAN
    }
}

/// One phase: `CONNECTIONS` clients, each on its own keep-alive connection,
/// requesting `url` back to back until `duration` has passed.
async fn load(url: &str, duration: Duration, stats: &Arc<Stats>) -> Duration {
    stats.reset();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let url = url.to_owned();
        let stats = Arc::clone(stats);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1)
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("client");
            while Instant::now() < deadline {
                if stats.requests.fetch_add(1, Ordering::Relaxed) >= MAX_REQUESTS {
                    break;
                }
                let sent = Instant::now();
                let ok = match client.get(&url).send().await {
                    Ok(response) if response.status() == 200 => response.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    stats.record(sent.elapsed());
                } else {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    start.elapsed()
}

fn report(title: &str, stats: &Stats, elapsed: Duration, cycles: u64) {
    let requests = stats.requests.load(Ordering::Relaxed).min(MAX_REQUESTS);
    println!(
        "\n{title}: {requests} requests in {elapsed:.1?} ({:.0}/s) over {CONNECTIONS} \
         connections, {} errors, {cycles} sync cycles completed meanwhile",
        requests as f64 / elapsed.as_secs_f64(),
        stats.errors.load(Ordering::Relaxed),
    );
    println!(
        "  latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        stats.quantile_ms(0.5),
        stats.quantile_ms(0.99),
        stats.max_micros.load(Ordering::Relaxed) as f64 / 1000.0
    );
}

/// Every `SHIP_EVERY`: the clock moved on, one deployment shipped in every
/// repository while `ship` is set, a sync requested. Stops when `stop` is cancelled.
async fn keep_syncing(
    sim: Arc<SimHandle>,
    clock: Arc<ManualClock>,
    trigger: Arc<DaemonHandle>,
    ship: Arc<std::sync::atomic::AtomicBool>,
    stop: tokio_util::sync::CancellationToken,
) {
    use dora_collector::daemon::Clock;
    let mut ticks = tokio::time::interval(SHIP_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        clock.advance(SIMULATED_STEP_SECONDS);
        if ship.load(Ordering::Relaxed) {
            let at = clock.now();
            sim.with_org_mut(|org| org.ship_everywhere(at, SHIPPED_LEAD_SECONDS));
        }
        trigger.sync_now();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let grew = runtime.block_on(async {
        let spec = OrgSpec {
            repositories: REPOSITORIES,
            days: DAYS,
            ..OrgSpec::default()
        };
        let org = Org::generate(&spec);
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
        let sim = Arc::new(SimServer::start(org, options).await.expect("simulator"));
        let config =
            demo::demo_config(&config_org, sim.base_url(), addr, &store).expect("configuration");
        drop(config_org);
        let clock = Arc::new(ManualClock::new(spec.now));
        let run = RunOptions {
            clock: clock.clone(),
            simulated: true,
            retry: RetryPolicy::default(),
            ..RunOptions::default()
        };
        let mut handle = daemon::start(config, listener, run).await.expect("daemon");
        let first = handle.wait_for_cycles(1).await.expect("first cycle");
        assert_eq!(first.failures().count(), 0, "{first:?}");
        let url = format!("http://{addr}/metrics");
        let page = reqwest::get(&url)
            .await
            .expect("scrape")
            .bytes()
            .await
            .expect("page");
        println!(
            "organisation: {REPOSITORIES} repositories, {DAYS} days; /metrics is {:.1} KiB; \
             a sync is requested every {SHIP_EVERY:?} (each repository also ships a deployment \
             then during the warm-up)",
            page.len() as f64 / 1024.0
        );
        let stats = Arc::new(Stats::new());
        print_memory("ready, before load");

        let stop = tokio_util::sync::CancellationToken::new();
        let cycles = |h: &DaemonHandle| h.cycles().completed;
        let start_cycles = cycles(&handle);
        let handle = Arc::new(handle);
        let ship = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let syncing = tokio::spawn(keep_syncing(
            Arc::clone(&sim),
            clock.clone(),
            Arc::clone(&handle),
            Arc::clone(&ship),
            stop.clone(),
        ));

        let elapsed = load(&url, WARM_UP, &stats).await;
        ship.store(false, Ordering::Relaxed);
        let after_warm_up = cycles(&handle);
        report("warm-up", &stats, elapsed, after_warm_up - start_cycles);
        print_memory("after warm-up");

        let elapsed = load(&url, LOAD_DURATION, &stats).await;
        let after_first = cycles(&handle);
        report("run 1", &stats, elapsed, after_first - after_warm_up);
        let first_rss = print_memory("after run 1");
        assert_eq!(stats.errors.load(Ordering::Relaxed), 0, "run 1 had errors");
        assert!(
            after_first > after_warm_up,
            "no sync completed during run 1"
        );

        let elapsed = load(&url, LOAD_DURATION, &stats).await;
        let after_second = cycles(&handle);
        report("run 2", &stats, elapsed, after_second - after_first);
        let second_rss = print_memory("after run 2");
        assert_eq!(stats.errors.load(Ordering::Relaxed), 0, "run 2 had errors");
        assert!(after_second > after_first, "no sync completed during run 2");

        stop.cancel();
        syncing.await.expect("sync driver");
        let growth = second_rss as f64 / first_rss as f64 - 1.0;
        println!(
            "\nrun 2 against run 1: VmRSS {:+.1} MiB ({:+.1}%); tolerance {:.0}%",
            (second_rss as f64 - first_rss as f64) / 1024.0,
            growth * 100.0,
            MEMORY_GROWTH_TOLERANCE * 100.0
        );
        let handle = Arc::try_unwrap(handle).ok().expect("the only handle left");
        handle.shutdown().await.expect("shutdown");
        growth > MEMORY_GROWTH_TOLERANCE
    });
    if grew {
        eprintln!("the second run grew the memory beyond the tolerance");
        std::process::exit(1);
    }
    println!("memory did not grow between the two runs");
}
