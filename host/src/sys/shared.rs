//! Words shared by every process of the user: a small file mapped read-write, whose
//! 8-byte words are read and updated only with atomic instructions.
//!
//! The cache keeps its invalidation generations and its byte tally here (see
//! [`crate::state`]), so that a write in one process is seen by the next lookup in every
//! other one without a system call, and without comparing file times with a clock.
//!
//! Soundness rests on the file being at least as long as the mapping for as long as the
//! mapping lives: plugboard creates the file at its full length and never truncates it.
//! (Truncating it by hand while a process maps it would be answered by SIGBUS, as for any
//! mapped file; the file lives in the user's private cache folder.)

use std::fs::File;
use std::sync::atomic::AtomicU64;

use memmap2::MmapRaw;

/// A mapped file seen as `words` atomic 64-bit words.
pub(crate) struct SharedWords {
    map: MmapRaw,
    words: usize,
}

impl std::fmt::Debug for SharedWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWords")
            .field("words", &self.words)
            .finish_non_exhaustive()
    }
}

impl SharedWords {
    /// Maps the first `words × 8` bytes of `file`, which must be opened for reading and
    /// writing and be at least that long.
    pub(crate) fn map(file: &File, words: usize) -> std::io::Result<Self> {
        let len = words
            .checked_mul(8)
            .ok_or_else(|| std::io::Error::other("mapping too large"))?;
        if file.metadata()?.len() < len as u64 {
            return Err(std::io::Error::other(format!(
                "shorter than its {len} bytes"
            )));
        }
        let map = memmap2::MmapOptions::new().len(len).map_raw(file)?;
        Ok(Self { map, words })
    }

    /// Word `i`; `None` past the end.
    pub(crate) fn word(&self, i: usize) -> Option<&AtomicU64> {
        if i >= self.words {
            return None;
        }
        // SAFETY: the mapping is page-aligned and `i < words`, so `ptr + 8 i` is 8-byte
        // aligned and inside the `words × 8` mapped bytes, which stay mapped (and, since
        // the file is never truncated, backed) while `self` lives. Every process touches
        // these bytes only through `AtomicU64`, so there is no non-atomic access to race
        // with; `AtomicU64` has the same layout as `u64`.
        Some(unsafe { &*self.map.as_mut_ptr().cast::<AtomicU64>().add(i) })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn two_mappings_of_one_file_see_each_other() {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&[0; 64]).expect("write");
        let a = SharedWords::map(&file, 8).expect("map");
        let b = SharedWords::map(&file, 8).expect("map");
        a.word(3).expect("word").fetch_add(5, Ordering::SeqCst);
        assert_eq!(b.word(3).expect("word").load(Ordering::SeqCst), 5);
        assert!(a.word(8).is_none());
        assert!(SharedWords::map(&file, 9).is_err(), "longer than the file");
    }
}
