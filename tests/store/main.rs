//! The store: idempotency and cursors (SQLite), store → engine equality, and
//! crash safety with a real `kill -9`.
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod engine;
mod sqlite;
