//! `store migrate`: copies a whole store into another, SQLite or PostgreSQL either
//! way, resumably, and verifies the copy by counting every table on both sides.
//!
//! The source is opened as the daemon opens it (so a store written by an older
//! version is brought to the current schema first; one of a newer version is
//! refused), the target is created or migrated to the current schema. The
//! target must be empty, unless it holds an unfinished migration from the same
//! source: then the copy resumes. Every table of [`TABLES`] is copied in key
//! order, [`CHUNK_ROWS`] rows at a time; each run of rows is written in ONE
//! transaction with the key of its last row in the target's `dora_migration`
//! table, so an interrupted copy (a kill, a crash, a lost connection) resumes
//! after the last run written, with nothing twice and nothing lost. Rows are
//! copied as stored, ids included (`push_ids`' ids are pushed events' numbers),
//! and PostgreSQL's id generators are then set past the copied ids. At the end
//! the rows of every table are counted on both sides; the migration's record is
//! removed only when every count matches.
//!
//! It does not copy while a daemon writes to the source (stop it first: rows
//! written behind the copy are missed, and the counts then tell), merge two
//! stores, or compare rows beyond their counts. A table or column it does not
//! know in either store is refused rather than left behind. It speaks no SQL:
//! each backend reads and writes its side (`sqlite/copy.rs`,
//! `postgres/copy.rs`) through the tables of `tables.rs`; the command line is
//! `cli.rs`'s.

use super::postgres::copy::PgEnd;
use super::sqlite::copy::SqliteEnd;
use super::tables::{CopyEnd, TableProgress, NOT_COPIED, TABLES};
use super::{PostgresStore, PostgresUrl, SqliteStore, StoreError};
use std::path::{Path, PathBuf};

/// Rows copied per transaction: large enough that a round trip and a commit
/// are small next to the rows they carry, small enough that one run of the
/// widest rows (pull requests with their commits) stays a few MiB.
pub const CHUNK_ROWS: usize = 10_000;

/// The prefix of a SQLite store's URL (`sqlite:./dora.db`, `sqlite:///var/lib/dora.db`).
pub const SQLITE_SCHEME: &str = "sqlite:";

/// Where a store lives, as `store migrate` names it: `sqlite:PATH` or a
/// `postgres://` URL (its password never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(PostgresUrl),
}

impl StoreUrl {
    /// Parses `sqlite:PATH` (`sqlite://PATH` too: `sqlite:///abs/file.db` is
    /// `/abs/file.db`) or `postgres://...`/`postgresql://...`. The error never
    /// contains the password.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix(SQLITE_SCHEME) {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!(
                    "{text:?} names no file; expected sqlite:PATH, e.g. sqlite:./dora.db"
                ));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return PostgresUrl::parse(text).map(StoreUrl::Postgres);
        }
        let scheme = match text.split_once(':') {
            Some((scheme, _)) if !scheme.is_empty() && !scheme.contains('/') => {
                format!("the scheme {scheme:?}")
            }
            _ => "no scheme".to_owned(),
        };
        Err(format!(
            "expected sqlite:PATH or postgres://USER@HOST/DATABASE, got {scheme}"
        ))
    }

    /// The URL as shown: a PostgreSQL password redacted.
    pub fn shown(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("{SQLITE_SCHEME}{}", path.display()),
            StoreUrl::Postgres(url) => url.shown().to_owned(),
        }
    }

    /// What tells two stores apart: a SQLite file's absolute path (as far as it
    /// exists), a PostgreSQL URL without its password.
    fn identity(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("{SQLITE_SCHEME}{}", absolute(path).display()),
            StoreUrl::Postgres(url) => url.shown().to_owned(),
        }
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// `path` made absolute, its existing part with symbolic links resolved.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(resolved) = std::fs::canonicalize(path) {
        return resolved;
    }
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::canonicalize(&parent)
        .unwrap_or_else(|_| std::path::absolute(&parent).unwrap_or(parent))
        .join(name)
}

/// How to migrate (the defaults for real use; tests make runs small and stop).
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Rows per transaction ([`CHUNK_ROWS`]).
    pub chunk_rows: usize,
    /// Stops with [`MigrateError::Stopped`] after writing this many runs of
    /// rows, as an interruption would (for tests of resuming).
    pub stop_after_chunks: Option<u64>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            chunk_rows: CHUNK_ROWS,
            stop_after_chunks: None,
        }
    }
}

/// What a migration is doing, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateEvent {
    /// Both stores are open; `resumed` when an unfinished migration continues.
    Started {
        source: String,
        target: String,
        resumed: bool,
    },
    /// `copied` of the source's `total` rows of `table` are in the target.
    Copying {
        table: &'static str,
        copied: u64,
        total: u64,
    },
    /// Every row of `table` is in the target.
    Copied { table: &'static str, copied: u64 },
    /// Counting every table on both sides.
    Verifying,
}

/// The rows of one table on each side after a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCounts {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    pub source: String,
    pub target: String,
    /// It continued an unfinished migration.
    pub resumed: bool,
    /// Rows written by this run.
    pub written: u64,
    /// Every table's count on both sides, in copy order.
    pub counts: Vec<TableCounts>,
}

impl MigrateReport {
    /// The tables whose counts differ.
    pub fn mismatches(&self) -> Vec<&TableCounts> {
        self.counts
            .iter()
            .filter(|c| c.source != c.target)
            .collect()
    }
}

/// Why a migration failed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("--from and --to name the same store {0}")]
    SameStore(String),

    #[error(
        "{store} has a table {table} that this dora-collector does not know how to copy; \
         run the dora-collector that wrote it"
    )]
    UnknownTable { store: String, table: String },

    #[error(
        "{store}: the table {table} has the columns {found:?}, not {expected:?} as this \
         dora-collector copies it; run the dora-collector that wrote it"
    )]
    UnknownColumns {
        store: String,
        table: String,
        found: Vec<String>,
        expected: Vec<String>,
    },

    #[error(
        "the target {target} already holds data ({rows} rows in {table}); migrate into a \
         new, empty store (a finished migration is not run again)"
    )]
    TargetNotEmpty {
        target: String,
        table: &'static str,
        rows: u64,
    },

    #[error(
        "the target {target} holds an unfinished migration from {other}; run the same \
         command with --from {other} to finish it, or migrate into a new, empty store"
    )]
    OtherMigration { target: String, other: String },

    #[error(
        "the copy does not match the source: {}; was a daemon writing to either store? \
         Stop it, then migrate again into a new, empty store",
        describe_mismatches(.0)
    )]
    CountsDiffer(MigrateReport),

    #[error("stopped after writing {0} runs of rows, as asked")]
    Stopped(u64),
}

fn describe_mismatches(report: &MigrateReport) -> String {
    report
        .mismatches()
        .iter()
        .map(|c| {
            format!(
                "{} has {} rows in the source, {} in the target",
                c.table, c.source, c.target
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens `url` as the source: it must already hold a store.
fn open_source(url: &StoreUrl) -> Result<Box<dyn CopyEnd>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => {
            if !path.is_file() {
                return Err(StoreError::NoStore {
                    target: url.shown(),
                    reason: "no such file",
                });
            }
            Box::new(SqliteEnd::new(SqliteStore::open(path)?))
        }
        StoreUrl::Postgres(url) => Box::new(PgEnd::open_source(url)?),
    })
}

/// Opens `url` as the target, creating or migrating its schema.
fn open_target(url: &StoreUrl) -> Result<Box<dyn CopyEnd>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Box::new(SqliteEnd::new(SqliteStore::open(path)?)),
        StoreUrl::Postgres(url) => Box::new(PgEnd::new(PostgresStore::open(url)?)?),
    })
}

/// Refuses a store with a table or columns that [`TABLES`] does not list.
fn check_tables(end: &mut dyn CopyEnd) -> Result<(), MigrateError> {
    for (table, mut found) in end.tables()? {
        if NOT_COPIED.iter().any(|(name, _)| *name == table) {
            continue;
        }
        let Some(known) = TABLES.iter().find(|t| t.name == table) else {
            return Err(MigrateError::UnknownTable {
                store: end.shown(),
                table,
            });
        };
        let mut expected: Vec<String> = known.columns.iter().map(|c| c.name.to_owned()).collect();
        expected.sort();
        found.sort();
        if found != expected {
            return Err(MigrateError::UnknownColumns {
                store: end.shown(),
                table,
                found,
                expected,
            });
        }
    }
    Ok(())
}

/// The tables of a store that `store migrate` would not copy (empty for a store
/// of this version): for tests that a table added to a schema is added to the
/// migration too.
pub fn uncopied_tables(url: &StoreUrl) -> Result<Vec<String>, MigrateError> {
    let tables = open_target(url)?.tables()?;
    let mut uncopied = Vec::new();
    for (table, found) in &tables {
        if NOT_COPIED.iter().any(|(name, _)| *name == table) {
            continue;
        }
        match TABLES.iter().find(|t| t.name == table) {
            None => uncopied.push(table.clone()),
            Some(known) => {
                let mut expected: Vec<&str> = known.columns.iter().map(|c| c.name).collect();
                expected.sort_unstable();
                let mut found: Vec<&str> = found.iter().map(String::as_str).collect();
                found.sort_unstable();
                if found != expected {
                    uncopied.push(format!("{table} ({found:?}, copied: {expected:?})"));
                }
            }
        }
    }
    for table in TABLES {
        if !tables.contains_key(table.name) {
            uncopied.push(format!("{} (copied, but not in the store)", table.name));
        }
    }
    Ok(uncopied)
}

/// Copies the store at `from` into the store at `to` (see the module
/// documentation), telling `progress` what it does. Blocks for as long as the
/// copy takes.
pub fn migrate(
    from: &StoreUrl,
    to: &StoreUrl,
    options: &MigrateOptions,
    progress: &mut dyn FnMut(MigrateEvent),
) -> Result<MigrateReport, MigrateError> {
    let identity = from.identity();
    if identity == to.identity() {
        return Err(MigrateError::SameStore(from.shown()));
    }
    let mut source = open_source(from)?;
    check_tables(source.as_mut())?;
    let mut target = open_target(to)?;
    check_tables(target.as_mut())?;
    let resumed = match target.progress()? {
        Some(unfinished) if unfinished.source == identity => true,
        Some(unfinished) => {
            return Err(MigrateError::OtherMigration {
                target: target.shown(),
                other: unfinished.source,
            })
        }
        None => {
            for table in TABLES {
                let rows = target.count(table)?;
                if rows > 0 {
                    return Err(MigrateError::TargetNotEmpty {
                        target: target.shown(),
                        table: table.name,
                        rows,
                    });
                }
            }
            target.start(&identity)?;
            false
        }
    };
    progress(MigrateEvent::Started {
        source: source.shown(),
        target: target.shown(),
        resumed,
    });
    let recorded = target.progress()?.map(|p| p.tables).unwrap_or_default();
    let chunk_rows = options.chunk_rows.max(1);
    let mut chunks = 0u64;
    let mut written = 0u64;
    for table in TABLES {
        let mut state = recorded.get(table.name).cloned().unwrap_or(TableProgress {
            copied: 0,
            after: None,
            done: false,
        });
        if !state.done {
            let total = source.count(table)?;
            progress(MigrateEvent::Copying {
                table: table.name,
                copied: state.copied,
                total,
            });
            while !state.done {
                let chunk = source.read(table, state.after.as_deref(), chunk_rows)?;
                let rows = chunk.rows();
                state.copied += rows as u64;
                state.done = rows < chunk_rows;
                if let Some(last) = chunk.last_key(table) {
                    state.after = Some(last);
                }
                target.write(table, &chunk, &state)?;
                written += rows as u64;
                chunks += 1;
                progress(MigrateEvent::Copying {
                    table: table.name,
                    copied: state.copied,
                    total,
                });
                if options.stop_after_chunks.is_some_and(|stop| chunks >= stop) {
                    return Err(MigrateError::Stopped(chunks));
                }
            }
        }
        progress(MigrateEvent::Copied {
            table: table.name,
            copied: state.copied,
        });
    }
    target.settle_ids()?;
    progress(MigrateEvent::Verifying);
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        counts.push(TableCounts {
            table: table.name,
            source: source.count(table)?,
            target: target.count(table)?,
        });
    }
    let report = MigrateReport {
        source: source.shown(),
        target: target.shown(),
        resumed,
        written,
        counts,
    };
    if !report.mismatches().is_empty() {
        return Err(MigrateError::CountsDiffer(report));
    }
    target.forget()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_or_a_server() {
        assert_eq!(
            StoreUrl::parse("sqlite:./dora.db").unwrap(),
            StoreUrl::Sqlite(PathBuf::from("./dora.db"))
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/dora.db").unwrap(),
            StoreUrl::Sqlite(PathBuf::from("/var/lib/dora.db"))
        );
        let pg = StoreUrl::parse("postgres://dora:hunter2@db/dora").unwrap();
        assert_eq!(pg.shown(), "postgres://dora:REDACTED@db/dora");
        for (bad, expected) in [
            ("mysql://u:hunter2@db/x", "\"mysql\""),
            ("./dora.db", "no scheme"),
            ("sqlite:", "names no file"),
            ("postgres://u:hunter2@db/x?sslmode=verify-full", "sslmode"),
        ] {
            let error = StoreUrl::parse(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
            assert!(!error.contains("hunter2"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_store_of_this_version_has_exactly_the_tables_copied() {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::Sqlite(dir.path().join("new.db"));
        assert_eq!(uncopied_tables(&url).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_same_file_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dora.db");
        SqliteStore::open(&path).unwrap();
        let from = StoreUrl::Sqlite(path.clone());
        let to = StoreUrl::Sqlite(dir.path().join(".").join("dora.db"));
        let error = migrate(&from, &to, &MigrateOptions::default(), &mut |_| {}).unwrap_err();
        assert!(matches!(error, MigrateError::SameStore(_)), "{error}");
    }
}
