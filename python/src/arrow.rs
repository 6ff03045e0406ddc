//! Results leave Rust as Arrow C streams in PyCapsules (the Arrow PyCapsule interface).
//!
//! A frame's columns are polars' Arrow arrays; each chunk of the frame becomes one struct
//! array of the stream, sharing its buffers. The consumer (pyarrow, polars) takes the
//! stream out of the capsule and holds the buffers through polars' release callbacks, so
//! nothing is copied. A capsule nobody consumed releases its stream when it is collected.

use std::sync::Arc;

use polars::prelude::{CompatLevel, DataFrame, PolarsError, PolarsResult, Schema};
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field};
use polars_arrow::ffi::{ArrowArrayStream, export_iterator};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::argument;

/// The capsule name the Arrow PyCapsule interface gives a stream.
const STREAM: &std::ffi::CStr = c"arrow_array_stream";

type Arrays = Box<dyn Iterator<Item = PolarsResult<Box<dyn Array>>> + Send>;

/// A whole frame as a stream capsule.
pub fn frame_capsule<'py>(py: Python<'py>, df: &Arc<DataFrame>) -> PyResult<Bound<'py, PyAny>> {
    let dtype = struct_type(df.schema());
    let arrays = chunks(df, &dtype);
    capsule(py, dtype, Box::new(arrays.into_iter().map(Ok)))
}

/// The rest of a live read as a stream capsule: each batch is pulled when the consumer
/// asks for it.
pub fn stream_capsule<'py>(
    py: Python<'py>,
    schema: &Schema,
    stream: plugboard::Stream,
) -> PyResult<Bound<'py, PyAny>> {
    let dtype = struct_type(schema);
    let each = dtype.clone();
    let arrays = stream.flat_map(move |batch| -> Vec<PolarsResult<Box<dyn Array>>> {
        match batch {
            Ok(df) => chunks(&df, &each).into_iter().map(Ok).collect(),
            // The consumer's `get_last_error` gives this message.
            Err(e) => vec![Err(PolarsError::ComputeError(e.to_string().into()))],
        }
    });
    capsule(py, dtype, Box::new(arrays))
}

fn capsule<'py>(
    py: Python<'py>,
    dtype: ArrowDataType,
    arrays: Arrays,
) -> PyResult<Bound<'py, PyAny>> {
    let field = Field::new("".into(), dtype, false);
    let stream: ArrowArrayStream = export_iterator(arrays, field);
    Ok(PyCapsule::new_with_value(py, stream, STREAM)?.into_any())
}

/// The Arrow type of one row: a struct of the columns.
fn struct_type(schema: &Schema) -> ArrowDataType {
    let fields = schema
        .iter()
        .map(|(name, dtype)| dtype.to_arrow_field(name.clone(), CompatLevel::newest()))
        .collect();
    ArrowDataType::Struct(fields)
}

/// The frame's chunks as struct arrays over the same buffers.
fn chunks(df: &DataFrame, dtype: &ArrowDataType) -> Vec<Box<dyn Array>> {
    let mut df = df.clone(); // the columns' buffers are shared, not copied
    df.align_chunks_par();
    df.iter_chunks(CompatLevel::newest(), false)
        .map(|chunk| {
            let height = chunk.height();
            Box::new(StructArray::new(
                dtype.clone(),
                height,
                chunk.into_arrays(),
                None,
            )) as Box<dyn Array>
        })
        .collect()
}

/// The address of the first value of a numeric column without nulls, in one chunk.
pub fn values_address(df: &DataFrame, column: &str) -> PyResult<usize> {
    let series = df
        .column(column)
        .map_err(|e| argument(e.to_string()))?
        .as_materialized_series()
        .to_physical_repr();
    let chunks = series.chunks();
    let [array] = chunks.as_slice() else {
        return Err(argument(format!(
            "column {column:?} is in {} chunks",
            chunks.len()
        )));
    };
    use polars_arrow::array::PrimitiveArray;
    let any = array.as_any();
    macro_rules! address {
        ($($t:ty),*) => {
            $(if let Some(a) = any.downcast_ref::<PrimitiveArray<$t>>() {
                return Ok(a.values().as_ptr() as usize);
            })*
        };
    }
    address!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, i128);
    Err(argument(format!("column {column:?} is not numeric")))
}
