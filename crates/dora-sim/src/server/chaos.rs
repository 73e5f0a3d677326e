//! Chaos: faults the simulated GitHub injects on purpose, so that a client's
//! resilience (retries, back-off, pagination under concurrent writes) can be tested
//! against it. Configured by [`ChaosOptions`] (in `SimOptions::chaos`, or at run
//! time with [`SimHandle::set_chaos`]); everything is off by default, and then the
//! server behaves exactly as without this module.
//!
//! # Faults
//! Each request with the valid token draws, from a seeded ChaCha8 stream, at most
//! one of these (the rates are probabilities per request and must sum to at most 1):
//! - [`Fault::Reset`]: the TCP connection is reset before any response byte: the
//!   connection's socket gets `SO_LINGER` 0 and is closed, so the kernel sends an
//!   RST and the client's read fails with `ECONNRESET`. (Mechanism: the server
//!   accepts through `ChaosListener`, whose `ChaosIo` shares a kill switch with
//!   the request's extensions; a reset trips it, every later read or write of the
//!   connection fails, hyper drops the connection and the drop closes the socket
//!   with the zero linger.) Over HTTP/2 this resets the whole connection, all its
//!   streams with it. The other simulators (GitLab, Argo CD, Jenkins,
//!   PagerDuty) reset connections the same way: they are served by
//!   `serve_resettable` and their faults call `reset_connection`.
//! - [`Fault::ServerError`]: `500` with GitHub's JSON `Server Error` body.
//! - [`Fault::BadGateway`]: `502` with an HTML page, as GitHub's front-end proxies
//!   send (not JSON: a client must not assume every error body parses).
//! - [`Fault::SecondaryLimit`] / [`Fault::TooManyRequests`]: `403` / `429` with
//!   GitHub's secondary-rate-limit message, its `documentation_url` and a
//!   `retry-after` header ([`ChaosOptions::retry_after`], whole seconds).
//! - [`Fault::Slow`]: the response is delayed by [`ChaosOptions::slow_delay`]
//!   (bounded by [`MAX_SLOW_DELAY`]) before the endpoint runs.
//! - [`Fault::Timeout`] / [`Fault::GatewayTimeout`]: after
//!   [`ChaosOptions::timeout_delay`] (GitHub gives up after 10 s), `502` / `504`
//!   with GitHub's JSON "We couldn't respond to your request in time. …".
//! - [`Fault::Unavailable`]: `503` with a proxy's plain-text body (Envoy's
//!   "upstream connect error or disconnect/reset before headers …").
//! - GraphQL only (`POST /graphql`; a REST request that draws one is served
//!   untouched): [`Fault::QueryTimeout`], after the timeout delay, `200` with
//!   `data: null` and "Something went wrong while executing your query. This may
//!   be the result of a timeout, or it could be a GitHub bug. Please include
//!   `ID` when reporting this issue."; [`Fault::TransientError`], the same
//!   without the timeout sentence, as GitHub answered before; and
//!   [`Fault::RateLimited`], `200` with a `RATE_LIMITED` error (every other
//!   answer spelled `RATE_LIMIT`), `x-ratelimit-remaining: 0` and a reset
//!   [`ChaosOptions::retry_after`] ahead: the token's GraphQL budget stays spent
//!   until then, and every GraphQL request it sends before is answered the same
//!   and counted in [`ChaosCounts::rate_limited_violations`].
//!   On `POST /graphql` the `502` page of [`Fault::BadGateway`] is nginx's, as
//!   GitHub's GraphQL front end sends it; fault answers there carry the GraphQL
//!   budget's `x-ratelimit-*` and `x-ratelimit-resource: graphql`.
//! - [`Fault::Truncated`]: the endpoint's response keeps its status and headers
//!   and a `Content-Length` of the whole body, but only the first half of the body
//!   is sent; then the body stream fails and the connection is closed, so the
//!   client reads an incomplete body (hyper: "end of file before message length
//!   reached"), and the part it got is never valid JSON. Responses without a body
//!   (a `304`) are sent intact and do not count as a fault.
//!
//! Independently, a request for page 2 or later of a list whose default order puts
//! new items first (`deployments`, `actions/runs`, `actions/workflows/{id}/runs`,
//! `issues`, `commits`) may first get a **new item inserted at the head** of that
//! list ([`ChaosOptions::new_items_rate`]): a deployment or a successful
//! deploy-workflow run of `main`'s head, a plain issue, or a commit on `main`, all
//! at the organisation's `now`, through the `Org` mutation methods. Every item
//! then sits one position later, so a client walking pages by offset sees the last
//! item of the previous page again, as on GitHub under concurrent writes. This
//! changes the served data: compare a client's result with [`SimHandle::with_org`]
//! after the run, not with the data before it. At most [`MAX_NEW_ITEMS`] are
//! inserted per server.
//!
//! # Secondary limits last until `retry-after`
//! After a `403`/`429` secondary-limit fault, the token stays limited for the
//! `retry-after` seconds it was given: every request it sends before then is
//! answered with the same status, message and the seconds still left, and is
//! counted as a secondary-limit violation ([`ChaosCounts::secondary_violations`],
//! [`SimHandle::secondary_limit_violations`]), as GitHub documents for clients that
//! keep sending. A limit that has started runs out even if chaos is switched off
//! meanwhile (it is the token's state, not a fault still to draw); it is never
//! extended. A `retry_after` of zero starts no limit.
//!
//! # Every request eventually succeeds
//! The same request (method, path and query) is faulted at most
//! [`ChaosOptions::max_consecutive_faults`] times in a row (default
//! [`DEFAULT_MAX_CONSECUTIVE_FAULTS`]); the next attempt is served untouched. So a
//! client that retries each request that many times plus one, and waits out
//! `retry-after`, always gets every response, identical to a fault-free run
//! (unless new items are inserted, which change the data). Answers during a
//! secondary limit are the client's doing, not faults: they neither count towards
//! nor are spared by the cap. Keys are kept for at most [`MAX_TRACKED_KEYS`]
//! requests awaiting a retry; beyond that they are forgotten all at once.
//!
//! # The rate-limit budget
//! Faults answered here (reset, `500`, `502`, `503`, `504`, `403`, `429`, the
//! GraphQL answers at `200`, and answers during a secondary limit or a spent
//! GraphQL budget) never reach the API and **cost no budget**: the simulator
//! treats them as failures in front of the API, and a client's budget arithmetic
//! from `x-ratelimit-*` stays exact. (GitHub does not document whether its own
//! `5xx` count; a client must not rely on either.) Their JSON answers carry the
//! current, uncharged `x-ratelimit-*` headers; the `502` page carries none. Slow and
//! truncated responses are real API responses and cost one unit each, like any
//! other.
//!
//! The primary rate limit comes first: a request sent while the budget is spent is
//! never faulted, so it is answered with the primary-limit `403` and counted as a
//! rate-limit violation exactly as without chaos. Requests without the valid token
//! are never faulted either (they get their `401`).
//!
//! # Counting
//! Faults are counted per kind in [`ChaosCounts`] ([`SimHandle::chaos_counts`]).
//! Requests answered here (not by the API) are **not** in `request_counts` or the
//! request records, which count what the API answered; slow and truncated ones are
//! (with their status).
//!
//! # Determinism
//! Every request that may be faulted takes exactly two draws (fault, new item), in
//! arrival order, from a ChaCha8 stream seeded with [`ChaosOptions::seed`]; so a
//! client sending its requests one at a time sees the same faults on every run.
//! Concurrent requests draw in whatever order they arrive. Setting new options
//! restarts the stream from their seed.
//!
//! # What it does not do
//! No faults on `401`s or primary-limit answers; no bans for ignoring
//! `retry-after`; no slow bodies (only a slow start); no HTTP/2 stream-level
//! resets; no faults chosen per route (every route may get every fault, but the
//! GraphQL-only ones). Every `POST /graphql` has the same key for the
//! consecutive-fault cap (path and query string alike), so the cap counts faults
//! in a row across GraphQL requests.

use super::route::{self, Endpoint, Query, Route};
use super::{epoch_now, token_use, Shared, SimHandle, TokenUse};
use crate::domain::Timestamp;
use crate::model::{NewDeployment, NewIssue, NewOutcome, NewRun, RunConclusion, RunEvent};
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Default cap on consecutive faults of one request: small enough that a client
/// with a handful of retries always gets through, large enough that a client
/// retrying only once or twice is caught out.
pub const DEFAULT_MAX_CONSECUTIVE_FAULTS: u32 = 3;

/// Default `retry-after` of a secondary-limit fault: GitHub's documented minimum
/// wait ("wait for at least one minute") when it gives none. Tests set ~1 s.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Longest `retry-after` accepted: GitHub's primary window, the longest a
/// secondary limit plausibly lasts.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Default delay of a slow response: long enough to trip a tight client timeout.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(2);

/// Default delay of a timeout fault: GitHub stops a request that takes longer
/// than 10 seconds. Tests set a few milliseconds.
pub const DEFAULT_TIMEOUT_DELAY: Duration = Duration::from_secs(10);

/// Longest delay accepted for slow responses, so a misconfiguration cannot hang a
/// test or a graceful shutdown (which waits for requests in flight) for long.
pub const MAX_SLOW_DELAY: Duration = Duration::from_secs(60);

/// Most new items inserted between pages over a server's life, so that a long
/// `demo` run with the fault on cannot grow the organisation without bound.
pub const MAX_NEW_ITEMS: u64 = 10_000;

/// Most requests whose consecutive faults are remembered; beyond it the memory is
/// cleared (a client mid-retry may then see up to the cap again). Bounds memory
/// under a client that never retries.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// How long a truncated response waits after its first half before failing, so
/// hyper flushes the head and that half to the socket first (a body error makes
/// hyper drop what it has not written yet). Not a correctness bound: if the flush
/// takes longer, the cut falls earlier, still inside the body.
const TRUNCATION_GRACE: Duration = Duration::from_millis(20);

/// Largest body a truncation buffers; the simulator's pages are far smaller, a
/// larger (or streamed) body is sent intact.
const MAX_TRUNCATED_BODY: u64 = 64 * 1024 * 1024;

/// GitHub's documentation of secondary rate limits, as its `403`/`429` cite it.
const SECONDARY_DOCS: &str = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

/// A fault injected into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The TCP connection is reset before any response byte.
    Reset,
    /// `500` with a JSON body.
    ServerError,
    /// `502` with an HTML body.
    BadGateway,
    /// `403` secondary rate limit with `retry-after`.
    SecondaryLimit,
    /// `429` secondary rate limit with `retry-after`.
    TooManyRequests,
    /// The response starts after a delay.
    Slow,
    /// Half the body, then the connection ends.
    Truncated,
    /// After [`ChaosOptions::timeout_delay`], `502` with GitHub's JSON "We
    /// couldn't respond to your request in time".
    Timeout,
    /// After [`ChaosOptions::timeout_delay`], `504` with the same message.
    GatewayTimeout,
    /// `503` with a proxy's plain-text body.
    Unavailable,
    /// GraphQL only: after [`ChaosOptions::timeout_delay`], `200` with
    /// `data: null` and GitHub's "Something went wrong while executing your
    /// query. This may be the result of a timeout, …".
    QueryTimeout,
    /// GraphQL only: `200` with `data: null` and the untyped "Something went
    /// wrong while executing your query. Please include `…` when reporting this
    /// issue." GitHub answered before it mentioned timeouts.
    TransientError,
    /// GraphQL only: `200` with a `RATE_LIMITED` error (every other one spelled
    /// `RATE_LIMIT`), `x-ratelimit-remaining: 0` and a reset
    /// [`ChaosOptions::retry_after`] ahead; the token's GraphQL budget stays spent
    /// until then.
    RateLimited,
}

impl Fault {
    /// Every fault, in the order the per-request draw tests them.
    pub const ALL: [Fault; 13] = [
        Fault::Reset,
        Fault::ServerError,
        Fault::BadGateway,
        Fault::SecondaryLimit,
        Fault::TooManyRequests,
        Fault::Slow,
        Fault::Truncated,
        Fault::Timeout,
        Fault::GatewayTimeout,
        Fault::Unavailable,
        Fault::QueryTimeout,
        Fault::TransientError,
        Fault::RateLimited,
    ];

    /// The name used in errors and by tests.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::ServerError => "server_error",
            Fault::BadGateway => "bad_gateway",
            Fault::SecondaryLimit => "secondary_limit",
            Fault::TooManyRequests => "too_many_requests",
            Fault::Slow => "slow",
            Fault::Truncated => "truncated",
            Fault::Timeout => "timeout",
            Fault::GatewayTimeout => "gateway_timeout",
            Fault::Unavailable => "unavailable",
            Fault::QueryTimeout => "query_timeout",
            Fault::TransientError => "transient_error",
            Fault::RateLimited => "rate_limited",
        }
    }

    /// Faults only a GraphQL request can get (their answers are GraphQL
    /// documents); a REST request that draws one is served untouched.
    pub(crate) const fn graphql_only(self) -> bool {
        matches!(
            self,
            Fault::QueryTimeout | Fault::TransientError | Fault::RateLimited
        )
    }

    /// Faults answered only after [`ChaosOptions::timeout_delay`].
    const fn is_timeout(self) -> bool {
        matches!(
            self,
            Fault::Timeout | Fault::GatewayTimeout | Fault::QueryTimeout
        )
    }

    const fn is_secondary_limit(self) -> bool {
        matches!(self, Fault::SecondaryLimit | Fault::TooManyRequests)
    }
}

/// The chaos knobs. All rates are probabilities per request in `0.0..=1.0`; the
/// per-request ones (all but `new_items_rate`) must sum to at most 1.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosOptions {
    /// Seed of the fault draws.
    pub seed: u64,
    /// [`Fault::Reset`].
    pub reset_rate: f64,
    /// [`Fault::ServerError`] (`500`).
    pub server_error_rate: f64,
    /// [`Fault::BadGateway`] (`502`).
    pub bad_gateway_rate: f64,
    /// [`Fault::SecondaryLimit`] (`403`).
    pub secondary_limit_rate: f64,
    /// [`Fault::TooManyRequests`] (`429`).
    pub too_many_requests_rate: f64,
    /// [`Fault::Slow`].
    pub slow_rate: f64,
    /// [`Fault::Truncated`].
    pub truncated_rate: f64,
    /// [`Fault::Timeout`] (`502`).
    pub timeout_rate: f64,
    /// [`Fault::GatewayTimeout`] (`504`).
    pub gateway_timeout_rate: f64,
    /// [`Fault::Unavailable`] (`503`).
    pub unavailable_rate: f64,
    /// [`Fault::QueryTimeout`] (GraphQL, `200`).
    pub query_timeout_rate: f64,
    /// [`Fault::TransientError`] (GraphQL, `200`).
    pub transient_error_rate: f64,
    /// [`Fault::RateLimited`] (GraphQL, `200`).
    pub rate_limited_rate: f64,
    /// A new item at the head of a list before a page 2+ of it is served.
    pub new_items_rate: f64,
    /// Delay of a slow response (at most [`MAX_SLOW_DELAY`]).
    pub slow_delay: Duration,
    /// How long a timeout fault holds the request before answering (at most
    /// [`MAX_SLOW_DELAY`]); GitHub gives up on a request after 10 seconds.
    pub timeout_delay: Duration,
    /// `retry-after` of a secondary-limit fault, rounded up to whole seconds (at
    /// most [`MAX_RETRY_AFTER`]); the token stays limited that long. Also how far
    /// ahead a [`Fault::RateLimited`] puts the GraphQL budget's reset.
    pub retry_after: Duration,
    /// Most faults in a row on one request; the next attempt is served untouched.
    pub max_consecutive_faults: u32,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        ChaosOptions {
            seed: 0,
            reset_rate: 0.0,
            server_error_rate: 0.0,
            bad_gateway_rate: 0.0,
            secondary_limit_rate: 0.0,
            too_many_requests_rate: 0.0,
            slow_rate: 0.0,
            truncated_rate: 0.0,
            timeout_rate: 0.0,
            gateway_timeout_rate: 0.0,
            unavailable_rate: 0.0,
            query_timeout_rate: 0.0,
            transient_error_rate: 0.0,
            rate_limited_rate: 0.0,
            new_items_rate: 0.0,
            slow_delay: DEFAULT_SLOW_DELAY,
            timeout_delay: DEFAULT_TIMEOUT_DELAY,
            retry_after: DEFAULT_RETRY_AFTER,
            max_consecutive_faults: DEFAULT_MAX_CONSECUTIVE_FAULTS,
        }
    }
}

impl ChaosOptions {
    /// The rate of `fault`.
    pub fn rate(&self, fault: Fault) -> f64 {
        match fault {
            Fault::Reset => self.reset_rate,
            Fault::ServerError => self.server_error_rate,
            Fault::BadGateway => self.bad_gateway_rate,
            Fault::SecondaryLimit => self.secondary_limit_rate,
            Fault::TooManyRequests => self.too_many_requests_rate,
            Fault::Slow => self.slow_rate,
            Fault::Truncated => self.truncated_rate,
            Fault::Timeout => self.timeout_rate,
            Fault::GatewayTimeout => self.gateway_timeout_rate,
            Fault::Unavailable => self.unavailable_rate,
            Fault::QueryTimeout => self.query_timeout_rate,
            Fault::TransientError => self.transient_error_rate,
            Fault::RateLimited => self.rate_limited_rate,
        }
    }

    /// Sets the rate of `fault` (builder style).
    pub fn with_rate(mut self, fault: Fault, rate: f64) -> Self {
        let slot = match fault {
            Fault::Reset => &mut self.reset_rate,
            Fault::ServerError => &mut self.server_error_rate,
            Fault::BadGateway => &mut self.bad_gateway_rate,
            Fault::SecondaryLimit => &mut self.secondary_limit_rate,
            Fault::TooManyRequests => &mut self.too_many_requests_rate,
            Fault::Slow => &mut self.slow_rate,
            Fault::Truncated => &mut self.truncated_rate,
            Fault::Timeout => &mut self.timeout_rate,
            Fault::GatewayTimeout => &mut self.gateway_timeout_rate,
            Fault::Unavailable => &mut self.unavailable_rate,
            Fault::QueryTimeout => &mut self.query_timeout_rate,
            Fault::TransientError => &mut self.transient_error_rate,
            Fault::RateLimited => &mut self.rate_limited_rate,
        };
        *slot = rate;
        self
    }

    /// Whether no fault can ever be drawn.
    pub fn is_off(&self) -> bool {
        self.new_items_rate == 0.0 && Fault::ALL.iter().all(|f| self.rate(*f) == 0.0)
    }

    /// Checks the ranges: each rate in `0..=1`, the per-request rates summing to at
    /// most 1, the durations within their bounds.
    pub fn validate(&self) -> Result<(), ChaosError> {
        let rates = Fault::ALL
            .iter()
            .map(|f| (f.name(), self.rate(*f)))
            .chain([("new_items", self.new_items_rate)]);
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ChaosError::Rate { name, rate });
            }
        }
        let sum: f64 = Fault::ALL.iter().map(|f| self.rate(*f)).sum();
        // Tolerates the rounding of rates written as decimals (0.1 + 0.2 + ...).
        if sum > 1.0 + 1e-9 {
            return Err(ChaosError::Sum(sum));
        }
        if self.slow_delay > MAX_SLOW_DELAY {
            return Err(ChaosError::SlowDelay(self.slow_delay));
        }
        if self.timeout_delay > MAX_SLOW_DELAY {
            return Err(ChaosError::SlowDelay(self.timeout_delay));
        }
        if self.retry_after > MAX_RETRY_AFTER {
            return Err(ChaosError::RetryAfter(self.retry_after));
        }
        Ok(())
    }

    /// `retry-after` in whole seconds, rounded up.
    fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after)
    }

    /// The fault a uniform draw in `0..1` picks: the rates laid end to end.
    fn pick(&self, draw: f64) -> Option<Fault> {
        let mut edge = 0.0;
        for fault in Fault::ALL {
            edge += self.rate(fault);
            if draw < edge {
                return Some(fault);
            }
        }
        None
    }
}

/// Why chaos options were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChaosError {
    /// A rate outside `0..=1` (or NaN).
    #[error("chaos rate {name} is {rate}, not within 0..=1")]
    Rate {
        /// The fault's name (e.g. `reset` for `reset_rate`), or `new_items`.
        name: &'static str,
        /// The value given.
        rate: f64,
    },
    /// The per-request rates sum to more than 1 (the sum given).
    #[error("chaos per-request rates sum to {0}, more than 1")]
    Sum(f64),
    /// `slow_delay` or `timeout_delay` longer than [`MAX_SLOW_DELAY`].
    #[error("chaos slow_delay or timeout_delay {0:?} is longer than {MAX_SLOW_DELAY:?}")]
    SlowDelay(Duration),
    /// `retry_after` longer than [`MAX_RETRY_AFTER`].
    #[error("chaos retry_after {0:?} is longer than {MAX_RETRY_AFTER:?}")]
    RetryAfter(Duration),
}

/// Faults injected so far, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChaosCounts {
    /// [`Fault::Reset`] injections.
    pub reset: u64,
    /// [`Fault::ServerError`] injections.
    pub server_error: u64,
    /// [`Fault::BadGateway`] injections.
    pub bad_gateway: u64,
    /// [`Fault::SecondaryLimit`] injections.
    pub secondary_limit: u64,
    /// [`Fault::TooManyRequests`] injections.
    pub too_many_requests: u64,
    /// [`Fault::Slow`] injections.
    pub slow: u64,
    /// [`Fault::Truncated`] injections.
    pub truncated: u64,
    /// [`Fault::Timeout`] injections.
    pub timeout: u64,
    /// [`Fault::GatewayTimeout`] injections.
    pub gateway_timeout: u64,
    /// [`Fault::Unavailable`] injections.
    pub unavailable: u64,
    /// [`Fault::QueryTimeout`] injections.
    pub query_timeout: u64,
    /// [`Fault::TransientError`] injections.
    pub transient_error: u64,
    /// [`Fault::RateLimited`] injections.
    pub rate_limited: u64,
    /// Items inserted at the head of a list before a later page of it was served.
    pub new_items: u64,
    /// Requests a token sent while still within a secondary limit's `retry-after`
    /// (answered with the limit's status again).
    pub secondary_violations: u64,
    /// GraphQL requests a token sent while its budget was still spent by a
    /// [`Fault::RateLimited`] (answered `RATE_LIMITED` again).
    pub rate_limited_violations: u64,
    /// Requests that drew a fault but were served untouched because of the
    /// consecutive-fault cap.
    pub capped: u64,
}

impl ChaosCounts {
    /// Injections of `fault`.
    pub fn get(&self, fault: Fault) -> u64 {
        match fault {
            Fault::Reset => self.reset,
            Fault::ServerError => self.server_error,
            Fault::BadGateway => self.bad_gateway,
            Fault::SecondaryLimit => self.secondary_limit,
            Fault::TooManyRequests => self.too_many_requests,
            Fault::Slow => self.slow,
            Fault::Truncated => self.truncated,
            Fault::Timeout => self.timeout,
            Fault::GatewayTimeout => self.gateway_timeout,
            Fault::Unavailable => self.unavailable,
            Fault::QueryTimeout => self.query_timeout,
            Fault::TransientError => self.transient_error,
            Fault::RateLimited => self.rate_limited,
        }
    }

    /// Per-request faults injected, all kinds (not new items, violations or caps).
    pub fn faults(&self) -> u64 {
        Fault::ALL.iter().map(|f| self.get(*f)).sum()
    }

    fn add(&mut self, fault: Fault) {
        let slot = match fault {
            Fault::Reset => &mut self.reset,
            Fault::ServerError => &mut self.server_error,
            Fault::BadGateway => &mut self.bad_gateway,
            Fault::SecondaryLimit => &mut self.secondary_limit,
            Fault::TooManyRequests => &mut self.too_many_requests,
            Fault::Slow => &mut self.slow,
            Fault::Truncated => &mut self.truncated,
            Fault::Timeout => &mut self.timeout,
            Fault::GatewayTimeout => &mut self.gateway_timeout,
            Fault::Unavailable => &mut self.unavailable,
            Fault::QueryTimeout => &mut self.query_timeout,
            Fault::TransientError => &mut self.transient_error,
            Fault::RateLimited => &mut self.rate_limited,
        };
        *slot += 1;
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A token within a secondary limit.
#[derive(Debug, Clone, Copy)]
struct Penalty {
    until: Instant,
    status: StatusCode,
}

/// What the chaos layer needs to know of a request that may be faulted; `P`
/// names the list a new item would be inserted into (a GitHub or GitLab route).
#[derive(Debug, Clone)]
pub(crate) struct ChaosRequest<P = Route> {
    /// Identifies the request (method, path, query) for the consecutive cap.
    pub(crate) key: u64,
    /// Identifies the token, for secondary limits.
    pub(crate) token: u64,
    /// A page 2+ of a list that new items shift.
    pub(crate) shifting_page: Option<P>,
    /// A `POST /graphql`.
    pub(crate) graphql: bool,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Serve it untouched.
    Pass,
    /// The token is within a secondary limit: answer `status` again.
    Limited {
        status: StatusCode,
        retry_after: u64,
    },
    /// The token's GraphQL budget is spent by a [`Fault::RateLimited`] for
    /// `left` more: answer `RATE_LIMITED` again.
    GraphqlSpent { left: Duration },
    /// Inject these (then report what was applied with [`ChaosState::finish`]).
    Inject {
        fault: Option<Fault>,
        new_item: bool,
        retry_after: u64,
        slow_delay: Duration,
        timeout_delay: Duration,
    },
}

/// The chaos layer's state: options, draws, caps, limits and counters. Pure: the
/// time comes in as an argument.
pub(crate) struct ChaosState {
    pub(crate) options: ChaosOptions,
    rng: ChaCha8Rng,
    /// Request key → faults in a row.
    consecutive: HashMap<u64, u32>,
    /// Token key → its secondary limit.
    limits: HashMap<u64, Penalty>,
    /// Token key → until when a [`Fault::RateLimited`] spent its GraphQL budget.
    graphql_spent: HashMap<u64, Instant>,
    pub(crate) counts: ChaosCounts,
    /// Responses answered here, for their `x-github-request-id`.
    answered: u64,
}

impl ChaosState {
    /// Options must have been validated.
    pub(crate) fn new(options: ChaosOptions) -> ChaosState {
        ChaosState {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            options,
            consecutive: HashMap::new(),
            limits: HashMap::new(),
            graphql_spent: HashMap::new(),
            counts: ChaosCounts::default(),
            answered: 0,
        }
    }

    /// New options: the draws restart from their seed and the consecutive counts
    /// are forgotten; secondary limits in force and the counters stay.
    pub(crate) fn set_options(&mut self, options: ChaosOptions) {
        self.rng = ChaCha8Rng::seed_from_u64(options.seed);
        self.options = options;
        self.consecutive.clear();
    }

    /// Nothing to do for any request: no fault can be drawn, no limit in force.
    pub(crate) fn is_quiet(&self) -> bool {
        self.options.is_off() && self.limits.is_empty() && self.graphql_spent.is_empty()
    }

    /// Decides a request's fate at `now`; an [`Plan::Inject`] must be followed by
    /// [`ChaosState::finish`].
    pub(crate) fn begin<P>(&mut self, request: &ChaosRequest<P>, now: Instant) -> Plan {
        self.limits.retain(|_, limit| limit.until > now);
        if let Some(limit) = self.limits.get(&request.token) {
            self.counts.secondary_violations += 1;
            return Plan::Limited {
                status: limit.status,
                retry_after: ceil_secs(limit.until - now).max(1),
            };
        }
        self.graphql_spent.retain(|_, until| *until > now);
        if let Some(until) = self
            .graphql_spent
            .get(&request.token)
            .filter(|_| request.graphql)
        {
            self.counts.rate_limited_violations += 1;
            return Plan::GraphqlSpent { left: *until - now };
        }
        if self.options.is_off() {
            return Plan::Pass;
        }
        let fault_draw: f64 = self.rng.random();
        let item_draw: f64 = self.rng.random();
        let fault = self.options.pick(fault_draw);
        let new_item = request.shifting_page.is_some()
            && item_draw < self.options.new_items_rate
            && self.counts.new_items < MAX_NEW_ITEMS;
        if fault.is_none() && !new_item {
            self.consecutive.remove(&request.key);
            return Plan::Pass;
        }
        let in_a_row = self.consecutive.get(&request.key).copied().unwrap_or(0);
        if in_a_row >= self.options.max_consecutive_faults {
            self.consecutive.remove(&request.key);
            self.counts.capped += 1;
            return Plan::Pass;
        }
        Plan::Inject {
            fault,
            new_item,
            retry_after: self.options.retry_after_secs(),
            slow_delay: self.options.slow_delay,
            timeout_delay: self.options.timeout_delay,
        }
    }

    /// Records what was injected into a request planned by [`ChaosState::begin`]
    /// (a truncation of a body-less response, or a reset without a connection to
    /// reset, is no fault); a secondary limit starts at `now`.
    pub(crate) fn finish<P>(
        &mut self,
        request: &ChaosRequest<P>,
        fault: Option<Fault>,
        new_item: bool,
        now: Instant,
    ) {
        if fault.is_none() && !new_item {
            self.consecutive.remove(&request.key);
            return;
        }
        if let Some(fault) = fault {
            self.counts.add(fault);
            let seconds = self.options.retry_after_secs();
            if fault == Fault::RateLimited {
                self.graphql_spent
                    .insert(request.token, now + Duration::from_secs(seconds.max(1)));
            }
            if fault.is_secondary_limit() && seconds > 0 {
                let status = if fault == Fault::SecondaryLimit {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::TOO_MANY_REQUESTS
                };
                self.limits.insert(
                    request.token,
                    Penalty {
                        until: now + Duration::from_secs(seconds),
                        status,
                    },
                );
            }
        }
        if new_item {
            self.counts.new_items += 1;
        }
        if self.consecutive.len() >= MAX_TRACKED_KEYS
            && !self.consecutive.contains_key(&request.key)
        {
            self.consecutive.clear();
        }
        *self.consecutive.entry(request.key).or_default() += 1;
    }

    pub(crate) fn next_request_id(&mut self) -> u64 {
        self.answered += 1;
        self.answered
    }
}

impl Shared {
    fn chaos(&self) -> MutexGuard<'_, ChaosState> {
        self.chaos
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The request as the chaos layer sees it; `None` when it must not be
    /// faulted: no valid token, or the primary budget spent (the API answers and
    /// counts the violation).
    fn chaos_request(&self, request: &Request) -> Option<ChaosRequest> {
        if token_use(request.headers(), &self.token()) != TokenUse::Valid {
            return None;
        }
        let uri = request.uri();
        let route = if request.method() == Method::GET {
            route::parse_path(uri.path())
        } else {
            None
        };
        let free = matches!(
            route,
            Some(Route {
                endpoint: Endpoint::RateLimit,
                ..
            })
        );
        if !free {
            let now = epoch_now();
            let mut state = self.state();
            state.budget.refresh(now);
            if state.budget.remaining() == 0 {
                return None;
            }
        }
        let shifting_page = route.filter(|r| {
            shifted_by_new_items(&r.endpoint) && Query::parse(uri.query()).paging().page >= 2
        });
        Some(ChaosRequest {
            key: hash_of((request.method().as_str(), uri.path(), uri.query())),
            token: hash_of(self.token()),
            shifting_page,
            graphql: request.method() == Method::POST && uri.path() == "/graphql",
        })
    }

    /// Inserts a new item at the head of the list `route` reads; whether it did.
    fn insert_new_item(&self, route: &Route) -> bool {
        let Some(key) = &route.repo else {
            return false;
        };
        let mut org = self
            .org_for(Some(route))
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let Some(repo) = super::api::find_repo(&org, key).map(|r| r.id) else {
            return false;
        };
        let Some(index) = org.repos.iter().position(|r| r.id == repo) else {
            return false;
        };
        let now: Timestamp = org.now;
        let inserted = match &route.endpoint {
            Endpoint::Deployments => org
                .add_deployment(
                    index,
                    NewDeployment {
                        environment: crate::spec::PRODUCTION.to_owned(),
                        sha: None,
                        created_at: now,
                        outcome: NewOutcome::Success { after: 0 },
                    },
                )
                .map(drop),
            Endpoint::Runs | Endpoint::WorkflowRuns { .. } => org
                .add_workflow_run(
                    index,
                    NewRun {
                        branch: None,
                        sha: None,
                        event: RunEvent::Push,
                        created_at: now,
                        conclusion: Some(RunConclusion::Success),
                        duration: 0,
                    },
                )
                .map(drop),
            Endpoint::Issues => org
                .open_issue(
                    index,
                    NewIssue {
                        title: "Opened while a client was paging".to_owned(),
                        body: None,
                        labels: Vec::new(),
                        opened_at: now,
                    },
                )
                .map(drop),
            Endpoint::Commits => org
                .push_commit(index, "Pushed while a client was paging", now, now)
                .map(drop),
            _ => return false,
        };
        inserted.is_ok()
    }

    /// The primary budget (or the GraphQL one) for headers, without charging or
    /// starting a window.
    fn budget_headers(&self, graphql: bool) -> (u64, u64, i64) {
        let now = epoch_now();
        let mut state = self.state();
        let budget = if graphql {
            &mut state.graphql.budget
        } else {
            &mut state.budget
        };
        budget.refresh(now);
        let reset = budget.reset.unwrap_or(now + budget.window);
        (budget.limit, budget.used, reset)
    }

    /// A response the chaos layer answers itself: `status` with GitHub's JSON
    /// error (a secondary limit's with `retry_after`), or the bodies proxies send
    /// (`502` HTML, `503` text), or a GraphQL document at `200` (`graphql`).
    fn fault_response(&self, answer: FaultAnswer, graphql: bool) -> Response {
        let request_id = self.chaos().next_request_id();
        let request_id = format!(
            "C4A0:{:04X}:{:X}:{:X}:{:X}",
            request_id & 0xFFFF,
            0x20B_0000 + request_id,
            0x35F_0000 + request_id * 3,
            0x72D6_0000 + request_id
        );
        let status = answer.status();
        let mut builder = Response::builder()
            .status(status)
            .header(header::SERVER, "GitHub.com")
            .header("x-github-request-id", request_id.as_str());
        let (content_type, body): (&str, Body) = match answer {
            FaultAnswer::BadGateway if graphql => (HTML, Body::from(NGINX_BAD_GATEWAY_PAGE)),
            FaultAnswer::BadGateway => (HTML, Body::from(BAD_GATEWAY_PAGE)),
            FaultAnswer::Unavailable => (TEXT, Body::from(UNAVAILABLE_TEXT)),
            _ => {
                let (limit, used, mut reset) = self.budget_headers(graphql);
                let mut remaining = limit.saturating_sub(used);
                if let FaultAnswer::GraphqlSpent { left } = answer {
                    remaining = 0;
                    reset = reset_after(left);
                }
                builder = builder
                    .header("x-github-media-type", "github.v3; format=json")
                    .header("x-ratelimit-limit", limit)
                    .header("x-ratelimit-remaining", remaining)
                    .header("x-ratelimit-reset", reset)
                    .header("x-ratelimit-used", limit - remaining)
                    .header(
                        "x-ratelimit-resource",
                        if graphql { "graphql" } else { "core" },
                    );
                if let FaultAnswer::SecondaryLimit { retry_after, .. } = answer {
                    builder = builder.header(header::RETRY_AFTER, retry_after);
                }
                (JSON, Body::from(answer.json_body(&request_id).to_string()))
            }
        };
        builder = builder.header(header::CONTENT_TYPE, content_type);
        builder.body(body).unwrap_or_else(|_| {
            let mut fallback = Response::new(Body::empty());
            *fallback.status_mut() = status;
            fallback
        })
    }
}

/// What a fault response says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FaultAnswer {
    /// `500` with GitHub's JSON `Server Error`.
    ServerError,
    /// `502` with an HTML page.
    BadGateway,
    /// `503` with a proxy's text.
    Unavailable,
    /// `502` / `504` with GitHub's "We couldn't respond to your request in time".
    Timeout { status: StatusCode },
    /// `403` / `429` with GitHub's secondary-limit message and `retry-after`.
    SecondaryLimit {
        status: StatusCode,
        retry_after: u64,
    },
    /// GraphQL `200`: GitHub's "Something went wrong … timeout" without data.
    QueryTimeout,
    /// GraphQL `200`: GitHub's older untyped "Something went wrong" without data.
    TransientError,
    /// GraphQL `200`: the budget is spent for `left` more; `odd` answers spell
    /// the type `RATE_LIMIT` (as some of GitHub's do), the others `RATE_LIMITED`.
    GraphqlSpent { left: Duration },
}

const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain";

impl FaultAnswer {
    fn status(self) -> StatusCode {
        match self {
            FaultAnswer::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            FaultAnswer::BadGateway => StatusCode::BAD_GATEWAY,
            FaultAnswer::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            FaultAnswer::Timeout { status } | FaultAnswer::SecondaryLimit { status, .. } => status,
            FaultAnswer::QueryTimeout
            | FaultAnswer::TransientError
            | FaultAnswer::GraphqlSpent { .. } => StatusCode::OK,
        }
    }

    /// The JSON body of the answers that have one.
    fn json_body(self, request_id: &str) -> serde_json::Value {
        match self {
            FaultAnswer::Timeout { .. } => serde_json::json!({
                "message": "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists.",
                "documentation_url": "https://docs.github.com/rest",
            }),
            FaultAnswer::SecondaryLimit { status, .. } => serde_json::json!({
                "message": format!("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {request_id}."),
                "documentation_url": SECONDARY_DOCS,
                "status": status.as_str(),
            }),
            FaultAnswer::QueryTimeout => serde_json::json!({
                "data": null,
                "errors": [{"message": format!("Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `{request_id}` when reporting this issue.")}],
            }),
            FaultAnswer::TransientError => serde_json::json!({
                "data": null,
                "errors": [{"message": format!("Something went wrong while executing your query. Please include `{request_id}` when reporting this issue.")}],
            }),
            FaultAnswer::GraphqlSpent { .. } => {
                let odd = request_id.bytes().last().is_some_and(|b| b % 2 == 1);
                serde_json::json!({"errors": [{
                    "type": if odd { "RATE_LIMIT" } else { "RATE_LIMITED" },
                    "code": "graphql_rate_limit",
                    "message": format!("API rate limit exceeded for user ID {}.", super::graphql::VIEWER_ID),
                }]})
            }
            FaultAnswer::ServerError | FaultAnswer::BadGateway | FaultAnswer::Unavailable => {
                serde_json::json!({
                    "message": "Server Error",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "500",
                })
            }
        }
    }
}

/// The epoch second to report as the reset of a budget spent for `left` more:
/// the first whole second at or after its end.
fn reset_after(left: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let end = now + left;
    i64::try_from(end.as_secs() + u64::from(end.subsec_nanos() > 0)).unwrap_or(i64::MAX)
}

/// What nginx in front of GitHub's GraphQL API sends with a `502` (observed on
/// slow queries).
const NGINX_BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// A proxy's plain-text `503` (Envoy's wording).
const UNAVAILABLE_TEXT: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";

/// The page GitHub's front end sends with a `502` (its "unicorn" page, shortened).
const BAD_GATEWAY_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Unicorn! &middot; GitHub</title></head>\n<body>\n<h1>No server is currently available to service your request.</h1>\n<p>Sorry about that. Please try refreshing and contact us if the problem persists.</p>\n</body>\n</html>\n";

/// Lists whose default order shows new items first, so that inserting one shifts
/// every later page.
fn shifted_by_new_items(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::Deployments
            | Endpoint::Runs
            | Endpoint::WorkflowRuns { .. }
            | Endpoint::Issues
            | Endpoint::Commits
    )
}

/// The chaos middleware, around every route of the server.
pub(super) async fn layer(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if shared.chaos().is_quiet() {
        return next.run(request).await;
    }
    let Some(chaos) = shared.chaos_request(&request) else {
        return next.run(request).await;
    };
    let plan = shared.chaos().begin(&chaos, Instant::now());
    let graphql = chaos.graphql;
    let (fault, new_item, retry_after, slow_delay, timeout_delay) = match plan {
        Plan::Pass => return next.run(request).await,
        Plan::Limited {
            status,
            retry_after,
        } => {
            let answer = FaultAnswer::SecondaryLimit {
                status,
                retry_after,
            };
            return shared.fault_response(answer, graphql);
        }
        Plan::GraphqlSpent { left } => {
            return shared.fault_response(FaultAnswer::GraphqlSpent { left }, graphql);
        }
        Plan::Inject {
            fault,
            new_item,
            retry_after,
            slow_delay,
            timeout_delay,
        } => (fault, new_item, retry_after, slow_delay, timeout_delay),
    };
    // A GraphQL-only fault drawn by a REST request is no fault.
    let fault = fault.filter(|f| graphql || !f.graphql_only());
    let new_item = new_item
        && chaos
            .shifting_page
            .as_ref()
            .is_some_and(|route| shared.insert_new_item(route));
    let finish = |applied: Option<Fault>| {
        shared
            .chaos()
            .finish(&chaos, applied, new_item, Instant::now());
    };
    match fault {
        None => {
            finish(None);
            next.run(request).await
        }
        Some(Fault::Reset) => match reset_connection(&request) {
            Some(unsent) => {
                finish(Some(Fault::Reset));
                unsent
            }
            None => {
                finish(None);
                next.run(request).await
            }
        },
        Some(fault @ (Fault::ServerError | Fault::BadGateway | Fault::Unavailable)) => {
            finish(Some(fault));
            let answer = match fault {
                Fault::ServerError => FaultAnswer::ServerError,
                Fault::BadGateway => FaultAnswer::BadGateway,
                _ => FaultAnswer::Unavailable,
            };
            shared.fault_response(answer, graphql)
        }
        Some(fault @ (Fault::SecondaryLimit | Fault::TooManyRequests)) => {
            // The limit starts before the answer leaves, so a client that waits
            // `retry-after` from receiving it is always past it.
            finish(Some(fault));
            let status = if fault == Fault::SecondaryLimit {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            let answer = FaultAnswer::SecondaryLimit {
                status,
                retry_after,
            };
            shared.fault_response(answer, graphql)
        }
        Some(fault) if fault.is_timeout() => {
            // Counted when the request arrives (a client may give up waiting).
            finish(Some(fault));
            tokio::time::sleep(timeout_delay).await;
            let answer = match fault {
                Fault::Timeout => FaultAnswer::Timeout {
                    status: StatusCode::BAD_GATEWAY,
                },
                Fault::GatewayTimeout => FaultAnswer::Timeout {
                    status: StatusCode::GATEWAY_TIMEOUT,
                },
                _ => FaultAnswer::QueryTimeout,
            };
            shared.fault_response(answer, graphql)
        }
        Some(Fault::TransientError) => {
            finish(Some(Fault::TransientError));
            shared.fault_response(FaultAnswer::TransientError, graphql)
        }
        Some(Fault::RateLimited) => {
            // The budget is spent from before the answer leaves.
            finish(Some(Fault::RateLimited));
            let left = Duration::from_secs(retry_after.max(1));
            shared.fault_response(FaultAnswer::GraphqlSpent { left }, graphql)
        }
        Some(Fault::Slow) => {
            finish(Some(Fault::Slow));
            tokio::time::sleep(slow_delay).await;
            next.run(request).await
        }
        Some(Fault::Truncated) => {
            let response = next.run(request).await;
            let (response, truncated) = truncate(response).await;
            finish(truncated.then_some(Fault::Truncated));
            response
        }
        Some(_) => {
            finish(None);
            next.run(request).await
        }
    }
}

/// Keeps `response`'s head and a `Content-Length` of its whole body, but sends
/// only the body's first half and then fails the body; whether it did (not for an
/// empty or unsized body).
pub(crate) async fn truncate(response: Response) -> (Response, bool) {
    let (mut parts, body) = response.into_parts();
    let size = body.size_hint().exact();
    if !size.is_some_and(|n| n > 0 && n <= MAX_TRUNCATED_BODY) {
        return (Response::from_parts(parts, body), false);
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        let mut failed = Response::new(Body::empty());
        *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return (failed, false);
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let half: Bytes = bytes.slice(..bytes.len() / 2);
    let cut = futures::stream::once(async {
        tokio::time::sleep(TRUNCATION_GRACE).await;
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "chaos: body truncated",
        ))
    });
    let stream = futures::StreamExt::chain(futures::stream::iter([Ok(half)]), cut);
    (Response::from_parts(parts, Body::from_stream(stream)), true)
}

impl SimHandle {
    /// Replaces the chaos options while serving: the draws restart from the new
    /// seed; secondary limits in force and the counters stay.
    pub fn set_chaos(&self, options: ChaosOptions) -> Result<(), ChaosError> {
        options.validate()?;
        self.shared.chaos().set_options(options);
        Ok(())
    }

    /// The chaos options in force.
    pub fn chaos(&self) -> ChaosOptions {
        self.shared.chaos().options.clone()
    }

    /// Faults injected so far, per kind.
    pub fn chaos_counts(&self) -> ChaosCounts {
        self.shared.chaos().counts.clone()
    }

    /// Requests sent while their token was within a secondary limit.
    pub fn secondary_limit_violations(&self) -> u64 {
        self.shared.chaos().counts.secondary_violations
    }
}

/// Serves `app` on `listener` until `shutdown` with connections a chaos layer
/// can reset ([`reset_connection`]): every simulator's server with the `chaos`
/// feature (GitHub, GitLab, Argo CD, Jenkins, PagerDuty) is served this way.
pub(crate) async fn serve_resettable(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(
        ChaosListener::new(listener),
        app.into_make_service_with_connect_info::<ConnKill>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resets the connection `request` came on: its kill switch is set, so the
/// connection fails at its first write and is closed with an RST before any
/// response byte. Returns the response to hand back in place of an answer
/// (it is never sent); `None`, with nothing done, when the request did not come
/// through [`serve_resettable`].
pub(crate) fn reset_connection(request: &Request) -> Option<Response> {
    let ConnectInfo(kill) = request.extensions().get::<ConnectInfo<ConnKill>>()?;
    kill.trigger();
    let mut unsent = Response::new(Body::empty());
    *unsent.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    Some(unsent)
}

/// A connection's kill switch, shared by its `ChaosIo` and (as connect info) its
/// requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnKill(Arc<AtomicBool>);

impl ConnKill {
    pub(crate) fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, ChaosListener>> for ConnKill {
    fn connect_info(stream: IncomingStream<'_, ChaosListener>) -> Self {
        stream.io().kill.clone()
    }
}

/// A TCP listener whose connections can be reset by the chaos layer.
pub(crate) struct ChaosListener {
    inner: TcpListener,
}

impl ChaosListener {
    pub(crate) fn new(inner: TcpListener) -> ChaosListener {
        ChaosListener { inner }
    }
}

impl axum::serve::Listener for ChaosListener {
    type Io = ChaosIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (
            ChaosIo {
                stream,
                kill: ConnKill::default(),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A server-side TCP connection that fails every read and write once its kill
/// switch is set, and is then closed with a reset.
pub(crate) struct ChaosIo {
    stream: TcpStream,
    kill: ConnKill,
}

fn killed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "chaos: connection reset")
}

impl AsyncRead for ChaosIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.is_set() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChaosIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.is_set() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.is_set() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.is_set() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.is_set() {
            // No FIN: the drop resets the connection.
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

impl Drop for ChaosIo {
    fn drop(&mut self) {
        if self.kill.is_set() {
            // Zero linger: closing the socket sends an RST, not a FIN. Dropping
            // without it would still end the connection, only less abruptly.
            let _ = self.stream.set_zero_linger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: u64) -> ChaosRequest {
        ChaosRequest {
            key,
            token: 7,
            shifting_page: None,
            graphql: false,
        }
    }

    fn only(fault: Fault, rate: f64) -> ChaosOptions {
        ChaosOptions::default().with_rate(fault, rate)
    }

    #[test]
    fn defaults_are_off_and_valid() {
        let options = ChaosOptions::default();
        assert!(options.is_off());
        assert_eq!(options.validate(), Ok(()));
        assert!(ChaosState::new(options).is_quiet());
    }

    #[test]
    fn invalid_options_are_refused() {
        let cases = [
            only(Fault::Reset, 1.5),
            only(Fault::Slow, -0.1),
            only(Fault::Truncated, f64::NAN),
            ChaosOptions {
                new_items_rate: 2.0,
                ..ChaosOptions::default()
            },
            only(Fault::Reset, 0.6).with_rate(Fault::BadGateway, 0.6),
            ChaosOptions {
                slow_delay: MAX_SLOW_DELAY + Duration::from_millis(1),
                ..ChaosOptions::default()
            },
            ChaosOptions {
                retry_after: MAX_RETRY_AFTER + Duration::from_secs(1),
                ..ChaosOptions::default()
            },
            ChaosOptions {
                timeout_delay: MAX_SLOW_DELAY + Duration::from_millis(1),
                ..ChaosOptions::default()
            },
        ];
        for options in cases {
            assert!(options.validate().is_err(), "{options:?}");
        }
        let full = Fault::ALL.iter().fold(ChaosOptions::default(), |o, f| {
            o.with_rate(*f, 1.0 / Fault::ALL.len() as f64)
        });
        assert_eq!(full.validate(), Ok(()));
    }

    #[test]
    fn draws_pick_rates_end_to_end() {
        let options = only(Fault::Reset, 0.25).with_rate(Fault::Truncated, 0.5);
        assert_eq!(options.pick(0.0), Some(Fault::Reset));
        assert_eq!(options.pick(0.2499), Some(Fault::Reset));
        assert_eq!(options.pick(0.25), Some(Fault::Truncated));
        assert_eq!(options.pick(0.7499), Some(Fault::Truncated));
        assert_eq!(options.pick(0.75), None);
        assert_eq!(ChaosOptions::default().pick(0.0), None);
    }

    #[test]
    fn the_cap_spares_the_request_after_max_faults_in_a_row() {
        let mut state = ChaosState::new(only(Fault::ServerError, 1.0));
        let now = Instant::now();
        let r = request(1);
        for _ in 0..DEFAULT_MAX_CONSECUTIVE_FAULTS {
            let plan = state.begin(&r, now);
            assert!(matches!(
                plan,
                Plan::Inject {
                    fault: Some(Fault::ServerError),
                    ..
                }
            ));
            state.finish(&r, Some(Fault::ServerError), false, now);
        }
        assert_eq!(state.begin(&r, now), Plan::Pass);
        assert_eq!(state.counts.capped, 1);
        // Another request is not affected, and the spared one starts again.
        assert!(matches!(state.begin(&request(2), now), Plan::Inject { .. }));
        assert!(matches!(state.begin(&r, now), Plan::Inject { .. }));
        assert_eq!(state.counts.server_error, 3);
    }

    #[test]
    fn a_fault_not_applied_breaks_the_run() {
        let mut state = ChaosState::new(only(Fault::Truncated, 1.0));
        let now = Instant::now();
        let r = request(1);
        for _ in 0..10 {
            assert!(matches!(state.begin(&r, now), Plan::Inject { .. }));
            state.finish(&r, None, false, now);
        }
        assert_eq!(state.counts, ChaosCounts::default());
    }

    #[test]
    fn secondary_limits_hold_until_retry_after_and_are_not_extended() {
        let options = ChaosOptions {
            retry_after: Duration::from_millis(1500),
            ..only(Fault::TooManyRequests, 1.0)
        };
        let mut state = ChaosState::new(options);
        let t0 = Instant::now();
        let r = request(1);
        let Plan::Inject { retry_after, .. } = state.begin(&r, t0) else {
            panic!("a fault");
        };
        assert_eq!(retry_after, 2, "rounded up to whole seconds");
        state.finish(&r, Some(Fault::TooManyRequests), false, t0);
        state.set_options(ChaosOptions::default());
        assert!(!state.is_quiet(), "the limit outlives the options");
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(
            state.begin(&request(9), at(500)),
            Plan::Limited {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: 2
            },
            "any request of the token"
        );
        assert_eq!(
            state.begin(&r, at(1999)),
            Plan::Limited {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: 1
            }
        );
        assert_eq!(state.counts.secondary_violations, 2);
        assert_eq!(state.begin(&r, at(2000)), Plan::Pass);
        assert!(state.is_quiet());
        let other_token = ChaosRequest {
            token: 8,
            ..request(1)
        };
        let mut state = ChaosState::new(only(Fault::SecondaryLimit, 1.0));
        state.finish(&r, Some(Fault::SecondaryLimit), false, t0);
        state.set_options(ChaosOptions::default());
        assert_eq!(state.begin(&other_token, t0), Plan::Pass, "per token");
    }

    #[test]
    fn zero_retry_after_starts_no_limit() {
        let options = ChaosOptions {
            retry_after: Duration::ZERO,
            ..only(Fault::SecondaryLimit, 1.0)
        };
        let mut state = ChaosState::new(options);
        let now = Instant::now();
        state.finish(&request(1), Some(Fault::SecondaryLimit), false, now);
        state.set_options(ChaosOptions::default());
        assert!(state.is_quiet());
    }

    #[test]
    fn new_items_only_on_later_pages_and_draws_are_seeded() {
        let options = ChaosOptions {
            new_items_rate: 1.0,
            seed: 42,
            ..only(Fault::Slow, 0.5)
        };
        let page2 = ChaosRequest {
            shifting_page: route::parse_path("/repos/o/r/issues"),
            ..request(3)
        };
        let run = |options: &ChaosOptions| {
            let mut state = ChaosState::new(options.clone());
            let now = Instant::now();
            (0..64)
                .map(|i| {
                    let r = if i % 2 == 0 {
                        request(i)
                    } else {
                        page2.clone()
                    };
                    let plan = state.begin(&r, now);
                    if let Plan::Inject {
                        fault, new_item, ..
                    } = &plan
                    {
                        assert_eq!(*new_item, i % 2 == 1);
                        state.finish(&r, *fault, *new_item, now);
                    }
                    plan
                })
                .collect::<Vec<_>>()
        };
        let first = run(&options);
        assert_eq!(first, run(&options), "same seed, same faults");
        assert_ne!(
            first,
            run(&ChaosOptions {
                seed: 43,
                ..options.clone()
            })
        );
    }
}
