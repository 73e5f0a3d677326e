//! `OrgSpec`: the knobs of the synthetic organisation generator, with defaults that
//! give a believable, mid-sized engineering organisation.
//!
//! Rates are averages; the generator draws from Poisson processes and Bernoulli
//! trials around them, so a small organisation may show none of a rare feature.
//! Nothing here generates anything: see [`crate::Org::generate`].

use crate::domain::Timestamp;

/// 2025-01-15T12:00:00Z: the default fixed `now`, so that default history is the
/// same on every machine and every day.
pub const DEFAULT_NOW: Timestamp = Timestamp(1_736_942_400);

/// GitHub Actions deploy workflow file name used by workflow-run repositories.
pub const DEPLOY_WORKFLOW_FILE: &str = "deploy.yml";

/// The production environment name the generator uses.
pub const PRODUCTION: &str = "production";

/// The non-production environment name the generator uses.
pub const STAGING: &str = "staging";

/// The knobs of [`crate::Org::generate`]. Every field has a documented default
/// ([`OrgSpec::default`]); tests usually start from [`OrgSpec::small`].
#[derive(Debug, Clone, PartialEq)]
pub struct OrgSpec {
    /// Seed of the pseudo-random generator: the same spec always gives the same org.
    pub seed: u64,
    /// The organisation login (`owner` in `/repos/{owner}/{repo}`).
    pub owner: String,
    /// Number of repositories.
    pub repositories: usize,
    /// Days of history before `now` (deployments, commits, issues).
    pub days: u32,
    /// The end of history; nothing generated is later than this.
    pub now: Timestamp,
    /// Average production deployment attempts per repository per day.
    pub deployments_per_day: f64,
    /// Average commits reaching `main` between two production deployments.
    pub commits_per_deployment: f64,
    /// Share of deployment attempts whose statuses end in `failure` or `error`.
    pub failure_rate: f64,
    /// Share of production deployments that redeploy an earlier, already deployed sha.
    pub rollback_rate: f64,
    /// Share of successful production deployments followed by an `incident` issue.
    pub incident_rate: f64,
    /// Share of incidents whose body names a root cause (`root cause: <sha>`).
    pub root_cause_share: f64,
    /// Share of merged pull requests labelled `hotfix`.
    pub hotfix_rate: f64,
    /// Share of changes landing on `main` that revert an earlier commit.
    pub revert_rate: f64,
    /// Share of pull requests merged with a merge commit (two parents); the rest are
    /// squash-merged (one new commit on `main`).
    pub merge_commit_share: f64,
    /// Average plain (non-incident) issues opened per repository per day.
    pub issues_per_day: f64,
    /// Number of repositories (the last ones) whose deployments are GitHub Actions
    /// runs of [`DEPLOY_WORKFLOW_FILE`] instead of Deployments-API deployments.
    pub workflow_run_repositories: usize,
    /// Number of teams; repositories are spread over them round-robin.
    pub teams: usize,
    /// Average `staging` deployment attempts per Deployments-API repository per day
    /// (0 for none).
    pub staging_deployments_per_day: f64,
    /// Number of repositories whose latest deployment is still pending (its latest
    /// status is `queued` or `in_progress`), or whose latest run is in progress:
    /// half of them (rounded up) the first repositories, the rest the last ones.
    pub pending_deployments: usize,
    /// Share of deployed commits whose author date lies after their deploy time
    /// (clock skew; the engine must drop such negative lead times).
    pub clock_skew_rate: f64,
    /// Share of pull-request landings that are two stacked pull requests: the
    /// lower one squash-merged, then the upper one (branched from the lower one's
    /// head, so it lists the lower one's commits too) merged with a merge commit
    /// — commits in two merged pull requests. 0 (the default) draws nothing, so
    /// organisations generated without it stay the same.
    pub stacked_pull_share: f64,
    /// Which block of GitHub ids the organisation's objects take (0, the
    /// default, keeps the ids of earlier versions): organisations served together
    /// ([`crate::SimServer::start_orgs`]) need distinct blocks, as GitHub's ids
    /// are unique across organisations.
    pub id_block: u64,
}

impl Default for OrgSpec {
    /// A 12-repository organisation with 120 days of history: what `demo` shows.
    fn default() -> Self {
        OrgSpec {
            seed: 42,
            owner: "acme".to_owned(),
            repositories: 12,
            days: 120,
            now: DEFAULT_NOW,
            deployments_per_day: 1.5,
            commits_per_deployment: 3.0,
            failure_rate: 0.08,
            rollback_rate: 0.04,
            incident_rate: 0.08,
            root_cause_share: 0.6,
            hotfix_rate: 0.05,
            revert_rate: 0.02,
            merge_commit_share: 0.3,
            issues_per_day: 0.3,
            workflow_run_repositories: 2,
            teams: 4,
            staging_deployments_per_day: 2.0,
            pending_deployments: 2,
            clock_skew_rate: 0.005,
            stacked_pull_share: 0.0,
            id_block: 0,
        }
    }
}

impl OrgSpec {
    /// A small organisation for fast tests: 4 repositories (one on workflow runs),
    /// 30 days, with every feature frequent enough to appear.
    pub fn small(seed: u64) -> Self {
        OrgSpec {
            seed,
            repositories: 4,
            days: 30,
            deployments_per_day: 2.0,
            failure_rate: 0.12,
            rollback_rate: 0.08,
            incident_rate: 0.2,
            hotfix_rate: 0.1,
            revert_rate: 0.05,
            issues_per_day: 0.4,
            workflow_run_repositories: 1,
            teams: 2,
            pending_deployments: 2,
            clock_skew_rate: 0.03,
            ..OrgSpec::default()
        }
    }

    /// The first instant of generated activity: `now - days`.
    pub fn start(&self) -> Timestamp {
        Timestamp(self.now.0 - i64::from(self.days) * SECONDS_PER_DAY)
    }
}

/// Seconds in a day.
pub const SECONDS_PER_DAY: i64 = 86_400;
