//! A generated organisation large enough for lists of several pages: every page
//! (followed through GitHub's `Link` headers) carries the token, and what is
//! stored matches the simulator's truth for deployments and workflow runs.

use crate::support::{repo, workflow_repo, World};
use dora_collector::daemon::{self, CancellationToken};
use dora_collector::domain::{DeploymentOutcome, DeploymentSource, RepoName};
use dora_collector::sim::{Org, OrgSpec, RunConclusion, RunStatus, TokenUse, PRODUCTION};
use dora_collector::store::{SqliteStore, Store};

fn small_org() -> Org {
    Org::generate(&OrgSpec {
        repositories: 2,
        workflow_run_repositories: 1,
        teams: 1,
        ..OrgSpec::small(7)
    })
}

#[tokio::test]
async fn every_page_carries_the_token_and_what_is_stored_matches_the_simulation() {
    let org = small_org();
    let (api_name, web_name) = (org.full_name(0), org.full_name(1));
    let world = World::new(org).await;
    let config = world.config(&[
        repo(&api_name, "team"),
        workflow_repo(&web_name, "team", "deploy.yml"),
    ]);
    let report = daemon::sync_once(
        &config,
        world.clock.clone(),
        &CancellationToken::new(),
        &|_: &dora_collector::daemon::RepoReport| {},
    )
    .await
    .unwrap();
    assert_eq!(report.failures().count(), 0, "{report:?}");

    let requests = world.sim.requests();
    let pages: Vec<_> = requests
        .iter()
        .filter(|r| r.target.starts_with("/repositories/") && r.target.contains("page=2"))
        .collect();
    assert!(
        !pages.is_empty(),
        "a list had a second page, followed through Link"
    );
    assert!(
        requests.iter().all(|r| r.token == TokenUse::Valid),
        "every request, first pages and next pages, carried the token"
    );
    assert!(requests.iter().all(|r| r.status == 200), "{requests:?}");

    let store = SqliteStore::open(world.store_path()).unwrap();
    // Deployments API: every production deployment of the simulated month (all
    // inside the lookback), none of the staging ones.
    let api = RepoName::parse(&api_name).unwrap();
    let stored = store.read_repository(&api).unwrap().deployments;
    let truth: Vec<(u64, DeploymentOutcome)> = world.sim.with_org(|org| {
        org.repos[0]
            .deployments
            .iter()
            .filter(|d| &*d.environment == PRODUCTION)
            .map(|d| (d.id, d.outcome()))
            .collect()
    });
    let mut got: Vec<(u64, DeploymentOutcome)> = stored.iter().map(|d| (d.id, d.outcome)).collect();
    got.sort_by_key(|(id, _)| *id);
    assert_eq!(got, truth);
    assert!(stored
        .iter()
        .all(|d| d.source == DeploymentSource::GithubDeployments));

    // Workflow runs: runs on main that succeeded, failed or are still running;
    // cancelled runs never deployed.
    let web = RepoName::parse(&web_name).unwrap();
    let stored = store.read_repository(&web).unwrap().deployments;
    let truth: Vec<(u64, DeploymentOutcome)> = world.sim.with_org(|org| {
        org.repos[1]
            .workflow_runs
            .iter()
            .filter(|r| &*r.head_branch == "main")
            .filter(|r| {
                r.status != RunStatus::Completed
                    || matches!(
                        r.conclusion,
                        Some(RunConclusion::Success | RunConclusion::Failure)
                    )
            })
            .map(|r| (r.id, r.outcome()))
            .collect()
    });
    let mut got: Vec<(u64, DeploymentOutcome)> = stored.iter().map(|d| (d.id, d.outcome)).collect();
    got.sort_by_key(|(id, _)| *id);
    let mut truth = truth;
    truth.sort_by_key(|(id, _)| *id);
    assert_eq!(got, truth);
    assert!(stored
        .iter()
        .all(|d| d.source == DeploymentSource::GithubWorkflowRuns
            && d.environment.as_str() == "production"));
}

#[tokio::test]
async fn a_change_set_of_more_than_a_page_is_read_whole() {
    use dora_collector::domain::Timestamp;
    use dora_collector::sim::{NewDeployment, NewOutcome, DEFAULT_NOW};
    const COMMITS: usize = 230;
    let now = DEFAULT_NOW;
    let at = |days: i64| Timestamp(now.0 + days * 86_400);
    let mut org = Org::empty("acme", now);
    let team = org.add_team("t");
    org.add_person("alice", "Alice");
    let repo_index = org.add_repo("big", team, at(-100), false);
    let deploy = |org: &mut Org, day: i64| {
        org.add_deployment(
            repo_index,
            NewDeployment {
                environment: "production".to_owned(),
                sha: None,
                created_at: at(day),
                outcome: NewOutcome::Success { after: 60 },
            },
        )
        .unwrap()
    };
    deploy(&mut org, -20);
    for n in 0..COMMITS {
        let when = Timestamp(at(-10).0 + n as i64 * 60);
        org.push_commit(repo_index, &format!("Change {n}"), when, when)
            .unwrap();
    }
    deploy(&mut org, -5);
    let world = World::new(org).await;
    let config = world.config(&[repo("acme/big", "t")]);
    let report = daemon::sync_once(
        &config,
        world.clock.clone(),
        &CancellationToken::new(),
        &|_: &dora_collector::daemon::RepoReport| {},
    )
    .await
    .unwrap();
    assert_eq!(report.failures().count(), 0);
    let compares: Vec<_> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.route == "GET /repos/{owner}/{repo}/compare/{basehead}")
        .collect();
    assert_eq!(compares.len(), 3, "100 + 100 + 30 commits: {compares:?}");
    let store = SqliteStore::open(world.store_path()).unwrap();
    let stored = store
        .read_repository(&RepoName::parse("acme/big").unwrap())
        .unwrap();
    assert_eq!(stored.compares.len(), 1);
    assert_eq!(stored.compares[0].commits.len(), COMMITS);
    assert_eq!(stored.commits.len(), COMMITS);
}
