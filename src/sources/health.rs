//! The API health a source keeps about itself: requests by endpoint and status,
//! retries by reason, rate limits. Plain data produced here and read by the
//! exporter (which renders it) and the daemon (which gathers it); nothing here
//! counts or renders. Every label value is bounded: `endpoint` is a route
//! template, never a concrete URL.

use crate::domain::Timestamp;

/// How many API requests to one endpoint ended with one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequests {
    /// A route template (`/repos/{owner}/{repo}/deployments`, `graphql`): bounded,
    /// never a concrete URL.
    pub endpoint: String,
    /// The HTTP status code (`200`, `403`, …), or `error` when no response arrived.
    pub status: String,
    pub count: u64,
}

/// How many requests were retried for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRetries {
    /// A bounded reason: `server_error`, `network`, `truncated`, `invalid_body`,
    /// `secondary_rate_limit`, `rate_limit`.
    pub reason: String,
    pub count: u64,
}

/// A rate limit as the source last reported it (`x-ratelimit-*` headers or the
/// `/rate_limit` endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Whose budget it is: `token` (a personal token), `app` (a GitHub App's own
    /// requests) or `installation:<account>` (one installation of the App).
    pub credential: String,
    /// The rate-limit resource: `core`, `graphql`, `search`, …
    pub resource: String,
    /// Requests left in the current rate-limit window.
    pub remaining: u64,
    /// When the current window resets, if reported.
    pub reset_at: Option<Timestamp>,
}

/// How often a source found that an Argo CD application's history had dropped
/// syncs it never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryGaps {
    /// The configured application name (bounded by the configuration).
    pub application: String,
    /// Polls that found a gap, since the process started.
    pub gaps: u64,
}
