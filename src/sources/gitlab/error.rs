//! `GitlabError`: why a request to the GitLab API failed, split by what the
//! caller (and the person reading the log) does about it; and what the
//! rate-limit governor reads of it.
//!
//! Every message names the URL it concerns (never with credentials: the token
//! travels only in the `PRIVATE-TOKEN` header, which no message includes) and,
//! for an HTTP error, the status and GitLab's own message, cleaned of the token
//! and bounded by the client's [`Redactor`](crate::sources::http::Redactor).

use crate::domain::Timestamp;
use crate::sources::governor::{GovernedError, RetryReason};

/// Why a GitLab API request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitlabError {
    /// 401: the token is wrong, expired or revoked.
    #[error(
        "GitLab rejected the token (HTTP 401 {message}) at {url}; check gitlab.token \
         (the token itself is never shown)"
    )]
    Unauthorized { url: String, message: String },

    /// 403: the token lacks the scope or the project role.
    #[error(
        "access denied (HTTP 403 {message}) to {endpoint} of project {project}: the token \
         needs the read_api scope and at least the Reporter role in the project; at {url}"
    )]
    Forbidden {
        url: String,
        message: String,
        /// The project path as the URL names it.
        project: String,
        /// The endpoint's route template.
        endpoint: &'static str,
    },

    /// 404: no such project (or the token cannot see it), or no such object.
    #[error(
        "not found (HTTP 404 {message}) at {url}: check the project path \
         (gitlab.projects[].path) and that the token can read it"
    )]
    NotFound { url: String, message: String },

    /// The budget of the current window is spent (`429` with `RateLimit-Reset`
    /// or `Retry-After`, or the governor's own count): no request is sent until
    /// `reset_at`.
    #[error("GitLab API rate limit reached{}; at {url}", reset_text(.reset_at))]
    RateLimited {
        url: String,
        reset_at: Option<Timestamp>,
    },

    /// A `429` that names no time to wait: every request of the token waits a
    /// while before the next one is sent.
    #[error("GitLab throttled the request (HTTP 429 {message}); at {url}")]
    Throttled { url: String, message: String },

    /// A request was retried as often as the policy allows and still failed.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<GitlabError>,
    },

    /// Any other HTTP status (5xx are retried).
    #[error("HTTP {status} {message} at {url}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },

    /// No HTTP response at all: DNS, connection refused, TLS, timeout.
    #[error("cannot reach the GitLab API at {url}: {cause}")]
    Unreachable { url: String, cause: String },

    /// The connection broke while the body was being read.
    #[error("the response from {url} was cut short: {cause}")]
    Truncated { url: String, cause: String },

    /// The response body was larger than the bound.
    #[error("the response from {url} is larger than {limit} bytes; refusing to read it")]
    TooLarge { url: String, limit: usize },

    /// The response body is not the JSON document the endpoint returns.
    #[error("unexpected response from {url}: {reason}")]
    InvalidBody { url: String, reason: String },

    /// A list had more pages than the bound.
    #[error("{url} has more than {limit} pages; stopped reading")]
    TooManyPages { url: String, limit: usize },

    /// A `Link: rel="next"` pointing away from the configured API (it would not
    /// carry the token, and it is not followed).
    #[error("the next page of a list points outside gitlab.api_url: {url}")]
    ForeignLink { url: String },

    /// `gitlab.api_url` or a URL built from it is not a valid request URL.
    #[error("invalid request URL {url}")]
    InvalidUrl { url: String },

    /// The token cannot be sent as an HTTP header value.
    #[error(
        "gitlab.token contains characters that cannot be sent in an HTTP header \
         (the token itself is never shown)"
    )]
    InvalidToken,

    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for {url}: {cause}")]
    Client { url: String, cause: String },

    /// Shutdown stopped the request.
    #[error("stopped by shutdown")]
    Cancelled,
}

fn reset_text(reset_at: &Option<Timestamp>) -> String {
    match reset_at {
        Some(at) => format!(" until {at}"),
        None => String::new(),
    }
}

impl GitlabError {
    /// Whether retrying later, with nothing changed, can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            GitlabError::RateLimited { .. }
            | GitlabError::Throttled { .. }
            | GitlabError::Unreachable { .. }
            | GitlabError::Truncated { .. } => true,
            GitlabError::Status { status, .. } => *status >= 500,
            GitlabError::GaveUp { last, .. } => last.is_transient(),
            _ => false,
        }
    }
}

impl GovernedError for GitlabError {
    fn retry_reason(&self) -> Option<RetryReason> {
        match self {
            GitlabError::Status { status, .. } if *status >= 500 => Some(RetryReason::ServerError),
            GitlabError::Unreachable { .. } => Some(RetryReason::Network),
            GitlabError::Truncated { .. } => Some(RetryReason::Truncated),
            GitlabError::InvalidBody { .. } => Some(RetryReason::InvalidBody),
            GitlabError::Throttled { .. } => Some(RetryReason::SecondaryRateLimit),
            GitlabError::RateLimited { .. } => Some(RetryReason::RateLimit),
            _ => None,
        }
    }

    fn spent_until(&self) -> Option<i64> {
        match self {
            GitlabError::RateLimited { reset_at, .. } => reset_at.map(|at| at.0),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        None
    }

    fn cancelled() -> Self {
        GitlabError::Cancelled
    }

    fn gave_up(attempts: u32, last: Self) -> Self {
        GitlabError::GaveUp {
            attempts,
            last: Box::new(last),
        }
    }

    fn rate_limited(url: &str, _resource: &str, reset_at: Option<Timestamp>) -> Self {
        GitlabError::RateLimited {
            url: url.to_owned(),
            reset_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_url_and_hint_at_the_fix() {
        let text = GitlabError::Unauthorized {
            url: "https://gitlab.example.com/api/v4/projects/acme%2Fapi/deployments".into(),
            message: "401 Unauthorized".into(),
        }
        .to_string();
        assert!(text.contains("HTTP 401 401 Unauthorized"), "{text}");
        assert!(text.contains("gitlab.token"), "{text}");
        let limited = GitlabError::RateLimited {
            url: "u".into(),
            reset_at: Some(Timestamp(1_736_942_400)),
        };
        assert_eq!(
            limited.to_string(),
            "GitLab API rate limit reached until 2025-01-15T12:00:00Z; at u"
        );
        assert!(limited.is_transient());
        assert_eq!(limited.retry_reason(), Some(RetryReason::RateLimit));
        assert_eq!(limited.spent_until(), Some(1_736_942_400));
        let missing = GitlabError::NotFound {
            url: "u".into(),
            message: "404 Project Not Found".into(),
        };
        assert!(missing.to_string().contains("gitlab.projects[].path"));
        assert!(!missing.is_transient());
        assert_eq!(missing.retry_reason(), None);
    }
}
