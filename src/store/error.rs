//! `StoreError`: why the store could not do something. Every message names the store
//! file (or the PostgreSQL URL with its password redacted) and, for a database failure, the operation and the database's own message
//! (included in the text, so one line is enough in a log or on stderr).
//!
//! Messages never contain stored values beyond the key of a bad row: no commit
//! message, no cursor value (an ETag or GraphQL cursor is harmless but opaque), and
//! the store is never given a token.

/// Why a store operation failed. `path` is the store file (`:memory:` for an
/// in-memory store).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory for the store {path}: {cause}")]
    CreateDirectory { path: String, cause: std::io::Error },

    #[error("cannot open the store {path}: {cause}")]
    Open {
        path: String,
        cause: rusqlite::Error,
    },

    #[error(
        "{path} is not a dora-collector store (its SQLite application_id is {found:#x}); \
         point storage.path at a new file"
    )]
    ForeignFile { path: String, found: i64 },

    #[error(
        "the store {path} has schema version {found}, newer than version {supported} that \
         this dora-collector knows; run a newer dora-collector or point storage.path at \
         another file"
    )]
    FutureVersion {
        path: String,
        found: i64,
        supported: i64,
    },

    /// `store migrate`'s source holds no store (a missing file, a database
    /// without dora-collector's tables): nothing is created there.
    #[error("there is no dora-collector store at {target}: {reason}")]
    NoStore {
        target: String,
        reason: &'static str,
    },

    #[error("cannot migrate the store {path} to schema version {version}: {cause}")]
    Migration {
        path: String,
        version: i64,
        cause: rusqlite::Error,
    },

    #[error("store {path}: {operation} failed: {cause}")]
    Database {
        path: String,
        operation: &'static str,
        cause: rusqlite::Error,
    },

    #[error("store {path}: {what} {value} is too large to store (at most {max})", max = i64::MAX)]
    OutOfRange {
        path: String,
        what: &'static str,
        value: u64,
    },

    #[error("store {path}: invalid {what}: {reason}")]
    InvalidInput {
        path: String,
        what: &'static str,
        reason: String,
    },

    #[error("store {path}: corrupt {what} in table {table}")]
    Corrupt {
        path: String,
        table: &'static str,
        what: String,
    },

    #[error(
        "cannot reach the PostgreSQL store {target}: {cause}; check the host and port \
         of storage.url and that the server is running"
    )]
    Unreachable { target: String, cause: String },

    #[error(
        "the PostgreSQL store {target} refused the credentials: {cause}; check the user \
         and password of storage.url"
    )]
    Credentials { target: String, cause: String },

    #[error(
        "the PostgreSQL store {target} has schema version {found}, newer than version \
         {supported} that this dora-collector knows; run a newer dora-collector or point \
         storage.url at another database"
    )]
    FutureSchema {
        target: String,
        found: i64,
        supported: i64,
    },

    #[error(
        "the PostgreSQL database {target} already has tables of another application; \
         point storage.url at an empty database"
    )]
    ForeignDatabase { target: String },

    #[error("cannot migrate the PostgreSQL store {target} to schema version {version}: {cause}")]
    PostgresMigration {
        target: String,
        version: i64,
        cause: String,
    },

    /// A PostgreSQL failure; `cause` is the server's message or the client's
    /// (never the URL's password: the client's errors do not carry the configuration).
    #[error("store {target}: {operation} failed: {cause}")]
    Postgres {
        target: String,
        operation: &'static str,
        cause: String,
    },

    /// The blocking task that runs store calls could not run (the runtime is
    /// shutting down) or panicked.
    #[error("the store task failed: {0}")]
    Task(String),
}
