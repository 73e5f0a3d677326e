//! Why a PagerDuty request or service sync failed. Every message names the URL
//! (which never holds the key: it travels in a header) or the configuration key
//! to fix, and server text is bounded with the key masked (`client.rs`).
//!
//! Not here: deciding what to retry (`client.rs`).

/// A failure of the PagerDuty source.
#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    /// `401`: the key is wrong, revoked or malformed.
    #[error(
        "PagerDuty refused the API key (401 {message}) at {url}: check pagerduty.token \
         (a read-only REST API key)"
    )]
    Unauthorized { url: String, message: String },
    /// `403`: the key cannot see this.
    #[error(
        "PagerDuty denied access (403 {message}) at {url}: the key of pagerduty.token \
         cannot read it"
    )]
    Forbidden { url: String, message: String },
    /// `404` of a request that is not about a configured service.
    #[error("PagerDuty found nothing at {url} (404)")]
    NotFound { url: String },
    /// A configured service PagerDuty does not know (or the key cannot see).
    #[error(
        "pagerduty.services[{index}]: PagerDuty knows no service {id} (404 at {url}); \
         check its id (the P… in the service's URL) and that the key can see it"
    )]
    UnknownService {
        index: usize,
        id: String,
        url: String,
    },
    /// Any other status after the retries.
    #[error("PagerDuty answered {status} at {url}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// Rate limited for longer than a sync may wait.
    #[error(
        "PagerDuty's rate limit holds requests to {url} for {seconds} s; the next sync \
         goes on from what was kept"
    )]
    RateLimited { url: String, seconds: u64 },
    /// No answer (connection refused, reset, timeout) after the retries.
    #[error("cannot reach PagerDuty at {url}: {reason}")]
    Network { url: String, reason: String },
    /// A body larger than the bound.
    #[error("PagerDuty's answer at {url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    /// A 2xx body that is not JSON, after the retries.
    #[error("PagerDuty's answer at {url} is not JSON")]
    InvalidBody { url: String },
    /// An answer without what every answer of its kind has.
    #[error("PagerDuty's answer at {url} is not what its API describes: {what}")]
    Unexpected { url: String, what: String },
    /// More incidents in one second than one listing can page through.
    #[error(
        "PagerDuty lists more than {limit} incidents of service {id} created at {at}; \
         they cannot all be read"
    )]
    TooManyAtOnce { id: String, at: String, limit: u64 },
    /// The HTTP client could not be built or a URL could not be made.
    #[error("the PagerDuty client cannot be set up: {0}")]
    Client(String),
    /// Stopped by shutdown.
    #[error("stopped by shutdown")]
    Cancelled,
}
