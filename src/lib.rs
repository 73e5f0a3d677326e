//! dora-collector: computes the DORA software-delivery metrics from GitHub and
//! serves them to Prometheus.
//!
//! # Layout
//! - `domain`: validated newtypes and the normalized events.
//! - `config`: the typed TOML configuration and its validation.
//! - `dora`: the pure engine — events, configuration and `now` in, a `Snapshot` out.
//! - `sim`: the simulated GitHub (synthetic organisation + REST server) for the demo,
//!   the end-to-end tests and the benchmarks.

pub mod config;
pub mod domain;
pub mod dora;
pub mod sim;
