//! The SQLite side of `store migrate` ([`CopyEnd`]): reads a table in primary-key
//! order a run of rows at a time, writes a run in one transaction together with
//! the progress it makes (the `dora_migration` table), lists the file's tables.
//!
//! It copies rows as they are stored (no decoding into events, no checks beyond
//! the schema's own) and knows nothing of the other side.

use super::{db_error, SqliteStore};
use crate::store::tables::{
    decode_key, encode_key, Chunk, CopyEnd, KeyValue, Progress, Table, TableProgress, Values,
    MIGRATION_TABLE, TABLES,
};
use crate::store::StoreError;
use rusqlite::types::Value;
use rusqlite::ToSql;
use std::collections::BTreeMap;

/// One SQLite store as a side of a migration.
pub(in crate::store) struct SqliteEnd {
    store: SqliteStore,
}

impl SqliteEnd {
    /// `store`, opened (and migrated) by [`SqliteStore::open`].
    pub(in crate::store) fn new(store: SqliteStore) -> Self {
        SqliteEnd { store }
    }
}

/// `a, b, c`
fn names(columns: &[crate::store::tables::Column]) -> String {
    columns
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `?first, ?first+1, ...` for `count` parameters.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_value(key: &KeyValue) -> Value {
    match key {
        KeyValue::Int(v) => Value::Integer(*v),
        KeyValue::Text(v) => Value::Text(v.clone()),
        KeyValue::Blob(v) => Value::Blob(v.clone()),
    }
}

impl CopyEnd for SqliteEnd {
    fn shown(&self) -> String {
        format!("sqlite:{}", self.store.path)
    }

    fn tables(&mut self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let path = &self.store.path;
        let conn = &self.store.conn;
        let error = db_error(path, "listing the tables");
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema \
                 WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(&error)?;
        let mut listed = BTreeMap::new();
        for table in tables {
            let mut columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .and_then(|mut stmt| {
                    stmt.query_map([&table], |row| row.get(0))?
                        .collect::<Result<_, _>>()
                })
                .map_err(&error)?;
            columns.sort();
            listed.insert(table, columns);
        }
        Ok(listed)
    }

    fn count(&mut self, table: &Table) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", table.name);
        let count: i64 = self
            .store
            .conn
            .query_row(&sql, [], |row| row.get(0))
            .map_err(db_error(&self.store.path, "counting rows"))?;
        Ok(count.unsigned_abs())
    }

    fn read(
        &mut self,
        table: &Table,
        after: Option<&[KeyValue]>,
        limit: usize,
    ) -> Result<Chunk, StoreError> {
        let columns = names(table.columns);
        let keys = names(table.key_columns());
        let (sql, mut params) = match after {
            None => (
                format!(
                    "SELECT {columns} FROM {} ORDER BY {keys} LIMIT ?1",
                    table.name
                ),
                Vec::new(),
            ),
            Some(after) => (
                format!(
                    "SELECT {columns} FROM {} WHERE ({keys}) > ({}) ORDER BY {keys} LIMIT ?{}",
                    table.name,
                    placeholders(1, after.len()),
                    after.len() + 1
                ),
                after.iter().map(key_value).collect::<Vec<_>>(),
            ),
        };
        params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let mut chunk = Chunk::new(table, limit);
        let path = &self.store.path;
        let mut stmt = self
            .store
            .conn
            .prepare_cached(&sql)
            .map_err(db_error(path, "reading rows to copy"))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(db_error(path, "reading rows to copy"))?;
        while let Some(row) = rows
            .next()
            .map_err(db_error(path, "reading rows to copy"))?
        {
            for (i, values) in chunk.columns.iter_mut().enumerate() {
                let read = match values {
                    Values::Int(v) => row.get(i).map(|x| v.push(x)),
                    Values::Text(v) => row.get(i).map(|x| v.push(x)),
                    Values::Blob(v) => row.get(i).map(|x| v.push(x)),
                    Values::Bool(v) => row.get(i).map(|x| v.push(x)),
                };
                read.map_err(db_error(path, "reading rows to copy"))?;
            }
        }
        Ok(chunk)
    }

    fn progress(&mut self) -> Result<Option<Progress>, StoreError> {
        let path = &self.store.path;
        let conn = &self.store.conn;
        let error = db_error(path, "reading the migration's progress");
        let exists: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [MIGRATION_TABLE],
                |row| row.get(0),
            )
            .map_err(&error)?;
        if !exists {
            return Ok(None);
        }
        let sql = format!("SELECT name, source, after, copied, done FROM {MIGRATION_TABLE}");
        let rows: Vec<(String, String, Option<String>, i64, bool)> = conn
            .prepare(&sql)
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                })?
                .collect::<Result<_, _>>()
            })
            .map_err(&error)?;
        let mut progress = Progress {
            source: String::new(),
            tables: BTreeMap::new(),
        };
        for (name, source, after, copied, done) in rows {
            progress.source = source;
            let after = after.map(|text| decode_key(&text, path)).transpose()?;
            progress.tables.insert(
                name,
                TableProgress {
                    copied: copied.unsigned_abs(),
                    after,
                    done,
                },
            );
        }
        Ok(Some(progress))
    }

    fn start(&mut self, source: &str) -> Result<(), StoreError> {
        let path = &self.store.path;
        let error = db_error(path, "recording the start of a migration");
        let tx = self.store.conn.transaction().map_err(&error)?;
        tx.execute_batch(&format!(
            "CREATE TABLE {MIGRATION_TABLE} (
                 name   TEXT PRIMARY KEY,
                 source TEXT NOT NULL,
                 after  TEXT,
                 copied INTEGER NOT NULL,
                 done   INTEGER NOT NULL CHECK (done IN (0, 1))
             ) STRICT"
        ))
        .map_err(&error)?;
        {
            let mut insert = tx
                .prepare(&format!(
                    "INSERT INTO {MIGRATION_TABLE} (name, source, after, copied, done) \
                     VALUES (?1, ?2, NULL, 0, 0)"
                ))
                .map_err(&error)?;
            for table in TABLES {
                insert.execute((table.name, source)).map_err(&error)?;
            }
        }
        tx.commit().map_err(&error)
    }

    fn write(
        &mut self,
        table: &Table,
        chunk: &Chunk,
        progress: &TableProgress,
    ) -> Result<(), StoreError> {
        let path = &self.store.path;
        let error = db_error(path, "writing copied rows");
        let tx = self.store.conn.transaction().map_err(&error)?;
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    table.name,
                    names(table.columns),
                    placeholders(1, table.columns.len())
                ))
                .map_err(&error)?;
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(table.columns.len());
            for row in 0..chunk.rows() {
                params.clear();
                for values in &chunk.columns {
                    params.push(match values {
                        Values::Int(v) => &v[row],
                        Values::Text(v) => &v[row],
                        Values::Blob(v) => &v[row],
                        Values::Bool(v) => &v[row],
                    });
                }
                insert.execute(params.as_slice()).map_err(&error)?;
            }
        }
        tx.execute(
            &format!(
                "UPDATE {MIGRATION_TABLE} SET after = ?2, copied = ?3, done = ?4 WHERE name = ?1"
            ),
            (
                table.name,
                progress.after.as_deref().map(encode_key),
                i64::try_from(progress.copied).unwrap_or(i64::MAX),
                progress.done,
            ),
        )
        .map_err(&error)?;
        tx.commit().map_err(&error)
    }

    fn settle_ids(&mut self) -> Result<(), StoreError> {
        // An INTEGER PRIMARY KEY takes the largest id plus one by itself.
        Ok(())
    }

    fn forget(&mut self) -> Result<(), StoreError> {
        self.store
            .conn
            .execute_batch(&format!("DROP TABLE IF EXISTS {MIGRATION_TABLE}"))
            .map_err(db_error(
                &self.store.path,
                "removing the migration's progress",
            ))
    }
}
