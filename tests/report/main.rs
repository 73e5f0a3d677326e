//! The KPI report: numbers against the engine and golden files, the binary,
//! headless Chromium, and the live `/report` page.
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

#[path = "../report_fixture/mod.rs"]
mod report_fixture;

mod browser;
mod cli;
mod live;
mod rendered;
