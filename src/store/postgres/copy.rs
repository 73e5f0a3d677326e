//! The PostgreSQL side of `store migrate` ([`CopyEnd`]): reads a table in
//! primary-key order a run of rows at a time (one query per run), writes a run
//! as ONE statement over arrays (`INSERT ... SELECT * FROM unnest(...)`) in one
//! transaction with the progress it makes (the `dora_migration` table), sets
//! the identity columns' sequences past the copied ids, lists the tables.
//!
//! It copies rows as they are stored (no decoding into events) and knows
//! nothing of the other side. A source database without dora-collector's tables
//! is refused before anything is created in it.

use super::{describe, pg_error, Connection, PostgresStore, PostgresUrl};
use crate::store::tables::{
    decode_key, encode_key, Chunk, CopyEnd, KeyValue, Progress, Table, TableProgress, Values,
    MIGRATION_TABLE, TABLES,
};
use crate::store::StoreError;
use postgres::types::ToSql;
use std::collections::{BTreeMap, HashMap};

/// One PostgreSQL store as a side of a migration: one connection of its pool,
/// held for the whole migration, with the statements prepared on it.
pub(in crate::store) struct PgEnd {
    /// Dropped before the store (and its pool).
    conn: Connection,
    statements: HashMap<String, postgres::Statement>,
    store: PostgresStore,
}

impl PgEnd {
    /// `store`, opened (and migrated) by [`PostgresStore::open`].
    pub(in crate::store) fn new(store: PostgresStore) -> Result<Self, StoreError> {
        let conn = store.conn()?;
        Ok(PgEnd {
            conn,
            statements: HashMap::new(),
            store,
        })
    }

    /// The store at `url` as a source: refused (with nothing created) when the
    /// database has no dora-collector schema; brought to the current schema
    /// version otherwise, as the daemon would.
    pub(in crate::store) fn open_source(url: &PostgresUrl) -> Result<Self, StoreError> {
        let (_, _, mut client) = PostgresStore::connect(url)?;
        let ours: bool = client
            .query_one("SELECT to_regclass('dora_schema') IS NOT NULL", &[])
            .and_then(|row| row.try_get(0))
            .map_err(pg_error(url.shown(), "reading the schema version"))?;
        drop(client);
        if !ours {
            return Err(StoreError::NoStore {
                target: url.shown().to_owned(),
                reason: "the database has no dora_schema table",
            });
        }
        Self::new(PostgresStore::open(url)?)
    }

    fn target(&self) -> &str {
        self.store.target()
    }

    /// `sql` prepared on this end's connection (once).
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .conn
            .prepare(sql)
            .map_err(pg_error(self.store.target(), "preparing a copy statement"))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
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

/// The SQL array type of a column's values.
fn array_type(values: &Values) -> &'static str {
    match values {
        Values::Int(_) => "bigint[]",
        Values::Text(_) => "text[]",
        Values::Blob(_) => "bytea[]",
        Values::Bool(_) => "boolean[]",
    }
}

fn key_param(key: &KeyValue) -> &(dyn ToSql + Sync) {
    match key {
        KeyValue::Int(v) => v,
        KeyValue::Text(v) => v,
        KeyValue::Blob(v) => v,
    }
}

impl CopyEnd for PgEnd {
    fn shown(&self) -> String {
        self.target().to_owned()
    }

    fn tables(&mut self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let rows = self
            .conn
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() ORDER BY 1, 2",
                &[],
            )
            .map_err(pg_error(self.store.target(), "listing the tables"))?;
        let mut listed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let table: String = row.get(0);
            listed.entry(table).or_default().push(row.get(1));
        }
        Ok(listed)
    }

    fn count(&mut self, table: &Table) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", table.name);
        let count: i64 = self
            .conn
            .query_one(&sql, &[])
            .and_then(|row| row.try_get(0))
            .map_err(pg_error(self.store.target(), "counting rows"))?;
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
        let limit_param = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let sql = match after {
            None => format!(
                "SELECT {columns} FROM {} ORDER BY {keys} LIMIT $1",
                table.name
            ),
            Some(after) => {
                params.extend(after.iter().map(key_param));
                let placeholders = (1..=after.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "SELECT {columns} FROM {} WHERE ({keys}) > ({placeholders}) \
                     ORDER BY {keys} LIMIT ${}",
                    table.name,
                    after.len() + 1
                )
            }
        };
        params.push(&limit_param);
        let statement = self.statement(&sql)?;
        let error = pg_error(self.store.target(), "reading rows to copy");
        let rows = self.conn.query(&statement, &params).map_err(&error)?;
        let mut chunk = Chunk::new(table, rows.len());
        for row in rows {
            for (i, values) in chunk.columns.iter_mut().enumerate() {
                let read = match values {
                    Values::Int(v) => row.try_get(i).map(|x| v.push(x)),
                    Values::Text(v) => row.try_get(i).map(|x| v.push(x)),
                    Values::Blob(v) => row.try_get(i).map(|x| v.push(x)),
                    Values::Bool(v) => row.try_get(i).map(|x| v.push(x)),
                };
                read.map_err(&error)?;
            }
        }
        Ok(chunk)
    }

    fn progress(&mut self) -> Result<Option<Progress>, StoreError> {
        let target = self.store.target().to_owned();
        let error = pg_error(&target, "reading the migration's progress");
        let exists: bool = self
            .conn
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&MIGRATION_TABLE])
            .and_then(|row| row.try_get(0))
            .map_err(&error)?;
        if !exists {
            return Ok(None);
        }
        let rows = self
            .conn
            .query(
                &format!("SELECT name, source, after, copied, done FROM {MIGRATION_TABLE}"),
                &[],
            )
            .map_err(&error)?;
        let mut progress = Progress {
            source: String::new(),
            tables: BTreeMap::new(),
        };
        for row in rows {
            progress.source = row.try_get(1).map_err(&error)?;
            let after: Option<String> = row.try_get(2).map_err(&error)?;
            let copied: i64 = row.try_get(3).map_err(&error)?;
            progress.tables.insert(
                row.try_get(0).map_err(&error)?,
                TableProgress {
                    copied: copied.unsigned_abs(),
                    after: after.map(|text| decode_key(&text, &target)).transpose()?,
                    done: row.try_get(4).map_err(&error)?,
                },
            );
        }
        Ok(Some(progress))
    }

    fn start(&mut self, source: &str) -> Result<(), StoreError> {
        let target = self.store.target().to_owned();
        let error = pg_error(&target, "recording the start of a migration");
        let mut tx = self.conn.transaction().map_err(&error)?;
        tx.batch_execute(&format!(
            "CREATE TABLE {MIGRATION_TABLE} (
                 name   text COLLATE \"C\" PRIMARY KEY,
                 source text NOT NULL,
                 after  text,
                 copied bigint NOT NULL,
                 done   boolean NOT NULL
             )"
        ))
        .map_err(&error)?;
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        tx.execute(
            &format!(
                "INSERT INTO {MIGRATION_TABLE} (name, source, after, copied, done) \
                 SELECT name, $2, NULL, 0, false FROM unnest($1::text[]) AS name"
            ),
            &[&names, &source],
        )
        .map_err(&error)?;
        tx.commit().map_err(&error)
    }

    fn write(
        &mut self,
        table: &Table,
        chunk: &Chunk,
        progress: &TableProgress,
    ) -> Result<(), StoreError> {
        let arrays = chunk
            .columns
            .iter()
            .enumerate()
            .map(|(i, values)| format!("${}::{}", i + 1, array_type(values)))
            .collect::<Vec<_>>()
            .join(", ");
        let overriding = if table.generated_id {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let insert = self.statement(&format!(
            "INSERT INTO {} ({}){overriding} SELECT * FROM unnest({arrays})",
            table.name,
            names(table.columns)
        ))?;
        let update = self.statement(&format!(
            "UPDATE {MIGRATION_TABLE} SET after = $2, copied = $3, done = $4 WHERE name = $1"
        ))?;
        let params: Vec<&(dyn ToSql + Sync)> = chunk
            .columns
            .iter()
            .map(|values| -> &(dyn ToSql + Sync) {
                match values {
                    Values::Int(v) => v,
                    Values::Text(v) => v,
                    Values::Blob(v) => v,
                    Values::Bool(v) => v,
                }
            })
            .collect();
        let target = self.store.target().to_owned();
        let error = pg_error(&target, "writing copied rows");
        let mut tx = self.conn.transaction().map_err(&error)?;
        tx.execute(&insert, &params).map_err(&error)?;
        let after = progress.after.as_deref().map(encode_key);
        let copied = i64::try_from(progress.copied).unwrap_or(i64::MAX);
        tx.execute(&update, &[&table.name, &after, &copied, &progress.done])
            .map_err(&error)?;
        tx.commit().map_err(&error)
    }

    fn settle_ids(&mut self) -> Result<(), StoreError> {
        for table in TABLES.iter().filter(|t| t.generated_id) {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), \
                 COALESCE((SELECT max(id) FROM {0}), 0) + 1, false)",
                table.name
            );
            self.conn.execute(&sql, &[]).map_err(pg_error(
                self.store.target(),
                "setting the next generated id",
            ))?;
        }
        Ok(())
    }

    fn forget(&mut self) -> Result<(), StoreError> {
        self.conn
            .batch_execute(&format!("DROP TABLE IF EXISTS {MIGRATION_TABLE}"))
            .map_err(|cause| StoreError::Postgres {
                target: self.store.target().to_owned(),
                operation: "removing the migration's progress",
                cause: describe(&cause),
            })
    }
}
