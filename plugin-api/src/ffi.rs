//! The ABI itself: the root module, the connection trait object and the Arrow stream mirror.
//!
//! This is the only module of `plugboard-api` that uses `abi_stable` types or `unsafe`, so
//! the ABI technology can be replaced by changing this file and the host's `loader`.
//! Plugin authors never touch it: [`crate::export_connector!`] generates everything here
//! from a safe [`crate::Connector`].
//!
//! Compatibility rules (see `docs/compatibility.md` for the promise made to plugin authors):
//! * [`PluginMod`] and [`FfiConnection`] keep the layout 1.0 gave them for all of 1.x;
//!   a capability added in a minor is a C symbol whose name carries its version
//!   ([`LOG_SINK_SYMBOL`] in 1.1, [`CONNECT_V2_SYMBOL`] in 1.3), looked up by the host;
//! * requests, configs and the manifest cross as JSON text, so they grow without an ABI break;
//! * [`API_VERSION`](crate::API_VERSION) is bumped on a semantic break the layout checker
//!   cannot see.
#![allow(unsafe_code)]
// `#[sabi_trait]` expands to impls the lint does not like; the expansion is abi_stable's.
#![allow(non_local_definitions)]

use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_trait,
    sabi_trait::TD_Opaque,
    sabi_types::VersionStrings,
    std_types::{RBox, RErr, ROk, ROption, RResult, RStr, RString},
};
use arrow_array::{RecordBatch, RecordBatchReader, ffi_stream::FFI_ArrowArrayStream};
use arrow_schema::{ArrowError, SchemaRef};

use crate::{ConnectRequest, Connector, ExecuteRequest, PluginError, ReadRequest};

/// Re-exports used by [`crate::export_connector!`]'s expansion; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
    pub use abi_stable::std_types::{RResult, RStr};
}

/// A `#[repr(C)]` mirror of the Arrow C Stream Interface's `struct ArrowArrayStream`,
/// layout-identical to it, so it can cross the boundary inside abi_stable types.
///
/// The consumer owns it and must call `release` exactly once; dropping it does so.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiArrowArrayStream {
    pub get_schema:
        Option<unsafe extern "C" fn(stream: *mut FfiArrowArrayStream, out: *mut c_void) -> c_int>,
    pub get_next:
        Option<unsafe extern "C" fn(stream: *mut FfiArrowArrayStream, out: *mut c_void) -> c_int>,
    pub get_last_error:
        Option<unsafe extern "C" fn(stream: *mut FfiArrowArrayStream) -> *const c_char>,
    pub release: Option<unsafe extern "C" fn(stream: *mut FfiArrowArrayStream)>,
    pub private_data: *mut c_void,
}

// SAFETY: the C stream interface lets a stream be moved between threads as long as its
// callbacks are not called concurrently; `&mut self` access enforces that.
unsafe impl Send for FfiArrowArrayStream {}

impl Drop for FfiArrowArrayStream {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: a stream with a non-null `release` has not been released yet; the
            // callback marks it released.
            unsafe { release(self) };
        }
    }
}

impl std::fmt::Debug for FfiArrowArrayStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfiArrowArrayStream")
            .field("released", &self.release.is_none())
            .finish_non_exhaustive()
    }
}

impl FfiArrowArrayStream {
    /// Exports a reader as a C stream. Every call into the reader runs under
    /// `catch_unwind`: a panic becomes a stream error, never an abort of the host.
    pub fn from_reader<R>(reader: R) -> Result<Self, PluginError>
    where
        R: RecordBatchReader + Send + 'static,
    {
        let reader = GuardedReader::new(reader)?;
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        // SAFETY: both types are `#[repr(C)]` images of the same C struct; transmute moves
        // the value without running arrow-rs's `Drop`, so ownership passes intact.
        Ok(unsafe { std::mem::transmute::<FFI_ArrowArrayStream, FfiArrowArrayStream>(stream) })
    }
}

/// A reader whose every call is guarded against panics, and which checks that each batch
/// matches the schema it declared (a consumer reads buffers by the declared schema).
struct GuardedReader<R> {
    inner: Option<R>,
    schema: SchemaRef,
    batches: usize,
}

impl<R: RecordBatchReader> GuardedReader<R> {
    fn new(reader: R) -> Result<Self, PluginError> {
        let schema = catch_unwind(AssertUnwindSafe(|| reader.schema()))
            .map_err(|p| panic_error("reading the stream's schema", &*p))?;
        Ok(Self {
            inner: Some(reader),
            schema,
            batches: 0,
        })
    }

    fn poison(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
        }
    }
}

impl<R: RecordBatchReader> Iterator for GuardedReader<R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        match catch_unwind(AssertUnwindSafe(|| inner.next())) {
            Ok(Some(Ok(batch))) => {
                self.batches += 1;
                let declared = self.schema.fields().iter().map(|f| f.data_type());
                let actual = batch.schema_ref().fields().iter().map(|f| f.data_type());
                if declared.ne(actual) {
                    let msg = format!(
                        "batch {} does not match the stream's schema: declared {:?}, got {:?}",
                        self.batches,
                        self.schema.fields(),
                        batch.schema_ref().fields()
                    );
                    self.poison();
                    return Some(Err(ArrowError::SchemaError(msg)));
                }
                Some(Ok(batch))
            }
            Ok(Some(Err(e))) => Some(Err(e)),
            Ok(None) => {
                self.poison();
                None
            }
            Err(payload) => {
                self.poison();
                let e = panic_error("reading a batch", &*payload);
                Some(Err(ArrowError::ExternalError(Box::new(e))))
            }
        }
    }
}

impl<R: RecordBatchReader> RecordBatchReader for GuardedReader<R> {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl<R> Drop for GuardedReader<R> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
        }
    }
}

/// An open connection, as the host sees it across the boundary.
///
/// `read` is the only required method; the others were added as optional capabilities
/// after the prefix and have defaults, so an object that lacks them still works.
#[sabi_trait]
pub trait FfiConnection: Send + Sync {
    /// `request` is a JSON [`ReadRequest`]. Returns a stream of struct arrays.
    #[sabi(last_prefix_field)]
    fn read(&self, request: RStr<'_>) -> RResult<FfiArrowArrayStream, PluginError>;

    /// `request` is a JSON [`ExecuteRequest`]; all statements run in one transaction.
    fn execute(&self, _request: RStr<'_>) -> RResult<u64, PluginError> {
        RErr(PluginError::unsupported(
            "this connector does not support execute",
        ))
    }

    /// A cheap health check.
    fn ping(&self) -> RResult<(), PluginError> {
        ROk(())
    }

    /// Called once before the host drops the connection.
    fn close(&self) {}
}

/// The boxed connection trait object returned by `connect`.
pub type FfiConnectionBox = FfiConnection_TO<'static, RBox<()>>;

/// The root module every plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[allow(missing_debug_implementations)]
pub struct PluginMod {
    /// [`crate::API_VERSION`] of the `plugboard-api` the plugin was built with.
    pub api_version: u32,
    /// The plugin's [`crate::Manifest`] as JSON.
    pub manifest: extern "C" fn() -> RResult<RString, PluginError>,
    /// Opens a connection; the argument is a JSON [`ConnectRequest`].
    #[sabi(last_prefix_field)]
    pub connect: extern "C" fn(RStr<'_>) -> RResult<FfiConnectionBox, PluginError>,
}

/// The symbol of the log capability (since 1.1): `extern "C" fn(FfiLogSink)`, exported by
/// [`crate::export_plugin_module!`]. The host looks it up after abi_stable's checks; a 1.0
/// plugin has none, and logs nowhere.
///
/// Why a symbol and not a root-module field: abi_stable refuses a library whose prefix type
/// has *fewer* fields than the host's, so a field added in 1.1 would make every 1.0 plugin
/// unloadable. The root module and the connection vtable stay as 1.0 defined them for all of
/// 1.x; capabilities added in a minor are C-ABI symbols whose names carry their own version.
pub const LOG_SINK_SYMBOL: &[u8] = b"plugboard_set_log_sink_v1\0";

/// The symbol of the target capability (since 1.3): a [`ConnectV2`], exported by
/// [`crate::export_connector!`]. It connects exactly as the root module's `connect` does,
/// and also returns what the connection reports it connected to ([`crate::Target`]).
///
/// The host looks it up after abi_stable's checks and, when it is there, connects through
/// it instead of the root module; a plugin older than 1.3 lacks it, and its connections
/// report no target. It is the second version of `connect`, hence the name: the root
/// module's `connect` is frozen with the 1.0 layout (see [`LOG_SINK_SYMBOL`]).
pub const CONNECT_V2_SYMBOL: &[u8] = b"plugboard_connect_v2\0";

/// The signature behind [`CONNECT_V2_SYMBOL`]: the argument is a JSON [`ConnectRequest`].
pub type ConnectV2 = extern "C" fn(RStr<'_>) -> RResult<FfiConnected, PluginError>;

/// What [`ConnectV2`] returns: the connection, and its target.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiConnected {
    pub connection: FfiConnectionBox,
    /// The [`crate::Target`] as canonical JSON (an object with at least one key, no
    /// secret); `RNone` when the connector reports none.
    pub target: ROption<RString>,
}

impl std::fmt::Debug for FfiConnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfiConnected")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The host's log callback: `log(context, level, target, message)`, with `level` 1 (error)
/// to 5 (trace) as in the `log` crate. `context` is the host's, passed back unchanged.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct FfiLogSink {
    pub context: usize,
    pub log: extern "C" fn(usize, u8, RStr<'_>, RStr<'_>),
}

/// Forwards the plugin's `log` records to the host's sink.
struct HostLogger;

static LOG_SINK: std::sync::OnceLock<FfiLogSink> = std::sync::OnceLock::new();

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        // The host's subscriber filters; it cannot tell us its filter cheaply.
        LOG_SINK.get().is_some()
    }

    fn log(&self, record: &log::Record<'_>) {
        if let Some(sink) = LOG_SINK.get() {
            let message = record.args().to_string();
            let _ = catch_unwind(AssertUnwindSafe(|| {
                (sink.log)(
                    sink.context,
                    record.level() as u8,
                    RStr::from_str(record.target()),
                    RStr::from_str(&message),
                );
            }));
        }
    }

    fn flush(&self) {}
}

/// The `set_log_sink` of every SDK plugin: routes the `log` crate to the host. Raw-ABI
/// plugins can use it as theirs.
pub extern "C" fn install_log_sink(sink: FfiLogSink) {
    let _ = catch_unwind(|| {
        if LOG_SINK.set(sink).is_ok() {
            // Fails only if the plugin installed a logger of its own; then it keeps it.
            if log::set_logger(&HostLogger).is_ok() {
                // Not Trace: drivers trace every protocol message (tokio-postgres does, per
                // COPY row), and a record that crosses to the host costs a format and a
                // dispatch even when the host drops it. With Trace this was 13% of a 1M-row
                // PostgreSQL read.
                log::set_max_level(log::LevelFilter::Debug);
            }
        }
    });
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "plugboard_plugin";
    const NAME: &'static str = "plugboard plugin";
    /// The interface's major version only. abi_stable accepts a library only if its minor
    /// is at least the host's, which is the reverse of what plugins need (a new host must
    /// load plugins built against older minors). 1.0.0 plugins report their package
    /// version, "1.0.0", which matches; see [`LOG_SINK_SYMBOL`] for how minors add things.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}

/// What [`PluginModRef`] reports to abi_stable: `<API major>.0.0`.
pub const ABI_VERSION: &str = "1.0.0";

/// Runs `f`, turning a panic into a [`PluginError`] of kind `panic`.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.into(),
        Err(payload) => RErr(panic_error("the call", &*payload)),
    }
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by the plugin's panic hook.
    static PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A plugin has its own copy of std, so the host's panic hook does not apply to it. This
/// hook prints nothing (the host reports the panic as an error, once) and keeps the
/// location for the error message.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_LOCATION.with(|p| *p.borrow_mut() = location);
        }));
    });
}

pub(crate) fn panic_error(during: &str, payload: &(dyn std::any::Any + Send)) -> PluginError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    let location = PANIC_LOCATION
        .with(|p| p.borrow_mut().take())
        .map(|l| format!(" (at {l})"))
        .unwrap_or_default();
    PluginError::new(
        crate::ErrorKind::PANIC,
        format!("plugin panicked during {during}: {what}{location}"),
    )
}

/// Builds the root module for a connector type; called by [`crate::export_connector!`].
#[doc(hidden)]
pub fn root_module<C: Connector>() -> PluginModRef {
    install_panic_hook();
    module_of::<C>()
}

/// The root module without the plugin's quiet panic hook (in-process uses, such as tests,
/// keep the process's own hook and its messages).
fn module_of<C: Connector>() -> PluginModRef {
    PluginMod {
        api_version: crate::API_VERSION,
        manifest: manifest_glue::<C>,
        connect: connect_glue::<C>,
    }
    .leak_into_prefix()
}

extern "C" fn manifest_glue<C: Connector>() -> RResult<RString, PluginError> {
    guard(|| {
        serde_json::to_string(&C::manifest())
            .map(RString::from)
            .map_err(|e| PluginError::internal(format!("cannot serialize the manifest: {e}")))
    })
}

extern "C" fn connect_glue<C: Connector>(args: RStr<'_>) -> RResult<FfiConnectionBox, PluginError> {
    guard(|| {
        let glue = open::<C>(args)?;
        Ok(FfiConnection_TO::from_value(glue, TD_Opaque))
    })
}

/// The [`ConnectV2`] of a connector type; exported by [`crate::export_connector!`] as
/// [`CONNECT_V2_SYMBOL`].
#[doc(hidden)]
pub extern "C" fn connect_v2<C: Connector>(args: RStr<'_>) -> RResult<FfiConnected, PluginError> {
    guard(|| {
        let glue = open::<C>(args)?;
        // A panic in `target` drops `glue`, whose `Drop` is guarded too.
        let target = glue
            .0
            .target()
            .filter(|t| !t.is_empty())
            .map(|t| RString::from(t.to_json()));
        Ok(FfiConnected {
            connection: FfiConnection_TO::from_value(glue, TD_Opaque),
            target: target.into(),
        })
    })
}

/// Decodes the request and connects.
fn open<C: Connector>(args: RStr<'_>) -> Result<Glue<C>, PluginError> {
    let request: ConnectRequest = parse_json(args, "connect request")?;
    let config = crate::config::from_table::<C::Config>(request.config)?;
    let connection = C::connect(config)?;
    Ok(Glue(std::mem::ManuallyDrop::new(connection)))
}

fn parse_json<T: serde::de::DeserializeOwned>(
    text: RStr<'_>,
    what: &str,
) -> Result<T, PluginError> {
    serde_json::from_str(text.as_str())
        .map_err(|e| PluginError::internal(format!("malformed {what} from the host: {e}")))
}

/// Adapts a safe [`Connector`] to the FFI trait object.
struct Glue<C>(std::mem::ManuallyDrop<C>);

impl<C> Drop for Glue<C> {
    fn drop(&mut self) {
        // SAFETY: `self.0` is taken exactly once, here, and never used again.
        let inner = unsafe { std::mem::ManuallyDrop::take(&mut self.0) };
        // A panicking destructor must not unwind into the host's drop of the trait object.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
    }
}

impl<C: Connector> FfiConnection for Glue<C> {
    fn read(&self, request: RStr<'_>) -> RResult<FfiArrowArrayStream, PluginError> {
        guard(|| {
            let request: ReadRequest = parse_json(request, "read request")?;
            FfiArrowArrayStream::from_reader(self.0.read(&request)?)
        })
    }

    fn execute(&self, request: RStr<'_>) -> RResult<u64, PluginError> {
        guard(|| {
            let request: ExecuteRequest = parse_json(request, "execute request")?;
            self.0.execute(&request)
        })
    }

    fn ping(&self) -> RResult<(), PluginError> {
        guard(|| self.0.ping())
    }

    fn close(&self) {
        let _ = guard(|| {
            self.0.close();
            Ok(())
        });
    }
}

impl FfiArrowArrayStream {
    /// The stream as arrow-rs's reader (which releases it when dropped).
    pub fn into_reader(
        self,
    ) -> Result<arrow_array::ffi_stream::RecordBatchStreamReader, ArrowError> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: both types are `#[repr(C)]` images of the same C struct; `this` is not
        // dropped, so ownership (and the one `release`) moves to the reader.
        let stream =
            unsafe { std::mem::transmute_copy::<FfiArrowArrayStream, FFI_ArrowArrayStream>(&this) };
        arrow_array::ffi_stream::RecordBatchStreamReader::try_new(stream)
    }
}

/// A plugin's root module behind a safe API: what the conformance suite, tests and tools
/// call instead of the raw function pointers.
#[derive(Clone, Copy)]
pub struct Module {
    root: PluginModRef,
    /// The 1.3 connect, if the plugin has it.
    connect_v2: Option<ConnectV2>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("api_version", &self.api_version())
            .field("reports_targets", &self.connect_v2.is_some())
            .finish_non_exhaustive()
    }
}

/// A connection opened through a [`Module`].
pub struct ModuleConnection {
    conn: FfiConnectionBox,
    target: Option<String>,
}

impl std::fmt::Debug for ModuleConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModuleConnection")
    }
}

impl Module {
    /// The module of a connector in this process (as its plugin would export it).
    pub fn of<C: Connector>() -> Self {
        Self {
            root: module_of::<C>(),
            connect_v2: Some(connect_v2::<C>),
        }
    }

    /// Loads a plugin library, with abi_stable's checks.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let library = abi_stable::library::RawLibrary::load_at(path).map_err(|e| e.to_string())?;
        // Never unloaded, as `lib_header_from_path` does: abi_stable keeps references to
        // the layouts it checked.
        let library: &'static abi_stable::library::RawLibrary = Box::leak(Box::new(library));
        // SAFETY: the header refers into the library, which is never unloaded.
        let root = unsafe { abi_stable::library::lib_header_from_raw_library(library) }
            .and_then(|h| h.init_root_module::<PluginModRef>())
            .map_err(|e| e.to_string())?;
        // SAFETY: the symbol's type is fixed by its versioned name, as this crate defines
        // it; the library stays loaded.
        let connect_v2 = unsafe { library.get::<ConnectV2>(CONNECT_V2_SYMBOL) }
            .ok()
            .map(|symbol| *symbol);
        Ok(Self { root, connect_v2 })
    }

    pub fn api_version(&self) -> u32 {
        self.root.api_version()
    }

    /// Whether the plugin has the 1.3 connect, which reports targets.
    pub fn reports_targets(&self) -> bool {
        self.connect_v2.is_some()
    }

    /// The manifest, as JSON text.
    pub fn manifest_json(&self) -> Result<String, PluginError> {
        (self.root.manifest())()
            .into_result()
            .map(RString::into_string)
    }

    /// Connects, through the 1.3 connect when the plugin has it.
    pub fn connect(&self, request: &ConnectRequest) -> Result<ModuleConnection, PluginError> {
        let json = serde_json::to_string(request)
            .map_err(|e| PluginError::internal(format!("cannot serialize the request: {e}")))?;
        let args = RStr::from_str(&json);
        match self.connect_v2 {
            Some(connect) => connect(args).into_result().map(|c| ModuleConnection {
                conn: c.connection,
                target: c.target.into_option().map(RString::into_string),
            }),
            None => (self.root.connect())(args)
                .into_result()
                .map(|conn| ModuleConnection { conn, target: None }),
        }
    }
}

impl ModuleConnection {
    pub fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<arrow_array::ffi_stream::RecordBatchStreamReader, PluginError> {
        let json = serde_json::to_string(request)
            .map_err(|e| PluginError::internal(format!("cannot serialize the request: {e}")))?;
        let stream = self.conn.read(RStr::from_str(&json)).into_result()?;
        stream
            .into_reader()
            .map_err(|e| PluginError::internal(format!("unreadable stream: {e}")))
    }

    /// What the connection reported it connected to, as canonical JSON; `None` for a
    /// plugin older than 1.3 or a connector that reports nothing.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    pub fn close(&self) {
        self.conn.close();
    }
}
