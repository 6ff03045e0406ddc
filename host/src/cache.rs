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
//! * Invalidation is part of the key: every key includes generations (see
//!   [`crate::state`]) that a write, `reset()` or a clear bumps, so a caller who starts
//!   after an invalidation can neither join a read that began before it nor find what
//!   such a read stored, in memory or on disk, in this process or another. The memory
//!   tier also drops the connection's entries, for their space.
//! * `refresh` reads on its own: it never joins a read in flight.
//!
//! Keys are digests: see [`key`] and [`canonical_read`]. This module knows nothing
//! about plugins.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use polars::prelude::DataFrame;
use sha2::{Digest, Sha256};

pub use crate::disk::{DiskCache, DiskStats, Removed, Usage};
use crate::error::{Error, Result};
use crate::state::State;

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

/// The canonical bytes of a read request, for its key: every field that can change the
/// result, each tagged and length-prefixed, so that no two different requests share
/// them. Unlike JSON, NaN, infinities and -0.0 stay distinct from each other and from
/// null. Whether the read streams is left out: both read the same table.
pub(crate) fn canonical_read(request: &plugboard_api::ReadRequest) -> Vec<u8> {
    use plugboard_api::Value;
    // Destructured whole, so that a new field cannot be left out of the key unnoticed.
    let plugboard_api::ReadRequest {
        query,
        params,
        limit,
        batch_size,
        options,
        stream: _,
    } = request;
    let mut out = Vec::with_capacity(query.len() + 64);
    let mut bytes = |tag: u8, b: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
    bytes(b'q', query.as_bytes());
    for (name, value) in params {
        bytes(b'p', name.as_bytes());
        match value {
            Value::Null => bytes(b'n', &[]),
            Value::Bool(v) => bytes(b'b', &[u8::from(*v)]),
            Value::Int(v) => bytes(b'i', &v.to_le_bytes()),
            Value::Float(v) => bytes(b'f', &v.to_bits().to_le_bytes()),
            Value::String(v) => bytes(b's', v.as_bytes()),
            Value::Bytes(v) => bytes(b'x', v),
        }
    }
    if let Some(n) = limit {
        bytes(b'l', &n.to_le_bytes());
    }
    if let Some(n) = batch_size {
        bytes(b'z', &(*n as u64).to_le_bytes());
    }
    // serde_json values hold no NaN and always print.
    let options = crate::host::canonical_json(&serde_json::Value::Object(options.clone()));
    bytes(b'o', options.as_bytes());
    out
}

/// Default bound of the in-memory tier.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

#[derive(Clone)]
struct Entry {
    df: Arc<DataFrame>,
    created: SystemTime,
    expires: Option<SystemTime>,
    /// The connection's name, for statistics.
    connection: Arc<str>,
    /// The connection's identity, for invalidation.
    identity: Arc<str>,
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
    /// The connection's name: what statistics go by.
    pub connection: &'a Arc<str>,
    /// The connection's identity: what invalidation goes by; recorded in disk entries.
    pub identity: &'a Arc<str>,
    pub ttl: Option<Duration>,
    /// Read again even if cached, and replace the entry.
    pub refresh: bool,
}

pub(crate) struct ResultCache {
    memory: Cache<Key, Entry>,
    max_bytes: u64,
    disk: Option<DiskCache>,
    /// The key and the generations: the disk tier's, shared by processes, when there is
    /// one; this process's own otherwise.
    state: Arc<State>,
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
        let state = disk
            .as_ref()
            .map_or_else(|| Arc::new(State::local()), |d| Arc::clone(d.state()));
        Self {
            memory,
            max_bytes,
            disk,
            state,
        }
    }

    pub fn disk(&self) -> Option<&DiskCache> {
        self.disk.as_ref()
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The key of a request: the connection's identity and the target it reached (see
    /// `crate::client`), the current generations of the whole cache, the connection and
    /// the target, the method and the canonical request.
    pub(crate) fn key(
        &self,
        identity: &str,
        scope: crate::state::Slot,
        target: Option<(&str, crate::state::Slot)>,
        method: &[u8],
        request: &[u8],
    ) -> Key {
        let generations = [
            self.state.all_generation(),
            self.state.generation(scope),
            target.map_or(0, |(_, slot)| self.state.generation(slot)),
        ];
        let mut g = [0u8; 24];
        for (chunk, n) in g.chunks_exact_mut(8).zip(generations) {
            chunk.copy_from_slice(&n.to_le_bytes());
        }
        let target = match target {
            Some((t, _)) => [b"t:".as_slice(), t.as_bytes()].concat(),
            None => b"-".to_vec(),
        };
        key([identity.as_bytes(), &target, &g, method, request])
    }

    fn entry(&self, lookup: &Lookup<'_>, df: DataFrame, created: SystemTime) -> Entry {
        Entry {
            df: Arc::new(df),
            created,
            expires: lookup.ttl.and_then(|t| created.checked_add(t)),
            connection: Arc::clone(lookup.connection),
            identity: Arc::clone(lookup.identity),
        }
    }

    /// Stores a result read by `lookup` in the disk tier, when it has a TTL.
    fn store_on_disk(&self, lookup: &Lookup<'_>, df: &DataFrame) {
        let (Some(disk), Some(ttl)) = (&self.disk, lookup.ttl) else {
            return;
        };
        if let Err(e) = disk.store(&lookup.key, lookup.connection, lookup.identity, df, ttl) {
            // The read itself succeeded: serve it.
            tracing::warn!(
                "disk cache: cannot store a result of {:?}: {e}",
                &**lookup.connection
            );
        }
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
        if lookup.refresh {
            // A read of its own: joining one already in flight could serve what was
            // there before the caller asked for a fresh read.
            let started = SystemTime::now();
            let df = read()?;
            self.store_on_disk(lookup, &df);
            let entry = self.entry(lookup, df, started);
            self.memory.insert(lookup.key, entry.clone());
            return Ok((entry.df, Outcome::Miss));
        }
        if let Some(e) = self.memory.get(&lookup.key) {
            if e.fresh_for(ttl) {
                return Ok((e.df, Outcome::MemoryHit));
            }
            self.memory.invalidate(&lookup.key);
        }
        let started_wall = SystemTime::now();
        let ran = AtomicU8::new(0);
        let entry = self
            .memory
            .try_get_with(lookup.key, || {
                if let (Some(disk), Some(ttl)) = (&self.disk, ttl)
                    && let Some(hit) = disk.load(&lookup.key, ttl)
                {
                    ran.store(DISK_HIT, Ordering::Relaxed);
                    let mut entry = self.entry(lookup, hit.df, hit.created);
                    entry.expires = Some(hit.expires);
                    return Ok(entry);
                }
                ran.store(MISS, Ordering::Relaxed);
                let df = read()?;
                self.store_on_disk(lookup, &df);
                Ok(self.entry(lookup, df, started_wall))
            })
            .map_err(Error::from_shared)?;
        let outcome = match ran.load(Ordering::Relaxed) {
            MISS => Outcome::Miss,
            DISK_HIT => Outcome::DiskHit,
            _ => Outcome::MemoryHit,
        };
        Ok((entry.df, outcome))
    }

    /// Makes every result of one connection unreachable, in every tier and process, by
    /// bumping the generations its keys are built with (`slots`: the connection's, and
    /// that of the target it reached, if known), and drops its entries from memory.
    /// Returns how many memory entries went.
    pub(crate) fn invalidate(&self, identity: &Arc<str>, slots: &[crate::state::Slot]) -> u64 {
        for slot in slots {
            self.state.bump(*slot);
        }
        self.memory.run_pending_tasks();
        let before = self.memory.entry_count();
        let identity = Arc::clone(identity);
        let _ = self
            .memory
            .invalidate_entries_if(move |_, e| e.identity == identity);
        self.memory.run_pending_tasks();
        before.saturating_sub(self.memory.entry_count())
    }

    /// Drops one connection's results in both tiers; see [`ResultCache::invalidate`].
    pub(crate) fn clear_connection(
        &self,
        identity: &Arc<str>,
        slots: &[crate::state::Slot],
    ) -> Cleared {
        let memory = self.invalidate(identity, slots);
        let disk = self
            .disk
            .as_ref()
            .map(|d| d.clear_identity(identity))
            .unwrap_or_default();
        Cleared { memory, disk }
    }

    /// Drops every result, in both tiers and every process.
    pub fn clear(&self) -> Cleared {
        self.memory.run_pending_tasks();
        let memory = self.memory.entry_count();
        self.state.bump_all();
        self.memory.invalidate_all();
        self.memory.run_pending_tasks();
        let disk = self.disk.as_ref().map(DiskCache::clear).unwrap_or_default();
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
            identity: conn,
            ttl,
            refresh: false,
        }
    }

    /// A lookup keyed as the client keys it: with the current generations.
    fn keyed<'a>(cache: &ResultCache, conn: &'a Arc<str>, ttl: Option<Duration>) -> Lookup<'a> {
        let scope = cache.state().slot(conn.as_bytes());
        Lookup {
            key: cache.key(conn, scope, None, b"read", b"q"),
            ..lookup(b"", conn, ttl)
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
        cache.invalidate(&a, &[]);
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
    fn a_read_overtaken_by_an_invalidation_is_not_served_after_it() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None);
        let conn: Arc<str> = "c".into();
        let scope = cache.state().slot(conn.as_bytes());
        let before = keyed(&cache, &conn, None);
        let (_, o) = cache
            .get_or_read(&before, || {
                cache.invalidate(&conn, &[scope]); // a write lands while we read
                Ok(frame(1))
            })
            .expect("read");
        assert_eq!(o, Outcome::Miss);
        let (df, o) = cache
            .get_or_read(&keyed(&cache, &conn, None), || Ok(frame(2)))
            .expect("read");
        assert_eq!(
            (o, df.height()),
            (Outcome::Miss, 2),
            "the pre-write result is not served"
        );
    }

    #[test]
    fn a_caller_after_an_invalidation_does_not_join_a_read_before_it() {
        let cache = Arc::new(ResultCache::new(DEFAULT_MAX_BYTES, None));
        let conn: Arc<str> = "c".into();
        let scope = cache.state().slot(conn.as_bytes());
        let (in_read, go) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            let slow = s.spawn(|| {
                cache.get_or_read(&keyed(&cache, &conn, None), || {
                    in_read.wait();
                    go.wait(); // stays in flight until the write is done
                    Ok(frame(1))
                })
            });
            in_read.wait();
            cache.invalidate(&conn, &[scope]);
            // Started after the invalidation: must not get the old read's rows.
            let (df, o) = cache
                .get_or_read(&keyed(&cache, &conn, None), || Ok(frame(2)))
                .expect("read");
            go.wait();
            assert_eq!((o, df.height()), (Outcome::Miss, 2));
            let (old, _) = slow.join().expect("join").expect("read");
            assert_eq!(old.height(), 1, "the early caller gets what it read");
        });
    }

    #[test]
    fn refresh_does_not_join_a_read_in_flight() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None);
        let conn: Arc<str> = "c".into();
        let (in_read, go) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            let slow = s.spawn(|| {
                cache.get_or_read(&keyed(&cache, &conn, None), || {
                    in_read.wait();
                    go.wait();
                    Ok(frame(1))
                })
            });
            in_read.wait();
            let mut refresh = keyed(&cache, &conn, None);
            refresh.refresh = true;
            let (df, o) = cache.get_or_read(&refresh, || Ok(frame(2))).expect("read");
            go.wait();
            assert_eq!((o, df.height()), (Outcome::Miss, 2), "a read of its own");
            slow.join().expect("join").expect("read");
        });
    }

    #[test]
    fn enormous_ttls_are_kept_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = DiskCache::open(dir.path(), crate::disk::DEFAULT_DISK_MAX_BYTES).expect("open");
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, Some(disk));
        let conn: Arc<str> = "c".into();
        for (i, secs) in [u64::MAX, u64::MAX / 2, 1 << 40, 1000 * 365 * 86_400]
            .into_iter()
            .enumerate()
        {
            let ttl = Some(Duration::from_secs(secs));
            let k = [i as u8];
            let (_, o) = cache
                .get_or_read(&lookup(&k, &conn, ttl), || Ok(frame(1)))
                .expect("read");
            assert_eq!(o, Outcome::Miss);
            let (_, o) = cache
                .get_or_read(&lookup(&k, &conn, ttl), || Ok(frame(1)))
                .expect("read");
            assert_eq!(o, Outcome::MemoryHit, "ttl {secs}s");
            let fresh = ResultCache::new(
                DEFAULT_MAX_BYTES,
                Some(
                    DiskCache::open(dir.path(), crate::disk::DEFAULT_DISK_MAX_BYTES).expect("open"),
                ),
            );
            let (_, o) = fresh
                .get_or_read(&lookup(&k, &conn, ttl), || Ok(frame(1)))
                .expect("read");
            assert_eq!(o, Outcome::DiskHit, "ttl {secs}s");
        }
    }

    #[test]
    fn canonical_reads_keep_every_value_apart() {
        use plugboard_api::{ReadRequest, Value};
        let with = |v: Value| {
            let mut r = ReadRequest::default();
            r.params.insert("x".into(), v);
            canonical_read(&r)
        };
        let values = [
            Value::Null,
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Int(0),
            Value::Bool(false),
            Value::String(String::new()),
            Value::String("0".into()),
            Value::Bytes(Vec::new()),
        ];
        let keys: std::collections::HashSet<Vec<u8>> = values.iter().cloned().map(with).collect();
        assert_eq!(keys.len(), values.len(), "every value has its own key");
        let mut limited = ReadRequest::default();
        limited.limit = Some(0);
        assert_ne!(
            canonical_read(&limited),
            canonical_read(&ReadRequest::default())
        );
        let mut streamed = ReadRequest::default();
        streamed.stream = true;
        assert_eq!(
            canonical_read(&streamed),
            canonical_read(&ReadRequest::default())
        );
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
            Some(DiskCache::open(dir.path(), crate::disk::DEFAULT_DISK_MAX_BYTES).expect("open"))
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

        let cleared = second.clear_connection(&conn, &[]);
        assert_eq!((cleared.memory, cleared.disk.entries), (2, 1));
        let third = ResultCache::new(DEFAULT_MAX_BYTES, disk());
        let (_, o) = third
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(10)))
            .expect("read");
        assert_eq!(o, Outcome::Miss);
    }
}
