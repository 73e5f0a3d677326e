//! The command line of `dora-collector`: the clap definitions, the exit statuses, and
//! the commands: `check-config`, `report` (the KPI report from the store), `serve`
//! (the daemon), `sync --once` and `demo` (the daemon against the built-in
//! simulated GitHub). The daemon itself is
//! `daemon::run`; this module only parses, sets up logging and signals, and reports.
//!
//! Every command is one variant of [`Command`] holding its own `Args` struct; one
//! that reads a configuration file flattens [`ConfigFile`] so that `--config FILE`
//! is spelled the same everywhere. A command returns `Result<(), CliError>`, and
//! [`run`] turns the error into one report on stderr and an exit status:
//! [`EXIT_INVALID_CONFIG`] (2) for a configuration with problems, [`EXIT_FAILURE`]
//! (1) for anything else. Output goes to writers passed in, so tests run commands
//! in-process. Nothing printed here ever contains the token.
//!
//! Logging is set up by each command once it knows its `[log]` settings (a daemon
//! reads them from its file); `check-config` uses the defaults, as the file it checks
//! may be broken.

use crate::config::{Config, ConfigError, LogConfig, LogFormat};
use crate::daemon::{self, CancellationToken, Clock, CycleReport, SystemClock};
#[cfg(feature = "demo")]
use crate::daemon::{demo, RunOptions};
use crate::domain::{Team, Timestamp};
use crate::report::{self, Format, ReportRequest, ReportWindow, DEFAULT_WINDOW};
#[cfg(feature = "demo")]
use crate::sim::gitlab::{GitlabGroup, GitlabOptions, GitlabServer};
#[cfg(feature = "demo")]
use crate::sim::{Org, SimOptions, SimServer};
use anyhow::Context as _;
#[cfg(feature = "demo")]
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeSet;
use std::env::VarError;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[cfg(feature = "demo")]
/// The simulator's rate-limit budget in `demo`: GitHub's 5000 an hour would make a
/// larger demo organisation wait an hour, which is not what the demo is about.
pub const DEMO_RATE_LIMIT: u64 = 1_000_000;

#[cfg(feature = "demo")]
/// How long `demo` waits for its simulated GitHub to stop after the daemon has.
pub const DEMO_SIMULATOR_STOP: std::time::Duration = std::time::Duration::from_secs(2);

/// Exit status for a configuration file that was read but has problems.
pub const EXIT_INVALID_CONFIG: u8 = 2;
/// Exit status for every other error (a file that cannot be read, I/O, ...).
pub const EXIT_FAILURE: u8 = 1;

/// Collects DORA software-delivery metrics from GitHub and serves them to Prometheus.
#[derive(Debug, Parser)]
#[command(name = "dora-collector", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a configuration file and report every problem in it.
    ///
    /// Prints a one-line summary and exits 0 when the file is valid. Otherwise prints
    /// every problem on stderr, one per line as FILE:LINE: KEY: MESSAGE, and exits 2
    /// (1 when the file cannot be read).
    CheckConfig(CheckConfigArgs),

    /// Write the KPI report for meetings, from the store alone (no API calls).
    ///
    /// The five DORA metrics (and time to restore) for the period, their levels and
    /// the change against the previous period of the same length, per organisation,
    /// team and repository, the risks and a 12-week trend. See docs/report.md.
    Report(ReportArgs),

    /// Write a year of history for Prometheus, from the store alone.
    ///
    /// The windowed DORA families (repository, team, organisation) as /metrics
    /// would have exported them at every --step from --from to --until, as
    /// OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`. See
    /// docs/backfill.md.
    Backfill(BackfillArgs),

    /// Run the daemon: poll GitHub, keep the store, serve /metrics.
    ///
    /// Listens on server.listen; stops gracefully on SIGTERM or Ctrl-C: in-flight
    /// requests and store writes may finish for server.shutdown_grace_period (10s by
    /// default), then the process exits 0. SIGHUP is logged and ignored.
    Serve(ServeArgs),

    /// Sync every repository once, then exit.
    ///
    /// Shows a progress bar on a terminal, log lines otherwise. Exits 1 naming the
    /// repositories that failed, if any.
    Sync(SyncArgs),

    /// Run the daemon against a built-in SIMULATED GitHub organisation.
    ///
    /// No token and no network needed: a generated organisation is served by a fake
    /// GitHub on 127.0.0.1, the store is a temporary file removed on exit. Prints the
    /// URL to open. (Not in a build without the `demo` feature.)
    #[cfg(feature = "demo")]
    Demo(DemoArgs),

    /// Work on a store directly (the daemon stopped).
    #[command(subcommand)]
    Store(StoreCommand),

    /// Record a deployment or an incident through the push API (for pipelines).
    ///
    /// The token comes from DORA_INGEST_TOKEN. Retries connection errors, 5xx and
    /// 429 with the same id until the deadline. Exits 0 once stored, 1 when the
    /// collector refused it or could not be reached in time, 2 for bad arguments.
    /// See docs/push.md.
    Notify(NotifyArgs),
}

/// `store ...`
#[derive(Debug, Clone, Subcommand)]
pub enum StoreCommand {
    /// Copy a whole store into another: SQLite to PostgreSQL or back.
    ///
    /// The target is created (or brought to the current schema) and must be
    /// empty; an interrupted migration resumes where it stopped when run again
    /// with the same arguments. Every table's rows are counted on both sides at
    /// the end: exits 0 when all match, 1 otherwise. Stop the daemons of both
    /// stores first. See docs/operations.md.
    Migrate(StoreMigrateArgs),
}

/// `store migrate`
#[derive(Debug, Clone, Args)]
pub struct StoreMigrateArgs {
    /// The store to copy: sqlite:PATH (a file that exists) or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The store to fill, in the same forms; created when missing.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// How often `store migrate` tells how far a table has come.
const MIGRATE_PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// `notify`
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub what: NotifyWhat,
}

/// What `notify` records.
#[derive(Debug, Clone, Subcommand)]
pub enum NotifyWhat {
    /// A deployment (POST /api/v1/deployments).
    Deployment(NotifyDeploymentArgs),
    /// An incident (POST /api/v1/incidents).
    Incident(NotifyIncidentArgs),
}

/// Where `notify` sends, shared by both kinds.
#[derive(Debug, Clone, Args)]
pub struct NotifyTarget {
    /// The collector's base URL, e.g. http://dora-collector:9184.
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub url: String,
    /// Give up after this long (all attempts together): 30s, 2m, ...
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub deadline: std::time::Duration,
}

/// The outcome of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NotifyStatus {
    Success,
    Failure,
}

/// `notify deployment`
#[derive(Debug, Clone, Args)]
pub struct NotifyDeploymentArgs {
    #[command(flatten)]
    pub target: NotifyTarget,
    /// The repository deployed, owner/name.
    #[arg(long, value_name = "OWNER/NAME", value_parser = crate::domain::RepoName::parse)]
    pub repository: crate::domain::RepoName,
    /// The environment deployed to.
    #[arg(long, value_name = "NAME", value_parser = crate::domain::Environment::parse)]
    pub environment: crate::domain::Environment,
    /// The commit deployed (40 hex digits).
    #[arg(long, value_name = "SHA", value_parser = crate::domain::CommitSha::parse)]
    pub sha: crate::domain::CommitSha,
    /// Whether it reached the environment.
    #[arg(long, value_enum)]
    pub status: NotifyStatus,
    /// Your id of this deployment; default: the CI system's run (GitHub Actions,
    /// Jenkins, GitLab, Buildkite, CircleCI, Tekton).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// When it started (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = Timestamp::parse_rfc3339)]
    pub started_at: Option<Timestamp>,
    /// When it finished (RFC 3339); default: now.
    #[arg(long, value_name = "TIME", value_parser = Timestamp::parse_rfc3339)]
    pub finished_at: Option<Timestamp>,
    /// Send the commits it ships, from the git clone at DIR: those reachable from
    /// --sha and not from the collector's latest deployed sha (for a repository
    /// whose code host the collector does not read).
    #[arg(long, value_name = "DIR")]
    pub commits_from_git: Option<PathBuf>,
}

/// `notify incident`
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["repository", "team"])))]
pub struct NotifyIncidentArgs {
    #[command(flatten)]
    pub target: NotifyTarget,
    /// The repository affected, owner/name.
    #[arg(long, value_name = "OWNER/NAME", value_parser = crate::domain::RepoName::parse)]
    pub repository: Option<crate::domain::RepoName>,
    /// The team affected, instead of a repository (attributed to the team's
    /// repository latest in production at --created-at; docs/push.md).
    #[arg(long, value_name = "TEAM", value_parser = parse_team)]
    pub team: Option<Team>,
    /// Your id of the incident (the same id again with --resolved-at resolves it).
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// When it started (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = Timestamp::parse_rfc3339)]
    pub created_at: Timestamp,
    /// When it was resolved (RFC 3339); absent while open.
    #[arg(long, value_name = "TIME", value_parser = Timestamp::parse_rfc3339)]
    pub resolved_at: Option<Timestamp>,
    /// The commit that caused it (7 to 40 hex digits).
    #[arg(long, value_name = "SHA", value_parser = crate::domain::ShaPrefix::parse)]
    pub root_cause: Option<crate::domain::ShaPrefix>,
    /// A title.
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
}

fn parse_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected an http:// or https:// URL".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain a user name or password (the token is DORA_INGEST_TOKEN)".to_owned(),
        );
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::config::Duration::parse(text)
        .map(|d| d.to_std())
        .map_err(|e| e.to_string())
}

/// `--config FILE`, shared by every command that reads a configuration file.
#[derive(Debug, Clone, Args)]
pub struct ConfigFile {
    /// The configuration file (TOML); see docs/configuration.md.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// `check-config`
#[derive(Debug, Clone, Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub file: ConfigFile,
}

/// `serve`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub file: ConfigFile,
}

/// `sync`
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    /// Sync once and exit (required: the continuous mode is `serve`).
    #[arg(long, required = true)]
    pub once: bool,
}

/// `demo`
#[cfg(feature = "demo")]
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the demo's HTTP server listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9184")]
    pub listen: SocketAddr,
    /// Repositories in the simulated organisation.
    #[arg(long, value_name = "N", default_value_t = demo::DEFAULT_REPOSITORIES,
          value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from))]
    pub repositories: usize,
    /// Days of simulated history.
    #[arg(long, value_name = "N", default_value_t = demo::DEFAULT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Seed of the generator: the same seed gives the same organisation.
    #[arg(long, value_name = "N", default_value_t = demo::DEFAULT_SEED)]
    pub seed: u64,
    /// Projects on the simulated GitLab, over the same teams (a mixed
    /// organisation); 0 for GitHub only.
    #[arg(long, value_name = "N", default_value_t = demo::DEFAULT_GITLAB_PROJECTS,
          value_parser = clap::value_parser!(u16).range(0..=1000).map(usize::from))]
    pub gitlab_projects: usize,
}

/// `report`
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub file: ConfigFile,

    /// The length of the period: a whole number then s, m, h or d, from 1h to 366d.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_WINDOW, value_parser = ReportWindow::parse)]
    pub window: ReportWindow,

    /// The end of the period: an RFC 3339 time (2024-03-31T18:00:00Z), or a date
    /// (2024-03-31) meaning the end of that day, 23:59:59 UTC. Default: now.
    #[arg(long, value_name = "DATE", value_parser = report::parse_until)]
    pub until: Option<Timestamp>,

    /// Only the repositories of this team (as configured).
    #[arg(long, value_name = "TEAM", value_parser = parse_team)]
    pub team: Option<Team>,

    /// The output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Markdown)]
    pub format: FormatArg,

    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Above this many evaluations ...
const SPLIT_HINT_MIN_STEPS: u64 = 31;
/// ... and this many bytes, `backfill` suggests `--split`.
const SPLIT_HINT_MIN_BYTES: u64 = 64 * 1024 * 1024;

/// `backfill`
#[derive(Debug, Clone, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub file: ConfigFile,

    /// The first evaluation: an RFC 3339 time, or a date (2024-01-01) meaning the
    /// start of that day, 00:00:00 UTC.
    #[arg(long, value_name = "DATE", value_parser = parse_from)]
    pub from: Timestamp,

    /// No evaluation after this: an RFC 3339 time, or a date meaning the end of
    /// that day. Default: now.
    #[arg(long, value_name = "DATE", value_parser = report::parse_until)]
    pub until: Option<Timestamp>,

    /// Time between two evaluations: a whole number then s, m, h or d.
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = parse_duration)]
    pub step: std::time::Duration,

    /// The OpenMetrics file to write (replaced only once complete).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: PathBuf,

    /// One file per evaluation (history.om -> history.2025-01-01T00-00-00Z.om, ...):
    /// promtool reads a file once per two hours it spans, so for many
    /// repositories or a long range this is far faster to turn into blocks.
    #[arg(long)]
    pub split: bool,
}

/// `--from`: a date is the start of that day (UTC).
fn parse_from(text: &str) -> Result<Timestamp, report::InvalidInput> {
    let until = report::parse_until(text)?;
    if text.len() == 10 && !text.contains('T') {
        // The end of the day, 23:59:59 → its start.
        return Ok(Timestamp(until.0 - 86_399));
    }
    Ok(until)
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Tables for a wiki page or a GitHub issue.
    Markdown,
    /// One self-contained page with charts (prints on A4).
    Html,
    /// The documented, versioned schema (docs/report.md).
    Json,
    /// One row per team and repository, for spreadsheets.
    Csv,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Html => Format::Html,
            FormatArg::Json => Format::Json,
            FormatArg::Csv => Format::Csv,
        }
    }
}

fn parse_team(text: &str) -> Result<Team, crate::domain::DomainError> {
    Team::parse(text)
}

/// Why a command failed; decides the exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
    /// Arguments that cannot work (exit status 2, like clap's own).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(ConfigError::Invalid { .. }) | CliError::Usage(_) => {
                EXIT_INVALID_CONFIG
            }
            CliError::Config(ConfigError::Read { .. }) | CliError::Other(_) => EXIT_FAILURE,
        }
    }

    /// Writes the error for a person: every problem of an invalid file on its own
    /// line, then one summary line; any other error on one line with its causes.
    pub fn report(&self, err: &mut dyn Write) -> io::Result<()> {
        match self {
            CliError::Config(ConfigError::Invalid { path, problems }) => {
                for problem in problems {
                    writeln!(err, "{}", problem.in_file(path))?;
                }
                let count = problems.len();
                writeln!(
                    err,
                    "error: {} is invalid ({count} problem{})",
                    path.display(),
                    if count == 1 { "" } else { "s" }
                )
            }
            // Its message already ends with the I/O cause.
            CliError::Config(error @ ConfigError::Read { .. }) => writeln!(err, "error: {error}"),
            CliError::Other(error) => writeln!(err, "error: {error:#}"),
            CliError::Usage(message) => writeln!(err, "error: {message}"),
        }
    }
}

/// Runs a parsed command line; the binary's whole `main`.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::CheckConfig(args) => init_tracing(&LogConfig::default())
            .map_err(CliError::from)
            .and_then(|()| {
                check_config(&args, |name| std::env::var(name), &mut io::stdout().lock())
            }),
        Command::Report(args) => init_tracing(&LogConfig::default())
            .map_err(CliError::from)
            .and_then(|()| {
                let now = SystemClock.now();
                report(
                    &args,
                    |name| std::env::var(name),
                    now,
                    &mut io::stdout().lock(),
                )
            }),
        Command::Backfill(args) => init_tracing(&LogConfig::default())
            .map_err(CliError::from)
            .and_then(|()| {
                backfill(
                    &args,
                    |name| std::env::var(name),
                    SystemClock.now(),
                    &mut io::stdout().lock(),
                )
            }),
        Command::Serve(args) => serve(&args),
        Command::Sync(args) => sync(&args, &mut io::stdout().lock()),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo(&args, &mut io::stdout().lock()),
        Command::Store(StoreCommand::Migrate(args)) => init_tracing(&LogConfig::default())
            .map_err(CliError::from)
            .and_then(|()| {
                store_migrate(
                    &args,
                    &crate::store::MigrateOptions::default(),
                    &mut io::stdout().lock(),
                    &mut io::stderr(),
                )
            }),
        Command::Notify(args) => init_tracing(&LogConfig::default())
            .map_err(CliError::from)
            .and_then(|()| {
                notify(
                    &args,
                    |name| std::env::var(name).ok(),
                    SystemClock.now(),
                    &mut io::stdout().lock(),
                )
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // If stderr itself is gone there is nobody left to tell.
            let _ = error.report(&mut io::stderr().lock());
            ExitCode::from(error.exit_code())
        }
    }
}

/// `store migrate`: copies the store, its progress on `err`, the verified counts
/// on `out`. A URL that cannot be parsed is a usage error (2), never echoed with
/// its password; everything else exits 1.
pub fn store_migrate(
    args: &StoreMigrateArgs,
    options: &crate::store::MigrateOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    use crate::store::{MigrateError, MigrateEvent, StoreUrl};
    let parse = |flag: &str, text: &str| {
        StoreUrl::parse(text).map_err(|reason| CliError::Usage(format!("{flag}: {reason}")))
    };
    let from = parse("--from", &args.from)?;
    let to = parse("--to", &args.to)?;
    let started = std::time::Instant::now();
    let mut last_shown: Option<(&'static str, std::time::Instant)> = None;
    let mut show = |event: MigrateEvent| {
        // Progress only: a closed stderr must not stop the copy.
        let _ = match event {
            MigrateEvent::Started {
                source,
                target,
                resumed: false,
            } => writeln!(err, "copying {source} into {target}"),
            MigrateEvent::Started {
                source,
                target,
                resumed: true,
            } => writeln!(
                err,
                "resuming the unfinished copy of {source} into {target}"
            ),
            MigrateEvent::Copying {
                table,
                copied,
                total,
            } => {
                let first = last_shown.is_none_or(|(shown, _)| shown != table);
                let due = first
                    || last_shown.is_some_and(|(_, at)| at.elapsed() >= MIGRATE_PROGRESS_INTERVAL);
                if !due || total == 0 || copied >= total {
                    return;
                }
                last_shown = Some((table, std::time::Instant::now()));
                if first && copied == 0 {
                    writeln!(err, "{table}: copying {total} rows")
                } else {
                    writeln!(err, "{table}: {copied} of {total} rows")
                }
            }
            MigrateEvent::Copied { table, copied } => {
                writeln!(err, "{table}: {copied} rows copied")
            }
            MigrateEvent::Verifying => {
                writeln!(err, "counting the rows of every table on both sides")
            }
        };
    };
    let result = crate::store::migrate(&from, &to, options, &mut show);
    let report = match &result {
        Ok(report) | Err(MigrateError::CountsDiffer(report)) => report,
        Err(_) => {
            return result
                .map(|_| ())
                .map_err(|error| CliError::Other(error.into()))
        }
    };
    let write = |out: &mut dyn Write| -> io::Result<()> {
        writeln!(out, "{:<26} {:>12} {:>12}", "table", "source", "target")?;
        for counts in &report.counts {
            let mark = if counts.source == counts.target {
                ""
            } else {
                "  DIFFERS"
            };
            writeln!(
                out,
                "{:<26} {:>12} {:>12}{mark}",
                counts.table, counts.source, counts.target
            )?;
        }
        Ok(())
    };
    write(out).context("cannot write the counts")?;
    let report = result.map_err(|error| CliError::Other(error.into()))?;
    writeln!(
        out,
        "verified: every table of {} has as many rows in {}; {} rows written in {:.1}s{}",
        report.source,
        report.target,
        report.written,
        started.elapsed().as_secs_f64(),
        if report.resumed { " (resumed)" } else { "" }
    )
    .context("cannot write the counts")?;
    Ok(())
}

/// Sends `tracing` events to stderr as text or JSON lines, at `log.level` or as the
/// `RUST_LOG` environment variable says when it is set. Once per process.
pub fn init_tracing(log: &LogConfig) -> anyhow::Result<()> {
    init_tracing_to(log, io::stderr)
}

/// [`init_tracing`] writing to `writer` (the progress bar of `sync --once` wraps
/// stderr so that log lines do not tear it).
pub fn init_tracing_to<W>(log: &LogConfig, writer: W) -> anyhow::Result<()>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) => EnvFilter::try_new(&directives)
            .map_err(|e| anyhow::anyhow!("RUST_LOG={directives:?} is not a valid filter: {e}"))?,
        Err(_) => EnvFilter::new(log.level.as_str()),
    };
    // Colours only for a person at a terminal, never in files or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(writer);
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// `check-config`: loads the file with variables from `lookup` and writes the
/// one-line summary to `out`.
pub fn check_config<F>(
    args: &CheckConfigArgs,
    lookup: F,
    out: &mut dyn Write,
) -> Result<(), CliError>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    let path = &args.file.config;
    let config = Config::load_with(path, lookup)?;
    writeln!(out, "{}: OK: {}", path.display(), summary(&config))
        .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    Ok(())
}

/// Stands in for environment variables that are not set when `report` loads its
/// configuration a second time (see [`load_report_config`]).
const UNSET_VARIABLE_PLACEHOLDER: &str = "dora-collector-report-unset-variable";

/// Loads the configuration for `report`, which never calls the API: a file that is
/// valid except for unset variables used only by the token (`${GITHUB_TOKEN}`) is
/// accepted. Any other problem, or an unset variable used elsewhere (such as in
/// `storage.path`), is reported exactly as `check-config` would.
///
/// How: the file is loaded again with a placeholder for every unset variable; if
/// that succeeds and the placeholder appears nowhere in the configuration's `Debug`
/// form (which shows every value but the token), only the token needed them.
pub fn load_report_config<F>(path: &std::path::Path, lookup: F) -> Result<Config, ConfigError>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    match Config::load_with(path, &lookup) {
        Err(error @ ConfigError::Invalid { .. }) => {
            let lenient = |name: &str| match lookup(name) {
                Err(VarError::NotPresent) => Ok(UNSET_VARIABLE_PLACEHOLDER.to_owned()),
                other => other,
            };
            match Config::load_with(path, lenient) {
                Ok(config) if !format!("{config:?}").contains(UNSET_VARIABLE_PLACEHOLDER) => {
                    Ok(config)
                }
                _ => Err(error),
            }
        }
        other => other,
    }
}

/// `backfill`: loads the configuration (variables from `lookup`), reads the
/// store, and writes the OpenMetrics file with a progress bar on a terminal;
/// prints a summary and the promtool command. `now` is the default `--until`.
pub fn backfill<F>(
    args: &BackfillArgs,
    lookup: F,
    now: Timestamp,
    out: &mut dyn Write,
) -> Result<(), CliError>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    let config = load_report_config(&args.file.config, lookup)?;
    let store = report::open_configured_store(&config.storage).map_err(anyhow::Error::from)?;
    let request = crate::backfill::BackfillRequest {
        from: args.from,
        until: args.until.unwrap_or(now),
        step_seconds: i64::try_from(args.step.as_secs()).unwrap_or(i64::MAX),
        output: args.output.clone(),
        split: args.split,
    };
    let total = crate::backfill::steps(&request)
        .map_err(anyhow::Error::from)?
        .len() as u64;
    let bar = io::stderr().is_terminal().then(|| {
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} evaluations, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        indicatif::ProgressBar::new(total).with_style(style)
    });
    let summary = crate::backfill::backfill(
        store.as_ref(),
        &config,
        &request,
        env!("CARGO_PKG_VERSION"),
        |done| {
            if let Some(bar) = &bar {
                bar.set_position(done);
            }
        },
    )
    .map_err(anyhow::Error::from)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let written = match summary.files.as_slice() {
        [one] => one.display().to_string(),
        files => format!(
            "{} files, {} ... {}",
            files.len(),
            files
                .first()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
            files
                .last()
                .map(|f| f.display().to_string())
                .unwrap_or_default()
        ),
    };
    let next = if args.split {
        "for f in FILES; do promtool tsdb create-blocks-from openmetrics \"$f\" DATA_DIR; done"
            .to_owned()
    } else {
        format!(
            "promtool tsdb create-blocks-from openmetrics {} DATA_DIR",
            args.output.display()
        )
    };
    writeln!(
        out,
        "wrote {written} ({} evaluations from {} to {}, {} families, {} samples, {} bytes)\n\
         next: {next} (docs/backfill.md)",
        summary.steps,
        request.from.to_rfc3339(),
        request.until.to_rfc3339(),
        summary.families,
        summary.samples,
        summary.bytes,
    )
    .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    if !args.split && summary.steps > SPLIT_HINT_MIN_STEPS && summary.bytes > SPLIT_HINT_MIN_BYTES {
        writeln!(
            out,
            "hint: promtool reads this file once per two hours it spans ({} passes); --split \
             writes one file per evaluation, read once each",
            (request.until.0 - request.from.0) / 7_200 + 1
        )
        .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    }
    Ok(())
}

/// `report`: loads the configuration (variables from `lookup`), reads the store,
/// and writes the report to `--output` or to `out`. `now` is the default `--until`
/// and the report's generation time.
pub fn report<F>(
    args: &ReportArgs,
    lookup: F,
    now: Timestamp,
    out: &mut dyn Write,
) -> Result<(), CliError>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    let config = load_report_config(&args.file.config, lookup)?;
    let store = report::open_configured_store(&config.storage).map_err(anyhow::Error::from)?;
    let request = ReportRequest {
        window: args.window,
        until: args.until.unwrap_or(now),
        team: args.team.clone(),
        generated_at: now,
    };
    let built = report::generate(store.as_ref(), &config, &request).map_err(anyhow::Error::from)?;
    let text = report::render(&built, args.format.into()).map_err(anyhow::Error::from)?;
    match &args.output {
        Some(path) => std::fs::write(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write the report to {}: {e}", path.display()))?,
        None => out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?,
    }
    Ok(())
}

/// `2 repositories (2 teams), windows 7d 30d 90d, lookback 90d, poll every 5m, GitHub
/// API https://api.github.com/, listen 0.0.0.0:9184, store ./dora.db`
pub fn summary(config: &Config) -> String {
    let all = config.all_repositories();
    let repositories = all.len();
    let teams: BTreeSet<&str> = all.iter().map(|(_, team)| team.as_str()).collect();
    let windows: Vec<String> = config
        .metrics
        .windows
        .iter()
        .map(ToString::to_string)
        .collect();
    let github = config.github.as_ref().map(|github| {
        let auth = match &github.auth {
            crate::config::GithubAuth::Token(_) => String::new(),
            crate::config::GithubAuth::App(app) => {
                format!(" as GitHub App {} (its key checked)", app.app_id)
            }
        };
        format!(
            "lookback {}, poll every {}, GitHub API {}{auth}",
            github.lookback, github.poll_interval, github.api_url
        )
    });
    let gitlab = config.gitlab.as_ref().map(|gitlab| {
        format!(
            "GitLab lookback {}, poll every {}, GitLab API {}",
            gitlab.lookback, gitlab.poll_interval, gitlab.api_url
        )
    });
    let source = match (github, gitlab) {
        (Some(github), Some(gitlab)) => format!("{github}, {gitlab}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "no GitHub".to_owned(),
    };
    let ingest = match &config.ingest {
        Some(ingest) => format!(
            ", push API for {} client{}",
            ingest.clients.len(),
            if ingest.clients.len() == 1 { "" } else { "s" }
        ),
        None => String::new(),
    };
    let organizations = match config.github.as_ref().map_or(0, |g| g.organizations.len()) {
        0 => String::new(),
        1 => " and every repository of 1 organisation".to_owned(),
        n => format!(" and every repository of {n} organisations"),
    };
    let webhooks = if config.webhooks.github.is_some() {
        ", GitHub webhooks"
    } else {
        ""
    };
    let pagerduty = match &config.pagerduty {
        Some(pagerduty) => format!(
            ", PagerDuty {} service{} at {}",
            pagerduty.services.len(),
            if pagerduty.services.len() == 1 {
                ""
            } else {
                "s"
            },
            pagerduty.api_url
        ),
        None => String::new(),
    };
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let argocd = match &config.argocd {
        Some(argocd) => format!(
            ", Argo CD {} ({})",
            argocd.api_url,
            plural(argocd.applications.len(), "application", "applications")
        ),
        None => String::new(),
    };
    let jenkins = match &config.jenkins {
        Some(jenkins) => format!(
            ", Jenkins {} ({})",
            jenkins.url,
            plural(jenkins.jobs.len(), "job", "jobs")
        ),
        None => String::new(),
    };
    format!(
        "{repositories} repositor{}{organizations} ({} team{}), windows {}, {source}{ingest}{webhooks}{pagerduty}{argocd}{jenkins}, listen {}, store {}",
        if repositories == 1 { "y" } else { "ies" },
        teams.len(),
        if teams.len() == 1 { "" } else { "s" },
        windows.join(" "),
        config.server.listen,
        config.storage.shown(),
    )
}

/// `notify`: builds the item, sends it (with retries) and prints one line.
pub fn notify(
    args: &NotifyArgs,
    env: impl Fn(&str) -> Option<String>,
    now: Timestamp,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use crate::notify::{ci_id, send, Target, TOKEN_VARIABLE};
    let token = env(TOKEN_VARIABLE)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            CliError::Usage(format!("{TOKEN_VARIABLE} is not set (the client's token)"))
        })?;
    let (target, path, body, id) = match &args.what {
        NotifyWhat::Deployment(d) => {
            let id = match d.id.clone().or_else(|| ci_id(&env)) {
                Some(id) => id,
                None => {
                    return Err(CliError::Usage(
                        "--id is required outside a known CI system (no run id found)".to_owned(),
                    ))
                }
            };
            let mut body = serde_json::json!({
                "id": id,
                "repository": d.repository.as_str(),
                "environment": d.environment.as_str(),
                "sha": d.sha.to_string(),
                "status": match d.status {
                    NotifyStatus::Success => "success",
                    NotifyStatus::Failure => "failure",
                },
                "finished_at": d.finished_at.unwrap_or(now).to_rfc3339(),
            });
            if let Some(started) = d.started_at {
                body["started_at"] = serde_json::json!(started.to_rfc3339());
            }
            if let Some(dir) = &d.commits_from_git {
                let target = Target {
                    url: d.target.url.clone(),
                    token: secrecy::SecretString::from(token.clone()),
                    deadline: d.target.deadline,
                };
                let previous = runtime()?
                    .block_on(crate::notify::latest_sha(
                        &target,
                        &d.repository,
                        &d.environment,
                    ))
                    .map_err(|e| CliError::Other(anyhow::anyhow!(e)))?;
                let commits = crate::notify::commits_from_git(
                    dir,
                    &d.sha,
                    previous.as_ref(),
                    crate::ingest::MAX_COMMITS,
                )
                .map_err(|e| CliError::Other(anyhow::anyhow!("--commits-from-git: {e}")))?;
                body["commits"] = serde_json::json!(commits);
            }
            (&d.target, "/api/v1/deployments", body, id)
        }
        NotifyWhat::Incident(i) => {
            let mut body = serde_json::json!({
                "id": i.id,
                "created_at": i.created_at.to_rfc3339(),
            });
            if let Some(repository) = &i.repository {
                body["repository"] = serde_json::json!(repository.as_str());
            }
            if let Some(team) = &i.team {
                body["team"] = serde_json::json!(team.as_str());
            }
            if let Some(resolved) = i.resolved_at {
                body["resolved_at"] = serde_json::json!(resolved.to_rfc3339());
            }
            if let Some(root) = &i.root_cause {
                body["root_cause"] = serde_json::json!(root.as_str());
            }
            if let Some(title) = &i.title {
                body["title"] = serde_json::json!(title);
            }
            (&i.target, "/api/v1/incidents", body, i.id.clone())
        }
    };
    let target = Target {
        url: target.url.clone(),
        token: secrecy::SecretString::from(token),
        deadline: target.deadline,
    };
    let stored = runtime()?
        .block_on(send(&target, path, &body))
        .map_err(|e| CliError::Other(anyhow::anyhow!(e)))?;
    writeln!(
        out,
        "stored {id:?} at {}{path} after {} attempt{}: {}",
        target.url,
        stored.attempts,
        if stored.attempts == 1 { "" } else { "s" },
        stored.answer
    )
    .map_err(|e| CliError::Other(anyhow::anyhow!("cannot write to stdout: {e}")))
}

/// A multi-threaded tokio runtime for the commands that need one.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `work` on a new runtime and returns its result without waiting for the
/// blocking tasks it left behind: the commands have waited for what they must
/// (a shutdown waits at most its grace period), and a store call still running
/// past that is not waited for (SQLite rolls back a transaction the process did
/// not commit).
fn run_to_end<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let runtime = runtime()?;
    let result = runtime.block_on(work);
    runtime.shutdown_background();
    result
}

/// The signals of the long-running commands (`serve`, `demo`, `sync --once`),
/// registered as soon as the runtime runs, before the store or the listener is
/// opened, so that none of them takes its default action (ending the process
/// without a word) during start-up:
///
/// - SIGTERM and SIGINT (Ctrl-C) stop: [`Signals::shutdown`] completes, and the
///   command shuts down gracefully within `server.shutdown_grace_period`.
/// - SIGHUP is logged and ignored: the configuration is read once, at start (a
///   reload would have to re-check it and restart the sources and the store
///   anyway; restart the process to apply a changed file). A terminal that closes
///   therefore does not stop a daemon started from it.
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers; call it inside the runtime, before anything else.
    pub fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let register = |kind: SignalKind, name: &str| {
                signal(kind).with_context(|| format!("cannot handle {name}"))
            };
            Ok(Signals {
                interrupt: register(SignalKind::interrupt(), "SIGINT")?,
                terminate: register(SignalKind::terminate(), "SIGTERM")?,
                hangup: register(SignalKind::hangup(), "SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Completes on SIGTERM or SIGINT; logs and ignores every SIGHUP until then.
    pub async fn shutdown(mut self) {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => {
                    tracing::info!("interrupted (SIGINT): shutting down");
                    return;
                }
                _ = self.terminate.recv() => {
                    tracing::info!("terminated (SIGTERM): shutting down");
                    return;
                }
                _ = self.hangup.recv() => tracing::warn!(
                    "SIGHUP received and ignored: the configuration is read only at start; \
                     restart the process to apply a changed one"
                ),
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Binds the HTTP listener, naming the address when it cannot.
async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// `serve`: the daemon until SIGTERM or Ctrl-C.
pub fn serve(args: &ServeArgs) -> Result<(), CliError> {
    let config = Config::load(&args.file.config)?;
    init_tracing(&config.log)?;
    run_to_end(async {
        let signals = Signals::install()?;
        let listener = bind(config.server.listen).await?;
        daemon::run(config, listener, signals.shutdown()).await
    })?;
    Ok(())
}

/// `sync --once`: one sync of every repository; fails naming those that failed.
pub fn sync(args: &SyncArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let config = Config::load(&args.file.config)?;
    // Its length grows as each source's repositories are known (after
    // discovery).
    let bar = io::stderr().is_terminal().then(|| {
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} repositories {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        indicatif::ProgressBar::new(0).with_style(style)
    });
    match &bar {
        Some(bar) => {
            let bar = bar.clone();
            init_tracing_to(&config.log, move || SuspendingWriter(bar.clone()))?;
        }
        None => init_tracing(&config.log)?,
    }
    let report = run_to_end(async {
        let signals = Signals::install()?;
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            signals.shutdown().await;
            on_signal.cancel();
        });
        let progress = BarProgress(bar.clone());
        daemon::sync_once(&config, Arc::new(SystemClock), &shutdown, &progress).await
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    sync_result(&report, out)
}

/// `sync --once`'s progress: the bar's length is the repositories of the
/// cycle (discovered ones included), its position those finished.
struct BarProgress(Option<indicatif::ProgressBar>);

impl daemon::CycleProgress for BarProgress {
    fn scope(&self, count: usize) {
        if let Some(bar) = &self.0 {
            bar.inc_length(count as u64);
        }
    }

    fn synced(&self, report: &daemon::RepoReport) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
            bar.set_message(report.repository.to_string());
        }
    }
}

/// The summary of a `sync --once` on `out`, or the error naming every repository
/// that failed.
pub fn sync_result(report: &CycleReport, out: &mut dyn Write) -> Result<(), CliError> {
    if report.cancelled() {
        return Err(anyhow::anyhow!("the sync was interrupted; what was read is stored").into());
    }
    let failures: Vec<String> = report
        .failures()
        .map(|(repository, error)| format!("  {repository}: {error}"))
        .collect();
    if !failures.is_empty() {
        return Err(anyhow::anyhow!(
            "{} of {} repositories failed to sync:\n{}",
            failures.len(),
            report.repositories.len(),
            failures.join("\n")
        )
        .into());
    }
    let total = report.total();
    writeln!(
        out,
        "synced {} repositories: {} API requests, {} events and cursors written, {} \
         unreadable items skipped",
        report.repositories.len(),
        total.requests,
        total.applied.total().written(),
        total.skipped_items,
    )
    .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    Ok(())
}

/// Writes log lines to stderr with the progress bar hidden.
struct SuspendingWriter(indicatif::ProgressBar);

impl Write for SuspendingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `demo`: the daemon against a simulated organisation until Ctrl-C.
#[cfg(feature = "demo")]
pub fn demo(args: &DemoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    init_tracing(&LogConfig::default())?;
    // Outside the runtime, so that it is removed on every way out: a stop by
    // signal, an error, a panic (the drop of `TempDir`).
    let dir = tempfile::Builder::new()
        .prefix("dora-collector-demo-")
        .tempdir()
        .context("cannot create a temporary directory for the demo store")?;
    let store = dir.path().join("dora-demo.db");
    let result = run_to_end(async {
        let signals = Signals::install()?;
        let spec = demo::demo_spec(args.repositories, args.days, args.seed, SystemClock.now());
        let org = tokio::task::spawn_blocking(move || Org::generate(&spec))
            .await
            .context("generating the simulated organisation failed")?;
        let stats = org.stats();
        let teams = org.teams.len();
        let options = SimOptions {
            rate_limit: DEMO_RATE_LIMIT,
            ..SimOptions::default()
        };
        let listener = bind(args.listen).await?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        let config_org = org.clone();
        let sim = SimServer::start(org, options)
            .await
            .context("cannot start the simulated GitHub")?;
        let gitlab = if args.gitlab_projects > 0 {
            let spec = demo::demo_group_spec(
                args.gitlab_projects,
                args.days,
                args.seed,
                SystemClock.now(),
            );
            let group = tokio::task::spawn_blocking(move || GitlabGroup::generate(&spec))
                .await
                .context("generating the simulated GitLab group failed")?;
            let options = GitlabOptions {
                rate_limit: DEMO_RATE_LIMIT,
                ..GitlabOptions::default()
            };
            let server = GitlabServer::start(group.clone(), options)
                .await
                .context("cannot start the simulated GitLab")?;
            Some((group, server))
        } else {
            None
        };
        let config = demo::demo_config_mixed(
            &config_org,
            sim.base_url(),
            gitlab
                .as_ref()
                .map(|(group, server)| (group, server.api_url())),
            addr,
            &store,
        )?;
        drop(config_org);
        let gitlab_line = match &gitlab {
            Some((group, server)) => format!(
                " and {} projects of its teams on a built-in fake GitLab at {}",
                group.projects.len(),
                server.api_url()
            ),
            None => String::new(),
        };
        writeln!(
            out,
            "dora-collector demo — the data is SIMULATED: a generated organisation of {} \
             repositories ({teams} teams, {} days of history, {} deployments) served by a \
             built-in fake GitHub at {}{gitlab_line}. Nothing is read from GitHub or GitLab; \
             the landing page says where each repository is read from.\n\n\
             Open  http://{addr}/         the landing page\n      \
             http://{addr}/metrics  the metrics (ready after the first sync, a few seconds)\n      \
             http://{addr}/readyz   readiness\n\n\
             Point Prometheus at http://{addr}/metrics to graph it. The push API \
             (docs/push.md) takes the demo client's token {}; GitHub webhooks \
             (docs/webhooks.md, POST /webhooks/github) are verified with the secret {}. \
             Press Ctrl-C to stop; the temporary store is removed on exit.",
            stats.repositories,
            args.days,
            stats.deployments + stats.workflow_runs,
            sim.base_url(),
            demo::DEMO_INGEST_TOKEN,
            demo::DEMO_WEBHOOK_SECRET,
        )
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
        let options = RunOptions {
            simulated: true,
            ..RunOptions::default()
        };
        let result = daemon::run_with(config, listener, signals.shutdown(), options).await;
        // Its only clients were the daemon's; bounded all the same, so that the
        // store below is always removed.
        let _ = tokio::time::timeout(DEMO_SIMULATOR_STOP, sim.shutdown()).await;
        if let Some((_, server)) = gitlab {
            let _ = tokio::time::timeout(DEMO_SIMULATOR_STOP, server.shutdown()).await;
        }
        result
    });
    // The daemon has stopped: remove its store.
    let removed = dir
        .close()
        .context("cannot remove the demo's temporary store");
    result?;
    removed?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::path::Path;

    fn lookup(name: &str) -> Result<String, VarError> {
        match name {
            "GITHUB_TOKEN" => Ok("ghp_cliTestToken".to_owned()),
            _ => Err(VarError::NotPresent),
        }
    }

    fn check(text: &str) -> (Result<(), CliError>, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dora.toml");
        std::fs::write(&path, text).unwrap();
        let args = CheckConfigArgs {
            file: ConfigFile { config: path },
        };
        let mut out = Vec::new();
        let result = check_config(&args, lookup, &mut out);
        let mut err = Vec::new();
        if let Err(error) = &result {
            error.report(&mut err).unwrap();
        }
        let dir_text = format!("{}/", dir.path().display());
        let clean = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap().replace(&dir_text, "");
        (result, clean(out), clean(err))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_check_config() {
        let cli =
            Cli::try_parse_from(["dora-collector", "check-config", "--config", "x.toml"]).unwrap();
        assert!(matches!(
            &cli.command,
            Command::CheckConfig(args) if args.file.config == Path::new("x.toml")
        ));
        assert!(Cli::try_parse_from(["dora-collector", "check-config"]).is_err());
    }

    #[test]
    fn parses_the_daemon_commands() {
        let cli = Cli::try_parse_from(["dora-collector", "serve", "--config", "d.toml"]).unwrap();
        assert!(matches!(&cli.command, Command::Serve(a) if a.file.config == Path::new("d.toml")));
        let cli = Cli::try_parse_from(["dora-collector", "sync", "--config", "d.toml", "--once"])
            .unwrap();
        assert!(matches!(&cli.command, Command::Sync(a) if a.once));
        assert!(
            Cli::try_parse_from(["dora-collector", "sync", "--config", "d.toml"]).is_err(),
            "--once is required"
        );
    }

    #[cfg(feature = "demo")]
    #[test]
    fn parses_the_demo_command() {
        let cli = Cli::try_parse_from(["dora-collector", "demo"]).unwrap();
        let Command::Demo(demo) = cli.command else {
            panic!("not demo")
        };
        assert_eq!(demo.listen, "127.0.0.1:9184".parse::<SocketAddr>().unwrap());
        assert_eq!(
            (demo.repositories, demo.days, demo.seed),
            (
                demo::DEFAULT_REPOSITORIES,
                demo::DEFAULT_DAYS,
                demo::DEFAULT_SEED
            )
        );
        let cli = Cli::try_parse_from([
            "dora-collector",
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--repositories",
            "3",
            "--days",
            "10",
            "--seed",
            "9",
        ])
        .unwrap();
        assert!(
            matches!(&cli.command, Command::Demo(d) if d.repositories == 3 && d.days == 10 && d.seed == 9)
        );
        assert!(Cli::try_parse_from(["dora-collector", "demo", "--repositories", "0"]).is_err());
        assert!(Cli::try_parse_from(["dora-collector", "demo", "--listen", "localhost"]).is_err());
    }

    #[test]
    fn a_valid_file_prints_one_summary_line() {
        let (result, out, err) = check(
            "[github]\ntoken = \"${GITHUB_TOKEN}\"\n[[github.repositories]]\nname = \"a/b\"\n\
             [[github.repositories]]\nname = \"a/c\"\nteam = \"web\"\n",
        );
        assert!(result.is_ok());
        assert_eq!(
            out,
            "dora.toml: OK: 2 repositories (2 teams), windows 7d 30d 90d, lookback 90d, \
             poll every 5m, GitHub API https://api.github.com/, listen 0.0.0.0:9184, \
             store ./dora.db\n"
        );
        assert_eq!(err, "");
    }

    #[test]
    fn the_summary_names_the_pagerduty_services() {
        let (result, out, _) = check(
            "[github]\ntoken = \"${GITHUB_TOKEN}\"\n[[github.repositories]]\nname = \"a/b\"\n\
             [pagerduty]\ntoken = \"${GITHUB_TOKEN}\"\n[[pagerduty.services]]\nid = \"PABC123\"\n\
             repositories = [\"a/b\"]\n",
        );
        assert!(result.is_ok(), "{out}");
        assert!(
            out.contains(", PagerDuty 1 service at https://api.pagerduty.com/, listen"),
            "{out}"
        );
    }

    #[test]
    fn an_invalid_file_prints_every_problem_and_exits_2() {
        let (result, out, err) = check(
            "[github]\ntoken = \"${GITHUB_TOKEN}\"\nlookbak = \"1d\"\n\
             [[github.repositories]]\nname = \"acme\"\n",
        );
        let error = result.unwrap_err();
        assert_eq!(error.exit_code(), EXIT_INVALID_CONFIG);
        assert_eq!(out, "");
        assert_eq!(
            err,
            "dora.toml:3: github.lookbak: unknown key, did you mean \"lookback\"?\n\
             dora.toml:5: github.repositories[0].name: expected \"owner/name\", got \"acme\"\n\
             error: dora.toml is invalid (2 problems)\n"
        );
    }

    #[test]
    fn an_unreadable_file_exits_1_naming_it() {
        let args = CheckConfigArgs {
            file: ConfigFile {
                config: PathBuf::from("/nonexistent/dora.toml"),
            },
        };
        let error = check_config(&args, lookup, &mut Vec::new()).unwrap_err();
        assert_eq!(error.exit_code(), EXIT_FAILURE);
        let mut err = Vec::new();
        error.report(&mut err).unwrap();
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("error: cannot read configuration file /nonexistent/dora.toml: "),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }
}
