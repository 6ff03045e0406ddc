//! The memory tier: this process's results as `Arc<DataFrame>`, so a hit costs the same for
//! 10 rows or 10 million. Bounded by bytes (`DataFrame::estimated_size`), least recently
//! used first; a TTL per entry; concurrent identical misses run one read (moka's single
//! flight).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use polars::prelude::DataFrame;

use super::Usage;
use super::key::Key;

/// One cached result.
#[derive(Clone)]
pub(crate) struct Entry {
    pub df: Arc<DataFrame>,
    pub created: SystemTime,
    pub expires: Option<SystemTime>,
    /// The connection's name, for statistics.
    pub connection: Arc<str>,
    /// The connection's identity, for invalidation.
    pub identity: Arc<str>,
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

    /// A replaced entry (a refresh) expires by its own TTL: moka's default would keep
    /// the expiry of the entry it replaced.
    fn expire_after_update(
        &self,
        key: &Key,
        value: &Entry,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, at)
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

pub(crate) struct Memory {
    cache: Cache<Key, Entry>,
    max_bytes: u64,
}

impl Memory {
    pub fn new(max_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, e: &Entry| u32::try_from(e.df.estimated_size()).unwrap_or(u32::MAX))
            .expire_after(PerEntryTtl)
            // A fresh, large result must be kept even when the cache is full: plain LRU
            // rather than TinyLFU's admission filter.
            .eviction_policy(EvictionPolicy::lru())
            .support_invalidation_closures()
            .build();
        Self { cache, max_bytes }
    }

    /// The entry's frame, if it is fresh for a reader accepting `ttl`; a stale one is
    /// dropped.
    pub fn fresh(&self, key: &Key, ttl: Option<Duration>) -> Option<Arc<DataFrame>> {
        let e = self.cache.get(key)?;
        if e.fresh_for(ttl) {
            return Some(e.df);
        }
        self.cache.invalidate(key);
        None
    }

    /// When the entry was read and when it expires, without touching it.
    pub fn times(&self, key: &Key) -> Option<(SystemTime, Option<SystemTime>)> {
        self.cache.get(key).map(|e| (e.created, e.expires))
    }

    pub fn insert(&self, key: Key, entry: Entry) {
        self.cache.insert(key, entry);
    }

    pub fn remove(&self, key: &Key) {
        self.cache.invalidate(key);
    }

    /// The entry, or `init`'s, run once for every concurrent caller of the same key.
    pub fn get_or_init<E: Send + Sync + 'static>(
        &self,
        key: Key,
        init: impl FnOnce() -> Result<Entry, E>,
    ) -> Result<Entry, Arc<E>> {
        self.cache.try_get_with(key, init)
    }

    /// Drops one connection's entries; returns how many went.
    pub fn remove_identity(&self, identity: &Arc<str>) -> u64 {
        self.cache.run_pending_tasks();
        let before = self.cache.entry_count();
        let identity = Arc::clone(identity);
        let _ = self
            .cache
            .invalidate_entries_if(move |_, e| e.identity == identity);
        self.cache.run_pending_tasks();
        before.saturating_sub(self.cache.entry_count())
    }

    /// Drops every entry; returns how many went.
    pub fn clear(&self) -> u64 {
        self.cache.run_pending_tasks();
        let n = self.cache.entry_count();
        self.cache.invalidate_all();
        self.cache.run_pending_tasks();
        n
    }

    pub fn stats(&self) -> MemoryStats {
        self.cache.run_pending_tasks();
        let mut stats = MemoryStats {
            max_bytes: self.max_bytes,
            ..MemoryStats::default()
        };
        for (_, e) in self.cache.iter() {
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
}
