//! `CommitGraph`: one repository's known commits in a compact columnar form — sorted
//! shas (so a position is an index and a lookup is a binary search), author dates,
//! revert flags and parent links as indices. Built once per evaluation input; the
//! engine walks it without hashing.

use crate::domain::{CommitSha, ShaPrefix};

/// Marks "no parent" in `first_parent`.
pub(crate) const NO_COMMIT: u32 = u32::MAX;

/// Looks up many shas in `sorted` at once: sorts the wanted ones and walks `sorted`
/// forward with galloping search, touching memory in order instead of doing one
/// cache-missing binary search per sha.
fn lookup_all(sorted: &[CommitSha], wanted: &[CommitSha]) -> Vec<Option<u32>> {
    let mut order: Vec<u32> = (0..wanted.len() as u32).collect();
    order.sort_unstable_by_key(|&i| wanted[i as usize]);
    let mut found = vec![None; wanted.len()];
    let mut cursor = 0usize;
    for i in order {
        let target = wanted[i as usize];
        // Gallop: find a step that overshoots, then binary search that span.
        let mut step = 1usize;
        while cursor + step < sorted.len() && sorted[cursor + step] < target {
            step *= 2;
        }
        let end = (cursor + step + 1).min(sorted.len());
        cursor += sorted[cursor..end].partition_point(|sha| *sha < target);
        if cursor < sorted.len() && sorted[cursor] == target {
            found[i as usize] = Some(cursor as u32);
        }
    }
    found
}

/// Commits as they arrive, before sorting and resolving parents.
#[derive(Debug, Default, Clone)]
pub(crate) struct StagedCommits {
    shas: Vec<CommitSha>,
    author_dates: Vec<i64>,
    reverts: Vec<bool>,
    /// `(position in staging, parent sha)`.
    parents: Vec<(u32, CommitSha)>,
}

impl StagedCommits {
    pub(crate) fn push(
        &mut self,
        sha: CommitSha,
        parents: &[CommitSha],
        author_date: i64,
        is_revert: bool,
    ) {
        let position = self.shas.len() as u32;
        self.shas.push(sha);
        self.author_dates.push(author_date);
        self.reverts.push(is_revert);
        self.parents.extend(parents.iter().map(|p| (position, *p)));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.shas.is_empty()
    }
}

/// The resolved graph of one repository.
#[derive(Debug, Default, Clone)]
pub(crate) struct CommitGraph {
    shas: Vec<CommitSha>,
    author_dates: Vec<i64>,
    reverts: Vec<bool>,
    first_parent: Vec<u32>,
    /// Merge commits' second parent (`NO_COMMIT` for most commits).
    second_parent: Vec<u32>,
    /// Third and further parents (octopus merges, rare): `(child, parent)`, sorted.
    extra_parents: Vec<(u32, u32)>,
    /// Parents outside the known commits: `(child, parent sha)`, sorted. Walks stop
    /// there; a walk that reaches one does not know the whole change set
    /// (`coverage`).
    unknown_parents: Vec<(u32, CommitSha)>,
}

impl CommitGraph {
    /// Sorts by sha, keeps the first of duplicate shas, resolves parents (a parent
    /// outside the known commits is kept aside in `unknown_parents`: walks stop at the
    /// edge of what is known).
    /// `existing` is merged in (commits added after a repository was finished).
    pub(crate) fn build(mut staged: StagedCommits, existing: Option<CommitGraph>) -> CommitGraph {
        if let Some(graph) = existing {
            graph.restage_into(&mut staged);
        }
        let mut order: Vec<u32> = (0..staged.shas.len() as u32).collect();
        order.sort_by_key(|&i| staged.shas[i as usize]);
        order.dedup_by_key(|&mut i| staged.shas[i as usize]);
        let shas: Vec<CommitSha> = order.iter().map(|&i| staged.shas[i as usize]).collect();
        let author_dates = order
            .iter()
            .map(|&i| staged.author_dates[i as usize])
            .collect();
        let reverts = order.iter().map(|&i| staged.reverts[i as usize]).collect();
        drop(staged.author_dates);
        drop(staged.reverts);
        // Staging position -> final index (for the kept duplicate only).
        let mut final_index = vec![NO_COMMIT; staged.shas.len()];
        for (index, &position) in order.iter().enumerate() {
            final_index[position as usize] = index as u32;
        }
        drop(order);
        drop(staged.shas);
        let mut first_parent = vec![NO_COMMIT; shas.len()];
        let mut second_parent = vec![NO_COMMIT; shas.len()];
        let mut extra_parents = Vec::new();
        let mut unknown_parents = Vec::new();
        for (position, parent_sha) in staged.parents {
            let child = final_index[position as usize];
            if child == NO_COMMIT {
                continue;
            }
            let Ok(parent) = shas.binary_search(&parent_sha) else {
                unknown_parents.push((child, parent_sha));
                continue;
            };
            let parent = parent as u32;
            let (first, second) = (
                &mut first_parent[child as usize],
                &mut second_parent[child as usize],
            );
            if *first == NO_COMMIT {
                *first = parent;
            } else if *first == parent || *second == parent {
                continue;
            } else if *second == NO_COMMIT {
                *second = parent;
            } else {
                extra_parents.push((child, parent));
            }
        }
        extra_parents.sort_unstable();
        extra_parents.dedup();
        unknown_parents.sort_unstable();
        unknown_parents.dedup();
        CommitGraph {
            shas,
            author_dates,
            reverts,
            first_parent,
            second_parent,
            extra_parents,
            unknown_parents,
        }
    }

    fn restage_into(self, staged: &mut StagedCommits) {
        for index in 0..self.shas.len() {
            let mut parents = Vec::new();
            self.for_each_parent(index as u32, |p| parents.push(self.shas[p as usize]));
            parents.extend(self.unknown_parents_of(index as u32));
            staged.push(
                self.shas[index],
                &parents,
                self.author_dates[index],
                self.reverts[index],
            );
        }
    }

    /// Reads the columns the walks use once, in order. A repository's graph is cold
    /// (built long before); the walks touch it in sha order, which is random, so
    /// without this every first touch is a cache miss the prefetcher cannot hide.
    /// A sequential pass brings it into cache at memory bandwidth instead.
    pub(crate) fn prefetch(&self) {
        let mut checksum = 0u64;
        for (date, (first, second)) in self
            .author_dates
            .iter()
            .zip(self.first_parent.iter().zip(&self.second_parent))
        {
            checksum = checksum.wrapping_add(*date as u64 ^ u64::from(*first) ^ u64::from(*second));
        }
        std::hint::black_box(checksum);
        std::hint::black_box(self.reverts.iter().filter(|r| **r).count());
    }

    pub(crate) fn len(&self) -> usize {
        self.shas.len()
    }

    pub(crate) fn index_of(&self, sha: &CommitSha) -> Option<u32> {
        self.shas.binary_search(sha).ok().map(|i| i as u32)
    }

    /// Looks up many shas at once (see [`lookup_all`]).
    pub(crate) fn index_of_all(&self, shas: &[CommitSha]) -> Vec<Option<u32>> {
        lookup_all(&self.shas, shas)
    }

    /// All known commits that start with `prefix`.
    pub(crate) fn matching(&self, prefix: &ShaPrefix) -> std::ops::Range<u32> {
        let (low, high) = prefix.bounds();
        let start = self.shas.partition_point(|sha| *sha < low);
        let end = self.shas.partition_point(|sha| *sha <= high);
        start as u32..end as u32
    }

    pub(crate) fn sha(&self, index: u32) -> CommitSha {
        self.shas[index as usize]
    }

    pub(crate) fn author_date(&self, index: u32) -> i64 {
        self.author_dates[index as usize]
    }

    pub(crate) fn is_revert(&self, index: u32) -> bool {
        self.reverts[index as usize]
    }

    fn extra_parents_of(&self, index: u32) -> impl Iterator<Item = u32> + '_ {
        let start = self
            .extra_parents
            .partition_point(|(child, _)| *child < index);
        self.extra_parents[start..]
            .iter()
            .take_while(move |(child, _)| *child == index)
            .map(|(_, parent)| *parent)
    }

    /// The parents of `index` that are not known commits.
    pub(crate) fn unknown_parents_of(&self, index: u32) -> impl Iterator<Item = CommitSha> + '_ {
        let start = if self.unknown_parents.is_empty() {
            0
        } else {
            self.unknown_parents
                .partition_point(|(child, _)| *child < index)
        };
        self.unknown_parents[start..]
            .iter()
            .take_while(move |(child, _)| *child == index)
            .map(|(_, parent)| *parent)
    }

    /// Whether some known commit has a parent that is not known.
    pub(crate) fn has_unknown_parents(&self) -> bool {
        !self.unknown_parents.is_empty()
    }

    /// Calls `visit` on every parent of `index`.
    #[inline]
    pub(crate) fn for_each_parent(&self, index: u32, mut visit: impl FnMut(u32)) {
        let first = self.first_parent[index as usize];
        if first == NO_COMMIT {
            return;
        }
        visit(first);
        let second = self.second_parent[index as usize];
        if second == NO_COMMIT {
            return;
        }
        visit(second);
        if !self.extra_parents.is_empty() {
            self.extra_parents_of(index).for_each(visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(n: u8) -> CommitSha {
        CommitSha::from_bytes([n; 20])
    }

    #[test]
    fn resolves_parents_and_drops_unknown_ones() {
        let mut staged = StagedCommits::default();
        staged.push(sha(3), &[sha(2), sha(1)], 30, false);
        staged.push(sha(1), &[sha(9)], 10, false);
        staged.push(sha(2), &[sha(1)], 20, true);
        staged.push(sha(2), &[], 99, false); // duplicate: first wins
        let graph = CommitGraph::build(staged, None);
        assert_eq!(graph.len(), 3);
        let i3 = graph.index_of(&sha(3)).unwrap();
        let mut parents = vec![];
        graph.for_each_parent(i3, |p| parents.push(graph.sha(p)));
        assert_eq!(parents, vec![sha(2), sha(1)]);
        let mut octopus = StagedCommits::default();
        octopus.push(sha(7), &[sha(1), sha(2), sha(3), sha(2)], 1, false);
        for n in 1..=3 {
            octopus.push(sha(n), &[], 0, false);
        }
        let octopus = CommitGraph::build(octopus, None);
        let mut parents = vec![];
        octopus.for_each_parent(octopus.index_of(&sha(7)).unwrap(), |p| {
            parents.push(octopus.sha(p))
        });
        assert_eq!(parents, vec![sha(1), sha(2), sha(3)]);
        let i1 = graph.index_of(&sha(1)).unwrap();
        let mut none = vec![];
        graph.for_each_parent(i1, |p| none.push(p));
        assert!(none.is_empty());
        let i2 = graph.index_of(&sha(2)).unwrap();
        assert_eq!(graph.author_date(i2), 20);
        assert!(graph.is_revert(i2));
    }

    #[test]
    fn index_of_all_equals_one_lookup_each() {
        let mut staged = StagedCommits::default();
        for n in (0..200).step_by(3) {
            staged.push(sha(n), &[], 0, false);
        }
        let graph = CommitGraph::build(staged, None);
        let wanted: Vec<CommitSha> = (0..120).rev().map(|n| sha(n % 97)).collect();
        let expected: Vec<Option<u32>> = wanted.iter().map(|s| graph.index_of(s)).collect();
        assert_eq!(graph.index_of_all(&wanted), expected);
        assert!(expected.iter().any(Option::is_some) && expected.iter().any(Option::is_none));
    }

    #[test]
    fn rebuilding_with_more_commits_keeps_the_old_ones() {
        let mut first = StagedCommits::default();
        first.push(sha(1), &[], 10, false);
        first.push(sha(3), &[sha(1)], 11, false);
        first.push(sha(4), &[sha(1), sha(3)], 12, false);
        first.push(sha(5), &[sha(1), sha(3), sha(4)], 13, false);
        let graph = CommitGraph::build(first, None);
        let mut more = StagedCommits::default();
        more.push(sha(2), &[sha(1)], 20, false);
        let graph = CommitGraph::build(more, Some(graph));
        let i2 = graph.index_of(&sha(2)).unwrap();
        let mut parents = vec![];
        graph.for_each_parent(i2, |p| parents.push(graph.sha(p)));
        assert_eq!(parents, vec![sha(1)]);
        // Merge and octopus commits keep every parent through the rebuild.
        for (child, expected) in [(4, vec![sha(1), sha(3)]), (5, vec![sha(1), sha(3), sha(4)])] {
            let mut parents = vec![];
            graph.for_each_parent(graph.index_of(&sha(child)).unwrap(), |p| {
                parents.push(graph.sha(p))
            });
            assert_eq!(parents, expected, "commit {child}");
        }
    }
}
