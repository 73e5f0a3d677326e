//! One test per rule of `docs/computation.md`, named after the rule. Each builds a
//! small scenario by hand and checks the numbers a person would compute.

use crate::common;

use common::*;
use dora_collector::domain::{CompareStatus, DeploymentOutcome, Environment, StatusState};
use dora_collector::dora::Level;

const R: &str = "acme/api";
const PROD: &str = "production";

fn hours(h: f64) -> Option<f64> {
    Some(h * HOUR as f64)
}

// ---- computation.md § Windows and formulas, § Quantiles ------------------------

#[test]
fn empty_window_gives_absent_values() {
    // A configured repository with no events, and one whose only deployment is
    // outside the 7d window.
    let snapshot = Scenario::new()
        .team("acme/idle", "core")
        .chain(R, 1, 1, None, 0)
        .deploy(R, PROD, 1, DAY)
        .incident(R, 1, DAY, Some(DAY + HOUR))
        .windows(&[7])
        .compute(30 * DAY);
    for repository in ["acme/idle", R] {
        let w = scope(&snapshot, repository, PROD, "7d");
        assert_eq!(w.deployments, 0, "{repository}");
        assert_eq!(
            w.deployment_frequency_per_day, 0.0,
            "frequency with no deployments is 0"
        );
        assert_eq!(w.change_failure_rate, None);
        assert_eq!(w.rework_rate, None);
        assert_eq!(
            (
                w.lead_time.count,
                w.lead_time.sum,
                w.lead_time.median,
                w.lead_time.p90
            ),
            (0, 0.0, None, None)
        );
        assert_eq!((w.recovery_time.count, w.recovery_time.median), (0, None));
        assert_eq!(w.levels.deployment_frequency, Some(Level::Low));
        assert_eq!(
            (
                w.levels.lead_time,
                w.levels.change_failure_rate,
                w.levels.recovery_time
            ),
            (None, None, None)
        );
    }
    let ttr = &snapshot
        .incidents
        .iter()
        .find(|i| i.repository.as_str() == R)
        .unwrap()
        .windows[0];
    assert_eq!(
        (ttr.time_to_restore.count, ttr.time_to_restore.median),
        (0, None)
    );
}

#[test]
fn median_of_even_count_is_mean_of_the_two_middle_values() {
    // Four changes with lead times 1h, 2h, 3h, 10h deployed together.
    let deployed = 20 * DAY;
    let cases: &[(&[i64], Option<f64>, Option<f64>)] = &[
        (&[1, 2, 3, 10], hours(2.5), hours(3.0 + 0.7 * 7.0)),
        (&[1, 2, 3], hours(2.0), hours(2.8)),
        (&[5], hours(5.0), hours(5.0)),
    ];
    for (leads, median, p90) in cases {
        let mut s = Scenario::new()
            .windows(&[30])
            .chain(R, 1, 1, None, 0)
            .deploy(R, PROD, 1, DAY);
        for (i, lead) in leads.iter().enumerate() {
            let n = 2 + i as u32;
            s = s.commit(R, n, &[n - 1], deployed - lead * HOUR);
        }
        let head = 1 + leads.len() as u32;
        let snapshot = s.deploy(R, PROD, head, deployed).compute(deployed);
        let w = scope(&snapshot, R, PROD, "30d");
        assert_eq!(w.lead_time.count, leads.len() as u64);
        assert_close(w.lead_time.median, *median, "median");
        assert_close(w.lead_time.p90, *p90, "p90");
        let sum: i64 = leads.iter().map(|l| l * HOUR).sum();
        assert_eq!(w.lead_time.sum, sum as f64);
    }
}

#[test]
fn window_start_is_exclusive_and_end_inclusive() {
    let now = 20 * DAY;
    let start = now - 7 * DAY;
    // (deploy time, counted in the 7d window)
    let cases = [
        (start, false),
        (start + 1, true),
        (now, true),
        (now + 1, false),
    ];
    let mut s = Scenario::new()
        .windows(&[7])
        .chain(R, 1, 5, None, 0)
        .deploy(R, PROD, 1, DAY);
    for (i, (when, _)) in cases.iter().enumerate() {
        s = s.deploy(R, PROD, 2 + i as u32, *when);
    }
    let snapshot = s.compute(now);
    let w = scope(&snapshot, R, PROD, "7d");
    let expected = cases.iter().filter(|(_, counted)| *counted).count() as u64;
    assert_eq!(w.deployments, expected);
    assert_close(
        Some(w.deployment_frequency_per_day),
        Some(expected as f64 / 7.0),
        "frequency",
    );
    // The deployment after `now` does not exist yet at all.
    assert_eq!(totals(&snapshot, R, PROD).deployments, 4);
}

#[test]
fn deployment_frequency_is_deployments_per_day_and_classified() {
    let now = 40 * DAY;
    // (deployments in the last 30 days, expected level)
    let cases = [
        (30, Level::Elite),
        (5, Level::High),
        (1, Level::Medium),
        (0, Level::Low),
    ];
    for (count, level) in cases {
        let mut s = Scenario::new()
            .windows(&[30])
            .chain(R, 1, 1 + count, None, 0)
            .deploy(R, PROD, 1, 0);
        for i in 0..count {
            s = s.deploy(R, PROD, 2 + i, now - i as i64 * DAY);
        }
        let w = scope(&s.compute(now), R, PROD, "30d").clone();
        assert_close(
            Some(w.deployment_frequency_per_day),
            Some(count as f64 / 30.0),
            "frequency",
        );
        assert_eq!(
            w.levels.deployment_frequency,
            Some(level),
            "{count} deployments"
        );
    }
}

#[test]
fn change_failure_rate_is_failed_over_successful_by_deploy_time() {
    // 4 deployments in the window; the incident blames the 2nd. A failed attempt is
    // not a deployment.
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 5, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 2, 2 * DAY)
        .deploy(R, PROD, 3, 3 * DAY)
        .failed_attempt(R, PROD, 4, 3 * DAY + HOUR)
        .deploy(R, PROD, 5, 4 * DAY)
        .incident(R, 1, 2 * DAY + HOUR, Some(2 * DAY + 2 * HOUR))
        .compute(10 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!((w.deployments, w.failed_deployments), (4, 1));
    assert_close(w.change_failure_rate, Some(0.25), "cfr");
    assert_eq!(w.levels.change_failure_rate, Some(Level::Low));
    let t = totals(&snapshot, R, PROD);
    assert_eq!(
        (t.deployments, t.failed_deployments, t.attempt_failures),
        (4, 1, 1)
    );
}

#[test]
fn rates_and_quantiles_stay_absent_without_samples_but_frequency_is_zero() {
    let snapshot = Scenario::new().windows(&[7]).team(R, "core").compute(0);
    let org = &snapshot.organisation.windows[0];
    assert_eq!(org.deployment_frequency_per_day, 0.0);
    assert_eq!(
        (
            org.change_failure_rate,
            org.rework_rate,
            org.lead_time.median
        ),
        (None, None, None)
    );
}

// ---- computation.md § Events, § Change sets, § Lead time ------------------------

#[test]
fn only_production_environments_count_compared_case_insensitively() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 4, None, 0)
        .deploy(R, "Production", 1, DAY)
        .deploy(R, "PRODUCTION", 2, 2 * DAY)
        .deploy(R, "staging", 3, 3 * DAY)
        .deploy(R, "production-eu", 4, 4 * DAY)
        .compute(10 * DAY);
    assert_eq!(scope(&snapshot, R, PROD, "30d").deployments, 2);
    let environments: Vec<&str> = snapshot
        .repositories
        .iter()
        .map(|r| r.environment.as_str())
        .collect();
    assert_eq!(
        environments,
        vec!["production"],
        "one scope per configured production environment, configured spelling"
    );
}

#[test]
fn failed_attempts_and_pending_deployments_are_not_deployments() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 3, None, 0)
        .failed_attempt(R, PROD, 1, DAY)
        .deployment(R, PROD, 2, DeploymentOutcome::Pending)
        .failed_attempt(R, "staging", 3, DAY)
        .compute(10 * DAY);
    let t = totals(&snapshot, R, PROD);
    assert_eq!((t.deployments, t.attempt_failures), (0, 1));
    assert_eq!(scope(&snapshot, R, PROD, "30d").deployments, 0);
}

#[test]
fn deployment_outcome_follows_statuses() {
    // The status rule itself lives in the domain; this checks it feeds the engine:
    // the deploy time is the earliest success, inactive is ignored.
    use dora_collector::sources::github::rules::outcome_from_statuses;
    let outcome = outcome_from_statuses(&[
        (StatusState::InProgress, at(DAY)),
        (StatusState::Success, at(2 * DAY)),
        (StatusState::Success, at(3 * DAY)),
        (StatusState::Inactive, at(4 * DAY)),
    ]);
    assert_eq!(outcome, DeploymentOutcome::Succeeded { at: at(2 * DAY) });
    let snapshot = Scenario::new()
        .windows(&[1])
        .chain(R, 1, 1, None, 0)
        .deployment(R, PROD, 1, outcome)
        .compute(2 * DAY);
    assert_eq!(scope(&snapshot, R, PROD, "1d").deployments, 1);
}

#[test]
fn first_deployment_without_base_contributes_no_lead_time() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 10, None, 0)
        .deploy(R, PROD, 10, DAY)
        .compute(2 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!((w.deployments, w.lead_time.count), (1, 0));
    assert_eq!(
        snapshot.diagnostics.deployments_without_base,
        vec![(repo(R), env(PROD))]
    );
}

#[test]
fn changes_are_the_commits_since_the_previous_deployment() {
    // main: 1-2-3; feature 4 off 1; merge 5 = (3, 4). D1 ships 2, D2 ships 5:
    // changes of D2 are 3, 4, 5 (not 1, 2 — already shipped).
    let snapshot = Scenario::new()
        .windows(&[30])
        .commit(R, 1, &[], 0)
        .commit(R, 2, &[1], HOUR)
        .commit(R, 3, &[2], 2 * HOUR)
        .commit(R, 4, &[1], 3 * HOUR)
        .commit(R, 5, &[3, 4], 4 * HOUR)
        .deploy(R, PROD, 2, DAY)
        .deploy(R, PROD, 5, 2 * DAY)
        .compute(3 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!(w.lead_time.count, 3);
    assert_eq!(w.lead_time.sum, (3 * (2 * DAY) - (2 + 3 + 4) * HOUR) as f64);
}

#[test]
fn changes_from_an_explicit_compare_list() {
    // No parent links at all: the compare results say what shipped.
    let snapshot = Scenario::new()
        .windows(&[30])
        .commit(R, 1, &[], 0)
        .commit(R, 2, &[], HOUR)
        .commit(R, 3, &[], 2 * HOUR)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 3, 2 * DAY)
        .deploy(R, PROD, 3, 3 * DAY)
        .compare(R, 1, 3, CompareStatus::Ahead, &[2, 3])
        .compare(R, 3, 3, CompareStatus::Identical, &[])
        .compute(4 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!(w.lead_time.count, 2);
    assert_eq!(w.lead_time.sum, (2 * (2 * DAY) - 3 * HOUR) as f64);
}

#[test]
fn redeploying_the_same_sha_adds_no_changes() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 3, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 3, 2 * DAY)
        .deploy(R, PROD, 3, 3 * DAY)
        .compute(4 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!((w.deployments, w.lead_time.count), (3, 2));
}

#[test]
fn a_commit_counts_once_per_environment_even_after_a_rollback() {
    // 1-2-3. D1=1, D2=3 (ships 2, 3), D3=1 (rollback), D4=3 again: nothing new.
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 3, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 3, 2 * DAY)
        .deploy(R, PROD, 1, 3 * DAY)
        .deploy(R, PROD, 3, 4 * DAY)
        .deploy(R, "production-eu", 1, DAY)
        .deploy(R, "production-eu", 3, 5 * DAY)
        .with_config(|c| {
            c.production_environments
                .push(Environment::parse("production-eu").unwrap())
        })
        .compute(6 * DAY);
    assert_eq!(scope(&snapshot, R, PROD, "30d").lead_time.count, 2);
    assert_eq!(
        scope(&snapshot, R, "production-eu", "30d").lead_time.count,
        2,
        "counted again in another environment"
    );
}

#[test]
fn negative_lead_times_are_dropped() {
    // Commit 2 authored an hour after its deployment (clock skew); commit 3 at it.
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 1, None, 0)
        .commit(R, 2, &[1], 2 * DAY + HOUR)
        .commit(R, 3, &[2], 2 * DAY)
        .commit(R, 4, &[3], DAY)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 4, 2 * DAY)
        .compute(3 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!(w.lead_time.count, 2, "zero is kept, negative dropped");
    assert_eq!(w.lead_time.sum, DAY as f64);
    assert_eq!(totals(&snapshot, R, PROD).lead_time.count, 2);
}

#[test]
fn lead_time_start_can_be_the_pull_request() {
    // Squash merge: commit 2 authored at merge time; its PR's first commit a day earlier.
    let base = || {
        Scenario::new()
            .windows(&[30])
            .chain(R, 1, 1, None, 0)
            .commit(R, 2, &[1], 5 * DAY)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, PROD, 2, 6 * DAY)
            .pull_request(R, 7, 5 * DAY + HOUR, 2, &[], 4 * DAY, &[])
    };
    use dora_collector::dora::LeadTimeStart;
    let cases = [
        (LeadTimeStart::Commit, DAY),
        (LeadTimeStart::PrFirstCommit, 2 * DAY),
        (LeadTimeStart::PrMerged, DAY - HOUR),
    ];
    for (start, lead) in cases {
        let snapshot = base()
            .with_config(|c| c.lead_time_start = start)
            .compute(7 * DAY);
        assert_close(
            scope(&snapshot, R, PROD, "30d").lead_time.median,
            Some(lead as f64),
            &format!("{start:?}"),
        );
    }
}

/// `compute_with_trend` under a pull-request start: a pull request merged after a
/// week end, shipped before it, must not move that week's lead time (the engine
/// at that end does not know the merge yet); from the end that includes the merge
/// on, it does. Commit 2 (authored day 4) is deployed on day 5 and merged through
/// pull request 7 on day 10 (first commit day 3). Another repository of the same
/// team, with no pull request, ships changes of 3 h and 5 h in the same weeks: a
/// rollup combines the samples (it never takes a median of medians).
#[test]
fn a_pull_request_merged_after_a_week_end_does_not_move_that_weeks_lead_time() {
    use dora_collector::domain::Team;
    use dora_collector::dora::{self, EngineConfig, LeadTimeStart, SummaryStats, Window};
    const OTHER: &str = "acme/web";
    let now = 16 * DAY;
    let ends = [9 * DAY, 10 * DAY, now];
    let week = Window::days(7);
    // Per lead-time start: R's lead time (seconds) at each end, `None` when its
    // only change is dropped (deployed before its pull request's merge) or
    // outside the week.
    let cases = [
        (
            LeadTimeStart::PrFirstCommit,
            [Some(DAY), Some(2 * DAY), None],
        ),
        (LeadTimeStart::PrMerged, [Some(DAY), None, None]),
    ];
    for (start, expected) in cases {
        let scenario = Scenario::new()
            .team(R, "core")
            .team(OTHER, "core")
            .commit(R, 1, &[], 0)
            .commit(R, 2, &[1], 4 * DAY)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, PROD, 2, 5 * DAY)
            .pull_request(R, 7, 10 * DAY, 2, &[2], 3 * DAY, &[])
            .commit(OTHER, 101, &[], 0)
            .commit(OTHER, 102, &[101], 6 * DAY)
            .commit(OTHER, 103, &[102], 7 * DAY)
            .deploy(OTHER, PROD, 101, DAY)
            .deploy(OTHER, PROD, 102, 6 * DAY + 3 * HOUR)
            .deploy(OTHER, PROD, 103, 7 * DAY + 5 * HOUR)
            .with_config(|c| c.lead_time_start = start);
        let events = scenario.builder.build();
        let config = scenario.config;
        let trend_ends: Vec<_> = ends.iter().map(|e| at(*e)).collect();
        let (_, trend) = dora::compute_with_trend(&events, &config, at(now), &week, &trend_ends);
        for ((point, end), lead) in trend.iter().zip(ends).zip(expected) {
            let mut samples: Vec<i64> = lead.into_iter().collect();
            if end < now {
                samples.extend([3 * HOUR, 5 * HOUR]);
            }
            samples.sort_unstable();
            let count = samples.len();
            let median = match count {
                0 => None,
                n if n % 2 == 1 => Some(samples[n / 2] as f64),
                n => Some((samples[n / 2 - 1] + samples[n / 2]) as f64 / 2.0),
            };
            let what = format!("{start:?} at day {}", end / DAY);
            for values in [
                &point.organisation,
                &point.teams[&Team::parse("core").unwrap()],
            ] {
                assert_eq!(values.deployments, if end < now { 3 } else { 0 }, "{what}");
                let SummaryStats {
                    count: got,
                    sum,
                    median: got_median,
                    ..
                } = values.lead_time;
                assert_eq!(got, count as u64, "{what}");
                assert_eq!(sum, samples.iter().sum::<i64>() as f64, "{what}");
                assert_close(got_median, median, &what);
            }
            let weekly = EngineConfig {
                windows: vec![week.clone()],
                ..config.clone()
            };
            let alone = dora::compute(&events, &weekly, at(end));
            assert_eq!(
                point.organisation.lead_time, alone.organisation.windows[0].lead_time,
                "{what}"
            );
        }
    }
}

/// computation.md § Lead-time stages, one change per pull request, each
/// deployed alone at day 10 + n: a pull request with every boundary in order
/// (all four stages), one never reviewed (no pickup, no review), one reviewed
/// only after its merge (no review either), one opened before its first commit
/// (coding dropped, the rest kept), one whose commit is in two pull requests
/// (the one with the earlier first commit counts), and a direct push (no
/// stages). Under `commit` nothing is measured.
#[test]
fn lead_time_stages_follow_the_pull_request() {
    use dora_collector::dora::{LeadTimeStart, Stage};
    let deployed = |n: i64| 10 * DAY + n * HOUR;
    let scenario = || {
        Scenario::new()
            .windows(&[30])
            .chain(R, 1, 1, None, 0)
            .deploy(R, PROD, 1, DAY)
            // 2: coding 1 h, pickup 2 h, review 3 h, deploy to 10 d + 1 h.
            .commit(R, 2, &[1], 2 * DAY)
            .pull_request_with_stages(
                R,
                20,
                &[2],
                Some(2 * DAY),
                Some(2 * DAY + HOUR),
                Some(2 * DAY + 3 * HOUR),
                2 * DAY + 6 * HOUR,
            )
            .deploy(R, PROD, 2, deployed(1))
            // 3: never reviewed.
            .commit(R, 3, &[2], 3 * DAY)
            .pull_request_with_stages(
                R,
                30,
                &[3],
                Some(3 * DAY),
                Some(3 * DAY + HOUR),
                None,
                3 * DAY + 2 * HOUR,
            )
            .deploy(R, PROD, 3, deployed(2))
            // 4: first review after the merge: no review before it.
            .commit(R, 4, &[3], 4 * DAY)
            .pull_request_with_stages(
                R,
                40,
                &[4],
                Some(4 * DAY),
                Some(4 * DAY + HOUR),
                Some(4 * DAY + 9 * HOUR),
                4 * DAY + 2 * HOUR,
            )
            .deploy(R, PROD, 4, deployed(3))
            // 5: opened an hour before its first commit: coding dropped.
            .commit(R, 5, &[4], 5 * DAY)
            .pull_request_with_stages(
                R,
                50,
                &[5],
                Some(5 * DAY),
                Some(5 * DAY - HOUR),
                Some(5 * DAY + HOUR),
                5 * DAY + 2 * HOUR,
            )
            .deploy(R, PROD, 5, deployed(4))
            // 6: in pull requests 60 (first commit at 6 d) and 61 (at 5 d 12 h):
            // 61 counts, coding 1 h, pickup 1 h, review 1 h.
            .commit(R, 6, &[5], 6 * DAY)
            .pull_request_with_stages(
                R,
                60,
                &[6],
                Some(6 * DAY),
                Some(6 * DAY + HOUR),
                Some(6 * DAY + 2 * HOUR),
                6 * DAY + 3 * HOUR,
            )
            .pull_request_with_stages(
                R,
                61,
                &[6],
                Some(5 * DAY + 12 * HOUR),
                Some(5 * DAY + 13 * HOUR),
                Some(5 * DAY + 14 * HOUR),
                5 * DAY + 15 * HOUR,
            )
            .deploy(R, PROD, 6, deployed(5))
            // 7: a direct push.
            .commit(R, 7, &[6], 7 * DAY)
            .deploy(R, PROD, 7, deployed(6))
    };
    let snapshot = scenario()
        .with_config(|c| c.lead_time_start = LeadTimeStart::PrFirstCommit)
        .compute(20 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!(w.lead_time.count, 6, "every change has a lead time");
    let stages = w.lead_time_stages.as_ref().expect("measured");
    let stage = |s: Stage| &stages[s.index()];
    // coding: 1 h (2), 1 h (3), 1 h (4), dropped (5), 1 h (6 via 61).
    assert_eq!(stage(Stage::Coding).count, 4);
    assert_eq!(stage(Stage::Coding).sum, (4 * HOUR) as f64);
    // pickup: 2 h (2), 2 h (5), 1 h (6).
    assert_eq!(stage(Stage::Pickup).count, 3);
    assert_eq!(stage(Stage::Pickup).sum, (5 * HOUR) as f64);
    // review: 3 h (2), 1 h (5), 1 h (6).
    assert_eq!(stage(Stage::Review).count, 3);
    assert_eq!(stage(Stage::Review).sum, (5 * HOUR) as f64);
    // deploy: every change through a pull request, from its merge.
    let deploys = [
        deployed(1) - (2 * DAY + 6 * HOUR),
        deployed(2) - (3 * DAY + 2 * HOUR),
        deployed(3) - (4 * DAY + 2 * HOUR),
        deployed(4) - (5 * DAY + 2 * HOUR),
        deployed(5) - (5 * DAY + 15 * HOUR),
    ];
    assert_eq!(stage(Stage::Deploy).count, 5);
    assert_eq!(stage(Stage::Deploy).sum, deploys.iter().sum::<i64>() as f64);
    // The team and the organisation see the same samples.
    assert_eq!(
        snapshot.organisation.windows[0].lead_time_stages.as_ref(),
        Some(stages)
    );

    let commit = scenario().compute(20 * DAY);
    assert_eq!(scope(&commit, R, PROD, "30d").lead_time_stages, None);
}

#[test]
fn lead_time_level_follows_the_median() {
    let cases = [
        (HOUR, Level::Elite),
        (2 * DAY, Level::High),
        (10 * DAY, Level::Medium),
        (40 * DAY, Level::Low),
    ];
    for (lead, level) in cases {
        let deployed = 60 * DAY;
        let snapshot = Scenario::new()
            .windows(&[30])
            .chain(R, 1, 1, None, 0)
            .commit(R, 2, &[1], deployed - lead)
            .deploy(R, PROD, 1, 0)
            .deploy(R, PROD, 2, deployed)
            .compute(deployed);
        assert_eq!(
            scope(&snapshot, R, PROD, "30d").levels.lead_time,
            Some(level),
            "lead {lead}"
        );
    }
}

// ---- computation.md § Change failures, § Recovery, § Rollbacks and rework ------

#[test]
fn rollback_marks_the_previous_deployment_failed_and_is_itself_rework() {
    let scenario = |rollback_is_failure: bool, explicit: bool| {
        let mut s = Scenario::new()
            .windows(&[30])
            .chain(R, 1, 3, None, 0)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, PROD, 2, 2 * DAY)
            .deploy(R, PROD, 3, 3 * DAY)
            .deploy(R, PROD, 2, 3 * DAY + 2 * HOUR)
            .with_config(|c| c.rollback_is_failure = rollback_is_failure);
        if explicit {
            s = s.compare(R, 3, 2, CompareStatus::Behind, &[]);
        }
        s.compute(10 * DAY)
    };
    for explicit in [false, true] {
        let snapshot = scenario(true, explicit);
        let w = scope(&snapshot, R, PROD, "30d");
        assert_eq!(
            (w.deployments, w.failed_deployments, w.rework_deployments),
            (4, 1, 1),
            "explicit={explicit}"
        );
        assert_eq!(w.recovery_time.count, 1);
        assert_close(
            w.recovery_time.median,
            Some(2.0 * HOUR as f64),
            "recovered at the rollback's deploy time",
        );
        let w = scope(&scenario(false, explicit), R, PROD, "30d").clone();
        assert_eq!(
            (w.failed_deployments, w.rework_deployments),
            (0, 1),
            "rollback_is_failure = false"
        );
    }
}

#[test]
fn a_redeploy_after_a_rollback_is_not_a_rollback() {
    // D1=1, D2=3, D3=1 (rollback of D2), D4=3 (forward again): only D2 failed.
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 3, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 3, 2 * DAY)
        .deploy(R, PROD, 1, 3 * DAY)
        .deploy(R, PROD, 3, 4 * DAY)
        .compute(5 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!((w.failed_deployments, w.rework_deployments), (1, 1));
}

#[test]
fn incident_with_a_seven_character_root_cause_fails_the_first_deployment_that_shipped_it() {
    // 1-2-3-4. D1=1, D2=2, D3=4 (ships 3, 4), D4=4 (redeploy). Root cause: commit 3.
    let cause = sha(3).to_string();
    for prefix_len in [7, 12, 40] {
        let snapshot = Scenario::new()
            .windows(&[30])
            .chain(R, 1, 4, None, 0)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, PROD, 2, 2 * DAY)
            .deploy(R, PROD, 4, 3 * DAY)
            .deploy(R, PROD, 4, 4 * DAY)
            .incident_with_cause(R, 1, 5 * DAY, Some(5 * DAY + HOUR), &cause[..prefix_len])
            .compute(6 * DAY);
        let w = scope(&snapshot, R, PROD, "30d");
        assert_eq!(w.failed_deployments, 1, "prefix {prefix_len}");
        // D3 deployed at 3d, recovered at 5d+1h.
        assert_close(
            w.recovery_time.median,
            Some((2 * DAY + HOUR) as f64),
            "blames D3, not the redeploy",
        );
    }
}

#[test]
fn incident_root_cause_may_name_the_deployed_sha_itself() {
    // The base deployment has no changes, but it shipped its sha.
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 2, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 2, 2 * DAY)
        .incident_with_cause(R, 1, 3 * DAY, None, &sha(1).to_string()[..8])
        .compute(4 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!(w.failed_deployments, 1);
    assert_eq!(w.recovery_time.count, 0, "open incident: not recovered");
    assert_eq!(snapshot.incidents[0].open, 1);
}

#[test]
fn incident_without_root_cause_fails_the_latest_deployment_at_or_before_it() {
    // (incident created at, expected failed deployment index 0..3 by deploy time)
    let cases = [
        (2 * DAY, 1usize),
        (2 * DAY + 1, 1),
        (3 * DAY - 1, 1),
        (3 * DAY, 2),
        (9 * DAY, 2),
    ];
    for (created, failed_index) in cases {
        let snapshot = Scenario::new()
            .windows(&[1, 30])
            .chain(R, 1, 3, None, 0)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, PROD, 2, 2 * DAY)
            .deploy(R, PROD, 3, 3 * DAY)
            .incident(R, 1, created, None)
            .compute(3 * DAY);
        // The 1d window (2d, 3d] holds only deployment index 2.
        let day = scope(&snapshot, R, PROD, "1d");
        let expected_in_day = u64::from(failed_index == 2 && created <= 3 * DAY);
        assert_eq!(
            day.failed_deployments, expected_in_day,
            "incident at {created}"
        );
    }
}

#[test]
fn root_cause_that_matches_no_deployment_falls_back_to_time() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 2, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 2, 2 * DAY)
        .incident_with_cause(R, 1, 2 * DAY + HOUR, Some(2 * DAY + 3 * HOUR), "deadbeef00")
        .compute(4 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!(w.failed_deployments, 1);
    assert_close(
        w.recovery_time.median,
        Some(3.0 * HOUR as f64),
        "the 2d deployment recovered at 2d+3h",
    );
    assert_eq!(snapshot.diagnostics.unmatched_root_causes, 1);
}

#[test]
fn incident_before_any_deployment_is_attributed_to_none() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 1, None, 0)
        .incident(R, 1, HOUR, Some(2 * HOUR))
        .deploy(R, PROD, 1, DAY)
        .compute(2 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!(w.failed_deployments, 0);
    assert_eq!(snapshot.diagnostics.unattributed_incidents, 1);
    // It still counts for time to restore.
    assert_eq!(snapshot.incidents[0].windows[0].time_to_restore.count, 1);
}

#[test]
fn incident_in_a_repository_with_two_production_environments() {
    let two_envs = |c: &mut dora_collector::dora::EngineConfig| {
        c.production_environments
            .push(Environment::parse("production-eu").unwrap())
    };
    let base = || {
        Scenario::new()
            .windows(&[30])
            .with_config(two_envs)
            .chain(R, 1, 2, None, 0)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, "production-eu", 1, DAY)
            .deploy(R, PROD, 2, 2 * DAY)
            .deploy(R, "production-eu", 2, 3 * DAY)
    };
    // Without a root cause: only the latest across both environments (EU at 3d).
    let snapshot = base().incident(R, 1, 3 * DAY + HOUR, None).compute(4 * DAY);
    assert_eq!(scope(&snapshot, R, PROD, "30d").failed_deployments, 0);
    assert_eq!(
        scope(&snapshot, R, "production-eu", "30d").failed_deployments,
        1
    );
    // With a root cause: the first deployment that shipped it in each environment.
    let snapshot = base()
        .incident_with_cause(R, 1, 3 * DAY + HOUR, None, &sha(2).to_string()[..7])
        .compute(4 * DAY);
    assert_eq!(scope(&snapshot, R, PROD, "30d").failed_deployments, 1);
    assert_eq!(
        scope(&snapshot, R, "production-eu", "30d").failed_deployments,
        1
    );
    assert_eq!(snapshot.organisation.windows[0].failed_deployments, 2);
}

#[test]
fn one_incident_referenced_twice_fails_its_deployment_once() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 2, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 2, 2 * DAY)
        // The same issue read twice (edited between syncs): one identity.
        .incident_with_cause(R, 5, 2 * DAY + HOUR, None, &sha(2).to_string()[..7])
        .incident_with_cause(
            R,
            5,
            2 * DAY + HOUR,
            Some(2 * DAY + 2 * HOUR),
            &sha(2).to_string()[..7],
        )
        // Two more incidents that blame the same deployment.
        .incident(R, 6, 2 * DAY + HOUR, Some(2 * DAY + 3 * HOUR))
        .incident_with_cause(
            R,
            7,
            2 * DAY + HOUR,
            Some(2 * DAY + 4 * HOUR),
            &sha(2).to_string(),
        )
        .compute(3 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!((w.deployments, w.failed_deployments), (2, 1));
    assert_close(w.change_failure_rate, Some(0.5), "cfr");
    assert_close(
        w.recovery_time.median,
        Some(4.0 * HOUR as f64),
        "recovered when the last incident closed",
    );
    assert_eq!(totals(&snapshot, R, PROD).failed_deployments, 1);
}

#[test]
fn recovery_is_when_the_last_attributed_incident_closes_and_none_while_one_is_open() {
    let base = || {
        Scenario::new()
            .windows(&[30])
            .chain(R, 1, 2, None, 0)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, PROD, 2, 2 * DAY)
            .incident(R, 1, 2 * DAY + HOUR, Some(2 * DAY + 2 * HOUR))
    };
    let closed = base()
        .incident(R, 2, 2 * DAY + HOUR, Some(2 * DAY + 5 * HOUR))
        .compute(3 * DAY);
    assert_close(
        scope(&closed, R, PROD, "30d").recovery_time.median,
        Some(5.0 * HOUR as f64),
        "last close",
    );
    let open = base().incident(R, 2, 2 * DAY + HOUR, None).compute(3 * DAY);
    let w = scope(&open, R, PROD, "30d");
    assert_eq!((w.failed_deployments, w.recovery_time.count), (1, 0));
    // Closed after `now`: still open at `now`.
    let later = base()
        .incident(R, 2, 2 * DAY + HOUR, Some(4 * DAY))
        .compute(3 * DAY);
    assert_eq!(scope(&later, R, PROD, "30d").recovery_time.count, 0);
}

#[test]
fn recovery_time_belongs_to_the_window_of_its_recovery() {
    // Deployed 10 days ago, recovered 1 day ago: in the 7d recovery window, while the
    // failed deployment itself is outside it.
    let now = 20 * DAY;
    let snapshot = Scenario::new()
        .windows(&[7, 30])
        .chain(R, 1, 2, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 2, now - 10 * DAY)
        .incident(R, 1, now - 10 * DAY + HOUR, Some(now - DAY))
        .compute(now);
    let week = scope(&snapshot, R, PROD, "7d");
    assert_eq!(
        (
            week.deployments,
            week.failed_deployments,
            week.recovery_time.count
        ),
        (0, 0, 1)
    );
    assert_close(
        week.recovery_time.median,
        Some(9.0 * DAY as f64),
        "recovery",
    );
    assert_eq!(week.levels.recovery_time, Some(Level::Low));
}

#[test]
fn time_to_restore_covers_every_incident_closed_in_the_window() {
    let now = 30 * DAY;
    let snapshot = Scenario::new()
        .windows(&[7])
        .chain(R, 1, 1, None, 0)
        .deploy(R, PROD, 1, DAY)
        .incident(R, 1, now - 8 * DAY, Some(now - 2 * DAY)) // closed in window: 6d
        .incident(R, 2, now - 3 * DAY, Some(now - 3 * DAY + HOUR)) // 1h
        .incident(R, 3, now - 20 * DAY, Some(now - 10 * DAY)) // closed before the window
        .incident(R, 4, now - DAY, None) // open
        .incident_full(R, 5, now - DAY, Some(now), None, &["bug"]) // not an incident
        .incident_full(R, 6, now - DAY, Some(now), None, &["Incident"]) // label case: 1d
        .compute(now);
    let incidents = &snapshot.incidents[0];
    let ttr = &incidents.windows[0].time_to_restore;
    assert_eq!(ttr.count, 3);
    assert_close(ttr.median, Some(DAY as f64), "median of 1h, 1d, 6d");
    assert_eq!(incidents.open, 1);
    assert_eq!(incidents.open_since, vec![at(now - DAY)]);
}

#[test]
fn reopened_incident_is_open_until_closed_again() {
    // The source clears closed_at on reopen; the engine sees an open incident.
    let snapshot = Scenario::new()
        .windows(&[7])
        .chain(R, 1, 1, None, 0)
        .deploy(R, PROD, 1, DAY)
        .incident(R, 1, 2 * DAY, Some(3 * DAY))
        .incident(R, 1, 2 * DAY, None)
        .compute(4 * DAY);
    assert_eq!(snapshot.incidents[0].open, 1);
    assert_eq!(scope(&snapshot, R, PROD, "7d").recovery_time.count, 0);
}

#[test]
fn rework_is_a_rollback_a_revert_or_a_hotfix_merge() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 2, None, 0)
        .commit_msg(
            R,
            3,
            &[2],
            DAY,
            "Revert \"Add the thing\"\n\nThis reverts commit abc.",
        )
        .commit(R, 4, &[3], DAY)
        .commit(R, 5, &[4], DAY)
        .commit(R, 6, &[5], DAY)
        .deploy(R, PROD, 2, DAY) // base
        .deploy(R, PROD, 3, 2 * DAY) // revert: rework
        .deploy(R, PROD, 4, 3 * DAY) // plain
        .deploy(R, PROD, 5, 4 * DAY) // hotfix PR merge commit: rework
        .deploy(R, PROD, 6, 5 * DAY) // PR merge without the label: plain
        .pull_request(R, 10, 4 * DAY - HOUR, 5, &[], DAY, &["HotFix"])
        .pull_request(R, 11, 5 * DAY - HOUR, 6, &[], DAY, &["feature"])
        .compute(6 * DAY);
    let w = scope(&snapshot, R, PROD, "30d");
    assert_eq!((w.deployments, w.rework_deployments), (5, 2));
    assert_close(w.rework_rate, Some(0.4), "rework rate");
}

#[test]
fn events_after_now_do_not_exist_yet() {
    let scenario = || {
        Scenario::new()
            .windows(&[30])
            .chain(R, 1, 3, None, 0)
            .deploy(R, PROD, 1, DAY)
            .deploy(R, PROD, 2, 2 * DAY)
            .deploy(R, PROD, 1, 4 * DAY) // rollback, later
            .incident(R, 1, 5 * DAY, None)
    };
    let early = scenario().compute(3 * DAY);
    let w = scope(&early, R, PROD, "30d");
    assert_eq!(
        (w.deployments, w.failed_deployments, w.rework_deployments),
        (2, 0, 0)
    );
    assert_eq!(early.incidents[0].open, 0);
    let late = scenario().compute(6 * DAY);
    let w = scope(&late, R, PROD, "30d");
    assert_eq!(
        (w.deployments, w.failed_deployments, w.rework_deployments),
        (3, 2, 1)
    );
}

// ---- rollups --------------------------------------------------------------------

#[test]
fn team_median_is_the_median_of_the_union_of_samples() {
    // acme/a: leads 1h, 2h, 3h. acme/b: lead 10h. Union median 2.5h (a median of
    // medians would be 6h). Team CFR = total failed / total deployments.
    let deployed = 10 * DAY;
    let snapshot = Scenario::new()
        .windows(&[30])
        .team("acme/a", "payments")
        .team("acme/b", "payments")
        .team("acme/c", "web")
        .chain("acme/a", 1, 1, None, 0)
        .commit("acme/a", 2, &[1], deployed - HOUR)
        .commit("acme/a", 3, &[2], deployed - 2 * HOUR)
        .commit("acme/a", 4, &[3], deployed - 3 * HOUR)
        .deploy("acme/a", PROD, 1, DAY)
        .deploy("acme/a", PROD, 4, deployed)
        .chain("acme/b", 1, 1, None, 0)
        .commit("acme/b", 2, &[1], deployed - 10 * HOUR)
        .deploy("acme/b", PROD, 1, DAY)
        .deploy("acme/b", PROD, 2, deployed)
        .incident("acme/b", 1, deployed + 1, Some(deployed + HOUR))
        .chain("acme/c", 1, 1, None, 0)
        .deploy("acme/c", PROD, 1, DAY)
        .compute(deployed + DAY);
    let team = snapshot
        .teams
        .iter()
        .find(|t| t.team.as_ref().unwrap().as_str() == "payments")
        .unwrap();
    let w = &team.windows[0];
    assert_eq!(team.repositories, 2);
    assert_eq!(w.lead_time.count, 4);
    assert_close(w.lead_time.median, Some(2.5 * HOUR as f64), "team median");
    assert_eq!((w.deployments, w.failed_deployments), (4, 1));
    assert_close(w.change_failure_rate, Some(0.25), "team cfr");
    assert_close(
        Some(w.deployment_frequency_per_day),
        Some(4.0 / 30.0),
        "team frequency",
    );
    assert_eq!(team.incident_windows[0].time_to_restore.count, 1);
    let org = &snapshot.organisation.windows[0];
    assert_eq!((org.deployments, org.lead_time.count), (5, 4));
    assert_eq!(snapshot.organisation.totals.lead_time.count, 4);
    assert_eq!(snapshot.organisation.repositories, 3);
}

#[test]
fn repositories_without_a_team_are_unassigned() {
    let snapshot = Scenario::new()
        .windows(&[7])
        .chain(R, 1, 1, None, 0)
        .deploy(R, PROD, 1, DAY)
        .compute(DAY);
    assert_eq!(snapshot.repositories[0].team.as_str(), "unassigned");
    assert_eq!(
        snapshot.teams[0].team.as_ref().unwrap().as_str(),
        "unassigned"
    );
}

#[test]
fn cumulative_histogram_has_the_level_thresholds_as_buckets() {
    use dora_collector::dora::LEAD_TIME_BUCKETS;
    for bound in [3600.0, 86400.0, 604800.0, 2592000.0] {
        assert!(LEAD_TIME_BUCKETS.contains(&bound), "{bound}");
    }
    let snapshot = Scenario::new()
        .windows(&[7])
        .chain(R, 1, 1, None, 0)
        .commit(R, 2, &[1], 100 * DAY - HOUR) // exactly 1h: in the 3600 bucket
        .commit(R, 3, &[2], 100 * DAY - 2 * DAY) // 2 days
        .deploy(R, PROD, 1, 0)
        .deploy(R, PROD, 3, 100 * DAY)
        .compute(200 * DAY);
    let histogram = &totals(&snapshot, R, PROD).lead_time;
    let cumulative = histogram.cumulative();
    let at_bound = |b: f64| cumulative.iter().find(|(bound, _)| *bound == b).unwrap().1;
    assert_eq!(
        (
            at_bound(1800.0),
            at_bound(3600.0),
            at_bound(86400.0),
            at_bound(172800.0)
        ),
        (0, 1, 1, 2)
    );
    assert_eq!(cumulative.last().unwrap(), &(f64::INFINITY, 2));
    assert_eq!(histogram.sum, (HOUR + 2 * DAY) as f64);
}

#[test]
fn a_redeploy_of_a_sha_unknown_to_the_history_is_identical_not_unknown() {
    // Only the deployments are known (no commits, no compare results): the second
    // deployment of the same sha is a redeploy with no changes, not an unknown set.
    let snapshot = Scenario::new()
        .windows(&[30])
        .deploy(R, PROD, 1, DAY)
        .deploy(R, PROD, 1, 2 * DAY)
        .deploy(R, PROD, 2, 3 * DAY)
        .compute(4 * DAY);
    assert_eq!(scope(&snapshot, R, PROD, "30d").deployments, 3);
    assert_eq!(
        snapshot.diagnostics.deployments_with_unknown_changes, 1,
        "only the third"
    );
}

#[test]
fn the_worked_example_of_docs_computation_md() {
    // docs/computation.md § Worked example, in 2026 (T0 is 1 January 2026).
    let mar = |day: i64, hour: i64| (58 + day) * DAY + hour * HOUR;
    let feb = |day: i64, hour: i64| (30 + day) * DAY + hour * HOUR;
    let (a, b, c, d, e) = (1, 2, 3, 4, 5);
    let cause = sha(c).to_string()[..7].to_owned();
    let snapshot = Scenario::new()
        .windows(&[7, 30])
        .commit(R, a, &[], feb(20, 10))
        .commit(R, b, &[a], mar(3, 10))
        .commit(R, c, &[b], mar(4, 8))
        .commit(R, d, &[c], mar(4, 14))
        .commit(R, e, &[d], mar(6, 9))
        .deploy(R, PROD, a, feb(25, 12))
        .deploy(R, PROD, c, mar(4, 12))
        .deploy(R, PROD, d, mar(5, 10))
        .deploy(R, PROD, c, mar(5, 11))
        .failed_attempt(R, PROD, e, mar(6, 10))
        .deploy(R, PROD, e, mar(6, 11))
        .incident(R, 7, mar(7, 15), Some(mar(7, 18)))
        .incident_with_cause(R, 8, mar(8, 9), Some(mar(8, 21)), &cause)
        .compute(mar(10, 0));

    let w = scope(&snapshot, R, PROD, "7d");
    assert_eq!(w.deployments, 4);
    assert_close(
        Some(w.deployment_frequency_per_day),
        Some(4.0 / 7.0),
        "7d frequency",
    );
    assert_eq!((w.lead_time.count, w.lead_time.sum), (4, 187_200.0));
    assert_close(w.lead_time.median, hours(12.0), "lead time median");
    assert_close(w.lead_time.p90, hours(24.2), "lead time p90");
    assert_eq!(w.failed_deployments, 3);
    assert_close(w.change_failure_rate, Some(0.75), "change failure rate");
    assert_eq!(w.recovery_time.count, 3);
    assert_close(w.recovery_time.median, hours(31.0), "recovery median");
    assert_close(w.recovery_time.p90, hours(90.2), "recovery p90");
    assert_close(w.rework_rate, Some(0.25), "rework rate");
    assert_eq!(
        (
            w.levels.deployment_frequency,
            w.levels.lead_time,
            w.levels.change_failure_rate,
            w.levels.recovery_time
        ),
        (
            Some(Level::High),
            Some(Level::Elite),
            Some(Level::Low),
            Some(Level::Medium)
        )
    );
    let ttr = &snapshot.incidents[0].windows[0].time_to_restore;
    assert_close(ttr.median, hours(7.5), "time to restore median");
    assert_close(ttr.p90, hours(11.1), "time to restore p90");

    let w30 = scope(&snapshot, R, PROD, "30d");
    assert_eq!((w30.deployments, w30.lead_time.count), (5, 4));
    assert_close(
        Some(w30.deployment_frequency_per_day),
        Some(5.0 / 30.0),
        "30d frequency",
    );
    assert_eq!(w30.levels.deployment_frequency, Some(Level::High));
    assert_close(
        w30.change_failure_rate,
        Some(0.6),
        "30d change failure rate",
    );
    assert_close(w30.rework_rate, Some(0.2), "30d rework rate");

    let t = totals(&snapshot, R, PROD);
    assert_eq!(
        (t.deployments, t.failed_deployments, t.attempt_failures),
        (5, 3, 1)
    );
    let cumulative = t.lead_time.cumulative();
    let at_bound = |bound: f64| cumulative.iter().find(|(b, _)| *b == bound).unwrap().1;
    assert_eq!(
        [3600.0, 10800.0, 21600.0, 43200.0, 86400.0, 172800.0].map(at_bound),
        [0, 1, 2, 2, 3, 4]
    );
    assert_eq!(snapshot.diagnostics.deployments_without_base.len(), 1);
    assert_eq!(
        (
            snapshot.diagnostics.deployments_with_unknown_changes,
            snapshot.diagnostics.unattributed_incidents,
            snapshot.diagnostics.unmatched_root_causes
        ),
        (0, 0, 0)
    );
    assert_eq!(snapshot.organisation.windows[0], *w);
}

// ---- computation.md § Deployments: production by the source (GitLab's tier) ------

#[test]
fn environments_the_source_declares_production_count_under_their_own_name() {
    // `live` is no configured production environment, but the repository's source
    // (GitLab) says its tier is production; `Production` matches the configured
    // `production` case-insensitively and keeps the configured label; `staging`
    // counts for neither.
    let mut s = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 4, None, 0)
        .deploy(R, "live", 1, DAY)
        .deploy(R, "live", 2, 2 * DAY)
        .deploy(R, "staging", 3, 3 * DAY)
        .deploy(R, PROD, 4, 4 * DAY)
        .deploy("acme/web", "live", 1, DAY);
    s.builder
        .production_environments(&repo(R), vec![env("live"), env("Production"), env("live")]);
    let snapshot = s.compute(10 * DAY);
    assert_eq!(scope(&snapshot, R, "live", "30d").deployments, 2);
    assert_eq!(scope(&snapshot, R, PROD, "30d").deployments, 1);
    let labels: Vec<(&str, &str)> = snapshot
        .repositories
        .iter()
        .map(|m| (m.repository.as_str(), m.environment.as_str()))
        .collect();
    assert_eq!(
        labels,
        [(R, PROD), (R, "live"), ("acme/web", PROD)],
        "another repository's `live` is not production"
    );
}

// ---- computation.md § Team incidents -------------------------------------------

/// Two repositories of team `web`, one of team `core`: `acme/a` deployed at day 1
/// and 3, `acme/b` at day 2, `acme/c` (core) at day 4.
fn team_scenario() -> Scenario {
    Scenario::new()
        .windows(&[30])
        .team("acme/a", "web")
        .team("acme/b", "web")
        .team("acme/c", "core")
        .chain("acme/a", 1, 2, None, 0)
        .chain("acme/b", 11, 11, None, 0)
        .chain("acme/c", 21, 21, None, 0)
        .deploy("acme/a", PROD, 1, DAY)
        .deploy("acme/a", PROD, 2, 3 * DAY)
        .deploy("acme/b", PROD, 11, 2 * DAY)
        .deploy("acme/c", PROD, 21, 4 * DAY)
}

fn failed(snapshot: &dora_collector::dora::Snapshot, repository: &str) -> u64 {
    scope(snapshot, repository, PROD, "30d").failed_deployments
}

fn restores(snapshot: &dora_collector::dora::Snapshot, repository: &str) -> u64 {
    snapshot
        .incidents
        .iter()
        .find(|i| i.repository.as_str() == repository)
        .unwrap()
        .windows[0]
        .time_to_restore
        .count
}

fn team<'a>(
    snapshot: &'a dora_collector::dora::Snapshot,
    name: &str,
) -> &'a dora_collector::dora::RollupMetrics {
    snapshot
        .teams
        .iter()
        .find(|t| t.team.as_ref().is_some_and(|t| t.as_str() == name))
        .unwrap_or_else(|| panic!("no team {name}"))
}

#[test]
fn team_incident_without_root_cause_fails_the_team_deployment_latest_at_its_creation() {
    // At day 2.5 the latest production deployment of the team is acme/b's (day 2),
    // although acme/c (another team) and acme/a's day-3 deployment exist.
    let snapshot = team_scenario()
        .team_incident(
            "web",
            1,
            2 * DAY + 12 * HOUR,
            Some(2 * DAY + 14 * HOUR),
            None,
        )
        .compute(5 * DAY);
    assert_eq!(
        (
            failed(&snapshot, "acme/a"),
            failed(&snapshot, "acme/b"),
            failed(&snapshot, "acme/c")
        ),
        (0, 1, 0)
    );
    // It is then acme/b's incident: its time to restore, and the team's.
    assert_eq!(
        (restores(&snapshot, "acme/a"), restores(&snapshot, "acme/b")),
        (0, 1)
    );
    let web = team(&snapshot, "web");
    assert_eq!(web.incident_windows[0].time_to_restore.count, 1);
    assert_close(
        web.incident_windows[0].time_to_restore.median,
        Some(2.0 * HOUR as f64),
        "team time to restore",
    );
    assert_eq!(
        team(&snapshot, "core").incident_windows[0]
            .time_to_restore
            .count,
        0
    );
    assert_eq!(snapshot.diagnostics.unattributed_incidents, 0);
}

#[test]
fn team_incident_root_cause_picks_the_repository_that_shipped_it() {
    // The root cause is acme/a's first commit: its first deployment failed, not
    // the team's latest (acme/a's day-3 one at day 3.5).
    let cause = sha(1).to_string()[..10].to_owned();
    let snapshot = team_scenario()
        .team_incident("web", 1, 3 * DAY + 12 * HOUR, None, Some(&cause))
        .compute(5 * DAY);
    assert_eq!(
        (failed(&snapshot, "acme/a"), failed(&snapshot, "acme/b")),
        (1, 0)
    );
    let first = &snapshot
        .repositories
        .iter()
        .find(|r| r.repository.as_str() == "acme/a")
        .unwrap();
    assert_eq!(first.totals.failed_deployments, 1);
    // Open: counted once, in acme/a and in the team.
    let open = |repository: &str| {
        snapshot
            .incidents
            .iter()
            .find(|i| i.repository.as_str() == repository)
            .unwrap()
            .open
    };
    assert_eq!((open("acme/a"), open("acme/b")), (1, 0));
    assert_eq!(team(&snapshot, "web").incidents_open, 1);
    assert_eq!(snapshot.organisation.incidents_open, 1);

    // A root cause no repository of the team holds falls back to time (acme/a's
    // day-3 deployment is the latest at day 3.5) and is counted as unmatched;
    // acme/c holds nothing of the team's.
    let other = sha(21).to_string()[..10].to_owned();
    let snapshot = team_scenario()
        .team_incident("web", 1, 3 * DAY + 12 * HOUR, None, Some(&other))
        .compute(5 * DAY);
    assert_eq!(
        (
            failed(&snapshot, "acme/a"),
            failed(&snapshot, "acme/b"),
            failed(&snapshot, "acme/c")
        ),
        (1, 0, 0)
    );
    assert_eq!(snapshot.diagnostics.unmatched_root_causes, 1);
}

#[test]
fn team_incident_before_every_team_deployment_is_the_teams_own() {
    let snapshot = team_scenario()
        .team_incident("web", 1, 12 * HOUR, Some(18 * HOUR), None)
        .team_incident("web", 2, 13 * HOUR, None, None)
        // A team no repository belongs to still gets its rollup.
        .team_incident("ops", 3, 2 * DAY, Some(2 * DAY + HOUR), None)
        // Not yet opened at `now`: does not exist.
        .team_incident("web", 4, 6 * DAY, None, None)
        .compute(5 * DAY);
    for repository in ["acme/a", "acme/b", "acme/c"] {
        assert_eq!(failed(&snapshot, repository), 0, "{repository}");
        assert_eq!(restores(&snapshot, repository), 0, "{repository}");
    }
    let web = team(&snapshot, "web");
    assert_eq!(web.incident_windows[0].time_to_restore.count, 1);
    assert_close(
        web.incident_windows[0].time_to_restore.median,
        Some(6.0 * HOUR as f64),
        "team time to restore",
    );
    assert_eq!(web.incidents_open, 1);
    let ops = team(&snapshot, "ops");
    assert_eq!(
        (
            ops.repositories,
            ops.incident_windows[0].time_to_restore.count
        ),
        (0, 1)
    );
    assert_eq!(
        snapshot.organisation.incident_windows[0]
            .time_to_restore
            .count,
        2
    );
    assert_eq!(snapshot.organisation.incidents_open, 1);
    assert_eq!(snapshot.diagnostics.unattributed_incidents, 3);
}

#[test]
fn team_incident_at_equal_deploy_times_goes_to_the_first_repository_by_name() {
    let snapshot = Scenario::new()
        .windows(&[30])
        .team("acme/b", "web")
        .team("acme/a", "web")
        .chain("acme/a", 1, 1, None, 0)
        .chain("acme/b", 11, 11, None, 0)
        .deploy("acme/b", PROD, 11, DAY)
        .deploy("acme/a", PROD, 1, DAY)
        .team_incident("web", 1, 2 * DAY, None, None)
        .compute(3 * DAY);
    assert_eq!(
        (failed(&snapshot, "acme/a"), failed(&snapshot, "acme/b")),
        (1, 0)
    );
}

// ---- computation.md § Incidents of a team or of repositories (a set) -----------

#[test]
fn repositories_incident_without_root_cause_fails_the_listed_deployment_latest_at_its_creation() {
    // At day 3.5 acme/a's day-3 deployment is the latest of the set {a, b}, and
    // acme/c's (day 4) is not listed anyway; at day 2.5 it is acme/b's.
    let snapshot = team_scenario()
        .repositories_incident(&["acme/b", "acme/a"], 1, 3 * DAY + 12 * HOUR, None, None)
        .repositories_incident(
            &["acme/a", "acme/b"],
            2,
            2 * DAY + 12 * HOUR,
            Some(3 * DAY),
            None,
        )
        .repositories_incident(
            &["acme/b", "acme/c"],
            3,
            5 * DAY,
            Some(5 * DAY + HOUR),
            None,
        )
        .compute(6 * DAY);
    assert_eq!(
        (
            failed(&snapshot, "acme/a"),
            failed(&snapshot, "acme/b"),
            failed(&snapshot, "acme/c")
        ),
        (1, 1, 1)
    );
    assert_eq!(
        (
            restores(&snapshot, "acme/a"),
            restores(&snapshot, "acme/b"),
            restores(&snapshot, "acme/c")
        ),
        (0, 1, 1)
    );
    assert_eq!(snapshot.diagnostics.unattributed_incidents, 0);
}

#[test]
fn repositories_incident_root_cause_picks_the_listed_repository_that_shipped_it() {
    let cause = sha(1).to_string()[..10].to_owned();
    let snapshot = team_scenario()
        .repositories_incident(&["acme/a", "acme/c"], 1, 4 * DAY + HOUR, None, Some(&cause))
        .compute(5 * DAY);
    assert_eq!(
        (failed(&snapshot, "acme/a"), failed(&snapshot, "acme/c")),
        (1, 0)
    );
    // Held by no listed repository: rule 2 over the set (acme/c at day 4),
    // counted as unmatched.
    let other = sha(11).to_string()[..10].to_owned();
    let snapshot = team_scenario()
        .repositories_incident(&["acme/a", "acme/c"], 1, 4 * DAY + HOUR, None, Some(&other))
        .compute(5 * DAY);
    assert_eq!(
        (
            failed(&snapshot, "acme/a"),
            failed(&snapshot, "acme/b"),
            failed(&snapshot, "acme/c")
        ),
        (0, 0, 1)
    );
    assert_eq!(snapshot.diagnostics.unmatched_root_causes, 1);
}

#[test]
fn repositories_incident_before_every_listed_deployment_is_the_first_repositorys() {
    // No listed repository had deployed at 12 h: the first by name takes it (its
    // time to restore, no failed deployment); a one-repository set is simply
    // that repository's incident.
    let snapshot = team_scenario()
        .repositories_incident(&["acme/c", "acme/b"], 1, 12 * HOUR, Some(18 * HOUR), None)
        .repositories_incident(&["acme/c"], 2, 13 * HOUR, Some(14 * HOUR), None)
        .compute(5 * DAY);
    for repository in ["acme/a", "acme/b", "acme/c"] {
        assert_eq!(failed(&snapshot, repository), 0, "{repository}");
    }
    assert_eq!(
        (
            restores(&snapshot, "acme/a"),
            restores(&snapshot, "acme/b"),
            restores(&snapshot, "acme/c")
        ),
        (0, 1, 1)
    );
    assert_eq!(
        team(&snapshot, "web").incident_windows[0]
            .time_to_restore
            .count,
        1
    );
    assert_eq!(
        team(&snapshot, "core").incident_windows[0]
            .time_to_restore
            .count,
        1
    );
}

#[test]
fn a_repository_with_production_environments_of_its_own_counts_only_those() {
    // acme/api takes the default list ("production"); acme/billing its own ("prod").
    let snapshot = Scenario::new()
        .windows(&[30])
        .chain(R, 1, 2, None, 0)
        .chain("acme/billing", 11, 12, None, 0)
        .deploy(R, PROD, 1, DAY)
        .deploy(R, "prod", 2, 2 * DAY)
        .deploy("acme/billing", PROD, 11, DAY)
        .deploy("acme/billing", "Prod", 12, 2 * DAY)
        .with_config(|c| {
            c.production_by_repository
                .insert(repo("acme/billing"), vec![env("prod")]);
        })
        .compute(3 * DAY);
    assert_eq!(scope(&snapshot, R, PROD, "30d").deployments, 1);
    assert_eq!(
        scope(&snapshot, "acme/billing", "prod", "30d").deployments,
        1
    );
    let scopes: Vec<(String, String)> = snapshot
        .repositories
        .iter()
        .map(|r| (r.repository.to_string(), r.environment.as_str().to_owned()))
        .collect();
    assert_eq!(
        scopes,
        [
            ("acme/api".to_owned(), "production".to_owned()),
            ("acme/billing".to_owned(), "prod".to_owned())
        ]
    );
}
