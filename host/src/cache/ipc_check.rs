//! What polars' `mmap_unchecked` takes on trust, checked on an entry's bytes before they
//! are mapped.
//!
//! A disk or Redis entry's payload is an Arrow IPC file. Its checksum proves the bytes are
//! the ones their writer recorded, but xxh3 is not keyed: it proves nothing against a
//! writer that records a checksum of its own, such as anyone who can write to the shared
//! Redis or into the user's cache folder. polars maps each buffer where the file says it
//! is and builds the arrays through its C-interface import, which bounds-checks where a
//! buffer starts but not how much of it the array then reads: a validity bitmap or a
//! boolean array shorter than its length, a text array's last offset past its values, a
//! view past its data buffer, a list offset past its child, a dictionary key past its
//! values, or a null count that is not the bitmap's (polars sizes buffers by it) all
//! become reads out of bounds, in release builds silently.
//!
//! So [`check_ipc_file`] walks every dictionary and record batch in the order polars'
//! mapper consumes their nodes and buffers, and checks each array against the lengths of
//! the buffers that hold it, with overflow-checked arithmetic (polars multiplies lengths
//! unchecked): buffers long enough for their array; validity bitmaps whose unset bits are
//! the node's null count; offsets that start at zero or more, never decrease and end within
//! their values or child; text that is UTF-8, split only at character boundaries; views
//! within their data buffers, with matching prefixes and zeroed inline padding; list
//! children long enough for the offsets, fixed-size children for their size, struct children
//! for their parent; dictionary keys within their dictionary. A type polars cannot map is
//! refused too. Every refusal is a reason string: the entry is a miss.
//!
//! Everything here is safe code that reads the bytes as bytes; the cost is one pass over
//! offsets, views, keys and bitmaps, and a UTF-8 check of text (skipped for a data buffer
//! that is all ASCII).

use std::collections::HashMap;

use polars_arrow::bitmap::utils::count_zeros;
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, Field, IntegerType, PhysicalType};
use polars_arrow::io::ipc::IpcField;
use polars_arrow::io::ipc::format::ipc::planus::ReadAsRoot;
use polars_arrow::io::ipc::format::ipc::{Block, MessageHeaderRef, MessageRef, RecordBatchRef};
use polars_arrow::io::ipc::read::FileMetadata;

type Check<T = ()> = Result<T, String>;

/// Dictionary id → the length of its values, as the dictionary batches declared and the
/// walk checked them.
type Dictionaries = HashMap<i64, usize>;

/// Checks every batch of the IPC file `bytes`, whose footer is `metadata`, against what
/// polars' mapper assumes (see the module docs).
pub(crate) fn check_ipc_file(bytes: &[u8], metadata: &FileMetadata) -> Check {
    let schema = metadata.schema.as_ref();
    let ipc_fields = &metadata.ipc_schema.fields;
    if schema.len() != ipc_fields.len() {
        return Err(format!(
            "the schema has {} fields and its IPC description {}",
            schema.len(),
            ipc_fields.len()
        ));
    }
    let mut dictionaries = Dictionaries::new();
    for (i, block) in metadata.dictionaries.iter().flatten().enumerate() {
        let (message, body) =
            read_message(bytes, block).map_err(|e| format!("dictionary {i}: {e}"))?;
        let (id, len) = check_dictionary(bytes, message, body, schema, ipc_fields, &dictionaries)
            .map_err(|e| format!("dictionary {i}: {e}"))?;
        dictionaries.insert(id, len);
    }
    for (i, block) in metadata.blocks.iter().enumerate() {
        let (message, body) = read_message(bytes, block).map_err(|e| format!("batch {i}: {e}"))?;
        check_record_batch(bytes, message, body, schema, ipc_fields, &dictionaries)
            .map_err(|e| format!("batch {i}: {e}"))?;
    }
    Ok(())
}

fn check_dictionary(
    bytes: &[u8],
    message: MessageRef<'_>,
    body: usize,
    schema: &ArrowSchema,
    ipc_fields: &[IpcField],
    dictionaries: &Dictionaries,
) -> Check<(i64, usize)> {
    let Some(MessageHeaderRef::DictionaryBatch(batch)) = message.header().map_err(fb)? else {
        return Err("not a dictionary batch".to_owned());
    };
    // Our writer never writes deltas; polars' mapper would replace the values with one.
    if batch.is_delta().map_err(fb)? {
        return Err("a delta dictionary".to_owned());
    }
    let id = batch.id().map_err(fb)?;
    let (field, ipc_field) = schema
        .iter_values()
        .zip(ipc_fields)
        .find_map(|(field, ipc)| dictionary_field(id, field, ipc))
        .ok_or_else(|| format!("no field has dictionary {id}"))?;
    let ArrowDataType::Dictionary(_, values, _) = field.dtype.to_storage() else {
        return Err(format!("dictionary {id}'s field is not a dictionary"));
    };
    let data = batch.data().map_err(fb)?.ok_or("no data")?;
    let mut walk = Walk::new(bytes, body, data, dictionaries)?;
    // As polars maps it: the values' type, under the dictionary field's own IPC field.
    let len = walk.array(values, ipc_field)?;
    Ok((id, len))
}

fn check_record_batch(
    bytes: &[u8],
    message: MessageRef<'_>,
    body: usize,
    schema: &ArrowSchema,
    ipc_fields: &[IpcField],
    dictionaries: &Dictionaries,
) -> Check {
    let Some(MessageHeaderRef::RecordBatch(batch)) = message.header().map_err(fb)? else {
        return Err("not a record batch".to_owned());
    };
    let rows = usize::try_from(batch.length().map_err(fb)?).map_err(|_| "negative length")?;
    let mut walk = Walk::new(bytes, body, batch, dictionaries)?;
    for (field, ipc) in schema.iter_values().zip(ipc_fields) {
        let len = walk
            .array(&field.dtype, ipc)
            .map_err(|e| format!("column {:?}: {e}", field.name))?;
        if len != rows {
            return Err(format!(
                "column {:?} has {len} rows of the batch's {rows}",
                field.name
            ));
        }
    }
    Ok(())
}

/// The field, at any depth, that holds dictionary `id`, as polars' mapper finds it.
fn dictionary_field<'a>(
    id: i64,
    field: &'a Field,
    ipc: &'a IpcField,
) -> Option<(&'a Field, &'a IpcField)> {
    if ipc.dictionary_id == Some(id) {
        return Some((field, ipc));
    }
    let mut dtype = field.dtype.to_storage();
    while let ArrowDataType::Dictionary(_, values, _) = dtype {
        dtype = values.to_storage();
    }
    match dtype {
        ArrowDataType::List(child)
        | ArrowDataType::LargeList(child)
        | ArrowDataType::FixedSizeList(child, _)
        | ArrowDataType::Map(child, _) => dictionary_field(id, child, ipc.fields.first()?),
        ArrowDataType::Struct(children) => children
            .iter()
            .zip(&ipc.fields)
            .find_map(|(child, ipc)| dictionary_field(id, child, ipc)),
        _ => None,
    }
}

/// The message a block points at, and where its body starts, as polars reads them, but
/// with every bound checked.
fn read_message<'a>(bytes: &'a [u8], block: &Block) -> Check<(MessageRef<'a>, usize)> {
    let offset = usize::try_from(block.offset).map_err(|_| "negative block offset")?;
    let meta = usize::try_from(block.meta_data_length).map_err(|_| "negative metadata length")?;
    let body = offset.checked_add(meta).ok_or("block out of bounds")?;
    let mut at = offset;
    let mut length = le_u32(bytes, at).ok_or("block out of bounds")?;
    if length == u32::MAX {
        // The continuation marker, then the length.
        at += 4;
        length = le_u32(bytes, at).ok_or("block out of bounds")?;
    }
    let length = usize::try_from(i32::from_le_bytes(length.to_le_bytes()))
        .map_err(|_| "negative message length")?;
    let start = at + 4;
    let message = start
        .checked_add(length)
        .and_then(|end| bytes.get(start..end))
        .ok_or("message out of bounds")?;
    let message = MessageRef::read_as_root(message).map_err(fb)?;
    Ok((message, body))
}

fn fb(e: impl std::fmt::Display) -> String {
    format!("malformed IPC message: {e}")
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Bytes a bitmap of `bits` bits takes.
fn bitmap_bytes(bits: usize) -> usize {
    bits.div_ceil(8)
}

/// One batch's nodes and buffers, consumed in order.
struct Walk<'a> {
    bytes: &'a [u8],
    body: usize,
    nodes: std::vec::IntoIter<(i64, i64)>,
    buffers: std::vec::IntoIter<(i64, i64)>,
    variadic: std::vec::IntoIter<i64>,
    dictionaries: &'a Dictionaries,
}

impl<'a> Walk<'a> {
    fn new(
        bytes: &'a [u8],
        body: usize,
        batch: RecordBatchRef<'_>,
        dictionaries: &'a Dictionaries,
    ) -> Check<Self> {
        if batch.compression().map_err(fb)?.is_some() {
            return Err("compressed".to_owned());
        }
        let nodes = batch
            .nodes()
            .map_err(fb)?
            .ok_or("no nodes")?
            .iter()
            .map(|n| (n.length(), n.null_count()))
            .collect::<Vec<_>>();
        let buffers = batch
            .buffers()
            .map_err(fb)?
            .ok_or("no buffers")?
            .iter()
            .map(|b| (b.offset(), b.length()))
            .collect::<Vec<_>>();
        let variadic = match batch.variadic_buffer_counts().map_err(fb)? {
            Some(counts) => counts.iter().collect(),
            None => Vec::new(),
        };
        Ok(Self {
            bytes,
            body,
            nodes: nodes.into_iter(),
            buffers: buffers.into_iter(),
            variadic: variadic.into_iter(),
            dictionaries,
        })
    }

    /// The next node: its length and null count.
    fn node(&mut self) -> Check<(usize, usize)> {
        let (len, nulls) = self.nodes.next().ok_or("fewer nodes than fields")?;
        let len = usize::try_from(len).map_err(|_| "negative length")?;
        let nulls = usize::try_from(nulls).map_err(|_| "negative null count")?;
        if nulls > len {
            return Err(format!("{nulls} nulls in {len} values"));
        }
        Ok((len, nulls))
    }

    /// The next buffer's bytes.
    fn buffer(&mut self) -> Check<&'a [u8]> {
        let (offset, len) = self
            .buffers
            .next()
            .ok_or("fewer buffers than arrays need")?;
        let offset = usize::try_from(offset).map_err(|_| "negative buffer offset")?;
        let len = usize::try_from(len).map_err(|_| "negative buffer length")?;
        let start = self
            .body
            .checked_add(offset)
            .ok_or("buffer out of bounds")?;
        start
            .checked_add(len)
            .and_then(|end| self.bytes.get(start..end))
            .ok_or_else(|| "buffer out of bounds".to_owned())
    }

    /// The next buffer, which must hold `count` items of `width` bytes: only those.
    fn sized(&mut self, count: usize, width: usize) -> Check<&'a [u8]> {
        let buffer = self.buffer()?;
        count
            .checked_mul(width)
            .and_then(|need| buffer.get(..need))
            .ok_or_else(|| format!("a buffer of {} bytes for {count} values", buffer.len()))
    }

    /// The validity buffer of an array of `len` values with `nulls` nulls (polars reads it
    /// only when there are nulls, and trusts the count).
    fn validity(&mut self, len: usize, nulls: usize) -> Check {
        let buffer = self.buffer()?;
        if nulls == 0 {
            return Ok(());
        }
        let bitmap = buffer.get(..bitmap_bytes(len)).ok_or_else(|| {
            format!(
                "a validity bitmap of {} bytes for {len} values",
                buffer.len()
            )
        })?;
        let unset = count_zeros(bitmap, 0, len);
        if unset != nulls {
            return Err(format!("{nulls} nulls declared, {unset} in the bitmap"));
        }
        Ok(())
    }

    /// Checks the next array, of type `dtype`, and returns its length.
    fn array(&mut self, dtype: &ArrowDataType, ipc: &IpcField) -> Check<usize> {
        let (len, nulls) = self.node()?;
        let storage = dtype.to_storage();
        let physical = dtype.to_physical_type();
        match physical {
            PhysicalType::Null => {}
            PhysicalType::Boolean => {
                self.validity(len, nulls)?;
                self.sized(bitmap_bytes(len), 1)?;
            }
            PhysicalType::Primitive(primitive) => {
                use polars_arrow::types::PrimitiveType as P;
                let width = match primitive {
                    P::Int8 | P::UInt8 => 1,
                    P::Int16 | P::UInt16 | P::Float16 => 2,
                    P::Int32 | P::UInt32 | P::Float32 => 4,
                    P::Int64 | P::UInt64 | P::Float64 => 8,
                    P::Int128 | P::UInt128 => 16,
                    // polars' mapper has no arm for these: it would panic.
                    other => return Err(format!("cannot map {other:?} values")),
                };
                self.validity(len, nulls)?;
                self.sized(len, width)?;
            }
            PhysicalType::Utf8
            | PhysicalType::Binary
            | PhysicalType::LargeUtf8
            | PhysicalType::LargeBinary => {
                self.validity(len, nulls)?;
                let offsets = match physical {
                    PhysicalType::Utf8 | PhysicalType::Binary => self.offsets::<4>(len)?,
                    _ => self.offsets::<8>(len)?,
                };
                let values = self.buffer()?;
                let utf8 = matches!(physical, PhysicalType::Utf8 | PhysicalType::LargeUtf8);
                check_text(&offsets, values, utf8)?;
            }
            PhysicalType::Utf8View | PhysicalType::BinaryView => {
                self.validity(len, nulls)?;
                let views = self.sized(len, 16)?;
                let count = self.variadic.next().ok_or("no variadic buffer count")?;
                let count = usize::try_from(count).map_err(|_| "negative variadic buffer count")?;
                let data = (0..count)
                    .map(|_| self.buffer())
                    .collect::<Check<Vec<_>>>()?;
                check_views(views, &data, physical == PhysicalType::Utf8View)?;
            }
            PhysicalType::FixedSizeBinary => {
                let ArrowDataType::FixedSizeBinary(size) = storage else {
                    return Err(format!("{dtype:?} is not fixed-size binary"));
                };
                self.validity(len, nulls)?;
                self.sized(len, *size)?;
            }
            PhysicalType::List | PhysicalType::LargeList => {
                let (ArrowDataType::List(child) | ArrowDataType::LargeList(child)) = storage else {
                    return Err(format!("{dtype:?} is not a list"));
                };
                self.validity(len, nulls)?;
                let offsets = if physical == PhysicalType::List {
                    self.offsets::<4>(len)?
                } else {
                    self.offsets::<8>(len)?
                };
                let child_len = self.array(&child.dtype, ipc.fields.first().ok_or("no child")?)?;
                check_offsets(&offsets, child_len)?;
            }
            PhysicalType::FixedSizeList => {
                let ArrowDataType::FixedSizeList(child, size) = storage else {
                    return Err(format!("{dtype:?} is not a fixed-size list"));
                };
                self.validity(len, nulls)?;
                let child_len = self.array(&child.dtype, ipc.fields.first().ok_or("no child")?)?;
                if len.checked_mul(*size).is_none_or(|need| child_len < need) {
                    return Err(format!(
                        "{child_len} child values for {len} lists of {size}"
                    ));
                }
            }
            PhysicalType::Struct => {
                let ArrowDataType::Struct(children) = storage else {
                    return Err(format!("{dtype:?} is not a struct"));
                };
                if children.len() != ipc.fields.len() {
                    return Err("struct fields and their IPC description differ".to_owned());
                }
                self.validity(len, nulls)?;
                for (child, ipc) in children.iter().zip(&ipc.fields) {
                    let child_len = self.array(&child.dtype, ipc)?;
                    if child_len < len {
                        return Err(format!(
                            "field {:?} has {child_len} of {len} values",
                            child.name
                        ));
                    }
                }
            }
            PhysicalType::Dictionary(key) => {
                let id = ipc.dictionary_id.ok_or("a dictionary without an id")?;
                let values = *self
                    .dictionaries
                    .get(&id)
                    .ok_or_else(|| format!("dictionary {id} is missing"))?;
                self.validity(len, nulls)?;
                check_keys(key, self.sized(len, key_width(key))?, values)?;
            }
            other => return Err(format!("cannot map {other:?} arrays")),
        }
        Ok(len)
    }

    /// The next buffer as the `len + 1` offsets of `len` values, `W` bytes each.
    fn offsets<const W: usize>(&mut self, len: usize) -> Check<Vec<i64>> {
        let count = len.checked_add(1).ok_or("too many values")?;
        let bytes = self.sized(count, W)?;
        Ok(bytes
            .chunks_exact(W)
            .map(|c| {
                let mut le = [0u8; 8];
                le[..W].copy_from_slice(c);
                if W == 4 {
                    i64::from(i32::from_le_bytes([le[0], le[1], le[2], le[3]]))
                } else {
                    i64::from_le_bytes(le)
                }
            })
            .collect())
    }
}

/// Offsets that start at zero or more, never decrease, and end within `end`.
fn check_offsets(offsets: &[i64], end: usize) -> Check {
    let first = offsets.first().copied().unwrap_or(0);
    if first < 0 {
        return Err(format!("a negative offset {first}"));
    }
    if let Some(w) = offsets.windows(2).find(|w| w[1] < w[0]) {
        return Err(format!("offsets decrease from {} to {}", w[0], w[1]));
    }
    let last = offsets.last().copied().unwrap_or(0);
    if usize::try_from(last).map_or(true, |last| last > end) {
        return Err(format!("an offset {last} past the end, {end}"));
    }
    Ok(())
}

/// Offsets into `values`, and for UTF-8 text, valid text cut only at char boundaries.
fn check_text(offsets: &[i64], values: &[u8], utf8: bool) -> Check {
    check_offsets(offsets, values.len())?;
    if !utf8 {
        return Ok(());
    }
    // In bounds and ordered, by the check above.
    let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
    let text = std::str::from_utf8(&values[first..last]).map_err(|_| "text that is not UTF-8")?;
    if offsets
        .iter()
        .any(|&o| !text.is_char_boundary(o as usize - first))
    {
        return Err("an offset inside a character".to_owned());
    }
    Ok(())
}

/// The longest text a view holds in itself.
const INLINE: usize = 12;

/// Views within their data buffers, with their prefix and zeroed inline padding; for
/// `Utf8View`, UTF-8. A hit of a million short strings checks a million views, so the
/// common cases cost a few instructions: inline ASCII text by a mask over the view, text in
/// an all-ASCII data buffer not at all.
fn check_views(views: &[u8], data: &[&[u8]], utf8: bool) -> Check {
    const HIGH_BITS: u128 = 0x8080_8080_8080_8080_8080_8080 << 32;
    let ascii: Vec<bool> = if utf8 {
        data.iter().map(|b| b.is_ascii()).collect()
    } else {
        Vec::new()
    };
    let text = |bytes: &[u8]| -> Check {
        std::str::from_utf8(bytes)
            .map(|_| ())
            .map_err(|_| "text that is not UTF-8".to_owned())
    };
    for view in views.chunks_exact(16) {
        let mut le = [0u8; 16];
        le.copy_from_slice(view);
        let v = u128::from_le_bytes(le);
        let len = (v as u32) as usize;
        if len <= INLINE {
            // The bytes past the text are zero (a shift by 128 would overflow: at 12 there
            // are none).
            if len < INLINE && v >> (32 + 8 * len) != 0 {
                return Err("a view with non-zero padding".to_owned());
            }
            if utf8 && v & HIGH_BITS != 0 {
                text(&view[4..4 + len])?;
            }
            continue;
        }
        let (index, offset) = ((v >> 64) as u32 as usize, (v >> 96) as u32 as usize);
        let buffer = data
            .get(index)
            .ok_or_else(|| format!("a view into buffer {index} of {}", data.len()))?;
        let bytes = buffer
            .get(offset..offset + len)
            .ok_or_else(|| format!("a view past the end of buffer {index}"))?;
        if bytes[..4] != view[4..8] {
            return Err("a view whose prefix is not its text's".to_owned());
        }
        if utf8 && !ascii[index] {
            text(bytes)?;
        }
    }
    Ok(())
}

fn key_width(key: IntegerType) -> usize {
    match key {
        IntegerType::Int8 | IntegerType::UInt8 => 1,
        IntegerType::Int16 | IntegerType::UInt16 => 2,
        IntegerType::Int32 | IntegerType::UInt32 => 4,
        IntegerType::Int64 | IntegerType::UInt64 => 8,
        IntegerType::Int128 | IntegerType::UInt128 => 16,
    }
}

/// Every key, null or not (polars' own dictionary arrays keep them all in range), within
/// `values`.
fn check_keys(key: IntegerType, keys: &[u8], values: usize) -> Check {
    let width = key_width(key);
    let signed = matches!(
        key,
        IntegerType::Int8
            | IntegerType::Int16
            | IntegerType::Int32
            | IntegerType::Int64
            | IntegerType::Int128
    );
    for k in keys.chunks_exact(width) {
        let mut le = [0u8; 16];
        le[..width].copy_from_slice(k);
        if signed && k[width - 1] & 0x80 != 0 {
            return Err("a negative dictionary key".to_owned());
        }
        let k = u128::from_le_bytes(le);
        if k >= values as u128 {
            return Err(format!("dictionary key {k} past its {values} values"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;
    use crate::sys::mmap::{Aligned, verified_ipc_frame};

    /// A frame of the types the cache holds, with nulls: numbers, booleans, text short
    /// and long, lists, structs.
    fn rich() -> DataFrame {
        let long = "a text too long to sit inside its view";
        let text = Series::new(
            "text".into(),
            [Some("short"), None, Some(long), Some("é… ✓")],
        );
        let list = Series::new(
            "list".into(),
            [
                Some(Series::new("".into(), [1i64, 2])),
                None,
                Some(Series::new("".into(), [3i64])),
                Some(Series::new("".into(), Vec::<i64>::new())),
            ],
        );
        let fields = [
            Series::new("name".into(), [Some(long), Some("b"), None, Some("d")]),
            Series::new("x".into(), [Some(1.5f64), None, Some(-0.0), Some(f64::NAN)]),
        ];
        let record = StructChunked::from_series("record".into(), 4, fields.iter())
            .expect("struct")
            .into_series();
        DataFrame::new_infer_height(vec![
            Series::new(
                "n".into(),
                [Some(1i64), None, Some(i64::MIN), Some(i64::MAX)],
            )
            .into(),
            Series::new("b".into(), [Some(true), Some(false), None, Some(true)]).into(),
            text.into(),
            list.into(),
            record.into(),
        ])
        .expect("frame")
    }

    /// `df` as the cache's IPC payload.
    fn payload(df: &DataFrame) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = crate::export::ipc_writer(&mut out, df.schema(), None).expect("writer");
        writer.write_batch(df).expect("batch");
        writer.finish().expect("finish");
        out
    }

    /// `bytes` decoded the way a Redis hit is, then written as NDJSON, which reads every
    /// buffer: `None` for a miss.
    fn decode_and_print(bytes: &[u8]) -> Option<String> {
        let mut held = Aligned::zeroed(bytes.len())?;
        held.as_mut_slice().copy_from_slice(bytes);
        let df = verified_ipc_frame(held).ok()?;
        let mut out = Vec::new();
        crate::export::write(&df, crate::export::Format::Ndjson, &mut out).ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn a_genuine_payload_passes_and_decodes_to_its_frame() {
        let df = rich();
        let bytes = payload(&df);
        let mut want = Vec::new();
        crate::export::write(&df, crate::export::Format::Ndjson, &mut want).expect("csv");
        assert_eq!(
            decode_and_print(&bytes).as_deref().map(str::as_bytes),
            Some(&want[..])
        );
    }

    /// Every byte of a payload set to each of a few values, checksums as a forger would
    /// fix them (none here: the decode is past them): a hit or a miss, never a crash. A
    /// debug build's precondition checks abort on reads out of bounds that the check lets
    /// through, and the fuzz target `disk_entry` runs the same under AddressSanitizer.
    #[test]
    fn no_single_forged_byte_makes_the_decode_read_out_of_bounds() {
        let good = payload(&rich());
        let mut refused = 0;
        for at in 0..good.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff, good[at].wrapping_add(1)] {
                let mut forged = good.clone();
                forged[at] = value;
                refused += usize::from(decode_and_print(&forged).is_none());
            }
        }
        assert!(refused > 0, "some forgeries are refused");
    }

    #[test]
    fn offsets_must_start_in_range_rise_and_end_within() {
        assert!(check_offsets(&[0, 1, 1, 4], 4).is_ok());
        assert!(check_offsets(&[2, 3], 3).is_ok());
        assert!(check_offsets(&[-1, 0], 4).is_err());
        assert!(check_offsets(&[0, 3, 2], 4).is_err());
        assert!(check_offsets(&[0, 5], 4).is_err());
    }

    #[test]
    fn text_must_be_utf8_and_cut_at_char_boundaries() {
        let values = "aé".as_bytes();
        assert!(check_text(&[0, 1, 3], values, true).is_ok());
        assert!(check_text(&[0, 2, 3], values, true).is_err());
        assert!(check_text(&[0, 2, 3], values, false).is_ok());
        assert!(check_text(&[0, 2], &[0xff, 0xfe], true).is_err());
    }

    fn view(len: u32, prefix: &[u8], index: u32, offset: u32) -> Vec<u8> {
        let mut v = len.to_le_bytes().to_vec();
        let mut p = [0u8; 4];
        p[..prefix.len()].copy_from_slice(prefix);
        v.extend(p);
        v.extend(index.to_le_bytes());
        v.extend(offset.to_le_bytes());
        v
    }

    #[test]
    fn views_must_stay_in_their_buffers_and_match_their_prefix() {
        let data: &[&[u8]] = &[b"0123456789abcdefXYZ"];
        assert!(check_views(&view(16, b"0123", 0, 0), data, true).is_ok());
        assert!(
            check_views(&view(16, b"0123", 0, 4), data, true).is_err(),
            "past the end"
        );
        assert!(
            check_views(&view(16, b"0123", 1, 0), data, true).is_err(),
            "no such buffer"
        );
        assert!(
            check_views(&view(16, b"9999", 0, 0), data, true).is_err(),
            "prefix"
        );
        let mut inline = 3u32.to_le_bytes().to_vec();
        inline.extend(b"abc\0\0\0\0\0\0\0\0\0");
        assert!(check_views(&inline, data, true).is_ok());
        inline[10] = 1;
        assert!(check_views(&inline, data, true).is_err(), "padding");
        let data: &[&[u8]] = &[b"0123456789ab\xffdef"];
        assert!(
            check_views(&view(16, b"0123", 0, 0), data, true).is_err(),
            "UTF-8"
        );
        assert!(check_views(&view(16, b"0123", 0, 0), data, false).is_ok());
    }

    #[test]
    fn keys_must_be_within_their_dictionary() {
        assert!(check_keys(IntegerType::UInt32, &[0, 0, 0, 0, 2, 0, 0, 0], 3).is_ok());
        assert!(check_keys(IntegerType::UInt32, &[3, 0, 0, 0], 3).is_err());
        assert!(check_keys(IntegerType::Int8, &[0xff], 3).is_err());
    }
}
