//! The disk tier of the result cache: what lets separate `plugboard` processes share reads.
//!
//! One file per entry, `<dir>/results-v1/<key>.entry`: a small header, then the result as an
//! uncompressed Arrow IPC file. The header carries the key, the connection's name and
//! identity (never its config: that enters the key only as a digest), the creation and
//! expiry times, the row count, and the payload's length and xxh3-128 checksum; the header
//! has its own checksum.
//!
//! * **Atomic**: an entry is written to a temporary file in the same folder and renamed
//!   over the final name, so a reader sees a whole old entry or a whole new one.
//! * **Verified**: a file that is short, long, damaged, for another key or expired is a
//!   miss (and is replaced by the next write), never an error and never wrong data.
//! * **Bounded, in O(1) per store**: a byte tally shared by every process (in
//!   [`crate::state`]) grows with each store; only when it passes the bound is the
//!   folder walked, removing expired entries and abandoned temporary files first, then
//!   the oldest entries until it is under 90% of the bound, and the tally is set to what
//!   the walk found (which also corrects any drift between processes).
//! * **Invalidation is in the key**: a write, `reset()` or `cache clear` bumps a
//!   generation that every key includes (see [`crate::state`]), so an entry stored by a
//!   read that began before it is simply never looked up. `clear` also removes the
//!   files, for their space.
//! * **Private**: the folder is created 0700, and one that another user owns or could
//!   write is refused: whoever can write entries can forge query results.
//!
//! A hit maps the file: see `crate::sys::mmap`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use polars::prelude::{DataFrame, Schema};

use super::key::Key;
pub use super::state::OpenError;
use super::state::{Opened, State};
use super::tier::{self, Hit, Keys, Owner, Tier};
use super::{Outcome, Removed, Usage};

/// The environment variable that moves the cache folder.
pub const CACHE_DIR_ENV: &str = "PLUGBOARD_CACHE_DIR";
/// The environment variable that sets the disk tier's byte bound (`2GiB`, `500MB`, bytes).
pub const CACHE_MAX_ENV: &str = "PLUGBOARD_CACHE_MAX_BYTES";
/// The disk tier's default byte bound.
pub const DEFAULT_DISK_MAX_BYTES: u64 = 2 << 30;

const MAGIC: &[u8; 8] = b"PLUGBRD\0";
const VERSION: u32 = 1;
/// The fixed part of the header, up to the strings; the header's own checksum is its
/// last field.
const FIXED: usize = 108;
const SUM_AT: usize = 100;
/// Headers are padded to this, which keeps the IPC buffers aligned in a mapping.
const ALIGN: usize = 64;
const MAX_HEADER: usize = 64 * 1024;
const ENTRIES: &str = "results-v1";
const EXTENSION: &str = "entry";
const TMP_PREFIX: &str = ".tmp-";
/// Temporary files older than this belong to a process that died mid-write.
const ABANDONED: Duration = Duration::from_secs(600);

/// The default cache folder: `$PLUGBOARD_CACHE_DIR`, else the user cache dir
/// (`$XDG_CACHE_HOME/plugboard`, `~/.cache/plugboard`).
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => directories::BaseDirs::new().map(|d| d.cache_dir().join("plugboard")),
    }
}

/// The default byte bound: `$PLUGBOARD_CACHE_MAX_BYTES`, else [`DEFAULT_DISK_MAX_BYTES`].
pub fn default_max_bytes() -> Result<u64, String> {
    match std::env::var(CACHE_MAX_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            parse_bytes(&v).map_err(|e| format!("{CACHE_MAX_ENV}: {e}"))
        }
        _ => Ok(DEFAULT_DISK_MAX_BYTES),
    }
}

/// Parses `2GiB`, `500 MB`, `1048576`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{text:?} is not a size ({e}); try 500MB or 2GiB"))
}

/// A size for people: `1.2 MiB`.
pub fn show_bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

/// What one entry's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub key: Key,
    pub connection: String,
    pub identity: String,
    pub created: SystemTime,
    pub expires: SystemTime,
    pub rows: u64,
    pub payload_len: u64,
    pub checksum: u128,
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let name = truncated(&self.connection);
        let identity = truncated(&self.identity);
        let used = FIXED + name.len() + identity.len();
        let len = used.div_ceil(ALIGN) * ALIGN;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        b.extend_from_slice(&millis(self.created).to_le_bytes());
        b.extend_from_slice(&millis(self.expires).to_le_bytes());
        b.extend_from_slice(&self.payload_len.to_le_bytes());
        b.extend_from_slice(&self.checksum.to_le_bytes());
        b.extend_from_slice(&self.rows.to_le_bytes());
        b.extend_from_slice(&self.key);
        b.extend_from_slice(&u16::try_from(name.len()).unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&u16::try_from(identity.len()).unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&[0; 8]); // the header checksum, filled in below
        debug_assert_eq!(b.len(), FIXED);
        b.extend_from_slice(name);
        b.extend_from_slice(identity);
        b.resize(len, 0);
        let sum = xxhash_rust::xxh3::xxh3_64(&b);
        b[SUM_AT..FIXED].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Reads and checks a header; returns it and its length (where the payload starts).
    fn decode(r: &mut impl Read) -> Result<(Header, usize), String> {
        let mut fixed = [0u8; FIXED];
        r.read_exact(&mut fixed)
            .map_err(|_| "shorter than a header")?;
        let mut at = 0usize;
        let mut take = |n: usize| {
            let s = &fixed[at..at + n];
            at += n;
            s
        };
        if take(8) != MAGIC {
            return Err("not a plugboard cache entry".to_owned());
        }
        let u32_at = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap_or_default());
        let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
        let version = u32_at(take(4));
        if version != VERSION {
            return Err(format!("entry format {version}, expected {VERSION}"));
        }
        let len = u32_at(take(4)) as usize;
        let created = from_millis(u64_at(take(8)) as i64);
        let expires = from_millis(u64_at(take(8)) as i64);
        let payload_len = u64_at(take(8));
        let checksum = u128::from_le_bytes(take(16).try_into().unwrap_or_default());
        let rows = u64_at(take(8));
        let key: Key = take(32).try_into().unwrap_or_default();
        let name_len = u16::from_le_bytes(take(2).try_into().unwrap_or_default()) as usize;
        let identity_len = u16::from_le_bytes(take(2).try_into().unwrap_or_default()) as usize;
        let sum = u64_at(take(8));
        let used = FIXED + name_len + identity_len;
        if len < used || len > MAX_HEADER || !len.is_multiple_of(ALIGN) {
            return Err("damaged header".to_owned());
        }
        let mut rest = vec![0u8; len - FIXED];
        r.read_exact(&mut rest)
            .map_err(|_| "shorter than its header")?;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        fixed[SUM_AT..].fill(0);
        h.update(&fixed);
        h.update(&rest);
        if h.digest() != sum {
            return Err("header checksum mismatch".to_owned());
        }
        let strings = &rest[..name_len + identity_len];
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok((
            Header {
                key,
                connection: text(&strings[..name_len]),
                identity: text(&strings[name_len..]),
                created,
                expires,
                rows,
                payload_len,
                checksum,
            },
            len,
        ))
    }
}

fn truncated(s: &str) -> &[u8] {
    let b = s.as_bytes();
    &b[..b.len().min(4096)]
}

/// What is on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// The folder holding the entries.
    pub dir: PathBuf,
    /// The byte bound.
    pub max_bytes: u64,
    pub total: Usage,
    /// Entries past their expiry, still counted in `total` until the next sweep.
    pub expired: u64,
    /// By connection name.
    pub connections: BTreeMap<String, Usage>,
}

/// The disk tier: a folder of entries with a byte bound.
#[derive(Debug, Clone)]
pub struct DiskCache {
    root: PathBuf,
    max_bytes: u64,
    state: Arc<State>,
    /// How many times the folder was walked: what must not happen per read or store.
    walks: Arc<AtomicU64>,
}

impl DiskCache {
    /// The cache in `root`, created (mode 0700) if it does not exist. A folder or state
    /// file that another user owns, or that its group or others can write, is refused.
    pub fn open(root: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, OpenError> {
        let root = root.into();
        let entries = root.join(ENTRIES);
        for dir in [&root, &entries] {
            create_private_dir(dir).map_err(|e| {
                OpenError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
            let file = File::open(dir).map_err(|e| {
                OpenError::Unavailable(format!("cannot open {}: {e}", dir.display()))
            })?;
            super::state::check_private(dir, &file).map_err(OpenError::Refused)?;
        }
        let (state, created) = match State::open(&root)? {
            Opened::Existing(s) => (s, false),
            Opened::Created(s) => (s, true),
        };
        let cache = Self {
            root,
            max_bytes,
            state: Arc::new(state),
            walks: Arc::new(AtomicU64::new(0)),
        };
        if created {
            // Entries made under another key (an older state, an older plugboard) can
            // never be looked up again.
            let removed = cache.remove_where(|_| true);
            if removed.entries > 0 {
                tracing::debug!(
                    "disk cache: new state in {}; removed {} unreachable entries",
                    cache.root.display(),
                    removed.entries
                );
            }
        }
        Ok(cache)
    }

    /// The state that keys are made with, shared by every process using this folder.
    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// How many times the folder has been walked by this handle (and its clones).
    #[cfg(test)]
    pub(crate) fn walks(&self) -> u64 {
        self.walks.load(Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.root
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn entries_dir(&self) -> PathBuf {
        self.root.join(ENTRIES)
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.entries_dir()
            .join(format!("{}.{EXTENSION}", hex::encode(key)))
    }

    /// The entry for `key`, if it is whole, unexpired, and younger than `max_age`.
    /// Anything else is a miss; a damaged file is removed.
    pub(crate) fn load(&self, key: &Key, max_age: Duration) -> Option<Hit> {
        self.load_within(key, max_age, Duration::ZERO)
    }

    /// Like [`DiskCache::load`], accepting an entry up to `grace` past its expiry (and
    /// any age): the last good result, for `stale_if_error`.
    pub(crate) fn load_stale(&self, key: &Key, grace: Duration) -> Option<Hit> {
        self.load_within(key, Duration::MAX, grace)
    }

    fn load_within(&self, key: &Key, max_age: Duration, grace: Duration) -> Option<Hit> {
        let path = self.path(key);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("disk cache: cannot open {}: {e}", path.display());
                return None;
            }
        };
        let (header, offset) = match Header::decode(&mut std::io::BufReader::new(&mut file)) {
            Ok(h) => h,
            Err(reason) => return self.discard(&path, &reason),
        };
        if header.key != *key {
            return self.discard(&path, "the entry belongs to another key");
        }
        let now = SystemTime::now();
        let age = now.duration_since(header.created).unwrap_or_default();
        let expires = header.expires.checked_add(grace).unwrap_or(header.expires);
        if now >= expires || age >= max_age {
            tracing::trace!("disk cache: {} is older than the TTL", path.display());
            return None;
        }
        match crate::sys::mmap::read_ipc_entry(&file, offset, header.payload_len, header.checksum) {
            Ok(df) if df.height() as u64 == header.rows => Some(Hit {
                df,
                created: header.created,
                expires: header.expires,
            }),
            Ok(_) => self.discard(&path, "row count mismatch"),
            Err(reason) => self.discard(&path, &reason),
        }
    }

    fn discard<T>(&self, path: &Path, reason: &str) -> Option<T> {
        tracing::warn!(
            "disk cache: ignoring damaged entry {}: {reason}",
            path.display()
        );
        // Another process may have replaced it already; removing a fresh entry by
        // mistake costs one read, keeping a damaged one costs one per run.
        let size = fs::metadata(path).map_or(0, |m| m.len());
        if fs::remove_file(path).is_ok() {
            self.state.tally_change(0, size);
        }
        None
    }

    /// Stores a result, atomically. A failure leaves nothing behind.
    pub(crate) fn store(
        &self,
        key: &Key,
        connection: &str,
        identity: &str,
        df: &DataFrame,
        ttl: Duration,
    ) -> Result<(), String> {
        let mut pending = self.begin(key, connection, identity, ttl, df.schema())?;
        pending.write(df)?;
        pending.commit()
    }

    /// Starts storing a result that arrives batch by batch (a streamed read): each
    /// [`Pending::write`] appends a batch, and only [`Pending::commit`] makes the entry
    /// visible. Dropping it unfinished leaves nothing behind.
    pub(crate) fn begin(
        &self,
        key: &Key,
        connection: &str,
        identity: &str,
        ttl: Duration,
        schema: &Schema,
    ) -> Result<Pending, String> {
        let dir = self.entries_dir();
        create_private_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let created = SystemTime::now();
        let header = Header {
            key: *key,
            connection: connection.to_owned(),
            identity: identity.to_owned(),
            created,
            expires: created
                .checked_add(ttl)
                .unwrap_or(created + Duration::from_secs(100 * 365 * 86_400)),
            rows: 0,
            payload_len: 0,
            checksum: 0,
        };
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
        let io = |e: std::io::Error| format!("cannot write {}: {e}", tmp.path().display());
        let file = tmp.as_file().try_clone().map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // The header's length does not depend on its numbers: it is rewritten at the end.
        out.write_all(&header.encode()).map_err(io)?;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let hashing = Hashing {
            inner: out,
            tally: Arc::clone(&tally),
        };
        let writer = crate::export::ipc_writer(hashing, schema, None)
            .map_err(|e| format!("cannot encode the result: {e}"))?;
        Ok(Pending {
            cache: self.clone(),
            header,
            tmp,
            writer,
            tally,
        })
    }

    /// Every entry file with its size and modification time.
    fn files(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        self.walks.fetch_add(1, Ordering::Relaxed);
        let Ok(dir) = fs::read_dir(self.entries_dir()) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                meta.is_file()
                    .then(|| (e.path(), meta.len(), meta.modified().unwrap_or(UNIX_EPOCH)))
            })
            .collect()
    }

    fn header_of(path: &Path) -> Option<Header> {
        let file = File::open(path).ok()?;
        Header::decode(&mut std::io::BufReader::with_capacity(4096, file))
            .ok()
            .map(|(h, _)| h)
    }

    /// Counts a stored entry of `size` bytes that replaced one of `replaced` bytes, and
    /// walks the folder only if that puts it over its bound.
    fn account(&self, size: u64, replaced: u64) {
        if self.state.tally_change(size, replaced) > self.max_bytes {
            self.evict();
        }
    }

    /// Removes expired entries, abandoned temporary files, then the oldest entries until
    /// the folder is under 90% of its bound (so that the next walk is many stores away),
    /// and sets the shared tally to what is left.
    pub(crate) fn evict(&self) {
        let now = SystemTime::now();
        let mut live = Vec::new();
        let mut total = 0u64;
        for (path, size, modified) in self.files() {
            let is_tmp = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(TMP_PREFIX));
            if is_tmp {
                if now.duration_since(modified).unwrap_or_default() > ABANDONED {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            let header = Self::header_of(&path);
            if header.is_none() && !path.exists() {
                continue; // removed by another process meanwhile
            }
            if header.is_none_or(|h| h.expires <= now) {
                let _ = fs::remove_file(&path);
                continue;
            }
            total += size;
            live.push((modified, size, path));
        }
        let low_water = self.max_bytes - self.max_bytes / 10;
        if total > self.max_bytes {
            live.sort();
        } else {
            live.clear();
        }
        for (_, size, path) in live {
            if total <= low_water {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                tracing::debug!(
                    "disk cache: evicted {} ({})",
                    path.display(),
                    show_bytes(size)
                );
                total -= size;
            }
        }
        self.state.set_tally(total);
    }

    /// Totals, by connection.
    pub fn stats(&self) -> DiskStats {
        let now = SystemTime::now();
        let mut stats = DiskStats {
            dir: self.root.clone(),
            max_bytes: self.max_bytes,
            ..DiskStats::default()
        };
        for (path, size, _) in self.files() {
            let Some(h) = path
                .extension()
                .is_some_and(|x| x == EXTENSION)
                .then(|| Self::header_of(&path))
                .flatten()
            else {
                continue;
            };
            stats.total.entries += 1;
            stats.total.bytes += size;
            if h.expires <= now {
                stats.expired += 1;
            }
            let usage = stats.connections.entry(h.connection).or_default();
            usage.entries += 1;
            usage.bytes += size;
        }
        stats
    }

    /// Removes every entry. What is stored meanwhile by reads that began before is never
    /// looked up: this bumps the generation of the whole cache.
    pub fn clear(&self) -> Removed {
        self.state.bump_all();
        self.remove_where(|_| true)
    }

    /// Removes the entries of one connection, by its identity (not its name: another
    /// project's connection of the same name is another connection). The caller bumps
    /// the connection's generation.
    pub(crate) fn clear_identity(&self, identity: &str) -> Removed {
        self.remove_where(|path| Self::header_of(path).is_some_and(|h| h.identity == identity))
    }

    fn remove_where(&self, matches: impl Fn(&Path) -> bool) -> Removed {
        let mut removed = Removed::default();
        for (path, size, _) in self.files() {
            let entry = path.extension().is_some_and(|x| x == EXTENSION);
            if entry && matches(&path) && fs::remove_file(&path).is_ok() {
                removed.entries += 1;
                removed.bytes += size;
            }
        }
        self.state.tally_change(0, removed.bytes);
        removed
    }
}

/// Creates a folder readable by its owner only: cached results are query results.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl Tier for DiskCache {
    fn outcome(&self) -> Outcome {
        Outcome::DiskHit
    }

    fn load(&self, keys: &Keys, max_age: Duration) -> Option<Hit> {
        DiskCache::load(self, &keys.local, max_age)
    }

    fn load_stale(&self, keys: &Keys, grace: Duration) -> Option<Hit> {
        DiskCache::load_stale(self, &keys.local, grace)
    }

    fn store(
        &self,
        keys: &Keys,
        owner: Owner<'_>,
        df: &DataFrame,
        ttl: Duration,
    ) -> Result<(), String> {
        DiskCache::store(self, &keys.local, owner.connection, owner.identity, df, ttl)
    }

    fn begin(
        &self,
        keys: &Keys,
        owner: Owner<'_>,
        ttl: Duration,
        schema: &Schema,
    ) -> Result<Box<dyn tier::Pending>, String> {
        DiskCache::begin(
            self,
            &keys.local,
            owner.connection,
            owner.identity,
            ttl,
            schema,
        )
        .map(|p| Box::new(p) as Box<dyn tier::Pending>)
    }

    fn clear_identity(&self, identity: &str) -> Removed {
        DiskCache::clear_identity(self, identity)
    }

    fn clear(&self) -> Removed {
        DiskCache::clear(self)
    }
}

/// A result being written into the disk tier; see [`DiskCache::begin`].
pub(crate) struct Pending {
    cache: DiskCache,
    header: Header,
    tmp: tempfile::NamedTempFile,
    writer: polars::io::ipc::BatchedWriter<Hashing>,
    tally: Arc<Mutex<Tally>>,
}

impl tier::Pending for Pending {
    fn write(&mut self, df: &DataFrame) -> Result<(), String> {
        Pending::write(self, df)
    }

    fn commit(self: Box<Self>) -> Result<(), String> {
        Pending::commit(*self)
    }
}

impl Pending {
    /// Appends a batch.
    pub(crate) fn write(&mut self, df: &DataFrame) -> Result<(), String> {
        self.writer
            .write_batch(&crate::export::aligned(df))
            .map_err(|e| format!("cannot encode the result: {e}"))?;
        self.header.rows += df.height() as u64;
        Ok(())
    }

    /// Finishes the entry and makes it visible.
    pub(crate) fn commit(mut self) -> Result<(), String> {
        let path = self.tmp.path().to_path_buf();
        let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        self.writer
            .finish()
            .map_err(|e| format!("cannot encode the result: {e}"))?;
        // Flushes the buffer and closes the writer's handle on the file.
        drop(self.writer);
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(e) = tally.error {
            return Err(io(e));
        }
        self.header.payload_len = tally.len;
        self.header.checksum = tally.hash.digest128();
        let mut file = self.tmp.as_file();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&self.header.encode()).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let target = self.cache.path(&self.header.key);
        let replaced = fs::metadata(&target).map_or(0, |m| m.len());
        self.tmp
            .persist(&target)
            .map_err(|e| format!("cannot rename into {}: {}", target.display(), e.error))?;
        self.cache.account(size, replaced);
        Ok(())
    }
}

/// What went through a [`Hashing`] writer.
#[derive(Default)]
struct Tally {
    hash: xxhash_rust::xxh3::Xxh3,
    len: u64,
    /// The first failure to flush on drop, which `Write` cannot report otherwise.
    error: Option<std::io::Error>,
}

/// Hashes what it writes; the tally is shared, because polars' batched writer does not
/// hand its writer back.
struct Hashing {
    inner: BufWriter<File>,
    tally: Arc<Mutex<Tally>>,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        tally.hash.update(&buf[..n]);
        tally.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for Hashing {
    fn drop(&mut self) {
        if let Err(e) = self.inner.flush() {
            self.tally
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .error
                .get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn frame() -> DataFrame {
        let n = 100_000;
        df!(
            "i" => (0..n).collect::<Vec<i64>>(),
            "f" => (0..n).map(|i| i as f64 / 3.0).collect::<Vec<f64>>(),
            "s" => (0..n).map(|i| if i % 7 == 0 { None } else { Some(format!("value number {i}")) }).collect::<Vec<_>>(),
            "b" => (0..n).map(|i| i % 2 == 0).collect::<Vec<bool>>(),
            "bin" => (0..n).map(|i| vec![(i % 256) as u8; (i % 20) as usize]).collect::<Vec<Vec<u8>>>(),
        )
        .expect("frame")
    }

    fn cache() -> (tempfile::TempDir, DiskCache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DiskCache::open(dir.path(), DEFAULT_DISK_MAX_BYTES).expect("open");
        (dir, cache)
    }

    fn store(cache: &DiskCache, key: &Key, conn: &str, df: &DataFrame, ttl: Duration) {
        cache
            .store(key, conn, &format!("id of {conn}"), df, ttl)
            .expect("store");
    }

    #[test]
    fn round_trip_is_exact() {
        let (_d, cache) = cache();
        let df = frame();
        store(&cache, &[1; 32], "c", &df, HOUR);
        let hit = cache.load(&[1; 32], HOUR).expect("hit");
        assert!(hit.df.equals_missing(&df), "{:?} vs {:?}", hit.df, df);
        assert_eq!(hit.df.schema(), df.schema());
        assert!(cache.load(&[2; 32], HOUR).is_none(), "another key misses");
        // Empty results keep their schema.
        let empty = df.head(Some(0));
        store(&cache, &[3; 32], "c", &empty, HOUR);
        let hit = cache.load(&[3; 32], HOUR).expect("empty hit");
        assert_eq!((hit.df.height(), hit.df.schema()), (0, empty.schema()));
    }

    #[test]
    fn header_round_trip() {
        let h = Header {
            key: [7; 32],
            connection: "pets db".into(),
            identity: "pets db|sqlite@0.1.0|abc".into(),
            created: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            expires: UNIX_EPOCH + Duration::from_millis(1_700_000_600_123),
            rows: 42,
            payload_len: 1234,
            checksum: 0xdead_beef_u128 << 64 | 7,
        };
        let bytes = h.encode();
        assert_eq!(bytes.len() % ALIGN, 0);
        let (back, len) = Header::decode(&mut bytes.as_slice()).expect("decode");
        assert_eq!((back, len), (h, bytes.len()));
    }

    #[test]
    fn expiry_and_max_age() {
        let (_d, cache) = cache();
        // Small, so that storing it takes far less than its TTL even on a loaded machine.
        let df = frame().head(Some(10));
        store(&cache, &[1; 32], "c", &df, Duration::from_millis(500));
        assert!(cache.load(&[1; 32], HOUR).is_some());
        assert!(
            cache.load(&[1; 32], Duration::from_millis(1)).is_none() || {
                // Within a millisecond of the write; try again once it is older.
                std::thread::sleep(Duration::from_millis(5));
                cache.load(&[1; 32], Duration::from_millis(1)).is_none()
            },
            "a reader asking for fresher data misses"
        );
        std::thread::sleep(Duration::from_millis(550));
        assert!(cache.load(&[1; 32], HOUR).is_none(), "expired");
    }

    #[test]
    fn any_damage_is_a_miss_and_the_file_is_removed() {
        let (_d, cache) = cache();
        let df = frame();
        let key = [9; 32];
        store(&cache, &key, "c", &df, HOUR);
        let path = cache.path(&key);
        let good = fs::read(&path).expect("read");
        let len = good.len();
        // Every region: magic, times, lengths, checksum, key, strings, padding, IPC body
        // and footer; and truncations at several points.
        let positions = [
            0,
            9,
            17,
            33,
            41,
            60,
            70,
            101,
            120,
            len / 3,
            len / 2,
            len - 20,
            len - 1,
        ];
        for &at in &positions {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            fs::write(&path, &bad).expect("write");
            assert!(
                cache.load(&key, HOUR).is_none(),
                "flipped byte {at} of {len}"
            );
            assert!(!path.exists(), "the damaged entry {at} was removed");
        }
        for cut in [0, 10, 100, 200, len / 2, len - 1] {
            fs::write(&path, &good[..cut]).expect("write");
            assert!(cache.load(&key, HOUR).is_none(), "truncated at {cut}");
        }
        let mut long = good.clone();
        long.extend_from_slice(b"junk");
        fs::write(&path, &long).expect("write");
        assert!(cache.load(&key, HOUR).is_none(), "trailing bytes");
        // A whole entry copied under another key's name.
        fs::write(&path, &good).expect("write");
        fs::copy(&path, cache.path(&[8; 32])).expect("copy");
        assert!(cache.load(&[8; 32], HOUR).is_none(), "wrong key");
        assert!(cache.load(&key, HOUR).is_some(), "the original still hits");
    }

    #[test]
    fn byte_bound_evicts_oldest_first() {
        let (_d, cache) = cache();
        let df = frame();
        store(&cache, &[0; 32], "c", &df, HOUR);
        let one = cache.stats().total.bytes;
        let cache = DiskCache::open(cache.dir(), one * 2 + one / 2).expect("open");
        for i in 1..5u8 {
            std::thread::sleep(Duration::from_millis(20)); // distinct modification times
            store(&cache, &[i; 32], "c", &df, HOUR);
        }
        let stats = cache.stats();
        assert!(stats.total.bytes <= cache.max_bytes(), "{stats:?}");
        assert_eq!(stats.total.entries, 2, "{stats:?}");
        assert_eq!(
            cache.state().tally(),
            stats.total.bytes,
            "the tally is exact after a walk"
        );
        assert!(cache.load(&[4; 32], HOUR).is_some(), "the newest stays");
        assert!(cache.load(&[3; 32], HOUR).is_some());
        assert!(
            cache.load(&[0; 32], HOUR).is_none(),
            "the oldest went first"
        );
    }

    #[test]
    fn clear_by_identity_not_by_name() {
        let (_d, cache) = cache();
        let df = frame().head(Some(10));
        store(&cache, &[1; 32], "a", &df, HOUR);
        store(&cache, &[2; 32], "b", &df, HOUR);
        // Another project's connection that is also called "a".
        cache
            .store(&[3; 32], "a", "id of another a", &df, HOUR)
            .expect("store");
        let stats = cache.stats();
        assert_eq!(stats.connections.keys().collect::<Vec<_>>(), ["a", "b"]);
        let removed = cache.clear_identity("id of a");
        assert_eq!(removed.entries, 1);
        assert!(cache.load(&[1; 32], HOUR).is_none());
        assert!(cache.load(&[2; 32], HOUR).is_some());
        assert!(
            cache.load(&[3; 32], HOUR).is_some(),
            "the other project's a stays"
        );
        let all = cache.state().all_generation();
        assert_eq!(cache.clear().entries, 2);
        assert_eq!(cache.state().all_generation(), all + 1);
        assert_eq!(cache.stats().total, Usage::default());
        assert_eq!(cache.state().tally(), 0);
    }

    #[test]
    fn storing_does_not_walk_the_folder() {
        let (_d, cache) = cache();
        let df = frame().head(Some(3));
        let walks = cache.walks(); // opening a new folder sweeps it once
        for i in 0..50u8 {
            store(&cache, &[i; 32], "c", &df, HOUR);
        }
        store(&cache, &[7; 32], "c", &df, HOUR); // replaces one
        assert_eq!(cache.walks(), walks, "no store walked the folder");
        let stats = cache.stats();
        assert_eq!(stats.total.entries, 50);
        assert_eq!(
            cache.state().tally(),
            stats.total.bytes,
            "the tally is exact"
        );
        // Another process's handle shares the tally.
        let other = DiskCache::open(cache.dir(), DEFAULT_DISK_MAX_BYTES).expect("open");
        assert_eq!(other.state().tally(), stats.total.bytes);
    }

    /// The issue this answers: with every store re-reading every entry's header, a cache
    /// of 100k entries slowed every query. Now a store walks nothing, however full.
    #[test]
    fn a_store_costs_the_same_with_100k_entries() {
        let (_d, cache) = cache();
        let df = frame().head(Some(3));
        store(&cache, &[0; 32], "c", &df, HOUR);
        let mut first = cache.path(&[0; 32]);
        for i in 1..100_000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            if i % 50_000 == 0 {
                // A file takes at most 65,000 links on ext4: start from a copy.
                fs::copy(&first, cache.path(&key)).expect("copy");
                first = cache.path(&key);
            } else {
                fs::hard_link(&first, cache.path(&key)).expect("link");
            }
        }
        cache.evict(); // one walk: the tally learns of the entries made behind its back
        let walks = cache.walks();
        let started = std::time::Instant::now();
        for i in 0..200u8 {
            store(&cache, &[i | 1; 32], "c", &df, HOUR);
        }
        let per_store = started.elapsed() / 200;
        assert_eq!(cache.walks(), walks, "no store walked the 100k entries");
        let stats = cache.stats();
        assert!(stats.total.entries >= 100_000, "{:?}", stats.total);
        assert_eq!(cache.state().tally(), stats.total.bytes);
        eprintln!("a store beside 100k entries took {per_store:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = DiskCache::open(dir.path(), DEFAULT_DISK_MAX_BYTES)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("writable by every user"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o770)).expect("chmod");
        let err = DiskCache::open(dir.path(), DEFAULT_DISK_MAX_BYTES)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("writable by its group"), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        DiskCache::open(dir.path(), DEFAULT_DISK_MAX_BYTES).expect("readable by others is fine");
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("500 MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert!(parse_bytes("lots").unwrap_err().contains("lots"));
        assert_eq!(show_bytes(1536), "1.5 KiB");
    }
}
