//! polars' Arrow arrays handed to arrow-rs through the Arrow C Data Interface.
//!
//! The one module of this crate that uses `unsafe`. Both libraries implement the same C
//! structs (`ArrowSchema`, `ArrowArray`), so exporting from one and importing into the other
//! moves ownership of the buffers without copying a byte: arrow-rs keeps polars' release
//! callback and calls it when the last batch referring to the buffers is dropped.
#![allow(unsafe_code)]

use std::sync::Arc;

use plugboard_api::PluginError;
use plugboard_api::arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use plugboard_api::arrow_array::{RecordBatch, StructArray};
use plugboard_api::arrow_schema::{Schema, SchemaRef};
use polars::prelude::{CompatLevel, DataFrame};
use polars_arrow::array::StructArray as PlStructArray;
use polars_arrow::datatypes::{ArrowDataType, Field as PlField};
use polars_arrow::ffi as pl;

/// The arrow-rs schema of a frame, as its batches will carry it.
pub fn schema(df: &DataFrame) -> Result<SchemaRef, PluginError> {
    let c_schema = pl::export_field_to_c(&struct_field(df));
    // SAFETY: polars' `ArrowSchema` and arrow-rs' `FFI_ArrowSchema` are both the C Data
    // Interface's `struct ArrowSchema` (`#[repr(C)]`, same fields in the same order).
    // Ownership (the release callback) moves with the value.
    let c_schema: FFI_ArrowSchema = unsafe { std::mem::transmute(c_schema) };
    Ok(Arc::new(Schema::try_from(&c_schema)?))
}

/// The frame's chunks as record batches of at most `batch_rows` rows each, sharing the
/// frame's buffers.
pub fn batches(
    df: &mut DataFrame,
    schema: &SchemaRef,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, PluginError> {
    df.align_chunks_par();
    let dtype = struct_field(df).dtype;
    let mut out = Vec::new();
    for chunk in df.iter_chunks(CompatLevel::newest(), false) {
        let height = chunk.height();
        let array = PlStructArray::new(dtype.clone(), height, chunk.into_arrays(), None);
        let c_array = pl::export_array_to_c(Box::new(array));
        let c_schema = pl::export_field_to_c(&PlField::new("".into(), dtype.clone(), false));
        // SAFETY: as in `schema`, for both structs; `from_ffi` takes ownership of the array
        // (its buffers are released through polars' callback) and only borrows the schema.
        let data = unsafe {
            let c_array: FFI_ArrowArray = std::mem::transmute(c_array);
            let c_schema: FFI_ArrowSchema = std::mem::transmute(c_schema);
            from_ffi(c_array, &c_schema)?
        };
        let columns = StructArray::from(data).columns().to_vec();
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let mut offset = 0;
        while offset < height {
            let len = batch_rows.min(height - offset);
            out.push(batch.slice(offset, len));
            offset += len;
        }
    }
    Ok(out)
}

fn struct_field(df: &DataFrame) -> PlField {
    let fields = df
        .columns()
        .iter()
        .map(|c| c.field().to_arrow(CompatLevel::newest()))
        .collect();
    PlField::new("".into(), ArrowDataType::Struct(fields), false)
}

#[cfg(test)]
mod tests {
    use plugboard_api::arrow_array::cast::AsArray;
    use plugboard_api::arrow_array::types::{Float64Type, Int64Type};
    use polars::prelude::*;

    use super::*;

    #[test]
    fn numeric_buffers_are_shared_not_copied() -> Result<(), Box<dyn std::error::Error>> {
        let mut df = df!(
            "id" => (0..10_000i64).collect::<Vec<_>>(),
            "fare" => (0..10_000).map(|i| i as f64 / 4.0).collect::<Vec<_>>(),
            "vendor" => (0..10_000).map(|i| format!("v{}", i % 7)).collect::<Vec<_>>(),
        )?;
        let id_ptr = df
            .column("id")?
            .i64()?
            .downcast_iter()
            .next()
            .expect("chunk")
            .values()
            .as_ptr();
        let fare_ptr = df
            .column("fare")?
            .f64()?
            .downcast_iter()
            .next()
            .expect("chunk")
            .values()
            .as_ptr();

        let schema = schema(&df)?;
        let batches = batches(&mut df, &schema, 4096)?;
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [4096, 4096, 1808]
        );
        let first = &batches[0];
        assert_eq!(
            first
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .as_ptr(),
            id_ptr
        );
        assert_eq!(
            first
                .column(1)
                .as_primitive::<Float64Type>()
                .values()
                .as_ptr(),
            fare_ptr
        );
        // A later slice points into the same buffer.
        let third = batches[2].column(0).as_primitive::<Int64Type>();
        assert_eq!(third.value(0), 8192);
        assert_eq!(third.values().as_ptr(), id_ptr.wrapping_add(8192));
        assert_eq!(
            batches[2].column(2).as_string_view().value(1807),
            format!("v{}", 9999 % 7)
        );
        Ok(())
    }

    #[test]
    fn an_empty_frame_keeps_its_schema() -> Result<(), Box<dyn std::error::Error>> {
        let mut df = df!("a" => Vec::<i64>::new(), "b" => Vec::<String>::new())?;
        let schema = schema(&df)?;
        assert_eq!(schema.fields().len(), 2);
        assert_eq!(schema.field(1).name(), "b");
        assert!(batches(&mut df, &schema, 100)?.is_empty());
        Ok(())
    }
}
