//! The KPI report for meetings (`dora-collector report`, and the live page at
//! `/report`): the five DORA metrics (and time to restore) of a period per
//! organisation, team and repository, their levels, the change against the previous
//! period, the risks, and a 12-week trend.
//!
//! The pipeline, each step in its own module:
//! - `generate`: store + configuration → one `load_events` of the configured
//!   repositories (or one team's) and the sync status; missing store file = error.
//! - `evaluate`: the pure engine ([`crate::dora::compute`]) at the period end, at
//!   the previous period's end and at the last 12 week ends, sharing computes and
//!   running them on a few threads → [`Evaluation`].
//! - `build`: snapshots + sync status → the [`Report`] value (`model`), pairing
//!   each value with the previous period's and ranking the risks by documented rules.
//! - `render`: Markdown, HTML, JSON, CSV; they only format the report (Markdown and
//!   HTML through templates that escape every value, see [`crate::templates`]).
//! - `live`: the HTML page on request, and the axum router the daemon mounts.
//! - `period`: `--window` / `?window=` and `--until`, validated and bounded.
//!
//! Deliberately not here: no metric is defined or recomputed (every value, level
//! and sample count is the engine's), no API call, no store write, no clock read
//! outside the live page's handler. `docs/report.md` documents the command, the
//! formats and the JSON schema.

mod build;
mod evaluate;
mod generate;
mod live;
mod model;
mod period;
pub mod render;

pub use build::ReportContext;
pub use evaluate::{evaluate, Evaluation, MAX_EVALUATION_THREADS, TREND_WEEKS, WEEK_SECONDS};
pub use generate::{generate, open_configured_store, open_store, ReportError, ReportRequest};
pub use live::{
    live_page, live_router, overview_page, FrameSource, LiveQuery, LiveReport, Now, StoreOpener,
    OVERVIEW_CACHE_TTL,
};
pub use model::*;
pub(crate) use period::{parse_until, DEFAULT_WINDOW};
pub use period::{InvalidInput, ReportWindow};
pub use render::overview::Frame;
pub use render::{render, Format};
