//! The synthetic organisation: determinism, and every feature the collector's
//! tests rely on actually appears, computed here independently of the generator
//! (outcomes by the domain rules, changes by walking the commit graph).

use dora_collector::domain::{CompareStatus, DeploymentOutcome, Timestamp};
use dora_collector::sim::{
    CommitMessage, NewDeployment, NewOutcome, Org, OrgSpec, RunConclusion, RunStatus, SimRepo,
    HOTFIX_LABEL, INCIDENT_LABEL, PRODUCTION, STAGING,
};
use std::collections::{HashMap, HashSet};

fn org() -> Org {
    Org::generate(&OrgSpec::default())
}

/// Ancestors of `start` (inclusive), by walking parent links.
fn reachable(repo: &SimRepo, start: u32) -> HashSet<u32> {
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        if seen.insert(i) {
            stack.extend(repo.commits[i as usize].parents());
        }
    }
    seen
}

/// Successful production deployments of a repository as (deploy time, sha index),
/// from either source, in deploy-time order.
fn production_successes(repo: &SimRepo) -> Vec<(Timestamp, u32)> {
    let mut out: Vec<(Timestamp, u32)> = Vec::new();
    for d in repo
        .deployments
        .iter()
        .filter(|d| &*d.environment == PRODUCTION)
    {
        if let DeploymentOutcome::Succeeded { at } = d.outcome() {
            out.push((at, repo.commit_index(&d.sha).unwrap()));
        }
    }
    for r in repo
        .workflow_runs
        .iter()
        .filter(|r| &*r.head_branch == "main")
    {
        if let DeploymentOutcome::Succeeded { at } = r.outcome() {
            out.push((at, repo.commit_index(&r.head_sha).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_org_other_seed_other_org() {
    let spec = OrgSpec::small(7);
    let a = Org::generate(&spec);
    let b = Org::generate(&spec);
    assert_eq!(a, b);
    let c = Org::generate(&OrgSpec {
        seed: 8,
        ..spec.clone()
    });
    assert_ne!(a, c);
    assert_ne!(a.repos[0].commits[1].sha, c.repos[0].commits[1].sha);
}

#[test]
fn history_is_a_valid_dag_in_the_past() {
    let org = org();
    for repo in &org.repos {
        let mut shas = HashSet::new();
        for (i, c) in repo.commits.iter().enumerate() {
            assert!(shas.insert(c.sha), "duplicate sha in {}", repo.name);
            assert!(c.parents().all(|p| (p as usize) < i), "parents come first");
            assert_eq!(
                c.parents().count() == 0,
                i == 0,
                "only the first commit is a root"
            );
            assert!(c.committer_date <= org.now);
            for p in c.parents() {
                assert!(repo.commits[p as usize].committer_date <= c.committer_date);
            }
            assert_eq!(repo.commit_index(&c.sha), Some(i as u32));
        }
        for d in &repo.deployments {
            assert!(d.created_at <= org.now);
            assert!(d
                .statuses
                .iter()
                .all(|s| s.created_at <= org.now && s.created_at >= d.created_at));
            assert!(d.statuses.windows(2).all(|w| w[0].id < w[1].id));
        }
        for w in repo.deployments.windows(2) {
            assert!(w[0].id < w[1].id && w[0].created_at <= w[1].created_at);
        }
        for r in &repo.workflow_runs {
            assert!(r.created_at <= r.updated_at && r.updated_at <= org.now);
        }
        for i in &repo.issues {
            assert!(i.created_at <= i.updated_at && i.updated_at <= org.now);
            assert!(i
                .closed_at
                .is_none_or(|c| c >= i.created_at && c <= org.now));
        }
    }
}

#[test]
fn deployments_ship_main_and_statuses_give_every_outcome() {
    let org = org();
    let (mut succeeded, mut failed, mut pending, mut staging, mut inactive) = (0, 0, 0, 0, 0);
    let mut failure_then_success = 0;
    for repo in &org.repos {
        let main = reachable(repo, repo.main_head);
        for d in &repo.deployments {
            let index = repo.commit_index(&d.sha).expect("deployed sha exists");
            assert!(main.contains(&index), "deployments ship shas of main");
            match d.outcome() {
                DeploymentOutcome::Succeeded { .. } => succeeded += 1,
                DeploymentOutcome::Failed { .. } => failed += 1,
                DeploymentOutcome::Pending => pending += 1,
            }
            if &*d.environment == STAGING {
                staging += 1;
            }
            use dora_collector::domain::StatusState::*;
            let states: Vec<_> = d.statuses.iter().map(|s| s.state).collect();
            if states.contains(&Inactive) {
                inactive += 1;
            }
            if states.iter().any(|s| matches!(s, Failure | Error)) && states.contains(&Success) {
                failure_then_success += 1;
            }
        }
    }
    assert!(succeeded > 500, "{succeeded}");
    assert!(failed > 20, "{failed}");
    assert!(pending >= 1, "{pending}");
    assert!(staging > 100, "{staging}");
    assert!(inactive > 50, "{inactive}");
    assert!(failure_then_success >= 1);
    // The latest deployment of the first repositories is pending (spec.pending_deployments).
    let latest = org.repos[0].deployments.last().unwrap();
    assert_eq!(latest.outcome(), DeploymentOutcome::Pending);
}

#[test]
fn rollbacks_reverts_hotfixes_merges_and_skew_appear() {
    let org = org();
    let (mut rollbacks, mut skewed, mut merges_on_main, mut reverts, mut hotfixes) =
        (0, 0, 0, 0, 0);
    let mut incident_labelled_pulls = 0;
    let mut squash_and_merge = HashSet::new();
    for repo in &org.repos {
        let main = reachable(repo, repo.main_head);
        let deploys = production_successes(repo);
        let mut deployed: HashSet<u32> = HashSet::new();
        for pair in deploys.windows(2) {
            let ((_, prev), (at, this)) = (pair[0], pair[1]);
            let cmp = repo.compare(prev, this);
            if cmp.status == CompareStatus::Behind {
                rollbacks += 1;
                assert!(
                    deployed.contains(&this),
                    "a rollback redeploys an earlier sha"
                );
            }
            for change in &cmp.ahead {
                if repo.commits[*change as usize].author_date > at && deployed.insert(*change) {
                    skewed += 1;
                }
                deployed.insert(*change);
            }
            deployed.insert(prev);
            deployed.insert(this);
        }
        for i in &main {
            let c = &repo.commits[*i as usize];
            merges_on_main += usize::from(c.is_merge());
            if repo.commit_message(*i).starts_with("Revert \"") {
                reverts += 1;
                assert!(matches!(
                    c.message,
                    CommitMessage::Revert(_) | CommitMessage::Squash(_)
                ));
            }
        }
        for p in &repo.pulls {
            if let Some(merged_at) = p.merged_at {
                let merge = p.merge_commit.expect("merged PRs have a merge commit");
                assert!(main.contains(&merge), "merge_commit_sha is on main");
                squash_and_merge.insert(p.merge_style);
                assert!(p.created_at <= merged_at);
                if p.has_label(HOTFIX_LABEL) {
                    hotfixes += 1;
                }
            }
            incident_labelled_pulls += usize::from(p.has_label(INCIDENT_LABEL));
        }
    }
    assert!(rollbacks >= 3, "{rollbacks}");
    assert!(skewed >= 1, "{skewed}");
    assert!(merges_on_main > 20, "{merges_on_main}");
    assert!(reverts >= 3, "{reverts}");
    assert!(hotfixes >= 5, "{hotfixes}");
    assert!(
        incident_labelled_pulls >= 1,
        "PRs labelled incident appear in /issues"
    );
    assert_eq!(squash_and_merge.len(), 2, "both merge styles");
}

#[test]
fn incidents_cover_root_causes_and_states() {
    let org = org();
    let (mut matching, mut unmatched, mut none) = (0, 0, 0);
    let (mut open, mut closed, mut reopened_open, mut reopened_closed, mut plain) = (0, 0, 0, 0, 0);
    let mut lookalike = 0;
    for repo in &org.repos {
        for issue in &repo.issues {
            if !issue.is_incident() {
                plain += 1;
                lookalike += usize::from(issue.has_label("incident-review"));
                continue;
            }
            match issue.root_cause() {
                Some(prefix) if repo.commits.iter().any(|c| prefix.matches(&c.sha)) => {
                    matching += 1
                }
                Some(_) => unmatched += 1,
                None => none += 1,
            }
            match (issue.is_open(), issue.reopened_at.is_some()) {
                (true, true) => reopened_open += 1,
                (true, false) => open += 1,
                (false, true) => reopened_closed += 1,
                (false, false) => closed += 1,
            }
            if issue.is_open() && issue.reopened_at.is_some() {
                assert_eq!(issue.state_reason(), Some("reopened"));
            }
        }
    }
    assert!(
        matching > 10 && unmatched >= 1 && none > 5,
        "{matching} {unmatched} {none}"
    );
    assert!(
        closed > 10 && open >= 1 && reopened_open >= 1 && reopened_closed >= 1,
        "{closed} {open} {reopened_open} {reopened_closed}"
    );
    assert!(plain > 50 && lookalike >= 1, "{plain} {lookalike}");
}

#[test]
fn workflow_run_repositories_have_every_kind_of_run() {
    let org = org();
    let spec = OrgSpec::default();
    let runs: Vec<_> = org
        .repos
        .iter()
        .filter(|r| r.workflow().is_some())
        .collect();
    assert_eq!(runs.len(), spec.workflow_run_repositories);
    assert!(runs.iter().all(|r| r.deployments.is_empty()));
    assert!(org
        .repos
        .iter()
        .filter(|r| r.workflow().is_none())
        .all(|r| r.workflow_runs.is_empty()));
    let all: Vec<_> = runs.iter().flat_map(|r| &r.workflow_runs).collect();
    let on_main = |c| {
        all.iter()
            .filter(|r| &*r.head_branch == "main" && r.conclusion == Some(c))
            .count()
    };
    assert!(on_main(RunConclusion::Success) > 50);
    assert!(on_main(RunConclusion::Failure) > 3);
    assert!(
        all.iter().any(|r| &*r.head_branch != "main"),
        "runs on other branches"
    );
    assert!(all.iter().all(|r| !r.head_branch.contains('\0')));
    assert!(
        all.iter().any(|r| r.status == RunStatus::InProgress),
        "a run in progress"
    );
    let numbers: HashSet<_> = runs[0].workflow_runs.iter().map(|r| r.run_number).collect();
    assert_eq!(numbers.len(), runs[0].workflow_runs.len());
}

#[test]
fn numbers_ids_teams_and_people_are_consistent() {
    let org = org();
    assert_eq!(org.teams.len(), OrgSpec::default().teams);
    let mut ids = HashSet::new();
    for repo in &org.repos {
        assert!(repo.team < org.teams.len());
        let mut numbers: Vec<u64> = repo
            .issues
            .iter()
            .map(|i| i.number)
            .chain(repo.pulls.iter().map(|p| p.number))
            .collect();
        numbers.sort_unstable();
        let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(
            numbers, expected,
            "issues and PRs share one number sequence"
        );
        for i in &repo.issues {
            assert!(ids.insert(("issue", i.id)));
        }
        for p in &repo.pulls {
            assert!(ids.insert(("issue", p.issue_id)) && ids.insert(("pull", p.id)));
        }
        for d in &repo.deployments {
            assert!(ids.insert(("deployment", d.id)));
        }
        let open: Vec<_> = repo.pulls.iter().filter(|p| p.is_open()).collect();
        assert_eq!(repo.branches.len(), open.len());
        for b in &repo.branches {
            assert_eq!(repo.resolve(&b.name), Some(b.head));
        }
    }
    let per_team: HashMap<usize, usize> = org.repos.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r.team).or_default() += 1;
        m
    });
    assert_eq!(per_team.len(), org.teams.len());
    assert!(org.people.len() > 8 && org.people[0].bot);
}

#[test]
fn mutations_add_what_tests_need() {
    let mut org = Org::generate(&OrgSpec::small(3));
    let now = Timestamp(org.now.0 + 3600);
    org.set_now(now);
    let before = org.repos[0].deployments.len();
    let sha = org
        .push_commit(
            0,
            "Add a thing",
            Timestamp(now.0 - 600),
            Timestamp(now.0 - 300),
        )
        .unwrap();
    let id = org
        .add_deployment(
            0,
            NewDeployment {
                environment: PRODUCTION.into(),
                sha: None,
                created_at: Timestamp(now.0 - 120),
                outcome: NewOutcome::Success { after: 60 },
            },
        )
        .unwrap();
    let repo = &org.repos[0];
    assert_eq!(repo.deployments.len(), before + 1);
    let d = repo.deployment(id).unwrap();
    assert_eq!(d.sha, sha);
    assert_eq!(
        d.outcome(),
        DeploymentOutcome::Succeeded {
            at: Timestamp(now.0 - 60)
        }
    );
    assert!(id > org.repos[0].deployments[before - 1].id);

    let number = org
        .open_incident(0, Timestamp(now.0 - 50), Some(&sha.to_string()[..10]))
        .unwrap();
    assert!(org.repos[0].issue(number).unwrap().is_open());
    org.close_issue(0, number, Timestamp(now.0 - 10)).unwrap();
    let issue = org.repos[0].issue(number).unwrap();
    assert_eq!(issue.closed_at, Some(Timestamp(now.0 - 10)));
    assert!(issue.root_cause().unwrap().matches(&sha));
    org.reopen_issue(0, number, now).unwrap();
    assert_eq!(
        org.repos[0].issue(number).unwrap().state_reason(),
        Some("reopened")
    );

    let workflow_repo = org
        .repos
        .iter()
        .position(|r| r.workflow().is_some())
        .unwrap();
    assert!(org
        .add_deployment(
            workflow_repo,
            NewDeployment {
                environment: PRODUCTION.into(),
                sha: None,
                created_at: now,
                outcome: NewOutcome::Queued
            }
        )
        .is_err());
    assert!(org.close_issue(0, 999_999, now).is_err());
    assert!(org.push_commit(99, "x", now, now).is_err());
}

#[test]
fn ship_everywhere_adds_one_deployment_per_repository() {
    let mut org = Org::generate(&OrgSpec::small(4));
    let at = Timestamp(org.now.0 + 600);
    let before: Vec<(usize, usize)> = org
        .repos
        .iter()
        .map(|r| (r.deployments.len(), r.workflow_runs.len()))
        .collect();
    let shipped = org.ship_everywhere(at, 3600);
    assert_eq!(shipped.len(), org.repos.len());
    assert_eq!(org.now, Timestamp(at.0 + 60));
    for (repo, id) in shipped {
        let r = &org.repos[repo];
        let head = r.main_head_sha();
        assert_eq!(
            r.commits[r.main_head as usize].author_date,
            Timestamp(at.0 - 3600)
        );
        if r.workflow().is_some() {
            assert_eq!(r.workflow_runs.len(), before[repo].1 + 1);
            let run = r.workflow_runs.iter().find(|w| w.id == id).unwrap();
            assert_eq!((run.head_sha, &*run.head_branch), (head, "main"));
            assert_eq!(
                run.outcome(),
                DeploymentOutcome::Succeeded {
                    at: Timestamp(at.0 + 60)
                }
            );
        } else {
            assert_eq!(r.deployments.len(), before[repo].0 + 1);
            let d = r.deployment(id).unwrap();
            assert_eq!((d.sha, &*d.environment), (head, PRODUCTION));
            assert_eq!(
                d.outcome(),
                DeploymentOutcome::Succeeded {
                    at: Timestamp(at.0 + 60)
                }
            );
        }
    }
}
