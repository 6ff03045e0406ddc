//! A plugboard connector that generates number series: read anything with `:count`, and an
//! optional `:label` repeated on every row. Copy this crate to start your own.
use std::sync::Arc;

use plugboard_api::arrow_array::{
    ArrayRef, Int64Array, RecordBatch, RecordBatchIterator, StringArray,
};
use plugboard_api::{ConfigKey, Connector, KeyType, Manifest, PluginError, ReadRequest, Value};

/// The connection's `[connections.<name>]` table; unknown keys are errors that name them.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    offset: i64,
}

pub struct Series {
    offset: i64,
}

impl Connector for Series {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("series", env!("CARGO_PKG_VERSION"))
            .kinds(["series"])
            .key(ConfigKey::new("offset", KeyType::Integer).describe("added to every value"))
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        Ok(Series {
            offset: config.offset,
        })
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl plugboard_api::RecordBatchReader + Send + 'static, PluginError> {
        let Some(Value::Int(count)) = request.params.get("count") else {
            return Err(PluginError::query("bind :count, the number of rows"));
        };
        let label = match request.params.get("label") {
            Some(Value::String(s)) => s.as_str(),
            _ => "",
        };
        let values = Int64Array::from_iter_values((0..*count).map(|i| self.offset + i));
        let labels = StringArray::from(vec![label; values.len()]);
        let batch = RecordBatch::try_from_iter([
            ("value", Arc::new(values) as ArrayRef),
            ("label", Arc::new(labels) as ArrayRef),
        ])?;
        let schema = batch.schema();
        Ok(RecordBatchIterator::new(vec![Ok(batch)], schema))
    }
}

plugboard_api::export_connector!(Series);
