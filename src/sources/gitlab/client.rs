//! The HTTP layer of the GitLab source: one reqwest client (rustls, no redirects
//! followed: a redirect would carry `PRIVATE-TOKEN` wherever it points) for GETs
//! of `gitlab.api_url` with the token in `PRIVATE-TOKEN`, plus bounded response
//! bodies checked to be JSON, the next page (`Link: rel="next"`, keyset or
//! offset, else GitLab's `x-next-page`), status codes mapped to [`GitlabError`],
//! request counts per endpoint template and status.
//!
//! Every GET goes through the token's [`Governor`] (the same as GitHub's: GitLab's
//! `RateLimit-Remaining`/`RateLimit-Reset` headers, a `429` naming its reset or
//! `Retry-After`, retries of 5xx, resets and garbled bodies).
//!
//! Why reqwest with typed serde models rather than the `gitlab` crate: the
//! collector reads nine GET endpoints and needs, on each request, what a client
//! library keeps to itself: the rate-limit headers for the shared governor,
//! bounded bodies, the pagination headers, the token masked in every error, and
//! items read one by one so that one odd item is skipped rather than failing a
//! page. reqwest is already a client of the collector (`notify`, PagerDuty);
//! the `gitlab` crate would add its own pagination and retry policy and a large
//! dependency tree for none of that.
//!
//! Not here: what a response means (the step modules and `models.rs`), the
//! retry and wait policy (`sources/governor.rs`).

use super::error::GitlabError;
use crate::sources::governor::{Attempt, Governor, GovernorHealth, RetryPolicy};
use crate::sources::http::{error_chain, next_link, Redactor};
use crate::sources::ApiRequests;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, LINK, RETRY_AFTER};
use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Items per page: GitLab's maximum.
pub const PER_PAGE: u32 = 100;

/// The largest response body read: a page of 100 deployments embeds each one's
/// job, commit and user (about 300 KB); anything near this is no GitLab page.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The most of an error body read (for its message).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The most pages read from one list: a loop in `Link` headers, or far more
/// than a DORA collector reads, ends here.
pub const MAX_PAGES: usize = 1_000;

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read on the connection may stall (a slow self-managed instance
/// answers big pages in seconds).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The rate-limit resource GitLab's requests are charged to (GitLab has one
/// budget per user for the API).
pub const API_RESOURCE: &str = "api";

/// The endpoints read, as the bounded `endpoint` label of the health metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Deployments,
    Environments,
    Pipelines,
    Pipeline,
    Commits,
    Compare,
    MergeRequests,
    MergeRequestCommits,
    Issues,
}

impl Endpoint {
    /// The route template (below `gitlab.api_url`).
    pub const fn template(self) -> &'static str {
        match self {
            Endpoint::Deployments => "/projects/{id}/deployments",
            Endpoint::Environments => "/projects/{id}/environments",
            Endpoint::Pipelines => "/projects/{id}/pipelines",
            Endpoint::Pipeline => "/projects/{id}/pipelines/{pipeline_id}",
            Endpoint::Commits => "/projects/{id}/repository/commits",
            Endpoint::Compare => "/projects/{id}/repository/compare",
            Endpoint::MergeRequests => "/projects/{id}/merge_requests",
            Endpoint::MergeRequestCommits => {
                "/projects/{id}/merge_requests/{merge_request_iid}/commits"
            }
            Endpoint::Issues => "/projects/{id}/issues",
        }
    }
}

/// One page: its body and the URL of the next one, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub body: Bytes,
    pub next: Option<String>,
}

/// The GitLab client: shared by every project sync of the source.
pub struct Client {
    http: reqwest::Client,
    /// `gitlab.api_url` without a trailing slash.
    base: String,
    origin: url::Origin,
    /// `PRIVATE-TOKEN`, marked sensitive.
    token: HeaderValue,
    stats: Mutex<BTreeMap<(&'static str, String), u64>>,
    governor: Governor,
    redactor: Redactor,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `api_url` with `token`, retrying and waiting by
    /// `policy`. No request is made here.
    pub fn with_policy(
        api_url: &url::Url,
        token: &SecretString,
        policy: RetryPolicy,
    ) -> Result<Client, GitlabError> {
        let base = api_url.as_str().trim_end_matches('/').to_owned();
        let mut token_value =
            HeaderValue::from_str(token.expose_secret()).map_err(|_| GitlabError::InvalidToken)?;
        token_value.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dora-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GitlabError::Client {
                url: base.clone(),
                cause: error_chain(&e),
            })?;
        Ok(Client {
            http,
            origin: api_url.origin(),
            base,
            token: token_value,
            stats: Mutex::new(BTreeMap::new()),
            governor: Governor::new(policy),
            redactor: Redactor::new([token]),
        })
    }

    /// `gitlab.api_url` without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Cleans server text of this client's token.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn stats(&self) -> MutexGuard<'_, BTreeMap<(&'static str, String), u64>> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, endpoint: Endpoint, status: &str) {
        *self
            .stats()
            .entry((endpoint.template(), status.to_owned()))
            .or_default() += 1;
    }

    /// One GET of `url` (absolute, under `gitlab.api_url`), counted under
    /// `endpoint`, through the governor.
    pub async fn get(
        &self,
        endpoint: Endpoint,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Page, GitlabError> {
        let parsed = url::Url::parse(url).map_err(|_| GitlabError::InvalidUrl {
            url: url.to_owned(),
        })?;
        let parsed = &parsed;
        self.governor
            .send(API_RESOURCE, url, cancel, || {
                self.get_once(endpoint, parsed, url, cancel)
            })
            .await
    }

    /// One attempt of [`Client::get`].
    async fn get_once(
        &self,
        endpoint: Endpoint,
        parsed: &url::Url,
        url: &str,
        cancel: &CancellationToken,
    ) -> Attempt<Page, GitlabError> {
        let request = self
            .http
            .get(parsed.clone())
            .header("PRIVATE-TOKEN", self.token.clone())
            .header(http::header::ACCEPT, "application/json")
            .send();
        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => return failed(GitlabError::Cancelled),
            response = request => response,
        };
        let mut response = match response {
            Ok(response) => response,
            Err(error) => {
                self.count(endpoint, "error");
                return failed(GitlabError::Unreachable {
                    url: url.to_owned(),
                    cause: self.redactor.clean(&error_chain(&error)),
                });
            }
        };
        let status = response.status();
        self.count(endpoint, status.as_str());
        let headers = response.headers().clone();
        let result = if status.is_success() {
            match read_limited(&mut response, MAX_RESPONSE_BYTES, url, cancel).await {
                Ok(Some(body)) => self.page(body, &headers, url),
                Ok(None) => Err(GitlabError::TooLarge {
                    url: url.to_owned(),
                    limit: MAX_RESPONSE_BYTES,
                }),
                Err(error) => Err(error),
            }
        } else {
            let body = read_limited(&mut response, MAX_ERROR_BODY_BYTES, url, cancel)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            Err(status_error(
                endpoint,
                status,
                &headers,
                &body,
                url,
                &self.redactor,
            ))
        };
        Attempt {
            headers: Some(headers),
            result,
        }
    }

    /// A 2xx body checked to be JSON, with the URL of the next page.
    fn page(&self, body: Bytes, headers: &HeaderMap, url: &str) -> Result<Page, GitlabError> {
        if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
            return Err(GitlabError::InvalidBody {
                url: url.to_owned(),
                reason: format!("not JSON: {error}"),
            });
        }
        let link = headers
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let next = match link {
            Some(next) if self.same_origin(next) => Some(next.to_owned()),
            Some(next) => {
                return Err(GitlabError::ForeignLink {
                    url: self.redactor.clean(next),
                })
            }
            // Offset pages without a `Link` (some proxies drop it): GitLab's
            // `x-next-page`, empty on the last page.
            None => headers
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .map(|n| with_page(url, n)),
        };
        Ok(Page { body, next })
    }

    fn same_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.origin)
    }

    /// Requests so far by endpoint template and status (sorted), and the
    /// governor's rate limits, waits and retries.
    pub fn health(&self) -> (Vec<ApiRequests>, GovernorHealth) {
        let requests = self
            .stats()
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

/// `url` with its `page` parameter set to `page`.
fn with_page(url: &str, page: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("page", page);
    parsed.to_string()
}

fn failed<T>(error: GitlabError) -> Attempt<T, GitlabError> {
    Attempt {
        headers: None,
        result: Err(error),
    }
}

/// Reads a body of at most `limit` bytes; `None` when it is longer.
async fn read_limited(
    response: &mut reqwest::Response,
    limit: usize,
    url: &str,
    cancel: &CancellationToken,
) -> Result<Option<Bytes>, GitlabError> {
    let mut out = Vec::new();
    loop {
        let chunk = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(GitlabError::Cancelled),
            chunk = response.chunk() => chunk,
        };
        let chunk = chunk.map_err(|error| GitlabError::Truncated {
            url: url.to_owned(),
            cause: format!(
                "the connection broke while reading the response: {}",
                error_chain(&error)
            ),
        })?;
        let Some(chunk) = chunk else { break };
        if out.len() + chunk.len() > limit {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(out)))
}

/// The error for a non-2xx answer.
fn status_error(
    endpoint: Endpoint,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
    redactor: &Redactor,
) -> GitlabError {
    let url = url.to_owned();
    let message = redactor.server_message(body);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            // GitLab's throttle says when its window resets; `Retry-After` how
            // long to wait. Either makes the budget spent until then.
            let now = epoch_now();
            let reset = header("ratelimit-reset")
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|reset| *reset > now)
                .or_else(|| {
                    header(RETRY_AFTER.as_str())
                        .and_then(|v| v.parse::<i64>().ok())
                        .map(|seconds| now.saturating_add(seconds.max(1)))
                });
            match reset {
                Some(reset) => GitlabError::RateLimited {
                    url,
                    reset_at: Some(crate::domain::Timestamp(reset)),
                },
                None => GitlabError::Throttled { url, message },
            }
        }
        StatusCode::UNAUTHORIZED => GitlabError::Unauthorized { url, message },
        StatusCode::FORBIDDEN => GitlabError::Forbidden {
            project: project_of(&url, redactor),
            endpoint: endpoint.template(),
            url,
            message,
        },
        StatusCode::NOT_FOUND => GitlabError::NotFound { url, message },
        _ => GitlabError::Status {
            url,
            status: status.as_u16(),
            message,
        },
    }
}

/// The project path a `…/projects/{id}/…` URL names (decoded), bounded.
fn project_of(url: &str, redactor: &Redactor) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').skip_while(|s| *s != "projects").skip(1);
    match segments.next() {
        Some(id) => {
            let decoded = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
            redactor.clean(&decoded)
        }
        None => "(unknown)".to_owned(),
    }
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A list read page by page.
#[derive(Debug)]
pub struct Pages {
    endpoint: Endpoint,
    first_url: String,
    next: Option<String>,
    pages: usize,
}

impl Pages {
    pub fn new(endpoint: Endpoint, url: String) -> Self {
        Pages {
            endpoint,
            first_url: url.clone(),
            next: Some(url),
            pages: 0,
        }
    }

    /// The next page's body; `None` when the list is done.
    pub async fn next(
        &mut self,
        client: &Client,
        cancel: &CancellationToken,
        requests: &AtomicU64,
    ) -> Result<Option<Bytes>, GitlabError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if self.pages >= MAX_PAGES {
            return Err(GitlabError::TooManyPages {
                url: self.first_url.clone(),
                limit: MAX_PAGES,
            });
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let page = client.get(self.endpoint, &url, cancel).await?;
        self.pages += 1;
        self.next = page.next;
        Ok(Some(page.body))
    }

    /// Stops reading: the caller has what it needs.
    pub fn stop(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_offset_page_keeps_every_other_parameter() {
        assert_eq!(
            with_page(
                "http://h/api/v4/projects/a%2Fb/deployments?per_page=100&page=1",
                "2"
            ),
            "http://h/api/v4/projects/a%2Fb/deployments?per_page=100&page=2"
        );
        assert_eq!(with_page("http://h/x?a=1", "3"), "http://h/x?a=1&page=3");
    }

    #[test]
    fn throttles_name_their_reset_or_wait() {
        let url = "https://gitlab.example.com/api/v4/projects/acme%2Fapi/issues";
        let mut headers = HeaderMap::new();
        let later = epoch_now() + 30;
        headers.insert("ratelimit-reset", later.to_string().parse().unwrap());
        headers.insert("ratelimit-remaining", "0".parse().unwrap());
        let error = status_error(
            Endpoint::Issues,
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            b"Retry later\n",
            url,
            &Redactor::default(),
        );
        assert_eq!(
            error,
            GitlabError::RateLimited {
                url: url.into(),
                reset_at: Some(crate::domain::Timestamp(later))
            }
        );
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "5".parse().unwrap());
        let error = status_error(
            Endpoint::Issues,
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            b"",
            url,
            &Redactor::default(),
        );
        assert!(matches!(
            error,
            GitlabError::RateLimited {
                reset_at: Some(_),
                ..
            }
        ));
        let bare = status_error(
            Endpoint::Issues,
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            b"Retry later\n",
            url,
            &Redactor::default(),
        );
        assert!(matches!(bare, GitlabError::Throttled { .. }), "{bare:?}");
        let forbidden = status_error(
            Endpoint::Deployments,
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            br#"{"error":"insufficient_scope"}"#,
            "https://gitlab.example.com/api/v4/projects/acme%2Fplatform%2Fapi/deployments",
            &Redactor::default(),
        );
        let text = forbidden.to_string();
        assert!(text.contains("project acme/platform/api"), "{text}");
        assert!(text.contains("read_api"), "{text}");
    }

    #[tokio::test]
    async fn tokens_that_cannot_be_headers_are_refused_without_showing_them() {
        let url = url::Url::parse("http://127.0.0.1:1/api/v4").unwrap();
        let error = Client::with_policy(
            &url,
            &SecretString::from("glpat-secret\nvalue"),
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(error, GitlabError::InvalidToken);
        assert!(!error.to_string().contains("secret"));
    }
}
