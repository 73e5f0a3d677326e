//! The push API under load, on 127.0.0.1: [`CLIENTS`] concurrent clients (each
//! with its own token) push single deployments back to back for [`DURATION`]
//! (or `DORA_PUSH_BENCH_SECONDS`); each request is answered `202` only after its
//! deployment is committed (group commits, `synchronous=FULL`). Then, with
//! [`REPOSITORIES`] repositories in the store, the time from one push to the
//! changed `/metrics` value.
//!
//! Prints the accepted pushes per second, the p50/p99/max latency of the `202`,
//! the errors, and the time to `/metrics`. The daemon and the load generator
//! share the machine's cores. Bounded: a fixed duration, at most
//! [`MAX_REQUESTS`] requests.
//!
//! Run with `cargo bench --bench push` (harness = false: prints a report).

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Concurrent clients (the load).
const CLIENTS: usize = 50;
/// How long the pushes last.
const DURATION: Duration = Duration::from_secs(30);
/// The most requests sent, whatever the speed.
const MAX_REQUESTS: u64 = 10_000_000;
/// Repositories in the store when the time to `/metrics` is measured.
const REPOSITORIES: usize = 1_000;
/// The daemon's clock.
const NOW: Timestamp = Timestamp(1_700_000_000);
/// Bounds one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait for `/metrics` to show a push.
const METRICS_DEADLINE: Duration = Duration::from_secs(60);

fn token(client: usize) -> String {
    format!("bench-token-{client:04}-0123456789abcdef0123456789")
}

fn config(store: &std::path::Path) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [ingest]\nrequests_per_second = 100000\n",
        store.display().to_string()
    );
    for client in 0..CLIENTS {
        text.push_str(&format!(
            "[[ingest.clients]]\nname = \"c{client}\"\ntoken = \"{}\"\nrepositories = [\"*/*\"]\n",
            token(client)
        ));
    }
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).expect("config")
}

fn deployment(repository: &str, id: &str, n: u64) -> String {
    let sha = format!("{n:040x}");
    let at = Timestamp(NOW.0 - 3_600 + (n % 3_000) as i64).to_rfc3339();
    serde_json::json!({
        "id": id, "repository": repository, "environment": "production",
        "sha": sha, "status": "success", "finished_at": at,
        "commits": [{"sha": sha, "parents": [], "authored_at": Timestamp(NOW.0 - 86_400).to_rfc3339()}],
    })
    .to_string()
}

async fn push(client: &reqwest::Client, url: &str, token: &str, body: String) -> bool {
    match client
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(response) => response.status().as_u16() == 202,
        Err(_) => false,
    }
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index] as f64 / 1_000.0
}

async fn throughput(handle: &DaemonHandle, duration: Duration) {
    let url = format!("http://{}/api/v1/deployments", handle.local_addr());
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = url.clone();
            let sent = Arc::clone(&sent);
            let errors = Arc::clone(&errors);
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(REQUEST_TIMEOUT)
                    .build()
                    .unwrap();
                let token = token(c);
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while started.elapsed() < duration && sent.load(Ordering::Relaxed) < MAX_REQUESTS {
                    n += 1;
                    let id = format!("c{c}-{n}");
                    let body = deployment(
                        &format!("bench/repo-{}", c % 20),
                        &id,
                        c as u64 * 10_000_000 + n,
                    );
                    let at = Instant::now();
                    if push(&http, &url, &token, body).await {
                        latencies.push(at.elapsed().as_micros() as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "{CLIENTS} clients, {elapsed:.1} s: {} accepted ({:.0}/s), {} errors; 202 latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        errors.load(Ordering::Relaxed),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().map_or(f64::NAN, |m| *m as f64 / 1_000.0),
    );
}

async fn time_to_metrics(handle: &DaemonHandle) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let url = format!("http://{}/api/v1/deployments", handle.local_addr());
    let started = Instant::now();
    for chunk in (0..REPOSITORIES).collect::<Vec<_>>().chunks(500) {
        let items: Vec<String> = chunk
            .iter()
            .map(|r| {
                deployment(
                    &format!("scale/repo-{r:04}"),
                    &format!("scale-{r}"),
                    900_000_000 + *r as u64,
                )
            })
            .collect();
        assert!(push(&http, &url, &token(0), format!("[{}]", items.join(","))).await);
    }
    println!(
        "{REPOSITORIES} repositories pushed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let series = "dora_deployments_total{repository=\"scale/repo-0000\",environment=\"production\",team=\"unassigned\"}";
    let metrics = format!("http://{}/metrics", handle.local_addr());
    let mut samples = Vec::new();
    for round in 0..5u64 {
        let started = Instant::now();
        let body = deployment(
            "scale/repo-0000",
            &format!("probe-{round}"),
            800_000_000 + round,
        );
        assert!(push(&http, &url, &token(1), body).await);
        let expected = format!("{series} {}", round + 2);
        loop {
            let text = http
                .get(&metrics)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if text.contains(&expected) {
                break;
            }
            assert!(
                started.elapsed() < METRICS_DEADLINE,
                "the push never showed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        samples.push(started.elapsed().as_secs_f64());
    }
    println!(
        "push to changed /metrics at {REPOSITORIES} repositories: {}",
        samples
            .iter()
            .map(|s| format!("{s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn main() {
    let duration = std::env::var("DORA_PUSH_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(DURATION, Duration::from_secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = RunOptions {
            clock: Arc::new(ManualClock::new(NOW)),
            ..RunOptions::default()
        };
        let mut handle = daemon::start(config(&dir.path().join("dora.db")), listener, options)
            .await
            .expect("daemon starts");
        handle.wait_for_cycles(1).await;
        throughput(&handle, duration).await;
        time_to_metrics(&handle).await;
        handle.shutdown().await.unwrap();
    });
}
