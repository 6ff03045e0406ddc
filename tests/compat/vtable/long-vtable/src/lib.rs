//! A plugin whose connection vtable is longer than the host's (`describe` after `close`),
//! and which has none of the symbols later minors added (no log sink, no connect_v2, no
//! structured stream errors): the host sees it as a plugin of 1.0's layout.
//!
//! Reads, by query: `rows` (x = 1, 2, 3 in one batch), `fail_midway` (a batch, then a
//! retryable connect error inside the stream, as text only). `execute` returns 7; `ping`
//! fails with an error that names it, so a test can tell which slot was called.
use std::sync::Arc;

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchIterator};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use plugboard_api::PluginError;
use plugboard_api::ffi::{
    FfiArrowArrayStream, FfiConnection, FfiConnection_TO, FfiConnectionBox, PluginMod, PluginModRef,
};

struct Long;

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

impl FfiConnection for Long {
    fn read(&self, request: RStr<'_>) -> RResult<FfiArrowArrayStream, PluginError> {
        let query = serde_json::from_str::<serde_json::Value>(request.as_str())
            .ok()
            .and_then(|r| r.get("query")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let column: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let batch = match RecordBatch::try_new(schema.clone(), vec![column]) {
            Ok(b) => b,
            Err(e) => return RErr(PluginError::internal(e.to_string())),
        };
        let batches: Batches = match query.as_str() {
            "rows" => Box::new(std::iter::once(Ok(batch))),
            "fail_midway" => Box::new(
                [
                    Ok(batch),
                    Err(ArrowError::ExternalError(Box::new(
                        PluginError::connect("long-vtable lost its server").retryable(),
                    ))),
                ]
                .into_iter(),
            ),
            other => return RErr(PluginError::query(format!("unknown query {other:?}"))),
        };
        ROk(FfiArrowArrayStream::from_reader(RecordBatchIterator::new(
            batches, schema,
        )))
    }

    fn execute(&self, _request: RStr<'_>) -> RResult<u64, PluginError> {
        ROk(7)
    }

    fn ping(&self) -> RResult<(), PluginError> {
        RErr(PluginError::query("long-vtable's ping was called"))
    }

    fn describe(&self) -> RString {
        RString::from("long-vtable")
    }
}

extern "C" fn manifest() -> RResult<RString, PluginError> {
    ROk(RString::from(
        r#"{"name":"long-vtable","version":"0.0.0","kinds":["long"]}"#,
    ))
}

extern "C" fn connect(_request: RStr<'_>) -> RResult<FfiConnectionBox, PluginError> {
    ROk(FfiConnection_TO::from_value(Long, TD_Opaque))
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
