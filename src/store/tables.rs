//! The tables every backend keeps, as data: their columns, the type of each and the
//! primary key, in an order that respects the foreign keys; and the values of a run
//! of rows in a backend-neutral form. `store migrate` copies a store table by table
//! through them (`migrate.rs`), each backend reading and writing its own SQL
//! (`sqlite/copy.rs`, `postgres/copy.rs`).
//!
//! It knows nothing of what a row means and holds no SQL: only the names both
//! schemas share. A table or a column added to a schema must be added here too,
//! or `store migrate` refuses that store (and its tests fail).

use super::StoreError;
use std::collections::BTreeMap;

/// A column's type, as both backends store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnType {
    /// SQLite `INTEGER`, PostgreSQL `bigint`.
    Int,
    /// `TEXT` / `text`.
    Text,
    /// `BLOB` / `bytea`.
    Blob,
    /// SQLite `INTEGER` 0 or 1, PostgreSQL `boolean`.
    Bool,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub(super) struct Column {
    pub(super) name: &'static str,
    pub(super) kind: ColumnType,
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Int,
    }
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Text,
    }
}

const fn blob(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Blob,
    }
}

const fn boolean(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Bool,
    }
}

/// One table: its columns, the first `key` of which are its primary key (rows are
/// copied in that order, and a copy resumes after the last key it wrote).
#[derive(Debug)]
pub(super) struct Table {
    pub(super) name: &'static str,
    pub(super) columns: &'static [Column],
    pub(super) key: usize,
    /// Its first column is an id the database generates (PostgreSQL's identity
    /// columns): copied as it is, then the generator set past the largest.
    pub(super) generated_id: bool,
}

impl Table {
    /// The primary key's columns.
    pub(super) fn key_columns(&self) -> &'static [Column] {
        &self.columns[..self.key]
    }
}

/// Every table of a store, parents before the tables that refer to them.
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "repositories",
        columns: &[int("id"), text("name")],
        key: 1,
        generated_id: true,
    },
    Table {
        name: "deployments",
        columns: &[
            int("repo_id"),
            text("source"),
            int("id"),
            text("environment"),
            blob("sha"),
            int("created_at"),
            text("outcome"),
            int("outcome_at"),
        ],
        key: 3,
        generated_id: false,
    },
    Table {
        name: "commits",
        columns: &[
            int("repo_id"),
            blob("sha"),
            int("author_date"),
            boolean("is_revert"),
            blob("parents"),
            text("subject"),
        ],
        key: 2,
        generated_id: false,
    },
    Table {
        name: "compares",
        columns: &[
            int("repo_id"),
            blob("base"),
            blob("head"),
            text("status"),
            blob("commits"),
        ],
        key: 3,
        generated_id: false,
    },
    Table {
        name: "incidents",
        columns: &[
            int("repo_id"),
            text("source"),
            int("number"),
            int("created_at"),
            int("closed_at"),
            text("labels"),
            text("root_cause"),
        ],
        key: 3,
        generated_id: false,
    },
    Table {
        name: "scoped_incidents",
        columns: &[
            text("source"),
            int("number"),
            text("team"),
            text("repositories"),
            int("created_at"),
            int("closed_at"),
            text("root_cause"),
        ],
        key: 2,
        generated_id: false,
    },
    Table {
        name: "pull_requests",
        columns: &[
            int("repo_id"),
            int("number"),
            int("merged_at"),
            blob("merge_commit_sha"),
            text("labels"),
            blob("commits"),
            int("first_commit_at"),
            int("created_at"),
            int("first_review_at"),
        ],
        key: 2,
        generated_id: false,
    },
    Table {
        name: "production_environments",
        columns: &[int("repo_id"), text("environment")],
        key: 2,
        generated_id: false,
    },
    Table {
        name: "cursors",
        columns: &[
            int("repo_id"),
            text("endpoint"),
            int("since"),
            text("opaque"),
            int("updated_at"),
        ],
        key: 2,
        generated_id: false,
    },
    Table {
        name: "sync_status",
        columns: &[
            int("repo_id"),
            text("source"),
            int("last_attempt_at"),
            int("last_success_at"),
            text("last_error"),
            int("history_since"),
        ],
        key: 2,
        generated_id: false,
    },
    Table {
        name: "repository_teams",
        columns: &[int("repo_id"), text("team"), int("updated_at")],
        key: 1,
        generated_id: false,
    },
    Table {
        name: "review_horizons",
        columns: &[int("repo_id"), int("since")],
        key: 1,
        generated_id: false,
    },
    Table {
        name: "push_ids",
        columns: &[
            int("id"),
            text("client"),
            text("kind"),
            text("external_id"),
            int("repo_id"),
            text("team"),
            blob("digest"),
            blob("base_digest"),
        ],
        key: 1,
        generated_id: true,
    },
];

/// Tables a store may have that are not copied, with the reason.
pub(super) const NOT_COPIED: &[(&str, &str)] = &[
    (
        "dora_schema",
        "PostgreSQL's schema version: each side has its own, written when it is opened",
    ),
    (
        MIGRATION_TABLE,
        "the progress of a migration into this store, removed once it is verified",
    ),
    (
        "leases",
        "PostgreSQL's leases of the replicas sharing it: who syncs what for the next \
         seconds, void once they are stopped (as they must be during a migration)",
    ),
];

/// The table in a target that records how far a migration into it has come.
pub(super) const MIGRATION_TABLE: &str = "dora_migration";

/// One value of a primary key: where a copy resumes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum KeyValue {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// The values of one column for a run of rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Values {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Blob(Vec<Option<Vec<u8>>>),
    Bool(Vec<Option<bool>>),
}

impl Values {
    /// An empty column of `kind` with room for `rows`.
    pub(super) fn with_capacity(kind: ColumnType, rows: usize) -> Self {
        match kind {
            ColumnType::Int => Values::Int(Vec::with_capacity(rows)),
            ColumnType::Text => Values::Text(Vec::with_capacity(rows)),
            ColumnType::Blob => Values::Blob(Vec::with_capacity(rows)),
            ColumnType::Bool => Values::Bool(Vec::with_capacity(rows)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Text(v) => v.len(),
            Values::Blob(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    /// Row `row`'s value as a key (a key column is never NULL nor boolean).
    fn key(&self, row: usize) -> Option<KeyValue> {
        match self {
            Values::Int(v) => v[row].map(KeyValue::Int),
            Values::Text(v) => v[row].clone().map(KeyValue::Text),
            Values::Blob(v) => v[row].clone().map(KeyValue::Blob),
            Values::Bool(_) => None,
        }
    }
}

/// A run of rows of one table, column by column (in the table's column order).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chunk {
    pub(super) columns: Vec<Values>,
}

impl Chunk {
    /// An empty chunk of `table` with room for `rows`.
    pub(super) fn new(table: &Table, rows: usize) -> Self {
        Chunk {
            columns: table
                .columns
                .iter()
                .map(|c| Values::with_capacity(c.kind, rows))
                .collect(),
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.columns.first().map_or(0, Values::len)
    }

    /// The primary key of the last row (`None` when empty).
    pub(super) fn last_key(&self, table: &Table) -> Option<Vec<KeyValue>> {
        let last = self.rows().checked_sub(1)?;
        self.columns[..table.key]
            .iter()
            .map(|values| values.key(last))
            .collect()
    }
}

/// How far the copy of one table has come, as a target records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableProgress {
    /// Rows written so far.
    pub(super) copied: u64,
    /// The key of the last row written (`None` before the first).
    pub(super) after: Option<Vec<KeyValue>>,
    /// Every row is written.
    pub(super) done: bool,
}

/// A migration in progress in a target: the source it copies from (as shown,
/// never with a password) and each table's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Progress {
    pub(super) source: String,
    pub(super) tables: BTreeMap<String, TableProgress>,
}

/// Encodes a key for the progress table.
pub(super) fn encode_key(key: &[KeyValue]) -> String {
    serde_json::to_string(key).expect("keys are plain values")
}

/// Decodes a key written by [`encode_key`].
pub(super) fn decode_key(text: &str, store: &str) -> Result<Vec<KeyValue>, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        path: store.to_owned(),
        table: MIGRATION_TABLE,
        what: format!("key ({error})"),
    })
}

/// What one side of a migration can do: read a table in key order, count it,
/// list the store's tables, and (as the target) write runs of rows each in one
/// transaction with the progress they make.
pub(super) trait CopyEnd {
    /// The store, as errors and progress name it (a URL without its password).
    fn shown(&self) -> String;

    /// Every table of the store with its columns (sorted).
    fn tables(&mut self) -> Result<BTreeMap<String, Vec<String>>, StoreError>;

    /// Rows in `table`.
    fn count(&mut self, table: &Table) -> Result<u64, StoreError>;

    /// Up to `limit` rows of `table` in key order, after the key `after`.
    fn read(
        &mut self,
        table: &Table,
        after: Option<&[KeyValue]>,
        limit: usize,
    ) -> Result<Chunk, StoreError>;

    /// The migration in progress into this store, if any.
    fn progress(&mut self) -> Result<Option<Progress>, StoreError>;

    /// Starts recording a migration from `source` into this store: every table
    /// of [`TABLES`] not copied yet.
    fn start(&mut self, source: &str) -> Result<(), StoreError>;

    /// Writes `chunk` into `table` and records `progress` for it, in ONE
    /// transaction.
    fn write(
        &mut self,
        table: &Table,
        chunk: &Chunk,
        progress: &TableProgress,
    ) -> Result<(), StoreError>;

    /// After every table is copied: sets each generated id's generator past the
    /// largest copied id.
    fn settle_ids(&mut self) -> Result<(), StoreError>;

    /// Forgets the migration (drops the progress table).
    fn forget(&mut self) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lead_and_come_first() {
        for table in TABLES {
            assert!(table.key >= 1 && table.key <= table.columns.len());
            for column in table.key_columns() {
                assert_ne!(column.kind, ColumnType::Bool, "{}", table.name);
            }
            if table.generated_id {
                assert_eq!(table.columns[0].name, "id", "{}", table.name);
            }
        }
        assert_eq!(TABLES[0].name, "repositories", "the parent of the others");
    }

    #[test]
    fn keys_survive_the_progress_table() {
        let key = vec![
            KeyValue::Int(-3),
            KeyValue::Text("pulls?\"x\"".into()),
            KeyValue::Blob(vec![0, 255, 7]),
        ];
        assert_eq!(decode_key(&encode_key(&key), "s").unwrap(), key);
    }
}
