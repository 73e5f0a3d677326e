//! Issue 15's figures: a simulated organisation (default [`DEFAULT_REPOSITORIES`]
//! repositories × [`DAYS`] days) read through GitHub App authentication and
//! discovery (`[[github.organizations]]`), by the daemon on 127.0.0.1, under
//! GitHub's rate limits for that installation.
//!
//! The limits (`DORA_ORG_BENCH_LIMITS=github`, the default) are the simulator's
//! reading of GitHub's documentation: the installation's REST and GraphQL
//! budgets by GitHub's rule (5,000 an hour plus 50 per repository beyond 20, at
//! most 12,500: 12,500 REST requests and 12,500 GraphQL points an hour for 1,000
//! repositories), and the secondary limits from load (900 REST points and 2,000
//! GraphQL points per minute, 100 concurrent requests; `403` with `retry-after`
//! over them). The collector paces the installation under the same per-minute
//! points (its production `SecondaryPace::GITHUB`, on the part's clock).
//! `DORA_ORG_BENCH_LIMITS=none` lifts every limit, the collector's pace
//! included (what the collector and the simulator do with no limit at all).
//!
//! Two parts, each with a simulator and a daemon of its own:
//!
//! 1. **First sync and idle cycle** (`sync`), with a simulated hour of
//!    `DORA_ORG_BENCH_HOUR` real seconds (default 3,600: real time). Every clock
//!    of the limits is scaled with it (budgets per hour, the secondary limits'
//!    minute and `retry-after`, tokens' life, the collector's pace), so the
//!    default measures in real time. Printed: the time until every repository's 7-day window is on
//!    `/metrics`, its 30-day window, and `/readyz` 200 (polled every [`POLL`]);
//!    the first sync's REST points (requests not answered `304`, the App's own
//!    included) and GraphQL points against the lower bound (⌈items/100⌉ per list
//!    and repository: deployments, commits, incident issues, pull requests);
//!    what the limits did (budgets spent, requests refused, requests sent into a
//!    spent budget, the collector's waits and retries); then an idle cycle,
//!    discovery included: REST points beyond free `304`s (target 0) and GraphQL
//!    points per 50 repositories (target ≤ 1).
//! 2. **Token renewal** (`renewal`): installation tokens that live
//!    `DORA_ORG_BENCH_RENEWAL_HOUR` real seconds (default
//!    [`DEFAULT_RENEWAL_HOUR_SECONDS`]: one simulated hour, the limits scaled
//!    the same way), a first sync under them, then `DORA_ORG_BENCH_RUN_HOURS`
//!    simulated hours (default 3) of back-to-back cycles: tokens minted,
//!    requests refused for an expired token (target 0), answers 401, failed
//!    repository syncs (target 0), requests refused by the limits.
//!
//! `DORA_ORG_BENCH_REPOS=N` sizes the organisation, `DORA_ORG_BENCH_PARTS`
//! picks the parts (`sync`, `renewal`, or both, comma-separated: the default).
//! Everything runs on one machine with a loopback's latency (under a
//! millisecond, against GitHub's tens to hundreds): the times measure the
//! collector, the simulator, the limits and how loaded the machine is (its load
//! average is printed), not GitHub's latency.
//!
//! Run with `cargo bench --bench organisation` (harness = false: prints a report).
//!
//! Measured 2026-12-07, release build, 2-core machine shared with other builds
//! (docs/github-app.md, "Figures"): 1,000 repositories × 90 days under GitHub's
//! limits in real time, the collector pacing the installation (load 2.8 → 3.6):
//! every repository's 7-day and 30-day windows and `/readyz` after **253.7 s**
//! (7-day target 5 min: met by 46 s), 3,012 REST + 9,247 GraphQL points (0.80 ×
//! the lower bound), 0 requests into a spent primary budget, **0 refused by the
//! secondary limits** (at most 2,000 GraphQL and 651 REST points in a minute;
//! 198 s held back by the pace). Before the pacing: 319.6 s, 4 queries refused
//! and 256 s waited for `retry-after`; without limits the same sync takes 62 s.
//! Idle cycle: 124.9 s, 0 REST points beyond 2,010 `304`s (paced at 900 a
//! minute, 0 refused), 0.50 GraphQL points per 50 repositories. Renewal (tokens
//! living 60 s, clocks 60× faster, load 1.8 → 3.1): first sync 51.9 s, then 3
//! simulated hours (193.9 s, 7 cycles): 4 tokens minted, 0 requests refused for
//! an expired token, 0 answers 401, 0 failed syncs, 0 refused by the limits.

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::sim::{
    InstallationBudgets, Org, OrgSpec, SecondaryLimits, SimApp, SimHandle, SimInstallation,
    SimOptions, SimServer, DEFAULT_RATE_LIMIT,
};
use dora_collector::sources::github::{RetryPolicy, SecondaryPace};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Repositories in the issue's organisation.
const DEFAULT_REPOSITORIES: usize = 1000;
/// Days of history (the lookback is 90 days).
const DAYS: u32 = 90;
/// Real seconds a simulated hour lasts in the first part: a real hour.
const DEFAULT_HOUR_SECONDS: u64 = 3600;
/// Real seconds a simulated hour (an installation token's life) lasts in the
/// renewal run.
const DEFAULT_RENEWAL_HOUR_SECONDS: u64 = 60;
/// Simulated hours of the token-renewal run (the issue's three).
const DEFAULT_RUN_HOURS: u64 = 3;
/// GitHub's hour.
const HOUR: Duration = Duration::from_secs(3600);
/// How often `/metrics` and `/readyz` are looked at while the first sync runs.
const POLL: Duration = Duration::from_millis(500);
/// How often the first sync's progress is printed.
const PROGRESS: Duration = Duration::from_secs(30);
/// Items per page: GitHub's maximum.
const PAGE: usize = 100;
/// The App's id and its installation's.
const APP_ID: u64 = 77;
const INSTALLATION: u64 = 5001;
/// With `DORA_ORG_BENCH_LIMITS=none`: budgets that do not run out (GraphQL's
/// fits a 32-bit `Int`).
const UNLIMITED_REST: u64 = u64::MAX / 2;
const UNLIMITED_GRAPHQL: u64 = 2_000_000_000;
/// Idle cycles tried for one that no token renewal falls in.
const MAX_IDLE_CYCLES: usize = 5;
/// The route template of GraphQL queries in the simulator's counts.
const GRAPHQL_ROUTE: &str = "POST /graphql";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The machine's load average now.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The repositories with a series of `window` on `page`.
fn with_window(page: &str, window: &str) -> BTreeSet<String> {
    let label = format!("window=\"{window}\"");
    page.lines()
        .filter(|l| l.starts_with("dora_") && !l.starts_with("dora_collector_"))
        .filter(|l| l.contains(&label))
        .filter_map(|l| {
            let start = l.find("repository=\"")? + "repository=\"".len();
            let end = start + l[start..].find('"')?;
            Some(l[start..end].to_owned())
        })
        .collect()
}

/// The sum of the samples of `metric` on `page` whose labels contain `label`.
fn sample_sum(page: &str, metric: &str, label: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with('{'))
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn get(client: &reqwest::Client, handle: &DaemonHandle, path: &str) -> (u16, String) {
    let response = client
        .get(format!("http://{}{path}", handle.local_addr()))
        .send()
        .await
        .expect("the daemon answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// REST points (requests not answered 304, GraphQL left out) and GraphQL points
/// since the simulator's counts were last reset.
fn points(sim: &SimHandle) -> (u64, u64) {
    let counts = sim.request_counts();
    let rest = counts
        .by_route_status
        .iter()
        .filter(|((route, status), _)| *route != GRAPHQL_ROUTE && *status != 304)
        .map(|(_, n)| n)
        .sum();
    (rest, sim.graphql_points_used())
}

/// Which limits the simulator applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limits {
    /// GitHub's, for this installation.
    Github,
    /// None that runs out.
    Unlimited,
}

/// One part of the bench: how long its simulated hour lasts, under which limits.
#[derive(Debug, Clone, Copy)]
struct Part {
    hour: Duration,
    limits: Limits,
}

impl Part {
    /// How many times faster than real time the part's clock runs.
    fn speed(&self) -> f64 {
        HOUR.as_secs_f64() / self.hour.as_secs_f64()
    }

    /// The collector's secondary pace: GitHub's, on the part's clock (none
    /// without limits).
    fn pace(&self) -> Option<SecondaryPace> {
        match self.limits {
            Limits::Github => Some(SecondaryPace::GITHUB.scaled(self.speed())),
            Limits::Unlimited => None,
        }
    }

    fn options(&self, public_key_pem: String, owner: String) -> SimOptions {
        let app = Some(SimApp {
            id: APP_ID,
            public_key_pem,
            token_lifetime: self.hour,
            installations: vec![SimInstallation {
                id: INSTALLATION,
                account: owner,
            }],
        });
        match self.limits {
            Limits::Github => SimOptions {
                // The App's own requests (its JWT): a user's 5,000 an hour.
                rate_limit: DEFAULT_RATE_LIMIT,
                rate_limit_window: self.hour,
                installation_budgets: InstallationBudgets::Github,
                secondary_limits: Some(SecondaryLimits::scaled(self.speed())),
                app,
                ..SimOptions::default()
            },
            Limits::Unlimited => SimOptions {
                rate_limit: UNLIMITED_REST,
                graphql_rate_limit: UNLIMITED_GRAPHQL,
                app,
                ..SimOptions::default()
            },
        }
    }
}

/// A simulator and a daemon reading it.
struct Running {
    sim: SimHandle,
    daemon: DaemonHandle,
    _dir: tempfile::TempDir,
}

async fn start(org: Org, part: Part, keys: &(String, String)) -> Running {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = dir.path().join("app.pem");
    std::fs::write(&key, &keys.0).expect("key file");
    let now = org.now;
    let owner = org.owner.clone();
    let options = part.options(keys.1.clone(), owner.clone());
    let sim = SimServer::start(org, options).await.expect("simulator");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[github]\napi_url = \
         {:?}\napp_id = {APP_ID}\nprivate_key_path = {:?}\nlookback = \"{DAYS}d\"\n\n\
         [[github.organizations]]\nname = {owner:?}\n",
        dir.path().join("bench.db").display().to_string(),
        sim.base_url(),
        key.display().to_string(),
    );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let run = RunOptions {
        clock: Arc::new(ManualClock::new(now)),
        retry: RetryPolicy {
            github_secondary_pace: part.pace(),
            ..RetryPolicy::default()
        },
        ..RunOptions::default()
    };
    let daemon = daemon::start(config, listener, run).await.expect("daemon");
    Running {
        sim,
        daemon,
        _dir: dir,
    }
}

/// What the first sync took.
struct FirstSync {
    first_7d: Duration,
    seven: Duration,
    thirty: Duration,
    ready: Duration,
    cycle: Duration,
}

/// Waits for the first cycle, watching `/metrics` and `/readyz`.
async fn first_sync(
    running: &mut Running,
    client: &reqwest::Client,
    repositories: usize,
) -> FirstSync {
    let start = Instant::now();
    let (mut seven, mut thirty, mut ready) = (None, None, None);
    let mut first_7d = None;
    let mut progress = start;
    let handle = &running.daemon;
    while ready.is_none() || seven.is_none() || thirty.is_none() {
        tokio::time::sleep(POLL).await;
        let (_, page) = get(client, handle, "/metrics").await;
        let (status, _) = get(client, handle, "/readyz").await;
        let week = with_window(&page, "7d").len();
        if week > 0 && first_7d.is_none() {
            first_7d = Some(start.elapsed());
        }
        if seven.is_none() && week == repositories {
            seven = Some(start.elapsed());
        }
        if thirty.is_none() && with_window(&page, "30d").len() == repositories {
            thirty = Some(start.elapsed());
        }
        if ready.is_none() && status == 200 {
            ready = Some(start.elapsed());
        }
        if progress.elapsed() >= PROGRESS {
            progress = Instant::now();
            let (rest, graphql) = points(&running.sim);
            let refused = running.sim.secondary_counts().refused();
            println!(
                "  {:>6.0?}: {week:>4} repositories' 7-day windows; {rest} REST + {graphql} \
                 GraphQL points; {refused} requests refused by the secondary limits; load {}",
                start.elapsed(),
                load()
            );
        }
        // A cycle ended with windows missing: some repository failed.
        if handle.cycles().completed > 0 && (seven.is_none() || thirty.is_none()) {
            if let Some(report) = handle.cycles().last {
                let failures: Vec<_> = report.failures().take(5).collect();
                assert!(failures.is_empty(), "{failures:?}");
            }
        }
    }
    let report = running
        .daemon
        .wait_for_cycles(1)
        .await
        .expect("the first cycle");
    let cycle = start.elapsed();
    assert_eq!(
        report.failures().count(),
        0,
        "{:?}",
        report.failures().take(5).collect::<Vec<_>>()
    );
    FirstSync {
        first_7d: first_7d.unwrap_or_default(),
        seven: seven.unwrap_or_default(),
        thirty: thirty.unwrap_or_default(),
        ready: ready.unwrap_or_default(),
        cycle,
    }
}

/// What the limits did since the simulator started (budgets) or its counts were
/// last reset (the rest), and what the collector says it waited and retried.
async fn print_limits(running: &Running, limits: Limits, client: &reqwest::Client) {
    let sim = &running.sim;
    let secondary = sim.secondary_counts();
    if let Some(rest) = sim.installation_rate_limit(INSTALLATION) {
        println!(
            "  installation's REST budget: {} an hour, {} used in the window now, {} requests \
             sent into a spent budget",
            rest.limit, rest.used, rest.violations
        );
    }
    if let Some(graphql) = sim.installation_graphql_rate_limit(INSTALLATION) {
        println!(
            "  installation's GraphQL budget: {} points an hour, {} used in the window now, {} \
             queries sent into a spent budget",
            graphql.limit, graphql.used, graphql.violations
        );
    }
    if limits == Limits::Github {
        println!(
            "  secondary limits: refused for the minute's points {} REST + {} GraphQL, for \
             concurrency {}; {} sent while limited (before retry-after); peak load per minute \
             {} REST + {} GraphQL points, {} in flight at once",
            secondary.rest_per_minute,
            secondary.graphql_per_minute,
            secondary.concurrent,
            secondary.violations,
            secondary.peak_rest_per_minute,
            secondary.peak_graphql_per_minute,
            secondary.peak_concurrent
        );
    }
    let (_, page) = get(client, &running.daemon, "/metrics").await;
    let retries = "dora_collector_api_retries_total";
    println!(
        "  the collector: {:.0} s held back by rate limits (summed over requests), {:.0} \
         retries after a secondary limit, {:.0} after a spent primary budget",
        sample_sum(&page, "dora_collector_rate_limit_wait_seconds_total", ""),
        sample_sum(&page, retries, "reason=\"secondary_rate_limit\""),
        sample_sum(&page, retries, "reason=\"rate_limit\""),
    );
}

/// Part 1: the first sync and an idle cycle.
async fn sync_part(
    org: Org,
    part: Part,
    keys: &(String, String),
    repositories: usize,
    lower_bound: usize,
) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    println!(
        "\npart 1, first sync and idle cycle: a simulated hour lasts {:?} ({}x real time), \
         limits {:?}; load when started {}",
        part.hour,
        part.speed(),
        part.limits,
        load()
    );
    let mut running = start(org, part, keys).await;
    let first = first_sync(&mut running, &client, repositories).await;
    let sim = &running.sim;
    let (rest, graphql) = points(sim);
    let counts = sim.request_counts();
    println!("first sync (load when it ended {}):", load());
    println!(
        "  first repository's 7-day window exported after {:.1?}",
        first.first_7d
    );
    println!(
        "  every repository's 7-day window exported after {:.1?} (target ≤ 5 min)",
        first.seven
    );
    println!(
        "  every repository's 30-day window exported after {:.1?} (target ≤ 30 min)",
        first.thirty
    );
    println!(
        "  /readyz 200 after {:.1?}; the first cycle ended after {:.1?}",
        first.ready, first.cycle
    );
    println!(
        "  {rest} REST points + {graphql} GraphQL points = {} points = {:.2} × the lower \
         bound ({lower_bound} pages); {} requests ({} GraphQL queries, {} answered 304)",
        rest + graphql,
        (rest + graphql) as f64 / lower_bound as f64,
        counts.total,
        counts
            .by_route_status
            .iter()
            .filter(|((route, _), _)| *route == GRAPHQL_ROUTE)
            .map(|(_, n)| n)
            .sum::<u64>(),
        counts.status(304)
    );
    println!(
        "  installation tokens minted: {}; requests refused for an expired token: {}",
        sim.tokens_minted().values().sum::<u64>(),
        sim.expired_token_uses()
    );
    print_limits(&running, part.limits, &client).await;

    // Idle cycles, discovery included, until one runs within one token's
    // life (after a renewal GitHub's ETags, which belong to a token, are
    // read in full once: docs/github-app.md).
    let mut cycles = 1;
    for _ in 0..MAX_IDLE_CYCLES {
        let sim = &running.sim;
        sim.reset_counts();
        let minted_before: u64 = sim.tokens_minted().values().sum();
        let idle_start = Instant::now();
        cycles += 1;
        running.daemon.sync_now();
        let report = running
            .daemon
            .wait_for_cycles(cycles)
            .await
            .expect("an idle cycle");
        assert_eq!(report.failures().count(), 0);
        let idle_time = idle_start.elapsed();
        let renewed = sim.tokens_minted().values().sum::<u64>() - minted_before;
        let counts = sim.request_counts();
        let (rest, graphql) = points(sim);
        println!(
            "\nidle cycle {} (discovery included), {idle_time:.1?}, {renewed} token(s) minted \
             during it, load {}:",
            cycles - 1,
            load()
        );
        println!(
            "  {} requests, {} of them 304 (free); {rest} REST points beyond the 304s \
             (target 0); {graphql} GraphQL points = {:.2} per 50 repositories (target ≤ 1)",
            counts.total,
            counts.status(304),
            graphql as f64 * 50.0 / repositories as f64
        );
        for ((route, status), count) in &counts.by_route_status {
            if *status != 304 {
                println!("    {count:>6}  {status}  {route}");
            }
        }
        print_limits(&running, part.limits, &client).await;
        if renewed == 0 {
            break;
        }
    }
    running.daemon.shutdown().await.expect("shutdown");
    let _ = running.sim.shutdown().await;
}

/// Part 2: a first sync, then back-to-back cycles over `run_hours` simulated
/// hours, with tokens living one simulated hour.
async fn renewal_part(
    org: Org,
    part: Part,
    keys: &(String, String),
    repositories: usize,
    run_hours: u64,
) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    println!(
        "\npart 2, token renewal: installation tokens live {:?} (one simulated hour, {}x real \
         time, the limits' clocks scaled alike), limits {:?}; load when started {}",
        part.hour,
        part.speed(),
        part.limits,
        load()
    );
    let mut running = start(org, part, keys).await;
    let first = first_sync(&mut running, &client, repositories).await;
    let sim = &running.sim;
    println!(
        "first sync under short-lived tokens: /readyz after {:.1?}, every 7-day window after \
         {:.1?}; {} tokens minted, {} requests refused for an expired token, {} answers 401; \
         load {}",
        first.ready,
        first.seven,
        sim.tokens_minted().values().sum::<u64>(),
        sim.expired_token_uses(),
        sim.request_counts().status(401),
        load()
    );
    print_limits(&running, part.limits, &client).await;

    sim.reset_counts();
    let minted_before: u64 = sim.tokens_minted().values().sum();
    let expired_before = sim.expired_token_uses();
    let run_start = Instant::now();
    let mut cycles = 1;
    let mut failed = 0;
    while run_start.elapsed() < part.hour * u32::try_from(run_hours).unwrap_or(u32::MAX) {
        cycles += 1;
        running.daemon.sync_now();
        let report = running
            .daemon
            .wait_for_cycles(cycles)
            .await
            .expect("a cycle");
        failed += report.failures().count();
    }
    let minted: u64 = sim.tokens_minted().values().sum::<u64>() - minted_before;
    let expired = sim.expired_token_uses() - expired_before;
    let unauthorized = sim.request_counts().status(401);
    println!(
        "{run_hours} simulated hours ({:.1?}, {} cycles, load {}): {minted} installation \
         tokens minted, {expired} requests refused for an expired token, {unauthorized} \
         answers 401, {failed} failed repository syncs (targets: 0)",
        run_start.elapsed(),
        cycles - 1,
        load()
    );
    print_limits(&running, part.limits, &client).await;
    running.daemon.shutdown().await.expect("shutdown");
    let _ = running.sim.shutdown().await;
}

fn main() {
    let repositories: usize = env_or("DORA_ORG_BENCH_REPOS", DEFAULT_REPOSITORIES);
    let hour = Duration::from_secs(env_or("DORA_ORG_BENCH_HOUR", DEFAULT_HOUR_SECONDS).max(1));
    let renewal_hour = Duration::from_secs(
        env_or("DORA_ORG_BENCH_RENEWAL_HOUR", DEFAULT_RENEWAL_HOUR_SECONDS).max(1),
    );
    let run_hours: u64 = env_or("DORA_ORG_BENCH_RUN_HOURS", DEFAULT_RUN_HOURS);
    let limits = match std::env::var("DORA_ORG_BENCH_LIMITS").as_deref() {
        Ok("none") => Limits::Unlimited,
        Ok("github") | Err(_) => Limits::Github,
        Ok(other) => panic!("DORA_ORG_BENCH_LIMITS={other}: github or none"),
    };
    let parts = std::env::var("DORA_ORG_BENCH_PARTS").unwrap_or_else(|_| "sync,renewal".into());
    let parts: BTreeSet<&str> = parts.split(',').map(str::trim).collect();
    let spec = OrgSpec {
        repositories,
        days: DAYS,
        ..OrgSpec::default()
    };
    let generate = Instant::now();
    let org = Org::generate(&spec);
    let pages = |items: usize| items.div_ceil(PAGE);
    let lower_bound: usize = org
        .repos
        .iter()
        .map(|r| {
            pages(r.deployments.len())
                + pages(r.commits.len())
                + pages(r.issues.len())
                + pages(r.pulls.len())
        })
        .sum();
    // What discovery selects by default.
    let selected = org
        .repos
        .iter()
        .filter(|r| !r.archived && !r.fork && !r.empty)
        .count();
    assert_eq!(
        selected, repositories,
        "the generator made no archived, fork or empty one"
    );
    let stats = org.stats();
    println!(
        "organisation {}: {} repositories × {DAYS} days ({} on workflow runs): {} deployments, \
         {} commits, {} issues, {} pull requests; generated in {:.1?}; lower bound of a first \
         sync (each list read once, 100 a page): {lower_bound} pages",
        spec.owner,
        stats.repositories,
        spec.workflow_run_repositories,
        stats.deployments,
        stats.commits,
        stats.issues,
        stats.pull_requests,
        generate.elapsed()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let keys = dora_collector::sim::app_key_pair();
        if parts.contains("sync") {
            let part = Part { hour, limits };
            sync_part(org.clone(), part, &keys, repositories, lower_bound).await;
        }
        if parts.contains("renewal") && run_hours > 0 {
            let part = Part {
                hour: renewal_hour,
                limits,
            };
            renewal_part(org, part, &keys, repositories, run_hours).await;
        }
    });
}
