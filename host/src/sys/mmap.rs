//! Cache entries as `DataFrame`s without a decode: an entry's Arrow IPC payload becomes a
//! frame whose buffers point into the bytes that hold it, a mapped disk-cache file or a
//! Redis entry reassembled in memory ([`Aligned`]), so a hit costs one checksum pass, not
//! a decode and a copy.
//!
//! Soundness rests on two things:
//!
//! * the payload's checksum is verified here before polars looks at a single buffer, so
//!   the bytes are exactly the ones a plugboard host's `IpcWriter` wrote from a valid
//!   `DataFrame`;
//! * the bytes do not change while a frame uses them: disk entry files are never modified
//!   in place (writers rename a fresh file over the old one and eviction unlinks), and an
//!   [`Aligned`] buffer is owned by the frame's buffers alone. (Truncating a cache file
//!   by hand while a process maps it would still be answered by SIGBUS, as for any mapped
//!   file.)

use std::alloc::Layout;
use std::fs::File;
use std::io::Cursor;
use std::ptr::NonNull;
use std::sync::Arc;

use memmap2::Mmap;
use polars::prelude::{Column, DataFrame, Series};
use polars_arrow::array::Array;
use polars_arrow::io::ipc::read::read_file_metadata;
use polars_arrow::mmap::{mmap_dictionaries_unchecked, mmap_unchecked};

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

/// Heap bytes aligned to 64, as an IPC writer aligns its buffers: what a Redis entry is
/// reassembled into, chunk by chunk, before [`ipc_frame`] maps it.
pub(crate) struct Aligned {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Aligned` owns its allocation as a `Vec<u8>` would; `&Aligned` only reads it.
unsafe impl Send for Aligned {}
// SAFETY: as above.
unsafe impl Sync for Aligned {}

impl Aligned {
    const ALIGN: usize = 64;

    /// `len` zeroed bytes, or `None` if the allocator has no room (a damaged or hostile
    /// manifest may ask for anything: that is a miss, not an abort).
    pub(crate) fn zeroed(len: usize) -> Option<Self> {
        if len == 0 {
            return Some(Self {
                ptr: NonNull::<u64>::dangling().cast(),
                len,
            });
        }
        let layout = Layout::from_size_align(len, Self::ALIGN).ok()?;
        // SAFETY: `layout` has a non-zero size. Zeroed memory from the allocator is
        // initialized `u8`s (fresh pages come zeroed from the kernel, without a pass).
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Self { ptr, len })
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` holds `len` initialized bytes that this value owns alone.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` holds `len` initialized bytes, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: allocated in `zeroed` with this layout (it was valid then).
            unsafe {
                std::alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.len, Self::ALIGN),
                );
            }
        }
    }
}

/// Checks that the xxh3-128 of `bytes` is `checksum`, then builds the `DataFrame` of the
/// Arrow IPC file they hold, its buffers pointing into them.
pub(crate) fn ipc_frame(bytes: Aligned, checksum: u128) -> Result<DataFrame, String> {
    if xxhash_rust::xxh3::xxh3_128(bytes.as_ref()) != checksum {
        return Err("checksum mismatch".to_owned());
    }
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
    // SAFETY: the payload is byte for byte what `IpcWriter` wrote (checksum checked by
    // both callers); polars still bounds- and alignment-checks every buffer it maps.
    let dictionaries = unsafe { mmap_dictionaries_unchecked(&metadata, Arc::clone(&window)) }
        .map_err(|e| format!("unreadable dictionaries: {e}"))?;
    let fields = metadata.schema.as_ref();
    let mut chunks: Vec<Vec<Box<dyn Array>>> = vec![Vec::new(); fields.len()];
    let mut height = 0usize;
    for i in 0..metadata.blocks.len() {
        // SAFETY: as above.
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
