//! The Redis tier of the result cache: what lets hosts on different machines share reads.
//!
//! Configured once per host (`PLUGBOARD_CACHE_REDIS=redis://…` or `rediss://…`); only reads
//! with a TTL reach it, after memory and disk missed.
//!
//! * **Keys hold no secret.** An entry's key is an HMAC, under a random key that the
//!   first host stores in Redis (`<prefix>:key`), of the connection's name, plugin and a
//!   digest of its config, the target it reached, the generations below, the method and
//!   the canonical request. (Whoever can read the Redis can read the cached results
//!   anyway; the HMAC keeps passwords out of key names.)
//! * **Invalidation across hosts** (strict mode, the only one so far): every connection
//!   and target has a generation *token* in Redis (`<prefix>:g:<hmac>`, plus one for the
//!   whole cache). A write, `reset()` or `cache clear` replaces the token with a new random
//!   one before it returns; every read with a TTL fetches the tokens (one `MGET`) and
//!   builds its keys, memory's and disk's included, with them. So no host serves a result
//!   stored before the write to a read that starts after it. Tokens are random, not
//!   counters, so a Redis that restarts empty or evicts a token cannot bring an old key
//!   back: a missing token is created anew (`SET NX GET`).
//! * **Whole or nothing.** An entry is a manifest (`<prefix>:e:<key>`: its key, creation
//!   and expiry, row count, payload length and xxh3-128 checksum, the chunk count and a
//!   random chunk id; its own checksum) and the payload, Arrow IPC compressed with LZ4,
//!   split into values of at most the chunk size (`<prefix>:c:<id>:<n>`, 512 MB is
//!   Redis's cap). Chunks are written first, under an id no other write uses, and the
//!   manifest last: a reader sees a whole old entry, a whole new one, or a miss. A
//!   damaged, truncated, missing or foreign value is a miss, never an error.
//! * **An optimization, never a dependency.** Every command has a bounded timeout; a
//!   failure (refused, timed out, AUTH refused) warns once per host and turns the tier off
//!   for a while (`retry_after`), so a dead Redis costs one timeout, not one per read.
//!   While it is off, reads use this host's own tiers and keys; a write whose token could
//!   not be replaced is replayed when Redis answers again.
//! * The URL's password is a secret: it never appears in a message this module emits.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use polars::prelude::{
    DataFrame, IpcCompression, IpcReader, IpcWriter, Schema, SerReader, SerWriter,
};
use redis::{Connection, ConnectionLike, RedisResult};

use super::key::Key;
use super::tier::{self, Hit, Keys, Owner, Tier};
use super::{Outcome, Removed, Usage};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The Redis URL (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS).
pub const REDIS_ENV: &str = "PLUGBOARD_CACHE_REDIS";
/// The namespace of every key (default `plugboard`).
pub const REDIS_PREFIX_ENV: &str = "PLUGBOARD_CACHE_REDIS_PREFIX";
/// How long one Redis operation may take (default 300ms).
pub const REDIS_TIMEOUT_ENV: &str = "PLUGBOARD_CACHE_REDIS_TIMEOUT";
/// How long the tier stays off after a failure (default 10s).
pub const REDIS_RETRY_ENV: &str = "PLUGBOARD_CACHE_REDIS_RETRY";
/// The largest value an entry is split into (default 64MiB, at most 512MB).
pub const REDIS_CHUNK_ENV: &str = "PLUGBOARD_CACHE_REDIS_CHUNK_BYTES";
/// How long a host's claim to read a missing key lasts (default 30s): what a crashed
/// holder costs the hosts waiting on it.
pub const REDIS_LOCK_ENV: &str = "PLUGBOARD_CACHE_REDIS_LOCK";

const MAGIC: &[u8; 8] = b"PBREDIS\0";
/// The entry format; a manifest of another version (another plugboard) is a miss.
const VERSION: u32 = 1;
const MAX_CHUNK: u64 = 512 * 1000 * 1000;
/// Chunks outlive their manifest by this, so a manifest never names an expired chunk.
const CHUNK_SLACK: Duration = Duration::from_secs(60);
/// Redis expiries longer than this are cut to it (PX takes milliseconds as i64).
const LONGEST: Duration = Duration::from_secs(10 * 365 * 86_400);

/// How a host reaches its Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    url: String,
    pub prefix: String,
    pub timeout: Duration,
    pub retry_after: Duration,
    pub chunk_bytes: u64,
    pub lock_ttl: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The URL without user and password: `redis://host:port/db`.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => "(not a URL)".to_owned(),
    }
}

impl RedisConfig {
    /// A configuration with the defaults; `url` must be `redis://` or `rediss://`.
    pub fn new(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!(
                "{REDIS_ENV}: {} is not a redis:// or rediss:// URL",
                redacted(url)
            ));
        }
        redis::Client::open(url)
            .map_err(|_| format!("{REDIS_ENV}: {} is not a valid Redis URL", redacted(url)))?;
        Ok(Self {
            url: url.to_owned(),
            prefix: "plugboard".to_owned(),
            timeout: Duration::from_millis(300),
            retry_after: Duration::from_secs(10),
            chunk_bytes: 64 << 20,
            lock_ttl: Duration::from_secs(30),
        })
    }

    /// Whether the URL carries a password.
    pub fn has_password(&self) -> bool {
        redis::Client::open(self.url.as_str())
            .ok()
            .and_then(|c| {
                c.get_connection_info()
                    .redis_settings()
                    .password()
                    .map(|_| ())
            })
            .is_some()
    }

    /// Sets the largest value an entry is split into (1 byte to 512 MB).
    pub fn set_chunk_bytes(&mut self, n: u64) -> Result<(), String> {
        if n == 0 || n > MAX_CHUNK {
            return Err(format!("{n} bytes is not between 1 byte and 512MB"));
        }
        self.chunk_bytes = n;
        Ok(())
    }

    /// The configuration the environment gives, if `PLUGBOARD_CACHE_REDIS` is set.
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::over_file(None)
    }

    /// The environment over a file's settings (`[cache]` in `plugins.toml`):
    /// `PLUGBOARD_CACHE_REDIS` replaces the file's URL, and each `PLUGBOARD_CACHE_REDIS_*`
    /// its setting.
    pub fn over_file(file: Option<Self>) -> Result<Option<Self>, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = match (var(REDIS_ENV), file) {
            (Some(url), Some(file)) => Self {
                url: Self::new(&url)?.url,
                ..file
            },
            (Some(url), None) => Self::new(&url)?,
            (None, Some(file)) => file,
            (None, None) => return Ok(None),
        };
        if let Some(p) = var(REDIS_PREFIX_ENV) {
            config.prefix = p.trim().to_owned();
        }
        let duration = |name: &str, text: &str| {
            crate::duration::parse(text).map_err(|e| format!("{name}: {e}"))
        };
        if let Some(t) = var(REDIS_TIMEOUT_ENV) {
            config.timeout = duration(REDIS_TIMEOUT_ENV, &t)?.max(Duration::from_millis(1));
        }
        if let Some(t) = var(REDIS_RETRY_ENV) {
            config.retry_after = duration(REDIS_RETRY_ENV, &t)?;
        }
        if let Some(t) = var(REDIS_LOCK_ENV) {
            config.lock_ttl = duration(REDIS_LOCK_ENV, &t)?.max(Duration::from_millis(10));
        }
        if let Some(b) = var(REDIS_CHUNK_ENV) {
            let n = super::disk::parse_bytes(&b).map_err(|e| format!("{REDIS_CHUNK_ENV}: {e}"))?;
            config
                .set_chunk_bytes(n)
                .map_err(|e| format!("{REDIS_CHUNK_ENV}: {e}"))?;
        }
        Ok(Some(config))
    }
}

/// What the Redis tier holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// The server, without user or password.
    pub server: String,
    pub prefix: String,
    /// Whether the server answered.
    pub reachable: bool,
    pub total: Usage,
    /// By connection name.
    pub connections: BTreeMap<String, Usage>,
}

/// The Redis tier; cheap to clone.
#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: RedisConfig,
    client: redis::Client,
    /// The URL's password, scrubbed from every message.
    password: Option<String>,
    idle: Mutex<Vec<Connection>>,
    /// Off until then, after a failure.
    down_until: Mutex<Option<Instant>>,
    warned: AtomicBool,
    /// The HMAC key every host shares, read from Redis once.
    key: OnceLock<[u8; 32]>,
    /// Generation tokens a write could not replace: replaced when Redis answers again.
    unbumped: Mutex<Vec<String>>,
}

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Manifest {
    key: Key,
    created: SystemTime,
    expires: SystemTime,
    rows: u64,
    payload_len: u64,
    checksum: u128,
    chunks: u32,
    id: [u8; 16],
    connection: String,
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let name = &self.connection.as_bytes()[..self.connection.len().min(4096)];
        let mut b = Vec::with_capacity(128 + name.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&millis(self.created).to_le_bytes());
        b.extend_from_slice(&millis(self.expires).to_le_bytes());
        b.extend_from_slice(&self.rows.to_le_bytes());
        b.extend_from_slice(&self.payload_len.to_le_bytes());
        b.extend_from_slice(&self.checksum.to_le_bytes());
        b.extend_from_slice(&self.key);
        b.extend_from_slice(&self.chunks.to_le_bytes());
        b.extend_from_slice(&self.id);
        b.extend_from_slice(&u16::try_from(name.len()).unwrap_or(0).to_le_bytes());
        b.extend_from_slice(name);
        let sum = xxhash_rust::xxh3::xxh3_64(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Self, &'static str> {
        let (body, sum) = b.split_last_chunk::<8>().ok_or("shorter than a manifest")?;
        if xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(*sum) {
            return Err("manifest checksum mismatch");
        }
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], &'static str> {
            let s = body.get(at..at + n).ok_or("shorter than a manifest")?;
            at += n;
            Ok(s)
        };
        if take(8)? != MAGIC {
            return Err("not a plugboard entry");
        }
        let u32_ = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap_or_default());
        let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
        if u32_(take(4)?) != VERSION {
            return Err("an entry of another plugboard version");
        }
        let created = from_millis(u64_(take(8)?) as i64);
        let expires = from_millis(u64_(take(8)?) as i64);
        let rows = u64_(take(8)?);
        let payload_len = u64_(take(8)?);
        let checksum = u128::from_le_bytes(take(16)?.try_into().unwrap_or_default());
        let key: Key = take(32)?.try_into().unwrap_or_default();
        let chunks = u32_(take(4)?);
        let id: [u8; 16] = take(16)?.try_into().unwrap_or_default();
        let name_len = u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()) as usize;
        let connection = String::from_utf8_lossy(take(name_len)?).into_owned();
        if at != body.len() {
            return Err("longer than its manifest");
        }
        Ok(Self {
            key,
            created,
            expires,
            rows,
            payload_len,
            checksum,
            chunks,
            id,
            connection,
        })
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        fastrand::fill(&mut b);
    }
    b
}

/// Whether an error means the server cannot be used now (rather than refusing one
/// command, as a full Redis refuses writes).
fn unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

impl RedisTier {
    /// The tier for `config`. Connects lazily: a Redis that is down costs nothing here.
    pub fn new(config: RedisConfig) -> Result<Self, String> {
        let client = redis::Client::open(config.url.as_str()).map_err(|_| {
            format!(
                "{REDIS_ENV}: {} is not a valid Redis URL",
                redacted(&config.url)
            )
        })?;
        let password = client
            .get_connection_info()
            .redis_settings()
            .password()
            .map(str::to_owned);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                password,
                idle: Mutex::new(Vec::new()),
                down_until: Mutex::new(None),
                warned: AtomicBool::new(false),
                key: OnceLock::new(),
                unbumped: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    fn prefix(&self) -> &str {
        &self.inner.config.prefix
    }

    fn scrub(&self, text: String) -> String {
        match &self.inner.password {
            Some(p) if !p.is_empty() => text.replace(p.as_str(), "***"),
            _ => text,
        }
    }

    fn warn(&self, what: &str, e: &redis::RedisError) {
        let message = self.scrub(format!(
            "redis cache ({}): {what}: {e}; reads go on without it",
            redacted(&self.inner.config.url)
        ));
        if self.inner.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!("{message}");
        } else {
            tracing::warn!("{message}");
        }
    }

    fn is_down(&self) -> bool {
        let mut down = self
            .inner
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *down {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *down = None;
                false
            }
            None => false,
        }
    }

    fn mark_down(&self) {
        *self
            .inner
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + self.inner.config.retry_after);
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn connect(&self) -> RedisResult<Connection> {
        let timeout = self.inner.config.timeout;
        let mut conn = self.inner.client.get_connection_with_timeout(timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        if self.inner.key.get().is_none() {
            let mine: [u8; 32] = random();
            let old: Option<Vec<u8>> = redis::cmd("SET")
                .arg(format!("{}:key", self.prefix()))
                .arg(mine.as_slice())
                .arg("NX")
                .arg("GET")
                .query(&mut conn)?;
            let key = match old {
                Some(k) if k.len() == 32 => k.try_into().unwrap_or(mine),
                Some(_) => {
                    // Not ours (another program's key, a damaged one): take it over.
                    redis::cmd("SET")
                        .arg(format!("{}:key", self.prefix()))
                        .arg(mine.as_slice())
                        .query::<()>(&mut conn)?;
                    mine
                }
                None => mine,
            };
            let _ = self.inner.key.set(key);
        }
        let unbumped = std::mem::take(
            &mut *self
                .inner
                .unbumped
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if !unbumped.is_empty() {
            let mut pipe = redis::pipe();
            for k in &unbumped {
                pipe.cmd("SET")
                    .arg(k)
                    .arg(random::<16>().as_slice())
                    .ignore();
            }
            if let Err(e) = pipe.query::<()>(&mut conn) {
                self.inner
                    .unbumped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(unbumped);
                return Err(e);
            }
        }
        Ok(conn)
    }

    /// Runs `f` on a connection; `None` if the tier is off or the call failed.
    fn with_conn<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection, &[u8; 32]) -> RedisResult<T>,
    ) -> Option<T> {
        if self.is_down() {
            return None;
        }
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let mut conn = match pooled.map_or_else(|| self.connect(), Ok) {
            Ok(c) => c,
            Err(e) => {
                self.warn("cannot connect", &e);
                self.mark_down();
                return None;
            }
        };
        let key = *self.inner.key.get()?;
        match f(&mut conn, &key) {
            Ok(v) => {
                let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < 8 {
                    idle.push(conn);
                }
                Some(v)
            }
            Err(e) => {
                self.warn(what, &e);
                if unreachable(&e) {
                    self.mark_down();
                } else if !conn.is_open() {
                    // Dropped: the next call connects again.
                } else {
                    self.inner
                        .idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(conn);
                }
                None
            }
        }
    }

    fn hmac<'a>(key: &[u8; 32], parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            unreachable!("HMAC takes a key of any length")
        };
        for p in parts {
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    fn generation_key(&self, key: &[u8; 32], scope: &[u8]) -> String {
        let h = Self::hmac(key, [b"generation".as_slice(), scope]);
        format!("{}:g:{}", self.prefix(), hex::encode(&h[..16]))
    }

    fn all_key(&self) -> String {
        format!("{}:g:all", self.prefix())
    }

    /// The key an entry has in Redis: the scopes (a connection's portable identity, the
    /// target it reached), their current generation tokens, and `parts` (method,
    /// request). `None` when Redis cannot be reached: the read then keeps to this host.
    pub(crate) fn shared_key(&self, scopes: &[Vec<u8>], parts: &[&[u8]]) -> Option<Key> {
        self.with_conn("cannot read generations", |conn, key| {
            let mut names = vec![self.all_key()];
            names.extend(scopes.iter().map(|s| self.generation_key(key, s)));
            let mut tokens: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(&names).query(conn)?;
            for (name, token) in names.iter().zip(tokens.iter_mut()) {
                if token.is_none() {
                    let mine: [u8; 16] = random();
                    let old: Option<Vec<u8>> = redis::cmd("SET")
                        .arg(name)
                        .arg(mine.as_slice())
                        .arg("NX")
                        .arg("GET")
                        .query(conn)?;
                    *token = Some(old.unwrap_or_else(|| mine.to_vec()));
                }
            }
            let mut all: Vec<&[u8]> = vec![b"entry-v1"];
            all.extend(scopes.iter().map(Vec::as_slice));
            all.extend(tokens.iter().map(|t| t.as_deref().unwrap_or_default()));
            all.extend_from_slice(parts);
            Ok(Self::hmac(key, all))
        })
    }

    /// Replaces the generation tokens of `scopes` (a write, `reset()`, `cache clear NAME`):
    /// no host builds a key made with the old ones again.
    pub(crate) fn bump(&self, scopes: &[Vec<u8>]) {
        self.bump_names(|this, key| scopes.iter().map(|s| this.generation_key(key, s)).collect());
    }

    /// Replaces the whole cache's token.
    pub(crate) fn bump_all(&self) {
        self.bump_names(|this, _| vec![this.all_key()]);
    }

    fn bump_names(&self, names: impl Fn(&Self, &[u8; 32]) -> Vec<String>) {
        let done = self.with_conn("cannot invalidate", |conn, key| {
            let mut pipe = redis::pipe();
            for n in names(self, key) {
                pipe.cmd("SET")
                    .arg(n)
                    .arg(random::<16>().as_slice())
                    .ignore();
            }
            pipe.query::<()>(conn)
        });
        if done.is_none() {
            // Replayed on the next connection. Without the shared key (Redis never
            // answered), no key was ever built with a token, so nothing is stale.
            if let Some(key) = self.inner.key.get() {
                let names = names(self, key);
                self.inner
                    .unbumped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(names);
            }
        }
    }

    fn manifest_key(&self, key: &Key) -> String {
        format!("{}:e:{}", self.prefix(), hex::encode(key))
    }

    fn chunk_key(&self, id: &[u8; 16], n: u32) -> String {
        format!("{}:c:{}:{n}", self.prefix(), hex::encode(id))
    }

    fn load_shared(&self, key: &Key, max_age: Duration) -> Option<Hit> {
        self.load_within(key, max_age, Duration::ZERO)
    }

    fn load_within(&self, key: &Key, max_age: Duration, grace: Duration) -> Option<Hit> {
        let fetched = self.with_conn("cannot read an entry", |conn, _| {
            let manifest: Option<Vec<u8>> =
                redis::cmd("GET").arg(self.manifest_key(key)).query(conn)?;
            let Some(bytes) = manifest else {
                return Ok(None);
            };
            let m = match Manifest::decode(&bytes) {
                Ok(m) => m,
                Err(reason) => return Ok(Some(Err(reason))),
            };
            let now = SystemTime::now();
            let age = now.duration_since(m.created).unwrap_or_default();
            let expires = m.expires.checked_add(grace).unwrap_or(m.expires);
            if m.key != *key || now >= expires || age >= max_age {
                return Ok(Some(Err(if m.key != *key {
                    "the entry belongs to another key"
                } else {
                    "older than the TTL"
                })));
            }
            let mut payload =
                Vec::with_capacity(usize::try_from(m.payload_len).unwrap_or(0).min(1 << 32));
            for n in 0..m.chunks {
                let chunk: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(self.chunk_key(&m.id, n))
                    .query(conn)?;
                match chunk {
                    Some(c) => payload.extend_from_slice(&c),
                    None => return Ok(Some(Err("a chunk is missing"))),
                }
            }
            Ok(Some(Ok((m, payload))))
        })??;
        let (m, payload) = match fetched {
            Ok(v) => v,
            Err(reason) => {
                tracing::debug!("redis cache: ignoring an entry: {reason}");
                return None;
            }
        };
        if payload.len() as u64 != m.payload_len
            || xxhash_rust::xxh3::xxh3_128(&payload) != m.checksum
        {
            tracing::warn!("redis cache: ignoring a damaged entry (checksum mismatch)");
            return None;
        }
        match IpcReader::new(Cursor::new(payload)).finish() {
            Ok(df) if df.height() as u64 == m.rows => Some(Hit {
                df,
                created: m.created,
                expires: m.expires,
            }),
            _ => {
                tracing::warn!("redis cache: ignoring a damaged entry (not its table)");
                None
            }
        }
    }

    fn store_shared(
        &self,
        key: &Key,
        connection: &str,
        df: &DataFrame,
        ttl: Duration,
        keep: Duration,
    ) -> Result<(), String> {
        let mut payload = Vec::new();
        IpcWriter::new(&mut payload)
            .with_compression(Some(IpcCompression::LZ4))
            .finish(&mut df.clone())
            .map_err(|e| format!("cannot encode the result: {e}"))?;
        let chunk = usize::try_from(self.inner.config.chunk_bytes).unwrap_or(usize::MAX);
        let chunks: Vec<&[u8]> = if payload.is_empty() {
            Vec::new()
        } else {
            payload.chunks(chunk.max(1)).collect()
        };
        let created = SystemTime::now();
        let ttl = ttl.min(LONGEST);
        let m = Manifest {
            key: *key,
            created,
            expires: created + ttl,
            rows: df.height() as u64,
            payload_len: payload.len() as u64,
            checksum: xxhash_rust::xxh3::xxh3_128(&payload),
            chunks: u32::try_from(chunks.len()).map_err(|_| "too many chunks".to_owned())?,
            id: random(),
            connection: connection.to_owned(),
        };
        let px = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        // Redis expires the entry itself: kept `keep` past its TTL for stale_if_error
        // (the manifest's own expiry still says when it stops being fresh).
        let ttl = ttl.saturating_add(keep).min(LONGEST);
        let stored = self.with_conn("cannot store an entry", |conn, _| {
            for (n, c) in chunks.iter().enumerate() {
                redis::cmd("SET")
                    .arg(self.chunk_key(&m.id, n as u32))
                    .arg(*c)
                    .arg("PX")
                    .arg(px(ttl + CHUNK_SLACK))
                    .query::<()>(conn)?;
            }
            // The manifest last: until it is there, no reader knows the chunks.
            let old: Option<Vec<u8>> = redis::cmd("SET")
                .arg(self.manifest_key(key))
                .arg(m.encode())
                .arg("PX")
                .arg(px(ttl))
                .arg("GET")
                .query(conn)?;
            if let Some(old) = old.and_then(|b| Manifest::decode(&b).ok()) {
                let names: Vec<String> = (0..old.chunks)
                    .map(|n| self.chunk_key(&old.id, n))
                    .collect();
                if !names.is_empty() {
                    let _: RedisResult<()> = redis::cmd("UNLINK").arg(names).query(conn);
                }
            }
            Ok(())
        });
        stored.ok_or_else(|| "the redis tier is unavailable".to_owned())
    }

    /// Every key under the prefix matching `pattern` (`e:*`, `*`).
    fn scan(conn: &mut Connection, pattern: &str) -> RedisResult<Vec<String>> {
        let iter: redis::Iter<'_, String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter(conn)?;
        iter.collect()
    }

    /// Single flight across hosts, for a key every tier missed: claims the read (a lock
    /// with an expiry, `<prefix>:l:<key>`) or waits for the host that holds it to store
    /// the result. A holder that crashed loses its claim when the lock expires, and a
    /// waiter takes it over; a Redis that fails means reading alone.
    pub(crate) fn flight(&self, key: &Key, max_age: Duration) -> Flight {
        let lock = format!("{}:l:{}", self.prefix(), hex::encode(key));
        let token: [u8; 16] = random();
        let ttl = self.inner.config.lock_ttl;
        let px = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        // Past this, read anyway: a holder that is slow, not dead, costs one more read.
        let give_up = Instant::now() + ttl * 2;
        loop {
            let claimed = self.with_conn("cannot claim a read", |conn, _| {
                let set: Option<String> = redis::cmd("SET")
                    .arg(&lock)
                    .arg(token.as_slice())
                    .arg("NX")
                    .arg("PX")
                    .arg(px)
                    .query(conn)?;
                Ok(set.is_some())
            });
            match claimed {
                None => return Flight::Alone,
                Some(true) => {
                    return Flight::Lead(Claim {
                        tier: self.clone(),
                        lock,
                        token,
                    });
                }
                Some(false) => {}
            }
            std::thread::sleep(Duration::from_millis(20));
            if let Some(hit) = self.load_shared(key, max_age) {
                return Flight::Hit(hit);
            }
            if Instant::now() >= give_up {
                return Flight::Alone;
            }
        }
    }

    /// Drops every entry under the prefix and replaces the whole cache's generation
    /// token, so that no host serves what any host stored before (`cache clear`).
    pub fn clear_all(&self) -> Removed {
        self.bump_all();
        Tier::clear(self)
    }

    /// What the tier holds, by connection.
    pub fn stats(&self) -> RedisStats {
        let mut stats = RedisStats {
            server: redacted(&self.inner.config.url),
            prefix: self.prefix().to_owned(),
            ..RedisStats::default()
        };
        let found = self.with_conn("cannot list entries", |conn, _| {
            let names = Self::scan(conn, &format!("{}:e:*", self.prefix()))?;
            let mut manifests = Vec::new();
            for batch in names.chunks(500) {
                let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(batch).query(conn)?;
                manifests.extend(got.into_iter().flatten());
            }
            Ok(manifests)
        });
        if let Some(manifests) = found {
            stats.reachable = true;
            for m in manifests.iter().filter_map(|b| Manifest::decode(b).ok()) {
                for usage in [
                    &mut stats.total,
                    stats.connections.entry(m.connection.clone()).or_default(),
                ] {
                    usage.entries += 1;
                    usage.bytes += m.payload_len;
                }
            }
        }
        stats
    }
}

/// What [`RedisTier::flight`] decided.
pub(crate) enum Flight {
    /// Another host read it meanwhile.
    Hit(Hit),
    /// This host reads; the claim is released when dropped.
    Lead(Claim),
    /// Redis cannot coordinate: read without it.
    Alone,
}

/// A host's claim to read a key; released (if still its own) when dropped.
pub(crate) struct Claim {
    tier: RedisTier,
    lock: String,
    token: [u8; 16],
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = self.tier.with_conn("cannot release a claim", |conn, _| {
            let held: Option<Vec<u8>> = redis::cmd("GET").arg(&self.lock).query(conn)?;
            // Only our own: after an expiry, another host's claim is not ours to drop.
            if held.as_deref() == Some(self.token.as_slice()) {
                redis::cmd("DEL").arg(&self.lock).query::<()>(conn)?;
            }
            Ok(())
        });
    }
}

/// A streamed result bound for Redis: gathered, and stored whole on commit.
struct Pending {
    tier: RedisTier,
    key: Key,
    connection: String,
    ttl: Duration,
    keep: Duration,
    frames: Option<DataFrame>,
}

impl tier::Pending for Pending {
    fn write(&mut self, df: &DataFrame) -> Result<(), String> {
        match &mut self.frames {
            Some(all) => all
                .vstack_mut(df)
                .map(|_| ())
                .map_err(|e| format!("cannot gather a batch: {e}")),
            None => {
                self.frames = Some(df.clone());
                Ok(())
            }
        }
    }

    fn commit(self: Box<Self>) -> Result<(), String> {
        let Some(mut df) = self.frames else {
            return Ok(());
        };
        df.rechunk_mut();
        self.tier
            .store_shared(&self.key, &self.connection, &df, self.ttl, self.keep)
    }
}

impl Tier for RedisTier {
    fn outcome(&self) -> Outcome {
        Outcome::RedisHit
    }

    fn load(&self, keys: &Keys, max_age: Duration) -> Option<Hit> {
        self.load_shared(keys.shared.as_ref()?, max_age)
    }

    fn load_stale(&self, keys: &Keys, grace: Duration) -> Option<Hit> {
        self.load_within(keys.shared.as_ref()?, Duration::MAX, grace)
    }

    fn store(
        &self,
        keys: &Keys,
        owner: Owner<'_>,
        df: &DataFrame,
        ttl: Duration,
    ) -> Result<(), String> {
        match &keys.shared {
            Some(key) => self.store_shared(key, owner.connection, df, ttl, owner.keep),
            // Redis was unreachable when the key was built: already warned.
            None => Ok(()),
        }
    }

    fn begin(
        &self,
        keys: &Keys,
        owner: Owner<'_>,
        ttl: Duration,
        _schema: &Schema,
    ) -> Result<Box<dyn tier::Pending>, String> {
        let key = keys
            .shared
            .ok_or_else(|| "the redis tier is unavailable".to_owned())?;
        Ok(Box::new(Pending {
            tier: self.clone(),
            key,
            connection: owner.connection.to_owned(),
            ttl,
            keep: owner.keep,
            frames: None,
        }))
    }

    fn clear_identity(&self, _identity: &str) -> Removed {
        // Its generation token was replaced (see `bump`): its entries are unreachable
        // and expire with their TTL.
        Removed::default()
    }

    fn clear(&self) -> Removed {
        self.with_conn("cannot clear", |conn, _| {
            let mut removed = Removed::default();
            let names = Self::scan(conn, &format!("{}:e:*", self.prefix()))?;
            for batch in names.chunks(500) {
                let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(batch).query(conn)?;
                for m in got
                    .iter()
                    .flatten()
                    .filter_map(|b| Manifest::decode(b).ok())
                {
                    removed.entries += 1;
                    removed.bytes += m.payload_len;
                }
                redis::cmd("UNLINK").arg(batch).query::<()>(conn)?;
            }
            let chunks = Self::scan(conn, &format!("{}:c:*", self.prefix()))?;
            for batch in chunks.chunks(500) {
                redis::cmd("UNLINK").arg(batch).query::<()>(conn)?;
            }
            Ok(removed)
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_damage_is_refused() {
        let m = Manifest {
            key: [7; 32],
            created: from_millis(1_000),
            expires: from_millis(2_000),
            rows: 3,
            payload_len: 10,
            checksum: 42,
            chunks: 2,
            id: [1; 16],
            connection: "pets".into(),
        };
        let b = m.encode();
        assert_eq!(Manifest::decode(&b), Ok(m));
        for cut in 0..b.len() {
            assert!(Manifest::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = b.clone();
        flipped[20] ^= 1;
        assert!(Manifest::decode(&flipped).is_err());
    }

    #[test]
    fn urls_are_checked_and_shown_without_password() {
        assert!(RedisConfig::new("http://x").is_err());
        let c = RedisConfig::new("redis://user:hunter2@127.0.0.1:1/0").expect("url");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(redacted("rediss://u:p@h:1"), "rediss://h:1");
    }
}
