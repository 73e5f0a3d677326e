//! The cost of reading 100 PagerDuty services: the requests of the first sync
//! (90 days of incidents) and of idle syncs after it, by route and status, and
//! their time, against the simulated PagerDuty on 127.0.0.1 (the requests are
//! what PagerDuty would see; the time is the collector's and the simulator's,
//! not PagerDuty's latency). The simulator's rate limit is lifted so the first
//! sync is not held back; the printed total says how long PagerDuty's 960
//! requests a minute would hold it.
//!
//! The services map to repositories known through the push API (`[ingest]` and
//! `[[repositories]]`), so that nothing but PagerDuty is read.
//!
//! Run with `cargo bench --bench pagerduty` (harness = false: prints a report).
//! `DORA_PD_BENCH_INCIDENTS_PER_DAY` sets the incidents per service per day
//! (default 0.1: about 9 per service over 90 days).

use dora_collector::config::Config;
use dora_collector::daemon::{self, ManualClock, RunOptions};
use dora_collector::domain::Timestamp;
use dora_collector::sim::pagerduty::{
    PdAccount, PdOptions, PdServer, PdServiceSpec, PdSpec, PD_DEFAULT_RATE_LIMIT, PD_SIM_TOKEN,
};
use dora_collector::sim::{RequestCounts, DEFAULT_NOW};
use std::sync::Arc;
use std::time::Instant;

/// Services read.
const SERVICES: usize = 100;
/// Days of incidents (the lookback is 90 days).
const DAYS: i64 = 90;
const DAY: i64 = 86_400;
/// Idle cycles measured after the first sync.
const IDLE_CYCLES: u64 = 3;

fn print_counts(title: &str, counts: &RequestCounts, seconds: f64) {
    println!("\n{title}: {} requests in {seconds:.2} s", counts.total);
    println!("  {:>6}  {:>6}  route", "count", "status");
    for ((route, status), count) in &counts.by_route_status {
        println!("  {count:>6}  {status:>6}  {route}");
    }
}

fn main() {
    let per_day: f64 = std::env::var("DORA_PD_BENCH_INCIDENTS_PER_DAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let now = DEFAULT_NOW;
        let services: Vec<PdServiceSpec> = (0..SERVICES)
            .map(|n| PdServiceSpec {
                id: format!("PSVC{n:03}"),
                name: format!("service {n}"),
                deploy_times: Vec::new(),
                root_causes: vec!["0123456789abcdef0123456789abcdef01234567".to_owned()],
            })
            .collect();
        let spec = PdSpec {
            background_per_day: per_day,
            ..PdSpec::new(1, services, Timestamp(now.0 - DAYS * DAY), now)
        };
        let account = PdAccount::generate(&spec);
        let incidents = account.incidents.len();
        let open = account
            .incidents
            .iter()
            .filter(|i| i.resolved_at(now).is_none())
            .count();
        let sim = PdServer::start(
            account,
            PdOptions {
                rate_limit: u64::MAX / 2,
                ..PdOptions::default()
            },
        )
        .await
        .expect("simulator");
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut text = format!(
            "[storage]\npath = \"{}\"\n\n[ingest]\n[[ingest.clients]]\nname = \"ci\"\n\
             token = \"0123456789abcdef0123456789abcdef\"\nrepositories = [\"acme/*\"]\n\n\
             [pagerduty]\napi_url = \"{}\"\ntoken = \"{PD_SIM_TOKEN}\"\n",
            dir.path().join("dora.db").display(),
            sim.base_url()
        );
        for n in 0..SERVICES {
            text.push_str(&format!(
                "\n[[repositories]]\nname = \"acme/svc-{n}\"\n\n[[pagerduty.services]]\n\
                 id = \"PSVC{n:03}\"\nrepositories = [\"acme/svc-{n}\"]\n"
            ));
        }
        let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
            .expect("valid configuration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let options = RunOptions {
            clock: Arc::new(ManualClock::new(now)),
            ..RunOptions::default()
        };
        println!(
            "{SERVICES} PagerDuty services, {DAYS} days, {incidents} incidents ({open} open at the end)"
        );
        let start = Instant::now();
        let mut handle = daemon::start(config, listener, options)
            .await
            .expect("daemon starts");
        let report = handle.wait_for_cycles(1).await.expect("first cycle");
        assert_eq!(report.failures().count(), 0, "{report:?}");
        let first = sim.request_counts();
        print_counts("first sync", &first, start.elapsed().as_secs_f64());
        println!(
            "  per service: {:.1}; at PagerDuty's {PD_DEFAULT_RATE_LIMIT} requests a minute: \
             at least {:.1} minutes",
            first.total as f64 / SERVICES as f64,
            first.total as f64 / PD_DEFAULT_RATE_LIMIT as f64
        );
        for cycle in 0..IDLE_CYCLES {
            sim.reset_counts();
            let start = Instant::now();
            handle.sync_now();
            let report = handle
                .wait_for_cycles(2 + cycle)
                .await
                .expect("idle cycle");
            assert_eq!(report.failures().count(), 0, "{report:?}");
            print_counts(
                &format!("idle sync {}", cycle + 1),
                &sim.request_counts(),
                start.elapsed().as_secs_f64(),
            );
        }
        handle.shutdown().await.expect("clean shutdown");
    });
}
