//! The rate-limit governor: one per token and API host (each source's client
//! owns one), through which every request to GitHub or GitLab is sent. It
//!
//! - reads the rate-limit headers on every response (GitHub's
//!   `x-ratelimit-{remaining,reset,resource}`, GitLab's and the IETF draft's
//!   `ratelimit-{remaining,reset}`) and never sends a request for a resource
//!   whose budget is spent before its reset: it waits for the reset
//!   (cancellable by shutdown), or, when the reset is further away than
//!   [`RetryPolicy::max_rate_limit_wait`], fails that request at once with the
//!   source's "rate limited" error instead of hanging past the cycle. Requests
//!   in flight count against the budget until they are answered, so concurrent
//!   requests cannot overdraw it either; a refusal naming its reset (GitHub's
//!   spent primary limit, GitLab's `429` with `RateLimit-Reset`) takes the
//!   budget as spent until then;
//! - on a secondary rate limit (GitHub's 403/429 with `retry-after` or its
//!   message, a `429` with only `Retry-After`) pauses every request of the token
//!   for `retry-after` (or [`RetryPolicy::min_secondary_wait`] without one), then
//!   backs off exponentially with jitter if the same request is limited again;
//! - retries server errors (5xx), network failures (resets, timeouts), truncated
//!   bodies and bodies that are not JSON with bounded exponential backoff and jitter;
//! - bounds the requests in flight per token ([`RetryPolicy::max_concurrency`]);
//! - when built [`Governor::with_pace`] (GitHub's clients), paces the token's
//!   requests under GitHub's secondary per-minute points (900 REST, 2,000
//!   GraphQL over any minute: [`SecondaryPace`]): a request that would go over
//!   waits until enough points have left the window, rather than being sent and
//!   refused (`pace.rs` does the counting);
//! - counts the time requests spent held back by rate limits (pacing included)
//!   and the retries by reason, for the health metrics.
//!
//! The policy (bounds and waits) is one [`RetryPolicy`] with production defaults as
//! named constants; tests inject a fast one.
//!
//! [`Governor::send`] is generic over the request and over the source's error
//! type ([`GovernedError`]): it takes a closure that builds and sends one attempt
//! and reports its headers and result, so GitHub's REST GETs and GraphQL POSTs
//! and GitLab's GETs go through the same governor.
//!
//! Not here: building requests, mapping HTTP statuses to errors (the caller's
//! closure does that), what a response means, and retries of a repository that
//! still fails (the daemon tries it again soon, from its cursors:
//! `daemon/retry.rs`).

use crate::domain::Timestamp;
use crate::sources::pace::{Api, PaceWait, Pacer, SecondaryPace, READ_POINTS};
use crate::sources::RateLimit;
use http::HeaderMap;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Retries of one request after its first attempt. GitHub's transient failures
/// rarely last more than a couple of attempts; five, with the backoff below, spans
/// about half a minute before the repository's sync fails and waits for the next
/// cycle.
pub const DEFAULT_MAX_RETRIES: u32 = 5;

/// The first backoff after a server or network error; it doubles with each retry.
pub const DEFAULT_BASE_BACKOFF: Duration = Duration::from_secs(1);

/// The longest backoff after a server or network error: a request is never held
/// longer than this between two attempts (rate limits aside).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The wait after a secondary rate limit without `retry-after`, and the base of the
/// exponential backoff when the same request is limited again: GitHub's documented
/// "wait for at least one minute before retrying".
pub const DEFAULT_MIN_SECONDARY_WAIT: Duration = Duration::from_secs(60);

/// The longest wait for a rate limit (primary reset or secondary `retry-after`)
/// within a sync. A longer one fails the request at once with a clear error, and
/// the next cycle (after the reset) resumes from the cursors, instead of one cycle
/// hanging for most of GitHub's hour-long window.
pub const DEFAULT_MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// Requests in flight per token. GitHub's best practices ask integrations to make
/// a token's requests serially, not concurrently, to avoid secondary limits; one
/// in flight also means no request is ever already on its way when a secondary
/// limit is imposed. The first sync is bound by the hourly budget, not latency.
pub const DEFAULT_MAX_CONCURRENCY: usize = 1;

/// Added to the wait for a primary reset: the server's clock and ours differ, and a
/// request sent a moment early would be refused and counted as a violation.
pub const RESET_MARGIN: Duration = Duration::from_secs(1);

/// The jitter added to a secondary-limit wait, as a share of it: it only ever
/// lengthens the wait (never below `retry-after`), and spreads the restart of
/// collectors limited together.
pub const SECONDARY_JITTER_FRACTION: f64 = 0.1;

/// The most rate-limit resources tracked. Resource names come from the server and
/// become label values; GitHub has about ten.
pub const MAX_RESOURCES: usize = 16;

/// The longest rate-limit resource name accepted from a response header.
pub const MAX_RESOURCE_CHARS: usize = 32;

/// The resource a request is charged to when the server does not say: REST.
pub const CORE_RESOURCE: &str = "core";

/// The resource GraphQL queries are charged to (points, a budget of its own).
pub const GRAPHQL_RESOURCE: &str = "graphql";

/// How requests are retried and how long they may wait. [`Default`] is the
/// production policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries of one request after its first attempt, every reason together.
    pub max_retries: u32,
    /// The first backoff after a server or network error (doubles per retry).
    pub base_backoff: Duration,
    /// The longest backoff after a server or network error.
    pub max_backoff: Duration,
    /// The wait after a secondary limit without `retry-after`, and the base of the
    /// backoff when one request is limited again.
    pub min_secondary_wait: Duration,
    /// The longest rate-limit wait accepted within a sync.
    pub max_rate_limit_wait: Duration,
    /// Requests in flight per token (at least 1).
    pub max_concurrency: usize,
    /// The secondary per-minute points GitHub's clients pace each principal
    /// under (`None`: not paced, only the refusals are waited out). Other
    /// sources' governors are built without it.
    pub github_secondary_pace: Option<SecondaryPace>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: DEFAULT_MAX_RETRIES,
            base_backoff: DEFAULT_BASE_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            min_secondary_wait: DEFAULT_MIN_SECONDARY_WAIT,
            max_rate_limit_wait: DEFAULT_MAX_RATE_LIMIT_WAIT,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            github_secondary_pace: Some(SecondaryPace::GITHUB),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry `retry` (0 for the first) after a server or network
    /// error, with `random` in `0..=1`: "equal jitter", between half and all of
    /// `base_backoff · 2^retry` (at most `max_backoff`).
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let full = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        full / 2 + (full / 2).mul_f64(random.clamp(0.0, 1.0))
    }

    /// The wait after the `nth` (from 1) secondary limit in a row on one request:
    /// `retry-after` (or `min_secondary_wait` without one); from the second in a
    /// row at least `min_secondary_wait · 2^(nth-2)`; plus up to
    /// [`SECONDARY_JITTER_FRACTION`] of it at random (`random` in `0..=1`).
    pub fn secondary_wait(&self, retry_after: Option<u64>, nth: u32, random: f64) -> Duration {
        let floor = retry_after.map_or(self.min_secondary_wait, Duration::from_secs);
        let exponential = match nth.checked_sub(2) {
            Some(doublings) => self
                .min_secondary_wait
                .saturating_mul(2u32.saturating_pow(doublings)),
            None => Duration::ZERO,
        };
        let base = floor.max(exponential);
        base.saturating_add(base.mul_f64(SECONDARY_JITTER_FRACTION * random.clamp(0.0, 1.0)))
    }
}

/// Why a request was retried: the bounded `reason` label of
/// `dora_collector_api_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RetryReason {
    /// A 5xx answer.
    ServerError,
    /// No answer: connection refused or reset, timeout.
    Network,
    /// The connection broke while the body was read.
    Truncated,
    /// A 2xx whose body is not JSON.
    InvalidBody,
    /// A secondary rate limit.
    SecondaryRateLimit,
    /// The primary budget was spent (the request was refused).
    RateLimit,
    /// GitHub did not answer in time (a `504`, a `502` saying so, a GraphQL
    /// timeout error).
    Timeout,
    /// A GraphQL answer without data whose errors say nothing about the query.
    GraphqlError,
}

impl RetryReason {
    /// Every reason, in label order.
    pub const ALL: [RetryReason; 8] = [
        RetryReason::ServerError,
        RetryReason::Network,
        RetryReason::Truncated,
        RetryReason::InvalidBody,
        RetryReason::SecondaryRateLimit,
        RetryReason::RateLimit,
        RetryReason::Timeout,
        RetryReason::GraphqlError,
    ];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            RetryReason::ServerError => "server_error",
            RetryReason::Network => "network",
            RetryReason::Truncated => "truncated",
            RetryReason::InvalidBody => "invalid_body",
            RetryReason::SecondaryRateLimit => "secondary_rate_limit",
            RetryReason::RateLimit => "rate_limit",
            RetryReason::Timeout => "timeout",
            RetryReason::GraphqlError => "graphql_error",
        }
    }

    /// Whether `error` is worth retrying, and why.
    pub fn of<E: GovernedError>(error: &E) -> Option<RetryReason> {
        error.retry_reason()
    }
}

/// What the governor needs to know of a source's errors: which are worth
/// retrying and why, what a rate-limit refusal says, and how to say that a
/// request was cancelled, given up on or refused for a spent budget.
pub trait GovernedError: std::fmt::Display + Sized {
    /// Whether this error is worth retrying, and why.
    fn retry_reason(&self) -> Option<RetryReason>;
    /// For a refusal because the budget is spent: the epoch second it resets,
    /// when the refusal names it.
    fn spent_until(&self) -> Option<i64>;
    /// For a secondary limit: its `retry-after`, in seconds, if it gave one.
    fn retry_after(&self) -> Option<u64>;
    /// The request was stopped by shutdown.
    fn cancelled() -> Self;
    /// The request was retried `attempts - 1` times and `last` is its last error.
    fn gave_up(attempts: u32, last: Self) -> Self;
    /// A request to `url` not sent because `resource`'s budget is spent until
    /// `reset_at`.
    fn rate_limited(url: &str, resource: &str, reset_at: Option<Timestamp>) -> Self;
}

/// What one attempt of a governed request returned.
#[derive(Debug)]
pub struct Attempt<T, E> {
    /// The response headers, when a response arrived (rate-limit bookkeeping).
    pub headers: Option<HeaderMap>,
    /// The attempt's result; the caller maps statuses to its errors.
    pub result: Result<T, E>,
}

/// The governor's counters, for the health metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GovernorHealth {
    /// The latest rate limit per resource (the lowest remaining seen in the
    /// current window), sorted by resource.
    pub rate_limits: Vec<RateLimit>,
    /// Seconds requests were held back by rate limits, summed over requests.
    pub rate_limit_wait_seconds: f64,
    /// Retries by reason, every reason present (zero included).
    pub retries: Vec<(RetryReason, u64)>,
}

impl GovernorHealth {
    /// The health of several governors (one per principal, such as each App
    /// installation) as one: their rate limits side by side, their waits and
    /// retries summed (every reason present).
    pub fn sum(healths: impl IntoIterator<Item = GovernorHealth>) -> GovernorHealth {
        let mut total = GovernorHealth {
            rate_limits: Vec::new(),
            rate_limit_wait_seconds: 0.0,
            retries: RetryReason::ALL.iter().map(|reason| (*reason, 0)).collect(),
        };
        for health in healths {
            total.rate_limits.extend(health.rate_limits);
            total.rate_limit_wait_seconds += health.rate_limit_wait_seconds;
            for (reason, count) in health.retries {
                if let Some(sum) = total.retries.iter_mut().find(|(r, _)| *r == reason) {
                    sum.1 += count;
                }
            }
        }
        total
    }
}

/// A resource's budget as the server last reported it.
#[derive(Debug, Clone)]
struct Limit {
    remaining: u64,
    /// Epoch seconds of the reset, as reported.
    reset_at: Option<i64>,
    /// The reset on the runtime's clock (plus [`RESET_MARGIN`]): when requests may
    /// be sent again once the budget is spent.
    open_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    limits: BTreeMap<String, Limit>,
    /// Requests sent and not yet answered, by the resource they are charged to.
    pending: BTreeMap<String, u64>,
    /// A secondary limit holds every request of the token until then.
    paused_until: Option<Instant>,
    /// The per-minute points of the token's requests, when it is paced.
    pacer: Option<Pacer>,
    waited: Duration,
    retries: BTreeMap<RetryReason, u64>,
}

impl State {
    /// How long a request for `resource` must wait for the budget, if at all, and
    /// whether the budget is spent outright (not merely reserved by requests in
    /// flight).
    fn budget_wait(&self, resource: &str, now: Instant) -> Option<(Duration, bool)> {
        let limit = self.limits.get(resource)?;
        let open_at = limit.open_at?;
        if now >= open_at {
            return None;
        }
        let pending = self.pending.get(resource).copied().unwrap_or(0);
        if limit.remaining > pending {
            return None;
        }
        Some((open_at - now, pending == 0))
    }
}

/// The rate-limit governor of one token.
#[derive(Debug)]
pub struct Governor {
    policy: RetryPolicy,
    permits: Semaphore,
    state: Mutex<State>,
    /// Woken when an answer arrives (a reserved budget may be free again).
    answered: Notify,
}

/// Counts a request as in flight until it is answered or dropped.
struct InFlight<'a> {
    governor: &'a Governor,
    resource: &'a str,
    /// Its secondary points.
    points: u64,
    headers: Option<HeaderMap>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut state = self.governor.state();
        if let Some(headers) = &self.headers {
            observe(&mut state, headers, self.resource);
        }
        if let Some(pacer) = &mut state.pacer {
            pacer.answered(api_of(self.resource), self.points, Instant::now());
        }
        if let Some(pending) = state.pending.get_mut(self.resource) {
            *pending = pending.saturating_sub(1);
        }
        drop(state);
        self.governor.answered.notify_waiters();
    }
}

impl Governor {
    /// A governor with `policy` (a concurrency of 0 is taken as 1), not paced.
    pub fn new(policy: RetryPolicy) -> Governor {
        Governor::with_pace(policy, None)
    }

    /// A governor with `policy` that paces its requests under `pace` (GitHub's
    /// secondary limits), if any.
    pub fn with_pace(policy: RetryPolicy, pace: Option<SecondaryPace>) -> Governor {
        let permits = Semaphore::new(policy.max_concurrency.max(1));
        Governor {
            policy,
            permits,
            state: Mutex::new(State {
                pacer: pace.map(Pacer::new),
                ..State::default()
            }),
            answered: Notify::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one request through the governor: `attempt` builds and sends it once
    /// and is called again for each retry. `resource` is the rate-limit resource
    /// the request is charged to (`core` for REST, `graphql`); `url` names the
    /// request in errors and logs. Each attempt costs [`READ_POINTS`] of the
    /// secondary pace (a `GET`, a GraphQL query).
    pub async fn send<T, E, F, Fut>(
        &self,
        resource: &str,
        url: &str,
        cancel: &CancellationToken,
        attempt: F,
    ) -> Result<T, E>
    where
        E: GovernedError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        self.send_points(resource, READ_POINTS, url, cancel, attempt)
            .await
    }

    /// [`Governor::send`] for a request each attempt of which costs `points` of
    /// the secondary pace (`pace::WRITE_POINTS` for a `POST`).
    pub async fn send_points<T, E, F, Fut>(
        &self,
        resource: &str,
        points: u64,
        url: &str,
        cancel: &CancellationToken,
        mut attempt: F,
    ) -> Result<T, E>
    where
        E: GovernedError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let mut retries = 0u32;
        let mut secondary_in_a_row = 0u32;
        loop {
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(E::cancelled()),
                permit = self.permits.acquire() => permit.map_err(|_| E::cancelled())?,
            };
            self.wait_turn(resource, points, url, cancel).await?;
            let mut in_flight = InFlight {
                governor: self,
                resource,
                points,
                headers: None,
            };
            let outcome = attempt().await;
            in_flight.headers = outcome.headers;
            drop(in_flight);
            let error = match outcome.result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some(reason) = error.retry_reason() else {
                return Err(error);
            };
            if let (RetryReason::RateLimit, Some(reset_at)) = (reason, error.spent_until()) {
                // The server says the budget is spent until `reset_at`, whatever
                // window the headers seemed to be in before.
                self.spent_until(resource, reset_at);
            }
            if reason == RetryReason::RateLimit {
                // Spent beyond the bound: the error says until when.
                self.check_budget(resource, url)?;
            }
            if retries >= self.policy.max_retries {
                return Err(E::gave_up(retries + 1, error));
            }
            retries += 1;
            *self.state().retries.entry(reason).or_default() += 1;
            tracing::info!(
                %url,
                reason = reason.label(),
                retry = retries,
                %error,
                "retrying a request"
            );
            match reason {
                RetryReason::SecondaryRateLimit => {
                    secondary_in_a_row += 1;
                    let wait = self.policy.secondary_wait(
                        error.retry_after(),
                        secondary_in_a_row,
                        rand::random::<f64>(),
                    );
                    self.pause(wait);
                    drop(permit);
                    if wait > self.policy.max_rate_limit_wait {
                        return Err(error);
                    }
                }
                RetryReason::RateLimit => {
                    secondary_in_a_row = 0;
                    let gated = self.state().budget_wait(resource, Instant::now()).is_some();
                    if !gated {
                        // Refused without a usable reset time: GitHub says to
                        // wait at least a minute.
                        self.pause(self.policy.min_secondary_wait);
                    }
                    drop(permit);
                }
                _ => {
                    secondary_in_a_row = 0;
                    drop(permit);
                    let backoff = self.policy.backoff(retries - 1, rand::random::<f64>());
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return Err(E::cancelled()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
    }

    /// Fails when `resource`'s budget is spent and resets beyond the bound.
    fn check_budget<E: GovernedError>(&self, resource: &str, url: &str) -> Result<(), E> {
        let state = self.state();
        match state.budget_wait(resource, Instant::now()) {
            Some((wait, true)) if wait > self.policy.max_rate_limit_wait => {
                Err(exhausted(&state, resource, url))
            }
            _ => Ok(()),
        }
    }

    /// Takes `resource`'s budget as spent until epoch second `reset`: a refusal
    /// saying so outranks the headers of earlier answers (a window the server
    /// ended early, or an answer whose headers were not read).
    fn spent_until(&self, resource: &str, reset: i64) {
        let mut state = self.state();
        if !state.limits.contains_key(resource) && state.limits.len() >= MAX_RESOURCES {
            return;
        }
        state.limits.insert(
            resource.to_owned(),
            Limit {
                remaining: 0,
                reset_at: Some(reset),
                open_at: Some(open_instant(reset)),
            },
        );
    }

    /// Holds every request of the token for `wait` from now (never shortens a
    /// pause in force).
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.state();
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
    }

    /// Waits until a request for `resource` costing `points` of the secondary
    /// pace may be sent, then counts it in flight (the caller's [`InFlight`]
    /// uncounts it).
    async fn wait_turn<E: GovernedError>(
        &self,
        resource: &str,
        points: u64,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<(), E> {
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let wait = {
                let mut state = self.state();
                let now = Instant::now();
                if let Some(until) = state.paused_until.filter(|u| *u > now) {
                    let wait = until - now;
                    if wait > self.policy.max_rate_limit_wait {
                        let reset = Timestamp(epoch_now().saturating_add(ceil_secs(wait)));
                        return Err(E::rate_limited(url, "secondary", Some(reset)));
                    }
                    wait
                } else if let Some((wait, spent)) = state.budget_wait(resource, now) {
                    if spent && wait > self.policy.max_rate_limit_wait {
                        return Err(exhausted(&state, resource, url));
                    }
                    wait
                } else if let Some(paced) = pace_wait(&mut state, resource, points, now) {
                    paced
                } else {
                    if let Some(pacer) = &mut state.pacer {
                        pacer.sent(api_of(resource), points);
                    }
                    *state.pending.entry(resource.to_owned()).or_default() += 1;
                    return Ok(());
                }
            };
            tracing::debug!(%url, wait_seconds = wait.as_secs_f64(), "waiting for the rate limit");
            let started = Instant::now();
            let cancelled = tokio::select! {
                biased;
                () = cancel.cancelled() => true,
                () = tokio::time::sleep(wait) => false,
                () = &mut answered => false,
            };
            let waited = started.elapsed();
            self.state().waited += waited;
            if cancelled {
                return Err(E::cancelled());
            }
        }
    }

    /// The counters for the health metrics.
    pub fn health(&self) -> GovernorHealth {
        let state = self.state();
        GovernorHealth {
            rate_limits: state
                .limits
                .iter()
                .map(|(resource, limit)| RateLimit {
                    // A source with one token: `token`; GitHub's principals
                    // name theirs (`app`, `installation:<account>`).
                    credential: "token".to_owned(),
                    resource: resource.clone(),
                    remaining: limit.remaining,
                    reset_at: limit.reset_at.map(Timestamp),
                })
                .collect(),
            rate_limit_wait_seconds: state.waited.as_secs_f64(),
            retries: RetryReason::ALL
                .iter()
                .map(|r| (*r, state.retries.get(r).copied().unwrap_or(0)))
                .collect(),
        }
    }
}

/// Which secondary limit a request charged to `resource` counts against.
fn api_of(resource: &str) -> Api {
    if resource == GRAPHQL_RESOURCE {
        Api::Graphql
    } else {
        Api::Rest
    }
}

/// How long a request for `resource` costing `points` waits for the pace, if
/// the governor paces and the window is full. Waiting for an answer, it waits
/// at most a window: the answer's notification ends the wait sooner.
fn pace_wait(state: &mut State, resource: &str, points: u64, now: Instant) -> Option<Duration> {
    let pacer = state.pacer.as_mut()?;
    match pacer.wait(api_of(resource), points, now)? {
        PaceWait::Until(until) => Some(until.saturating_duration_since(now)),
        PaceWait::Answer => Some(pacer.window()),
    }
}

/// The error for a request refused because `resource`'s budget is spent.
fn exhausted<E: GovernedError>(state: &State, resource: &str, url: &str) -> E {
    let reset_at = state
        .limits
        .get(resource)
        .and_then(|l| l.reset_at)
        .map(Timestamp);
    E::rate_limited(url, resource, reset_at)
}

/// The value of rate-limit header `name` (`remaining`, `reset`): GitHub's
/// `x-ratelimit-{name}`, else GitLab's and the IETF draft's `ratelimit-{name}`.
fn limit_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(format!("x-ratelimit-{name}"))
        .or_else(|| headers.get(format!("ratelimit-{name}")))
        .and_then(|v| v.to_str().ok())
}

/// Takes in the rate-limit headers of one response to a request charged to
/// `requested`.
fn observe(state: &mut State, headers: &HeaderMap, requested: &str) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(remaining) = limit_header(headers, "remaining").and_then(|v| v.trim().parse().ok())
    else {
        return;
    };
    // Resource names come from the server: keep them short and plain, as they
    // become label values.
    let resource = header("x-ratelimit-resource")
        .filter(|r| {
            !r.is_empty()
                && r.len() <= MAX_RESOURCE_CHARS
                && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .unwrap_or(requested);
    let reset_at = reset_of(headers);
    if !state.limits.contains_key(resource) && state.limits.len() >= MAX_RESOURCES {
        return;
    }
    let open_at = reset_at.map(open_instant);
    let limit = state
        .limits
        .entry(resource.to_owned())
        .or_insert_with(|| Limit {
            remaining,
            reset_at,
            open_at,
        });
    // Within one window the budget only shrinks; answers to concurrent requests
    // arrive in any order, so keep the lowest. A later reset time is a new window;
    // a late answer from an older window is ignored.
    if limit.reset_at == reset_at {
        limit.remaining = limit.remaining.min(remaining);
    } else if reset_at > limit.reset_at {
        *limit = Limit {
            remaining,
            reset_at,
            open_at,
        };
    }
}

/// The epoch second `x-ratelimit-reset` (or `ratelimit-reset`) names, if it is
/// one.
pub fn reset_of(headers: &HeaderMap) -> Option<i64> {
    limit_header(headers, "reset").and_then(|v| v.trim().parse::<i64>().ok())
}

/// The runtime instant at which a reset at epoch second `reset` has surely passed.
fn open_instant(reset: i64) -> Instant {
    let now_ms = epoch_millis();
    let until_ms = reset.saturating_mul(1000).saturating_sub(now_ms).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(until_ms).unwrap_or(0)) + RESET_MARGIN
}

fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn epoch_now() -> i64 {
    epoch_millis() / 1000
}

fn ceil_secs(duration: Duration) -> i64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::pace::WRITE_POINTS;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::sync::Arc;

    /// The errors of a source, as far as the governor reads them (named like
    /// the GitHub source's, whose behaviour these tests pin down).
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum GithubError {
        Status {
            url: String,
            status: u16,
            message: String,
        },
        SecondaryRateLimited {
            url: String,
            status: u16,
            message: String,
            retry_after: Option<u64>,
        },
        RateLimited {
            url: String,
            resource: String,
            reset_at: Option<Timestamp>,
        },
        NotFound {
            url: String,
        },
        GaveUp {
            attempts: u32,
            last: Box<GithubError>,
        },
        Cancelled,
    }

    impl std::fmt::Display for GithubError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                GithubError::GaveUp { attempts, last } => {
                    write!(f, "{last} (gave up after {attempts} attempts)")
                }
                other => write!(f, "{other:?}"),
            }
        }
    }

    impl GovernedError for GithubError {
        fn retry_reason(&self) -> Option<RetryReason> {
            match self {
                GithubError::Status { status, .. } if *status >= 500 => {
                    Some(RetryReason::ServerError)
                }
                GithubError::SecondaryRateLimited { .. } => Some(RetryReason::SecondaryRateLimit),
                GithubError::RateLimited { .. } => Some(RetryReason::RateLimit),
                _ => None,
            }
        }
        fn spent_until(&self) -> Option<i64> {
            match self {
                GithubError::RateLimited { reset_at, .. } => reset_at.map(|r| r.0),
                _ => None,
            }
        }
        fn retry_after(&self) -> Option<u64> {
            match self {
                GithubError::SecondaryRateLimited { retry_after, .. } => *retry_after,
                _ => None,
            }
        }
        fn cancelled() -> Self {
            GithubError::Cancelled
        }
        fn gave_up(attempts: u32, last: Self) -> Self {
            GithubError::GaveUp {
                attempts,
                last: Box::new(last),
            }
        }
        fn rate_limited(url: &str, resource: &str, reset_at: Option<Timestamp>) -> Self {
            GithubError::RateLimited {
                url: url.to_owned(),
                resource: resource.to_owned(),
                reset_at,
            }
        }
    }

    const URL: &str = "http://127.0.0.1:1/repos/acme/api/deployments";

    fn limit_headers(remaining: u64, reset: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", remaining.into());
        headers.insert("x-ratelimit-reset", reset.into());
        headers.insert("x-ratelimit-resource", "core".parse().unwrap());
        headers
    }

    fn ok<T>(value: T, headers: Option<HeaderMap>) -> Attempt<T, GithubError> {
        Attempt {
            headers,
            result: Ok(value),
        }
    }

    fn err<T>(error: GithubError) -> Attempt<T, GithubError> {
        Attempt {
            headers: None,
            result: Err(error),
        }
    }

    fn secondary(retry_after: Option<u64>) -> GithubError {
        GithubError::SecondaryRateLimited {
            url: URL.into(),
            status: 403,
            message: "You have exceeded a secondary rate limit".into(),
            retry_after,
        }
    }

    fn server_error() -> GithubError {
        GithubError::Status {
            url: URL.into(),
            status: 500,
            message: "Server Error".into(),
        }
    }

    fn retries(governor: &Governor, reason: RetryReason) -> u64 {
        governor
            .health()
            .retries
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    #[test]
    fn the_production_policy_is_the_named_constants() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(policy.min_secondary_wait, Duration::from_secs(60));
        assert_eq!(policy.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        // Equal jitter: half to all of 1 s · 2^retry, capped at 30 s.
        assert_eq!(policy.backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(policy.backoff(0, 1.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_secs(8));
        assert_eq!(policy.backoff(10, 1.0), DEFAULT_MAX_BACKOFF);
        assert_eq!(policy.backoff(u32::MAX, 0.0), DEFAULT_MAX_BACKOFF / 2);
        // Secondary: retry-after, or a minute; then a minute doubling; jitter only adds.
        assert_eq!(
            policy.secondary_wait(Some(5), 1, 0.0),
            Duration::from_secs(5)
        );
        assert_eq!(policy.secondary_wait(None, 1, 0.0), Duration::from_secs(60));
        assert_eq!(policy.secondary_wait(None, 1, 1.0), Duration::from_secs(66));
        assert_eq!(
            policy.secondary_wait(Some(5), 2, 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            policy.secondary_wait(Some(5), 3, 0.0),
            Duration::from_secs(120)
        );
        assert_eq!(
            policy.secondary_wait(Some(300), 2, 0.0),
            Duration::from_secs(300)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_secondary_limit_without_retry_after_holds_every_request_a_minute() {
        // Two in flight, so that the second request is held by the limit itself,
        // not by waiting for the first one's permit.
        let governor = Governor::new(RetryPolicy {
            max_concurrency: 2,
            ..RetryPolicy::default()
        });
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let limited = governor.send("core", URL, &cancel, || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if call == 0 {
                    err(secondary(None))
                } else {
                    ok(Instant::now(), None)
                }
            }
        });
        // Another request of the same token, sent a second later.
        let other = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            governor
                .send("core", URL, &cancel, || async { ok(Instant::now(), None) })
                .await
        };
        let (limited, other) = tokio::join!(limited, other);
        let retried_at = limited.unwrap() - start;
        let other_at = other.unwrap() - start;
        assert!(
            retried_at >= Duration::from_secs(60) && retried_at <= Duration::from_secs(67),
            "{retried_at:?}"
        );
        assert!(other_at >= Duration::from_secs(60), "{other_at:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(retries(&governor, RetryReason::SecondaryRateLimit), 1);
        // Both requests were held back: about 60 s + 59 s.
        let waited = governor.health().rate_limit_wait_seconds;
        assert!((118.0..=140.0).contains(&waited), "{waited}");
    }

    /// Sends `count` requests of `points` each for `resource` one after the
    /// other, each answered at once: when each was sent, from `start`.
    async fn burst(
        governor: &Governor,
        resource: &str,
        points: u64,
        count: usize,
        start: Instant,
    ) -> Vec<Duration> {
        let cancel = CancellationToken::new();
        let mut sent = Vec::with_capacity(count);
        for _ in 0..count {
            let at = governor
                .send_points(resource, points, URL, &cancel, || async {
                    ok(Instant::now(), None)
                })
                .await
                .unwrap();
            sent.push(at - start);
        }
        sent
    }

    /// `sent` is `expected`, give or take the timer's millisecond ticks.
    fn at(sent: Duration, expected: Duration) {
        assert!(
            sent >= expected && sent <= expected + Duration::from_millis(5),
            "{sent:?}, expected {expected:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_governor_sends_2000_graphql_points_in_a_minute_and_waits_for_the_2001st() {
        let pace = SecondaryPace::GITHUB;
        let governor = Governor::with_pace(RetryPolicy::default(), Some(pace.clone()));
        let start = Instant::now();
        let sent = burst(&governor, GRAPHQL_RESOURCE, READ_POINTS, 2_001, start).await;
        // 2,000 queries at once (the loopback's speed), then the 2,001st once
        // the first one's answer is a window (a minute and the margin) old.
        assert_eq!(sent[1_999], Duration::ZERO);
        at(sent[2_000], pace.window);
        // The REST points are a limit of their own: not held by GraphQL's.
        let rest = burst(&governor, CORE_RESOURCE, READ_POINTS, 1, start).await;
        at(rest[0], pace.window);
        // The second window: the 2,000 points of the first have left it at
        // once, as they were answered at once.
        let more = burst(&governor, GRAPHQL_RESOURCE, READ_POINTS, 1_999, start).await;
        at(more[1_998], pace.window);
        let next = burst(&governor, GRAPHQL_RESOURCE, READ_POINTS, 1, start).await;
        at(next[0], pace.window * 2);
        let waited = governor.health().rate_limit_wait_seconds;
        at(Duration::from_secs_f64(waited), pace.window * 2);
        assert_eq!(retries(&governor, RetryReason::SecondaryRateLimit), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_governor_sends_900_rest_points_in_a_minute_a_post_costing_five() {
        let pace = SecondaryPace::GITHUB;
        let governor = Governor::with_pace(RetryPolicy::default(), Some(pace.clone()));
        let start = Instant::now();
        let sent = burst(&governor, CORE_RESOURCE, READ_POINTS, 901, start).await;
        assert_eq!(sent[899], Duration::ZERO);
        at(sent[900], pace.window);
        // 897 points in the second window: a POST (5 points) does not fit in
        // the 3 left and waits for the third window.
        let gets = burst(&governor, CORE_RESOURCE, READ_POINTS, 896, start).await;
        at(gets[895], pace.window);
        let post = burst(&governor, CORE_RESOURCE, WRITE_POINTS, 1, start).await;
        at(post[0], pace.window * 2);
        // GraphQL was never held back.
        let graphql = burst(&governor, GRAPHQL_RESOURCE, READ_POINTS, 1, start).await;
        at(graphql[0], pace.window * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_governor_built_without_a_pace_does_not_pace() {
        let governor = Governor::new(RetryPolicy::default());
        let start = Instant::now();
        let sent = burst(&governor, GRAPHQL_RESOURCE, READ_POINTS, 2_001, start).await;
        assert_eq!(sent[2_000], Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_secondary_limits_back_off_exponentially() {
        let governor = Governor::new(RetryPolicy::default());
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let result = governor
            .send("core", URL, &cancel, || {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if call < 3 {
                        err(secondary(Some(2)))
                    } else {
                        ok((), None)
                    }
                }
            })
            .await;
        result.unwrap();
        // 2 s (retry-after), then at least 60 s, then at least 120 s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(182), "{elapsed:?}");
        assert!(elapsed <= Duration::from_secs(201), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_are_retried_a_bounded_number_of_times() {
        let governor = Governor::new(RetryPolicy::default());
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let error = governor
            .send("core", URL, &cancel, || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { err::<()>(server_error()) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), DEFAULT_MAX_RETRIES + 1);
        assert_eq!(
            error,
            GithubError::GaveUp {
                attempts: DEFAULT_MAX_RETRIES + 1,
                last: Box::new(server_error()),
            }
        );
        assert!(error.to_string().ends_with("(gave up after 6 attempts)"));
        // Backoffs of half to all of 1, 2, 4, 8, 16 s.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(15_500) && elapsed <= Duration::from_secs(32),
            "{elapsed:?}"
        );
        assert_eq!(retries(&governor, RetryReason::ServerError), 5);
        assert_eq!(governor.health().rate_limit_wait_seconds, 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_that_retrying_cannot_fix_are_returned_at_once() {
        let governor = Governor::new(RetryPolicy::default());
        let cancel = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let error = governor
            .send("core", URL, &cancel, || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { err::<()>(GithubError::NotFound { url: URL.into() }) }
            })
            .await
            .unwrap_err();
        assert_eq!(error, GithubError::NotFound { url: URL.into() });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_waits_for_its_reset() {
        let governor = Governor::new(RetryPolicy::default());
        let cancel = CancellationToken::new();
        let reset = epoch_now() + 30;
        governor
            .send("core", URL, &cancel, || async move {
                ok((), Some(limit_headers(0, reset)))
            })
            .await
            .unwrap();
        let start = Instant::now();
        let sent_at = governor
            .send("core", URL, &cancel, || async { ok(Instant::now(), None) })
            .await
            .unwrap();
        let waited = sent_at - start;
        assert!(
            waited > Duration::from_secs(30) && waited <= Duration::from_secs(31),
            "{waited:?}"
        );
        let health = governor.health();
        assert_eq!(health.rate_limits[0].remaining, 0);
        assert_eq!(health.rate_limits[0].reset_at, Some(Timestamp(reset)));
        assert!(health.rate_limit_wait_seconds > 30.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_resetting_beyond_the_bound_fails_without_a_request() {
        let governor = Governor::new(RetryPolicy::default());
        let cancel = CancellationToken::new();
        let reset = epoch_now() + 3600;
        governor
            .send("core", URL, &cancel, || async move {
                ok((), Some(limit_headers(0, reset)))
            })
            .await
            .unwrap();
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let error = governor
            .send("core", URL, &cancel, || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { ok((), None) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(
            error,
            GithubError::RateLimited {
                url: URL.into(),
                resource: "core".into(),
                reset_at: Some(Timestamp(reset)),
            }
        );
        // Another resource is not held back.
        governor
            .send("graphql", URL, &cancel, || async { ok((), None) })
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_a_wait() {
        let governor = Governor::new(RetryPolicy::default());
        let cancel = CancellationToken::new();
        let reset = epoch_now() + 600;
        governor
            .send("core", URL, &cancel, || async move {
                ok((), Some(limit_headers(0, reset)))
            })
            .await
            .unwrap();
        let stop = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            cancel.cancel();
        };
        let start = Instant::now();
        let (result, ()) = tokio::join!(
            governor.send("core", URL, &cancel, || async { ok((), None) }),
            stop
        );
        assert_eq!(result, Err(GithubError::Cancelled));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    /// A fake server with a budget of `budget` per 30 s window that counts
    /// requests sent while it is spent; each answer takes 100 ms.
    struct Budgeted {
        remaining: AtomicU64,
        reset: i64,
        refill_at: Instant,
        violations: AtomicU64,
        in_flight: AtomicU64,
        most_in_flight: AtomicU64,
    }

    impl Budgeted {
        async fn answer(&self) -> Attempt<(), GithubError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if Instant::now() >= self.refill_at {
                return ok((), None);
            }
            let left = self.remaining.load(Ordering::SeqCst);
            if left == 0 {
                self.violations.fetch_add(1, Ordering::SeqCst);
                return Attempt {
                    headers: Some(limit_headers(0, self.reset)),
                    result: Err(GithubError::RateLimited {
                        url: URL.into(),
                        resource: "core".into(),
                        reset_at: Some(Timestamp(self.reset)),
                    }),
                };
            }
            self.remaining.store(left - 1, Ordering::SeqCst);
            ok((), Some(limit_headers(left - 1, self.reset)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_never_overdraw_the_budget_and_stay_within_the_bound() {
        const BOUND: usize = 4;
        let governor = Arc::new(Governor::new(RetryPolicy {
            max_concurrency: BOUND,
            ..RetryPolicy::default()
        }));
        let cancel = CancellationToken::new();
        let server = Arc::new(Budgeted {
            remaining: AtomicU64::new(4),
            reset: epoch_now() + 30,
            // The server's window surely ended by then (the reset is whole seconds).
            refill_at: Instant::now() + Duration::from_secs(29),
            violations: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            most_in_flight: AtomicU64::new(0),
        });
        // One answer first, so that the budget is known.
        governor
            .send("core", URL, &cancel, || server.answer())
            .await
            .unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let governor = Arc::clone(&governor);
                let server = Arc::clone(&server);
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    governor
                        .send("core", URL, &cancel, || server.answer())
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(server.violations.load(Ordering::SeqCst), 0);
        assert_eq!(server.most_in_flight.load(Ordering::SeqCst), BOUND as u64);
        assert_eq!(retries(&governor, RetryReason::RateLimit), 0);
    }

    #[test]
    fn observed_limits_keep_the_lowest_of_a_window_and_follow_new_windows() {
        let mut state = State::default();
        observe(&mut state, &limit_headers(10, 100), "core");
        observe(&mut state, &limit_headers(12, 100), "core");
        assert_eq!(state.limits["core"].remaining, 10);
        observe(&mut state, &limit_headers(4999, 200), "core");
        assert_eq!(state.limits["core"].remaining, 4999);
        observe(&mut state, &limit_headers(3, 100), "core");
        assert_eq!(
            state.limits["core"].remaining, 4999,
            "a late answer of the old window"
        );
        let mut odd = limit_headers(1, 100);
        odd.insert(
            "x-ratelimit-resource",
            http::HeaderValue::from_static("a b"),
        );
        observe(&mut state, &odd, "graphql");
        assert_eq!(
            state.limits["graphql"].remaining, 1,
            "an odd resource name is not kept"
        );
        for i in 0..(MAX_RESOURCES + 5) {
            let mut headers = limit_headers(1, 100);
            headers.insert("x-ratelimit-resource", format!("r{i}").parse().unwrap());
            observe(&mut state, &headers, "core");
        }
        assert_eq!(state.limits.len(), MAX_RESOURCES);
    }

    fn limit(credential: &str, remaining: u64) -> RateLimit {
        RateLimit {
            credential: credential.to_owned(),
            resource: "core".to_owned(),
            remaining,
            reset_at: None,
        }
    }

    #[test]
    fn the_sum_of_governors_keeps_their_limits_and_adds_their_waits_and_retries() {
        let token = GovernorHealth {
            rate_limits: vec![limit("installation:acme", 10)],
            rate_limit_wait_seconds: 1.5,
            retries: vec![(RetryReason::ServerError, 2), (RetryReason::Network, 1)],
        };
        let other = GovernorHealth {
            rate_limits: vec![limit("installation:beta", 20)],
            rate_limit_wait_seconds: 2.0,
            retries: vec![(RetryReason::ServerError, 3)],
        };
        let sum = GovernorHealth::sum([token, other]);
        assert_eq!(
            sum.rate_limits,
            vec![
                limit("installation:acme", 10),
                limit("installation:beta", 20)
            ]
        );
        assert_eq!(sum.rate_limit_wait_seconds, 3.5);
        let retries = |reason| sum.retries.iter().find(|(r, _)| *r == reason).unwrap().1;
        assert_eq!(retries(RetryReason::ServerError), 5);
        assert_eq!(retries(RetryReason::Network), 1);
        assert_eq!(retries(RetryReason::RateLimit), 0);
        assert_eq!(sum.retries.len(), RetryReason::ALL.len());
        assert_eq!(
            GovernorHealth::sum([]).retries.len(),
            RetryReason::ALL.len()
        );
    }
}
