//! The ABI itself: the root module, the connection trait object and the Arrow stream mirror.
//!
//! This is the only module of `plugboard-api` that uses `abi_stable` types or `unsafe`, so
//! the ABI technology can be replaced by changing this file and the host's `loader`.
//! Plugin authors never touch it: [`crate::export_connector!`] generates everything here
//! from a safe [`crate::Connector`].
//!
//! Compatibility rules (see `docs/compatibility.md` for the promise made to plugin authors):
//! * [`PluginMod`] and [`FfiConnection`] keep exactly the layout 1.0 gave them for all of
//!   1.x: no field and no method is ever appended. abi_stable refuses a library whose
//!   prefix type (the root module, or the connection's vtable) has *fewer* fields than the
//!   host's, so anything appended in 1.y would make every plugin built before 1.y
//!   unloadable in a 1.y host (`tests/compat/vtable` proves it for the vtable);
//! * a capability added in a minor is a C symbol whose name carries its version, looked
//!   up by the host after abi_stable's checks: [`LOG_SINK_SYMBOL`] (1.1),
//!   [`CONNECT_V2_SYMBOL`] (1.3), [`API_RELEASE_SYMBOL`] and [`STREAM_ERROR_SYMBOL`] (1.4);
//! * requests, configs and the manifest cross as JSON text, so they grow without an ABI break;
//! * [`API_VERSION`](crate::API_VERSION) is bumped on a semantic break the layout checker
//!   cannot see.
#![allow(unsafe_code)]
// `#[sabi_trait]` expands to impls the lint does not like; the expansion is abi_stable's.
#![allow(non_local_definitions)]

use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_trait,
    sabi_trait::TD_CanDowncast,
    sabi_types::VersionStrings,
    std_types::{RBox, RErr, RNone, ROk, ROption, RResult, RStr, RString},
};
use arrow_array::{RecordBatch, RecordBatchReader, ffi_stream::FFI_ArrowArrayStream};
use arrow_schema::{ArrowError, SchemaRef};

use crate::{Catalog, ConnectRequest, Connector, ExecuteRequest, PluginError, ReadRequest};

/// Re-exports used by [`crate::export_connector!`]'s expansion; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
    pub use abi_stable::std_types::{ROption, RResult, RStr};
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
    ///
    /// A batch that fails with a [`PluginError`] (an `ArrowError::ExternalError` holding
    /// one, as `PluginError::into` and [`crate::stream`] make) fails the stream with its
    /// text, as every host reads it, and keeps the error itself for [`stream_error`]
    /// (1.4), which gives it to a host as data: kind and `retryable` flag included.
    pub fn from_reader<R>(reader: R) -> Result<Self, PluginError>
    where
        R: RecordBatchReader + Send + 'static,
    {
        let error = ErrorSlot::default();
        let reader = GuardedReader::new(reader, Arc::clone(&error))?;
        let inner = FFI_ArrowArrayStream::new(Box::new(reader));
        let private = Box::into_raw(Box::new(Exported { inner, error }));
        lock(&EXPORTED).insert(private as usize);
        Ok(Self {
            get_schema: Some(exported_get_schema),
            get_next: Some(exported_get_next),
            get_last_error: Some(exported_get_last_error),
            release: Some(exported_release),
            private_data: private.cast(),
        })
    }
}

/// The error that failed a stream's last `get_next`, when it was a [`PluginError`].
type ErrorSlot = Arc<Mutex<Option<PluginError>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the `private_data` of a stream made by [`FfiArrowArrayStream::from_reader`] points
/// to: arrow-rs's export of the guarded reader, which every callback forwards to, and the
/// slot where the reader leaves a failed batch's [`PluginError`].
struct Exported {
    inner: FFI_ArrowArrayStream,
    error: ErrorSlot,
}

/// The `private_data` of every stream this library made and has not released: how
/// [`stream_error`] knows that a stream is one of its own before it reads its private data.
static EXPORTED: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

/// EINVAL: what a callback returns for a stream that is not (or no longer) usable.
const EINVAL: c_int = 22;

/// The stream's `Exported`, or `None` for a null or released stream.
///
/// # Safety
/// `stream` is null or points to a stream made by `from_reader`, called as the C stream
/// interface requires (not concurrently).
unsafe fn exported<'a>(stream: *mut FfiArrowArrayStream) -> Option<&'a mut Exported> {
    // SAFETY: the caller's promise; a live stream's `private_data` is its `Exported`
    // (boxed in `from_reader`), and release sets it to null.
    unsafe { stream.as_mut()?.private_data.cast::<Exported>().as_mut() }
}

unsafe extern "C" fn exported_get_schema(
    stream: *mut FfiArrowArrayStream,
    out: *mut c_void,
) -> c_int {
    // SAFETY: the consumer calls this with the stream it was handed (C stream rules).
    let Some(exported) = (unsafe { exported(stream) }) else {
        return EINVAL;
    };
    *lock(&exported.error) = None;
    match exported.inner.get_schema() {
        // SAFETY: arrow-rs's callback on its own live stream; `out` is the consumer's.
        Some(f) => unsafe { f(&mut exported.inner, out.cast()) },
        None => EINVAL,
    }
}

unsafe extern "C" fn exported_get_next(
    stream: *mut FfiArrowArrayStream,
    out: *mut c_void,
) -> c_int {
    // SAFETY: as in `exported_get_schema`.
    let Some(exported) = (unsafe { exported(stream) }) else {
        return EINVAL;
    };
    // Whatever failed an earlier call is not this call's error.
    *lock(&exported.error) = None;
    match exported.inner.get_next() {
        // SAFETY: as in `exported_get_schema`.
        Some(f) => unsafe { f(&mut exported.inner, out.cast()) },
        None => EINVAL,
    }
}

unsafe extern "C" fn exported_get_last_error(stream: *mut FfiArrowArrayStream) -> *const c_char {
    // SAFETY: as in `exported_get_schema`.
    let Some(exported) = (unsafe { exported(stream) }) else {
        return std::ptr::null();
    };
    match exported.inner.get_last_error() {
        // SAFETY: as in `exported_get_schema`; the text lives until the next call.
        Some(f) => unsafe { f(&mut exported.inner) },
        None => std::ptr::null(),
    }
}

unsafe extern "C" fn exported_release(stream: *mut FfiArrowArrayStream) {
    // SAFETY: the consumer releases the stream it was handed, once (C stream rules).
    let Some(stream) = (unsafe { stream.as_mut() }) else {
        return;
    };
    let private = std::mem::replace(&mut stream.private_data, std::ptr::null_mut());
    stream.release = None;
    if private.is_null() {
        return;
    }
    // Unregistered before it is freed, under the lock `stream_error` reads it under.
    lock(&EXPORTED).remove(&(private as usize));
    // SAFETY: boxed by `from_reader`; `private_data` is null from here on, so this runs once.
    let exported = unsafe { Box::from_raw(private.cast::<Exported>()) };
    // Dropping releases arrow-rs's stream, which drops the guarded reader.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(exported)));
}

/// A reader whose every call is guarded against panics, and which checks that each batch
/// matches the schema it declared (a consumer reads buffers by the declared schema).
struct GuardedReader<R> {
    inner: Option<R>,
    schema: SchemaRef,
    batches: usize,
    /// Where a failed batch's `PluginError` goes, for [`stream_error`].
    error: ErrorSlot,
}

impl<R: RecordBatchReader> GuardedReader<R> {
    fn new(reader: R, error: ErrorSlot) -> Result<Self, PluginError> {
        let schema = catch_unwind(AssertUnwindSafe(|| reader.schema()))
            .map_err(|p| panic_error("reading the stream's schema", &*p))?;
        Ok(Self {
            inner: Some(reader),
            schema,
            batches: 0,
            error,
        })
    }

    /// Fails the call with `e`, keeping the `PluginError` it carries (if any) as data.
    fn fail(&self, e: ArrowError) -> Option<Result<RecordBatch, ArrowError>> {
        let mut carried = PluginError::carried_by(&e).cloned();
        // arrow-rs makes the error's text a C string with `expect`, inside an `extern "C"`
        // callback: a NUL in it would abort the host's process. Spelled out instead.
        let text = e.to_string();
        let e = match &mut carried {
            _ if !text.contains('\0') => e,
            Some(p) => {
                p.message = p.message.replace('\0', "\\0").into();
                p.clone().into()
            }
            None => ArrowError::ExternalError(text.replace('\0', "\\0").into()),
        };
        *lock(&self.error) = carried;
        Some(Err(e))
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
                    return self.fail(ArrowError::SchemaError(msg));
                }
                Some(Ok(batch))
            }
            Ok(Some(Err(e))) => self.fail(e),
            Ok(None) => {
                self.poison();
                None
            }
            Err(payload) => {
                self.poison();
                self.fail(panic_error("reading a batch", &*payload).into())
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
/// Its vtable is frozen for all of 1.x: `read`, `execute`, `ping`, `close`, in this order,
/// and no method is ever appended. abi_stable checks the vtable's layout when it loads a
/// library and refuses one whose vtable has fewer methods than the host's ("too many
/// fields"; `tests/compat/vtable` builds such a plugin, and the host refuses it), so a
/// method appended in 1.y would lock every older plugin out of a 1.y host. (A *longer*
/// vtable, from a newer plugin, loads, and the host never sees the extra methods.) A new
/// connection capability comes as a versioned C symbol instead, as `connect_v2` did.
///
/// The defaults below are for implementors of this trait, who may leave `execute`, `ping`
/// and `close` out; they are not a fallback for plugins that lack the methods, since no
/// loadable plugin lacks them. `#[sabi(last_prefix_field)]` on `read` is part of the 1.0
/// layout and stays where it is.
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

/// The symbol of the recorded release (since 1.4): an [`ApiReleaseV1`], exported by
/// [`crate::export_plugin_module!`] (and so by [`crate::export_connector!`]). It returns
/// the version of the plugboard-api crate the library was compiled with
/// ([`crate::API_RELEASE`], `"1.7.0"`), not the plugin's own version: the text is fixed
/// when plugboard-api itself is compiled.
///
/// The root module's `api_version` is the major only, and cannot gain a field (see
/// [`LOG_SINK_SYMBOL`]). A library without the symbol was built before 1.4; the host then
/// bounds its release by the capabilities it exports ([`crate::ApiRelease::infer`]).
pub const API_RELEASE_SYMBOL: &[u8] = b"plugboard_api_release_v1\0";

/// The signature behind [`API_RELEASE_SYMBOL`].
pub type ApiReleaseV1 = extern "C" fn() -> RStr<'static>;

/// The [`ApiReleaseV1`] of every plugin; exported by [`crate::export_plugin_module!`].
#[doc(hidden)]
pub extern "C" fn api_release() -> RStr<'static> {
    RStr::from_str(crate::API_RELEASE)
}

/// The symbol of structured stream errors (since 1.4): a [`StreamErrorV1`], exported by
/// [`crate::export_plugin_module!`].
///
/// An Arrow C stream reports an error as a status and a C string (`get_last_error`), so
/// before 1.4 the host read an error's kind and `retryable` flag back from its text
/// ([`PluginError::parse`]), which a message can fool (a non-retryable error whose text
/// ends in "(retryable)"). The stream struct itself is the C standard's, and its
/// `private_data` is the plugin's alone, so the error travels beside it: after a
/// `get_next` (or `get_schema`) fails, the host passes the stream to this function, which
/// returns the [`PluginError`] that failed it, as data. The text is still there, unchanged,
/// for hosts older than 1.4.
///
/// It answers `RNone` for a stream this library did not make with
/// [`FfiArrowArrayStream::from_reader`] (it keeps the set of its live streams and looks
/// only at those), for one that has been released, and when the failure was not a
/// `PluginError` (a plain Arrow error, a batch that did not match the schema). The host
/// then falls back to the text, as it does for a plugin without the symbol.
pub const STREAM_ERROR_SYMBOL: &[u8] = b"plugboard_stream_error_v1\0";

/// The signature behind [`STREAM_ERROR_SYMBOL`].
///
/// Call it right after a callback of the stream failed, before any other call on the
/// stream, from the thread that owns it; `stream` must be null or point to a stream that
/// is live or released, never freed memory.
pub type StreamErrorV1 =
    unsafe extern "C" fn(stream: *const FfiArrowArrayStream) -> ROption<PluginError>;

/// The symbol of the cancel capability (since 1.7): a [`CancelV1`], exported by
/// [`crate::export_connector!`]. It stops every statement the given connection is running
/// ([`crate::Connector::cancel`]), from any thread, while another thread is inside a call
/// on the same connection or reading one of its streams.
///
/// A symbol, as every capability since 1.1 is: the connection's vtable is frozen (see
/// [`FfiConnection`]). The function finds the connector behind the trait object by its
/// type: since 1.7 connections are built downcastable ([`TD_CanDowncast`], which changes
/// no layout), and a connection of another type gets an `unsupported` error, never a
/// wrong cast. A plugin without the symbol (older than 1.7, or a raw-ABI plugin) cannot
/// cancel; the host then stops waiting and lets the statement finish on its own.
pub const CANCEL_SYMBOL: &[u8] = b"plugboard_cancel_v1\0";

/// The signature behind [`CANCEL_SYMBOL`]: `connection` must be one this library's
/// `connect` returned, not yet dropped.
pub type CancelV1 = extern "C" fn(connection: &FfiConnectionBox) -> RResult<(), PluginError>;

/// The [`CancelV1`] of a connector type; exported by [`crate::export_connector!`].
#[doc(hidden)]
pub extern "C" fn cancel<C: Connector>(connection: &FfiConnectionBox) -> RResult<(), PluginError> {
    guard(|| match connection.obj.downcast_as::<Glue<C>>() {
        Ok(glue) => glue.0.cancel(),
        Err(_) => Err(PluginError::unsupported(
            "this connection was not opened by this plugin's connector; it cannot be cancelled",
        )),
    })
}

/// The [`StreamErrorV1`] of every plugin; exported by [`crate::export_plugin_module!`].
///
/// # Safety
/// As [`StreamErrorV1`] says.
#[doc(hidden)]
pub unsafe extern "C" fn stream_error(stream: *const FfiArrowArrayStream) -> ROption<PluginError> {
    // SAFETY: the caller's promise: null, or a stream struct that is still readable.
    let Some(private) = (unsafe { stream.as_ref() }).map(|s| s.private_data) else {
        return RNone;
    };
    // Held while the private data is read: `exported_release` unregisters under it first.
    let live = lock(&EXPORTED);
    if private.is_null() || !live.contains(&(private as usize)) {
        return RNone;
    }
    // SAFETY: registered, so boxed by `from_reader` in this library and not yet released.
    let exported = unsafe { &*private.cast::<Exported>() };
    let error = lock(&exported.error).clone();
    error.into()
}

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
    /// The interface's major version only. abi_stable's version check (`LibHeader::
    /// check_version`) compares only the majors of 1.x versions (minors only for 0.y), so
    /// the minor here carries nothing; 1.0.0 plugins report their package version,
    /// "1.0.0". A library's real release is [`API_RELEASE_SYMBOL`]'s (1.4); see
    /// [`LOG_SINK_SYMBOL`] for how minors add things.
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
        Ok(FfiConnection_TO::from_value(glue, TD_CanDowncast))
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
            connection: FfiConnection_TO::from_value(glue, TD_CanDowncast),
            target: target.into(),
        })
    })
}

/// Decodes the request and connects.
fn open<C: Connector>(args: RStr<'_>) -> Result<Glue<C>, PluginError> {
    let request: ConnectRequest = parse_json(args, "connect request")?;
    let config = crate::config::from_table::<C::Config>(request.config)?;
    let connection = C::connect_as(&request.name, &request.kind, config)?;
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
            match &request.catalog {
                None => FfiArrowArrayStream::from_reader(self.0.read(&request)?),
                Some(catalog) => {
                    let batch = match catalog {
                        Catalog::Tables => crate::catalog::tables_batch(self.0.tables()?)?,
                        Catalog::Columns { table } => {
                            crate::catalog::columns_batch(self.0.describe(table)?)?
                        }
                    };
                    let schema = batch.schema();
                    FfiArrowArrayStream::from_reader(arrow_array::RecordBatchIterator::new(
                        [Ok(batch)],
                        schema,
                    ))
                }
            }
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
    /// The 1.4 recorded release, if the plugin has it.
    release: Option<ApiReleaseV1>,
    /// Whether the plugin has the 1.1 log sink.
    log_sink: bool,
    /// The 1.7 cancel, if the plugin has it.
    cancel: Option<CancelV1>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("api_version", &self.api_version())
            .field("api_release", &self.api_release())
            .field("reports_targets", &self.connect_v2.is_some())
            .finish_non_exhaustive()
    }
}

/// A connection opened through a [`Module`].
pub struct ModuleConnection {
    conn: FfiConnectionBox,
    target: Option<String>,
    cancel: Option<CancelV1>,
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
            release: Some(api_release),
            log_sink: true,
            cancel: Some(cancel::<C>),
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
        // SAFETY: as above.
        let release = unsafe { library.get::<ApiReleaseV1>(API_RELEASE_SYMBOL) }
            .ok()
            .map(|symbol| *symbol);
        // SAFETY: as above; only whether the symbol exists is read.
        let log_sink = unsafe { library.get::<extern "C" fn(FfiLogSink)>(LOG_SINK_SYMBOL) }.is_ok();
        // SAFETY: as above.
        let cancel = unsafe { library.get::<CancelV1>(CANCEL_SYMBOL) }
            .ok()
            .map(|symbol| *symbol);
        Ok(Self {
            root,
            connect_v2,
            release,
            log_sink,
            cancel,
        })
    }

    pub fn api_version(&self) -> u32 {
        self.root.api_version()
    }

    /// The plugboard-api release the plugin was built against: recorded (1.4 and later),
    /// else inferred from the capabilities it exports.
    pub fn api_release(&self) -> crate::ApiRelease {
        let recorded = self.release.map(|f| f().as_str().to_owned());
        crate::ApiRelease::infer(
            self.api_version(),
            recorded.as_deref(),
            self.log_sink,
            self.connect_v2.is_some(),
        )
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
        let cancel = self.cancel;
        match self.connect_v2 {
            Some(connect) => connect(args).into_result().map(|c| ModuleConnection {
                conn: c.connection,
                target: c.target.into_option().map(RString::into_string),
                cancel,
            }),
            None => (self.root.connect())(args)
                .into_result()
                .map(|conn| ModuleConnection {
                    conn,
                    target: None,
                    cancel,
                }),
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

    /// Stops the statements running on this connection (1.7); `unsupported` for a plugin
    /// without the capability.
    pub fn cancel(&self) -> Result<(), PluginError> {
        match self.cancel {
            Some(cancel) => cancel(&self.conn).into_result(),
            None => Err(PluginError::unsupported(
                "the plugin was built before plugboard-api 1.7 and cannot cancel",
            )),
        }
    }

    pub fn close(&self) {
        self.conn.close();
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use arrow_array::ffi::FFI_ArrowArray;
    use arrow_array::{Int64Array, RecordBatchIterator};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::ErrorKind;

    /// A stream of one batch, then `then` (an error, or a panic when `None`).
    fn failing_stream(then: Option<ArrowError>) -> FfiArrowArrayStream {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .expect("batch");
        let mut then = Some(then);
        let batches =
            std::iter::once(Ok(batch)).chain(std::iter::from_fn(move || match then.take()? {
                Some(e) => Some(Err(e)),
                None => panic!("boom in the stream"),
            }));
        FfiArrowArrayStream::from_reader(RecordBatchIterator::new(batches, schema)).expect("stream")
    }

    /// Calls `get_next` as a host does; the status, and the batch (released on drop).
    fn next(stream: &mut FfiArrowArrayStream) -> c_int {
        let mut out = FFI_ArrowArray::empty();
        let get_next = stream.get_next.expect("get_next");
        // SAFETY: a live stream; `out` is an empty, writable array.
        unsafe { get_next(stream, (&raw mut out).cast()) }
    }

    fn last_error_text(stream: &mut FfiArrowArrayStream) -> String {
        let get_last_error = stream.get_last_error.expect("get_last_error");
        // SAFETY: a live stream; the text is copied before the next call.
        let p = unsafe { get_last_error(stream) };
        assert!(!p.is_null());
        // SAFETY: non-null, NUL-terminated, valid until the next call on the stream.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    fn structured(stream: &FfiArrowArrayStream) -> Option<PluginError> {
        // SAFETY: a live (or released, never freed) stream, not in use elsewhere.
        unsafe { stream_error(stream) }.into_option()
    }

    #[test]
    fn an_error_inside_a_stream_is_kept_as_data_beside_its_unchanged_text() {
        // The text would fool `PluginError::parse`: not retryable, yet it ends so.
        let e = PluginError::connect("the proxy said: try later (retryable)");
        let mut stream = failing_stream(Some(e.clone().into()));
        assert_eq!(next(&mut stream), 0, "the first batch");
        assert_eq!(structured(&stream), None, "no error yet");
        assert_ne!(next(&mut stream), 0, "the second call fails");
        assert_eq!(
            structured(&stream),
            Some(e.clone()),
            "kind and flag as data"
        );
        assert_eq!(
            last_error_text(&mut stream),
            format!("External error: {e}"),
            "the text an older host reads is what it always was"
        );
        assert!(
            PluginError::parse(&e.to_string()).is_some_and(|p| p.retryable),
            "which is why the text is not enough"
        );

        let retryable = PluginError::connect("server closed the connection").retryable();
        let mut stream = failing_stream(Some(retryable.clone().into()));
        assert_eq!(next(&mut stream), 0);
        assert_ne!(next(&mut stream), 0);
        let got = structured(&stream).expect("structured");
        assert_eq!((got.kind, got.retryable), (ErrorKind::CONNECT, true));
        assert_eq!(got, retryable);
    }

    #[test]
    fn an_error_from_a_stream_spawn_producer_is_kept_as_data() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let reader = crate::stream::spawn(1, {
            let schema = Arc::clone(&schema);
            move |sink| {
                let x = Arc::new(Int64Array::from(vec![1]));
                sink.send(RecordBatch::try_new(Arc::clone(&schema), vec![x])?)?;
                Err(PluginError::connect("the server went away").retryable())
            }
        })
        .expect("reader");
        let mut stream = FfiArrowArrayStream::from_reader(reader).expect("stream");
        assert_eq!(next(&mut stream), 0);
        assert_ne!(next(&mut stream), 0);
        assert_eq!(
            structured(&stream),
            Some(PluginError::connect("the server went away").retryable())
        );
    }

    #[test]
    fn a_panic_or_a_plain_arrow_error_inside_a_stream() {
        let mut stream = failing_stream(None);
        assert_eq!(next(&mut stream), 0);
        assert_ne!(next(&mut stream), 0);
        let e = structured(&stream).expect("a panic is a PluginError");
        assert_eq!(e.kind, ErrorKind::PANIC);
        assert!(e.message().contains("boom in the stream"), "{e:?}");

        // Not a PluginError: nothing as data, and the host falls back to the text.
        let mut stream = failing_stream(Some(ArrowError::ComputeError("overflow".into())));
        assert_eq!(next(&mut stream), 0);
        assert_ne!(next(&mut stream), 0);
        assert_eq!(structured(&stream), None);
        assert_eq!(last_error_text(&mut stream), "Compute error: overflow");
    }

    #[test]
    fn a_nul_in_an_error_is_spelled_out_instead_of_aborting_the_process() {
        let e = PluginError::query("bad\0byte").retryable();
        let mut stream = failing_stream(Some(e.into()));
        assert_eq!(next(&mut stream), 0);
        assert_ne!(next(&mut stream), 0);
        let got = structured(&stream).expect("structured");
        assert_eq!(got.message(), "bad\\0byte");
        assert!(got.retryable);
        assert_eq!(
            last_error_text(&mut stream),
            "External error: query error: bad\\0byte (retryable)"
        );

        let mut stream = failing_stream(Some(ArrowError::ComputeError("a\0b".into())));
        assert_eq!(next(&mut stream), 0);
        assert_ne!(next(&mut stream), 0);
        assert_eq!(
            last_error_text(&mut stream),
            "External error: Compute error: a\\0b"
        );
    }

    #[test]
    fn only_this_librarys_live_streams_are_read() {
        // A stream someone else made (here: arrow-rs directly), whose private data is not
        // an `Exported`: never looked into.
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let foreign = FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new(
            std::iter::empty(),
            schema,
        )));
        // SAFETY: both are `#[repr(C)]` images of the C struct; ownership moves.
        let foreign =
            unsafe { std::mem::transmute::<FFI_ArrowArrayStream, FfiArrowArrayStream>(foreign) };
        assert_eq!(structured(&foreign), None);
        drop(foreign);

        // SAFETY: null is allowed.
        assert!(unsafe { stream_error(std::ptr::null()) }.is_none());

        let mut stream = failing_stream(Some(PluginError::query("x").into()));
        assert_eq!(next(&mut stream), 0);
        assert_ne!(next(&mut stream), 0);
        assert!(structured(&stream).is_some());
        let release = stream.release.expect("release");
        let private = stream.private_data as usize;
        // SAFETY: released once; the struct stays readable.
        unsafe { release(&mut stream) };
        assert!(stream.release.is_none() && stream.private_data.is_null());
        assert_eq!(structured(&stream), None, "released");
        assert!(!lock(&EXPORTED).contains(&private), "unregistered");
    }

    #[test]
    fn an_exported_stream_reads_back_through_arrow() {
        let stream = failing_stream(Some(PluginError::auth("denied").into()));
        let mut reader = stream.into_reader().expect("reader");
        assert_eq!(reader.next().expect("batch").expect("ok").num_rows(), 2);
        let e = reader.next().expect("error").expect_err("fails");
        assert!(e.to_string().contains("auth error: denied"), "{e}");
    }
}
