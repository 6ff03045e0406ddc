//! A plugin whose connection vtable is shorter than the host's: `read` only. Its `read`
//! fails with a query error that names it, so a test can tell it was called.
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use plugboard_api::PluginError;
use plugboard_api::ffi::{
    FfiArrowArrayStream, FfiConnection, FfiConnection_TO, FfiConnectionBox, PluginMod, PluginModRef,
};

struct Short;

impl FfiConnection for Short {
    fn read(&self, _request: RStr<'_>) -> RResult<FfiArrowArrayStream, PluginError> {
        RErr(PluginError::query("short-vtable's read was called"))
    }
}

extern "C" fn manifest() -> RResult<RString, PluginError> {
    ROk(RString::from(
        r#"{"name":"short-vtable","version":"0.0.0","kinds":["short"]}"#,
    ))
}

extern "C" fn connect(_request: RStr<'_>) -> RResult<FfiConnectionBox, PluginError> {
    ROk(FfiConnection_TO::from_value(Short, TD_Opaque))
}

fn root() -> PluginModRef {
    PluginMod {
        api_version: 1,
        manifest,
        connect,
    }
    .leak_into_prefix()
}

plugboard_api::export_plugin_module!(root);
