//! Step 1 for pipeline projects (`deployments = { from = "pipelines", ref,
//! environment }`): pipelines on the configured ref are deployments of their
//! sha to the configured environment (`rules::outcome_of_pipeline`).
//!
//! Cursor `pipelines?ref=…&environment=…`: `since` is the newest `updated_at`
//! listed (the next `updated_after`, with `order_by=updated_at`); `opaque` the
//! first sync's cutoff, as for deployments. A pipeline's list entry has no
//! `finished_at`: each finished pipeline not yet kept as final is read once
//! (`GET /pipelines/{id}`) for it; a running one is kept pending and comes back
//! in the list when it ends.
//!
//! The first sync's base: the newest successful pipeline on the ref created
//! before the cutoff (`status=success`, `updated_before` the cutoff plus a day).

use super::client::{Endpoint, Pages, PER_PAGE};
use super::deployments::{BASE_FINISH_MARGIN_SECONDS, MAX_BASE_PAGES};
use super::models::{self, WirePipeline};
use super::rules;
use super::{cursor_name, cutoff_opaque, kept_cutoff, newest, GitlabError, ProjectSync};
use crate::domain::batch::{Cursor, SyncBatch};
use crate::domain::{Deployment, DeploymentOutcome, DeploymentSource, Environment, Timestamp};
use crate::sources::SourceError;
use std::collections::HashSet;

/// The cursor endpoint name's base; the name also carries the ref and the
/// environment.
pub const CURSOR: &str = "pipelines";

impl ProjectSync<'_> {
    /// Step 1 (pipelines). Returns whether this was the first sync.
    pub(super) async fn sync_pipelines(
        &self,
        git_ref: &str,
        environment: &Environment,
    ) -> Result<bool, SourceError> {
        let repository = self.repository.clone();
        let name = cursor_name(
            CURSOR,
            &[
                ("ref", git_ref.to_owned()),
                ("environment", environment.to_string()),
            ],
        );
        let key = self.cursor_key(name);
        let cursor = self.cursor(&key).await?;
        let first = cursor.is_none();
        let cutoff = cursor
            .as_ref()
            .and_then(|c| kept_cutoff(c.opaque.as_deref()))
            .unwrap_or_else(|| self.lookback_start());
        let since = cursor.as_ref().and_then(|c| c.since).unwrap_or(cutoff);
        let terminal = self
            .ledger()
            .terminal_deployment_ids(repository.clone(), DeploymentSource::GitlabPipelines)
            .await?;
        let url = self.url(
            "/pipelines",
            &[
                ("ref", git_ref),
                ("updated_after", &since.to_string()),
                ("order_by", "updated_at"),
                ("sort", "desc"),
                ("per_page", &PER_PAGE.to_string()),
            ],
        );
        let mut pages = Pages::new(Endpoint::Pipelines, url.clone());
        let mut listed = HashSet::new();
        let mut newest_update: Option<Timestamp> = None;
        let mut wanted: Vec<WirePipeline> = Vec::new();
        while let Some(body) = self.next_page(&mut pages).await? {
            for value in models::array(&body, &url)? {
                let Some(pipeline) = self.item(Endpoint::Pipelines, models::pipeline(value)) else {
                    continue;
                };
                if !listed.insert(pipeline.id) {
                    continue;
                }
                newest_update = Some(newest(newest_update, pipeline.updated_at));
                if pipeline.git_ref != git_ref
                    || pipeline.created_at < cutoff
                    || terminal.contains(&pipeline.id)
                {
                    continue;
                }
                wanted.push(pipeline);
            }
        }
        let mut batch = SyncBatch::new(repository.clone());
        for pipeline in wanted {
            self.check_cancelled()?;
            let pipeline = if rules::pipeline_is_final(&pipeline.status) {
                match self.pipeline(pipeline.id).await? {
                    Some(detail) => detail,
                    None => continue,
                }
            } else {
                pipeline
            };
            batch
                .deployments
                .extend(self.pipeline_deployment(&pipeline, environment));
        }
        if first {
            self.check_cancelled()?;
            match self.base_pipeline(git_ref, cutoff, environment).await? {
                Some(base) => batch.deployments.push(base),
                None => tracing::info!(
                    repository = %self.repository,
                    %environment,
                    "no successful pipeline older than the lookback window; the first \
                     deployment in the window has no base and contributes no lead times"
                ),
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

    /// The pipeline as a deployment; `None` for one that never deploys.
    fn pipeline_deployment(
        &self,
        pipeline: &WirePipeline,
        environment: &Environment,
    ) -> Option<Deployment> {
        let outcome = rules::outcome_of_pipeline(
            &pipeline.status,
            pipeline.finished_at,
            pipeline.updated_at,
        )?;
        Some(Deployment {
            source: DeploymentSource::GitlabPipelines,
            repository: self.repository.clone(),
            id: pipeline.id,
            environment: environment.clone(),
            sha: pipeline.sha,
            created_at: pipeline.created_at,
            outcome,
        })
    }

    /// One pipeline with its `finished_at`; `None` when GitLab no longer has it.
    async fn pipeline(&self, id: u64) -> Result<Option<WirePipeline>, SourceError> {
        let url = self.url(&format!("/pipelines/{id}"), &[]);
        let body = match self.get(Endpoint::Pipeline, &url).await {
            Ok(body) => body,
            Err(GitlabError::NotFound { .. }) => {
                self.item::<()>(Endpoint::Pipeline, Err(format!("pipeline {id} is gone")));
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| GitlabError::InvalidBody {
                url: url.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        Ok(self.item(Endpoint::Pipeline, models::pipeline(value)))
    }

    /// The newest successful pipeline on `git_ref` created before `cutoff`.
    async fn base_pipeline(
        &self,
        git_ref: &str,
        cutoff: Timestamp,
        environment: &Environment,
    ) -> Result<Option<Deployment>, SourceError> {
        let before = Timestamp(cutoff.0.saturating_add(BASE_FINISH_MARGIN_SECONDS));
        let url = self.url(
            "/pipelines",
            &[
                ("ref", git_ref),
                ("status", "success"),
                ("updated_before", &before.to_string()),
                ("order_by", "updated_at"),
                ("sort", "desc"),
                ("per_page", &PER_PAGE.to_string()),
            ],
        );
        let mut pages = Pages::new(Endpoint::Pipelines, url.clone());
        let mut best: Option<WirePipeline> = None;
        let mut read = 0;
        while let Some(body) = self.next_page(&mut pages).await? {
            read += 1;
            for value in models::array(&body, &url)? {
                let Some(pipeline) = self.item(Endpoint::Pipelines, models::pipeline(value)) else {
                    continue;
                };
                if pipeline.git_ref != git_ref || pipeline.created_at >= cutoff {
                    continue;
                }
                if best
                    .as_ref()
                    .is_none_or(|b| (pipeline.created_at, pipeline.id) > (b.created_at, b.id))
                {
                    best = Some(pipeline);
                }
            }
            if best.is_some() || read >= MAX_BASE_PAGES {
                pages.stop();
            }
        }
        let Some(best) = best else {
            return Ok(None);
        };
        let Some(detail) = self.pipeline(best.id).await? else {
            return Ok(None);
        };
        Ok(self
            .pipeline_deployment(&detail, environment)
            .filter(|d| matches!(d.outcome, DeploymentOutcome::Succeeded { .. })))
    }
}
