//! The host's result cache: one per host, shared by every connection and thread.
//!
//! * Values are `Arc<DataFrame>`: a hit costs the same for 10 rows or 10 million.
//! * TTL is per entry (`None` keeps an entry until it is reset, evicted or the process ends).
//! * Concurrent identical misses run one read (moka's single flight); errors are not cached,
//!   and the callers waiting on a failed read all get its error.
//! * Bounded by bytes (`DataFrame::estimated_size`), evicting the least recently used.
//!
//! Keys are digests: see [`key`]. This module knows nothing about plugins.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use polars::prelude::DataFrame;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A cache key: the SHA-256 of everything that determines a result.
pub type Key = [u8; 32];

/// Builds a key from its parts; each part is length-prefixed, so parts cannot run together.
pub fn key<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Key {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Default bound of the in-memory tier.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

#[derive(Clone)]
struct Entry {
    df: Arc<DataFrame>,
    ttl: Option<Duration>,
    connection: Arc<str>,
}

struct PerEntryTtl;

impl moka::Expiry<Key, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &Key, value: &Entry, _: Instant) -> Option<Duration> {
        value.ttl
    }
}

/// Whether a read was served from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from memory without calling the plugin.
    MemoryHit,
    /// Read from the plugin (and stored, unless the TTL was zero).
    Miss,
}

/// What [`ResultCache::stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
}

pub(crate) struct ResultCache {
    entries: Cache<Key, Entry>,
}

impl ResultCache {
    pub fn new(max_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, e: &Entry| u32::try_from(e.df.estimated_size()).unwrap_or(u32::MAX))
            .expire_after(PerEntryTtl)
            // A fresh, large result must be kept even when the cache is full: plain LRU
            // rather than TinyLFU's admission filter.
            .eviction_policy(EvictionPolicy::lru())
            .support_invalidation_closures()
            .build();
        Self { entries }
    }

    /// Returns the cached frame for `key`, or runs `read` once for all concurrent callers.
    /// A `ttl` of zero bypasses the cache.
    pub fn get_or_read(
        &self,
        key: Key,
        connection: &Arc<str>,
        ttl: Option<Duration>,
        read: impl FnOnce() -> Result<DataFrame>,
    ) -> Result<(Arc<DataFrame>, Outcome)> {
        if ttl == Some(Duration::ZERO) {
            return Ok((Arc::new(read()?), Outcome::Miss));
        }
        let ran = AtomicBool::new(false);
        let entry = self
            .entries
            .try_get_with(key, || {
                ran.store(true, Ordering::Relaxed);
                read().map(|df| Entry {
                    df: Arc::new(df),
                    ttl,
                    connection: Arc::clone(connection),
                })
            })
            .map_err(Error::from_shared)?;
        let outcome = if ran.load(Ordering::Relaxed) {
            Outcome::Miss
        } else {
            Outcome::MemoryHit
        };
        Ok((entry.df, outcome))
    }

    /// Drops every result of one connection.
    pub fn invalidate_connection(&self, connection: &str) {
        let connection: Arc<str> = Arc::from(connection);
        // Cannot fail: invalidation closures are enabled in `new`.
        let _ = self
            .entries
            .invalidate_entries_if(move |_, e| e.connection == connection);
        self.entries.run_pending_tasks();
    }

    pub fn clear(&self) {
        self.entries.invalidate_all();
        self.entries.run_pending_tasks();
    }

    pub fn stats(&self) -> Stats {
        self.entries.run_pending_tasks();
        Stats {
            entries: self.entries.entry_count(),
            bytes: self.entries.weighted_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use polars::prelude::*;

    use super::*;

    fn frame(n: i64) -> DataFrame {
        df!("x" => (0..n).collect::<Vec<i64>>()).expect("frame")
    }

    #[test]
    fn hits_share_the_frame_and_zero_ttl_bypasses() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES);
        let conn: Arc<str> = "c".into();
        let (a, o1) = cache
            .get_or_read(key([b"k".as_slice()]), &conn, None, || Ok(frame(3)))
            .expect("read");
        let (b, o2) = cache
            .get_or_read(key([b"k".as_slice()]), &conn, None, || Ok(frame(4)))
            .expect("read");
        assert_eq!((o1, o2), (Outcome::Miss, Outcome::MemoryHit));
        assert!(Arc::ptr_eq(&a, &b));
        let (_, o3) = cache
            .get_or_read(key([b"z".as_slice()]), &conn, Some(Duration::ZERO), || {
                Ok(frame(1))
            })
            .expect("read");
        let (_, o4) = cache
            .get_or_read(key([b"z".as_slice()]), &conn, Some(Duration::ZERO), || {
                Ok(frame(1))
            })
            .expect("read");
        assert_eq!((o3, o4), (Outcome::Miss, Outcome::Miss));
    }

    #[test]
    fn key_parts_do_not_run_together() {
        assert_ne!(key([b"ab".as_slice(), b"c"]), key([b"a".as_slice(), b"bc"]));
    }

    #[test]
    fn invalidation_is_per_connection() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let reads = AtomicUsize::new(0);
        let read = || {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok(frame(2))
        };
        cache
            .get_or_read(key([b"1".as_slice()]), &a, None, read)
            .expect("a");
        cache
            .get_or_read(key([b"2".as_slice()]), &b, None, read)
            .expect("b");
        cache.invalidate_connection("a");
        cache
            .get_or_read(key([b"1".as_slice()]), &a, None, read)
            .expect("a again");
        cache
            .get_or_read(key([b"2".as_slice()]), &b, None, read)
            .expect("b again");
        assert_eq!(
            reads.load(Ordering::SeqCst),
            3,
            "only a's entry was dropped"
        );
    }

    #[test]
    fn byte_bound_evicts() {
        let one = frame(100_000).estimated_size() as u64;
        let cache = ResultCache::new(one * 2 + one / 2);
        let conn: Arc<str> = "c".into();
        for i in 0..5u8 {
            cache
                .get_or_read(key([[i].as_slice()]), &conn, None, || Ok(frame(100_000)))
                .expect("read");
        }
        let stats = cache.stats();
        assert!(stats.bytes <= one * 2 + one / 2, "{stats:?} over the bound");
        assert!(stats.entries >= 1 && stats.entries <= 2, "{stats:?}");
    }
}
