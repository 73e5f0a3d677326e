//! `GithubError`: why a request to the GitHub API failed, split by what the caller
//! (and the person reading the log) does about it.
//!
//! Every message names the URL it concerns (never with credentials: the token
//! travels only in the `Authorization` header, which no message includes) and, for
//! an HTTP error, the status and GitHub's own `message`, cut to
//! [`MAX_SERVER_MESSAGE_CHARS`] and stripped of control characters.
//!
//! Text that comes from the server (its `message`, a `Link` URL, an unreadable
//! item's value) is untrusted: a broken proxy or hostile server may echo the
//! request's `Authorization` header into it. The token a [`Client`] authenticates
//! with is held by its [`Redactor`] (`sources/http.rs`) and masked in all such
//! text before it reaches an error, a log line or the recorded sync status.
//!
//! [`Client`]: super::client::Client

use crate::domain::Timestamp;
use crate::sources::governor::RetryReason;
pub(crate) use crate::sources::http::Redactor;
pub use crate::sources::http::MAX_SERVER_MESSAGE_CHARS;

/// Why a GitHub API request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    /// 401: the token is wrong, expired or revoked. (With a GitHub App, a fresh
    /// installation token refused as well: see [`GithubError::InstallationRevoked`].)
    #[error(
        "GitHub rejected the token (HTTP 401 {message}) at {url}; check github.token \
         (the token itself is never shown)"
    )]
    Unauthorized { url: String, message: String },

    /// 403 that is not a rate limit: the token lacks a permission or scope. Names
    /// the repository, the endpoint and the permission that endpoint needs.
    #[error(
        "access denied (HTTP 403 {message}) to {endpoint} of repository {repository}: the \
         token needs the \"{permission}\" repository permission (fine-grained token) or the \
         repo scope (classic token); at {url}"
    )]
    Forbidden {
        url: String,
        message: String,
        /// `owner/name` as it appears in the URL.
        repository: String,
        /// The endpoint's route template.
        endpoint: &'static str,
        /// The fine-grained permission the endpoint needs, e.g. `Deployments: read`.
        permission: &'static str,
    },

    /// 404: no such repository (or the token cannot see it; GitHub answers 404 for
    /// private repositories it hides), or no such object.
    #[error(
        "not found (HTTP 404) at {url}: check the repository name and that the token can \
         read it"
    )]
    NotFound { url: String },

    /// The primary or secondary rate limit is spent; no request is sent until
    /// `reset_at`.
    #[error("GitHub API rate limit exhausted (resource {resource}){}; at {url}", reset_text(.reset_at))]
    RateLimited {
        url: String,
        resource: String,
        reset_at: Option<Timestamp>,
    },

    /// A secondary rate limit (403 or 429 with `retry-after` or GitHub's "secondary
    /// rate limit" message): the token sent too much too fast; every request of
    /// the token waits before the next one is sent.
    #[error("GitHub secondary rate limit (HTTP {status} {message}){}; at {url}", retry_text(.retry_after))]
    SecondaryRateLimited {
        url: String,
        status: u16,
        message: String,
        /// The `retry-after` header, in seconds, when there was one.
        retry_after: Option<u64>,
    },

    /// A request was retried as often as the retry policy allows and still
    /// failed; `last` is the last failure.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<GithubError>,
    },

    /// GitHub did not answer in time: any `504`, a `502` with GitHub's "We
    /// couldn't respond to your request in time", or a GraphQL answer whose
    /// errors say the query timed out ("Something went wrong while executing your
    /// query. This may be the result of a timeout…"). Retried; a GraphQL query
    /// that keeps timing out asks for smaller pages.
    #[error("GitHub did not answer in time (HTTP {status} {message}); at {url}")]
    Timeout {
        url: String,
        status: u16,
        message: String,
    },

    /// A GraphQL answer without data whose errors carry no type, no code and no
    /// location: GitHub failed to execute a valid query this time. Retried.
    #[error("GitHub could not execute the GraphQL query ({message}); at {url}")]
    GraphqlTransient { url: String, message: String },

    /// Any other HTTP status.
    #[error("HTTP {status} {message} at {url}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },

    /// No HTTP response at all: DNS, connection refused, TLS, timeout.
    #[error("cannot reach the GitHub API at {url}: {cause}")]
    Unreachable { url: String, cause: String },

    /// The connection broke while the body was being read (a truncated response).
    #[error("the response from {url} was cut short: {cause}")]
    Truncated { url: String, cause: String },

    /// The response body was larger than the bound.
    #[error("the response from {url} is larger than {limit} bytes; refusing to read it")]
    TooLarge { url: String, limit: usize },

    /// The response body is not the JSON document the endpoint returns.
    #[error("unexpected response from {url}: {reason}")]
    InvalidBody { url: String, reason: String },

    /// A list had more pages than the bound (a loop in `Link` headers, or far more
    /// data than a DORA collector reads).
    #[error("{url} has more than {limit} pages; stopped reading")]
    TooManyPages { url: String, limit: usize },

    /// A `Link: rel="next"` pointing away from the configured API (it would not
    /// carry the token, and we do not follow it).
    #[error("the next page of a list points outside github.api_url: {url}")]
    ForeignLink { url: String },

    /// A GraphQL answer with `errors` about the query itself (a repository not
    /// found, a field not allowed, a schema error): retrying cannot help.
    #[error("GitHub GraphQL error at {url}: {message}")]
    Graphql { url: String, message: String },

    /// `github.api_url` or a URL built from it is not a valid request URI.
    #[error("invalid request URL {url}")]
    InvalidUrl { url: String },

    /// The token cannot be sent as an HTTP header value.
    #[error(
        "github.token contains characters that cannot be sent in an HTTP header \
         (the token itself is never shown)"
    )]
    InvalidToken,

    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for {url}: {cause}")]
    Client { url: String, cause: String },

    /// The GitHub App is not installed on the account (404 to its installation
    /// lookup), or its installation cannot see the repository.
    #[error(
        "the GitHub App (github.app_id {app_id}) is not installed on {account} or cannot see \
         it (HTTP 404 at {url}): install the App on {account} with access to its repositories \
         (docs/github-app.md)"
    )]
    NotInstalled {
        url: String,
        app_id: u64,
        /// The organisation, or `owner/name` for a repository.
        account: String,
    },

    /// An installation of the App could not get a token any more: it was
    /// removed, suspended, or lost access (404, 403 or 422 to the token
    /// request). The installation is looked up again on the next sync.
    #[error(
        "the GitHub App's installation {installation_id} on {account} refused a token (HTTP \
         {status} {message}) at {url}: it was removed, suspended or lost its permissions; \
         reinstall the App on {account} (the other organisations go on)"
    )]
    InstallationRevoked {
        url: String,
        installation_id: u64,
        account: String,
        status: u16,
        message: String,
    },

    /// 401 to a request signed with the App's JWT: the App id or the private key
    /// is not the App's.
    #[error(
        "GitHub rejected the App's signed JWT (HTTP 401 {message}) at {url}: check \
         github.app_id and that the private key is the App's current one (the key itself is \
         never shown)"
    )]
    AppRejected { url: String, message: String },

    /// Shutdown stopped the request.
    #[error("stopped by shutdown")]
    Cancelled,
}

fn retry_text(retry_after: &Option<u64>) -> String {
    match retry_after {
        Some(seconds) => format!(", retry after {seconds} s"),
        None => String::new(),
    }
}

fn reset_text(reset_at: &Option<Timestamp>) -> String {
    match reset_at {
        Some(at) => format!(" until {at}"),
        None => String::new(),
    }
}

impl crate::sources::governor::GovernedError for GithubError {
    fn retry_reason(&self) -> Option<RetryReason> {
        match self {
            GithubError::Status { status, .. } if *status >= 500 => Some(RetryReason::ServerError),
            GithubError::Unreachable { .. } => Some(RetryReason::Network),
            GithubError::Truncated { .. } => Some(RetryReason::Truncated),
            GithubError::InvalidBody { .. } => Some(RetryReason::InvalidBody),
            GithubError::SecondaryRateLimited { .. } => Some(RetryReason::SecondaryRateLimit),
            GithubError::RateLimited { .. } => Some(RetryReason::RateLimit),
            GithubError::Timeout { .. } => Some(RetryReason::Timeout),
            GithubError::GraphqlTransient { .. } => Some(RetryReason::GraphqlError),
            _ => None,
        }
    }

    fn spent_until(&self) -> Option<i64> {
        match self {
            GithubError::RateLimited { reset_at, .. } => reset_at.map(|at| at.0),
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

impl GithubError {
    /// Whether retrying later, with nothing changed, can succeed (rate limits,
    /// network trouble, server errors), as opposed to a configuration problem.
    pub fn is_transient(&self) -> bool {
        match self {
            GithubError::RateLimited { .. }
            | GithubError::SecondaryRateLimited { .. }
            | GithubError::Unreachable { .. }
            | GithubError::Truncated { .. }
            | GithubError::Timeout { .. }
            | GithubError::GraphqlTransient { .. } => true,
            GithubError::Status { status, .. } => *status >= 500,
            GithubError::GaveUp { last, .. } => last.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_url_and_hint_at_the_fix() {
        let error = GithubError::Unauthorized {
            url: "https://api.github.com/repos/acme/api/deployments?per_page=100".into(),
            message: "Bad credentials".into(),
        };
        let text = error.to_string();
        assert!(text.contains("HTTP 401 Bad credentials"), "{text}");
        assert!(text.contains("/repos/acme/api/deployments"), "{text}");
        assert!(text.contains("github.token"), "{text}");
        let limited = GithubError::RateLimited {
            url: "u".into(),
            resource: "core".into(),
            reset_at: Some(Timestamp(1_736_942_400)),
        };
        assert_eq!(
            limited.to_string(),
            "GitHub API rate limit exhausted (resource core) until 2025-01-15T12:00:00Z; at u"
        );
        assert!(limited.is_transient());
        assert!(!error.is_transient());
    }
}
