//! Checks every connector must pass, run against a connector in this process or a built
//! plugin library (enable the `conformance` feature).
//!
//! ```no_run
//! # #[cfg(feature = "conformance")] {
//! use plugboard_api::conformance::{Case, run};
//! use plugboard_api::ffi::Module;
//! # struct MyConnector;
//! # fn case() -> Case { unimplemented!() }
//! // In-process, in a test of the connector's crate:
//! // let report = run(Module::of::<MyConnector>(), &case());
//! // A built library:
//! let report = run(Module::load("target/debug/libmy_connector.so".as_ref()).unwrap(), &case());
//! assert!(report.passed(), "{report}");
//! # }
//! ```
//!
//! The checks run against a [`Subject`]: a plugin wherever it runs. [`Module`] is the one
//! this crate provides (a library in this process, its tables read through arrow-rs); the
//! host provides another for a plugin isolated in a worker process, so that one suite
//! judges both. A subject hands the suite each table in a small neutral form ([`Table`],
//! [`Batch`]), so this crate needs no table library of the subject's.

use std::fmt;
use std::time::Duration;

use arrow_array::{Array, RecordBatch, RecordBatchReader};

use crate::ffi::{Module, ModuleConnection};
use crate::{API_VERSION, ConnectRequest, ErrorKind, Manifest, PluginError, ReadRequest, Value};

/// What to run the checks with: a connector's own working inputs. Serializable, so a
/// connector can keep its case in a file that both its own tests and tools read.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Case {
    /// A config that connects.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// A read that returns at least two rows.
    pub rows: ReadRequest,
    /// A read that returns no rows.
    pub empty: ReadRequest,
    /// A read whose result holds a text parameter, as bound, as the first value of
    /// `echo_column` (default: the first column). The suite sets the parameter itself,
    /// named `echo_param_name` (default `v`).
    ///
    /// A connector that takes no parameters (a file reader) leaves this empty: the suite
    /// then checks that the `rows` read with a parameter is refused rather than run with the
    /// parameter silently dropped.
    pub echo_param: ReadRequest,
    pub echo_param_name: Option<String>,
    pub echo_column: Option<String>,
    /// A read that fails.
    pub failing: ReadRequest,
    /// A config with one bad key, and that key.
    pub bad_config: (serde_json::Map<String, serde_json::Value>, String),
    /// A read that runs for a long while (PostgreSQL's `select pg_sleep(60)`, a recursive
    /// count to a billion), for a connector that can cancel (plugin-api 1.7): the suite
    /// cancels it and checks that it stops within [`CANCEL_WITHIN`] with an error saying
    /// so, and that the connection then reads on. Empty: not checked. Give it only when
    /// [`crate::Connector::cancel`] works: the suite waits for the read to end.
    pub slow: ReadRequest,
}

/// How soon a cancelled [`Case::slow`] read must stop.
pub const CANCEL_WITHIN: Duration = Duration::from_secs(5);

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Result<(), String>,
}

/// All checks of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub plugin: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome.is_ok())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.checks.iter().filter(|c| c.outcome.is_err()).count();
        writeln!(
            f,
            "conformance of {}: {} of {} checks passed",
            self.plugin,
            self.checks.len() - failed,
            self.checks.len()
        )?;
        for c in &self.checks {
            match &c.outcome {
                Ok(()) => writeln!(f, "  ok    {}", c.name)?,
                Err(why) => writeln!(f, "  FAIL  {}: {why}", c.name)?,
            }
        }
        Ok(())
    }
}

/// What the checks run against: a plugin, wherever it runs. [`Module`] is one (a library
/// in this process); the host has another for a plugin isolated in a worker process.
///
/// A subject reports a plugin that died during a call (its process crashed, exited or was
/// stopped for not answering) as an [`ErrorKind::PANIC`] error saying so: like a panic, it
/// is what a connector must never do, and the checks that refuse panics refuse it too.
pub trait Subject {
    /// A connection opened with [`Subject::connect`]. `Sync`: the suite reads it from a
    /// second thread, to bound how long a read may take.
    type Connection: SubjectConnection + Sync;

    /// The manifest, as JSON text.
    fn manifest_json(&self) -> Result<String, PluginError>;
    /// The plugin-api major the plugin was built for.
    fn api_version(&self) -> u32;
    fn connect(&self, request: &ConnectRequest) -> Result<Self::Connection, PluginError>;
}

/// An open connection of a [`Subject`].
pub trait SubjectConnection {
    /// What the connection reported it connected to, as the plugin wrote it (canonical
    /// JSON, if it is right); `None` when it reports nothing.
    fn target(&self) -> Option<String>;
    /// Opens a read: its declared schema, and its batches as they are pulled. Dropping the
    /// table before its end must release what it holds, as dropping the plugin's stream does.
    fn read(&self, request: &ReadRequest) -> Result<Table<'_>, PluginError>;
    /// Stops what the connection is running (plugin-api 1.7); `unsupported` when the
    /// plugin cannot, which the suite accepts.
    fn cancel(&self) -> Result<(), PluginError> {
        Err(PluginError::unsupported("this subject cannot cancel"))
    }
    fn close(&self);
}

/// A column as the suite sees it: its name, and its type as the subject describes it (an
/// arrow-rs subject says `Int64`, a polars one `i64`). Two batches of one subject have the
/// same schema when their columns are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Column {
    pub name: String,
    pub data_type: String,
}

impl Column {
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            data_type: data_type.into(),
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.data_type)
    }
}

/// What a column's first value is, as far as the checks need it (the echo check reads a
/// text parameter back).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstValue {
    /// The column holds text, and this is its first value.
    Text(String),
    /// The column holds text, but the batch has no rows or its first value is null.
    Missing,
    /// The column holds something else.
    NotText,
}

/// One batch of a read, as the suite sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    /// The batch's own schema.
    pub columns: Vec<Column>,
    pub rows: usize,
    /// Each column's first value, in the order of `columns`.
    pub first_values: Vec<FirstValue>,
}

impl Batch {
    pub fn new(columns: Vec<Column>, rows: usize, first_values: Vec<FirstValue>) -> Self {
        Self {
            columns,
            rows,
            first_values,
        }
    }
}

/// One read, as the suite sees it: the schema it declares, and its batches, pulled one at a
/// time; a batch that fails is the stream's error, as text.
#[non_exhaustive]
pub struct Table<'a> {
    pub columns: Vec<Column>,
    pub batches: Box<dyn Iterator<Item = Result<Batch, String>> + 'a>,
}

impl<'a> Table<'a> {
    pub fn new(
        columns: Vec<Column>,
        batches: impl Iterator<Item = Result<Batch, String>> + 'a,
    ) -> Self {
        Self {
            columns,
            batches: Box::new(batches),
        }
    }
}

impl fmt::Debug for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// `[a: Int64, b: Utf8]`.
fn show(columns: &[Column]) -> String {
    let columns: Vec<String> = columns.iter().map(Column::to_string).collect();
    format!("[{}]", columns.join(", "))
}

/// A library in this process: its tables are read through arrow-rs.
impl Subject for Module {
    type Connection = ModuleConnection;

    fn manifest_json(&self) -> Result<String, PluginError> {
        Module::manifest_json(self)
    }
    fn api_version(&self) -> u32 {
        Module::api_version(self)
    }
    fn connect(&self, request: &ConnectRequest) -> Result<ModuleConnection, PluginError> {
        Module::connect(self, request)
    }
}

impl SubjectConnection for ModuleConnection {
    fn target(&self) -> Option<String> {
        ModuleConnection::target(self).map(str::to_owned)
    }
    fn read(&self, request: &ReadRequest) -> Result<Table<'_>, PluginError> {
        let reader = ModuleConnection::read(self, request)?;
        let columns = arrow_columns(&reader.schema());
        let batches = reader.map(|b| b.map(|b| arrow_batch(&b)).map_err(|e| e.to_string()));
        Ok(Table::new(columns, batches))
    }
    fn cancel(&self) -> Result<(), PluginError> {
        ModuleConnection::cancel(self)
    }
    fn close(&self) {
        ModuleConnection::close(self);
    }
}

/// An arrow-rs schema's columns; one that may not hold nulls says so (`Int64 not
/// null`), so that batches differing only there differ.
fn arrow_columns(schema: &arrow_schema::Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let nullable = if f.is_nullable() { "" } else { " not null" };
            Column::new(f.name().as_str(), format!("{}{nullable}", f.data_type()))
        })
        .collect()
}

fn arrow_batch(batch: &RecordBatch) -> Batch {
    Batch::new(
        arrow_columns(&batch.schema()),
        batch.num_rows(),
        batch
            .columns()
            .iter()
            .map(|c| arrow_first_value(c.as_ref()))
            .collect(),
    )
}

/// A text array's first value (Utf8, LargeUtf8 or Utf8View).
fn arrow_first_value(a: &dyn Array) -> FirstValue {
    use arrow_array::{LargeStringArray, StringArray, StringViewArray};
    let any = a.as_any();
    let value = if let Some(s) = any.downcast_ref::<StringArray>() {
        (!s.is_empty() && s.is_valid(0)).then(|| s.value(0).to_owned())
    } else if let Some(s) = any.downcast_ref::<StringViewArray>() {
        (!s.is_empty() && s.is_valid(0)).then(|| s.value(0).to_owned())
    } else if let Some(s) = any.downcast_ref::<LargeStringArray>() {
        (!s.is_empty() && s.is_valid(0)).then(|| s.value(0).to_owned())
    } else {
        return FirstValue::NotText;
    };
    value.map_or(FirstValue::Missing, FirstValue::Text)
}

/// A text that breaks any query it is spliced into.
pub const HOSTILE: &str = "x' OR '1'='1\"; -- :v $1 ? /*";

fn request(config: &serde_json::Map<String, serde_json::Value>) -> ConnectRequest {
    ConnectRequest {
        name: "conformance".to_owned(),
        config: config.clone(),
        ..ConnectRequest::default()
    }
}

fn err(e: PluginError) -> String {
    format!("{} error: {}", e.kind, e.message())
}

/// Reads everything; returns the declared schema's width, the batches' widths matching it,
/// and the row count.
fn drain<C: SubjectConnection>(conn: &C, req: &ReadRequest) -> Result<(usize, usize), String> {
    let table = conn.read(req).map_err(err)?;
    let mut rows = 0;
    for batch in table.batches {
        let batch = batch.map_err(|e| format!("the stream failed: {e}"))?;
        if batch.columns != table.columns {
            return Err(format!(
                "a batch's schema {} differs from the stream's {}",
                show(&batch.columns),
                show(&table.columns)
            ));
        }
        rows += batch.rows;
    }
    Ok((table.columns.len(), rows))
}

/// The checks that need no inputs from the connector: its manifest, and that an unknown
/// config key is a `config` error naming it. What `plugboard plugins check` runs.
pub fn run_basic(module: Module) -> Report {
    run_basic_subject(&module)
}

/// [`run_basic`] against any [`Subject`].
pub fn run_basic_subject<S: Subject>(subject: &S) -> Report {
    let mut bad = serde_json::Map::new();
    bad.insert(UNKNOWN_KEY.to_owned(), serde_json::Value::Bool(true));
    let case = Case {
        bad_config: (bad, UNKNOWN_KEY.to_owned()),
        ..Case::default()
    };
    let mut report = run_checks(subject, &case, false);
    report.checks.truncate(2);
    report
}

/// A config key no connector has.
pub const UNKNOWN_KEY: &str = "plugboard_conformance_unknown_key";

/// Runs every check; a check that cannot run (no connection) fails with the reason.
pub fn run(module: Module, case: &Case) -> Report {
    run_subject(&module, case)
}

/// [`run`] against any [`Subject`].
pub fn run_subject<S: Subject>(subject: &S, case: &Case) -> Report {
    run_checks(subject, case, true)
}

fn run_checks<S: Subject>(subject: &S, case: &Case, reads: bool) -> Report {
    let mut report = Report::default();
    let mut check = |name: &'static str, outcome: Result<(), String>| {
        report.checks.push(Check { name, outcome });
    };

    let manifest: Result<Manifest, String> = subject
        .manifest_json()
        .map_err(err)
        .and_then(|j| serde_json::from_str(&j).map_err(|e| format!("not JSON: {e}")));
    check(
        "the manifest is valid and declares what the plugin serves",
        manifest.as_ref().map_err(Clone::clone).and_then(|m| {
            if subject.api_version() != API_VERSION {
                return Err(format!(
                    "built for plugin-api {}, this suite speaks {API_VERSION}",
                    subject.api_version()
                ));
            }
            if m.name.is_empty() || m.version.is_empty() {
                return Err("name and version must not be empty".to_owned());
            }
            if m.kinds.is_empty() && m.schemes.is_empty() {
                return Err("it declares no kinds and no schemes: nothing can select it".to_owned());
            }
            if !m.config.is_empty()
                && let Some(k) = case
                    .config
                    .keys()
                    .find(|k| !m.config.iter().any(|d| &d.name == *k))
            {
                return Err(format!(
                    "the working config uses `{k}`, which the schema does not declare"
                ));
            }
            Ok(())
        }),
    );
    let secret_keys: Vec<String> = manifest
        .as_ref()
        .map(|m| {
            m.secret_keys
                .iter()
                .cloned()
                .chain(m.config.iter().filter(|k| k.secret).map(|k| k.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let plugin = manifest.map(|m| m.name).unwrap_or_else(|_| "?".to_owned());

    let (bad, key) = &case.bad_config;
    check(
        "a bad config is a config error naming the key",
        match subject.connect(&request(bad)) {
            Ok(c) => {
                c.close();
                Err(format!("connect accepted the bad `{key}`"))
            }
            Err(e) if e.kind == ErrorKind::CONFIG && e.message().contains(key.as_str()) => Ok(()),
            Err(e) => Err(format!(
                "expected a config error naming `{key}`, got {}",
                err(e)
            )),
        },
    );

    if !reads {
        report.plugin = plugin;
        return report;
    }
    let conn = match subject.connect(&request(&case.config)) {
        Ok(c) => c,
        Err(e) => {
            check("the working config connects", Err(err(e)));
            report.plugin = plugin;
            return report;
        }
    };
    // Like connecting, reported only when it fails: a connector need not report a target.
    if let Err(why) = check_target(conn.target().as_deref(), &case.config, &secret_keys) {
        check(
            "the reported target is a canonical JSON object without secrets",
            Err(why),
        );
    }

    let mut rows = case.rows.clone();
    rows.batch_size = Some(1);
    check(
        "the schema is the same in every batch",
        drain(&conn, &rows).and_then(|(_, n)| {
            if n >= 2 {
                Ok(())
            } else {
                Err(format!(
                    "the `rows` read returned {n} rows; the case needs 2 or more"
                ))
            }
        }),
    );
    check(
        "an empty result still has a schema",
        drain(&conn, &case.empty).and_then(|(width, n)| match (width, n) {
            (0, _) => Err("no columns".to_owned()),
            (_, 0) => Ok(()),
            (_, n) => Err(format!("the `empty` read returned {n} rows")),
        }),
    );

    let param_name = case
        .echo_param_name
        .clone()
        .unwrap_or_else(|| "v".to_owned());
    if case.echo_param.query.is_empty() {
        let mut with_param = case.rows.clone();
        with_param
            .params
            .insert(param_name, Value::String(HOSTILE.to_owned()));
        check(
            "parameters are bound, not spliced into the query",
            match conn.read(&with_param) {
                Ok(_) => Err("a parameter was accepted and ignored; refuse it".to_owned()),
                Err(e) if e.kind == ErrorKind::PANIC => Err(err(e)),
                Err(_) => Ok(()),
            },
        );
    } else {
        let mut echo = case.echo_param.clone();
        echo.params
            .insert(param_name, Value::String(HOSTILE.to_owned()));
        check_echo(&mut check, &conn, &echo, case);
    }

    check(
        "a failing read is an error, not a panic",
        match conn
            .read(&case.failing)
            .map(|mut t| t.batches.find_map(Result::err))
        {
            Ok(None) => Err("the failing read succeeded".to_owned()),
            Ok(Some(_)) => Ok(()),
            Err(e) if e.kind == ErrorKind::PANIC => Err(err(e)),
            Err(_) => Ok(()),
        },
    );

    check(
        "a stream dropped early is released",
        (|| {
            let mut table = conn.read(&rows).map_err(err)?;
            table.batches.next().ok_or("no first batch")??;
            drop(table);
            // A stream still holding its connection would make the next read wait forever
            // on a pool of one: give it ten seconds.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _ = tx.send(drain(&conn, &case.rows));
                });
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(r) => r.map(drop),
                    Err(_) => Err("the next read did not finish within 10 s".to_owned()),
                }
            })
        })(),
    );
    check(
        "a cancel stops nothing that starts after it",
        check_cancel(&conn, &rows, &case.rows),
    );
    if !case.slow.query.is_empty() {
        check(
            "a cancel stops a running read at once",
            check_cancel_slow(&conn, &case.slow, &case.rows),
        );
    }
    conn.close();
    report.plugin = plugin;
    report
}

/// Starts the slow read on a thread and cancels it (again every 250 ms, as a host does,
/// in case the statement had not reached its source yet) until it ends.
fn check_cancel_slow<C: SubjectConnection + Sync>(
    conn: &C,
    slow: &ReadRequest,
    rows: &ReadRequest,
) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            let _ = tx.send(drain(conn, slow));
        });
        std::thread::sleep(Duration::from_millis(300));
        let asked = std::time::Instant::now();
        loop {
            if let Err(e) = conn.cancel() {
                return Err(format!("cancel failed: {}", err(e)));
            }
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(result) => return Ok((result, asked.elapsed())),
                Err(_) if asked.elapsed() > CANCEL_WITHIN => {
                    // The scope still waits for the read: say why the suite is stuck.
                    eprintln!(
                        "conformance: the slow read was not stopped within {CANCEL_WITHIN:?}; waiting for it to end"
                    );
                    return Err(format!(
                        "the cancelled read was still running after {CANCEL_WITHIN:?}"
                    ));
                }
                Err(_) => {}
            }
        }
    });
    let (result, took) = outcome?;
    match result {
        Ok((_, n)) => Err(format!(
            "the cancelled read ended normally with {n} rows; the `slow` read must run longer"
        )),
        Err(e) if e.contains("panic") => Err(format!("the cancelled read: {e}")),
        Err(e) if !e.to_lowercase().contains("cancel") => Err(format!(
            "the cancelled read failed without saying it was cancelled: {e}"
        )),
        Err(_) if took > CANCEL_WITHIN => Err(format!("it took {took:?} to stop")),
        Err(_) => drain(conn, rows)
            .map(drop)
            .map_err(|e| format!("the read after the cancelled one: {e}")),
    }
}

/// A cancel between statements, and one in the middle of a stream: neither may panic,
/// and the connection must then serve the next read in full. A connector that cannot
/// cancel passes.
fn check_cancel<C: SubjectConnection>(
    conn: &C,
    one_by_one: &ReadRequest,
    rows: &ReadRequest,
) -> Result<(), String> {
    let cancel = |when: &str| match conn.cancel() {
        Ok(()) => Ok(true),
        Err(e) if e.kind == ErrorKind::UNSUPPORTED => Ok(false),
        Err(e) => Err(format!("cancel {when} failed: {}", err(e))),
    };
    if !cancel("with nothing running")? {
        return Ok(());
    }
    let expected = drain(conn, rows).map_err(|e| format!("the read after a cancel: {e}"))?;
    let mut table = conn.read(one_by_one).map_err(err)?;
    table.batches.next().ok_or("no first batch")??;
    cancel("during a stream")?;
    for batch in table.batches.by_ref() {
        match batch {
            Ok(_) => {}
            Err(e) if e.contains("panic") => return Err(format!("the cancelled stream: {e}")),
            Err(_) => break,
        }
    }
    drop(table);
    match drain(conn, rows) {
        Ok(again) if again == expected => Ok(()),
        Ok(again) => Err(format!(
            "the read after a cancelled stream returned {again:?} (columns, rows), not {expected:?}"
        )),
        Err(e) => Err(format!("the read after a cancelled stream: {e}")),
    }
}

fn check_echo<C: SubjectConnection>(
    check: &mut impl FnMut(&'static str, Result<(), String>),
    conn: &C,
    echo: &ReadRequest,
    case: &Case,
) {
    check(
        "parameters are bound, not spliced into the query",
        conn.read(echo).map_err(err).and_then(|mut table| {
            let batch = table.batches.next().ok_or("no batch")??;
            let index = match &case.echo_column {
                Some(name) => batch
                    .columns
                    .iter()
                    .position(|f| f.name == *name)
                    .ok_or_else(|| format!("no column {name:?} in {}", show(&batch.columns)))?,
                None => 0,
            };
            let (column, first) = batch
                .columns
                .get(index)
                .zip(batch.first_values.get(index))
                .ok_or("no column")?;
            match first {
                FirstValue::Text(text) if text == HOSTILE => Ok(()),
                FirstValue::Text(text) => Err(format!("expected the parameter back, got {text:?}")),
                FirstValue::Missing => Err("the first value is missing or null".to_owned()),
                FirstValue::NotText => Err(format!(
                    "the column {:?} is {}, not text",
                    column.name, column.data_type
                )),
            }
        }),
    );
}

/// A target, when there is one, is a non-empty JSON object in canonical form (as
/// [`crate::Target::to_json`] writes it) and holds no secret value of the config.
fn check_target(
    target: Option<&str>,
    config: &serde_json::Map<String, serde_json::Value>,
    secret_keys: &[String],
) -> Result<(), String> {
    let Some(text) = target else {
        return Ok(());
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))?;
    match value.as_object() {
        Some(m) if !m.is_empty() => {}
        _ => return Err(format!("{text:?} is not a non-empty JSON object")),
    }
    if crate::target::canonical_json(&value) != text {
        return Err(format!(
            "{text:?} is not canonical (keys sorted, no whitespace: use Target::to_json)"
        ));
    }
    for key in secret_keys {
        if let Some(serde_json::Value::String(secret)) = config.get(key)
            && !secret.is_empty()
            && text.contains(secret.as_str())
        {
            return Err(format!("it holds the value of the secret key `{key}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchIterator, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::{Connector, PluginError};

    /// Gets everything wrong that the suite checks.
    struct Sloppy;

    impl Connector for Sloppy {
        type Config = serde_json::Map<String, serde_json::Value>; // accepts any key
        fn manifest() -> Manifest {
            Manifest::new("sloppy", "0.1")
                .kinds(["sloppy"])
                .secret_keys(["password"])
        }
        fn connect(_: Self::Config) -> Result<Self, PluginError> {
            Ok(Sloppy)
        }
        fn target(&self) -> Option<crate::Target> {
            // Reports the password it was given.
            Some(crate::Target::new().with("dsn", "sloppy:hunter2@db"))
        }
        fn read(
            &self,
            r: &ReadRequest,
        ) -> Result<impl RecordBatchReader + Send + 'static, PluginError> {
            let one = |name: &str, a: ArrayRef| {
                let schema = Arc::new(Schema::new(vec![Field::new(
                    name,
                    a.data_type().clone(),
                    false,
                )]));
                RecordBatch::try_new(schema, vec![a]).expect("batch")
            };
            match r.query.as_str() {
                // Two batches of different types (names do not cross the C interface).
                "rows" => {
                    let a = one("x", Arc::new(Int64Array::from(vec![1])));
                    let b = one("x", Arc::new(StringArray::from(vec!["2"])));
                    let schema = a.schema();
                    Ok(RecordBatchIterator::new(
                        vec![Ok(a), Ok(b)].into_iter(),
                        schema,
                    ))
                }
                // An "empty" result with no columns.
                "empty" => Ok(RecordBatchIterator::new(
                    Vec::new().into_iter(),
                    Arc::new(Schema::empty()),
                )),
                // Splices the parameter into a template instead of binding it.
                "echo" => {
                    let spliced = format!("'{:?}'", r.params.get("v"));
                    let a = one("v", Arc::new(StringArray::from(vec![spliced])));
                    let schema = a.schema();
                    Ok(RecordBatchIterator::new(vec![Ok(a)].into_iter(), schema))
                }
                _ => panic!("sloppy panics on what it does not know"),
            }
        }
    }

    /// The reads the test connectors answer: `rows`, `empty`, `echo`; `nope` fails.
    fn reads() -> Case {
        let read = |q: &str| ReadRequest {
            query: q.to_owned(),
            ..ReadRequest::default()
        };
        Case {
            rows: read("rows"),
            empty: read("empty"),
            echo_param: read("echo"),
            failing: read("nope"),
            ..Case::default()
        }
    }

    #[test]
    fn a_sloppy_connector_fails_each_check_it_breaks() {
        let case = Case {
            bad_config: (serde_json::Map::new(), "url".to_owned()),
            config: [("password".to_owned(), serde_json::json!("hunter2"))]
                .into_iter()
                .collect(),
            ..reads()
        };
        let report = run(Module::of::<Sloppy>(), &case);
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.outcome.is_err())
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            [
                "a bad config is a config error naming the key",
                "the reported target is a canonical JSON object without secrets",
                "the schema is the same in every batch",
                "an empty result still has a schema",
                "parameters are bound, not spliced into the query",
                "a failing read is an error, not a panic",
                // Its follow-up read of `rows` fails too.
                "a stream dropped early is released",
            ],
            "{report}"
        );
        assert!(
            report
                .to_string()
                .contains("FAIL  a failing read is an error, not a panic: panic error"),
            "{report}"
        );
        assert!(
            report
                .to_string()
                .contains("the value of the secret key `password`"),
            "{report}"
        );
    }

    #[test]
    fn targets_are_checked_for_form_and_secrets() {
        let config: serde_json::Map<String, serde_json::Value> =
            [("token".to_owned(), serde_json::json!("s3cr3t"))]
                .into_iter()
                .collect();
        let secrets = ["token".to_owned()];
        let check = |t: &str| check_target(Some(t), &config, &secrets);
        assert!(check(r#"{"host":"h","port":1}"#).is_ok());
        assert!(check_target(None, &config, &secrets).is_ok());
        assert!(check(r#"{"port":1,"host":"h"}"#).is_err(), "not canonical");
        assert!(check(r#"{}"#).is_err(), "empty");
        assert!(check(r#"["h"]"#).is_err(), "not an object");
        assert!(check(r#"{"url":"x://u:s3cr3t@h"}"#).is_err(), "a secret");
    }

    /// A subject that is no library: tables of neutral batches, as a host's subject for a
    /// plugin in another process would hand them over. `died` makes every read fail the
    /// way such a subject reports a plugin that crashed.
    struct Neutral {
        died: bool,
    }

    impl Subject for Neutral {
        type Connection = Neutral;
        fn manifest_json(&self) -> Result<String, PluginError> {
            let m = Manifest::new("neutral", "0.1").kinds(["neutral"]);
            serde_json::to_string(&m).map_err(|e| PluginError::internal(e.to_string()))
        }
        fn api_version(&self) -> u32 {
            API_VERSION
        }
        fn connect(&self, r: &ConnectRequest) -> Result<Neutral, PluginError> {
            match r.config.keys().next() {
                Some(k) => Err(PluginError::config(format!("unknown key `{k}`"))),
                None => Ok(Neutral { died: self.died }),
            }
        }
    }

    impl SubjectConnection for Neutral {
        fn target(&self) -> Option<String> {
            Some(r#"{"db":"neutral"}"#.to_owned())
        }
        fn read(&self, r: &ReadRequest) -> Result<Table<'_>, PluginError> {
            if self.died {
                return Err(PluginError::new(
                    ErrorKind::PANIC,
                    "its worker crashed (SIGSEGV)",
                ));
            }
            let columns = vec![Column::new("v", "str")];
            let batch = |text: &str| {
                Ok(Batch::new(
                    columns.clone(),
                    1,
                    vec![FirstValue::Text(text.to_owned())],
                ))
            };
            let batches: Vec<Result<Batch, String>> = match r.query.as_str() {
                "rows" => vec![batch("a"), batch("b")],
                "empty" => Vec::new(),
                "echo" => match r.params.get("v") {
                    Some(Value::String(v)) => vec![batch(v)],
                    _ => return Err(PluginError::query("no parameter `v`")),
                },
                _ => vec![Err("no such table".to_owned())],
            };
            Ok(Table::new(columns.clone(), batches.into_iter()))
        }
        fn close(&self) {}
    }

    #[test]
    fn any_subject_runs_the_same_checks() {
        let case = Case {
            bad_config: (
                [("bad".to_owned(), serde_json::json!(1))]
                    .into_iter()
                    .collect(),
                "bad".to_owned(),
            ),
            ..reads()
        };
        let report = run_subject(&Neutral { died: false }, &case);
        assert!(report.passed(), "{report}");
        assert_eq!(report.plugin, "neutral");
        assert_eq!(report.checks.len(), 8, "{report}");
        assert_eq!(run_basic_subject(&Neutral { died: false }).checks.len(), 2);

        // A plugin that dies in every read fails every read's check, as a panic would.
        let report = run_subject(&Neutral { died: true }, &case);
        let failed = report.checks.iter().filter(|c| c.outcome.is_err()).count();
        assert_eq!(failed, 5, "{report}");
        assert!(
            report
                .to_string()
                .contains("FAIL  a failing read is an error, not a panic: panic error: its worker crashed (SIGSEGV)"),
            "{report}"
        );
    }

    #[test]
    fn the_echo_check_says_what_came_back_instead() {
        let batch = |first: FirstValue| Batch::new(vec![Column::new("v", "i64")], 1, vec![first]);
        struct One(Batch);
        impl SubjectConnection for One {
            fn target(&self) -> Option<String> {
                None
            }
            fn read(&self, _: &ReadRequest) -> Result<Table<'_>, PluginError> {
                Ok(Table::new(
                    self.0.columns.clone(),
                    std::iter::once(Ok(self.0.clone())),
                ))
            }
            fn close(&self) {}
        }
        let outcome = |b: Batch, column: Option<&str>| {
            let mut got = None;
            let case = Case {
                echo_column: column.map(str::to_owned),
                ..Case::default()
            };
            check_echo(
                &mut |_, o| got = Some(o),
                &One(b),
                &ReadRequest::default(),
                &case,
            );
            got.expect("one check").expect_err("a failure")
        };
        assert_eq!(
            outcome(batch(FirstValue::NotText), None),
            "the column \"v\" is i64, not text"
        );
        assert_eq!(
            outcome(batch(FirstValue::Missing), None),
            "the first value is missing or null"
        );
        assert_eq!(
            outcome(batch(FirstValue::Text("x".to_owned())), None),
            "expected the parameter back, got \"x\""
        );
        assert_eq!(
            outcome(batch(FirstValue::Text(HOSTILE.to_owned())), Some("w")),
            "no column \"w\" in [v: i64]"
        );
    }
}
