//! The HTTP layer of the GitHub source: one `Octocrab` (base URI = `github.api_url`,
//! the personal token) used through its generic GET, plus what octocrab leaves to
//! us: bounded response bodies, `Link` pagination, conditional requests (`ETag` →
//! `If-None-Match` → a free 304), status codes mapped to [`GithubError`], request
//! counts per endpoint template and status, and the rate limit the server reports.
//!
//! octocrab has no Deployments API and its typed models are strict, so we only use
//! its transport (auth header, base URI, timeouts, TLS) and read raw bytes. Its
//! types never leave this module.
//!
//! Every GET goes through the token's [`Governor`] (rate limits, retries,
//! concurrency): one attempt is [`Client::fetch_once`], which also checks that a
//! 2xx body parses as JSON, so a truncated or garbled page is retried rather than
//! read as an empty or partial list.
//!
//! Not here: what a response means (the endpoint modules decide), the retry and
//! wait policy (`governor.rs`), and retries across cycles (a failed sync is
//! retried by the next cycle from the stored cursors).

use super::error::{clean, server_message, GithubError};
use super::governor::{
    Attempt, Governor, GovernorHealth, RetryPolicy, CORE_RESOURCE, GRAPHQL_RESOURCE,
};
use crate::exporter::ApiRequests;
use axum::body::Bytes;
use http::header::{HeaderMap, HeaderValue, ACCEPT, ETAG, IF_NONE_MATCH, LINK, RETRY_AFTER};
use http::StatusCode;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Items per page: GitHub's maximum, so a list costs as few requests as possible.
pub const PER_PAGE: u32 = 100;

/// The largest response body read. A page of 100 workflow runs (each embedding two
/// repository objects) is about 2 MB; a compare page of 100 commits far less.
/// Anything beyond this is not a GitHub list page, and the bound keeps a hostile
/// or broken server from filling memory.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The most of an error response body read (for its `message`).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The most pages read from one list. 1000 pages of 100 items is far beyond any
/// DORA-relevant list of one repository; more means a loop in `Link` headers.
pub const MAX_PAGES: usize = 1000;

/// How long connecting may take before the request fails as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read on the connection may stall. GitHub answers list requests in
/// well under a second; a minute covers a slow GitHub Enterprise Server.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Separates the token fingerprint from the `ETag` in a stored cursor value
/// (ETags are quoted strings without spaces).
const ETAG_SEPARATOR: char = ' ';

/// Domain separation for [`token_fingerprint`]: the hash of a token here is never
/// the plain SHA-256 of the token someone could look up elsewhere.
const FINGERPRINT_CONTEXT: &[u8] = b"dora-collector etag owner v1\0";

/// Hex digits of the fingerprint kept: 64 bits tell tokens apart and say nothing
/// about a token (a high-entropy secret; a one-way hash, truncated).
const FINGERPRINT_HEX_DIGITS: usize = 16;

/// A one-way fingerprint of `token`, stored next to ETags so that a changed token
/// does not reuse the old token's ETags. Never logged or exported.
fn token_fingerprint(token: &SecretString) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(FINGERPRINT_CONTEXT);
    hasher.update(token.expose_secret().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..FINGERPRINT_HEX_DIGITS].to_owned()
}

/// The media type GitHub recommends for the REST API.
const GITHUB_JSON: &str = "application/vnd.github+json";

/// The endpoints the source reads, as the bounded `endpoint` label of the health
/// metrics (a route template, never a concrete URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Deployments,
    DeploymentStatuses,
    WorkflowRuns,
    Compare,
    Issues,
    Pulls,
    PullCommits,
    /// The pull requests of a commit (PR-based lead-time starts).
    CommitPulls,
    /// `POST /graphql` (deployments with their statuses, commit history).
    Graphql,
}

impl Endpoint {
    /// The fine-grained repository permission the endpoint needs (named in the
    /// error of a plain 403).
    pub const fn permission(self) -> &'static str {
        match self {
            Endpoint::Deployments | Endpoint::DeploymentStatuses => "Deployments: read",
            Endpoint::WorkflowRuns => "Actions: read",
            Endpoint::Compare => "Contents: read",
            Endpoint::Issues => "Issues: read",
            Endpoint::Pulls | Endpoint::PullCommits | Endpoint::CommitPulls => {
                "Pull requests: read"
            }
            Endpoint::Graphql => "Deployments: read and Contents: read",
        }
    }

    pub const fn template(self) -> &'static str {
        match self {
            Endpoint::Deployments => "/repos/{owner}/{repo}/deployments",
            Endpoint::DeploymentStatuses => {
                "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"
            }
            Endpoint::WorkflowRuns => "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
            Endpoint::Compare => "/repos/{owner}/{repo}/compare/{basehead}",
            Endpoint::Issues => "/repos/{owner}/{repo}/issues",
            Endpoint::Pulls => "/repos/{owner}/{repo}/pulls",
            Endpoint::PullCommits => "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
            Endpoint::CommitPulls => "/repos/{owner}/{repo}/commits/{commit_sha}/pulls",
            Endpoint::Graphql => "/graphql",
        }
    }
}

/// What one GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the `If-None-Match` ETag still matches; nothing changed.
    NotModified,
    /// 2xx with its body, the `rel="next"` URL and the `ETag`.
    Page {
        body: Bytes,
        next: Option<String>,
        etag: Option<String>,
    },
}

#[derive(Debug, Default)]
struct Stats {
    requests: BTreeMap<(&'static str, String), u64>,
}

/// The GitHub REST client: shared by every repository sync of the source.
pub struct Client {
    octocrab: Octocrab,
    /// `github.api_url` without a trailing slash: paths are appended to it.
    base: String,
    origin: url::Origin,
    stats: Mutex<Stats>,
    /// Rate limits, retries and concurrency of this client's token.
    governor: Governor,
    /// Which token stored ETags belong to: see [`token_fingerprint`].
    token_fingerprint: String,
    /// Where GraphQL queries go (see [`graphql_url`]).
    graphql_url: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `api_url` authenticating with `token`, with
    /// `policy` for retries and rate-limit waits (`RetryPolicy::default()` in
    /// production). Must be called within a tokio runtime (octocrab spawns its
    /// connection buffer).
    pub fn with_policy(
        api_url: &url::Url,
        token: &SecretString,
        policy: RetryPolicy,
    ) -> Result<Client, GithubError> {
        let base = api_url.as_str().trim_end_matches('/').to_owned();
        // octocrab turns the token into a header value and panics if it cannot;
        // check first (the configuration rejects whitespace, not every non-ASCII).
        if HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).is_err() {
            return Err(GithubError::InvalidToken);
        }
        let client_error = |cause: String| GithubError::Client {
            url: base.clone(),
            cause,
        };
        let octocrab = Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(|_| GithubError::InvalidUrl { url: base.clone() })?
            .personal_token(token.clone())
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .build()
            .map_err(|e| client_error(error_chain(&e)))?;
        Ok(Client {
            graphql_url: graphql_url(&base),
            octocrab,
            origin: api_url.origin(),
            base,
            stats: Mutex::new(Stats::default()),
            governor: Governor::new(policy),
            token_fingerprint: token_fingerprint(token),
        })
    }

    /// An `ETag` as stored in a cursor: tagged with this client's token
    /// fingerprint, because GitHub's ETags vary with the token (`Vary:
    /// Authorization`), so one token's ETag must never be sent with another.
    pub fn etag_to_store(&self, etag: &str) -> String {
        format!("{}{ETAG_SEPARATOR}{etag}", self.token_fingerprint)
    }

    /// The `ETag` to send from a stored cursor value: only when it was stored
    /// under this client's token (after a token change, or from a version that
    /// did not tag ETags, the first page is read in full once and the new ETag
    /// stored).
    pub fn etag_from_store<'a>(&self, stored: &'a str) -> Option<&'a str> {
        let (fingerprint, etag) = stored.split_once(ETAG_SEPARATOR)?;
        (fingerprint == self.token_fingerprint && !etag.is_empty()).then_some(etag)
    }

    /// Where GraphQL queries go.
    pub fn graphql_url(&self) -> &str {
        &self.graphql_url
    }

    /// `github.api_url` without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One GET of `url` (absolute, under `github.api_url`), counted under
    /// `endpoint`, through the governor (waits for rate limits, retries transient
    /// failures). With `if_none_match`, a 304 means nothing changed.
    pub async fn fetch(
        &self,
        endpoint: Endpoint,
        url: &str,
        if_none_match: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Fetched, GithubError> {
        let uri: http::Uri = url.parse().map_err(|_| GithubError::InvalidUrl {
            url: url.to_owned(),
        })?;
        let uri = &uri;
        self.governor
            .send(CORE_RESOURCE, url, cancel, || {
                self.fetch_once(endpoint, uri, url, if_none_match, cancel)
            })
            .await
    }

    /// One GraphQL query through the governor (charged to the `graphql` budget):
    /// the answer's `data`. An answer with `errors` is an error: rate limited
    /// (GitHub's `RATE_LIMITED`, waited out like a REST limit) or
    /// [`GithubError::Graphql`] naming GitHub's first message.
    pub async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
        cancel: &CancellationToken,
    ) -> Result<serde_json::Value, GithubError> {
        let url = self.graphql_url.as_str();
        let uri: http::Uri = url.parse().map_err(|_| GithubError::InvalidUrl {
            url: url.to_owned(),
        })?;
        let body = serde_json::json!({ "query": query, "variables": variables });
        let (uri, body) = (&uri, &body);
        self.governor
            .send(GRAPHQL_RESOURCE, url, cancel, || {
                self.graphql_once(uri, url, body, cancel)
            })
            .await
    }

    /// One attempt of [`Client::graphql`].
    async fn graphql_once(
        &self,
        uri: &http::Uri,
        url: &str,
        body: &serde_json::Value,
        cancel: &CancellationToken,
    ) -> Attempt<serde_json::Value> {
        let request = self.octocrab._post(uri.clone(), Some(body));
        let attempt = self.exchange(Endpoint::Graphql, request, url, cancel).await;
        let result = match (attempt.result, &attempt.headers) {
            (Ok(Fetched::Page { body, .. }), Some(headers)) => graphql_data(&body, headers, url),
            (Ok(_), _) => Err(GithubError::InvalidBody {
                url: url.to_owned(),
                reason: "304 to a GraphQL query".to_owned(),
            }),
            (Err(error), _) => Err(error),
        };
        Attempt {
            headers: attempt.headers,
            result,
        }
    }

    /// One attempt of [`Client::fetch`]: the response's headers and its meaning.
    async fn fetch_once(
        &self,
        endpoint: Endpoint,
        uri: &http::Uri,
        url: &str,
        if_none_match: Option<&str>,
        cancel: &CancellationToken,
    ) -> Attempt<Fetched> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(GITHUB_JSON));
        if let Some(tag) = if_none_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(IF_NONE_MATCH, tag);
        }
        let request = self.octocrab._get_with_headers(uri.clone(), Some(headers));
        self.exchange(endpoint, request, url, cancel).await
    }

    /// Sends `request` (counted under `endpoint`; given up on shutdown) and reads
    /// its answer: the headers (for the governor) and what the answer means.
    async fn exchange(
        &self,
        endpoint: Endpoint,
        request: impl std::future::Future<
            Output = octocrab::Result<http::Response<BoxBody<Bytes, octocrab::Error>>>,
        >,
        url: &str,
        cancel: &CancellationToken,
    ) -> Attempt<Fetched> {
        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => return failed(GithubError::Cancelled),
            response = request => response,
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.count(endpoint, "error");
                return failed(GithubError::Unreachable {
                    url: url.to_owned(),
                    cause: error_chain(&error),
                });
            }
        };
        let status = response.status();
        self.count(endpoint, status.as_str());
        let headers = response.headers().clone();
        let body = response.into_body();
        let result = self
            .read_response(endpoint, status, &headers, body, url, cancel)
            .await;
        Attempt {
            headers: Some(headers),
            result,
        }
    }

    /// What a response with `status` and `headers` means, reading its body.
    async fn read_response(
        &self,
        endpoint: Endpoint,
        status: StatusCode,
        headers: &HeaderMap,
        body: BoxBody<Bytes, octocrab::Error>,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Fetched, GithubError> {
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if status.is_success() {
            let body = read_limited(body, MAX_RESPONSE_BYTES, url, cancel)
                .await?
                .ok_or_else(|| GithubError::TooLarge {
                    url: url.to_owned(),
                    limit: MAX_RESPONSE_BYTES,
                })?;
            // A page that does not parse is retried, never read as a short list.
            if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                return Err(GithubError::InvalidBody {
                    url: url.to_owned(),
                    reason: format!("not JSON: {error}"),
                });
            }
            let next = match headers.get(LINK).and_then(|v| v.to_str().ok()) {
                Some(link) => match next_link(link) {
                    Some(next) if self.same_origin(next) => Some(next.to_owned()),
                    Some(next) => return Err(GithubError::ForeignLink { url: clean(next) }),
                    None => None,
                },
                None => None,
            };
            let etag = headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .filter(|t| t.len() <= crate::store::MAX_CURSOR_OPAQUE_BYTES)
                .map(str::to_owned);
            return Ok(Fetched::Page { body, next, etag });
        }
        let body = read_limited(body, MAX_ERROR_BODY_BYTES, url, cancel)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        Err(status_error(endpoint, status, headers, &body, url))
    }

    pub(super) fn count(&self, endpoint: Endpoint, status: &str) {
        *self
            .stats()
            .requests
            .entry((endpoint.template(), status.to_owned()))
            .or_default() += 1;
    }

    fn same_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.origin)
    }

    /// Requests so far by endpoint template and status (sorted), and the
    /// governor's rate limits, waits and retries.
    pub fn health(&self) -> (Vec<ApiRequests>, GovernorHealth) {
        let requests = self
            .stats()
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

/// The GraphQL endpoint of the REST API at `base`: `https://api.github.com/graphql`
/// for github.com, `https://HOST/api/graphql` for GitHub Enterprise Server
/// (`https://HOST/api/v3`), `{base}/graphql` otherwise (simulators).
pub fn graphql_url(base: &str) -> String {
    match base.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{base}/graphql"),
    }
}

/// The `data` of a GraphQL answer (already checked to be JSON), or its error.
fn graphql_data(
    body: &[u8],
    headers: &HeaderMap,
    url: &str,
) -> Result<serde_json::Value, GithubError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        data: Option<serde_json::Value>,
        #[serde(default)]
        errors: Vec<AnswerError>,
    }
    #[derive(serde::Deserialize)]
    struct AnswerError {
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let invalid = |reason: String| GithubError::InvalidBody {
        url: url.to_owned(),
        reason,
    };
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| invalid(format!("not a GraphQL answer: {e}")))?;
    if answer
        .errors
        .iter()
        .any(|e| e.kind.as_deref() == Some("RATE_LIMITED"))
    {
        let reset_at = headers
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(crate::domain::Timestamp);
        return Err(GithubError::RateLimited {
            url: url.to_owned(),
            resource: GRAPHQL_RESOURCE.to_owned(),
            reset_at,
        });
    }
    if let Some(first) = answer.errors.first() {
        let message = first.message.as_deref().map(clean).unwrap_or_default();
        let message: String = message
            .chars()
            .take(super::error::MAX_SERVER_MESSAGE_CHARS)
            .collect();
        return Err(GithubError::Graphql {
            url: url.to_owned(),
            message,
        });
    }
    answer
        .data
        .filter(|d| !d.is_null())
        .ok_or_else(|| invalid("a GraphQL answer without data".to_owned()))
}

/// An attempt that failed before any response arrived.
fn failed<T>(error: GithubError) -> Attempt<T> {
    Attempt {
        headers: None,
        result: Err(error),
    }
}

/// The error for a non-2xx, non-304 answer to a GET of `endpoint`.
fn status_error(
    endpoint: Endpoint,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
) -> GithubError {
    let url = url.to_owned();
    let message = server_message(body);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        let retry_after = header(RETRY_AFTER.as_str()).and_then(|v| v.trim().parse::<u64>().ok());
        // GitHub: the primary limit is spent when `x-ratelimit-remaining` is 0; a
        // `retry-after` or a rate-limit message otherwise is a secondary limit.
        if header("x-ratelimit-remaining").map(str::trim) == Some("0") {
            let resource = header("x-ratelimit-resource")
                .map(clean)
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| CORE_RESOURCE.to_owned());
            let reset_at = header("x-ratelimit-reset")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map(crate::domain::Timestamp);
            return GithubError::RateLimited {
                url,
                resource,
                reset_at,
            };
        }
        if retry_after.is_some() || message.to_ascii_lowercase().contains("rate limit") {
            return GithubError::SecondaryRateLimited {
                url,
                status: status.as_u16(),
                message,
                retry_after,
            };
        }
    }
    match status {
        StatusCode::UNAUTHORIZED => GithubError::Unauthorized { url, message },
        StatusCode::FORBIDDEN => GithubError::Forbidden {
            repository: repository_of(&url),
            endpoint: endpoint.template(),
            permission: endpoint.permission(),
            url,
            message,
        },
        StatusCode::NOT_FOUND => GithubError::NotFound { url },
        _ => GithubError::Status {
            url,
            status: status.as_u16(),
            message,
        },
    }
}

/// `owner/name` from a `…/repos/{owner}/{name}/…` URL (as escaped in it), bounded.
fn repository_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').skip_while(|s| *s != "repos").skip(1);
    match (segments.next(), segments.next()) {
        (Some(owner), Some(name)) => clean(&format!("{owner}/{name}")),
        _ => "(unknown)".to_owned(),
    }
}

/// Reads a body of at most `limit` bytes; `None` when it is longer.
async fn read_limited(
    mut body: BoxBody<Bytes, octocrab::Error>,
    limit: usize,
    url: &str,
    cancel: &CancellationToken,
) -> Result<Option<Bytes>, GithubError> {
    let mut out = Vec::new();
    loop {
        let frame = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(GithubError::Cancelled),
            frame = body.frame() => frame,
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|error| GithubError::Truncated {
            url: url.to_owned(),
            cause: format!(
                "the connection broke while reading the response: {}",
                error_chain(&error)
            ),
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(Bytes::from(out)))
}

/// The URL of `rel="next"` in a `Link` header (RFC 8288), if any.
pub fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let url = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let is_next = after[..params_end].split(';').any(|param| {
            let param = param.trim().trim_end_matches(',').trim();
            match param.split_once('=') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("rel") => value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next")),
                _ => false,
            }
        });
        if is_next {
            return Some(url);
        }
        rest = &after[params_end..];
    }
}

/// An error and its causes on one line, bounded.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    /// Long enough for "client error (Connect): tcp connect error: Connection
    /// refused (os error 111)" and similar chains.
    const MAX_CHAIN_CHARS: usize = 400;
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
    text.chars()
        .take(MAX_CHAIN_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A list read page by page, following `Link: rel="next"`; the first page may be
/// conditional.
#[derive(Debug)]
pub struct Pages {
    endpoint: Endpoint,
    first_url: String,
    next: Option<String>,
    if_none_match: Option<String>,
    pages: usize,
    /// The first page answered 304: nothing changed since the ETag was stored.
    pub not_modified: bool,
    /// The `ETag` of the first page as stored for the next sync (tagged with the
    /// token's fingerprint, see [`Client::etag_to_store`]).
    pub etag: Option<String>,
}

impl Pages {
    pub fn new(endpoint: Endpoint, url: String, if_none_match: Option<String>) -> Self {
        Pages {
            endpoint,
            first_url: url.clone(),
            next: Some(url),
            if_none_match,
            pages: 0,
            not_modified: false,
            etag: None,
        }
    }

    /// The next page's body; `None` when the list is done (or not modified).
    pub async fn next(
        &mut self,
        client: &Client,
        cancel: &CancellationToken,
        requests: &std::sync::atomic::AtomicU64,
    ) -> Result<Option<Bytes>, GithubError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if self.pages >= MAX_PAGES {
            return Err(GithubError::TooManyPages {
                url: self.first_url.clone(),
                limit: MAX_PAGES,
            });
        }
        let conditional = if self.pages == 0 {
            self.if_none_match
                .as_deref()
                .and_then(|stored| client.etag_from_store(stored))
        } else {
            None
        };
        requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match client
            .fetch(self.endpoint, &url, conditional, cancel)
            .await?
        {
            Fetched::NotModified => {
                self.not_modified = true;
                Ok(None)
            }
            Fetched::Page { body, next, etag } => {
                if self.pages == 0 {
                    self.etag = etag.map(|etag| client.etag_to_store(&etag));
                }
                self.pages += 1;
                self.next = next;
                Ok(Some(body))
            }
        }
    }

    /// Stops reading: the caller has what it needs.
    pub fn stop(&mut self) {
        self.next = None;
    }

    /// Whether a next page is known (from `Link`).
    pub fn has_next(&self) -> bool {
        self.next.is_some()
    }

    /// Asks for `url` next: for a list whose size is known but whose response
    /// carried no `Link` header.
    pub fn set_next(&mut self, url: String) {
        self.next = Some(url);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_graphql_endpoint_follows_the_api_url() {
        assert_eq!(
            graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/graphql"
        );
        assert_eq!(
            graphql_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/graphql"
        );
    }

    #[test]
    fn graphql_answers_map_to_data_or_a_clear_error() {
        let headers = HeaderMap::new();
        let url = "https://api.github.com/graphql";
        let data = graphql_data(br#"{"data":{"a":1}}"#, &headers, url).unwrap();
        assert_eq!(data["a"], 1);
        let mut limited = HeaderMap::new();
        limited.insert("x-ratelimit-reset", HeaderValue::from_static("1700000000"));
        let error = graphql_data(
            br#"{"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded"}]}"#,
            &limited,
            url,
        )
        .unwrap_err();
        assert!(
            matches!(&error, GithubError::RateLimited { resource, reset_at: Some(_), .. } if resource == "graphql"),
            "{error:?}"
        );
        let error = graphql_data(
            br#"{"data":{"repository":null},"errors":[{"type":"NOT_FOUND","message":"Could not resolve to a Repository with the name 'acme/gone'."}]}"#,
            &headers,
            url,
        )
        .unwrap_err();
        assert!(
            matches!(&error, GithubError::Graphql { message, .. } if message.contains("acme/gone")),
            "{error:?}"
        );
        for odd in [&br#"{"data":null}"#[..], br#"[]"#, br#"{}"#] {
            assert!(matches!(
                graphql_data(odd, &headers, url),
                Err(GithubError::InvalidBody { .. })
            ));
        }
    }

    use super::*;

    #[test]
    fn finds_the_next_link() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#,
                Some("https://api.github.com/repositories/1/issues?page=2"),
            ),
            (
                r#"<https://x/a?page=1>; rel="prev", <https://x/a?page=3>; rel="next""#,
                Some("https://x/a?page=3"),
            ),
            (r#"<https://x/a?page=1>; rel="first""#, None),
            (
                r#"<https://x/a?l=a,b&page=2>; rel=next"#,
                Some("https://x/a?l=a,b&page=2"),
            ),
            (
                r#"<https://x/a>; title="x"; rel="next last""#,
                Some("https://x/a"),
            ),
            ("", None),
            ("garbage <without end", None),
        ];
        for (header, expected) in cases {
            assert_eq!(next_link(header), *expected, "{header}");
        }
    }

    #[test]
    fn endpoint_templates_are_route_templates() {
        for endpoint in [
            Endpoint::Deployments,
            Endpoint::DeploymentStatuses,
            Endpoint::WorkflowRuns,
            Endpoint::Compare,
            Endpoint::Issues,
            Endpoint::Pulls,
            Endpoint::PullCommits,
            Endpoint::CommitPulls,
        ] {
            let template = endpoint.template();
            assert!(template.starts_with("/repos/{owner}/{repo}"), "{template}");
            assert!(!template.contains('?'), "{template}");
        }
    }

    #[tokio::test]
    async fn tokens_that_cannot_be_headers_are_refused_without_showing_them() {
        let url = url::Url::parse("http://127.0.0.1:1").unwrap();
        let error = Client::with_policy(
            &url,
            &SecretString::from("tok\u{1}en-secret"),
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(error, GithubError::InvalidToken);
        assert!(!error.to_string().contains("secret"));
    }
}
