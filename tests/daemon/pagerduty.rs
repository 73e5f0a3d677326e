//! PagerDuty end to end: the daemon reads a simulated organisation's deployments
//! from the simulated GitHub and the incidents of simulated PagerDuty services
//! (mapped to a list of repositories, to one repository and to a team) through
//! its real clients and store, and every DORA series it exports equals the
//! brute-force reference (`reference::services`) over the simulators' own
//! readings; later resolves, re-triggers and new incidents arrive on incremental
//! syncs; a restart keeps everything; 429s, 5xx and connection resets change
//! nothing; a wrong key and an unknown service each fail with an error naming
//! them while the rest go on; an idle sync costs one request per service.

use crate::reference::services::{Mapping, Service, ServiceIncident};
use crate::reference::{self, Params};
use crate::support::fast_retries;
use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::Timestamp;
use dora_collector::sim::pagerduty::{
    PdAccount, PdChaos, PdHandle, PdLogKind, PdOptions, PdServer, PdServiceSpec, PdSpec, PdUrgency,
    PD_SIM_TOKEN,
};
use dora_collector::sim::{Org, OrgSpec, SimHandle, SimOptions, SimServer, SIM_TOKEN};
use std::sync::Arc;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// The series allowed to differ upwards (see `tests/engine/e2e_reference.rs`):
/// the reference knows every commit, the collector those it read.
const HISTORY_DEPENDENT_DIAGNOSTIC: &str = "dora_diagnostics_unmatched_root_causes";

/// A root cause no repository holds.
const UNKNOWN_SHA: &str = "0badc0ffee0badc0ffee0badc0ffee0badc0ffee";

/// The PagerDuty incidents list route of the simulator.
const INCIDENTS_ROUTE: &str = "GET /incidents";

fn org() -> Org {
    Org::generate(&OrgSpec {
        incident_rate: 0.1,
        ..OrgSpec::small(11)
    })
}

/// The production deploy times and shas of repository `index`.
fn production(org: &Org, index: usize) -> Vec<(Timestamp, String)> {
    org.repos[index]
        .deployments
        .iter()
        .filter(|d| &*d.environment == "production")
        .filter_map(|d| match d.outcome() {
            dora_collector::domain::DeploymentOutcome::Succeeded { at } => {
                Some((at, d.sha.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// Three services: `PSET001` over repositories 0 and 1 (some root causes name
/// nothing), `PONE001` over repository 2 alone, `PTEAM01` over the team of
/// repository 0 (its incidents start after that team's first deployment, so
/// that none is the team's own).
fn account(org: &Org) -> (PdAccount, Vec<(&'static str, Mapping)>) {
    let name = |i: usize| org.full_name(i);
    let team = org.team_of(0).expect("repository 0 has a team").to_owned();
    let team_first = (0..org.repos.len())
        .filter(|i| org.team_of(*i) == Some(team.as_str()))
        .flat_map(|i| production(org, i))
        .map(|(at, _)| at)
        .min()
        .expect("the team deployed");
    let spec_of = |id: &str, repos: &[usize], after: Timestamp, unknown: bool| {
        let deployed: Vec<(Timestamp, String)> =
            repos.iter().flat_map(|i| production(org, *i)).collect();
        let mut root_causes: Vec<String> = deployed.iter().map(|(_, sha)| sha.clone()).collect();
        if unknown {
            root_causes.push(UNKNOWN_SHA.to_owned());
        }
        PdServiceSpec {
            id: id.to_owned(),
            name: format!("{id} service"),
            deploy_times: deployed
                .iter()
                .map(|(at, _)| *at)
                .filter(|at| *at > after)
                .collect(),
            root_causes,
        }
    };
    let start = Timestamp(org.now.0 - 30 * DAY);
    let mut spec = PdSpec::new(
        5,
        vec![
            spec_of("PSET001", &[0, 1], start, true),
            spec_of("PONE001", &[2], start, false),
        ],
        start,
        org.now,
    );
    spec.incident_rate = 0.3;
    spec.retrigger_share = 0.2;
    let mut account = PdAccount::generate(&spec);
    // The team's service: its own generation, numbered after the others.
    let team_repos: Vec<usize> = (0..org.repos.len())
        .filter(|i| org.team_of(*i) == Some(team.as_str()))
        .collect();
    let team_start = Timestamp(team_first.0 + DAY);
    let team_spec = PdSpec {
        seed: 6,
        services: vec![spec_of("PTEAM01", &team_repos, team_start, false)],
        start: team_start,
        background_per_day: 0.0,
        ..spec.clone()
    };
    let team_account = PdAccount::generate(&team_spec);
    account.services.extend(team_account.services.clone());
    for incident in &team_account.incidents {
        let id = account
            .trigger(
                "PTEAM01",
                incident.created_at,
                &incident.title,
                incident.urgency,
                incident.body.clone(),
            )
            .unwrap();
        for entry in incident.log.iter().skip(1) {
            match entry.kind {
                PdLogKind::Annotate => {}
                kind => account.log(&id, kind, entry.at).unwrap(),
            }
        }
        for note in &incident.notes {
            account.add_note(&id, note.at, &note.content).unwrap();
        }
    }
    let mappings = vec![
        ("PSET001", Mapping::Repositories(vec![name(0), name(1)])),
        ("PONE001", Mapping::Repositories(vec![name(2)])),
        ("PTEAM01", Mapping::Team(team)),
    ];
    (account, mappings)
}

/// The services as the reference takes them: the simulator's own reading of
/// each incident at `now` (its log, its body, its notes), for `urgencies`.
fn truth(
    account: &PdAccount,
    mappings: &[(&str, Mapping)],
    now: Timestamp,
    urgencies: &[PdUrgency],
) -> Vec<Service> {
    mappings
        .iter()
        .map(|(id, mapping)| Service {
            mapping: mapping.clone(),
            incidents: account
                .incidents
                .iter()
                .filter(|i| i.service == *id && i.created_at <= now)
                .filter(|i| urgencies.contains(&i.urgency))
                .map(|i| {
                    let mut notes: Vec<_> = i.notes.iter().filter(|n| n.at <= now).collect();
                    notes.sort_by_key(|n| n.at);
                    let root_cause = i
                        .body
                        .as_deref()
                        .and_then(reference::definitions::root_cause)
                        .or_else(|| {
                            notes
                                .iter()
                                .find_map(|n| reference::definitions::root_cause(&n.content))
                        });
                    ServiceIncident {
                        number: i.number,
                        created_at: i.created_at.0,
                        resolved_at: i.resolved_at(now).map(|t| t.0),
                        root_cause,
                    }
                })
                .collect(),
        })
        .collect()
}

struct Setup {
    org: Org,
    github: SimHandle,
    pagerduty: PdHandle,
    mappings: Vec<(&'static str, Mapping)>,
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

async fn setup(chaos: Option<PdChaos>) -> Setup {
    let org = org();
    let (account, mappings) = account(&org);
    let github = SimServer::start(
        org.clone(),
        SimOptions {
            rate_limit: u64::MAX / 2,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let options = PdOptions {
        chaos: chaos.unwrap_or_default(),
        ..PdOptions::default()
    };
    let pagerduty = PdServer::start(account, options).await.unwrap();
    let clock = Arc::new(ManualClock::new(org.now));
    Setup {
        org,
        github,
        pagerduty,
        mappings,
        dir: tempfile::tempdir().unwrap(),
        clock,
    }
}

impl Setup {
    fn params(&self) -> Params {
        Params::for_org(&self.org)
    }

    /// The configuration text: the reference's, with `[pagerduty]` (`extra`
    /// lines in it, and `services` mapped as the setup maps them).
    fn config_text(&self, extra: &str, services: &[(&str, Mapping)]) -> String {
        let store = self.dir.path().join("dora.db");
        let mut text = self.params().to_config_toml(
            self.github.base_url(),
            SIM_TOKEN,
            &store.display().to_string(),
            "127.0.0.1:0",
        );
        text.push_str(&format!(
            "\n[pagerduty]\napi_url = \"{}\"\ntoken = \"{PD_SIM_TOKEN}\"\n{extra}\n",
            self.pagerduty.base_url()
        ));
        for (id, mapping) in services {
            text.push_str(&format!("\n[[pagerduty.services]]\nid = \"{id}\"\n"));
            match mapping {
                Mapping::Repositories(names) => {
                    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                    text.push_str(&format!("repositories = [{}]\n", quoted.join(", ")));
                }
                Mapping::Team(team) => text.push_str(&format!("team = \"{team}\"\n")),
            }
        }
        text
    }

    fn config(&self, extra: &str) -> Config {
        let text = self.config_text(extra, &self.mappings);
        Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
            .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"))
    }

    async fn start(&self, config: Config) -> DaemonHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = RunOptions {
            clock: self.clock.clone(),
            simulated: true,
            retry: fast_retries(),
            ..RunOptions::default()
        };
        daemon::start(config, listener, options).await.unwrap()
    }
}

async fn metrics(handle: &DaemonHandle) -> String {
    reqwest::get(format!("http://{}/metrics", handle.local_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The scrape equals the reference (the history-dependent diagnostic may only
/// be higher).
fn assert_reference(scrape: &str, expected: &reference::Expected) {
    let differences = reference::differences(scrape, expected).expect("the scrape parses");
    let (allowed, others): (Vec<_>, Vec<_>) = differences
        .into_iter()
        .partition(|d| d.contains(HISTORY_DEPENDENT_DIAGNOSTIC));
    assert!(
        others.is_empty(),
        "/metrics differs from the reference:\n{}",
        others.join("\n")
    );
    for difference in allowed {
        let numbers: Vec<f64> = difference
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|t| t.parse().ok())
            .collect();
        assert!(
            matches!(numbers.as_slice(), [.., expected, got] if got >= expected),
            "{difference}"
        );
    }
}

fn dora_lines(scrape: &str) -> Vec<String> {
    scrape
        .lines()
        .filter(|l| l.starts_with("dora_") && !l.starts_with("dora_collector_"))
        .map(str::to_owned)
        .collect()
}

async fn cycle_without_failures(handle: &mut DaemonHandle, cycles: u64) {
    let report = handle.wait_for_cycles(cycles).await.expect("a cycle");
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_incidents_and_github_deployments_match_the_reference_through_restarts() {
    let setup = setup(None).await;
    let all = [PdUrgency::High, PdUrgency::Low];
    let now = setup.org.now;
    let params = setup.params();
    let services = setup
        .pagerduty
        .with_account(|a| truth(a, &setup.mappings, now, &all));
    let incidents: usize = services.iter().map(|s| s.incidents.len()).sum();
    assert!(incidents > 20, "{incidents} incidents");
    // The incidents matter: without them the numbers differ.
    let expected = reference::services::expected(&setup.org, &params, now, &services);
    assert_ne!(
        format!("{:?}", expected.series),
        format!("{:?}", reference::expected(&setup.org, &params, now).series)
    );

    let mut handle = setup.start(setup.config("")).await;
    cycle_without_failures(&mut handle, 1).await;
    let scrape = metrics(&handle).await;
    assert_reference(&scrape, &expected);
    assert!(
        scrape.contains("source=\"pagerduty\""),
        "health of the source"
    );

    // Idle: two listings per service (the recent and the open incidents),
    // nothing else read from PagerDuty.
    setup.pagerduty.reset_counts();
    handle.sync_now();
    cycle_without_failures(&mut handle, 2).await;
    let counts = setup.pagerduty.request_counts();
    assert_eq!(counts.total, 6, "{counts:?}");
    assert_eq!(counts.route(INCIDENTS_ROUTE), 6, "{counts:?}");
    assert_eq!(setup.pagerduty.unversioned_requests(), 0);

    // Later: an open incident resolves, a resolved one is re-triggered, a new
    // one names its root cause in a note; the daemon syncs incrementally.
    let later = Timestamp(now.0 + 2 * HOUR);
    setup.pagerduty.with_account_mut(|account| {
        account.now = later;
        let open = account
            .incidents
            .iter()
            .find(|i| i.resolved_at(now).is_none())
            .map(|i| i.id.clone())
            .expect("an open incident");
        account
            .log(&open, PdLogKind::Resolve, Timestamp(now.0 + HOUR))
            .unwrap();
        // The oldest resolved incident: older than every open one, so that only
        // the listing of open incidents can see it open again.
        let oldest_open = account
            .incidents
            .iter()
            .filter(|i| i.resolved_at(now).is_none())
            .map(|i| i.created_at)
            .min()
            .expect("an open incident");
        let resolved = account
            .incidents
            .iter()
            .find(|i| i.resolved_at(now).is_some() && i.service == "PSET001")
            .filter(|i| i.created_at < oldest_open)
            .map(|i| i.id.clone())
            .expect("a resolved incident older than every open one");
        account
            .log(&resolved, PdLogKind::Trigger, Timestamp(now.0 + HOUR))
            .unwrap();
        let sha = production(&setup.org, 1)[0].1.clone();
        let new = account
            .trigger(
                "PSET001",
                Timestamp(now.0 + 30 * 60),
                "later",
                PdUrgency::High,
                None,
            )
            .unwrap();
        account
            .add_note(
                &new,
                Timestamp(now.0 + 40 * 60),
                &format!("root cause: {}", &sha[..9]),
            )
            .unwrap();
        account
            .log(&new, PdLogKind::Resolve, Timestamp(now.0 + 50 * 60))
            .unwrap();
    });
    setup.clock.set(later);
    setup.pagerduty.reset_counts();
    handle.sync_now();
    cycle_without_failures(&mut handle, 3).await;
    let services = setup
        .pagerduty
        .with_account(|a| truth(a, &setup.mappings, later, &all));
    let expected = reference::services::expected(&setup.org, &params, later, &services);
    let scrape = metrics(&handle).await;
    assert_reference(&scrape, &expected);
    let counts = setup.pagerduty.request_counts();
    assert!(
        counts.total < 20,
        "an incremental sync reads only what changed: {counts:?}"
    );
    handle.shutdown().await.unwrap();

    // A restart: the same numbers from the store at once, and after a sync.
    let mut handle = setup.start(setup.config("")).await;
    let restarted = metrics(&handle).await;
    assert_eq!(dora_lines(&restarted), dora_lines(&scrape));
    cycle_without_failures(&mut handle, 1).await;
    assert_eq!(dora_lines(&metrics(&handle).await), dora_lines(&scrape));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_high_urgency_incidents_count_when_configured() {
    let setup = setup(None).await;
    let now = setup.org.now;
    let params = setup.params();
    let services = setup
        .pagerduty
        .with_account(|a| truth(a, &setup.mappings, now, &[PdUrgency::High]));
    let low = setup.pagerduty.with_account(|a| {
        a.incidents
            .iter()
            .filter(|i| i.urgency == PdUrgency::Low)
            .count()
    });
    assert!(low > 0);
    let mut handle = setup.start(setup.config("urgencies = [\"high\"]")).await;
    cycle_without_failures(&mut handle, 1).await;
    let expected = reference::services::expected(&setup.org, &params, now, &services);
    assert_reference(&metrics(&handle).await, &expected);
    assert!(setup
        .pagerduty
        .targets()
        .iter()
        .filter(|t| t.starts_with("/incidents?"))
        .all(|t| t.contains("urgencies%5B%5D=high")));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_server_errors_and_connection_resets_change_no_value() {
    let calm = setup(None).await;
    let mut handle = calm.start(calm.config("")).await;
    cycle_without_failures(&mut handle, 1).await;
    let expected = dora_lines(&metrics(&handle).await);
    handle.shutdown().await.unwrap();

    let chaos = PdChaos {
        seed: 3,
        server_error_rate: 0.15,
        too_many_requests_rate: 0.15,
        reset_rate: 0.1,
        max_consecutive_faults: 2,
    };
    let stormy = setup(Some(chaos)).await;
    let mut handle = stormy.start(stormy.config("")).await;
    cycle_without_failures(&mut handle, 1).await;
    let (faults, resets) = (stormy.pagerduty.faults(), stormy.pagerduty.resets());
    assert!(faults > 5, "{faults} faults");
    assert!(resets > 0, "{resets} connections reset of {faults} faults");
    let scrape = metrics(&handle).await;
    assert_eq!(dora_lines(&scrape), expected);
    // The retries are reported: each reset as a network failure.
    let retried = |reason: &str| -> Vec<f64> {
        scrape
            .lines()
            .filter(|l| l.starts_with("dora_collector_api_retries_total{"))
            .filter(|l| l.contains("source=\"pagerduty\""))
            .filter(|l| l.contains(&format!("reason=\"{reason}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    assert!(!retried("rate_limit").is_empty(), "{scrape}");
    assert_eq!(retried("network"), [resets as f64], "{scrape}");
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_and_an_unknown_service_fail_naming_them_while_the_rest_go_on() {
    let setup = setup(None).await;
    let mut services = setup.mappings.clone();
    services.push((
        "PNOPE99",
        Mapping::Repositories(vec![setup.org.full_name(0)]),
    ));
    let text = setup.config_text("", &services);
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap();
    let mut handle = setup.start(config).await;
    let report = handle.wait_for_cycles(1).await.unwrap();
    let failures: Vec<(String, String)> = report
        .failures()
        .map(|(unit, error)| (unit.to_string(), error.to_owned()))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "-pagerduty/pnope99");
    assert!(
        failures[0].1.contains("pagerduty.services[3]") && failures[0].1.contains("PNOPE99"),
        "{}",
        failures[0].1
    );
    let synced = report
        .repositories
        .iter()
        .filter(|r| matches!(r.outcome, daemon::RepoOutcome::Synced(_)))
        .count();
    assert_eq!(synced, report.repositories.len() - 1);

    // The key is revoked: every service fails naming the key, GitHub goes on.
    setup.pagerduty.set_token("another-key-entirely");
    handle.sync_now();
    let report = handle.wait_for_cycles(2).await.unwrap();
    let failures: Vec<(String, String)> = report
        .failures()
        .map(|(unit, error)| (unit.to_string(), error.to_owned()))
        .collect();
    assert_eq!(failures.len(), 4, "{failures:?}");
    for (unit, error) in &failures {
        assert!(unit.starts_with("-pagerduty/"), "{unit}");
        assert!(error.contains("pagerduty.token"), "{error}");
        assert!(!error.contains(PD_SIM_TOKEN), "{error}");
    }
    assert!(report
        .repositories
        .iter()
        .filter(|r| r.source == "github")
        .all(|r| matches!(r.outcome, daemon::RepoOutcome::Synced(_))));
    let scrape = metrics(&handle).await;
    assert!(!scrape.contains(PD_SIM_TOKEN));
    handle.shutdown().await.unwrap();
}
