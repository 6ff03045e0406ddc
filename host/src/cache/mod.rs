//! The host's result cache: one per host, shared by every connection and thread: memory
//! first ([`memory`]), then each tier below it ([`tier`]: the disk tier shared by every
//! process of the user, [`disk`]; the Redis tier shared by every host, [`redis`]), then
//! the source.
//!
//! * TTL is per entry and means "at most this old": a read asking for a shorter TTL than
//!   the entry was stored with re-reads. No TTL keeps an entry in memory until it is
//!   reset, evicted or the process ends; only reads with a TTL go below memory.
//! * Concurrent identical misses run one read (moka's single flight), the lower tiers'
//!   lookup included; errors are not cached, and the callers waiting on a failed read all
//!   get its error.
//! * Invalidation is part of the key ([`key`], [`state`]): every key includes generations
//!   that a write, `reset()` or a clear bumps, so a caller who starts after an
//!   invalidation can neither join a read that began before it nor find what such a read
//!   stored, in any tier, in this process or another. With Redis, keys of reads with a
//!   TTL also include the generation tokens kept in Redis, so this holds across hosts
//!   too. The tiers also drop the
//!   connection's entries, for their space.
//! * `refresh` reads on its own: it never joins a read in flight.
//!
//! This module knows nothing about plugins.

pub mod disk;
pub(crate) mod ipc_check;
pub(crate) mod key;
pub(crate) mod memory;
pub mod redis;
pub(crate) mod state;
pub(crate) mod tier;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use polars::prelude::{DataFrame, Schema};

pub use self::disk::{DiskCache, DiskStats, OpenError};
pub(crate) use self::key::{Key, canonical_read};
pub use self::memory::MemoryStats;
use self::memory::{Entry, Memory};
pub use self::redis::{Invalidation, RedisConfig, RedisStats, RedisTier};
use self::state::{Slot, State};
use self::tier::{Keys, Owner, Tier};
use crate::error::{Error, Result};

/// Default bound of the in-memory tier.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Where a read's result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from this process's memory without calling the plugin.
    MemoryHit,
    /// Served from the disk tier (written by this or another process).
    DiskHit,
    /// Served from the Redis tier (written by this or another host).
    RedisHit,
    /// The read failed, and `stale_if_error` served the last good result, past its TTL.
    StaleHit,
    /// Read from the plugin (and stored, unless the TTL was zero).
    Miss,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::MemoryHit => "memory hit",
            Outcome::DiskHit => "disk hit",
            Outcome::RedisHit => "redis hit",
            Outcome::StaleHit => "stale hit",
            Outcome::Miss => "miss",
        })
    }
}

/// Per-connection totals of one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub entries: u64,
    pub bytes: u64,
}

/// What a clear removed from a tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    pub bytes: u64,
}

/// Every tier; `disk` and `redis` are `None` when that tier is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory: MemoryStats,
    pub disk: Option<DiskStats>,
    pub redis: Option<RedisStats>,
}

/// What a clear removed, per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleared {
    pub memory: u64,
    pub disk: Removed,
    pub redis: Removed,
}

/// One read, as the cache sees it.
pub(crate) struct Lookup<'a> {
    /// This host's key: memory's and disk's.
    pub key: Key,
    /// The key every host shares (Redis's), when Redis is on and answered.
    pub shared: Option<Key>,
    /// The connection's name: what statistics go by.
    pub connection: &'a Arc<str>,
    /// The connection's identity: what invalidation goes by; recorded in entries.
    pub identity: &'a Arc<str>,
    /// Its identity as every host computes it: what Redis entries are owned by.
    pub portable: &'a [u8],
    pub ttl: Option<Duration>,
    /// `stale_if_error`: how long past its TTL a result may serve a failed read.
    pub stale: Option<Duration>,
    /// Read again even if cached, and replace the entry.
    pub refresh: bool,
}

impl Lookup<'_> {
    fn keys(&self) -> Keys {
        Keys {
            local: self.key,
            shared: self.shared,
        }
    }

    fn owner(&self) -> Owner<'_> {
        Owner {
            connection: self.connection,
            identity: self.identity,
            portable: self.portable,
            keep: self.stale.unwrap_or_default(),
        }
    }
}

/// A streamed result being written into every tier below memory as it passes.
pub(crate) struct Store {
    pending: Vec<Box<dyn tier::Pending>>,
    connection: Arc<str>,
    /// This host's claim to read the key across hosts, released once stored (or dropped).
    _claim: Option<redis::Claim>,
}

impl Store {
    /// Appends a batch; a tier that fails is dropped from the store, with a warning.
    pub(crate) fn write(&mut self, df: &DataFrame) {
        let connection = &self.connection;
        self.pending.retain_mut(|p| {
            p.write(df)
                .inspect_err(|e| warn_store(connection, e))
                .is_ok()
        });
    }

    /// Makes the entry visible in every tier that took it whole.
    pub(crate) fn commit(self) {
        for p in self.pending {
            if let Err(e) = p.commit() {
                warn_store(&self.connection, &e);
            }
        }
    }
}

fn warn_store(connection: &str, e: &str) {
    // The read itself succeeded: serve it.
    tracing::warn!("cache: cannot store a result of {connection:?}: {e}");
}

pub(crate) struct ResultCache {
    memory: Memory,
    /// The disk tier, typed, for its statistics.
    disk: Option<DiskCache>,
    /// The Redis tier, typed, for its generations and statistics.
    redis: Option<RedisTier>,
    /// Every tier below memory, in lookup order.
    tiers: Vec<Arc<dyn Tier>>,
    /// Keys being refreshed ahead of their expiry: one refresh each at a time.
    refreshing: std::sync::Mutex<std::collections::HashSet<Key>>,
    /// The key and the generations: the disk tier's, shared by processes, when there is
    /// one; this process's own otherwise.
    state: Arc<State>,
}

impl ResultCache {
    pub fn new(max_bytes: u64, disk: Option<DiskCache>, redis: Option<RedisTier>) -> Self {
        let state = disk
            .as_ref()
            .map_or_else(|| Arc::new(State::local()), |d| Arc::clone(d.state()));
        let mut tiers: Vec<Arc<dyn Tier>> = disk
            .iter()
            .map(|d| Arc::new(d.clone()) as Arc<dyn Tier>)
            .collect();
        tiers.extend(redis.iter().map(|r| Arc::new(r.clone()) as Arc<dyn Tier>));
        Self {
            memory: Memory::new(max_bytes),
            disk,
            redis,
            tiers,
            refreshing: std::sync::Mutex::new(std::collections::HashSet::new()),
            state,
        }
    }

    /// Refresh-ahead: whether the memory entry of `lookup` has less than `window` left
    /// of its TTL and no refresh of it is running; if so, this caller is the one to
    /// refresh it (and calls [`ResultCache::refreshed`] when done).
    pub(crate) fn claim_refresh(&self, lookup: &Lookup<'_>, window: Duration) -> bool {
        let Some(ttl) = lookup.ttl.filter(|t| !t.is_zero()) else {
            return false;
        };
        let Some((created, expires)) = self.memory.times(&lookup.key) else {
            return false;
        };
        let end = created.checked_add(ttl).unwrap_or(created);
        let end = expires.map_or(end, |e| e.min(end));
        let left = end.duration_since(SystemTime::now()).unwrap_or_default();
        if left >= window {
            return false;
        }
        self.refreshing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lookup.key)
    }

    /// A refresh claimed by [`ResultCache::claim_refresh`] is over.
    pub(crate) fn refreshed(&self, key: &Key) {
        self.refreshing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub fn disk(&self) -> Option<&DiskCache> {
        self.disk.as_ref()
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The keys of a request; see [`key::request_key`]. `shared_scopes` (the
    /// connection's portable identity and its target; `None` when the read has no TTL,
    /// so it never reaches Redis) decide the Redis key; with one, this host's key
    /// includes it, so an invalidation on any host changes memory's and disk's keys too.
    pub(crate) fn key(
        &self,
        identity: &str,
        scope: Slot,
        target: Option<(&str, Slot)>,
        method: &[u8],
        request: &[u8],
        shared_scopes: Option<&[Vec<u8>]>,
    ) -> (Key, Option<Key>) {
        let local = key::request_key(&self.state, identity, scope, target, method, request);
        let shared = match (&self.redis, shared_scopes) {
            (Some(r), Some(scopes)) => r.shared_key(scopes, &[method, request]),
            _ => None,
        };
        match shared {
            Some(s) => (key::key([local.as_slice(), b"redis", &s]), Some(s)),
            None => (local, None),
        }
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

    /// Stores a result read by `lookup` in every tier below memory, when it has a TTL.
    fn store_below(&self, lookup: &Lookup<'_>, df: &DataFrame) {
        let Some(ttl) = lookup.ttl else {
            return;
        };
        for tier in &self.tiers {
            if let Err(e) = tier.store(&lookup.keys(), lookup.owner(), df, ttl) {
                warn_store(lookup.connection, &e);
            }
        }
    }

    /// The first hit below memory, with the tier's outcome.
    fn load_below(&self, lookup: &Lookup<'_>) -> Option<(tier::Hit, Outcome)> {
        let ttl = lookup.ttl?;
        self.tiers
            .iter()
            .find_map(|t| t.load(&lookup.keys(), ttl).map(|hit| (hit, t.outcome())))
    }

    /// For a read that failed with `error`: the last good result of the lookup, from the
    /// first tier below memory that still has it, when the connection allows
    /// `stale_if_error` and the result expired less than that long ago. Warns.
    pub(crate) fn stale(&self, lookup: &Lookup<'_>, error: &Error) -> Option<Arc<DataFrame>> {
        let grace = lookup.stale?;
        lookup.ttl.filter(|t| !t.is_zero())?;
        let hit = self
            .tiers
            .iter()
            .find_map(|t| t.load_stale(&lookup.keys(), grace))?;
        let late = SystemTime::now()
            .duration_since(hit.expires)
            .unwrap_or_default();
        tracing::warn!(
            "the read of {:?} failed ({error}); serving the last good result, {} past its TTL (stale_if_error)",
            &**lookup.connection,
            crate::duration::show(late)
        );
        Some(Arc::new(hit.df))
    }

    /// The fresh cached frame for the lookup, from any tier, without reading; `None`
    /// when there is none, the `ttl` is zero or the lookup refreshes.
    pub fn cached(&self, lookup: &Lookup<'_>) -> Option<(Arc<DataFrame>, Outcome)> {
        if lookup.ttl == Some(Duration::ZERO) {
            return None;
        }
        if lookup.refresh {
            self.memory.remove(&lookup.key);
            return None;
        }
        if let Some(df) = self.memory.fresh(&lookup.key, lookup.ttl) {
            return Some((df, Outcome::MemoryHit));
        }
        let (hit, outcome) = self.load_below(lookup)?;
        Some((Arc::new(hit.df), outcome))
    }

    /// Where a streamed read of `lookup` is stored as it arrives: every tier below
    /// memory, when the read has a TTL. (A streamed result is not kept in memory: not
    /// holding it is the point of streaming.)
    /// Single flight across hosts for a streamed read that every tier missed: the frame
    /// another host stored meanwhile, or this host's claim to read (none without Redis).
    pub(crate) fn flight(
        &self,
        lookup: &Lookup<'_>,
    ) -> std::result::Result<Arc<DataFrame>, Option<redis::Claim>> {
        match (&self.redis, &lookup.shared, lookup.ttl) {
            (Some(r), Some(shared), Some(ttl)) => match r.flight(shared, ttl) {
                redis::Flight::Hit(hit) => Ok(Arc::new(hit.df)),
                redis::Flight::Lead(claim) => Err(Some(claim)),
                redis::Flight::Alone => Err(None),
            },
            _ => Err(None),
        }
    }

    pub(crate) fn begin_store(
        &self,
        lookup: &Lookup<'_>,
        schema: &Schema,
        claim: Option<redis::Claim>,
    ) -> Option<Store> {
        let ttl = lookup.ttl.filter(|t| !t.is_zero())?;
        let pending: Vec<_> = self
            .tiers
            .iter()
            .filter_map(|t| {
                t.begin(&lookup.keys(), lookup.owner(), ttl, schema)
                    .inspect_err(|e| warn_store(lookup.connection, e))
                    .ok()
            })
            .collect();
        (!pending.is_empty()).then(|| Store {
            pending,
            connection: Arc::clone(lookup.connection),
            _claim: claim,
        })
    }

    /// Returns the cached frame for the lookup, or runs `read` once for all concurrent
    /// callers. A `ttl` of zero bypasses the cache.
    pub fn get_or_read(
        &self,
        lookup: &Lookup<'_>,
        read: impl FnOnce() -> Result<DataFrame>,
    ) -> Result<(Arc<DataFrame>, Outcome)> {
        if lookup.ttl == Some(Duration::ZERO) {
            return Ok((Arc::new(read()?), Outcome::Miss));
        }
        if lookup.refresh {
            // A read of its own: joining one already in flight could serve what was
            // there before the caller asked for a fresh read.
            let started = SystemTime::now();
            let df = read()?;
            self.store_below(lookup, &df);
            let entry = self.entry(lookup, df, started);
            self.memory.insert(lookup.key, entry.clone());
            return Ok((entry.df, Outcome::Miss));
        }
        if let Some(df) = self.memory.fresh(&lookup.key, lookup.ttl) {
            return Ok((df, Outcome::MemoryHit));
        }
        let started = SystemTime::now();
        // Set only by the caller whose closure ran; the others joined its read.
        let ran = OnceLock::new();
        let entry = self
            .memory
            .get_or_init(lookup.key, || {
                if let Some((hit, outcome)) = self.load_below(lookup) {
                    let _ = ran.set(outcome);
                    let mut entry = self.entry(lookup, hit.df, hit.created);
                    entry.expires = Some(hit.expires);
                    return Ok(entry);
                }
                // Across hosts: one reads, the others wait for what it stores.
                let _claim = match (&self.redis, &lookup.shared, lookup.ttl) {
                    (Some(r), Some(shared), Some(ttl)) => match r.flight(shared, ttl) {
                        redis::Flight::Hit(hit) => {
                            let _ = ran.set(Outcome::RedisHit);
                            let mut entry = self.entry(lookup, hit.df, hit.created);
                            entry.expires = Some(hit.expires);
                            return Ok(entry);
                        }
                        redis::Flight::Lead(claim) => Some(claim),
                        redis::Flight::Alone => None,
                    },
                    _ => None,
                };
                let df = match read() {
                    Ok(df) => {
                        let _ = ran.set(Outcome::Miss);
                        df
                    }
                    Err(e) => {
                        let Some(df) = self.stale(lookup, &e) else {
                            return Err(e);
                        };
                        let _ = ran.set(Outcome::StaleHit);
                        // Kept in memory only until the next read: it has expired.
                        let mut entry = self.entry(lookup, df.as_ref().clone(), started);
                        entry.expires = Some(started);
                        return Ok(entry);
                    }
                };
                self.store_below(lookup, &df);
                Ok(self.entry(lookup, df, started))
            })
            .map_err(Error::from_shared)?;
        Ok((entry.df, ran.get().copied().unwrap_or(Outcome::MemoryHit)))
    }

    /// Makes every result of one connection unreachable, in every tier and process, by
    /// bumping the generations its keys are built with (`slots`: the connection's, and
    /// that of the target it reached, if known), and drops its entries from memory.
    /// Returns how many memory entries went.
    pub(crate) fn invalidate(
        &self,
        identity: &Arc<str>,
        slots: &[Slot],
        shared_scopes: &[Vec<u8>],
    ) -> u64 {
        for slot in slots {
            self.state.bump(*slot);
        }
        if let Some(r) = &self.redis {
            r.bump(shared_scopes);
        }
        self.memory.remove_identity(identity)
    }

    /// Drops one connection's results in every tier; see [`ResultCache::invalidate`].
    pub(crate) fn clear_connection(
        &self,
        identity: &Arc<str>,
        slots: &[Slot],
        shared_scopes: &[Vec<u8>],
    ) -> Cleared {
        let memory = self.invalidate(identity, slots, shared_scopes);
        let disk = self
            .disk
            .as_ref()
            .map(|d| Tier::clear_identity(d, identity))
            .unwrap_or_default();
        let redis = match (&self.redis, shared_scopes.first()) {
            (Some(r), Some(portable)) => r.clear_owner(portable),
            _ => Removed::default(),
        };
        Cleared {
            memory,
            disk,
            redis,
        }
    }

    /// Drops every result, in every tier, process and host.
    pub fn clear(&self) -> Cleared {
        self.state.bump_all();
        if let Some(r) = &self.redis {
            r.bump_all();
        }
        let memory = self.memory.clear();
        let disk = self.disk.as_ref().map(Tier::clear).unwrap_or_default();
        let redis = self.redis.as_ref().map(Tier::clear).unwrap_or_default();
        Cleared {
            memory,
            disk,
            redis,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            memory: self.memory.stats(),
            disk: self.disk.as_ref().map(DiskCache::stats),
            redis: self.redis.as_ref().map(RedisTier::stats),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use polars::prelude::*;

    use super::*;

    fn frame(n: i64) -> DataFrame {
        df!("x" => (0..n).collect::<Vec<i64>>()).expect("frame")
    }

    fn lookup<'a>(k: &[u8], conn: &'a Arc<str>, ttl: Option<Duration>) -> Lookup<'a> {
        Lookup {
            key: key::key([k]),
            shared: None,
            connection: conn,
            identity: conn,
            portable: b"",
            ttl,
            stale: None,
            refresh: false,
        }
    }

    /// A lookup keyed as the client keys it: with the current generations.
    fn keyed<'a>(cache: &ResultCache, conn: &'a Arc<str>, ttl: Option<Duration>) -> Lookup<'a> {
        let scope = cache.state().slot(conn.as_bytes());
        Lookup {
            key: cache.key(conn, scope, None, b"read", b"q", None).0,
            ..lookup(b"", conn, ttl)
        }
    }

    #[test]
    fn hits_share_the_frame_and_zero_ttl_bypasses() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None, None);
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
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None, None);
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
    fn a_refreshed_entry_expires_by_its_own_ttl() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None, None);
        let conn: Arc<str> = "c".into();
        let ttl = Some(Duration::from_millis(400));
        cache
            .get_or_read(&lookup(b"k", &conn, ttl), || Ok(frame(1)))
            .expect("read");
        std::thread::sleep(Duration::from_millis(250));
        let mut refresh = lookup(b"k", &conn, ttl);
        refresh.refresh = true;
        cache
            .get_or_read(&refresh, || Ok(frame(2)))
            .expect("refresh");
        std::thread::sleep(Duration::from_millis(250));
        // 500 ms after the first read, 250 ms after the refresh: fresh.
        let (df, o) = cache
            .get_or_read(&lookup(b"k", &conn, ttl), || Ok(frame(3)))
            .expect("read");
        assert_eq!((o, df.height()), (Outcome::MemoryHit, 2));
    }

    #[test]
    fn invalidation_is_per_connection() {
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None, None);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let reads = AtomicUsize::new(0);
        let read = || {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok(frame(2))
        };
        cache.get_or_read(&lookup(b"1", &a, None), read).expect("a");
        cache.get_or_read(&lookup(b"2", &b, None), read).expect("b");
        assert_eq!(cache.stats().memory.connections.len(), 2);
        cache.invalidate(&a, &[], &[]);
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
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None, None);
        let conn: Arc<str> = "c".into();
        let scope = cache.state().slot(conn.as_bytes());
        let before = keyed(&cache, &conn, None);
        let (_, o) = cache
            .get_or_read(&before, || {
                cache.invalidate(&conn, &[scope], &[]); // a write lands while we read
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
        let cache = Arc::new(ResultCache::new(DEFAULT_MAX_BYTES, None, None));
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
            cache.invalidate(&conn, &[scope], &[]);
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
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, None, None);
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
        let cache = ResultCache::new(DEFAULT_MAX_BYTES, Some(disk), None);
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
                None,
            );
            let (_, o) = fresh
                .get_or_read(&lookup(&k, &conn, ttl), || Ok(frame(1)))
                .expect("read");
            assert_eq!(o, Outcome::DiskHit, "ttl {secs}s");
        }
    }

    #[test]
    fn byte_bound_evicts() {
        let one = frame(100_000).estimated_size() as u64;
        let cache = ResultCache::new(one * 2 + one / 2, None, None);
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
        let first = ResultCache::new(DEFAULT_MAX_BYTES, disk(), None);
        let (_, o) = first
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(10)))
            .expect("read");
        assert_eq!(o, Outcome::Miss);
        // No TTL: memory only.
        first
            .get_or_read(&lookup(b"n", &conn, None), || Ok(frame(10)))
            .expect("read");
        assert_eq!(first.stats().disk.expect("disk").total.entries, 1);

        let second = ResultCache::new(DEFAULT_MAX_BYTES, disk(), None);
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

        let cleared = second.clear_connection(&conn, &[], &[]);
        assert_eq!((cleared.memory, cleared.disk.entries), (2, 1));
        let third = ResultCache::new(DEFAULT_MAX_BYTES, disk(), None);
        let (_, o) = third
            .get_or_read(&lookup(b"k", &conn, hour), || Ok(frame(10)))
            .expect("read");
        assert_eq!(o, Outcome::Miss);
    }
}
