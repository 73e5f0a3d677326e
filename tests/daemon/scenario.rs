//! A tiny, hand-built organisation with every feature once, so that a full
//! `/metrics` page stays small enough to read (and to check by hand).
//!
//! `acme/api` (team payments, Deployments API), times relative to `NOW`:
//! - base: deployment of c1 at −100d (success), and a failed one at −95d, both
//!   before the 90-day lookback; a staging deployment at −20d;
//! - D1 −9d ships c2, c3 and a `hotfix` pull request (squash, merged −10d): rework;
//! - D2 −7d ships c4 and its revert c5: rework; D3 −6d redeploys D1's sha: a
//!   rollback (D2 failed, D3 rework);
//! - D4 −4d fails (an attempt failure); D5 −3d ships c6;
//! - incident 1 opened −3d+2h naming c6 as root cause (D5 failed), closed −3d+6h;
//!   incident 2 opened −1d, still open, no root cause (attributed to D5 by time);
//! - D6 −2h still in progress (pending).
//!
//! `acme/web` (team web, workflow runs of deploy.yml on main):
//! - a successful run at −96d (the base), successes at −29d and −13d, a failure at
//!   −14d, a cancelled run at −2d, a run in progress since −1h;
//! - an incident opened −14d+1h, closed −13d+2h.

use dora_collector::domain::Timestamp;
use dora_collector::sim::{
    MergeStyle, NewDeployment, NewOutcome, NewPull, NewRun, Org, RunConclusion, RunEvent,
    DEFAULT_NOW,
};

pub const NOW: Timestamp = DEFAULT_NOW;
pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;

pub const API: usize = 0;
pub const WEB: usize = 1;

pub fn at(offset: i64) -> Timestamp {
    Timestamp(NOW.0 + offset)
}

/// What the tests refer to later.
pub struct Tiny {
    pub org: Org,
    /// The pending deployment of acme/api.
    pub pending_deployment: u64,
    /// The open incident of acme/api.
    pub open_incident: u64,
    /// Every terminal deployment id of acme/api read in the window or as base.
    pub terminal_deployments: Vec<u64>,
    /// The failed production deployment between the base and the window: checked
    /// once as a base candidate, never stored.
    pub old_failure: u64,
}

fn deploy(org: &mut Org, env: &str, created: i64, outcome: NewOutcome) -> u64 {
    org.add_deployment(
        API,
        NewDeployment {
            environment: env.to_owned(),
            sha: None,
            created_at: at(created),
            outcome,
        },
    )
    .unwrap()
}

fn run(org: &mut Org, created: i64, conclusion: Option<RunConclusion>) -> u64 {
    org.add_workflow_run(
        WEB,
        NewRun {
            branch: None,
            sha: None,
            event: RunEvent::Push,
            created_at: at(created),
            conclusion,
            duration: 300,
        },
    )
    .unwrap()
}

pub fn tiny() -> Tiny {
    let mut org = Org::empty("acme", NOW);
    let payments = org.add_team("payments");
    let web_team = org.add_team("web");
    org.add_person("alice", "Alice Example");
    assert_eq!(org.add_repo("api", payments, at(-200 * DAY), false), API);
    assert_eq!(org.add_repo("web", web_team, at(-200 * DAY), true), WEB);

    // acme/api
    let success = |after| NewOutcome::Success { after };
    org.push_commit(API, "Add checkout", at(-101 * DAY), at(-101 * DAY))
        .unwrap();
    let base = deploy(&mut org, "production", -100 * DAY, success(300));
    org.push_commit(API, "Tune retries", at(-96 * DAY), at(-96 * DAY))
        .unwrap();
    let old_failure = deploy(
        &mut org,
        "production",
        -95 * DAY,
        NewOutcome::Failure { after: 300 },
    );
    deploy(&mut org, "staging", -20 * DAY, success(300));
    org.push_commit(API, "Add search", at(-12 * DAY), at(-12 * DAY))
        .unwrap();
    org.push_commit(API, "Fix search paging", at(-11 * DAY), at(-11 * DAY))
        .unwrap();
    let (_, hotfix_merge) = org
        .merge_pull(
            API,
            NewPull {
                title: "Hotfix: double charge".to_owned(),
                labels: vec!["hotfix".to_owned()],
                commit_dates: vec![at(-10 * DAY - 3 * HOUR)],
                opened_at: at(-10 * DAY - 4 * HOUR),
                merged_at: at(-10 * DAY),
                style: MergeStyle::Squash,
            },
        )
        .unwrap();
    let d1 = deploy(&mut org, "production", -9 * DAY, success(600));
    org.push_commit(API, "Add invoices", at(-8 * DAY), at(-8 * DAY))
        .unwrap();
    org.push_commit(
        API,
        "Revert \"Add invoices\"",
        at(-7 * DAY - 12 * HOUR),
        at(-7 * DAY - 12 * HOUR),
    )
    .unwrap();
    let d2 = deploy(&mut org, "production", -7 * DAY, success(600));
    let d3 = org
        .add_deployment(
            API,
            NewDeployment {
                environment: "production".to_owned(),
                sha: Some(hotfix_merge),
                created_at: at(-6 * DAY),
                outcome: success(300),
            },
        )
        .unwrap();
    let c6 = org
        .push_commit(API, "Add exports", at(-5 * DAY), at(-5 * DAY))
        .unwrap();
    let d4 = deploy(
        &mut org,
        "production",
        -4 * DAY,
        NewOutcome::Failure { after: 300 },
    );
    let d5 = deploy(&mut org, "production", -3 * DAY, success(600));
    let first_incident = org
        .open_incident(API, at(-3 * DAY + 2 * HOUR), Some(&c6.to_string()[..7]))
        .unwrap();
    org.close_issue(API, first_incident, at(-3 * DAY + 6 * HOUR))
        .unwrap();
    let open_incident = org.open_incident(API, at(-DAY), None).unwrap();
    let pending_deployment = deploy(&mut org, "production", -2 * HOUR, NewOutcome::InProgress);

    // acme/web
    org.push_commit(WEB, "Add home page", at(-97 * DAY), at(-97 * DAY))
        .unwrap();
    run(&mut org, -96 * DAY, Some(RunConclusion::Success));
    org.push_commit(WEB, "Add pricing page", at(-30 * DAY), at(-30 * DAY))
        .unwrap();
    run(&mut org, -29 * DAY, Some(RunConclusion::Success));
    org.push_commit(WEB, "Add blog", at(-15 * DAY), at(-15 * DAY))
        .unwrap();
    run(&mut org, -14 * DAY, Some(RunConclusion::Failure));
    run(&mut org, -13 * DAY, Some(RunConclusion::Success));
    org.push_commit(
        WEB,
        "Add careers page",
        at(-2 * DAY - HOUR),
        at(-2 * DAY - HOUR),
    )
    .unwrap();
    run(&mut org, -2 * DAY, Some(RunConclusion::Cancelled));
    run(&mut org, -HOUR, None);
    let web_incident = org.open_incident(WEB, at(-14 * DAY + HOUR), None).unwrap();
    org.close_issue(WEB, web_incident, at(-13 * DAY + 2 * HOUR))
        .unwrap();

    Tiny {
        org,
        pending_deployment,
        open_incident,
        terminal_deployments: vec![base, d1, d2, d3, d4, d5],
        old_failure,
    }
}
