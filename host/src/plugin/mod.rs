//! Plugins: the registry that loads and selects them ([`registry`]), and the two ways a
//! plugin runs: in this process (the library opened and its ABI checked in
//! `crate::sys::loader`, the only place that touches abi_stable), or isolated in a worker
//! process of its own ([`worker`], which talks to it over [`wire`]; [`serve`] is the
//! worker's side).
//!
//! Either way the rest of the host sees the same [`Plugin`], [`PluginConnection`] and
//! [`Batches`].

pub(crate) mod conformance;
pub(crate) mod recognize;
pub(crate) mod registry;
pub(crate) mod serve;
pub(crate) mod wire;
pub(crate) mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plugboard_api::{ApiRelease, ExecuteRequest, Manifest, PluginError, ReadRequest};
use polars::prelude::{Column, DataFrame, DataType, PlSmallStr, Schema, Series};
use polars_arrow::array::Array;
use polars_arrow::datatypes::Field;

pub use crate::config::plugins::Isolation;
use crate::sys::loader::{self, ForeignBatches, ForeignConnection, LoadedPlugin};

/// What a loaded plugin says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// The plugboard-api release it was built against: recorded by the plugin since 1.4
    /// (`1.7.0`), else inferred from the capabilities it exports (`1.3 (inferred)`).
    pub api: plugboard_api::ApiRelease,
    /// Where it runs: in the host's process, or in a worker process of its own.
    pub isolation: Isolation,
}

/// A plugin the host can open connections with, wherever it runs.
pub(crate) struct Plugin {
    /// The library's path as the user named it (made absolute).
    pub path: PathBuf,
    pub manifest: Manifest,
    pub api: ApiRelease,
    runs: Runs,
}

enum Runs {
    InProcess(Box<LoadedPlugin>),
    Isolated(Arc<worker::Worker>),
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("manifest", &self.manifest.name)
            .field("isolation", &self.isolation())
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn in_process(loaded: LoadedPlugin) -> Self {
        Self {
            path: loaded.path.clone(),
            manifest: loaded.manifest.clone(),
            api: loaded.api.clone(),
            runs: Runs::InProcess(Box::new(loaded)),
        }
    }

    pub(crate) fn isolated(worker: Arc<worker::Worker>) -> Self {
        Self {
            path: worker.path().to_path_buf(),
            manifest: worker.manifest().clone(),
            api: worker.api().clone(),
            runs: Runs::Isolated(worker),
        }
    }

    pub(crate) fn isolation(&self) -> Isolation {
        match self.runs {
            Runs::InProcess(_) => Isolation::None,
            Runs::Isolated(_) => Isolation::Process,
        }
    }

    pub(crate) fn info(&self) -> PluginInfo {
        PluginInfo {
            path: self.path.clone(),
            manifest: self.manifest.clone(),
            api: self.api.clone(),
            isolation: self.isolation(),
        }
    }

    /// Opens a connection. `request` is the JSON `ConnectRequest`; `timeout` is how long
    /// an isolated plugin may take to answer any one call on it (none in process).
    pub(crate) fn connect(
        &self,
        request: &str,
        timeout: Option<Duration>,
    ) -> Result<Box<dyn PluginConnection>, PluginError> {
        match &self.runs {
            Runs::InProcess(p) => Ok(Box::new(InProcess(p.connect(request)?))),
            Runs::Isolated(w) => Ok(Box::new(w.connect(request, timeout)?)),
        }
    }
}

/// An open connection to a source, as the rest of the host sees it.
pub(crate) trait PluginConnection: Send + Sync {
    /// Reads the whole table.
    fn read(&self, request: &ReadRequest) -> Result<DataFrame, PluginError> {
        self.stream(request)?.collect()
    }
    /// Opens the table's stream, to read batch by batch.
    fn stream(&self, request: &ReadRequest) -> Result<Batches, PluginError>;
    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError>;
    fn ping(&self) -> Result<(), PluginError>;
    /// Stops, from another thread, what this connection is running (plugin-api 1.7): the
    /// stopped calls fail with a `cancelled` error. `unsupported` when the plugin cannot.
    fn cancel(&self) -> Result<(), PluginError>;
    fn close(&self);
    /// What the plugin reports it connected to: canonical JSON text (an object, keys
    /// sorted), secret-free; `None` for plugins older than plugin-api 1.3 or that report
    /// nothing. Fixed for the life of this connection (a reconnect may report another).
    fn target(&self) -> Option<String>;
    /// False once the connection cannot serve another call (its worker process ended):
    /// the host then opens a new one instead of failing.
    fn is_live(&self) -> bool {
        true
    }
}

/// A plugin in this process.
struct InProcess(ForeignConnection);

impl PluginConnection for InProcess {
    fn stream(&self, request: &ReadRequest) -> Result<Batches, PluginError> {
        self.0.stream(request).map(Batches::foreign)
    }
    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        self.0.execute(request)
    }
    fn ping(&self) -> Result<(), PluginError> {
        self.0.ping()
    }
    fn cancel(&self) -> Result<(), PluginError> {
        self.0.cancel()
    }
    fn close(&self) {
        self.0.close();
    }
    fn target(&self) -> Option<String> {
        self.0.target()
    }
}

/// A table's batches, from a plugin in this process (its Arrow C stream, imported without
/// copying) or from a worker (Arrow IPC over the worker's channel).
pub(crate) struct Batches {
    fields: Vec<Field>,
    schema: Schema,
    source: Source,
}

enum Source {
    Foreign(ForeignBatches),
    Remote(Box<worker::RemoteBatches>),
}

impl Batches {
    pub(crate) fn foreign(batches: ForeignBatches) -> Self {
        let fields = batches.fields().to_vec();
        Self::new(fields, Source::Foreign(batches))
    }

    pub(crate) fn remote(fields: Vec<Field>, batches: worker::RemoteBatches) -> Self {
        Self::new(fields, Source::Remote(Box::new(batches)))
    }

    fn new(fields: Vec<Field>, source: Source) -> Self {
        let schema = fields
            .iter()
            .map(|f| polars::prelude::Field::new(f.name.clone(), DataType::from_arrow_field(f)))
            .collect();
        Self {
            fields,
            schema,
            source,
        }
    }

    /// The table's schema, as polars types.
    pub(crate) fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The next batch's row count and columns, one array each; `None` at the end.
    pub(crate) fn next_arrays(&mut self) -> Result<Option<loader::Batch>, PluginError> {
        match &mut self.source {
            Source::Foreign(b) => b.next_arrays(),
            Source::Remote(b) => b.next_arrays(),
        }
    }

    /// The next batch as a DataFrame of one chunk per column.
    pub(crate) fn next_frame(&mut self) -> Result<Option<DataFrame>, PluginError> {
        let Some((height, arrays)) = self.next_arrays()? else {
            return Ok(None);
        };
        let columns = self
            .fields
            .iter()
            .zip(arrays)
            .map(|(f, a)| to_column(f, vec![a]))
            .collect::<Result<Vec<_>, _>>()?;
        DataFrame::new(height, columns)
            .map(Some)
            .map_err(loader::malformed)
    }

    /// Reads the rest of the stream into one DataFrame, one chunk per batch.
    pub(crate) fn collect(mut self) -> Result<DataFrame, PluginError> {
        let mut chunks: Vec<Vec<Box<dyn Array>>> = vec![Vec::new(); self.fields.len()];
        let mut height = 0usize;
        while let Some((rows, arrays)) = self.next_arrays()? {
            height += rows;
            for (column, values) in chunks.iter_mut().zip(arrays) {
                column.push(values);
            }
        }
        let columns = self
            .fields
            .iter()
            .zip(chunks)
            .map(|(f, chunks)| to_column(f, chunks))
            .collect::<Result<Vec<_>, _>>()?;
        DataFrame::new(height, columns).map_err(loader::malformed)
    }
}

fn to_column(field: &Field, chunks: Vec<Box<dyn Array>>) -> Result<Column, PluginError> {
    let name: PlSmallStr = field.name.clone();
    if chunks.is_empty() {
        let dtype = DataType::from_arrow_field(field);
        return Ok(Series::new_empty(name, &dtype).into());
    }
    Series::try_from((name, chunks))
        .map(Column::from)
        .map_err(|e| loader::malformed(format!("column {:?}: {e}", field.name)))
}
