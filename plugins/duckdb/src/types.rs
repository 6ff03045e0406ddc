//! DuckDB's Arrow output, made into columns a polars DataFrame holds.
//!
//! DuckDB exports every type it has to Arrow; most of them reach the host as they are,
//! without a copy (numbers, strings as views, dates, times, timestamps with their zone,
//! DECIMAL, HUGEINT as `Decimal128(38, 0)`, UUID as text, BLOB, LIST, STRUCT). A few Arrow
//! types have no polars column, and this module turns them into one, choosing what
//! Python's `duckdb` `.pl()` gives for the same query:
//!
//! | DuckDB            | Arrow from DuckDB         | to the host                           |
//! |-------------------|---------------------------|---------------------------------------|
//! | ENUM              | `Dictionary(UInt*, Utf8)` | `Utf8View` (the labels)               |
//! | INTERVAL          | `Interval(MonthDayNano)`  | `Duration(µs)`, a month as 30 days    |
//! | MAP               | `Map(entries)`            | `List(Struct{key, value})` (no copy)  |
//! | ARRAY (`INT[3]`)  | `FixedSizeList`           | `List` (values not copied)            |
//!
//! Some DuckDB types reach Arrow in a form that would be a wrong value in a DataFrame, so
//! they are recognized by their DuckDB type ([`Special`]): BIT arrives as DuckDB's own
//! bytes and becomes its `"0101"` text (what Python's `duckdb` returns); a UHUGEINT past
//! HUGEINT's range would arrive negative.
//!
//! What cannot be held is an error that names the column and the `CAST` to write: a
//! HUGEINT beyond 38 digits, a UHUGEINT beyond HUGEINT, UNION, TIME WITH TIME ZONE (its
//! Arrow form drops the offset), BIGNUM, and BIT, UHUGEINT, TIMETZ or BIGNUM inside a
//! nested column. Nothing is silently changed otherwise.
//! Columns that need nothing are passed through untouched: the fast path checks the
//! schema once per read.

use std::sync::Arc;

use duckdb::arrow::array::{
    Array, ArrayRef, AsArray, DurationMicrosecondArray, FixedSizeListArray, ListArray, StructArray,
};
use duckdb::arrow::buffer::OffsetBuffer;
use duckdb::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, IntervalMonthDayNanoType, IntervalUnit, Schema, SchemaRef,
    TimeUnit,
};
use duckdb::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use plugboard_api::PluginError;

/// A month, as Python's `duckdb` (and DuckDB's own `epoch_us`) counts it.
const DAYS_PER_MONTH: i64 = 30;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// What a column's DuckDB type says beyond its Arrow type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Special {
    Plain,
    /// BIT: DuckDB's bytes (a padding count, then the bits), made into `"0101"` text.
    Bit,
    /// UHUGEINT: exported as `Decimal128(38, 0)`, so a value past `i128::MAX` would come
    /// out negative; such a value is an error.
    UHugeint,
    /// A type no DataFrame column holds as DuckDB exports it: why, and the cast to write.
    Refused(String),
}

/// What DuckDB's type of a result column means for its Arrow form.
pub fn special(ty: &LogicalTypeHandle) -> Special {
    match ty.id() {
        LogicalTypeId::Bit => Special::Bit,
        LogicalTypeId::UHugeint => Special::UHugeint,
        _ => match unheld(ty, true) {
            Some(why) => Special::Refused(why),
            None => Special::Plain,
        },
    }
}

/// Why a type (or one inside it) cannot reach a DataFrame correctly.
fn unheld(ty: &LogicalTypeHandle, top: bool) -> Option<String> {
    let nested = |name: &str| {
        format!("{name} inside a nested column has no DataFrame type; CAST the column to VARCHAR")
    };
    match ty.id() {
        LogicalTypeId::TimeTZ if top => Some(
            "TIME WITH TIME ZONE loses its offset in Arrow; CAST it to VARCHAR (keeps the offset) or to TIME"
                .into(),
        ),
        LogicalTypeId::Bignum if top => {
            Some("BIGNUM has no Arrow type; CAST it to VARCHAR, HUGEINT or DOUBLE".into())
        }
        LogicalTypeId::TimeTZ => Some(nested("TIME WITH TIME ZONE")),
        LogicalTypeId::Bignum => Some(nested("BIGNUM")),
        LogicalTypeId::Bit if !top => Some(nested("BIT")),
        LogicalTypeId::UHugeint if !top => Some(nested("UHUGEINT")),
        LogicalTypeId::List
        | LogicalTypeId::Array
        | LogicalTypeId::Struct
        | LogicalTypeId::Map
        | LogicalTypeId::Union => (0..ty.num_children()).find_map(|i| unheld(&ty.child(i), false)),
        _ => None,
    }
}

/// How a read's batches are brought to the host's types.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The schema the host sees.
    pub schema: SchemaRef,
    /// Whether any column changes (else batches pass through as DuckDB made them).
    changes: bool,
    /// Columns that can hold a value wider than their Arrow type: checked batch by batch.
    checks_decimals: bool,
    /// Per column: what its DuckDB type means (BIT, UHUGEINT).
    specials: Vec<Special>,
}

impl Conversion {
    /// The conversion for a result of DuckDB's `schema` whose columns' DuckDB types say
    /// `specials` (one per column; missing ones are plain); a column no conversion can
    /// hold is an error naming it.
    pub fn for_schema(schema: &SchemaRef, specials: &[Special]) -> Result<Self, PluginError> {
        let mut changes = false;
        let mut checks_decimals = false;
        let specials: Vec<Special> = (0..schema.fields().len())
            .map(|i| specials.get(i).cloned().unwrap_or(Special::Plain))
            .collect();
        let fields = schema
            .fields()
            .iter()
            .zip(&specials)
            .map(|(f, special)| {
                let column =
                    |why: String| PluginError::query(format!("column {:?}: {why}", f.name()));
                let target = match special {
                    Special::Refused(why) => return Err(column(why.clone())),
                    Special::Bit => DataType::Utf8View,
                    _ => target_type(f.data_type()).map_err(column)?,
                };
                changes |= &target != f.data_type();
                checks_decimals |= has_decimal128(&target);
                Ok(Arc::new(
                    Field::new(f.name(), target, f.is_nullable())
                        .with_metadata(f.metadata().clone()),
                ))
            })
            .collect::<Result<Vec<FieldRef>, PluginError>>()?;
        Ok(Self {
            schema: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
            changes,
            checks_decimals,
            specials,
        })
    }

    /// One batch in the host's types.
    pub fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, PluginError> {
        let fields = self.schema.fields().iter().zip(&self.specials);
        let at = |field: &FieldRef| {
            let name = field.name().clone();
            move |why: String| PluginError::query(format!("column {name:?}: {why}"))
        };
        if self.checks_decimals {
            for ((field, special), column) in fields.clone().zip(batch.columns()) {
                check_decimals(column.as_ref(), *special == Special::UHugeint)
                    .map_err(at(field))?;
            }
        }
        if !self.changes {
            return Ok(batch);
        }
        let rows = batch.num_rows();
        let columns = fields
            .zip(batch.columns())
            .map(|((field, special), column)| {
                match special {
                    Special::Bit => bits_to_text(column),
                    _ => convert(column, field.data_type()),
                }
                .map_err(at(field))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| PluginError::internal(format!("cannot rebuild a batch: {e}")))
    }
}

/// The type a column of `dtype` reaches the host as, or why it cannot.
fn target_type(dtype: &DataType) -> Result<DataType, String> {
    Ok(match dtype {
        DataType::Dictionary(_, values) => match values.as_ref() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8View,
            other => return Err(format!("a dictionary of {other} has no DataFrame type")),
        },
        DataType::Interval(_) => DataType::Duration(TimeUnit::Microsecond),
        DataType::Map(entries, _) => DataType::List(field_of(entries)?),
        DataType::FixedSizeList(item, _) | DataType::List(item) => DataType::List(field_of(item)?),
        DataType::LargeList(item) => DataType::LargeList(field_of(item)?),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(field_of)
                .collect::<Result<Fields, String>>()?,
        ),
        DataType::Union(..) => {
            return Err("UNION has no DataFrame type; CAST it to VARCHAR, or select one member with union_extract(col, 'tag')".into());
        }
        DataType::Float16 => DataType::Float32,
        DataType::Decimal256(..) => {
            return Err("a decimal wider than 38 digits has no DataFrame type; CAST it to VARCHAR or DOUBLE".into());
        }
        other => other.clone(),
    })
}

fn field_of(field: &FieldRef) -> Result<FieldRef, String> {
    let target = target_type(field.data_type())?;
    if &target == field.data_type() {
        return Ok(Arc::clone(field));
    }
    Ok(Arc::new(
        Field::new(field.name(), target, field.is_nullable())
            .with_metadata(field.metadata().clone()),
    ))
}

fn has_decimal128(dtype: &DataType) -> bool {
    match dtype {
        DataType::Decimal128(..) => true,
        DataType::List(f) | DataType::LargeList(f) => has_decimal128(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_decimal128(f.data_type())),
        _ => false,
    }
}

/// A HUGEINT is exported as `Decimal128(38, 0)`, but it holds 39 digits: a value beyond
/// 38 is refused here, naming the cast, rather than by the host.
fn check_decimals(array: &dyn Array, unsigned: bool) -> Result<(), String> {
    match array.data_type() {
        DataType::Decimal128(precision, _) => {
            let array = array.as_primitive::<duckdb::arrow::datatypes::Decimal128Type>();
            if unsigned && array.iter().flatten().any(|v| v < 0) {
                return Err(format!(
                    "a UHUGEINT past {} (the largest Arrow's Decimal128 holds); CAST it to VARCHAR or DOUBLE",
                    i128::MAX
                ));
            }
            let max = 10_i128.pow(u32::from(*precision)) - 1;
            if let Some(v) = array.iter().flatten().find(|v| !(-max..=max).contains(v)) {
                return Err(format!(
                    "{v} has more than {precision} digits, more than Arrow's Decimal128 holds (a HUGEINT?); CAST it to VARCHAR or DOUBLE"
                ));
            }
            Ok(())
        }
        DataType::List(_) => check_decimals(array.as_list::<i32>().values().as_ref(), false),
        DataType::LargeList(_) => check_decimals(array.as_list::<i64>().values().as_ref(), false),
        DataType::Struct(_) => array
            .as_struct()
            .columns()
            .iter()
            .try_for_each(|c| check_decimals(c.as_ref(), false)),
        _ => Ok(()),
    }
}

/// BIT values as their text, `"0101"`: DuckDB stores a padding count in the first byte,
/// then the bits, the first byte's top `padding` bits unused.
fn bits_to_text(array: &ArrayRef) -> Result<ArrayRef, String> {
    let values: Vec<Option<&[u8]>> = match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => array.as_binary::<i64>().iter().collect(),
        DataType::BinaryView => array.as_binary_view().iter().collect(),
        other => return Err(format!("a BIT column arrived as {other}")),
    };
    let mut out = duckdb::arrow::array::StringViewBuilder::with_capacity(values.len());
    let mut text = String::new();
    for v in values {
        let Some(bytes) = v else {
            out.append_null();
            continue;
        };
        let Some((&padding, data)) = bytes.split_first() else {
            return Err("an empty BIT value".into());
        };
        text.clear();
        for (i, byte) in data.iter().enumerate() {
            let skip = if i == 0 {
                usize::from(padding).min(8)
            } else {
                0
            };
            for bit in (0..8 - skip).rev() {
                text.push(if (byte >> bit) & 1 == 1 { '1' } else { '0' });
            }
        }
        out.append_value(&text);
    }
    Ok(Arc::new(out.finish()))
}

/// `array` as `target` (from [`target_type`] of its type).
fn convert(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    match (array.data_type(), target) {
        (DataType::Dictionary(..), _) => duckdb::arrow::compute::cast(array, target)
            .map_err(|e| format!("cannot turn ENUM labels into text: {e}")),
        (DataType::Interval(IntervalUnit::MonthDayNano), _) => interval_to_duration(array),
        (DataType::Interval(unit), _) => {
            let as_mdn = duckdb::arrow::compute::cast(
                array,
                &DataType::Interval(IntervalUnit::MonthDayNano),
            )
            .map_err(|e| format!("cannot read an interval of {unit:?}: {e}"))?;
            interval_to_duration(&as_mdn)
        }
        (DataType::Map(..), DataType::List(item)) => {
            let map = array.as_map();
            let entries: ArrayRef = Arc::new(map.entries().clone());
            let values = convert(&entries, item.data_type())?;
            Ok(Arc::new(ListArray::new(
                Arc::clone(item),
                map.offsets().clone(),
                values,
                map.nulls().cloned(),
            )))
        }
        (DataType::FixedSizeList(_, size), DataType::List(item)) => {
            let list: &FixedSizeListArray = array.as_fixed_size_list();
            let size = usize::try_from(*size).map_err(|_| "a negative ARRAY size".to_owned())?;
            let values = convert(list.values(), item.data_type())?;
            let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(size, list.len()));
            // A fixed-size list's values start at its own offset; slice them to match.
            let values = values.slice(list.offset() * size, list.len() * size);
            Ok(Arc::new(ListArray::new(
                Arc::clone(item),
                offsets,
                values,
                list.nulls().cloned(),
            )))
        }
        (DataType::List(_), DataType::List(item)) => {
            let list = array.as_list::<i32>();
            let values = convert(list.values(), item.data_type())?;
            Ok(Arc::new(ListArray::new(
                Arc::clone(item),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )))
        }
        (DataType::LargeList(_), DataType::LargeList(item)) => {
            let list = array.as_list::<i64>();
            let values = convert(list.values(), item.data_type())?;
            Ok(Arc::new(duckdb::arrow::array::LargeListArray::new(
                Arc::clone(item),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )))
        }
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let s = array.as_struct();
            let columns = s
                .columns()
                .iter()
                .zip(fields.iter())
                .map(|(c, f)| convert(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(
                StructArray::try_new_with_length(
                    fields.clone(),
                    columns,
                    s.nulls().cloned(),
                    s.len(),
                )
                .map_err(|e| format!("cannot rebuild a STRUCT: {e}"))?,
            ))
        }
        (DataType::Float16, DataType::Float32) => duckdb::arrow::compute::cast(array, target)
            .map_err(|e| format!("cannot widen a half float: {e}")),
        (from, to) => Err(format!("no conversion from {from} to {to}")),
    }
}

/// An INTERVAL as microseconds, a month counted as 30 days (as Python's `duckdb` turns it
/// into a `timedelta`); one too long for 64 bits of microseconds is an error.
fn interval_to_duration(array: &ArrayRef) -> Result<ArrayRef, String> {
    let intervals = array.as_primitive::<IntervalMonthDayNanoType>();
    let mut out = Vec::with_capacity(intervals.len());
    for (i, v) in intervals.values().iter().enumerate() {
        // A null slot holds whatever DuckDB left there.
        if intervals.is_null(i) {
            out.push(0);
            continue;
        }
        let micros = i64::from(v.months)
            .checked_mul(DAYS_PER_MONTH)
            .and_then(|d| d.checked_add(i64::from(v.days)))
            .and_then(|d| d.checked_mul(MICROS_PER_DAY))
            .and_then(|m| m.checked_add(v.nanoseconds / 1000));
        match micros {
            Some(m) => out.push(m),
            None => {
                return Err(format!(
                    "the INTERVAL of {} months {} days {} ns is longer than a DataFrame's duration holds; CAST it to VARCHAR",
                    v.months, v.days, v.nanoseconds
                ));
            }
        }
    }
    Ok(Arc::new(DurationMicrosecondArray::new(
        out.into(),
        intervals.nulls().cloned(),
    )))
}

/// For tests: a decimal column's values.
#[cfg(test)]
fn decimals(array: &ArrayRef) -> Vec<Option<i128>> {
    array
        .as_any()
        .downcast_ref::<duckdb::arrow::array::Decimal128Array>()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use duckdb::arrow::array::{
        Decimal128Array, DictionaryArray, Int32Array, Int64Builder, IntervalMonthDayNanoArray,
        MapBuilder, StringBuilder,
    };
    use duckdb::arrow::datatypes::{Int8Type, IntervalMonthDayNano};

    use super::*;

    fn run(column: ArrayRef) -> Result<ArrayRef, PluginError> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "c",
            column.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column]).expect("batch");
        let conv = Conversion::for_schema(&schema, &[])?;
        Ok(Arc::clone(conv.apply(batch)?.column(0)))
    }

    #[test]
    fn enums_become_their_labels() {
        let dict: DictionaryArray<Int8Type> = vec![Some("sad"), None, Some("ok"), Some("sad")]
            .into_iter()
            .collect();
        let out = run(Arc::new(dict)).expect("convert");
        let out = out.as_string_view();
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            [Some("sad"), None, Some("ok"), Some("sad")]
        );
    }

    #[test]
    fn intervals_count_a_month_as_thirty_days() {
        let iv = IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(1, 2, 3_000)),
            None,
        ]);
        let out = run(Arc::new(iv)).expect("convert");
        let out = out.as_primitive::<duckdb::arrow::datatypes::DurationMicrosecondType>();
        assert_eq!(out.value(0), 32 * MICROS_PER_DAY + 3);
        assert!(out.is_null(1));
        // What a null slot holds is not looked at.
        let garbage = IntervalMonthDayNanoArray::new(
            vec![IntervalMonthDayNano::new(i32::MAX, i32::MAX, i64::MAX)].into(),
            Some(duckdb::arrow::buffer::NullBuffer::new_null(1)),
        );
        let out = run(Arc::new(garbage)).expect("a null interval");
        assert!(out.is_null(0));
        let huge = IntervalMonthDayNanoArray::from(vec![IntervalMonthDayNano::new(i32::MAX, 0, 0)]);
        let e = run(Arc::new(huge)).expect_err("too long");
        assert!(e.message().starts_with("column \"c\": the INTERVAL"), "{e}");
    }

    #[test]
    fn maps_become_lists_of_entries_without_copying() {
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        b.keys().append_value("a");
        b.values().append_value(1);
        b.append(true).expect("entry");
        b.append(false).expect("null map");
        let map = b.finish();
        let keys_buffer = map.keys().to_data().buffers()[1].as_ptr();
        let out = run(Arc::new(map)).expect("convert");
        let list = out.as_list::<i32>();
        assert!(list.is_null(1));
        let entries = list.value(0);
        let entries = entries.as_struct();
        assert_eq!(entries.column(0).as_string::<i32>().value(0), "a");
        assert_eq!(
            list.values().as_struct().column(0).to_data().buffers()[1].as_ptr(),
            keys_buffer,
            "the keys are the map's own buffer"
        );
    }

    #[test]
    fn fixed_size_lists_become_lists() {
        let values = Int32Array::from(vec![1, 2, 3, 4, 5, 6]);
        let fsl = FixedSizeListArray::new(
            Arc::new(Field::new("item", DataType::Int32, true)),
            2,
            Arc::new(values),
            None,
        );
        let out = run(Arc::new(fsl.slice(1, 2))).expect("convert");
        let list = out.as_list::<i32>();
        assert_eq!(list.len(), 2);
        let first = list.value(0);
        assert_eq!(
            first
                .as_primitive::<duckdb::arrow::datatypes::Int32Type>()
                .values(),
            &[3, 4]
        );
    }

    #[test]
    fn a_hugeint_beyond_38_digits_names_the_cast() {
        let ok = Decimal128Array::from(vec![Some(10_i128.pow(38) - 1), None])
            .with_precision_and_scale(38, 0)
            .expect("decimal");
        let out = run(Arc::new(ok)).expect("38 digits fit");
        assert_eq!(decimals(&out)[0], Some(10_i128.pow(38) - 1));
        let big = Decimal128Array::from(vec![i128::MAX])
            .with_precision_and_scale(38, 0)
            .expect("decimal");
        let e = run(Arc::new(big)).expect_err("39 digits");
        assert!(e.message().contains("CAST it to VARCHAR"), "{e}");
        assert!(e.message().starts_with("column \"c\""), "{e}");
    }

    #[test]
    fn unions_are_refused_by_name() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "u",
            DataType::Union(
                duckdb::arrow::datatypes::UnionFields::try_new(
                    [0],
                    [Field::new("a", DataType::Int32, true)],
                )
                .expect("fields"),
                duckdb::arrow::datatypes::UnionMode::Sparse,
            ),
            true,
        )]));
        let e = Conversion::for_schema(&schema, &[]).expect_err("union");
        assert!(e.message().contains("column \"u\": UNION"), "{e}");
    }

    #[test]
    fn bits_become_their_text() {
        let bits = duckdb::arrow::array::BinaryArray::from(vec![
            Some(&[5u8, 0b1111_1101][..]),
            None,
            Some(&[0u8, 0b1010_0000, 1][..]),
        ]);
        let out = bits_to_text(&(Arc::new(bits) as ArrayRef)).expect("bits");
        assert_eq!(
            out.as_string_view().iter().collect::<Vec<_>>(),
            [Some("101"), None, Some("1010000000000001")]
        );
    }
}
