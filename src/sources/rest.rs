//! The HTTP client of the sources that read one JSON document per GET with a
//! fixed credential: Argo CD (a bearer token) and Jenkins (a user and an API
//! token as basic authentication). One [`RestClient`] per configured server.
//!
//! Every GET goes through a [`Governor`] (the GitHub client's: bounded retries
//! with backoff and jitter for `5xx`, resets, timeouts, cut or garbled bodies;
//! a `429` pauses every request for its `Retry-After`; one request in flight),
//! reads a bounded body and checks that a `2xx` body is JSON, so a truncated
//! answer is retried rather than read as a short list. Requests are counted per
//! endpoint template and status for the health metrics. Redirects are not
//! followed (the credential would go where the configuration did not say):
//! a `3xx` is an error naming where it pointed.
//!
//! The credential lives in one `Authorization` header value marked sensitive;
//! server text that might echo it (error messages, bodies) has the token (and
//! the header's encoded form) masked before it reaches an error or a log.
//!
//! Not here: what a response means (`argocd`, `jenkins`), scheduling.

use crate::domain::RepoName;
use crate::domain::Timestamp;
use crate::sources::governor::{
    Attempt, GovernedError, Governor, GovernorHealth, RetryPolicy, RetryReason,
};
use crate::sources::{ApiHealth, ApiRequests, HistoryGaps};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, LOCATION, RETRY_AFTER};
use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The largest response body read. An Argo CD application with thousands of
/// resources in its status is a few megabytes; a page of 100 Jenkins builds
/// with their actions far less. Beyond this is not an answer worth reading, and
/// the bound keeps a broken or hostile server from filling memory.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The most of an error body read (for its message).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How long connecting may take before the request fails as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read on the connection may stall (a Jenkins busy with a large
/// `allBuilds` page can take several seconds).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub use crate::sources::http::MAX_SERVER_MESSAGE_CHARS;
use crate::sources::http::{MIN_MASKED_SECRET_CHARS, REDACTED};

/// The governor's resource name for these servers (they report no rate-limit
/// budget; only `429` pauses them).
const RESOURCE: &str = "api";

/// The longest `Retry-After` honoured from a `429` (beyond, the governor gives
/// up the request and the next cycle tries again).
const MAX_RETRY_AFTER_SECONDS: u64 = 3600;

/// How a client authenticates.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer TOKEN` (Argo CD).
    Bearer(SecretString),
    /// `Authorization: Basic base64(USER:TOKEN)`, sent with every request
    /// (Jenkins does not negotiate).
    Basic { user: String, token: SecretString },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer([REDACTED])"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, [REDACTED])"),
        }
    }
}

/// Why a request failed. Messages name the server kind and the URL, never the
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// 401: the credential is wrong, expired or revoked.
    #[error(
        "{server} rejected the credentials (HTTP 401 {message}) at {url}; check {key} \
         (the token itself is never shown)"
    )]
    Unauthorized {
        server: &'static str,
        key: &'static str,
        url: String,
        message: String,
    },
    /// 403: not allowed (or, on Argo CD, no such application).
    #[error("access denied (HTTP 403 {message}) at {url}: {hint}")]
    Forbidden {
        url: String,
        message: String,
        hint: &'static str,
    },
    /// 404: no such object.
    #[error("not found (HTTP 404) at {url}: {hint}")]
    NotFound { url: String, hint: &'static str },
    /// 429: too many requests; every request waits `retry_after` seconds.
    #[error("{server} answered HTTP 429 Too Many Requests{}; at {url}", retry_text(.retry_after))]
    Throttled {
        server: &'static str,
        url: String,
        retry_after: Option<u64>,
    },
    /// The governor would wait longer than its bound for a `429` to pass.
    #[error("{server} asked to slow down{}; at {url}", until_text(.until))]
    Paused {
        server: &'static str,
        url: String,
        until: Option<Timestamp>,
    },
    /// A redirect (not followed: the credential would go along).
    #[error("{url} redirects (HTTP {status}) to {location}; configure that URL instead")]
    Redirected {
        url: String,
        status: u16,
        location: String,
    },
    /// Any other HTTP status.
    #[error("HTTP {status} {message} at {url}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// No response: DNS, connection refused or reset, TLS, timeout.
    #[error("cannot reach {server} at {url}: {cause}")]
    Unreachable {
        server: &'static str,
        url: String,
        cause: String,
    },
    /// The connection broke while the body was read.
    #[error("the response from {url} was cut short: {cause}")]
    Truncated { url: String, cause: String },
    /// The body was larger than [`MAX_RESPONSE_BYTES`].
    #[error("the response from {url} is larger than {limit} bytes; refusing to read it")]
    TooLarge { url: String, limit: usize },
    /// A `2xx` whose body is not JSON (a login page from a proxy, a cut body).
    #[error("unexpected response from {url}: {reason}")]
    InvalidBody { url: String, reason: String },
    /// Retried as often as the policy allows; `last` is the last failure.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { attempts: u32, last: Box<RestError> },
    /// The HTTP client or the credential header could not be set up.
    #[error("cannot set up the {server} client: {cause} (no token is shown)")]
    Setup { server: &'static str, cause: String },
    /// Shutdown stopped the request.
    #[error("stopped by shutdown")]
    Cancelled,
}

fn retry_text(retry_after: &Option<u64>) -> String {
    retry_after.map_or_else(String::new, |s| format!(", retry after {s} s"))
}

fn until_text(until: &Option<Timestamp>) -> String {
    until.map_or_else(String::new, |at| format!(" until {at}"))
}

impl RestError {
    /// The HTTP status behind this error, if one came back.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Unauthorized { .. } => Some(401),
            RestError::Forbidden { .. } => Some(403),
            RestError::NotFound { .. } => Some(404),
            RestError::Throttled { .. } => Some(429),
            RestError::Redirected { status, .. } | RestError::Status { status, .. } => {
                Some(*status)
            }
            RestError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }
}

impl GovernedError for RestError {
    fn retry_reason(&self) -> Option<RetryReason> {
        match self {
            RestError::Status { status, .. } if *status >= 500 => Some(RetryReason::ServerError),
            RestError::Unreachable { .. } => Some(RetryReason::Network),
            RestError::Truncated { .. } => Some(RetryReason::Truncated),
            RestError::InvalidBody { .. } => Some(RetryReason::InvalidBody),
            RestError::Throttled { .. } => Some(RetryReason::SecondaryRateLimit),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            RestError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn spent_until(&self) -> Option<i64> {
        None
    }

    fn cancelled() -> Self {
        RestError::Cancelled
    }

    fn gave_up(attempts: u32, last: Self) -> Self {
        RestError::GaveUp {
            attempts,
            last: Box::new(last),
        }
    }

    fn rate_limited(url: &str, _resource: &str, reset_at: Option<Timestamp>) -> Self {
        RestError::Paused {
            server: "the server",
            url: url.to_owned(),
            until: reset_at,
        }
    }
}

/// What a client says in its errors: its server kind, the configuration key
/// of its token, and the hints of a `403` and a `404`.
#[derive(Debug, Clone, Copy)]
pub struct ServerKind {
    /// `argocd`, `jenkins`.
    pub server: &'static str,
    /// `argocd.token`, `jenkins.token`.
    pub token_key: &'static str,
    /// Said with a `403`.
    pub forbidden_hint: &'static str,
    /// Said with a `404`.
    pub not_found_hint: &'static str,
}

#[derive(Default)]
struct Stats {
    requests: BTreeMap<(&'static str, String), u64>,
}

/// The client of one Argo CD or Jenkins server.
pub struct RestClient {
    kind: ServerKind,
    http: reqwest::Client,
    base: String,
    authorization: HeaderValue,
    /// The token and the header's encoded credential: masked in server text.
    secrets: Vec<SecretString>,
    governor: Governor,
    stats: Mutex<Stats>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("source", &self.kind.server)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RestClient {
    /// A client of the server at `base` (its trailing `/` dropped) with `auth`,
    /// retrying by `policy`. No request is made here.
    pub fn new(
        kind: ServerKind,
        base: &url::Url,
        auth: &Auth,
        policy: RetryPolicy,
    ) -> Result<RestClient, RestError> {
        let setup = |cause: &str| RestError::Setup {
            server: kind.server,
            cause: cause.to_owned(),
        };
        let (value, secrets) = match auth {
            Auth::Bearer(token) => (
                format!("Bearer {}", token.expose_secret()),
                vec![token.clone()],
            ),
            Auth::Basic { user, token } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", token.expose_secret()));
                (
                    format!("Basic {encoded}"),
                    vec![token.clone(), SecretString::from(encoded)],
                )
            }
        };
        let mut authorization = HeaderValue::from_str(&value)
            .map_err(|_| setup("the token cannot be sent in an HTTP header"))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dora-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(&e.to_string()))?;
        Ok(RestClient {
            kind,
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            authorization,
            secrets,
            governor: Governor::new(policy),
            stats: Mutex::new(Stats::default()),
        })
    }

    /// The server's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `text` with the credential masked.
    pub fn clean(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            let secret = secret.expose_secret();
            if secret.chars().count() >= MIN_MASKED_SECRET_CHARS {
                text = text.replace(secret, REDACTED);
            }
        }
        text
    }

    /// GETs the JSON document at `url`, counted under `endpoint` (a route
    /// template), through the governor.
    pub async fn get(
        &self,
        endpoint: &'static str,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Bytes, RestError> {
        let result = self
            .governor
            .send(RESOURCE, url, cancel, || {
                self.get_once(endpoint, url, cancel)
            })
            .await;
        result.map_err(|error| match error {
            RestError::Paused { url, until, .. } => RestError::Paused {
                server: self.kind.server,
                url,
                until,
            },
            other => other,
        })
    }

    fn count(&self, endpoint: &'static str, status: &str) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        *stats
            .requests
            .entry((endpoint, status.to_owned()))
            .or_default() += 1;
    }

    async fn get_once(
        &self,
        endpoint: &'static str,
        url: &str,
        cancel: &CancellationToken,
    ) -> Attempt<Bytes, RestError> {
        let failed = |error| Attempt {
            headers: None,
            result: Err(error),
        };
        let request = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .send();
        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => return failed(RestError::Cancelled),
            response = request => response,
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.count(endpoint, "error");
                return failed(RestError::Unreachable {
                    server: self.kind.server,
                    url: url.to_owned(),
                    cause: self.clean(&error_chain(&error)),
                });
            }
        };
        let status = response.status();
        self.count(endpoint, status.as_str());
        let headers = response.headers().clone();
        let result = self.read(status, response, url, cancel).await;
        Attempt {
            headers: Some(headers),
            result,
        }
    }

    /// What an answer with `status` means, reading its body.
    async fn read(
        &self,
        status: StatusCode,
        mut response: reqwest::Response,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Bytes, RestError> {
        let limit = if status.is_success() {
            MAX_RESPONSE_BYTES
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let mut body = Vec::new();
        let mut complete = true;
        loop {
            let chunk = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(RestError::Cancelled),
                chunk = response.chunk() => chunk,
            };
            match chunk {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        complete = false;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) if status.is_success() => {
                    return Err(RestError::Truncated {
                        url: url.to_owned(),
                        cause: self.clean(&error_chain(&error)),
                    })
                }
                // An error page cut short still says what it was.
                Err(_) => break,
            }
        }
        if status.is_success() {
            if !complete {
                return Err(RestError::TooLarge {
                    url: url.to_owned(),
                    limit,
                });
            }
            if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                return Err(RestError::InvalidBody {
                    url: url.to_owned(),
                    reason: format!("not JSON: {error}"),
                });
            }
            return Ok(Bytes::from(body));
        }
        let headers = response.headers();
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let url = url.to_owned();
        let message = self.server_message(&body);
        Err(match status {
            StatusCode::UNAUTHORIZED => RestError::Unauthorized {
                server: self.kind.server,
                key: self.kind.token_key,
                url,
                message,
            },
            StatusCode::FORBIDDEN => RestError::Forbidden {
                url,
                message,
                hint: self.kind.forbidden_hint,
            },
            StatusCode::NOT_FOUND => RestError::NotFound {
                url,
                hint: self.kind.not_found_hint,
            },
            StatusCode::TOO_MANY_REQUESTS => RestError::Throttled {
                server: self.kind.server,
                url,
                retry_after: header(RETRY_AFTER)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| s.min(MAX_RETRY_AFTER_SECONDS)),
            },
            _ if status.is_redirection() => RestError::Redirected {
                url,
                status: status.as_u16(),
                location: self.clean(&bounded(header(LOCATION).unwrap_or("(no Location)"))),
            },
            _ => RestError::Status {
                url,
                status: status.as_u16(),
                message,
            },
        })
    }

    /// The server's own message: Argo CD's JSON `message` (or `error`), or a
    /// bounded excerpt of an HTML or text page, masked and without control
    /// characters.
    fn server_message(&self, body: &[u8]) -> String {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let text = json
            .as_ref()
            .and_then(|v| v.get("message").or_else(|| v.get("error")))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                // The text of an HTML page without its tags.
                let mut plain = String::new();
                let mut in_tag = false;
                for c in text.chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' => {
                            in_tag = false;
                            plain.push(' ');
                        }
                        _ if !in_tag => plain.push(c),
                        _ => {}
                    }
                }
                plain.split_whitespace().collect::<Vec<_>>().join(" ")
            });
        self.clean(&bounded(&text))
    }

    /// The source's API health: this client's requests, waits and retries,
    /// with the items `skipped` per repository and the history gaps `gaps` per
    /// application its source counted.
    pub fn api_health(
        &self,
        skipped: &Mutex<BTreeMap<RepoName, u64>>,
        gaps: Vec<HistoryGaps>,
    ) -> ApiHealth {
        let (requests, governor) = self.health();
        ApiHealth::from_governor(requests, governor, skipped, gaps)
    }

    /// Requests so far by endpoint and status (sorted), and the governor's
    /// waits and retries.
    pub fn health(&self) -> (Vec<ApiRequests>, GovernorHealth) {
        let stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        let requests = stats
            .requests
            .iter()
            .map(|((endpoint, status), count)| ApiRequests {
                endpoint: (*endpoint).to_owned(),
                status: status.clone(),
                count: *count,
            })
            .collect();
        (requests, self.governor.health())
    }
}

/// Whether `url` (an Argo CD `repoURL`, a git remote of a Jenkins build)
/// names `repository`: its path ends in `owner/name`, with or without `.git`,
/// case-insensitively, on any host (github.com, GitHub Enterprise, SSH).
pub fn url_names(url: &str, repository: &crate::domain::RepoName) -> bool {
    let url = url.trim().trim_end_matches('/').to_ascii_lowercase();
    let url = url.strip_suffix(".git").unwrap_or(&url);
    let wanted = repository.as_str().to_ascii_lowercase();
    url.len() > wanted.len()
        && url.ends_with(&wanted)
        && url[..url.len() - wanted.len()].ends_with(['/', ':'])
}

/// An error and its causes on one line, bounded (reqwest's errors keep the
/// interesting part, "connection refused", in their sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    /// Long enough for reqwest's "error sending request for url (…): client
    /// error (Connect): tcp connect error: Connection refused (os error 111)".
    const MAX_CHAIN_CHARS: usize = 600;
    text.chars()
        .take(MAX_CHAIN_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` cut to [`MAX_SERVER_MESSAGE_CHARS`], control characters as spaces.
fn bounded(text: &str) -> String {
    text.chars()
        .take(MAX_SERVER_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: ServerKind = ServerKind {
        server: "jenkins",
        token_key: "jenkins.token",
        forbidden_hint: "the user needs Overall/Read and Job/Read",
        not_found_hint: "no such job",
    };

    fn client(auth: Auth) -> RestClient {
        let base = url::Url::parse("http://127.0.0.1:1/jenkins/").unwrap();
        RestClient::new(KIND, &base, &auth, RetryPolicy::default()).unwrap()
    }

    #[tokio::test]
    async fn the_credential_is_masked_in_server_text_and_never_debug_printed() {
        let token = "0123456789abcdef0123";
        let client = client(Auth::Basic {
            user: "dora".into(),
            token: SecretString::from(token),
        });
        assert_eq!(client.base(), "http://127.0.0.1:1/jenkins");
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("dora:{token}"));
        let echoed = format!("<html><body>Bad header Basic {encoded} for {token}</body></html>");
        let message = client.server_message(echoed.as_bytes());
        assert!(
            !message.contains(token) && !message.contains(&encoded),
            "{message}"
        );
        assert!(
            message.starts_with("Bad header Basic [REDACTED]"),
            "{message}"
        );
        let debug = format!("{client:?} {:?}", Auth::Bearer(SecretString::from(token)));
        assert!(!debug.contains(token), "{debug}");
        assert_eq!(
            client.server_message(
                br#"{"error":"permission denied","code":7,"message":"permission denied"}"#
            ),
            "permission denied"
        );
        assert_eq!(client.server_message(&b"x\n".repeat(500)).len(), 199);
    }

    #[tokio::test]
    async fn an_unusable_token_is_refused_without_showing_it() {
        let base = url::Url::parse("http://127.0.0.1:1").unwrap();
        let error = RestClient::new(
            KIND,
            &base,
            &Auth::Bearer(SecretString::from("bad\ntoken-secret")),
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert!(!error.to_string().contains("token-secret"), "{error}");
    }

    #[test]
    fn urls_name_a_repository_by_their_path_on_any_host() {
        let repo = crate::domain::RepoName::parse("acme/api").unwrap();
        assert!(url_names("https://github.com/Acme/API.git", &repo));
        assert!(url_names("git@github.com:acme/api.git", &repo));
        assert!(url_names("https://ghe.example.com/acme/api/", &repo));
        assert!(!url_names("https://github.com/acme/api-config.git", &repo));
        assert!(!url_names("https://github.com/notacme/api.git", &repo));
        assert!(!url_names("acme/api", &repo));
    }

    #[test]
    fn errors_say_whether_a_retry_can_help() {
        let url = "http://x/".to_owned();
        let status = |status| RestError::Status {
            url: url.clone(),
            status,
            message: String::new(),
        };
        assert_eq!(status(503).retry_reason(), Some(RetryReason::ServerError));
        assert_eq!(status(400).retry_reason(), None);
        let throttled = RestError::Throttled {
            server: "argocd",
            url: url.clone(),
            retry_after: Some(3),
        };
        assert_eq!(
            throttled.retry_reason(),
            Some(RetryReason::SecondaryRateLimit)
        );
        assert_eq!(throttled.retry_after(), Some(3));
        assert_eq!(
            RestError::NotFound {
                url: url.clone(),
                hint: "x"
            }
            .retry_reason(),
            None
        );
        let gave_up = RestError::gave_up(6, status(502));
        assert_eq!(gave_up.status(), Some(502));
        assert!(gave_up.to_string().ends_with("(gave up after 6 attempts)"));
    }
}
