//! Two replicas of the real binary on one PostgreSQL store, against the
//! simulated GitHub, scraped by a real Prometheus every second:
//!
//! - every repository is leased to exactly one replica, both serve `/readyz`
//!   200 and `/report`, and through Prometheus every DORA series is seen once
//!   (only the metrics lease's holder exports them) and every repository's
//!   sync health once;
//! - `kill -9` of the replica holding the metrics lease: the other syncs the
//!   killed one's repositories within two poll intervals, takes the metrics
//!   lease over, and the organisation's series continues from it with the
//!   same value;
//! - the store then holds what one `sync --once` of the organisation into
//!   SQLite holds: the same deployments, incidents and pull requests, and the
//!   engine computes the same snapshot from both (nothing lost, nothing twice).
//!
//! Skipped without Prometheus or PostgreSQL, failed then when `CI=true`.

use crate::deploy_common::tool;
use crate::postgres_common::TestDatabase;
use crate::prometheus_e2e::{free_port, wait_for, Http, Prometheus};
use crate::replicas_common::{
    config_text, holds_metrics, leased_by, org, successes, wait_for_syncs, Replica, BINARY,
    POLL_SECONDS,
};
use dora_collector::domain::Timestamp;
use dora_collector::dora::{self, EngineConfig, EventsBuilder};
use dora_collector::sim::{SimOptions, SimServer};
use dora_collector::store::{SqliteStore, Store};
use std::process::Command;
use std::time::{Duration, Instant};

/// Repositories of the organisation, and its days of history.
const REPOSITORIES: usize = 6;
const DAYS: u32 = 30;
const SEED: u64 = 16;
/// Bounds on the waits (a debug build on a loaded machine).
const READY: Duration = Duration::from_secs(180);
const SPREAD: Duration = Duration::from_secs(60);
const SCRAPED: Duration = Duration::from_secs(60);

/// The values of an instant query's result, by their `instance` label.
fn by_instance(api: &Prometheus, expr: &str) -> Vec<(String, f64)> {
    let data = api.query(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|series| {
            (
                series["metric"]["instance"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                series["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_replicas_share_the_work_export_each_series_once_and_fail_over() {
    let missing = "the replicas' end-to-end test";
    let debian = "Debian: apt-get install prometheus";
    let Some(prometheus_bin) = tool("prometheus", missing, debian) else {
        return;
    };
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime
        .block_on(SimServer::start(
            org(REPOSITORIES, DAYS, SEED),
            SimOptions::default(),
        ))
        .expect("simulator starts");
    let sqlite = dir.path().join("reference.db");
    let config = |port, url| sim.with_org(|o| config_text(o, sim.base_url(), port, url, &sqlite));

    // The reference: one `sync --once` into SQLite.
    let reference_config = dir.path().join("reference.toml");
    std::fs::write(&reference_config, config(free_port(), None)).unwrap();
    let once = Command::new(BINARY)
        .args(["sync", "--once", "--config"])
        .arg(&reference_config)
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );

    // Two replicas on the database.
    let ports = [free_port(), free_port()];
    let mut replicas: Vec<Replica> = ports
        .iter()
        .enumerate()
        .map(|(n, port)| {
            Replica::start(
                dir.path(),
                &format!("replica-{n}"),
                *port,
                &config(*port, Some(database.url())),
            )
        })
        .collect();
    let store = database.open();
    let http = Http::new();
    for replica in &mut replicas {
        let readyz = url::Url::parse(&replica.url("/readyz")).unwrap();
        let deadline = Instant::now() + READY;
        while http.get(&readyz).is_none_or(|(status, _)| status != 200) {
            replica.assert_running();
            assert!(Instant::now() < deadline, "not ready:\n{}", replica.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // The work spreads: each holds some, none twice, together all.
    let deadline = Instant::now() + SPREAD;
    loop {
        let (a, b) = (
            leased_by(&store, &replicas[0]),
            leased_by(&store, &replicas[1]),
        );
        if !a.is_empty() && !b.is_empty() && a.len() + b.len() == REPOSITORIES {
            assert!(a.iter().all(|r| !b.contains(r)), "{a:?} {b:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not spread: {a:?} {b:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for replica in &replicas {
        let (status, _) = http
            .get(&url::Url::parse(&replica.url("/report")).unwrap())
            .unwrap();
        assert_eq!(status, 200);
    }

    // Prometheus scraping both.
    let targets: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let (mut prometheus, api) = Prometheus::start(
        &prometheus_bin,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: dora-collector\n    static_configs:\n      \
             - targets: [{}]\n",
            targets.join(", ")
        ),
        dir.path(),
        Http::new(),
    );
    wait_for(
        &mut prometheus,
        "both replicas scraped, the leases settled",
        SCRAPED,
        || {
            api.value(r#"count(up{job="dora-collector"} == 1)"#) == Some(2.0)
                && api.value("sum(dora_collector_metrics_lease)") == Some(1.0)
                && api.value("sum(dora_collector_leases_held)") == Some(REPOSITORIES as f64)
                && api.value("count(dora_org_deployments_total)").is_some()
        },
    );
    // Each DORA series once, from the metrics lease's holder.
    let org_series = by_instance(&api, "dora_org_deployments_total");
    assert_eq!(org_series.len(), 1, "{org_series:?}");
    let per_repository = by_instance(
        &api,
        "count by (repository, environment) (dora_deployments_total)",
    );
    assert!(!per_repository.is_empty());
    assert!(
        per_repository.iter().all(|(_, n)| *n == 1.0),
        "{per_repository:?}"
    );
    let health = by_instance(
        &api,
        "count by (source, repository) (dora_collector_last_successful_sync_timestamp_seconds)",
    );
    assert_eq!(health.len(), REPOSITORIES, "{health:?}");
    assert!(health.iter().all(|(_, n)| *n == 1.0), "{health:?}");
    let deployments = org_series[0].1;

    // kill -9 of the metrics lease's holder.
    let victim = usize::from(!holds_metrics(&store, &replicas[0]));
    assert!(holds_metrics(&store, &replicas[victim]));
    let orphaned = leased_by(&store, &replicas[victim]);
    assert!(!orphaned.is_empty());
    let before = successes(&store);
    let killed_at = Instant::now();
    replicas[victim].kill_9();
    let survivor = &mut replicas[1 - victim];
    let two_polls = Duration::from_secs(2 * POLL_SECONDS);
    let synced = wait_for_syncs(&store, &orphaned, &before, two_polls);
    survivor.assert_running();
    assert!(
        synced.is_some(),
        "{orphaned:?} not synced within two poll intervals:\n{}",
        survivor.log()
    );
    eprintln!(
        "failover: the survivor synced the killed replica's {} repositories {:?} after kill -9",
        orphaned.len(),
        synced.unwrap() - killed_at
    );
    assert!(holds_metrics(&store, survivor));
    assert_eq!(leased_by(&store, survivor).len(), REPOSITORIES);

    // The organisation's series continues, from the survivor, unchanged.
    let survivor_instance = format!("127.0.0.1:{}", ports[1 - victim]);
    wait_for(
        &mut prometheus,
        "the survivor exporting the DORA series",
        SCRAPED,
        || {
            by_instance(&api, "dora_org_deployments_total")
                == vec![(survivor_instance.clone(), deployments)]
        },
    );

    // The store: what one sync of the organisation holds.
    let reference = SqliteStore::open(&sqlite).unwrap();
    let (shared, single) = (store.counts().unwrap(), reference.counts().unwrap());
    assert_eq!(
        (
            shared.deployments,
            shared.incidents,
            shared.pull_requests,
            shared.repositories
        ),
        (
            single.deployments,
            single.incidents,
            single.pull_requests,
            single.repositories
        )
    );
    let now = Timestamp(chrono::Utc::now().timestamp());
    let snapshot = |store: &dyn Store| {
        let events =
            EventsBuilder::collect(|sink| store.load_events(&store.repositories().unwrap(), sink))
                .unwrap();
        dora::compute(&events, &EngineConfig::default(), now)
    };
    assert_eq!(snapshot(&store), snapshot(&reference));
    prometheus.assert_running();
    drop(runtime);
}
