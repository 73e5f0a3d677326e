//! `Clock`: where the daemon gets `now` (the engine's evaluation time, the sync
//! context's lookback end, the health timestamps) and sync durations.
//!
//! Injected so that a test can fix time: with a [`ManualClock`] the whole output of
//! the daemon, health included, is a function of the data. Scheduling (the poll
//! interval) deliberately uses tokio's timer, not this clock.

use crate::domain::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, in whole seconds.
    fn now(&self) -> Timestamp;

    /// Seconds since `start` (an `Instant` taken by the caller), for durations.
    fn seconds_since(&self, start: Instant) -> f64;
}

/// The system's wall clock and monotonic timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(chrono::Utc::now())
    }

    fn seconds_since(&self, start: Instant) -> f64 {
        start.elapsed().as_secs_f64()
    }
}

/// A clock that says what it is told; durations are always zero. For tests and
/// benchmarks that need deterministic output.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn new(now: Timestamp) -> Self {
        ManualClock {
            now: AtomicI64::new(now.0),
        }
    }

    pub fn set(&self, now: Timestamp) {
        self.now.store(now.0, Ordering::SeqCst);
    }

    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }

    fn seconds_since(&self, _start: Instant) -> f64 {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(100));
        assert_eq!(clock.now(), Timestamp(100));
        clock.advance(5);
        assert_eq!(clock.now(), Timestamp(105));
        clock.set(Timestamp(7));
        assert_eq!(clock.now(), Timestamp(7));
        assert_eq!(clock.seconds_since(Instant::now()), 0.0);
    }
}
