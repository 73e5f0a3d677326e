//! Failed repositories are tried again soon, not a poll interval later: per
//! source and repository, the failures in a row and when the next try is due.
//! The first retry comes [`FIRST_RETRY_DELAY`] after a failure, each further one
//! twice as late, never later than the poll interval, plus up to
//! [`RETRY_JITTER_FRACTION`] of it at random (so that many repositories failing
//! together do not all come back in the same second).
//!
//! Pure bookkeeping: the scheduler asks what is due and runs it; no I/O.

use super::cycle::{CycleReport, RepoOutcome};
use crate::domain::{RepoName, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The wait before the first retry of a repository that failed: long enough for
/// a bad minute on the API's side to pass, short enough that readiness and the
/// series come back well before a poll interval (5 minutes by default).
pub(crate) const FIRST_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The most random extra wait, as a fraction of the retry delay.
pub(crate) const RETRY_JITTER_FRACTION: f64 = 0.1;

/// The wait before the next try of a repository that failed `failures` times in
/// a row (at least 1): `first · 2^(failures-1)`, at most `poll_interval`, plus up
/// to [`RETRY_JITTER_FRACTION`] of it (`random` in `0..=1`).
pub(crate) fn retry_delay(
    failures: u32,
    first: Duration,
    poll_interval: Duration,
    random: f64,
) -> Duration {
    let doublings = failures.saturating_sub(1).min(u32::BITS - 1);
    let base = first
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(poll_interval);
    base + base.mul_f64(RETRY_JITTER_FRACTION * random.clamp(0.0, 1.0))
}

/// A repository waiting for its retry.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    failures: u32,
    due: Instant,
    /// When it is due by the daemon's clock (for the health metric).
    due_at: Timestamp,
}

/// The repositories waiting for a retry.
#[derive(Debug, Default)]
pub struct RetryQueue {
    first: Duration,
    poll_interval: Duration,
    pending: BTreeMap<(&'static str, RepoName), Pending>,
}

/// A repository the scheduler has just put back in the queue, for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub source: &'static str,
    pub repository: RepoName,
    pub failures: u32,
    pub delay: Duration,
    pub due_at: Timestamp,
}

impl RetryQueue {
    /// An empty queue with these delays.
    pub fn new(first: Duration, poll_interval: Duration) -> RetryQueue {
        RetryQueue {
            first,
            poll_interval,
            pending: BTreeMap::new(),
        }
    }

    /// Takes in a finished round (a cycle or a retry round) that ended at `now`
    /// (`clock_now` by the daemon's clock): a failed repository is due again
    /// after its delay, a synced one leaves the queue, a cancelled one stays as
    /// it was. Returns the repositories scheduled.
    pub fn record(
        &mut self,
        report: &CycleReport,
        now: Instant,
        clock_now: Timestamp,
        random: &mut dyn FnMut() -> f64,
    ) -> Vec<Scheduled> {
        let mut scheduled = Vec::new();
        for entry in &report.repositories {
            let key = (entry.source, entry.repository.clone());
            match entry.outcome {
                RepoOutcome::Synced(_) => {
                    self.pending.remove(&key);
                }
                RepoOutcome::Failed(_) => {
                    let failures = self.pending.get(&key).map_or(0, |p| p.failures) + 1;
                    let delay = retry_delay(failures, self.first, self.poll_interval, random());
                    let seconds = i64::try_from(delay.as_secs()).unwrap_or(i64::MAX);
                    let due_at = Timestamp(clock_now.0.saturating_add(seconds));
                    self.pending.insert(
                        key,
                        Pending {
                            failures,
                            due: now + delay,
                            due_at,
                        },
                    );
                    scheduled.push(Scheduled {
                        source: entry.source,
                        repository: entry.repository.clone(),
                        failures,
                        delay,
                        due_at,
                    });
                }
                RepoOutcome::Cancelled => {}
            }
        }
        scheduled
    }

    /// Drops the retries of repositories no source syncs any more.
    pub(crate) fn retain(&mut self, current: &dyn Fn(&'static str, &RepoName) -> bool) {
        self.pending
            .retain(|(source, repository), _| current(source, repository));
    }

    /// When the earliest retry is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.due).min()
    }

    /// The repositories due at `now` (they stay queued until a round records
    /// them).
    pub fn due(&self, now: Instant) -> Vec<(&'static str, RepoName)> {
        self.pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// When `repository` of `source` is tried again, by the daemon's clock;
    /// `None` when it is not waiting for a retry.
    pub fn next_try(&self, source: &str, repository: &RepoName) -> Option<Timestamp> {
        self.pending
            .iter()
            .find(|((s, r), _)| *s == source && r == repository)
            .map(|(_, p)| p.due_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::RepoReport;
    use crate::sources::RepoSyncStats;

    const MINUTE: Duration = Duration::from_secs(60);
    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn delays_start_at_the_first_and_double_up_to_the_poll_interval() {
        let delays: Vec<u64> = (1..=6)
            .map(|n| retry_delay(n, FIRST_RETRY_DELAY, FIVE_MINUTES, 0.0).as_secs())
            .collect();
        assert_eq!(delays, [30, 60, 120, 240, 300, 300]);
        assert_eq!(
            retry_delay(1, FIRST_RETRY_DELAY, FIVE_MINUTES, 1.0),
            Duration::from_secs(33)
        );
        assert_eq!(
            retry_delay(9, FIRST_RETRY_DELAY, FIVE_MINUTES, 7.0),
            Duration::from_secs(330),
            "jitter clamped"
        );
        assert_eq!(retry_delay(0, MINUTE, FIVE_MINUTES, 0.0), MINUTE);
        assert_eq!(
            retry_delay(u32::MAX, MINUTE, FIVE_MINUTES, 0.0),
            FIVE_MINUTES
        );
        // A poll interval shorter than the first retry caps it.
        assert_eq!(
            retry_delay(1, MINUTE, Duration::from_secs(10), 0.0),
            Duration::from_secs(10)
        );
    }

    fn report(outcomes: &[(&str, RepoOutcome)]) -> CycleReport {
        CycleReport {
            started_at: Timestamp(0),
            repositories: outcomes
                .iter()
                .map(|(name, outcome)| RepoReport {
                    source: "github",
                    repository: RepoName::parse(name).unwrap(),
                    outcome: outcome.clone(),
                    finished_at: Timestamp(0),
                })
                .collect(),
            durations: Vec::new(),
            status_unrecorded: false,
        }
    }

    #[test]
    fn failures_are_queued_with_growing_delays_and_leave_when_synced() {
        let mut queue = RetryQueue::new(FIRST_RETRY_DELAY, FIVE_MINUTES);
        let start = Instant::now();
        let failed = || RepoOutcome::Failed("HTTP 502".to_owned());
        let synced = || RepoOutcome::Synced(RepoSyncStats::default());
        let api = RepoName::parse("acme/api").unwrap();
        let web = RepoName::parse("acme/web").unwrap();
        let mut no_jitter = || 0.0;

        let first = report(&[("acme/api", failed()), ("acme/web", synced())]);
        let scheduled = queue.record(&first, start, Timestamp(1000), &mut no_jitter);
        assert_eq!(
            scheduled,
            [Scheduled {
                source: "github",
                repository: api.clone(),
                failures: 1,
                delay: FIRST_RETRY_DELAY,
                due_at: Timestamp(1030),
            }]
        );
        assert_eq!(queue.next_due(), Some(start + FIRST_RETRY_DELAY));
        assert!(queue.due(start).is_empty());
        assert_eq!(
            queue.due(start + FIRST_RETRY_DELAY),
            [("github", api.clone())]
        );
        assert_eq!(queue.next_try("github", &api), Some(Timestamp(1030)));
        assert_eq!(queue.next_try("github", &web), None);

        // Failing again doubles the wait; a cancelled round changes nothing.
        let later = start + FIRST_RETRY_DELAY;
        let again = report(&[("acme/api", failed())]);
        queue.record(&again, later, Timestamp(1030), &mut no_jitter);
        assert_eq!(queue.next_due(), Some(later + MINUTE));
        queue.record(
            &report(&[("acme/api", RepoOutcome::Cancelled)]),
            later,
            Timestamp(1030),
            &mut no_jitter,
        );
        assert_eq!(queue.next_try("github", &api), Some(Timestamp(1090)));

        // Synced: out of the queue.
        queue.record(
            &report(&[("acme/api", synced())]),
            later,
            Timestamp(1100),
            &mut no_jitter,
        );
        assert_eq!(queue.next_due(), None);
        assert_eq!(queue.next_try("github", &api), None);
    }
}
