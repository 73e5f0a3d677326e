//! Repository discovery end to end: the daemon configured with an organisation
//! (no repository listed) syncs what the organisation's list selects (globs;
//! archived repositories, forks and empty ones left out), syncs a repository
//! created on GitHub in the next cycle without a restart, stops polling one
//! archived or removed (its series leave `/metrics`, its per-repository health
//! series too, its history stays in the store), polls it again once it is back,
//! and lists the organisation for free (`304`s) in a cycle where nothing
//! changed.

use crate::support::{fast_retries, get, samples};
use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RepoOutcome, RunOptions};
use dora_collector::domain::{RepoName, Timestamp};
use dora_collector::sim::{
    NewDeployment, NewOutcome, Org, OrgSpec, SimHandle, SimOptions, SimServer, SIM_TOKEN,
};
use dora_collector::store::{SqliteStore, Store};
use std::path::Path;
use std::sync::Arc;

const LIST_ROUTE: &str = "GET /orgs/{org}/repos";

fn organisation() -> Org {
    let spec = OrgSpec {
        repositories: 6,
        workflow_run_repositories: 0,
        ..OrgSpec::small(41)
    };
    let mut org = Org::generate(&spec);
    org.repos[1].archived = true;
    org.repos[2].fork = true;
    org.repos[4].empty = true;
    org
}

fn config(api_url: &str, store: &Path, exclude: &str) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[github]\napi_url = \
         {api_url:?}\ntoken = {SIM_TOKEN:?}\n\n[[github.organizations]]\nname = \"acme\"\n\
         exclude = [{exclude:?}]\n",
        store.display().to_string()
    );
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"))
}

async fn start(config: Config, now: Timestamp) -> DaemonHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = RunOptions {
        clock: Arc::new(ManualClock::new(now)),
        retry: fast_retries(),
        ..RunOptions::default()
    };
    daemon::start(config, listener, options).await.unwrap()
}

/// Runs cycle `n` (triggering it after the first) and returns the repositories
/// it synced, sorted; none may fail.
async fn cycle(handle: &mut DaemonHandle, n: u64) -> Vec<String> {
    if n > 1 {
        handle.sync_now();
    }
    let report = handle
        .wait_for_cycles(n)
        .await
        .expect("the cycle completes");
    let mut synced: Vec<String> = report
        .repositories
        .iter()
        .map(|entry| {
            assert!(
                matches!(entry.outcome, RepoOutcome::Synced(_)),
                "{}: {:?}",
                entry.repository,
                entry.outcome
            );
            entry.repository.to_string()
        })
        .collect();
    synced.sort();
    synced
}

/// The repositories with a DORA series on the page.
async fn exported(handle: &DaemonHandle) -> Vec<String> {
    exported_on(&get(handle, "/metrics").await.1)
}

/// The repositories with a DORA series on `page`.
fn exported_on(page: &str) -> Vec<String> {
    let mut repositories: Vec<String> = samples(page, true)
        .keys()
        .filter_map(|series| {
            let start = series.find("repository=\"")? + "repository=\"".len();
            let end = start + series[start..].find('"')?;
            Some(series[start..end].to_owned())
        })
        .collect();
    repositories.sort();
    repositories.dedup();
    repositories
}

/// The repositories with a per-repository health series
/// (`dora_collector_*{repository=...}`) on `page`.
fn with_health_on(page: &str) -> Vec<String> {
    let mut repositories: Vec<String> = page
        .lines()
        .filter(|line| line.starts_with("dora_collector_"))
        .filter_map(|line| {
            let start = line.find("repository=\"")? + "repository=\"".len();
            let end = start + line[start..].find('"')?;
            Some(line[start..end].to_owned())
        })
        .collect();
    repositories.sort();
    repositories.dedup();
    repositories
}

fn names(sim: &SimHandle, indices: &[usize]) -> Vec<String> {
    let mut names: Vec<String> =
        sim.with_org(|org| indices.iter().map(|i| org.full_name(*i)).collect());
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_adds_and_drops_repositories_between_cycles() {
    let org = organisation();
    let now = org.now;
    let excluded = org.repos[3].name.clone();
    let sim = SimServer::start(org, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let mut handle = start(config(sim.base_url(), &store, &excluded), now).await;

    // Archived, fork, excluded and empty repositories are left out.
    let first = cycle(&mut handle, 1).await;
    assert_eq!(first, names(&sim, &[0, 5]));
    assert_eq!(get(&handle, "/readyz").await.0, 200);
    assert_eq!(exported(&handle).await, first);
    assert_eq!(with_health_on(&get(&handle, "/metrics").await.1), first);

    // A repository is created (with deployments), another archived.
    let (archived, created) = sim.with_org_mut(|org| {
        let team = org.repos[0].team;
        let index = org.add_repo("newsvc", team, Timestamp(now.0 - 20 * 86_400), false);
        for day in (1..=10).rev() {
            let at = Timestamp(now.0 - day * 86_400);
            org.push_commit(index, &format!("change {day}"), at, at)
                .unwrap();
            org.add_deployment(
                index,
                NewDeployment {
                    environment: dora_collector::sim::PRODUCTION.to_owned(),
                    sha: None,
                    created_at: Timestamp(at.0 + 600),
                    outcome: NewOutcome::Success { after: 60 },
                },
            )
            .unwrap();
        }
        org.repos[0].archived = true;
        (org.full_name(0), org.full_name(index))
    });
    let second = cycle(&mut handle, 2).await;
    let mut expected = vec![created.clone(), names(&sim, &[5])[0].clone()];
    expected.sort();
    assert_eq!(
        second, expected,
        "the new one is synced in the cycle it appears"
    );
    assert_eq!(get(&handle, "/readyz").await.0, 200);
    assert_eq!(
        exported(&handle).await,
        expected,
        "the archived one's series left"
    );
    assert_eq!(
        with_health_on(&get(&handle, "/metrics").await.1),
        expected,
        "the archived one's health series left too"
    );

    // Its history stays in the store.
    let kept = {
        let store = SqliteStore::open(&store).unwrap();
        let repository = RepoName::parse(&archived).unwrap();
        let statuses = store.sync_status().unwrap();
        assert!(statuses
            .iter()
            .any(|s| s.repository == repository && s.last_success_at.is_some()));
        dora_collector::dora::EventsBuilder::collect(|sink| {
            store.load_events(std::slice::from_ref(&repository), sink)
        })
        .unwrap()
        .deployment_count()
    };
    assert!(kept > 0, "the archived repository's deployments are kept");

    // Nothing changed: the list costs only free 304s.
    sim.reset_counts();
    cycle(&mut handle, 3).await;
    let counts = sim.request_counts();
    assert_eq!(counts.route_status(LIST_ROUTE, 304), 1, "{counts:?}");
    assert_eq!(counts.route_status(LIST_ROUTE, 200), 0, "{counts:?}");

    // Unarchived: polled again, from where it stopped.
    sim.with_org_mut(|org| org.repos[0].archived = false);
    let fourth = cycle(&mut handle, 4).await;
    assert!(fourth.contains(&archived), "{fourth:?}");
    assert!(exported(&handle).await.contains(&archived));

    // Removed from the organisation: gone from the page too.
    sim.with_org_mut(|org| {
        org.repos.remove(0);
    });
    let fifth = cycle(&mut handle, 5).await;
    assert!(!fifth.contains(&archived), "{fifth:?}");
    assert!(!exported(&handle).await.contains(&archived));
    assert!(!with_health_on(&get(&handle, "/metrics").await.1).contains(&archived));
    handle.shutdown().await.unwrap();

    // A report made from the store alone (the configuration lists no
    // repository) names every discovered repository, the removed one too.
    let request = dora_collector::report::ReportRequest {
        window: dora_collector::report::ReportWindow::parse("90d").unwrap(),
        until: now,
        team: None,
        generated_at: now,
    };
    let opened = dora_collector::report::open_store(&store).unwrap();
    let report = dora_collector::report::generate(
        &opened,
        &config(sim.base_url(), &store, &excluded),
        &request,
    )
    .unwrap();
    let reported: Vec<&str> = report
        .repositories
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    for repository in [&archived, &created] {
        assert!(
            reported.contains(&repository.as_str()),
            "{repository} in {reported:?}"
        );
    }
}

/// Each repository's `team` label on the page.
async fn teams_on_page(handle: &DaemonHandle) -> std::collections::BTreeMap<String, String> {
    let page = get(handle, "/metrics").await.1;
    let label = |series: &str, name: &str| {
        let key = format!("{name}=\"");
        let start = series.find(&key)? + key.len();
        let end = start + series[start..].find('"')?;
        Some(series[start..end].to_owned())
    };
    samples(&page, true)
        .keys()
        .filter(|series| series.starts_with("dora_deployments_total{"))
        .filter_map(|series| Some((label(series, "repository")?, label(series, "team")?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_come_from_the_configuration_the_topics_or_githubs_teams() {
    let spec = OrgSpec {
        repositories: 4,
        workflow_run_repositories: 0,
        teams: 3,
        ..OrgSpec::small(43)
    };
    let mut org = Org::generate(&spec);
    let now = org.now;
    let full: Vec<String> = (0..4).map(|i| org.full_name(i)).collect();
    let own: Vec<String> = (0..4)
        .map(|i| org.teams[org.repos[i].team].slug())
        .collect();
    // Topics: repository 0 has two team topics (the first alphabetically wins),
    // repository 3 none.
    org.repos[0].topics = vec!["team-zeta".into(), "team-alpha".into(), "rust".into()];
    org.repos[1].topics = vec!["team-web".into()];
    org.repos[2].topics = vec!["team-data".into()];
    // GitHub's teams: repository 1 is also `admin` of a team whose slug sorts
    // before its own; repository 2 has another team with less.
    let other = (org.repos[1].team + 1) % 3;
    org.repos[1].other_teams = vec![(other, "admin".into())];
    let weaker = (org.repos[2].team + 1) % 3;
    org.repos[2].other_teams = vec![(weaker, "maintain".into())];
    let tie_winner = std::cmp::min(own[1].clone(), org.teams[other].slug());
    let sim = SimServer::start(org, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let run = |team_from: &'static str, pinned: bool| {
        let store = dir.path().join(format!("{team_from}-{pinned}.db"));
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[github]\napi_url = \
             {:?}\ntoken = {SIM_TOKEN:?}\n\n[[github.organizations]]\nname = \"acme\"\n\
             team_from = {team_from:?}\n",
            store.display().to_string(),
            sim.base_url(),
        );
        if pinned {
            text.push_str(&format!(
                "\n[[github.repositories]]\nname = {:?}\nteam = \"pinned\"\n",
                full[3]
            ));
        }
        Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap()
    };
    let expect = |pairs: [(&str, &str); 4]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(r, t)| ((*r).to_owned(), (*t).to_owned()))
            .collect()
    };
    let cases = [
        (
            run("config", true),
            expect([
                (&full[0], "unassigned"),
                (&full[1], "unassigned"),
                (&full[2], "unassigned"),
                (&full[3], "pinned"),
            ]),
        ),
        (
            run("topics", false),
            expect([
                (&full[0], "alpha"),
                (&full[1], "web"),
                (&full[2], "data"),
                (&full[3], "unassigned"),
            ]),
        ),
        (
            run("github_teams", true),
            expect([
                (&full[0], &own[0]),
                (&full[1], &tie_winner),
                (&full[2], &own[2]),
                (&full[3], "pinned"),
            ]),
        ),
    ];
    for (config, expected) in cases {
        let mut handle = start(config.clone(), now).await;
        cycle(&mut handle, 1).await;
        assert_eq!(teams_on_page(&handle).await, expected);
        handle.shutdown().await.unwrap();
        // The report, from the store alone, has the same teams.
        let request = dora_collector::report::ReportRequest {
            window: dora_collector::report::ReportWindow::parse("30d").unwrap(),
            until: now,
            team: None,
            generated_at: now,
        };
        let opened = dora_collector::report::open_store(&config.storage.path).unwrap();
        let report = dora_collector::report::generate(&opened, &config, &request).unwrap();
        let reported: std::collections::BTreeMap<String, String> = report
            .repositories
            .iter()
            .map(|r| (r.name.clone(), r.team.clone().unwrap_or_default()))
            .collect();
        assert_eq!(reported, expected);
    }

    // A team renamed on GitHub: its repositories follow at the next cycle; an
    // idle cycle lists the teams for free.
    let mut handle = start(run("github_teams", false), now).await;
    cycle(&mut handle, 1).await;
    let renamed = sim.with_org_mut(|org| {
        let team = org.repos[0].team;
        org.teams[team].name = "Checkout Crew".to_owned();
        org.teams[team].slug()
    });
    assert_eq!(renamed, "checkout-crew");
    cycle(&mut handle, 2).await;
    assert_eq!(teams_on_page(&handle).await[&full[0]], renamed);
    sim.reset_counts();
    cycle(&mut handle, 3).await;
    let counts = sim.request_counts();
    assert_eq!(
        counts.route_status("GET /orgs/{org}/teams", 200),
        0,
        "{counts:?}"
    );
    assert_eq!(
        counts.route_status("GET /orgs/{org}/teams/{team_slug}/repos", 200),
        0,
        "{counts:?}"
    );
    assert_eq!(
        counts.route_status("GET /orgs/{org}/teams", 304),
        1,
        "{counts:?}"
    );
    handle.shutdown().await.unwrap();
}

/// Issue 15's "numbers in minutes": during the first cycle each repository's
/// series appear once its first sync succeeded, before the cycle ends, with
/// the gauge of how far back its history is complete (the start of the
/// lookback); a repository whose first sync failed exports none (its stored
/// history could be partial), only its health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_repository_is_exported_as_soon_as_its_history_is_complete() {
    const REPOSITORIES: usize = 16;
    const GAUGE: &str = "dora_collector_history_complete_since_timestamp_seconds";
    let spec = OrgSpec {
        repositories: REPOSITORIES,
        workflow_run_repositories: 0,
        ..OrgSpec::small(47)
    };
    let org = Org::generate(&spec);
    let now = org.now;
    // Every answer a quarter of a second late: the cycle lasts several
    // seconds longer than the first repositories' syncs.
    let options = SimOptions {
        chaos: dora_collector::sim::ChaosOptions {
            slow_rate: 1.0,
            slow_delay: std::time::Duration::from_millis(250),
            ..Default::default()
        },
        ..SimOptions::default()
    };
    let sim = SimServer::start(org, options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[github]\napi_url = \
         {:?}\ntoken = {SIM_TOKEN:?}\n\n[[github.organizations]]\nname = \"acme\"\n\n\
         [[github.repositories]]\nname = \"acme/missing\"\n",
        dir.path().join("dora.db").display().to_string(),
        sim.base_url(),
    );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap();
    let handle = start(config, now).await;
    let lookback_start = (now.0 - 90 * 86_400) as f64;
    let gauge = |page: &str, repository: &str| {
        samples(page, false)
            .into_iter()
            .find(|(series, _)| {
                series.starts_with(GAUGE) && series.contains(&format!("\"{repository}\""))
            })
            .map(|(_, value)| value)
    };

    let mut partial = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while handle.cycles().completed == 0 {
        assert!(std::time::Instant::now() < deadline, "the first cycle ends");
        let page = get(&handle, "/metrics").await.1;
        let shown = exported_on(&page);
        if handle.cycles().completed == 0 && !shown.is_empty() && shown.len() < REPOSITORIES {
            partial += 1;
            for repository in &shown {
                assert_eq!(
                    gauge(&page, repository),
                    Some(lookback_start),
                    "{repository}"
                );
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        partial > 0,
        "some repositories were exported before the first cycle ended"
    );

    let page = get(&handle, "/metrics").await.1;
    let shown = exported_on(&page);
    assert_eq!(shown.len(), REPOSITORIES, "{shown:?}");
    assert!(!shown.contains(&"acme/missing".to_owned()));
    assert_eq!(gauge(&page, "acme/missing"), None);
    assert!(
        page.contains(
            "dora_collector_sync_errors_total{source=\"github\",repository=\"acme/missing\"}"
        ),
        "its health is exported"
    );
    for repository in &shown {
        assert_eq!(
            gauge(&page, repository),
            Some(lookback_start),
            "{repository}"
        );
    }
    let landing = get(&handle, "/").await.1;
    let expected = format!(
        "history complete for {REPOSITORIES} of {} repositories, back to {} at least",
        REPOSITORIES + 1,
        Timestamp(now.0 - 90 * 86_400)
    );
    assert!(landing.contains(&expected), "{landing}");
    handle.shutdown().await.unwrap();
}
