//! The conformance suite ([`plugboard_api::conformance`]) against a plugin isolated in a
//! worker process of its own: the checks the tests and `plugins check` run in process, run
//! through the same [`Worker`] and [`Batches`](super::Batches) the host reads isolated
//! plugins with, so a plugin is judged the way each mode serves it. A plugin that crashes,
//! exits or hangs fails the check it was in instead of ending the caller.
//!
//! It runs checks only: no registry, no cache, no secrets file; the case's configs are
//! handed to the worker as they are.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use plugboard_api::conformance::{
    self, Batch, Case, FirstValue, Report, Subject, SubjectConnection, Table,
};
use plugboard_api::{ApiRelease, ConnectRequest, ErrorKind, PluginError, ReadRequest};
use polars::prelude::DataFrame;

use super::PluginConnection;
use super::worker::{self, Limits, RemoteConnection, Worker};
use crate::error::Error;

/// How long the worker may take to answer any one call: a plugin that hangs fails its check
/// (and its worker is stopped) instead of holding the suite forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs every check ([`conformance::run`]) against the library at `path`, loaded in a
/// worker process: `worker_program` (the `plugboard` binary, or one that calls
/// [`crate::cli::main`]), else the one isolated plugins use (see [`crate::WORKER_ENV`]).
///
/// An error only when no worker could load the library; a plugin that dies during a check
/// fails that check, as a panic would.
pub fn conformance_isolated(
    path: &Path,
    case: &Case,
    worker_program: Option<&Path>,
) -> Result<Report, Error> {
    Ok(conformance::run_subject(
        &Isolated::start(path, worker_program)?,
        case,
    ))
}

/// The checks that need no inputs from the plugin ([`conformance::run_basic`]), against the
/// library at `path` in a worker process, as [`conformance_isolated`] runs them.
pub fn conformance_isolated_basic(
    path: &Path,
    worker_program: Option<&Path>,
) -> Result<Report, Error> {
    Ok(conformance::run_basic_subject(&Isolated::start(
        path,
        worker_program,
    )?))
}

/// A plugin in a worker process, as the suite's subject.
struct Isolated {
    worker: Arc<Worker>,
}

impl Isolated {
    fn start(path: &Path, program: Option<&Path>) -> Result<Self, Error> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let worker = Worker::start(&path, None, Limits::default(), program)
            .map_err(|reason| Error::Load { path, reason })?;
        Ok(Self { worker })
    }
}

impl Subject for Isolated {
    type Connection = Remote;

    /// The manifest the worker read from the library (and checked, as the loader does).
    fn manifest_json(&self) -> Result<String, PluginError> {
        serde_json::to_string(self.worker.manifest())
            .map_err(|e| PluginError::internal(format!("cannot write the manifest: {e}")))
    }

    fn api_version(&self) -> u32 {
        match self.worker.api() {
            ApiRelease::Recorded(v) => v
                .split('.')
                .next()
                .and_then(|major| major.parse().ok())
                .unwrap_or(0),
            ApiRelease::Inferred { major, .. } => *major,
        }
    }

    fn connect(&self, request: &ConnectRequest) -> Result<Remote, PluginError> {
        let request = serde_json::to_string(request)
            .map_err(|e| PluginError::internal(format!("cannot write the request: {e}")))?;
        self.worker
            .connect(&request, Some(CALL_TIMEOUT))
            .map(Remote)
            .map_err(died)
    }
}

/// A connection in the worker.
struct Remote(RemoteConnection);

impl SubjectConnection for Remote {
    fn target(&self) -> Option<String> {
        self.0.target()
    }

    fn read(&self, request: &ReadRequest) -> Result<Table<'_>, PluginError> {
        let mut batches = self.0.stream(request).map_err(died)?;
        let columns = batches
            .schema()
            .iter()
            .map(|(name, dtype)| conformance::Column::new(name.as_str(), dtype.to_string()))
            .collect();
        // Dropping the table drops `batches`, which closes its lane: the worker stops
        // producing the table and releases the plugin's stream.
        let frames = std::iter::from_fn(move || match batches.next_frame() {
            Ok(frame) => frame.map(|f| Ok(batch(&f))),
            Err(e) => Some(Err(shown(&died(e)))),
        });
        Ok(Table::new(columns, frames))
    }

    fn cancel(&self) -> Result<(), PluginError> {
        self.0.cancel().map_err(died)
    }

    fn close(&self) {
        self.0.close();
    }
}

/// A worker that died or was stopped is a plugin that did what it must never do: the
/// suite's checks refuse it as they refuse a panic. Other errors are the plugin's own.
fn died(e: PluginError) -> PluginError {
    if e.kind == worker::DIED || e.kind == worker::TIMED_OUT {
        PluginError::new(
            ErrorKind::PANIC,
            format!("the plugin's worker process {}", e.message()),
        )
    } else {
        e
    }
}

fn shown(e: &PluginError) -> String {
    format!("{} error: {}", e.kind, e.message())
}

/// A frame as the suite sees it: its columns with polars' names for their types (`i64`,
/// `str`), its height, and each column's first value when it is text.
fn batch(frame: &DataFrame) -> Batch {
    let columns = frame.columns();
    Batch::new(
        columns
            .iter()
            .map(|c| conformance::Column::new(c.name().as_str(), c.dtype().to_string()))
            .collect(),
        frame.height(),
        columns
            .iter()
            .map(|c| match c.str() {
                Ok(text) => text
                    .get(0)
                    .map_or(FirstValue::Missing, |v| FirstValue::Text(v.to_owned())),
                Err(_) => FirstValue::NotText,
            })
            .collect(),
    )
}
