//! Step 1 for Deployments-API projects: the deployments that changed since the
//! cursor, the environments of tier `production`, and on the first sync the
//! base of each production environment's first change set.
//!
//! The list is read whole, not filtered by environment: one listing finds every
//! production environment, those named in `production_environments` and those
//! of tier `production`, and deployments of every environment are kept (the
//! engine counts only production ones), so a newly configured environment needs
//! no new read.
//!
//! Cursor `deployments`: `since` is the newest `updated_at` listed, the next
//! `updated_after` (GitLab matches at or after it, so the newest one is listed
//! again: an idle sync is one small page); `opaque` is `cutoff=<epoch>`, the
//! start of the first sync's lookback window: deployments created before it are
//! never kept (but the bases), whenever GitLab lists them. A pending
//! deployment (`created`, `running`, `blocked`) changes its `updated_at` when it
//! ends, so it comes back by itself: nothing is read again per deployment.
//!
//! Cursor `environments`: `since` is when the list was read, `opaque`
//! `max_id=<id>` and the names of tier `production` (one a line). The list is
//! read on the first sync, when a deployment names an environment created since
//! (a higher id), and at least every [`ENVIRONMENTS_REFRESH_SECONDS`] (a tier
//! changed in GitLab's settings); each read hands the tier-production names on
//! to be kept with the repository (the engine counts them as production).
//!
//! The first sync's base: per production environment, the newest successful
//! deployment created before the cutoff (`status=success`,
//! `order_by=finished_at`, `finished_before` the cutoff plus
//! [`BASE_FINISH_MARGIN_SECONDS`], so that one created just before the cutoff
//! and finished after it is found too).

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models::{self, WireDeployment, WireEnvironment};
use super::rules;
use super::{cutoff_opaque, kept_cutoff, newest, ProjectSync};
use crate::domain::batch::{Cursor, SyncBatch, MAX_CURSOR_OPAQUE_BYTES};
use crate::domain::{Deployment, DeploymentOutcome, DeploymentSource, Environment, Timestamp};
use crate::sources::SourceError;
use std::collections::HashSet;

/// The cursor endpoint names of this step.
pub const CURSOR: &str = "deployments";
/// See the module documentation.
pub const ENVIRONMENTS_CURSOR: &str = "environments";

/// How often the environments are read again at the latest, so that a tier set
/// in GitLab's settings counts within a day.
pub const ENVIRONMENTS_REFRESH_SECONDS: i64 = 86_400;

/// How long after the cutoff a base candidate may have finished: deployments
/// take minutes, so a day finds every one created before the cutoff.
pub const BASE_FINISH_MARGIN_SECONDS: i64 = 86_400;

/// Pages of base candidates read per environment at most.
pub const MAX_BASE_PAGES: usize = 3;

/// The most tier-production environment names kept in the cursor (and used by
/// the change-set step's bookkeeping); more are logged.
pub const MAX_TIER_PRODUCTION: usize = 64;

const MAX_ID_PREFIX: &str = "max_id=";

/// What the environments cursor keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct KeptEnvironments {
    max_id: Option<u64>,
    production: Vec<Environment>,
    read_at: Option<Timestamp>,
}

impl KeptEnvironments {
    fn from_cursor(cursor: Option<&Cursor>) -> Self {
        let Some(cursor) = cursor else {
            return KeptEnvironments::default();
        };
        let opaque = cursor.opaque.as_deref().unwrap_or("");
        let mut lines = opaque.lines();
        let max_id = lines
            .next()
            .and_then(|l| l.strip_prefix(MAX_ID_PREFIX))
            .and_then(|n| n.parse().ok());
        let production = lines.filter_map(|l| Environment::parse(l).ok()).collect();
        KeptEnvironments {
            max_id,
            production,
            read_at: cursor.since,
        }
    }

    fn opaque(&self) -> String {
        let mut out = format!("{MAX_ID_PREFIX}{}", self.max_id.unwrap_or(0));
        for environment in &self.production {
            if out.len() + 1 + environment.as_str().len() > MAX_CURSOR_OPAQUE_BYTES {
                break;
            }
            out.push('\n');
            out.push_str(environment.as_str());
        }
        out
    }
}

impl ProjectSync<'_> {
    /// Step 1 (Deployments API). Returns whether this was the first sync.
    pub(super) async fn sync_deployments(&self) -> Result<bool, SourceError> {
        let repository = self.repository.clone();
        let key = self.cursor_key(CURSOR.to_owned());
        let cursor = self.cursor(&key).await?;
        let first = cursor.is_none();
        let cutoff = cursor
            .as_ref()
            .and_then(|c| kept_cutoff(c.opaque.as_deref()))
            .unwrap_or_else(|| self.lookback_start());
        let since = cursor.as_ref().and_then(|c| c.since).unwrap_or(cutoff);
        let environments_key = self.cursor_key(ENVIRONMENTS_CURSOR.to_owned());
        let mut kept =
            KeptEnvironments::from_cursor(self.cursor(&environments_key).await?.as_ref());
        self.set_tier_production(&kept.production);
        let source = DeploymentSource::GitlabDeployments;
        let terminal = self
            .ledger()
            .terminal_deployment_ids(repository.clone(), source)
            .await?;

        let url = self.url(
            "/deployments",
            &[
                ("updated_after", &since.to_string()),
                ("order_by", "updated_at"),
                ("sort", "desc"),
                ("per_page", &PER_PAGE.to_string()),
            ],
        );
        let mut pages = Pages::new(Endpoint::Deployments, url.clone());
        let mut batch = SyncBatch::new(repository.clone());
        let mut listed = HashSet::new();
        let mut newest_update: Option<Timestamp> = None;
        let mut new_environment = false;
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                let Some(wire) = self.item(Endpoint::Deployments, models::deployment(value)) else {
                    continue;
                };
                // A deployment updated while we page moves to the front: it may
                // come twice.
                if !listed.insert(wire.id) {
                    continue;
                }
                newest_update = Some(newest(newest_update, wire.updated_at));
                new_environment |= wire
                    .environment_id
                    .is_some_and(|id| kept.max_id.is_none_or(|max| id > max));
                if wire.created_at < cutoff || terminal.contains(&wire.id) {
                    continue;
                }
                if let Some(deployment) = self.to_deployment(&wire) {
                    batch.deployments.push(deployment);
                }
            }
        }

        let stale = kept
            .read_at
            .is_none_or(|at| self.context.now.0 - at.0 >= ENVIRONMENTS_REFRESH_SECONDS);
        let mut environments = None;
        if first || new_environment || stale {
            self.check_cancelled()?;
            let listed = self.environments().await?;
            kept = KeptEnvironments {
                max_id: listed.iter().map(|e| e.id).max().or(kept.max_id),
                production: tier_production(&listed),
                read_at: Some(self.context.now),
            };
            self.set_tier_production(&kept.production);
            batch.production_environments = Some(kept.production.clone());
            batch.cursors.push((
                environments_key,
                Cursor {
                    since: Some(self.context.now),
                    opaque: Some(kept.opaque()),
                    updated_at: self.context.now,
                },
            ));
            environments = Some(listed);
        }
        if first {
            let names: Vec<String> = environments
                .iter()
                .flatten()
                .filter(|e| {
                    rules::is_production(&e.name, e.tier.as_deref(), &self.settings.production)
                })
                .map(|e| e.name.clone())
                .collect();
            for name in names {
                self.check_cancelled()?;
                if let Some(base) = self.base(&name, cutoff).await? {
                    batch.deployments.push(base);
                } else {
                    tracing::info!(
                        repository = %self.repository,
                        environment = %name,
                        "no successful deployment older than the lookback window was found; \
                         the first deployment in the window has no base and contributes no \
                         lead times"
                    );
                }
            }
        }
        batch.cursors.push((
            key,
            Cursor {
                since: Some(newest(newest_update, since)),
                opaque: Some(cutoff_opaque(cutoff)),
                updated_at: self.context.now,
            },
        ));
        self.apply(batch).await?;
        Ok(first)
    }

    fn set_tier_production(&self, environments: &[Environment]) {
        if let Ok(mut tiers) = self.tier_production.lock() {
            *tiers = environments.to_vec();
        }
    }

    /// A listed deployment as a domain deployment; `None` for one that never
    /// deploys (canceled, skipped).
    fn to_deployment(&self, wire: &WireDeployment) -> Option<Deployment> {
        let outcome =
            rules::outcome_of_deployment(&wire.status, wire.finished_at, wire.updated_at)?;
        let environment = match Environment::parse(&wire.environment) {
            Ok(environment) => environment,
            Err(error) => {
                self.item::<()>(Endpoint::Deployments, Err(format!("environment: {error}")));
                return None;
            }
        };
        Some(Deployment {
            source: DeploymentSource::GitlabDeployments,
            repository: self.repository.clone(),
            id: wire.id,
            environment,
            sha: wire.sha,
            created_at: wire.created_at,
            outcome,
        })
    }

    /// Every environment of the project.
    async fn environments(&self) -> Result<Vec<WireEnvironment>, SourceError> {
        let url = self.url("/environments", &[("per_page", &PER_PAGE.to_string())]);
        let mut pages = Pages::new(Endpoint::Environments, url.clone());
        let mut out = Vec::new();
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                // A name holding the token is never kept (nor its tier).
                let environment =
                    models::item::<WireEnvironment>(value, "environment").and_then(|environment| {
                        let name = &environment.name;
                        if self.client.redactor().redact(name) == *name {
                            Ok(environment)
                        } else {
                            Err("environment: a name holding the token".to_owned())
                        }
                    });
                out.extend(self.item(Endpoint::Environments, environment));
            }
        }
        Ok(out)
    }

    /// The newest successful deployment to `environment` created before
    /// `cutoff`, if any.
    async fn base(
        &self,
        environment: &str,
        cutoff: Timestamp,
    ) -> Result<Option<Deployment>, SourceError> {
        let before = Timestamp(cutoff.0.saturating_add(BASE_FINISH_MARGIN_SECONDS));
        let url = self.url(
            "/deployments",
            &[
                ("environment", environment),
                ("status", "success"),
                ("order_by", "finished_at"),
                ("sort", "desc"),
                ("finished_before", &before.to_string()),
                ("per_page", &PER_PAGE.to_string()),
            ],
        );
        let mut pages = Pages::new(Endpoint::Deployments, url.clone());
        let mut best: Option<Deployment> = None;
        let mut read = 0;
        while let Some(body) = self.next_page(&mut pages).await? {
            read += 1;
            for value in models::array(&body, &url)? {
                let Some(wire) = self.item(Endpoint::Deployments, models::deployment(value)) else {
                    continue;
                };
                if wire.created_at >= cutoff {
                    continue;
                }
                let Some(deployment) = self.to_deployment(&wire) else {
                    continue;
                };
                if !matches!(deployment.outcome, DeploymentOutcome::Succeeded { .. }) {
                    continue;
                }
                let better = best
                    .as_ref()
                    .is_none_or(|b| (deployment.created_at, deployment.id) > (b.created_at, b.id));
                if better {
                    best = Some(deployment);
                }
            }
            if best.is_some() || read >= MAX_BASE_PAGES {
                pages.stop();
            }
        }
        Ok(best)
    }
}

/// The names of the environments of tier `production`, sorted, at most
/// [`MAX_TIER_PRODUCTION`].
fn tier_production(environments: &[WireEnvironment]) -> Vec<Environment> {
    let mut names: Vec<Environment> = environments
        .iter()
        .filter(|e| e.tier.as_deref() == Some(rules::PRODUCTION_TIER))
        .filter_map(|e| Environment::parse(&e.name).ok())
        .collect();
    names.sort();
    names.dedup();
    if names.len() > MAX_TIER_PRODUCTION {
        tracing::warn!(
            environments = names.len(),
            "more environments of tier production than are tracked; the first \
             {MAX_TIER_PRODUCTION} by name count"
        );
        names.truncate(MAX_TIER_PRODUCTION);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environments_cursor_round_trips() {
        let kept = KeptEnvironments {
            max_id: Some(42),
            production: vec![
                Environment::parse("live").unwrap(),
                Environment::parse("prod eu").unwrap(),
            ],
            read_at: Some(Timestamp(7)),
        };
        let cursor = Cursor {
            since: Some(Timestamp(7)),
            opaque: Some(kept.opaque()),
            updated_at: Timestamp(7),
        };
        assert_eq!(KeptEnvironments::from_cursor(Some(&cursor)), kept);
        assert_eq!(
            KeptEnvironments::from_cursor(None),
            KeptEnvironments::default()
        );
        let many = KeptEnvironments {
            production: (0..1000)
                .map(|i| Environment::parse(&format!("production-{i}")).unwrap())
                .collect(),
            ..kept
        };
        assert!(many.opaque().len() <= MAX_CURSOR_OPAQUE_BYTES);
    }

    #[test]
    fn only_tier_production_environments_are_declared() {
        let environments = vec![
            WireEnvironment {
                id: 1,
                name: "staging".into(),
                tier: Some("staging".into()),
            },
            WireEnvironment {
                id: 2,
                name: "live".into(),
                tier: Some("production".into()),
            },
            WireEnvironment {
                id: 3,
                name: "production".into(),
                tier: None,
            },
        ];
        let names: Vec<String> = tier_production(&environments)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["live"]);
    }
}
