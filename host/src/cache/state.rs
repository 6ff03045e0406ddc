//! What every cache key is made with, shared by the user's processes: a secret key that
//! connection identities are hashed with, and the invalidation generations.
//!
//! * **The key.** A connection's identity includes its config, secrets and all, so it
//!   enters cache keys and disk entries only as an HMAC under a random 32-byte key that is
//!   kept in the cache folder (mode 0600). A readable cache entry therefore does not allow
//!   offline password guessing. Without a disk tier the key is random per process.
//! * **Generations.** Every key includes the generation of its connection, of the
//!   database it reached (the plugin-reported target), and of the whole cache. A write,
//!   `reset()` or `cache clear` bumps them, so every entry stored before, and every read
//!   still in flight, sits under a key no later lookup builds: nothing read before an
//!   invalidation can be served after it, whatever the timing, in this process or
//!   another. Connections map to one of [`SLOTS`] counters by keyed hash; two sharing a
//!   slot only invalidate each other too often, never too rarely.
//! * **The byte tally** of the disk tier, so that storing an entry costs O(1) and the
//!   folder is only walked when it is over its bound.
//!
//! All of it lives in `<dir>/state-v1`, mapped by every process (see
//! `crate::sys::shared`). A missing file is created with a new key, which makes every
//! entry already in the folder unreachable, so they are swept then. Without a disk tier
//! the counters live in this process's memory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{KeyInit, Mac};

use crate::sys::shared::SharedWords;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Generation counters; a connection takes one by keyed hash.
pub(crate) const SLOTS: usize = 4096;
const STATE: &str = "state-v1";
const MAGIC: u64 = u64::from_le_bytes(*b"PBSTATE1");
/// Word layout: magic, the key (4 words), the disk tally, the global generation, one
/// spare, then the slots.
const KEY_AT: usize = 1;
const TALLY_AT: usize = 5;
const ALL_AT: usize = 6;
const SLOTS_AT: usize = 8;
const WORDS: usize = SLOTS_AT + SLOTS;

enum Words {
    Local(Box<[AtomicU64]>),
    Shared(SharedWords),
}

/// Why the disk tier cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The folder or its state belongs to another user, or others can write it: using it
    /// would serve results that anyone could have forged.
    Refused(String),
    /// The folder cannot be created or read (a read-only disk, no home folder): the host
    /// runs without a disk tier.
    Unavailable(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(m) | Self::Unavailable(m) => f.write_str(m),
        }
    }
}

/// The cache's shared state; see the module docs.
pub(crate) struct State {
    words: Words,
    key: [u8; 32],
    /// The state file, when shared.
    path: Option<PathBuf>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Where a connection's generation is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(usize);

/// What a newly opened shared state means for the folder.
pub(crate) enum Opened {
    /// The state existed: entries in the folder are valid under it.
    Existing(State),
    /// The state was just created with a new key: every entry already there is garbage.
    Created(State),
}

impl State {
    /// State for this process alone: a random key, counters in memory.
    pub(crate) fn local() -> Self {
        Self {
            words: Words::Local((0..WORDS).map(|_| AtomicU64::new(0)).collect()),
            key: random_key(),
            path: None,
        }
    }

    /// The state shared through `dir` (which must exist and be checked by the caller).
    pub(crate) fn open(dir: &Path) -> Result<Opened, OpenError> {
        use OpenError::{Refused, Unavailable};
        Self::open_inner(dir)
            .map_err(|(refused, m)| if refused { Refused(m) } else { Unavailable(m) })
    }

    fn open_inner(dir: &Path) -> Result<Opened, (bool, String)> {
        let io = |m: String| (false, m);
        let path = dir.join(STATE);
        let mut created = false;
        for _ in 0..4 {
            match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => {
                    check_private(&path, &file).map_err(|m| (true, m))?;
                    match Self::map(&file) {
                        Ok((words, key)) => {
                            let state = Self {
                                words: Words::Shared(words),
                                key,
                                path: Some(path),
                            };
                            return Ok(if created {
                                Opened::Created(state)
                            } else {
                                Opened::Existing(state)
                            });
                        }
                        Err(reason) => {
                            tracing::warn!(
                                "disk cache: {} is damaged ({reason}); starting a new one",
                                path.display()
                            );
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    created |= create(dir, &path).map_err(io)?;
                }
                Err(e) => return Err(io(format!("cannot open {}: {e}", path.display()))),
            }
        }
        Err(io(format!("cannot set up {}", path.display())))
    }

    fn map(file: &File) -> Result<(SharedWords, [u8; 32]), String> {
        let words = SharedWords::map(file, WORDS).map_err(|e| e.to_string())?;
        let load = |i: usize| words.word(i).map_or(0, |w| w.load(Ordering::Acquire));
        if load(0) != MAGIC {
            return Err("not a plugboard state file".to_owned());
        }
        let mut key = [0u8; 32];
        for (i, chunk) in key.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&load(KEY_AT + i).to_le_bytes());
        }
        Ok((words, key))
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        static ZERO: AtomicU64 = AtomicU64::new(0);
        match &self.words {
            Words::Local(w) => w.get(i),
            Words::Shared(w) => w.word(i),
        }
        .unwrap_or(&ZERO)
    }

    /// HMAC-SHA-256 of `parts` (each length-prefixed) under the state's key.
    pub(crate) fn keyed<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            unreachable!("HMAC takes a key of any length")
        };
        for p in parts {
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The slot of a scope (a connection identity, a target).
    pub(crate) fn slot(&self, scope: &[u8]) -> Slot {
        let h = self.keyed([b"slot".as_slice(), scope]);
        let n = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        Slot((n % SLOTS as u64) as usize)
    }

    /// The current generation of a slot.
    pub(crate) fn generation(&self, slot: Slot) -> u64 {
        self.word(SLOTS_AT + slot.0).load(Ordering::Acquire)
    }

    /// The generation of the whole cache.
    pub(crate) fn all_generation(&self) -> u64 {
        self.word(ALL_AT).load(Ordering::Acquire)
    }

    /// Makes every key built with the slot's current generation unreachable.
    pub(crate) fn bump(&self, slot: Slot) {
        self.word(SLOTS_AT + slot.0).fetch_add(1, Ordering::AcqRel);
    }

    /// Makes every key unreachable.
    pub(crate) fn bump_all(&self) {
        self.word(ALL_AT).fetch_add(1, Ordering::AcqRel);
    }

    /// The disk tier's byte tally.
    #[cfg(test)]
    pub(crate) fn tally(&self) -> u64 {
        self.word(TALLY_AT).load(Ordering::Acquire)
    }

    /// Adds to the tally (a stored entry), less what it replaced.
    pub(crate) fn tally_change(&self, add: u64, sub: u64) -> u64 {
        let w = self.word(TALLY_AT);
        let mut now = w.load(Ordering::Acquire);
        loop {
            let next = now.saturating_add(add).saturating_sub(sub);
            match w.compare_exchange_weak(now, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return next,
                Err(seen) => now = seen,
            }
        }
    }

    /// Sets the tally to what a walk of the folder found.
    pub(crate) fn set_tally(&self, bytes: u64) {
        self.word(TALLY_AT).store(bytes, Ordering::Release);
    }
}

/// Writes a new state file beside `path` and links it into place unless another process
/// got there first. Returns whether this call created it.
fn create(dir: &Path, path: &Path) -> Result<bool, String> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-state-")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let key = random_key();
    let mut bytes = vec![0u8; WORDS * 8];
    bytes[..8].copy_from_slice(&MAGIC.to_le_bytes());
    bytes[KEY_AT * 8..KEY_AT * 8 + 32].copy_from_slice(&key);
    tmp.write_all(&bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
    // A hard link publishes the whole file at once, and fails if one is there already.
    match fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut key) {
        // No entropy source at all: the keys are still keyed, only not secret.
        tracing::warn!("cannot get random bytes for the cache key: {e}");
    }
    key
}

/// Refuses a cache folder or file that another user owns or could write: its entries
/// are served as query results, so whoever can write them can forge results.
pub(crate) fn check_private(path: &Path, file: &File) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!(
                "{} belongs to user {}, not to this user ({me}); refusing to use it as a cache",
                path.display(),
                meta.uid()
            ));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "{} is writable by {} (mode {mode:04o}); refusing to use it as a cache: run `chmod go-w {}`",
                path.display(),
                if mode & 0o002 != 0 {
                    "every user"
                } else {
                    "its group"
                },
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, file);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(dir: &Path) -> State {
        match State::open(dir).expect("open") {
            Opened::Existing(s) | Opened::Created(s) => s,
        }
    }

    #[test]
    fn processes_share_generations_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Opened::Created(a) = State::open(dir.path()).expect("open") else {
            panic!("the first open creates the state");
        };
        let Opened::Existing(b) = State::open(dir.path()).expect("open") else {
            panic!("the second open finds it");
        };
        assert_eq!(a.keyed([b"x".as_slice()]), b.keyed([b"x".as_slice()]));
        let slot = a.slot(b"conn");
        assert_eq!(slot, b.slot(b"conn"));
        let before = b.generation(slot);
        a.bump(slot);
        assert_eq!(b.generation(slot), before + 1);
        a.bump_all();
        assert_eq!(b.all_generation(), 1);
        a.tally_change(100, 0);
        assert_eq!(b.tally_change(0, 30), 70);
        assert_eq!(a.tally_change(0, 1000), 0, "the tally saturates at zero");
    }

    #[test]
    fn keys_differ_between_folders_and_processes() {
        let (d1, d2) = (
            tempfile::tempdir().expect("d1"),
            tempfile::tempdir().expect("d2"),
        );
        let x = [b"identity".as_slice()];
        assert_ne!(shared(d1.path()).keyed(x), shared(d2.path()).keyed(x));
        assert_ne!(State::local().keyed(x), State::local().keyed(x));
    }

    #[test]
    fn a_damaged_state_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = shared(dir.path()).keyed([b"x".as_slice()]);
        fs::write(dir.path().join(STATE), b"garbage").expect("write");
        let Opened::Created(s) = State::open(dir.path()).expect("open") else {
            panic!("a damaged state is replaced by a new one");
        };
        assert_ne!(s.keyed([b"x".as_slice()]), first, "with a new key");
    }

    #[cfg(unix)]
    #[test]
    fn writable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        drop(shared(dir.path()));
        let path = dir.path().join(STATE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod");
        let Err(OpenError::Refused(err)) = State::open(dir.path()) else {
            panic!("refused");
        };
        assert!(err.contains("writable by every user"), "{err}");
    }
}
