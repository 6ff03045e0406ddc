//! The host's result cache: one per host, shared by every connection and thread, in front
//! of a disk tier shared by every process of the user.
//!
//! * Values are `Arc<DataFrame>`: a memory hit costs the same for 10 rows or 10 million.
//! * TTL is per entry and means "at most this old": a read asking for a shorter TTL than
//!   the entry was stored with re-reads. No TTL keeps an entry in memory until it is
//!   reset, evicted or the process ends; only reads with a TTL go to disk.
//! * Concurrent identical misses run one read (moka's single flight), disk lookup
//!   included; errors are not cached, and the callers waiting on a failed read all get
//!   its error.
//! * Memory is bounded by bytes (`DataFrame::estimated_size`), evicting the least recently
//!   used; disk by file bytes, evicting the oldest (see [`crate::disk`]).
//! * Invalidating a connection drops its results in both tiers, and a read that was in
//!   flight during the invalidation does not store its result.
//!
//! Keys are digests: see [`key`]. This module knows nothing about plugins.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use polars::prelude::DataFrame;
use sha2::{Digest, Sha256};

pub use crate::disk::{DiskCache, DiskStats, Removed, Usage};
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
    created: SystemTime,
    expires: Option<SystemTime>,
    connection: Arc<str>,
}

impl Entry {
    /// Whether a reader that accepts results up to `ttl` old may use this entry.
    fn fresh_for(&self, ttl: Option<Duration>) -> bool {
        let now = SystemTime::now();
        self.expires.is_none_or(|e| now < e)
            && ttl.is_none_or(|t| now.duration_since(self.created).unwrap_or_default() < t)
    }
}

struct PerEntryTtl;

impl moka::Expiry<Key, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &Key, value: &Entry, _: Instant) -> Option<Duration> {
        value
            .expires
            .map(|e| e.duration_since(SystemTime::now()).unwrap_or_default())
    }
}

/// Where a read's result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from this process's memory without calling the plugin.
    MemoryHit,
    /// Served from the disk tier (written by this or another process).
    DiskHit,
    /// Read from the plugin (and stored, unless the TTL was zero).
    Miss,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::MemoryHit => "memory hit",
            Outcome::DiskHit => "disk hit",
            Outcome::Miss => "miss",
        })
    }
}

/// What the memory tier holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub max_bytes: u64,
    pub total: Usage,
    /// By connection name.
    pub connections: BTreeMap<String, Usage>,
}

/// Both tiers; `disk` is `None` when the disk tier is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory: MemoryStats,
    pub disk: Option<DiskStats>,
}

/// What a clear removed, per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleared {
    pub memory: u64,
    pub disk: Removed,
}

/// One read, as the cache sees it.
pub(crate) struct Lookup<'a> {
    pub key: Key,
    /// The connection's name: what invalidation and statistics go by.
    pub connection: &'a Arc<str>,
    /// The connection's identity, recorded in disk entries.
    pub identity: &'a str,
    pub ttl: Option<Duration>,
    /// Read again even if cached, and replace the entry.
    pub refresh: bool,
}

pub(crate) struct ResultCache {
    memory: Cache<Key, Entry>,
    max_bytes: u64,
    disk: Option<DiskCache>,
    /// When each connection (`None`: all) was last invalidated, to keep in-flight reads
    /// from storing what they read before it.
    invalidated: Mutex<HashMap<Option<Arc<str>>, Instant>>,
}

const MISS: u8 = 1;
const DISK_HIT: u8 = 2;

impl ResultCache {
    pub fn new(max_bytes: u64, disk: Option<DiskCache>) -> Self {
        let memory = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, e: &Entry| u32::try_from(e.df.estimated_size()).unwrap_or(u32::MAX))
            .expire_after(PerEntryTtl)
            // A fresh, large result must be kept even when the cache is full: plain LRU
            // rather than TinyLFU's admission filter.
            .eviction_policy(EvictionPolicy::lru())
            .support_invalidation_closures()
            .build();
        Self {
            memory,
            max_bytes,
            disk,
            invalidated: Mutex::new(HashMap::new()),
        }
    }

    pub fn disk(&self) -> Option<&DiskCache> {
        self.disk.as_ref()
    }

    fn invalidated_since(&self, connection: &Arc<str>, since: Instant) -> bool {
        let map = self.invalidated.lock().unwrap_or_else(|p| p.into_inner());
        [map.get(&Some(Arc::clone(connection))), map.get(&None)]
            .into_iter()
            .flatten()
            .any(|t| *t >= since)
    }

    fn mark_invalidated(&self, connection: Option<&str>) {
        self.invalidated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection.map(Arc::from), Instant::now());
    }

    /// The fresh cached frame for the lookup, from memory or disk, without reading; `None`
    /// when there is none, the `ttl` is zero or the lookup refreshes.
    pub fn cached(&self, lookup: &Lookup<'_>) -> Option<(Arc<DataFrame>, Outcome)> {
        let ttl = lookup.ttl;
        if ttl == Some(Duration::ZERO) {
            return None;
        }
        if lookup.refresh {
            self.memory.invalidate(&lookup.key);
            return None;
        }
        if let Some(e) = self.memory.get(&lookup.key) {
            if e.fresh_for(ttl) {
                return Some((e.df, Outcome::MemoryHit));
            }
            self.memory.invalidate(&lookup.key);
        }
        let hit = self.disk.as_ref()?.load(&lookup.key, ttl?)?;
        Some((Arc::new(hit.df), Outcome::DiskHit))
    }

    /// Where a streamed read of `lookup` should be stored as it arrives: the disk tier,
    /// when there is one and the read has a TTL. (A streamed result is not kept in
    /// memory: not holding it is the point of streaming.)
    pub(crate) fn begin_store(
        &self,
        lookup: &Lookup<'_>,
        schema: &polars::prelude::Schema,
    ) -> Option<crate::disk::Pending> {
        let ttl = lookup.ttl.filter(|t| !t.is_zero())?;
        let disk = self.disk.as_ref()?;
        disk.begin(&lookup.key, lookup.connection, lookup.identity, ttl, schema)
            .inspect_err(|e| {
                tracing::warn!(
                    "disk cache: cannot store a result of {:?}: {e}",
                    &**lookup.connection
                );
            })
            .ok()
    }

    /// Returns the cached frame for the lookup, or runs `read` once for all concurrent
    /// callers. A `ttl` of zero bypasses the cache.
    pub fn get_or_read(
        &self,
        lookup: &Lookup<'_>,
        read: impl FnOnce() -> Result<DataFrame>,
    ) -> Result<(Arc<DataFrame>, Outcome)> {
        let ttl = lookup.ttl;
        if ttl == Some(Duration::ZERO) {
            return Ok((Arc::new(read()?), Outcome::Miss));
        }
        if !lookup.refresh {
            if let Some(e) = self.memory.get(&lookup.key) {
                if e.fresh_for(ttl) {
                    return Ok((e.df, Outcome::MemoryHit));
                }
                self.memory.invalidate(&lookup.key);
            }
        } else {
            self.memory.invalidate(&lookup.key);
        }
        let started = Instant::now();
        let started_wall = SystemTime::now();
        let ran = AtomicU8::new(0);
        let entry = self
            .memory
            .try_get_with(lookup.key, || {
                let disk = ttl.and_then(|t| self.disk.as_ref().map(|d| (d, t)));
                if !lookup.refresh
                    && let Some((disk, ttl)) = disk
                    && let Some(hit) = disk.load(&lookup.key, ttl)
                {
                    ran.store(DISK_HIT, Ordering::Relaxed);
                    return Ok(Entry {
                        df: Arc::new(hit.df),
                        created: hit.created,
                        expires: Some(hit.expires),
                        connection: Arc::clone(lookup.connection),
                    });
                }
                ran.store(MISS, Ordering::Relaxed);
                let df = read()?;
                if let Some((disk, ttl)) = disk
                    && !self.invalidated_since(lookup.connection, started)
                {
                    let stored = disk.store(
                        &lookup.key,
                        lookup.connection,
                        lookup.identity,
                        &df,
                        ttl,
                        started_wall,
                    );
                    if let Err(e) = stored {
                        // The read itself succeeded: serve it.
                        tracing::warn!(
                            "disk cache: cannot store a result of {:?}: {e}",
                            &**lookup.connection
                        );
                    }
                }
                Ok(Entry {
                    df: Arc::new(df),
                    created: started_wall,
                    expires: ttl.and_then(|t| started_wall.checked_add(t)),
                    connection: Arc::clone(lookup.connection),
                })
            })
            .map_err(Error::from_shared)?;
        let outcome = match ran.load(Ordering::Relaxed) {
            MISS => Outcome::Miss,
            DISK_HIT => Outcome::DiskHit,
            _ => Outcome::MemoryHit,
        };
        if outcome == Outcome::Miss && self.invalidated_since(lookup.connection, started) {
            // Read before a write or reset finished: serve it to this caller, keep nobody
            // else on it.
            self.memory.invalidate(&lookup.key);
        }
        Ok((entry.df, outcome))
    }

    /// Drops every result of one connection, in both tiers.
    pub fn invalidate_connection(&self, connection: &str) {
        self.clear(Some(connection));
    }

    /// Drops every result (of one connection, if given), in both tiers.
    pub fn clear(&self, connection: Option<&str>) -> Cleared {
        let before = self.memory_stats();
        let memory = match connection {
            None => {
                self.mark_invalidated(None);
                self.memory.invalidate_all();
                self.memory.run_pending_tasks();
                before.total.entries
            }
            Some(c) => {
                self.mark_invalidated(Some(c));
                let name: Arc<str> = Arc::from(c);
                let _ = self
                    .memory
                    .invalidate_entries_if(move |_, e| e.connection == name);
                self.memory.run_pending_tasks();
                before.connections.get(c).map_or(0, |u| u.entries)
            }
        };
        let disk = self
            .disk
            .as_ref()
            .map(|d| d.clear(connection))
            .unwrap_or_default();
        Cleared { memory, disk }
    }

    fn memory_stats(&self) -> MemoryStats {
        self.memory.run_pending_tasks();
        let mut stats = MemoryStats {
            max_bytes: self.max_bytes,
            ..MemoryStats::default()
        };
        for (_, e) in self.memory.iter() {
            let bytes = e.df.estimated_size() as u64;
            stats.total.entries += 1;
            stats.total.bytes += bytes;
            let usage = stats
                .connections
                .entry(e.connection.to_string())
                .or_default();
            usage.entries += 1;
            usage.bytes += bytes;
        }
        stats
    }

    pub fn stats(&self) -> Stats {
        Stats {
            memory: self.memory_stats(),
            disk: self.disk.as_ref().map(DiskCache::stats),
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

    fn lookup<'a>(k: &[u8], conn: &'a Arc<str>, ttl: Option<Duration>) -> Lookup<'a> {
        Lookup {
            key: key([k]),
            connection: conn,
            identity: "id",
            ttl,
            refresh: false,
        }
    }

    #[test]
    fn hits_share_the_frame_and_zero_ttl_bypasses() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None);
        let conn: Arc<str> = "c".into();
        let (a, o1) = cache
            .get_or_read(&lookup(b"k", &conn, None), || Ok(frame(3)))
            .expect("read");
        let (b, o2) = cache
            .get_or_read(&lookup(b"k", &conn, None), || Ok(frame(4)))
            .expect("read");
        assert_eq!((o1, o2), (Outcome::Miss, Outcome::MemoryHit));
        assert!(Arc::ptr_eq(&a, &b));
        let zero = Some(Duration::ZERO);
        let (_, o3) = cache
            .get_or_read(&lookup(b"z", &conn, zero), || Ok(frame(1)))
            .expect("read");
        let (_, o4) = cache
            .get_or_read(&lookup(b"z", &conn, zero), || Ok(frame(1)))
            .expect("read");
        assert_eq!((o3, o4), (Outcome::Miss, Outcome::Miss));
    }

    #[test]
    fn a_shorter_ttl_rereads_and_refresh_replaces() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None);
        let conn: Arc<str> = "c".into();
        let hour = Some(Duration::from_secs(3600));
        cache
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(1)))
            .expect("read");
        std::thread::sleep(Duration::from_millis(30));
        let (df, o) = cache
            .get_or_read(
                &lookup(b"k", &conn, Some(Duration::from_millis(20))),
                || Ok(frame(2)),
            )
            .expect("read");
        assert_eq!((o, df.height()), (Outcome::Miss, 2), "30 ms old is too old");
        let mut refresh = lookup(b"k", &conn, hour);
        refresh.refresh = true;
        let (df, o) = cache.get_or_read(&refresh, || Ok(frame(3))).expect("read");
        assert_eq!((o, df.height()), (Outcome::Miss, 3));
        let (df, o) = cache
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(4)))
            .expect("read");
        assert_eq!(
            (o, df.height()),
            (Outcome::MemoryHit, 3),
            "the refreshed entry"
        );
    }

    #[test]
    fn key_parts_do_not_run_together() {
        assert_ne!(key([b"ab".as_slice(), b"c"]), key([b"a".as_slice(), b"bc"]));
    }

    #[test]
    fn invalidation_is_per_connection() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let reads = AtomicUsize::new(0);
        let read = || {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok(frame(2))
        };
        cache.get_or_read(&lookup(b"1", &a, None), read).expect("a");
        cache.get_or_read(&lookup(b"2", &b, None), read).expect("b");
        assert_eq!(cache.stats().memory.connections.len(), 2);
        cache.invalidate_connection("a");
        cache
            .get_or_read(&lookup(b"1", &a, None), read)
            .expect("a again");
        cache
            .get_or_read(&lookup(b"2", &b, None), read)
            .expect("b again");
        assert_eq!(
            reads.load(Ordering::SeqCst),
            3,
            "only a's entry was dropped"
        );
    }

    #[test]
    fn a_read_overtaken_by_an_invalidation_is_not_kept() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None);
        let conn: Arc<str> = "c".into();
        let (_, o) = cache
            .get_or_read(&lookup(b"k", &conn, None), || {
                cache.invalidate_connection("c"); // a write lands while we read
                Ok(frame(1))
            })
            .expect("read");
        assert_eq!(o, Outcome::Miss);
        let (_, o) = cache
            .get_or_read(&lookup(b"k", &conn, None), || Ok(frame(1)))
            .expect("read");
        assert_eq!(o, Outcome::Miss, "the pre-write result was not kept");
    }

    #[test]
    fn byte_bound_evicts() {
        let one = frame(100_000).estimated_size() as u64;
        let cache = ResultCache::new(one * 2 + one / 2, None);
        let conn: Arc<str> = "c".into();
        for i in 0..5u8 {
            cache
                .get_or_read(&lookup(&[i], &conn, None), || Ok(frame(100_000)))
                .expect("read");
        }
        let stats = cache.stats().memory;
        assert!(
            stats.total.bytes <= one * 2 + one / 2,
            "{stats:?} over the bound"
        );
        assert!(
            stats.total.entries >= 1 && stats.total.entries <= 2,
            "{stats:?}"
        );
    }

    #[test]
    fn disk_tier_behind_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = || {
            Some(DiskCache::new(
                dir.path(),
                crate::disk::DEFAULT_DISK_MAX_BYTES,
            ))
        };
        let conn: Arc<str> = "c".into();
        let hour = Some(Duration::from_secs(3600));
        let first = ResultCache::new(DEFAULT_MAX_BYTES, disk());
        let (_, o) = first
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(10)))
            .expect("read");
        assert_eq!(o, Outcome::Miss);
        // No TTL: memory only.
        first
            .get_or_read(&lookup(b"n", &conn, None), || Ok(frame(10)))
            .expect("read");
        assert_eq!(first.stats().disk.expect("disk").total.entries, 1);

        let second = ResultCache::new(DEFAULT_MAX_BYTES, disk());
        let (df, o) = second
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(99)))
            .expect("read");
        assert_eq!((o, df.height()), (Outcome::DiskHit, 10));
        let (_, o) = second
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(99)))
            .expect("read");
        assert_eq!(o, Outcome::MemoryHit, "memory sits in front of disk");
        let (_, o) = second
            .get_or_read(&lookup(b"n", &conn, None), || Ok(frame(99)))
            .expect("read");
        assert_eq!(o, Outcome::Miss, "a read without a TTL never touches disk");

        let cleared = second.clear(Some("c"));
        assert_eq!((cleared.memory, cleared.disk.entries), (2, 1));
        let third = ResultCache::new(DEFAULT_MAX_BYTES, disk());
        let (_, o) = third
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(10)))
            .expect("read");
        assert_eq!(o, Outcome::Miss);
    }
}
