//! GitHub's secondary rate limits from actual load ([`SecondaryLimits`], off
//! unless [`SimOptions::secondary_limits`](super::SimOptions::secondary_limits)
//! is set), as GitHub documents them in "Rate limits for the REST API", *About
//! secondary rate limits* and *Calculating points for the secondary rate limit*
//! (docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api):
//!
//! - "No more than 100 concurrent requests are allowed. This limit is shared
//!   across the REST API and GraphQL API."
//! - "No more than 900 points per minute are allowed for REST API endpoints, and
//!   no more than 2,000 points per minute are allowed for the GraphQL API
//!   endpoint", where a GraphQL request without mutations is 1 point (computed
//!   apart from its primary points), a REST `GET`/`HEAD`/`OPTIONS` 1 point and
//!   a REST `POST`/`PATCH`/`PUT`/`DELETE` 5 points. A conditional request
//!   answered `304` is free for the primary limit only: it is still a request,
//!   so it counts here.
//! - Over a limit: `403` with the secondary-limit message and `retry-after`;
//!   "continuing to make requests while you are rate limited may result in the
//!   banning of your integration", so every request of the principal sent
//!   before `retry-after` has passed gets the same answer and counts as a
//!   violation.
//!
//! What the documentation leaves open, read here the strict way: the limits
//! hold per principal (an App installation, whose tokens share them; the App
//! itself; a personal token), "per minute" is any 60-second span (a sliding
//! window, not minutes of the clock), and a refused request costs no point.
//! The CPU-time limit ("90 seconds of CPU time per 60 seconds of real time")
//! and the content-creation limits are not modelled (the simulator serves no
//! writes, and its CPU is not GitHub's).
//!
//! The minute and `retry-after` are [`SecondaryLimits::minute`] and
//! [`SecondaryLimits::retry_after`], so that a test or a benchmark that makes
//! time fast can scale them with the rest of its clock.

use super::{bearer, Shared};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// GitHub's documentation of secondary rate limits, as its `403`s cite it.
const SECONDARY_DOCS: &str = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

/// Most principals whose load is remembered; idle ones are forgotten beyond it.
const MAX_PRINCIPALS: usize = 4_096;

/// GitHub's secondary rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryLimits {
    /// REST points per minute and principal (GitHub: 900).
    pub rest_points_per_minute: u64,
    /// GraphQL points per minute and principal (GitHub: 2,000).
    pub graphql_points_per_minute: u64,
    /// Requests in flight at once per principal, REST and GraphQL together
    /// (GitHub: 100).
    pub max_concurrent: usize,
    /// The span the per-minute points are counted over (GitHub: 60 s).
    pub minute: Duration,
    /// The `retry-after` of a limit, and how long the principal stays limited
    /// (GitHub documents none; "wait for at least one minute" when it gives no
    /// `retry-after`: 60 s).
    pub retry_after: Duration,
}

impl SecondaryLimits {
    /// GitHub's documented secondary limits, in real time.
    pub const GITHUB: SecondaryLimits = SecondaryLimits {
        rest_points_per_minute: 900,
        graphql_points_per_minute: 2_000,
        max_concurrent: 100,
        minute: Duration::from_secs(60),
        retry_after: Duration::from_secs(60),
    };

    /// GitHub's limits with time `factor` times faster (`minute` and
    /// `retry_after` divided by it, at least a millisecond and a second).
    pub fn scaled(factor: f64) -> SecondaryLimits {
        let github = SecondaryLimits::GITHUB;
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        SecondaryLimits {
            minute: github.minute.div_f64(factor).max(Duration::from_millis(1)),
            retry_after: github
                .retry_after
                .div_f64(factor)
                .max(Duration::from_secs(1)),
            ..github
        }
    }
}

/// What the secondary limits did, for [`SimHandle::secondary_counts`](super::SimHandle::secondary_counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondaryCounts {
    /// Requests refused because they would have gone over the REST points of a
    /// minute (each starts a limit).
    pub rest_per_minute: u64,
    /// The same for GraphQL.
    pub graphql_per_minute: u64,
    /// Requests refused for going over the concurrent requests.
    pub concurrent: u64,
    /// Requests sent while their principal was limited (before `retry-after`
    /// had passed): what GitHub may ban an integration for.
    pub violations: u64,
    /// The most REST points any principal spent within one minute.
    pub peak_rest_per_minute: u64,
    /// The most GraphQL points any principal spent within one minute.
    pub peak_graphql_per_minute: u64,
    /// The most requests any principal had in flight at once.
    pub peak_concurrent: usize,
}

impl SecondaryCounts {
    /// Every request refused, limits and violations together.
    pub fn refused(&self) -> u64 {
        self.rest_per_minute + self.graphql_per_minute + self.concurrent + self.violations
    }
}

/// Who a request's limits belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Principal {
    /// An App installation (all its tokens).
    Installation(u64),
    /// The App itself (its JWTs).
    App,
    /// Any other credential, by a hash of it.
    Credential(u64),
}

/// The points spent over the last minute, oldest first.
#[derive(Debug, Default)]
struct Window {
    spent: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    fn forget_before(&mut self, start: Instant) {
        while let Some(&(at, points)) = self.spent.front() {
            if at > start {
                break;
            }
            self.spent.pop_front();
            self.total -= points;
        }
    }
}

#[derive(Debug, Default)]
struct Load {
    rest: Window,
    graphql: Window,
    in_flight: usize,
    limited_until: Option<Instant>,
}

impl Load {
    fn idle(&self, now: Instant) -> bool {
        self.in_flight == 0
            && self.rest.spent.is_empty()
            && self.graphql.spent.is_empty()
            && self.limited_until.is_none_or(|until| until <= now)
    }
}

/// The limits in force and every principal's load.
pub(crate) struct SecondaryState {
    limits: SecondaryLimits,
    loads: HashMap<Principal, Load>,
    counts: SecondaryCounts,
}

/// Whether a request may go, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    /// Refused; the principal is limited for `retry_after` more.
    Limited {
        retry_after: Duration,
    },
}

impl SecondaryState {
    pub(crate) fn new(limits: SecondaryLimits) -> SecondaryState {
        SecondaryState {
            limits,
            loads: HashMap::new(),
            counts: SecondaryCounts::default(),
        }
    }

    pub(crate) fn counts(&self) -> SecondaryCounts {
        self.counts
    }

    pub(crate) fn reset_counts(&mut self) {
        self.counts = SecondaryCounts::default();
    }

    /// Decides whether a request of `principal` costing `points` (to the
    /// GraphQL minute when `graphql`) may go at `now`; if it may, it is
    /// counted in flight until [`SecondaryState::done`].
    fn begin(&mut self, principal: Principal, graphql: bool, points: u64, now: Instant) -> Verdict {
        if self.loads.len() >= MAX_PRINCIPALS && !self.loads.contains_key(&principal) {
            self.loads.retain(|_, load| !load.idle(now));
        }
        let limits = &self.limits;
        let load = self.loads.entry(principal).or_default();
        if let Some(until) = load.limited_until.filter(|until| *until > now) {
            self.counts.violations += 1;
            return Verdict::Limited {
                retry_after: until - now,
            };
        }
        let start = now.checked_sub(limits.minute).unwrap_or(now);
        load.rest.forget_before(start);
        load.graphql.forget_before(start);
        let (window, limit) = if graphql {
            (&mut load.graphql, limits.graphql_points_per_minute)
        } else {
            (&mut load.rest, limits.rest_points_per_minute)
        };
        let over_minute = window.total + points > limit;
        let over_concurrent = load.in_flight >= limits.max_concurrent;
        if over_minute || over_concurrent {
            if over_concurrent {
                self.counts.concurrent += 1;
            } else if graphql {
                self.counts.graphql_per_minute += 1;
            } else {
                self.counts.rest_per_minute += 1;
            }
            load.limited_until = Some(now + limits.retry_after);
            return Verdict::Limited {
                retry_after: limits.retry_after,
            };
        }
        window.spent.push_back((now, points));
        window.total += points;
        let total = window.total;
        load.in_flight += 1;
        let in_flight = load.in_flight;
        let peak = if graphql {
            &mut self.counts.peak_graphql_per_minute
        } else {
            &mut self.counts.peak_rest_per_minute
        };
        *peak = (*peak).max(total);
        self.counts.peak_concurrent = self.counts.peak_concurrent.max(in_flight);
        Verdict::Pass
    }

    /// A request of `principal` let through is answered (or abandoned).
    fn done(&mut self, principal: Principal) {
        if let Some(load) = self.loads.get_mut(&principal) {
            load.in_flight = load.in_flight.saturating_sub(1);
        }
    }
}

/// Uncounts a request in flight when its answer is sent or it is dropped.
struct InFlight<'a> {
    shared: &'a Shared,
    principal: Principal,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(mut state) = self.shared.secondary() {
            state.done(self.principal);
        }
    }
}

impl Shared {
    /// The secondary limits' state, when they are on.
    pub(crate) fn secondary(&self) -> Option<MutexGuard<'_, SecondaryState>> {
        self.secondary
            .as_ref()
            .map(|state| state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whose limits a request with `credential` counts against (`None`: a
    /// credential the simulator refuses anyway).
    fn principal(&self, credential: &str) -> Option<Principal> {
        if let Some(id) = self.app().and_then(|app| app.installation_of(credential)) {
            return Some(Principal::Installation(id));
        }
        if credential == self.token() {
            let mut hasher = DefaultHasher::new();
            credential.hash(&mut hasher);
            return Some(Principal::Credential(hasher.finish()));
        }
        (self.app.is_some() && credential.split('.').count() == 3).then_some(Principal::App)
    }
}

/// The secondary limits, around every route (inside the chaos layer, whose
/// faults cost nothing here).
pub(super) async fn layer(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if shared.secondary.is_none() {
        return next.run(request).await;
    }
    let principal = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .and_then(|credential| shared.principal(credential));
    let Some(principal) = principal else {
        return next.run(request).await;
    };
    let method = request.method().clone();
    let graphql = method == Method::POST && request.uri().path() == "/graphql";
    let points = match method {
        _ if graphql => 1,
        Method::GET | Method::HEAD | Method::OPTIONS => 1,
        _ => 5,
    };
    let verdict = match shared.secondary() {
        Some(mut state) => state.begin(principal, graphql, points, Instant::now()),
        None => Verdict::Pass,
    };
    match verdict {
        Verdict::Pass => {
            let _in_flight = InFlight {
                shared: &shared,
                principal,
            };
            next.run(request).await
        }
        Verdict::Limited { retry_after } => limited(retry_after),
    }
}

/// GitHub's `403` for a secondary limit.
fn limited(retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let body = serde_json::json!({
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
        "documentation_url": SECONDARY_DOCS,
        "status": "403",
    });
    let mut response = Response::new(axum::body::Body::from(
        serde_json::to_vec(&body).unwrap_or_default(),
    ));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn state(limits: SecondaryLimits) -> Mutex<SecondaryState> {
        Mutex::new(SecondaryState::new(limits))
    }

    fn limits() -> SecondaryLimits {
        SecondaryLimits {
            rest_points_per_minute: 3,
            graphql_points_per_minute: 2,
            max_concurrent: 2,
            ..SecondaryLimits::GITHUB
        }
    }

    #[test]
    fn points_per_minute_are_counted_over_any_sixty_seconds_per_principal() {
        let state = state(limits());
        let mut state = state.lock().unwrap();
        let t0 = Instant::now();
        let one = Principal::Installation(1);
        for i in 0..3 {
            assert_eq!(
                state.begin(one, false, 1, t0 + Duration::from_secs(i * 20)),
                Verdict::Pass
            );
            state.done(one);
        }
        // The fourth REST point within 60 s of the first is refused, and the
        // installation is then limited for `retry_after`, GraphQL included.
        let at = t0 + Duration::from_secs(59);
        assert_eq!(
            state.begin(one, false, 1, at),
            Verdict::Limited {
                retry_after: Duration::from_secs(60)
            }
        );
        assert!(matches!(
            state.begin(one, true, 1, at + Duration::from_secs(30)),
            Verdict::Limited { .. }
        ));
        // Another principal has budgets of its own.
        assert_eq!(state.begin(Principal::App, false, 1, at), Verdict::Pass);
        // Past `retry_after`, the oldest points have left the minute.
        assert_eq!(
            state.begin(one, false, 1, at + Duration::from_secs(61)),
            Verdict::Pass
        );
        let counts = state.counts();
        assert_eq!(counts.rest_per_minute, 1);
        assert_eq!(counts.violations, 1);
        assert_eq!(counts.peak_rest_per_minute, 3);
    }

    #[test]
    fn graphql_has_a_minute_of_its_own_and_writes_cost_five() {
        let state = state(limits());
        let mut state = state.lock().unwrap();
        let now = Instant::now();
        let one = Principal::Installation(1);
        assert_eq!(state.begin(one, true, 1, now), Verdict::Pass);
        state.done(one);
        assert_eq!(state.begin(one, true, 1, now), Verdict::Pass);
        state.done(one);
        assert_eq!(state.begin(one, false, 1, now), Verdict::Pass);
        state.done(one);
        assert!(matches!(
            state.begin(Principal::App, false, 5, now),
            Verdict::Limited { .. }
        ));
        assert_eq!(state.counts().graphql_per_minute, 0);
        assert_eq!(state.counts().rest_per_minute, 1);
    }

    #[test]
    fn concurrent_requests_are_bounded_until_answered() {
        let state = state(SecondaryLimits {
            rest_points_per_minute: 100,
            ..limits()
        });
        let mut state = state.lock().unwrap();
        let now = Instant::now();
        let one = Principal::Installation(1);
        assert_eq!(state.begin(one, false, 1, now), Verdict::Pass);
        assert_eq!(state.begin(one, true, 1, now), Verdict::Pass);
        assert!(matches!(
            state.begin(one, false, 1, now),
            Verdict::Limited { .. }
        ));
        assert_eq!(state.counts().concurrent, 1);
        assert_eq!(state.counts().peak_concurrent, 2);
        state.done(one);
        state.done(one);
        assert_eq!(
            state.begin(one, false, 1, now + Duration::from_secs(60)),
            Verdict::Pass
        );
    }

    #[test]
    fn scaled_limits_keep_the_points_and_shorten_the_minute() {
        let fast = SecondaryLimits::scaled(60.0);
        assert_eq!(fast.rest_points_per_minute, 900);
        assert_eq!(fast.graphql_points_per_minute, 2_000);
        assert_eq!(fast.minute, Duration::from_secs(1));
        assert_eq!(fast.retry_after, Duration::from_secs(1));
        assert_eq!(SecondaryLimits::scaled(1.0), SecondaryLimits::GITHUB);
    }
}
