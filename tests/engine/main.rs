//! The engine against the definitions: one test per rule, properties
//! (proptest), an independent brute-force reference, and end to end against
//! the simulator.
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

#[path = "../common/mod.rs"]
mod common;
#[path = "../reference/mod.rs"]
mod reference;

mod against_reference;
mod e2e_cicd;
mod e2e_gitlab;
mod e2e_reference;
mod properties;
mod rules;
