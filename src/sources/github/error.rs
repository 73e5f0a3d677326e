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
//! with is held by its [`Redactor`] (a value, passed where text is cleaned, not a
//! process-global list) and replaced by [`REDACTED`] in all such text
//! ([`Redactor::clean`]) before it reaches an error, a log line or the recorded
//! sync status.
//!
//! [`Client`]: super::client::Client

use crate::domain::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock};

/// What a token echoed by the server is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Tokens shorter than this are not masked: so short a string occurs by chance in
/// ordinary messages, which masking would make unreadable, and no token GitHub
/// issues is this short (classic and fine-grained tokens have 40 or more
/// characters).
pub const MIN_MASKED_SECRET_CHARS: usize = 8;

/// The most of GitHub's error `message` repeated in an error: enough for "Bad
/// credentials" or "API rate limit exceeded for user ID 1. If you reach out...",
/// bounded because the server is untrusted input.
pub const MAX_SERVER_MESSAGE_CHARS: usize = 200;

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

/// The most of a body without a JSON `message` shown in an error: enough to
/// recognise an nginx `502 Bad Gateway` page or a proxy's one-line `503`.
pub const MAX_BODY_EXCERPT_CHARS: usize = 160;

/// The most credentials minted while running (GitHub App JWTs and installation
/// tokens) a [`Redactor`] masks at once; the oldest is forgotten first. Each
/// installation keeps one token at a time and a token lives an hour, so this
/// covers every token that can still be in use or echoed, for far more
/// installations than a configuration names.
pub const MAX_MINTED_SECRETS: usize = 256;

/// The tokens masked in server-provided text: the client's own token (or, for a
/// GitHub App, the JWTs and installation tokens minted while running), held by
/// the [`Client`](super::client::Client) that authenticates with them and passed
/// to whatever cleans text from the server. Cheap to clone (clones share what
/// they mask); the default masks nothing.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<[SecretString]>,
    /// Credentials minted since start, newest last, at most
    /// [`MAX_MINTED_SECRETS`].
    minted: Arc<RwLock<VecDeque<SecretString>>>,
}

impl Redactor {
    /// A redactor masking `secrets` (those shorter than
    /// [`MIN_MASKED_SECRET_CHARS`] are left out, see there).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Self {
        let mut kept: Vec<SecretString> = Vec::new();
        for secret in secrets {
            let exposed = secret.expose_secret();
            if exposed.chars().count() >= MIN_MASKED_SECRET_CHARS
                && !kept.iter().any(|s| s.expose_secret() == exposed)
            {
                kept.push(secret.clone());
            }
        }
        Redactor {
            secrets: kept.into(),
            minted: Arc::default(),
        }
    }

    /// Masks `secret` too from now on (a credential minted while running), in
    /// this redactor and every clone of it.
    pub(crate) fn add(&self, secret: &SecretString) {
        if secret.expose_secret().chars().count() < MIN_MASKED_SECRET_CHARS {
            return;
        }
        let mut minted = self.minted.write().unwrap_or_else(PoisonError::into_inner);
        if minted
            .iter()
            .any(|s| s.expose_secret() == secret.expose_secret())
        {
            return;
        }
        if minted.len() >= MAX_MINTED_SECRETS {
            minted.pop_front();
        }
        minted.push_back(secret.clone());
    }

    /// GitHub's error `message` (or, for a GraphQL-shaped error body, the first of
    /// its `errors[].message`), bounded and without control characters. A body with
    /// neither (an HTML page from a proxy, plain text) gives a short excerpt of
    /// itself instead ([`Redactor::body_excerpt`]), so an error is never without a
    /// message; an empty body gives an empty message.
    pub(crate) fn server_message(&self, body: &[u8]) -> String {
        let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
        let message = parsed.as_ref().and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .or_else(|| {
                    v.get("errors")
                        .and_then(|e| e.get(0))
                        .and_then(|e| e.get("message"))
                        .and_then(|m| m.as_str())
                })
                .map(str::to_owned)
        });
        match message {
            Some(message) => self.clean(&message),
            None => self.body_excerpt(body),
        }
    }

    /// A short excerpt of an untrusted body for an error message: the tokens
    /// masked, whitespace runs folded to one space, other control characters,
    /// quotes and backslashes escaped (`\u{7}`, `\"`), at most
    /// [`MAX_BODY_EXCERPT_CHARS`] characters (`…` when cut), quoted and prefixed
    /// with `body:`; empty for an empty (or all-whitespace) body.
    pub(crate) fn body_excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let folded = self
            .redact(&text)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if folded.is_empty() {
            return String::new();
        }
        let cut = folded.chars().count() > MAX_BODY_EXCERPT_CHARS;
        let mut excerpt = String::new();
        for c in folded.chars().take(MAX_BODY_EXCERPT_CHARS) {
            if c.is_control() || c == '"' || c == '\\' {
                excerpt.extend(c.escape_default());
            } else {
                excerpt.push(c);
            }
        }
        format!("body: \"{excerpt}{}\"", if cut { "…" } else { "" })
    }

    /// `text` with every token replaced by [`REDACTED`].
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let minted = self.minted.read().unwrap_or_else(PoisonError::into_inner);
        for secret in self.secrets.iter().chain(minted.iter()) {
            let exposed = secret.expose_secret();
            if out.contains(exposed) {
                out = out.replace(exposed, REDACTED);
            }
        }
        out
    }

    /// Masks the tokens in untrusted text (before cutting it, so that no prefix of
    /// a token survives), cuts it to [`MAX_SERVER_MESSAGE_CHARS`] and replaces
    /// control characters, so it is safe in one log line.
    pub(crate) fn clean(&self, text: &str) -> String {
        self.redact(text)
            .chars()
            .take(MAX_SERVER_MESSAGE_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Server text as a client with no token to mask cleans it.
    fn server_message(body: &[u8]) -> String {
        Redactor::default().server_message(body)
    }

    #[test]
    fn server_messages_are_bounded_and_single_line() {
        assert_eq!(
            server_message(br#"{"message":"Bad credentials"}"#),
            "Bad credentials"
        );
        assert_eq!(server_message(b"not json"), r#"body: "not json""#);
        assert_eq!(server_message(b""), "");
        assert_eq!(
            server_message(br#"{"data":null,"errors":[{"message":"Something went wrong"}]}"#),
            "Something went wrong"
        );
        assert_eq!(server_message(br#"{"message":"a\nb\u0007c"}"#), "a b c");
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(1000));
        assert_eq!(
            server_message(long.as_bytes()).len(),
            MAX_SERVER_MESSAGE_CHARS
        );
    }

    #[test]
    fn bodies_without_a_message_are_shown_as_a_short_escaped_excerpt() {
        let nginx = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(
            server_message(nginx),
            "body: \"<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad \
             Gateway</h1></center> <hr><center>nginx</center> </body> </html>\""
        );
        assert_eq!(
            server_message(b"upstream connect error\x07 \"x\"\n"),
            r#"body: "upstream connect error\u{7} \"x\"""#
        );
        let long = "y".repeat(1000);
        let excerpt = server_message(long.as_bytes());
        assert_eq!(
            excerpt,
            format!("body: \"{}…\"", "y".repeat(MAX_BODY_EXCERPT_CHARS))
        );
        assert_eq!(server_message(b" \r\n "), "");
        assert_eq!(
            server_message(&[0xff, 0xfe, b'a']),
            "body: \"\u{fffd}\u{fffd}a\""
        );
    }

    #[test]
    fn registered_tokens_are_masked_in_server_text_before_it_is_cut() {
        let token = "ghp_masked0123456789abcdefghijklmnopqrstu";
        let secrets = [SecretString::from(token), SecretString::from("short")];
        let redactor = Redactor::new(&secrets);
        let echoed = format!(r#"{{"message":"Bad credentials: Bearer {token}"}}"#);
        assert_eq!(
            redactor.server_message(echoed.as_bytes()),
            "Bad credentials: Bearer [REDACTED]"
        );
        // A token straddling the cut leaves no prefix behind.
        let long = format!("{}{token}", "x".repeat(MAX_SERVER_MESSAGE_CHARS - 10));
        let cleaned = redactor.clean(&long);
        assert!(!cleaned.contains(&token[..10]), "{cleaned}");
        assert!(cleaned.ends_with("[REDACTED]"), "{cleaned}");
        // Too short to mask without garbling ordinary text.
        assert_eq!(redactor.clean("a short message"), "a short message");
        // A redactor masks only its own tokens: nothing is registered for the process.
        assert_eq!(
            Redactor::default().server_message(echoed.as_bytes()),
            format!("Bad credentials: Bearer {token}")
        );
    }

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
