//! A connector from the plugboard-api 1.0 days: `read` returns `n` rows of `greeting`.
use std::sync::Arc;

use plugboard_api::arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchIterator, StringArray};
use plugboard_api::arrow_schema::{DataType, Field, Schema};
use plugboard_api::{Connector, Manifest, PluginError, ReadRequest, Value, export_connector};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    greeting: String,
}

pub struct Legacy {
    greeting: String,
}

impl Connector for Legacy {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("legacy", "1.0.0")
            .description("built against plugboard-api 1.0.0")
            .kinds(["legacy"])
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        Ok(Self { greeting: config.greeting })
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl plugboard_api::RecordBatchReader + Send + 'static, PluginError> {
        let n = match request.params.get("n") {
            Some(Value::Int(n)) => *n,
            _ => return Err(PluginError::query("bind :n, the number of rows")),
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, false),
            Field::new("greeting", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| self.greeting.as_str()))),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(RecordBatchIterator::new(vec![Ok(batch)], schema))
    }
}

export_connector!(Legacy);
