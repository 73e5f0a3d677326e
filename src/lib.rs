//! dora-collector: computes the DORA software-delivery metrics from GitHub and
//! serves them to Prometheus.
//!
//! # Layout
//! - `cli`: the command line (clap): `check-config`, `serve`, `sync --once`, `demo`.
//! - `domain`: validated newtypes and the normalized events (crate `dora-domain`).
//! - `config`: the typed TOML configuration and its validation.
//! - `dora`: the pure engine — events, configuration and `now` in, a `Snapshot` out
//!   (crate `dora-engine`).
//! - `exporter`: `Snapshot` + collector health → Prometheus text; the HTTP routes.
//! - `report`: the KPI report for meetings (`report` command, `/report` page).
//! - `backfill`: the windowed families at every step of the past, as OpenMetrics
//!   text for `promtool tsdb create-blocks-from openmetrics`.
//! - `templates`: the template engine of the HTML and Markdown the collector writes
//!   (the report, the landing page), escaping every value for its format.
//! - `store`: the `Store` trait and its embedded SQLite backend (the only SQL).
//! - `ingest`: the push API (`POST /api/v1/deployments`, `/api/v1/incidents`):
//!   clients, validation, group-committed writes.
//! - `webhooks`: GitHub's webhook deliveries (`POST /webhooks/github`): verified,
//!   done once, each a hint to sync one repository at once.
//! - `request_body`: reading a request body whole, bounded in size and time (the
//!   push API, webhooks).
//! - `notify`: the push API's client for pipelines (`notify deployment|incident`).
//! - `sources`: where events come from, behind the `Source` trait; `sources::github`
//!   reads the GitHub REST API incrementally into the store.
//! - `daemon`: the scheduler (sources → store → engine → exporter), the HTTP server,
//!   graceful shutdown, the injectable clock; `sync --once` and the demo's setup.
//! - `sim`: the simulated GitHub (synthetic organisation + REST and GraphQL server)
//!   for the demo, the end-to-end tests and the benchmarks (crate `dora-sim`, only
//!   with the default feature `demo`).

pub mod backfill;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod exporter;
pub mod ingest;
pub mod notify;
pub mod report;
pub mod request_body;
pub mod sources;
pub mod store;
pub mod templates;
pub mod webhooks;

/// The shared vocabulary (crate `dora-domain`).
pub use dora_domain as domain;
/// The pure engine (crate `dora-engine`).
pub use dora_engine as dora;
/// The simulated GitHub (crate `dora-sim`), with the `demo` feature.
#[cfg(feature = "demo")]
pub use dora_sim as sim;
