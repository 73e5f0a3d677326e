//! End to end against the truth, GitLab: the daemon syncs a simulated GitLab
//! group (subgroups, projects on the Deployments API and on pipelines, an
//! environment counted by its tier only, incidents by type and by label)
//! through its real GitLab client and store, and every DORA series it exports
//! equals what the independent brute-force reference computes from the
//! simulator's events; the same for a mixed organisation whose teams have GitHub
//! repositories and GitLab projects; incremental syncs after new events and a
//! restart; GitLab.com's path and a self-managed path prefix; and a GitLab
//! project whose deployments come from Jenkins (GitLab then gives only its
//! commits, merge requests and incidents).

use crate::reference;

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::Timestamp;
use dora_collector::sim::cicd::jenkins::{
    builds_from_github, FolderKind, JenkinsJob, JenkinsState, JobKind,
};
use dora_collector::sim::cicd::{CicdHandle, CicdOptions, Credentials};
use dora_collector::sim::gitlab::{
    GitlabGroup, GitlabHandle, GitlabOptions, GitlabServer, GroupSpec,
};
use dora_collector::sim::{
    MergeStyle, NewDeployment, NewIssue, NewOutcome, NewPull, Org, OrgSpec, SimOptions, SimServer,
    SIM_TOKEN,
};
use reference::Params;
use std::sync::Arc;

/// A budget that does not run out within these tests (the rate limit has tests
/// of its own).
const TEST_RATE_LIMIT: u64 = u64::MAX / 2;

/// See `e2e_reference.rs`: the one series allowed to differ, and only upwards.
const HISTORY_DEPENDENT_DIAGNOSTIC: &str = "dora_diagnostics_unmatched_root_causes";

/// Requests an idle cycle may make per project (the issue's target).
const IDLE_REQUESTS_PER_PROJECT: u64 = 3;

/// Requests a cycle after one new deployment per project may make per project.
const NEW_DEPLOYMENT_REQUESTS_PER_PROJECT: u64 = 4;

/// A group with every kind of event.
fn busy_group(seed: u64) -> GitlabGroup {
    GitlabGroup::generate(&GroupSpec {
        org: OrgSpec {
            owner: "gl-acme".to_owned(),
            failure_rate: 0.15,
            rollback_rate: 0.08,
            incident_rate: 0.2,
            hotfix_rate: 0.15,
            revert_rate: 0.05,
            clock_skew_rate: 0.05,
            ..OrgSpec::small(seed)
        },
        live_projects: 1,
    })
}

async fn start_gitlab(group: &GitlabGroup, prefix: &str) -> GitlabHandle {
    let options = GitlabOptions {
        rate_limit: TEST_RATE_LIMIT,
        path_prefix: prefix.to_owned(),
        ..GitlabOptions::default()
    };
    GitlabServer::start(group.clone(), options)
        .await
        .expect("simulated GitLab")
}

/// The daemon on `text` at `now`, after its first cycle (which must not fail).
async fn start_daemon(text: &str, now: Timestamp) -> (DaemonHandle, Arc<ManualClock>) {
    let config = Config::from_toml_str(text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("config invalid: {problems:?}\n{text}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let options = RunOptions {
        clock: clock.clone(),
        simulated: true,
        ..RunOptions::default()
    };
    let mut handle = daemon::start(config, listener, options)
        .await
        .expect("daemon starts");
    let report = handle.wait_for_cycles(1).await.expect("a cycle completes");
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    (handle, clock)
}

async fn scrape(handle: &DaemonHandle) -> String {
    let base = format!("http://{}", handle.local_addr());
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Asserts that `scrape` holds exactly the series the reference expects.
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

/// Syncs `group` (served under `prefix`), checks every series against the
/// reference, then an idle cycle, a cycle after new events, and a restarted
/// daemon on the same store.
async fn check_group(group: GitlabGroup, prefix: &str) {
    let now = group.org.now;
    let gitlab = start_gitlab(&group, prefix).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let params = Params::for_group(&group);
    let text = params.to_config_toml_hosts(
        None,
        Some((gitlab.api_url(), &gitlab.token())),
        &store.display().to_string(),
        "127.0.0.1:0",
    );
    let (mut handle, clock) = start_daemon(&text, now).await;
    let first = scrape(&handle).await;
    assert!(first.contains("environment=\"live\""), "the tier counts");
    assert!(first.contains("source=\"gitlab\""), "health by source");
    let expected = |group: &GitlabGroup, at: Timestamp| {
        let params = Params::for_group(group);
        let params = Params {
            first_sync_at: Some(now),
            ..params
        };
        reference::expected_hosts(None, Some(group), &params, at)
    };
    assert_reference(&first, &expected(&group, now));
    let projects = group.projects.len() as u64;

    // An idle cycle: each project's lists once, one small page each.
    gitlab.reset_counts();
    handle.sync_now();
    handle.wait_for_cycles(2).await.expect("an idle cycle");
    let idle = gitlab.request_counts();
    assert!(
        idle.total <= IDLE_REQUESTS_PER_PROJECT * projects,
        "{idle:?}"
    );

    // New events an hour later: a deployment per Deployments-API project, a
    // merged hotfix, an incident opened and one closed.
    let later = Timestamp(now.0 + 3_600);
    let group = gitlab.with_group_mut(|group| {
        group.org.set_now(later);
        for index in 0..group.projects.len() {
            if group.org.repos[index].workflow().is_some() {
                continue;
            }
            let environment = group
                .environments(index)
                .iter()
                .find(|e| e.tier == dora_collector::sim::gitlab::Tier::Production)
                .map(|e| e.name.to_string())
                .unwrap();
            group
                .org
                .merge_pull(
                    index,
                    NewPull {
                        title: "Fix the outage".to_owned(),
                        labels: vec!["hotfix".to_owned()],
                        commit_dates: vec![Timestamp(now.0 + 600)],
                        opened_at: Timestamp(now.0 + 700),
                        merged_at: Timestamp(now.0 + 900),
                        style: MergeStyle::Squash,
                    },
                )
                .unwrap();
            group
                .org
                .add_deployment(
                    index,
                    NewDeployment {
                        environment,
                        sha: None,
                        created_at: Timestamp(now.0 + 1_200),
                        outcome: NewOutcome::Success { after: 300 },
                    },
                )
                .unwrap();
        }
        group
            .org
            .open_issue(
                0,
                NewIssue {
                    title: "Checkout fails".to_owned(),
                    body: None,
                    labels: vec!["incident".to_owned()],
                    opened_at: Timestamp(now.0 + 2_000),
                },
            )
            .unwrap();
        group.clone()
    });
    clock.set(later);
    gitlab.reset_counts();
    handle.sync_now();
    handle.wait_for_cycles(3).await.expect("a cycle with news");
    let news = gitlab.request_counts();
    assert!(
        news.total <= NEW_DEPLOYMENT_REQUESTS_PER_PROJECT * projects,
        "{news:?}"
    );
    let after = scrape(&handle).await;
    assert_reference(&after, &expected(&group, later));
    handle.shutdown().await.expect("clean shutdown");

    // A restart on the same store: the numbers at once, and nothing new read
    // beyond one idle cycle.
    gitlab.reset_counts();
    let (handle, _) = start_daemon(&text, later).await;
    let restarted = scrape(&handle).await;
    assert_reference(&restarted, &expected(&group, later));
    assert!(
        gitlab.request_counts().total <= IDLE_REQUESTS_PER_PROJECT * projects,
        "{:?}",
        gitlab.request_counts()
    );
    handle.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_of_a_gitlab_group_matches_the_reference() {
    check_group(busy_group(5), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_managed_instance_under_a_path_prefix_matches_the_reference() {
    check_group(GitlabGroup::generate(&GroupSpec::small(9)), "/gitlab").await;
}

/// A merge of a long-lived branch deployed after the first sync: the branch's
/// commits were committed long before the previous deployment, so the newest
/// commits of the new deployed sha (one commits page) do not reach them. Every
/// series still equals the reference, and the sync reads each new change set
/// with one compare: no commits page, at most 4 requests a project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_old_branch_is_one_compare_and_matches_the_reference() {
    let group = busy_group(7);
    let now = group.org.now;
    let gitlab = start_gitlab(&group, "").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let params = Params::for_group(&group);
    let text = params.to_config_toml_hosts(
        None,
        Some((gitlab.api_url(), &gitlab.token())),
        &store.display().to_string(),
        "127.0.0.1:0",
    );
    let (mut handle, clock) = start_daemon(&text, now).await;
    let expected = |group: &GitlabGroup, at: Timestamp| {
        let params = Params {
            first_sync_at: Some(now),
            ..Params::for_group(group)
        };
        reference::expected_hosts(None, Some(group), &params, at)
    };
    assert_reference(&scrape(&handle).await, &expected(&group, now));

    // Branch commits from 25 days ago (of the 30 generated), merged with a merge
    // commit and deployed an hour later.
    let later = Timestamp(now.0 + 3_600);
    let old = Timestamp(now.0 - 25 * 86_400);
    let (group, deployed) = gitlab.with_group_mut(|group| {
        group.org.set_now(later);
        let mut deployed = 0u64;
        for index in 0..group.projects.len() {
            if group.org.repos[index].workflow().is_some() {
                continue;
            }
            let environment = group
                .environments(index)
                .iter()
                .find(|e| e.tier == dora_collector::sim::gitlab::Tier::Production)
                .map(|e| e.name.to_string())
                .unwrap();
            group
                .org
                .merge_pull(
                    index,
                    NewPull {
                        title: "Land the long-lived branch".to_owned(),
                        labels: Vec::new(),
                        commit_dates: vec![old, Timestamp(old.0 + 600)],
                        opened_at: Timestamp(old.0 + 700),
                        merged_at: Timestamp(now.0 + 900),
                        style: MergeStyle::MergeCommit,
                    },
                )
                .unwrap();
            group
                .org
                .add_deployment(
                    index,
                    NewDeployment {
                        environment,
                        sha: None,
                        created_at: Timestamp(now.0 + 1_200),
                        outcome: NewOutcome::Success { after: 300 },
                    },
                )
                .unwrap();
            deployed += 1;
        }
        (group.clone(), deployed)
    });
    assert!(deployed >= 2, "{deployed}");
    // The branch commits lie beyond the first commits page of the new deployed
    // sha: the case this test is about.
    for index in 0..group.projects.len() {
        let repo = &group.org.repos[index];
        if repo.workflow().is_some() {
            continue;
        }
        let log = repo.log(repo.commit_index(&repo.main_head_sha()).unwrap());
        let branch = repo.pulls.last().unwrap().commits.start;
        let position = log.iter().position(|c| *c == branch).unwrap();
        assert!(position >= 100, "{index}: {position}");
    }
    clock.set(later);
    gitlab.reset_counts();
    handle.sync_now();
    handle.wait_for_cycles(2).await.expect("a cycle with news");
    let news = gitlab.request_counts();
    let projects = group.projects.len() as u64;
    assert_eq!(
        news.route("GET /api/v4/projects/{id}/repository/commits"),
        0,
        "{news:?}"
    );
    assert_eq!(
        news.route("GET /api/v4/projects/{id}/repository/compare"),
        deployed,
        "{news:?}"
    );
    assert!(
        news.total <= NEW_DEPLOYMENT_REQUESTS_PER_PROJECT * projects,
        "{news:?}"
    );
    assert_reference(&scrape(&handle).await, &expected(&group, later));
    handle.shutdown().await.expect("clean shutdown");
}

/// A mixed organisation: teams with GitHub repositories and GitLab projects
/// (the generators give both the same team names), each team's rollups from the
/// union of their samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_github_and_gitlab_organisation_matches_the_reference() {
    let org = Org::generate(&OrgSpec::small(3));
    let group = busy_group(4);
    let now = org.now;
    assert_eq!(now, group.org.now);
    let github = SimServer::start(
        org.clone(),
        SimOptions {
            rate_limit: TEST_RATE_LIMIT,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let gitlab = start_gitlab(&group, "").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let params = Params::mixed(&org, &group);
    let text = params.to_config_toml_hosts(
        Some((github.base_url(), SIM_TOKEN)),
        Some((gitlab.api_url(), &gitlab.token())),
        &store.display().to_string(),
        "127.0.0.1:0",
    );
    let (handle, _) = start_daemon(&text, now).await;
    let metrics = scrape(&handle).await;
    let params = Params {
        first_sync_at: Some(now),
        ..params
    };
    assert_reference(
        &metrics,
        &reference::expected_hosts(Some(&org), Some(&group), &params, now),
    );
    // A team holds repositories of both hosts.
    let team = org.team_of(0).unwrap();
    let members = params
        .repositories
        .iter()
        .filter(|r| r.team.as_deref() == Some(team))
        .map(|r| r.deployments.is_gitlab())
        .collect::<Vec<_>>();
    assert!(
        members.contains(&true) && members.contains(&false),
        "{members:?}"
    );
    assert!(metrics.contains("source=\"github\"") && metrics.contains("source=\"gitlab\""));
    handle.shutdown().await.expect("clean shutdown");
}

/// A GitLab project deploying through Jenkins: the Jenkins job's builds replay
/// the project's production deployments (checking out the project from GitLab),
/// the configuration names the project in `[[jenkins.jobs]]`, so GitLab's
/// Deployments API is not read for it, and every series still equals the
/// reference computed as if GitLab had given the deployments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_project_deploying_through_jenkins_matches_the_reference() {
    const JENKINS_USER: &str = "dora";
    const JENKINS_TOKEN: &str = "11e2e0000jenkins0token0gitlab00bb";
    let group = busy_group(6);
    let now = group.org.now;
    // A project on the Deployments API whose only production-tier environment
    // is `production`: Jenkins replays exactly the deployments that count.
    let index = (0..group.projects.len())
        .find(|&index| {
            group.org.repos[index].workflow().is_none()
                && Params::tiers(&group, index) == ["production".to_owned()]
                && group.org.repos[index]
                    .deployments
                    .iter()
                    .any(|d| &*d.environment == "production")
        })
        .expect("a project deploying to production through the Deployments API");
    let path = group.projects[index].repository();
    let gitlab = start_gitlab(&group, "").await;

    let mut job = JenkinsJob::new("deploy", JobKind::Freestyle);
    job.builds = builds_from_github(&group.org, index, "production");
    assert!(job.builds.len() >= 3, "{}", job.builds.len());
    let remote = format!("https://gitlab.example.com/{path}.git");
    for build in &mut job.builds {
        for checkout in &mut build.checkouts {
            if checkout
                .remote_url
                .ends_with(&format!("/{}.git", group.org.full_name(index)))
            {
                checkout.remote_url = remote.clone();
            }
        }
    }
    job.next_build_number = job.builds.last().map_or(1, |b| b.number + 1);
    let mut jenkins_state = JenkinsState::default();
    jenkins_state.insert(&["delivery"], FolderKind::Folder, job);
    let jenkins = CicdHandle::start(
        jenkins_state,
        Credentials::Basic {
            user: JENKINS_USER.into(),
            token: JENKINS_TOKEN.into(),
        },
        CicdOptions::default(),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let params = Params::for_group(&group);
    let text = params.to_config_toml_hosts(
        None,
        Some((gitlab.api_url(), &gitlab.token())),
        &store.display().to_string(),
        "127.0.0.1:0",
    ) + &format!(
        "\n[jenkins]\nurl = {:?}\nuser = {JENKINS_USER:?}\ntoken = {JENKINS_TOKEN:?}\n\
         [[jenkins.jobs]]\npath = \"delivery/deploy\"\nrepository = {path:?}\n\
         environment = \"production\"\n",
        jenkins.base_url(),
    );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("config invalid: {problems:?}\n{text}"));
    let (_, source) = config
        .repository_sources()
        .into_iter()
        .find(|(name, _)| name.as_str() == path)
        .unwrap();
    assert_eq!(source, "GitLab (deployments from Jenkins)");

    let (handle, _) = start_daemon(&text, now).await;
    let metrics = scrape(&handle).await;
    let params = Params {
        first_sync_at: Some(now),
        ..params
    };
    assert_reference(
        &metrics,
        &reference::expected_hosts(None, Some(&group), &params, now),
    );
    assert!(metrics.contains("source=\"jenkins\""), "Jenkins' health");
    // GitLab's deployments are read for the other projects, never for this one.
    let deployment_reads = |project: &str| {
        let wanted = format!("/projects/{}/deployments", project.replace('/', "%2f"));
        gitlab
            .requests()
            .iter()
            .filter(|r| r.target.to_ascii_lowercase().contains(&wanted))
            .count()
    };
    assert_eq!(deployment_reads(&path), 0);
    let other = (0..group.projects.len())
        .find(|&i| i != index && group.org.repos[i].workflow().is_none())
        .map(|i| group.projects[i].repository())
        .unwrap();
    assert!(deployment_reads(&other) > 0, "{other}");
    handle.shutdown().await.expect("clean shutdown");
}
