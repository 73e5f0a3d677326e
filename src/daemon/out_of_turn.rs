//! Syncs asked for out of turn (by webhook deliveries, or
//! `DaemonHandle::sync_repositories`): per source and repository, when its sync
//! is due. The first request starts a window of [`OUT_OF_TURN_DEBOUNCE`]; every
//! request for the same repository within it joins it, and the repository is
//! synced once when it ends (the window is not extended, so a stream of requests
//! cannot hold a sync back). A cycle that starts serves every request made
//! before it (it syncs every repository after them); one made while a sync runs
//! is served after it.
//!
//! Bookkeeping and a wake-up for the scheduler; the scheduler runs the syncs. No
//! I/O.

use crate::domain::RepoName;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long requests for one repository are gathered into one sync. GitHub sends
/// the deliveries of one change within about a second of each other (a push, the
/// pull request it updates, the workflow run it starts); a second more keeps a
/// webhook's change in `/metrics` well within 5 seconds.
pub const OUT_OF_TURN_DEBOUNCE: Duration = Duration::from_secs(1);

/// The repositories waiting for an out-of-turn sync.
#[derive(Debug)]
pub struct SyncRequests {
    debounce: Duration,
    /// `(source, repository)` → when its sync is due.
    pending: Mutex<BTreeMap<(&'static str, RepoName), Instant>>,
    /// Wakes the scheduler when a request arrives.
    requested: Notify,
}

impl SyncRequests {
    /// No requests yet; each sync due `debounce` after its first request.
    pub fn new(debounce: Duration) -> SyncRequests {
        SyncRequests {
            debounce,
            pending: Mutex::new(BTreeMap::new()),
            requested: Notify::new(),
        }
    }

    /// Asks for a sync of `repository` of `source`, made at `now`.
    pub fn request(&self, source: &'static str, repository: &RepoName, now: Instant) {
        self.lock()
            .entry((source, repository.clone()))
            .or_insert(now + self.debounce);
        self.requested.notify_one();
    }

    /// When the earliest sync is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.lock().values().min().copied()
    }

    /// The syncs due at `now`, taken out (a request made from now on waits for
    /// another sync).
    pub fn take_due(&self, now: Instant) -> Vec<(&'static str, RepoName)> {
        let mut pending = self.lock();
        let due: Vec<_> = pending
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &due {
            pending.remove(key);
        }
        due
    }

    /// A cycle over every repository starts: it serves every request so far.
    pub fn served_by_cycle(&self) {
        self.lock().clear();
    }

    /// Waits until a request arrives (one made since the last wait ended
    /// counts).
    pub async fn requested(&self) {
        self.requested.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(&'static str, RepoName), Instant>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn repo(name: &str) -> RepoName {
        RepoName::parse(name).unwrap()
    }

    #[test]
    fn requests_within_the_window_make_one_sync_when_it_ends() {
        let requests = SyncRequests::new(SECOND);
        let start = Instant::now();
        assert_eq!(requests.next_due(), None);
        requests.request("github", &repo("acme/api"), start);
        requests.request("github", &repo("acme/api"), start + SECOND / 2);
        requests.request("github", &repo("acme/web"), start + SECOND / 4);
        assert_eq!(requests.next_due(), Some(start + SECOND), "not extended");
        assert!(requests.take_due(start + SECOND / 2).is_empty());
        assert_eq!(
            requests.take_due(start + SECOND),
            [("github", repo("acme/api"))]
        );
        // Requested while its sync runs: another sync after it.
        requests.request("github", &repo("acme/api"), start + 2 * SECOND);
        assert_eq!(
            requests.take_due(start + 3 * SECOND),
            [("github", repo("acme/api")), ("github", repo("acme/web"))]
        );
        assert_eq!(requests.next_due(), None);
    }

    #[test]
    fn a_cycle_serves_every_request_before_it() {
        let requests = SyncRequests::new(SECOND);
        let start = Instant::now();
        requests.request("github", &repo("acme/api"), start);
        requests.served_by_cycle();
        assert_eq!(requests.next_due(), None);
        assert!(requests.take_due(start + 2 * SECOND).is_empty());
    }

    #[tokio::test]
    async fn a_request_wakes_the_scheduler_even_before_it_waits() {
        let requests = SyncRequests::new(SECOND);
        requests.request("github", &repo("acme/api"), Instant::now());
        tokio::time::timeout(SECOND, requests.requested())
            .await
            .expect("the stored wake-up");
    }
}
