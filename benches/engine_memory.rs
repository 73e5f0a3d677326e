//! Prints the time and peak memory of building the input and of one
//! `dora::compute` for 10k, 100k and 1M deployments. Each size runs in a child
//! process of its own so that each peak is that size's alone.
//! Run: `cargo bench --bench engine_memory`.

#[path = "support/synthetic.rs"]
mod synthetic;

use dora_collector::domain::Timestamp;
use dora_collector::dora;
use std::time::Instant;

const REPOSITORIES: u64 = 1_000;
const SIZES: [u64; 3] = [10, 100, 1_000];
const CHILD_ENV: &str = "DORA_ENGINE_MEMORY_CHILD";

fn measure(per_repo: u64) {
    let started = Instant::now();
    let events = synthetic::events(REPOSITORIES, per_repo);
    let config = synthetic::config(REPOSITORIES);
    let built = started.elapsed();
    let rss_input = synthetic::peak_rss_mib().unwrap_or(f64::NAN);
    let started = Instant::now();
    let cpu_before = synthetic::thread_cpu_seconds().unwrap_or(f64::NAN);
    let snapshot = dora::compute(&events, &config, Timestamp(synthetic::NOW));
    let cpu = synthetic::thread_cpu_seconds().unwrap_or(f64::NAN) - cpu_before;
    let computed = started.elapsed();
    let rss_total = synthetic::peak_rss_mib().unwrap_or(f64::NAN);
    println!(
        "{:>9} deployments {:>10} changes {:>6} incidents | build {:>7.2} s | compute {:>7.3} s wall, {:>6.2} s CPU | peak RSS after build {:>7.1} MiB, after compute {:>7.1} MiB | org 90d lead-time samples {}",
        events.deployment_count(),
        events.commit_count(),
        REPOSITORIES * synthetic::INCIDENTS_PER_REPO,
        built.as_secs_f64(),
        computed.as_secs_f64(),
        cpu,
        rss_input,
        rss_total,
        snapshot.organisation.windows[2].lead_time.count,
    );
}

fn main() {
    if let Ok(size) = std::env::var(CHILD_ENV) {
        measure(size.parse().expect("size"));
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    for per_repo in SIZES {
        let status = std::process::Command::new(&exe)
            .env(CHILD_ENV, per_repo.to_string())
            .status()
            .expect("run child");
        assert!(status.success(), "child for {per_repo} failed");
    }
}
