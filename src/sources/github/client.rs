//! The HTTP layer of the GitHub source: one `Octocrab` (base URI = `github.api_url`,
//! no credentials of its own) used through its generic GET and POST, plus what
//! octocrab leaves to us: the `Authorization` of each request, bounded response
//! bodies, `Link` pagination, conditional requests (`ETag` → `If-None-Match` → a
//! free 304), status codes mapped to [`GithubError`], request counts per endpoint
//! template and status, and the rate limit the server reports.
//!
//! octocrab has no Deployments API and its typed models are strict, so we only use
//! its transport (base URI, timeouts, TLS) and read raw bytes. Its types never
//! leave this module.
//!
//! A [`Client`] is the transport (shared by clones) and a [`Principal`]: who the
//! requests are sent as, with its own [`Governor`] (rate limits, retries,
//! concurrency). A personal token is one principal; a GitHub App is one for the App
//! itself (its JWT) and one per installation (its installation token), each with
//! its budget (`app.rs` makes those; its [`Credentials`] hand this module an
//! `Authorization` for every attempt, so a token renewed between two attempts is
//! never one that expires on the way). Every GET goes through the principal's
//! governor: one attempt is [`Client::fetch_once`], which also checks that a 2xx
//! body parses as JSON, so a truncated or garbled page is retried rather than read
//! as an empty or partial list. A 401 to a credential that can be renewed (an
//! installation token revoked early) renews it and sends the request once more.
//!
//! Not here: what a response means (the endpoint modules decide; a GraphQL
//! answer's errors are read in `answer.rs`), the retry and wait policy
//! (`governor.rs`), and retries of a failed repository (the daemon tries it again
//! soon, from the kept cursors: `daemon/retry.rs`).

use super::answer::{self, PageSizes, Partial};
use super::error::{GithubError, Redactor};
use crate::sources::governor::{
    reset_of, Attempt, Governor, GovernorHealth, RetryPolicy, CORE_RESOURCE, GRAPHQL_RESOURCE,
};
use crate::sources::http::error_chain;
pub use crate::sources::http::next_link;
use crate::sources::pace::WRITE_POINTS;
use crate::sources::ApiRequests;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, ETAG, IF_NONE_MATCH, LINK, RETRY_AFTER,
};
use http::StatusCode;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Items per page: GitHub's maximum, so a list costs as few requests as possible.
pub const PER_PAGE: u32 = 100;

/// How one GraphQL query may be answered and shrunk.
#[derive(Debug, Clone, Copy)]
pub struct QueryShape<'a> {
    /// Whether the answer's data may be used next to errors about some fields.
    pub partial: Partial,
    /// The page sizes shared by a repository sync's queries, and the names of
    /// this query's page-size variables they halve while GitHub keeps timing out;
    /// `None` for a query whose pages must not shrink.
    pub pages: Option<(&'a PageSizes, &'a [&'a str])>,
}

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

/// Separates the token fingerprint from the `ETag` in a kept cursor value
/// (ETags are quoted strings without spaces).
const ETAG_SEPARATOR: char = ' ';

/// Domain separation for [`token_fingerprint`]: the hash of a token here is never
/// the plain SHA-256 of the token someone could look up elsewhere.
const FINGERPRINT_CONTEXT: &[u8] = b"dora-collector etag owner v1\0";

/// Hex digits of the fingerprint kept: 64 bits tell tokens apart and say nothing
/// about a token (a high-entropy secret; a one-way hash, truncated).
const FINGERPRINT_HEX_DIGITS: usize = 16;

/// A one-way fingerprint of `token`, kept next to ETags so that a changed token
/// does not reuse the old token's ETags. Never logged or exported.
pub(super) fn token_fingerprint(token: &SecretString) -> String {
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
    /// A pull request's reviews (its first one, for the lead-time stages).
    PullReviews,
    /// The pull requests of a commit (PR-based lead-time starts).
    CommitPulls,
    /// `POST /graphql` (deployments with their statuses, commit history).
    Graphql,
    /// A GitHub App's installation on an organisation (signed with the App's JWT).
    OrgInstallation,
    /// A GitHub App's installation for a repository (signed with the App's JWT).
    RepoInstallation,
    /// A new installation token (signed with the App's JWT).
    InstallationToken,
    /// An organisation's repositories (discovery).
    OrgRepos,
    /// An organisation's teams (`team_from = "github_teams"`).
    OrgTeams,
    /// A team's repositories and its permission on each.
    TeamRepos,
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
            Endpoint::Pulls
            | Endpoint::PullCommits
            | Endpoint::PullReviews
            | Endpoint::CommitPulls => "Pull requests: read",
            Endpoint::Graphql => "Deployments: read and Contents: read",
            Endpoint::OrgInstallation
            | Endpoint::RepoInstallation
            | Endpoint::InstallationToken
            | Endpoint::OrgRepos => "Metadata: read",
            Endpoint::OrgTeams | Endpoint::TeamRepos => "Members: read (organisation)",
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
            Endpoint::PullReviews => "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
            Endpoint::CommitPulls => "/repos/{owner}/{repo}/commits/{commit_sha}/pulls",
            Endpoint::Graphql => "/graphql",
            Endpoint::OrgInstallation => "/orgs/{org}/installation",
            Endpoint::RepoInstallation => "/repos/{owner}/{repo}/installation",
            Endpoint::InstallationToken => "/app/installations/{installation_id}/access_tokens",
            Endpoint::OrgRepos => "/orgs/{org}/repos",
            Endpoint::OrgTeams => "/orgs/{org}/teams",
            Endpoint::TeamRepos => "/orgs/{org}/teams/{team_slug}/repos",
        }
    }
}

/// The `Authorization` of one request and the fingerprint of the credential
/// in it (what kept ETags are tagged with).
#[derive(Clone)]
pub(super) struct Authorization {
    /// `Bearer …`, marked sensitive (never logged by the HTTP stack).
    header: HeaderValue,
    fingerprint: String,
}

impl Authorization {
    /// `Bearer {token}`; `None` when the token cannot be a header value.
    pub(super) fn bearer(token: &SecretString) -> Option<Authorization> {
        let mut header =
            HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok()?;
        header.set_sensitive(true);
        Some(Authorization {
            header,
            fingerprint: token_fingerprint(token),
        })
    }

    /// Whether both carry the same credential.
    pub(super) fn same_credential(&self, other: &Authorization) -> bool {
        self.fingerprint == other.fingerprint
    }
}

/// Where a principal's `Authorization` comes from: a fixed token, or a
/// credential minted while running (`app.rs`).
pub(super) trait Credentials: Send + Sync {
    /// The `Authorization` for the next attempt, valid for at least the time an
    /// attempt takes (a minted credential is renewed here before it expires).
    fn authorization<'a>(
        &'a self,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Authorization, GithubError>>;

    /// GitHub answered 401 to `authorization`: whether a new credential may be
    /// asked for and the request sent once more (the old one is forgotten).
    fn refused(&self, _authorization: &Authorization) -> bool {
        false
    }

    /// The error for a request still refused (401) after that; `None` keeps the
    /// plain [`GithubError::Unauthorized`].
    fn still_refused(&self, _error: &GithubError) -> Option<GithubError> {
        None
    }
}

/// A fixed token (`github.token`).
struct FixedToken(Authorization);

impl Credentials for FixedToken {
    fn authorization<'a>(
        &'a self,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Authorization, GithubError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// Who requests are sent as (a token, a GitHub App, one of its installations),
/// with the governor of that principal's own rate limits.
pub(super) struct Principal {
    /// The `credential` label of its rate limits: `token`, `app`,
    /// `installation:<account>`.
    label: String,
    governor: Governor,
    credentials: Box<dyn Credentials>,
}

impl Principal {
    /// A principal labelled `label` whose requests carry `credentials`, governed
    /// by `policy` and paced under its `github_secondary_pace` (github.com and
    /// GitHub Enterprise Server alike: `docs/sources.md`).
    pub(super) fn new(
        label: String,
        policy: RetryPolicy,
        credentials: Box<dyn Credentials>,
    ) -> Principal {
        let pace = policy.github_secondary_pace.clone();
        Principal {
            label,
            governor: Governor::with_pace(policy, pace),
            credentials,
        }
    }

    /// The `credential` label of its rate limits.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    /// Its governor's counters, its rate limits labelled with its `credential`.
    pub(super) fn health(&self) -> GovernorHealth {
        let mut health = self.governor.health();
        for limit in &mut health.rate_limits {
            limit.credential = self.label.clone();
        }
        health
    }
}

/// What one GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the `If-None-Match` ETag still matches; nothing changed.
    NotModified,
    /// 2xx with its body, the `rel="next"` URL and the `ETag` as kept (tagged
    /// with the fingerprint of the credential that got it: [`etag_to_keep`]).
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

/// What every principal's requests share: the transport, the URLs, the request
/// counts and the redactor.
struct Transport {
    octocrab: Octocrab,
    /// `github.api_url` without a trailing slash: paths are appended to it.
    base: String,
    origin: url::Origin,
    stats: Mutex<Stats>,
    /// Where GraphQL queries go (see [`graphql_url`]).
    graphql_url: String,
    /// Masks the credentials in every text the server sends back.
    redactor: Redactor,
    /// The retries and waits of every principal's governor.
    policy: RetryPolicy,
}

/// The GitHub client: a transport shared by every repository sync of the source,
/// and the principal its requests are sent as. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    transport: Arc<Transport>,
    principal: Arc<Principal>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.transport.base)
            .field("principal", &self.principal.label)
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
        // The configuration rejects whitespace, not every non-ASCII character.
        let authorization = Authorization::bearer(token).ok_or(GithubError::InvalidToken)?;
        Client::with_credentials(
            api_url,
            "token",
            Box::new(FixedToken(authorization)),
            Redactor::new([token]),
            policy,
        )
    }

    /// A client for the API at `api_url` whose requests carry `credentials`
    /// (the principal labelled `label`), cleaning server text with `redactor`.
    pub(super) fn with_credentials(
        api_url: &url::Url,
        label: &str,
        credentials: Box<dyn Credentials>,
        redactor: Redactor,
        policy: RetryPolicy,
    ) -> Result<Client, GithubError> {
        let base = api_url.as_str().trim_end_matches('/').to_owned();
        let client_error = |cause: String| GithubError::Client {
            url: base.clone(),
            cause,
        };
        // Every request carries its whole URL; octocrab gets only the origin,
        // because it prefixes its base's path to any path not starting with it:
        // GitHub Enterprise Server's `/api/graphql` would become
        // `/api/v3/api/graphql`.
        let origin = api_url.origin().ascii_serialization();
        let octocrab = Octocrab::builder()
            .base_uri(origin.as_str())
            .map_err(|_| GithubError::InvalidUrl { url: base.clone() })?
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .build()
            .map_err(|e| client_error(error_chain(&e)))?;
        let principal = Principal::new(label.to_owned(), policy.clone(), credentials);
        Ok(Client {
            transport: Arc::new(Transport {
                graphql_url: graphql_url(&base),
                octocrab,
                origin: api_url.origin(),
                base,
                stats: Mutex::new(Stats::default()),
                redactor,
                policy,
            }),
            principal: Arc::new(principal),
        })
    }

    /// A client on the same transport sent as `principal`.
    pub(super) fn as_principal(&self, principal: Arc<Principal>) -> Client {
        Client {
            transport: Arc::clone(&self.transport),
            principal,
        }
    }

    /// A new principal labelled `label` with `credentials`, governed by the
    /// policy of this client's transport.
    pub(super) fn principal_with(
        &self,
        label: String,
        credentials: Box<dyn Credentials>,
    ) -> Arc<Principal> {
        Arc::new(Principal::new(
            label,
            self.transport.policy.clone(),
            credentials,
        ))
    }

    /// Who this client's requests are sent as.
    pub(super) fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// Cleans server-provided text of the credentials (see [`Redactor`]).
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.transport.redactor
    }

    /// Where GraphQL queries go.
    pub fn graphql_url(&self) -> &str {
        &self.transport.graphql_url
    }

    /// `github.api_url` without a trailing slash.
    pub fn base(&self) -> &str {
        &self.transport.base
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.transport
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `send` (one governed request) and, when GitHub answers 401 to a
    /// credential that can be renewed, renews it and sends it once more.
    async fn renewing<T, F, Fut>(&self, mut send: F) -> Result<T, GithubError>
    where
        F: FnMut(Arc<Mutex<Option<Authorization>>>) -> Fut,
        Fut: std::future::Future<Output = Result<T, GithubError>>,
    {
        let used = Arc::new(Mutex::new(None::<Authorization>));
        match send(Arc::clone(&used)).await {
            Err(error @ GithubError::Unauthorized { .. }) => {
                let refused = used.lock().unwrap_or_else(PoisonError::into_inner).take();
                let renewable = refused
                    .as_ref()
                    .is_some_and(|auth| self.principal.credentials.refused(auth));
                if !renewable {
                    return Err(error);
                }
                match send(used).await {
                    Err(error @ GithubError::Unauthorized { .. }) => Err(self
                        .principal
                        .credentials
                        .still_refused(&error)
                        .unwrap_or(error)),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// The `Authorization` of the next attempt, noted in `used`.
    async fn authorize(
        &self,
        used: &Mutex<Option<Authorization>>,
        cancel: &CancellationToken,
    ) -> Result<Authorization, GithubError> {
        let authorization = self.principal.credentials.authorization(cancel).await?;
        *used.lock().unwrap_or_else(PoisonError::into_inner) = Some(authorization.clone());
        Ok(authorization)
    }

    /// One GET of `url` (absolute, under `github.api_url`), counted under
    /// `endpoint`, through the governor (waits for rate limits, retries transient
    /// failures). With `kept_etag` (an `ETag` as kept in a cursor, see
    /// [`etag_to_keep`]) the request is conditional, and a 304 means nothing
    /// changed.
    pub async fn fetch(
        &self,
        endpoint: Endpoint,
        url: &str,
        kept_etag: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Fetched, GithubError> {
        let uri: http::Uri = url.parse().map_err(|_| GithubError::InvalidUrl {
            url: url.to_owned(),
        })?;
        let uri = &uri;
        self.renewing(|used| async move {
            self.principal
                .governor
                .send(CORE_RESOURCE, url, cancel, || {
                    let used = Arc::clone(&used);
                    async move {
                        let authorization = match self.authorize(&used, cancel).await {
                            Ok(authorization) => authorization,
                            Err(error) => return failed(error),
                        };
                        self.fetch_once(endpoint, uri, url, kept_etag, &authorization, cancel)
                            .await
                    }
                })
                .await
        })
        .await
    }

    /// One POST of `body` (JSON, or none) to `url`, counted under `endpoint`,
    /// through the governor: the 2xx body (checked to be JSON).
    pub(super) async fn post(
        &self,
        endpoint: Endpoint,
        url: &str,
        body: Option<&serde_json::Value>,
        cancel: &CancellationToken,
    ) -> Result<Bytes, GithubError> {
        let uri: http::Uri = url.parse().map_err(|_| GithubError::InvalidUrl {
            url: url.to_owned(),
        })?;
        let uri = &uri;
        self.principal
            .governor
            .send_points(CORE_RESOURCE, WRITE_POINTS, url, cancel, || async move {
                let used = Mutex::new(None);
                let authorization = match self.authorize(&used, cancel).await {
                    Ok(authorization) => authorization,
                    Err(error) => return failed(error),
                };
                let request = self.send(http::Method::POST, uri, &authorization, body);
                let attempt = self.exchange(endpoint, request, url, "", cancel).await;
                Attempt {
                    headers: attempt.headers,
                    result: match attempt.result {
                        Ok(Fetched::Page { body, .. }) => Ok(body),
                        Ok(Fetched::NotModified) => Err(GithubError::InvalidBody {
                            url: url.to_owned(),
                            reason: "304 to a POST".to_owned(),
                        }),
                        Err(error) => Err(error),
                    },
                }
            })
            .await
    }

    /// Sends one request with `authorization` (and `Accept: application/json`).
    fn send<'a>(
        &'a self,
        method: http::Method,
        uri: &http::Uri,
        authorization: &Authorization,
        body: Option<&'a serde_json::Value>,
    ) -> impl std::future::Future<
        Output = octocrab::Result<http::Response<BoxBody<Bytes, octocrab::Error>>>,
    > + 'a {
        let builder = http::Request::builder()
            .method(method)
            .uri(uri.clone())
            .header(ACCEPT, HeaderValue::from_static(GITHUB_JSON))
            .header(AUTHORIZATION, authorization.header.clone());
        let request = self.transport.octocrab.build_request(builder, body);
        async move { self.transport.octocrab.execute(request?).await }
    }

    /// One GraphQL query through the governor (charged to the `graphql` budget):
    /// the answer's `data`, read as [`answer::graphql_data`] says (rate limits
    /// waited out, timeouts and transient errors retried, errors about the query
    /// final). With `shape.pages`, every timeout halves the named page-size
    /// variables of this and the later queries sharing those [`PageSizes`].
    pub async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
        shape: QueryShape<'_>,
        cancel: &CancellationToken,
    ) -> Result<serde_json::Value, GithubError> {
        let url = self.transport.graphql_url.as_str();
        let uri: http::Uri = url.parse().map_err(|_| GithubError::InvalidUrl {
            url: url.to_owned(),
        })?;
        let (uri, variables) = (&uri, &variables);
        self.renewing(|used| async move {
            self.principal
                .governor
                .send(GRAPHQL_RESOURCE, url, cancel, || {
                    let mut asked = variables.clone();
                    if let Some((sizes, names)) = shape.pages {
                        sizes.apply(&mut asked, names);
                    }
                    let body = serde_json::json!({ "query": query, "variables": asked });
                    let used = Arc::clone(&used);
                    async move {
                        let authorization = match self.authorize(&used, cancel).await {
                            Ok(authorization) => authorization,
                            Err(error) => return failed(error),
                        };
                        let attempt = self
                            .graphql_once(uri, url, &body, shape.partial, &authorization, cancel)
                            .await;
                        if let (Err(GithubError::Timeout { .. }), Some((sizes, names))) =
                            (&attempt.result, shape.pages)
                        {
                            // The largest page the query wants, before shrinking.
                            let full = names
                                .iter()
                                .filter_map(|name| variables[*name].as_u64())
                                .max()
                                .and_then(|n| u32::try_from(n).ok())
                                .unwrap_or(PER_PAGE);
                            if sizes.shrink(full) {
                                tracing::info!(
                                    %url,
                                    page_size = sizes.size(PER_PAGE),
                                    "GitHub timed out on a GraphQL query; asking for smaller pages"
                                );
                            }
                        }
                        attempt
                    }
                })
                .await
        })
        .await
    }

    /// One attempt of [`Client::graphql`].
    async fn graphql_once(
        &self,
        uri: &http::Uri,
        url: &str,
        body: &serde_json::Value,
        partial: Partial,
        authorization: &Authorization,
        cancel: &CancellationToken,
    ) -> Attempt<serde_json::Value, GithubError> {
        let request = self.send(http::Method::POST, uri, authorization, Some(body));
        let attempt = self
            .exchange(Endpoint::Graphql, request, url, "", cancel)
            .await;
        let result = match (attempt.result, &attempt.headers) {
            (Ok(Fetched::Page { body, .. }), Some(headers)) => {
                answer::graphql_data(&body, headers, url, partial, &self.transport.redactor)
            }
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
        kept_etag: Option<&str>,
        authorization: &Authorization,
        cancel: &CancellationToken,
    ) -> Attempt<Fetched, GithubError> {
        let if_none_match =
            kept_etag.and_then(|kept| etag_from_kept(kept, &authorization.fingerprint));
        let mut builder = http::Request::builder()
            .method(http::Method::GET)
            .uri(uri.clone())
            .header(ACCEPT, HeaderValue::from_static(GITHUB_JSON))
            .header(AUTHORIZATION, authorization.header.clone());
        if let Some(tag) = if_none_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            builder = builder.header(IF_NONE_MATCH, tag);
        }
        let octocrab = &self.transport.octocrab;
        let request = octocrab.build_request(builder, None::<&()>);
        let request = async move { octocrab.execute(request?).await };
        self.exchange(endpoint, request, url, &authorization.fingerprint, cancel)
            .await
    }

    /// Sends `request` (counted under `endpoint`; given up on shutdown) and reads
    /// its answer: the headers (for the governor) and what the answer means (an
    /// `ETag` tagged with `fingerprint`, the credential's that sent it).
    async fn exchange(
        &self,
        endpoint: Endpoint,
        request: impl std::future::Future<
            Output = octocrab::Result<http::Response<BoxBody<Bytes, octocrab::Error>>>,
        >,
        url: &str,
        fingerprint: &str,
        cancel: &CancellationToken,
    ) -> Attempt<Fetched, GithubError> {
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
            .read_response(endpoint, status, &headers, body, url, fingerprint, cancel)
            .await;
        Attempt {
            headers: Some(headers),
            result,
        }
    }

    /// What a response with `status` and `headers` means, reading its body.
    #[allow(clippy::too_many_arguments)]
    async fn read_response(
        &self,
        endpoint: Endpoint,
        status: StatusCode,
        headers: &HeaderMap,
        body: BoxBody<Bytes, octocrab::Error>,
        url: &str,
        fingerprint: &str,
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
                    Some(next) => {
                        return Err(GithubError::ForeignLink {
                            url: self.transport.redactor.clean(next),
                        })
                    }
                    None => None,
                },
                None => None,
            };
            let etag = headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(|etag| etag_to_keep(etag, fingerprint))
                .filter(|kept| kept.len() <= crate::domain::batch::MAX_CURSOR_OPAQUE_BYTES);
            return Ok(Fetched::Page { body, next, etag });
        }
        let body = read_limited(body, MAX_ERROR_BODY_BYTES, url, cancel)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        Err(status_error(
            endpoint,
            status,
            headers,
            &body,
            url,
            &self.transport.redactor,
        ))
    }

    pub(super) fn count(&self, endpoint: Endpoint, status: &str) {
        *self
            .stats()
            .requests
            .entry((endpoint.template(), status.to_owned()))
            .or_default() += 1;
    }

    fn same_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.transport.origin)
    }

    /// Requests so far by endpoint template and status (sorted), every principal
    /// of the transport together.
    pub fn requests(&self) -> Vec<ApiRequests> {
        self.stats()
            .requests
            .iter()
            .map(|((endpoint, status), count)| ApiRequests {
                endpoint: (*endpoint).to_owned(),
                status: status.clone(),
                count: *count,
            })
            .collect()
    }
}

/// An `ETag` as kept in a cursor: tagged with the fingerprint of the credential
/// that got it, because GitHub's ETags vary with the token (`Vary:
/// Authorization`; an App's installation token too, so each renewal reads every
/// list in full once), so one token's ETag must never be sent with another.
pub fn etag_to_keep(etag: &str, fingerprint: &str) -> String {
    format!("{fingerprint}{ETAG_SEPARATOR}{etag}")
}

/// The `ETag` to send from a kept cursor value: only when it was kept under the
/// credential with `fingerprint` (after a token change, or from a version that did
/// not tag ETags, the first page is read in full once and the new ETag kept).
pub fn etag_from_kept<'a>(kept: &'a str, fingerprint: &str) -> Option<&'a str> {
    let (tagged, etag) = kept.split_once(ETAG_SEPARATOR)?;
    (tagged == fingerprint && !etag.is_empty()).then_some(etag)
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

/// An attempt that failed before any response arrived.
fn failed<T>(error: GithubError) -> Attempt<T, GithubError> {
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
    redactor: &Redactor,
) -> GithubError {
    let url = url.to_owned();
    let message = redactor.server_message(body);
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
                .map(|r| redactor.clean(r))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| CORE_RESOURCE.to_owned());
            let reset_at = reset_of(headers).map(crate::domain::Timestamp);
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
            repository: repository_of(&url, redactor),
            endpoint: endpoint.template(),
            permission: endpoint.permission(),
            url,
            message,
        },
        StatusCode::NOT_FOUND => GithubError::NotFound { url },
        StatusCode::GATEWAY_TIMEOUT => GithubError::Timeout {
            url,
            status: status.as_u16(),
            message,
        },
        _ if status.is_server_error() && answer::says_timeout(&message) => GithubError::Timeout {
            url,
            status: status.as_u16(),
            message,
        },
        _ => GithubError::Status {
            url,
            status: status.as_u16(),
            message,
        },
    }
}

/// `owner/name` from a `…/repos/{owner}/{name}/…` URL (as escaped in it), bounded.
fn repository_of(url: &str, redactor: &Redactor) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').skip_while(|s| *s != "repos").skip(1);
    match (segments.next(), segments.next()) {
        (Some(owner), Some(name)) => redactor.clean(&format!("{owner}/{name}")),
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

/// A list read page by page, following `Link: rel="next"`; the first page may be
/// conditional.
#[derive(Debug)]
pub struct Pages {
    endpoint: Endpoint,
    first_url: String,
    next: Option<String>,
    if_none_match: Option<String>,
    pages: usize,
    /// The first page answered 304: nothing changed since the ETag was kept.
    pub not_modified: bool,
    /// The `ETag` of the first page as kept for the next sync (tagged with the
    /// token's fingerprint, see [`etag_to_keep`]).
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
            self.if_none_match.as_deref()
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
                    self.etag = etag;
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

    use super::*;
    use crate::sources::governor::{GovernedError, RetryReason};

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
    fn error_answers_are_classified_like_githubs_clients_do() {
        let url = "https://api.github.com/graphql";
        let classify = |status: u16, body: &str| {
            status_error(
                Endpoint::Graphql,
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                body.as_bytes(),
                url,
                &Redactor::default(),
            )
        };
        let in_time = r#"{"message":"We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists.","documentation_url":"https://docs.github.com/rest"}"#;
        for status in [502, 504] {
            let error = classify(status, in_time);
            assert!(
                matches!(&error, GithubError::Timeout { status: s, message, .. } if *s == status && message.starts_with("We couldn't respond")),
                "{error:?}"
            );
            assert_eq!(error.retry_reason(), Some(RetryReason::Timeout));
        }
        // Any 504 is a timeout; a 502 carrying GitHub's GraphQL timeout too.
        assert!(matches!(classify(504, ""), GithubError::Timeout { .. }));
        let graphql_502 = r#"{"data":null,"errors":[{"message":"Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `C084:58C5` when reporting this issue."}]}"#;
        assert!(matches!(
            classify(502, graphql_502),
            GithubError::Timeout { status: 502, .. }
        ));
        // Proxies' pages: server errors, retried, with an excerpt for a message.
        let nginx = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        let error = classify(502, nginx);
        assert!(
            matches!(&error, GithubError::Status { status: 502, message, .. } if message.starts_with("body: \"<html> <head><title>502 Bad Gateway")),
            "{error:?}"
        );
        assert_eq!(error.retry_reason(), Some(RetryReason::ServerError));
        let error = classify(
            503,
            "upstream connect error or disconnect/reset before headers",
        );
        assert_eq!(
            error.to_string(),
            format!(
                "HTTP 503 body: \"upstream connect error or disconnect/reset before headers\" at {url}"
            )
        );
        assert_eq!(error.retry_reason(), Some(RetryReason::ServerError));
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
            Endpoint::PullReviews,
            Endpoint::CommitPulls,
        ] {
            let template = endpoint.template();
            assert!(template.starts_with("/repos/{owner}/{repo}"), "{template}");
            assert!(!template.contains('?'), "{template}");
        }
    }

    #[tokio::test]
    async fn a_query_that_keeps_timing_out_asks_for_smaller_pages_down_to_the_floor() {
        use super::super::answer::MIN_PAGE_SIZE;
        use axum::response::IntoResponse;
        use std::sync::Arc;
        const IN_TIME: &str = "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists.";
        // A GraphQL endpoint that times out on pages larger than 25, and on every
        // page of a query asking `always`.
        let seen = Arc::new(Mutex::new(Vec::<u64>::new()));
        let log = Arc::clone(&seen);
        let router = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let log = Arc::clone(&log);
                async move {
                    let first = body["variables"]["first"].as_u64().unwrap_or(0);
                    log.lock().unwrap().push(first);
                    if first > 25 || body["variables"]["always"] == true {
                        let timeout = serde_json::json!({"message": IN_TIME});
                        (StatusCode::BAD_GATEWAY, axum::Json(timeout)).into_response()
                    } else {
                        axum::Json(serde_json::json!({"data": {"first": first}})).into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let policy = RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        let client = Client::with_policy(
            &url,
            &SecretString::from("ghp_pagesizes0123456789abcdefghijklmnopqr"),
            policy,
        )
        .unwrap();
        let sizes = PageSizes::new();
        let names: &[&str] = &["first"];
        let shape = QueryShape {
            partial: Partial::Refused,
            pages: Some((&sizes, names)),
        };
        let cancel = CancellationToken::new();
        let ask = |variables: serde_json::Value| {
            client.graphql("query Q { x }", variables, shape, &cancel)
        };
        let data = ask(serde_json::json!({"first": 100})).await.unwrap();
        assert_eq!(data["first"], 25);
        assert_eq!(*seen.lock().unwrap(), [100, 50, 25]);
        // The sync's later queries ask for the smaller pages at once.
        ask(serde_json::json!({"first": 100})).await.unwrap();
        assert_eq!(seen.lock().unwrap().last(), Some(&25));
        // A query that times out at every size stops shrinking at the floor and
        // fails, after the policy's retries, as a timeout.
        seen.lock().unwrap().clear();
        let error = ask(serde_json::json!({"first": 100, "always": true}))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, GithubError::GaveUp { attempts: 6, last } if matches!(**last, GithubError::Timeout { status: 502, .. })),
            "{error:?}"
        );
        let floor = u64::from(MIN_PAGE_SIZE);
        assert_eq!(*seen.lock().unwrap(), [25, 12, floor, floor, floor, floor]);
        // Without page sizes a query is asked as it is.
        seen.lock().unwrap().clear();
        let whole = QueryShape {
            partial: Partial::Refused,
            pages: None,
        };
        client
            .graphql(
                "query Q { x }",
                serde_json::json!({"first": 20}),
                whole,
                &cancel,
            )
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), [20]);
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
