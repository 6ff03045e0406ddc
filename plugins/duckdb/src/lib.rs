//! # plugboard-duckdb: DuckDB files, `:memory:` and Parquet, from DuckDB's Arrow output
//!
//! Serves `type = "duckdb"` and `type = "sql"` with a `duckdb://` URL (duckdb-engine's
//! form), on the `duckdb` crate with a bundled DuckDB (parquet and json built in).
//! Written as a third party would write it: this crate uses `plugboard-api` and `duckdb`,
//! nothing of the host's.
//!
//! ```toml
//! [connections.trips]
//! url = "duckdb:///trips.duckdb?read_only=true"   # or: database = "trips.duckdb" / ":memory:"
//! read_only = false                              # the URL's ?read_only=, or this key
//! config = { threads = 4, memory_limit = "2GB" } # DuckDB's own settings
//! ```
//!
//! * `read` runs one query with `$1`, `?` (bound as `1`, `2`, …) or `$name` parameters,
//!   bound by DuckDB. Batches are DuckDB's own Arrow arrays, not copied; a streamed read
//!   (an export) hands each over as DuckDB produces it. See [`types`] for the few types a
//!   DataFrame cannot hold as DuckDB exports them.
//! * `execute` runs statements in one transaction: all or nothing.
//! * One process may write a database file at a time (DuckDB's rule): a second process
//!   opening it gets DuckDB's "Could not set lock" error at connect, at once.
//! * Extensions: parquet and json are built in; autoinstall is off, so one that is not
//!   installed fails with DuckDB's "not installed" error instead of a download.

#![forbid(unsafe_code)]

mod catalog;
pub mod config;
pub mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use duckdb::arrow::record_batch::RecordBatch;
use plugboard_api::arrow_array::RecordBatchIterator;
use plugboard_api::arrow_schema::ArrowError;
use plugboard_api::pool::{self, Manage};
use plugboard_api::stream;
use plugboard_api::{
    ConfigKey, Connector, ExecuteRequest, KeyType, Manifest, Params, PluginError, ReadRequest,
    RecordBatchReader, Target, Value, export_connector,
};

pub use crate::config::Config;
use crate::config::{Location, Settings};
use crate::types::Conversion;

/// How many DuckDB connections (to the one database) serve concurrent calls. DuckDB runs
/// one query on all its threads, so a few are plenty.
pub const POOL_SIZE: usize = 4;

/// A connection to one DuckDB database (a file, or its own `:memory:`).
pub struct DuckDb {
    pool: Arc<Pool>,
    target: Target,
}

/// Opens connections to the one database instance: every pooled connection is a
/// `try_clone` of the first, so they share one file lock and one `:memory:` database.
pub struct Manager {
    instance: Arc<Instance>,
    settings: Settings,
    shown: String,
}

/// One opened DuckDB database, shared by every connection of this process to its file.
///
/// DuckDB's file lock is per process, so a second instance of the same file in one
/// process would open it read-write beside the first, unnoticed: two writers of one file.
/// Like Python's `duckdb.connect`, a second connection to an open file reuses its
/// instance, and one asking for other settings is refused.
pub struct Instance {
    first: Mutex<duckdb::Connection>,
    settings: Settings,
}

/// The open file instances, by canonical path.
static INSTANCES: Mutex<BTreeMap<PathBuf, Weak<Instance>>> = Mutex::new(BTreeMap::new());

/// The instance for `settings`: the open one of its file, or a new one.
fn instance(settings: &Settings) -> Result<(Arc<Instance>, String), PluginError> {
    let Location::File(path) = &settings.location else {
        let (first, shown) = open(settings)?;
        let instance = Instance {
            first: Mutex::new(first),
            settings: settings.clone(),
        };
        return Ok((Arc::new(instance), shown));
    };
    let key = canonical(path);
    let shown = key.display().to_string();
    let mut open_files = INSTANCES
        .lock()
        .map_err(|_| PluginError::internal("the DuckDB instance registry is poisoned"))?;
    open_files.retain(|_, w| w.strong_count() > 0);
    if let Some(instance) = open_files.get(&key).and_then(Weak::upgrade) {
        if instance.settings.read_only != settings.read_only
            || instance.settings.config != settings.config
        {
            return Err(PluginError::config(format!(
                "DuckDB database {shown} is already open in this process with other settings                  (read_only or config); one process opens a file once, so give its connections the same settings"
            )));
        }
        return Ok((instance, shown));
    }
    let (first, _) = open(settings)?;
    let instance = Arc::new(Instance {
        first: Mutex::new(first),
        settings: settings.clone(),
    });
    open_files.insert(key, Arc::downgrade(&instance));
    Ok((instance, shown))
}

/// A path with symlinks resolved when it exists, else made absolute.
fn canonical(path: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

impl Manage for Manager {
    type Conn = duckdb::Connection;

    fn connect(&self) -> Result<duckdb::Connection, PluginError> {
        let first = self
            .instance
            .first
            .lock()
            .map_err(|_| PluginError::internal("the DuckDB connection lock is poisoned"))?;
        first.try_clone().map_err(|e| {
            PluginError::connect(format!(
                "cannot connect to DuckDB database {}: {}",
                self.shown,
                one_line(&e)
            ))
        })
    }

    /// Left inside a transaction (by a panic): do not hand it to the next caller.
    fn reusable(&self, conn: &mut duckdb::Connection) -> bool {
        conn.is_autocommit()
    }

    /// `duckdb_interrupt`: the query running on this connection fails with DuckDB's
    /// INTERRUPT error; with none running, nothing happens (DuckDB clears the flag when
    /// the next query starts).
    fn canceller(&self, conn: &duckdb::Connection) -> Option<pool::Canceller> {
        let handle = conn.interrupt_handle();
        Some(Box::new(move || {
            handle.interrupt();
            Ok(())
        }))
    }
}

pub type Pool = pool::Pool<Manager>;

impl Connector for DuckDb {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("duckdb", env!("CARGO_PKG_VERSION"))
            .description("DuckDB databases and the files DuckDB reads (bundled DuckDB)")
            .kinds(["duckdb"])
            .schemes(["duckdb"])
            .key(ConfigKey::string("url").describe(
                "duckdb:///relative.duckdb, duckdb:////abs.duckdb, duckdb:///:memory: (?read_only=true)",
            ))
            .key(ConfigKey::string("dialect").describe("SQLAlchemy's dialect: duckdb"))
            .key(ConfigKey::string("database").describe("a file path, or :memory:"))
            .key(ConfigKey::new("read_only", KeyType::Boolean).describe(
                "open the file read-only (other processes may read it too)",
            ))
            .key(ConfigKey::new("config", KeyType::Table).describe(
                "DuckDB settings: threads, memory_limit, …",
            ))
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        let settings = config.resolve()?;
        let (instance, shown) = instance(&settings)?;
        let target = target_of(&settings);
        let manager = Manager {
            instance,
            settings,
            shown,
        };
        Ok(Self {
            pool: Arc::new(Pool::open(manager, POOL_SIZE)?),
            target,
        })
    }

    fn target(&self) -> Option<Target> {
        Some(self.target.clone())
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl RecordBatchReader + Send + 'static, PluginError> {
        check_options(request)?;
        if request.stream {
            return Ok(Box::new(self.stream(request)?) as Box<dyn RecordBatchReader + Send>);
        }
        let conn = self.pool.get()?;
        let mut stmt = prepare(&conn, &request.query)?;
        let values = bind_values(&stmt, &request.params, None)?.0;
        let specials = specials(&stmt);
        stmt.execute(duckdb::params_from_iter(values))
            .map_err(query_error)?;
        let conversion = Conversion::for_schema(&stmt.schema(), &specials)?;
        let mut batches = Vec::new();
        let mut left = request.limit;
        while let Some(array) = stmt.step().map_err(query_error)? {
            let Some(batch) = limit(RecordBatch::from(&array), &mut left) else {
                break;
            };
            batches.push(conversion.apply(batch)?);
        }
        Ok(Box::new(RecordBatchIterator::new(
            batches.into_iter().map(Ok::<RecordBatch, ArrowError>),
            Arc::clone(&conversion.schema),
        )))
    }

    fn tables(&self) -> Result<Vec<plugboard_api::TableInfo>, PluginError> {
        catalog::tables(self)
    }

    fn describe(&self, table: &str) -> Result<Vec<plugboard_api::ColumnInfo>, PluginError> {
        catalog::describe(self, table)
    }

    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        if self.pool.manager().settings.read_only {
            return Err(PluginError::query(format!(
                "{} is opened read-only (read_only = true)",
                self.pool.manager().shown
            )));
        }
        let mut conn = self.pool.get()?;
        let tx = conn.transaction().map_err(query_error)?;
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
            // A text of several statements runs those before the last as they are; the
            // parameters are the last one's.
            let mut stmt = tx
                .prepare(&statement.sql)
                .map_err(query_error)
                .map_err(at)?;
            let (values, used, names) =
                bind_values(&stmt, &statement.params, Some(&request.params)).map_err(at)?;
            for k in used {
                if !statement.params.contains_key(&k) {
                    used_shared.insert(k);
                }
            }
            affected += stmt
                .execute(duckdb::params_from_iter(values))
                .map_err(query_error)
                .map_err(at)? as u64;
            all_names.extend(names);
        }
        if let Some(name) = request.params.keys().find(|k| !used_shared.contains(*k)) {
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
        conn.execute_batch("SELECT 1")
            .map_err(|e| PluginError::connect(one_line(&e)).retryable())
    }
}

impl DuckDb {
    /// A streamed read (an export): DuckDB's streaming result, stepped on a thread of its
    /// own, each chunk handed over as soon as DuckDB made it, two at most waiting.
    fn stream(&self, request: &ReadRequest) -> Result<stream::ThreadReader, PluginError> {
        let pool = Arc::clone(&self.pool);
        let request = request.clone();
        stream::spawn(2, move |sink| {
            let conn = pool.get_owned()?;
            let mut stmt = prepare(&conn, &request.query)?;
            let values = bind_values(&stmt, &request.params, None)?.0;
            let specials = specials(&stmt);
            let batches = stmt
                .stream_arrow(duckdb::params_from_iter(values))
                .map_err(query_error)?;
            let conversion = Conversion::for_schema(&batches.get_schema(), &specials)?;
            sink.schema(Arc::clone(&conversion.schema))?;
            let mut left = request.limit;
            for batch in batches {
                let Some(batch) = limit(batch.map_err(query_error)?, &mut left) else {
                    break;
                };
                sink.send(conversion.apply(batch)?)?;
            }
            Ok(())
        })
    }
}

/// Read options DuckDB has none of: `partition_on` in particular, since DuckDB already
/// runs one query on all its threads.
fn check_options(request: &ReadRequest) -> Result<(), PluginError> {
    match request.options.keys().next() {
        None => Ok(()),
        Some(k) if k.starts_with("partition") => Err(PluginError::query(format!(
            "read option {k}: DuckDB parallelizes a query itself; drop the option"
        ))),
        Some(k) => Err(PluginError::query(format!(
            "read option {k}: the duckdb connector takes no read options"
        ))),
    }
}

/// Cuts `batch` to the rows `left` allows; `None` once none are left.
fn limit(batch: RecordBatch, left: &mut Option<u64>) -> Option<RecordBatch> {
    let Some(n) = left else {
        return Some(batch);
    };
    if *n == 0 {
        return None;
    }
    let rows = batch.num_rows() as u64;
    if rows <= *n {
        *n -= rows;
        return Some(batch);
    }
    let keep = usize::try_from(*n).unwrap_or(usize::MAX);
    *n = 0;
    Some(batch.slice(0, keep))
}

/// Opens the database; returns it and how errors show it (its absolute path).
fn open(settings: &Settings) -> Result<(duckdb::Connection, String), PluginError> {
    let mut config = duckdb::Config::default()
        .access_mode(if settings.read_only {
            duckdb::AccessMode::ReadOnly
        } else {
            duckdb::AccessMode::ReadWrite
        })
        .map_err(|e| PluginError::config(format!("read_only: {}", one_line(&e))))?;
    for (key, value) in &settings.config {
        config = config
            .with(key, value)
            .map_err(|e| setting_error(settings, key, &e))?;
    }
    let (conn, shown) = match &settings.location {
        Location::Memory => (
            duckdb::Connection::open_in_memory_with_flags(config),
            ":memory:".to_owned(),
        ),
        Location::File(path) => {
            let shown = std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string();
            (duckdb::Connection::open_with_flags(path, config), shown)
        }
    };
    let conn = conn.map_err(|e| {
        let message = one_line(&e);
        // DuckDB checks settings when it opens the database: name the key at fault.
        if let Some(key) = settings
            .config
            .keys()
            .find(|k| message.contains(&format!("\"{k}\"")) || message.contains(&format!(": {k}")))
        {
            return setting_error(settings, key, &e);
        }
        let hint = match &settings.location {
            Location::File(p) if settings.read_only && !p.exists() => {
                " (the file does not exist; check the path, or open it read-write to create it)"
            }
            _ if message.contains("Could not set lock") => {
                " (DuckDB allows one process to write a database file: another one has it open; open it with read_only = true in every process, or wait for the writer)"
            }
            _ => "",
        };
        PluginError::connect(format!(
            "cannot open DuckDB database {shown}: {message}{hint}"
        ))
    })?;
    Ok((conn, shown))
}

fn setting_error(settings: &Settings, key: &str, e: &duckdb::Error) -> PluginError {
    let at = match settings.origin.get(key) {
        Some(&"url") => format!("`url`: setting {key}"),
        Some(_) => format!("`config.{key}`"),
        None => format!("setting {key}"),
    };
    PluginError::config(format!("{at}: {}", one_line(e)))
}

/// What a connection reads, for the host's cache keys: the database file's canonical
/// path (symlinks resolved, relative paths made absolute against the working directory),
/// so that one file reached two ways is one source and two files of one name are two. An
/// in-memory database is this connection's alone: [private](Target::private).
fn target_of(settings: &Settings) -> Target {
    match &settings.location {
        Location::Memory => Target::new().with("database", ":memory:").private(),
        Location::File(path) => {
            Target::new().with("path", canonical(path).to_string_lossy().into_owned())
        }
    }
}

fn prepare<'c>(
    conn: &'c duckdb::Connection,
    sql: &str,
) -> Result<duckdb::CachedStatement<'c>, PluginError> {
    conn.prepare_cached(sql).map_err(query_error)
}

/// What each result column's DuckDB type means for its Arrow form (see
/// [`types::Special`]), from the prepared statement.
fn specials(stmt: &duckdb::Statement<'_>) -> Vec<types::Special> {
    (0..stmt.column_count())
        .map(|i| types::special(&stmt.column_logical_type(i)))
        .collect()
}

/// A statement's values to bind (in its parameter order), the keys they came from, and
/// its parameters' names as written (`$1`, `$name`).
type Bound = (Vec<duckdb::types::Value>, BTreeSet<String>, Vec<String>);

/// The values to bind, in the statement's parameter order, looked up by name (`$name`;
/// `$1` and `?` are `1`, `2`, …), from `params` then `shared`; the keys used; the names.
fn bind_values(
    stmt: &duckdb::Statement<'_>,
    params: &Params,
    shared: Option<&Params>,
) -> Result<Bound, PluginError> {
    let mut values = Vec::new();
    let mut used = BTreeSet::new();
    let mut names = Vec::new();
    for i in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(i).map_err(query_error)?;
        let key = name.trim_start_matches(['$', '?', ':']).to_owned();
        let shown = format!("${key}");
        let value = params
            .get(&key)
            .or_else(|| shared.and_then(|s| s.get(&key)))
            .ok_or_else(|| {
                PluginError::query(format!(
                    "missing value for parameter {shown} (pass it as {key}=VALUE)"
                ))
            })?;
        values.push(duck_value(value));
        used.insert(key);
        names.push(shown);
    }
    if shared.is_none()
        && let Some(k) = params.keys().find(|k| !used.contains(*k))
    {
        return Err(unknown_param(k, &names));
    }
    if let Some(shared) = shared {
        // A statement's own parameters must all be used; shared ones by some statement.
        if let Some(k) = params
            .keys()
            .find(|k| !used.contains(*k) && !shared.contains_key(*k))
        {
            return Err(unknown_param(k, &names));
        }
    }
    Ok((values, used, names))
}

fn duck_value(value: &Value) -> duckdb::types::Value {
    use duckdb::types::Value as D;
    match value {
        Value::Null => D::Null,
        Value::Bool(b) => D::Boolean(*b),
        Value::Int(i) => D::BigInt(*i),
        Value::Float(f) => D::Double(*f),
        Value::String(s) => D::Text(s.clone()),
        Value::Bytes(b) => D::Blob(b.clone()),
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

/// DuckDB's messages span lines (a caret under the query, hints): one line for the host.
fn one_line(e: &duckdb::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn query_error(e: duckdb::Error) -> PluginError {
    let message = one_line(&e);
    if message.starts_with("INTERRUPT Error") {
        return PluginError::cancelled(format!("the statement was cancelled ({message})"));
    }
    let hint = if message.contains("Install it first")
        || message.contains("not installed")
        || message.contains("Failed to download")
    {
        " (plugboard's DuckDB has parquet and json built in and does not download extensions: install the extension's file with a DuckDB that has network, or use one that is built in)"
    } else if message.contains("Variant") {
        " (CAST the VARIANT column to VARCHAR or JSON)"
    } else {
        ""
    };
    PluginError::query(format!("{message}{hint}"))
}

export_connector!(DuckDb);

#[cfg(test)]
mod tests {
    use duckdb::arrow::array::AsArray;
    use duckdb::arrow::datatypes::DataType;
    use plugboard_api::from_table;

    use super::*;

    fn connect(table: serde_json::Value) -> Result<DuckDb, PluginError> {
        DuckDb::connect(from_table(table.as_object().cloned().unwrap_or_default())?)
    }

    fn memory() -> DuckDb {
        connect(serde_json::json!({"database": ":memory:"})).expect("connect")
    }

    fn read(
        db: &DuckDb,
        sql: &str,
        params: &[(&str, Value)],
    ) -> Result<Vec<RecordBatch>, PluginError> {
        let reader = db.read(&ReadRequest {
            query: sql.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..ReadRequest::default()
        })?;
        Ok(reader.collect::<Result<Vec<_>, _>>().expect("batches"))
    }

    fn types(batches: &[RecordBatch]) -> Vec<DataType> {
        batches[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    #[test]
    fn strings_and_blobs_come_as_views_and_bits_as_text() {
        let db = memory();
        let b = read(
            &db,
            "SELECT 'a longer text than twelve bytes' AS s, '\\x00\\xFF'::BLOB AS b, '101'::BIT AS bit",
            &[],
        )
        .expect("read");
        assert_eq!(
            types(&b),
            [DataType::Utf8View, DataType::BinaryView, DataType::Utf8View]
        );
        assert_eq!(b[0].column(2).as_string_view().value(0), "101");
    }

    #[test]
    fn types_that_would_be_wrong_values_are_refused_by_column() {
        let db = memory();
        for (sql, says) in [
            (
                "SELECT 340282366920938463463374607431768211455::UHUGEINT AS c",
                "a UHUGEINT past",
            ),
            (
                "SELECT TIMETZ '12:00:00+01' AS c",
                "TIME WITH TIME ZONE loses its offset",
            ),
            ("SELECT 123::BIGNUM AS c", "BIGNUM has no Arrow type"),
            ("SELECT ['1'::BIT] AS c", "BIT inside a nested column"),
            ("SELECT 1::VARIANT AS c", "CAST the VARIANT column"),
        ] {
            let e = read(&db, sql, &[]).expect_err(sql);
            assert!(e.message().contains(says), "{sql}: {e}");
            if !sql.contains("VARIANT") {
                assert!(e.message().starts_with("column \"c\": "), "{sql}: {e}");
            }
        }
        let b = read(
            &db,
            "SELECT 99999999999999999999999999999999999999::UHUGEINT AS c",
            &[],
        )
        .expect("a UHUGEINT of 38 digits");
        assert_eq!(
            b[0].column(0)
                .as_primitive::<duckdb::arrow::datatypes::Decimal128Type>()
                .value(0),
            10_i128.pow(38) - 1
        );
    }

    #[test]
    fn execute_is_all_or_nothing_and_read_only_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.duckdb");
        let db = connect(serde_json::json!({"database": path})).expect("connect");
        let exec = |sqls: &[&str]| {
            db.execute(&ExecuteRequest {
                statements: sqls
                    .iter()
                    .map(|s| plugboard_api::Statement {
                        sql: (*s).into(),
                        params: Params::new(),
                    })
                    .collect(),
                params: Params::new(),
            })
        };
        exec(&["CREATE TABLE t(x INTEGER NOT NULL)"]).expect("create");
        let e = exec(&["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (NULL)"]).unwrap_err();
        assert!(e.message().starts_with("statement 2:"), "{e}");
        let n = read(&db, "SELECT count(*) AS n FROM t", &[]).expect("count");
        assert_eq!(
            n[0].column(0)
                .as_primitive::<duckdb::arrow::datatypes::Int64Type>()
                .value(0),
            0
        );
        drop(db);
        let ro = connect(serde_json::json!({"database": path, "read_only": true})).expect("ro");
        let e = ro
            .execute(&ExecuteRequest {
                statements: vec![plugboard_api::Statement {
                    sql: "DELETE FROM t".into(),
                    params: Params::new(),
                }],
                params: Params::new(),
            })
            .unwrap_err();
        assert!(e.message().contains("read-only"), "{e}");
    }

    #[test]
    fn the_target_is_the_canonical_file_or_a_private_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.duckdb");
        let link = dir.path().join("link.duckdb");
        drop(connect(serde_json::json!({"database": real})).expect("create"));
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let by_link = connect(
            serde_json::json!({"url": format!("duckdb:///{}?read_only=true", link.display())}),
        )
        .expect("by link");
        let canonical = real.canonicalize().expect("canonical");
        assert_eq!(
            by_link.target().and_then(|t| t.get("path").cloned()),
            Some(serde_json::json!(canonical.display().to_string()))
        );
        assert_ne!(
            memory().target(),
            memory().target(),
            "every :memory: is its own"
        );
    }

    #[test]
    fn one_file_is_one_instance_in_a_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.duckdb");
        let link = dir.path().join("link.duckdb");
        let a = connect(serde_json::json!({"database": path})).expect("a");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let b = connect(serde_json::json!({"database": link})).expect("b, the same file");
        assert!(Arc::ptr_eq(
            &a.pool.manager().instance,
            &b.pool.manager().instance
        ));
        // Both write through one instance: the second sees the first's table.
        a.execute(&ExecuteRequest {
            statements: vec![plugboard_api::Statement {
                sql: "CREATE TABLE t AS SELECT 7 AS x".into(),
                params: Params::new(),
            }],
            params: Params::new(),
        })
        .expect("create");
        let n = read(&b, "SELECT x FROM t", &[]).expect("read through b");
        assert_eq!(n[0].num_rows(), 1);
        let e = connect(serde_json::json!({"database": path, "read_only": true}))
            .err()
            .expect("other settings");
        assert!(e.message().contains("already open in this process"), "{e}");
        drop((a, b));
        connect(serde_json::json!({"database": path, "read_only": true}))
            .expect("once closed, it opens with any settings");
    }

    #[test]
    fn a_stream_equals_the_read_and_stops_at_the_limit() {
        let db = memory();
        let sql = "SELECT i, 'v' || (i % 7) AS s FROM range(10000) t(i) ORDER BY i";
        let whole = read(&db, sql, &[]).expect("read");
        let streamed: Vec<RecordBatch> = db
            .read(&ReadRequest {
                query: sql.into(),
                stream: true,
                ..ReadRequest::default()
            })
            .expect("stream")
            .collect::<Result<_, _>>()
            .expect("batches");
        assert!(streamed.len() > 1);
        let concat = |b: &[RecordBatch]| {
            duckdb::arrow::compute::concat_batches(&b[0].schema(), b).expect("concat")
        };
        assert_eq!(concat(&streamed), concat(&whole));
        let limited: usize = db
            .read(&ReadRequest {
                query: sql.into(),
                stream: true,
                limit: Some(3000),
                ..ReadRequest::default()
            })
            .expect("stream")
            .map(|b| b.expect("batch").num_rows())
            .sum();
        assert_eq!(limited, 3000);
    }
}
