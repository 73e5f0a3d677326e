//! The synthetic organisation history the report and store benchmarks write
//! through `Store::apply`: one batch per repository and year, about 10 changes per
//! deployment (mostly linear, a merge every tenth commit), 2% rollbacks, 50
//! incidents per repository (half naming a root cause), a few hotfix pull
//! requests.

use dora_collector::domain::*;
use dora_collector::store::{CommitRecord, SyncBatch};

pub const CHANGES_PER_DEPLOYMENT: u64 = 10;
pub const INCIDENTS_PER_REPO: u64 = 50;
pub const DAY: i64 = 86_400;
/// The end of the history: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;

#[path = "shas.rs"]
mod shas;
use shas::{sha_of, splitmix};

pub fn repo_name(r: u64) -> RepoName {
    RepoName::parse(&format!("acme/service-{r:04}")).unwrap()
}

/// One repository's year of history as one batch.
pub fn batch(r: u64, deployments: u64, rng: &mut u64) -> SyncBatch {
    let name = repo_name(r);
    let production = Environment::parse("production").unwrap();
    let year = 365 * DAY;
    let start = NOW - year;
    let step = year / deployments as i64;
    let commits = deployments * CHANGES_PER_DEPLOYMENT;
    let mut batch = SyncBatch::new(name.clone());
    for c in 0..commits {
        let mut parents = Vec::with_capacity(2);
        if c > 0 {
            parents.push(sha_of(r, c - 1));
        }
        if c % 10 == 9 && c >= 5 {
            parents.push(sha_of(r, c - 5));
        }
        let deployment = c / CHANGES_PER_DEPLOYMENT;
        let authored = start + deployment as i64 * step - (splitmix(rng) % (2 * DAY as u64)) as i64;
        let message = if c % 997 == 0 {
            format!("Revert \"change {c}\"")
        } else {
            format!("Change {c} of service {r}")
        };
        batch.commits.push(CommitRecord::new(
            sha_of(r, c),
            parents,
            Timestamp(authored),
            &message,
        ));
    }
    for d in 0..deployments {
        let head = (d + 1) * CHANGES_PER_DEPLOYMENT - 1;
        let sha = if d >= 2 && splitmix(rng) % 50 == 0 {
            sha_of(r, (d - 1) * CHANGES_PER_DEPLOYMENT - 1)
        } else {
            sha_of(r, head)
        };
        let at = Timestamp(start + d as i64 * step + 600);
        batch.deployments.push(Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: name.clone(),
            id: d + 1,
            environment: production.clone(),
            sha,
            created_at: at,
            outcome: DeploymentOutcome::Succeeded { at },
        });
    }
    for i in 0..INCIDENTS_PER_REPO {
        let created = start + (splitmix(rng) % year as u64) as i64;
        let closed =
            (i % 5 != 0).then(|| Timestamp(created + (splitmix(rng) % (3 * DAY as u64)) as i64));
        let root_cause = (i % 2 == 0).then(|| {
            let commit = splitmix(rng) % commits;
            ShaPrefix::parse(&sha_of(r, commit).to_string()[..7]).unwrap()
        });
        batch.incidents.push(Incident {
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
        let commit = splitmix(rng) % commits;
        batch.pull_requests.push(PullRequest {
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
    batch
}
