//! # plugboard-sqlite: the embedded default connector
//!
//! Serves `type = "sqlite"` and `type = "sql"` with a `sqlite://` URL, on rusqlite with a
//! bundled SQLite (no system library needed).
//!
//! ```toml
//! [connections.pets_db]
//! url = "sqlite:///pets.db"        # or: database = "pets.db"
//! read_only = false                # or ?mode=ro in the URL
//! busy_timeout = "5s"              # wait for another writer's lock (default 5 s)
//! pool_size = 4                    # concurrent readers (`:memory:` always uses 1)
//! ```
//!
//! * `read` runs one query with named parameters (`:owner`, `@owner`, `$owner`, or `?1`
//!   bound as `1`), bound by SQLite, never spliced into the text.
//! * `execute` runs statements in one `BEGIN IMMEDIATE` transaction: all or nothing.
//! * Thread safety: a small pool (see [`pool`]); each call holds one SQLite connection.

mod catalog;
pub mod config;
pub mod fuzzing;
pub mod pool;
mod read;
mod text;

use std::collections::BTreeSet;
use std::sync::Arc;

use plugboard_api::arrow_array::{RecordBatch, RecordBatchIterator};
use plugboard_api::arrow_schema::{ArrowError, SchemaRef};
use plugboard_api::log;
use plugboard_api::partition::{self, Partitioning};
use plugboard_api::stream;
use plugboard_api::{
    Connector, ExecuteRequest, Manifest, Params, PluginError, ReadRequest, RecordBatchReader,
    Value, export_connector,
};
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::{ToSqlOutput, ValueRef};

pub use crate::config::Config;
use crate::pool::{Manager, Pool};
use crate::read::query_error;

/// Rows per record batch unless the host asks for another size. Large enough that per-batch
/// overhead vanishes, small enough that a batch's builders stay in cache.
pub const DEFAULT_BATCH_SIZE: usize = 64 * 1024;

/// A connection to one SQLite database.
pub struct Sqlite {
    pool: Arc<Pool>,
    /// The database file SQLite opened (see [`target_of`]).
    target: plugboard_api::Target,
}

impl Connector for Sqlite {
    type Config = Config;

    fn manifest() -> Manifest {
        use plugboard_api::{ConfigKey, KeyType};
        Manifest::new("sqlite", env!("CARGO_PKG_VERSION"))
            .description("SQLite databases (bundled SQLite)")
            .kinds(["sqlite"])
            .schemes(["sqlite"])
            .key(
                ConfigKey::string("url")
                    .describe("sqlite:///relative.db, sqlite:////abs.db, sqlite:// (in memory)"),
            )
            .key(ConfigKey::string("dialect").describe("SQLAlchemy's dialect: sqlite"))
            .key(ConfigKey::string("database").describe("a file path, or :memory:"))
            .key(
                ConfigKey::new("query", KeyType::Table).describe("URL options: mode, timeout, uri"),
            )
            .key(ConfigKey::new("read_only", KeyType::Boolean))
            .key(ConfigKey::new("create", KeyType::Boolean).describe("create the file if missing"))
            .key(
                ConfigKey::new("busy_timeout", KeyType::Duration)
                    .describe("milliseconds, or \"5s\""),
            )
            .key(
                ConfigKey::new("pool_size", KeyType::Integer)
                    .describe("concurrent readers (default 4)"),
            )
            .key(
                ConfigKey::new("mmap_size", KeyType::Integer)
                    .describe("bytes SQLite may memory-map for reads (default 0: off)"),
            )
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        let settings = config.resolve()?;
        let size = settings.pool_size;
        let pool = Arc::new(Pool::open(Manager(settings), size)?);
        let target = target_of(&*pool.get()?, &pool.manager().0);
        Ok(Self { pool, target })
    }

    fn target(&self) -> Option<plugboard_api::Target> {
        Some(self.target.clone())
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl RecordBatchReader + Send + 'static, PluginError> {
        let batch_size = request.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let partitioning = Partitioning::from_request(request)?;
        if request.stream && partitioning.is_none() {
            return Ok(
                Box::new(self.stream(request, batch_size)?) as Box<dyn RecordBatchReader + Send>
            );
        }
        let (schema, batches) = match partitioning {
            Some(partitioning) => self.read_partitioned(request, &partitioning, batch_size)?,
            None => self.read_one(&request.query, request, batch_size, request.limit)?,
        };
        Ok(Box::new(RecordBatchIterator::new(
            batches.into_iter().map(Ok::<RecordBatch, ArrowError>),
            schema,
        )))
    }

    fn tables(&self) -> Result<Vec<plugboard_api::TableInfo>, PluginError> {
        catalog::tables(&*self.pool.get()?)
    }

    fn describe(&self, table: &str) -> Result<Vec<plugboard_api::ColumnInfo>, PluginError> {
        catalog::describe(&*self.pool.get()?, table)
    }

    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        if self.pool.manager().0.read_only {
            return Err(PluginError::query(
                "this connection is read-only (read_only = true or mode=ro)",
            ));
        }
        let mut conn = self.pool.get()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(query_error)?;
        let mut affected = 0u64;
        let mut used_shared = BTreeSet::new();
        let mut all_names = BTreeSet::new();
        for (i, statement) in request.statements.iter().enumerate() {
            let at = |e: PluginError| {
                if request.statements.len() > 1 {
                    PluginError::new(e.kind, format!("statement {}: {}", i + 1, e.message()))
                } else {
                    e
                }
            };
            // A text may hold several statements ("CREATE ...; INSERT ..."): each is
            // prepared only after the one before it ran, so later ones can see its effects.
            let mut batch = rusqlite::Batch::new(&tx, &statement.sql);
            let mut used_own = BTreeSet::new();
            let mut names = Vec::new();
            while let Some(mut stmt) = batch.next().map_err(query_error).map_err(at)? {
                let used = bind(&mut stmt, &statement.params, Some(&request.params)).map_err(at)?;
                for k in used {
                    if statement.params.contains_key(k) {
                        used_own.insert(k);
                    } else {
                        used_shared.insert(k);
                    }
                }
                names.extend(stmt_params(&stmt));
                affected += stmt.raw_execute().map_err(query_error).map_err(at)? as u64;
            }
            check_all_used(&statement.params, &used_own, &names).map_err(at)?;
            all_names.extend(names);
        }
        let unused: Vec<&String> = request
            .params
            .keys()
            .filter(|k| !used_shared.contains(k.as_str()))
            .collect();
        if let Some(name) = unused.first() {
            return Err(unknown_param(
                name,
                &all_names.into_iter().collect::<Vec<_>>(),
            ));
        }
        tx.commit().map_err(query_error)?;
        Ok(affected)
    }

    fn cancel(&self) -> Result<(), PluginError> {
        self.pool.cancel().map(drop)
    }

    fn ping(&self) -> Result<(), PluginError> {
        let conn = self.pool.get()?;
        conn.query_row("SELECT 1", [], |_| Ok(()))
            .map_err(|e| PluginError::connect(e.to_string()).retryable())
    }
}

/// What a connection reads, for the host's cache keys: the database file as SQLite itself
/// opened it (`sqlite3_db_filename`, absolute), with symlinks resolved, so that
/// `sqlite:///pets.db` from two folders, or a file reached through a link, is told apart or
/// recognized as one. An in-memory (or temporary) database is this connection's alone: its
/// target is [private](plugboard_api::Target::private), shared with no one.
///
/// Read-only-ness, timeouts and pool sizes are left out: they do not change what a read
/// returns.
fn target_of(conn: &rusqlite::Connection, settings: &config::Settings) -> plugboard_api::Target {
    use config::Location;
    use plugboard_api::Target;
    let memory = || Target::new().with("database", ":memory:").private();
    let file = |path: &std::path::Path| {
        let path = std::fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        Target::new().with("path", path.to_string_lossy().into_owned())
    };
    match conn.path() {
        Some("") => memory(),
        Some(path) => file(std::path::Path::new(path)),
        // A name that is not UTF-8: from the settings instead.
        None => match &settings.location {
            Location::Memory => memory(),
            Location::File(path) => file(path),
            Location::Uri(uri) => Target::new().with("uri", uri.clone()).with(
                "cwd",
                std::env::current_dir()
                    .map(|d| d.to_string_lossy().into_owned())
                    .ok(),
            ),
        },
    }
}

/// The statement's parameter names as users write them (`:owner`), by index.
type Batches = (SchemaRef, Vec<RecordBatch>);

impl Sqlite {
    /// One statement on one pooled connection.
    fn read_one(
        &self,
        sql: &str,
        request: &ReadRequest,
        batch_size: usize,
        limit: Option<u64>,
    ) -> Result<Batches, PluginError> {
        let conn = self.pool.get()?;
        let mut stmt = prepare(&conn, sql, request)?;
        read::read_batches(&mut stmt, batch_size, limit)
    }

    /// A streamed read (an export): stepped on a thread of its own, each batch handed to
    /// the host as soon as it is read, two at most waiting.
    fn stream(
        &self,
        request: &ReadRequest,
        batch_size: usize,
    ) -> Result<stream::ThreadReader, PluginError> {
        let pool = Arc::clone(&self.pool);
        let request = request.clone();
        stream::spawn(2, move |sink| {
            let conn = pool.get_owned()?;
            let mut stmt = prepare(&conn, &request.query, &request)?;
            read::stream_batches(&mut stmt, batch_size, request.limit, |schema, batch| {
                match batch {
                    Some(batch) => sink.send(batch)?,
                    None => sink.schema(schema)?,
                }
                Ok(())
            })
        })
    }

    /// One integer from a one-row, one-column query.
    fn scalar(
        &self,
        sql: &str,
        request: &ReadRequest,
        what: &str,
    ) -> Result<Option<i64>, PluginError> {
        let conn = self.pool.get()?;
        let mut stmt = conn.prepare_cached(sql).map_err(query_error)?;
        bind(&mut stmt, &request.params, None)?;
        let mut rows = stmt.raw_query();
        let row = rows.next().map_err(query_error)?;
        match row.map(|r| r.get_ref(0)).transpose().map_err(query_error)? {
            None | Some(ValueRef::Null) => Ok(None),
            Some(ValueRef::Integer(v)) => Ok(Some(v)),
            Some(other) => Err(PluginError::query(format!(
                "partition_on: the {what} is {:?}, not an integer; partition on an integer column",
                other.data_type()
            ))),
        }
    }

    /// The ranges of `partition_on`, each read on its own connection and thread, in order.
    fn read_partitioned(
        &self,
        request: &ReadRequest,
        partitioning: &Partitioning,
        batch_size: usize,
    ) -> Result<Batches, PluginError> {
        let column = quote_ident(&partitioning.column);
        let (min, max) = match partitioning.range {
            Some(range) => range,
            None => {
                let [min_sql, max_sql] = partitioning.bounds_sql(&request.query, &column);
                match (
                    self.scalar(&min_sql, request, "minimum")?,
                    self.scalar(&max_sql, request, "maximum")?,
                ) {
                    (Some(min), Some(max)) => (min, max),
                    // No rows (or only NULLs): one plain read keeps the schema right.
                    _ => return self.read_one(&request.query, request, batch_size, None),
                }
            }
        };
        let parts = partition::read_parts(
            partitioning.queries(&request.query, &column, min, max),
            |sql| self.read_one(&sql, request, batch_size, None),
        )?;
        let mut schema: Option<SchemaRef> = None;
        let mut batches = Vec::new();
        let mut empty_schema = None;
        for (part_schema, part_batches) in parts {
            if part_batches.is_empty() {
                empty_schema.get_or_insert(part_schema);
                continue;
            }
            match &schema {
                None => schema = Some(part_schema),
                // Each part picks its columns' types from its own values; when they
                // disagree, one plain read picks them from all values.
                Some(s) if *s != part_schema => {
                    log::debug!("partitions disagree on column types; reading unpartitioned");
                    return self.read_one(&request.query, request, batch_size, None);
                }
                Some(_) => {}
            }
            batches.extend(part_batches);
        }
        let schema = schema
            .or(empty_schema)
            .ok_or_else(|| PluginError::internal("no partitions were read"))?;
        Ok((schema, batches))
    }
}

/// Prepares a read's statement (from the connection's cache) and binds its parameters;
/// one the statement does not use is an error.
fn prepare<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
    request: &ReadRequest,
) -> Result<rusqlite::CachedStatement<'c>, PluginError> {
    let mut stmt = conn.prepare_cached(sql).map_err(query_error)?;
    let used = bind(&mut stmt, &request.params, None)?;
    check_all_used(&request.params, &used, &stmt_params(&stmt))?;
    Ok(stmt)
}

/// An identifier as SQLite quotes it.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn stmt_params(stmt: &rusqlite::Statement<'_>) -> Vec<String> {
    (1..=stmt.parameter_count())
        .map(|i| {
            stmt.parameter_name(i)
                .map_or_else(|| format!("?{i}"), str::to_owned)
        })
        .collect()
}

/// Our params are stored without their sigil; `?3` is looked up as `3`.
fn param_key(name: &str) -> &str {
    name.trim_start_matches([':', '@', '$', '?'])
}

/// Binds every parameter the statement uses; returns the keys that were used.
fn bind<'p>(
    stmt: &mut rusqlite::Statement<'_>,
    params: &'p Params,
    shared: Option<&'p Params>,
) -> Result<BTreeSet<&'p str>, PluginError> {
    let names = stmt_params(stmt);
    let mut used = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let key = param_key(name);
        let (k, value) = params
            .get_key_value(key)
            .or_else(|| shared.and_then(|s| s.get_key_value(key)))
            .ok_or_else(|| {
                PluginError::query(format!(
                    "missing value for parameter {name} (pass it as {key}=VALUE)"
                ))
            })?;
        stmt.raw_bind_parameter(i + 1, SqlValue(value))
            .map_err(query_error)?;
        used.insert(k.as_str());
    }
    Ok(used)
}

fn check_all_used(
    params: &Params,
    used: &BTreeSet<&str>,
    names: &[String],
) -> Result<(), PluginError> {
    match params.keys().find(|k| !used.contains(k.as_str())) {
        Some(k) => Err(unknown_param(k, names)),
        None => Ok(()),
    }
}

fn unknown_param(name: &str, names: &[String]) -> PluginError {
    let known = if names.is_empty() {
        "the statement takes no parameters".to_owned()
    } else {
        format!("the statement's parameters are {}", names.join(", "))
    };
    PluginError::query(format!("unknown parameter {name:?}: {known}"))
}

struct SqlValue<'a>(&'a Value);

impl rusqlite::ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as V;
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => V::Null,
            Value::Bool(b) => V::Integer(i64::from(*b)),
            Value::Int(i) => V::Integer(*i),
            Value::Float(f) => V::Real(*f),
            Value::String(s) => V::Text(s.as_bytes()),
            Value::Bytes(b) => V::Blob(b),
        }))
    }
}

export_connector!(Sqlite);

#[cfg(test)]
mod tests {
    use plugboard_api::arrow_array::{Int64Array, StringViewArray};
    use plugboard_api::arrow_schema::DataType;
    use plugboard_api::{Statement, from_table};

    use super::*;

    fn memory() -> Sqlite {
        let table = serde_json::json!({"url": "sqlite://"});
        let config = from_table(table.as_object().cloned().unwrap_or_default()).expect("config");
        Sqlite::connect(config).expect("connect")
    }

    fn exec(db: &Sqlite, sql: &str, params: Params) -> Result<u64, PluginError> {
        db.execute(&ExecuteRequest {
            statements: vec![Statement {
                sql: sql.into(),
                params,
            }],
            params: Params::new(),
        })
    }

    fn read(db: &Sqlite, sql: &str, params: Params) -> Result<Vec<RecordBatch>, PluginError> {
        let reader = db.read(&ReadRequest {
            query: sql.into(),
            params,
            ..ReadRequest::default()
        })?;
        Ok(reader.collect::<Result<Vec<_>, _>>().expect("batches"))
    }

    fn column_types(reader: &impl RecordBatchReader) -> Vec<DataType> {
        reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    fn p(pairs: &[(&str, Value)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn the_target_is_the_canonical_file_or_a_private_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.db");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let open = |url: String| {
            let table = serde_json::json!({ "url": url });
            let config =
                from_table(table.as_object().cloned().unwrap_or_default()).expect("config");
            Sqlite::connect(config).expect("connect")
        };
        let by_path = open(format!("sqlite:///{}", real.display()));
        let by_link = open(format!("sqlite:///{}?mode=ro", link.display()));
        let canonical = real.canonicalize().expect("canonical");
        assert_eq!(
            by_path.target().map(|t| t.to_json()),
            Some(format!(
                r#"{{"path":{}}}"#,
                serde_json::json!(canonical.display().to_string())
            ))
        );
        assert_eq!(
            by_path.target(),
            by_link.target(),
            "a link and read-only-ness do not make another source"
        );
        let (a, b) = (memory().target(), memory().target());
        assert_ne!(a, b, "every in-memory database is its own");
        assert_eq!(
            a.and_then(|t| t.get("database").cloned()),
            Some(serde_json::json!(":memory:"))
        );
    }

    #[test]
    fn disagreeing_column_values_are_kept_losslessly() {
        let db = memory();
        exec(&db, "CREATE TABLE t(a INTEGER, b, c TEXT); INSERT INTO t VALUES (1, 1, 'x'), (2.5, 'two', x'ff'), (NULL, 9007199254740993, 'z')", Params::new()).expect("setup");
        let batches = read(&db, "SELECT a, b, c FROM t", Params::new()).expect("read");
        let schema = batches[0].schema();
        assert_eq!(schema.field(0).data_type(), &DataType::Float64);
        assert_eq!(schema.field(1).data_type(), &DataType::Utf8View);
        assert_eq!(schema.field(2).data_type(), &DataType::BinaryView);
        let b = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<StringViewArray>()
            .expect("utf8");
        assert_eq!(
            b.value(2),
            "9007199254740993",
            "big integers survive exactly"
        );
    }

    #[test]
    fn params_are_bound_not_spliced() {
        let db = memory();
        exec(&db, "CREATE TABLE t(name TEXT)", Params::new()).expect("create");
        let evil = "x'); DROP TABLE t; --";
        exec(
            &db,
            "INSERT INTO t VALUES (:name)",
            p(&[("name", Value::from(evil))]),
        )
        .expect("insert");
        let batches = read(
            &db,
            "SELECT count(*) AS n FROM t WHERE name = :name",
            p(&[("name", evil.into())]),
        )
        .expect("read");
        let n = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int");
        assert_eq!(n.value(0), 1);
    }

    #[test]
    fn wrong_and_missing_param_names_are_errors() {
        let db = memory();
        let e = read(&db, "SELECT :a AS x", p(&[("b", 1.into())])).unwrap_err();
        assert!(
            e.message().contains("missing value for parameter :a"),
            "{e}"
        );
        let e = read(
            &db,
            "SELECT :a AS x",
            p(&[("a", 1.into()), ("b", 1.into())]),
        )
        .unwrap_err();
        assert!(e.message().contains("unknown parameter \"b\""), "{e}");
        assert!(e.message().contains(":a"), "{e}");
    }

    #[test]
    fn execute_is_all_or_nothing() {
        let db = memory();
        exec(&db, "CREATE TABLE t(x INTEGER NOT NULL)", Params::new()).expect("create");
        let e = db
            .execute(&ExecuteRequest {
                statements: vec![
                    Statement {
                        sql: "INSERT INTO t VALUES (1)".into(),
                        params: Params::new(),
                    },
                    Statement {
                        sql: "INSERT INTO t VALUES (NULL)".into(),
                        params: Params::new(),
                    },
                ],
                params: Params::new(),
            })
            .unwrap_err();
        assert!(e.message().starts_with("statement 2:"), "{e}");
        let batches = read(&db, "SELECT count(*) FROM t", Params::new()).expect("read");
        let n = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int");
        assert_eq!(n.value(0), 0, "the first insert was rolled back");
    }

    #[test]
    fn empty_results_keep_declared_types_and_limit_stops_early() {
        let db = memory();
        exec(
            &db,
            "CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB)",
            Params::new(),
        )
        .expect("create");
        let reader = db
            .read(&ReadRequest {
                query: "SELECT * FROM t".into(),
                ..ReadRequest::default()
            })
            .expect("read");
        let types = column_types(&reader);
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8View,
                DataType::BinaryView
            ]
        );

        let reader = db
            .read(&ReadRequest {
                query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c".into(),
                limit: Some(10),
                batch_size: Some(3),
                ..ReadRequest::default()
            })
            .expect("an endless query with a limit");
        let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
        assert_eq!(rows, 10);
    }

    fn stream(db: &Sqlite, sql: &str, batch_size: usize) -> Result<Vec<RecordBatch>, String> {
        let reader = db
            .read(&ReadRequest {
                query: sql.into(),
                batch_size: Some(batch_size),
                stream: true,
                ..ReadRequest::default()
            })
            .map_err(|e| e.to_string())?;
        reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_streamed_read_equals_the_cached_one_and_refuses_a_type_change() {
        let db = memory();
        exec(
            &db,
            "CREATE TABLE t(a INTEGER, b REAL, c TEXT, d)",
            Params::new(),
        )
        .expect("create");
        exec(
            &db,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
             INSERT INTO t SELECT i, i * 0.5, 'v' || (i % 7), CASE WHEN i % 3 = 0 THEN NULL ELSE i END FROM n",
            Params::new(),
        )
        .expect("fill");
        let cached = read(&db, "SELECT * FROM t", Params::new()).expect("read");
        let streamed = stream(&db, "SELECT * FROM t", 100).expect("stream");
        assert_eq!(streamed.len(), 10, "one batch per 100 rows");
        assert_eq!(cached.len(), 1);
        for (i, batch) in streamed.iter().enumerate() {
            assert_eq!(batch, &cached[0].slice(i * 100, 100), "batch {i}");
        }

        // The first batch sees integers only; a REAL in row 1000 cannot become Int64.
        exec(&db, "UPDATE t SET a = 1.5 WHERE a = 1000", Params::new()).expect("update");
        let e = stream(&db, "SELECT a FROM t ORDER BY rowid", 100).expect_err("a type change");
        assert!(
            e.contains(r#"column "a": rows 901..1000 need Float64, but the first 100 rows fixed it as Int64"#),
            "{e}"
        );
        // Widening that loses nothing is fine: integers into a REAL column, anything as text.
        exec(
            &db,
            "UPDATE t SET b = 7, c = 42 WHERE a = 999",
            Params::new(),
        )
        .expect("update");
        let batches = stream(&db, "SELECT b, c FROM t ORDER BY rowid", 100).expect("stream");
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            1000
        );

        // No rows: the declared types, and no batch.
        let reader = db
            .read(&ReadRequest {
                query: "SELECT a, c FROM t WHERE 0".into(),
                stream: true,
                ..ReadRequest::default()
            })
            .expect("empty");
        let types = column_types(&reader);
        assert_eq!(types, [DataType::Int64, DataType::Utf8View]);
        assert_eq!(reader.count(), 0);
        assert!(
            stream(&db, "SELECT nope FROM t", 10)
                .expect_err("bad sql")
                .contains("no such column")
        );
    }
}
