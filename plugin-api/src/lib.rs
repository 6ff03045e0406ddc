//! # plugboard-api: write a plugboard connector
//!
//! A connector is a shared library that the `plugboard` host loads at run time. This crate
//! is the only one the host and plugins share: the ABI types, the error carrier, the Arrow
//! stream mirror and the [`export_connector!`] macro. It holds no polars, no async runtime
//! and no I/O. A connector author writes a safe [`Connector`] and one macro line; no
//! `unsafe` and no `abi_stable` type is needed.
//!
//! A complete connector that serves a table of the numbers `0..n`:
//!
//! ```
//! use std::sync::Arc;
//! use plugboard_api::arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchIterator};
//! use plugboard_api::arrow_schema::{DataType, Field, Schema};
//! use plugboard_api::{Connector, Manifest, PluginError, ReadRequest, Value, export_connector};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { start: i64 }
//!
//! struct Series { start: i64 }
//!
//! impl Connector for Series {
//!     type Config = Config;
//!
//!     fn manifest() -> Manifest {
//!         Manifest::new("series", env!("CARGO_PKG_VERSION")).kinds(["series"])
//!     }
//!
//!     fn connect(config: Config) -> Result<Self, PluginError> {
//!         Ok(Series { start: config.start })
//!     }
//!
//!     fn read(&self, request: &ReadRequest)
//!         -> Result<impl plugboard_api::RecordBatchReader + Send + 'static, PluginError> {
//!         let n = match request.params.get("n") {
//!             Some(Value::Int(n)) => *n,
//!             _ => return Err(PluginError::query("parameter :n (an integer) is required")),
//!         };
//!         let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
//!         let column: ArrayRef = Arc::new(Int64Array::from_iter_values(self.start..self.start + n));
//!         let batch = RecordBatch::try_new(schema.clone(), vec![column])?;
//!         Ok(RecordBatchIterator::new([Ok(batch)], schema))
//!     }
//! }
//!
//! export_connector!(Series);
//! # fn main() {}
//! ```
//!
//! Build it as a `cdylib`, list the library in `plugins.toml`, and a connection with
//! `type = "series"` reads through it.
//!
//! ## What the host guarantees a connector
//!
//! * `connect` receives exactly its own connection's table (after precedence, with the
//!   host's reserved keys `type`, `ttl` and `max_entries` removed) and nothing else.
//! * Parameters arrive typed ([`Value`]); bind them with the driver, never splice them.
//! * Every call may come from any thread, concurrently: connectors are `Send + Sync`.
//! * A panic anywhere in a connector (connect, read, inside the stream, in `Drop`) becomes a
//!   [`PluginError`] of kind `panic`; the host drops that connection and reconnects.
// `unsafe` is denied workspace-wide; only `ffi` allows it.

pub mod bind;
pub mod catalog;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod ffi;
#[cfg(feature = "fuzzing")]
pub mod fuzz_input;
pub mod partition;
pub mod pool;
mod release;
pub mod stream;
mod target;
mod types;

pub use arrow_array::{self, RecordBatchReader};
pub use arrow_schema;
/// Log with `plugboard_api::log::info!(…)` (or the `log` crate itself): records reach the
/// host's log, with the plugin's name as their target.
pub use log;

pub use crate::catalog::{Catalog, ColumnInfo, TableInfo};
pub use crate::config::{from_table, parse_duration};
pub use crate::error::{ErrorKind, PluginError};
pub use crate::release::{API_RELEASE, ApiRelease};
pub use crate::target::{Target, canonical_json};
pub use crate::types::{
    ConfigKey, ConnectRequest, ExecuteRequest, KeyType, Manifest, Params, ReadRequest, Statement,
    Value,
};

/// The semantic version of the plugin interface, checked by the host after the layout check.
///
/// Bumped only on a change of meaning the layout checker cannot see.
pub const API_VERSION: u32 = 1;

/// A data connector, written in safe Rust.
///
/// Implement it and call [`export_connector!`] once; the glue that turns it into a loadable
/// plugin (panic guards, JSON decoding, the Arrow C stream) is generated.
pub trait Connector: Sized + Send + Sync + 'static {
    /// The connection's table, deserialized. Use `#[serde(deny_unknown_fields)]` so that a
    /// misspelt key is reported by name.
    type Config: serde::de::DeserializeOwned;

    /// The plugin's name, version, connector kinds, URL schemes and secret keys.
    fn manifest() -> Manifest;

    /// Opens a connection.
    fn connect(config: Self::Config) -> Result<Self, PluginError>;

    /// Since 1.4: opens connection `name` (the section's name, `[connections.<name>]`), for
    /// a connector whose defaults follow the name, as Streamlit's FilesConnection takes
    /// the protocol from a connection named `s3`. Default: [`Connector::connect`].
    fn connect_named(name: &str, config: Self::Config) -> Result<Self, PluginError> {
        let _ = name;
        Self::connect(config)
    }

    /// Since 1.5: opens connection `name` for `kind`, the kind the host chose this plugin
    /// for ([`ConnectRequest::kind`](crate::ConnectRequest::kind); empty from an older
    /// host), for a connector that serves several kinds with one config type. Default:
    /// [`Connector::connect_named`].
    fn connect_as(name: &str, kind: &str, config: Self::Config) -> Result<Self, PluginError> {
        let _ = kind;
        Self::connect_named(name, config)
    }

    /// Since 1.3: what this connection actually connected to, after the connector resolved
    /// its defaults and environment (`PGDATABASE`, a relative path, `~/.pgpass`): host,
    /// port, database, user; a canonical file path; a bucket and endpoint. Never a secret.
    /// Called once, right after [`Connector::connect`]; the host keys cached results on it,
    /// so that the same table pointing at another source is another cache entry.
    ///
    /// Default: `None` (the host keys on the connection's table alone). See [`Target`].
    fn target(&self) -> Option<Target> {
        None
    }

    /// Reads a table. Batches are pulled by the host one at a time.
    ///
    /// An error before the first batch is this call's error. A batch can fail too: yield
    /// `Err(PluginError::….into())` (or return the error from a [`stream::spawn`]
    /// producer), and the host gets that error with its kind and `retryable` flag, as data
    /// since 1.4 (a `retryable` one mid-stream resets the connection like any other).
    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl RecordBatchReader + Send + 'static, PluginError>;

    /// Since 1.6: the schemas, tables and views this connection can see, for `plugboard
    /// tables` and completion in the shell. Cached like a read.
    ///
    /// Default: an `unsupported` error.
    fn tables(&self) -> Result<Vec<TableInfo>, PluginError> {
        Err(PluginError::unsupported(
            "this connector cannot list its tables",
        ))
    }

    /// Since 1.6: the columns of `table` (as the user named it: maybe `schema.table`, see
    /// [`catalog::split_qualified`]) with the Arrow types a read gives them. A table the
    /// connection cannot see is [`catalog::unknown_table`]. Cached like a read.
    ///
    /// Default: an `unsupported` error.
    fn describe(&self, table: &str) -> Result<Vec<ColumnInfo>, PluginError> {
        let _ = table;
        Err(PluginError::unsupported(
            "this connector cannot describe a table",
        ))
    }

    /// Runs statements in one transaction and returns the rows they affected.
    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        let _ = request;
        Err(PluginError::unsupported(
            "this connector does not support execute",
        ))
    }

    /// A cheap health check.
    fn ping(&self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Called once before the host drops the connection.
    fn close(&self) {}

    /// Stops every statement this connection is running, now (since 1.7): the host calls
    /// it from another thread while a `read` (or its stream), `execute`, `tables` or
    /// `describe` is under way, when the user presses Ctrl-C or the application gives
    /// up. Return at once; the stopped calls then fail with [`PluginError::cancelled`].
    ///
    /// It may come when nothing is running, or just after a statement ended: it must then
    /// do nothing, and must never stop a statement that starts later. A connector on
    /// [`pool::Pool`] gives each connection a [`pool::Manage::canceller`] and calls
    /// [`pool::Pool::cancel`] here. The default says the connector cannot; the host then
    /// stops waiting and leaves the statement to finish on its own.
    fn cancel(&self) -> Result<(), PluginError> {
        Err(PluginError::unsupported(
            "this connector cannot cancel a running statement",
        ))
    }
}

/// Exports a [`Connector`] as this library's plugin root module.
///
/// Use it once per `cdylib`.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        $crate::export_plugin_module!(
            $crate::ffi::root_module::<$connector>,
            connect_v2 = $crate::ffi::connect_v2::<$connector>,
            cancel = $crate::ffi::cancel::<$connector>
        );
    };
}

/// Exports a hand-built root module: a `fn() -> plugboard_api::ffi::PluginModRef`.
///
/// For plugins written against the raw ABI instead of [`Connector`]; most authors want
/// [`export_connector!`]. With `connect_v2 = f` (an [`ffi::ConnectV2`]), it also exports
/// the 1.3 connect that reports the connection's [`Target`]; without it, the host connects
/// through the root module and the connection reports none. With `connect_v2 = f, cancel =
/// g` (an [`ffi::CancelV1`]), it also exports the 1.7 cancel.
#[macro_export]
macro_rules! export_plugin_module {
    ($root:expr, connect_v2 = $connect:expr, cancel = $cancel:expr) => {
        $crate::export_plugin_module!($root, connect_v2 = $connect);

        /// The cancel capability (plugin-api 1.7): `plugboard_api::ffi::CANCEL_SYMBOL`.
        #[unsafe(no_mangle)]
        pub extern "C" fn plugboard_cancel_v1(
            connection: &$crate::ffi::FfiConnectionBox,
        ) -> $crate::ffi::__private::RResult<(), $crate::PluginError> {
            let cancel: $crate::ffi::CancelV1 = $cancel;
            cancel(connection)
        }
    };
    ($root:expr, connect_v2 = $connect:expr) => {
        $crate::export_plugin_module!($root);

        /// Since plugin-api 1.3: connects and reports the target (see `CONNECT_V2_SYMBOL`).
        #[unsafe(no_mangle)]
        pub extern "C" fn plugboard_connect_v2(
            request: $crate::ffi::__private::RStr<'_>,
        ) -> $crate::ffi::__private::RResult<$crate::ffi::FfiConnected, $crate::PluginError> {
            let connect: $crate::ffi::ConnectV2 = $connect;
            connect(request)
        }
    };
    ($root:expr) => {
        /// The abi_stable library header: the one symbol the plugboard host looks up.
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::ffi::__private::LibHeader = {
            extern "C" fn __plugboard_root_module() -> $crate::ffi::__private::RootModuleResult {
                $crate::ffi::__private::__call_root_module_loader($root)
            }
            // SAFETY: the constructor returns the root module of type `PluginModRef`.
            unsafe {
                $crate::ffi::__private::LibHeader::from_constructor::<$crate::ffi::PluginModRef>(
                    __plugboard_root_module,
                    $crate::ffi::__private::CheckTypeLayout::Yes,
                )
            }
        };

        /// Since plugin-api 1.1: the host hands over its log sink (see `LOG_SINK_SYMBOL`).
        #[unsafe(no_mangle)]
        pub extern "C" fn plugboard_set_log_sink_v1(sink: $crate::ffi::FfiLogSink) {
            $crate::ffi::install_log_sink(sink)
        }

        /// Since plugin-api 1.4: the plugboard-api release this library was built against
        /// (see `API_RELEASE_SYMBOL`); plugboard-api's version, not the plugin's.
        #[unsafe(no_mangle)]
        pub extern "C" fn plugboard_api_release_v1() -> $crate::ffi::__private::RStr<'static> {
            $crate::ffi::api_release()
        }

        /// Since plugin-api 1.4: the `PluginError` that failed a stream, as data (see
        /// `STREAM_ERROR_SYMBOL`).
        ///
        /// # Safety
        /// As `plugboard_api::ffi::StreamErrorV1` says.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn plugboard_stream_error_v1(
            stream: *const $crate::ffi::FfiArrowArrayStream,
        ) -> $crate::ffi::__private::ROption<$crate::PluginError> {
            // SAFETY: the caller's promise, passed on.
            unsafe { $crate::ffi::stream_error(stream) }
        }
    };
}
