//! Pacing under per-minute points: the bookkeeping that keeps one principal's
//! requests under GitHub's secondary rate limits instead of running into them.
//!
//! GitHub documents, per principal (a token, an App, an App installation), "no
//! more than 900 points per minute" for REST endpoints and "no more than 2,000
//! points per minute" for the GraphQL endpoint, a `GET`, `HEAD` or `OPTIONS` and a
//! GraphQL query without mutation being 1 point, a `POST`, `PATCH`, `PUT` or
//! `DELETE` and a mutation 5 (docs.github.com, "Rate limits for the REST API",
//! *About secondary rate limits* and *Calculating points for the secondary rate
//! limit*). A conditional request answered `304` is free for the primary budget,
//! not here: it is a request. Over a limit GitHub answers `403` with
//! `retry-after` and may ban integrations that keep running into it.
//!
//! A [`Pacer`] counts, for each of the two limits, the points of the requests in
//! flight (they count from the moment they are sent, until the window after
//! their answer has passed) and of those answered within the last
//! [`SecondaryPace::window`]. An answered request is dated by its answer, the
//! latest moment GitHub can have counted it, so a point leaves the pacer's window
//! no earlier than GitHub's; [`PACE_MARGIN`] adds room for GitHub's way of
//! counting a minute, which it does not document. It says whether a request may
//! go now and, if not, until when it waits.
//!
//! Not here: waiting (the governor sleeps, cancellable, and wakes on answers),
//! the primary budgets (`governor.rs`), what happens when GitHub refuses anyway
//! (the governor's secondary-limit handling, kept for that case), and which hosts
//! are paced (GitHub's client paces every principal, github.com and GitHub
//! Enterprise Server alike; the other sources document no such limit).

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// GitHub's REST secondary limit: points per minute and principal.
pub const GITHUB_REST_POINTS_PER_MINUTE: u64 = 900;

/// GitHub's GraphQL secondary limit: points per minute and principal.
pub const GITHUB_GRAPHQL_POINTS_PER_MINUTE: u64 = 2_000;

/// The minute GitHub's per-minute points are counted over.
pub const SECONDARY_MINUTE: Duration = Duration::from_secs(60);

/// Added to [`SECONDARY_MINUTE`]: a point leaves the pacer's window a second
/// after GitHub's minute would have let it go, whatever GitHub's minute is
/// aligned to (a second in 61 costs under 2 % of the pace).
pub const PACE_MARGIN: Duration = Duration::from_secs(1);

/// The points of a `GET` (`HEAD`, `OPTIONS`, a `304` included) and of a GraphQL
/// query without mutation.
pub const READ_POINTS: u64 = 1;

/// The points of a `POST`, `PATCH`, `PUT` or `DELETE` (minting an installation
/// token) and of a GraphQL mutation.
pub const WRITE_POINTS: u64 = 5;

/// Which secondary limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// REST endpoints.
    Rest,
    /// The GraphQL endpoint.
    Graphql,
}

/// The points one principal may send per window, for each API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryPace {
    /// REST points per window.
    pub rest_points: u64,
    /// GraphQL points per window.
    pub graphql_points: u64,
    /// The span the points are counted over.
    pub window: Duration,
}

impl SecondaryPace {
    /// GitHub's documented limits, over a minute and [`PACE_MARGIN`].
    pub const GITHUB: SecondaryPace = SecondaryPace {
        rest_points: GITHUB_REST_POINTS_PER_MINUTE,
        graphql_points: GITHUB_GRAPHQL_POINTS_PER_MINUTE,
        window: SECONDARY_MINUTE.saturating_add(PACE_MARGIN),
    };

    /// These limits with time `factor` times faster (the window divided by it;
    /// at least a millisecond), for a simulator whose clocks run faster.
    pub fn scaled(&self, factor: f64) -> SecondaryPace {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        SecondaryPace {
            window: self.window.div_f64(factor).max(Duration::from_millis(1)),
            ..self.clone()
        }
    }

    fn limit(&self, api: Api) -> u64 {
        match api {
            Api::Rest => self.rest_points,
            Api::Graphql => self.graphql_points,
        }
    }
}

/// Until when a request waits before it may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceWait {
    /// Until then: enough answered points have left the window.
    Until(Instant),
    /// Until a request in flight is answered (its points hold the window until
    /// the window after its answer).
    Answer,
}

/// The points of one API: in flight, and answered within the window (oldest
/// first, dated by their answers).
#[derive(Debug, Default)]
struct Points {
    in_flight: u64,
    answered: VecDeque<(Instant, u64)>,
    answered_total: u64,
}

impl Points {
    fn forget_before(&mut self, start: Instant) {
        while let Some(&(at, points)) = self.answered.front() {
            if at > start {
                break;
            }
            self.answered.pop_front();
            self.answered_total -= points;
        }
    }
}

/// One principal's points against the limits of a [`SecondaryPace`].
#[derive(Debug)]
pub struct Pacer {
    pace: SecondaryPace,
    rest: Points,
    graphql: Points,
}

impl Pacer {
    /// A pacer under `pace`, nothing sent yet.
    pub fn new(pace: SecondaryPace) -> Pacer {
        Pacer {
            pace,
            rest: Points::default(),
            graphql: Points::default(),
        }
    }

    /// The span the points are counted over.
    pub fn window(&self) -> Duration {
        self.pace.window
    }

    fn points(&mut self, api: Api) -> &mut Points {
        match api {
            Api::Rest => &mut self.rest,
            Api::Graphql => &mut self.graphql,
        }
    }

    /// Whether a request of `points` to `api` may be sent at `now`: `None` if it
    /// may, else until when it waits. A request costing more than the whole
    /// limit goes alone, once the window is empty.
    pub fn wait(&mut self, api: Api, points: u64, now: Instant) -> Option<PaceWait> {
        let limit = self.pace.limit(api);
        let window = self.pace.window;
        let counted = self.points(api);
        if let Some(start) = now.checked_sub(window) {
            counted.forget_before(start);
        }
        let used = counted.in_flight + counted.answered_total;
        let allowed = limit.max(points);
        if used + points <= allowed {
            return None;
        }
        // The answered points leave oldest first: wait for the one after which
        // the request fits, if the points in flight leave room for it at all.
        let mut over = used + points - allowed;
        for &(at, answered) in &counted.answered {
            over = over.saturating_sub(answered);
            if over == 0 {
                return Some(PaceWait::Until(at + window));
            }
        }
        Some(PaceWait::Answer)
    }

    /// A request of `points` to `api` is sent.
    pub fn sent(&mut self, api: Api, points: u64) {
        self.points(api).in_flight += points;
    }

    /// A request of `points` to `api` sent earlier is answered (or abandoned) at
    /// `now`: its points stay in the window until the window after `now`.
    pub fn answered(&mut self, api: Api, points: u64, now: Instant) {
        let counted = self.points(api);
        counted.in_flight = counted.in_flight.saturating_sub(points);
        // Answers are taken in under the governor's lock with its clock read
        // there, so they come in order; keep the deque sorted regardless.
        let at = counted
            .answered
            .back()
            .map_or(now, |(last, _)| now.max(*last));
        counted.answered.push_back((at, points));
        counted.answered_total += points;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SecondaryPace {
        SecondaryPace {
            rest_points: 3,
            graphql_points: 2,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn github_pace_is_its_documented_points_over_a_minute_and_a_margin() {
        assert_eq!(SecondaryPace::GITHUB.rest_points, 900);
        assert_eq!(SecondaryPace::GITHUB.graphql_points, 2_000);
        assert_eq!(SecondaryPace::GITHUB.window, Duration::from_secs(61));
        let fast = SecondaryPace::GITHUB.scaled(61.0);
        assert_eq!(fast.window, Duration::from_secs(1));
        assert_eq!(fast.graphql_points, 2_000);
        assert_eq!(
            SecondaryPace::GITHUB.scaled(f64::NAN),
            SecondaryPace::GITHUB
        );
    }

    #[test]
    fn answered_points_leave_the_window_a_window_after_their_answer() {
        let mut pacer = Pacer::new(small());
        let t0 = Instant::now();
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i * 10);
            assert_eq!(pacer.wait(Api::Rest, 1, at), None);
            pacer.sent(Api::Rest, 1);
            pacer.answered(Api::Rest, 1, at + Duration::from_secs(1));
        }
        let now = t0 + Duration::from_secs(30);
        assert_eq!(
            pacer.wait(Api::Rest, 1, now),
            Some(PaceWait::Until(t0 + Duration::from_secs(61)))
        );
        // GraphQL has points of its own.
        assert_eq!(pacer.wait(Api::Graphql, 1, now), None);
        // A write of 5 points goes alone, once the window is empty.
        assert_eq!(
            pacer.wait(Api::Rest, WRITE_POINTS, now),
            Some(PaceWait::Until(t0 + Duration::from_secs(81)))
        );
        assert_eq!(pacer.wait(Api::Rest, 1, t0 + Duration::from_secs(61)), None);
        assert_eq!(
            pacer.wait(Api::Rest, WRITE_POINTS, t0 + Duration::from_secs(81)),
            None
        );
    }

    #[test]
    fn points_in_flight_hold_the_window_until_answered() {
        let mut pacer = Pacer::new(small());
        let now = Instant::now();
        pacer.sent(Api::Graphql, 1);
        pacer.sent(Api::Graphql, 1);
        assert_eq!(pacer.wait(Api::Graphql, 1, now), Some(PaceWait::Answer));
        let later = now + Duration::from_secs(120);
        assert_eq!(pacer.wait(Api::Graphql, 1, later), Some(PaceWait::Answer));
        pacer.answered(Api::Graphql, 1, later);
        assert_eq!(
            pacer.wait(Api::Graphql, 1, later),
            Some(PaceWait::Until(later + Duration::from_secs(60)))
        );
    }
}
