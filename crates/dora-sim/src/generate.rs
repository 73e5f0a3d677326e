//! The deterministic generator: [`OrgSpec`] in, [`Org`] out.
//!
//! Each repository is an event-driven simulation over `(now - days, now]` with its
//! own pseudo-random stream (ChaCha8, whose output is portable across platforms),
//! so the same spec always gives the same organisation. Processes: changes landing on `main` (direct pushes, squash-merged
//! and merge-commit pull requests, reverts, hotfixes), production and staging
//! deployment attempts (successes, failures, rollbacks), incidents after
//! deployments, plain issues, and open pull requests at the end. Nothing is later
//! than `now`: a deployment still running at `now` simply has no final status yet.
//!
//! It does not try to reproduce any real organisation's statistics; it produces
//! every situation the DORA definitions care about, at configurable rates.

use crate::domain::{CommitSha, StatusState, Timestamp};
use crate::model::{
    bump, CommitMessage, MergeStyle, Org, RunConclusion, RunEvent, RunStatus, SimBranch, SimCommit,
    SimDeployment, SimIssue, SimPull, SimStatus, SimWorkflowRun, Text, HOTFIX_LABEL,
    INCIDENT_LABEL, NO_PARENT,
};
use crate::names;
use crate::spec::{OrgSpec, PRODUCTION, SECONDS_PER_DAY, STAGING};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// People per repository (bounded below and above): enough authors for variety.
const PEOPLE_PER_REPO: usize = 3;
/// At least this many people in any organisation.
const MIN_PEOPLE: usize = 8;
/// At most this many people, however large the organisation.
const MAX_PEOPLE: usize = 400;
/// Share of landings that are direct pushes to `main` (no pull request).
const DIRECT_PUSH_SHARE: f64 = 0.15;
/// Chance that another commit follows in a pull request (geometric length).
const MORE_PR_COMMITS: f64 = 0.45;
/// Share of pull requests closed without merging.
const ABANDONED_PR_SHARE: f64 = 0.04;
/// Median seconds from a pull request's first commit to its merge.
const PR_LEAD_MEDIAN: f64 = 18.0 * 3600.0;
/// Median seconds from authoring a direct push to pushing it.
const DIRECT_LEAD_MEDIAN: f64 = 2.0 * 3600.0;
/// Spread (sigma of the logarithm) of the lead-time distributions.
const LEAD_SIGMA: f64 = 1.0;
/// Bounds on a deployment's run time, seconds.
const DEPLOY_SECONDS: (i64, i64) = (60, 900);
/// Median seconds from a bad deployment to its incident being opened.
const INCIDENT_DELAY_MEDIAN: f64 = 2.0 * 3600.0;
/// Median seconds to close an incident.
const INCIDENT_TTR_MEDIAN: f64 = 3.0 * 3600.0;
/// Share of incidents that take long to resolve (so some are open at `now`).
const LONG_INCIDENT_SHARE: f64 = 0.15;
/// Median seconds to close a long incident.
const LONG_INCIDENT_TTR_MEDIAN: f64 = 3.0 * 86_400.0;
/// Share of closed incidents that get reopened.
const REOPEN_SHARE: f64 = 0.15;
/// Share of reopened incidents closed again.
const RECLOSE_SHARE: f64 = 0.6;
/// Share of root causes that match nothing (a typo or a sha from elsewhere).
const UNUSABLE_ROOT_CAUSE_SHARE: f64 = 0.1;
/// Chance that an incident is followed by a hotfix pull request.
const HOTFIX_AFTER_INCIDENT: f64 = 0.4;
/// Chance that a hotfix pull request is also labelled `incident` (a PR in the
/// issues list that the collector must skip).
const HOTFIX_ALSO_INCIDENT_LABEL: f64 = 0.3;
/// Chance that the first production deployment after an incident is a rollback.
const ROLLBACK_AFTER_INCIDENT: f64 = 0.35;
/// Seconds after an incident during which a rollback is likely.
const ROLLBACK_WINDOW: i64 = 6 * 3600;
/// Chance that a rollback is followed by a revert of the rolled-back head.
const REVERT_AFTER_ROLLBACK: f64 = 0.7;
/// Share of superseded successful deployments that get an `inactive` status.
const INACTIVE_SHARE: f64 = 0.6;
/// Share of failed attempts that succeed later within the same deployment.
const RETRIED_FAILURE_SHARE: f64 = 0.1;
/// Share of deploy workflow runs that are cancelled.
const CANCELLED_RUN_SHARE: f64 = 0.02;
/// Share of pull requests in workflow-run repositories that run the deploy
/// workflow on their own branch (not deployments).
const BRANCH_RUN_SHARE: f64 = 0.3;
/// Seconds between the squash merge of the lower of two stacked pull requests
/// and the merge of the upper one.
const STACK_MERGE_GAP: i64 = 600;
/// Open pull requests per repository per day over the last days of history.
const OPEN_PRS_PER_DAY: f64 = 0.5;
/// How many final days of history may hold still-open pull requests.
const OPEN_PR_DAYS: i64 = 4;
/// Share of plain issues that get closed.
const PLAIN_ISSUE_CLOSED_SHARE: f64 = 0.6;
/// Share of plain issues labelled `incident-review`: a label that merely starts
/// with `incident` and must not make an incident.
const LOOKALIKE_LABEL_SHARE: f64 = 0.05;
/// Bounds on a repository's age before history starts, days.
const REPO_AGE_DAYS: (i64, i64) = (30, 400);
/// Commits made before history starts (so early compares have a past).
const PRE_HISTORY_COMMITS: u32 = 6;

/// Severity labels an incident carries besides `incident`.
const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3"];
/// Labels of plain issues.
const PLAIN_LABELS: &[&str] = &["bug", "enhancement", "documentation"];

impl Org {
    /// Generates the organisation described by `spec`. Same spec, same org.
    pub fn generate(spec: &OrgSpec) -> Org {
        let mut org = Org::empty_in_block(&spec.owner, spec.now, spec.id_block);
        let teams = spec.teams.max(1);
        for t in 0..teams {
            org.add_team(&names::team_name(t));
        }
        let people = (spec.repositories * PEOPLE_PER_REPO).clamp(MIN_PEOPLE, MAX_PEOPLE);
        for p in 0..people {
            let (login, name) = names::person(p);
            org.add_person(&login, &name);
        }
        let workflow_from = spec
            .repositories
            .saturating_sub(spec.workflow_run_repositories);
        for index in 0..spec.repositories {
            let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
            rng.set_stream(index as u64 + 1);
            let team = index % teams;
            let members: Vec<u32> = (1..org.people.len() as u32)
                .filter(|p| (*p as usize - 1) % teams == team)
                .collect();
            let mut sim = RepoSim::new(
                &mut org,
                spec,
                index,
                team,
                index >= workflow_from,
                members,
                rng,
            );
            sim.run();
            sim.finish();
        }
        org
    }
}

/// What happens at a point in time in one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A change lands on `main` (the kind is drawn when it happens).
    Land,
    /// A hotfix pull request lands.
    Hotfix,
    /// A revert of commit `.0` lands.
    Revert(u32),
    Deploy {
        production: bool,
    },
    PlainIssue,
}

/// Per-environment deployment state.
#[derive(Default)]
struct EnvState {
    /// Shas of successful deployments, in order.
    deployed: Vec<CommitSha>,
    /// Index into `landed` up to which production has deployed.
    deployed_pos: usize,
    /// Index into the repository's deployments of the latest success.
    last_success: Option<usize>,
}

struct RepoSim<'a> {
    org: &'a mut Org,
    spec: &'a OrgSpec,
    repo: usize,
    workflow: bool,
    members: Vec<u32>,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<(i64, u64, Event)>>,
    seq: u64,
    /// `(committer date, index)` of each successive `main` head.
    main_line: Vec<(Timestamp, u32)>,
    /// Commits in the order they became reachable from `main`.
    landed: Vec<u32>,
    production: EnvState,
    staging: EnvState,
    /// A rollback is likely until this time (after an incident).
    rollback_until: i64,
    subject: u32,
    production_env: Arc<str>,
    staging_env: Arc<str>,
    main_ref: Arc<str>,
}

/// A log-normal draw with the given median and [`LEAD_SIGMA`], in seconds.
fn lognormal(rng: &mut ChaCha8Rng, median: f64) -> i64 {
    let z: f64 = StandardNormal.sample(rng);
    (median * (LEAD_SIGMA * z).exp()) as i64
}

impl<'a> RepoSim<'a> {
    fn new(
        org: &'a mut Org,
        spec: &'a OrgSpec,
        index: usize,
        team: usize,
        workflow: bool,
        members: Vec<u32>,
        mut rng: ChaCha8Rng,
    ) -> Self {
        let start = spec.start().0;
        let age = rng.random_range(REPO_AGE_DAYS.0..=REPO_AGE_DAYS.1) * SECONDS_PER_DAY;
        let repo = org.add_repo(
            &names::repo_name(index),
            team,
            Timestamp(start - age),
            workflow,
        );
        let members = if members.is_empty() {
            vec![org.people.len() as u32 - 1]
        } else {
            members
        };
        let mut sim = RepoSim {
            org,
            spec,
            repo,
            workflow,
            members,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            main_line: Vec::new(),
            landed: Vec::new(),
            production: EnvState::default(),
            staging: EnvState::default(),
            rollback_until: i64::MIN,
            subject: 0,
            production_env: PRODUCTION.into(),
            staging_env: STAGING.into(),
            main_ref: "main".into(),
        };
        // Random shas for generated history; the initial commit gets one too.
        let first_author = sim.member();
        let sha = sim.random_sha();
        {
            let r = &mut sim.org.repos[repo];
            r.sha_index.clear();
            r.commits[0].sha = sha;
            r.commits[0].author = first_author;
            r.sha_index.insert(sha, 0);
        }
        sim.main_line.push((Timestamp(start - age), 0));
        sim.subject = sim.rng.random_range(0..1000);
        for k in 0..PRE_HISTORY_COMMITS {
            let at = start - age + (age * i64::from(k + 1)) / i64::from(PRE_HISTORY_COMMITS + 1);
            sim.direct_commit(at, None);
        }
        sim.landed.clear();
        sim
    }

    fn member(&mut self) -> u32 {
        let i = self.rng.random_range(0..self.members.len());
        self.members[i]
    }

    fn random_sha(&mut self) -> CommitSha {
        let mut bytes = [0u8; 20];
        self.rng.fill(&mut bytes);
        CommitSha::from_bytes(bytes)
    }

    fn next_subject(&mut self) -> u32 {
        self.subject = self.subject.wrapping_add(self.rng.random_range(1..40));
        self.subject
    }

    fn schedule(&mut self, at: i64, event: Event) {
        if at <= self.spec.now.0 {
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq, event)));
        }
    }

    /// Seconds until the next arrival of a Poisson process with `per_day` rate.
    fn gap(&mut self, per_day: f64) -> Option<i64> {
        if !(per_day > 0.0 && per_day.is_finite()) {
            return None;
        }
        let exp = Exp::new(per_day / SECONDS_PER_DAY as f64).ok()?;
        Some((exp.sample(&mut self.rng) as i64).max(1))
    }

    fn schedule_process(&mut self, from: i64, per_day: f64, event: Event) {
        if let Some(gap) = self.gap(per_day) {
            self.schedule(from + gap, event);
        }
    }

    fn landing_rate(&self) -> f64 {
        let pr_commits = 1.0 / (1.0 - MORE_PR_COMMITS);
        let ms = self.spec.merge_commit_share.clamp(0.0, 1.0);
        let per_landing =
            DIRECT_PUSH_SHARE + (1.0 - DIRECT_PUSH_SHARE) * ((1.0 - ms) + ms * (pr_commits + 1.0));
        self.spec.deployments_per_day * self.spec.commits_per_deployment / per_landing
    }

    fn run(&mut self) {
        let start = self.spec.start().0;
        self.schedule_process(start, self.landing_rate(), Event::Land);
        self.schedule_process(
            start,
            self.spec.deployments_per_day,
            Event::Deploy { production: true },
        );
        if !self.workflow {
            self.schedule_process(
                start,
                self.spec.staging_deployments_per_day,
                Event::Deploy { production: false },
            );
        }
        self.schedule_process(start, self.spec.issues_per_day, Event::PlainIssue);
        while let Some(Reverse((at, _, event))) = self.queue.pop() {
            match event {
                Event::Land => {
                    self.land(at);
                    self.schedule_process(at, self.landing_rate(), Event::Land);
                }
                Event::Hotfix => self.pull_request(at, true, None),
                Event::Revert(commit) => self.revert(at, commit),
                Event::Deploy { production } => {
                    self.deploy(at, production);
                    let rate = if production {
                        self.spec.deployments_per_day
                    } else {
                        self.spec.staging_deployments_per_day
                    };
                    self.schedule_process(at, rate, Event::Deploy { production });
                }
                Event::PlainIssue => {
                    self.plain_issue(at);
                    self.schedule_process(at, self.spec.issues_per_day, Event::PlainIssue);
                }
            }
        }
        self.open_pull_requests();
        if is_pending_repo(self.repo, self.spec) {
            self.pending_deployment();
        }
    }

    fn repo_mut(&mut self) -> &mut crate::model::SimRepo {
        &mut self.org.repos[self.repo]
    }

    fn push(&mut self, commit: SimCommit) -> u32 {
        self.repo_mut().push_commit(commit)
    }

    fn main_head(&self) -> u32 {
        self.org.repos[self.repo].main_head
    }

    fn set_main_head(&mut self, index: u32, at: Timestamp) {
        self.repo_mut().main_head = index;
        self.main_line.push((at, index));
        self.landed.push(index);
    }

    /// The `main` head at time `at`.
    fn main_at(&self, at: i64) -> u32 {
        let i = self.main_line.partition_point(|(t, _)| t.0 <= at);
        self.main_line[i.saturating_sub(1)].1
    }

    fn direct_commit(&mut self, at: i64, message: Option<CommitMessage>) {
        let lead = lognormal(&mut self.rng, DIRECT_LEAD_MEDIAN);
        let author = self.member();
        let sha = self.random_sha();
        let message = match message {
            Some(m) => m,
            None => CommitMessage::Change(self.next_subject()),
        };
        let parent = self.main_head();
        let floor = self.org.repos[self.repo].commits[parent as usize]
            .committer_date
            .0;
        let index = self.push(SimCommit {
            sha,
            parent_slots: [parent, NO_PARENT],
            author_date: Timestamp((at - lead).max(floor)),
            committer_date: Timestamp(at.max(floor)),
            author,
            message,
        });
        self.set_main_head(index, Timestamp(at.max(floor)));
    }

    fn land(&mut self, at: i64) {
        if self.main_line.len() > 1 && self.rng.random_bool(self.spec.revert_rate.clamp(0.0, 1.0)) {
            // Revert one of the last few changes on main.
            let back = self
                .rng
                .random_range(1..=6usize)
                .min(self.main_line.len() - 1);
            let target = self.main_line[self.main_line.len() - back].1;
            if target != 0 {
                self.revert(at, target);
                return;
            }
        }
        if self.rng.random_bool(DIRECT_PUSH_SHARE) {
            self.direct_commit(at, None);
        } else {
            let hotfix = self.rng.random_bool(self.spec.hotfix_rate.clamp(0.0, 1.0));
            let stacked = !hotfix
                && self.spec.stacked_pull_share > 0.0
                && self
                    .rng
                    .random_bool(self.spec.stacked_pull_share.clamp(0.0, 1.0));
            if stacked {
                self.stacked_pull_requests(at);
            } else {
                self.pull_request(at, hotfix, None);
            }
        }
    }

    fn revert(&mut self, at: i64, target: u32) {
        if self.rng.random_bool(0.5) {
            self.direct_commit(at, Some(CommitMessage::Revert(target)));
        } else {
            self.pull_request(at, false, Some(target));
        }
    }

    /// A pull request merged at `at` (or abandoned), optionally a hotfix or the
    /// revert of commit `revert`.
    fn pull_request(&mut self, at: i64, hotfix: bool, revert: Option<u32>) {
        let lead = lognormal(&mut self.rng, PR_LEAD_MEDIAN).clamp(900, 20 * SECONDS_PER_DAY);
        let first = at - lead;
        let fork = self.main_at(first);
        let fork_date = self.org.repos[self.repo].commits[fork as usize]
            .committer_date
            .0;
        let first = first.max(fork_date + 1);
        let mut count = 1;
        // A revert pull request is the one revert commit.
        while revert.is_none() && count < 20 && self.rng.random_bool(MORE_PR_COMMITS) {
            count += 1;
        }
        let mut dates: Vec<i64> = (1..count)
            .map(|_| self.rng.random_range(first..=(at - 60).max(first)))
            .collect();
        dates.push(first);
        dates.sort_unstable();
        let author = self.member();
        let subject = self.next_subject();
        let start = self.org.repos[self.repo].commits.len() as u32;
        let mut parent = fork;
        for date in &dates {
            let sha = self.random_sha();
            let message = match revert {
                Some(target) => CommitMessage::Revert(target),
                None => CommitMessage::Change(self.next_subject()),
            };
            parent = self.push(SimCommit {
                sha,
                parent_slots: [parent, NO_PARENT],
                author_date: Timestamp(*date),
                committer_date: Timestamp(*date),
                author,
                message,
            });
        }
        let end = parent + 1;
        let created_at = (first + self.rng.random_range(0..=3600))
            .min(at - 30)
            .max(first);
        let mut labels = Vec::new();
        if hotfix {
            labels.push(HOTFIX_LABEL.to_owned());
            if self.rng.random_bool(HOTFIX_ALSO_INCIDENT_LABEL) {
                labels.push(INCIDENT_LABEL.to_owned());
            }
        }
        let title = match revert {
            Some(target) => Text::Custom(
                format!(
                    "Revert \"{}\"",
                    self.org.repos[self.repo].commit_subject(target)
                )
                .into(),
            ),
            None => Text::Subject(subject),
        };
        let style = if self
            .rng
            .random_bool(self.spec.merge_commit_share.clamp(0.0, 1.0))
        {
            MergeStyle::MergeCommit
        } else {
            MergeStyle::Squash
        };
        let pull_index = self.org.repos[self.repo].pulls.len() as u32;
        let abandoned = !hotfix && revert.is_none() && self.rng.random_bool(ABANDONED_PR_SHARE);
        let comments = self.rng.random_range(0..6);
        let mut pull = SimPull {
            id: 0,
            issue_id: 0,
            number: 0,
            title,
            labels,
            user: author,
            commits: start..end,
            base: fork,
            created_at: Timestamp(created_at),
            updated_at: Timestamp(at),
            closed_at: Some(Timestamp(at)),
            merged_at: None,
            merge_commit: None,
            merge_style: style,
            draft: false,
            comments,
            first_review_at: None,
        };
        if !abandoned {
            let main = self.main_head();
            let (slots, message, commit_author) = match style {
                MergeStyle::Squash => {
                    ([main, NO_PARENT], CommitMessage::Squash(pull_index), author)
                }
                MergeStyle::MergeCommit => {
                    // The feature commits become reachable from main with the merge.
                    self.landed.extend(start..end);
                    (
                        [main, parent],
                        CommitMessage::Merge(pull_index),
                        self.member(),
                    )
                }
            };
            let sha = self.random_sha();
            let merge = self.push(SimCommit {
                sha,
                parent_slots: slots,
                author_date: Timestamp(at),
                committer_date: Timestamp(at),
                author: commit_author,
                message,
            });
            self.set_main_head(merge, Timestamp(at));
            pull.merged_at = Some(Timestamp(at));
            pull.merge_commit = Some(merge);
        }
        if self.workflow && self.rng.random_bool(BRANCH_RUN_SHARE) {
            let branch: Arc<str> = pull.branch_name_placeholder().into();
            let head_sha = self.org.repos[self.repo].commits[(end - 1) as usize].sha;
            let conclusion = if self.rng.random_bool(0.8) {
                RunConclusion::Success
            } else {
                RunConclusion::Failure
            };
            let run_at = created_at + self.rng.random_range(10..300);
            self.workflow_run(
                run_at,
                branch,
                head_sha,
                RunEvent::Push,
                Some(conclusion),
                false,
            );
        }
        self.repo_mut().pulls.push(pull);
    }

    /// Two stacked pull requests landing at `at`: the lower one's commits, the
    /// upper one's commits on top of them; the lower one squash-merged
    /// [`STACK_MERGE_GAP`] seconds before the upper one is merged with a merge
    /// commit, which brings every commit of both onto `main`. The lower one's
    /// commits are in both pull requests.
    fn stacked_pull_requests(&mut self, at: i64) {
        let lead = lognormal(&mut self.rng, PR_LEAD_MEDIAN).clamp(900, 20 * SECONDS_PER_DAY);
        let fork = self.main_at(at - lead);
        let fork_date = self.org.repos[self.repo].commits[fork as usize]
            .committer_date
            .0;
        let floor = self.org.repos[self.repo].commits[self.main_head() as usize]
            .committer_date
            .0;
        if floor + 2 * STACK_MERGE_GAP > at {
            // No room on `main` for two merges before `at`.
            self.pull_request(at, false, None);
            return;
        }
        let upper_merge = at;
        let lower_merge = upper_merge - STACK_MERGE_GAP;
        let first = (at - lead).max(fork_date + 1);
        let lower_count = self.rng.random_range(1..=3u32);
        let upper_count = self.rng.random_range(1..=2u32);
        let mut dates: Vec<i64> = (0..lower_count + upper_count)
            .map(|_| self.rng.random_range(first..lower_merge))
            .collect();
        dates.sort_unstable();
        dates[0] = first;
        let author = self.member();
        let start = self.org.repos[self.repo].commits.len() as u32;
        let mut parent = fork;
        for date in &dates {
            let sha = self.random_sha();
            let message = CommitMessage::Change(self.next_subject());
            parent = self.push(SimCommit {
                sha,
                parent_slots: [parent, NO_PARENT],
                author_date: Timestamp(*date),
                committer_date: Timestamp(*date),
                author,
                message,
            });
        }
        let lower_end = start + lower_count;
        let upper_end = parent + 1;
        let created_at = Timestamp(first);
        let lower_index = self.org.repos[self.repo].pulls.len() as u32;
        let mut pulls = Vec::with_capacity(2);
        for (index, commits, style, merged_at) in [
            (
                lower_index,
                start..lower_end,
                MergeStyle::Squash,
                lower_merge,
            ),
            (
                lower_index + 1,
                start..upper_end,
                MergeStyle::MergeCommit,
                upper_merge,
            ),
        ] {
            let main = self.main_head();
            let head = commits.end - 1;
            let (slots, message) = match style {
                MergeStyle::Squash => ([main, NO_PARENT], CommitMessage::Squash(index)),
                MergeStyle::MergeCommit => {
                    self.landed.extend(commits.clone());
                    ([main, head], CommitMessage::Merge(index))
                }
            };
            let sha = self.random_sha();
            let merger = self.member();
            let merge = self.push(SimCommit {
                sha,
                parent_slots: slots,
                author_date: Timestamp(merged_at),
                committer_date: Timestamp(merged_at),
                author: merger,
                message,
            });
            self.set_main_head(merge, Timestamp(merged_at));
            let subject = self.next_subject();
            pulls.push(SimPull {
                id: 0,
                issue_id: 0,
                number: 0,
                title: Text::Subject(subject),
                labels: Vec::new(),
                user: author,
                commits,
                base: fork,
                created_at,
                updated_at: Timestamp(merged_at),
                closed_at: Some(Timestamp(merged_at)),
                merged_at: Some(Timestamp(merged_at)),
                merge_commit: Some(merge),
                merge_style: style,
                draft: false,
                comments: 0,
                first_review_at: None,
            });
        }
        self.repo_mut().pulls.extend(pulls);
    }

    fn deploy(&mut self, at: i64, production: bool) {
        let env = if production {
            &self.production
        } else {
            &self.staging
        };
        let last_sha = env.deployed.last().copied();
        let likely = if at <= self.rollback_until {
            ROLLBACK_AFTER_INCIDENT
        } else {
            0.0
        };
        let rollback_rate = self.spec.rollback_rate.clamp(0.0, 1.0).max(likely);
        let previous = env
            .deployed
            .iter()
            .rev()
            .find(|sha| Some(**sha) != last_sha)
            .copied();
        let rollback = production && previous.is_some() && self.rng.random_bool(rollback_rate);
        let (sha, head_index) = match (rollback, previous) {
            (true, Some(sha)) => (
                sha,
                self.org.repos[self.repo].commit_index(&sha).unwrap_or(0),
            ),
            _ => {
                let head = self.main_head();
                (self.org.repos[self.repo].commits[head as usize].sha, head)
            }
        };
        if rollback {
            self.rollback_until = i64::MIN;
        }
        let failed = !rollback && self.rng.random_bool(self.spec.failure_rate.clamp(0.0, 1.0));
        let duration = self.rng.random_range(DEPLOY_SECONDS.0..=DEPLOY_SECONDS.1);
        let finished = at + duration;
        let now = self.spec.now.0;

        let succeeded_at = if self.workflow {
            self.deploy_run(at, sha, rollback, failed)
        } else {
            self.deploy_api(at, sha, rollback, failed, finished, production)
        };
        let Some(deploy_time) = succeeded_at else {
            return;
        };

        let env = if production {
            &mut self.production
        } else {
            &mut self.staging
        };
        env.deployed.push(sha);
        if !production {
            return;
        }
        if rollback {
            // A rollback is usually followed by reverting what was rolled back.
            if let Some(bad) = last_sha.and_then(|s| self.org.repos[self.repo].commit_index(&s)) {
                if bad != 0 && self.rng.random_bool(REVERT_AFTER_ROLLBACK) {
                    let when = deploy_time + self.rng.random_range(1800..4 * 3600);
                    self.schedule(when, Event::Revert(bad));
                }
            }
            return;
        }
        // The changes this deployment shipped for the first time.
        let from = self.production.deployed_pos.min(self.landed.len());
        let changes: Vec<u32> = self.landed[from..].to_vec();
        self.production.deployed_pos = self.landed.len();
        for change in &changes {
            if self
                .rng
                .random_bool(self.spec.clock_skew_rate.clamp(0.0, 1.0))
            {
                let skew = self.rng.random_range(60..6 * 3600);
                self.repo_mut().commits[*change as usize].author_date =
                    Timestamp(deploy_time + skew);
            }
        }
        if self
            .rng
            .random_bool(self.spec.incident_rate.clamp(0.0, 1.0))
        {
            let delay = lognormal(&mut self.rng, INCIDENT_DELAY_MEDIAN);
            let opened = deploy_time + delay.max(60);
            if opened < now {
                let culprit = if changes.is_empty() {
                    head_index
                } else {
                    changes[self.rng.random_range(0..changes.len())]
                };
                self.incident(opened, culprit);
            }
        }
    }

    /// A Deployments-API deployment; returns its deploy time if it succeeded.
    fn deploy_api(
        &mut self,
        at: i64,
        sha: CommitSha,
        rollback: bool,
        failed: bool,
        finished: i64,
        production: bool,
    ) -> Option<i64> {
        let now = self.spec.now.0;
        let mut states: Vec<(StatusState, i64)> = Vec::new();
        let started = at + self.rng.random_range(2..30);
        if self.rng.random_bool(0.5) {
            states.push((StatusState::Queued, at));
        }
        states.push((StatusState::InProgress, started));
        let mut success_at = None;
        if failed {
            let state = if self.rng.random_bool(0.7) {
                StatusState::Failure
            } else {
                StatusState::Error
            };
            states.push((state, finished));
            if self.rng.random_bool(RETRIED_FAILURE_SHARE) {
                let retry = finished + self.rng.random_range(120..1800);
                states.push((StatusState::Success, retry));
                success_at = Some(retry);
            }
        } else {
            states.push((StatusState::Success, finished));
            success_at = Some(finished);
        }
        // Nothing after `now`: a deployment still running has no final status.
        states.retain(|(_, t)| *t <= now);
        let success_at = success_at.filter(|t| *t <= now);
        let creator = if self.rng.random_bool(0.7) {
            0
        } else {
            self.member()
        };
        let (environment, git_ref) = if production {
            (self.production_env.clone(), self.main_ref.clone())
        } else {
            (self.staging_env.clone(), self.main_ref.clone())
        };
        let git_ref = if rollback {
            sha.to_string().into()
        } else {
            git_ref
        };
        let id = bump(&mut self.org.ids.deployment);
        let statuses = states
            .into_iter()
            .map(|(state, t)| SimStatus {
                id: bump(&mut self.org.ids.status),
                state,
                created_at: Timestamp(t),
            })
            .collect();
        let index = self.org.repos[self.repo].deployments.len();
        self.repo_mut().deployments.push(SimDeployment {
            id,
            sha,
            git_ref,
            environment,
            created_at: Timestamp(at),
            creator,
            rollback,
            statuses,
        });
        let success_at = success_at?;
        // GitHub marks the previous successful deployment inactive.
        let env = if production {
            &mut self.production
        } else {
            &mut self.staging
        };
        let previous = env.last_success.replace(index);
        if let Some(previous) = previous {
            if self.rng.random_bool(INACTIVE_SHARE) {
                let status_id = bump(&mut self.org.ids.status);
                let old = &mut self.org.repos[self.repo].deployments[previous];
                let old_success = old
                    .statuses
                    .iter()
                    .map(|s| s.created_at.0)
                    .max()
                    .unwrap_or(0);
                if old_success < success_at {
                    old.statuses.push(SimStatus {
                        id: status_id,
                        state: StatusState::Inactive,
                        created_at: Timestamp(success_at),
                    });
                }
            }
        }
        Some(success_at)
    }

    /// A deploy workflow run on `main`; returns its deploy time if it succeeded.
    fn deploy_run(&mut self, at: i64, sha: CommitSha, rollback: bool, failed: bool) -> Option<i64> {
        let conclusion = if failed {
            RunConclusion::Failure
        } else if self.rng.random_bool(CANCELLED_RUN_SHARE) {
            RunConclusion::Cancelled
        } else {
            RunConclusion::Success
        };
        let event = if rollback {
            RunEvent::WorkflowDispatch
        } else {
            RunEvent::Push
        };
        let branch = self.main_ref.clone();
        let run = self.workflow_run(at, branch, sha, event, Some(conclusion), rollback);
        let r = &self.org.repos[self.repo].workflow_runs[run];
        match (r.status, r.conclusion) {
            (RunStatus::Completed, Some(RunConclusion::Success)) => Some(r.updated_at.0),
            _ => None,
        }
    }

    /// Adds a workflow run (id and number are assigned at the end); returns its
    /// index. A run that would finish after `now` is still in progress.
    fn workflow_run(
        &mut self,
        at: i64,
        branch: Arc<str>,
        sha: CommitSha,
        event: RunEvent,
        conclusion: Option<RunConclusion>,
        rollback: bool,
    ) -> usize {
        let now = self.spec.now.0;
        let started = at + self.rng.random_range(1..20);
        let finished = at + self.rng.random_range(DEPLOY_SECONDS.0..=DEPLOY_SECONDS.1);
        let (status, conclusion, updated) = if finished <= now {
            (RunStatus::Completed, conclusion, finished)
        } else if started <= now {
            (RunStatus::InProgress, None, started)
        } else {
            (RunStatus::Queued, None, at)
        };
        let actor = self.member();
        let r = self.repo_mut();
        r.workflow_runs.push(SimWorkflowRun {
            id: 0,
            run_number: 0,
            head_branch: branch,
            head_sha: sha,
            event,
            status,
            conclusion,
            created_at: Timestamp(at),
            run_started_at: Timestamp(started.min(now).max(at)),
            updated_at: Timestamp(updated),
            actor,
            rollback,
        });
        r.workflow_runs.len() - 1
    }

    fn incident(&mut self, opened: i64, culprit: u32) {
        let now = self.spec.now.0;
        let sha = self.org.repos[self.repo].commits[culprit as usize]
            .sha
            .to_string();
        let title_index = self.rng.random_range(0..1000);
        let mut body = String::from("Alerts fired after the latest deploy.\n\n");
        if self
            .rng
            .random_bool(self.spec.root_cause_share.clamp(0.0, 1.0))
        {
            let named = if self.rng.random_bool(UNUSABLE_ROOT_CAUSE_SHARE) {
                let fake = self.random_sha().to_string();
                fake[..12].to_owned()
            } else {
                let len = self.rng.random_range(7..=40);
                sha[..len].to_owned()
            };
            let line = match self.rng.random_range(0..3) {
                0 => format!("root cause: {named}"),
                1 => format!("Root Cause: `{named}`."),
                _ => format!("ROOT CAUSE: {}", named.to_ascii_uppercase()),
            };
            body.push_str(&line);
            body.push_str("\n\nFollow-up in the postmortem.");
        } else {
            body.push_str("Root cause under investigation.");
        }
        let severity = SEVERITIES[self.rng.random_range(0..SEVERITIES.len())];
        let median = if self.rng.random_bool(LONG_INCIDENT_SHARE) {
            LONG_INCIDENT_TTR_MEDIAN
        } else {
            INCIDENT_TTR_MEDIAN
        };
        let ttr = lognormal(&mut self.rng, median).max(300);
        let mut closed_at = Some(opened + ttr).filter(|t| *t <= now);
        let mut reopened_at = None;
        let mut updated = closed_at.unwrap_or(opened + 60).min(now);
        if let Some(closed) = closed_at {
            if self.rng.random_bool(REOPEN_SHARE) {
                let reopen = closed + self.rng.random_range(3600..2 * SECONDS_PER_DAY);
                if reopen <= now {
                    reopened_at = Some(reopen);
                    closed_at = None;
                    updated = reopen;
                    if self.rng.random_bool(RECLOSE_SHARE) {
                        let again = reopen + self.rng.random_range(1800..SECONDS_PER_DAY);
                        if again <= now {
                            closed_at = Some(again);
                            updated = again;
                        }
                    }
                }
            }
        }
        let user = self.member();
        let comments = self.rng.random_range(1..12);
        self.repo_mut().issues.push(SimIssue {
            id: 0,
            number: 0,
            title: names::incident_title(title_index),
            body: Some(body),
            labels: vec![INCIDENT_LABEL.to_owned(), severity.to_owned()],
            user,
            created_at: Timestamp(opened),
            updated_at: Timestamp(updated.max(opened)),
            closed_at: closed_at.map(Timestamp),
            reopened_at: reopened_at.map(Timestamp),
            comments,
        });
        self.rollback_until = opened + ROLLBACK_WINDOW;
        if self.rng.random_bool(HOTFIX_AFTER_INCIDENT) {
            let when = opened + self.rng.random_range(3600..6 * 3600);
            self.schedule(when, Event::Hotfix);
        }
    }

    fn plain_issue(&mut self, at: i64) {
        let now = self.spec.now.0;
        let mut labels =
            vec![PLAIN_LABELS[self.rng.random_range(0..PLAIN_LABELS.len())].to_owned()];
        if self.rng.random_bool(LOOKALIKE_LABEL_SHARE) {
            labels.push("incident-review".to_owned());
        }
        let closed_at = if self.rng.random_bool(PLAIN_ISSUE_CLOSED_SHARE) {
            Some(at + self.rng.random_range(3600..20 * SECONDS_PER_DAY)).filter(|t| *t <= now)
        } else {
            None
        };
        let title_index = self.rng.random_range(0..1000);
        let user = self.member();
        let comments = self.rng.random_range(0..8);
        self.repo_mut().issues.push(SimIssue {
            id: 0,
            number: 0,
            title: names::issue_title(title_index),
            body: Some("Steps to reproduce are in the first comment.".to_owned()),
            labels,
            user,
            created_at: Timestamp(at),
            updated_at: Timestamp(closed_at.unwrap_or(at)),
            closed_at: closed_at.map(Timestamp),
            reopened_at: None,
            comments,
        });
    }

    /// Pull requests still open at `now`, with their branches.
    fn open_pull_requests(&mut self) {
        let now = self.spec.now.0;
        let from = now - OPEN_PR_DAYS * SECONDS_PER_DAY;
        let mut at = from.max(self.spec.start().0);
        while let Some(gap) = self.gap(OPEN_PRS_PER_DAY) {
            at += gap;
            if at >= now {
                break;
            }
            let fork = self.main_at(at);
            let author = self.member();
            let subject = self.next_subject();
            let start = self.org.repos[self.repo].commits.len() as u32;
            let sha = self.random_sha();
            let head = self.push(SimCommit {
                sha,
                parent_slots: [fork, NO_PARENT],
                author_date: Timestamp(at),
                committer_date: Timestamp(at),
                author,
                message: CommitMessage::Change(subject),
            });
            let draft = self.rng.random_bool(0.2);
            let mut pull = SimPull {
                id: 0,
                issue_id: 0,
                number: 0,
                title: Text::Subject(subject),
                labels: Vec::new(),
                user: author,
                commits: start..head + 1,
                base: fork,
                created_at: Timestamp(at + 60),
                updated_at: Timestamp((at + 600).min(now)),
                closed_at: None,
                merged_at: None,
                merge_commit: None,
                merge_style: MergeStyle::Squash,
                draft,
                comments: 0,
                first_review_at: None,
            };
            pull.created_at = Timestamp(pull.created_at.0.min(now));
            self.repo_mut().pulls.push(pull);
        }
    }

    /// The repository's latest deployment attempt, still pending at `now`.
    fn pending_deployment(&mut self) {
        let now = self.spec.now.0;
        let at = now - self.rng.random_range(60..1800);
        let head = self.main_head();
        let sha = self.org.repos[self.repo].commits[head as usize].sha;
        if self.workflow {
            let branch = self.main_ref.clone();
            let index = self.workflow_run(
                at,
                branch,
                sha,
                RunEvent::Push,
                Some(RunConclusion::Success),
                false,
            );
            let run = &mut self.repo_mut().workflow_runs[index];
            run.status = RunStatus::InProgress;
            run.conclusion = None;
            run.updated_at = run.run_started_at;
            return;
        }
        let last = self.org.repos[self.repo]
            .deployments
            .last()
            .map(|d| d.created_at.0)
            .unwrap_or(at);
        let at = at.max(last + 1).min(now);
        let in_progress = self.rng.random_bool(0.5);
        let mut statuses = vec![SimStatus {
            id: bump(&mut self.org.ids.status),
            state: StatusState::Queued,
            created_at: Timestamp(at),
        }];
        if in_progress {
            statuses.push(SimStatus {
                id: bump(&mut self.org.ids.status),
                state: StatusState::InProgress,
                created_at: Timestamp((at + 20).min(now)),
            });
        }
        let id = bump(&mut self.org.ids.deployment);
        let environment = self.production_env.clone();
        let git_ref = self.main_ref.clone();
        self.repo_mut().deployments.push(SimDeployment {
            id,
            sha,
            git_ref,
            environment,
            created_at: Timestamp(at),
            creator: 0,
            rollback: false,
            statuses,
        });
    }

    /// Numbers issues and pull requests in creation order (one shared sequence),
    /// assigns ids, numbers workflow runs, and fixes references to pull requests.
    fn finish(&mut self) {
        let ids = &mut self.org.ids;
        let repo = &mut self.org.repos[self.repo];

        // Pull requests in creation order; commit messages refer to them by index.
        let mut order: Vec<usize> = (0..repo.pulls.len()).collect();
        order.sort_by_key(|i| (repo.pulls[*i].created_at, *i));
        let mut new_index = vec![0u32; repo.pulls.len()];
        for (new, old) in order.iter().enumerate() {
            new_index[*old] = new as u32;
        }
        let mut slots: Vec<Option<SimPull>> = std::mem::take(&mut repo.pulls)
            .into_iter()
            .map(Some)
            .collect();
        repo.pulls = order.iter().filter_map(|old| slots[*old].take()).collect();
        for commit in &mut repo.commits {
            match &mut commit.message {
                CommitMessage::Squash(p) | CommitMessage::Merge(p) => {
                    *p = new_index.get(*p as usize).copied().unwrap_or(*p);
                }
                _ => {}
            }
        }
        repo.issues.sort_by_key(|i| i.created_at);

        // One number sequence over issues and pull requests, by creation time.
        let (mut i, mut p, mut number) = (0, 0, 1u64);
        while i < repo.issues.len() || p < repo.pulls.len() {
            let take_issue = match (repo.issues.get(i), repo.pulls.get(p)) {
                (Some(issue), Some(pull)) => issue.created_at <= pull.created_at,
                (Some(_), None) => true,
                _ => false,
            };
            if take_issue {
                let issue = &mut repo.issues[i];
                issue.number = number;
                issue.id = bump(&mut ids.issue);
                i += 1;
            } else {
                let pull = &mut repo.pulls[p];
                pull.number = number;
                pull.issue_id = bump(&mut ids.issue);
                pull.id = bump(&mut ids.pull);
                pull.first_review_at = pull.drawn_first_review();
                p += 1;
            }
            number += 1;
        }
        // Branch names contain the PR number, known only now.
        let open: Vec<(String, u32)> = repo
            .pulls
            .iter()
            .filter(|p| p.is_open())
            .map(|p| (p.branch(), p.head()))
            .collect();
        repo.branches = open
            .into_iter()
            .map(|(name, head)| SimBranch { name, head })
            .collect();

        repo.workflow_runs.sort_by_key(|r| r.created_at);
        for (n, run) in repo.workflow_runs.iter_mut().enumerate() {
            run.id = bump(&mut ids.run);
            run.run_number = n as u32 + 1;
        }
        // Runs on pull-request branches carry a placeholder branch name until the
        // pull request is numbered.
        for run in &mut repo.workflow_runs {
            if run.head_branch.starts_with(PLACEHOLDER_BRANCH) {
                let pull = repo
                    .pulls
                    .iter()
                    .find(|p| repo.commits[p.head() as usize].sha == run.head_sha);
                if let Some(pull) = pull {
                    run.head_branch = pull.branch().into();
                }
            }
        }
    }
}

/// Whether repository `index` ends with a pending deployment: the first half of
/// `pending_deployments` (rounded up) are the first repositories, the rest the
/// last ones, so that both deployment sources get some.
fn is_pending_repo(index: usize, spec: &OrgSpec) -> bool {
    let k = spec.pending_deployments.min(spec.repositories);
    let first = k.div_ceil(2);
    index < first || index >= spec.repositories - (k - first)
}

/// The branch name runs on a PR branch carry before numbering.
const PLACEHOLDER_BRANCH: &str = "\u{0}pending/";

impl SimPull {
    fn branch_name_placeholder(&self) -> String {
        format!("{PLACEHOLDER_BRANCH}{}", self.head())
    }
}
