//! Which change sets the known commit history decides: the engine takes a
//! deployment's change set from a stored compare when there is one and otherwise
//! walks the commit graph from the deployed sha down to what earlier deployments
//! shipped. That walk is only the real change set when it never leaves the known
//! commits. This module replays the same walks (`changes::replay`) and lists the
//! deployments whose walk did leave them, with the shas that would complete it.
//!
//! A source uses it to read just enough history, and to ask for a compare only
//! where history cannot answer (`docs/computation.md` § Change sets). It reads
//! nothing itself.

use super::changes::{self, RepoContext, Scratch};
use super::compute::production_deployments;
use super::events::RepoEvents;
use super::{Events, LeadTimeStart};
use crate::domain::{CommitSha, Environment, PullRequest, RepoName, Timestamp};
use std::collections::{HashMap, HashSet};

/// A consecutive pair of successful production deployments whose change set
/// neither a stored compare nor the known history decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncoveredChangeSet {
    /// The repository deployed.
    pub repository: RepoName,
    /// The configured production environment.
    pub environment: Environment,
    /// The previous successful deployment's sha and deploy time.
    pub base: CommitSha,
    /// The previous successful deployment's deploy time.
    pub base_at: Timestamp,
    /// The deployment's sha and deploy time.
    pub head: CommitSha,
    /// The deployment's deploy time.
    pub head_at: Timestamp,
    /// Shas whose history would decide it: the deployed sha when it is unknown,
    /// or the unknown parents its walk reached. Empty when only a compare can (a
    /// deployment of an already shipped sha that is not known to be an ancestor
    /// of the previous one).
    pub missing: Vec<CommitSha>,
}

/// Every uncovered change set of `events` at `now` for the `production`
/// environments, per repository in deploy-time order.
pub fn uncovered_change_sets(
    events: &Events,
    production: &[Environment],
    now: Timestamp,
) -> Vec<UncoveredChangeSet> {
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for (name, repo) in &events.repositories {
        let production = &repo.production(production);
        let (successful, _) = production_deployments(repo, production, now);
        let context = RepoContext {
            repo,
            lead_time_start: LeadTimeStart::Commit,
            pr_start: HashMap::new(),
            pr_times: None,
            rework_merges: Vec::new(),
            track_uncovered: true,
        };
        for (environment, list) in production.iter().zip(&successful) {
            let history = changes::replay(&context, list, &mut scratch);
            for (ordinal, missing) in history.uncovered {
                let (base, base_at) = list[ordinal as usize - 1];
                let (head, head_at) = list[ordinal as usize];
                out.push(UncoveredChangeSet {
                    repository: name.clone(),
                    environment: environment.clone(),
                    base: base.sha,
                    base_at: Timestamp(base_at),
                    head: head.sha,
                    head_at: Timestamp(head_at),
                    missing,
                });
            }
        }
    }
    out
}

/// The deployed changes of one repository whose pull request no stored pull
/// request names (see [`changes_without_pull`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesWithoutPull {
    /// The repository deployed.
    pub repository: RepoName,
    /// Commits shipped (first, per environment) by a successful production
    /// deployment after `after` and before the first undecided change set, that
    /// are neither the merge commit nor one of the commits of a stored merged
    /// pull request; sorted, without duplicates.
    pub shas: Vec<CommitSha>,
    /// Every change set of a deployment at or before this time (and after
    /// `after`) is decided and listed above: where the next search starts.
    /// `after` itself when nothing was decided since.
    pub decided_through: Timestamp,
    /// The numbers of the repository's stored pull requests, sorted.
    pub known_pulls: Vec<u64>,
}

/// For each repository of `events`: the changes that successful deployments to
/// the `production` environments shipped after `after` (up to `now`) whose pull
/// request is not stored, so that a source can ask GitHub for it
/// (dora-definitions §1 `lead_time_start`: the start comes from "the PR that
/// introduced the change", however long before the lookback it was merged).
/// The first deployment of an environment has no change set (no base) and
/// counts no lead time, so its history is not listed. Stops, per environment,
/// before the first change set the known history does not decide (its changes
/// are not known yet).
pub fn changes_without_pull(
    events: &Events,
    production: &[Environment],
    after: Timestamp,
    now: Timestamp,
) -> Vec<ChangesWithoutPull> {
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for (name, repo) in &events.repositories {
        let known: HashSet<CommitSha> = repo
            .pull_requests
            .iter()
            .filter(|pr| pr.merged_at.is_some())
            .flat_map(|pr| pr.merge_commit_sha.iter().chain(&pr.commits).copied())
            .collect();
        let (mut shas, decided_through) =
            shipped_changes(repo, production, after, now, &mut scratch);
        shas.retain(|sha| !known.contains(sha));
        let mut known_pulls: Vec<u64> = repo.pull_requests.iter().map(|pr| pr.number).collect();
        known_pulls.sort_unstable();
        known_pulls.dedup();
        out.push(ChangesWithoutPull {
            repository: name.clone(),
            shas,
            known_pulls,
            decided_through,
        });
    }
    out
}

/// The stored merged pull requests of one repository whose first review is
/// unknown and that a deployed change came through (see
/// [`pulls_without_review`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullsWithoutReview {
    /// The repository deployed.
    pub repository: RepoName,
    /// The stored merged pull requests without a first review: merged before
    /// `merged_before` and with a merge commit or a commit that a successful
    /// production deployment after `after` shipped (first, per environment),
    /// before the first undecided change set; or merged at or after
    /// `merged_from` when given. Sorted by number.
    pub pulls: Vec<PullRequest>,
    /// As [`ChangesWithoutPull::decided_through`]: every change set of a
    /// deployment at or before this time (and after `after`) is decided and its
    /// pull requests are above.
    pub decided_through: Timestamp,
}

/// For each repository of `events`: the merged pull requests (merged before
/// `merged_before`, without a stored first review) that a change shipped by a
/// successful deployment to the `production` environments after `after` (up to
/// `now`) came through, so that a source can read their first review for the
/// lead-time stages of those changes (`docs/computation.md` § Lead-time
/// stages); with `merged_from`, also every one without a first review merged
/// at or after it, deployed or not. Every pull request a change is in is
/// listed, not just the one its stages come from (a superset: the engine picks
/// among them). Like [`changes_without_pull`], the first deployment of an
/// environment ships no change set and the search stops before the first
/// undecided change set.
pub fn pulls_without_review(
    events: &Events,
    production: &[Environment],
    after: Timestamp,
    merged_before: Timestamp,
    merged_from: Option<Timestamp>,
    now: Timestamp,
) -> Vec<PullsWithoutReview> {
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for (name, repo) in &events.repositories {
        let (shas, decided_through) = shipped_changes(repo, production, after, now, &mut scratch);
        let shipped: HashSet<CommitSha> = shas.into_iter().collect();
        let mut pulls: Vec<PullRequest> = repo
            .pull_requests
            .iter()
            .filter(|pr| {
                let Some(merged) = pr.merged_at.filter(|_| pr.first_review_at.is_none()) else {
                    return false;
                };
                let deployed = merged < merged_before
                    && pr
                        .merge_commit_sha
                        .iter()
                        .chain(&pr.commits)
                        .any(|sha| shipped.contains(sha));
                deployed || merged_from.is_some_and(|from| merged >= from)
            })
            .cloned()
            .collect();
        pulls.sort_by_key(|pr| pr.number);
        pulls.dedup_by_key(|pr| pr.number);
        out.push(PullsWithoutReview {
            repository: name.clone(),
            pulls,
            decided_through,
        });
    }
    out
}

/// The commits that successful deployments of `repo` to the `production`
/// environments after `after` (up to `now`) shipped first, per environment, up
/// to each environment's first change set the known history does not decide
/// (sorted, without duplicates); and the deploy time through which every change
/// set after `after` is decided (`after` itself when nothing was decided since).
fn shipped_changes(
    repo: &RepoEvents,
    production: &[Environment],
    after: Timestamp,
    now: Timestamp,
    scratch: &mut Scratch,
) -> (Vec<CommitSha>, Timestamp) {
    let production = &repo.production(production);
    let (successful, _) = production_deployments(repo, production, now);
    let context = RepoContext {
        repo,
        lead_time_start: LeadTimeStart::Commit,
        pr_start: HashMap::new(),
        pr_times: None,
        rework_merges: Vec::new(),
        track_uncovered: true,
    };
    let mut shas: Vec<CommitSha> = Vec::new();
    // The deploy time before each environment's first undecided change set,
    // and the newest deploy time.
    let mut undecided_from: Option<i64> = None;
    let mut newest = after.0;
    for list in &successful {
        let history = changes::replay(&context, list, scratch);
        // Ordinals after `after`, from the first (ordinal 0 has no base).
        let from = list
            .iter()
            .position(|(_, at)| *at > after.0)
            .unwrap_or(list.len())
            .max(1);
        let until = history
            .uncovered
            .iter()
            .map(|(ordinal, _)| *ordinal as usize)
            .filter(|ordinal| *ordinal >= from)
            .min()
            .unwrap_or(list.len());
        if until < list.len() {
            let through = if until > from {
                list[until - 1].1.max(after.0)
            } else {
                after.0
            };
            undecided_from = Some(undecided_from.map_or(through, |d| d.min(through)));
        }
        if let Some((_, at)) = list.last() {
            newest = newest.max(*at);
        }
        for (index, mark) in history.marks.iter().enumerate() {
            let mark = *mark as usize;
            if mark != changes::UNMARKED as usize && mark >= from && mark < until {
                shas.push(repo.graph.sha(index as u32));
            }
        }
    }
    shas.sort_unstable();
    shas.dedup();
    (shas, Timestamp(undecided_from.unwrap_or(newest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Commit, Compare, CompareStatus, Deployment, DeploymentOutcome, DeploymentSource,
    };

    fn sha(n: u8) -> CommitSha {
        CommitSha::from_bytes([n; 20])
    }

    fn repo() -> RepoName {
        RepoName::parse("acme/api").unwrap()
    }

    fn commit(n: u8, parents: &[u8]) -> Commit {
        Commit::new(
            sha(n),
            parents.iter().map(|p| sha(*p)).collect(),
            Timestamp(i64::from(n) * 100),
            "a change",
        )
    }

    fn deployment(id: u64, n: u8, at: i64) -> Deployment {
        Deployment {
            source: DeploymentSource::GithubDeployments,
            repository: repo(),
            id,
            environment: Environment::parse("production").unwrap(),
            sha: sha(n),
            created_at: Timestamp(at),
            outcome: DeploymentOutcome::Succeeded { at: Timestamp(at) },
        }
    }

    fn uncovered(commits: &[Commit], deployments: &[Deployment]) -> Vec<(u8, Vec<CommitSha>)> {
        uncovered_with(commits, deployments, &[])
    }

    /// A builder holding `commits` and `deployments` of [`repo`].
    fn builder_with(commits: &[Commit], deployments: &[Deployment]) -> crate::EventsBuilder {
        let mut builder = Events::builder();
        for c in commits {
            builder.commit(&repo(), c);
        }
        for d in deployments {
            builder.deployment(d.clone());
        }
        builder
    }

    fn uncovered_with(
        commits: &[Commit],
        deployments: &[Deployment],
        compares: &[Compare],
    ) -> Vec<(u8, Vec<CommitSha>)> {
        let mut builder = builder_with(commits, deployments);
        for c in compares {
            builder.compare(&repo(), c.clone());
        }
        let events = builder.build();
        let production = [Environment::parse("Production").unwrap()];
        uncovered_change_sets(&events, &production, Timestamp(1_000_000))
            .into_iter()
            .map(|u| (u.head.as_bytes()[0], u.missing))
            .collect()
    }

    #[test]
    fn a_linear_history_read_down_to_the_first_deployment_decides_everything() {
        // 1 <- 2 <- 3 <- 4, deployed 2 then 4; 1's parent 0 is unknown but only
        // the first deployment (no change set) reaches it.
        let commits = [
            commit(1, &[0]),
            commit(2, &[1]),
            commit(3, &[2]),
            commit(4, &[3]),
        ];
        let deployments = [deployment(1, 2, 1_000), deployment(2, 4, 2_000)];
        assert_eq!(uncovered(&commits, &deployments), vec![]);
    }

    #[test]
    fn an_unknown_deployed_sha_or_an_unknown_parent_on_the_walk_is_uncovered() {
        let commits = [commit(1, &[]), commit(2, &[1]), commit(4, &[2, 3])];
        // 4 merges 3, which is unknown: the walk from 4 leaves the known commits.
        let deployments = [
            deployment(1, 1, 1_000),
            deployment(2, 4, 2_000),
            deployment(3, 9, 3_000),
        ];
        assert_eq!(
            uncovered(&commits, &deployments),
            vec![(4, vec![sha(3)]), (9, vec![sha(9)])]
        );
        // A stored compare decides the pair whatever the graph knows.
        let compare = Compare {
            base: sha(1),
            head: sha(4),
            status: CompareStatus::Ahead,
            commits: vec![sha(2), sha(4)],
        };
        assert_eq!(
            uncovered_with(&commits, &deployments, &[compare]),
            vec![(9, vec![sha(9)])]
        );
    }

    #[test]
    fn a_redeploy_a_rollback_and_a_diverged_deployment_are_decided_by_a_complete_history() {
        let commits = [
            commit(1, &[]),
            commit(2, &[1]),
            commit(3, &[2]),
            commit(5, &[1]),
        ];
        let deployments = [
            deployment(1, 2, 1_000),
            deployment(2, 3, 2_000),
            deployment(3, 3, 3_000), // redeploy
            deployment(4, 2, 4_000), // rollback: 2 is an ancestor of 3
            deployment(5, 5, 5_000), // 5 forks at 1: new history, decided
            deployment(6, 3, 6_000), // 3 again: shipped, not an ancestor of 5
        ];
        assert_eq!(uncovered(&commits, &deployments), vec![]);
    }

    #[test]
    fn a_diverged_deployment_after_an_incomplete_walk_is_left_to_a_compare() {
        // 5 merges 4, which is unknown: a path from 5 through 4 to 3 could
        // exist, so whether 3 is behind 5 is not known.
        let commits = [
            commit(1, &[]),
            commit(2, &[1]),
            commit(3, &[2]),
            commit(5, &[1, 4]),
        ];
        let deployments = [
            deployment(1, 2, 1_000),
            deployment(2, 3, 2_000),
            deployment(5, 5, 5_000),
            deployment(6, 3, 6_000),
        ];
        assert_eq!(
            uncovered(&commits, &deployments),
            vec![(5, vec![sha(4)]), (3, vec![])]
        );
    }

    /// `changes_without_pull` over `commits`, `deployments` and one merged pull
    /// request with merge commit `merge` and commits `pull_commits`, after `after`.
    fn without_pull(
        commits: &[Commit],
        deployments: &[Deployment],
        merge: u8,
        pull_commits: &[u8],
        after: i64,
    ) -> (Vec<u8>, i64, Vec<u64>) {
        let mut builder = builder_with(commits, deployments);
        builder.pull_request(crate::domain::PullRequest {
            repository: repo(),
            number: 7,
            merged_at: Some(Timestamp(1)),
            merge_commit_sha: Some(sha(merge)),
            labels: Vec::new(),
            commits: pull_commits.iter().map(|n| sha(*n)).collect(),
            first_commit_at: Some(Timestamp(1)),
            created_at: None,
            first_review_at: None,
        });
        let events = builder.build();
        let production = [Environment::parse("production").unwrap()];
        let mut all =
            changes_without_pull(&events, &production, Timestamp(after), Timestamp(1_000_000));
        assert_eq!(all.len(), 1);
        let found = all.remove(0);
        (
            found.shas.iter().map(|s| s.as_bytes()[0]).collect(),
            found.decided_through.0,
            found.known_pulls,
        )
    }

    #[test]
    fn the_deployed_changes_no_pull_request_names_are_listed_once() {
        // 1 <- 2 <- 3 <- 4 <- 5; deployed 1 (no base), 3, 5. The pull request
        // made 3 (merge) with 2 (its commit); 4 and 5 came through none.
        let commits = [
            commit(1, &[]),
            commit(2, &[1]),
            commit(3, &[2]),
            commit(4, &[3]),
            commit(5, &[4]),
        ];
        let deployments = [
            deployment(1, 1, 1_000),
            deployment(2, 3, 2_000),
            deployment(3, 5, 3_000),
        ];
        assert_eq!(
            without_pull(&commits, &deployments, 3, &[2], 0),
            (vec![4, 5], 3_000, vec![7])
        );
        // After the deployment at 2,000: only what the later one shipped.
        assert_eq!(
            without_pull(&commits, &deployments, 3, &[2], 2_000).0,
            vec![4, 5]
        );
        // Nothing new after the last one.
        assert_eq!(
            without_pull(&commits, &deployments, 3, &[2], 3_000),
            (vec![], 3_000, vec![7])
        );
    }

    #[test]
    fn the_listing_stops_before_the_first_undecided_change_set() {
        // 1 <- 2 <- 4 with 4's other parent 3 unknown: the deployment of 4 is
        // undecided; the one of 2 before it is listed, and the search resumes
        // after it.
        let commits = [commit(1, &[]), commit(2, &[1]), commit(4, &[2, 3])];
        let deployments = [
            deployment(1, 1, 1_000),
            deployment(2, 2, 2_000),
            deployment(3, 4, 3_000),
        ];
        assert_eq!(
            without_pull(&commits, &deployments, 9, &[], 0),
            (vec![2], 2_000, vec![7])
        );
    }

    /// A merged pull request numbered `number`, merged at `merged_at`, with
    /// merge commit `merge`, commits `commits` and first review `review`.
    fn pull(
        number: u64,
        merged_at: i64,
        merge: u8,
        commits: &[u8],
        review: Option<i64>,
    ) -> crate::domain::PullRequest {
        crate::domain::PullRequest {
            repository: repo(),
            number,
            merged_at: Some(Timestamp(merged_at)),
            merge_commit_sha: Some(sha(merge)),
            labels: Vec::new(),
            commits: commits.iter().map(|n| sha(*n)).collect(),
            first_commit_at: Some(Timestamp(1)),
            created_at: Some(Timestamp(1)),
            first_review_at: review.map(Timestamp),
        }
    }

    /// The numbers of [`pulls_without_review`] and its `decided_through`.
    fn without_review(
        commits: &[Commit],
        deployments: &[Deployment],
        pulls: &[crate::domain::PullRequest],
        after: i64,
        merged_before: i64,
        merged_from: Option<i64>,
    ) -> (Vec<u64>, i64) {
        let mut builder = builder_with(commits, deployments);
        for pull in pulls {
            builder.pull_request(pull.clone());
        }
        let events = builder.build();
        let production = [Environment::parse("production").unwrap()];
        let mut all = pulls_without_review(
            &events,
            &production,
            Timestamp(after),
            Timestamp(merged_before),
            merged_from.map(Timestamp),
            Timestamp(1_000_000),
        );
        assert_eq!(all.len(), 1);
        let found = all.remove(0);
        (
            found.pulls.iter().map(|p| p.number).collect(),
            found.decided_through.0,
        )
    }

    #[test]
    fn the_pull_requests_of_deployed_changes_without_a_review_are_listed() {
        // 1 <- 2 <- 3 <- 4 <- 5 <- 6; deployed 1 (no base), 3, 5 and 6.
        let commits = [
            commit(1, &[]),
            commit(2, &[1]),
            commit(3, &[2]),
            commit(4, &[3]),
            commit(5, &[4]),
            commit(6, &[5]),
        ];
        let deployments = [
            deployment(1, 1, 1_000),
            deployment(2, 3, 2_000),
            deployment(3, 5, 3_000),
            deployment(4, 6, 4_000),
        ];
        let pulls = [
            // Made 3 with its commit 2, no review: shipped at 2,000.
            pull(10, 500, 3, &[2], None),
            // Made 5 (squash), reviewed: never listed.
            pull(11, 600, 5, &[], Some(550)),
            // A commit of it, 4, shipped at 3,000; no review.
            pull(12, 700, 9, &[4], None),
            // Made 6, merged late (at or after `merged_before`).
            pull(13, 3_500, 6, &[], None),
            // Made 1, which the first deployment shipped: no change set.
            pull(14, 100, 1, &[], None),
        ];
        assert_eq!(
            without_review(&commits, &deployments, &pulls, 0, 3_500, None),
            (vec![10, 12], 4_000)
        );
        // After the deployment at 2,000: only what the later ones shipped.
        assert_eq!(
            without_review(&commits, &deployments, &pulls, 2_000, 3_500, None),
            (vec![12], 4_000)
        );
        // Merged before a later bound: 13 too.
        assert_eq!(
            without_review(&commits, &deployments, &pulls, 2_000, 3_501, None).0,
            vec![12, 13]
        );
        // Nothing new after the last one.
        assert_eq!(
            without_review(&commits, &deployments, &pulls, 4_000, 5_000, None),
            (vec![], 4_000)
        );
        // And those merged from 600 on, deployed or not, without a review
        // (11 has one).
        assert_eq!(
            without_review(&commits, &deployments, &pulls, 4_000, 5_000, Some(600)),
            (vec![12, 13], 4_000)
        );
    }

    #[test]
    fn the_pull_requests_without_a_review_stop_before_the_first_undecided_change_set() {
        // 1 <- 2 <- 4 with 4's other parent 3 unknown: the deployment of 4 is
        // undecided; the pull request of 2 is listed, that of 4 not yet.
        let commits = [commit(1, &[]), commit(2, &[1]), commit(4, &[2, 3])];
        let deployments = [
            deployment(1, 1, 1_000),
            deployment(2, 2, 2_000),
            deployment(3, 4, 3_000),
        ];
        let pulls = [pull(20, 10, 2, &[], None), pull(21, 20, 4, &[], None)];
        assert_eq!(
            without_review(&commits, &deployments, &pulls, 0, 5_000, None),
            (vec![20], 2_000)
        );
    }
}
