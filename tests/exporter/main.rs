//! The exporter: the rendered `/metrics` text (golden, promtool, format rules)
//! and its HTTP server.
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

#[path = "../exporter_fixture/mod.rs"]
mod exporter_fixture;

mod http;
mod metrics;
