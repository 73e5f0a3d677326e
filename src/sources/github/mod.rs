//! The GitHub source: reads deployments (Deployments API or Actions workflow runs),
//! change sets (compare), incidents (labelled issues) and merged pull requests
//! through the REST API (github.com or GitHub Enterprise Server), incrementally.
//!
//! One [`GithubSource`] serves every configured repository through one HTTP
//! transport ([`client::Client`]), as one principal with a personal token, or, as a
//! GitHub App (`app.rs`), as the installation that covers the repository's owner
//! (each installation with its own budget). A repository sync runs these steps in
//! order, each writing its
//! own batch with its own cursor (so a failure in a later step keeps the earlier
//! ones, and the next sync resumes each step where it stopped):
//!
//! 1. `deployments` or `workflow_runs`: new and still-pending deployments, and on
//!    the first sync one older successful deployment per production environment as
//!    the base of the first change set;
//! 2. `changes`: the change set of every consecutive pair of successful
//!    deployments the ledger lacks (`Ledger::missing_compares`): with GraphQL the
//!    deployed history in pages of 100 commits (`history.rs`) and a compare only
//!    for a pair that history cannot decide; with REST a compare per pair;
//! 3. `incidents`: issues with an incident label, per label;
//! 4. `pulls`: merged pull requests (rework labels, PR-based lead-time starts,
//!    which also read each one's commits);
//! 5. `pull_lookup` (PR-based lead-time starts only): the pull requests of the
//!    deployed changes no kept pull request names (merged before the lookback,
//!    or none: a direct push), asked once per change;
//! 6. `pull_reviews` (PR-based lead-time starts only): the first review of the
//!    pull requests of changes deployed within the longest window that no
//!    listing read (`reviews.rs`).
//!
//! `docs/sources.md` describes what is read, the cursors and the request cost.
//!
//! With `github.api = "graphql"` (the default) each cycle starts with one query
//! asking every repository for its newest deployment (`check.rs`, aliases), step 1
//! lists deployments with their statuses through GraphQL (`graphql.rs`) instead
//! of a statuses request per deployment, step 2 reads history instead of a compare
//! per deployment, and step 4's first sync lists only the merged pull requests it
//! keeps (under a PR-based lead-time start, on the pages of steps 1 and 2 first:
//! `pulls.rs`).
//!
//! Not here: webhooks, how a GitHub App authenticates (`app.rs`), and anything
//! about what counts as a DORA event beyond skipping what can never count
//! (non-production deployments, unmerged pull requests).

mod answer;
mod app;
mod changes;
mod check;
mod client;
mod deployments;
mod discovery;
mod error;
mod graphql;
mod history;
mod incidents;
mod models;
mod pull_lookup;
mod pulls;
mod reviews;
pub mod rules;
mod teams;
mod workflow_runs;

pub use crate::sources::governor::{
    Attempt, Governor, GovernorHealth, RetryPolicy, RetryReason, DEFAULT_BASE_BACKOFF,
    DEFAULT_MAX_BACKOFF, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RATE_LIMIT_WAIT, DEFAULT_MAX_RETRIES,
    DEFAULT_MIN_SECONDARY_WAIT,
};
pub use crate::sources::pace::SecondaryPace;
pub use app::{
    renewal_delay, DEFAULT_TOKEN_LIFETIME, JWT_BACKDATE, JWT_LIFETIME,
    MAX_INSTALLATION_TOKEN_BYTES, TOKEN_RENEWAL_MARGIN,
};
pub use client::{
    next_link, Endpoint, CONNECT_TIMEOUT, MAX_ERROR_BODY_BYTES, MAX_PAGES, MAX_RESPONSE_BYTES,
    PER_PAGE, READ_TIMEOUT,
};
pub use discovery::{MAX_DISCOVERY_PAGES, TEAM_TOPIC_PREFIX};
pub use error::{GithubError, MAX_SERVER_MESSAGE_CHARS};

use super::{ApiHealth, RepoSyncStats, Source, SourceError, SyncContext};
use crate::config::{
    DeploymentsConfig, GithubAuth, GithubConfig, LabelName, OrganizationConfig, RepositoryConfig,
};
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Environment, RepoName, Team, Timestamp};
use crate::dora::LeadTimeStart;
use crate::sources::Ledger;
use bytes::Bytes;
use client::{Client, Pages};
use futures::future::BoxFuture;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use tokio_util::sync::CancellationToken;

/// The `source` label and sync-status name of this source.
pub const SOURCE_NAME: &str = "github";

/// Characters escaped in a URL path segment: everything but unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What every repository sync needs from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    lookback_seconds: i64,
    /// The review window (`reviews.rs`): the longest configured window, at most
    /// the lookback.
    review_window_seconds: i64,
    production: Vec<Environment>,
    incident_labels: Vec<LabelName>,
    rework_labels: Vec<LabelName>,
    lead_time_start: LeadTimeStart,
    api: crate::config::GithubApi,
}

/// Who requests are sent as: one token, or a GitHub App's installations.
enum Auth {
    Token(Client),
    App(app::App),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token"),
            Auth::App(_) => f.write_str("Auth::App"),
        }
    }
}

/// The GitHub source for the repositories of one `[github]` configuration.
#[derive(Debug)]
pub struct GithubSource {
    auth: Auth,
    /// `[[github.organizations]]`.
    organizations: Vec<OrganizationConfig>,
    /// `[[github.repositories]]`.
    explicit: Vec<RepositoryConfig>,
    settings: Settings,
    /// This cycle's repositories, their deployments and teams: the explicit
    /// ones, and those discovered at the cycle's start.
    scope: RwLock<discovery::Scope>,
    /// Each organisation's list as last read (by login, lowercase).
    listings: tokio::sync::Mutex<HashMap<String, discovery::Listing>>,
    /// The teams of each `team_from = "github_teams"` organisation, as last read.
    team_listings: tokio::sync::Mutex<HashMap<String, teams::TeamListing>>,
    /// Organisations whose list has never been read yet (lowercase).
    unlisted: Mutex<BTreeSet<String>>,
    /// Unreadable items skipped per repository since the process started (the
    /// `dora_collector_skipped_items_total` counter).
    skipped: Mutex<BTreeMap<RepoName, u64>>,
    /// This cycle's GraphQL check: each repository's newest deployment
    /// (`check.rs`); taken by the repository's sync.
    checked: Mutex<HashMap<RepoName, check::Newest>>,
    /// This cycle's GraphQL check: the pending deployments it saw still pending.
    still_pending: Mutex<HashMap<RepoName, HashSet<u64>>>,
}

impl GithubSource {
    /// A source for `config`; fails only when the HTTP client cannot be set up
    /// (an unusable token or URL). No request is made here. Must be called within
    /// a tokio runtime.
    pub fn new(config: &GithubConfig) -> Result<GithubSource, GithubError> {
        GithubSource::with_policy(config, RetryPolicy::default())
    }

    /// [`GithubSource::new`] with `policy` for retries and rate-limit waits (tests
    /// inject short waits).
    pub fn with_policy(
        config: &GithubConfig,
        policy: RetryPolicy,
    ) -> Result<GithubSource, GithubError> {
        let auth = match &config.auth {
            GithubAuth::Token(token) => {
                Auth::Token(Client::with_policy(config.api_url.as_url(), token, policy)?)
            }
            GithubAuth::App(app) => Auth::App(app::App::new(config.api_url.as_url(), app, policy)?),
        };
        let scope = discovery::Scope::build(&config.repositories, &[], &HashMap::new(), &|_| None);
        let lookback_seconds = i64::try_from(config.lookback.as_secs()).unwrap_or(i64::MAX);
        Ok(GithubSource {
            auth,
            organizations: config.organizations.clone(),
            explicit: config.repositories.clone(),
            scope: RwLock::new(scope),
            listings: tokio::sync::Mutex::new(HashMap::new()),
            team_listings: tokio::sync::Mutex::new(HashMap::new()),
            unlisted: Mutex::new(
                config
                    .organizations
                    .iter()
                    .map(|o| o.name.as_str().to_ascii_lowercase())
                    .collect(),
            ),
            settings: Settings {
                lookback_seconds,
                review_window_seconds: lookback_seconds,
                production: config.production_environments.clone(),
                incident_labels: config.incident_labels.clone(),
                rework_labels: config.rework_labels.clone(),
                lead_time_start: config.lead_time_start,
                api: config.api,
            },
            skipped: Mutex::new(BTreeMap::new()),
            checked: Mutex::new(HashMap::new()),
            still_pending: Mutex::new(HashMap::new()),
        })
    }

    /// The source reading first reviews only where they can matter: for the
    /// changes deployed within `windows` (the configured `metrics.windows`; the
    /// longest counts, at most the lookback). Without it, within the lookback.
    pub fn with_review_window(mut self, windows: &[crate::config::Duration]) -> GithubSource {
        if let Some(longest) = windows.iter().map(|w| w.as_secs()).max() {
            let longest = i64::try_from(longest).unwrap_or(i64::MAX);
            self.settings.review_window_seconds = longest.min(self.settings.lookback_seconds);
        }
        self
    }

    /// `github.api_url` as requests use it (no trailing slash).
    pub fn api_url(&self) -> &str {
        self.base_client().base()
    }

    /// A client on the source's transport (the token's, or the App's own).
    fn base_client(&self) -> &Client {
        match &self.auth {
            Auth::Token(client) => client,
            Auth::App(app) => app.client(),
        }
    }

    /// The client `repository`'s requests are sent with: the token's, or the
    /// App installation's that covers its owner (found the first time).
    async fn client_for(
        &self,
        repository: &RepoName,
        cancel: &CancellationToken,
    ) -> Result<Client, GithubError> {
        match &self.auth {
            Auth::Token(client) => Ok(client.clone()),
            Auth::App(app) => {
                let organization = self
                    .organizations
                    .iter()
                    .any(|o| o.name.is(repository.owner()));
                let lookup = if organization {
                    app::Lookup::Organization(repository.owner())
                } else {
                    app::Lookup::Repository(repository)
                };
                app.client_for(lookup, cancel).await
            }
        }
    }

    /// The client that lists `organization`'s repositories.
    async fn client_for_organization(
        &self,
        organization: &OrganizationConfig,
        cancel: &CancellationToken,
    ) -> Result<Client, GithubError> {
        match &self.auth {
            Auth::Token(client) => Ok(client.clone()),
            Auth::App(app) => {
                app.client_for(
                    app::Lookup::Organization(organization.name.as_str()),
                    cancel,
                )
                .await
            }
        }
    }

    /// Lists every organisation (each page conditional on its kept `ETag`) and
    /// makes this cycle's scope: the explicit repositories and those the lists
    /// select. An organisation whose list fails keeps its previous list.
    async fn discover(&self, cancel: &CancellationToken) {
        if self.organizations.is_empty() {
            return;
        }
        let mut listings = self.listings.lock().await;
        let mut team_listings = self.team_listings.lock().await;
        for organization in &self.organizations {
            let login = organization.name.as_str().to_ascii_lowercase();
            let client = self.client_for_organization(organization, cancel).await;
            if let (Ok(client), crate::config::TeamFrom::GithubTeams) =
                (&client, organization.team_from)
            {
                match teams::list(client, &login, team_listings.get(&login), cancel).await {
                    Ok((listing, cost)) => {
                        tracing::debug!(
                            organization = %login,
                            requests = cost.requests,
                            not_modified = cost.not_modified,
                            "listed the organisation's teams"
                        );
                        team_listings.insert(login.clone(), listing);
                    }
                    Err(GithubError::Cancelled) => return,
                    Err(error) => tracing::error!(
                        organization = %login,
                        %error,
                        "cannot list the organisation's teams; the teams of the previous list \
                         are kept this cycle (needs the Members: read organisation permission)"
                    ),
                }
            }
            let listed = match client {
                Ok(client) => discovery::list(&client, &login, listings.get(&login), cancel).await,
                Err(error) => Err(error),
            };
            match listed {
                Ok((listing, cost)) => {
                    tracing::debug!(
                        organization = %login,
                        requests = cost.requests,
                        not_modified = cost.not_modified,
                        repositories = listing.repositories().count(),
                        "listed the organisation's repositories"
                    );
                    listings.insert(login.clone(), listing);
                    self.unlisted
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&login);
                }
                Err(GithubError::Cancelled) => return,
                Err(error) => {
                    if let (Auth::App(app), GithubError::InstallationRevoked { .. }) =
                        (&self.auth, &error)
                    {
                        app.forget(&login);
                    }
                    tracing::error!(
                        organization = %login,
                        %error,
                        "cannot list the organisation's repositories; its repositories of the \
                         previous list are synced this cycle"
                    );
                }
            }
        }
        let assignments: HashMap<String, BTreeMap<RepoName, Team>> = team_listings
            .iter()
            .map(|(login, listing)| (login.clone(), listing.assignment()))
            .collect();
        let scope = discovery::Scope::build(
            &self.explicit,
            &self.organizations,
            &listings,
            &|repository| {
                assignments
                    .get(repository.owner())
                    .and_then(|teams| teams.get(repository))
                    .cloned()
            },
        );
        drop(team_listings);
        drop(listings);
        let mut current = self.scope.write().unwrap_or_else(PoisonError::into_inner);
        let before: HashSet<&RepoName> = current.repositories.iter().collect();
        let after: HashSet<&RepoName> = scope.repositories.iter().collect();
        for added in after.difference(&before) {
            tracing::info!(repository = %added, "repository discovered; it is synced this cycle");
        }
        for removed in before.difference(&after) {
            tracing::info!(
                repository = %removed,
                "repository no longer listed or selected (removed, archived or filtered out): \
                 it is not polled any more, its history is kept"
            );
        }
        *current = scope;
    }

    /// `repositories` grouped by the client that reads them (one group with a
    /// token; one per App installation), in their order. A repository whose
    /// installation cannot be found is left out (its sync says why).
    async fn by_principal<'r>(
        &self,
        repositories: &[&'r RepoName],
        cancel: &CancellationToken,
    ) -> Vec<(Client, Vec<&'r RepoName>)> {
        let mut groups: Vec<(Client, Vec<&'r RepoName>)> = Vec::new();
        for repository in repositories {
            let client = match self.client_for(repository, cancel).await {
                Ok(client) => client,
                Err(error) => {
                    tracing::warn!(%repository, %error, "no GitHub App installation for the repository");
                    continue;
                }
            };
            match groups
                .iter_mut()
                .find(|(c, _)| std::sync::Arc::ptr_eq(c.principal(), client.principal()))
            {
                Some((_, group)) => group.push(repository),
                None => groups.push((client, vec![repository])),
            }
        }
        groups
    }

    /// After a failed sync of `repository`: an installation that refused a token
    /// is looked up again next time.
    fn after_failure(&self, repository: &RepoName, error: &SourceError) {
        if let (Auth::App(app), SourceError::Github(github)) = (&self.auth, error) {
            let revoked = match github {
                GithubError::InstallationRevoked { .. } => true,
                GithubError::GaveUp { last, .. } => {
                    matches!(**last, GithubError::InstallationRevoked { .. })
                }
                _ => false,
            };
            if revoked {
                app.forget(repository.owner());
            }
        }
    }
}

impl Source for GithubSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    fn repositories(&self) -> Vec<RepoName> {
        self.scope
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .repositories
            .clone()
    }

    fn teams(&self) -> Vec<(RepoName, Team)> {
        self.scope
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .teams
            .iter()
            .map(|(repository, team)| (repository.clone(), team.clone()))
            .collect()
    }

    fn pending_discovery(&self) -> Vec<String> {
        self.unlisted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn prepare_cycle<'a>(&'a self, context: &'a SyncContext) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.discover(&context.shutdown).await;
            self.check_cycle(context).await;
        })
    }

    fn sync_repository<'a>(
        &'a self,
        repository: &'a RepoName,
        context: &'a SyncContext,
    ) -> BoxFuture<'a, Result<RepoSyncStats, SourceError>> {
        Box::pin(async move {
            let deployments = self
                .scope
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .deployments
                .get(repository)
                .cloned()
                .unwrap_or_default();
            let checked = self
                .checked
                .lock()
                .ok()
                .and_then(|mut checked| checked.remove(repository));
            let still_pending = self
                .still_pending
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(repository))
                .unwrap_or_default();
            let client = match self.client_for(repository, &context.shutdown).await {
                Ok(client) => client,
                Err(error) => {
                    let error = SourceError::Github(error);
                    self.after_failure(repository, &error);
                    return Err(error);
                }
            };
            let sync = RepoSync {
                checked,
                still_pending,
                client: &client,
                settings: &self.settings,
                repository,
                context,
                requests: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                page_sizes: answer::PageSizes::new(),
                riding: Mutex::new(None),
                answered: Mutex::new(HashMap::new()),
                reviews_read: Mutex::new(HashSet::new()),
                stats: Mutex::new(RepoSyncStats::default()),
            };
            let result = sync.run(&deployments).await;
            if let Err(error) = &result {
                self.after_failure(repository, error);
            }
            let mut stats = sync.stats.lock().map(|s| *s).unwrap_or_default();
            stats.requests = sync.requests.load(Ordering::Relaxed);
            stats.skipped_items = sync.skipped.load(Ordering::Relaxed);
            // Counted whether the sync succeeded or not: the items were skipped.
            if stats.skipped_items > 0 {
                if let Ok(mut skipped) = self.skipped.lock() {
                    *skipped.entry(repository.clone()).or_default() += stats.skipped_items;
                }
            }
            let lookback_start =
                Timestamp(context.now.0.saturating_sub(self.settings.lookback_seconds));
            result.map(|first_sync| RepoSyncStats {
                first_sync,
                history_since: Some(lookback_start),
                ..stats
            })
        })
    }

    fn api_health(&self) -> ApiHealth {
        let principals = match &self.auth {
            Auth::Token(client) => vec![std::sync::Arc::clone(client.principal())],
            Auth::App(app) => app.principals(),
        };
        let governor = GovernorHealth::sum(principals.iter().map(|p| p.health()));
        ApiHealth::from_governor(
            self.base_client().requests(),
            governor,
            &self.skipped,
            Vec::new(),
        )
    }
}

/// One repository sync: the shared pieces and the counters of this sync.
struct RepoSync<'a> {
    /// This cycle's GraphQL check of the newest deployment, when there was one.
    checked: Option<check::Newest>,
    /// Pending deployments the check saw still pending (no re-check needed).
    still_pending: HashSet<u64>,
    client: &'a Client,
    settings: &'a Settings,
    repository: &'a RepoName,
    context: &'a SyncContext,
    requests: AtomicU64,
    skipped: AtomicU64,
    /// The GraphQL page sizes of this sync (halved while GitHub times out).
    page_sizes: answer::PageSizes,
    /// Step 4's listing while it rides on the pages of steps 1 and 2 (a first
    /// sync under a PR-based lead-time start through GraphQL).
    riding: Mutex<Option<pulls::RidingPulls>>,
    /// The merged pull requests of the commits this sync's pages named them for
    /// (`associatedPullRequests`), for step 5.
    answered: Mutex<HashMap<crate::domain::CommitSha, Vec<u64>>>,
    /// The pull requests whose first review this sync read (step 6 skips them).
    reviews_read: Mutex<HashSet<u64>>,
    stats: Mutex<RepoSyncStats>,
}

impl RepoSync<'_> {
    /// Runs every step; returns whether this was the repository's first sync.
    async fn run(&self, deployments: &DeploymentsConfig) -> Result<bool, SourceError> {
        self.start_riding_pulls().await?;
        let first = match deployments {
            DeploymentsConfig::DeploymentsApi => self.sync_deployments().await?,
            DeploymentsConfig::WorkflowRuns {
                workflow,
                branch,
                environment,
            } => {
                self.sync_workflow_runs(workflow.as_str(), branch.as_str(), environment)
                    .await?
            }
            // The push API, Argo CD or Jenkins brings the deployments; the steps
            // below read their change sets, incidents and pull requests.
            DeploymentsConfig::Push | DeploymentsConfig::ArgoCd | DeploymentsConfig::Jenkins => {
                false
            }
        };
        self.sync_changes().await?;
        for label in &self.settings.incident_labels {
            self.sync_incidents(label).await?;
        }
        self.sync_pulls().await?;
        self.sync_pull_lookup().await?;
        self.sync_pull_reviews().await?;
        Ok(first)
    }

    /// `{api}/repos/{owner}/{repo}{path}?{query}`; `path` segments must already be
    /// escaped (see [`segment`]).
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!(
            "{}/repos/{}/{}{path}",
            self.client.base(),
            segment(self.repository.owner()),
            segment(self.repository.name()),
        );
        if !query.is_empty() {
            let mut serializer = form_urlencoded::Serializer::new(String::new());
            for (name, value) in query {
                serializer.append_pair(name, value);
            }
            url.push('?');
            url.push_str(&serializer.finish());
        }
        url
    }

    /// The next page of `pages` (counted as this sync's request).
    async fn next_page(&self, pages: &mut Pages) -> Result<Option<Bytes>, GithubError> {
        pages
            .next(self.client, &self.context.shutdown, &self.requests)
            .await
    }

    /// The item, or `None` after counting and logging why it was skipped.
    fn item<T>(&self, endpoint: Endpoint, item: Result<T, models::Skip>) -> Option<T> {
        match item {
            Ok(item) => Some(item),
            Err(reason) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    repository = %self.repository,
                    endpoint = endpoint.template(),
                    reason = %self.client.redactor().clean(&reason),
                    "skipping an item GitHub returned that cannot be read"
                );
                None
            }
        }
    }

    /// Hands `batch` (with its cursors) on, to be kept in one transaction.
    async fn apply(&self, batch: SyncBatch) -> Result<(), SourceError> {
        if batch.is_empty() {
            return Ok(());
        }
        let stats = self.context.sink.keep(batch).await?;
        if let Ok(mut total) = self.stats.lock() {
            total.add_applied(&stats);
            total.batches += 1;
        }
        Ok(())
    }

    /// What was kept before (cursors, pending deployments, undecided change sets).
    fn ledger(&self) -> &dyn Ledger {
        self.context.ledger.as_ref()
    }

    /// The cursor kept under `key`, if any.
    async fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, SourceError> {
        Ok(self.ledger().cursor(key.clone()).await?)
    }

    /// The start of the lookback window: where a first sync begins.
    fn lookback_start(&self) -> Timestamp {
        Timestamp(
            self.context
                .now
                .0
                .saturating_sub(self.settings.lookback_seconds),
        )
    }

    /// The production environments as cursor names carry them: lowercase,
    /// sorted, comma-separated.
    fn production_names(&self) -> String {
        let mut environments: Vec<String> = self
            .settings
            .production
            .iter()
            .map(|e| e.as_str().to_ascii_lowercase())
            .collect();
        environments.sort();
        environments.join(",")
    }

    /// The index of the configured production environment `environment` matches
    /// (case-insensitively), if any.
    fn production_index(&self, environment: &Environment) -> Option<usize> {
        self.settings
            .production
            .iter()
            .position(|p| p.matches(environment.as_str()))
    }

    fn check_cancelled(&self) -> Result<(), SourceError> {
        if self.context.shutdown.is_cancelled() {
            Err(SourceError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The longest cursor name kept readable; a longer one ends in a hash of its
/// settings instead (the ledger bounds names at 512 bytes).
const MAX_READABLE_CURSOR: usize = 200;

/// A cursor endpoint name: `base` plus the settings that decide what its step
/// reads (`deployments?environments=production`), so that changing them in the
/// configuration gives that step a first sync again rather than silently missing
/// the history it never read.
fn cursor_name(base: &str, settings: &[(&str, String)]) -> String {
    use sha2::{Digest, Sha256};
    let query: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let name = if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", query.join("&"))
    };
    if name.len() <= MAX_READABLE_CURSOR {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{base}#{hex}")
}

/// Escapes one URL path segment.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_names_carry_their_settings_within_a_bound() {
        assert_eq!(cursor_name("pulls", &[]), "pulls");
        assert_eq!(
            cursor_name("deployments", &[("environments", "prod,production".into())]),
            "deployments?environments=prod,production"
        );
        let long = cursor_name("deployments", &[("environments", "e".repeat(500))]);
        assert_eq!(long.len(), "deployments#".len() + 16);
        assert_ne!(
            long,
            cursor_name("deployments", &[("environments", "f".repeat(500))])
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("deploy.yml"), "deploy.yml");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("my-repo_1.x"), "my-repo_1.x");
    }
}
