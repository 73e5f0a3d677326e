//! Step 1 for workflow-run repositories (`deployments = { from = "workflow_runs",
//! workflow, branch, environment }`): runs of the configured workflow on the
//! configured branch are deployments of their `head_sha` to the configured
//! environment (`docs/computation.md` § Deployments, `rules::outcome_from_workflow_run`).
//!
//! The list is always the same URL (`branch=…&per_page=100`, newest first), so
//! that the `ETag` of its first page, kept from the sync before, answers `304`
//! (free) while nothing changed, from the first idle sync on. (A `created>=`
//! filter would move with the cursor, and a new URL has no `ETag` yet.)
//!
//! Cursor `workflow_runs?workflow=…&branch=…`: `since` is where the listing stops
//! (after the page holding the first run created before it): the creation time of
//! the oldest run still in progress (so it is read again until it completes),
//! else of the newest run seen. `opaque` is the first page's `ETag`. A run that
//! completed as neither `success` nor `failure` (cancelled, skipped, ...) never
//! deployed: it is not kept and does not hold the cursor back.
//!
//! The first sync lists runs back to the start of the lookback window, plus the
//! newest successful run created before it (one request, `per_page=1`) as the
//! base.

use super::client::{Endpoint, Pages, PER_PAGE};
use super::models;
use super::rules::outcome_from_workflow_run;
use super::RepoSync;
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Deployment, DeploymentOutcome, DeploymentSource, Environment, Timestamp};
use crate::sources::SourceError;
use std::collections::HashSet;

/// The cursor endpoint name's base; the name also carries the workflow and the
/// branch.
pub const CURSOR: &str = "workflow_runs";

/// GitHub returns at most this many runs for a filtered query (`branch` is a
/// filter); a window with more runs than this loses the oldest ones (logged).
pub const MAX_FILTERED_RUNS: u64 = 1000;

impl RepoSync<'_> {
    /// Step 1 (workflow runs). Returns whether this was the first sync.
    pub(super) async fn sync_workflow_runs(
        &self,
        workflow: &str,
        branch: &str,
        environment: &Environment,
    ) -> Result<bool, SourceError> {
        let repository = self.repository.clone();
        let name = super::cursor_name(
            CURSOR,
            &[
                ("workflow", workflow.to_owned()),
                ("branch", branch.to_owned()),
            ],
        );
        let key = CursorKey::new(repository.clone(), name);
        let cursor = self.cursor(&key).await?;
        let terminal = self
            .ledger()
            .terminal_deployment_ids(repository.clone(), DeploymentSource::GithubWorkflowRuns)
            .await?;
        let first = cursor.is_none();
        let since = cursor
            .as_ref()
            .and_then(|c| c.since)
            .unwrap_or_else(|| self.lookback_start());
        let path = format!("/actions/workflows/{}/runs", super::segment(workflow));
        let per_page = PER_PAGE.to_string();
        let url = self.url(&path, &[("branch", branch), ("per_page", &per_page)]);
        let mut pages = Pages::new(
            Endpoint::WorkflowRuns,
            url.clone(),
            cursor.and_then(|c| c.opaque),
        );
        let mut batch = SyncBatch::new(self.repository.clone());
        let mut listed = HashSet::new();
        let mut newest: Option<Timestamp> = None;
        let mut oldest_pending: Option<Timestamp> = None;
        let mut reached_since = false;
        while let Some(body) = self.next_page(&mut pages).await? {
            let (runs, _) = models::runs_page(&body, &url)?;
            for value in runs {
                let Some(run) = self.item(Endpoint::WorkflowRuns, models::workflow_run(value))
                else {
                    continue;
                };
                if run.created_at < since {
                    // Newest first: every later run is older still.
                    reached_since = true;
                    continue;
                }
                if !listed.insert(run.id) || run.head_branch.as_deref() != Some(branch) {
                    continue;
                }
                newest = newest.max(Some(run.created_at));
                let Some(deployment) = self.run_deployment(&run, environment) else {
                    continue;
                };
                if deployment.outcome == DeploymentOutcome::Pending {
                    oldest_pending = Some(
                        oldest_pending.map_or(run.created_at, |o: Timestamp| o.min(run.created_at)),
                    );
                }
                if !terminal.contains(&run.id) {
                    batch.deployments.push(deployment);
                }
            }
            if reached_since {
                break;
            }
        }
        if !pages.not_modified && !reached_since && listed.len() as u64 >= MAX_FILTERED_RUNS {
            tracing::warn!(
                repository = %self.repository,
                "more workflow runs since {since} than GitHub returns for one query \
                 ({MAX_FILTERED_RUNS}); the oldest are not read"
            );
        }
        if first {
            self.check_cancelled()?;
            self.base_run(&path, branch, since, environment, &mut batch)
                .await?;
        }
        if !pages.not_modified {
            let next_since = oldest_pending.or(newest).map_or(since, |t| t.max(since));
            batch.cursors.push((
                key,
                Cursor {
                    since: Some(next_since),
                    opaque: pages.etag.clone(),
                    updated_at: self.context.now,
                },
            ));
        }
        self.apply(batch).await?;
        Ok(first)
    }

    /// The run as a deployment; `None` for a run that completed without deploying
    /// or failing (cancelled, skipped, ...): it never counts.
    fn run_deployment(
        &self,
        run: &models::WireRun,
        environment: &Environment,
    ) -> Option<Deployment> {
        let outcome =
            outcome_from_workflow_run(&run.status, run.conclusion.as_deref(), run.updated_at);
        if run.status == "completed" && outcome == DeploymentOutcome::Pending {
            return None;
        }
        Some(Deployment {
            source: DeploymentSource::GithubWorkflowRuns,
            repository: self.repository.clone(),
            id: run.id,
            environment: environment.clone(),
            sha: run.head_sha,
            created_at: run.created_at,
            outcome,
        })
    }

    /// The newest successful run created before `before`, as the base.
    async fn base_run(
        &self,
        path: &str,
        branch: &str,
        before: Timestamp,
        environment: &Environment,
        batch: &mut SyncBatch,
    ) -> Result<(), SourceError> {
        let url = self.url(
            path,
            &[
                ("branch", branch),
                ("status", "success"),
                ("created", &format!("<{before}")),
                ("per_page", "1"),
            ],
        );
        let mut pages = Pages::new(Endpoint::WorkflowRuns, url.clone(), None);
        let Some(body) = self.next_page(&mut pages).await? else {
            return Ok(());
        };
        let (runs, _) = models::runs_page(&body, &url)?;
        let base = runs
            .into_iter()
            .filter_map(|value| self.item(Endpoint::WorkflowRuns, models::workflow_run(value)))
            .filter(|run| run.head_branch.as_deref() == Some(branch))
            .filter_map(|run| self.run_deployment(&run, environment))
            .find(|d| matches!(d.outcome, DeploymentOutcome::Succeeded { .. }));
        match base {
            Some(base) => batch.deployments.push(base),
            None => tracing::info!(
                repository = %self.repository,
                %environment,
                "no successful workflow run older than the lookback window; the first \
                 deployment in the window has no base and contributes no lead times"
            ),
        }
        Ok(())
    }
}
