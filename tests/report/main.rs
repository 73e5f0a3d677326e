//! The KPI report: numbers against the engine and golden files, the binary,
//! headless Chromium, the live `/report` page and the landing page.
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

#[path = "../report_fixture/mod.rs"]
mod report_fixture;

mod browser;
mod cli;
mod gitlab;
mod landing;
mod live;
mod rendered;
