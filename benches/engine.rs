//! Criterion benchmark of `dora::compute` over synthetic organisations of 10k, 100k
//! and 1M deployments (1,000 repositories; ten changes per deployment, so up to
//! 10M changes; 50 incidents per repository), three windows, every scope.
//! Input generation is outside the timed loop. Peak memory: `benches/engine_memory.rs`.

#[path = "support/synthetic.rs"]
#[allow(dead_code)] // the memory helpers serve `engine_memory`
mod synthetic;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dora_collector::domain::Timestamp;
use dora_collector::dora;
use std::hint::black_box;
use std::time::Duration;

const REPOSITORIES: u64 = 1_000;
/// Successful deployments per repository for the 10k, 100k and 1M cases.
const SIZES: [u64; 3] = [10, 100, 1_000];

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("compute");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for per_repo in SIZES {
        let events = synthetic::events(REPOSITORIES, per_repo);
        let config = synthetic::config(REPOSITORIES);
        let deployments = REPOSITORIES * per_repo;
        group.throughput(Throughput::Elements(deployments));
        group.bench_with_input(
            BenchmarkId::from_parameter(deployments),
            &events,
            |b, events| {
                b.iter(|| dora::compute(black_box(events), &config, Timestamp(synthetic::NOW)))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
