//! Cache entries as `DataFrame`s without a decode: an entry's Arrow IPC payload becomes a
//! frame whose buffers point into the bytes that hold it, a mapped disk-cache file or a
//! Redis entry reassembled in memory ([`Aligned`]), so a hit costs one checksum pass, not
//! a decode and a copy.
//!
//! Soundness rests on two things:
//!
//! * before polars maps a single buffer, [`check_ipc_file`] checks every array in the
//!   payload against the lengths of the buffers that hold it: what polars' mapper and its
//!   C-interface import take on trust (bitmap and buffer lengths, null counts, offsets,
//!   views, UTF-8, dictionary keys). The payload's checksum (verified here for a disk
//!   entry; chunk by chunk by the Redis tier) catches damage, but xxh3 is not keyed, so it
//!   is no proof against an entry forged by someone who can write to the cache folder or
//!   the shared Redis: the check is;
//! * the bytes do not change while a frame uses them: disk entry files are never modified
//!   in place (writers rename a fresh file over the old one and eviction unlinks), and an
//!   [`Aligned`] buffer is owned by the frame's buffers alone. (Truncating a cache file
//!   by hand while a process maps it would still be answered by SIGBUS, as for any mapped
//!   file.)

use std::fs::File;
use std::io::Cursor;
use std::sync::Arc;

use memmap2::{Mmap, MmapMut, MmapOptions};
use polars::prelude::{Column, DataFrame, Series};
use polars_arrow::array::Array;
use polars_arrow::io::ipc::read::read_file_metadata;
use polars_arrow::mmap::{mmap_dictionaries_unchecked, mmap_unchecked};

use crate::cache::ipc_check::check_ipc_file;

/// The bytes of a mapped file from `offset` on.
struct Window {
    map: Mmap,
    offset: usize,
}

impl AsRef<[u8]> for Window {
    fn as_ref(&self) -> &[u8] {
        self.map.get(self.offset..).unwrap_or_default()
    }
}

/// Maps `file` (opened read-only), checks that `payload_len` bytes follow `offset` and that
/// their xxh3-128 is `checksum`, then builds the `DataFrame` over the mapping.
///
/// Every failure is a reason string: the caller treats the entry as a miss.
pub(crate) fn read_ipc_entry(
    file: &File,
    offset: usize,
    payload_len: u64,
    checksum: u128,
) -> Result<DataFrame, String> {
    // SAFETY: see the module docs: entries are replaced by rename and removed by unlink,
    // never rewritten in place, so the mapped bytes do not change under us.
    let map = unsafe { Mmap::map(file) }.map_err(|e| format!("cannot map: {e}"))?;
    let payload = map
        .get(offset..)
        .filter(|p| p.len() as u64 == payload_len)
        .ok_or_else(|| {
            format!(
                "size {} does not match the header's {}",
                map.len(),
                (offset as u64).saturating_add(payload_len)
            )
        })?;
    let actual = xxhash_rust::xxh3::xxh3_128(payload);
    if actual != checksum {
        return Err("checksum mismatch".to_owned());
    }
    decode_caught(Window { map, offset })
}

/// Zeroed anonymous memory, page-aligned (an IPC writer aligns its buffers to 64): what a
/// Redis entry is reassembled into, chunk by chunk, before [`verified_ipc_frame`] maps it. Asked
/// for transparent huge pages, so filling tens of megabytes takes a few dozen page faults,
/// not thousands (the kernel may say no; then it is ordinary pages).
pub(crate) struct Aligned(Option<MmapMut>);

impl Aligned {
    /// `len` zeroed bytes, or `None` if the kernel has no room (a damaged or hostile
    /// manifest may ask for anything: that is a miss, not an abort).
    pub(crate) fn zeroed(len: usize) -> Option<Self> {
        if len == 0 {
            return Some(Self(None));
        }
        let map = MmapOptions::new().len(len).map_anon().ok()?;
        // Only advice: without huge pages the buffer works the same.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Some(Self(Some(map)))
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// Builds the `DataFrame` of the Arrow IPC file `bytes` hold, its buffers pointing into
/// them. The caller has checked the bytes against the checksums their writer recorded
/// (the Redis tier: each chunk against its xxh3-128 as it arrived, and those against the
/// manifest's).
pub(crate) fn verified_ipc_frame(bytes: Aligned) -> Result<DataFrame, String> {
    decode_caught(bytes)
}

/// polars' IPC reader asserts things (`todo!()` for some types, slice bounds) that a
/// damaged entry with a matching checksum could still break: any panic is a damaged
/// entry, a miss.
fn decode_caught<T: AsRef<[u8]> + Send + Sync + 'static>(bytes: T) -> Result<DataFrame, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || decode(bytes)))
        .map_err(|_| "unreadable IPC payload".to_owned())?
}

fn decode<T: AsRef<[u8]> + Send + Sync + 'static>(bytes: T) -> Result<DataFrame, String> {
    let window = Arc::new(bytes);
    let metadata = read_file_metadata(&mut Cursor::new(window.as_ref().as_ref()))
        .map_err(|e| format!("unreadable IPC footer: {e}"))?;
    check_ipc_file(window.as_ref().as_ref(), &metadata)?;
    // SAFETY: `check_ipc_file` has checked every dictionary and record batch against what
    // the mapper assumes (see the module docs); polars itself bounds- and alignment-checks
    // where each buffer starts.
    let dictionaries = unsafe { mmap_dictionaries_unchecked(&metadata, Arc::clone(&window)) }
        .map_err(|e| format!("unreadable dictionaries: {e}"))?;
    let fields = metadata.schema.as_ref();
    let mut chunks: Vec<Vec<Box<dyn Array>>> = vec![Vec::new(); fields.len()];
    let mut height = 0usize;
    for i in 0..metadata.blocks.len() {
        // SAFETY: as above: this batch was checked.
        let batch = unsafe { mmap_unchecked(&metadata, &dictionaries, Arc::clone(&window), i) }
            .map_err(|e| format!("unreadable batch {i}: {e}"))?;
        height += batch.height();
        for (column, array) in chunks.iter_mut().zip(batch.into_arrays()) {
            column.push(array);
        }
    }
    let columns = fields
        .iter_values()
        .zip(chunks)
        .map(|(field, chunks)| {
            if chunks.is_empty() {
                let dtype = polars::prelude::DataType::from_arrow_field(field);
                return Ok(Series::new_empty(field.name.clone(), &dtype).into());
            }
            Series::try_from((field, chunks))
                .map(Column::from)
                .map_err(|e| format!("column {:?}: {e}", field.name))
        })
        .collect::<Result<Vec<Column>, String>>()?;
    DataFrame::new(height, columns).map_err(|e| e.to_string())
}
