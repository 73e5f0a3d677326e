//! The push API: any CI/CD system or incident tool reports deployments and
//! incidents over HTTP (`POST /api/v1/deployments`, `POST /api/v1/incidents`,
//! `docs/push.md`; `GET /api/v1/deployments/latest` tells a pipeline what it
//! deployed last), authenticated per client (`[[ingest.clients]]`), kept
//! idempotently by `(client, id)` and acknowledged only once durable.
//!
//! - `auth`: clients, bearer tokens in constant time, repository patterns, rates.
//! - `wire`: the JSON → validated items and their digests (pure).
//! - `handler`: the routes: the checks in order and the answers.
//! - `writer`: the one writer task: group commits, then answers each request.
//!
//! The daemon builds an [`Ingest`] from the configuration, merges its
//! [`Ingest::router`] into the server and watches its [`Changes`] to recompute
//! the metrics (debounced) and re-render the [`PushCounters`]. Not here: the
//! metrics (the engine does not know an event was pushed), the HTTP server
//! itself, and webhooks.

mod auth;
mod handler;
mod wire;
mod writer;

pub use auth::MAX_AUTHORIZATION_BYTES;
pub use handler::{BODY_READ_TIMEOUT, MAX_BODY_BYTES, MAX_QUERY_BYTES};
pub use wire::{
    MAX_COMMITS, MAX_COMMIT_MESSAGE_BYTES, MAX_FUTURE_SECONDS, MAX_ID_BYTES, MAX_ITEMS,
    MAX_PARENTS, MAX_TITLE_BYTES, MAX_URL_BYTES,
};
pub use writer::{Changes, WriteError, Writer, MAX_REQUESTS_PER_COMMIT, QUEUE_CAPACITY};

use crate::config::{Config, DeploymentsConfig, OrganizationConfig};
use crate::domain::{RepoName, Team, Timestamp};
use crate::store::SharedStore;
use auth::Clients;
use axum::routing::{get, post};
use axum::Router;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::task::JoinHandle;

/// How one push request ended: the `outcome` label of
/// `dora_collector_pushes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PushOutcome {
    /// `202` with at least one item new or updated.
    Accepted,
    /// `202` with every item already stored as sent (a retry).
    Duplicate,
    /// `401`: no valid token.
    Unauthorized,
    /// `403`: a repository outside the client's patterns.
    Forbidden,
    /// `400`, `408`, `415`: the request is malformed.
    Invalid,
    /// `409`: an id reused with other content, or deployments of a repository
    /// that takes them from another source.
    Conflict,
    /// `413`: the body is too large.
    TooLarge,
    /// `429`: over the client's rate.
    RateLimited,
    /// `503`: the store failed or the collector is stopping; nothing kept.
    Error,
}

impl PushOutcome {
    /// Every outcome, in label order.
    pub const ALL: [PushOutcome; 9] = [
        PushOutcome::Accepted,
        PushOutcome::Duplicate,
        PushOutcome::Unauthorized,
        PushOutcome::Forbidden,
        PushOutcome::Invalid,
        PushOutcome::Conflict,
        PushOutcome::TooLarge,
        PushOutcome::RateLimited,
        PushOutcome::Error,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            PushOutcome::Accepted => "accepted",
            PushOutcome::Duplicate => "duplicate",
            PushOutcome::Unauthorized => "unauthorized",
            PushOutcome::Forbidden => "forbidden",
            PushOutcome::Invalid => "invalid",
            PushOutcome::Conflict => "conflict",
            PushOutcome::TooLarge => "too_large",
            PushOutcome::RateLimited => "rate_limited",
            PushOutcome::Error => "error",
        }
    }
}

/// Push requests since the process started, by client (`""` without a valid
/// token) and outcome. Every configured client starts with every outcome at 0
/// (so that `increase()` sees the first one).
#[derive(Debug, Default)]
pub struct PushCounters {
    counts: Mutex<BTreeMap<(String, PushOutcome), u64>>,
}

impl PushCounters {
    fn new<'a>(clients: impl Iterator<Item = &'a str>) -> Self {
        let mut counts = BTreeMap::new();
        for client in clients {
            for outcome in PushOutcome::ALL {
                if outcome != PushOutcome::Unauthorized {
                    counts.insert((client.to_owned(), outcome), 0);
                }
            }
        }
        counts.insert((String::new(), PushOutcome::Unauthorized), 0);
        PushCounters {
            counts: Mutex::new(counts),
        }
    }

    fn add(&self, client: &str, outcome: PushOutcome) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((client.to_owned(), outcome)).or_default() += 1;
    }

    /// `(client, outcome, count)`, sorted.
    pub fn snapshot(&self) -> Vec<(String, &'static str, u64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .map(|((client, outcome), count)| (client.clone(), outcome.as_str(), *count))
            .collect()
    }
}

/// Where a configured repository's deployments come from, as the push API
/// sees it (repositories absent here take pushed deployments with commits).
#[derive(Debug, Clone, PartialEq, Eq)]
enum RepositoryDeployments {
    /// From another source (named): pushed deployments are refused.
    Elsewhere(&'static str),
    /// From the push API, with commits from the code host (pushed ones ignored).
    PushedWithCodeHost,
}

impl RepositoryDeployments {
    fn of(deployments: &DeploymentsConfig) -> RepositoryDeployments {
        match deployments {
            DeploymentsConfig::Push => RepositoryDeployments::PushedWithCodeHost,
            other => RepositoryDeployments::Elsewhere(other.source_name()),
        }
    }
}

/// What the handlers share.
struct IngestState {
    clients: Clients,
    /// The repositories of `[[github.repositories]]`.
    repositories: HashMap<RepoName, RepositoryDeployments>,
    /// `[[github.organizations]]`: a repository of one that its patterns select
    /// is discovered (unless configured by name) and takes its deployments as
    /// the organisation says.
    organizations: Vec<OrganizationConfig>,
    /// Every configured team with its repositories (a team's incidents may be
    /// pushed only for these).
    teams: BTreeMap<Team, Vec<RepoName>>,
    writer: Writer,
    /// The writer's store, for the one read (`/api/v1/deployments/latest`).
    reader: SharedStore,
    counters: Arc<PushCounters>,
    changes: Arc<Changes>,
    /// The daemon's clock (timestamps more than a few minutes after it are refused).
    now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
}

impl IngestState {
    /// Where `repository`'s deployments come from, if the configuration says:
    /// its `[[github.repositories]]` entry, else the organisation that
    /// discovers it (the one whose `include`/`exclude` select it).
    fn deployments_of(&self, repository: &RepoName) -> Option<RepositoryDeployments> {
        if let Some(deployments) = self.repositories.get(repository) {
            return Some(deployments.clone());
        }
        self.organizations
            .iter()
            .find(|org| org.name.is(repository.owner()) && org.selects(repository.name()))
            .map(|org| RepositoryDeployments::of(&org.deployments))
    }

    fn count(&self, client: &str, outcome: PushOutcome) {
        self.counters.add(client, outcome);
        self.changes.counters_changed();
    }
}

/// The push API of one daemon.
pub struct Ingest {
    state: Arc<IngestState>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    /// The push API of `config` (`None` without `[ingest]`), writing through its
    /// own `store` connection, with `now` for the future-timestamp check. Starts
    /// the writer task (it ends once the router is dropped).
    pub fn start(
        config: &Config,
        store: SharedStore,
        now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Option<(Ingest, JoinHandle<()>)> {
        let ingest = config.ingest.as_ref()?;
        let clients = Clients::new(ingest, Instant::now());
        let counters = Arc::new(PushCounters::new(clients.names()));
        let repositories = config
            .github_repositories()
            .iter()
            .map(|repo| {
                (
                    repo.name.clone(),
                    RepositoryDeployments::of(&repo.deployments),
                )
            })
            .chain(config.gitlab_projects().iter().map(|project| {
                let deployments = match &project.deployments {
                    crate::config::GitlabDeploymentsConfig::Push => {
                        RepositoryDeployments::PushedWithCodeHost
                    }
                    other => RepositoryDeployments::Elsewhere(other.source_name()),
                };
                (project.path.clone(), deployments)
            }))
            .collect();
        let organizations = config
            .github
            .as_ref()
            .map(|github| github.organizations.clone())
            .unwrap_or_default();
        let mut teams: BTreeMap<Team, Vec<RepoName>> = BTreeMap::new();
        for (repository, team) in config.engine_config().teams {
            teams.entry(team).or_default().push(repository);
        }
        let changes = Arc::new(Changes::default());
        let (writer, task) = Writer::spawn(store.clone(), Arc::clone(&changes));
        let state = IngestState {
            clients,
            repositories,
            organizations,
            teams,
            writer,
            reader: store,
            counters,
            changes,
            now,
        };
        Some((
            Ingest {
                state: Arc::new(state),
            },
            task,
        ))
    }

    /// The routes `POST /api/v1/deployments` and `POST /api/v1/incidents`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/deployments", post(handler::deployments))
            .route("/api/v1/deployments/latest", get(handler::latest))
            .route("/api/v1/incidents", post(handler::incidents))
            .with_state(Arc::clone(&self.state))
    }

    /// The push counters.
    pub fn counters(&self) -> Arc<PushCounters> {
        Arc::clone(&self.state.counters)
    }

    /// What changed since the daemon last looked.
    pub fn changes(&self) -> Arc<Changes> {
        Arc::clone(&self.state.changes)
    }
}
