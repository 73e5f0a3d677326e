//! The store: idempotency and cursors (on SQLite and on PostgreSQL), PostgreSQL's
//! own errors and migrations, store → engine equality, and crash safety with a
//! real `kill -9`.
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

#[path = "../common/mod.rs"]
mod common;
#[path = "../postgres_common/mod.rs"]
mod postgres_common;

mod crash;
mod engine;
mod migrate;
mod postgres;
mod push;
mod sqlite;
