//! The seam between the host and plugin libraries: the only module that uses abi_stable.
//!
//! It opens a library, checks its ABI, reads its manifest, and turns its connection trait
//! object into the host's plain [`PluginConnection`] trait. It also imports the Arrow C
//! stream a read returns into a polars `DataFrame` without copying fixed-width columns.
//! No `R*`/`Ffi*` type leaves this module.
//!
//! Libraries are never unloaded: a plugin's code may still be referenced by buffers of a
//! cached DataFrame (their `release` callbacks live in the plugin).
//!
//! A library pinned by sha256 is read once into a sealed in-memory file, hashed there, and
//! loaded from it: the bytes that were verified are the bytes that run, whatever happens to
//! the file at its path in between (see [`load_pinned`]).

use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, RawLibrary, lib_header_from_raw_library};
use abi_stable::std_types::{RResult, RStr};
use plugboard_api::ffi::{
    API_RELEASE_SYMBOL, ApiReleaseV1, CANCEL_SYMBOL, CONNECT_V2_SYMBOL, CancelV1, ConnectV2,
    FfiArrowArrayStream, FfiConnected, FfiConnectionBox, FfiLogSink, LOG_SINK_SYMBOL, PluginModRef,
    STREAM_ERROR_SYMBOL, StreamErrorV1,
};
use plugboard_api::{
    API_VERSION, ApiRelease, ErrorKind, ExecuteRequest, Manifest, PluginError, ReadRequest,
};
use polars::prelude::DataFrame;
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field, PhysicalType};
use polars_arrow::ffi::{ArrowArray, ArrowSchema, import_array_from_c, import_field_from_c};

/// A loaded plugin library.
pub(crate) struct LoadedPlugin {
    /// The library's path as the user named it (made absolute), also when a pinned library
    /// was loaded from its sealed in-memory copy.
    pub path: PathBuf,
    pub manifest: Manifest,
    /// The plugboard-api release it was built against: recorded since 1.4, else inferred
    /// from the capability symbols it exports.
    pub api: ApiRelease,
    module: PluginModRef,
    /// The 1.3 connect, which also reports the connection's target; None before 1.3.
    connect_v2: Option<ConnectV2>,
    /// The 1.4 structured stream errors; None before 1.4 (errors are read from the text).
    stream_error: Option<StreamErrorV1>,
    /// The 1.7 cancel; None before 1.7 (its statements cannot be stopped).
    cancel: Option<CancelV1>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("manifest", &self.manifest)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// Opens a library and checks, in order: that it is an abi_stable library, that its
/// interface layout is compatible, that its `api_version` is this host's, and that its
/// manifest is valid. Returns a one-line reason on failure.
pub(crate) fn load(path: &Path) -> Result<LoadedPlugin, String> {
    load_pinned(path, None)
}

/// As [`load`]; with a `pin` (lowercase hex sha256), the library is first copied into a
/// sealed memfd, the copy is hashed, and the copy is what gets loaded, so a file swapped
/// at `path` after the check cannot be what runs. A digest that differs is refused before
/// any of the library's code runs. Without a pin, the library is loaded by its path.
pub(crate) fn load_pinned(path: &Path, pin: Option<&str>) -> Result<LoadedPlugin, String> {
    // dlopen searches the loader path, not the working directory, for a bare name.
    let path = std::path::absolute(path).map_err(|e| e.to_string())?;
    let library = match pin {
        None => RawLibrary::load_at(&path).map_err(|e| library_error(&e))?,
        Some(pin) => sealed::load(&path, pin)?,
    };
    // Never unloaded, also when a check below fails (as `lib_header_from_path` does):
    // abi_stable keeps references to checked layouts, and a plugin's code may back a
    // cached DataFrame.
    let library: &'static RawLibrary = Box::leak(Box::new(library));
    // SAFETY: the header and everything reached through it point into the library, which
    // is never unloaded (leaked above).
    let header = unsafe { lib_header_from_raw_library(library) }.map_err(|e| library_error(&e))?;
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| library_error(&e))?;
    let api_version = module.api_version();
    if api_version != API_VERSION {
        return Err(format!(
            "built for plugin-api {api_version}, this host speaks {API_VERSION}"
        ));
    }
    let manifest_json = match (module.manifest())() {
        RResult::ROk(s) => s.into_string(),
        RResult::RErr(e) => return Err(format!("its manifest() failed: {e}")),
    };
    let manifest: Manifest = serde_json::from_str(&manifest_json)
        .map_err(|e| format!("its manifest is not valid JSON: {e}"))?;
    if manifest.name.is_empty() {
        return Err("its manifest has an empty name".to_owned());
    }
    let log_sink = connect_log_sink(library, &manifest.name);
    // SAFETY: the symbol's type is fixed by its versioned name (`_v2`), as plugin-api
    // defines it (`ffi::ConnectV2`); the library stays loaded (leaked above).
    let connect_v2 = unsafe { library.get::<ConnectV2>(CONNECT_V2_SYMBOL) }
        .ok()
        .map(|symbol| *symbol);
    // SAFETY: as above (`ffi::StreamErrorV1`, since 1.4).
    let stream_error = unsafe { library.get::<StreamErrorV1>(STREAM_ERROR_SYMBOL) }
        .ok()
        .map(|symbol| *symbol);
    // SAFETY: as above (`ffi::CancelV1`, since 1.7).
    let cancel = unsafe { library.get::<CancelV1>(CANCEL_SYMBOL) }
        .ok()
        .map(|symbol| *symbol);
    let api = ApiRelease::infer(
        api_version,
        recorded_release(library).as_deref(),
        log_sink,
        connect_v2.is_some(),
    );
    Ok(LoadedPlugin {
        path,
        manifest,
        api,
        module,
        connect_v2,
        stream_error,
        cancel,
    })
}

/// Hands the plugin the host's log sink, if it has the capability (plugin-api 1.1+; a 1.0
/// plugin lacks the symbol and logs nowhere). Whether it has it.
fn connect_log_sink(library: &'static RawLibrary, plugin: &str) -> bool {
    // SAFETY: the symbol's type is fixed by its versioned name (`_v1`), as plugin-api
    // defines it; the library is never unloaded.
    let set = unsafe { library.get::<extern "C" fn(FfiLogSink)>(LOG_SINK_SYMBOL) }
        .ok()
        .map(|symbol| *symbol);
    if let Some(set) = set {
        set(FfiLogSink {
            context: register_log_target(plugin),
            log: host_log,
        });
    }
    set.is_some()
}

/// The plugboard-api release the library records (1.4+): a short version text, or `None`
/// when it has no record or records something that is not one.
fn recorded_release(library: &'static RawLibrary) -> Option<String> {
    // SAFETY: the symbol's type is fixed by its versioned name (`ffi::ApiReleaseV1`); the
    // library is never unloaded, so the `'static` text it returns stays valid.
    let release = unsafe { library.get::<ApiReleaseV1>(API_RELEASE_SYMBOL) }
        .ok()
        .map(|symbol| *symbol)?;
    let text = release().as_str();
    let plausible = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    plausible.then(|| text.to_owned())
}

/// Pinned libraries: verified and loaded from one sealed copy of their bytes.
#[cfg(target_os = "linux")]
mod sealed {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};

    use abi_stable::library::RawLibrary;
    use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
    use sha2::{Digest, Sha256};

    /// The prefix of a sealed copy's name, as `/proc/self/maps` shows it
    /// (`/memfd:plugboard-pinned:libplugboard_sqlite.so (deleted)`).
    const MEMFD_PREFIX: &str = "plugboard-pinned:";

    /// Reads the file once into a memfd, seals the memfd against every change, hashes the
    /// sealed bytes and, if they are `pin`, dlopens the memfd through `/proc/self/fd/N`.
    pub(super) fn load(path: &Path, pin: &str) -> Result<RawLibrary, String> {
        let mut file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let memfd = memfd_create(
            format!("{MEMFD_PREFIX}{name}"),
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| format!("cannot make a sealed copy to verify and load: memfd_create: {e}"))?;
        let mut copy = File::from(memfd);
        std::io::copy(&mut file, &mut copy).map_err(|e| format!("cannot read: {e}"))?;
        drop(file);
        // From here on no one, this process included, can change the copy's bytes or size.
        fcntl_add_seals(
            &copy,
            SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
        )
        .map_err(|e| format!("cannot seal the copy to verify and load: {e}"))?;
        let digest = hash(&copy)?;
        if digest != pin {
            return Err(format!(
                "sha256 {digest} does not match the pin {pin} in plugins.toml; refusing to load it"
            ));
        }
        let via = PathBuf::from(format!("/proc/self/fd/{}", copy.as_raw_fd()));
        let library = RawLibrary::load_at(&via).map_err(|e| {
            super::library_error(&e)
                .replace(&via.display().to_string(), &path.display().to_string())
        })?;
        // Never closed: glibc remembers a library by the name it was opened by, so a later
        // dlopen of `/proc/self/fd/N` for a reused N would be handed this library. Kept
        // open, N is never reused; the library is never unloaded anyway.
        std::mem::forget(copy);
        Ok(library)
    }

    /// The sha256 of the sealed copy, read through a mapping of it.
    fn hash(copy: &File) -> Result<String, String> {
        let len = copy
            .metadata()
            .map_err(|e| format!("cannot read: {e}"))?
            .len();
        if len == 0 {
            return Ok(hex::encode(Sha256::digest([])));
        }
        // SAFETY: the memfd is sealed against writes, shrinking and growing (and against
        // removing those seals), so the mapped bytes cannot change or vanish while mapped.
        let map = unsafe { memmap2::Mmap::map(copy) }.map_err(|e| format!("cannot read: {e}"))?;
        Ok(hex::encode(Sha256::digest(&map[..])))
    }
}

/// Elsewhere, no memfd: a private copy in a fresh temporary folder is hashed and loaded,
/// which closes the window against everyone but this user.
#[cfg(not(target_os = "linux"))]
mod sealed {
    use std::path::Path;

    use abi_stable::library::RawLibrary;
    use sha2::{Digest, Sha256};

    pub(super) fn load(path: &Path, pin: &str) -> Result<RawLibrary, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if digest != pin {
            return Err(format!(
                "sha256 {digest} does not match the pin {pin} in plugins.toml; refusing to load it"
            ));
        }
        let dir = tempfile::tempdir()
            .map_err(|e| format!("cannot make a private copy to load: {e}"))?
            .keep();
        let copy = dir.join(path.file_name().unwrap_or_default());
        std::fs::write(&copy, &bytes).map_err(|e| format!("cannot make a private copy: {e}"))?;
        RawLibrary::load_at(&copy).map_err(|e| super::library_error(&e))
    }
}

/// Plugin names by log context: a sink's `context` is an index here.
static LOG_TARGETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn register_log_target(name: &str) -> usize {
    let mut targets = LOG_TARGETS.lock().unwrap_or_else(|p| p.into_inner());
    match targets.iter().position(|t| t == name) {
        Some(i) => i,
        None => {
            targets.push(name.to_owned());
            targets.len() - 1
        }
    }
}

/// A plugin's log record, re-emitted as a tracing event whose target is the plugin's name
/// (its own module path rides along), so the host's subscriber filters and prints it. Its
/// message is redacted with the secrets of every connection the plugin was handed.
extern "C" fn host_log(context: usize, level: u8, module: RStr<'_>, message: RStr<'_>) {
    let _ = std::panic::catch_unwind(|| {
        let target = LOG_TARGETS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(context)
            .cloned()
            .unwrap_or_else(|| "plugin".to_owned());
        let level = match level {
            1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            _ => log::Level::Trace,
        };
        let _ = tracing_log::format_trace(
            &log::Record::builder()
                .level(level)
                .target(&target)
                .module_path(Some(module.as_str()))
                // Redacted with the secrets of the plugin's connections when printed.
                .args(format_args!(
                    "{}",
                    crate::config::secrets::PluginText {
                        plugin: &target,
                        text: message.as_str(),
                    }
                ))
                .build(),
        );
    });
}

/// abi_stable's layout report can run to thousands of lines: keep its first error block.
fn library_error(e: &LibraryError) -> String {
    let text = match e {
        LibraryError::OpenError { err, .. } => format!("cannot open the library: {err}"),
        LibraryError::GetSymbolError { .. } => {
            "not a plugboard plugin (no abi_stable root module; was it built with export_connector!?)"
                .to_owned()
        }
        LibraryError::AbiInstability(report) => {
            let report = report.to_string();
            let first = report
                .split("Error:")
                .nth(1)
                .map(|s| words(s.lines().take(6)))
                .unwrap_or_else(|| words(report.lines().take(3)));
            match mismatched_type(&report) {
                Some(ty) => format!("incompatible plugin ABI: {ty}: {}", first.trim()),
                None => format!("incompatible plugin ABI: {}", first.trim()),
            }
        }
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => format!(
            "built against plugboard-api {actual_version}, incompatible with this host's {expected_version}"
        ),
        LibraryError::RootModule { err, .. } => format!("its root module failed to load: {err}"),
        other => other.to_string(),
    };
    crate::error::one_line(&text)
}

/// Lines of abi_stable's indented report as one line of words.
fn words<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    lines
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The type whose layout differs, from abi_stable's report: the last "Layout of found type"
/// before the first error names it and its module (`plugboard_api::ffi::
/// FfiConnection_trait::VTable` for a connection vtable of another length).
fn mismatched_type(report: &str) -> Option<String> {
    let head = &report[..report.find("Error:")?];
    let found = &head[head.rfind("Layout of found type:")?..];
    let mut lines = found.lines().map(str::trim);
    let ty = lines.clone().find_map(|l| l.strip_prefix("type:"))?;
    let module = lines.find_map(|l| Some(l.split_once(" mod:")?.1));
    Some(match module {
        Some(m) => format!("{m}::{ty}"),
        None => ty.to_owned(),
    })
}

impl LoadedPlugin {
    /// Opens a connection. `request` is the JSON `ConnectRequest`.
    ///
    /// Through the 1.3 connect when the plugin has it, so that the connection carries the
    /// target the plugin reports; else through the root module, with no target.
    pub(crate) fn connect(&self, request: &str) -> Result<ForeignConnection, PluginError> {
        let args = RStr::from_str(request);
        let Some(connect_v2) = self.connect_v2 else {
            return match (self.module.connect())(args) {
                RResult::ROk(conn) => Ok(ForeignConnection {
                    conn,
                    target: None,
                    stream_error: self.stream_error,
                    cancel: self.cancel,
                }),
                RResult::RErr(e) => Err(e),
            };
        };
        let FfiConnected { connection, target } = connect_v2(args).into_result()?;
        let target = match target.into_option().map(|t| canonical_target(&t)) {
            None => None,
            Some(Ok(t)) => t,
            Some(Err(why)) => {
                connection.close();
                return Err(PluginError::internal(format!(
                    "plugin {} reported a malformed target: {why}",
                    self.manifest.name
                )));
            }
        };
        if let Some(t) = &target {
            tracing::debug!(plugin = %self.manifest.name, connected_to = %t, "the plugin reports what it connected to");
        }
        Ok(ForeignConnection {
            conn: connection,
            target,
            stream_error: self.stream_error,
            cancel: self.cancel,
        })
    }
}

/// A reported target in canonical form: a JSON object, keys sorted at every level.
/// `{}` says nothing, as no target does. Anything but an object is refused: the host
/// cannot key on what it cannot read.
fn canonical_target(text: &str) -> Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    match &value {
        serde_json::Value::Object(m) if m.is_empty() => Ok(None),
        // serde_json's map is sorted (no `preserve_order` in this build; a test checks),
        // so reserializing is the canonical form.
        serde_json::Value::Object(_) => Ok(Some(value.to_string())),
        other => Err(format!("expected a JSON object, got {other}")),
    }
}

/// A plugin's connection, called through its vtable.
pub(crate) struct ForeignConnection {
    conn: FfiConnectionBox,
    target: Option<String>,
    /// The plugin's structured stream errors (1.4), for the streams `read` returns.
    stream_error: Option<StreamErrorV1>,
    cancel: Option<CancelV1>,
}

impl ForeignConnection {
    /// Stops what this connection is running, from any thread (1.7). `unsupported`
    /// when the plugin has no cancel (older than 1.7) or its connector cannot.
    pub(crate) fn cancel(&self) -> Result<(), PluginError> {
        match self.cancel {
            Some(cancel) => cancel(&self.conn).into_result(),
            None => Err(PluginError::unsupported(
                "it was built before plugboard-api 1.7, which added cancelling",
            )),
        }
    }

    pub(crate) fn stream(&self, request: &ReadRequest) -> Result<ForeignBatches, PluginError> {
        let json = serde_json::to_string(request)
            .map_err(|e| PluginError::internal(format!("cannot serialize the request: {e}")))?;
        let stream = self.conn.read(RStr::from_str(&json)).into_result()?;
        Ok(ForeignBatches::open(stream)?.with_stream_errors(self.stream_error))
    }

    pub(crate) fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        let json = serde_json::to_string(request)
            .map_err(|e| PluginError::internal(format!("cannot serialize the request: {e}")))?;
        self.conn.execute(RStr::from_str(&json)).into_result()
    }

    pub(crate) fn ping(&self) -> Result<(), PluginError> {
        self.conn.ping().into_result()
    }

    pub(crate) fn close(&self) {
        self.conn.close();
    }

    /// What the plugin reports it connected to: canonical JSON text (an object, keys
    /// sorted), secret-free; `None` for plugins older than plugin-api 1.3 or that report
    /// nothing.
    pub(crate) fn target(&self) -> Option<String> {
        self.target.clone()
    }
}

/// Mirrors of the C Data Interface structs, to inspect what polars keeps private.
#[repr(C)]
struct RawArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut RawArray,
    dictionary: *mut RawArray,
    release: Option<unsafe extern "C" fn(*mut RawArray)>,
    private_data: *mut c_void,
}

pub(crate) fn malformed(message: impl std::fmt::Display) -> PluginError {
    PluginError::internal(format!("malformed Arrow stream: {message}"))
}

/// The error that failed the stream's last call.
///
/// As data when the plugin has structured stream errors (1.4) and the error was a
/// `PluginError`: kind, `retryable` flag and message exactly as the plugin made them.
/// Otherwise from the stream's text, read defensively (a null or non-UTF-8 message is not a
/// crash): a plugin built with plugboard-api writes `<kind> error: …`, which
/// `PluginError::parse` reads back.
fn last_error(
    stream: &mut FfiArrowArrayStream,
    status: i32,
    stream_error: Option<StreamErrorV1>,
) -> PluginError {
    if let Some(structured) = stream_error {
        // SAFETY: `stream` is live (not released) and came from this plugin's `read`; the
        // call follows the failed one before any other call on the stream, on the thread
        // that holds it (`&mut`), as `ffi::StreamErrorV1` requires.
        if let Some(e) = unsafe { structured(stream) }.into_option() {
            return e;
        }
    }
    let message = match stream.get_last_error {
        // SAFETY: the callback belongs to this live stream; the returned string is valid
        // until the next call on the stream, and is copied before that.
        Some(f) => unsafe {
            let p: *const c_char = f(stream);
            if p.is_null() {
                None
            } else {
                Some(CStr::from_ptr(p).to_string_lossy().into_owned())
            }
        },
        None => None,
    };
    let message =
        message.unwrap_or_else(|| format!("the stream failed with status {status} and no message"));
    // A connector built with plugboard-api reports its errors as `<kind> error: …`,
    // behind arrow-rs' prefix for an error it did not make itself.
    let text = message.strip_prefix("External error: ").unwrap_or(&message);
    if let Some(e) = PluginError::parse(text) {
        return e;
    }
    if message.contains("plugin panicked") {
        PluginError::new(ErrorKind::PANIC, message)
    } else {
        PluginError::query(message)
    }
}

/// Checks an array's shape against its declared type before polars reads its buffers:
/// buffer and child counts, non-null pointers, sane lengths. A producer that lies about
/// buffer *sizes* cannot be caught through the C interface; counts and types can.
///
/// It also replaces every `null_count` with the count of the validity bits themselves:
/// polars takes the producer's number as the bitmap's count (and reads `-1`, "unknown" in
/// the C interface, as `usize::MAX`), so a wrong one would make every null-aware kernel
/// answer wrongly. Counting costs a popcount of one bit per value.
///
/// # Safety
/// `array` must point to a live, unreleased `ArrowArray` that this host may write to (it
/// owns it until the import).
unsafe fn validate(
    array: *mut RawArray,
    dtype: &ArrowDataType,
    path: &str,
) -> Result<(), PluginError> {
    // SAFETY: caller's promise.
    let a = unsafe { &mut *array };
    if a.length < 0 || a.offset < 0 || a.null_count < -1 {
        return Err(malformed(format!(
            "{path}: negative length, offset or null count"
        )));
    }
    if a.offset.checked_add(a.length).is_none() {
        return Err(malformed(format!("{path}: offset + length overflows")));
    }
    let dtype = dtype.to_storage();
    let expect_buffers: Option<i64> = match dtype.to_physical_type() {
        PhysicalType::Null => Some(0),
        PhysicalType::Boolean | PhysicalType::Primitive(_) | PhysicalType::FixedSizeBinary => {
            Some(2)
        }
        PhysicalType::Binary
        | PhysicalType::LargeBinary
        | PhysicalType::Utf8
        | PhysicalType::LargeUtf8 => Some(3),
        PhysicalType::List | PhysicalType::LargeList | PhysicalType::Map => Some(2),
        PhysicalType::FixedSizeList | PhysicalType::Struct => Some(1),
        PhysicalType::Dictionary(_) => Some(2),
        // validity, views, data buffers..., variadic sizes.
        PhysicalType::BinaryView | PhysicalType::Utf8View => None,
        PhysicalType::Union => return Ok(()),
    };
    match expect_buffers {
        Some(n) if a.n_buffers != n => {
            return Err(malformed(format!(
                "{path}: declared {dtype:?}, which has {n} buffers, but the array has {}",
                a.n_buffers
            )));
        }
        None if a.n_buffers < 2 => {
            return Err(malformed(format!(
                "{path}: declared {dtype:?} but the array has {} buffers",
                a.n_buffers
            )));
        }
        _ => {}
    }
    if a.n_buffers > 0 && a.buffers.is_null() {
        return Err(malformed(format!("{path}: null buffer list")));
    }
    // Every layout but Null and Union has its validity bitmap as buffer 0.
    if !matches!(
        dtype.to_physical_type(),
        PhysicalType::Null | PhysicalType::Union
    ) && a.n_buffers > 0
    {
        // SAFETY: `buffers` holds `n_buffers` (> 0) pointers (checked above).
        let validity = unsafe { *a.buffers }.cast::<u8>();
        a.null_count = if validity.is_null() || a.length == 0 {
            0
        } else {
            let (offset, length) = (a.offset as usize, a.length as usize);
            // SAFETY: a validity buffer holds a bit for each of `offset + length` slots, as
            // the C interface requires (and as polars reads it after the import).
            let bits =
                unsafe { std::slice::from_raw_parts(validity, (offset + length).div_ceil(8)) };
            unset_bits(bits, offset, length) as i64
        };
    }
    let large_offsets = match dtype.to_physical_type() {
        PhysicalType::Binary | PhysicalType::Utf8 | PhysicalType::List | PhysicalType::Map => {
            Some(false)
        }
        PhysicalType::LargeBinary | PhysicalType::LargeUtf8 | PhysicalType::LargeList => Some(true),
        _ => None,
    };
    if let Some(large) = large_offsets {
        // SAFETY: these layouts have 3 (or 2) buffers, checked above; buffer 1 holds the
        // offsets.
        let offsets = unsafe { *a.buffers.add(1) };
        // SAFETY: a non-null offsets buffer holds `offset + length + 1` offsets, as the C
        // interface requires (and as polars reads it after the import).
        unsafe { check_offsets(offsets, large, a.offset as usize, a.length as usize, path)? };
        // polars reads the last offset of text and binary columns through an aligned
        // pointer (to size their data buffer): a misaligned one is undefined behaviour
        // there (it copies other misaligned buffers instead).
        let width = if large { 8 } else { 4 };
        let text = matches!(
            dtype.to_physical_type(),
            PhysicalType::Binary
                | PhysicalType::Utf8
                | PhysicalType::LargeBinary
                | PhysicalType::LargeUtf8
        );
        if text && !(offsets as usize).is_multiple_of(width) {
            return Err(malformed(format!(
                "{path}: offsets buffer at {offsets:p} is not aligned to {width} bytes"
            )));
        }
        if matches!(
            dtype.to_physical_type(),
            PhysicalType::Utf8 | PhysicalType::LargeUtf8
        ) {
            // SAFETY: a text array of 3 buffers (checked above) whose offsets were just
            // checked; its data buffer holds the bytes up to the last one.
            unsafe { check_text(a, large, path)? };
        }
    }
    if let PhysicalType::BinaryView | PhysicalType::Utf8View = dtype.to_physical_type() {
        let utf8 = dtype.to_physical_type() == PhysicalType::Utf8View;
        // SAFETY: a view array of at least 2 buffers (checked above), laid out as the C
        // interface says.
        unsafe { check_views(a, utf8, path)? };
    }
    let children: Vec<&ArrowDataType> = match dtype {
        ArrowDataType::Struct(fields) => fields.iter().map(|f| &f.dtype).collect(),
        ArrowDataType::List(f)
        | ArrowDataType::LargeList(f)
        | ArrowDataType::FixedSizeList(f, _)
        | ArrowDataType::Map(f, _) => vec![&f.dtype],
        _ => Vec::new(),
    };
    if a.n_children != children.len() as i64 {
        return Err(malformed(format!(
            "{path}: declared {} children for {dtype:?}, the array has {}",
            children.len(),
            a.n_children
        )));
    }
    if a.n_children > 0 && a.children.is_null() {
        return Err(malformed(format!("{path}: null child list")));
    }
    for (i, child_type) in children.into_iter().enumerate() {
        // SAFETY: `children` holds `n_children` pointers (checked above).
        let child = unsafe { *a.children.add(i) };
        if child.is_null() {
            return Err(malformed(format!("{path}: child {i} is null")));
        }
        let name = match dtype {
            ArrowDataType::Struct(fields) => format!("{path}.{}", fields[i].name),
            _ => format!("{path}[]"),
        };
        // SAFETY: a child of a live array is live.
        unsafe { validate(child, child_type, &name)? };
        // SAFETY: as above.
        let c = unsafe { &*child };
        if matches!(dtype, ArrowDataType::Struct(_)) && c.length < a.offset + a.length {
            return Err(malformed(format!(
                "{name}: {} rows, but its table has {}",
                c.length - c.offset,
                a.length
            )));
        }
    }
    if let ArrowDataType::Dictionary(_, values, _) = dtype {
        if a.dictionary.is_null() {
            return Err(malformed(format!(
                "{path}: dictionary array without a dictionary"
            )));
        }
        // SAFETY: non-null dictionary of a live array.
        unsafe { validate(a.dictionary, values, &format!("{path}.dictionary"))? };
    }
    Ok(())
}

/// Checks the offsets `offset..=offset + length` of a variable-size array (text, binary,
/// list, map): present, none negative, none smaller than the one before. polars trusts
/// them: it takes the last one as the length of the data (or child) it reads, and slices
/// every value by them, so a negative or decreasing offset would have it read anywhere.
/// Reading them costs one comparison per value.
///
/// # Safety
/// A non-null `buffer` must hold `offset + length + 1` offsets of 4 bytes (8 if `large`),
/// at any alignment.
unsafe fn check_offsets(
    buffer: *const c_void,
    large: bool,
    offset: usize,
    length: usize,
    path: &str,
) -> Result<(), PluginError> {
    if buffer.is_null() {
        return Err(malformed(format!("{path}: null offsets buffer")));
    }
    let mut previous = 0i64;
    for i in offset..=offset + length {
        // SAFETY: `i <= offset + length`, within the buffer (caller's promise).
        let o = unsafe { offset_at(buffer, large, i) };
        if o < previous {
            return Err(malformed(if o < 0 {
                format!("{path}: offset {i} is negative ({o})")
            } else {
                format!("{path}: offset {i} ({o}) is smaller than the one before ({previous})")
            }));
        }
        previous = o;
    }
    Ok(())
}

/// Offset `i` of an offsets buffer, read unaligned, as a producer may hand any address.
///
/// # Safety
/// `buffer` holds more than `i` offsets of 4 bytes (8 if `large`).
unsafe fn offset_at(buffer: *const c_void, large: bool, i: usize) -> i64 {
    // SAFETY: caller's promise.
    unsafe {
        if large {
            buffer.cast::<i64>().add(i).read_unaligned()
        } else {
            i64::from(buffer.cast::<i32>().add(i).read_unaligned())
        }
    }
}

/// Checks that every value of a text array (`Utf8`, `LargeUtf8`) is UTF-8: polars' `str`s
/// are read without a check, and text that is not UTF-8 is undefined behaviour there. One
/// pass over the bytes (the values are contiguous), then one test per value that it starts
/// on a character.
///
/// # Safety
/// `a` is a live text array of 3 buffers whose offsets `check_offsets` accepted, and a
/// non-null data buffer holds the bytes up to its last offset.
unsafe fn check_text(a: &RawArray, large: bool, path: &str) -> Result<(), PluginError> {
    let (offset, length) = (a.offset as usize, a.length as usize);
    // SAFETY: 3 buffers (caller's promise); the offsets are checked, so none is negative,
    // and they rise from `first` to `last`.
    let (offsets, data) = unsafe { (*a.buffers.add(1), (*a.buffers.add(2)).cast::<u8>()) };
    // SAFETY: as above.
    let at = |i: usize| unsafe { offset_at(offsets, large, i) } as usize;
    let (first, last) = (at(offset), at(offset + length));
    if first == last {
        return Ok(());
    }
    if data.is_null() {
        return Err(malformed(format!("{path}: null data buffer")));
    }
    // SAFETY: the data buffer holds the bytes up to the last offset (caller's promise).
    let bytes = unsafe { std::slice::from_raw_parts(data.add(first), last - first) };
    // ASCII: every byte starts a character.
    if bytes.is_ascii() {
        return Ok(());
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        let bad = first + e.valid_up_to();
        let k = (0..length).find(|&k| at(offset + k + 1) > bad).unwrap_or(0);
        return Err(not_utf8(path, k));
    }
    for k in 1..length {
        let start = at(offset + k) - first;
        if !is_char_start(bytes, start) {
            return Err(not_utf8(path, k));
        }
    }
    Ok(())
}

fn not_utf8(path: &str, k: usize) -> PluginError {
    malformed(format!("{path}: value {k} is not UTF-8"))
}

/// Whether byte `i` of `bytes` starts a character (or is the end).
fn is_char_start(bytes: &[u8], i: usize) -> bool {
    // UTF-8 continuation bytes are 0b10xx_xxxx: -64 and below as `i8`.
    bytes.get(i).is_none_or(|&b| (b as i8) >= -0x40)
}

/// Checks the views of a view array (`BinaryView`, `Utf8View`) before polars trusts them:
/// each long value inside the data buffer it names (by the variadic sizes, the only
/// lengths the C interface gives), its prefix its first four bytes, an inline one padded
/// with zeros, and, for text, UTF-8.
/// polars reads them unchecked; a view past its buffer would have it read anywhere. Null
/// slots are checked too (polars reads their views as well). A data buffer that is UTF-8
/// as a whole is checked once, and its values then by where they start and end.
///
/// # Safety
/// `a` is a live view array of at least 2 buffers: validity, views (16 bytes for each of
/// `offset + length` slots), then, past 3 buffers, the data buffers and last the `i64`
/// size of each (polars reads no data buffers from an array of 3 buffers or fewer).
unsafe fn check_views(a: &RawArray, utf8: bool, path: &str) -> Result<(), PluginError> {
    let (offset, length) = (a.offset as usize, a.length as usize);
    let n = a.n_buffers as usize;
    let n_data = n.saturating_sub(3);
    let mut data: Vec<&[u8]> = Vec::with_capacity(n_data);
    if n_data > 0 {
        // SAFETY: `n` buffers (caller's promise); the last holds `n_data` sizes.
        let sizes = unsafe { *a.buffers.add(n - 1) }.cast::<i64>();
        if sizes.is_null() {
            return Err(malformed(format!("{path}: null variadic buffer sizes")));
        }
        // polars takes the sizes as a slice of `i64` where they are, without the copy it
        // makes of other misaligned buffers: a misaligned one is undefined behaviour there.
        if !(sizes as usize).is_multiple_of(std::mem::align_of::<i64>()) {
            return Err(malformed(format!(
                "{path}: variadic buffer sizes at {sizes:p} are not aligned to 8 bytes"
            )));
        }
        for i in 0..n_data {
            // SAFETY: as above, read unaligned.
            let size = unsafe { sizes.add(i).read_unaligned() };
            let Ok(size) = usize::try_from(size) else {
                return Err(malformed(format!(
                    "{path}: data buffer {i} has a negative size ({size})"
                )));
            };
            // SAFETY: buffer `2 + i < n - 1` exists.
            let ptr = unsafe { *a.buffers.add(2 + i) }.cast::<u8>();
            data.push(match (ptr.is_null(), size) {
                (_, 0) => &[],
                (true, _) => return Err(malformed(format!("{path}: data buffer {i} is null"))),
                // SAFETY: a data buffer holds the size the producer gives for it.
                (false, _) => unsafe { std::slice::from_raw_parts(ptr, size) },
            });
        }
    }
    if length == 0 {
        return Ok(());
    }
    // SAFETY: buffer 1 exists (caller's promise).
    let views = unsafe { *a.buffers.add(1) }.cast::<u8>();
    if views.is_null() {
        return Err(malformed(format!("{path}: null views buffer")));
    }
    // SAFETY: 16 bytes for each of `offset + length` slots (caller's promise).
    let views = unsafe { std::slice::from_raw_parts(views.add(16 * offset), 16 * length) };
    // SAFETY: buffer 0 exists (caller's promise).
    let validity = unsafe { *a.buffers }.cast::<u8>();
    let is_null = |k: usize| {
        let i = offset + k;
        // SAFETY: a validity buffer holds a bit for each of `offset + length` slots.
        !validity.is_null() && unsafe { *validity.add(i / 8) } >> (i % 8) & 1 == 0
    };
    // Per data buffer, for text: all ASCII (then every byte starts a character), or UTF-8
    // as a whole (then a value is UTF-8 when it starts and ends on a character).
    let (ascii, whole_utf8): (Vec<bool>, Vec<bool>) = if utf8 {
        data.iter()
            .map(|d| {
                let ascii = d.is_ascii();
                (ascii, ascii || std::str::from_utf8(d).is_ok())
            })
            .unzip()
    } else {
        (Vec::new(), Vec::new())
    };
    for (k, view) in views.chunks_exact(16).enumerate() {
        // A view is, little-endian: length (u32), then either the value itself (up to 12
        // bytes) or its prefix (u32), its data buffer (u32) and its start there (u32).
        let v = u128::from_le_bytes(view.try_into().expect("chunks of 16 bytes"));
        let len = v as u32 as usize;
        if len <= 12 {
            // polars compares inline views whole: the bytes past a value must be 0 (a null
            // slot's view may hold anything short).
            if v.checked_shr(32 + 8 * len as u32).unwrap_or(0) != 0 && !is_null(k) {
                return Err(malformed(format!(
                    "{path}: value {k} is inline but not zero-padded"
                )));
            }
            // No byte with its high bit set: ASCII.
            if utf8 && v & INLINE_HIGH_BITS != 0 && std::str::from_utf8(&view[4..4 + len]).is_err()
            {
                return Err(not_utf8(path, k));
            }
            continue;
        }
        let (prefix, index, start) = (
            (v >> 32) as u32,
            (v >> 64) as u32 as usize,
            (v >> 96) as u32 as usize,
        );
        let Some(buffer) = data.get(index) else {
            return Err(malformed(format!(
                "{path}: value {k} points into data buffer {index}, of {n_data}"
            )));
        };
        // Two `u32`s: no overflow in a 64-bit `usize`.
        let end = start + len;
        if end > buffer.len() {
            return Err(malformed(format!(
                "{path}: value {k} ends at byte {end} of data buffer {index}, which holds {}",
                buffer.len()
            )));
        }
        let first = u32::from_le_bytes(buffer[start..start + 4].try_into().expect("4 bytes"));
        if first != prefix {
            return Err(malformed(format!(
                "{path}: value {k}'s prefix is not its first 4 bytes"
            )));
        }
        if !utf8 || ascii[index] {
            continue;
        }
        let valid = if whole_utf8[index] {
            is_char_start(buffer, start) && is_char_start(buffer, end)
        } else {
            std::str::from_utf8(&buffer[start..end]).is_ok()
        };
        if !valid {
            return Err(not_utf8(path, k));
        }
    }
    Ok(())
}

/// The high bit of each of a view's 12 bytes after its length (`u128`, little-endian).
const INLINE_HIGH_BITS: u128 = 0x8080_8080_8080_8080_8080_8080 << 32;

/// The unset bits among `length` bits from bit `offset` of `bits` (LSB first).
fn unset_bits(bits: &[u8], offset: usize, length: usize) -> usize {
    let bit = |i: usize| usize::from(bits[i / 8] >> (i % 8) & 1);
    let end = offset + length;
    let mut set = 0usize;
    let mut i = offset;
    while i < end && !i.is_multiple_of(8) {
        set += bit(i);
        i += 1;
    }
    let whole = &bits[i / 8..end / 8];
    let mut words = whole.chunks_exact(8);
    for w in &mut words {
        let w: [u8; 8] = w.try_into().unwrap_or_default();
        set += u64::from_le_bytes(w).count_ones() as usize;
    }
    set += words
        .remainder()
        .iter()
        .map(|b| b.count_ones() as usize)
        .sum::<usize>();
    i = i.max(end / 8 * 8);
    while i < end {
        set += bit(i);
        i += 1;
    }
    length - set
}

/// One imported batch: its row count and one array per column.
pub(crate) type Batch = (usize, Vec<Box<dyn Array>>);

/// A plugin's Arrow stream of struct arrays, imported one batch at a time: fixed-width and
/// view buffers are shared with the plugin (no copy) and released when polars drops them.
pub(crate) struct ForeignBatches {
    stream: FfiArrowArrayStream,
    get_next: unsafe extern "C" fn(*mut FfiArrowArrayStream, *mut c_void) -> i32,
    fields: Vec<Field>,
    dtype: ArrowDataType,
    done: bool,
    /// The plugin's structured stream errors (1.4), if it has them.
    stream_error: Option<StreamErrorV1>,
}

impl ForeignBatches {
    /// Reads and checks the stream's schema.
    fn open(mut stream: FfiArrowArrayStream) -> Result<Self, PluginError> {
        if stream.release.is_none() {
            return Err(malformed("the stream was already released"));
        }
        let (Some(get_schema), Some(get_next)) = (stream.get_schema, stream.get_next) else {
            return Err(malformed("get_schema or get_next is null"));
        };
        let mut schema = ArrowSchema::empty();
        // SAFETY: `stream` is live; `schema` is an empty, writable `ArrowSchema`, which the
        // producer fills and we own afterwards (polars' `Drop` releases it).
        let status = unsafe { get_schema(&mut stream, (&raw mut schema).cast()) };
        if status != 0 {
            // From the text: the plugin's structured errors are not known here yet, and
            // an SDK stream knows its schema before it is exported (it fails here only in
            // arrow-rs's own conversion, which is no `PluginError`).
            return Err(last_error(&mut stream, status, None));
        }
        // SAFETY: the producer filled `schema` per the C data interface.
        let field = guarded("unreadable schema", || unsafe {
            import_field_from_c(&schema)
        })?
        .map_err(|e| malformed(format!("unreadable schema: {e}")))?;
        drop(schema);
        let ArrowDataType::Struct(fields) = field.dtype.to_storage().clone() else {
            return Err(malformed(format!(
                "a table must be a stream of struct arrays, got {:?}",
                field.dtype
            )));
        };
        let fields = unique_names(fields);
        for f in &fields {
            if let Some(t) = unsupported(&f.dtype) {
                return Err(malformed(format!(
                    "column {:?} has Arrow type {t:?}, which this host cannot hold in a DataFrame",
                    f.name
                )));
            }
        }
        Ok(Self {
            stream,
            get_next,
            dtype: ArrowDataType::Struct(fields.clone()),
            fields,
            done: false,
            stream_error: None,
        })
    }

    /// Reads the errors of later batches as data through the plugin's `stream_error`
    /// (1.4); without it (`None`, or a plugin before 1.4), from their text.
    fn with_stream_errors(mut self, stream_error: Option<StreamErrorV1>) -> Self {
        self.stream_error = stream_error;
        self
    }

    /// The table's columns, as the plugin declared them (names made unique).
    pub(crate) fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The next batch's columns, each one array; `None` at the end of the stream.
    pub(crate) fn next_arrays(&mut self) -> Result<Option<Batch>, PluginError> {
        if self.done {
            return Ok(None);
        }
        let mut array = ArrowArray::empty();
        // SAFETY: `stream` is live; `array` is empty and writable.
        let status = unsafe { (self.get_next)(&mut self.stream, (&raw mut array).cast()) };
        if status != 0 {
            self.done = true;
            return Err(last_error(&mut self.stream, status, self.stream_error));
        }
        let raw: *mut RawArray = (&raw mut array).cast();
        // SAFETY: `RawArray` has `ArrowArray`'s C layout; `array` is initialized.
        if unsafe { (*raw).release.is_none() } {
            self.done = true;
            return Ok(None);
        }
        // SAFETY: `array` is live until moved into `import_array_from_c` below.
        unsafe { validate(raw, &self.dtype, "batch")? };
        // SAFETY: validated against `dtype` above; ownership moves to polars, whose buffers
        // keep the producer's array alive and call its `release` when dropped.
        let dtype = self.dtype.clone();
        let imported = guarded("cannot import a batch", || unsafe {
            import_array_from_c(array, dtype)
        })?
        .map_err(|e| malformed(format!("cannot import a batch: {e}")))?;
        let Some(batch) = imported.as_any().downcast_ref::<StructArray>() else {
            return Err(malformed("a batch is not a struct array"));
        };
        if batch.validity().is_some_and(|v| v.unset_bits() > 0) {
            return Err(malformed("a batch has null rows at the top level"));
        }
        let height = batch.len();
        let (_, _, values, _) = batch.clone().into_data();
        for (field, array) in self.fields.iter().zip(&values) {
            if let Some(precision) = decimal_overflow(array.as_ref()) {
                return Err(malformed(format!(
                    "column {:?} holds a decimal with more digits than its precision {precision}",
                    field.name
                )));
            }
        }
        Ok(Some((height, values)))
    }
}

/// Imports a stream as a read does, whole (`collect`) or batch by batch (`next_frame`, as an
/// export reads it): the hook of the `arrow_import` fuzz target (`sys::fuzz_stream`).
pub(crate) fn import_for_fuzzing(
    stream: FfiArrowArrayStream,
    by_batch: bool,
) -> Result<Vec<DataFrame>, PluginError> {
    let mut batches = crate::plugin::Batches::foreign(ForeignBatches::open(stream)?);
    if !by_batch {
        return batches.collect().map(|df| vec![df]);
    }
    let mut frames = Vec::new();
    while let Some(df) = batches.next_frame()? {
        frames.push(df);
    }
    Ok(frames)
}

/// The first part of `dtype` that polars (as this host builds it) cannot import; polars
/// would panic on it.
/// Runs one of polars' imports, which `unwrap` some things a foreign producer can get
/// wrong (a name or format that is not UTF-8): a panic there is a malformed stream, never
/// the host's end. (Whatever the import had taken ownership of may leak; nothing is freed
/// twice, since the producer's `release` runs only from polars' own `Drop`.)
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, PluginError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        malformed(format!("{what}: {why}"))
    })
}

/// The precision of a decimal array (at any depth: in lists and structs) holding a value
/// with more digits than it: polars asserts the precision when it rebuilds such a column
/// (a one-row column becomes a scalar), so the loader refuses the batch.
pub(crate) fn decimal_overflow(array: &dyn Array) -> Option<usize> {
    use polars_arrow::array::{ListArray, PrimitiveArray};
    match array.dtype().to_storage() {
        ArrowDataType::Decimal(precision, _) => {
            let values = array.as_any().downcast_ref::<PrimitiveArray<i128>>()?;
            let limit = 10i128.checked_pow(u32::try_from(*precision).ok()?)?;
            values
                .iter()
                .flatten()
                .any(|v| v.unsigned_abs() >= limit.unsigned_abs())
                .then_some(*precision)
        }
        ArrowDataType::List(_) => decimal_overflow(
            array
                .as_any()
                .downcast_ref::<ListArray<i32>>()?
                .values()
                .as_ref(),
        ),
        ArrowDataType::LargeList(_) => decimal_overflow(
            array
                .as_any()
                .downcast_ref::<ListArray<i64>>()?
                .values()
                .as_ref(),
        ),
        ArrowDataType::Struct(_) => array
            .as_any()
            .downcast_ref::<StructArray>()?
            .values()
            .iter()
            .find_map(|a| decimal_overflow(a.as_ref())),
        _ => None,
    }
}

/// Whether the loader refuses a column of this type (for the fuzz targets, which build
/// only frames a plugin could hand the host).
pub(crate) fn refuses(dtype: &ArrowDataType) -> bool {
    unsupported(dtype).is_some()
}

fn unsupported(dtype: &ArrowDataType) -> Option<&ArrowDataType> {
    use ArrowDataType as A;
    match dtype {
        A::Null
        | A::Boolean
        | A::Int8
        | A::Int16
        | A::Int32
        | A::Int64
        | A::UInt8
        | A::UInt16
        | A::UInt32
        | A::UInt64
        | A::Float32
        | A::Float64
        | A::Utf8
        | A::LargeUtf8
        | A::Utf8View
        | A::Binary
        | A::LargeBinary
        | A::BinaryView
        | A::FixedSizeBinary(_)
        | A::Date32
        | A::Date64
        | A::Timestamp(..)
        | A::Duration(_)
        | A::Time32(_)
        | A::Time64(_) => None,
        // polars takes 1 to 38 digits, with a scale of at most the precision, and asserts
        // it when the column is written out: anything else is refused at the boundary.
        A::Decimal(precision, scale) if (1..=38).contains(precision) && scale <= precision => None,
        A::List(f) | A::LargeList(f) => unsupported(&f.dtype),
        // polars cannot hold a struct with two fields of one name (it asserts).
        A::Struct(fields)
            if fields
                .iter()
                .enumerate()
                .any(|(i, f)| fields[..i].iter().any(|g| g.name == f.name)) =>
        {
            Some(dtype)
        }
        A::Struct(fields) => fields.iter().find_map(|f| unsupported(&f.dtype)),
        other => Some(other),
    }
}

/// polars requires unique column names; a join's `SELECT *` often repeats one (`id`).
/// Later duplicates get a suffix: `id`, `id_2`, `id_3`.
fn unique_names(fields: Vec<Field>) -> Vec<Field> {
    let original: std::collections::HashSet<String> =
        fields.iter().map(|f| f.name.to_string()).collect();
    let mut emitted = std::collections::HashSet::new();
    fields
        .into_iter()
        .map(|mut f| {
            if !emitted.insert(f.name.to_string()) {
                let renamed = (2..)
                    .map(|n| format!("{}_{n}", f.name))
                    .find(|c| !original.contains(c) && !emitted.contains(c))
                    .unwrap_or_default();
                emitted.insert(renamed.clone());
                f.name = renamed.into();
            }
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_targets_are_canonical_objects() {
        assert_eq!(
            canonical_target(r#"{ "port": 5432, "host": "h", "o": {"b": 1, "a": 2} }"#),
            Ok(Some(
                r#"{"host":"h","o":{"a":2,"b":1},"port":5432}"#.to_owned()
            )),
            "keys sorted at every level, no whitespace"
        );
        assert_eq!(
            canonical_target("{}"),
            Ok(None),
            "an empty target says nothing"
        );
        assert!(canonical_target("[1]").is_err());
        assert!(canonical_target("host=h").is_err());
    }

    #[test]
    fn an_abi_report_names_the_type_whose_layout_differs() {
        // The tail of abi_stable's report for a connection vtable shorter than the host's
        // (tests/compat/vtable's short-vtable), trimmed.
        let report = "Layout of expected type:\n    --- Type Layout ---\n    type:PluginMod\n    \
            line:207 mod:plugboard_api::ffi\n\nLayout of found type:\n    --- Type Layout ---\n    \
            type:VTable\n    size:16 align:8\n    line:69 mod:plugboard_api::ffi::FfiConnection_trait\n    \
            data:\n        fields:\n            field_name:read\n            type:AFunctionPointer\n\n\
            Error:too many fields\nExpected:\n    6\nFound:\n    3\n";
        assert_eq!(
            mismatched_type(report).as_deref(),
            Some("plugboard_api::ffi::FfiConnection_trait::VTable")
        );
        assert_eq!(mismatched_type("Error: something"), None);
    }

    #[test]
    fn unset_bits_counts_every_alignment() {
        let bits: Vec<u8> = (0..40u32)
            .map(|i| (i.wrapping_mul(151) ^ 0x5a) as u8)
            .collect();
        let naive = |offset: usize, len: usize| {
            (offset..offset + len)
                .filter(|i| bits[i / 8] >> (i % 8) & 1 == 0)
                .count()
        };
        for offset in 0..20 {
            for len in 0..(bits.len() * 8 - offset) {
                assert_eq!(
                    unset_bits(&bits, offset, len),
                    naive(offset, len),
                    "{offset}+{len}"
                );
            }
        }
    }
}
