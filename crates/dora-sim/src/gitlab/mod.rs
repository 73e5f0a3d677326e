//! The simulated GitLab: a group ([`GitlabGroup`], a view of an [`crate::Org`]
//! with subgroups, projects, environments and their tiers) and an HTTP server
//! speaking GitLab's REST API v4 over it ([`GitlabServer`] → [`GitlabHandle`]),
//! for the GitLab source's tests, benchmarks and the mixed demo.
//!
//! # What it models
//! - Projects at nested paths (`acme/payments/api`, `acme/web/services/cart`),
//!   found by numeric id or URL-encoded path (case-insensitively); the group's
//!   projects (`include_subgroups`).
//! - Deployments with GitLab's statuses (`created`, `running`, `success`,
//!   `failed`), their job (`deployable.finished_at`) and environment;
//!   environments with tiers (GitLab's guess from the name, or set);
//!   pipelines (the organisation's workflow runs) with `finished_at` in the
//!   single pipeline; commits with `parent_ids`, a single commit, compare;
//!   merge requests (merged with a merge commit or squashed, labelled) and
//!   their commits; issues of type `issue` or `incident`, labelled, closed or
//!   open, with a `root cause:` line in some descriptions.
//! - The filters a DORA collector uses (`updated_after`, `order_by`, `sort`,
//!   `state`, `ref`, `environment`, `status`, `issue_type`, `labels`, …) with
//!   GitLab's finder rules; offset pagination with GitLab's `x-*` headers and
//!   `Link`; keyset pagination for issues and commits; the `RateLimit-*`
//!   headers and `429` with `Retry-After`; `401` and GitLab's `404`s; a path
//!   prefix for self-managed instances under a relative URL root.
//! - Faults with the `chaos` feature (`chaos.rs`).
//!
//! # What it does not model
//! Write endpoints, webhooks, GraphQL, approvals, job logs, environments
//! without deployments, ETags, the limits GitLab puts on offsets, and the
//! behaviour of GitLab versions that lack a parameter.
//!
//! # Layout
//! - `model`: the group and the simulator's readings of GitLab's states.
//! - `render`: GitLab's JSON entities.
//! - `api`: routes, filters, sorting, pagination.
//! - `server`: HTTP, the token, the rate limit, counters.
//! - `chaos`: faults (feature `chaos`).

mod api;
#[cfg(feature = "chaos")]
mod chaos;
mod model;
mod render;
mod server;

pub use api::API_PATH;
pub use model::{
    deployment_view, issue_type, pipeline_view, DeploymentStatus, DeploymentView,
    GitlabDeploySource, GitlabGroup, GitlabProject, GroupSpec, SimEnvironment, Tier, DEEP_SUBGROUP,
    LIVE_ENVIRONMENT,
};
pub use server::{
    GitlabHandle, GitlabOptions, GitlabServer, DEFAULT_GITLAB_RATE_LIMIT, GITLAB_RATE_LIMIT_WINDOW,
    GITLAB_SIM_TOKEN,
};
