//! GitHub App authentication end to end, against the simulator's App (it verifies
//! every JWT with the public half of a key pair made at test time, mints
//! installation tokens that expire, and refuses an expired one with 401): two
//! organisations, each read with its own installation's token and budget, give
//! the same series as a personal token; tokens are renewed before they expire,
//! and one GitHub ends early is renewed in the middle of a sync that then
//! completes; a removed installation fails its organisation's repositories with
//! a clear error while the other organisation goes on, and is found again once
//! reinstalled.

use crate::support::{
    app_config_text, app_key, config_text, fast_retries, get, repo, samples, sim_app,
    workflow_repo, Repo,
};
use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RepoOutcome, RunOptions};
use dora_collector::sim::{Org, OrgSpec, SimHandle, SimOptions, SimServer, SIM_TOKEN};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The organisations served: `acme` and `globex`, ids apart.
fn organisations() -> Vec<Org> {
    let acme = OrgSpec {
        owner: "acme".to_owned(),
        ..OrgSpec::small(31)
    };
    let globex = OrgSpec {
        owner: "globex".to_owned(),
        id_block: 1,
        ..OrgSpec::small(32)
    };
    vec![Org::generate(&acme), Org::generate(&globex)]
}

/// Every repository of `sim`'s organisations, as configuration entries.
fn all_repositories(orgs: &[Org]) -> Vec<(String, bool)> {
    orgs.iter()
        .flat_map(|org| {
            (0..org.repos.len()).map(move |i| (org.full_name(i), org.repos[i].workflow().is_some()))
        })
        .collect()
}

fn entries(repositories: &[(String, bool)]) -> Vec<Repo<'_>> {
    repositories
        .iter()
        .map(|(name, workflow)| {
            if *workflow {
                workflow_repo(name, "t", dora_collector::sim::DEPLOY_WORKFLOW_FILE)
            } else {
                repo(name, "t")
            }
        })
        .collect()
}

/// A simulator serving both organisations with an App whose tokens live
/// `token_lifetime`, the App's key in a file, a store, the clock at `now`.
struct AppWorld {
    sim: SimHandle,
    dir: tempfile::TempDir,
    key: PathBuf,
    clock: Arc<ManualClock>,
    repositories: Vec<(String, bool)>,
}

impl AppWorld {
    async fn new(token_lifetime: Duration) -> AppWorld {
        let orgs = organisations();
        let now = orgs[0].now;
        let repositories = all_repositories(&orgs);
        let options = SimOptions {
            app: Some(sim_app(&["acme", "globex"], token_lifetime)),
            ..SimOptions::default()
        };
        let sim = SimServer::start_orgs(orgs, options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("app.pem");
        std::fs::write(&key, &app_key().0).unwrap();
        AppWorld {
            sim,
            dir,
            key,
            clock: Arc::new(ManualClock::new(now)),
            repositories,
        }
    }

    fn store(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The configuration as the App (GraphQL unless `rest`).
    fn app_config(&self, store: &Path, graphql: bool) -> Config {
        let extra = if graphql { "api = \"graphql\"\n" } else { "" };
        let text = app_config_text(
            self.sim.base_url(),
            &self.key,
            store,
            &entries(&self.repositories),
            extra,
        );
        Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
            .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"))
    }

    /// The same with the simulator's personal token, through REST (the
    /// simulator answers GraphQL with the personal token from its first
    /// organisation only; REST and GraphQL give the same numbers).
    fn token_config(&self, store: &Path) -> Config {
        let text = config_text(
            self.sim.base_url(),
            SIM_TOKEN,
            store,
            &entries(&self.repositories),
            "",
        );
        Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap()
    }

    async fn start(&self, config: Config) -> DaemonHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = RunOptions {
            clock: self.clock.clone(),
            retry: fast_retries(),
            ..RunOptions::default()
        };
        daemon::start(config, listener, options).await.unwrap()
    }
}

/// The DORA series of the page (the collector's health left out).
async fn dora_series(handle: &DaemonHandle) -> std::collections::BTreeMap<String, f64> {
    samples(&get(handle, "/metrics").await.1, true)
}

/// Waits for `n` cycles and checks that no repository failed.
async fn cycles_without_failure(handle: &mut DaemonHandle, n: u64) {
    let report = handle.wait_for_cycles(n).await.expect("cycles complete");
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_organisation_is_read_with_its_own_installation_and_the_series_equal_a_tokens() {
    let world = AppWorld::new(dora_collector::sim::server::app::DEFAULT_TOKEN_LIFETIME).await;
    let mut by_token = world
        .start(world.token_config(&world.store("token.db")))
        .await;
    cycles_without_failure(&mut by_token, 1).await;
    let expected = dora_series(&by_token).await;
    by_token.shutdown().await.unwrap();
    assert!(
        expected.keys().any(|k| k.contains("globex/")),
        "both organisations are read"
    );
    for graphql in [false, true] {
        world.sim.reset_counts();
        let mut by_app = world
            .start(world.app_config(&world.store(&format!("app-{graphql}.db")), graphql))
            .await;
        cycles_without_failure(&mut by_app, 1).await;
        assert_eq!(dora_series(&by_app).await, expected, "graphql: {graphql}");
        let page = get(&by_app, "/metrics").await.1;
        // Each installation's budgets apart: REST always, GraphQL too when
        // deployments are read through it.
        let resources: &[&str] = if graphql {
            &["core", "graphql"]
        } else {
            &["core"]
        };
        for account in ["acme", "globex"] {
            for resource in resources {
                let series = format!(
                    "dora_collector_rate_limit_remaining{{source=\"github\",credential=\"installation:{account}\",resource=\"{resource}\"}}"
                );
                assert!(page.contains(&series), "{series} in\n{page}");
            }
        }
        if graphql {
            assert!(
                !page.contains("credential=\"token\""),
                "no budget of a personal token:\n{page}"
            );
        }
        // One lookup per account; no request with the personal token.
        let counts = world.sim.request_counts();
        assert_eq!(counts.route("GET /repos/{owner}/{repo}/installation"), 2);
        assert!(world
            .sim
            .requests()
            .iter()
            .all(|r| r.token == dora_collector::sim::TokenUse::Valid));
        by_app.shutdown().await.unwrap();
    }
    // A token per installation and run, none refused.
    let minted = world.sim.tokens_minted();
    assert_eq!(minted.get(&9001), Some(&2), "{minted:?}");
    assert_eq!(minted.get(&9002), Some(&2), "{minted:?}");
    assert_eq!(world.sim.expired_token_uses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_before_they_expire_and_one_ended_early_is_renewed_mid_sync() {
    // Tokens of two seconds: renewed with half a second left.
    let world = AppWorld::new(Duration::from_secs(2)).await;
    let mut reference = world
        .start(world.token_config(&world.store("token.db")))
        .await;
    cycles_without_failure(&mut reference, 1).await;
    let expected = dora_series(&reference).await;
    reference.shutdown().await.unwrap();

    // GitHub ends every token once, in the middle of the first sync: after the
    // 25th request made with one.
    world.sim.expire_tokens_after(25);
    let mut handle = world
        .start(world.app_config(&world.store("app.db"), true))
        .await;
    cycles_without_failure(&mut handle, 1).await;
    assert_eq!(dora_series(&handle).await, expected);
    assert!(
        world.sim.expired_token_uses() >= 1,
        "a request met the ended token"
    );
    let renewed_early = world.sim.tokens_minted();

    // Later cycles renew before expiry: no request meets an expired token.
    let refused = world.sim.expired_token_uses();
    for cycle in 2..=3 {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        handle.sync_now();
        cycles_without_failure(&mut handle, cycle).await;
    }
    assert_eq!(world.sim.expired_token_uses(), refused);
    let minted = world.sim.tokens_minted();
    for installation in [9001, 9002] {
        assert!(
            minted[&installation] >= renewed_early[&installation] + 2,
            "{minted:?} after {renewed_early:?}"
        );
    }
    assert_eq!(dora_series(&handle).await, expected);
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_installation_fails_its_organisation_clearly_and_the_other_goes_on() {
    let world = AppWorld::new(dora_collector::sim::server::app::DEFAULT_TOKEN_LIFETIME).await;
    let mut handle = world
        .start(world.app_config(&world.store("app.db"), true))
        .await;
    cycles_without_failure(&mut handle, 1).await;

    // globex uninstalls the App: its kept token and any new one are refused.
    world.sim.revoke_installation(9002);
    handle.sync_now();
    let report = handle.wait_for_cycles(2).await.unwrap();
    for entry in &report.repositories {
        let globex = entry.repository.owner() == "globex";
        match (&entry.outcome, globex) {
            (RepoOutcome::Synced(_), false) => {}
            (RepoOutcome::Failed(error), true) => {
                // The installation refused a token, or (looked up again) is gone.
                assert!(
                    error.contains("globex")
                        && (error.contains("installation") || error.contains("not installed")),
                    "{error}"
                );
                assert!(error.contains("install"), "{error}");
            }
            (outcome, _) => panic!("{}: {outcome:?}", entry.repository),
        }
    }
    let (status, _) = get(&handle, "/healthz").await;
    assert_eq!(status, 200);

    // Reinstalled (same id here): found again at the next cycle.
    world.sim.restore_installation(9002);
    handle.sync_now();
    cycles_without_failure(&mut handle, 3).await;
    handle.shutdown().await.unwrap();
}
