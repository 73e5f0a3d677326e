//! The engine against the reference implementation (`tests/reference/`): simulated
//! organisations are converted into the events the collector would store, run
//! through `dora::compute` and `exporter::render`, parsed back, and every DORA
//! series is compared with what the reference computes from the same organisation.
//!
//! Also here: the reference checked against hand-computed numbers on small
//! hand-built organisations, and its Prometheus parser and comparison on their own.

use crate::reference;

use dora_collector::domain::{
    Commit, Compare, Deployment, DeploymentOutcome, DeploymentSource, Environment, Incident,
    PullRequest, RepoName, StatusState, Team, Timestamp,
};
use dora_collector::dora::{self, EngineConfig, Events, LeadTimeStart, Window};
use dora_collector::exporter::{self, HealthSnapshot};
use dora_collector::sim::{MergeStyle, NewDeployment, NewOutcome, NewPull, Org, OrgSpec, SimRepo};
use dora_collector::sources::github::rules::{
    outcome_from_statuses, outcome_from_workflow_run, parse_root_cause,
};
use reference::definitions::Attribution;
use reference::prom::SeriesKey;
use reference::{DeploymentsFrom, Params, RepoParams, WindowParam};
use std::collections::BTreeMap;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------
// The collector's view: the organisation converted into stored events.
// ---------------------------------------------------------------------------

/// The engine configuration the collector derives from `params`.
fn engine_config(params: &Params) -> EngineConfig {
    EngineConfig {
        windows: params
            .windows
            .iter()
            .map(|w| Window {
                label: w.label.clone(),
                seconds: w.seconds,
            })
            .collect(),
        production_environments: params
            .production_environments
            .iter()
            .map(|e| Environment::parse(e).unwrap())
            .collect(),
        production_by_repository: BTreeMap::new(),
        incident_labels: params.incident_labels.clone(),
        rework_labels: params.rework_labels.clone(),
        lead_time_start: params.lead_time_start,
        rollback_is_failure: params.rollback_is_failure,
        thresholds: params.thresholds.clone(),
        teams: params
            .repositories
            .iter()
            .map(|r| {
                let team = r
                    .team
                    .as_deref()
                    .map_or_else(Team::default, |t| Team::parse(t).unwrap());
                (RepoName::parse(&r.name).unwrap(), team)
            })
            .collect(),
    }
}

fn sim_repo<'a>(org: &'a Org, name: &str) -> Option<&'a SimRepo> {
    (0..org.repos.len())
        .find(|i| org.full_name(*i) == name)
        .map(|i| &org.repos[i])
}

/// The deployments of one repository as the collector's GitHub client would store
/// them: outcomes by the domain rules, the lookback from the first sync, and one
/// older successful deployment per environment as the base.
fn stored_deployments(
    repo: &SimRepo,
    config: &RepoParams,
    params: &Params,
    now: i64,
) -> Vec<Deployment> {
    let name = RepoName::parse(&config.name).unwrap();
    let all: Vec<Deployment> = match &config.deployments {
        DeploymentsFrom::DeploymentsApi => repo
            .deployments
            .iter()
            .map(|d| {
                let statuses: Vec<(StatusState, Timestamp)> =
                    d.statuses.iter().map(|s| (s.state, s.created_at)).collect();
                Deployment {
                    source: DeploymentSource::GithubDeployments,
                    repository: name.clone(),
                    id: d.id,
                    environment: Environment::parse(&d.environment).unwrap(),
                    sha: d.sha,
                    created_at: d.created_at,
                    outcome: outcome_from_statuses(&statuses),
                }
            })
            .collect(),
        DeploymentsFrom::WorkflowRuns {
            workflow,
            branch,
            environment,
        } => match repo.workflow() {
            Some(w) if w.file == *workflow => repo
                .workflow_runs
                .iter()
                .filter(|r| &*r.head_branch == branch.as_str())
                .map(|r| Deployment {
                    source: DeploymentSource::GithubWorkflowRuns,
                    repository: name.clone(),
                    id: r.id,
                    environment: Environment::parse(environment).unwrap(),
                    sha: r.head_sha,
                    created_at: r.created_at,
                    outcome: outcome_from_workflow_run(
                        r.status.as_str(),
                        r.conclusion.map(|c| c.as_str()),
                        r.updated_at,
                    ),
                })
                .collect(),
            _ => Vec::new(),
        },
        // This comparison builds GitHub's events only (GitLab has its own end
        // to end tests against the reference, `e2e_gitlab.rs`).
        DeploymentsFrom::GitlabDeployments | DeploymentsFrom::GitlabPipelines { .. } => Vec::new(),
        // Pushed deployments are not the simulator's (`reference::push`).
        DeploymentsFrom::Push => Vec::new(),
    };
    let first_sync = params.first_sync_at.map_or(now, |t| t.0);
    let cutoff = first_sync - params.lookback_seconds;
    let mut stored: Vec<Deployment> = all
        .iter()
        .filter(|d| d.created_at.0 >= cutoff)
        .cloned()
        .collect();
    let mut bases: BTreeMap<String, &Deployment> = BTreeMap::new();
    for d in all.iter().filter(|d| d.created_at.0 < cutoff) {
        let succeeded =
            matches!(d.outcome, DeploymentOutcome::Succeeded { at } if at.0 <= first_sync);
        if !succeeded {
            continue;
        }
        let slot = bases.entry(d.environment.as_str().to_owned()).or_insert(d);
        if (d.created_at, d.id) > (slot.created_at, slot.id) {
            *slot = d;
        }
    }
    stored.extend(bases.into_values().cloned());
    stored
}

/// The store's content after syncing `org`: deployments (see above), every commit
/// with its parents, every issue and every pull request; with `compares`, also the
/// compare result of each pair of consecutive successful production deployments,
/// as a collector that calls the compare API stores it.
fn collector_events(org: &Org, params: &Params, now: i64, compares: bool) -> Events {
    let mut builder = Events::builder();
    for config in &params.repositories {
        let Some(repo) = sim_repo(org, &config.name) else {
            continue;
        };
        let name = RepoName::parse(&config.name).unwrap();
        let deployments = stored_deployments(repo, config, params, now);
        for (i, c) in repo.commits.iter().enumerate() {
            let parents = repo.parent_shas(i as u32);
            let message = repo.commit_message(i as u32);
            builder.commit(&name, &Commit::new(c.sha, parents, c.author_date, &message));
        }
        for issue in &repo.issues {
            builder.incident(Incident {
                source: dora_collector::domain::IncidentSource::GithubIssues,
                repository: name.clone(),
                number: issue.number,
                created_at: issue.created_at,
                closed_at: issue.closed_at,
                labels: issue.labels.clone(),
                root_cause: issue.body.as_deref().and_then(parse_root_cause),
            });
        }
        for pull in &repo.pulls {
            builder.pull_request(PullRequest {
                repository: name.clone(),
                number: pull.number,
                merged_at: pull.merged_at,
                merge_commit_sha: pull.merge_commit.map(|m| repo.commits[m as usize].sha),
                labels: pull.labels.clone(),
                commits: pull
                    .commits
                    .clone()
                    .map(|c| repo.commits[c as usize].sha)
                    .collect(),
                first_commit_at: pull
                    .commits
                    .clone()
                    .map(|c| repo.commits[c as usize].author_date)
                    .min(),
                created_at: Some(pull.created_at),
                first_review_at: pull.first_review_at,
            });
        }
        if compares {
            for environment in &params.production_environments {
                let mut successes: Vec<(Timestamp, DeploymentSource, u64, u32)> = deployments
                    .iter()
                    .filter(|d| d.environment.matches(environment))
                    .filter_map(|d| match d.outcome {
                        DeploymentOutcome::Succeeded { at } if at.0 <= now => {
                            Some((at, d.source, d.id, repo.commit_index(&d.sha)?))
                        }
                        _ => None,
                    })
                    .collect();
                successes.sort();
                for pair in successes.windows(2) {
                    let (base, head) = (pair[0].3, pair[1].3);
                    let comparison = repo.compare(base, head);
                    builder.compare(
                        &name,
                        Compare {
                            base: repo.commits[base as usize].sha,
                            head: repo.commits[head as usize].sha,
                            status: comparison.status,
                            commits: comparison
                                .ahead
                                .iter()
                                .map(|c| repo.commits[*c as usize].sha)
                                .collect(),
                        },
                    );
                }
            }
        }
        for deployment in deployments {
            builder.deployment(deployment);
        }
    }
    builder.build()
}

/// The engine's `/metrics` text for `org` at `now`.
fn engine_scrape(org: &Org, params: &Params, now: Timestamp, compares: bool) -> String {
    let events = collector_events(org, params, now.0, compares);
    let snapshot = dora::compute(&events, &engine_config(params), now);
    exporter::render(Some(&snapshot), &HealthSnapshot::default(), "test").unwrap()
}

/// Compares the engine with the reference; returns the reference's analysis.
fn check(
    org: &Org,
    params: &Params,
    now: Timestamp,
    compares: bool,
) -> Vec<reference::RepoAnalysis> {
    let text = engine_scrape(org, params, now, compares);
    let expected = reference::expected(org, params, now);
    reference::assert_matches(&text, &expected);
    reference::analyse(org, params, now)
}

// ---------------------------------------------------------------------------
// What the scenarios contain, so that a green comparison means something.
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct Coverage {
    deployments: usize,
    lead_times: usize,
    negative_lead_times: usize,
    rollbacks: usize,
    failed_by_root_cause: usize,
    failed_by_time: usize,
    failed_by_rollback_only: usize,
    unrecovered: usize,
    rework_revert: usize,
    rework_labelled_pull: usize,
    unmatched_root_causes: usize,
    unattributed: usize,
    open_incidents: usize,
    attempt_failures: u64,
    second_environment_deployments: usize,
    /// Stage samples, per stage (coding, pickup, review, deploy).
    stages: [usize; 4],
}

impl Coverage {
    fn add(&mut self, repos: &[reference::RepoAnalysis]) {
        for repo in repos {
            for (e, env) in repo.environments.iter().enumerate() {
                self.attempt_failures += env.attempt_failures;
                for d in &env.deployments {
                    self.deployments += 1;
                    self.second_environment_deployments += usize::from(e > 0);
                    self.lead_times += d.lead_times.len();
                    for (count, samples) in self.stages.iter_mut().zip(&d.stages) {
                        *count += samples.len();
                    }
                    self.negative_lead_times += d.negative_lead_times;
                    self.rollbacks += usize::from(d.rework.rollback);
                    self.rework_revert += usize::from(d.rework.revert);
                    self.rework_labelled_pull += usize::from(d.rework.labelled_pull);
                    self.unrecovered += usize::from(d.failed && d.recovered_at.is_none());
                    self.failed_by_rollback_only += usize::from(d.failed && d.incidents.is_empty());
                }
            }
            for incident in &repo.incidents {
                self.open_incidents += usize::from(incident.closed_at.is_none());
                self.unmatched_root_causes += usize::from(incident.unmatched_root_cause);
                match incident.attribution {
                    Attribution::RootCause(_) => self.failed_by_root_cause += 1,
                    Attribution::Time(..) => self.failed_by_time += 1,
                    Attribution::Nothing => self.unattributed += 1,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The engine against the reference on generated organisations.
// ---------------------------------------------------------------------------

/// Default knobs (one workflow-run repository, rollbacks, failures, incidents,
/// hotfixes, reverts, skew), evaluated at the simulated present.
#[test]
fn small_organisations_with_default_configuration() {
    let mut coverage = Coverage::default();
    for seed in [1, 2, 3] {
        let org = Org::generate(&OrgSpec::small(seed));
        let params = Params::for_org(&org);
        coverage.add(&check(&org, &params, org.now, false));
    }
    assert!(coverage.deployments > 100, "{coverage:?}");
    assert!(coverage.lead_times > 200, "{coverage:?}");
    assert!(coverage.rollbacks > 0, "{coverage:?}");
    assert!(coverage.failed_by_root_cause > 0, "{coverage:?}");
    assert!(coverage.failed_by_time > 0, "{coverage:?}");
    assert!(coverage.open_incidents > 0, "{coverage:?}");
    assert!(coverage.attempt_failures > 0, "{coverage:?}");
}

/// Every rule of the definitions appears across these scenarios (failures,
/// rollbacks, rework of each kind, skew, unmatched root causes, open incidents).
#[test]
fn busy_organisations_exercise_every_rule() {
    let mut coverage = Coverage::default();
    for seed in [11, 12] {
        let spec = OrgSpec {
            days: 45,
            failure_rate: 0.2,
            rollback_rate: 0.15,
            incident_rate: 0.35,
            root_cause_share: 0.7,
            hotfix_rate: 0.3,
            revert_rate: 0.15,
            clock_skew_rate: 0.1,
            workflow_run_repositories: 2,
            ..OrgSpec::small(seed)
        };
        let org = Org::generate(&spec);
        let params = Params::for_org(&org);
        coverage.add(&check(&org, &params, org.now, false));
    }
    assert!(coverage.negative_lead_times > 0, "{coverage:?}");
    assert!(coverage.rework_revert > 0, "{coverage:?}");
    assert!(coverage.rework_labelled_pull > 0, "{coverage:?}");
    assert!(coverage.failed_by_rollback_only > 0, "{coverage:?}");
    assert!(coverage.unrecovered > 0, "{coverage:?}");
    assert!(coverage.unmatched_root_causes > 0, "{coverage:?}");
}

/// Two production environments (`staging` configured as `Staging`: compared
/// case-insensitively, labelled as configured), incidents attributed across both.
#[test]
fn two_production_environments() {
    let org = Org::generate(&OrgSpec {
        incident_rate: 0.3,
        ..OrgSpec::small(21)
    });
    let mut params = Params::for_org(&org);
    params.production_environments = vec!["production".to_owned(), "Staging".to_owned()];
    let mut coverage = Coverage::default();
    coverage.add(&check(&org, &params, org.now, false));
    assert!(coverage.second_environment_deployments > 20, "{coverage:?}");
    let text = engine_scrape(&org, &params, org.now, false);
    assert!(text.contains("environment=\"Staging\""));
}

/// A lookback shorter than the history: older deployments are not in the store
/// except the base, so the cumulative counters count less than the organisation
/// holds. Rollbacks do not fail deployments here.
#[test]
fn short_lookback_and_rollbacks_that_are_not_failures() {
    let org = Org::generate(&OrgSpec {
        days: 40,
        rollback_rate: 0.2,
        ..OrgSpec::small(31)
    });
    let mut params = Params::for_org(&org);
    params.lookback_seconds = 10 * DAY;
    params.windows = vec![
        WindowParam::days(1),
        WindowParam::days(7),
        WindowParam::days(10),
    ];
    params.rollback_is_failure = false;
    let repos = check(&org, &params, org.now, false);
    let mut coverage = Coverage::default();
    coverage.add(&repos);
    assert!(coverage.rollbacks > 0, "{coverage:?}");
    assert_eq!(coverage.failed_by_rollback_only, 0, "{coverage:?}");
    // The store starts with the base: one deployment older than the lookback.
    let cutoff = org.now.0 - params.lookback_seconds;
    let first = &repos[0].environments[0].deployments[0];
    assert!(first.deployed_at < cutoff && first.without_base);
    let all_successes = org.repos[0]
        .deployments
        .iter()
        .filter(|d| d.statuses.iter().any(|s| s.state == StatusState::Success))
        .filter(|d| &*d.environment == "production")
        .count();
    assert!(repos[0].environments[0].deployments.len() < all_successes / 2);
}

/// Lead time from the first commit of the pull request, with explicit compare
/// results in the store (the engine's other change-set path).
#[test]
fn lead_time_from_the_first_pull_request_commit_with_compares() {
    for seed in [41, 42] {
        let org = Org::generate(&OrgSpec {
            merge_commit_share: 0.6,
            ..OrgSpec::small(seed)
        });
        let mut params = Params::for_org(&org);
        params.lead_time_start = LeadTimeStart::PrFirstCommit;
        check(&org, &params, org.now, true);
    }
}

/// Lead-time stages (computation.md § Lead-time stages) under both PR-based
/// starts, at the present and a week before it: every stage has samples, and
/// the unreviewed pull requests (hotfixes, one in five) leave fewer pickup and
/// review samples than deploy samples.
#[test]
fn lead_time_stages_on_generated_organisations() {
    for (seed, start) in [
        (61, LeadTimeStart::PrFirstCommit),
        (62, LeadTimeStart::PrMerged),
    ] {
        let org = Org::generate(&OrgSpec {
            merge_commit_share: 0.5,
            clock_skew_rate: 0.05,
            ..OrgSpec::small(seed)
        });
        let mut params = Params::for_org(&org);
        params.lead_time_start = start;
        for now in [org.now, Timestamp(org.now.0 - 7 * 86_400)] {
            let mut coverage = Coverage::default();
            coverage.add(&check(&org, &params, now, false));
            let [coding, pickup, review, deploy] = coverage.stages;
            assert!(coding > 0 && pickup > 0 && review > 0, "{coverage:?}");
            assert!(pickup < deploy && review < deploy, "{coverage:?}");
        }
    }
}

/// Lead time from the merge, lots of clock skew, root causes always or never named.
#[test]
fn lead_time_from_the_merge_and_root_cause_extremes() {
    for (seed, share) in [(51, 1.0), (52, 0.0)] {
        let org = Org::generate(&OrgSpec {
            clock_skew_rate: 0.2,
            root_cause_share: share,
            incident_rate: 0.3,
            ..OrgSpec::small(seed)
        });
        let mut params = Params::for_org(&org);
        params.lead_time_start = LeadTimeStart::PrMerged;
        let mut coverage = Coverage::default();
        coverage.add(&check(&org, &params, org.now, false));
        if share == 0.0 {
            assert_eq!(coverage.failed_by_root_cause, 0, "{coverage:?}");
        } else {
            assert!(coverage.failed_by_root_cause > 0, "{coverage:?}");
        }
    }
}

/// Evaluated before the simulated present (days before, or a second before a
/// deployment succeeds or an incident closes): later deployments, incidents and
/// closes do not exist yet.
#[test]
fn evaluation_before_the_present_ignores_later_events() {
    let org = Org::generate(&OrgSpec {
        incident_rate: 0.3,
        ..OrgSpec::small(61)
    });
    let params = Params {
        first_sync_at: Some(org.now),
        ..Params::for_org(&org)
    };
    let mut times: Vec<i64> = [1, 4, 9].map(|days| org.now.0 - days * DAY).to_vec();
    // A second before a deployment succeeds, and before an incident closes: the
    // deployment is still running, the incident still open.
    let repo = &org.repos[0];
    let successes = repo
        .deployments
        .iter()
        .filter_map(|d| d.statuses.iter().find(|s| s.state == StatusState::Success));
    times.extend(successes.step_by(7).take(3).map(|s| s.created_at.0 - 1));
    let closes = repo
        .issues
        .iter()
        .filter(|i| i.labels.iter().any(|l| l == "incident"))
        .filter_map(|i| i.closed_at);
    times.extend(closes.take(3).map(|c| c.0 - 1));
    assert_eq!(times.len(), 9);
    for now in times {
        check(&org, &params, Timestamp(now), false);
    }
}

/// Incidents are what the configured labels say: here only `sev1` issues (the
/// simulator adds a severity label to every incident); teams from configuration,
/// one repository without a team and one configured repository the organisation
/// does not have.
#[test]
fn other_labels_teams_and_repositories() {
    let org = Org::generate(&OrgSpec {
        incident_rate: 0.4,
        teams: 3,
        repositories: 5,
        ..OrgSpec::small(71)
    });
    let mut params = Params::for_org(&org);
    params.incident_labels = vec!["SEV1".to_owned()];
    params.rework_labels = vec!["hotfix".to_owned(), "bug".to_owned()];
    params.repositories[1].team = None;
    params.repositories[2].team = params.repositories[0].team.clone();
    params.repositories.push(RepoParams {
        name: "acme/not-in-the-org".to_owned(),
        team: Some("ghosts".to_owned()),
        deployments: DeploymentsFrom::DeploymentsApi,
        tier_production: Vec::new(),
    });
    check(&org, &params, org.now, false);
}

/// The default organisation of `dora-collector demo`, whole (slow: debug builds
/// take a few seconds for the reference's quadratic walks).
#[test]
fn the_demo_organisation() {
    let org = Org::generate(&OrgSpec::default());
    let params = Params::for_org(&org);
    check(&org, &params, org.now, false);
}

// ---------------------------------------------------------------------------
// The reference against hand-computed numbers.
// ---------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

fn t(seconds: i64) -> Timestamp {
    Timestamp(T0 + seconds)
}

fn deploy(
    org: &mut Org,
    sha: Option<dora_collector::domain::CommitSha>,
    at: i64,
    outcome: NewOutcome,
) -> u64 {
    org.add_deployment(
        0,
        NewDeployment {
            environment: "production".to_owned(),
            sha,
            created_at: t(at),
            outcome,
        },
    )
    .unwrap()
}

fn value(expected: &reference::Expected, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let key = reference::series::canonical_key(SeriesKey::new(name, labels));
    expected.series.get(&key).map(|v| v.value)
}

fn hand_params(org: &Org) -> Params {
    Params {
        windows: vec![WindowParam::days(1), WindowParam::days(7)],
        ..Params::for_org(org)
    }
}

/// A first deployment, two changes, a rollback, an incident by time and a failed
/// attempt; every number worked out by hand.
#[test]
fn reference_on_a_hand_built_history() {
    let mut org = Org::empty("acme", t(0));
    let team = org.add_team("Payments");
    org.add_repo("api", team, t(-10 * DAY), false);
    let c1 = org.push_commit(0, "Add a", t(HOUR), t(HOUR)).unwrap();
    deploy(&mut org, None, 2 * HOUR, NewOutcome::Success { after: 60 }); // D1 at 2h+60
    org.push_commit(0, "Add b", t(3 * HOUR), t(3 * HOUR))
        .unwrap();
    org.push_commit(0, "Add c", t(4 * HOUR), t(4 * HOUR))
        .unwrap();
    deploy(&mut org, None, 5 * HOUR, NewOutcome::Success { after: 100 }); // D2 at 5h+100
    deploy(
        &mut org,
        Some(c1),
        6 * HOUR,
        NewOutcome::Success { after: 0 },
    ); // D3: rollback
    let incident = org.open_incident(0, t(7 * HOUR), None).unwrap();
    org.close_issue(0, incident, t(9 * HOUR)).unwrap();
    deploy(&mut org, None, 8 * HOUR, NewOutcome::Failure { after: 30 });
    let now = t(DAY);
    org.set_now(now);
    let params = hand_params(&org);
    let expected = reference::expected(&org, &params, now);

    let scope = [
        ("repository", "acme/api"),
        ("environment", "production"),
        ("team", "Payments"),
    ];
    let day = [scope.as_slice(), &[("window", "1d")]].concat();
    let week = [scope.as_slice(), &[("window", "7d")]].concat();
    let v = |name: &str, labels: &[(&str, &str)]| value(&expected, name, labels);
    let with = |labels: &[(&'static str, &'static str)], more: (&'static str, &'static str)| {
        let mut all = labels.to_vec();
        all.push(more);
        all
    };
    assert_eq!(v("dora_deployments_total", &scope), Some(3.0));
    // D2 (rolled back) and D3 (the incident's latest deployment).
    assert_eq!(v("dora_failed_deployments_total", &scope), Some(2.0));
    assert_eq!(
        v("dora_deployment_attempt_failures_total", &scope),
        Some(1.0)
    );
    // Lead times of D2's changes: 5h+100 − 3h = 7300 and 5h+100 − 4h = 3700.
    assert_eq!(v("dora_lead_time_seconds_sum", &scope), Some(11_000.0));
    assert_eq!(
        v(
            "dora_lead_time_seconds_bucket",
            &with(&scope, ("le", "3600"))
        ),
        Some(0.0)
    );
    assert_eq!(
        v(
            "dora_lead_time_seconds_bucket",
            &with(&scope, ("le", "10800"))
        ),
        Some(2.0)
    );
    assert_eq!(v("dora_deployment_frequency_per_day", &day), Some(3.0));
    assert_eq!(
        v("dora_deployment_frequency_per_day", &week),
        Some(3.0 / 7.0)
    );
    assert_eq!(
        v(
            "dora_lead_time_window_seconds",
            &with(&day, ("quantile", "0.5"))
        ),
        Some(5_500.0)
    );
    let p90 = v(
        "dora_lead_time_window_seconds",
        &with(&day, ("quantile", "0.9")),
    )
    .unwrap();
    assert!((p90 - 6_940.0).abs() < 1e-9, "{p90}");
    assert_eq!(v("dora_change_failure_rate", &day), Some(2.0 / 3.0));
    assert_eq!(v("dora_deployment_rework_rate", &day), Some(1.0 / 3.0));
    // Recoveries: D2 by the rollback (6h − (5h+100) = 3500), D3 by the incident's
    // close (9h − 6h = 10800).
    assert_eq!(
        v("dora_failed_deployment_recovery_time_seconds_sum", &day),
        Some(14_300.0)
    );
    assert_eq!(
        v(
            "dora_failed_deployment_recovery_time_seconds",
            &with(&day, ("quantile", "0.5"))
        ),
        Some(7_150.0)
    );
    let level = |metric: &'static str| v("dora_performance_level", &with(&day, ("metric", metric)));
    assert_eq!(level("deployment_frequency"), Some(4.0));
    assert_eq!(level("lead_time"), Some(4.0));
    assert_eq!(level("change_failure_rate"), Some(1.0));
    assert_eq!(level("recovery_time"), Some(3.0));
    let week_level = v(
        "dora_performance_level",
        &with(&week, ("metric", "deployment_frequency")),
    );
    assert_eq!(week_level, Some(3.0));
    let repo_day = [
        ("repository", "acme/api"),
        ("team", "Payments"),
        ("window", "1d"),
    ];
    assert_eq!(
        v("dora_time_to_restore_seconds_sum", &repo_day),
        Some(7_200.0)
    );
    assert_eq!(
        v(
            "dora_incidents_open",
            &[("repository", "acme/api"), ("team", "Payments")]
        ),
        Some(0.0)
    );
    assert_eq!(v("dora_org_deployments_total", &[]), Some(3.0));
    assert_eq!(
        v("dora_team_repositories", &[("team", "Payments")]),
        Some(1.0)
    );

    check(&org, &params, now, false);
}

/// Root causes (by prefix, a redeploy not blamed, one matching nothing), an
/// incident before any deployment, a reopened one, a hotfix pull request and a
/// revert.
#[test]
fn reference_on_root_causes_rework_and_reopened_incidents() {
    let mut org = Org::empty("acme", t(0));
    let team = org.add_team("Payments");
    org.add_repo("api", team, t(-10 * DAY), false);
    let early = org.open_incident(0, t(HOUR / 2), None).unwrap();
    org.close_issue(0, early, t(HOUR)).unwrap();
    org.push_commit(0, "Add a", t(HOUR), t(HOUR)).unwrap();
    deploy(&mut org, None, 2 * HOUR, NewOutcome::Success { after: 0 }); // D1
    let (_, merge) = org
        .merge_pull(
            0,
            NewPull {
                title: "Fix the checkout".to_owned(),
                labels: vec!["HotFix".to_owned()],
                commit_dates: vec![t(3 * HOUR)],
                opened_at: t(3 * HOUR),
                merged_at: t(4 * HOUR),
                style: MergeStyle::Squash,
            },
        )
        .unwrap();
    org.push_commit(0, "Revert \"Add a\"", t(4 * HOUR), t(4 * HOUR))
        .unwrap();
    deploy(&mut org, None, 5 * HOUR, NewOutcome::Success { after: 0 }); // D2
    deploy(&mut org, None, 6 * HOUR, NewOutcome::Success { after: 0 }); // D3: same sha
    let named = org
        .open_incident(
            0,
            t(7 * HOUR),
            Some(&merge.to_string()[..9].to_ascii_uppercase()),
        )
        .unwrap();
    org.close_issue(0, named, t(8 * HOUR)).unwrap();
    org.reopen_issue(0, named, t(9 * HOUR)).unwrap();
    let unmatched = org
        .open_incident(0, t(10 * HOUR), Some("deadbeef00"))
        .unwrap();
    org.close_issue(0, unmatched, t(11 * HOUR)).unwrap();
    let now = t(DAY);
    org.set_now(now);
    let params = hand_params(&org);

    let repos = reference::analyse(&org, &params, now);
    let deployments = &repos[0].environments[0].deployments;
    assert_eq!(deployments.len(), 3);
    assert!(deployments[0].without_base && deployments[0].changes.is_empty());
    let d2 = &deployments[1];
    assert_eq!(d2.changes.len(), 2);
    assert!(d2.rework.revert && d2.rework.labelled_pull && !d2.rework.rollback);
    assert!(
        d2.failed && d2.recovered_at.is_none(),
        "reopened: unrecovered"
    );
    let d3 = &deployments[2];
    assert!(d3.changes.is_empty() && !d3.rework.any());
    assert!(d3.failed && d3.recovered_at == Some(T0 + 11 * HOUR));
    let incidents = &repos[0].incidents;
    assert_eq!(incidents[0].attribution, Attribution::Nothing);
    assert_eq!(
        incidents[1].attribution,
        Attribution::RootCause(vec![(0, 1)])
    );
    assert!(incidents[2].unmatched_root_cause);
    assert_eq!(incidents[2].attribution, Attribution::Time(0, 2));

    let expected = reference::expected(&org, &params, now);
    let v = |name: &str| value(&expected, name, &[]);
    assert_eq!(v("dora_diagnostics_unattributed_incidents"), Some(1.0));
    assert_eq!(v("dora_diagnostics_unmatched_root_causes"), Some(1.0));
    assert_eq!(v("dora_org_incidents_open"), Some(1.0));
    assert_eq!(
        value(
            &expected,
            "dora_org_deployment_rework_rate",
            &[("window", "1d")]
        ),
        Some(1.0 / 3.0)
    );
    assert_eq!(
        value(
            &expected,
            "dora_incident_oldest_open_timestamp_seconds",
            &[("repository", "acme/api"), ("team", "Payments")]
        ),
        Some((T0 + 7 * HOUR) as f64)
    );
    check(&org, &params, now, false);
}

/// Odd but legal data: a deployment of a side-branch commit (diverged both ways),
/// a sha unknown to the history, a skewed author date, a root cause shipped after
/// its incident was closed, an incident closed before it was opened, one opened at
/// the second of a deployment, statuses after a failure, and deployments exactly at
/// both ends of a window.
#[test]
fn reference_on_odd_data() {
    let mut org = Org::empty("acme", t(0));
    let team = org.add_team("Payments");
    org.add_repo("api", team, t(-10 * DAY), false);
    let c1 = org.push_commit(0, "Add a", t(HOUR), t(HOUR)).unwrap();
    deploy(&mut org, None, 2 * HOUR, NewOutcome::Success { after: 0 }); // D1, at now − 1d
    let c2 = org
        .push_commit(0, "Add b", t(3 * HOUR), t(3 * HOUR))
        .unwrap();
    deploy(&mut org, None, 4 * HOUR, NewOutcome::Success { after: 0 }); // D2
                                                                        // A commit on a side branch forked from c1, deployed by pushing the deployment
                                                                        // straight into the data (the mutation API only deploys indexed commits).
    let repo = &mut org.repos[0];
    let c1_index = repo.commits.iter().position(|c| c.sha == c1).unwrap() as u32;
    let side = dora_collector::domain::CommitSha::from_bytes([0x5e; 20]);
    repo.commits.push(dora_collector::sim::SimCommit {
        sha: side,
        parent_slots: [c1_index, dora_collector::sim::NO_PARENT],
        author_date: t(3 * HOUR + HOUR / 2),
        committer_date: t(3 * HOUR + HOUR / 2),
        author: 0,
        message: dora_collector::sim::CommitMessage::Custom("Side".into()),
    });
    let unknown = dora_collector::domain::CommitSha::from_bytes([0xab; 20]);
    for (id, sha, at) in [(9_001, side, 5 * HOUR), (9_002, unknown, 8 * HOUR)] {
        repo.deployments.push(dora_collector::sim::SimDeployment {
            id,
            sha,
            git_ref: sha.to_string().into(),
            environment: "production".into(),
            created_at: t(at),
            creator: 0,
            rollback: false,
            statuses: vec![dora_collector::sim::SimStatus {
                id: id + 1_000,
                state: StatusState::Success,
                created_at: t(at),
            }],
        });
    }
    deploy(
        &mut org,
        Some(c2),
        6 * HOUR,
        NewOutcome::Success { after: 0 },
    ); // D4
    let c3 = org
        .push_commit(0, "Skewed", t(9 * HOUR), t(6 * HOUR + 1_800))
        .unwrap();
    deploy(&mut org, None, 7 * HOUR, NewOutcome::Success { after: 0 }); // D5
    deploy(
        &mut org,
        Some(c3),
        9 * HOUR,
        NewOutcome::Success { after: 0 },
    ); // D7
    let retried = deploy(&mut org, None, 10 * HOUR, NewOutcome::Failure { after: 10 });
    org.add_deployment_status(0, retried, StatusState::Queued, t(10 * HOUR + 20))
        .unwrap();
    let errored = deploy(&mut org, None, 11 * HOUR, NewOutcome::Error { after: 10 });
    org.add_deployment_status(0, errored, StatusState::Inactive, t(11 * HOUR + 20))
        .unwrap();
    let now = t(DAY + 2 * HOUR);
    deploy(
        &mut org,
        None,
        DAY + 2 * HOUR,
        NewOutcome::Success { after: 0 },
    ); // D10, at now

    let before = org
        .open_incident(0, t(HOUR), Some(&c3.to_string()[..7]))
        .unwrap();
    org.close_issue(0, before, t(HOUR + HOUR / 2)).unwrap();
    let backwards = org
        .open_incident(0, t(8 * HOUR + 1_800), Some(&unknown.to_string()[..12]))
        .unwrap();
    org.close_issue(0, backwards, t(8 * HOUR)).unwrap();
    org.open_incident(0, t(6 * HOUR), None).unwrap();
    org.set_now(now);
    let params = hand_params(&org);

    let repos = reference::analyse(&org, &params, now);
    let d = &repos[0].environments[0].deployments;
    assert_eq!(d.len(), 8, "D1, D2, side, D4, D5, unknown, D7, D10");
    let side_deployment = &d[2];
    assert_eq!(side_deployment.lead_times, vec![HOUR + HOUR / 2]);
    assert!(
        !d[3].rework.rollback && d[3].changes.is_empty(),
        "diverged back"
    );
    assert!(
        d[3].failed && d[3].recovered_at.is_none(),
        "incident at its second"
    );
    assert_eq!((d[4].lead_times.len(), d[4].negative_lead_times), (0, 1));
    assert!(d[4].failed && d[4].recovered_at == Some(T0 + HOUR + HOUR / 2));
    assert!(d[5].unknown_changes && d[5].failed);
    assert_eq!(d[5].recovered_at, Some(T0 + 8 * HOUR));
    assert!(d[6].changes.is_empty() && !d[6].rework.rollback);
    assert_eq!(
        repos[0].environments[0].attempt_failures, 1,
        "error, then inactive"
    );

    let expected = reference::expected(&org, &params, now);
    let scope = [
        ("repository", "acme/api"),
        ("environment", "production"),
        ("team", "Payments"),
    ];
    let v = |name: &str, window: &'static str| {
        let labels = [scope.as_slice(), &[("window", window)]].concat();
        value(&expected, name, &labels)
    };
    // (now − 1d, now] holds D2 … D10 but not D1.
    assert_eq!(v("dora_deployment_frequency_per_day", "1d"), Some(7.0));
    assert_eq!(
        v("dora_deployment_frequency_per_day", "7d"),
        Some(8.0 / 7.0)
    );
    // Only the unknown deployment's zero-second recovery counts: D5's came first.
    assert_eq!(
        v("dora_failed_deployment_recovery_time_seconds_count", "1d"),
        Some(1.0)
    );
    assert_eq!(
        v("dora_failed_deployment_recovery_time_seconds_sum", "1d"),
        Some(0.0)
    );
    let restore = [
        ("repository", "acme/api"),
        ("team", "Payments"),
        ("window", "7d"),
    ];
    assert_eq!(
        value(&expected, "dora_time_to_restore_seconds_count", &restore),
        Some(1.0)
    );
    assert_eq!(
        value(
            &expected,
            "dora_diagnostics_deployments_with_unknown_changes",
            &[]
        ),
        Some(1.0)
    );
    check(&org, &params, now, false);
}

#[test]
fn reference_quantiles_interpolate_between_closest_ranks() {
    use reference::series::quantile;
    assert_eq!(quantile(&[], 0.5), None);
    assert_eq!(quantile(&[7], 0.9), Some(7.0));
    assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2.5));
    assert_eq!(
        quantile(&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9),
        Some(91.0)
    );
    let p90 = quantile(&[1, 2], 0.9).unwrap();
    assert!((p90 - 1.9).abs() < 1e-12);
}

#[test]
fn reference_root_cause_lines() {
    use reference::definitions::root_cause;
    let cases: &[(&str, Option<&str>)] = &[
        ("Root Cause: abc1234", Some("abc1234")),
        ("text\n  ROOT CAUSE: `ABCDEF0123`.\n", Some("abcdef0123")),
        ("root cause: abc123", None),
        ("root cause: nothex1\nroot cause: 1234567", Some("1234567")),
        ("the root cause: abc1234", None),
        (&format!("root cause: {}", "a".repeat(41)), None),
    ];
    for (body, want) in cases {
        assert_eq!(root_cause(body).as_deref(), *want, "{body:?}");
    }
}

/// The configuration file the reference writes for the daemon reads back (through
/// the collector's own loader) as the same parameters.
#[test]
fn parameters_survive_the_configuration_file() {
    let org = Org::generate(&OrgSpec::small(91));
    let mut params = Params::for_org(&org);
    params.windows = vec![WindowParam::days(3), WindowParam::days(14)];
    params.production_environments = vec!["production".to_owned(), "Staging".to_owned()];
    params.incident_labels = vec!["incident".to_owned(), "sev \"1\"".to_owned()];
    params.lead_time_start = LeadTimeStart::PrMerged;
    params.rollback_is_failure = false;
    params.lookback_seconds = 20 * DAY;
    params.thresholds.change_failure_rate = [0.01, 0.1 / 3.0, 0.2];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.toml");
    let text = params.to_config_toml(
        "http://127.0.0.1:1/api/v3",
        "${TOKEN}",
        "x.db",
        "127.0.0.1:0",
    );
    std::fs::write(&path, &text).unwrap();
    let config = dora_collector::config::Config::load_with(&path, |name| {
        assert_eq!(name, "TOKEN");
        Ok("t0ken".to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let first_sync = Some(org.now);
    assert_eq!(
        Params::from_config(&config, first_sync),
        Params {
            first_sync_at: first_sync,
            ..params
        }
    );
    assert_eq!(config.storage.path.to_str(), Some("x.db"));
}

// ---------------------------------------------------------------------------
// The parser and the comparison.
// ---------------------------------------------------------------------------

#[test]
fn prometheus_text_is_parsed_with_escapes_buckets_and_quantiles() {
    let text = "# HELP x_total A \\\\ help\\ntext.\n\
                # TYPE x_total counter\n\
                x_total{b=\"2\",a=\"q\\\"uote\\\\back\\nline\"} 3\n\
                # TYPE lat histogram\n\
                lat_bucket{le=\"300\"} 1\n\
                lat_bucket{le=\"+Inf\"} 2 1700000000000\n\
                lat_sum 400.5\n\
                lat_count 2\n\
                # TYPE s summary\n\
                s{quantile=\"0.5\",} 1e3\n\
                s_sum NaN\n\
                \n\
                # a comment\n\
                g -Inf\n";
    let scrape = reference::prom::parse(text).unwrap();
    assert_eq!(scrape.helps["x_total"], "A \\ help\ntext.");
    assert_eq!(scrape.types["lat"], "histogram");
    let key = SeriesKey::new("x_total", &[("a", "q\"uote\\back\nline"), ("b", "2")]);
    assert_eq!(scrape.samples[&key], 3.0);
    assert_eq!(
        scrape.samples[&SeriesKey::new("lat_bucket", &[("le", "+Inf")])],
        2.0
    );
    assert_eq!(
        scrape.samples[&SeriesKey::new("s", &[("quantile", "0.5")])],
        1000.0
    );
    assert!(scrape.samples[&SeriesKey::new("s_sum", &[])].is_nan());
    assert_eq!(scrape.samples[&SeriesKey::new("g", &[])], f64::NEG_INFINITY);
    assert_eq!(scrape.family_of("lat_bucket"), Some("lat"));
    assert_eq!(scrape.family_of("s_count"), Some("s"));
    assert_eq!(scrape.family_of("s_bucket"), None);
    assert_eq!(scrape.samples.len(), 8);
    // Written back, a key reads as the text does.
    assert_eq!(
        key.to_string(),
        "x_total{a=\"q\\\"uote\\\\back\\nline\",b=\"2\"}"
    );

    for bad in [
        "x 1\nx 2",
        "x{a=\"1\",a=\"2\"} 1",
        "x{a=\"1} 1",
        "x{a=1} 1",
        "x{a=\"1\" b=\"2\"} 1",
        "x",
        "x one",
        "x 1 2 3",
        "1x 1",
        "# TYPE x counter\n# TYPE x gauge",
        "# TYPE x widget",
        "x{a=\"\\q\"} 1",
    ] {
        assert!(reference::prom::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_comparison_lists_every_difference() {
    let org = Org::generate(&OrgSpec {
        repositories: 2,
        workflow_run_repositories: 0,
        ..OrgSpec::small(81)
    });
    let params = Params::for_org(&org);
    let expected = reference::expected(&org, &params, org.now);
    let text = engine_scrape(&org, &params, org.now, false);
    assert_eq!(
        reference::differences(&text, &expected).unwrap(),
        Vec::<String>::new()
    );

    // Health families are not compared; a changed, a dropped and an added DORA
    // series are each reported, and so is a wrong TYPE.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let frequency = lines
        .iter()
        .position(|l| l.starts_with("dora_org_deployment_frequency_per_day{window=\"7d\"}"))
        .unwrap();
    lines[frequency] = "dora_org_deployment_frequency_per_day{window=\"7d\"} 12345".to_owned();
    let dropped = lines
        .iter()
        .position(|l| l.starts_with("dora_org_deployments_total "))
        .unwrap();
    lines.remove(dropped);
    lines.push("dora_org_incidents_open{team=\"x\"} 1".to_owned());
    lines.push("dora_collector_sync_errors_total{source=\"github\"} 3".to_owned());
    let counter_type = lines
        .iter()
        .position(|l| l == "# TYPE dora_org_deployments_total counter")
        .unwrap();
    lines[counter_type] = "# TYPE dora_org_deployments_total gauge".to_owned();
    assert_eq!(reference::snapshot_time(&text), Some(org.now));
    let diffs = reference::differences(&lines.join("\n"), &expected).unwrap();
    assert_eq!(diffs.len(), 4, "{diffs:#?}");
    assert!(diffs
        .iter()
        .any(|d| d.starts_with("differs: dora_org_deployment_frequency_per_day{window=\"7d\"}")));
    assert!(diffs
        .iter()
        .any(|d| d.starts_with("missing: dora_org_deployments_total =")));
    assert!(diffs
        .iter()
        .any(|d| d.starts_with("unexpected: dora_org_incidents_open{team=\"x\"}")));
    assert!(diffs
        .iter()
        .any(|d| d.starts_with("type of dora_org_deployments_total")));
    let panic =
        std::panic::catch_unwind(|| reference::assert_matches(&lines.join("\n"), &expected));
    assert!(panic.is_err());
}
