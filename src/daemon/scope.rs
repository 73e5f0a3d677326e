//! The daemon's scope: the repositories the metrics cover and the engine's
//! configuration for them (each one's team and production environments), as of
//! the latest sync round. With `[[github.organizations]]` it changes while the
//! daemon runs (discovery at the start of each cycle); the scheduler renews it
//! after every round and the push publisher reads it, so both compute the same
//! snapshot.
//!
//! Not here: discovery itself (the GitHub source), readiness (the exporter is
//! told the scope's repositories by the scheduler).

use crate::config::Config;
use crate::domain::{Environment, RepoName};
use crate::dora::EngineConfig;
use crate::sources::Source;
use std::sync::{Arc, PoisonError, RwLock};

/// What the configuration fixes about the scope.
#[derive(Debug, Clone)]
pub(crate) struct ScopeBase {
    /// The engine's configuration with the configured teams.
    engine: EngineConfig,
    /// GitHub's production environments when the push API has others (then
    /// every GitHub repository, discovered ones too, keeps GitHub's).
    github_production: Option<Vec<Environment>>,
}

impl ScopeBase {
    pub(crate) fn new(config: &Config) -> ScopeBase {
        let engine = config.engine_config();
        // The default list is the push API's when it differs from GitHub's
        // (GitLab's projects have their own, named per project).
        let github_production = config
            .github
            .as_ref()
            .map(|github| github.production_environments.clone())
            .filter(|production| *production != engine.production_environments);
        ScopeBase {
            engine,
            github_production,
        }
    }

    /// Whether the configuration names `repository` (rather than discovery).
    pub(crate) fn configured(&self, repository: &RepoName) -> bool {
        self.engine.teams.contains_key(repository)
    }

    /// The scope of `sources` now: their repositories, in order, and the engine
    /// with the teams they decide (over the configured ones). A source's units
    /// that are no repository (PagerDuty's services, `-pagerduty/<id>`) are
    /// left out: their incidents reach the repositories they name.
    pub(crate) fn current(&self, sources: &[Arc<dyn Source>]) -> (Vec<RepoName>, EngineConfig) {
        let mut engine = self.engine.clone();
        let mut repositories = Vec::new();
        for source in sources {
            for repository in source.repositories() {
                if !is_repository(&repository) {
                    continue;
                }
                if let Some(production) = &self.github_production {
                    // A discovered repository (GitHub's) takes GitHub's; a
                    // configured one keeps what the configuration gave it.
                    engine
                        .production_by_repository
                        .entry(repository.clone())
                        .or_insert_with(|| production.clone());
                }
                if !repositories.contains(&repository) {
                    repositories.push(repository);
                }
            }
            engine.teams.extend(source.teams());
        }
        (repositories, engine)
    }
}

/// Whether a source's unit is a repository (not a PagerDuty service's unit).
pub(crate) fn is_repository(unit: &RepoName) -> bool {
    unit.owner() != crate::sources::pagerduty::UNIT_OWNER
}

/// The latest scope, shared by the scheduler (which renews it) and the push
/// publisher (which reads it).
#[derive(Debug, Clone)]
pub(crate) struct SharedScope(Arc<RwLock<(Vec<RepoName>, EngineConfig)>>);

impl SharedScope {
    pub(crate) fn new(repositories: Vec<RepoName>, engine: EngineConfig) -> SharedScope {
        SharedScope(Arc::new(RwLock::new((repositories, engine))))
    }

    /// The repositories and the engine's configuration.
    pub(crate) fn get(&self) -> (Vec<RepoName>, EngineConfig) {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, repositories: Vec<RepoName>, engine: EngineConfig) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = (repositories, engine);
    }
}
