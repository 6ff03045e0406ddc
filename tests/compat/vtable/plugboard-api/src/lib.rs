//! plugboard-api 1.0.0's ABI, with a connection vtable of another length (see Cargo.toml).
//!
//! `PluginError` and `ErrorKind` are the frozen 1.0.0 source itself; the root module and
//! the Arrow stream mirror are copied from it unchanged. Only `FfiConnection` differs.
#![allow(unsafe_code)]
// `#[sabi_trait]` expands to impls the lint does not like; the expansion is abi_stable's.
#![allow(non_local_definitions)]

#[cfg(all(feature = "short", feature = "long"))]
compile_error!("build one plugin at a time: `short` and `long` are two different ABIs");
#[cfg(not(any(feature = "short", feature = "long")))]
compile_error!("pick a vtable: feature `short` or `long`");

#[path = "../../../plugboard-api-1.0/src/error.rs"]
mod error;

pub use crate::error::{ErrorKind, PluginError};

pub mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    #[cfg(feature = "long")]
    use abi_stable::std_types::{RErr, ROk};
    use abi_stable::{
        StableAbi, declare_root_module_statics,
        library::RootModule,
        sabi_trait,
        sabi_types::VersionStrings,
        std_types::{RBox, RResult, RStr, RString},
    };
    use arrow_array::{RecordBatchReader, ffi_stream::FFI_ArrowArrayStream};

    use crate::PluginError;

    #[doc(hidden)]
    pub mod __private {
        pub use abi_stable::library::{
            __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
        };
    }

    /// As in 1.0.0.
    #[repr(C)]
    #[derive(StableAbi)]
    pub struct FfiArrowArrayStream {
        pub get_schema: Option<
            unsafe extern "C" fn(stream: *mut FfiArrowArrayStream, out: *mut c_void) -> c_int,
        >,
        pub get_next: Option<
            unsafe extern "C" fn(stream: *mut FfiArrowArrayStream, out: *mut c_void) -> c_int,
        >,
        pub get_last_error:
            Option<unsafe extern "C" fn(stream: *mut FfiArrowArrayStream) -> *const c_char>,
        pub release: Option<unsafe extern "C" fn(stream: *mut FfiArrowArrayStream)>,
        pub private_data: *mut c_void,
    }

    impl FfiArrowArrayStream {
        /// Exports a reader as a C stream, as 1.0.0 does (without its panic guard).
        pub fn from_reader<R: RecordBatchReader + Send + 'static>(reader: R) -> Self {
            let stream = FFI_ArrowArrayStream::new(Box::new(reader));
            // SAFETY: both types are `#[repr(C)]` images of the same C struct.
            unsafe { std::mem::transmute::<FFI_ArrowArrayStream, FfiArrowArrayStream>(stream) }
        }
    }

    /// The connection vtable of an imagined *earlier* minor: `read` only.
    #[cfg(feature = "short")]
    #[sabi_trait]
    pub trait FfiConnection: Send + Sync {
        #[sabi(last_prefix_field)]
        fn read(&self, request: RStr<'_>) -> RResult<FfiArrowArrayStream, PluginError>;
    }

    /// The connection vtable of an imagined *later* minor: 1.0.0's, and `describe` after it.
    #[cfg(feature = "long")]
    #[sabi_trait]
    pub trait FfiConnection: Send + Sync {
        #[sabi(last_prefix_field)]
        fn read(&self, request: RStr<'_>) -> RResult<FfiArrowArrayStream, PluginError>;

        fn execute(&self, _request: RStr<'_>) -> RResult<u64, PluginError> {
            RErr(PluginError::unsupported(
                "this connector does not support execute",
            ))
        }

        fn ping(&self) -> RResult<(), PluginError> {
            ROk(())
        }

        fn close(&self) {}

        /// The method an imagined later minor appended.
        fn describe(&self) -> RString {
            RString::new()
        }
    }

    pub type FfiConnectionBox = FfiConnection_TO<'static, RBox<()>>;

    /// As in 1.0.0.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
    pub struct PluginMod {
        pub api_version: u32,
        pub manifest: extern "C" fn() -> RResult<RString, PluginError>,
        #[sabi(last_prefix_field)]
        pub connect: extern "C" fn(RStr<'_>) -> RResult<FfiConnectionBox, PluginError>,
    }

    impl RootModule for PluginModRef {
        declare_root_module_statics! {PluginModRef}
        const BASE_NAME: &'static str = "plugboard_plugin";
        const NAME: &'static str = "plugboard plugin";
        const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
    }
}

/// As 1.0.0's: exports a hand-built root module, `fn() -> ffi::PluginModRef`.
#[macro_export]
macro_rules! export_plugin_module {
    ($root:expr) => {
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
    };
}
