//! Deterministic synthetic engine input for the benchmarks: `repos` repositories,
//! `deployments_per_repo` successful production deployments each over one year,
//! about ten changes per deployment (mostly linear history, a merge every tenth
//! commit), 2% rollbacks, 50 incidents per repository (half naming a root cause),
//! and a few hotfix pull requests.

use dora_collector::domain::*;
use dora_collector::dora::{EngineConfig, Events, Window};

pub const DAY: i64 = 86_400;
/// The evaluation time of every benchmark: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;
pub const CHANGES_PER_DEPLOYMENT: u64 = 10;
pub const INCIDENTS_PER_REPO: u64 = 50;
pub const TEAMS: u64 = 20;

#[path = "shas.rs"]
mod shas;
use shas::{sha_of, splitmix};

pub fn config(repos: u64) -> EngineConfig {
    let mut config = EngineConfig {
        windows: vec![Window::days(7), Window::days(30), Window::days(90)],
        ..EngineConfig::default()
    };
    for r in 0..repos {
        config.teams.insert(
            repo_name(r),
            Team::parse(&format!("team-{}", r % TEAMS)).unwrap(),
        );
    }
    config
}

pub fn repo_name(r: u64) -> RepoName {
    RepoName::parse(&format!("acme/service-{r:04}")).unwrap()
}

/// The events; `deployments_per_repo × repos` successful deployments in all.
pub fn events(repos: u64, deployments_per_repo: u64) -> Events {
    let mut builder = Events::builder();
    let production = Environment::parse("production").unwrap();
    let year = 365 * DAY;
    let mut rng = 42u64;
    for r in 0..repos {
        let name = repo_name(r);
        let commits = deployments_per_repo * CHANGES_PER_DEPLOYMENT;
        let step = year / deployments_per_repo as i64;
        let start = NOW - year;
        let mut parents = Vec::with_capacity(2);
        for c in 0..commits {
            parents.clear();
            if c > 0 {
                parents.push(sha_of(r, c - 1));
            }
            if c % 10 == 9 && c >= 5 {
                parents.push(sha_of(r, c - 5));
            }
            // Authored within the two days before its deployment.
            let deployment = c / CHANGES_PER_DEPLOYMENT;
            let authored =
                start + deployment as i64 * step - (splitmix(&mut rng) % (2 * DAY as u64)) as i64;
            let revert = c % 997 == 0;
            builder.commit_parts(&name, sha_of(r, c), &parents, Timestamp(authored), revert);
        }
        for d in 0..deployments_per_repo {
            let head = (d + 1) * CHANGES_PER_DEPLOYMENT - 1;
            // 2% rollbacks to the deployment before the previous one.
            let sha = if d >= 2 && splitmix(&mut rng) % 50 == 0 {
                sha_of(r, (d - 1) * CHANGES_PER_DEPLOYMENT - 1)
            } else {
                sha_of(r, head)
            };
            let at = Timestamp(start + d as i64 * step + 600);
            builder.deployment(Deployment {
                source: DeploymentSource::GithubDeployments,
                repository: name.clone(),
                id: d,
                environment: production.clone(),
                sha,
                created_at: at,
                outcome: DeploymentOutcome::Succeeded { at },
            });
        }
        for i in 0..INCIDENTS_PER_REPO {
            let created = start + (splitmix(&mut rng) % year as u64) as i64;
            let closed = (i % 5 != 0)
                .then(|| Timestamp(created + (splitmix(&mut rng) % (3 * DAY as u64)) as i64));
            let root_cause = (i % 2 == 0).then(|| {
                let commit = splitmix(&mut rng) % commits;
                ShaPrefix::parse(&sha_of(r, commit).to_string()[..7]).unwrap()
            });
            builder.incident(Incident {
                source: dora_collector::domain::IncidentSource::GithubIssues,
                repository: name.clone(),
                number: i + 1,
                created_at: Timestamp(created),
                closed_at: closed,
                labels: vec!["incident".to_owned()],
                root_cause,
            });
        }
        for p in 0..5 {
            let commit = splitmix(&mut rng) % commits;
            builder.pull_request(PullRequest {
                repository: name.clone(),
                number: 10_000 + p,
                merged_at: Some(Timestamp(start)),
                merge_commit_sha: Some(sha_of(r, commit)),
                labels: vec!["hotfix".to_owned()],
                commits: vec![],
                first_commit_at: None,
                created_at: None,
                first_review_at: None,
            });
        }
        builder.finish_repository(&name);
    }
    builder.build()
}

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user + system) this thread has used, in seconds, from
/// `/proc/thread-self/stat` (10 ms resolution). On a shared machine wall time
/// includes waiting for a core; CPU time is what the engine itself costs.
pub fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
