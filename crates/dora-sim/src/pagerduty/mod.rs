//! The simulated PagerDuty: an account of services and incidents
//! ([`PdSpec`] → [`PdAccount`], or built by hand with its mutation methods) and
//! a server speaking PagerDuty's REST API v2 over it ([`PdServer`] →
//! [`PdHandle`]), for the collector's PagerDuty tests and benchmarks.
//!
//! # What it models
//! - Services (`GET /services/{id}`; an unknown id is `404`).
//! - Incidents of services, with `incident_number`, `urgency`, `created_at`,
//!   `status`, `last_status_change_at` and `resolved_at` read from their log;
//!   `GET /incidents` with its filters (`service_ids[]`, `since`/`until`
//!   (at most 6 months apart, one month by default), `date_range=all`,
//!   `statuses[]`, `urgencies[]`, `sort_by`) and classic offset pagination
//!   (`offset`, `limit` ≤ 100, `more`, `total` only with `total=true`,
//!   `offset + limit` ≤ 10,000); `GET /incidents/{id}` with `include[]=body`.
//! - Log entries (`trigger_log_entry`, `acknowledge_log_entry`,
//!   `annotate_log_entry`, `resolve_log_entry`; a trigger after a resolve
//!   re-opens), newest first, paginated; notes (not paginated).
//! - Keys (`Authorization: Token token=…`, `401` code 2006), the rate limit
//!   (960 a minute, `ratelimit-*` headers, `429` code 2020), PagerDuty's error
//!   body `{"error": {"message", "code", "errors"}}`, and with the `chaos`
//!   feature `429`s, `5xx`s and connection resets on purpose ([`PdChaos`]).
//!
//! # What it does not model
//! Alerts, users, teams, escalation policies (references only), webhooks,
//! writes, `include[]` other than `body`, time zones (everything is UTC), the
//! account's abilities, cursor-based pagination.
//!
//! What it is based on: `fixtures/pagerduty/NOTICE`.

mod generate;
mod model;
mod server;

pub use generate::{PdServiceSpec, PdSpec};
pub use model::{
    PdAccount, PdIncident, PdLogEntry, PdLogKind, PdMutationError, PdNote, PdService, PdStatus,
    PdUrgency,
};
#[cfg(feature = "chaos")]
pub use server::PdChaos;
pub use server::{
    PdHandle, PdOptions, PdServer, PD_ACCEPT, PD_DEFAULT_RATE_LIMIT, PD_RATE_LIMIT_WINDOW,
    PD_SIM_TOKEN,
};
