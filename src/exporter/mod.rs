//! The exporter: renders the engine's [`Snapshot`](crate::dora::Snapshot) and the
//! collector's [`HealthSnapshot`] as Prometheus text, and serves it over HTTP.
//!
//! The sync loop calls [`ExporterState::publish`] after every sync; that renders the
//! text once (`render`). The routes (`routes`) only hand out the latest rendered
//! bytes. Nothing here computes a metric, reads the store or talks to a source, and
//! nothing here binds a socket.
//!
//! - `health`: the collector's own health as plain data, filled by the sync loop.
//! - `render`: snapshot + health → text exposition 0.0.4; the family catalogue.
//! - `state`: the published page and readiness shared by sync loop and routes.
//! - `routes`: the axum router (`/metrics`, `/healthz`, `/readyz`); the landing
//!   page at `/` is the live report's (`report::live`), which the daemon merges in.
//!
//! Every family is documented in `docs/metrics.md`.

mod health;
mod render;
mod routes;
mod state;

pub use health::{
    HealthSnapshot, PushCount, ReplicaHealth, RepositoryHealth, SourceHealth, StoredSuccess,
    WebhookCount,
};
pub(crate) use render::metric_families;
pub use render::{all_families, render, Family, Kind, RenderError, ScopeFamilies, REPOSITORY};
pub use routes::{router, METRICS_CONTENT_TYPE};
pub use state::{ExporterOptions, ExporterState, HistoryProgress, Page, Readiness};
