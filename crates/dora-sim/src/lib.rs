//! The simulated GitHub: a deterministic synthetic organisation ([`OrgSpec`] →
//! [`Org`]) and an HTTP server speaking GitHub's REST and GraphQL APIs over it
//! ([`SimServer`] → [`SimHandle`]). Used by `dora-collector demo` (offline, no
//! token), the end-to-end tests and the benchmarks.
//!
//! # What it models
//! - Repositories with a `main` branch whose history has realistic parent links:
//!   mostly linear (squash merges, direct pushes) with merge commits of two
//!   parents; author dates before commit and deploy times, except a few skewed
//!   ones after their deploy (clock skew); `Revert "..."` commits.
//! - Deployments API: production and `staging` deployments of `main` shas, with
//!   statuses (`queued`, `in_progress`, then `success`, `failure` or `error`; some
//!   later `inactive`; a few still pending at `now`); rollbacks (a deployment of
//!   an earlier, already deployed sha).
//! - GitHub Actions: repositories whose deployments are runs of `deploy.yml` on
//!   `main` (successes, failures, cancellations, runs in progress, rollbacks as
//!   `workflow_dispatch` runs of an older sha) plus runs on other branches.
//! - Issues: `incident`-labelled issues after some deployments, some naming a
//!   `root cause: <7..40 hex>` (some of which match nothing), closed, open or
//!   reopened; plain issues; pull requests listed among issues with their
//!   `pull_request` key, as GitHub does.
//! - Pull requests: merged (squash or merge commit, some labelled `hotfix`),
//!   abandoned, and open ones with branches.
//! - The REST endpoints a DORA collector reads (`/repos/{owner}/{repo}` and its
//!   `deployments`, `deployments/{id}/statuses`, `actions/workflows/{id}/runs`,
//!   `actions/runs`, `compare/{basehead}`, `commits`, `commits/{ref}`,
//!   `commits/{sha}/pulls`, `issues`, `pulls`, `pulls/{n}/commits`;
//!   `/orgs/{org}/repos`, `/rate_limit`; also under `/repositories/{id}/...`, the
//!   form GitHub's `Link` headers use), in the shapes of GitHub's OpenAPI
//!   description, with GitHub's pagination (`per_page`, `page`, `Link`), rate
//!   limit (`x-ratelimit-*`, 403 when spent), conditional requests (`ETag`,
//!   `If-None-Match` → free 304), authentication (401 `Bad credentials`) and
//!   errors (404, 422).
//! - GraphQL (`POST /graphql`, [`server::graphql`]): every query validated
//!   against GitHub's real public schema (syntax, fields, arguments, types,
//!   fragments, variables) and GitHub's connection rules (`first`/`last` required,
//!   1–100, at most 500,000 nodes), answered with GitHub's error shapes; executed
//!   over the same organisation for the subset a DORA collector reads:
//!   `repository` (several per query through aliases) with `deployments` and
//!   their `statuses`/`latestStatus`, `defaultBranchRef`/`ref`/`object` →
//!   `Commit` with `history` and `parents`, `issues`, `pullRequests` with
//!   `labels`, `commits` and `mergeCommit`; `rateLimit`, `viewer`. Opaque keyset
//!   cursors; every call charged by GitHub's documented point formula against a
//!   separate `graphql` budget (`x-ratelimit-resource: graphql`, `RATE_LIMITED`
//!   when spent); requests and points counted in the handle.
//! - GitHub Apps ([`SimApp`], [`server::app`]): JWTs verified with the App's
//!   public key, installations per organisation, installation tokens that expire
//!   (401 `Bad credentials` after), each installation with a budget of its own
//!   (flat, or GitHub's rule growing with its repositories:
//!   [`InstallationBudgets::Github`]); several organisations served at once
//!   ([`SimServer::start_orgs`]).
//! - Secondary rate limits from actual load, when [`SimOptions::secondary_limits`]
//!   is set: points per minute (REST 900, GraphQL 2,000) and 100 concurrent
//!   requests per principal, `403` with `retry-after` over them
//!   ([`server::secondary`]).
//! - Change while serving: [`SimHandle::with_org_mut`] and the `Org` mutation
//!   methods (`add_deployment`, `merge_pull`, `open_incident`, `close_issue`, ...).
//! - Faults on purpose, to test a client's resilience: see *Chaos* below.
//!
//! # Chaos
//! [`ChaosOptions`] (in [`SimOptions::chaos`], or at run time with
//! [`SimHandle::set_chaos`]) makes the server misbehave like GitHub and the network
//! in front of it do. All off by default; the draws come from a ChaCha8 stream
//! seeded with `seed`, so a client sending one request at a time sees the same
//! faults on every run. Per-request rates (at most one fault per request; they sum
//! to at most 1):
//! - `reset_rate`: the TCP connection is reset (RST, zero linger) before any
//!   response byte;
//! - `server_error_rate`: `500` with a JSON `Server Error` body;
//! - `bad_gateway_rate`: `502` with an HTML page, as a proxy sends;
//! - `secondary_limit_rate` / `too_many_requests_rate`: `403` / `429` with GitHub's
//!   secondary-rate-limit message and `retry-after: <retry_after>`; the token then
//!   gets the same answer until `retry_after` has passed, and each such request is
//!   a secondary-limit violation ([`SimHandle::secondary_limit_violations`]);
//! - `slow_rate`: the response starts `slow_delay` late (at most
//!   [`server::chaos::MAX_SLOW_DELAY`]);
//! - `truncated_rate`: `Content-Length` of the whole body, half of it sent, then
//!   the connection ends.
//!
//! And `new_items_rate`: before serving page 2+ of `deployments`, `actions/runs`,
//! `actions/workflows/{id}/runs`, `issues` or `commits`, a new item is inserted at
//! the head of that list (at the organisation's `now`), shifting every offset as
//! concurrent writes do on GitHub. `max_consecutive_faults` (default 3) caps the
//! faults in a row on one request, so a client retrying a few times always gets
//! every response, identical to a fault-free run. Faults answered by the chaos
//! layer cost no rate-limit budget and are counted in [`SimHandle::chaos_counts`],
//! not in `request_counts`; the primary rate limit takes precedence (a request sent
//! with the budget spent is never faulted and counts as a violation). Details:
//! [`server::chaos`].
//!
//! # What it does not model
//! - GraphQL beyond the collector's subset (other fields answer "not supported
//!   by the simulator"), mutations, introspection; GitHub's graphql-ruby wording
//!   of validation messages (the simulator uses apollo-compiler's).
//! - Webhooks, any write endpoint, the secondary limits on CPU time and content
//!   creation, GitHub App webhooks and per-installation permissions,
//!   `Last-Modified` /
//!   `If-Modified-Since` (only `ETag` / `If-None-Match`).
//! - File trees, diffs and patches (`files` lists are empty), tags, releases,
//!   environments as objects, milestones, assignees, comments, reactions.
//! - Issue filters beyond `state`, `labels`, `since`, `sort`, `direction`,
//!   `creator`, `milestone`/`assignee` (`none` only); commit filters beyond `sha`,
//!   `since`, `until`, `author` (`path` and `committer` are ignored).
//! - Real statistics of any organisation: rates are knobs, draws are synthetic.
//! - Time passing: the organisation does not evolve on its own; a long `demo` run
//!   shows the same history unless a caller mutates it (e.g.
//!   `Org::ship_everywhere`). Mutations are not checked against the generator's
//!   invariants (a test may deliberately deploy an odd sha).
//!
//! # Argo CD and Jenkins
//! [`cicd`] simulates the two CI/CD systems the collector also reads
//! deployments from: Argo CD's applications (`status.history`,
//! `status.operationState`, `revisionHistoryLimit`) and Jenkins' jobs and
//! builds (folders, multibranch projects, `tree`, `builds` and `allBuilds`),
//! each served over HTTP with its own authentication and, with `chaos`,
//! resets, `5xx` and `429`s.
//!
//! # Layout
//! - `cicd`: the simulated Argo CD and Jenkins.
//! - `spec`: the generator's knobs and defaults.
//! - `model`: the organisation's data and its mutation methods.
//! - `history`: git history queries (log, compare, ref resolution).
//! - `generate`: the seeded generator.
//! - `names`: word lists for names and texts.
//! - `server`: HTTP (`route` parsing, `api` endpoints, `render` JSON shapes,
//!   `chaos` faults, `graphql` for `POST /graphql`: `cost` limits and points,
//!   `resolve` fields).
//! - `gitlab`: the same organisation as a GitLab group, and a server speaking
//!   GitLab's REST API v4 over it (with its own faults on `chaos`).
//! - `pagerduty`: the simulated PagerDuty (its own account, generator and
//!   server), for the collector's PagerDuty source.

/// The shared vocabulary, under the name the simulator's modules use.
use dora_domain as domain;

pub mod cicd;
mod generate;
pub mod gitlab;
mod history;
mod model;
mod names;
pub mod pagerduty;
pub mod server;
mod spec;

pub use history::{Comparison, MIN_REF_PREFIX};
pub use model::{
    CommitMessage, DeploySource, MergeStyle, MutationError, NewDeployment, NewIssue, NewOutcome,
    NewPull, NewRun, Org, OrgStats, Person, RunConclusion, RunEvent, RunStatus, SimBranch,
    SimCommit, SimDeployment, SimIssue, SimPull, SimRepo, SimStatus, SimTeam, SimWorkflow,
    SimWorkflowRun, Text, ACTIONS_BOT_LOGIN, DEPLOY_TASK, HOTFIX_LABEL, ID_BLOCK_SPAN,
    INCIDENT_LABEL, NO_PARENT,
};
pub use server::app::{app_key_pair, SimApp, SimAppError, SimInstallation};
#[cfg(feature = "chaos")]
pub use server::chaos::{
    ChaosCounts, ChaosError, ChaosOptions, Fault, DEFAULT_MAX_CONSECUTIVE_FAULTS,
};
pub use server::secondary::{SecondaryCounts, SecondaryLimits};
pub use server::{
    github_installation_limit, InstallationBudgets, RateLimitState, RequestCounts, RequestRecord,
    SimHandle, SimOptions, SimServer, TokenUse, DEFAULT_RATE_LIMIT, DEFAULT_RATE_LIMIT_WINDOW,
    ENTERPRISE_GRAPHQL_PATH, ENTERPRISE_REST_PREFIX, MAX_RECORDED_REQUESTS, SIM_TOKEN,
};
pub use spec::{OrgSpec, DEFAULT_NOW, DEPLOY_WORKFLOW_FILE, PRODUCTION, SECONDS_PER_DAY, STAGING};
