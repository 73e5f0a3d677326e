//! Faults the simulated Argo CD and Jenkins inject on purpose (feature `chaos`),
//! as the proxies and servers in front of them do: connection resets, `500`,
//! `502` and `503` pages, and `429` with `Retry-After`. Configured by
//! [`FaultOptions`] (in `CicdOptions::faults`, or at run time with
//! [`CicdHandle::set_faults`]); off by default.
//!
//! Each request with valid credentials draws at most one fault from a ChaCha8
//! stream seeded with [`FaultOptions::seed`], so a client sending one request at
//! a time sees the same faults on every run. The same request (method, path and
//! query) is faulted at most [`FaultOptions::max_consecutive_faults`] times in a
//! row, so a client that retries that often plus one always gets every answer,
//! identical to a fault-free run. After a `429`, every request sent before its
//! `Retry-After` has passed is answered `429` again and counted as a violation
//! ([`FaultCounts::throttled`]): a client that waits never is. Faults are
//! answered in front of the API: they are not in the request counters.
//!
//! Not here: slow or truncated bodies and new items between pages (the GitHub
//! simulator's chaos has those; Argo CD and Jenkins answers are single
//! objects).

use super::serve::{CicdApi, CicdHandle, Shared};
use crate::server::chaos::reset_connection;
use crate::server::TokenUse;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

/// Default cap on consecutive faults of one request (as the GitHub simulator's).
pub const DEFAULT_MAX_CONSECUTIVE_FAULTS: u32 = 3;

/// Default `Retry-After` of a `429`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest `Retry-After` accepted in the options.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Requests awaiting a retry whose consecutive faults are remembered; beyond
/// this they are forgotten all at once.
const MAX_TRACKED_KEYS: usize = 65_536;

/// The faults to inject; rates are probabilities per request and sum to at
/// most 1.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultOptions {
    /// Seeds the draws.
    pub seed: u64,
    /// The connection is reset before any response byte.
    pub reset_rate: f64,
    /// `500` with a server error page.
    pub server_error_rate: f64,
    /// `502` with a proxy's page.
    pub bad_gateway_rate: f64,
    /// `503` with a proxy's plain text.
    pub unavailable_rate: f64,
    /// `429` with `Retry-After`.
    pub too_many_requests_rate: f64,
    /// The `Retry-After` of a `429` (whole seconds).
    pub retry_after: Duration,
    /// The most faults in a row on one request.
    pub max_consecutive_faults: u32,
}

impl Default for FaultOptions {
    fn default() -> Self {
        FaultOptions {
            seed: 0,
            reset_rate: 0.0,
            server_error_rate: 0.0,
            bad_gateway_rate: 0.0,
            unavailable_rate: 0.0,
            too_many_requests_rate: 0.0,
            retry_after: DEFAULT_RETRY_AFTER,
            max_consecutive_faults: DEFAULT_MAX_CONSECUTIVE_FAULTS,
        }
    }
}

impl FaultOptions {
    /// Every kind at `rate` (each), with `seed`.
    pub fn every_kind(seed: u64, rate: f64) -> FaultOptions {
        FaultOptions {
            seed,
            reset_rate: rate,
            server_error_rate: rate,
            bad_gateway_rate: rate,
            unavailable_rate: rate,
            too_many_requests_rate: rate,
            ..FaultOptions::default()
        }
    }

    fn rates(&self) -> [(Fault, f64); 5] {
        [
            (Fault::Reset, self.reset_rate),
            (Fault::ServerError, self.server_error_rate),
            (Fault::BadGateway, self.bad_gateway_rate),
            (Fault::Unavailable, self.unavailable_rate),
            (Fault::TooManyRequests, self.too_many_requests_rate),
        ]
    }

    /// Checks the rates and bounds.
    pub fn validate(&self) -> Result<(), String> {
        let mut sum = 0.0;
        for (fault, rate) in self.rates() {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{fault:?} rate {rate} is not a probability"));
            }
            sum += rate;
        }
        if sum > 1.0 + 1e-9 {
            return Err(format!("the fault rates sum to {sum}, more than 1"));
        }
        if self.retry_after > MAX_RETRY_AFTER {
            return Err(format!("retry_after above {MAX_RETRY_AFTER:?}"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Reset,
    ServerError,
    BadGateway,
    Unavailable,
    TooManyRequests,
}

/// Faults injected so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Connections reset.
    pub reset: u64,
    /// `500`s.
    pub server_error: u64,
    /// `502`s.
    pub bad_gateway: u64,
    /// `503`s.
    pub unavailable: u64,
    /// `429`s drawn.
    pub too_many_requests: u64,
    /// Requests sent before a `429`'s `Retry-After` had passed (answered `429`).
    pub throttled: u64,
    /// Faults not injected because the request had had its maximum in a row.
    pub capped: u64,
}

impl FaultCounts {
    /// Every fault drawn (not counting `throttled` answers).
    pub fn faults(&self) -> u64 {
        self.reset
            + self.server_error
            + self.bad_gateway
            + self.unavailable
            + self.too_many_requests
    }
}

pub(super) struct FaultState {
    options: FaultOptions,
    rng: ChaCha8Rng,
    in_a_row: HashMap<u64, u32>,
    throttled_until: Option<Instant>,
    counts: FaultCounts,
}

impl FaultState {
    pub(super) fn new(options: FaultOptions) -> FaultState {
        FaultState {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            options,
            in_a_row: HashMap::new(),
            throttled_until: None,
            counts: FaultCounts::default(),
        }
    }

    fn quiet(&self) -> bool {
        self.options.rates().iter().all(|(_, rate)| *rate == 0.0) && self.throttled_until.is_none()
    }

    /// The fault for the request with `key`, if any (or a throttled answer).
    fn draw(&mut self, key: u64, now: Instant) -> Option<(Fault, u64)> {
        if let Some(until) = self.throttled_until {
            if now < until {
                self.counts.throttled += 1;
                let left = (until - now).as_secs_f64().ceil() as u64;
                return Some((Fault::TooManyRequests, left.max(1)));
            }
            self.throttled_until = None;
        }
        let draw: f64 = self.rng.random();
        let mut bound = 0.0;
        let mut drawn = None;
        for (fault, rate) in self.options.rates() {
            bound += rate;
            if draw < bound {
                drawn = Some(fault);
                break;
            }
        }
        let Some(fault) = drawn else {
            self.in_a_row.remove(&key);
            return None;
        };
        let in_a_row = self.in_a_row.get(&key).copied().unwrap_or(0);
        if in_a_row >= self.options.max_consecutive_faults {
            self.counts.capped += 1;
            self.in_a_row.remove(&key);
            return None;
        }
        if self.in_a_row.len() >= MAX_TRACKED_KEYS {
            self.in_a_row.clear();
        }
        self.in_a_row.insert(key, in_a_row + 1);
        match fault {
            Fault::Reset => self.counts.reset += 1,
            Fault::ServerError => self.counts.server_error += 1,
            Fault::BadGateway => self.counts.bad_gateway += 1,
            Fault::Unavailable => self.counts.unavailable += 1,
            Fault::TooManyRequests => self.counts.too_many_requests += 1,
        }
        let retry_after = self.options.retry_after.as_secs();
        if fault == Fault::TooManyRequests && retry_after > 0 {
            self.throttled_until = Some(now + Duration::from_secs(retry_after));
        }
        Some((fault, retry_after))
    }
}

impl<S> Shared<S> {
    fn fault_state(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: CicdApi> CicdHandle<S> {
    /// Replaces the fault options while serving (the draws restart from the
    /// new seed; a `429`'s window in force stays).
    pub fn set_faults(&self, options: FaultOptions) -> Result<(), String> {
        options.validate()?;
        let mut state = self.shared().fault_state();
        let throttled_until = state.throttled_until;
        let counts = state.counts.clone();
        *state = FaultState::new(options);
        state.throttled_until = throttled_until;
        state.counts = counts;
        Ok(())
    }

    /// Faults injected so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.shared().fault_state().counts.clone()
    }
}

fn page(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// The fault middleware, around every route.
pub(super) async fn layer<S: CicdApi>(
    State(shared): State<Arc<Shared<S>>>,
    request: Request,
    next: Next,
) -> Response {
    if shared.fault_state().quiet() || shared.auth_of(request.headers()) != TokenUse::Valid {
        return next.run(request).await;
    }
    let mut hasher = DefaultHasher::new();
    request.method().as_str().hash(&mut hasher);
    request.uri().to_string().hash(&mut hasher);
    let key = hasher.finish();
    let drawn = shared.fault_state().draw(key, Instant::now());
    match drawn {
        None => next.run(request).await,
        Some((Fault::Reset, _)) => match reset_connection(&request) {
            Some(unsent) => unsent,
            None => next.run(request).await,
        },
        Some((Fault::ServerError, _)) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html;charset=utf-8",
            "<html><body><h2>HTTP ERROR 500 Server Error</h2></body></html>",
        ),
        Some((Fault::BadGateway, _)) => page(
            StatusCode::BAD_GATEWAY,
            "text/html",
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
             <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        ),
        Some((Fault::Unavailable, _)) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "upstream connect error or disconnect/reset before headers. reset reason: \
             connection termination",
        ),
        Some((Fault::TooManyRequests, retry_after)) => {
            let mut response = page(
                StatusCode::TOO_MANY_REQUESTS,
                "text/plain",
                "Too Many Requests",
            );
            if let Ok(value) = header::HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_faulted_at_most_its_cap_in_a_row_and_429_holds_its_window() {
        let mut state = FaultState::new(FaultOptions {
            server_error_rate: 1.0,
            ..FaultOptions::default()
        });
        let now = Instant::now();
        let drawn: Vec<bool> = (0..8).map(|_| state.draw(7, now).is_some()).collect();
        assert_eq!(drawn, [true, true, true, false, true, true, true, false]);
        assert_eq!(state.counts.capped, 2);

        let mut state = FaultState::new(FaultOptions {
            too_many_requests_rate: 1.0,
            retry_after: Duration::from_secs(5),
            ..FaultOptions::default()
        });
        assert_eq!(state.draw(1, now), Some((Fault::TooManyRequests, 5)));
        assert_eq!(
            state.draw(2, now + Duration::from_secs(2)),
            Some((Fault::TooManyRequests, 3))
        );
        assert_eq!(state.counts.throttled, 1);
        assert!(state.draw(2, now + Duration::from_secs(6)).is_some());
        assert!(FaultOptions::every_kind(1, 0.3).validate().is_err());
        assert!(FaultOptions::every_kind(1, 0.1).validate().is_ok());
    }
}
