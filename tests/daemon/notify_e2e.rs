//! The push path end to end, with no GitHub configured: 90 days of a simulated
//! organisation (merges, rollbacks, failed attempts, staging, clock skew,
//! incidents with and without root causes, reopened and still open) replayed
//! through the real `dora-collector notify` binary, each deployment's commits
//! taken by `--commits-from-git` from a real git repository built with `git
//! fast-import` from the simulator's commit graph; at three points of the 90 days
//! every DORA series of `/metrics` equals the brute-force reference
//! (`reference::push`) at that time. Pushed commits carry their subjects, so
//! rollbacks and reverts are rework; hotfix pull requests are in the history too,
//! but there are no pull requests without a code host.
//!
//! Git shas cannot be chosen, so the simulator's commits are written to git first
//! and everything that names a commit (deployments, root causes) is translated to
//! the real shas; the reference reads the clone back with `git log`. Without
//! `git` the test is skipped, except under `CI=true`, where it fails.

use crate::notify::notify;
use crate::reference::push::{CloneCommit, PushedDeployment, PushedIncident, PushedRepo};
use crate::reference::{self, DeploymentsFrom, Params, RepoParams};
use dora_collector::config::Config;
use dora_collector::daemon::{self, ManualClock, RunOptions};
use dora_collector::domain::{CommitSha, DeploymentOutcome, Timestamp};
use dora_collector::sim::{DeploySource, Org, OrgSpec, SECONDS_PER_DAY};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-token-0123456789abcdef0123456789abcdef";
/// The push client's name and the simulated organisation's owner.
const CLIENT: &str = "ci";
const OWNER: &str = "acme";
const SEED: u64 = 12;
const DAYS: u32 = 90;
const REPOSITORIES: usize = 3;
/// Repositories listed in `[[repositories]]` with their teams; the others are
/// known only through pushes (team `unassigned`).
const LISTED_REPOSITORIES: usize = 2;
/// The days (from the start of history) at which `/metrics` is compared with the
/// reference, besides the end.
const CHECKPOINT_DAYS: [i64; 2] = [30, 60];
const PRODUCTION: &str = "production";
/// How long the metrics may take to reflect the pushes (the push API's promise).
const METRICS_DEADLINE: Duration = Duration::from_secs(5);
/// The marks file `git fast-import` writes (`:mark sha` lines).
const MARKS_FILE: &str = "marks";

/// Whether `git` runs; without it the test is skipped locally and fails in CI.
fn git_available() -> bool {
    let available = Command::new("git")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("git is required when CI=true (Debian: apt-get install git)");
        }
        eprintln!("SKIPPED: git not found; the notify end-to-end test did not run");
    }
    available
}

/// `git -C dir args…` with `input` on its standard input; its standard output.
fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> String {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input)
            .expect("git reads its input");
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `data` of `git fast-import`: the byte count, then the bytes.
fn fast_import_data(stream: &mut Vec<u8>, bytes: &[u8]) {
    stream.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
    stream.extend_from_slice(bytes);
    stream.push(b'\n');
}

/// Writes repository `index` of `org` to a new bare git repository at `dir`:
/// every commit with its parents, author, author and committer dates and
/// message, and a file naming the simulator's sha (so that no two commits are
/// the same object). Returns the real sha of each simulated one.
fn build_clone(org: &Org, index: usize, dir: &Path) -> HashMap<CommitSha, CommitSha> {
    let repo = &org.repos[index];
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "--bare"], None);
    let mut stream = Vec::new();
    let mut has_child = vec![false; repo.commits.len()];
    for (i, commit) in repo.commits.iter().enumerate() {
        let parents: Vec<u32> = commit.parents().collect();
        if parents.is_empty() {
            stream.extend_from_slice(b"reset refs/heads/sim\n");
        }
        let person = &org.people[commit.author as usize];
        let signature =
            |date: Timestamp| format!("{} <{}> {} +0000", person.name, person.email, date.0);
        stream.extend_from_slice(
            format!(
                "commit refs/heads/sim\nmark :{}\nauthor {}\ncommitter {}\n",
                i + 1,
                signature(commit.author_date),
                signature(commit.committer_date)
            )
            .as_bytes(),
        );
        fast_import_data(&mut stream, repo.commit_message(i as u32).as_bytes());
        for (n, parent) in parents.iter().enumerate() {
            has_child[*parent as usize] = true;
            let verb = if n == 0 { "from" } else { "merge" };
            stream.extend_from_slice(format!("{verb} :{}\n", parent + 1).as_bytes());
        }
        stream.extend_from_slice(b"M 644 inline change\n");
        fast_import_data(&mut stream, commit.sha.to_string().as_bytes());
        stream.push(b'\n');
    }
    // Every commit reachable from a branch: `main`, and one per other tip
    // (open and abandoned pull requests).
    stream.extend_from_slice(
        format!("reset refs/heads/main\nfrom :{}\n\n", repo.main_head + 1).as_bytes(),
    );
    for (i, _) in has_child.iter().enumerate().filter(|(_, child)| !**child) {
        stream
            .extend_from_slice(format!("reset refs/heads/tip-{i}\nfrom :{}\n\n", i + 1).as_bytes());
    }
    stream.extend_from_slice(b"done\n");
    let marks = dir.join(MARKS_FILE);
    git(
        dir,
        &[
            "fast-import",
            "--quiet",
            "--done",
            &format!("--export-marks={}", marks.display()),
        ],
        Some(&stream),
    );
    let text = std::fs::read_to_string(&marks).unwrap();
    let real: HashMap<u32, CommitSha> = text
        .lines()
        .map(|line| {
            let (mark, sha) = line.split_once(' ').unwrap();
            let mark: u32 = mark.trim_start_matches(':').parse().unwrap();
            (mark - 1, CommitSha::parse(sha).unwrap())
        })
        .collect();
    assert_eq!(
        real.len(),
        repo.commits.len(),
        "one git commit per simulated one"
    );
    repo.commits
        .iter()
        .enumerate()
        .map(|(i, c)| (c.sha, real[&(i as u32)]))
        .collect()
}

/// Every commit of the clone at `dir`, read back with `git log`.
fn read_clone(dir: &Path) -> Vec<CloneCommit> {
    git(
        dir,
        &["log", "--all", "--format=%H%x09%P%x09%at%x09%s"],
        None,
    )
    .lines()
    .map(|line| {
        let mut fields = line.splitn(4, '\t');
        let (Some(sha), Some(parents), Some(at)) = (fields.next(), fields.next(), fields.next())
        else {
            panic!("an unexpected line of git log: {line:?}");
        };
        CloneCommit {
            sha: CommitSha::parse(sha).unwrap(),
            parents: parents
                .split_whitespace()
                .map(|p| CommitSha::parse(p).unwrap())
                .collect(),
            authored_at: at.parse().unwrap(),
            message: fields.next().unwrap_or("").to_owned(),
        }
    })
    .collect()
}

/// One deployment a pipeline reports.
#[derive(Debug, Clone)]
struct PlannedDeployment {
    id: String,
    environment: String,
    sha: CommitSha,
    succeeded: bool,
    started_at: i64,
    finished_at: i64,
}

/// One incident an incident tool reports (again with `resolved_at` once resolved).
#[derive(Debug, Clone)]
struct PlannedIncident {
    id: String,
    title: String,
    created_at: i64,
    resolved_at: Option<i64>,
    root_cause: Option<String>,
}

/// What is pushed for one repository, in the order it is pushed.
#[derive(Debug, Clone)]
struct RepoPlan {
    name: String,
    clone: PathBuf,
    deployments: Vec<PlannedDeployment>,
    incidents: Vec<PlannedIncident>,
}

/// The root cause an incident of `repo` names, translated to the real shas: the
/// same number of hex digits of the real commit whose simulated sha it names, in
/// the case it was written; a prefix naming no commit stays as it is.
fn real_root_cause(
    repo: &dora_collector::sim::SimRepo,
    body: &str,
    prefix: &str,
    real: &HashMap<CommitSha, CommitSha>,
) -> String {
    let named = repo
        .commits
        .iter()
        .find(|c| c.sha.to_string().starts_with(prefix))
        .map(|c| real[&c.sha].to_string()[..prefix.len()].to_owned())
        .unwrap_or_else(|| prefix.to_owned());
    if body.contains("ROOT CAUSE:") {
        named.to_ascii_uppercase()
    } else {
        named
    }
}

/// What the pipelines and the incident tool of repository `index` report, with
/// the real shas and ids unique to the client (named after the repository): each Deployments-API deployment (production and staging) and
/// each deploy-workflow run on the default branch that ended, as a success at its
/// deploy time or a failure; each incident issue, resolved when closed (a
/// reopened one is open again until closed again).
fn plan(org: &Org, index: usize, clone: PathBuf, real: &HashMap<CommitSha, CommitSha>) -> RepoPlan {
    let repo = &org.repos[index];
    let name = org.full_name(index);
    let mut deployments: Vec<PlannedDeployment> = Vec::new();
    let mut add = |id: String, environment: &str, sha: &CommitSha, created: Timestamp, outcome| {
        let (succeeded, at) = match outcome {
            DeploymentOutcome::Succeeded { at } => (true, at),
            DeploymentOutcome::Failed { at } => (false, at),
            DeploymentOutcome::Pending => return,
        };
        deployments.push(PlannedDeployment {
            id,
            environment: environment.to_owned(),
            sha: real[sha],
            succeeded,
            started_at: created.0.min(at.0),
            finished_at: at.0,
        });
    };
    match &repo.source {
        DeploySource::Deployments => {
            for d in &repo.deployments {
                add(
                    format!("{name}#deploy-{}", d.id),
                    &d.environment,
                    &d.sha,
                    d.created_at,
                    d.outcome(),
                );
            }
        }
        DeploySource::WorkflowRuns(_) => {
            for run in repo
                .workflow_runs
                .iter()
                .filter(|r| *r.head_branch == *repo.default_branch)
            {
                add(
                    format!("{name}#run-{}", run.id),
                    PRODUCTION,
                    &run.head_sha,
                    run.created_at,
                    run.outcome(),
                );
            }
        }
    }
    // The order of arrival: by deploy time.
    deployments.sort_by_key(|d| d.finished_at);
    let incidents = repo
        .issues
        .iter()
        .filter(|i| i.is_incident())
        .map(|issue| PlannedIncident {
            id: format!("{name}#INC-{}", issue.number),
            title: issue.title.clone(),
            created_at: issue.created_at.0,
            resolved_at: issue.closed_at.map(|t| t.0),
            root_cause: issue.root_cause().map(|prefix| {
                real_root_cause(
                    repo,
                    issue.body.as_deref().unwrap_or(""),
                    prefix.as_str(),
                    real,
                )
            }),
        })
        .collect();
    RepoPlan {
        name,
        clone,
        deployments,
        incidents,
    }
}

/// The reference's view of what `plan` pushes.
fn pushed(plan: &RepoPlan) -> PushedRepo {
    PushedRepo {
        name: plan.name.clone(),
        clone: read_clone(&plan.clone),
        deployments: plan
            .deployments
            .iter()
            .enumerate()
            .map(|(n, d)| PushedDeployment {
                arrival: n as u64,
                environment: d.environment.clone(),
                sha: d.sha,
                succeeded: d.succeeded,
                finished_at: d.finished_at,
            })
            .collect(),
        incidents: plan
            .incidents
            .iter()
            .enumerate()
            .map(|(n, i)| PushedIncident {
                arrival: n as u64,
                created_at: i.created_at,
                resolved_at: i.resolved_at,
                root_cause: i.root_cause.clone(),
            })
            .collect(),
    }
}

fn rfc3339(seconds: i64) -> String {
    Timestamp(seconds).to_rfc3339()
}

/// The `notify` arguments of each report of `plan` made at a time in
/// `(after, until]`, in time order.
fn reports(plan: &RepoPlan, url: &str, after: i64, until: i64) -> Vec<Vec<String>> {
    let within = |t: i64| t > after && t <= until;
    // (time, order among equal times, arguments)
    let mut out: Vec<(i64, u8, Vec<String>)> = Vec::new();
    for d in &plan.deployments {
        if within(d.finished_at) {
            let status = if d.succeeded { "success" } else { "failure" };
            let args = [
                "deployment",
                "--url",
                url,
                "--repository",
                &plan.name,
                "--environment",
                &d.environment,
                "--sha",
                &d.sha.to_string(),
                "--status",
                status,
                "--id",
                &d.id,
                "--started-at",
                &rfc3339(d.started_at),
                "--finished-at",
                &rfc3339(d.finished_at),
                "--commits-from-git",
                &plan.clone.display().to_string(),
            ];
            out.push((
                d.finished_at,
                1,
                args.iter().map(|s| (*s).to_owned()).collect(),
            ));
        }
    }
    for incident in &plan.incidents {
        let mut args: Vec<String> = [
            "incident",
            "--url",
            url,
            "--repository",
            &plan.name,
            "--id",
            &incident.id,
            "--created-at",
            &rfc3339(incident.created_at),
            "--title",
            &incident.title,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(root) = &incident.root_cause {
            args.extend(["--root-cause".to_owned(), root.clone()]);
        }
        if within(incident.created_at) {
            out.push((incident.created_at, 0, args.clone()));
        }
        if let Some(resolved) = incident.resolved_at.filter(|r| within(*r)) {
            args.extend(["--resolved-at".to_owned(), rfc3339(resolved)]);
            out.push((resolved, 2, args));
        }
    }
    // Stable: deployments at the same second keep their order of arrival.
    out.sort_by_key(|(at, order, _)| (*at, *order));
    out.into_iter().map(|(_, _, args)| args).collect()
}

/// A daemon configuration with the push API and `[[repositories]]`, no `[github]`.
fn config(store: &Path, listed: &[(String, String)]) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [ingest]\nrequests_per_second = 100000\n\
         [[ingest.clients]]\nname = \"{CLIENT}\"\ntoken = \"{TOKEN}\"\nrepositories = [\"{OWNER}/*\"]\n",
        store.display().to_string()
    );
    for (name, team) in listed {
        text.push_str(&format!(
            "[[repositories]]\nname = {name:?}\nteam = {team:?}\n"
        ));
    }
    Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("test config invalid: {problems:?}\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninety_days_of_notify_equal_the_reference_at_every_checkpoint() {
    if !git_available() {
        return;
    }
    let started = Instant::now();
    let spec = OrgSpec {
        owner: OWNER.to_owned(),
        repositories: REPOSITORIES,
        days: DAYS,
        deployments_per_day: 0.6,
        staging_deployments_per_day: 0.25,
        incident_rate: 0.3,
        rollback_rate: 0.1,
        workflow_run_repositories: 1,
        pending_deployments: 1,
        ..OrgSpec::small(SEED)
    };
    let org = Org::generate(&spec);
    let dir = tempfile::tempdir().unwrap();

    // The clones and what is pushed for each repository.
    let plans: Vec<RepoPlan> = (0..org.repos.len())
        .map(|index| {
            let clone = dir.path().join(format!("clone-{index}"));
            let real = build_clone(&org, index, &clone);
            plan(&org, index, clone, &real)
        })
        .collect();
    let pushed: Vec<PushedRepo> = plans.iter().map(pushed).collect();
    let listed: Vec<(String, String)> = (0..LISTED_REPOSITORIES)
        .map(|i| (org.full_name(i), org.team_of(i).unwrap().to_owned()))
        .collect();
    let params = Params::with_defaults(
        plans
            .iter()
            .map(|plan| RepoParams {
                name: plan.name.clone(),
                team: listed
                    .iter()
                    .find(|(name, _)| *name == plan.name)
                    .map(|(_, team)| team.clone()),
                deployments: DeploymentsFrom::Push,
                tier_production: Vec::new(),
            })
            .collect(),
    );
    let built = started.elapsed();

    let store = dir.path().join("dora.db");
    let start = spec.start().0;
    let mut checkpoints: Vec<i64> = CHECKPOINT_DAYS
        .iter()
        .map(|days| start + days * SECONDS_PER_DAY)
        .collect();
    checkpoints.push(org.now.0);
    let clock = Arc::new(ManualClock::new(Timestamp(checkpoints[0])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = RunOptions {
        clock: clock.clone(),
        ..RunOptions::default()
    };
    let mut handle = daemon::start(config(&store, &listed), listener, options)
        .await
        .expect("daemon starts");
    handle.wait_for_cycles(1).await.expect("a first cycle");
    let url = format!("http://{}", handle.local_addr());

    let mut after = i64::MIN;
    let mut notified = 0;
    for &checkpoint in &checkpoints {
        clock.set(Timestamp(checkpoint));
        // The repositories' pipelines run side by side; each one's reports in order.
        let runs: Vec<_> = plans
            .iter()
            .map(|plan| {
                let reports = reports(plan, &url, after, checkpoint);
                tokio::spawn(async move {
                    for args in &reports {
                        let output = notify(args.clone(), &[("DORA_INGEST_TOKEN", TOKEN)]).await;
                        assert_eq!(output.status.code(), Some(0), "notify {args:?}: {output:?}");
                    }
                    reports.len()
                })
            })
            .collect();
        for run in runs {
            notified += run.await.unwrap();
        }
        after = checkpoint;

        let now = Timestamp(checkpoint);
        let expected = reference::push::expected(&pushed, &params, now);
        let deadline = Instant::now() + METRICS_DEADLINE;
        loop {
            let (_, text) = crate::support::get(&handle, "/metrics").await;
            let current = reference::snapshot_time(&text) == Some(now);
            let differences = reference::differences(&text, &expected).unwrap();
            if current && differences.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                assert!(
                    current,
                    "no snapshot at {now:?} within {METRICS_DEADLINE:?}"
                );
                reference::assert_matches(&text, &expected);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "checkpoint {}: {} reports so far, equal to the reference after {:?}",
            now.to_rfc3339(),
            notified,
            started.elapsed()
        );
    }
    handle.shutdown().await.unwrap();

    // The history covered what the definitions care about.
    let analysis = reference::push::analyse(&pushed, &params, org.now);
    let deployments: Vec<_> = analysis
        .iter()
        .flat_map(|r| r.environments.iter().flat_map(|e| e.deployments.iter()))
        .collect();
    let incidents: Vec<_> = analysis.iter().flat_map(|r| r.incidents.iter()).collect();
    use reference::definitions::Attribution;
    let covered = [
        ("successful production deployments", deployments.len() >= 60),
        (
            "lead-time samples",
            deployments
                .iter()
                .map(|d| d.lead_times.len())
                .sum::<usize>()
                >= 100,
        ),
        (
            "merges among the changes",
            pushed
                .iter()
                .any(|r| r.clone.iter().any(|c| c.parents.len() == 2)),
        ),
        (
            "negative lead times dropped",
            deployments.iter().any(|d| d.negative_lead_times > 0),
        ),
        ("rollbacks", deployments.iter().any(|d| d.rework.rollback)),
        ("reverts", deployments.iter().any(|d| d.rework.revert)),
        (
            "failed attempts",
            analysis
                .iter()
                .any(|r| r.environments[0].attempt_failures > 0),
        ),
        (
            "staging deployments",
            plans
                .iter()
                .any(|p| p.deployments.iter().any(|d| d.environment != PRODUCTION)),
        ),
        (
            "incidents attributed by root cause",
            incidents
                .iter()
                .any(|i| matches!(i.attribution, Attribution::RootCause(_))),
        ),
        (
            "incidents attributed by time",
            incidents
                .iter()
                .any(|i| matches!(i.attribution, Attribution::Time(..))),
        ),
        (
            "unmatched root causes",
            incidents.iter().any(|i| i.unmatched_root_cause),
        ),
        (
            "open incidents",
            incidents.iter().any(|i| i.closed_at.is_none()),
        ),
        (
            "recovered failed deployments",
            deployments
                .iter()
                .any(|d| d.failed && d.recovered_at.is_some()),
        ),
        (
            "a repository known only through pushes",
            params.repositories.iter().any(|r| r.team.is_none()),
        ),
    ];
    let missing: Vec<&str> = covered
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| *what)
        .collect();
    assert!(
        missing.is_empty(),
        "the simulated history lacks {missing:?}"
    );
    eprintln!(
        "{notified} reports of {} deployments and {} incidents; clones built in {built:?}, all in {:?}",
        plans.iter().map(|p| p.deployments.len()).sum::<usize>(),
        incidents.len(),
        started.elapsed()
    );
}
