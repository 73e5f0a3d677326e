//! The deployment artifacts: container, compose, systemd and Kubernetes files,
//! the Grafana dashboards, the Prometheus rules (promtool) and a real
//! Prometheus scraping the daemon, and two replicas on one PostgreSQL store.
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

#[path = "../deploy_common/mod.rs"]
mod deploy_common;
#[path = "../postgres_common/mod.rs"]
mod postgres_common;
#[path = "../reference/prom.rs"]
#[allow(dead_code)]
mod prom;
#[path = "../report_fixture/mod.rs"]
mod report_fixture;

mod artifacts;
mod backfill_e2e;
mod dashboards;
mod prometheus_e2e;
#[path = "../replicas_common/mod.rs"]
mod replicas_common;
mod replicas_e2e;
mod rules;
