//! Argo CD and Jenkins through the daemon, against their simulators and the
//! simulated GitHub (which gives the commits): an unknown application or job
//! and wrong credentials are each one clear error naming it while every other
//! application, job and repository is read; Argo CD history gaps are logged and
//! counted; a Helm chart version is a deployment without lead time; Jenkins'
//! results (`UNSTABLE` either way), multibranch branch jobs, and the requests a
//! sync costs (one per job when idle, `allBuilds` after more than 100 new
//! builds); the push API refuses deployments of a repository Argo CD deploys.

use crate::support::{
    capturing_subscriber, config_text, fast_retries, get, repo, value, Captured, World,
};
use dora_collector::config::Config;
use dora_collector::daemon::{self, CycleReport, DaemonHandle, RunOptions};
use dora_collector::domain::{CommitSha, Timestamp};
use dora_collector::sim::cicd::argocd::{ArgoApp, ArgoCdState};
use dora_collector::sim::cicd::jenkins::{
    BuildResult, Checkout, FolderKind, JenkinsJob, JenkinsState, JobKind,
};
use dora_collector::sim::cicd::{CicdHandle, CicdOptions, Credentials};
use dora_collector::sim::{Org, OrgSpec, SIM_TOKEN};
use std::future::Future;

const ARGOCD_TOKEN: &str = "argocd-daemon-test-token-000000";
const JENKINS_USER: &str = "dora";
const JENKINS_TOKEN: &str = "11daemon0test0jenkins0token00000a";
const HOUR: i64 = 3_600;

/// Runs `test` on a current-thread runtime with every log line captured.
fn with_logs<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> String {
    let captured = Captured::default();
    let subscriber = capturing_subscriber(&captured);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(test()));
    captured.text()
}

/// The simulated GitHub, Argo CD and Jenkins of a test.
struct Servers {
    world: World,
    argocd: CicdHandle<ArgoCdState>,
    jenkins: CicdHandle<JenkinsState>,
    /// The organisation's repositories, `owner/name`.
    names: Vec<String>,
    /// Some commits of each repository, oldest first.
    shas: Vec<Vec<CommitSha>>,
}

impl Servers {
    async fn start(argocd: ArgoCdState, jenkins: JenkinsState) -> Servers {
        let org = Org::generate(&OrgSpec::small(51));
        let names = (0..org.repos.len()).map(|i| org.full_name(i)).collect();
        let shas = org
            .repos
            .iter()
            .map(|r| r.commits.iter().map(|c| c.sha).collect())
            .collect();
        let argocd = CicdHandle::start(
            argocd,
            Credentials::Bearer(ARGOCD_TOKEN.into()),
            CicdOptions::default(),
        )
        .await
        .unwrap();
        let jenkins = CicdHandle::start(
            jenkins,
            Credentials::Basic {
                user: JENKINS_USER.into(),
                token: JENKINS_TOKEN.into(),
            },
            CicdOptions::default(),
        )
        .await
        .unwrap();
        Servers {
            world: World::new(org).await,
            argocd,
            jenkins,
            names,
            shas,
        }
    }

    fn now(&self) -> Timestamp {
        use dora_collector::daemon::Clock;
        self.world.clock.now()
    }

    /// Every repository from GitHub (its commits read through GraphQL, the
    /// default), with `extra` (the `[argocd]` and `[jenkins]` tables) after
    /// it; the store in `store`.
    fn config(&self, store: &str, extra: &str) -> Config {
        let repos: Vec<_> = self.names.iter().map(|n| repo(n, "t")).collect();
        let text = config_text(
            self.world.sim.base_url(),
            SIM_TOKEN,
            &self.world.dir.path().join(store),
            &repos,
            // GitHub's default reading: deployed history through GraphQL.
            "api = \"graphql\"\n",
        ) + extra;
        Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
            .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"))
    }

    fn argocd_table(&self, applications: &[(&str, usize)]) -> String {
        let mut text = format!(
            "\n[argocd]\napi_url = {:?}\ntoken = {ARGOCD_TOKEN:?}\n",
            self.argocd.base_url()
        );
        for (name, repo) in applications {
            text.push_str(&format!(
                "[[argocd.applications]]\nname = {name:?}\nrepository = {:?}\n\
                 environment = \"production\"\n",
                self.names[*repo]
            ));
        }
        text
    }

    fn jenkins_table(&self, jobs: &[(&str, usize)], unstable: &str) -> String {
        let mut text = format!(
            "\n[jenkins]\nurl = {:?}\nuser = {JENKINS_USER:?}\ntoken = {JENKINS_TOKEN:?}\n\
             unstable = {unstable:?}\n",
            self.jenkins.base_url()
        );
        for (path, repo) in jobs {
            text.push_str(&format!(
                "[[jenkins.jobs]]\npath = {path:?}\nrepository = {:?}\n\
                 environment = \"production\"\n",
                self.names[*repo]
            ));
        }
        text
    }

    async fn daemon(&self, config: Config) -> DaemonHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = RunOptions {
            clock: self.world.clock.clone(),
            retry: fast_retries(),
            ..RunOptions::default()
        };
        daemon::start(config, listener, options).await.unwrap()
    }
}

/// A checkout of `sha` of `repository`, after the shared library's.
fn checkouts(repository: &str, sha: CommitSha) -> Vec<Checkout> {
    vec![
        Checkout {
            sha: "7".repeat(40),
            branch: "refs/remotes/origin/main".into(),
            remote_url: "https://github.com/acme-platform/library.git".into(),
        },
        Checkout {
            sha: sha.to_string(),
            branch: "refs/remotes/origin/main".into(),
            remote_url: format!("https://github.com/{repository}.git"),
        },
    ]
}

fn error_of<'a>(report: &'a CycleReport, repository: &str) -> Option<&'a str> {
    report
        .failures()
        .find(|(r, _)| r.as_str() == repository)
        .map(|(_, e)| e)
}

fn series(repository: &str, family: &str) -> String {
    format!("{family}{{repository=\"{repository}\",environment=\"production\",team=\"t\"}}")
}

async fn next_cycle(handle: &mut DaemonHandle) -> std::sync::Arc<CycleReport> {
    let n = handle.cycles().completed + 1;
    handle.sync_now();
    handle.wait_for_cycles(n).await.expect("a cycle")
}

#[test]
fn unknown_applications_jobs_and_wrong_tokens_are_errors_naming_them_while_the_rest_is_read() {
    let logs = with_logs(|| async {
        let servers = Servers::start(ArgoCdState::default(), JenkinsState::default()).await;
        let (a, b, c) = (0, 1, 2);
        let now = servers.now().0;
        let mut app = ArgoApp::new(
            "a-prod",
            "https://github.com/acme/deploy.git",
            Timestamp(now - 90 * 86_400),
        );
        for (i, sha) in servers.shas[a].iter().rev().take(3).rev().enumerate() {
            let at = Timestamp(now - (10 - i as i64) * HOUR);
            app.sync_succeeded(&sha.to_string(), at, Timestamp(at.0 + 60), true);
        }
        servers.argocd.with_state_mut(|s| s.applications.push(app));
        let mut job = JenkinsJob::new("b", JobKind::Freestyle);
        for (i, sha) in servers.shas[b].iter().rev().take(2).rev().enumerate() {
            let n = job.start_build(
                (now - (5 - i as i64) * HOUR) * 1000,
                checkouts(&servers.names[b], *sha),
            );
            job.finish_build(n, BuildResult::Success, 90_000);
        }
        servers
            .jenkins
            .with_state_mut(|s| s.insert(&["deploy"], FolderKind::Folder, job));
        let extra = servers.argocd_table(&[("a-prod", a), ("a-gone", a)])
            + &servers.jenkins_table(&[("deploy/b", b), ("deploy/c", c)], "failure");
        let mut handle = servers.daemon(servers.config("errors.db", &extra)).await;
        let report = handle.wait_for_cycles(1).await.unwrap();

        let gone = error_of(&report, &servers.names[a])
            .expect("the unknown application fails its repository");
        assert!(
            gone.starts_with(
                "argocd application \"a-gone\": access denied (HTTP 403 permission denied)"
            ),
            "{gone}"
        );
        assert!(gone.contains("`applications, get`"), "{gone}");
        let missing =
            error_of(&report, &servers.names[c]).expect("the unknown job fails its repository");
        assert!(
            missing.starts_with("jenkins job \"deploy/c\": not found (HTTP 404)"),
            "{missing}"
        );
        assert!(missing.contains("/job/deploy/job/c/api/json"), "{missing}");
        assert_eq!(
            report.failures().count(),
            2,
            "{:?}",
            report.failures().collect::<Vec<_>>()
        );
        // The rest was read: a-prod's syncs, deploy/b's builds, GitHub's repositories.
        let (_, metrics) = get(&handle, "/metrics").await;
        assert_eq!(
            value(
                &metrics,
                &series(&servers.names[a], "dora_deployments_total")
            ),
            Some(3.0),
            "{metrics}"
        );
        assert_eq!(
            value(
                &metrics,
                &series(&servers.names[b], "dora_deployments_total")
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &metrics,
                &format!(
                    "dora_collector_sync_errors_total{{source=\"argocd\",repository=\"{}\"}}",
                    servers.names[a]
                )
            ),
            Some(1.0)
        );
        let (status, reason) = get(&handle, "/readyz").await;
        assert_eq!(status, 503, "{reason}");

        // Wrong credentials: each source's repositories fail naming the key.
        servers
            .argocd
            .set_credentials(Credentials::Bearer("rotated-argocd-token-1111".into()));
        servers.jenkins.set_credentials(Credentials::Basic {
            user: JENKINS_USER.into(),
            token: "rotated-jenkins-token-2222".into(),
        });
        let report = next_cycle(&mut handle).await;
        let argocd = error_of(&report, &servers.names[a]).unwrap();
        assert!(argocd.starts_with("argocd application \"a-prod\": argocd rejected the credentials (HTTP 401 invalid session: token signature is invalid)"), "{argocd}");
        assert!(argocd.contains("check argocd.token"), "{argocd}");
        let jenkins = error_of(&report, &servers.names[b]).unwrap();
        assert!(jenkins.starts_with("jenkins job \"deploy/b\": jenkins rejected the credentials (HTTP 401 Error 401 HTTP ERROR 401 Invalid password/token for user: dora)"), "{jenkins}");
        assert!(jenkins.contains("check jenkins.token"), "{jenkins}");
        // GitHub's repositories still sync.
        assert!(error_of(&report, &servers.names[3]).is_none());
        handle.shutdown().await.unwrap();
    });
    for token in [ARGOCD_TOKEN, JENKINS_TOKEN] {
        assert!(!logs.contains(token), "a token in the logs");
    }
    assert!(logs.contains(
        "cannot read the Argo CD application; the repository's other applications are read on"
    ));
    assert!(logs.contains("cannot read the Jenkins job; the repository's other jobs are read on"));
}

#[test]
fn argocd_history_gaps_are_logged_and_counted() {
    let logs = with_logs(|| async {
        let servers = Servers::start(ArgoCdState::default(), JenkinsState::default()).await;
        let now = servers.now().0;
        let shas = servers.shas[0].clone();
        let sync = |app: &mut ArgoApp, index: usize, hours_ago: i64| {
            let at = Timestamp(now - hours_ago * HOUR);
            app.sync_succeeded(
                &shas[shas.len() - 1 - index].to_string(),
                at,
                Timestamp(at.0 + 30),
                true,
            );
        };
        let mut app = ArgoApp::new(
            "a-prod",
            "https://github.com/acme/deploy.git",
            Timestamp(now - 90 * 86_400),
        );
        app.revision_history_limit = Some(3);
        sync(&mut app, 20, 40);
        sync(&mut app, 19, 39);
        servers.argocd.with_state_mut(|s| s.applications.push(app));
        let extra = servers.argocd_table(&[("a-prod", 0)]);
        let mut handle = servers.daemon(servers.config("gaps.db", &extra)).await;
        let report = handle.wait_for_cycles(1).await.unwrap();
        assert_eq!(report.failures().count(), 0);
        let gaps = "dora_collector_argocd_history_gaps_total{application=\"a-prod\"}";
        let (_, metrics) = get(&handle, "/metrics").await;
        assert_eq!(value(&metrics, gaps), Some(0.0));

        // Five syncs before the next poll; the history keeps three.
        servers.argocd.with_state_mut(|s| {
            let app = s.app_mut("a-prod", None).unwrap();
            for (i, hours) in (30..35).rev().enumerate() {
                sync(app, 10 - i, hours);
            }
        });
        next_cycle(&mut handle).await;
        let (_, metrics) = get(&handle, "/metrics").await;
        assert_eq!(value(&metrics, gaps), Some(1.0));
        let deployed = series(&servers.names[0], "dora_deployments_total");
        assert_eq!(
            value(&metrics, &deployed),
            Some(5.0),
            "2 + the 3 still in the history"
        );

        // Polled in time: no new gap. Deleted and created again: a new uid, its
        // ids start at 0 again and overwrite nothing.
        servers.argocd.with_state_mut(|s| {
            let app = s.app_mut("a-prod", None).unwrap();
            sync(app, 4, 20);
        });
        next_cycle(&mut handle).await;
        servers.argocd.with_state_mut(|s| {
            let app = s.app_mut("a-prod", None).unwrap();
            app.recreate(Timestamp(now - 10 * HOUR));
            sync(app, 2, 5);
        });
        next_cycle(&mut handle).await;
        let (_, metrics) = get(&handle, "/metrics").await;
        assert_eq!(value(&metrics, gaps), Some(1.0));
        assert_eq!(value(&metrics, &deployed), Some(7.0));
        handle.shutdown().await.unwrap();
    });
    assert_eq!(
        logs.matches("Argo CD dropped syncs of this application")
            .count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("missed=2"), "{logs}");
    assert!(logs.contains("deleted and created again"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_version_is_a_deployment_without_lead_time() {
    let servers = Servers::start(ArgoCdState::default(), JenkinsState::default()).await;
    let now = servers.now().0;
    let shas = servers.shas[0].clone();
    let (older, newer) = (shas[shas.len() - 12], shas[shas.len() - 2]);
    let mut scrapes = Vec::new();
    for (name, chart) in [("plain", false), ("charted", true)] {
        let mut app = ArgoApp::new(
            name,
            "https://charts.example.com",
            Timestamp(now - 90 * 86_400),
        );
        app.sync_succeeded(
            &older.to_string(),
            Timestamp(now - 30 * HOUR),
            Timestamp(now - 30 * HOUR + 40),
            true,
        );
        if chart {
            app.sync_succeeded(
                "1.4.2",
                Timestamp(now - 20 * HOUR),
                Timestamp(now - 20 * HOUR + 40),
                false,
            );
        }
        app.sync_succeeded(
            &newer.to_string(),
            Timestamp(now - 10 * HOUR),
            Timestamp(now - 10 * HOUR + 40),
            true,
        );
        servers
            .argocd
            .with_state_mut(|s| s.applications = vec![app]);
        let extra = servers.argocd_table(&[(name, 0)]);
        let mut handle = servers
            .daemon(servers.config(&format!("{name}.db"), &extra))
            .await;
        let report = handle.wait_for_cycles(1).await.unwrap();
        assert_eq!(
            report.failures().count(),
            0,
            "{:?}",
            report.failures().collect::<Vec<_>>()
        );
        scrapes.push(get(&handle, "/metrics").await.1);
        handle.shutdown().await.unwrap();
    }
    let of = |scrape: &str, family: &str| value(scrape, &series(&servers.names[0], family));
    assert_eq!(of(&scrapes[0], "dora_deployments_total"), Some(2.0));
    assert_eq!(
        of(&scrapes[1], "dora_deployments_total"),
        Some(3.0),
        "the chart counts"
    );
    let count = of(&scrapes[0], "dora_lead_time_seconds_count").unwrap();
    assert!(count > 5.0, "{count}");
    assert_eq!(
        of(&scrapes[1], "dora_lead_time_seconds_count"),
        Some(count),
        "and adds no lead time"
    );
    assert_eq!(
        of(&scrapes[1], "dora_lead_time_seconds_sum"),
        of(&scrapes[0], "dora_lead_time_seconds_sum")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jenkins_results_multibranch_jobs_and_what_a_sync_costs() {
    let servers = Servers::start(ArgoCdState::default(), JenkinsState::default()).await;
    let now = servers.now().0;
    let name = servers.names[1].clone();
    let shas = servers.shas[1].clone();
    let mut job = JenkinsJob::new("ignored", JobKind::Pipeline);
    let results = [
        Some(BuildResult::Success),
        Some(BuildResult::Unstable),
        Some(BuildResult::Failure),
        Some(BuildResult::Aborted),
        Some(BuildResult::NotBuilt),
        None,
    ];
    for (i, result) in results.iter().enumerate() {
        let scheduled = (now - (20 - i as i64) * HOUR) * 1000;
        let n = job.start_build(scheduled, checkouts(&name, shas[shas.len() - 20 + i]));
        if let Some(result) = result {
            job.finish_build(n, *result, 120_000);
        }
    }
    let path = servers
        .jenkins
        .with_state_mut(|s| s.insert_branch(&["apps", "web"], "release/1.x", job));
    assert_eq!(path, "apps/web/release%2F1.x");
    let deployed = series(&name, "dora_deployments_total");
    let failed = series(&name, "dora_deployment_attempt_failures_total");

    for (unstable, deployments, failures) in [("failure", 1.0, 2.0), ("success", 2.0, 1.0)] {
        let extra = servers.jenkins_table(&[(&path, 1)], unstable);
        let mut handle = servers
            .daemon(servers.config(&format!("{unstable}.db"), &extra))
            .await;
        let report = handle.wait_for_cycles(1).await.unwrap();
        assert_eq!(
            report.failures().count(),
            0,
            "{:?}",
            report.failures().collect::<Vec<_>>()
        );
        let (_, metrics) = get(&handle, "/metrics").await;
        assert_eq!(
            value(&metrics, &deployed),
            Some(deployments),
            "UNSTABLE as {unstable}"
        );
        assert_eq!(
            value(&metrics, &failed),
            Some(failures),
            "UNSTABLE as {unstable}"
        );
        handle.shutdown().await.unwrap();
    }

    let extra = servers.jenkins_table(&[(&path, 1)], "failure");
    let mut handle = servers.daemon(servers.config("failure.db", &extra)).await;
    handle.wait_for_cycles(1).await.unwrap();
    // Idle: one small request for the job.
    servers.jenkins.reset_counts();
    next_cycle(&mut handle).await;
    let requests = servers.jenkins.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0]
            .target
            .starts_with("/job/apps/job/web/job/release%252F1.x/api/json?tree=builds%5B"),
        "{requests:?}"
    );
    // The running build finishes and 120 more run before the next poll: builds
    // holds 100, allBuilds the rest.
    servers.jenkins.with_state_mut(|s| {
        let job = s.job_mut(&path).unwrap();
        job.finish_build(6, BuildResult::Success, 60_000);
        for i in 0..120i64 {
            let n = job.start_build(
                (now - 12 * HOUR + i * 60) * 1000,
                checkouts(&name, shas[shas.len() - 1 - (i as usize % 10)]),
            );
            job.finish_build(n, BuildResult::Success, 30_000);
        }
    });
    servers.jenkins.reset_counts();
    let report = next_cycle(&mut handle).await;
    assert_eq!(report.failures().count(), 0);
    let targets: Vec<String> = servers
        .jenkins
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(targets.len(), 3, "{targets:?}");
    assert!(targets[1].ends_with("%7B10%2C100%7D"), "{targets:?}");
    assert!(
        targets[2].contains("allBuilds") && targets[2].ends_with("%7B100%2C200%7D"),
        "{targets:?}"
    );
    let (_, metrics) = get(&handle, "/metrics").await;
    assert_eq!(value(&metrics, &deployed), Some(122.0));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_deployment_of_a_repository_argo_cd_deploys_is_refused_naming_argocd() {
    const INGEST_TOKEN: &str = "ingest-token-0123456789abcdef0123456789";
    let servers = Servers::start(ArgoCdState::default(), JenkinsState::default()).await;
    servers.argocd.with_state_mut(|s| {
        s.applications.push(ArgoApp::new(
            "a-prod",
            "https://github.com/acme/deploy.git",
            Timestamp(0),
        ));
    });
    let extra = servers.argocd_table(&[("a-prod", 0)])
        + &format!(
            "\n[ingest]\n[[ingest.clients]]\nname = \"ci\"\ntoken = {INGEST_TOKEN:?}\n\
             repositories = [\"*/*\"]\n"
        );
    let mut handle = servers.daemon(servers.config("push.db", &extra)).await;
    handle.wait_for_cycles(1).await.unwrap();
    let body = serde_json::json!({
        "id": "deploy-1", "repository": servers.names[0], "environment": "production",
        "sha": servers.shas[0].last().unwrap().to_string(), "status": "success",
        "finished_at": Timestamp(servers.now().0 - HOUR).to_rfc3339(),
    });
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/deployments", handle.local_addr()))
        .bearer_auth(INGEST_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["field"], "repository");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("takes its deployments from argocd"),
        "{error}"
    );
    handle.shutdown().await.unwrap();
}
