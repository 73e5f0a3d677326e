//! Property tests of the engine over random small organisations: rates stay in
//! [0, 1], frequency × days = count, repositories are independent of each other,
//! results do not depend on the order events arrive in, and `compute_with_trend`'s
//! one-replay trend equals a `compute` at every trend end, and where a change has
//! all four lead-time stages they add up to its PR-based lead time.

use crate::common;

use common::*;
use dora_collector::domain::*;
use dora_collector::dora::{self, EngineConfig, Events, LeadTimeStart, Snapshot, Window};
use proptest::prelude::*;

/// One event of a random scenario, in a form that can be fed in any order.
#[derive(Debug, Clone)]
enum Event {
    Commit(RepoName, Commit),
    Deployment(Deployment),
    Incident(Incident),
    PullRequest(PullRequest),
}

fn repo_events(name: &'static str) -> impl Strategy<Value = Vec<Event>> {
    let commits = 1usize..40;
    commits.prop_flat_map(move |count| {
        let parents =
            prop::collection::vec((0usize..count.max(1), any::<bool>(), any::<bool>()), count);
        let authored = prop::collection::vec(0i64..60 * DAY, count);
        let deployments = prop::collection::vec(
            (0usize..count, 0i64..60 * DAY, 0u8..10, any::<bool>()),
            0..25,
        );
        let incidents = prop::collection::vec(
            (
                0i64..60 * DAY,
                prop::option::of(0i64..10 * DAY),
                prop::option::of(0usize..count),
                any::<bool>(),
            ),
            0..6,
        );
        // A pull request: its merge commit, other commits of its own (shared
        // between pull requests now and then), its merge time, or a deployment
        // it follows (merged up to a day before or ten days after that
        // deployment: often after the deployment that shipped its commits, and
        // after some trend ends), how long before the merge its first commit was
        // (unknown now and then), and its label.
        let prs = prop::collection::vec(
            (
                0usize..count,
                prop::collection::vec(0usize..count, 0..3),
                0i64..60 * DAY,
                prop::option::of((0usize..25, -DAY..10 * DAY)),
                prop::option::of(0i64..20 * DAY),
                any::<bool>(),
            ),
            0..6,
        );
        (parents, authored, deployments, incidents, prs).prop_map(
            move |(parents, authored, deployments, incidents, prs)| {
                let repository = repo(name);
                let salt = name.len() as u32 * 1000;
                let mut events = Vec::new();
                for (i, (parent, merge, revert)) in parents.iter().enumerate() {
                    let mut ps = Vec::new();
                    if i > 0 {
                        ps.push(sha(salt + (parent % i) as u32));
                        if *merge && i > 1 {
                            ps.push(sha(salt + ((parent + 1) % i) as u32));
                        }
                    }
                    let message = if *revert { "Revert \"x\"" } else { "change" };
                    events.push(Event::Commit(
                        repository.clone(),
                        Commit::new(sha(salt + i as u32), ps, at(authored[i]), message),
                    ));
                }
                for (id, (commit, when, kind, staging)) in deployments.iter().enumerate() {
                    let outcome = match kind {
                        0 => DeploymentOutcome::Failed { at: at(*when) },
                        1 => DeploymentOutcome::Pending,
                        _ => DeploymentOutcome::Succeeded { at: at(*when) },
                    };
                    events.push(Event::Deployment(Deployment {
                        source: DeploymentSource::GithubDeployments,
                        repository: repository.clone(),
                        id: id as u64,
                        environment: env(if *staging { "staging" } else { "production" }),
                        sha: sha(salt + *commit as u32),
                        created_at: at(*when),
                        outcome,
                    }));
                }
                for (number, (created, duration, cause, labelled)) in incidents.iter().enumerate() {
                    events.push(Event::Incident(Incident {
                        source: dora_collector::domain::IncidentSource::GithubIssues,
                        repository: repository.clone(),
                        number: number as u64,
                        created_at: at(*created),
                        closed_at: duration.map(|d| at(created + d)),
                        labels: vec![if *labelled { "incident" } else { "bug" }.to_owned()],
                        root_cause: cause.map(|c| {
                            ShaPrefix::parse(&sha(salt + c as u32).to_string()[..9]).unwrap()
                        }),
                    }));
                }
                for (number, (commit, own, merged, follows, coding, hotfix)) in
                    prs.iter().enumerate()
                {
                    let followed = follows.and_then(|(d, delay)| {
                        let (commit, when, _, _) = deployments.get(d % deployments.len().max(1))?;
                        Some((*commit, (when + delay).max(0)))
                    });
                    let (commit, merged) = followed.unwrap_or((*commit, *merged));
                    events.push(Event::PullRequest(PullRequest {
                        repository: repository.clone(),
                        number: 1000 + number as u64,
                        merged_at: Some(at(merged)),
                        merge_commit_sha: Some(sha(salt + commit as u32)),
                        labels: if *hotfix {
                            vec!["hotfix".to_owned()]
                        } else {
                            vec![]
                        },
                        commits: own.iter().map(|c| sha(salt + *c as u32)).collect(),
                        first_commit_at: coding.map(|before| at(merged - before)),
                        created_at: None,
                        first_review_at: None,
                    }));
                }
                events
            },
        )
    })
}

fn build(events: &[Event]) -> Events {
    let mut builder = Events::builder();
    for event in events {
        match event {
            Event::Commit(repository, commit) => builder.commit(repository, commit),
            Event::Deployment(d) => builder.deployment(d.clone()),
            Event::Incident(i) => builder.incident(i.clone()),
            Event::PullRequest(p) => builder.pull_request(p.clone()),
        };
    }
    builder.build()
}

fn config() -> EngineConfig {
    EngineConfig {
        windows: vec![Window::days(7), Window::days(30), Window::days(90)],
        ..EngineConfig::default()
    }
}

fn evaluate(events: &[Event], now: i64) -> Snapshot {
    dora::compute(&build(events), &config(), at(now))
}

fn every_windowed(snapshot: &Snapshot) -> impl Iterator<Item = &dora::WindowedMetrics> {
    snapshot
        .repositories
        .iter()
        .flat_map(|r| &r.windows)
        .chain(snapshot.teams.iter().flat_map(|t| &t.windows))
        .chain(&snapshot.organisation.windows)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn rates_stay_between_zero_and_one(events in repo_events("acme/a"), now in 0i64..70 * DAY) {
        let snapshot = evaluate(&events, now);
        for w in every_windowed(&snapshot) {
            for rate in [w.change_failure_rate, w.rework_rate].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&rate), "rate {rate}");
            }
            prop_assert!(w.failed_deployments <= w.deployments);
            prop_assert!(w.rework_deployments <= w.deployments);
            for stats in [&w.lead_time, &w.recovery_time] {
                if let (Some(median), Some(p90)) = (stats.median, stats.p90) {
                    prop_assert!(median >= 0.0 && median <= p90 + 1e-9);
                }
                prop_assert_eq!(stats.median.is_some(), stats.count > 0);
            }
        }
    }

    #[test]
    fn frequency_times_days_is_the_count(events in repo_events("acme/a"), now in 0i64..70 * DAY) {
        let snapshot = evaluate(&events, now);
        for w in every_windowed(&snapshot) {
            let count = w.deployment_frequency_per_day * w.window.days_f64();
            prop_assert!((count - w.deployments as f64).abs() < 1e-9);
        }
    }

    #[test]
    fn another_repositorys_events_never_change_this_repositorys_values(
        mine in repo_events("acme/a"),
        theirs in repo_events("acme/other"),
        now in 0i64..70 * DAY,
    ) {
        let alone = evaluate(&mine, now);
        let together: Vec<Event> = mine.iter().chain(&theirs).cloned().collect();
        let together = evaluate(&together, now);
        let pick = |s: &Snapshot| {
            (
                s.repositories.iter().filter(|r| r.repository.as_str() == "acme/a").cloned().collect::<Vec<_>>(),
                s.incidents.iter().filter(|r| r.repository.as_str() == "acme/a").cloned().collect::<Vec<_>>(),
            )
        };
        prop_assert_eq!(pick(&alone), pick(&together));
    }

    #[test]
    fn results_do_not_depend_on_input_order(
        (events, shuffled) in repo_events("acme/a").prop_flat_map(|e| (Just(e.clone()), Just(e).prop_shuffle())),
        now in 0i64..70 * DAY,
    ) {
        prop_assert_eq!(evaluate(&events, now), evaluate(&shuffled, now));
    }

    #[test]
    fn one_replay_trend_equals_a_compute_at_every_end(
        mine in repo_events("acme/a"),
        theirs in repo_events("acme/other"),
        now in 0i64..70 * DAY,
        step in 1i64..10 * DAY,
        start in prop::sample::select(vec![
            LeadTimeStart::Commit,
            LeadTimeStart::PrFirstCommit,
            LeadTimeStart::PrMerged,
        ]),
    ) {
        let events: Vec<Event> = mine.into_iter().chain(theirs).collect();
        let events = build(&events);
        let mut config = config();
        config.lead_time_start = start;
        config.teams.insert(repo("acme/a"), Team::parse("alpha").unwrap());
        let week = Window::days(7);
        // Twelve ends, the last after `now` (it sees nothing after `now`).
        let ends: Vec<Timestamp> = (0..12).map(|k| at(now + DAY - k * step)).collect();
        let (snapshot, trend) = dora::compute_with_trend(&events, &config, at(now), &week, &ends);
        prop_assert_eq!(&snapshot, &dora::compute(&events, &config, at(now)));
        prop_assert_eq!(trend.len(), ends.len());
        let weekly = EngineConfig { windows: vec![week.clone()], ..config.clone() };
        for (point, end) in trend.iter().zip(&ends) {
            prop_assert_eq!(point.end, *end);
            let expected = dora::compute(&events, &weekly, Timestamp(end.0.min(at(now).0)));
            let org = &expected.organisation.windows[0];
            prop_assert_eq!(point.organisation.deployments, org.deployments);
            prop_assert_eq!(&point.organisation.lead_time, &org.lead_time);
            prop_assert_eq!(point.teams.len(), expected.teams.len());
            for team in &expected.teams {
                let name = team.team.as_ref().expect("a team rollup names its team");
                let values = &point.teams[name];
                prop_assert_eq!(values.deployments, team.windows[0].deployments);
                prop_assert_eq!(&values.lead_time, &team.windows[0].lead_time);
            }
        }
    }
}

/// One pull request of [`stage_history`]: the gaps (seconds) from its first
/// commit to its opening, to its first review, to its merge.
type PullGaps = (i64, i64, i64, i64);

/// A linear history where every commit after the first is the squash commit of
/// a pull request whose stage boundaries are in order (so all four stages
/// exist), shipped by deployments at or after their merges; the first commit is
/// shipped by a base deployment at `T0`.
fn stage_history() -> impl Strategy<Value = (Vec<PullGaps>, Vec<(usize, i64)>)> {
    prop::collection::vec(
        (0i64..20 * DAY, 0i64..5 * DAY, 0i64..2 * DAY, 0i64..2 * DAY),
        1..15,
    )
    .prop_flat_map(|pulls| {
        let n = pulls.len();
        let cuts = prop::collection::vec((1usize..=n, 0i64..DAY), 1..8);
        (Just(pulls), cuts)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// computation.md § Lead-time stages: with `pr_first_commit`, a change whose
    /// four stages all exist has coding + pickup + review + deploy = deploy time
    /// − first commit = its lead time; here every change has them, so each
    /// stage's count equals the lead time's and their sums add up to its sum, in
    /// the repository, its team and the organisation.
    #[test]
    fn the_four_stages_add_up_to_the_pr_based_lead_time((pulls, cuts) in stage_history()) {
        let repository = repo("acme/stages");
        let mut builder = Events::builder();
        builder.commit(&repository, &Commit::new(sha(1), vec![], at(0), "base"));
        let mut merged = Vec::new();
        for (k, (start, coding, pickup, review)) in pulls.iter().enumerate() {
            let first = 1 + start;
            let opened = first + coding;
            let reviewed = opened + pickup;
            let merge = reviewed + review;
            merged.push(merge);
            let commit = sha(2 + k as u32);
            builder.commit(
                &repository,
                &Commit::new(commit, vec![sha(1 + k as u32)], at(merge), "squash"),
            );
            builder.pull_request(PullRequest {
                repository: repository.clone(),
                number: 1 + k as u64,
                merged_at: Some(at(merge)),
                merge_commit_sha: Some(commit),
                labels: vec![],
                commits: vec![],
                first_commit_at: Some(at(first)),
                created_at: Some(at(opened)),
                first_review_at: Some(at(reviewed)),
            });
        }
        let deploy = |id: u64, commit: CommitSha, when: i64| Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: repository.clone(),
            id,
            environment: env("production"),
            sha: commit,
            created_at: at(when),
            outcome: DeploymentOutcome::Succeeded { at: at(when) },
        };
        builder.deployment(deploy(0, sha(1), 0));
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut last = 0;
        for (id, (cut, delay)) in cuts.iter().enumerate() {
            let ready = merged[..*cut].iter().copied().max().unwrap_or(0);
            last = last.max(ready) + 1 + delay;
            builder.deployment(deploy(1 + id as u64, sha(1 + *cut as u32), last));
        }
        let events = builder.build();
        let config = EngineConfig {
            windows: vec![Window::days(90)],
            lead_time_start: LeadTimeStart::PrFirstCommit,
            ..EngineConfig::default()
        };
        let snapshot = dora::compute(&events, &config, at(last + DAY));
        let scopes = [
            &snapshot.repositories[0].windows[0],
            &snapshot.teams[0].windows[0],
            &snapshot.organisation.windows[0],
        ];
        for window in scopes {
            let stages = window.lead_time_stages.as_ref().expect("measured under pr_first_commit");
            prop_assert!(window.lead_time.count > 0);
            for stage in stages {
                prop_assert_eq!(stage.count, window.lead_time.count);
            }
            let total: f64 = stages.iter().map(|s| s.sum).sum();
            prop_assert_eq!(total, window.lead_time.sum);
        }
    }
}
