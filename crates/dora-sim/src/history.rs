//! Git history queries on a [`SimRepo`]: resolving a ref, `git log` from a commit,
//! and `compare` (`BASE...HEAD`: ahead/behind commits and the merge base).
//!
//! Commits are stored parents-first, so a walk that always takes the highest index
//! next visits every child before its parents; `compare` uses that to stop as soon
//! as only common ancestors remain, instead of walking the whole history. No
//! rename detection, file lists or diffs: the simulator has no trees.

use crate::domain::{CommitSha, CompareStatus};
use crate::model::SimRepo;
use std::collections::{BinaryHeap, HashMap};

/// Shortest sha prefix accepted as a ref (what `git` and GitHub accept).
pub const MIN_REF_PREFIX: usize = 7;

/// The result of comparing `base...head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// GitHub's status of `base...head`: ahead, behind, diverged or identical.
    pub status: CompareStatus,
    /// Commits reachable from head but not from base, chronological (oldest first).
    pub ahead: Vec<u32>,
    /// How many commits are reachable from base but not from head.
    pub behind_by: usize,
    /// The best common ancestor, if the two share history.
    pub merge_base: Option<u32>,
}

const FROM_BASE: u8 = 1;
const FROM_HEAD: u8 = 2;
const FROM_BOTH: u8 = FROM_BASE | FROM_HEAD;

impl SimRepo {
    /// Resolves a branch name (`main`, `heads/main`, `refs/heads/main`), a full sha
    /// or an unambiguous prefix of at least [`MIN_REF_PREFIX`] hex digits.
    pub fn resolve(&self, rev: &str) -> Option<u32> {
        let branch = rev
            .strip_prefix("refs/heads/")
            .or_else(|| rev.strip_prefix("heads/"))
            .unwrap_or(rev);
        if branch == self.default_branch {
            return Some(self.main_head);
        }
        if let Some(b) = self.branches.iter().find(|b| b.name == branch) {
            return Some(b.head);
        }
        if let Ok(sha) = CommitSha::parse(rev) {
            return self.commit_index(&sha);
        }
        let hex = rev.len() >= MIN_REF_PREFIX
            && rev.len() < 40
            && rev.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            return None;
        }
        let prefix = rev.to_ascii_lowercase();
        let mut found = None;
        for (i, commit) in self.commits.iter().enumerate() {
            if commit.sha.to_string().starts_with(&prefix) {
                if found.is_some() {
                    return None; // ambiguous
                }
                found = Some(i as u32);
            }
        }
        found
    }

    /// Every ancestor of `start` (itself included), newest first as `git log`
    /// lists them: by committer date, then by position in history.
    pub fn log(&self, start: u32) -> Vec<u32> {
        let mut seen = vec![false; self.commits.len()];
        let mut stack = vec![start];
        let mut out = Vec::new();
        while let Some(i) = stack.pop() {
            let Some(slot) = seen.get_mut(i as usize) else {
                continue;
            };
            if *slot {
                continue;
            }
            *slot = true;
            out.push(i);
            stack.extend(self.commits[i as usize].parents());
        }
        out.sort_unstable_by(|a, b| {
            let (ca, cb) = (&self.commits[*a as usize], &self.commits[*b as usize]);
            cb.committer_date.cmp(&ca.committer_date).then(b.cmp(a))
        });
        out
    }

    /// Compares `base...head` as GitHub does (`git log BASE..HEAD` for the ahead
    /// commits, the reverse for behind, status from the two counts).
    pub fn compare(&self, base: u32, head: u32) -> Comparison {
        let mut flags: HashMap<u32, u8> = HashMap::new();
        let mut queued: BinaryHeap<u32> = BinaryHeap::new();
        // Queued entries that are not yet known to be common ancestors: the walk
        // ends when none is left.
        let mut interesting = 0usize;
        let enqueue = |node: u32,
                       add: u8,
                       flags: &mut HashMap<u32, u8>,
                       queued: &mut BinaryHeap<u32>,
                       interesting: &mut usize| {
            match flags.get_mut(&node) {
                Some(existing) => {
                    let before = *existing;
                    *existing |= add;
                    if before != FROM_BOTH && *existing == FROM_BOTH {
                        *interesting -= 1;
                    }
                }
                None => {
                    flags.insert(node, add);
                    queued.push(node);
                    if add != FROM_BOTH {
                        *interesting += 1;
                    }
                }
            }
        };
        enqueue(base, FROM_BASE, &mut flags, &mut queued, &mut interesting);
        enqueue(head, FROM_HEAD, &mut flags, &mut queued, &mut interesting);

        let mut ahead = Vec::new();
        let mut behind_by = 0usize;
        let mut merge_base = None;
        while interesting > 0 {
            let Some(node) = queued.pop() else { break };
            // Every child of `node` has a higher index and was popped already, so
            // its flags are final.
            let flag = flags.get(&node).copied().unwrap_or(0);
            match flag {
                FROM_HEAD => ahead.push(node),
                FROM_BASE => behind_by += 1,
                _ => {
                    merge_base.get_or_insert(node);
                }
            }
            if flag != FROM_BOTH {
                interesting -= 1;
            }
            for parent in self.commits[node as usize].parents() {
                enqueue(parent, flag, &mut flags, &mut queued, &mut interesting);
            }
        }
        if merge_base.is_none() {
            // The walk stopped with only common ancestors queued: the highest is
            // the best one.
            merge_base = queued.peek().copied();
        }
        ahead.sort_unstable_by(|a, b| {
            let (ca, cb) = (&self.commits[*a as usize], &self.commits[*b as usize]);
            ca.committer_date.cmp(&cb.committer_date).then(a.cmp(b))
        });
        let status = match (ahead.is_empty(), behind_by == 0) {
            (true, true) => CompareStatus::Identical,
            (false, true) => CompareStatus::Ahead,
            (true, false) => CompareStatus::Behind,
            (false, false) => CompareStatus::Diverged,
        };
        Comparison {
            status,
            ahead,
            behind_by,
            merge_base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::model::{MergeStyle, NewPull, Org};

    fn t(s: i64) -> Timestamp {
        Timestamp(1_700_000_000 + s)
    }

    fn pull(dates: &[i64], merged: i64, style: MergeStyle) -> NewPull {
        NewPull {
            title: "Feature".into(),
            labels: vec![],
            commit_dates: dates.iter().map(|d| t(*d)).collect(),
            opened_at: t(dates[0]),
            merged_at: t(merged),
            style,
        }
    }

    /// Indices: 0 initial, 1 c1, 2 c2, 3 f1, 4 f2 (feature forked at c2),
    /// 5 merge(c2, f2), 6 c4, 7 g1 (forked at c4), 8 squash of g1 on c4.
    fn org() -> Org {
        let mut org = Org::empty("acme", t(10_000));
        let team = org.add_team("web");
        let r = org.add_repo("api", team, t(0), false);
        org.push_commit(r, "one", t(10), t(10)).unwrap();
        org.push_commit(r, "two", t(20), t(30)).unwrap();
        org.merge_pull(r, pull(&[32, 35], 40, MergeStyle::MergeCommit))
            .unwrap();
        org.push_commit(r, "four", t(50), t(50)).unwrap();
        org.merge_pull(r, pull(&[55], 60, MergeStyle::Squash))
            .unwrap();
        org
    }

    #[test]
    fn compare_ahead_behind_identical_diverged() {
        let org = org();
        let r = &org.repos[0];
        let c = r.compare(1, 6);
        assert_eq!(c.status, CompareStatus::Ahead);
        assert_eq!(c.ahead, vec![2, 3, 4, 5, 6]);
        assert_eq!((c.behind_by, c.merge_base), (0, Some(1)));

        let back = r.compare(6, 2);
        assert_eq!(back.status, CompareStatus::Behind);
        assert!(back.ahead.is_empty());
        assert_eq!((back.behind_by, back.merge_base), (4, Some(2)));

        let same = r.compare(5, 5);
        assert_eq!(same.status, CompareStatus::Identical);
        assert_eq!(same.merge_base, Some(5));

        // The squashed PR's own commit against the squash commit: diverged.
        let div = r.compare(7, 8);
        assert_eq!(div.status, CompareStatus::Diverged);
        assert_eq!(div.ahead, vec![8]);
        assert_eq!((div.behind_by, div.merge_base), (1, Some(6)));
    }

    #[test]
    fn log_is_newest_first_and_complete() {
        let org = org();
        let r = &org.repos[0];
        assert_eq!(r.log(8), vec![8, 6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(r.log(2), vec![2, 1, 0]);
    }

    #[test]
    fn resolve_branches_and_prefixes() {
        let org = org();
        let r = &org.repos[0];
        assert_eq!(r.resolve("main"), Some(8));
        assert_eq!(r.resolve("refs/heads/main"), Some(8));
        assert_eq!(r.resolve("heads/main"), Some(8));
        let sha = r.commits[3].sha.to_string();
        assert_eq!(r.resolve(&sha), Some(3));
        assert_eq!(r.resolve(&sha[..12]), Some(3));
        assert_eq!(r.resolve(&sha.to_uppercase()), Some(3));
        assert_eq!(r.resolve(&sha[..6]), None);
        assert_eq!(r.resolve("nope"), None);
        assert_eq!(r.resolve(""), None);
    }
}
