//! Test helpers: a small scenario language for building engine inputs by hand.
#![allow(dead_code)]

use dora_collector::domain::*;
use dora_collector::dora::{self, EngineConfig, Events, EventsBuilder, Snapshot, Window};

pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;
/// 2026-01-01T00:00:00Z: an arbitrary epoch for scenarios.
pub const T0: i64 = 1_767_225_600;

pub fn at(seconds_after_t0: i64) -> Timestamp {
    Timestamp(T0 + seconds_after_t0)
}

pub fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

pub fn env(name: &str) -> Environment {
    Environment::parse(name).unwrap()
}

/// A deterministic, unique sha for a small number.
pub fn sha(n: u32) -> CommitSha {
    let mut bytes = [0u8; 20];
    // The scrambled part first, so that short prefixes of different shas differ.
    bytes[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    bytes[4..8].copy_from_slice(&n.to_be_bytes());
    CommitSha::from_bytes(bytes)
}

pub struct Scenario {
    pub builder: EventsBuilder,
    pub config: EngineConfig,
    next_id: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::new()
    }
}

impl Scenario {
    pub fn new() -> Self {
        Scenario {
            builder: Events::builder(),
            config: EngineConfig::default(),
            next_id: 1,
        }
    }

    pub fn windows(mut self, days: &[i64]) -> Self {
        self.config.windows = days.iter().map(|d| Window::days(*d)).collect();
        self
    }

    pub fn team(mut self, repository: &str, team: &str) -> Self {
        self.config
            .teams
            .insert(repo(repository), Team::parse(team).unwrap());
        self
    }

    /// A commit `n` with parents, authored at `authored` (seconds after T0).
    pub fn commit(mut self, repository: &str, n: u32, parents: &[u32], authored: i64) -> Self {
        self.commit_msg_mut(repository, n, parents, authored, "change");
        self
    }

    pub fn commit_msg(
        mut self,
        repository: &str,
        n: u32,
        parents: &[u32],
        authored: i64,
        message: &str,
    ) -> Self {
        self.commit_msg_mut(repository, n, parents, authored, message);
        self
    }

    fn commit_msg_mut(
        &mut self,
        repository: &str,
        n: u32,
        parents: &[u32],
        authored: i64,
        message: &str,
    ) {
        let commit = Commit::new(
            sha(n),
            parents.iter().map(|p| sha(*p)).collect(),
            at(authored),
            message,
        );
        self.builder.commit(&repo(repository), &commit);
    }

    /// A linear chain of commits `from..=to`, each the parent of the next, authored
    /// at `authored` seconds after T0, the first one's parent `parent`.
    pub fn chain(
        mut self,
        repository: &str,
        from: u32,
        to: u32,
        parent: Option<u32>,
        authored: i64,
    ) -> Self {
        for n in from..=to {
            let parents: Vec<u32> = if n == from {
                parent.into_iter().collect()
            } else {
                vec![n - 1]
            };
            self.commit_msg_mut(repository, n, &parents, authored, "change");
        }
        self
    }

    pub fn deploy(self, repository: &str, environment: &str, commit: u32, deployed: i64) -> Self {
        self.deployment(
            repository,
            environment,
            commit,
            DeploymentOutcome::Succeeded { at: at(deployed) },
        )
    }

    pub fn failed_attempt(
        self,
        repository: &str,
        environment: &str,
        commit: u32,
        when: i64,
    ) -> Self {
        self.deployment(
            repository,
            environment,
            commit,
            DeploymentOutcome::Failed { at: at(when) },
        )
    }

    pub fn deployment(
        mut self,
        repository: &str,
        environment: &str,
        commit: u32,
        outcome: DeploymentOutcome,
    ) -> Self {
        let id = self.next_id;
        self.next_id += 1;
        self.builder.deployment(Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: repo(repository),
            id,
            environment: env(environment),
            sha: sha(commit),
            created_at: at(0),
            outcome,
        });
        self
    }

    pub fn compare(
        mut self,
        repository: &str,
        base: u32,
        head: u32,
        status: CompareStatus,
        commits: &[u32],
    ) -> Self {
        self.builder.compare(
            &repo(repository),
            Compare {
                base: sha(base),
                head: sha(head),
                status,
                commits: commits.iter().map(|c| sha(*c)).collect(),
            },
        );
        self
    }

    pub fn incident(
        self,
        repository: &str,
        number: u64,
        created: i64,
        closed: Option<i64>,
    ) -> Self {
        self.incident_full(repository, number, created, closed, None, &["incident"])
    }

    pub fn incident_with_cause(
        self,
        repository: &str,
        number: u64,
        created: i64,
        closed: Option<i64>,
        cause: &str,
    ) -> Self {
        self.incident_full(
            repository,
            number,
            created,
            closed,
            Some(cause),
            &["incident"],
        )
    }

    pub fn incident_full(
        mut self,
        repository: &str,
        number: u64,
        created: i64,
        closed: Option<i64>,
        cause: Option<&str>,
        labels: &[&str],
    ) -> Self {
        self.builder.incident(Incident {
            source: dora_collector::domain::IncidentSource::GithubIssues,
            repository: repo(repository),
            number,
            created_at: at(created),
            closed_at: closed.map(at),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            root_cause: cause.map(|c| ShaPrefix::parse(c).unwrap()),
        });
        self
    }

    /// An incident reported against `team` (pushed: no label needed).
    pub fn team_incident(
        mut self,
        team: &str,
        number: u64,
        created: i64,
        closed: Option<i64>,
        cause: Option<&str>,
    ) -> Self {
        self.builder.scoped_incident(ScopedIncident {
            source: dora_collector::domain::IncidentSource::Push,
            scope: IncidentScope::Team(Team::parse(team).unwrap()),
            number,
            created_at: at(created),
            closed_at: closed.map(at),
            root_cause: cause.map(|c| ShaPrefix::parse(c).unwrap()),
        });
        self
    }

    /// An incident of a PagerDuty service mapped to `repositories`.
    pub fn repositories_incident(
        mut self,
        repositories: &[&str],
        number: u64,
        created: i64,
        closed: Option<i64>,
        cause: Option<&str>,
    ) -> Self {
        self.builder.scoped_incident(ScopedIncident {
            source: dora_collector::domain::IncidentSource::PagerDuty,
            scope: IncidentScope::repositories(repositories.iter().map(|r| repo(r)).collect())
                .unwrap(),
            number,
            created_at: at(created),
            closed_at: closed.map(at),
            root_cause: cause.map(|c| ShaPrefix::parse(c).unwrap()),
        });
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn pull_request(
        mut self,
        repository: &str,
        number: u64,
        merged: i64,
        merge_commit: u32,
        commits: &[u32],
        first_commit_at: i64,
        labels: &[&str],
    ) -> Self {
        self.builder.pull_request(PullRequest {
            repository: repo(repository),
            number,
            merged_at: Some(at(merged)),
            merge_commit_sha: Some(sha(merge_commit)),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            commits: commits.iter().map(|c| sha(*c)).collect(),
            first_commit_at: Some(at(first_commit_at)),
            created_at: None,
            first_review_at: None,
        });
        self
    }

    /// A merged pull request with its stage times: first commit, opened and
    /// first review (each `None` when unknown), merged, no labels.
    #[allow(clippy::too_many_arguments)]
    pub fn pull_request_with_stages(
        mut self,
        repository: &str,
        number: u64,
        commits: &[u32],
        first_commit_at: Option<i64>,
        opened: Option<i64>,
        reviewed: Option<i64>,
        merged: i64,
    ) -> Self {
        self.builder.pull_request(PullRequest {
            repository: repo(repository),
            number,
            merged_at: Some(at(merged)),
            merge_commit_sha: None,
            labels: Vec::new(),
            commits: commits.iter().map(|c| sha(*c)).collect(),
            first_commit_at: first_commit_at.map(at),
            created_at: opened.map(at),
            first_review_at: reviewed.map(at),
        });
        self
    }

    pub fn with_config(mut self, change: impl FnOnce(&mut EngineConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Evaluates at `now` seconds after T0.
    pub fn compute(self, now: i64) -> Snapshot {
        let events = self.builder.build();
        dora::compute(&events, &self.config, at(now))
    }
}

/// The windowed metrics of `repository` in `environment` for the window labelled `window`.
pub fn scope<'a>(
    snapshot: &'a Snapshot,
    repository: &str,
    environment: &str,
    window: &str,
) -> &'a dora::WindowedMetrics {
    let entry = snapshot
        .repositories
        .iter()
        .find(|r| r.repository.as_str() == repository && r.environment.matches(environment))
        .unwrap_or_else(|| panic!("no scope {repository}/{environment}"));
    entry
        .windows
        .iter()
        .find(|w| w.window.label == window)
        .unwrap_or_else(|| panic!("no window {window}"))
}

pub fn totals<'a>(snapshot: &'a Snapshot, repository: &str, environment: &str) -> &'a dora::Totals {
    &snapshot
        .repositories
        .iter()
        .find(|r| r.repository.as_str() == repository && r.environment.matches(environment))
        .unwrap()
        .totals
}

pub fn assert_close(got: Option<f64>, expected: Option<f64>, what: &str) {
    match (got, expected) {
        (Some(g), Some(e)) => assert!((g - e).abs() < 1e-6, "{what}: got {g}, expected {e}"),
        _ => assert_eq!(got, expected, "{what}"),
    }
}
