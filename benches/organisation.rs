//! Issue 15's figures: a simulated organisation (default [`DEFAULT_REPOSITORIES`]
//! repositories × [`DAYS`] days) read through GitHub App authentication and
//! discovery (`[[github.organizations]]`), by the daemon on 127.0.0.1.
//!
//! Printed:
//! - the time until every repository's 7-day window is on `/metrics`, its 30-day
//!   window, and `/readyz` 200 (the page is polled every [`POLL`]);
//! - the first sync's REST points (requests not answered `304`, the App's own
//!   included) and GraphQL points, against the lower bound (⌈items/100⌉ per list
//!   and repository: deployments, commits, incident issues, pull requests);
//! - an idle cycle, discovery included: REST points beyond free `304`s (target 0)
//!   and GraphQL points per 50 repositories (target ≤ 1);
//! - installation tokens that live [`DEFAULT_HOUR_SECONDS`] real seconds (one
//!   simulated hour) over a run of three simulated hours of back-to-back cycles:
//!   tokens minted, requests refused for an expired token (target 0), failed
//!   repository syncs (target 0). The first sync runs under the same short
//!   lives, so it spans several renewals too.
//!
//! `DORA_ORG_BENCH_REPOS=N` sizes the organisation; `DORA_ORG_BENCH_HOUR=S`
//! sets the seconds a simulated hour lasts (an idle cycle measures 0 REST
//! points only if it fits in one token's life), `DORA_ORG_BENCH_RUN_HOURS=H`
//! the length of the renewal run. Everything runs on one machine: the
//! times measure the collector and the simulator (and how loaded the machine
//! is), not GitHub's latency.
//!
//! Run with `cargo bench --bench organisation` (harness = false: prints a report).

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::sim::{Org, OrgSpec, SimApp, SimInstallation, SimOptions, SimServer};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Repositories in the issue's organisation.
const DEFAULT_REPOSITORIES: usize = 1000;
/// Days of history (the lookback is 90 days).
const DAYS: u32 = 90;
/// Real seconds a simulated hour (an installation token's life) lasts.
const DEFAULT_HOUR_SECONDS: u64 = 60;
/// Simulated hours of the token-renewal run (the issue's three).
const DEFAULT_RUN_HOURS: u64 = 3;
/// How often `/metrics` and `/readyz` are looked at while the first sync runs.
const POLL: Duration = Duration::from_millis(500);
/// Items per page: GitHub's maximum.
const PAGE: usize = 100;
/// The App's id and its installation's.
const APP_ID: u64 = 77;
const INSTALLATION: u64 = 5001;
/// Budgets that do not run out within the bench (GraphQL's fits a 32-bit `Int`).
const REST_BUDGET: u64 = u64::MAX / 2;
const GRAPHQL_BUDGET: u64 = 2_000_000_000;
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

/// The RSA key pair of the App: (PKCS#1 private PEM, SPKI public PEM).
fn key_pair() -> (String, String) {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a key pair");
    let private = key.to_pkcs1_pem(LineEnding::LF).expect("PEM").to_string();
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM");
    (private, public)
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
fn points(sim: &dora_collector::sim::SimHandle) -> (u64, u64) {
    let counts = sim.request_counts();
    let rest = counts
        .by_route_status
        .iter()
        .filter(|((route, status), _)| *route != GRAPHQL_ROUTE && *status != 304)
        .map(|(_, n)| n)
        .sum();
    (rest, sim.graphql_points_used())
}

fn main() {
    let repositories: usize = env_or("DORA_ORG_BENCH_REPOS", DEFAULT_REPOSITORIES);
    let hour = Duration::from_secs(env_or("DORA_ORG_BENCH_HOUR", DEFAULT_HOUR_SECONDS));
    let run_hours: u64 = env_or("DORA_ORG_BENCH_RUN_HOURS", DEFAULT_RUN_HOURS);
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
    println!(
        "installation tokens live {hour:?} (one simulated hour); the machine's load when \
         started: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (private, public) = key_pair();
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = dir.path().join("app.pem");
        std::fs::write(&key, private).expect("key file");
        let now = org.now;
        let owner = spec.owner.clone();
        let options = SimOptions {
            rate_limit: REST_BUDGET,
            graphql_rate_limit: GRAPHQL_BUDGET,
            app: Some(SimApp {
                id: APP_ID,
                public_key_pem: public,
                token_lifetime: hour,
                installations: vec![SimInstallation {
                    id: INSTALLATION,
                    account: owner.clone(),
                }],
            }),
            ..SimOptions::default()
        };
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
            ..RunOptions::default()
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");

        let start = Instant::now();
        let mut handle = daemon::start(config, listener, run).await.expect("daemon");
        let (mut seven, mut thirty, mut ready) = (None, None, None);
        let mut first_7d = None;
        while ready.is_none() || seven.is_none() || thirty.is_none() {
            tokio::time::sleep(POLL).await;
            let (_, page) = get(&client, &handle, "/metrics").await;
            let (status, _) = get(&client, &handle, "/readyz").await;
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
            // A cycle ended with windows missing: some repository failed.
            if handle.cycles().completed > 0 && (seven.is_none() || thirty.is_none()) {
                if let Some(report) = handle.cycles().last {
                    let failures: Vec<_> = report.failures().take(5).collect();
                    assert!(failures.is_empty(), "{failures:?}");
                }
            }
        }
        let report = handle.wait_for_cycles(1).await.expect("the first cycle");
        let first_cycle = start.elapsed();
        assert_eq!(
            report.failures().count(),
            0,
            "{:?}",
            report.failures().take(5).collect::<Vec<_>>()
        );
        let (rest, graphql) = points(&sim);
        let expired_first = sim.expired_token_uses();
        let minted_first: u64 = sim.tokens_minted().values().sum();
        println!("\nfirst sync:");
        println!(
            "  first repository's 7-day window exported after {:.1?}",
            first_7d.unwrap_or_default()
        );
        println!(
            "  every repository's 7-day window exported after {:.1?} (target ≤ 5 min)",
            seven.unwrap_or_default()
        );
        println!(
            "  every repository's 30-day window exported after {:.1?} (target ≤ 30 min)",
            thirty.unwrap_or_default()
        );
        println!(
            "  /readyz 200 after {:.1?}; the first cycle ended after {first_cycle:.1?}",
            ready.unwrap_or_default()
        );
        println!(
            "  {rest} REST points + {graphql} GraphQL points = {} points = {:.2} × the lower \
             bound ({lower_bound} pages)",
            rest + graphql,
            (rest + graphql) as f64 / lower_bound as f64
        );
        println!(
            "  installation tokens minted: {minted_first}; requests refused for an expired \
             token: {expired_first}"
        );

        // Idle cycles, discovery included, until one runs within one token's
        // life (after a renewal GitHub's ETags, which belong to a token, are
        // read in full once: docs/github-app.md).
        let mut cycles = 1;
        for _ in 0..MAX_IDLE_CYCLES {
            sim.reset_counts();
            let minted_before: u64 = sim.tokens_minted().values().sum();
            let idle_start = Instant::now();
            cycles += 1;
            handle.sync_now();
            let report = handle.wait_for_cycles(cycles).await.expect("an idle cycle");
            assert_eq!(report.failures().count(), 0);
            let idle_time = idle_start.elapsed();
            let renewed = sim.tokens_minted().values().sum::<u64>() - minted_before;
            let counts = sim.request_counts();
            let (rest, graphql) = points(&sim);
            println!(
                "\nidle cycle {} (discovery included), {idle_time:.1?}, {renewed} token(s) \
                 minted during it:",
                cycles - 1
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
            if renewed == 0 {
                break;
            }
        }

        // Three simulated hours of back-to-back cycles.
        sim.reset_counts();
        let minted_before: u64 = sim.tokens_minted().values().sum();
        let expired_before = sim.expired_token_uses();
        let run_start = Instant::now();
        let idle_cycles = cycles;
        let mut failed = 0;
        while run_start.elapsed() < hour * run_hours as u32 {
            cycles += 1;
            handle.sync_now();
            let report = handle.wait_for_cycles(cycles).await.expect("a cycle");
            failed += report.failures().count();
        }
        let minted: u64 = sim.tokens_minted().values().sum::<u64>() - minted_before;
        let expired = sim.expired_token_uses() - expired_before;
        let unauthorized = sim.request_counts().status(401);
        println!(
            "\n{run_hours} simulated hours ({:.1?}, {} cycles): {minted} installation tokens \
             minted, {expired} requests refused for an expired token, {unauthorized} answers \
             401, {failed} failed repository syncs (targets: 0)",
            run_start.elapsed(),
            cycles - idle_cycles
        );
        handle.shutdown().await.expect("shutdown");
        let _ = sim.shutdown().await;
    });
}
