//! Atomic writes: an export or a rewritten `plugins.toml` is written to a temporary file
//! in the same folder and renamed into place, so a failure never leaves half a file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};

/// The temporary files being written now: what [`remove_unfinished`] deletes when the CLI
/// is interrupted, so that Ctrl-C leaves nothing beside `--output`.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn unfinished() -> MutexGuard<'static, Vec<PathBuf>> {
    UNFINISHED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A temporary file's place in [`UNFINISHED`], given up when the write ends either way.
struct Unfinished(PathBuf);

impl Unfinished {
    fn new(path: &Path) -> Self {
        unfinished().push(path.to_path_buf());
        Self(path.to_path_buf())
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        unfinished().retain(|p| p != &self.0);
    }
}

/// Deletes the temporary file of every atomic write under way, and keeps any other from
/// being renamed into place: for a process about to exit (Ctrl-C), never to return to.
///
/// A write renamed into place before this runs is whole, and stays.
pub fn remove_unfinished() {
    let files = unfinished();
    for path in files.iter() {
        let _ = std::fs::remove_file(path);
    }
    // Held until the process exits: a write that gets to its rename now waits.
    std::mem::forget(files);
}

/// Writes a file through a temporary file in the same folder, renamed into place once
/// whole and synced: a failure leaves the old file (or none), never half of a new one.
pub(crate) fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let write_err = |error| Error::Write {
        path: path.to_path_buf(),
        error,
    };
    // An export is the user's file: the mode a new file gets (0666 less the umask), or
    // the one the file it replaces had; not the temporary file's private 0600.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".plugboard-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(write_err)?;
    let registered = Unfinished::new(tmp.path());
    if let Ok(existing) = std::fs::metadata(path) {
        tmp.as_file()
            .set_permissions(existing.permissions())
            .map_err(write_err)?;
    }
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut buffered).map_err(|e| match e {
            Error::Write { error, .. } => write_err(error),
            other => other,
        })?;
        buffered.flush().map_err(write_err)?;
    }
    tmp.as_file().sync_all().map_err(write_err)?;
    // Renamed under the lock, so that an interrupt removes the file or finds it whole.
    let list = unfinished();
    let persisted = tmp.persist(path);
    drop(list);
    drop(registered);
    persisted.map_err(|e| write_err(e.error))?;
    Ok(())
}
