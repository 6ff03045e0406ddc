//! Stepping SQLite rows into Arrow record batches.
//!
//! SQLite is dynamically typed: a column's declared type is a hint, and any row may hold a
//! value of another storage class. Each column is built with a typed Arrow builder chosen by
//! the first value it sees (INTEGER→Int64, REAL→Float64, TEXT→Utf8View, BLOB→BinaryView).
//! When a later value disagrees, that batch's column falls back to a list of cells, and
//! once all rows are read every column gets the narrowest type that holds all its values
//! without loss:
//!
//! | values seen                          | Arrow type  |
//! |--------------------------------------|-------------|
//! | INTEGER only                         | Int64       |
//! | REAL, or INTEGER and REAL (ints ≤ 2⁵³) | Float64   |
//! | TEXT, or TEXT and numbers            | Utf8View (numbers as their exact text) |
//! | BLOB with anything else              | BinaryView (text as its bytes) |
//! | only NULLs, or no rows               | from the declared type, else Null |
//!
//! The common case, one storage class per column, involves no conversion at all.
//!
//! For a cached read the whole result is read before the stream is handed out, so the
//! schema is final before the first batch: the arrays are the same ones the host keeps
//! (zero-copy), so this costs no extra memory. A streamed read (an export) fixes the types
//! from its first batch instead and refuses a later value that would need another type.

use std::sync::Arc;

use plugboard_api::PluginError;
use plugboard_api::arrow_array::builder::{
    BinaryViewBuilder, Float64Builder, Int64Builder, StringViewBuilder,
};
use plugboard_api::arrow_array::{
    ArrayRef, BinaryViewArray, Float64Array, Int64Array, NullArray, RecordBatch,
    RecordBatchOptions, StringViewArray,
};
use plugboard_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use rusqlite::types::ValueRef;

/// Largest integer magnitude an f64 holds exactly.
const F64_EXACT: i64 = 1 << 53;

/// One value kept aside when a column's values disagree.
#[derive(Debug, Clone)]
enum Cell {
    Int(i64),
    Float(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A column of one batch while rows are stepped.
enum Builder {
    /// Only NULLs so far: just their count.
    Nulls(usize),
    Int(Int64Builder),
    Float(Float64Builder),
    /// TEXT values as bytes; checked for UTF-8 once per batch ([`crate::text`]).
    Text(BinaryViewBuilder),
    Blob(BinaryViewBuilder),
    Mixed(Vec<Option<Cell>>),
}

/// Storage classes seen in a column, across all batches.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    int: bool,
    float: bool,
    text: bool,
    blob: bool,
    big_int: bool,
}

impl Seen {
    /// What one finished column of a batch holds.
    fn of(column: &Column) -> Seen {
        let mut seen = Seen::default();
        match column {
            Column::Array(a) => {
                let any = a.as_any();
                let has_values = a.null_count() < a.len();
                if let Some(ints) = any.downcast_ref::<Int64Array>() {
                    seen.int = has_values;
                    // Nulls' slots hold zeros, which are in range.
                    seen.big_int = ints
                        .values()
                        .iter()
                        .any(|v| !(-F64_EXACT..=F64_EXACT).contains(v));
                } else if any.is::<Float64Array>() {
                    seen.float = has_values;
                } else if any.is::<StringViewArray>() {
                    seen.text = has_values;
                } else if any.is::<BinaryViewArray>() {
                    seen.blob = has_values;
                }
            }
            Column::Cells(cells) => {
                for cell in cells.iter().flatten() {
                    match cell {
                        Cell::Int(v) => {
                            seen.int = true;
                            seen.big_int |= !(-F64_EXACT..=F64_EXACT).contains(v);
                        }
                        Cell::Float(_) => seen.float = true,
                        Cell::Text(_) => seen.text = true,
                        Cell::Blob(_) => seen.blob = true,
                    }
                }
            }
        }
        seen
    }

    fn merge(&mut self, other: Seen) {
        self.int |= other.int;
        self.float |= other.float;
        self.text |= other.text;
        self.blob |= other.blob;
        self.big_int |= other.big_int;
    }

    fn final_type(self, declared: &DataType) -> DataType {
        if self.blob {
            DataType::BinaryView
        } else if self.text || (self.float && self.int && self.big_int) {
            DataType::Utf8View
        } else if self.float {
            DataType::Float64
        } else if self.int {
            DataType::Int64
        } else {
            declared.clone()
        }
    }
}

/// The type SQLite's affinity rules give a declared type (section 3.1 of "Datatypes In
/// SQLite"); used only for columns that hold no values.
pub fn declared_type(decl: Option<&str>) -> DataType {
    let Some(decl) = decl else {
        return DataType::Null;
    };
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") {
        DataType::Int64
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        DataType::Utf8View
    } else if d.contains("BLOB") || d.is_empty() {
        DataType::BinaryView
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        DataType::Float64
    } else {
        // NUMERIC affinity: integers when they fit, reals otherwise.
        DataType::Float64
    }
}

impl Builder {
    fn for_value(value: ValueRef<'_>, capacity: usize, nulls: usize) -> Self {
        let mut b = match value {
            ValueRef::Null => return Builder::Nulls(nulls + 1),
            ValueRef::Integer(_) => Builder::Int(Int64Builder::with_capacity(capacity)),
            ValueRef::Real(_) => Builder::Float(Float64Builder::with_capacity(capacity)),
            ValueRef::Text(_) => Builder::Text(BinaryViewBuilder::with_capacity(capacity)),
            ValueRef::Blob(_) => Builder::Blob(BinaryViewBuilder::with_capacity(capacity)),
        };
        for _ in 0..nulls {
            b.push_null();
        }
        b
    }

    fn push_null(&mut self) {
        match self {
            Builder::Nulls(n) => *n += 1,
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Blob(b) => b.append_null(),
            Builder::Mixed(cells) => cells.push(None),
        }
    }

    /// Appends a value; the hot path of every read. Which storage classes a column held is
    /// worked out once per batch from the finished column ([`Seen::of`]), not per value.
    #[inline(always)]
    fn push(&mut self, value: ValueRef<'_>, capacity: usize) {
        match (&mut *self, value) {
            (Builder::Int(b), ValueRef::Integer(v)) => b.append_value(v),
            (Builder::Float(b), ValueRef::Real(v)) => b.append_value(v),
            (Builder::Text(b), ValueRef::Text(t)) => b.append_value(t),
            (Builder::Blob(b), ValueRef::Blob(v)) => b.append_value(v),
            _ => self.push_other(value, capacity),
        }
    }

    /// A NULL, the first value of a column, or a value of another storage class.
    #[inline(never)]
    fn push_other(&mut self, value: ValueRef<'_>, capacity: usize) {
        match (&mut *self, value) {
            (_, ValueRef::Null) => self.push_null(),
            (Builder::Nulls(n), v) => {
                *self = Builder::for_value(v, capacity, *n);
                self.push(v, capacity);
            }
            _ => self.push_mixed(value),
        }
    }

    /// The column's values disagree: keep every value as a cell from here on.
    fn push_mixed(&mut self, value: ValueRef<'_>) {
        if !matches!(self, Builder::Mixed(_)) {
            let old = std::mem::replace(self, Builder::Mixed(Vec::new()));
            *self = Builder::Mixed(old.into_cells());
        }
        if let Builder::Mixed(cells) = self {
            cells.push(Some(to_cell(value)));
        }
    }

    fn into_cells(self) -> Vec<Option<Cell>> {
        match self.finish() {
            Column::Cells(c) => c,
            Column::Array(a) => array_cells(&a),
        }
    }

    fn finish(self) -> Column {
        match self {
            Builder::Nulls(n) => Column::Cells(vec![None; n]),
            Builder::Int(mut b) => Column::Array(Arc::new(b.finish())),
            Builder::Float(mut b) => Column::Array(Arc::new(b.finish())),
            Builder::Text(mut b) => Column::Array(crate::text::text_column(b.finish())),
            Builder::Blob(mut b) => Column::Array(Arc::new(b.finish())),
            Builder::Mixed(c) => Column::Cells(c),
        }
    }
}

fn to_cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Integer(v) => Cell::Int(v),
        ValueRef::Real(v) => Cell::Float(v),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Cell::Text(s.to_owned()),
            Err(_) => Cell::Blob(t.to_vec()),
        },
        ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
        ValueRef::Null => Cell::Blob(Vec::new()), // not reached: NULLs are pushed as None
    }
}

/// A finished column of one batch.
enum Column {
    Array(ArrayRef),
    Cells(Vec<Option<Cell>>),
}

fn array_cells(a: &ArrayRef) -> Vec<Option<Cell>> {
    let any = a.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        a.iter().map(|v| v.map(Cell::Int)).collect()
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        a.iter().map(|v| v.map(Cell::Float)).collect()
    } else if let Some(a) = any.downcast_ref::<StringViewArray>() {
        a.iter()
            .map(|v| v.map(|s| Cell::Text(s.to_owned())))
            .collect()
    } else if let Some(a) = any.downcast_ref::<BinaryViewArray>() {
        a.iter()
            .map(|v| v.map(|b| Cell::Blob(b.to_vec())))
            .collect()
    } else {
        vec![None; a.len()]
    }
}

fn cell_text(c: &Cell) -> std::borrow::Cow<'_, str> {
    match c {
        Cell::Int(v) => v.to_string().into(),
        // Rust prints the shortest text that parses back to the same f64.
        Cell::Float(v) => format!("{v:?}").into(),
        Cell::Text(s) => s.as_str().into(),
        Cell::Blob(b) => String::from_utf8_lossy(b),
    }
}

fn cell_bytes(c: &Cell) -> std::borrow::Cow<'_, [u8]> {
    match c {
        Cell::Blob(b) => b.as_slice().into(),
        Cell::Text(s) => s.as_bytes().into(),
        other => cell_text(other).into_owned().into_bytes().into(),
    }
}

/// Converts a column to its final type; a typed array of that type passes through as is.
fn convert(column: Column, to: &DataType) -> ArrayRef {
    let cells = match column {
        Column::Array(a) if a.data_type() == to => return a,
        Column::Array(a) => array_cells(&a),
        Column::Cells(c) => c,
    };
    match to {
        DataType::Int64 => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Some(Cell::Int(v)) => Some(*v),
                    _ => None,
                })
                .collect::<Int64Array>(),
        ),
        DataType::Float64 => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Some(Cell::Int(v)) => Some(*v as f64),
                    Some(Cell::Float(v)) => Some(*v),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        DataType::Utf8View => {
            let mut b = StringViewBuilder::with_capacity(cells.len());
            for c in &cells {
                match c {
                    Some(c) => b.append_value(cell_text(c)),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::BinaryView => {
            let mut b = BinaryViewBuilder::with_capacity(cells.len());
            for c in &cells {
                match c {
                    Some(c) => b.append_value(cell_bytes(c)),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        _ => Arc::new(NullArray::new(cells.len())),
    }
}

/// Steps a statement's rows into batches of typed columns, one batch at a time.
struct Stepper {
    names: Vec<String>,
    declared: Vec<DataType>,
    batch_size: usize,
    /// Rows the builders reserve room for up front: the batch size, up to the default
    /// one (a caller's `usize::MAX` rows per batch was a capacity-overflow panic).
    capacity: usize,
    /// Rows still to read (the limit).
    left: u64,
    /// Storage classes seen in each column, across every batch so far.
    seen: Vec<Seen>,
}

impl Stepper {
    fn new(stmt: &rusqlite::Statement<'_>, batch_size: usize, limit: Option<u64>) -> Self {
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let declared = stmt
            .columns()
            .map(|c| declared_type(c.decl_type()))
            .collect();
        Self {
            seen: vec![Seen::default(); names.len()],
            names,
            declared,
            batch_size: batch_size.max(1),
            capacity: batch_size.clamp(1, crate::DEFAULT_BATCH_SIZE),
            left: limit.unwrap_or(u64::MAX),
        }
    }

    /// The next batch: its row count and columns; `None` after the last row.
    fn next(
        &mut self,
        rows: &mut rusqlite::Rows<'_>,
    ) -> Result<Option<(usize, Vec<Column>)>, PluginError> {
        let mut builders: Vec<Builder> = (0..self.names.len()).map(|_| Builder::Nulls(0)).collect();
        let mut n = 0usize;
        while n < self.batch_size && self.left > 0 {
            let Some(row) = rows.next().map_err(query_error)? else {
                self.left = 0;
                break;
            };
            for (i, b) in builders.iter_mut().enumerate() {
                // `get_ref_unwrap` panics only on an index past the last column, which `i`
                // never is; `get_ref`'s large `Result` cost a fifth of this loop (perf).
                b.push(row.get_ref_unwrap(i), self.capacity);
            }
            n += 1;
            self.left -= 1;
        }
        if n == 0 {
            return Ok(None);
        }
        let columns: Vec<Column> = builders.into_iter().map(Builder::finish).collect();
        for (seen, column) in self.seen.iter_mut().zip(&columns) {
            seen.merge(Seen::of(column));
        }
        Ok(Some((n, columns)))
    }

    /// Each column's type given every value seen so far.
    fn types(&self) -> Vec<DataType> {
        self.seen
            .iter()
            .zip(&self.declared)
            .map(|(s, d)| s.final_type(d))
            .collect()
    }

    fn schema(&self, types: &[DataType]) -> SchemaRef {
        Arc::new(Schema::new(
            self.names
                .iter()
                .zip(types)
                .map(|(n, t)| Field::new(n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

/// One batch with its columns converted to the schema's types.
fn assemble(
    schema: &SchemaRef,
    rows: usize,
    columns: Vec<Column>,
) -> Result<RecordBatch, PluginError> {
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| convert(c, f.data_type()))
        .collect();
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| PluginError::internal(format!("building a batch: {e}")))
}

/// Reads every row of a prepared, bound statement into record batches. The whole result
/// is read first, so every column gets the narrowest type that holds all its values.
pub fn read_batches(
    stmt: &mut rusqlite::Statement<'_>,
    batch_size: usize,
    limit: Option<u64>,
) -> Result<(SchemaRef, Vec<RecordBatch>), PluginError> {
    let mut stepper = Stepper::new(stmt, batch_size, limit);
    let mut rows = stmt.raw_query();
    let mut batches = Vec::new();
    while let Some(batch) = stepper.next(&mut rows)? {
        batches.push(batch);
    }
    let schema = stepper.schema(&stepper.types());
    let out = batches
        .into_iter()
        .map(|(n, columns)| assemble(&schema, n, columns))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((schema, out))
}

/// Reads a prepared, bound statement batch by batch, handing each to `send` as soon as it
/// is read, so memory stays flat. The first batch fixes the schema (by the same rules as
/// [`read_batches`], from its rows and the declared types); a later value that the fixed
/// type cannot hold without loss is an error naming the column, never a silent change.
pub fn stream_batches(
    stmt: &mut rusqlite::Statement<'_>,
    batch_size: usize,
    limit: Option<u64>,
    mut send: impl FnMut(SchemaRef, Option<RecordBatch>) -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    let mut stepper = Stepper::new(stmt, batch_size, limit);
    let mut rows = stmt.raw_query();
    let first = stepper.next(&mut rows)?;
    let fixed = stepper.types();
    let schema = stepper.schema(&fixed);
    let Some((n, columns)) = first else {
        return send(schema, None);
    };
    let fixed_by = n;
    let mut read = n as u64;
    send(Arc::clone(&schema), Some(assemble(&schema, n, columns)?))?;
    while let Some((n, columns)) = stepper.next(&mut rows)? {
        let now = stepper.types();
        if let Some(i) = (0..fixed.len()).find(|&i| now[i] != fixed[i]) {
            return Err(PluginError::query(format!(
                "column {:?}: rows {}..{} need {:?}, but the first {} rows fixed it as {:?} \
                 for this streamed read; CAST the column in the query",
                stepper.names[i],
                read + 1,
                read + n as u64,
                now[i],
                fixed_by,
                fixed[i],
            )));
        }
        read += n as u64;
        send(Arc::clone(&schema), Some(assemble(&schema, n, columns)?))?;
    }
    Ok(())
}

pub fn query_error(e: rusqlite::Error) -> PluginError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
        return PluginError::cancelled("the statement was cancelled (interrupted)");
    }
    PluginError::query(e.to_string())
}
