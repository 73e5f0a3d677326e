//! `compute`: the engine's entry point. Replays each repository (change sets,
//! attribution), then evaluates every window for every scope — repository ×
//! environment, team and organisation — from the union of the underlying samples.

use super::attribution::{self, AttributionStats, Failure, IncidentAtNow};
use super::changes::{self, PrTimes, RepoContext, Scratch};
use super::events::{DeploymentRecord, RepoEvents};
use super::quantile::quantiles;
use super::scoped_incidents;
use super::snapshot::{
    Diagnostics, IncidentMetrics, Levels, RepoEnvMetrics, RepoIncidents, RollupMetrics, Snapshot,
    SummaryStats, Totals, WindowedMetrics, STAGES,
};
use super::{EngineConfig, Events, LeadTimeStart, Thresholds, Window};
use crate::domain::{
    CommitSha, DeploymentOutcome, Environment, Incident, RepoName, Team, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One environment of one repository, reduced to what windows need.
struct EnvResult {
    environment: Environment,
    /// Deploy times, ascending.
    deploy_times: Vec<i64>,
    failed: Vec<bool>,
    rework: Vec<bool>,
    lead_times: Vec<i64>,
    lead_offsets: Vec<u32>,
    /// Stage samples laid out like `lead_times`, per stage; empty offsets when
    /// stages are not measured.
    stage_times: [Vec<i64>; STAGES],
    stage_offsets: [Vec<u32>; STAGES],
    /// `(recovered at, recovery duration)`, ascending by recovery time.
    recoveries: Vec<(i64, i64)>,
    totals: Totals,
    /// Since when the repository's first reviews are complete
    /// ([`RepoEvents::reviews_since`]): a window starting before has no stages.
    reviews_since: Option<i64>,
}

struct RepoResult {
    name: RepoName,
    team: Team,
    environments: Vec<EnvResult>,
    incidents: Vec<IncidentAtNow>,
}

/// Computes every metric of every scope at `now`. Events after `now` are ignored
/// (a deployment not yet done, an incident not yet opened or closed), so the same
/// store evaluated at an earlier `now` gives that day's numbers.
pub fn compute(events: &Events, config: &EngineConfig, now: Timestamp) -> Snapshot {
    let repos = analyse_all(events, config, now);
    snapshot_of(&repos, config, now)
}

/// Deployments and lead time of one scope in one trend window.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendValues {
    /// Successful production deployments in the window.
    pub deployments: u64,
    /// Lead times of the changes those deployments shipped.
    pub lead_time: SummaryStats,
}

/// One point of a trend: the window ending at `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The window's inclusive end (one of the requested ends).
    pub end: Timestamp,
    /// The whole organisation.
    pub organisation: TrendValues,
    /// Every team of the snapshot (configured teams and `unassigned`).
    pub teams: BTreeMap<Team, TrendValues>,
}

/// [`compute`] at `now`, plus the deployments and lead time of the organisation
/// and every team in `trend_window` ending at each of `trend_ends` — what
/// `compute` at each end would report in that window (`deployments` and
/// `lead_time` of its rollups), without replaying the history once per end.
///
/// Why one replay is enough: a deployment's change set and lead times depend only
/// on the deployments and commits before it (the replay walks deployments in time
/// order; rollbacks and shipped marks look only backwards), so replaying up to
/// `now` and counting the window `(end − window, end]` gives exactly the values a
/// replay up to `end` gives. Failures, recoveries and rework are not in a trend
/// point because they do depend on later events (an incident opened after `end`).
/// Under a pull-request lead-time start, a PR merged after `end` can still move a
/// start, so those configurations evaluate each end separately (same result,
/// slower). Ends after `now` see nothing after `now`.
pub fn compute_with_trend(
    events: &Events,
    config: &EngineConfig,
    now: Timestamp,
    trend_window: &Window,
    trend_ends: &[Timestamp],
) -> (Snapshot, Vec<TrendPoint>) {
    let repos = analyse_all(events, config, now);
    let snapshot = snapshot_of(&repos, config, now);
    let trend = if config.lead_time_start == LeadTimeStart::Commit {
        trend_of(&repos, trend_window, now, trend_ends, &config.thresholds)
    } else {
        let single = EngineConfig {
            windows: vec![trend_window.clone()],
            ..config.clone()
        };
        trend_ends
            .iter()
            .flat_map(|end| {
                let at = Timestamp(end.0.min(now.0));
                let repos = analyse_all(events, &single, at);
                trend_of(&repos, trend_window, at, &[at], &config.thresholds)
                    .into_iter()
                    .map(|point| TrendPoint { end: *end, ..point })
            })
            .collect()
    };
    (snapshot, trend)
}

fn trend_of(
    repos: &[RepoResult],
    window: &Window,
    now: Timestamp,
    ends: &[Timestamp],
    thresholds: &Thresholds,
) -> Vec<TrendPoint> {
    let mut samples = Vec::new();
    let mut by_team: BTreeMap<&Team, Vec<&EnvResult>> = BTreeMap::new();
    for repo in repos {
        by_team
            .entry(&repo.team)
            .or_default()
            .extend(&repo.environments);
    }
    let everyone: Vec<&EnvResult> = repos.iter().flat_map(|r| &r.environments).collect();
    let mut values = |parts: &[&EnvResult], end: Timestamp| {
        let at = Timestamp(end.0.min(now.0));
        let windowed = windowed(parts, window, at, thresholds, false, &mut samples);
        TrendValues {
            deployments: windowed.deployments,
            lead_time: windowed.lead_time,
        }
    };
    ends.iter()
        .map(|end| TrendPoint {
            end: *end,
            organisation: values(&everyone, *end),
            teams: by_team
                .iter()
                .map(|(team, parts)| ((*team).clone(), values(parts, *end)))
                .collect(),
        })
        .collect()
}

/// Every repository (configured or with events) replayed at `now`.
fn analyse_all(events: &Events, config: &EngineConfig, now: Timestamp) -> AnalysedRepos {
    let empty = RepoEvents::default();
    let default_team = Team::default();
    let names: BTreeSet<&RepoName> = config
        .teams
        .keys()
        .chain(events.repositories.keys())
        .collect();
    let members: Vec<(&RepoName, &RepoEvents, &Team)> = names
        .into_iter()
        .map(|name| {
            let repo = events.repositories.get(name).unwrap_or(&empty);
            let team = config.teams.get(name).unwrap_or(&default_team);
            (name, repo, team)
        })
        .collect();
    let mut assigned = scoped_incidents::assign(events, &members, config, now);
    let mut scratch = Scratch::default();
    let mut diagnostics = Diagnostics {
        unmatched_root_causes: assigned.unmatched_root_causes,
        unattributed_incidents: assigned.kept.values().map(|k| k.len() as u64).sum(),
        ..Diagnostics::default()
    };
    let repos: Vec<RepoResult> = members
        .iter()
        .map(|&(name, repo, team)| {
            let given = assigned.given.remove(name).unwrap_or_default();
            analyse_repository(
                name,
                team.clone(),
                repo,
                &given,
                config,
                now,
                &mut scratch,
                &mut diagnostics,
            )
        })
        .collect();
    AnalysedRepos {
        repos,
        team_incidents: assigned.kept,
        diagnostics,
    }
}

/// The replayed repositories and what the replay noticed.
struct AnalysedRepos {
    repos: Vec<RepoResult>,
    /// Per team: its incidents that no repository took (`scoped_incidents`).
    team_incidents: BTreeMap<Team, Vec<IncidentAtNow>>,
    diagnostics: Diagnostics,
}

impl std::ops::Deref for AnalysedRepos {
    type Target = [RepoResult];
    fn deref(&self) -> &[RepoResult] {
        &self.repos
    }
}

/// The windows and rollups of `analysed` at `now`.
fn snapshot_of(analysed: &AnalysedRepos, config: &EngineConfig, now: Timestamp) -> Snapshot {
    let repos = &analysed.repos;
    let stages = stages_measured(config);
    let mut samples = Vec::new();
    let mut repositories = Vec::new();
    let mut incidents = Vec::new();
    for repo in repos {
        for env in &repo.environments {
            repositories.push(RepoEnvMetrics {
                repository: repo.name.clone(),
                environment: env.environment.clone(),
                team: repo.team.clone(),
                totals: env.totals.clone(),
                windows: config
                    .windows
                    .iter()
                    .map(|w| windowed(&[env], w, now, &config.thresholds, stages, &mut samples))
                    .collect(),
            });
        }
        let mut open_since: Vec<Timestamp> = repo
            .incidents
            .iter()
            .filter(|i| i.closed_at.is_none())
            .map(|i| Timestamp(i.created_at))
            .collect();
        open_since.sort_unstable();
        incidents.push(RepoIncidents {
            repository: repo.name.clone(),
            team: repo.team.clone(),
            open: open_since.len() as u64,
            open_since,
            windows: incident_windows(&[&repo.incidents], &config.windows, now, &mut samples),
        });
    }

    let mut by_team: BTreeMap<&Team, Vec<&RepoResult>> = BTreeMap::new();
    for repo in repos {
        by_team.entry(&repo.team).or_default().push(repo);
    }
    for team in analysed.team_incidents.keys() {
        by_team.entry(team).or_default();
    }
    let teams = by_team
        .into_iter()
        .map(|(team, members)| {
            let own = analysed
                .team_incidents
                .get(team)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            rollup(Some(team.clone()), &members, own, config, now, &mut samples)
        })
        .collect();
    let everyone: Vec<&RepoResult> = repos.iter().collect();
    let all_team_incidents: Vec<IncidentAtNow> = analysed
        .team_incidents
        .values()
        .flatten()
        .copied()
        .collect();
    let organisation = rollup(
        None,
        &everyone,
        &all_team_incidents,
        config,
        now,
        &mut samples,
    );

    Snapshot {
        evaluated_at: now,
        windows: config.windows.clone(),
        repositories,
        incidents,
        teams,
        organisation,
        diagnostics: analysed.diagnostics.clone(),
    }
}

/// Per configured production environment (by index): the successful deployments
/// at or before `now` in replay order (deploy time, then source and id), and the
/// number of failed attempts.
#[allow(clippy::type_complexity)]
pub(crate) fn production_deployments<'a>(
    repo: &'a RepoEvents,
    production: &[Environment],
    now: Timestamp,
) -> (Vec<Vec<(&'a DeploymentRecord, i64)>>, Vec<u64>) {
    // Repository environment index -> production environment index.
    let production_index: Vec<Option<usize>> = repo
        .environments
        .iter()
        .map(|env| production.iter().position(|p| p.matches(env.as_str())))
        .collect();
    let mut successful: Vec<Vec<(&DeploymentRecord, i64)>> = vec![Vec::new(); production.len()];
    let mut attempt_failures = vec![0u64; production.len()];
    for record in &repo.deployments {
        let Some(e) = production_index[record.environment as usize] else {
            continue;
        };
        match record.outcome {
            DeploymentOutcome::Succeeded { at } if at <= now => successful[e].push((record, at.0)),
            DeploymentOutcome::Failed { at } if at <= now => attempt_failures[e] += 1,
            _ => {}
        }
    }
    for list in &mut successful {
        list.sort_unstable_by_key(|(record, at)| (*at, record.source, record.id));
    }
    (successful, attempt_failures)
}

#[allow(clippy::too_many_arguments)]
fn analyse_repository(
    name: &RepoName,
    team: Team,
    repo: &RepoEvents,
    given_incidents: &[Incident],
    config: &EngineConfig,
    now: Timestamp,
    scratch: &mut Scratch,
    diagnostics: &mut Diagnostics,
) -> RepoResult {
    let production = &repo.production(config.production_environments_of(name));
    let (mut successful, attempt_failures) = production_deployments(repo, production, now);

    let context = RepoContext {
        repo,
        lead_time_start: config.lead_time_start,
        pr_start: pr_start_times(repo, config.lead_time_start, now),
        pr_times: stages_measured(config).then(|| pr_stage_times(repo, now)),
        rework_merges: rework_merges(repo, &config.rework_labels, now),
        track_uncovered: false,
    };
    let histories: Vec<changes::EnvHistory> = successful
        .iter_mut()
        .map(|list| changes::replay(&context, list, scratch))
        .collect();

    let mut incidents = attribution::incidents_at(&repo.incidents, &config.incident_labels, now);
    incidents.extend(attribution::incidents_at(
        given_incidents,
        &config.incident_labels,
        now,
    ));
    let mut stats = AttributionStats::default();
    let failures = attribution::attribute(
        &repo.graph,
        &histories,
        &incidents,
        config.rollback_is_failure,
        &mut stats,
    );
    diagnostics.unattributed_incidents += stats.unattributed;
    diagnostics.unmatched_root_causes += stats.unmatched_root_causes;

    let environments = histories
        .into_iter()
        .zip(failures)
        .zip(attempt_failures)
        .enumerate()
        .map(|(e, ((history, failures), attempt_failures))| {
            if history.without_base {
                diagnostics
                    .deployments_without_base
                    .push((name.clone(), production[e].clone()));
            }
            diagnostics.deployments_with_unknown_changes += history.unknown_changes;
            let mut recoveries: Vec<(i64, i64)> = history
                .deployments
                .iter()
                .zip(&failures)
                .filter_map(|(d, f)| match f {
                    Failure::Recovered(at) if *at <= now.0 && *at >= d.at => {
                        Some((*at, *at - d.at))
                    }
                    _ => None,
                })
                .collect();
            recoveries.sort_unstable();
            let failed: Vec<bool> = failures.iter().map(|f| *f != Failure::None).collect();
            let totals = Totals {
                deployments: history.deployments.len() as u64,
                failed_deployments: failed.iter().filter(|f| **f).count() as u64,
                attempt_failures,
                lead_time: history.histogram,
            };
            EnvResult {
                environment: production[e].clone(),
                deploy_times: history.deployments.iter().map(|d| d.at).collect(),
                rework: history.deployments.iter().map(|d| d.rework).collect(),
                failed,
                lead_times: history.lead_times,
                lead_offsets: history.lead_offsets,
                stage_times: history.stage_times,
                stage_offsets: history.stage_offsets,
                recoveries,
                totals,
                reviews_since: repo.reviews_since.map(|t| t.0),
            }
        })
        .collect();

    RepoResult {
        name: name.clone(),
        team,
        environments,
        incidents: incidents.into_iter().map(|(i, _)| i).collect(),
    }
}

/// Where each commit's lead time starts under a PR-based `lead_time_start`: the
/// pull request that introduced it (its merge commit, or one of its own commits).
/// A commit in several PRs takes the earliest start.
fn pr_start_times(
    repo: &RepoEvents,
    start: LeadTimeStart,
    now: Timestamp,
) -> HashMap<CommitSha, i64> {
    let mut starts: HashMap<CommitSha, i64> = HashMap::new();
    if start == LeadTimeStart::Commit {
        return starts;
    }
    for pr in &repo.pull_requests {
        let Some(merged_at) = pr.merged_at.filter(|m| *m <= now) else {
            continue;
        };
        let begin = match start {
            LeadTimeStart::PrMerged => Some(merged_at.0),
            _ => pr.first_commit_at.map(|t| t.0),
        };
        let Some(begin) = begin else { continue };
        for sha in pr.merge_commit_sha.iter().chain(&pr.commits) {
            starts
                .entry(*sha)
                .and_modify(|s| *s = (*s).min(begin))
                .or_insert(begin);
        }
    }
    starts
}

/// Whether lead-time stages are measured: under a PR-based lead-time start,
/// where the collector reads every merged pull request (under `commit` it reads
/// only the rework-labelled ones, too biased a sample to describe changes).
fn stages_measured(config: &EngineConfig) -> bool {
    config.lead_time_start != LeadTimeStart::Commit
}

/// The stage boundaries of the pull request that introduced each commit (its
/// merge commit, or one of its own commits), among those merged at or before
/// `now`. A commit in several takes the one with the earliest first commit (the
/// one `pr_first_commit` starts its lead time from), then the lowest number.
/// A time after `now` is not known yet, and a first review after the merge is
/// not a review before it (the pull request then has none).
fn pr_stage_times(repo: &RepoEvents, now: Timestamp) -> HashMap<CommitSha, PrTimes> {
    let mut chosen: HashMap<CommitSha, ((i64, u64), PrTimes)> = HashMap::new();
    for pr in &repo.pull_requests {
        let Some(merged_at) = pr.merged_at.filter(|m| *m <= now) else {
            continue;
        };
        let known = |t: Option<Timestamp>| t.filter(|t| *t <= now).map(|t| t.0);
        let times = PrTimes([
            known(pr.first_commit_at),
            known(pr.created_at),
            known(pr.first_review_at.filter(|r| *r <= merged_at)),
            Some(merged_at.0),
        ]);
        let key = (pr.first_commit_at.map_or(i64::MAX, |t| t.0), pr.number);
        for sha in pr.merge_commit_sha.iter().chain(&pr.commits) {
            chosen
                .entry(*sha)
                .and_modify(|entry| {
                    if key < entry.0 {
                        *entry = (key, times);
                    }
                })
                .or_insert((key, times));
        }
    }
    chosen
        .into_iter()
        .map(|(sha, (_, times))| (sha, times))
        .collect()
}

fn rework_merges(repo: &RepoEvents, labels: &[String], now: Timestamp) -> Vec<u32> {
    let mut merges: Vec<u32> = repo
        .pull_requests
        .iter()
        .filter(|pr| {
            pr.merged_at.is_some_and(|m| m <= now) && attribution::has_label(&pr.labels, labels)
        })
        .filter_map(|pr| {
            pr.merge_commit_sha
                .and_then(|sha| repo.graph.index_of(&sha))
        })
        .collect();
    merges.sort_unstable();
    merges.dedup();
    merges
}

fn summary(values: &mut [i64]) -> SummaryStats {
    let sum = values.iter().map(|v| *v as f64).sum();
    let [median, p90] = quantiles(values, [0.5, 0.9]);
    SummaryStats {
        count: values.len() as u64,
        sum,
        median,
        p90,
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// One window over the union of `parts`.
fn windowed(
    parts: &[&EnvResult],
    window: &Window,
    now: Timestamp,
    thresholds: &Thresholds,
    stages: bool,
    samples: &mut Vec<i64>,
) -> WindowedMetrics {
    let start = window.start(now).0;
    let (mut deployments, mut failed, mut rework) = (0u64, 0u64, 0u64);
    samples.clear();
    for part in parts {
        let low = part.deploy_times.partition_point(|at| *at <= start);
        let high = part.deploy_times.partition_point(|at| *at <= now.0);
        deployments += (high - low) as u64;
        failed += part.failed[low..high].iter().filter(|f| **f).count() as u64;
        rework += part.rework[low..high].iter().filter(|r| **r).count() as u64;
        let (from, to) = (
            part.lead_offsets[low] as usize,
            part.lead_offsets[high] as usize,
        );
        samples.extend_from_slice(&part.lead_times[from..to]);
    }
    let lead_time = summary(samples);
    samples.clear();
    for part in parts {
        let low = part.recoveries.partition_point(|(at, _)| *at <= start);
        let high = part.recoveries.partition_point(|(at, _)| *at <= now.0);
        samples.extend(
            part.recoveries[low..high]
                .iter()
                .map(|(_, duration)| *duration),
        );
    }
    let recovery_time = summary(samples);
    // A window starting before a part's first reviews are complete would have
    // `pickup` and `review` from some of its changes only (and so a wrong
    // breakdown): no stages, like a window whose history is not complete.
    let reviews_complete = parts
        .iter()
        .all(|part| part.reviews_since.is_none_or(|since| start >= since));
    let lead_time_stages = (stages && reviews_complete).then(|| {
        std::array::from_fn(|stage| {
            samples.clear();
            for part in parts {
                let low = part.deploy_times.partition_point(|at| *at <= start);
                let high = part.deploy_times.partition_point(|at| *at <= now.0);
                let offsets = &part.stage_offsets[stage];
                samples.extend_from_slice(
                    &part.stage_times[stage][offsets[low] as usize..offsets[high] as usize],
                );
            }
            summary(samples)
        })
    });
    let frequency = deployments as f64 / window.days_f64();
    let change_failure_rate = ratio(failed, deployments);
    let levels = Levels {
        deployment_frequency: Some(thresholds.deployment_frequency(frequency)),
        lead_time: lead_time.median.map(|m| thresholds.lead_time(m)),
        change_failure_rate: change_failure_rate.map(|r| thresholds.change_failure_rate(r)),
        recovery_time: recovery_time.median.map(|m| thresholds.recovery_time(m)),
    };
    WindowedMetrics {
        window: window.clone(),
        deployments,
        deployment_frequency_per_day: frequency,
        lead_time,
        failed_deployments: failed,
        change_failure_rate,
        recovery_time,
        rework_deployments: rework,
        rework_rate: ratio(rework, deployments),
        levels,
        lead_time_stages,
    }
}

fn incident_windows(
    lists: &[&[IncidentAtNow]],
    windows: &[Window],
    now: Timestamp,
    samples: &mut Vec<i64>,
) -> Vec<IncidentMetrics> {
    windows
        .iter()
        .map(|window| {
            samples.clear();
            for incidents in lists {
                samples.extend(incidents.iter().filter_map(|i| {
                    let closed = i.closed_at?;
                    let restore = closed - i.created_at;
                    (window.contains(now, Timestamp(closed)) && restore >= 0).then_some(restore)
                }));
            }
            IncidentMetrics {
                window: window.clone(),
                time_to_restore: summary(samples),
            }
        })
        .collect()
}

fn rollup(
    team: Option<Team>,
    members: &[&RepoResult],
    own_incidents: &[IncidentAtNow],
    config: &EngineConfig,
    now: Timestamp,
    samples: &mut Vec<i64>,
) -> RollupMetrics {
    let parts: Vec<&EnvResult> = members.iter().flat_map(|r| &r.environments).collect();
    let mut totals = Totals {
        lead_time: super::Histogram::new(),
        ..Totals::default()
    };
    for part in &parts {
        totals.deployments += part.totals.deployments;
        totals.failed_deployments += part.totals.failed_deployments;
        totals.attempt_failures += part.totals.attempt_failures;
        totals.lead_time.merge(&part.totals.lead_time);
    }
    RollupMetrics {
        team,
        repositories: members.len() as u64,
        totals,
        windows: config
            .windows
            .iter()
            .map(|w| {
                windowed(
                    &parts,
                    w,
                    now,
                    &config.thresholds,
                    stages_measured(config),
                    samples,
                )
            })
            .collect(),
        incidents_open: members
            .iter()
            .map(|r| r.incidents.as_slice())
            .chain([own_incidents])
            .map(|list| list.iter().filter(|i| i.closed_at.is_none()).count() as u64)
            .sum(),
        incident_windows: incident_windows(
            &members
                .iter()
                .map(|r| r.incidents.as_slice())
                .chain([own_incidents])
                .collect::<Vec<_>>(),
            &config.windows,
            now,
            samples,
        ),
    }
}
