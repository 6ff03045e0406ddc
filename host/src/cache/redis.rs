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
//! * **Invalidation across hosts** (strict mode, the default): every connection
//!   and target has a generation *token* in Redis (`<prefix>:g:<hmac>`, plus one for the
//!   whole cache). A write, `reset()` or `cache clear` replaces the token with a new random
//!   one before it returns; every read with a TTL fetches the tokens (one `MGET`) and
//!   builds its keys, memory's and disk's included, with them. So no host serves a result
//!   stored before the write to a read that starts after it. Tokens are random, not
//!   counters, so a Redis that restarts empty or evicts a token cannot bring an old key
//!   back: a missing token is created anew (`SET NX GET`). In pub/sub mode
//!   ([`Invalidation::PubSub`]) a host holds the tokens it fetched while it is subscribed
//!   to the writes' announcements, for at most the staleness window: a memory hit costs
//!   no round trip, and another host's write is seen within that window.
//! * **Whole or nothing.** An entry is a manifest (`<prefix>:e:<key>`: its key, creation
//!   and expiry, row count, payload length, checksum, the chunk count and a random chunk
//!   id, its owner (a keyed digest of the connection's portable identity, what `cache
//!   clear NAME` removes by); its own checksum) and the payload, Arrow IPC as the disk
//!   tier writes it, encoded as it is stored and split into values of at most the chunk
//!   size (`<prefix>:c:<id>:<n>`, 512 MB is Redis's cap), each the xxh3-128 of its slice
//!   and an LZ4 block of it (or the slice itself when LZ4 cannot shrink it); the
//!   manifest's checksum is that of the chunks' checksums. A hit fetches the chunks on a
//!   few connections at once, unpacks each into its place in one buffer and checks it
//!   there while it is in the CPU's cache, checks the chunks' checksums against the
//!   manifest's, and maps the frame's buffers over the buffer, as a disk hit does.
//!   Chunks are written first, under an id no other write uses, and the manifest last:
//!   a reader sees a whole old entry, a whole new one, or a miss. A
//!   damaged, truncated, missing or foreign value is a miss, never an error.
//! * **An optimization, never a dependency.** Every command has a bounded timeout; a
//!   failure (refused, timed out, AUTH refused) warns once per host and turns the tier off
//!   for a while (`retry_after`), so a dead Redis costs one timeout, not one per read.
//!   While it is off, reads use this host's own tiers and keys; a write whose token could
//!   not be replaced is replayed when Redis answers again.
//! * The URL's password is a secret: it never appears in a message this module emits.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use polars::prelude::{DataFrame, Schema};
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
/// How other hosts learn of a write: `strict` (default) or `pubsub`.
pub const REDIS_INVALIDATION_ENV: &str = "PLUGBOARD_CACHE_REDIS_INVALIDATION";
/// In `pubsub` mode, the longest a host keeps generation tokens without hearing from
/// Redis (default 1s): the bound on how stale a result another host's write made can be.
pub const REDIS_STALENESS_ENV: &str = "PLUGBOARD_CACHE_REDIS_STALENESS";
/// A PEM file of the certificates that a `rediss://` server's must chain to, instead of
/// the system's store.
pub const REDIS_CA_ENV: &str = "PLUGBOARD_CACHE_REDIS_CA";

const MAGIC: &[u8; 8] = b"PBREDIS\0";
/// The entry format; a manifest of another version (another plugboard) is a miss.
const VERSION: u32 = 4;
const MAX_CHUNK: u64 = 512 * 1000 * 1000;
const MIN_CHUNK: u64 = 1024;
/// The default chunk size. Measured on loopback (Redis 7, 28 MB fetched): one 28 MB value
/// takes 45 to 65 ms, the same bytes in 1 MiB values 14 ms; the reply of a large value
/// costs Redis and the client more than the round trips of small ones.
const DEFAULT_CHUNK: u64 = 1 << 20;
/// A stored chunk's first byte: how the rest holds its slice of the payload.
const RAW: u8 = 0;
const LZ4: u8 = 1;
/// A stored chunk's head: the codec byte, then the xxh3-128 of its slice.
const CHUNK_HEAD: usize = 17;
/// `GET`s one connection keeps in flight, and the most connections one read fetches on.
/// Measured on loopback (2 cores, 80 chunks of 1 MiB on 2 connections) with pipelines
/// of that many: 16 45 ms, 8 50 ms, 32 58 ms.
const WINDOW: usize = 16;
const MAX_LANES: usize = 4;
/// Chunks outlive their manifest by this, so a manifest never names an expired chunk.
const CHUNK_SLACK: Duration = Duration::from_secs(60);
/// Redis expiries longer than this are cut to it (PX takes milliseconds as i64).
const LONGEST: Duration = Duration::from_secs(10 * 365 * 86_400);

/// How the hosts sharing a Redis learn of each other's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Invalidation {
    /// Every read with a TTL fetches the generation tokens (one round trip, also for a
    /// memory hit): no host serves a pre-write result to a read that starts after the
    /// write returned.
    #[default]
    Strict,
    /// Each host keeps the tokens in memory, subscribed to the writes' announcements
    /// (`<prefix>:inv`), and drops them when one arrives, when the subscription breaks,
    /// or after [`RedisConfig::staleness`]: a memory hit costs no round trip, and a read
    /// on another host may serve a pre-write result for at most that long after the
    /// write returned (usually only the announcement's delivery time). The writing host
    /// itself is always strict.
    PubSub,
}

impl Invalidation {
    /// `strict` or `pubsub`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "strict" => Ok(Self::Strict),
            "pubsub" | "pub/sub" => Ok(Self::PubSub),
            other => Err(format!("expected \"strict\" or \"pubsub\", got {other:?}")),
        }
    }
}

/// How a host reaches its Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    url: String,
    pub prefix: String,
    pub timeout: Duration,
    pub retry_after: Duration,
    pub chunk_bytes: u64,
    pub lock_ttl: Duration,
    pub invalidation: Invalidation,
    /// In [`Invalidation::PubSub`] mode, how long a host keeps a generation token.
    pub staleness: Duration,
    /// The certificates (PEM) a `rediss://` server's must chain to; the system's store
    /// when `None`.
    pub ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("invalidation", &self.invalidation)
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
            chunk_bytes: DEFAULT_CHUNK,
            lock_ttl: Duration::from_secs(30),
            invalidation: Invalidation::Strict,
            staleness: Duration::from_secs(1),
            ca: None,
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

    /// Sets the largest value an entry is split into (1 KiB to 512 MB).
    pub fn set_chunk_bytes(&mut self, n: u64) -> Result<(), String> {
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&n) {
            return Err(format!("{n} bytes is not between 1KiB and 512MB"));
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
        if let Some(m) = var(REDIS_INVALIDATION_ENV) {
            config.invalidation =
                Invalidation::parse(&m).map_err(|e| format!("{REDIS_INVALIDATION_ENV}: {e}"))?;
        }
        if let Some(t) = var(REDIS_STALENESS_ENV) {
            config.staleness = duration(REDIS_STALENESS_ENV, &t)?.max(Duration::from_millis(1));
        }
        if let Some(path) = var(REDIS_CA_ENV) {
            config.ca = Some(path.trim().into());
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

/// The certificates of a CA file (PEM), or why not.
pub(crate) fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, String> {
    // A CA bundle is kilobytes (the system's is about 200 KiB).
    const MAX: u64 = 16 << 20;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    // Not a FIFO, a device or a folder: opening one could block, reading one not end.
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let too_big = || format!("{} is larger than 16 MiB: not a CA file", path.display());
    if meta.len() > MAX {
        return Err(too_big());
    }
    let pem = crate::util::read_at_most(path, MAX)
        .map_err(cannot)?
        .ok_or_else(too_big)?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(pem)
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
    /// Pub/sub mode: the tokens this host holds.
    held: Mutex<Held>,
    /// Starts the pub/sub listener once.
    listening: std::sync::Once,
}

/// The generation tokens a host in pub/sub mode keeps, and whether it may.
#[derive(Default)]
struct Held {
    /// Subscribed: announcements reach this host, so held tokens can be trusted.
    subscribed: bool,
    /// Changes whenever a token may have changed (an announcement, a subscription made
    /// or lost, a write of this host's): a fetch that began under another epoch holds
    /// nothing, since what it read may be older than the change.
    epoch: u64,
    tokens: HashMap<String, (Vec<u8>, Instant)>,
}

impl Held {
    fn forget(&mut self, names: Option<&[String]>) {
        self.epoch += 1;
        match names {
            Some(names) => {
                for n in names {
                    self.tokens.remove(n);
                }
            }
            None => self.tokens.clear(),
        }
    }
}

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Manifest {
    key: Key,
    created: SystemTime,
    expires: SystemTime,
    rows: u64,
    payload_len: u64,
    /// The xxh3-128 of the chunks' own xxh3-128s, in order (each chunk's is in its head),
    /// so that each chunk is checked as it arrives, and all of them against this.
    checksum: u128,
    chunks: u32,
    /// Payload bytes per chunk (the last may hold fewer).
    frame: u64,
    id: [u8; 16],
    /// Whose entry it is: a keyed digest of the connection's portable identity, what
    /// `cache clear NAME` removes by.
    owner: [u8; 16],
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
        b.extend_from_slice(&self.frame.to_le_bytes());
        b.extend_from_slice(&self.id);
        b.extend_from_slice(&self.owner);
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
        let frame = u64_(take(8)?);
        let id: [u8; 16] = take(16)?.try_into().unwrap_or_default();
        let owner: [u8; 16] = take(16)?.try_into().unwrap_or_default();
        let name_len = u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()) as usize;
        let connection = String::from_utf8_lossy(take(name_len)?).into_owned();
        if at != body.len() {
            return Err("longer than its manifest");
        }
        if frame == 0 || frame > MAX_CHUNK || payload_len.div_ceil(frame) != u64::from(chunks) {
            return Err("its chunks do not cover its payload");
        }
        Ok(Self {
            key,
            created,
            expires,
            rows,
            payload_len,
            checksum,
            chunks,
            frame,
            id,
            owner,
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
        let invalid = || {
            format!(
                "{REDIS_ENV}: {} is not a valid Redis URL",
                redacted(&config.url)
            )
        };
        let client = match &config.ca {
            None => redis::Client::open(config.url.as_str()).map_err(|_| invalid())?,
            Some(path) => {
                let pem = read_ca(path).map_err(|e| format!("{REDIS_CA_ENV}: {e}"))?;
                redis::Client::build_with_tls(
                    config.url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
                .map_err(|e| format!("{REDIS_CA_ENV}: {}: {e}", path.display()))?
            }
        };
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
                held: Mutex::new(Held::default()),
                listening: std::sync::Once::new(),
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
        if !unbumped.is_empty()
            && let Err(e) =
                Self::replace_tokens(&mut conn, &self.channel(), &unbumped, &self.all_key())
        {
            self.inner
                .unbumped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(unbumped);
            return Err(e);
        }
        Ok(conn)
    }

    /// Runs `f` on a connection; `None` if the tier is off or the call failed.
    fn with_conn<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection, &[u8; 32]) -> RedisResult<T>,
    ) -> Option<T> {
        self.with_conn_in_step(what, |conn, key, _| f(conn, key))
    }

    /// [`Self::with_conn`] for a caller that may leave replies unread: one that sets the
    /// flag drops the connection instead of pooling it.
    fn with_conn_in_step<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection, &[u8; 32], &mut bool) -> RedisResult<T>,
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
        let mut out_of_step = false;
        match f(&mut conn, &key, &mut out_of_step) {
            Ok(v) if out_of_step => Some(v),
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
                } else if !conn.is_open() || out_of_step {
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

    /// The names of the generation tokens of `scopes`, the whole cache's first.
    fn token_names(&self, key: &[u8; 32], scopes: &[Vec<u8>]) -> Vec<String> {
        let mut names = vec![self.all_key()];
        names.extend(scopes.iter().map(|s| self.generation_key(key, s)));
        names
    }

    fn entry_key(key: &[u8; 32], scopes: &[Vec<u8>], tokens: &[Vec<u8>], parts: &[&[u8]]) -> Key {
        let mut all: Vec<&[u8]> = vec![b"entry-v1"];
        all.extend(scopes.iter().map(Vec::as_slice));
        all.extend(tokens.iter().map(Vec::as_slice));
        all.extend_from_slice(parts);
        Self::hmac(key, all)
    }

    /// The key an entry has in Redis: the scopes (a connection's portable identity, the
    /// target it reached), their current generation tokens, and `parts` (method,
    /// request). `None` when Redis cannot be reached: the read then keeps to this host.
    /// In pub/sub mode the tokens come from memory while they may be trusted.
    pub(crate) fn shared_key(&self, scopes: &[Vec<u8>], parts: &[&[u8]]) -> Option<Key> {
        let pubsub = self.inner.config.invalidation == Invalidation::PubSub;
        if pubsub {
            self.listen();
            if let Some(key) = self.inner.key.get() {
                let names = self.token_names(key, scopes);
                if let Some(tokens) = self.held_tokens(&names) {
                    return Some(Self::entry_key(key, scopes, &tokens, parts));
                }
            }
        }
        let epoch = self.held().epoch;
        // The window runs from before the fetch: a token may be replaced the moment
        // Redis has answered.
        let asked = Instant::now();
        let (key, names, tokens) = self.with_conn("cannot read generations", |conn, key| {
            let names = self.token_names(key, scopes);
            let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(&names).query(conn)?;
            let mut tokens = Vec::with_capacity(got.len());
            for (name, token) in names.iter().zip(got) {
                let token = match token {
                    Some(t) => t,
                    None => {
                        let mine: [u8; 16] = random();
                        let old: Option<Vec<u8>> = redis::cmd("SET")
                            .arg(name)
                            .arg(mine.as_slice())
                            .arg("NX")
                            .arg("GET")
                            .query(conn)?;
                        old.unwrap_or_else(|| mine.to_vec())
                    }
                };
                tokens.push(token);
            }
            Ok((*key, names, tokens))
        })?;
        if pubsub {
            let mut held = self.held();
            if held.subscribed && held.epoch == epoch {
                for (n, t) in names.into_iter().zip(&tokens) {
                    held.tokens.insert(n, (t.clone(), asked));
                }
            }
        }
        Some(Self::entry_key(&key, scopes, &tokens, parts))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.inner.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every token of `names` from memory, if all are held, young enough, and the
    /// subscription is up.
    fn held_tokens(&self, names: &[String]) -> Option<Vec<Vec<u8>>> {
        let held = self.held();
        if !held.subscribed {
            return None;
        }
        let window = self.inner.config.staleness;
        names
            .iter()
            .map(|n| {
                let (token, since) = held.tokens.get(n)?;
                (since.elapsed() < window).then(|| token.clone())
            })
            .collect()
    }

    fn channel(&self) -> String {
        format!("{}:inv", self.prefix())
    }

    /// Starts, once, the thread that keeps this host subscribed to the writes'
    /// announcements. It holds the tier weakly and ends soon after the tier is dropped.
    fn listen(&self) {
        self.inner.listening.call_once(|| {
            let weak = Arc::downgrade(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("plugboard-redis-inv".into())
                .spawn(move || listener(&weak));
            if let Err(e) = spawned {
                tracing::warn!("redis cache: cannot start the pub/sub listener: {e}; reads fetch the generations");
            }
        });
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

    /// Replaces the tokens `names` gives and announces it (`<prefix>:inv`, for hosts in
    /// pub/sub mode), then forgets the ones this host held: when it returns, no read that
    /// starts on this host uses an old token, nor, in strict mode, on any host.
    fn bump_names(&self, names: impl Fn(&Self, &[u8; 32]) -> Vec<String>) {
        let done = self.with_conn("cannot invalidate", |conn, key| {
            let names = names(self, key);
            Self::replace_tokens(conn, &self.channel(), &names, &self.all_key())?;
            Ok(names)
        });
        match done {
            Some(names) => {
                let all = names.iter().any(|n| *n == self.all_key());
                self.held().forget((!all).then_some(names.as_slice()));
            }
            None => {
                self.held().forget(None);
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
    }

    /// New random tokens for `names`, then one announcement naming them (`*` when the
    /// whole cache's token is among them).
    fn replace_tokens(
        conn: &mut Connection,
        channel: &str,
        names: &[String],
        all: &str,
    ) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        for n in names {
            pipe.cmd("SET")
                .arg(n)
                .arg(random::<16>().as_slice())
                .ignore();
        }
        let message = if names.iter().any(|n| n == all) {
            "*".to_owned()
        } else {
            names.join("\n")
        };
        pipe.cmd("PUBLISH").arg(channel).arg(message).ignore();
        pipe.query::<()>(conn)
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
        let bytes = self.with_conn("cannot read an entry", |conn, _| {
            redis::cmd("GET")
                .arg(self.manifest_key(key))
                .query::<Option<Vec<u8>>>(conn)
        })??;
        assemble(&bytes, Some(key), max_age, grace, |m, payload| {
            self.fetch_chunks(m, payload)
        })
        .inspect_err(|reason| tracing::debug!("redis cache: ignoring an entry: {reason}"))
        .ok()
    }

    /// Fills `payload` with the entry's chunks, each unpacked straight into its slice and
    /// checked there while it is in the cache: on a few connections at once for a large
    /// entry (a lane each, every lane keeping [`WINDOW`] `GET`s in flight), so one lane's
    /// chunks are unpacked while another's arrive. Returns the chunks' checksums, in order.
    fn fetch_chunks(
        &self,
        m: &Manifest,
        payload: &mut [u8],
    ) -> Result<Vec<u128>, Cow<'static, str>> {
        let frame = usize::try_from(m.frame).map_err(|_| "chunks too large for this host")?;
        let wanted = if m.chunks >= 2 * WINDOW as u32 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            1
        };
        let lanes = wanted.clamp(1, MAX_LANES);
        let mut work: Vec<Vec<(u32, &mut [u8])>> = (0..lanes).map(|_| Vec::new()).collect();
        for (n, slot) in payload.chunks_mut(frame).enumerate() {
            work[n % lanes].push((n as u32, slot));
        }
        let mut sums = vec![0u128; m.chunks as usize];
        let fetched = std::thread::scope(|scope| {
            let mut work = work.into_iter();
            let first = work.next().unwrap_or_default();
            let others: Vec<_> = work
                .map(|lane| scope.spawn(move || self.fetch_lane(&m.id, lane)))
                .collect();
            let mut fetched = vec![self.fetch_lane(&m.id, first)];
            for lane in others {
                fetched.push(lane.join().unwrap_or(Err("a fetch thread panicked")));
            }
            fetched
        });
        for lane in fetched {
            for (n, sum) in lane? {
                sums[n as usize] = sum;
            }
        }
        Ok(sums)
    }

    /// Fetches one lane's chunks into their slots, [`WINDOW`] `GET`s in flight: another is
    /// sent as each reply arrives. Returns each chunk's checksum, checked. After a bad
    /// chunk no more are asked for, and the replies in flight are read and dropped, so the
    /// connection goes back to the pool in step.
    fn fetch_lane(
        &self,
        id: &[u8; 16],
        mut lane: Vec<(u32, &mut [u8])>,
    ) -> Result<Vec<(u32, u128)>, &'static str> {
        if lane.is_empty() {
            return Ok(Vec::new());
        }
        self.with_conn_in_step("cannot read an entry", |conn, _, out_of_step| {
            // Until every reply asked for is read.
            *out_of_step = true;
            let get = |n: u32| {
                redis::cmd("GET")
                    .arg(self.chunk_key(id, n))
                    .get_packed_command()
            };
            let mut sent = 0;
            while sent < lane.len().min(WINDOW) {
                conn.send_packed_command(&get(lane[sent].0))?;
                sent += 1;
            }
            let mut sums = Vec::with_capacity(lane.len());
            let mut failed = None;
            // Every reply asked for is read, also after a failure (then no more are asked).
            for i in 0..lane.len() {
                if i == sent {
                    break;
                }
                let reply = conn.recv_response()?;
                if failed.is_none() && sent < lane.len() {
                    conn.send_packed_command(&get(lane[sent].0))?;
                    sent += 1;
                }
                if failed.is_some() {
                    continue;
                }
                let (n, slot) = &mut lane[i];
                match reply {
                    redis::Value::BulkString(stored) => match unpack(&stored, slot) {
                        Ok(sum) => sums.push((*n, sum)),
                        Err(reason) => failed = Some(reason),
                    },
                    redis::Value::Nil => failed = Some("a chunk is missing"),
                    _ => failed = Some("a chunk that is not a string"),
                }
            }
            *out_of_step = false;
            Ok(failed.map_or(Ok(sums), Err))
        })
        .unwrap_or(Err("the redis tier is unavailable"))
    }

    /// Stores a whole result: encoded into chunks as it goes, the manifest last.
    fn store_shared(
        &self,
        key: &Key,
        owner: Owner<'_>,
        df: &DataFrame,
        ttl: Duration,
    ) -> Result<(), String> {
        let mut pending = Box::new(self.start(key, owner, ttl, df.schema())?);
        tier::Pending::write(pending.as_mut(), df)?;
        tier::Pending::commit(pending)
    }

    /// Starts an entry that arrives batch by batch: Arrow IPC as the disk tier writes it
    /// (uncompressed, so a hit maps its buffers), each chunk compressed on its own.
    fn start(
        &self,
        key: &Key,
        owner: Owner<'_>,
        ttl: Duration,
        schema: &Schema,
    ) -> Result<Pending, String> {
        let entry = Entry::new(self, key, owner, ttl);
        let writer = crate::export::ipc_writer(Sink(Arc::clone(&entry.chunks)), schema, None)
            .map_err(|e| entry.failure(&e))?;
        Ok(Pending {
            entry,
            writer,
            rows: 0,
        })
    }

    /// A failure to store because the tier went off is not worth a second warning: the
    /// first one said reads go on without Redis.
    fn quiet(&self, stored: Result<(), String>) -> Result<(), String> {
        match stored {
            Err(_) if self.is_down() => Ok(()),
            other => other,
        }
    }

    /// Removes every entry whose owner is `portable` (a connection's portable
    /// identity), stored by any host: what `cache clear NAME` does after replacing the
    /// connection's tokens made them unreachable.
    pub(crate) fn clear_owner(&self, portable: &[u8]) -> Removed {
        self.with_conn("cannot clear", |conn, key| {
            let owner = Self::owner_tag(key, portable);
            let mut removed = Removed::default();
            let names = Self::scan(conn, &format!("{}:e:*", self.prefix()))?;
            for batch in names.chunks(500) {
                let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(batch).query(conn)?;
                let mut doomed = Vec::new();
                for (name, m) in batch.iter().zip(got) {
                    let Some(m) = m.and_then(|b| Manifest::decode(&b).ok()) else {
                        continue;
                    };
                    if m.owner != owner {
                        continue;
                    }
                    removed.entries += 1;
                    removed.bytes += m.payload_len;
                    doomed.push(name.clone());
                    doomed.extend((0..m.chunks).map(|n| self.chunk_key(&m.id, n)));
                }
                if !doomed.is_empty() {
                    redis::cmd("UNLINK").arg(doomed).query::<()>(conn)?;
                }
            }
            Ok(removed)
        })
        .unwrap_or_default()
    }

    fn owner_tag(key: &[u8; 32], portable: &[u8]) -> [u8; 16] {
        let h = Self::hmac(key, [b"owner".as_slice(), portable]);
        h[..16].try_into().unwrap_or_default()
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
        let px = px(ttl);
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
                    let keeper = self.keep_claim(&lock, token, ttl);
                    return Flight::Lead(Claim {
                        tier: self.clone(),
                        lock,
                        token,
                        _keeper: keeper,
                    });
                }
                Some(false) => {}
            }
            // The holder extends its claim while it reads, however long that takes; a
            // holder that died stops extending it, and one of the waiters claims it.
            std::thread::sleep(Duration::from_millis(20));
            if let Some(hit) = self.load_shared(key, max_age) {
                return Flight::Hit(hit);
            }
        }
    }

    /// Extends a claim every third of its life until the returned sender is dropped
    /// (the claim released) or the claim is no longer this host's.
    fn keep_claim(
        &self,
        lock: &str,
        token: [u8; 16],
        ttl: Duration,
    ) -> Option<std::sync::mpsc::Sender<()>> {
        const EXTEND: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
             return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let tier = self.clone();
        let lock = lock.to_owned();
        let every = (ttl / 3).max(Duration::from_millis(5));
        std::thread::Builder::new()
            .name("plugboard-redis-claim".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    let extended = tier.with_conn("cannot extend a claim", |conn, _| {
                        redis::cmd("EVAL")
                            .arg(EXTEND)
                            .arg(1)
                            .arg(&lock)
                            .arg(token.as_slice())
                            .arg(px(ttl))
                            .query::<i64>(conn)
                    });
                    if extended != Some(1) {
                        return;
                    }
                }
            })
            .ok()?;
        Some(stop)
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

/// The pub/sub listener's loop: subscribe, then drop held tokens as announcements
/// arrive; on any failure drop them all and subscribe again. Ends when the tier is gone.
fn listener(weak: &std::sync::Weak<Inner>) {
    // How often the loop looks whether the tier is still there.
    const TICK: Duration = Duration::from_millis(250);
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let tier = RedisTier { inner };
        let retry = tier
            .inner
            .config
            .retry_after
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        let connected = tier
            .inner
            .client
            .get_connection_with_timeout(tier.inner.config.timeout)
            .and_then(|conn| {
                conn.set_write_timeout(Some(tier.inner.config.timeout))?;
                conn.set_read_timeout(Some(tier.inner.config.timeout))?;
                Ok(conn)
            });
        let mut conn = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(
                    "redis cache: pub/sub listener cannot connect: {}",
                    tier.scrub(e.to_string())
                );
                drop(tier);
                std::thread::sleep(retry);
                continue;
            }
        };
        let channel = tier.channel();
        let all = tier.all_key();
        let mut pubsub = conn.as_pubsub();
        if let Err(e) = pubsub.subscribe(&channel) {
            tracing::debug!(
                "redis cache: cannot subscribe to {channel}: {}",
                tier.scrub(e.to_string())
            );
            drop(pubsub);
            drop(tier);
            std::thread::sleep(retry);
            continue;
        }
        {
            // Only what is fetched from now on is held: an announcement made before the
            // subscription could have been missed.
            let mut held = tier.held();
            held.forget(None);
            held.subscribed = true;
        }
        let _ = pubsub.set_read_timeout(Some(TICK));
        let weak_tier = Arc::downgrade(&tier.inner);
        drop(tier);
        let failure = loop {
            match pubsub.get_message() {
                Ok(msg) => {
                    let Some(inner) = weak_tier.upgrade() else {
                        return;
                    };
                    let payload: String = msg.get_payload().unwrap_or_default();
                    let mut held = inner.held.lock().unwrap_or_else(|p| p.into_inner());
                    if payload == "*" || payload.split('\n').any(|n| n == all) {
                        held.forget(None);
                    } else {
                        let names: Vec<String> = payload.split('\n').map(str::to_owned).collect();
                        held.forget(Some(&names));
                    }
                }
                Err(e) if e.is_timeout() => {
                    if weak_tier.strong_count() == 0 {
                        return;
                    }
                }
                Err(e) => break e,
            }
        };
        let Some(inner) = weak_tier.upgrade() else {
            return;
        };
        {
            let mut held = inner.held.lock().unwrap_or_else(|p| p.into_inner());
            held.subscribed = false;
            held.forget(None);
        }
        let tier = RedisTier { inner };
        tracing::debug!(
            "redis cache: pub/sub subscription lost ({}); reads fetch the generations until it is back",
            tier.scrub(failure.to_string())
        );
        drop(pubsub);
        drop(tier);
        std::thread::sleep(retry);
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
    /// Dropped first: stops the thread that extends the claim.
    _keeper: Option<std::sync::mpsc::Sender<()>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self._keeper.take();
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

/// A hit from a manifest's bytes and a way to fill its payload (`fill` writes every
/// chunk's bytes into their slice, each checked against the checksum in its head, and
/// returns those checksums): the manifest is checked (its own checksum, `key` when given,
/// the TTL with `grace` past expiry), the chunks' checksums against the manifest's, and
/// the payload decoded as the IPC frame of the manifest's row count. Every way an entry
/// can be damaged, stale or hostile is an `Err`, a miss: the one path of a Redis hit,
/// which the `redis_entry` fuzz target drives with arbitrary bytes.
fn assemble(
    manifest: &[u8],
    key: Option<&Key>,
    max_age: Duration,
    grace: Duration,
    fill: impl FnOnce(&Manifest, &mut [u8]) -> Result<Vec<u128>, Cow<'static, str>>,
) -> Result<Hit, Cow<'static, str>> {
    let m = Manifest::decode(manifest)?;
    let now = SystemTime::now();
    let age = now.duration_since(m.created).unwrap_or_default();
    let expires = m.expires.checked_add(grace).unwrap_or(m.expires);
    if key.is_some_and(|k| m.key != *k) {
        return Err("the entry belongs to another key".into());
    }
    if now >= expires || age >= max_age {
        return Err("older than the TTL".into());
    }
    let Some(mut payload) = usize::try_from(m.payload_len)
        .ok()
        .and_then(crate::sys::mmap::Aligned::zeroed)
    else {
        tracing::warn!(
            "redis cache: ignoring an entry of {} bytes: no memory for it",
            m.payload_len
        );
        return Err("no memory for the entry".into());
    };
    let sums = fill(&m, payload.as_mut_slice())?;
    if sums.len() != m.chunks as usize || chunk_sums(&sums) != m.checksum {
        return Err("checksum mismatch".into());
    }
    // Every chunk's bytes were checked against their checksum, and those against the
    // manifest's.
    let damaged = |why: &str| {
        tracing::warn!("redis cache: ignoring a damaged entry ({why})");
        Cow::Owned(format!("damaged: {why}"))
    };
    match crate::sys::mmap::verified_ipc_frame(payload) {
        Ok(df) if df.height() as u64 == m.rows => Ok(Hit {
            df,
            created: m.created,
            expires: m.expires,
        }),
        Ok(_) => Err(damaged("row count mismatch")),
        Err(reason) => Err(damaged(&reason)),
    }
}

/// The stored form of a chunk's `raw` bytes: LZ4's block format behind [`LZ4`], or the
/// bytes themselves behind [`RAW`] when LZ4 cannot make them smaller.
/// The checksum a manifest holds: the xxh3-128 of its chunks' xxh3-128s, in order.
fn chunk_sums(sums: &[u128]) -> u128 {
    let mut root = xxhash_rust::xxh3::Xxh3::new();
    for sum in sums {
        root.update(&sum.to_le_bytes());
    }
    root.digest128()
}

/// The stored form of a slice of the payload, into `out`: a codec byte, the slice's
/// xxh3-128, then an LZ4 block of it, or the slice itself when LZ4 cannot shrink it.
/// Returns the checksum.
fn pack(raw: &[u8], out: &mut Vec<u8>) -> u128 {
    let sum = xxhash_rust::xxh3::xxh3_128(raw);
    out.clear();
    out.resize(CHUNK_HEAD + raw.len(), 0);
    out[1..CHUNK_HEAD].copy_from_slice(&sum.to_le_bytes());
    // Shorter than `raw` or not at all (LZ4 fails when the output has no room).
    let shrunk = match raw.len() {
        0 | 1 => None,
        n => lz4::block::compress_to_buffer(raw, None, false, &mut out[CHUNK_HEAD..][..n - 1]).ok(),
    };
    match shrunk {
        Some(n) => {
            out[0] = LZ4;
            out.truncate(CHUNK_HEAD + n);
        }
        None => {
            out[0] = RAW;
            out[CHUNK_HEAD..].copy_from_slice(raw);
        }
    }
    sum
}

/// Unpacks a stored chunk into `slot`, which it must fill exactly with bytes of the
/// checksum its head names. Returns that checksum.
fn unpack(stored: &[u8], slot: &mut [u8]) -> Result<u128, &'static str> {
    let (&[codec, ref sum @ ..], body) = stored
        .split_first_chunk::<CHUNK_HEAD>()
        .ok_or("a chunk shorter than its head")?;
    match codec {
        RAW if body.len() == slot.len() => slot.copy_from_slice(body),
        LZ4 => {
            let size = i32::try_from(slot.len()).map_err(|_| "a chunk too large for LZ4")?;
            match lz4::block::decompress_to_buffer(body, Some(size), slot) {
                Ok(n) if n == slot.len() => {}
                _ => return Err("a chunk does not decompress to its size"),
            }
        }
        _ => return Err("a chunk of another size or kind"),
    }
    let sum = u128::from_le_bytes(*sum);
    if xxhash_rust::xxh3::xxh3_128(slot) != sum {
        return Err("chunk checksum mismatch");
    }
    Ok(sum)
}

// ----------------------------------------------------------------------------------------
// The `redis_entry` fuzz target (`crate::fuzzing`): a manifest and its chunks as bytes,
// through the very checks a hit from Redis passes.

/// Offsets in an encoded manifest: created, expires, payload length, checksum, chunks,
/// frame, which the fuzz input's flags fix up to get past the checks that damaged bytes
/// do not get past.
const M_CREATED: usize = 12;
const M_EXPIRES: usize = 20;
const M_PAYLOAD_LEN: usize = 36;
const M_CHECKSUM: usize = 44;
const M_CHUNKS: usize = 92;
const M_FRAME: usize = 96;
/// The fuzzer's payloads stay small: a manifest may ask for any size (that is a miss when
/// there is no memory), but mapping gigabytes per input only slows the fuzzer.
const FUZZ_PAYLOAD: u64 = 16 << 20;

/// A fuzz input as a Redis entry: `flags`, then the manifest (a u16 length and its
/// bytes), then its chunks (each a u32 length and its stored bytes). Flags: bit 0 fixes
/// the manifest's own checksum, 1 its chunks' checksum to the chunks given, 2 its times to
/// now and an hour on, 3 its chunk count to what its length and frame need. Returns the
/// frame of a hit.
pub(crate) fn fuzz_entry(data: &[u8]) -> Option<DataFrame> {
    let (&flags, rest) = data.split_first()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let (manifest, mut rest) = rest.split_at_checked(usize::from(u16::from_le_bytes(*len)))?;
    let mut chunks = Vec::new();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = (u32::from_le_bytes(*len) as usize).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        chunks.push(chunk);
        rest = tail;
    }
    let mut manifest = manifest.to_vec();
    fix_up_manifest(&mut manifest, flags, &chunks);
    if Manifest::decode(&manifest).is_ok_and(|m| m.payload_len > FUZZ_PAYLOAD) {
        return None;
    }
    let fill = |m: &Manifest, payload: &mut [u8]| {
        let frame = usize::try_from(m.frame).map_err(|_| "chunks too large for this host")?;
        let mut given = chunks.iter();
        payload
            .chunks_mut(frame)
            .map(|slot| unpack(given.next().ok_or("a chunk is missing")?, slot).map_err(Cow::from))
            .collect()
    };
    assemble(
        &manifest,
        None,
        Duration::from_secs(3600),
        Duration::ZERO,
        fill,
    )
    .ok()
    .map(|h| h.df)
}

fn fix_up_manifest(m: &mut [u8], flags: u8, chunks: &[&[u8]]) {
    if m.len() < M_FRAME + 8 + 8 {
        return;
    }
    let u64_at =
        |m: &[u8], at: usize| u64::from_le_bytes(m[at..at + 8].try_into().unwrap_or_default());
    if flags & 4 != 0 {
        let now = millis(SystemTime::now());
        m[M_CREATED..M_CREATED + 8].copy_from_slice(&(now - 1000).to_le_bytes());
        m[M_EXPIRES..M_EXPIRES + 8].copy_from_slice(&(now + 3_600_000).to_le_bytes());
    }
    if flags & 8 != 0 {
        let (len, frame) = (u64_at(m, M_PAYLOAD_LEN), u64_at(m, M_FRAME));
        if frame > 0 {
            let n = u32::try_from(len.div_ceil(frame)).unwrap_or(u32::MAX);
            m[M_CHUNKS..M_CHUNKS + 4].copy_from_slice(&n.to_le_bytes());
        }
    }
    if flags & 2 != 0 {
        let sums: Vec<u128> = chunks
            .iter()
            .filter_map(|c| c.get(1..CHUNK_HEAD))
            .map(|s| u128::from_le_bytes(s.try_into().unwrap_or_default()))
            .collect();
        m[M_CHECKSUM..M_CHECKSUM + 16].copy_from_slice(&chunk_sums(&sums).to_le_bytes());
    }
    if flags & 1 != 0 {
        let body = m.len() - 8;
        let sum = xxhash_rust::xxh3::xxh3_64(&m[..body]);
        m[body..].copy_from_slice(&sum.to_le_bytes());
    }
}

/// `df` stored as an entry of chunks of `frame` payload bytes, as a `redis_entry` input
/// whose times are fixed up to now (flags 4 | 1).
pub(crate) fn fuzz_seed(df: &DataFrame, frame: usize) -> Option<Vec<u8>> {
    let mut payload = Vec::new();
    let mut writer = crate::export::ipc_writer(&mut payload, df.schema(), None).ok()?;
    writer.write_batch(&crate::export::aligned(df)).ok()?;
    writer.finish().ok()?;
    Some(fuzz_seed_of(&payload, df.height(), frame))
}

/// A `redis_entry` input of the IPC file `payload` (of `rows` rows), as the tier stores it
/// in chunks of `frame` bytes: a forger's entry too, whose checksums all match.
fn fuzz_seed_of(payload: &[u8], rows: usize, frame: usize) -> Vec<u8> {
    let frame = frame.max(1);
    let mut stored = Vec::new();
    let mut sums = Vec::new();
    let mut packed = Vec::new();
    for slice in payload.chunks(frame) {
        sums.push(pack(slice, &mut packed));
        stored.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        stored.extend_from_slice(&packed);
    }
    // A fixed time, so that the seed is the same bytes each time; flags 4 make it fresh.
    let made = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let manifest = Manifest {
        key: [7; 32],
        created: made,
        expires: made + Duration::from_secs(3600),
        rows: rows as u64,
        payload_len: payload.len() as u64,
        checksum: chunk_sums(&sums),
        chunks: sums.len() as u32,
        frame: frame as u64,
        id: [9; 16],
        owner: [3; 16],
        connection: "seed".to_owned(),
    }
    .encode();
    let mut input = vec![4 | 1u8];
    input.extend_from_slice(&(manifest.len() as u16).to_le_bytes());
    input.extend_from_slice(&manifest);
    input.extend_from_slice(&stored);
    input
}

/// An entry being written: its chunks go to Redis as they fill (under a random id no
/// other write uses), and the manifest last, on [`Entry::commit`]; an entry dropped
/// unfinished removes the chunks it sent. Only one chunk is held in memory.
struct Entry {
    tier: RedisTier,
    key: Key,
    portable: Vec<u8>,
    connection: String,
    created: SystemTime,
    /// How long it is fresh, and how long Redis keeps it (`keep` longer, for
    /// `stale_if_error`).
    ttl: Duration,
    lifetime: Duration,
    chunks: Arc<Mutex<Chunks>>,
    committed: bool,
}

/// The chunks of an [`Entry`] so far.
struct Chunks {
    tier: RedisTier,
    id: [u8; 16],
    /// Payload bytes per chunk: the chunk size less its head.
    frame: usize,
    /// Milliseconds a chunk lives: past its manifest, so a manifest never names an
    /// expired chunk.
    px: u64,
    buf: Vec<u8>,
    /// The stored form of `buf`, reused.
    packed: Vec<u8>,
    sent: u32,
    len: u64,
    /// The checksum of each chunk sent.
    sums: Vec<u128>,
    error: Option<String>,
}

fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Chunks {
    fn push(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        if let Some(e) = &self.error {
            return Err(std::io::Error::other(e.clone()));
        }
        self.len += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = self.frame - self.buf.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.buf.extend_from_slice(now);
            bytes = later;
            if self.buf.len() == self.frame {
                self.send()?;
            }
        }
        Ok(())
    }

    /// Sends what is buffered as the next chunk.
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let name = self.tier.chunk_key(&self.id, self.sent);
        let sum = pack(&self.buf, &mut self.packed);
        let sent = self.tier.with_conn("cannot store an entry", |conn, _| {
            redis::cmd("SET")
                .arg(&name)
                .arg(self.packed.as_slice())
                .arg("PX")
                .arg(self.px)
                .query::<()>(conn)
        });
        if sent.is_none() {
            let e = "the redis tier is unavailable".to_owned();
            self.error = Some(e.clone());
            return Err(std::io::Error::other(e));
        }
        self.sent += 1;
        self.sums.push(sum);
        self.buf.clear();
        Ok(())
    }

    /// Removes the chunks sent so far.
    fn discard(&mut self) {
        let names: Vec<String> = (0..self.sent)
            .map(|n| self.tier.chunk_key(&self.id, n))
            .collect();
        if !names.is_empty() {
            let _ = self
                .tier
                .with_conn("cannot remove an unfinished entry", |conn, _| {
                    redis::cmd("UNLINK").arg(names).query::<()>(conn)
                });
        }
        self.sent = 0;
    }
}

/// Where the IPC writer writes an [`Entry`] (shared: polars' batched writer keeps its
/// writer).
struct Sink(Arc<Mutex<Chunks>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Entry {
    fn new(tier: &RedisTier, key: &Key, owner: Owner<'_>, ttl: Duration) -> Self {
        let ttl = ttl.min(LONGEST);
        let lifetime = ttl.saturating_add(owner.keep).min(LONGEST);
        let frame = usize::try_from(tier.inner.config.chunk_bytes - CHUNK_HEAD as u64)
            .unwrap_or(usize::MAX)
            .max(1);
        Self {
            tier: tier.clone(),
            key: *key,
            portable: owner.portable.to_vec(),
            connection: owner.connection.to_owned(),
            created: SystemTime::now(),
            ttl,
            lifetime,
            chunks: Arc::new(Mutex::new(Chunks {
                tier: tier.clone(),
                id: random(),
                frame,
                px: px(lifetime + CHUNK_SLACK),
                buf: Vec::with_capacity(frame.min(1 << 20)),
                packed: Vec::new(),
                sent: 0,
                len: 0,
                sums: Vec::new(),
                error: None,
            })),
            committed: false,
        }
    }

    fn chunks(&self) -> std::sync::MutexGuard<'_, Chunks> {
        self.chunks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the encoder stopped: Redis's failure if that was it.
    fn failure(&self, e: &polars::error::PolarsError) -> String {
        self.chunks()
            .error
            .clone()
            .unwrap_or_else(|| format!("cannot encode the result: {e}"))
    }

    /// Sends the last chunk, then the manifest: the entry is visible from here.
    fn commit(mut self, rows: u64) -> Result<(), String> {
        let (id, sent, frame, len, checksum) = {
            let mut c = self.chunks();
            c.send().map_err(|e| e.to_string())?;
            (c.id, c.sent, c.frame as u64, c.len, chunk_sums(&c.sums))
        };
        let stored = self.tier.with_conn("cannot store an entry", |conn, key| {
            let m = Manifest {
                key: self.key,
                created: self.created,
                expires: self.created + self.ttl,
                rows,
                payload_len: len,
                checksum,
                chunks: sent,
                frame,
                id,
                owner: RedisTier::owner_tag(key, &self.portable),
                connection: self.connection.clone(),
            };
            // Redis expires the entry itself, `keep` past its TTL for stale_if_error
            // (the manifest's own expiry still says when it stops being fresh).
            let old: Option<Vec<u8>> = redis::cmd("SET")
                .arg(self.tier.manifest_key(&self.key))
                .arg(m.encode())
                .arg("PX")
                .arg(px(self.lifetime))
                .arg("GET")
                .query(conn)?;
            if let Some(old) = old.and_then(|b| Manifest::decode(&b).ok()) {
                let names: Vec<String> = (0..old.chunks)
                    .map(|n| self.tier.chunk_key(&old.id, n))
                    .collect();
                if !names.is_empty() {
                    let _: RedisResult<()> = redis::cmd("UNLINK").arg(names).query(conn);
                }
            }
            Ok(())
        });
        match stored {
            Some(()) => {
                self.committed = true;
                Ok(())
            }
            None => Err("the redis tier is unavailable".to_owned()),
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if !self.committed {
            self.chunks().discard();
        }
    }
}

/// A streamed result bound for Redis, encoded batch by batch into an [`Entry`].
struct Pending {
    entry: Entry,
    writer: polars::io::ipc::BatchedWriter<Sink>,
    rows: u64,
}

impl tier::Pending for Pending {
    fn write(&mut self, df: &DataFrame) -> Result<(), String> {
        let written = self
            .writer
            .write_batch(&crate::export::aligned(df))
            .map_err(|e| self.entry.failure(&e));
        self.rows += df.height() as u64;
        self.entry.tier.quiet(written)
    }

    fn commit(mut self: Box<Self>) -> Result<(), String> {
        let tier = self.entry.tier.clone();
        let finished = self.writer.finish().map_err(|e| self.entry.failure(&e));
        let Pending { entry, rows, .. } = *self;
        tier.quiet(finished.and_then(|()| entry.commit(rows)))
    }
}

/// What a streamed read stores in a tier that was off when it began: nothing.
struct Skip;

impl tier::Pending for Skip {
    fn write(&mut self, _df: &DataFrame) -> Result<(), String> {
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), String> {
        Ok(())
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
            Some(key) => self.store_shared(key, owner, df, ttl),
            // Redis was unreachable when the key was built: already warned.
            None => Ok(()),
        }
    }

    fn begin(
        &self,
        keys: &Keys,
        owner: Owner<'_>,
        ttl: Duration,
        schema: &Schema,
    ) -> Result<Box<dyn tier::Pending>, String> {
        let Some(key) = keys.shared else {
            // Redis was unreachable when the key was built: already warned.
            return Ok(Box::new(Skip));
        };
        Ok(Box::new(self.start(&key, owner, ttl, schema)?))
    }

    fn clear_identity(&self, _identity: &str) -> Removed {
        // Entries are owned by portable identities, not this host's: see `clear_owner`.
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

    /// An entry whose chunks, manifest and checksums are all a forger's own, over a
    /// payload whose text view points past its data: a miss, as the genuine one is a hit.
    #[test]
    fn a_forged_entry_with_matching_checksums_is_a_miss() {
        // Anyone who can write to the shared Redis can write a manifest and chunks whose
        // checksums match. Here the forger lowers a column's null count below its bitmap's:
        // polars trusts the count, so without the check this decodes into a frame whose
        // nulls disagree with its own bitmap instead of being refused.
        let df = DataFrame::new_infer_height(vec![polars::prelude::Column::new(
            "n".into(),
            [Some(1i64), None, None, Some(4), None],
        )])
        .expect("frame");
        let mut payload = Vec::new();
        let mut writer = crate::export::ipc_writer(&mut payload, df.schema(), None).expect("w");
        writer.write_batch(&df).expect("batch");
        writer.finish().expect("finish");
        let hit = fuzz_entry(&fuzz_seed_of(&payload, 5, 64)).expect("the genuine entry is a hit");
        assert!(hit.equals_missing(&df));

        // The record batch's field node: 5 values, 3 of them null.
        let node: Vec<u8> = [5i64.to_le_bytes(), 3i64.to_le_bytes()].concat();
        let at: Vec<usize> = (0..payload.len() - node.len())
            .filter(|&i| payload[i..i + node.len()] == node[..])
            .collect();
        assert_eq!(at.len(), 1, "one field node of 5 values and 3 nulls");
        payload[at[0] + 8..at[0] + 16].copy_from_slice(&1i64.to_le_bytes());
        assert!(fuzz_entry(&fuzz_seed_of(&payload, 5, 64)).is_none());
    }

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
            frame: 6,
            id: [1; 16],
            owner: [2; 16],
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
    fn a_manifest_whose_chunks_do_not_cover_its_payload_is_refused() {
        let m = |payload_len: u64, chunks: u32, frame: u64| Manifest {
            key: [7; 32],
            created: from_millis(1_000),
            expires: from_millis(2_000),
            rows: 3,
            payload_len,
            checksum: 42,
            chunks,
            frame,
            id: [1; 16],
            owner: [2; 16],
            connection: "pets".into(),
        };
        assert!(Manifest::decode(&m(10, 2, 5).encode()).is_ok());
        assert!(Manifest::decode(&m(11, 3, 5).encode()).is_ok());
        for (len, chunks, frame) in [(10, 3, 5), (11, 2, 5), (10, 2, 0), (10, 1, MAX_CHUNK + 1)] {
            assert!(
                Manifest::decode(&m(len, chunks, frame).encode()).is_err(),
                "{len} bytes in {chunks} chunks of {frame}"
            );
        }
    }

    #[test]
    fn the_fuzz_offsets_are_where_encode_puts_the_fields() {
        let seed = fuzz_seed(&DataFrame::empty(), 100).unwrap();
        let len = usize::from(u16::from_le_bytes([seed[1], seed[2]]));
        let manifest = &seed[3..3 + len];
        let m = Manifest::decode(manifest).unwrap();
        let u64_at = |at: usize| u64::from_le_bytes(manifest[at..at + 8].try_into().unwrap());
        assert_eq!(u64_at(M_CREATED) as i64, millis(m.created));
        assert_eq!(u64_at(M_EXPIRES) as i64, millis(m.expires));
        assert_eq!(u64_at(M_PAYLOAD_LEN), m.payload_len);
        assert_eq!(u64_at(M_FRAME), m.frame);
        let checksum = u128::from_le_bytes(manifest[M_CHECKSUM..][..16].try_into().unwrap());
        assert_eq!(checksum, m.checksum);
        let chunks = u32::from_le_bytes(manifest[M_CHUNKS..][..4].try_into().unwrap());
        assert_eq!(chunks, m.chunks);
    }

    #[test]
    fn an_entry_from_bytes_is_a_hit_only_when_every_check_passes() {
        use polars::prelude::*;
        let df = df!("id" => [1i64, 2, 3], "name" => [Some("a"), None, Some("ç")]).unwrap();
        for frame in [1 << 20, 100, 7] {
            let seed = fuzz_seed(&df, frame).unwrap();
            let hit = fuzz_entry(&seed).expect("a stored entry is a hit");
            assert!(hit.equals_missing(&df), "frame {frame}");
            // The manifest's times as stored (flags 0): long expired, a miss.
            assert!(fuzz_entry(&[&[0], &seed[1..]].concat()).is_none());
            // Any byte of a chunk changed: a miss, even with the manifest's checksums fixed
            // up to the damaged chunks.
            let manifest_end = 3 + usize::from(u16::from_le_bytes([seed[1], seed[2]]));
            for at in [
                manifest_end + 4,
                manifest_end + 4 + CHUNK_HEAD,
                seed.len() - 1,
            ] {
                let mut damaged = seed.clone();
                damaged[at] ^= 0x40;
                for flags in [4 | 1, 4 | 2 | 1] {
                    damaged[0] = flags;
                    assert!(
                        fuzz_entry(&damaged).is_none(),
                        "frame {frame}, byte {at}, {flags}"
                    );
                }
            }
            // A chunk missing: a miss.
            let first = u32::from_le_bytes(seed[manifest_end..][..4].try_into().unwrap());
            let one = &seed[..manifest_end + 4 + first as usize];
            assert_eq!(
                fuzz_entry(one).is_some(),
                one.len() == seed.len(),
                "frame {frame}"
            );
        }
        // The manifest damaged: a miss; its own checksum fixed up but the payload's not
        // matching: a miss.
        let seed = fuzz_seed(&df, 100).unwrap();
        let mut bad = seed.clone();
        bad[0] = 4;
        bad[3 + M_PAYLOAD_LEN] ^= 1;
        assert!(fuzz_entry(&bad).is_none());
        bad[0] = 4 | 1;
        assert!(fuzz_entry(&bad).is_none());
        bad[3 + M_PAYLOAD_LEN] ^= 1;
        assert!(fuzz_entry(&bad).is_some());
        // Expired: a miss.
        let mut old = seed.clone();
        old[0] = 4 | 1;
        assert!(fuzz_entry(&old).is_some());
        old[0] = 1;
        assert!(fuzz_entry(&old).is_none());
    }

    #[test]
    fn chunks_pack_and_unpack_exactly() {
        let text: Vec<u8> = b"plugboard ".iter().copied().cycle().take(10_000).collect();
        let noise: Vec<u8> = (0..10_000).map(|_| fastrand::u8(..)).collect();
        let sum = |raw: &[u8]| xxhash_rust::xxh3::xxh3_128(raw);
        let mut packed = Vec::new();
        for (raw, codec) in [
            (&text, LZ4),
            (&noise, RAW),
            (&vec![9u8], RAW),
            (&vec![], RAW),
        ] {
            assert_eq!(pack(raw, &mut packed), sum(raw));
            assert_eq!(packed[0], codec);
            assert!(packed.len() <= raw.len() + CHUNK_HEAD);
            let mut slot = vec![0u8; raw.len()];
            assert_eq!(unpack(&packed, &mut slot), Ok(sum(raw)));
            assert_eq!(&slot, raw);
            // Into a slot of another size: refused, whatever the codec.
            assert!(unpack(&packed, &mut vec![0u8; raw.len() + 1]).is_err());
            if let Some(shorter) = raw.len().checked_sub(1) {
                assert!(unpack(&packed, &mut vec![0u8; shorter]).is_err());
            }
            // A head whose checksum is not the bytes': refused.
            let mut wrong = packed.clone();
            wrong[1] ^= 1;
            assert_eq!(
                unpack(&wrong, &mut slot),
                Err("chunk checksum mismatch"),
                "{codec}"
            );
        }
        pack(&text, &mut packed);
        assert!(packed.len() < text.len() / 10, "{} bytes", packed.len());
        let mut slot = vec![0u8; text.len()];
        assert!(unpack(&[], &mut slot).is_err(), "empty");
        assert!(
            unpack(&[RAW; CHUNK_HEAD - 1], &mut []).is_err(),
            "short head"
        );
        let mut other = packed.clone();
        other[0] = 7;
        assert!(unpack(&other, &mut slot).is_err(), "unknown codec");
        let mut damaged = packed.clone();
        damaged.truncate(packed.len() / 2);
        assert!(unpack(&damaged, &mut slot).is_err(), "truncated block");
        let mut garbage = packed[..CHUNK_HEAD].to_vec();
        garbage.extend([0xff, 0xff, 0xff]);
        assert!(unpack(&garbage, &mut slot).is_err(), "garbage block");
    }

    #[test]
    fn the_manifest_checksum_binds_every_chunk_in_order() {
        let (a, b) = (7u128, 9u128);
        assert_eq!(chunk_sums(&[a, b]), chunk_sums(&[a, b]));
        assert_ne!(chunk_sums(&[a, b]), chunk_sums(&[b, a]));
        assert_ne!(chunk_sums(&[a, b]), chunk_sums(&[a]));
        assert_ne!(chunk_sums(&[a, b]), chunk_sums(&[a, b, 0]));
    }

    #[test]
    fn urls_are_checked_and_shown_without_password() {
        assert!(RedisConfig::new("http://x").is_err());
        let c = RedisConfig::new("redis://user:hunter2@127.0.0.1:1/0").expect("url");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(redacted("rediss://u:p@h:1"), "rediss://h:1");
    }
}
