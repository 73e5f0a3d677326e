//! The daemon end to end against the simulated GitHub, on 127.0.0.1 only: the
//! golden `/metrics` page, restarts, incremental syncs, errors, faults (chaos, rate
//! limits, retries), pagination, the `/report` page at the daemon's clock and the
//! `sync --once` command; the push API and `notify`, end to end against the
//! brute-force reference (`notify_e2e.rs`); GitHub webhooks (`webhooks.rs`); and
//! the binary against the corpus of invalid configurations (`config_cli.rs`).

// The engine's tests use all of it; these only part.
#[path = "../postgres_common/mod.rs"]
mod postgres_common;
#[allow(unused_imports)]
#[path = "../reference/mod.rs"]
mod reference;
mod scenario;
#[allow(dead_code)]
#[path = "../../benches/support/store_history.rs"]
mod store_history;
mod support;

mod app;
mod canary;
mod cicd;
mod cli;
mod config_cli;
mod crash;
mod discovery;
mod enterprise;
mod errors;
mod faults;
mod gitlab;
mod golden;
mod graphql;
mod hostile;
mod incremental;
mod migrate;
mod notify;
mod notify_e2e;
mod pagerduty;
mod pagination;
mod postgres;
mod push;
mod report;
mod webhooks;
