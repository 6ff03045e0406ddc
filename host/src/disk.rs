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
//! * **Bounded**: after each write, the oldest entries are removed until the folder is
//!   under its byte bound; expired entries and abandoned temporary files go first.
//! * **Honest invalidation**: `clear` leaves a marker, and a read that started before the
//!   marker does not store its (possibly stale) result.
//!
//! A hit maps the file: see `crate::sys::mmap`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::{Arc, Mutex};

use polars::prelude::{DataFrame, Schema};
use sha2::{Digest, Sha256};

use crate::cache::Key;
use crate::host::hex;

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
const MARKERS: &str = "invalidated";
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

/// A cached result found on disk.
pub(crate) struct Hit {
    pub df: DataFrame,
    pub created: SystemTime,
    pub expires: SystemTime,
}

/// Per-connection totals of one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub entries: u64,
    pub bytes: u64,
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

/// What a clear removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    pub bytes: u64,
}

/// The disk tier: a folder of entries with a byte bound.
#[derive(Debug, Clone)]
pub struct DiskCache {
    root: PathBuf,
    max_bytes: u64,
}

impl DiskCache {
    /// A cache in `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            root: root.into(),
            max_bytes,
        }
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
        self.entries_dir().join(format!("{}.{EXTENSION}", hex(key)))
    }

    /// The entry for `key`, if it is whole, unexpired, and younger than `max_age`.
    /// Anything else is a miss; a damaged file is removed.
    pub(crate) fn load(&self, key: &Key, max_age: Duration) -> Option<Hit> {
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
        if now >= header.expires || age >= max_age {
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
        let _ = fs::remove_file(path);
        None
    }

    /// Stores a result, atomically; `started` is when its read began, so a result read
    /// before an invalidation is not stored after it. A failure leaves nothing behind.
    pub(crate) fn store(
        &self,
        key: &Key,
        connection: &str,
        identity: &str,
        df: &DataFrame,
        ttl: Duration,
        started: SystemTime,
    ) -> Result<(), String> {
        let mut pending = self.begin(key, connection, identity, ttl, df.schema())?;
        pending.write(df)?;
        pending.commit(started)
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
        let writer = crate::output::ipc_writer(hashing, schema)
            .map_err(|e| format!("cannot encode the result: {e}"))?;
        Ok(Pending {
            cache: self.clone(),
            header,
            tmp,
            writer,
            tally,
        })
    }

    fn marker(&self, connection: Option<&str>) -> PathBuf {
        let name = match connection {
            Some(c) => hex(&Sha256::digest(c.as_bytes())[..16]),
            None => "all".to_owned(),
        };
        self.root.join(MARKERS).join(name)
    }

    fn invalidated_since(&self, connection: &str, since: SystemTime) -> bool {
        [self.marker(Some(connection)), self.marker(None)]
            .iter()
            .filter_map(|m| fs::metadata(m).and_then(|m| m.modified()).ok())
            .any(|t| t >= since)
    }

    fn touch_marker(&self, connection: Option<&str>) {
        let path = self.marker(connection);
        let result = path
            .parent()
            .map_or(Ok(()), create_private_dir)
            .and_then(|()| {
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)?
                    .set_modified(SystemTime::now())
            });
        if let Err(e) = result {
            tracing::warn!("disk cache: cannot write {}: {e}", path.display());
        }
    }

    /// Every entry file with its size and modification time.
    fn files(&self) -> Vec<(PathBuf, u64, SystemTime)> {
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

    /// Removes expired entries, abandoned temporary files, then the oldest entries until
    /// the folder is within its bound.
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
        if total <= self.max_bytes {
            return;
        }
        live.sort();
        for (_, size, path) in live {
            if total <= self.max_bytes {
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

    /// Removes every entry, or those of one connection (by name). Reads in flight when
    /// this runs will not store their results.
    pub fn clear(&self, connection: Option<&str>) -> Removed {
        self.touch_marker(connection);
        let mut removed = Removed::default();
        for (path, size, _) in self.files() {
            let matches = match connection {
                None => true,
                Some(c) => Self::header_of(&path).is_some_and(|h| h.connection == c),
            };
            if matches && fs::remove_file(&path).is_ok() {
                removed.entries += 1;
                removed.bytes += size;
            }
        }
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

/// Counts and hashes what passes through.
/// A result being written into the disk tier; see [`DiskCache::begin`].
pub(crate) struct Pending {
    cache: DiskCache,
    header: Header,
    tmp: tempfile::NamedTempFile,
    writer: polars::io::ipc::BatchedWriter<Hashing>,
    tally: Arc<Mutex<Tally>>,
}

impl Pending {
    /// Appends a batch.
    pub(crate) fn write(&mut self, df: &DataFrame) -> Result<(), String> {
        self.writer
            .write_batch(&crate::output::aligned(df))
            .map_err(|e| format!("cannot encode the result: {e}"))?;
        self.header.rows += df.height() as u64;
        Ok(())
    }

    /// Finishes the entry and makes it visible, unless its connection was invalidated
    /// after `started` (when its read began).
    pub(crate) fn commit(mut self, started: SystemTime) -> Result<(), String> {
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
        let connection = &self.header.connection;
        if self.cache.invalidated_since(connection, started) {
            tracing::debug!(
                "disk cache: {connection:?} was invalidated during the read; not storing it"
            );
            return Ok(());
        }
        let target = self.cache.path(&self.header.key);
        self.tmp
            .persist(&target)
            .map_err(|e| format!("cannot rename into {}: {}", target.display(), e.error))?;
        self.cache.evict();
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
        let cache = DiskCache::new(dir.path(), DEFAULT_DISK_MAX_BYTES);
        (dir, cache)
    }

    fn store(cache: &DiskCache, key: &Key, conn: &str, df: &DataFrame, ttl: Duration) {
        cache
            .store(key, conn, "id", df, ttl, SystemTime::now())
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
        let df = frame();
        store(&cache, &[1; 32], "c", &df, Duration::from_millis(150));
        assert!(cache.load(&[1; 32], HOUR).is_some());
        assert!(
            cache.load(&[1; 32], Duration::from_millis(1)).is_none() || {
                // Within a millisecond of the write; try again once it is older.
                std::thread::sleep(Duration::from_millis(5));
                cache.load(&[1; 32], Duration::from_millis(1)).is_none()
            },
            "a reader asking for fresher data misses"
        );
        std::thread::sleep(Duration::from_millis(200));
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
        let cache = DiskCache::new(cache.dir(), one * 2 + one / 2);
        for i in 1..5u8 {
            std::thread::sleep(Duration::from_millis(20)); // distinct modification times
            store(&cache, &[i; 32], "c", &df, HOUR);
        }
        let stats = cache.stats();
        assert!(stats.total.bytes <= cache.max_bytes(), "{stats:?}");
        assert_eq!(stats.total.entries, 2, "{stats:?}");
        assert!(cache.load(&[4; 32], HOUR).is_some(), "the newest stays");
        assert!(cache.load(&[3; 32], HOUR).is_some());
        assert!(
            cache.load(&[0; 32], HOUR).is_none(),
            "the oldest went first"
        );
    }

    #[test]
    fn clear_by_connection_and_invalidation_during_a_read() {
        let (_d, cache) = cache();
        let df = frame().head(Some(10));
        store(&cache, &[1; 32], "a", &df, HOUR);
        store(&cache, &[2; 32], "b", &df, HOUR);
        let stats = cache.stats();
        assert_eq!(stats.connections.keys().collect::<Vec<_>>(), ["a", "b"]);
        let removed = cache.clear(Some("a"));
        assert_eq!(removed.entries, 1);
        assert!(cache.load(&[1; 32], HOUR).is_none());
        assert!(cache.load(&[2; 32], HOUR).is_some());

        // A read that began before a clear does not store what it read.
        let started = SystemTime::now() - Duration::from_secs(1);
        cache.clear(Some("b"));
        cache
            .store(&[3; 32], "b", "id", &df, HOUR, started)
            .expect("store");
        assert!(cache.load(&[3; 32], HOUR).is_none());
        store(&cache, &[3; 32], "b", &df, HOUR);
        assert!(cache.load(&[3; 32], HOUR).is_some(), "a later read does");
        assert_eq!(cache.clear(None).entries, 1, "b's first entry went with b");
        assert_eq!(cache.stats().total, Usage::default());
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
