//! The HTTP layer of the PagerDuty source: one reqwest client for the account's
//! REST API v2 with the read-only key (`Authorization: Token token=…`, `Accept:
//! application/vnd.pagerduty+json;version=2`), one request in flight at a time
//! (PagerDuty asks for serial requests per key), bounded bodies checked to be
//! JSON, and bounded retries: `429` waits `ratelimit-reset` seconds (at most
//! [`RetryPolicy::max_rate_limit_wait`]), `5xx`, `408`, network failures and
//! unreadable bodies back off exponentially with jitter. It counts requests per
//! endpoint template and status, retries per reason and the time held back, and
//! keeps the rate limit the server reports, for the health metrics.
//!
//! Not here: what an answer means (`models.rs`), which requests a sync makes
//! (`mod.rs`). The key never leaves the `Authorization` header: errors carry
//! URLs without it and server text with it masked.

use super::error::PagerDutyError;
use crate::domain::Timestamp;
use crate::sources::github::RetryPolicy;
use crate::sources::{ApiRequests, ApiRetries, RateLimit};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// PagerDuty's versioning header.
pub const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// The largest response body read. A page of 100 incidents is about 300 kB.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read on the connection may stall.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The wait after a `429` that says nothing of when to retry.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// The `resource` label of the rate limit PagerDuty reports (one per key).
pub const RATE_LIMIT_RESOURCE: &str = "rest";

/// The reasons a request is retried (every one is reported, zero included).
pub const RETRY_REASONS: [&str; 4] = ["rate_limit", "server_error", "network", "invalid_body"];

/// The endpoints the source reads, as bounded `endpoint` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Service,
    Incidents,
    Incident,
    LogEntries,
    Notes,
}

impl Endpoint {
    /// The route template.
    pub const fn template(self) -> &'static str {
        match self {
            Endpoint::Service => "/services/{id}",
            Endpoint::Incidents => "/incidents",
            Endpoint::Incident => "/incidents/{id}",
            Endpoint::LogEntries => "/incidents/{id}/log_entries",
            Endpoint::Notes => "/incidents/{id}/notes",
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    requests: BTreeMap<(&'static str, String), u64>,
    retries: BTreeMap<&'static str, u64>,
    waited: f64,
    rate_limit: Option<RateLimit>,
}

/// The PagerDuty REST client of one key.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    policy: RetryPolicy,
    /// One request in flight.
    serial: tokio::sync::Mutex<()>,
    counters: Mutex<Counters>,
}

/// One answer: the JSON body.
pub type Json = serde_json::Value;

impl Client {
    /// A client of the API at `base` (no trailing slash needed).
    pub fn new(
        base: &url::Url,
        token: SecretString,
        policy: RetryPolicy,
    ) -> Result<Client, PagerDutyError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PagerDutyError::Client(e.to_string()))?;
        Ok(Client {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            token,
            policy,
            serial: tokio::sync::Mutex::new(()),
            counters: Mutex::new(Counters::default()),
        })
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests by endpoint and status, retries by reason, time held back and
    /// the latest rate limit.
    pub fn health(&self) -> (Vec<ApiRequests>, Vec<ApiRetries>, f64, Vec<RateLimit>) {
        let counters = self.counters();
        let requests = counters
            .requests
            .iter()
            .map(|((endpoint, status), count)| ApiRequests {
                endpoint: (*endpoint).to_owned(),
                status: status.clone(),
                count: *count,
            })
            .collect();
        let retries = RETRY_REASONS
            .iter()
            .map(|reason| ApiRetries {
                reason: (*reason).to_owned(),
                count: counters.retries.get(reason).copied().unwrap_or(0),
            })
            .collect();
        (
            requests,
            retries,
            counters.waited,
            counters.rate_limit.iter().cloned().collect(),
        )
    }

    /// Requests sent since the client was made (every attempt).
    pub fn request_count(&self) -> u64 {
        self.counters().requests.values().sum()
    }

    fn count(&self, endpoint: Endpoint, status: String) {
        *self
            .counters()
            .requests
            .entry((endpoint.template(), status))
            .or_default() += 1;
    }

    fn retried(&self, reason: &'static str) {
        *self.counters().retries.entry(reason).or_default() += 1;
    }

    /// `GET {base}{path}?{query}`, retried as the module says; the JSON body of
    /// a 2xx answer.
    pub async fn get(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: &[(&str, String)],
        shutdown: &CancellationToken,
    ) -> Result<Json, PagerDutyError> {
        let mut url = url::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| PagerDutyError::Client(format!("{path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let _serial = self.serial.lock().await;
        let (mut retries, mut rate_limited) = (0u32, 0u32);
        loop {
            if shutdown.is_cancelled() {
                return Err(PagerDutyError::Cancelled);
            }
            let outcome = tokio::select! {
                outcome = self.attempt(endpoint, &url) => outcome,
                () = shutdown.cancelled() => return Err(PagerDutyError::Cancelled),
            };
            let (reason, wait) = match outcome {
                Attempt::Done(result) => return result,
                Attempt::RateLimited(reset) => {
                    let wait = reset.unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
                    let allowed = self
                        .policy
                        .max_retries
                        .saturating_add(RATE_LIMIT_EXTRA_RETRIES);
                    if wait > self.policy.max_rate_limit_wait || rate_limited >= allowed {
                        return Err(PagerDutyError::RateLimited {
                            url: url.to_string(),
                            seconds: wait.as_secs(),
                        });
                    }
                    rate_limited += 1;
                    self.counters().waited += wait.as_secs_f64();
                    ("rate_limit", wait)
                }
                Attempt::Retry(reason, last) => {
                    if retries >= self.policy.max_retries {
                        return Err(last);
                    }
                    let wait = self.policy.backoff(retries, rand::random::<f64>());
                    retries += 1;
                    (reason, wait)
                }
            };
            self.retried(reason);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return Err(PagerDutyError::Cancelled),
            }
        }
    }

    async fn attempt(&self, endpoint: Endpoint, url: &url::Url) -> Attempt {
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!(
            "Token token={}",
            self.token.expose_secret()
        ))
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        authorization.set_sensitive(true);
        let sent = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, ACCEPT)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                self.count(endpoint, "error".to_owned());
                return Attempt::Retry(
                    "network",
                    PagerDutyError::Network {
                        url: url.to_string(),
                        reason: error_text(&error),
                    },
                );
            }
        };
        let status = response.status();
        self.count(endpoint, status.as_u16().to_string());
        let headers = response.headers().clone();
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let reset = number("ratelimit-reset").or_else(|| number("retry-after"));
        if let Some(remaining) = number("ratelimit-remaining") {
            self.counters().rate_limit = Some(RateLimit {
                credential: "token".to_owned(),
                resource: RATE_LIMIT_RESOURCE.to_owned(),
                remaining,
                reset_at: reset.and_then(|r| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()?
                        .as_secs();
                    i64::try_from(now.saturating_add(r)).ok().map(Timestamp)
                }),
            });
        }
        // The body, bounded.
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Attempt::Done(Err(PagerDutyError::TooLarge {
                            url: url.to_string(),
                            limit: MAX_RESPONSE_BYTES,
                        }));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    return Attempt::Retry(
                        "network",
                        PagerDutyError::Network {
                            url: url.to_string(),
                            reason: error_text(&error),
                        },
                    )
                }
            }
        }
        let message = || self.server_message(&body);
        match status.as_u16() {
            200..=299 => match serde_json::from_slice::<Json>(&body) {
                Ok(json) => Attempt::Done(Ok(json)),
                Err(_) => Attempt::Retry(
                    "invalid_body",
                    PagerDutyError::InvalidBody {
                        url: url.to_string(),
                    },
                ),
            },
            429 => Attempt::RateLimited(reset.map(Duration::from_secs)),
            408 | 500..=599 => Attempt::Retry(
                "server_error",
                PagerDutyError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                    message: message(),
                },
            ),
            401 => Attempt::Done(Err(PagerDutyError::Unauthorized {
                url: url.to_string(),
                message: message(),
            })),
            403 => Attempt::Done(Err(PagerDutyError::Forbidden {
                url: url.to_string(),
                message: message(),
            })),
            404 => Attempt::Done(Err(PagerDutyError::NotFound {
                url: url.to_string(),
            })),
            other => Attempt::Done(Err(PagerDutyError::Status {
                url: url.to_string(),
                status: other,
                message: message(),
            })),
        }
    }

    /// PagerDuty's `error.message` (with its `errors`), bounded, one line, the
    /// key masked; a short excerpt of a body that is not PagerDuty's JSON.
    fn server_message(&self, body: &[u8]) -> String {
        let parsed = serde_json::from_slice::<Json>(body).ok();
        let text = match parsed.as_ref().and_then(|v| v.get("error")) {
            Some(error) => {
                let message = error
                    .get("message")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_owned();
                let details: Vec<&str> = error
                    .get("errors")
                    .and_then(Json::as_array)
                    .map(|e| e.iter().filter_map(Json::as_str).collect())
                    .unwrap_or_default();
                if details.is_empty() {
                    message
                } else {
                    format!("{message}: {}", details.join("; "))
                }
            }
            None => String::from_utf8_lossy(body).into_owned(),
        };
        let token = self.token.expose_secret();
        let masked = if token.chars().count() >= MIN_MASKED_TOKEN_CHARS {
            text.replace(token, "[REDACTED]")
        } else {
            text
        };
        let clean: String = masked
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_SERVER_MESSAGE_CHARS)
            .collect();
        clean.trim().to_owned()
    }
}

/// Extra attempts allowed for `429`s beyond [`RetryPolicy::max_retries`]: a
/// rate limit says when to come back, so it is worth a few more waits.
const RATE_LIMIT_EXTRA_RETRIES: u32 = 5;

/// The most of a server's error text kept in an error.
pub const MAX_SERVER_MESSAGE_CHARS: usize = 200;

/// A key shorter than this is not searched for in server text (masking one or
/// two characters everywhere would garble every message and protect nothing).
const MIN_MASKED_TOKEN_CHARS: usize = 8;

enum Attempt {
    Done(Result<Json, PagerDutyError>),
    /// `429`, with the server's wait when it gave one.
    RateLimited(Option<Duration>),
    /// Worth another attempt, for `reason`; the error if none is left.
    Retry(&'static str, PagerDutyError),
}

/// A reqwest error's text with its causes (it names the URL, which holds no
/// secret: the key is only ever in a header), bounded.
fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_SERVER_MESSAGE_CHARS).collect()
}
