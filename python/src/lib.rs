//! `plugboard._plugboard`: the host, its connections and their results, for Python.
//!
//! The Python package (`python/plugboard/`) wraps these classes: it turns results into
//! pandas, polars or pyarrow tables and keeps Streamlit optional. What crosses here:
//!
//! * parameters and connection settings, from Python values (`convert`);
//! * results, as Arrow C streams in PyCapsules (`arrow`): pyarrow, polars and pandas
//!   import them without copying the column buffers;
//! * errors, as the small exception hierarchy of `errors`, with the host's one-line
//!   messages (secrets already redacted by the host).
//!
//! Every call that reads, writes or connects releases the GIL, so a Streamlit server's
//! threads run their queries at once; the host and its connections are shared between
//! threads as they are in Rust.
#![forbid(unsafe_code)]

mod arrow;
mod convert;
mod errors;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use plugboard::{ConnectOptions, DataFrame, Outcome, Params};

use crate::errors::to_py;

/// A host: the plugins of one `plugins.toml`, the connections of the secrets files, and
/// the result cache they share.
#[pyclass(frozen, module = "plugboard._plugboard")]
struct Host {
    inner: plugboard::Host,
}

#[pymethods]
impl Host {
    /// `plugins`: the `plugins.toml` to load (default as the CLI: `$PLUGBOARD_PLUGINS`,
    /// else `./plugins.toml`). `secrets`: a secrets file, a list of them (an empty list:
    /// none), or None for the CLI's lookup (`$PLUGBOARD_SECRETS`, else the project's and
    /// the user's `.plugboard/secrets.toml` and `.streamlit/secrets.toml`).
    #[new]
    #[pyo3(signature = (plugins=None, secrets=None, *, project_dir=None, cache_dir=None, disk_cache=true, use_env=true, worker=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        plugins: Option<PathBuf>,
        secrets: Option<&Bound<'_, PyAny>>,
        project_dir: Option<PathBuf>,
        cache_dir: Option<PathBuf>,
        disk_cache: bool,
        use_env: bool,
        worker: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut builder = plugboard::Host::builder().use_env(use_env);
        if let Some(w) = worker {
            builder = builder.worker_program(w);
        }
        if let Some(p) = plugins {
            builder = builder.plugins_file(p);
        }
        if let Some(s) = secrets {
            builder = builder.secrets_files(convert::paths(s)?);
        }
        if let Some(d) = project_dir {
            builder = builder.project_dir(d);
        }
        if !disk_cache {
            builder = builder.cache_dir(None);
        } else if let Some(d) = cache_dir {
            builder = builder.cache_dir(Some(d));
        }
        let inner = py.detach(|| builder.build()).map_err(|e| to_py(&e))?;
        Ok(Self { inner })
    }

    /// Opens (or returns the open) connection `name`: its section of the secrets files,
    /// with `type` and `kwargs` over it, as `st.connection(name, type=..., **kwargs)`.
    #[pyo3(signature = (name, r#type=None, **kwargs))]
    fn connection(
        &self,
        py: Python<'_>,
        name: &str,
        r#type: Option<String>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Connection> {
        let mut options = ConnectOptions::new();
        if let Some(kind) = r#type {
            options = options.kind(kind);
        }
        if let Some(kwargs) = kwargs {
            for (key, value) in kwargs.iter() {
                let key: String = key.extract()?;
                if value.is_none() {
                    continue;
                }
                options = options.set(&key, convert::setting(&key, &value)?);
            }
        }
        let inner = py
            .detach(|| self.inner.connection_with(name, options))
            .map_err(|e| to_py(&e))?;
        Ok(Connection { inner })
    }

    /// The configured connection names, sorted.
    fn connection_names(&self) -> Vec<String> {
        self.inner.connection_names()
    }

    /// The plugins that loaded: `(name, version, path)`.
    fn plugins(&self) -> Vec<(String, String, String)> {
        self.inner
            .plugins()
            .into_iter()
            .map(|p| {
                let path = p.path.display().to_string();
                (p.manifest.name, p.manifest.version, path)
            })
            .collect()
    }

    /// Why each plugin that did not load did not, one line each.
    fn load_errors(&self) -> Vec<String> {
        self.inner
            .load_errors()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Drops cached results in every tier: all of them, or those of one connection.
    /// Returns the number of entries dropped (memory, disk and Redis together).
    #[pyo3(signature = (connection=None))]
    fn clear_cache(&self, py: Python<'_>, connection: Option<&str>) -> PyResult<u64> {
        let cleared = py
            .detach(|| self.inner.clear_cache(connection))
            .map_err(|e| to_py(&e))?;
        Ok(cleared.memory + cleared.disk.entries + cleared.redis.entries)
    }

    fn __repr__(&self) -> String {
        let names: Vec<String> = (self.inner.plugins().into_iter())
            .map(|p| p.manifest.name)
            .collect();
        format!("Host(plugins=[{}])", names.join(", "))
    }
}

/// An open connection. Reads go through the host's cache; writes invalidate it.
#[pyclass(frozen, module = "plugboard._plugboard")]
struct Connection {
    inner: plugboard::Connection,
}

/// What a read asks for, taken from Python before the GIL is released.
struct ReadArgs {
    params: Params,
    ttl: Option<std::time::Duration>,
    refresh: bool,
    limit: Option<u64>,
    options: Vec<(String, serde_json::Value)>,
    batch_size: Option<usize>,
}

impl ReadArgs {
    fn new(
        params: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        refresh: bool,
        limit: Option<u64>,
    ) -> PyResult<Self> {
        Ok(Self {
            params: convert::params(params)?,
            ttl: match ttl {
                Some(t) if !t.is_none() => Some(convert::ttl(t)?),
                _ => None,
            },
            refresh,
            limit,
            options: Vec::new(),
            batch_size: None,
        })
    }

    fn apply<'c>(self, mut read: plugboard::Read<'c>) -> plugboard::Read<'c> {
        read = read.params(self.params).refresh(self.refresh);
        if let Some(t) = self.ttl {
            read = read.ttl(t);
        }
        if let Some(n) = self.limit {
            read = read.limit(n);
        }
        if let Some(n) = self.batch_size {
            read = read.batch_size(n);
        }
        for (k, v) in self.options {
            read = read.option(&k, v);
        }
        read
    }
}

#[pymethods]
impl Connection {
    /// The connection's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The plugin that serves it.
    #[getter]
    fn plugin(&self) -> String {
        self.inner.plugin().to_owned()
    }

    /// Runs a query through the cache. `params`: a dict (`:name`) or a sequence (`?`,
    /// `$1`); `ttl`: seconds, a `timedelta` or `"10m"`; `refresh`: skip the cache.
    #[pyo3(signature = (sql, params=None, ttl=None, refresh=false, limit=None))]
    fn query(
        &self,
        py: Python<'_>,
        sql: String,
        params: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        refresh: bool,
        limit: Option<u64>,
    ) -> PyResult<Frame> {
        let args = ReadArgs::new(params, ttl, refresh, limit)?;
        self.fetch(py, move |c| args.apply(c.query(sql)))
    }

    /// Reads a target (a table, a file, a sheet) through the cache, with the plugin's
    /// read options.
    #[pyo3(signature = (target, params=None, ttl=None, refresh=false, limit=None, options=None))]
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        py: Python<'_>,
        target: String,
        params: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        refresh: bool,
        limit: Option<u64>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Frame> {
        let mut args = ReadArgs::new(params, ttl, refresh, limit)?;
        if let Some(options) = options {
            for (k, v) in options.iter() {
                let k: String = k.extract()?;
                let v = convert::json(&k, &v)?;
                args.options.push((k, v));
            }
        }
        self.fetch(py, move |c| args.apply(c.read(target)))
    }

    /// The tables the source holds (the schema-discovery capability).
    fn tables(&self, py: Python<'_>) -> PyResult<Frame> {
        self.fetch(py, plugboard::Connection::tables)
    }

    /// The columns of one table.
    fn describe(&self, py: Python<'_>, table: String) -> PyResult<Frame> {
        self.fetch(py, move |c| c.describe(table))
    }

    /// Runs a query batch by batch, for results too big to hold.
    #[pyo3(signature = (sql, params=None, ttl=None, batch_size=None))]
    fn stream(
        &self,
        py: Python<'_>,
        sql: String,
        params: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        batch_size: Option<usize>,
    ) -> PyResult<Batches> {
        let mut args = ReadArgs::new(params, ttl, false, None)?;
        args.batch_size = batch_size;
        let conn = &self.inner;
        let stream = py
            .detach(move || args.apply(conn.query(sql)).stream())
            .map_err(|e| to_py(&e))?;
        Ok(Batches {
            outcome: stream.outcome(),
            schema: stream.schema().clone(),
            stream: Mutex::new(Some(stream)),
        })
    }

    /// Runs the statements in one transaction, all or nothing; returns the rows affected.
    #[pyo3(signature = (statements, params=None))]
    fn execute(
        &self,
        py: Python<'_>,
        statements: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let statements: Vec<String> = if let Ok(one) = statements.cast::<PyString>() {
            vec![one.to_cow()?.into_owned()]
        } else if convert::is_sequence(statements) {
            statements.extract()?
        } else {
            return Err(errors::argument(
                "execute() takes a statement or a list of statements",
            ));
        };
        let mut statements = statements.into_iter();
        let Some(first) = statements.next() else {
            return Ok(0);
        };
        let params = convert::params(params)?;
        let conn = &self.inner;
        py.detach(move || {
            let mut exec = conn.execute(first);
            for (k, v) in params {
                exec = exec.param(&k, v);
            }
            for s in statements {
                exec = exec.statement(s);
            }
            exec.run()
        })
        .map_err(|e| to_py(&e))
    }

    /// Checks that the source answers.
    fn ping(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.ping()).map_err(|e| to_py(&e))
    }

    /// Stops the call running on this connection in another thread; True if one was.
    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| self.inner.cancel()).map_err(|e| to_py(&e))
    }

    /// Closes the connection and drops its cached results, as Streamlit's `reset()`.
    fn reset(&self, py: Python<'_>) {
        py.detach(|| self.inner.reset());
    }

    fn __repr__(&self) -> String {
        format!(
            "Connection(name={:?}, plugin={:?})",
            self.inner.name(),
            self.inner.plugin()
        )
    }
}

impl Connection {
    fn fetch<F>(&self, py: Python<'_>, build: F) -> PyResult<Frame>
    where
        F: for<'c> FnOnce(&'c plugboard::Connection) -> plugboard::Read<'c> + Send,
    {
        let conn = &self.inner;
        let (df, outcome) = py
            .detach(move || build(conn).fetch_shared())
            .map_err(|e| to_py(&e))?;
        Ok(Frame { df, outcome })
    }
}

fn outcome_name(outcome: Outcome) -> String {
    outcome.to_string()
}

/// A result: a table that Arrow consumers import without copying
/// (`pyarrow.table(frame)`, `polars.DataFrame(frame)`).
#[pyclass(frozen, module = "plugboard._plugboard")]
struct Frame {
    df: Arc<DataFrame>,
    outcome: Outcome,
}

#[pymethods]
impl Frame {
    /// Where the result came from: `miss`, `memory hit`, `disk hit`, `redis hit`,
    /// `stale hit`.
    #[getter]
    fn outcome(&self) -> String {
        outcome_name(self.outcome)
    }

    #[getter]
    fn columns(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect()
    }

    fn __len__(&self) -> usize {
        self.df.height()
    }

    /// The Arrow PyCapsule interface: the result as an `ArrowArrayStream`.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = requested_schema; // the frame's own schema is the only one offered
        arrow::frame_capsule(py, &self.df)
    }

    /// The address of a numeric column's values as Rust holds them (for the zero-copy
    /// tests: an importer that did not copy sees the same address).
    fn _values_address(&self, column: &str) -> PyResult<usize> {
        arrow::values_address(&self.df, column)
    }

    fn __repr__(&self) -> String {
        format!(
            "Frame(rows={}, columns={}, outcome={:?})",
            self.df.height(),
            self.df.width(),
            outcome_name(self.outcome)
        )
    }
}

/// A read running batch by batch: iterate it for one `Frame` per batch, or hand it to an
/// Arrow consumer whole (`pyarrow.RecordBatchReader.from_stream(batches)`).
#[pyclass(frozen, module = "plugboard._plugboard")]
struct Batches {
    outcome: Outcome,
    schema: polars::prelude::Schema,
    stream: Mutex<Option<plugboard::Stream>>,
}

#[pymethods]
impl Batches {
    #[getter]
    fn outcome(&self) -> String {
        outcome_name(self.outcome)
    }

    #[getter]
    fn columns(&self) -> Vec<String> {
        self.schema.iter_names().map(|n| n.to_string()).collect()
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Frame>> {
        let next = py.detach(|| {
            let mut guard = self.stream.lock().unwrap_or_else(|p| p.into_inner());
            let next = guard.as_mut().and_then(Iterator::next);
            if !matches!(next, Some(Ok(_))) {
                *guard = None; // ended, or failed: nothing more comes
            }
            next
        });
        match next {
            None => Ok(None),
            Some(Ok(df)) => Ok(Some(Frame {
                df: Arc::new(df),
                outcome: self.outcome,
            })),
            Some(Err(e)) => Err(to_py(&e)),
        }
    }

    /// The batches not read yet, as an `ArrowArrayStream` capsule.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = requested_schema;
        let stream = self
            .stream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| errors::argument("this stream was already read"))?;
        arrow::stream_capsule(py, &self.schema, stream)
    }
}

/// Runs the plugboard command line on `argv` (its first item the program's name) and
/// returns its exit code: the package's `plugboard` command, which is also the worker
/// program that isolated plugins run in.
#[pyfunction]
fn cli(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    py.detach(|| plugboard::cli::main_with(argv))
}

#[pymodule]
fn _plugboard(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(cli, m)?)?;
    m.add_class::<Host>()?;
    m.add_class::<Connection>()?;
    m.add_class::<Frame>()?;
    m.add_class::<Batches>()?;
    errors::register(m)?;
    Ok(())
}
