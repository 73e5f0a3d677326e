//! The `dora-collector` binary: parses the command line and hands it to the library.
//! Each command sets up its own logging (see `dora_collector::cli`), because a
//! daemon's `[log]` settings come from the configuration file it is given.

use clap::Parser;
use dora_collector::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run(Cli::parse())
}
